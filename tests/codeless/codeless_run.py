"""Runs a test program under plain python and under auto_ipex, and compares what each
recorded (see programs/record.py)."""
import os
import pathlib
import subprocess

import torch

from project_paths import BUILD, TORCH_PYTHON

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"


def environment(extra_path=None):
    path = [str(BUILD / "python")] + ([str(extra_path)] if extra_path else [])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env=kw.pop("env", environment()), **kw)


def codeless_argv(*options, package="ipex"):
    return [TORCH_PYTHON, "-m", f"{package}.cpu.auto_ipex", "--auto-ipex-verbose", *options]


def run_both(program, tmp_path, *args, options=(), package="ipex"):
    """(eager results, codeless results, codeless stderr) of programs/<program>."""
    script = PROGRAMS / program
    eager_out, codeless_out = tmp_path / "eager.pt", tmp_path / "codeless.pt"
    eager = run([TORCH_PYTHON, str(script), str(eager_out), *args])
    assert eager.returncode == 0, eager.stderr
    codeless = run(codeless_argv(*options, package=package) + [str(script), str(codeless_out), *args])
    assert codeless.returncode == 0, codeless.stderr
    return torch.load(eager_out), torch.load(codeless_out), codeless.stderr


def optimised_calls(stderr):
    """The number of calls answered by optimized copies, from --auto-ipex-verbose."""
    marker = " optimised call(s)"
    line = next(l for l in stderr.splitlines() if marker in l)
    return int(line.split(marker)[0].rsplit(" ", 1)[1])


def assert_same(got, want, tolerance, where="results"):
    """Tensors within `tolerance` of the largest value of `want`; everything else equal."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: {type(got).__name__} instead of a tensor"
        assert got.shape == want.shape, f"{where}: shape {tuple(got.shape)} != {tuple(want.shape)}"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        if want.is_floating_point() and tolerance > 0:
            scale = max(want.abs().max().item(), 1.0) if want.numel() else 1.0
            diff = (got.double() - want.double()).abs().max().item() / scale if want.numel() else 0.0
            assert diff <= tolerance, f"{where}: differs by {diff:.3g} (relative), more than {tolerance}"
        else:
            assert torch.equal(got, want), f"{where}: differs"
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_same(got[key], want[key], tolerance, f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), f"{where}: {got!r:.200} != {want!r:.200}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, tolerance, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"
