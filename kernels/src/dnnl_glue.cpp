#include "dnnl_glue.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <sstream>

#include "ipex/kernels/isa.h"
#include "ipex/runtime/thread_count_watch.h"

namespace ipex::kernels::detail {

const dnnl::engine& cpu_engine() {
    static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    return eng;
}

dnnl::stream& thread_stream() {
    thread_local dnnl::stream s(cpu_engine());
    return s;
}

dnnl::memory::data_type to_dnnl(c10::ScalarType t) {
    switch (t) {
        case c10::kFloat:
            return dnnl::memory::data_type::f32;
        case c10::kBFloat16:
            return dnnl::memory::data_type::bf16;
        default:
            TORCH_CHECK(false, "ipex kernels support float32 and bfloat16, got ", t);
    }
}

dnnl::memory::desc md_of(const at::Tensor& t) {
    dnnl::memory::dims dims(t.sizes().begin(), t.sizes().end());
    dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
    return dnnl::memory::desc(dims, to_dnnl(t.scalar_type()), strides);
}

bool is_plain_layout(const dnnl::memory::desc& md) {
    return md.data.format_kind == dnnl_blocked && md.data.format_desc.blocking.inner_nblks == 0;
}

dnnl::memory wrap(const dnnl::memory::desc& md, const at::Tensor& t) {
    return dnnl::memory(md, cpu_engine(), t.data_ptr());
}

at::Tensor alloc_scratchpad(const dnnl::memory::desc& md) {
    // One grow-only buffer per thread: primitives run synchronously on the calling thread, and
    // a fresh multi-megabyte allocation per call would page-fault on every run.
    thread_local at::Tensor buf;
    const auto need = static_cast<int64_t>(md.get_size());
    if (!buf.defined() || buf.numel() < need)
        buf = at::empty({std::max<int64_t>(need, 1)}, at::TensorOptions().dtype(at::kByte));
    return buf;
}

bool kernel_dtype(c10::ScalarType t) {
    return t == c10::kFloat || t == c10::kBFloat16;
}

bool onednn_computes_in(c10::ScalarType t) {
    return t == c10::kFloat || (t == c10::kBFloat16 && bf16_supported());
}

c10::ScalarType compute_dtype(c10::ScalarType requested, const char* op) {
    if (requested == c10::kFloat) return requested;
    TORCH_CHECK(requested == c10::kBFloat16, op, ": dtype must be float32 or bfloat16, got ",
                requested);
    if (bf16_supported()) return requested;
    TORCH_WARN_ONCE(
        "ipex: this CPU has no native bfloat16 (AVX512-BF16/AMX) support or it was "
        "disabled; bfloat16 layers compute in float32 instead");
    return c10::kFloat;
}

std::string shape_str(c10::IntArrayRef s) {
    std::ostringstream os;
    os << '[';
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << ']';
    return os.str();
}

KeyBuilder& KeyBuilder::add(const dnnl::memory::desc& md) {
    const auto& d = md.data;
    add(static_cast<int64_t>(d.data_type)).add(static_cast<int64_t>(d.ndims));
    for (int i = 0; i < d.ndims; ++i)
        add(static_cast<int64_t>(d.dims[i]))
            .add(static_cast<int64_t>(d.format_desc.blocking.strides[i]));
    return *this;
}

void rethrow_dnnl(const char* op, const std::string& call, const dnnl::error& e) {
    TORCH_CHECK(false, op, ": oneDNN could not run ", call, " (", e.what(), ", status ",
                static_cast<int>(e.status), ")");
}

int omp_threads() {
    return ipex::runtime::current_omp_threads();
}

void note_thread_change() {
    ipex::runtime::note_cache_invalidation();
}

PackedWeights::PackedWeights(at::Tensor plain, dnnl::memory::desc plain_md)
    : plain_md_(std::move(plain_md)), dtype_(plain.scalar_type()) {
    copies_.push_back({plain_md_, std::move(plain)});
}

namespace {

void reorder_into(const PackedWeights::Copy& from_copy, const PackedWeights::Copy& to_copy) {
    dnnl::memory from(from_copy.md, cpu_engine(), from_copy.buf.data_ptr());
    dnnl::memory to(to_copy.md, cpu_engine(), to_copy.buf.data_ptr());
    dnnl::reorder(from, to).execute(thread_stream(), from, to);
    thread_stream().wait();
}

bool is_winograd(const dnnl::memory::desc& md) {
    return md.data.format_kind == dnnl_format_kind_wino;
}

}  // namespace

const PackedWeights::Copy& PackedWeights::source() const {
    for (auto it = copies_.rbegin(); it != copies_.rend(); ++it)
        if (!is_winograd(it->md)) return *it;
    return copies_.front();  // unreachable: the plain copy stays once a Winograd one exists
}

PackedWeights::Copy PackedWeights::get(const dnnl::memory::desc& md) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : copies_)
        if (c.md == md) return c;
    auto fresh_copy = [](const dnnl::memory::desc& layout) {
        return Copy{layout, at::empty({static_cast<int64_t>(layout.get_size())},
                                      at::TensorOptions().dtype(at::kByte))};
    };
    // oneDNN makes its Winograd layout only from the plain one, and cannot reorder out of it:
    // the plain copy comes back if it was dropped, and stays from then on.
    if (is_winograd(md) && !keep_plain_) {
        keep_plain_ = true;
        if (!(copies_.front().md == plain_md_)) {
            Copy plain = fresh_copy(plain_md_);
            reorder_into(source(), plain);
            copies_.insert(copies_.begin(), plain);
        }
    }
    Copy fresh = fresh_copy(md);
    reorder_into(is_winograd(md) ? copies_.front() : source(), fresh);
    // Drop the plain source once packed, and keep at most two packed layouts; cache entries
    // hold their own reference to the bytes they use.
    if (keep_plain_) {
        if (copies_.size() >= 3) copies_.erase(copies_.begin() + 1);
    } else if (copies_.front().md == plain_md_ || copies_.size() >= 2) {
        copies_.erase(copies_.begin());
    }
    copies_.push_back(fresh);
    return fresh;
}

at::Tensor PackedWeights::unpack(c10::IntArrayRef shape) const {
    std::lock_guard<std::mutex> lock(mu_);
    const Copy& src = source();
    // A plain copy made back from a packed one (for Winograd) holds bytes: view as dtype_.
    if (src.md == plain_md_) return src.buf.view(dtype_).view(shape).clone();
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype_));
    reorder_into(src, Copy{plain_md_, out});
    return out;
}

}  // namespace ipex::kernels::detail
