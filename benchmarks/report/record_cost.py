"""Cost of one ipex.benchmark.record() call, against an empty Python call of the same
signature, with a real reader process on the other end of the report socket.

    /usr/bin/python3 benchmarks/report/record_cost.py
"""
import importlib.util
import os
import pathlib
import socket
import statistics
import subprocess
import time

N = 300_000
ROUNDS = 7


def load_api(fd):
    os.environ["IPEXRUN_REPORT_FD"] = str(fd)
    source = pathlib.Path(__file__).resolve().parents[2] / "python_shim" / "ipex" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("ipex_benchmark", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call_ns(function):
    start = time.perf_counter()
    for _ in range(N):
        function(32, 0.000001)
    return (time.perf_counter() - start) / N * 1e9


def main():
    ours, theirs = socket.socketpair()
    reader = subprocess.Popen(["cat"], stdin=theirs.fileno(), stdout=subprocess.DEVNULL)
    theirs.close()
    api = load_api(ours.fileno())

    def empty(samples, seconds):
        pass

    record, baseline = [], []
    for _ in range(ROUNDS):  # alternated, so that load from other jobs hits both alike
        record.append(per_call_ns(api.record))
        baseline.append(per_call_ns(empty))
    api.finish()
    ours.close()
    reader.wait()
    r, b = statistics.median(record), statistics.median(baseline)
    print(f"record(): median {r:.0f} ns a call over {ROUNDS} rounds of {N:,} "
          f"(rounds {min(record):.0f}-{max(record):.0f}); empty call {b:.0f} ns; "
          f"record costs {r - b:.0f} ns more, {r / b:.1f}x an empty call")


if __name__ == "__main__":
    main()
