"""Registry samples for the distributions added with issue 12: each twin is a
``Composite`` whose samples call its methods (``method=`` is a static
parameter), so the generated tests run every method under every transform
and compare derivatives with central differences.  Values are compared with
SciPy in ``tests/test_stats_more.py``.

Samples keep the points inside the support (differences across a support
edge or a jump say nothing about the convention there: those samples are
marked ``kink`` and tested by hand), and for the discrete distributions
differentiate only the continuous shape parameters.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Composite, Sample
from . import _circular, _continuous, _continuous_more, _discrete, _kde, _multinomial, _multivariate
from . import _truncnorm

_CONT_METHODS = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")


def _method_call(dist):
    def call(*args, method):
        return getattr(dist, method)(*args)

    call.__name__ = f"{dist.name}_method"
    return call


def _u(rng, lo, hi, n=3):
    return rng.uniform(lo, hi, n)


#: name -> (distribution, shape domains, standardized point domain)
_CONTINUOUS = {
    "uniform": (_continuous_more.uniform, (), (0.05, 0.95)),
    "pareto": (_continuous_more.pareto, ((1.0, 4.0),), (1.2, 4.0)),
    "lomax": (_continuous_more.lomax, ((1.0, 4.0),), (0.2, 4.0)),
    "gumbel_r": (_continuous_more.gumbel_r, (), (-2.0, 2.5)),
    "gumbel_l": (_continuous_more.gumbel_l, (), (-2.5, 2.0)),
    "moyal": (_continuous_more.moyal, (), (-1.5, 4.0)),
    "lognorm": (_continuous_more.lognorm, ((0.3, 1.5),), (0.2, 4.0)),
    "weibull_min": (_continuous_more.weibull_min, ((0.6, 3.0),), (0.2, 3.0)),
    "invgamma": (_continuous_more.invgamma, ((0.8, 4.0),), (0.2, 4.0)),
    "halfnorm": (_continuous_more.halfnorm, (), (0.1, 3.0)),
    "maxwell": (_continuous_more.maxwell, (), (0.2, 3.5)),
    "gennorm": (_continuous_more.gennorm, ((0.8, 3.0),), (0.2, 2.0)),
    "vonmises": (_circular.vonmises, ((0.3, 6.0),), (-2.5, 2.5)),
    "wrapcauchy": (_circular.wrapcauchy, ((0.1, 0.8),), (0.3, 6.0)),
}


def _continuous_samples(dist, shape_domains, z_domain, edges):
    def make(rng):
        out = []
        for method in _CONT_METHODS + ("ppf", "entropy") + (("isf",) if dist.name != "vonmises" else ()):
            shapes = [_u(rng, *d) for d in shape_domains]
            loc, scale = _u(rng, -0.5, 0.5), _u(rng, 0.6, 2.0)
            if method in ("ppf", "isf"):
                first = [_u(rng, 0.05, 0.95)]
            elif method == "entropy":
                first = []
            else:
                first = [loc + scale * _u(rng, *z_domain)]
            out.append(Sample(*first, *shapes, loc, scale, method=method))
        shapes = [_u(rng, *d).astype(np.float32) for d in shape_domains]
        z = _u(rng, *z_domain).astype(np.float32)
        out.append(Sample(z, *shapes, method="logpdf", label="float32"))
        out += edges(rng) if edges else []
        return out

    return make


def _register(name, target, samples, differentiable=True, notes=""):
    Composite(f"npfunc.scipy.stats.{name}", target, samples=samples, differentiable=differentiable, notes=notes)


def _outside(values, *shapes, kink=True):
    """Points outside the support: constant values, derivative 0 (checked by hand for logpdf)."""

    def make(rng):
        x = np.array(values)
        return [Sample(x, *shapes, 0.0, 1.0, method="cdf", label="outside the support"),
                Sample(x, *shapes, 0.0, 1.0, method="logpdf", kink=kink, label="outside the support")]

    return make


_EDGES = {
    "uniform": _outside([-0.5, 0.3, 1.7]),
    "pareto": _outside([0.5, 2.0, -1.0], np.array([2.5, 1.5, 3.0])),
    "lomax": _outside([-0.5, 2.0, -1.0], np.array([2.5, 1.5, 3.0])),
    "lognorm": _outside([-1.0, 0.0, 2.0], np.array([0.5, 1.0, 0.8])),
    "weibull_min": _outside([-1.0, 1.5, -0.1], np.array([1.5, 2.0, 0.8])),
    "invgamma": _outside([-1.0, 0.0, 2.0], np.array([1.5, 2.0, 3.0])),
    "halfnorm": _outside([-1.0, 0.5, -0.2]),
    "maxwell": _outside([-1.0, 0.5, -0.2]),
    "wrapcauchy": _outside([-0.5, 3.0, 7.0], np.array([0.3, 0.5, 0.7])),
    # at the median; beta >= 1.5 there, where central differences resolve the density's cusp
    "gennorm": lambda rng: [Sample(np.array([0.0, 0.5, -0.7]), np.array([1.5, 2.0, 2.5]), method="cdf",
                                   label="at the median"),
                            Sample(np.array([0.0, 0.5, -0.7]), np.array([0.7, 1.0, 2.5]), method="logpdf",
                                   kink=True, label="at the median (cusp for beta <= 1)"),
                            Sample(np.array([0.5, 0.3, 0.7]), np.array([1.5, 1.0, 2.5]), method="ppf",
                                   label="median")],
    "vonmises": lambda rng: [Sample(np.array([-4.0, 3.5, 9.0]), np.array([0.05, 2.0, 60.0]), method="cdf",
                                    label="beyond [-pi, pi], small and large kappa")],
}

_ALL = "logpdf pdf cdf logcdf sf logsf ppf isf entropy; derivative 0 outside the support"
for _name, (_dist, _shapes, _z) in _CONTINUOUS.items():
    _register(_name, _method_call(_dist), _continuous_samples(_dist, _shapes, _z, _EDGES.get(_name)), notes=_ALL)


def _truncnorm_samples(rng):
    out = []
    for method in _CONT_METHODS + ("ppf", "isf", "entropy"):
        a, b = _u(rng, -1.5, -0.3), _u(rng, 0.5, 2.0)
        loc, scale = _u(rng, -0.5, 0.5), _u(rng, 0.6, 2.0)
        first = ([_u(rng, 0.05, 0.95)] if method in ("ppf", "isf") else [] if method == "entropy" else
                 [loc + scale * (a + (b - a) * _u(rng, 0.1, 0.9))])
        out.append(Sample(*first, a, b, loc, scale, method=method))
    # one-sided and far-tail truncations: infinite bounds are constants (not differentiated)
    for method in ("logpdf", "logcdf", "logsf", "ppf", "entropy"):
        first = [] if method == "entropy" else [np.array([0.3, 0.6, 0.9])] if method == "ppf" else \
            [np.array([0.5, 6.0, -4.5])]
        out.append(Sample(*first, np.array([-np.inf, 5.0, -8.0]), np.array([1.0, np.inf, -3.0]),
                          argnums=(0,) if first else (), method=method, label="infinite bounds and tails"))
    return out


_register("truncnorm", _method_call(_truncnorm.truncnorm), _truncnorm_samples,
          notes=_ALL + "; log-space masses, infinite bounds exact")


def _entropy_samples(dist, shape_domains):
    def make(rng):
        shapes = [_u(rng, *d) for d in shape_domains]
        return [Sample(*shapes, _u(rng, -0.5, 0.5), _u(rng, 0.6, 2.0), method="entropy")]

    return make


for _name, _domains in {"norm": (), "t": ((0.8, 150.0),), "cauchy": (), "laplace": (), "logistic": (),
                        "gamma": ((0.5, 5.0),), "beta": ((0.6, 4.0), (0.6, 4.0)), "chi2": ((0.8, 8.0),),
                        "expon": ()}.items():
    _register(f"{_name}.entropy", _method_call(getattr(_continuous, _name)), _entropy_samples(
        getattr(_continuous, _name), _domains), notes="closed form")

# ---- discrete -----------------------------------------------------------------------------------------


def _discrete_samples(dist, shapes_fn, k_fn, argnums):
    def make(rng):
        out = []
        for method in ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"):
            out.append(Sample(k_fn(rng), *shapes_fn(rng), 0.0, argnums=argnums, method=method))
        out.append(Sample(np.array([0.05, 0.5, 0.93]), *shapes_fn(rng), np.array([0.0, 1.0, -2.0]),
                          argnums=(len(shapes_fn(rng)) + 1,), method="ppf", label="ppf: derivative 1 in loc"))
        return out

    return make


def _ints(lo, hi):
    return lambda rng: rng.integers(lo, hi, 3).astype(np.float64)


_DISCRETE = "logpmf pmf cdf logcdf sf logsf ppf; ppf and cdf steps have derivative 0"


def _with_entropy(make, *p):
    return lambda rng: make(rng) + [Sample(np.array(p), method="entropy")]


def _with_edges(make, k, *edges):
    """pmf where a probability or rate sits on the end of its range (p = 0 or 1, mu = 0):
    exp(logpmf) would give 0 * inf there, the mass is a polynomial with finite derivatives.
    Values, vmap and jit are checked here; the one-sided derivatives (no central differences
    across the end of the range) against differences in
    tests/test_natural_programs_ecology_popgen.py."""
    def edge_samples(rng):
        return make(rng) + [Sample(np.array(k), *shapes, 0.0, argnums=(argnum,), method="pmf", kink=True,
                                   label="shape on the end of its range") for shapes, argnum in edges]

    return edge_samples


_register("geom", _method_call(_discrete.geom), notes=_DISCRETE + "; entropy; pmf at p = 1",
          samples=_with_entropy(_with_edges(
              _discrete_samples(_discrete.geom, lambda r: [_u(r, 0.2, 0.8)], _ints(1, 6), (1,)),
              [1.0, 2.0, 3.0], ((1.0,), 1)), 0.3, 0.9, 0.6))
_register("nbinom", _method_call(_discrete.nbinom), notes=_DISCRETE + "; cdf through betainc (n, p); pmf at p = 1",
          samples=_with_edges(
              _discrete_samples(_discrete.nbinom, lambda r: [_u(r, 1.5, 5.0), _u(r, 0.2, 0.8)], _ints(0, 8), (1, 2)),
              [0.0, 1.0, 2.0], ((2.5, 1.0), 2)))
_register("binom", _method_call(_discrete.binom), notes=_DISCRETE + "; cdf through betainc; pmf at p = 0 and 1",
          samples=_with_edges(
              _discrete_samples(_discrete.binom, lambda r: [6.0, _u(r, 0.2, 0.8)], _ints(0, 6), (2,)),
              [0.0, 1.0, 2.0, 5.0, 6.0], ((6.0, 0.0), 2), ((6.0, 1.0), 2)))
_register("poisson", _method_call(_discrete.poisson), notes=_DISCRETE + "; cdf through gammaincc; pmf at mu = 0",
          samples=_with_edges(
              _discrete_samples(_discrete.poisson, lambda r: [_u(r, 0.5, 6.0)], _ints(0, 8), (1,)),
              [0.0, 1.0, 2.0], ((0.0,), 1)))
_register("betabinom", _method_call(_discrete.betabinom), notes=_DISCRETE + "; cdf sums the pmf (plain n)",
          samples=_discrete_samples(_discrete.betabinom, lambda r: [6.0, _u(r, 0.5, 3.0), _u(r, 0.5, 3.0)],
                                    _ints(0, 6), (2, 3)))
_register("bernoulli", _method_call(_discrete.bernoulli), notes=_DISCRETE + "; entropy; pmf at p = 0 and 1",
          samples=_with_entropy(_with_edges(
              _discrete_samples(_discrete.bernoulli, lambda r: [_u(r, 0.1, 0.9)], _ints(0, 1), (1,)),
              [0.0, 1.0], ((0.0,), 1), ((1.0,), 1)), 0.1, 0.5, 0.8))

# ---- multivariate ---------------------------------------------------------------------------------------


def _multinomial_samples(rng):
    x = np.array([[1.0, 3.0, 1.0], [0.0, 2.0, 3.0]])
    p = np.array([0.2, 0.3, 0.4])  # sums to 0.9: SciPy replaces the last entry by 1 - 0.5
    exact = np.array([0.25, 0.35, 0.4])
    return [Sample(x, 5.0, p, argnums=(2,), method="logpmf"), Sample(x, 5.0, p, argnums=(2,), method="pmf"),
            Sample(x, 5.0, exact, argnums=(2,), kink=True, method="logpmf",
                   label="p summing to 1 (SciPy's branch point)"),
            Sample(np.array([[1.0, 2.0, 1.0], [1.5, 2.0, 1.5]]), 5.0, p, argnums=(2,), method="logpmf",
                   kink=True, label="x off the support")]


_register("multinomial", _method_call(_multinomial.multinomial), _multinomial_samples,
          notes="logpmf pmf; SciPy's replacement of the last p when p does not sum to 1")


def _spd(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


_register("multivariate_normal.entropy", lambda mean, cov, **kw: _multivariate.multivariate_normal.entropy(
    mean, cov, **kw),
    lambda rng: [Sample(np.zeros(3), _spd(rng, 3)), Sample(np.zeros(3), rng.uniform(0.5, 2.0, 3)),
                 Sample(np.zeros(2), _spd(rng, 2), allow_singular=True)],
    notes="0.5 (d (1 + log 2 pi) + logdet cov)")
_register("dirichlet.entropy", _multivariate.dirichlet.entropy,
          lambda rng: [Sample(rng.uniform(0.5, 4.0, 4))], notes="closed form with digamma")


def _kde_call(points, dataset, *weights, method="evaluate", bw_method=None):
    kde = _kde.gaussian_kde(dataset, bw_method=bw_method, weights=weights[0] if weights else None)
    return getattr(kde, method)(points)


def _kde_samples(rng):
    data1 = rng.standard_normal(5)
    data2 = rng.standard_normal((2, 5))
    return [Sample(rng.uniform(-2, 2, 4), data1, method="evaluate"),
            Sample(rng.uniform(-2, 2, 4), data1, method="logpdf", bw_method="silverman"),
            Sample(rng.uniform(-2, 2, (2, 2)), data2, method="logpdf"),
            Sample(rng.uniform(-2, 2, 3), data1, rng.uniform(0.5, 2.0, 5), method="pdf", label="weights"),
            Sample(rng.uniform(-2, 2, 3), data1, method="logpdf", bw_method=0.4, label="scalar bandwidth")]


_register("gaussian_kde", _kde_call, _kde_samples,
          notes="differentiable in the points, the dataset (through the covariance) and the weights")
