"""Natural programs from actuarial science, insurance and reliability engineering, written
first as plain NumPy/SciPy the way an actuary or a reliability engineer writes them, then run
under npfunc's transforms (jit recording and replay, vmap against a loop, grad, jacrev,
jacfwd, hessian, jvp, vjp and their compositions, each transformed function called at least
five times on the same and on new inputs, later calls bit for bit the first's in eager mode)
against the plain program (type, dtype, shape, value, side effects) and against five-point
differences.

Programs:
  * life tables: Gompertz-Makeham survival (closed form), a table as a dict (q_x, l_x by
    np.cumprod, d_x by np.diff), curtate expectation of life, the complete expectation by
    scipy.integrate.quad, l_x written year by year into a preallocated column, UDD against
    constant force at fractional ages, a select table (selection factors multiplied in place
    into a copy), a float32 table, Kaplan-Meier and Nelson-Aalen, associated single decrements,
    a piecewise-constant hazard (np.piecewise), l_x at fractional ages by a CubicSpline;
  * annuities and insurances: annuities certain (sum and closed form, Python floats), whole
    life A_x and annuity-due, the net level premium, a premium report as a dict, endowments
    with a Python loop, prospective reserves collected in a list, Fackler's recursion into a
    buffer, Thiele's equation by Euler steps and by solve_ivp, constant-force continuous
    annuities, Macaulay duration, a liability PV on an np.interp zero curve, interest
    conversions, the IRR by scipy.optimize.newton and by np.roots, continuous annuities by
    Simpson and trapezoid, a float32 annuity;
  * premium principles: exponential (logsumexp with b=), Esscher, standard deviation, the
    lognormal stop-loss premium (norm.cdf), the empirical stop-loss, limited expected values
    (lognormal, gamma by gammainc), a layer by quad of gamma.sf, limited-fluctuation credibility;
  * loss distributions: lognormal, gamma, Pareto and right-censored Weibull likelihoods
    (scipy.stats logpdf/logsf), an exponential mixture, the lognormal by moments, the Weibull
    MLE by BFGS (scipy.optimize.minimize), Poisson and negative binomial claim counts, a
    Poisson likelihood with gammaln;
  * risk measures: lognormal VaR/ES (lognorm.ppf), gamma and Weibull VaR by ppf and by isf,
    the Lomax (Pareto II) TVaR, empirical VaR/ES (np.sort, a tuple), np.quantile, normal ES;
  * credibility: Buhlmann, Buhlmann-Straub, Poisson-gamma, Buhlmann with a Python max on
    the variance of the hypothetical means;
  * reserving: chain-ladder on a NaN triangle filled in place (and with masks, and with
    np.nansum returning a dict), Bornhuetter-Ferguson, claims per policy by np.bincount;
  * ruin theory: Cramer-Lundberg with exponential claims (an early return at u <= 0), the
    adjustment coefficient by brentq, Panjer recursion, compound Poisson by FFT, finite-time
    ruin on an integer surplus grid, the maximum drawdown of a surplus path;
  * reliability: series-parallel systems of Weibull units, k-out-of-n (scipy.special.comb),
    Weibull MTTF (gamma function and quad), the Weibull MLE from its profile equation by
    brentq, median-rank regression (np.polyfit), availability by scipy.linalg.expm,
    stress-strength, a bathtub hazard integrated by cumulative_trapezoid, Weibull hazard
    ratios, a healthy-sick-dead Markov chain by matrix_power and by a loop;
  * in-place updates of arguments (exposure normalised in place, losses trended in place),
    vmap with in_dims other than 0 (a dict of loss ratios, a trend factor mapped over);
  * Lee-Carter mortality forecasts by SVD, the Cox partial likelihood (reversed cumsum risk
    sets), Hill's tail index, a Gaussian-copula aggregate (cholesky, norm.cdf, lognorm.ppf),
    a Monte Carlo expected deficit with a seeded generator, the equivalence premium by
    root_scalar, expected times to absorption by the fundamental matrix.

Findings fixed here: scipy.stats.lomax (the actuaries' Pareto II) was refused under every
transform (it now has a twin); scipy.stats.<dist>.isf was refused for every distribution but
norm (the continuous twins now have isf, with SciPy's own formula where SciPy has one;
vonmises.isf is refused, naming ppf(1 - q)); the refusal of x *= traced into a plain array
named like= fixes that NumPy refuses for a scalar x or t (it now names np.zeros_like(x,
shape=...) and a0 + np.zeros_like(t)).  Refusals checked to name a fix that works:
np.piecewise of a plain x with traced branches, Python control flow under jit/vmap,
solve_ivp without t_eval, np.polyfit and np.roots under jit, a non-converged BFGS,
np.add.reduceat, distribution moments (mean/var).  Plain buffers made in the function with
np.zeros, np.empty or np.full (the l_x column, Fackler's reserves, the Panjer and FFT
buffers, the chain-ladder factors, the ruin grid, the credibility floor), once refused, take
traced writes: checked under every transform, and against their like= spelling.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.special as sps
from scipy import stats

import npfunc
import npfunc.numpy as fnp
from npfunc.errors import (
    BatchedConversionError,
    ConcretizationError,
    UnsupportedFunctionError,
    UnsupportedOperationError,
)
from npfunc.scipy.integrate import UnsupportedOdeError
from npfunc.scipy.optimize import NonConvergedError
from natural_checks import assert_deriv, assert_same, fd


# ---- checking helpers ------------------------------------------------------------------------


def same_bits(got, first, what):
    got, first = np.asarray(got), np.asarray(first)
    assert got.dtype == first.dtype and got.shape == first.shape, what
    assert np.array_equal(got, first, equal_nan=True), (what, np.max(np.abs(got - first)))


def _want_type(want):
    """SciPy's Python float (quad's integral, brentq's root) comes back from a traced
    computation as np.float64 (docs/sharp-bits.md); everything else as the plain program's."""
    return np.float64(want) if type(want) is float else want


def check_scalar(f, x, x_new, batch=None, rtol=1e-6, atol=1e-8, hess=True, second=False, reps=5, jit=True):
    """f maps an array (or a 0-d value) to a scalar.  jit records on x and replays on x_new;
    grad, jacrev, jacfwd, jvp, vjp, jit(grad) (and hessian, jvp(grad), grad(grad) when asked)
    on both inputs ``reps`` times each, against five-point differences; eager results of later
    calls bit for bit the first's; jit(grad) to rounding (its contract pass reassociates sums,
    docs/performance.md).  With a batch: vmap(f) against the loop, vmap(grad(f)) and
    jit(vmap(grad(f))) against the differences of each row."""
    x, x_new = np.asarray(x, dtype=float), np.asarray(x_new, dtype=float)
    jf = npfunc.jit(f) if jit else npfunc.functionalize(f)
    for z in (x, x_new, x, x_new.copy()):
        assert_same(jf(z), _want_type(f(z)) if jit else f(z))
    refs = {}
    for name, z in (("x", x), ("new", x_new)):
        g = fd(f, z)
        v = np.linspace(0.3, -0.7, z.size).reshape(z.shape)
        refs[name] = (z, g, v, fd(npfunc.grad(f), z) if (hess or second) else None)
    gr, jr, jfw = npfunc.grad(f), npfunc.jacrev(f), npfunc.jacfwd(f)
    jg = npfunc.jit(npfunc.grad(f)) if jit else npfunc.grad(f)
    h, gg = npfunc.hessian(f), npfunc.grad(npfunc.grad(f))
    first = {}
    for _ in range(reps):
        for name, (z, g, v, H) in refs.items():
            val, jv = npfunc.jvp(f, (z,), (v,))
            assert_same(val, _want_type(f(z)))
            _, pull = npfunc.vjp(f, z)
            outs = {"grad": (gr(z), g), "jacrev": (jr(z), g), "jacfwd": (jfw(z), g),
                    "jvp": (jv, np.sum(g * v)), "vjp": (pull(np.float64(1.0))[0], g)}
            if hess:
                _, hv = npfunc.jvp(npfunc.grad(f), (z,), (v,))
                outs["hessian"] = (h(z), H)
                outs["hvp"] = (hv, np.tensordot(H, v, axes=v.ndim))
            if second:
                outs["grad(grad)"] = (gg(z), H)
            for key, (got, want) in outs.items():
                scale = 10 if key in ("hessian", "hvp", "grad(grad)") else 1
                assert_deriv(got, want, rtol=rtol * scale, atol=atol * scale)
                if (name, key) in first:
                    same_bits(got, first[(name, key)], (name, key))
                else:
                    first[(name, key)] = got
            got = jg(z)
            assert_deriv(got, g, rtol=rtol, atol=atol)
            if (name, "jit(grad)") in first:
                np.testing.assert_allclose(got, first[(name, "jit(grad)")], rtol=1e-12, atol=1e-300)
            else:
                first[(name, "jit(grad)")] = got
    if batch is not None:
        batch = np.asarray(batch, dtype=float)
        want_v = np.stack([_want_type(f(b)) for b in batch])
        want_g = np.stack([fd(f, b) for b in batch])
        vf, vg = npfunc.vmap(f), npfunc.vmap(npfunc.grad(f))
        jvg = npfunc.jit(npfunc.vmap(npfunc.grad(f))) if jit else vg
        for _ in range(reps):
            assert_same(vf(batch), want_v)
            assert_deriv(vg(batch), want_g, rtol=rtol, atol=atol)
            assert_deriv(jvg(batch), want_g, rtol=rtol, atol=atol)
            assert_deriv(jvg(batch[::-1].copy()), want_g[::-1], rtol=rtol, atol=atol)


def _flat(out):
    parts = out.values() if isinstance(out, dict) else out if isinstance(out, tuple) else [out]
    return np.concatenate([np.ravel(np.asarray(p, dtype=float)) for p in parts])


def check_vector(f, x, x_new, batch=None, rtol=1e-6, atol=1e-8, reps=5, jit=True):
    """f maps an array to an array, tuple or dict: jit records and replays (per entry type,
    dtype, shape, value); jacrev, jacfwd, jvp and vjp of the flattened outputs against
    five-point differences ``reps`` times on both inputs, bit for bit from call to call;
    vmap against the loop."""
    x, x_new = np.asarray(x), np.asarray(x_new)
    jf = npfunc.jit(f) if jit else npfunc.functionalize(f)
    for z in (x, x_new, x):
        got, want = jf(z), f(z)
        assert type(got) is type(want)
        if isinstance(want, dict):
            assert list(got) == list(want)
            for k in want:
                assert_same(got[k], want[k])
        elif isinstance(want, tuple):
            for a, b in zip(got, want):
                assert_same(a, b)
        else:
            assert_same(got, want)
    ff = lambda z: _flat(f(z))
    refs = {}
    for name, z in (("x", x), ("new", x_new)):
        J = fd(ff, z)
        v = np.linspace(0.3, -0.7, z.size).reshape(z.shape)
        u = np.linspace(-1.0, 1.0, J.shape[0])
        refs[name] = (z, J, v, u)
    jr, jfw = npfunc.jacrev(ff), npfunc.jacfwd(ff)
    first = {}
    for _ in range(reps):
        for name, (z, J, v, u) in refs.items():
            _, jv = npfunc.jvp(ff, (z,), (v,))
            _, pull = npfunc.vjp(ff, z)
            outs = {"jacrev": (jr(z), J), "jacfwd": (jfw(z), J), "jvp": (jv, np.tensordot(J, v, axes=v.ndim)),
                    "vjp": (pull(u)[0], u @ J.reshape(J.shape[0], -1))}
            outs["vjp"] = (outs["vjp"][0].ravel(), outs["vjp"][1])
            for key, (got, want) in outs.items():
                assert_deriv(got, want, rtol=rtol, atol=atol)
                if (name, key) in first:
                    same_bits(got, first[(name, key)], (name, key))
                else:
                    first[(name, key)] = got
    if batch is not None:
        want = [f(b) for b in batch]
        vf = npfunc.vmap(f)
        for _ in range(3):
            got = vf(np.asarray(batch))
            if isinstance(want[0], dict):
                for k in want[0]:
                    assert_same(got[k], np.stack([w[k] for w in want]))
            elif isinstance(want[0], tuple):
                for i in range(len(want[0])):
                    assert_same(got[i], np.stack([w[i] for w in want]))
            else:
                assert_same(got, np.stack(want))


