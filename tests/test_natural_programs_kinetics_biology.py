"""Natural programs from chemical kinetics, pharmacology and population
biology, written first as plain NumPy/SciPy the way a practitioner writes
them (stoichiometry matrices, hand-rolled RK4 loops with preallocated
trajectories, np.roll Laplacians updated in place, SciPy's integrators,
fitters and root finders), then run under npfunc's transforms and compared
with the plain program (values, dtypes, side effects) and with central
differences (derivatives)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special

import npfunc
from npfunc.testing import numerical_jacobian

# ---- reaction networks -----------------------------------------------------------------------

# A + B -> C (k0), C -> A + B (k1), C -> D (k2), 2 A -> E (k3)
_STOICH = np.array([
    # r0   r1   r2   r3
    [-1.0, 1.0, 0.0, -2.0],  # A
    [-1.0, 1.0, 0.0, 0.0],   # B
    [1.0, -1.0, -1.0, 0.0],  # C
    [0.0, 0.0, 1.0, 0.0],    # D
    [0.0, 0.0, 0.0, 1.0],    # E
])
_ORDERS = np.array([
    # A    B    C    D    E     (reactant orders of each reaction)
    [1.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0],
    [2.0, 0.0, 0.0, 0.0, 0.0],
])
_NET_T = np.linspace(0.0, 5.0, 11)


def mass_action_network(log_k):
    """Mass-action network dc/dt = S @ (k * prod(c**orders)), integrated with
    solve_ivp on a fixed output grid; returns the D and E yields at the end
    and the time-averaged C (trapezoid over the output grid)."""
    k = np.exp(log_k)

    def rhs(t, c):
        rates = k * np.prod(c[None, :] ** _ORDERS, axis=1)
        return _STOICH @ rates

    c0 = np.array([1.0, 0.8, 0.0, 0.0, 0.0])
    sol = scipy.integrate.solve_ivp(rhs, (0.0, 5.0), c0, t_eval=_NET_T, rtol=1e-10, atol=1e-12)
    C = sol.y
    mean_c = np.trapezoid(C[2], sol.t) / 5.0
    return np.array([C[3, -1], C[4, -1], mean_c])


def enzyme_rk4(params):
    """E + S <-> ES -> E + P with a hand-written RK4 loop into a preallocated
    trajectory; returns the product curve at every step."""
    kf, kr, kcat = params
    dt, nsteps = 0.05, 60

    def f(y):
        e, s, es, p = y
        v1 = kf * e * s - kr * es
        v2 = kcat * es
        return np.array([-v1 + v2, -v1, v1 - v2, v2])

    Y = np.empty((nsteps + 1, 4))
    Y[0] = [1.0, 5.0, 0.0, 0.0]
    for i in range(nsteps):
        y = Y[i]
        k1 = f(y)
        k2 = f(y + 0.5 * dt * k1)
        k3 = f(y + 0.5 * dt * k2)
        k4 = f(y + dt * k3)
        Y[i + 1] = y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return Y[::10, 3]


def robertson_stiff(log_k):
    """Robertson's stiff chemistry problem with solve_ivp(method='BDF') and an
    analytic Jacobian; returns y2 (scaled) and y3 at the output times."""
    k1, k2, k3 = np.exp(log_k)

    def rhs(t, y):
        return [-k1 * y[0] + k3 * y[1] * y[2],
                k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
                k2 * y[1] ** 2]

    def jac(t, y):
        return [[-k1, k3 * y[2], k3 * y[1]],
                [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                [0.0, 2 * k2 * y[1], 0.0]]

    t_eval = np.array([0.1, 1.0, 10.0])
    sol = scipy.integrate.solve_ivp(rhs, (0.0, 10.0), [1.0, 0.0, 0.0], method="BDF", jac=jac,
                                    t_eval=t_eval, rtol=1e-9, atol=1e-12)
    return np.concatenate([1e4 * sol.y[1], sol.y[2]])


def lotka_volterra_odeint(theta):
    """Lotka-Volterra with odeint; the right-hand side unpacks the state and
    returns a list; returns the prey and predator curves stacked."""
    a, b, c, d = theta

    def lv(z, t):
        x, y = z
        return [a * x - b * x * y, -c * y + d * x * y]

    t = np.linspace(0.0, 6.0, 7)
    z = scipy.integrate.odeint(lv, [2.0, 1.0], t, rtol=1e-11, atol=1e-12)
    return z.ravel()


def logistic_euler_trajectory(theta):
    """Logistic growth dN/dt = r N (1 - N/K) by explicit Euler with an
    in-place update of the state, recording the population into a list."""
    r, K = theta
    N = np.array([0.05])
    dt = 0.1
    traj = []
    for _ in range(40):
        N += dt * r * N * (1 - N / K)
        traj.append(N.copy())
    return np.concatenate(traj)


# ---- enzyme kinetics fits --------------------------------------------------------------------

_S_CONC = np.array([0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])


def michaelis_menten_fit(v_obs):
    """Fit Vmax and Km of v = Vmax S / (Km + S) by scipy.optimize.least_squares
    (starting from a Lineweaver-Burk estimate); returns (Vmax, Km)."""
    slope, intercept = np.polyfit(1.0 / _S_CONC, 1.0 / v_obs, 1)
    p0 = np.array([1.0 / intercept, slope / intercept])

    def resid(p):
        return p[0] * _S_CONC / (p[1] + _S_CONC) - v_obs

    res = scipy.optimize.least_squares(resid, p0, xtol=1e-14, ftol=1e-14, gtol=1e-14)
    return res.x


def hill_curve_fit(y_obs):
    """Fit a Hill equation (top, EC50, n) with scipy.optimize.curve_fit;
    returns the parameters."""
    def hill(x, top, ec50, n):
        return top * x ** n / (ec50 ** n + x ** n)

    popt, _ = scipy.optimize.curve_fit(hill, _S_CONC, y_obs, p0=[1.0, 1.0, 1.0])
    return popt


# ---- pharmacokinetics -------------------------------------------------------------------------

_PK_T = np.arange(0.0, 48.0, 0.5)


def pk_multiple_dose_convolve(params):
    """One-compartment oral absorption; a dosing schedule (every 12 h) convolved
    with the unit impulse response; AUC by np.trapezoid and Cmax."""
    ka, ke, V = params
    impulse = ka / (V * (ka - ke)) * (np.exp(-ke * _PK_T) - np.exp(-ka * _PK_T))
    doses = np.zeros_like(_PK_T)
    doses[::24] = 100.0
    conc = np.convolve(doses, impulse)[: len(_PK_T)]
    auc = np.trapezoid(conc, _PK_T)
    return np.array([auc, conc.max(), conc[-1]])


def two_compartment_auc(params):
    """Two-compartment IV bolus: hybrid rate constants from the micro constants
    (roots of the characteristic quadratic), biexponential concentration,
    AUC by Simpson's rule and a log-linear terminal half-life."""
    k10, k12, k21 = params
    s = k10 + k12 + k21
    disc = np.sqrt(s * s - 4 * k10 * k21)
    alpha = 0.5 * (s + disc)
    beta = 0.5 * (s - disc)
    dose, V1 = 100.0, 10.0
    A = dose / V1 * (alpha - k21) / (alpha - beta)
    B = dose / V1 * (k21 - beta) / (alpha - beta)
    t = np.linspace(0.0, 24.0, 49)
    c = A * np.exp(-alpha * t) + B * np.exp(-beta * t)
    auc = scipy.integrate.simpson(c, x=t)
    tail = slice(-10, None)
    slope = np.polyfit(t[tail], np.log(c[tail]), 1)[0]
    return np.array([auc, np.log(2) / -slope])


