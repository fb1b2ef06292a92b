"""npfunc.scipy.stats: values against scipy.stats, gradients in every continuous
argument against central differences of scipy.stats, vmap against a loop,
second derivatives, the incomplete gamma/beta shape derivatives against
mpmath, and the error users get from scipy.stats itself on traced values."""
import zlib

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st

import npfunc
from npfunc.core.errors import BatchedConversionError, ConcretizationError
from npfunc.scipy import stats as S

EPS = 1e-6


def _fd(fn, args, i, eps=EPS):
    """Central differences of sum(fn(*args)) with respect to args[i] (relative step)."""
    args = [np.asarray(a, dtype=np.float64) for a in args]
    a = args[i]
    out = np.zeros_like(a)
    for j in np.ndindex(a.shape):
        h = eps * max(1.0, abs(a[j]))
        plus, minus = a.copy(), a.copy()
        plus[j] += h
        minus[j] -= h
        up = list(args)
        up[i] = plus
        down = list(args)
        down[i] = minus
        out[j] = (np.sum(fn(*up)) - np.sum(fn(*down))) / (2 * h)
    return out


def _check_grads(ours, theirs, args, argnums, rtol=2e-5, atol=1e-8):
    for i in argnums:
        g = npfunc.grad(lambda *a: np.sum(ours(*a)), argnums=i)(*args)
        ref = _fd(theirs, args, i)
        np.testing.assert_allclose(g, ref, rtol=rtol, atol=atol, err_msg=f"argument {i}")


def _close(got, ref, rtol=1e-12):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=1e-300, equal_nan=True)


# ---- continuous distributions -----------------------------------------------------------------

def _params(name, rng):
    """Random (shapes..., loc, scale) with shapes broadcasting against x of shape (5,)."""
    col = lambda lo, hi: rng.uniform(lo, hi, (3, 1))  # noqa: E731
    shapes = {"norm": (), "cauchy": (), "laplace": (), "logistic": (), "expon": (),
              "t": (col(0.8, 9.0),), "gamma": (col(0.5, 5.0),), "chi2": (col(0.8, 8.0),),
              "beta": (col(0.6, 4.0), col(0.6, 4.0))}[name]
    return shapes + (col(-0.5, 0.5), col(0.6, 2.0))


def _points(name, loc, scale, rng):
    if name == "beta":
        return loc + scale * rng.uniform(0.05, 0.95, 5)
    if name in ("gamma", "chi2", "expon"):
        return loc + scale * rng.uniform(0.1, 4.0, 5)
    return rng.uniform(-3, 3, 5)


CONTINUOUS = ["norm", "t", "cauchy", "laplace", "logistic", "gamma", "beta", "chi2", "expon"]
METHODS = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("method", METHODS)
def test_continuous_values(name, method):
    rng = np.random.default_rng(zlib.crc32(f"{name} {method}".encode()))
    params = _params(name, rng)
    x = _points(name, params[-2], params[-1], rng)
    ours, theirs = getattr(getattr(S, name), method), getattr(getattr(st, name), method)
    _close(ours(x, *params), theirs(x, *params))
    # keywords, defaults and scalars
    kw = dict(zip(getattr(S, name).shapes, params))
    _close(ours(x, **kw), theirs(x, **kw))
    _close(ours(0.7, *params[:-2]), theirs(0.7, *params[:-2]))
    # frozen
    _close(getattr(getattr(S, name)(*params), method)(x), theirs(x, *params))


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("method", METHODS)
def test_continuous_outside_support_and_invalid(name, method):
    ours, theirs = getattr(getattr(S, name), method), getattr(getattr(st, name), method)
    x = np.array([-np.inf, -2.0, -0.0, 0.0, 0.5, 1.0, 3.0, np.inf, np.nan])
    shapes = {"t": (3.0,), "gamma": (1.5,), "chi2": (2.5,), "beta": (1.5, 2.5)}.get(name, ())
    with np.errstate(all="ignore"):
        _close(ours(x, *shapes), theirs(x, *shapes))
        _close(ours(x, *shapes, scale=-1.0), theirs(x, *shapes, scale=-1.0))
        if shapes:
            bad = (-1.0,) + shapes[1:]
            _close(ours(x, *bad), theirs(x, *bad))


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("method", METHODS)
def test_continuous_gradients(name, method):
    """Every continuous argument: x, the shape parameters, loc and scale."""
    rng = np.random.default_rng(1 + zlib.crc32(f"{name} {method}".encode()))
    params = _params(name, rng)
    x = _points(name, params[-2], params[-1], rng)
    args = (x,) + params
    _check_grads(getattr(getattr(S, name), method), getattr(getattr(st, name), method), args,
                 range(len(args)))


