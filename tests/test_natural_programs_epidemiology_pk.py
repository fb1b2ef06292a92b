"""Natural programs from epidemiology, population ecology and pharmacokinetics,
written first as plain NumPy/SciPy the way a modeller writes them, then run
under npfunc's transforms and compared with the plain program (values, dtypes,
Python types, side effects) and with five-point differences (derivatives).

Programs:

* compartmental epidemics: SIR by a hand-written RK4 loop over a list of
  states (peak prevalence and attack rate, a tuple of NumPy scalars), SEIR by
  ``solve_ivp`` with ``t_eval`` (peak, final size, trapezoid burden), SIR by
  ``odeint`` with ``args=``, SEIR by ``odeint(full_output=True)``, the SIR
  peak time by ``brentq`` on ``solve_ivp``'s dense output, an age-structured
  SIR with an ``einsum`` contact matrix (scalar and per-group transmission),
  the Poisson likelihood of weekly incidence from ``odeint`` (``np.diff`` of a
  cumulative compartment), SIR with a state vector updated in place (``state[0] -= ...``), a float32
  SIR with a Python-float transmission rate, a seasonally forced SIR by
  Euler steps written into ``np.zeros(..., like=)``, an SIS endemic
  equilibrium with ``np.maximum``, Reed-Frost expected chains, the
  renewal equation in a ``zeros_like`` buffer, a reporting delay by
  ``np.convolve``/``cumsum``/``diff``, the Cori posterior of R_t;
* reproduction numbers and final sizes: R0 as the spectral radius of a
  next-generation matrix (``inv``, ``eigvals``), the final size by
  ``brentq`` and by ``lambertw``, the multi-group final size by ``root``
  and by ``fsolve``, the critical vaccination coverage;
* population ecology: Lotka-Volterra by float32 Euler steps, the
  coexistence equilibrium of competitive Lotka-Volterra (``solve``) and its
  stability (largest real part of ``eigvals``), the generalised
  Lotka-Volterra equilibrium by ``root`` from a column-vector start, the predator-prey period from
  complex eigenvalues, logistic-growth least squares, a ``curve_fit`` of the
  logistic curve, a Ricker map trajectory, Beverton-Holt in float32,
  Leslie matrices (dominant eigenvalue by ``eigvals``, by power iteration
  with ``/=``, elasticities from left and right eigenvectors, the stable age
  distribution, ``matrix_power`` projections), a life table with
  ``cumprod`` (R0, generation time in a dict) and the intrinsic rate from the
  Euler-Lotka equation by ``brentq``;
* pharmacokinetics/dynamics: a two-compartment model by ``expm``, the
  Bateman function summed over a dose schedule with ``np.where``, the same
  schedule by boolean-mask ``+=`` into a ``like=`` buffer, dosing intervals
  integrated segment by segment with ``solve_ivp`` (dose added in place),
  Michaelis-Menten elimination by ``solve_ivp(method='Radau', jac=, args=)``,
  non-compartmental analysis (trapezoid AUC, Cmax, Tmax by ``argmax``,
  terminal slope by ``polyfit``), ``np.interp`` of a concentration curve,
  the Emax/Hill model (float32 and float64, Gaussian likelihood), an indirect
  response model by RK4, a probit dose-response likelihood with
  ``scipy.stats.norm.cdf``;
* growth rates and delays: the doubling time by ``np.linalg.lstsq`` and by
  ``scipy.stats.linregress``, a Poisson-weighted ``np.polyfit(w=, cov=True)``,
  ``np.gradient`` of log incidence, an Erlang delay by ``scipy.signal.lfilter``
  stages, a gamma reporting delay from ``scipy.stats.gamma.pdf`` and
  ``np.convolve``, cumulative AUC by ``cumulative_trapezoid``, AUC by ``quad``,
  the dosing interval by ``minimize_scalar``; a two-group R0 with ``np.block``
  and ``np.diag`` of a list, a metapopulation growth rate from ``np.kron``;
* scalar-style code: a Bateman curve with ``math.exp``, a Hill function with
  an early return under ``np.vectorize``, an infusion by ``np.piecewise``,
  ``np.einsum(..., out=)``, a checkpointed RK4 step, a ``custom_vjp`` log rate;
* count likelihoods: Poisson regression with ``gammaln``, negative binomial
  with ``gammaln``/``xlogy``, binomial prevalence with ``xlogy``/``xlog1py``,
  a two-component Poisson mixture by ``logsumexp(b=)``,
  ``scipy.stats.poisson.logpmf`` and ``nbinom.logpmf`` of exponential growth,
  a discretised gamma serial interval from ``scipy.stats.gamma.cdf``, and a
  Poisson-growth MLE by ``minimize`` and by IRLS (``solve`` in a loop).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.special as sps
import scipy.stats as st

import npfunc
from npfunc.scipy.integrate import UnsupportedOdeError
from natural_checks import assert_deriv, assert_same, fd

# ---- compartmental epidemics ----------------------------------------------------------------


def sir_rk4(theta):
    """SIR in counts by RK4, states appended to a list; peak prevalence and attack rate."""
    beta, gamma = theta
    N = 1000.0
    y = np.array([990.0, 10.0, 0.0])
    dt = 0.5
    out = [y]

    def rhs(y):
        S, I, R = y
        inf = beta * S * I / N
        rec = gamma * I
        return np.array([-inf, inf - rec, rec])

    for _ in range(40):
        k1 = rhs(y)
        k2 = rhs(y + dt / 2 * k1)
        k3 = rhs(y + dt / 2 * k2)
        k4 = rhs(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    traj = np.array(out)
    return traj[:, 1].max(), traj[-1, 2] / N


def seir_ivp(logp):
    """SEIR by solve_ivp on a fixed grid: peak prevalence, final size, infection burden."""
    beta, sigma, gamma = np.exp(logp)

    def rhs(t, y):
        S, E, I, R = y
        return [-beta * S * I, beta * S * I - sigma * E, sigma * E - gamma * I, gamma * I]

    t = np.linspace(0, 60, 31)
    sol = scipy.integrate.solve_ivp(rhs, (0, 60), [0.99, 0.0, 0.01, 0.0], t_eval=t, rtol=1e-9, atol=1e-11)
    I = sol.y[2]
    return np.array([I.max(), sol.y[3, -1], np.trapezoid(I, sol.t)])


def sir_odeint(params):
    """The textbook odeint SIR with args=(beta, gamma); the final recovered fraction."""
    def deriv(y, t, beta, gamma):
        S, I, R = y
        dS = -beta * S * I
        dI = beta * S * I - gamma * I
        dR = gamma * I
        return dS, dI, dR

    t = np.linspace(0, 50, 26)
    ret = scipy.integrate.odeint(deriv, (0.999, 0.001, 0.0), t, args=tuple(params), rtol=1e-10, atol=1e-12)
    S, I, R = ret.T
    return R[-1]


def seir_odeint_full(p):
    """odeint with full_output=True (the info dict is ignored); the prevalence curve."""
    beta, sigma, gamma = p

    def f(y, t):
        S, E, I, R = y
        return [-beta * S * I, beta * S * I - sigma * E, sigma * E - gamma * I, gamma * I]

    t = np.linspace(0, 100, 21)
    y, info = scipy.integrate.odeint(f, [0.99, 0, 0.01, 0], t, full_output=True, rtol=1e-10, atol=1e-12)
    return y[:, 2]


def sir_peak_time(p):
    """The time of peak prevalence (beta S = gamma) by brentq on solve_ivp's dense output."""
    beta, gamma = p

    def rhs(t, y):
        S, I = y
        return [-beta * S * I, beta * S * I - gamma * I]

    sol = scipy.integrate.solve_ivp(rhs, (0, 30), [0.999, 0.001], t_eval=[30.0], dense_output=True,
                                    rtol=1e-8, atol=1e-10)
    return scipy.optimize.brentq(lambda t: beta * sol.sol(t)[0] - gamma, 5.0, 30.0, xtol=1e-10)


WEEKLY_OBS = np.array([3, 10, 25, 40, 35])


def sir_incidence_nll(theta):
    """Poisson NLL of weekly incidence: odeint of (S, I, cumulative cases), the
    incidence as np.diff of the cumulative column."""
    beta, gamma = np.exp(theta)

    def rhs(y, t):
        S, I, C = y
        return [-beta * S * I, beta * S * I - gamma * I, beta * S * I]

    t = np.arange(0.0, 30.0, 5.0)
    sol = scipy.integrate.odeint(rhs, [0.999, 0.001, 0.0], t, rtol=1e-9, atol=1e-11)
    inc = 1000 * np.diff(sol[:, 2])
    return np.sum(inc - WEEKLY_OBS * np.log(inc))


CONTACTS = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 0.8], [0.5, 0.8, 1.5]])


def age_sir(beta):
    """Age-structured SIR, force of infection by einsum over a contact matrix,
    simultaneous tuple update; final attack rate per age group."""
    N = np.array([0.3, 0.5, 0.2])
    S = N * 0.99
    I = N * 0.01
    R = np.zeros(3)
    dt = 0.2
    for _ in range(50):
        lam = beta * np.einsum("ij,j->i", CONTACTS, I / N)
        inf = lam * S * dt
        rec = 0.2 * I * dt
        S, I, R = S - inf, I + inf - rec, R + rec
    return R / N


def sir_step_inplace(state, beta, gamma, dt=0.1, n=10):
    """Euler steps that update the caller's state vector in place; returns prevalence."""
    for _ in range(n):
        S, I, R = state
        new_inf = beta * S * I * dt
        new_rec = gamma * I * dt
        state[0] -= new_inf
        state[1] += new_inf - new_rec
        state[2] += new_rec
    return state[1]


S32 = np.array([0.99, 0.01, 0.0], dtype=np.float32)


def sir_float32(beta, gamma=0.1):
    """A float32 SIR state advanced with a Python-float (weak) transmission rate."""
    y = S32.copy()
    for _ in range(5):
        S, I, R = y
        inf = beta * S * I
        rec = gamma * I
        y = y + 0.5 * np.array([-inf, inf - rec, rec])
    return y[1]


