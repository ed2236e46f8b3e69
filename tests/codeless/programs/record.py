"""Shared by the test programs: what a run answered and what its models look like.

Each program runs twice, under plain python and under auto_ipex; the test compares the two
files written here. A program imports this module from its own folder, so sys.path[0] is
checked too."""
import io
import pickle
import sys

import torch


def model_facts(model, pickled=True):
    """Everything about a model that codeless mode must leave as it was, and the same of its
    pickled-and-loaded copy."""
    facts = {
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "modules": [(name, type(m).__name__, sorted(vars(m))) for name, m in model.named_modules()],
        "forward": "instance forward" if "forward" in vars(model) else type(model).forward.__qualname__,
        "len": len(model) if hasattr(model, "__len__") else None,
    }
    if pickled:
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        facts["pickled"] = model_facts(pickle.loads(pickle.dumps(model)), pickled=False)
        facts["saved"] = model_facts(torch.load(buffer), pickled=False)
        strict = pickle.loads(pickle.dumps(model))
        strict.load_state_dict(model.state_dict(), strict=True)
    return facts


def save(results):
    torch.save(results, sys.argv[1])
