"""Benchmark numbers from inside a program, collected by `ipexrun --benchmark-report DIR`.

    import ipex
    for _ in ipex.benchmark.batches(batch_size=32, warmup=10):
        model(x)                        # each pass of the loop body is one timed batch

or, when the program times its own batches:

    ipex.benchmark.start()              # warm-up is over: wait for the other instances
    while not ipex.benchmark.should_stop():
        ...
        ipex.benchmark.record(32, seconds)
    ipex.benchmark.finish()

`record` appends to an in-memory buffer (well under a microsecond); the buffer goes to ipexrun
in bulk, over the descriptor ipexrun hands over in IPEXRUN_REPORT_FD, with non-blocking
writes: when ipexrun is slow to read, the bytes wait in memory and the program never stops.
`--benchmark-duration` / `--benchmark-iterations` reach the program as
IPEXRUN_BENCHMARK_DURATION / IPEXRUN_BENCHMARK_ITERATIONS and win over the program's own
defaults, so every instance runs for the same time and stops together.

Without ipexrun the same lines go to the file named by IPEX_BENCHMARK_FILE, if set, and
`summary()` gives the numbers of this process either way.

The line protocol, for programs in other languages, is in the README ("Benchmarking") and in
launcher/report_protocol.h.
"""
import array
import atexit
import contextlib
import os
import select
import signal
import time

__all__ = ["record", "start", "should_stop", "finish", "flush", "batches", "timed", "info",
           "summary"]

# A flush happens after this many records or this much recorded latency, whichever first, so
# that a crash loses at most a tenth of a second of numbers.
_FLUSH_RECORDS = 1024
_FLUSH_SECONDS = 0.1
_DEFAULT_ITERATIONS = 100


def _env_number(name, kind):
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r} must be positive")
    return value


class _Reporter:
    """Everything one process records except the hot path's buffers (module globals below,
    so that record() is two array appends and a float add)."""

    def __init__(self):
        self.unsent = bytearray()  # encoded records the descriptor did not take yet
        self.flushed = 0           # records handed over so far
        self.latencies = array.array("d")  # every flushed latency, for summary()
        self.samples = 0.0
        self.started_at = None     # perf_counter() when measurement began
        self.deadline = None
        self.finished = False
        self.duration = _env_number("IPEXRUN_BENCHMARK_DURATION", float)
        self.iterations = _env_number("IPEXRUN_BENCHMARK_ITERATIONS", int)
        self.fd = None
        self.file = None
        fd_text = os.environ.get("IPEXRUN_REPORT_FD", "").strip()
        if fd_text:
            try:
                self.fd = int(fd_text)
                os.set_blocking(self.fd, False)
            except (ValueError, OSError):
                self.fd = None  # not ours to use (a stale variable in a child process)
        elif os.environ.get("IPEX_BENCHMARK_FILE"):
            self.file = open(os.environ["IPEX_BENCHMARK_FILE"], "a", encoding="ascii")

    # Writing ---------------------------------------------------------------------------

    def flush(self, block=False):
        global _pending
        _pending = 0.0
        count = len(_seconds)
        if count:
            self.flushed += count
            self.latencies.extend(_seconds)
            self.samples += sum(_samples)
            if self.file is not None:
                text = "".join(["r %.17g %.17g\n" % st for st in zip(_samples, _seconds)])
                payload = text.encode("ascii")
            else:  # binary frame: formatting text would cost more than the record itself
                payload = b"b %d\n" % count + _samples.tobytes() + _seconds.tobytes()
            del _samples[:]
            del _seconds[:]
            if self.started_at is not None:
                payload += b"w %r\n" % (time.perf_counter() - self.started_at)
            self.send(payload, block)

    def send(self, payload, block=False):
        if self.file is not None:
            self.file.write(payload.decode("ascii"))
            self.file.flush()
            return
        if self.fd is None:
            return
        self.unsent += payload
        while self.unsent:
            try:
                n = os.write(self.fd, self.unsent)
            except BlockingIOError:
                if not block:
                    return  # ipexrun is busy: the bytes wait here, the program goes on
                select.select([], [self.fd], [], 1.0)
                continue
            except OSError:  # ipexrun is gone: nobody will read these numbers
                self.fd = None
                self.unsent.clear()
                return
            del self.unsent[:n]

    # Phases ----------------------------------------------------------------------------

    def start(self, duration=None, iterations=None):
        if self.started_at is not None:
            return
        if self.duration is None and self.iterations is None:
            self.duration, self.iterations = duration, iterations
        self.flush(block=True)
        if self.fd is not None:
            self.send(b"ready\n", block=True)
            self.wait_for_go()
        self.started_at = time.perf_counter()
        if self.duration:
            self.deadline = self.started_at + self.duration

    def wait_for_go(self):
        """Blocks until ipexrun says every instance has warmed up (or ipexrun is gone)."""
        received = b""
        while self.fd is not None and b"go\n" not in received:
            select.select([self.fd], [], [])
            try:
                chunk = os.read(self.fd, 256)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            received += chunk

    def should_stop(self):
        if self.iterations is not None and self.flushed + len(_seconds) >= self.iterations:
            return True
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def finish(self):
        if self.finished:
            return
        self.finished = True
        self.flush(block=True)
        self.send(b"end\n", block=True)