@pytest.mark.parametrize("name", CONTINUOUS)
def test_continuous_gradient_zero_outside_support(name):
    shapes = {"t": (3.0,), "gamma": (1.5,), "chi2": (2.5,), "beta": (1.5, 2.5)}.get(name, ())
    x = np.array([-2.0, 7.0])
    for method in METHODS:
        f = getattr(getattr(S, name), method)
        g = npfunc.grad(lambda x: np.sum(np.where(np.isfinite(f(x, *shapes)), f(x, *shapes), 0.0)))(x)
        assert np.all(np.isfinite(g)), (method, g)
        lo, hi = {"gamma": (0, np.inf), "chi2": (0, np.inf), "expon": (0, np.inf), "beta": (0, 1)}.get(
            name, (-np.inf, np.inf))
        outside = (x < lo) | (x > hi)
        assert np.all(g[outside] == 0), (method, g)


@pytest.mark.parametrize("name,method", [("norm", "logpdf"), ("gamma", "cdf"), ("beta", "logcdf"),
                                         ("t", "logpdf"), ("t", "sf"), ("chi2", "logsf"),
                                         ("logistic", "logcdf"), ("cauchy", "cdf")])
def test_vmap_over_parameters_matches_loop(name, method):
    rng = np.random.default_rng(7)
    dist = getattr(S, name)
    x = _points(name, 0.0, 1.0, rng)
    batch = [np.squeeze(p, -1) for p in _params(name, rng)]  # each parameter (3,)

    def f(*p):
        return getattr(dist, method)(x, *p)

    got = npfunc.vmap(f)(*batch)
    ref = np.stack([f(*[p[i] for p in batch]) for i in range(3)])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    grads = npfunc.vmap(npfunc.grad(lambda *p: np.sum(f(*p)), argnums=tuple(range(len(batch)))))(*batch)
    for k, gk in enumerate(grads):
        loop = [npfunc.grad(lambda *p: np.sum(f(*p)), argnums=k)(*[p[i] for p in batch]) for i in range(3)]
        np.testing.assert_allclose(gk, np.stack(loop), rtol=1e-10, atol=1e-14)


def _fd_hessian(f, p, eps=1e-5):
    n = p.size
    out = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        out[:, i] = (npfunc.grad(f)(p + e) - npfunc.grad(f)(p - e)) / (2 * eps)
    return out


@pytest.mark.parametrize("name,method,x,p", [
    ("norm", "logcdf", np.array([-1.0, 0.3, 2.0]), np.array([0.2, 1.3])),
    ("gamma", "cdf", np.array([0.4, 1.1, 3.0]), np.array([2.0, 0.1, 1.3])),
    ("beta", "logcdf", np.array([0.2, 0.5, 0.8]), np.array([2.0, 1.3, 0.0, 1.0])),
    ("t", "cdf", np.array([-1.0, 0.4, 2.5]), np.array([2.5, 0.3, 1.2])),
    ("chi2", "sf", np.array([0.5, 2.0, 4.0]), np.array([3.0, 0.0, 1.0])),
    ("cauchy", "logpdf", np.array([-3.0, 0.2, 1.5]), np.array([0.1, 0.9])),
])
def test_hessian_in_parameters(name, method, x, p):
    fn = getattr(getattr(S, name), method)

    def f(p):
        return np.sum(fn(x, *[p[i] for i in range(p.size)]))

    np.testing.assert_allclose(npfunc.hessian(f)(p), _fd_hessian(f, p), rtol=1e-5, atol=1e-7)


