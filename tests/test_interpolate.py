"""npfunc.scipy.interpolate: interpolators constructed from traced data and
called at traced points, under every transform.  Values against SciPy,
derivatives in the points, the data values, the abscissae/knots and the
boundary values against central differences, natural programs (a cubic
spline through a parametrised table, a spline-defined ODE right-hand
side, an RBF surrogate), and the error paths."""
import pickle
import zlib

import numpy as np
import pytest
import scipy.interpolate as si

import npfunc
import npfunc.scipy.interpolate as I
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(3)  # (module-level data only: tests draw from ``rng``)
X = np.sort(RNG.random(8)) * 5
Y = RNG.standard_normal((8, 2))
XP = np.linspace(-1.0, 6.0, 15)
INSIDE = np.linspace(X[0], X[-1], 11)


@pytest.fixture
def rng(request):
    """A generator of the test's own: its draws do not depend on which tests ran
    before it in the same process (which pytest-xdist decides)."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, equal_nan=True)


def _periodic_y(n=8):
    y = Y[:n].copy()
    y[-1] = y[0]
    return y


# ---- values -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bc", ["not-a-knot", "natural", "clamped", "periodic",
                                ((1, np.array([0.3, 1.0])), (2, np.array([1.0, -1.0])))])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_cubic_spline_matches_scipy(bc, n):
    y = _periodic_y(n) if bc == "periodic" else Y[:n]
    ours, ref = I.CubicSpline(X[:n], y, bc_type=bc), si.CubicSpline(X[:n], y, bc_type=bc)
    for nu in (0, 1, 2):
        _close(ours(XP, nu), ref(XP, nu))
    _close(ours.c, ref.c)
    _close(ours.antiderivative()(XP), ref.antiderivative()(XP))
    _close(ours.derivative(2)(XP), ref.derivative(2)(XP))
    for a, b in ((0.5, 4.0), (4.0, 0.5), (-1.0, 9.0)):
        _close(ours.integrate(a, b), ref.integrate(a, b))


def test_ppoly_and_hermite_match_scipy(rng):
    ref = si.CubicSpline(X, Y[:, 0])
    for extrapolate in (True, False, "periodic"):
        _close(I.PPoly(ref.c, ref.x, extrapolate=extrapolate)(XP), si.PPoly(ref.c, ref.x, extrapolate=extrapolate)(XP))
    dydx = rng.standard_normal(8)
    _close(I.CubicHermiteSpline(X, Y[:, 0], dydx)(XP), si.CubicHermiteSpline(X, Y[:, 0], dydx)(XP))
    ax = si.CubicSpline(X, Y.T, axis=1)
    _close(I.CubicSpline(X, Y.T, axis=1)(XP[:, None]), ax(XP[:, None]))
    assert I.CubicSpline(X, Y.T, axis=1)(XP[:, None]).shape == ax(XP[:, None]).shape


@pytest.mark.parametrize("cls,kw", [("PchipInterpolator", {}), ("Akima1DInterpolator", {}),
                                    ("Akima1DInterpolator", {"method": "makima", "extrapolate": True})])
def test_local_interpolators_match_scipy(cls, kw):
    for n in (2, 3, 8):
        _close(getattr(I, cls)(X[:n], Y[:n], **kw)(XP), getattr(si, cls)(X[:n], Y[:n], **kw)(XP))
    flat = Y.copy()
    flat[2:4] = 1.0  # equal neighbouring values: the zero-slope branches
    _close(getattr(I, cls)(X, flat, **kw)(XP), getattr(si, cls)(X, flat, **kw)(XP))


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_make_interp_spline_and_bspline_match_scipy(k):
    ours, ref = I.make_interp_spline(X, Y, k=k), si.make_interp_spline(X, Y, k=k)
    _close(ours.t, ref.t)
    _close(ours.c, ref.c)
    for nu in range(k + 1):
        _close(ours(XP, nu), ref(XP, nu))
    if k:
        _close(ours.derivative()(XP), ref.derivative()(XP))
        _close(ours.antiderivative(2)(XP), ref.antiderivative(2)(XP))
    _close(ours.integrate(0.3, 4.2), ref.integrate(0.3, 4.2))
    _close(ours.integrate(-2.0, 9.0, extrapolate=False), ref.integrate(-2.0, 9.0, extrapolate=False))
    b = I.BSpline(ref.t, ref.c, k, extrapolate=False)
    _close(b(XP), si.BSpline(ref.t, ref.c, k, extrapolate=False)(XP))


def test_make_interp_spline_boundary_conditions_and_periodic():
    for bc in ("natural", "clamped"):
        _close(I.make_interp_spline(X, Y, bc_type=bc)(XP), si.make_interp_spline(X, Y, bc_type=bc)(XP))
    bc = ([(1, np.array([1.0, 2.0])), (2, np.array([0.0, 1.0]))], [(1, np.array([0.0, 3.0])),
                                                                     (2, np.array([1.0, 1.0]))])
    _close(I.make_interp_spline(X, Y, k=5, bc_type=bc)(XP), si.make_interp_spline(X, Y, k=5, bc_type=bc)(XP))
    for k in (2, 3, 5):
        for n in (3, 8):
            ours = I.make_interp_spline(X[:n], _periodic_y(n), k=k, bc_type="periodic")
            ref = si.make_interp_spline(X[:n], _periodic_y(n), k=k, bc_type="periodic")
            _close(ours(XP), ref(XP))
            _close(ours.integrate(-3.0, 11.0), ref.integrate(-3.0, 11.0))


@pytest.mark.parametrize("kind", ["linear", "nearest", "nearest-up", "zero", "slinear", "quadratic", "cubic",
                                  "previous", "next", 5])
def test_interp1d_matches_scipy(kind, rng):
    y = Y.T
    _close(I.interp1d(X, y, kind=kind)(INSIDE), si.interp1d(X, y, kind=kind)(INSIDE))
    opts = dict(bounds_error=False, fill_value=(-1.0, 2.0))
    _close(I.interp1d(X, y, kind=kind, **opts)(XP), si.interp1d(X, y, kind=kind, **opts)(XP))
    _close(I.interp1d(X, y, kind=kind, fill_value="extrapolate")(XP),
           si.interp1d(X, y, kind=kind, fill_value="extrapolate")(XP))
    _close(I.interp1d(X, Y, kind=kind, axis=0, bounds_error=False)(XP[None]),
           si.interp1d(X, Y, kind=kind, axis=0, bounds_error=False)(XP[None]))
    perm = rng.permutation(8)
    _close(I.interp1d(X[perm], y[:, perm], kind=kind)(INSIDE), si.interp1d(X[perm], y[:, perm], kind=kind)(INSIDE))


GRID = (np.sort(RNG.random(6)) * 3, np.sort(RNG.random(7)) * 2, np.arange(6.0))
VALUES = RNG.standard_normal((6, 7, 6, 2))
PTS = np.stack([RNG.uniform(g[0], g[-1], 10) for g in GRID], -1)


@pytest.mark.parametrize("method", ["linear", "nearest", "slinear", "pchip", "cubic_legacy", "quintic_legacy"])
def test_regular_grid_matches_scipy(method):
    _close(I.RegularGridInterpolator(GRID, VALUES, method=method)(PTS),
           si.RegularGridInterpolator(GRID, VALUES, method=method)(PTS), 1e-9)


def test_regular_grid_spline_methods_are_the_exact_tensor_interpolant():
    import scipy.sparse.linalg as ssl

    for method in ("cubic", "quintic"):  # SciPy with a direct solver instead of its default iterative one
        ref = si.RegularGridInterpolator(GRID, VALUES[..., 0], method=method, solver=ssl.spsolve)
        ours = I.RegularGridInterpolator(GRID, VALUES[..., 0], method=method)
        _close(ours(PTS), ref(PTS), 1e-9)
        _close(ours(PTS, nu=(1, 0, 2)), ref(PTS, nu=(1, 0, 2)), 1e-7)
        _close(ours(PTS), si.RegularGridInterpolator(GRID, VALUES[..., 0], method=method + "_legacy")(PTS), 1e-9)


def test_regular_grid_options_match_scipy():
    outside = PTS * 1.5 - 0.5
    for fill in (None, np.nan, 0.5):
        _close(I.RegularGridInterpolator(GRID, VALUES[..., 0], bounds_error=False, fill_value=fill)(outside),
               si.RegularGridInterpolator(GRID, VALUES[..., 0], bounds_error=False, fill_value=fill)(outside))
    desc = (GRID[0][::-1],) + GRID[1:]
    _close(I.RegularGridInterpolator(desc, VALUES)(PTS), si.RegularGridInterpolator(desc, VALUES)(PTS))
    _close(I.interpn(GRID, VALUES, PTS), si.interpn(GRID, VALUES, PTS))
    two = I.RegularGridInterpolator(GRID[:2], VALUES[:, :, 0, 0])
    _close(two((PTS[:, 0], PTS[:, 1])), si.RegularGridInterpolator(GRID[:2], VALUES[:, :, 0, 0])((PTS[:, 0],
                                                                                                 PTS[:, 1])))


@pytest.mark.parametrize("kernel", ["linear", "thin_plate_spline", "cubic", "quintic", "multiquadric",
                                    "inverse_multiquadric", "inverse_quadratic", "gaussian"])
def test_rbf_matches_scipy(kernel, rng):
    sites, data, pts = rng.random((20, 2)), rng.standard_normal((20, 3)), rng.random((7, 2))
    _close(I.RBFInterpolator(sites, data, kernel=kernel, epsilon=2.0)(pts),
           si.RBFInterpolator(sites, data, kernel=kernel, epsilon=2.0)(pts), 1e-8)
    _close(I.RBFInterpolator(sites, data[:, 0], smoothing=0.1, degree=2)(pts),
           si.RBFInterpolator(sites, data[:, 0], smoothing=0.1, degree=2)(pts), 1e-9)


# ---- derivatives -------------------------------------------------------------------------------------

def _check(f, x, tol=1e-6):
    np.testing.assert_allclose(npfunc.grad(f)(x), numerical_jacobian(f, x), rtol=tol, atol=1e-8)


@pytest.mark.parametrize("bc", ["not-a-knot", "natural", "clamped", "periodic"])
def test_cubic_spline_derivatives_in_points_data_and_knots(bc, rng):
    y = _periodic_y()[:, 0] if bc == "periodic" else Y[:, 0]
    w = rng.standard_normal(11)
    pts = np.linspace(X[0] + 0.1, X[-1] - 0.1, 11)
    _check(lambda p: (w * I.CubicSpline(X, y, bc_type=bc)(p)).sum(), pts)
    if bc != "periodic":  # the periodic check compares y[0] and y[-1] exactly
        _check(lambda y: (w * I.CubicSpline(X, y, bc_type=bc)(pts)).sum(), y)
    _check(lambda x: (w * I.CubicSpline(x, y, bc_type=bc)(pts)).sum(), X)


def test_spline_is_linear_in_the_data():
    f = lambda y: I.CubicSpline(X, y)(INSIDE)  # noqa: E731
    jac = npfunc.jacrev(f)(Y[:, 0])
    np.testing.assert_allclose(jac @ Y[:, 0], f(Y[:, 0]), atol=1e-12)  # exactly linear
    np.testing.assert_allclose(npfunc.jacfwd(f)(Y[:, 0]), jac, atol=1e-12)
    np.testing.assert_allclose(npfunc.hessian(lambda y: f(y).sum())(Y[:, 0]), 0, atol=1e-12)


def test_boundary_values_and_make_interp_spline_derivatives():
    def clamp(slope):
        return I.CubicSpline(X, Y[:, 0], bc_type=((1, slope), "natural"))(INSIDE).sum()

    _check(clamp, np.float64(0.4))
    for k in (1, 2, 3, 5):
        _check(lambda x: I.make_interp_spline(x, Y[:, 0], k=k)(INSIDE[1:-1]).sum(), X)
        _check(lambda t: I.make_interp_spline(X, Y[:, 0], k=k)(t, nu=min(k, 1)).sum(), INSIDE[1:-1])


def test_local_interpolator_derivatives():
    for cls in (I.PchipInterpolator, I.Akima1DInterpolator):
        _check(lambda y: cls(X, y)(INSIDE[1:-1]).sum(), Y[:, 0])
        _check(lambda x: cls(x, Y[:, 0])(INSIDE[1:-1]).sum(), X)


def test_interp1d_and_grid_derivatives():
    _check(lambda y: I.interp1d(X, y, kind="cubic")(INSIDE).sum(), Y[:, 0])
    _check(lambda p: I.interp1d(X, Y[:, 0])(p).sum(), INSIDE[1:-1] + 0.01)
    np.testing.assert_allclose(npfunc.grad(lambda p: I.interp1d(X, Y[:, 0], kind="nearest")(p).sum())(INSIDE), 0)
    for method in ("linear", "cubic", "pchip"):
        _check(lambda p: I.RegularGridInterpolator(GRID, VALUES[..., 0], method=method)(p).sum(), PTS)
        _check(lambda v: I.RegularGridInterpolator(GRID, v, method=method)(PTS).sum(), VALUES[..., 0])
    _check(lambda g: I.RegularGridInterpolator((g,) + GRID[1:], VALUES[..., 0])(PTS).sum(), GRID[0])


def test_rbf_derivatives_in_points_sites_and_data(rng):
    sites, data = rng.random((10, 2)), rng.standard_normal(10)
    pts = rng.random((4, 2))
    for kernel in ("thin_plate_spline", "gaussian", "cubic"):
        kw = dict(kernel=kernel, epsilon=3.0)
        _check(lambda p: I.RBFInterpolator(sites, data, **kw)(p).sum(), pts)
        _check(lambda s: I.RBFInterpolator(s, data, **kw)(pts).sum(), sites, 1e-5)
        _check(lambda d: I.RBFInterpolator(sites, d, **kw)(pts).sum(), data)
    # at a data site: smooth kernels have exact second derivatives there
    h = npfunc.hessian(lambda p: I.RBFInterpolator(sites, data, kernel="gaussian", epsilon=3.0)(p[None])[0])(sites[0])
    fd = numerical_jacobian(npfunc.grad(lambda p: I.RBFInterpolator(sites, data, kernel="gaussian",
                                                                   epsilon=3.0)(p[None])[0]), sites[0])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6)
    g = npfunc.grad(lambda p: I.RBFInterpolator(sites, data)(p[None])[0])(sites[0])  # thin plate at a site
    assert np.all(np.isfinite(g))


# ---- natural programs ---------------------------------------------------------------------------------

def test_spline_through_a_parametrised_table():
    """An equation of state tabulated on a grid, interpolated by a cubic spline,
    differentiated in the table's parameter (through construction) and
    evaluated at points that are themselves traced."""
    grid = np.linspace(0.5, 3.0, 12)

    def pressure(theta, v):
        table = theta / grid - 1.0 / grid ** 2  # a van der Waals-like table
        return I.CubicSpline(grid, table, bc_type="natural")(v)

    v = np.array([0.8, 1.7, 2.6])
    jt = npfunc.jacrev(pressure)(np.float64(2.0), v)
    np.testing.assert_allclose(jt, numerical_jacobian(lambda t: pressure(t, v), np.float64(2.0)), rtol=1e-8)
    jv = npfunc.jacfwd(pressure, argnums=1)(np.float64(2.0), v)
    np.testing.assert_allclose(jv, numerical_jacobian(lambda v: pressure(2.0, v), v), rtol=1e-6, atol=1e-9)
    thetas = np.array([1.5, 2.0, 2.5])
    batched = npfunc.vmap(lambda t: npfunc.grad(lambda t: pressure(t, v).sum())(t))(thetas)
    np.testing.assert_allclose(batched, [numerical_jacobian(lambda t: pressure(t, v).sum(), t) for t in thetas],
                               rtol=1e-7)


def test_rbf_surrogate_gradient_descent(rng):
    """Minimise an RBF surrogate of a quadratic bowl by gradient descent."""
    sites = rng.uniform(-1, 1, (40, 2))
    values = ((sites - np.array([0.3, -0.2])) ** 2).sum(axis=1)
    surrogate = I.RBFInterpolator(sites, values, kernel="thin_plate_spline")
    p = np.zeros(2)
    for _ in range(200):
        p = p - 0.2 * npfunc.grad(lambda q: surrogate(q[None])[0])(p)
    np.testing.assert_allclose(p, [0.3, -0.2], atol=2e-2)


def test_vmap_over_datasets_constructs_inside_the_transform(rng):
    datasets = rng.standard_normal((3, 8))
    out = npfunc.vmap(lambda y: I.CubicSpline(X, y)(INSIDE))(datasets)
    _close(out, [si.CubicSpline(X, y)(INSIDE) for y in datasets])
    out = npfunc.vmap(lambda y: I.make_interp_spline(X, y)(INSIDE))(datasets)
    _close(out, [si.make_interp_spline(X, y)(INSIDE) for y in datasets])
    out = npfunc.vmap(lambda x: I.interp1d(X, datasets[0])(x))(np.stack([INSIDE, INSIDE[::-1]]))
    _close(out, [si.interp1d(X, datasets[0])(INSIDE), si.interp1d(X, datasets[0])(INSIDE[::-1])])


# ---- conventions and errors ----------------------------------------------------------------------------

def test_out_of_range_points_are_nan_with_zero_gradient():
    f = lambda p: I.Akima1DInterpolator(X, Y[:, 0])(p)  # noqa: E731  (no extrapolation by default)
    p = np.array([X[0] - 1.0, X[3]])
    assert np.isnan(f(p)[0]) and np.isfinite(f(p)[1])
    assert npfunc.jacrev(f)(p)[0, 0] == 0


def test_errors(rng):
    with pytest.raises(ValueError, match="strictly increasing"):
        I.CubicSpline(X[::-1], Y)
    with pytest.raises(ValueError, match="strictly increasing"):
        npfunc.grad(lambda x: I.CubicSpline(x, Y[:, 0])(1.0))(X[::-1].copy())
    with pytest.raises(ValueError, match="periodic"):
        I.CubicSpline(X, Y, bc_type="periodic")
    with pytest.raises(ValueError, match="below the interpolation range"):
        I.interp1d(X, Y[:, 0])(np.array([X[0] - 1]))
    with pytest.raises(ValueError, match="above the interpolation range"):
        npfunc.vmap(I.interp1d(X, Y[:, 0]))(np.array([[X[-1] + 1]]))
    with pytest.raises(ValueError, match="out of bounds in dimension 1"):
        I.RegularGridInterpolator(GRID, VALUES)(PTS + np.array([0.0, 10.0, 0.0]))
    with pytest.raises(NotImplementedError):
        I.interp1d(X, Y[:, 0], kind="spooky")
    with pytest.raises(ValueError, match="epsilon"):
        I.RBFInterpolator(rng.random((5, 2)), np.ones(5), kernel="gaussian")
    from npfunc.errors import UnsupportedOperationError
    with pytest.raises(UnsupportedOperationError, match="neighbors"):
        npfunc.grad(lambda d: I.RBFInterpolator(rng.random((9, 2)), d, neighbors=4)(np.zeros((1, 2))).sum())(
            np.ones(9))
    with pytest.raises(ValueError, match="Order of derivative"):
        I.CubicSpline(X, Y)(1.0, nu=-1)


def test_unmodified_scipy_calls_reach_or_name_the_twins():
    f = lambda y: si.make_interp_spline(X, y)(INSIDE).sum()  # noqa: E731  (a function: routed to the twin)
    np.testing.assert_allclose(npfunc.grad(f)(Y[:, 0]), npfunc.grad(lambda y: I.make_interp_spline(X, y)(INSIDE).sum())(
        Y[:, 0]), rtol=1e-12)
    # a class built from traced values is the twin; from plain values, SciPy's own object
    g = npfunc.grad(lambda y: si.CubicSpline(X, y)(1.0))(Y[:, 0])
    np.testing.assert_allclose(g, npfunc.grad(lambda y: I.CubicSpline(X, y)(1.0))(Y[:, 0]), rtol=1e-12)
    plain = si.CubicSpline(X, Y[:, 0])
    assert type(plain) is si._cubic.CubicSpline and isinstance(plain, si.CubicSpline)
    assert isinstance(I.CubicSpline(X, Y[:, 0]), si.CubicSpline) and issubclass(si._cubic.CubicSpline, si.CubicSpline)
    assert pickle.loads(pickle.dumps(plain))(1.0) == plain(1.0)

    class Mine(si.CubicSpline):  # a user's subclass constructs as one
        pass

    assert type(Mine(X, Y[:, 0])) is Mine and Mine(X, Y[:, 0])(1.0) == plain(1.0)
    # a plain object evaluated at traced points: a twin made from its coefficients evaluates them
    np.testing.assert_allclose(npfunc.grad(lambda t: plain(t))(np.float64(1.0)), plain(1.0, 1), rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(lambda t: Mine(X, Y[:, 0])(t))(np.float64(1.0)), plain(1.0, 1), rtol=1e-12)
    assert type(npfunc.jit(plain)(np.float64(1.0))) is type(plain(np.float64(1.0)))


# ---- SciPy's interpolators made from plain data, evaluated at traced points ----------------------

def _plain_interpolators():
    import scipy.interpolate as si

    xs = np.linspace(0.0, 3.0, 8)
    ys = np.sin(xs) + 0.1 * xs
    two = np.stack([ys, np.cos(xs)], axis=1)
    return {
        "CubicSpline": si.CubicSpline(xs, ys),
        "CubicSpline natural, 2 columns": si.CubicSpline(xs, two, bc_type="natural"),
        "PchipInterpolator": si.PchipInterpolator(xs, ys),
        "Akima1DInterpolator": si.Akima1DInterpolator(xs, ys, extrapolate=True),
        "CubicHermiteSpline": si.CubicHermiteSpline(xs, ys, np.cos(xs)),
        "make_interp_spline": si.make_interp_spline(xs, ys, k=3),
        "make_interp_spline k=1, axis=1": si.make_interp_spline(xs, two.T, k=1, axis=1),
    }


@pytest.mark.parametrize("name", sorted(_plain_interpolators()))
def test_plain_interpolators_at_traced_points(name):
    """A table interpolated at a point the transform traces: a twin made from the SciPy
    object's coefficients evaluates the same function (values to rounding, exact derivatives)."""
    spl = _plain_interpolators()[name]
    t = np.array([0.35, 1.7, 2.95])
    want = spl(t)
    f = lambda t: np.sum(spl(t) ** 2)  # noqa: E731
    for _ in range(3):
        np.testing.assert_allclose(npfunc.grad(f)(t), _numerical_gradient(f, t), rtol=1e-6, atol=1e-9)
    got = npfunc.jit(lambda t: spl(t))(t)
    assert type(got) is type(want) and got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(npfunc.vmap(lambda s: spl(s))(t), np.stack([spl(s) for s in t]), rtol=1e-13)
    np.testing.assert_allclose(npfunc.jacfwd(lambda t: spl(t, 1))(np.array([1.1]))[..., 0], spl(np.array([1.1]), 2),
                               rtol=1e-9, atol=1e-12)
    assert spl(t) is not None and np.array_equal(spl(t), want)  # plain calls: SciPy's own values


