"""Incomplete gamma and beta functions (and ``stdtr``, ``poch``) with
derivatives in *every* argument, to any order.

* ``gammainc(a, x)``, ``gammaincc(a, x)``, ``betainc(a, b, x)``,
  ``betaincc(a, b, x)``, ``stdtr(df, t)``, ``poch(z, m)``: values from
  ``scipy.special`` itself (calling ``scipy.special.gammainc(a, x)`` on a
  traced value dispatches here once SciPy is imported).
* Derivatives in ``x`` (``t``) are closed forms (the densities).
* Derivatives in the shape parameters ``a``, ``b``, ``df`` have no closed
  form.  They come from two primitives, ``gammainc_shape_derivative(a, x,
  order=k)`` = d^k P / da^k and ``betainc_shape_derivative(a, b, x, da=i,
  db=j)`` = d^(i+j) I / da^i db^j, evaluated by the series / continued
  fractions in truncated Taylor arithmetic (``incomplete_series``).
  Their own derivatives are the next order up (shape) or closed-form shape
  derivatives of the density (``x``), so ``grad``, ``hessian`` and any
  nesting work.

Conventions: derivatives are 0 where the function is constant (``x = 0``,
``x = inf``, ``x`` at 0 or 1 for ``betainc``) and NaN where it is (invalid
parameters).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from ...core.dispatch import implements
from ...core.primitive import REGISTRY, Primitive, Sample
from ...core.values import dtype_of
from ...core.zeros import zero
from . import functions as _special
from ..families import elementwise_batch, fit_cotangent, fit_tangent, nary
from ..sampling import FLOATS, array
from .functions import betaln, digamma, gammaln, polygamma, xlog1py, xlogy
from .incomplete_series import betainc_shape_derivative as _beta_shape
from .incomplete_series import gammainc_shape_derivative as _gamma_shape


def _sc():
    import scipy.special as sc

    return sc


def _out_dtype(*args):
    return np.result_type(*(dtype_of(a) if hasattr(a, "dtype") else type(a)(0) for a in args), np.float32)


def _ufunc_impl(name):
    def impl(*args):
        return getattr(_sc(), name)(*args)

    impl.__name__ = name
    return impl


def _elementwise(name, impl, partials, samples, notes=""):
    """A broadcasting elementwise primitive with static params; ``partials[i](*args,
    **params)`` is d out / d args[i] (``None``: not differentiable in it)."""

    def jvp(primals, tangents, out, **params):
        total = zero
        for rule, t in zip(partials, tangents):
            if t is not zero and rule is not None:
                term = t * rule(*primals, **params)
                total = term if total is zero else total + term
        return zero if total is zero else fit_tangent(total, out)

    def vjp(g, primals, out, needs, **params):
        return tuple(fit_cotangent(g * rule(*primals, **params), p) if need and rule is not None else zero
                     for rule, need, p in zip(partials, needs, primals))

    prim = Primitive(name, impl, jvp=jvp, vjp=vjp, samples=samples, notes=notes)
    prim.batch = elementwise_batch(prim)
    return prim


def _inside(x, lo, hi):
    """(mask of lo < x < hi, x with the points outside replaced by a safe interior value)."""
    mask = (x > lo) & (x < hi)
    return mask, np.where(mask, x, 0.5 if hi == 1 else 1.0)


# ---- shape derivatives of exp(L): Leibniz / Faa di Bruno recursion ---------------------------

def _exp_partials(density, dlog, i, j):
    """d^i/da^i d^j/db^j of ``density = exp(L)`` given ``dlog(p, q)`` = the
    partials of L (p + q >= 1): E_(i+1,j) = sum C(i,p) C(j,q) L_(p+1,q) E_(i-p,j-q)."""
    cache = {(0, 0): density}

    def e(i, j):
        if (i, j) in cache:
            return cache[(i, j)]
        total = 0
        if i:
            for p in range(i):
                for q in range(j + 1):
                    total = total + math.comb(i - 1, p) * math.comb(j, q) * dlog(p + 1, q) * e(i - 1 - p, j - q)
        else:
            for q in range(j):
                total = total + math.comb(j - 1, q) * dlog(0, q + 1) * e(0, j - 1 - q)
        cache[(i, j)] = total
        return total

    return e(i, j)


def gamma_density_shape_derivative(a, x, order):
    """d^order/da^order of x^(a-1) e^-x / Gamma(a) (= dP(a, x)/dx); 0 for x <= 0."""
    if order == 0:
        return np.exp(xlogy(a - 1, x) - x - gammaln(a))
    inside, xs = _inside(x, 0, np.inf)
    dens = np.exp(xlogy(a - 1, xs) - xs - gammaln(a))
    logx = np.log(xs)

    def dlog(p, q):
        return logx - digamma(a) if p == 1 else -polygamma(p - 1, a)

    return np.where(inside, _exp_partials(dens, dlog, order, 0), 0.0)


def beta_density_shape_derivative(a, b, x, da, db):
    """d^da/da^da d^db/db^db of x^(a-1) (1-x)^(b-1) / B(a, b) (= dI_x(a, b)/dx); 0 outside 0 < x < 1."""
    inside, xs = _inside(x, 0, 1)
    if da == db == 0:
        return np.exp(xlogy(a - 1, x) + xlog1py(b - 1, -x) - betaln(a, b))
    dens = np.exp(xlogy(a - 1, xs) + xlog1py(b - 1, -xs) - betaln(a, b))
    logs = {}

    def dlog(p, q):
        if (p, q) not in logs:
            value = polygamma(p + q - 1, a + b) if p + q > 1 else digamma(a + b)
            if q == 0:
                value = value - (polygamma(p - 1, a) if p > 1 else digamma(a) - np.log(xs))
            if p == 0:
                value = value - (polygamma(q - 1, b) if q > 1 else digamma(b) - np.log1p(-xs))
            logs[(p, q)] = value
        return logs[(p, q)]

    return np.where(inside, _exp_partials(dens, dlog, da, db), 0.0)


# ---- the shape-derivative primitives ----------------------------------------------------------

def _gamma_shape_impl(a, x, *, order):
    return _gamma_shape(a, x, order).astype(_out_dtype(a, x), copy=False)


def _gamma_shape_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt, (0.4, 4)), array(rng, (3,), dt, (0.2, 6)), order=1),
                Sample(array(rng, (3,), dt, (0.5, 3)), array(rng, (3,), dt, (3.5, 9)), order=1,
                       label="continued fraction"),
                Sample(array(rng, (3,), dt, (0.5, 3)), array(rng, (2, 1), dt, (0.2, 5)), order=2)]
    out.append(Sample(np.array([30.0, 2.5]), np.array([31.5, 40.0]), order=1, label="large arguments"))
    out.append(Sample(np.array([1.5, 2.0, 0.7]), np.array([0.0, 1e-3, 60.0]), argnums=(0,), order=1,
                      label="x = 0, tiny, huge"))
    return out


_gammainc_shape = _elementwise(
    "gammainc_shape_derivative", _gamma_shape_impl,
    (lambda a, x, *, order: _gammainc_shape.bind(a, x, order=order + 1),
     lambda a, x, *, order: gamma_density_shape_derivative(a, x, order)),
    _gamma_shape_samples,
    notes="d^order/da^order gammainc(a, x): power series / continued fraction in Taylor arithmetic")


def gammainc_shape_derivative(a, x, order=1):
    """d^order/da^order of ``scipy.special.gammainc(a, x)`` (order >= 1)."""
    return _gammainc_shape.bind(a, x, order=int(order))


def _beta_shape_impl(a, b, x, *, da, db):
    return _beta_shape(a, b, x, da, db).astype(_out_dtype(a, b, x), copy=False)


def _beta_shape_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3,), dt, (0.5, 4)), array(rng, (3,), dt, (0.5, 4)),
                       array(rng, (2, 3), dt, (0.05, 0.95)), da=1, db=0),
                Sample(array(rng, (3,), dt, (0.5, 4)), array(rng, (2, 1), dt, (0.5, 4)),
                       array(rng, (3,), dt, (0.05, 0.95)), da=0, db=1)]
    out.append(Sample(array(rng, (3,), domain=(0.5, 3)), array(rng, (3,), domain=(0.5, 3)),
                      array(rng, (3,), domain=(0.1, 0.9)), da=1, db=1, label="mixed"))
    out.append(Sample(np.array([40.0, 2.0, 0.5]), np.array([30.0, 0.5, 8.0]), np.array([0.6, 0.999, 0.02]),
                      da=2, db=0, label="large and near-boundary"))
    return out


_betainc_shape = _elementwise(
    "betainc_shape_derivative", _beta_shape_impl,
    (lambda a, b, x, *, da, db: _betainc_shape.bind(a, b, x, da=da + 1, db=db),
     lambda a, b, x, *, da, db: _betainc_shape.bind(a, b, x, da=da, db=db + 1),
     lambda a, b, x, *, da, db: beta_density_shape_derivative(a, b, x, da, db)),
    _beta_shape_samples,
    notes="d^(da+db)/da^da db^db betainc(a, b, x): continued fraction in bivariate Taylor arithmetic")


def betainc_shape_derivative(a, b, x, da=1, db=0):
    """d^(da+db)/da^da db^db of ``scipy.special.betainc(a, b, x)`` (da + db >= 1)."""
    return _betainc_shape.bind(a, b, x, da=int(da), db=int(db))


# ---- the functions -------------------------------------------------------------------------------

_DEFS: dict = {}


def _public(name, fn):
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values, differentiable in every argument."
    _DEFS[name] = fn
    return fn


def _gamma_da(a, x):
    return gammainc_shape_derivative(a, x, 1)


def _gamma_dx(a, x):
    return gamma_density_shape_derivative(a, x, 0)


def _gamma_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt, (0.4, 4)), array(rng, (3,), dt, (0.2, 6))),
                Sample(array(rng, (3,), dt, (0.5, 3)), array(rng, (2, 1), dt, (3.5, 9)))]
    out.append(Sample(2.5, array(rng, (3,), domain=(0.5, 4)), label="python scalar a"))
    out.append(Sample(array(rng, (3,), domain=(0.5, 4)), np.array([0.0, 1.0, 80.0]), argnums=(0,),
                      label="x = 0 and far tail"))
    return out


def _gammainc_prim(name, sign):
    return _public(name, nary(
        name, _ufunc_impl(name),
        jvps=(lambda t, a, x, out: sign * t * _gamma_da(a, x), lambda t, a, x, out: sign * t * _gamma_dx(a, x)),
        vjps=(lambda g, a, x, out: sign * g * _gamma_da(a, x), lambda g, a, x, out: sign * g * _gamma_dx(a, x)),
        samples=_gamma_samples,
        notes=("d/da by series / continued fraction; d/dx the gamma density" if sign > 0 else
               "minus the derivatives of gammainc")))


def _beta_partials(sign):
    return (lambda a, b, x: sign * betainc_shape_derivative(a, b, x, 1, 0),
            lambda a, b, x: sign * betainc_shape_derivative(a, b, x, 0, 1),
            lambda a, b, x: sign * beta_density_shape_derivative(a, b, x, 0, 0))


def _beta_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3,), dt, (0.5, 4)), array(rng, (2, 3), dt, (0.5, 4)),
                       array(rng, (3,), dt, (0.05, 0.95)))]
    out.append(Sample(1.5, array(rng, (3,), domain=(0.5, 3)), array(rng, (2, 1), domain=(0.1, 0.9)),
                      label="python scalar a"))
    out.append(Sample(array(rng, (3,), domain=(0.5, 3)), array(rng, (3,), domain=(0.5, 3)),
                      np.array([0.0, 0.5, 1.0]), argnums=(0, 1), label="x at 0 and 1"))
    return out


def _betainc_prim(name, sign):
    p = _beta_partials(sign)
    fn = nary(name, _ufunc_impl(name),
              jvps=tuple((lambda t, a, b, x, out, r=r: t * r(a, b, x)) for r in p),
              vjps=tuple((lambda g, a, b, x, out, r=r: g * r(a, b, x)) for r in p),
              samples=_beta_samples, notes="d/da, d/db by continued fraction; d/dx the beta density")
    return _public(name, fn)


def _define(name, build):
    """Our definition, unless the special-function module registered ``name`` meanwhile
    (primitive names are unique: defining it twice would break ``import npfunc``)."""
    if name in REGISTRY:
        return getattr(_special, name)
    return build()


gammainc = _define("gammainc", lambda: _gammainc_prim("gammainc", 1.0))
gammaincc = _define("gammaincc", lambda: _gammainc_prim("gammaincc", -1.0))
betainc = _define("betainc", lambda: _betainc_prim("betainc", 1.0))
betaincc = _define("betaincc", lambda: _betainc_prim("betaincc", -1.0))

# ---- Student t cdf: stdtr(df, t) = 1/2 + sign(t) (1/2 - I_x(df/2, 1/2) / 2), x = df / (df + t^2)


def _stdtr_dt(df, t):
    return np.exp(gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi)
                  - (df + 1) / 2 * np.log1p(t * t / df))


def _stdtr_ddf(df, t):
    """-sign(t)/4 dI_x(df/2, 1/2)/da - t/2 R, with R the x-term written so it stays smooth at t = 0;
    for |t| small dI_x/da is taken as -dI_y(1/2, df/2)/db, y = t^2 / (df + t^2) (no cancellation).
    Exactly at t = 0 (where sign(t) has no derivative) it is t times its slope there,
    d f(0; df)/d df, so that its derivative in t, the mixed second derivative, is exact."""
    zero = t == 0
    general = _stdtr_ddf_off_zero(df, np.where(zero, 1.0, t))
    slope = _stdtr_dt(df, 0.0) * 0.5 * (digamma((df + 1) / 2) - digamma(df / 2) - 1 / df)
    return np.where(zero, t * slope, general)


def _stdtr_ddf_off_zero(df, t):
    s = df + t * t
    x, y = df / s, t * t / s
    near = x > 0.5
    via_x = betainc_shape_derivative(df / 2, 0.5, np.where(near, 0.5, x), 1, 0)
    via_y = -betainc_shape_derivative(0.5, df / 2, np.where(near, y, 0.5), 0, 1)
    di_da = np.where(near, via_y, via_x)
    r = np.exp((df / 2 - 1) * (np.log(df) - np.log(s)) - 1.5 * np.log(s) - betaln(df / 2, 0.5))
    return -0.25 * np.sign(t) * di_da - 0.5 * t * r


def _stdtr_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3,), dt, (0.8, 12)), array(rng, (2, 3), dt, (-4, 4))))
    out.append(Sample(np.array([3.0, 30.0, 0.5]), np.array([1e-3, -0.2, 40.0]), label="near 0, far tail"))
    out.append(Sample(np.array([2.5, 7.0]), np.array([0.0, 0.0]), label="t = 0 exactly (mixed second derivative)"))
    out.append(Sample(4.0, array(rng, (3,), domain=(-3, 3)), label="python scalar df"))
    return out


stdtr = _define("stdtr", lambda: _public("stdtr", nary(
    "stdtr", _ufunc_impl("stdtr"),
    jvps=(lambda t_, df, t, out: t_ * _stdtr_ddf(df, t), lambda t_, df, t, out: t_ * _stdtr_dt(df, t)),
    vjps=(lambda g, df, t, out: g * _stdtr_ddf(df, t), lambda g, df, t, out: g * _stdtr_dt(df, t)),
    samples=_stdtr_samples,
    notes="d/dt the t density; d/ddf through the incomplete beta function's shape derivatives")))

# ---- Pochhammer symbol (for the Student t log-density) -------------------------------------------

if "poch" in REGISTRY:  # registered by the special-function module meanwhile: use it
    poch = _special.poch  # type: ignore[attr-defined]
else:
    def _poch_dz(z, m, out):
        return out * (digamma(z + m) - digamma(z))

    def _poch_dm(z, m, out):
        return out * digamma(z + m)

    def _poch_samples(rng):
        return [Sample(array(rng, (2, 3), dt, (0.5, 4)), array(rng, (3,), dt, (-0.4, 2))) for dt in FLOATS] + \
            [Sample(array(rng, (3,), domain=(0.5, 4)), 0.5, label="python scalar m")]

    poch = _public("poch", nary("poch", _ufunc_impl("poch"),
                                jvps=(lambda t, z, m, out: t * _poch_dz(z, m, out),
                                      lambda t, z, m, out: t * _poch_dm(z, m, out)),
                                vjps=(lambda g, z, m, out: g * _poch_dz(z, m, out),
                                      lambda g, z, m, out: g * _poch_dm(z, m, out)),
                                samples=_poch_samples))


# ---- dispatch from scipy.special ---------------------------------------------------------------

def register_scipy_special(sc) -> None:
    """Route ``scipy.special.<name>(traced...)`` to the functions above."""
    for name, fn in _DEFS.items():
        ufunc = getattr(sc, name, None)
        if ufunc is not None:
            fn.primitive.impl = ufunc
            implements(ufunc)(fn)


if "module" in getattr(_special, "_SCIPY", {}):
    register_scipy_special(_special._SCIPY["module"])
elif hasattr(_special, "_UFUNC_DEFS"):  # registered with the others when scipy.special is imported
    _special._UFUNC_DEFS.update({k: v for k, v in _DEFS.items() if k not in _special._UFUNC_DEFS})
elif "scipy.special" in sys.modules:
    register_scipy_special(sys.modules["scipy.special"])
