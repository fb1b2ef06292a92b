"""Natural finance / econometrics / time-series programs, written the way quants
and applied economists write them: Black-Scholes with ``scipy.stats.norm`` and
its Greeks, implied volatility by Newton iterations (with a Python ``break``)
and by ``scipy.optimize.brentq``, Monte Carlo pricing with a seeded generator
inside the function, GARCH(1,1) and AR(2) recursions as Python loops over
preallocated arrays and via ``scipy.signal.lfilter``, a local-level Kalman
filter + RTS smoother, portfolio volatility from ``np.cov`` and mean-variance
weights by ``np.linalg.solve``, cumulative returns (``np.cumprod``,
``np.log1p``, ``np.diff``), drawdowns with ``np.maximum.accumulate``, rolling
windows (``np.convolve``, cumsum trick, ``sliding_window_view``), Holt and
EWMA smoothing, historical VaR/CVaR (``np.percentile``/``np.quantile``), a
bond priced off an ``np.interp`` zero curve, yield duration/convexity, ACF by
``np.correlate``, in-place normalisation of arguments.

Each program is compared under npfunc's transforms with the plain program:
values (jit, vmap against a loop over the rows, the value of grad_and_value;
dtype, shape and Python type), what is left in the caller's arrays, and
derivatives (grad, jacrev, jacfwd, hessian, jvp, vjp) against closed forms
and five-point central differences, plus compositions.  The tests at the end
pin the findings (silent differences, refusals of natural code, poor error
messages) as strict xfails.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

import npfunc
from npfunc.errors import (
    BatchedConversionError,
    ConcretizationError,
    DataDependentShapeError,
    NpfuncError,
    RandomnessError,
)
from natural_checks import assert_deriv, assert_same, fd




def loop(f, xs, *args):
    return np.stack([f(x, *args) for x in xs])


# ---- the programs ------------------------------------------------------------------------


def bs_call(p):
    """Black-Scholes European call price; p = [S, K, T, r, sigma]."""
    S, K, T, r, sigma = p[0], p[1], p[2], p[3], p[4]
    sqrtT = np.sqrt(T)
    d1 = (np.log(S / K) + (r + 0.5 * sigma ** 2) * T) / (sigma * sqrtT)
    d2 = d1 - sigma * sqrtT
    return S * norm.cdf(d1) - K * np.exp(-r * T) * norm.cdf(d2)


def bs_greeks_closed(p):
    """Closed-form delta, vega, gamma, rho of a call (plain NumPy, the reference)."""
    S, K, T, r, sigma = p
    d1 = (np.log(S / K) + (r + 0.5 * sigma ** 2) * T) / (sigma * np.sqrt(T))
    d2 = d1 - sigma * np.sqrt(T)
    delta = norm.cdf(d1)
    vega = S * norm.pdf(d1) * np.sqrt(T)
    gamma = norm.pdf(d1) / (S * sigma * np.sqrt(T))
    rho = K * T * np.exp(-r * T) * norm.cdf(d2)
    return delta, vega, gamma, rho


def implied_vol(price, S=100.0, K=105.0, T=0.75, r=0.02, n_iter=30, tol=1e-14):
    """Newton iterations for the Black-Scholes implied volatility, stopping on a small step."""
    sigma = 0.3
    for _ in range(n_iter):
        sqrtT = np.sqrt(T)
        d1 = (np.log(S / K) + (r + 0.5 * sigma * sigma) * T) / (sigma * sqrtT)
        d2 = d1 - sigma * sqrtT
        model = S * norm.cdf(d1) - K * np.exp(-r * T) * norm.cdf(d2)
        vega = S * norm.pdf(d1) * sqrtT
        step = (model - price) / vega
        sigma = sigma - step
        if abs(step) < tol:
            break
    return sigma


def implied_vol_brentq(price, S=100.0, K=105.0, T=0.75, r=0.02):
    """Implied volatility by bracketing root finding (scipy.optimize.brentq)."""
    def objective(s):
        return bs_call(np.array([S, K, T, r, s])) - price
    return scipy.optimize.brentq(objective, 1e-4, 3.0, xtol=1e-14)


def mc_call(theta, n_paths=20000):
    """Monte Carlo call price; theta = [S0, sigma]; fixed-seed generator inside."""
    rng = np.random.default_rng(1234)
    S0, sigma = theta[0], theta[1]
    K, T, r = 100.0, 1.0, 0.03
    z = rng.standard_normal(n_paths)
    ST = S0 * np.exp((r - 0.5 * sigma ** 2) * T + sigma * np.sqrt(T) * z)
    payoff = np.maximum(ST - K, 0.0)
    return np.exp(-r * T) * payoff.mean()


def mc_call_global(theta, n_paths=2000):
    """Monte Carlo call price drawing from the legacy global generator (np.random.seed)."""
    z = np.random.standard_normal(n_paths)
    ST = theta[0] * np.exp(-0.5 * theta[1] ** 2 + theta[1] * z)
    return np.maximum(ST - 100.0, 0.0).mean()


def garch_negloglik(params, returns):
    """Gaussian GARCH(1,1) negative log-likelihood, loop over a preallocated np.empty array."""
    omega, alpha, beta = params[0], params[1], params[2]
    n = returns.shape[0]
    sigma2 = np.empty(n)
    sigma2[0] = returns.var()
    for t in range(1, n):
        sigma2[t] = omega + alpha * returns[t - 1] ** 2 + beta * sigma2[t - 1]
    ll = -0.5 * (np.log(2 * np.pi) + np.log(sigma2) + returns ** 2 / sigma2)
    return -ll.sum()


def garch_negloglik_like(params, returns):
    """Same GARCH(1,1) likelihood, the variance buffer created with like=params."""
    omega, alpha, beta = params[0], params[1], params[2]
    n = returns.shape[0]
    sigma2 = np.empty(n, like=params)
    sigma2[0] = returns.var()
    for t in range(1, n):
        sigma2[t] = omega + alpha * returns[t - 1] ** 2 + beta * sigma2[t - 1]
    ll = -0.5 * (np.log(2 * np.pi) + np.log(sigma2) + returns ** 2 / sigma2)
    return -ll.sum()


def garch_variance_lfilter(params, returns):
    """GARCH(1,1) variances by lfilter: s2_t - beta s2_{t-1} = omega + alpha r_{t-1}^2."""
    omega, alpha, beta = params[0], params[1], params[2]
    s0 = returns.var()
    drive = omega + alpha * returns[:-1] ** 2
    rest = scipy.signal.lfilter(np.ones(1), np.stack([np.ones_like(beta), -beta]), drive,
                                zi=beta[None] * s0)[0]
    return np.concatenate([s0[None] * np.ones(1), rest])


def ar2_simulate_loop(phi, eps):
    """AR(2) path by a Python loop into a preallocated buffer (like=phi)."""
    y = np.zeros(eps.shape, like=phi)
    y[0] = eps[0]
    y[1] = phi[0] * y[0] + eps[1]
    for t in range(2, len(eps)):
        y[t] = phi[0] * y[t - 1] + phi[1] * y[t - 2] + eps[t]
    return y


def ar2_simulate_lfilter(phi, eps):
    """AR(2) path with scipy.signal.lfilter."""
    a = np.array([1.0, -phi[0], -phi[1]])
    return scipy.signal.lfilter([1.0], a, eps)


def arma11_css_r_(params, y):
    """ARMA(1,1) conditional sum of squares: residuals lfilter(ar, ma, y), polynomials by np.r_."""
    phi, theta = params[0], params[1]
    ar = np.r_[1.0, -phi]
    ma = np.r_[1.0, theta]
    e = scipy.signal.lfilter(ar, ma, y)
    return 0.5 * np.sum(e[1:] ** 2)


def arma11_css(params, y):
    """ARMA(1,1) conditional sum of squares, polynomials built with np.array."""
    phi, theta = params[0], params[1]
    e = scipy.signal.lfilter(np.array([1.0, -phi]), np.array([1.0, theta]), y)
    return 0.5 * np.sum(e[1:] ** 2)


def local_level_kalman(log_vars, y):
    """Local-level model: Kalman filter + RTS smoother; returns (loglik, smoothed states)."""
    q, h = np.exp(log_vars[0]), np.exp(log_vars[1])
    n = y.shape[0]
    a_pred = np.zeros(n, like=log_vars)
    p_pred = np.zeros(n, like=log_vars)
    a_filt = np.zeros(n, like=log_vars)
    p_filt = np.zeros(n, like=log_vars)
    a, p = y[0], 1e3
    loglik = 0.0
    for t in range(n):
        a_pred[t] = a
        p_pred[t] = p
        f = p + h
        v = y[t] - a
        k = p / f
        a_filt[t] = a + k * v
        p_filt[t] = p * (1 - k)
        loglik += -0.5 * (np.log(2 * np.pi * f) + v * v / f)
        a = a_filt[t]
        p = p_filt[t] + q
    a_smooth = a_filt.copy()
    for t in range(n - 2, -1, -1):
        J = p_filt[t] / p_pred[t + 1]
        a_smooth[t] = a_filt[t] + J * (a_smooth[t + 1] - a_pred[t + 1])
    return loglik, a_smooth


def portfolio_vol(w, returns):
    """Annualized portfolio volatility from the sample covariance."""
    cov = np.cov(returns, rowvar=False)
    return np.sqrt(252 * w @ cov @ w)


def mean_variance_weights(mu, returns, gamma=5.0):
    """Unconstrained mean-variance weights Sigma^-1 mu / gamma, rescaled to sum to one."""
    cov = np.cov(returns.T)
    raw = np.linalg.solve(gamma * cov, mu)
    return raw / raw.sum()


def cumulative_log_wealth(prices):
    """Final wealth from simple returns (cumprod) and from log returns (log1p), annualized vol."""
    simple = np.diff(prices) / prices[:-1]
    logret = np.log1p(simple)
    wealth = np.cumprod(1.0 + simple)
    return np.array([wealth[-1], np.exp(logret.sum()), logret.std(ddof=1) * np.sqrt(252)])


def max_drawdown(returns):
    """Maximum drawdown of the wealth path (np.maximum.accumulate running peak)."""
    wealth = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(wealth)
    drawdown = (wealth - peak) / peak
    return -drawdown.min()


def rolling_stats(x, w=5):
    """Rolling mean three ways (convolve, cumsum trick, sliding_window_view) and rolling std."""
    m1 = np.convolve(x, np.ones(w) / w, mode="valid")
    c = np.cumsum(np.insert(x, 0, 0.0))
    m2 = (c[w:] - c[:-w]) / w
    win = sliding_window_view(x, w)
    m3 = win.mean(axis=-1)
    s = win.std(axis=-1, ddof=1)
    return np.stack([m1, m2, m3, s])


def holt_sse(params, y):
    """Holt linear exponential smoothing: one-step-ahead SSE for (alpha, beta)."""
    alpha, beta = params[0], params[1]
    n = len(y)
    level = np.empty(n, like=params)
    trend = np.empty(n, like=params)
    level[0] = y[0]
    trend[0] = y[1] - y[0]
    sse = 0.0
    for t in range(1, n):
        err = y[t] - (level[t - 1] + trend[t - 1])
        sse += err ** 2
        level[t] = alpha * y[t] + (1 - alpha) * (level[t - 1] + trend[t - 1])
        trend[t] = beta * (level[t] - level[t - 1]) + (1 - beta) * trend[t - 1]
    return sse


def ewma_vol_lfilter(lam, r):
    """RiskMetrics EWMA variance via lfilter with an initial state; last annualized vol."""
    lam = lam[0]
    r2 = r ** 2
    s2 = scipy.signal.lfilter([1 - lam], [1.0, -lam], r2, zi=[lam * r2[:10].mean()])[0]
    return np.sqrt(s2[-1] * 252)


def historical_var_cvar(w, returns, level=0.99):
    """Historical VaR (np.percentile), CVaR (mean of the tail) and a 'lower' quantile."""
    losses = -(returns @ w)
    var = np.percentile(losses, 100 * level)
    tail = losses[losses >= var]
    cvar = tail.mean()
    q = np.quantile(losses, level, method="lower")
    return np.array([var, cvar, q])


TENORS = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0])
ZERO_RATES = np.array([0.030, 0.032, 0.035, 0.037, 0.038, 0.040, 0.041, 0.042])


def bond_price_interp(zero_rates, coupon=0.04, maturity=6.0, freq=2):
    """Fixed-coupon bond priced off a linearly interpolated zero curve (continuous comp.)."""
    times = np.arange(1, int(maturity * freq) + 1) / freq
    cf = np.full(times.shape, 100 * coupon / freq)
    cf[-1] += 100.0
    z = np.interp(times, TENORS, zero_rates)
    df = np.exp(-z * times)
    return cf @ df


def discount_factors(t):
    """Discount factors at arbitrary times, flat extrapolation beyond the curve, left=rate-1%."""
    z = np.interp(t, TENORS, ZERO_RATES, left=ZERO_RATES[0] - 0.01)
    return np.exp(-z * t)


def bond_price_ytm(y, coupon=0.05, maturity=10, freq=2):
    """Bond price from a yield with compounding frequency freq."""
    n = maturity * freq
    k = np.arange(1, n + 1)
    c = 100 * coupon / freq
    disc = (1 + y / freq) ** (-k)
    return c * disc.sum() + 100 * disc[-1]


def duration_convexity_closed(y, coupon=0.05, maturity=10, freq=2):
    """Closed-form dP/dy and d2P/dy2 of bond_price_ytm (the reference)."""
    k = np.arange(1, maturity * freq + 1)
    cf = np.full(k.shape, 100 * coupon / freq)
    cf[-1] += 100
    d1 = -(cf * k / freq * (1 + y / freq) ** (-k - 1)).sum()
    d2 = (cf * k * (k + 1) / freq ** 2 * (1 + y / freq) ** (-k - 2)).sum()
    return d1, d2


def acf(x, nlags=5):
    """Sample autocorrelation function via np.correlate (mode='full')."""
    n = len(x)
    d = x - x.mean()
    c = np.correlate(d, d, mode="full")[n - 1:]
    return c[: nlags + 1] / c[0]


def normalize_and_risk(w):
    """Normalize the caller's weights in place (w /= w.sum()) and return the portfolio variance."""
    w /= w.sum()
    cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.02], [0.0, 0.02, 0.16]])
    return w @ cov @ w