# ======================================================================================
# 1. life tables
# ======================================================================================

GM = np.array([0.7, 0.5, 1.1])          # A in 1e-3, B in 1e-4, c (the hazard's natural units)
GM_NEW = np.array([0.9, 0.4, 1.105])
GM_UNITS = np.array([1e-3, 1e-4, 1.0])


def gm_hazard(x, A, B, c):
    """Gompertz-Makeham force of mortality mu_x = A + B c^x."""
    return A + B * c ** x


def gm_survival(params, x, t):
    """t p_x under Gompertz-Makeham, closed form; params = [A, B, c]."""
    A, B, c = params[0], params[1], params[2]
    return np.exp(-A * t - B / np.log(c) * c ** x * (c ** t - 1.0))


def gm_life_table(params, x0=60, n=12, radix=100000.0):
    """One-year q_x from the closed form, l_x by a cumulative product, d_x by differences."""
    ages = np.arange(x0, x0 + n)
    px = gm_survival(params, ages, 1.0)
    qx = 1.0 - px
    lx = radix * np.concatenate([[1.0], np.cumprod(px)])
    dx = -np.diff(lx)
    return {"qx": qx, "lx": lx[:-1], "dx": dx}


def curtate_expectation(params, x0=60, omega=110):
    """e_x = sum_{k>=1} k p_x with the survival built year by year by cumprod."""
    ages = np.arange(x0, omega)
    px = gm_survival(params, ages, 1.0)
    kpx = np.cumprod(px)
    return np.sum(kpx)


def complete_expectation_quad(params, x=65.0):
    """Complete expectation of life by numerical integration of t p_x (scipy quad)."""
    val, _ = scipy.integrate.quad(lambda t: gm_survival(params, x, t), 0.0, 60.0)
    return val


def test_gompertz_makeham_survival_and_expectation_of_life():
    check_scalar(lambda u: gm_survival(u * GM_UNITS, 65.0, 10.0), GM, GM_NEW, batch=np.stack([GM, GM_NEW]))
    check_scalar(lambda u: curtate_expectation(u * GM_UNITS), GM, GM_NEW, batch=np.stack([GM, GM_NEW]))
    # the hazard integrates to -log(t p_x): d/dt of -log tpx is mu_{x+t}, by grad in t
    p = GM * GM_UNITS
    dlog = npfunc.grad(lambda t: -np.log(gm_survival(p, 65.0, t)))
    for t in (0.5, 3.0, 0.5, 3.0, 10.0):
        np.testing.assert_allclose(dlog(t), gm_hazard(65.0 + t, *p), rtol=1e-12)


def test_life_table_dict_under_jit_vmap_and_jacobians():
    check_vector(lambda u: gm_life_table(u * GM_UNITS), GM, GM_NEW, batch=np.stack([GM, GM_NEW]))


def test_complete_expectation_by_quad():
    """quad's Python float comes back as np.float64 from jit (documented); value SciPy's."""
    f = lambda u: complete_expectation_quad(u * GM_UNITS)
    assert type(f(GM)) is float
    got = npfunc.jit(f)(GM)
    assert type(got) is np.float64 and got == f(GM)
    check_scalar(f, GM, GM_NEW, hess=False, reps=2)


def life_table_loop(qx, radix=1.0, like=None):
    """l_x written year by year into a preallocated column (the classic spreadsheet);
    like=qx makes the column traced from the start (a plain one takes traced writes too)."""
    n = len(qx)
    lx = np.empty(n + 1, like=like)
    lx[0] = radix
    for k in range(n):
        lx[k + 1] = lx[k] * (1.0 - qx[k])
    return lx


QX = np.array([0.01, 0.015, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.35, 1.0])
QX_NEW = QX * np.r_[np.full(9, 1.1), 1.0]


def test_life_table_into_a_plain_preallocated_column_matches_like_fix():
    # lx = np.empty(n + 1) made in the function takes the traced l_x, as the like= column does
    check_vector(life_table_loop, QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    f = lambda q: life_table_loop(q, like=q)
    np.testing.assert_array_equal(f(QX), life_table_loop(QX))
    check_vector(f, QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jac(life_table_loop)(QX), jac(f)(QX), rtol=1e-14, atol=1e-300)


def uniform_fractional_ages(qx, s):
    """s q_x under UDD and constant force, a comparison between fractional-age assumptions."""
    udd = s * qx
    cf = 1.0 - (1.0 - qx) ** s
    return np.array([udd, cf, cf - udd])


def select_ultimate(qx_ult, sel_factors, like=None):
    """Select table: the first years multiplied in place by selection factors, on a copy."""
    q = np.array(qx_ult, like=like)
    q[: len(sel_factors)] *= sel_factors
    return q


def test_fractional_ages_and_select_table():
    check_vector(lambda q: uniform_fractional_ages(q, 0.5), QX[:4], QX_NEW[:4], batch=np.stack([QX[:4], QX_NEW[:4]]))
    check_scalar(lambda q: uniform_fractional_ages(q, 0.5)[2], np.float64(0.04), np.float64(0.05), second=True)
    s = np.array([0.6, 0.8])
    with pytest.raises(UnsupportedOperationError, match=r"np.array\(a0, like=t\)"):
        npfunc.grad(lambda s: np.sum(select_ultimate(QX, s)))(s)
    keep = QX.copy()
    check_vector(lambda s: select_ultimate(QX, s, like=s), s, np.array([0.5, 0.9]),
                 batch=np.array([[0.6, 0.8], [0.5, 0.9]]))
    np.testing.assert_array_equal(QX, keep)   # the ultimate table is untouched


def gm_life_table_f32(params, n=10):
    """One-year survival in float32 (a compact table), cumulative by cumprod."""
    ages = np.arange(60, 60 + n, dtype=np.float32)
    mu = params[0] + params[1] * params[2] ** ages
    return np.cumprod(np.exp(-mu))


def test_float32_life_table_stays_float32():
    p = np.array([7e-4, 5e-5, 1.1], dtype=np.float32)
    p2 = np.array([8e-4, 4e-5, 1.1], dtype=np.float32)
    want = gm_life_table_f32(p)
    assert want.dtype == np.float32
    jf = npfunc.jit(gm_life_table_f32)
    for z in (p, p2, p):
        assert_same(jf(z), gm_life_table_f32(z), rtol=1e-6)
    J64 = npfunc.jacrev(gm_life_table_f32)(p.astype(np.float64))
    first = None
    for _ in range(5):
        for jac in (npfunc.jacrev, npfunc.jacfwd):
            J = jac(gm_life_table_f32)(p)
            assert J.dtype == np.float32
            np.testing.assert_allclose(J, J64, rtol=1e-4)
            if first is not None and jac is npfunc.jacrev:
                same_bits(J, first, "jacrev f32")
            first = J if jac is npfunc.jacrev else first
    assert_same(npfunc.vmap(gm_life_table_f32)(np.stack([p, p2])), np.stack([want, gm_life_table_f32(p2)]),
                rtol=1e-6)


def kaplan_meier(times, events):
    """Kaplan-Meier product-limit on distinct sorted times; S at each time."""
    n = len(times)
    at_risk = n - np.arange(n)
    return np.cumprod(1.0 - events / at_risk)


def nelson_aalen(times, events):
    n = len(times)
    at_risk = n - np.arange(n)
    return np.cumsum(events / at_risk)


def multiple_decrement(q_death, q_lapse):
    """Associated single-decrement rates to the multiple-decrement table (UDD in the table)."""
    p_tau = (1 - q_death) * (1 - q_lapse)
    q_tau = 1 - p_tau
    qd = q_tau * np.log(1 - q_death) / np.log(p_tau)
    return np.stack([qd, q_tau - qd])


def test_kaplan_meier_nelson_aalen_and_decrements():
    t = np.arange(6.0)
    ev = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.7])        # partial weights: a weighted KM
    ev2 = np.array([1.0, 1.0, 0.0, 1.0, 0.5, 0.0])
    check_vector(lambda e: kaplan_meier(t, e), ev, ev2)
    check_vector(lambda e: nelson_aalen(t, e), ev, ev2)
    got = npfunc.vmap(kaplan_meier, in_dims=(None, 1))(t, np.stack([ev, ev2], axis=1))
    assert_same(got, np.stack([kaplan_meier(t, ev), kaplan_meier(t, ev2)]))
    q = np.array([0.01, 0.02, 0.1, 0.08])
    check_vector(lambda q: multiple_decrement(q[:2], q[2:]), q, q * 1.2, batch=np.stack([q, q * 1.2]))


def piecewise_hazard_survival(rates, t, piecewise=np.piecewise):
    """Piecewise-constant hazard on [0,1), [1,3), [3,inf): survival from the cumulative hazard."""
    H = piecewise(t, [t < 1, (t >= 1) & (t < 3), t >= 3],
                  [lambda s: rates[0] * s,
                   lambda s: rates[0] + rates[1] * (s - 1),
                   lambda s: rates[0] + 2 * rates[1] + rates[2] * (s - 3)])
    return np.exp(-H)


def test_piecewise_hazard():
    t = np.array([0.5, 2.0, 4.0])
    r = np.array([0.01, 0.02, 0.05])
    # traced times: np.piecewise dispatches to npfunc
    check_vector(lambda s: piecewise_hazard_survival(r, s), t, t + 0.3, batch=np.stack([t, t + 0.3]))
    # plain times, traced rates: NumPy's own piecewise writes into a plain array; refused,
    # naming npfunc.numpy.piecewise, which works
    with pytest.raises(ConcretizationError, match=r"npfunc.numpy.piecewise"):
        npfunc.jacrev(piecewise_hazard_survival)(r, t)
    f = lambda q: piecewise_hazard_survival(q, t, fnp.piecewise)
    assert_same(f(r), piecewise_hazard_survival(r, t))
    check_vector(f, r, r * 1.5, batch=np.stack([r, r * 1.5]))


def survival_interp(ages, lx, x):
    """l_x at fractional ages by a cubic spline of log l_x."""
    cs = scipy.interpolate.CubicSpline(ages, np.log(lx))
    return np.exp(cs(x))


def test_fractional_ages_by_cubic_spline():
    ages = np.arange(60.0, 66.0)
    lx = np.array([1.0, 0.99, 0.975, 0.955, 0.93, 0.9])
    x = np.array([60.5, 62.25])
    check_vector(lambda l: survival_interp(ages, l, x), lx, lx ** 1.1, batch=np.stack([lx, lx ** 1.1]))
    check_vector(lambda z: survival_interp(ages, lx, z), x, x + 0.4)
    got = npfunc.vmap(survival_interp, in_dims=(None, None, 0))(ages, lx, np.stack([x, x + 1]))
    assert_same(got, np.stack([survival_interp(ages, lx, x), survival_interp(ages, lx, x + 1)]))


# ======================================================================================
# 2. annuities, insurances, reserves
# ======================================================================================


def annuity_due_certain(i, n=20):
    v = 1.0 / (1.0 + i)
    return np.sum(v ** np.arange(n))


def annuity_immediate_closed(i, n=20):
    return (1.0 - (1.0 + i) ** (-n)) / i


