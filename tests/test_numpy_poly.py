"""Polynomials, general eigenproblems and NumPy's functional routines as a
scientist writes them, with plain ``import numpy as np``: values against
plain NumPy, derivatives against central differences, under grad, vmap,
jacfwd/jacrev and nested transforms; and the error paths."""
import warnings

import numpy as np
import numpy.polynomial as P
import pytest
from numpy.polynomial import Chebyshev, Polynomial
from numpy.polynomial import chebyshev as C

import npfunc
from npfunc import errors, grad, hessian, jacfwd, jacrev, jit, jvp, vmap
from npfunc.testing import numerical_jacobian


def complex_jacobian(f, x, eps=1e-6):
    """Central differences of a complex-valued ``f`` of real ``x``."""
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(cols[0].shape + x.shape)


# ---- fitting a polynomial trend and differentiating it w.r.t. the data -----------------------

T = np.linspace(0.0, 10.0, 25)
SIGNAL = 0.3 * T - 0.02 * T ** 2 + np.sin(T)


def trend_at(y, t0=12.0, w=None):
    """Forecast of a quadratic trend fitted to the series y at time t0."""
    coef = np.polyfit(T, y, 2, w=w)
    return np.polyval(coef, t0)


def test_trend_forecast_value_and_gradient_wrt_the_data(numerical_jacobian):
    assert trend_at(SIGNAL) == pytest.approx(float(np.polyval(np.polyfit(T, SIGNAL, 2), 12.0)), abs=0)
    g = grad(trend_at)(SIGNAL)
    np.testing.assert_allclose(g, numerical_jacobian(trend_at, SIGNAL), rtol=1e-6, atol=1e-8)
    # the forecast is linear in y: its gradient is the row of the hat matrix, constants reproduced
    assert g.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g @ SIGNAL, trend_at(SIGNAL), rtol=1e-10)


def test_trend_gradient_wrt_times_and_weights(numerical_jacobian):
    w = 1.0 + 0.5 * np.cos(T)

    def forecast(t, w):
        return np.polyval(np.polyfit(t, SIGNAL, 2, w=w), 12.0)

    gt, gw = grad(forecast, argnums=(0, 1))(T, w)
    np.testing.assert_allclose(gt, numerical_jacobian(lambda t: forecast(t, w), T), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gw, numerical_jacobian(lambda v: forecast(T, v), w), rtol=1e-5, atol=1e-8)


def test_trend_of_many_series_vmap_jacobians_and_hessian():
    series = SIGNAL + np.random.default_rng(0).normal(0, 0.1, (6, T.size))
    batched = vmap(trend_at)(series)
    np.testing.assert_allclose(batched, [trend_at(s) for s in series], rtol=1e-12)
    per_series = vmap(grad(trend_at))(series)          # the forecast is linear in y:
    np.testing.assert_allclose(per_series, np.broadcast_to(grad(trend_at)(SIGNAL), series.shape), atol=1e-12)
    coef_jac = jacrev(lambda y: np.polyfit(T, y, 3))(SIGNAL)
    np.testing.assert_allclose(coef_jac, jacfwd(lambda y: np.polyfit(T, y, 3))(SIGNAL), atol=1e-12)
    # nested: curvature of a misfit in the times (the fit is non-linear in t)
    misfit = lambda t: ((np.polyval(np.polyfit(t, SIGNAL, 2), t) - SIGNAL) ** 2).sum()  # noqa: E731
    H = hessian(misfit)(T)
    fd = numerical_jacobian(grad(misfit), T, eps=1e-5)
    np.testing.assert_allclose(H, fd, rtol=1e-4, atol=1e-6)


def test_polyfit_full_and_cov_outputs_match_numpy():
    c, res, rank, sv, rcond = np.polyfit(T, SIGNAL, 3, full=True)
    out = jvp(lambda y: np.polyfit(T, y, 3, full=True)[:2], (SIGNAL,), (np.ones_like(SIGNAL),))[0]
    np.testing.assert_array_equal(out[0], c)
    np.testing.assert_array_equal(out[1], res)
    _, cov = np.polyfit(T, SIGNAL, 2, cov=True)
    g = grad(lambda y: np.polyfit(T, y, 2, cov=True)[1][0, 0])(SIGNAL)
    np.testing.assert_allclose(g, numerical_jacobian(lambda y: np.polyfit(T, y, 2, cov=True)[1][0, 0], SIGNAL),
                               rtol=1e-5, atol=1e-10)
    assert cov.shape == (3, 3)


