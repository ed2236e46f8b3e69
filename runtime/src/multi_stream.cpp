// MultiStreamModule and the hint-driven split/concat it uses (one TU: torch headers are slow).
#include "ipex/runtime/multi_stream.h"

#include <ATen/ATen.h>

#include <future>
#include <stdexcept>
#include <string>

#include "ipex/runtime/stream_split.h"
#include "ipex/runtime/task.h"

namespace ipex::runtime {
namespace {

[[noreturn]] void bad(const std::string& what) {
    throw std::invalid_argument("MultiStreamModule: " + what);
}

bool is_dim_hint(const c10::IValue& h) {
    return h.isInt();
}

// Finds the batch size: size along the hinted dim of the first int-hinted tensor; checks the rest.
void find_batch(const c10::IValue& v, const c10::IValue& hint, int64_t& batch) {
    if (hint.isNone()) return;
    if (is_dim_hint(hint)) {
        if (v.isTensor()) {
            const at::Tensor& t = v.toTensor();
            int64_t dim = hint.toInt();
            if (dim < -t.dim() || dim >= t.dim())
                bad("split dim " + std::to_string(dim) + " is out of range for a tensor of " +
                    std::to_string(t.dim()) + " dims");
            int64_t n = t.size(dim);
            if (batch < 0)
                batch = n;
            else if (n != batch)
                bad("inputs split along their hinted dims disagree on the batch size (" +
                    std::to_string(batch) + " vs " + std::to_string(n) + ")");
        } else if (v.isTuple()) {
            for (const auto& e : v.toTupleRef().elements()) find_batch(e, hint, batch);
        } else if (v.isList()) {
            for (const auto& e : v.toListRef()) find_batch(e, hint, batch);
        } else if (v.isGenericDict()) {
            for (const auto& kv : v.toGenericDict()) find_batch(kv.value(), hint, batch);
        } else {
            bad("split hint " + std::to_string(hint.toInt()) + " given for an input of type " +
                v.tagKind() + " (use None for inputs that every stream gets whole)");
        }
        return;
    }
    if (hint.isTuple() || hint.isList()) {
        std::vector<c10::IValue> hs =
            hint.isTuple() ? hint.toTupleRef().elements().vec() : hint.toListRef().vec();
        std::vector<c10::IValue> vs;
        if (v.isTuple())
            vs = v.toTupleRef().elements().vec();
        else if (v.isList())
            vs = v.toListRef().vec();
        else
            bad("a tuple/list hint was given for an input of type " + v.tagKind());
        if (hs.size() != vs.size())
            bad("hint has " + std::to_string(hs.size()) + " entries for an input of " +
                std::to_string(vs.size()));
        for (std::size_t i = 0; i < hs.size(); ++i) find_batch(vs[i], hs[i], batch);
        return;
    }
    if (hint.isGenericDict()) {
        if (!v.isGenericDict()) bad("a dict hint was given for an input of type " + v.tagKind());
        auto vd = v.toGenericDict();
        for (const auto& kv : hint.toGenericDict()) {
            if (!vd.contains(kv.key()))
                bad("hint key '" + kv.key().toStringRef() + "' is not in the input dict");
            find_batch(vd.at(kv.key()), kv.value(), batch);
        }
        return;
    }
    bad("hint leaves must be int or None, not " + std::string(hint.tagKind()));
}

c10::IValue slice(const c10::IValue& v, const c10::IValue& hint, int64_t start, int64_t len);

c10::IValue slice_seq(const c10::IValue& v, const std::vector<c10::IValue>& hints, bool one_hint,
                      int64_t start, int64_t len) {
    std::vector<c10::IValue> vs =
        v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
    std::vector<c10::IValue> out;
    out.reserve(vs.size());
    for (std::size_t i = 0; i < vs.size(); ++i)
        out.push_back(slice(vs[i], one_hint ? hints[0] : hints[i], start, len));
    if (v.isTuple()) return c10::ivalue::Tuple::create(std::move(out));
    c10::List<c10::IValue> l(v.toList().elementType());
    for (auto& e : out) l.push_back(std::move(e));
    return l;
}

c10::IValue slice(const c10::IValue& v, const c10::IValue& hint, int64_t start, int64_t len) {
    if (hint.isNone()) return v;
    if (is_dim_hint(hint)) {
        if (v.isTensor()) return v.toTensor().narrow(hint.toInt(), start, len);
        if (v.isTuple() || v.isList()) return slice_seq(v, {hint}, true, start, len);
        auto d = v.toGenericDict();
        auto out = c10::impl::GenericDict(d.keyType(), d.valueType());
        for (const auto& kv : d) out.insert(kv.key(), slice(kv.value(), hint, start, len));
        return out;
    }
    if (hint.isTuple() || hint.isList()) {
        auto hs = hint.isTuple() ? hint.toTupleRef().elements().vec() : hint.toListRef().vec();
        return slice_seq(v, hs, false, start, len);
    }
    auto d = v.toGenericDict();
    auto hd = hint.toGenericDict();
    auto out = c10::impl::GenericDict(d.keyType(), d.valueType());
    for (const auto& kv : d)
        out.insert(kv.key(), hd.contains(kv.key()) ? slice(kv.value(), hd.at(kv.key()), start, len)
                                                   : kv.value());
    return out;
}

c10::IValue concat(const std::vector<c10::IValue>& outs, const c10::IValue& hint);

std::vector<c10::IValue> column(const std::vector<c10::IValue>& outs, std::size_t i) {
    std::vector<c10::IValue> col;
    for (const auto& o : outs) {
        auto es = o.isTuple() ? o.toTupleRef().elements().vec() : o.toListRef().vec();
        if (es.size() <= i) bad("stream outputs have different lengths");
        col.push_back(es[i]);
    }
    return col;
}

c10::IValue concat_seq(const std::vector<c10::IValue>& outs, const std::vector<c10::IValue>& hints,
                       bool one_hint) {
    const c10::IValue& first = outs[0];
    if (!first.isTuple() && !first.isList())
        bad("a tuple/list output hint was given for an output of type " + first.tagKind());
    std::size_t n =
        first.isTuple() ? first.toTupleRef().elements().size() : first.toListRef().size();
    if (!one_hint && hints.size() != n)
        bad("output hint has " + std::to_string(hints.size()) + " entries for an output of " +
            std::to_string(n));
    std::vector<c10::IValue> joined;
    for (std::size_t i = 0; i < n; ++i)
        joined.push_back(concat(column(outs, i), one_hint ? hints[0] : hints[i]));
    if (first.isTuple()) return c10::ivalue::Tuple::create(std::move(joined));
    c10::List<c10::IValue> l(first.toList().elementType());
    for (auto& e : joined) l.push_back(std::move(e));
    return l;
}

c10::IValue concat(const std::vector<c10::IValue>& outs, const c10::IValue& hint) {
    if (outs.size() == 1 || hint.isNone()) return outs[0];
    const c10::IValue& first = outs[0];
    if (is_dim_hint(hint)) {
        if (first.isTensor()) {
            std::vector<at::Tensor> ts;
            for (const auto& o : outs) ts.push_back(o.toTensor());
            return at::cat(ts, hint.toInt());
        }
        if (first.isTuple() || first.isList()) return concat_seq(outs, {hint}, true);
        if (first.isGenericDict()) {
            auto d = first.toGenericDict();
            auto out = c10::impl::GenericDict(d.keyType(), d.valueType());
            for (const auto& kv : d) {
                std::vector<c10::IValue> col;
                for (const auto& o : outs) col.push_back(o.toGenericDict().at(kv.key()));
                out.insert(kv.key(), concat(col, hint));
            }
            return out;
        }
        bad("concat hint " + std::to_string(hint.toInt()) + " given for an output of type " +
            first.tagKind() + " (use None to take stream 0's)");
    }
    if (hint.isTuple() || hint.isList()) {
        auto hs = hint.isTuple() ? hint.toTupleRef().elements().vec() : hint.toListRef().vec();
        return concat_seq(outs, hs, false);
    }
    if (hint.isGenericDict()) {
        if (!first.isGenericDict())
            bad("a dict output hint was given for an output of type " + first.tagKind());
        auto d = first.toGenericDict();
        auto hd = hint.toGenericDict();
        auto out = c10::impl::GenericDict(d.keyType(), d.valueType());
        for (const auto& kv : d) {
            std::vector<c10::IValue> col;
            for (const auto& o : outs) col.push_back(o.toGenericDict().at(kv.key()));
            out.insert(kv.key(), hd.contains(kv.key()) ? concat(col, hd.at(kv.key())) : col[0]);
        }
        return out;
    }
    bad("hint leaves must be int or None, not " + std::string(hint.tagKind()));
}

}  // namespace

std::vector<int64_t> split_sizes(int64_t batch, int streams) {
    if (streams < 1) bad("the stream count must be at least 1");
    if (batch < 0) bad("negative batch size");
    if (batch == 0) return {0};
    int64_t used = std::min<int64_t>(batch, streams);
    std::vector<int64_t> sizes(used, batch / used);
    for (int64_t i = 0; i < batch % used; ++i) ++sizes[i];
    return sizes;
}

StreamInputs split_by_hint(const std::vector<c10::IValue>& inputs, const c10::IValue& hint,
                           int streams) {
    // The top-level hint describes the argument list: an int or None applies to every argument.
    c10::IValue args = c10::ivalue::Tuple::create(inputs);
    int64_t batch = -1;
    find_batch(args, hint, batch);
    if (batch < 0) return {inputs};  // nothing to split along: one stream takes it all
    StreamInputs out;
    int64_t start = 0;
    for (int64_t len : split_sizes(batch, streams)) {
        out.push_back(slice(args, hint, start, len).toTupleRef().elements().vec());
        start += len;
    }
    return out;
}

c10::IValue concat_by_hint(const std::vector<c10::IValue>& outputs, const c10::IValue& hint) {
    if (outputs.empty()) bad("no stream outputs to concatenate");
    return concat(outputs, hint);
}

StreamInputs split_embedding_bag(const std::vector<c10::IValue>& inputs, int streams) {
    if (inputs.size() < 2 || !inputs[0].isTensor() || !inputs[1].isTensor())
        bad("split_embedding_bag needs (indices, offsets, ...) tensors");
    const at::Tensor& indices = inputs[0].toTensor();
    const at::Tensor& offsets = inputs[1].toTensor();
    if (indices.dim() != 1 || offsets.dim() != 1)
        bad("split_embedding_bag needs 1-D indices and offsets");
    const int64_t bags = offsets.size(0);
    auto offs = offsets.to(at::kLong).contiguous();
    const int64_t* o = offs.data_ptr<int64_t>();
    StreamInputs out;
    int64_t first_bag = 0;
    for (int64_t n : split_sizes(bags, streams)) {
        int64_t lo = n == 0 ? 0 : o[first_bag];
        int64_t hi = first_bag + n < bags ? o[first_bag + n] : indices.size(0);
        std::vector<c10::IValue> args{
            indices.narrow(0, lo, hi - lo),
            (offsets.narrow(0, first_bag, n) - lo).to(offsets.scalar_type())};
        for (std::size_t i = 2; i < inputs.size(); ++i) args.push_back(inputs[i]);
        out.push_back(std::move(args));
        first_bag += n;
    }
    return out;
}

MultiStreamModule::MultiStreamModule(torch::jit::Module module, CPUPool pool, Options options)
    : module_(std::move(module)), options_(std::move(options)) {
    int streams = options_.num_streams == 0 ? static_cast<int>(pool.size()) : options_.num_streams;
    if (streams < 1 || static_cast<std::size_t>(streams) > pool.size())
        bad("num_streams must be between 1 and the pool's " + std::to_string(pool.size()) +
            " CPUs, not " + std::to_string(streams));
    pools_ = pool.split(streams);
    for (const auto& p : pools_) streams_.push_back(std::make_shared<TaskExecutor>(p));
}

MultiStreamModule::~MultiStreamModule() = default;

c10::IValue MultiStreamModule::forward(const std::vector<c10::IValue>& inputs) {
    const int s = num_streams();
    StreamInputs parts = options_.split ? options_.split(inputs, s)
                                        : split_by_hint(inputs, options_.input_split_hint, s);
    if (parts.empty() || parts.size() > static_cast<std::size_t>(s))
        bad("the split gave " + std::to_string(parts.size()) + " parts for " + std::to_string(s) +
            " streams");
    std::vector<std::future<c10::IValue>> pending;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        Task task([m = module_](
                      std::vector<c10::IValue> args) mutable { return m.forward(std::move(args)); },
                  streams_[i]);
        pending.push_back(task(std::move(parts[i])));
    }
    std::vector<c10::IValue> outs;
    std::exception_ptr first_error;
    for (auto& f : pending) {  // wait for every stream even when one fails
        try {
            outs.push_back(f.get());
        } catch (...) {
            if (!first_error) first_error = std::current_exception();
        }
    }
    if (first_error) std::rethrow_exception(first_error);
    if (!options_.concat_output) {
        c10::List<c10::IValue> l(c10::AnyType::get());
        for (auto& o : outs) l.push_back(std::move(o));
        return l;
    }
    return options_.concat ? options_.concat(outs)
                           : concat_by_hint(outs, options_.output_concat_hint);
}

}  // namespace ipex::runtime
