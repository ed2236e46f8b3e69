"""A plain inference program (no ipex in it), run by bench.py under stock python and under
codeless mode: ResNet-50 (batch of 224x224 images) or a BERT-base-shaped encoder (Embedding,
LayerNorm, 12 nn.TransformerEncoderLayers, pooler; batch of 128-token sequences), random
weights, `--iterations` timed calls after warm-up. Prints one JSON line: per-call
milliseconds and the process's peak RSS."""
import argparse
import json
import resource
import time

import torch
import torchvision
from torch import nn


class BertBase(nn.Module):
    def __init__(self, vocab=30522, width=768, layers=12, length=512):
        super().__init__()
        self.words = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(length, width)
        self.norm = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, 12, 4 * width, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.pooler = nn.Linear(width, width)

    def forward(self, ids):
        x = self.norm(self.words(ids) + self.positions(torch.arange(ids.shape[1])))
        return torch.tanh(self.pooler(self.encoder(x)[:, 0]))


parser = argparse.ArgumentParser()
parser.add_argument("--model", choices=["resnet50", "bert"], default="resnet50")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--iterations", type=int, default=20)
parser.add_argument("--autocast", action="store_true", help="stock bf16: torch.cpu.amp.autocast")
options = parser.parse_args()

torch.manual_seed(0)
if options.model == "bert":
    model = BertBase().eval()
    x = torch.randint(0, 30522, (options.batch, 128))
else:
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
