"""Roots and fixed points: ``root``, ``fsolve``, ``root_scalar``, ``brentq``, ``newton``, ``fixed_point``.

The forward solve is SciPy's; the derivative of the root ``x*`` of
``F(x, θ) = 0`` is ``-(∂F/∂x)⁻¹ ∂F/∂θ`` (``_implicit.py``).  Under ``vmap``
bracketing scalar methods use ``scipy.optimize.elementwise.find_root``;
``root``, ``fsolve``, ``newton`` and ``fixed_point`` solve element by element
(``one_by_one``): a stacked solve shares its trust region and stopping test,
so one failing element moved the others off their own solutions.
"""
from __future__ import annotations

import copy
import warnings
from typing import Callable

import numpy as np
import scipy.optimize as so

from ...core.values import shape_of
from ._implicit import UnsupportedSolverError, implicit_solution, mapped, one_by_one
from ._problem import Problem, flat_residual, per_element, plain_callable

_BRACKETING = ("bisect", "brentq", "brenth", "ridder", "toms748")


def _result(info, x, pb: Problem, post):
    """SciPy's result with ``x`` and ``fun`` recomputed from the traced solution.
    (Under vmap the other fields are the first failed element's solve, else the first's.)"""
    res = copy.copy(info["result"])
    res.x = np.reshape(x, pb.shape)
    out = pb(res.x, pb.params)
    res.fun = post(out) if post is not None else out
    return per_element(res, x, "root")


def root(fun: Callable, x0, args=(), method: str = "hybr", jac=None, tol=None, callback=None, options=None):
    """``scipy.optimize.root``; ``res.x`` (and ``res.fun``) are differentiable in
    ``args`` and in any traced value ``fun`` closes over."""
    return _root(fun, x0, args, method, jac, tol, callback, options)


def _root(fun, x0, args, method, jac, tol, callback, options, on_result=None):
    """``root``; ``on_result(res)`` is called with SciPy's result of each solve (when it
    runs: at every call, replays of jit included), for fsolve's warnings."""
    if method in ("hybr", "lm") and np.ndim(x0) != 1:  # SciPy's MINPACK methods flatten x0: fun sees,
        x0 = np.ravel(x0)                               # and res.x is, a 1-d array
    pb = Problem("root", fun, x0, args)
    if not pb.traced:
        return so.root(fun, x0, args=args, method=method, jac=jac, tol=tol, callback=callback, options=options)
    post = (lambda out: out[0]) if jac is True else None
    residual = flat_residual(pb, post)
    shape = pb.shape

    def solve(x0, *params):
        user_args = pb.user_args_of(params)

        def f(x):
            out = pb(x.reshape(shape), params)
            if jac is True:
                return np.ravel(out[0]), np.asarray(out[1])
            return np.ravel(out)

        user_jac = plain_callable(jac, "root", "jac")
        j = (lambda x: user_jac(x.reshape(shape), *user_args)) if callable(user_jac) else jac
        res = so.root(f, x0, method=method, jac=j, tol=tol, callback=plain_callable(callback, "root", "callback"),
                      options=options)
        if on_result is not None:
            on_result(res)
        return res.x, {"success": bool(res.success), "message": res.message, "result": res}

    x, cell = implicit_solution("root", residual, solve, np.ravel(x0), pb.params, one_by_one(solve))
    return _result(cell["info"], x, pb, post)


def fsolve(func: Callable, x0, args=(), fprime=None, full_output=0, col_deriv=0, xtol=1.49012e-08, maxfev=0,
           band=None, epsfcn=None, factor=100, diag=None):
    """``scipy.optimize.fsolve``, which SciPy runs as ``root(method='hybr')``
    (MINPACK's hybrd) with these options; inside a transform so does npfunc,
    and the root is differentiable as ``root``'s."""
    args = args if isinstance(args, tuple) else (args,)
    if not Problem("fsolve", func, np.ravel(x0), args).traced:
        return so.fsolve(func, x0, args=args, fprime=fprime, full_output=full_output, col_deriv=col_deriv,
                         xtol=xtol, maxfev=maxfev, band=band, epsfcn=epsfcn, factor=factor, diag=diag)
    options = {"col_deriv": col_deriv, "xtol": xtol, "maxfev": maxfev, "band": band, "eps": epsfcn,
               "factor": factor, "diag": diag}
    res = root(func, x0, args=args, method="hybr", jac=fprime, options=options)
    if not full_output:
        return res.x
    info = {k: res[k] for k in ("nfev", "njev", "fjac", "r", "qtf") if k in res}
    info["fvec"] = res.fun
    return res.x, info, res.status, res.message


