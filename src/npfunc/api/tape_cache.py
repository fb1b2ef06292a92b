"""Compiled backward passes for eager ``jacrev``, keyed by the tape's structure.

An eager ``jacrev(f)(x)`` runs ``f`` under a reverse level, which records a
tape, then pulls every output direction back through it at once (a vmap of
the pull-back over a structured basis): on small problems that second half
is most of the cost, and it is Python's, not NumPy's.

Which NumPy operations the pull-back performs is decided by the tape's
*structure* alone: the primitives, their parameters, how they are linked,
and the types, shapes and dtypes of the values (Python scalars: their
values).  So each ``jacrev`` function remembers the structures it has met.
When one comes back often enough to pay for it (once its eager pull-backs
have taken as long as compiling takes), its pull-back is recorded once by
the staging interpreter, cleaned up by the compiler's exact passes (the
values stay the eager ones bit for bit: no reassociation) and generated as
one Python function; from then on that function runs on the tape's values.

``f`` itself still runs eagerly on every call, under the same reverse level
as without the cache: its side effects, Python control flow, conversions and
errors are the eager ones.  A call whose tape differs in any way (another
branch taken, another shape, another scalar) has another key and runs the
eager pull-back.  Tapes this module does not key are simply left to the
eager pull-back: primitives with custom rules (their backward code is the
user's), multiple outputs, unhashable parameters.

>>> import numpy as np, npfunc
>>> J = npfunc.jacrev(np.tanh)
>>> x = np.array([0.5, -1.0])
>>> first = J(x)                    # eager
>>> for _ in range(2000):           # eager until they have taken COMPILE_AFTER_SECONDS, then compiled
...     later = J(x)
>>> bool(np.array_equal(first, later)), J._tape_cache.compiles
(True, 1)
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from ..core.primitive import Primitive

#: Off: every call pulls back eagerly (for comparisons; the results are the same).
ENABLED = True
#: The compiler passes whose results equal the eager values bit for bit (not
#: ``simplify``, ``contract``, nor the generated code's buffer reuse: they change the
#: memory layout or order of some sums, and so their last bits).
EXACT_PASSES = ("fold", "cse", "dce")
#: A structure is compiled once the eager pull-backs of its tapes have taken this
#: long (seconds), as much as compiling takes: a function called a few times
#: never pays for a compilation, and one called often spends at most about
#: twice the best possible time before it runs compiled (a ski-rental rule).
COMPILE_AFTER_SECONDS = 0.004
#: Structures kept per function; beyond this the oldest is dropped.
MAX_ENTRIES = 16
#: A function that met this many tape structures without one compiled run stops
#: keying them (its Python control flow follows the data).
GIVE_UP_AFTER = 64

_NOT_KEYABLE = object()
_ABSENT = object()


def _freeze(value):
    """A hashable stand-in for a parameter value (``_NOT_KEYABLE`` if there is none)."""
    tv = type(value)
    if tv is int or tv is bool or tv is str or value is None or value is Ellipsis:
        return tv, value
    if tv is float:
        return float, value.hex()  # keeps -0.0 apart from 0.0, and NaN equal to itself
    if tv is tuple or tv is list:
        parts = tuple(_freeze(v) for v in value)
        return _NOT_KEYABLE if _NOT_KEYABLE in parts else (tv, parts)
    if tv is slice:
        parts = (_freeze(value.start), _freeze(value.stop), _freeze(value.step))
        return _NOT_KEYABLE if _NOT_KEYABLE in parts else (slice, parts)
    if tv is np.dtype or isinstance(value, np.dtype):
        return np.dtype, value
    if tv is np.ndarray:
        if value.dtype.kind not in "biu" or value.size > 64:  # small integer index arrays only
            return _NOT_KEYABLE
        return np.ndarray, value.shape, value.dtype, value.tobytes()
    if isinstance(value, np.generic):
        return tv, value.tobytes()
    if tv is complex:
        return complex, value.real.hex(), value.imag.hex()
    if callable(value) and not isinstance(value, (type, np.ufunc)):
        # a user's function (an ODE right-hand side, a vectorized body): the same object
        # may compute differently later (a closure over mutable state), so no key
        return _NOT_KEYABLE
    try:
        hash(value)
    except TypeError:
        return _NOT_KEYABLE
    return tv, value


#: Frozen parameters by the identity of their dict (primitives' parameters are never
#: changed once applied; the dict is held, so its id stays its own).
_FROZEN_PARAMS: dict = {}

_PLAIN_PARAMS = frozenset({int, bool, str, type(None)})  # (keyed with their type: 1 is not True)


def _freeze_params(params: dict):
    out = []
    for name, value in params.items():
        tv = type(value)
        if tv in _PLAIN_PARAMS:  # the common parameters, as they are (equal means the same here)
            out.append((name, tv, value))
            continue
        if tv is tuple:  # axes, shapes, permutations
            for v in value:
                if type(v) is not int:
                    break
            else:
                out.append((name, tuple, value))
                continue
        frozen = _freeze(value)
        if frozen is _NOT_KEYABLE:
            return _NOT_KEYABLE
        out.append((name, frozen))
    return tuple(out)


class Tape:
    """A tape read for the cache: its ``key``, the ``values`` a compiled
    pull-back takes (arrays and NumPy scalars, each object once), and its
    ``nodes`` in creation order (``out_slot``, ``in_slot``: their positions)."""

    __slots__ = ("key", "values", "nodes", "out_slot", "in_slot", "extra")

    def __init__(self, key, values, nodes, out_slot, in_slot) -> None:
        self.key = key
        self.values = values
        self.nodes = nodes
        self.out_slot = out_slot
        self.in_slot = in_slot
        self.extra: tuple = ()  # positions in values of further inputs (a jvp's tangent)

    def add_input(self, value: np.ndarray) -> None:
        """A further array the pull-back takes (keyed by its type, shape and dtype)."""
        for k, v in enumerate(self.values):  # the same object is one value, as in the recording
            if v is value:
                break
        else:
            k = len(self.values)
            self.values.append(value)
        self.extra += (k,)
        self.key += (("input", type(value), value.shape, value.dtype, k),)


_SCALAR_TYPES = frozenset({float, int, bool, complex, type(None)})


def reachable(roots) -> list:
    """The tape's nodes that ``roots`` depend on, oldest first."""
    found = {}
    stack = list(roots)
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        seq = node[0]
        if seq not in found:
            found[seq] = node
            for link in node[5]:
                push(link[1])
    return [found[seq] for seq in sorted(found)]


