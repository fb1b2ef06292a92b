"""npfunc.scipy.spatial.distance: every metric against SciPy, gradients in the
points (and in V, VI, w) against central differences, the coincident-point
convention, transforms, natural programs (a Gaussian-process kernel with
gradients in the length scale and the points, a pairwise potential energy
and its forces), and the error paths."""
import numpy as np
import pytest
import scipy.spatial.distance as sd

import npfunc
from npfunc.scipy.spatial import distance as D
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(5)
METRICS = ["euclidean", "sqeuclidean", "cityblock", "chebyshev", "minkowski", "seuclidean", "mahalanobis",
           "correlation", "cosine", "braycurtis", "canberra", "jensenshannon", "hamming", "jaccard", "dice", "yule",
           "rogerstanimoto", "russellrao", "sokalsneath"]
SMOOTH = METRICS[:12]


@pytest.mark.parametrize("metric", METRICS)
def test_cdist_pdist_match_scipy(metric):
    a, b = RNG.random((6, 4)), RNG.random((3, 4))
    np.testing.assert_allclose(D.cdist(a, b, metric), sd.cdist(a, b, metric), rtol=1e-12, atol=1e-12,
                               equal_nan=True)
    np.testing.assert_allclose(D.pdist(a, metric), sd.pdist(a, metric), rtol=1e-12, atol=1e-12, equal_nan=True)
    ba, bb = a > 0.5, b > 0.5
    if metric not in ("mahalanobis", "seuclidean", "jensenshannon"):
        with np.errstate(all="ignore"):
            # (atol: SciPy's C code leaves a rounding error where identical vectors have distance 0)
            np.testing.assert_allclose(D.cdist(ba, bb, metric), sd.cdist(ba, bb, metric), atol=1e-12,
                                       equal_nan=True)


@pytest.mark.parametrize("metric", [m for m in METRICS if m not in ("seuclidean", "mahalanobis", "jensenshannon",
                                                                   "dice")])
def test_weights_and_pair_functions_match_scipy(metric):
    a, b, w = RNG.random((5, 3)), RNG.random((2, 3)), RNG.random(3)
    np.testing.assert_allclose(D.cdist(a, b, metric, w=w), sd.cdist(a, b, metric, w=w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(D, metric)(a[0], b[0], w=w), getattr(sd, metric)(a[0], b[0], w=w),
                               rtol=1e-12, atol=1e-12)


def test_metric_parameters_match_scipy():
    a, b = RNG.random((6, 3)), RNG.random((4, 3))
    for p in (1, 3, 0.5, np.inf):
        np.testing.assert_allclose(D.cdist(a, b, "minkowski", p=p), sd.cdist(a, b, "minkowski", p=p), rtol=1e-12)
    v = RNG.random(3) + 0.5
    np.testing.assert_allclose(D.cdist(a, b, "seuclidean", V=v), sd.cdist(a, b, "seuclidean", V=v), rtol=1e-12)
    vi = np.linalg.inv(np.cov(a.T) + np.eye(3))
    np.testing.assert_allclose(D.pdist(a, "mahalanobis", VI=vi), sd.pdist(a, "mahalanobis", VI=vi), rtol=1e-12)
    np.testing.assert_allclose(D.mahalanobis(a[0], b[0], vi), sd.mahalanobis(a[0], b[0], vi), rtol=1e-12)
    np.testing.assert_allclose(D.jensenshannon(a.T, b[:1].T, base=2), sd.jensenshannon(a.T, b[:1].T, base=2),
                               rtol=1e-12)
    np.testing.assert_allclose(D.cdist(a, b, "eu"), sd.cdist(a, b, "euclidean"))  # SciPy's aliases
    metric = lambda u, v: np.sum(np.abs(u - v) ** 1.5)  # noqa: E731  (a user function)
    np.testing.assert_allclose(D.cdist(a, b, metric), sd.cdist(a, b, metric), rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(lambda a: D.cdist(a, b, metric).sum())(a),
                               numerical_jacobian(lambda a: sd.cdist(a, b, metric).sum(), a), rtol=1e-6)


def test_squareform_round_trip_and_gradient():
    a = RNG.random((5, 3))
    v = D.pdist(a)
    np.testing.assert_array_equal(D.squareform(v), sd.squareform(sd.pdist(a)))
    np.testing.assert_array_equal(D.squareform(D.squareform(v)), v)
    np.testing.assert_array_equal(D.squareform(np.zeros(0)), sd.squareform(np.zeros(0)))
    w = RNG.standard_normal((5, 5))
    f = lambda v: (D.squareform(v) * w).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(f)(v), numerical_jacobian(f, v), rtol=1e-7)


@pytest.mark.parametrize("metric", SMOOTH)
def test_gradients_in_the_points(metric):
    lo = 0.2 if metric == "jensenshannon" else -1.0
    a, b = RNG.uniform(lo, 1.0, (4, 3)), RNG.uniform(lo, 1.0, (3, 3))
    wts = RNG.standard_normal((4, 3))
    f = lambda a, b: (D.cdist(a, b, metric) * wts).sum()  # noqa: E731
    ga, gb = npfunc.grad(f, argnums=(0, 1))(a, b)
    atol = 1e-6 if metric == "mahalanobis" else 1e-8  # near-zero gradients: differences are noise there
    np.testing.assert_allclose(ga, numerical_jacobian(lambda a: f(a, b), a), rtol=1e-6, atol=atol)
    np.testing.assert_allclose(gb, numerical_jacobian(lambda b: f(a, b), b), rtol=1e-6, atol=atol)
    g = lambda a: (D.pdist(a, metric) ** 2).sum()  # noqa: E731
    # (with SciPy's default VI the sum of squared Mahalanobis distances is a constant: gradient 0)
    np.testing.assert_allclose(npfunc.grad(g)(a), numerical_jacobian(g, a), rtol=1e-6, atol=atol)


