#include "sweep.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "benchmark_run.h"
#include "sweep_layouts.h"

namespace ipex::launcher {
namespace {

constexpr double kDefaultSeconds = 10;

// The usable cores, SMT width and allocators, as the planner sees them under the user's own
// restrictions (--cores-list, --nodes-list, cgroups).
SweepMachine sweep_machine(const LaunchOptions& options, const PlanFor& plan_for) {
    LaunchOptions one = options;
    one.plan.ninstances = 1;
    one.plan.ncores_per_instance = {0};
    one.plan.latency_mode = one.plan.throughput_mode = false;
    one.plan.instance_idx.clear();
    one.plan.use_logical_cores = false;
    SweepMachine m;
    m.physical_cores = static_cast<int>(plan_for(one).instances.at(0).cpus.size());
    one.plan.use_logical_cores = true;
    const int cpus = static_cast<int>(plan_for(one).instances.at(0).cpus.size());
    m.threads_per_core = std::max(1, cpus / std::max(1, m.physical_cores));
    using allocator::MemoryAllocator;
    for (auto [kind, name] : {std::pair{MemoryAllocator::kTcmalloc, "tcmalloc"},
                              std::pair{MemoryAllocator::kJemalloc, "jemalloc"},
                              std::pair{MemoryAllocator::kDefault, "default"}}) {
        one.env.allocator = kind;
        if (plan_for(one).allocator == name) m.allocators.push_back(name);
    }
    return m;
}

LaunchOptions with_layout(const LaunchOptions& base, const Layout& l, const SweepMachine& m) {
    LaunchOptions o = base;
    o.plan.ninstances = l.ninstances;
    o.plan.ncores_per_instance = {cpus_per_instance(l, m)};
    o.plan.use_logical_cores = l.smt;
    o.plan.latency_mode = o.plan.throughput_mode = false;
    using allocator::MemoryAllocator;
    if (l.allocator == "tcmalloc") o.env.allocator = MemoryAllocator::kTcmalloc;
    if (l.allocator == "jemalloc") o.env.allocator = MemoryAllocator::kJemalloc;
    if (l.allocator == "default") o.env.allocator = MemoryAllocator::kDefault;
    if (o.benchmark.duration <= 0 && o.benchmark.iterations <= 0)
        o.benchmark.duration = kDefaultSeconds;
    return o;
}

SweepResult measure(const Layout& layout, const LaunchOptions& options,
                    const SupervisorOptions& supervise, const affinity::Topology& topology,
                    const PlanFor& plan_for, const std::vector<std::string>& argv) {
    SweepResult result;
    result.layout = layout;
    LaunchPlan plan;
    try {
        plan = plan_for(options);
    } catch (const std::invalid_argument& e) {
        result.problem = e.what();
        return result;
    }
    add_benchmark_environment(plan, options.benchmark);
    BenchmarkRun run;
    run.options = &options;
    run.topology = &topology;
    run.command = argv;
    run.print_table = false;
    run.chart = false;
    run.progress = true;
    if (!options.benchmark.report_dir.empty())
        run.report_dir = (std::filesystem::path(options.benchmark.report_dir) /
                          ("layout-" + layout_text(layout)))
                             .string();
    if (const std::string problem = prepare_report_dir(run.report_dir); !problem.empty()) {
        result.problem = problem;
        return result;
    }
    const BenchmarkOutcome outcome = run_benchmark(plan, supervise, run);
    const GroupStats total = total_stats(outcome.results);
    result.exit_code = outcome.exit_code;
    result.throughput = total.stats.throughput;
    result.p99_ms = total.stats.p99 * 1e3;
    if (outcome.exit_code != 0)
        result.problem = "exit code " + std::to_string(outcome.exit_code);
    else if (total.stats.batches == 0)
        result.problem = "no batches reported";
    result.ok = result.problem.empty();
    return result;
}

std::string results_table(const std::vector<SweepResult>& ranked, double budget_ms) {
    std::string out = "ipexrun: sweep, best first";
    out += budget_ms > 0 ? fmt::format(" (p99 budget {} ms)\n", budget_ms) : "\n";
    out += fmt::format("  {:>4}  {:<20}  {:>12}  {:>10}  {}\n", "rank", "layout", "samples/s",
                       "p99 ms", "note");
    for (std::size_t i = 0; i < ranked.size(); ++i) {
        const SweepResult& r = ranked[i];
        std::string note = r.ok ? (r.within_budget ? "" : "over the latency budget") : r.problem;
        out += fmt::format("  {:>4}  {:<20}  {:>12}  {:>10}  {}", i + 1, layout_text(r.layout),
                           r.ok ? fmt::format("{:.1f}", r.throughput) : "-",
                           r.ok ? fmt::format("{:.3f}", r.p99_ms) : "-", note);
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out += "\n";
    }
    return out;
}

}  // namespace

int run_sweep(const LaunchOptions& options, const SupervisorOptions& supervise,
              const affinity::Topology& topology, const PlanFor& plan_for,
              const std::vector<std::string>& argv) {
    SweepMachine machine;
    try {
        machine = sweep_machine(options, plan_for);
    } catch (const std::invalid_argument& e) {
        spdlog::error("{}", e.what());
        return 2;
    }
    const std::vector<Layout> layouts = options.benchmark.sweep_layouts.empty()
                                            ? generate_layouts(machine)
                                            : options.benchmark.sweep_layouts;
    std::vector<SweepResult> results;
    for (std::size_t i = 0; i < layouts.size(); ++i) {
        const LaunchOptions o = with_layout(options, layouts[i], machine);
        spdlog::info("sweep {}/{}: layout {} ({})", i + 1, layouts.size(), layout_text(layouts[i]),
                     o.benchmark.iterations > 0
                         ? std::to_string(o.benchmark.iterations) + " batches"
                         : fmt::format("{} s", o.benchmark.duration));
        results.push_back(measure(layouts[i], o, supervise, topology, plan_for, argv));
        const SweepResult& r = results.back();
        if (r.ok)
            spdlog::info("sweep {}/{}: {:.1f} samples/s, p99 {:.3f} ms", i + 1, layouts.size(),
                         r.throughput, r.p99_ms);
        else
            spdlog::warn("sweep {}/{}: layout {} failed: {}", i + 1, layouts.size(),
                         layout_text(layouts[i]), r.problem);
        if (r.exit_code == 128 + SIGINT || r.exit_code == 128 + SIGTERM ||
            r.exit_code == 128 + SIGHUP)
            break;  // the user stopped it: no further layouts
    }
    const double budget = options.benchmark.sweep_latency_budget_ms;
    const std::vector<SweepResult> ranked = rank_results(results, budget);
    std::cout << results_table(ranked, budget);

    std::vector<std::string> program = {options.program};
    program.insert(program.end(), options.program_args.begin(), options.program_args.end());
    if (ranked.empty() || !ranked.front().ok || !ranked.front().within_budget) {
        std::cout << (budget > 0 ? "no layout met the p99 budget\n" : "no layout succeeded\n");
        return 1;
    }
    std::cout << "best: "
              << layout_command(ranked.front().layout, machine,
                                strip_layout_options(options.option_args), program)
              << "\n";
    return 0;
}

}  // namespace ipex::launcher
