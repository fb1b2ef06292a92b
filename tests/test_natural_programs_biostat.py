"""Natural programs from biostatistics, survival analysis and psychometrics, written first as
plain NumPy/SciPy and then run under npfunc's transforms (jit with a recording call and a
replay, vmap against a Python loop, grad/jacrev/jacfwd/hessian/jvp/vjp against five-point
differences, and compositions called repeatedly so that the cached eager pull-backs are met).

Programs:
  * Cox partial likelihood: Breslow ties by a loop over distinct event times, Efron ties, the
    reverse-cumsum spelling over sorted times, np.logaddexp.accumulate, case weights (bootstrap
    weights by vmap), Fisher information by hessian and Wald/score results as a dict, the
    Breslow baseline hazard and a predicted survival curve;
  * Kaplan-Meier into a preallocated buffer (weights differentiated), Greenwood variance,
    restricted mean survival time, Nelson-Aalen by np.cumsum, Aalen-Johansen cumulative
    incidence for competing risks, the log-rank statistic, an Epanechnikov-smoothed hazard;
  * parametric survival: Weibull / log-normal (scipy.stats.norm.logpdf/logsf) / log-logistic
    (scipy.special.log_expit) accelerated failure time likelihoods with right censoring, an
    interval-censored Weibull with R = inf, a piecewise-exponential model by np.clip and
    np.searchsorted, a Gompertz cumulative hazard by scipy.integrate.quad, a Tobit model;
  * GLMs: logistic regression by IRLS with a convergence break, Poisson with an offset and
    sandwich standard errors from vmap(grad) scores, negative binomial (gammaln and
    scipy.stats.nbinom.logpmf), probit (norm.logcdf), Firth-penalised logistic (slogdet),
    zero-inflated Poisson (np.where), beta-binomial (betaln), Pearson dispersion;
  * item response theory: Rasch joint likelihood (float64 and float32), 2PL marginal likelihood
    by Gauss-Hermite quadrature and logsumexp, 3PL in float32, the graded response model
    (np.concatenate of cumulative probabilities, fancy-indexed categories), the partial credit
    model (cumsum + take_along_axis), test information by grad(grad), EAP abilities,
    Cronbach's alpha, a one-factor model likelihood;
  * meta-analysis: DerSimonian-Laird with Python max and with np.maximum (a dict of results),
    REML tau^2 by Fisher scoring, Paule-Mandel by brentq, log odds ratios from 2x2 tables
    with an in-place continuity correction;
  * mixed models: a random-intercept logistic model by the Laplace approximation (inner Newton
    loops), a linear mixed model by cho_factor/cho_solve;
  * dose-response: the four-parameter Hill curve (Gauss-Newton with the jacfwd Jacobian),
    probit dose-response with the ED50 and its delta-method standard error, an Emax ED90 by
    brentq;
  * ROC: a smooth AUC surrogate by np.subtract.outer, the Mann-Whitney AUC by rankdata, the
    binormal AUC;
  * side effects and warnings: covariates standardised in place (the caller's array under jit
    and grad), the Greenwood variance dividing by zero (the same warnings under jit).

Findings fixed here (each with its regression test): jacfwd's compiled pull-back differed from
the eager jacfwd in the last bits (matmul's batching rule folded a batch into one GEMM only for
eager arrays, never for staged values: the 2PL marginal likelihood); np.subtract.outer (any
binary ufunc's outer) was refused on traced values; a traced value nested in a list inside
np.concatenate ([0.0, ..., [tau]]) got the generic "a NumPy function or method" message (now
np.concatenate builds such lists while a transform runs); a plain array indexed by a traced boolean mask
under jit/vmap advised np.asarray(table, like=i), which only leads to the next refusal (now the
fixed-shape np.where).  Refusals with working fixes (tested): risk sets and KM masks of traced
data under jit (close over the data), `if event[i]` / `if n > 1` / IRLS's convergence break
under jit and vmap, an in-place continuity correction by a traced mask under jit/vmap
(np.where).  No longer refused: a traced value written into a plain preallocated buffer made
inside the function (the Kaplan-Meier np.empty; it named like=), checked against NumPy and the
like= fix.  Documented conventions met:
0 * inf = NaN derivatives at R = inf (interval censoring) and at a zero-dose control (Hill), with
the double-where spellings exact; brentq's root comes back as np.float64 under jit/vjp.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special as sps
import scipy.stats as st

import npfunc
from natural_checks import assert_deriv, assert_same, fd


# ---- helpers ---------------------------------------------------------------------------------


def _tree_identical(got, want):
    """Bit-for-bit the same (types, dtypes, shapes, values) through dicts/tuples/lists."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for k in want:
            _tree_identical(got[k], want[k])
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _tree_identical(g, w)
        return
    assert type(got) is type(want), (type(got), type(want))
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_array_equal(g, w)


def _tree_same(got, want, rtol=1e-12, atol=0.0):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for k in want:
            _tree_same(got[k], want[k], rtol, atol)
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _tree_same(g, w, rtol, atol)
        return
    assert_same(got, want, rtol=rtol, atol=atol)


def repeated(fn, argsets, rounds=5, rtol=None):
    """Call fn on every argument set ``rounds`` times (interleaved); each later call must be
    bit-for-bit the first one for that argument set (eager transforms: the cached pull-backs
    are the composition's, bit for bit), or within ``rtol`` of it (jit: the recording call
    runs eagerly, replays run optimised code whose sums may round differently in the last
    bits, docs/performance.md).  Returns the first results."""
    first = [fn(*a) for a in argsets]
    for _ in range(rounds - 1):
        for a, r in zip(argsets, first):
            if rtol is None:
                _tree_identical(fn(*a), r)
            else:
                _tree_same(fn(*a), r, rtol, 1e-300)
    return first


def check_jit(f, *argsets, rtol=1e-12, atol=0.0, **jit_kwargs):
    """One jit object: the first argument set records, the others replay (twice each); every
    result is the plain program's (type, dtype, shape, value to rounding)."""
    jf = npfunc.jit(f, **jit_kwargs)
    for _ in range(2):
        for a in argsets:
            _tree_same(jf(*a), f(*a), rtol, atol)


def check_jit_root(f, *argsets, rtol=1e-12):
    """check_jit for a program returning brentq's root: SciPy gives a Python float, a traced
    root comes back as np.float64 (a float subclass; a known, recorded difference: see
    test_natural_programs_finance_timeseries.py::test_finding_brentq_python_float_type)."""
    jf = npfunc.jit(f)
    for _ in range(2):
        for a in argsets:
            got, want = jf(*a), f(*a)
            assert type(want) is float and type(got) is np.float64
            np.testing.assert_allclose(got, want, rtol=rtol)


def check_vmap(f, batched, in_dims, rtol=1e-12, atol=0.0, **kw):
    """vmap against a Python loop + np.stack (the mapped axis moved per in_dims)."""
    n = next(np.shape(b)[d] for b, d in zip(batched, in_dims) if d is not None)
    rows = []
    for i in range(n):
        args = [b if d is None else np.take(b, i, axis=d) for b, d in zip(batched, in_dims)]
        rows.append(f(*args))
    if isinstance(rows[0], dict):
        want = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    elif isinstance(rows[0], tuple):
        want = tuple(np.stack([r[i] for r in rows]) for i in range(len(rows[0])))
    else:
        want = np.stack(rows)
    vf = npfunc.vmap(f, in_dims=tuple(in_dims), **kw)
    (got,) = repeated(vf, [tuple(batched)], rounds=2)
    _tree_same(got, want, rtol, atol)
    return got


def check_derivs(f, x, x_new, *rest, hess=True, rtol=1e-6, atol=1e-8, hrtol=1e-5, hatol=1e-7,
                 rounds=5, jit_grad=True):
    """grad, jacrev, jacfwd, vjp, jit(grad) of f in its first argument against five-point
    differences of the plain program, at x and x_new; with ``hess`` also hessian, jacfwd(jacrev)
    and the jvp(grad) Hessian-vector product against differences of the gradient.  Each
    transformed function is called ``rounds`` times on both points."""
    argsets = [(x,) + rest, (x_new,) + rest]
    plain = lambda v: f(v, *rest)
    fds = [fd(plain, v) for v in (x, x_new)]
    for T in (npfunc.grad, npfunc.jacrev, npfunc.jacfwd):
        for got, want in zip(repeated(T(f), argsets, rounds), fds):
            assert_deriv(got, want, rtol, atol)
    gf = npfunc.grad(f)
    jg = npfunc.jit(lambda v: gf(v, *rest))      # the data closed over (boolean masks of it)
    for _ in range(rounds if jit_grad else 0):
        for a in argsets:
            assert_same(jg(a[0]), gf(*a), rtol=1e-11, atol=1e-14)
    for v, want in zip((x, x_new), fds):
        out, pull = npfunc.vjp(plain, v)
        value = plain(v)
        if type(value) is float:       # brentq's root: np.float64 (see check_jit_root)
            assert type(out) is np.float64 and out == value
        else:
            assert_same(out, value)
        assert_deriv(pull(np.ones_like(out))[0], want, rtol, atol)
    if not hess:
        return
    Hfd = [fd(lambda u: gf(u, *rest), v) for v in (x, x_new)]
    for T in (npfunc.hessian, lambda g: npfunc.jacfwd(npfunc.jacrev(g))):
        for got, want in zip(repeated(T(f), argsets, rounds), Hfd):
            assert_deriv(got, want, hrtol, hatol)
    direction = np.linspace(0.5, -0.7, np.size(x)).reshape(np.shape(x))
    inner = lambda u: gf(u, *rest)
    hvp = lambda v: npfunc.jvp(inner, (v,), (direction,))[1]
    for got, H in zip(repeated(hvp, [(x,), (x_new,)], rounds), Hfd):
        assert_deriv(got, H.reshape(np.size(x), np.size(x)) @ direction.ravel(), hrtol, hatol)


def check_scalar_second(f, t, t_new, *rest, rtol=1e-6, atol=1e-8, rounds=5):
    """grad and grad(grad) of f in a 0-d first argument, against differences."""
    g1 = npfunc.grad(f)
    g2 = npfunc.grad(g1)
    d1 = lambda s: fd(lambda u: f(u[0], *rest), np.array([s]))[0]
    d2 = lambda s: fd(lambda u: g1(u[0], *rest), np.array([s]))[0]
    argsets = [(t,) + rest, (t_new,) + rest]
    for got, s in zip(repeated(g1, argsets, rounds), (t, t_new)):
        assert_deriv(got, d1(s), rtol, atol)
    for got, s in zip(repeated(g2, argsets, rounds), (t, t_new)):
        assert_deriv(got, d2(s), 1e-5, 1e-7)