def test_annuities_certain_and_python_float_types():
    check_scalar(annuity_due_certain, np.float64(0.04), np.float64(0.05), second=True, batch=np.array([0.03, 0.05]))
    check_scalar(annuity_immediate_closed, np.float64(0.04), np.float64(0.05), second=True,
                 batch=np.array([0.03, 0.05]))
    # a Python float in, a Python float out: jit as plain NumPy
    assert type(annuity_immediate_closed(0.04)) is float
    jf = npfunc.jit(annuity_immediate_closed)
    for i in (0.04, 0.05, 0.04):
        assert_same(jf(i), annuity_immediate_closed(i))
    assert_same(npfunc.functionalize(annuity_immediate_closed)(0.04), annuity_immediate_closed(0.04))
    # a_due = (1 + i) a_immediate
    np.testing.assert_allclose(npfunc.grad(lambda i: (1 + i) * annuity_immediate_closed(i))(0.04),
                               npfunc.grad(annuity_due_certain)(0.04), rtol=1e-12)


def whole_life_apv(qx, i):
    """A_x = sum_k v^{k+1} k p_x q_{x+k} (the last q is 1)."""
    px = 1.0 - qx
    kpx = np.concatenate([[1.0], np.cumprod(px[:-1])])
    v = 1.0 / (1.0 + i)
    disc = v ** np.arange(1, len(qx) + 1)
    return np.sum(disc * kpx * qx)


def life_annuity_due(qx, i):
    px = 1.0 - qx
    kpx = np.concatenate([[1.0], np.cumprod(px[:-1])])
    v = 1.0 / (1.0 + i)
    return np.dot(v ** np.arange(len(qx)), kpx)


def net_level_premium(qx, i, benefit=1000.0):
    return benefit * whole_life_apv(qx, i) / life_annuity_due(qx, i)


def premium_report(qx, i, benefit=1000.0, expense_load=0.05):
    """A dict of results: APVs, net and gross premiums."""
    A = whole_life_apv(qx, i)
    a = life_annuity_due(qx, i)
    P = benefit * A / a
    return {"A": A, "a_due": a, "net": P, "gross": P / (1.0 - expense_load)}


