"""The codeless hook: torch.nn.Module.__call__ replaced so that models run optimized copies.

A model is a module with children, in eval mode, called from outside any other module call.
Its first call runs eagerly (that answer is stock's) and builds an optimized copy with
ipex.optimize, checked against that answer. The copy is kept beside the model, in a map
keyed by the model's identity: nothing is added to the model, so its state_dict, len,
forward, named_modules and pickles stay as they were. Every later call first compares the
model's state (fingerprint.ModelState) with the one the copy was built from; on a change
the copy is rebuilt, and after MAX_REBUILDS changes the model runs eagerly for good (a
training loop changes weights every epoch). A copy that is a traced graph answers only for
inputs whose trace of the original took the same path (trace_check); others run eagerly.

Calls run the original module, unchanged, when: a trace is being recorded (torch.jit.trace,
ipex.optimize's own tracing), the call is nested in another module's call or in a call of
ipex.optimize, the module is a ScriptModule or a result of ipex.optimize, the module or an
input is in training mode / needs gradients / is not a plain CPU tensor, the model has
hooks, the model's parameters are not float32, the program's own autocast is on (float32
mode) or is not in the state the copy was checked in. With gradients enabled and parameters that
require them, the copy's answer backpropagates through the original (gradients.py).
"""
import contextlib
import itertools
import threading
import warnings
import weakref

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from ... import frontend
from . import fingerprint
from . import gradients
from . import memory
from . import trace_check

MAX_REBUILDS = 2
# How far the optimized copy's first answer may be from eager's, relative to the largest
# output magnitude, however small (what "the same answer" means for a user): float32 copies
# are exact up to reordered sums; bfloat16 ones round.
_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2}


class Report:
    def __init__(self):
        self.optimized = []   # class names of the models that got a copy
        self.graphs = []      # those whose copy is a traced graph
        self.eager = []       # (class name, why it runs eagerly)
        self.calls = 0        # calls answered by optimized copies
        self.rebuilds = 0


class _Entry:
    """What the hook knows about one model (never stored on the model)."""

    def __init__(self):
        self.copy = None        # the optimized model, or None: run the original
        self.graph = False      # copy is a traced graph: inputs need an accepted path
        self.graphs_made = 0    # frozen graphs are never freed (see _make_copy): at most one
        self.path = None        # TracedPath of the first call (graph copies)
        self.accepted = set()   # input signatures whose trace took that path
        self.rejected = set()
        self.state = None       # fingerprint.ModelState the copy was built from
        self.watched = []       # tensors watched for `.data` edits
        self.data_mark = 0
        self.answer = None      # (structure, dtypes) of eager's answer to the build call
        self.autocast = None    # the caller's autocast state the copy was checked in
        self.builds = 0
        self.why_eager = None   # set once the model runs eagerly for good


def _plain_inputs(value, grad_enabled):
    """Only plain CPU tensors (no subclasses, fx proxies, meta or other devices), and none
    that needs a gradient, go to an optimized copy."""
    if isinstance(value, torch.Tensor):
        return type(value) in (torch.Tensor, nn.Parameter) and value.device.type == "cpu" and \
            not value.is_quantized and value.layout == torch.strided and \
            not (grad_enabled and value.requires_grad)
    if isinstance(value, (tuple, list)):
        return all(_plain_inputs(v, grad_enabled) for v in value)
    if isinstance(value, dict):
        return all(_plain_inputs(v, grad_enabled) for v in value.values())
    return not isinstance(value, torch.fx.Proxy)


def _why_not_optimizable(model):
    if torch.nn.modules.module._global_forward_hooks or \
            torch.nn.modules.module._global_forward_pre_hooks:
        return "global module hooks are registered"
    for name, m in model.named_modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return f"module {name or '(the model)'} has hooks"
        if m.training:
            return f"module {name} is in training mode"
    tensors = list(model.parameters()) + list(model.buffers())
    if not any(t.is_floating_point() for t in tensors):
        return "it has no floating-point weights"
    for t in tensors:
        if t.is_floating_point() and (t.dtype != torch.float32 or t.device.type != "cpu"):
            return f"it holds {t.dtype} weights on {t.device} (float32 CPU models only)"
    return None


def _structure(value):
    """The containers and types of an output; None when it holds something a trace cannot
    give back (namedtuples, dict subclasses, ...)."""
    if isinstance(value, torch.Tensor):
        return "T"
    if type(value) in (tuple, list):
        parts = [_structure(v) for v in value]
        return None if None in parts else (type(value).__name__, tuple(parts))
    if type(value) is dict:
        parts = [(k, _structure(v)) for k, v in value.items()]
        return None if any(p is None for _, p in parts) else ("dict", tuple(parts))
    return None


