"""ipexrun's distributed mode on the two-node namespace cluster (issue 13).

One `ipexrun --nnodes 2 --nprocs-per-node 2` per MPI flavour starts four ranks; the scripts
map nothing: torchrun's variables come from ipexrun, which also binds each rank on its own
node, prefixes its output and supervises it. ipexrun runs on node 1 and, through the
launcher, as the per-rank wrapper on both nodes (same path: the nodes share the files).
"""
import json
import os
import re
import signal

import pytest

from launches import (PROBE, TORCH_PYTHON, LiveLaunch, check_allreduce, check_own_cpus,
                      ipexrun_argv, launch, launch_environment, probe_reports)

HERE = os.path.dirname(os.path.abspath(__file__))
ACTIONS = os.path.join(HERE, "rank_actions.py")
MPI_FLAVOURS = ["hydra", "openmpi", "slurm"]
PREFIX = re.compile(r"^\[rank (\d+) ([^\]\s]+)\] ")
# A pre-flight refusal comes before any rank: well under a launch of four Pythons.
PREFLIGHT_TIMEOUT = 30


@pytest.fixture(params=MPI_FLAVOURS)
def mpi(request, cluster):
    return request.param


@pytest.fixture
def env(request, cluster, mpi):
    """The launch environment; for Slurm, the daemons (a Slurm test skips without them)."""
    slurm = request.getfixturevalue("slurm") if mpi == "slurm" else None
    return launch_environment(cluster, slurm)


def check_rank_variables(reports, master_addr, master_port):
    for rank, report in reports.items():
        env = report["env"]
        assert env["RANK"] == str(rank), env
        assert env["WORLD_SIZE"] == "4", env
        assert env["LOCAL_RANK"] == str(rank % 2), env
        assert env["LOCAL_WORLD_SIZE"] == "2", env
        assert env["GROUP_RANK"] == str(rank // 2), env
        assert env["MASTER_ADDR"] == master_addr, env
        assert env["MASTER_PORT"] == str(master_port), env


def check_log_files(log_dir, reports):
    """One file per rank, named after the rank and the node that wrote it: each rank's
    report is in exactly one file, alone."""
    holders = {}
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name), errors="replace") as log:
            ranks = list(probe_reports(log.read()))
        assert len(ranks) <= 1, f"{name} holds the output of ranks {ranks}"
        for rank in ranks:
            holders[rank] = name
    assert sorted(holders) == sorted(reports), os.listdir(log_dir)
    for rank, name in holders.items():
        assert f"rank_{rank}_{reports[rank]['host']}" in name, name


def test_allreduce_needs_no_rank_mapping(ipexrun, cluster, mpi, env, master_port, tmp_path):
    first = cluster.nodes[0]
    log_dir = tmp_path / "logs"
    result = launch(first.command(ipexrun_argv(
        ipexrun, cluster, mpi, "--master-port", str(master_port), "--log-dir", log_dir,
        "--python", TORCH_PYTHON, PROBE)), env=env)
    reports = check_allreduce(result)
    check_rank_variables(reports, first.address, master_port)
    check_own_cpus(reports)
    for rank, report in reports.items():
        # OpenMP as for a local instance: at most one thread per CPU of the rank's share.
        assert 1 <= int(report["env"]["OMP_NUM_THREADS"]) <= len(report["cpus"]), report
        prefix = PREFIX.match(report["line"])
        assert prefix, f"unprefixed: {report['line']!r}"
        assert (int(prefix[1]), prefix[2]) == (rank, report["host"])
    check_log_files(log_dir, reports)
    assert cluster.wait_quiet() == {}


def test_killed_rank_ends_the_job_everywhere(ipexrun, cluster, mpi, env):
    result = launch(cluster.nodes[0].command(ipexrun_argv(
        ipexrun, cluster, mpi, ACTIONS, "crash", "3")), env=env, timeout=60)
    # The others sleep 120 s: only ipexrun's supervision ends the job this early.
    assert result.seconds < 45, result.describe()
    assert cluster.wait_quiet(timeout=10) == {}
    assert result.returncode == 128 + signal.SIGKILL, result.describe()


def test_sigterm_stops_every_rank(ipexrun, cluster, mpi, env):
    job = LiveLaunch(cluster.nodes[0].command(ipexrun_argv(ipexrun, cluster, mpi, ACTIONS,
                                                           "wait")), env=env)
    try:
        job.wait_for_lines(lambda line: "READY" in line, 4, timeout=60)
        for line in job.lines:
            if "READY" in line:  # `[rank R host] READY R`, R from the RANK ipexrun set
                prefix = PREFIX.match(line)
                assert prefix and line.split()[-1] == prefix[1], line
        # The launch's pid is ipexrun itself (nsenter, unshare and sh exec into it), or
        # salloc, whose child ipexrun is then the one signalled.
        target = job.process.pid
        if mpi == "slurm":
            target = child_running(target, ipexrun)
        os.kill(target, signal.SIGTERM)
        code, _ = job.wait(timeout=30)
    finally:
        job.stop()
    assert code in (128 + signal.SIGTERM, -signal.SIGTERM), job.output()
    assert cluster.wait_quiet(timeout=10) == {}