def _numerical_gradient(f, x, eps=1e-6):
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        out[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


def test_plain_spline_integral_with_traced_bounds():
    import scipy.interpolate as si

    xs = np.linspace(0.0, 3.0, 8)
    spl = si.CubicSpline(xs, np.exp(-xs))
    bspl = si.make_interp_spline(xs, np.exp(-xs))
    for s in (spl, bspl):
        # d/db of the integral from a to b is the spline at b
        np.testing.assert_allclose(npfunc.grad(lambda b: s.integrate(0.2, b))(1.3), s(1.3), rtol=1e-12)
        np.testing.assert_allclose(npfunc.jit(lambda b: s.integrate(0.2, b))(np.float64(1.3)), s.integrate(0.2, 1.3),
                                   rtol=1e-13)


def test_plain_grid_interpolator_at_traced_points():
    import scipy.interpolate as si

    gx, gy = np.linspace(0.0, 2.0, 5), np.linspace(-1.0, 1.0, 4)[::-1]  # a descending axis too
    values = np.add.outer(np.sin(gx), gy ** 2)
    rng = np.random.default_rng(2)
    pts = np.stack([rng.uniform(0, 2, 6), rng.uniform(-1, 1, 6)], axis=-1)
    for method in ("linear", "nearest"):
        rgi = si.RegularGridInterpolator((gx, gy), values, method=method)
        got = npfunc.jit(lambda p: rgi(p))(pts)
        np.testing.assert_allclose(got, rgi(pts), rtol=1e-14, atol=1e-15)
        f = lambda p: np.sum(rgi(p) * np.arange(6.0))  # noqa: E731
        np.testing.assert_allclose(npfunc.grad(f)(pts), _numerical_gradient(f, pts.ravel()).reshape(pts.shape)
                                   if method == "linear" else np.zeros_like(pts), rtol=1e-6, atol=1e-9)
    cubic = si.RegularGridInterpolator((gx, gy), values, method="cubic")
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="method='linear'"):
        npfunc.grad(lambda p: cubic(p).sum())(pts)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="iteratively"):
        npfunc.jit(lambda p: si.RegularGridInterpolator((gx, gy), values)(p, method="cubic"))(pts)
