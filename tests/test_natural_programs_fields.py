"""More natural programs, each written first as plain NumPy/SciPy the way a
practitioner of its field writes it, then run under npfunc's transforms and
compared with the plain program (values) and central differences
(derivatives)."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

import npfunc
from npfunc.testing import numerical_jacobian

# ---- pharmacokinetics ----------------------------------------------------------------------

_T_OBS = np.array([0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0])
_C_OBS = np.array([4.1, 6.8, 7.9, 6.1, 4.4, 3.2, 1.6])


def pk_one_compartment(log_params):
    """Oral dose, first-order absorption and elimination (Bateman function);
    squared error of log concentrations."""
    ka, ke, V = np.exp(log_params)
    dose = 100.0
    conc = dose * ka / (V * (ka - ke)) * (np.exp(-ke * _T_OBS) - np.exp(-ka * _T_OBS))
    resid = np.log(conc) - np.log(_C_OBS)
    return 0.5 * np.dot(resid, resid)


# ---- statistical physics -------------------------------------------------------------------

def mean_field_free_energy(m):
    """Mean-field Ising free energy per spin on a ring of magnetisations."""
    J, h, T = 1.0, 0.1, 1.5
    neighbours = np.roll(m, 1) + np.roll(m, -1)
    energy = -0.5 * J * np.sum(m * neighbours) - h * np.sum(m)
    p_up, p_down = (1 + m) / 2, (1 - m) / 2
    entropy = -np.sum(p_up * np.log(p_up) + p_down * np.log(p_down))
    return (energy - T * entropy) / m.size


# ---- signal processing ---------------------------------------------------------------------

_SIGNAL = np.sin(np.linspace(0, 8 * np.pi, 64)) + 0.3 * np.cos(np.linspace(0, 40 * np.pi, 64))


def fir_highband_power(taps):
    """Filter a signal with an FIR filter, then the power above a cutoff in its spectrum."""
    y = np.convolve(_SIGNAL, taps, mode="same")
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(y.size)
    return spectrum[freqs > 0.1].sum() / spectrum.sum()


# ---- econometrics --------------------------------------------------------------------------

_SERIES = np.cumsum(np.random.default_rng(7).standard_normal(40)) * 0.1


def ar1_negative_log_likelihood(params):
    """Conditional Gaussian AR(1) likelihood of a demeaned series."""
    phi, log_sigma = params
    y = _SERIES - _SERIES.mean()
    resid = y[1:] - phi * y[:-1]
    sigma2 = np.exp(2 * log_sigma)
    n = resid.size
    return 0.5 * n * np.log(2 * np.pi * sigma2) + 0.5 * np.sum(resid ** 2) / sigma2


# ---- robotics ------------------------------------------------------------------------------

def arm_reach_error(angles):
    """Planar three-link arm: forward kinematics by cumulative angles, squared
    distance of the tip from a target."""
    lengths = np.array([1.0, 0.8, 0.5])
    absolute = np.cumsum(angles)
    joints = np.stack([lengths * np.cos(absolute), lengths * np.sin(absolute)], axis=1)
    tip = joints.sum(axis=0)
    target = np.array([1.2, 1.1])
    return np.sum((tip - target) ** 2)


# ---- ecology -------------------------------------------------------------------------------

def logistic_harvest(params):
    """Logistic growth with proportional harvesting, forward Euler into a
    preallocated trajectory, biomass kept non-negative with np.clip."""
    r, K, q = params
    n = np.zeros(50, like=params)
    n[0] = 0.2
    for t in range(1, 50):
        growth = r * n[t - 1] * (1 - n[t - 1] / K)
        n[t] = np.clip(n[t - 1] + 0.1 * (growth - q * n[t - 1]), 0.0, None)
    return n[-10:].mean()


# ---- finance -------------------------------------------------------------------------------

def black_scholes_call(inputs):
    """European call price (SciPy's normal CDF)."""
    S, K, T, r, sigma = inputs
    d1 = (np.log(S / K) + (r + 0.5 * sigma ** 2) * T) / (sigma * np.sqrt(T))
    d2 = d1 - sigma * np.sqrt(T)
    return S * scipy.stats.norm.cdf(d1) - K * np.exp(-r * T) * scipy.stats.norm.cdf(d2)


# ---- machine learning ----------------------------------------------------------------------

_POINTS = np.random.default_rng(11).standard_normal((30, 2)) + np.array([[1.0, 0.0]])


def gaussian_mixture_nll(flat):
    """Two isotropic Gaussian components: means, log-scales and a mixing logit."""
    means = flat[:4].reshape(2, 2)
    log_s = flat[4:6]
    logit = flat[6]
    w = np.array([scipy.special.expit(logit), 1 - scipy.special.expit(logit)])
    d2 = np.einsum("nkd,nkd->nk", _POINTS[:, None, :] - means, _POINTS[:, None, :] - means)
    log_comp = -d2 / (2 * np.exp(2 * log_s)) - 2 * log_s - np.log(2 * np.pi)
    return -np.mean(scipy.special.logsumexp(log_comp + np.log(w), axis=1))


# ---- geostatistics -------------------------------------------------------------------------

_SITES = np.random.default_rng(5).uniform(0, 10, size=(12, 2))
_VALUES = np.sin(_SITES[:, 0] / 3) + 0.1 * _SITES[:, 1]


def variogram_fit_loss(params):
    """Empirical semivariances of site pairs against an exponential model."""
    sill, rng_ = params
    i, j = np.triu_indices(len(_SITES), k=1)
    h = np.sqrt(np.sum((_SITES[i] - _SITES[j]) ** 2, axis=1))
    gamma = 0.5 * (_VALUES[i] - _VALUES[j]) ** 2
    model = sill * (1 - np.exp(-h / rng_))
    return np.mean((gamma - model) ** 2)


# ---- optics --------------------------------------------------------------------------------

def thin_film_reflectance(params):
    """Reflectance of a single film at several wavelengths (complex amplitudes)."""
    n_film, thickness = params
    wavelengths = np.linspace(400.0, 700.0, 7)
    n0, n2 = 1.0, 1.52
    r01 = (n0 - n_film) / (n0 + n_film)
    r12 = (n_film - n2) / (n_film + n2)
    phase = np.exp(2j * (2 * np.pi * n_film * thickness / wavelengths))
    r = (r01 + r12 * phase) / (1 + r01 * r12 * phase)
    return np.mean(np.abs(r) ** 2)


# ---- control / estimation ------------------------------------------------------------------

_MEASUREMENTS = np.array([0.9, 1.4, 2.2, 2.9, 4.1, 5.0, 5.8, 7.2])


def kalman_innovation_loglik(log_noise):
    """Scalar random-walk-plus-drift Kalman filter, state and variance updated in
    place each step; Gaussian log-likelihood of the innovations."""
    q, r = np.exp(log_noise)
    state = np.array([0.0, 1.0])  # level, drift
    P = np.eye(2)
    F = np.array([[1.0, 1.0], [0.0, 1.0]])
    H = np.array([1.0, 0.0])
    total = 0.0
    for z in _MEASUREMENTS:
        state = F @ state
        P = F @ P @ F.T + q * np.eye(2)
        S = H @ P @ H + r
        K = P @ H / S
        innovation = z - H @ state
        state = state + K * innovation
        P = P - np.outer(K, H) @ P
        total += -0.5 * (np.log(2 * np.pi * S) + innovation ** 2 / S)
    return -total


# ---- a second batch: imaging, climate, genetics, structures, kinetics, economics, statistics,
#      dynamics, networks, mechanics ------------------------------------------------------

def image_smoothness(img_flat):
    """Total variation of an image after padding, 2-d gradient energy."""
    img = img_flat.reshape(5, 6)
    p = np.pad(img, 1, mode="edge")
    dx = p[1:-1, 2:] - p[1:-1, :-2]
    dy = p[2:, 1:-1] - p[:-2, 1:-1]
    gy, gx = np.gradient(img)
    return np.sum(np.sqrt(dx ** 2 + dy ** 2 + 1e-3)) + 0.1 * np.sum(gx ** 2 + gy ** 2)


def moving_average_anomaly(temps):
    """Climate: 5-point moving average and the mean exceedance above it."""
    kernel = np.ones(5) / 5
    smooth = np.convolve(temps, kernel, mode="valid")
    anomaly = temps[2:-2] - smooth
    return np.mean(np.where(anomaly > 0, anomaly, 0.1 * anomaly) ** 2) + np.cumsum(temps)[-1] * 0.01


def hmm_forward(logits):
    """Genetics: HMM forward algorithm in log space with a loop and in-place rows."""
    T, K = 6, 3
    trans = scipy.special.log_softmax(logits[:9].reshape(3, 3), axis=1)
    emit = scipy.special.log_softmax(logits[9:].reshape(3, 2), axis=1)
    obs = np.array([0, 1, 1, 0, 1, 0])
    alpha = np.zeros((T, K), like=logits)
    alpha[0] = np.log(1.0 / K) + emit[:, obs[0]]
    for t in range(1, T):
        alpha[t] = scipy.special.logsumexp(alpha[t - 1][:, None] + trans, axis=0) + emit[:, obs[t]]
    return scipy.special.logsumexp(alpha[-1])


def truss_compliance(areas):
    """Structural mechanics: assemble a stiffness matrix with np.add.at, solve, compliance."""
    n_nodes = 4
    elems = np.array([[0, 1], [1, 2], [2, 3], [0, 2], [1, 3]])
    K = np.zeros((n_nodes, n_nodes), like=areas)
    for e, (i, j) in enumerate(elems):
        k = areas[e] * np.array([[1.0, -1.0], [-1.0, 1.0]])
        np.add.at(K, (np.array([i, i, j, j]), np.array([i, j, i, j])), k.ravel())
    Kr = K[1:, 1:]
    f = np.array([0.0, 0.0, 1.0])
    u = np.linalg.solve(Kr, f)
    return f @ u


def kinetics_odeint(k):
    """Chemistry: A -> B -> C with odeint."""
    def rhs(y, t):
        return np.array([-k[0] * y[0], k[0] * y[0] - k[1] * y[1], k[1] * y[1]])
    t = np.linspace(0, 3, 7)
    sol = scipy.integrate.odeint(rhs, np.array([1.0, 0.0, 0.0]), t, rtol=1e-11, atol=1e-12)
    return sol[-1, 1] + sol[3, 2]


def value_iteration(rewards):
    """Economics: Bellman value iteration with np.max over actions."""
    P = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.3, 0.7]]])  # action, state, next
    R = rewards.reshape(2, 2)
    V = np.zeros(2)
    for _ in range(30):
        Q = R + 0.9 * np.einsum("asn,n->as", P, V)
        V = np.max(Q, axis=0)
    return V.sum()


