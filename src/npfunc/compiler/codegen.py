"""Code generation: a program becomes one Python function of NumPy calls.

The optimised program is written out as source -- one assignment per
equation, local variables for values, constants and callables bound as
globals of the generated function -- and compiled with ``compile``/``exec``.
Calling it costs what the NumPy calls cost plus one Python frame: no
interpreter loop, no dictionary of values, no dispatch.

Most primitives are called through their implementation (``prim.impl``,
often a NumPy ufunc itself).  A few hot ones are written as the ndarray
method or ufunc reduction their implementation calls (``x.reshape(s)``,
``np.add.reduce(x, axes)``, ``x[index]`` for a static index): the same
computation, without a Python-level wrapper around it.  ``+ - * /`` and
unary ``-`` are written as Python operators: the same ufunc on arrays, and
NumPy's scalar fast path on 0-d values (a ufunc call costs several times
more than the arithmetic on a NumPy scalar).

Buffer reuse: an elementwise ufunc whose result has the shape and dtype of
a dead intermediate writes into it (``out=``) instead of allocating (not
0-d results: NumPy returns those as scalars).  A buffer
is reused only when provably safe: it was made by a ufunc (so it owns its
memory), neither it nor any value that may be a view of it is read later
or returned.

>>> import numpy as np
>>> from npfunc.compiler import trace_program, generate
>>> program = trace_program(lambda x: np.tanh(x).sum(), np.ones(3))
>>> print(generate(program).source)
def program(a):
    b = _tanh(a)
    c = _add_reduce(b, (0,), None, None, False)
    return c,
<BLANKLINE>
"""
from __future__ import annotations

import keyword
import math

import numpy as np

from .program import Const, Program, Var, _letters

__all__ = ["generate", "Generated", "REUSE_MIN_SIZE"]

#: Smallest result (in elements) written into a dead buffer.  Measured (docs/performance.md):
#: reuse pays at every size from 8 elements on (fewer allocations, warm cache lines).
REUSE_MIN_SIZE = 1

_LITERALS = (bool, int, str, type(None))


class Generated:
    """A compiled program: ``fn(*inputs)`` returns the tuple of outputs; ``source`` is its code."""

    __slots__ = ("fn", "source", "reused")

    def __init__(self, fn, source: str, reused: int) -> None:
        self.fn = fn
        self.source = source
        self.reused = reused

    def __repr__(self) -> str:
        return f"<Generated program, {self.source.count(chr(10))} lines>"


class _Namespace:
    """Names of the generated function's globals (values bound by identity)."""

    def __init__(self) -> None:
        self.globals: dict = {"np": np}
        self.by_id: dict = {}

    def bind(self, value, hint: str) -> str:
        key = id(value)
        hit = self.by_id.get(key)
        if hit is not None:
            return hit[0]
        # globals start with "_": never a generated variable name (letters only)
        hint = "_" + "".join(c if c.isalnum() else "_" for c in hint)
        name = hint if hint not in self.globals else f"{hint}_{len(self.globals)}"
        self.globals[name] = value
        self.by_id[key] = (name, value)  # keep value alive: ids stay unique
        return name

    def literal(self, value, hint: str = "k") -> str:
        """Source text for a parameter or scalar constant: a literal when exact, else a global."""
        t = type(value)
        if t in _LITERALS:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)  # repr round-trips exactly, -0.0 included
        if (t is tuple or t is list) and all(type(v) in _LITERALS for v in value):
            return repr(value)
        return self.bind(value, hint)


def _reduction(ufunc):
    reduce = ufunc.reduce  # one bound method, so every use shares one global

    def lower(ns, args, params, out):
        fn = ns.bind(reduce, f"{ufunc.__name__}_reduce")
        return f"{fn}({args[0]}, {ns.literal(tuple(params['axes']))}, None, None, {params['keepdims']!r})"

    return lower


def _method(name, param):
    def lower(ns, args, params, out):
        return f"{args[0]}.{name}({ns.literal(tuple(params[param]))})"

    return lower


def _extremum_weights(x, extremum, axes):
    """``extremum_weights``' implementation without ``np.errstate`` (which costs more
    than the arithmetic on small arrays) in the usual case, where every slice has a hit."""
    hits = (x == extremum).astype(x.dtype)
    count = np.add.reduce(hits, axis=axes, keepdims=True)
    if count.all():
        return hits / count
    with np.errstate(invalid="ignore", divide="ignore"):  # a NaN slice: nothing equals its max
        return hits / count