# ---- sensitivity of polynomial roots to the coefficients -------------------------------------

def test_roots_sensitivity_matches_finite_differences():
    coef = np.array([1.0, -6.0, 11.0, -6.0])     # roots 3, 2, 1
    roots = np.roots(coef)
    J = jacfwd(np.roots)(coef)
    np.testing.assert_allclose(J, numerical_jacobian(np.roots, coef), rtol=1e-6, atol=1e-8)
    # implicit-function check: dr/dc_k = -r^(n-k) / p'(r)
    dp = np.polyval(np.polyder(coef), roots)
    expected = -roots[:, None] ** np.arange(3, -1, -1)[None, :] / dp[:, None]
    np.testing.assert_allclose(J, expected, rtol=1e-8)
    np.testing.assert_allclose(jacrev(np.roots)(coef), J, atol=1e-10)


def test_complex_roots_and_their_moduli():
    coef = np.array([1.0, 0.4, 2.0, -1.0])
    r = np.roots(coef)
    assert r.dtype == np.complex128 and np.iscomplex(r).any()
    np.testing.assert_allclose(jacfwd(np.roots)(coef), complex_jacobian(np.roots, coef), rtol=1e-6, atol=1e-8)
    spread = lambda c: np.abs(np.roots(c)).max()  # noqa: E731  (largest root modulus)
    np.testing.assert_allclose(grad(spread)(coef), numerical_jacobian(spread, coef), rtol=1e-6)


def test_roots_of_many_polynomials_under_vmap_and_the_poly_roundtrip():
    coefs = np.array([[1.0, -3.0, 2.0], [2.0, -1.0, -1.0], [1.0, 0.0, -4.0]])
    np.testing.assert_allclose(vmap(np.roots)(coefs), [np.roots(c) for c in coefs], rtol=1e-12)
    back = lambda c: np.poly(np.roots(c)) * c[0]  # noqa: E731
    np.testing.assert_allclose(jacfwd(back)(coefs[0]), np.eye(3), atol=1e-10)


def test_poly_of_a_matrix_is_its_characteristic_polynomial(numerical_jacobian):
    A = np.array([[2.0, 1.0, 0.0], [0.5, -1.0, 0.3], [0.0, 0.2, 1.5]])
    char = np.poly(A)
    g = jacrev(np.poly)(A)
    np.testing.assert_allclose(g, numerical_jacobian(np.poly, A), rtol=1e-6, atol=1e-8)
    # the last coefficient is -det(A) (odd size): its gradient is -det(A) inv(A)^T
    np.testing.assert_allclose(g[-1], -np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-8)
    assert char.dtype == np.float64


def test_poly1d_evaluation_and_algebra_with_traced_coefficients(numerical_jacobian):
    def f(c):
        p = np.poly1d(c)
        return (p * p).deriv()(0.3) + p.integ(k=1.0)(1.0) + p(np.array([0.5, 2.0])).sum()

    c = np.array([0.7, -1.2, 2.0])
    np.testing.assert_allclose(grad(f)(c), numerical_jacobian(f, c), rtol=1e-7)
    assert vmap(f)(np.stack([c, 2 * c])).shape == (2,)


# ---- Chebyshev approximation of a parametrised function --------------------------------------

def _chebyshev_integral(theta, deg=12):
    """Integral over [-1, 1] of a Chebyshev approximation of exp(theta x) cos(2x)."""
    x = C.chebpts2(40)
    approx = Chebyshev.fit(x, np.exp(theta * x) * np.cos(2 * x), deg)
    antiderivative = approx.integ()
    return antiderivative(1.0) - antiderivative(-1.0)