def _map_tensors(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if type(value) in (tuple, list):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_map_tensors(v, fn) for v in value))
    if type(value) is dict:
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _bf16_to_float(value):
    return _map_tensors(value, lambda t: t.float() if t.dtype == torch.bfloat16 else t)


def _autocast_state():
    return torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()


def _answer_of(value):
    leaves, spec = tree_flatten(value)
    return spec, [t.dtype if isinstance(t, torch.Tensor) else None for t in leaves]


def _in_stocks_dtypes(out, answer):
    """The copy's answer in the floating dtypes eager answered in (layers of a bf16 copy may
    answer bf16 where eager answered float32, or float32 where stock autocast gave bf16).
    An answer of another structure: bf16 becomes float32 if eager's held no bf16."""
    leaves, spec = tree_flatten(out)
    want_spec, dtypes = answer
    if spec != want_spec:
        return out if torch.bfloat16 in dtypes else _bf16_to_float(out)
    changed = False
    for i, (t, dtype) in enumerate(zip(leaves, dtypes)):
        if isinstance(t, torch.Tensor) and t.dtype != dtype and t.dtype in _FLOATS and dtype in _FLOATS:
            leaves[i], changed = t.to(dtype), True
    return tree_unflatten(leaves, spec) if changed else out


_FLOATS = (torch.float32, torch.bfloat16)


def _max_difference(got, want):
    """Largest difference relative to the largest magnitude in `want`; inf when the structures
    or non-tensor values differ."""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return float("inf")
        if want.numel() == 0:
            return 0.0
        if not want.is_floating_point():
            return 0.0 if torch.equal(got.to(want.dtype), want) else float("inf")
        want32, got32 = want.float(), got.float()
        if not torch.isfinite(want32).all():
            return 0.0 if torch.equal(torch.isfinite(got32), torch.isfinite(want32)) else float("inf")
        scale = max(want32.abs().max().item(), 1e-6)
        return (got32 - want32).abs().max().item() / scale
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return float("inf")
        return max((_max_difference(g, w) for g, w in zip(got, want)), default=0.0)
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(got) != list(want):
            return float("inf")
        return max((_max_difference(got[k], w) for k, w in want.items()), default=0.0)
    return 0.0 if got == want else float("inf")