def _static_index(params):
    """The index tuple of a gather/scatter whose index has no arrays, else None."""
    from ..primitives.indexing.gather import _build

    spec = params["spec"]
    return None if any(c[0] == "a" for c in spec) else _build(spec, ())


def _gather(ns, args, params, out):
    index = _static_index(params) if len(args) == 1 else None
    if index is None:
        return None
    return f"{args[0]}[{ns.bind(index, 'index')}]"


def _scatter_into_zeros(g, index, shape, dtype):
    out = np.zeros(shape, dtype=dtype)
    out[index] = g  # basic indexing never repeats an element
    return out


def _scatter_add(ns, args, params, out):
    index = _static_index(params) if len(args) == 1 else None
    if index is None:
        return None
    fn = ns.bind(_scatter_into_zeros, "scatter_into_zeros")
    return (f"{fn}({args[0]}, {ns.bind(index, 'index')}, {ns.literal(tuple(params['shape']))}, "
            f"{ns.bind(out.dtype, 'dtype')})")


def _call(fn, name):
    def lower(ns, args, params, out):
        kw = [f"{k}={ns.literal(v)}" for k, v in params.items()]
        return f"{ns.bind(fn, name)}({', '.join(args + kw)})"

    return lower


#: Primitive name -> writer of the expression for it (same computation as ``impl``).
LOWERINGS = {
    "extremum_weights": _call(_extremum_weights, "extremum_weights"),
    "gather": _gather,
    "scatter_add": _scatter_add,
    "reshape": _method("reshape", "shape"),
    "transpose": _method("transpose", "perm"),
    "reduce_sum": _reduction(np.add),
    "reduce_max": _reduction(np.maximum),
    "reduce_min": _reduction(np.minimum),
}


#: Elementwise primitives written as Python operators: the same ufunc for arrays, and
#: NumPy's scalar fast path (several times quicker than a ufunc call) for 0-d values.
OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
#: ``x ** y`` binds ``power`` with these parameters (the ``**`` operator, not ``np.power``).
_AS_OPERATOR = {"as_operator": True}


def _fresh(eqn) -> bool:
    """True if the equation's result is a new array nothing else shares (a ufunc's)."""
    return eqn.prim.ufunc is not None and len(eqn.outs) == 1


def _plan_reuse(program: Program, min_size: int):
    """{eqn index: buffer Var whose memory the result is written into}.

    A *block* is the memory of a ufunc result.  Any other primitive's result
    may be a view of its inputs, so it is counted as a reader of their
    blocks.  A block is free once every value that may read it has been read
    for the last time (and none is returned); NumPy's ufuncs give the same
    result when the output overlaps an input, so the equation that reads a
    block last may write into it."""
    n = len(program.eqns)
    last: dict = {}
    for k, eqn in enumerate(program.eqns):
        for i in eqn.inputs:
            if type(i) is Var:
                last[i] = k
    for o in program.outputs:
        if type(o) is Var:
            last[o] = n  # returned: never free
    roots: dict = {}     # Var -> blocks it may read
    death: dict = {}     # block -> last equation that may read it
    by_key: dict = {}    # (shape, dtype) -> blocks of that layout
    plan = {}
    for k, eqn in enumerate(program.eqns):
        prim = eqn.prim
        out = eqn.outs[0]
        if _fresh(eqn):
            block = out
            ufunc = prim.ufunc
            if ufunc.signature is None and not eqn.params and ufunc.nout == 1 and \
                    len(eqn.inputs) == ufunc.nin:
                for cand in by_key.get((out.shape, out.dtype), ()):
                    if death[cand] <= k:
                        plan[k] = block = cand
                        break
            roots[out] = (block,)
            death[block] = last.get(out, k)
            if block is out and out.shape and math.prod(out.shape) >= min_size:
                by_key.setdefault((out.shape, out.dtype), []).append(out)
        else:
            shared = tuple({r for i in eqn.inputs if type(i) is Var for r in roots.get(i, ())})
            for o in eqn.outs:
                roots[o] = shared
                for r in shared:
                    death[r] = max(death[r], last.get(o, k))
    return plan


def _own(value, *inputs):
    """``value``, copied if it shares memory with one of ``inputs`` (the arguments)."""
    if type(value) is np.ndarray:  # (replayed under a transform, values are traced: nothing to share)
        for a in inputs:
            if type(a) is np.ndarray and np.may_share_memory(value, a):
                return value.copy(order="K")
    return value