def sharpe(w, returns, rf=0.0001):
    """Annualized Sharpe ratio of a portfolio."""
    port = returns @ w
    excess = port - rf
    return np.sqrt(252) * excess.mean() / excess.std(ddof=1)


# ---- data ---------------------------------------------------------------------------------

P_BS = np.array([100.0, 95.0, 0.5, 0.03, 0.25])
P_BS_SCEN = P_BS * (1 + 0.1 * np.random.default_rng(0).standard_normal((4, 5)))
RET_GARCH = 0.01 * np.random.default_rng(5).standard_normal(200)
PAR_GARCH = np.array([1e-5, 0.08, 0.85])
RET_PANEL = 0.01 * np.random.default_rng(7).standard_normal((250, 4)) + 0.0003
W4 = np.array([0.4, 0.3, 0.2, 0.1])
W_SCEN = np.random.default_rng(8).dirichlet(np.ones(4), size=5)


# ---- Black-Scholes and Greeks ------------------------------------------------------------


def test_bs_jit_value_and_type():
    assert_same(npfunc.jit(bs_call)(P_BS), bs_call(P_BS))
    assert_same(npfunc.grad_and_value(bs_call)(P_BS)[1], bs_call(P_BS))


def test_bs_greeks_closed_form():
    delta, vega, gamma, rho = bs_greeks_closed(P_BS)
    g = npfunc.grad(bs_call)(P_BS)
    np.testing.assert_allclose([g[0], g[4], g[3]], [delta, vega, rho], rtol=1e-12)
    assert_deriv(g, fd(bs_call, P_BS))
    H = npfunc.hessian(bs_call)(P_BS)
    np.testing.assert_allclose(H[0, 0], gamma, rtol=1e-10)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    assert_deriv(H, fd(npfunc.grad(bs_call), P_BS, 1e-4), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(npfunc.jacfwd(npfunc.jacrev(bs_call))(P_BS), H, rtol=1e-12)


def test_bs_vmap_scenarios_and_compositions():
    assert_same(npfunc.vmap(bs_call)(P_BS_SCEN), loop(bs_call, P_BS_SCEN))
    assert_same(npfunc.vmap(npfunc.jit(bs_call))(P_BS_SCEN), loop(bs_call, P_BS_SCEN))
    assert_same(npfunc.vmap(bs_call, chunk_size=3)(P_BS_SCEN), loop(bs_call, P_BS_SCEN))
    assert_same(npfunc.jit(npfunc.vmap(bs_call))(P_BS_SCEN), loop(bs_call, P_BS_SCEN))
    want = np.stack([fd(bs_call, p) for p in P_BS_SCEN])
    assert_deriv(npfunc.vmap(npfunc.grad(bs_call))(P_BS_SCEN), want)
    assert_deriv(npfunc.jit(npfunc.grad(bs_call))(P_BS), fd(bs_call, P_BS))
    assert_deriv(npfunc.grad(npfunc.jit(bs_call))(P_BS), fd(bs_call, P_BS))
    # vega and delta together by jvp
    prim, tan = npfunc.jvp(bs_call, (P_BS,), (np.array([1.0, 0, 0, 0, 1.0]),))
    assert_same(prim, bs_call(P_BS))
    d, v, _, _ = bs_greeks_closed(P_BS)
    np.testing.assert_allclose(tan, d + v, rtol=1e-12)


# ---- implied volatility --------------------------------------------------------------------


def test_implied_vol_newton_derivative_is_one_over_vega():
    sig = implied_vol(7.5)
    _, vega, _, _ = bs_greeks_closed(np.array([100.0, 105.0, 0.75, 0.02, sig]))
    g = npfunc.grad(implied_vol)(7.5)
    np.testing.assert_allclose(g, 1.0 / vega, rtol=1e-9)
    np.testing.assert_allclose(g, fd(lambda x: implied_vol(x[()]), 7.5), rtol=1e-6)


def test_implied_vol_newton_jit_python_float_argument():
    j = npfunc.jit(implied_vol)
    for price in (7.5, 12.0, 3.0, 7.5):
        assert_same(j(price), implied_vol(price))


def test_implied_vol_newton_break_refused_under_vmap():
    with pytest.raises(BatchedConversionError, match="vmap"):
        npfunc.vmap(implied_vol)(np.array([6.0, 7.5, 9.0]))


def test_implied_vol_brentq_values_and_derivative():
    j = npfunc.jit(implied_vol_brentq)
    for price in (7.5, 9.0):
        np.testing.assert_allclose(j(price), implied_vol_brentq(price), rtol=1e-14)
    np.testing.assert_allclose(npfunc.vmap(implied_vol_brentq)(np.array([7.5, 9.0])),
                               [implied_vol_brentq(7.5), implied_vol_brentq(9.0)], rtol=1e-14)
    np.testing.assert_allclose(npfunc.grad(implied_vol_brentq)(7.5), npfunc.grad(implied_vol)(7.5),
                               rtol=1e-9)


# ---- Monte Carlo --------------------------------------------------------------------------


def test_mc_call_seeded_inside_values():
    th = np.array([100.0, 0.2])
    assert_same(npfunc.jit(mc_call)(th), mc_call(th))
    ths = np.array([[100.0, 0.2], [95.0, 0.3], [110.0, 0.15]])
    assert_same(npfunc.vmap(mc_call)(ths), loop(mc_call, ths))


def test_mc_call_pathwise_greeks():
    th = np.array([100.0, 0.2])
    z = np.random.default_rng(1234).standard_normal(20000)
    ST = 100.0 * np.exp(0.03 - 0.02 + 0.2 * z)
    itm = ST > 100.0
    delta = np.exp(-0.03) * np.mean(itm * ST / 100.0)
    vega = np.exp(-0.03) * np.mean(itm * ST * (z - 0.2))
    g = npfunc.grad(mc_call)(th)
    np.testing.assert_allclose(g, [delta, vega], rtol=1e-10)
    ths = np.array([[100.0, 0.2], [95.0, 0.3]])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(mc_call))(ths),
                               np.stack([npfunc.grad(mc_call)(t) for t in ths]), rtol=1e-13)


