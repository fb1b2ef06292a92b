"""Natural programs from control, estimation and robotics, written first as plain
NumPy/SciPy the way a practitioner writes them (Kalman filters and RTS smoothers
with preallocated histories and in-place symmetrisation, EKF/UKF, LQR by Riccati
equations, shooting MPC over RK4 cart-pole rollouts, PID loops with saturation
and anti-windup branches, ARX identification by least squares, discretisation
with expm / cont2discrete, IIR filters, ODE rollouts), then run under npfunc's
transforms and compared with the plain program: values (type, dtype, shape),
derivatives (five-point differences), vmap against a Python loop, jit called
twice, and in-place updates of arguments.  Refusals are checked for the
transform and the fix they name, and the fix is run."""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.signal
import scipy.special

import npfunc
from natural_checks import assert_deriv, assert_same, fd

rng = np.random.default_rng(7)
ZS = np.array([0.1, 0.25, 0.33, 0.52, 0.61, 0.77, 0.9, 1.05])
DT = 0.1


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_array_program(f, x, xs, second=True):
    """jit (twice), vmap, jacrev, jacfwd, vjp and compositions of an array-valued program."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref)
    assert_same(jf(xs[0]), f(xs[0]))
    assert_same(npfunc.vmap(f)(xs), loop(f, xs))
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    assert_deriv(npfunc.jit(npfunc.jacrev(f))(x), J)
    out, pull = npfunc.vjp(f, x)
    assert_same(out, ref)
    ct = np.linspace(-1.0, 1.0, np.size(ref)).reshape(np.shape(ref))
    (g,) = pull(ct)
    assert_deriv(g, np.tensordot(ct, J, axes=np.ndim(ref)).reshape(np.shape(x)))
    assert_same(npfunc.vmap(npfunc.jacrev(f))(xs), loop(npfunc.jacrev(f), xs), rtol=1e-10, atol=1e-12)
    if second:
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), fd(npfunc.jacrev(f), x), rtol=1e-5, atol=1e-6)


def check_scalar_program(f, x, xs, hess=True, batch=True):
    """jit (twice), grad_and_value, jit(grad), grad(jit), jvp, vmap, vmap(grad), hessian."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref)
    if xs is not None:
        assert_same(jf(xs[0]), f(xs[0]))
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref)
    G = fd(f, x)
    assert_deriv(g, G)
    assert_deriv(npfunc.jit(npfunc.grad(f))(x), G)
    assert_deriv(npfunc.grad(npfunc.jit(f))(x), G)
    out, t = npfunc.jvp(f, (x,), (np.ones_like(x),))
    assert_same(out, ref)
    assert_deriv(t, G.sum())
    if batch:
        assert_same(npfunc.vmap(f)(xs), loop(f, xs))
        assert_same(npfunc.vmap(npfunc.grad(f))(xs), loop(npfunc.grad(f), xs), rtol=1e-10, atol=1e-12)
    if hess:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-5, atol=1e-6)
        assert_deriv(npfunc.jacrev(npfunc.jacrev(f))(x), H, rtol=1e-5, atol=1e-6)


# ---- Kalman filtering ----------------------------------------------------------------------


def cv_model(dt=DT):
    """Constant-velocity model: transition, process noise (white acceleration), position sensor."""
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    H = np.array([[1.0, 0.0]])
    return F, Q, H


def kf_nll(log_qr, zs=ZS):
    """Negative log-likelihood of the innovations of a constant-velocity KF; the
    parameters are log process and log measurement noise (for tuning by gradient)."""
    q, r = np.exp(log_qr[0]), np.exp(log_qr[1])
    F, Q, H = cv_model()
    Q = q * Q
    R = np.array([[r]])
    x = np.zeros(2)
    P = np.eye(2)
    nll = 0.0
    for z in zs:
        x = F @ x
        P = F @ P @ F.T + Q
        y = z - H @ x
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ y
        P = (np.eye(2) - K @ H) @ P
        P = (P + P.T) / 2
        nll += 0.5 * (np.log(2 * np.pi * S[0, 0]) + y[0] ** 2 / S[0, 0])
    return nll


def kf_positions(z_meas, r=0.05, like=False):
    """Filtered positions into a preallocated history; covariance symmetrised in place.
    like=True makes the history with np.zeros(..., like=z_meas), the fix npfunc named before
    a plain np.zeros buffer made inside the function took traced writes."""
    F, Q, H = cv_model()
    Q = 0.01 * Q
    n = z_meas.shape[0]
    xs = np.zeros((n, 2), like=z_meas) if like else np.zeros((n, 2))
    x = np.array([z_meas[0], 0.0])
    P = np.eye(2)
    for k in range(n):
        x = F @ x
        P = F @ P @ F.T + Q
        S = H @ P @ H.T + r
        K = np.linalg.solve(S.T, (P @ H.T).T).T
        x = x + K @ (z_meas[k:k + 1] - H @ x)
        P = P - K @ S @ K.T
        P[:] = 0.5 * (P + P.T)
        xs[k] = x
    return xs[:, 0]


def rts_smoother(z_meas):
    """Forward KF then a Rauch-Tung-Striebel backward pass over preallocated (traced)
    arrays, smoothing the copies in place."""
    F, Q, H = cv_model()
    Q = 0.01 * Q
    R = np.array([[0.05]])
    n = len(z_meas)
    xf, xp = np.empty((n, 2), like=z_meas), np.empty((n, 2), like=z_meas)
    Pf, Pp = np.empty((n, 2, 2), like=z_meas), np.empty((n, 2, 2), like=z_meas)
    x, P = np.zeros(2), np.eye(2) * 10.0
    for k in range(n):
        x = F @ x
        P = F @ P @ F.T + Q
        xp[k], Pp[k] = x, P
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ (z_meas[k] - H @ x)
        P = (np.eye(2) - K @ H) @ P
        xf[k], Pf[k] = x, P
    xs, Ps = xf.copy(), Pf.copy()
    for k in range(n - 2, -1, -1):
        C = Pf[k] @ F.T @ np.linalg.inv(Pp[k + 1])
        xs[k] += C @ (xs[k + 1] - xp[k + 1])
        Ps[k] += C @ (Ps[k + 1] - Pp[k + 1]) @ C.T
    return np.concatenate([xs[:, 0], Ps[:, 0, 0]])


def kf_update_inplace(x, P, z, R):
    """A measurement update that overwrites the state and covariance it is given."""
    H = np.array([[1.0, 0.0, 0.0]])
    y = z - H @ x
    S = H @ P @ H.T + R
    K = P @ H.T / S
    x += (K * y).ravel()
    P -= K @ H @ P
    return y


def test_kf_nll():
    check_scalar_program(kf_nll, np.array([-4.0, -3.0]), rng.normal(-3.0, 0.5, size=(3, 2)))


