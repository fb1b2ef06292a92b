"""``least_squares`` and ``curve_fit``.

The solution minimises the cost ``C(x) = ½ s² Σ ρ((rᵢ/s)²)`` (``s`` =
``f_scale``, ``ρ`` the loss), so it solves ``∇C(x*) = 0`` and its derivative
in every traced input -- ``args``, closed-over values, and for ``curve_fit``
``xdata``, ``ydata`` and ``sigma`` -- comes from the implicit function
theorem with the exact Hessian of ``C`` (not the Gauss-Newton one).  Bounds
hold the components that end on them.  Under ``vmap`` the residuals of the
batch are stacked into one SciPy solve whose Jacobian is block-diagonal
(``jac_sparsity`` for 'trf'/'dogbox', npfunc's blocks for 'lm').
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

from ...api.closure import closure_convert
from ...core.context import current_stack
from ...core.tracer import Tracer
from ._implicit import UnsupportedSolverError, implicit_solution, mapped
from ._minimize import bound_arrays, hold_active
from ._problem import Problem, as_args, per_element, plain_callable


def _rho(loss: str) -> Callable:
    if loss == "linear":
        return lambda z: z
    if loss == "soft_l1":
        return lambda z: 2.0 * (np.sqrt(1.0 + z) - 1.0)
    if loss == "huber":
        return lambda z: np.where(z <= 1.0, z, 2.0 * np.sqrt(np.where(z <= 1.0, 1.0, z)) - 1.0)
    if loss == "cauchy":
        return np.log1p
    if loss == "arctan":
        return np.arctan
    raise UnsupportedSolverError(
        f"least_squares: loss={loss!r} cannot be differentiated (npfunc needs the loss as a formula); use one of "
        "'linear', 'soft_l1', 'huber', 'cauchy', 'arctan'")


def cost_function(residuals: Callable, loss: str, f_scale) -> Callable:
    rho = _rho(loss)

    def cost(x, *params):
        z = (residuals(x, *params) / f_scale) ** 2
        return 0.5 * f_scale ** 2 * rho(z).sum()

    return cost


def _gradient(cost: Callable) -> Callable:
    from ...api.reverse import grad

    return lambda x, *params: grad(lambda x: cost(x, *params))(x)


def _stacked_least_squares(residuals: Callable, lim, jac, method: str, options: dict):
    """One SciPy solve of the stacked residuals of a batch (block-diagonal Jacobian)."""
    from ...api.jacobians import jacfwd

    def stacked(x0, *params):
        b, n = x0.shape
        r_b = mapped(residuals, 1)

        def fun(x):
            return np.asarray(r_b(x.reshape(b, n), *params)).ravel()

        m = fun(x0.ravel()).size // b
        kw = dict(options)
        if method == "lm" or callable(jac):
            j_b = mapped(lambda x, *p: jacfwd(lambda x: residuals(x, *p))(x), 1)
            rows, cols = np.arange(b * m).reshape(b, m, 1), np.arange(b * n).reshape(b, 1, n)

            def jac_fn(x):
                blocks = np.asarray(j_b(x.reshape(b, n), *params))
                if method == "lm":
                    full = np.zeros((b * m, b * n))
                    full[rows, cols] = blocks
                    return full
                return sp.csr_matrix((blocks.ravel(), (np.broadcast_to(rows, (b, m, n)).ravel(),
                                                       np.broadcast_to(cols, (b, m, n)).ravel())), (b * m, b * n))

            kw["jac"] = jac_fn
        else:
            kw["jac"] = jac
            kw["jac_sparsity"] = sp.block_diag([np.ones((m, n))] * b, format="csr")
        if isinstance(kw.get("x_scale"), np.ndarray):
            kw["x_scale"] = np.tile(kw["x_scale"], b)
        bounds = (-np.inf, np.inf) if lim is None else (np.tile(lim[0], b), np.tile(lim[1], b))
        res = so.least_squares(fun, x0.ravel(), bounds=bounds, method=method, **kw)
        if res.status > 0:
            return res.x.reshape(b, n), {"success": True, "message": res.message, "result": res}
        # The batch shares one trust region and one stopping test, so the stacked solve can run out
        # of evaluations (status 0) where each element alone converges: solve them one by one, as
        # the plain loop does, rather than return the stacked solve's unconverged iterate.
        return _one_by_one(residuals, lim, jac, method, options, x0, params)

    return stacked


def _one_by_one(residuals: Callable, lim, jac, method: str, options: dict, x0, params):
    """SciPy's least_squares for each element of a batch (the fallback of the stacked solve)."""
    from ...api.jacobians import jacfwd

    xs, results = [], []
    for i in range(x0.shape[0]):
        ps = [p[i] for p in params]
        kw = dict(options)
        if method == "lm" or callable(jac):
            kw["jac"] = lambda x, ps=ps: np.asarray(jacfwd(lambda z: residuals(z, *ps))(x))
        else:
            kw["jac"] = jac
        res = so.least_squares(lambda x, ps=ps: np.asarray(residuals(x, *ps)), x0[i],
                               bounds=(-np.inf, np.inf) if lim is None else lim, method=method, **kw)
        xs.append(res.x)
        results.append(res)
    worst = copy.copy(min(results, key=lambda r: r.status))  # a failed element's result if any
    worst.nfev = sum(r.nfev for r in results)
    return np.stack(xs), {"success": bool(worst.status > 0), "message": worst.message, "result": worst}