def test_mc_global_generator_consumed_like_numpy_under_grad_and_jit_refuses():
    th = np.array([100.0, 0.2])
    np.random.seed(0)
    a1, a2 = mc_call_global(th), mc_call_global(th)
    np.random.seed(0)
    assert_same(npfunc.grad_and_value(mc_call_global)(th)[1], a1)
    assert_same(npfunc.grad_and_value(mc_call_global)(th)[1], a2)
    with pytest.raises(RandomnessError, match="jit"):
        npfunc.jit(mc_call_global)(th)


# ---- GARCH / AR / ARMA -------------------------------------------------------------------


def test_garch_like_buffer_values_and_gradient():
    want = garch_negloglik(PAR_GARCH, RET_GARCH)
    assert_same(garch_negloglik_like(PAR_GARCH, RET_GARCH), want)
    assert_same(npfunc.jit(garch_negloglik_like)(PAR_GARCH, RET_GARCH), want, rtol=1e-13)
    g_fd = fd(lambda q: garch_negloglik(q, RET_GARCH), PAR_GARCH, 1e-7)
    assert_deriv(npfunc.grad(garch_negloglik_like)(PAR_GARCH, RET_GARCH), g_fd, rtol=1e-6)
    assert_deriv(npfunc.jit(npfunc.grad(garch_negloglik_like))(PAR_GARCH, RET_GARCH), g_fd, rtol=1e-6)
    g, v = npfunc.grad_and_value(garch_negloglik_like)(PAR_GARCH, RET_GARCH)
    assert_same(v, want, rtol=1e-13)


