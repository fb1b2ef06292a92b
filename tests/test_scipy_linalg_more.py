"""npfunc.scipy.linalg's factorisations, matrix functions, matrix equations,
banded solves and special matrices: values against SciPy, derivatives
against central differences, every transform, natural programs (a Lyapunov
sensitivity, a Gramian, a matrix-logarithm loss), conventions at
non-unique factorisations, and the error paths."""
import warnings

import numpy as np
import pytest
import scipy.linalg as sl

import npfunc
import npfunc.scipy.linalg as L
from npfunc.errors import UnsupportedOperationError
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(7)


def _mat(n, shift=0.0, rng=RNG):
    return rng.standard_normal((n, n)) + shift * np.eye(n)


def _spd(n, rng=RNG):
    b = rng.standard_normal((n, n))
    return b @ b.T / n + np.eye(n)


def _close(a, b, tol=1e-10):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


# ---- values against SciPy ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("kw", [{}, {"permute_l": True}, {"p_indices": True}])
def test_lu_matches_scipy(shape, kw):
    a = RNG.standard_normal(shape)
    _close(L.lu(a, **kw), sl.lu(a, **kw))
    lu, piv = L.lu_factor(a)
    lu_s, piv_s = sl.lu_factor(a)
    _close(lu, lu_s)
    assert piv.dtype == piv_s.dtype and np.array_equal(piv, piv_s)


@pytest.mark.parametrize("trans", [0, 1, 2])
def test_lu_solve_matches_scipy(trans):
    a, b = _mat(4, 2.0), RNG.standard_normal((4, 2))
    _close(L.lu_solve(sl.lu_factor(a), b, trans=trans), sl.lu_solve(sl.lu_factor(a), b, trans=trans))
    c = a + 1j * _mat(4)
    _close(L.lu_solve(sl.lu_factor(c), b[:, 0], trans=trans), sl.lu_solve(sl.lu_factor(c), b[:, 0], trans=trans))


def test_decompositions_and_functions_match_scipy():
    a = _mat(4)
    _close(L.schur(a), sl.schur(a))
    _close(L.schur(a, sort="lhp")[:2], sl.schur(a, sort="lhp")[:2])
    assert L.schur(a, sort="lhp")[2] == sl.schur(a, sort="lhp")[2]
    _close(L.hessenberg(a, calc_q=True), sl.hessenberg(a, calc_q=True))
    for side in ("right", "left"):
        _close(L.polar(a, side=side), sl.polar(a, side=side))
    s = _spd(4)
    _close(L.sqrtm(s), sl.sqrtm(s))
    _close(L.logm(s), sl.logm(s))
    neg = np.array([[-1.0, 0.5], [0.2, 2.0]])  # a negative eigenvalue: complex results, as SciPy
    _close(L.sqrtm(neg), sl.sqrtm(neg))
    _close(L.logm(neg), sl.logm(neg))
    for func in (np.exp, np.sin, lambda z: z ** 3):
        _close(L.funm(a, func), sl.funm(a, func), 1e-9)
    assert L.funm(a, np.exp).dtype == np.float64
    f, err = L.funm(a, np.exp, disp=False)
    assert np.isfinite(err) and err < 1e-8


def test_equations_and_banded_match_scipy():
    a, b, q = _mat(3, -3.0), _mat(2, 3.0), RNG.standard_normal((3, 2))
    _close(L.solve_sylvester(a, b, q), sl.solve_sylvester(a, b, q))
    s = _spd(3)
    _close(L.solve_continuous_lyapunov(a, s), sl.solve_continuous_lyapunov(a, s))
    for method in (None, "direct", "bilinear"):
        _close(L.solve_discrete_lyapunov(0.3 * a, s, method=method),
               sl.solve_discrete_lyapunov(0.3 * a, s, method=method), 1e-9)
    ab = np.array([[0.0, 1.0, 2.0, 1.0], [5.0, 6.0, 7.0, 6.0], [1.0, 2.0, 1.0, 0.0]])
    rhs = RNG.standard_normal((4, 2))
    _close(L.solve_banded((1, 1), ab, rhs), sl.solve_banded((1, 1), ab, rhs))
    h = np.array([[0.0, 1.0, 1.0, 1.0], [4.0, 4.0, 4.0, 4.0]])
    for lower in (False, True):
        hh = h[::-1] if lower else h
        _close(L.solveh_banded(hh, rhs[:, 0], lower=lower), sl.solveh_banded(hh, rhs[:, 0], lower=lower))
    d, e = RNG.standard_normal(5), RNG.standard_normal(4)
    _close(L.eigh_tridiagonal(d, e), sl.eigh_tridiagonal(d, e))
    _close(L.eigh_tridiagonal(d, e, select="i", select_range=(1, 3)),
           sl.eigh_tridiagonal(d, e, select="i", select_range=(1, 3)))
    _close(L.eigh_tridiagonal(d, e, eigvals_only=True), sl.eigh_tridiagonal(d, e, eigvals_only=True))


