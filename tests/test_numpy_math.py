"""Scientific programs written with plain NumPy (creation, differences and
integrals, order statistics, covariance, histograms, interpolation) under
the transforms: values against NumPy, derivatives against central
differences, vmap against a Python loop, one nested transform each, and the
errors for what cannot be done."""
import warnings

import numpy as np
import pytest

import npfunc
from npfunc.core.primitive import COMPOSITES
from npfunc.errors import NpfuncError, UnsupportedOperationError
from npfunc.testing import checks


def central(f, x, eps=1e-6):
    """d f / d x by central differences (x an array or a float)."""
    x = np.asarray(x, dtype=float)
    flat = x.ravel()
    out = np.asarray(f(x))
    jac = np.empty(out.shape + flat.shape)
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = eps
        jac[(Ellipsis, i)] = (np.asarray(f((flat + e).reshape(x.shape))) -
                              np.asarray(f((flat - e).reshape(x.shape)))) / (2 * eps)
    return jac.reshape(out.shape + x.shape)


# ---- integrals of parametrised curves -----------------------------------------------------

def ellipse_perimeter(ab):
    """Arc length of (a cos t, b sin t), t in [0, 2 pi], by the trapezoid rule."""
    a, b = ab[0], ab[1]
    t = np.linspace(0.0, 2 * np.pi, 201)
    x, y = a * np.cos(t), b * np.sin(t)
    speed = np.sqrt(np.gradient(x, t) ** 2 + np.gradient(y, t) ** 2)
    return np.trapezoid(speed, t)


def test_trapezoid_arc_length_of_a_parametrised_curve():
    ab = np.array([2.0, 1.0])
    assert npfunc.grad(ellipse_perimeter)(ab) == pytest.approx(central(ellipse_perimeter, ab), rel=1e-7)
    batch = np.array([[2.0, 1.0], [1.0, 1.0], [3.0, 0.5]])
    per = npfunc.vmap(ellipse_perimeter)(batch)
    assert np.array_equal(per, [ellipse_perimeter(r) for r in batch])
    assert per[1] == pytest.approx(2 * np.pi, rel=1e-3)
    hess = npfunc.hessian(ellipse_perimeter)(ab)
    assert hess == pytest.approx(central(npfunc.grad(ellipse_perimeter), ab), rel=1e-5, abs=1e-8)


def test_integral_up_to_a_traced_end_point_follows_the_fundamental_theorem():
    def area(L):
        x = np.linspace(0.0, L, 2001)
        return np.trapezoid(np.exp(-x ** 2), x)

    assert float(npfunc.grad(area)(1.3)) == pytest.approx(np.exp(-1.3 ** 2), rel=1e-6)
    ends = np.array([0.5, 1.0, 2.0])
    assert npfunc.vmap(npfunc.grad(area))(ends) == pytest.approx(np.exp(-ends ** 2), rel=1e-5)
    assert npfunc.jacfwd(area)(1.3) == pytest.approx(npfunc.jacrev(area)(1.3), rel=1e-12)


def test_strain_energy_of_a_discrete_string_with_diff():
    def energy(u, k):
        strain = np.diff(u, prepend=0.0, append=0.0)       # both ends clamped
        return 0.5 * k * np.sum(strain ** 2) - np.sum(np.ediff1d(u, to_begin=u[:1]))

    u = np.array([0.3, -0.2, 0.5, 0.1])
    g = npfunc.grad(energy)(u, 2.0)
    assert g == pytest.approx(central(lambda v: energy(v, 2.0), u), rel=1e-7)
    stiffness = npfunc.hessian(energy)(u, 2.0)            # the tridiagonal matrix 2 k, -k
    assert np.allclose(stiffness, 2.0 * (2 * np.eye(4) - np.eye(4, k=1) - np.eye(4, k=-1)))


