"""The namespace cluster itself: nodes, the rsh agent, Slurm (cheap: no torch)."""
import subprocess

from cluster import SUBNET_PREFIX, wait_until
from netns_rsh import split_ssh_arguments


def test_ssh_options_are_dropped_before_the_host():
    assert split_ssh_arguments(["-x", "-o", "BatchMode=yes", "-p22", "h", "cmd", "-o"]) == (
        "h", ["cmd", "-o"])
    assert split_ssh_arguments(["-xT", "-oStrictHostKeyChecking=no", "h"]) == ("h", [])
    assert split_ssh_arguments(["-l", "root", "--", "h", "a", "b"]) == ("h", ["a", "b"])
    assert split_ssh_arguments(["-x"]) == (None, [])


def test_agent_runs_the_command_on_the_node_it_names(cluster):
    for node in cluster.nodes:
        for host in (node.address, node.name, f"root@{node.address}"):
            result = subprocess.run(
                [cluster.rsh_agent, "-x", "-o", "BatchMode=yes", host,
                 "hostname;", "ip", "-br", "-4", "addr", "show", "eth1"],
                capture_output=True, text=True, timeout=20)
            assert result.returncode == 0, result.stderr
            name, interface = result.stdout.splitlines()
            assert name == node.name
            assert f"{node.address}/24" in interface


def test_agent_passes_the_exit_code_and_refuses_unknown_hosts(cluster):
    node = cluster.nodes[1]
    assert subprocess.run([cluster.rsh_agent, node.address, "exit 7"],
                          timeout=20).returncode == 7
    unknown = subprocess.run([cluster.rsh_agent, "10.213.99.9", "true"], capture_output=True,
                             text=True, timeout=20)
    assert unknown.returncode == 255
    assert "10.213.99.9" in unknown.stderr


def test_private_subnet_stays_inside_the_nodes(cluster):
    root = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, timeout=20)
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, timeout=20)
    assert SUBNET_PREFIX not in root.stdout + routes.stdout


def test_node_processes_are_seen_and_cleaned(cluster):
    node = cluster.nodes[1]
    sleeper = subprocess.Popen(node.command(["sleep", "60"]))
    try:
        # nsenter joins the namespace after Popen returns: wait for it, and for the exec.
        wait_until(lambda: sleeper.pid in node.pids(), 10, "the sleeper to enter the node")
        wait_until(lambda: "sleep 60" in cluster.leftovers().get(node.name, []), 10,
                   "the sleeper to exec")
        cluster.kill_leftovers()
        assert sleeper.wait(10) != 0
        assert cluster.wait_quiet() == {}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_slurm_runs_tasks_on_both_nodes(slurm):
    result = subprocess.run(slurm.command(["srun", "-N2", "-n4", "--ntasks-per-node=2",
                                           "sh", "-c", "echo $SLURM_PROCID $(hostname)"]),
                            capture_output=True, text=True, env=slurm.env, timeout=60)
    assert result.returncode == 0, result.stderr
    hosts = dict(line.split() for line in result.stdout.splitlines())
    assert hosts == {"0": "n1", "1": "n1", "2": "n2", "3": "n2"}
