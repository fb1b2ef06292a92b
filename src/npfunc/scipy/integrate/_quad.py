"""Quadrature of functions: ``quad``, ``quad_vec``, ``fixed_quad``.

``fixed_quad`` is a fixed Gauss-Legendre sum, written with NumPy calls, so
it is differentiable as it stands.  ``quad`` and ``quad_vec`` are adaptive:
the value is SciPy's, and ``∫ₐᵇ f(x, θ) dx`` is a primitive whose rules are

* limits (fundamental theorem): ``∂/∂b = f(b)``, ``∂/∂a = -f(a)`` (0 for an
  infinite limit);
* parameters (under the integral): ``∫ ∂f/∂θ ṫ dx`` and ``∫ gᵀ ∂f/∂θ dx``,
  each one more adaptive ``quad_vec`` with the user's ``epsabs``/``epsrel``
  and ``points``, whose integrand is npfunc's JVP / VJP of ``f`` -- again
  this primitive, so higher derivatives follow.

Under ``vmap`` the batch is one ``quad_vec`` of the stacked integrand
(batched limits are mapped to [0, 1] first).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...api._common import tree_flatten, tree_unflatten
from ...api.closure import closure_convert
from ...core.context import current_stack, describe_stack
from ...core.primitive import Primitive
from ...core.tracer import Tracer
from ...core.values import shape_of
from ...core.zeros import zero
from ..optimize._implicit import batch_size, front, is_float_leaf
from ._ode import UnsupportedOdeError


class _Integrand:
    """``f(x, *params) -> flat vector`` with SciPy's quadrature settings."""

    def __init__(self, f, size: int, family: str, settings: dict, cell: dict) -> None:
        self.f, self.size, self.family, self.settings, self.cell = f, size, family, settings, cell

    def derived(self, f, size) -> "_Integrand":
        s = {k: v for k, v in self.settings.items() if k in ("epsabs", "epsrel", "limit", "points")}
        s["norm"] = "max"
        return _Integrand(f, size, "quad_vec", s, {})