# ---- data ------------------------------------------------------------------------------------


def survival_data(n=12, p=2, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    t = rng.exponential(1.0, n) * np.exp(-0.5 * X[:, 0])
    if ties:
        t = np.round(t, 1) + 0.1
    else:
        t = t + 0.01
    c = rng.exponential(2.0, n) + 0.05
    if ties:
        c = np.round(c, 1) + 0.1
    event = (t <= c).astype(int)
    time = np.minimum(t, c)
    return X, time, event


# ---- 1. Cox partial likelihood -----------------------------------------------------------------


def cox_breslow(beta, X, time, event):
    """Negative log partial likelihood with Breslow's approximation for tied event times."""
    eta = X @ beta
    loglik = 0.0
    for t in np.unique(time[event == 1]):
        dead = (time == t) & (event == 1)
        at_risk = time >= t
        d = dead.sum()
        loglik += eta[dead].sum() - d * np.log(np.sum(np.exp(eta[at_risk])))
    return -loglik


def cox_efron(beta, X, time, event):
    """Efron's approximation: the tied deaths leave the risk set a fraction at a time."""
    eta = X @ beta
    risk = np.exp(eta)
    ll = 0.0
    for t in np.unique(time[event == 1]):
        dead = (time == t) & (event == 1)
        d = int(dead.sum())
        r_all = risk[time >= t].sum()
        r_dead = risk[dead].sum()
        ll += eta[dead].sum()
        for l in range(d):
            ll -= np.log(r_all - l / d * r_dead)
    return -ll


def cox_sorted(beta, X, time, event):
    """No ties: sort by decreasing time, the risk-set sums are a running cumsum."""
    order = np.argsort(-time, kind="stable")
    eta = (X @ beta)[order]
    log_risk = np.log(np.cumsum(np.exp(eta)))
    return -np.sum((eta - log_risk)[event[order] == 1])


def cox_sorted_accumulate(beta, X, time, event):
    """The numerically stable spelling: np.logaddexp.accumulate over the sorted predictors."""
    order = np.argsort(-time, kind="stable")
    eta = (X @ beta)[order]
    log_risk = np.logaddexp.accumulate(eta)
    return -np.sum((eta - log_risk)[event[order] == 1])


def test_cox_breslow_efron_values_and_derivatives():
    X, time, event = survival_data()
    assert len(np.unique(time[event == 1])) < event.sum()          # there are ties
    beta, beta2 = np.array([0.4, -0.2]), np.array([-0.1, 0.3])
    for f in (cox_breslow, cox_efron):
        assert isinstance(f(beta, X, time, event), np.float64)
        # the risk sets are boolean masks of the data: as jit arguments they are traced and
        # refused (the fix names np.where or closing over the data); closed over, they work
        with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"jit\(f\).*close over it"):
            npfunc.jit(f)(beta, X, time, event)
        check_jit(lambda b: f(b, X, time, event), (beta,), (beta2,))
        check_derivs(f, beta, beta2, X, time, event)
    # Efron and Breslow coincide without ties
    X, time, event = survival_data(ties=False, seed=3)
    np.testing.assert_allclose(cox_efron(beta, X, time, event), cox_breslow(beta, X, time, event))
    np.testing.assert_allclose(cox_sorted(beta, X, time, event), cox_breslow(beta, X, time, event))


def test_cox_sorted_cumsum_and_accumulate():
    X, time, event = survival_data(ties=False, seed=3)
    beta, beta2 = np.array([0.4, -0.2]), np.array([-0.1, 0.3])
    check_jit(lambda b: cox_sorted(b, X, time, event), (beta,), (beta2,))
    check_derivs(cox_sorted, beta, beta2, X, time, event)
    np.testing.assert_allclose(cox_sorted_accumulate(beta, X, time, event), cox_sorted(beta, X, time, event))
    check_jit(lambda b: cox_sorted_accumulate(b, X, time, event), (beta,), (beta2,))
    check_derivs(cox_sorted_accumulate, beta, beta2, X, time, event)


def cox_weighted(beta, X, time, event, w):
    """Case-weighted Breslow likelihood (bootstrap or inverse-probability weights)."""
    eta = X @ beta
    ll = 0.0
    for i in range(len(time)):
        if event[i]:
            at_risk = time >= time[i]
            ll = ll + w[i] * (eta[i] - np.log(np.sum(w[at_risk] * np.exp(eta[at_risk]))))
    return -ll


def test_cox_bootstrap_weights_by_vmap():
    X, time, event = survival_data(n=8)
    rng = np.random.default_rng(1)
    W = rng.multinomial(8, np.full(8, 1 / 8), size=4).astype(float) + 0.5
    beta = np.array([0.3, 0.1])
    check_vmap(cox_weighted, (beta, X, time, event, W), (None, None, None, None, 0))
    check_vmap(cox_weighted, (beta, X, time, event, W.T.copy()), (None, None, None, None, 1))
    # per-replicate gradients (the bootstrap score) by vmap(grad)
    vg = npfunc.vmap(npfunc.grad(cox_weighted), in_dims=(None, None, None, None, 0))
    (got,) = repeated(vg, [(beta, X, time, event, W)])
    want = np.stack([fd(lambda b: cox_weighted(b, X, time, event, w), beta) for w in W])
    assert_deriv(got, want)
    # under jit the event indicators steer Python (`if event[i]`): refused when they are an
    # argument, fine when closed over
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(vmap\(grad\(f\)\)\).*'event'.*np.where"):
        npfunc.jit(vg)(beta, X, time, event, W)
    jvg = npfunc.jit(lambda b, ww: vg(b, X, time, event, ww))
    (gotj,) = repeated(jvg, [(beta, W)], rtol=1e-12)
    assert_same(gotj, got, rtol=1e-12)
    # and the derivative in the weights themselves
    check_derivs(lambda w, b: cox_weighted(b, X, time, event, w), W[0], W[1], beta, hess=False)


def cox_fit_summary(X, time, event, n_iter=8):
    """Newton-Raphson on the Breslow likelihood with gradient and Hessian from npfunc, then
    Wald results as a dict."""
    beta = np.zeros(X.shape[1])
    g = npfunc.grad(cox_breslow)
    H = npfunc.hessian(cox_breslow)
    for _ in range(n_iter):
        beta = beta - np.linalg.solve(H(beta, X, time, event), g(beta, X, time, event))
    info = H(beta, X, time, event)
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    return {"coef": beta, "se": se, "hr": np.exp(beta), "z": beta / se,
            "p": 2 * st.norm.sf(np.abs(beta / se))}


def cox_information_plain(beta, X, time, event):
    """The textbook Breslow information matrix, written out."""
    eta = X @ beta
    r = np.exp(eta)
    info = np.zeros((X.shape[1], X.shape[1]))
    for t in np.unique(time[event == 1]):
        d = np.sum((time == t) & (event == 1))
        R = time >= t
        s0 = r[R].sum()
        s1 = (r[R, None] * X[R]).sum(0)
        s2 = (r[R, None, None] * X[R, :, None] * X[R, None, :]).sum(0)
        info += d * (s2 / s0 - np.outer(s1, s1) / s0**2)
    return info


def test_cox_newton_fit_fisher_information_by_hessian():
    X, time, event = survival_data(n=15, seed=2)
    res = cox_fit_summary(X, time, event)
    g = npfunc.grad(cox_breslow)(res["coef"], X, time, event)
    np.testing.assert_allclose(g, 0.0, atol=1e-10)
    H = repeated(npfunc.hessian(cox_breslow), [(res["coef"], X, time, event)])[0]
    np.testing.assert_allclose(H, cox_information_plain(res["coef"], X, time, event), rtol=1e-12)
    assert set(res) == {"coef", "se", "hr", "z", "p"}
    assert all(v.dtype == np.float64 and v.shape == (2,) for v in res.values())


def breslow_baseline_survival(beta, X, time, event, x_new, t_grid):
    """Predicted survival S(t | x) = exp(-H0(t) exp(x beta)), H0 by Breslow's estimator."""
    r = np.exp(X @ beta)
    ts = np.unique(time[event == 1])
    jumps = np.array([np.sum((time == t) & (event == 1)) / np.sum(r[time >= t]) for t in ts])
    H0 = np.cumsum(jumps)
    idx = np.searchsorted(ts, t_grid, side="right") - 1
    H = np.where(idx >= 0, H0[np.maximum(idx, 0)], 0.0)
    return np.exp(-H * np.exp(x_new @ beta))


def test_cox_predicted_survival_curve():
    X, time, event = survival_data()
    beta = np.array([0.4, -0.2])
    x0 = np.array([0.5, 1.0])
    grid = np.array([0.0, 0.3, 0.7, 1.2, 3.0])
    check_jit(lambda b, x, g: breslow_baseline_survival(b, X, time, event, x, g), (beta, x0, grid),
              (beta + 0.2, -x0, grid * 2))
    f = lambda b: breslow_baseline_survival(b, X, time, event, x0, grid)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        (J,) = repeated(T(f), [(beta,)])
        assert_deriv(J, fd(f, beta))
    xs = np.array([[0.5, 1.0], [-1.0, 0.2], [0.0, 0.0]])
    check_vmap(breslow_baseline_survival, (beta, X, time, event, xs, grid), (None,) * 4 + (0, None))


# ---- 2. nonparametric estimators ---------------------------------------------------------------


def kaplan_meier(time, event, weights=None, like=False):
    """Product-limit estimate at the distinct event times, into a preallocated buffer (a
    plain one, or with ``like`` one made like the weights, as npfunc's message advised before
    plain buffers made inside the function took traced writes)."""
    if weights is None:
        weights = np.ones_like(time)
    ts = np.unique(time[event == 1])
    surv = np.empty(len(ts), like=weights) if like else np.empty(len(ts))
    s = 1.0
    for k, t in enumerate(ts):
        n_risk = weights[time >= t].sum()
        d = weights[(time == t) & (event == 1)].sum()
        s *= 1.0 - d / n_risk
        surv[k] = s
    return ts, surv


def greenwood_se(time, event, weights):
    ts, S = kaplan_meier(time, event, weights, like=True)
    acc = 0.0
    out = np.zeros_like(S)
    for k, t in enumerate(ts):
        n = weights[time >= t].sum()
        d = weights[(time == t) & (event == 1)].sum()
        acc += d / (n * (n - d))
        out[k] = S[k] * np.sqrt(acc)
    return out


