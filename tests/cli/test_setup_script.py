"""scripts/setup.sh stops before CMake with one line naming any package it cannot get.

apt-get, apt-cache and cmake are replaced by small fakes on PATH, so nothing is installed or
built; dpkg-query is the real one, and the package names below do not exist."""
import os
import shutil
import stat
import subprocess

from project_paths import REPO

MISSING = "ipex-test-no-such-package"


def fake_tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_setup(tmp_path, packages, apt_cache_candidate):
    tree = tmp_path / "repo"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", tree / "scripts" / "setup.sh")
    (tree / "scripts" / "packages.txt").write_text("# test list\n" + "\n".join(packages) + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake_tool(bin_dir, "apt-get", f'echo "apt-get $*" >> {calls}; exit 0')
    fake_tool(bin_dir, "apt-cache", f'printf "$1:\\n  Installed: (none)\\n  Candidate: '
                                    f'{apt_cache_candidate}\\n"')
    fake_tool(bin_dir, "cmake", f'echo "cmake $*" >> {calls}; exit 0')
    fake_tool(bin_dir, "sudo", '"$@"')
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", TMPDIR=str(tmp_path))
    r = subprocess.run(["bash", str(tree / "scripts" / "setup.sh")], capture_output=True,
                       text=True, env=env, timeout=60)
    return r, calls.read_text() if calls.exists() else ""


def test_a_package_apt_does_not_know_is_named_before_cmake(tmp_path):
    r, calls = run_setup(tmp_path, ["bash", MISSING], "(none)")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"setup: error: not available from the apt sources: {MISSING}"]
    assert "cmake" not in calls
    assert "apt-get install" not in calls
    assert not list(tmp_path.glob("ipex-setup-apt.*")), "the apt log was left behind"


def test_a_package_apt_failed_to_install_is_named_before_cmake(tmp_path):
    r, calls = run_setup(tmp_path, [MISSING, "bash"], "1.0-1")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"setup: error: apt-get could not install: {MISSING} (log: ")
    assert f"apt-get install -y -qq --no-install-recommends {MISSING}" in calls
    assert "cmake" not in calls


def test_installed_packages_go_straight_to_cmake(tmp_path):
    r, calls = run_setup(tmp_path, ["bash", "coreutils"], "(none)")
    assert "apt-get" not in calls
    assert calls.startswith("cmake -S"), (r.stderr, calls)
