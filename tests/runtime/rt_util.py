"""Helpers of the runtime's pytest suites."""
import ipex


def allowed_list(tid):
    """Cpus_allowed_list of /proc/self/task/<tid>/status, e.g. "0-1"."""
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split()[1]
    raise AssertionError(f"no Cpus_allowed_list for thread {tid}")


def team_allowed_lists():
    """Cpus_allowed_list of each thread of the calling thread's OpenMP team, thread 0 first."""
    return [allowed_list(t) for t in ipex._C.team_thread_ids()]
