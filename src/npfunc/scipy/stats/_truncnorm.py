"""Truncated normal distribution ``scipy.stats.truncnorm`` (a, b, loc, scale),
with SciPy's log-space algorithms: the normal mass of [a, b] is computed in
the left tail (``log_ndtr``; the right tail by symmetry) or as
``log1p(-ndtr(a) - ndtr(-b))`` across the centre, cdf and sf as differences
of those masses (``log1p(-exp(..))`` of the other tail near 1), and ``ppf``
through ``ndtri_exp`` on a log-sum.  Everything is differentiable in the
point, ``a``, ``b``, ``loc`` and ``scale``.

Infinite bounds (one-sided truncation) are exact, with derivative 0 in the
infinite bound: ``log_ndtr(-inf)`` is replaced by a constant -inf before
the formula sees it.  ``entropy`` uses the log-space mass and
``x phi(x) -> 0`` at infinite bounds (SciPy's formula gives NaN there).

>>> import npfunc
>>> from npfunc.scipy import stats
>>> round(float(npfunc.grad(lambda b: stats.truncnorm.logpdf(0.3, -1.0, b))(2.0)), 6)
-0.065956
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ._base import INF, Continuous

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _log_ndtr(x):
    """log_ndtr with -inf (and derivative 0) at x = -inf."""
    low = x == -INF
    return np.where(low, -INF, sc.log_ndtr(np.where(low, 0.0, x)))


def _log_diff(log_p, log_q):
    """log(exp(log_p) - exp(log_q)) for log_q <= log_p; -inf where they are equal."""
    d = log_q - log_p
    same = d == 0
    return np.where(same, -INF, log_p + np.log(-np.expm1(np.where(same, -1.0, d))))


def log_gauss_mass(a, b):
    """log of the standard normal mass of [a, b] (SciPy's three cases)."""
    left = b <= 0
    right = a > 0
    central = ~(left | right)
    al, bl = np.where(left, a, -1.0), np.where(left, b, 0.0)
    ar, br = np.where(right, a, 0.0), np.where(right, b, 1.0)
    ac, bc = np.where(central, a, -1.0), np.where(central, b, 1.0)
    in_left = _log_diff(_log_ndtr(bl), _log_ndtr(al))
    in_right = _log_diff(_log_ndtr(-ar), _log_ndtr(-br))
    in_centre = np.log1p(-sc.ndtr(ac) - sc.ndtr(-bc))
    return np.where(left, in_left, np.where(right, in_right, in_centre))


def _x_phi(x):
    """x * phi(x), 0 at infinite x."""
    finite = np.isfinite(x)
    xs = np.where(finite, x, 0.0)
    return np.where(finite, xs * _INV_SQRT_2PI * np.exp(-0.5 * xs * xs), 0.0)


class truncnorm_gen(Continuous):
    """Truncated normal ``scipy.stats.truncnorm`` (a, b, loc, scale): bounds a < b in standard units."""

    name = "truncnorm"
    shapes = ("a", "b")

    def _argcheck(self, a, b):
        return a < b

    def _safe_shapes(self, valid, shapes):
        a, b = shapes
        return (a if valid is True else np.where(valid, a, -1.0),
                b if valid is True else np.where(valid, b, 1.0))

    def _support(self, a, b):
        return a, b

    def _inner(self, a, b):
        fa, fb = np.isfinite(a), np.isfinite(b)
        sa, sb = np.where(fa, a, 0.0), np.where(fb, b, 0.0)
        return np.where(fa & fb, 0.5 * (sa + sb), np.where(fa, sa + 1.0, np.where(fb, sb - 1.0, 0.0)))

    def _logpdf(self, z, a, b):
        return -0.5 * z * z - _LOG_SQRT_2PI - log_gauss_mass(a, b)

    def _raw_tails(self, z, a, b):
        mass = log_gauss_mass(a, b)
        return log_gauss_mass(a, z) - mass, log_gauss_mass(z, b) - mass

    def _logcdf(self, z, a, b):
        low, high = self._raw_tails(z, a, b)
        near_one = low > -0.1  # avoid cancellation: 1 - sf
        return np.where(near_one, np.log1p(-np.exp(np.where(near_one, high, -1.0))), low)

    def _logsf(self, z, a, b):
        low, high = self._raw_tails(z, a, b)
        near_one = high > -0.1
        return np.where(near_one, np.log1p(-np.exp(np.where(near_one, low, -1.0))), high)

    def _cdf(self, z, a, b):
        return np.exp(self._logcdf(z, a, b))

    def _sf(self, z, a, b):
        return np.exp(self._logsf(z, a, b))

    def _ppf(self, q, a, b):
        mass = log_gauss_mass(a, b)
        left = a < 0
        from_left = sc.ndtri_exp(np.logaddexp(_log_ndtr(a), np.log(q) + mass))
        from_right = -sc.ndtri_exp(np.logaddexp(_log_ndtr(-b), np.log1p(-q) + mass))
        return np.where(left, from_left, from_right)

    def _entropy(self, a, b):
        mass = log_gauss_mass(a, b)
        return (0.5 * (1 + math.log(2 * math.pi)) + mass
                + (_x_phi(a) - _x_phi(b)) / (2 * np.exp(mass)))


truncnorm = truncnorm_gen()