def _integral(ig: _Integrand) -> Primitive:
    def impl(a, b, *params):
        import scipy.integrate as si

        a, b = float(a), float(b)
        f = ig.f
        if ig.family == "quad":
            out = si.quad(lambda x: float(np.asarray(f(x, *params))[0]), a, b, full_output=1, **ig.settings)
            ig.cell["result"] = out
            return np.array([out[0]])
        out = si.quad_vec(lambda x: np.asarray(f(x, *params), dtype=float), a, b, full_output=True, **ig.settings)
        ig.cell["result"] = out
        return np.asarray(out[0], dtype=float).reshape(ig.size)

    def jvp(primals, tangents, out):
        from ...api.forward import jvp as fwd

        a, b, *ps = primals
        ta, tb, *tps = tangents
        t_out = zero
        if tb is not zero and np.isfinite(_value(b)):
            t_out = ig.f(b, *ps) * tb
        if ta is not zero and np.isfinite(_value(a)):
            term = -ig.f(a, *ps) * ta
            t_out = term if t_out is zero else t_out + term
        live = [i for i, t in enumerate(tps) if t is not zero and is_float_leaf(ps[i])]
        if live:
            k = len(ps)

            def tangent_integrand(x, *args):
                base, tl = list(args[:k]), args[k:]

                def f_of(*sel):
                    full = list(base)
                    for i, v in zip(live, sel):
                        full[i] = v
                    return ig.f(x, *full)

                return fwd(f_of, tuple(base[i] for i in live), tuple(tl))[1]

            term = _integral(ig.derived(tangent_integrand, ig.size)).bind(a, b, *ps, *[tps[i] for i in live])
            t_out = term if t_out is zero else t_out + term
        return t_out

    def vjp(g, primals, out, needs):
        from ...api.reverse import vjp as rev

        a, b, *ps = primals
        result = [zero] * len(primals)
        if needs[1] and np.isfinite(_value(b)):
            result[1] = (g * ig.f(b, *ps)).sum()
        if needs[0] and np.isfinite(_value(a)):
            result[0] = -(g * ig.f(a, *ps)).sum()
        live = [i for i, p in enumerate(ps) if needs[2 + i] and is_float_leaf(p)]
        if live:
            shapes = [tuple(shape_of(ps[i])) for i in live]
            sizes = [int(np.prod(s)) for s in shapes]
            k = len(ps)

            def cotangent_integrand(x, *args):
                base, gc = list(args[:k]), args[k]

                def f_of(*sel):
                    full = list(base)
                    for i, v in zip(live, sel):
                        full[i] = v
                    return ig.f(x, *full)

                _, pull = rev(f_of, *[base[i] for i in live])
                return np.concatenate([np.reshape(c, (-1,)) for c in pull(gc)])

            flat = _integral(ig.derived(cotangent_integrand, sum(sizes))).bind(a, b, *ps, g)
            start = 0
            for i, size, shape in zip(live, sizes, shapes):
                result[2 + i] = np.reshape(flat[start:start + size], shape)
                start += size
        return tuple(result)

    def batch(vals, dims):
        size = batch_size(vals, dims)
        a, b, *ps = vals
        da, db, *dps = dims
        ps_f = front(ps, dps, size)
        n = ig.size
        from ...api.vmap import vmap

        if da is None and db is None:
            def f_s(x, *pf):
                return np.reshape(vmap(ig.f, in_dims=(None,) + (0,) * len(pf))(x, *pf), (size * n,))

            stacked = _Integrand(f_s, size * n, "quad_vec", ig.derived(None, 0).settings, ig.cell)
            return np.reshape(_integral(stacked).bind(a, b, *ps_f), (size, n)), 0
        if not (np.all(np.isfinite(_value(a))) and np.all(np.isfinite(_value(b)))):
            raise UnsupportedOdeError(
                f"{describe_stack()}: vmap over an infinite integration limit, the other limit batched: the "
                "change of variable onto [0, 1] that batches the limits needs both finite. Shift the variable so "
                "the limits do not depend on the batch: quad(lambda t: f(a + t), 0, np.inf) for "
                "quad(f, a, np.inf) (and quad(lambda t: f(b - t), 0, np.inf) for quad(f, -np.inf, b)); the "
                "batched a is then a value inside the integrand, which vmap supports")
        # batched limits: x = a + (b - a) u on [0, 1]
        a_f, b_f = front([a, b], [da, db], size)

        def f_u(u, lo, hi, *pf):
            return ig.f(lo + (hi - lo) * u, *pf) * (hi - lo)

        def f_s(u, lo, hi, *pf):
            return np.reshape(vmap(f_u, in_dims=(None, 0, 0) + (0,) * len(pf))(u, lo, hi, *pf), (size * n,))

        settings = {k: v for k, v in ig.derived(None, 0).settings.items() if k != "points"}
        stacked = _Integrand(f_s, size * n, "quad_vec", settings, ig.cell)
        return np.reshape(_integral(stacked).bind(0.0, 1.0, a_f, b_f, *ps_f), (size, n)), 0

    return Primitive("integral", impl, jvp=jvp, vjp=vjp, batch=batch, register=False)


def _value(x):
    from ...api.closure import concrete_example

    return np.asarray(concrete_example(x), dtype=float)


def _prepare(func: Callable, a, b, args, family: str, settings: dict, name: str):
    """(integrand, params, output shape) with traced args and closures as params."""
    args = args if isinstance(args, tuple) else (args,)
    leaves, spec = tree_flatten(args)
    kinds = [isinstance(x, (Tracer, np.ndarray, np.generic)) for x in leaves]
    statics = [x for x, k in zip(leaves, kinds) if not k]
    arrays = [x for x, k in zip(leaves, kinds) if k]

    def call(x, *arr):
        it_a, it_s = iter(arr), iter(statics)
        return func(x, *tree_unflatten(spec, [next(it_a) if k else next(it_s) for k in kinds]))

    va, vb = _value(a), _value(b)
    x_example = np.float64(0.5 * (va + vb) if np.isfinite(va) and np.isfinite(vb) else
                           (va if np.isfinite(va) else vb if np.isfinite(vb) else 0.0))
    converted, consts = closure_convert(call, x_example, *arrays)
    params = list(arrays) + list(consts)
    from ...api.closure import concrete_example

    probe = np.asarray(converted(x_example, *[concrete_example(p) for p in params]))
    if family == "quad" and probe.size != 1:
        raise ValueError(f"{name}: the integrand must return a scalar")
    if np.iscomplexobj(probe):
        raise UnsupportedOdeError(f"{describe_stack()}: {name} of a complex integrand cannot be differentiated; "
                                  "integrate the real and imaginary parts separately")
    shape = probe.shape

    def flat(x, *ps):
        return np.reshape(converted(x, *ps), (-1,))

    return _Integrand(flat, int(np.prod(shape)), family, settings, {}), params, shape


