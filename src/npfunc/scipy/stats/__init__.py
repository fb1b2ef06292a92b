"""``npfunc.scipy.stats``: the distributions scientists differentiate most,
with SciPy's names and signatures, on traced values (under every transform)
and on plain arrays.

``scipy.stats`` converts its inputs with ``np.asarray``, which a traced value
cannot go through, so ``scipy.stats.norm.logpdf(x)`` inside ``npfunc.grad``
fails.  Use the same call on this module instead::

    from npfunc.scipy import stats
    npfunc.grad(lambda mu: stats.norm.logpdf(x, loc=mu, scale=2.0).sum())(0.3)

Continuous (``logpdf pdf cdf logcdf sf logsf``, ``entropy``; shapes,
``loc=0``, ``scale=1``): ``norm`` (also ``ppf``/``isf``), ``t``, ``cauchy``,
``laplace``, ``logistic``, ``beta``, ``expon``; with
``ppf`` too: ``gamma``, ``chi2``, ``uniform``, ``truncnorm``, ``pareto``, ``lomax``, ``vonmises``,
``wrapcauchy``, ``gennorm``, ``gumbel_l``, ``gumbel_r``, ``moyal``, ``lognorm``,
``weibull_min``, ``invgamma``, ``halfnorm``, ``maxwell`` (and ``isf`` for all of these but
``vonmises``).  Discrete (``logpmf pmf cdf
logcdf sf logsf ppf``; shapes, ``loc=0``): ``poisson``, ``binom``, ``geom``,
``nbinom``, ``betabinom``, ``bernoulli``.  Multivariate: ``multivariate_normal``,
``dirichlet`` (``logpdf pdf entropy``), ``multinomial`` (``logpmf pmf``).
Also ``gaussian_kde`` (differentiable in the points and the data) and
``rankdata``, ``mode`` (no derivative), and ``linregress``.  Calling a distribution freezes it:
``stats.norm(loc, scale).logpdf(x)``.  See docs/stats.md.
"""
from __future__ import annotations

from ._circular import vonmises, wrapcauchy  # noqa: F401
from ._continuous import beta, cauchy, chi2, expon, gamma, laplace, logistic, norm, t  # noqa: F401
from ._continuous_more import (gennorm, gumbel_l, gumbel_r, halfnorm, invgamma, lognorm, lomax,  # noqa: F401
                               maxwell, moyal, pareto, uniform, weibull_min)
from ._discrete import bernoulli, betabinom, binom, geom, nbinom, poisson  # noqa: F401
from ._kde import gaussian_kde  # noqa: F401
from ._multinomial import multinomial  # noqa: F401
from ._multivariate import dirichlet, multivariate_normal  # noqa: F401
from ._ranks import mode, rankdata  # noqa: F401
from ._regression import linregress  # noqa: F401
from ._truncnorm import truncnorm  # noqa: F401

__all__ = ["norm", "t", "cauchy", "laplace", "logistic", "gamma", "beta", "chi2", "expon", "poisson", "binom",
           "multivariate_normal", "dirichlet", "uniform", "truncnorm", "pareto", "lomax", "vonmises", "wrapcauchy",
           "gennorm", "gumbel_l", "gumbel_r", "lognorm", "weibull_min", "invgamma", "halfnorm", "moyal", "maxwell", "geom",
           "nbinom", "betabinom", "bernoulli", "multinomial", "gaussian_kde", "rankdata", "mode", "linregress"]

from . import _samples, _samples_original, _twins  # noqa: E402,F401  (registry samples; error hints)

_twins.install()
_samples_original.register()


def __dir__():
    return __all__

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
