"""More continuous distributions, written from SciPy's own formulas so values
agree with ``scipy.stats`` to rounding: ``uniform``, ``pareto``, ``lomax``,
``gumbel_r``, ``gumbel_l``, ``lognorm``, ``weibull_min``, ``invgamma``,
``halfnorm``, ``maxwell``, ``gennorm``, ``moyal`` (the Landau approximation of energy-loss
straggling) -- each with ``logpdf pdf cdf logcdf sf logsf ppf
entropy`` (the base class adds loc/scale, support masks and parameter checks).

Special points: ``gennorm``'s ``|z|^beta`` has derivative 0 at z = 0 (the
cusp, as ``abs``), and its cdf there is the first-order model
``1/2 + z pdf(0)`` (the incomplete-gamma form is 0 * inf at 0), so the
derivative of the cdf at the median is the density, not NaN; ``ppf`` at
q = 1/2 likewise is ``(q - 1/2) / pdf(0)``.

>>> import npfunc
>>> from npfunc.scipy import stats
>>> round(float(npfunc.grad(lambda c: stats.weibull_min.logsf(2.0, c, scale=1.5))(1.2)), 6)
-0.406293
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ._base import INF, Continuous

_EULER = 0.5772156649015329
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2 = math.sqrt(2.0)
_HALF_LOG_2_OVER_PI = 0.5 * math.log(2 / math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class uniform_gen(Continuous):
    """Uniform distribution on [loc, loc + scale] ``scipy.stats.uniform``."""

    name = "uniform"
    support = (0.0, 1.0)
    inner = 0.5

    def _logpdf(self, z):
        return 0.0 * z

    def _pdf(self, z):
        return 1.0 + 0.0 * z

    def _cdf(self, z):
        return z

    def _sf(self, z):
        return 1.0 - z

    def _ppf(self, q):
        return q

    def _entropy(self):
        return 0.0


class pareto_gen(Continuous):
    """Pareto distribution ``scipy.stats.pareto`` (b, loc, scale), support z >= 1."""

    name = "pareto"
    shapes = ("b",)
    support = (1.0, INF)
    inner = 2.0

    def _argcheck(self, b):
        return b > 0

    def _logpdf(self, z, b):
        return np.log(b) - (b + 1) * np.log(z)

    def _cdf(self, z, b):
        return -np.expm1(-b * np.log(z))

    def _sf(self, z, b):
        return np.exp(-b * np.log(z))

    def _logsf(self, z, b):
        return -b * np.log(z)

    def _ppf(self, q, b):
        return np.exp(-np.log1p(-q) / b)

    def _isf(self, q, b):
        return np.power(q, -1.0 / b)

    def _entropy(self, b):
        return 1 + 1.0 / b - np.log(b)


class lomax_gen(Continuous):
    """Lomax (Pareto of the second kind) ``scipy.stats.lomax`` (c, loc, scale), support
    z >= 0: the actuaries' Pareto, ``pareto`` moved by ``loc=-1``."""

    name = "lomax"
    shapes = ("c",)
    support = (0.0, INF)
    inner = 1.0

    def _argcheck(self, c):
        return c > 0

    def _logpdf(self, z, c):
        return np.log(c) - (c + 1) * np.log1p(z)

    def _pdf(self, z, c):
        return c * 1.0 / (1.0 + z) ** (c + 1.0)

    def _cdf(self, z, c):
        return -np.expm1(-c * np.log1p(z))

    def _sf(self, z, c):
        return np.exp(-c * np.log1p(z))

    def _logsf(self, z, c):
        return -c * np.log1p(z)

    def _ppf(self, q, c):
        return np.expm1(-np.log1p(-q) / c)

    def _isf(self, q, c):
        return q ** (-1.0 / c) - 1

    def _entropy(self, c):
        return 1 + 1.0 / c - np.log(c)


class gumbel_r_gen(Continuous):
    """Right-skewed Gumbel distribution ``scipy.stats.gumbel_r`` (loc, scale)."""

    name = "gumbel_r"

    def _logpdf(self, z):
        return -z - np.exp(-z)

    def _cdf(self, z):
        return np.exp(-np.exp(-z))

    def _logcdf(self, z):
        return -np.exp(-z)

    def _sf(self, z):
        return -np.expm1(-np.exp(-z))

    def _ppf(self, q):
        return -np.log(-np.log(q))

    def _isf(self, q):
        return -np.log(-np.log1p(-q))

    def _entropy(self):
        return _EULER + 1.0