def quad(func: Callable, a, b, args=(), full_output=0, epsabs=1.49e-8, epsrel=1.49e-8, limit=50, points=None,
         weight=None, wvar=None, wopts=None, maxp1=50, limlst=50, complex_func=False):
    """``scipy.integrate.quad``; inside a transform the integral is
    differentiable in ``a``, ``b``, ``args`` and closed-over traced values
    (``weight``/``complex_func`` are not supported there)."""
    import scipy.integrate as si

    if not current_stack():
        return si.quad(func, a, b, args=args, full_output=full_output, epsabs=epsabs, epsrel=epsrel, limit=limit,
                       points=points, weight=weight, wvar=wvar, wopts=wopts, maxp1=maxp1, limlst=limlst,
                       complex_func=complex_func)
    if weight is not None or complex_func:
        raise UnsupportedOdeError(f"{describe_stack()}: quad with weight= or complex_func=True cannot be "
                                  "differentiated; write the weight into the integrand")
    settings = dict(epsabs=epsabs, epsrel=epsrel, limit=limit)
    if points is not None:
        settings["points"] = points
    ig, params, _ = _prepare(func, a, b, args, "quad", settings, "quad")
    if not any(isinstance(v, Tracer) for v in (a, b, *params)):
        # a transform is live but nothing here is traced (a jit recording with static
        # arguments, a grad in another variable): SciPy as written, its Python float
        return si.quad(func, a, b, args=args, full_output=full_output, epsabs=epsabs, epsrel=epsrel, limit=limit,
                       points=points, weight=weight, wvar=wvar, wopts=wopts, maxp1=maxp1, limlst=limlst,
                       complex_func=complex_func)
    # a NumPy scalar, as close as a traced value comes to SciPy's float: immutable, so
    # ``v += c`` rebinds v instead of updating every name bound to the integral
    value = np.reshape(_integral(ig).bind(a, b, *params), (1,))[0]
    result = ig.cell.get("result", (np.nan, np.nan, {}))
    if full_output:
        return (value,) + tuple(result[1:])
    return value, result[1]


def quad_vec(f: Callable, a, b, epsabs=1e-200, epsrel=1e-08, norm="2", cache_size=100e6, limit=10000, workers=1,
             points=None, quadrature=None, full_output=False, *, args=()):
    """``scipy.integrate.quad_vec``; inside a transform the (array) integral is
    differentiable in ``a``, ``b``, ``args`` and closed-over traced values."""
    import scipy.integrate as si

    if not current_stack():
        return si.quad_vec(f, a, b, epsabs=epsabs, epsrel=epsrel, norm=norm, cache_size=cache_size, limit=limit,
                           workers=workers, points=points, quadrature=quadrature, full_output=full_output, args=args)
    settings = dict(epsabs=epsabs, epsrel=epsrel, norm=norm, cache_size=cache_size, limit=limit,
                    quadrature=quadrature)
    if points is not None:
        settings["points"] = points
    ig, params, shape = _prepare(f, a, b, args, "quad_vec", settings, "quad_vec")
    value = np.reshape(_integral(ig).bind(a, b, *params), shape)
    if shape == ():  # SciPy's np.float64 for a scalar integrand: a scalar, not a 0-d array
        value = np.reshape(value, (1,))[0]
    result = ig.cell.get("result", (None, np.nan))
    if full_output:
        return (value,) + tuple(result[1:])
    return value, result[1]


def fixed_quad(func: Callable, a, b, args=(), n=5):
    """``scipy.integrate.fixed_quad``: Gauss-Legendre of order ``n``; the same
    sum as SciPy's, written with NumPy calls, so differentiable in ``a``, ``b``
    and whatever ``func`` reads (``func`` must accept an array of nodes)."""
    from scipy.special import roots_legendre

    x, w = roots_legendre(n)
    x = np.real(x)
    if np.isinf(_value(a)) or np.isinf(_value(b)):
        raise ValueError("Gaussian quadrature is only available for finite limits.")
    y = (b - a) * (x + 1) / 2.0 + a
    return (b - a) / 2.0 * np.sum(w * func(y, *(args if isinstance(args, tuple) else (args,))), axis=-1), None