def test_chebyshev_approximation_derivative_in_the_parameter():
    theta = 0.8
    exact = lambda t: np.trapezoid(np.exp(t * (s := np.linspace(-1, 1, 20001))) * np.cos(2 * s), s)  # noqa: E731
    assert _chebyshev_integral(theta) == pytest.approx(exact(theta), rel=1e-7)
    g = grad(_chebyshev_integral)(theta)
    fd = (_chebyshev_integral(theta + 1e-6) - _chebyshev_integral(theta - 1e-6)) / 2e-6
    assert g == pytest.approx(fd, rel=1e-7)
    # d/dtheta of the integral is the integral of x exp(theta x) cos 2x
    s = np.linspace(-1, 1, 20001)
    assert g == pytest.approx(np.trapezoid(s * np.exp(theta * s) * np.cos(2 * s), s), rel=1e-6)
    thetas = np.array([-0.5, 0.0, 0.8])
    np.testing.assert_allclose(vmap(grad(_chebyshev_integral))(thetas),
                               [grad(_chebyshev_integral)(t) for t in thetas], rtol=1e-10)
    assert jacfwd(jacrev(_chebyshev_integral))(theta) == pytest.approx(
        (grad(_chebyshev_integral)(theta + 1e-5) - grad(_chebyshev_integral)(theta - 1e-5)) / 2e-5, rel=1e-5)


def test_chebinterpolate_with_a_traced_parameter_and_series_evaluation():
    def coefficient_norm(t):
        c = C.chebinterpolate(lambda x, a: np.tanh(a * x), 9, args=(t,))
        return (c ** 2).sum() + C.chebval(0.3, c)

    t = 1.3
    fd = (coefficient_norm(t + 1e-6) - coefficient_norm(t - 1e-6)) / 2e-6
    assert grad(coefficient_norm)(t) == pytest.approx(fd, rel=1e-6)


def test_fitted_series_classes_with_a_data_dependent_domain(numerical_jacobian):
    x = np.linspace(0.5, 3.0, 15)
    y = np.log(x)
    for cls in (Polynomial, Chebyshev, P.Legendre, P.Hermite, P.HermiteE, P.Laguerre):
        def slope(xs, cls=cls):
            return cls.fit(xs, y, 3).deriv()(1.0)

        np.testing.assert_allclose(grad(slope)(x), numerical_jacobian(slope, x), rtol=1e-5, atol=1e-8,
                                   err_msg=cls.__name__)
    datasets = np.stack([x, x * 1.1, x + 0.2])    # each fit chooses its own domain
    np.testing.assert_allclose(vmap(lambda xs: Polynomial.fit(xs, y, 2)(1.0))(datasets),
                               [Polynomial.fit(d, y, 2)(1.0) for d in datasets], rtol=1e-10)


def test_numpy_polynomial_hooks_do_not_change_plain_calls():
    c, x = np.array([1.0, -2.0, 0.5]), np.linspace(-1, 1, 4)
    for fn, args in [(C.chebval, (x, c)), (P.polynomial.polyfit, (x, x ** 2, 2)), (C.chebder, (c,)),
                     (P.legendre.legvander, (x, 3)), (P.polyutils.mapdomain, (x, [-1, 1], [0, 2]))]:
        original = fn.npfunc_original
        np.testing.assert_array_equal(fn(*args), original(*args))
        assert type(fn(*args)) is type(original(*args))
    assert isinstance(Chebyshev(c).coef, np.ndarray)
    assert C.chebval.__name__ == "chebval" and "Chebyshev" in C.chebval.__doc__


# ---- a vectorized scalar function under grad and vmap ----------------------------------------

def _soft_clip(v, limit=1.0):
    """A scalar function written for one number, as np.vectorize users write them."""
    return np.where(abs(v) < limit, v, limit * np.tanh(v / limit) + (abs(v) >= limit) * 0.0)