def seasonal_sir(theta):
    """Seasonally forced SIR by Euler steps into a preallocated trajectory
    (np.zeros(..., like=theta)); weekly incidence."""
    beta0, amp = theta
    dt, nsteps = 0.25, 112
    traj = np.zeros((nsteps + 1, 3), like=theta)
    traj[0] = [0.95, 0.05, 0.0]
    inc = np.zeros(nsteps, like=theta)
    for k in range(nsteps):
        S, I, R = traj[k]
        beta = beta0 * (1 + amp * np.cos(2 * np.pi * k * dt / 28.0))
        new = beta * S * I * dt
        traj[k + 1, 0] = S - new
        traj[k + 1, 1] = I + new - 0.2 * I * dt
        traj[k + 1, 2] = R + 0.2 * I * dt
        inc[k] = new
    return inc.reshape(-1, 28).sum(axis=1)


def sis_endemic(theta):
    """SIS endemic prevalence 1 - 1/R0, zero below threshold."""
    beta, gamma = theta
    R0 = beta / gamma
    return np.maximum(0.0, 1.0 - 1.0 / R0)


def reed_frost(q):
    """Expected Reed-Frost chain binomial (deterministic mean path), float result per generation."""
    S, I = 100.0, 1.0
    cases = []
    for _ in range(8):
        p_inf = 1.0 - (1.0 - q) ** I
        new = S * p_inf
        S, I = S - new, new
        cases.append(new)
    return np.array(cases)


W_SI = np.array([0.1, 0.3, 0.3, 0.2, 0.1])


def renewal(Rt):
    """The renewal equation I_t = R_t sum_s w_s I_{t-s}, written into zeros_like(Rt)."""
    T = len(Rt)
    I = np.zeros_like(Rt)
    I[0] = 10.0
    for t in range(1, T):
        past = I[max(0, t - 5):t][::-1]
        I[t] = Rt[t] * np.sum(W_SI[:len(past)] * past)
    return I


def reporting_delay(inc):
    """Reported cases: infections convolved with a delay distribution, then the
    daily counts recovered from the cumulative curve."""
    delay = np.array([0.2, 0.5, 0.3])
    reported = np.convolve(inc, delay)[:len(inc)]
    cum = np.cumsum(reported)
    return np.diff(cum, prepend=0.0)


def cori_posterior_mean(inc):
    """Cori et al. R_t over a sliding 3-day window: gamma posterior mean and 97.5% quantile."""
    a, b = 1.0, 5.0
    lam = np.convolve(inc, np.concatenate([[0.0], W_SI]))[:len(inc)]
    k = 3
    out_mean, out_hi = [], []
    for t in range(k, len(inc)):
        shape = a + inc[t - k + 1:t + 1].sum()
        rate = 1.0 / b + lam[t - k + 1:t + 1].sum()
        out_mean.append(shape / rate)
        out_hi.append(st.gamma.ppf(0.975, shape, scale=1.0 / rate))
    return np.array(out_mean), np.array(out_hi)


# ---- reproduction numbers and final sizes --------------------------------------------------


def r0_ngm(p):
    """R0 of an SEIR-type model with two transmission routes: spectral radius of F V^-1."""
    beta1, beta2, sigma, gamma = p
    F = np.array([[0.0, beta1 + beta2], [0.0, 0.0]])
    V = np.array([[sigma, 0.0], [-sigma, gamma]])
    K = F @ np.linalg.inv(V)
    return np.max(np.abs(np.linalg.eigvals(K)))


def r0_two_group(p):
    """Two-group R0 from a 2x2 next-generation matrix built by element assignment."""
    K = np.empty((2, 2), like=p)
    K[0, 0] = p[0] / p[4]
    K[0, 1] = p[1] / p[4]
    K[1, 0] = p[2] / p[4]
    K[1, 1] = p[3] / p[4]
    return np.max(np.abs(np.linalg.eigvals(K)))


def final_size_brentq(R0):
    """The final size z = 1 - exp(-R0 z) by brentq (a Python float)."""
    return scipy.optimize.brentq(lambda z: z - 1 + np.exp(-R0 * z), 1e-6, 1.0)


def final_size_lambertw(R0):
    """The closed form z = 1 + W(-R0 exp(-R0)) / R0 (principal branch, real part)."""
    return 1 + sps.lambertw(-R0 * np.exp(-R0)).real / R0


def final_size_multigroup(beta_flat):
    """Two-group final sizes z = 1 - exp(-B (N z)) by scipy.optimize.root."""
    B = beta_flat.reshape(2, 2)
    N = np.array([0.6, 0.4])

    def eq(z):
        return z - (1 - np.exp(-B @ (N * z)))

    return scipy.optimize.root(eq, np.array([0.5, 0.5]), tol=1e-13).x


def final_size_fsolve(beta_flat):
    """The same final sizes by fsolve, the spelling most tutorials use."""
    B = beta_flat.reshape(2, 2)
    N = np.array([0.6, 0.4])

    def eq(z):
        return z - (1 - np.exp(-B @ (N * z)))

    return scipy.optimize.fsolve(eq, np.array([0.5, 0.5]), xtol=1e-13)


GLV_A = -np.array([[1.0, 0.3, 0.2], [0.2, 1.0, 0.4], [0.1, 0.3, 1.0]])


def glv_equilibrium(r):
    """Generalised Lotka-Volterra coexistence equilibrium N (r + A N) = 0 by root,
    started from a column vector of abundances (SciPy's hybr flattens it: the
    function sees, and sol.x is, 1-d)."""
    N0 = np.full((3, 1), 0.5)
    sol = scipy.optimize.root(lambda N: N * (r + GLV_A @ N), N0, tol=1e-12)
    return sol.x


def vaccination_threshold(R0):
    return 1.0 - 1.0 / R0


# ---- population ecology ------------------------------------------------------------------


def lv_euler32(z0):
    """Lotka-Volterra in float32 by explicit Euler, parameters as float32 scalars."""
    a, b, c, d = np.float32(1.1), np.float32(0.4), np.float32(0.4), np.float32(0.1)
    x, y = z0[0], z0[1]
    dt = np.float32(0.01)
    for _ in range(50):
        dx = a * x - b * x * y
        dy = d * x * y - c * y
        x = x + dt * dx
        y = y + dt * dy
    return np.stack([x, y])


def lv_comp_stability(p):
    """Competitive Lotka-Volterra: coexistence point by solve, stability as the
    largest real part of the community matrix's eigenvalues."""
    r = p[:2]
    A = p[2:].reshape(2, 2)
    xstar = np.linalg.solve(A, r)
    J = -np.diag(xstar) @ A
    ev = np.linalg.eigvals(J)
    return np.max(ev.real)


def lv_period(p):
    """Predator-prey cycle period near equilibrium from the complex eigenvalues."""
    a, b, c, d = p
    xs, ys = c / d, a / b
    J = np.array([[a - b * ys, -b * xs], [d * ys, d * xs - c]])
    ev = np.linalg.eigvals(J)
    return 2 * np.pi / np.abs(ev.imag).max()


T_OBS = np.arange(0.0, 10.0)
N_OBS = np.array([10., 17., 29., 46., 70., 98., 126., 148., 163., 172.])


def logistic_sse(p):
    r, K, N0 = p
    pred = K / (1 + (K - N0) / N0 * np.exp(-r * T_OBS))
    return np.sum((N_OBS - pred) ** 2)


def logistic_curve_fit(y):
    """curve_fit of the logistic curve to counts (tight tolerances)."""
    f = lambda t, r, K, N0: K / (1 + (K / N0 - 1) * np.exp(-r * t))  # noqa: E731
    popt, pcov = scipy.optimize.curve_fit(f, T_OBS, y, p0=[0.5, 150, 10], ftol=1e-14, xtol=1e-14, gtol=1e-14)
    return popt


def ricker(theta):
    r, K = theta
    N = 5.0
    traj = []
    for _ in range(20):
        N = N * np.exp(r * (1 - N / K))
        traj.append(N)
    return np.array(traj)


def beverton_holt32(n0):
    """Beverton-Holt in float32 with a Python-float growth rate; returns the final density."""
    R, M = 1.8, np.float32(50.0)
    n = n0
    for _ in range(15):
        n = R * n / (1 + n / M)
    return n


def leslie_lambda(v):
    """Dominant eigenvalue of a Leslie matrix (fecundities in row 0, survival on the subdiagonal)."""
    f = v[:4]
    s = v[4:]
    L = np.diag(s, k=-1)
    L[0] = f
    ev = np.linalg.eigvals(L)
    return np.max(ev.real)


def leslie_power(v):
    """The same eigenvalue by power iteration, normalising in place."""
    f, s = v[:4], v[4:]
    L = np.zeros((4, 4), like=v)
    L[0, :] = f
    L[np.arange(1, 4), np.arange(3)] = s
    n = np.ones(4) / 4
    for _ in range(60):
        n = L @ n
        lam = n.sum()
        n /= lam
    return lam


def leslie_elasticity(v):
    """Elasticities e_ij = (a_ij / lambda) v_i w_j / <v, w> from eig of L and L.T."""
    f, s = v[:4], v[4:]
    L = np.diag(s, -1)
    L[0] = f
    w, V = np.linalg.eig(L)
    i = np.argmax(w.real)
    lam = w[i].real
    wvec = np.abs(V[:, i].real)
    wl, W = np.linalg.eig(L.T)
    j = np.argmax(wl.real)
    vvec = np.abs(W[:, j].real)
    S = np.outer(vvec, wvec) / (vvec @ wvec)
    return S * L / lam


def stable_age(v):
    """Stable age distribution: the dominant eigenvector, made positive, summing to one."""
    L = np.diag(v[4:], -1)
    L[0] = v[:4]
    w, V = np.linalg.eig(L)
    k = np.argmax(np.abs(w))
    u = np.abs(V[:, k])
    return u / u.sum()


def leslie_project(v):
    L = np.diag(v[3:], -1)
    L[0] = v[:3]
    return np.linalg.matrix_power(L, 10) @ np.array([100.0, 50.0, 20.0])


AGES = np.arange(1, 6)
PX = np.array([0.8, 0.7, 0.6, 0.5, 0.4])


def life_table(px, mx):
    lx = np.concatenate([[1.0], np.cumprod(px)])
    lxmx = lx[:-1] * mx
    R0 = lxmx.sum()
    T = (AGES * lxmx).sum() / R0
    return {"R0": R0, "T": T, "r_approx": np.log(R0) / T}


def euler_lotka_r(mx):
    """Intrinsic growth rate from sum exp(-r x) l_x m_x = 1 by brentq."""
    lx = np.concatenate([[1.0], np.cumprod(PX)[:-1]])
    g = lambda r: np.sum(np.exp(-r * AGES) * lx * mx) - 1.0  # noqa: E731
    return scipy.optimize.brentq(g, -2, 2, xtol=1e-14)