def test_gradient_on_traced_coordinates_uses_the_general_formula_for_derivatives():
    f = np.sin(np.linspace(0, 3, 6))

    def slope(h):
        x = np.arange(6.0) * h                             # all spacings exactly equal
        return np.gradient(f, x, edge_order=2)

    x0 = np.arange(6.0) * 0.5
    assert np.array_equal(slope(0.5), npfunc.jvp(slope, (0.5,), (1.0,))[0])

    def general(x):
        return np.gradient(f, x, edge_order=2)

    # a perturbation that breaks the uniformity sees the general formula
    assert npfunc.jacfwd(general)(x0) == pytest.approx(central(general, x0), rel=1e-6, abs=1e-8)
    assert npfunc.jacrev(general)(x0) == pytest.approx(central(general, x0), rel=1e-6, abs=1e-8)


def test_unwrapped_phase_of_a_chirp_gives_its_frequency():
    def frequency(rate):
        t = np.linspace(0.0, 1.0, 400)
        wrapped = np.angle(np.exp(1j * np.pi * rate * t ** 2))
        return np.gradient(np.unwrap(wrapped), t) / (2 * np.pi)

    f = frequency(40.0)
    assert f[200] == pytest.approx(40.0 * 0.5, rel=1e-2)
    d = npfunc.jacfwd(frequency)(40.0)
    assert d == pytest.approx(central(frequency, 40.0), rel=1e-6, abs=1e-6)


def test_vander_least_squares_fit_is_differentiable_in_the_data():
    x = np.linspace(-1, 1, 7)

    def fitted_slope(y):
        coef = np.linalg.lstsq(np.vander(x, 3), y, rcond=None)[0]
        return coef[1]

    y = x ** 2 + 0.5 * x
    assert float(fitted_slope(y)) == pytest.approx(0.5)
    assert npfunc.grad(fitted_slope)(y) == pytest.approx(central(fitted_slope, y), rel=1e-6, abs=1e-9)


def test_geomspace_and_logspace_grids_with_traced_ends():
    def spectrum(ends):
        f = np.geomspace(ends[0], ends[1], 9)
        return np.sum(1.0 / (1.0 + f ** 2)) + np.logspace(0.0, ends[0], 3, base=2.0).sum()

    e = np.array([0.1, 10.0])
    assert npfunc.grad(spectrum)(e) == pytest.approx(central(spectrum, e), rel=1e-7)
    batch = np.array([[0.1, 10.0], [0.5, 2.0]])
    assert np.array_equal(npfunc.vmap(spectrum)(batch), [spectrum(r) for r in batch])


def test_like_constants_are_not_batched_and_full_like_carries_its_fill():
    def f(x):
        buf = np.zeros_like(x)
        assert not isinstance(buf, npfunc.core.tracer.Tracer) or buf.shape == x.shape
        return np.full_like(x, x.sum()) + np.ones_like(x, dtype=np.float32) + buf

    x = np.arange(3.0)
    out = npfunc.vmap(f)(np.stack([x, 2 * x]))
    assert np.array_equal(out, np.stack([f(x), f(2 * x)]))
    assert npfunc.jacrev(f)(x) == pytest.approx(np.ones((3, 3)))


@pytest.mark.parametrize("make", [np.zeros_like, np.ones_like, lambda a: np.full_like(a, 2.0)],
                         ids=["zeros_like", "ones_like", "full_like"])
def test_like_buffers_keep_the_layout_of_their_argument(make):
    """NumPy lays out a *_like array as its argument (order='K'): of a transposed
    array, a reshape is a copy, and writes through it do not reach the buffer.
    npfunc may refuse the write (the layout is not tracked) but never take the
    reshape for a view (full_like with a constant fill did, under jit)."""
    def f(x):
        F = x.T * 1.0
        z = make(F)
        r = z.reshape(6)
        r[0] = 0.0
        return (z * F).sum()

    x = np.arange(6.0).reshape(3, 2) + 1
    want = f(x)
    for transform in (npfunc.jit, npfunc.grad_and_value):
        try:
            got = transform(f)(x)
        except UnsupportedOperationError:
            continue
        np.testing.assert_allclose(got[1] if transform is npfunc.grad_and_value else got, want)


# ---- order statistics ----------------------------------------------------------------------