def test_special_matrices_match_scipy():
    c, r = RNG.standard_normal(3), RNG.standard_normal(4)
    _close(L.toeplitz(c, r), sl.toeplitz(c, r))
    _close(L.toeplitz(c + 1j), sl.toeplitz(c + 1j))
    _close(L.circulant(c), sl.circulant(c))
    _close(L.hankel(c, r), sl.hankel(c, r))
    _close(L.hankel(c), sl.hankel(c))
    _close(L.companion(r + 2), sl.companion(r + 2))
    a2 = _mat(2)
    _close(L.block_diag(a2, 1.5, c), sl.block_diag(a2, 1.5, c))
    _close(L.block_diag(), sl.block_diag())
    stacked = RNG.standard_normal((2, 3))
    _close(L.toeplitz(stacked), sl.toeplitz(stacked))
    _close(L.circulant(stacked), sl.circulant(stacked))
    _close(L.companion(stacked + 3), sl.companion(stacked + 3))


# ---- derivatives ------------------------------------------------------------------------------------

def _grad_check(f, x, tol=1e-6):
    np.testing.assert_allclose(npfunc.grad(f)(x), numerical_jacobian(f, x), rtol=tol, atol=tol)


@pytest.mark.parametrize("fn", [
    lambda a: (L.lu(a)[1] ** 2).sum() + L.lu(a)[2].sum(),
    lambda a: L.lu_solve(L.lu_factor(a), np.arange(4.0)).sum(),
    lambda a: np.sin(L.schur(a @ a.T)[0]).sum(),
    lambda a: (L.hessenberg(a, calc_q=True)[1] * np.arange(16.0).reshape(4, 4)).sum(),
    lambda a: L.polar(a)[0][0, 1] + L.polar(a, side="left")[1].trace(),
    lambda a: (L.sqrtm(a @ a.T + np.eye(4)) ** 2).sum(),
    lambda a: L.logm(a @ a.T + np.eye(4))[0, 1],
    lambda a: L.funm(a, np.sin).sum(),
    lambda a: L.solve_sylvester(a, a.T + 8 * np.eye(4), np.eye(4)).sum(),
    lambda a: L.solve_discrete_lyapunov(0.2 * a, np.eye(4)).trace(),
])
def test_gradients_match_differences(fn):
    _grad_check(fn, _mat(4, 2.0, np.random.default_rng(3)))


def test_jacobians_forward_and_reverse_agree():
    a = _mat(3, 2.0)
    f = lambda a: L.lu(a)[2]  # noqa: E731
    np.testing.assert_allclose(npfunc.jacfwd(f)(a), npfunc.jacrev(f)(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npfunc.jacrev(f)(a), numerical_jacobian(f, a), rtol=1e-6, atol=1e-7)
    g = lambda a: L.sqrtm(a @ a.T + np.eye(3))  # noqa: E731
    np.testing.assert_allclose(npfunc.jacfwd(g)(a), npfunc.jacrev(g)(a), rtol=1e-9, atol=1e-11)


def test_banded_gradients_in_storage_and_rhs():
    ab = np.array([[0.0, 1.0, 2.0, 1.0, 0.5], [5.0, 6.0, 7.0, 6.0, 5.0], [1.0, 2.0, 1.0, 0.5, 0.0]])
    b = RNG.standard_normal(5)
    f = lambda ab: (L.solve_banded((1, 1), ab, b) ** 2).sum()  # noqa: E731
    g = npfunc.grad(f)(ab)
    np.testing.assert_allclose(g, numerical_jacobian(f, ab), rtol=1e-6, atol=1e-8)
    assert g[0, 0] == 0 and g[2, -1] == 0  # corners of the storage are never read
    h = np.array([[0.0, 1.0, 1.0, 0.5, 0.2], [4.0, 4.0, 4.0, 4.0, 4.0]])
    fh = lambda h: L.solveh_banded(h, b).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(fh)(h), numerical_jacobian(fh, h), rtol=1e-6, atol=1e-8)