# ---- reaction-diffusion -----------------------------------------------------------------------


def gray_scott(u_init):
    """Gray-Scott reaction-diffusion on a periodic 12x12 grid: five-point
    Laplacian with np.roll, explicit steps updating U and V in place; returns
    the mean of U and the V field's variance."""
    U = u_init.reshape(12, 12).copy()
    V = 0.25 * (1.0 - U)
    Du, Dv, F, kk, dt = 0.16, 0.08, 0.035, 0.065, 1.0

    def lap(Z):
        return (np.roll(Z, 1, 0) + np.roll(Z, -1, 0) + np.roll(Z, 1, 1) + np.roll(Z, -1, 1) - 4 * Z)

    for _ in range(15):
        uvv = U * V * V
        dU = Du * lap(U) - uvv + F * (1 - U)
        dV = Dv * lap(V) + uvv - (F + kk) * V
        U += dt * dU
        V += dt * dV
    return np.array([U.mean(), V.var()])


def fisher_kpp_slices(u0):
    """Fisher-KPP u_t = D u_xx + r u (1-u) in 1-D with zero-flux ends: the
    Laplacian written into a preallocated buffer through slices, the update
    done in place with np.multiply/np.add out=."""
    u = u0.copy()
    n = u.size
    lap = np.empty(n)
    tmp = np.empty(n)
    D, r, dt, dx = 0.5, 1.0, 0.1, 1.0
    for _ in range(20):
        lap[1:-1] = u[2:] - 2 * u[1:-1] + u[:-2]
        lap[0] = 2 * (u[1] - u[0])
        lap[-1] = 2 * (u[-2] - u[-1])
        np.multiply(u, 1 - u, out=tmp)
        tmp *= r
        tmp += D / dx**2 * lap
        np.add(u, dt * tmp, out=u)
    return u


# ---- population genetics ----------------------------------------------------------------------