def pinball(y_pred, y, tau):
    r = y - y_pred
    return np.mean(np.maximum(tau * r, (tau - 1) * r))


def test_quantile_regression_loss_and_empirical_quantile():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(101)
    q = np.quantile(y, 0.9)
    # the empirical 0.9-quantile minimises the pinball loss: its derivative vanishes there
    assert abs(float(npfunc.grad(pinball)(q + 1e-9, y, 0.9))) < 0.02

    def spread(y):
        lo, hi = np.percentile(y, [25.0, 75.0], method="hazen")
        return (hi - lo) / np.median(np.abs(y - np.median(y)))

    assert npfunc.grad(spread)(y) == pytest.approx(central(spread, y), rel=1e-6, abs=1e-9)
    batch = rng.standard_normal((4, 31))
    assert np.array_equal(npfunc.vmap(spread)(batch), [spread(r) for r in batch])
    g = npfunc.vmap(npfunc.grad(spread))(batch)
    assert g == pytest.approx(np.stack([central(spread, r) for r in batch]), rel=1e-6, abs=1e-9)


def test_quantile_derivative_goes_to_the_interpolated_order_statistics():
    x = np.array([4.0, 1.0, 3.0, 2.0, 5.0])
    g = npfunc.grad(lambda x: np.quantile(x, 0.3))(x)     # (n - 1) q = 1.2: 0.8 * a[1] + 0.2 * a[2]
    assert np.allclose(g, [0, 0, 0.2, 0.8, 0])
    dq = npfunc.grad(lambda q: np.quantile(x, q))(0.3)     # the slope between them
    assert float(dq) == pytest.approx((3.0 - 2.0) * 4)
    for method in ("lower", "higher", "nearest", "inverted_cdf", "closest_observation"):
        g = npfunc.grad(lambda x: np.quantile(x, 0.3, method=method))(x)
        assert sorted(g.tolist()) == [0, 0, 0, 0, 1], method


def test_value_at_risk_with_traced_quantile_levels_under_vmap():
    rng = np.random.default_rng(3)
    losses = rng.standard_normal((6, 40))

    def var_es(level, w):
        pnl = w @ losses
        v = np.quantile(pnl, level, method="median_unbiased")
        return v + np.nanmean(np.where(pnl >= v, pnl, np.nan))

    w = rng.uniform(0, 1, 6)
    levels = np.array([0.9, 0.95, 0.975])
    out = npfunc.vmap(var_es, in_dims=(0, None))(levels, w)
    assert np.array_equal(out, [var_es(l, w) for l in levels])
    jac = npfunc.jacfwd(lambda w: npfunc.vmap(var_es, in_dims=(0, None))(levels, w))(w)
    assert jac == pytest.approx(central(lambda w: np.array([var_es(l, w) for l in levels]), w), rel=1e-5)


def test_nan_statistics_ignore_missing_values():
    data = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, 5.0, 4.0], [0.5, 1.5, 2.5, np.nan]])

    def summary(d):
        return np.nanmedian(d, axis=1) + np.nanquantile(d, 0.25, axis=1) + np.nanpercentile(d, 80.0, axis=1)

    jac = npfunc.jacrev(summary)(data)
    assert np.all(jac[:, np.isnan(data)] == 0)
    assert jac[:, ~np.isnan(data)] == pytest.approx(central(summary, data)[:, ~np.isnan(data)], rel=1e-6)


def test_weighted_quantile_selects_an_entry():
    x = np.array([3.0, 1.0, 2.0, 5.0])
    w = np.array([1.0, 2.0, 1.0, 1.0])
    g_x, g_w = npfunc.grad(lambda x, w: np.quantile(x, 0.6, weights=w, method="inverted_cdf"),
                           argnums=(0, 1))(x, w)
    assert np.array_equal(g_x, [0, 0, 1, 0]) and np.array_equal(g_w, np.zeros(4))


# ---- covariance -------------------------------------------------------------------------------

def mahalanobis(query, data):
    mu = np.mean(data, axis=1)
    d = query - mu
    return d @ np.linalg.solve(np.cov(data), d)


