"""Draws DIR/report.png from DIR/report.json and DIR/latencies.csv (ipexrun --benchmark-report).

Left: throughput per instance (bars; crashed or incomplete instances hatched). Right: the
latency distribution of every instance and of the merged run (cumulative share of batches
against latency, log scale), with the merged p50/p99/p99.9 marked.

Run by ipexrun after the run with the plan's Python: `python3 report_chart.py DIR`.
"""
import csv
import json
import pathlib
import sys


def load(directory):
    report = json.loads((directory / "report.json").read_text())
    latencies = {}
    with open(directory / report.get("latencies_file", "latencies.csv"), newline="") as f:
        for row in csv.DictReader(f):
            key = (row["node"], int(row["instance"]))
            latencies.setdefault(key, []).append(float(row["seconds"]) * 1e3)
    return report, latencies


def cumulative(values):
    values = sorted(values)
    n = len(values)
    return values, [(i + 1) / n for i in range(n)]


def draw(directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report, latencies = load(directory)
    instances = report["instances"]
    nodes = {i["node"] for i in instances}
    label = (lambda i: f"{i['node']}:{i['index']}") if len(nodes) > 1 else \
        (lambda i: str(i["index"]))
    # Across nodes the instances are the job's ranks.
    unit = "rank" if any("connected_from" in i for i in instances) else "instance"

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    names = [label(i) for i in instances]
    values = [i["stats"]["throughput"] for i in instances]
    bars = left.bar(names, values, color="#4c72b0")
    for bar, inst in zip(bars, instances):
        if inst["crashed"] or not inst["complete"]:
            bar.set_hatch("//")
            bar.set_color("#dd8452")
    total = report["total"]["throughput"]
    left.set_title(f"throughput per {unit} (total {total:,.1f} samples/s)")
    left.set_xlabel(unit)
    left.set_ylabel("samples/s")

    merged = []
    for inst in instances:
        mine = latencies.get((inst["node"], inst["index"]), [])
        merged.extend(mine)
        if mine:
            x, y = cumulative(mine)
            right.step(x, y, where="post", linewidth=1, alpha=0.7,
                       label=f"{unit} {label(inst)}")
    if merged:
        x, y = cumulative(merged)
        right.step(x, y, where="post", linewidth=2.2, color="black", label="all (merged)")
        stats = report["total"]["latency_ms"]
        for name, style in (("p50", ":"), ("p99", "--"), ("p99.9", "-.")):
            right.axvline(stats[name], color="grey", linestyle=style, linewidth=1,
                          label=f"{name} {stats[name]:.3g} ms")
        if max(merged) > 0 and min(v for v in merged if v > 0) < max(merged) / 20:
            right.set_xscale("log")
    right.set_title("latency distribution (batches)")
    right.set_xlabel("latency (ms)")
    right.set_ylabel("share of batches at or below")
    right.set_ylim(0, 1.02)
    if merged:  # nothing was measured: no curves to name
        right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"ipexrun benchmark, {report['machine'].get('hostname', '')}, "
                 f"{report['created']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(directory / "report.png")


def main(argv):
    if len(argv) != 2:
        print("usage: report_chart.py DIR", file=sys.stderr)
        return 2
    try:
        draw(pathlib.Path(argv[1]))
    except ImportError as e:
        print(f"report_chart: cannot draw without matplotlib ({e}); "
              "install python3-matplotlib", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as e:
        print(f"report_chart: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