def wright_fisher(p0, seed=7):
    """Wright-Fisher drift with selection: N diploids, binomial sampling each
    generation from a fixed-seed Generator; returns the frequency path."""
    rng = np.random.default_rng(seed)
    N, s, gens = 50, 0.05, 30
    p = p0
    path = [p]
    for _ in range(gens):
        p_sel = p * (1 + s) / (1 + s * p)
        p = rng.binomial(2 * N, p_sel) / (2 * N)
        path.append(p)
    return np.array(path)


def wright_fisher_diffusion(s):
    """The diffusion approximation of Wright-Fisher (Euler-Maruyama with a
    fixed-seed normal increment, clipped to [0, 1]); mean final frequency of
    200 replicate populations."""
    rng = np.random.default_rng(11)
    Ne, dt = 100.0, 0.05
    p = np.full(200, 0.3)
    for _ in range(40):
        dW = rng.standard_normal(200) * np.sqrt(dt)
        p = p + s * p * (1 - p) * dt + np.sqrt(p * (1 - p) / (2 * Ne)) * dW
        p = np.clip(p, 1e-6, 1 - 1e-6)
    return p.mean()


def selection_recursion(s):
    """Deterministic haploid selection p' = p w1 / (p w1 + q w0) for three
    alleles' fitness differences, 25 generations, as a list of arrays."""
    w = 1.0 + np.concatenate([[0.0], s])
    p = np.array([0.6, 0.3, 0.1])
    hist = [p]
    for _ in range(25):
        wbar = p @ w
        p = p * w / wbar
        hist.append(p)
    return np.stack(hist)[:, 1:].ravel()


# ---- dose-response, temperature, equilibria ---------------------------------------------------

