#include "ipex/kernels/post_ops.h"

#include <c10/util/Exception.h>

#include <cfloat>
#include <sstream>
#include <unordered_map>

namespace ipex::kernels {
namespace {

using alg = dnnl::algorithm;
using Kind = PostOpStep::Kind;

PostOpStep eltwise(alg a, float alpha = 0.f, float beta = 0.f) {
    PostOpStep s;
    s.alg = a;
    s.alpha = alpha;
    s.beta = beta;
    return s;
}

struct ArgReader {
    const std::vector<double>& args;
    size_t next = 0;
    float take(const std::string& op, double fallback, bool required) {
        if (next < args.size()) return static_cast<float>(args[next++]);
        TORCH_CHECK(!required, "ipex post-op '", op,
                    "' needs more scalar arguments than were given");
        return static_cast<float>(fallback);
    }
};

void append_step(const std::string& name, ArgReader& rd, std::vector<PostOpStep>& out) {
    if (name == "relu") return out.push_back(eltwise(alg::eltwise_relu));
    if (name == "leaky_relu")
        return out.push_back(eltwise(alg::eltwise_relu, rd.take(name, 0.01, false)));
    if (name == "gelu" || name == "gelu_erf") return out.push_back(eltwise(alg::eltwise_gelu_erf));
    if (name == "gelu_tanh") return out.push_back(eltwise(alg::eltwise_gelu_tanh));
    if (name == "silu" || name == "swish") return out.push_back(eltwise(alg::eltwise_swish, 1.f));
    if (name == "sigmoid") return out.push_back(eltwise(alg::eltwise_logistic));
    if (name == "tanh") return out.push_back(eltwise(alg::eltwise_tanh));
    if (name == "mish") return out.push_back(eltwise(alg::eltwise_mish));
    if (name == "abs") return out.push_back(eltwise(alg::eltwise_abs));
    if (name == "exp") return out.push_back(eltwise(alg::eltwise_exp));
    if (name == "square") return out.push_back(eltwise(alg::eltwise_square));
    if (name == "sqrt") return out.push_back(eltwise(alg::eltwise_sqrt));
    if (name == "log") return out.push_back(eltwise(alg::eltwise_log));
    if (name == "round") return out.push_back(eltwise(alg::eltwise_round));
    if (name == "hardswish") return out.push_back(eltwise(alg::eltwise_hardswish));
    if (name == "hardsigmoid") {
        // oneDNN 2.6 has no hardsigmoid: relu6(x + 3) / 6 == clip(x / 6 + 1/2, 0, 1).
        out.push_back(eltwise(alg::eltwise_linear, 1.f / 6.f, 0.5f));
        return out.push_back(eltwise(alg::eltwise_clip, 0.f, 1.f));
    }
    if (name == "hardtanh" || name == "clamp") {
        const float lo = rd.take(name, -1.0, name == "clamp");
        const float hi = rd.take(name, 1.0, name == "clamp");
        TORCH_CHECK(lo <= hi, "ipex post-op '", name, "': min (", lo, ") must not exceed max (", hi,
                    ")");
        return out.push_back(eltwise(alg::eltwise_clip, lo, hi));
    }
    if (name == "relu6") return out.push_back(eltwise(alg::eltwise_clip, 0.f, 6.f));
    if (name == "elu") return out.push_back(eltwise(alg::eltwise_elu, rd.take(name, 1.0, false)));
    if (name == "pow")
        return out.push_back(eltwise(alg::eltwise_pow, 1.f, rd.take(name, 1.0, true)));
    if (name == "add" || name == "sum") {
        PostOpStep s;
        s.kind = Kind::sum;
        s.alpha = rd.take(name, 1.0, false);
        return out.push_back(s);
    }
    if (name == "badd" || name == "bmul") {
        PostOpStep s;
        s.kind = name == "badd" ? Kind::binary_add : Kind::binary_mul;
        s.alg = name == "badd" ? alg::binary_add : alg::binary_mul;
        return out.push_back(s);
    }
    TORCH_CHECK(false, "ipex: unknown fused post-op '", name, "'");
}

}  // namespace

const PostOps& PostOps::cached(const std::string& spec, const std::vector<double>& args) {
    thread_local std::unordered_map<std::string, PostOps> memo;
    std::string key = spec;
    key.push_back('\0');
    key.append(reinterpret_cast<const char*>(args.data()), args.size() * sizeof(double));
    auto it = memo.find(key);
    if (it != memo.end()) return it->second;
    if (memo.size() > 256) memo.clear();
    return memo.emplace(std::move(key), parse(spec, args)).first->second;
}

PostOps PostOps::parse(const std::string& spec, const std::vector<double>& args) {
    PostOps p;
    ArgReader rd{args};
    if (!spec.empty() && spec != "none") {
        std::stringstream ss(spec);
        std::string name;
        while (std::getline(ss, name, '+')) append_step(name, rd, p.steps_);
    }
    TORCH_CHECK(rd.next == args.size(), "ipex post-op '", spec, "' got ", args.size(),
                " scalar arguments but uses ", rd.next);
    int seconds = 0;
    for (const auto& s : p.steps_) seconds += s.kind != Kind::eltwise;
    TORCH_CHECK(seconds <= 1, "ipex post-op '", spec, "': at most one add/badd/bmul step");
    p.make_key();
    return p;
}

void PostOps::make_key() {
    std::ostringstream key;
    for (const auto& s : steps_)
        key << static_cast<int>(s.kind) << ':' << static_cast<int>(s.alg) << ':' << s.alpha << ':'
            << s.beta << ';';
    key_ = key.str();
}

int PostOps::second_index() const {
    for (size_t i = 0; i < steps_.size(); ++i)
        if (steps_[i].kind != Kind::eltwise) return static_cast<int>(i);
    return -1;
}

PostOps PostOps::prefix(int n) const {
    PostOps p;
    p.steps_.assign(steps_.begin(), steps_.begin() + n);
    p.make_key();
    return p;
}

bool PostOps::has_sum() const {
    for (const auto& s : steps_)
        if (s.kind == Kind::sum) return true;
    return false;
}

bool PostOps::has_binary() const {
    return binary_index() >= 0;
}

int PostOps::binary_index() const {
    for (size_t i = 0; i < steps_.size(); ++i)
        if (steps_[i].kind == Kind::binary_add || steps_[i].kind == Kind::binary_mul)
            return static_cast<int>(i);
    return -1;
}

dnnl::post_ops PostOps::to_dnnl(const dnnl::memory::desc& binary_md) const {
    dnnl::post_ops po;
    for (const auto& s : steps_) {
        switch (s.kind) {
            case Kind::eltwise:
                po.append_eltwise(1.f, s.alg, s.alpha, s.beta);
                break;
            case Kind::sum:
                po.append_sum(s.alpha);
                break;  // accumulator has the dst type
            case Kind::binary_add:
            case Kind::binary_mul:
                po.append_binary(s.alg, binary_md);
                break;
        }
    }
    return po;
}

}  // namespace ipex::kernels
