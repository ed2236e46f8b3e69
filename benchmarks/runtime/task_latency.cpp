// Round trip of a trivial call: submit, run on another thread, get the result.
//   Task on a pinned TaskExecutor (worker kept between calls) vs std::async (a new thread per
//   call, the usual baseline), and a Task whose worker sits on the caller's own CPU.
// Target: Task round trip <= 20 us.
#include <benchmark/benchmark.h>

#include <future>

#include "ipex/runtime/cpu_pool.h"
#include "ipex/runtime/task.h"

namespace rt = ipex::runtime;

namespace {

int add_one(int x) {
    return x + 1;
}

void BM_TaskRoundTrip(benchmark::State& state) {
    const auto& cpus = rt::allowed_cpus();
    int cpu = cpus[static_cast<std::size_t>(state.range(0)) % cpus.size()];
    rt::Task task(add_one, std::make_shared<rt::TaskExecutor>(rt::CPUPool({cpu})));
    int x = 0;
    for (auto _ : state) x = task(x).get();
    benchmark::DoNotOptimize(x);
    state.SetLabel("worker on CPU " + std::to_string(cpu));
}
// Worker on the first and on the second allowed CPU.
BENCHMARK(BM_TaskRoundTrip)->Arg(0)->Arg(1)->UseRealTime();

void BM_StdAsyncRoundTrip(benchmark::State& state) {
    int x = 0;
    for (auto _ : state) x = std::async(std::launch::async, add_one, x).get();
    benchmark::DoNotOptimize(x);
}
BENCHMARK(BM_StdAsyncRoundTrip)->UseRealTime();

void BM_TaskBurst(benchmark::State& state) {
    // 64 outstanding calls, then all results: the cost per call when the queue is kept busy.
    rt::Task task(add_one,
                  std::make_shared<rt::TaskExecutor>(rt::CPUPool({rt::allowed_cpus().back()})));
    std::vector<std::future<int>> futures(64);
    for (auto _ : state) {
        for (int i = 0; i < 64; ++i) futures[i] = task(i);
        for (auto& f : futures) benchmark::DoNotOptimize(f.get());
    }
    state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_TaskBurst)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
