"""Natural time-stepping programs, written the way physicists and engineers
write them: explicit Euler / RK4 / leapfrog / velocity-Verlet loops that update
preallocated state arrays in place (``y[k + 1] = ...``, ``u[1:-1] += ...``,
``state[:] = ...``), finite differences on slices and ``np.roll``, boundary
conditions written through views, pairwise particle forces, SIR / pendulum /
Lotka-Volterra by hand against ``scipy.integrate``, a Kalman filter loop,
lattice updates.

Each program is compared under npfunc's transforms with the plain program:
values (jit, vmap against a loop over the rows, the value of grad_and_value,
vjp/jvp primals; dtype, shape and Python type), what is left in the caller's
arrays, and derivatives (grad, jacrev, jacfwd, hessian, jvp, vjp) against
five-point central differences, and compositions (jit(grad), grad(jit),
vmap(grad), jacfwd(jacrev), vmap(jit), jit(vmap)).

Most buffers that receive traced values are created with ``like=`` (what npfunc's
refusal of a plain ``np.zeros`` buffer told the user to do before plain buffers
took traced writes); the plain spellings (``np.zeros``/``np.empty`` histories)
are checked at the end against plain NumPy and differences.  The tests at
the end pin the findings: refusals of natural code, raw errors, and the
silent differences (documented ones included) as strict xfails.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.ndimage
import scipy.signal

import npfunc
from npfunc.errors import NpfuncError
from npfunc.testing import numerical_jacobian
from natural_checks import assert_deriv, assert_same, fd




def loop(f, xs):
    return np.stack([f(x) for x in xs])


# ---- the programs ------------------------------------------------------------------------

def pendulum_rk4(params):
    """RK4 for a damped pendulum into a preallocated history; params = [g/L, damping,
    theta0, omega0]; returns the energy at the final time."""
    g, c, th0, om0 = params
    dt, nsteps = 0.05, 40
    y = np.zeros((nsteps + 1, 2), like=params)
    y[0] = [th0, om0]

    def rhs(s):
        return np.array([s[1], -g * np.sin(s[0]) - c * s[1]], like=params)

    for k in range(nsteps):
        k1 = rhs(y[k])
        k2 = rhs(y[k] + 0.5 * dt * k1)
        k3 = rhs(y[k] + 0.5 * dt * k2)
        k4 = rhs(y[k] + dt * k3)
        y[k + 1] = y[k] + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return 0.5 * y[-1, 1] ** 2 + g * (1 - np.cos(y[-1, 0]))


def heat_ftcs(u0):
    """FTCS explicit heat equation, u[1:-1] += ..., Dirichlet ends held; returns the final profile."""
    u = u0.copy()
    nx = u.size
    dx = 1.0 / (nx - 1)
    alpha = 0.1
    dt = 0.4 * dx * dx / alpha
    for n in range(30):
        u[1:-1] += alpha * dt / dx**2 * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u


def heat_neumann_inplace(u):
    """Heat equation with zero-flux ends written through views (u[0] = u[1]); updates the
    caller's array in place and returns its mean."""
    r = 0.25
    for n in range(20):
        lap = np.zeros_like(u)
        lap[1:-1] = u[2:] - 2 * u[1:-1] + u[:-2]
        u += r * lap
        u[0] = u[1]
        u[-1] = u[-2]
    return u.mean()


def wave_leapfrog(c):
    """1D wave equation, leapfrog in time, periodic through np.roll; returns the final energy-like
    integral for wave speed c."""
    nx = 32
    x = np.linspace(0, 1, nx, endpoint=False)
    dx = x[1] - x[0]
    dt = 0.5 * dx
    u_prev = np.exp(-100 * (x - 0.5) ** 2)
    u = u_prev.copy()
    C2 = (c * dt / dx) ** 2
    for n in range(25):
        u_next = 2 * u - u_prev + C2 * (np.roll(u, -1) - 2 * u + np.roll(u, 1))
        u_prev, u = u, u_next
    return np.sum(u ** 2) * dx


def advection_upwind(u0):
    """First-order upwind advection, periodic via np.roll, updated with state[:] = ...; returns the state."""
    a = 1.0
    state = np.array(u0, dtype=float)
    nx = state.size
    dx = 1.0 / nx
    dt = 0.8 * dx / a
    for n in range(20):
        flux = a * state
        state[:] = state - dt / dx * (flux - np.roll(flux, 1))
    return state


def nbody_verlet(pos0):
    """Velocity Verlet for 4 bodies in 2D with softened pairwise gravity (broadcast differences,
    fill_diagonal, einsum); pos0 shape (4, 2); returns the final positions."""
    n = pos0.shape[0]
    pos = pos0.copy()
    vel = np.zeros_like(pos)
    m = np.linspace(1.0, 2.0, n)
    eps2, dt = 0.1, 0.01

    def accel(p):
        d = p[np.newaxis, :, :] - p[:, np.newaxis, :]
        r2 = np.sum(d ** 2, axis=-1) + eps2
        inv_r3 = r2 ** -1.5
        np.fill_diagonal(inv_r3, 0.0)
        return np.einsum('ij,ijk->ik', inv_r3 * m[np.newaxis, :], d)

    a = accel(pos)
    for step in range(15):
        vel += 0.5 * dt * a
        pos += dt * vel
        a = accel(pos)
        vel += 0.5 * dt * a
    return pos


