// ipexrun: parse options, plan, then either print the plan or run it. Everything with an
// effect on the machine happens in the supervisor.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "benchmark_run.h"
#include "distributed_launch.h"
#include "distributed_plan.h"
#include "distributed_report.h"
#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/planner.h"
#include "ipex/affinity/topology.h"
#include "log_format.h"
#include "options.h"
#include "plan_builder.h"
#include "plan_json.h"
#include "pmi_abort.h"
#include "start_gate.h"
#include "supervisor.h"
#include "sweep.h"
#include "terminal_log_sink.h"
#include "topology_cache.h"

extern char** environ;

namespace {

// Longer than the launcher's host check takes (kHostProbeTimeout) even on a busy machine.
constexpr int kStartWaitMs = 60000;

ipex::allocator::Environment process_environment() {
    ipex::allocator::Environment env;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const auto eq = entry.find('=');
        if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    return env;
}

void setup_logging() {
    auto logger = std::make_shared<spdlog::logger>(
        "ipexrun", std::make_shared<ipex::launcher::TerminalLogSink>(STDERR_FILENO));
    logger->set_formatter(ipex::launcher::one_line_formatter("ipexrun: %^%l%$: %v"));
    // A closed terminal only loses the live view: no "LOG ERROR" lines about it.
    logger->set_error_handler([](const std::string&) {});
    spdlog::set_default_logger(logger);
}

int usage_error(const std::string& message) {
    spdlog::error("{}", message);
    return 2;
}

int run(int argc, char** argv) {
    using namespace ipex;
    launcher::ParseResult parsed = launcher::parse_options(argc, argv);
    if (!parsed.options) return parsed.exit_code;
    const launcher::LaunchOptions& options = *parsed.options;

    launcher::LaunchPlan plan;
    affinity::Topology topology;
    const auto env = process_environment();
    const launcher::PlanFor plan_for = [&](const launcher::LaunchOptions& o) {
        return launcher::build_launch_plan(o, topology, env, launcher::real_probes(env),
                                           launcher::this_install());
    };
    // A distributed launch hands this node's topology to its ranks: one hwloc load for all.
    const bool launches_ranks =
        options.dist.nnodes > 0 && !options.dist.rank_wrapper && !options.dry_run;
    try {
        topology = options.dist.rank_wrapper && options.topology_file.empty()
                       ? launcher::load_rank_topology(env)
                       : affinity::load_topology(options.topology_file, launches_ranks);
        if (!options.topology_file.empty() && !options.dry_run)
            return usage_error("--topology describes another machine; use it with --dry-run");
        if (!topology.this_machine && !options.dry_run)
            return usage_error(topology.source +
                               " describes another machine; use it with --dry-run (or set "
                               "HWLOC_THISSYSTEM=1 if it is this one)");
        if (options.dist.nnodes > 0 && !options.dist.rank_wrapper)
            return options.benchmark.collecting()
                       ? launcher::run_distributed_benchmark(options, topology, env,
                                                             launcher::run_distributed)
                       : launcher::run_distributed(options, topology, env);
        plan = plan_for(options);
        if (options.benchmark.collecting())
            launcher::add_benchmark_environment(plan, options.benchmark);
    } catch (const affinity::TopologyError& e) {
        return usage_error(e.what());
    } catch (const std::invalid_argument& e) {  // planner, environment and option errors
        return usage_error(e.what());
    }

    if (!options.dry_run && !options.dist.rank_wrapper)  // ranks leave the files to the launcher
        if (const std::string problem = launcher::prepare_report_dir(options.benchmark.report_dir);
            !problem.empty())
            return usage_error(problem);
    if (options.dry_run) {
        std::cout << launcher::plan_to_json(plan) << std::endl;
        return 0;
    }
    if (options.dist.rank_wrapper && !plan.instances.empty())  // whose message it is, per rank
        spdlog::default_logger()->set_formatter(
            launcher::one_line_formatter("ipexrun [" + plan.instances[0].label + "]: %^%l%$: %v"));
    // Started while the launcher may still be checking the other hosts: the program waits.
    if (options.dist.rank_wrapper)
        if (const std::string refused = launcher::await_start(kStartWaitMs); !refused.empty()) {
            spdlog::error("{}", refused);
            return 1;
        }
    launcher::SupervisorOptions supervise;
    supervise.log_dir = options.log_dir;
    supervise.log_prefix = options.log_prefix;
    supervise.keep_going = options.keep_going;
    supervise.grace = std::chrono::milliseconds(static_cast<long>(options.grace_seconds * 1000));
    const std::vector<std::string> command(argv, argv + argc);
    if (options.benchmark.sweep)
        return launcher::run_sweep(options, supervise, topology, plan_for, command);

    for (const auto& w : plan.warnings) spdlog::warn("{}", w);
    if (!plan.python.empty())
        spdlog::info("Python interpreter {} ({})", plan.python, plan.python_source);
    for (const auto& inst : plan.instances)
        spdlog::info(
            "{}CPUs {}; memory on node(s) {}; OMP_NUM_THREADS={}",
            options.dist.rank_wrapper ? "" : launcher::instance_name(inst) + ": ",
            affinity::format_id_list(inst.cpus),
            inst.memory_nodes.empty() ? "any" : affinity::format_id_list(inst.memory_nodes),
            inst.omp_num_threads);

    if (options.dist.rank_wrapper) {
        plan.summary = false;  // one table per rank would bury the output; failures are logged
        // The first rank to fail ends the job on every node with its code.
        supervise.on_failure = [env](int code) {
            spdlog::error("{}", launcher::rank_failure_message(code));
            launcher::abort_hydra_job(env, code);
        };
    }
    if (const char* address = std::getenv(launcher::kReportAddressVariable);
        options.dist.rank_wrapper && options.benchmark.collecting() && address) {
        const char* key = std::getenv(launcher::kReportKeyVariable);
        return launcher::run_reporting_rank(plan, supervise, address, key && *key ? key : "-");
    }
    if (options.benchmark.collecting()) {
        launcher::BenchmarkRun run;
        run.options = &options;
        run.topology = &topology;
        run.command = command;
        run.report_dir = options.benchmark.report_dir;
        run.progress = true;
        return launcher::run_benchmark(plan, supervise, run).exit_code;
    }
    return launcher::run_plan(plan, supervise);
}

// What the launcher printed itself (the plan, --help, --version) must have arrived: at exit
// the C library would flush it and drop the error.
int check_stdout(int code) {
    std::cout.flush();
    if (!std::cout.fail() && std::fflush(stdout) == 0) return code;
    const int error = errno;
    const std::string line = std::string("ipexrun: error: cannot write to stdout") +
                             (error ? std::string(": ") + std::strerror(error) : "") + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return code == 0 ? 1 : code;
}

}  // namespace

// No exception may end the launcher with an abort: whatever escapes is one line and exit 1.
int main(int argc, char** argv) {
    try {
        setup_logging();
        return check_stdout(run(argc, argv));
    } catch (const std::exception& e) {
        const std::string line = "ipexrun: error: " + ipex::launcher::error_text(e) + "\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
    } catch (...) {
        std::fputs("ipexrun: error: unexpected failure\n", stderr);
    }
    return 1;
}
