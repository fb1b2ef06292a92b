"""Discrete distributions: ``poisson`` and ``binom``.

``k`` is data: ``logpmf``/``pmf`` are differentiated in ``k`` through
SciPy's formula (the continuous extension, as JAX does), ``cdf``/``sf`` are
step functions of ``k`` (derivative 0).  ``mu`` and ``p`` are continuous;
``binom``'s ``n`` gets the derivative of the continuous extension.
"""
from __future__ import annotations

import numpy as np
import scipy.special as sc

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

    def _cdf(self, k, n, p):
        return sc.betaincc(k + 1, _rest(n, k), p)   # SciPy's (Boost's) binomial cdf, 0 <= k < n

    def _sf(self, k, n, p):
        return sc.betainc(k + 1, _rest(n, k), p)


def _rest(n, k):
    """n - k, kept positive at the placeholder points outside 0 <= k < n (no NaN derivatives there)."""
    m = n - k
    return np.where(m > 0, m, 1.0)


poisson = poisson_gen()
binom = binom_gen()