def test_garch_like_hessian_and_vmap():
    H = npfunc.hessian(garch_negloglik_like)(PAR_GARCH, RET_GARCH)
    gradf = npfunc.grad(garch_negloglik_like)
    np.testing.assert_allclose(H, fd(lambda q: gradf(q, RET_GARCH), PAR_GARCH, 1e-8), rtol=1e-5)
    pars = np.array([[1e-5, 0.08, 0.85], [2e-5, 0.1, 0.8]])
    assert_same(npfunc.vmap(garch_negloglik_like, in_dims=(0, None))(pars, RET_GARCH),
                loop(garch_negloglik, pars, RET_GARCH), rtol=1e-13)
    want = np.stack([fd(lambda q: garch_negloglik(q, RET_GARCH), p, 1e-7) for p in pars])
    assert_deriv(npfunc.vmap(npfunc.grad(garch_negloglik_like), in_dims=(0, None))(pars, RET_GARCH),
                 want, rtol=1e-6)


def test_garch_lfilter_matches_loop_and_derivatives():
    s2 = np.empty(200)
    s2[0] = RET_GARCH.var()
    for t in range(1, 200):
        s2[t] = PAR_GARCH[0] + PAR_GARCH[1] * RET_GARCH[t - 1] ** 2 + PAR_GARCH[2] * s2[t - 1]
    np.testing.assert_allclose(garch_variance_lfilter(PAR_GARCH, RET_GARCH), s2, rtol=1e-13)
    assert_same(npfunc.jit(garch_variance_lfilter)(PAR_GARCH, RET_GARCH),
                garch_variance_lfilter(PAR_GARCH, RET_GARCH))
    J = npfunc.jacrev(garch_variance_lfilter)(PAR_GARCH, RET_GARCH)
    assert_deriv(J, fd(lambda q: garch_variance_lfilter(q, RET_GARCH), PAR_GARCH, 1e-7), atol=1e-12)
    assert_deriv(npfunc.jacfwd(garch_variance_lfilter)(PAR_GARCH, RET_GARCH), J, rtol=1e-12)


