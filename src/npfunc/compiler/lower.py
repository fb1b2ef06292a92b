"""Lowering: rewrites for the generated code only.

The optimised program is also what ``jit`` replays under a transform, so it
must stay made of registered primitives with their rules.  The rewrites here
use operations that have no derivative or batching rule and are applied
only to the program that becomes code:

* ``merge_matvecs``: several products ``M @ v_k`` of one large matrix with
  vectors become one product ``stack(v) @ M.T`` -- one pass over ``M``
  instead of one per vector (a forward-over-reverse Hessian-vector product
  multiplies by ``A`` twice and by ``A.T`` twice).  Like ``contract``, this
  changes the order of additions (last-bit differences).

>>> import numpy as np
>>> from npfunc.compiler import trace_program
>>> A = np.ones((300, 300))
>>> p = merge_matvecs(trace_program(lambda x, y: (A @ x, A @ y), np.ones(300), np.ones(300)))
>>> [e.prim.name for e in p.eqns]
['stacked_matvec']
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Primitive
from .program import Eqn, Program, Var

__all__ = ["merge_matvecs", "lower", "MATVEC_MIN_SIZE"]

#: Smallest matrix (in elements) for which one stacked product beats separate ones.
MATVEC_MIN_SIZE = 1 << 16


def _stacked_matvec(matrix, *vectors):
    rows = np.stack(vectors) @ matrix.T
    return tuple(rows)


_STACKED = Primitive("stacked_matvec", _stacked_matvec, differentiable=False, multiple_results=True,
                     register=False, notes="codegen only: M @ v_k for several v_k at once")


def _matrix_key(atom):
    return ("var", atom) if type(atom) is Var else ("const", id(atom.value))


def merge_matvecs(program: Program, min_size: int = MATVEC_MIN_SIZE) -> Program:
    """The program with products of one large matrix with several vectors merged."""
    groups: dict = {}
    for k, eqn in enumerate(program.eqns):
        if eqn.prim.name != "matmul" or eqn.params or len(eqn.inputs) != 2:
            continue
        m, v = eqn.inputs
        shape = m.shape if type(m) is Var else np.shape(m.value)
        if len(shape) != 2 or shape[0] * shape[1] < min_size or type(v) is not Var or len(v.shape) != 1:
            continue
        dtype = m.dtype if type(m) is Var else np.asarray(m.value).dtype
        if dtype != v.dtype or eqn.outs[0].dtype != dtype:
            continue
        groups.setdefault(_matrix_key(m), []).append(k)
    first_use: dict = {}
    for k, eqn in enumerate(program.eqns):
        for i in eqn.inputs:
            if type(i) is Var and i not in first_use:
                first_use[i] = k
    for o in program.outputs:
        if type(o) is Var:
            first_use.setdefault(o, len(program.eqns))
    place: dict = {}   # index of the merged equation -> indices it replaces
    dropped = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        # members may move to the last one if nothing reads their results before it
        at = members[-1]
        merged = [k for k in members[:-1] if first_use.get(program.eqns[k].outs[0], at + 1) > at] + [at]
        if len(merged) > 1:
            place[at] = merged
            dropped.update(merged[:-1])
    if not place:
        return program
    eqns = []
    for k, eqn in enumerate(program.eqns):
        if k in dropped:
            continue
        if k in place:
            members = [program.eqns[j] for j in place[k]]
            matrix = eqn.inputs[0]
            eqn = Eqn(_STACKED, [matrix] + [e.inputs[1] for e in members], {},
                      [e.outs[0] for e in members])
        eqns.append(eqn)
    return program.replace(eqns)


def lower(program: Program) -> Program:
    """The codegen-only rewrites, in order."""
    return merge_matvecs(program)
