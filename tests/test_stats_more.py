"""npfunc.scipy.stats, the distributions added with issue 12: values against
scipy.stats (every method, broadcasting, scalars, keywords, frozen, invalid
parameters, points outside the support, quantile edges), derivatives in every
continuous argument against central differences of scipy.stats under grad,
jacfwd, vmap and a second order, the conventions at support edges (0, never
NaN), entropy, gaussian_kde, rankdata / mode, multinomial, the errors, and
natural programs: a censored Weibull survival fit and a von Mises fit."""
import zlib

import numpy as np
import pytest
import scipy.stats as st
from scipy.optimize import minimize

import npfunc
from npfunc.core.errors import ConcretizationError, UnsupportedOperationError
from npfunc.scipy import stats as S
from npfunc.testing import numerical_jacobian as fd

METHODS = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]

#: name -> (shape domains, standardized point domain)
CONTINUOUS = {
    "uniform": ((), (0.05, 0.95)),
    "truncnorm": (((-1.5, -0.3), (0.5, 2.0)), None),
    "pareto": (((1.0, 4.0),), (1.2, 4.0)),
    "lomax": (((1.0, 4.0),), (0.2, 4.0)),
    "vonmises": (((0.3, 6.0),), (-2.5, 2.5)),
    "wrapcauchy": (((0.1, 0.8),), (0.3, 6.0)),
    "gennorm": (((0.8, 3.0),), (0.2, 2.0)),
    "gumbel_l": ((), (-2.5, 2.0)),
    "gumbel_r": ((), (-2.0, 2.5)),
    "lognorm": (((0.3, 1.5),), (0.2, 4.0)),
    "weibull_min": (((0.6, 3.0),), (0.2, 3.0)),
    "invgamma": (((0.8, 4.0),), (0.2, 4.0)),
    "halfnorm": ((), (0.1, 3.0)),
    "maxwell": ((), (0.2, 3.5)),
    # (issue 12's first distributions, here for their quantiles; their other methods are in test_stats.py too)
    "expon": ((), (0.1, 3.0)),
    "cauchy": ((), (-3.0, 3.0)),
    "laplace": ((), (-2.5, 2.5)),
    "logistic": ((), (-2.5, 2.5)),
    "gamma": (((0.8, 4.0),), (0.2, 4.0)),
    "chi2": (((1.5, 6.0),), (0.3, 6.0)),
}


def _setup(name, rng, n=4):
    """(x, shapes, loc, scale), shapes/loc/scale of shape (n, 1) broadcasting against x (n,)."""
    domains, zdom = CONTINUOUS[name]
    shapes = [rng.uniform(lo, hi, (n, 1)) for lo, hi in domains]
    loc, scale = rng.uniform(-0.5, 0.5, (n, 1)), rng.uniform(0.6, 2.0, (n, 1))
    if name == "truncnorm":
        a, b = shapes[0][:, 0], shapes[1][:, 0]
        z = a + (b - a) * rng.uniform(0.1, 0.9, n)
    else:
        z = rng.uniform(*zdom, n)
    return loc[:, 0] + scale[:, 0] * z, shapes, loc, scale


