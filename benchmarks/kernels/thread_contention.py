"""One BERT-base encoder layer, stock and ipex, on the full OpenMP team and on one thread,
timed interleaved in one process: shows what load from other processes does to each.

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/kernels/thread_contention.py [--build-dir build] [--seconds 30] [--batch 1]

Variants: stock nn.TransformerEncoderLayer (torch 1.13's fast path) at 2 threads and at 1;
ipex's packed layer with linears as one statically split oneDNN primitive
(IPEX_LINEAR_BLOCKS=0), with column blocks taken dynamically by the team (the default), and
at 1 thread. Medians and minima in ms per layer; the load average is printed. Run it with and
without OMP_WAIT_POLICY=PASSIVE to see how much of the loss is threads spinning at barriers.
"""
import argparse
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.environ.get("IPEX_BUILD_DIR", str(REPO / "build")))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(pathlib.Path(args.build_dir) / "python"))
    import torch
    from torch import nn
    from ipex.nn.transformer import PackedTransformerEncoderLayer

    torch.manual_seed(0)
    full = int(os.environ.get("OMP_NUM_THREADS", "2"))
    layer = nn.TransformerEncoderLayer(768, 12, 3072, batch_first=True).eval()
    os.environ["IPEX_LINEAR_BLOCKS"] = "0"  # read when a linear is packed
    static = PackedTransformerEncoderLayer(layer)
    del os.environ["IPEX_LINEAR_BLOCKS"]
    blocks = PackedTransformerEncoderLayer(layer)
    x = torch.randn(args.batch, 128, 768)
    cases = {
        f"stock@{full}": (full, layer), "stock@1": (1, layer),
        f"ipex_static@{full}": (full, static), f"ipex_blocks@{full}": (full, blocks), "ipex@1": (1, blocks),
    }
    times = {k: [] for k in cases}
    with torch.no_grad():
        ref = layer(x)
        for threads, m in cases.values():
            torch.set_num_threads(threads)
            m(x)
            y = m(x)
            assert float((y - ref).abs().max() / ref.abs().max()) < 1e-4
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end or min(len(t) for t in times.values()) < 3:
            for k, (threads, m) in cases.items():
                torch.set_num_threads(threads)
                t0 = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - t0)
    print(f"# batch {args.batch}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for k, t in times.items():
        print(f"{k:16s} median {statistics.median(t) * 1e3:8.1f} ms  min {min(t) * 1e3:8.1f} ms  (n={len(t)})")


if __name__ == "__main__":
    main()
