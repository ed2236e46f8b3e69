"""Giving freed heap memory back to the system while an optimized copy packs its weights.

A packed layer packs on its first call: it allocates the packed weight, then frees the plain
(folded) one. Layer sizes grow through most networks, so each freed plain weight leaves a
hole no later, larger allocation fits: the heap grows by the sum of the plain weights (~60 MB
of a ResNet-50's 100 MB) and stays resident. Releasing free pages after each layer's first
call keeps the peak at the user's weights plus the packed ones.
"""
import contextlib
import ctypes

import torch


def _releaser():
    """(name, function) returning free heap pages to the system, for the allocator this
    process runs on (tcmalloc or jemalloc when preloaded, else glibc); (None, None) if none."""
    try:
        process = ctypes.CDLL(None)
    except OSError:
        return None, None
    tcmalloc = getattr(process, "MallocExtension_ReleaseFreeMemory", None)
    if tcmalloc is not None:
        tcmalloc.restype = None
        return "MallocExtension_ReleaseFreeMemory", tcmalloc
    mallctl = getattr(process, "mallctl", None)
    if mallctl is not None:  # jemalloc: purge every arena (MALLCTL_ARENAS_ALL = 4096)
        mallctl.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        return "mallctl arena.4096.purge", lambda: mallctl(b"arena.4096.purge", None, None, None, 0)
    trim = getattr(process, "malloc_trim", None)
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        return "malloc_trim", lambda: trim(0)
    return None, None


RELEASER, _RELEASE = _releaser()


def release_free_memory():
    """Returns free heap pages to the system (no-op where the allocator cannot)."""
    if _RELEASE is not None:
        _RELEASE()


@contextlib.contextmanager
def released_per_layer(model):
    """Within this context every module call of `model` (an optimized copy, not the user's)
    is followed by release_free_memory(), so the memory a layer frees when it packs is back
    with the system before the next layer packs."""
    handles = []
    if _RELEASE is not None:
        for m in model.modules():
            if not isinstance(m, torch.jit.ScriptModule):
                handles.append(m.register_forward_hook(lambda *_: release_free_memory()))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        release_free_memory()
