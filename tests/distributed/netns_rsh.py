"""An ssh stand-in for the namespace cluster: `netns_rsh.py HOSTS [ssh options] HOST COMMAND...`.

MPI launchers start their remote proxies with `AGENT [options] HOST command...` (hydra's
`-launcher-exec`, Open MPI's `plm_rsh_agent`, ipexrun's `--mpi-agent`). This agent drops the
ssh-style options, looks HOST up in the HOSTS file (lines `ADDRESS NAMESPACE HOSTNAME`, HOST
may be the address or the hostname, with or without `user@`) and runs the command like sshd
would, through `sh -c`, inside that node: its network namespace and a UTS namespace named
after the node. Exit code: the command's, or 255 (ssh's own) when the host is unknown.
"""
import os
import sys

# ssh options that take a value (OpenSSH's getopt string); every other `-x` is a flag.
OPTIONS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")
NODE_ENTRY = 'hostname "$0" && exec sh -c "$1"'


def split_ssh_arguments(args):
    """Return (host, command words) from an ssh-style argument list."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        option = args[i]
        # `-o Key=Value` or glued `-oKey=Value`; flags may be grouped (`-xT`).
        letters = option[1:]
        for position, letter in enumerate(letters):
            if letter in OPTIONS_WITH_VALUE:
                if position == len(letters) - 1:
                    i += 1  # the value is the next word
                break
        i += 1
    if i < len(args) and args[i] == "--":
        i += 1
    if i >= len(args):
        return None, []
    return args[i], args[i + 1:]


def read_hosts(path):
    nodes = {}
    with open(path) as hosts:
        for line in hosts:
            fields = line.split()
            if len(fields) == 3:
                address, namespace, hostname = fields
                nodes[address] = nodes[hostname] = (namespace, hostname)
    return nodes


def main(argv):
    if len(argv) < 2:
        print("usage: netns_rsh.py HOSTS [ssh options] HOST [COMMAND...]", file=sys.stderr)
        return 255
    host, command = split_ssh_arguments(argv[2:])
    if host is None:
        print("netns_rsh: no host given", file=sys.stderr)
        return 255
    node = read_hosts(argv[1]).get(host.rpartition("@")[2])
    if node is None:
        print(f"netns_rsh: ssh: Could not resolve hostname {host}", file=sys.stderr)
        return 255
    namespace, hostname = node
    # Like sshd: the remote words are joined into one line for the login shell; no command
    # means an interactive login, which this agent does not offer.
    line = " ".join(command) if command else "true"
    os.execvp("nsenter", ["nsenter", f"--net=/run/netns/{namespace}", "unshare", "--uts", "--",
                          "sh", "-c", NODE_ENTRY, hostname, line])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
