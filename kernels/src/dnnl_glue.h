// Shared plumbing between ATen tensors and oneDNN: engine/stream, descriptors, dtype
// choice with the bf16 fallback, packed weight copies and oneDNN error translation.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <dnnl.hpp>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ipex::kernels::detail {

const dnnl::engine& cpu_engine();
dnnl::stream& thread_stream();  // one per calling thread

dnnl::memory::data_type to_dnnl(c10::ScalarType t);
// Descriptor with the tensor's sizes and strides (any PyTorch layout, no copy).
dnnl::memory::desc md_of(const at::Tensor& t);
dnnl::memory wrap(const dnnl::memory::desc& md, const at::Tensor& t);
// Scratchpad for a primitive built with scratchpad_mode::user: the calling thread's reusable
// buffer, valid until this thread's next kernel call.
at::Tensor alloc_scratchpad(const dnnl::memory::desc& md);

// True for the types the kernels compute in (float32, bfloat16); layers of other types keep
// their weight as given and run on ATen.
bool kernel_dtype(c10::ScalarType t);

// True where oneDNN computes in type t itself on this CPU: float32, and bfloat16 only with
// native support. The activation-only ops (batch matmul, softmax, layer norm) run on ATen
// elsewhere.
bool onednn_computes_in(c10::ScalarType t);

// float32 / bfloat16 compute type for a requested dtype; bfloat16 becomes float32 with a
// single warning where the CPU lacks native bf16.
c10::ScalarType compute_dtype(c10::ScalarType requested, const char* op);

std::string shape_str(c10::IntArrayRef s);

// Cache keys as raw bytes (no formatting: they are built on every kernel call).
class KeyBuilder {
  public:
    KeyBuilder& add(int64_t v) {
        s_.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    KeyBuilder& add(double v) {
        s_.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    KeyBuilder& add(const std::string& v) {
        add(static_cast<int64_t>(v.size()));
        s_.append(v);
        return *this;
    }
    KeyBuilder& add(const dnnl::memory::desc& md);  // type, dims and strides
    const std::string& str() const { return s_; }

  private:
    std::string s_;
};

// Rethrows a dnnl::error as a c10::Error that names the op and describes the call.
[[noreturn]] void rethrow_dnnl(const char* op, const std::string& call, const dnnl::error& e);

// A built primitive and the scratchpad it wants (scratchpad_mode::user).
struct PrimitiveEntry {
    dnnl::primitive prim;
    dnnl::memory::desc scratch_md;
    bool unsupported = false;  // oneDNN has no kernel for this call: the reference runs
};

// Runs `prim` on the calling thread's stream with a scratchpad from alloc_scratchpad and
// waits; a oneDNN error becomes a c10::Error naming `op` and `call()`.
template <class Describe>
void run_primitive(const char* op, Describe&& call, const PrimitiveEntry& entry,
                   std::unordered_map<int, dnnl::memory> args);

// True for a layout without inner blocks (each dimension at a stride), as PyTorch's tensors
// are: a primitive that wants one can read a tensor as it is.
bool is_plain_layout(const dnnl::memory::desc& md);

// The primitive descriptor make(wanted) gives (`wanted`: the weight in format_tag::any), or,
// where that one wants the weight in a plain layout, make(given) if the same implementation
// takes the weight in the plain layout it is given: the kernel then reads the caller's
// weight as it is and no copy is made (e.g. gemm-based matmul reading an (N, K) weight
// transposed). With `prefer_given` (a caller that would rather not have a copy than the
// fastest layout) make(given) wins whenever an optimised implementation takes it, even where
// make(wanted) would pack the weight into blocks (e.g. AVX-512 brgemm).
template <class Make>
auto reading_weight_as_given(Make&& make, const dnnl::memory::desc& wanted,
                             const dnnl::memory::desc& given, bool prefer_given) {
    if (prefer_given) {
        try {
            auto as_given = make(given);
            if (std::string(as_given.impl_info_str()).rfind("ref", 0) != 0) return as_given;
        } catch (const dnnl::error&) {
            // no kernel for the given strides: as without the preference
        }
    }
    auto pd = make(wanted);
    const dnnl::memory::desc chosen = pd.weights_desc();
    if (!is_plain_layout(chosen) || chosen == given) return pd;
    try {
        auto as_given = make(given);
        if (std::string(as_given.impl_info_str()) == pd.impl_info_str()) return as_given;
    } catch (const dnnl::error&) {
        // no kernel for the given strides: the copy in the wanted layout it is
    }
    return pd;
}

// The weight of one layer in every layout some primitive asked for. Copies are made once
// per layout and kept (a thread-count change may need another); the plain source copy is
// released once a packed one exists, so steady state holds one copy of the weight. A
// primitive that reads the plain source layout (get(plain_md())) gets the source itself: the
// tensor the layer was built from, shared and not copied.
class PackedWeights {
  public:
    PackedWeights(at::Tensor plain, dnnl::memory::desc plain_md);
    struct Copy {
        dnnl::memory::desc md;
        at::Tensor buf;  // owns the bytes
    };
    Copy get(const dnnl::memory::desc& md);
    // Reorders back into the plain layout (a fresh tensor of `shape`).
    at::Tensor unpack(c10::IntArrayRef shape) const;
    const dnnl::memory::desc& plain_md() const { return plain_md_; }

  private:
    const Copy& source() const;  // the newest copy oneDNN can reorder from (not Winograd)

    dnnl::memory::desc plain_md_;
    c10::ScalarType dtype_;
    std::vector<Copy> copies_;
    bool keep_plain_ = false;  // set by the first Winograd copy
    mutable std::mutex mu_;
};

// Per-context primitive cache keyed by a string (shapes, dtype, post-ops, thread count).
template <class Entry>
class EntryCache {
  public:
    // Looks `key` up (the key includes `threads`); on a miss calls make(), and reports a cache
    // invalidation when the miss comes with a team size different from the previous call's.
    template <class Make>
    std::shared_ptr<Entry> get(const std::string& key, int threads, Make&& make);
    int64_t size() const;

  private:
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, std::shared_ptr<Entry>>> entries_;
    int last_threads_ = -1;
};

void note_thread_change();
// OpenMP team size of the calling thread (part of every cache key).
int omp_threads();

template <class Entry>
template <class Make>
std::shared_ptr<Entry> EntryCache<Entry>::get(const std::string& key, int threads, Make&& make) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool threads_changed = last_threads_ != -1 && last_threads_ != threads;
    last_threads_ = threads;
    for (auto& kv : entries_)
        if (kv.first == key) return kv.second;
    if (threads_changed) note_thread_change();  // a new entry because the team size changed
    auto e = std::make_shared<Entry>(make());
    constexpr size_t kMaxEntries = 32;  // many input shapes: drop the oldest
    if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());
    entries_.emplace_back(key, e);
    return e;
}

template <class Describe>
void run_primitive(const char* op, Describe&& call, const PrimitiveEntry& entry,
                   std::unordered_map<int, dnnl::memory> args) {
    at::Tensor scratch = alloc_scratchpad(entry.scratch_md);
    args.emplace(DNNL_ARG_SCRATCHPAD, wrap(entry.scratch_md, scratch));
    try {
        entry.prim.execute(thread_stream(), args);
        thread_stream().wait();
    } catch (const dnnl::error& err) {
        rethrow_dnnl(op, call(), err);
    }
}

template <class Entry>
int64_t EntryCache<Entry>::size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(entries_.size());
}

}  // namespace ipex::kernels::detail