def test_mahalanobis_distance_from_a_sample_covariance():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, 50))
    q = np.array([0.5, -1.0, 0.2])
    gq, gd = npfunc.grad(mahalanobis, argnums=(0, 1))(q, data)
    assert gq == pytest.approx(central(lambda v: mahalanobis(v, data), q), rel=1e-6)
    assert gd == pytest.approx(central(lambda d: mahalanobis(q, d), data), rel=1e-5, abs=1e-9)
    queries = rng.standard_normal((5, 3))
    assert npfunc.vmap(mahalanobis, in_dims=(0, None))(queries, data) == pytest.approx(
        [mahalanobis(v, data) for v in queries], rel=1e-12)  # batched solve: rounding may differ
    H = npfunc.jacfwd(npfunc.jacrev(mahalanobis))(q, data)
    assert H == pytest.approx(2 * np.linalg.inv(np.cov(data)), rel=1e-8)


def test_weighted_covariance_and_correlation_keywords():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8))
    y = rng.standard_normal(8)
    f = np.array([1, 2, 1, 1, 3, 1, 2, 1])

    def stats(aw):
        c = np.cov(x, y, bias=False, ddof=2, fweights=f, aweights=aw)
        return c[0, 2] + np.corrcoef(x, y, rowvar=True)[1, 2] + np.average(x[0], weights=aw)

    aw = rng.uniform(0.5, 2.0, 8)
    assert float(stats(aw)) == float(npfunc.jvp(stats, (aw,), (np.zeros(8),))[0])
    assert npfunc.grad(stats)(aw) == pytest.approx(central(stats, aw), rel=1e-6)


# ---- histograms and counting ----------------------------------------------------------------

def test_boltzmann_weighted_energy_histogram_is_differentiable_in_temperature():
    energies = np.random.default_rng(4).exponential(1.0, 500)

    def top_bin_density(kT):
        w = np.exp(-energies / kT)
        density, edges = np.histogram(energies, bins=8, range=(0.0, 4.0), weights=w, density=True)
        return density[-1]

    assert npfunc.grad(top_bin_density)(1.5) == pytest.approx(central(top_bin_density, 1.5), rel=1e-6)
    temps = np.array([0.5, 1.0, 2.0])
    assert np.array_equal(npfunc.vmap(top_bin_density)(temps), [top_bin_density(t) for t in temps])


def test_histogram_edges_follow_the_data_range_and_counts_have_no_derivative():
    x = np.array([0.3, 2.0, 1.1, 0.7, 1.9])

    def edges_and_counts(s):
        counts, edges = np.histogram(s * x, bins=4)
        return edges, counts

    (edges, counts), (t_edges, t_counts) = npfunc.jvp(edges_and_counts, (2.0,), (1.0,))
    assert np.array_equal(t_edges, np.linspace(0.3, 2.0, 5)) and counts.dtype == np.intp
    assert np.array_equal(t_counts, np.zeros(4, np.intp))
    # a data-dependent number of bins works where values are known
    g = npfunc.grad(lambda s: np.histogram(s * x, bins="auto")[1][-1])(2.0)
    assert float(g) == pytest.approx(2.0)


def test_charge_deposition_with_bincount():
    cells = np.array([0, 2, 2, 1, 4, 2])

    def field_energy(q):
        rho = np.bincount(cells, weights=q, minlength=6)
        return np.sum(np.cumsum(rho) ** 2)

    q = np.array([1.0, -0.5, 0.25, 2.0, 1.0, -1.0])
    assert npfunc.grad(field_energy)(q) == pytest.approx(central(field_energy, q), rel=1e-7)
    batch = np.stack([q, 2 * q, -q])
    assert np.array_equal(npfunc.vmap(field_energy)(batch), [field_energy(r) for r in batch])
    assert npfunc.vmap(lambda c: np.bincount(c, minlength=6))(np.stack([cells, cells[::-1]])).shape == (2, 6)


