"""``solve_ivp`` and ``odeint``: SciPy's ODE solvers, differentiable.

Outside any transform these *are* SciPy's calls.  Inside one, the forward
solve is still SciPy's (same method, options and values; ``solve_ivp``
keeps its dense output, the residual of the adjoint), and the solution is
differentiable in ``y0``, the time span and output times, the arrays in
``args`` and every traced value the right-hand side closes over
(``_ode.py`` for the rules).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...api._common import tree_flatten, tree_unflatten
from ...api.closure import closure_convert
from ...core.context import current_stack, describe_stack
from ...core.tracer import Tracer
from ...core.values import dtype_of
from ...primitives.shape.joining import asarray as _asarray
from .._results import with_refused_fields
from ._ode import (OdeProblem, OdeSettings, UnsupportedOdeError, UserCallable, check_grid_mode, ode_primitive,
                   record_of)


def _is_array(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic))


def _rhs_problem(fun: Callable, t0, y0, args, settings: OdeSettings, order: str):
    """(OdeProblem, params): ``fun`` as ``rhs(t, y, *params)`` with the traced
    values it reads (``args`` arrays and closed-over tracers) as params."""
    leaves, spec = tree_flatten(tuple(args))
    kinds = [_is_array(x) for x in leaves]
    statics = [x for x, k in zip(leaves, kinds) if not k]
    arrays = [x for x, k in zip(leaves, kinds) if k]

    def rebuild(arr):
        it_a, it_s = iter(arr), iter(statics)
        return tree_unflatten(spec, [next(it_a) if k else next(it_s) for k in kinds])

    def call(t, y, *arr):
        user = rebuild(arr)
        dy = fun(t, y, *user) if order == "ty" else fun(y, t, *user)
        # SciPy takes any sequence (np.asarray); a list of traced values becomes one array
        return dy if _is_array(dy) else _asarray(dy, dtype=np.float64)

    converted, consts = closure_convert(call, t0, y0, *arrays)
    n = int(np.size(y0)) if not isinstance(y0, Tracer) else int(np.prod(y0.shape))
    for key in ("jac", "Dfun"):  # the user's Jacobian gets the plain values of their args
        if callable(settings.options.get(key)):
            settings.options[key] = UserCallable(settings.options[key], lambda ps: rebuild(ps[:len(arrays)]),
                                                 "ty" if key == "jac" or order == "ty" else "yt")
    return OdeProblem(converted, n, settings, {}), list(arrays) + list(consts)


def _as_vector(y0, name: str):
    y0 = y0 if isinstance(y0, Tracer) else np.asarray(y0)
    if len(np.shape(y0)) != 1:
        raise ValueError(f"{name}: y0 must be 1-dimensional, got shape {np.shape(y0)}")
    if dtype_of(y0).kind == "c":
        raise UnsupportedOdeError(f"{describe_stack()}: {name}: a complex y0 is not supported on traced values "
                                  "(the solves npfunc differentiates, batches and records are real); solve for the "
                                  "real and imaginary parts as a real system of twice the size")
    return y0 if dtype_of(y0) == np.float64 else y0.astype(np.float64)  # SciPy solves in float64


class TracedOdeSolution:
    """``sol`` of a ``solve_ivp(dense_output=True)`` inside a transform:
    ``sol(t)`` is differentiable like the solution itself (it solves again
    from ``t0`` with ``t_eval=t``, which gives the dense output's values,
    since SciPy's steps do not depend on ``t_eval``)."""

    def __init__(self, problem, y0, t0, tf, params) -> None:
        self._call = lambda t: ode_primitive(problem, False).bind(y0, t0, tf, t, *params)[0]

    def __call__(self, t):
        scalar = np.ndim(t) == 0
        ts = np.reshape(t, (1,)) if scalar else t
        ys = self._call(ts if isinstance(ts, Tracer) else np.asarray(ts, dtype=float))
        return ys[0] if scalar else ys.T


def solve_ivp(fun: Callable, t_span, y0, method="RK45", t_eval=None, dense_output=False, events=None,
              vectorized=False, args=None, **options):
    """``scipy.integrate.solve_ivp``; inside a transform the solution (``y``,
    ``sol(t)``) is differentiable in ``y0``, ``t_span``, ``t_eval``, ``args``
    and closed-over traced values.

    Derivatives: reverse mode by the adjoint method, forward mode by forward
    sensitivities, both SciPy solves with the same ``method``, ``rtol`` and
    (smallest) ``atol``.  Under ``vmap`` (over ``y0``, ``args`` or closed-over
    values) the batch is one solve of the stacked system; give ``t_eval``.

    >>> import numpy as np, npfunc
    >>> from npfunc.scipy.integrate import solve_ivp
    >>> def y_end(k):   # y' = -k y, y(0) = 1: y(1) = exp(-k)
    ...     return solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), np.array([1.0]), args=(k,),
    ...                      rtol=1e-10, atol=1e-12).y[0, -1]
    >>> k = np.float64(0.5)
    >>> bool(np.isclose(npfunc.grad(y_end)(k), -np.exp(-k), rtol=1e-6))
    True
    """
    import scipy.integrate as si

    if not current_stack():
        return si.solve_ivp(fun, t_span, y0, method=method, t_eval=t_eval, dense_output=dense_output,
                            events=events, vectorized=vectorized, args=args, **options)
    if events is not None:
        raise UnsupportedOdeError(
            f"{describe_stack()}: solve_ivp with events cannot be differentiated or batched (the end time "
            "would depend on the solution); integrate to a fixed time, or find the event time with "
            "npfunc.scipy.optimize.brentq on sol(t) (dense_output=True and t_eval; under grad, jacrev, jvp and "
            "jit, not vmap or jacfwd, which batch the root time sol(t) is evaluated at).")
    if not isinstance(method, str):
        raise UnsupportedOdeError(f"{describe_stack()}: solve_ivp: give method by name ('RK45', 'Radau', ...)")
    t0, tf = t_span
    y0 = _as_vector(y0, "solve_ivp")
    rtol = options.pop("rtol", 1e-3)
    atol = options.pop("atol", 1e-6)
    settings = OdeSettings("ivp", method, rtol, np.asarray(atol, dtype=float) if np.ndim(atol) else atol, options)
    args = () if args is None else (args if isinstance(args, tuple) else (args,))
    if callable(options.get("jac")):  # a closure over traced values gets plain ones
        from ..optimize._problem import plain_callable

        settings.options["jac"] = plain_callable(options["jac"], "solve_ivp", "jac")
    if t_eval is not None and not isinstance(t_eval, Tracer):
        t_eval = np.asarray(t_eval, dtype=float)
    problem, params = _rhs_problem(fun, t0, y0, args, settings, "ty")
    if t_eval is None:
        check_grid_mode([y0, t0, tf, *params])
    ys, b = ode_primitive(problem, t_eval is None).bind(y0, t0, tf, t_eval, *params)
    rec = problem.cell.get("record")
    if t_eval is None:
        rec = record_of(b)
        t = np.concatenate([np.reshape(t0, (1,)), rec.t[1:-1], np.reshape(tf, (1,))]) if len(rec.t) > 1 \
            else np.reshape(t0, (1,))
    else:
        t = t_eval
    report = rec.report if rec is not None else None
    from scipy.integrate._ivp.ivp import OdeResult

    res = OdeResult(t=t, y=ys.T, sol=TracedOdeSolution(problem, y0, t0, tf, params) if dense_output else None,
                    t_events=None, y_events=None, nfev=getattr(report, "nfev", 0), njev=getattr(report, "njev", 0),
                    nlu=getattr(report, "nlu", 0), status=getattr(report, "status", 0),
                    message=getattr(report, "message", ""), success=True)
    if t_eval is None and any(isinstance(v, Tracer) for v in (y0, t0, tf, *params)):  # the grid moves
        return with_refused_fields(res, ("t",), _refuse_step_grid)
    return res


def _refuse_step_grid(field: str) -> Exception:
    """Without ``t_eval``, ``sol.t`` is SciPy's step grid, which moves with the
    parameters being differentiated.  npfunc differentiates ``y`` at those times
    held fixed (exact for the end point), so a quantity computed from the times
    themselves (``np.trapezoid(sol.y, sol.t)``) would get another derivative than
    the plain program's."""
    return UnsupportedOdeError(
        f"{describe_stack()}: sol.t of solve_ivp without t_eval is SciPy's own step grid, which moves with "
        "the values being differentiated; npfunc differentiates sol.y at those times held fixed, so what "
        "is computed from sol.t would get another derivative than the plain program's. Give t_eval (the "
        "times to return), e.g. t_eval=np.linspace(t0, t1, n).")


def odeint(func: Callable, y0, t, args=(), Dfun=None, col_deriv=0, full_output=0, ml=None, mu=None, rtol=None,
           atol=None, tcrit=None, h0=0.0, hmax=0.0, hmin=0.0, ixpr=0, mxstep=0, mxhnil=0, mxordn=12, mxords=5,
           printmessg=0, tfirst=False):
    """``scipy.integrate.odeint`` (LSODA); inside a transform the solution is
    differentiable in ``y0``, ``t``, ``args`` and closed-over traced values
    (adjoint solves with odeint; y between output times re-solved forward from
    each stored point, as LSODA keeps no interpolant)."""
    import scipy.integrate as si

    if not current_stack():
        return si.odeint(func, y0, t, args=args, Dfun=Dfun, col_deriv=col_deriv, full_output=full_output, ml=ml,
                         mu=mu, rtol=rtol, atol=atol, tcrit=tcrit, h0=h0, hmax=hmax, hmin=hmin, ixpr=ixpr,
                         mxstep=mxstep, mxhnil=mxhnil, mxordn=mxordn, mxords=mxords, printmessg=printmessg,
                         tfirst=tfirst)
    y0 = y0 if isinstance(y0, Tracer) else np.asarray(y0)  # a list may hold traced values (np.ndim would refuse)
    y0 = _as_vector(np.reshape(y0, (-1,)) if len(np.shape(y0)) == 0 else y0, "odeint")
    tol = 1.49012e-8
    options = dict(ml=ml, mu=mu, tcrit=tcrit, h0=h0, hmax=hmax, hmin=hmin, ixpr=ixpr, mxstep=mxstep, mxhnil=mxhnil,
                   mxordn=mxordn, mxords=mxords, printmessg=printmessg)
    if Dfun is not None:
        from ..optimize._problem import plain_callable

        options["Dfun"] = plain_callable(Dfun, "odeint", "Dfun")
        options["col_deriv"] = col_deriv
    settings = OdeSettings("odeint", "LSODA", tol if rtol is None else rtol,
                           tol if atol is None else (np.asarray(atol, dtype=float) if np.ndim(atol) else atol), options)
    args = args if isinstance(args, tuple) else (args,)
    t = t if isinstance(t, Tracer) else np.asarray(t, dtype=float)
    problem, params = _rhs_problem(func, t[0], y0, args, settings, "ty" if tfirst else "yt")
    ys, _ = ode_primitive(problem, False).bind(y0, t[0], t[-1], t, *params)
    if full_output:
        return ys, problem.cell["record"].report
    return ys
