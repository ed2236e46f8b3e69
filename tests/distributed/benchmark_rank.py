"""A benchmarked rank for the cluster report tests: ipex.benchmark (loaded from its source
file, so that no rank has to import torch) around a sleep of BENCH_SLEEP seconds a batch.

It reports its rank, host and the wall-clock times it started and stopped measuring as
metadata. BENCH_SAY_AFTER=N prints `MEASURING <rank>` once N batches have been handed over
(for a test that then kills a node); BENCH_CRASH_RANK/BENCH_CRASH_AFTER make that rank
SIGSEGV itself after so many batches.
"""
import importlib.util
import os
import pathlib
import signal
import socket
import time

source = pathlib.Path(os.environ["IPEX_BENCHMARK_SOURCE"])
spec = importlib.util.spec_from_file_location("ipex_benchmark", source)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)

rank = os.environ.get("RANK", "?")
pause = float(os.environ.get("BENCH_SLEEP", "0.005"))
say_after = int(os.environ.get("BENCH_SAY_AFTER", "0"))
crash_after = int(os.environ.get("BENCH_CRASH_AFTER", "0"))
crash_here = os.environ.get("BENCH_CRASH_RANK") == rank

benchmark.info("rank", rank)
benchmark.info("host", socket.gethostname())
time.sleep(0.2)  # a warm-up
benchmark.start(iterations=50)
benchmark.info("go_time", repr(time.time()))
done = 0
while not benchmark.should_stop():
    before = time.perf_counter()
    time.sleep(pause)
    benchmark.record(2, time.perf_counter() - before)
    done += 1
    if say_after and done == say_after:
        benchmark.flush()
        benchmark._reporter.send(b"", block=True)  # the bytes have left the process
        os.write(1, f"MEASURING {rank}\n".encode())
    if crash_here and done == crash_after:
        benchmark.flush()
        benchmark._reporter.send(b"", block=True)
        os.kill(os.getpid(), signal.SIGSEGV)
benchmark.info("stop_time", repr(time.time()))
benchmark.finish()
os.write(1, f"rank {rank} measured {done} batches\n".encode())