def _close(got, ref, rtol=1e-10, atol=1e-300):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
@pytest.mark.parametrize("method", METHODS)
def test_values_match_scipy(name, method):
    rng = np.random.default_rng(zlib.crc32(f"{name} {method}".encode()))  # (str hashes vary by process)
    x, shapes, loc, scale = _setup(name, rng)
    ours, theirs = getattr(getattr(S, name), method), getattr(getattr(st, name), method)
    tol = dict(rtol=1e-10, atol=1e-300)
    if name == "vonmises":  # SciPy's von Mises cdf is good to ~1e-12: its log, to ~1e-12 / cdf
        tol = dict(rtol=1e-8 if method.startswith("log") else 1e-10, atol=1e-12)
    _close(ours(x, *shapes, loc, scale), theirs(x, *shapes, loc, scale), **tol)
    kw = dict(zip(getattr(S, name).shapes, shapes), loc=loc, scale=scale)
    _close(ours(x, **kw), theirs(x, **kw), **tol)
    scalars = [float(s[0, 0]) for s in shapes]
    a, b = ours(float(x[0]), *scalars), theirs(float(x[0]), *scalars)
    assert type(a) is type(b)
    _close(a, b, **tol)
    _close(getattr(getattr(S, name)(*shapes, loc=loc, scale=scale), method)(x), theirs(x, *shapes, loc, scale),
           **tol)


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_edges_invalid_and_quantiles_match_scipy(name):
    rng = np.random.default_rng(2)
    _, shapes, loc, scale = _setup(name, rng)
    dist, ref = getattr(S, name), getattr(st, name)
    x = np.array([-np.inf, -7.0, -1.0, 0.0, 0.5, 1.0, 2 * np.pi, 9.0, np.inf, np.nan])
    with np.errstate(all="ignore"):
        for method in METHODS:
            _close(getattr(dist, method)(x, *shapes), getattr(ref, method)(x, *shapes), atol=1e-12)
            _close(getattr(dist, method)(x, *shapes, scale=-1.0), getattr(ref, method)(x, *shapes, scale=-1.0))
        q = np.array([0.0, 1e-6, 0.3, 0.5, 0.9, 1.0, 1.2, -0.1, np.nan])
        _close(dist.ppf(q, *shapes, loc, scale), ref.ppf(q, *shapes, loc, scale), rtol=1e-8, atol=1e-12)
        if name == "vonmises":  # SciPy's isf is its root finder's ppf(1 - q): refused, naming ppf(1 - q)
            x0 = np.array([0.3, 0.02])
            with pytest.raises(UnsupportedOperationError, match=r"vonmises.ppf\(1 - q"):
                npfunc.grad(lambda v: np.sum(dist.isf(v, *shapes)))(x0)
            np.testing.assert_allclose(npfunc.jit(lambda v: dist.ppf(1 - v, 2.0))(x0), ref.isf(x0, 2.0), rtol=1e-10)
        else:
            _close(dist.isf(q, *shapes, loc, scale), ref.isf(q, *shapes, loc, scale), rtol=1e-8, atol=1e-12)
            tail = np.array([1e-300, 1e-12, 1e-6])  # SciPy's own isf formulas keep these (ppf(1 - q) would not)
            _close(dist.isf(tail, *shapes, loc, scale), ref.isf(tail, *shapes, loc, scale), rtol=1e-8)
        _close(dist.entropy(*shapes, loc, scale), ref.entropy(*shapes, loc, scale))
        if shapes:
            bad = [-s for s in shapes]
            _close(dist.logpdf(x, *bad), ref.logpdf(x, *bad))
            _close(dist.ppf(q, *bad), ref.ppf(q, *bad))
            if name != "vonmises":
                _close(dist.isf(q, *bad), ref.isf(q, *bad))


