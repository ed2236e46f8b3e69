// MultiStreamModule: runs a TorchScript module as S streams on S slices of a CPUPool. Each
// call splits its inputs into S micro-batches, runs them concurrently (one pinned
// TaskExecutor per stream, weights shared) and concatenates the outputs.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <vector>

#include "ipex/runtime/cpu_pool.h"
#include "ipex/runtime/stream_split.h"

namespace ipex::runtime {

class TaskExecutor;

class MultiStreamModule {
  public:
    struct Options {
        int num_streams = 0;  // 0: one stream per CPU of the pool ("AUTO")
        // Per-argument split dims (see stream_split.h); ignored when `split` is set.
        c10::IValue input_split_hint = int64_t{0};
        c10::IValue output_concat_hint = int64_t{0};
        bool concat_output = true;  // false: forward returns the list of per-stream outputs
        SplitFn split;              // custom input split (e.g. split_embedding_bag)
        ConcatFn concat;            // custom output concatenation
    };

    // Throws std::invalid_argument for a stream count outside 1..pool.size().
    MultiStreamModule(torch::jit::Module module, CPUPool pool, Options options);
    MultiStreamModule(torch::jit::Module module, CPUPool pool)
        : MultiStreamModule(std::move(module), std::move(pool), Options{}) {}
    ~MultiStreamModule();

    // Safe to call from several threads at once: all per-call state lives in the call.
    c10::IValue forward(const std::vector<c10::IValue>& inputs);

    int num_streams() const { return static_cast<int>(streams_.size()); }
    const std::vector<CPUPool>& stream_pools() const { return pools_; }

  private:
    torch::jit::Module module_;
    Options options_;
    std::vector<CPUPool> pools_;
    std::vector<std::shared_ptr<TaskExecutor>> streams_;
};

}  // namespace ipex::runtime
