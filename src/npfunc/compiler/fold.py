"""Constant folding: compute once, when compiling, whatever does not depend
on the inputs' values.

An equation whose inputs are all constants is evaluated now and its outputs
become constants.  So is one that reads a variable only for its shape and
dtype (``ones_like``, ``zeros_like``): reverse mode seeds its backward pass
with ``ones_like(output)``, which is the same array on every call.  (Most
constant work never reaches the program: while tracing, a primitive applied
to constants alone runs at once.  Folding catches what other passes expose.)

Folded arrays are shared between calls: the compiled code never writes into
a constant, and returns a copy of a constant output.  A folded view that
would be strided (a transposed constant) is stored contiguous, which BLAS
and ufuncs read faster; broadcast views stay views.

>>> import numpy as np, npfunc
>>> from npfunc.primitives.elementwise.arithmetic import ones_like
>>> print(npfunc.make_graph(lambda x: x * ones_like(x).sum(), passes=["fold"])(np.ones(2)).optimized)
{ lambda a:f64[2] .
    b:f64[2] = multiply a 2.0
  in (b) }
"""
from __future__ import annotations

import numpy as np

from .program import Const, Program, Var, substitute

__all__ = ["fold", "SHAPE_ONLY"]

#: Primitives whose result is laid out the same whatever their inputs' layouts.
_LAYOUT_BLIND = frozenset({"matmul"})

#: Primitives whose result depends on their input's shape and dtype only.
SHAPE_ONLY = frozenset({"ones_like", "zeros_like"})


def fold(program: Program) -> Program:
    """The program with input-independent equations evaluated (see module doc)."""
    mapping: dict = {}
    kept = []
    outputs = {o for o in program.outputs if type(o) is Var}
    consumers: dict = {}
    for eqn in program.eqns:
        for i in eqn.inputs:
            if type(i) is Var:
                consumers.setdefault(i, set()).add(eqn.prim.name)
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
            if type(value) is np.ndarray and value.ndim > 1 and not value.flags.c_contiguous and \
                    0 not in value.strides and var not in outputs and (
                        not value.flags.f_contiguous or consumers.get(var, set()) <= _LAYOUT_BLIND):
                # a transposed or strided view: BLAS and ufuncs want it contiguous; but a dense one
                # read by an elementwise operation decides the layout of its result, as an output's
                # is NumPy's: those keep theirs
                value = np.ascontiguousarray(value)
            mapping[var] = Const(value)
    if not mapping:
        return program
    return substitute(program.replace(kept), mapping)
