// run_plan with hand-built plans whose instances are small /bin/sh programs. The machine
// has at least CPUs 0 and 1 and NUMA node 0.
#include "supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "process_test_util.h"
#include "spawner.h"

using namespace ipex::launcher;
using ipex::launcher::testing::CaptureOutput;
using ipex::launcher::testing::files_in;
using ipex::launcher::testing::read_file;
using ipex::launcher::testing::TempDir;

namespace {

using Clock = std::chrono::steady_clock;

// The launcher's own messages go to stderr, as in ipexrun (spdlog's default is stdout), so
// that stdout holds the instances' output alone.
const bool g_logger_on_stderr = [] {
    spdlog::set_default_logger(spdlog::stderr_logger_st("supervisor-test"));
    return true;
}();

InstanceLaunch sh(int index, std::vector<int> cpus, const std::string& script,
                  std::vector<std::string> args = {}) {
    InstanceLaunch instance;
    instance.index = index;
    instance.cpus = std::move(cpus);
    instance.omp_num_threads = static_cast<int>(instance.cpus.size());
    instance.argv = {"/bin/sh", "-c", script, "sh"};
    instance.argv.insert(instance.argv.end(), args.begin(), args.end());
    return instance;
}

// Waits for the file $1 before going on to fail.
const std::string kFailWhenReady = "while [ ! -e \"$1\" ]; do sleep 0.02; done; ";

SupervisorOptions quick(std::chrono::milliseconds grace = std::chrono::milliseconds(300)) {
    SupervisorOptions options;
    options.grace = grace;
    return options;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The run's output, captured: what the terminal would have shown.
struct RunResult {
    int code = -1;
    std::string out, err;
    double seconds = 0;
};

RunResult run(const LaunchPlan& plan, const SupervisorOptions& options) {
    RunResult result;
    CaptureOutput capture;
    const auto start = Clock::now();
    result.code = run_plan(plan, options);
    result.seconds = seconds_since(start);
    capture.restore();
    result.out = capture.out();
    result.err = capture.err();
    return result;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The lines of one instance, prefix removed; every line of the text must carry a prefix.
std::vector<std::string> lines_of(const std::string& text, int index) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    const std::string prefix = "[" + std::to_string(index) + "] ";
    for (std::string line; std::getline(in, line);) {
        EXPECT_EQ(line[0], '[') << line;
        if (line.rfind(prefix, 0) == 0) lines.push_back(line.substr(prefix.size()));
    }
    return lines;
}

bool exists(const std::string& path) {
    return access(path.c_str(), F_OK) == 0;
}

// Alive = exists and is not a zombie.
bool alive(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty()) return false;
    const auto paren = stat.rfind(')');
    return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
}

std::string summary_row(const std::string& err, int index) {
    const auto table = err.find("ipexrun: summary");
    if (table == std::string::npos) return "";
    std::istringstream lines(err.substr(table));
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string first;
        if (words >> first && first == std::to_string(index)) return line;
    }
    return "";
}

}  // namespace

TEST(Supervisor, AllInstancesSucceed) {
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "exit 0"), sh(1, {1}, "true")};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(summary_row(r.err, 0), "exit 0")) << r.err;
    EXPECT_TRUE(contains(summary_row(r.err, 1), "exit 0")) << r.err;
}

TEST(Supervisor, FirstFailingCodeComesBackAndKeepGoingLetsTheOthersFinish) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "sleep 0.3; echo late > \"$1\"; exit 5", {tmp / "late"}),
                      sh(1, {1}, "exit 3")};
    SupervisorOptions options = quick();
    options.keep_going = true;
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 3) << r.err;
    EXPECT_EQ(read_file(tmp / "late"), "late\n");
    EXPECT_TRUE(contains(summary_row(r.err, 0), "exit 5")) << r.err;
    EXPECT_TRUE(contains(summary_row(r.err, 1), "exit 3 (first failure)")) << r.err;
}

