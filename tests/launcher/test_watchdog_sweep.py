"""A helper that leaves its instance's process group and session (setsid) does not outlive
ipexrun, even when ipexrun itself is killed with SIGKILL: its watchdog kills every process
below the instances."""
import os
import signal
import subprocess
import time

import pytest


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# Known race, not fixed yet: the watchdog wakes when the launcher's descriptors close, but the
# kernel SIGKILLs the instance (PR_SET_PDEATHSIG) a moment later in the same exit, and the
# setsid()'d helper is then re-parented away before the watchdog has walked the tree. It wins
# on a quiet machine and lost once in a full CI run under load.
@pytest.mark.xfail(strict=False, reason="the sweep races the instance's death signal (see comment)")
def test_setsid_grandchild_dies_with_a_sigkilled_launcher(ipexrun, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = f"setsid sleep 317 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"
    launcher = subprocess.Popen([ipexrun, "--ninstances", "1", "--no-python", "sh", "-c", script],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(pid_file.exists, 20), "the instance never started its helper"
        grandchild = int(pid_file.read_text())
        with open(f"/proc/{grandchild}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[3]) != launcher.pid  # its own session: out of the instance's group
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        assert wait_for(lambda: gone(grandchild), 10), "the setsid helper survived"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if pid_file.exists() and not gone(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