def test_kf_history_plain_zeros_matches_like_fix():
    """The history xs = np.zeros((n, 2)) (once refused under jacrev and vmap, naming
    np.zeros(shape, like=x)) takes the traced states: the plain program under every
    transform, and the like= fix agrees with it."""
    zs = ZS + rng.normal(0, 0.05, size=(3, 8))
    check_array_program(kf_positions, ZS.copy(), zs, second=False)
    f = lambda z: kf_positions(z, like=True)  # noqa: E731
    assert_same(f(ZS), kf_positions(ZS))
    check_array_program(f, ZS.copy(), zs, second=False)
    assert_deriv(npfunc.jacrev(kf_positions)(ZS), npfunc.jacrev(f)(ZS), rtol=1e-14, atol=0)
    assert_same(npfunc.vmap(kf_positions)(zs), npfunc.vmap(f)(zs), rtol=1e-14)


def test_rts_smoother():
    check_array_program(rts_smoother, ZS.copy(), ZS + rng.normal(0, 0.05, size=(3, 8)), second=False)


def _update_copies(fn, x, P, z, R):
    x, P = x.copy(), P.copy()
    y = fn(x, P, z, R)
    return y, x, P


def test_kf_update_inplace_arguments():
    R = np.array([[0.04]])
    x0 = np.array([0.1, 0.2, -0.3])
    P0 = np.diag([1.0, 2.0, 0.5])
    P0[0, 1] = P0[1, 0] = 0.1
    jf = npfunc.jit(kf_update_inplace)
    for x, P, z in [(x0, P0, 0.5), (x0 + 1.0, 2.0 * P0, 0.7)]:  # the second call replays
        for got, want in zip(_update_copies(jf, x, P, z, R), _update_copies(kf_update_inplace, x, P, z, R)):
            assert_same(got, want)
    xs, Ps, zs = np.stack([x0, x0 + 0.1, x0 - 0.2]), np.stack([P0, 2 * P0, 3 * P0]), np.array([0.5, 0.1, -0.2])
    xv, Pv = xs.copy(), Ps.copy()
    yv = npfunc.vmap(kf_update_inplace, in_dims=(0, 0, 0, None))(xv, Pv, zs, R)
    xl, Pl = xs.copy(), Ps.copy()
    yl = np.stack([kf_update_inplace(xl[i], Pl[i], zs[i], R) for i in range(3)])
    assert_same(yv, yl)
    assert_same(xv, xl)
    assert_same(Pv, Pl)

    def energy(x):  # updates its argument in place, as the plain function does
        kf_update_inplace(x, P0.copy(), 0.3, R)
        return np.sum(x**2)

    xa, xb = x0.copy(), x0.copy()
    g = npfunc.grad(energy)(xa)
    energy(xb)
    assert_same(xa, xb)
    assert_deriv(g, fd(lambda x: energy(x.copy()), x0))


def test_kf_update_into_plain_copy_refused_and_like_fix():
    """`x = x0.copy(); x += K y` with y traced: npfunc refuses the write into a plain
    array and names np.zeros(shape, like=x); np.array(x0, like=z) is that fix."""
    R = np.array([[0.04]])
    x0, P0 = np.array([0.1, 0.2, -0.3]), np.diag([1.0, 2.0, 0.5])

    def loss(z, like):
        x = np.array(x0, like=z) if like else x0.copy()
        P = np.array(P0, like=z) if like else P0.copy()
        y = kf_update_inplace(x, P, z, R)
        return np.sum(x) + np.trace(P) + y[0] ** 2

    z = np.array(0.5)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad.*like=x"):
        npfunc.grad(lambda z: loss(z, False))(z)
    g, v = npfunc.grad_and_value(lambda z: loss(z, True))(z)
    assert_same(v, loss(z, False))
    assert_deriv(g, fd(lambda z: loss(np.asarray(z), False), z))


# ---- EKF / UKF -----------------------------------------------------------------------------


def pendulum_step(x, dt=0.05, g=9.81, L=1.0):
    th, om = x[0], x[1]
    return np.array([th + dt * om, om - dt * g / L * np.sin(th)])


def ekf_trace(x0):
    """EKF on a pendulum with hand-written Jacobians, measuring sin(theta)."""
    P = np.eye(2) * 0.1
    x = x0.copy()
    Q, R, dt, g = np.eye(2) * 1e-3, 0.01, 0.05, 9.81
    for z in [0.1, 0.12, 0.09, 0.05]:
        Fj = np.array([[1.0, dt], [-dt * g * np.cos(x[0]), 1.0]])
        x = pendulum_step(x)
        P = Fj @ P @ Fj.T + Q
        Hj = np.array([np.cos(x[0]), 0.0])
        S = Hj @ P @ Hj + R
        K = P @ Hj / S
        x = x + K * (z - np.sin(x[0]))
        P = P - np.outer(K, Hj @ P)
    return np.trace(P) + x.sum()


def ekf_jacfwd_trace(x0):
    """The same filter with the transition Jacobian by npfunc.jacfwd inside the loop."""
    P = np.eye(2) * 0.1
    x = x0
    for z in [0.1, 0.12, 0.09]:
        Fj = npfunc.jacfwd(pendulum_step)(x)
        x = pendulum_step(x)
        P = Fj @ P @ Fj.T + 1e-3 * np.eye(2)
        K = P[:, 0] / (P[0, 0] + 0.01)
        x = x + K * (z - x[0])
        P = P - np.outer(K, P[0])
    return np.trace(P) + x @ x


def sigma_points(x, P, alpha=0.1, beta=2.0, kappa=0.0, like=True):
    n = x.shape[0]
    lam = alpha**2 * (n + kappa) - n
    L = np.linalg.cholesky((n + lam) * P)
    sig = np.empty((2 * n + 1, n), like=x) if like else np.empty((2 * n + 1, n))
    sig[0] = x
    for i in range(n):
        sig[i + 1] = x + L[:, i]
        sig[n + i + 1] = x - L[:, i]
    wm = np.full(2 * n + 1, 1.0 / (2 * (n + lam)))
    wc = wm.copy()
    wm[0] = lam / (n + lam)
    wc[0] = lam / (n + lam) + (1 - alpha**2 + beta)
    return sig, wm, wc


def ukf_predict(x, like=True):
    """Unscented transform of the pendulum step: predicted mean and covariance diagonal."""
    P = np.array([[0.05, 0.01], [0.01, 0.08]])
    sig, wm, wc = sigma_points(x, P, like=like)
    Y = np.array([pendulum_step(s) for s in sig])
    m = wm @ Y
    d = Y - m
    C = (wc[:, None] * d).T @ d
    return np.concatenate([m, np.diag(C)])


def ukf_wrt_covariance(p):
    """Unscented mean of sin^2 as a function of the covariance entries (Cholesky derivative)."""
    P = np.array([[p[0], p[1]], [p[1], p[2]]])
    sig, wm, _ = sigma_points(np.asarray(np.array([0.3, -0.1]), like=p), P)
    return wm @ np.sin(sig) ** 2


