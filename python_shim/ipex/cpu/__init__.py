"""CPU features of ipex: the runtime extension (ipex.cpu.runtime)."""
from . import runtime  # noqa: F401