def test_second_derivative_in_x_and_jacfwd_of_grad():
    x = np.array([0.3, 1.2, 2.5])
    f = lambda x: np.sum(S.gamma.logcdf(x, 1.7, scale=0.8))  # noqa: E731
    np.testing.assert_allclose(npfunc.jacfwd(npfunc.grad(f))(x), _fd_hessian(f, x), rtol=1e-5, atol=1e-8)


def test_norm_ppf_isf():
    q = np.array([0.0, 0.1, 0.5, 0.97, 1.0, 1.5])
    with np.errstate(all="ignore"):
        _close(S.norm.ppf(q, 0.3, 2.0), st.norm.ppf(q, 0.3, 2.0))
        _close(S.norm.isf(q, 0.3, 2.0), st.norm.isf(q, 0.3, 2.0))
    q = np.array([0.1, 0.5, 0.97])
    _check_grads(S.norm.ppf, st.norm.ppf, (q, 0.3, 2.0), range(3))


def test_tails_are_accurate():
    """log-cdf / log-sf far in the tails stay finite where they should."""
    z = np.array([-40.0, -10.0, 10.0, 40.0])
    _close(S.norm.logcdf(z), st.norm.logcdf(z))
    _close(S.logistic.logsf(z), st.logistic.logsf(z))
    _close(S.gamma.logsf(np.array([30.0, 60.0]), 2.0), st.gamma.logsf(np.array([30.0, 60.0]), 2.0))
    g = npfunc.grad(lambda z: np.sum(S.norm.logcdf(z)))(z)
    assert np.all(np.isfinite(g))
    # laplace: the exact log forms where SciPy's log(pdf) underflows
    np.testing.assert_allclose(S.laplace.logpdf(800.0), -800.0 - np.log(2.0))
    np.testing.assert_allclose(S.laplace.logcdf(-800.0), -800.0 - np.log(2.0))


