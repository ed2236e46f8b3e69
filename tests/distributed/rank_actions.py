"""A torch-free rank for the supervision tests: `rank_actions.py report|wait|crash RANK`.

report: print `RANK {json}` (rank variables, hostname, CPUs) and exit.
wait:   print `READY <rank>` and sleep (until stopped by the launcher, at most 120 s).
crash:  like wait, but rank RANK kills itself with SIGKILL one second after its READY.
The rank comes from torchrun's RANK (ipexrun sets it); no mapping happens here.
"""
import json
import os
import signal
import socket
import sys
import time

VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
             "MASTER_ADDR", "MASTER_PORT")


def say(text):
    os.write(1, (text + "\n").encode())


action = sys.argv[1]
rank = os.environ.get("RANK", "?")
if action == "report":
    say("RANK " + json.dumps({"host": socket.gethostname(),
                              "cpus": sorted(os.sched_getaffinity(0)),
                              "env": {name: os.environ.get(name) for name in VARIABLES}}))
    sys.exit(0)
say(f"READY {rank}")
if action == "crash" and rank == sys.argv[2]:
    time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(120)
