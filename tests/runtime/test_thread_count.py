"""oneDNN results across OpenMP team-size changes, the thread-count watch, and the runtime
under other OpenMP runtimes (LD_PRELOAD)."""
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import torch

import ipex

C = ipex._C


def reference_conv(x, w, b):
    return torch.nn.functional.conv2d(x.double(), w.double(), b.double(), padding=1)


def test_mkldnn_conv_under_2_1_2_threads(two_cpus):
    torch.manual_seed(3)
    x, w, b = torch.randn(4, 16, 14, 14), torch.randn(32, 16, 3, 3), torch.randn(32)
    ref = reference_conv(x, w, b)
    old = torch.get_num_threads()
    C.current_omp_threads()  # the watch's first look at this thread
    try:
        for n in (2, 1, 2):
            g = C.omp_thread_generation()
            torch.set_num_threads(n)
            assert C.current_omp_threads() == n
            if n != old:
                assert C.omp_thread_generation() > g
            old = n
            blocked = torch.nn.functional.conv2d(x.to_mkldnn(), w.to_mkldnn(), b.to_mkldnn(), padding=1)
            dense = torch.mkldnn_convolution(x, w, b, [1, 1], [1, 1], [1, 1], 1)
            assert torch.allclose(blocked.to_dense().double(), ref, atol=1e-3), n
            assert torch.allclose(dense.double(), ref, atol=1e-3), n
    finally:
        torch.set_num_threads(2)


def test_ipex_kernels_under_2_1_2_threads(two_cpus):
    frontend = pytest.importorskip("ipex.frontend")
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(32 * 14 * 14, 10)).eval()
    x = torch.randn(4, 16, 14, 14)
    with torch.no_grad():
        ref = model.double()(x.double()).float()
        model.float()
        opt = frontend.optimize(model)
        before = C.cache_invalidations()
        old = torch.get_num_threads()
        try:
            for n in (2, 1, 2):
                torch.set_num_threads(n)
                assert torch.allclose(opt(x), ref, atol=1e-3, rtol=1e-3), n
        finally:
            torch.set_num_threads(old)
    # The kernels' caches saw the team size change and rebuilt their entries.
    assert C.cache_invalidations() > before


def test_msm_streams_inside_a_changing_main_thread(rt, two_cpus):
    """Streams keep their own team size whatever the main thread does."""
    probe = rt.MultiStreamModule(lambda x: torch.full((x.shape[0],), torch.get_num_threads()), num_streams=1,
                                 cpu_pool=rt.CPUPool(two_cpus))
    old = torch.get_num_threads()
    try:
        for n in (2, 1, 2):
            torch.set_num_threads(n)
            assert probe(torch.zeros(3)).tolist() == [2, 2, 2]
    finally:
        torch.set_num_threads(old)


def run_python(code, env_extra):
    # A clean OpenMP environment (the suite may itself run under ipexrun's settings).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "KMP_", "GOMP_")) and k != "LD_PRELOAD"}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # The child gets every CPU of this process, even if an OpenMP runtime narrowed our main thread.
    cpus = list(C.allowed_cpus())
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                         timeout=120, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def runtime_library():
    lib = pathlib.Path(C.__file__).resolve().parent.parent.parent / "runtime" / "libipex_runtime.so"
    if not lib.exists():
        pytest.skip(f"{lib} not found (not a build tree)")
    return str(lib)


IOMP = "/usr/lib/x86_64-linux-gnu/libiomp5.so"


@pytest.mark.parametrize("omp", ["libgomp", "libiomp5"])
def test_preloaded_library_sees_every_team_size_change(two_cpus, omp):
    """Preloaded, the library's omp_set_num_threads runs in front of the OpenMP runtime's for
    every caller, torch included: the generation moves without anyone reading the count.
    (With Intel OpenMP also preloaded, libipex_runtime.so must come first in LD_PRELOAD.)"""
    preload = runtime_library()
    if omp == "libiomp5":
        if not os.path.exists(IOMP):
            pytest.skip("libiomp5 not installed")
        preload += ":" + IOMP
    out = run_python("""
        import torch, ipex
        C = ipex._C
        g = C.omp_thread_generation()
        torch.set_num_threads(2)
        torch.set_num_threads(1)
        torch.set_num_threads(2)
        print(C.omp_thread_generation() - g)
        print(ipex._C.openmp_runtime_name())
    """, {"LD_PRELOAD": preload})
    bumps, runtime = out.split()
    assert int(bumps) >= 2
    assert runtime == ("libgomp" if omp == "libgomp" else "libiomp5/libomp")


@pytest.mark.skipif(not os.path.exists(IOMP), reason="libiomp5 not installed")
def test_pinning_under_intel_openmp(two_cpus):
    a, b = two_cpus
    out = run_python(f"""
        import torch, ipex
        from ipex.cpu import runtime as rt
        from rt_util import team_allowed_lists
        print(ipex._C.openmp_runtime_name())
        torch.set_num_threads(2)
        before = team_allowed_lists()
        with rt.pin(rt.CPUPool([{b}, {a}])):
            inside = team_allowed_lists()
            n = torch.get_num_threads()
        print(inside == ['{b}', '{a}'], n == 2, team_allowed_lists() == before)
        task = rt.Task(lambda: team_allowed_lists(), rt.CPUPool([{b}]))
        print(task.run_sync() == ['{b}'])
        conv = torch.nn.Conv2d(3, 4, 3).eval()
        x = torch.randn(3, 3, 8, 8)
        msm = rt.MultiStreamModule(conv, num_streams=2, cpu_pool=rt.CPUPool([{a}, {b}]))
        with torch.no_grad():
            print(torch.allclose(msm(x), conv(x), atol=1e-6))
    """, {"LD_PRELOAD": IOMP})
    lines = out.split("\n")
    assert lines[0] == "libiomp5/libomp"
    assert lines[1:4] == ["True True True", "True", "True"]


@pytest.mark.parametrize("env", [{"OMP_PROC_BIND": "close", "OMP_PLACES": "threads"},
                                 {"LD_PRELOAD": IOMP, "KMP_AFFINITY": "granularity=fine,compact,1,0"}],
                         ids=["libgomp-places", "libiomp5-kmp-affinity"])
def test_default_pool_survives_openmp_binding_the_main_thread(two_cpus, env):
    """OpenMP binding env vars pin the main thread to one CPU at start-up (ipexrun sets them);
    the default pool is still every CPU the process was given."""
    if "LD_PRELOAD" in env and not os.path.exists(IOMP):
        pytest.skip("libiomp5 not installed")
    out = run_python("""
        import os, torch
        torch.zeros(4).add_(1)  # let the OpenMP runtime start and bind
        from ipex.cpu import runtime as rt
        print(sorted(os.sched_getaffinity(0)), rt.CPUPool().core_ids)
    """, env)
    main_mask, pool = out.strip().split("] ")
    assert pool.strip() == str(list(C.allowed_cpus()))  # what the subprocess was given
    if "OMP_PLACES" in env:
        assert main_mask + "]" != pool.strip()  # the scenario did happen: main thread narrowed
