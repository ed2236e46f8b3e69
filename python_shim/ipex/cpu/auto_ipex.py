"""Codeless optimisation: run a program so that its models are optimised without changing it.

    python -m ipex.cpu.auto_ipex [--dtype bfloat16] [--module] program [args...]

(ipexrun --auto-ipex builds this command line.) The first time a module in eval mode is
called from outside any other module, it is optimised with ipex.optimize (a copy: the
original stays untouched), and from then on its calls go to the optimised copy under
no_grad, and under bf16 autocast for --dtype bfloat16. Bare layers (modules without
children) called on their own are not optimised.

Unlike the peer, the program runs through runpy, not as a rewritten temporary copy: its
`__file__`, line numbers and `from __future__` imports stay as written, `-m` programs work,
and modules in training mode, or called with inputs that need gradients, are left alone.
Calls of `.forward()` or of custom methods are not hooked (they bypass `__call__`).
"""
import argparse
import os
import runpy
import sys
import threading
import warnings

import torch

_local = threading.local()


class _Report:
    def __init__(self):
        self.optimized = []  # class names of the optimised modules
        self.failed = []     # (class name, reason)
        self.calls = 0       # calls served by optimised copies


def _needs_grad(args, kwargs):
    if not torch.is_grad_enabled():
        return False
    values = list(args) + list(kwargs.values())
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)


def install(dtype="float32", graph_mode=True, report=None):
    """Hooks torch.nn.Module.__call__; returns the report that collects what was done."""
    import ipex  # imported here so `--help` works without the extension built

    report = report or _Report()
    original_call = torch.nn.Module.__call__
    bf16 = dtype == "bfloat16"

    def optimise(module, args, kwargs):
        for m in module.modules():
            m._ipex_auto_seen = True
        dtype = torch.bfloat16 if bf16 else None
        # Graph mode traces the model with the first call's inputs; where it cannot
        # (keyword inputs, untraceable code) eager optimisation still applies.
        attempts = [dict(graph_mode=True, sample_input=tuple(args))] if graph_mode and \
            not kwargs else []
        attempts.append(dict(graph_mode=None))
        errors = []
        for extra in attempts:
            # Modules that optimize() itself calls (tracing, warm-up) are nested calls.
            _local.depth = getattr(_local, "depth", 0) + 1
            try:
                optimized = ipex.optimize(module, dtype=dtype, inplace=False, **extra)
                break
            except Exception as e:  # the program must run even where optimisation cannot
                errors.append(f"{type(e).__name__}: {e}")
            finally:
                _local.depth -= 1
        else:
            report.failed.append((type(module).__name__, "; ".join(errors)))
            warnings.warn(f"auto_ipex: {type(module).__name__} left as it is: {errors[-1]}")
            return
        module._ipex_auto_optimized = optimized
        report.optimized.append(type(module).__name__)

    def call(self, *args, **kwargs):
        depth = getattr(_local, "depth", 0)
        # Only models (modules with children) are optimised: a bare layer called on its own,
        # e.g. from a model's .forward() called directly, is part of a model that runs eager.
        if depth == 0 and not self.training and not getattr(self, "_ipex_auto_seen", False) \
                and next(self.children(), None) is not None:
            optimise(self, args, kwargs)
        optimized = getattr(self, "_ipex_auto_optimized", None)
        if depth == 0 and optimized is not None and not self.training and \
                not _needs_grad(args, kwargs):
            report.calls += 1
            _local.depth = depth + 1
            try:
                with torch.no_grad(), torch.cpu.amp.autocast(enabled=bf16):
                    return optimized(*args, **kwargs)
            finally:
                _local.depth = depth
        _local.depth = depth + 1
        try:
            return original_call(self, *args, **kwargs)
        finally:
            _local.depth = depth

    torch.nn.Module.__call__ = call
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ipex.cpu.auto_ipex",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--auto-ipex-verbose", "--auto_ipex_verbose", action="store_true")
    parser.add_argument("--disable-ipex-graph-mode", "--disable_ipex_graph_mode",
                        action="store_true")
    parser.add_argument("--module", action="store_true", help="the program is a module name")
    parser.add_argument("program")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    report = install(options.dtype, graph_mode=not options.disable_ipex_graph_mode)
    try:
        if options.module:
            sys.argv = [options.program] + options.args
            runpy.run_module(options.program, run_name="__main__", alter_sys=True)
        else:
            if not os.path.exists(options.program):
                parser.error(f"{options.program}: no such file")
            sys.argv = [options.program] + options.args
            sys.path.insert(0, os.path.dirname(os.path.abspath(options.program)))
            runpy.run_path(options.program, run_name="__main__")
    finally:
        if options.auto_ipex_verbose:
            print(f"auto_ipex: {len(report.optimized)} module(s) optimised "
                  f"({', '.join(report.optimized) or 'none'}), {report.calls} optimised call(s), "
                  f"{len(report.failed)} left as they were", file=sys.stderr)
            for name, reason in report.failed:
                print(f"auto_ipex: {name}: {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
