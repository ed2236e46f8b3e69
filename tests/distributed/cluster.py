"""A two-node cluster on one machine: Linux network namespaces joined by a veth pair.

Node i is the network namespace `ipexc<pid>n<i>` (unique per test session: other sessions
share the machine) with one interface `eth1` at 10.213.13.<i> on a subnet that exists only
inside these namespaces, plus a UTS namespace per command so that `hostname` says `n<i>`.
`rsh_agent` is an ssh stand-in for MPI launchers. `SlurmCluster` adds munged, slurmctld and
one slurmd per node. Everything started here is recorded by pid and undone by `close()`,
which is idempotent and also runs at interpreter exit.
"""
import atexit
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
SUBNET_PREFIX = "10.213.13."
NETNS_DIR = pathlib.Path("/run/netns")
STALE_NAME = re.compile(r"^ipexc(\d+)n\d+$")
# Prefix for what the tests start: it gets SIGTERM if the test process dies without cleaning
# up (SIGKILL, a crash), so that no daemon or launcher outlives it.
DIE_WITH_PYTEST = ["setpriv", "--pdeathsig", "TERM"]
# Runs "$@" with the hostname given in $0 (inside a fresh UTS namespace).
NODE_ENTRY = 'hostname "$0" && exec "$@"'


class ClusterError(RuntimeError):
    pass


def run(argv, timeout=20, **kwargs):
    """Run a set-up command; a failure raises with its stderr."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(map(str, argv))}: {result.stderr.strip()}")
    return result.stdout


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def stop_process(process, grace=5.0):
    """SIGTERM, then SIGKILL after `grace` seconds, a process this module started."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


class Node:
    def __init__(self, index, namespace):
        self.index = index
        self.name = f"n{index}"
        self.address = f"{SUBNET_PREFIX}{index}"
        self.namespace = namespace

    @property
    def netns_path(self):
        return NETNS_DIR / self.namespace

    def command(self, argv):
        """argv that runs `argv` on this node (its network, its hostname)."""
        return ["nsenter", f"--net={self.netns_path}", "unshare", "--uts", "--",
                "sh", "-c", NODE_ENTRY, self.name, *map(str, argv)]

    def pids(self):
        """Processes living in this node's network namespace (what `ps` would show there)."""
        try:
            inode = os.stat(self.netns_path).st_ino
        except FileNotFoundError:
            return []
        wanted = f"net:[{inode}]"
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == wanted:
                    found.append(int(entry))
            except OSError:
                continue  # exited meanwhile, or a kernel thread
        return found


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class NetnsCluster:
    """Two nodes; `close()` kills what is left in their namespaces and deletes them."""

    def __init__(self, nodes=2):
        tag = f"ipexc{os.getpid()}"
        # World-traversable: munged runs as user munge and must reach its folder inside.
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        self.workdir.chmod(0o755)
        self.nodes = [Node(i, f"{tag}n{i}") for i in range(1, nodes + 1)]
        self.daemon_pids = set()  # started on the nodes by a SlurmCluster: not leftovers
        self._closed = False
        atexit.register(self.close)
        remove_stale_namespaces()
        try:
            self._create_network()
            self._write_agent()
        except BaseException:
            self.close()
            raise

    def _create_network(self):
        for node in self.nodes:
            run(["ip", "netns", "add", node.namespace])
        first, second = self.nodes
        # Both ends are created directly inside the namespaces: never in the root one.
        run(["ip", "link", "add", "eth1", "netns", first.namespace, "type", "veth",
             "peer", "name", "eth1", "netns", second.namespace])
        for node in self.nodes:
            ns = ["ip", "-n", node.namespace]
            run(ns + ["addr", "add", f"{node.address}/24", "dev", "eth1"])
            run(ns + ["link", "set", "lo", "up"])
            run(ns + ["link", "set", "eth1", "up"])

    def _write_agent(self):
        hosts = self.workdir / "hosts"
        hosts.write_text("".join(f"{n.address} {n.namespace} {n.name}\n" for n in self.nodes))
        self.rsh_agent = self.workdir / "rsh-agent"
        self.rsh_agent.write_text(
            f'#!/bin/sh\nexec {sys.executable} -I {HERE / "netns_rsh.py"} {hosts} "$@"\n')
        self.rsh_agent.chmod(0o755)

    def node(self, name):
        return next(n for n in self.nodes if name in (n.name, n.address))

    def hostfile(self, slots=None):
        """A hostfile with one address a line (or `address:slots`)."""
        path = self.workdir / (f"hostfile-{slots}" if slots else "hostfile")
        suffix = f":{slots}" if slots else ""
        path.write_text("".join(f"{n.address}{suffix}\n" for n in self.nodes))
        return path

    def leftovers(self):
        """{node name: [command lines]} of processes still in the nodes, daemons excepted."""
        left = {}
        for node in self.nodes:
            stray = [command_line(pid) or str(pid) for pid in node.pids()
                     if pid not in self.daemon_pids]
            if stray:
                left[node.name] = stray
        return left

    def wait_quiet(self, timeout=10):
        """Wait until no process but the daemons is left on any node; return the leftovers."""
        try:
            wait_until(lambda: not self.leftovers(), timeout, "the nodes to empty")
        except ClusterError:
            pass
        return self.leftovers()

    def kill_leftovers(self, daemons_too=False):
        """SIGKILL the processes left on the nodes: everything in these namespaces was
        started by this session."""
        for node in self.nodes:
            for pid in node.pids():
                if daemons_too or pid not in self.daemon_pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def close(self):
        if self._closed:
            return
        self._closed = True
        self.kill_leftovers(daemons_too=True)
        for node in self.nodes:
            if node.netns_path.exists():
                subprocess.run(["ip", "netns", "del", node.namespace], capture_output=True,
                               timeout=20)
        shutil.rmtree(self.workdir, ignore_errors=True)


