"""Gamma-function relatives and the zeta function of ``scipy.special``:
``gammasgn``, ``rgamma``, ``loggamma``, ``binom`` and ``zeta`` (through
SciPy's ufuncs ``_riemann_zeta`` and ``_zeta``, which ``scipy.special.zeta``
calls, so ``scipy.special.zeta(x)`` works on traced values unchanged).

Conventions and stable forms:

* ``gammasgn`` is piecewise constant: no derivative.
* ``rgamma = 1/Gamma`` is entire; its derivative ``-rgamma(x) psi(x)`` is
  0 * inf at the poles of Gamma, so for ``x < 1/2`` it is written with the
  reflection formula, ``Gamma(1-x) cos(pi x) - rgamma(x) psi(1-x)``:
  finite at x = 0, -1, -2, ... to every order.  Complex input: first
  derivative (SciPy's polygamma is real-only).
* ``loggamma``: derivative ``digamma`` (complex too; first order for complex).
* ``binom(n, k)``: derivatives through digamma; they are NaN where ``n - k``
  is a negative integer and ``binom`` vanishes by a cancelling pole
  (``scipy.special.comb`` is 0 there and has derivative 0).
* ``zeta(x, q)``: d/dq = ``-x zeta(x + 1, q)``; d/dx has no closed form and
  comes from ``zeta_x_derivative(x, q, order)`` (Euler--Maclaurin in Taylor
  arithmetic, ``zeta_series``), defined for ``q > 0`` and the x where SciPy
  defines the value (Hurwitz: x > 1; Riemann: every x != 1, with the
  reflection formula for x < -1/2).  Complex x: not differentiable (error).

>>> import npfunc, scipy.special as sc
>>> float(npfunc.grad(sc.rgamma)(-2.0))   # at a pole of Gamma: (-1)^n n!
2.0
>>> round(float(npfunc.grad(sc.zeta)(2.0)), 6)
-0.937548
"""
from __future__ import annotations

import math

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of
from ...core.zeros import zero as zero_
from ..families import conj, elementwise_batch, fit_cotangent, fit_tangent, nary, nondiff, unary
from ..sampling import FLOATS, array, binary_samples, unary_samples
from ._lazy import lazy_ufunc, register_when_imported
from .functions import digamma, gamma
from .zeta_series import zeta_x_derivative as _zeta_x_derivative

DEFS: dict = {}
_LOG_2PI = math.log(2 * math.pi)


def _points(values, label, dtypes=FLOATS, **kw):
    return [Sample(np.array(values, dtype=dt), label=label, **kw) for dt in dtypes]


def _with(*builders):
    def make(rng):
        return [s for b in builders for s in b(rng)]

    return make


def _complex(domain):
    def make(rng):
        z = array(rng, (3,), domain=domain) + 1j * array(rng, (3,), domain=(-1.0, 1.0))
        return [Sample(z, label="complex")]

    return make


# ---- gamma relatives --------------------------------------------------------------------------

gammasgn = nondiff("gammasgn", lazy_ufunc("gammasgn"),
                   samples=lambda rng: _points([-2.5, -0.5, 0.5, 3.0], "signs"),
                   notes="piecewise constant: no derivative")
DEFS["gammasgn"] = gammasgn


def _rgamma_deriv(x, out):
    if dtype_of(x).kind == "c":
        return -out * digamma(x)
    left = x < 0.5
    xl = np.where(left, x, 0.0)          # reflection side, safe where not taken
    xr = np.where(left, 1.0, x)
    reflected = gamma(1 - xl) * np.cos(np.pi * xl) - rgamma(xl) * digamma(1 - xl)
    return np.where(left, reflected, -rgamma(xr) * digamma(xr))