TEST(Supervisor, FailureStopsTheOthersWithSigterm) {
    TempDir tmp;
    LaunchPlan plan;
    // Instance 1 fails only once instance 0 has set its trap and its sleep runs (a loaded
    // machine may be slow; a SIGTERM that meets the forked shell before it has exec'd sleep is
    // taken by the shell's trap, and sleep would then run on until the grace time).
    plan.instances = {
        sh(0, {0},
           "trap 'echo terminated > \"$1\"; exit 0' TERM; sleep 30 & "
           "until [ \"$(cat /proc/$!/comm 2>/dev/null)\" = sleep ]; do :; done; : > \"$2\"; wait",
           {tmp / "t", tmp / "ready"}),
        sh(1, {1}, kFailWhenReady + "exit 4", {tmp / "ready"})};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(10000)));
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_LT(r.seconds, 5.0);  // stopped, not waited for, nor killed after the grace time
    EXPECT_EQ(read_file(tmp / "t"), "terminated\n");
    EXPECT_TRUE(contains(r.err, "instance 1 failed (exit 4); stopping the others")) << r.err;
}

TEST(Supervisor, InstanceIgnoringSigtermIsKilledAfterTheGraceTime) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "trap '' TERM; : > \"$1\"; sleep 30", {tmp / "ready"}),
                      sh(1, {1}, kFailWhenReady + "exit 2", {tmp / "ready"})};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(300)));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_GE(r.seconds, 0.3);
    EXPECT_LT(r.seconds, 5.0);
    EXPECT_TRUE(contains(summary_row(r.err, 0), "killed by SIGKILL")) << r.err;
}

TEST(Supervisor, KilledInstanceGives128PlusSignal) {
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "kill -KILL $$"), sh(1, {1}, "true")};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 128 + SIGKILL) << r.err;
    EXPECT_TRUE(contains(summary_row(r.err, 0), "killed by SIGKILL")) << r.err;
}

TEST(Supervisor, SignalToTheLauncherIsForwardedAndDecidesTheExitCode) {
    LaunchPlan plan;
    // $PPID of the instance is the launcher, here the test process. The pause lets the
    // launcher start instance 1 first: a signal during start-up stops further starts.
    plan.instances = {sh(0, {0}, "sleep 0.3; kill -TERM $PPID; sleep 30"), sh(1, {1}, "sleep 30")};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(10000)));
    EXPECT_EQ(r.code, 128 + SIGTERM) << r.err;
    EXPECT_LT(r.seconds, 5.0);  // forwarded at once, not killed after the grace time
    EXPECT_TRUE(contains(summary_row(r.err, 0), "killed by SIGTERM")) << r.err;
    EXPECT_TRUE(contains(summary_row(r.err, 1), "killed by SIGTERM")) << r.err;
    // The handler is gone again: the test process still has its previous disposition.
    struct sigaction now {};
    sigaction(SIGTERM, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL);
}

// Starts a helper that leaves the instance's process group (setsid) and runs `helper` (sh
// code; $0 is the launcher), then waits until the helper has said it is ready in the file $1.
const std::string kEscapedHelper =
    "setsid sh -c \"$helper\" $PPID \"$1\" >/dev/null 2>&1 & echo $! > \"$2\"; "
    "until [ -e \"$1\" ]; do sleep 0.02; done; ";

// Runs `script` as instance 0 with kEscapedHelper's files and a 30 s grace period, and expects
// the second stop signal `second` to have ended it all at once (the first was SIGTERM).
RunResult expect_killed_at_once(const std::string& script, const std::string& second) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, script, {tmp / "ready", tmp / "helper", tmp / "forwarded"})};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(30000)));
    EXPECT_EQ(r.code, 128 + SIGTERM) << r.err;  // the first signal's
    EXPECT_LT(r.seconds, 10.0) << r.err;
    EXPECT_TRUE(
        contains(r.err, "received " + second + " while stopping; killing every instance now"))
        << r.err;
    const pid_t helper = std::atoi(read_file(tmp / "helper").c_str());
    EXPECT_GT(helper, 0);
    EXPECT_FALSE(helper > 0 && alive(helper));
    if (helper > 0 && alive(helper)) kill(helper, SIGKILL);
    return r;
}