def _fsolve_status(res) -> None:
    """What SciPy's fsolve does with MINPACK's status when it returns only the root: warn
    (status 2-5: too many calls, xtol too small, no progress) or raise (improper input)."""
    if res.status == 1:
        return
    if res.status in (2, 3, 4, 5):
        warnings.warn(res.message, RuntimeWarning, stacklevel=2)
        return
    raise TypeError(res.message)


# ---- scalar roots ---------------------------------------------------------------------------

def _scalar_root(name: str, f: Callable, args, start, solve_scalar: Callable, stacked: Callable | None,
                 post: Callable | None = None):
    """The differentiable root of a scalar ``f(x, *args)`` found by ``solve_scalar(fun, start)``.

    ``start`` (a 1-d array: bracket ends or starting points) only starts the
    solve.  Returns ``(x, info)``.
    """
    pb = Problem(name, f, np.float64(0.0), args, example_x=np.float64(_finite(start)))
    residual = flat_residual(pb, post)

    def solve(start, *params):
        def fun(x):
            return pb(np.float64(x), params)

        x, info = solve_scalar(fun, start, pb.user_args_of(params))
        return np.array([x], dtype=float), info

    def run_stacked(start, *params):
        return stacked(mapped(residual, 1), start, params)

    x, cell = implicit_solution(name, residual, solve, start, pb.params,
                                run_stacked if stacked is not None else None)
    return x[0], cell["info"]  # a scalar, as SciPy's float (np.float64 is a float)


def _finite(start) -> float:
    from ...api.closure import concrete_example

    values = np.asarray(concrete_example(start), dtype=float)
    finite = values[np.isfinite(values)]
    return float(finite[0]) if finite.size else 0.0


def _start(*values):
    """The starting data as one 1-d array (NaN for what is missing); traced entries stay traced."""
    from ...core.tracer import Tracer

    values = [np.nan if v is None else v for v in values]
    if any(isinstance(v, Tracer) for v in values):
        return np.stack([np.asarray(v, dtype=float) if not isinstance(v, Tracer) else v.astype(float)
                         for v in values])
    return np.asarray(values, dtype=float)


def _find_root_stacked(xtol, rtol, maxiter):
    import scipy.optimize.elementwise as el

    def stacked(f_b, start, params):  # start: (B, 2) brackets
        idx = np.arange(start.shape[0])

        def f(x, i):
            return np.asarray(f_b(np.reshape(x, (-1, 1)), *[p[i] for p in params])).reshape(np.shape(x))

        tolerances = {k: v for k, v in (("xatol", xtol), ("xrtol", rtol)) if v is not None}
        res = el.find_root(f, (start[:, 0], start[:, 1]), args=(idx,), tolerances=tolerances or None,
                           maxiter=maxiter)
        ok = bool(np.all(res.success))
        return res.x.reshape(-1, 1), {"success": ok, "message": "elementwise.find_root: " + str(res.status),
                                      "result": res}

    return stacked


def _newton_stacked(tol, maxiter, rtol, use_fprime, use_fprime2):
    from ...api.reverse import grad

    def stacked(f_b, start, params):
        def scalar(x, *p):
            return f_b(np.reshape(x, (1, 1)), *[q[None] for q in p]).reshape(())

        def f(x):
            return np.asarray(f_b(np.reshape(x, (-1, 1)), *params)).reshape(-1)

        d1 = mapped(grad(scalar), 1)
        d2 = mapped(grad(grad(scalar)), 1)
        fp = (lambda x: np.asarray(d1(x, *params))) if use_fprime else None
        fp2 = (lambda x: np.asarray(d2(x, *params))) if use_fprime2 else None
        x0 = start[:, 0]
        x1 = start[:, 1] if np.all(np.isfinite(start[:, 1])) and not use_fprime else None
        out = so.newton(f, x0, fprime=fp, fprime2=fp2, x1=x1, tol=tol, maxiter=maxiter, rtol=rtol,
                        full_output=True, disp=False)
        return np.asarray(out.root).reshape(-1, 1), {"success": bool(np.all(out.converged)),
                                                      "message": "newton (array)", "result": out}

    return stacked


