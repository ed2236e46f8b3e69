"""Where things are, for every test folder (import this, not conftest: each folder may have
a conftest.py of its own, and they would shadow each other)."""
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("IPEX_BUILD_DIR", REPO / "build")).resolve()
SHARED = (REPO.parent / "shared").resolve()
TORCH_PYTHON = "/usr/bin/python3"