# ---- pharmacokinetics and pharmacodynamics --------------------------------------------------


def two_comp_expm(p):
    k10, k12, k21 = p
    A = np.array([[-(k10 + k12), k21], [k12, -k21]])
    ts = np.linspace(0.5, 12, 8)
    return np.array([scipy.linalg.expm(A * t)[0, 0] for t in ts]) * 100.0


T_DOSE = np.linspace(0, 48, 25)


def bateman_doses(p, t=T_DOSE):
    """One-compartment oral absorption, superposed over a q12h schedule with np.where."""
    ka, ke, V = p
    c = np.zeros_like(t)
    for td in [0.0, 12.0, 24.0, 36.0]:
        tau = t - td
        c = c + np.where(tau >= 0, 100.0 * ka / (V * (ka - ke)) * (np.exp(-ke * tau) - np.exp(-ka * tau)), 0.0)
    return c


def dose_mask_inplace(p):
    """The same schedule added in place through boolean masks into a like= buffer."""
    ka, ke, V = p
    t = T_DOSE
    c = np.zeros(t.shape, like=p)
    for td in (0.0, 12.0, 24.0, 36.0):
        m = t >= td
        tau = t[m] - td
        c[m] += 100.0 * ka / (V * (ka - ke)) * (np.exp(-ke * tau) - np.exp(-ka * tau))
    return c


def dosing_segments(p):
    """Gut/central model integrated dose interval by dose interval; each new
    dose is added in place to a copy of the last state."""
    ka, ke = p

    def rhs(t, y):
        return [-ka * y[0], ka * y[0] - ke * y[1]]

    y = np.array([100.0, 0.0])
    cs = []
    for k in range(3):
        sol = scipy.integrate.solve_ivp(rhs, (12.0 * k, 12.0 * (k + 1)), y, rtol=1e-8, atol=1e-8,
                                        t_eval=[12.0 * k + 6, 12.0 * (k + 1)])
        y = sol.y[:, -1].copy()
        cs.append(sol.y[1])
        y[0] += 100.0
    return np.concatenate(cs)


def pk_mm_radau(p):
    """Michaelis-Menten elimination by Radau with an analytic Jacobian and args=."""
    Vmax, Km = p

    def rhs(t, y, Vmax, Km):
        return -Vmax * y / (Km + y)

    def jac(t, y, Vmax, Km):
        return np.array([[-Vmax * Km / (Km + y[0]) ** 2]])

    sol = scipy.integrate.solve_ivp(rhs, (0, 5), [50.0], method="Radau", jac=jac, args=(Vmax, Km),
                                    t_eval=[1, 2, 5], rtol=1e-8, atol=1e-8)
    return sol.y[0]


T_PK = np.array([0.5, 1, 2, 4, 6, 8, 12, 24.0])
CONC = 10 * (np.exp(-0.15 * T_PK) - np.exp(-1.2 * T_PK))


def nca(conc):
    """Non-compartmental analysis: AUC_inf (trapezoid + C_last / lambda_z), Cmax,
    Tmax (T_PK[argmax]) and the terminal half-life from polyfit of the last 3 logs."""
    auc = np.trapezoid(conc, T_PK)
    cmax = conc.max()
    tmax = T_PK[np.argmax(conc)]
    slope, intercept = np.polyfit(T_PK[-3:], np.log(conc[-3:]), 1)
    lz = -slope
    auc_inf = auc + conc[-1] / lz
    return auc_inf, cmax, tmax, np.log(2) / lz


def interp_conc(conc):
    tq = np.array([0.75, 3.0, 10.0, 30.0])
    return np.interp(tq, T_PK, conc, right=0.0)


DOSES = np.array([0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])
RESP = np.array([2.1, 2.9, 5.2, 9.8, 15.1, 18.0, 19.5])


def emax_nll(theta):
    """Sigmoid Emax model, Gaussian negative log-likelihood with log-sd."""
    E0, Emax, logEC50, n, logsig = theta
    EC50 = np.exp(logEC50)
    pred = E0 + Emax * DOSES ** n / (EC50 ** n + DOSES ** n)
    sig = np.exp(logsig)
    return 0.5 * np.sum(((RESP - pred) / sig) ** 2) + len(RESP) * logsig


def hill(c, ec50=np.float32(2.0), n=np.float32(1.5), emax=np.float32(100.0)):
    """The Hill curve with float32 defaults (a float32 concentration stays float32)."""
    return emax * c ** n / (ec50 ** n + c ** n)


def indirect_response(p):
    """Indirect response model I (inhibition of kin) driven by a mono-exponential
    concentration, RK4 over a list; the response at the end of each day."""
    kin, kout, imax, ic50 = p
    dt = 0.25

    def rhs(t, R):
        C = 10.0 * np.exp(-0.3 * t)
        return kin * (1 - imax * C / (ic50 + C)) - kout * R

    R = kin / kout
    t = 0.0
    out = []
    for k in range(48):
        k1 = rhs(t, R)
        k2 = rhs(t + dt / 2, R + dt / 2 * k1)
        k3 = rhs(t + dt / 2, R + dt / 2 * k2)
        k4 = rhs(t + dt, R + dt * k3)
        R = R + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += dt
        if (k + 1) % 16 == 0:
            out.append(R)
    return np.array(out)


def probit_loglik(theta):
    """Probit dose-response (quantal) log-likelihood with scipy.stats.norm.cdf."""
    a, b = theta
    dose = np.array([1., 2., 4., 8., 16.])
    dead = np.array([1, 4, 9, 13, 18])
    n = 20
    p = st.norm.cdf(a + b * np.log(dose))
    return np.sum(dead * np.log(p) + (n - dead) * np.log1p(-p))


# ---- count likelihoods --------------------------------------------------------------------

X_DESIGN = np.column_stack([np.ones(8), np.arange(8) / 7.0])
Y_COUNTS = np.array([3, 5, 4, 9, 12, 15, 22, 30])


def poisson_loglik(beta):
    mu = np.exp(X_DESIGN @ beta)
    return np.sum(Y_COUNTS * np.log(mu) - mu - sps.gammaln(Y_COUNTS + 1))


def nb_loglik(theta):
    """Negative binomial (mean mu, size k) with gammaln and xlogy."""
    logmu, logk = theta
    mu, k = np.exp(logmu), np.exp(logk)
    y = Y_COUNTS
    ll = (sps.gammaln(y + k) - sps.gammaln(k) - sps.gammaln(y + 1)
          + sps.xlogy(k, k / (k + mu)) + sps.xlogy(y, mu / (k + mu)))
    return ll.sum()


POS = np.array([0, 3, 7, 12])
TESTED = np.array([20, 25, 30, 30])


def binom_prev(logit_p):
    """Binomial prevalence surveys (a zero count among them) with xlogy/xlog1py."""
    p = sps.expit(logit_p)
    return np.sum(sps.xlogy(POS, p) + sps.xlog1py(TESTED - POS, -p))


GROWTH_CASES = np.array([2, 4, 7, 11, 18, 25, 30])


def poisson_growth_nll(theta):
    a, r = theta
    t = np.arange(len(GROWTH_CASES))
    return -st.poisson.logpmf(GROWTH_CASES, a * np.exp(r * t)).sum()


def nbinom_growth_nll(theta):
    mu, k = np.exp(theta)
    return -st.nbinom.logpmf(GROWTH_CASES, k, k / (k + mu)).sum()


def serial_interval(p):
    """A gamma serial interval discretised by cdf differences, renormalised."""
    shape, scale = p
    k = np.arange(0, 15)
    w = st.gamma.cdf(k + 1, shape, scale=scale) - st.gamma.cdf(k, shape, scale=scale)
    return w / w.sum()


def mle_growth(cases):
    """Poisson exponential-growth MLE by BFGS; the fitted (log a, r)."""
    t = np.arange(len(cases))
    nll = lambda th: -np.sum(cases * (th[0] + th[1] * t) - np.exp(th[0] + th[1] * t))  # noqa: E731
    res = scipy.optimize.minimize(nll, np.array([1.0, 0.1]), method="BFGS")
    return res.x


def mle_growth_irls(cases):
    """The same MLE by iteratively reweighted least squares (Newton on the Poisson GLM)."""
    t = np.arange(len(cases))
    X = np.column_stack([np.ones(len(cases)), t])
    th = np.array([1.0, 0.1])
    for _ in range(30):
        mu = np.exp(X @ th)
        th = th + np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (cases - mu))
    return th


# ---- more programs: structured matrices, growth-rate fits, delays, mixtures -----------------


def ngm_two_group_diag(p):
    """R0 of a two-group model, F from np.block and V = np.diag([g, g]) of a list of scalars."""
    b11, b12, b21, b22, g = p
    F = np.block([[np.array([[b11]]), np.array([[b12]])], [np.array([[b21]]), np.array([[b22]])]])
    V = np.diag([g, g])
    return np.max(np.abs(np.linalg.eigvals(F @ np.linalg.inv(V))))


def metapopulation_kron(p):
    """Two patches coupled by migration m, two host types: the dominant growth rate of kron(M, B)."""
    beta, m = p[0], p[1]
    M = np.array([[1 - m, m], [m, 1 - m]])
    C = np.kron(M, np.array([[beta, 0.5 * beta], [0.5 * beta, beta]]))
    return np.max(np.linalg.eigvals(C).real)


DAYS = np.arange(10.0)
DAILY = 5 * np.exp(0.2 * DAYS) * (1 + 0.05 * np.sin(DAYS))


def doubling_time_lstsq(y):
    """Doubling time from a log-linear fit by np.linalg.lstsq (starred unpacking of the rest)."""
    X = np.column_stack([np.ones_like(DAYS), DAYS])
    coef, *_ = np.linalg.lstsq(X, np.log(y), rcond=None)
    return np.log(2) / coef[1]


def doubling_time_linregress(y):
    """The same with scipy.stats.linregress, with R^2."""
    res = st.linregress(DAYS, np.log(y))
    return np.log(2) / res.slope, res.rvalue ** 2


def growth_rate_weighted_polyfit(y):
    """Poisson-weighted log-linear fit with its covariance (np.polyfit(w=, cov=True))."""
    p, cov = np.polyfit(DAYS, np.log(y), 1, w=np.sqrt(y), cov=True)
    return p[0], np.sqrt(cov[0, 0])