def rmst(time, event, weights, tau, fixed=False):
    """Restricted mean survival time: the area under the KM step function up to tau."""
    ts, S = kaplan_meier(time, event, weights, like=True)
    keep = ts < tau
    if fixed:   # npfunc's advice for a traced tau: the piece as an array
        grid = np.concatenate([[0.0], ts[keep], np.atleast_1d(tau)])
    else:
        grid = np.concatenate([[0.0], ts[keep], [tau]])
    heights = np.concatenate([[1.0], S[keep]])
    return np.sum(heights * np.diff(grid))


def test_kaplan_meier_plain_weights_buffer_matches_like_fix_greenwood_rmst():
    X, time, event = survival_data(n=10, seed=4)
    w = np.linspace(0.8, 1.3, 10)
    ts, S = kaplan_meier(time, event, w)
    assert S.dtype == np.float64
    assert_same(kaplan_meier(time, event, w, like=True)[1], S, rtol=0)
    # a traced survival probability written into the plain np.empty buffer (once refused,
    # naming np.zeros(shape, like=x)): NumPy's values under jit and vmap, the differences'
    # derivatives, and the like= fix's to rounding
    km_plain = lambda ww: kaplan_meier(time, event, ww)[1]
    check_jit(lambda ww: kaplan_meier(time, event, ww), (w,), (w[::-1].copy(),))
    check_jit(lambda ww: kaplan_meier(time, event, ww, like=True), (w,), (w[::-1].copy(),))
    km_s = lambda ww: kaplan_meier(time, event, ww, like=True)[1]
    for T in (npfunc.jacrev, npfunc.jacfwd):
        (J,) = repeated(T(km_s), [(w,)])
        assert_deriv(J, fd(km_s, w))
        (Jp,) = repeated(T(km_plain), [(w,)])
        assert_deriv(Jp, fd(km_plain, w))
        assert_deriv(Jp, J, rtol=1e-14, atol=0)
    gw = lambda ww: greenwood_se(time, event, ww)
    check_jit(gw, (w,), (w * 1.1,))
    assert_deriv(npfunc.jacrev(gw)(w), fd(gw, w))
    check_derivs(lambda ww, tau: rmst(time, event, ww, tau), w, w[::-1].copy(), 1.1, hess=False)
    # a traced tau nested in a list inside np.concatenate: built while a transform runs
    # (core/array_hooks.py; it was refused), the same values and derivative as the array spelling
    for T in (npfunc.grad, npfunc.jacfwd):
        assert_same(T(lambda tau: rmst(time, event, w, tau))(np.float64(1.1)),
                    T(lambda tau: rmst(time, event, w, tau, fixed=True))(np.float64(1.1)), rtol=0)
    # d RMST / d tau is the KM survival at tau
    rm = lambda tau: rmst(time, event, w, tau, fixed=True)
    assert_same(rm(1.1), rmst(time, event, w, 1.1), rtol=0)
    check_scalar_second(rm, 1.1, 0.9)
    np.testing.assert_allclose(npfunc.grad(rm)(1.1), S[ts < 1.1][-1], rtol=1e-14)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*traced boolean mask.*np.where"):
        npfunc.jit(rm)(np.float64(1.1))     # (ts < tau selects a tau-dependent number of steps)
    W = np.stack([w, w**2, np.ones(10)])
    check_vmap(km_s, (W,), (0,))
    check_vmap(km_plain, (W,), (0,))


def nelson_aalen(time, event, w):
    """Cumulative hazard at the sorted times (no ties): at-risk weights by a reversed cumsum."""
    order = np.argsort(time)
    e, w = event[order], w[order]
    at_risk = np.cumsum(w[::-1])[::-1]
    return np.cumsum(np.where(e == 1, w / at_risk, 0.0))


def test_nelson_aalen_cumsum_jacobians_and_vmap():
    X, time, event = survival_data(n=9, seed=5, ties=False)
    w = np.linspace(0.5, 1.5, 9)
    check_jit(nelson_aalen, (time, event, w), (time, event, w**2))
    f = lambda ww: nelson_aalen(time, event, ww)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        got = repeated(T(f), [(w,), (w**2,)])
        assert_deriv(got[0], fd(f, w))
        assert_deriv(got[1], fd(f, w**2))
    W = np.stack([w, w[::-1], np.ones(9)], axis=1)
    check_vmap(nelson_aalen, (time, event, W), (None, None, 1))
    assert_same(npfunc.jvp(f, (w,), (np.ones(9),))[1], fd(f, w) @ np.ones(9), rtol=1e-7)


def cumulative_incidence(time, cause, w, which=1):
    """Aalen-Johansen cumulative incidence of one cause under competing risks."""
    ts = np.unique(time[cause > 0])
    cif = np.zeros_like(w, shape=len(ts))
    surv = 1.0
    acc = 0.0
    for k, t in enumerate(ts):
        n = w[time >= t].sum()
        d_all = w[(time == t) & (cause > 0)].sum()
        d_k = w[(time == t) & (cause == which)].sum()
        acc = acc + surv * d_k / n
        cif[k] = acc
        surv = surv * (1 - d_all / n)
    return cif


def test_competing_risks_cumulative_incidence():
    rng = np.random.default_rng(6)
    time = np.round(rng.exponential(1.0, 12), 1) + 0.1
    cause = rng.integers(0, 3, 12)
    w = np.linspace(0.7, 1.2, 12)
    check_jit(lambda ww: cumulative_incidence(time, cause, ww), (w,), (w[::-1].copy(),))
    f = lambda ww: cumulative_incidence(time, cause, ww)
    assert_deriv(repeated(npfunc.jacrev(f), [(w,)])[0], fd(f, w))
    assert_deriv(repeated(npfunc.jacfwd(f), [(w,)])[0], fd(f, w))
    check_vmap(cumulative_incidence, (time, cause, np.stack([w, w**2])), (None, None, 0))


def logrank_statistic(time, group, event, w):
    """Weighted log-rank chi-square, a loop over the distinct event times."""
    O_minus_E = 0.0
    V = 0.0
    for t in np.unique(time[event == 1]):
        R = time >= t
        n = w[R].sum()
        n1 = w[R & (group == 1)].sum()
        D = (time == t) & (event == 1)
        d = w[D].sum()
        d1 = w[D & (group == 1)].sum()
        O_minus_E += d1 - d * n1 / n
        if n > 1:
            V += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    return O_minus_E**2 / V


def test_logrank_statistic_weights():
    X, time, event = survival_data(n=12, seed=7)
    group = (X[:, 1] > 0).astype(int)
    w = np.linspace(0.9, 1.1, 12)
    f = lambda ww: logrank_statistic(time, group, event, ww)
    # `if n > 1` on a weighted count: jit refuses with the np.where fix; grad runs it eagerly
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\): bool\(x\).*'ww'.*np.where"):
        npfunc.jit(f)(w)
    check_derivs(lambda ww: f(ww), w, w[::-1].copy(), hess=False, jit_grad=False)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\): bool\(x\).*np.where"):
        npfunc.vmap(f, in_dims=1)(np.stack([w, w**2], axis=1))


def smoothed_hazard(t_grid, time, event, b):
    """Kernel (Epanechnikov) smoothed Nelson-Aalen increments."""
    order = np.argsort(time)
    ts, e = time[order], event[order]
    n_at_risk = np.arange(len(ts), 0, -1)
    dH = e / n_at_risk
    u = (t_grid[:, None] - ts[None, :]) / b
    K = np.where(np.abs(u) < 1, 0.75 * (1 - u**2), 0.0)
    return K @ dH / b


def test_epanechnikov_smoothed_hazard_bandwidth_derivative():
    X, time, event = survival_data(n=14, seed=8, ties=False)
    grid = np.linspace(0.2, 1.5, 5)
    check_jit(smoothed_hazard, (grid, time, event, 0.6), (grid + 0.1, time, event, 0.7))
    f = lambda b: smoothed_hazard(grid, time, event, b)
    Jb = repeated(npfunc.jacfwd(f), [(0.6,), (0.7,)])
    assert_deriv(Jb[0], fd(lambda b: f(b[0]), np.array([0.6]))[:, 0])
    assert_deriv(Jb[1], fd(lambda b: f(b[0]), np.array([0.7]))[:, 0])
    check_scalar_second(lambda b: smoothed_hazard(grid, time, event, b).sum(), 0.6, 0.7)
    check_vmap(smoothed_hazard, (grid, time, event, np.array([0.4, 0.6, 0.9])), (None, None, None, 0))


# ---- 3. parametric survival ------------------------------------------------------------------


def weibull_aft_negloglik(params, X, t, delta):
    """Weibull AFT: log T = X beta + sigma W, W standard extreme value; right censoring."""
    beta, log_sigma = params[:-1], params[-1]
    sigma = np.exp(log_sigma)
    z = (np.log(t) - X @ beta) / sigma
    ll = delta * (z - np.log(sigma) - np.log(t)) - np.exp(z)
    return -np.sum(ll)


def lognormal_aft_negloglik(params, X, t, delta):
    beta, sigma = params[:-1], np.exp(params[-1])
    z = (np.log(t) - X @ beta) / sigma
    ll = np.where(delta == 1, st.norm.logpdf(z) - np.log(sigma * t), st.norm.logsf(z))
    return -ll.sum()


def loglogistic_aft_negloglik(params, X, t, delta):
    beta, sigma = params[:-1], np.exp(params[-1])
    z = (np.log(t) - X @ beta) / sigma
    log_S = sps.log_expit(-z)
    log_f = z - 2 * np.log1p(np.exp(z)) - np.log(sigma * t)
    return -np.sum(delta * log_f + (1 - delta) * log_S)


def test_aft_likelihoods_weibull_lognormal_loglogistic():
    X, time, event = survival_data(n=10, seed=9)
    X1 = np.column_stack([np.ones(10), X[:, 0]])
    p, p2 = np.array([0.1, -0.3, -0.2]), np.array([-0.2, 0.4, 0.1])
    for f in (weibull_aft_negloglik, lognormal_aft_negloglik, loglogistic_aft_negloglik):
        assert isinstance(f(p, X1, time, event), np.float64)
        check_jit(f, (p, X1, time, event), (p2, X1, time, event))
        check_derivs(f, p, p2, X1, time, event)
    # the Weibull AFT with an exponential fit (sigma = 1) is the Poisson GLM likelihood
    # up to the data term: the per-subject scores by vmap(grad) summed give the gradient
    per = lambda q, x, tt, d: weibull_aft_negloglik(q, x[None], tt[None], d[None])
    S = repeated(npfunc.vmap(npfunc.grad(per), in_dims=(None, 0, 0, 0)), [(p, X1, time, event)])[0]
    np.testing.assert_allclose(S.sum(0), npfunc.grad(weibull_aft_negloglik)(p, X1, time, event), rtol=1e-12)
    Sj = repeated(npfunc.jit(npfunc.vmap(npfunc.grad(per), in_dims=(None, 0, 0, 0))), [(p, X1, time, event)],
                  rtol=1e-12)[0]
    assert_same(Sj, S, rtol=1e-12)