def test_whole_life_insurance_annuity_and_premium():
    check_scalar(lambda i: whole_life_apv(QX, i), np.float64(0.04), np.float64(0.05), second=True,
                 batch=np.array([0.03, 0.04]))
    check_scalar(lambda q: whole_life_apv(q, 0.04), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    check_scalar(lambda q: net_level_premium(q, 0.04), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    # the identity A = 1 - d a_due holds, and so do its derivatives in i
    d = lambda i: i / (1 + i)
    ident = lambda i: whole_life_apv(QX, i) - (1 - d(i) * life_annuity_due(QX, i))
    assert abs(ident(0.04)) < 1e-14
    assert abs(npfunc.grad(ident)(0.04)) < 1e-13
    assert abs(npfunc.grad(npfunc.grad(ident))(0.04)) < 1e-12


def test_premium_report_dict():
    check_vector(lambda q: premium_report(q, 0.04), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    g = npfunc.jacrev(premium_report, argnums=1)(QX, 0.04)
    assert list(g) == ["A", "a_due", "net", "gross"]
    for k in g:
        np.testing.assert_allclose(g[k], fd(lambda i: premium_report(QX, i[0])[k], np.array([0.04]))[0], rtol=1e-7)


def endowment_insurance(qx, i, n):
    """n-year endowment: term insurance (a Python loop) plus the pure endowment."""
    px = 1.0 - qx[:n]
    kpx = np.concatenate([[1.0], np.cumprod(px)])
    v = 1.0 / (1.0 + i)
    term = 0.0
    for k in range(n):
        term = term + v ** (k + 1) * kpx[k] * qx[k]
    return term + v ** n * kpx[n]


def prospective_reserves(qx, i, benefit=1.0):
    """kV for k = 0..n-1 by the prospective formula, collected in a list."""
    P = benefit * whole_life_apv(qx, i) / life_annuity_due(qx, i)
    reserves = []
    for k in range(len(qx)):
        reserves.append(benefit * whole_life_apv(qx[k:], i) - P * life_annuity_due(qx[k:], i))
    return np.array(reserves)


def recursive_reserves(qx, i, P, like=None):
    """Fackler's recursion (kV + P)(1+i) = q + p (k+1)V, into a preallocated array."""
    n = len(qx)
    V = np.zeros(n + 1, like=like)
    for k in range(n):
        V[k + 1] = ((V[k] + P) * (1.0 + i) - qx[k]) / (1.0 - qx[k])
    return V


def test_endowment_and_reserves():
    check_scalar(lambda q: endowment_insurance(q, 0.04, 5), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    check_vector(lambda q: prospective_reserves(q, 0.04), QX, QX_NEW, batch=np.stack([QX, QX_NEW]), reps=3)
    # V = np.zeros(n + 1) made in the function takes the traced recursion, as the like= V does
    check_vector(lambda q: recursive_reserves(q[:-1], 0.04, 0.05), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    check_vector(lambda q: recursive_reserves(q[:-1], 0.04, 0.05, like=q), QX, QX_NEW, batch=np.stack([QX, QX_NEW]))
    # recursive and prospective reserves agree at the net premium, and so do their Jacobians
    # (the recursion stops before the last year, whose q = 1 divides by p = 0)
    rec = lambda q: recursive_reserves(q[:-1], 0.04, whole_life_apv(q, 0.04) / life_annuity_due(q, 0.04), like=q)
    np.testing.assert_allclose(rec(QX), prospective_reserves(QX, 0.04), atol=1e-12)
    np.testing.assert_allclose(npfunc.jacrev(rec)(QX), npfunc.jacfwd(lambda q: prospective_reserves(q, 0.04))(QX),
                               atol=1e-10)
    rec_plain = lambda q: recursive_reserves(q[:-1], 0.04, whole_life_apv(q, 0.04) / life_annuity_due(q, 0.04))
    np.testing.assert_array_equal(rec_plain(QX), rec(QX))
    np.testing.assert_allclose(npfunc.jacrev(rec_plain)(QX), npfunc.jacrev(rec)(QX), rtol=1e-13, atol=1e-15)


def thiele_euler(mu_params, delta, P, T=10.0, steps=50):
    """Thiele's differential equation dV/dt = delta V + P - mu (1 - V), by Euler steps."""
    A, B, c = mu_params
    h = T / steps
    V = 0.0
    for k in range(steps):
        mu = A + B * c ** (50.0 + k * h)
        V = V + h * (delta * V + P - mu * (1.0 - V))
    return V


def thiele_ivp(delta, P=0.02, A=0.0007, B=5e-5, c=1.1, T=10.0, t_eval=None):
    """Thiele's equation for a term insurance, backward from V(T) = 0, with solve_ivp."""
    def rhs(t, V):
        mu = A + B * c ** (50.0 + t)
        return delta * V + P - mu * (1.0 - V)
    sol = scipy.integrate.solve_ivp(rhs, (T, 0.0), np.array([0.0]), rtol=1e-10, atol=1e-12, t_eval=t_eval)
    return sol.y[0, -1]


def test_thiele_equation():
    mu = (0.0007, 5e-5, 1.1)
    check_scalar(lambda d: thiele_euler(mu, d, 0.01), np.float64(0.04), np.float64(0.05), second=True)
    assert type(thiele_euler(mu, 0.04, 0.01)) is float
    assert type(npfunc.jit(lambda d: thiele_euler(mu, d, 0.01))(0.04)) is float
    with pytest.raises(UnsupportedOdeError, match=r"t_eval"):
        npfunc.jit(thiele_ivp)(np.float64(0.04))
    f = lambda d: thiele_ivp(d, t_eval=np.array([0.0]))
    assert_same(npfunc.jit(f)(np.float64(0.04)), thiele_ivp(np.float64(0.04)), rtol=1e-9)
    for d in (0.04, 0.05, 0.04):
        np.testing.assert_allclose(npfunc.grad(thiele_ivp)(d), fd(lambda x: thiele_ivp(x[0]), np.array([d]))[0],
                                   rtol=1e-6)
    np.testing.assert_allclose(npfunc.vmap(f)(np.array([0.04, 0.05])), [f(0.04), f(0.05)], rtol=1e-9)


def continuous_annuity(delta, mu):
    """Constant force model: a_bar = 1 / (delta + mu), A_bar = mu / (mu + delta)."""
    a_bar = 1.0 / (delta + mu)
    A_bar = mu / (mu + delta)
    return np.array([a_bar, A_bar, A_bar + delta * a_bar])


def interest_conversions(i):
    """d, delta, i^(12), d^(12) from the effective rate."""
    d = i / (1 + i)
    delta = np.log1p(i)
    i12 = 12 * ((1 + i) ** (1 / 12) - 1)
    d12 = 12 * (1 - (1 + i) ** (-1 / 12))
    return np.array([d, delta, i12, d12])


def continuous_annuity_simpson(delta, mu=0.02, T=30.0, n=61):
    t = np.linspace(0.0, T, n)
    return scipy.integrate.simpson(np.exp(-(delta + mu) * t), x=t)


def continuous_annuity_trapz(delta, mu=0.02, T=30.0, n=61):
    t = np.linspace(0.0, T, n)
    return np.trapezoid(np.exp(-(delta + mu) * t), t)


def test_interest_theory_and_continuous_annuities():
    p = np.array([0.04, 0.02])
    check_vector(lambda p: continuous_annuity(p[0], p[1]), p, p + 0.01, batch=np.stack([p, p + 0.01]))
    check_scalar(lambda d: continuous_annuity(d, 0.02)[0], np.float64(0.04), np.float64(0.05), second=True)
    check_vector(lambda i: interest_conversions(i[0]), np.array([0.04]), np.array([0.05]))
    check_scalar(lambda i: interest_conversions(i)[2], np.float64(0.04), np.float64(0.05), second=True)
    # A_bar + delta a_bar = 1 whatever delta: every derivative 0
    assert_deriv(npfunc.jacfwd(lambda p: continuous_annuity(p[0], p[1])[2])(p), np.zeros(2), atol=1e-14)
    check_scalar(continuous_annuity_simpson, np.float64(0.04), np.float64(0.05), second=True,
                 batch=np.array([0.03, 0.05]))
    check_scalar(continuous_annuity_trapz, np.float64(0.04), np.float64(0.05), second=True)


def macaulay_duration(cashflows, times, y):
    disc = np.exp(-y * times)
    pv = cashflows * disc
    return np.sum(times * pv) / np.sum(pv)


def pv_on_yield_curve(cashflows, times, knots, zero_rates):
    """Liability PV discounted on an interpolated zero curve (np.interp)."""
    z = np.interp(times, knots, zero_rates)
    return np.sum(cashflows * np.exp(-z * times))


def test_duration_and_yield_curve():
    cf, t = np.array([5.0, 5.0, 105.0]), np.array([1.0, 2.0, 3.0])
    f = lambda y: macaulay_duration(cf, t, y)
    check_scalar(f, np.float64(0.03), np.float64(0.05), second=True, batch=np.array([0.03, 0.05]))
    # the price's log-derivative in the continuously compounded yield is minus the duration
    price = lambda y: np.sum(cf * np.exp(-y * t))
    for y in (0.03, 0.05, 0.03, 0.05, 0.07):
        np.testing.assert_allclose(-npfunc.grad(price)(y) / price(y), f(y), rtol=1e-13)
    knots = np.array([0.0, 2.0, 5.0])
    zr = np.array([0.01, 0.02, 0.03])
    check_scalar(lambda z: pv_on_yield_curve(cf, np.array([1.0, 2.5, 3.0]), knots, z), zr, zr + 0.005,
                 batch=np.stack([zr, zr + 0.005]))
    got = npfunc.vmap(pv_on_yield_curve, in_dims=(None, None, None, 1))(cf, t, knots, np.stack([zr, zr * 2], axis=1))
    assert_same(got, np.stack([pv_on_yield_curve(cf, t, knots, zr), pv_on_yield_curve(cf, t, knots, zr * 2)]))


def irr_newton(cashflows):
    """Internal rate of return by scipy.optimize.newton on the equation of value."""
    t = np.arange(len(cashflows))
    return scipy.optimize.newton(lambda r: np.sum(cashflows / (1 + r) ** t), 0.05)


def irr_roots(cashflows):
    """IRR from np.roots of the polynomial in v, the root nearest 0.95."""
    r = np.roots(cashflows[::-1])
    v = r[np.argmin(np.abs(r.imag) + np.abs(r.real - 0.95))].real
    return 1.0 / v - 1.0


def test_internal_rate_of_return():
    cf = np.array([-100.0, 30.0, 40.0, 50.0])
    cf2 = np.array([-100.0, 35.0, 40.0, 45.0])
    check_scalar(irr_newton, cf, cf2, batch=np.stack([cf, cf2]))
    with pytest.raises(ConcretizationError, match=r"call np.roots outside jit|np.roots"):
        npfunc.jit(irr_roots)(cf)
    for _ in range(5):
        for c in (cf, cf2):
            assert_deriv(npfunc.grad(irr_roots)(c), fd(irr_roots, c))
            np.testing.assert_allclose(npfunc.grad(irr_roots)(c), npfunc.grad(irr_newton)(c), rtol=1e-9)


def annuity_f32(i, n=20):
    v = np.float32(1.0) / (np.float32(1.0) + i)
    return np.sum(v ** np.arange(n, dtype=np.float32))


def test_float32_annuity():
    i = np.float32(0.04)
    want = annuity_f32(i)
    assert type(want) is np.float32
    jf = npfunc.jit(annuity_f32)
    for z in (i, np.float32(0.05), i):
        assert_same(jf(z), annuity_f32(z), rtol=1e-6)
    g64 = npfunc.grad(annuity_f32)(np.float64(0.04))
    gg64 = npfunc.grad(npfunc.grad(annuity_f32))(np.float64(0.04))
    first = {}
    for _ in range(5):
        outs = {"grad": npfunc.grad(annuity_f32)(i), "gg": npfunc.grad(npfunc.grad(annuity_f32))(i),
                "vmapgrad": npfunc.vmap(npfunc.grad(annuity_f32))(np.array([0.04, 0.05], np.float32))}
        for k, o in outs.items():
            assert np.asarray(o).dtype == np.float32, k
            if k in first:
                same_bits(o, first[k], k)
            first[k] = o
    np.testing.assert_allclose(first["grad"], g64, rtol=1e-5)
    np.testing.assert_allclose(first["gg"], gg64, rtol=1e-5)
    assert type(first["grad"]) is np.float32


# ======================================================================================
# 3. premium principles and layers
# ======================================================================================

LOSSES = np.array([0.0, 1.0, 5.0, 20.0])
PROBS = np.array([0.6, 0.25, 0.1, 0.05])


def exponential_premium(losses, probs, a):
    """Zero-utility premium (1/a) log E[exp(aX)], by logsumexp with b=."""
    return sps.logsumexp(a * losses, b=probs) / a


def esscher_premium(losses, probs, h):
    w = probs * np.exp(h * losses)
    return np.sum(losses * w) / np.sum(w)


def sd_premium(losses, probs, alpha):
    mean = np.sum(probs * losses)
    var = np.sum(probs * (losses - mean) ** 2)
    return mean + alpha * np.sqrt(var)


def test_premium_principles():
    check_scalar(lambda a: exponential_premium(LOSSES, PROBS, a), np.float64(0.1), np.float64(0.2), second=True,
                 batch=np.array([0.1, 0.2]))
    check_scalar(lambda h: esscher_premium(LOSSES, PROBS, h), np.float64(0.1), np.float64(0.2), second=True)
    check_scalar(lambda p: sd_premium(LOSSES, p, 0.3), PROBS, np.array([0.5, 0.3, 0.1, 0.1]),
                 batch=np.stack([PROBS, np.array([0.5, 0.3, 0.1, 0.1])]))
    # the Esscher premium's derivative in h is the Esscher variance
    for h in (0.1, 0.2, 0.1, 0.2, 0.3):
        w = PROBS * np.exp(h * LOSSES)
        w = w / w.sum()
        var = np.sum(w * LOSSES ** 2) - np.sum(w * LOSSES) ** 2
        np.testing.assert_allclose(npfunc.grad(esscher_premium, argnums=2)(LOSSES, PROBS, h), var, rtol=1e-12)
    # per-policy premiums: vmap over the loss vectors (in_dims=(0, None, None))
    L = np.stack([LOSSES, 2 * LOSSES, LOSSES + 1])
    got = npfunc.vmap(exponential_premium, in_dims=(0, None, None))(L, PROBS, 0.1)
    assert_same(got, np.stack([exponential_premium(l, PROBS, 0.1) for l in L]))


def stop_loss_lognormal(params, d):
    """E[(X - d)+] for X ~ lognormal(mu, sigma), closed form with the normal cdf."""
    mu, sigma = params[0], params[1]
    d1 = (mu + sigma ** 2 - np.log(d)) / sigma
    d2 = d1 - sigma
    return np.exp(mu + 0.5 * sigma ** 2) * stats.norm.cdf(d1) - d * stats.norm.cdf(d2)


def limited_expected_value_lognorm(params, u):
    """E[min(X, u)] for a lognormal: the mean times Phi(...) plus u times the survival."""
    mu, sigma = params[0], params[1]
    z = (np.log(u) - mu) / sigma
    return np.exp(mu + sigma ** 2 / 2) * stats.norm.cdf(z - sigma) + u * stats.norm.sf(z)


def stop_loss_empirical(sample, d):
    return np.mean(np.maximum(sample - d, 0.0))


def test_stop_loss_and_limited_expected_values():
    p, p2 = np.array([1.0, 0.8]), np.array([1.2, 0.6])
    check_scalar(lambda q: stop_loss_lognormal(q, 5.0), p, p2, batch=np.stack([p, p2]))
    check_scalar(lambda q: limited_expected_value_lognorm(q, 5.0), p, p2, batch=np.stack([p, p2]))
    # E[min(X, d)] + E[(X - d)+] = E[X], and the derivative in d of the stop-loss is -S(d)
    tot = lambda q: limited_expected_value_lognorm(q, 5.0) + stop_loss_lognormal(q, 5.0)
    np.testing.assert_allclose(npfunc.grad(tot)(p), [np.exp(1.32), 0.8 * np.exp(1.32)], rtol=1e-12)
    for d in (5.0, 3.0, 5.0, 3.0, 8.0):
        np.testing.assert_allclose(npfunc.grad(stop_loss_lognormal, argnums=1)(p, d),
                                   -stats.lognorm.sf(d, 0.8, scale=np.e), rtol=1e-12)
    sample = np.array([0.5, 2.0, 3.5, 7.0, 1.2])
    check_scalar(lambda d: stop_loss_empirical(sample, d), np.float64(2.5), np.float64(3.0), second=True,
                 batch=np.array([2.5, 3.0]))


def layer_cost_gamma(params, lower, upper):
    """Expected loss in the layer (lower, upper] of a gamma severity, by quad of the sf."""
    shape, scale = params[0], params[1]
    val, _ = scipy.integrate.quad(lambda x: stats.gamma.sf(x, shape, scale=scale), lower, upper)
    return val


def gamma_lev(params, u):
    """Limited expected value of a gamma severity via the regularised incomplete gamma."""
    a, theta = params[0], params[1]
    return a * theta * sps.gammainc(a + 1, u / theta) + u * (1 - sps.gammainc(a, u / theta))


def test_gamma_layer_by_quad_and_by_gammainc():
    p, p2 = np.array([2.0, 1.5]), np.array([2.5, 1.2])
    check_scalar(lambda q: layer_cost_gamma(q, 1.0, 6.0), p, p2, hess=False, reps=2)
    check_scalar(lambda q: gamma_lev(q, 5.0), p, p2, batch=np.stack([p, p2]))
    # the layer is the difference of limited expected values, derivatives included
    layer = lambda q: layer_cost_gamma(q, 1.0, 6.0)
    levs = lambda q: gamma_lev(q, 6.0) - gamma_lev(q, 1.0)
    np.testing.assert_allclose(layer(p), levs(p), rtol=1e-10)
    np.testing.assert_allclose(npfunc.grad(layer)(p), npfunc.grad(levs)(p), rtol=1e-8)


def experience_rating(claims, full_standard=1082.0):
    """Limited-fluctuation credibility: Z = min(1, sqrt(n / n_full))."""
    return np.minimum(1.0, np.sqrt(np.sum(claims) / full_standard))


def test_limited_fluctuation_credibility():
    check_scalar(experience_rating, np.array([300.0, 400.0]), np.array([200.0, 350.0]),
                 batch=np.array([[300.0, 400.0], [200.0, 350.0]]))
    # full credibility: Z = 1 and derivative 0 (np.minimum picks the constant)
    assert experience_rating(np.array([800.0, 400.0])) == 1.0
    assert_same(npfunc.grad(experience_rating)(np.array([800.0, 400.0])), np.zeros(2))


# ======================================================================================
# 4. loss distributions
# ======================================================================================

CLAIMS = np.array([1.2, 3.4, 0.7, 8.1, 2.2])
CLAIMS_NEW = np.array([1.3, 3.4, 0.9, 7.1, 2.2])


def lognorm_nll(params, x):
    mu, sigma = params[0], params[1]
    return -np.sum(stats.lognorm.logpdf(x, sigma, scale=np.exp(mu)))


def gamma_nll(params, x):
    log_shape, log_scale = params[0], params[1]
    return -np.sum(stats.gamma.logpdf(x, np.exp(log_shape), scale=np.exp(log_scale)))


def pareto_nll(params, x):
    """Single-parameter Pareto above a threshold (scipy.stats.pareto: b, scale)."""
    return -np.sum(stats.pareto.logpdf(x, params[0], scale=params[1]))


def weibull_censored_nll(params, t, failed):
    """Right-censored Weibull likelihood: logpdf for failures, logsf for suspensions."""
    k, lam = params[0], params[1]
    ll = np.where(failed, stats.weibull_min.logpdf(t, k, scale=lam), stats.weibull_min.logsf(t, k, scale=lam))
    return -np.sum(ll)


def mixture_exponential_loglik(w, rates, x):
    dens = w * rates * np.exp(-np.outer(x, rates))
    return np.sum(np.log(np.sum(dens, axis=1)))


def test_severity_likelihoods():
    check_scalar(lambda p: lognorm_nll(p, CLAIMS), np.array([0.8, 0.9]), np.array([0.6, 1.1]),
                 batch=np.array([[0.8, 0.9], [0.6, 1.1]]))
    check_scalar(lambda p: gamma_nll(p, CLAIMS), np.array([0.3, 0.8]), np.array([0.5, 0.6]),
                 batch=np.array([[0.3, 0.8], [0.5, 0.6]]))
    check_scalar(lambda p: pareto_nll(p, CLAIMS + 0.5), np.array([1.5, 1.0]), np.array([2.0, 1.1]),
                 batch=np.array([[1.5, 1.0], [2.0, 1.1]]))
    failed = np.array([1, 0, 1, 1, 0], bool)
    check_scalar(lambda p: weibull_censored_nll(p, CLAIMS, failed), np.array([1.5, 3.0]), np.array([2.0, 4.0]),
                 batch=np.array([[1.5, 3.0], [2.0, 4.0]]))
    check_scalar(lambda w: mixture_exponential_loglik(w, np.array([0.5, 2.0]), CLAIMS), np.array([0.3, 0.7]),
                 np.array([0.5, 0.5]), batch=np.array([[0.3, 0.7], [0.5, 0.5]]))
    # per-claim score contributions of the lognormal: vmap(grad) over claims (in_dims=(None, 0))
    per = npfunc.vmap(npfunc.grad(lambda p, x: -stats.lognorm.logpdf(x, p[1], scale=np.exp(p[0]))),
                      in_dims=(None, 0))(np.array([0.8, 0.9]), CLAIMS)
    np.testing.assert_allclose(per.sum(axis=0), npfunc.grad(lognorm_nll)(np.array([0.8, 0.9]), CLAIMS), rtol=1e-12)


def lognorm_moments_fit(x):
    """Method of moments for a lognormal: sigma^2 = log(1 + var / mean^2)."""
    m = np.mean(x)
    s2 = np.log1p(np.var(x) / m ** 2)
    return np.array([np.log(m) - s2 / 2, np.sqrt(s2)])


def weibull_fit_minimize(t, gtol=1e-5):
    """Weibull MLE by scipy.optimize.minimize on log-parameters (BFGS)."""
    def nll(theta):
        return -np.sum(stats.weibull_min.logpdf(t, np.exp(theta[0]), scale=np.exp(theta[1])))
    res = scipy.optimize.minimize(nll, np.array([0.0, np.log(np.mean(t))]), method="BFGS", options={"gtol": gtol})
    return np.exp(res.x)


def weibull_mle_shape(t):
    """Weibull MLE: the shape from its profile equation by brentq, the scale closed form."""
    logt = np.log(t)

    def profile(k):
        tk = t ** k
        return np.sum(tk * logt) / np.sum(tk) - 1.0 / k - np.mean(logt)

    k = scipy.optimize.brentq(profile, 0.1, 20.0)
    lam = np.mean(t ** k) ** (1.0 / k)
    return np.array([k, lam])


def test_fits_by_moments_profile_likelihood_and_bfgs():
    check_vector(lognorm_moments_fit, CLAIMS, CLAIMS_NEW, batch=np.stack([CLAIMS, CLAIMS_NEW]))
    check_vector(weibull_mle_shape, CLAIMS, CLAIMS_NEW, batch=np.stack([CLAIMS, CLAIMS_NEW]), reps=3)
    # BFGS to a gradient tolerance SciPy cannot reach: SciPy reports no convergence, npfunc
    # refuses the derivative, naming the fix
    t = np.array([1.2, 3.4, 1.7, 8.1, 2.2])
    assert not scipy.optimize.minimize(lambda th: -np.sum(stats.weibull_min.logpdf(
        t, np.exp(th[0]), scale=np.exp(th[1]))), np.array([0.0, np.log(t.mean())]), method="BFGS",
        options={"gtol": 1e-10}).success
    with pytest.raises(NonConvergedError, match=r"Fix the solve"):
        npfunc.jacrev(lambda t: weibull_fit_minimize(t, gtol=1e-10))(t)
    # converged: the implicit derivative of BFGS's optimum is the profile-likelihood MLE's
    assert_same(npfunc.jit(weibull_fit_minimize)(CLAIMS), weibull_fit_minimize(CLAIMS))
    exact = npfunc.jacrev(weibull_mle_shape)(CLAIMS)
    for _ in range(5):
        np.testing.assert_allclose(npfunc.jacrev(weibull_fit_minimize)(CLAIMS), exact, rtol=2e-4, atol=1e-5)


def claim_count_probs(lam):
    return stats.poisson.pmf(np.arange(6), lam)


def nbinom_prob_zero(params):
    return stats.nbinom.pmf(0, params[0], params[1])


def poisson_loglik(k, lam):
    return np.sum(k * np.log(lam) - lam - sps.gammaln(k + 1))


def test_claim_counts():
    check_vector(lambda l: claim_count_probs(l[0]), np.array([1.3]), np.array([2.1]),
                 batch=np.array([[1.3], [2.1]]))
    check_scalar(nbinom_prob_zero, np.array([2.0, 0.4]), np.array([3.0, 0.5]), batch=np.array([[2.0, 0.4], [3.0, 0.5]]))
    k = np.array([0.0, 2.0, 1.0, 3.0])
    check_scalar(lambda l: poisson_loglik(k, l), np.float64(1.3), np.float64(1.9), second=True,
                 batch=np.array([1.3, 1.9]))
    # the MLE is the mean: the score vanishes there, the information is n / lambda
    assert abs(npfunc.grad(lambda l: poisson_loglik(k, l))(k.mean())) < 1e-14
    np.testing.assert_allclose(npfunc.hessian(lambda l: poisson_loglik(k, l))(k.mean()), -len(k) / k.mean(),
                               rtol=1e-13)


# ======================================================================================
# 5. risk measures
# ======================================================================================


def var_es_lognormal(params, alpha=0.995):
    mu, sigma = params[0], params[1]
    var = stats.lognorm.ppf(alpha, sigma, scale=np.exp(mu))
    es = np.exp(mu + sigma ** 2 / 2) * stats.norm.cdf(sigma - stats.norm.ppf(alpha)) / (1 - alpha)
    return np.array([var, es])


def var_gamma(params, alpha=0.99):
    return stats.gamma.ppf(alpha, params[0], scale=params[1])


def var_gamma_isf(params, alpha=0.99):
    return stats.gamma.isf(1 - alpha, params[0], scale=params[1])


def var_weibull_isf(params, tail=0.01):
    return stats.weibull_min.isf(tail, params[0], scale=params[1])


def tvar_lomax(params, alpha=0.99):
    """Lomax (Pareto II) TVaR: VaR by scipy.stats.lomax.ppf plus the mean excess."""
    a, scale = params[0], params[1]
    var = stats.lomax.ppf(alpha, a, scale=scale)
    return var + (var + scale) / (a - 1)


def test_value_at_risk_and_expected_shortfall():
    p, p2 = np.array([1.0, 0.8]), np.array([1.2, 0.6])
    check_vector(var_es_lognormal, p, p2, batch=np.stack([p, p2]))
    g, g2 = np.array([2.0, 1.5]), np.array([3.0, 1.0])
    check_scalar(var_gamma, g, g2, batch=np.stack([g, g2]))
    check_scalar(lambda q: stats.weibull_min.ppf(0.99, q[0], scale=q[1]), g, g2, batch=np.stack([g, g2]))


def test_var_by_isf():
    """isf was refused for every distribution but norm: the twins have it now (SciPy's formulas)."""
    g, g2 = np.array([2.0, 1.5]), np.array([3.0, 1.0])
    check_scalar(var_gamma_isf, g, g2, batch=np.stack([g, g2]))
    check_scalar(var_weibull_isf, g, g2, batch=np.stack([g, g2]))
    np.testing.assert_allclose(var_gamma_isf(g), var_gamma(g), rtol=1e-12)
    # far in the tail isf keeps what ppf(1 - q) loses; npfunc's is SciPy's there too
    tail = lambda q: stats.gamma.isf(1e-20, q[0], scale=q[1])
    assert_same(npfunc.jit(tail)(g), tail(g))
    assert_deriv(npfunc.grad(tail)(g), fd(tail, g))
    with pytest.raises(UnsupportedOperationError, match=r"vonmises.ppf\(1 - q"):
        npfunc.grad(lambda k: stats.vonmises.isf(0.1, k))(2.0)


def test_lomax_tvar():
    """scipy.stats.lomax was refused under every transform: it has a twin now."""
    p, p2 = np.array([3.0, 10.0]), np.array([2.5, 12.0])
    check_scalar(tvar_lomax, p, p2, batch=np.stack([p, p2]))
    x = np.array([0.5, 3.0, 12.0, 40.0])
    nll = lambda q: -np.sum(stats.lomax.logpdf(x, q[0], scale=q[1]))
    check_scalar(nll, p, p2, batch=np.stack([p, p2]))
    for m in ("cdf", "sf", "logsf", "pdf"):
        f = lambda q: np.sum(getattr(stats.lomax, m)(x, q[0], scale=q[1]))
        assert_same(npfunc.jit(f)(p), f(p))
        assert_deriv(npfunc.grad(f)(p), fd(f, p))


def empirical_var_es(losses, alpha=0.9):
    srt = np.sort(losses)
    k = int(np.ceil(alpha * len(losses))) - 1
    return srt[k], np.mean(srt[k:])


def es_normal(mu, sigma, alpha=0.99):
    z = stats.norm.ppf(alpha)
    return mu + sigma * stats.norm.pdf(z) / (1 - alpha)


def test_empirical_risk_measures():
    x = np.array([3.0, 1.0, 7.0, 2.0, 5.0, 11.0, 0.5, 4.0, 9.0, 6.5])
    x2 = np.array([3.5, 1.0, 7.0, 2.0, 5.0, 10.0, 0.5, 4.0, 9.0, 6.5])
    check_vector(empirical_var_es, x, x2, batch=np.stack([x, x2]))
    check_scalar(lambda z: np.quantile(z, 0.95), x[:7], x2[:7], batch=np.stack([x[:7], x2[:7]]))
    check_scalar(lambda a: es_normal(0.0, 1.0, a), np.float64(0.99), np.float64(0.975), second=True)


# ======================================================================================
# 6. credibility
# ======================================================================================

CRED = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, 5.0], [0.5, 1.0, 1.2], [6.0, 9.0, 4.0]])
CRED_NEW = np.array([[1.0, 2.5, 3.0], [4.0, 2.0, 5.0], [0.5, 1.0, 1.2], [6.0, 9.0, 4.5]])
EXPOSURE = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [3.0, 1.0, 2.0]])


