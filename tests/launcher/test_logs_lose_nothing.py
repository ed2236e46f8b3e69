"""--log-dir loses nothing: log files hold exactly the bytes an instance wrote, a log that
cannot be written (full disk) fails the run with one line naming it, and a log folder that
runs out of inodes part-way leaves nothing behind. Full disks are small tmpfs mounts (needs
root; skipped otherwise), always unmounted again."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest


def run(ipexrun, *args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OMP_NUM_THREADS")}
    return subprocess.run([ipexrun, *args], capture_output=True, env=env, timeout=timeout)


@contextlib.contextmanager
def small_tmpfs(size="64k", inodes=8):
    folder = tempfile.mkdtemp(prefix=f"ipex-fulldisk-{uuid.uuid4().hex[:8]}-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}",
                            "tmpfs", folder], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", folder], check=True)
    finally:
        os.rmdir(folder)


def only_log_files(folder):
    return sorted(os.listdir(folder))


def test_log_file_holds_exactly_the_bytes_written(ipexrun, tmp_path):
    payload = bytes((i * 131 + i // 7) & 0xFF for i in range(200_000)) + b"x" * 70_000
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    r = run(ipexrun, "--ninstances", "1", "--log-dir", str(tmp_path / "logs"), "--no-python",
            "cat", str(source))
    assert r.returncode == 0, r.stderr
    logs = [p for p in (tmp_path / "logs").iterdir() if "_instance_" in p.name]
    assert len(logs) == 1
    assert logs[0].read_bytes() == payload


def test_a_full_disk_fails_the_run_and_names_the_incomplete_log(ipexrun):
    with small_tmpfs(size="64k", inodes=64) as disk:
        program = f"{sys.executable} -c \"import sys; sys.stdout.write('y' * 300000)\""
        r = run(ipexrun, "--ninstances", "1", "--log-dir", disk, "--no-python", "sh", "-c",
                program)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0, err
        assert "LOG ERROR" not in err
        lost = [line for line in err.splitlines() if "output was lost" in line]
        assert len(lost) == 1, err
        instance_log = [f for f in os.listdir(disk) if "_instance_0_" in f]
        assert instance_log and instance_log[0] in lost[0], err
        assert "log incomplete" in err  # the summary row
        # The live terminal view still got everything.
        assert r.stdout.count(b"y") == 300000


@pytest.mark.parametrize("subfolder", ["", "new/deeper"])
def test_running_out_of_inodes_part_way_leaves_nothing(ipexrun, subfolder):
    # The root takes one inode; two instances need three files (plus the new folders).
    with small_tmpfs(size="1m", inodes=3 + subfolder.count("/") + bool(subfolder)) as disk:
        log_dir = os.path.join(disk, subfolder) if subfolder else disk
        r = run(ipexrun, "--ninstances", "2", "--log-dir", log_dir, "--no-python", "true")
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0, err
        errors = [line for line in err.splitlines() if "error" in line]
        assert len(errors) == 1 and "No space left on device" in errors[0], err
        assert only_log_files(disk) == [], "a refused start left files behind"


def test_a_log_folder_deleted_during_the_run_fails_the_run(ipexrun, tmp_path):
    """The files stay writable once unlinked, but what is written to them is gone."""
    logs, go = tmp_path / "logs", tmp_path / "go"
    script = 'while [ ! -e "$0" ]; do sleep 0.02; done; echo written-after'
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OMP_NUM_THREADS")}
    proc = subprocess.Popen([ipexrun, "--ninstances", "2", "--log-dir", str(logs), "--no-python",
                             "sh", "-c", script, str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while len(list(logs.glob("*_instance_*"))) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        shutil.rmtree(logs)
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode(errors="replace")
    assert proc.returncode != 0, err
    assert out.count(b"written-after") == 2
    lost = [line for line in err.splitlines() if "output was lost" in line]
    assert len(lost) == 1 and "deleted" in lost[0] and str(logs) in lost[0], err
