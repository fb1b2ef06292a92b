"""Derivatives of the regularized incomplete gamma and beta functions with
respect to their shape parameters (plain NumPy; used by the primitive
implementations in ``incomplete``).

Neither ``d/da P(a, x)`` nor ``d/da I_x(a, b)`` has a closed form.  We
evaluate the classical expansions -- the power series of ``P(a, x)`` for
``x < a + 1`` and Legendre's continued fraction of ``Q(a, x)`` otherwise;
the continued fraction of ``I_x(a, b)`` on the side of the symmetry point
``x = (a + 1) / (a + b + 2)`` where it converges fast, and ``1 - I_{1-x}(b, a)``
on the other -- in *truncated Taylor arithmetic* in the shape parameters:
every quantity is a small array of Taylor coefficients ``c[i, j]`` of
``f(a + e, b + d)`` in ``e^i d^j``, so one pass of the usual recurrence
(modified Lentz for the fractions) gives the derivatives of every order up
to the one asked for, at the accuracy of the recurrence itself (the series
and fractions converge for the derivatives as they do for the values; the
loops stop when every coefficient has converged to double precision).

Coefficient arrays have shape ``(I, J, *shape)``; the univariate (gamma)
case is ``J == 1``.
"""
from __future__ import annotations

import math

import numpy as np

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 100_000


# ---- truncated bivariate Taylor arithmetic ------------------------------------------------

def _mul(x, y):
    """Product of two coefficient arrays (Cauchy product, truncated)."""
    I, J = x.shape[:2]
    out = np.empty(np.broadcast_shapes(x.shape, y.shape))
    for i in range(I):
        for j in range(J):
            s = x[0, 0] * y[i, j]
            for p in range(i + 1):
                for q in range(j + 1):
                    if p or q:
                        s = s + x[p, q] * y[i - p, j - q]
            out[i, j] = s
    return out


def _recip(x):
    """``1 / x`` (the value coefficient of ``x`` must be nonzero)."""
    I, J = x.shape[:2]
    out = np.empty_like(x)
    inv = 1.0 / x[0, 0]
    out[0, 0] = inv
    for i in range(I):
        for j in range(J):
            if not (i or j):
                continue
            s = 0.0
            for p in range(i + 1):
                for q in range(j + 1):
                    if p or q:
                        s = s + x[p, q] * out[i - p, j - q]
            out[i, j] = -inv * s
    return out


def _exp(x):
    """``exp(x)`` through ``k E_k = sum_p p x_p E_{k-p}`` along each variable."""
    I, J = x.shape[:2]
    out = np.empty_like(x)
    out[0, 0] = np.exp(x[0, 0])
    for j in range(1, J):
        out[0, j] = sum(q * x[0, q] * out[0, j - q] for q in range(1, j + 1)) / j
    for i in range(1, I):
        for j in range(J):
            s = 0.0
            for p in range(1, i + 1):
                for q in range(j + 1):
                    s = s + p * x[p, q] * out[i - p, j - q]
            out[i, j] = s / i
    return out


def _const(v, I, J):
    out = np.zeros((I, J) + np.shape(v))
    out[0, 0] = v
    return out


def _shift_recip(c, I, J, var):
    """Coefficients of ``1 / (c + e)`` (var 0) or ``1 / (c + d)`` (var 1)."""
    out = np.zeros((I, J) + np.shape(c))
    inv = 1.0 / c
    power = inv
    for k in range(I if var == 0 else J):
        out[(k, 0) if var == 0 else (0, k)] = power
        power = -power * inv
    return out


def _lgamma_series(z, I, J, scale_a=True, scale_b=True):
    """Coefficients of ``lgamma(z + e [+ d])`` (which variables shift ``z``)."""
    from scipy.special import gammaln, polygamma

    out = np.zeros((I, J) + np.shape(z))
    out[0, 0] = gammaln(z)
    for i in range(I):
        for j in range(J):
            if not (i or j) or (i and not scale_a) or (j and not scale_b):
                continue
            out[i, j] = polygamma(i + j - 1, z) / (math.factorial(i) * math.factorial(j))
    return out


def _converged(delta, one):
    """Every coefficient of a Lentz factor has reached 1 (value) or 0 (rest)."""
    err = np.abs(delta).reshape(delta.shape[0] * delta.shape[1], -1)
    err[0] = np.abs(delta[0, 0] - one).ravel()
    return bool(np.all(~(err > 4 * _EPS)))  # NaN entries count as done


def _taylor_to_derivative(coeffs, i, j):
    return coeffs[i, j] * (math.factorial(i) * math.factorial(j))


# ---- incomplete gamma: d^k/da^k P(a, x) ----------------------------------------------------

def _gamma_series(a, x, I):
    """Coefficients of P(a + e, x) by the power series (x < a + 1)."""
    logx = np.log(x)
    lead = -_lgamma_series(a + 1.0, I, 1)
    lead[0, 0] += a * logx - x
    lead[1, 0] += logx
    term = _const(np.ones_like(a), I, 1)
    total = term.copy()
    for n in range(1, _MAX_ITER):
        term = _mul(term, _shift_recip(a + n, I, 1, 0) * x)
        total = total + term
        if not np.any(np.abs(term) > _EPS * np.abs(total)):
            break
    return _mul(_exp(lead), total)


def _lentz_step(d, c, h):
    """One step of the modified Lentz continued-fraction evaluation, given the
    step's new ``d`` (before inversion) and ``c``: (d, c, h, converged)."""
    d[0, 0] = np.where(np.abs(d[0, 0]) < _TINY, _TINY, d[0, 0])
    c[0, 0] = np.where(np.abs(c[0, 0]) < _TINY, _TINY, c[0, 0])
    d = _recip(d)
    delta = _mul(d, c)
    return d, c, _mul(h, delta), _converged(delta, 1.0)