def root_scalar(f: Callable, args=(), method=None, bracket=None, fprime=None, fprime2=None, x0=None, x1=None,
                xtol=None, rtol=None, maxiter=None, options=None):
    """``scipy.optimize.root_scalar``; ``.root`` is differentiable in ``args``
    and closed-over traced values (``RootResults`` otherwise unchanged)."""
    if Problem("root_scalar", f, np.float64(0.0), args).traced is False:
        return so.root_scalar(f, args=args, method=method, bracket=bracket, fprime=fprime, fprime2=fprime2,
                              x0=x0, x1=x1, xtol=xtol, rtol=rtol, maxiter=maxiter, options=options)
    a, b = (bracket if bracket is not None else (None, None))
    kind = method or ("brentq" if bracket is not None else "newton" if fprime is not None else "secant")
    start = _start(a, b) if kind in _BRACKETING else _start(x0, x1)
    post = (lambda out: out[0]) if fprime is True or fprime2 is True else None

    def solve_scalar(fun, start, user_args):
        br = tuple(start) if kind in _BRACKETING else None
        fp = _scalar_callable(fprime, user_args, "root_scalar", "fprime")
        fp2 = _scalar_callable(fprime2, user_args, "root_scalar", "fprime2")
        s0 = None if kind in _BRACKETING or np.isnan(start[0]) else float(start[0])
        s1 = None if kind in _BRACKETING or np.isnan(start[1]) else float(start[1])
        r = so.root_scalar(fun, method=method, bracket=br, fprime=fp, fprime2=fp2, x0=s0, x1=s1, xtol=xtol,
                           rtol=rtol, maxiter=maxiter, options=options)
        return r.root, {"success": bool(r.converged), "message": r.flag, "result": r}

    if kind in _BRACKETING:
        stacked = _find_root_stacked(xtol, rtol, maxiter)
    else:
        stacked = _newton_stacked(xtol or 1.48e-8, maxiter or 50, rtol or 0.0, fprime is not None,
                                  kind == "halley")
    x, info = _scalar_root("root_scalar", f, args, start, solve_scalar, stacked, post)
    return _root_results(info, x, kind)


def _root_results(info, x, method):
    """A ``RootResults`` holding the traced root (under vmap: for the one vectorised solve)."""
    from scipy.optimize._zeros_py import RootResults

    result = info["result"]
    if isinstance(result, RootResults):
        r = copy.copy(result)
        r.root = x
        return r
    nit = np.max(getattr(result, "nit", 0))
    nfev = np.max(getattr(result, "nfev", 0))
    return RootResults(x, int(nit), int(nfev), 0 if info["success"] else -2, method)


def _scalar_callable(fn, user_args, name, what):
    if fn is None or fn is True or fn is False:
        return fn
    fn = plain_callable(fn, name, what)
    return lambda x: fn(x, *user_args)


def _bracketing(method: str) -> Callable:
    """``scipy.optimize.<method>`` for the bracketing solvers sharing brentq's
    signature (``brentq``, ``bisect``, ``brenth``, ``ridder``): SciPy's own
    method finds the root, which is differentiable in ``args`` and in
    closed-over traced values (not in the bracket, which it does not depend on)."""
    scipy_solver = getattr(so, method)

    def solver(f: Callable, a, b, args=(), xtol: float = 2e-12, rtol: float = 8.881784197001252e-16,
               maxiter: int = 100, full_output: bool = False, disp: bool = True):
        if not Problem(method, f, np.float64(0.0), args).traced:
            return scipy_solver(f, a, b, args=args, xtol=xtol, rtol=rtol, maxiter=maxiter,
                                full_output=full_output, disp=disp)

        def solve_scalar(fun, start, user_args):
            x, r = scipy_solver(fun, start[0], start[1], xtol=xtol, rtol=rtol, maxiter=maxiter,
                                full_output=True, disp=disp)
            return x, {"success": bool(r.converged), "message": r.flag, "result": r}

        x, info = _scalar_root(method, f, args, _start(a, b), solve_scalar, _find_root_stacked(xtol, rtol, maxiter))
        if not full_output:
            return x
        return x, _root_results(info, x, method)

    solver.__name__ = solver.__qualname__ = method
    solver.__doc__ = (f"``scipy.optimize.{method}``; the root is differentiable in ``args`` and in closed-over "
                      "traced values (not in the bracket, which it does not depend on).")
    return solver