def least_squares(fun: Callable, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf", ftol=1e-08, xtol=1e-08,
                  gtol=1e-08, x_scale=None, loss="linear", f_scale=1.0, diff_step=None, tr_solver=None,
                  tr_options=None, jac_sparsity=None, max_nfev=None, verbose=0, args=(), kwargs=None, callback=None,
                  workers=None):
    """``scipy.optimize.least_squares``; ``res.x`` (and ``fun``, ``cost``,
    ``jac``, ``grad``) are differentiable in ``args``, ``kwargs`` and
    closed-over traced values."""
    from ...api.jacobians import jacfwd

    kwargs = {} if kwargs is None else kwargs
    args = as_args(args)
    options = dict(ftol=ftol, xtol=xtol, gtol=gtol, x_scale=x_scale, loss=loss, f_scale=f_scale,
                   diff_step=diff_step, tr_solver=tr_solver, tr_options=tr_options, max_nfev=max_nfev,
                   verbose=verbose)
    if not current_stack():
        return so.least_squares(fun, x0, jac=jac, bounds=bounds, method=method, jac_sparsity=jac_sparsity,
                                args=args, kwargs=kwargs, callback=callback, workers=workers, **options)
    pb = Problem("least_squares", lambda x, *a: fun(x, *a, **kwargs), x0, args)
    shape = pb.shape
    n = int(np.prod(shape))
    lim = bound_arrays(bounds, n, pairs=False)

    def residuals(x, *params):
        return np.reshape(pb(np.reshape(x, shape), params), (-1,))

    cost = cost_function(residuals, loss, f_scale)
    residual = hold_active(_gradient(cost), lim)

    def solve(x0, *params):
        user_args = pb.user_args_of(params)
        user_jac = plain_callable(jac, "least_squares", "jac") if callable(jac) else None
        j = (lambda x: user_jac(x, *user_args, **kwargs)) if user_jac is not None else jac
        res = so.least_squares(lambda x: np.asarray(residuals(x, *params)), x0, jac=j, bounds=bounds, method=method,
                               jac_sparsity=jac_sparsity, callback=plain_callable(callback, "least_squares", "callback"),
                               workers=workers, **options)
        return res.x, {"success": bool(res.status > 0), "message": res.message, "result": res}

    stack_opts = {k: v for k, v in options.items() if k != "verbose"}
    x, cell = implicit_solution("least_squares", residual, solve, np.ravel(x0), pb.params,
                                _stacked_least_squares(residuals, lim, jac, method, stack_opts),
                                symmetric=lim is None)
    res = copy.copy(cell["info"]["result"])
    res.x = np.reshape(x, shape)
    res.fun = residuals(x, *pb.params)
    res.cost = cost(x, *pb.params)
    res.jac = jacfwd(lambda x: residuals(x, *pb.params))(x)
    res.grad = _gradient(cost)(x, *pb.params)
    return per_element(res, x, "least_squares")


def _n_params(f: Callable) -> int:
    sig = inspect.signature(f)
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        raise ValueError("Unable to determine number of fit parameters.")
    return len(sig.parameters) - 1


