"""A torch.distributed rank that uses only torchrun's contract (env:// initialisation).

Every rank adds rank + 1 with a gloo all_reduce and prints one line
`PROBE {json}`: its rank, the sum, its hostname, the CPUs it may run on and the launch
variables it saw. The tests check those lines; the script itself maps nothing.
"""
import datetime
import json
import os
import socket

import torch
import torch.distributed as dist

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                    "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
rank = dist.get_rank()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
report = {
    "rank": rank,
    "world_size": dist.get_world_size(),
    "sum": value.item(),
    "host": socket.gethostname(),
    "cpus": sorted(os.sched_getaffinity(0)),
    "env": {name: os.environ.get(name) for name in LAUNCH_VARIABLES},
}
# One write: the line reaches the launcher whole, not in pieces it may interleave.
os.write(1, ("PROBE " + json.dumps(report) + "\n").encode())
dist.destroy_process_group()
