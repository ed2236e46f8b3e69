"""Fine control of which CPUs run which work inside one process.

CPUPool names a set of CPUs; `pin` runs the calling thread's OpenMP team on one; a Task runs a
callable (or TorchScript module) on a pinned worker thread of its own; MultiStreamModule splits
each batch over several such streams. Works with GNU OpenMP (Debian's torch) as well as Intel
and LLVM OpenMP.
"""
from .cpupool import CPUPool, current_cpu_pool, get_core_list_of_node_id, is_runtime_ext_enabled, pin
from .multi_stream import (MultiStreamModule, MultiStreamModuleHint, concat_by_hint, get_default_num_streams,
                           split_by_hint)
from .split_functions import embedding_bag_split
from .task import Task

__all__ = [
    "CPUPool", "pin", "current_cpu_pool", "is_runtime_ext_enabled", "get_core_list_of_node_id", "Task", "MultiStreamModule",
    "MultiStreamModuleHint", "get_default_num_streams", "split_by_hint", "concat_by_hint", "embedding_bag_split",
]