def test_two_dimensional_density_and_digitize():
    rng = np.random.default_rng(5)
    pts = rng.standard_normal((200, 2))

    def peak(scale):
        h, xe, ye = np.histogram2d(scale * pts[:, 0], pts[:, 1], bins=5, density=True)
        return h.max() + xe[0] + np.digitize(scale, np.array([0.0, 1.0, 2.0])) * 0.0

    assert npfunc.grad(peak)(1.3) == pytest.approx(central(peak, 1.3), rel=1e-6)
    assert np.array_equal(npfunc.vmap(lambda b: np.digitize(pts[:5, 0], b))(np.array([[-1.0, 0.0, 1.0],
                                                                                      [1.0, 0.0, -1.0]])),
                          [np.digitize(pts[:5, 0], b) for b in ([-1.0, 0.0, 1.0], [1.0, 0.0, -1.0])])


# ---- interpolation ----------------------------------------------------------------------------

def table(theta):
    """A parametrised lookup table: heat capacity sampled on a temperature grid."""
    T = np.linspace(200.0, 400.0, 9)
    return T, theta[0] + theta[1] * (T / 300.0) ** 2


def test_interpolation_of_a_parametrised_table():
    theta = np.array([1.0, 0.4])
    queries = np.array([150.0, 210.0, 277.0, 310.0, 399.0, 420.0])

    def mean_cp(theta, q):
        T, cp = table(theta)
        return np.mean(np.interp(q, T, cp, left=0.0))

    g_theta, g_q = npfunc.grad(mean_cp, argnums=(0, 1))(theta, queries)
    assert g_theta == pytest.approx(central(lambda t: mean_cp(t, queries), theta), rel=1e-7)
    assert g_q == pytest.approx(central(lambda v: mean_cp(theta, v), queries), rel=1e-5, abs=1e-12)
    thetas = np.array([[1.0, 0.4], [0.5, 0.1], [2.0, -0.3]])
    assert np.array_equal(npfunc.vmap(mean_cp, in_dims=(0, None))(thetas, queries),
                          [mean_cp(t, queries) for t in thetas])
    H = npfunc.hessian(mean_cp)(theta, queries)            # linear in theta
    assert np.allclose(H, 0)


def test_interp_derivative_in_the_sample_points_and_periodic_tables():
    xp = np.array([0.0, 1.0, 2.5, 4.0])
    fp = np.array([1.0, 3.0, 2.0, 0.0])
    x = np.array([0.5, 2.0, 3.5])
    jac = npfunc.jacrev(lambda xp: np.interp(x, xp, fp))(xp)
    assert jac == pytest.approx(central(lambda xp: np.interp(x, xp, fp), xp), rel=1e-7, abs=1e-9)
    angles = np.deg2rad(np.array([10.0, 100.0, 200.0, 300.0]))

    def wind(theta, values):
        return np.interp(theta, angles, values, period=2 * np.pi)

    v = np.array([1.0, 2.0, 0.5, 1.5])
    th = np.array([0.0, 1.0, 6.0, 7.5])
    assert np.array_equal(wind(th, v), np.interp(th, angles, v, period=2 * np.pi))
    assert npfunc.jacfwd(wind)(th, v) == pytest.approx(central(lambda t: wind(t, v), th), rel=1e-6)
    batched = npfunc.vmap(wind, in_dims=(None, 0))(th, np.stack([v, 2 * v]))
    assert np.array_equal(batched, [wind(th, v), wind(th, 2 * v)])


def test_interp_complex_table():
    xp = np.linspace(0, 1, 5)
    fp = np.exp(2j * np.pi * xp)

    def power(x):
        return np.abs(np.interp(x, xp, fp)) ** 2

    x = np.array([0.1, 0.55, 0.9])
    assert np.array_equal(npfunc.vmap(lambda s: power(s * x))(np.array([1.0, 0.5])),
                          [power(x), power(0.5 * x)])
    assert npfunc.jacfwd(power)(x) == pytest.approx(central(power, x), rel=1e-6)


# ---- the conventions of docs/conventions.md (statistics, interpolation, ...) ------------------