def test_ekf():
    xs = rng.normal(0, 0.2, size=(3, 2))
    check_scalar_program(ekf_trace, np.array([0.2, 0.1]), xs)
    check_scalar_program(ekf_jacfwd_trace, np.array([0.2, 0.1]), xs, hess=False)


def test_ukf_sigma_points():
    """Sigma points written into a plain np.empty buffer (like=False; once refused under jit,
    naming like=x) give the like= buffer's values and derivatives, plain and transformed."""
    x = np.array([0.3, -0.2])
    assert_same(ukf_predict(x), ukf_predict(x, like=False))
    xs = rng.normal(0, 0.3, size=(3, 2))
    check_array_program(ukf_predict, x, xs)
    plain = lambda x: ukf_predict(x, like=False)  # noqa: E731
    check_array_program(plain, x, xs)
    assert_deriv(npfunc.jacrev(plain)(x), npfunc.jacrev(ukf_predict)(x), rtol=1e-14, atol=0)
    ps = np.array([[0.1, 0.02, 0.2], [0.2, 0.0, 0.3], [0.05, -0.01, 0.1]])
    check_array_program(ukf_wrt_covariance, ps[0], ps)


# ---- LQR, Riccati, Lyapunov ----------------------------------------------------------------


def dare_gain(qdiag):
    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    B = np.array([[0.005], [0.1]])
    R = np.array([[1.0]])
    P = scipy.linalg.solve_discrete_are(A, B, np.diag(qdiag), R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A).ravel()


def care_cost(qdiag):
    A = np.array([[0.0, 1.0], [2.0, -0.5]])
    B = np.array([[0.0], [1.0]])
    P = scipy.linalg.solve_continuous_are(A, B, np.diag(qdiag), np.eye(1))
    x0 = np.array([1.0, 0.0])
    return x0 @ P @ x0


def finite_horizon_lqr(qr, like=True):
    """Backward Riccati recursion storing the gains in a preallocated array; returns
    the cost-to-go x0' P0 x0 as a Python float, as written."""
    q, r = qr[0], qr[1]
    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    B = np.array([[0.0], [0.1]])
    N = 20
    Ks = np.zeros((N, 1, 2), like=qr) if like else np.zeros((N, 1, 2))
    P = np.eye(2) * q
    for k in reversed(range(N)):
        K = np.linalg.solve(r + B.T @ P @ B, B.T @ P @ A)
        Ks[k] = K
        P = q * np.eye(2) + A.T @ P @ (A - B @ K)
    x0 = np.array([1.0, 0.5])
    return x0 @ P @ x0 + 0.0 * Ks[0, 0, 0]


def lyapunov_cost(ab):
    A = np.array([[0.0, 1.0], [-ab[0], -ab[1]]])
    return np.trace(scipy.linalg.solve_continuous_lyapunov(A.T, -np.eye(2)))


def dlyap_cost(ab):
    A = np.array([[ab[0], 0.1], [0.0, ab[1]]])
    P = scipy.linalg.solve_discrete_lyapunov(A, np.eye(2))
    return P[0, 0] + P[1, 1]


def spectral_radius(k):
    """Closed-loop spectral radius of A - B k; an unstable gain returns np.inf."""
    A = np.array([[1.1, 0.2], [0.0, 0.95]])
    B = np.array([[0.0], [1.0]])
    rho = np.max(np.abs(np.linalg.eigvals(A - B @ k[None, :])))
    if rho >= 1.0:
        return np.inf
    return rho


def test_riccati_solvers_refused_naming_the_function():
    """SciPy's ARE solvers have no twin; the refusal names the function called (it named
    scipy.linalg.orthogonal_procrustes, whose decorator's wrapper code is shared)."""
    q = np.array([1.0, 0.5])
    for f, name in [(care_cost, "solve_continuous_are"), (dare_gain, "solve_discrete_are")]:
        for t in (npfunc.jacrev, npfunc.jit):
            with pytest.raises(npfunc.errors.ConcretizationError) as info:
                t(f)(q)
            assert f"scipy.linalg.{name} (called from your code)" in str(info.value)
            assert "orthogonal_procrustes" not in str(info.value)
        with pytest.raises(npfunc.errors.BatchedConversionError, match=f"scipy.linalg.{name}"):
            npfunc.vmap(f)(np.stack([q, q]))


def test_finite_horizon_lqr():
    """The gains stored into a plain np.zeros buffer (like=False; once refused under grad,
    naming like=x): the plain program under every transform, as the like= buffer."""
    qs = np.array([[1.0, 0.5], [2.0, 1.0], [0.3, 3.0]])
    check_scalar_program(finite_horizon_lqr, qs[0], qs)
    plain = lambda qr: finite_horizon_lqr(qr, like=False)  # noqa: E731
    check_scalar_program(plain, qs[0], qs)
    assert_deriv(npfunc.grad(plain)(qs[0]), npfunc.grad(finite_horizon_lqr)(qs[0]), rtol=1e-14, atol=0)


def test_lyapunov_costs():
    ab = np.array([[2.0, 0.5], [1.0, 1.0], [4.0, 0.1]])
    check_scalar_program(lyapunov_cost, ab[0], ab)
    ab = np.array([[0.5, 0.3], [0.8, -0.2], [0.1, 0.9]])
    check_scalar_program(dlyap_cost, ab[0], ab)


def test_spectral_radius_early_return_keeps_python_float():
    """`return np.inf` on the unstable branch: the plain value is a Python float, and
    grad_and_value / jvp / vjp / linearize gave it back as a 0-d ndarray."""
    k = np.array([0.5, 0.4])
    g, v = npfunc.grad_and_value(spectral_radius)(k)
    assert_same(v, spectral_radius(k))
    assert_deriv(g, fd(spectral_radius, k))
    bad = np.array([-1.0, 0.0])
    want = spectral_radius(bad)
    assert type(want) is float
    g, v = npfunc.grad_and_value(spectral_radius)(bad)
    assert_same(v, want)
    assert_same(g, np.zeros(2))
    out, t = npfunc.jvp(spectral_radius, (bad,), (np.ones(2),))
    assert_same(out, want)
    assert_deriv(t, 0.0)
    assert_same(npfunc.vjp(spectral_radius, bad)[0], want)
    assert_same(npfunc.linearize(spectral_radius, bad)[0], want)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap.*np\.where"):
        npfunc.vmap(spectral_radius)(np.stack([k, bad]))


# ---- MPC by shooting -----------------------------------------------------------------------


def cartpole(s, u, mc=1.0, mp=0.1, l=0.5, g=9.81):
    x, xd, th, thd = s
    st, ct = np.sin(th), np.cos(th)
    temp = (u + mp * l * thd**2 * st) / (mc + mp)
    thdd = (g * st - ct * temp) / (l * (4.0 / 3.0 - mp * ct**2 / (mc + mp)))
    xdd = temp - mp * l * thdd * ct / (mc + mp)
    return np.array([xd, xdd, thd, thdd])