@pytest.mark.parametrize("method", METHODS + ["ppf", "isf", "entropy"])
@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_gradients_in_every_argument(name, method):
    """grad vs central differences of scipy.stats, for the point, shapes, loc and scale."""
    if (name, method) == ("vonmises", "isf"):  # refused, naming ppf(1 - q): test_edges_invalid_and_quantiles...
        method = "ppf"
    rng = np.random.default_rng(zlib.crc32(f"{name} {method} 1".encode()))
    x, shapes, loc, scale = _setup(name, rng, n=3)
    first = [] if method == "entropy" else [rng.uniform(0.05, 0.95, 3)] if method in ("ppf", "isf") else [x]
    args = first + [s[:, 0] for s in shapes] + [loc[:, 0], scale[:, 0]]
    ours, theirs = getattr(getattr(S, name), method), getattr(getattr(st, name), method)
    for k in range(len(args)):
        g = npfunc.grad(lambda *a: np.sum(ours(*a)), argnums=k)(*args)
        ref = fd(lambda v: np.sum(theirs(*[v if j == k else a for j, a in enumerate(args)])), args[k])
        np.testing.assert_allclose(g, ref, rtol=2e-5, atol=1e-7, err_msg=f"argument {k}")
    # jacfwd (forward mode) of the elementwise function, and vmap(grad) against a loop
    jac = npfunc.jacfwd(lambda v: ours(*[v] + args[1:]))(args[0])
    np.testing.assert_allclose(np.diag(jac), npfunc.grad(lambda v: np.sum(ours(*[v] + args[1:])))(args[0]),
                               rtol=1e-10, atol=1e-14)
    per = npfunc.vmap(npfunc.grad(lambda *a: ours(*a), argnums=len(args) - 1))(*args)
    loop = [npfunc.grad(lambda *a: ours(*a), argnums=len(args) - 1)(*[a[i] for a in args]) for i in range(3)]
    np.testing.assert_allclose(per, loop, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name,method", [("truncnorm", "logcdf"), ("vonmises", "cdf"), ("gennorm", "sf"),
                                         ("weibull_min", "logsf"), ("invgamma", "cdf"), ("wrapcauchy", "ppf"),
                                         ("lognorm", "logpdf")])
def test_hessian_in_parameters(name, method):
    rng = np.random.default_rng(11)
    x, shapes, loc, scale = _setup(name, rng, n=3)
    first = rng.uniform(0.1, 0.9, 3) if method == "ppf" else x
    fn = getattr(getattr(S, name), method)
    p0 = np.array([float(s[0, 0]) for s in shapes] + [0.1, 1.3])

    def f(p):
        return np.sum(fn(first, *[p[i] for i in range(p.size)]))

    np.testing.assert_allclose(npfunc.hessian(f)(p0), fd(npfunc.grad(f), p0, eps=1e-5), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["uniform", "truncnorm", "pareto", "lomax", "wrapcauchy", "lognorm",
                                  "weibull_min", "invgamma", "halfnorm", "maxwell"])
def test_zero_derivative_outside_the_support(name):
    shapes = {"truncnorm": (-1.0, 1.5), "pareto": (2.0,), "lomax": (2.0,), "wrapcauchy": (0.4,), "lognorm": (0.7,),
              "weibull_min": (1.5,), "invgamma": (2.0,)}.get(name, ())
    x = np.array([-3.0, 8.0])
    dist = getattr(S, name)
    for method in METHODS:
        for k in range(1 + len(shapes) + 2):
            args = [x, *[np.full(2, s) for s in shapes], np.zeros(2), np.ones(2)]

            def f(*a):
                out = getattr(dist, method)(*a)
                return np.sum(np.where(np.isfinite(out), out, 0.0))

            g = npfunc.grad(f, argnums=k)(*args)
            lo, hi = getattr(st, name).support(*shapes)
            outside = (x < lo) | (x > hi)
            assert np.all(np.isfinite(g)), (method, k, g)
            assert np.all(g[outside] == 0), (method, k, g)


