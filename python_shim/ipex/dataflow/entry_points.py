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
    methods = _methods(type(module))
    found = {}
    for name in methods:
        if not name.startswith("_"):
            reached = _method_reach(module, name, methods)
            if reached is EVERYTHING or reached:
                found[name] = reached
    return found


def _methods(cls):
    """{name: function or other callable} of the class, torch's own classes left out;
    static and class methods map to None (no `self`)."""
    methods = {}
    for c in reversed(cls.__mro__):
        if not c.__module__.startswith("torch.") and c is not object:
            for k, v in vars(c).items():
                if k not in _MODULE_METHODS and callable(getattr(v, "__func__", v)):
                    methods[k] = None if isinstance(v, (staticmethod, classmethod)) else v
    return methods


def _method_reach(module, name, methods, memo=None):
    memo = {} if memo is None else memo
    key = (id(module), name)
    if key not in memo:
        memo[key] = {}  # a recursion through itself adds nothing
        fn = methods[name]
        code = None if fn is None else getattr(fn, "__code__", None)
        if fn is None:
            memo[key] = {}
        elif code is None:
            memo[key] = EVERYTHING
        else:
            memo[key] = _code_reach(code, module, methods, lambda n: _method_reach(module, n, methods, memo),
                                    lambda sub, n: _method_reach(sub, n, _methods(type(sub)), memo))
    return memo[key]


def _code_reach(code, module, methods, reach, reach_in, me=None):
    """What a method's code (or a function nested in it, where `self` is a free variable
    named `me`) may reach through `self`."""
    if "super" in code.co_names:
        return EVERYTHING
    if me is None:
        if not code.co_argcount:
            return {}  # a static method: no `self`
        me = code.co_varnames[0]
    loads = {"LOAD_FAST", "LOAD_DEREF"}
    reached = {}
    instructions = list(dis.get_instructions(code))
    for i, inst in enumerate(instructions):
        if inst.opname not in loads or inst.argval != me:
            continue
        chain, j = [], i + 1
        while j < len(instructions) and instructions[j].opname in _CHAIN_OPS:
            chain.append(instructions[j].argval)
            j += 1
        called = _is_call(instructions, i, j)
        after = instructions[j] if j < len(instructions) else None
        if not chain and after is not None and after.opname in ("STORE_ATTR", "DELETE_ATTR"):
            if after.argval in module._modules:
                return EVERYTHING  # replaces a submodule
            continue  # sets a plain attribute or parameter
        if chain and _compared_with_none(instructions, j):
            continue  # `self.head is None`: nothing is called
        if not chain:
            if called:
                continue  # self(...): through forward
            return EVERYTHING  # self given away
        if chain[0] in _GENERIC:
            return EVERYTHING
        if chain[0] in methods:
            more = reach(chain[0])
        elif chain[0] in module._modules:
            more = _chain_reach(module, chain, called, reach_in)
        elif _holds_modules(module.__dict__.get(chain[0])):
            return EVERYTHING  # modules kept outside the registry
        else:
            continue
        if _merge(reached, more) is EVERYTHING:
            return EVERYTHING
    for nested in code.co_consts:
        if isinstance(nested, types.CodeType) and me in nested.co_freevars:
            if _merge(reached, _code_reach(nested, module, methods, reach, reach_in, me)) is EVERYTHING:
                return EVERYTHING
    return reached


def _chain_reach(module, chain, called, reach_in):
    """What `self.a.b...` reaches: the submodule it leads to as a whole when called, the
    submodule's own method's reach when a method of its class is called, else everything
    inside the submodule."""
    target, i = module, 0
    while i < len(chain) and isinstance(target._modules.get(chain[i]), nn.Module):
        target, i = target._modules[chain[i]], i + 1
    path = tuple(chain[:i])
    if i == len(chain):
        return {path: "call" if called else "inside"}
    if called and i == len(chain) - 1 and chain[i] in _methods(type(target)):
        inner = reach_in(target, chain[i])
        if inner is EVERYTHING:
            return {path: "inside"}
        return {path + key: how for key, how in inner.items()}
    return {path: "inside"}


def _merge(reached, more):
    if more is EVERYTHING:
        return EVERYTHING
    for key, how in more.items():
        if reached.get(key) != "inside":
            reached[key] = how
    return reached


def _compared_with_none(instructions, end):
    following = instructions[end:end + 2]
    if following and ("IF_NONE" in following[0].opname or "IF_NOT_NONE" in following[0].opname):
        return True
    return (len(following) == 2 and following[0].opname == "LOAD_CONST" and following[0].argval is None
            and following[1].opname == "IS_OP")


_SIMPLE_LOADS = {"LOAD_FAST", "LOAD_CONST", "LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME", "KW_NAMES"}


def _is_call(instructions, first, end):
    """Whether the value loaded by instructions[first:end] (self, or self.a.b) is what the
    code then calls: `self.a.b(...)` compiles to a method load; `self(...)` to PUSH_NULL,
    self, simple argument loads, the call."""
    if end > first + 1:
        last = instructions[end - 1]
        return last.opname == "LOAD_METHOD" or (last.opname == "LOAD_ATTR" and last.argrepr.startswith("NULL|self"))
    if not first or instructions[first - 1].opname != "PUSH_NULL":
        return False
    for inst in instructions[end:]:
        if inst.opname in ("PRECALL", "CALL"):
            return True
        if inst.opname not in _SIMPLE_LOADS:
            return False
    return False


def _holds_modules(value, depth=0):
    if isinstance(value, nn.Module):
        return True
    if depth < 3 and isinstance(value, (list, tuple, set)):
        return any(_holds_modules(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return any(_holds_modules(v, depth + 1) for v in value.values())
    return False
