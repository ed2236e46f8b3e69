"""Nothing of a run outlives ipexrun, even when ipexrun itself is killed with SIGKILL: its
watchdog kills every process of the user whose environment holds the run's id
(IPEXRUN_RUN_ID), wherever the kernel has re-parented it. Nothing else is touched."""
import contextlib
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
        time.sleep(0.02)
    return check()


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def watchdog_of(launcher):
    """The launcher's watchdog: its child that shares its memory, hence its command line."""
    own = read_bytes(f"/proc/{launcher}/cmdline")
    children = read_bytes(f"/proc/{launcher}/task/{launcher}/children") or b""
    for child in children.split():
        if read_bytes(f"/proc/{int(child)}/cmdline") == own:
            return int(child)
    return None


def read_pid(path):
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def run(ipexrun, script, *pid_files):
    """ipexrun with one `sh -c script` instance; yields (launcher, watchdog, pids) once every
    pid file exists. Whatever is left is killed at the end."""
    launcher = subprocess.Popen([ipexrun, "--ninstances", "1", "--no-python", "sh", "-c", script],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: all(f.exists() for f in pid_files), 30), "the instance never started"
        assert wait_for(lambda: watchdog_of(launcher.pid) is not None, 10), "no watchdog"
        yield launcher, watchdog_of(launcher.pid), [read_pid(f) for f in pid_files]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for f in pid_files:
            pid = read_pid(f)
            if pid and not gone(pid):
                os.kill(pid, signal.SIGKILL)


def kill_and_wait_for_the_sweep(launcher, watchdog):
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=10)
    assert wait_for(lambda: gone(watchdog), 20), "the watchdog never finished"


def background(script, pid_file):
    """`script` in the background, its pid written to pid_file atomically."""
    return f"{script} & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}"


def test_setsid_grandchild_dies_with_a_sigkilled_launcher(ipexrun, tmp_path):
    helper = tmp_path / "helper.pid"
    script = background("setsid sleep 317", helper) + "; wait"
    with run(ipexrun, script, helper) as (launcher, watchdog, (pid,)):
        assert int(stat_fields(pid)[3]) != launcher.pid  # its own session: out of every group
        kill_and_wait_for_the_sweep(launcher, watchdog)
        assert wait_for(lambda: gone(pid), 5), "the setsid helper survived"


def test_reparented_grandchild_dies_with_a_sigkilled_launcher(ipexrun, tmp_path):
    """The helper's parent has exited, so the helper is no longer below the instance (ipexrun
    adopted it, and init takes it over when ipexrun dies); the instance itself sleeps on."""
    helper, instance = tmp_path / "helper.pid", tmp_path / "instance.pid"
    script = (f"sh -c '{background('setsid sleep 318', helper)}'; "
              f"echo $$ > {instance}.tmp; mv {instance}.tmp {instance}; exec sleep 301")
    with run(ipexrun, script, helper, instance) as (launcher, watchdog, (pid, instance_pid)):
        assert wait_for(lambda: int(stat_fields(pid)[1]) == launcher.pid, 10), "not re-parented"
        assert int(stat_fields(pid)[3]) != launcher.pid
        kill_and_wait_for_the_sweep(launcher, watchdog)
        assert wait_for(lambda: gone(pid), 5), "the re-parented helper survived"
        assert wait_for(lambda: gone(instance_pid), 5), "the instance survived"


def run_id_of(pid):
    for entry in (read_bytes(f"/proc/{pid}/environ") or b"").split(b"\0"):
        if entry.startswith(b"IPEXRUN_RUN_ID="):
            return entry.split(b"=", 1)[1].decode()
    return None


def test_processes_outside_the_run_are_left_alone(ipexrun, tmp_path):
    """Same user, same session, even another run's id or this run's id under another user:
    none of these is the run's, and all of them outlive the sweep."""
    helper, instance = tmp_path / "helper.pid", tmp_path / "instance.pid"
    script = (f"echo $$ > {instance}.tmp; mv {instance}.tmp {instance}; "
              + background("setsid sleep 322", helper) + "; wait")
    decoys = []
    try:
        with run(ipexrun, script, helper, instance) as (launcher, watchdog, (pid, instance_pid)):
            run_id = run_id_of(instance_pid)
            assert run_id and len(run_id) == 32
            # inherited by the helper (once its exec is through)
            assert wait_for(lambda: run_id_of(pid) == run_id, 10)
            env = dict(os.environ)
            decoys.append(subprocess.Popen(["sleep", "323"], env=env))
            decoys.append(subprocess.Popen(["setsid", "sleep", "324"], env=env))
            other_run = run_id[:-1] + ("0" if run_id[-1] != "0" else "1")
            decoys.append(subprocess.Popen(["sleep", "325"],
                                           env={**env, "IPEXRUN_RUN_ID": other_run}))
            if os.geteuid() == 0:  # this run's id, but another user's process
                decoys.append(subprocess.Popen(["sleep", "326"], user=65534, group=65534,
                                               env={**env, "IPEXRUN_RUN_ID": run_id}))
            kill_and_wait_for_the_sweep(launcher, watchdog)
            assert wait_for(lambda: gone(pid), 5), "the helper survived"
            for decoy in decoys:
                assert decoy.poll() is None, f"{decoy.args} was killed"
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()


def test_a_nested_run_is_swept_along_with_the_outer_one(ipexrun, tmp_path):
    """ipexrun started by another run's instance: its processes carry both runs' ids, so
    the outer watchdog finds the inner run's helpers itself."""
    helper = tmp_path / "helper.pid"
    inner = f"{ipexrun} --ninstances 1 --no-python sh -c '{background('setsid sleep 327', helper)}; wait'"
    with run(ipexrun, inner, helper) as (launcher, watchdog, (pid,)):
        assert wait_for(lambda: len((run_id_of(pid) or "").split()) == 2, 10)
        kill_and_wait_for_the_sweep(launcher, watchdog)
        assert wait_for(lambda: gone(pid), 5), "the inner run's helper survived"


def test_a_helper_that_keeps_forking_is_swept_to_the_last_process(ipexrun, tmp_path):
    """A setsid helper that keeps starting setsid helpers while the sweep runs: passes repeat
    until one finds nothing new."""
    pids, forker = tmp_path / "pids", tmp_path / "forker.pid"
    loop = f"while :; do setsid sleep 328 & echo $! >> {pids}; sleep 0.01; done"
    script = (background(f"setsid sh -c '{loop}'", forker) + "; "
              f"while [ $(cat {pids} 2>/dev/null | wc -l) -lt 40 ]; do sleep 0.05; done; wait")
    with run(ipexrun, script, forker) as (launcher, watchdog, (forker_pid,)):
        assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) >= 40, 30)
        kill_and_wait_for_the_sweep(launcher, watchdog)
        listed = [forker_pid] + [int(p) for p in pids.read_text().split()]
        try:
            assert wait_for(lambda: all(gone(p) for p in listed), 5), \
                [p for p in listed if not gone(p)]
        finally:
            for p in listed:
                if not gone(p):
                    os.kill(p, signal.SIGKILL)