rgamma = unary("rgamma", lazy_ufunc("rgamma"), deriv=_rgamma_deriv,
               samples=_with(unary_samples(domain=(0.6, 4.0)), unary_samples(domain=(-3.0, 0.4), shapes=((3,),)),
                             lambda rng: _points([0.0, -1.0, -2.0, -3.0], "poles of Gamma"),
                             _complex((0.6, 3.0))),
               notes="derivative Gamma(1-x) cos(pi x) - rgamma(x) psi(1-x) for x < 1/2 (finite at the poles "
                     "of Gamma), -rgamma(x) psi(x) otherwise")
DEFS["rgamma"] = rgamma

loggamma = unary("loggamma", lazy_ufunc("loggamma"), deriv=lambda x, out: digamma(x),
                 samples=_with(unary_samples(domain=(0.3, 6.0)), lambda rng: _points([40.0, 1e3], "large"),
                               _complex((0.5, 4.0))),
                 notes="derivative digamma(x); complex input: first derivative only")
DEFS["loggamma"] = loggamma


def _binom_dn(n, k, out):
    return out * (digamma(n + 1) - digamma(n - k + 1))


def _binom_dk(n, k, out):
    return out * (digamma(n - k + 1) - digamma(k + 1))


binom = nary("binom", lazy_ufunc("binom"),
             jvps=(lambda t, n, k, out: t * _binom_dn(n, k, out), lambda t, n, k, out: t * _binom_dk(n, k, out)),
             vjps=(lambda g, n, k, out: g * _binom_dn(n, k, out), lambda g, n, k, out: g * _binom_dk(n, k, out)),
             samples=binary_samples(domain=(2.0, 6.0), domain_y=(0.2, 1.8), scalar=1.5),
             notes="derivatives through digamma; NaN where n - k is a negative integer (cancelling poles)")
DEFS["binom"] = binom

# ---- zeta -------------------------------------------------------------------------------------------


def _no_complex(x):
    if dtype_of(x).kind == "c":
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.zeta is differentiated for real x only (the derivative in "
            "complex x is not implemented); use real arguments.")


def _zeta_x_impl(x, q, *, order):
    out = _zeta_x_derivative(x, q, order)
    dt = np.result_type(dtype_of(x), dtype_of(q), np.float32)
    return out.astype(dt, copy=False)


def _zeta_x_jvp_rules():
    def dx(x, q, *, order):
        return _zeta_x.bind(x, q, order=order + 1)

    def dq(x, q, *, order):
        # d/dq d^k/dx^k zeta(x, q) = d^k/dx^k (-x zeta(x + 1, q))
        below = hurwitz_zeta(x + 1, q) if order == 1 else _zeta_x.bind(x + 1, q, order=order - 1)
        return -(x * _zeta_x.bind(x + 1, q, order=order) + order * below)

    return dx, dq


def _zeta_x_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (2, 3), dt, (1.5, 5.0)), array(rng, (3,), dt, (0.4, 3.0)), order=1))
    out.append(Sample(np.array([-0.4, 0.3, 0.9, 1.2]), np.array([1.0, 1.0, 2.0, 0.5]), order=1,
                      argnums=(0,), label="x below 1 (Riemann's continuation) and near the pole"))
    out.append(Sample(array(rng, (3,), domain=(1.5, 4.0)), array(rng, (3,), domain=(0.5, 2.0)), order=2))
    return out


def _zeta_x_primitive():
    dx, dq = _zeta_x_jvp_rules()

    def jvp(primals, tangents, out, *, order):
        (x, q), (tx, tq) = primals, tangents
        total = 0
        if tx is not zero_:
            total = total + tx * dx(x, q, order=order)
        if tq is not zero_:
            total = total + tq * dq(x, q, order=order)
        return fit_tangent(total, out)

    def vjp(g, primals, out, needs, *, order):
        x, q = primals
        return (fit_cotangent(g * dx(x, q, order=order), x) if needs[0] else zero_,
                fit_cotangent(g * dq(x, q, order=order), q) if needs[1] else zero_)

    prim = Primitive("zeta_x_derivative", _zeta_x_impl, jvp=jvp, vjp=vjp, samples=_zeta_x_samples,
                     notes="d^order/dx^order zeta(x, q): Euler-Maclaurin in Taylor arithmetic (x >= -1, q > 0)")
    prim.batch = elementwise_batch(prim)
    return prim