def test_special_points():
    # gennorm at its median: the cdf's derivative is the density (the gamma form is 0 * inf there)
    for beta in (0.7, 1.0, 2.5):
        np.testing.assert_allclose(npfunc.grad(S.gennorm.cdf)(0.0, beta), st.gennorm.pdf(0.0, beta), rtol=1e-14)
        np.testing.assert_allclose(npfunc.grad(S.gennorm.ppf)(0.5, beta), 1 / st.gennorm.pdf(0.0, beta),
                                   rtol=1e-14)
        assert npfunc.grad(S.gennorm.logpdf)(0.0, beta) == 0
    # von Mises: kappa = 0 is the uniform circle, derivative in kappa sin(x) / (2 pi)
    np.testing.assert_allclose(npfunc.grad(S.vonmises.cdf, argnums=1)(1.2, 0.0), np.sin(1.2) / (2 * np.pi))
    np.testing.assert_allclose(S.vonmises.cdf(1.2 + 2 * np.pi, 3.0), S.vonmises.cdf(1.2, 3.0) + 1)
    # truncnorm with one-sided and far-tail truncation: finite, exact gradients
    a, b = np.array([-np.inf, 6.0, -9.0]), np.array([0.5, np.inf, -8.0])
    x = np.array([-1.0, 7.0, -8.5])
    _close(S.truncnorm.logpdf(x, a, b), st.truncnorm.logpdf(x, a, b), rtol=1e-9)
    g = npfunc.grad(lambda x: np.sum(S.truncnorm.logcdf(x, a, b)))(x)
    np.testing.assert_allclose(g, fd(lambda x: np.sum(st.truncnorm.logcdf(x, a, b)), x), rtol=1e-6)
    gb = npfunc.grad(lambda b: np.sum(S.truncnorm.logpdf(x, a, b)))(b)
    assert np.isfinite(gb).all() and gb[1] == 0
    # entropy with an infinite bound: x phi(x) -> 0 (SciPy's formula is NaN there)
    np.testing.assert_allclose(S.truncnorm.entropy(-np.inf, np.inf), st.norm.entropy())
    np.testing.assert_allclose(S.truncnorm.entropy(0.0, np.inf), st.halfnorm.entropy())


# ---- discrete ----------------------------------------------------------------------------------------------

DISCRETE = {"geom": [(0.1, 0.9)], "nbinom": [(0.7, 6.0), (0.1, 0.9)], "betabinom": [None, (0.3, 4.0), (0.3, 4.0)],
            "bernoulli": [(0.1, 0.9)]}


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_values_and_gradients(name):
    rng = np.random.default_rng(4)
    shapes = [np.array([[3.0], [6.0], [9.0]]) if d is None else rng.uniform(*d, (3, 1)) for d in DISCRETE[name]]
    loc = np.array([[0.0], [1.0], [-2.0]])
    k = np.array([-2.0, 0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 12.0, np.nan])
    ours, theirs = getattr(S, name), getattr(st, name)
    with np.errstate(all="ignore"):
        for m in ["logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"]:
            _close(getattr(ours, m)(k, *shapes, loc), getattr(theirs, m)(k, *shapes, loc), rtol=1e-9)
        q = np.array([0.0, 0.05, 0.5, 0.95, 1.0, 1.5])
        _close(ours.ppf(q, *shapes, loc), theirs.ppf(q, *shapes, loc))
    kk = np.zeros(3) if name == "bernoulli" else np.array([0.0, 1.0, 2.0]) + (name == "geom")
    for m in ["logpmf", "cdf", "logsf"]:
        for i, s in enumerate(shapes):
            if DISCRETE[name][i] is None:
                continue
            sv = s[:, 0]

            def ours_f(v, i=i):
                return np.sum(getattr(ours, m)(kk, *[v if j == i else t[:, 0] for j, t in enumerate(shapes)]))

            def ref_f(v, i=i):
                return np.sum(getattr(theirs, m)(kk, *[v if j == i else t[:, 0] for j, t in enumerate(shapes)]))

            np.testing.assert_allclose(npfunc.grad(ours_f)(sv), fd(ref_f, sv), rtol=1e-6, atol=1e-9,
                                       err_msg=f"{m} shape {i}")
    assert npfunc.grad(lambda l: np.sum(ours.ppf(np.array([0.3, 0.8]), *[s[0, 0] for s in shapes], l)))(0.5) == 2


def test_discrete_entropy_and_errors():
    _close(S.geom.entropy(np.array([0.2, 0.7])), st.geom.entropy(np.array([0.2, 0.7])))
    _close(S.bernoulli.entropy(np.array([0.2, 0.7])), st.bernoulli.entropy(np.array([0.2, 0.7])))
    g = npfunc.grad(lambda p: np.sum(S.bernoulli.entropy(p)))(np.array([0.2, 0.7]))
    np.testing.assert_allclose(g, np.log((1 - np.array([0.2, 0.7])) / np.array([0.2, 0.7])))
    with pytest.raises(UnsupportedOperationError, match="no closed form"):
        S.nbinom.entropy(3.0, 0.4)
    with pytest.raises(UnsupportedOperationError, match="plain integer"):
        npfunc.grad(lambda n: S.betabinom.cdf(2.0, n, 1.5, 2.0))(5.0)
    # but logpmf is differentiable in n (continuous extension)
    assert np.isfinite(npfunc.grad(lambda n: S.betabinom.logpmf(2.0, n, 1.5, 2.0))(5.0))


