"""Dead-code elimination: drop equations none of whose outputs is used.

Every primitive is a pure function of its inputs (in-place updates are
recorded as functional ones), so an equation whose results nobody reads can
go.  ``jit(jacrev(f))`` records the primal output and ``grad`` records the
forward values the backward pass does not need: those disappear here.

>>> import numpy as np, npfunc
>>> print(npfunc.make_graph(lambda x: (np.sin(x), np.cos(x))[0], passes=["dce"])(np.ones(2)).optimized)
{ lambda a:f64[2] .
    b:f64[2] = sin a
  in (b) }
"""
from __future__ import annotations

from .program import Program, Var

__all__ = ["dce"]


def dce(program: Program) -> Program:
    """The program without equations whose outputs are never read."""
    live = {o for o in program.outputs if type(o) is Var}
    kept = []
    for eqn in reversed(program.eqns):
        if any(o in live for o in eqn.outs):
            kept.append(eqn)
            for i in eqn.inputs:
                if type(i) is Var:
                    live.add(i)
    if len(kept) == len(program.eqns):
        return program
    kept.reverse()
    return program.replace(kept)