EPS_AR = np.random.default_rng(21).standard_normal(50)
PHI_AR = np.array([0.5, -0.3])


def test_ar2_loop_and_lfilter_agree_under_transforms():
    want = ar2_simulate_lfilter(PHI_AR, EPS_AR)
    np.testing.assert_allclose(ar2_simulate_loop(PHI_AR, EPS_AR), want, rtol=1e-13, atol=1e-15)
    assert_same(npfunc.jit(ar2_simulate_lfilter)(PHI_AR, EPS_AR), want)
    assert_same(npfunc.jit(ar2_simulate_loop)(PHI_AR, EPS_AR), ar2_simulate_loop(PHI_AR, EPS_AR))
    J = fd(lambda q: ar2_simulate_lfilter(q, EPS_AR), PHI_AR)
    assert_deriv(npfunc.jacrev(ar2_simulate_lfilter)(PHI_AR, EPS_AR), J)
    assert_deriv(npfunc.jacfwd(ar2_simulate_lfilter)(PHI_AR, EPS_AR), J)
    assert_deriv(npfunc.jacrev(ar2_simulate_loop)(PHI_AR, EPS_AR), J)
    Je = npfunc.jacrev(ar2_simulate_lfilter, argnums=1)(PHI_AR, EPS_AR)
    assert_deriv(Je, fd(lambda q: ar2_simulate_lfilter(PHI_AR, q), EPS_AR))
    phis = np.array([[0.5, -0.3], [0.2, 0.1], [0.9, -0.5]])
    assert_same(npfunc.vmap(ar2_simulate_lfilter, in_dims=(0, None))(phis, EPS_AR),
                loop(ar2_simulate_lfilter, phis, EPS_AR))
    assert_same(npfunc.vmap(ar2_simulate_loop, in_dims=(0, None))(phis, EPS_AR),
                loop(ar2_simulate_loop, phis, EPS_AR))


Y_ARMA = ar2_simulate_lfilter(np.array([0.6, 0.0]), EPS_AR)
PAR_ARMA = np.array([0.5, 0.2])


def test_arma_css_np_array_polynomials():
    assert_same(npfunc.jit(arma11_css)(PAR_ARMA, Y_ARMA), arma11_css(PAR_ARMA, Y_ARMA))
    assert_deriv(npfunc.grad(arma11_css)(PAR_ARMA, Y_ARMA),
                 fd(lambda q: arma11_css(q, Y_ARMA), PAR_ARMA))
    gradf = npfunc.grad(arma11_css)
    assert_deriv(npfunc.hessian(arma11_css)(PAR_ARMA, Y_ARMA),
                 fd(lambda q: gradf(q, Y_ARMA), PAR_ARMA), rtol=1e-6)


# ---- Kalman --------------------------------------------------------------------------------