def _may_view_inputs(program: Program) -> set:
    """The variables that may be views of an input: the inputs, and the results of
    non-ufunc equations reading such a variable (``x[1:]``, reshapes, transposes)."""
    found = set(program.in_vars)
    for eqn in program.eqns:
        if not _fresh(eqn) and any(type(i) is Var and i in found for i in eqn.inputs):
            found.update(eqn.outs)
    return found


def generate(program: Program, *, reuse_min_size: int | None = -1, name: str = "program",
             fresh: tuple = ()) -> Generated:
    """Compile ``program`` into a Python function (see the module doc).

    ``reuse_min_size``: smallest result written into a dead buffer (default
    ``REUSE_MIN_SIZE``); ``None`` turns buffer reuse off.  ``fresh``: positions
    of outputs that must not share memory with the arguments (NumPy gives new
    arrays there, where the generated code might give a view of an argument)."""
    if reuse_min_size == -1:
        reuse_min_size = REUSE_MIN_SIZE
    ns = _Namespace()
    names: dict = {}

    def var(v: Var) -> str:
        if v not in names:
            text = _letters(len(names))
            names[v] = text + "_" if keyword.iskeyword(text) else text
        return names[v]

    def atom(a) -> str:
        if type(a) is Var:
            return var(a)
        v = a.value
        if type(v) in (int, float, bool) and (type(v) is not float or math.isfinite(v)):
            return repr(v)
        return ns.bind(v, "C")

    plan = _plan_reuse(program, reuse_min_size) if reuse_min_size is not None else {}
    params_in = ", ".join(var(v) for v in program.in_vars)
    lines = [f"def {name}({params_in}):"]
    for k, eqn in enumerate(program.eqns):
        prim = eqn.prim
        args = [atom(i) for i in eqn.inputs]
        lower = LOWERINGS.get(prim.name)
        expr = lower(ns, args, eqn.params, eqn.outs[0]) if lower and not prim.multiple_results else None
        if expr is None and k not in plan and not eqn.params and prim.ufunc is not None and \
                prim.ufunc is getattr(np, prim.name, None):
            if prim.name in OPERATORS and len(args) == 2:
                expr = f"{args[0]} {OPERATORS[prim.name]} {args[1]}"
            elif prim.name == "negative" and len(args) == 1:
                expr = f"-{args[0]}"
        elif expr is None and k not in plan and eqn.params == _AS_OPERATOR and prim.name == "power":
            expr = f"{args[0]} ** {args[1]}"  # what impl computes: scalar math on NumPy scalars
        if expr is None:
            fn = ns.bind(prim.impl if prim.ufunc is None or eqn.params else prim.ufunc, prim.name)
            kw = [f"{key}={ns.literal(value, f'{prim.name}_{key}')}" for key, value in eqn.params.items()]
            if k in plan:
                kw.append(f"out={var(plan[k])}")
            expr = f"{fn}({', '.join(args + kw)})"
        if prim.multiple_results:
            lhs = ", ".join(var(o) for o in eqn.outs) + ("," if len(eqn.outs) == 1 else "")
        else:
            lhs = var(eqn.outs[0])
        state = eqn.outs[0].errstate
        if state is None:
            lines.append(f"    {lhs} = {expr}")
        else:  # the function set np.errstate around this operation (NumPy's warnings as it gave them)
            lines.append(f"    with np.errstate(**{ns.bind(state, 'errstate')}):")
            lines.append(f"        {lhs} = {expr}")
    outs = []
    seen = set(program.in_vars)
    viewing = _may_view_inputs(program) if fresh else ()
    for n, o in enumerate(program.outputs):
        if type(o) is Var:
            # an input returned as it is, or one value returned twice: the caller must get
            # independent arrays, as from the plain function
            if o in seen:
                outs.append(f"{var(o)}.copy(order='K')")
            elif n in fresh and o in viewing:
                outs.append(f"{ns.bind(_own, '_own')}({', '.join([var(o)] + [var(v) for v in program.in_vars])})")
            else:
                outs.append(var(o))
            seen.add(o)
        else:
            text = atom(o)
            outs.append(f"{text}.copy(order='K')" if isinstance(o.value, np.ndarray) else text)
    lines.append(f"    return {', '.join(outs)}{',' if len(outs) == 1 else ''}")
    source = "\n".join(lines) + "\n"
    code = compile(source, f"<npfunc.jit {name}>", "exec")
    exec(code, ns.globals)  # noqa: S102 - our own generated source
    return Generated(ns.globals[name], source, len(plan))
