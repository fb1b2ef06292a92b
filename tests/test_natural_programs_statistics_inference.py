"""Natural programs from statistics and Bayesian inference, each written first as
plain NumPy/SciPy the way a practitioner writes it (GLM likelihoods with
logaddexp / expit / gammaln, Cox partial likelihood by reversed cumulative sums,
Kaplan-Meier by a loop, robust and quantile losses, kernel density estimates,
bootstrap resampling, hierarchical and mixed-effects log-densities, scipy.stats
logpdf/logcdf/sf with traced parameters, HMC and Metropolis steps, Laplace
approximations, Fisher information, empirical Bayes with scipy.optimize), then
run under npfunc's transforms and compared with the plain program (values,
dtypes, NumPy scalar vs array, shapes, side effects) and with central
differences of the plain program (derivatives)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
import scipy.stats

import npfunc
from natural_checks import assert_deriv, assert_same, fd

RNG = np.random.default_rng(20261207)

# ---- data shared by the programs -----------------------------------------------------------

N, P = 24, 3
X = RNG.standard_normal((N, P))
X[:, 0] = 1.0
BETA = np.array([0.3, -0.7, 0.5])
Y_BIN = (RNG.uniform(size=N) < scipy.special.expit(X @ BETA)).astype(float)
Y_CNT = RNG.poisson(np.exp(X @ BETA)).astype(float)
TIMES = RNG.exponential(2.0, size=N)
EVENTS = (RNG.uniform(size=N) < 0.7).astype(float)
GROUP = np.repeat(np.arange(6), 4)
Y_GRP = RNG.standard_normal(N) + 0.5 * GROUP


# ---- generalised linear models -------------------------------------------------------------


def logistic_nll(beta, X, y):
    """Negative log-likelihood of logistic regression, stable form log(1 + e^eta) - y eta."""
    eta = X @ beta
    return np.sum(np.logaddexp(0.0, eta) - y * eta)


def logistic_nll_expit(beta, X, y):
    """The same likelihood written carelessly with expit and log / log1p."""
    p = scipy.special.expit(X @ beta)
    ll = 0.0
    for i in range(len(y)):
        if y[i] == 1:
            ll += np.log(p[i])
        else:
            ll += np.log1p(-p[i])
    return -ll


def poisson_glm_loglik(beta, X, y):
    """Poisson log-likelihood with log link, the constant kept through gammaln."""
    eta = X @ beta
    return np.sum(y * eta - np.exp(eta) - scipy.special.gammaln(y + 1.0))


def negbin_loglik(params, X, y):
    """NB2 log-likelihood: params = (beta..., log r), dispersion r > 0."""
    beta, log_r = params[:-1], params[-1]
    mu = np.exp(X @ beta)
    r = np.exp(log_r)
    ll = (
        scipy.special.gammaln(y + r)
        - scipy.special.gammaln(r)
        - scipy.special.gammaln(y + 1)
        + r * np.log(r / (r + mu))
        + y * np.log(mu / (r + mu))
    )
    return ll.sum()


def probit_loglik(beta, X, y):
    """Probit log-likelihood through scipy.stats.norm.logcdf of +-eta."""
    eta = X @ beta
    sign = 2.0 * y - 1.0
    return np.sum(scipy.stats.norm.logcdf(sign * eta))


def irls_step(beta, X, y):
    """One IRLS / Newton step for logistic regression, solved with np.linalg.solve."""
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    W = p * (1.0 - p)
    H = X.T @ (W[:, None] * X)
    g = X.T @ (y - p)
    return beta + np.linalg.solve(H, g)


# ---- survival analysis ----------------------------------------------------------------------


def cox_partial_loglik(beta, X, time, event):
    """Breslow partial log-likelihood: sort by time, risk-set sums by reversed cumsum."""
    order = np.argsort(time)
    Xs, ev = X[order], event[order]
    eta = Xs @ beta
    risk = np.cumsum(np.exp(eta)[::-1])[::-1]
    return np.sum(ev * (eta - np.log(risk)))


def kaplan_meier(weights, time, event):
    """Weighted Kaplan-Meier survival at each sorted time, by a loop over a
    preallocated array (the weights are the differentiable input)."""
    order = np.argsort(time)
    w, ev = weights[order], event[order]
    n = len(w)
    S = np.empty(n)
    at_risk = np.sum(w)
    surv = 1.0
    for i in range(n):
        if ev[i] > 0:
            surv = surv * (1.0 - w[i] / at_risk)
        S[i] = surv
        at_risk = at_risk - w[i]
    return S


def weibull_censored_loglik(theta, t, event):
    """Weibull AFT without covariates, theta = (log shape, log scale); events
    contribute log f, censored times log S."""
    k, lam = np.exp(theta[0]), np.exp(theta[1])
    z = t / lam
    log_h = np.log(k) - np.log(lam) + (k - 1.0) * np.log(z)
    log_S = -(z**k)
    return np.sum(event * log_h + log_S)


def gamma_censored_loglik(params, t, event):
    """Gamma lifetimes with right censoring through scipy.stats.gamma logpdf / logsf."""
    a, scale = np.exp(params)
    obs = scipy.stats.gamma.logpdf(t, a, scale=scale)
    cens = scipy.stats.gamma.logsf(t, a, scale=scale)
    return np.sum(np.where(event > 0, obs, cens))


def tobit_loglik(params, X, y, c):
    """Left-censored normal regression: params = (beta..., log sigma)."""
    beta, sigma = params[:-1], np.exp(params[-1])
    mu = X @ beta
    censored = y <= c
    ll = np.where(
        censored,
        scipy.stats.norm.logcdf((c - mu) / sigma),
        scipy.stats.norm.logpdf(y, loc=mu, scale=sigma),
    )
    return ll.sum()


# ---- robust and quantile estimators --------------------------------------------------------


def huber_loss(beta, X, y, delta=1.0):
    """Huber regression loss with np.where on the absolute residual."""
    r = y - X @ beta
    a = np.abs(r)
    return np.mean(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)))


def pinball_loss(beta, X, y, tau=0.3):
    """Quantile-regression check loss max(tau r, (tau - 1) r)."""
    r = y - X @ beta
    return np.sum(np.maximum(tau * r, (tau - 1.0) * r))


def mad_scale(x):
    """Median absolute deviation, scaled to be consistent for the normal."""
    med = np.median(x)
    return 1.4826 * np.median(np.abs(x - med))


def trimmed_mean(x, prop=0.1):
    """Mean after sorting and dropping prop of each tail (slicing a sorted copy)."""
    xs = np.sort(x)
    k = int(prop * len(xs))
    return xs[k : len(xs) - k].mean()


def weighted_quantile(values, weights, q):
    """Weighted quantile by sorting, a normalised cumulative weight and np.interp."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cw = np.cumsum(w) - 0.5 * w
    cw /= np.sum(w)
    return np.interp(q, cw, v)


def sample_moments(x):
    """Mean, unbiased variance, skewness and excess kurtosis as a dict of scalars."""
    m = x.mean()
    v = x.var(ddof=1)
    return {
        "mean": m,
        "var": v,
        "skew": scipy.stats.skew(x),
        "kurt": scipy.stats.kurtosis(x),
    }


# ---- densities and resampling --------------------------------------------------------------


def kde_logpdf(log_h, data, grid):
    """Gaussian KDE log-density on a grid by logsumexp over the data points."""
    h = np.exp(log_h)
    z = (grid[:, None] - data[None, :]) / h
    logk = -0.5 * z**2 - np.log(h) - 0.5 * np.log(2 * np.pi)
    return scipy.special.logsumexp(logk, axis=1) - np.log(len(data))


def kde_loo_score(log_h, data):
    """Leave-one-out log-likelihood of a Gaussian KDE: the kernel matrix with its
    diagonal zeroed in place by np.fill_diagonal."""
    h = np.exp(log_h)
    n = len(data)
    D = data[:, None] - data[None, :]
    K = np.exp(-0.5 * (D / h) ** 2) / (h * np.sqrt(2 * np.pi))
    np.fill_diagonal(K, 0.0)
    dens = K.sum(axis=1) / (n - 1)
    return np.sum(np.log(dens))


def bootstrap_se(x, idx):
    """Bootstrap standard error of the mean from a fixed (B, n) index array."""
    means = x[idx].mean(axis=1)
    return means.std(ddof=1)


