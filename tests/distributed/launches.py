"""Running a launch on the namespace cluster and reading what its probe ranks reported."""
import json
import os
import pathlib
import signal
import queue
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from cluster import DIE_WITH_PYTEST

HERE = pathlib.Path(__file__).resolve().parent
TORCH_PYTHON = "/usr/bin/python3"
PROBE = HERE / "probe_allreduce.py"
RANK_ENV = HERE / "rank_env.sh"
# Four torch imports on two shared CPUs take 6-17 s; a hang must still end the test.
LAUNCH_TIMEOUT = 150


@dataclass
class Launch:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self):
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}")


def launch(argv, env=None, timeout=LAUNCH_TIMEOUT):
    """Run argv (usually `node.command([...])`) to its end, or fail the test after timeout."""
    start = time.monotonic()
    process = subprocess.Popen([*DIE_WITH_PYTEST, *map(str, argv)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # ranks on the other node still hold the pipes
            process.kill()
            stdout, stderr = "(unread)", "(unread)"
        pytest.fail(f"{argv} did not end within {timeout} s\n--- stdout\n{stdout}\n"
                    f"--- stderr\n{stderr}")
    return Launch(process.returncode, stdout, stderr, time.monotonic() - start)


def rank_environment(cluster, master_port, **extra):
    """The environment every rank needs on the cluster: gloo on the private link."""
    return dict(os.environ, MASTER_ADDR=cluster.nodes[0].address, MASTER_PORT=str(master_port),
                GLOO_SOCKET_IFNAME="eth1", **extra)


def ipexrun_argv(ipexrun, cluster, mpi, *options, hostfile=None, agent=None):
    """The ipexrun command line for `mpi`, run on node 1 (inside the Slurm allocation for
    slurm): `options` end with the program and its arguments. `agent` replaces the
    cluster's rsh agent."""
    argv = [ipexrun, "--nnodes", "2", "--nprocs-per-node", "2", "--mpi", mpi]
    if mpi == "slurm":
        return ["salloc", "-N2", "-n4", "--ntasks-per-node=2", *argv, *options]
    argv += ["--hostfile", hostfile or cluster.hostfile(), "--mpi-agent",
             agent or cluster.rsh_agent]
    if mpi == "openmpi":
        # Open MPI's daemons must talk over the private link (ipexrun forwards GLOO_*).
        argv += ["--extra-mpi-params", "--mca oob_tcp_if_include eth1"]
    return argv + list(options)


def launch_environment(cluster, slurm=None):
    """GLOO_SOCKET_IFNAME for the ranks, Open MPI's consent to root, Slurm's config; and
    no rank variable: ipexrun must set the whole contract itself."""
    env = rank_environment(cluster, 0, OMPI_ALLOW_RUN_AS_ROOT="1",
                           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if slurm is not None:
        env.update(SLURM_CONF=slurm.env["SLURM_CONF"])
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    return env


def probe_reports(output):
    """The probes' reports by rank, with the line each came in (which may carry a
    launcher's prefix). Bare hydra may glue two ranks' lines together: each report is
    decoded where its marker starts."""
    reports = {}
    decoder = json.JSONDecoder()
    for line in output.splitlines():
        pieces = line.split("PROBE ")
        for piece in pieces[1:]:
            report, _ = decoder.raw_decode(piece)
            report["line"] = line
            assert report["rank"] not in reports, f"rank {report['rank']} reported twice"
            reports[report["rank"]] = report
    return reports


def check_allreduce(result, nodes=("n1", "n2"), ranks_per_node=2):
    """Every rank ran, on the node block-mapping puts it on, and got the full sum."""
    assert result.returncode == 0, result.describe()
    reports = probe_reports(result.stdout)
    world_size = len(nodes) * ranks_per_node
    assert sorted(reports) == list(range(world_size)), result.describe()
    expected_sum = world_size * (world_size + 1) / 2
    for rank, report in reports.items():
        assert report["world_size"] == world_size, report
        assert report["sum"] == expected_sum, report
        assert report["host"] == nodes[rank // ranks_per_node], report
    return reports


def check_own_cpus(reports, ranks_per_node=2):
    """Ranks sharing a node may run on no common CPU."""
    by_node = {}
    for rank in sorted(reports):
        by_node.setdefault(reports[rank]["host"], []).append(reports[rank])
    for host, ranks in by_node.items():
        assert len(ranks) == ranks_per_node, (host, ranks)
        taken = set()
        for report in ranks:
            cpus = set(report["cpus"])
            assert cpus and not cpus & taken, f"rank {report['rank']} on {host} shares CPUs"
            taken |= cpus


class LiveLaunch:
    """A launch watched while it runs: its output lines arrive on a queue."""

    def __init__(self, argv, env=None):
        self.start = time.monotonic()
        self.process = subprocess.Popen([*DIE_WITH_PYTEST, *map(str, argv)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env, start_new_session=True)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_lines(self, predicate, count, timeout=LAUNCH_TIMEOUT):
        """Wait until `count` lines satisfy predicate; fail the test on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while sum(1 for line in self.lines if predicate(line)) < count:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                pytest.fail(f"timed out waiting for output\n{self.output()}")
            if line is None:
                pytest.fail(f"the launch ended early (exit {self.process.wait()})\n"
                            f"{self.output()}")
            self.lines.append(line)

    def wait(self, timeout=LAUNCH_TIMEOUT):
        """The exit code and the seconds since start; the rest of the output is kept."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the launch did not end within {timeout} s\n{self.output()}")
        seconds = time.monotonic() - self.start
        while True:
            try:
                line = self._queue.get(timeout=10)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code, seconds

    def output(self):
        return "".join(self.lines)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