class gumbel_l_gen(Continuous):
    """Left-skewed Gumbel distribution ``scipy.stats.gumbel_l`` (loc, scale)."""

    name = "gumbel_l"

    def _logpdf(self, z):
        return z - np.exp(z)

    def _cdf(self, z):
        return -np.expm1(-np.exp(z))

    def _sf(self, z):
        return np.exp(-np.exp(z))

    def _logsf(self, z):
        return -np.exp(z)

    def _ppf(self, q):
        return np.log(-np.log1p(-q))

    def _isf(self, q):
        return np.log(-np.log(q))

    def _entropy(self):
        return _EULER + 1.0


class lognorm_gen(Continuous):
    """Log-normal distribution ``scipy.stats.lognorm`` (s, loc, scale); density 0 at z = 0."""

    name = "lognorm"
    shapes = ("s",)
    support = (0.0, INF)
    inner = 1.0
    open_support = True

    def _argcheck(self, s):
        return s > 0

    def _logpdf(self, z, s):
        log_z = np.log(z)
        return -log_z * log_z / (2 * s * s) - np.log(s * z) - _LOG_SQRT_2PI

    def _cdf(self, z, s):
        return sc.ndtr(np.log(z) / s)

    def _sf(self, z, s):
        return sc.ndtr(-np.log(z) / s)

    def _logcdf(self, z, s):
        return sc.log_ndtr(np.log(z) / s)

    def _logsf(self, z, s):
        return sc.log_ndtr(-np.log(z) / s)

    def _ppf(self, q, s):
        return np.exp(s * sc.ndtri(q))

    def _isf(self, q, s):
        return np.exp(s * -sc.ndtri(q))

    def _entropy(self, s):
        return 0.5 * (1 + math.log(2 * math.pi) + 2 * np.log(s))


class weibull_min_gen(Continuous):
    """Weibull minimum distribution ``scipy.stats.weibull_min`` (c, loc, scale)."""

    name = "weibull_min"
    shapes = ("c",)
    support = (0.0, INF)
    inner = 1.0

    def _argcheck(self, c):
        return c > 0

    def _logpdf(self, z, c):
        return np.log(c) + sc.xlogy(c - 1, z) - np.power(z, c)

    def _cdf(self, z, c):
        return -np.expm1(-np.power(z, c))

    def _sf(self, z, c):
        return np.exp(-np.power(z, c))

    def _logsf(self, z, c):
        return -np.power(z, c)

    def _ppf(self, q, c):
        return np.power(-np.log1p(-q), 1.0 / c)

    def _isf(self, q, c):
        return (-np.log(q)) ** (1 / c)

    def _entropy(self, c):
        return -_EULER / c - np.log(c) + _EULER + 1


class invgamma_gen(Continuous):
    """Inverted gamma distribution ``scipy.stats.invgamma`` (a, loc, scale); density 0 at z = 0."""

    name = "invgamma"
    shapes = ("a",)
    support = (0.0, INF)
    inner = 1.0
    open_support = True

    def _argcheck(self, a):
        return a > 0

    def _logpdf(self, z, a):
        return -(a + 1) * np.log(z) - sc.gammaln(a) - 1.0 / z

    def _cdf(self, z, a):
        return sc.gammaincc(a, 1.0 / z)

    def _sf(self, z, a):
        return sc.gammainc(a, 1.0 / z)

    def _ppf(self, q, a):
        return 1.0 / sc.gammainccinv(a, q)

    def _isf(self, q, a):
        return 1.0 / sc.gammaincinv(a, q)

    def _entropy(self, a):
        large = a >= 200  # SciPy's asymptotic form there (the regular one cancels)
        ar = np.where(large, 1.0, a)
        al = np.where(large, a, 200.0)
        regular = ar - (ar + 1.0) * sc.psi(ar) + sc.gammaln(ar)
        asymptotic = ((1 - 3 * np.log(al) + math.log(2) + math.log(math.pi)) / 2
                      + 2 / 3 / al + 1 / (12 * al ** 2) - 1 / (90 * al ** 3) - 1 / (120 * al ** 4))
        return np.where(large, asymptotic, regular)


_HALFNORM_MEDIAN = float(sc.ndtri(0.75))


class halfnorm_gen(Continuous):
    """Half-normal distribution ``scipy.stats.halfnorm`` (loc, scale)."""

    name = "halfnorm"
    support = (0.0, INF)
    inner = 1.0

    def _logpdf(self, z):
        return _HALF_LOG_2_OVER_PI - z * z / 2.0

    def _cdf(self, z):
        return sc.erf(z / _SQRT_2)

    def _sf(self, z):
        return 2 * sc.ndtr(-z)

    def _logsf(self, z):
        # SciPy's: log(sf) above the median, log1p(-cdf) below it (accurate near 0, -inf
        # where sf underflows); each branch sees only its own points, so neither makes NaNs
        upper = z > _HALFNORM_MEDIAN
        tail = np.log(self._sf(np.where(upper, z, _HALFNORM_MEDIAN)))
        body = np.log1p(-self._cdf(np.where(upper, 0.0, z)))
        return np.where(upper, tail, body)

    def _ppf(self, q):
        return sc.ndtri((1 + q) / 2.0)

    def _isf(self, q):
        return -sc.ndtri(q / 2)

    def _entropy(self):
        return 0.5 * math.log(math.pi / 2.0) + 0.5