def remove_stale_namespaces():
    """Delete the empty namespaces of earlier sessions that died without cleaning up
    (SIGKILL): named after a pid that no longer runs, and with no process inside."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             timeout=20).stdout
    for line in listing.splitlines():
        match = STALE_NAME.match(line.split()[0]) if line.strip() else None
        if match and not pid_alive(int(match[1])) and not Node(0, match[0]).pids():
            subprocess.run(["ip", "netns", "del", match[0]], capture_output=True, timeout=20)


def is_mount_point(path):
    """Whether a mount sits on path; unlike os.path.ismount this sees a directory bound onto
    itself (same device as its parent), which is what `ip netns` makes of /run/netns."""
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == str(path) for line in mounts)


def namespaces_refused():
    """None if this machine lets us create a network namespace, else the reason."""
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "iproute2 (ip) or util-linux (nsenter) is not installed"
    probe = f"ipexc{os.getpid()}probe"
    # `ip netns add` makes /run/netns a mount point of its own the first time; a refusing
    # machine (a chroot) gets that mount taken back, so nothing of the probe stays behind.
    was_mounted = is_mount_point(NETNS_DIR)
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                            timeout=20)
    if result.returncode != 0:
        refusal = f"this machine refuses network namespaces: {result.stderr.strip()}"
    else:
        # Entering the namespace is a second step that can fail on its own: `ip -n` remounts
        # / as a slave, which a chroot whose / is no mount point refuses.
        entered = subprocess.run(["ip", "-n", probe, "link", "set", "lo", "up"],
                                 capture_output=True, text=True, timeout=20)
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
        refusal = (None if entered.returncode == 0 else
                   f"this machine refuses entering network namespaces: {entered.stderr.strip()}")
    if refusal and not was_mounted and is_mount_point(NETNS_DIR) and not any(NETNS_DIR.iterdir()):
        subprocess.run(["umount", NETNS_DIR], capture_output=True, timeout=20)
    return refusal