def weibull_interval_loglik(log_params, L, R):
    """Interval-censored Weibull: log(S(L) - S(R)); R = inf for right-censored subjects."""
    k, lam = np.exp(log_params)
    SL = np.exp(-(L / lam) ** k)
    SR = np.exp(-(R / lam) ** k)
    return np.sum(np.log(SL - SR))


def test_interval_censored_weibull_with_infinite_right_ends():
    L = np.array([0.2, 0.5, 1.0, 0.1, 2.0, 0.7])
    R = np.array([0.6, 0.9, np.inf, 0.4, np.inf, 1.5])
    q, q2 = np.array([0.2, 0.1]), np.array([-0.1, 0.3])
    check_jit(weibull_interval_loglik, (q, L, R), (q2, L, R))
    # S(inf) = exp(-inf) = 0 for every parameter, but the derivative of (R/lam)**k at R = inf
    # is infinite and meets the zero cotangent: 0 * inf = NaN, the documented convention
    # (docs/conventions.md, "NaN in the branch where does not take"; JAX does the same)
    with np.errstate(invalid="ignore"):
        assert np.isnan(npfunc.grad(weibull_interval_loglik)(q, L, R)).all()
    # the documented fix, a double where keeping inf out of the power, is exact
    check_derivs(weibull_interval_loglik_safe, q, q2, L, R)
    assert_same(weibull_interval_loglik_safe(q, L, R), weibull_interval_loglik(q, L, R), rtol=0)


def weibull_interval_loglik_safe(log_params, L, R):
    k, lam = np.exp(log_params)
    finite = np.isfinite(R)
    SL = np.exp(-(L / lam) ** k)
    SR = np.where(finite, np.exp(-(np.where(finite, R, 1.0) / lam) ** k), 0.0)
    return np.sum(np.log(SL - SR))


def piecewise_exponential_loglik(log_haz, t, delta, cuts):
    """Piecewise-constant hazard: exposure per interval by np.clip, the event interval by
    np.searchsorted."""
    lo, hi = cuts[:-1], cuts[1:]
    expo = np.clip(t[:, None] - lo[None, :], 0.0, hi - lo)
    j = np.searchsorted(cuts, t, side="right") - 1
    return np.sum(delta * log_haz[j]) - np.sum(expo @ np.exp(log_haz))


def test_piecewise_exponential():
    X, time, event = survival_data(n=12, seed=10)
    cuts = np.array([0.0, 0.5, 1.0, np.inf])
    lh, lh2 = np.array([-0.2, 0.1, 0.3]), np.array([0.0, -0.4, 0.2])
    check_jit(piecewise_exponential_loglik, (lh, time, event, cuts), (lh2, time, event, cuts))
    check_derivs(piecewise_exponential_loglik, lh, lh2, time, event, cuts)


def gompertz_loglik(params, t, delta):
    """Gompertz hazard a exp(b t); the cumulative hazard by numerical quadrature per subject."""
    a, b = np.exp(params[0]), params[1]
    ll = 0.0
    for ti, di in zip(t, delta):
        H, _ = scipy.integrate.quad(lambda s: a * np.exp(b * s), 0.0, ti)
        ll += di * (np.log(a) + b * ti) - H
    return ll


def test_gompertz_cumulative_hazard_by_quad():
    t = np.array([0.5, 1.2, 2.0])
    d = np.array([1, 0, 1])
    q, q2 = np.array([-0.5, 0.3]), np.array([-0.2, 0.1])
    np.testing.assert_allclose(gompertz_loglik(q, t, d),
                               np.sum(d * (q[0] + q[1] * t) - np.exp(q[0]) / q[1] * np.expm1(q[1] * t)))
    check_jit(gompertz_loglik, (q, t, d), (q2, t, d))
    check_derivs(gompertz_loglik, q, q2, t, d, hess=False, rounds=2)


def tobit_negloglik(params, X, y):
    """Tobit model left-censored at 0."""
    beta, sigma = params[:-1], np.exp(params[-1])
    mu = X @ beta
    cens = y <= 0
    ll = np.where(cens, st.norm.logcdf(-mu / sigma), st.norm.logpdf((y - mu) / sigma) - np.log(sigma))
    return -np.sum(ll)


def test_tobit():
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(10), rng.standard_normal(10)])
    y = np.maximum(X @ np.array([0.2, 1.0]) + rng.standard_normal(10) * 0.5, 0.0)
    assert (y == 0).any()
    p, p2 = np.array([0.1, 0.8, -0.5]), np.array([0.3, 1.2, -0.2])
    check_jit(tobit_negloglik, (p, X, y), (p2, X, y))
    check_derivs(tobit_negloglik, p, p2, X, y)


# ---- 4. GLMs ---------------------------------------------------------------------------------


def logistic_irls(X, y, max_iter=25, tol=1e-10):
    """Logistic regression by iteratively reweighted least squares, stopping at convergence."""
    n, p = X.shape
    beta = np.zeros(p)
    for it in range(max_iter):
        eta = X @ beta
        mu = 1 / (1 + np.exp(-eta))
        W = mu * (1 - mu)
        z = eta + (y - mu) / W
        beta_new = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
        if np.max(np.abs(beta_new - beta)) < tol:
            beta = beta_new
            break
        beta = beta_new
    return beta


def glm_data(n=14, seed=12):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal(n), rng.uniform(-1, 1, n)])
    return X, rng


def test_logistic_irls_fit_derivative_in_responses():
    X, rng = glm_data()
    y = (rng.uniform(size=14) < sps.expit(X @ np.array([0.2, 1.0, -0.5]))).astype(float)
    beta = logistic_irls(X, y)
    # the fitted coefficients as a function of (soft) responses: d beta / d y = (X'WX)^-1 X'
    ys = 0.8 * y + 0.1
    f = lambda yy: logistic_irls(X, yy)
    mu = sps.expit(X @ f(ys))
    J_implicit = np.linalg.solve(X.T @ ((mu * (1 - mu))[:, None] * X), X.T)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        (J,) = repeated(T(f), [(ys,)])
        assert_deriv(J, fd(f, ys))
        np.testing.assert_allclose(J, J_implicit, rtol=1e-8, atol=1e-12)
    assert beta.shape == (3,)


def test_logistic_irls_convergence_break_under_jit_and_vmap():
    X, rng = glm_data()
    Y = 0.8 * (rng.uniform(size=(3, 14)) < 0.5) + 0.1
    f = lambda yy: logistic_irls(X, yy)
    with pytest.raises(npfunc.errors.ConcretizationError) as e:
        npfunc.jit(f)(Y[0])
    assert "jit" in str(e.value)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\): bool\(x\).*np.where"):
        npfunc.vmap(f)(Y)


def poisson_obs_loglik(beta, x, y, off):
    eta = x @ beta + off
    return y * eta - np.exp(eta) - sps.gammaln(y + 1)


def poisson_negloglik(beta, X, y, off):
    eta = X @ beta + off
    return -np.sum(y * eta - np.exp(eta) - sps.gammaln(y + 1))


def sandwich_se(beta, X, y, off):
    """Robust (sandwich) standard errors: scores by vmap(grad), bread by hessian."""
    scores = npfunc.vmap(npfunc.grad(poisson_obs_loglik), in_dims=(None, 0, 0, 0))(beta, X, y, off)
    A = npfunc.hessian(poisson_negloglik)(beta, X, y, off)
    Ainv = np.linalg.inv(A)
    V = Ainv @ (scores.T @ scores) @ Ainv
    return np.sqrt(np.diag(V))


def sandwich_se_plain(beta, X, y, off):
    mu = np.exp(X @ beta + off)
    scores = (y - mu)[:, None] * X
    A = X.T @ (mu[:, None] * X)
    Ainv = np.linalg.inv(A)
    return np.sqrt(np.diag(Ainv @ (scores.T @ scores) @ Ainv))


def test_poisson_offset_sandwich_standard_errors():
    X, rng = glm_data()
    off = np.log(rng.uniform(0.5, 2.0, 14))
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.2]) + off)).astype(float)
    b, b2 = np.array([0.2, 0.4, -0.1]), np.array([0.4, 0.6, 0.0])
    check_jit(poisson_negloglik, (b, X, y, off), (b2, X, y, off))
    check_derivs(poisson_negloglik, b, b2, X, y, off)
    for bb in (b, b2, b, b2, b, b2):
        np.testing.assert_allclose(sandwich_se(bb, X, y, off), sandwich_se_plain(bb, X, y, off), rtol=1e-12)
    vg = npfunc.vmap(npfunc.grad(poisson_obs_loglik), in_dims=(None, 0, 0, 0))
    S = repeated(vg, [(b, X, y, off), (b2, X, y, off)])
    Sj = repeated(npfunc.jit(vg), [(b, X, y, off), (b2, X, y, off)], rtol=1e-12)
    for s, sj, bb in zip(S, Sj, (b, b2)):
        mu = np.exp(X @ bb + off)
        np.testing.assert_allclose(s, (y - mu)[:, None] * X, rtol=1e-13, atol=1e-14)
        assert_same(sj, s, rtol=1e-13, atol=1e-14)
    # the per-observation log-likelihood itself, batched over observations with in_dims=1
    check_vmap(poisson_obs_loglik, (b, X.T.copy(), y, off), (None, 1, 0, 0))


def nb2_negloglik(params, X, y):
    """Negative binomial (NB2) with log link, dispersion alpha = exp(params[-1])."""
    beta, log_alpha = params[:-1], params[-1]
    r = np.exp(-log_alpha)
    mu = np.exp(X @ beta)
    ll = (sps.gammaln(y + r) - sps.gammaln(r) - sps.gammaln(y + 1)
          + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu)))
    return -ll.sum()