def test_conventions_at_special_points():
    g = npfunc.grad
    tied = g(lambda x: np.median(x))(np.array([2.0, 1.0, 2.0, 3.0, 2.0]))
    assert sorted(tied.tolist()) == [0, 0, 0, 0, 1] and tied[[1, 3]].sum() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nan_slice = g(lambda x: np.nansum(np.quantile(x, 0.5, axis=1)))(np.array([[1.0, np.nan, 2.0],
                                                                                   [1.0, 4.0, 2.0]]))
        assert np.array_equal(nan_slice, [[0, 0, 0], [0, 0, 1]])
        all_nan = g(lambda x: np.nansum(np.nanmedian(x, axis=1)))(np.array([[np.nan, np.nan], [1.0, 3.0]]))
        assert np.array_equal(all_nan, [[0, 0], [0.5, 0.5]])
    xp, fp = np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 3.0])
    d = npfunc.vmap(g(lambda x: np.interp(x, xp, fp)))(np.array([-1.0, 0.0, 1.0, 3.0, 4.0]))
    assert np.array_equal(d, [0.0, 2.0, 0.5, 0.5, 0.0])   # right segment at knots, last at xp[-1]
    table_and_ends = g(lambda v: np.interp(np.array([-1.0, 5.0, 5.5]), xp, v[:3], v[3], v[4]).sum())
    assert np.array_equal(table_and_ends(np.array([0.0, 2.0, 3.0, -1.0, 9.0])), [0, 0, 0, 1, 2])
    p = np.array([0.0, 3.0, -3.0, 0.5])
    assert np.allclose(npfunc.jacfwd(np.unwrap)(p), np.eye(4))
    edges = npfunc.jacrev(lambda x: np.histogram_bin_edges(x, 2))(np.array([3.0, 1.0, 3.0]))
    assert np.array_equal(edges[-1], [0.5, 0.0, 0.5]) and np.array_equal(edges[0], [0.0, 1.0, 0.0])
    r = npfunc.jacrev(lambda x: np.diagonal(np.corrcoef(x)))(np.random.default_rng(0).standard_normal((2, 5)))
    assert np.allclose(r, 0.0, atol=1e-12)


# ---- every function of this family: NumPy's dtypes, and vmap bit for bit ------------------------

FAMILY = sorted(name for name in COMPOSITES if any(name.startswith(p) for p in (
    "np.zeros_like", "np.ones_like", "np.empty_like", "np.full_like", "np.linspace", "np.logspace",
    "np.geomspace", "np.vander", "np.diff", "np.ediff1d", "np.gradient", "np.trapezoid", "np.unwrap",
    "np.median", "np.quantile", "np.percentile", "np.nanquantile", "np.nanpercentile", "np.nanmedian",
    "np.cov", "np.corrcoef", "np.bincount", "np.digitize", "np.histogram", "np.interp")))


@pytest.mark.parametrize("name", FAMILY)
def test_traced_results_have_numpys_dtypes_and_vmap_is_exact(name):
    comp = COMPOSITES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, sample in enumerate(comp.samples(np.random.default_rng(0))):
            expected = checks._leaves(comp.impl(*sample.args, **sample.params))
            nums = checks.diff_argnums(sample)
            if nums and comp.differentiable:
                f = checks.as_function(comp, sample, nums)
                primals = tuple(np.asarray(sample.args[i]) for i in nums)
                out, _ = npfunc.jvp(f, primals, tuple(np.zeros_like(p) for p in primals))
                for o, e in zip(checks._leaves(out), expected):
                    assert np.result_type(o) == np.result_type(e) and np.shape(o) == np.shape(e), (name, k)
            dims = tuple(0 if isinstance(a, (np.ndarray, np.generic)) else None for a in sample.args)
            if all(d is None for d in dims):
                continue
            rng = np.random.default_rng(k)
            args = [a if d is None else checks._batched(rng, a, 0, 3) for a, d in zip(sample.args, dims)]
            got = npfunc.vmap(lambda *xs: comp.bind(*xs, **sample.params), in_dims=dims)(*args)
            rows = [comp.bind(*[a if d is None else a[b] for a, d in zip(args, dims)], **sample.params)
                    for b in range(3)]
            for j, g in enumerate(checks._leaves(got)):
                loop = np.stack([checks._leaves(r)[j] for r in rows])
                if "0-d NaN result" not in sample.label:  # documented: float64 under vmap
                    assert np.result_type(g) == loop.dtype, (name, k)
                assert np.array_equal(np.asarray(g), loop, equal_nan=True), (name, k, sample.label)


