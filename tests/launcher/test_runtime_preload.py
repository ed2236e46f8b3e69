"""ipexrun's default environment and the runtime library together: the instance really runs
with libipex_runtime.so in front of the OpenMP runtime, so its omp_set_num_threads
interposer sees torch's team-size changes (the thread-count-change detector)."""
import json
import os
import subprocess
import textwrap

import pytest

from project_paths import BUILD, TORCH_PYTHON

PROGRAM = textwrap.dedent("""
    import os, torch, ipex
    C = ipex._C
    g = C.omp_thread_generation()
    torch.set_num_threads(1)
    torch.set_num_threads(2)
    print("bumps", C.omp_thread_generation() - g)
    print("omp", C.openmp_runtime_name())
    print("preload", os.environ.get("LD_PRELOAD", ""))
""")


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "thread_watch.py"
    path.write_text(PROGRAM)
    return path


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "KMP_", "GOMP_")) and k != "LD_PRELOAD"}
    env["PYTHONPATH"] = str(BUILD / "python")
    return env


def test_runtime_library_comes_before_the_openmp_runtime_in_the_plan(ipexrun, program):
    plan = json.loads(subprocess.run([ipexrun, "--ninstances", "1", "--python", TORCH_PYTHON,
                                      "--dry-run", str(program)], env=clean_env(), check=True,
                                     capture_output=True, text=True).stdout)
    preload = plan["instances"][0]["env"].get("LD_PRELOAD", "").split(":")
    runtime = [i for i, p in enumerate(preload) if p.endswith("libipex_runtime.so")]
    openmp = [i for i, p in enumerate(preload) if "libiomp5" in p or "libomp" in p]
    if not runtime:
        pytest.skip("the runtime library is not built in this tree")
    if openmp:
        assert runtime[0] < openmp[0], preload


def test_preloaded_runtime_sees_team_size_changes_in_a_launched_instance(ipexrun, program):
    if not (BUILD / "runtime" / "libipex_runtime.so").exists():
        pytest.skip("the runtime library is not built in this tree")
    run = subprocess.run([ipexrun, "--ninstances", "1", "--ncores-per-instance", "2",
                          "--python", TORCH_PYTHON, str(program)], env=clean_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    fields = dict(line.split(" ", 1)[1].split(" ", 1) for line in run.stdout.splitlines()
                  if line.startswith("[0] "))
    assert "libipex_runtime.so" in fields["preload"], fields
    assert int(fields["bumps"]) >= 2, fields
