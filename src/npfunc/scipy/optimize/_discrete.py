"""SciPy's ``linear_sum_assignment``, ``linprog`` and ``fsolve`` reached with traced
values (routed, not public twins: see ``_routing.ROUTED_ONLY``).

* ``linear_sum_assignment`` returns integer indices, piecewise constant in the
  cost matrix (as ``np.argmax``): under grad, jvp and their compositions it runs
  on the cost's value, and ``C[rows, cols].sum()`` is then differentiable in C.
  Under jit and vmap the indices depend on the values: refused.
* ``linprog`` sends its inputs to HiGHS, which takes plain arrays: refused with
  the envelope-theorem spelling (solve on the values, differentiate ``c @ res.x``).
* ``fsolve`` is ``root(..., method="hybr").x``, whose twin differentiates the
  solution by the implicit function theorem.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize as so

from ...core.context import describe_stack
from ...core.tracer import Tracer
from ._implicit import UnsupportedSolverError


def linear_sum_assignment(cost_matrix, maximize=False):
    from ...primitives.elementwise.arithmetic import stop_gradient

    value = stop_gradient(cost_matrix)
    if isinstance(value, Tracer):  # jit or vmap: the value is not known (or is one per element)
        raise UnsupportedSolverError(
            f"{describe_stack()}: scipy.optimize.linear_sum_assignment on a traced cost matrix: the optimal "
            "assignment depends on its values, which jit records without and vmap holds one per element. "
            "Compute the assignment outside (rows, cols = linear_sum_assignment(C) on plain values) and pass "
            "rows and cols in; C[rows, cols].sum() is then traced. (grad and jvp run it on C's value.)")
    return so._lsap.linear_sum_assignment(value, maximize=maximize)


def linprog(c, *args, **kwargs):
    from .._routing import traced
    from scipy.optimize._linprog import linprog as scipy_linprog

    if not (traced((c, *args)) or traced(kwargs.values())):  # routed for a callback: nothing traced
        return scipy_linprog(c, *args, **kwargs)
    raise UnsupportedSolverError(
        f"{describe_stack()}: scipy.optimize.linprog has no npfunc twin: HiGHS takes plain arrays, and the "
        "solution is a vertex, piecewise constant in the data. Solve on the values and write the optimum "
        "with the traced ones: res = linprog(npfunc.stop_gradient(c), A_ub=..., ...); value = c @ res.x "
        "(its derivative in c is res.x, the envelope theorem) under grad and jvp; under jit and vmap, call "
        "linprog outside.")


def fsolve(func, x0, args=(), fprime=None, full_output=0, col_deriv=0, xtol=1.49012e-08, maxfev=0, band=None,
           epsfcn=None, factor=100, diag=None):
    from scipy.optimize._minpack_py import fsolve as scipy_fsolve

    from ._problem import Problem
    from ._roots import _fsolve_status, _root

    if not Problem("fsolve", func, x0, args if isinstance(args, tuple) else (args,)).traced:
        # routed because a transform runs, but nothing here is traced: SciPy's call, warnings included
        return scipy_fsolve(func, x0, args, fprime, full_output, col_deriv, xtol, maxfev, band, epsfcn, factor,
                            diag)
    if full_output or col_deriv or band is not None:
        raise UnsupportedSolverError(
            f"{describe_stack()}: fsolve with full_output, col_deriv or band on traced values: call "
            "scipy.optimize.root(func, x0, args=args, method='hybr'), whose result's fields are computed, "
            "and take res.x.")
    options = {"xtol": xtol, "maxfev": maxfev, "factor": factor}
    if epsfcn is not None:
        options["eps"] = epsfcn
    if diag is not None:
        options["diag"] = diag
    # (SciPy's fsolve warns, or raises, on MINPACK's status: so does each solve here, replays included)
    res = _root(func, x0, args if isinstance(args, tuple) else (args,), "hybr", fprime, None, None, options,
                on_result=_fsolve_status)
    # SciPy's fsolve returns the root flattened (x0 = 1.0 gives shape (1,), a (2, 2) x0 shape (4,))
    return np.reshape(res.x, (-1,)) if not isinstance(res.x, Tracer) else res.x.reshape((-1,))