_reporter = None
# The hot path's state: records not yet flushed, and their summed latency.
_samples = array.array("d")
_seconds = array.array("d")
_append_samples = _samples.append
_append_seconds = _seconds.append
_pending = 0.0


def _flush_on_sigterm(signum, frame):
    """ipexrun stops the other instances with SIGTERM when one fails: hand over what was
    measured, then die of the signal as the program would have."""
    if _reporter is not None:
        _reporter.flush(block=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _get():
    global _reporter
    if _reporter is None:
        _reporter = _Reporter()
        atexit.register(_reporter.finish)
        if _reporter.fd is not None:
            try:  # only where the program has no SIGTERM handler of its own
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    signal.signal(signal.SIGTERM, _flush_on_sigterm)
            except ValueError:
                pass  # not the main thread
    return _reporter


def record(samples, seconds):
    """One measured batch: `samples` inputs processed in `seconds` (its latency)."""
    global _pending
    _append_samples(samples)
    _append_seconds(seconds)
    _pending += seconds
    if _pending >= _FLUSH_SECONDS or len(_seconds) >= _FLUSH_RECORDS:
        (_reporter or _get()).flush()


def start(duration=None, iterations=None):
    """Warm-up is over: under ipexrun, waits until every instance has called start(), so that
    they all measure at the same time. `duration` (seconds) or `iterations` (batches) end
    the measurement unless ipexrun's --benchmark-duration/--benchmark-iterations say
    otherwise."""
    _get().start(duration, iterations)


def should_stop():
    """True once the run's duration or iteration count is reached."""
    return _get().should_stop()


def flush():
    """Hands the buffered records over now (still without blocking)."""
    _get().flush()


def finish():
    """Measurement done: sends what is left and marks the run complete (also done at exit)."""
    _get().finish()


def info(key, value):
    """Metadata for the report, e.g. info("model", "resnet50"); one word as key."""
    key = str(key).strip()
    if not key or any(c.isspace() for c in key):
        raise ValueError(f"benchmark info key must be one word, not {key!r}")
    text = " ".join(str(value).split())
    _get().send(f"m {key} {text}\n".encode("ascii", "replace"))


def batches(batch_size, warmup=5, iterations=None, duration=None):
    """Yields batch numbers: the first `warmup` passes are not timed, then start() is called
    and every further pass of the loop body is recorded as one batch of `batch_size`
    samples, until should_stop(). Without ipexrun's settings, `duration` or `iterations`
    end the loop (100 batches if neither is given)."""
    if iterations is None and duration is None:
        iterations = _DEFAULT_ITERATIONS
    r = _get()
    for i in range(warmup):
        yield i
    r.start(duration, iterations)
    i = 0
    try:
        before = time.perf_counter()
        while not r.should_stop():
            yield i
            now = time.perf_counter()
            record(batch_size, now - before)
            before = now
            i += 1
    finally:
        r.finish()


@contextlib.contextmanager
def timed(samples):
    """Records the time the body takes as one batch of `samples`."""
    before = time.perf_counter()
    yield
    record(samples, time.perf_counter() - before)


def summary():
    """This process's numbers: batches, samples, throughput (samples/s over the recorded
    time) and latency percentiles in milliseconds."""
    r = _get()
    latencies = sorted(list(r.latencies) + list(_seconds))
    samples = r.samples + sum(_samples)
    busy = sum(latencies)
    out = {"batches": len(latencies), "samples": samples,
           "throughput": samples / busy if busy > 0 else 0.0}
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
        out[name + "_ms"] = _percentile(latencies, p) * 1e3 if latencies else None
    out["max_ms"] = latencies[-1] * 1e3 if latencies else None
    return out


def _percentile(sorted_values, p):
    """Linear interpolation between closest ranks (numpy's default, and ipexrun's)."""
    position = (len(sorted_values) - 1) * p / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
