"""Fixtures for the distributed tests: one two-node namespace cluster (and Slurm on it) for
the whole session, torn down at the end, on failure and on Ctrl-C/SIGTERM alike."""
import itertools
import signal

import pytest

from cluster import ClusterError, NetnsCluster, namespaces_refused
from slurm_cluster import SlurmCluster

_ports = itertools.count(29611)


def _interrupt(signum, frame):
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the finalisers below still run.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster():
    reason = namespaces_refused()
    if reason:
        pytest.skip(reason)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    nodes = NetnsCluster()
    try:
        yield nodes
    finally:
        nodes.close()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def slurm(cluster):
    try:
        daemons = SlurmCluster(cluster)
    except ClusterError as error:
        pytest.skip(f"Slurm cannot start here: {error}")
    try:
        yield daemons
    finally:
        daemons.close()


@pytest.fixture
def master_port():
    """A fresh port for each launch (the nodes' network is private, so only this session
    uses it; fresh avoids waiting for TIME_WAIT of the previous run)."""
    return next(_ports)


@pytest.fixture(autouse=True)
def _empty_nodes_after(request):
    """After each test, kill what a failed test may have left on the nodes (all started by
    this session), so that the next test starts from empty nodes."""
    yield
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").kill_leftovers()
