"""Discrete distributions: ``poisson``, ``binom``, ``geom``, ``nbinom``,
``betabinom`` and ``bernoulli``.

``k`` is data: ``logpmf``/``pmf`` are differentiated in ``k`` through
SciPy's formula (the continuous extension, as JAX does), ``cdf``/``sf`` are
step functions of ``k`` (derivative 0).  ``mu``, ``p``, ``a``, ``b`` are
continuous; the counts ``n`` of ``binom`` and ``nbinom`` get the derivative
of the continuous extension (``nbinom``'s cdf through ``betainc``'s shape
derivative).  ``betabinom``'s cdf/sf sum the pmf over 0..n, so its ``n``
must be a plain (not traced) integer there.  ``ppf`` is a step function
(derivative 0, 1 in ``loc``); ``entropy`` exists in closed form for
``geom`` and ``bernoulli`` only.

>>> import npfunc
>>> from npfunc.scipy import stats
>>> round(float(npfunc.grad(lambda p: stats.geom.logpmf(3, p))(0.4)), 6)
-0.833333
"""
from __future__ import annotations

import numpy as np
import scipy.special as sc

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer
from ._base import INF, Discrete


class poisson_gen(Discrete):
    """Poisson distribution ``scipy.stats.poisson`` (mu, loc)."""

    name = "poisson"
    shapes = ("mu",)

    def _argcheck(self, mu):
        return mu >= 0

    def _support(self, mu):
        return 0.0, INF

    def _logpmf(self, k, mu):
        return sc.xlogy(k, mu) - sc.gammaln(k + 1) - mu

    def _edge(self, mu):
        return mu == 0

    def _off_edge(self, edge, shapes):
        return (np.where(edge, 1.0, shapes[0]),)

    def _edge_pmf(self, k, edge, mu):
        mu = np.where(edge, mu, 0.5)
        return mu**k * np.exp(-mu - sc.gammaln(k + 1))

    def _cdf(self, k, mu):
        return sc.gammaincc(k + 1, mu)       # = scipy.special.pdtr(k, mu)

    def _sf(self, k, mu):
        return sc.gammainc(k + 1, mu)        # = scipy.special.pdtrc(k, mu)


class binom_gen(Discrete):
    """Binomial distribution ``scipy.stats.binom`` (n, p, loc)."""

    name = "binom"
    shapes = ("n", "p")

    def _argcheck(self, n, p):
        return (n >= 0) & (np.floor(n) == n) & (p >= 0) & (p <= 1)

    def _support(self, n, p):
        return 0.0, n

    def _safe_value(self, i):
        return 1.0 if i == 0 else 0.5

    def _logpmf(self, k, n, p):
        combiln = sc.gammaln(n + 1) - (sc.gammaln(k + 1) + sc.gammaln(n - k + 1))
        return combiln + sc.xlogy(k, p) + sc.xlog1py(n - k, -p)

    def _edge(self, n, p):
        return (p == 0) | (p == 1)

    def _off_edge(self, edge, shapes):
        return shapes[0], np.where(edge, 0.5, shapes[1])

    def _edge_pmf(self, k, edge, n, p):
        return _binomial_polynomial(k, n, np.where(edge, p, 0.5))

    def _cdf(self, k, n, p):
        return sc.betaincc(k + 1, _rest(n, k), p)   # SciPy's (Boost's) binomial cdf, 0 <= k < n

    def _sf(self, k, n, p):
        return sc.betainc(k + 1, _rest(n, k), p)


def _binomial_polynomial(k, n, p):
    """C(n, k) p**k (1 - p)**(n - k), the coefficient capped where it would overflow (the
    mass at p = 0 or 1 is 0 there, and so are its derivatives up to order k or n - k)."""
    combiln = sc.gammaln(n + 1) - (sc.gammaln(k + 1) + sc.gammaln(n - k + 1))
    return np.exp(np.minimum(combiln, 700.0)) * p**k * (1 - p) ** (n - k)


def _rest(n, k):
    """n - k, kept positive at the placeholder points outside 0 <= k < n (no NaN derivatives there)."""
    m = n - k
    return np.where(m > 0, m, 1.0)


class geom_gen(Discrete):
    """Geometric distribution ``scipy.stats.geom`` (p, loc): trials up to the first success, k >= 1."""

    name = "geom"
    shapes = ("p",)

    def _argcheck(self, p):
        return (p <= 1) & (p > 0)

    def _support(self, p):
        return 1.0, INF

    def _safe_value(self, i):
        return 0.5

    def _logpmf(self, k, p):
        return sc.xlog1py(k - 1, -p) + np.log(p)

    def _edge(self, p):
        return p == 1

    def _off_edge(self, edge, shapes):
        return (np.where(edge, 0.5, shapes[0]),)

    def _edge_pmf(self, k, edge, p):
        p = np.where(edge, p, 0.5)
        return p * (1 - p) ** (k - 1)

    def _cdf(self, k, p):
        return -np.expm1(sc.xlog1py(k, -p))

    def _sf(self, k, p):
        return np.exp(sc.xlog1py(k, -p))

    def _logsf(self, k, p):
        return sc.xlog1py(k, -p)

    def _entropy(self, p):
        return -np.log(p) - np.log1p(-p) * (1.0 - p) / p


