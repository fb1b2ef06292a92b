"""``minimize`` and ``minimize_scalar``.

The minimiser ``x*`` of ``f(x, θ)`` solves ``∇ₓf(x*, θ) = 0``, so its
derivative is ``-H⁻¹ ∂(∇ₓf)/∂θ`` with the Hessian ``H`` applied as
Hessian-vector products (forward-over-reverse).  With bounds, components
that end on a bound are held there (their derivative is 0) and the theorem
applies to the others.

``minimize(fun, x0)`` also fills ``jac`` (and ``hess``/``hessp`` for the
methods that use them) from npfunc when they are not given, in plain calls
too: SciPy then gets exact derivatives instead of finite differences.  Pass
``jac='2-point'`` for SciPy's own differences.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import scipy.optimize as so

from ...core.context import describe_stack
from ...core.tracer import Tracer
from ._implicit import UnsupportedSolverError, implicit_solution, mapped, one_by_one
from ._problem import Problem, as_args, per_element, plain_callable

_USES_JAC = {"cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "slsqp", "dogleg", "trust-ncg", "trust-krylov",
             "trust-exact", "trust-constr"}
_HESS = {"dogleg", "trust-exact", "trust-constr"}
_HESSP = {"newton-cg", "trust-ncg", "trust-krylov"}


def _method(method, bounds, constraints) -> str:
    if method is not None:
        return method.lower() if isinstance(method, str) else "custom"
    if constraints:
        return "slsqp"
    return "l-bfgs-b" if bounds is not None else "bfgs"


def _scalar_fun(fun: Callable, jac) -> Callable:
    """``f(x, *args)`` as a scalar (``jac=True`` functions return ``(f, g)``)."""
    if jac is True:
        return lambda x, *a: fun(x, *a)[0]
    return fun


def _derivatives(f: Callable, method: str, jac, hess, hessp):
    """(jac, hess, hessp) for SciPy, npfunc's filling the gaps ``f(x, *args)`` leaves."""
    from ...api.forward import jvp
    from ...api.jacobians import hessian
    from ...api.reverse import grad, grad_and_value
    from .._routing import routed

    if routed():  # reached from scipy.optimize.minimize itself: SciPy's own steps, SciPy's values
        return jac, hess, hessp
    if jac is None and method in _USES_JAC:
        def value_and_grad(x, *a):
            g, v = grad_and_value(lambda x: f(x, *a))(np.asarray(x, dtype=float))
            return float(v), np.asarray(g)

        value_and_grad.npfunc = True  # type: ignore[attr-defined]
        jac = value_and_grad
    if hess is None and hessp is None and method in _HESS:
        hess = lambda x, *a: np.asarray(hessian(lambda x: f(x, *a))(np.asarray(x, dtype=float)))  # noqa: E731
    if hess is None and hessp is None and method in _HESSP:
        def hessp(x, p, *a):
            return np.asarray(jvp(grad(lambda x: f(x, *a)), (np.asarray(x, dtype=float),),
                                  (np.asarray(p, dtype=float),))[1])
    return jac, hess, hessp


def _scipy_minimize(fun, x0, args, method, jac, hess, hessp, bounds, constraints, tol, callback, options):
    """SciPy's minimize; a filled ``jac`` computes value and gradient in one pass (``jac=True``)."""
    if callable(jac) and getattr(jac, "npfunc", False):
        return so.minimize(jac, x0, args=args, method=method, jac=True, hess=hess, hessp=hessp, bounds=bounds,
                           constraints=constraints, tol=tol, callback=callback, options=options)
    return so.minimize(fun, x0, args=args, method=method, jac=jac, hess=hess, hessp=hessp, bounds=bounds,
                       constraints=constraints, tol=tol, callback=callback, options=options)


def bound_arrays(bounds, n: int, pairs: bool):
    """(lb, ub) float arrays of length n from SciPy's bounds forms (None = unbounded)."""
    if bounds is None:
        return None
    if isinstance(bounds, so.Bounds):
        lb, ub = bounds.lb, bounds.ub
    elif pairs:
        lb = [-np.inf if b[0] is None else b[0] for b in bounds]
        ub = [np.inf if b[1] is None else b[1] for b in bounds]
    else:
        lb, ub = bounds
    lb = np.broadcast_to(np.asarray(lb, dtype=float), (n,)).copy()
    ub = np.broadcast_to(np.asarray(ub, dtype=float), (n,)).copy()
    if np.all(np.isneginf(lb)) and np.all(np.isposinf(ub)):
        return None
    return lb, ub


def hold_active(residual: Callable, lim) -> Callable:
    """``residual`` with components on a bound replaced by ``x - bound`` (held there)."""
    if lim is None:
        return residual
    lb, ub = lim

    def held(x, *params):
        at_lb, at_ub = x <= lb, x >= ub
        return np.where(at_lb | at_ub, x - np.where(at_lb, lb, ub), residual(x, *params))

    return held