def lotka_volterra_euler(theta):
    """Explicit Euler for Lotka-Volterra written element by element into a preallocated
    trajectory; theta = [a, b, c, d]; returns the final populations."""
    a, b, c, d = theta
    dt, T = 0.01, 2.0
    n = int(round(T / dt))
    traj = np.empty((n + 1, 2), like=theta)
    traj[0, 0], traj[0, 1] = 10.0, 5.0
    for k in range(n):
        x, y = traj[k]
        traj[k + 1, 0] = x + dt * (a * x - b * x * y)
        traj[k + 1, 1] = y + dt * (d * x * y - c * y)
    return traj[-1]


def sir_rk4(beta):
    """SIR model integrated by hand with classical RK4; returns the infected fraction at t = 20."""
    gamma = 0.1

    def f(t, s):
        S, I, R = s
        return np.array([-beta * S * I, beta * S * I - gamma * I, gamma * I])

    s = np.array([0.99, 0.01, 0.0])
    t, dt = 0.0, 0.5
    for _ in range(40):
        k1 = f(t, s)
        k2 = f(t + dt / 2, s + dt / 2 * k1)
        k3 = f(t + dt / 2, s + dt / 2 * k2)
        k4 = f(t + dt, s + dt * k3)
        s = s + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        t += dt
    return s[1]


def sir_solve_ivp(beta):
    """The same SIR model by scipy.integrate.solve_ivp (tight tolerances, t_eval at the end);
    returns the infected fraction at t = 20."""
    gamma = 0.1

    def f(t, s):
        S, I, R = s
        return [-beta * S * I, beta * S * I - gamma * I, gamma * I]

    sol = scipy.integrate.solve_ivp(f, (0.0, 20.0), [0.99, 0.01, 0.0], t_eval=[20.0],
                                    rtol=1e-10, atol=1e-12)
    return sol.y[1, -1]


def kalman_nll(q, zs):
    """Constant-velocity Kalman filter predict/update loop; returns the negative log-likelihood of
    the measurements zs for process-noise scale q."""
    dt = 0.1
    F = np.array([[1.0, dt], [0.0, 1.0]])
    H = np.array([[1.0, 0.0]])
    Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    R = np.array([[0.05]])
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
        nll += 0.5 * (np.log(2 * np.pi * S[0, 0]) + y[0] ** 2 / S[0, 0])
    return nll


def soft_life(grid):
    """Smooth Game-of-Life-like lattice update: neighbour sums by nested np.roll, sigmoid rules,
    relaxed towards the initial grid; returns the final grid."""
    g = grid.copy()
    for it in range(5):
        nb = sum(np.roll(np.roll(g, i, axis=0), j, axis=1)
                 for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0))
        g = 1.0 / (1.0 + np.exp(-4.0 * (nb - 2.5))) * (1.0 / (1.0 + np.exp(4.0 * (nb - 3.5))))
        g = 0.5 * g + 0.5 * grid
    return g


def life_int(board):
    """Conway's Game of Life on an integer board (periodic np.roll counts); 4 generations."""
    b = board.copy()
    for _ in range(4):
        n = sum(np.roll(np.roll(b, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j)
        b = ((n == 3) | ((b == 1) & (n == 2))).astype(b.dtype)
    return b


def crank_nicolson_dense(u0):
    """Crank-Nicolson for u_t = u_xx, zero Dirichlet ends, matrices built with np.diag and each
    step solved with np.linalg.solve; returns the final profile."""
    n = u0.size
    dx = 1.0 / (n + 1)
    dt = 1e-3
    r = dt / dx**2
    L = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    A = np.eye(n) - 0.5 * r * L
    B = np.eye(n) + 0.5 * r * L
    u = u0.copy()
    for _ in range(10):
        u = np.linalg.solve(A, B @ u)
    return u


def crank_nicolson_banded(params):
    """Crank-Nicolson with scipy.linalg.solve_banded; params = [diffusivity D, amplitude of the
    third mode]; the banded matrix is filled row by row; returns the final profile."""
    D, amp = params
    n = 20
    x = np.linspace(0, 1, n + 2)[1:-1]
    dx = x[1] - x[0]
    dt = 2e-3
    r = D * dt / dx**2
    ab = np.zeros((3, n), like=params)
    ab[0, 1:] = -0.5 * r
    ab[1, :] = 1 + r
    ab[2, :-1] = -0.5 * r
    u = np.sin(np.pi * x) + amp * np.sin(3 * np.pi * x)
    for _ in range(10):
        rhs = (1 - r) * u
        rhs[1:] += 0.5 * r * u[:-1]
        rhs[:-1] += 0.5 * r * u[1:]
        u = scipy.linalg.solve_banded((1, 1), ab, rhs)
    return u


def diffusion_2d(u0):
    """2D explicit diffusion on interior slices with zero-flux edges copied through row and column
    views; returns the final grid."""
    u = u0.copy()
    r = 0.2
    for _ in range(10):
        lap = u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]
        u[1:-1, 1:-1] += r * lap
        u[0, :] = u[1, :]
        u[-1, :] = u[-2, :]
        u[:, 0] = u[:, 1]
        u[:, -1] = u[:, -2]
    return u


def lorenz_trajectory(y0):
    """Lorenz system by explicit Euler into a preallocated (nt+1, 3) trajectory, unpacking
    x, y, z = Y[k]; returns the whole trajectory."""
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    dt, nt = 0.005, 30
    Y = np.empty((nt + 1, 3), like=y0)
    Y[0] = y0
    for k in range(nt):
        x, y, z = Y[k]
        Y[k + 1] = Y[k] + dt * np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], like=y0)
    return Y


