// Round trip of a trivial call: submit, run on another thread, get the result.
//   Task on a pinned TaskExecutor (worker kept between calls) vs std::async (a new thread per
//   call, the usual baseline), and a Task whose worker sits on the caller's own CPU.
// Target: Task round trip <= 20 us.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <vector>

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

// The console table, then the ratio the target is about, from the same run.
class RatioReporter : public benchmark::ConsoleReporter {
  public:
    RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs)
            if (run.run_type == Run::RT_Iteration)
                ns_[run.benchmark_name()] = run.GetAdjustedRealTime();
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        const double async_ns = ns_["BM_StdAsyncRoundTrip/real_time"];
        for (const char* name : {"BM_TaskRoundTrip/0/real_time", "BM_TaskRoundTrip/1/real_time"}) {
            const double task_ns = ns_[name];
            if (task_ns <= 0 || async_ns <= 0) continue;
            std::printf("%s: %.1f us (target <= 20 us: %s), %.1fx faster than std::async\n", name,
                        task_ns / 1e3, task_ns <= 20e3 ? "met" : "NOT met", async_ns / task_ns);
        }
    }

  private:
    std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
