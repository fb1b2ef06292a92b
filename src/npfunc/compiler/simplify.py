"""Algebraic simplification: rewrites that give bit-for-bit the same values.

Each rule looks at one equation (and the equations that produced its
inputs) and either replaces its output by an existing value or by a cheaper
equation.  Only identities that hold exactly in IEEE arithmetic, NaN and
the sign of zero included, are used:

* ``x * 1``, ``1 * x``, ``x / 1`` are ``x``; ``x * -1`` is ``-x``; ``x + (-0.0)``, ``x - 0.0`` are
  ``x`` (and ``x + 0``, ``x - 0`` for integers, and ``x * 0`` is ``0``).
  Not ``x + 0.0`` (``-0.0 + 0.0`` is ``+0.0``) and not a float ``x * 0``
  (``inf * 0`` is NaN): those stay.
* ``-(-x)`` is ``x``; ``a + (-b)`` is ``a - b``; ``a - (-b)`` is ``a + b``;
  ``sum(-x)`` is ``-sum(x)`` (the negation moves to the smaller array).
* transposes compose, reshapes and broadcasts chain into one, and one that
  keeps the shape is dropped; ``astype`` to the same dtype is dropped.
* an explicit ``broadcast_to`` feeding an elementwise operation that would
  broadcast anyway is dropped.
* products with a unit basis (an identity-matrix constant, what a dense
  standard basis becomes) are the other factor, and with a diagonal constant
  they are scaled rows or columns -- as ``interpreters/structured.py`` does
  for ``OneHot`` bases eagerly (like eager npfunc, this skips ``0 * inf``).

>>> import numpy as np, npfunc
>>> g = npfunc.make_graph(lambda x: -(-(x.T.T * 1.0)), passes=["simplify", "dce"])
>>> print(g(np.ones((2, 3))).optimized)
{ lambda a:f64[2,3] .
  in (a) }
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import REGISTRY
from .program import Const, Eqn, Program, Var, substitute, use_counts

__all__ = ["simplify", "RULES"]


# ---- facts about constants (cached per array object while a pass runs) --------------------

class _Facts:
    def __init__(self) -> None:
        self.cache: dict = {}

    def _get(self, value, what, compute):
        key = (id(value), what)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = (compute(value), value)  # keep value alive: ids stay unique
        return hit[0]

    def all_equal(self, atom, number) -> bool:
        """A constant whose every entry is exactly ``number`` (sign of zero included)."""
        if type(atom) is not Const:
            return False
        v = atom.value
        if not isinstance(v, (np.ndarray, np.generic, int, float)) or isinstance(v, (bool, np.bool_)) \
                or (isinstance(v, np.ndarray) and v.dtype == bool):
            return False

        def check(v):
            a = np.asarray(v)
            if a.dtype.kind not in "iuf" or a.size == 0:
                return False
            if not np.all(a == number):
                return False
            return a.dtype.kind != "f" or bool(np.all(np.signbit(a) == np.signbit(number)))

        return self._get(v, ("eq", float(number), bool(np.signbit(number))), check)

    def diagonal(self, atom):
        """For a square 2-D constant that is diagonal: (its diagonal, is it all ones); else None."""
        if type(atom) is not Const:
            return None
        v = atom.value
        if not (isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == v.shape[1] and
                v.dtype.kind in "fiu" and v.shape[0] > 1):
            return None

        def check(v):
            d = np.diagonal(v)
            if np.count_nonzero(v) != np.count_nonzero(d):
                return None
            return d.copy(), bool(np.all(d == 1))

        return self._get(v, "diag", check)


def _real(*atoms) -> bool:
    return all((a.dtype.kind in "biuf") if type(a) is Var else
               np.asarray(a.value).dtype.kind in "biuf" for a in atoms)


def _same(var: Var, out: Var) -> bool:
    return var.shape == out.shape and var.dtype == out.dtype


def _keeps(x, out) -> bool:
    """True if ``op(x, constant)`` can be ``x`` itself: same shape and dtype, real
    (for complex ``x``, ``x * 1`` computes ``inf * 0`` in the imaginary part)."""
    return type(x) is Var and _same(x, out) and _real(x)


# ---- rules: (eqn, inputs, ctx) -> None | atom | list of replacement equations ------------------

def _multiply(eqn, ins, ctx):
    a, b = ins
    out = eqn.outs[0]
    if ctx.facts.all_equal(b, 1) and _keeps(a, out):
        return a
    if ctx.facts.all_equal(a, 1) and _keeps(b, out):
        return b
    for x, c in ((a, b), (b, a)):  # x * -1 is -x, bit for bit
        if ctx.facts.all_equal(c, -1) and _keeps(x, out):
            return [Eqn(REGISTRY["negative"], [x], {}, eqn.outs)]
    for x, c in ((a, b), (b, a)):  # integers have no inf or NaN: x * 0 is 0
        if type(x) is Var and x.dtype.kind in "iu" and out.dtype.kind in "iu" and ctx.facts.all_equal(c, 0):
            return Const(np.zeros(out.shape, out.dtype))
    na, nb = ctx.negated(a), ctx.negated(b)
    if na is not None and nb is not None:  # (-a)(-b) = ab exactly
        return [Eqn(eqn.prim, [na, nb], eqn.params, eqn.outs)]
    return _unbroadcast(eqn, ins, ctx)


def _divide(eqn, ins, ctx):
    a, b = ins
    if ctx.facts.all_equal(b, 1) and _keeps(a, eqn.outs[0]):
        return a
    return _unbroadcast(eqn, ins, ctx)


def _zero_for(x: Var, negative: bool) -> float:
    return (-0.0 if negative else 0.0) if x.dtype.kind in "fc" else 0


def _add(eqn, ins, ctx):
    a, b = ins
    out = eqn.outs[0]
    for x, c in ((a, b), (b, a)):
        if type(x) is Var and _same(x, out) and x.dtype.kind in "iuf" and \
                ctx.facts.all_equal(c, _zero_for(x, negative=True)):
            return x
    nb = ctx.negated(b)
    if nb is not None:
        return [Eqn(REGISTRY["subtract"], [a, nb], {}, eqn.outs)]
    na = ctx.negated(a)
    if na is not None:
        return [Eqn(REGISTRY["subtract"], [b, na], {}, eqn.outs)]
    return _unbroadcast(eqn, ins, ctx)


def _subtract(eqn, ins, ctx):
    a, b = ins
    out = eqn.outs[0]
    if type(a) is Var and _same(a, out) and a.dtype.kind in "iuf" and \
            ctx.facts.all_equal(b, _zero_for(a, negative=False)):
        return a
    nb = ctx.negated(b)
    if nb is not None:
        return [Eqn(REGISTRY["add"], [a, nb], {}, eqn.outs)]
    return _unbroadcast(eqn, ins, ctx)


def _negative(eqn, ins, ctx):
    inner = ctx.negated(ins[0])
    if inner is not None and _same(inner, eqn.outs[0]):
        return inner
    return None


def _reduce_sum(eqn, ins, ctx):
    """sum(-x) is -sum(x) bit for bit (same order of additions, rounding symmetric in sign):
    negate the smaller array when the negation has no other reader."""
    inner = ctx.negated(ins[0])
    if inner is None or ctx.uses.get(ins[0], 0) != 1:
        return None
    out = eqn.outs[0]
    mid = Var(out.shape, out.dtype, out.src)
    return [Eqn(eqn.prim, [inner], eqn.params, [mid]), Eqn(REGISTRY["negative"], [mid], {}, eqn.outs)]


def _transpose(eqn, ins, ctx):
    (x,) = ins
    perm = tuple(eqn.params["perm"])
    src = ctx.producer(x, "transpose")
    if src is not None:
        inner = tuple(src.params["perm"])
        perm = tuple(inner[p] for p in perm)
        x = src.inputs[0]
    if perm == tuple(range(len(perm))) and type(x) is Var:
        return x
    if src is not None:
        return [Eqn(eqn.prim, [x], {"perm": perm}, eqn.outs)]
    return None


def _chain(name, param):
    """reshape / broadcast_to: drop a no-op, and read through one of the same kind."""

    def rule(eqn, ins, ctx):
        (x,) = ins
        out = eqn.outs[0]
        src = ctx.producer(x, name)
        if src is not None:
            x = src.inputs[0]
        if type(x) is Var and _same(x, out):
            return x
        if src is not None:
            return [Eqn(eqn.prim, [x], {param: out.shape}, eqn.outs)]
        return None

    return rule


def _astype(eqn, ins, ctx):
    (x,) = ins
    return x if type(x) is Var and _same(x, eqn.outs[0]) else None


def _unbroadcast(eqn, ins, ctx):
    """Elementwise ops broadcast by themselves: an explicit broadcast_to in front is not needed."""
    if eqn.prim.ufunc is None or eqn.params:
        return None
    out = eqn.outs[0]
    new = list(ins)
    changed = False
    for k, x in enumerate(ins):
        src = ctx.producer(x, "broadcast_to")
        if src is None or type(src.inputs[0]) is not Var:
            continue
        trial = new[:k] + [src.inputs[0]] + new[k + 1:]
        try:
            shape = np.broadcast_shapes(*[a.shape if type(a) is Var else np.shape(a.value) for a in trial])
        except ValueError:
            continue
        if shape == out.shape:
            new, changed = trial, True
    return [Eqn(eqn.prim, new, eqn.params, eqn.outs)] if changed else None


def _matmul(eqn, ins, ctx):
    """Products with identity or diagonal constants (dense unit bases)."""
    a, b = ins
    out = eqn.outs[0]
    for const, other, left in ((a, b, True), (b, a, False)):
        diag = ctx.facts.diagonal(const)
        if diag is None or type(other) is not Var or len(other.shape) < 1:
            continue
        d, unit = diag
        n = d.shape[0]
        if left and (len(other.shape) < 2 or other.shape[-2] != n):
            continue  # I @ v with a 1-D v is a vector: keep (the general rule below is for matrices)
        if not left and other.shape[-1] != n:
            continue
        if unit and _same(other, out):
            return other
        if np.result_type(d.dtype, other.dtype) != out.dtype or out.shape != other.shape:
            continue
        scale = d.reshape((n, 1)) if left else d
        return [Eqn(REGISTRY["multiply"], [Const(scale), other], {}, eqn.outs)]
    return None


RULES = {
    "multiply": _multiply,
    "divide": _divide,
    "add": _add,
    "subtract": _subtract,
    "negative": _negative,
    "transpose": _transpose,
    "reduce_sum": _reduce_sum,
    "reshape": _chain("reshape", "shape"),
    "broadcast_to": _chain("broadcast_to", "shape"),
    "astype": _astype,
    "matmul": _matmul,
}


class _Context:
    def __init__(self, uses: dict) -> None:
        self.producers: dict = {}
        self.facts = _Facts()
        self.uses = uses

    def producer(self, atom, name):
        """The equation of primitive ``name`` that computed ``atom`` (single output), or None."""
        if type(atom) is not Var:
            return None
        eqn = self.producers.get(atom)
        return eqn if eqn is not None and eqn.prim.name == name else None

    def negated(self, atom):
        """``y`` if ``atom`` is ``negative(y)``, else None."""
        eqn = self.producer(atom, "negative")
        return eqn.inputs[0] if eqn is not None else None


def simplify(program: Program, rounds: int = 4) -> Program:
    """The program with the exact algebraic rewrites of the module doc applied."""
    for _ in range(rounds):
        new = _simplify_once(program)
        if new is program:
            break
        program = new
    return program


def _simplify_once(program: Program) -> Program:
    ctx = _Context(use_counts(program))
    mapping: dict = {}
    eqns = []
    changed = False

    def resolve(atom):
        while type(atom) is Var and atom in mapping:
            atom = mapping[atom]
        return atom

    outputs = {o for o in program.outputs if type(o) is Var}
    for eqn in program.eqns:
        ins = [resolve(i) for i in eqn.inputs]
        if any(x is not y for x, y in zip(ins, eqn.inputs)):
            eqn = Eqn(eqn.prim, ins, eqn.params, eqn.outs)
            changed = True
        rule = RULES.get(eqn.prim.name)
        result = rule(eqn, ins, ctx) if rule is not None and len(eqn.outs) == 1 else None
        if result is None:
            eqns.append(eqn)
        elif isinstance(result, list):
            eqns.extend(result)
            changed = True
            eqn = result[-1]
        elif not eqn.outs[0].shape and eqn.outs[0] in outputs:
            # a 0-d result handed out: NumPy's call gives a scalar or an array as it does
            # (a * 1 of a 0-d array is a scalar), which the replacing atom may not be
            eqns.append(eqn)
        else:
            mapping[eqn.outs[0]] = result
            changed = True
            continue
        for o in eqn.outs:
            ctx.producers[o] = eqn
    if not changed:
        return program
    return substitute(program.replace(eqns), mapping)