def spring_chain(x0):
    """Chain of masses joined by cubic springs with fixed ends; symplectic Euler with np.diff and
    in-place updates of interior slices; returns the final interior positions."""
    n = x0.size
    x = np.concatenate(([0.0], x0, [n + 1.0]))
    v = np.zeros_like(x)
    k, k3, dt = 1.0, 0.1, 0.05
    for _ in range(20):
        ext = np.diff(x) - 1.0
        tension = k * ext + k3 * ext ** 3
        v[1:-1] += dt * (tension[1:] - tension[:-1])
        x[1:-1] += dt * v[1:-1]
    return x[1:-1]


def burgers_upwind(u0):
    """Burgers' equation with np.where upwinding plus a little viscosity, periodic by np.roll;
    returns the final state."""
    u = u0.astype(np.float64)
    dx, dt, nu = 0.1, 0.01, 0.05
    for _ in range(15):
        up = np.roll(u, -1)
        um = np.roll(u, 1)
        dudx = np.where(u > 0, (u - um) / dx, (up - u) / dx)
        u = u - dt * u * dudx + nu * dt / dx**2 * (up - 2 * u + um)
    return u


def kuramoto_order(theta0):
    """Kuramoto oscillators with all-to-all sine coupling, Heun (RK2); returns the modulus of the
    complex order parameter at the final time."""
    K = 1.5
    n = theta0.size
    omega = np.linspace(-0.5, 0.5, n)
    dt = 0.1
    th = theta0.copy()

    def f(t):
        return omega + K / n * np.sin(t[np.newaxis, :] - t[:, np.newaxis]).sum(axis=1)

    for _ in range(20):
        k1 = f(th)
        k2 = f(th + dt * k1)
        th = th + 0.5 * dt * (k1 + k2)
    return np.abs(np.mean(np.exp(1j * th)))


def odeint_compartments(k):
    """Two-compartment first-order kinetics with scipy.integrate.odeint (args=(k,)); returns the
    amount in compartment 2 at t = 3."""
    def rhs(y, t, k):
        return [-k[0] * y[0], k[0] * y[0] - k[1] * y[1]]
    t = np.linspace(0, 3, 31)
    sol = scipy.integrate.odeint(rhs, [1.0, 0.0], t, args=(k,), rtol=1e-11, atol=1e-12)
    return sol[-1, 1]


def heat_float32(u0):
    """FTCS heat steps on a float32 state with Python-float coefficients (NEP 50 keeps float32)."""
    u = u0.copy()
    r = 0.3
    for _ in range(10):
        u[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u


def langevin_fixed_seed(x0):
    """Overdamped Langevin in a double well, Euler-Maruyama with a fixed-seed local Generator
    (common random numbers); returns the final mean position."""
    rng = np.random.default_rng(42)
    x = np.array(x0, dtype=float)
    dt = 0.01
    for _ in range(30):
        force = -4 * x ** 3 + 4 * x
        x += force * dt + np.sqrt(2 * 0.1 * dt) * rng.standard_normal(x.shape)
    return x.mean()


def harmonic_chain_state(state):
    """state = [x; v] (2, n): symplectic Euler through the row views x, v = state, so the
    caller's array is advanced in place; returns the final energy."""
    x, v = state
    for _ in range(10):
        v -= 0.1 * (2 * x - np.roll(x, 1) - np.roll(x, -1))
        x += 0.1 * v
    return np.sum(x ** 2) + np.sum(v ** 2)


def fill_trajectory(y):
    """Fills the caller's preallocated trajectory y[1:] from y[0] (pendulum, Euler);
    returns the sum of the final state."""
    for k in range(y.shape[0] - 1):
        y[k + 1] = y[k] + 0.1 * np.stack([y[k, 1], -np.sin(y[k, 0])])
    return y[-1].sum()


def clipped_ftcs(u0):
    """Double-buffered heat steps with a sink, np.copyto between buffers, and the state clipped
    in place by a boolean mask (u[u > 0.8] = 0.8); returns the final state."""
    u = np.zeros_like(u0)
    np.copyto(u, u0)
    new = np.empty_like(u)
    for _ in range(5):
        new[1:-1] = u[1:-1] + 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2]) - 0.02
        new[0] = new[-1] = 0.0
        np.copyto(u, new)
        u[u > 0.8] = 0.8
    return u


def rk_with_out_buffer(y0):
    """Euler steps whose right-hand side writes into a preallocated buffer (rhs(y, out=k)),
    the SciPy/Fortran style; returns the final state."""
    def rhs(y, out):
        out[0] = y[1]
        out[1] = -np.sin(y[0]) - 0.1 * y[1]
        return out

    y = y0.copy()
    k = np.empty_like(y0)
    for _ in range(10):
        rhs(y, k)
        y = y + 0.1 * k
    return y


# ---- values, derivatives and compositions -------------------------------------------------

rng = np.random.default_rng(20240607)

PEND = np.array([[9.8, 0.1, 0.5, 0.0], [9.8, 0.2, 1.0, 0.3], [4.0, 0.0, 2.0, -1.0]])


def test_pendulum_rk4():
    p = PEND[1]
    assert_same(npfunc.jit(pendulum_rk4)(p), pendulum_rk4(p))
    g, v = npfunc.grad_and_value(pendulum_rk4)(p)
    assert_same(v, pendulum_rk4(p))
    J = fd(pendulum_rk4, p)
    assert_deriv(g, J)
    assert_deriv(npfunc.jacfwd(pendulum_rk4)(p), J)
    assert_deriv(npfunc.jit(npfunc.grad(pendulum_rk4))(p), J)
    assert_deriv(npfunc.grad(npfunc.jit(pendulum_rk4))(p), J)
    H = fd(npfunc.grad(pendulum_rk4), p)
    assert_deriv(npfunc.hessian(pendulum_rk4)(p), H, rtol=1e-5, atol=1e-6)
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(pendulum_rk4))(p), H, rtol=1e-5, atol=1e-6)
    t = np.array([0.3, -1.0, 0.5, 2.0])
    primal, tangent = npfunc.jvp(pendulum_rk4, (p,), (t,))
    assert_same(primal, pendulum_rk4(p))
    np.testing.assert_allclose(tangent, J @ t, rtol=1e-6)
    primal, pullback = npfunc.vjp(pendulum_rk4, p)
    assert_same(primal, pendulum_rk4(p))
    assert_deriv(pullback(np.float64(1.0))[0], J)


