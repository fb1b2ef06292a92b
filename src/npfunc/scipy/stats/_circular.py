"""Circular distributions: ``vonmises`` (kappa, loc, scale) and ``wrapcauchy``
(c, loc, scale).

``vonmises`` follows SciPy: its support is the whole line, the density is
periodic and ``cdf(x + 2 pi) = cdf(x) + 1``.  The cdf is SciPy's algorithm
written with npfunc operations -- for kappa < 50 the Fourier series
``1/2 + x/(2 pi) + sum_n I_n/I_0 sin(n x)/(n pi)`` (51 terms, the most
SciPy's backward recurrence sums; the Bessel ratios are computed directly,
so values agree with SciPy's to ~1e-13), a normal approximation above --
so it is differentiable in ``x`` and ``kappa`` to every order, also at
kappa = 0.  ``ppf`` has no closed form: SciPy's
root finding gives the value and the implicit function theorem the
derivatives (``vonmises_ppf``).

``wrapcauchy``'s cdf and ppf are SciPy's ``arctan(r tan(x/2))`` forms
written with ``arctan2``, which joins SciPy's two branches at x = pi
smoothly; ``sf(x) = cdf(2 pi - x)`` (the density is symmetric about pi).

>>> import npfunc
>>> from npfunc.scipy import stats
>>> round(float(npfunc.grad(lambda k: stats.vonmises.cdf(0.5, k))(2.0)), 6)
0.06281
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ...api import jvp
from ...core.primitive import Primitive, Sample
from ...core.values import shape_of
from ...core.zeros import zero
from ...primitives.families import elementwise_batch, fit_cotangent, fit_tangent
from ._base import Continuous

_TWO_PI = 2 * math.pi
_LOG_2PI = math.log(_TWO_PI)
_SQRT_2_PI = math.sqrt(2 / math.pi)
_KAPPA_SERIES = 50.0
#: SciPy sums p - 1 = ceil(28 + kappa/2 - 100/(kappa+5)) - 1 <= 51 terms for kappa < 50
_ORDERS = np.arange(1.0, 52.0)


def vonmises_cdf(x, kappa):
    """SciPy's ``von_mises_cdf(kappa, x)`` with npfunc operations (differentiable)."""
    turns = np.round(x / _TWO_PI)
    x = x - _TWO_PI * turns
    small = kappa < _KAPPA_SERIES
    ks = np.expand_dims(np.where(small, kappa, 1.0), -1)
    kl = np.where(small, _KAPPA_SERIES, kappa)
    # Fourier series: sum_n I_n(k)/I_0(k) sin(n x) / n, the terms SciPy's recurrence sums
    ratios = sc.ive(_ORDERS, ks) / sc.ive(0.0, ks)
    acc = np.sum(ratios * np.sin(_ORDERS * np.expand_dims(x, -1)) / _ORDERS, axis=-1)
    series = np.clip(0.5 + x / _TWO_PI + acc / np.pi, 0.0, 1.0)
    normal = sc.ndtr(_SQRT_2_PI / sc.i0e(kl) * np.sin(0.5 * x))
    return np.where(small, series, normal) + turns


def vonmises_logpdf(x, kappa):
    half = np.sin(0.5 * x)
    return -2.0 * kappa * half * half - _LOG_2PI - np.log(sc.i0e(kappa))


def _dcdf_dkappa(x, kappa):
    return jvp(lambda k: vonmises_cdf(x, k), (kappa,), (np.ones(shape_of(kappa)),))[1]


def _ppf_impl(q, kappa):
    import scipy.stats as st

    return np.asarray(st.vonmises.ppf(q, kappa), dtype=np.float64)


def _ppf_rules():
    def inv_pdf(x, kappa):
        return np.exp(-vonmises_logpdf(x, kappa))

    def dq(q, kappa, x):
        return inv_pdf(x, kappa)

    def dkappa(q, kappa, x):
        return -_dcdf_dkappa(x, kappa) * inv_pdf(x, kappa)

    return dq, dkappa


def _ppf_jvp(primals, tangents, out):
    dq, dk = _ppf_rules()
    total = zero
    if tangents[0] is not zero:
        total = tangents[0] * dq(*primals, out)
    if tangents[1] is not zero:
        term = tangents[1] * dk(*primals, out)
        total = term if total is zero else total + term
    return zero if total is zero else fit_tangent(total, out)


