// The collector's TCP side, as the launching ipexrun of a multi-node run uses it: real
// connections on 127.0.0.1 play the ranks' wrappers, and strangers.
#include "report_collector.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "distributed_report.h"
#include "report_link.h"

using namespace ipex::launcher;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One connection to the collector's port.
class Peer {
  public:
    explicit Peer(int port) : fd_(connect_within("127.0.0.1", std::to_string(port), 5000)) {}
    ~Peer() { hang_up(); }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    bool connected() const { return fd_ >= 0; }
    void say(const std::string& text) { ASSERT_TRUE(send_all(fd_, text, 5000)); }
    void hang_up() {
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
    }
    // What arrives within the time (up to a line); "" when nothing did.
    std::string hear(milliseconds within) {
        std::string got;
        const auto deadline = Clock::now() + within;
        char c;
        while (got.find('\n') == std::string::npos && Clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
            if (poll(&p, 1, static_cast<int>(left.count()) + 1) != 1) break;
            if (read(fd_, &c, 1) != 1) break;
            got += c;
        }
        return got;
    }
    // True once the collector has closed its end (a reset when it left bytes unread).
    bool closed_by_collector(milliseconds within) {
        pollfd p{fd_, POLLIN, 0};
        char c;
        return poll(&p, 1, static_cast<int>(within.count())) == 1 && read(fd_, &c, 1) <= 0;
    }

  private:
    int fd_;
};

struct RemoteRun {
    LaunchPlan plan;  // the MPI launcher, which reports nothing itself
    ReportListener listener{"127.0.0.1"};
    CollectorSettings settings;
    explicit RemoteRun(std::size_t ranks) {
        plan.instances.emplace_back();
        settings.listen_fd = listener.fd();
        settings.remote_ranks = ranks;
        settings.rank_key = "k3y";
        settings.hello_timeout = milliseconds(300);
        settings.drain_timeout = milliseconds(500);
    }
};

const InstanceResult* rank_result(const std::vector<InstanceResult>& results, int rank) {
    for (const auto& r : results)
        if (r.index == rank) return &r;
    return nullptr;
}