def test_pendulum_ensemble_vmap():
    want = loop(pendulum_rk4, PEND)
    assert_same(npfunc.vmap(pendulum_rk4)(PEND), want)
    assert_same(npfunc.vmap(npfunc.jit(pendulum_rk4))(PEND), want)
    assert_same(npfunc.jit(npfunc.vmap(pendulum_rk4))(PEND), want)
    assert_deriv(npfunc.vmap(npfunc.grad(pendulum_rk4))(PEND), np.stack([fd(pendulum_rk4, p) for p in PEND]))


def test_heat_ftcs():
    u0 = rng.random(10)
    assert_same(npfunc.jit(heat_ftcs)(u0), heat_ftcs(u0))
    J = fd(heat_ftcs, u0)
    assert_deriv(npfunc.jacrev(heat_ftcs)(u0), J)
    assert_deriv(npfunc.jacfwd(heat_ftcs)(u0), J)
    U = rng.random((5, 10))
    assert_same(npfunc.vmap(heat_ftcs)(U), loop(heat_ftcs, U))
    assert_same(npfunc.vmap(heat_ftcs, chunk_size=2)(U), loop(heat_ftcs, U))
    assert_same(npfunc.vmap(heat_ftcs, in_dims=1, out_dims=1)(U.T.copy()), loop(heat_ftcs, U).T)


def test_heat_neumann_inplace_caller_arrays():
    u = rng.random(10)
    plain = u.copy()
    want = heat_neumann_inplace(plain)
    got_arr = u.copy()
    assert_same(npfunc.jit(heat_neumann_inplace)(got_arr), want)
    np.testing.assert_array_equal(got_arr, plain)         # jit updates the caller's array
    # vmap over rows and over columns updates the caller's array as a loop over views does
    U = rng.random((3, 10))
    P = U.copy()
    want = np.stack([heat_neumann_inplace(P[i]) for i in range(3)])
    assert_same(npfunc.vmap(heat_neumann_inplace)(U), want)
    np.testing.assert_array_equal(U, P)
    U = rng.random((10, 3))
    P = U.copy()
    want = np.stack([heat_neumann_inplace(P[:, j]) for j in range(3)])
    assert_same(npfunc.vmap(heat_neumann_inplace, in_dims=1)(U), want)
    np.testing.assert_allclose(U, P, rtol=1e-15)
    # derivative of the returned mean
    u = rng.random(10)
    assert_deriv(npfunc.grad(heat_neumann_inplace)(u.copy()), fd(lambda x: heat_neumann_inplace(x.copy()), u))


def test_wave_leapfrog_speed():
    c = np.array(1.2)
    assert_same(npfunc.jit(wave_leapfrog)(c), wave_leapfrog(c))
    g, v = npfunc.grad_and_value(wave_leapfrog)(c)
    assert_same(v, wave_leapfrog(c))
    assert_deriv(g, fd(wave_leapfrog, c))
    cs = np.array([0.5, 1.0, 1.5])
    assert_same(npfunc.vmap(wave_leapfrog)(cs), loop(wave_leapfrog, cs))
    assert_deriv(npfunc.vmap(npfunc.grad(wave_leapfrog))(cs), np.stack([fd(wave_leapfrog, c) for c in cs]))


def test_advection_upwind():
    u0 = rng.random(10)
    assert_same(npfunc.jit(advection_upwind)(u0), advection_upwind(u0))
    J = fd(advection_upwind, u0)
    assert_deriv(npfunc.jacrev(advection_upwind)(u0), J)
    assert_deriv(npfunc.jacfwd(advection_upwind)(u0), J)
    U = rng.random((3, 10))
    assert_same(npfunc.vmap(advection_upwind)(U), loop(advection_upwind, U))


def test_nbody_verlet():
    p0 = rng.random((4, 2))
    assert_same(npfunc.jit(nbody_verlet)(p0), nbody_verlet(p0))
    J = fd(nbody_verlet, p0)
    assert_deriv(npfunc.jacrev(nbody_verlet)(p0), J)
    assert_deriv(npfunc.jacfwd(nbody_verlet)(p0), J)
    P = rng.random((3, 4, 2))
    np.testing.assert_allclose(npfunc.vmap(nbody_verlet)(P), loop(nbody_verlet, P), rtol=1e-12)
    loss = lambda p: np.sum(nbody_verlet(p)[:, 0] ** 2)
    assert_deriv(npfunc.vmap(npfunc.grad(loss))(P), np.stack([fd(loss, p) for p in P]))


def test_lotka_volterra_params():
    th = np.array([1.1, 0.4, 0.4, 0.1])
    assert_same(npfunc.jit(lotka_volterra_euler)(th), lotka_volterra_euler(th))
    J = fd(lotka_volterra_euler, th)
    assert_deriv(npfunc.jacrev(lotka_volterra_euler)(th), J)
    assert_deriv(npfunc.jacfwd(lotka_volterra_euler)(th), J)
    T = th * np.array([[1.0], [0.9], [1.1]])
    np.testing.assert_allclose(npfunc.vmap(lotka_volterra_euler)(T), loop(lotka_volterra_euler, T), rtol=1e-12)