def buhlmann(claims):
    """Buhlmann credibility premiums for r risks observed n years each."""
    r, n = claims.shape
    means = claims.mean(axis=1)
    overall = means.mean()
    epv = np.mean(np.var(claims, axis=1, ddof=1))
    vhm = np.var(means, ddof=1) - epv / n
    Z = n / (n + epv / vhm)
    return Z * means + (1 - Z) * overall


def buhlmann_straub(claims, weights):
    """Buhlmann-Straub with exposure weights (the Klugman formulas)."""
    r, n = claims.shape
    m_i = weights.sum(axis=1)
    m = m_i.sum()
    xbar_i = np.sum(weights * claims, axis=1) / m_i
    xbar = np.sum(m_i * xbar_i) / m
    v = np.sum(weights * (claims - xbar_i[:, None]) ** 2) / (r * (n - 1))
    a = (np.sum(m_i * (xbar_i - xbar) ** 2) - v * (r - 1)) / (m - np.sum(m_i ** 2) / m)
    Z = m_i / (m_i + v / a)
    return Z * xbar_i + (1 - Z) * xbar


def buhlmann_floor(claims, like=None):
    """Buhlmann with the usual floor: VHM estimated negative means no credibility."""
    n = claims.shape[1]
    epv = np.var(claims, axis=1, ddof=1).mean()
    vhm = max(np.var(claims.mean(axis=1), ddof=1) - epv / n, 0.0)
    if vhm == 0.0:
        return np.full(claims.shape[0], claims.mean(), like=like)
    Z = n / (n + epv / vhm)
    return Z * claims.mean(axis=1) + (1 - Z) * claims.mean()


def test_buhlmann_and_buhlmann_straub():
    check_vector(buhlmann, CRED, CRED_NEW, batch=np.stack([CRED, CRED_NEW]))
    check_scalar(lambda c: buhlmann(c)[0], CRED, CRED_NEW, batch=np.stack([CRED, CRED_NEW]))
    check_vector(lambda c: buhlmann_straub(c, EXPOSURE), CRED, CRED_NEW, batch=np.stack([CRED, CRED_NEW]))
    check_vector(lambda w: buhlmann_straub(CRED, w), EXPOSURE, EXPOSURE + 0.5)
    # equal exposures: Buhlmann-Straub is Buhlmann
    np.testing.assert_allclose(buhlmann_straub(CRED, np.ones_like(CRED)), buhlmann(CRED), rtol=1e-13)
    np.testing.assert_allclose(npfunc.jacrev(lambda c: buhlmann_straub(c, np.ones_like(c)))(CRED),
                               npfunc.jacrev(buhlmann)(CRED), rtol=1e-11, atol=1e-14)
    # vmap over portfolios stacked on the last axis
    got = npfunc.vmap(buhlmann, in_dims=2)(np.stack([CRED, CRED_NEW], axis=2))
    assert_same(got, np.stack([buhlmann(CRED), buhlmann(CRED_NEW)]))