def instantaneous_growth(y):
    return np.gradient(np.log(y), DAYS)


def erlang_delay(k):
    """A discrete Erlang(3) delay kernel as three first-order lfilter stages."""
    x = np.zeros(20)
    x[0] = 1.0
    y = scipy.signal.lfilter([k], [1.0, -(1 - k)], x)
    for _ in range(2):
        y = scipy.signal.lfilter([k], [1.0, -(1 - k)], y)
    return y


MIX_COUNTS = np.array([1, 3, 0, 7, 9, 2])


def poisson_mixture_ll(theta):
    """Two-component Poisson mixture log-likelihood by logsumexp with weights b=."""
    w = sps.softmax(np.array([0.0, theta[0]]))
    mu = np.array([2.0, theta[1]])
    lp = st.poisson.logpmf(MIX_COUNTS[:, None], mu[None, :])
    return sps.logsumexp(lp, b=w[None, :], axis=1).sum()


def cumulative_auc(c):
    return scipy.integrate.cumulative_trapezoid(c, np.array([0.0, 1, 2, 4, 8]), initial=0)


def gamma_delay_convolution(p):
    """Infections convolved with a gamma onset-to-report delay (pdf at midpoints, normalised)."""
    shape, scale = p
    k = np.arange(15)
    w = st.gamma.pdf(k + 0.5, shape, scale=scale)
    inf = np.array([1., 3., 8., 15., 20., 18., 12., 7.])
    return np.convolve(inf, w / w.sum())[:8]


def dosing_interval(ke):
    """The dosing interval whose trough is 1 (minimize_scalar, bounded)."""
    f = lambda tau: (10 * np.exp(-ke * tau) / (1 - np.exp(-ke * tau)) - 1.0) ** 2  # noqa: E731
    return scipy.optimize.minimize_scalar(f, bounds=(1.0, 48.0), method="bounded", options={"xatol": 1e-10}).x


def auc_quad(p):
    ka, ke = p
    return scipy.integrate.quad(lambda t: ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t)), 0, 24)[0]


# ---- comparisons ---------------------------------------------------------------------------


def _same_tree(got, want, rtol=1e-12, atol=0.0):
    """assert_same leaf by leaf through tuples, lists and dicts (same container types)."""
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for k in want:
            _same_tree(got[k], want[k], rtol, atol)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same_tree(g, w, rtol, atol)
    else:
        assert_same(got, want, rtol, atol)


def _stack_tree(outs):
    """What vmap returns for a loop's outputs: leaves stacked along a new axis 0."""
    first = outs[0]
    if isinstance(first, dict):
        return {k: _stack_tree([o[k] for o in outs]) for k in first}
    if isinstance(first, tuple):
        return tuple(_stack_tree([o[i] for o in outs]) for i in range(len(first)))
    return np.stack([np.asarray(o) for o in outs])


def _batch(x, n=3):
    return np.stack([x * (1 + 0.013 * k) for k in range(n)])