def test_multinomial():
    x = np.array([[1.0, 3.0, 1.0], [0.0, 2.0, 3.0], [1.0, 1.0, 1.0], [1.5, 2.0, 1.5]])
    for p in (np.array([0.25, 0.35, 0.4]), np.array([0.2, 0.3, 0.4]), np.array([0.2, -0.1, 0.9])):
        with np.errstate(all="ignore"):
            _close(S.multinomial.logpmf(x, 5, p), st.multinomial.logpmf(x, 5, p), rtol=1e-12)
            _close(S.multinomial(5, p).pmf(x), st.multinomial(5, p).pmf(x), rtol=1e-12)
    p = np.array([0.2, 0.3, 0.4])  # not normalized: SciPy replaces the last entry
    g = npfunc.grad(lambda p: np.sum(S.multinomial.logpmf(x[:2], 5, p)))(p)
    np.testing.assert_allclose(g, fd(lambda p: np.sum(st.multinomial.logpmf(x[:2], 5, p)), p), rtol=1e-6)
    assert g[-1] == 0
    g = npfunc.grad(lambda p: np.sum(S.multinomial.logpmf(x[:2], 5, p / np.sum(p))))(np.array([1.0, 2.0, 3.0]))
    assert np.all(np.isfinite(g))


def test_entropy_of_the_earlier_distributions_and_multivariate():
    for name, shapes in {"norm": (), "t": (3.5,), "cauchy": (), "laplace": (), "logistic": (), "gamma": (2.5,),
                         "beta": (1.5, 2.5), "chi2": (3.0,), "expon": ()}.items():
        _close(getattr(S, name).entropy(*shapes, scale=1.7), getattr(st, name).entropy(*shapes, scale=1.7),
               rtol=1e-12)
    _close(S.t.entropy(np.array([150.0, 1e4])), st.t.entropy(np.array([150.0, 1e4])), rtol=1e-12)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    cov = a @ a.T + np.eye(3)
    _close(S.multivariate_normal.entropy(np.zeros(3), cov), st.multivariate_normal.entropy(np.zeros(3), cov))
    _close(S.multivariate_normal(np.zeros(3), cov).entropy(), st.multivariate_normal(np.zeros(3), cov).entropy())
    _close(S.multivariate_normal.entropy(np.zeros(2), np.array([1.0, 2.0])),
           st.multivariate_normal.entropy(np.zeros(2), np.array([1.0, 2.0])))
    sing = np.diag([1.0, 2.0, 0.0])
    _close(S.multivariate_normal(np.zeros(3), sing, allow_singular=True).entropy(),
           st.multivariate_normal(np.zeros(3), sing, allow_singular=True).entropy())
    g = npfunc.grad(lambda a: S.multivariate_normal.entropy(np.zeros(3), a @ a.T + np.eye(3)))(a)
    np.testing.assert_allclose(g, fd(lambda a: st.multivariate_normal.entropy(np.zeros(3), a @ a.T + np.eye(3)), a),
                               rtol=1e-6)
    alpha = np.array([0.5, 2.0, 3.5])
    _close(S.dirichlet.entropy(alpha), st.dirichlet.entropy(alpha), rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(S.dirichlet.entropy)(alpha), fd(st.dirichlet.entropy, alpha), rtol=1e-6)


# ---- gaussian_kde, rankdata, mode ---------------------------------------------------------------------

