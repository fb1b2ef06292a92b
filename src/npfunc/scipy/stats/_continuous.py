"""Continuous distributions: the standardized formulas SciPy uses, written on
traced values (``scipy.special`` ufuncs dispatch to npfunc).

Where SciPy's formula under/overflows we use the exact form of the same
quantity (noted on the method); values otherwise agree with SciPy's to
rounding.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ._base import INF, Continuous

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)
_LOG_PI = math.log(math.pi)
_LOG_2 = math.log(2.0)


class norm_gen(Continuous):
    """Normal distribution ``scipy.stats.norm`` (loc, scale)."""

    name = "norm"

    def _logpdf(self, z):
        return -(z * z) / 2.0 - _LOG_SQRT_2PI

    def _pdf(self, z):
        return np.exp(-(z * z) / 2.0) / _SQRT_2PI

    def _cdf(self, z):
        return sc.ndtr(z)

    def _sf(self, z):
        return sc.ndtr(-z)

    def _logcdf(self, z):
        return sc.log_ndtr(z)

    def _logsf(self, z):
        return sc.log_ndtr(-z)

    def _entropy(self):
        return 0.5 * (math.log(2 * math.pi) + 1)

    def ppf(self, q, loc=0.0, scale=1.0):
        """Quantile function ``loc + scale * ndtri(q)`` (NaN outside [0, 1] or for scale <= 0)."""
        return self._quantile(q, loc, scale, lambda q: sc.ndtri(q))

    def isf(self, q, loc=0.0, scale=1.0):
        """Inverse survival function ``loc - scale * ndtri(q)``."""
        return self._quantile(q, loc, scale, lambda q: -sc.ndtri(q))

    def _quantile(self, q, loc, scale, fn):
        from ._base import as_float, safe, squeeze_scalar

        q, loc, scale = as_float(q), as_float(loc), as_float(scale)
        good = (q >= 0) & (q <= 1) & (scale > 0)
        out = loc + safe(good, scale, 1.0) * fn(np.where(good, q, 0.5))
        return squeeze_scalar(np.where(good, out, np.nan))


class t_gen(Continuous):
    """Student's t distribution ``scipy.stats.t`` (df, loc, scale); ``df = inf`` is the normal."""

    name = "t"
    shapes = ("df",)

    def _argcheck(self, df):
        return df > 0

    def _logpdf(self, z, df):
        finite = np.isfinite(df)
        d = np.where(finite, df, 1.0)
        t_part = (np.log(sc.poch(0.5 * d, 0.5)) - 0.5 * (np.log(d) + _LOG_PI)
                  - (d + 1) / 2 * np.log1p(z * z / d))
        return np.where(finite, t_part, -(z * z) / 2.0 - _LOG_SQRT_2PI)

    def _cdf(self, z, df):
        return sc.stdtr(df, z)

    def _sf(self, z, df):
        return sc.stdtr(df, -z)

    def _ppf(self, q, df):
        return sc.stdtrit(df, q)

    def _isf(self, q, df):
        return -sc.stdtrit(df, q)

    def _entropy(self, df):
        large = df >= 100  # SciPy's asymptotic series there (df = inf: the normal's)
        dr = np.where(large, 1.0, df)
        dl = np.where(large, df, 100.0)
        half, half1 = dr / 2, (dr + 1) / 2
        regular = half1 * (sc.digamma(half1) - sc.digamma(half)) + np.log(np.sqrt(dr) * sc.beta(half, 0.5))
        asymptotic = (0.5 * (math.log(2 * math.pi) + 1) + 1 / dl + dl ** -2.0 / 4 - dl ** -3.0 / 6
                      - dl ** -4.0 / 8 + 3 / 10 * dl ** -5.0 + dl ** -6.0 / 4)
        return np.where(large, asymptotic, regular)


class cauchy_gen(Continuous):
    """Cauchy distribution ``scipy.stats.cauchy`` (loc, scale)."""

    name = "cauchy"

    def _logpdf(self, z):
        az = np.abs(z)
        small = az < 1
        near = np.where(small, az, 0.0)
        far = np.where(small, 1.0, az)
        return np.where(small, -_LOG_PI - np.log1p(near * near),
                        -_LOG_PI - (2 * np.log(far) + np.log1p((1 / far) ** 2)))

    def _pdf(self, z):
        return 1.0 / np.pi / (1.0 + z * z)

    def _cdf(self, z):
        return np.arctan2(1, -z) / np.pi

    def _sf(self, z):
        return np.arctan2(1, z) / np.pi

    def _ppf(self, q):
        # SciPy's (Boost's) quantile: -1 / tan(pi p), p folded into (-1/2, 1/2]; exactly 0 at the median
        p = np.where(q > 0.5, q - 1.0, q)
        median = q == 0.5
        return np.where(median, np.pi * (q - 0.5), -1.0 / np.tan(np.pi * np.where(median, 0.25, p)))

    def _isf(self, q):
        # SciPy's (Boost's) complement quantile: the ppf reflected, exactly 0 at the median
        return -self._ppf(q)

    def _entropy(self):
        return math.log(4 * math.pi)


