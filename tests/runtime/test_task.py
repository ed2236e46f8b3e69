import threading
import time

import pytest
import torch

from rt_util import team_allowed_lists


def test_several_outstanding_inputs_equal_eager(rt, model, model_as, two_cpus):
    target = model_as
    for cpus in ([two_cpus[0]], [two_cpus[1]], two_cpus):
        task = rt.Task(target, rt.CPUPool(cpus))
        inputs = [torch.randn(b, 3, 10, 10) for b in (1, 2, 3, 4, 5, 2)]
        with torch.no_grad():
            futures = [task(x) for x in inputs]  # all queued before any result is read
            expected = [model(x) for x in inputs]
            results = [f.get() for f in futures]
        for got, want in zip(results, expected):
            assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(task.run_sync(inputs[0]), expected[0], atol=1e-6)


def test_inputs_are_not_overwritten_by_later_submissions(rt, two_cpus):
    gate = threading.Event()

    def slow_identity(x, tag=None):
        gate.wait(5)
        return x.clone(), tag

    task = rt.Task(slow_identity, rt.CPUPool([two_cpus[0]]))
    futures = [task(torch.full((2,), float(i)), tag=i) for i in range(10)]
    gate.set()
    for i, f in enumerate(futures):
        x, tag = f.get()
        assert tag == i and torch.equal(x, torch.full((2,), float(i)))


def test_worker_team_is_pinned(rt, two_cpus):
    a, b = two_cpus
    task = rt.Task(lambda: (torch.get_num_threads(), team_allowed_lists()), rt.CPUPool([b, a]))
    assert task.run_sync() == (2, [str(b), str(a)])
    task1 = rt.Task(lambda: (torch.get_num_threads(), team_allowed_lists()), rt.CPUPool([b]))
    assert task1.run_sync() == (1, [str(b)])


def test_exceptions_travel_through_the_future(rt, two_cpus):
    def fail(x):
        raise KeyError(f"missing {x}")

    task = rt.Task(fail, rt.CPUPool([two_cpus[0]]))
    f = task(3)
    with pytest.raises(KeyError, match="missing 3"):
        f.get()
    script = rt.Task(torch.jit.script(torch.nn.Linear(4, 2)), rt.CPUPool([two_cpus[0]]))
    with pytest.raises(RuntimeError) as e:
        script(torch.randn(3, 5)).get()  # shape mismatch inside forward
    assert "Exception raised from" not in str(e.value)  # no C++ backtrace
    assert script.run_sync(torch.randn(3, 4)).shape == (3, 2)


def test_grad_inference_and_autocast_modes_travel(rt, two_cpus):
    def modes():
        return torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.is_autocast_cpu_enabled()

    task = rt.Task(modes, rt.CPUPool([two_cpus[0]]))
    assert task.run_sync() == (True, False, False)
    with torch.no_grad():
        assert task.run_sync() == (False, False, False)
    with torch.inference_mode():
        assert task.run_sync() == (False, True, False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert task.run_sync() == (True, False, True)
    assert task.run_sync() == (True, False, False)  # nothing sticks to the worker

    lin = torch.jit.script(torch.nn.Linear(4, 4))
    script = rt.Task(lin, rt.CPUPool([two_cpus[0]]))
    x = torch.randn(2, 4)
    assert script.run_sync(x).requires_grad
    with torch.no_grad():
        assert not script.run_sync(x).requires_grad


def test_many_tasks_in_flight_from_several_threads(rt, two_cpus):
    task = rt.Task(lambda x: x * 2, rt.CPUPool([two_cpus[1]]))
    results = {}

    def submit(k):
        futures = [task(torch.tensor([k * 100 + i])) for i in range(50)]
        results[k] = [int(f.get()) for f in futures]

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k] == [2 * (k * 100 + i) for i in range(50)]


def test_shutdown_drains_or_cancels(rt, two_cpus):
    task = rt.Task(lambda x: (time.sleep(0.002), x)[1], rt.CPUPool([two_cpus[0]]))
    futures = [task(i) for i in range(10)]
    task.shutdown()
    assert [f.get() for f in futures] == list(range(10))
    with pytest.raises(RuntimeError, match="shut down"):
        task(1)

    gate = threading.Event()
    blocked = rt.Task(lambda: gate.wait(5), rt.CPUPool([two_cpus[0]]))
    first = blocked()
    time.sleep(0.05)
    queued = blocked()
    stopper = threading.Thread(target=blocked.shutdown, kwargs={"cancel": True})
    stopper.start()
    time.sleep(0.05)
    gate.set()
    stopper.join()
    assert first.get() is True
    with pytest.raises(RuntimeError, match="cancelled"):
        queued.get()


def test_bad_arguments(rt):
    with pytest.raises(TypeError, match="CPUPool"):
        rt.Task(lambda: 0, [0])
    with pytest.raises(TypeError, match="callable"):
        rt.Task(42, rt.CPUPool())
    f = rt.Task(lambda: 1, rt.CPUPool()).__call__()
    assert f.get() == 1
    with pytest.raises(RuntimeError, match="already taken"):
        f.get()


def test_dropped_futures_and_tasks_with_queued_python_calls(rt, two_cpus):
    """Results nobody reads and Tasks dropped with calls still queued: every queued call
    runs (drain) and the Python objects are released safely from the worker."""
    ran = []
    for round_ in range(10):
        task = rt.Task(lambda x, r=round_: ran.append((r, float(x.sum()))) or [x] * 3, rt.CPUPool([two_cpus[0]]))
        for i in range(10):
            task(torch.full((2,), float(i)))  # future dropped at once
        del task  # drains the queue, then joins the worker
    assert len(ran) == 100
    assert sorted(ran) == sorted((r, 2.0 * i) for r in range(10) for i in range(10))


@pytest.mark.parametrize("queued", [1, 3])
def test_program_may_exit_while_a_python_task_runs(two_cpus, tmp_path, queued):
    """A script that ends with a Python call still running on a task (and more queued) exits
    normally: the running call finishes, queued ones are cancelled. Before, the task thread
    needed the GIL after Python had begun shutting down and the process aborted."""
    import os
    import subprocess
    import sys
    done = tmp_path / "done"
    script = (
        "import time, ipex\n"
        "from ipex.cpu import runtime as rt\n"
        f"def work():\n    time.sleep(0.3)\n    open({str(done)!r}, 'a').write('x')\n"
        f"task = rt.Task(work, rt.CPUPool([{two_cpus[0]}]))\n"
        f"futures = [task() for _ in range({queued})]\n"
        "time.sleep(0.05)\n"
        "print('leaving')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout == "leaving\n"
    assert done.read_text() == "x"  # the running call completed, the queued ones did not run