def read_tape(out_node, in_node) -> Tape | None:
    """The tape from ``in_node`` to ``out_node`` (only the nodes the output
    depends on), or None when it cannot be keyed.

    The values are the nodes' outputs and the constant arrays and NumPy scalars
    they read, each object once (the recording, and so the compiled program,
    takes one object once).  (This runs on every call of a cached transform:
    it is written for speed, the common nodes first.)"""
    nodes = reachable((out_node,))
    local = {}  # seq -> position of the node
    values: list = []
    push = values.append
    slot_of: dict = {}  # id -> position in values
    key = []
    append = key.append
    for node in nodes:
        seq, prim, params, primals, out, parents, needs = node
        tout = type(out)
        k = slot_of.get(id(out))
        if k is None:
            k = slot_of[id(out)] = len(values)
            push(out)
        if tout is np.float64:  # (its shape and dtype are its type's)
            out_desc = (tout, k)
        elif tout is np.ndarray or isinstance(out, np.generic):
            out_desc = (tout, out.shape, out.dtype, k)
        else:
            return None
        local[seq] = len(key)
        if prim is None:  # the input, or a constant lifted onto the tape by an in-place write
            append((node is in_node, out_desc))
            continue
        if type(prim) is not Primitive or prim.multiple_results:
            return None
        if params:
            seen = _FROZEN_PARAMS.get(id(params))
            if seen is not None and seen[0] is params:  # parameters made once (x[k]'s), frozen once
                frozen = seen[1]
            else:
                frozen = _freeze_params(params)
                if frozen is _NOT_KEYABLE:
                    return None
                if len(_FROZEN_PARAMS) > 4096:
                    _FROZEN_PARAMS.clear()
                _FROZEN_PARAMS[id(params)] = (params, frozen)  # (holding params keeps its id its own)
        else:
            frozen = ()
        args = []
        linked = 0
        n_parents = len(parents)
        i = 0
        for v in primals:
            if linked < n_parents and parents[linked][0] == i:
                _, parent, index = parents[linked]
                linked += 1
                if index is not None or v is not parent[4]:
                    return None
                args.append(local[parent[0]])
            else:
                tv = type(v)
                if tv is float or tv is int:
                    args.append((tv, v.hex() if tv is float else v))  # (as _freeze keys them)
                elif tv is np.ndarray or isinstance(v, np.generic):
                    k = slot_of.get(id(v))
                    if k is None:
                        k = slot_of[id(v)] = len(values)
                        push(v)
                    args.append((tv, v.shape, v.dtype, k))
                elif tv in _SCALAR_TYPES:
                    args.append(("scalar", _freeze(v)))
                else:  # (a traced value of an outer level cannot be here: the cache runs at top level)
                    return None
            i += 1
        if linked != n_parents:
            return None
        append((prim, frozen, tuple(args), needs if type(needs) is tuple else tuple(needs), out_desc))
    in_slot = local.get(in_node[0])
    if in_slot is None:  # the output does not depend on the input
        return None
    return Tape(tuple(key), values, nodes, local[out_node[0]], in_slot)