def nb2_negloglik_stats(params, X, y):
    beta, log_alpha = params[:-1], params[-1]
    r = np.exp(-log_alpha)
    mu = np.exp(X @ beta)
    return -np.sum(st.nbinom.logpmf(y, r, r / (r + mu)))


def test_negative_binomial_gammaln_and_nbinom_logpmf():
    X, rng = glm_data(n=12)
    y = rng.negative_binomial(2, 0.4, 12).astype(float)
    p, p2 = np.array([0.5, 0.2, -0.1, -0.3]), np.array([0.8, -0.1, 0.2, 0.1])
    np.testing.assert_allclose(nb2_negloglik_stats(p, X, y), nb2_negloglik(p, X, y), rtol=1e-12)
    for f in (nb2_negloglik, nb2_negloglik_stats):
        check_jit(f, (p, X, y), (p2, X, y))
        check_derivs(f, p, p2, X, y)


def probit_negloglik(beta, X, y):
    return -np.sum(st.norm.logcdf((2 * y - 1) * (X @ beta)))


def firth_logistic_penalised(beta, X, y):
    """Firth's penalty: the log-likelihood plus half the log-determinant of the information."""
    eta = X @ beta
    ll = np.sum(y * eta - np.logaddexp(0.0, eta))
    mu = sps.expit(eta)
    sign, logdet = np.linalg.slogdet(X.T @ ((mu * (1 - mu))[:, None] * X))
    return ll + 0.5 * logdet


def test_probit_and_firth_logistic():
    X, rng = glm_data(n=10)
    y = (rng.uniform(size=10) < 0.5).astype(float)
    b, b2 = np.array([0.1, 0.5, -0.3]), np.array([-0.2, 0.1, 0.4])
    for f in (probit_negloglik, firth_logistic_penalised):
        check_jit(f, (b, X, y), (b2, X, y))
        check_derivs(f, b, b2, X, y)


def zip_negloglik(params, X, y):
    """Zero-inflated Poisson with a constant inflation logit."""
    beta, gamma = params[:-1], params[-1]
    lam = np.exp(X @ beta)
    pi = sps.expit(gamma)
    ll = np.where(y == 0, np.log(pi + (1 - pi) * np.exp(-lam)),
                  np.log1p(-pi) + y * np.log(lam) - lam - sps.gammaln(y + 1))
    return -ll.sum()


def betabinomial_negloglik(params, n, k):
    a, b = np.exp(params)
    return -np.sum(sps.gammaln(n + 1) - sps.gammaln(k + 1) - sps.gammaln(n - k + 1)
                   + sps.betaln(k + a, n - k + b) - sps.betaln(a, b))


def pearson_dispersion(beta, X, y):
    mu = np.exp(X @ beta)
    n, p = X.shape
    return np.sum((y - mu) ** 2 / mu) / (n - p)


def test_zip_betabinomial_dispersion():
    X, rng = glm_data(n=12)
    y = np.where(rng.uniform(size=12) < 0.3, 0, rng.poisson(2.0, 12)).astype(float)
    p, p2 = np.array([0.5, 0.2, -0.1, -0.5]), np.array([0.7, 0.0, 0.2, 0.3])
    check_jit(zip_negloglik, (p, X, y), (p2, X, y))
    check_derivs(zip_negloglik, p, p2, X, y)
    n = np.array([10, 12, 8, 15, 9])
    k = np.array([3, 7, 1, 9, 4])
    q, q2 = np.array([0.3, 0.5]), np.array([1.0, 0.2])
    check_jit(betabinomial_negloglik, (q, n, k), (q2, n, k))
    check_derivs(betabinomial_negloglik, q, q2, n, k)
    b = p[:3]
    check_jit(pearson_dispersion, (b, X, y), (p2[:3], X, y))
    check_derivs(pearson_dispersion, b, p2[:3], X, y, hess=False)


# ---- 5. item response theory ------------------------------------------------------------------


def rasch_loglik(theta, b, Y):
    """Joint likelihood of the Rasch model, persons x items."""
    eta = theta[:, None] - b[None, :]
    return np.sum(Y * eta - np.logaddexp(0, eta))


def irt_data(N=8, J=4, seed=13, K=2):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(N)
    b = np.linspace(-1, 1, J)
    if K == 2:
        Y = (rng.uniform(size=(N, J)) < sps.expit(theta[:, None] - b)).astype(float)
    else:
        Y = rng.integers(0, K, (N, J))
    return theta, b, Y


def test_rasch_joint_likelihood_float64_and_float32():
    theta, b, Y = irt_data()
    check_jit(rasch_loglik, (theta, b, Y), (theta * 0.5, b + 0.1, Y))
    check_derivs(lambda bb, th, yy: rasch_loglik(th, bb, yy), b, b[::-1].copy(), theta, Y)
    t32, b32, Y32 = theta.astype(np.float32), b.astype(np.float32), Y.astype(np.float32)
    want = rasch_loglik(t32, b32, Y32)
    assert isinstance(want, np.float32)
    check_jit(rasch_loglik, (t32, b32, Y32), (t32 * 0.5, b32, Y32), rtol=1e-6)
    g = npfunc.grad(rasch_loglik, argnums=1)(t32, b32, Y32)
    assert g.dtype == np.float32
    assert_deriv(g, fd(lambda bb: rasch_loglik(theta, bb, Y), b), rtol=1e-4, atol=1e-5)
    # per-person ability scores by vmap(grad) over rows with in_dims=(0, None, 0)
    per = lambda th, bb, y: np.sum(y * (th - bb) - np.logaddexp(0, th - bb))
    got = repeated(npfunc.vmap(npfunc.grad(per), in_dims=(0, None, 0)), [(theta, b, Y)])[0]
    np.testing.assert_allclose(got, np.sum(Y - sps.expit(theta[:, None] - b), axis=1), rtol=1e-12)


def twopl_marginal_loglik(params, Y, n_quad=9):
    """2PL marginal likelihood, abilities integrated out by Gauss-Hermite quadrature."""
    J = Y.shape[1]
    a, b = np.exp(params[:J]), params[J:]
    nodes, weights = np.polynomial.hermite.hermgauss(n_quad)
    theta = np.sqrt(2) * nodes
    logw = np.log(weights / np.sqrt(np.pi))
    eta = a[None, :] * (theta[:, None] - b[None, :])
    logp = -np.logaddexp(0, -eta)
    logq = -np.logaddexp(0, eta)
    ll_q = Y @ logp.T + (1 - Y) @ logq.T
    return np.sum(sps.logsumexp(ll_q + logw, axis=1))


def test_2pl_marginal_likelihood_quadrature():
    theta, b, Y = irt_data(N=10, J=3)
    p = np.concatenate([np.log([0.8, 1.2, 1.0]), b])
    p2 = np.concatenate([np.log([1.1, 0.7, 1.5]), b[::-1]])
    check_jit(twopl_marginal_loglik, (p, Y), (p2, Y))
    check_derivs(twopl_marginal_loglik, p, p2, Y)


def threepl_loglik(theta, a, b, c, y):
    p = c + (1 - c) * sps.expit(a * (theta - b))
    return np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))


def test_3pl_float32_ability_information():
    a = np.array([1.2, 0.8, 1.5, 1.0], dtype=np.float32)
    b = np.array([-0.5, 0.0, 0.5, 1.0], dtype=np.float32)
    c = np.array([0.2, 0.25, 0.15, 0.2], dtype=np.float32)
    y = np.array([1, 1, 0, 1], dtype=np.float32)
    th = np.float32(0.3)
    want = threepl_loglik(th, a, b, c, y)
    assert isinstance(want, np.float32)
    check_jit(threepl_loglik, (th, a, b, c, y), (np.float32(-0.4), a, b, c, y), rtol=1e-6)
    g = npfunc.grad(threepl_loglik)(th, a, b, c, y)
    assert isinstance(g, np.float32) or (isinstance(g, np.ndarray) and g.dtype == np.float32)
    g64 = lambda t: threepl_loglik(t, a.astype(float), b.astype(float), c.astype(float), y.astype(float))
    check_scalar_second(g64, 0.3, -0.4)
    assert_deriv(g, fd(lambda t: g64(t[0]), np.array([0.3]))[0], rtol=1e-4, atol=1e-5)
    ths = np.linspace(-1, 1, 5).astype(np.float32)
    check_vmap(threepl_loglik, (ths, a, b, c, y), (0, None, None, None, None), rtol=1e-6)


def grm_loglik(theta, a, thresholds, Y):
    """Samejima's graded response model; thresholds (J, K-1) increasing, Y in 0..K-1."""
    N, J = Y.shape
    ll = 0.0
    for j in range(J):
        cum = sps.expit(a[j] * (theta[:, None] - thresholds[j][None, :]))
        cum = np.concatenate([np.ones((N, 1)), cum, np.zeros((N, 1))], axis=1)
        probs = cum[:, :-1] - cum[:, 1:]
        ll += np.sum(np.log(probs[np.arange(N), Y[:, j]]))
    return ll


def partial_credit_loglik(theta, deltas, Y):
    """Masters' partial credit model; deltas (J, K-1) step difficulties."""
    N, J = Y.shape
    steps = theta[:, None, None] - deltas[None, :, :]
    logits = np.concatenate([np.zeros((N, J, 1)), np.cumsum(steps, axis=2)], axis=2)
    logp = logits - sps.logsumexp(logits, axis=2, keepdims=True)
    return np.sum(np.take_along_axis(logp, Y[:, :, None], axis=2))


def test_graded_response_and_partial_credit():
    theta, _, Y = irt_data(N=6, J=3, K=4)
    a = np.array([1.0, 1.4, 0.7])
    thr = np.array([[-1.0, 0.0, 1.0], [-0.5, 0.3, 1.2], [-1.5, -0.2, 0.8]])
    check_jit(grm_loglik, (theta, a, thr, Y), (theta[::-1].copy(), a * 1.1, thr, Y))
    check_derivs(grm_loglik, theta, theta * 0.5, a, thr, Y)
    check_derivs(lambda aa, th, t, yy: grm_loglik(th, aa, t, yy), a, a[::-1].copy(), theta, thr, Y)
    check_jit(partial_credit_loglik, (theta, thr, Y), (theta * 0.3, thr[::-1].copy(), Y))
    check_derivs(lambda d, th, yy: partial_credit_loglik(th, d.reshape(3, 3), yy),
                 thr.ravel(), thr.ravel()[::-1].copy(), theta, Y)


def twopl_person_loglik(theta, a, b, y):
    eta = a * (theta - b)
    return np.sum(y * eta - np.logaddexp(0, eta))