_DOSES = np.array([0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
_N_ANIMALS = np.array([20, 20, 20, 20, 20, 20, 20])
_N_DEAD = np.array([1, 2, 4, 9, 14, 18, 19])


def dose_response_nll(theta):
    """Logistic dose-response on log dose: p = expit(a + b log10 d); binomial
    negative log-likelihood with scipy.special.xlogy and the LD50 by logit."""
    a, b = theta
    p = scipy.special.expit(a + b * np.log10(_DOSES))
    nll = -np.sum(scipy.special.xlogy(_N_DEAD, p) + scipy.special.xlogy(_N_ANIMALS - _N_DEAD, 1 - p))
    logit_emp = scipy.special.logit((_N_DEAD + 0.5) / (_N_ANIMALS + 1.0))
    fit_err = np.sum((logit_emp - (a + b * np.log10(_DOSES))) ** 2)
    return nll + 0.01 * fit_err


_TEMPS = np.array([280.0, 300.0, 320.0, 340.0, 360.0])
_R = 8.314462618


def arrhenius_eyring(params):
    """Arrhenius rate constants k = A exp(-Ea / RT) over temperatures; the
    apparent activation energy recovered by np.polyfit of ln k on 1/T, and the
    equilibrium constant of the forward/backward pair via van 't Hoff."""
    lnA, Ea, lnA_b, Ea_b = params
    kf = np.exp(lnA - Ea / (_R * _TEMPS))
    kb = np.exp(lnA_b - Ea_b / (_R * _TEMPS))
    Keq = kf / kb
    slope, intercept = np.polyfit(1.0 / _TEMPS, np.log(kf + 0.1 * kb), 1)
    dH = -_R * np.polyfit(1.0 / _TEMPS, np.log(Keq), 1)[0]
    return np.concatenate([np.log(Keq), [-slope * _R / 1e3, intercept, dH / 1e3]])


def equilibrium_newton(log_K):
    """Speciation of M + L <-> ML, ML + L <-> ML2 with total concentrations:
    Newton's method on the log free concentrations, each step by
    np.linalg.solve of the analytic Jacobian; returns the species fractions."""
    K1, K2 = np.exp(log_K)
    MT, LT = 1e-3, 3e-3
    x = np.log(np.array([MT, LT]))
    for _ in range(30):
        m, l = np.exp(x)
        ml, ml2 = K1 * m * l, K1 * K2 * m * l * l
        F = np.array([m + ml + ml2 - MT, l + ml + 2 * ml2 - LT])
        J = np.array([[m + ml + ml2, ml + 2 * ml2],
                      [ml + 2 * ml2, l + ml + 4 * ml2]])
        x = x - np.linalg.solve(J, F)
    m, l = np.exp(x)
    return np.array([m, K1 * m * l, K1 * K2 * m * l * l]) / MT


def equilibrium_root(log_K):
    """The same speciation by scipy.optimize.root (hybr) of the mass balances."""
    K1, K2 = np.exp(log_K)
    MT, LT = 1e-3, 3e-3

    def balances(x):
        m, l = np.exp(x)
        return [(m + K1 * m * l + K1 * K2 * m * l * l) / MT - 1.0,
                (l + K1 * m * l + 2 * K1 * K2 * m * l * l) / LT - 1.0]

    sol = scipy.optimize.root(balances, np.log([MT / 2, LT / 2]), tol=1e-14)
    m, l = np.exp(sol.x)
    return np.array([m, K1 * m * l, K1 * K2 * m * l * l]) / MT


def pk_auc_odeint_linear(params):
    """Linear three-compartment PK as a matrix ODE dy/dt = A y with odeint and
    Dfun; AUC by simpson, plus the exact AUC from np.linalg.solve(A, -y0)."""
    k01, k12, k21, k13, k31 = params
    A = np.zeros((3, 3))
    A[0, 0] = -(k01 + k12 + k13)
    A[0, 1] = k21
    A[0, 2] = k31
    A[1, 0] = k12
    A[1, 1] = -k21
    A[2, 0] = k13
    A[2, 2] = -k31
    y0 = np.array([10.0, 0.0, 0.0])
    t = np.linspace(0.0, 4.0, 41)
    Y = scipy.integrate.odeint(lambda y, t: A @ y, y0, t, Dfun=lambda y, t: A, rtol=1e-11, atol=1e-12)
    auc_num = scipy.integrate.simpson(Y[:, 0], x=t)
    auc_inf = np.linalg.solve(A, -y0)[0]
    return np.array([auc_num, auc_inf])


def react_step_inplace(c, log_k, dt=0.01, nsteps=20):
    """Advance A <-> B -> C in place in the caller's (species x cells)
    concentration array (explicit Euler, mass action; writes through the row
    views); returns the total amount (a conservation check)."""
    kf, kb, k2 = np.exp(log_k)
    A, B, C = c[0], c[1], c[2]   # views into the caller's array
    for _ in range(nsteps):
        r1 = kf * A - kb * B
        r2 = k2 * B
        A -= dt * r1
        B += dt * (r1 - r2)
        C += dt * r2
    return c.sum()


def enzyme_rk4_list(params):
    """The enzyme mechanism of enzyme_rk4 with the RK4 states collected in a
    list and stacked at the end (the buffer-free spelling)."""
    kf, kr, kcat = params
    dt, nsteps = 0.05, 60

    def f(y):
        e, s, es, p = y
        v1 = kf * e * s - kr * es
        v2 = kcat * es
        return np.stack([-v1 + v2, -v1, v1 - v2, v2])

    y = np.array([1.0, 5.0, 0.0, 0.0])
    traj = [y]
    for _ in range(nsteps):
        k1 = f(y)
        k2 = f(y + 0.5 * dt * k1)
        k3 = f(y + 0.5 * dt * k2)
        k4 = f(y + dt * k3)
        y = y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        traj.append(y)
    return np.stack(traj)[::10, 3]


def mm_integrated_lambertw(params):
    """Closed-form substrate depletion of Michaelis-Menten kinetics,
    S(t) = Km W((S0/Km) exp((S0 - Vmax t)/Km)) with scipy.special.lambertw
    (complex result, real part taken)."""
    Vmax, Km = params
    S0 = 5.0
    t = np.linspace(0.0, 4.0, 9)
    arg = (S0 / Km) * np.exp((S0 - Vmax * t) / Km)
    return Km * scipy.special.lambertw(arg).real


def inhibited_product_curve(params):
    """Product formed under competitive inhibition: the Michaelis-Menten rate
    on a known substrate decay, cumulatively integrated with
    scipy.integrate.cumulative_trapezoid (initial=0)."""
    Vmax, Km, Ki = params
    t = np.linspace(0.0, 5.0, 21)
    S = 4.0 * np.exp(-0.3 * t)
    inhibitor = 0.5
    v = Vmax * S / (Km * (1 + inhibitor / Ki) + S)
    return scipy.integrate.cumulative_trapezoid(v, t, initial=0)


def three_compartment_matrix_exp(params):
    """Linear three-compartment PK by the matrix exponential: the rate matrix
    assembled with np.array of the micro constants, concentrations
    expm(A t) @ y0 at sampling times, AUC by np.trapezoid."""
    from scipy.linalg import expm
    k01, k12, k21, k13, k31 = params
    A = np.array([[-(k01 + k12 + k13), k21, k31],
                  [k12, -k21, 0.0],
                  [k13, 0.0, -k31]])
    y0 = np.array([10.0, 0.0, 0.0])
    t = np.linspace(0.0, 4.0, 9)
    C = np.stack([expm(A * ti) @ y0 for ti in t])
    return np.concatenate([C[:, 0], [np.trapezoid(C[:, 0], t)]])


def logistic_euler_functional(theta):
    """logistic_euler_trajectory with N rebound (N = N + ...) instead of N +=."""
    r, K = theta
    N = np.array([0.05])
    dt = 0.1
    traj = []
    for _ in range(40):
        N = N + dt * r * N * (1 - N / K)
        traj.append(N)
    return np.concatenate(traj)


# =============================================================================================
# the tests
# =============================================================================================

_rng = np.random.default_rng(20240)
_MM_V = 3.0 * _S_CONC / (1.5 + _S_CONC) * (1 + 0.03 * _rng.standard_normal(8))
_HILL_Y = 2.0 * _S_CONC ** 1.7 / (1.2 ** 1.7 + _S_CONC ** 1.7) * (1 + 0.02 * _rng.standard_normal(8))
_GS_U0 = 1.0 - 0.3 * _rng.random(144)

# name: (program, point, FD step, jit works, vmap-vs-loop rtol: 1e-12 for exact programs, the
# solver tolerance for adaptive solvers (docs/solvers.md: vmap solves the stacked system once))
CASES = {
    "mass-action-solve_ivp": (mass_action_network, np.log([1.5, 0.3, 0.7, 0.4]), 1e-6, True, 1e-8),
    "robertson-bdf": (robertson_stiff, np.log([0.04, 3e7, 1e4]), 1e-6, False, 1e-7),
    "lotka-volterra-odeint": (lotka_volterra_odeint, np.array([1.0, 0.6, 0.8, 0.3]), 1e-6, True, 1e-8),
    "enzyme-rk4-list": (enzyme_rk4_list, np.array([2.0, 0.5, 1.2]), 1e-6, True, 1e-12),
    "logistic-functional": (logistic_euler_functional, np.array([0.9, 1.3]), 1e-6, True, 1e-12),
    "pk-convolve": (pk_multiple_dose_convolve, np.array([1.1, 0.15, 20.0]), 1e-5, True, 1e-12),
    "two-compartment": (two_compartment_auc, np.array([0.3, 0.5, 0.2]), 1e-6, False, 1e-12),
    "gray-scott": (gray_scott, _GS_U0, 1e-6, True, 1e-12),
    "selection": (selection_recursion, np.array([0.05, -0.1]), 1e-6, True, 1e-12),
    "arrhenius": (arrhenius_eyring, np.array([20.0, 5e4, 25.0, 7e4]), 1e-3, False, 1e-12),
    "equilibrium-newton": (equilibrium_newton, np.log([1e4, 1e3]), 1e-6, True, 1e-12),
    "equilibrium-root": (equilibrium_root, np.log([1e4, 1e3]), 1e-6, True, 1e-9),
    "inhibited-product": (inhibited_product_curve, np.array([2.0, 1.2, 0.4]), 1e-6, True, 1e-12),
    "three-compartment-expm": (three_compartment_matrix_exp, np.array([0.5, 0.3, 0.2, 0.1, 0.05]),
                               1e-6, True, 1e-12),
}


def _same(got, want, rtol=1e-12):
    assert type(got) is type(want), (type(got), type(want))
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))