def minimize(fun: Callable, x0, args=(), method=None, jac=None, hess=None, hessp=None, bounds=None, constraints=(),
             tol=None, callback=None, options=None):
    """``scipy.optimize.minimize``; ``res.x`` (and ``res.fun``, ``res.jac``) are
    differentiable in ``args`` and closed-over traced values, and ``jac``,
    ``hess``/``hessp`` are filled from npfunc when the method uses them."""
    from ...api.reverse import grad

    args = as_args(args)
    m = _method(method, bounds, constraints)
    f = _scalar_fun(fun, jac)
    pb = Problem("minimize", fun, x0, args)
    if not pb.traced and not (constraints and _constraints_traced(constraints, x0)):
        j, h, hp = _derivatives(f, m, jac, hess, hessp)
        return _scipy_minimize(fun, x0, args, method, j, h, hp, bounds, constraints, tol, callback, options)
    if constraints and (pb.traced or _constraints_traced(constraints, x0)):
        raise UnsupportedSolverError(
            f"{describe_stack()}: scipy.optimize.minimize: derivatives, vmap and jit of constrained minimisation "
            "(constraints=...) are not supported; the solution's derivative would need the KKT system. Write the "
            "constraints into the objective (penalty or change of variables), use bounds, or solve the KKT "
            "conditions with scipy.optimize.root (differentiable).")
    shape = pb.shape
    n = int(np.prod(shape))
    lim = bound_arrays(bounds, n, pairs=True)

    def objective(x, *params):
        out = pb(np.reshape(x, shape), params)
        return out[0] if jac is True else out

    def gradient(x, *params):
        return np.reshape(grad(lambda x: objective(x, *params))(x), (-1,))

    residual = hold_active(gradient, lim)

    def solve(x0, *params):
        user_args = pb.user_args_of(params)
        user_jac = plain_callable(jac, "minimize", "jac") if callable(jac) else None
        j = (lambda x: user_jac(x.reshape(shape), *user_args)) if user_jac is not None else jac
        j, h, hp = _derivatives(lambda x: objective(x, *params), m, j, _bind(hess, user_args, shape, "hess"),
                                _bind(hessp, user_args, shape, "hessp"))
        res = _scipy_minimize(lambda x: pb(x.reshape(shape), params), x0, (), method, j, h, hp, bounds, (), tol,
                              plain_callable(callback, "minimize", "callback"), options)
        return res.x, {"success": _stationary(res, m, options), "message": res.message, "result": res}

    stacked = None if m not in _USES_JAC else one_by_one(solve)   # (see one_by_one)
    x, cell = implicit_solution("minimize", residual, solve, np.ravel(x0), pb.params, stacked,
                                symmetric=lim is None)
    res = copy.copy(cell["info"]["result"])
    res.x = np.reshape(x, shape)
    res.fun = objective(x, *pb.params)
    if "jac" in res:
        res.jac = np.reshape(gradient(x, *pb.params), shape)
    return per_element(res, x, "minimize")


def _constraints_traced(constraints, x0) -> bool:
    """Whether a constraint's function computes with a traced value (closes over a
    parameter under a transform): SciPy would call it and fail on np.asarray inside
    its finite differences, so the refusal of constrained problems applies."""
    from ...core.context import current_stack
    from ...core.tracer import Tracer
    from ...api._common import tree_flatten

    if not current_stack():
        return False
    x = np.asarray(x0, dtype=float) if not isinstance(x0, Tracer) else x0
    for c in ([constraints] if isinstance(constraints, (dict, so.NonlinearConstraint, so.LinearConstraint))
              else constraints):
        if isinstance(c, so.LinearConstraint):
            leaves = [c.A, c.lb, c.ub]
        elif isinstance(c, so.NonlinearConstraint):
            leaves = [c.fun(x), c.lb, c.ub]
        else:
            leaves = [c["fun"](x, *c.get("args", ())), *tree_flatten(c.get("args", ()))[0]]
        if any(isinstance(v, Tracer) for leaf in leaves for v in tree_flatten(leaf)[0]):
            return True
    return False


def _stationary(res, method: str, options) -> bool:
    """SciPy's success, or a stop (e.g. on precision loss) where the gradient is within gtol."""
    if res.success:
        return True
    g = res.get("jac")
    if method not in _USES_JAC or g is None or res.get("status") not in (2, 4):
        return False
    gtol = (options or {}).get("gtol", 1e-5)
    return bool(np.all(np.isfinite(g)) and np.max(np.abs(g)) <= gtol)


def _bind(fn, user_args, shape, what):
    """A user's hess/hessp called with their args (and made plain) for SciPy."""
    if fn is None or not callable(fn):
        return fn
    fn = plain_callable(fn, "minimize", what)
    if what == "hessp":
        return lambda x, p: fn(np.reshape(x, shape), p, *user_args)
    return lambda x: fn(np.reshape(x, shape), *user_args)