# name: (program, point, value rtol, fd eps, derivative rtol)
CASES = {
    "sir-rk4": (sir_rk4, np.array([0.4, 0.1]), 1e-12, 1e-5, 1e-5),
    "seir-solve_ivp": (seir_ivp, np.log([0.5, 0.2, 0.1]), 1e-8, 1e-5, 1e-4),
    "sir-odeint": (sir_odeint, np.array([0.3, 0.1]), 1e-8, 1e-5, 1e-4),
    "sir-incidence-nll": (sir_incidence_nll, np.log([0.5, 0.2]), 1e-7, 1e-5, 1e-4),
    "seir-odeint-full": (seir_odeint_full, np.array([0.6, 0.2, 0.1]), 1e-7, 1e-5, 1e-4),
    "age-sir-scalar": (age_sir, np.float64(0.15), 1e-12, 1e-5, 1e-5),
    "age-sir-vector": (age_sir, np.array([0.15, 0.12, 0.1]), 1e-12, 1e-5, 1e-5),
    "seasonal-sir": (seasonal_sir, np.array([0.5, 0.3]), 1e-12, 1e-5, 1e-5),
    "sis-endemic": (sis_endemic, np.array([0.3, 0.1]), 1e-12, 1e-5, 1e-5),
    "reed-frost": (reed_frost, np.float64(0.03), 1e-12, 1e-6, 1e-5),
    "renewal": (renewal, np.array([1.5, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8]), 1e-12, 1e-5, 1e-5),
    "reporting-delay": (reporting_delay, np.array([1.0, 3.0, 6.0, 10.0, 14.0, 12.0]), 1e-12, 1e-5, 1e-5),
    "cori": (cori_posterior_mean, np.array([5.0, 8.0, 12.0, 15.0, 21.0, 24.0, 30.0]), 1e-10, 1e-5, 1e-5),
    "r0-ngm": (r0_ngm, np.array([0.3, 0.1, 0.2, 0.1]), 1e-12, 1e-5, 1e-5),
    "r0-two-group": (r0_two_group, np.array([2.0, 0.5, 0.4, 1.2, 1.3]), 1e-12, 1e-5, 1e-5),
    "final-size-root": (final_size_multigroup, np.array([2.0, 0.5, 0.5, 1.5]), 1e-8, 1e-5, 1e-5),
    "final-size-fsolve": (final_size_fsolve, np.array([2.0, 0.5, 0.5, 1.5]), 1e-8, 1e-5, 1e-5),
    "glv-root-column-x0": (glv_equilibrium, np.array([1.0, 0.9, 0.8]), 1e-8, 1e-5, 1e-5),
    "vaccination": (vaccination_threshold, np.float64(2.5), 1e-12, 1e-5, 1e-5),
    "lv-euler-f32": (lv_euler32, np.array([10.0, 5.0], dtype=np.float32), 1e-5, 1e-5, 1e-5),
    "lv-stability": (lv_comp_stability, np.array([1.0, 0.8, 1.0, 0.6, 0.5, 1.0]), 1e-12, 1e-5, 1e-5),
    "lv-period": (lv_period, np.array([1.1, 0.4, 0.4, 0.1]), 1e-12, 1e-5, 1e-5),
    "logistic-sse": (logistic_sse, np.array([0.5, 180.0, 10.0]), 1e-12, 1e-5, 1e-5),
    "ricker": (ricker, np.array([1.5, 100.0]), 1e-12, 1e-5, 1e-5),
    "beverton-holt-f32": (beverton_holt32, np.float32(5.0), 1e-6, 1e-5, 1e-3),
    "leslie-eigvals": (leslie_lambda, np.array([0.0, 1.2, 1.5, 0.8, 0.6, 0.7, 0.5]), 1e-12, 1e-5, 1e-5),
    "leslie-power": (leslie_power, np.array([0.0, 1.2, 1.5, 0.8, 0.6, 0.7, 0.5]), 1e-12, 1e-5, 1e-5),
    "leslie-elasticity": (leslie_elasticity, np.array([0.0, 1.2, 1.5, 0.8, 0.6, 0.7, 0.5]), 1e-9, 1e-5, 1e-5),
    "stable-age": (stable_age, np.array([0.0, 1.2, 1.5, 0.8, 0.6, 0.7, 0.5]), 1e-9, 1e-5, 1e-5),
    "leslie-matrix-power": (leslie_project, np.array([0.2, 1.5, 1.0, 0.6, 0.5]), 1e-12, 1e-5, 1e-5),
    "two-comp-expm": (two_comp_expm, np.array([0.3, 0.2, 0.1]), 1e-12, 1e-5, 1e-5),
    "bateman-where": (bateman_doses, np.array([1.0, 0.2, 20.0]), 1e-12, 1e-5, 1e-5),
    "dose-mask-inplace": (dose_mask_inplace, np.array([1.0, 0.2, 20.0]), 1e-12, 1e-5, 1e-5),
    "dosing-segments": (dosing_segments, np.array([1.0, 0.15]), 1e-7, 1e-5, 1e-4),
    "mm-radau": (pk_mm_radau, np.array([10.0, 5.0]), 1e-7, 1e-5, 1e-4),
    "interp-conc": (interp_conc, CONC, 1e-12, 1e-5, 1e-5),
    "emax-nll": (emax_nll, np.array([2.0, 18.0, 0.2, 1.1, -0.5]), 1e-12, 1e-5, 1e-5),
    "hill-f32": (hill, np.linspace(0.1, 10, 6, dtype=np.float32), 1e-6, 1e-3, 1e-3),
    "indirect-response": (indirect_response, np.array([10.0, 0.5, 0.8, 2.0]), 1e-12, 1e-5, 1e-5),
    "probit": (probit_loglik, np.array([-2.0, 1.0]), 1e-12, 1e-5, 1e-5),
    "poisson-gammaln": (poisson_loglik, np.array([1.0, 2.0]), 1e-12, 1e-5, 1e-5),
    "nb-xlogy": (nb_loglik, np.array([2.0, 0.5]), 1e-12, 1e-5, 1e-5),
    "binom-xlog1py": (binom_prev, np.array([-2.0, -1.5, -1.0, -0.5]), 1e-12, 1e-5, 1e-5),
    "stats-poisson": (poisson_growth_nll, np.array([2.5, 0.4]), 1e-12, 1e-5, 1e-5),
    "stats-nbinom": (nbinom_growth_nll, np.array([2.5, 0.4]), 1e-12, 1e-5, 1e-5),
    "serial-interval": (serial_interval, np.array([2.5, 2.0]), 1e-12, 1e-5, 1e-5),
    "poisson-irls": (mle_growth_irls, GROWTH_CASES.astype(float), 1e-10, 1e-5, 1e-5),
    "metapopulation-kron": (metapopulation_kron, np.array([0.4, 0.1]), 1e-12, 1e-5, 1e-5),
    "doubling-lstsq": (doubling_time_lstsq, DAILY, 1e-12, 1e-5, 1e-5),
    "np-gradient": (instantaneous_growth, DAILY, 1e-12, 1e-5, 1e-5),
    "erlang-lfilter": (erlang_delay, np.float64(0.3), 1e-12, 1e-5, 1e-5),
    "poisson-mixture": (poisson_mixture_ll, np.array([0.3, 8.0]), 1e-12, 1e-5, 1e-5),
    "cumulative-auc": (cumulative_auc, np.array([0.0, 3.0, 2.5, 1.5, 0.4]), 1e-12, 1e-5, 1e-5),
    "gamma-delay": (gamma_delay_convolution, np.array([2.5, 2.0]), 1e-12, 1e-5, 1e-5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_jit_value_and_replay(name):
    f, x, rtol, _, _ = CASES[name]
    jf = npfunc.jit(f)
    _same_tree(jf(x), f(x), rtol)
    x2 = x * (1 + np.asarray(0.02, dtype=np.asarray(x).dtype))
    _same_tree(jf(x2), f(x2), rtol)  # the replay on new values
    assert jf.trace_count == 1


@pytest.mark.parametrize("name", list(CASES))
def test_vmap_value(name):
    f, x, rtol, _, _ = CASES[name]
    xs = _batch(np.asarray(x))
    _same_tree(npfunc.vmap(f)(xs), _stack_tree([f(r) for r in xs]), max(rtol, 1e-9 if rtol < 1e-9 else rtol))


def _first(f):
    """The first output of a program returning a tuple (derivatives of tuples are tested elsewhere)."""
    return lambda x: f(x)[0] if isinstance(f(x), tuple) else f(x)


_FD = {}


def _fd_case(name):
    """Five-point differences of a case's (first) output, computed once per case."""
    if name not in _FD:
        f, x, _, eps, _ = CASES[name]
        _FD[name] = fd(_first(f), x, eps=eps)
    return _FD[name]


@pytest.mark.parametrize("name", list(CASES))
def test_jacrev_against_differences(name):
    f, x, _, _, rtol = CASES[name]
    assert_deriv(npfunc.jacrev(_first(f))(x), _fd_case(name), rtol=rtol)


@pytest.mark.parametrize("name", list(CASES))
def test_jacfwd_against_differences(name):
    f, x, _, _, rtol = CASES[name]
    assert_deriv(npfunc.jacfwd(_first(f))(x), _fd_case(name), rtol=rtol)


# ---- derivatives of tuples, dicts and Python-float results ---------------------------------


def test_sir_rk4_tuple_of_numpy_scalars():
    """A tuple of NumPy scalars: jit keeps the types; jacrev of both outputs matches differences."""
    th = np.array([0.4, 0.1])
    _same_tree(npfunc.jit(sir_rk4)(th), sir_rk4(th))
    peak_J, attack_J = npfunc.jacrev(sir_rk4)(th)
    assert_deriv(peak_J, fd(lambda t: sir_rk4(t)[0], th))
    assert_deriv(attack_J, fd(lambda t: sir_rk4(t)[1], th))
    primal, tangent = npfunc.jvp(sir_rk4, (th,), (np.array([1.0, -1.0]),))
    _same_tree(primal, sir_rk4(th))


def test_nca_tuple_derivatives_and_jvp():
    """Non-compartmental analysis under grad-type transforms (the values are concrete:
    T_PK[argmax] is fine), jvp keeps the tuple of NumPy scalars."""
    for k in (0, 1, 3):
        assert_deriv(npfunc.jacrev(lambda c: nca(c)[k])(CONC), fd(lambda c: nca(c)[k], CONC))
    primal, tangent = npfunc.jvp(nca, (CONC,), (np.ones(8),))
    _same_tree(primal, nca(CONC))
    assert tangent[2] == 0.0  # Tmax is a grid time: no derivative
    for k in (0, 1, 3):
        assert type(tangent[k]) is np.float64


def test_zero_tangent_of_a_numpy_scalar_output_is_a_numpy_scalar():
    tangent = npfunc.jvp(nca, (CONC,), (np.ones(8),))[1]
    assert type(tangent[2]) is np.float64       # Tmax: T_PK[argmax], independent of conc
    assert type(npfunc.grad(lambda k: np.float64(2.0) + 0.0 * (k > 0))(np.float64(1.0))) is np.float64


def test_nca_tmax_under_jit_and_vmap_refuses_and_the_advice_works():
    """T_PK[np.argmax(conc)] under jit/vmap: a plain table indexed by a traced index.
    The refusal's fix, a table made traced with like= a traced *array* (np.argmax's
    scalar is refused by NumPy's like=), and npfunc.numpy.take, give NumPy's values."""
    with pytest.raises(npfunc.errors.ConcretizationError,
                       match=r"jit\(f\).*np\.asarray\(table, like=i\).*like= refuses it: take like= a traced array"):
        npfunc.jit(nca)(CONC)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*npfunc\.numpy\.take"):
        npfunc.vmap(nca)(_batch(CONC))
    with pytest.raises(TypeError, match="like"):  # the literal like=i of a scalar index in plain NumPy
        np.asarray(T_PK, like=np.argmax(CONC))

    def tmax_like(conc):
        return np.asarray(T_PK, like=conc)[np.argmax(conc)]

    def tmax_take(conc):
        return npfunc.numpy.take(T_PK, np.argmax(conc))

    late = CONC[::-1].copy()
    for f in (tmax_like, tmax_take):
        jf = npfunc.jit(f)
        assert_same(jf(CONC), T_PK[np.argmax(CONC)])
        assert_same(jf(late), T_PK[np.argmax(late)])
        assert_same(npfunc.vmap(f)(np.stack([CONC, late])), T_PK[[np.argmax(CONC), np.argmax(late)]])


def test_np_take_of_plain_table_names_npfunc_take():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.take\(table, i\).*npfunc\.numpy\.take"):
        npfunc.jit(lambda c: np.take(T_PK, np.argmax(c)))(CONC)


def test_life_table_dict_transforms():
    """A dict of NumPy scalars: jit, jacrev in the fecundities (argnums=1), vmap with in_dims=(None, 0)."""
    mx = np.array([0.0, 0.5, 1.2, 1.5, 1.0])
    _same_tree(npfunc.jit(life_table)(PX, mx), life_table(PX, mx))
    J = npfunc.jacrev(life_table, argnums=1)(PX, mx)
    for k in ("R0", "T", "r_approx"):
        assert_deriv(J[k], fd(lambda m: life_table(PX, m)[k], mx))
    Jp = npfunc.jacfwd(life_table, argnums=0)(PX, mx)
    assert_deriv(Jp["T"], fd(lambda p: life_table(p, mx)["T"], PX))
    ms = _batch(mx)
    _same_tree(npfunc.vmap(life_table, in_dims=(None, 0))(PX, ms), _stack_tree([life_table(PX, m) for m in ms]))


@pytest.mark.parametrize("f, x", [(final_size_brentq, np.float64(2.5)),
                                  (euler_lotka_r, np.array([0.0, 0.5, 1.2, 1.5, 1.0]))])
def test_brentq_programs(f, x):
    """Programs whose result is brentq's Python float: derivatives by the implicit
    function theorem against differences; jit's value (an np.float64 there, a known
    difference) and replay.  (The peak time on the dense output: next test.)"""
    assert type(f(x)) is float
    assert_deriv(npfunc.jacrev(f)(x), fd(f, x), rtol=1e-5)
    jf = npfunc.jit(f)
    for y in (x, x * 1.03):
        np.testing.assert_allclose(float(jf(y)), f(y), rtol=1e-10)


def test_brentq_programs_vmap():
    R0s = np.array([1.5, 2.5, 4.0])
    np.testing.assert_allclose(npfunc.vmap(final_size_brentq)(R0s), [final_size_brentq(r) for r in R0s], rtol=1e-9)
    ms = _batch(np.array([0.0, 0.5, 1.2, 1.5, 1.0]))
    np.testing.assert_allclose(npfunc.vmap(euler_lotka_r)(ms), [euler_lotka_r(m) for m in ms], rtol=1e-9)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(final_size_brentq))(R0s),
                               [fd(final_size_brentq, r) for r in R0s], rtol=1e-5)


@pytest.mark.xfail(strict=True, raises=UnsupportedOdeError,
                   reason="brentq on solve_ivp's dense output under vmap: the stacked root search evaluates "
                          "sol.sol(t) at a batched t, which reaches the ODE primitive as a batched t_eval; "
                          "scipy/integrate/_ode.py stack() needs one time axis for the stacked solve (solving "
                          "on the union of the batch's times and gathering would lift it); jacfwd, which batches "
                          "the root time's tangents, has the same gap")
def test_sir_peak_time_vmap():
    ps = _batch(np.array([0.5, 0.1]))
    np.testing.assert_allclose(npfunc.vmap(sir_peak_time)(ps), [sir_peak_time(p) for p in ps], rtol=1e-8)


def sir_peak_event(p):
    """The same peak time as a terminal solve_ivp event (beta S - gamma = 0)."""
    beta, gamma = p

    def rhs(t, y):
        S, I = y
        return [-beta * S * I, beta * S * I - gamma * I]

    def peak(t, y):
        return beta * y[0] - gamma

    peak.terminal = True
    sol = scipy.integrate.solve_ivp(rhs, (0, 200), [0.999, 0.001], events=peak, rtol=1e-8, atol=1e-10)
    return sol.t_events[0][0]


def test_solve_ivp_events_refuse_and_the_brentq_advice_works_under_grad_and_jit():
    """The events refusal advises brentq on sol(t) and says where that runs (grad,
    jacrev, jvp, jit); under vmap the refusal says the output times are batched
    (it said 'map over y0, args or closed-over values', which the program does)."""
    p = np.array([0.5, 0.1])
    with pytest.raises(UnsupportedOdeError, match=r"grad\(f\).*events.*brentq on sol\(t\).*under grad, jacrev, "
                                                  r"jvp and jit, not vmap or jacfwd"):
        npfunc.grad(sir_peak_event)(p)
    with pytest.raises(UnsupportedOdeError, match=r"output times of this ODE solve are batched.*sol\.sol\(t\)"):
        npfunc.vmap(sir_peak_time)(np.stack([p, p]))
    assert type(sir_peak_time(p)) is float
    np.testing.assert_allclose(sir_peak_time(p), sir_peak_event(p), rtol=1e-6)
    assert_deriv(npfunc.jacrev(sir_peak_time)(p), fd(sir_peak_event, p), rtol=1e-5)
    np.testing.assert_allclose(float(npfunc.jit(sir_peak_time)(p)), sir_peak_time(p), rtol=1e-10)