brentq = _bracketing("brentq")
bisect = _bracketing("bisect")
brenth = _bracketing("brenth")
ridder = _bracketing("ridder")


def newton(func: Callable, x0, fprime=None, args=(), tol: float = 1.48e-08, maxiter: int = 50, fprime2=None,
           x1=None, rtol: float = 0.0, full_output: bool = False, disp: bool = True):
    """``scipy.optimize.newton`` (scalar or array ``x0``, elementwise as in
    SciPy); the root is differentiable in ``args`` and closed-over values."""
    pb = Problem("newton", func, x0, args)
    if not pb.traced:
        return so.newton(func, x0, fprime=fprime, args=args, tol=tol, maxiter=maxiter, fprime2=fprime2, x1=x1,
                         rtol=rtol, full_output=full_output, disp=disp)
    if fprime is True or fprime2 is True:
        raise UnsupportedSolverError("newton: fprime must be a callable or None")
    scalar = np.ndim(x0) == 0
    shape = tuple(shape_of(x0))
    residual = flat_residual(pb)

    def solve(x0, *params):
        user_args = pb.user_args_of(params)
        fun = lambda x: pb(np.reshape(x, shape), params)  # noqa: E731
        fp = plain_callable(fprime, "newton", "fprime")
        fp2 = plain_callable(fprime2, "newton", "fprime2")
        start = x0[0] if scalar else x0.reshape(shape)
        out = so.newton(fun, start, fprime=(lambda x: fp(x, *user_args)) if fp else None,
                        fprime2=(lambda x: fp2(x, *user_args)) if fp2 else None,
                        x1=None if x1 is None else np.asarray(x1, dtype=float), tol=tol, maxiter=maxiter, rtol=rtol,
                        full_output=True, disp=disp)
        if scalar:
            return np.array([out[0]]), {"success": bool(out[1].converged), "message": out[1].flag, "result": out}
        return np.ravel(out.root), {"success": bool(np.all(out.converged)), "message": "newton", "result": out}

    x, cell = implicit_solution("newton", residual, solve, np.ravel(x0), pb.params, one_by_one(solve))
    root_ = x[0] if scalar else np.reshape(x, shape)  # (a scalar x0: a scalar root, as SciPy's)
    if not full_output:
        return root_
    result = cell["info"]["result"]
    if scalar:
        return root_, _root_results({"result": result[1] if isinstance(result, tuple) and len(result) == 2 else result,
                                     "success": cell["info"]["success"]}, root_, "newton")
    return type(result)(root_, result.converged, result.zero_der)


def fixed_point(func: Callable, x0, args=(), xtol: float = 1e-08, maxiter: int = 500, method: str = "del2"):
    """``scipy.optimize.fixed_point``; the fixed point ``x = func(x, *args)`` is
    differentiable in ``args`` and closed-over values (through ``x - func(x)``)."""
    pb = Problem("fixed_point", func, x0, args)
    if not pb.traced:
        return so.fixed_point(func, x0, args=args, xtol=xtol, maxiter=maxiter, method=method)
    shape = tuple(shape_of(x0))
    g = flat_residual(pb)

    def residual(x, *params):
        return g(x, *params) - x

    def solve(x0, *params):
        x = so.fixed_point(lambda x: pb(np.reshape(x, shape), params), x0.reshape(shape), xtol=xtol,
                           maxiter=maxiter, method=method)
        return np.ravel(x), {"success": True, "message": "converged"}

    x, _ = implicit_solution("fixed_point", residual, solve, np.ravel(x0), pb.params, one_by_one(solve))
    return np.reshape(x, shape)