def minimize_scalar(fun: Callable, bracket=None, bounds=None, args=(), method=None, tol=None, options=None):
    """``scipy.optimize.minimize_scalar``; ``res.x`` and ``res.fun`` are
    differentiable in ``args`` and closed-over traced values.  (A minimum on
    a bound of method 'bounded' is not stationary: its derivative raises.)"""
    from ...api.reverse import grad

    args = as_args(args)
    traced_bounds = bounds is not None and not isinstance(bounds, so.Bounds) and \
        any(isinstance(e, Tracer) for e in bounds)
    bracket, bounds = _plain_interval(bracket, "bracket"), _plain_interval(bounds, "bounds")
    pb = Problem("minimize_scalar", fun, np.float64(0.0), args)
    if not pb.traced:
        res = so.minimize_scalar(fun, bracket=bracket, bounds=bounds, args=args, method=method, tol=tol,
                                 options=options)
        xatol = (options or {}).get("xatol", 1e-5)
        if traced_bounds and min(abs(res.x - bounds[0]), abs(res.x - bounds[1])) <= 10 * xatol:
            from ...core.context import describe_stack

            raise UnsupportedSolverError(
                f"{describe_stack()}: minimize_scalar's minimum is on a bound computed from a differentiated "
                "value, so it moves with that bound, which SciPy's search (given the bound's number) does not "
                "see. Write the constrained minimiser out (here x = the bound), or widen the bounds.")
        return res

    def objective(x, *params):
        return pb(np.reshape(x, ()), params)

    def residual(x, *params):
        return np.reshape(grad(lambda x: objective(x, *params))(x), (-1,))

    def solve(x0, *params):
        res = so.minimize_scalar(lambda x: objective(np.float64(x), *params), bracket=bracket, bounds=bounds,
                                 method=method, tol=tol, options=options)
        ok, message = bool(res.success), res.message
        if ok and bounds is not None:  # 'bounded' stops next to a bound when the minimum is on it
            xatol = (options or {}).get("xatol", 1e-5)
            if min(abs(res.x - bounds[0]), abs(res.x - bounds[1])) <= 10 * xatol:
                ok, message = False, "the minimum is on a bound of the interval, where f' is not 0"
        return np.array([res.x]), {"success": ok, "message": message, "result": res}

    x, cell = implicit_solution("minimize_scalar", residual, solve, np.zeros(1), pb.params,
                                _stacked_scalar(objective, bracket, bounds, tol, options), symmetric=True)
    res = copy.copy(cell["info"]["result"])
    res.x = x[0]  # a scalar, as SciPy's
    res.fun = objective(x, *pb.params)
    return res


def _plain_interval(ends, what: str):
    """``bounds`` or ``bracket`` with traced ends replaced by their values: SciPy's
    search takes numbers, and a minimum inside the interval does not move with its
    ends (one on a bound is refused by ``solve``).  Under jit or vmap an end has no
    single value: refused, naming the spelling that works."""
    if ends is None or isinstance(ends, so.Bounds) or not any(isinstance(e, Tracer) for e in ends):
        return ends
    from ...core.context import describe_stack
    from ...primitives.elementwise.arithmetic import stop_gradient

    plain = [stop_gradient(e) if isinstance(e, Tracer) else e for e in ends]
    if any(isinstance(e, Tracer) for e in plain):
        raise UnsupportedSolverError(
            f"{describe_stack()}: minimize_scalar's {what} are computed from a value traced by jit or batched "
            f"by vmap, but SciPy's search needs their numbers. Pass plain {what} (numbers not computed from "
            f"the arguments, e.g. {what}=(0.0, 100.0) enclosing every case): the minimiser and its derivative "
            "do not depend on them while the minimum is inside.")
    return type(ends)(plain) if isinstance(ends, (tuple, list)) else plain


def _stacked_scalar(objective, bracket, bounds, tol, options):
    import scipy.optimize.elementwise as el

    def stacked(x0, *params):
        b = x0.shape[0]
        idx = np.arange(b)

        def f(x, i):
            return np.asarray(mapped(objective, 1)(np.reshape(x, (-1, 1)), *[p[i] for p in params])).reshape(
                np.shape(x))

        if bounds is not None:
            lo, hi = float(bounds[0]), float(bounds[1])
            br = el.bracket_minimum(f, np.full(b, 0.5 * (lo + hi)), xmin=lo, xmax=hi, args=(idx,))
        elif bracket is not None and len(bracket) == 3:
            br = None
            init = tuple(np.full(b, float(v)) for v in bracket)
        else:
            a, c = (bracket if bracket is not None else (0.0, 1.0))
            br = el.bracket_minimum(f, np.full(b, float(c)), xl0=np.full(b, float(a)), args=(idx,))
        if br is not None:
            init = tuple(br.bracket)
        xatol = (options or {}).get("xatol", tol)
        res = el.find_minimum(f, init, args=(idx,), tolerances=None if xatol is None else {"xatol": xatol})
        ok = bool(np.all(res.success)) and (br is None or bool(np.all(br.success)))
        return res.x.reshape(b, 1), {"success": ok, "message": "elementwise.find_minimum", "result": res}

    return stacked