# ---- errors ------------------------------------------------------------------------------------

def test_data_dependent_number_of_bins_is_an_error_under_vmap_and_jit():
    x = np.random.default_rng(6).standard_normal((3, 20))
    with pytest.raises(UnsupportedOperationError, match=r"vmap\(f\).*bins='auto'.*integer"):
        npfunc.vmap(lambda v: np.histogram(v, bins="auto")[0])(x)
    with pytest.raises(UnsupportedOperationError, match=r"jit.*bins='fd'.*jit records every shape"):
        npfunc.jit(lambda v: np.histogram_bin_edges(v, bins="fd"))(x[0])
    # a traced array of edges is fine
    edges = np.stack([np.linspace(-3, 3, 5)] * 3)
    counts = npfunc.vmap(lambda v, e: np.histogram(v, bins=e)[0])(x, edges)
    assert np.array_equal(counts, [np.histogram(v, bins=e)[0] for v, e in zip(x, edges)])


def test_bincount_lengths_must_agree_under_vmap():
    ragged = np.array([[0, 1, 1], [0, 3, 1]])
    with pytest.raises(UnsupportedOperationError, match=r"np\.bincount under vmap.*minlength="):
        npfunc.vmap(np.bincount)(ragged)
    assert np.array_equal(npfunc.vmap(lambda c: np.bincount(c, minlength=5))(ragged),
                          [np.bincount(c, minlength=5) for c in ragged])
    with pytest.raises(ValueError, match="no negative elements"):
        npfunc.vmap(np.bincount)(np.array([[0, -1]]))


@pytest.mark.parametrize("transform", ["grad", "vmap", "jit"])
def test_numpy_value_errors_are_raised_under_every_transform(transform):
    wrap = {"grad": lambda f: npfunc.grad(lambda v: np.sum(f(v))),
            "vmap": lambda f: npfunc.vmap(f),
            "jit": lambda f: npfunc.jit(f)}[transform]
    v = np.array([[0.0, 2.0]]) if transform == "vmap" else np.array([0.0, 2.0])
    with pytest.raises(ValueError, match="Geometric sequence cannot include zero"):
        wrap(lambda s: np.geomspace(s[0], s[1], 4))(v)
    with pytest.raises(ValueError, match=r"Quantiles must be in the range \[0, 1\]"):
        wrap(lambda s: np.quantile(np.arange(4.0), s[1]))(v)
    with pytest.raises(ValueError, match="monotonically increasing or decreasing"):
        wrap(lambda s: np.digitize(1.0, np.stack([s[0], s[1], s[0]])) * s)(v)
    with pytest.raises(TypeError, match="fweights must be integer"):
        wrap(lambda s: np.cov(np.arange(6.0).reshape(2, 3) * s[1],
                              fweights=np.stack([s[1], s[1] + 0.5, s[1]])))(v)


def test_shape_and_argument_errors_match_numpy():
    x = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="array of sample points is empty"):
        npfunc.grad(lambda t: np.interp(t, np.array([]), np.array([])))(1.0)
    with pytest.raises(ValueError, match="fp and xp are not of the same length"):
        npfunc.grad(lambda t: np.interp(t, x, np.ones(3)))(1.0)
    with pytest.raises(ValueError, match="must be non-negative"):
        npfunc.grad(lambda t: np.linspace(0.0, t, -1).sum())(1.0)
    with pytest.raises(ValueError, match="diff requires input that is at least one dimensional"):
        npfunc.grad(np.diff)(1.0)
    with pytest.raises(ValueError, match="Shape of array too small"):
        npfunc.grad(lambda v: np.gradient(v, edge_order=2).sum())(x)
    with pytest.raises(ValueError, match="'linear_ish' is not a valid method"):
        npfunc.grad(lambda v: np.quantile(v, 0.5, method="linear_ish"))(x)
    with pytest.raises(TypeError, match="Automated estimation"):
        npfunc.grad(lambda v: np.histogram(v, "auto", weights=v)[0].sum())(x)


