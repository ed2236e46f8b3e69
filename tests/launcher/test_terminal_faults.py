"""The launcher's own output going nowhere: stdout on a full device, closed, or a pipe whose
reader has gone (`ipexrun ... | head -1`). What cannot be shown is either still in the log
files or a failed run with one line saying so; an endless program never keeps the launcher
running for a reader that left."""
import os
import signal
import subprocess
import time
import uuid

import pytest


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OMP_NUM_THREADS")}


def marked_processes(marker):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def errors(stderr):
    return [line for line in stderr.decode(errors="replace").splitlines() if ": error: " in line]


@pytest.mark.parametrize("args", [["--dry-run", "--no-python", "true"], ["--help"], ["--version"]],
                         ids=["dry-run", "help", "version"])
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_what_ipexrun_prints_itself_fails_the_run_when_it_cannot_be_written(ipexrun, args, stdout):
    if stdout == "full":
        with open("/dev/full", "wb") as full:
            r = subprocess.run([ipexrun, *args], stdout=full, stderr=subprocess.PIPE,
                               env=clean_env(), timeout=60)
    else:
        r = subprocess.run([ipexrun, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=clean_env(), timeout=60, preexec_fn=lambda: os.close(1))
    assert r.returncode == 1, r.stderr
    lines = errors(r.stderr)
    assert len(lines) == 1 and "stdout" in lines[0], r.stderr


@pytest.mark.parametrize("ninstances", ["1", "2"])
def test_an_endless_program_ends_when_the_reader_of_its_output_goes(ipexrun, ninstances):
    marker = "faults-" + uuid.uuid4().hex
    proc = subprocess.Popen([ipexrun, "--ninstances", ninstances, "--no-python", "sh", "-c",
                             'yes "$0"', marker], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env())
    try:
        assert marker.encode() in proc.stdout.readline()
        proc.stdout.close()  # what `| head -1` does after its line
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, err
    assert any("stdout" in line for line in errors(err)), err
    time.sleep(0.2)
    assert marked_processes(marker) == []


def test_output_to_a_full_stdout_without_log_files_fails_the_run(ipexrun):
    with open("/dev/full", "wb") as full:
        r = subprocess.run([ipexrun, "--ninstances", "1", "--no-python", "echo", "lost line"],
                           stdout=full, stderr=subprocess.PIPE, env=clean_env(), timeout=60)
    assert r.returncode != 0, r.stderr
    lost = [line for line in errors(r.stderr) if "output was lost" in line]
    assert len(lost) == 1 and "stdout" in lost[0] and "No space left" in lost[0], r.stderr


def test_with_log_files_a_reader_that_goes_loses_nothing(ipexrun, tmp_path):
    """The terminal is only a live view of what the log files hold: the instances go on."""
    go = tmp_path / "go"
    script = 'echo first; while [ ! -e "$0" ]; do sleep 0.02; done; seq 1 5000'
    proc = subprocess.Popen([ipexrun, "--ninstances", "1", "--log-dir", str(tmp_path / "logs"),
                             "--no-python", "sh", "-c", script, str(go)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        assert proc.stdout.readline() == b"[0] first\n"
        proc.stdout.close()
        go.touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert errors(err) == [], err
    assert any(b"stdout" in line and b"log" in line for line in err.splitlines()), err
    log = next((tmp_path / "logs").glob("*_instance_0_*"))
    expected = "first\n" + "".join(f"{n}\n" for n in range(1, 5001))
    assert log.read_text() == expected


@pytest.mark.parametrize("sig,logs,stderr", [
    (signal.SIGTERM, False, "apart"), (signal.SIGTERM, True, "apart"),
    (signal.SIGTERM, True, "joined"), (signal.SIGINT, False, "joined")],
    ids=["no-log-files", "log-files", "log-files-stderr-joined", "SIGINT-stderr-joined"])
def test_a_stop_signal_ends_the_run_while_nothing_reads_its_output(ipexrun, tmp_path, logs,
                                                                   stderr, sig):
    """A reader that stops reading without going away (a Popen whose stdout is never read, a
    terminal under Ctrl-S) holds the launcher's writes; a stop signal must still stop the run.
    With stderr joined to that pipe (`2>&1`), the launcher's own lines ("received SIGTERM")
    meet the full pipe too."""
    marker = "faults-" + uuid.uuid4().hex
    log_args = ["--log-dir", str(tmp_path / "logs")] if logs else []
    proc = subprocess.Popen([ipexrun, "--ninstances", "1", *log_args, "--no-python", "sh", "-c",
                             'yes "$0"', marker], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if stderr == "apart" else subprocess.STDOUT,
                            env=clean_env())
    try:
        time.sleep(1)  # `yes` fills the pipe at once; the launcher then waits for room
        proc.send_signal(sig)
        proc.wait(timeout=20)  # stdout still unread
        err = proc.stderr.read() if stderr == "apart" else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    time.sleep(0.2)
    assert marked_processes(marker) == []
    if not logs and stderr == "apart":
        lost = [line for line in errors(err) if "output was lost" in line]
        assert len(lost) == 1 and "nothing read it after the stop signal" in lost[0], err
