"""Alias of the `ipex` package: `intel_extension_for_pytorch.X` is the module `ipex.X`
(the same objects, not copies), so programs written for the peer's name run unchanged,
including `python -m intel_extension_for_pytorch.cpu.auto_ipex` (runpy asks the alias for
the real module's code and file)."""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

import ipex as _ipex

_ALIAS = __name__
_REAL = _ipex.__name__


def _real_name(fullname):
    return _REAL + fullname[len(_ALIAS):]


class _AliasLoader(importlib.abc.InspectLoader):
    """Imports give the real module object; runpy and inspect get the real module's code,
    source and file name through the real loader."""

    def __init__(self, real_spec):
        self._real = real_spec

    def create_module(self, spec):
        return importlib.import_module(self._real.name)

    def exec_module(self, module):
        pass  # already executed under its real name

    def is_package(self, fullname):
        return self._real.submodule_search_locations is not None

    def get_code(self, fullname):
        return self._real.loader.get_code(self._real.name)

    def get_source(self, fullname):
        return self._real.loader.get_source(self._real.name)

    def get_filename(self, fullname):
        return self._real.origin


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_ALIAS + "."):
            return None
        real = importlib.util.find_spec(_real_name(fullname))
        if real is None:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), origin=real.origin,
                                              is_package=real.submodule_search_locations is not None)
        spec.has_location = real.has_location
        if real.submodule_search_locations is not None:
            spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec


if not any(type(f).__name__ == _AliasFinder.__name__ and type(f).__module__ == __name__
           for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())

for _name, _mod in list(sys.modules.items()):
    if _name.startswith(_REAL + "."):
        sys.modules.setdefault(_ALIAS + _name[len(_REAL):], _mod)


def __getattr__(name):
    # Looked up live, so that the alias always shows what ipex has now (e.g. attributes
    # set after this import).
    try:
        return getattr(_ipex, name)
    except AttributeError:
        raise AttributeError(f"module {_ALIAS!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(dir(_ipex)))