def _close(got, want, rtol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))


def _batch(x):
    return np.stack([x * (1 + 0.01 * k) for k in range(3)])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[3]])
def test_jit_value(name):
    f, x, _, _, _ = CASES[name]
    jf = npfunc.jit(f)
    _same(jf(x), f(x))
    _same(jf(x * 1.02), f(x * 1.02))  # the replay on new values


@pytest.mark.parametrize("name", list(CASES))
def test_vmap_value(name):
    f, x, _, _, rtol = CASES[name]
    xs = _batch(x)
    _same(npfunc.vmap(f)(xs), np.stack([f(r) for r in xs]), rtol)


@pytest.mark.parametrize("name", list(CASES))
def test_jacrev_jacfwd(name):
    f, x, eps, _, _ = CASES[name]
    J = numerical_jacobian(f, x, eps=eps * max(1.0, np.max(np.abs(x))) if eps < 1e-4 else eps, order=4)
    _close(npfunc.jacrev(f)(x), J)
    _close(npfunc.jacfwd(f)(x), J)


@pytest.mark.parametrize("name", ["mass-action-solve_ivp", "enzyme-rk4-list", "gray-scott", "equilibrium-root",
                                  "three-compartment-expm"])
def test_jit_of_jacrev_and_jacrev_of_jit(name):
    f, x, eps, _, _ = CASES[name]
    J = numerical_jacobian(f, x, eps=eps, order=4)
    _close(npfunc.jit(npfunc.jacrev(f))(x), J)
    _close(npfunc.jacrev(npfunc.jit(f))(x), J)


@pytest.mark.parametrize("name", ["robertson-bdf", "pk-convolve", "selection", "arrhenius", "equilibrium-newton"])
def test_vmap_of_jacfwd(name):
    f, x, eps, _, _ = CASES[name]
    xs = _batch(x)
    Js = np.stack([numerical_jacobian(f, r, eps=eps * max(1.0, np.max(np.abs(r))) if eps < 1e-4 else eps, order=4)
                   for r in xs])
    _close(npfunc.vmap(npfunc.jacfwd(f))(xs), Js)