def test_sir_rk4_against_solve_ivp():
    b = np.array(0.5)
    assert_same(npfunc.jit(sir_rk4)(b), sir_rk4(b))
    g_rk4 = npfunc.grad(sir_rk4)(b)
    assert_deriv(g_rk4, fd(sir_rk4, b))
    g_ivp = npfunc.grad(sir_solve_ivp)(b)
    assert_deriv(g_ivp, fd(sir_solve_ivp, b), rtol=1e-5)
    np.testing.assert_allclose(g_rk4, g_ivp, rtol=1e-3)      # the two integrators agree
    bs = np.array([0.3, 0.5, 0.8])
    assert_same(npfunc.vmap(sir_rk4)(bs), loop(sir_rk4, bs))
    np.testing.assert_allclose(npfunc.vmap(sir_solve_ivp)(bs), loop(sir_solve_ivp, bs), rtol=1e-9)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(sir_solve_ivp))(bs),
                               np.stack([npfunc.grad(sir_solve_ivp)(b) for b in bs]), rtol=1e-8)


def test_kalman_filter():
    zs = np.cumsum(0.1 * rng.standard_normal(12)) + 0.2 * rng.standard_normal(12)
    f = lambda q: kalman_nll(q, zs)
    q = np.array(0.7)
    assert_same(npfunc.jit(f)(q), f(q))
    assert_deriv(npfunc.grad(f)(q), fd(f, q))
    assert_deriv(npfunc.hessian(f)(q), fd(npfunc.grad(f), q))
    qs = np.array([0.3, 0.7, 1.5])
    assert_same(npfunc.vmap(f)(qs), loop(f, qs))
    assert_deriv(npfunc.vmap(npfunc.grad(f))(qs), np.stack([fd(f, q) for q in qs]))
    g = lambda z: kalman_nll(0.7, z)
    assert_deriv(npfunc.grad(g)(zs), fd(g, zs))


def test_soft_life():
    g0 = rng.random((5, 5))
    assert_same(npfunc.jit(soft_life)(g0), soft_life(g0))
    J = fd(soft_life, g0)
    assert_deriv(npfunc.jacrev(soft_life)(g0), J)
    assert_deriv(npfunc.jacfwd(soft_life)(g0), J)
    G = rng.random((3, 5, 5))
    assert_same(npfunc.vmap(soft_life)(G), loop(soft_life, G))


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_])
def test_life_int(dtype):
    B = (rng.random((3, 6, 6)) < 0.4).astype(dtype)
    for b in B:
        assert_same(npfunc.jit(life_int)(b), life_int(b), rtol=0)
    assert_same(npfunc.vmap(life_int)(B), loop(life_int, B), rtol=0)


def test_crank_nicolson_dense():
    u0 = rng.random(8)
    np.testing.assert_allclose(npfunc.jit(crank_nicolson_dense)(u0), crank_nicolson_dense(u0), rtol=1e-12)
    J = fd(crank_nicolson_dense, u0)
    assert_deriv(npfunc.jacrev(crank_nicolson_dense)(u0), J)
    assert_deriv(npfunc.jacfwd(crank_nicolson_dense)(u0), J)
    U = rng.random((3, 8))
    np.testing.assert_allclose(npfunc.vmap(crank_nicolson_dense)(U), loop(crank_nicolson_dense, U), rtol=1e-12)


def test_crank_nicolson_banded():
    p = np.array([1.0, 0.3])
    assert_same(npfunc.jit(crank_nicolson_banded)(p), crank_nicolson_banded(p))
    J = fd(crank_nicolson_banded, p)
    assert_deriv(npfunc.jacrev(crank_nicolson_banded)(p), J)
    assert_deriv(npfunc.jacfwd(crank_nicolson_banded)(p), J)
    P = np.array([[1.0, 0.3], [0.5, 0.0], [2.0, -0.2]])
    np.testing.assert_allclose(npfunc.vmap(crank_nicolson_banded)(P), loop(crank_nicolson_banded, P), rtol=1e-12)


def test_diffusion_2d():
    u0 = rng.random((6, 6))
    assert_same(npfunc.jit(diffusion_2d)(u0), diffusion_2d(u0))
    J = fd(diffusion_2d, u0)
    assert_deriv(npfunc.jacrev(diffusion_2d)(u0), J)
    assert_deriv(npfunc.jacfwd(diffusion_2d)(u0), J)
    U = rng.random((3, 6, 6))
    assert_same(npfunc.vmap(diffusion_2d)(U), loop(diffusion_2d, U))


def test_lorenz_trajectory():
    y0 = np.array([1.0, 1.0, 1.0])
    assert_same(npfunc.jit(lorenz_trajectory)(y0), lorenz_trajectory(y0))
    J = fd(lorenz_trajectory, y0)
    assert_deriv(npfunc.jacrev(lorenz_trajectory)(y0), J)
    assert_deriv(npfunc.jacfwd(lorenz_trajectory)(y0), J)
    Y0 = y0 + 0.1 * rng.standard_normal((3, 3))
    assert_same(npfunc.vmap(lorenz_trajectory)(Y0), loop(lorenz_trajectory, Y0))
    final = lambda y: np.sum(lorenz_trajectory(y)[-1] ** 2)
    assert_deriv(npfunc.hessian(final)(y0), fd(npfunc.grad(final), y0), rtol=1e-5, atol=1e-6)