@pytest.mark.parametrize("bw", [None, "silverman", 0.3, lambda kde: 0.5 * kde.scotts_factor()])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_kde(bw, weighted):
    rng = np.random.default_rng(6)
    data = np.stack([rng.standard_normal(12), 0.5 * rng.standard_normal(12)])
    w = rng.uniform(0.5, 2.0, 12) if weighted else None
    pts = rng.uniform(-2, 2, (2, 5))
    ours, theirs = S.gaussian_kde(data, bw, w), st.gaussian_kde(data, bw, w)
    _close(ours(pts), theirs(pts), rtol=1e-12)
    _close(ours.logpdf(pts), theirs.logpdf(pts), rtol=1e-12)
    _close(ours.covariance, theirs.covariance, rtol=1e-12)
    _close(ours.factor, theirs.factor, rtol=1e-14)
    _close(ours.neff, theirs.neff, rtol=1e-14)

    def ours_f(pts, data):
        return np.sum(S.gaussian_kde(data, bw, w).logpdf(pts))

    def ref_f(pts, data):
        return np.sum(st.gaussian_kde(data, bw, w).logpdf(pts))

    np.testing.assert_allclose(npfunc.grad(ours_f)(pts, data), fd(lambda p: ref_f(p, data), pts), rtol=1e-6)
    np.testing.assert_allclose(npfunc.grad(ours_f, argnums=1)(pts, data), fd(lambda d: ref_f(pts, d), data),
                               rtol=1e-5, atol=1e-8)


def test_unmodified_gaussian_kde_of_traced_data_is_the_twin():
    """scipy.stats.gaussian_kde built from traced data (the unmodified call) gives the
    twin's derivatives; built from plain data it is SciPy's own object."""
    data = np.array([0.0, 0.4, 1.1, 2.0, -0.7])
    f = lambda d: st.gaussian_kde(d).logpdf(np.array([0.3, 1.5])).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(f)(data), fd(f, data), rtol=1e-6)
    assert type(st.gaussian_kde(data)) is st._kde.gaussian_kde and isinstance(S.gaussian_kde(data), st.gaussian_kde)


def test_gaussian_kde_one_dimensional_and_batched():
    data = np.array([0.0, 0.4, 1.1, 2.0, -0.7])
    x = np.array([-1.0, 0.5, 3.0])
    _close(S.gaussian_kde(data).evaluate(x), st.gaussian_kde(data).evaluate(x), rtol=1e-12)
    per = npfunc.vmap(npfunc.grad(lambda d: S.gaussian_kde(d).logpdf(0.3)[0]))(np.stack([data, data + 1]))
    loop = [npfunc.grad(lambda d: S.gaussian_kde(d).logpdf(0.3)[0])(d) for d in (data, data + 1)]
    np.testing.assert_allclose(per, loop, rtol=1e-12)
    far = npfunc.grad(lambda x: np.sum(S.gaussian_kde(data).logpdf(x)))(np.array([60.0]))
    assert np.isfinite(far).all() and far[0] < 0  # log space: finite far from the data


def test_rankdata_and_mode():
    a = np.array([[3.0, 1.0, 2.0, 2.0], [0.5, 0.5, -1.0, 4.0]])
    for method in ("average", "min", "max", "dense", "ordinal"):
        for axis in (None, 0, 1, -1):
            np.testing.assert_array_equal(S.rankdata(a, method, axis=axis), st.rankdata(a, method, axis=axis))
    batched = npfunc.vmap(lambda r: S.rankdata(r))(a)
    np.testing.assert_array_equal(batched, np.stack([st.rankdata(r) for r in a]))
    g = npfunc.grad(lambda a: np.sum(np.reshape(S.rankdata(a), a.shape) * a))(a)
    assert np.all(g == st.rankdata(a).reshape(a.shape))  # the ranks themselves carry no derivative
    for axis in (0, 1, None):
        for keepdims in (False, True):
            ours, theirs = S.mode(a, axis=axis, keepdims=keepdims), st.mode(a, axis=axis, keepdims=keepdims)
            np.testing.assert_array_equal(ours.mode, theirs.mode)
            np.testing.assert_array_equal(ours.count, theirs.count)
    m = npfunc.vmap(lambda r: S.mode(r).mode)(a)
    np.testing.assert_array_equal(m, [st.mode(r).mode for r in a])


