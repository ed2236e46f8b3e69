"""Codeless mode against stock PyTorch (ResNet-50 or BERT-base): speed and peak memory, in one run.

    /usr/bin/python3 benchmarks/codeless/bench.py [--model resnet50|bert] [--build-dir build] [--batch 1] [--rounds 2]

Runs program.py (a plain program, no ipex in it) in fresh processes, alternating
variants round by round so that load from other jobs hits all alike:
  stock_fp32       python program.py
  stock_autocast   python program.py --autocast          (stock bf16)
  codeless_fp32    python -m ipex.cpu.auto_ipex program.py
  codeless_bf16    python -m ipex.cpu.auto_ipex --dtype bfloat16 program.py
  codeless_*_graph the same with --ipex-graph-mode (traced, frozen graphs)
Prints per variant the best median call time and the largest peak RSS over the rounds, then
the ratios: codeless bf16 speed-up over stock autocast, and codeless peak RSS over stock's
peak (fp32 over stock fp32, bf16 over stock autocast).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
PROGRAM = HERE / "program.py"
PYTHON = "/usr/bin/python3"

VARIANTS = {
    "stock_fp32": [PYTHON, str(PROGRAM)],
    "stock_autocast": [PYTHON, str(PROGRAM), "--autocast"],
    "codeless_fp32": [PYTHON, "-m", "ipex.cpu.auto_ipex", str(PROGRAM)],
    "codeless_bf16": [PYTHON, "-m", "ipex.cpu.auto_ipex", "--dtype", "bfloat16", str(PROGRAM)],
    "codeless_fp32_graph": [PYTHON, "-m", "ipex.cpu.auto_ipex", "--ipex-graph-mode", str(PROGRAM)],
    "codeless_bf16_graph": [PYTHON, "-m", "ipex.cpu.auto_ipex", "--ipex-graph-mode", "--dtype", "bfloat16",
                            str(PROGRAM)],
}


def run(argv, build, extra):
    env = dict(os.environ, PYTHONPATH=str(build / "python"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    r = subprocess.run(argv + extra, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(HERE.parent.parent / "build"))
    parser.add_argument("--model", choices=["resnet50", "bert"], default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="stock_fp32,stock_autocast,codeless_fp32,codeless_bf16",
                        help=f"comma-separated variants of: {', '.join(VARIANTS)}")
    options = parser.parse_args()
    build = pathlib.Path(options.build_dir).resolve()
    names = options.only.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    extra = ["--model", options.model, "--batch", str(options.batch), "--iterations", str(options.iterations)]

    best = {}
    for round_ in range(options.rounds):
        for name in names:
            result = run(VARIANTS[name], build, extra)
            print(f"round {round_} {name:15s} median {result['median_ms']:8.2f} ms  min {result['min_ms']:8.2f} ms  "
                  f"peak RSS {result['peak_rss_mb']:7.1f} MB", flush=True)
            kept = best.setdefault(name, dict(result))
            kept["median_ms"] = min(kept["median_ms"], result["median_ms"])
            kept["min_ms"] = min(kept["min_ms"], result["min_ms"])
            kept["peak_rss_mb"] = max(kept["peak_rss_mb"], result["peak_rss_mb"])

    def ratio(label, a, b, key, invert=False):
        if a in best and b in best:
            value = best[b][key] / best[a][key] if invert else best[a][key] / best[b][key]
            print(f"{label}: {value:.2f}x")

    print(f"{options.model} batch {options.batch}, best median over {options.rounds} round(s):")
    ratio("codeless bf16 speed-up over stock autocast", "codeless_bf16", "stock_autocast", "median_ms", invert=True)
    ratio("codeless bf16 graph speed-up over stock autocast", "codeless_bf16_graph", "stock_autocast", "median_ms",
          invert=True)
    ratio("codeless fp32 graph peak RSS / stock fp32", "codeless_fp32_graph", "stock_fp32", "peak_rss_mb")
    ratio("codeless fp32 speed-up over stock fp32", "codeless_fp32", "stock_fp32", "median_ms", invert=True)
    ratio("codeless fp32 peak RSS / stock fp32", "codeless_fp32", "stock_fp32", "peak_rss_mb")
    ratio("codeless bf16 peak RSS / stock autocast", "codeless_bf16", "stock_autocast", "peak_rss_mb")
    ratio("codeless bf16 peak RSS / stock fp32", "codeless_bf16", "stock_fp32", "peak_rss_mb")


if __name__ == "__main__":
    main()
