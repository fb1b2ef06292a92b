"""Derivatives of ``hyp1f1`` and ``hyp2f1`` in their parameters (plain NumPy).

The parameters enter the series ``sum_n prod (u_k)_n / prod (l_l)_n z^n / n!``
only through Pochhammer symbols, one per parameter, so each parameter gets a
univariate truncated Taylor series of its symbol -- ``(u + e)_n`` is updated
by multiplying with the linear ``(u + n + e)``, ``1 / (l + d)_n`` by dividing
by it -- and the mixed Taylor coefficients of a term are the outer product
of these short series.  Summing the terms gives every mixed derivative up to
the orders asked for at the cost of a few array operations per term; the
series are rescaled each step (a running log-scale), so terms that
over/underflow individually (``(u)_n`` against ``n!``) stay exact.

Where the direct series cancels or converges slowly a transformation is
used first, and the Taylor coefficients are carried through the linear
change of parameters:

* ``1F1(a; b; z) = e^z 1F1(b - a; b; -z)`` (Kummer) for z < 0, so the terms
  have one sign;
* ``2F1(a, b; c; z) = (1 - z)^-a 2F1(a, c - b; c; z / (z - 1))`` (Pfaff) for
  z < 0, which maps (-inf, 0) into (0, 1).

The 2F1 series converges like ``|w|^n``: it is summed until every
coefficient has converged, up to ``MAX_TERMS`` terms (z within ~1e-4 of 1,
or below about -1e4, does not converge within that budget and raises).
z >= 1 gives NaN (SciPy's real 2F1 is not defined there either).
"""
from __future__ import annotations

import math
import string

import numpy as np

MAX_TERMS = 60_000
_EPS = 2.0 ** -54


def _rescale(series, logscale):
    """Divide a coefficient array by its largest magnitude; add its log to ``logscale``."""
    big = np.max(np.abs(series), axis=0)
    big = np.where((big > 0) & np.isfinite(big), big, 1.0)
    return series / big, logscale + np.log(big)


def _times_linear(series, c):
    """Coefficients of series * (c + e)."""
    out = series * c
    out[1:] += series[:-1]
    return out


def _over_linear(series, c):
    """Coefficients of series / (c + e)."""
    out = np.empty_like(series)
    out[0] = series[0] / c
    for m in range(1, series.shape[0]):
        out[m] = (series[m] - out[m - 1]) / c
    return out


def pfq_taylor(uppers, lowers, z, up_degrees, low_degrees, what="hypergeometric series"):
    """Tensor ``T[i_1, .., i_p, j_1, .., j_q, s]`` of the Taylor coefficients of
    ``pFq(u + e; l + d; z)`` in the parameter shifts, for 1-d parameter arrays."""
    size = np.shape(z)[0]
    ups = [np.zeros((d + 1, size)) for d in up_degrees]
    lows = [np.zeros((d + 1, size)) for d in low_degrees]
    for s in ups + lows:
        s[0] = 1.0
    letters = string.ascii_lowercase[:len(ups) + len(lows)]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters + "z"
    logscale = np.zeros(size)
    total = np.zeros(tuple(d + 1 for d in up_degrees) + tuple(d + 1 for d in low_degrees) + (size,))
    start = np.ceil(np.max(np.abs(np.stack(list(uppers) + list(lowers))), axis=0)) + 2
    if len(uppers) == len(lowers):  # 1F1: terms grow until n ~ |z|
        start = start + np.abs(z)
    quiet = np.zeros(size, dtype=bool)
    flat = (-1, size)
    for n in range(MAX_TERMS):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            term = np.exp(logscale) * np.einsum(spec, *ups, *lows)
        total = total + term
        small = np.all((np.abs(term) <= _EPS * np.abs(total)).reshape(flat)
                       | (np.abs(term) <= _EPS * _EPS * np.max(np.abs(total).reshape(flat), axis=0)).reshape(flat)
                       | ~np.isfinite(total).reshape(flat), axis=0)
        done = small & quiet & (n > start)
        if np.all(done):
            return total
        quiet = small
        for k, (u, s) in enumerate(zip(uppers, ups)):
            s = _times_linear(s, u + n)
            if k == 0:
                s = s * (z / (n + 1))
            ups[k], logscale = _rescale(s, logscale)
        for k, (low, s) in enumerate(zip(lowers, lows)):
            lows[k], logscale = _rescale(_over_linear(s, low + n), logscale)
    raise ArithmeticError(
        f"{what}: the series for the parameter derivatives did not converge in {MAX_TERMS} terms "
        f"(z too close to 1, or too negative); these derivatives are not available there")


def _broadcast(*arrays):
    return np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))


def hyp1f1_parameter_derivative(a, b, z, da: int, db: int):
    """``d^da/da^da d^db/db^db hyp1f1(a, b, z)`` for real z."""
    a, b, z = _broadcast(a, b, z)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(z)
    scale = math.factorial(da) * math.factorial(db)
    pos = ok & (z >= 0)
    if np.any(pos):
        t = pfq_taylor([a[pos]], [b[pos]], z[pos], [da], [db], "hyp1f1")
        out[pos] = t[da, db] * scale
    neg = ok & (z < 0)
    if np.any(neg):
        an, bn, zn = a[neg], b[neg], z[neg]
        g = pfq_taylor([bn - an], [bn], -zn, [da + db], [db], "hyp1f1")
        # 1F1(a + ea, b + eb; z) = e^z G(b - a + (eb - ea), b + eb): collect ea^da eb^db
        coef = sum(g[da + t, db - t] * (math.comb(da + t, da) * (-1) ** da) for t in range(db + 1))
        out[neg] = np.exp(zn) * coef * scale
    return out


def hyp2f1_parameter_derivative(a, b, c, z, da: int, db: int, dc: int):
    """``d^da/da^da d^db/db^db d^dc/dc^dc hyp2f1(a, b, c, z)`` for real z < 1."""
    a, b, c, z = _broadcast(a, b, c, z)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & (z < 1)
    scale = math.factorial(da) * math.factorial(db) * math.factorial(dc)
    pos = ok & (z >= 0)
    if np.any(pos):
        t = pfq_taylor([a[pos], b[pos]], [c[pos]], z[pos], [da, db], [dc], "hyp2f1")
        out[pos] = t[da, db, dc] * scale
    neg = ok & (z < 0)
    if np.any(neg):
        an, bn, cn, zn = a[neg], b[neg], c[neg], z[neg]
        w = zn / (zn - 1)
        g = pfq_taylor([an, cn - bn], [cn], w, [da, db + dc], [dc], "hyp2f1")
        # 2F1(a+ea, b+eb; c+ec; z) = (1-z)^-(a+ea) G(a+ea, c-b + (ec-eb); c+ec; w)
        log1mz = np.log1p(-zn)
        total = 0.0
        for p in range(da + 1):
            inner = sum(g[da - p, db + t, dc - t] * (math.comb(db + t, db) * (-1) ** db) for t in range(dc + 1))
            total = total + (-log1mz) ** p / math.factorial(p) * inner
        out[neg] = np.exp(-an * log1mz) * total * scale
    return out