TEST(ReportCollectorRemote, StrangersAreRefusedAndCountedRanksAreKept) {
    RemoteRun run(2);
    ReportCollector collector(run.plan, run.settings);
    collector.start();
    const int port = run.listener.port();

    Peer rank0(port), rank1(port);
    rank0.say("hello n1 0 0-1 k3y\nm model tiny\nready\n");
    rank1.say("hello n2 1 2-3 k3y\nready\n");
    // Both said hello and ready: the barrier lets them go, so both are known by now.
    EXPECT_EQ(rank0.hear(milliseconds(5000)), "go\n");
    EXPECT_EQ(rank1.hear(milliseconds(5000)), "go\n");

    Peer http(port), long_line(port), wrong_key(port), silent(port), outsider(port),
        duplicate(port), frame(port);
    http.say("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    frame.say("b 1000000\n" + std::string(65536, '\1'));
    long_line.say(std::string(100000, 'x'));
    wrong_key.say("hello n2 1 0 guess\n");
    outsider.say("hello n9 7 0 k3y\n");
    duplicate.say("hello n1 0 0-1 k3y\nr 1000 1\n");
    for (Peer* p : {&http, &long_line, &wrong_key, &silent, &outsider, &duplicate, &frame})
        EXPECT_TRUE(p->closed_by_collector(milliseconds(5000)));

    rank0.say("r 2 0.5\nr 2 0.25\nbogus line\nend\nexit 0 exit 0\n");
    rank1.say("r 4 0.125\nb 1\n");  // then half a frame, and the node goes down
    rank1.say(std::string(8, '\0'));
    rank1.hang_up();
    rank0.hang_up();

    const auto results = collector.finish();
    EXPECT_EQ(collector.rejected_connections(), 7u);
    ASSERT_EQ(results.size(), 2u);
    const InstanceResult* r0 = rank_result(results, 0);
    ASSERT_NE(r0, nullptr);
    EXPECT_EQ(r0->node, "n1");
    EXPECT_EQ(r0->cpus, "0-1");
    EXPECT_EQ(r0->connected_from, "127.0.0.1");
    EXPECT_EQ(r0->status, "exit 0");
    EXPECT_TRUE(r0->reported_end);
    EXPECT_FALSE(r0->crashed());
    EXPECT_EQ(r0->records.size(), 2u);  // not the duplicate's 1000 samples
    EXPECT_EQ(r0->samples(), 4);
    EXPECT_EQ(r0->malformed, 1u);
    EXPECT_EQ(r0->meta.at("model"), "tiny");

    const InstanceResult* r1 = rank_result(results, 1);
    ASSERT_NE(r1, nullptr);
    EXPECT_EQ(r1->node, "n2");
    EXPECT_EQ(r1->status, "connection lost");
    EXPECT_TRUE(r1->crashed());
    EXPECT_FALSE(r1->reported_end);
    EXPECT_EQ(r1->records.size(), 1u);  // what had arrived whole is kept
    EXPECT_EQ(r1->malformed, 1u);       // the cut frame
}

TEST(ReportCollectorRemote, ARankThatCannotConnectIsNotWaitedFor) {
    RemoteRun run(3);
    run.settings.missing_rank_grace = milliseconds(60000);
    ReportCollector collector(run.plan, run.settings);
    collector.start();
    Peer rank0(run.listener.port()), rank2(run.listener.port());
    rank0.say("hello n1 0 0 k3y\nready\n");
    rank2.say("hello n2 2 0 k3y\nready\n");
    EXPECT_EQ(rank0.hear(milliseconds(300)), "");  // rank 1 may still come
    collector.rank_unreachable(1, "n2");           // its warning line was seen
    EXPECT_EQ(rank0.hear(milliseconds(5000)), "go\n");
    EXPECT_EQ(rank2.hear(milliseconds(5000)), "go\n");
    rank0.say("r 1 0.1\nend\nexit 0 exit 0\n");
    rank2.say("r 1 0.1\nend\nexit 0 exit 0\n");
    rank0.hang_up();
    rank2.hang_up();
    const auto results = collector.finish();
    ASSERT_EQ(results.size(), 3u);
    const InstanceResult* missing = rank_result(results, 1);
    ASSERT_NE(missing, nullptr);
    EXPECT_EQ(missing->status, "could not connect");
    EXPECT_EQ(missing->node, "n2");
    EXPECT_FALSE(missing->started);
    EXPECT_TRUE(missing->records.empty());
    EXPECT_EQ(rank_result(results, 2)->status, "exit 0");
}

TEST(ReportCollectorRemote, MissingRanksAreGivenUpAfterTheGrace) {
    RemoteRun run(2);
    run.settings.missing_rank_grace = milliseconds(400);
    ReportCollector collector(run.plan, run.settings);
    collector.start();
    Peer rank0(run.listener.port());
    const auto before = Clock::now();
    rank0.say("hello n1 0 0 k3y\nready\n");
    EXPECT_EQ(rank0.hear(milliseconds(10000)), "go\n");
    EXPECT_GE(Clock::now() - before, milliseconds(350));
    rank0.say("end\nexit 0 exit 0\n");
    rank0.hang_up();
    const auto results = collector.finish();
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(rank_result(results, 1)->status, "never connected");
    EXPECT_EQ(rank_result(results, 1)->node, "?");
}

TEST(ReportCollectorRemote, TheUnreachableWarningNamesRankAndNode) {
    const std::string line = "ipexrun [rank 12 n2]: warning: " +
                             unreachable_report_message("10.0.0.1:4000", "No route to host");
    const auto who = parse_unreachable_report(line);
    ASSERT_TRUE(who.has_value());
    EXPECT_EQ(who->first, 12);
    EXPECT_EQ(who->second, "n2");
    EXPECT_FALSE(parse_unreachable_report("[rank 1 n2] " + line).has_value());  // program output
    EXPECT_FALSE(parse_unreachable_report("ipexrun [rank x n2]: warning: " +
                                          unreachable_report_message("a:1", "b"))
                     .has_value());
}

TEST(ReportLink, TheAddressFacingPeersIsThisMachinesOwn) {
    EXPECT_EQ(address_facing({"127.0.0.1"}), "127.0.0.1");
    EXPECT_EQ(address_facing({}), "");
    EXPECT_EQ(address_facing({"no-such-host.invalid"}), "");
    EXPECT_EQ(random_key().size(), 32u);
    EXPECT_NE(random_key(), random_key());
}

}  // namespace
