"""ipexrun --benchmark-report end to end: real instances report over IPEXRUN_REPORT_FD, the
launcher aggregates them. Instances are small Python or sh programs (no torch), so each run
takes a second or two."""
import csv
import json
import os
import pathlib
import pty
import select
import subprocess
import sys
import time

import numpy
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from project_paths import REPO, TORCH_PYTHON  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
API_PROGRAM = HERE / "api_program.py"
PROTOCOL_PROGRAM = HERE / "protocol_program.sh"
API_SOURCE = REPO / "python_shim" / "ipex" / "benchmark.py"
PERCENTILES = {"p50": 50, "p90": 90, "p99": 99, "p99.9": 99.9}


def env_with(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IPEXRUN_", "BENCH_", "OMP_", "KMP_")) and k != "LD_PRELOAD"}
    env["IPEX_BENCHMARK_SOURCE"] = str(API_SOURCE)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def launch(ipexrun, *args, env=None, timeout=60):
    # The test programs do not use the ipex runtime; preloading it (and libtorch with it)
    # would only add seconds to every start on a busy machine.
    return subprocess.run([ipexrun, "--runtime-preload", "off", *map(str, args)],
                          capture_output=True, text=True, env=env or env_with(), timeout=timeout)


def read_report(directory):
    return json.loads((directory / "report.json").read_text())


def test_two_instances_write_table_json_latencies_and_chart(ipexrun, tmp_path):
    out = tmp_path / "report"
    r = launch(ipexrun, "--ninstances", 2, "--benchmark-report", out, "--benchmark-duration",
               1, "--python", TORCH_PYTHON, API_PROGRAM)
    assert r.returncode == 0, r.stderr
    assert "[0] instance 0 done" in r.stdout and "[1] instance 1 done" in r.stdout
    table = r.stdout[r.stdout.index("ipexrun: benchmark"):]
    for word in ("samples/s", "p50 ms", "p99.9 ms", "max ms", "node", "total"):
        assert word in table

    doc = read_report(out)
    assert doc["schema"] == "ipexrun-benchmark-report" and doc["version"] == 1
    for key in ("created", "command", "versions", "options", "machine", "plan", "instances",
                "nodes", "total", "latencies_file"):
        assert key in doc, key
    assert doc["options"]["duration_seconds"] == 1
    assert doc["versions"]["python"] == sys.version.split()[0] or doc["versions"]["python"]
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["hostname"]
    assert len(doc["plan"]["instances"]) == 2
    assert [i["index"] for i in doc["instances"]] == [0, 1]
    for inst in doc["instances"]:
        assert inst["status"] == "exit 0" and inst["complete"] and not inst["crashed"]
        stats = inst["stats"]
        assert stats["batches"] > 10, stats  # 1 s of 2 ms batches
        assert stats["samples"] == 4 * stats["batches"]
        # Measured over the common second, not over the whole process's life.
        assert 0.8 < stats["measured_seconds"] < 1.6, stats
        assert stats["latency_ms"]["p50"] >= 2.0  # each batch sleeps 2 ms
    total = doc["total"]
    assert total["throughput"] == pytest.approx(
        sum(i["stats"]["throughput"] for i in doc["instances"]))
    assert total["batches"] == sum(i["stats"]["batches"] for i in doc["instances"])

    with open(out / "latencies.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == total["batches"]
    merged = numpy.array([float(row["seconds"]) for row in rows]) * 1e3
    for name, q in PERCENTILES.items():
        assert total["latency_ms"][name] == pytest.approx(numpy.percentile(merged, q))

    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000  # two drawn panels, not an empty canvas


def test_merged_percentiles_match_numpy_on_known_samples(ipexrun, tmp_path):
    rng = numpy.random.default_rng(7)
    fast = rng.lognormal(-7, 0.3, 200)  # ~1 ms
    slow = rng.lognormal(-4, 0.5, 57)   # ~18 ms, fewer batches
    out = tmp_path / "report"
    env = env_with(BENCH_LATENCIES_0=" ".join(repr(float(x)) for x in fast),
                   BENCH_LATENCIES_1=" ".join(repr(float(x)) for x in slow))
    r = launch(ipexrun, "--ninstances", 2, "--benchmark-report", out, "--no-python",
               PROTOCOL_PROGRAM, env=env)
    assert r.returncode == 0, r.stderr
    doc = read_report(out)
    merged = numpy.concatenate([fast, slow])
    for name, q in PERCENTILES.items():
        assert doc["total"]["latency_ms"][name] == pytest.approx(
            numpy.percentile(merged, q) * 1e3, rel=1e-12)
        # The job's percentile is not the average of the instances' ones.
        per = [i["stats"]["latency_ms"][name] for i in doc["instances"]]
        assert per[0] == pytest.approx(numpy.percentile(fast, q) * 1e3, rel=1e-12)
        assert per[1] == pytest.approx(numpy.percentile(slow, q) * 1e3, rel=1e-12)
    assert doc["total"]["latency_ms"]["max"] == pytest.approx(merged.max() * 1e3)
    assert doc["total"]["samples"] == 257
    # Without a reported window, throughput is samples over the summed latencies.
    assert doc["instances"][0]["stats"]["throughput"] == pytest.approx(200 / fast.sum())
    assert doc["instances"][1]["meta"] == {"program": "protocol_program.sh"}


def test_a_crashed_instance_keeps_its_partial_numbers_and_is_marked(ipexrun, tmp_path):
    out = tmp_path / "report"
    env = env_with(BENCH_CRASH_AFTER=5, BENCH_CRASH_INDEX=1, BENCH_SLEEP=0.01)
    r = launch(ipexrun, "--ninstances", 2, "--benchmark-report", out, "--benchmark-duration",
               30, "--python", TORCH_PYTHON, API_PROGRAM, env=env)
    assert r.returncode == 128 + 11, r.stderr  # the crash's code, as without reporting
    doc = read_report(out)
    crashed = doc["instances"][1]
    assert crashed["crashed"] and not crashed["complete"]
    assert crashed["status"] == "killed by SIGSEGV"
    assert crashed["exit_code"] == 139
    assert crashed["stats"]["batches"] == 5  # everything it measured before dying
    other = doc["instances"][0]
    # Stopped by ipexrun with SIGTERM: the API handed over what it had measured.
    assert other["stats"]["batches"] > 0
    assert other["crashed"]  # SIGTERM'd: not a clean run either
    assert "killed by SIGSEGV (partial)" in r.stdout
    assert doc["total"]["batches"] == 5 + other["stats"]["batches"]
    assert (out / "report.png").stat().st_size > 10_000


def test_iterations_are_honoured_by_the_api(ipexrun, tmp_path):
    out = tmp_path / "report"
    r = launch(ipexrun, "--ninstances", 2, "--benchmark-report", out, "--benchmark-iterations",
               7, "--python", TORCH_PYTHON, API_PROGRAM)
    assert r.returncode == 0, r.stderr
    doc = read_report(out)
    assert [i["stats"]["batches"] for i in doc["instances"]] == [7, 7]
    assert doc["options"]["iterations"] == 7


def test_instances_start_measuring_together_after_unequal_warmups(ipexrun, tmp_path):
    out = tmp_path / "report"
    env = env_with(BENCH_WARMUP_SLEEP="0,1.5")
    r = launch(ipexrun, "--ninstances", 2, "--benchmark-report", out, "--benchmark-duration",
               0.5, "--python", TORCH_PYTHON, API_PROGRAM, env=env)
    assert r.returncode == 0, r.stderr
    doc = read_report(out)
    go = [float(i["meta"]["go_time"]) for i in doc["instances"]]
    assert abs(go[0] - go[1]) < 0.3, go  # instance 0 waited for instance 1's warm-up
    for inst in doc["instances"]:
        assert 0.4 < inst["stats"]["measured_seconds"] < 1.0


def test_progress_line_only_on_a_terminal(ipexrun, tmp_path):
    r = launch(ipexrun, "--benchmark-duration", 1.2, "--python", TORCH_PYTHON, API_PROGRAM)
    assert r.returncode == 0, r.stderr
    assert "ipexrun: benchmark:" not in r.stderr and "\r" not in r.stderr

    pid, terminal = pty.fork()
    if pid == 0:
        os.execve(ipexrun, [ipexrun, "--runtime-preload", "off", "--benchmark-duration", "1.2", "--python", TORCH_PYTHON,
                            str(API_PROGRAM)], env_with())
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert b"\r\x1b[Kipexrun: benchmark: " in seen and b"samples/s" in seen


def test_malformed_lines_are_reported_once_and_the_rest_counts(ipexrun, tmp_path):
    out = tmp_path / "report"
    env = env_with(BENCH_GARBAGE=1, BENCH_LATENCIES_0="0.002 0.004")
    r = launch(ipexrun, "--benchmark-report", out, "--no-python", PROTOCOL_PROGRAM, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("benchmark report: unknown line 'bogus words here'") == 1
    inst = read_report(out)["instances"][0]
    assert inst["malformed_lines"] == 2 and inst["stats"]["batches"] == 2


@pytest.mark.parametrize("args, message", [
    (["--benchmark-duration", "-1"], "--benchmark-duration"),
    (["--benchmark-iterations", "0"], "--benchmark-iterations"),
    (["--sweep", "--sweep-layouts", "2x"], "layout '2x'"),
    (["--sweep-layouts", "3x1:glibc"], "glibc"),
    (["--sweep-latency-budget", "abc"], "--sweep-latency-budget"),
    (["--benchmark-report", "/proc/ipexrun-report"], "cannot create --benchmark-report"),
    (["--nnodes", "2", "--sweep"], "--sweep"),
])
def test_bad_benchmark_options_are_one_line_usage_errors(ipexrun, args, message):
    r = launch(ipexrun, *args, "--no-python", "true")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_dry_run_shows_what_instances_are_told(ipexrun):
    r = launch(ipexrun, "--dry-run", "--ninstances", 2, "--benchmark-duration", 2.5,
               "--benchmark-iterations", 9, "--no-python", "true")
    assert r.returncode == 0, r.stderr
    for inst in json.loads(r.stdout)["instances"]:
        assert inst["env"]["IPEXRUN_REPORT_FD"] == "3"
        assert inst["env"]["IPEXRUN_BENCHMARK_DURATION"] == "2.5"
        assert inst["env"]["IPEXRUN_BENCHMARK_ITERATIONS"] == "9"
    plain = launch(ipexrun, "--dry-run", "--no-python", "true")
    assert "IPEXRUN_REPORT_FD" not in plain.stdout


def test_sweep_ranks_layouts_and_prints_a_command_that_plans(ipexrun, tmp_path):
    started = time.monotonic()
    r = launch(ipexrun, "--sweep", "--benchmark-duration", 0.5, "--benchmark-report",
               tmp_path / "sweep", "--python", TORCH_PYTHON, API_PROGRAM, timeout=120)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert elapsed < 60, elapsed
    table = r.stdout[r.stdout.index("ipexrun: sweep, best first"):]
    rows = [line.split() for line in table.splitlines()[2:] if line.strip()[:1].isdigit()]
    # Every even split of this machine's cores, each under every allocator found.
    cores = len(os.sched_getaffinity(0))
    shapes = {f"{n}x{cores // n}" for n in range(1, cores + 1) if cores % n == 0}
    assert {row[1].split(":")[0] for row in rows} == shapes
    throughputs = [float(row[2]) for row in rows]
    assert throughputs == sorted(throughputs, reverse=True) and throughputs[0] > 0
    best = r.stdout.split("best: ", 1)[1].splitlines()[0]
    assert best.startswith("ipexrun ") and "--sweep" not in best
    assert f"--ninstances {rows[0][1].split('x')[0]}" in best
    # Each layout's own report, and the best command really plans.
    assert (tmp_path / "sweep" / f"layout-{rows[0][1]}" / "report.json").is_file()
    words = best.split()
    words = [w for w in words[1:] if w != "--sweep"]
    plan = subprocess.run([ipexrun, "--dry-run", *words], capture_output=True, text=True,
                          env=env_with(), timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert len(json.loads(plan.stdout)["instances"]) == int(rows[0][1].split("x")[0])


def test_sweep_with_an_impossible_latency_budget_finds_nothing(ipexrun):
    r = launch(ipexrun, "--sweep", "--sweep-layouts", "1x1", "--sweep-latency-budget", 0.001,
               "--benchmark-iterations", 5, "--python", TORCH_PYTHON, API_PROGRAM)
    assert r.returncode == 1, r.stderr
    assert "over the latency budget" in r.stdout
    assert "no layout met the p99 budget" in r.stdout


def test_python_api_without_ipexrun_writes_a_local_file(tmp_path):
    out = tmp_path / "records.txt"
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('b', {str(API_SOURCE)!r})\n"
        "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
        "for i in b.batches(batch_size=2, warmup=1, iterations=6): pass\n"
        "b.record(3, 0.5)\n"
        "print(json.dumps(b.summary()))\n")
    env = env_with(IPEX_BENCHMARK_FILE=out)
    r = subprocess.run([TORCH_PYTHON, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["batches"] == 7 and summary["samples"] == 6 * 2 + 3
    assert summary["max_ms"] == pytest.approx(500)
    lines = out.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith("r ")) == 7
    assert "end" in lines


def test_ipex_package_exposes_the_api():
    code = "import ipex, intel_extension_for_pytorch as i; print(ipex.benchmark.record is i.benchmark.record)"
    env = env_with()
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([TORCH_PYTHON, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
