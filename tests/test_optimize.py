"""npfunc.scipy.optimize: SciPy's solves, derivatives of their solutions by the
implicit function theorem, checked against closed forms and differences."""
import numpy as np
import pytest
import scipy.optimize as so

import npfunc
from npfunc.scipy import optimize as opt
from npfunc.scipy.optimize import _implicit

EPS = 1e-4  # the solves stop at ~1e-10: smaller steps would measure their noise


def fd(f, x, eps=EPS):
    """Central differences of f (any output shape) in every entry of x (last axis: inputs)."""
    x = np.asarray(x, dtype=float)
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + eps * e)) - np.asarray(f(x - eps * e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


# ---- plain calls are SciPy's ----------------------------------------------------------------

def cubic(x, a):
    return x ** 3 + a * x - 2.0


def test_plain_calls_are_scipys():
    assert opt.brentq(cubic, 0.0, 3.0, args=(1.5,)) == so.brentq(cubic, 0.0, 3.0, args=(1.5,))
    assert opt.newton(cubic, 1.0, args=(1.5,)) == so.newton(cubic, 1.0, args=(1.5,))
    assert opt.root_scalar(cubic, args=(1.5,), bracket=(0, 3)).root == so.root_scalar(cubic, args=(1.5,),
                                                                                       bracket=(0, 3)).root
    np.testing.assert_array_equal(opt.root(lambda x: x ** 3 - [1.0, 8.0], [2.0, 3.0]).x,
                                  so.root(lambda x: x ** 3 - [1.0, 8.0], [2.0, 3.0]).x)
    np.testing.assert_array_equal(opt.fixed_point(np.cos, 0.5), so.fixed_point(np.cos, 0.5))
    t = np.linspace(0, 1, 8)
    y = np.exp(-t)
    np.testing.assert_array_equal(opt.curve_fit(lambda t, a, k: a * np.exp(-k * t), t, y)[0],
                                  so.curve_fit(lambda t, a, k: a * np.exp(-k * t), t, y)[0])


def rosen(x, a):
    return ((a - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def test_minimize_fills_derivatives_from_npfunc():
    res, ref = opt.minimize(rosen, np.zeros(3), args=(1.0,)), so.minimize(rosen, np.zeros(3), args=(1.0,))
    np.testing.assert_allclose(res.x, np.ones(3), atol=1e-6)  # SciPy alone: 1e-5 off (differences)
    assert res.nfev < ref.nfev  # exact gradients, not finite differences
    for method in ("Newton-CG", "trust-exact", "trust-krylov", "dogleg"):
        res = opt.minimize(lambda x: ((x - 1.0) ** 2).sum() + 0.1 * (x ** 4).sum(), np.zeros(2), method=method)
        assert res.success, method
    assert opt.minimize(rosen, np.zeros(3), args=(1.0,), method="Nelder-Mead").success


# ---- derivatives against closed forms --------------------------------------------------------

def brentq_root(a):
    return opt.brentq(cubic, 0.0, 3.0, args=(a,))


def test_scalar_root_first_and_second_order():
    a = np.float64(1.5)
    x = brentq_root(a)
    dxda = -x / (3 * x ** 2 + a)
    assert npfunc.grad(brentq_root)(a) == pytest.approx(dxda, rel=1e-12)
    assert npfunc.jacfwd(brentq_root)(a) == pytest.approx(dxda, rel=1e-12)
    second = fd(npfunc.grad(brentq_root), a, 1e-5)
    assert npfunc.grad(npfunc.grad(brentq_root))(a) == pytest.approx(second, rel=1e-6)
    assert npfunc.hessian(brentq_root)(a) == pytest.approx(second, rel=1e-6)


@pytest.mark.parametrize("solve", [
    lambda a: opt.newton(cubic, 1.0, args=(a,), tol=1e-14),
    lambda a: opt.newton(cubic, 1.0, fprime=lambda x, a: 3 * x ** 2 + a, args=(a,), tol=1e-14),
    lambda a: opt.root_scalar(cubic, args=(a,), bracket=(0, 3), xtol=1e-14).root,
    lambda a: opt.root_scalar(cubic, args=(a,), x0=1.0, fprime=lambda x, a: 3 * x ** 2 + a).root,
    lambda a: opt.root_scalar(cubic, args=(a,), x0=1.0, x1=1.5, method="secant").root,
    lambda a: opt.fixed_point(lambda x, a: x - 0.2 * cubic(x, a), 1.0, args=(a,), xtol=1e-14),
    lambda a: opt.root(cubic, np.array([1.0]), args=(a,), tol=1e-14).x[0],
], ids=["newton-secant", "newton", "root_scalar-bracket", "root_scalar-newton", "root_scalar-secant",
        "fixed_point", "root"])
def test_every_root_finder_differentiates(solve):
    a = np.float64(1.5)
    x = brentq_root(a)
    assert solve(a) == pytest.approx(x, rel=1e-10)
    assert npfunc.grad(solve)(a) == pytest.approx(-x / (3 * x ** 2 + a), rel=1e-8)
    np.testing.assert_allclose(npfunc.vmap(solve)(np.array([1.0, 1.5, 2.0])),
                               [brentq_root(np.float64(v)) for v in (1.0, 1.5, 2.0)], rtol=1e-8)


A = np.array([[3.0, 1.0], [1.0, 2.0]])


def system(x, b):
    return A @ x + 0.1 * x ** 3 - b


def root_of(b):
    return opt.root(system, np.zeros(2), args=(b,), tol=1e-14).x


def test_root_of_a_system_in_every_mode():
    b = np.array([1.0, 2.0])
    x = root_of(b)
    expected = np.linalg.inv(A + np.diag(0.3 * x ** 2))
    np.testing.assert_allclose(npfunc.jacrev(root_of)(b), expected, rtol=1e-10)
    np.testing.assert_allclose(npfunc.jacfwd(root_of)(b), expected, rtol=1e-10)
    out, lin = npfunc.linearize(root_of, b)
    np.testing.assert_allclose(lin(np.array([1.0, 0.0])), expected[:, 0], rtol=1e-10)
    np.testing.assert_allclose(npfunc.hessian(lambda b: root_of(b).sum())(b),
                               fd(npfunc.grad(lambda b: root_of(b).sum()), b, 1e-5), rtol=1e-6)
    np.testing.assert_allclose(npfunc.jit(npfunc.jacrev(root_of))(b), expected, rtol=1e-10)


def test_closed_over_traced_values_get_their_derivative():
    b = np.array([1.0, 2.0])

    def closed(b):  # b is not in args: the residual closes over it
        return opt.root(lambda x: A @ x + 0.1 * x ** 3 - b, np.zeros(2), tol=1e-14).x

    np.testing.assert_allclose(npfunc.jacrev(closed)(b), npfunc.jacrev(root_of)(b), rtol=1e-12)
    np.testing.assert_allclose(npfunc.jacfwd(closed)(b), npfunc.jacrev(root_of)(b), rtol=1e-12)


def test_vmap_solves_the_batch_in_one_vectorised_solve_and_composes_with_grad():
    bs = np.array([[1.0, 2.0], [2.0, -1.0], [0.5, 0.5]])
    np.testing.assert_allclose(npfunc.vmap(root_of)(bs), np.stack([root_of(b) for b in bs]), atol=1e-10)
    per = npfunc.vmap(npfunc.jacrev(root_of))(bs)
    np.testing.assert_allclose(per, np.stack([npfunc.jacrev(root_of)(b) for b in bs]), atol=1e-9)
    total = npfunc.grad(lambda bs: npfunc.vmap(root_of)(bs).sum())(bs)
    np.testing.assert_allclose(total, per.sum(axis=1), atol=1e-9)
    nested = npfunc.vmap(npfunc.vmap(root_of))(np.stack([bs, 2 * bs]))
    np.testing.assert_allclose(nested[1], npfunc.vmap(root_of)(2 * bs), atol=1e-9)


def test_matrix_free_derivative_systems(monkeypatch):
    monkeypatch.setattr(_implicit, "DENSE_MAX", 1)
    b = np.array([1.0, 2.0])
    x = root_of(b)
    expected = np.linalg.inv(A + np.diag(0.3 * x ** 2))
    np.testing.assert_allclose(npfunc.jacrev(root_of)(b), expected, rtol=1e-9)
    np.testing.assert_allclose(npfunc.jacfwd(root_of)(b), expected, rtol=1e-9)


def test_linear_solve_primitive():
    def matvec(v, m):
        return m @ v

    m = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.5, 0.0, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    f = lambda b, m: opt.linear_solve(matvec, b, m)  # noqa: E731
    ref = lambda b, m: np.linalg.solve(m, b)  # noqa: E731
    np.testing.assert_allclose(f(b, m), ref(b, m))
    for a, r in zip(npfunc.jacrev(f, argnums=(0, 1))(b, m), npfunc.jacrev(ref, argnums=(0, 1))(b, m)):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(npfunc.hessian(lambda m: f(b, m).sum())(m),
                               npfunc.hessian(lambda m: ref(b, m).sum())(m), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npfunc.vmap(f, in_dims=(0, None))(np.stack([b, 2 * b]), m),
                               np.stack([ref(b, m), ref(2 * b, m)]), rtol=1e-12)


# ---- minimisation -----------------------------------------------------------------------------

def argmin(a, method=None):
    return opt.minimize(rosen, np.zeros(3), args=(a,), method=method,
                        options={"xtol": 1e-12} if method == "Newton-CG" else None).x


@pytest.mark.parametrize("method", [None, "Newton-CG", "L-BFGS-B", "trust-exact"])
def test_minimize_derivative(method):
    a = np.float64(1.2)
    x = argmin(a, method)
    # the theorem by hand: -H^-1 d(grad f)/da at the solution
    expected = -np.linalg.solve(npfunc.hessian(rosen)(x, a), npfunc.jacfwd(npfunc.grad(rosen), argnums=1)(x, a))
    np.testing.assert_allclose(npfunc.jacrev(lambda a: argmin(a, method))(a), expected, rtol=1e-9)
    if method is None:
        np.testing.assert_allclose(npfunc.jacfwd(lambda a: argmin(a, method))(a), expected, rtol=1e-9)
        np.testing.assert_allclose(expected, fd(lambda a: argmin(a, "Newton-CG"), a), rtol=1e-4)


def test_minimize_result_fields_and_vmap():
    res = opt.minimize(rosen, np.zeros(3), args=(np.float64(1.0),))
    a = np.float64(1.2)
    g_fun = npfunc.grad(lambda a: opt.minimize(rosen, np.zeros(3), args=(a,)).fun)(a)
    assert g_fun == pytest.approx(npfunc.grad(rosen, argnums=1)(argmin(a), a), rel=1e-6)  # envelope theorem
    assert isinstance(res, so.OptimizeResult) and res.success
    batch = npfunc.vmap(argmin)(np.array([1.0, 1.2]))
    np.testing.assert_allclose(batch, np.stack([argmin(np.float64(1.0)), argmin(np.float64(1.2))]), atol=1e-5)


def test_minimize_with_active_bounds():
    def argmin_b(a):
        return opt.minimize(lambda x, a: ((x - a) ** 2).sum(), np.zeros(2), args=(a,), bounds=[(0, 1), (0, 5)]).x

    a = np.array([2.0, 3.0])
    np.testing.assert_allclose(argmin_b(a), [1.0, 3.0])
    np.testing.assert_allclose(npfunc.jacrev(argmin_b)(a), [[0.0, 0.0], [0.0, 1.0]], atol=1e-12)


def test_minimize_scalar():
    def xmin(a):
        return opt.minimize_scalar(lambda x, a: (x - a) ** 2 + np.sin(x), args=(a,), options={"xtol": 1e-12}).x

    a = np.float64(1.0)
    x = xmin(a)
    assert npfunc.grad(xmin)(a) == pytest.approx(2.0 / (2.0 - np.sin(x)), rel=1e-8)
    np.testing.assert_allclose(npfunc.vmap(xmin)(np.array([1.0, 2.0])), [xmin(1.0), xmin(2.0)], atol=1e-6)
    bounded = lambda a: opt.minimize_scalar(lambda x: (x - a) ** 2, bounds=(0.0, 1.0), method="bounded").x  # noqa
    assert npfunc.grad(bounded)(np.float64(0.5)) == pytest.approx(1.0, rel=1e-8)
    with pytest.raises(opt.NonConvergedError, match="bound"):
        npfunc.grad(bounded)(np.float64(3.0))


# ---- least squares and curve fitting -----------------------------------------------------

T = np.linspace(0.0, 1.0, 12)
Y = 2.0 * np.exp(-1.3 * T) + 0.02 * np.sin(9 * T)
TIGHT = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15)


def decay(p, t, y):
    return p[0] * np.exp(-p[1] * t) - y


def test_linear_least_squares_is_exact():
    X = np.stack([np.ones_like(T), T, T ** 2], axis=1)
    fit = lambda y: opt.least_squares(lambda p, y: X @ p - y, np.zeros(3), args=(y,), **TIGHT).x  # noqa: E731
    np.testing.assert_allclose(npfunc.jacrev(fit)(Y), np.linalg.pinv(X), atol=1e-10)


RHO = {"linear": lambda z: z, "soft_l1": lambda z: 2 * (np.sqrt(1 + z) - 1), "cauchy": np.log1p,
       "huber": lambda z: np.where(z <= 1, z, 2 * np.sqrt(np.where(z <= 1, 1.0, z)) - 1)}


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "huber", "cauchy"])
def test_least_squares_derivative_in_the_data(loss):
    fit = lambda y: opt.least_squares(decay, np.ones(2), args=(T, y), loss=loss, f_scale=0.1, **TIGHT).x  # noqa
    p = fit(Y)
    cost = lambda p, y: 0.5 * 0.01 * RHO[loss]((decay(p, T, y) / 0.1) ** 2).sum()  # noqa: E731
    by_hand = -np.linalg.solve(npfunc.hessian(cost)(p, Y), npfunc.jacfwd(npfunc.grad(cost), argnums=1)(p, Y))
    np.testing.assert_allclose(npfunc.jacrev(fit)(Y), by_hand, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(npfunc.jacfwd(fit)(Y), by_hand, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(by_hand, fd(fit, Y), atol=2e-5)


def test_least_squares_vmap_and_result_fields():
    fit = lambda y: opt.least_squares(decay, np.ones(2), args=(T, y), **TIGHT)  # noqa: E731
    res = fit(Y)
    assert isinstance(res, so.OptimizeResult) and res.jac.shape == (12, 2)
    ys = np.stack([Y, 1.1 * Y])
    np.testing.assert_allclose(npfunc.vmap(lambda y: fit(y).x)(ys), np.stack([fit(y).x for y in ys]), rtol=1e-7)
    np.testing.assert_allclose(npfunc.vmap(npfunc.jacrev(lambda y: fit(y).x))(ys),
                               np.stack([npfunc.jacrev(lambda y: fit(y).x)(y) for y in ys]), rtol=1e-6, atol=1e-10)


def model(t, a, k):
    return a * np.exp(-k * t)


def test_curve_fit_derivatives_in_xdata_ydata_sigma_and_pcov():
    sigma = np.linspace(0.5, 1.5, 12)
    popt = lambda t, y, s: opt.curve_fit(model, t, y, p0=[1.0, 1.0], sigma=s, **TIGHT)[0]  # noqa: E731
    for argnum, x in enumerate((T, Y, sigma)):
        ref = fd(lambda v: so.curve_fit(model, *[v if i == argnum else a for i, a in enumerate((T, Y))],
                                        p0=[1.0, 1.0], sigma=v if argnum == 2 else sigma, **TIGHT)[0], x)
        np.testing.assert_allclose(npfunc.jacrev(popt, argnums=argnum)(T, Y, sigma), ref, rtol=1e-4, atol=2e-5)
    out, pcov = opt.curve_fit(model, T, Y, p0=[1.0, 1.0])
    np.testing.assert_array_equal(pcov, so.curve_fit(model, T, Y, p0=[1.0, 1.0])[1])
    d_pcov = npfunc.jacrev(lambda y: opt.curve_fit(model, T, y, p0=[1.0, 1.0], **TIGHT)[1])(Y)
    ref = fd(lambda y: so.curve_fit(model, T, y, p0=[1.0, 1.0], jac=lambda t, a, k: np.stack(
        [np.exp(-k * t), -a * t * np.exp(-k * t)], 1), **TIGHT)[1], Y)
    np.testing.assert_allclose(d_pcov, ref, rtol=1e-4, atol=1e-10)
    batch = npfunc.vmap(lambda y: opt.curve_fit(model, T, y, p0=[1.0, 1.0])[0])(np.stack([Y, 2 * Y]))
    np.testing.assert_allclose(batch[1], so.curve_fit(model, T, 2 * Y, p0=[1.0, 1.0])[0], rtol=1e-6)


# ---- errors ---------------------------------------------------------------------------------

def test_non_converged_solution_raises_when_differentiated():
    short = lambda a: opt.minimize(rosen, np.zeros(3), args=(a,), options={"maxiter": 2}).x  # noqa: E731
    assert not opt.minimize(rosen, np.zeros(3), args=(1.0,), options={"maxiter": 2}).success
    with pytest.raises(opt.NonConvergedError, match="did not converge"):
        npfunc.grad(lambda a: short(a).sum())(np.float64(1.0))


def test_unsupported_settings_raise():
    cons = ({"type": "eq", "fun": lambda x: x.sum() - 1.0},)
    with pytest.raises(opt.UnsupportedSolverError, match="constraints"):
        npfunc.grad(lambda a: opt.minimize(rosen, np.zeros(3), args=(a,), constraints=cons).x.sum())(1.0)
    with pytest.raises(opt.UnsupportedSolverError, match="vmap"):
        npfunc.vmap(lambda a: opt.minimize(rosen, np.zeros(3), args=(a,), method="Nelder-Mead").x)(np.ones(2))


def test_user_derivatives_drive_scipy_and_the_theorem_gives_the_gradient():
    b = np.array([1.0, 2.0])
    with_jac = lambda b: opt.root(system, np.zeros(2), args=(b,), tol=1e-14,  # noqa: E731
                                  jac=lambda x, b: A + np.diag(0.3 * x ** 2)).x
    np.testing.assert_allclose(npfunc.jacrev(with_jac)(b), npfunc.jacrev(root_of)(b), rtol=1e-10)
    fit = lambda y: opt.least_squares(decay, np.ones(2), args=(T, y), jac=lambda p, t, y: np.stack(  # noqa: E731
        [np.exp(-p[1] * t), -p[0] * t * np.exp(-p[1] * t)], axis=1), **TIGHT).x
    np.testing.assert_allclose(npfunc.jacrev(fit)(Y), npfunc.jacrev(
        lambda y: opt.least_squares(decay, np.ones(2), args=(T, y), **TIGHT).x)(Y), rtol=1e-6, atol=1e-9)
    grad_rosen = npfunc.grad(rosen)
    res = opt.minimize(rosen, np.zeros(3), args=(np.float64(1.2),), jac=grad_rosen, method="BFGS")
    np.testing.assert_allclose(npfunc.jacrev(lambda a: opt.minimize(rosen, np.zeros(3), args=(a,), jac=grad_rosen).x)(
        np.float64(1.2)), npfunc.jacrev(argmin)(np.float64(1.2)), rtol=1e-6)
    assert res.success