def test_argument_errors():
    with pytest.raises(TypeError, match="missing required argument"):
        S.gamma.logpdf(1.0)
    with pytest.raises(TypeError, match="multiple values"):
        S.norm.logpdf(1.0, 0.0, loc=1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        S.norm.logpdf(1.0, mu=1.0)


# ---- discrete ------------------------------------------------------------------------------------

DISCRETE = {"poisson": (lambda rng: (rng.uniform(0.3, 6.0, (3, 1)),), (1,)),
            "binom": (lambda rng: (np.array([[4.0], [9.0], [15.0]]), rng.uniform(0.05, 0.95, (3, 1))), (2,))}
DMETHODS = ["logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"]


@pytest.mark.parametrize("name", sorted(DISCRETE))
@pytest.mark.parametrize("method", DMETHODS)
def test_discrete_values_and_gradients(name, method):
    rng = np.random.default_rng(zlib.crc32(f"{name} {method}".encode()))
    make, diff = DISCRETE[name]
    params = make(rng)
    k = np.array([0.0, 1.0, 2.0, 3.0])
    ours, theirs = getattr(getattr(S, name), method), getattr(getattr(st, name), method)
    _close(ours(k, *params), theirs(k, *params))
    _close(ours(k, *params, loc=1.0), theirs(k, *params, loc=1.0))
    _close(getattr(getattr(S, name)(*params), method)(k), theirs(k, *params))
    odd = np.array([-1.0, 2.5, 40.0, np.inf, -np.inf, np.nan])
    with np.errstate(all="ignore"):
        _close(ours(odd, *params), theirs(odd, *params))
    _check_grads(ours, theirs, (k,) + params, diff)
    # the other arguments are data: their derivatives exist and are finite
    g = npfunc.grad(lambda k: np.sum(ours(k, *params)))(k)
    assert np.all(np.isfinite(g))


def test_discrete_invalid_parameters():
    k = np.array([0.0, 1.0, 2.0])
    with np.errstate(all="ignore"):
        for m in DMETHODS:
            _close(getattr(S.poisson, m)(k, -1.0), getattr(st.poisson, m)(k, -1.0))
            _close(getattr(S.binom, m)(k, 4.5, 0.3), getattr(st.binom, m)(k, 4.5, 0.3))
            _close(getattr(S.binom, m)(k, 4.0, 1.3), getattr(st.binom, m)(k, 4.0, 1.3))


def test_discrete_vmap_over_parameter():
    mu = np.array([0.5, 2.0, 7.5])
    k = np.arange(6.0)
    f = lambda mu: S.poisson.logcdf(k, mu)  # noqa: E731
    np.testing.assert_allclose(npfunc.vmap(f)(mu), np.stack([st.poisson.logcdf(k, m) for m in mu]), rtol=1e-12)
    g = npfunc.vmap(npfunc.grad(lambda mu: np.sum(f(mu))))(mu)
    np.testing.assert_allclose(g, [_fd(st.poisson.logcdf, (k, m), 1) for m in mu], rtol=1e-5)


def test_binom_hessian_in_p():
    k = np.array([0.0, 3.0, 7.0])
    f = lambda p: np.sum(S.binom.logsf(k, 10.0, p[0]) + S.binom.logpmf(k, 10.0, p[0]))  # noqa: E731
    np.testing.assert_allclose(npfunc.hessian(f)(np.array([0.35])), _fd_hessian(f, np.array([0.35])), rtol=1e-5)


# ---- multivariate ---------------------------------------------------------------------------------

def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d)


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
@pytest.mark.parametrize("cov_kind", ["full", "diag", "scalar"])
def test_multivariate_normal_values_and_gradients(method, cov_kind):
    rng = np.random.default_rng(3)
    d = 3
    cov = {"full": _spd(rng, d), "diag": rng.uniform(0.5, 2.0, d), "scalar": np.array(1.7)}[cov_kind]
    mean, x = rng.standard_normal(d), rng.standard_normal((4, d))
    ours, theirs = getattr(S.multivariate_normal, method), getattr(st.multivariate_normal, method)
    _close(ours(x, mean, cov), theirs(x, mean, cov), rtol=1e-11)
    _close(ours(x[0], mean, cov), theirs(x[0], mean, cov), rtol=1e-11)
    _close(ours(x, mean=mean, cov=cov), theirs(x, mean=mean, cov=cov), rtol=1e-11)
    _close(getattr(S.multivariate_normal(mean, cov), method)(x), theirs(x, mean, cov), rtol=1e-11)
    _check_grads(ours, theirs, (x, mean, cov), range(3))


def test_multivariate_normal_one_dimensional_and_defaults():
    x = np.array([0.3, -1.2, 2.0])
    _close(S.multivariate_normal.logpdf(x), st.multivariate_normal.logpdf(x))
    _close(S.multivariate_normal.logpdf(x, 0.5, 2.0), st.multivariate_normal.logpdf(x, 0.5, 2.0))
    _close(S.multivariate_normal.logpdf(x, None, np.eye(3)), st.multivariate_normal.logpdf(x, None, np.eye(3)))