def test_eigh_tridiagonal_gradients():
    d, e = RNG.standard_normal(5), RNG.uniform(0.3, 1.0, 4)
    f = lambda d, e: L.eigh_tridiagonal(d, e, eigvals_only=True)[-1] + L.eigh_tridiagonal(d, e)[1][2, 1] ** 2  # noqa
    gd, ge = npfunc.grad(f, argnums=(0, 1))(d, e)
    np.testing.assert_allclose(gd, numerical_jacobian(lambda d: f(d, e), d), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ge, numerical_jacobian(lambda e: f(d, e), e), rtol=1e-6, atol=1e-8)
    # select='v' picks the eigenvalues in range from the current values (under grad)
    top = lambda d: L.eigh_tridiagonal(d, e, eigvals_only=True, select="v", select_range=(0.0, 10.0)).sum()  # noqa
    np.testing.assert_allclose(npfunc.grad(top)(d), numerical_jacobian(top, d), rtol=1e-6, atol=1e-8)


def test_special_matrix_gradients():
    c = RNG.standard_normal(4)
    f = lambda c: (L.toeplitz(c) @ L.circulant(c) @ L.hankel(c)).sum() + np.linalg.det(L.companion(c + 3))  # noqa
    _grad_check(f, c)


# ---- natural programs ---------------------------------------------------------------------------------

def test_lyapunov_sensitivity_of_a_stable_system():
    """Steady-state covariance P of dx = A x dt + dW: A P + P A^T + Q = 0; the
    sensitivity of trace(P) to the damping of the system."""
    def trace_cov(damping):
        a = np.array([[0.0, 1.0], [-2.0, 0.0]]) - damping * np.eye(2)
        return np.trace(L.solve_continuous_lyapunov(a, -np.eye(2)))

    g = npfunc.grad(trace_cov)(0.5)
    np.testing.assert_allclose(g, numerical_jacobian(trace_cov, np.float64(0.5)), rtol=1e-7)
    # per-damping gradients in one vectorised call
    dampings = np.array([0.3, 0.5, 1.0])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(trace_cov))(dampings),
                               [numerical_jacobian(trace_cov, d) for d in dampings], rtol=1e-6)


def test_discrete_gramian_and_its_hessian():
    b = np.array([[1.0], [0.5]])

    def energy(theta):
        a = np.array([[0.5, np.sin(theta)], [0.0, 0.3 + 0.2 * np.cos(theta)]])
        return L.solve_discrete_lyapunov(a, b @ b.T).trace()

    h = npfunc.hessian(energy)(np.float64(0.3))
    fd = numerical_jacobian(npfunc.grad(energy), np.float64(0.3))
    np.testing.assert_allclose(h, fd, rtol=1e-6)


def test_matrix_log_loss_under_vmap_and_nested_transforms():
    mats = np.stack([_spd(3) for _ in range(4)])
    loss = lambda m: (L.logm(m) ** 2).sum()  # noqa: E731
    per = npfunc.vmap(npfunc.grad(loss))(mats)
    for k in range(4):
        np.testing.assert_allclose(per[k], numerical_jacobian(loss, mats[k]), rtol=1e-6, atol=1e-8)
    hvp = npfunc.jvp(npfunc.grad(loss), (mats[0],), (np.eye(3),))[1]
    fd = (npfunc.grad(loss)(mats[0] + 1e-6 * np.eye(3)) - npfunc.grad(loss)(mats[0] - 1e-6 * np.eye(3))) / 2e-6
    np.testing.assert_allclose(hvp, fd, rtol=1e-5, atol=1e-7)