def child_running(parent, program):
    """The pid of parent's child that runs `program`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
            if ppid == parent and os.readlink(f"/proc/{entry}/exe") == os.path.realpath(program):
                return int(entry)
        except (OSError, ValueError):
            continue
    pytest.fail(f"no child of {parent} runs {program}")


def check_refused(result, *mentions):
    """A one-line error before anything started."""
    assert result.returncode != 0, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.describe()
    for mention in mentions:
        assert mention in errors[0], result.describe()
    assert "READY" not in result.stdout, result.describe()


def test_unreachable_host_is_refused_before_start(ipexrun, cluster, tmp_path):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text(f"{cluster.nodes[0].address}\n10.213.13.9\n")
    env = launch_environment(cluster)
    result = launch(cluster.nodes[0].command(ipexrun_argv(
        ipexrun, cluster, "hydra", ACTIONS, "wait", hostfile=hostfile)), env=env,
        timeout=PREFLIGHT_TIMEOUT)
    check_refused(result, "10.213.13.9")
    assert cluster.wait_quiet() == {}


def test_port_in_use_is_refused_before_start(ipexrun, cluster, master_port):
    first = cluster.nodes[0]
    holder = LiveLaunch(first.command([
        TORCH_PYTHON, "-c",
        "import socket, time\n"
        f"s = socket.create_server(('', {master_port}))\n"
        "print('bound', flush=True)\n"
        "time.sleep(120)\n"]))
    try:
        holder.wait_for_lines(lambda line: "bound" in line, 1, timeout=30)
        env = launch_environment(cluster)
        result = launch(first.command(ipexrun_argv(
            ipexrun, cluster, "hydra", "--master-port", str(master_port), ACTIONS, "wait")),
            env=env, timeout=PREFLIGHT_TIMEOUT)
    finally:
        holder.stop()
    check_refused(result, str(master_port))


def test_too_few_slurm_tasks_is_refused_before_start(ipexrun, cluster, slurm):
    env = launch_environment(cluster, slurm)
    result = launch(slurm.command([
        "salloc", "-N2", "-n2", "--ntasks-per-node=1", ipexrun, "--nnodes", "2",
        "--nprocs-per-node", "2", "--mpi", "slurm", ACTIONS, "wait"]), env=env,
        timeout=PREFLIGHT_TIMEOUT)
    # salloc adds its own lines (granted, relinquished); ipexrun's is the one naming tasks.
    assert result.returncode != 0, result.describe()
    ipexrun_errors = [line for line in result.stderr.splitlines()
                      if line.strip() and not line.startswith("salloc:")]
    assert len(ipexrun_errors) == 1, result.describe()
    assert "task" in ipexrun_errors[0], result.describe()
    assert "READY" not in result.stdout, result.describe()
    assert cluster.wait_quiet() == {}


def test_slurm_master_is_the_allocations_first_node(ipexrun, cluster, slurm):
    """salloc on the second node: srun still starts rank 0 on the allocation's first node,
    so MASTER_ADDR must be that node's address, not the one ipexrun runs on."""
    env = launch_environment(cluster, slurm)
    result = launch(slurm.command([
        "salloc", "-N2", "-n4", "--ntasks-per-node=2", ipexrun, "--nnodes", "2",
        "--nprocs-per-node", "2", "--mpi", "slurm", ACTIONS, "report"], node=1), env=env,
        timeout=60)
    assert result.returncode == 0, result.describe()
    reports = {int(r["env"]["RANK"]): r for r in rank_reports(result.stdout)}
    assert sorted(reports) == [0, 1, 2, 3], result.describe()
    first = cluster.nodes[0]
    assert reports[0]["host"] == first.name, result.describe()
    assert {r["env"]["MASTER_ADDR"] for r in reports.values()} == {first.address}, \
        result.describe()
    assert cluster.wait_quiet() == {}


def rank_reports(output):
    """The `RANK {json}` lines of rank_actions.py report, in output order."""
    return [json.loads(line.partition("RANK ")[2]) for line in output.splitlines()
            if "RANK {" in line]


def check_colocated_split(result, count=2):
    assert result.returncode == 0, result.describe()
    reports = rank_reports(result.stdout)
    assert len(reports) == count, result.describe()
    taken = set()
    for report in reports:
        cpus = set(report["cpus"])
        assert cpus and not cpus & taken, f"co-located ipexruns share CPUs: {reports}"
        taken |= cpus
    return reports


def test_ipexruns_started_by_torchrun_split_the_node(ipexrun, cluster, master_port, tmp_path):
    # torch 1.13's torchrun on Python 3.11 crashes with the default --redirects 0 / --tee 0:
    # stderr goes to its log folder, stdout is teed.
    result = launch(cluster.nodes[0].command([
        TORCH_PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(master_port), "--redirects", "2", "--tee", "1",
        "--log_dir", tmp_path, "--no_python", ipexrun, ACTIONS, "report"]), timeout=90)
    reports = check_colocated_split(result)
    assert sorted(r["env"]["LOCAL_RANK"] for r in reports) == ["0", "1"]
    assert cluster.wait_quiet() == {}


def test_ipexruns_started_by_srun_split_the_node(ipexrun, cluster, slurm):
    # --cpu-bind=none: Slurm itself binds nothing, the split is ipexrun's.
    result = launch(slurm.command([
        "srun", "-N1", "-n2", "--ntasks-per-node=2", "--cpu-bind=none", ipexrun, ACTIONS,
        "report"]), env=slurm.env, timeout=60)
    check_colocated_split(result)
    assert cluster.wait_quiet() == {}



@pytest.mark.parametrize("mpiexec", [
    ["mpiexec.hydra", "-np", "2"],
    ["mpiexec.openmpi", "-np", "2", "--bind-to", "none"],
], ids=["hydra", "openmpi"])
def test_ipexruns_started_by_mpiexec_split_the_node(ipexrun, cluster, mpiexec):
    # Open MPI binds nothing here (--bind-to none): the split is ipexrun's.
    env = launch_environment(cluster)
    result = launch(cluster.nodes[0].command([*mpiexec, ipexrun, ACTIONS, "report"]), env=env,
                    timeout=60)
    check_colocated_split(result)
    assert cluster.wait_quiet() == {}
