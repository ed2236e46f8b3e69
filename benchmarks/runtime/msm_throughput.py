"""MultiStreamModule throughput: S streams on S cores in one process, against S separate
single-core processes of the same model, measured in the same run. Both sides are started by
ipexrun (so both get its allocator and OpenMP settings): one instance of S cores running a
MultiStreamModule, and `ipexrun --ninstances S --ncores-per-instance 1` running the plain model.

    IPEX_BUILD_DIR=<build> /usr/bin/python3 benchmarks/runtime/msm_throughput.py [--streams S]

Both sides run the same frozen TorchScript CNN on the same per-stream batch, with the same
ipexrun options (default `--benchmark --memory-allocator jemalloc`, as configs/multi-stream.toml
sets: threads of one process allocating activations at once lose ~12 % each on tcmalloc's
shared page heap and ~90 % on glibc's malloc, none on jemalloc's per-thread arenas; separate
processes do not share an allocator, so this is the allocator a multi-stream process wants); the printed
ratio is MultiStreamModule samples/s over the sum of the instances' samples/s (target >= 0.9).
The instances are started with `ipexrun --ninstances S --ncores-per-instance 1`; this script
is also their program (--worker).
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("IPEX_BUILD_DIR", REPO / "build")).resolve()


def make_model():
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(net, x))


def measure(fn, batch, warmup, start_at, seconds):
    """Samples/s over the wall-clock window [start_at, start_at + seconds): every instance of a
    run measures the same window, so the rates add up (2 vCPUs of a VM slow each other down,
    and instances start at different times)."""
    import torch
    x = torch.randn(batch, 3, 56, 56)
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        late = time.time() - start_at
        if late > 0:
            raise SystemExit(f"instance ready {late:.1f} s after the window opened: raise --start-delay")
        while time.time() < start_at:
            fn(x)  # keep busy (and the neighbour's conditions steady) until the window opens
        done, end = 0, start_at + seconds
        t0 = time.time()
        while time.time() < end:
            fn(x)
            done += batch
        return done / (time.time() - t0)


def worker(args):
    # One ipexrun instance: its CPUs and OMP_NUM_THREADS come from the launcher.
    if args.msm:
        import torch
        from ipex.cpu import runtime as rt
        if args.main_threads:
            torch.set_num_threads(args.main_threads)
        pool = rt.CPUPool()
        model = rt.MultiStreamModule(make_model(), num_streams=len(pool), cpu_pool=pool)
        batch = args.batch_per_stream * len(pool)
    else:
        model, batch = make_model(), args.batch_per_stream
    rate = measure(model, batch, args.warmup, args.start_at, args.seconds)
    print(f"THROUGHPUT {rate:.3f} cpus={sorted(os.sched_getaffinity(0))} "
          f"omp={os.environ.get('OMP_NUM_THREADS')}", flush=True)


def run_instances(args, ipexrun, msm):
    """Per-instance samples/s: one MultiStreamModule instance of S cores (msm), or S plain
    single-core instances."""
    n, cores = (1, args.streams) if msm else (args.streams, 1)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BUILD / "python"), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as logs:
        cmd = [str(ipexrun), "--ninstances", str(n), "--ncores-per-instance", str(cores), "--log-dir", logs,
               *args.launcher_args.split(), __file__, "--worker", "--batch-per-stream", str(args.batch_per_stream),
               "--seconds", str(args.seconds), "--warmup", str(args.warmup),
               "--start-at", str(time.time() + args.start_delay)] + (
                   ["--msm", "--main-threads", str(args.main_threads)] if msm else [])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
        # ipexrun tees each instance's output to its log file: read the logs, else stdout.
        text = "\n".join(p.read_text() for p in pathlib.Path(logs).rglob("*") if p.is_file())
        if "THROUGHPUT" not in text:
            text = done.stdout
        rates = [float(r) for r in re.findall(r"THROUGHPUT ([0-9.]+)", text)]
        if done.returncode != 0 or len(rates) != n:
            raise RuntimeError(f"ipexrun run failed (rc={done.returncode}, {len(rates)} results):\n"
                               f"{' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return rates, re.findall(r"THROUGHPUT [0-9.]+ (.*)", text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--streams", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--batch-per-stream", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5.0, help="length of the measured window")
    p.add_argument("--start-delay", type=float, default=10.0, help="seconds from launch to the window (start-up "
                   "and warm-up must fit)")
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of both sides (this VM's neighbours "
                   "make single rounds swing by 20 %%: the median of five is steady)")
    p.add_argument("--ipexrun", default=os.environ.get("IPEXRUN", BUILD / "launcher" / "ipexrun"))
    p.add_argument("--launcher-args", default="--benchmark --memory-allocator jemalloc",
                   help="ipexrun options for both sides, e.g. '--benchmark --memory-allocator tcmalloc' "
                   "(write --launcher-args=... when it starts with -)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--msm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--main-threads", type=int, default=0, help="torch.set_num_threads() of the main thread of the "
                   "MultiStreamModule instance (0: leave as launched)")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    ipexrun = pathlib.Path(args.ipexrun)
    if not ipexrun.exists():
        sys.exit(f"{ipexrun} not found: build the launcher (or pass --ipexrun)")
    if len(os.sched_getaffinity(0)) < args.streams:
        sys.exit(f"{args.streams} streams need {args.streams} CPUs, this process has {len(os.sched_getaffinity(0))}")
    batch = args.batch_per_stream * args.streams
    print(f"{args.streams} streams, batch {batch} ({args.batch_per_stream} per stream), {args.seconds} s windows")
    ratios = []
    for r in range(args.rounds):
        (msm_rate,), _ = run_instances(args, ipexrun, msm=True)
        rates, where = run_instances(args, ipexrun, msm=False)
        ratio = msm_rate / sum(rates)
        ratios.append(ratio)
        print(f"round {r}: MultiStreamModule {msm_rate:8.1f} samples/s | {args.streams} ipexrun instances "
              f"{sum(rates):8.1f} samples/s ({' + '.join(f'{x:.1f}' for x in rates)}; {'; '.join(where)}) "
              f"| ratio {ratio:.3f}")
    ratios.sort()
    print(f"median ratio MultiStreamModule / separate processes: {ratios[len(ratios) // 2]:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
