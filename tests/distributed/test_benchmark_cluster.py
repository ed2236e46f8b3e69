"""Benchmark reports across the two-node namespace cluster (issue 14).

`ipexrun --nnodes 2 --nprocs-per-node 2 --benchmark-report DIR` runs four ranks of
benchmark_rank.py (ipex.benchmark, no torch) and collects every rank's records over TCP.
The report directory is a tmpfs that only the launching ipexrun can see (a mount namespace
of its own; the ranks are started in the machine's mount namespace), so the numbers can only
have come over the sockets; report.json says where each rank connected from.
"""
import json
import os
import pathlib
import re
import signal
import subprocess

import pytest

from launches import LiveLaunch, ipexrun_argv, launch, launch_environment

HERE = pathlib.Path(__file__).resolve().parent
RANK_PROGRAM = HERE / "benchmark_rank.py"
API_SOURCE = HERE.parent.parent / "python_shim" / "ipex" / "benchmark.py"
PYTHON = "/usr/bin/python3"
# Runs "$@" with a fresh tmpfs on $0 (the report directory), then copies what was written
# there to $1, which the test can read.
PRIVATE_REPORT_DIR = ('dir=$0 out=$1; shift; mount -t tmpfs ipexrun-report "$dir" || exit 99; '
                      '"$@"; rc=$?; cp -a "$dir"/. "$out"/; exit $rc')
# The rsh agent, run from the machine's mount namespace: ranks cannot see the tmpfs above.
AGENT = '#!/bin/sh\n{block}exec nsenter --mount=/proc/{pid}/ns/mnt -- {agent} "$@"\n'
# Before anything starts on node 2: TCP to the report port is unreachable from there.
BLOCK_REPORT_PORT = ('port=${{IPEXRUN_REPORT_ADDR##*:}}\n'
                     'for word; do [ "$word" = {host} ] && ip -n {namespace} rule add ipproto tcp '
                     'dport "$port" unreachable && echo "$port" >> {record}; done\n')


@pytest.fixture(params=["hydra", "openmpi", "slurm"])
def flavour(request, cluster):
    return request.param


def write_agent(cluster, directory, block=""):
    agent = directory / "agent"
    agent.write_text(AGENT.format(block=block, pid=os.getpid(), agent=cluster.rsh_agent))
    agent.chmod(0o755)
    return agent


def benchmark_launch(ipexrun, cluster, mpi, tmp_path, *options, slurm=None, block="", node=0):
    """The argv (run on nodes[node]) and environment of a reported 2x2 run; the report ends
    up in tmp_path/"collected", and tmp_path/"report" is what the ranks would see of its
    folder."""
    seen_by_ranks = tmp_path / "report"
    collected = tmp_path / "collected"
    seen_by_ranks.mkdir()
    collected.mkdir()
    agent = None if mpi == "slurm" else write_agent(cluster, tmp_path, block)
    argv = ipexrun_argv(ipexrun, cluster, mpi, "--benchmark-report", seen_by_ranks, *options,
                        "--python", PYTHON, RANK_PROGRAM, agent=agent)
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_REPORT_DIR,
            seen_by_ranks, collected, *argv]
    env = launch_environment(cluster, slurm)
    env["IPEX_BENCHMARK_SOURCE"] = str(API_SOURCE)
    return cluster.nodes[node].command(argv), env


def read_report(tmp_path):
    assert list((tmp_path / "report").iterdir()) == [], "the ranks wrote into the report folder"
    with open(tmp_path / "collected" / "report.json") as report:
        return json.load(report)


def by_rank(report):
    return {instance["index"]: instance for instance in report["instances"]}


def table_rows(stdout):
    """The benchmark table's lines after its header, split on runs of 2+ spaces."""
    lines = stdout.splitlines()
    start = lines.index("ipexrun: benchmark")
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1:]
            if line.startswith("  ") and not line.strip().startswith("-")]