def _gamma_fraction(a, x, I):
    """Coefficients of Q(a + e, x) by Legendre's continued fraction (x >= a + 1)."""
    logx = np.log(x)
    lead = -_lgamma_series(a, I, 1)
    lead[0, 0] += a * logx - x
    lead[1, 0] += logx
    b = _const(x + 1.0 - a, I, 1)
    b[1, 0] = -1.0
    c = _const(np.full_like(a, 1.0 / _TINY), I, 1)
    d = _recip(b)
    h = d
    for n in range(1, _MAX_ITER):
        an = _const(n * (a - n), I, 1)
        an[1, 0] = n
        b = b.copy()
        b[0, 0] = b[0, 0] + 2.0
        d, c, h, done = _lentz_step(_mul(an, d) + b, b + _mul(an, _recip(c)), h)
        if done:
            break
    return _mul(_exp(lead), h)


def gammainc_shape_derivative(a, x, order: int):
    """``d^order/da^order`` of the regularized lower incomplete gamma function
    P(a, x) (``scipy.special.gammainc``), ``order >= 1``; NaN where P is."""
    a, x = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(x, dtype=np.float64))
    out = np.zeros(a.shape)
    bad = ~(a > 0) | ~(x >= 0) | np.isnan(x) | np.isinf(a)
    interior = ~bad & (x > 0) & np.isfinite(x)
    series = interior & (x < a + 1)
    fraction = interior & ~series
    I = order + 1
    if np.any(series):
        out[series] = _taylor_to_derivative(_gamma_series(a[series], x[series], I), order, 0)
    if np.any(fraction):
        out[fraction] = -_taylor_to_derivative(_gamma_fraction(a[fraction], x[fraction], I), order, 0)
    out[bad] = np.nan
    return out


# ---- incomplete beta: d^i/da^i d^j/db^j I_x(a, b) ----------------------------------------------

def _beta_fraction(a, b, x, I, J):
    """Coefficients of I_x(a + e, b + d) by the continued fraction (x below the symmetry point)."""
    lead = _lgamma_series(a + b, I, J) - _lgamma_series(a, I, J, scale_b=False) \
        - _lgamma_series(b, I, J, scale_a=False)
    lead[0, 0] += a * np.log(x) + b * np.log1p(-x) - np.log(a)
    if I > 1:
        lead[1, 0] += np.log(x)
        inv = 1.0 / a
        power = -inv            # -log(a + e): coefficients -(-1)^(p+1) / (p a^p)
        for p in range(1, I):
            lead[p, 0] += power / p
            power = -power * inv
    if J > 1:
        lead[0, 1] += np.log1p(-x)
    one = _const(np.ones_like(a), I, J)
    lin_ab = _const(a + b, I, J)  # a + b + e + d
    if I > 1:
        lin_ab[1, 0] = 1.0
    if J > 1:
        lin_ab[0, 1] = 1.0
    c = one.copy()
    d = one - _mul(lin_ab, _shift_recip(a + 1.0, I, J, 0)) * x
    d[0, 0] = np.where(np.abs(d[0, 0]) < _TINY, _TINY, d[0, 0])
    d = _recip(d)
    h = d
    for m in range(1, _MAX_ITER):
        # even step: m (b - m) x / ((a + 2m - 1)(a + 2m))
        bm = _const(b - m, I, J)
        if J > 1:
            bm[0, 1] = 1.0
        ra = _mul(_shift_recip(a + 2 * m - 1.0, I, J, 0), _shift_recip(a + 2 * m, I, J, 0))
        aa = _mul(bm, ra) * (m * x)
        d = one + _mul(aa, d)
        d[0, 0] = np.where(np.abs(d[0, 0]) < _TINY, _TINY, d[0, 0])
        c = one + _mul(aa, _recip(c))
        c[0, 0] = np.where(np.abs(c[0, 0]) < _TINY, _TINY, c[0, 0])
        d = _recip(d)
        h = _mul(h, _mul(d, c))
        # odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        am = _const(a + m, I, J)
        if I > 1:
            am[1, 0] = 1.0
        abm = lin_ab.copy()
        abm[0, 0] = abm[0, 0] + m
        ra = _mul(_shift_recip(a + 2 * m, I, J, 0), _shift_recip(a + 2 * m + 1.0, I, J, 0))
        aa = -_mul(_mul(am, abm), ra) * x
        d, c, h, done = _lentz_step(one + _mul(aa, d), one + _mul(aa, _recip(c)), h)
        if done:
            break
    return _mul(_exp(lead), h)


def betainc_shape_derivative(a, b, x, da: int, db: int):
    """``d^da/da^da d^db/db^db`` of the regularized incomplete beta function
    I_x(a, b) (``scipy.special.betainc``), ``da + db >= 1``; NaN where I is."""
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, x)))
    out = np.zeros(a.shape)
    bad = ~(a > 0) | ~(b > 0) | ~(x >= 0) | ~(x <= 1) | np.isinf(a) | np.isinf(b)
    interior = ~bad & (x > 0) & (x < 1)
    direct = interior & (x < (a + 1) / (a + b + 2))
    mirrored = interior & ~direct
    if np.any(direct):
        coeffs = _beta_fraction(a[direct], b[direct], x[direct], da + 1, db + 1)
        out[direct] = _taylor_to_derivative(coeffs, da, db)
    if np.any(mirrored):  # I_x(a, b) = 1 - I_{1-x}(b, a): the variables trade places
        coeffs = _beta_fraction(b[mirrored], a[mirrored], 1.0 - x[mirrored], db + 1, da + 1)
        out[mirrored] = -_taylor_to_derivative(coeffs, db, da)
    out[bad] = np.nan
    return out