def curve_fit(f: Callable, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None,
              bounds=(-np.inf, np.inf), method=None, jac=None, *, full_output=False, nan_policy=None, **kwargs):
    """``scipy.optimize.curve_fit``; ``popt`` and ``pcov`` are differentiable in
    ``xdata``, ``ydata``, ``sigma``, ``p0``-independent, and in any traced value
    ``f`` closes over.  Inside a transform ``pcov`` has SciPy's value and the
    derivative of ``inv(JᵀJ)`` (times the residual variance unless
    ``absolute_sigma``) with npfunc's exact Jacobian ``J``."""
    if not current_stack():
        return so.curve_fit(f, xdata, ydata, p0=p0, sigma=sigma, absolute_sigma=absolute_sigma,
                            check_finite=check_finite, bounds=bounds, method=method, jac=jac,
                            full_output=full_output, nan_policy=nan_policy, **kwargs)
    if nan_policy == "omit":
        raise UnsupportedSolverError("curve_fit: nan_policy='omit' cannot be differentiated; drop the NaNs first")
    p0 = np.ones(_n_params(f)) if p0 is None else p0
    if np.ndim(p0) == 0:
        p0 = np.reshape(p0, (1,))
    n = int(np.size(p0))
    f_conv, consts = closure_convert(lambda xd, *p: f(xd, *p), xdata, *[p0[i] for i in range(n)])
    two_d = sigma is not None and np.ndim(sigma) == 2

    def weighted(p, xd, yd, sg, *cs):
        r = f_conv(xd, *[p[i] for i in range(n)], *cs) - yd
        if sg is None:
            return np.reshape(r, (-1,))
        if two_d:
            return np.linalg.solve(np.linalg.cholesky(sg), np.reshape(r, (-1,)))
        return np.reshape(r / sg, (-1,))

    pb = Problem("curve_fit", weighted, p0, (xdata, ydata, sigma) + tuple(consts))
    lim = bound_arrays(bounds, n, pairs=False)

    def residuals(p, *params):
        return pb(p, params)

    cost = cost_function(residuals, "linear", 1.0)
    residual = hold_active(_gradient(cost), lim)

    def solve(p0, *params):
        xd, yd, sg = pb.user_args_of(params)[:3]
        cs = pb.user_args_of(params)[3:]
        fp = (lambda x, *p: f_conv(x, *p, *cs)) if consts else f
        j = plain_callable(jac, "curve_fit", "jac") if callable(jac) else jac
        popt, pcov, info, mesg, ier = so.curve_fit(fp, xd, yd, p0=p0, sigma=sg, absolute_sigma=absolute_sigma,
                                                   check_finite=check_finite, bounds=bounds, method=method, jac=j,
                                                   full_output=True, nan_policy=nan_policy, **kwargs)
        return popt, {"success": ier in (1, 2, 3, 4), "message": mesg,
                      "result": (pcov, info, mesg, ier)}

    stack_opts = {k: kwargs[k] for k in ("ftol", "xtol", "gtol", "max_nfev") if k in kwargs}
    x, cell = implicit_solution("curve_fit", residual, solve, np.asarray(p0, dtype=float)
                                if not isinstance(p0, Tracer) else p0, pb.params,
                                _stacked_least_squares(residuals, lim, "2-point",
                                                       "trf" if method in (None, "lm") else method, stack_opts),
                                symmetric=lim is None)
    popt = x
    pcov = _pcov(residuals, popt, pb.params, absolute_sigma, cell["info"])
    if not full_output:
        return popt, pcov
    _, info, mesg, ier = cell["info"]["result"] if isinstance(cell["info"]["result"], tuple) else (
        None, {}, cell["info"]["message"], 1)
    info = dict(info)
    info["fvec"] = residuals(popt, *pb.params)
    return popt, pcov, info, mesg, ier


def _pcov(residuals, popt, params, absolute_sigma: bool, info):
    from ...api.jacobians import jacfwd
    from ...primitives.elementwise.arithmetic import stop_gradient

    j = jacfwd(lambda p: residuals(p, *params))(popt)
    m, n = j.shape
    pcov = np.linalg.inv(j.T @ j)
    if not absolute_sigma:
        r = residuals(popt, *params)
        pcov = pcov * ((r ** 2).sum() / (m - n)) if m > n else pcov * np.inf
    result = info.get("result")
    if isinstance(result, tuple):  # a single solve: SciPy's value, the formula's derivative
        scipy_pcov = np.asarray(result[0])
        if np.all(np.isfinite(scipy_pcov)):
            return scipy_pcov + (pcov - stop_gradient(pcov))
        return scipy_pcov
    return pcov