class maxwell_gen(Continuous):
    """Maxwell(-Boltzmann) speed distribution ``scipy.stats.maxwell`` (loc, scale): chi with
    three degrees of freedom, SciPy's formulas (the incomplete gamma functions at a = 3/2)."""

    name = "maxwell"
    support = (0.0, INF)
    inner = 1.0

    def _logpdf(self, z):
        # xlogy: -inf at z = 0 without the divide warning SciPy suppresses there too
        return _HALF_LOG_2_OVER_PI + sc.xlogy(2.0, z) - 0.5 * z * z

    def _pdf(self, z):
        return _SQRT_2_OVER_PI * z * z * np.exp(-z * z / 2.0)

    def _cdf(self, z):
        return sc.gammainc(1.5, z * z / 2.0)

    def _sf(self, z):
        return sc.gammaincc(1.5, z * z / 2.0)

    def _ppf(self, q):
        return np.sqrt(2 * sc.gammaincinv(1.5, q))

    def _isf(self, q):  # (SciPy's: the upper tail to q = 1e-300, where ppf(1 - q) is inf)
        return np.sqrt(2 * sc.gammainccinv(1.5, q))

    def _entropy(self):
        return _EULER + 0.5 * math.log(2 * math.pi) - 0.5


class gennorm_gen(Continuous):
    """Generalized normal distribution ``scipy.stats.gennorm`` (beta, loc, scale)."""

    name = "gennorm"
    shapes = ("beta",)

    def _argcheck(self, beta):
        return beta > 0

    @staticmethod
    def _abs_pow(z, beta):
        """|z|^beta with derivative 0 at z = 0 (no 0 * inf)."""
        at0 = z == 0
        return np.where(at0, 0.0, np.power(np.abs(np.where(at0, 1.0, z)), beta))

    def _logpdf(self, z, beta):
        return np.log(0.5 * beta) - sc.gammaln(1.0 / beta) - self._abs_pow(z, beta)

    def _cdf(self, z, beta):
        at0 = z == 0
        zs = np.where(at0, 1.0, z)
        c = 0.5 * np.sign(zs)
        core = (0.5 + c) - c * sc.gammaincc(1.0 / beta, np.power(np.abs(zs), beta))
        density0 = np.exp(np.log(0.5 * beta) - sc.gammaln(1.0 / beta))
        return np.where(at0, 0.5 + z * density0, core)

    def _sf(self, z, beta):
        return self._cdf(-z, beta)

    def _ppf(self, q, beta):
        median = q == 0.5  # c = 0 there: use the first-order model (q - 1/2) / pdf(0)
        qs = np.where(median, 0.25, q)
        c = np.sign(qs - 0.5)
        core = c * np.power(sc.gammainccinv(1.0 / beta, (1.0 + c) - 2.0 * c * qs), 1.0 / beta)
        density0 = np.exp(np.log(0.5 * beta) - sc.gammaln(1.0 / beta))
        return np.where(median, (q - 0.5) / density0, core)

    def _isf(self, q, beta):
        return -self._ppf(q, beta)

    def _entropy(self, beta):
        return 1.0 / beta - np.log(0.5 * beta) + sc.gammaln(1.0 / beta)


class moyal_gen(Continuous):
    """Moyal distribution ``scipy.stats.moyal`` (loc, scale): density
    exp(-(z + e^-z)/2) / sqrt(2 pi), cdf erfc(e^(-z/2) / sqrt 2)."""

    name = "moyal"

    def _logpdf(self, z):
        return -0.5 * (z + np.exp(-z)) - _LOG_SQRT_2PI

    def _cdf(self, z):
        return sc.erfc(np.exp(-0.5 * z) / _SQRT_2)

    def _sf(self, z):
        return sc.erf(np.exp(-0.5 * z) / _SQRT_2)

    def _ppf(self, q):
        return -np.log(2 * sc.erfcinv(q) ** 2)

    def _entropy(self):
        return 0.5 * (1.0 + _EULER + math.log(4 * math.pi))


uniform = uniform_gen()
pareto = pareto_gen()
lomax = lomax_gen()
gumbel_r = gumbel_r_gen()
gumbel_l = gumbel_l_gen()
lognorm = lognorm_gen()
weibull_min = weibull_min_gen()
invgamma = invgamma_gen()
halfnorm = halfnorm_gen()
maxwell = maxwell_gen()
gennorm = gennorm_gen()
moyal = moyal_gen()