def bootstrap_loop(x, seed=3, B=30):
    """Bootstrap the median by a loop with a seeded generator and a preallocated array."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    stats = np.zeros(B)
    for b in range(B):
        idx = rng.integers(0, n, size=n)
        stats[b] = np.median(x[idx])
    return np.percentile(stats, [5.0, 95.0])


def gmm_loglik(params, x):
    """Two-component 1-D Gaussian mixture: params = (logit w, mu1, mu2, log s1, log s2),
    the component log-densities filled into a preallocated (K, n) array."""
    w1 = scipy.special.expit(params[0])
    logw = np.log(np.array([w1, 1.0 - w1]))
    mus, sig = params[1:3], np.exp(params[3:5])
    comp = np.empty((2, x.size))
    for k in range(2):
        comp[k] = logw[k] + scipy.stats.norm.logpdf(x, mus[k], sig[k])
    return scipy.special.logsumexp(comp, axis=0).sum()


# ---- hierarchical and mixed models ---------------------------------------------------------


def hierarchical_logdensity(params, y, group, sigma=1.0, tau_logprior=None):
    """Non-centred normal hierarchy: theta_j = mu + tau z_j, y_i ~ N(theta_g(i), sigma),
    a half-Cauchy(2.5) prior on tau unless another log-prior is given."""
    mu, log_tau, z = params["mu"], params["log_tau"], params["z"]
    tau = np.exp(log_tau)
    theta = mu + tau * z
    lp = scipy.stats.norm.logpdf(y, loc=theta[group], scale=sigma).sum()
    lp += scipy.stats.norm.logpdf(z).sum()
    lp += scipy.stats.norm.logpdf(mu, 0.0, 5.0)
    if tau_logprior is None:
        tau_logprior = lambda t: scipy.stats.halfcauchy.logpdf(t, scale=2.5)  # noqa: E731
    lp += tau_logprior(tau) + log_tau
    return lp


def mixed_model_marginal(theta, X, y, Z):
    """Random-intercept marginal log-likelihood: V = s2 I + t2 Z Z^T with
    slogdet and solve; theta = (beta..., log s2, log t2)."""
    beta = theta[: X.shape[1]]
    s2, t2 = np.exp(theta[-2]), np.exp(theta[-1])
    V = s2 * np.eye(len(y)) + t2 * Z @ Z.T
    r = y - X @ beta
    sign, logdet = np.linalg.slogdet(V)
    return -0.5 * (logdet + r @ np.linalg.solve(V, r) + len(y) * np.log(2 * np.pi))


def gp_marginal(log_params, x, y):
    """GP regression log marginal likelihood with Cholesky and solve_triangular."""
    ell, sf2, sn2 = np.exp(log_params)
    d = x[:, None] - x[None, :]
    K = sf2 * np.exp(-0.5 * d**2 / ell**2)
    K[np.diag_indices_from(K)] += sn2
    L = np.linalg.cholesky(K)
    alpha = scipy.linalg.solve_triangular(L, y, lower=True)
    return -0.5 * alpha @ alpha - np.log(np.diag(L)).sum() - 0.5 * len(y) * np.log(2 * np.pi)


def student_t_regression(params, X, y):
    """Robust regression with Student-t errors: params = (beta..., log scale, log df)."""
    beta = params[:-2]
    scale, nu = np.exp(params[-2]), np.exp(params[-1])
    return np.sum(scipy.stats.t.logpdf(y, nu, loc=X @ beta, scale=scale))


def dirichlet_multinomial(log_alpha, counts):
    """Dirichlet-multinomial log-likelihood for rows of counts, written with gammaln."""
    alpha = np.exp(log_alpha)
    A = alpha.sum()
    n = counts.sum(axis=1)
    ll = scipy.special.gammaln(A) - scipy.special.gammaln(n + A)
    ll = ll + np.sum(scipy.special.gammaln(counts + alpha) - scipy.special.gammaln(alpha), axis=1)
    return ll.sum()


def ar1_loglik(params, x):
    """Stationary AR(1) exact log-likelihood, params = (atanh phi, log sigma), by a loop."""
    phi, sigma = np.tanh(params[0]), np.exp(params[1])
    ll = scipy.stats.norm.logpdf(x[0], 0.0, sigma / np.sqrt(1 - phi**2))
    for t in range(1, len(x)):
        ll = ll + scipy.stats.norm.logpdf(x[t], phi * x[t - 1], sigma)
    return ll


def stick_breaking(y):
    """Unconstrained R^{K-1} -> simplex by stick breaking, with the log |Jacobian|
    accumulated in the loop (a Stan-style transform)."""
    K = y.shape[0] + 1
    x = np.zeros(K)
    remaining = 1.0
    logJ = 0.0
    for k in range(K - 1):
        z = scipy.special.expit(y[k] - np.log(K - k - 1))
        x[k] = remaining * z
        logJ += np.log(remaining) + np.log(z) + np.log1p(-z)
        remaining -= x[k]
    x[K - 1] = remaining
    return x, logJ


def standardize_(A):
    """Centre and scale the columns of A in place, returning A and the column scales."""
    A -= A.mean(axis=0)
    s = A.std(axis=0, ddof=1)
    A /= s
    return A, s


def cov_to_corr(S):
    """Correlation matrix from a covariance matrix, the standard deviations from np.diag."""
    sd = np.sqrt(np.diag(S))
    return S / np.outer(sd, sd)


def sample_cov_corr(data):
    """np.cov and np.corrcoef of observations in rows."""
    return np.cov(data, rowvar=False), np.corrcoef(data, rowvar=False)


# ---- inference algorithms ------------------------------------------------------------------


def banana_logp(q):
    """A curved 2-D target for the samplers."""
    return -0.5 * (q[0] ** 2 / 4.0 + (q[1] - 0.5 * q[0] ** 2) ** 2)


def hmc_leapfrog(q, p, eps=0.1, L=5):
    """L leapfrog steps with the gradient from npfunc.grad inside the loop."""
    g = npfunc.grad(banana_logp)
    q, p = q.copy(), p.copy()
    p += 0.5 * eps * g(q)
    for i in range(L):
        q += eps * p
        if i < L - 1:
            p += eps * g(q)
    p += 0.5 * eps * g(q)
    return q, p


def metropolis_step(x, u, step=0.5, noise=None):
    """Random-walk Metropolis step with a given uniform and proposal noise."""
    prop = x + step * noise
    log_ratio = banana_logp(prop) - banana_logp(x)
    if np.log(u) < log_ratio:
        return prop
    return x


def metropolis_step_where(x, u, step=0.5, noise=None):
    """The same step written branch-free with np.where, for batches of chains."""
    prop = x + step * noise
    log_ratio = banana_logp(prop) - banana_logp(x)
    return np.where(np.log(u) < log_ratio, prop, x)


def laplace_log_evidence(log_prec, X, y):
    """Laplace approximation to the marginal likelihood of Bayesian logistic regression
    with prior N(0, 1/prec): Newton iterations to the mode, then hessian + slogdet."""
    prec = np.exp(log_prec)

    def neg_log_post(b):
        return logistic_nll(b, X, y) + 0.5 * prec * b @ b

    b = np.zeros(X.shape[1])
    for _ in range(8):
        g = npfunc.grad(neg_log_post)(b)
        H = npfunc.hessian(neg_log_post)(b)
        b = b - np.linalg.solve(H, g)
    H = npfunc.hessian(neg_log_post)(b)
    sign, logdet = np.linalg.slogdet(H)
    d = X.shape[1]
    return -neg_log_post(b) + 0.5 * d * np.log(prec) - 0.5 * logdet


def obs_loglik(beta, x, y):
    """One observation's logistic log-likelihood."""
    eta = x @ beta
    return y * eta - np.logaddexp(0.0, eta)


def fisher_information(beta, X, y):
    """Empirical Fisher information: outer products of per-observation scores from vmap(grad)."""
    scores = npfunc.vmap(npfunc.grad(obs_loglik), in_dims=(None, 0, 0))(beta, X, y)
    return scores.T @ scores / len(y)


def eb_neg_marginal(hyper, y, s):
    """Normal-normal empirical Bayes: y_j ~ N(mu, tau^2 + s_j^2), hyper = (mu, log tau)."""
    mu, tau2 = hyper[0], np.exp(2 * hyper[1])
    v = tau2 + s**2
    return 0.5 * np.sum(np.log(v) + (y - mu) ** 2 / v)


def empirical_bayes(y, s):
    """Fit (mu, log tau) by BFGS with the gradient from npfunc.grad; return the shrunk means."""
    res = scipy.optimize.minimize(
        eb_neg_marginal, np.array([0.0, 0.0]), args=(y, s), jac=npfunc.grad(eb_neg_marginal), method="BFGS"
    )
    mu, tau2 = res.x[0], np.exp(2 * res.x[1])
    shrink = s**2 / (s**2 + tau2)
    return res.x, shrink * mu + (1 - shrink) * y


# ---- more likelihood building blocks -------------------------------------------------------


def poisson_deviance(mu, y):
    """Poisson deviance 2 sum(y log(y/mu) - (y - mu)), zero counts handled by np.where
    under np.errstate (the y = 0 branch is evaluated and discarded)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2.0 * np.sum(term - (y - mu))


def bernoulli_xlogy(p, y):
    """Bernoulli log-likelihood with xlogy / xlog1py, finite at p on the boundary."""
    return np.sum(scipy.special.xlogy(y, p) + scipy.special.xlog1py(1 - y, -p))


def welford_float32(x):
    """Running mean and variance in float32 by Welford's update, as streaming code does."""
    mean = np.float32(0.0)
    m2 = np.float32(0.0)
    for k in range(x.shape[0]):
        delta = x[k] - mean
        mean = mean + delta / np.float32(k + 1)
        m2 = m2 + delta * (x[k] - mean)
    return mean, m2 / np.float32(x.shape[0] - 1)


def distribution_zoo(theta, x, k):
    """Sum of scipy.stats log-densities/log-cdfs whose parameters are all traced."""
    a, b, mu, s = np.exp(theta)
    u = scipy.special.expit(x)
    out = scipy.stats.beta.logpdf(u, a, b).sum()
    out += scipy.stats.poisson.logpmf(k, mu).sum()
    out += scipy.stats.nbinom.logpmf(k, a, b / (1.0 + b)).sum()
    out += scipy.stats.lognorm.logcdf(np.exp(x), s, scale=mu).sum()
    out += scipy.stats.expon.logsf(np.abs(x), scale=s).sum()
    out += scipy.stats.laplace.logpdf(x, loc=mu - 1.0, scale=s).sum()
    out += scipy.stats.logistic.logcdf(x, loc=0.1, scale=b).sum()
    out += scipy.stats.invgamma.logpdf(np.abs(x) + 0.5, a, scale=b).sum()
    out += scipy.stats.weibull_min.logsf(np.abs(x) + 0.1, a, scale=s).sum()
    out += scipy.stats.binom.logpmf(k, 8, scipy.special.expit(mu - 1.0)).sum()
    return out


def mvn_logpdf_cov(log_sd, x, corr):
    """scipy.stats.multivariate_normal.logpdf with a traced covariance diag(sd) R diag(sd)."""
    sd = np.exp(log_sd)
    cov = sd[:, None] * corr * sd[None, :]
    return scipy.stats.multivariate_normal.logpdf(x, mean=np.zeros(len(sd)), cov=cov).sum()


def mvn_logpdf_chol(mean, x, cov):
    """Multivariate normal log-density by hand: Cholesky, triangular solve, log det."""
    L = np.linalg.cholesky(cov)
    r = x - mean
    z = scipy.linalg.solve_triangular(L, r.T, lower=True)
    n, d = x.shape
    return -0.5 * np.sum(z * z) - n * np.sum(np.log(np.diag(L))) - 0.5 * n * d * np.log(2 * np.pi)