// A second stop signal during the grace period (Ctrl-C twice) kills everything at once:
// the instance that ignores SIGTERM and its escaped helper do not get the 30 s.
TEST(Supervisor, ASecondStopSignalKillsEverythingAtOnce) {
    // The second signal is sent only once the first one has come back forwarded (two at once
    // could reach the launcher as one).
    const RunResult r = expect_killed_at_once(
        "helper='trap \"\" TERM; : > \"$1\"; exec sleep 60'; " + kEscapedHelper +
            "trap ': > \"$3\"' TERM; kill -TERM $PPID; "
            "until [ -e \"$3\" ]; do sleep 0.02; done; kill -INT $PPID; "
            "while :; do sleep 0.05; done",
        "SIGINT");
    EXPECT_TRUE(contains(summary_row(r.err, 0), "killed by SIGKILL")) << r.err;
    EXPECT_FALSE(contains(r.err, "did not stop within the grace period")) << r.err;
}

// The same while the launcher is ending what escaped the instances, after they are gone.
TEST(Supervisor, ASecondStopSignalDuringTheLastSweepKillsAtOnce) {
    // The helper answers the sweep's SIGTERM with the second stop signal and goes on.
    const RunResult r = expect_killed_at_once(
        "helper='trap \"kill -TERM $0\" TERM; : > \"$1\"; while :; do sleep 0.05; done'; " +
            kEscapedHelper + "trap 'exit 0' TERM; kill -TERM $PPID; while :; do sleep 0.05; done",
        "SIGTERM");
    EXPECT_TRUE(contains(r.err, "stopped 1 process")) << r.err;
}

TEST(Supervisor, HelpersOfAnInstanceDoNotSurviveIt) {
    TempDir tmp;
    LaunchPlan plan;
    // One helper stays in the instance's process group, one escapes it with setsid; both
    // would outlive their instance without the launcher.
    plan.instances = {
        sh(0, {0}, "sleep 60 >/dev/null 2>&1 & echo $! > \"$1\"; exit 0", {tmp / "in_group"}),
        sh(1, {1}, "setsid sleep 60 >/dev/null 2>&1 & echo $! > \"$1\"; sleep 0.2; exit 0",
           {tmp / "escaped"})};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0) << r.err;
    const pid_t in_group = std::atoi(read_file(tmp / "in_group").c_str());
    const pid_t escaped = std::atoi(read_file(tmp / "escaped").c_str());
    ASSERT_GT(in_group, 0);
    ASSERT_GT(escaped, 0);
    EXPECT_FALSE(alive(in_group));
    EXPECT_FALSE(alive(escaped));
}

// Like multiprocessing's resource tracker: a helper that notices its parent is gone, cleans
// up and exits. It gets the time to do so, and nobody signals it.
TEST(Supervisor, LeftoverHelperThatEndsByItselfIsLeftToFinish) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0},
                         "main=$$; (while kill -0 $main 2>/dev/null; do sleep 0.02; done; "
                         "sleep 0.1; : > \"$1\") >/dev/null 2>&1 & exit 0",
                         {tmp / "cleaned_up"})};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(exists(tmp / "cleaned_up")) << r.err;
    EXPECT_FALSE(contains(r.err, "SIGTERM")) << r.err;
}

// Runs one instance whose helper writes the file $1 when SIGTERM reaches it, and expects the
// run to end well before its 10 s grace period with `message` among the launcher's lines.
static void expect_helper_terminated(const std::string& script, const std::string& message) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, script, {tmp / "terminated"})};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(10000)));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(exists(tmp / "terminated")) << r.err;
    EXPECT_LT(r.seconds, 5.0);  // ended by SIGTERM, not after the grace period
    EXPECT_TRUE(contains(r.err, message)) << r.err;
}

TEST(Supervisor, LeftoverHelperGetsSigtermBeforeSigkill) {
    expect_helper_terminated(
        "(trap ': > \"$1\"; exit 0' TERM; sleep 30 & wait) >/dev/null 2>&1 & exit 0",
        "instance 0 left processes running; sending them SIGTERM");
}

TEST(Supervisor, LeftoverIgnoringSigtermIsKilledAfterTheGracePeriod) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0},
                         "(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & "
                         "echo $! > \"$1\"; exit 0",
                         {tmp / "pid"})};
    const RunResult r = run(plan, quick(std::chrono::milliseconds(300)));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_GE(r.seconds, 0.8);  // the leftover wait, then the grace period
    EXPECT_LT(r.seconds, 5.0);
    EXPECT_FALSE(alive(std::atoi(read_file(tmp / "pid").c_str())));
    EXPECT_TRUE(contains(r.err, "did not stop within the grace period; killing them")) << r.err;
}

