#!/usr/bin/python3
"""ipex.optimize() vs stock PyTorch at its best, measured in one run.

Every measurement runs in a fresh subprocess (OMP_NUM_THREADS=2, torch.set_num_threads(2)) so
that OPENBLAS_NUM_THREADS takes effect before torch loads. Stock variants: eager, jit
(trace + freeze + optimize_for_inference), bf16 weights, bf16 autocast (eager and jit), each
with and without OPENBLAS_NUM_THREADS=1. The ratio is against the fastest stock variant of
the same precision. Usage:
  /usr/bin/python3 benchmarks/kernels/bench.py [--build-dir build] [--only rn50_bs1,linear_768_3072]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

WORKLOADS = ["linear_768_3072", "linear_3072_768", "rn50_bs1", "rn50_bs16", "bert_bs1", "bert_bs8"]
STOCK_FP32 = ["eager", "jit"]
STOCK_BF16 = ["bf16_weights", "autocast", "jit_autocast"]
IPEX_FP32 = ["ipex_fp32", "ipex_fp32_graph"]
IPEX_BF16 = ["ipex_bf16", "ipex_bf16_graph"]
SEQ, EMBED, HEADS, FFN, LAYERS = 128, 768, 12, 3072, 12


# ---------------------------------------------------------------- worker side (one measurement)
def build(workload):
    import torch
    torch.manual_seed(0)
    if workload.startswith("linear"):
        k, n = map(int, workload.split("_")[1:])
        model = torch.nn.Sequential(torch.nn.Linear(k, n)).eval()
        return model, torch.randn(128, k), 2.0 * 128 * k * n
    if workload.startswith("rn50"):
        import torchvision
        bs = int(workload.split("bs")[1])
        model = torchvision.models.resnet50().eval()
        x = torch.randn(bs, 3, 224, 224)
        return model, x, bs * conv_flops(model, x[:1])
    bs = int(workload.split("bs")[1])
    layer = torch.nn.TransformerEncoderLayer(EMBED, HEADS, FFN, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False).eval()
    per_token = 2 * (4 * EMBED * EMBED + 2 * EMBED * FFN) + 2 * 2 * SEQ * EMBED
    return model, torch.randn(bs, SEQ, EMBED), float(bs * SEQ * LAYERS * per_token)


def conv_flops(model, x):
    import torch
    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total[0] += 2.0 * out.numel() * k
        elif isinstance(m, torch.nn.Linear):
            total[0] += 2.0 * out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total[0]


def prepare(variant, model, x):
    import torch
    bf16 = torch.bfloat16
    if variant == "eager":
        return model, x, None
    if variant == "jit":
        with torch.no_grad():
            m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x, check_trace=False)))
        return m, x, None
    if variant == "bf16_weights":
        return model.to(bf16), x.to(bf16), None
    if variant == "autocast":
        return model, x, bf16
    if variant == "jit_autocast":
        with torch.no_grad(), torch.cpu.amp.autocast():
            m = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False))
        return m, x, bf16
    import ipex
    graph = variant.endswith("_graph")
    if variant.startswith("ipex_fp32"):
        return ipex.optimize(model, sample_input=x[:1], graph_mode=graph), x, None
    if variant.startswith("ipex_bf16"):
        return ipex.optimize(model, dtype=bf16, sample_input=x[:1], graph_mode=graph), x, bf16
    raise ValueError(variant)


def worker(workload, variants, budget):
    """Times `variants` of one workload in this process, alternating them call by call so
    that load from other jobs on the machine hits every variant alike."""
    import torch
    torch.set_num_threads(2)
    runs, out = {}, {}
    for v in variants:
        model, x, flops = build(workload)
        try:
            runs[v] = prepare(v, model, x) + (flops,)
            call(runs[v])
            call(runs[v])
        except Exception as e:  # a stock variant may not support this model: report it
            out[v] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}
            runs.pop(v, None)
    times = {v: [] for v in runs}
    start = time.perf_counter()
    while runs and (min(len(t) for t in times.values()) < 3 or
                    (time.perf_counter() - start < budget * len(runs) and min(len(t) for t in times.values()) < 100)):
        for v, r in runs.items():
            t = time.perf_counter()
            call(r)
            times[v].append(time.perf_counter() - t)
    for v, ts in times.items():
        ts.sort()
        out[v] = {"ms": ts[len(ts) // 2] * 1e3, "min_ms": ts[0] * 1e3, "flops": runs[v][3], "n": len(ts)}
    print(json.dumps(out))


def call(run):
    import torch
    model, x, autocast, _ = run
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=autocast is not None):
        model(x)


# ---------------------------------------------------------------- driver side
def run_group(workload, variants, blas1, args):
    """One worker process (OMP_NUM_THREADS=2, OPENBLAS_NUM_THREADS=1 if `blas1`) timing
    `variants` interleaved; results keyed "<variant>[+blas1]"."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("OPENBLAS_NUM_THREADS", None)
    if blas1:
        env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(pathlib.Path(args.build_dir).resolve() / "python")  # the built package
    cmd = [sys.executable, __file__, "--worker", workload, ",".join(variants), "--budget", str(args.budget)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    suffix = "+blas1" if blas1 else ""
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1][:120]
        return {v + suffix: {"error": tail} for v in variants}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    return {v + suffix: r for v, r in res.items()}


