"""Common-subexpression elimination: one equation per distinct computation.

Two equations are the same computation when they apply the same primitive
with exactly equal parameters (``exact_key``: ``1`` is not ``True``, ``0.0``
is not ``-0.0``) to the same variables and constants.  Constant arrays are
compared by identity, scalars by exact value.  Reverse mode recomputes
values its rules need (``1 / s`` twice, the tie weights of a ``max`` once in
the forward and once in the backward pass): the copies go.

>>> import numpy as np, npfunc
>>> print(npfunc.make_graph(lambda x: np.sin(x) * np.sin(x), passes=["cse"])(np.ones(2)).optimized)
{ lambda a:f64[2] .
    b:f64[2] = sin a
    c:f64[2] = multiply b b
  in (c) }
"""
from __future__ import annotations

import numpy as np

from .keys import Unhashable, exact_key
from .program import Const, Program, Var, substitute

__all__ = ["cse"]


def _const_key(value):
    if isinstance(value, np.ndarray) and value.ndim:
        return ("id", id(value))  # big constants: the same object, not equal contents
    try:
        return exact_key(value)
    except Unhashable:
        return ("id", id(value))


def _params_key(params):
    try:
        return exact_key(params)
    except Unhashable:
        return None


def cse(program: Program) -> Program:
    """The program with repeated computations replaced by their first result."""
    seen: dict = {}
    mapping: dict = {}
    kept = []

    def resolve(atom):
        return mapping.get(atom, atom) if type(atom) is Var else atom

    for eqn in program.eqns:
        inputs = [resolve(i) for i in eqn.inputs]
        pkey = _params_key(eqn.params)
        if pkey is not None:
            key = (eqn.prim, pkey) + tuple(i if type(i) is Var else _const_key(i.value) for i in inputs)
            first = seen.get(key)
            if first is not None:
                for mine, theirs in zip(eqn.outs, first.outs):
                    mapping[mine] = theirs
                continue
            seen[key] = eqn
        kept.append(eqn)
    if not mapping:
        return program
    return substitute(program.replace(kept), mapping)