def test_full_like_of_a_plain_array_with_a_traced_fill_matches_numpy():
    """NumPy dispatches np.full_like on its first argument only; with a plain
    prototype (made in the function or a global) and a traced fill, the array
    NumPy makes takes the traced fill (core/pending.py; NumPy's own np.copyto
    of it was refused): NumPy's values and dtypes (the prototype's, float32 and
    int64 included) under jit and vmap, the derivative of the fill (a traced
    array as the first argument works as before)."""
    proto = np.ones(3, dtype=np.float32)
    programs = [lambda c: np.full_like(np.ones(3), c), lambda c: np.full_like(proto, c),
                lambda c: np.full_like(np.arange(3), c)]
    cs = np.array([2.0, 2.5, -1.25])
    for f in programs:
        jf = npfunc.jit(f)
        for c in (cs[0], cs[1], cs[2], cs[0]):
            got, want = jf(c), f(c)
            assert type(got) is type(want) and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        got, want = npfunc.vmap(f)(cs), np.stack([f(c) for c in cs])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for f in programs[:2]:
        assert float(npfunc.grad(lambda c: f(c).sum())(2.0)) == 3.0
    f = programs[0]
    np.testing.assert_allclose(npfunc.grad(lambda c: f(c).sum())(2.5), central(lambda c: f(c).sum(), 2.5), rtol=1e-6)
    assert float(npfunc.grad(lambda c: np.full_like(c * np.ones(3), c).sum())(2.0)) == 3.0


def test_benchmark_correctness_checks_pass_in_quick_mode(capsys):
    """benchmarks/bench_numpy_functions.py compares npfunc with the hand-written
    derivatives before timing; timings are never asserted."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_numpy_functions.py"
    spec = importlib.util.spec_from_file_location("bench_numpy_functions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--quick", "--repeats", "1"])
    assert {r[0] for r in rows} == set(module.WORKLOADS)


def test_arguments_numpy_does_not_dispatch_on_name_npfuncs_function():
    """np.histogram dispatches on a, bins and weights, np.interp on x, xp and fp:
    with those plain, NumPy's own code meets a traced range / period, and the
    error names npfunc.numpy's function, which takes them."""
    import npfunc.numpy as fnp

    x = np.random.default_rng(7).standard_normal(50)
    # NumPy's own histogram code runs on a traced range (np.asarray accepts it while a
    # transform runs) and agrees with npfunc's function
    unmodified = npfunc.grad(lambda lo: np.histogram(x, 5, range=(lo, 2.0), density=True)[0][1])(-1.0)
    assert float(unmodified) == pytest.approx(central(lambda lo: np.histogram(x, 5, range=(lo, 2.0),
                                                                             density=True)[0][1], -1.0), rel=1e-6)

    def first_density(lo):
        return fnp.histogram(x, 5, range=(lo, 2.0), density=True)[0][1]

    assert float(npfunc.grad(first_density)(-1.0)) == pytest.approx(central(first_density, -1.0), rel=1e-6)
    lows = np.array([-1.0, -2.0])
    assert np.array_equal(npfunc.vmap(lambda lo: fnp.histogram(x, 5, range=(lo, 2.0))[0])(lows),
                          [np.histogram(x, 5, range=(lo, 2.0))[0] for lo in lows])
    with pytest.raises(NpfuncError, match=r"call npfunc\.numpy\.interp instead"):
        npfunc.grad(lambda p: np.interp(np.array([0.5, 7.0]), np.arange(4.0), np.arange(4.0),
                                        period=p).sum())(4.0)

    def wrapped(p):
        return fnp.interp(np.array([0.5, 7.0]), np.arange(4.0), np.arange(4.0) ** 2, period=p).sum()

    assert float(npfunc.grad(wrapped)(4.5)) == pytest.approx(central(wrapped, 4.5), rel=1e-6)