class nbinom_gen(Discrete):
    """Negative binomial distribution ``scipy.stats.nbinom`` (n, p, loc)."""

    name = "nbinom"
    shapes = ("n", "p")

    def _argcheck(self, n, p):
        return (n > 0) & (p > 0) & (p <= 1)

    def _safe_value(self, i):
        return 1.0 if i == 0 else 0.5

    def _logpmf(self, k, n, p):
        coeff = sc.gammaln(n + k) - sc.gammaln(k + 1) - sc.gammaln(n)
        return coeff + n * np.log(p) + sc.xlog1py(k, -p)

    def _edge(self, n, p):
        return p == 1

    def _off_edge(self, edge, shapes):
        return shapes[0], np.where(edge, 0.5, shapes[1])

    def _edge_pmf(self, k, edge, n, p):
        p = np.where(edge, p, 0.5)
        coeff = sc.gammaln(n + k) - sc.gammaln(k + 1) - sc.gammaln(n)
        return np.exp(np.minimum(coeff, 700.0)) * p**n * (1 - p) ** k

    def _cdf(self, k, n, p):
        return sc.betainc(n, k + 1, p)

    def _sf(self, k, n, p):
        return sc.betaincc(n, k + 1, p)

    def _logcdf(self, k, n, p):
        cdf = self._cdf(k, n, p)
        high = cdf > 0.5  # SciPy: log1p(-I_(1-p)(k+1, n)) above the median
        return np.where(high, np.log1p(-sc.betainc(k + 1, n, 1 - p)), np.log(np.where(high, 0.5, cdf)))

    def _entropy(self, n, p):
        raise UnsupportedOperationError(
            f"{describe_stack()}: nbinom.entropy has no closed form (SciPy sums the series); it is not "
            "provided by npfunc.scipy.stats.")


class _RawCount:
    """The ``n`` the user passed (before the parameter checks mix it with traced values):
    betabinom's cdf/sf need its largest value to size the sum over 0..n."""

    def __init__(self, n):
        self.n = n

    def top(self, what):
        if isinstance(self.n, Tracer):
            raise UnsupportedOperationError(
                f"{describe_stack()}: betabinom.{what} sums the pmf over 0..n, so n must be a plain integer "
                "(not traced); logpmf/pmf are differentiable in n.")
        return int(np.max(np.asarray(self.n))) if np.size(self.n) else 0


class betabinom_gen(Discrete):
    """Beta-binomial distribution ``scipy.stats.betabinom`` (n, a, b, loc)."""

    name = "betabinom"
    shapes = ("n", "a", "b")

    def _argcheck(self, n, a, b):
        return (n >= 0) & (np.floor(n) == n) & (a > 0) & (b > 0)

    def _prepare(self, k, args, kwds):
        k, shapes, valid = super()._prepare(k, args, kwds)
        return k, shapes + (_RawCount(self._parse(args, kwds)[0][0]),), valid

    def _support(self, n, a, b, raw=None):
        return 0.0, n

    def _logpmf(self, k, n, a, b, raw=None):
        combiln = -np.log(n + 1) - sc.betaln(n - k + 1, k + 1)
        return combiln + sc.betaln(k + a, n - k + b) - sc.betaln(a, b)

    def _masses(self, k, n, a, b, raw, what):
        """pmf(j) for j = 0..max(n) along a new last axis (0 beyond each n), j, and k."""
        j = np.arange(raw.top(what) + 1, dtype=np.float64)
        k, n, a, b = (np.expand_dims(v, -1) for v in (k, n, a, b))
        in_range = j <= n
        js = np.where(in_range, j, 0.0)
        return np.where(in_range, np.exp(self._logpmf(js, n, a, b)), 0.0), j, k

    def _cdf(self, k, n, a, b, raw):
        mass, j, k = self._masses(k, n, a, b, raw, "cdf")
        return np.sum(np.where(j <= k, mass, 0.0), axis=-1)

    def _sf(self, k, n, a, b, raw):
        return 1.0 - self._cdf(k, n, a, b, raw)  # SciPy's (its rounding in the far tail too)

    def _entropy(self, n, a, b):
        raise UnsupportedOperationError(
            f"{describe_stack()}: betabinom.entropy has no closed form; it is not provided by "
            "npfunc.scipy.stats.")


class bernoulli_gen(Discrete):
    """Bernoulli distribution ``scipy.stats.bernoulli`` (p, loc)."""

    name = "bernoulli"
    shapes = ("p",)

    def _argcheck(self, p):
        return (p >= 0) & (p <= 1)

    def _support(self, p):
        return 0.0, 1.0

    def _safe_value(self, i):
        return 0.5

    def _logpmf(self, k, p):
        combiln = sc.gammaln(2.0) - (sc.gammaln(k + 1) + sc.gammaln(2 - k))
        return combiln + sc.xlogy(k, p) + sc.xlog1py(1 - k, -p)

    def _edge(self, p):
        return (p == 0) | (p == 1)

    def _off_edge(self, edge, shapes):
        return (np.where(edge, 0.5, shapes[0]),)

    def _edge_pmf(self, k, edge, p):
        return _binomial_polynomial(k, 1.0, np.where(edge, p, 0.5))

    def _cdf(self, k, p):
        return 1.0 - p + 0.0 * k   # 0 <= k < 1

    def _sf(self, k, p):
        return p + 0.0 * k

    def _entropy(self, p):
        return sc.entr(p) + sc.entr(1 - p)


poisson = poisson_gen()
binom = binom_gen()
geom = geom_gen()
nbinom = nbinom_gen()
betabinom = betabinom_gen()
bernoulli = bernoulli_gen()
