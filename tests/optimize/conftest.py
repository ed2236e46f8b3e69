"""ipex.optimize() front-end tests. The broad torchvision sweep (marker model_sweep) runs
when IPEX_MODEL_SWEEP=1 is set; the default run checks a representative model per family."""
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "model_sweep: the broad torchvision sweep (IPEX_MODEL_SWEEP=1 runs it)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("IPEX_MODEL_SWEEP") == "1":
        return
    skip = pytest.mark.skip(reason="broad model sweep: set IPEX_MODEL_SWEEP=1")
    for item in items:
        if "model_sweep" in item.keywords:
            item.add_marker(skip)
