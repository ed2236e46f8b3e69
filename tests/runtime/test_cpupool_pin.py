import inspect
import threading
import warnings

import pytest
import torch

import ipex
from rt_util import team_allowed_lists


def test_default_pool_is_every_allowed_cpu(rt):
    assert rt.CPUPool().core_ids == list(ipex._C.allowed_cpus())
    assert rt.is_runtime_ext_enabled() is True


def test_core_ids_keep_order_and_accept_range_and_tuple(rt, two_cpus):
    a, b = two_cpus
    assert rt.CPUPool([b, a]).core_ids == [b, a]
    assert rt.CPUPool((a,)).core_ids == [a]
    assert rt.CPUPool(range(a, a + 1)).core_ids == [a]
    assert rt.CPUPool([b, 100000, a]).core_ids == [b, a]


def test_nothing_left_names_the_allowed_cpus(rt):
    with pytest.raises(ValueError, match=r"none of the CPUs \[100000\].*allowed CPUs: ") as e:
        rt.CPUPool([100000])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError):
        rt.CPUPool([])


@pytest.mark.parametrize("bad", ["0,1", [0.5], [True], 3])
def test_bad_core_ids_are_type_errors(rt, bad):
    with pytest.raises(TypeError, match="core_ids must be a list"):
        rt.CPUPool(bad)


def test_node_id_uses_hwloc_and_both_given_warns(rt, two_cpus):
    node0 = rt.CPUPool(node_id=0)
    assert set(node0.core_ids) <= set(rt.CPUPool().core_ids)
    assert rt.get_core_list_of_node_id(0) == node0.core_ids
    with pytest.raises(ValueError, match="NUMA node 4096"):
        rt.CPUPool(node_id=4096)
    with pytest.warns(UserWarning, match="core_ids is used"):
        assert rt.CPUPool([two_cpus[1]], node_id=0).core_ids == [two_cpus[1]]


def test_pools_compare_by_value(rt, two_cpus):
    a, b = two_cpus
    assert rt.CPUPool([a, b]) == rt.CPUPool([a, b])
    assert rt.CPUPool([a, b]) != rt.CPUPool([b, a])
    assert [p.core_ids for p in rt.CPUPool([a, b]).split(2)] == [[a], [b]]


def test_default_pool_is_not_evaluated_at_import(rt):
    assert inspect.signature(rt.MultiStreamModule).parameters["cpu_pool"].default is None


def test_pin_pins_the_team_and_restores_it_exactly(rt, two_cpus, threads2):
    a, b = two_cpus
    before = team_allowed_lists()
    assert len(before) == 2
    with rt.pin(rt.CPUPool([b, a])):
        assert torch.get_num_threads() == 2
        assert team_allowed_lists() == [str(b), str(a)]
        assert rt.current_cpu_pool() == rt.CPUPool([b, a])
    assert torch.get_num_threads() == 2
    assert team_allowed_lists() == before
    assert rt.current_cpu_pool() is None


def test_nested_pins(rt, two_cpus, threads2):
    a, b = two_cpus
    outside = team_allowed_lists()
    with rt.pin(rt.CPUPool([a, b])):
        in_outer = team_allowed_lists()
        assert in_outer == [str(a), str(b)]
        with rt.pin(rt.CPUPool([b])):
            assert torch.get_num_threads() == 1
            assert team_allowed_lists() == [str(b)]
            with rt.pin(rt.CPUPool([a])):
                assert team_allowed_lists() == [str(a)]
            assert team_allowed_lists() == [str(b)]
            assert ipex._C.current_cpu_pool().cpus == [b]  # not stale after the inner exit
        assert torch.get_num_threads() == 2
        assert team_allowed_lists() == in_outer
    assert team_allowed_lists() == outside


def test_pin_as_decorator_and_results_unchanged(rt, two_cpus, threads2):
    a, _ = two_cpus
    conv = torch.nn.Conv2d(3, 8, 3).eval()
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        expected = conv(x)

    @rt.pin(rt.CPUPool([a]))
    def run(inp):
        """doc kept"""
        return torch.get_num_threads(), team_allowed_lists(), conv(inp)

    with torch.no_grad():
        n, lists, out = run(x)
    assert run.__doc__ == "doc kept"
    assert n == 1 and lists == [str(a)]
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.get_num_threads() == 2


def test_one_pin_object_used_from_several_threads(rt, two_cpus):
    a, b = two_cpus
    p = rt.pin(rt.CPUPool([b]))
    seen, errors = [], []

    def work():
        try:
            for _ in range(20):
                with p:
                    seen.append(team_allowed_lists())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) == 60 and all(s == [str(b)] for s in seen)


def test_pin_rejects_a_non_pool(rt):
    with pytest.raises(TypeError, match="CPUPool"):
        rt.pin([0])


def test_alias_package_is_the_same_module(rt):
    import intel_extension_for_pytorch as alias
    import intel_extension_for_pytorch.cpu.runtime as alias_rt
    assert alias_rt is rt
    assert alias.cpu.runtime.CPUPool is rt.CPUPool
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from intel_extension_for_pytorch.cpu.runtime import MultiStreamModule  # noqa: F401
