"""Constant folding: compute once, when compiling, whatever does not depend
on the inputs' values.

An equation whose inputs are all constants is evaluated now and its outputs
become constants.  So is one that reads a variable only for its shape and
dtype (``ones_like``, ``zeros_like``): reverse mode seeds its backward pass
with ``ones_like(output)``, which is the same array on every call.  (Most
constant work never reaches the program: while tracing, a primitive applied
to constants alone runs at once.  Folding catches what other passes expose.)

Folded arrays are shared between calls: the compiled code never writes into
a constant, and returns a copy of a constant output.  A constant that is a
transposed or strided array is stored contiguous, which BLAS and ufuncs read
faster, unless its layout can show (``_lay_out_constants``); broadcast views
stay views.

>>> import numpy as np, npfunc
>>> from npfunc.primitives.elementwise.arithmetic import ones_like
>>> print(npfunc.make_graph(lambda x: x * ones_like(x).sum(), passes=["fold"])(np.ones(2)).optimized)
{ lambda a:f64[2] .
    b:f64[2] = multiply a 2.0
  in (b) }
"""
from __future__ import annotations

import numpy as np

from .program import Const, Eqn, Program, Var, layout_observed, substitute

__all__ = ["fold", "SHAPE_ONLY"]

#: Primitives whose result depends on their input's shape and dtype only.
SHAPE_ONLY = frozenset({"ones_like", "zeros_like"})


def fold(program: Program) -> Program:
    """The program with input-independent equations evaluated (see module doc)."""
    mapping: dict = {}
    kept = []
    for eqn in program.eqns:
        inputs = [mapping.get(i, i) if type(i) is Var else i for i in eqn.inputs]
        prim = eqn.prim
        if prim.name in SHAPE_ONLY:
            (x,) = inputs
            stand_in = x.value if type(x) is Const else np.zeros(x.shape, x.dtype)
            outs = (prim.impl(stand_in, **eqn.params),)
        elif all(type(i) is Const for i in inputs):
            out = prim.impl(*[i.value for i in inputs], **eqn.params)
            outs = out if prim.multiple_results else (out,)
        else:
            kept.append(eqn)
            continue
        for var, value in zip(eqn.outs, outs):
            mapping[var] = Const(value)
    if mapping:
        program = substitute(program.replace(kept), mapping)
    return _lay_out_constants(program)


def _needs_layout(value) -> bool:
    """A transposed or strided array (not a broadcast view)."""
    return type(value) is np.ndarray and value.ndim > 1 and not value.flags.c_contiguous and \
        0 not in value.strides


def _lay_out_constants(program: Program) -> Program:
    """Transposed and strided constant arrays stored contiguous, which BLAS and
    ufuncs read faster; where the layout of one can show (``layout_observed``:
    NumPy lays an elementwise result out like its inputs, and sums in memory
    order), in its own axis order.  (A product with a transposed matrix and
    with its contiguous copy may differ in the last bits: BLAS sums in another
    order.)"""
    if not any(type(i) is Const and _needs_layout(i.value) for eqn in program.eqns for i in eqn.inputs):
        return program
    observed = layout_observed(program)
    memo: dict = {}

    def laid_out(atom):
        if type(atom) is not Const or not _needs_layout(atom.value):
            return atom
        hit = memo.get(id(atom.value))
        if hit is None:
            value = atom.value
            if id(value) not in observed:
                new = np.ascontiguousarray(value)
            elif not value.flags.f_contiguous:  # strided: dense, in its own axis order
                new = value.copy(order="K")
            else:
                new = value
            hit = memo[id(value)] = (Const(new) if new is not value else atom, value)
        return hit[0]

    eqns = []
    changed = False
    for eqn in program.eqns:
        inputs = [laid_out(i) for i in eqn.inputs]
        if all(a is b for a, b in zip(inputs, eqn.inputs)):
            eqns.append(eqn)
        else:
            eqns.append(Eqn(eqn.prim, inputs, eqn.params, eqn.outs))
            changed = True
    return program.replace(eqns) if changed else program