def test_mass_action_jvp_vjp_linearize():
    f, x = mass_action_network, CASES["mass-action-solve_ivp"][1]
    J = numerical_jacobian(f, x, order=4)
    v, u = np.array([1.0, -0.5, 0.2, 0.3]), np.array([1.0, 2.0, -1.0])
    primal, tangent = npfunc.jvp(f, (x,), (v,))
    _same(primal, f(x))
    _close(tangent, J @ v)
    out, pullback = npfunc.vjp(f, x)
    _same(out, f(x))
    _close(pullback(u)[0], u @ J)
    _close(npfunc.linearize(f, x)[1](v), J @ v)
    _same(npfunc.vmap(npfunc.jit(f))(_batch(x)), np.stack([f(r) for r in _batch(x)]), 1e-8)


def test_dose_response_grad_hessian_compositions():
    th = np.array([0.3, 1.8])
    f = dose_response_nll
    g = numerical_jacobian(f, th, order=4)
    H = numerical_jacobian(lambda x: numerical_jacobian(f, x, order=4), th, eps=1e-4, order=4)
    grad, value = npfunc.grad_and_value(f)(th)
    _same(value, f(th))
    _close(grad, g, 1e-6)
    _close(npfunc.grad(npfunc.jit(f))(th), g, 1e-6)
    _close(npfunc.hessian(f)(th), H)
    _close(npfunc.jit(npfunc.hessian(f))(th), H)
    _close(npfunc.jacfwd(npfunc.jacrev(f))(th), H)
    ths = np.stack([th, 1.1 * th, 0.9 * th])
    G = np.stack([numerical_jacobian(f, t, order=4) for t in ths])
    _close(npfunc.vmap(npfunc.grad(f))(ths), G, 1e-6)
    _close(npfunc.vmap(npfunc.grad(f), chunk_size=2)(ths), G, 1e-6)
    _same(npfunc.jit(f)(th), f(th))


@pytest.mark.parametrize("which", ["newton", "root"])
def test_equilibrium_hessian(which):
    prog = equilibrium_newton if which == "newton" else equilibrium_root
    f = lambda lk: prog(lk)[1]  # noqa: E731  fraction of ML
    lk = np.log([1e4, 1e3])
    H = numerical_jacobian(lambda x: numerical_jacobian(f, x, order=4), lk, eps=1e-3, order=4)
    _close(npfunc.hessian(f)(lk), H, 1e-4)


def test_odeint_and_rk4_hessians():
    lv = lambda t: lotka_volterra_odeint(t)[-2]  # noqa: E731
    t0 = np.array([1.0, 0.6, 0.8, 0.3])
    H = numerical_jacobian(lambda x: numerical_jacobian(lv, x, eps=1e-4, order=4), t0, eps=1e-3, order=4)
    _close(npfunc.hessian(lv)(t0), H, 1e-4)
    sel = lambda s: selection_recursion(s)[-1]  # noqa: E731
    s0 = np.array([0.05, -0.1])
    H = numerical_jacobian(lambda x: numerical_jacobian(sel, x, order=4), s0, eps=1e-4, order=4)
    _close(npfunc.hessian(sel)(s0), H)


def test_gray_scott_vjp_and_grad_of_jit():
    u0 = _GS_U0
    J = numerical_jacobian(gray_scott, u0, order=4)
    _close(npfunc.vjp(gray_scott, u0)[1](np.array([1.0, 2.0]))[0], np.array([1.0, 2.0]) @ J)
    _close(npfunc.grad(npfunc.jit(lambda u: gray_scott(u)[1]))(u0), J[1])


def _implicit_fit_jacobian(model, p, y):
    """d p*/d y of argmin_p 0.5 |model(p) - y|^2 by the implicit function theorem, with every
    derivative by central differences of the plain model (the fitted p itself is not
    differentiated: the fit's stopping tolerance would swamp finite differences of it)."""
    def grad_cost(q):
        return numerical_jacobian(model, q, eps=1e-6, order=4).T @ (model(q) - y)
    H = numerical_jacobian(grad_cost, p, eps=1e-4, order=4)
    Jr = numerical_jacobian(model, p, eps=1e-6, order=4)
    return np.linalg.solve(H, Jr.T)


def test_michaelis_menten_fit_vmap_and_implicit_derivative():
    v = _MM_V
    p = michaelis_menten_fit(v)
    model = lambda q: q[0] * _S_CONC / (q[1] + _S_CONC)  # noqa: E731
    want = _implicit_fit_jacobian(model, p, v)
    _close(npfunc.jacrev(michaelis_menten_fit)(v), want)
    _close(npfunc.jacfwd(michaelis_menten_fit)(v), want)
    vs = _batch(v)
    _same(npfunc.vmap(michaelis_menten_fit)(vs), np.stack([michaelis_menten_fit(r) for r in vs]), 1e-7)


