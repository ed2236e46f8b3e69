#include "rank_env.h"

#include <gtest/gtest.h>

using namespace ipex::launcher;
using Env = ipex::allocator::Environment;

TEST(RankEnv, HydraRanksAndTheirNode) {
    const auto r = rank_from_launcher(
        {{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, "MPICH hydra");
    EXPECT_EQ(r->rank, 3);
    EXPECT_EQ(r->world_size, 4);
    EXPECT_EQ(r->local_rank, 1);
    EXPECT_EQ(r->local_world_size, 2);
    EXPECT_EQ(r->node_rank, 1);
    EXPECT_EQ(r->nnodes, 2);
}

TEST(RankEnv, OpenMpiWinsOverHydraLookalikes) {
    const auto r = rank_from_launcher({{"OMPI_COMM_WORLD_RANK", "2"},
                                       {"OMPI_COMM_WORLD_SIZE", "6"},
                                       {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                                       {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"},
                                       {"PMI_RANK", "0"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, "Open MPI");
    EXPECT_EQ(r->node_rank, 0);
    EXPECT_EQ(r->nnodes, 2);
}

TEST(RankEnv, EachMpiReadsTheSameWayAndNamesItsBadVariable) {
    struct Names {
        std::string source, rank, size, local_rank, local_size;
    };
    const Names mpis[] = {
        {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
         "OMPI_COMM_WORLD_LOCAL_SIZE"},
        {"MPICH hydra", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
    };
    for (const Names& n : mpis) {
        Env env = {{n.rank, "5"}, {n.size, "6"}, {n.local_rank, "1"}, {n.local_size, "2"}};
        const auto r = rank_from_launcher(env);
        ASSERT_TRUE(r) << n.source;
        EXPECT_EQ(r->source, n.source);
        EXPECT_EQ(r->rank, 5);
        EXPECT_EQ(r->world_size, 6);
        EXPECT_EQ(r->local_rank, 1);
        EXPECT_EQ(r->local_world_size, 2);
        EXPECT_EQ(r->node_rank, 2);
        EXPECT_EQ(r->nnodes, 3);
        for (const std::string& name : {n.rank, n.size, n.local_rank, n.local_size}) {
            Env bad = env;
            bad[name] = "-1x";
            try {
                rank_from_launcher(bad);
                ADD_FAILURE() << "no error for a bad $" << name;
            } catch (const RankEnvError& e) {
                EXPECT_NE(std::string(e.what()).find("$" + name + " "), std::string::npos)
                    << e.what();
            }
        }
        // Without the global variables only the node is shared: rank = local rank.
        env.erase(n.rank);
        const auto local = local_rank_from_env(env);
        ASSERT_TRUE(local) << n.source;
        EXPECT_EQ(local->source, n.source);
        EXPECT_EQ(local->rank, 1);
        EXPECT_EQ(local->world_size, 2);
        EXPECT_FALSE(rank_from_launcher(env)) << n.source;
    }
}

TEST(RankEnv, HydraInsideASlurmAllocationIsHydra) {
    // Hydra's proxies are srun tasks, so its ranks inherit SLURM_PROCID of their proxy.
    const auto r = rank_from_launcher({{"PMI_RANK", "2"},
                                       {"PMI_SIZE", "4"},
                                       {"MPI_LOCALRANKID", "0"},
                                       {"MPI_LOCALNRANKS", "2"},
                                       {"SLURM_JOB_ID", "7"},
                                       {"SLURM_STEP_ID", "0"},
                                       {"SLURM_PROCID", "1"},
                                       {"SLURM_NTASKS", "2"},
                                       {"SLURM_LOCALID", "0"},
                                       {"SLURM_NTASKS_PER_NODE", "1"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, "MPICH hydra");
    EXPECT_EQ(r->rank, 2);
}

TEST(RankEnv, SlurmTasksUseTheStepLayout) {
    const Env env = {{"SLURM_JOB_ID", "7"},         {"SLURM_STEP_ID", "0"},
                     {"SLURM_PROCID", "4"},         {"SLURM_NTASKS", "5"},
                     {"SLURM_LOCALID", "0"},        {"SLURM_NODEID", "2"},
                     {"SLURM_STEP_NUM_NODES", "3"}, {"SLURM_STEP_TASKS_PER_NODE", "2(x2),1"}};
    const auto r = rank_from_launcher(env);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, "Slurm");
    EXPECT_EQ(r->rank, 4);
    EXPECT_EQ(r->local_world_size, 1);
    EXPECT_EQ(r->node_rank, 2);
    EXPECT_EQ(r->nnodes, 3);
}

TEST(RankEnv, ASlurmBatchScriptIsNotATask) {
    const Env batch = {{"SLURM_JOB_ID", "7"}, {"SLURM_PROCID", "0"},
                       {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"},
                       {"SLURM_NODEID", "0"}, {"SLURM_NTASKS_PER_NODE", "2"}};
    EXPECT_FALSE(rank_from_launcher(batch));
    EXPECT_FALSE(local_rank_from_env(batch));
}

TEST(RankEnv, TasksOnNode) {
    EXPECT_EQ(tasks_on_node("2(x3),1", 0), 2);
    EXPECT_EQ(tasks_on_node("2(x3),1", 2), 2);
    EXPECT_EQ(tasks_on_node("2(x3),1", 3), 1);
    EXPECT_FALSE(tasks_on_node("2(x3),1", 4));
    EXPECT_EQ(tasks_on_node("4", 0), 4);
    EXPECT_FALSE(tasks_on_node("x", 0));
    EXPECT_FALSE(tasks_on_node("2(y3)", 0));
    EXPECT_FALSE(tasks_on_node("", 0));
}

// strtol's wrap-around and leniency made these a silently different layout.
TEST(RankEnv, TasksOnNodeRefusesCountsNoIntHolds) {
    EXPECT_FALSE(tasks_on_node("99999999999(x2)", 0));   // was 1215752191 tasks
    EXPECT_FALSE(tasks_on_node("2(x4294967297),1", 2));  // repeat wrapped to 1: node 2 had 1
    EXPECT_FALSE(tasks_on_node("2(x99999999999999999999)", 0));
    EXPECT_FALSE(tasks_on_node(" 2", 0));
    EXPECT_FALSE(tasks_on_node("+2", 0));
    EXPECT_FALSE(tasks_on_node("2(x+3)", 0));
    EXPECT_FALSE(tasks_on_node("2(x)", 0));
    EXPECT_EQ(tasks_on_node("2(x2147483647)", 2147483646), 2);
    EXPECT_EQ(tasks_on_node("2147483647", 0), 2147483647);
}

TEST(RankEnv, LocalRankFromEachLauncher) {
    const std::pair<Env, std::string> cases[] = {
        {{{"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}}, "torchrun"},
        {{{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}, "Open MPI"},
        {{{"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}}, "MPICH hydra"},
        {{{"SLURM_LOCALID", "1"}, {"SLURM_NTASKS_PER_NODE", "2"}}, "Slurm"},
    };
    for (const auto& [env, source] : cases) {
        const auto r = local_rank_from_env(env);
        ASSERT_TRUE(r) << source;
        EXPECT_EQ(r->source, source);
        EXPECT_EQ(r->local_rank, 1);
        EXPECT_EQ(r->local_world_size, 2);
    }
    EXPECT_FALSE(local_rank_from_env({{"LOCAL_RANK", "1"}}));
    EXPECT_FALSE(local_rank_from_env({}));
}

TEST(RankEnv, BadValuesNameTheVariable) {
    try {
        local_rank_from_env({{"LOCAL_RANK", "one"}, {"LOCAL_WORLD_SIZE", "2"}});
        FAIL() << "expected RankEnvError";
    } catch (const RankEnvError& e) {
        EXPECT_NE(std::string(e.what()).find("$LOCAL_RANK"), std::string::npos);
    }
    EXPECT_THROW(local_rank_from_env({{"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}),
                 RankEnvError);
    EXPECT_THROW(local_rank_from_env({{"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "0"}}),
                 RankEnvError);
    EXPECT_THROW(rank_from_launcher({{"PMI_RANK", "9"},
                                     {"PMI_SIZE", "4"},
                                     {"MPI_LOCALRANKID", "0"},
                                     {"MPI_LOCALNRANKS", "2"}}),
                 RankEnvError);
}

TEST(RankEnv, TorchrunContract) {
    RankInfo r;
    r.rank = 3;
    r.world_size = 4;
    r.local_rank = 1;
    r.local_world_size = 2;
    r.node_rank = 1;
    r.nnodes = 2;
    const auto env = torchrun_environment(r, "10.0.0.1", 29600);
    EXPECT_EQ(env.at("RANK"), "3");
    EXPECT_EQ(env.at("WORLD_SIZE"), "4");
    EXPECT_EQ(env.at("LOCAL_RANK"), "1");
    EXPECT_EQ(env.at("LOCAL_WORLD_SIZE"), "2");
    EXPECT_EQ(env.at("GROUP_RANK"), "1");
    EXPECT_EQ(env.at("GROUP_WORLD_SIZE"), "2");
    EXPECT_EQ(env.at("ROLE_RANK"), "3");
    EXPECT_EQ(env.at("ROLE_WORLD_SIZE"), "4");
    EXPECT_EQ(env.at("ROLE_NAME"), "default");
    EXPECT_EQ(env.at("MASTER_ADDR"), "10.0.0.1");
    EXPECT_EQ(env.at("MASTER_PORT"), "29600");
    EXPECT_EQ(env.at("TORCHELASTIC_RESTART_COUNT"), "0");
    EXPECT_EQ(env.count("TORCHELASTIC_RUN_ID"), 1u);
}