def rk4(f, s, u, dt):
    k1 = f(s, u)
    k2 = f(s + dt / 2 * k1, u)
    k3 = f(s + dt / 2 * k2, u)
    k4 = f(s + dt * k3, u)
    return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def mpc_cost(us):
    s = np.array([0.0, 0.0, 0.2, 0.0])
    cost = 0.0
    for u in us:
        s = rk4(cartpole, s, u, 0.02)
        cost = cost + s[0] ** 2 + 10 * s[2] ** 2 + 0.01 * u**2
    return cost


def mpc_cost_saturated(us):
    """Saturated actuator (np.clip) and a weighted quadratic stage cost accumulated in place."""
    s = np.array([0.0, 0.0, 0.2, 0.0])
    W = np.diag([1.0, 0.1, 10.0, 0.1])
    cost = 0.0
    for u in np.clip(us, -2.0, 2.0):
        s = rk4(cartpole, s, u, 0.02)
        cost += s @ W @ s
    return cost


def test_mpc_shooting():
    check_scalar_program(mpc_cost, rng.normal(size=4), rng.normal(size=(2, 4)))
    check_scalar_program(mpc_cost_saturated, np.array([0.5, -1.0, 3.0, -2.5]), 2.0 * rng.normal(size=(2, 4)))


def test_mpc_gradient_descent_with_jitted_gradient():
    """A few steps of gradient descent on the controls with jit(grad), against the plain loop."""
    step = npfunc.jit(npfunc.grad(mpc_cost))
    us, ref = np.zeros(6), np.zeros(6)
    for _ in range(3):
        us = us - 0.05 * step(us)
        ref = ref - 0.05 * fd(mpc_cost, ref)
    assert_deriv(us, ref, rtol=1e-6, atol=1e-9)


# ---- PID -----------------------------------------------------------------------------------


def pid_ise(gains, anti_windup="if"):
    """Integral squared error of a PID loop on a second-order plant, saturated actuator
    and anti-windup by conditional integration: an `if`, or np.where ("where"), or
    np.where followed by in-place `integ += ...` on its 0-d result ("where+=")."""
    kp, ki, kd = gains
    dt = 0.01
    y = yd = integ = err2 = 0.0
    e_prev = 1.0
    for _ in range(100):
        e = 1.0 - y
        if anti_windup == "where+=":
            integ += e * dt
        else:
            integ = integ + e * dt
        u = kp * e + ki * integ + kd * (e - e_prev) / dt
        u_sat = np.clip(u, -5.0, 5.0)
        if anti_windup == "if":
            if u != u_sat:
                integ -= e * dt
        else:
            integ = np.where(u != u_sat, integ - e * dt, integ)
        e_prev = e
        yd += (u_sat - 2.0 * yd - y) * dt
        y += yd * dt
        err2 += e * e * dt
    return err2


def pi_history(gains, like=False):
    """A first-order plant under saturated PI control, the output logged into y."""
    kp, ki = gains[0], gains[1]
    y = np.zeros(50, like=gains) if like else np.zeros(50)
    integ = 0.0
    for k in range(1, 50):
        e = 1.0 - y[k - 1]
        integ = integ + e * 0.05
        y[k] = 0.9 * y[k - 1] + 0.1 * np.clip(kp * e + ki * integ, -3, 3)
    return y


def test_pid_anti_windup_branch():
    gains = np.array([[2.0, 1.0, 0.1], [1.0, 0.5, 0.05], [3.0, 0.3, 0.2]])
    g, v = npfunc.grad_and_value(pid_ise)(gains[0])
    assert_same(v, pid_ise(gains[0]))
    assert_deriv(g, fd(pid_ise, gains[0]))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap.*np\.where"):
        npfunc.vmap(pid_ise)(gains)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*'gains'.*np\.where"):
        npfunc.jit(pid_ise)(gains[0])
    vec = lambda k: pid_ise(k, "where")  # noqa: E731
    assert_same(vec(gains[0]), pid_ise(gains[0]))
    assert_same(npfunc.vmap(vec)(gains), loop(pid_ise, gains))
    assert_same(npfunc.jit(vec)(gains[1]), pid_ise(gains[1]))
    assert_same(npfunc.vmap(npfunc.grad(vec))(gains), loop(npfunc.grad(pid_ise), gains), rtol=1e-10, atol=1e-12)


def test_pid_inplace_add_into_where_result():
    """np.where of two constants is a plain 0-d array; `integ += traced` into it is
    refused (vmap and jit alone work); the named fix, integ = integ + ..., works."""
    gains = np.array([[2.0, 1.0, 0.1], [1.0, 0.5, 0.05]])
    f = lambda k: pid_ise(k, "where+=")  # noqa: E731
    assert_same(f(gains[0]), pid_ise(gains[0]))
    assert_same(npfunc.vmap(f)(gains), loop(pid_ise, gains))
    assert_same(npfunc.jit(f)(gains[1]), pid_ise(gains[1]))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad.*plain ndarray.*Use x = x \+ y"):
        npfunc.grad(f)(gains[0])
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jit\(grad\(f\)\).*Use x = x \+ y"):
        npfunc.jit(npfunc.grad(f))(gains[0])
    assert_deriv(npfunc.grad(lambda k: pid_ise(k, "where"))(gains[0]), fd(pid_ise, gains[0]))


def test_pi_history():
    """The output logged into a plain y = np.zeros(50) (once refused under jacfwd, naming
    like=x): the plain program under every transform, as the like= buffer."""
    gains = np.array([[2.0, 0.5], [5.0, 1.0], [1.0, 0.1]])
    check_array_program(pi_history, gains[0], gains, second=False)
    f = lambda k: pi_history(k, like=True)  # noqa: E731
    assert_same(f(gains[0]), pi_history(gains[0]))
    check_array_program(f, gains[0], gains, second=False)
    assert_deriv(npfunc.jacfwd(pi_history)(gains[0]), npfunc.jacfwd(f)(gains[0]), rtol=1e-14, atol=0)


# ---- system identification -----------------------------------------------------------------


def arx_identify(theta):
    """Simulate y_k = a y_{k-1} + b u_{k-1} into a (traced) buffer, then fit (a, b) by lstsq."""
    a, b = theta
    u = np.sin(np.arange(30) * 0.3)
    y = np.zeros(30, like=theta)
    for k in range(1, 30):
        y[k] = a * y[k - 1] + b * u[k - 1]
    y = y + 0.01 * np.cos(np.arange(30.0))
    Phi = np.column_stack([y[:-1], u[:-1]])
    est, _, _, _ = np.linalg.lstsq(Phi, y[1:], rcond=None)
    return est


def poly_fit_residual(y):
    A = np.vander(np.linspace(0, 1, y.shape[0]), 3)
    _, res, _, _ = np.linalg.lstsq(A, y, rcond=None)
    return res[0]