def test_spring_chain():
    x0 = np.arange(1.0, 6.0) + 0.1 * rng.standard_normal(5)
    assert_same(npfunc.jit(spring_chain)(x0), spring_chain(x0))
    J = fd(spring_chain, x0)
    assert_deriv(npfunc.jacrev(spring_chain)(x0), J)
    assert_deriv(npfunc.jacfwd(spring_chain)(x0), J)
    X = np.arange(1.0, 6.0) + 0.1 * rng.standard_normal((3, 5))
    assert_same(npfunc.vmap(spring_chain)(X), loop(spring_chain, X))
    loss = lambda x: np.sum(spring_chain(x) ** 2)
    assert_deriv(npfunc.hessian(loss)(x0), fd(npfunc.grad(loss), x0), rtol=1e-5, atol=1e-6)


def test_burgers_upwind():
    u0 = np.sin(np.linspace(0, 2 * np.pi, 10, endpoint=False)) + 0.1
    assert_same(npfunc.jit(burgers_upwind)(u0), burgers_upwind(u0))
    J = fd(burgers_upwind, u0, eps=1e-6)
    assert_deriv(npfunc.jacrev(burgers_upwind)(u0), J)
    assert_deriv(npfunc.jacfwd(burgers_upwind)(u0), J)
    U = rng.standard_normal((3, 10))
    assert_same(npfunc.vmap(burgers_upwind)(U), loop(burgers_upwind, U))


def test_kuramoto_order():
    th = rng.random(6)
    assert_same(npfunc.jit(kuramoto_order)(th), kuramoto_order(th))
    g, v = npfunc.grad_and_value(kuramoto_order)(th)
    assert_same(v, kuramoto_order(th))
    assert_deriv(g, fd(kuramoto_order, th))
    T = rng.random((3, 6))
    assert_same(npfunc.vmap(kuramoto_order)(T), loop(kuramoto_order, T))


def test_odeint_compartments():
    k = np.array([1.0, 0.5])
    assert_deriv(npfunc.grad(odeint_compartments)(k), fd(odeint_compartments, k), rtol=1e-6)
    K = np.array([[1.0, 0.5], [0.7, 0.3], [2.0, 1.0]])
    np.testing.assert_allclose(npfunc.vmap(odeint_compartments)(K), loop(odeint_compartments, K), rtol=1e-10)


def test_heat_float32_dtype():
    u = rng.random(10).astype(np.float32)
    assert_same(npfunc.jit(heat_float32)(u), heat_float32(u), rtol=0)
    assert npfunc.jacrev(heat_float32)(u).dtype == np.float32
    assert npfunc.grad(lambda x: heat_float32(x).sum())(u).dtype == np.float32
    U = rng.random((3, 10)).astype(np.float32)
    assert_same(npfunc.vmap(heat_float32)(U), loop(heat_float32, U), rtol=1e-6)


def test_langevin_fixed_seed():
    x0 = rng.standard_normal(5)
    assert_same(npfunc.jit(langevin_fixed_seed)(x0), langevin_fixed_seed(x0))
    assert_deriv(npfunc.grad(langevin_fixed_seed)(x0), fd(langevin_fixed_seed, x0))
    X = rng.standard_normal((3, 5))
    assert_same(npfunc.vmap(langevin_fixed_seed)(X), loop(langevin_fixed_seed, X))


def test_harmonic_chain_state_views():
    S = rng.random((2, 5))
    P = S.copy()
    want = harmonic_chain_state(P)
    assert_same(npfunc.jit(harmonic_chain_state)(S), want)
    np.testing.assert_array_equal(S, P)
    SS = rng.random((3, 2, 5))
    PP = SS.copy()
    want = np.stack([harmonic_chain_state(PP[i]) for i in range(3)])
    assert_same(npfunc.vmap(harmonic_chain_state)(SS), want)
    np.testing.assert_array_equal(SS, PP)
    SS = rng.random((2, 5, 3))
    PP = SS.copy()
    want = np.stack([harmonic_chain_state(PP[..., i]) for i in range(3)])
    assert_same(npfunc.vmap(harmonic_chain_state, in_dims=-1)(SS), want)
    np.testing.assert_allclose(SS, PP, rtol=1e-15)
    S = rng.random((2, 5))
    f = lambda s: harmonic_chain_state(s.copy())
    assert_deriv(npfunc.grad(harmonic_chain_state)(S.copy()), fd(f, S))
    assert_deriv(npfunc.hessian(harmonic_chain_state)(S.copy()), fd(npfunc.grad(f), S), rtol=1e-5, atol=1e-6)


def test_fill_trajectory_argument():
    Y = rng.random((6, 2))
    P = Y.copy()
    want = fill_trajectory(P)
    assert_same(npfunc.jit(fill_trajectory)(Y), want)
    np.testing.assert_array_equal(Y, P)
    Y = rng.random((6, 2))
    assert_deriv(npfunc.grad(fill_trajectory)(Y.copy()), fd(lambda y: fill_trajectory(y.copy()), Y))
    YY = rng.random((3, 6, 2))
    PP = YY.copy()
    want = np.stack([fill_trajectory(PP[i]) for i in range(3)])
    assert_same(npfunc.vmap(fill_trajectory)(YY), want)
    np.testing.assert_array_equal(YY, PP)


def test_clipped_ftcs():
    u0 = rng.random(7)
    assert_same(npfunc.jit(clipped_ftcs)(u0), clipped_ftcs(u0))
    assert_deriv(npfunc.jacrev(clipped_ftcs)(u0), fd(clipped_ftcs, u0, eps=1e-6))
    U = rng.random((3, 7))
    assert_same(npfunc.vmap(clipped_ftcs)(U), loop(clipped_ftcs, U))


