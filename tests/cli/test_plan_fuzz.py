"""Random --dry-run plans (plan_fuzz.py) on every stored topology and on generated ones:
odd synthetic shapes, disallowed CPUs and nodes, offline CPUs, hybrid core kinds; random
option sets, co-located launchers, garbage launcher variables and distributed plans. A fixed
seed here; plan_fuzz.py runs as many seeds as wanted."""
import json
import shutil
import xml.etree.ElementTree as ET

import pytest

import plan_fuzz

needs_lstopo = pytest.mark.skipif(not shutil.which("lstopo-no-graphics"),
                                  reason="hwloc's lstopo is not installed")


@needs_lstopo
@pytest.mark.parametrize("seed", [20261130])
def test_random_plans_keep_every_invariant(ipexrun, seed):
    failures = plan_fuzz.fuzz(ipexrun, seed, cases=250)
    assert not failures, "\n".join(failures[:20])


def dry_run(ipexrun, topology, *flags):
    r, problems = plan_fuzz.run(ipexrun, str(topology), list(flags))
    assert r is not None, problems
    return r


@needs_lstopo
def test_an_xml_with_children_out_of_order_plans_without_hwlocs_banner(ipexrun, tmp_path):
    # hwloc reads such an XML (an edited export) but printed a box of 9 lines on stderr.
    ordered = tmp_path / "ordered.xml"
    plan_fuzz.export_synthetic("pack:2 core:2 pu:1", ordered)
    tree = ET.parse(ordered)
    machine = tree.getroot().find("object")
    packages = [o for o in machine.findall("object") if o.get("type") == "Package"]
    for p in packages:
        machine.remove(p)
    machine.extend(reversed(packages))
    swapped = tmp_path / "swapped.xml"
    tree.write(swapped)
    r = dry_run(ipexrun, swapped, "--ninstances", "2")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    expected = dry_run(ipexrun, ordered, "--ninstances", "2")
    assert json.loads(r.stdout)["instances"] == json.loads(expected.stdout)["instances"]


@needs_lstopo
def test_memory_the_whole_machine_shares_is_no_cpus_local_node(ipexrun, tmp_path):
    # Node 0 hangs off the machine (CXL-like, every CPU in its cpuset); nodes 1 and 2 are
    # the packages' own. Node 0 used to be every CPU's "local" node: the smallest number.
    xml = tmp_path / "far0.xml"
    plan_fuzz.export_synthetic("[numa] pack:2 [numa] core:2 pu:1", xml)
    plan_fuzz.renumber(xml, cpu_map={}, node_map={0: 1, 1: 2, 2: 0})
    facts = plan_fuzz.Facts(str(xml))
    assert facts.node_cpus[0] == {0, 1, 2, 3} and facts.node_cpus[1] == {0, 1}
    r = dry_run(ipexrun, xml, "--ninstances", "2", "--bind-numa-node")
    assert r.returncode == 0, r.stderr
    assert [(i["cpus"], i["nodes"]) for i in json.loads(r.stdout)["instances"]] == \
        [([0, 1], [1]), ([2, 3], [2])]
    r = dry_run(ipexrun, xml)
    assert json.loads(r.stdout)["instances"][0]["nodes"] == [1, 2]