def test_buhlmann_with_a_python_floor():
    check_vector(buhlmann_floor, CRED, CRED_NEW, jit=False)   # grad/jvp run the Python max on values
    with pytest.raises(ConcretizationError, match=r"np.where"):
        npfunc.jit(buhlmann_floor)(CRED)
    with pytest.raises(BatchedConversionError, match=r"np.where"):
        npfunc.vmap(buhlmann_floor)(np.stack([CRED, CRED_NEW]))
    # no heterogeneity: the floor's branch, the grand mean (derivative 1/12 each), by
    # np.full(n, <traced mean>) made in the function, as by its like= spelling
    flat = np.tile(np.array([[1.0, 2.0, 3.0]]), (4, 1))
    assert_same(buhlmann_floor(flat), np.full(4, 2.0))
    assert_same(buhlmann_floor(flat, like=flat), np.full(4, 2.0))
    for f in (buhlmann_floor, lambda c: buhlmann_floor(c, like=c)):
        for _ in range(5):
            np.testing.assert_allclose(npfunc.jacrev(f)(flat),
                                       np.broadcast_to(np.full((4, 3), 1 / 12), (4, 4, 3)), rtol=1e-15)
            np.testing.assert_allclose(npfunc.jacfwd(f)(flat),
                                       np.broadcast_to(np.full((4, 3), 1 / 12), (4, 4, 3)), rtol=1e-15)
        assert_same(npfunc.jvp(f, (flat,), (np.ones_like(flat),))[0], np.full(4, 2.0))


def poisson_gamma_credibility(counts, alpha, beta):
    """Posterior mean of a Poisson rate under a gamma(alpha, beta) prior."""
    return (alpha + np.sum(counts)) / (beta + len(counts))


def test_poisson_gamma_credibility():
    counts = np.array([0, 1, 0, 2])
    check_scalar(lambda a: poisson_gamma_credibility(counts, a, 4.0), np.float64(2.0), np.float64(3.0), second=True,
                 batch=np.array([2.0, 3.0]))


# ======================================================================================
# 7. reserving
# ======================================================================================

TRI = np.array([[100.0, 150.0, 175.0, 180.0], [110.0, 168.0, 192.0, np.nan], [120.0, 175.0, np.nan, np.nan],
                [130.0, np.nan, np.nan, np.nan]])
TRI_NEW = TRI * 1.05
TRI_NEW[0, 1] += 3.0


def chain_ladder(tri, like=None):
    """Chain-ladder on a cumulative triangle (NaN below the diagonal): development factors
    column by column into a buffer, the lower triangle filled in place on a copy, reserves."""
    tri = tri.copy()
    n = tri.shape[0]
    factors = np.empty(n - 1, like=like)
    for j in range(n - 1):
        rows = n - 1 - j
        factors[j] = np.sum(tri[:rows, j + 1]) / np.sum(tri[:rows, j])
    for i in range(1, n):
        for j in range(n - i, n):
            tri[i, j] = tri[i, j - 1] * factors[j - 1]
    latest = np.array([tri[i, n - 1 - i] for i in range(n)])
    return tri[:, -1] - latest


def chain_ladder_nan(tri):
    """Chain-ladder the spreadsheet way: np.nansum of columns, a dict of results."""
    n = tri.shape[0]
    f = []
    for j in range(n - 1):
        f.append(np.nansum(tri[: n - 1 - j, j + 1]) / np.nansum(tri[: n - 1 - j, j]))
    f = np.array(f)
    cdf = np.cumprod(f[::-1])[::-1]
    latest = np.array([tri[i, n - 1 - i] for i in range(n)])
    ult = latest * np.append(cdf, 1.0)[::-1]
    return {"factors": f, "ultimate": ult, "reserve": np.sum(ult - latest)}


def chain_ladder_masked(tri, mask):
    """Chain-ladder with masks (0 below the diagonal): factors by masked sums, cumulative
    products of factors to ultimate."""
    f = np.sum(tri[:, 1:] * mask[:, 1:], axis=0) / np.sum(tri[:, :-1] * mask[:, 1:], axis=0)
    cdf = np.concatenate([np.cumprod(f[::-1])[::-1], [1.0]])
    last = np.cumsum(mask, axis=1) == mask.sum(axis=1, keepdims=True)
    latest = np.sum(tri * mask * last, axis=1)
    dev = (mask.sum(axis=1) - 1).astype(int)
    return np.sum(latest * cdf[dev] - latest)


def test_chain_ladder_plain_factor_buffer_matches_like_fix():
    keep = TRI.copy()
    # factors = np.empty(n - 1) made in the function takes the traced development factors
    check_vector(chain_ladder, TRI, TRI_NEW, batch=np.stack([TRI, TRI_NEW]), reps=3)
    np.testing.assert_array_equal(TRI, keep)          # the caller's triangle is untouched
    f = lambda t: chain_ladder(t, like=t)
    np.testing.assert_array_equal(f(TRI), chain_ladder(TRI))
    check_vector(f, TRI, TRI_NEW, batch=np.stack([TRI, TRI_NEW]), reps=3)
    np.testing.assert_array_equal(TRI, keep)          # the caller's triangle is untouched
    np.testing.assert_allclose(npfunc.jacrev(chain_ladder)(TRI), npfunc.jacrev(f)(TRI), rtol=1e-13, atol=1e-15)
    # the NaN spreadsheet, the mask version and the buffer version agree, derivatives included
    check_vector(chain_ladder_nan, TRI, TRI_NEW, batch=np.stack([TRI, TRI_NEW]), reps=3)
    mask = (~np.isnan(TRI)).astype(float)
    Z, Z_NEW = np.nan_to_num(TRI), np.nan_to_num(TRI_NEW)
    check_scalar(lambda t: chain_ladder_masked(t, mask), Z, Z_NEW, batch=np.stack([Z, Z_NEW]))
    r = lambda t: chain_ladder_nan(t)["reserve"]
    np.testing.assert_allclose(chain_ladder_masked(Z, mask), r(TRI), rtol=1e-13)
    np.testing.assert_allclose(npfunc.grad(lambda t: chain_ladder_masked(t, mask))(Z),
                               np.nan_to_num(npfunc.grad(r)(TRI)) * mask, rtol=1e-12, atol=1e-14)


def bornhuetter_ferguson(premium, elr, cdf):
    return np.sum(premium * elr * (1.0 - 1.0 / cdf))


def bincount_claims(policy_ids, amounts, n_policies=4):
    """Total claim amount per policy by np.bincount with weights."""
    return np.bincount(policy_ids, weights=amounts, minlength=n_policies)


def test_bornhuetter_ferguson_and_claims_per_policy():
    prem, cdf = np.array([100.0, 110.0, 120.0]), np.array([1.0, 1.2, 1.8])
    check_scalar(lambda e: bornhuetter_ferguson(prem, e, cdf), np.float64(0.6), np.float64(0.7), second=True)
    check_scalar(lambda c: bornhuetter_ferguson(prem, 0.65, c), cdf, cdf + 0.1, batch=np.stack([cdf, cdf + 0.1]))
    ids = np.array([0, 2, 2, 1, 0])
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    check_vector(lambda x: bincount_claims(ids, x), a, a * 2, batch=np.stack([a, a * 2]))
    with pytest.raises(UnsupportedFunctionError, match=r"np.add.reduceat"):
        npfunc.grad(lambda x: np.sum(np.add.reduceat(x, np.array([0, 2, 3])) ** 2))(a)


# ======================================================================================
# 8. ruin theory
# ======================================================================================


def ruin_prob_exponential(u, theta, mean_claim):
    """Cramer-Lundberg ruin probability with exponential claims (closed form)."""
    if u <= 0:
        return 1.0 / (1.0 + theta)
    return np.exp(-theta * u / ((1 + theta) * mean_claim)) / (1 + theta)


def adjustment_coefficient(theta, mean_claim):
    """Lundberg's R for gamma(2) claims, by brentq: 1 + (1+theta) mu R = M_X(R)."""
    scale = mean_claim / 2.0
    g = lambda R: 1 + (1 + theta) * mean_claim * R - (1 - scale * R) ** (-2)
    return scipy.optimize.brentq(g, 1e-8, 1 / scale - 1e-8)


def test_ruin_probability_and_adjustment_coefficient():
    check_scalar(lambda t: ruin_prob_exponential(10.0, t, 2.0), np.float64(0.2), np.float64(0.3), second=True,
                 batch=np.array([0.2, 0.3]))
    check_scalar(lambda u: ruin_prob_exponential(u, 0.2, 2.0), np.float64(5.0), np.float64(8.0), second=True,
                 jit=False)
    with pytest.raises(ConcretizationError, match=r"np.where"):
        npfunc.jit(lambda u: ruin_prob_exponential(u, 0.2, 2.0))(np.float64(5.0))
    # the early return: a Python float for u <= 0, under jit too; its theta-derivative exists
    assert type(ruin_prob_exponential(0.0, 0.2, 2.0)) is float
    assert_same(npfunc.jit(lambda t: ruin_prob_exponential(0.0, t, 2.0))(0.2), ruin_prob_exponential(0.0, 0.2, 2.0))
    np.testing.assert_allclose(npfunc.grad(lambda t: ruin_prob_exponential(0.0, t, 2.0))(0.2), -1 / 1.2 ** 2,
                               rtol=1e-14)
    with pytest.raises(BatchedConversionError, match=r"np.where"):
        npfunc.vmap(lambda u: ruin_prob_exponential(u, 0.2, 2.0))(np.array([0.0, 5.0]))
    check_scalar(lambda t: adjustment_coefficient(t, 2.0), np.float64(0.2), np.float64(0.3), second=True,
                 batch=np.array([0.2, 0.3]))
    assert type(adjustment_coefficient(0.2, 2.0)) is float
    # exponential claims: R = theta / ((1 + theta) mu), the exponent of the ruin probability
    R = lambda t: -npfunc.grad(lambda u: np.log(ruin_prob_exponential(u, t, 2.0)))(5.0)
    np.testing.assert_allclose(npfunc.grad(R)(0.2), 1 / (1.2 ** 2 * 2.0), rtol=1e-13)


def panjer_poisson(lam, sev, nmax=8, like=None):
    """Panjer recursion for the compound Poisson aggregate pmf (severity on 0..m)."""
    g = np.zeros(nmax, like=like)
    g[0] = np.exp(-lam * (1.0 - sev[0]))
    for s in range(1, nmax):
        acc = 0.0
        for j in range(1, min(s, len(sev) - 1) + 1):
            acc = acc + j * sev[j] * g[s - j]
        g[s] = lam / s * acc
    return g


def compound_poisson_fft(lam, sev, n=16, like=None):
    """Compound Poisson pmf by FFT, the severity copied into a zero-padded buffer."""
    f = np.zeros(n, like=like)
    f[: len(sev)] = sev
    return np.real(np.fft.ifft(np.exp(lam * (np.fft.fft(f) - 1.0))))


def compound_poisson_fft_pad(lam, sev, n=16):
    """The same with np.pad (no buffer)."""
    return np.real(np.fft.ifft(np.exp(lam * (np.fft.fft(np.pad(sev, (0, n - len(sev)))) - 1.0))))


