"""Slurm on a NetnsCluster: a private munged, slurmctld on node 1 and one slurmd per node.

munged runs as user munge on a socket inside the cluster's folder (not /run/munge, which
another session may use); slurm.conf points every Slurm program at it (`AuthInfo=socket=`).
slurmd is started through `nsenter --net` rather than `ip netns exec`, which remounts /sys
and leaves slurmd without /sys/fs/cgroup. Client commands (srun, salloc, sinfo) must run on
a node: the controller's address exists only there. `env` holds SLURM_CONF for them.
"""
import os
import pathlib
import pwd
import subprocess

from cluster import DIE_WITH_PYTEST, ClusterError, run, stop_process, wait_until

MUNGE_KEY = pathlib.Path("/etc/munge/munge.key")


class SlurmCluster:
    def __init__(self, cluster):
        self.cluster = cluster
        self.folder = cluster.workdir / "slurm"
        self.processes = []
        self.env = dict(os.environ, SLURM_CONF=str(self.folder / "slurm.conf"))
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        for tool in ("munged", "slurmctld", "slurmd", "srun", "setpriv"):
            if not _which(tool):
                raise ClusterError(f"{tool} is not installed (packages slurm-wlm, munge)")
        if not MUNGE_KEY.exists():
            raise ClusterError(f"{MUNGE_KEY} is missing (the munge package creates it)")
        for sub in ("log", "state", "spool/n1", "spool/n2"):
            (self.folder / sub).mkdir(parents=True)
        self._start_munged()
        (self.folder / "slurm.conf").write_text(self._config())
        first = self.cluster.nodes[0]
        self._daemon(first, ["slurmctld", "-D", "-i", "-f", self.folder / "slurm.conf"],
                     "slurmctld")
        for node in self.cluster.nodes:
            self._daemon(node, ["slurmd", "-D", "-N", node.name, "-f",
                                self.folder / "slurm.conf"], f"slurmd-{node.name}")
        wait_until(self._all_idle, 30, "both slurmd to be idle "
                   f"(logs in {self.folder / 'log'})")
        # The daemons' own helpers (slurmctld's slurmscriptd) are not a job's leftovers.
        for node in self.cluster.nodes:
            self.cluster.daemon_pids.update(node.pids())

    def _start_munged(self):
        try:
            munge = pwd.getpwnam("munge")
        except KeyError:
            raise ClusterError("there is no user munge (package munge)") from None
        folder = self.folder / "munge"
        folder.mkdir()
        folder.chmod(0o755)  # munged wants its socket folder searchable by all
        os.chown(folder, munge.pw_uid, munge.pw_gid)
        self.munge_socket = folder / "munge.socket"
        process = subprocess.Popen(
            [*DIE_WITH_PYTEST, "--reuid=munge", "--regid=munge", "--clear-groups",
             "munged", "--foreground", f"--socket={self.munge_socket}",
             f"--key-file={MUNGE_KEY}", f"--pid-file={folder / 'munged.pid'}",
             f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munged.seed'}"],
            stdout=subprocess.DEVNULL, stderr=open(folder / "munged.stderr", "w"))
        self.processes.append(("munged", process))
        wait_until(lambda: self.munge_socket.exists() or process.poll() is not None, 10,
                   "munged's socket")
        if process.poll() is not None:
            raise ClusterError("munged did not start: "
                               + (folder / "munged.stderr").read_text().strip())

    def _config(self):
        folder = self.folder
        first = self.cluster.nodes[0]
        hardware = _node_hardware()
        lines = [
            f"ClusterName={self.cluster.nodes[0].namespace}",
            f"SlurmctldHost={first.name}({first.address})",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "SlurmUser=root",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/affinity",
            "MpiDefault=none",
            "ReturnToService=2",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            f"SlurmctldPidFile={folder}/slurmctld.pid",
            f"SlurmdPidFile={folder}/slurmd-%n.pid",
            f"SlurmdSpoolDir={folder}/spool/%n",
            f"StateSaveLocation={folder}/state",
            f"SlurmctldLogFile={folder}/log/slurmctld.log",
            f"SlurmdLogFile={folder}/log/slurmd-%n.log",
            "SlurmdTimeout=30",
            "KillWait=2",
        ]
        for node in self.cluster.nodes:
            lines.append(f"NodeName={node.name} NodeAddr={node.address} {hardware} "
                         "State=UNKNOWN")
        names = ",".join(n.name for n in self.cluster.nodes)
        lines.append(f"PartitionName=test Nodes={names} Default=YES MaxTime=10 State=UP")
        return "\n".join(lines) + "\n"

    def _daemon(self, node, argv, name):
        log = open(self.folder / "log" / f"{name}.stderr", "w")
        process = subprocess.Popen(node.command([*DIE_WITH_PYTEST, *argv]), stdout=log,
                                   stderr=subprocess.STDOUT, env=self.env,
                                   start_new_session=True)
        self.processes.append((name, process))
        self.cluster.daemon_pids.add(process.pid)
        return process

    def _all_idle(self):
        for name, process in self.processes:
            if process.poll() is not None:
                raise ClusterError(f"{name} exited: see {self.folder / 'log'}")
        result = subprocess.run(self.cluster.nodes[0].command(["sinfo", "-h", "-N", "-o",
                                                               "%N %t"]),
                                capture_output=True, text=True, env=self.env, timeout=10)
        states = dict(line.split() for line in result.stdout.splitlines() if line.strip())
        return states and all(states.get(n.name) == "idle" for n in self.cluster.nodes)

    def command(self, argv, node=0):
        """argv that runs a Slurm client command on a node."""
        return self.cluster.nodes[node].command(argv)

    def close(self):
        for _, process in reversed(self.processes):
            stop_process(process)
        self.processes = []


def _which(tool):
    return any(os.access(os.path.join(d, tool), os.X_OK)
               for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"])


def _node_hardware():
    """`CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=..` as slurmd
    detects them here (both nodes share this machine's CPUs)."""
    fields = run(["slurmd", "-C"]).split()
    keep = ("CPUs=", "Boards=", "SocketsPerBoard=", "CoresPerSocket=", "ThreadsPerCore=")
    return " ".join(f for f in fields if f.startswith(keep))