def test_vectorized_scalar_function_under_grad_vmap_and_jacobians(numerical_jacobian):
    clip = np.vectorize(_soft_clip)
    x = np.array([[-2.5, -0.3], [0.7, 1.8]])
    np.testing.assert_allclose(jvp(clip, (x,), (np.ones_like(x),))[0], clip(x), rtol=1e-15)
    loss = lambda v: (clip(v) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(grad(loss)(x), numerical_jacobian(loss, x), rtol=1e-7)
    np.testing.assert_allclose(vmap(clip)(x), clip(x))
    np.testing.assert_allclose(jacfwd(clip)(x[0]), jacrev(clip)(x[0]))
    np.testing.assert_allclose(vmap(grad(loss))(np.stack([x, 2 * x])), [grad(loss)(x), grad(loss)(2 * x)])


def test_vectorize_excluded_otypes_and_signature():
    calls = []

    def weighted(a, b, scale):
        calls.append(1)
        return scale * a * b

    vec = np.vectorize(weighted, excluded={"scale"}, otypes=[np.float32])
    a, b = np.array([1.0, 2.0, 3.0]), np.array([[0.5], [2.0]])
    out = vec(a, b, scale=2.0)
    traced = jvp(lambda a: vec(a, b, scale=2.0), (a,), (np.ones(3),))[0]
    assert traced.dtype == out.dtype == np.float32 and traced.shape == (2, 3)
    np.testing.assert_allclose(traced, out)
    calls.clear()
    grad(lambda a: vec(a, b, scale=2.0).sum())(a)
    assert len(calls) == 1, "one batched call, not one call per element"

    cosine = np.vectorize(lambda u, v: (u * v).sum() / np.sqrt((u * u).sum() * (v * v).sum()),
                          signature="(n),(n)->()")
    U = np.random.default_rng(0).normal(size=(4, 3))
    g = grad(lambda U: cosine(U, U[::-1]).sum())(U)
    np.testing.assert_allclose(g, numerical_jacobian(lambda U: cosine(U, U[::-1]).sum(), U), rtol=1e-6)


def test_vectorize_with_python_branches_runs_numpys_loop_under_grad_and_errs_under_vmap():
    relu_sq = np.vectorize(lambda v: v * v if v > 0 else 0.0 * v)
    x = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(grad(lambda v: relu_sq(v).sum())(x), [0.0, 1.0, 4.0])
    with pytest.raises(errors.BatchedConversionError, match="vmap"):
        vmap(relu_sq)(x)


def test_apply_along_axis_over_axes_and_fromfunction(numerical_jacobian):
    a = np.random.default_rng(1).normal(size=(3, 4))
    normalise = lambda r: r / np.sqrt((r * r).sum())  # noqa: E731
    f = lambda a: np.apply_along_axis(normalise, 1, a)  # noqa: E731
    np.testing.assert_allclose(jvp(f, (a,), (a,))[0], f(a), rtol=1e-15)
    np.testing.assert_allclose(jacrev(f)(a), numerical_jacobian(f, a), rtol=1e-6, atol=1e-9)
    g = lambda a: np.apply_over_axes(np.sum, a ** 2, [0, 1])  # noqa: E731
    np.testing.assert_allclose(jacfwd(g)(a)[0, 0], 2 * a)
    grid = lambda s: np.fromfunction(lambda i, j: np.exp(-s * (i - j) ** 2), (4, 4))  # noqa: E731
    np.testing.assert_allclose(grad(lambda s: grid(s).sum())(0.3),
                               numerical_jacobian(lambda s: grid(s).sum(), np.array(0.3)), rtol=1e-7)


# ---- eigenvalue sensitivity of a non-symmetric matrix ----------------------------------------

A = np.array([[0.9, 0.4, -0.2], [-0.3, 0.5, 0.6], [0.1, -0.7, 0.2]])


def test_eigenvalue_sensitivity_from_left_and_right_eigenvectors():
    w, V = np.linalg.eig(A)
    U = np.linalg.inv(V).conj().T             # left eigenvectors, u_j^H v_j = 1
    J = jacfwd(np.linalg.eigvals)(A)
    expected = np.einsum("ij,kj->jik", U.conj(), V)  # d w_j / d A_ik = conj(u_ij) v_kj
    np.testing.assert_allclose(J, expected, atol=1e-12)
    np.testing.assert_allclose(J, complex_jacobian(np.linalg.eigvals, A), rtol=1e-6, atol=1e-8)


def test_spectral_abscissa_gradient_vmap_and_hessian(numerical_jacobian):
    abscissa = lambda M: np.linalg.eigvals(M).real.max()  # noqa: E731  (stability margin)
    np.testing.assert_allclose(grad(abscissa)(A), numerical_jacobian(abscissa, A), rtol=1e-6, atol=1e-9)
    stack = A + 0.1 * np.random.default_rng(2).normal(size=(5, 3, 3))
    np.testing.assert_allclose(vmap(grad(abscissa))(stack), [grad(abscissa)(m) for m in stack], rtol=1e-10)
    energy = lambda M: (np.abs(np.linalg.eigvals(M)) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(hessian(energy)(A), numerical_jacobian(grad(energy), A), rtol=1e-5, atol=1e-7)


def test_phase_invariant_eigenvector_functions_and_numpys_normalisation(numerical_jacobian):
    def projector_entry(M):   # |v_j|^2 entries and the rank-one spectral projector: phase-free
        w, V = np.linalg.eig(M)
        U = np.linalg.inv(V)
        proj = V[:, :1] * U[:1, :]
        return (np.abs(V) ** 2).sum(0).sum() + proj.real.sum() + np.abs(V[0]).sum()

    np.testing.assert_allclose(grad(projector_entry)(A), numerical_jacobian(projector_entry, A), rtol=1e-6,
                               atol=1e-9)
    # the raw vectors follow NumPy's normalisation (unit norm, largest entry real)
    vecs = lambda M: np.linalg.eig(M)[1]  # noqa: E731
    np.testing.assert_allclose(jacfwd(vecs)(A), complex_jacobian(vecs, A), rtol=1e-6, atol=1e-8)


def test_eig_dtypes_follow_numpy():
    real_spectrum = np.array([[2.0, 1.0], [0.0, -1.0]])
    for M in (real_spectrum, A, A.astype(np.float32), A + 1j * A.T, np.array([[1, 2], [3, 4]])):
        w, V = np.linalg.eig(M)
        out = jvp(np.linalg.eig, (M,), (np.ones_like(M),))[0] if M.dtype.kind in "fc" else \
            vmap(np.linalg.eig)(M[None])
        got = (out[0], out[1]) if M.dtype.kind in "fc" else (out[0][0], out[1][0])
        assert got[0].dtype == w.dtype and got[1].dtype == V.dtype
        np.testing.assert_array_equal(got[0], w)


def test_tensorinv_and_tensorsolve(numerical_jacobian):
    a = np.eye(6).reshape(6, 2, 3) + 0.1 * np.random.default_rng(3).normal(size=(6, 2, 3))
    b = np.arange(6.0)
    x = np.linalg.tensorsolve(a, b)
    np.testing.assert_array_equal(jvp(lambda b: np.linalg.tensorsolve(a, b), (b,), (b,))[0], x)
    f = lambda a: np.linalg.tensorsolve(a, b).sum()  # noqa: E731
    np.testing.assert_allclose(grad(f)(a), numerical_jacobian(f, a), rtol=1e-6, atol=1e-9)
    t = a.reshape(3, 2, 6)
    np.testing.assert_allclose(vmap(np.linalg.tensorinv, in_dims=(0, None))(np.stack([t, 2 * t]), 2)[1],
                               np.linalg.tensorinv(2 * t), rtol=1e-12)


def test_jit_runs_polynomial_and_eig_code():
    x = np.linspace(-1, 1, 7)
    f = jit(lambda c: (Chebyshev(c)(x) * np.polyval(c, x)).sum() + np.linalg.eigvals(np.diag(c)).real.sum())
    c = np.array([1.0, -0.5, 2.0])
    assert f(c) == pytest.approx((Chebyshev(c)(x) * np.polyval(c, x)).sum() + c.sum())
    assert f(2 * c) == pytest.approx((Chebyshev(2 * c)(x) * np.polyval(2 * c, x)).sum() + 2 * c.sum())


# ---- error paths ---------------------------------------------------------------------------------

def test_polyfit_under_jit_names_numpy_code_and_a_fix_that_works():
    """np.polyfit's rank check branches on the values inside NumPy's code.  At
    fixed abscissae the rank is the plain matrix's, and jit runs it; with traced
    abscissae the generic advice (np.where, static_argnums) cannot reach the
    branch, so the message names np.polyfit and says to call it outside jit."""
    t, y = np.arange(8.0), np.sin(np.arange(8.0))
    slope = lambda y: np.polyfit(t, y, 1)[0]  # noqa: E731
    np.testing.assert_allclose(jit(slope)(y), slope(y), rtol=1e-12)
    np.testing.assert_allclose(jit(slope)(2 * y), slope(2 * y), rtol=1e-12)
    with pytest.raises(errors.ConcretizationError, match=r"np\.polyfit.*outside jit"):
        jit(lambda t: np.polyfit(t, y, 1)[0])(t)
    np.testing.assert_allclose(vmap(slope)(np.stack([y, 2 * y])), [slope(y), slope(2 * y)], rtol=1e-12)
    np.testing.assert_allclose(grad(slope)(y), (t - t.mean()) / ((t - t.mean()) ** 2).sum(), rtol=1e-10)


def test_roots_under_vmap_needs_the_same_zero_pattern():
    coefs = np.array([[0.0, 1.0, -3.0, 2.0], [1.0, 1.0, -3.0, 2.0]])   # degree 2 and degree 3
    with pytest.raises(errors.BatchedConversionError, match="vmap.*do not agree|vmap"):
        vmap(np.roots)(coefs)
    np.testing.assert_allclose(vmap(np.roots)(coefs[[0, 0]] * [[1.0], [2.0]]),
                               [np.roots(coefs[0])] * 2, rtol=1e-12)


def test_polynomial_errors_are_numpys(x3=np.array([1.0, 2.0, 3.0])):
    with pytest.raises(TypeError, match="same length"):
        grad(lambda y: np.polyfit(x3, y, 1).sum())(np.ones(4))
    with pytest.raises(ValueError, match="deg"):
        grad(lambda y: np.polyfit(x3, y, -1).sum())(np.ones(3))
    with pytest.raises(ValueError, match="maximum degree"):
        grad(lambda c: C.chebcompanion(c).sum())(np.array([1.0]))
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        grad(lambda a: np.linalg.eigvals(a).real.sum())(np.ones((2, 3)))
    with pytest.raises(ValueError, match="size 0"):
        grad(lambda v: np.vectorize(np.sin)(v).sum())(np.ones(0))
    with pytest.raises(np.exceptions.AxisError):
        grad(lambda a: np.apply_along_axis(np.sum, 2, a).sum())(np.ones((2, 2)))


def test_polyint_with_a_traced_constant_names_the_fix():
    p = np.array([1.0, 2.0])
    with pytest.raises(errors.ConcretizationError, match="npfunc.numpy.polyint"):
        grad(lambda k: np.polyint(p, 1, k).sum())(np.array([0.5]))
    assert grad(lambda k: npfunc.numpy.polyint(p, 1, k).sum())(np.array([0.5]))[0] == 1.0


def test_polyfit_rank_warning_is_numpys():
    x = np.array([1.0, 1.0, 1.0, 2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grad(lambda y: np.polyfit(x, y, 3).sum())(np.arange(4.0))
    assert any(issubclass(w.category, np.exceptions.RankWarning) for w in caught)


def test_eig_at_repeated_and_defective_eigenvalues_follows_the_documented_convention():
    repeated = np.diag([2.0, 2.0, 1.0])              # diagonalizable, a repeated eigenvalue
    np.testing.assert_allclose(grad(lambda a: (np.linalg.eigvals(a).real ** 2).sum())(repeated),
                               2 * repeated)        # symmetric functions: exact (d tr(A^2) = 2 A^T)
    assert np.isfinite(grad(lambda a: np.linalg.eig(a)[1].real.sum())(repeated)).all()
    jordan = np.array([[1.0, 1.0], [0.0, 1.0]])      # defective: only the trace stays exact
    np.testing.assert_allclose(grad(lambda a: np.linalg.eigvals(a).real.sum())(jordan), np.eye(2))
    assert np.abs(grad(lambda a: np.linalg.eigvals(a).real[0])(jordan)).max() > 1e10


def test_every_numpy_polynomial_array_function_is_hooked_and_has_samples():
    from npfunc.core.primitive import COMPOSITES
    from npfunc.primitives.numpy_code import HOOKED

    for module in (P.polynomial, P.chebyshev, P.legendre, P.hermite, P.hermite_e, P.laguerre):
        short = module.__name__.rsplit(".", 1)[1]
        for name in module.__all__:
            value = getattr(module, name)
            if not callable(value) or isinstance(value, type):
                continue
            assert hasattr(value, "npfunc_original") or value in npfunc.core.dispatch.FUNCTIONS, name
            if name.endswith(("gauss", "pts1", "pts2", "interpolate")):
                continue  # sizes or a function, no array arguments
            assert f"np.polynomial.{short}.{name}" in COMPOSITES, name
    assert "numpy.vectorize.__call__" in HOOKED and "numpy.polynomial.chebyshev.chebval" in HOOKED


def test_import_npfunc_does_not_import_numpy_polynomial():
    import subprocess
    import sys

    code = "import sys, npfunc; print('numpy.polynomial' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
