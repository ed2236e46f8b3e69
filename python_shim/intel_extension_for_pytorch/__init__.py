"""Alias of the `ipex` package: `intel_extension_for_pytorch.X` is the module `ipex.X`
(the same objects, not copies), so programs written for the peer's name run unchanged."""
import importlib
import importlib.abc
import importlib.util
import sys

import ipex as _ipex

_PREFIX = __name__ + "."


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(_PREFIX):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("ipex." + spec.name[len(_PREFIX):])

    def exec_module(self, module):
        pass  # already executed as ipex.*


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())

for _name, _mod in list(sys.modules.items()):
    if _name.startswith("ipex."):
        sys.modules[_PREFIX + _name[5:]] = _mod

# The alias package itself exposes everything ipex does.
globals().update({k: v for k, v in vars(_ipex).items() if not k.startswith("__")})
