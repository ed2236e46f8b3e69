"""Random --dry-run plans (plan_fuzz.py) on every stored topology and on generated ones:
odd synthetic shapes, disallowed CPUs and nodes, offline CPUs, hybrid core kinds; random
option sets, co-located launchers, garbage launcher variables and distributed plans. A fixed
seed here; plan_fuzz.py runs as many seeds as wanted."""
import shutil

import pytest

import plan_fuzz


@pytest.mark.skipif(not shutil.which("lstopo-no-graphics"), reason="hwloc's lstopo is not installed")
@pytest.mark.parametrize("seed", [20261130])
def test_random_plans_keep_every_invariant(ipexrun, seed):
    failures = plan_fuzz.fuzz(ipexrun, seed, cases=250)
    assert not failures, "\n".join(failures[:20])
