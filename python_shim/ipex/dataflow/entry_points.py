"""Which modules a method other than forward may call directly.

A rewrite changes what single layers compute (a convolution takes its batch norm or an
activation, a batch norm becomes an identity stand-in, a module's code is inlined into its
parent's rewritten forward); forward as a whole computes what it did. A class's other public
methods (a custom `features()`, `inference()`) may call those layers themselves, so the
layers they can reach are left alone. Found from each method's bytecode: the attribute chains
it reads from `self` (`self.body(x)` calls body as a whole, `self.body.conv.weight` or
`for m in self.layers` reach inside), the class's methods it calls, and anything that gives
`self` away (passed on, captured, generic accessors such as children() or getattr) meaning
every submodule."""
import dis
import types

from torch import nn

_MODULE_METHODS = set(dir(nn.Module))
# Attributes of self that reach its submodules without naming them.
_GENERIC = {"_modules", "_parameters", "_buffers", "__dict__", "children", "named_children", "modules",
            "named_modules", "parameters", "named_parameters", "buffers", "named_buffers", "get_submodule",
            "get_parameter", "get_buffer", "state_dict", "apply", "_apply", "__getattr__", "__getattribute__"}
_CHAIN_OPS = {"LOAD_ATTR", "LOAD_METHOD"}
EVERYTHING = None


def exposed_modules(model):
    """{id(module): "Class.method()"} for the modules of model that a method other than
    forward may call directly (as a whole, or reached inside)."""
    exposed = {}
    for m in model.modules():
        for method, reached in other_entry_points(m).items():
            why = f"{type(m).__name__}.{method}()"
            if reached is EVERYTHING:
                reached = {(name,): "inside" for name in m._modules}
            for chain, how in reached.items():
                target, rest = _resolve(m, chain)
                if target is None:
                    continue
                for sub in (target.modules() if how == "inside" or rest else [target]):
                    exposed.setdefault(id(sub), why)
    return exposed


def _resolve(module, chain):
    """(the submodule the chain of attribute names leads to, names left over), or (None, ...)
    when its first name is no submodule."""
    target, i = module, 0
    while i < len(chain) and isinstance(target._modules.get(chain[i]), nn.Module):
        target, i = target._modules[chain[i]], i + 1
    return (target if i else None), chain[i:]


def other_entry_points(module):
    """{method name: {attribute chain: "call" or "inside"} or EVERYTHING} for the public
    methods of module's class besides forward (nn.Module's and torch.nn's own classes'
    methods excluded) that may reach a submodule other than through forward."""
    methods = {}
    for cls in reversed(type(module).__mro__):
        if not cls.__module__.startswith("torch.") and cls is not object:
            methods.update({k: getattr(v, "__func__", v) for k, v in vars(cls).items() if k not in _MODULE_METHODS})
    memo = {}

    def reach(name):
        if name not in memo:
            memo[name] = {}  # a recursion through itself adds nothing
            code = getattr(methods[name], "__code__", None)
            memo[name] = EVERYTHING if code is None else _code_reach(code, module, methods, reach)
        return memo[name]

    found = {}
    for name, fn in methods.items():
        if not name.startswith("_") and callable(fn):
            reached = reach(name)
            if reached is EVERYTHING or reached:
                found[name] = reached
    return found


def _code_reach(code, module, methods, reach):
    if "super" in code.co_names or not code.co_argcount:
        return EVERYTHING if "super" in code.co_names else {}
    me = code.co_varnames[0]
    if me in code.co_cellvars:
        return EVERYTHING  # captured by a nested function
    reached = {}
    instructions = list(dis.get_instructions(code))
    for i, inst in enumerate(instructions):
        if inst.opname != "LOAD_FAST" or inst.argval != me:
            continue
        chain, j = [], i + 1
        while j < len(instructions) and instructions[j].opname in _CHAIN_OPS:
            chain.append(instructions[j].argval)
            j += 1
        called = _is_call(instructions, i, j)
        if not chain:
            if called:
                continue  # self(...): through forward
            return EVERYTHING  # self given away
        if chain[0] in _GENERIC:
            return EVERYTHING
        if chain[0] in methods and callable(methods[chain[0]]):
            more = reach(chain[0])
            if more is EVERYTHING:
                return EVERYTHING
            for key, how in more.items():
                if reached.get(key) != "inside":
                    reached[key] = how
            continue
        if chain[0] not in module._modules:
            if _holds_modules(module.__dict__.get(chain[0])):
                return EVERYTHING  # modules kept outside the registry
            continue
        key = tuple(chain)
        reached[key] = "call" if called and reached.get(key) != "inside" else "inside"
    return reached


def _is_call(instructions, first, end):
    """Whether the value loaded by instructions[first:end] is what the code then calls."""
    last = instructions[end - 1]
    if last.opname == "LOAD_METHOD" or (last.opname == "LOAD_ATTR" and last.argrepr.startswith("NULL|self")):
        return True
    before = instructions[first - 1] if first else None
    return before is not None and before.opname == "PUSH_NULL"


def _holds_modules(value, depth=0):
    if isinstance(value, nn.Module):
        return True
    if depth < 3 and isinstance(value, (list, tuple, set)):
        return any(_holds_modules(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return any(_holds_modules(v, depth + 1) for v in value.values())
    return False
