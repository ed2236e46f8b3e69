// --sweep's pure parts: which layouts to try, how to rank what they measured, and the exact
// ipexrun command that reproduces the winner.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipex::launcher {

struct Layout {
    int ninstances = 1;
    int cores_per_instance = 1;  // physical cores
    bool smt = false;            // the cores' SMT siblings too
    std::string allocator;       // "" = ipexrun's usual choice, else tcmalloc/jemalloc/default

    bool operator==(const Layout& o) const {
        return ninstances == o.ninstances && cores_per_instance == o.cores_per_instance &&
               smt == o.smt && allocator == o.allocator;
    }
};

// "NxC[+smt][:allocator]", e.g. "2x4", "1x8+smt", "4x2:jemalloc". Throws
// std::invalid_argument naming the problem.
Layout parse_layout(const std::string& text);
std::string layout_text(const Layout& layout);
// Comma-separated layouts ("2x4, 1x8+smt"); at least one.
std::vector<Layout> parse_layout_list(const std::string& text);

// What the sweep may use on this machine.
struct SweepMachine {
    int physical_cores = 1;               // usable ones
    int threads_per_core = 1;             // > 1 with SMT
    std::vector<std::string> allocators;  // found ones, e.g. {"tcmalloc", "jemalloc", "default"}
};

// Every way of splitting all the cores into equal instances (N divides the core count),
// each with and without SMT siblings (when there are any), under each allocator.
std::vector<Layout> generate_layouts(const SweepMachine& machine);

// The --ncores-per-instance value of a layout: CPUs when SMT siblings are used, else cores.
int cpus_per_instance(const Layout& layout, const SweepMachine& machine);

struct SweepResult {
    Layout layout;
    bool ok = false;        // every instance ran and reported batches
    std::string problem;    // why not ok, one line
    int exit_code = 0;      // the run's
    double throughput = 0;  // samples/s, all instances together
    double p99_ms = 0;      // of the merged latencies
    bool within_budget = true;
};

// Best first: successful layouts within the latency budget (budget_ms <= 0: no budget) by
// throughput, then those over it by p99, then the failed ones. Marks within_budget.
std::vector<SweepResult> rank_results(std::vector<SweepResult> results, double budget_ms);

// The launcher's own arguments (argv[1..] up to, not including, the program) without the
// sweep options and without those a layout sets (instance count and sizes, SMT, allocator,
// the latency/throughput presets), in every spelling.
std::vector<std::string> strip_layout_options(const std::vector<std::string>& launcher_args);

// "ipexrun <kept options> --ninstances N --ncores-per-instance C [...] <program> <args>",
// quoted for a POSIX shell.
std::string layout_command(const Layout& layout, const SweepMachine& machine,
                           const std::vector<std::string>& kept_options,
                           const std::vector<std::string>& program_and_args);

}  // namespace ipex::launcher
