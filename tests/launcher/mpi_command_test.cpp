#include "mpi_command.h"

#include <gtest/gtest.h>

using namespace ipex::launcher;
using Args = std::vector<std::string>;

namespace {

MpiJob two_by_two(MpiKind kind, const std::string& program) {
    MpiJob job;
    job.mpi = {kind, program};
    job.nnodes = 2;
    job.ppn = 2;
    job.hosts = {"10.9.0.1", "10.9.0.2"};
    job.rank_argv = {"/opt/ipexrun", "--rank-wrapper", "--", "prog"};
    return job;
}

}  // namespace

TEST(ChooseMpi, AutoPrefersSrunInAnAllocationThenHydraThenOpenMpi) {
    const MpiPrograms all{"/usr/bin/mpiexec.hydra", "/usr/bin/mpiexec.openmpi", "/usr/bin/srun"};
    EXPECT_EQ(choose_mpi(MpiChoice::kAuto, all, true).kind, MpiKind::kSlurm);
    EXPECT_EQ(choose_mpi(MpiChoice::kAuto, all, false).kind, MpiKind::kHydra);
    EXPECT_EQ(choose_mpi(MpiChoice::kAuto, {std::nullopt, "/x/mpiexec.openmpi", std::nullopt}, true)
                  .program,
              "/x/mpiexec.openmpi");
    EXPECT_EQ(choose_mpi(MpiChoice::kOpenMpi, all, true).kind, MpiKind::kOpenMpi);
}

TEST(ChooseMpi, AMissingMpiIsOneLine) {
    try {
        choose_mpi(MpiChoice::kHydra, {}, false);
        FAIL();
    } catch (const DistributedError& e) {
        EXPECT_EQ(std::string(e.what()), "--mpi hydra: mpiexec.hydra is not on PATH");
    }
    EXPECT_THROW(choose_mpi(MpiChoice::kAuto, {}, false), DistributedError);
    EXPECT_THROW(choose_mpi(MpiChoice::kSlurm, {"/h", "/o", std::nullopt}, true), DistributedError);
}

TEST(MpiCommand, Hydra) {
    MpiJob job = two_by_two(MpiKind::kHydra, "/usr/bin/mpiexec.hydra");
    job.first_host_local = true;
    job.agent = "/tmp/agent";
    job.extra = {"-genv", "X", "1"};
    EXPECT_EQ(mpi_command(job), (Args{"/usr/bin/mpiexec.hydra",
                                      "-np",
                                      "4",
                                      "-ppn",
                                      "2",
                                      "-hosts",
                                      "10.9.0.1,10.9.0.2",
                                      "-localhost",
                                      "10.9.0.1",
                                      "-launcher",
                                      "ssh",
                                      "-launcher-exec",
                                      "/tmp/agent",
                                      "-genv",
                                      "X",
                                      "1",
                                      "/opt/ipexrun",
                                      "--rank-wrapper",
                                      "--",
                                      "prog"}));
    job.hosts.clear();
    job.nnodes = 1;
    job.agent.clear();
    job.extra.clear();
    EXPECT_EQ(mpi_command(job), (Args{"/usr/bin/mpiexec.hydra", "-np", "2", "-ppn", "2",
                                      "/opt/ipexrun", "--rank-wrapper", "--", "prog"}));
}

TEST(MpiCommand, OpenMpi) {
    MpiJob job = two_by_two(MpiKind::kOpenMpi, "mpiexec.openmpi");
    job.as_root = true;
    job.agent = "/tmp/agent";
    job.forwarded_env = {"PATH", "OMP_SCHEDULE"};
    EXPECT_EQ(mpi_command(job), (Args{"mpiexec.openmpi",
                                      "-np",
                                      "4",
                                      "--host",
                                      "10.9.0.1:2,10.9.0.2:2",
                                      "--map-by",
                                      "ppr:2:node",
                                      "--bind-to",
                                      "none",
                                      "--allow-run-as-root",
                                      "--mca",
                                      "plm_rsh_agent",
                                      "/tmp/agent",
                                      "-x",
                                      "PATH",
                                      "-x",
                                      "OMP_SCHEDULE",
                                      "/opt/ipexrun",
                                      "--rank-wrapper",
                                      "--",
                                      "prog"}));
    job.hosts.clear();
    job.nnodes = 1;
    job.as_root = false;
    job.agent.clear();
    job.forwarded_env.clear();
    EXPECT_EQ(mpi_command(job)[4], "localhost:2");
}

TEST(MpiCommand, Srun) {
    MpiJob job = two_by_two(MpiKind::kSlurm, "srun");
    job.hosts.clear();
    job.ppn = 3;
    EXPECT_EQ(mpi_command(job),
              (Args{"srun", "-N", "2", "-n", "6", "--ntasks-per-node", "3", "--kill-on-bad-exit=1",
                    "--cpu-bind=none", "--quit-on-interrupt", "/opt/ipexrun", "--rank-wrapper",
                    "--", "prog"}));
}

TEST(SplitWords, LikeAShellWithoutExpanding) {
    EXPECT_EQ(split_words("  -genv A 1  -x 'B C' \"D \\\"E\\\"\" $HOME a\\ b"),
              (Args{"-genv", "A", "1", "-x", "B C", "D \"E\"", "$HOME", "a b"}));
    EXPECT_EQ(split_words(""), Args{});
    EXPECT_EQ(split_words("''"), Args{""});
    try {
        split_words("-x 'open");
        FAIL();
    } catch (const DistributedError& e) {
        EXPECT_EQ(e.code, 2);
    }
}

TEST(RankWrapperArgv, DropsTopLevelOptionsInEverySpelling) {
    const Args options = {"--nnodes",      "2",  "--hostfile",         "h", "--mpi=hydra",
                          "--master_addr", "x",  "--ccl-worker-count", "1", "--extra-mpi-params=-l",
                          "--mpi-agent",   "/a", "--dry-run",          "--"};
    EXPECT_EQ(
        rank_wrapper_argv("/bin/ipexrun", options, "10.0.0.1", 29501, "prog.py", {"--", "-x"}),
        (Args{"/bin/ipexrun", "--rank-wrapper", "--nnodes", "2", "--ccl-worker-count", "1",
              "--master-addr", "10.0.0.1", "--master-port", "29501", "--", "prog.py", "--", "-x"}));
    // No master known (Slurm): the rank finds it.
    const Args no_master = rank_wrapper_argv("/i", {}, "", 29500, "p", {});
    EXPECT_EQ(no_master, (Args{"/i", "--rank-wrapper", "--master-port", "29500", "--", "p"}));
}

TEST(ForwardedVariables, SearchPathsAndRuntimeSettingsOnly) {
    const auto names = forwarded_variables({{"PATH", "/bin"},
                                            {"OMP_NUM_THREADS", "2"},
                                            {"GLOO_SOCKET_IFNAME", "eth1"},
                                            {"SSH_AUTH_SOCK", "/x"},
                                            {"OMPI_COMM_WORLD_RANK", "0"},
                                            {"IPEXRUN_PYTHON", "/p"}});
    EXPECT_EQ(names, (Args{"GLOO_SOCKET_IFNAME", "IPEXRUN_PYTHON", "OMP_NUM_THREADS", "PATH"}));
}

TEST(Hostfile, OneHostALine) {
    EXPECT_EQ(parse_hostfile("10.0.0.1\n\n# comment\n  n2:4  \nn3 slots=2\r\nfe80::1\n"),
              (Args{"10.0.0.1", "n2", "n3", "fe80::1"}));
    EXPECT_EQ(parse_hostfile(""), Args{});
}