def lstsq_all(y):
    A = np.column_stack([np.ones(6), np.arange(6.0)])
    return np.linalg.lstsq(A, y, rcond=None)


def test_system_identification():
    thetas = np.array([[0.8, 0.5], [0.5, 1.0], [-0.3, 0.2]])
    check_array_program(arx_identify, thetas[0], thetas)
    check_scalar_program(poly_fit_residual, rng.normal(size=7), rng.normal(size=(3, 7)))
    y = rng.normal(size=6)
    for got, want in zip(npfunc.jit(lstsq_all)(y), lstsq_all(y)):
        assert_same(got, want)
    ys = rng.normal(size=(3, 6))
    for got, want in zip(npfunc.vmap(lstsq_all)(ys), zip(*[lstsq_all(v) for v in ys])):
        assert_same(got, np.stack(want))


# ---- discretisation and scipy.signal -------------------------------------------------------


def zoh_discretise(ab):
    A = np.array([[0.0, 1.0], [-ab[0], -ab[1]]])
    B = np.array([[0.0], [1.0]])
    Ad, Bd, _, _, _ = scipy.signal.cont2discrete((A, B, np.eye(2), np.zeros((2, 1))), 0.1)
    return np.concatenate([Ad.ravel(), Bd.ravel()])


def bilinear_discretise(ab):
    A = np.array([[0.0, 1.0], [-ab[0], -ab[1]]])
    B = np.array([[0.0], [1.0]])
    C = np.array([[1.0, 0.0]])
    Ad, Bd, _, Dd, _ = scipy.signal.cont2discrete((A, B, C, np.zeros((1, 1))), 0.1, method="bilinear")
    return np.concatenate([Ad.ravel(), Bd.ravel(), Dd.ravel()])


def expm_discretise(ab):
    """Van Loan's block matrix: expm([[A, B], [0, 0]] dt) gives Ad and Bd at once."""
    M = np.zeros((3, 3), like=ab)
    M[0, 1] = 1.0
    M[1, 0] = -ab[0]
    M[1, 1] = -ab[1]
    M[1, 2] = 1.0
    Md = scipy.linalg.expm(M * 0.1)
    return np.concatenate([Md[:2, :2].ravel(), Md[:2, 2]])


def lsim_step(wn_zeta):
    wn, zeta = wn_zeta
    sys = scipy.signal.lti([wn**2], [1.0, 2 * zeta * wn, wn**2])
    t = np.linspace(0, 2, 50)
    _, y, _ = scipy.signal.lsim(sys, np.ones_like(t), t)
    return y


def butter_lowpass(x):
    b, a = scipy.signal.butter(2, 0.2)
    return scipy.signal.lfilter(b, a, x)


def ema(alpha):
    """Exponential smoothing of a fixed signal as a function of its coefficient."""
    x = np.sin(np.linspace(0, 3, 20))
    return scipy.signal.lfilter([1 - alpha], [1.0, -alpha], x)


def lfilter_steady_start(x):
    b, a = np.array([0.2, 0.2]), np.array([1.0, -0.6])
    y, zf = scipy.signal.lfilter(b, a, x, zi=scipy.signal.lfilter_zi(b, a) * x[0])
    return np.concatenate([y, zf])


def test_discretisation():
    ab = np.array([[2.0, 0.5], [1.0, 1.0], [4.0, 0.1]])
    check_array_program(zoh_discretise, ab[0], ab)
    check_array_program(bilinear_discretise, ab[0], ab)
    check_array_program(expm_discretise, ab[0], ab)


def test_lsim_refused_naming_it():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev.*scipy\.signal\.lsim \(called from"):
        npfunc.jacrev(lsim_step)(np.array([3.0, 0.4]))


def test_iir_filters():
    check_array_program(butter_lowpass, rng.normal(size=10), rng.normal(size=(3, 10)))
    check_array_program(ema, np.array(0.7), np.array([0.2, 0.5, 0.9]))
    check_array_program(lfilter_steady_start, rng.normal(size=6), rng.normal(size=(3, 6)))


# ---- ODE rollouts --------------------------------------------------------------------------


def pendulum_final(x0, t_eval=None):
    def rhs(t, s):
        return [s[1], -9.81 * np.sin(s[0]) - 0.1 * s[1]]

    sol = scipy.integrate.solve_ivp(rhs, (0, 1.0), x0, rtol=1e-10, atol=1e-12, t_eval=t_eval)
    return sol.y[:, -1]


def rk4_rollout(x0):
    """RK4 of a damped pendulum into a preallocated (traced) trajectory."""
    n, dt = 20, 0.05
    traj = np.empty((n + 1, 2), like=x0)
    traj[0] = x0
    f = lambda s: np.array([s[1], -9.81 * np.sin(s[0]) - 0.2 * s[1]])  # noqa: E731
    for k in range(n):
        s = traj[k]
        k1 = f(s)
        k2 = f(s + dt / 2 * k1)
        k3 = f(s + dt / 2 * k2)
        k4 = f(s + dt * k3)
        traj[k + 1] = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return traj[-1]


def pendulum_energy(state):
    th, om = state[..., 0], state[..., 1]
    return 0.5 * om**2 + 9.81 * (1 - np.cos(th))


def test_solve_ivp_final_state():
    x0 = np.array([0.5, 0.0])
    J = fd(pendulum_final, x0)
    assert_deriv(npfunc.jacrev(pendulum_final)(x0), J, rtol=1e-6)
    assert_deriv(npfunc.jacfwd(pendulum_final)(x0), J, rtol=1e-6)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap.*t_eval"):
        npfunc.vmap(pendulum_final)(np.stack([x0, x0 + 0.1]))
    f = lambda x: pendulum_final(x, t_eval=np.array([1.0]))  # noqa: E731
    xs = np.array([[0.5, 0.0], [1.0, 0.3], [-0.2, 0.1]])
    np.testing.assert_allclose(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-8, atol=1e-10)


def test_solve_ivp_second_derivative():
    """jacfwd(jacrev) of a solve_ivp endpoint: the adjoint's batched second-order rule
    reshaped a tuple of cotangents as one array (np.shape on a list of traced values)."""
    x0 = np.array([0.5, 0.0])
    H = npfunc.jacfwd(npfunc.jacfwd(pendulum_final))(x0)  # forward sensitivities of sensitivities
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(pendulum_final))(x0), H, rtol=1e-6, atol=1e-8)


def test_rk4_rollout_and_energy():
    xs = np.array([[0.5, 0.0], [1.0, 0.3], [-0.2, 0.1]])
    check_array_program(rk4_rollout, xs[0], xs, second=False)
    check_scalar_program(pendulum_energy, np.array([0.5, 0.3]), rng.normal(size=(3, 2)))
    check_scalar_program(lambda x: pendulum_energy(rk4_rollout(x)), xs[0], xs, hess=False)