def test_hill_curve_fit_jit_vmap_and_implicit_derivative():
    y = _HILL_Y
    p = hill_curve_fit(y)
    _same(npfunc.jit(hill_curve_fit)(y), p)
    model = lambda q: q[0] * _S_CONC ** q[2] / (q[1] ** q[2] + _S_CONC ** q[2])  # noqa: E731
    want = _implicit_fit_jacobian(model, p, y)
    _close(npfunc.jacrev(hill_curve_fit)(y), want)
    _close(npfunc.jit(npfunc.jacfwd(hill_curve_fit))(y), want)
    ys = _batch(y)
    # curve_fit's default ftol/xtol (1.5e-8): the stacked solve agrees to about that
    _same(npfunc.vmap(hill_curve_fit)(ys), np.stack([hill_curve_fit(r) for r in ys]), 1e-5)


def test_react_step_inplace_side_effects():
    c0 = np.array([[1.0, 0.8], [0.2, 0.1], [0.0, 0.3]])
    lk = np.log([2.0, 0.5, 1.0])
    c_ref = c0.copy()
    total = react_step_inplace(c_ref, lk)
    c = c0.copy()
    _same(npfunc.jit(react_step_inplace)(c, lk), total)
    np.testing.assert_array_equal(c, c_ref)
    c = c0.copy()
    _same(npfunc.functionalize(react_step_inplace)(c, lk), total)
    np.testing.assert_array_equal(c, c_ref)
    C0 = np.stack([c0, c0[::-1], 0.5 * c0])
    C_ref = C0.copy()
    totals = np.array([react_step_inplace(row, lk) for row in C_ref])
    C = C0.copy()
    _same(npfunc.vmap(react_step_inplace, in_dims=(0, None))(C, lk), totals)
    np.testing.assert_array_equal(C, C_ref)
    # differentiating with respect to the concentrations the program updates in place
    def leftover_b(c, lk):
        react_step_inplace(c, lk)
        return c[1].sum()

    c = c0.copy()
    g, val = npfunc.grad_and_value(leftover_b)(c, lk)
    _same(val, leftover_b(c0.copy(), lk))
    np.testing.assert_array_equal(c, c_ref)
    _close(g, numerical_jacobian(lambda c: leftover_b(c.copy(), lk), c0, order=4), 1e-6)


def _final_conc(lk):
    """Concentrations after react_step_inplace from a fresh (plain) initial array."""
    c = np.array([[1.0, 0.8], [0.2, 0.1], [0.0, 0.3]])
    react_step_inplace(c, lk)
    return c


@pytest.mark.xfail(strict=True, reason="state array updated in place (through row views) while the rate constants "
                                       "are differentiated: refused (plain array cannot hold a traced value)")
def test_react_step_inplace_rate_constant_jacobian():
    lk = np.log([2.0, 0.5, 1.0])
    J = numerical_jacobian(_final_conc, lk, order=4)
    assert np.max(np.abs(J)) > 1e-3
    _close(npfunc.jacrev(_final_conc)(lk), J)


def test_wright_fisher_jit_and_diffusion_transforms():
    # binomial drift with a seeded Generator made inside: jit on a Python float
    path = wright_fisher(0.3)
    _same(npfunc.jit(wright_fisher)(0.3), path)
    f = wright_fisher_diffusion
    s = np.float64(0.8)
    _same(npfunc.jit(f)(s), f(s))
    ss = np.array([0.5, 0.8, 1.0])
    _same(npfunc.vmap(f)(ss), np.array([f(x) for x in ss]))
    g = np.array([numerical_jacobian(f, np.float64(x), order=4) for x in ss])
    _close(npfunc.vmap(npfunc.grad(f))(ss), g, 1e-6)
    _close(npfunc.jit(npfunc.grad(f))(s), g[1], 1e-6)
    grad, value = npfunc.grad_and_value(f)(s)
    _same(value, f(s))


def test_module_level_generator_under_jit_refuses():
    g = np.random.default_rng(0)

    def noisy_rate(k):
        return k * np.exp(0.1 * g.standard_normal(3))

    with pytest.raises(npfunc.errors.RandomnessError):
        npfunc.jit(noisy_rate)(np.ones(3))


# =============================================================================================
# findings
# =============================================================================================


def test_wright_fisher_vmap_over_initial_frequency_error_names_the_draw():
    p0s = np.array([0.2, 0.3, 0.5])
    with pytest.raises(npfunc.errors.NpfuncError) as info:
        npfunc.vmap(wright_fisher)(p0s)
    msg = str(info.value)
    assert "binomial" in msg


