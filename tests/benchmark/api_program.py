"""A benchmarked program for the tests: uses ipex.benchmark (loaded from the source file, so
that the test need not import torch), sleeps SLEEP seconds a batch.

Environment knobs (the tests set them): BENCH_WARMUP_SLEEP (seconds before start(), per
instance index as "0.1,1.5"), BENCH_CRASH_AFTER (batches, then SIGSEGV, on instance
BENCH_CRASH_INDEX), BENCH_SLEEP (seconds a batch, default 0.002).
"""
import importlib.util
import os
import pathlib
import signal
import sys
import time

source = pathlib.Path(os.environ["IPEX_BENCHMARK_SOURCE"])
spec = importlib.util.spec_from_file_location("ipex_benchmark", source)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)

index = int(os.environ.get("IPEXRUN_INSTANCE_INDEX", "0"))
warmups = [float(x) for x in os.environ.get("BENCH_WARMUP_SLEEP", "0").split(",")]
time.sleep(warmups[min(index, len(warmups) - 1)])
crash_after = int(os.environ.get("BENCH_CRASH_AFTER", "0"))
crash_index = int(os.environ.get("BENCH_CRASH_INDEX", "0"))
pause = float(os.environ.get("BENCH_SLEEP", "0.002"))

benchmark.info("python_version", sys.version.split()[0])
for i in benchmark.batches(batch_size=4, warmup=2, iterations=50):
    if i == 0:
        benchmark.info("go_time", repr(time.time()))
    if crash_after and index == crash_index and i == crash_after:
        benchmark.flush()
        benchmark._reporter.send(b"", block=True)  # make sure the bytes left the process
        os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(pause)
print(f"instance {index} done", flush=True)