Y_KAL = (np.cumsum(np.random.default_rng(31).standard_normal(40))
         + 0.5 * np.random.default_rng(32).standard_normal(40))
LV = np.array([0.0, np.log(0.25)])


def test_kalman_values_types_and_aux():
    ll, sm = local_level_kalman(LV, Y_KAL)
    jll, jsm = npfunc.jit(local_level_kalman)(LV, Y_KAL)
    assert_same(jll, ll)
    assert_same(jsm, sm)
    g, aux = npfunc.grad(local_level_kalman, has_aux=True)(LV, Y_KAL)
    assert_same(aux, sm)
    assert_deriv(g, fd(lambda q: local_level_kalman(q, Y_KAL)[0], LV))


def test_kalman_smoother_jacobians_hessian_vmap():
    J = fd(lambda q: local_level_kalman(q, Y_KAL)[1], LV)
    assert_deriv(npfunc.jacrev(lambda q: local_level_kalman(q, Y_KAL)[1])(LV), J)
    assert_deriv(npfunc.jacfwd(lambda q: local_level_kalman(q, Y_KAL)[1])(LV), J)
    gradf = npfunc.grad(lambda q: local_level_kalman(q, Y_KAL)[0])
    assert_deriv(npfunc.hessian(lambda q: local_level_kalman(q, Y_KAL)[0])(LV), fd(gradf, LV, 1e-4))
    lvs = np.array([[0.0, -1.0], [-0.5, -2.0], [0.3, 0.1]])
    assert_same(npfunc.vmap(lambda q: local_level_kalman(q, Y_KAL)[1])(lvs),
                np.stack([local_level_kalman(q, Y_KAL)[1] for q in lvs]))


# ---- portfolios ----------------------------------------------------------------------------


def test_portfolio_vol_values_gradient_closed_form():
    v = portfolio_vol(W4, RET_PANEL)
    assert_same(npfunc.jit(portfolio_vol)(W4, RET_PANEL), v)
    cov = np.cov(RET_PANEL, rowvar=False)
    g = npfunc.grad(portfolio_vol)(W4, RET_PANEL)
    np.testing.assert_allclose(g, 252 * cov @ W4 / v, rtol=1e-12)
    assert_deriv(npfunc.grad(portfolio_vol, argnums=1)(W4, RET_PANEL),
                 fd(lambda q: portfolio_vol(W4, q), RET_PANEL), atol=1e-8)
    assert_deriv(npfunc.hessian(portfolio_vol)(W4, RET_PANEL),
                 fd(lambda q: npfunc.grad(portfolio_vol)(q, RET_PANEL), W4), rtol=1e-7)
    assert_same(npfunc.vmap(portfolio_vol, in_dims=(0, None))(W_SCEN, RET_PANEL),
                loop(portfolio_vol, W_SCEN, RET_PANEL))
    assert_deriv(npfunc.vmap(npfunc.grad(portfolio_vol), in_dims=(0, None))(W_SCEN, RET_PANEL),
                 np.stack([fd(lambda q: portfolio_vol(q, RET_PANEL), w) for w in W_SCEN]))


def test_mean_variance_weights_jacobians_vmap():
    mu = RET_PANEL.mean(0) * 252
    assert_same(npfunc.jit(mean_variance_weights)(mu, RET_PANEL), mean_variance_weights(mu, RET_PANEL))
    assert_deriv(npfunc.jacrev(mean_variance_weights)(mu, RET_PANEL),
                 fd(lambda q: mean_variance_weights(q, RET_PANEL), mu, 1e-6))
    J = npfunc.jacfwd(mean_variance_weights, argnums=1)(mu, RET_PANEL)
    assert_deriv(J, fd(lambda q: mean_variance_weights(mu, q), RET_PANEL, 1e-6), rtol=1e-5, atol=1e-6)
    Rs = np.stack([RET_PANEL, RET_PANEL[::-1] * 1.1, RET_PANEL + 0.001])
    assert_same(npfunc.vmap(mean_variance_weights, in_dims=(None, 0))(mu, Rs),
                np.stack([mean_variance_weights(mu, q) for q in Rs]))


def test_sharpe_gradient_compositions():
    want = fd(lambda q: sharpe(q, RET_PANEL), W4)
    assert_same(npfunc.jit(sharpe)(W4, RET_PANEL), sharpe(W4, RET_PANEL))
    for g in (npfunc.grad(sharpe), npfunc.jit(npfunc.grad(sharpe)), npfunc.grad(npfunc.jit(sharpe))):
        assert_deriv(g(W4, RET_PANEL), want)


def test_inplace_weight_normalization_side_effects():
    w0 = np.array([1.0, 3.0, 4.0])
    ref = w0.copy()
    v = normalize_and_risk(ref)
    for name, T in (("jit", npfunc.jit), ("grad_and_value", npfunc.grad_and_value)):
        w = w0.copy()
        out = T(normalize_and_risk)(w)
        if name == "jit":
            assert_same(out, v)
        np.testing.assert_array_equal(w, ref, err_msg=name)
    ws = np.array([[1.0, 3.0, 4.0], [2.0, 2.0, 4.0]])
    wsc = ws.copy()
    refs = ws.copy()
    want = np.array([normalize_and_risk(r) for r in refs])
    assert_same(npfunc.vmap(normalize_and_risk)(wsc), want)
    np.testing.assert_array_equal(wsc, refs)


# ---- returns, drawdowns, rolling windows, smoothing ---------------------------------------

