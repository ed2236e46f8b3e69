"""A plain inference program (no ipex in it), run by bench.py under stock python and under
codeless mode: ResNet-50 with random weights, `--iterations` timed calls after warm-up.
Prints one JSON line: per-call milliseconds and the process's peak RSS."""
import argparse
import json
import resource
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--iterations", type=int, default=20)
parser.add_argument("--autocast", action="store_true", help="stock bf16: torch.cpu.amp.autocast")
options = parser.parse_args()

torch.manual_seed(0)
model = torchvision.models.resnet50().eval()
x = torch.randn(options.batch, 3, 224, 224)
times = []
with torch.no_grad(), torch.cpu.amp.autocast(enabled=options.autocast):
    for i in range(options.warmup + options.iterations):
        start = time.perf_counter()
        out = model(x)
        times.append(time.perf_counter() - start)
times = sorted(times[options.warmup:])
print(json.dumps({
    "median_ms": 1e3 * times[len(times) // 2],
    "min_ms": 1e3 * times[0],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "checksum": float(out.float().sum()),
}), flush=True)