class laplace_gen(Continuous):
    """Laplace distribution ``scipy.stats.laplace`` (loc, scale).

    ``logpdf``/``logcdf``/``logsf`` are the exact ``-|z| - log 2`` and
    ``z - log 2`` forms: finite where SciPy's log(pdf) underflows to -inf
    (|z| > ~745)."""

    name = "laplace"

    def _logpdf(self, z):
        return -np.abs(z) - _LOG_2

    def _pdf(self, z):
        return 0.5 * np.exp(-np.abs(z))

    def _cdf(self, z):
        pos = z > 0
        return np.where(pos, 1.0 - 0.5 * np.exp(-np.where(pos, z, 0.0)), 0.5 * np.exp(np.where(pos, 0.0, z)))

    def _sf(self, z):
        return self._cdf(-z)

    def _logcdf(self, z):
        neg = z < 0
        return np.where(neg, np.where(neg, z, 0.0) - _LOG_2, np.log1p(-0.5 * np.exp(-np.where(neg, 0.0, z))))

    def _logsf(self, z):
        return self._logcdf(-z)

    def _ppf(self, q):
        upper = q > 0.5
        return np.where(upper, -np.log(2.0 * (1.0 - np.where(upper, q, 0.0))), np.log(2.0 * np.where(upper, 0.5, q)))

    def _isf(self, q):
        return -self._ppf(q)

    def _entropy(self):
        return _LOG_2 + 1


class logistic_gen(Continuous):
    """Logistic distribution ``scipy.stats.logistic`` (loc, scale)."""

    name = "logistic"

    def _logpdf(self, z):
        y = -np.abs(z)
        return y - 2.0 * np.log1p(np.exp(y))

    def _cdf(self, z):
        return sc.expit(z)

    def _logcdf(self, z):
        return sc.log_expit(z)

    def _sf(self, z):
        return sc.expit(-z)

    def _logsf(self, z):
        return sc.log_expit(-z)

    def _ppf(self, q):
        return sc.logit(q)

    def _isf(self, q):
        return -sc.logit(q)

    def _entropy(self):
        return 2.0


class gamma_gen(Continuous):
    """Gamma distribution ``scipy.stats.gamma`` (a, loc, scale).  The cdf is
    differentiable in ``a`` too (``gammainc``'s shape derivative)."""

    name = "gamma"
    shapes = ("a",)
    support = (0.0, INF)
    inner = 1.0

    def _argcheck(self, a):
        return a > 0

    def _logpdf(self, z, a):
        return sc.xlogy(a - 1.0, z) - z - sc.gammaln(a)

    def _cdf(self, z, a):
        return sc.gammainc(a, z)

    def _sf(self, z, a):
        return sc.gammaincc(a, z)

    def _ppf(self, q, a):
        return sc.gammaincinv(a, q)

    def _isf(self, q, a):
        return sc.gammainccinv(a, q)

    def _entropy(self, a):
        return sc.psi(a) * (1 - a) + a + sc.gammaln(a)


class chi2_gen(Continuous):
    """Chi-squared distribution ``scipy.stats.chi2`` (df, loc, scale)."""

    name = "chi2"
    shapes = ("df",)
    support = (0.0, INF)
    inner = 1.0

    def _argcheck(self, df):
        return df > 0

    def _logpdf(self, z, df):
        return sc.xlogy(df / 2.0 - 1, z) - z / 2.0 - sc.gammaln(df / 2.0) - (_LOG_2 * df) / 2.0

    def _cdf(self, z, df):
        return sc.gammainc(df / 2, z / 2)      # = scipy.special.chdtr(df, z)

    def _sf(self, z, df):
        return sc.gammaincc(df / 2, z / 2)     # = scipy.special.chdtrc(df, z)

    def _ppf(self, q, df):
        return 2.0 * sc.gammaincinv(df / 2, q)

    def _isf(self, q, df):
        return 2.0 * sc.gammainccinv(df / 2, q)   # = scipy.special.chdtri(df, q)

    def _entropy(self, df):
        half = 0.5 * df
        return half + _LOG_2 + sc.gammaln(half) + (1 - half) * sc.psi(half)


class expon_gen(Continuous):
    """Exponential distribution ``scipy.stats.expon`` (loc, scale)."""

    name = "expon"
    support = (0.0, INF)
    inner = 1.0

    def _logpdf(self, z):
        return -z

    def _pdf(self, z):
        return np.exp(-z)

    def _cdf(self, z):
        return -np.expm1(-z)

    def _sf(self, z):
        return np.exp(-z)

    def _logsf(self, z):
        return -z

    def _ppf(self, q):
        return -np.log1p(-q)

    def _isf(self, q):
        return -np.log(q)

    def _entropy(self):
        return 1.0


class beta_gen(Continuous):
    """Beta distribution ``scipy.stats.beta`` (a, b, loc, scale); the cdf is
    differentiable in ``a`` and ``b`` too."""

    name = "beta"
    shapes = ("a", "b")
    support = (0.0, 1.0)
    inner = 0.5

    def _argcheck(self, a, b):
        return (a > 0) & (b > 0)

    def _logpdf(self, z, a, b):
        return sc.xlog1py(b - 1.0, -z) + sc.xlogy(a - 1.0, z) - sc.betaln(a, b)

    def _cdf(self, z, a, b):
        return sc.betainc(a, b, z)

    def _sf(self, z, a, b):
        return sc.betaincc(a, b, z)

    def _ppf(self, q, a, b):
        return sc.betaincinv(a, b, q)

    def _isf(self, q, a, b):
        return sc.betainccinv(a, b, q)

    def _entropy(self, a, b):
        return (sc.betaln(a, b) - (a - 1) * sc.psi(a) - (b - 1) * sc.psi(b) + (a + b - 2) * sc.psi(a + b))


norm = norm_gen()
t = t_gen()
cauchy = cauchy_gen()
laplace = laplace_gen()
logistic = logistic_gen()
gamma = gamma_gen()
chi2 = chi2_gen()
expon = expon_gen()
beta = beta_gen()