def test_coincident_points_have_zero_gradient():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    for metric in ("euclidean", "minkowski", "seuclidean", "chebyshev", "cityblock"):
        kw = {"V": np.ones(2)} if metric == "seuclidean" else {}
        g = npfunc.grad(lambda x: D.pdist(x, metric, **kw).sum())(x)
        assert np.all(np.isfinite(g))
    g = npfunc.grad(lambda x: D.cdist(x, x).sum())(x)  # self-distances on the diagonal: 0
    np.testing.assert_allclose(g[2], 2 * np.array([0.6, 0.8]) * 2, atol=1e-12)
    assert np.all(np.isfinite(npfunc.hessian(lambda x: (D.pdist(x) ** 2).sum())(x)))
    assert npfunc.grad(lambda u: D.euclidean(u, np.ones(2)))(np.ones(2)).tolist() == [0.0, 0.0]


def test_gaussian_process_kernel():
    """Negative log marginal likelihood of a GP with an RBF kernel built from
    cdist: gradients in the length scale and in the inputs."""
    x = np.linspace(0, 3, 8)[:, None]
    y = np.sin(2 * x[:, 0])

    def nll(log_ell, x):
        k = np.exp(-0.5 * D.cdist(x, x, "sqeuclidean") / np.exp(2 * log_ell)) + 1e-2 * np.eye(len(x))
        c = np.linalg.cholesky(k)
        alpha = np.linalg.solve(k, y)
        return 0.5 * y @ alpha + np.log(np.diagonal(c)).sum()

    g_ell, g_x = npfunc.grad(nll, argnums=(0, 1))(np.float64(-0.3), x)
    np.testing.assert_allclose(g_ell, numerical_jacobian(lambda le: nll(le, x), np.float64(-0.3)), rtol=1e-6)
    np.testing.assert_allclose(g_x, numerical_jacobian(lambda x: nll(-0.3, x), x), rtol=1e-5, atol=1e-8)
    # a grid of length scales in one vmapped call
    ells = np.array([-0.5, -0.3, 0.0])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(nll), in_dims=(0, None))(ells, x),
                               [numerical_jacobian(lambda le: nll(le, x), e) for e in ells], rtol=1e-6)


def test_pair_potential_forces_and_hessian():
    """Lennard-Jones energy from pdist: forces by grad, the Hessian by jacfwd(jacrev)."""
    pos = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.0, 1.2, 0.1], [0.9, 1.0, 0.8]])

    def energy(p):
        r = D.pdist(p)
        return (4 * (r ** -12 - r ** -6)).sum()

    forces = -npfunc.grad(energy)(pos)
    np.testing.assert_allclose(forces, -numerical_jacobian(energy, pos), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(forces.sum(axis=0), 0, atol=1e-10)  # translation invariance
    h = npfunc.jacfwd(npfunc.jacrev(energy))(pos).reshape(12, 12)
    np.testing.assert_allclose(h, numerical_jacobian(npfunc.grad(energy), pos).reshape(12, 12), rtol=1e-5,
                               atol=1e-6)
    batch = np.stack([pos, pos * 1.05])
    np.testing.assert_allclose(npfunc.vmap(energy)(batch), [energy(pos), energy(pos * 1.05)], rtol=1e-12)


def test_default_variances_are_differentiated():
    a = RNG.random((6, 2))
    for metric in ("seuclidean", "mahalanobis"):
        f = lambda a: D.pdist(a, metric).sum()  # noqa: E731
        np.testing.assert_allclose(npfunc.grad(f)(a), numerical_jacobian(lambda a: sd.pdist(a, metric).sum(), a),
                                   rtol=1e-6, atol=1e-8)


def test_errors():
    a = RNG.random((3, 2))
    with pytest.raises(ValueError, match="Unknown Distance Metric"):
        D.cdist(a, a, "nope")
    with pytest.raises(ValueError, match="same number of columns"):
        D.cdist(a, RNG.random((2, 3)))
    with pytest.raises(ValueError, match="2-dimensional"):
        D.pdist(a[0])
    with pytest.raises(TypeError, match="unexpected keyword"):
        D.pdist(a, "euclidean", p=3)
    with pytest.raises(ValueError, match="non-negative"):
        D.cdist(a, a, "euclidean", w=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="too small"):
        D.pdist(RNG.random((2, 3)), "mahalanobis")
    with pytest.raises(ValueError, match="symmetric"):
        D.squareform(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        npfunc.grad(lambda m: D.squareform(m).sum())(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="diagonal must be zero"):
        D.squareform(np.array([[1.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="binomial"):
        D.squareform(np.ones(4))
    with pytest.raises(TypeError, match="out="):
        npfunc.grad(lambda a: D.pdist(a, out=np.empty(3)).sum())(a)
    with pytest.raises(NotImplementedError, match="dice"):
        D.cdist(a, a, "dice", w=np.ones(2))


def test_unmodified_scipy_calls_reach_the_twins():
    a = RNG.random((4, 2))
    f = lambda a: sd.pdist(a).sum() + sd.cdist(a, a, "cityblock").sum() + sd.squareform(sd.pdist(a)).sum()  # noqa
    g = lambda a: D.pdist(a).sum() + D.cdist(a, a, "cityblock").sum() + D.squareform(D.pdist(a)).sum()  # noqa
    np.testing.assert_allclose(npfunc.grad(f)(a), npfunc.grad(g)(a), rtol=1e-12)
