"""Memory of codeless mode: the optimized copy holds no second copy of a weight it does not
repack, and the memory layers free while packing is given back layer by layer. Counted by
tensor storages and release calls, not by RSS (which other jobs and allocators make noisy)."""
import glob
import textwrap

import pytest

from codeless_run import environment, run
from project_paths import TORCH_PYTHON

COMMON = textwrap.dedent("""
    import torch
    from torch import nn
    import ipex.cpu.auto_ipex as auto_ipex
    from ipex.cpu.codeless import memory

    class TinyBert(nn.Module):
        def __init__(self):
            super().__init__()
            self.words = nn.Embedding(50, 32)
            self.norm = nn.LayerNorm(32)
            self.encoder = nn.TransformerEncoder(
                nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2)
            self.head = nn.Sequential(nn.Conv1d(32, 16, 1), nn.BatchNorm1d(16), nn.ReLU())

        def forward(self, ids):
            x = self.encoder(self.norm(self.words(ids)))
            return self.head(x.transpose(1, 2))

    torch.manual_seed(0)
    model = TinyBert().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)  # no two weights alike (LayerNorm starts as ones/zeros)
        model.head[1].running_mean.uniform_(-1, 1)
        model.head[1].running_var.uniform_(0.5, 2)
    ids = torch.randint(0, 50, (2, 7))
""")

SHARING = COMMON + textwrap.dedent("""
    hook = auto_ipex.install("{dtype}")
    with torch.no_grad():
        model(ids)
        model(ids)
    copy = hook.copy_of(model)
    assert copy is not None, hook.report.eager

    def tensors(module):
        for m in module.modules():
            yield from m._parameters.values()
            yield from m._buffers.values()
            for value in vars(m).values():
                for t in (value if isinstance(value, (tuple, list)) else [value]):
                    if isinstance(t, torch.Tensor):
                        yield t

    user = [t for t in tensors(model) if t is not None]
    user_storages = {{t.storage().data_ptr() for t in user}}
    shared = 0
    for t in tensors(copy):
        if t is None or not t.numel():
            continue
        if t.storage().data_ptr() in user_storages:
            shared += 1
            continue
        for u in user:
            assert not (u.shape == t.shape and u.dtype == t.dtype and torch.equal(u, t)), \\
                f"the copy holds a second copy of a {{tuple(t.shape)}} weight"
    assert shared, "no weight of the model is shared with its copy"
    assert copy.words.weight.data_ptr() == model.words.weight.data_ptr()
    print("shared", shared)

    # Sharing must not let a change of the model go unseen: an in-place edit of the shared
    # embedding rebuilds the copy, which answers as the edited model does.
    with torch.no_grad():
        model.words.weight.mul_(-1)
        got = model(ids)
        with hook.nested():
            want = model(ids)
    assert hook.report.rebuilds == 1, hook.report.rebuilds
    assert (got.float() - want).abs().max() <= {tolerance} * want.abs().max(), (got, want)
    print("ok")
""")


def test_copy_shares_the_weights_it_does_not_repack(tmp_path):
    for dtype, tolerance in (("float32", 1e-4), ("bfloat16", 5e-2)):
        script = tmp_path / f"sharing_{dtype}.py"
        script.write_text(SHARING.format(dtype=dtype, tolerance=tolerance))
        r = run([TORCH_PYTHON, str(script)], env=environment())
        assert r.returncode == 0, r.stderr
        assert "ok" in r.stdout.split(), r.stdout
        # the embedding, the LayerNorm's weight and bias at least
        assert int(r.stdout.split("shared ")[1].split()[0]) >= 3, r.stdout


RELEASING = COMMON + textwrap.dedent("""
    calls = []
    assert memory._RELEASE is not None, "no way to release free memory on this allocator"
    memory._RELEASE = lambda: calls.append(1)
    hook = auto_ipex.install("float32")
    with torch.no_grad():
        model(ids)  # eager answer, then the copy is built and its first call packs
    copy = hook.copy_of(model)
    assert copy is not None, hook.report.eager
    assert not any(m._forward_hooks for m in copy.modules()), "release hooks left on the copy"
    first = len(calls)
    called = []  # module calls in one call of the copy: one release after each, one at the end
    handles = [m.register_forward_hook(lambda *_: called.append(1)) for m in copy.modules()]
    with torch.no_grad(), hook.nested():
        copy(ids)
    for h in handles:
        h.remove()
    assert len(called) > 3 and first == len(called) + 1, (first, len(called))
    before = len(calls)
    with torch.no_grad():
        model(ids)
    assert len(calls) == before, "later calls of the copy release memory too"
    print("ok")
""")


def test_memory_freed_while_packing_is_released_layer_by_layer(tmp_path):
    script = tmp_path / "releasing.py"
    script.write_text(RELEASING)
    r = run([TORCH_PYTHON, str(script)], env=environment())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok"], r.stdout