def cholesky_whitening(params):
    a, b, c = params
    S = np.array([[a, b], [b, c]])
    L = np.linalg.cholesky(S)
    z = np.linalg.solve(L, np.array([1.0, 2.0]))
    return z @ z + 2 * np.sum(np.log(np.diag(L)))


def logistic_map_bifurcation(r):
    x = 0.3
    xs = []
    for _ in range(40):
        x = r[0] * x * (1 - x)
        xs.append(x)
    return np.var(np.array(xs[-10:]))


def softplus_network(w):
    X = np.linspace(-1, 1, 12).reshape(6, 2)
    h = np.logaddexp(0, X @ w[:4].reshape(2, 2))
    return np.sum(np.tanh(h @ w[4:6]) ** 2)


def trapezoid_energy(p):
    t = np.linspace(0, 2, 21)
    x = p[0] * np.exp(-p[1] * t) * np.cos(3 * t)
    v = np.gradient(x, t)
    return np.trapezoid(v ** 2, t)


PROGRAMS = {
    "pharmacokinetics": (pk_one_compartment, np.log(np.array([1.2, 0.2, 10.0]))),
    "mean-field": (mean_field_free_energy, np.array([0.3, -0.2, 0.5, 0.1, -0.4, 0.25])),
    "fir-filter": (fir_highband_power, np.array([0.25, 0.5, 0.25, 0.1, -0.05])),
    "ar1": (ar1_negative_log_likelihood, np.array([0.7, -1.5])),
    "robot-arm": (arm_reach_error, np.array([0.4, 0.6, -0.3])),
    "logistic-harvest": (logistic_harvest, np.array([1.1, 1.5, 0.2])),
    "black-scholes": (black_scholes_call, np.array([100.0, 95.0, 0.5, 0.02, 0.25])),
    "gaussian-mixture": (gaussian_mixture_nll, np.array([1.0, 0.2, -0.5, 0.1, 0.1, -0.2, 0.3])),
    "variogram": (variogram_fit_loss, np.array([0.6, 2.5])),
    "thin-film": (thin_film_reflectance, np.array([1.38, 110.0])),
    "kalman": (kalman_innovation_loglik, np.log(np.array([0.05, 0.2]))),
    "image": (image_smoothness, np.linspace(0, 1, 30) ** 2),
    "climate": (moving_average_anomaly, np.sin(np.linspace(0, 6, 20)) + 0.1 * np.arange(20)),
    "hmm": (hmm_forward, np.linspace(-1, 1, 15)),
    "truss (np.add.at)": (truss_compliance, np.array([1.0, 2.0, 1.5, 0.7, 1.2])),
    "odeint": (kinetics_odeint, np.array([1.3, 0.6])),
    "value-iteration": (value_iteration, np.array([1.0, 0.5, 0.2, 0.9])),
    "cholesky": (cholesky_whitening, np.array([2.0, 0.3, 1.5])),
    "logistic-map": (logistic_map_bifurcation, np.array([3.3])),
    "softplus-network": (softplus_network, np.linspace(-0.5, 0.5, 6)),
    "trapezoid": (trapezoid_energy, np.array([1.0, 0.4])),
}