def test_2pl_test_information_by_second_derivative():
    a = np.array([1.2, 0.8, 1.5, 1.0])
    b = np.array([-0.5, 0.0, 0.5, 1.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    check_scalar_second(twopl_person_loglik, 0.3, -0.8, a, b, y)
    # test information I(theta) = sum a^2 P Q = -d2 loglik / d theta2 (independent of y)
    info = lambda t: -npfunc.grad(npfunc.grad(twopl_person_loglik))(t, a, b, y)
    for t in (0.3, -0.8, 0.3, -0.8, 0.3, 1.1):
        P = sps.expit(a * (t - b))
        np.testing.assert_allclose(info(t), np.sum(a**2 * P * (1 - P)), rtol=1e-12)
    ts = np.linspace(-2, 2, 5)
    vi = npfunc.vmap(npfunc.grad(npfunc.grad(twopl_person_loglik)), in_dims=(0, None, None, None))
    got = repeated(vi, [(ts, a, b, y)])[0]
    P = sps.expit(a * (ts[:, None] - b))
    np.testing.assert_allclose(-got, np.sum(a**2 * P * (1 - P), axis=1), rtol=1e-12)


def eap_abilities(a, b, Y, n_quad=15):
    """Expected a posteriori abilities under a standard normal prior."""
    nodes, weights = np.polynomial.hermite.hermgauss(n_quad)
    theta = np.sqrt(2) * nodes
    eta = a * (theta[:, None] - b)
    ll = Y @ (-np.logaddexp(0, -eta)).T + (1 - Y) @ (-np.logaddexp(0, eta)).T
    post = np.exp(ll) * weights
    return (post @ theta) / post.sum(axis=1)


def test_eap_abilities_jacobian_in_item_parameters():
    theta, b, Y = irt_data(N=5, J=4)
    a = np.array([1.0, 1.3, 0.8, 1.1])
    check_jit(eap_abilities, (a, b, Y), (a * 0.9, b + 0.2, Y))
    f = lambda bb: eap_abilities(a, bb, Y)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        J = repeated(T(f), [(b,), (b + 0.2,)])
        assert_deriv(J[0], fd(f, b))
        assert_deriv(J[1], fd(f, b + 0.2))
    check_vmap(eap_abilities, (np.stack([a, a * 1.2]), b, Y), (0, None, None))


def cronbach_alpha(scores):
    k = scores.shape[1]
    item_var = scores.var(axis=0, ddof=1)
    total_var = scores.sum(axis=1).var(ddof=1)
    return k / (k - 1) * (1 - item_var.sum() / total_var)


def one_factor_negloglik(params, S, n):
    """One-factor model: Sigma = lambda lambda' + diag(psi), ML discrepancy."""
    p = S.shape[0]
    lam, psi = params[:p], np.exp(params[p:])
    Sigma = np.outer(lam, lam) + np.diag(psi)
    sign, logdet = np.linalg.slogdet(Sigma)
    return 0.5 * n * (logdet + np.trace(np.linalg.solve(Sigma, S)))


def test_cronbach_alpha_and_one_factor_model():
    rng = np.random.default_rng(14)
    f = rng.standard_normal(20)
    scores = f[:, None] * np.array([0.8, 0.6, 0.7, 0.5]) + 0.5 * rng.standard_normal((20, 4))
    check_jit(cronbach_alpha, (scores,), (scores[::-1] * 1.1,))
    check_derivs(cronbach_alpha, scores[:6], scores[6:12], hess=False)
    S = np.cov(scores, rowvar=False)
    p, p2 = np.concatenate([[0.8, 0.6, 0.7, 0.5], np.log([0.3, 0.3, 0.3, 0.3])]), \
        np.concatenate([[0.5, 0.5, 0.5, 0.5], np.log([0.5, 0.2, 0.4, 0.3])])
    check_jit(one_factor_negloglik, (p, S, 20), (p2, S, 20))
    check_derivs(one_factor_negloglik, p, p2, S, 20)


# ---- 6. meta-analysis -------------------------------------------------------------------------


def dersimonian_laird(y, v):
    """Random-effects meta-analysis by the DerSimonian-Laird moment estimator."""
    w = 1 / v
    mu_fe = np.sum(w * y) / np.sum(w)
    Q = np.sum(w * (y - mu_fe) ** 2)
    k = len(y)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (Q - (k - 1)) / c)
    w_re = 1 / (v + tau2)
    mu = np.sum(w_re * y) / np.sum(w_re)
    se = np.sqrt(1 / np.sum(w_re))
    return {"mu": mu, "se": se, "tau2": tau2, "Q": Q, "ci": np.array([mu - 1.96 * se, mu + 1.96 * se])}


def dersimonian_laird_np(y, v):
    w = 1 / v
    mu_fe = np.sum(w * y) / np.sum(w)
    Q = np.sum(w * (y - mu_fe) ** 2)
    k = len(y)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = np.maximum(0.0, (Q - (k - 1)) / c)
    w_re = 1 / (v + tau2)
    mu = np.sum(w_re * y) / np.sum(w_re)
    return np.array([mu, np.sqrt(1 / np.sum(w_re)), tau2, Q])


META_Y = np.array([0.10, 0.35, -0.05, 0.42, 0.25, 0.60])
META_V = np.array([0.02, 0.05, 0.03, 0.04, 0.01, 0.06])


def test_dersimonian_laird_numpy_maximum():
    y, v = META_Y, META_V
    assert dersimonian_laird_np(y, v)[2] > 0
    check_jit(dersimonian_laird_np, (y, v), (y * 0.3, v))   # the second has tau2 = 0
    assert dersimonian_laird_np(y * 0.3, v)[2] == 0
    for yy in (y, y * 0.3):
        for T in (npfunc.jacrev, npfunc.jacfwd):
            (J,) = repeated(T(dersimonian_laird_np), [(yy, v)])
            assert_deriv(J, fd(lambda u: dersimonian_laird_np(u, v), yy))
    check_derivs(lambda yy, vv: dersimonian_laird_np(yy, vv)[0], y, y * 0.3, v)
    Ys = np.stack([y, y * 0.3, y[::-1]])
    check_vmap(dersimonian_laird_np, (Ys, v), (0, None))


def test_dersimonian_laird_python_max_dict():
    y, v = META_Y, META_V
    res = dersimonian_laird(y, v)
    assert type(res["tau2"]) is np.float64
    assert type(dersimonian_laird(y * 0.3, v)["tau2"]) is float     # Python max picked 0.0
    f = lambda yy: dersimonian_laird(yy, v)["mu"]
    for yy in (y, y * 0.3):
        got = repeated(npfunc.grad(f), [(yy,)])[0]
        assert_deriv(got, fd(f, yy))
    g = npfunc.jacrev(lambda yy: dersimonian_laird(yy, v)["ci"])(y)
    assert_deriv(g, fd(lambda yy: dersimonian_laird(yy, v)["ci"], y))


def reml_tau2(y, v, n_iter=30):
    """REML estimate of the between-study variance by Fisher scoring, clipped at zero."""
    tau2 = np.var(y, ddof=1)
    for _ in range(n_iter):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        r = y - mu
        score = 0.5 * (np.sum(w**2 * r**2) - np.sum(w) + np.sum(w**2) / np.sum(w))
        info = 0.5 * np.sum(w**2)
        tau2 = np.maximum(tau2 + score / info, 0.0)
    return tau2


def paule_mandel_tau2(y, v):
    def excess(tau2):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        return np.sum(w * (y - mu) ** 2) - (len(y) - 1)
    return scipy.optimize.brentq(excess, 0.0, 10.0, xtol=1e-14)


def test_reml_fisher_scoring_and_paule_mandel_brentq():
    y, v = META_Y, META_V
    check_jit(reml_tau2, (y, v), (y * 1.5, v))
    check_derivs(reml_tau2, y, y * 1.5, v, hess=False)
    t = paule_mandel_tau2(y, v)
    assert t > 0
    check_jit_root(paule_mandel_tau2, (y, v), (y * 1.5, v))
    check_derivs(paule_mandel_tau2, y, y * 1.5, v, hess=False, rtol=1e-5)
    check_vmap(paule_mandel_tau2, (np.stack([y, y * 1.5]), v), (0, None))


def log_odds_ratios(tables):
    """Log odds ratios and variances from 2x2 tables, adding 0.5 to tables with a zero cell."""
    t = tables.astype(float)
    zero = (t == 0).any(axis=(1, 2))
    t[zero] += 0.5
    lor = np.log(t[:, 0, 0] * t[:, 1, 1] / (t[:, 0, 1] * t[:, 1, 0]))
    var = (1 / t).sum(axis=(1, 2))
    return lor, var


def test_log_odds_ratio_continuity_correction_in_place():
    tables = np.array([[[12, 5], [7, 10]], [[0, 9], [4, 11]], [[15, 3], [8, 0]], [[6, 6], [5, 9]]])
    lor, var = log_odds_ratios(tables)
    # which tables get the correction depends on the counts: jit refuses the traced mask
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"jit\(f\).*np.where"):
        npfunc.jit(log_odds_ratios)(tables)
    T = tables.astype(float) + 0.25
    for trans in (npfunc.jacrev, npfunc.jacfwd):
        J = repeated(trans(lambda t: log_odds_ratios(t)[0]), [(T,)])[0]
        assert_deriv(J, fd(lambda t: log_odds_ratios(t)[0], T))
    # a zero cell: the correction is a constant shift of that table (differences of the plain
    # program cannot be taken there: the mask changes), so the Jacobian is the shifted table's
    Tz = T.copy()
    Tz[1, 0, 0] = 0.0
    shifted = Tz.copy()
    shifted[1] += 0.5
    for trans in (npfunc.jacrev, npfunc.jacfwd):
        J = repeated(trans(lambda t: log_odds_ratios(t)[0]), [(Tz,)])[0]
        assert_deriv(J, fd(lambda t: log_odds_ratios(t)[0], shifted))
    f = lambda t: dersimonian_laird_np(*log_odds_ratios(t))[0]
    check_derivs(f, T, T * 1.5, hess=False, jit_grad=False)
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"vmap\(f\).*np.where\(mask, x \+ v, x\)|vmap\(f\).*np.where"):
        npfunc.vmap(log_odds_ratios)(np.stack([tables, tables[::-1]]))
    # the spelling the message advises: batched and recorded
    batch = np.stack([tables, tables[::-1]])
    check_vmap(log_odds_ratios_where, (batch,), (0,))
    check_jit(log_odds_ratios_where, (tables,), (tables[::-1].copy(),))
    for t in batch:
        _tree_same(log_odds_ratios_where(t), log_odds_ratios(t), rtol=0)


