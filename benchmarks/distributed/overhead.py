#!/usr/bin/env python3
"""Cost of a distributed launch of `true` through ipexrun against the same bare MPI line.

For each MPI (hydra, Open MPI), one hyperfine run times, interleaved:
  bare            ipexrun's own MPI command (from its --dry-run) with each rank's
                  `ipexrun --rank-wrapper ...` replaced by `true`;
  bare+preload    the same with the LD_PRELOAD ipexrun gives every rank (tcmalloc and
                  Intel OpenMP here) set for the ranks by the MPI (-genv / -x);
  ipexrun         `ipexrun --nnodes N --nprocs-per-node P --mpi M --no-python true`;
  ipexrun-nolibs  the same with --memory-allocator default --omp-runtime default (no
                  preload: the launcher's own cost alone).
and, on the cluster, `AGENT HOST true`: the reachability probe ipexrun runs before it
starts anything. Then one run of the pieces of a single rank (no MPI, rank variables set by
hand). The load average is printed before and after, the ratios in the same output; CPU is
hyperfine's user+system of the waited-for processes (on the cluster it misses what the MPI
daemonises on the second node).

  --layout 1x4 (default): four ranks on this machine.
  --layout 2x2: two nodes of two ranks on the network-namespace cluster of
                tests/distributed (root; the issue's layout), hydra and Open MPI reaching
                the second node through the cluster's rsh agent.

usage: benchmarks/distributed/overhead.py [--layout 1x4|2x2] [--runs N] [--ipexrun PATH]
                                          [--baseline PATH] [--skip-pieces]
"""
import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIS = {"hydra": "mpiexec.hydra", "openmpi": "mpiexec.openmpi"}
NO_LIBS = ["--memory-allocator", "default", "--omp-runtime", "default"]


def ipexrun_args(mpi, nodes, ranks, cluster, hostfile):
    args = ["--nnodes", str(nodes), "--nprocs-per-node", str(ranks), "--mpi", mpi,
            "--master-port", "29631"]
    if cluster:
        args += ["--hostfile", str(hostfile), "--mpi-agent", str(cluster.rsh_agent)]
        if mpi == "openmpi":  # Open MPI's daemons talk over the private link
            args += ["--extra-mpi-params", "--mca oob_tcp_if_include eth1"]
    return args


def bare_lines(ipexrun, args, run):
    """The bare MPI line and the same with the ranks' LD_PRELOAD, from ipexrun's dry run."""
    plan = json.loads(run([ipexrun, "--dry-run", *args, "--no-python", "true"]))
    command, wrapper = plan["command"], plan["nodes"][0]["command"]
    mpi_part = command[: len(command) - len(wrapper)]
    preload = plan["nodes"][0]["ranks"][0]["env"].get("LD_PRELOAD", "")
    setting = (["-genv", "LD_PRELOAD", preload] if plan["mpi"] == "hydra"
               else ["-x", f"LD_PRELOAD={preload}"])
    return mpi_part + ["true"], mpi_part + setting + ["true"], preload


