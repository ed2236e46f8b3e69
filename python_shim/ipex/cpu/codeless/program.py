"""Running the user's program in this process as `python program.py` / `python -m name`
would: the same `__main__` globals, `__file__`, sys.argv and sys.path[0]."""
import builtins
import io
import os
import runpy
import sys
import types
import importlib.machinery


def run_module(name, args):
    """`python -m name args`: runpy sets sys.argv[0] to the module's file, as python does."""
    sys.argv = [name] + list(args)
    runpy.run_module(name, run_name="__main__", alter_sys=True)


def run_file(path, args):
    """`python path args`. Python makes `__file__` absolute by joining the current folder
    (without normalising), keeps sys.argv[0] as typed, and puts the script's real folder
    first on sys.path, replacing the current folder that `-m` put there."""
    if _started_by_dash_m() and sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path.pop(0)
    sys.argv = [path] + list(args)
    if os.path.isdir(path) or not os.path.isfile(path) or _is_zip(path):
        # A folder or zip with __main__.py: runpy does what python does for these.
        runpy.run_path(path, run_name="__main__")
        return
    sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    with io.open_code(filename) as f:
        source = f.read()
    code = compile(source, filename, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=filename, __cached__=None, __builtins__=builtins,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", filename))
    # The program's module stays __main__ afterwards, as it would under python (atexit
    # handlers, pickles of its classes).
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _started_by_dash_m():
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None


def _is_zip(path):
    import zipfile
    return zipfile.is_zipfile(path)