def test_rk_with_out_buffer():
    y0 = np.array([0.5, 0.1])
    assert_same(npfunc.jit(rk_with_out_buffer)(y0), rk_with_out_buffer(y0))
    J = fd(rk_with_out_buffer, y0)
    assert_deriv(npfunc.jacrev(rk_with_out_buffer)(y0), J)
    assert_deriv(npfunc.jacfwd(rk_with_out_buffer)(y0), J)
    Y = np.array([[0.5, 0.1], [1.0, 0.2], [-0.3, 0.0]])
    assert_same(npfunc.vmap(rk_with_out_buffer)(Y), loop(rk_with_out_buffer, Y))


def test_jit_step_on_row_views_of_history():
    """A jitted in-place step applied to successive rows of a preallocated history."""
    def step(u_new, u_old, r):
        u_new[1:-1] = u_old[1:-1] + r * (u_old[2:] - 2 * u_old[1:-1] + u_old[:-2])
        u_new[0] = u_new[1]
        u_new[-1] = u_new[-2]

    def run(stepper):
        U = np.zeros((8, 7))
        U[0] = np.sin(np.linspace(0, 3, 7))
        for k in range(7):
            stepper(U[k + 1], U[k], np.float64(0.2 + 0.01 * k))
        return U
    np.testing.assert_array_equal(run(npfunc.jit(step)), run(step))


# ---- refusals that name their fix (regression tests) ----------------------------------------

def test_solve_ivp_without_t_eval_refused_under_vmap():
    def sir_final(beta):
        def f(t, s):
            S, I, R = s
            return [-beta * S * I, beta * S * I - 0.1 * I, 0.1 * I]
        return scipy.integrate.solve_ivp(f, (0.0, 20.0), [0.99, 0.01, 0.0], rtol=1e-8).y[1, -1]
    with pytest.raises(NpfuncError, match="t_eval"):
        npfunc.vmap(sir_final)(np.array([0.3, 0.5]))


def test_data_dependent_while_loop_refused():
    def sandpile(h):
        """Abelian sandpile: topple until stable."""
        h = h.copy()
        while (h >= 4).any():
            t = h >= 4
            h[t] -= 4
            h[1:, :] += t[:-1, :]
            h[:-1, :] += t[1:, :]
            h[:, 1:] += t[:, :-1]
            h[:, :-1] += t[:, 1:]
        return h
    H = rng.integers(0, 6, (5, 5))
    with pytest.raises(NpfuncError, match="np.where"):
        npfunc.jit(sandpile)(H)
    with pytest.raises(NpfuncError, match="np.where"):
        npfunc.vmap(sandpile)(np.stack([H, H + 1]))


def test_global_random_draw_refused_under_jit():
    def noisy_euler(x):
        for _ in range(3):
            x = x - 0.1 * x + 0.05 * np.random.standard_normal(x.shape)
        return x
    with pytest.raises(NpfuncError, match="random"):
        npfunc.jit(noisy_euler)(np.ones(3))


# ---- findings ------------------------------------------------------------------------------

def pendulum_plain_buffer(params):
    """The pendulum as usually written: history preallocated with plain np.zeros."""
    g, c, th0, om0 = params
    dt = 0.05
    y = np.zeros((41, 2))
    y[0] = [th0, om0]
    for k in range(40):
        th, om = y[k]
        y[k + 1] = [th + dt * om, om + dt * (-g * np.sin(th) - c * om)]
    return 0.5 * y[-1, 1] ** 2 + g * (1 - np.cos(y[-1, 0]))


def test_plain_preallocated_history_grad():
    """The natural np.zeros-preallocated history (once refused, needing like=): grad is
    the differences'."""
    p = PEND[1]
    assert_deriv(npfunc.grad(pendulum_plain_buffer)(p), fd(pendulum_plain_buffer, p))


def test_plain_preallocated_history_matches_numpy_under_jit_grad_jacfwd():
    """The same program (once refused under jit, grad and jacfwd, naming like=): jit's
    recording call and replays give NumPy's values, grad_and_value's value is NumPy's
    and its gradient, as jacfwd's Jacobian, the differences'."""
    p = PEND[1]
    jitted = npfunc.jit(pendulum_plain_buffer)
    assert_same(jitted(p), pendulum_plain_buffer(p))
    for q in PEND:  # replays, with new values
        assert_same(jitted(q), pendulum_plain_buffer(q))
    J = fd(pendulum_plain_buffer, p)
    g, v = npfunc.grad_and_value(pendulum_plain_buffer)(p)
    assert_same(v, pendulum_plain_buffer(p))
    assert_deriv(g, J)
    assert_deriv(npfunc.jacfwd(pendulum_plain_buffer)(p), J)


def lv_plain_scalar_writes(theta):
    """Lotka-Volterra with element writes traj[k + 1, 0] = ... into a plain np.empty trajectory."""
    a, b, c, d = theta
    traj = np.empty((51, 2))
    traj[0, 0], traj[0, 1] = 10.0, 5.0
    for k in range(50):
        x, y = traj[k]
        traj[k + 1, 0] = x + 0.01 * (a * x - b * x * y)
        traj[k + 1, 1] = y + 0.01 * (d * x * y - c * y)
    return traj[-1]


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_plain_scalar_writes_match_differences(transform):
    """Element writes into a plain np.empty trajectory (once refused, naming like=):
    the Jacobian is the differences'."""
    th = np.array([1.1, 0.4, 0.4, 0.1])
    assert_deriv(getattr(npfunc, transform)(lv_plain_scalar_writes)(th), fd(lv_plain_scalar_writes, th))