def test_multivariate_normal_gradient_of_a_symmetric_parametrization():
    """cov = A A^T + I: the chain rule through the lower-triangle gradient is the true one."""
    rng = np.random.default_rng(4)
    a, x, mean = rng.standard_normal((3, 3)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    f = lambda a: np.sum(S.multivariate_normal.logpdf(x, mean, a @ a.T + np.eye(3)))  # noqa: E731
    ref = _fd(lambda a: st.multivariate_normal.logpdf(x, mean, a @ a.T + np.eye(3)), (a,), 0)
    np.testing.assert_allclose(npfunc.grad(f)(a), ref, rtol=1e-5, atol=1e-8)


def test_multivariate_normal_singular():
    rng = np.random.default_rng(5)
    b = rng.standard_normal((3, 2))
    cov, mean = b @ b.T, rng.standard_normal(3)
    on = rng.standard_normal((4, 2)) @ b.T + mean
    off = rng.standard_normal((2, 3))
    for x in (on, off):
        _close(S.multivariate_normal.logpdf(x, mean, cov, allow_singular=True),
               st.multivariate_normal.logpdf(x, mean, cov, allow_singular=True), rtol=1e-9)
    g = npfunc.grad(lambda m: np.sum(S.multivariate_normal.logpdf(on, m, cov, allow_singular=True)))(mean)
    v = b @ np.array([0.3, -0.8])  # a direction inside the support
    h = 1e-6
    ref = (np.sum(st.multivariate_normal.logpdf(on, mean + h * v, cov, allow_singular=True))
           - np.sum(st.multivariate_normal.logpdf(on, mean - h * v, cov, allow_singular=True))) / (2 * h)
    np.testing.assert_allclose(g @ v, ref, rtol=1e-5)
    with pytest.raises(np.linalg.LinAlgError, match="allow_singular"):
        S.multivariate_normal.logpdf(on, mean, cov)


def test_multivariate_normal_vmap_and_hessian():
    rng = np.random.default_rng(6)
    d = 3
    cov, x = _spd(rng, d), rng.standard_normal((4, d))
    means = rng.standard_normal((5, d))
    got = npfunc.vmap(lambda m: S.multivariate_normal.logpdf(x, m, cov))(means)
    np.testing.assert_allclose(got, np.stack([st.multivariate_normal.logpdf(x, m, cov) for m in means]), rtol=1e-12)
    covs = np.stack([_spd(rng, d) for _ in range(4)])
    got = npfunc.vmap(lambda c: S.multivariate_normal.logpdf(x, means[0], c))(covs)
    np.testing.assert_allclose(got, np.stack([st.multivariate_normal.logpdf(x, means[0], c) for c in covs]),
                               rtol=1e-11)
    f = lambda m: np.sum(S.multivariate_normal.logpdf(x, m, cov))  # noqa: E731
    np.testing.assert_allclose(npfunc.hessian(f)(means[0]), -x.shape[0] * np.linalg.inv(cov), rtol=1e-10)


def test_multivariate_normal_errors():
    with pytest.raises(ValueError, match="mean"):
        S.multivariate_normal.logpdf(np.zeros(3), np.zeros((2, 2)), np.eye(3))
    with pytest.raises(ValueError, match="cov"):
        S.multivariate_normal.logpdf(np.zeros(3), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="positive semidefinite"):
        S.multivariate_normal.logpdf(np.zeros(2), np.zeros(2), -np.eye(2))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="cdf"):
        S.multivariate_normal.cdf(np.zeros(2), np.zeros(2))


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_dirichlet(method):
    rng = np.random.default_rng(8)
    alpha = np.array([1.5, 2.5, 0.7, 3.0])
    x = rng.dirichlet(alpha, size=5).T          # components along the first axis, as in SciPy
    ours, theirs = getattr(S.dirichlet, method), getattr(st.dirichlet, method)
    _close(ours(x, alpha), theirs(x, alpha))
    _close(ours(x[:, 0], alpha), theirs(x[:, 0], alpha))
    _close(ours(x[:-1], alpha), theirs(x[:-1], alpha))          # K - 1 components
    _close(getattr(S.dirichlet(alpha), method)(x), theirs(x, alpha))
    _check_grads(ours, theirs, (x[:-1], alpha), (0, 1))
    batch = rng.uniform(0.5, 3.0, (3, 4))
    got = npfunc.vmap(lambda a: ours(x, a))(batch)
    np.testing.assert_allclose(got, np.stack([theirs(x, a) for a in batch]), rtol=1e-12)
    with pytest.raises(ValueError, match="simplex"):
        ours(x * 1.1, alpha)


# ---- the special functions behind the cdfs ------------------------------------------------------

