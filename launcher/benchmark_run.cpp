#include "benchmark_run.h"

#include "distributed_report.h"
#include "host_name.h"

#include <limits.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "plan_builder.h"
#include "plan_json.h"
#include "report_collector.h"
#include "report_json.h"
#include "spawner.h"

extern char** environ;

namespace ipex::launcher {
namespace {

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string number_text(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
}

// The chart script: installed beside ipexrun (<prefix>/share/ipexrun), else in the sources
// this binary was built from.
std::string chart_script() {
    char self[PATH_MAX] = {};
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        std::filesystem::path prefix = std::filesystem::path(std::string(self, n)).parent_path();
        const auto installed = prefix.parent_path() / "share" / "ipexrun" / "report_chart.py";
        if (std::filesystem::exists(installed)) return installed;
    }
    return IPEX_REPORT_CHART_SOURCE;
}

bool write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) spdlog::error("cannot write {}", path.string());
    return static_cast<bool>(out);
}

// Runs `python report_chart.py DIR`; a missing matplotlib is a warning, not a failed run.
void draw_chart(const std::string& python, const std::string& dir) {
    if (python.empty()) {
        spdlog::warn("no Python interpreter to draw {}/report.png (use --python)", dir);
        return;
    }
    const std::string script = chart_script();
    std::vector<std::string> args = {python, script, dir};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
        spdlog::warn("cannot run {} to draw the chart", python);
        return;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        spdlog::warn("the chart {}/report.png was not drawn (see the message above)", dir);
}

nlohmann::ordered_json options_json(const BenchmarkOptions& o) {
    nlohmann::ordered_json j;
    j["report_dir"] = o.report_dir;
    j["duration_seconds"] = o.duration > 0 ? nlohmann::ordered_json(o.duration) : nullptr;
    j["iterations"] = o.iterations > 0 ? nlohmann::ordered_json(o.iterations) : nullptr;
    return j;
}

}  // namespace

void add_benchmark_environment(LaunchPlan& plan, const BenchmarkOptions& o) {
    for (auto& in : plan.instances) {
        in.env["IPEXRUN_REPORT_FD"] = std::to_string(kReportFd);
        if (o.duration > 0) in.env["IPEXRUN_BENCHMARK_DURATION"] = number_text(o.duration);
        if (o.iterations > 0) in.env["IPEXRUN_BENCHMARK_ITERATIONS"] = std::to_string(o.iterations);
    }
}

std::string prepare_report_dir(const std::string& dir) {
    if (dir.empty()) return "";
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return "cannot create --benchmark-report directory " + dir + ": " + error.message();
    if (access(dir.c_str(), W_OK) != 0)
        return "cannot write to --benchmark-report directory " + dir;
    return "";
}

std::string chart_python(const LaunchPlan& plan) {
    if (!plan.python.empty()) return plan.python;
    if (const char* env = std::getenv("IPEXRUN_PYTHON"); env && *env) return env;
    return this_install().build_python;
}

BenchmarkOutcome run_benchmark(const LaunchPlan& plan, const SupervisorOptions& supervise,
                               const BenchmarkRun& run) {
    BenchmarkOutcome outcome;
    CollectorSettings settings;
    settings.progress = run.progress && isatty(STDERR_FILENO);
    const std::string host = this_host_name();
    settings.node = host.empty() ? "localhost" : host;
    settings.listen_fd = run.listen_fd;
    settings.remote_ranks = run.remote_ranks;
    settings.rank_key = run.rank_key;
    const std::string started = utc_now();
    const auto began = std::chrono::steady_clock::now();
    try {
        ReportCollector collector(plan, settings);
        SupervisorOptions with_reports = supervise;
        with_reports.observer = &collector;
        if (run.listen_fd >= 0)  // ranks that cannot connect say so on the MPI's stderr
            with_reports.stderr_observer =
                [&collector, previous = supervise.stderr_observer](const std::string& line) {
                    if (previous) previous(line);
                    if (const auto rank = parse_unreachable_report(line))
                        collector.rank_unreachable(rank->first, rank->second);
                };
        collector.start();
        outcome.exit_code = run_plan(plan, with_reports);
        outcome.results = collector.finish();
        outcome.rejected_connections = collector.rejected_connections();
    } catch (const std::exception& e) {  // sockets or the thread refused
        spdlog::error("{}", e.what());
        outcome.exit_code = 1;
        return outcome;
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    if (run.print_table)
        std::cout << report_table(outcome.results, run.listen_fd >= 0 ? "rank" : "instance")
                  << std::flush;
    if (run.report_dir.empty()) return outcome;

    ReportContext context;
    context.command = run.command;
    context.started_utc = started;
    context.wall_seconds = wall;
    context.plan = nlohmann::ordered_json::parse(plan_to_json(plan));
    context.machine = machine_summary(*run.topology, settings.node);
    context.options = options_json(run.options->benchmark);
    context.rejected_connections = outcome.rejected_connections;
    const std::filesystem::path dir(run.report_dir);
    const bool written =
        write_file(dir / "report.json", report_document(context, outcome.results).dump(2) + "\n") &&
        write_file(dir / "latencies.csv", latencies_csv(outcome.results));
    if (!written) {
        if (outcome.exit_code == 0) outcome.exit_code = 1;
        return outcome;
    }
    draw_chart(chart_python(plan), run.report_dir);
    spdlog::info("benchmark report in {}/ (report.json, latencies.csv, report.png)",
                 run.report_dir);
    return outcome;
}

}  // namespace ipex::launcher