def test_panjer_recursion_against_fft():
    p = np.array([1.5, 0.0, 0.5, 0.3, 0.2])
    p2 = np.array([2.0, 0.1, 0.4, 0.3, 0.2])
    # g = np.zeros(nmax) and f = np.zeros(n) made in the functions take the traced values,
    # as their like= spellings do
    check_vector(lambda p: panjer_poisson(p[0], p[1:]), p, p2, batch=np.stack([p, p2]))
    check_vector(lambda p: panjer_poisson(p[0], p[1:], like=p), p, p2, batch=np.stack([p, p2]))
    check_vector(lambda p: compound_poisson_fft(p[0], p[1:]), p, p2, batch=np.stack([p, p2]))
    check_vector(lambda p: compound_poisson_fft(p[0], p[1:], like=p), p, p2, batch=np.stack([p, p2]))
    for plain, fixed in ((lambda p: panjer_poisson(p[0], p[1:]), lambda p: panjer_poisson(p[0], p[1:], like=p)),
                         (lambda p: compound_poisson_fft(p[0], p[1:]),
                          lambda p: compound_poisson_fft(p[0], p[1:], like=p))):
        np.testing.assert_allclose(npfunc.jacrev(plain)(p), npfunc.jacrev(fixed)(p), rtol=1e-13, atol=1e-15)
    check_vector(lambda p: compound_poisson_fft_pad(p[0], p[1:]), p, p2, batch=np.stack([p, p2]))
    check_scalar(lambda lam: compound_poisson_fft_pad(lam, p[1:])[5], np.float64(1.5), np.float64(2.0), second=True,
                 batch=np.array([1.5, 2.0]))
    # the two agree on the first cells (no aliasing there), and so do their Jacobians
    pan = lambda p: panjer_poisson(p[0], p[1:], like=p)
    fft = lambda p: compound_poisson_fft_pad(p[0], p[1:], n=64)[:8]      # no aliasing at n = 64
    np.testing.assert_allclose(pan(p), fft(p), atol=1e-12)
    np.testing.assert_allclose(npfunc.jacfwd(pan)(p), npfunc.jacrev(fft)(p), atol=1e-10)


def finite_time_ruin_discrete(u, premium, claim_probs, horizon=6, like=None):
    """Discrete-time surplus on an integer grid: the probability of ruin within the horizon."""
    m = 30
    dist = np.zeros(m, like=like)
    dist[int(u)] = 1.0
    ruined = 0.0
    for _ in range(horizon):
        new = np.zeros(m, like=like)
        for c, p in enumerate(claim_probs):
            shift = int(premium) - c
            if shift >= 0:
                new[shift:] += p * dist[: m - shift]
            else:
                new[: m + shift] += p * dist[-shift:]
                ruined = ruined + p * np.sum(dist[:-shift])
        dist = new
    return ruined


def max_drawdown_surplus(u, premiums, claims):
    """Surplus path and its maximum drawdown (np.maximum.accumulate)."""
    path = u + np.cumsum(premiums - claims)
    return np.max(np.maximum.accumulate(path) - path)


def test_finite_time_ruin_and_drawdown():
    c = np.array([0.3, 0.3, 0.2, 0.1, 0.1])
    c2 = np.array([0.4, 0.2, 0.2, 0.1, 0.1])
    # dist and new = np.zeros(m) made in the function: new[...] += <traced> makes them traced,
    # as the like= buffers are
    check_scalar(lambda c: finite_time_ruin_discrete(5, 2, c), c, c2, batch=np.stack([c, c2]), reps=3)
    check_scalar(lambda c: finite_time_ruin_discrete(5, 2, c, like=c), c, c2, batch=np.stack([c, c2]), reps=3)
    np.testing.assert_allclose(npfunc.grad(lambda c: finite_time_ruin_discrete(5, 2, c))(c),
                               npfunc.grad(lambda c: finite_time_ruin_discrete(5, 2, c, like=c))(c),
                               rtol=1e-13, atol=1e-15)
    pr = np.full(4, 10.0)
    cl = np.array([5.0, 25.0, 3.0, 20.0])
    check_scalar(lambda x: max_drawdown_surplus(50.0, pr, x), cl, cl + np.array([0.0, 1.0, 2.0, -1.0]),
                 batch=np.stack([cl, cl * 1.1]), hess=False)


# ======================================================================================
# 9. reliability
# ======================================================================================


def weibull_reliability(t, k, lam):
    return np.exp(-(t / lam) ** k)


def series_parallel_system(t, shapes, scales):
    """Two parallel pairs in series: R = (1 - (1-R1)(1-R2)) (1 - (1-R3)(1-R4))."""
    R = weibull_reliability(t, shapes, scales)
    return (1 - (1 - R[0]) * (1 - R[1])) * (1 - (1 - R[2]) * (1 - R[3]))


def k_out_of_n(p, k, n):
    j = np.arange(k, n + 1)
    return np.sum(sps.comb(n, j) * p ** j * (1 - p) ** (n - j))


def test_system_reliability():
    shapes = np.array([1.5, 2.0, 1.2, 3.0])
    s, s2 = np.array([3.0, 4.0, 5.0, 2.5]), np.array([3.5, 4.0, 4.0, 2.5])
    check_scalar(lambda sc: series_parallel_system(2.0, shapes, sc), s, s2, batch=np.stack([s, s2]))
    check_scalar(lambda t: series_parallel_system(t, shapes, s), np.float64(2.0), np.float64(3.0), second=True)
    # system reliability over a grid of mission times: vmap in t (in_dims=(0, None, None))
    ts = np.array([0.5, 1.0, 2.0])
    assert_same(npfunc.vmap(series_parallel_system, in_dims=(0, None, None))(ts, shapes, s),
                np.stack([series_parallel_system(t, shapes, s) for t in ts]))
    check_scalar(lambda p: k_out_of_n(p, 2, 4), np.float64(0.9), np.float64(0.8), second=True,
                 batch=np.array([0.9, 0.8]))


def weibull_mttf(k, lam):
    return lam * sps.gamma(1.0 + 1.0 / k)


def weibull_mttf_quad(k, lam):
    val, _ = scipy.integrate.quad(lambda t: np.exp(-(t / lam) ** k), 0.0, np.inf)
    return val


def test_weibull_mttf_by_gamma_function_and_by_quad():
    check_scalar(lambda k: weibull_mttf(k, 100.0), np.float64(1.5), np.float64(2.5), second=True,
                 batch=np.array([1.5, 2.5]))
    check_scalar(lambda k: weibull_mttf_quad(k, 100.0), np.float64(1.5), np.float64(2.5), hess=False, reps=2)
    for k in (1.5, 2.5):
        np.testing.assert_allclose(npfunc.grad(weibull_mttf_quad)(k, 100.0), npfunc.grad(weibull_mttf)(k, 100.0),
                                   rtol=1e-7)


def weibull_plot_fit(t):
    """Median-rank regression (Bernard's approximation) on the Weibull plot, np.polyfit."""
    n = len(t)
    F = (np.arange(1, n + 1) - 0.3) / (n + 0.4)
    slope, intercept = np.polyfit(np.log(np.sort(t)), np.log(-np.log(1 - F)), 1)
    return slope, np.exp(-intercept / slope)


def test_weibull_median_rank_regression():
    with pytest.raises(ConcretizationError, match=r"call np.polyfit outside jit"):
        npfunc.jit(weibull_plot_fit)(CLAIMS)
    got = npfunc.vmap(weibull_plot_fit)(np.stack([CLAIMS, CLAIMS_NEW]))
    for i, w in enumerate(zip(weibull_plot_fit(CLAIMS), weibull_plot_fit(CLAIMS_NEW))):
        assert_same(got[i], np.stack(w))
    first = None
    for _ in range(5):
        for t in (CLAIMS, CLAIMS_NEW):
            J = npfunc.jacrev(lambda x: np.stack(weibull_plot_fit(x)))(t)
            assert_deriv(J, fd(lambda x: np.stack(weibull_plot_fit(x)), t))
            assert_deriv(npfunc.jacfwd(lambda x: np.stack(weibull_plot_fit(x)))(t), J, rtol=1e-12)
        if first is not None:
            same_bits(J, first, "polyfit jacrev")
        first = J


def availability_markov(lam, mu, t):
    """Two-state repairable unit: availability at t by the matrix exponential."""
    Q = np.array([[-lam, lam], [mu, -mu]])
    return scipy.linalg.expm(Q * t)[0, 0]


def stress_strength(params):
    """P(strength > stress) for independent normals."""
    mu_s, sd_s, mu_l, sd_l = params
    return stats.norm.cdf((mu_s - mu_l) / np.sqrt(sd_s ** 2 + sd_l ** 2))


def test_availability_and_stress_strength():
    p, p2 = np.array([0.1, 0.5]), np.array([0.2, 0.4])
    f = lambda q: availability_markov(q[0], q[1], 3.0)
    check_scalar(f, p, p2, batch=np.stack([p, p2]), reps=3)
    closed = lambda q: q[1] / (q[0] + q[1]) + q[0] / (q[0] + q[1]) * np.exp(-(q[0] + q[1]) * 3.0)
    np.testing.assert_allclose(f(p), closed(p), rtol=1e-13)
    np.testing.assert_allclose(npfunc.grad(f)(p), npfunc.grad(closed)(p), rtol=1e-11)
    s, s2 = np.array([10.0, 1.0, 7.0, 2.0]), np.array([11.0, 1.5, 7.0, 2.0])
    check_scalar(stress_strength, s, s2, batch=np.stack([s, s2]))


def bathtub_cumulative_hazard(t, params):
    """Additive bathtub hazard (infant t^-1/2 + constant + wear-out t^2), cumulative by trapezoid."""
    a, b, c = params
    h = a * 0.5 * t ** -0.5 + b + c * 3.0 * t ** 2
    return scipy.integrate.cumulative_trapezoid(h, t, initial=0.0)


def weibull_hazard_ratio(params, t):
    k, lam = params[0], params[1]
    return stats.weibull_min.pdf(t, k, scale=lam) / stats.weibull_min.sf(t, k, scale=lam)


def test_hazards():
    t = np.linspace(0.1, 2.0, 6)
    p, p2 = np.array([0.1, 0.2, 0.01]), np.array([0.2, 0.1, 0.02])
    check_vector(lambda q: bathtub_cumulative_hazard(t, q), p, p2, batch=np.stack([p, p2]))
    check_scalar(lambda q: bathtub_cumulative_hazard(t, q)[-1], p, p2)
    tt = np.array([1.0, 2.0, 5.0])
    k = np.array([1.5, 3.0])
    check_vector(lambda q: weibull_hazard_ratio(q, tt), k, np.array([2.0, 2.5]), batch=np.stack([k, k + 0.5]))
    # the Weibull hazard is k/lam (t/lam)^(k-1), and it is the derivative of -log sf in t
    hz = lambda x: -stats.weibull_min.logsf(x, 1.5, scale=3.0)
    for x in (1.0, 2.0, 5.0, 1.0, 2.0):
        np.testing.assert_allclose(npfunc.grad(hz)(x), weibull_hazard_ratio(k, x), rtol=1e-12)


def multistate_markov(params, years=5):
    """Healthy-sick-dead annual Markov chain: state probabilities after `years` by matrix_power."""
    s, r, dh, ds = params
    P = np.array([[1 - s - dh, s, dh], [r, 1 - r - ds, ds], [0.0, 0.0, 1.0]])
    return np.linalg.matrix_power(P, years)[0]


def disability_annuity(params, years=5, v=1 / 1.04):
    """APV of a benefit paid while sick, the chain stepped year by year (+= into a float)."""
    s, r, dh, ds = params
    P = np.array([[1 - s - dh, s, dh], [r, 1 - r - ds, ds], [0.0, 0.0, 1.0]])
    state = np.array([1.0, 0.0, 0.0])
    apv = 0.0
    for k in range(years):
        state = state @ P
        apv += v ** (k + 1) * state[1]
    return apv


