"""2 nodes x 2 ranks of a gloo all_reduce through each bare launcher (no ipexrun): the
cluster works with Debian's MPICH, Open MPI and Slurm. rank_env.sh maps each launcher's
rank variables to torchrun's, which ipexrun does itself in test_ipexrun_cluster.py."""
from launches import (PROBE, RANK_ENV, TORCH_PYTHON, check_allreduce, check_own_cpus, launch,
                      rank_environment)


def test_mpich_hydra(cluster, master_port):
    first = cluster.nodes[0]
    env = rank_environment(cluster, master_port)
    result = launch(first.command([
        "mpiexec.hydra", "-launcher", "ssh", "-launcher-exec", cluster.rsh_agent,
        "-localhost", first.address, "-hostfile", cluster.hostfile(), "-ppn", "2", "-np", "4",
        "sh", RANK_ENV, "hydra", TORCH_PYTHON, PROBE]), env=env)
    check_allreduce(result)
    assert cluster.wait_quiet() == {}


def test_open_mpi(cluster, master_port):
    first, second = cluster.nodes
    env = rank_environment(cluster, master_port, OMPI_ALLOW_RUN_AS_ROOT="1",
                           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    result = launch(first.command([
        "mpiexec.openmpi", "--mca", "plm_rsh_agent", cluster.rsh_agent,
        "--mca", "oob_tcp_if_include", "eth1", "--host", f"{first.address}:2,{second.address}:2",
        "--map-by", "ppr:2:node", "--bind-to", "core", "-np", "4",
        "-x", "MASTER_ADDR", "-x", "MASTER_PORT", "-x", "GLOO_SOCKET_IFNAME",
        "sh", RANK_ENV, "openmpi", TORCH_PYTHON, PROBE]), env=env)
    check_own_cpus(check_allreduce(result))  # --bind-to core
    assert cluster.wait_quiet() == {}


def test_slurm_srun(cluster, slurm, master_port):
    env = rank_environment(cluster, master_port, **{"SLURM_CONF": slurm.env["SLURM_CONF"]})
    result = launch(slurm.command([
        "srun", "-N2", "-n4", "--ntasks-per-node=2", "--cpu-bind=cores",
        "sh", RANK_ENV, "slurm", TORCH_PYTHON, PROBE]), env=env)
    check_own_cpus(check_allreduce(result))  # --cpu-bind=cores
    assert cluster.wait_quiet() == {}
