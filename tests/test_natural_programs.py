"""Natural programs from several fields, written as a scientist writes them
(plain ``import numpy as np`` and SciPy, in-place updates through views,
buffers, solvers), compared under every transform with the plain program:
values with NumPy's, derivatives with central differences."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
import scipy.stats

import npfunc
from npfunc.errors import NpfuncError
from npfunc.testing import numerical_jacobian as _differences  # central, absolute steps


def heat(k):
    """Explicit heat equation: the interior updated in place through a view."""
    u = np.sin(np.linspace(0, np.pi, 12)) * k[0]
    for _ in range(20):
        interior = u[1:-1]
        lap = u[2:] - 2 * u[1:-1] + u[:-2]
        interior += k[1] * lap
    return np.sum(u ** 2)


_XG = np.linspace(0, 1, 8)[:, None]
_YG = np.sin(6 * _XG[:, 0])


def gp_log_likelihood(theta):
    """Gaussian-process log marginal likelihood (cho_factor / cho_solve)."""
    ell, sf, sn = np.exp(theta)
    K = sf ** 2 * np.exp(-0.5 * (_XG - _XG.T) ** 2 / ell ** 2) + sn ** 2 * np.eye(len(_XG))
    c, low = scipy.linalg.cho_factor(K)
    alpha = scipy.linalg.cho_solve((c, low), _YG)
    return -0.5 * _YG @ alpha - np.sum(np.log(np.diag(c))) - 0.5 * len(_YG) * np.log(2 * np.pi)


def lotka_volterra(p):
    """RK4 with the state built by np.array([...]) and a trajectory buffer."""
    def rhs(y):
        return np.array([p[0] * y[0] - p[1] * y[0] * y[1], -p[2] * y[1] + p[3] * y[0] * y[1]])

    y, h = np.array([1.0, 0.5]), 0.05
    traj = np.zeros((30, 2), like=p)  # traced when p is (the fix a plain np.zeros's refusal named; a plain
                                      # np.zeros takes traced writes now: test_a_plain_buffer_matches_the_like_fix)
    for i in range(30):
        k1 = rhs(y)
        k2 = rhs(y + h / 2 * k1)
        k3 = rhs(y + h / 2 * k2)
        k4 = rhs(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        traj[i] = y
    return traj[:, 0].mean() + traj[-1, 1]


_rng = np.random.default_rng(0)
_XR = _rng.standard_normal((20, 3))
_YR = _XR @ np.array([1.0, -2.0, 0.5]) + 0.3 * _rng.standard_t(3, 20)


def student_t_regression(w):
    """Robust regression: scipy.stats.t.logpdf of the residuals, as written."""
    return -np.sum(scipy.stats.t.logpdf(_YR - _XR @ w, df=3.0, scale=0.5))


def upwind_advection(a):
    """Finite volumes: np.pad, np.where upwinding, np.diff, np.concatenate."""
    x = np.linspace(-1, 1, 16)
    q = np.exp(-x ** 2 / a[0] ** 2)
    for _ in range(10):
        qp = np.pad(q, 1, mode="edge")
        flux = np.where(a[1] > 0, a[1] * qp[:-1], a[1] * qp[1:])
        q = q - 0.1 * np.diff(flux)
    return np.sum(q * np.concatenate([x[:8], -x[8:]]))


_RET = np.random.default_rng(2).standard_normal((50, 4)) * 0.02


def portfolio(v):
    """Softmax weights, np.cov, a quantile and the mean of the worst returns."""
    w = np.exp(v) / np.sum(np.exp(v))
    r = _RET @ w
    return w @ np.cov(_RET, rowvar=False) @ w - 0.1 * np.quantile(r, 0.1) - 0.05 * np.sort(r)[:5].mean()


def spectrum(a):
    """Power spectrum with np.fft.rfft and np.abs, read off with np.interp."""
    t = np.linspace(0, 1, 64, endpoint=False)
    s = np.sin(2 * np.pi * a[0] * t) + a[1] * np.cos(2 * np.pi * 5 * t)
    P = np.abs(np.fft.rfft(s)) ** 2
    return np.log(P[1:10] + 1).sum() + np.interp(a[0] * 3, np.arange(33.0), P)


def pendulum(p):
    """A damped pendulum integrated with scipy.integrate.solve_ivp."""
    sol = scipy.integrate.solve_ivp(lambda t, y: np.array([y[1], -p[0] * np.sin(y[0]) - p[1] * y[1]]),
                                    (0, 3), np.array([1.0, 0.0]), t_eval=[3.0], rtol=1e-10, atol=1e-10)
    return sol.y[0, -1]


def centred_cubes(a):
    """Columns centred in place through views of a copy."""
    A = a.reshape(4, 3).copy()
    for j in range(3):
        col = A[:, j]
        col -= col.mean()
    return np.sum(A ** 3)


def sir_epidemic(p):
    """An SIR model with scipy.integrate.odeint, its right-hand side returning a list."""
    def rhs(y, t, beta, gamma):
        S, I, R = y
        return [-beta * S * I, beta * S * I - gamma * I, gamma * I]

    sol = scipy.integrate.odeint(rhs, [0.99, 0.01, 0.0], np.linspace(0, 10, 11), args=(p[0], p[1]),
                                 rtol=1e-10, atol=1e-12)
    return sol[:, 1].sum()


def equilibrium(p):
    """A steady state with scipy.optimize.root: residuals and x0 given as lists."""
    sol = scipy.optimize.root(lambda x: [x[0] ** 2 - p[0], x[1] - p[1] * x[0]], [1.0, 1.0], tol=1e-12)
    return sol.x[0] + 2 * sol.x[1]


def drawdown(r):
    """Finance: the maximum drawdown of compounded returns (a running maximum)."""
    wealth = np.cumprod(1 + r)
    peak = np.maximum.accumulate(wealth)
    return np.max(1 - wealth / peak) + np.sum(np.log1p(r))


_XS = np.random.default_rng(3).standard_normal((10, 4))
_YS = np.arange(10) % 3


def cross_entropy(flat):
    """Softmax regression loss with fancy indexing and scipy.special.logsumexp."""
    z = _XS @ flat.reshape(4, 3)
    return -np.mean(z[np.arange(10), _YS] - scipy.special.logsumexp(z, axis=1))


PROGRAMS = {
    "heat": (heat, np.array([1.0, 0.2])),
    "gp": (gp_log_likelihood, np.array([-1.0, 0.1, -2.0])),
    "lotka-volterra": (lotka_volterra, np.array([1.0, 0.5, 0.8, 0.3])),
    "student-t": (student_t_regression, np.array([0.9, -1.8, 0.4])),
    "advection": (upwind_advection, np.array([0.5, 0.7])),
    "portfolio": (portfolio, np.array([0.1, -0.2, 0.3, 0.0])),
    "spectrum": (spectrum, np.array([3.3, 0.5])),
    "pendulum": (pendulum, np.array([9.81, 0.3])),
    "centring": (centred_cubes, np.linspace(0.1, 1.2, 12)),
    "cross-entropy": (cross_entropy, np.linspace(-0.5, 0.5, 12)),
    "sir": (sir_epidemic, np.array([0.9, 0.3])),
    "equilibrium": (equilibrium, np.array([2.0, 0.5])),
    "drawdown": (drawdown, np.array([0.02, -0.05, 0.03, -0.04, 0.01, 0.06])),
}


@functools.lru_cache(maxsize=None)
def _expected(name):
    f, x = PROGRAMS[name]
    return f(x.copy()), _differences(f, x)


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("transform", ["grad", "jit(grad)", "jacrev", "jacfwd"])
def test_gradients_match_differences(name, transform):
    f, x = PROGRAMS[name]
    value, g = _expected(name)
    make = {"grad": npfunc.grad, "jit(grad)": lambda f: npfunc.jit(npfunc.grad(f)),
            "jacrev": npfunc.jacrev, "jacfwd": npfunc.jacfwd}[transform]
    np.testing.assert_allclose(make(f)(x.copy()), g, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(x, PROGRAMS[name][1])  # the input is left alone


@pytest.mark.parametrize("name", PROGRAMS)
def test_values_under_vmap_and_jit(name):
    f, x = PROGRAMS[name]
    xs = np.stack([x, 1.01 * x])
    np.testing.assert_allclose(npfunc.vmap(f)(xs), [f(v.copy()) for v in xs], rtol=1e-9, atol=1e-12)
    jf = npfunc.jit(f)
    for v in xs:  # the recording, then a replay on other values
        np.testing.assert_allclose(jf(v.copy()), f(v.copy()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["heat", "gp", "advection", "centring", "cross-entropy"])
def test_hessians_match_differences_of_the_gradient(name):
    f, x = PROGRAMS[name]
    H = npfunc.hessian(f)(x.copy())
    H_fd = np.stack([_differences(lambda v: npfunc.grad(f)(v)[i], x, 1e-5) for i in range(x.size)])
    np.testing.assert_allclose(H, H_fd, rtol=1e-4, atol=1e-6)


def test_a_plain_buffer_matches_the_like_fix():
    """A traced row written into a plain np.zeros buffer (once refused under grad, naming
    like=x): grad_and_value gives NumPy's value, and the gradient of the like= fix and
    of the differences."""
    def f(p):
        traj = np.zeros((3, 2))
        traj[0] = p
        return traj.sum()

    def f_like(p):
        traj = np.zeros((3, 2), like=p)
        traj[0] = p
        return traj.sum()

    for p in (np.ones(2), np.array([0.3, -2.0])):
        g, value = npfunc.grad_and_value(f)(p)
        assert type(value) is type(f(p)) and value == f(p)
        np.testing.assert_allclose(g, npfunc.grad(f_like)(p), rtol=1e-15)
        np.testing.assert_allclose(g, _differences(f, p), rtol=1e-5, atol=1e-7)


def test_solve_ivp_on_its_own_step_grid_refuses_under_vmap_and_jit():
    def f(p):
        sol = scipy.integrate.solve_ivp(lambda t, y: -p[0] * y, (0, 1), np.array([1.0]))
        return sol.y[0, -1]

    p = np.array([0.7])
    # (SciPy's default rtol=1e-3: the derivative of the solution, -exp(-p), to that accuracy)
    np.testing.assert_allclose(npfunc.grad(f)(p), [-np.exp(-0.7)], rtol=1e-3)
    for transform in (npfunc.jit, npfunc.vmap):
        with pytest.raises(NpfuncError, match="t_eval"):
            transform(f)(p if transform is npfunc.jit else p[None])