def test_multiple_state_models():
    p, p2 = np.array([0.1, 0.3, 0.01, 0.05]), np.array([0.12, 0.25, 0.02, 0.05])
    check_vector(multistate_markov, p, p2, batch=np.stack([p, p2]))
    check_scalar(disability_annuity, p, p2, batch=np.stack([p, p2]))
    # the rows of the transition matrix sum to one: the state probabilities too, every derivative 0
    assert_deriv(npfunc.jacrev(lambda q: np.sum(multistate_markov(q)))(p), np.zeros(4), atol=1e-14)


# ======================================================================================
# 10. in-place updates of arguments, vmap over other axes
# ======================================================================================


def normalise_exposure_inplace(exposure):
    """Normalise an exposure vector in place (the caller's array changes); return the total."""
    total = exposure.sum()
    exposure /= total
    return total


def apply_trend_inplace(losses, trend, years):
    """On-level historical losses: multiply each year in place by (1 + trend)^years."""
    losses *= (1.0 + trend) ** years
    return losses


def test_exposure_normalised_in_place_under_every_transform():
    e = np.array([1.0, 2.0, 3.0, 4.0])
    plain = e.copy()
    want_total = normalise_exposure_inplace(plain)
    for transform in (npfunc.jit, npfunc.functionalize, npfunc.grad):
        arg = e.copy()
        out = transform(normalise_exposure_inplace)(arg)
        np.testing.assert_array_equal(arg, plain)            # the caller sees the update
        if transform is npfunc.grad:
            assert_same(out, np.ones(4))
        else:
            assert_same(out, want_total)
    batch = np.stack([e, 2 * e])
    totals = npfunc.vmap(normalise_exposure_inplace)(batch)
    assert_same(totals, np.array([10.0, 20.0]))
    np.testing.assert_array_equal(batch, np.stack([plain, plain]))


def test_losses_trended_in_place():
    L, yrs = np.array([100.0, 120.0, 90.0]), np.array([3.0, 2.0, 1.0])
    plain = L.copy()
    want = apply_trend_inplace(plain, 0.05, yrs)
    # traced losses: updated in place as NumPy does, the Jacobian the trend factors
    for transform in (npfunc.jit, npfunc.functionalize):
        arg = L.copy()
        assert_same(transform(apply_trend_inplace)(arg, 0.05, yrs), want)
        np.testing.assert_array_equal(arg, want)
    arg = L.copy()
    J = npfunc.jacrev(lambda l: apply_trend_inplace(l, 0.05, yrs))(arg)
    assert_same(J, np.diag(1.05 ** yrs))
    np.testing.assert_array_equal(arg, want)
    # a traced trend into the caller's plain losses: refused (the caller's array cannot hold a
    # traced value), naming the working fix, a traced copy made where the array is created
    arg = L.copy()
    with pytest.raises(UnsupportedOperationError, match=r"like=x"):
        npfunc.grad(lambda t: np.sum(apply_trend_inplace(arg, t, yrs)))(0.05)
    np.testing.assert_array_equal(arg, L)
    with pytest.raises(UnsupportedOperationError, match=r"a0 \+ np.zeros_like\(t\) when t may be a scalar"):
        npfunc.grad(lambda t: np.sum(apply_trend_inplace(arg[:], t, yrs)))(0.05)
    f = lambda t: np.sum(apply_trend_inplace(L + np.zeros_like(t), t, yrs))
    check_scalar(f, np.float64(0.05), np.float64(0.08), second=True, batch=np.array([0.05, 0.08]))
    with pytest.raises(UnsupportedOperationError, match=r"in_dims=None"):
        npfunc.vmap(apply_trend_inplace, in_dims=(None, 0, None))(L.copy(), np.array([0.05, 0.1]), yrs)
    got = npfunc.vmap(lambda t: apply_trend_inplace(np.array(L, like=t), t, yrs))(np.array([0.05, 0.1]))
    assert_same(got, np.stack([L * 1.05 ** yrs, L * 1.1 ** yrs]))


def loss_ratio_dict(premiums, losses):
    lr = losses / premiums
    return {"loss_ratios": lr, "overall": np.sum(losses) / np.sum(premiums), "max": np.max(lr)}


def test_loss_ratios_dict_and_in_dims():
    prem, L = np.array([100.0, 120.0, 90.0]), np.array([80.0, 130.0, 60.0])
    got = npfunc.jit(loss_ratio_dict)(prem, L)
    want = loss_ratio_dict(prem, L)
    assert list(got) == list(want)
    for k in want:
        assert_same(got[k], want[k])
    Ls = np.stack([L, L * 1.1, L[::-1]], axis=1)            # scenarios on axis 1
    got = npfunc.vmap(loss_ratio_dict, in_dims=(None, 1))(prem, Ls)
    for k in want:
        assert_same(got[k], np.stack([loss_ratio_dict(prem, Ls[:, j])[k] for j in range(3)]))
    check_vector(lambda l: loss_ratio_dict(prem, l), L, L * 1.1)


def test_no_warnings_from_the_programs():
    """The transforms add no warnings the plain programs do not give."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        npfunc.grad(lambda q: net_level_premium(q, 0.04))(QX)
        npfunc.jit(lambda t: chain_ladder(t, like=t))(TRI)
        npfunc.vmap(npfunc.grad(var_gamma_isf))(np.array([[2.0, 1.5], [3.0, 1.0]]))
        npfunc.hessian(lambda p: weibull_censored_nll(p, CLAIMS, np.array([1, 0, 1, 1, 0], bool)))(np.array([1.5, 3.0]))


# ======================================================================================
# 11. mortality forecasting, survival regression, tails, dependence, simulation
# ======================================================================================


def lee_carter_forecast(logm):
    """Lee-Carter: a_x the row means, b_x k_t from the leading singular triple (sum b = 1),
    k_t extrapolated by its drift; next year's log mortality."""
    a = logm.mean(axis=1)
    U, s, Vt = np.linalg.svd(logm - a[:, None], full_matrices=False)
    b = U[:, 0] / np.sum(U[:, 0])
    k = s[0] * Vt[0] * np.sum(U[:, 0])
    drift = (k[-1] - k[0]) / (len(k) - 1)
    return a + b * (k[-1] + drift)


def test_lee_carter_by_svd():
    rng = np.random.default_rng(1)
    trend = (-6 + 0.08 * np.arange(5))[:, None] - 0.02 * np.arange(6)[None, :] * (1 + 0.1 * np.arange(5))[:, None]
    logm = trend + 0.01 * rng.standard_normal((5, 6))
    logm2 = trend + 0.01 * rng.standard_normal((5, 6))
    check_vector(lee_carter_forecast, logm, logm2, batch=np.stack([logm, logm2]), reps=3)
    # the forecast does not depend on the SVD's sign convention: flipping the data's sign flips it
    np.testing.assert_allclose(lee_carter_forecast(-logm), -lee_carter_forecast(logm), rtol=1e-12)


def cox_partial_loglik(beta, X, events):
    """Cox partial likelihood, times sorted ascending, no ties: risk sets by a reversed cumsum."""
    eta = X @ beta
    risk = np.log(np.cumsum(np.exp(eta)[::-1])[::-1])
    return np.sum(events * (eta - risk))


def hill_estimator(losses, k=4):
    """Hill's tail index from the k largest losses."""
    x = np.sort(losses)[::-1]
    return 1.0 / np.mean(np.log(x[:k]) - np.log(x[k]))


def test_cox_regression_and_hill_tail_index():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((8, 2))
    ev = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    b, b2 = np.array([0.3, -0.2]), np.array([-0.1, 0.4])
    check_scalar(lambda b: cox_partial_loglik(b, X, ev), b, b2, batch=np.stack([b, b2]))
    # per-subject design matrices: vmap over X (in_dims=(None, 0, None))
    Xs = np.stack([X, X[::-1].copy()])
    got = npfunc.vmap(npfunc.grad(cox_partial_loglik), in_dims=(None, 0, None))(b, Xs, ev)
    assert_deriv(got, np.stack([fd(lambda b: cox_partial_loglik(b, x, ev), b) for x in Xs]))
    L = np.exp(rng.standard_normal(12)) * 10
    L2 = np.exp(rng.standard_normal(12)) * 10
    check_scalar(hill_estimator, L, L2, batch=np.stack([L, L2]))


def gaussian_copula_var(rho, u=(0.99, 0.9)):
    """Sum of two lognormal risks at fixed normal scores, coupled by a Gaussian copula
    (Cholesky of the correlation matrix, norm.cdf, lognorm.ppf)."""
    L = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    z = stats.norm.ppf(np.array(u))[:, None]
    return np.sum(stats.lognorm.ppf(stats.norm.cdf(L @ z), 0.8, scale=np.e))


def mc_mean_deficit(loading, u=5.0, n=200, years=10):
    """Monte Carlo expected deficit at ruin (a seeded generator inside the function)."""
    rng = np.random.default_rng(0)
    claims = rng.exponential(1.0, size=(n, years))
    surplus = u + np.cumsum((1 + loading) - claims, axis=1)
    return np.mean(np.maximum(-np.min(surplus, axis=1), 0.0))


def test_copula_aggregation_and_monte_carlo_deficit():
    check_scalar(gaussian_copula_var, np.float64(0.5), np.float64(0.2), second=True, batch=np.array([0.5, 0.2]))
    # rho = 0 is independence: the sum of the two quantiles
    np.testing.assert_allclose(gaussian_copula_var(0.0), stats.lognorm.ppf(0.99, 0.8, scale=np.e)
                               + stats.lognorm.ppf(0.9, 0.8, scale=np.e), rtol=1e-12)
    check_scalar(mc_mean_deficit, np.float64(0.1), np.float64(0.2), batch=np.array([0.1, 0.2]), hess=False)


def equivalence_premium(i, qx=QX[:4]):
    """Premium from the equivalence principle, solved by root_scalar (brentq)."""
    v = 1 / (1 + i)
    kpx = np.concatenate([[1.0], np.cumprod(1 - qx[:-1])])
    A = np.sum(v ** np.arange(1, len(qx) + 1) * kpx * qx)
    a = np.sum(v ** np.arange(len(qx)) * kpx)
    return scipy.optimize.root_scalar(lambda P: P * a - A, bracket=[0.0, 1.0], method="brentq").root


def expected_time_to_absorption(p):
    """Healthy/sick states absorbing into death: expected years by the fundamental matrix."""
    Q = np.array([[1 - p[0] - p[1], p[0]], [p[2], 1 - p[2] - p[3]]])
    return np.linalg.inv(np.eye(2) - Q).sum(axis=1)


def test_equivalence_premium_and_absorption_times():
    check_scalar(equivalence_premium, np.float64(0.04), np.float64(0.06), second=True, batch=np.array([0.04, 0.06]))
    assert type(equivalence_premium(0.04)) is float
    # the root is the ratio of the term insurance to the temporary annuity (brentq's xtol 2e-12)
    direct = lambda i: net_level_premium(QX[:4], i, benefit=1.0)
    for i in (0.04, 0.06, 0.04, 0.06, 0.08):
        np.testing.assert_allclose(equivalence_premium(i), direct(i), rtol=0, atol=1e-11)
        np.testing.assert_allclose(npfunc.grad(equivalence_premium)(i), npfunc.grad(direct)(i), rtol=1e-8)
    p, p2 = np.array([0.1, 0.01, 0.3, 0.05]), np.array([0.15, 0.02, 0.25, 0.05])
    # derivatives of O(100) years: five-point differences good to ~1e-8 relative
    check_vector(expected_time_to_absorption, p, p2, batch=np.stack([p, p2]), rtol=1e-6, atol=1e-6)
    solve = lambda p: np.linalg.solve(np.eye(2) - np.array([[1 - p[0] - p[1], p[0]], [p[2], 1 - p[2] - p[3]]]),
                                      np.ones(2))
    np.testing.assert_allclose(npfunc.jacfwd(solve)(p), npfunc.jacrev(expected_time_to_absorption)(p), rtol=1e-12)
