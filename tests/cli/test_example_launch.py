"""The main job, for real: two instances of the bundled example on this machine."""
import os
import re
import subprocess

from project_paths import REPO


def expand(text):
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


def test_two_instance_example_runs_on_separate_cpus(ipexrun, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "LD_PRELOAD", "KMP_AFFINITY")}
    r = subprocess.run([ipexrun, "--ninstances", "2", "--log-dir", str(tmp_path),
                        str(REPO / "scripts" / "example_inference.py"), "--iterations", "2"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lines = re.findall(r"instance (\d): CPUs (\S+) \(main thread on (\S+)\), OMP_NUM_THREADS=(\d+), torch threads (\d+), "
                       r".* checksum (\S+)", r.stdout)
    assert sorted(line[0] for line in lines) == ["0", "1"], r.stdout
    cpus = {line[0]: line[1] for line in lines}
    assert cpus["0"] != cpus["1"]
    for line in lines:
        # The kernel's mask of the main thread lies inside the planned CPUs, and the OpenMP
        # team is as large as the instance.
        assert set(expand(line[2])) <= set(expand(line[1])), line
        assert int(line[3]) == int(line[4]) == len(expand(line[1])), line
    assert lines[0][5] == lines[1][5]  # same seed, same model: same result
    assert len(list(tmp_path.iterdir())) >= 3  # one log per instance and one for ipexrun
