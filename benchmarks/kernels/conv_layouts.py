#!/usr/bin/python3
"""Which activation layout ipex's convolutions should run on, per model: stock's best
(trace + freeze + optimize_for_inference) against ipex graph mode with each IPEX_CONV_LAYOUT
(plain: oneDNN's convolutions on channels-last; blocked: reordered into oneDNN's blocked
layout and back; auto: the default policy, blocked for spatial kernels below AVX-512).

All variants live in one process and are timed interleaved, call by call, so that load from
other jobs hits them alike; the layout is read when a layer makes its primitives, so each
variant is optimized and warmed up with its own setting before the timing starts.

  /usr/bin/python3 benchmarks/kernels/conv_layouts.py [--build-dir build] [--models resnet50,...]
      [--batch 4] [--threads 1] [--seconds 20]
"""
import argparse
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
LAYOUTS = ["plain", "blocked", "auto"]


def variants(model_name, batch):
    import ipex
    import torch
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)().eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        yield "stock", torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x))), x
        for layout in LAYOUTS:
            os.environ["IPEX_CONV_LAYOUT"] = layout
            optimized = ipex.optimize(model, sample_input=x, graph_mode=True)
            optimized(x)  # the full batch's primitives are made now, with this layout
            yield f"ipex-{layout}", optimized, x
    os.environ.pop("IPEX_CONV_LAYOUT", None)


def measure(model_name, batch, seconds):
    import torch
    runs = list(variants(model_name, batch))
    times = {name: [] for name, _, _ in runs}
    start = time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - start < seconds or min(len(t) for t in times.values()) < 3:
            for name, model, x in runs:
                begin = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}, len(times["stock"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.environ.get("IPEX_BUILD_DIR", str(REPO / "build")))
    parser.add_argument("--models", default="resnet50,resnet18,mobilenet_v2,densenet121")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(pathlib.Path(args.build_dir).resolve() / "python"))
    import torch
    torch.set_num_threads(args.threads)
    print(f"# batch {args.batch}, {args.threads} thread(s), LD_PRELOAD={os.environ.get('LD_PRELOAD', '')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for model_name in args.models.split(","):
        ms, n = measure(model_name, args.batch, args.seconds)
        row = "  ".join(f"{name} {value:7.1f} ms" for name, value in ms.items())
        ratios = "  ".join(f"{name}: {ms['stock'] / ms[name]:.2f}x stock, {ms['ipex-plain'] / ms[name]:.2f}x plain"
                           for name in ms if name.startswith("ipex-") and name != "ipex-plain")
        print(f"{model_name} ({n} calls each): {row}\n  {ratios}; plain {ms['stock'] / ms['ipex-plain']:.2f}x stock")
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