def credible_interval(samples, level=0.9):
    """Equal-tailed interval and median of posterior draws by np.quantile."""
    lo, med, hi = np.quantile(samples, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return lo, med, hi


def normal_quantile_interval(mu_sigma, level=0.95):
    """Wald interval mu -+ z sigma with z from scipy.stats.norm.ppf."""
    mu, sigma = mu_sigma
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    return np.array([mu - z * sigma, mu + z * sigma])


def ecdf_at(data, t):
    """Empirical CDF of data evaluated at t by searchsorted (piecewise constant in data)."""
    xs = np.sort(data)
    return np.searchsorted(xs, t, side="right") / len(xs)


def split_params(theta):
    """(beta, sigma) from a packed vector; beta is a view of theta as in NumPy."""
    return theta[:-1], np.exp(theta[-1])


def clip_params_(theta, lo=-3.0, hi=3.0):
    """Clip a parameter vector in place, as optimisers' projection steps do."""
    np.clip(theta, lo, hi, out=theta)
    return theta


def nuts_energy(q, p, inv_mass):
    """Hamiltonian: minus log target plus kinetic energy with a diagonal mass."""
    return -banana_logp(q) + 0.5 * np.sum(inv_mass * p**2)


def leapfrog_jit(q, p, eps=0.1, L=5):
    """Leapfrog with a jit'ed gradient, written functionally (p = p + ...)."""
    g = npfunc.jit(npfunc.grad(banana_logp))
    p = p + 0.5 * eps * g(q)
    for i in range(L):
        q = q + eps * p
        if i < L - 1:
            p = p + eps * g(q)
    p = p + 0.5 * eps * g(q)
    return q, p


# ---- grouped data, weighted and missing-data summaries, VI, tied survival times ------------


def group_means(w, group):
    """Group means of w by np.bincount with weights."""
    return np.bincount(group, weights=w) / np.bincount(group)


def group_sums_add_at(w, group, G=6):
    """Group sums by np.add.at into a buffer made like w."""
    out = np.zeros(G, like=w)
    np.add.at(out, group, w)
    return out


def group_sums_add_at_plain(w, group, G=6):
    """The same into a plain buffer, as it is usually written."""
    out = np.zeros(G)
    np.add.at(out, group, w)
    return out


def frozen_normal_loglik(theta, x):
    """A frozen scipy.stats.norm(mu, s) with traced parameters: logpdf and logsf."""
    dist = scipy.stats.norm(theta[0], np.exp(theta[1]))
    return dist.logpdf(x).sum() + dist.logsf(2.0)


def weighted_mean_var(x, w):
    """np.average with returned=True, then a weighted variance."""
    m, sw = np.average(x, weights=w, returned=True)
    v = np.average((x - m) ** 2, weights=w)
    return np.array([m, v, sw])


def nan_summaries(x):
    """Summaries of data with missing values marked NaN."""
    return np.array([np.nanmean(x), np.nanvar(x, ddof=1), np.nanmedian(x), np.nanstd(x)])


def quantile_methods(x):
    """np.quantile with several of NumPy's methods."""
    return np.array([np.quantile(x, 0.3, method=m)
                     for m in ("linear", "hazen", "weibull", "median_unbiased", "nearest", "lower")])


def weighted_histogram(w, x):
    """A weighted density histogram (differentiable in the weights)."""
    h, _ = np.histogram(x, bins=5, range=(-2, 2), weights=w, density=True)
    return h


def multinomial_logit(beta_flat, X, y, K=3):
    """Multinomial logit log-likelihood with scipy.special.softmax and fancy indexing."""
    P = scipy.special.softmax(X @ beta_flat.reshape(X.shape[1], K), axis=1)
    return np.sum(np.log(P[np.arange(len(y)), y]))


def ols_with_se(shift, X, y):
    """OLS by np.linalg.lstsq and classical standard errors from inv(X^T X)."""
    yy = y + shift[0] * X[:, 1]
    coef, res, rank, sv = np.linalg.lstsq(X, yy, rcond=None)
    r = yy - X @ coef
    s2 = r @ r / (X.shape[0] - X.shape[1])
    return np.concatenate([coef, np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))])


def log_normaliser_quad(theta):
    """Log normalising constant of a normal x Cauchy posterior by scipy.integrate.quad."""
    f = lambda t, a, b: np.exp(-0.5 * (t - a) ** 2 / b**2) / (1 + t**2)  # noqa: E731
    val, err = scipy.integrate.quad(f, -10.0, 10.0, args=(theta[0], np.exp(theta[1])))
    return np.log(val)


def elbo(params, eps, X, y):
    """Monte Carlo ELBO of Bayesian logistic regression, Gaussian mean-field family,
    reparameterised with fixed standard normal draws eps (S, d)."""
    d = X.shape[1]
    mu, log_s = params[:d], params[d:]
    z = mu + np.exp(log_s) * eps
    logp = np.array([-np.sum(np.logaddexp(0.0, X @ zi) - y * (X @ zi)) - 0.5 * zi @ zi for zi in z])
    return logp.mean() + np.sum(log_s)


def km_vectorised(w, time, event):
    """Weighted Kaplan-Meier with reversed cumsum risk sets and np.cumprod."""
    order = np.argsort(time)
    w, ev = w[order], event[order]
    at_risk = np.cumsum(w[::-1])[::-1]
    return np.cumprod(1.0 - ev * w / at_risk)


def efron_cox(beta, X, time, event):
    """Cox partial likelihood with Efron's correction for ties, by loops."""
    eta = X @ beta
    r = np.exp(eta)
    ll = 0.0
    for t in np.unique(time[event > 0]):
        dead = (time == t) & (event > 0)
        risk = time >= t
        d = dead.sum()
        rs, rd = r[risk].sum(), r[dead].sum()
        ll += eta[dead].sum()
        for l in range(d):
            ll -= np.log(rs - l / d * rd)
    return ll


def hinge_loop(beta, X, y):
    """SVM hinge loss by a loop with Python's max."""
    total = 0.0
    for i in range(len(y)):
        total += max(0.0, 1.0 - y[i] * (X[i] @ beta))
    return total


# ---- ordinal and zero-inflated models, resampling, MCMC diagnostics ----------------------

def ordinal_logit(params, X, y, K=4):
    """Cumulative-logit ordinal regression: ordered cutpoints from cumsum of exp."""
    p = X.shape[1]
    beta, raw = params[:p], params[p:]
    cuts = np.concatenate([raw[:1], raw[0] + np.cumsum(np.exp(raw[1:]))])
    eta = X @ beta
    cdf = scipy.special.expit(cuts[None, :] - eta[:, None])
    cdf = np.concatenate([np.zeros((len(y), 1)), cdf, np.ones((len(y), 1))], axis=1)
    probs = np.diff(cdf, axis=1)
    return np.sum(np.log(probs[np.arange(len(y)), y]))

def zip_loglik(params, X, y):
    """Zero-inflated Poisson with logaddexp for the zeros."""
    p = X.shape[1]
    beta, logit_pi = params[:p], params[p]
    eta = X @ beta
    log_pi = -np.logaddexp(0.0, -logit_pi)
    log_1mpi = -np.logaddexp(0.0, logit_pi)
    ll_zero = np.logaddexp(log_pi, log_1mpi - np.exp(eta))
    ll_pos = log_1mpi + y * eta - np.exp(eta) - scipy.special.gammaln(y + 1)
    return np.sum(np.where(y == 0, ll_zero, ll_pos))

def jackknife_se(x):
    """Jackknife standard error of the mean with np.delete."""
    n = len(x)
    reps = np.array([np.mean(np.delete(x, i)) for i in range(n)])
    return np.sqrt((n - 1) / n * np.sum((reps - reps.mean()) ** 2))

def loo_mask_var(x):
    """Leave-one-out variances with a boolean mask per observation."""
    n = len(x)
    out = []
    for i in range(n):
        keep = np.arange(n) != i
        out.append(x[keep].var(ddof=1))
    return np.array(out)

def block_bootstrap_means(x, block=4):
    """Moving-block means through sliding_window_view (a view of x)."""
    wins = np.lib.stride_tricks.sliding_window_view(x, block)
    return wins.mean(axis=1)

def autocorr_fft(x):
    """Sample autocorrelation by zero-padded FFT, as MCMC diagnostics compute it."""
    n = len(x)
    xc = x - x.mean()
    f = np.fft.rfft(xc, n=2 * n)
    acov = np.fft.irfft(f * np.conj(f))[:n] / n
    return acov / acov[0]

def ess(x):
    """Effective sample size with Geyer's initial positive sequence (an early break)."""
    rho = autocorr_fft(x)
    s = 0.0
    for t in range(1, len(rho) - 1, 2):
        pair = rho[t] + rho[t + 1]
        if pair < 0:
            break
        s += pair
    return len(x) / (1 + 2 * s)

def rhat(chains):
    """Gelman-Rubin potential scale reduction of (m, n) chains."""
    m, n = chains.shape
    means = chains.mean(axis=1)
    W = chains.var(axis=1, ddof=1).mean()
    B = n * means.var(ddof=1)
    var_plus = (n - 1) / n * W + B / n
    return np.sqrt(var_plus / W)

@npfunc.custom_vjp
def log1mexp(x):
    """log(1 - exp(-x)) for x > 0, the stable two-branch form."""
    return np.where(x < np.log(2.0), np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))

def _l1_fwd(x):
    return log1mexp(x), x

def _l1_bwd(x, g):
    return (g / np.expm1(x),)

log1mexp.defvjp(_l1_fwd, _l1_bwd)

def interval_censored(params, lo, hi):
    """Interval-censored exponential: log(S(lo) - S(hi)) = -rate lo + log1mexp(rate (hi - lo))."""
    rate = np.exp(params[0])
    return np.sum(-rate * lo + log1mexp(rate * (hi - lo)))

# ---- the programs under every transform ----------------------------------------------------