def test_npfunc_random_binomial_with_batched_probability():
    """With randomness='same' a loop gives NumPy's binomial draws, which a batched p cannot
    reproduce: refused, naming 'different', under which each element draws its own counts."""
    def drift(p0):
        rng = npfunc.random.default_rng(7)
        p = p0
        for _ in range(10):
            p = rng.binomial(100, p) / 100
        return p

    p0s = np.array([0.2, 0.3, 0.5])
    with pytest.raises(npfunc.errors.RandomnessError, match="randomness='different'"):
        npfunc.vmap(drift, randomness="same")(p0s)
    out = npfunc.vmap(drift, randomness="different")(p0s)
    assert out.shape == (3,) and np.all((out >= 0) & (out <= 1))


def test_enzyme_rk4_preallocated_buffer_jacrev():
    """The RK4 trajectory written into np.empty (Y[i+1] = traced; once refused): its
    Jacobian is the differences'."""
    x = np.array([2.0, 0.5, 1.2])
    _close(npfunc.jacrev(enzyme_rk4)(x), numerical_jacobian(enzyme_rk4, x, order=4))


def test_pk_odeint_linear_rate_matrix_buffer_jit():
    """The rate matrix filled into np.zeros((3, 3)) with traced entries (once refused):
    jit's recording call and its replay on new values give the plain program's values."""
    x = np.array([0.5, 0.3, 0.2, 0.1, 0.05])
    jf = npfunc.jit(pk_auc_odeint_linear)
    _same(jf(x), pk_auc_odeint_linear(x), 1e-8)
    _same(jf(x * 1.02), pk_auc_odeint_linear(x * 1.02), 1e-8)  # the replay on new values


def test_fisher_kpp_buffer_vmap():
    """The Laplacian written into np.empty(n) through slices, np.multiply(out=tmp) into
    another np.empty (once refused under vmap): the loop's values."""
    u0 = np.clip(np.linspace(1, -0.5, 16), 0.01, 1)
    us = _batch(u0)
    _same(npfunc.vmap(fisher_kpp_slices)(us), np.stack([fisher_kpp_slices(u) for u in us]))


@pytest.mark.xfail(strict=True, reason="N = np.array([0.05]); N += traced refused (message names np.add(out=))")
def test_logistic_inplace_state_jacfwd():
    th = np.array([0.9, 1.3])
    _close(npfunc.jacfwd(logistic_euler_trajectory)(th), numerical_jacobian(logistic_euler_trajectory, th, order=4))


def test_two_compartment_polyfit_jit():
    """np.polyfit at fixed abscissae under jit: lstsq takes the rank from the plain matrix."""
    x = np.array([0.3, 0.5, 0.2])
    _same(npfunc.jit(two_compartment_auc)(x), two_compartment_auc(x))


@pytest.mark.xfail(strict=True, reason="solve_ivp(method='BDF', jac=analytic) refused under jit (works under "
                                       "jacrev/jacfwd/vmap)")
def test_robertson_analytic_jacobian_jit():
    x = np.log([0.04, 3e7, 1e4])
    _same(npfunc.jit(robertson_stiff)(x), robertson_stiff(x))


def test_integrated_michaelis_menten_lambertw():
    """scipy.special.lambertw (once unsupported: its ufunc _lambertw is a primitive now)."""
    x = np.array([2.0, 1.5])
    _close(npfunc.jacrev(mm_integrated_lambertw)(x), numerical_jacobian(mm_integrated_lambertw, x, order=4))


def test_refusals_are_npfunc_errors():
    """The refusals above are NpfuncErrors naming the transform (kinds 2/3 are about
    wording and coverage, not raw errors)."""
    cases = [
        (lambda: npfunc.jit(robertson_stiff)(np.log([0.04, 3e7, 1e4])), "jit"),
        (lambda: npfunc.vmap(logistic_euler_trajectory)(_batch(np.array([0.9, 1.3]))), "vmap"),
        (lambda: npfunc.vmap(wright_fisher)(np.array([0.2, 0.3])), "vmap"),
        (lambda: npfunc.jacrev(_final_conc)(np.log([2.0, 0.5, 1.0])), "jacrev"),
    ]
    for call, transform in cases:
        with pytest.raises(npfunc.errors.NpfuncError, match=transform):
            call()


@pytest.mark.parametrize("f, x, transform", [
    (enzyme_rk4, np.array([2.0, 0.5, 1.2]), "jacrev"),  # the preallocated trajectory (np.empty)
    (mm_integrated_lambertw, np.array([2.0, 1.5]), "jacfwd"),  # scipy.special.lambertw
], ids=["enzyme-rk4-buffer-jacrev", "lambertw-jacfwd"])
def test_once_refused_programs_match_differences(f, x, transform):
    """Programs the list above once held (refused, now supported): the plain spelling's
    Jacobian is the five-point differences'."""
    T = {"jacrev": npfunc.jacrev, "jacfwd": npfunc.jacfwd}[transform]
    _close(T(f)(x), numerical_jacobian(f, x, order=4))
