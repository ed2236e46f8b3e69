"""Shared pytest fixtures: where the build tree is, the ipexrun binary, the Python package.

Tests run against the build tree (IPEX_BUILD_DIR, default <repo>/build), so that a test run
checks the code of this checkout and not whatever happens to be installed.
"""
import os
import pathlib
import sys

import pytest

from project_paths import BUILD, SHARED

# The build tree holds the importable package (python_shim copied next to its _C module).
if (BUILD / "python").is_dir():
    sys.path.insert(0, str(BUILD / "python"))


@pytest.fixture(scope="session")
def build_dir():
    return BUILD


@pytest.fixture(scope="session")
def ipexrun():
    exe = pathlib.Path(os.environ.get("IPEXRUN_UNDER_TEST", BUILD / "launcher" / "ipexrun"))
    if not exe.exists():
        pytest.fail(f"{exe} is missing: build the tree first (scripts/setup.sh)")
    return str(exe)


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the shared folder must sit beside the repository")
    return SHARED