_R = np.random.default_rng(7)
_B0 = np.array([0.2, -0.4, 0.6])
_P0 = np.array([0.2, -0.4, 0.6, 0.3])
_TH = np.array([0.2, 0.5])
_XS = _R.standard_normal(15)
_WQ = _R.uniform(0.5, 1.5, 15)
_GRID = np.linspace(-2.0, 2.0, 7)
_IDX = _R.integers(0, 15, size=(20, 15))
_XM = np.concatenate([_R.normal(-1.0, 0.7, 10), _R.normal(1.0, 1.2, 10)])
_YT = np.maximum(X @ BETA + _R.standard_normal(N), 0.0)
_YR = X @ BETA + _R.standard_t(2, size=N)
_YL = X @ BETA + 0.5 * _R.standard_normal(N)
_COUNTS = _R.integers(0, 6, size=(7, 4)).astype(float)
_ZG = np.eye(6)[GROUP]
_XG = np.linspace(0.0, 3.0, 10)
_YG = np.sin(_XG) + 0.1 * _R.standard_normal(10)
_CORR = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.0]])
_XV = _R.standard_normal((6, 3))
_ZOO_X = _R.standard_normal(9)
_ZOO_K = _R.integers(0, 6, size=9).astype(float)
_S0 = np.cov(_R.standard_normal((30, 3)), rowvar=False)
_D0 = _R.standard_normal((12, 3))
_YK = _R.integers(0, 3, size=N)
_EPS = _R.standard_normal((4, 3))
_W24 = 1.0 + _R.uniform(size=N)
_XNAN = _XS.copy()
_XNAN[3] = np.nan
_YO = _R.integers(0, 4, size=N)
_YZ = Y_CNT.copy()
_YZ[::3] = 0.0
_CHAINS = _R.standard_normal((3, 10))
_LO, _HI = np.array([0.1, 0.5, 1.0]), np.array([0.3, 1.5, 1.2])
_YE = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
_SE = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])


def _near(x, n=3, scale=0.1):
    return x + scale * _R.standard_normal((n,) + np.shape(x))