# ---- float32 controllers -------------------------------------------------------------------


def linear_step_f32(x):
    A = np.array([[0.9, 0.1], [0.0, 0.95]], dtype=np.float32)
    x = x.astype(np.float32)
    for _ in range(5):
        x = A @ x + np.float32(0.01) * np.tanh(x)
    return x


def kf_f32(zs):
    F = np.array([[1, 0.1], [0, 1]], dtype=np.float32)
    H = np.array([[1, 0]], dtype=np.float32)
    Q = np.eye(2, dtype=np.float32) * np.float32(1e-3)
    x, P = np.zeros(2, dtype=np.float32), np.eye(2, dtype=np.float32)
    for z in zs:
        x = F @ x
        P = F @ P @ F.T + Q
        K = P @ H.T / (H @ P @ H.T + 0.05)
        x = x + (K * (z - H @ x)).ravel()
        P = (np.eye(2, dtype=np.float32) - K @ H) @ P
    return x


def test_float32_programs_stay_float32():
    """Values and derivatives stay float32; vmap agrees with the loop to float32 rounding
    (a batched product rounds differently from one matrix-vector product at a time)."""
    for f, x, xs in [(linear_step_f32, np.array([0.5, -0.3], np.float32), rng.normal(size=(3, 2)).astype(np.float32)),
                     (kf_f32, np.array([0.1, 0.2, 0.35, 0.4], np.float32), rng.normal(size=(3, 4)).astype(np.float32))]:
        ref = f(x)
        assert_same(npfunc.jit(f)(x), ref)
        assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-6)
        J64 = fd(lambda v: f(v.astype(np.float32)).astype(np.float64), x)
        for jac in (npfunc.jacrev, npfunc.jacfwd):
            J = jac(f)(x)
            assert J.dtype == np.float32
            assert_deriv(J, J64, rtol=1e-2, atol=2e-3)


# ---- gating, wrapping, barriers, particle weights ------------------------------------------


def mahalanobis_gate(z, mean=np.array([0.0, 1.0]), S=np.array([[1.0, 0.2], [0.2, 0.5]])):
    d = z - mean
    m2 = d @ np.linalg.solve(S, d)
    if m2 > 9.21:
        return np.float64(0.0)
    return np.exp(-0.5 * m2)


def heading_error(th):
    """Heading error wrapped to (-pi, pi] two ways (np.mod, and arctan2 of sin/cos)."""
    e = np.mod(th - 3.0 + np.pi, 2 * np.pi) - np.pi
    return e**2 + np.arctan2(np.sin(th - 3.0), np.cos(th - 3.0))


def barrier_cost(u, log1p=np.log1p):
    return np.sum(log1p(np.exp(5 * (np.abs(u) - 1.0)))) / 5 + 0.5 * np.dot(u, u)


def particle_ess(x):
    particles = np.linspace(-2, 2, 11)
    logw = -0.5 * (x - particles) ** 2 / 0.3
    logw -= scipy.special.logsumexp(logw)
    return 1.0 / np.sum(np.exp(logw) ** 2)


def gain_schedule(v):
    kp = np.interp(v, np.array([0.0, 5.0, 10.0, 20.0]), np.array([2.0, 1.5, 1.0, 0.6]))
    return kp * (10.0 - v)


def sliding_mode(s):
    sigma = s[1] + 2.0 * s[0]
    return np.stack([-1.5 * np.sign(sigma), -1.5 * np.clip(sigma / 0.1, -1, 1), -1.5 * np.tanh(sigma / 0.1)])


def deadzone(u):
    return np.maximum(u - 0.2, 0.0) + np.minimum(u + 0.2, 0.0)


def velocity_estimates(pos):
    vel = np.gradient(pos, DT)
    acc = np.diff(pos, 2) / DT**2
    return np.concatenate([vel, acc, [np.trapezoid(np.abs(vel), dx=DT)]])


def covariance_propagation(P_flat):
    """Batched F P F' + Q by einsum, symmetrised in place."""
    F = np.array([[1.0, 0.1], [0.0, 1.0]])
    out = np.einsum("ij,njk,lk->nil", F, P_flat.reshape(-1, 2, 2), F) + 0.01 * np.eye(2)
    out += np.swapaxes(out, -1, -2)
    out *= 0.5
    return out.reshape(-1)


def test_mahalanobis_gate():
    zs = np.array([[0.3, 0.8], [5.0, 5.0], [0.0, 1.1]])
    for z in zs:
        g, v = npfunc.grad_and_value(mahalanobis_gate)(z)
        assert_same(v, mahalanobis_gate(z))
        assert_deriv(g, fd(mahalanobis_gate, z))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap.*np\.where"):
        npfunc.vmap(mahalanobis_gate)(zs)


def test_elementwise_control_laws():
    check_array_program(heading_error, np.array(0.4), np.array([0.4, 2.0, -2.5]))
    check_array_program(particle_ess, np.array(0.3), np.array([0.3, -1.0, 1.7]))
    check_array_program(gain_schedule, np.array(7.0), np.array([1.0, 7.0, 15.0]))
    check_array_program(gain_schedule, np.array([7.0, 12.0]), np.array([[1.0, 7.0], [15.0, 3.0]]))
    check_array_program(sliding_mode, np.array([0.01, 0.02]), np.array([[0.01, 0.02], [1.0, -0.3], [-0.5, 0.2]]))
    check_array_program(deadzone, np.array([0.5, -0.1, -0.7]), rng.normal(size=(3, 3)))
    check_array_program(velocity_estimates, rng.normal(size=8), rng.normal(size=(3, 8)))
    check_array_program(covariance_propagation, rng.normal(size=8), rng.normal(size=(3, 8)))


def test_barrier_with_scipy_special_log1p():
    """scipy.special.log1p is SciPy's own ufunc, which npfunc does not support; the
    refusal named np.log1p (supported) instead of it. np.log1p is the fix."""
    u = np.array([0.5, -1.2, 2.0])
    with pytest.raises(npfunc.errors.UnsupportedFunctionError,
                       match=r"grad.*scipy\.special\.log1p is not supported.*np\.log1p .*call it instead"):
        npfunc.grad(lambda u: barrier_cost(u, scipy.special.log1p))(u)
    np.testing.assert_allclose(barrier_cost(u), barrier_cost(u, scipy.special.log1p), rtol=1e-15)
    check_scalar_program(barrier_cost, u, rng.normal(size=(3, 3)))


# ---- a stateful controller object ----------------------------------------------------------


class PIController:
    def __init__(self):
        self.integ = 0.0

    def step(self, e):
        self.integ = self.integ + 0.1 * e
        return 2.0 * e + 0.5 * self.integ