TEST(Supervisor, EscapedHelperGetsSigtermToo) {
    expect_helper_terminated(
        "setsid sh -c 'trap \": > \\\"$0\\\"; exit 0\" TERM; sleep 30 & wait' \"$1\" "
        ">/dev/null 2>&1 & sleep 0.2; exit 0",
        "that had left the instances' process groups");
}

TEST(Supervisor, OutputIsPrefixedLineByLineWithTheInstanceIndex) {
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "echo one; printf 'two\\nthree'; echo oops >&2"),
                      sh(1, {1}, "echo other")};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0);
    // Lines of different instances may interleave, never the text within a line.
    EXPECT_EQ(lines_of(r.out, 0), (std::vector<std::string>{"one", "two", "three"})) << r.out;
    EXPECT_EQ(lines_of(r.out, 1), std::vector<std::string>{"other"}) << r.out;
    EXPECT_TRUE(contains(r.err, "[0] oops\n")) << r.err;
    EXPECT_FALSE(contains(r.out, "oops"));
}

TEST(Supervisor, ArgumentsReachTheProgramUntouched) {
    const std::vector<std::string> args = {"two words", "it's", "a;b", "\"quoted\"",
                                           "$HOME",     "*",    "",    "back\\slash"};
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "for a in \"$@\"; do printf '<%s>\\n' \"$a\"; done", args)};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0);
    std::string expected;
    for (const auto& a : args) expected += "[0] <" + a + ">\n";
    EXPECT_TRUE(contains(r.out, expected)) << r.out;
}

TEST(Supervisor, PlanEnvironmentIsAppliedOnTopOfTheLaunchers) {
    setenv("IPEX_SV_INHERITED", "from parent", 1);
    setenv("IPEX_SV_REPLACED", "old", 1);
    LaunchPlan plan;
    plan.instances = {sh(0, {0},
                         "echo \"$IPEX_SV_INHERITED|$IPEX_SV_REPLACED|$IPEX_SV_NEW\"; env | grep "
                         "-c '^IPEX_SV_REPLACED='")};
    plan.instances[0].env = {{"IPEX_SV_REPLACED", "new"}, {"IPEX_SV_NEW", "a b;c"}};
    const RunResult r = run(plan, quick());
    unsetenv("IPEX_SV_INHERITED");
    unsetenv("IPEX_SV_REPLACED");
    EXPECT_EQ(r.code, 0);
    EXPECT_TRUE(contains(r.out, "[0] from parent|new|a b;c\n[0] 1\n")) << r.out;
}

TEST(Supervisor, DirectBindingSetsEachInstancesCpus) {
    LaunchPlan plan;
    const std::string script = "grep Cpus_allowed_list /proc/self/status";
    plan.instances = {sh(0, {1}, script), sh(1, {0}, script)};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0);
    EXPECT_TRUE(contains(r.out, "[0] Cpus_allowed_list:\t1\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "[1] Cpus_allowed_list:\t0\n")) << r.out;
}

TEST(Supervisor, NoBindingLeavesTheLaunchersCpus) {
    cpu_set_t mine;
    ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
    LaunchPlan plan;
    plan.bind = BindMethod::kNone;
    plan.instances = {sh(0, {1}, "nproc")};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "[0] " + std::to_string(CPU_COUNT(&mine)) + "\n") << r.out;
}

TEST(Supervisor, MemoryPolicyIsTheOneTheProbeChose) {
    LaunchPlan plan;
    plan.instances = {
        sh(0, {0}, "grep -m1 -o -E ' (default|bind|prefer)[^ ]*' /proc/self/numa_maps")};
    plan.instances[0].memory_nodes = {0};
    const MemoryPolicyChoice choice = choose_memory_policy(plan);
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0) << r.err;
    const char* expected = choice.policy == MemoryPolicy::kBind        ? "[0]  bind:0\n"
                           : choice.policy == MemoryPolicy::kPreferred ? "[0]  prefer:0\n"
                                                                       : "[0]  default\n";
    EXPECT_EQ(r.out, expected);
    // At most one warning for the whole launch, never one per instance.
    EXPECT_EQ(choice.warning.empty(), !contains(r.err, "NUMA"));
}

