#include "ipex/affinity/rank_share.h"

#include <gtest/gtest.h>

#include <set>

#include "ipex/affinity/cpu_list.h"
#include "test_topologies.h"

using namespace ipex::affinity;
using ipex::testing::test_topology;

namespace {

const Topology& two_by_28() {
    static const Topology t = load_topology(test_topology("xeon-2s28c2t.xml"));
    return t;
}

std::vector<std::vector<int>> shares(const Topology& t, const PlanRequest& base, int size) {
    std::vector<std::vector<int>> out;
    for (int r = 0; r < size; ++r) {
        const Plan p = plan_rank_share(t, base, r, size);
        EXPECT_EQ(p.instances.size(), 1u);
        EXPECT_EQ(p.instances.at(0).index, r);
        out.push_back(p.instances.at(0).cpus);
    }
    return out;
}

std::set<int> usable_cores(const Topology& t, bool logical) {
    PlanRequest all;
    all.use_logical_cores = logical;
    const Plan p = plan_instances(t, all);
    return {p.instances.at(0).cpus.begin(), p.instances.at(0).cpus.end()};
}

}  // namespace

// The property the co-located ranks rely on, on every topology and rank count that fits:
// the shares are disjoint, never empty, and together they are exactly the usable CPUs.
TEST(RankShare, DisjointAndCoveringOnEveryTopology) {
    int checked = 0;
    for (const auto& file : ipex::testing::all_topologies()) {
        const Topology t = load_topology(file);
        for (bool logical : {false, true}) {
            PlanRequest base;
            base.use_logical_cores = logical;
            std::set<int> expected;
            try {
                expected = usable_cores(t, logical);
            } catch (const PlanError&) {
                continue;  // e.g. only E-cores allowed
            }
            for (int size : {1, 2, 3, 4, 7, 8}) {
                if (static_cast<std::size_t>(size) > expected.size()) continue;
                SCOPED_TRACE(file + " ranks=" + std::to_string(size) +
                             " logical=" + std::to_string(logical));
                std::set<int> seen;
                std::size_t total = 0;
                for (const auto& cpus : shares(t, base, size)) {
                    EXPECT_FALSE(cpus.empty());
                    total += cpus.size();
                    seen.insert(cpus.begin(), cpus.end());
                }
                EXPECT_EQ(total, seen.size()) << "shares overlap";
                EXPECT_EQ(seen, expected) << "shares do not cover the node";
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 50);
}

TEST(RankShare, TwoRanksOnTwoSocketsTakeOneSocketEach) {
    const auto s = shares(two_by_28(), {}, 2);
    EXPECT_EQ(format_id_list(s[0]), "0-27");
    EXPECT_EQ(format_id_list(s[1]), "28-55");
    EXPECT_EQ(plan_rank_share(two_by_28(), {}, 1, 2).instances[0].nodes, std::vector<int>{1});
}

TEST(RankShare, OddRankCountsStayInsideNumaNodesAndUseEveryCore) {
    const auto s = shares(two_by_28(), {}, 3);
    // One node holds one rank, the other two (14 cores each): nothing crosses a node.
    EXPECT_EQ(format_id_list(s[0]), "0-27");
    EXPECT_EQ(format_id_list(s[1]), "28-41");
    EXPECT_EQ(format_id_list(s[2]), "42-55");
}

TEST(RankShare, FixedSizeGivesEveryRankThatManyCores) {
    PlanRequest base;
    base.ncores_per_instance = {4};
    const auto s = shares(two_by_28(), base, 2);
    EXPECT_EQ(s[0].size(), 4u);
    EXPECT_EQ(s[1].size(), 4u);
    EXPECT_TRUE(std::set<int>(s[0].begin(), s[0].end()).count(s[1][0]) == 0);
}

TEST(RankShare, NodesListRestrictsTheShares) {
    PlanRequest base;
    base.nodes_list = {1};
    const auto s = shares(two_by_28(), base, 2);
    EXPECT_EQ(format_id_list(s[0]), "28-41");
    EXPECT_EQ(format_id_list(s[1]), "42-55");
}

TEST(RankShare, MoreRanksThanCpusShareRoundRobinWithAWarning) {
    PlanRequest base;
    base.cores_list = {4, 5};
    const Plan p0 = plan_rank_share(two_by_28(), base, 0, 3);
    const Plan p2 = plan_rank_share(two_by_28(), base, 2, 3);
    EXPECT_EQ(p0.instances[0].cpus, std::vector<int>{4});
    EXPECT_EQ(p2.instances[0].cpus, std::vector<int>{4});
    EXPECT_EQ(plan_rank_share(two_by_28(), base, 1, 3).instances[0].cpus, std::vector<int>{5});
    ASSERT_FALSE(p0.warnings.empty());
    EXPECT_NE(p0.warnings.back().find("ranks share CPUs"), std::string::npos);
}

TEST(RankShare, RankOutOfRangeIsRefused) {
    EXPECT_THROW(plan_rank_share(two_by_28(), {}, 2, 2), PlanError);
    EXPECT_THROW(plan_rank_share(two_by_28(), {}, -1, 2), PlanError);
    EXPECT_THROW(plan_rank_share(two_by_28(), {}, 0, 0), PlanError);
}

TEST(CclSplit, FirstCoresGoToOneCclAndTheRestToOpenMp) {
    const CclSplit s = split_for_ccl(two_by_28(), parse_id_list("0-27"), 4, false);
    EXPECT_EQ(format_id_list(s.ccl_cpus), "0-3");
    EXPECT_EQ(format_id_list(s.omp_cpus), "4-27");
    EXPECT_EQ(format_id_list(s.all_cpus), "0-27");
}

TEST(CclSplit, LogicalCoresForCclUseSmtSiblingsAndKeepEveryCoreForOpenMp) {
    // On this machine CPU n's sibling is n + 56.
    const CclSplit s = split_for_ccl(two_by_28(), parse_id_list("28-55"), 2, true);
    EXPECT_EQ(format_id_list(s.ccl_cpus), "84-85");
    EXPECT_EQ(format_id_list(s.omp_cpus), "28-55");
    EXPECT_EQ(format_id_list(s.all_cpus), "28-55,84-85");
}

TEST(CclSplit, SmtSiblingsForCclComeFromTheGivenCpusOnly) {
    const CclSplit s = split_for_ccl(two_by_28(), {0, 1}, 1, true, {0, 1, 56});
    EXPECT_EQ(format_id_list(s.ccl_cpus), "56");
    EXPECT_THROW(split_for_ccl(two_by_28(), {0, 1}, 2, true, {0, 1, 56}), PlanError);
}

TEST(CclSplit, NoWorkersLeavesTheShareAlone) {
    const CclSplit s = split_for_ccl(two_by_28(), {0, 1}, 0, false);
    EXPECT_TRUE(s.ccl_cpus.empty());
    EXPECT_EQ(s.omp_cpus, (std::vector<int>{0, 1}));
}

TEST(CclSplit, TooManyWorkersIsAPlanError) {
    try {
        split_for_ccl(two_by_28(), {0, 1}, 2, false);
        FAIL() << "expected PlanError";
    } catch (const PlanError& e) {
        EXPECT_NE(std::string(e.what()).find("leaves no core for OpenMP"), std::string::npos);
    }
    EXPECT_THROW(split_for_ccl(two_by_28(), {0, 1}, -1, false), PlanError);
    // Siblings already in the share are not free.
    EXPECT_THROW(split_for_ccl(two_by_28(), {0, 56}, 1, true), PlanError);
}