_zeta_x = _zeta_x_primitive()


def zeta_x_derivative(x, q, order: int = 1):
    """``d^order/dx^order`` of the Hurwitz zeta function ``zeta(x, q)`` (``order >= 1``)."""
    return _zeta_x.bind(x, q, order=int(order))


zeta_x_derivative.primitive = _zeta_x  # type: ignore[attr-defined]


def _reflection_factor(x):
    """R(x) = 2^x pi^(x-1) Gamma(1-x) with zeta(x) = R(x) sin(pi x / 2) zeta(1 - x)."""
    return np.exp(x * _LOG_2PI - math.log(math.pi)) * gamma(1 - x)


def _riemann_dx(x, out):
    _no_complex(x)
    left = x < -0.5
    xl = np.where(left, x, -1.0)
    xr = np.where(left, 0.0, x)
    half = 0.5 * np.pi * xl
    r = _reflection_factor(xl)
    # d/dx [R sin(pi x/2) zeta(1-x)], with R' = R (log 2 pi - psi(1-x))
    d_factor = r * ((_LOG_2PI - digamma(1 - xl)) * np.sin(half) + 0.5 * np.pi * np.cos(half))
    reflected = d_factor * riemann_zeta(1 - xl) - r * np.sin(half) * _zeta_x.bind(1 - xl, 1.0, order=1)
    return np.where(left, reflected, _zeta_x.bind(xr, 1.0, order=1))


def _zeta_samples(rng):
    out = unary_samples(domain=(1.5, 6.0))(rng)
    out += _points([-0.3, 0.0, 0.5, 0.99, 1.01], "around 0 and the pole")
    out += _points([-7.5, -2.0, -1.2, -0.6], "negative x (reflection)", dtypes=(np.float64,))
    out += _points([30.0, 60.0], "large x", dtypes=(np.float64,))
    return out


riemann_zeta = unary("riemann_zeta", lazy_ufunc("_riemann_zeta"), deriv=_riemann_dx, samples=_zeta_samples,
                     notes="zeta(x): derivative by Euler-Maclaurin (x >= -1/2) or the reflection formula")
DEFS["_riemann_zeta"] = riemann_zeta


def _hurwitz_dx(x, q, out):
    _no_complex(x)
    return _zeta_x.bind(x, q, order=1)


def _hurwitz_dq(x, q, out):
    return -x * hurwitz_zeta(x + 1, q)


def _hurwitz_samples(rng):
    out = binary_samples(domain=(1.5, 5.0), domain_y=(0.3, 4.0), scalar=None)(rng)
    out.append(Sample(np.array([1.2, 3.0, 8.0]), np.array([1e-3, 50.0, 0.7]), label="small and large q"))
    out.append(Sample(2.5, array(rng, (3,), domain=(0.3, 3.0)), label="python scalar x"))
    return out


hurwitz_zeta = nary("hurwitz_zeta", lazy_ufunc("_zeta"),
                    jvps=(lambda t, x, q, out: t * _hurwitz_dx(x, q, out),
                          lambda t, x, q, out: t * _hurwitz_dq(x, q, out)),
                    vjps=(lambda g, x, q, out: g * _hurwitz_dx(x, q, out),
                          lambda g, x, q, out: g * conj(_hurwitz_dq(x, q, out))),
                    samples=_hurwitz_samples,
                    notes="zeta(x, q): d/dq = -x zeta(x+1, q); d/dx by Euler-Maclaurin in Taylor arithmetic")
DEFS["_zeta"] = hurwitz_zeta


def zeta(x, q=None):
    """``scipy.special.zeta(x, q=None)``: the Riemann (``q`` None) or Hurwitz zeta function."""
    return riemann_zeta(x) if q is None else hurwitz_zeta(x, q)


register_when_imported(DEFS)