TEST(Supervisor, MissingProgramIsExitCode127WithAOneLineMessage) {
    LaunchPlan plan;
    InstanceLaunch missing;
    missing.cpus = {0};
    missing.argv = {"/nonexistent/ipexrun-prog", "x"};
    plan.instances = {missing};
    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 127);
    EXPECT_TRUE(contains(
        r.err,
        "[0] ipexrun: cannot execute '/nonexistent/ipexrun-prog': No such file or directory\n"))
        << r.err;
}

TEST(Supervisor, ProgramFoundOnPathAndNonExecutableFileIs126) {
    TempDir tmp;
    { std::ofstream(tmp / "plain") << "echo never\n"; }
    LaunchPlan plan;
    InstanceLaunch on_path = sh(0, {0}, "");
    on_path.argv = {"echo", "found on PATH"};
    InstanceLaunch plain = sh(1, {1}, "");
    plain.argv = {tmp / "plain"};
    plan.instances = {on_path, plain};
    SupervisorOptions options = quick();
    options.keep_going = true;
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 126);
    EXPECT_TRUE(contains(r.out, "[0] found on PATH\n")) << r.out;
    EXPECT_TRUE(contains(r.err, "cannot execute '" + (tmp / "plain") + "': Permission denied"))
        << r.err;
}

TEST(Supervisor, LogFilesPerRunNeverOverwriteAnEarlierRun) {
    TempDir tmp;
    { std::ofstream(tmp / "earlier.txt") << "not ours"; }
    SupervisorOptions options = quick();
    options.log_dir = tmp.path();
    options.log_prefix = "bench";
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "echo \"run $1 instance 0\"; echo warn >&2", {"A"}),
                      sh(1, {1}, "echo \"run $1 instance 1\"", {"A"})};
    ASSERT_EQ(run(plan, options).code, 0);
    plan.instances[0].argv.back() = "B";
    plan.instances[1].argv.back() = "B";
    ASSERT_EQ(run(plan, options).code, 0);

    const auto names = files_in(tmp.path());
    ASSERT_EQ(names.size(), 7u);  // earlier.txt + 2 runs × (launcher + 2 instances)
    EXPECT_EQ(read_file(tmp / "earlier.txt"), "not ours");
    std::vector<std::string> contents0, contents1, launchers;
    for (const auto& name : names) {
        if (contains(name, "_instance_0_cpus_0.log")) contents0.push_back(read_file(tmp / name));
        if (contains(name, "_instance_1_cpus_1.log")) contents1.push_back(read_file(tmp / name));
        if (contains(name, "_launcher.log")) launchers.push_back(read_file(tmp / name));
        EXPECT_EQ(name.rfind("bench_", 0) == 0, name != "earlier.txt") << name;
    }
    ASSERT_EQ(contents0.size(), 2u);
    ASSERT_EQ(contents1.size(), 2u);
    ASSERT_EQ(launchers.size(), 2u);
    std::sort(contents0.begin(), contents0.end());
    EXPECT_EQ(contents0[0], "run A instance 0\nwarn\n");
    EXPECT_EQ(contents0[1], "run B instance 0\nwarn\n");
    std::sort(contents1.begin(), contents1.end());
    EXPECT_EQ(contents1[0], "run A instance 1\n");
    EXPECT_EQ(contents1[1], "run B instance 1\n");
    for (const auto& text : launchers) {
        EXPECT_TRUE(contains(text, "ipexrun: summary")) << text;
        EXPECT_TRUE(contains(text, "instance 0: command: /bin/sh -c")) << text;
    }
}

TEST(Supervisor, UnusableLogDirectoryStopsBeforeStartingAnything) {
    TempDir tmp;
    { std::ofstream(tmp / "file") << "x"; }
    SupervisorOptions options = quick();
    options.log_dir = tmp / "file";
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "echo started > \"$1\"", {tmp / "started"})};
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(read_file(tmp / "started"), "");
}