PRICES = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(41).standard_normal(60)))
R_DD = 0.02 * np.random.default_rng(42).standard_normal((5, 80))


def test_cumulative_returns():
    want = cumulative_log_wealth(PRICES)
    assert_same(npfunc.jit(cumulative_log_wealth)(PRICES), want)
    J = fd(cumulative_log_wealth, PRICES, 1e-3)
    assert_deriv(npfunc.jacrev(cumulative_log_wealth)(PRICES), J, atol=1e-10)
    assert_deriv(npfunc.jacfwd(cumulative_log_wealth)(PRICES), J, atol=1e-10)
    pint = np.array([100, 102, 101, 105, 103, 108])
    assert_same(npfunc.jit(cumulative_log_wealth)(pint), cumulative_log_wealth(pint))


def test_max_drawdown():
    r = R_DD[0]
    assert_same(npfunc.jit(max_drawdown)(r), max_drawdown(r))
    assert_deriv(npfunc.grad(max_drawdown)(r), fd(max_drawdown, r, 1e-7))
    assert_same(npfunc.vmap(max_drawdown)(R_DD), loop(max_drawdown, R_DD))
    assert_deriv(npfunc.vmap(npfunc.grad(max_drawdown))(R_DD),
                 np.stack([fd(max_drawdown, r, 1e-7) for r in R_DD]))


def test_rolling_windows():
    x = np.random.default_rng(43).standard_normal(30).cumsum()
    want = rolling_stats(x)
    np.testing.assert_allclose(want[0], want[2], rtol=1e-12, atol=1e-14)
    assert_same(npfunc.jit(rolling_stats)(x), want)
    J = fd(rolling_stats, x)
    assert_deriv(npfunc.jacrev(rolling_stats)(x), J)
    assert_deriv(npfunc.jacfwd(rolling_stats)(x), J)
    xs = np.random.default_rng(44).standard_normal((4, 30))
    assert_same(npfunc.vmap(rolling_stats)(xs), loop(rolling_stats, xs))


def test_holt_smoothing():
    y = 10 + 0.3 * np.arange(40) + np.random.default_rng(45).standard_normal(40)
    ab = np.array([0.4, 0.2])
    g, v = npfunc.grad_and_value(holt_sse)(ab, y)
    assert_same(v, holt_sse(ab, y))
    assert_deriv(g, fd(lambda q: holt_sse(q, y), ab))


def test_ewma_vol_lfilter():
    r = 0.01 * np.random.default_rng(46).standard_normal(100)
    lam = np.array([0.94])
    assert_same(npfunc.jit(ewma_vol_lfilter)(lam, r), ewma_vol_lfilter(lam, r))
    assert_deriv(npfunc.grad(ewma_vol_lfilter)(lam, r), fd(lambda q: ewma_vol_lfilter(q, r), lam))
    assert_deriv(npfunc.grad(ewma_vol_lfilter, argnums=1)(lam, r),
                 fd(lambda q: ewma_vol_lfilter(lam, q), r))


def test_acf():
    x = np.random.default_rng(47).standard_normal(40)
    assert_same(npfunc.jit(acf)(x), acf(x))
    assert_deriv(npfunc.jacrev(acf)(x), fd(acf, x))
    xs = np.stack([x, x ** 2])
    assert_same(npfunc.vmap(acf)(xs), loop(acf, xs), rtol=1e-13, atol=1e-15)


# ---- risk: VaR / CVaR / quantiles ----------------------------------------------------------


def test_var_cvar_jacobian_and_jit_refusal():
    J = npfunc.jacrev(historical_var_cvar)(W4, RET_PANEL)
    assert_deriv(J, fd(lambda q: historical_var_cvar(q, RET_PANEL), W4, 1e-7))
    with pytest.raises(DataDependentShapeError, match="jit"):
        npfunc.jit(historical_var_cvar)(W4, RET_PANEL)


@pytest.mark.parametrize("method", ["linear", "lower", "midpoint", "hazen", "inverted_cdf",
                                    "median_unbiased"])
def test_quantile_methods(method):
    x = np.random.default_rng(48).standard_normal(40)

    def f(v):
        return np.quantile(v, [0.01, 0.05, 0.5], method=method)
    assert_same(npfunc.jit(f)(x), f(x))
    assert_deriv(npfunc.jacrev(f)(x), fd(f, x, 1e-7))
    xs = np.stack([x, 2 * x + 1])
    assert_same(npfunc.vmap(f)(xs), loop(f, xs))


# ---- fixed income ---------------------------------------------------------------------------


def test_bond_key_rate_durations():
    assert_same(npfunc.jit(bond_price_interp)(ZERO_RATES), bond_price_interp(ZERO_RATES))
    assert_deriv(npfunc.grad(bond_price_interp)(ZERO_RATES), fd(bond_price_interp, ZERO_RATES))
    H = npfunc.hessian(bond_price_interp)(ZERO_RATES)
    assert_deriv(H, fd(npfunc.grad(bond_price_interp), ZERO_RATES, 1e-4), atol=1e-7)
    t = np.array([0.1, 0.7, 1.3, 3.3, 7.7, 12.0])
    assert_same(npfunc.jit(discount_factors)(t), discount_factors(t))
    assert_deriv(npfunc.jacfwd(discount_factors)(t), fd(discount_factors, t))