def log_odds_ratios_where(tables):
    t = tables.astype(float)
    zero = (t == 0).any(axis=(1, 2))
    t[...] = np.where(zero[:, None, None], t + 0.5, t)
    lor = np.log(t[:, 0, 0] * t[:, 1, 1] / (t[:, 0, 1] * t[:, 1, 0]))
    var = (1 / t).sum(axis=(1, 2))
    return lor, var


# ---- 7. mixed models --------------------------------------------------------------------------


def laplace_glmm_loglik(params, X, y, groups, n_groups, newton_steps=6):
    """Random-intercept logistic model; each cluster's integral by the Laplace approximation
    around its mode (an inner Newton loop)."""
    beta, log_sd = params[:-1], params[-1]
    s2 = np.exp(2 * log_sd)
    eta0 = X @ beta
    total = 0.0
    for g in range(n_groups):
        idx = groups == g
        e, yy = eta0[idx], y[idx]
        b = 0.0
        for _ in range(newton_steps):
            mu = sps.expit(e + b)
            grad_b = np.sum(yy - mu) - b / s2
            hess_b = -np.sum(mu * (1 - mu)) - 1 / s2
            b = b - grad_b / hess_b
        mu = sps.expit(e + b)
        h = np.sum(mu * (1 - mu)) + 1 / s2
        ll = np.sum(yy * (e + b) - np.logaddexp(0, e + b)) - 0.5 * b**2 / s2 - 0.5 * np.log(2 * np.pi * s2)
        total += ll + 0.5 * np.log(2 * np.pi) - 0.5 * np.log(h)
    return total


def test_laplace_random_intercept_logistic():
    rng = np.random.default_rng(15)
    groups = np.repeat(np.arange(3), 4)
    X = np.column_stack([np.ones(12), rng.standard_normal(12)])
    y = (rng.uniform(size=12) < 0.5).astype(float)
    p, p2 = np.array([0.1, 0.5, -0.3]), np.array([-0.2, 0.2, 0.1])
    check_jit(lambda q, yy: laplace_glmm_loglik(q, X, yy, groups, 3), (p, y), (p2, 1 - y))
    check_derivs(laplace_glmm_loglik, p, p2, X, y, groups, 3, rounds=3)


def lmm_negloglik(params, X, y, Z):
    """Linear mixed model y = X beta + Z u + e by the marginal Gaussian likelihood."""
    p = X.shape[1]
    beta = params[:p]
    s2u, s2e = np.exp(params[p:])
    n = len(y)
    V = s2u * Z @ Z.T + s2e * np.eye(n)
    c, low = scipy.linalg.cho_factor(V)
    r = y - X @ beta
    return 0.5 * (2 * np.sum(np.log(np.diag(c))) + r @ scipy.linalg.cho_solve((c, low), r) + n * np.log(2 * np.pi))


def test_linear_mixed_model_cholesky():
    rng = np.random.default_rng(16)
    Z = np.kron(np.eye(3), np.ones((3, 1)))
    X = np.column_stack([np.ones(9), rng.standard_normal(9)])
    y = X @ np.array([1.0, 0.5]) + Z @ rng.standard_normal(3) + 0.3 * rng.standard_normal(9)
    p, p2 = np.array([0.9, 0.4, -0.5, -1.0]), np.array([1.1, 0.6, 0.1, -2.0])
    check_jit(lmm_negloglik, (p, X, y, Z), (p2, X, y, Z))
    check_derivs(lmm_negloglik, p, p2, X, y, Z)


# ---- 8. dose-response --------------------------------------------------------------------------


def hill4(params, dose):
    """Four-parameter logistic (Hill) curve."""
    bottom, top, log_ec50, n = params
    return bottom + (top - bottom) / (1 + (np.exp(log_ec50) / dose) ** n)


def fit_hill_gauss_newton(params, dose, resp, n_iter=5):
    for _ in range(n_iter):
        r = resp - hill4(params, dose)
        J = npfunc.jacfwd(hill4)(params, dose)
        params = params + np.linalg.lstsq(J, r, rcond=None)[0]
    return params


def test_hill_curve_jacobian_and_gauss_newton():
    dose = np.array([0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])
    true = np.array([5.0, 95.0, np.log(1.5), 1.2])
    resp = hill4(true, dose) + np.array([1.0, -2.0, 1.5, 0.5, -1.0, 2.0, -0.5])
    p0 = np.array([0.0, 100.0, 0.0, 1.0])
    check_jit(hill4, (p0, dose), (true, dose))
    for T in (npfunc.jacrev, npfunc.jacfwd):
        J = repeated(T(hill4), [(p0, dose), (true, dose)])
        assert_deriv(J[0], fd(lambda q: hill4(q, dose), p0))
        assert_deriv(J[1], fd(lambda q: hill4(q, dose), true))
    fitted = fit_hill_gauss_newton(p0, dose, resp)
    assert np.sum((resp - hill4(fitted, dose)) ** 2) < np.sum((resp - hill4(true, dose)) ** 2) + 1e-9
    sse = lambda q, d, r: np.sum((r - hill4(q, d)) ** 2)
    check_derivs(sse, p0, true, dose, resp)
    check_vmap(hill4, (np.stack([p0, true]), dose), (0, None))


def test_hill_curve_with_a_zero_dose_control():
    """A control group at dose 0: (ec50 / 0) ** n = inf and the response is the bottom; the
    plain program's derivative there is (1, 0, 0, 0)."""
    dose = np.array([0.0, 0.1, 1.0, 10.0])
    p0 = np.array([5.0, 95.0, 0.3, 1.2])
    with np.errstate(divide="ignore"):
        want = hill4(p0, dose)
        assert want[0] == 5.0
        J_fd = fd(lambda q: hill4(q, dose), p0)
        np.testing.assert_allclose(J_fd[0], [1.0, 0.0, 0.0, 0.0], atol=1e-12)
        check_jit(hill4, (p0, dose), (p0 * 1.1, dose))
        # the documented 0 * inf = NaN (docs/conventions.md): d/dn and d/dlog_ec50 of
        # (ec50 / 0) ** n are infinite where the response no longer depends on them
        with np.errstate(invalid="ignore"):
            for T in (npfunc.jacrev, npfunc.jacfwd):
                J = T(hill4)(p0, dose)
                assert np.isnan(J[0, 2:]).all()
                assert_deriv(J[1:], J_fd[1:])
            # (reverse mode keeps d/dbottom and d/dtop; forward mode pushes the other directions'
            # zero tangents through ec50 / 0 too: 0 / 0)
            assert_deriv(npfunc.jacrev(hill4)(p0, dose)[0, :2], J_fd[0, :2])
        # the log-dose spelling with a double where is exact at the control
        for T in (npfunc.jacrev, npfunc.jacfwd):
            J = repeated(T(hill4_safe), [(p0, dose), (p0 * 1.1, dose)])
            assert_deriv(J[0], J_fd)
            assert_deriv(J[1], fd(lambda q: hill4(q, dose), p0 * 1.1))


def hill4_safe(params, dose):
    bottom, top, log_ec50, n = params
    positive = dose > 0
    logd = np.log(np.where(positive, dose, 1.0))
    frac = np.where(positive, 1 / (1 + np.exp(n * (log_ec50 - logd))), 0.0)
    return bottom + (top - bottom) * frac


def probit_dose_negloglik(ab, logdose, n, k):
    p = st.norm.cdf(ab[0] + ab[1] * logdose)
    return -np.sum(k * np.log(p) + (n - k) * np.log1p(-p))


def ed50(ab):
    return 10 ** (-ab[0] / ab[1])


def ed50_with_se(logdose, n, k, ab):
    """ED50 and its delta-method standard error from the observed information."""
    H = npfunc.hessian(probit_dose_negloglik)(ab, logdose, n, k)
    cov = np.linalg.inv(H)
    g = npfunc.grad(ed50)(ab)
    return {"ed50": ed50(ab), "se": np.sqrt(g @ cov @ g)}


def test_probit_dose_response_ed50_delta_method():
    logdose = np.log10(np.array([1.0, 2.0, 4.0, 8.0, 16.0]))
    n = np.array([20, 20, 20, 20, 20])
    k = np.array([2, 5, 10, 15, 19])
    ab, ab2 = np.array([-1.5, 2.6]), np.array([-1.2, 2.0])
    check_jit(probit_dose_negloglik, (ab, logdose, n, k), (ab2, logdose, n, k))
    check_derivs(probit_dose_negloglik, ab, ab2, logdose, n, k)
    check_derivs(ed50, ab, ab2)
    for a in (ab, ab2, ab, ab2, ab):
        res = ed50_with_se(logdose, n, k, a)
        Hp = fd(lambda q: fd(lambda r: probit_dose_negloglik(r, logdose, n, k), q), a)
        gp = fd(ed50, a)
        np.testing.assert_allclose(res["se"], np.sqrt(gp @ np.linalg.inv(Hp) @ gp), rtol=1e-4)
        assert type(res["ed50"]) is np.float64


def emax_ed90(params):
    """Dose giving 90 % of the maximal effect of an Emax model, by brentq."""
    e0, emax, ed50_ = params
    f = lambda d: e0 + emax * d / (ed50_ + d) - (e0 + 0.9 * emax)
    return scipy.optimize.brentq(f, 1e-9, 1e4, xtol=1e-13, rtol=1e-14)


def test_emax_ed90_by_brentq():
    p, p2 = np.array([1.0, 10.0, 2.0]), np.array([0.5, 8.0, 3.5])
    np.testing.assert_allclose(emax_ed90(p), 9 * p[2], rtol=1e-10)
    check_jit_root(emax_ed90, (p,), (p2,))
    for T in (npfunc.grad, npfunc.jacrev, npfunc.jacfwd):
        got = repeated(T(emax_ed90), [(p,), (p2,)])
        np.testing.assert_allclose(got[0], [0.0, 0.0, 9.0], atol=1e-8)
        np.testing.assert_allclose(got[1], [0.0, 0.0, 9.0], atol=1e-8)
    check_vmap(emax_ed90, (np.stack([p, p2]),), (0,))


# ---- 9. ROC / AUC ------------------------------------------------------------------------------


def smooth_auc(scores_pos, scores_neg, s=0.1):
    diff = np.subtract.outer(scores_pos, scores_neg)
    return np.mean(sps.expit(diff / s))


