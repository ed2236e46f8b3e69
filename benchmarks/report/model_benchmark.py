"""Inference benchmark of ResNet-50 or a BERT-style encoder, reporting through ipex.benchmark.

Three forms of the same measurement:

    ipexrun --ninstances 2 --benchmark-report out benchmarks/report/model_benchmark.py --model resnet50
    ipexrun ... model_benchmark.py --model resnet50 --ipex          # ipex.optimize()
    ipexrun --auto-ipex ... model_benchmark.py --model resnet50    # codeless: the stock script

Under ipexrun, --benchmark-duration/--benchmark-iterations decide the length and every
instance starts measuring together; alone, the script runs --iterations batches and prints its
own summary.
"""
import argparse
import json

import torch

import ipex

SEQUENCE, EMBED, HEADS, FFN = 128, 768, 12, 3072


def build(name, batch_size, layers):
    torch.manual_seed(0)
    if name == "resnet50":
        import torchvision
        return torchvision.models.resnet50().eval(), torch.randn(batch_size, 3, 224, 224)
    layer = torch.nn.TransformerEncoderLayer(EMBED, HEADS, FFN, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()
    return model, torch.randn(batch_size, SEQUENCE, EMBED)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["resnet50", "bert"], default="resnet50")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--layers", type=int, default=12, help="encoder layers (bert)")
    parser.add_argument("--ipex", action="store_true", help="optimise with ipex.optimize()")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20,
                        help="batches when ipexrun does not set the length")
    args = parser.parse_args()

    model, x = build(args.model, args.batch_size, args.layers)
    bf16 = args.dtype == "bfloat16"
    if args.ipex:
        model = ipex.optimize(model, dtype=torch.bfloat16 if bf16 else None, sample_input=x)
    ipex.benchmark.info("model", args.model)
    ipex.benchmark.info("form", "ipex.optimize" if args.ipex else "stock")
    ipex.benchmark.info("batch_size", args.batch_size)
    ipex.benchmark.info("torch_version", torch.__version__)
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=bf16):
        for _ in ipex.benchmark.batches(args.batch_size, warmup=args.warmup,
                                        iterations=args.iterations):
            model(x)
    print(json.dumps(ipex.benchmark.summary()))


if __name__ == "__main__":
    main()
