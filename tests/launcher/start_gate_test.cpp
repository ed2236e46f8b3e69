// The start gate between the launching ipexrun and its ranks, over loopback, and the host
// probes that decide it.
#include "start_gate.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "host_probe.h"
#include "process_test_util.h"

using namespace ipex::launcher;
using ipex::launcher::testing::TempDir;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Puts the gate's variables in this process's environment, as the MPI would for a rank.
void become_rank_of(const StartGate& gate, const std::string& key = "") {
    for (const auto& [name, value] : gate.variables())
        setenv(name.c_str(),
               name == kStartKeyVariable && !key.empty() ? key.c_str() : value.c_str(), 1);
}

std::string read_verdict(int fd) {
    std::string text;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') text += c;
    return text;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::string script(const TempDir& dir, const std::string& name, const std::string& body) {
    const std::string path = dir / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return path;
}

}  // namespace

TEST(StartGate, WithoutTheVariableARankStartsAtOnce) {
    unsetenv(kStartGateVariable);
    EXPECT_EQ(await_start(1000), "");
}

TEST(StartGate, ARankWaitsForTheCheckThenGoes) {
    StartGate gate("127.0.0.1", 2);
    gate.open_when(
        [] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            return std::string();
        },
        std::chrono::milliseconds(0));
    become_rank_of(gate);
    const auto start = Clock::now();
    EXPECT_EQ(await_start(10000), "");
    EXPECT_GE(seconds_since(start), 0.25);
    EXPECT_EQ(getenv(kStartGateVariable), nullptr);  // the program does not inherit them
    EXPECT_EQ(getenv(kStartKeyVariable), nullptr);
    EXPECT_EQ(read_verdict(gate.verdict_fd()), "go");
    become_rank_of(gate);  // a rank that comes after the verdict goes as well
    EXPECT_EQ(await_start(10000), "");
}

TEST(StartGate, WhenEveryRankHasComeTheCheckNeverRuns) {
    StartGate gate("127.0.0.1", 2);
    std::atomic<bool> checked{false};
    gate.open_when(
        [&checked] {
            checked = true;
            return std::string("the check should not have run");
        },
        std::chrono::seconds(5));
    const auto variables = gate.variables();
    const std::string address = variables.at(kStartGateVariable);
    const std::string key = variables.at(kStartKeyVariable);
    std::string answers[2];
    const auto start = Clock::now();
    std::thread first([&] { answers[0] = await_start(address, key, 10000); });
    std::thread second([&] { answers[1] = await_start(address, key, 10000); });
    first.join();
    second.join();
    EXPECT_EQ(answers[0], "");
    EXPECT_EQ(answers[1], "");
    EXPECT_LT(seconds_since(start), 4);
    EXPECT_EQ(read_verdict(gate.verdict_fd()), "go");
    EXPECT_FALSE(checked);
}

TEST(StartGate, AFailedCheckLetsNoRankStart) {
    StartGate gate("127.0.0.1", 2);
    gate.open_when(
        [] {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            return std::string("host 'n9' does not answer through ssh (exit 255)");
        },
        std::chrono::milliseconds(0));
    become_rank_of(gate);
    const std::string refused = await_start(10000);
    EXPECT_TRUE(contains(refused, "did not let this rank start")) << refused;
    EXPECT_EQ(read_verdict(gate.verdict_fd()), "host 'n9' does not answer through ssh (exit 255)");
    become_rank_of(gate);  // and none after it
    EXPECT_NE(await_start(10000), "");
}

TEST(StartGate, AWrongKeyNeitherOpensTheGateNorGetsGo) {
    StartGate gate("127.0.0.1", 1);
    gate.open_when([] { return std::string(); }, std::chrono::milliseconds(800));
    become_rank_of(gate, "not-the-key");
    EXPECT_NE(await_start(10000), "");  // hung up on
    pollfd verdict{gate.verdict_fd(), POLLIN, 0};
    EXPECT_EQ(poll(&verdict, 1, 0), 0);                // one rank was due, and none has come
    EXPECT_EQ(read_verdict(gate.verdict_fd()), "go");  // the check decided
}

TEST(HostProbe, AHostThatDoesNotAnswerIsNamedWithItsExitStatus) {
    TempDir dir;
    const std::string agent = script(dir, "agent", "[ \"$1\" = bad ] && exit 3; exit 0");
    EXPECT_EQ(probe_hosts({"good", "good2"}, agent), "");
    EXPECT_EQ(probe_hosts({"good", "bad"}, agent),
              "host 'bad' does not answer through " + agent + " (exit 3)");
}

TEST(HostProbe, ASlowHostIsKilledAtTheTimeLimit) {
    TempDir dir;
    const std::string agent = script(dir, "agent", "exec sleep 30");
    const auto start = Clock::now();
    const std::string failure = probe_hosts({"slow"}, agent, std::chrono::milliseconds(300));
    EXPECT_LT(seconds_since(start), 10);
    EXPECT_TRUE(contains(failure, "host 'slow' does not answer through")) << failure;
}

TEST(HostProbe, AnAgentThatCannotStartIsOneLine) {
    EXPECT_TRUE(
        contains(probe_hosts({"h"}, "/nonexistent/agent"), "cannot run /nonexistent/agent"));
}

// The launcher's supervisor reaps every child it sees (waitpid(-1)) while the probes run.
TEST(HostProbe, VerdictsSurviveAConcurrentReaper) {
    TempDir dir;
    const std::string agent = script(dir, "agent", "sleep 0.2; [ \"$1\" = bad ] && exit 4; exit 0");
    std::atomic<bool> stop{false};
    std::thread reaper([&stop] {
        while (!stop) {
            waitpid(-1, nullptr, WNOHANG);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    const std::string good = probe_hosts({"a", "b"}, agent);
    const std::string bad = probe_hosts({"a", "bad"}, agent);
    stop = true;
    reaper.join();
    EXPECT_EQ(good, "");
    EXPECT_EQ(bad, "host 'bad' does not answer through " + agent + " (exit 4)");
}
