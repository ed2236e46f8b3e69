"""Codeless runs of programs of many shapes answer as plain python runs do, and leave their
models exactly as they were (state_dict, modules, attributes, len, pickles)."""
import pytest

from codeless_run import assert_same, optimised_calls, run_both

FP32 = 1e-4
BF16 = 5e-2


def check(eager, codeless, tolerance):
    for key in eager:
        if key.endswith("facts"):
            assert_same(codeless[key], eager[key], 0, key)  # the model itself: exactly equal
        else:
            assert_same(codeless[key], eager[key], tolerance, key)
    assert list(codeless) == list(eager)


@pytest.mark.parametrize("program, least_optimised", [
    ("sequential.py", 3),
    ("nested_kwargs.py", 6),
    ("control_flow.py", 4),
    ("weight_changes.py", 18),
    ("training_loop.py", 2),
    ("grad_mode.py", 3),
    ("own_autocast.py", 3),      # the calls without the program's autocast
])
def test_answers_and_models_match_plain_python(program, least_optimised, tmp_path):
    eager, codeless, stderr = run_both(program, tmp_path)
    check(eager, codeless, FP32)
    assert optimised_calls(stderr) >= least_optimised, stderr


@pytest.mark.parametrize("program, least_optimised", [
    ("control_flow.py", 4),     # a shape-dependent branch: only inputs whose trace matches
    ("nested_kwargs.py", 6),    # keyword inputs bound to positions; namedtuples stay eager copies
    ("weight_changes.py", 18),
    ("grad_mode.py", 3),        # gradients enabled: the graph's answers backpropagate through eager
])
def test_graph_mode_answers_only_where_its_trace_holds(program, least_optimised, tmp_path):
    eager, codeless, stderr = run_both(program, tmp_path, options=["--ipex-graph-mode"])
    check(eager, codeless, FP32)
    assert optimised_calls(stderr) >= least_optimised, stderr


@pytest.mark.parametrize("package", ["ipex", "intel_extension_for_pytorch"])
def test_programs_own_trace_script_and_optimize_run_unhooked(package, tmp_path):
    eager, codeless, stderr = run_both("trace_inside.py", tmp_path, package, package=package)
    check(eager, codeless, FP32)


def test_bert_style_model_in_bfloat16(tmp_path):
    eager, codeless, stderr = run_both("bert_style.py", tmp_path, options=["--dtype", "bfloat16"])
    check(eager, codeless, BF16)
    assert optimised_calls(stderr) >= 2, stderr


def test_programs_own_autocast_in_bfloat16(tmp_path):
    """The answers keep stock's dtypes: bf16 under the program's autocast, float32 outside."""
    eager, codeless, stderr = run_both("own_autocast.py", tmp_path, options=["--dtype", "bfloat16"])
    check(eager, codeless, BF16)
    assert optimised_calls(stderr) >= 2, stderr  # the later calls in the state of the first
