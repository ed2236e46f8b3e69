"""Codeless mode: programs run unchanged under ipex.cpu.auto_ipex, directly and via ipexrun."""
import os
import subprocess
import textwrap

import pytest

from project_paths import BUILD, TORCH_PYTHON

MODEL = textwrap.dedent("""
    from __future__ import annotations  # must stay the first statement: no prelude pasted
    import sys
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8 * 16 * 16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 3, 16, 16)
    MODE = sys.argv[1]
    if MODE == "train":
        net.train()
    else:
        net.eval()
    with torch.no_grad():
        reference = net.forward(x)  # .forward() is not hooked: plain eager
        out = net(x)
        out = net(x)
    print("file", __file__)
    print("args", sys.argv[1:])
    print("maxdiff", (out - reference).abs().max().item())
""")


def run(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"))
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, **kw)


@pytest.fixture()
def script(tmp_path):
    path = tmp_path / "model script.py"
    path.write_text(MODEL)
    return path


def test_eval_model_is_optimised_and_gives_eager_results(script):
    r = run([TORCH_PYTHON, "-m", "ipex.cpu.auto_ipex", "--auto-ipex-verbose", str(script),
             "eval", "a b"])
    assert r.returncode == 0, r.stderr
    assert f"file {script}" in r.stdout
    assert "args ['eval', 'a b']" in r.stdout
    diff = float(r.stdout.split("maxdiff")[1].split()[0])
    assert diff < 1e-4
    assert "1 module(s) optimised (Net), 2 optimised call(s)" in r.stderr, r.stderr


def test_training_mode_is_left_alone(script):
    r = run([TORCH_PYTHON, "-m", "ipex.cpu.auto_ipex", "--auto-ipex-verbose", str(script),
             "train"])
    assert r.returncode == 0, r.stderr
    assert "0 module(s) optimised" in r.stderr
    assert "maxdiff 0.0" in r.stdout


def test_bfloat16_stays_close(script):
    r = run([TORCH_PYTHON, "-m", "ipex.cpu.auto_ipex", "--dtype", "bfloat16",
             "--auto-ipex-verbose", str(script), "eval"])
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split("maxdiff")[1].split()[0]) < 0.1
    assert "1 module(s) optimised" in r.stderr


def test_module_programs_run(tmp_path):
    pkg = tmp_path / "codeless_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("import sys\nprint('module ran', sys.argv[1:])\n")
    env_path = f"{BUILD / 'python'}:{tmp_path}"
    r = subprocess.run([TORCH_PYTHON, "-m", "ipex.cpu.auto_ipex", "--module", "codeless_pkg", "x"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=env_path))
    assert r.returncode == 0, r.stderr
    assert "module ran ['x']" in r.stdout


def test_through_ipexrun(ipexrun, script):
    r = run([ipexrun, "--auto-ipex", "--auto-ipex-verbose", "--ninstances", "1", str(script),
             "eval"])
    assert r.returncode == 0, r.stderr
    assert "[0] auto_ipex: 1 module(s) optimised" in r.stdout + r.stderr
