"""Codeless optimisation (`ipexrun --auto-ipex`, `python -m ipex.cpu.auto_ipex`): the pieces.

hook.py         torch.nn.Module.__call__ replaced: models answer from optimized copies
fingerprint.py  what a copy was built from, compared on every call
trace_check.py  when a traced graph may answer for forward
program.py      running the user's program as python would
"""