def check_complete_rank(instance, rank, cluster, batches):
    node = cluster.nodes[rank // 2]
    assert instance["node"] == node.name, instance
    assert instance["meta"]["host"] == node.name and instance["meta"]["rank"] == str(rank)
    # The connection came from the rank's own node, over the cluster's link.
    assert instance["connected_from"] == node.address, instance
    assert instance["status"] == "exit 0" and instance["complete"], instance
    assert instance["stats"]["batches"] == batches, instance


def test_every_rank_reports_over_tcp(ipexrun, cluster, flavour, request, tmp_path):
    slurm = request.getfixturevalue("slurm") if flavour == "slurm" else None
    argv, env = benchmark_launch(ipexrun, cluster, flavour, tmp_path,
                                 "--benchmark-iterations", "30", slurm=slurm)
    result = launch(argv, env=env)
    assert result.returncode == 0, result.describe()
    report = read_report(tmp_path)
    ranks = by_rank(report)
    assert sorted(ranks) == [0, 1, 2, 3], report["instances"]
    for rank, instance in ranks.items():
        check_complete_rank(instance, rank, cluster, 30)
    nodes = {node["node"]: node for node in report["nodes"]}
    assert sorted(nodes) == ["n1", "n2"], report["nodes"]
    assert sorted(nodes["n1"]["instances"]) == [0, 1] and sorted(nodes["n2"]["instances"]) == [2, 3]
    assert all(node["stats"]["batches"] == 60 for node in nodes.values())
    assert report["total"]["batches"] == 120 and report["total"]["samples"] == 240
    assert report["rejected_connections"] == 0

    rows = table_rows(result.stdout)
    assert rows[0][:3] == ["rank", "node", "status"], result.stdout
    for rank in range(4):
        assert [str(rank), f"n{rank // 2 + 1}", "exit 0", "30"] in [r[:4] for r in rows]
    assert ["node", "n1", "60"] in [r[:3] for r in rows], result.stdout
    assert ["node", "n2", "60"] in [r[:3] for r in rows], result.stdout
    assert ["total", "120"] in [r[:2] for r in rows], result.stdout
    with open(tmp_path / "collected" / "latencies.csv") as csv:
        assert len(csv.read().splitlines()) == 1 + 120
    chart = (tmp_path / "collected" / "report.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n") and len(chart) > 20000
    assert cluster.wait_quiet() == {}


@pytest.mark.parametrize("mpi", ["hydra", "slurm"])
def test_the_launching_node_need_not_run_rank_0(ipexrun, cluster, mpi, request, tmp_path):
    """ipexrun on node 2, rank 0 (and the master) on node 1: the ranks still find the
    launcher, at node 2's address (hydra: facing the hostfile's hosts; Slurm: srun's node)."""
    slurm = request.getfixturevalue("slurm") if mpi == "slurm" else None
    argv, env = benchmark_launch(ipexrun, cluster, mpi, tmp_path, "--benchmark-iterations",
                                 "10", slurm=slurm, node=1)
    result = launch(argv, env=env)
    assert result.returncode == 0, result.describe()
    ranks = by_rank(read_report(tmp_path))
    assert sorted(ranks) == [0, 1, 2, 3], result.describe()
    for rank, instance in ranks.items():
        check_complete_rank(instance, rank, cluster, 10)
    assert cluster.wait_quiet() == {}


def test_duration_stops_ranks_on_both_nodes_together(ipexrun, cluster, tmp_path):
    argv, env = benchmark_launch(ipexrun, cluster, "hydra", tmp_path,
                                 "--benchmark-duration", "2")
    result = launch(argv, env=env)
    assert result.returncode == 0, result.describe()
    ranks = by_rank(read_report(tmp_path))
    assert sorted(ranks) == [0, 1, 2, 3]
    go = [float(r["meta"]["go_time"]) for r in ranks.values()]
    stop = [float(r["meta"]["stop_time"]) for r in ranks.values()]
    # One "go" for all four (the nodes share the clock): they measure over the same 2 s.
    assert max(go) - min(go) < 1.0, go
    assert max(stop) - min(stop) < 1.0, stop
    for rank, instance in ranks.items():
        assert instance["complete"], instance
        assert 2.0 <= instance["stats"]["measured_seconds"] < 3.5, instance
        assert 2.0 <= stop[rank] - go[rank] < 3.5
    assert cluster.wait_quiet() == {}


def test_a_crashed_node_keeps_its_partial_numbers(ipexrun, cluster, tmp_path):
    argv, env = benchmark_launch(ipexrun, cluster, "hydra", tmp_path,
                                 "--benchmark-duration", "60")
    env.update(BENCH_SLEEP="0.02", BENCH_SAY_AFTER="10")
    job = LiveLaunch(argv, env=env)
    try:
        job.wait_for_lines(lambda line: "MEASURING" in line, 4, timeout=90)
        second = cluster.nodes[1]
        for pid in second.pids():  # the node goes down: everything on it dies at once
            if pid not in cluster.daemon_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        code, seconds = job.wait(timeout=60)
    finally:
        job.stop()
    assert code != 0, job.output()
    report = read_report(tmp_path)
    ranks = by_rank(report)
    assert sorted(ranks) == [0, 1, 2, 3], job.output()
    for rank in (2, 3):
        lost = ranks[rank]
        assert lost["node"] == "n2" and lost["connected_from"] == second.address, lost
        assert lost["status"] == "connection lost", lost
        assert lost["crashed"] and not lost["complete"], lost
        assert lost["stats"]["batches"] >= 10, lost  # what it had sent is kept
    for rank in (0, 1):
        assert ranks[rank]["stats"]["batches"] >= 10, ranks[rank]
    rows = [r for r in table_rows(job.output()) if r[0] in ("2", "3")]
    assert len(rows) == 2 and all(r[2] == "connection lost (partial)" for r in rows), rows
    assert cluster.wait_quiet() == {}


def test_a_rank_that_cannot_connect_runs_unreported(ipexrun, cluster, tmp_path):
    second = cluster.nodes[1]
    record = tmp_path / "blocked-ports"
    block = BLOCK_REPORT_PORT.format(host=second.address, namespace=second.namespace,
                                     record=record)
    argv, env = benchmark_launch(ipexrun, cluster, "hydra", tmp_path, "--benchmark-iterations",
                                 "20", block=block)
    try:
        result = launch(argv, env=env)
    finally:
        for port in set(record.read_text().split()) if record.exists() else ():
            while subprocess.run(["ip", "-n", second.namespace, "rule", "del", "ipproto", "tcp",
                                  "dport", port, "unreachable"],
                                 capture_output=True).returncode == 0:
                pass
    assert record.exists(), "the agent did not block the report port on node 2"
    assert result.returncode == 0, result.describe()
    warnings = [line for line in result.stderr.splitlines()
                if "cannot reach the launching ipexrun" in line]
    assert len(warnings) == 2, result.describe()
    assert sorted(re.match(r"ipexrun \[rank (\d) n2\]", w)[1] for w in warnings) == ["2", "3"]
    ranks = by_rank(read_report(tmp_path))
    assert sorted(ranks) == [0, 1, 2, 3]
    for rank in (0, 1):
        check_complete_rank(ranks[rank], rank, cluster, 20)
    for rank in (2, 3):
        missing = ranks[rank]
        assert missing["status"] == "could not connect" and missing["node"] == "n2", missing
        assert not missing["complete"] and missing["stats"]["batches"] == 0, missing
    # The two ranks of node 2 ran their program all the same.
    assert result.stdout.count("measured 20 batches") == 4, result.describe()
    assert cluster.wait_quiet() == {}