def rebuild(tape: Tape, values) -> tuple:
    """Nodes like the tape's, over ``values`` (staged, when compiling):
    ``(out_node, in_node)``."""
    rebuilt = []
    for k, (node, entry) in enumerate(zip(tape.nodes, tape.key)):
        out = values[entry[-1][-1]]
        if node[1] is None:  # an input or lifted constant
            rebuilt.append((k, None, None, (), out, (), ()))
            continue
        _, prim, params, primals, _, _, needs = node
        new_primals, parents = [], []
        for i, (arg, original) in enumerate(zip(entry[2], primals)):
            if type(arg) is int:  # another node's output
                parent = rebuilt[arg]
                new_primals.append(parent[4])
                parents.append((i, parent, None))
            elif len(arg) == 4:  # an array or NumPy scalar: a value
                new_primals.append(values[arg[3]])
            else:  # a Python scalar, keyed by its value
                new_primals.append(original)
        rebuilt.append((k, prim, params, tuple(new_primals), out, tuple(parents), needs))
    return rebuilt[tape.out_slot], rebuilt[tape.in_slot]


class Compiled:
    __slots__ = ("fn", "single")

    def __init__(self, fn, single: bool) -> None:
        self.fn = fn
        self.single = single  # one output (else a tuple of them)


class TapeCache:
    """The pull-backs one ``jacrev`` function compiled, by tape structure."""

    __slots__ = ("entries", "misses", "hits", "compiles", "structures", "active", "called")

    def __init__(self) -> None:
        self.entries: dict = {}  # key -> eager seconds spent (float), Compiled, or None (not compilable)
        self.misses = 0
        self.hits = 0
        self.compiles = 0
        self.structures = 0  # tape structures met
        self.active = True
        self.called = False

    def deactivate(self) -> None:
        """Take no more tapes: the function runs the plain composition from now on."""
        self.active = False
        self.entries.clear()

    def warm(self) -> bool:
        """Whether the function was called before: a function transformed and called
        once (``jvp(grad(f), ...)`` written inline) runs the plain composition, whose
        cost a tape read from scratch would only add to."""
        if self.called:
            return self.active
        self.called = True
        return False

    def pull_back(self, tape: Tape, eager, compile_):
        """The result for ``tape``: the compiled pull-back when there is one,
        else ``eager()`` (compiling the structure once its eager pull-backs have
        taken ``COMPILE_AFTER_SECONDS``, from its second appearance on)."""
        if not ENABLED:
            return eager()
        entries = self.entries
        key = tape.key
        entry = entries.get(key, _ABSENT)
        if entry is not _ABSENT:
            if type(entry) is Compiled:
                self.hits += 1
                outs = entry.fn(*tape.values)
                return outs[0] if entry.single else outs
            if entry is None:  # it failed to compile: eager for good
                return eager()
            spent = entry
        else:
            spent = None
            self.structures += 1
            if self.structures > GIVE_UP_AFTER and not self.hits:
                self.active = False
                entries.clear()
                return eager()
        self.misses += 1
        start = time.perf_counter()
        result = eager()
        if spent is None or spent + time.perf_counter() - start < COMPILE_AFTER_SECONDS:
            entries[key] = (spent or 0.0) + time.perf_counter() - start  # eager time spent on it
            if spent is None and len(entries) > MAX_ENTRIES:
                entries.pop(next(iter(entries), None), None)
            return result
        try:  # this call's value is the eager one; later calls run the program
            with np.errstate(all="ignore"):  # (the eager call has just warned about these values)
                entries[key] = compile_(tape)
            self.compiles += 1
        except Exception:  # a rule that needs concrete values: this structure stays eager
            entries[key] = None
        return result


def compile_pull_back(tape: Tape, pull_back, transform: str):
    """``pull_back(out_node, in_node)`` over the tape's values, recorded,
    optimised with the exact passes and generated as a Python function."""
    from ..compiler import generate, optimize
    from ..compiler.trace import record

    def run(leaves):
        out_node, in_node = rebuild(tape, leaves)
        return pull_back(out_node, in_node, *[leaves[k] for k in tape.extra])

    names = [f"tape value {k}" for k in range(len(tape.values))]
    # (the pull-back runs only npfunc's rules: no random draw to watch for, and the
    # watch would visit every object of the process)
    rec = record(run, list(tape.values), names, transform=transform, watch_random=False)
    if not rec.cacheable or rec.mutated:
        raise ValueError("not a pure function of the tape's values")
    program = optimize(rec.program, EXACT_PASSES)
    fn = generate(program, name=f"{transform}_pull_back", fresh=rec.fresh, reuse_min_size=None).fn
    return Compiled(fn, rec.n_out == 1 and rec.out_spec.num_leaves == 1 and rec.out_spec.num_nodes == 1)


_GRAD_CACHES: dict = {"jvp": weakref.WeakKeyDictionary(), "grad": weakref.WeakKeyDictionary()}


def grad_cache(grad_fn, outer: str = "jvp") -> TapeCache:
    """The cache of ``jvp(grad_fn, ...)`` (``outer="grad"``: of ``grad(grad_fn)``)
    for a ``grad`` function, made on its first such use: ``grad(f)`` itself,
    often made per call, pays nothing for it."""
    caches = _GRAD_CACHES[outer]
    cache = caches.get(grad_fn)
    if cache is None:
        cache = caches[grad_fn] = TapeCache()
    return cache


def cacheable_input(x) -> bool:
    """Inputs the cache takes: a non-empty real floating ndarray (not traced, not a subclass)."""
    return type(x) is np.ndarray and x.dtype.kind == "f" and x.size > 0