def test_bond_duration_convexity():
    y = 0.045
    d1, d2 = duration_convexity_closed(y)
    np.testing.assert_allclose(npfunc.grad(bond_price_ytm)(y), d1, rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(npfunc.grad(bond_price_ytm))(y), d2, rtol=1e-12)
    np.testing.assert_allclose(npfunc.hessian(bond_price_ytm)(y), d2, rtol=1e-12)
    ys = np.array([0.03, 0.045, 0.06])
    assert_same(npfunc.vmap(bond_price_ytm)(ys), np.array([bond_price_ytm(v) for v in ys]))


# ---- findings ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["jit", "grad_and_value", "vjp", "jvp"])
def test_finding_brentq_python_float_type(how):
    want = implied_vol_brentq(7.5)
    assert type(want) is float
    if how == "jit":
        got = npfunc.jit(implied_vol_brentq)(7.5)
    elif how == "grad_and_value":
        got = npfunc.grad_and_value(implied_vol_brentq)(7.5)[1]
    elif how == "vjp":
        got = npfunc.vjp(implied_vol_brentq, 7.5)[0]
    else:
        got = npfunc.jvp(implied_vol_brentq, (7.5,), (1.0,))[0]
    # a scalar, as SciPy's float (an np.float64 is a float; a traced root cannot come back as float itself)
    assert isinstance(got, float) and not isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_finding_vmap_default_randomness_shares_draws():
    ths = np.array([[100.0, 0.2], [100.0, 0.2], [100.0, 0.2]])
    np.random.seed(0)
    want = loop(mc_call_global, ths)
    np.random.seed(0)
    try:
        got = npfunc.vmap(mc_call_global)(ths)
    except RandomnessError:
        return  # refusing is what randomness='error' promises
    assert_same(got, want)


@pytest.mark.xfail(strict=True, reason="vmap(randomness='error') over a Generator passed in does "
                   "not refuse; all rows silently share one draw")
def test_finding_vmap_default_randomness_generator_argument():
    def noisy(x, rng):
        """Add simulated measurement noise to each observation."""
        return x + rng.standard_normal(x.shape)
    xs = np.zeros((3, 2))
    want = loop(noisy, xs, np.random.default_rng(0))
    try:
        got = npfunc.vmap(noisy, in_dims=(0, None))(xs, np.random.default_rng(0))
    except RandomnessError:
        return
    assert_same(got, want)


# A traced write into a plain preallocated np.empty/np.zeros buffer (garch_negloglik) used to
# be refused (ConcretizationError naming like=); a buffer made while the transform runs now
# takes traced writes (npfunc.core.pending), so the plain program is checked against NumPy.
@pytest.mark.parametrize("how", ["grad", "jit", "vmap"])
def test_garch_plain_buffer_matches_numpy(how):
    if how == "grad":
        assert_deriv(npfunc.grad(garch_negloglik)(PAR_GARCH, RET_GARCH),
                     fd(lambda q: garch_negloglik(q, RET_GARCH), PAR_GARCH, 1e-7), rtol=1e-6)
    elif how == "jit":
        jitted = npfunc.jit(garch_negloglik)
        assert_same(jitted(PAR_GARCH, RET_GARCH), garch_negloglik(PAR_GARCH, RET_GARCH), rtol=1e-13)
        for par, ret in [(np.array([2e-5, 0.1, 0.8]), RET_GARCH), (PAR_GARCH, 1.5 * RET_GARCH)]:
            assert_same(jitted(par, ret), garch_negloglik(par, ret), rtol=1e-13)  # replays
    else:
        pars = np.array([[1e-5, 0.08, 0.85], [2e-5, 0.1, 0.8]])
        assert_same(npfunc.vmap(garch_negloglik, in_dims=(0, None))(pars, RET_GARCH),
                    loop(garch_negloglik, pars, RET_GARCH), rtol=1e-13)


def test_garch_plain_buffer_derivatives_match_like_fix():
    """The plain np.empty buffer and the like=params fix give the same derivatives, to rounding."""
    g_like = npfunc.grad(garch_negloglik_like)(PAR_GARCH, RET_GARCH)
    assert_deriv(npfunc.grad(garch_negloglik)(PAR_GARCH, RET_GARCH), g_like, rtol=1e-12, atol=0)
    assert_deriv(npfunc.jacfwd(garch_negloglik)(PAR_GARCH, RET_GARCH), g_like, rtol=1e-12, atol=0)
    H_like = npfunc.hessian(garch_negloglik_like)(PAR_GARCH, RET_GARCH)
    assert_deriv(npfunc.hessian(garch_negloglik)(PAR_GARCH, RET_GARCH), H_like, rtol=1e-12, atol=0)


@pytest.mark.parametrize("how", ["grad", "jit"])
def test_finding_np_r_refused(how):
    if how == "grad":
        assert_deriv(npfunc.grad(arma11_css_r_)(PAR_ARMA, Y_ARMA),
                     fd(lambda q: arma11_css_r_(q, Y_ARMA), PAR_ARMA))
    else:
        assert_same(npfunc.jit(arma11_css_r_)(PAR_ARMA, Y_ARMA), arma11_css_r_(PAR_ARMA, Y_ARMA))


@pytest.mark.xfail(strict=True, reason="np.r_ refusal message names 'np.__getitem__' and suggests "
                   "the nonsensical fix np.__getitem__(np.stack([x, y])) instead of naming np.r_")
def test_finding_np_r_refusal_message():
    with pytest.raises(NpfuncError, match=r"np\.r_"):
        npfunc.grad(arma11_css_r_)(PAR_ARMA, Y_ARMA)
