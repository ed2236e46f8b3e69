"""Per-call time of single packed layers against stock PyTorch, interleaved in one process.

    /usr/bin/python3 benchmarks/kernels/layer_calls.py [--build-dir build] [--seconds 3]

Layers: a ResNet-50 3x3 conv (64->64, 56x56, batch 1) and 1x1 conv (256->64), a BERT-base
linear (768->3072, 128 rows), and tiny 64->64 layers for the per-call overhead. Each round
times every variant once, in turn, so load from other jobs hits all alike; medians over the
rounds. To compare two builds, run the script once per build, alternating, and compare the
ratios (the stock column is the common yardstick).
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
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per layer")
    args = ap.parse_args()
    sys.path.insert(0, str(pathlib.Path(args.build_dir) / "python"))
    import torch
    from torch import nn
    from ipex.nn import PackedConv, PackedLinear

    torch.manual_seed(0)
    layers = [
        ("conv3x3 64ch 56x56", nn.Conv2d(64, 64, 3, padding=1), torch.randn(1, 64, 56, 56), 1),
        ("conv1x1 256->64 56x56", nn.Conv2d(256, 64, 1), torch.randn(1, 256, 56, 56), 1),
        ("linear 768->3072 x128", nn.Linear(768, 3072), torch.randn(128, 768), 1),
        ("linear 64->64 x4 (overhead)", nn.Linear(64, 64), torch.randn(4, 64), 50),
        ("conv1x1 64->64 4x4 (overhead)", nn.Conv2d(64, 64, 1), torch.randn(1, 64, 4, 4), 50),
    ]
    print(f"build: {args.build_dir}")
    print(f"{'layer':32s} {'stock us':>10s} {'ipex us':>10s} {'ratio':>7s}")
    with torch.no_grad():
        for name, layer, x, inner in layers:
            layer = layer.eval()
            stock = layer.to(memory_format=torch.channels_last) if x.dim() == 4 else layer
            xs = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
            packed = PackedConv(layer) if x.dim() == 4 else PackedLinear(layer)
            runs = {"stock": lambda: stock(xs), "ipex": lambda: packed(x)}
            times = {k: [] for k in runs}
            for f in runs.values():  # warm-up: packing, primitive creation
                f()
                f()
            end = time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                for k, f in runs.items():
                    t0 = time.perf_counter()
                    for _ in range(inner):
                        f()
                    times[k].append((time.perf_counter() - t0) / inner * 1e6)
            s, i = statistics.median(times["stock"]), statistics.median(times["ipex"])
            print(f"{name:32s} {s:10.1f} {i:10.1f} {s / i:6.2f}x")


if __name__ == "__main__":
    main()