def test_lambertw_final_size_matches_brentq_and_differences():
    """scipy.special.lambertw on a traced value (W' = exp(-W) / (1 + W); it was refused, a
    known gap): SciPy's value and type under jit and vmap, the derivative against differences
    and against the brentq form's implicit derivative, which is the same number."""
    R0 = np.float64(2.5)
    want = final_size_lambertw(R0)
    assert type(want) is np.float64
    np.testing.assert_allclose(want, final_size_brentq(R0), rtol=1e-10)
    jf = npfunc.jit(final_size_lambertw)
    for r in (R0, R0 * 1.03, np.float64(4.0)):  # the recording call, then replays with new values
        assert_same(jf(r), final_size_lambertw(r))
    R0s = np.array([1.5, 2.5, 4.0])
    assert_same(npfunc.vmap(final_size_lambertw)(R0s), np.stack([final_size_lambertw(r) for r in R0s]))
    g = npfunc.grad(final_size_lambertw)(R0)
    assert type(g) is np.float64
    assert_deriv(g, fd(final_size_lambertw, R0))
    np.testing.assert_allclose(g, npfunc.grad(final_size_brentq)(R0), rtol=1e-10)
    assert_deriv(npfunc.jacfwd(final_size_lambertw)(R0), fd(final_size_lambertw, R0))
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(final_size_lambertw))(R0s),
                               [fd(final_size_lambertw, r) for r in R0s], rtol=1e-5)


# ---- side effects: a state vector updated in place -------------------------------------------

S0 = np.array([0.99, 0.01, 0.0])
S0_BATCH = np.array([[0.99, 0.01, 0.0], [0.95, 0.05, 0.0], [0.9, 0.1, 0.0]])
BETAS = np.array([0.4, 0.5, 0.6])


def _plain_inplace(state, beta):
    s = state.copy()
    return sir_step_inplace(s, beta, 0.1), s


def test_inplace_sir_jit_updates_the_callers_state_on_every_replay():
    jf = npfunc.jit(sir_step_inplace)
    for start, beta in ((S0, 0.5), (S0_BATCH[2], 0.5), (S0_BATCH[1], 0.7)):
        want, want_state = _plain_inplace(start, beta)
        s = start.copy()
        assert_same(jf(s, beta, 0.1), want)
        assert_same(s, want_state)
    assert jf.trace_count == 2  # beta is a Python number: static


def test_inplace_sir_vmap_rows_and_columns():
    """vmap over the rows (in_dims=0) and over the columns (in_dims=1) of a batch of
    states, gamma shared (None), leaves every state as a loop over views would."""
    loop = S0_BATCH.copy()
    want = np.array([sir_step_inplace(loop[k], BETAS[k], 0.1) for k in range(3)])
    rows = S0_BATCH.copy()
    assert_same(npfunc.vmap(sir_step_inplace, in_dims=(0, 0, None))(rows, BETAS, 0.1), want)
    assert_same(rows, loop)
    cols = np.ascontiguousarray(S0_BATCH.T)
    assert_same(npfunc.vmap(sir_step_inplace, in_dims=(1, 0, None), chunk_size=2)(cols, BETAS, 0.1), want)
    assert_same(cols, loop.T)


def test_inplace_sir_derivative_transforms_leave_the_state_as_numpy_does():
    want, want_state = _plain_inplace(S0, 0.5)
    J = fd(lambda s: sir_step_inplace(s.copy(), 0.5, 0.1), S0)
    f = lambda s: sir_step_inplace(s, 0.5, 0.1)  # noqa: E731
    s = S0.copy()
    assert_deriv(npfunc.grad(f)(s), J)
    assert_same(s, want_state)
    s = S0.copy()
    assert_deriv(npfunc.jacfwd(f)(s), J)
    assert_same(s, want_state)
    s = S0.copy()
    out, pull = npfunc.vjp(f, s)
    assert_same(out, want)
    assert_same(s, want_state)
    assert_deriv(pull(np.float64(1.0))[0], J)
    s = S0.copy()
    out, tangent = npfunc.jvp(f, (s,), (np.array([1.0, -1.0, 0.5]),))
    assert_same(out, want)
    assert_same(s, want_state)
    np.testing.assert_allclose(tangent, J @ np.array([1.0, -1.0, 0.5]), rtol=1e-6)
    s = S0.copy()
    out, lin = npfunc.linearize(f, s)
    assert_same(out, want)
    assert_same(s, want_state)
    np.testing.assert_allclose(lin(np.ones(3)), J.sum(), rtol=1e-6)
    s = S0.copy()
    assert_same(npfunc.functionalize(f)(s), want)
    assert_same(s, want_state)


def _prevalence_from_fresh_state(beta):
    state = np.array([0.99, 0.01, 0.0])  # a plain array: traced values cannot be written into it
    return sir_step_inplace(state, beta, 0.1)


def _prevalence_from_like_state(beta):
    state = np.zeros_like(beta, shape=3)  # the refusal's advice for a scalar beta
    state[:] = [0.99, 0.01, 0.0]
    return sir_step_inplace(state, beta, 0.1)


def test_fresh_plain_state_refuses_and_zeros_like_shape_works():
    """The known limitation: a plain buffer cannot hold traced values; the advised
    np.zeros_like(x, shape=n) (beta is a scalar) gives NumPy's values and derivative."""
    with pytest.raises((npfunc.errors.ConcretizationError, ValueError), match=r"zeros_like\(x, shape=shape\)"):
        try:
            npfunc.grad(_prevalence_from_fresh_state)(np.float64(0.5))
        except ValueError as err:  # a one-element write goes through NumPy's float(): the cause says it
            raise err.__cause__ or err
    b = np.float64(0.5)
    assert_same(_prevalence_from_like_state(b), _prevalence_from_fresh_state(b))
    assert_deriv(npfunc.grad(_prevalence_from_like_state)(b), fd(_prevalence_from_fresh_state, b))
    bs = np.array([0.3, 0.5])
    assert_same(npfunc.vmap(_prevalence_from_like_state)(bs), np.array([_prevalence_from_fresh_state(x) for x in bs]))
    assert_same(npfunc.jit(_prevalence_from_like_state)(b), _prevalence_from_fresh_state(b))


# ---- dtypes: float32 states, Python-float rates -------------------------------------------


def test_float32_sir_with_numpy_scalar_rates():
    for b in (np.float32(0.5), np.float64(0.5)):
        want = sir_float32(b)
        assert_same(npfunc.jit(sir_float32)(b), want, 1e-6)
        assert_same(npfunc.jvp(sir_float32, (b,), (type(b)(1.0),))[0], want, 1e-6)
        assert_same(npfunc.vjp(sir_float32, b)[0], want, 1e-6)
        assert npfunc.grad(sir_float32)(b).dtype == b.dtype
    assert_same(npfunc.jit(sir_float32)(0.5), sir_float32(0.5), 1e-6)  # a static Python float
    bs = np.array([0.4, 0.5], dtype=np.float32)
    assert_same(npfunc.vmap(sir_float32)(bs), np.array([sir_float32(b) for b in bs]), 1e-6)


@pytest.mark.xfail(strict=True, reason="a Python float primal given to jvp/vjp/linearize/grad_and_value becomes "
                                       "a strong float64 traced value, so float32 state * beta promotes to "
                                       "float64; plain NumPy treats the Python float as weak (NEP 50) and the "
                                       "primal output is float32 (the argument conversion in api/ would need a "
                                       "weak-scalar flag)")
def test_float32_sir_python_float_rate_primal_dtype():
    want = sir_float32(0.5)
    assert want.dtype == np.float32
    assert_same(npfunc.jvp(sir_float32, (0.5,), (1.0,))[0], want, 1e-6)
    assert_same(npfunc.vjp(sir_float32, 0.5)[0], want, 1e-6)
    assert_same(npfunc.grad_and_value(sir_float32)(0.5)[1], want, 1e-6)


def test_hill_float32_compositions():
    """float32 concentrations: vmap(grad) against a loop, chunking, in_dims=None for
    the EC50 and slope, the Hessian in the concentration and jit(grad)."""
    c = np.linspace(0.1, 10, 6, dtype=np.float32)
    g = npfunc.grad(hill)
    loop = np.array([g(ci) for ci in c])
    assert loop.dtype == np.float32
    assert_same(npfunc.vmap(g)(c), loop, 1e-6)
    assert_same(npfunc.vmap(g, chunk_size=4)(c), loop, 1e-6)
    assert_same(npfunc.jit(g)(c[2]), g(c[2]), 1e-6)
    ec, n = np.float32(3.0), np.float32(2.0)
    assert_same(npfunc.vmap(hill, in_dims=(0, None, None))(c, ec, n), hill(c, ec, n), 1e-6)
    d_ec50 = npfunc.vmap(npfunc.grad(hill, argnums=1), in_dims=(0, None))(c, ec)
    assert d_ec50.dtype == np.float32
    np.testing.assert_allclose(d_ec50, [fd(lambda e: hill(np.float64(ci), e), 3.0) for ci in c], rtol=1e-3)
    h = npfunc.hessian(lambda x: hill(x, ec, n))(np.float64(1.7))
    np.testing.assert_allclose(h, fd(npfunc.grad(lambda x: hill(x, ec, n)), 1.7), rtol=1e-5)


# ---- fitting: curve_fit, leastsq, minimize -----------------------------------------------------


def logistic_curve_fit_capped(y):
    """curve_fit with 'trf' and an evaluation budget (each fit alone needs 6 evaluations)."""
    f = lambda t, r, K, N0: K / (1 + (K / N0 - 1) * np.exp(-r * t))  # noqa: E731
    return scipy.optimize.curve_fit(f, T_OBS, y, p0=[0.5, 150, 10], method="trf", max_nfev=10)[0]


def test_logistic_curve_fit_implicit_derivative():
    """The derivative of the fit in the data is the implicit one, checked against
    differences with steps well above the solver's noise."""
    J = fd(logistic_curve_fit, N_OBS, eps=1e-2)
    assert_deriv(npfunc.jacrev(logistic_curve_fit)(N_OBS), J, rtol=1e-4, atol=5e-6)
    assert_deriv(npfunc.jit(npfunc.jacfwd(logistic_curve_fit))(N_OBS), J, rtol=1e-4, atol=5e-6)


def test_curve_fit_vmap_with_an_evaluation_budget_is_the_loop():
    """Regression: under vmap the stacked 'trf' solve shares one budget and one
    trust region, ran out of evaluations (status 0) where every fit alone
    converges, and returned its unconverged iterate (4e-5 from the loop); it now
    falls back to one SciPy solve per element, the loop's values."""
    ys = _batch(N_OBS, 3)
    assert_same(npfunc.vmap(logistic_curve_fit_capped)(ys), np.stack([logistic_curve_fit_capped(y) for y in ys]),
                1e-10)
    f = lambda t, r, K, N0: K / (1 + (K / N0 - 1) * np.exp(-r * t))  # noqa: E731

    def ls(y):
        res = scipy.optimize.least_squares(lambda p: f(T_OBS, *p) - y, [0.5, 150, 10], max_nfev=10)
        return res.x, res.cost

    _same_tree(npfunc.vmap(ls)(ys), _stack_tree([ls(y) for y in ys]), 1e-10)


