// A chain of operations fused after a convolution or inner product, parsed from a short
// textual spec ("relu", "gelu_tanh", "add+relu", "leaky_relu", "bmul", ...) plus its scalars.
#pragma once

#include <dnnl.hpp>
#include <string>
#include <vector>

namespace ipex::kernels {

struct PostOpStep {
    enum class Kind { eltwise, sum, binary_add, binary_mul };
    Kind kind = Kind::eltwise;
    dnnl::algorithm alg = dnnl::algorithm::undef;
    float alpha = 0.f;  // eltwise alpha, or the sum scale
    float beta = 0.f;
};

class PostOps {
  public:
    PostOps() = default;
    // `spec` is "" / "none" or steps joined by '+'. Steps that take scalars consume them from
    // `args` in order: leaky_relu(slope), hardtanh/clamp(min,max), elu(alpha), pow(exponent),
    // add/sum(alpha). "add" is the in-place accumulation (oneDNN sum); "badd"/"bmul" are
    // broadcast binary ops with a second tensor. Throws c10::Error on unknown names.
    static PostOps parse(const std::string& spec, const std::vector<double>& args);
    // parse() memoised per thread: parsing on every call costs more than some small kernels.
    static const PostOps& cached(const std::string& spec, const std::vector<double>& args);

    const std::vector<PostOpStep>& steps() const { return steps_; }
    bool has_sum() const;
    bool has_binary() const;
    // Position of the binary step in the oneDNN chain (for DNNL_ARG_ATTR_MULTIPLE_POST_OP), or
    // -1 if there is none.
    int binary_index() const;
    // Position of the step that reads the second tensor (add/badd/bmul), or -1.
    int second_index() const;
    // The chain's first `n` steps (the part oneDNN can run when the second tensor cannot be fused).
    PostOps prefix(int n) const;
    // Stable text form used in cache keys.
    const std::string& key() const { return key_; }
    // Builds the oneDNN post-op chain; `binary_md` describes the second tensor if any.
    dnnl::post_ops to_dnnl(const dnnl::memory::desc& binary_md) const;

  private:
    void make_key();

    std::vector<PostOpStep> steps_;
    std::string key_;
};

}  // namespace ipex::kernels