def test_plain_scalar_writes_match_numpy_under_jit():
    """The same program under jit (once refused): the recording call and replays with
    new values give NumPy's values."""
    th = np.array([1.1, 0.4, 0.4, 0.1])
    jitted = npfunc.jit(lv_plain_scalar_writes)
    assert_same(jitted(th), lv_plain_scalar_writes(th))
    for t in (0.9 * th, th[::-1].copy(), th):  # replays, with new values
        assert_same(jitted(t), lv_plain_scalar_writes(t))


def life_convolve_wrap(g0):
    """Smooth life with neighbour counts by scipy.signal.convolve2d(boundary='wrap')."""
    g = g0.copy()
    k = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], float)
    for _ in range(3):
        n = scipy.signal.convolve2d(g, k, mode='same', boundary='wrap')
        g = np.tanh(n - 2.5) * 0.5 + 0.5 * g
    return g


@pytest.mark.parametrize("transform", ["jit", "jacrev", "vmap"])
def test_convolve2d_wrap_under_transforms(transform):
    g0 = rng.random((2, 5, 5)) if transform == "vmap" else rng.random((5, 5))
    got = getattr(npfunc, transform)(life_convolve_wrap)(g0)
    if transform == "jit":
        np.testing.assert_allclose(got, life_convolve_wrap(g0), rtol=1e-12)
    elif transform == "vmap":
        np.testing.assert_allclose(got, np.stack([life_convolve_wrap(g) for g in g0]), rtol=1e-12)
    else:
        np.testing.assert_allclose(got, numerical_jacobian(life_convolve_wrap, g0, order=4), rtol=1e-6, atol=1e-8)


def masked_relax(u0):
    """Relaxation steps where cells above threshold are damped in place: u[u > 0.5] *= 0.9."""
    u = u0.copy()
    for _ in range(4):
        u[1:-1] += 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        u[u > 0.5] *= 0.9
    return u


@pytest.mark.xfail(strict=True, reason="masked augmented assignment u[mask] *= c refused (u[mask] = c works)")
def test_masked_inplace_multiply_jit_vmap():
    u0 = rng.random(8)
    assert_same(npfunc.jit(masked_relax)(u0), masked_relax(u0))
    U = rng.random((3, 8))
    assert_same(npfunc.vmap(masked_relax)(U), loop(masked_relax, U))


def test_masked_inplace_multiply_grad_ok():
    u0 = rng.random(8)
    assert_deriv(npfunc.jacrev(masked_relax)(u0), fd(masked_relax, u0, eps=1e-7))


def test_jit_step_on_column_views_of_history():
    def step(u_new, u_old):
        u_new[1:-1] = u_old[1:-1] + 0.2 * (u_old[2:] - 2 * u_old[1:-1] + u_old[:-2])
        u_new[0] = u_new[1]
        u_new[-1] = u_new[-2]

    def run(stepper):
        U = np.zeros((7, 8))
        U[:, 0] = np.sin(np.linspace(0, 3, 7))
        for k in range(7):
            stepper(U[:, k + 1], U[:, k])
        return U
    np.testing.assert_array_equal(run(npfunc.jit(step)), run(step))


def reaction_diffusion(a0):
    """Two-species reaction-diffusion with scipy.ndimage.laplace(mode='wrap') and out= ufuncs."""
    a = a0.copy()
    b = 1.0 - a0
    dt = 0.2
    tmp = np.empty_like(a)
    for _ in range(5):
        la = scipy.ndimage.laplace(a, mode='wrap')
        lb = scipy.ndimage.laplace(b, mode='wrap')
        ab2 = a * b * b
        np.multiply(dt, 0.16 * la - ab2 + 0.035 * (1 - a), out=tmp)
        np.add(a, tmp, out=a)
        b += dt * (0.08 * lb + ab2 - 0.095 * b)
    return a


@pytest.mark.xfail(strict=True, reason="scipy.ndimage.laplace refused (ndimage computes on np.asarray of its input, "
                   "even with SCIPY_ARRAY_API=1; the stencil written with slices works)")
def test_ndimage_laplace_reaction_diffusion():
    a0 = rng.random((6, 6))
    assert_same(npfunc.jit(reaction_diffusion)(a0), reaction_diffusion(a0))
    assert_deriv(npfunc.jacrev(reaction_diffusion)(a0), fd(reaction_diffusion, a0))


def test_ndimage_laplace_refusal_names_fix():
    with pytest.raises(NpfuncError, match="SCIPY_ARRAY_API"):
        npfunc.jacrev(reaction_diffusion)(rng.random((6, 6)))


def ising_where(spins):
    """Checkerboard Metropolis sweep written with np.where and global np.random; magnetisation."""
    s = spins.copy()
    L = s.shape[0]
    ii, jj = np.indices((L, L))
    for color in (0, 1):
        mask = (ii + jj) % 2 == color
        nb = np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)
        accept = np.random.random((L, L)) < np.exp(-0.4 * 2 * s * nb)
        s = np.where(mask & accept, -s, s)
    return s.mean()


@pytest.mark.parametrize("randomness", ["error", "different"])
def test_vmap_ensemble_of_monte_carlo_chains(randomness):
    S = np.where(rng.random((8, 8)) < 0.5, 1, -1)
    batch = np.stack([S, S, S, S])          # identical chains: a loop gives independent draws
    try:
        out = npfunc.vmap(ising_where, randomness=randomness)(batch)
    except npfunc.errors.RandomnessError:
        return                              # a refusal is fine
    assert len(np.unique(out)) > 1


def test_grad_leaves_in_place_update_of_argument():
    u = rng.random(10)
    plain = u.copy()
    heat_neumann_inplace(plain)
    npfunc.grad(heat_neumann_inplace)(u)
    np.testing.assert_array_equal(u, plain)