def _ppf_vjp(g, primals, out, needs):
    dq, dk = _ppf_rules()
    return (fit_cotangent(g * dq(*primals, out), primals[0]) if needs[0] else zero,
            fit_cotangent(g * dk(*primals, out), primals[1]) if needs[1] else zero)


def _ppf_samples(rng):
    return [Sample(rng.uniform(0.05, 0.95, (2, 3)), rng.uniform(0.2, 8.0, (3,))),
            Sample(np.array([0.3, 0.5, 0.9]), np.array([0.0, 60.0, 2.0]), argnums=(0,),
                   label="kappa = 0 and large")]


_vonmises_ppf = Primitive("vonmises_ppf", _ppf_impl, jvp=_ppf_jvp, vjp=_ppf_vjp, samples=_ppf_samples,
                          notes="SciPy's root finding for the value; implicit derivatives 1/pdf and "
                                "-(dcdf/dkappa)/pdf at the output")
_vonmises_ppf.batch = elementwise_batch(_vonmises_ppf)


class vonmises_gen(Continuous):
    """Von Mises distribution ``scipy.stats.vonmises`` (kappa, loc, scale), SciPy's
    conventions: support the whole line, periodic density, cdf(x + 2 pi) = cdf(x) + 1."""

    name = "vonmises"
    shapes = ("kappa",)

    def _argcheck(self, kappa):
        return kappa >= 0

    def _logpdf(self, z, kappa):
        return vonmises_logpdf(z, kappa)

    def _cdf(self, z, kappa):
        finite = np.isfinite(z)  # SciPy: 0 at -inf, 1 at +inf (the support's ends)
        value = vonmises_cdf(np.where(finite, z, 0.0), kappa)
        return np.where(finite, value, np.where(z > 0, 1.0, np.where(z < 0, 0.0, np.nan)))

    def _sf(self, z, kappa):
        return 1.0 - self._cdf(z, kappa)

    def _ppf(self, q, kappa):
        return _vonmises_ppf.bind(q, kappa)

    def _isf(self, q, kappa):
        from ...core.context import describe_stack
        from ...core.errors import UnsupportedOperationError

        # SciPy's is its numerical ppf at 1 - q: for q below rounding (1 - q == 1) the root
        # finder's bracket end (pi at kappa = 2, 3.33 at kappa = 50), which no formula reproduces
        raise UnsupportedOperationError(
            f"{describe_stack()}: npfunc.scipy.stats.vonmises.isf is not provided (SciPy's is its numerical "
            f"ppf(1 - q), whose value when 1 - q rounds to 1 is its root finder's); write "
            f"vonmises.ppf(1 - q, kappa, loc, scale), which is SciPy's isf for every q with 1 - q < 1")

    def _entropy(self, kappa):
        i0e = sc.i0e(kappa)
        return -kappa * sc.i1e(kappa) / i0e + np.log(_TWO_PI * i0e) + kappa


class wrapcauchy_gen(Continuous):
    """Wrapped Cauchy distribution ``scipy.stats.wrapcauchy`` (c, loc, scale) on [0, 2 pi]."""

    name = "wrapcauchy"
    shapes = ("c",)
    support = (0.0, _TWO_PI)
    inner = math.pi

    def _argcheck(self, c):
        return (c > 0) & (c < 1)

    def _logpdf(self, z, c):
        return np.log1p(-c * c) - _LOG_2PI - np.log(1 + c * c - 2 * c * np.cos(z))

    def _pdf(self, z, c):
        return (1.0 - c * c) / (_TWO_PI * (1 + c * c - 2 * c * np.cos(z)))

    def _cdf(self, z, c):
        ratio = (1 + c) / (1 - c)
        return np.arctan2(ratio * np.sin(0.5 * z), np.cos(0.5 * z)) / np.pi

    def _sf(self, z, c):
        return self._cdf(_TWO_PI - z, c)

    def _ppf(self, q, c):
        ratio = (1.0 - c) / (1.0 + c)
        return 2.0 * np.arctan2(ratio * np.sin(np.pi * q), np.cos(np.pi * q))

    def _entropy(self, c):
        return np.log(_TWO_PI * (1 - c * c))


vonmises = vonmises_gen()
wrapcauchy = wrapcauchy_gen()