def test_stateful_controller_under_jit_records_once():
    """jit runs Python side effects once, while recording (docs/guide/jit.md): the
    attribute holds a traced value afterwards, and using it raises."""
    e = np.array([1.0])
    plain = PIController()
    want = [plain.step(e) for _ in range(3)]
    c = PIController()
    step = npfunc.jit(c.step)
    got = [step(e) for _ in range(3)]
    assert_same(got[0], want[0])
    assert_same(got[2], want[0])  # replayed, not accumulated
    with pytest.raises(npfunc.errors.EscapedTracerError, match="jit"):
        c.integ + 1.0


# ---- more estimation and identification idioms ---------------------------------------------


def kf_nll_2d(log_qr):
    """Planar constant-velocity KF likelihood with cho_factor / cho_solve and slogdet."""
    q, r = np.exp(log_qr[0]), np.exp(log_qr[1])
    F = np.kron(np.eye(2), np.array([[1.0, DT], [0.0, 1.0]]))
    H = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    x, P = np.zeros(4), np.eye(4)
    nll = 0.0
    for z in np.array([[0.1, 0.0], [0.2, 0.1], [0.35, 0.15], [0.4, 0.3]]):
        x = F @ x
        P = F @ P @ F.T + q * np.eye(4)
        S = H @ P @ H.T + r * np.eye(2)
        c = scipy.linalg.cho_factor(S)
        y = z - H @ x
        nll += 0.5 * (y @ scipy.linalg.cho_solve(c, y) + np.linalg.slogdet(S)[1])
        K = scipy.linalg.cho_solve(c, H @ P).T
        x = x + K @ y
        P = P - K @ S @ K.T
    return nll


def whitened_norm(p):
    """Square-root form: ||L^-1 b||^2 with L the Cholesky factor, by solve_triangular."""
    L = np.linalg.cholesky(np.array([[p[0], 0.1], [0.1, p[1]]]))
    w = scipy.linalg.solve_triangular(L, np.array([1.0, 2.0]), lower=True)
    return w @ w


def noisy_rollout(k):
    """A closed loop with process noise from a generator seeded inside the function."""
    gen = np.random.default_rng(0)
    x = 1.0
    for _ in range(10):
        x = x - 0.1 * k * x + 0.01 * gen.standard_normal()
    return x * x


def pinv_fit(y):
    A = np.column_stack([np.ones(5), np.arange(5.0), np.arange(5.0) ** 2])
    return np.linalg.pinv(A) @ y


def fir_then_integrate(x):
    return np.cumsum(np.convolve(x, np.array([0.25, 0.5, 0.25]), mode="same")) * DT


def normalize_quaternion(q):
    q /= np.linalg.norm(q)
    return q


def mpc_by_minimize(x0):
    """Open-loop MPC of an integrator solved by scipy.optimize.minimize (BFGS)."""
    cost = lambda u: np.sum((x0 + np.cumsum(u)) ** 2) + 0.1 * np.sum(u**2)  # noqa: E731
    return scipy.optimize.minimize(cost, np.zeros(4), method="BFGS").x


def test_cholesky_based_filters():
    check_scalar_program(kf_nll_2d, np.array([-3.0, -2.0]), rng.normal(-3, 0.3, size=(3, 2)))
    check_scalar_program(whitened_norm, np.array([2.0, 3.0]), np.array([[2.0, 3.0], [1.0, 1.0], [4.0, 2.0]]))


def test_seeded_noise_and_fits():
    check_scalar_program(noisy_rollout, np.array(0.5), np.array([0.5, 1.0, 1.5]))
    check_array_program(pinv_fit, rng.normal(size=5), rng.normal(size=(3, 5)))
    check_array_program(fir_then_integrate, rng.normal(size=6), rng.normal(size=(3, 6)))


def test_normalize_quaternion_in_place():
    qs = rng.normal(size=(3, 4))
    qa, qb = qs.copy(), qs.copy()
    assert_same(npfunc.vmap(normalize_quaternion)(qa), np.stack([normalize_quaternion(v) for v in qb]))
    assert_same(qa, qb)
    q = qs[0].copy()
    out = npfunc.jit(normalize_quaternion)(q)
    assert out is q  # NumPy returns the argument itself
    assert_same(q, qb[0])


def test_float32_scalar_time_step():
    f = lambda x: x * np.float32(0.01) + 0.5  # noqa: E731
    x = np.float32(2.0)
    assert_same(npfunc.jit(f)(x), f(x))
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, f(x))
    assert_same(g, np.float32(0.01))


def test_mpc_by_minimize():
    """Derivatives by the implicit function theorem; vmap is one stacked solve, equal to
    the loop to the solver's tolerance (docs/solvers.md)."""
    A = np.tril(np.ones((4, 4)))
    exact = -np.linalg.solve(A.T @ A + 0.1 * np.eye(4), A.T @ np.ones(4))
    x0 = np.array(1.0)
    assert_deriv(npfunc.jacrev(mpc_by_minimize)(x0), exact, rtol=1e-6)
    assert_deriv(npfunc.jacfwd(mpc_by_minimize)(x0), exact, rtol=1e-6)
    xs = np.array([1.0, 0.5, -0.3])
    np.testing.assert_allclose(npfunc.vmap(mpc_by_minimize)(xs), loop(mpc_by_minimize, xs), atol=1e-5)


# ---- NumPy scalars and 0-d arrays out of a cost ---------------------------------------------


def logged_cost(p, how):
    """A cost handed back in the form a logging/optimiser wrapper wants it."""
    cost = np.sum(p**2) + p[0] * p[1]
    if how == "np.array":
        return np.array(cost)  # a 0-d array
    if how == "np.copy":
        return np.copy(cost)  # a 0-d array
    if how == ".copy()":
        return cost.copy()  # a NumPy scalar's copy is a NumPy scalar
    if how == ".astype":
        return cost.astype(np.float64)  # still a NumPy scalar
    return np.array(p[0]).copy()  # a 0-d array's copy


@pytest.mark.parametrize("how", ["np.array", "np.copy", ".copy()", ".astype", "0-d.copy()"])
def test_cost_scalar_or_zero_d_array(how):
    """np.array(np.float64) is a 0-d array and np.float64(..).copy() a NumPy scalar:
    grad_and_value / jvp / vjp gave the former as np.float64, jit the latter as a 0-d array."""
    f = lambda p: logged_cost(p, how)  # noqa: E731
    p = np.array([0.3, 1.2, -0.9])
    want = f(p)
    assert_same(npfunc.jit(f)(p), want)
    g, v = npfunc.grad_and_value(f)(p)
    assert_same(v, want)
    assert_deriv(g, fd(f, p))
    assert_same(npfunc.jvp(f, (p,), (np.ones(3),))[0], want)
    assert_same(npfunc.vjp(f, p)[0], want)


# ---- covariance conditioning ---------------------------------------------------------------


def floored_logdet(p, eps=0.0):
    """log det of a rank-one covariance whose variances are floored with np.fill_diagonal;
    the floor leaves it exactly singular for some p (NumPy: logabsdet = -inf)."""
    P = np.outer(p, p)
    np.fill_diagonal(P, np.maximum(np.diag(P), 0.5))
    return np.linalg.slogdet(P + eps * np.eye(3))[1]