TEST(Supervisor, RefusedMemoryPolicyFallsBackWithOneWarningForTheWholeLaunch) {
    // No machine here has node 63: the kernel refuses both bind and preferred for it,
    // the way a container refuses set_mempolicy altogether.
    LaunchPlan plan;
    const std::string script = "grep -m1 -o -E ' (default|bind|prefer)[^ ]*' /proc/self/numa_maps";
    plan.instances = {sh(0, {0}, script), sh(1, {1}, script)};
    plan.instances[0].memory_nodes = {63};
    plan.instances[1].memory_nodes = {63};
    const MemoryPolicyChoice choice = choose_memory_policy(plan);
    EXPECT_EQ(choice.policy, MemoryPolicy::kNone);
    EXPECT_TRUE(contains(choice.warning, "instances run without memory binding")) << choice.warning;

    const RunResult r = run(plan, quick());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "[0]  default\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "[1]  default\n")) << r.out;
    const std::string all = r.out + r.err;
    std::size_t warnings = 0;
    for (auto at = all.find("NUMA memory policy refused"); at != std::string::npos;
         at = all.find("NUMA memory policy refused", at + 1))
        ++warnings;
    EXPECT_EQ(warnings, 1u) << all;
    EXPECT_TRUE(contains(summary_row(r.err, 0), "63 (not bound)")) << r.err;
}

TEST(Supervisor, NumactlAndTasksetPlansAreNotProbedNorBoundAgain) {
    LaunchPlan plan;
    plan.bind = BindMethod::kTaskset;
    plan.instances = {sh(0, {1}, "nproc")};
    plan.instances[0].memory_nodes = {63};
    EXPECT_EQ(choose_memory_policy(plan).policy, MemoryPolicy::kNone);
    EXPECT_EQ(choose_memory_policy(plan).warning, "");
    cpu_set_t mine;
    ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
    const RunResult r = run(plan, quick());  // the prefix would do the binding; there is none
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "[0] " + std::to_string(CPU_COUNT(&mine)) + "\n") << r.out;
}

TEST(Supervisor, EmptyPlanIsAnErrorNotACrash) {
    const RunResult r = run(LaunchPlan{}, quick());
    EXPECT_EQ(r.code, 1);
    EXPECT_TRUE(contains(r.err, "the plan has no instances")) << r.err;
}

TEST(Supervisor, InstancesInheritOnlyTheStandardDescriptors) {
    TempDir tmp;
    SupervisorOptions options = quick();
    options.log_dir = tmp.path();  // the launcher's own log file is open during the run
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "ls /proc/self/fd")};  // ls itself opens one to list them
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out, 0), (std::vector<std::string>{"0", "1", "2", "3"})) << r.out;
}

namespace {

// Writes `verdict` (nothing, then closes, if it is empty) to the start verdict pipe once the
// file `ready` exists, and tells whether the terminal (our fd 1, a capture file) showed
// any instance output before that.
class VerdictWriter {
  public:
    VerdictWriter(std::string ready, std::string verdict) {
        if (pipe(fds_) != 0) throw std::runtime_error("pipe");
        thread_ = std::thread([this, ready = std::move(ready), verdict = std::move(verdict)] {
            while (access(ready.c_str(), F_OK) != 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            shown_before_ = read_file("/proc/self/fd/1");
            if (!verdict.empty() && write(fds_[1], verdict.data(), verdict.size()) < 0) return;
            close(fds_[1]);
        });
    }
    ~VerdictWriter() {
        if (thread_.joinable()) thread_.join();
        close(fds_[0]);
    }
    int fd() const { return fds_[0]; }
    std::string shown_before() {
        thread_.join();
        return shown_before_;
    }

  private:
    int fds_[2] = {-1, -1};
    std::thread thread_;
    std::string shown_before_;
};

// Runs `plan` with the verdict written once its file `ready` exists; `went` tells whether
// on_go was called.
struct VerdictRun {
    RunResult result;
    bool went = false;
    std::string shown_before;
};

VerdictRun run_with_verdict(const LaunchPlan& plan, const std::string& ready,
                            const std::string& verdict_line) {
    VerdictRun out;
    VerdictWriter verdict(ready, verdict_line);
    SupervisorOptions options = quick();
    options.start_verdict_fd = verdict.fd();
    options.on_go = [&out] { out.went = true; };
    out.result = run(plan, options);
    out.shown_before = verdict.shown_before();
    return out;
}

}  // namespace

TEST(Supervisor, OutputWaitsForTheStartVerdictAndGoLetsItThrough) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "echo early; : > \"$1\"; sleep 0.5; echo late", {tmp / "ready"})};
    const VerdictRun v = run_with_verdict(plan, tmp / "ready", "go\n");
    EXPECT_EQ(v.result.code, 0) << v.result.err;
    EXPECT_TRUE(v.went);
    EXPECT_FALSE(contains(v.shown_before, "early"));
    EXPECT_TRUE(contains(v.result.out, "[0] early\n[0] late\n")) << v.result.out;
}