def merge(old, new):
    """Keeps the better median of two runs of a variant, and the lower minimum."""
    if old is None or "ms" not in old:
        return new
    if "ms" not in new:
        return old
    best = dict(new if new["ms"] < old["ms"] else old)
    best["min_ms"] = min(old["min_ms"], new["min_ms"])
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=2)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timed runs per variant")
    ap.add_argument("--build-dir", default=os.environ.get("IPEX_BUILD_DIR", str(REPO / "build")),
                    help="build tree whose python/ holds the ipex package (default $IPEX_BUILD_DIR or build)")
    ap.add_argument("--repeat", type=int, default=1, help="processes per measurement, best kept")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--precisions", default="fp32,bf16",
                    help="fp32 and/or bf16 variants (bf16 alone takes long where it is emulated)")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1].split(","), args.budget)

    load = os.getloadavg()[0]
    print(f"# 2 threads, load average at start {load:.2f} (other jobs on this machine add noise)")
    rows, raw = [], {}
    for wl in args.only.split(","):
        precisions = args.precisions.split(",")
        stock_v = (STOCK_FP32 if "fp32" in precisions else []) + (STOCK_BF16 if "bf16" in precisions else [])
        ipex_v = (IPEX_FP32 if "fp32" in precisions else []) + (IPEX_BF16 if "bf16" in precisions else [])
        variants = [v for v in stock_v if not (v == "jit_autocast" and wl.startswith("linear"))]
        variants += [v for v in ipex_v if not (v.endswith("_graph") and not wl.startswith("rn50"))]
        res = {}
        for _ in range(args.repeat):
            for blas1 in (False, True):
                for k, r in run_group(wl, variants, blas1, args).items():
                    res[k] = merge(res.get(k), r)
        raw[wl] = res
        for prec, stock, mine in (("fp32", STOCK_FP32, IPEX_FP32), ("bf16", STOCK_BF16, IPEX_BF16)):
            cands = {k: r for k, r in res.items() if k.split("+")[0] in stock and "ms" in r}
            ours_c = {k: r for k, r in res.items() if k.split("+")[0] in mine and "ms" in r}
            if not cands or not ours_c:
                print(f"# {wl} {prec}: no successful stock or ipex run")
                continue
            # "Best" is the lowest median; the minimum is shown too (less sensitive to the
            # other jobs on this machine).
            best_k = min(cands, key=lambda k: cands[k]["ms"])
            our_k = min(ours_c, key=lambda k: ours_c[k]["ms"])
            best, ours = cands[best_k], ours_c[our_k]
            gf = lambda r: r["flops"] / (r["ms"] * 1e-3) / 1e9
            rows.append((wl, prec, best_k, best, gf(best), our_k, ours, gf(ours)))
        for k, r in res.items():
            print(f"#   {wl:16s} {k:22s} " + (f"{r['ms']:9.2f} ms" if "ms" in r else r.get("error", "")))
        sys.stdout.flush()

    print(f"\n{'workload':16s} {'prec':4s} {'stock best':19s} {'ms':>7s} {'min':>7s} {'GF/s':>5s} | "
          f"{'ipex':15s} {'ms':>7s} {'min':>7s} {'GF/s':>5s} | {'ratio':>6s} {'(min)':>6s}")
    for wl, prec, k, st, sg, ok, ou, og in rows:
        print(f"{wl:16s} {prec:4s} {k:19s} {st['ms']:7.2f} {st['min_ms']:7.2f} {sg:5.0f} | {ok:15s} {ou['ms']:7.2f} "
              f"{ou['min_ms']:7.2f} {og:5.0f} | {st['ms'] / ou['ms']:5.2f}x {st['min_ms'] / ou['min_ms']:5.2f}x")
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