def auc_loss(beta, Xp, Xn):
    return 1.0 - smooth_auc(Xp @ beta, Xn @ beta)


def mann_whitney_auc(scores, labels):
    r = st.rankdata(scores)
    n1 = labels.sum()
    n0 = len(labels) - n1
    return (r[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def binormal_auc(ab):
    a, b = ab
    return st.norm.cdf(a / np.sqrt(1 + b**2))


def test_smooth_auc_surrogate_and_mann_whitney():
    rng = np.random.default_rng(17)
    Xp = rng.standard_normal((5, 2)) + 0.5
    Xn = rng.standard_normal((6, 2))
    b, b2 = np.array([1.0, 0.5]), np.array([0.2, -0.7])
    check_jit(auc_loss, (b, Xp, Xn), (b2, Xp, Xn))
    check_derivs(auc_loss, b, b2, Xp, Xn)
    s = np.concatenate([Xp @ b, Xn @ b])
    lab = np.array([1] * 5 + [0] * 6)
    auc = mann_whitney_auc(s, lab)
    assert 0 <= auc <= 1
    check_jit(lambda sc: mann_whitney_auc(sc, lab), (s,), (-s,))
    S = np.stack([s, -s, s**2])
    check_vmap(mann_whitney_auc, (S, lab), (0, None))
    check_derivs(binormal_auc, np.array([1.2, 0.8]), np.array([0.4, -1.3]))
    check_jit(binormal_auc, (np.array([1.2, 0.8]),), (np.array([0.4, -1.3]),))


# ---- 10. side effects and warnings -----------------------------------------------------------


def standardise_and_loglik(beta, X, y):
    """Centre and scale the covariates in place (the caller's array changes), then the
    logistic log-likelihood."""
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    eta = X @ beta
    return np.sum(y * eta - np.logaddexp(0.0, eta))


def test_in_place_standardisation_of_an_argument():
    rng = np.random.default_rng(18)
    X0 = rng.uniform(1, 5, (8, 2))
    y = (rng.uniform(size=8) < 0.5).astype(float)
    b = np.array([0.3, -0.2])
    Xp = X0.copy()
    want = standardise_and_loglik(b, Xp, y)
    jf = npfunc.jit(standardise_and_loglik)
    for _ in range(3):
        Xj = X0.copy()
        assert_same(jf(b, Xj, y), want, rtol=1e-12)
        np.testing.assert_allclose(Xj, Xp, rtol=1e-12, atol=1e-15)   # the caller's array, updated
    # differentiated in the covariates: the update happens, the gradient is the plain program's
    Xg = X0.copy()
    g = npfunc.grad(standardise_and_loglik, argnums=1)(b, Xg, y)
    np.testing.assert_allclose(Xg, Xp, rtol=1e-12, atol=1e-15)
    assert_deriv(g, fd(lambda Z: standardise_and_loglik(b, Z.copy(), y), X0))
    gb = repeated(npfunc.grad(lambda bb: standardise_and_loglik(bb, X0.copy(), y)), [(b,)])[0]
    assert_deriv(gb, fd(lambda bb: standardise_and_loglik(bb, X0.copy(), y), b))


def _warned(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})


def test_greenwood_division_by_zero_warns_like_numpy():
    """At the last time everyone at risk dies: d / (n (n - d)) divides by zero and S * sqrt(inf)
    is 0 * inf; NumPy warns of both, and so do jit's recording call and its replays."""
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([1, 0, 1, 1])
    w = np.ones(4)
    want, msgs = _warned(greenwood_se, time, event, w)
    assert any("divide by zero" in m for m in msgs) and any("invalid value" in m for m in msgs)
    jf = npfunc.jit(lambda ww: greenwood_se(time, event, ww))
    for ww in (w, w * 2, w * 3):
        got, got_msgs = _warned(jf, ww)
        want, msgs = _warned(greenwood_se, time, event, ww)
        assert_same(got, want)
        assert {m.split(" in ")[0] for m in got_msgs} == {m.split(" in ")[0] for m in msgs}


# ---- 11. regressions for the findings ---------------------------------------------------------


def test_regression_ufunc_outer_on_traced_values():
    """np.subtract.outer (and every supported binary ufunc's outer) was refused on traced
    values; it is the ufunc of a[..., None, ...] and b, with NumPy's conversion of Python
    scalars (strong, not weak)."""
    a = np.array([0.3, -1.0, 2.0])
    a32 = a.astype(np.float32)
    progs = [lambda x: np.subtract.outer(x, x[:2]), lambda x: np.multiply.outer(x, 2.0),
             lambda x: np.add.outer(2.0, x), lambda x: np.maximum.outer(x, [0.0, 1.0]),
             lambda x: np.add.outer(x[0], x[1]), lambda x: np.greater.outer(x, x),
             lambda x: np.add.outer(x, x, dtype=np.float32), lambda x: np.logaddexp.outer(x, x)]
    for f in progs:
        for x in (a, a32):
            check_jit(f, (x,), (x * 2,))
            check_vmap(f, (np.stack([x, -x]),), (0,))
    f = lambda x: np.sum(sps.expit(np.subtract.outer(x, x[::-1] ** 2)))
    check_derivs(f, a, a * 0.5)


def test_regression_batched_matmul_compiled_jacfwd_is_the_eager_one(monkeypatch):
    """jacfwd's compiled pull-back (tape_cache) differed from the eager jacfwd in the last bits:
    matmul's batching rule folds a batch into one GEMM only when a reshape is a view, which it
    could check on eager arrays but not on staged values, so the recording took the stacked
    matmul and summed another layout."""
    from npfunc.api import tape_cache

    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", 0.0)
    rng = np.random.default_rng(0)
    Y = (rng.uniform(size=(10, 3)) < 0.5).astype(float)
    theta = np.linspace(-2, 2, 9)
    f = lambda p: np.sum(np.exp(Y @ np.outer(theta, p).T))
    x = rng.standard_normal(3)
    composition = npfunc.jacfwd(f)(x)           # a first call: the composition itself
    J = npfunc.jacfwd(f)
    for _ in range(6):
        np.testing.assert_array_equal(J(x), composition)
    assert J._tape_cache.compiles == 1
    # and the 2PL marginal likelihood, where the natural program met it
    theta_, b, Y2 = irt_data(N=10, J=3)
    p = np.concatenate([np.log([0.8, 1.2, 1.0]), b])
    first = npfunc.jacfwd(twopl_marginal_loglik)(p, Y2)
    J2 = npfunc.jacfwd(twopl_marginal_loglik)
    for _ in range(6):
        np.testing.assert_array_equal(J2(p, Y2), first)


def test_regression_plain_array_indexed_by_a_traced_mask_names_np_where():
    """ts[ts < tau] with a traced tau under jit/vmap advised np.asarray(ts, like=i), which only
    leads to the next refusal; a boolean mask now gets the fixed-shape np.where advice."""
    ts = np.array([0.2, 0.5, 0.9])
    f = lambda tau: np.sum(ts[ts < tau]) * tau
    assert npfunc.grad(f)(0.6) == f(0.6) / 0.6
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*boolean mask.*np.where\(mask, table, 0.0\)"):
        npfunc.jit(f)(np.float64(0.6))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*boolean mask.*np.where"):
        npfunc.vmap(f)(np.array([0.3, 0.6]))
    fixed = lambda tau: np.sum(np.where(ts < tau, ts, 0.0)) * tau
    check_jit(fixed, (np.float64(0.6),), (np.float64(0.3),))
    # an integer index keeps the like= advice
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"like=i"):
        npfunc.jit(lambda i: ts[i] * 2.0)(np.int64(1))


def laplace_cluster(e, yy, s2, newton_steps=6):
    """One cluster's Laplace-approximated log marginal likelihood (random intercept)."""
    b = 0.0
    for _ in range(newton_steps):
        mu = sps.expit(e + b)
        b = b - (np.sum(yy - mu) - b / s2) / (-np.sum(mu * (1 - mu)) - 1 / s2)
    mu = sps.expit(e + b)
    h = np.sum(mu * (1 - mu)) + 1 / s2
    ll = np.sum(yy * (e + b) - np.logaddexp(0, e + b)) - 0.5 * b**2 / s2 - 0.5 * np.log(2 * np.pi * s2)
    return ll + 0.5 * np.log(2 * np.pi) - 0.5 * np.log(h)


def laplace_glmm_checkpointed(params, X, y, n_groups, remat):
    beta, s2 = params[:-1], np.exp(2 * params[-1])
    eta0 = (X @ beta).reshape(n_groups, -1)
    Y = y.reshape(n_groups, -1)
    cluster = npfunc.checkpoint(laplace_cluster) if remat else laplace_cluster
    total = 0.0
    for g in range(n_groups):
        total = total + cluster(eta0[g], Y[g], s2)
    return total


def test_laplace_clusters_checkpointed_and_vmapped():
    rng = np.random.default_rng(15)
    groups = np.repeat(np.arange(3), 4)
    X = np.column_stack([np.ones(12), rng.standard_normal(12)])
    y = (rng.uniform(size=12) < 0.5).astype(float)
    p, p2 = np.array([0.1, 0.5, -0.3]), np.array([-0.2, 0.2, 0.1])
    plain = lambda q: laplace_glmm_checkpointed(q, X, y, 3, False)
    np.testing.assert_allclose(plain(p), laplace_glmm_loglik(p, X, y, groups, 3), rtol=1e-13)
    remat = lambda q: laplace_glmm_checkpointed(q, X, y, 3, True)
    assert_same(remat(p), plain(p), rtol=0)
    for q in (p, p2):   # (one node per cluster: cotangents of s2 accumulate in another order)
        assert_same(npfunc.grad(remat)(q), npfunc.grad(plain)(q), rtol=1e-13)
        assert_deriv(npfunc.grad(remat)(q), fd(plain, q))
    check_jit(remat, (p,), (p2,))
    # the clusters batched: vmap over rows of the (cluster, member) arrays
    eta0 = (X @ p[:-1]).reshape(3, -1)
    check_vmap(laplace_cluster, (eta0, y.reshape(3, -1), np.exp(2 * p[-1])), (0, 0, None))
    vg = npfunc.vmap(npfunc.grad(laplace_cluster), in_dims=(0, 0, None))
    got = repeated(vg, [(eta0, y.reshape(3, -1), 0.8)])[0]
    want = np.stack([fd(lambda e: laplace_cluster(e, yy, 0.8), e0) for e0, yy in zip(eta0, y.reshape(3, -1))])
    assert_deriv(got, want)