def test_release_goes_to_the_allocator_in_use(tmp_path):
    """glibc's malloc_trim by default; tcmalloc's own release when it is preloaded (as ipexrun
    does), since glibc's trim cannot reach tcmalloc's pages."""
    script = tmp_path / "which.py"
    script.write_text("from ipex.cpu.codeless import memory\n"
                      "memory.release_free_memory()\n"
                      "print(memory.RELEASER)\n")
    plain = run([TORCH_PYTHON, str(script)], env=environment())
    assert plain.returncode == 0 and plain.stdout.split() == ["malloc_trim"], plain.stdout + plain.stderr
    tcmalloc = sorted(glob.glob("/usr/lib/*/libtcmalloc.so*"))
    if tcmalloc:
        r = run([TORCH_PYTHON, str(script)], env=dict(environment(), LD_PRELOAD=tcmalloc[0]))
        assert r.returncode == 0 and r.stdout.split() == ["MallocExtension_ReleaseFreeMemory"], \
            r.stdout + r.stderr


GRAPH_ONCE = textwrap.dedent("""
    import torch
    from torch import nn
    import ipex.cpu.auto_ipex as auto_ipex

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 6 * 6, 4)).eval()
    x = torch.randn(2, 3, 8, 8)
    hook = auto_ipex.install("float32", graph_mode=True)

    def is_graph(copy):
        return any(isinstance(m, torch.jit.ScriptModule) for m in copy.modules())

    with torch.no_grad():
        model(x)
        assert is_graph(hook.copy_of(model)), hook.report.eager
        for step in range(2):
            model[0].weight.mul_(0.5)
            got = model(x)
            with hook.nested():
                want = model(x)
            assert (got - want).abs().max() <= 1e-4 * want.abs().max()
            copy = hook.copy_of(model)
            assert copy is not None and not is_graph(copy), step
    assert hook.report.rebuilds == 2 and hook.report.graphs == ["Sequential"], vars(hook.report)
    print("ok")
""")


def test_graph_mode_makes_one_graph_per_model_and_rebuilds_eagerly(tmp_path):
    """A dropped frozen graph is never freed (torch keeps its constants), so a model whose
    weights change gets eager copies from then on rather than a new graph each time."""
    script = tmp_path / "graph_once.py"
    script.write_text(GRAPH_ONCE)
    r = run([TORCH_PYTHON, str(script)], env=environment())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok"], r.stdout


LINEARS_IN_PLACE = textwrap.dedent("""
    import torch
    from torch import nn
    import ipex.cpu.auto_ipex as auto_ipex

    def peak():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    def layers(width=1024):
        if "{model}" == "linears":
            return nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, 2 * width), nn.ReLU(),
                                 nn.Linear(2 * width, width)).eval()
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(width, 8, width, batch_first=True), 2).eval()

    def sample(width=1024):
        return torch.randn(4, width) if "{model}" == "linears" else torch.randn(1, 8, width)

    torch.manual_seed(0)
    hook = auto_ipex.install("float32")
    with torch.no_grad():  # code, kernels and buffers that any model's first call loads
        small = layers(64)
        small(sample(64))
        small(sample(64))
    model = layers()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())  # 48 MiB
    x = sample()
    first, second = (model[0], model[2]) if "{model}" == "linears" else (model.layers[0].linear1,
                                                                         model.layers[1].self_attn.out_proj)

    def check():
        got = model(x)
        with hook.nested():
            want = model(x)
        assert (got - want).abs().max() <= 1e-4 * want.abs().max(), (got, want)

    with torch.no_grad():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # peak RSS := current RSS
        base = peak()
        model(x)  # eager answer; the copy is built and its first (checking) call packs
        grown = peak() - base
        assert hook.copy_of(model) is not None, hook.report.eager
        # Packed copies of the linears' weights would add 1.0; of an encoder's QKV projections
        # alone (their weight scaled), 0.5.
        assert grown < 0.25 * weight_bytes, f"peak RSS grew by {{grown / weight_bytes:.2f}}x the weights"
        check()
        # The copy reads the model's weights: an in-place edit or a load rebuilds it, and it
        # answers as the edited model does.
        second.weight.mul_(-1)
        first.bias.add_(0.5)
        check()
        other = layers()
        model.load_state_dict(other.state_dict())
        check()
        for p in other.parameters():
            p.mul_(3)  # load_state_dict copied: the model and its copy keep the loaded values
        check()
    assert hook.report.rebuilds == 2, vars(hook.report)
    print("ok")
""")


@pytest.mark.parametrize("model", ["linears", "encoder"])
def test_copy_reads_float32_linear_weights_in_place(tmp_path, model):
    """Where the kernel wants a plain weight layout (oneDNN capped at AVX2 here, as on AVX2
    CPUs), the copy's linears read the model's weights where they are: building and packing
    the copy adds no weight-sized memory, and every change of the model still rebuilds it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("/proc/self/clear_refs is not writable here: peak RSS cannot be reset")
    script = tmp_path / "linears.py"
    script.write_text(LINEARS_IN_PLACE.format(model=model))
    r = run([TORCH_PYTHON, str(script)], env=dict(environment(), ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok"], r.stdout