def test_curve_fit_vmap_default_tolerance_agrees_to_the_solver_tolerance():
    """Without a budget the stacked solve converges; docs/solvers.md: a loop's values
    to the solver tolerance (here 1e-5 relative at curve_fit's default ftol)."""
    f = lambda t, r, K, N0: K / (1 + (K / N0 - 1) * np.exp(-r * t))  # noqa: E731
    fit = lambda y: scipy.optimize.curve_fit(f, T_OBS, y, p0=[0.5, 150, 10])[0]  # noqa: E731
    ys = _batch(N_OBS, 3)
    np.testing.assert_allclose(npfunc.vmap(fit)(ys), np.stack([fit(y) for y in ys]), rtol=1e-4)


def logistic_leastsq(y):
    """The older spelling: leastsq on the residual vector."""
    res = lambda p: p[1] / (1 + (p[1] / p[2] - 1) * np.exp(-p[0] * T_OBS)) - y  # noqa: E731
    p, ier = scipy.optimize.leastsq(res, [0.5, 150.0, 10.0])
    return p


def logistic_least_squares_lm(y):
    """The refusal's advice: least_squares(method='lm'), the same MINPACK solve."""
    res = lambda p: p[1] / (1 + (p[1] / p[2] - 1) * np.exp(-p[0] * T_OBS)) - y  # noqa: E731
    return scipy.optimize.least_squares(res, [0.5, 150.0, 10.0], method="lm").x


def test_leastsq_refuses_under_jit_naming_least_squares_and_the_advice_works():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*leastsq.*least_squares\(fun, x0, "
                                                               r"method='lm'\)"):
        npfunc.jit(logistic_leastsq)(N_OBS)
    np.testing.assert_allclose(logistic_least_squares_lm(N_OBS), logistic_leastsq(N_OBS), rtol=1e-7)
    assert_same(npfunc.jit(logistic_least_squares_lm)(N_OBS), logistic_least_squares_lm(N_OBS), 1e-10)
    assert_deriv(npfunc.jacrev(logistic_least_squares_lm)(N_OBS), fd(logistic_leastsq, N_OBS, eps=1e-2),
                 rtol=1e-3, atol=2e-5)


@pytest.mark.parametrize("transform", ["vmap", "jacrev"])
def test_leastsq_under_vmap_and_jacrev_raises_npfunc_error(transform):
    x = _batch(N_OBS) if transform == "vmap" else N_OBS
    with pytest.raises(npfunc.errors.NpfuncError, match="least_squares"):
        getattr(npfunc, transform)(logistic_leastsq)(x)


def test_poisson_growth_mle_minimize():
    """BFGS on a Poisson NLL: jit and vmap values; the implicit derivative in the
    counts against differences of the exact MLE (IRLS), which BFGS's answer
    approximates to its gtol."""
    cases = GROWTH_CASES.astype(float)
    assert_same(npfunc.jit(mle_growth)(cases), mle_growth(cases), 1e-10)
    cs = _batch(cases)
    np.testing.assert_allclose(npfunc.vmap(mle_growth)(cs), np.stack([mle_growth(c) for c in cs]), rtol=1e-6)
    np.testing.assert_allclose(mle_growth(cases), mle_growth_irls(cases), rtol=1e-5)
    assert_deriv(npfunc.jacrev(mle_growth)(cases), fd(mle_growth_irls, cases), rtol=1e-5)


def test_minimize_precision_loss_refuses_the_derivative_and_default_gtol_works():
    """A gtol BFGS cannot reach ends in 'precision loss' (success False): the value is
    SciPy's, the derivative a refusal; the advised fix (the solve's tolerance) works."""
    cases = GROWTH_CASES.astype(float)
    t = np.arange(len(cases))

    def mle(c, gtol):
        nll = lambda th: -np.sum(c * (th[0] + th[1] * t) - np.exp(th[0] + th[1] * t))  # noqa: E731
        return scipy.optimize.minimize(nll, np.array([1.0, 0.1]), method="BFGS", options={"gtol": gtol}).x

    with pytest.raises(npfunc.errors.NpfuncError, match=r"minimize did not converge.*Fix the solve \(tolerances"):
        npfunc.jacrev(lambda c: mle(c, 1e-9))(cases)
    assert_deriv(npfunc.jacrev(lambda c: mle(c, 1e-5))(cases), fd(mle_growth_irls, cases), rtol=1e-5)


# ---- compositions -------------------------------------------------------------------------------


@pytest.mark.parametrize("f, x", [(emax_nll, np.array([2.0, 18.0, 0.2, 1.1, -0.5])),
                                  (poisson_loglik, np.array([1.0, 2.0])),
                                  (nb_loglik, np.array([2.0, 0.5])),
                                  (probit_loglik, np.array([-2.0, 1.0])),
                                  (nbinom_growth_nll, np.array([2.5, 0.4])),
                                  (logistic_sse, np.array([0.5, 180.0, 10.0]))])
def test_likelihood_hessians(f, x):
    """Observed information: hessian, jacfwd(jacrev), jit(hessian) against differences of grad."""
    H = fd(npfunc.grad(f), x)
    assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-5)
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, rtol=1e-5)
    assert_deriv(npfunc.jit(npfunc.hessian(f))(x), H, rtol=1e-5)


def test_emax_per_patient_grad_vmap_and_jit_grad():
    """Per-subject gradients of the Emax NLL by vmap(grad) and jit(grad), against a loop."""
    th = _batch(np.array([2.0, 18.0, 0.2, 1.1, -0.5]), 4)
    g = npfunc.grad(emax_nll)
    loop = np.stack([g(t) for t in th])
    assert_same(npfunc.vmap(g)(th), loop, 1e-10)
    jg = npfunc.jit(g)
    assert_same(jg(th[0]), loop[0], 1e-10)
    assert_same(jg(th[3]), loop[3], 1e-10)
    for t, want in zip(th, loop):
        assert_deriv(want, fd(emax_nll, t))


def test_seir_jvp_vjp_linearize_and_vmap_of_grad():
    x = np.log([0.5, 0.2, 0.1])
    J = _fd_case("seir-solve_ivp")
    v, u = np.array([1.0, -0.5, 0.2]), np.array([1.0, 2.0, -1.0])
    primal, tangent = npfunc.jvp(seir_ivp, (x,), (v,))
    assert_same(primal, seir_ivp(x), 1e-8)
    assert_deriv(tangent, J @ v, rtol=1e-4)
    out, pull = npfunc.vjp(seir_ivp, x)
    assert_same(out, seir_ivp(x), 1e-8)
    assert_deriv(pull(u)[0], u @ J, rtol=1e-4)
    out, lin = npfunc.linearize(seir_ivp, x)
    assert_same(out, seir_ivp(x), 1e-8)
    assert_deriv(lin(v), J @ v, rtol=1e-4)


def test_age_sir_vmap_of_grad_and_jacfwd_of_jacrev():
    """Per-scenario gradients of the total attack rate (vmap(grad) against a loop) and
    its Hessian in the per-group transmission rates."""
    total = lambda b: age_sir(b) @ np.array([0.3, 0.5, 0.2])  # noqa: E731
    bs = _batch(np.array([0.15, 0.12, 0.1]), 4)
    g = npfunc.grad(total)
    assert_same(npfunc.vmap(g, chunk_size=3)(bs), np.stack([g(b) for b in bs]), 1e-12)
    assert_deriv(g(bs[0]), fd(total, bs[0]))
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(total))(bs[0]), fd(g, bs[0]), rtol=1e-5)


def test_bateman_patients_vmap_in_dims_none_and_jacrev_in_time():
    """Patients' (ka, ke, V) batched against a shared sampling grid (in_dims=(0, None));
    the derivative in the sampling times, the grid as argument."""
    ps = _batch(np.array([1.0, 0.2, 20.0]), 4)
    t = np.linspace(0.5, 47.5, 20)
    assert_same(npfunc.vmap(bateman_doses, in_dims=(0, None))(ps, t), np.stack([bateman_doses(p, t) for p in ps]))
    assert_same(npfunc.vmap(bateman_doses, in_dims=(None, 0))(ps[0], np.stack([t, t + 0.25])),
                np.stack([bateman_doses(ps[0], t), bateman_doses(ps[0], t + 0.25)]))
    dt = npfunc.jacfwd(bateman_doses, argnums=1)(ps[0], t)
    assert_deriv(dt, fd(lambda s: bateman_doses(ps[0], s), t))


def rk4_step(y, p, dt=0.25):
    beta, gamma = p

    def f(y):
        S, I, R = y
        return np.stack([-beta * S * I, beta * S * I - gamma * I, gamma * I])

    k1 = f(y)
    k2 = f(y + dt / 2 * k1)
    k3 = f(y + dt / 2 * k2)
    k4 = f(y + dt * k3)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def sir_checkpointed(p, checkpointed=True):
    """A long RK4 run with each step rematerialised (npfunc.checkpoint) in reverse mode."""
    step = npfunc.checkpoint(rk4_step) if checkpointed else rk4_step
    y = np.array([0.99, 0.01, 0.0])
    for _ in range(20):
        y = step(y, p)
    return y[2]


def test_checkpointed_rk4_matches_plain_and_differences():
    p = np.array([0.5, 0.1])
    assert_same(sir_checkpointed(p), sir_checkpointed(p, False))
    G = fd(lambda q: sir_checkpointed(q, False), p)
    assert_deriv(npfunc.grad(sir_checkpointed)(p), G)
    assert_deriv(npfunc.jit(npfunc.grad(sir_checkpointed))(p), G)
    assert_same(npfunc.vmap(sir_checkpointed)(_batch(p)), np.stack([sir_checkpointed(q, False) for q in _batch(p)]))


@npfunc.custom_vjp
def safe_log_rate(mu):
    """log(mu) with its cotangent clipped for tiny rates (a common stabiliser in count models)."""
    return np.log(mu)


def _safe_log_fwd(mu):
    return np.log(mu), mu