_differences = functools.partial(numerical_jacobian, relative=True)

@functools.lru_cache(maxsize=None)
def _expected(name):
    f, x = PROGRAMS[name]
    return f(x.copy()), _differences(f, x)


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("transform", ["grad", "jit(grad)", "jacrev", "jacfwd", "vjp"])
def test_derivatives_match_differences(name, transform):
    f, x = PROGRAMS[name]
    value, g = _expected(name)
    if transform == "vjp":
        out, pull = npfunc.vjp(f, x.copy())
        np.testing.assert_allclose(out, value, rtol=1e-12)
        got = pull(np.ones_like(out))[0]
    else:
        make = {"grad": npfunc.grad, "jit(grad)": lambda f: npfunc.jit(npfunc.grad(f)),
                "jacrev": npfunc.jacrev, "jacfwd": npfunc.jacfwd}[transform]
        got = make(f)(x.copy())
    np.testing.assert_allclose(got, g, rtol=2e-5, atol=1e-8)
    np.testing.assert_array_equal(x, PROGRAMS[name][1])  # the input is left alone


@pytest.mark.parametrize("name", PROGRAMS)
def test_values_under_vmap_and_jit(name):
    f, x = PROGRAMS[name]
    xs = np.stack([x, 1.01 * x, 0.98 * x])
    np.testing.assert_allclose(npfunc.vmap(f)(xs), [f(v.copy()) for v in xs], rtol=1e-10, atol=1e-13)
    jf = npfunc.jit(f)
    for v in xs:  # the recording, then replays on other values
        np.testing.assert_allclose(jf(v.copy()), f(v.copy()), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", PROGRAMS)
def test_per_sample_gradients_are_the_gradients(name):
    f, x = PROGRAMS[name]
    xs = np.stack([x, 1.01 * x, 0.98 * x])
    want = np.stack([npfunc.grad(f)(v.copy()) for v in xs])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(xs), want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["pharmacokinetics", "ar1", "robot-arm", "black-scholes", "variogram",
                                  "thin-film", "kalman"])
def test_hessians_match_differences_of_the_gradient(name):
    f, x = PROGRAMS[name]
    H = npfunc.hessian(f)(x.copy())
    H_fd = np.stack([_differences(lambda v: npfunc.grad(f)(v)[i], x, 1e-5) for i in range(x.size)])
    np.testing.assert_allclose(H, H_fd, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(H_fd).max()))
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(H).max()))