def test_lu_solve_batched_over_matrices_and_right_hand_sides():
    mats = np.stack([_mat(3, 3.0) for _ in range(3)])
    rhs = RNG.standard_normal((3, 3))
    out = npfunc.vmap(lambda a, b: L.lu_solve(L.lu_factor(a), b))(mats, rhs)
    np.testing.assert_allclose(out, [np.linalg.solve(a, b) for a, b in zip(mats, rhs)], rtol=1e-10)


# ---- conventions ----------------------------------------------------------------------------------------

def test_complex_schur_derivatives_of_phase_invariant_quantities():
    a = _mat(3)
    eig = lambda a: np.sort(np.abs(np.diagonal(L.schur(a, output="complex")[0])))  # noqa: E731
    np.testing.assert_allclose(npfunc.jacrev(eig)(a), numerical_jacobian(eig, a), rtol=1e-6, atol=1e-8)


def test_real_schur_with_complex_eigenvalues_raises_on_differentiation():
    rot = np.array([[0.0, -1.0, 0.3], [1.0, 0.0, 0.2], [0.0, 0.0, 2.0]])
    _close(L.schur(rot), sl.schur(rot))  # values are fine
    with pytest.raises(UnsupportedOperationError, match="output='complex'"):
        npfunc.grad(lambda a: L.schur(a)[0].sum())(rot)


def test_lu_derivative_holds_pivots_fixed():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    p, l_, u = L.lu(a)
    t = RNG.standard_normal((2, 2))
    _, (dp, dl, du) = npfunc.jvp(L.lu, (a,), (t,))
    assert not np.any(dp)  # the permutation is piecewise constant
    np.testing.assert_allclose(p @ (dl @ u + l_ @ du), t, atol=1e-12)  # d(P L U) = dA


# ---- errors ---------------------------------------------------------------------------------------

def test_errors():
    with pytest.raises(np.linalg.LinAlgError):
        L.sqrtm(np.ones(3))
    with pytest.raises(ValueError, match="trans"):
        L.lu_solve(sl.lu_factor(_mat(2, 2.0)), np.ones(2), trans=5)
    with pytest.raises(ValueError, match="l\\+u\\+1"):
        L.solve_banded((1, 1), np.ones((2, 4)), np.ones(4))
    with pytest.raises(ValueError, match="must not be zero"):
        L.companion(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="must not be zero"):
        npfunc.vmap(L.companion)(np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="schur: argument"):
        L.schur(_mat(2), output="bad")
    with pytest.raises(ValueError, match="side"):
        L.polar(_mat(2), side="up")
    with pytest.raises(ValueError, match="q must be"):
        L.solve_sylvester(_mat(2), _mat(3), np.ones((3, 3)))
    with pytest.raises(np.linalg.LinAlgError):  # repeated eigenvalues: Schur vectors are not unique
        npfunc.grad(lambda a: L.schur(a)[1].sum())(np.eye(3))
    from npfunc.errors import DataDependentShapeError
    with pytest.raises(DataDependentShapeError, match="select='i'"):
        npfunc.vmap(lambda d: L.eigh_tridiagonal(d, np.ones(2), select="v", select_range=(0, 1))[0])(np.ones((2, 3)))


def test_funm_of_a_real_matrix_under_jit_names_the_fix():
    from npfunc.errors import ConcretizationError

    a = _mat(3)
    with pytest.raises(ConcretizationError, match="astype\\(complex\\)"):
        npfunc.jit(lambda a: L.funm(a, np.exp))(a)
    out = npfunc.jit(lambda a: L.funm(a.astype(complex), np.exp))(a)
    _close(out, sl.funm(a, np.exp), 1e-9)


def test_unmodified_scipy_calls_reach_the_twins():
    a = _mat(3, 3.0)
    f = lambda a: sl.lu_factor(a)[0].sum() + np.trace(sl.sqrtm(a @ a.T)) + sl.solve_sylvester(a, a.T, a).sum()  # noqa
    g = lambda a: L.lu_factor(a)[0].sum() + np.trace(L.sqrtm(a @ a.T)) + L.solve_sylvester(a, a.T, a).sum()  # noqa
    np.testing.assert_allclose(npfunc.grad(f)(a), npfunc.grad(g)(a), rtol=1e-12)
    cs = _mat(2)
    np.testing.assert_allclose(npfunc.vmap(lambda c: sl.toeplitz(c))(cs), [sl.toeplitz(c) for c in cs])