def test_incomplete_gamma_shape_derivative_against_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    a = np.array([1e-3, 0.3, 2.0, 30.0, 30.0, 200.0, 1e4])
    x = np.array([1e-5, 2.0, 1e-3, 31.0, 80.0, 190.0, 1.01e4])
    for order in (1, 2):
        got = npfunc.primitives.special.incomplete.gammainc_shape_derivative(a, x, order)
        ref = [float(mp.diff(lambda s: mp.gammainc(s, 0, xi, regularized=True), ai, order))
               for ai, xi in zip(a, x)]
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-300)


def test_incomplete_beta_shape_derivatives_against_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    a, b, x = np.array([0.5, 2.0, 40.0, 3.0]), np.array([0.5, 7.0, 30.0, 1e-2]), np.array([0.3, 0.9, 0.6, 0.2])
    from npfunc.primitives.special.incomplete import betainc_shape_derivative as d
    for da, db in ((1, 0), (0, 1), (1, 1), (2, 0)):
        got = d(a, b, x, da, db)
        ref = [float(mp.diff(lambda s, u: mp.betainc(s, u, 0, xi, regularized=True), (ai, bi), (da, db)))
               for ai, bi, xi in zip(a, b, x)]
        np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_scipy_special_dispatch_for_incomplete_functions():
    a, x = np.array([0.7, 2.0, 5.0]), np.array([0.3, 2.5, 9.0])
    g = npfunc.grad(lambda a: np.sum(sc.gammainc(a, x)))(a)
    np.testing.assert_allclose(g, _fd(sc.gammainc, (a, x), 0), rtol=1e-6)
    g = npfunc.grad(lambda df: np.sum(sc.stdtr(df, x - 1)))(a + 1)
    np.testing.assert_allclose(g, _fd(sc.stdtr, (a + 1, x - 1), 0), rtol=1e-6)
    g = npfunc.grad(lambda b: np.sum(sc.betaincc(a, b, x / 10)))(a)
    np.testing.assert_allclose(g, _fd(sc.betaincc, (a, a, x / 10), 1), rtol=1e-6)


# ---- calling scipy.stats itself on a traced value ------------------------------------------------

def test_scipy_stats_called_unmodified_reaches_the_twins():
    x = np.array([0.1, 0.5])
    np.testing.assert_allclose(npfunc.grad(lambda x: st.norm.logpdf(x).sum())(x),
                               npfunc.grad(lambda x: S.norm.logpdf(x).sum())(x), rtol=1e-15)
    np.testing.assert_allclose(npfunc.grad(lambda x: st.norm(0.2, 1.5).logpdf(x).sum())(x),  # frozen
                               npfunc.grad(lambda x: S.norm.logpdf(x, 0.2, 1.5).sum())(x), rtol=1e-15)
    assert isinstance(st.norm, st.rv_continuous)
    xs = np.ones((3, 2)) * np.arange(3)[:, None]
    np.testing.assert_allclose(npfunc.vmap(lambda x: st.multivariate_normal.logpdf(x, np.zeros(2)))(xs),
                               st.multivariate_normal.logpdf(xs, np.zeros(2)), rtol=1e-13)


def test_scalar_results_are_numpy_scalars():
    for value in (S.norm.logpdf(1.0), S.gamma.cdf(1.0, 2.0), S.poisson.pmf(2, 1.5),
                  S.multivariate_normal.logpdf([0.1, 0.2], [0.0, 0.0], 1.0)):
        assert isinstance(value, np.float64), type(value)


def test_unmodified_scipy_stats_reaches_the_twins_in_a_fresh_process():
    import subprocess
    import sys

    code = ("import numpy as np, npfunc, scipy.stats\n"
            "print(npfunc.grad(lambda x: scipy.stats.gamma.logcdf(x, 2.0).sum())(np.ones(2))[0])\n"
            "from scipy.stats import gamma\n"  # bound after npfunc was imported: routed too
            "print(npfunc.grad(lambda x: gamma.logcdf(x, 2.0).sum())(np.ones(2))[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    import npfunc.scipy.stats as twins

    expected = npfunc.grad(lambda x: twins.gamma.logcdf(x, 2.0).sum())(np.ones(2))[0]
    assert [float(v) for v in out.split()] == pytest.approx([expected, expected], rel=1e-12), out
