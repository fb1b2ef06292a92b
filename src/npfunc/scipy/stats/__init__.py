"""``npfunc.scipy.stats``: the distributions scientists differentiate most,
with SciPy's names and signatures, on traced values (under every transform)
and on plain arrays.

``scipy.stats`` converts its inputs with ``np.asarray``, which a traced value
cannot go through, so ``scipy.stats.norm.logpdf(x)`` inside ``npfunc.grad``
fails.  Use the same call on this module instead::

    from npfunc.scipy import stats
    npfunc.grad(lambda mu: stats.norm.logpdf(x, loc=mu, scale=2.0).sum())(0.3)

Continuous (``logpdf pdf cdf logcdf sf logsf``; shapes, ``loc=0``,
``scale=1``): ``norm`` (also ``ppf``/``isf``), ``t``, ``cauchy``,
``laplace``, ``logistic``, ``gamma``, ``beta``, ``chi2``, ``expon``.
Discrete (``logpmf pmf cdf logcdf sf logsf``; shapes, ``loc=0``):
``poisson``, ``binom``.  Multivariate (``logpdf pdf``):
``multivariate_normal``, ``dirichlet``.  Calling a distribution freezes it:
``stats.norm(loc, scale).logpdf(x)``.  See docs/stats.md.
"""
from __future__ import annotations

from ._continuous import beta, cauchy, chi2, expon, gamma, laplace, logistic, norm, t  # noqa: F401
from ._discrete import binom, poisson  # noqa: F401
from ._multivariate import dirichlet, multivariate_normal  # noqa: F401

__all__ = ["norm", "t", "cauchy", "laplace", "logistic", "gamma", "beta", "chi2", "expon", "poisson", "binom",
           "multivariate_normal", "dirichlet"]

from . import _samples, _twins  # noqa: E402

_twins.install()
_samples.register()


def __dir__():
    return __all__
