"""Derivatives of the Hurwitz zeta function in its exponent (plain NumPy).

``d^k/dx^k zeta(x, q) = sum_n (-log(n + q))^k (n + q)^-x`` has no closed
form.  We evaluate the Euler--Maclaurin formula

    zeta(s, q) = sum_{n<N} (n+q)^-s + (N+q)^(1-s) / (s-1) + (N+q)^-s / 2
                 + sum_{m=1}^{M} B_2m / (2m)! (s)_(2m-1) (N+q)^(-s-2m+1) + R

(``(s)_j`` the rising factorial) in truncated Taylor arithmetic in ``s``:
every term is a short array of Taylor coefficients of ``f(x + e)`` in
``e``, so one evaluation gives every derivative up to the order asked for.
With N = 24 and M = 14 the remainder is below double precision for
``x >= -1`` and ``q > 0`` (the pole at ``x = 1`` is the genuine one); for
``x < -1`` the direct sum cancels, and the Riemann zeta function's rule uses
the reflection formula instead (``gamma_zeta``).
"""
from __future__ import annotations

import math

import numpy as np

_N = 24
#: B_2, B_4, ..., B_28
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798,
              -174611 / 330, 854513 / 138, -236364091 / 2730, 8553103 / 6, -23749461029 / 870)


def _mul(a, b):
    """Truncated product of two coefficient arrays (axis 0 = powers of e)."""
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    for k in range(out.shape[0]):
        for j in range(k + 1):
            out[k] = out[k] + a[j] * b[k - j]
    return out


def _exp_minus(log_base, K):
    """Coefficients of base^-e = exp(-e log(base)): (-log base)^j / j!."""
    out = np.empty((K + 1,) + np.shape(log_base))
    term = np.ones(np.shape(log_base))
    for j in range(K + 1):
        out[j] = term
        term = term * (-log_base) / (j + 1)
    return out


def _linear(c, K):
    """Coefficients of (c + e)."""
    out = np.zeros((K + 1,) + np.shape(c))
    out[0] = c
    if K:
        out[1] = 1.0
    return out


def hurwitz_taylor(x, q, K: int):
    """Taylor coefficients c[0..K] of zeta(x + e, q) in e (``x >= -1``, ``q > 0``)."""
    x, q = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(q, dtype=np.float64))
    out = np.zeros((K + 1,) + x.shape)
    with np.errstate(all="ignore"):
        for n in range(_N):
            base = n + q
            out = out + base ** -x * _exp_minus(np.log(base), K)
        big = _N + q
        series = _exp_minus(np.log(big), K)
        s = x - 1.0
        pole = np.empty((K + 1,) + x.shape)  # 1 / (s + e)
        for j in range(K + 1):
            pole[j] = (-1.0) ** j / s ** (j + 1)
        out = out + big ** (1.0 - x) * _mul(series, pole) + 0.5 * big ** -x * series
        rising = _linear(x, K)  # (x + e)_(2m - 1)
        power = big ** (-x - 1.0)
        for m, b2m in enumerate(_BERNOULLI, start=1):
            if m > 1:
                rising = _mul(_mul(rising, _linear(x + 2 * m - 3, K)), _linear(x + 2 * m - 2, K))
            out = out + (b2m / math.factorial(2 * m)) * power * _mul(rising, series)
            power = power / (big * big)
    return out


def zeta_x_derivative(x, q, order: int):
    """``d^order/dx^order zeta(x, q)``; NaN outside ``x >= -1, q > 0`` (and at the pole x = 1)."""
    x, q = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(q, dtype=np.float64))
    good = (x >= -1.0) & (q > 0) & (x != 1.0)
    out = np.full(x.shape, np.nan)
    if np.any(good):
        coeffs = hurwitz_taylor(x[good], q[good], order)
        out[good] = coeffs[order] * math.factorial(order)
    return out
