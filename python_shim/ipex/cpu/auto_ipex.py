"""Codeless optimisation: run a program so that its models are optimised without changing it.

    python -m ipex.cpu.auto_ipex [--dtype bfloat16] [--module] program [args...]

(ipexrun --auto-ipex builds this command line; `intel_extension_for_pytorch.cpu.auto_ipex`
is the same module.) A model (a module with children, in eval mode, called from outside
any other module) answers its first call eagerly and gets an optimized copy made by
ipex.optimize (eager packed layers; with --ipex-graph-mode a traced, frozen graph where the
trace is proven faithful), checked against that answer; later calls go to the copy under no_grad (and
bf16 autocast for --dtype bfloat16) while the model's weights, flags and attributes stay as
they were. The copy is kept beside the model, never on it. See ipex/cpu/codeless/hook.py
for when calls run the original module instead.

The program runs in this process as under `python program` (same `__file__`, sys.argv,
sys.path[0], `from __future__` imports and line numbers); `--module` runs it as `-m`.
Calls of `.forward()` or of custom methods are not hooked (they bypass `__call__`).
"""
import argparse
import os
import sys

import torch


def _parser():
    parser = argparse.ArgumentParser(prog="python -m ipex.cpu.auto_ipex",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--auto-ipex-verbose", "--auto_ipex_verbose", action="store_true",
                        help="say on stderr at exit what was optimised")
    graph = parser.add_mutually_exclusive_group()
    graph.add_argument("--ipex-graph-mode", "--ipex_graph_mode", dest="graph_mode", action="store_true",
                       help="let models answer from traced, frozen graphs (each input's trace checked); "
                            "faster on some models, but costs ~3x the weights in memory, never released")
    graph.add_argument("--disable-ipex-graph-mode", "--disable_ipex_graph_mode", dest="graph_mode",
                       action="store_false", help="optimise eagerly, never through a trace (the default)")
    parser.add_argument("--module", "-m", action="store_true", help="the program is a module name")
    parser.add_argument("program")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def install(dtype="float32", graph_mode=False):
    """Hooks torch.nn.Module.__call__ (and wraps ipex.optimize and torch.jit.trace so that
    the program's own calls of them run unhooked); returns the hook, whose .report says what
    was done."""
    import ipex  # here, so that --help works without the extension built
    from ipex.cpu.codeless.hook import CodelessHook

    hook = CodelessHook(torch.bfloat16 if dtype == "bfloat16" else torch.float32,
                        graph_mode=graph_mode, optimize=ipex.optimize)
    ipex.optimize = hook.user_optimize(ipex.optimize)
    for name in ("trace", "trace_module"):
        setattr(torch.jit, name, _unhooked(hook, getattr(torch.jit, name)))
    hook.install()
    return hook


def _unhooked(hook, fn):
    def wrapped(*args, **kwargs):
        with hook.nested():
            return fn(*args, **kwargs)

    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(wrapped, attr, getattr(fn, attr, None))
    wrapped.__wrapped__ = fn
    return wrapped


def _summary(report):
    lines = [f"auto_ipex: {len(report.optimized)} module(s) optimised "
             f"({', '.join(report.optimized) or 'none'}), {report.calls} optimised call(s), "
             f"{report.rebuilds} rebuild(s), {len(report.eager)} left as they were"]
    if report.graphs:
        lines.append(f"auto_ipex: answering from traced graphs: {', '.join(report.graphs)}")
    lines += [f"auto_ipex: {name}: {reason}" for name, reason in report.eager]
    return "\n".join(lines)


def main(argv=None):
    parser = _parser()
    options = parser.parse_args(argv)
    if not options.module and not os.path.exists(options.program):
        parser.error(f"{options.program}: no such file")

    from ipex.cpu.codeless import program
    hook = install(options.dtype, graph_mode=options.graph_mode)
    try:
        if options.module:
            program.run_module(options.program, options.args)
        else:
            program.run_file(options.program, options.args)
    finally:
        if options.auto_ipex_verbose:
            print(_summary(hook.report), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