def hyperfine(commands, runs, wrap, env=None):
    """{name: result} of one interleaved hyperfine run over (name, argv) pairs."""
    with tempfile.TemporaryDirectory(prefix="ipexrun-overhead-") as out:
        report = os.path.join(out, "times.json")
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", report]
        for name, command in commands:
            argv += ["-n", name, shlex.join(command)]
        subprocess.run(wrap(argv), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        with open(report) as f:
            return {r["command"]: r for r in json.load(f)["results"]}


def show(results, ratios):
    print(f"  {'command':<22} {'mean ms':>9} {'stddev':>8} {'min ms':>8} {'user+sys ms':>12}")
    for name, r in results.items():
        cpu = (r["user"] + r["system"]) * 1e3
        print(f"  {name:<22} {r['mean'] * 1e3:9.2f} {r['stddev'] * 1e3:8.2f} "
              f"{r['min'] * 1e3:8.2f} {cpu:12.2f}")
    for ours, peer in ratios:
        a, b = results[ours]["mean"], results[peer]["mean"]
        cpu = lambda r: r["user"] + r["system"]  # noqa: E731
        verdict = "met" if a / b <= 1.2 else "NOT met"
        print(f"  {ours} / {peer} = {a / b:.2f}x (+{(a - b) * 1e3:.1f} ms; target <= 1.2x: "
              f"{verdict}); CPU {cpu(results[ours]) / cpu(results[peer]):.2f}x")


def single_rank_pieces(ipexrun, runs, preload):
    """What one rank costs, without any MPI: the hand-set rank variables of hydra."""
    env = dict(os.environ, PMI_RANK="0", PMI_SIZE="4", MPI_LOCALRANKID="0", MPI_LOCALNRANKS="4")
    wrapper = [ipexrun, "--rank-wrapper", "--master-addr", "127.0.0.1", "--master-port", "29631",
               "--no-python"]
    xml = subprocess.run(["lstopo-no-graphics", "--of", "xml"], capture_output=True,
                         text=True).stdout if shutil.which("lstopo-no-graphics") else ""
    with tempfile.NamedTemporaryFile("w", prefix="ipexrun-overhead-", suffix=".xml") as cache:
        cache.write(xml)
        cache.flush()
        with open("/proc/sys/kernel/random/boot_id") as f:
            node = f"{f.read().strip()}/{os.uname().nodename}"
        commands = [
            ("true", ["true"]),
            ("true+preload", ["env", f"LD_PRELOAD={preload}", "true"]),
            ("env true", ["env", "true"]),
            ("ipexrun --version", [ipexrun, "--version"]),
            ("wrapper-nolibs", [*wrapper, *NO_LIBS, "--", "true"]),
            ("wrapper-nolibs+cache", ["env", f"IPEXRUN_TOPOLOGY_CACHE={cache.name}",
                                      f"IPEXRUN_TOPOLOGY_CACHE_NODE={node}", *wrapper,
                                      *NO_LIBS, "--", "true"]),
            ("wrapper", [*wrapper, "--", "true"]),
        ]
        if not xml:
            commands = [c for c in commands if c[0] != "wrapper-nolibs+cache"]
        return hyperfine(commands, runs, lambda argv: argv, env=env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=["1x4", "2x2"], default="1x4")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--ipexrun", default=str(ROOT / "build" / "launcher" / "ipexrun"))
    parser.add_argument("--baseline", help="another ipexrun (e.g. an earlier build) timed in "
                        "the same run as ipexrun-baseline")
    parser.add_argument("--skip-pieces", action="store_true",
                        help="leave out the single-rank pieces")
    options = parser.parse_args()
    ipexrun = os.path.realpath(options.ipexrun)
    nodes, ranks = map(int, options.layout.split("x"))
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is not installed")

    cluster = None
    hostfile = None
    wrap = lambda argv: argv  # noqa: E731
    if nodes > 1:
        sys.path.insert(0, str(ROOT / "tests" / "distributed"))
        from cluster import NetnsCluster  # the tests' harness: namespaces, rsh agent
        cluster = NetnsCluster(nodes)
        hostfile = cluster.hostfile()
        wrap = cluster.nodes[0].command
    env = dict(os.environ, GLOO_SOCKET_IFNAME="eth1") if cluster else None

    def run(argv):
        return subprocess.run(wrap(argv), check=True, capture_output=True, text=True,
                              env=env).stdout

    try:
        print(f"layout {options.layout} ({nodes} node(s) x {ranks} ranks), {options.runs} runs, "
              f"{os.cpu_count()} CPUs; load average before: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        preload = ""
        for mpi, program in MPIS.items():
            if not shutil.which(program):
                print(f"{mpi}: {program} not found, skipped")
                continue
            args = ipexrun_args(mpi, nodes, ranks, cluster, hostfile)
            bare, bare_preloaded, preload = bare_lines(ipexrun, args, run)
            commands = [
                ("bare", bare),
                ("bare+preload", bare_preloaded),
                ("ipexrun", [ipexrun, *args, "--no-python", "true"]),
                ("ipexrun-nolibs", [ipexrun, *args, *NO_LIBS, "--no-python", "true"]),
            ]
            if options.baseline:
                commands.append(("ipexrun-baseline", [os.path.realpath(options.baseline), *args,
                                                      "--no-python", "true"]))
            if cluster:  # ipexrun's pre-flight check that the other node answers
                commands.append(("agent-probe", [str(cluster.rsh_agent),
                                                 cluster.nodes[1].address, "true"]))
            results = hyperfine(commands, options.runs, wrap, env=env)
            print(f"{mpi}: bare = {shlex.join(bare)}")
            show(results, [("ipexrun", "bare"), ("ipexrun", "bare+preload"),
                           ("ipexrun-nolibs", "bare"), ("bare+preload", "bare")]
                 + ([("ipexrun-baseline", "bare")] if options.baseline else []))
        if not options.skip_pieces:
            print(f"one rank, no MPI (preload: {preload or 'none'}):")
            show(single_rank_pieces(ipexrun, options.runs * 4, preload), [])
        print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        if cluster:
            cluster.close()


if __name__ == "__main__":
    main()