TEST(Supervisor, ARefusingVerdictStopsTheInstancesAndIsTheOnlyLine) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {
        sh(0, {0}, "echo early; echo complaint >&2; : > \"$1\"; sleep 30", {tmp / "ready"}),
        sh(1, {1}, "sleep 30")};
    const VerdictRun v =
        run_with_verdict(plan, tmp / "ready", "host 'n9' does not answer through ssh (exit 255)\n");
    const RunResult& r = v.result;
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_FALSE(v.went);
    EXPECT_LT(r.seconds, 10);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(contains(r.err, "error] host 'n9' does not answer through ssh (exit 255)\n"))
        << r.err;
}

TEST(Supervisor, AVerdictStreamEndingWithoutGoRefuses) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, ": > \"$1\"; echo early; sleep 30", {tmp / "ready"})};
    const VerdictRun v = run_with_verdict(plan, tmp / "ready", "");
    EXPECT_EQ(v.result.code, 1);
    EXPECT_FALSE(v.went);
    EXPECT_EQ(v.result.out, "");
    EXPECT_TRUE(contains(v.result.err, "refused before it started")) << v.result.err;
}

TEST(Supervisor, AnInstanceThatEndsBeforeTheVerdictIsReportedAfterIt) {
    TempDir tmp;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "echo said; : > \"$1\"; exit 3", {tmp / "ready"})};
    const VerdictRun v = run_with_verdict(plan, tmp / "ready", "go\n");
    EXPECT_EQ(v.result.code, 3) << v.result.err;
    EXPECT_FALSE(contains(v.shown_before, "said"));
    EXPECT_TRUE(contains(v.result.out, "[0] said\n")) << v.result.out;
    EXPECT_TRUE(contains(v.result.err, "failed (exit 3)")) << v.result.err;
}

// An observer (the benchmark collector) that fails while instances already run ends the
// supervision with an exception: what was started must not outlive it.
TEST(Supervisor, AnErrorWhileInstancesRunLeavesNothingRunning) {
    TempDir tmp;
    // Fails once instance 0 has said who it and its escaped helper are.
    struct FailsOnSecondStart : InstanceObserver {
        std::string ready;
        void started(std::size_t instance) override {
            if (instance != 1) return;
            const auto deadline = Clock::now() + std::chrono::seconds(10);
            while (!exists(ready) && Clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            throw std::runtime_error("observer failed");
        }
    } observer;
    observer.ready = tmp / "ready";
    LaunchPlan plan;
    plan.instances = {sh(0, {0},
                         "setsid sleep 60 >/dev/null 2>&1 & echo $! > \"$1\"; echo $$ > \"$2\"; "
                         ": > \"$3\"; wait",
                         {tmp / "escaped", tmp / "instance", tmp / "ready"}),
                      sh(1, {1}, "echo $$ > \"$1\"; exec sleep 60", {tmp / "second"})};
    SupervisorOptions options = quick();
    options.observer = &observer;
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "observer failed")) << r.err;
    const pid_t escaped = std::atoi(read_file(tmp / "escaped").c_str());
    const pid_t instance = std::atoi(read_file(tmp / "instance").c_str());
    ASSERT_GT(escaped, 0);
    ASSERT_GT(instance, 0);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while ((alive(escaped) || alive(instance)) && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(alive(escaped));
    EXPECT_FALSE(alive(instance));
    const pid_t second = std::atoi(read_file(tmp / "second").c_str());
    EXPECT_FALSE(second > 0 && alive(second));
    for (const pid_t pid : {escaped, instance, second})
        if (pid > 0 && alive(pid)) kill(pid, SIGKILL);
}

TEST(Supervisor, RunningOutOfMemoryWhileInstancesRunIsSaidSo) {
    struct FailsToAllocate : InstanceObserver {
        void started(std::size_t) override { throw std::bad_alloc(); }
    } observer;
    LaunchPlan plan;
    plan.instances = {sh(0, {0}, "exec sleep 60")};
    SupervisorOptions options = quick();
    options.observer = &observer;
    const RunResult r = run(plan, options);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "out of memory; ending every instance now")) << r.err;
    EXPECT_LT(r.seconds, 5.0) << r.err;
}