def jittered_inverse(p):
    P = np.outer(p, p)
    P.flat[:: P.shape[0] + 1] += 0.5  # jitter on the diagonal through .flat
    return np.linalg.inv(P).ravel()


def diagonal_loaded(p):
    P = np.outer(p, p) + np.eye(3)
    P[np.diag_indices(3)] += p**2
    return P.ravel()


def symmetric_from_upper(p):
    M = np.zeros((3, 3), like=p)
    M[np.triu_indices(3)] = p
    return np.linalg.eigvalsh(M + M.T - np.diag(np.diag(M)))


def test_covariance_conditioning():
    xs = rng.normal(size=(3, 3))
    check_array_program(jittered_inverse, rng.normal(size=3), xs)
    check_array_program(diagonal_loaded, rng.normal(size=3), xs)
    check_array_program(symmetric_from_upper, rng.normal(size=6), rng.normal(size=(3, 6)))
    # at most one |p_i| above the floor's sqrt(0.5): nonsingular
    check_scalar_program(floored_logdet, np.array([0.3, 0.7, -0.9]),
                         np.array([[0.3, 0.7, -0.2], [0.1, -0.5, 0.6], [0.65, 0.2, 0.1]]))


def test_logdet_at_singular_matrix_refused_with_reason():
    """NumPy's value is -inf; the derivative raised a bare LinAlgError('Singular matrix')."""
    p = np.array([0.3, 1.2, -0.9])
    assert floored_logdet(p) == -np.inf
    assert_same(npfunc.jit(floored_logdet)(p), floored_logdet(p))
    for t, where in [(npfunc.grad, ""), (npfunc.jacfwd, "jacfwd(f): ")]:
        with pytest.raises(np.linalg.LinAlgError, match=rf"^{re.escape(where)}the derivative of "
                           r"np\.linalg\.slogdet at an exactly singular.*eps \* np\.eye\(n\)"):
            t(floored_logdet)(p)
    f = lambda p: floored_logdet(p, 1e-2)  # noqa: E731
    assert_deriv(npfunc.grad(f)(p), fd(f, p))


# ---- Jacobians with auxiliary filter state -------------------------------------------------

MEASUREMENT_MODEL = np.array([[1.0, 0.0]])


def predict_with_info(x):
    """A pendulum step returning (next state, filter bookkeeping): the model matrix it
    used, the step count, the time step, a label and the predicted energy."""
    nxt = pendulum_step(x)
    info = {"H": MEASUREMENT_MODEL, "steps": 1, "dt": 0.05, "model": "pendulum",
            "energy": pendulum_energy(nxt)}
    return nxt, info


def test_jacobian_aux_kept_as_returned():
    """jacfwd(has_aux=True) sent aux through its vmap: the int, float and str came back as
    0-d arrays (or refused), the model matrix as a copy; jacrev returns them as they are."""
    x = np.array([0.3, -0.2])
    _, want = predict_with_info(x)
    for jac in (npfunc.jacfwd, npfunc.jacrev):
        J, aux = jac(predict_with_info, has_aux=True)(x)
        assert_deriv(J, fd(lambda v: predict_with_info(v)[0], x))
        assert aux.keys() == want.keys()
        for k in ("steps", "dt", "model"):
            assert type(aux[k]) is type(want[k]) and aux[k] == want[k]
        assert aux["H"] is MEASUREMENT_MODEL
        assert_same(aux["energy"], want["energy"])


def steady_state_covariance_f32(poles):
    """Stationary state covariance of a float32 diagonal model driven by unit noise."""
    A = np.diag(poles.astype(np.float32))
    return scipy.linalg.solve_discrete_lyapunov(A, np.eye(2, dtype=np.float32))


def test_discrete_lyapunov_float32_is_float64_as_in_scipy():
    """SciPy returns float64 for float32 inputs (its identity matrices are float64);
    the npfunc twin returned float32 under jit, vjp and jvp."""
    poles = np.array([0.5, -0.3], np.float32)
    want = steady_state_covariance_f32(poles)
    assert want.dtype == np.float64
    assert_same(npfunc.jit(steady_state_covariance_f32)(poles), want)
    assert_same(npfunc.vjp(steady_state_covariance_f32, poles)[0], want)
    assert_same(npfunc.jvp(steady_state_covariance_f32, (poles,), (np.ones(2, np.float32),))[0], want)
    batch = np.array([[0.5, -0.3], [0.2, 0.4]], np.float32)
    assert_same(npfunc.vmap(steady_state_covariance_f32)(batch), loop(steady_state_covariance_f32, batch))
    J = npfunc.jacfwd(steady_state_covariance_f32)(poles)  # X_ii = 1 / (1 - p_i^2)
    p = poles.astype(np.float64)
    assert_deriv(np.einsum("iik->ik", J), np.diag(2 * p / (1 - p**2) ** 2), rtol=1e-6)


def observability_gramian_f32(a):
    """float32 model: determinant of the observability matrix by scipy.linalg.det and
    the discretised input response by expm_frechet, both double precision in SciPy."""
    A = np.array([[0.0, 1.0], [-1.0, -0.5]], np.float32) * a[0]
    C = np.array([[1.0, 0.0]], np.float32)
    O = np.vstack([C, C @ A])
    E = np.array([[0.0, 0.0], [a[1], 0.0]], np.float32)
    expA, L = scipy.linalg.expm_frechet(A * np.float32(0.1), E)
    return np.concatenate([[scipy.linalg.det(O)], expA.ravel(), L.ravel()])


def test_scipy_det_and_expm_frechet_float32_give_float64():
    """SciPy's det and expm_frechet return float64 for float32 input; the twins kept
    float32 (under jit, vjp and vmap)."""
    a = np.array([1.5, 0.7], np.float32)
    want = observability_gramian_f32(a)
    assert want.dtype == np.float64
    for got in (npfunc.jit(observability_gramian_f32)(a), npfunc.vjp(observability_gramian_f32, a)[0]):
        assert_same(got, want, rtol=1e-6)  # SciPy works partly in float32 inside
    batch = np.array([[1.5, 0.7], [0.5, -0.2]], np.float32)
    assert_same(npfunc.vmap(observability_gramian_f32)(batch), loop(observability_gramian_f32, batch), rtol=1e-6)


def test_scipy_function_behind_a_decorator_named():
    """scipy.linalg.eigvals runs inside SciPy's batching decorator: the refusal named
    'scipy.wrapper'; it names scipy.linalg.eigvals."""
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"scipy\.linalg\.eigvals \(called from your code\)"):
        npfunc.jit(lambda k: scipy.linalg.eigvals(np.array([[0.0, 1.0], [-k[0], -k[1]]])))(np.array([2.0, 0.5]))