def test_scipy_itself_reaches_the_twin():
    assert npfunc.grad(lambda k: st.vonmises.logpdf(0.3, k))(2.0) == \
        npfunc.grad(lambda k: S.vonmises.logpdf(0.3, k))(2.0)


# ---- natural programs ----------------------------------------------------------------------------------

def test_weibull_survival_fit_with_censoring():
    """Right-censored survival times: events contribute logpdf, censored ones logsf."""
    rng = np.random.default_rng(8)
    c_true, scale_true = 1.7, 3.0
    t = scale_true * rng.weibull(c_true, 300)
    censor = rng.uniform(0, 6, 300)
    observed = np.minimum(t, censor)
    event = t <= censor

    def nll(theta):
        c, scale = np.exp(theta[0]), np.exp(theta[1])
        ll = np.where(event, S.weibull_min.logpdf(observed, c, scale=scale),
                      S.weibull_min.logsf(observed, c, scale=scale))
        return -np.sum(ll)

    def nll_scipy(theta):
        c, scale = np.exp(theta[0]), np.exp(theta[1])
        return -np.sum(np.where(event, st.weibull_min.logpdf(observed, c, scale=scale),
                                st.weibull_min.logsf(observed, c, scale=scale)))

    theta0 = np.array([0.0, 0.5])
    np.testing.assert_allclose(nll(theta0), nll_scipy(theta0), rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(nll)(theta0), fd(nll_scipy, theta0), rtol=1e-6)
    fit = minimize(nll, theta0, jac=npfunc.grad(nll), hess=npfunc.hessian(nll), method="trust-exact")
    assert fit.success
    c, scale = np.exp(fit.x)
    assert abs(c - c_true) < 0.3 and abs(scale - scale_true) < 0.4
    # per-subject gradient contributions, vmapped
    per = npfunc.vmap(npfunc.grad(lambda th, o, e: -np.where(e, S.weibull_min.logpdf(o, np.exp(th[0]),
                                                                                          scale=np.exp(th[1])),
                                                               S.weibull_min.logsf(o, np.exp(th[0]),
                                                                                   scale=np.exp(th[1])))),
                      in_dims=(None, 0, 0))(fit.x, observed, event)
    np.testing.assert_allclose(per.sum(0), npfunc.grad(nll)(fit.x), atol=1e-8)


def test_von_mises_fit_with_the_twin():
    rng = np.random.default_rng(9)
    data = rng.vonmises(0.7, 3.0, 400)

    def nll(theta):
        return -np.sum(S.vonmises.logpdf(data, np.exp(theta[1]), loc=theta[0]))

    theta0 = np.array([0.0, 0.0])
    np.testing.assert_allclose(npfunc.grad(nll)(theta0),
                               fd(lambda t: -np.sum(st.vonmises.logpdf(data, np.exp(t[1]), loc=t[0])), theta0),
                               rtol=1e-6)
    fit = minimize(nll, theta0, jac=npfunc.grad(nll), method="BFGS")
    assert abs(fit.x[0] - 0.7) < 0.1 and abs(np.exp(fit.x[1]) - 3.0) < 0.5
    # the fitted distribution's quantiles, differentiable in its parameters
    g = npfunc.grad(lambda t: S.vonmises.ppf(0.9, np.exp(t[1]), loc=t[0]))(fit.x)
    h = 1e-6
    ref = [(st.vonmises.ppf(0.9, np.exp(fit.x[1]), loc=fit.x[0] + h)
            - st.vonmises.ppf(0.9, np.exp(fit.x[1]), loc=fit.x[0] - h)) / (2 * h),
           (st.vonmises.ppf(0.9, np.exp(fit.x[1] + h), loc=fit.x[0])
            - st.vonmises.ppf(0.9, np.exp(fit.x[1] - h), loc=fit.x[0])) / (2 * h)]
    np.testing.assert_allclose(g, ref, rtol=1e-5)