# (name, program of one array, point, batch for vmap, scalar output?)
SCALAR = [
    ("logistic_nll", lambda b: logistic_nll(b, X, Y_BIN), _B0),
    ("logistic_nll_expit", lambda b: logistic_nll_expit(b, X, Y_BIN), _B0),
    ("poisson_glm", lambda b: poisson_glm_loglik(b, X, Y_CNT), _B0),
    ("negbin", lambda p: negbin_loglik(p, X, Y_CNT), _P0),
    ("probit", lambda b: probit_loglik(b, X, Y_BIN), _B0),
    ("cox", lambda b: cox_partial_loglik(b, X, TIMES, EVENTS), _B0),
    ("weibull", lambda t: weibull_censored_loglik(t, TIMES, EVENTS), _TH),
    ("gamma_censored", lambda t: gamma_censored_loglik(t, TIMES, EVENTS), _TH),
    ("tobit", lambda p: tobit_loglik(p, X, _YT, 0.0), _P0),
    ("huber", lambda b: huber_loss(b, X, _YR), _B0),
    ("pinball", lambda b: pinball_loss(b, X, _YR), _B0),
    ("mad", mad_scale, _XS),
    ("trimmed_mean", trimmed_mean, _XS),
    ("weighted_quantile_w", lambda w: weighted_quantile(_XS, w, 0.4), _WQ),
    ("kde_loo", lambda lh: kde_loo_score(lh, _XS), np.array(-0.5)),
    ("kde_loo_data", lambda d: kde_loo_score(-0.5, d), _XS),
    ("bootstrap_se", lambda x: bootstrap_se(x, _IDX), _XS),
    ("ar1", lambda p: ar1_loglik(p, _XS), np.array([0.3, -0.4])),
    ("student_t", lambda p: student_t_regression(p, X, _YL), np.array([0.2, -0.4, 0.6, -0.5, 1.0])),
    ("dirichlet_multinomial", lambda a: dirichlet_multinomial(a, _COUNTS), np.array([0.1, -0.2, 0.3, 0.0])),
    ("mixed_model", lambda t: mixed_model_marginal(t, X, Y_GRP, _ZG), np.array([0.1, 0.4, -0.2, 0.0, -0.5])),
    ("gp_marginal", lambda lp: gp_marginal(lp, _XG, _YG), np.array([-0.2, 0.1, -2.0])),
    ("distribution_zoo", lambda t: distribution_zoo(t, _ZOO_X, _ZOO_K), np.log([2.0, 1.5, 2.5, 0.8])),
    ("distribution_zoo_x", lambda x: distribution_zoo(np.log([2.0, 1.5, 2.5, 0.8]), x, _ZOO_K), _ZOO_X),
    ("mvn_scipy_cov", lambda ls: mvn_logpdf_cov(ls, _XV, _CORR), np.array([0.1, -0.2, 0.3])),
    ("mvn_chol_mean", lambda m: mvn_logpdf_chol(m, _XV, _CORR), np.array([0.1, -0.2, 0.3])),
    ("mvn_chol_cov", lambda c: mvn_logpdf_chol(np.zeros(3), _XV, c), _CORR),
    ("bernoulli_xlogy", lambda p: bernoulli_xlogy(p, np.array([0.0, 1, 1, 0, 1])),
     np.array([0.2, 0.7, 0.9, 0.1, 0.5])),
    ("energy", lambda q: nuts_energy(q, np.array([0.2, 0.4]), np.array([1.0, 2.0])), np.array([0.5, -0.3])),
    ("eb_neg_marginal", lambda h: eb_neg_marginal(h, _YE, _SE), np.array([5.0, 1.5])),
    ("laplace_evidence", lambda lp: laplace_log_evidence(lp, X, Y_BIN), np.array(0.3)),
    ("multinomial_logit", lambda b: multinomial_logit(b, X, _YK), 0.1 * _R.standard_normal(9)),
    ("frozen_normal", lambda t: frozen_normal_loglik(t, _XS), np.array([0.2, -0.1])),
    ("log_normaliser_quad", log_normaliser_quad, np.array([0.3, -0.2])),
    ("elbo", lambda p: elbo(p, _EPS, X, Y_BIN), 0.1 * _R.standard_normal(6)),
    ("efron_cox", lambda b: efron_cox(b, X, np.round(TIMES), EVENTS), _B0),
    ("median_even", np.median, _XS[:10]),
    ("poisson_int_counts", lambda b: poisson_glm_loglik(b, X, Y_CNT.astype(np.int64)), _B0),
    ("ordinal_logit", lambda p: ordinal_logit(p, X, _YO), np.array([0.2, -0.3, 0.1, -0.5, 0.1, 0.2])),
    ("zero_inflated_poisson", lambda p: zip_loglik(p, X, _YZ), np.array([0.2, -0.3, 0.1, -0.5])),
    ("jackknife_se", jackknife_se, _XS),
    ("rhat", rhat, _CHAINS),
    ("interval_censored", lambda p: interval_censored(p, _LO, _HI), np.array([0.2])),
]
VECTOR = [
    ("irls_step", lambda b: irls_step(b, X, Y_BIN), _B0),
    ("kde_logpdf", lambda lh: kde_logpdf(lh, _XS, _GRID), np.array(-0.5)),
    ("kde_logpdf_data", lambda d: kde_logpdf(np.array(-0.5), d, _GRID), _XS),
    ("credible_interval", lambda s: np.stack(credible_interval(s)), _XM),
    ("wald", normal_quantile_interval, np.array([1.0, 0.5])),
    ("cov_to_corr", cov_to_corr, _S0),
    ("np_cov", lambda d: sample_cov_corr(d)[0], _D0),
    ("np_corrcoef", lambda d: sample_cov_corr(d)[1], _D0),
    ("fisher_information", lambda b: fisher_information(b, X, Y_BIN), _B0),
    ("leapfrog_jit_q", lambda q: leapfrog_jit(q, np.array([0.2, 0.4]))[0], np.array([0.5, -0.3])),
    ("leapfrog_jit_p", lambda p: leapfrog_jit(np.array([0.1, 0.2]), p)[1], np.array([0.5, -0.3])),
    ("empirical_bayes", lambda y: empirical_bayes(y, _SE)[1], _YE),
    ("group_means", lambda w: group_means(w, GROUP), _W24),
    ("group_sums_add_at", lambda w: group_sums_add_at(w, GROUP), _W24),
    ("weighted_mean_var_x", lambda x: weighted_mean_var(x, _WQ), _XS),
    ("weighted_mean_var_w", lambda w: weighted_mean_var(_XS, w), _WQ),
    ("nan_summaries", nan_summaries, _XNAN),
    ("quantile_methods", quantile_methods, _XS),
    ("weighted_histogram", lambda w: weighted_histogram(w, _XS), _WQ),
    ("ols_with_se", lambda s: ols_with_se(s, X, Y_CNT), np.array([0.3])),
    ("km_vectorised", lambda w: km_vectorised(w, TIMES, EVENTS), _W24),
    ("loo_mask_var", loo_mask_var, _XS),
    ("block_means", block_bootstrap_means, _XS),
    ("autocorr_fft", autocorr_fft, _XS),
]
_SLOW = {"laplace_evidence", "empirical_bayes"}


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name, f, x", SCALAR, ids=_ids(SCALAR))
def test_scalar_program_gradients(name, f, x):
    """grad, jacrev, jacfwd, jit(grad) and vjp/jvp against five-point differences."""
    J = fd(f, x)
    assert_deriv(npfunc.grad(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    if name in _SLOW:
        return
    assert_deriv(npfunc.jacrev(f)(x), J)
    jg = npfunc.jit(npfunc.grad(f))
    assert_deriv(jg(x), J)
    assert_deriv(jg(x * 1.01), fd(f, x * 1.01))
    t = _R.standard_normal(np.shape(x))
    out, tan = npfunc.jvp(f, (x,), (t,))
    assert_same(out, f(x))
    assert_deriv(tan, np.sum(J * t))
    out, pull = npfunc.vjp(f, x)
    assert_same(out, f(x))
    assert_deriv(pull(np.float64(1.5))[0], 1.5 * J)


@pytest.mark.parametrize("name, f, x", SCALAR, ids=_ids(SCALAR))
def test_scalar_program_hessian(name, f, x):
    """hessian and jacfwd(jacrev) against differences of the gradient."""
    if name in _SLOW or name == "log_normaliser_quad":
        pytest.skip("slow (nested quadrature / Newton loops); first derivatives are checked")
    H = fd(lambda z: np.asarray(npfunc.grad(f)(z)), x)
    assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, f, x", SCALAR + VECTOR, ids=_ids(SCALAR + VECTOR))
def test_program_jit_values(name, f, x):
    """jit gives the plain program's value, type and dtype, on two different inputs."""
    if name in _SLOW:
        pytest.skip("slow: scipy.optimize / nested hessians, values checked elsewhere")
    jf = npfunc.jit(f)
    assert_same(jf(x), f(x))
    x2 = x * 1.01
    assert_same(jf(x2), f(x2))


@pytest.mark.parametrize("name, f, x", SCALAR + VECTOR, ids=_ids(SCALAR + VECTOR))
def test_program_vmap(name, f, x):
    """vmap over a batch of inputs against a Python loop and np.stack; vmap(grad) too."""
    if name in _SLOW:
        pytest.skip("slow; empirical Bayes has its own vmap test")
    batch = _near(x) if x.ndim != 2 else np.stack([x, x * 1.1 + 0.01 * np.eye(*x.shape)])
    got = npfunc.vmap(f)(batch)
    want = np.stack([np.asarray(f(b)) for b in batch])
    assert_same(got, want, rtol=1e-10)
    if name in dict((c[0], 0) for c in SCALAR):
        assert_deriv(npfunc.vmap(npfunc.grad(f))(batch), np.stack([fd(f, b) for b in batch]))


@pytest.mark.parametrize("name, f, x", VECTOR, ids=_ids(VECTOR))
def test_vector_program_jacobians(name, f, x):
    """jacrev, jacfwd, jvp and vjp of the vector-valued programs."""
    J = fd(f, x)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    if name in _SLOW:
        return
    assert_deriv(npfunc.jacrev(f)(x), J)
    want = f(x)
    t = _R.standard_normal(np.shape(x))
    out, tan = npfunc.jvp(f, (x,), (t,))
    assert_same(out, want)
    assert_deriv(tan, np.tensordot(J, t, axes=t.ndim))
    ct = _R.standard_normal(np.shape(want))
    out, pull = npfunc.vjp(f, x)
    assert_same(out, want)
    assert_deriv(pull(ct)[0], np.tensordot(ct, J, axes=ct.ndim))


# ---- compositions, pytrees, dtypes ---------------------------------------------------------


def test_empirical_bayes_vmap_agrees_to_solver_tolerance():
    """vmap of a program that calls scipy.optimize.minimize solves the stacked problem
    once; docs/solvers.md promises agreement with a loop to the solver tolerance."""
    batch = np.stack([_YE, _YE + 1.0, 0.5 * _YE])
    got = npfunc.vmap(lambda y: empirical_bayes(y, _SE)[1])(batch)
    want = np.stack([empirical_bayes(y, _SE)[1] for y in batch])
    assert_same(got, want, rtol=1e-4)


def test_laplace_evidence_under_jit_of_grad_and_vmap():
    """Laplace evidence (npfunc.grad and npfunc.hessian inside a Newton loop) under
    vmap over prior precisions; its derivative was checked in the scalar table."""
    lps = np.array([-0.5, 0.3])
    got = npfunc.vmap(lambda lp: laplace_log_evidence(lp, X, Y_BIN))(lps)
    assert_same(got, np.stack([laplace_log_evidence(lp, X, Y_BIN) for lp in lps]), rtol=1e-10)


def test_hmc_leapfrog_jacobian_is_volume_preserving():
    """jacrev of the leapfrog map in (q, p) (npfunc.grad inside the loop, in-place updates
    of copies of traced arguments) matches differences and has determinant 1."""
    q0, p0 = np.array([0.5, -0.3]), np.array([0.2, 0.4])
    (Jqq, Jqp), (Jpq, Jpp) = npfunc.jacrev(hmc_leapfrog, argnums=(0, 1))(q0, p0)
    J = np.block([[Jqq, Jqp], [Jpq, Jpp]])
    flat = lambda z: np.concatenate(hmc_leapfrog(z[:2], z[2:]))  # noqa: E731
    assert_deriv(J, fd(flat, np.concatenate([q0, p0])))
    assert abs(np.linalg.det(J) - 1.0) < 1e-6
    for got, want in zip(npfunc.jit(hmc_leapfrog)(q0, p0), hmc_leapfrog(q0, p0)):
        assert_same(got, want)
    qs, ps = np.stack([q0, q0 + 0.1]), np.stack([p0, -p0])
    got = npfunc.vmap(hmc_leapfrog)(qs, ps)
    want = [hmc_leapfrog(q, p) for q, p in zip(qs, ps)]
    assert_same(got[0], np.stack([w[0] for w in want]))
    assert_same(got[1], np.stack([w[1] for w in want]))


def test_hmc_leapfrog_plain_momentum_refuses_in_place_add():
    """With q traced and p plain, `p += eps * g(q)` writes a traced value into a plain copy:
    npfunc refuses naming the transform and the functional fix, which works (leapfrog_jit)."""
    q0, p0 = np.array([0.5, -0.3]), np.array([0.2, 0.4])
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jacrev\(f\).*returns a new array"):
        npfunc.jacrev(lambda q: hmc_leapfrog(q, p0)[0])(q0)
    f = lambda q: leapfrog_jit(q, p0)[0]  # noqa: E731
    assert_deriv(npfunc.jacrev(f)(q0), fd(f, q0))
    np.testing.assert_allclose(leapfrog_jit(q0, p0)[0], hmc_leapfrog(q0, p0)[0], rtol=1e-13)


def _halfcauchy_logpdf(t, s=2.5):
    return np.log(2.0 / (np.pi * s)) - np.log1p((t / s) ** 2)


_HPARAMS = {"mu": np.float64(0.3), "log_tau": np.float64(-0.2), "z": np.linspace(-1.0, 1.0, 6)}


def test_hierarchical_halfcauchy_refuses_and_formula_works():
    """scipy.stats.halfcauchy has no twin: grad refuses naming the distribution and the
    fix (write the formula with np / scipy.special); the formula gives SciPy's value and
    a derivative matching differences, as a dict of the parameters' own types."""
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"grad\(f\).*halfcauchy.*write the formula"):
        npfunc.grad(lambda p: hierarchical_logdensity(p, Y_GRP, GROUP))(_HPARAMS)

    def f(p):
        return hierarchical_logdensity(p, Y_GRP, GROUP, tau_logprior=_halfcauchy_logpdf)

    assert_same(f(_HPARAMS), hierarchical_logdensity(_HPARAMS, Y_GRP, GROUP))
    g = npfunc.grad(f)(_HPARAMS)
    assert type(g["mu"]) is np.float64 and type(g["log_tau"]) is np.float64
    flat = np.concatenate([[_HPARAMS["mu"], _HPARAMS["log_tau"]], _HPARAMS["z"]])
    unflat = lambda v: {"mu": v[0], "log_tau": v[1], "z": v[2:]}  # noqa: E731
    J = fd(lambda v: f(unflat(v)), flat)
    assert_deriv(np.concatenate([[g["mu"], g["log_tau"]], g["z"]]), J)
    assert_same(npfunc.jit(f)(_HPARAMS), f(_HPARAMS))
    H = npfunc.hessian(f)(_HPARAMS)
    assert_deriv(H["z"]["log_tau"], fd(lambda v: npfunc.grad(f)(unflat(v))["z"], flat)[:, 1])
    batch = {"mu": np.array([0.3, -0.1]), "log_tau": np.array([-0.2, 0.4]), "z": np.stack([_HPARAMS["z"]] * 2)}
    got = npfunc.vmap(f)(batch)
    want = np.stack([f({k: v[i] for k, v in batch.items()}) for i in range(2)])
    assert_same(got, want)


def test_float32_likelihoods_keep_float32():
    """float32 data and parameters: values are np.float32 scalars (probit goes to float64
    through scipy.stats, as in NumPy), gradients float32, under grad / jvp / jit / vmap."""
    X32, y32, b32 = X.astype(np.float32), Y_BIN.astype(np.float32), _B0.astype(np.float32)
    for prog in (logistic_nll, logistic_nll_expit, huber_loss, pinball_loss, probit_loglik):
        f = lambda b: prog(b, X32, y32)  # noqa: E731
        want = f(b32)
        assert_same(npfunc.jit(f)(b32), want, rtol=1e-6)
        out, tan = npfunc.jvp(f, (b32,), (np.ones(3, np.float32),))
        assert_same(out, want, rtol=1e-6)
        assert tan.dtype == want.dtype
        g = npfunc.grad(f)(b32)
        assert g.dtype == np.float32
        assert_deriv(g, fd(f, b32.astype(float)), rtol=2e-3, atol=2e-3)
        vb = npfunc.vmap(f)(np.stack([b32, -b32]))
        assert vb.dtype == want.dtype


def test_welford_float32_scalars():
    """Welford's float32 running moments: NumPy float32 scalars under jit, jvp and vmap."""
    x32 = _XS[:10].astype(np.float32)
    want = welford_float32(x32)
    for got in (npfunc.jit(welford_float32)(x32), npfunc.jvp(welford_float32, (x32,), (np.ones_like(x32),))[0]):
        for g, w in zip(got, want):
            assert_same(g, w, rtol=1e-6)
    vb = npfunc.vmap(welford_float32)(np.stack([x32, 2 * x32]))
    assert vb[0].dtype == np.float32 and vb[1].dtype == np.float32
    assert npfunc.jacrev(lambda x: welford_float32(x)[1])(x32).dtype == np.float32


# ---- side effects and views ----------------------------------------------------------------


def _spread(n=4):
    return np.arange(3.0 * n).reshape(n, 3) ** 1.5


def test_standardize_in_place_under_transforms():
    """standardize_ centres and scales its argument in place and returns it: jit returns
    the caller's array itself, updated; grad/jvp update it as the plain call does; vmap
    updates each row of the batch."""
    A = _spread()
    plain = A.copy()
    out_plain, s_plain = standardize_(plain)
    a = A.copy()
    out, s = npfunc.jit(standardize_)(a)
    assert out is a
    assert_same(a, plain)
    assert_same(s, s_plain)
    a = A.copy()
    g = npfunc.grad(lambda m: standardize_(m)[1].sum())(a)
    assert_same(a, plain)
    assert_deriv(g, fd(lambda m: standardize_(m.copy())[1].sum(), A))
    a = A.copy()
    npfunc.jvp(standardize_, (a,), (np.ones_like(a),))
    assert_same(a, plain)
    batch = np.stack([A, 2.0 * A + 1.0])
    want = batch.copy()
    for b in want:
        standardize_(b)
    npfunc.vmap(standardize_)(batch)
    assert_same(batch, want)


def test_clip_out_argument_and_views():
    """np.clip(theta, out=theta) under jit returns the caller's array, clipped; grad clips
    it too; split_params' beta is a view of theta under jit as in NumPy."""
    t = np.array([5.0, -4.0, 1.0])
    r = npfunc.jit(clip_params_)(t)
    assert r is t
    assert_same(t, np.array([3.0, -3.0, 1.0]))
    t = np.array([5.0, -4.0, 1.0])
    assert_same(npfunc.grad(lambda v: clip_params_(v).sum())(t), np.array([0.0, 0.0, 1.0]))
    assert_same(t, np.array([3.0, -3.0, 1.0]))
    th = np.array([0.3, -0.2, 0.5])
    beta, sigma = npfunc.jit(split_params)(th)
    want_beta, want_sigma = split_params(th)
    assert_same(beta, want_beta)
    assert_same(sigma, want_sigma)
    assert np.shares_memory(beta, th)


# ---- preallocated buffers (refused before pending arrays, now NumPy's values) and refusals --
# A traced write into np.empty/np.zeros made in the program was refused naming
# np.zeros(shape, like=x); the buffer written the plain way now takes the write
# (npfunc.core.pending), and is checked against plain NumPy and against that like= fix.


def kaplan_meier_traced(weights, time, event):
    """kaplan_meier with the output buffer made traced (the like= fix the old refusal advised)."""
    order = np.argsort(time)
    w, ev = weights[order], event[order]
    n = len(w)
    S = np.zeros(n, like=weights)
    at_risk = np.sum(w)
    surv = 1.0
    for i in range(n):
        if ev[i] > 0:
            surv = surv * (1.0 - w[i] / at_risk)
        S[i] = surv
        at_risk = at_risk - w[i]
    return S


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd", "jit", "vmap"])
def test_kaplan_meier_plain_buffer_matches_like_fix(transform):
    """S = np.empty(n); S[i] = traced (the buffer written the plain way) used to be refused
    naming np.zeros(shape, like=x); it now works under every transform: the plain program's
    values (jit: recording and replays with new values; vmap: a loop) and the differences'
    Jacobian, as the like= fix gives."""
    w = 1.0 + 0.3 * _R.uniform(size=N)
    f = lambda w: kaplan_meier(w, TIMES, EVENTS)  # noqa: E731
    fixed = lambda w: kaplan_meier_traced(w, TIMES, EVENTS)  # noqa: E731
    if transform in ("jacrev", "jacfwd"):
        jac = getattr(npfunc, transform)
        for v in (w, w[::-1]):
            got = jac(f)(v)
            assert_deriv(got, fd(f, v))
            assert_deriv(got, jac(fixed)(v), rtol=1e-12, atol=1e-15)
    elif transform == "jit":
        jf = npfunc.jit(f)
        assert_same(jf(w), f(w))
        for v in (w * 1.1, w[::-1], w * 0.9):  # replays with new values
            assert_same(jf(v), f(v))
            assert_same(jf(v), npfunc.jit(fixed)(v))
    else:
        batch = np.stack([w, w[::-1], 0.9 * w])
        got = npfunc.vmap(f)(batch)
        assert_same(got, np.stack([f(b) for b in batch]))
        assert_same(got, npfunc.vmap(fixed)(batch))


def test_kaplan_meier_traced_buffer_works():
    w = 1.0 + 0.3 * _R.uniform(size=N)
    f = lambda w: kaplan_meier_traced(w, TIMES, EVENTS)  # noqa: E731
    assert_same(f(w), kaplan_meier(w, TIMES, EVENTS))
    J = fd(f, w)
    assert_deriv(npfunc.jacrev(f)(w), J)
    assert_deriv(npfunc.jacfwd(f)(w), J)
    jf = npfunc.jit(f)
    assert_same(jf(w), f(w))
    assert_same(jf(w * 1.1), f(w * 1.1))
    batch = np.stack([w, w[::-1]])
    assert_same(npfunc.vmap(f)(batch), np.stack([f(b) for b in batch]))


def gmm_loglik_traced(params, x):
    """gmm_loglik with the (K, n) buffer created like the parameters."""
    w1 = scipy.special.expit(params[0])
    logw = np.log(np.array([w1, 1.0 - w1]))
    mus, sig = params[1:3], np.exp(params[3:5])
    comp = np.zeros((2, x.size), like=params)
    for k in range(2):
        comp[k] = logw[k] + scipy.stats.norm.logpdf(x, mus[k], sig[k])
    return scipy.special.logsumexp(comp, axis=0).sum()


def stick_breaking_traced(y):
    """stick_breaking with the simplex buffer created like y."""
    K = y.shape[0] + 1
    x = np.zeros(K, like=y)
    remaining = 1.0
    logJ = 0.0
    for k in range(K - 1):
        z = scipy.special.expit(y[k] - np.log(K - k - 1))
        x[k] = remaining * z
        logJ += np.log(remaining) + np.log(z) + np.log1p(-z)
        remaining -= x[k]
    x[K - 1] = remaining
    return x, logJ


def bootstrap_loop_traced(x, seed=3, B=30):
    """bootstrap_loop with the statistics buffer created like x."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    stats = np.zeros(B, like=x)
    for b in range(B):
        idx = rng.integers(0, n, size=n)
        stats[b] = np.median(x[idx])
    return np.percentile(stats, [5.0, 95.0])


@pytest.mark.parametrize(
    "plain, fixed, x",
    [
        (lambda p: gmm_loglik(p, _XM), lambda p: gmm_loglik_traced(p, _XM), np.array([0.0, -1.0, 1.0, -0.3, 0.2])),
        (lambda y: stick_breaking(y)[1], lambda y: stick_breaking_traced(y)[1], np.array([0.3, -0.4, 0.1])),
        (lambda y: stick_breaking(y)[0], lambda y: stick_breaking_traced(y)[0], np.array([0.3, -0.4, 0.1])),
        (bootstrap_loop, bootstrap_loop_traced, _XS),
    ],
    ids=["gmm", "stick_logJ", "stick_simplex", "bootstrap_loop"],
)
def test_preallocated_buffer_plain_matches_like_fix(plain, fixed, x):
    """Writes of traced values into np.empty/np.zeros buffers, written the plain way, used to
    be refused under jacrev naming np.zeros(shape, like=x); they now give the plain value
    under jit (recording and a replay with new values) and the differences' derivative
    under jacrev, as that fix does."""
    J = fd(plain, x)
    assert_deriv(npfunc.jacrev(plain)(x), J)
    assert_deriv(npfunc.jacrev(plain)(x), npfunc.jacrev(fixed)(x), rtol=1e-12, atol=1e-15)
    jp = npfunc.jit(plain)
    assert_same(jp(x), plain(x))
    x2 = x * 1.1
    assert_same(jp(x2), plain(x2))  # a replay with new values
    assert_same(fixed(x), plain(x))
    assert_deriv(npfunc.jacrev(fixed)(x), J)
    assert_same(npfunc.jit(fixed)(x), plain(x))


def test_weighted_quantile_plain_weights_under_jit():
    """Under jit argsort is traced, so weights[order] indexes a plain array with a traced
    index: jit refuses naming np.asarray(table, like=i), and that fix works."""
    f = lambda v: weighted_quantile(v, _WQ, 0.4)  # noqa: E731
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.asarray\(table, like=i\)"):
        npfunc.jit(f)(_XS)

    def fixed(values):
        order = np.argsort(values)
        w = np.asarray(_WQ, like=order)[order]
        cw = (np.cumsum(w) - 0.5 * w) / np.sum(w)
        return np.interp(0.4, cw, values[order])

    jf = npfunc.jit(fixed)
    assert_same(jf(_XS), f(_XS))
    assert_same(jf(-_XS), f(-_XS))
    batch = _near(_XS, 2, 1.0)
    assert_same(npfunc.vmap(fixed)(batch), np.stack([f(b) for b in batch]))


def test_metropolis_branch_refuses_under_vmap_where_version_matches():
    """`if log(u) < log_ratio` cannot be batched: vmap refuses naming np.where; the
    np.where version matches a loop of the branching step."""
    xs = _R.standard_normal((5, 2))
    us = _R.uniform(size=5)
    noise = _R.standard_normal((5, 2))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(.*np\.where"):
        npfunc.vmap(lambda x, u, e: metropolis_step(x, u, noise=e))(xs, us, noise)
    got = npfunc.vmap(lambda x, u, e: metropolis_step_where(x, u, noise=e))(xs, us, noise)
    want = np.stack([metropolis_step(x, u, noise=e) for x, u, e in zip(xs, us, noise)])
    assert_same(got, want)


def test_scipy_skew_refuses_under_jit_and_differentiates():
    """scipy.stats.skew catches a refused bool() inside: jit refuses rather than
    replay another path; grad works outside jit."""
    f = lambda v: sample_moments(v)["skew"]  # noqa: E731
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*caught this error"):
        npfunc.jit(f)(_XS)
    assert_deriv(npfunc.grad(f)(_XS), fd(f, _XS))
    moments = npfunc.jvp(sample_moments, (_XS,), (np.ones_like(_XS),))[0]
    for k, v in sample_moments(_XS).items():
        assert_same(moments[k], v)


# ---- documented conventions ----------------------------------------------------------------

_Y_DEV = np.array([0.0, 2, 0, 5, 1, 3, 0, 7])
_MU_DEV = np.array([0.5, 2.2, 0.3, 4.0, 1.5, 2.5, 0.7, 6.0])


def poisson_deviance_double_where(mu, y):
    """The deviance with the zero counts kept out of the log (the double-where fix)."""
    pos = y > 0
    safe = np.where(pos, y, 1.0)
    term = np.where(pos, safe * np.log(safe / mu), 0.0)
    return 2.0 * np.sum(term - (y - mu))


def test_poisson_deviance_where_nan_is_the_documented_convention():
    """np.where with log(0) in the untaken branch: reverse mode gives NaN at the zero
    counts (docs/conventions.md, as JAX); forward mode is finite; the double where fixes it."""
    f = lambda m: poisson_deviance(m, _Y_DEV)  # noqa: E731
    J = fd(f, _MU_DEV)
    with np.errstate(all="ignore"):  # the reverse pass warns about the NaN it makes
        g = npfunc.grad(f)(_MU_DEV)
    assert np.all(np.isnan(g[_Y_DEV == 0]))
    assert_deriv(g[_Y_DEV > 0], J[_Y_DEV > 0])
    assert_deriv(npfunc.jacfwd(f)(_MU_DEV), J)
    fixed = lambda m: poisson_deviance_double_where(m, _Y_DEV)  # noqa: E731
    assert_same(fixed(_MU_DEV), f(_MU_DEV))
    assert_deriv(npfunc.grad(fixed)(_MU_DEV), J)


# ---- np.errstate inside a jitted function --------------------------------------------------


def poisson_loglik_or_reject(mu, y):
    """Poisson log-likelihood, or a huge penalty when a proposal makes log(0): the
    sampler's guard is np.errstate(..., 'raise') and except FloatingPointError."""
    try:
        with np.errstate(divide="raise", invalid="raise"):
            return np.sum(y * np.log(mu) - mu)
    except FloatingPointError:
        return -1e10


_Y_POIS = np.array([1.0, 2.0, 0.0])
_MU_OK = np.array([0.5, 1.0, 2.0])
_MU_BAD = np.array([0.0, 1.0, 2.0])


@pytest.mark.parametrize("first", ["bad", "ok"])
def test_errstate_raise_inside_jit_refuses(first):
    """jit replays the recorded operations without the function's np.errstate, so a
    FloatingPointError (and the except branch) would be lost: recorded on a zero rate it
    returned the penalty for every later rate; recorded on good rates it returned -inf
    where the plain function takes the except branch. jit now refuses, naming the fix."""
    assert poisson_loglik_or_reject(_MU_BAD, _Y_POIS) == -1e10
    jf = npfunc.jit(poisson_loglik_or_reject)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jit\(.*np\.errstate.*outside"):
        jf(_MU_BAD if first == "bad" else _MU_OK, _Y_POIS)


def test_errstate_raise_outside_jit_works():
    """The refusal's fix: jit the arithmetic and keep np.errstate and the except
    outside; the replay runs under the caller's errstate and raises as NumPy does."""
    core = npfunc.jit(lambda mu, y: np.sum(y * np.log(mu) - mu))

    def guarded(mu, y):
        try:
            with np.errstate(divide="raise", invalid="raise"):
                return core(mu, y)
        except FloatingPointError:
            return -1e10

    for mu in (_MU_OK, _MU_BAD, _MU_OK * 2.0, _MU_BAD):
        assert_same(guarded(mu, _Y_POIS), poisson_loglik_or_reject(mu, _Y_POIS))
    f = lambda m: poisson_loglik_or_reject(m, _Y_POIS)  # noqa: E731
    assert_deriv(npfunc.grad(f)(_MU_OK), fd(f, _MU_OK))  # eager transforms keep the errstate


def test_errstate_ignore_inside_jit_keeps_warnings_silent():
    """The deviance silences log(0) with np.errstate(divide='ignore'): jit's replay ran
    without it and warned 'divide by zero encountered in log' where the plain function
    is silent; the recording now keeps the errstate of each operation (Var.errstate)
    and the generated code restores it. Also under jit(grad) and inside grad(jit)."""
    f = lambda m: poisson_deviance(m, _Y_DEV)  # noqa: E731
    jf = npfunc.jit(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(_MU_DEV)
        assert_same(jf(_MU_DEV), f(_MU_DEV))
        assert_same(jf(_MU_DEV * 1.1), f(_MU_DEV * 1.1))
        assert_same(jf(_MU_DEV * 1.2), f(_MU_DEV * 1.2))
        fixed = lambda m: poisson_deviance_double_where(m, _Y_DEV)  # noqa: E731
        assert_deriv(npfunc.grad(npfunc.jit(fixed))(_MU_DEV), fd(f, _MU_DEV))
        assert_same(npfunc.vmap(jf)(np.stack([_MU_DEV, 2 * _MU_DEV])), np.stack([f(_MU_DEV), f(2 * _MU_DEV)]))


# ---- Python's math module on traced values -------------------------------------------------

import math  # noqa: E402  (the careless program below uses it)


def normal_loglik_math(theta, x):
    """A normal log-likelihood written carelessly with math.exp / math.log."""
    sigma = math.exp(theta[1])
    return np.sum(-0.5 * ((x - theta[0]) / sigma) ** 2) - len(x) * math.log(sigma)


def normal_loglik_np(theta, x):
    """The same with np.exp / np.log, as the refusal advises."""
    sigma = np.exp(theta[1])
    return np.sum(-0.5 * ((x - theta[0]) / sigma) ** 2) - len(x) * np.log(sigma)


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_math_module_refusal_names_the_numpy_function(transform):
    """math.exp(traced) refuses under every transform; the message used to offer only
    stop_gradient (grad) or np.where / static_argnums (jit, vmap), which do not help:
    it now names np.exp, and that fix works."""
    f = lambda t: normal_loglik_math(t, _XS)  # noqa: E731
    th = np.array([0.2, -0.1])
    arg = np.stack([th, -th]) if transform == "vmap" else th
    with pytest.raises(npfunc.errors.NpfuncError, match=rf"{transform}\(f\).*math\.exp\(x\).*use np\.exp\(x\)"):
        getattr(npfunc, transform)(f)(arg)
    fixed = lambda t: normal_loglik_np(t, _XS)  # noqa: E731
    assert_same(fixed(th), f(th))
    assert_deriv(npfunc.grad(fixed)(th), fd(f, th))
    assert_same(npfunc.jit(fixed)(th), f(th))
    assert_same(npfunc.vmap(fixed)(np.stack([th, -th])), np.stack([f(th), f(-th)]))


# ---- a vectorised bootstrap: vmap over index arrays ----------------------------------------


def bootstrap_se_vmap(x, idx):
    """Bootstrap SE of the mean with vmap over the resampling indices; the data made a
    traced constant of the index (np.asarray(x, like=i)), as the refusal below advises."""
    means = npfunc.vmap(lambda i: np.asarray(x, like=i)[i].mean())(idx)
    return means.std(ddof=1)


def test_bootstrap_vmap_over_indices_refuses_plain_table():
    """x[i] with i batched by vmap and x plain cannot work: vmap refuses naming
    np.asarray(table, like=i)."""
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(.*np\.asarray\(table, like=i\)"):
        npfunc.vmap(lambda i: _XS[i].mean())(_IDX)


def test_bootstrap_vmap_over_indices_under_grad():
    """The advised np.asarray(x, like=i) with x itself traced by an outer grad / jit:
    it raised TypeError (array() got an unexpected keyword argument 'device') from
    primitives/shape/like.py; now x is returned as np.asarray returns an array."""
    assert_same(bootstrap_se_vmap(_XS, _IDX), bootstrap_se(_XS, _IDX))
    f = lambda x: bootstrap_se_vmap(x, _IDX)  # noqa: E731
    assert_deriv(npfunc.grad(f)(_XS), fd(lambda x: bootstrap_se(x, _IDX), _XS))
    assert_same(npfunc.jit(f)(_XS), bootstrap_se(_XS, _IDX))
    for name in ("asarray", "asanyarray", "array", "ascontiguousarray", "asfortranarray"):
        g = lambda x: getattr(np, name)(x, like=x).sum()  # noqa: E731
        assert_same(npfunc.grad(g)(_XS), np.ones_like(_XS))


def test_add_at_into_plain_buffer_matches_fixes():
    """np.add.at(plain buffer, group, traced), written the plain way, used to be refused
    naming npfunc.numpy.add_at and a traced buffer; it now gives the plain sums under jit
    (recording and a replay with new values) and vmap (a loop), and the differences'
    Jacobian under jacrev and jacfwd, as both fixes do."""
    f = lambda w: group_sums_add_at_plain(w, GROUP)  # noqa: E731

    def functional(w):
        return npfunc.numpy.add_at(np.zeros(6), GROUP, w)

    J = fd(f, _W24)
    assert_deriv(npfunc.jacrev(f)(_W24), J)
    assert_deriv(npfunc.jacfwd(f)(_W24), J)
    jf = npfunc.jit(f)
    assert_same(jf(_W24), f(_W24))
    assert_same(jf(_W24[::-1] * 1.1), f(_W24[::-1] * 1.1))  # a replay with new values
    batch = np.stack([_W24, _W24[::-1], 0.9 * _W24])
    assert_same(npfunc.vmap(f)(batch), np.stack([f(b) for b in batch]))
    for fixed in (functional, lambda w: group_sums_add_at(w, GROUP)):
        assert_same(fixed(_W24), f(_W24))
        assert_deriv(npfunc.jacrev(fixed)(_W24), J)
        assert_deriv(npfunc.jacrev(fixed)(_W24), npfunc.jacrev(f)(_W24), rtol=1e-12, atol=1e-15)
        assert_same(npfunc.jit(fixed)(_W24), f(_W24))


def test_hinge_with_python_max_refuses_under_jit_and_vmap():
    """Python's max on a traced value branches: grad follows the branch (values are
    concrete); jit and vmap refuse naming np.where, and np.maximum works."""
    ys = 2.0 * Y_BIN - 1.0
    f = lambda b: hinge_loop(b, X, ys)  # noqa: E731
    assert_deriv(npfunc.grad(f)(_B0), fd(f, _B0))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(f)(_B0)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(f)(_near(_B0))
    fixed = lambda b: np.sum(np.maximum(0.0, 1.0 - ys * (X @ b)))  # noqa: E731
    assert_same(npfunc.jit(fixed)(_B0), np.float64(f(_B0)))
    batch = _near(_B0)
    assert_same(npfunc.vmap(fixed)(batch), np.stack([np.float64(f(b)) for b in batch]))


def rng_choice_bootstrap(x, seed, B=10):
    """Bootstrap means with Generator.choice on the data itself, a seed as argument."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(x, size=len(x)).mean() for _ in range(B)])


def test_generator_choice_of_traced_data():
    """rng.choice(x) with x traced: a generator made inside from a seed argument replays
    the same draws (the seed is static), and the derivative is the resampled counts."""
    jf = npfunc.jit(rng_choice_bootstrap)
    for seed in (1, 2):
        assert_same(jf(_XS, seed), rng_choice_bootstrap(_XS, seed))
    f = lambda x: rng_choice_bootstrap(x, 1)  # noqa: E731
    assert_deriv(npfunc.jacrev(f)(_XS), fd(f, _XS))


# ---- internal probes under jit ---------------------------------------------------------------


def importance_weighted_cov(w, draws):
    """Posterior covariance from importance-sampling draws: np.cov with aweights."""
    return np.cov(draws, rowvar=False, aweights=w)


def test_weighted_cov_under_jit():
    """np.cov(aweights=traced) under jit: cov's internal check for nonpositive degrees of
    freedom (data_dependent.peek) caught the recording's refusal, and jit took that for a
    refusal the user's function had caught and refused the whole function; now it
    records (the check becomes np.where), with NumPy's values."""
    w = _R.uniform(0.5, 2.0, 12)
    jf = npfunc.jit(importance_weighted_cov)
    for ww in (w, 2.0 * w + 1.0):
        assert_same(jf(ww, _D0), importance_weighted_cov(ww, _D0))
    f = lambda w: importance_weighted_cov(w, _D0)  # noqa: E731
    assert_deriv(npfunc.jit(npfunc.jacrev(f))(w), fd(f, w))


def test_float32_quantile_with_float64_q_under_jit():
    """A float32 posterior sample's quantile at an np.float64 level (float64 result): the
    same false refusal (quantiles' peek for a NaN slice); jit now gives NumPy's value,
    and, as documented in quantiles.py, float64 also for a NaN slice (NumPy: float32)."""
    s32 = _XS.astype(np.float32)
    f = lambda s: np.quantile(s, np.float64(0.3))  # noqa: E731
    jf = npfunc.jit(f)
    assert_same(jf(s32), f(s32))
    assert_same(jf(2 * s32), f(2 * s32))
    nan32 = s32.copy()
    nan32[2] = np.nan
    assert_same(jf(nan32), np.float64(np.nan))


# ---- MLE influence by implicit differentiation; Python numbers among the outputs -----------


def ridge_logistic_mle(y, lam=0.1):
    """Penalised logistic MLE by BFGS (the gradient filled in by npfunc)."""
    res = scipy.optimize.minimize(lambda b, y: logistic_nll(b, X, y) + 0.5 * lam * b @ b, np.zeros(3),
                                  args=(y,), method="BFGS", options={"gtol": 1e-10})
    return res.x


def test_mle_influence_of_each_observation():
    """jacrev of the MLE in the responses is the implicit-function derivative
    H^-1 X^T (finite differences of an optimiser are too noisy to check it)."""
    b = ridge_logistic_mle(Y_BIN)
    p = scipy.special.expit(X @ b)
    H = X.T @ ((p * (1 - p))[:, None] * X) + 0.1 * np.eye(3)
    assert_deriv(npfunc.jacrev(ridge_logistic_mle)(Y_BIN), np.linalg.solve(H, X.T), rtol=1e-8, atol=1e-10)
    assert_deriv(npfunc.jacfwd(ridge_logistic_mle)(Y_BIN), np.linalg.solve(H, X.T), rtol=1e-8, atol=1e-10)


def mean_and_count(x):
    """A summary with the sample size, a Python int, beside the mean."""
    return np.mean(x), len(x)


def test_python_int_output_under_jit():
    assert_same(npfunc.jit(mean_and_count)(_XS)[1], 15)


def test_python_int_output_under_jvp_and_vjp():
    out, tan = npfunc.jvp(mean_and_count, (_XS,), (np.ones_like(_XS),))
    assert_same(out[1], 15)
    out, pull = npfunc.vjp(mean_and_count, _XS)
    assert_same(out[1], 15)


# ---- a SciPy distribution without a twin -----------------------------------------------------


def wishart_logpdf(W, df, Sigma):
    """The Wishart log-density by its formula (slogdet, solve, multigammaln)."""
    p = W.shape[0]
    _, ld_w = np.linalg.slogdet(W)
    _, ld_s = np.linalg.slogdet(Sigma)
    return (0.5 * (df - p - 1) * ld_w - 0.5 * np.trace(np.linalg.solve(Sigma, W)) - 0.5 * df * p * np.log(2.0)
            - 0.5 * df * ld_s - scipy.special.multigammaln(0.5 * df, p))


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_wishart_scale_refusal_names_the_formula_fix(transform):
    """scipy.stats.wishart.logpdf with a traced scale has no twin: the message said only
    'stop_gradient' (grad) or 'np.where / static_argnums' (jit, vmap); it now names the
    SciPy function and the fix (the formula), which works."""
    W = 1.5 * np.eye(2)
    f = lambda t: scipy.stats.wishart.logpdf(W, 4.0, np.diag(np.exp(t)))  # noqa: E731
    t0 = np.array([0.3, -0.2])
    arg = np.stack([t0, -t0]) if transform == "vmap" else t0
    with pytest.raises(npfunc.errors.NpfuncError,
                       match=rf"{transform}\(f\).*wishart.*no npfunc twin.*write the formula"):
        getattr(npfunc, transform)(f)(arg)
    fixed = lambda t: wishart_logpdf(W, 4.0, np.diag(np.exp(t)))  # noqa: E731
    assert_same(fixed(t0), f(t0))
    assert_deriv(npfunc.grad(fixed)(t0), fd(f, t0))
    assert_same(npfunc.jit(fixed)(t0), f(t0))
    assert_same(npfunc.vmap(fixed)(np.stack([t0, -t0])), np.stack([f(t0), f(-t0)]))


def test_ess_early_break():
    """ESS with a data-dependent break: grad follows the plain path; jit and vmap refuse
    naming np.where. (Its Python-float value when the loop breaks at once becomes a 0-d
    array under jvp: the xfail above.)"""
    x = np.cumsum(_XS) * 0.3 + _XS  # correlated, so the loop runs
    assert_deriv(npfunc.grad(ess)(x), fd(ess, x))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(ess)(x)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(ess)(np.stack([x, x]))


# ---- permutation tests and running means: messages that name the transform and the fix ------


def permutation_test(x, y, seed=0, B=20):
    """Mean absolute difference of group means under random relabelling."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([x, y])
    n = len(x)
    stats = [(p[:n].mean() - p[n:].mean()) for p in (rng.permutation(pooled) for _ in range(B))]
    return np.mean(np.abs(np.array(stats)))


def permutation_test_indices(x, y, seed=0, B=20):
    """The same with permuted indices of the traced pooled sample, as the refusal advises."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([x, y])
    n = len(x)
    stats = [(p[:n].mean() - p[n:].mean()) for p in (pooled[rng.permutation(len(pooled))] for _ in range(B))]
    return np.mean(np.abs(np.array(stats)))


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_generator_permutation_of_traced_data(transform):
    """Generator.permutation(traced) runs NumPy's np.may_share_memory on it: the refusal
    named only that function, which the user never called; it now names the Generator
    method and the fix (permute indices), which gives NumPy's values and derivative."""
    y = _XS[:7]
    f = lambda x: permutation_test(x, y)  # noqa: E731
    x = _XS[7:]
    arg = np.stack([x, -x]) if transform == "vmap" else x
    with pytest.raises(npfunc.errors.UnsupportedFunctionError,
                       match=rf"{transform}\(f\).*Generator's permutation.*rng\.permutation\(len\(x\)\)"):
        getattr(npfunc, transform)(f)(arg)
    fixed = lambda x: permutation_test_indices(x, y)  # noqa: E731
    assert_same(fixed(x), f(x))
    assert_deriv(npfunc.grad(fixed)(x), fd(f, x))
    assert_same(npfunc.jit(fixed)(x), f(x))
    assert_same(npfunc.vmap(fixed)(np.stack([x, -x])), np.stack([f(x), f(-x)]))


def running_means_out(x):
    """Running means through np.cumsum(x, out=acc), as buffer-minded code writes them."""
    acc = np.zeros_like(x)
    np.cumsum(x, out=acc)
    acc /= np.arange(1, len(x) + 1)
    return acc


def test_cumsum_out_refusal_names_the_transform():
    """np.cumsum(..., out=) refuses on traced values; the message now starts with the
    transform like every other refusal, and its fix (assign the result) works."""
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"^jit\(f\): np\.cumsum: argument 'out'"):
        npfunc.jit(running_means_out)(_XS)

    def fixed(x):
        return np.cumsum(x) / np.arange(1, len(x) + 1)

    assert_same(npfunc.jit(fixed)(_XS), running_means_out(_XS.copy()))
    assert_deriv(npfunc.jacrev(fixed)(_XS), fd(running_means_out, _XS))


def posterior_predictive_mean(theta, seed=0):
    """Mean of posterior-predictive draws from a NumPy Generator with traced parameters."""
    rng = np.random.default_rng(seed)
    return rng.normal(theta[0], np.exp(theta[1]), size=50).mean()


def posterior_predictive_mean_reparam(theta, seed=0):
    """The same draws as loc + scale * standard normals, as the refusal advises."""
    rng = np.random.default_rng(seed)
    return (theta[0] + np.exp(theta[1]) * rng.standard_normal(50)).mean()


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_generator_draw_with_traced_parameters_names_the_fix(transform):
    """rng.normal(mu, np.exp(s)): the Generator hint looked at the last attribute loaded
    before the call (np.exp, inside the arguments) and was not given; it now finds the
    method being called, and its fix (reparameterise) gives NumPy's draws."""
    t0 = np.array([0.3, -0.5])
    arg = np.stack([t0, -t0]) if transform == "vmap" else t0
    with pytest.raises(npfunc.errors.NpfuncError,
                       match=rf"{transform}\(f\).*Generator's normal.*loc \+ scale \* rng\.standard_normal"):
        getattr(npfunc, transform)(posterior_predictive_mean)(arg)
    f, fixed = posterior_predictive_mean, posterior_predictive_mean_reparam
    assert_same(fixed(t0), f(t0))
    assert_deriv(npfunc.grad(fixed)(t0), fd(f, t0))
    assert_same(npfunc.jit(fixed)(t0), f(t0))
