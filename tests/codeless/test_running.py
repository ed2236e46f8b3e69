"""How programs are run: as `python program` and `python -m name` would run them (__file__,
sys.argv, sys.path[0], `from __future__`), under both package names, and through ipexrun."""
import os
import textwrap

import pytest

from codeless_run import codeless_argv, environment, optimised_calls, run
from project_paths import TORCH_PYTHON

WHERE = textwrap.dedent("""
    from __future__ import annotations  # must stay the first statement: nothing pasted above
    import sys
    print("file", repr(__file__))
    print("argv", sys.argv)
    print("path0", repr(sys.path[0]))
    print("name", __name__, getattr(__spec__, "name", None), getattr(__spec__, "origin", None),
          repr(__package__))
""")

MODEL = textwrap.dedent("""
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
    net.train(sys.argv[1] == "train")
    with torch.no_grad():
        outs = [net(x) for _ in range(3)]
    print("sum", float(sum(o.double().sum() for o in outs)))
""")


def lines(text, key):
    return [l[len(key) + 1:] for l in text.splitlines() if l.startswith(key + " ")]


@pytest.mark.parametrize("typed", ["where.py", "./where.py", "sub/../where.py", "{abs}/where.py"])
def test_file_argv_and_path_are_pythons(typed, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "where.py").write_text(WHERE)
    typed = typed.format(abs=tmp_path)
    plain = run([TORCH_PYTHON, typed, "a b", "--dtype"], cwd=tmp_path)
    codeless = run(codeless_argv() + [typed, "a b", "--dtype"], cwd=tmp_path)
    assert plain.returncode == 0 and codeless.returncode == 0, plain.stderr + codeless.stderr
    for key in ("file", "argv", "path0", "name"):
        assert lines(codeless.stdout, key) == lines(plain.stdout, key), key
    assert os.path.isabs(eval(lines(codeless.stdout, "file")[0]))


def test_modules_run_as_with_dash_m(tmp_path):
    pkg = tmp_path / "codeless_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(WHERE)
    env = environment(tmp_path)
    plain = run([TORCH_PYTHON, "-m", "codeless_pkg", "x"], cwd=tmp_path, env=env)
    codeless = run(codeless_argv("--module") + ["codeless_pkg", "x"], cwd=tmp_path, env=env)
    assert plain.returncode == 0 and codeless.returncode == 0, plain.stderr + codeless.stderr
    for key in ("file", "argv", "name"):
        assert lines(codeless.stdout, key) == lines(plain.stdout, key), key


@pytest.mark.parametrize("package", ["ipex", "intel_extension_for_pytorch"])
def test_both_package_names_run_with_dash_m(package, tmp_path):
    script = tmp_path / "model script.py"
    script.write_text(MODEL)
    plain = run([TORCH_PYTHON, str(script), "eval"])
    codeless = run(codeless_argv(package=package) + [str(script), "eval"])
    assert codeless.returncode == 0, codeless.stderr
    assert abs(float(lines(codeless.stdout, "sum")[0]) - float(lines(plain.stdout, "sum")[0])) < 1e-2
    assert "1 module(s) optimised (Net)" in codeless.stderr
    assert optimised_calls(codeless.stderr) == 2


def test_training_mode_is_left_alone(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    plain = run([TORCH_PYTHON, str(script), "train"])
    codeless = run(codeless_argv() + [str(script), "train"])
    assert codeless.returncode == 0, codeless.stderr
    assert "0 module(s) optimised" in codeless.stderr
    assert lines(codeless.stdout, "sum") == lines(plain.stdout, "sum")


def test_exit_code_and_errors_are_the_programs(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint('ran')\nsys.exit(7)\n")
    r = run(codeless_argv() + [str(script)])
    assert r.returncode == 7 and "ran" in r.stdout
    missing = run(codeless_argv() + [str(tmp_path / "nope.py")])
    assert missing.returncode == 2 and "nope.py: no such file" in missing.stderr


def test_through_ipexrun(ipexrun, tmp_path):
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    plain = run([TORCH_PYTHON, str(script), "eval"])
    r = run([ipexrun, "--auto_ipex", "--auto-ipex-verbose", "--ninstances", "1", str(script), "eval"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "[0] auto_ipex: 1 module(s) optimised (Net), 2 optimised call(s)" in out, out
    got = float(out.split("sum ")[1].split()[0])
    assert abs(got - float(lines(plain.stdout, "sum")[0])) < 1e-2
    assert "traced graphs" not in out, out  # eager copies are the default


def test_graph_mode_through_ipexrun(ipexrun, tmp_path):
    script = tmp_path / "model.py"
    script.write_text(MODEL)
    plain = run([TORCH_PYTHON, str(script), "eval"])
    r = run([ipexrun, "--auto_ipex", "--ipex-graph-mode", "--auto-ipex-verbose", "--ninstances", "1",
             str(script), "eval"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "[0] auto_ipex: 1 module(s) optimised (Net), 2 optimised call(s)" in out, out
    assert "[0] auto_ipex: answering from traced graphs: Net" in out, out
    got = float(out.split("sum ")[1].split()[0])
    assert abs(got - float(lines(plain.stdout, "sum")[0])) < 1e-2