def _safe_log_bwd(mu, g):
    return (g / np.maximum(mu, 1e-8),)


safe_log_rate.defvjp(_safe_log_fwd, _safe_log_bwd)


def poisson_custom(beta):
    mu = np.exp(X_DESIGN @ beta)
    return np.sum(Y_COUNTS * safe_log_rate(mu) - mu - sps.gammaln(Y_COUNTS + 1))


def test_custom_vjp_poisson_matches_plain():
    b = np.array([1.0, 2.0])
    assert_same(poisson_custom(b), poisson_loglik(b))
    G = fd(poisson_loglik, b)
    assert_deriv(npfunc.grad(poisson_custom)(b), G)
    assert_deriv(npfunc.jit(npfunc.grad(poisson_custom))(b), G)
    assert_same(npfunc.vmap(poisson_custom)(_batch(b)), np.stack([poisson_loglik(r) for r in _batch(b)]))


# ---- scalar-style code: math.*, np.vectorize, np.piecewise ------------------------------------


def bateman_math(ka):
    """A single-dose concentration written with math.exp (scalar code)."""
    ke, t = 0.2, 3.0
    return ka / (ka - ke) * (math.exp(-ke * t) - math.exp(-ka * t))


def bateman_np(ka):
    ke, t = 0.2, 3.0
    return ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t))


def test_math_exp_refuses_naming_np_exp_which_works():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"grad\(f\).*math\.exp\(x\).*use np\.exp\(x\)"):
        npfunc.grad(bateman_math)(1.0)
    assert bateman_np(1.0) == bateman_math(1.0)
    assert_deriv(npfunc.grad(bateman_np)(1.0), fd(bateman_math, 1.0))


def hill_scalar(c, ec50=2.0, n=1.5):
    """A scalar Hill function with an early return, vectorised with np.vectorize."""
    if c <= 0:
        return 0.0
    return c ** n / (ec50 ** n + c ** n)


HILL_V = np.vectorize(hill_scalar)


def test_np_vectorize_hill_derivatives_and_jit_refusal():
    c = np.array([0.3, 0.5, 2.0, 8.0])
    assert_deriv(npfunc.jacrev(HILL_V)(c), fd(HILL_V, c))
    total = lambda e: HILL_V(c, e).sum()  # noqa: E731
    assert_deriv(npfunc.grad(total)(2.0), fd(total, 2.0))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\): bool\(x\).*np\.where"):
        npfunc.jit(HILL_V)(c)


def infusion(p, piecewise=np.piecewise):
    """Zero-order infusion for T hours then first-order washout, by np.piecewise."""
    k, R = p
    t = np.linspace(0, 10, 11)
    T = 4.0
    return piecewise(t, [t <= T, t > T], [lambda t: R / k * (1 - np.exp(-k * t)),
                                          lambda t: R / k * (1 - np.exp(-k * T)) * np.exp(-k * (t - T))])


def test_np_piecewise_refuses_naming_npfunc_piecewise_which_works():
    p = np.array([0.3, 2.0])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev\(f\).*call npfunc\.numpy\.piecewise"):
        npfunc.jacrev(infusion)(p)
    fixed = lambda q: infusion(q, npfunc.numpy.piecewise)  # noqa: E731
    assert_same(fixed(p), infusion(p))
    assert_same(npfunc.jit(fixed)(p), infusion(p))
    assert_deriv(npfunc.jacrev(fixed)(p), fd(infusion, p))
    assert_same(npfunc.vmap(fixed)(_batch(p)), np.stack([infusion(q) for q in _batch(p)]))


def test_incidence_nll_jit_of_vmap_of_grad():
    """Regression: jit(vmap(grad(...))) of an ODE solve raised a raw TypeError (the
    batched adjoint indexed the solve's record box with an integer, which gives the
    record object itself, not an array jit could record); now the loop's gradients,
    also on a replay with new values."""
    th = _batch(np.log([0.5, 0.2]), 2)
    g = npfunc.grad(sir_incidence_nll)
    jg = npfunc.jit(npfunc.vmap(g))
    for x in (th, th + 0.05):
        np.testing.assert_allclose(jg(x), np.stack([g(r) for r in x]), rtol=1e-7)
    assert jg.trace_count == 1


def test_einsum_out_refuses_and_assigning_works():
    """np.einsum(..., out=buf) on traced values: a refusal saying to assign the result."""
    L = np.array([[0.0, 1.5, 1.0], [0.6, 0, 0], [0, 0.5, 0]])

    def project_out(n):
        out = np.zeros_like(n)
        np.einsum("ij,j->i", L, n, out=out)
        return out

    def project(n):
        return np.einsum("ij,j->i", L, n)

    n = np.array([100.0, 50.0, 20.0])
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"einsum.*out=.*assign the result"):
        npfunc.jacrev(project_out)(n)
    assert_same(project(n), project_out(n))
    assert_deriv(npfunc.jacrev(project)(n), fd(project_out, n))


def test_np_diag_of_a_list_of_scalars_refuses_and_np_stack_works():
    p = np.array([0.3, 0.1, 0.05, 0.2, 0.1])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.diag.*np\.stack"):
        npfunc.jacrev(ngm_two_group_diag)(p)

    def fixed(p):
        b11, b12, b21, b22, g = p
        F = np.block([[np.array([[b11]]), np.array([[b12]])], [np.array([[b21]]), np.array([[b22]])]])
        V = np.diag(np.stack([g, g]))
        return np.max(np.abs(np.linalg.eigvals(F @ np.linalg.inv(V))))

    assert_same(fixed(p), ngm_two_group_diag(p))
    assert_same(npfunc.jit(fixed)(p), ngm_two_group_diag(p))
    assert_deriv(npfunc.jacrev(fixed)(p), fd(ngm_two_group_diag, p))


def test_linregress_doubling_time_derivative_and_jvp():
    assert_deriv(npfunc.grad(lambda y: doubling_time_linregress(y)[0])(DAILY),
                 fd(lambda y: doubling_time_linregress(y)[0], DAILY))
    primal, _ = npfunc.jvp(doubling_time_linregress, (DAILY,), (np.ones(10),))
    _same_tree(primal, doubling_time_linregress(DAILY))


def linregress_all(y):
    r = st.linregress(DAYS, np.log(y))
    return r.slope, r.intercept, r.rvalue, r.pvalue, r.stderr, r.intercept_stderr


def test_linregress_under_jit_vmap_and_derivatives():
    """Regression: scipy.stats.linregress under jit/vmap ran SciPy's own code, whose
    NaN check asked bool() of the traced data and was refused with the advice to use
    np.where in the user's code; it has a twin now: SciPy's values (NumPy scalars),
    replays, a batch, derivatives of every field."""
    want = linregress_all(DAILY)
    jf = npfunc.jit(linregress_all)
    _same_tree(jf(DAILY), want, 1e-12, 1e-300)
    other = DAILY * (1 + 0.1 * np.cos(DAYS))
    _same_tree(jf(other), linregress_all(other), 1e-12, 1e-300)
    _same_tree(npfunc.jit(doubling_time_linregress)(DAILY), doubling_time_linregress(DAILY), 1e-12)
    ys = np.stack([DAILY, other])
    _same_tree(npfunc.vmap(linregress_all)(ys), _stack_tree([linregress_all(y) for y in ys]), 1e-12, 1e-300)
    for k in range(6):
        field = lambda y: linregress_all(y)[k]  # noqa: E731
        assert_deriv(npfunc.jacrev(field)(DAILY), fd(field, DAILY), atol=1e-10)
    one_sided = lambda y: st.linregress(np.log(y), DAYS, alternative="less").pvalue  # noqa: E731
    assert_same(npfunc.jit(one_sided)(DAILY), one_sided(DAILY), 1e-10, 1e-300)


def test_jit_returning_a_scipy_result_object_refuses():
    """Regression: jit returned a SciPy result object (OptimizeResult, OdeResult,
    LinregressResult) as a constant holding the recording's traced values, with no
    error; it refuses now (vmap did already), and returning its arrays works."""
    with pytest.raises(npfunc.errors.OutputTypeError, match=r"jit: output 0 is a LinregressResult holding traced"):
        npfunc.jit(lambda y: st.linregress(DAYS, np.log(y)))(DAILY)

    def fit(y):
        return scipy.optimize.minimize(lambda th: np.sum((th[0] + th[1] * DAYS - np.log(y)) ** 2), np.zeros(2))

    with pytest.raises(npfunc.errors.OutputTypeError, match=r"OptimizeResult holding traced values.*dict\(res\)"):
        npfunc.jit(fit)(DAILY)
    got = npfunc.jit(lambda y: dict(fit(y)))(DAILY)
    np.testing.assert_allclose(got["x"], fit(DAILY).x, rtol=1e-8)
    assert got["success"] is True


def test_weighted_polyfit_cov_jit_refusal_and_what_runs_it():
    """np.polyfit with traced weights branches on the rank (NumPy's own code): jit
    refuses and says grad, jvp and vmap run it; they give NumPy's values."""
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.polyfit.*grad, jvp and vmap run it"):
        npfunc.jit(growth_rate_weighted_polyfit)(DAILY)
    ys = np.stack([DAILY, DAILY * (1 + 0.1 * np.cos(DAYS))])
    loop = _stack_tree([growth_rate_weighted_polyfit(y) for y in ys])
    _same_tree(npfunc.vmap(growth_rate_weighted_polyfit)(ys), loop, 1e-10)
    _same_tree(npfunc.jvp(growth_rate_weighted_polyfit, (DAILY,), (np.ones(10),))[0],
               growth_rate_weighted_polyfit(DAILY), 1e-12)
    assert_deriv(npfunc.grad(lambda y: growth_rate_weighted_polyfit(y)[1])(DAILY),
                 fd(lambda y: growth_rate_weighted_polyfit(y)[1], DAILY))


def test_dosing_interval_minimize_scalar_and_quad_auc():
    assert_deriv(npfunc.grad(dosing_interval)(0.2), fd(dosing_interval, 0.2), rtol=1e-4)
    assert_same(npfunc.jit(dosing_interval)(np.float64(0.2)), dosing_interval(np.float64(0.2)), 1e-10)
    kes = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(npfunc.vmap(dosing_interval)(kes), [dosing_interval(k) for k in kes], rtol=1e-7)
    p = np.array([1.0, 0.2])
    assert_deriv(npfunc.grad(auc_quad)(p), fd(auc_quad, p))