class CodelessHook:
    def __init__(self, dtype=torch.float32, graph_mode=True, report=None, optimize=None):
        self.dtype = dtype
        self.graph_mode = graph_mode
        self.report = report or Report()
        self._optimize = optimize
        self._entries = {}     # id(model) -> _Entry, removed when the model is collected
        self._refs = {}        # id(model) -> weakref to the model
        self._skip = {}        # id -> weakref: results of the user's own ipex.optimize calls
        self._local = threading.local()
        self._lock = threading.RLock()
        self.data_log = fingerprint.DataAccessLog()
        self._original_call = None

    def copy_of(self, model):
        """The optimized copy now answering for `model`, or None (for tests and debugging)."""
        with self._lock:
            entry = self._entries.get(id(model))
            ref = self._refs.get(id(model))
            return entry.copy if entry is not None and ref is not None and ref() is model else None

    # --- installing -------------------------------------------------------------------
    def install(self):
        import torch.fx  # noqa: F401  (fx keeps the __call__ it sees on import: the stock one)

        self._original_call = nn.Module.__call__
        self.data_log.install()
        hook = self

        def call(module, *args, **kwargs):
            return hook.call(module, args, kwargs)

        nn.Module.__call__ = call

    def uninstall(self):
        if self._original_call is not None:
            nn.Module.__call__ = self._original_call
        self.data_log.uninstall()

    def nested(self):
        """A context in which module calls run as they are (used around the user's own
        ipex.optimize calls and our own building)."""
        return _Nested(self._local)

    def user_optimize(self, optimize):
        """Wraps ipex.optimize for the program: it runs unhooked, and its result is left alone."""
        hook = self

        def wrapped(model, *args, **kwargs):
            with hook.nested():
                result = optimize(model, *args, **kwargs)
            # With an optimizer the result is (model, optimizer).
            hook._skip_later(result[0] if isinstance(result, tuple) else result)
            return result

        wrapped.__doc__ = optimize.__doc__
        wrapped.__name__ = optimize.__name__
        wrapped.__wrapped__ = optimize
        return wrapped

    # --- the call ---------------------------------------------------------------------
    def call(self, module, args, kwargs):
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth:
            return self._original_call(module, *args, **kwargs)
        if not self._is_candidate(module):
            return self._run_original(module, args, kwargs)
        grad = torch.is_grad_enabled()
        if not _plain_inputs(args, grad) or not _plain_inputs(kwargs, grad):
            return self._run_original(module, args, kwargs)
        if self.dtype == torch.float32 and torch.is_autocast_cpu_enabled():
            return self._run_original(module, args, kwargs)  # the program's own bf16: a float32 copy cannot answer
        with self._lock:
            entry = self._entry(module)
            if entry is None:
                return self._run_original(module, args, kwargs)
            if entry.builds == 0 or not self._unchanged(module, entry):
                return self._build(module, entry, args, kwargs)
            copy = entry.copy
            if copy is not None and entry.autocast != _autocast_state():
                # Checked in another autocast state (the program's own autocast on or off):
                # stock's answer is not the copy's there.
                return self._run_original(module, args, kwargs)
            copy_args, copy_kwargs = args, kwargs
            if copy is not None and entry.graph:
                inputs = self._accepted_inputs(module, entry, args, kwargs)
                if inputs is None:
                    return self._run_original(module, args, kwargs)
                copy_args, copy_kwargs = inputs, {}
        if copy is None:
            return self._run_original(module, args, kwargs)
        self.report.calls += 1
        if grad and gradients.wanted(module):
            return gradients.differentiable(lambda: self._run_copy(entry, copy, copy_args, copy_kwargs),
                                            lambda: self._run_original(module, args, kwargs), module)
        return self._run_copy(entry, copy, copy_args, copy_kwargs)

    def _run_copy(self, entry, copy, args, kwargs):
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            with torch.no_grad(), self._autocast():
                out = copy(*args, **kwargs)
        finally:
            local.depth = depth
        return _in_stocks_dtypes(out, entry.answer)

    def _autocast(self):
        """bf16 copies run under autocast; a program's own autocast stays on for any copy."""
        return torch.cpu.amp.autocast(enabled=self.dtype == torch.bfloat16 or torch.is_autocast_cpu_enabled())

    def _is_candidate(self, module):
        if isinstance(module, torch.jit.ScriptModule) or self._skipped(module):
            return False
        if getattr(module, "training", True) or torch._C._get_tracing_state() is not None:
            return False
        if type(module).__module__.split(".")[0] == "ipex":
            return False  # the extension's own modules (packed layers, MultiStreamModule, ...)
        return next(iter(module._modules.values()), None) is not None

    def _skip_later(self, module):
        key = id(module)
        try:
            self._skip[key] = weakref.ref(module, lambda _, key=key: self._skip.pop(key, None))
        except TypeError:
            pass

    def _skipped(self, module):
        ref = self._skip.get(id(module))
        return ref is not None and ref() is module

    def _run_original(self, module, args, kwargs):
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            return self._original_call(module, *args, **kwargs)
        finally:
            local.depth = depth

    def _entry(self, module):
        key = id(module)
        entry = self._entries.get(key)
        if entry is not None and self._refs[key]() is module:
            return entry
        try:
            self._refs[key] = weakref.ref(module, lambda _, key=key: self._forget(key))
        except TypeError:
            return None  # a module that cannot be weakly referenced is left alone
        entry = self._entries[key] = _Entry()
        return entry

    def _forget(self, key):
        with self._lock:
            entry = self._entries.pop(key, None)
            self._refs.pop(key, None)
            if entry is not None:
                self.data_log.unwatch(entry.watched)

    def _unchanged(self, module, entry):
        return entry.state is not None and entry.state.unchanged(module) and \
            not self.data_log.touched(entry.data_mark, entry.watched)

    # --- building the copy --------------------------------------------------------------
    def _build(self, module, entry, args, kwargs):
        """Runs this call eagerly and (re)builds the copy, checked against its answer."""
        name = type(module).__name__
        first = entry.builds == 0
        entry.builds += 1
        entry.copy, entry.graph, entry.path = None, False, None  # freed before the next copy
        entry.accepted, entry.rejected = set(), set()
        self.data_log.unwatch(entry.watched)
        entry.watched = []
        if not first:
            self.report.rebuilds += 1
        if entry.builds > MAX_REBUILDS + 1 and entry.why_eager is None:
            entry.why_eager = f"its weights or attributes changed {entry.builds - 1} times"
            self.report.eager.append((name, entry.why_eager))
        before = fingerprint.ModelState(module)
        out = self._run_original(module, args, kwargs)
        entry.answer, entry.autocast = _answer_of(out), _autocast_state()
        changed_itself = not before.unchanged(module)
        if entry.why_eager is None and not changed_itself:
            reason = _why_not_optimizable(module)
            if reason is None:
                with _kept_random_state():
                    reason = self._make_copy(module, entry, args, kwargs, out)
            if reason is not None:
                self.report.eager.append((name, reason))
                warnings.warn(f"auto_ipex: {name} runs as it is: {reason}")
            elif first:
                self.report.optimized.append(name)
                if entry.graph:
                    self.report.graphs.append(name)
        # A call that changed the model (lazy initialisation, a forward that keeps state)
        # leaves no copy, and the next call builds again.
        entry.state = None if changed_itself else before
        if entry.copy is not None:
            entry.watched = before.tensors
            self.data_log.watch(entry.watched)
        entry.data_mark = self.data_log.mark()
        return out

    def _make_copy(self, module, entry, args, kwargs, out):
        """Sets entry.copy (a graph where the trace is proven, else eager); the reason it
        could not, else None."""
        path, inputs = None, None
        # A frozen TorchScript graph keeps its constants (the folded weights) and ipex's
        # packed ones in torch's global compilation unit after it is dropped (pytorch#96726;
        # torch.jit.freeze alone shows it). So a model gets at most one graph: once its
        # weights change, its copies are eager ones, whose memory is freed on each rebuild.
        if self.graph_mode and entry.graphs_made == 0 and _structure(out) is not None:
            try:
                inputs = trace_check.positional_inputs(module, args, kwargs)
                with self.nested():
                    path = trace_check.trace_path(module, inputs)
            except trace_check.NotTraceable:
                path = None
        errors = []
        for graph in ([True] if path is not None else []) + [False]:
            extra = dict(graph_mode=True, sample_input=inputs) if graph else dict(graph_mode=False)
            try:
                with self.nested(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # The copy shares the weights it does not replace: any change of the
                    # model's tensors rebuilds it anyway.
                    with _tensors_kept(module), frontend.sharing_weights():
                        copy = self._optimize(module, dtype=self.dtype, inplace=False, **extra)
                    is_graph = graph and any(isinstance(m, torch.jit.ScriptModule) for m in copy.modules())
                    # The copy's first call packs its layers (see memory.py).
                    with torch.no_grad(), self._autocast(), \
                            memory.released_per_layer(copy):
                        got = copy(*inputs) if is_graph else copy(*args, **kwargs)
            except Exception as e:  # the program must run even where optimisation cannot
                errors.append(f"{type(e).__name__}: {e}".splitlines()[0])
                continue
            difference = _max_difference(got, out)
            if difference > _TOLERANCE[self.dtype]:
                errors.append(f"its optimized {'graph' if graph else 'copy'} differs from eager by "
                              f"{difference:.3g} (relative)")
                continue
            entry.copy, entry.graph = copy, is_graph
            if is_graph:
                entry.graphs_made += 1
                entry.path = path
                entry.accepted.add(trace_check.signature((args, kwargs)))
            return None
        return "; ".join(errors)

    def _accepted_inputs(self, module, entry, args, kwargs):
        """The positional inputs for the graph when this call's trace takes the checked
        path, else None (the call then runs eagerly)."""
        key = trace_check.signature((args, kwargs))
        if key in entry.rejected:
            return None
        try:
            inputs = trace_check.positional_inputs(module, args, kwargs)
        except trace_check.NotTraceable:
            entry.rejected.add(key)
            return None
        if key in entry.accepted:
            return inputs
        try:
            with self.nested(), _kept_random_state():
                same = trace_check.trace_path(module, inputs) == entry.path
        except trace_check.NotTraceable:
            same = False
        (entry.accepted if same else entry.rejected).add(key)
        return inputs if same else None


@contextlib.contextmanager
def _tensors_kept(model):
    """ipex.optimize's copy starts out sharing the model's tensors: a tensor it re-points
    (`.data = ...`, e.g. a dtype cast) is pointed back on the model afterwards."""
    saved = [(t, t.detach(), t._version) for t in itertools.chain(model.parameters(), model.buffers())]
    try:
        yield
    finally:
        for t, before, version in saved:
            if t.data_ptr() != before.data_ptr() or t.dtype != before.dtype or t.shape != before.shape:
                torch._C._TensorBase.data.__set__(t, before)
            elif t._version != version:
                warnings.warn("auto_ipex: ipex.optimize changed a weight of the model in place")


@contextlib.contextmanager
def _kept_random_state():
    """Building and checking copies must not move the program's random numbers."""
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


class _Nested:
    def __init__(self, local):
        self._local = local

    def __enter__(self):
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def __exit__(self, *exc):
        self._local.depth -= 1
