"""Natural programs from ecology, evolution and population genetics, written first as plain
NumPy/SciPy the way a field ecologist or population geneticist writes them, then run under
npfunc's transforms (jit with replays, vmap, grad, jacrev, jacfwd, hessian, jvp, vjp and their
compositions, each transformed function called repeatedly on the same and on new inputs)
against the plain program (type, dtype, shape, value, side effects) and five-point differences.

Programs:
  * population dynamics: logistic growth by Euler steps into a list, a logistic-curve
    least-squares fit, Lotka-Volterra by RK4 into a preallocated trajectory (the plain buffer,
    once refused, against the like= fix), Lotka-Volterra by solve_ivp (t_eval) and the
    Rosenzweig-MacArthur model by odeint, a float32 Ricker map, Beverton-Holt harvest and
    the MSY by minimize_scalar, Holling type II/III functional-response fits;
  * structured populations: Leslie matrices built from fecundities and survivals,
    the dominant eigenvalue by np.linalg.eig and by power iteration (in-place /=),
    projections by matrix_power, sensitivity/elasticity of lambda by grad against the
    eigenvector formula, an integral projection model (norm.pdf growth kernel, expit survival),
    the stochastic growth rate of random environments (Tuljapurkar's loop);
  * population genetics: Wright-Fisher transition matrices from scipy.stats.binom.pmf with
    selection, fixation probabilities by the fundamental matrix (np.linalg.solve), the
    distribution of allele frequencies propagated over generations; Moran fixation by a
    tridiagonal solve against the closed form; Kimura's diffusion fixation probability (expm1,
    the neutral limit by np.where); one-locus selection recursions (float32 too),
    mutation-selection balance; linkage-disequilibrium decay with haplotype recursions;
    Hardy-Weinberg likelihoods with the inbreeding coefficient (xlogy, Fisher information by
    hessian), genotype likelihoods with sequencing error (binom.logpmf), Nei's F_ST in a
    dict, the neutral site-frequency-spectrum Poisson likelihood, the coalescent likelihood of
    inter-coalescence times, the breeder's and Lande's equations (np.linalg.solve);
  * capture-recapture: the Lincoln-Petersen/Chapman estimators, a continuous-N hypergeometric
    likelihood with gammaln, the Cormack-Jolly-Seber likelihood of capture histories
    (backward chi recursion over occasions), a Schnabel Poisson likelihood, half-normal
    distance sampling with erf;
  * species distributions: a logistic species-distribution model (quadratic niche,
    np.logaddexp likelihood), a single-season occupancy model with detection (np.where on
    detection histories), per-site gradients by vmap;
  * diversity: Shannon (with zero abundances via xlogy and by boolean mask), Simpson and
    inverse Simpson, Hill numbers with the q = 1 branch, float32 abundances, Pielou
    evenness, rarefaction by gammaln, Bray-Curtis dissimilarity, species-area fits by
    np.polyfit;
  * metapopulations: Levins' model stepped in a loop and its equilibrium, Hanski's
    metapopulation capacity as the leading eigenvalue (np.linalg.eigh) of a connectivity matrix;
  * phylogenetics: Jukes-Cantor transition probabilities by scipy.linalg.expm against the
    closed form, the JC distance by maximum likelihood (brentq on the score), K80 with a traced
    kappa in np.array([[...]]), Felsenstein pruning on a three-taxon tree, Brownian-motion
    trait likelihoods (multivariate_normal.logpdf, Pagel's lambda);
  * a temperature-dependent growth rate from a table by np.interp and CubicSpline;
  * Hardy-Weinberg by scipy.stats.multinomial, beta-binomial allele counts in pools, the
    quasi-extinction time by solve_ivp's terminal event (refused) and by brentq on the dense
    output; an age-structured stock projected in place in the caller's array;
  * the mutation-drift stationary distribution of a Wright-Fisher chain (scipy.special.binom)
    by np.linalg.eig, by lstsq and by scipy.linalg.null_space (refused), dynamic occupancy
    as a hidden Markov model (forward algorithm with logsumexp, log of a zero emission).

Findings fixed here (each with its regression test): scipy.stats' binom and bernoulli pmf at
p = 0 or 1, geom and nbinom at p = 1 and poisson at mu = 0 had NaN derivatives (and
RuntimeWarnings) where the mass is a polynomial -- the absorbing rows of every Wright-Fisher
matrix; the refusal of scipy.linalg.null_space (no twin; it calls svd) told the user to "call
npfunc.scipy.linalg.svd instead", as if they had called svd, and SciPy's batching decorator
made the called function "scipy.wrapper": it now names null_space, the svd it calls and the
twin to write it with.  Checked
as documented conventions: NaN from 0 * inf where an infinite derivative meets an unused or
zero entry (Shannon's xlogy with absent species, sqrt on a distance matrix's diagonal, log of
a zero emission probability under forward mode), and
brentq's Python float returned as np.float64 under jit.  Refusals checked to name a working
fix: plain preallocated buffers (like=), np.float32(traced), eigvals of a real matrix whose
eigenvalues turn complex between jit calls, flatnonzero/boolean masks of traced data, traced
indices into a plain table, in-place updates of plain arrays by traced values, hypergeom
(no twin), solve_ivp events.
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
import scipy.stats as st

import npfunc
from natural_checks import assert_deriv, assert_same, fd


def _tree_equal(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _tree_equal(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _tree_equal(x, y)
    else:
        assert type(a) is type(b), (type(a), type(b))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), strict=True)


def repeat_calls(tf, *argsets, n=5, exact=True):
    """Call a transformed function n more times on each argument set (alternating, so the
    cached paths see new inputs); every later call must equal the first bit for bit (for
    jit, whose optimised replay may reassociate sums, to rounding)."""
    first = [tf(*a) for a in argsets]
    for _ in range(n):
        for a, r in zip(argsets, first):
            if exact:
                _tree_equal(tf(*a), r)
            else:
                assert_tree_same(tf(*a), r)
    return first


def assert_tree_same(got, want, rtol=1e-12):
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            assert_tree_same(got[k], want[k], rtol)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_tree_same(g, w, rtol)
    else:
        assert_same(got, want, rtol=rtol)


def assert_jit_replays(f, *argsets, rtol=1e-12, **jit_kwargs):
    """One jit object: the first argument set records, the others replay (twice each)."""
    jf = npfunc.jit(f, **jit_kwargs)
    for args in argsets + argsets:
        assert_tree_same(jf(*args), f(*args), rtol=rtol)


def scalar_fd(f, x, eps=1e-5):
    return fd(lambda v: f(v[0]), np.array([x], dtype=float), eps)[..., 0]


# ==== 1. unstructured population dynamics ====================================================


def logistic_euler(r, K, N0=5.0, dt=0.1, steps=60):
    """Logistic growth dN/dt = r N (1 - N/K) by explicit Euler, states kept in a list."""
    N = N0
    traj = [N]
    for _ in range(steps):
        N = N + dt * r * N * (1 - N / K)
        traj.append(N)
    return np.array(traj)


def logistic_curve(t, r, K, N0):
    return K / (1 + (K - N0) / N0 * np.exp(-r * t))


def logistic_sse(theta, t, N_obs):
    """Sum of squared log-residuals of the logistic curve; theta = log(r, K, N0)."""
    r, K, N0 = np.exp(theta)
    pred = logistic_curve(t, r, K, N0)
    return np.sum((np.log(N_obs) - np.log(pred)) ** 2)


_T_OBS = np.arange(0.0, 20.0, 2.0)
_N_OBS = logistic_curve(_T_OBS, 0.45, 120.0, 4.0) * np.exp(
    0.05 * np.sin(np.arange(10.0) * 1.7))


def test_logistic_euler_trajectory_jit_vmap_and_derivatives():
    want = logistic_euler(0.5, 100.0)
    assert want.shape == (61,) and want.dtype == np.float64
    assert_jit_replays(logistic_euler, (np.float64(0.5), np.float64(100.0)),
                       (np.float64(0.8), np.float64(60.0)))
    rs = np.array([0.2, 0.5, 0.9])
    assert_same(npfunc.vmap(logistic_euler, in_dims=(0, None))(rs, 100.0),
                np.stack([logistic_euler(r, 100.0) for r in rs]))
    # sensitivity of the whole trajectory to r and K
    J = npfunc.jacfwd(logistic_euler, argnums=(0, 1))(0.5, 100.0)
    assert_deriv(J[0], scalar_fd(lambda r: logistic_euler(r, 100.0), 0.5))
    assert_deriv(J[1], scalar_fd(lambda K: logistic_euler(0.5, K), 100.0), atol=1e-7)
    Jr = npfunc.jacrev(logistic_euler)(0.5, 100.0)
    np.testing.assert_allclose(Jr, J[0], rtol=1e-12, atol=1e-12)
    final = lambda r: logistic_euler(r, 100.0)[-1]
    d2 = npfunc.grad(npfunc.grad(final))
    got = repeat_calls(d2, (0.5,), (0.3,))
    assert_deriv(got[0], scalar_fd(npfunc.grad(final), 0.5), rtol=1e-6)
    assert_deriv(got[1], scalar_fd(npfunc.grad(final), 0.3), rtol=1e-6)


def test_logistic_fit_gradient_hessian_hvp_and_curve_fit():
    theta = np.log(np.array([0.4, 110.0, 5.0]))
    f = lambda th: logistic_sse(th, _T_OBS, _N_OBS)
    assert isinstance(f(theta), np.float64)
    assert_jit_replays(logistic_sse, (theta, _T_OBS, _N_OBS), (theta + 0.1, _T_OBS, _N_OBS))
    g = repeat_calls(npfunc.grad(f), (theta,), (theta - 0.05,))
    assert_deriv(g[0], fd(f, theta))
    assert_deriv(g[1], fd(f, theta - 0.05))
    H = repeat_calls(npfunc.hessian(f), (theta,), (theta + 0.02,))
    assert_deriv(H[0], fd(npfunc.grad(f), theta), rtol=1e-5, atol=1e-7)
    v = np.array([1.0, -0.5, 0.25])
    hvp = lambda th: npfunc.jvp(npfunc.grad(f), (th,), (v,))[1]
    got = repeat_calls(hvp, (theta,), (theta + 0.02,))
    np.testing.assert_allclose(got[0], H[0] @ v, rtol=1e-10)
    np.testing.assert_allclose(got[1], H[1] @ v, rtol=1e-10)
    jg = repeat_calls(npfunc.jit(npfunc.grad(f)), (theta,), (theta - 0.05,), exact=False)
    np.testing.assert_allclose(jg[0], g[0], rtol=1e-12)
    # the fit itself: the gradient of the plain optimum vanishes
    res = scipy.optimize.minimize(f, theta, jac=npfunc.grad(f), method="BFGS")
    assert np.linalg.norm(npfunc.grad(f)(res.x)) < 1e-4
    # per-dataset gradients: three noisy replicates
    reps = np.stack([_N_OBS * np.exp(0.02 * k * np.cos(_T_OBS)) for k in range(3)])
    per = npfunc.vmap(npfunc.grad(logistic_sse), in_dims=(None, None, 0))(theta, _T_OBS, reps)
    for k in range(3):
        assert_deriv(per[k], fd(lambda th: logistic_sse(th, _T_OBS, reps[k]), theta))
    jper = npfunc.jit(npfunc.vmap(npfunc.grad(logistic_sse), in_dims=(None, None, 0)))
    for _ in range(3):
        np.testing.assert_allclose(jper(theta, _T_OBS, reps), per, rtol=1e-12)


def lotka_volterra_rk4(params, x0, dt=0.1, steps=25, like=True):
    """Prey-predator RK4 with the trajectory in a preallocated (steps+1, 2) array."""
    a, b, c, d = params

    def rhs(x):
        prey, pred = x[0], x[1]
        return np.array([a * prey - b * prey * pred, c * prey * pred - d * pred])

    traj = np.zeros((steps + 1, 2), like=params) if like else np.zeros((steps + 1, 2))
    x = x0
    traj[0] = x
    for i in range(steps):
        k1 = rhs(x)
        k2 = rhs(x + 0.5 * dt * k1)
        k3 = rhs(x + 0.5 * dt * k2)
        k4 = rhs(x + dt * k3)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        traj[i + 1] = x
    return traj


def test_lotka_volterra_rk4_plain_buffer_matches_like_fix_and_transforms():
    p = np.array([1.1, 0.4, 0.1, 0.4])
    x0 = np.array([10.0, 5.0])
    want = lotka_volterra_rk4(p, x0)
    assert_same(lotka_volterra_rk4(p, x0, like=False), want)
    # the plain buffer (refused naming like= before pending arrays): grad gives the
    # differences' gradient, as the like= fix does, and jit records and replays NumPy's values
    plain = lambda q: lotka_volterra_rk4(q, x0, like=False)[-1, 0]  # noqa: E731
    gp = repeat_calls(npfunc.grad(plain), (p,), (p * 0.95,), n=3)
    assert_deriv(gp[0], fd(plain, p))
    assert_deriv(gp[1], fd(plain, p * 0.95))
    assert_deriv(gp[0], npfunc.grad(lambda q: lotka_volterra_rk4(q, x0)[-1, 0])(p), rtol=1e-12, atol=1e-15)
    assert_jit_replays(lambda q, x: lotka_volterra_rk4(q, x, like=False), (p, x0), (p * 1.05, x0 + 1.0))
    assert_jit_replays(lotka_volterra_rk4, (p, x0), (p * 1.05, x0 + 1.0))
    # the plain input buffer is not modified
    x0c = x0.copy()
    npfunc.jacrev(lotka_volterra_rk4)(p, x0)
    assert_same(x0, x0c)
    f = lambda q: lotka_volterra_rk4(q, x0)[-1]
    J = repeat_calls(npfunc.jacfwd(f), (p,), (p * 0.95,), n=3)
    assert_deriv(J[0], fd(f, p))
    assert_deriv(J[1], fd(f, p * 0.95))
    np.testing.assert_allclose(npfunc.jacrev(f)(p), J[0], rtol=1e-10)
    ps = np.stack([p, p * 1.1, p * 0.9])
    x0s = np.stack([x0, x0 * 2, x0 * 0.5], axis=1)      # initial states along axis 1
    assert_same(npfunc.vmap(lotka_volterra_rk4, in_dims=(0, 1))(ps, x0s),
                np.stack([lotka_volterra_rk4(ps[k], x0s[:, k]) for k in range(3)]))
    u = np.array([0.1, -0.2, 0.3, 0.05])
    ct = np.array([1.0, -2.0])
    _, pull = npfunc.vjp(f, p)
    (gv,) = pull(ct)
    _, tang = npfunc.jvp(f, (p,), (u,))
    np.testing.assert_allclose(gv @ u, ct @ tang, rtol=1e-10)


def lv_ivp(logp, T=8.0):
    """Lotka-Volterra by solve_ivp on an output grid: mean prey, mean predator, max prey."""
    a, b, c, d = np.exp(logp)

    def rhs(t, x):
        return [a * x[0] - b * x[0] * x[1], c * x[0] * x[1] - d * x[1]]

    t = np.linspace(0.0, T, 17)
    sol = scipy.integrate.solve_ivp(rhs, (0.0, T), [10.0, 5.0], t_eval=t, rtol=1e-9, atol=1e-9)
    prey, pred = sol.y
    return np.array([np.trapezoid(prey, t) / T, np.trapezoid(pred, t) / T, prey.max()])


def rosenzweig_macarthur(theta, t):
    """Prey with logistic growth, type II predation; by odeint with args=."""
    r, K, a, h, e, m = theta

    def rhs(x, t, r, K, a, h, e, m):
        N, P = x
        feed = a * N / (1 + a * h * N)
        return [r * N * (1 - N / K) - feed * P, e * feed * P - m * P]

    sol = scipy.integrate.odeint(rhs, [4.0, 1.0], t, args=(r, K, a, h, e, m), rtol=1e-10, atol=1e-10)
    return sol[:, 1]


def test_lotka_volterra_solve_ivp_and_rosenzweig_macarthur_odeint():
    lp = np.log(np.array([1.0, 0.3, 0.08, 0.5]))
    want = lv_ivp(lp)
    assert_jit_replays(lv_ivp, (lp,), (lp + 0.05,), rtol=1e-9)
    J = [npfunc.jacrev(lv_ivp)(lp)]
    assert_deriv(J[0], fd(lv_ivp, lp, eps=1e-4), rtol=1e-4, atol=1e-6)
    assert want.shape == (3,)
    theta = np.array([1.0, 10.0, 0.8, 0.4, 0.5, 0.3])
    t = np.linspace(0.0, 10.0, 11)
    P = rosenzweig_macarthur(theta, t)
    assert_same(npfunc.jit(rosenzweig_macarthur)(theta, t), P, rtol=1e-9)
    Jf = npfunc.jacfwd(rosenzweig_macarthur)(theta, t)
    assert_deriv(Jf, fd(lambda th: rosenzweig_macarthur(th, t), theta, eps=1e-4), rtol=1e-4, atol=1e-6)


def ricker(r, K, N0, steps=12, cast=None):
    """Ricker map N' = N exp(r (1 - N/K)) for a float32 census series."""
    N = np.float32(N0) if cast is None else cast(N0)
    out = [N]
    for _ in range(steps):
        N = N * np.exp(r * (1 - N / K))
        out.append(N)
    return np.array(out)


def test_ricker_float32_types_and_derivatives():
    r, K = np.float32(0.8), np.float32(50.0)
    want = ricker(r, K, 5.0)
    assert want.dtype == np.float32
    # np.float32(N0) of a traced start is refused; the message's spelling is the fix
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"x\.astype\(np\.float32\)"):
        npfunc.jit(ricker)(r, K, np.float32(5.0))
    astype32 = lambda x: np.asarray(x, dtype=np.float32)
    assert_same(ricker(r, K, np.float32(5.0), cast=astype32), want)
    assert_jit_replays(ricker, (r, K, np.float32(5.0), 12, astype32),
                       (np.float32(1.2), K, np.float32(8.0), 12, astype32), rtol=1e-6, static_argnums=(3, 4))
    g = npfunc.grad(lambda r: ricker(r, K, 5.0)[-1])(r)
    assert isinstance(g, np.float32)
    want_g = scalar_fd(lambda x: ricker(x, 50.0, 5.0)[-1], 0.8)
    assert_deriv(g, want_g, rtol=2e-4, atol=1e-3)
    rs = np.array([0.5, 1.0, 1.5], dtype=np.float32)
    assert_same(npfunc.vmap(ricker, in_dims=(0, None, None))(rs, K, 5.0),
                np.stack([ricker(x, K, 5.0) for x in rs]), rtol=1e-6)


def beverton_holt_yield(h, R0=2.5, K=100.0, years=40):
    """Beverton-Holt stock with a constant harvest fraction h; equilibrium-ish yield."""
    N = K / 2
    catch = 0.0
    for year in range(years):
        recruits = R0 * N / (1 + (R0 - 1) * N / K)
        catch = h * recruits
        N = recruits - catch
    return catch


def test_beverton_holt_harvest_msy_by_minimize_scalar():
    hs = np.array([0.1, 0.3, 0.5])
    assert_same(npfunc.vmap(beverton_holt_yield)(hs), np.stack([beverton_holt_yield(h) for h in hs]))
    d = repeat_calls(npfunc.grad(beverton_holt_yield), (0.3,), (0.2,))
    assert_deriv(d[0], scalar_fd(beverton_holt_yield, 0.3))
    dd = repeat_calls(npfunc.grad(npfunc.grad(beverton_holt_yield)), (0.3,), (0.2,))
    assert_deriv(dd[0], scalar_fd(npfunc.grad(beverton_holt_yield), 0.3), rtol=1e-6)

    def msy_rate(R0):
        res = scipy.optimize.minimize_scalar(lambda h: -beverton_holt_yield(h, R0=R0),
                                             bounds=(0.01, 0.59), method="bounded",
                                             options={"xatol": 1e-10})
        return res.x
    # analytic MSY harvest rate of Beverton-Holt: 1 - 1/sqrt(R0)
    np.testing.assert_allclose(msy_rate(2.5), 1 - 1 / np.sqrt(2.5), atol=1e-6)
    got = npfunc.jit(msy_rate)(np.float64(2.5))
    np.testing.assert_allclose(got, msy_rate(2.5), rtol=1e-12)


def holling_nll(theta, N, eaten, T=1.0, q=1.0):
    """Gaussian negative log-likelihood of a type II (q = 1) or type III (q = 2) functional
    response a N^q T / (1 + a h N^q)."""
    a, h, sigma = np.exp(theta)
    pred = a * N**q * T / (1 + a * h * N**q)
    return -np.sum(st.norm.logpdf(eaten, loc=pred, scale=sigma))


def test_holling_functional_response_likelihoods():
    N = np.array([2.0, 5.0, 10.0, 20.0, 40.0, 80.0])
    eaten = np.array([1.5, 3.1, 5.0, 6.9, 8.2, 9.0])
    th = np.log(np.array([0.7, 0.1, 0.5]))
    for q in (1.0, 2.0):
        f = lambda t: holling_nll(t, N, eaten, q=q)
        assert_jit_replays(holling_nll, (th, N, eaten, 1.0, q), (th + 0.1, N, eaten, 1.0, q))
        g = repeat_calls(npfunc.grad(f), (th,), (th * 1.1,))
        assert_deriv(g[0], fd(f, th))
        H = repeat_calls(npfunc.hessian(f), (th,), (th * 1.1,))
        assert_deriv(H[1], fd(npfunc.grad(f), th * 1.1), atol=1e-6)


# ==== 2. structured populations ===============================================================


def leslie(fecundity, survival):
    """Leslie matrix: fecundities in the first row, survivals on the subdiagonal."""
    n = len(fecundity)
    L = np.zeros((n, n), like=fecundity)
    L[0, :] = fecundity
    for i in range(n - 1):
        L[i + 1, i] = survival[i]
    return L


def dominant_lambda(L):
    w, V = np.linalg.eig(L)
    k = np.argmax(np.abs(w))
    return np.real(w[k])


def lambda_of_rates(params):
    """Asymptotic growth rate of a 4-class Leslie matrix from (f1..f4, s1..s3)."""
    return dominant_lambda(leslie(params[:4], params[4:]))


def power_iteration(L, iters=200):
    x = np.ones(L.shape[0], like=L) / L.shape[0]
    lam = 1.0
    for _ in range(iters):
        y = L @ x
        lam = y.sum()
        y /= lam
        x = y
    return lam, x


def project(L, n0, years):
    return np.linalg.matrix_power(L, years) @ n0


_F = np.array([0.0, 1.2, 2.0, 1.5])
_S = np.array([0.6, 0.7, 0.5])


def test_leslie_lambda_by_eig_power_iteration_and_matrix_power():
    params = np.concatenate([_F, _S])
    lam = lambda_of_rates(params)
    assert isinstance(lam, np.float64)
    assert_jit_replays(lambda_of_rates, (params,), (params * 1.1,))
    g = repeat_calls(npfunc.grad(lambda_of_rates), (params,), (params * 0.9,))
    assert_deriv(g[0], fd(lambda_of_rates, params))
    assert_deriv(g[1], fd(lambda_of_rates, params * 0.9))
    L = leslie(_F, _S)
    lam_pi, x = power_iteration(L)
    np.testing.assert_allclose(lam_pi, lam, rtol=1e-10)
    f_pi = lambda p: power_iteration(leslie(p[:4], p[4:]))[0]
    assert_deriv(npfunc.grad(f_pi)(params), g[0], rtol=1e-8)
    assert_jit_replays(power_iteration, (L,), (L * 1.05,))
    # total population after 10 years
    n0 = np.array([10.0, 5.0, 3.0, 1.0])
    tot = lambda p: project(leslie(p[:4], p[4:]), n0, 10).sum()
    assert_same(npfunc.jit(tot)(params), tot(params))
    assert_deriv(npfunc.grad(tot)(params), fd(tot, params))
    Ls = np.stack([leslie(_F * k, _S) for k in (0.8, 1.0, 1.2)])
    assert_same(npfunc.vmap(project, in_dims=(0, None, None))(Ls, n0, 10),
                np.stack([project(M, n0, 10) for M in Ls]))
    H = repeat_calls(npfunc.hessian(lambda_of_rates), (params,))
    assert_deriv(H[0], fd(npfunc.grad(lambda_of_rates), params), atol=1e-7)


def sensitivities(L):
    """Caswell's sensitivity s_ij = v_i w_j / <v, w> and elasticity e_ij = a_ij s_ij / lambda."""
    w, V = np.linalg.eig(L)
    k = np.argmax(np.real(w))
    lam = np.real(w[k])
    right = np.real(V[:, k])
    wl, U = np.linalg.eig(L.T)
    left = np.real(U[:, np.argmax(np.real(wl))])
    S = np.outer(left, right) / (left @ right)
    E = L * S / lam
    return {"lambda": lam, "sensitivity": S, "elasticity": E}


def test_sensitivity_and_elasticity_by_grad_match_eigenvector_formula():
    L = leslie(_F, _S)
    res = sensitivities(L)
    gL = npfunc.grad(dominant_lambda)(L)
    np.testing.assert_allclose(gL, res["sensitivity"], rtol=1e-10, atol=1e-12)
    # elasticities: d log lambda / d log a_ij on the nonzero entries
    mask = L != 0
    elas = lambda logA: np.log(dominant_lambda(np.where(mask, np.exp(logA), 0.0)))
    logA = np.log(np.where(mask, L, 1.0))
    e = npfunc.grad(elas)(logA)
    np.testing.assert_allclose(e, res["elasticity"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e.sum(), 1.0, rtol=1e-12)
    got = npfunc.jit(sensitivities)(L)
    assert_tree_same(got, res, rtol=1e-10)
    assert_jit_replays(sensitivities, (L,), (leslie(_F * 1.3, _S),), rtol=1e-10)
    Ls = np.stack([L, leslie(_F * 0.7, _S)])
    got = npfunc.vmap(sensitivities)(Ls)
    for k in ("lambda", "sensitivity", "elasticity"):
        assert_same(got[k], np.stack([sensitivities(M)[k] for M in Ls]), rtol=1e-10)


def ipm_lambda(theta, m=25, complex_eig=True):
    """Integral projection model on body size [0, 10] by the midpoint rule: survival expit,
    Gaussian growth (norm.pdf), fecundity proportional to size, Gaussian recruit sizes."""
    s0, s1, g0, g1, sg, f1 = theta
    h = 10.0 / m
    z = (np.arange(m) + 0.5) * h
    surv = sps.expit(s0 + s1 * z)
    G = st.norm.pdf(z[:, None], loc=g0 + g1 * z[None, :], scale=sg)
    F = np.outer(st.norm.pdf(z, loc=1.5, scale=0.6), f1 * z)
    K = h * (G * surv[None, :] + F)
    if complex_eig:
        K = K.astype(complex)
    return np.max(np.abs(np.linalg.eigvals(K)))


def test_integral_projection_model_lambda_gradient_and_vmap():
    th = np.array([-1.0, 0.5, 0.8, 0.85, 0.7, 0.1])
    assert_same(ipm_lambda(th, complex_eig=False), ipm_lambda(th))
    # eigvals of a real kernel is real or complex by the values: a replay across that is
    # refused, naming the complex spelling used in the program
    jreal = npfunc.jit(lambda t: ipm_lambda(t, complex_eig=False))
    jreal(th)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"astype\(complex\)"):
        for k in (1.05, 0.95, 1.2, 0.8, 1.5):
            jreal(th * k)
    assert_jit_replays(ipm_lambda, (th,), (th * 1.05,))
    g = repeat_calls(npfunc.grad(ipm_lambda), (th,), (th * 0.97,))
    assert_deriv(g[0], fd(ipm_lambda, th))
    ths = np.stack([th, th * 1.05, th * 0.95])
    assert_same(npfunc.vmap(ipm_lambda)(ths), np.stack([ipm_lambda(t) for t in ths]))
    pg = npfunc.vmap(npfunc.grad(ipm_lambda))(ths)
    for k in range(3):
        assert_deriv(pg[k], fd(ipm_lambda, ths[k]))


def stochastic_growth(p_good, L_good, L_bad, T=60, seed=3):
    """Tuljapurkar's stochastic growth rate: the mean log of the normalised one-step growth
    over a random sequence of good/bad years."""
    rng = np.random.default_rng(seed)
    good = rng.random(T) < 0.5
    n = np.ones(L_good.shape[0]) / L_good.shape[0]
    logs = 0.0
    for t in range(T):
        A = L_good if good[t] else L_bad
        n = A @ n
        total = n.sum()
        logs = logs + np.log(total)
        n = n / total
    return logs / T


def test_stochastic_growth_rate_gradient_in_vital_rates():
    f = lambda p: stochastic_growth(0.5, leslie(p[:4], p[4:]), leslie(0.5 * p[:4], 0.8 * p[4:]))
    params = np.concatenate([_F, _S])
    assert_jit_replays(f, (params,), (params * 1.1,))
    g = repeat_calls(npfunc.grad(f), (params,))
    assert_deriv(g[0], fd(f, params))


# ==== 3. population genetics ====================================================================


def wright_fisher_matrix(s, N):
    """Wright-Fisher transition matrix for N haploid copies with genic selection s:
    P[i, j] = Binom(j; N, p_i') with p_i' = p_i (1 + s) / (1 + s p_i)."""
    i = np.arange(N + 1)
    p = i / N
    p_sel = p * (1 + s) / (1 + s * p)
    j = np.arange(N + 1)
    return st.binom.pmf(j[None, :], N, p_sel[:, None])


def wf_fixation(s, N=10):
    """Fixation probabilities from every interior state by the fundamental matrix:
    absorption B = (I - Q)^-1 R; returns the probability of fixing from one copy."""
    P = wright_fisher_matrix(s, N)
    Q = P[1:-1, 1:-1]
    R = P[1:-1, -1]
    B = np.linalg.solve(np.eye(N - 1) - Q, R)
    return B[0]


def wf_moments(s, p0_index, N=10, generations=8):
    """Propagate the distribution of allele counts forward; mean and variance of p."""
    P = wright_fisher_matrix(s, N)
    dist = np.zeros(N + 1)
    dist[p0_index] = 1.0
    for _ in range(generations):
        dist = dist @ P
    freq = np.arange(N + 1) / N
    mean = dist @ freq
    return mean, dist @ freq**2 - mean**2


def test_wright_fisher_binomial_transitions_fixation_and_moments():
    P = wright_fisher_matrix(0.05, 10)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)
    assert_jit_replays(wright_fisher_matrix, (np.float64(0.05), 10), (np.float64(-0.02), 10), static_argnums=1)
    np.testing.assert_allclose(wf_fixation(0.0), 0.1, rtol=1e-12)   # neutral: 1/N
    assert_jit_replays(wf_fixation, (np.float64(0.05),), (np.float64(0.1),))
    d = repeat_calls(npfunc.grad(wf_fixation), (0.05,), (0.0,), (-0.03,))
    for s, g in zip((0.05, 0.0, -0.03), d):
        assert_deriv(g, scalar_fd(wf_fixation, s))
    dd = repeat_calls(npfunc.grad(npfunc.grad(wf_fixation)), (0.05,), (0.01,))
    assert_deriv(dd[0], scalar_fd(npfunc.grad(wf_fixation), 0.05), rtol=1e-6)
    ss = np.array([-0.05, 0.0, 0.05, 0.1])
    assert_same(npfunc.vmap(wf_fixation)(ss), np.stack([wf_fixation(s) for s in ss]))
    assert_deriv(npfunc.vmap(npfunc.grad(wf_fixation))(ss), np.stack([scalar_fd(wf_fixation, s) for s in ss]))
    jv = npfunc.jit(npfunc.vmap(npfunc.grad(wf_fixation)))
    for _ in range(3):
        assert_deriv(jv(ss), np.stack([scalar_fd(wf_fixation, s) for s in ss]))
    m = wf_moments(0.1, 3)
    assert type(m) is tuple and isinstance(m[0], np.float64)
    assert_tree_same(npfunc.jit(wf_moments, static_argnums=(1,))(np.float64(0.1), 3), m)
    J = npfunc.jacfwd(wf_moments)(0.1, 3)
    assert_deriv(np.array(J), np.array([scalar_fd(lambda s: wf_moments(s, 3)[k], 0.1) for k in range(2)]))


def test_discrete_pmf_derivatives_at_the_ends_of_the_parameter_range():
    """Regression: binom/bernoulli.pmf at p = 0 or 1, geom/nbinom at p = 1, poisson at
    mu = 0 were differentiated through exp(logpmf), whose rule is pmf * k / p = 0 * inf
    there: NaN derivatives (and RuntimeWarnings) where the mass is a polynomial.  One-sided
    differences inside the range and the polynomial's derivatives are the reference."""
    k = np.arange(5.0)
    cases = [(lambda p: st.binom.pmf(k, 4, p), 0.0, 1), (lambda p: st.binom.pmf(k, 4, p), 1.0, -1),
             (lambda p: st.bernoulli.pmf(k[:2], p), 0.0, 1), (lambda p: st.bernoulli.pmf(k[:2], p), 1.0, -1),
             (lambda m: st.poisson.pmf(k, m), 0.0, 1), (lambda p: st.geom.pmf(k + 1, p), 1.0, -1),
             (lambda p: st.nbinom.pmf(k, 2.5, p), 1.0, -1)]
    for f, x, side in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            J = repeat_calls(npfunc.jacfwd(f), (x,))[0]
            np.testing.assert_array_equal(npfunc.jacrev(f)(x), J)
            H = repeat_calls(npfunc.jacfwd(npfunc.jacrev(f)), (x,))[0]
            vals = npfunc.jit(f)(np.float64(x))
        assert_same(vals, f(x))
        # one-sided second-order differences from inside the range
        h = 1e-5
        f0, f1, f2 = f(x), f(x + side * h), f(x + 2 * side * h)
        np.testing.assert_allclose(J, side * (-3 * f0 + 4 * f1 - f2) / (2 * h), rtol=1e-6, atol=1e-7)
        h = 1e-4
        f0, f1, f2, f3 = (f(x + j * side * h) for j in range(4))
        np.testing.assert_allclose(H, (2 * f0 - 5 * f1 + 4 * f2 - f3) / h**2, rtol=1e-5, atol=1e-5)
    # exact polynomial derivatives: d/dp C(4,k) p^k (1-p)^(4-k) at p = 0
    np.testing.assert_allclose(npfunc.jacfwd(cases[0][0])(0.0), [-4.0, 4.0, 0.0, 0.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(npfunc.hessian(lambda p: st.binom.pmf(1.0, 4, p))(0.0), -24.0, rtol=1e-14)
    # one recording at an inner p replays at the ends (the branch is in the program)
    jJ = npfunc.jit(npfunc.jacfwd(cases[0][0]))
    inner = jJ(np.float64(0.3))
    np.testing.assert_allclose(inner, npfunc.jacfwd(cases[0][0])(0.3), rtol=1e-12)
    np.testing.assert_allclose(jJ(np.float64(0.0)), [-4.0, 4.0, 0.0, 0.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(jJ(np.float64(1.0)), [0.0, 0.0, 0.0, -4.0, 4.0], rtol=1e-14)
    # inside the range nothing changed: the values are exp(logpmf)'s
    ps = np.array([0.0, 0.3, 1.0])
    assert_same(npfunc.vmap(lambda p: st.binom.pmf(k, 4, p))(ps), np.stack([st.binom.pmf(k, 4, p) for p in ps]))


def moran_fixation_linear(r, N=8, like=True):
    """Fixation probability of one mutant of relative fitness r in a Moran process, by the
    linear system of the birth-death chain (x_0 = 0, x_N = 1)."""
    i = np.arange(1, N)
    up = r * i * (N - i) / ((r * i + N - i) * N)
    down = i * (N - i) / ((r * i + N - i) * N)
    A = np.diag(-(up + down)) + np.diag(up[:-1], 1) + np.diag(down[1:], -1)
    b = np.zeros(N - 1, like=up) if like else np.zeros(N - 1)
    b[-1] = -up[-1]
    return np.linalg.solve(A, b)[0]


def moran_fixation_closed(r, N=8):
    if r == 1.0:
        return 1.0 / N
    return (1 - 1 / r) / (1 - r ** (-N))


def test_moran_fixation_linear_system_plain_buffer_against_closed_form():
    for r in (0.9, 1.1, 1.5):
        np.testing.assert_allclose(moran_fixation_linear(r), moran_fixation_closed(r), rtol=1e-12)
        assert_same(moran_fixation_linear(r, like=False), moran_fixation_linear(r))
    # the right-hand side written into a plain np.zeros (refused naming like= before pending
    # arrays): grad gives the closed form's derivative, as the like= fix does
    plain = lambda r: moran_fixation_linear(r, like=False)  # noqa: E731
    gp = repeat_calls(npfunc.grad(plain), (1.1,), (1.4,))
    for r, gr in zip((1.1, 1.4), gp):
        assert_deriv(gr, scalar_fd(moran_fixation_closed, r))
        assert_deriv(gr, npfunc.grad(moran_fixation_linear)(r), rtol=1e-12, atol=1e-15)
    assert_jit_replays(moran_fixation_linear, (np.float64(1.1),), (np.float64(1.3),))
    g = repeat_calls(npfunc.grad(moran_fixation_linear), (1.1,), (1.4,))
    assert_deriv(g[0], scalar_fd(moran_fixation_closed, 1.1))
    gc = npfunc.grad(moran_fixation_closed)(1.1)
    np.testing.assert_allclose(g[0], gc, rtol=1e-10)
    # neutral early return: a float, derivative-free branch gives 0
    assert moran_fixation_closed(1.0) == 0.125
    rs = np.array([0.8, 1.2, 2.0])
    assert_same(npfunc.vmap(moran_fixation_linear)(rs), np.stack([moran_fixation_linear(r) for r in rs]))
    dd = repeat_calls(npfunc.grad(npfunc.grad(moran_fixation_linear)), (1.1,), (1.4,))
    assert_deriv(dd[1], scalar_fd(npfunc.grad(moran_fixation_closed), 1.4), rtol=1e-6)


def kimura_fixation(s, Ne=100.0, p=0.01):
    """Kimura's diffusion fixation probability, the neutral limit p where s = 0."""
    num = -np.expm1(-4 * Ne * s * p)
    den = -np.expm1(-4 * Ne * s)
    safe = np.where(s == 0, 1.0, s)
    val = -np.expm1(-4 * Ne * safe * p) / -np.expm1(-4 * Ne * safe)
    return np.where(s == 0, p, val)


def test_kimura_fixation_probability_neutral_limit_and_derivatives():
    s = np.array([-0.01, 0.0, 0.001, 0.01])
    want = kimura_fixation(s)
    assert want[1] == 0.01
    assert_jit_replays(kimura_fixation, (s,), (s * 2,))
    J = npfunc.jacfwd(kimura_fixation)(s)
    assert np.all(np.isfinite(J))
    keep = s != 0
    np.testing.assert_allclose(np.diag(J)[keep], np.diag(fd(kimura_fixation, s, eps=1e-7))[keep], rtol=1e-6)
    assert np.diag(J)[1] == 0.0   # np.where picks the constant branch at s = 0
    g = repeat_calls(npfunc.vmap(npfunc.grad(kimura_fixation)), (s,))
    np.testing.assert_allclose(g[0], np.diag(J), rtol=1e-12)
    assert_same(npfunc.vmap(kimura_fixation)(s), want)


def selection_recursion(w, p0, generations=30):
    """One locus, two alleles, genotype fitnesses (w11, w12, w22): p' = (p^2 w11 + p q w12)/wbar."""
    w11, w12, w22 = w[0], w[1], w[2]
    p = p0
    history = [p]
    for _ in range(generations):
        q = 1 - p
        wbar = p * p * w11 + 2 * p * q * w12 + q * q * w22
        p = (p * p * w11 + p * q * w12) / wbar
        history.append(p)
    return np.array(history)


def mutation_selection_balance(u, s, h=0.5, generations=200):
    """Deleterious allele frequency under mutation (rate u) and selection (s, dominance h)."""
    q = 0.0
    for _ in range(generations):
        q = q + u * (1 - q)
        p = 1 - q
        wbar = p * p + 2 * p * q * (1 - h * s) + q * q * (1 - s)
        q = (p * q * (1 - h * s) + q * q * (1 - s)) / wbar
    return q


def test_selection_recursion_float64_float32_and_mutation_balance():
    w = np.array([1.0, 0.98, 0.9])
    traj = selection_recursion(w, 0.3)
    assert traj.dtype == np.float64 and traj.shape == (31,)
    assert_jit_replays(selection_recursion, (w, np.float64(0.3)), (w[::-1].copy(), np.float64(0.6)))
    J = repeat_calls(npfunc.jacrev(lambda w: selection_recursion(w, 0.3)), (w,), (w * 1.01,))
    assert_deriv(J[0], fd(lambda v: selection_recursion(v, 0.3), w))
    Jf = npfunc.jacfwd(lambda w: selection_recursion(w, 0.3))(w)
    np.testing.assert_allclose(Jf, J[0], rtol=1e-10, atol=1e-14)
    w32 = w.astype(np.float32)
    t32 = selection_recursion(w32, np.float32(0.3))
    assert t32.dtype == np.float32
    assert_same(npfunc.jit(selection_recursion)(w32, np.float32(0.3)), t32, rtol=1e-6)
    g32 = npfunc.grad(lambda v: selection_recursion(v, np.float32(0.3))[-1])(w32)
    assert g32.dtype == np.float32
    p0s = np.array([0.1, 0.5, 0.9])
    assert_same(npfunc.vmap(selection_recursion, in_dims=(None, 0))(w, p0s),
                np.stack([selection_recursion(w, p) for p in p0s]))
    # mutation-selection balance approaches u/(h s) for partial dominance
    q = mutation_selection_balance(1e-3, 0.1)
    assert isinstance(q, np.float64) or isinstance(q, float)
    assert_same(npfunc.jit(mutation_selection_balance)(1e-3, 0.1), q)
    gu = repeat_calls(npfunc.grad(mutation_selection_balance, argnums=(0, 1)), (1e-3, 0.1), (2e-3, 0.2))
    assert_deriv(gu[0][0], scalar_fd(lambda u: mutation_selection_balance(u, 0.1), 1e-3, eps=1e-7), rtol=1e-5)
    assert_deriv(gu[0][1], scalar_fd(lambda s: mutation_selection_balance(1e-3, s), 0.1))


def ld_decay(r, D0, generations):
    """Haplotype frequencies (AB, Ab, aB, ab) under recombination rate r; returns D each
    generation, D_t = D0 (1 - r)^t."""
    pA, pB = 0.6, 0.3
    x = np.array([pA * pB + D0, pA * (1 - pB) - D0, (1 - pA) * pB - D0, (1 - pA) * (1 - pB) + D0])
    Ds = []
    for _ in range(generations):
        D = x[0] * x[3] - x[1] * x[2]
        Ds.append(D)
        x = x + r * D * np.array([-1.0, 1.0, 1.0, -1.0])
    return np.array(Ds)


def test_linkage_disequilibrium_decay_recursion():
    D = ld_decay(0.1, 0.05, 10)
    np.testing.assert_allclose(D, 0.05 * 0.9 ** np.arange(10), rtol=1e-12)
    assert_jit_replays(ld_decay, (np.float64(0.1), np.float64(0.05), 10), (np.float64(0.3), np.float64(-0.02), 10),
                       static_argnums=2)
    J = npfunc.jacrev(ld_decay, argnums=(0, 1))(0.1, 0.05, 10)
    np.testing.assert_allclose(J[0], -0.05 * np.arange(10) * 0.9 ** np.maximum(np.arange(10) - 1, 0), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(J[1], 0.9 ** np.arange(10), rtol=1e-10)
    rs = np.array([0.0, 0.1, 0.5])
    assert_same(npfunc.vmap(ld_decay, in_dims=(0, None, None))(rs, 0.05, 10),
                np.stack([ld_decay(r, 0.05, 10) for r in rs]))


def hwe_loglik(theta, counts):
    """Genotype counts (AA, Aa, aa) under allele frequency p and inbreeding coefficient F."""
    p, F = theta
    q = 1 - p
    probs = np.array([p * p + F * p * q, 2 * p * q * (1 - F), q * q + F * p * q])
    return np.sum(sps.xlogy(counts, probs))


def test_hardy_weinberg_inbreeding_likelihood_fisher_information():
    counts = np.array([50.0, 30.0, 20.0])
    theta = np.array([0.6, 0.2])
    assert_jit_replays(hwe_loglik, (theta, counts), (np.array([0.55, 0.1]), counts))
    f = lambda t: hwe_loglik(t, counts)
    g = repeat_calls(npfunc.grad(f), (theta,), (np.array([0.55, 0.1]),))
    assert_deriv(g[0], fd(f, theta))
    H = repeat_calls(npfunc.hessian(f), (theta,), (np.array([0.55, 0.1]),))
    assert_deriv(H[0], fd(npfunc.grad(f), theta), atol=1e-6)
    # at the MLE (p = (2 nAA + nAa)/2n, F = 1 - Hobs/Hexp) the score vanishes
    p_hat = (2 * 50 + 30) / 200
    F_hat = 1 - (30 / 100) / (2 * p_hat * (1 - p_hat))
    mle = np.array([p_hat, F_hat])
    np.testing.assert_allclose(npfunc.grad(f)(mle), 0.0, atol=1e-10)
    se = np.sqrt(np.diag(np.linalg.inv(-npfunc.hessian(f)(mle))))
    np.testing.assert_allclose(se[0], np.sqrt(p_hat * (1 - p_hat) * (1 + F_hat) / 200), rtol=1e-8)
    v = np.array([0.3, -1.0])
    hv = repeat_calls(lambda t: npfunc.jvp(npfunc.grad(f), (t,), (v,))[1], (theta,), (mle,))
    np.testing.assert_allclose(hv[0], H[0] @ v, rtol=1e-10)
    zero_class = np.array([60.0, 40.0, 0.0])      # xlogy: an empty class contributes 0
    assert np.isfinite(hwe_loglik(np.array([0.8, 0.0]), zero_class))
    assert_deriv(npfunc.grad(hwe_loglik)(np.array([0.8, 0.0]), zero_class),
                 fd(lambda t: hwe_loglik(t, zero_class), np.array([0.8, 0.0])))
    sites = np.array([[50.0, 30.0, 20.0], [10.0, 45.0, 45.0], [70.0, 25.0, 5.0]])
    per = npfunc.vmap(npfunc.grad(hwe_loglik), in_dims=(None, 0))(theta, sites)
    for k in range(3):
        assert_deriv(per[k], fd(lambda t: hwe_loglik(t, sites[k]), theta))


def genotype_loglik(f, reads_alt, depth, err=0.01):
    """Allele frequency from read counts at individuals of unknown genotype: each genotype
    (0, 1, 2 alt copies) gives alt reads Binomial(depth, g/2 (1-err) + (1-g/2) err)."""
    g = np.array([0.0, 1.0, 2.0])
    prior = np.array([(1 - f) ** 2, 2 * f * (1 - f), f**2])
    palt = g / 2 * (1 - err) + (1 - g / 2) * err
    like = st.binom.pmf(reads_alt[:, None], depth[:, None], palt[None, :])
    return np.sum(np.log(like @ prior))


def test_genotype_likelihood_with_sequencing_error():
    alt = np.array([0, 3, 5, 10, 1, 7])
    dep = np.array([8, 6, 10, 10, 9, 8])
    want = genotype_loglik(0.4, alt, dep)
    assert isinstance(want, np.float64)
    assert_jit_replays(genotype_loglik, (np.float64(0.4), alt, dep), (np.float64(0.2), alt[::-1].copy(), dep))
    g = repeat_calls(npfunc.grad(genotype_loglik), (0.4, alt, dep), (0.25, alt, dep))
    assert_deriv(g[0], scalar_fd(lambda f: genotype_loglik(f, alt, dep), 0.4))
    dd = repeat_calls(npfunc.grad(npfunc.grad(genotype_loglik)), (0.4, alt, dep), (0.25, alt, dep))
    assert_deriv(dd[0], scalar_fd(lambda f: npfunc.grad(genotype_loglik)(f, alt, dep), 0.4), rtol=1e-6)
    ge = npfunc.grad(genotype_loglik, argnums=3)(0.4, alt, dep, 0.01)
    assert_deriv(ge, scalar_fd(lambda e: genotype_loglik(0.4, alt, dep, e), 0.01, eps=1e-6))


def nei_fst(freqs, sizes):
    """Nei's G_ST of subpopulation allele frequencies (rows: populations, biallelic)."""
    w = sizes / sizes.sum()
    Hs_each = 2 * freqs * (1 - freqs)
    Hs = np.sum(w * Hs_each)
    pbar = np.sum(w * freqs)
    Ht = 2 * pbar * (1 - pbar)
    return {"Hs": Hs, "Ht": Ht, "Fst": (Ht - Hs) / Ht}


def test_nei_fst_dict_and_gradient():
    fr = np.array([0.2, 0.5, 0.7, 0.9])
    n = np.array([30.0, 50.0, 20.0, 40.0])
    want = nei_fst(fr, n)
    assert_tree_same(npfunc.jit(nei_fst)(fr, n), want)
    assert_jit_replays(nei_fst, (fr, n), (fr[::-1].copy(), n))
    g = repeat_calls(npfunc.grad(lambda x: nei_fst(x, n)["Fst"]), (fr,), (fr * 0.9,))
    assert_deriv(g[0], fd(lambda x: nei_fst(x, n)["Fst"], fr))
    loci = np.stack([fr, fr * 0.8, np.full(4, 0.5) + 0.01 * np.arange(4)], axis=1)   # loci along axis 1
    got = npfunc.vmap(nei_fst, in_dims=(1, None))(loci, n)
    for k in ("Hs", "Ht", "Fst"):
        assert_same(got[k], np.stack([nei_fst(loci[:, j], n)[k] for j in range(3)]))


def sfs_loglik(theta, sfs, n):
    """Poisson likelihood of an unfolded site-frequency spectrum, E[xi_i] = theta / i."""
    i = np.arange(1, n)
    lam = theta / i
    return np.sum(st.poisson.logpmf(sfs, lam))


def coalescent_loglik(log_Ne, times):
    """Kingman coalescent: intercoalescence times t_k while k lineages remain,
    rate C(k,2)/Ne."""
    Ne = np.exp(log_Ne)
    n = len(times) + 1
    ll = 0.0
    for idx, t in enumerate(times):
        k = n - idx
        rate = k * (k - 1) / 2 / Ne
        ll += np.log(rate) - rate * t
    return ll


def test_sfs_poisson_and_coalescent_likelihoods():
    sfs = np.array([24, 11, 9, 5, 6, 3, 4])
    n = 8
    want = sfs_loglik(20.0, sfs, n)
    assert_jit_replays(sfs_loglik, (np.float64(20.0), sfs, n), (np.float64(25.0), sfs, n), static_argnums=2)
    g = repeat_calls(npfunc.grad(sfs_loglik), (20.0, sfs, n), (25.0, sfs, n))
    assert_deriv(g[0], scalar_fd(lambda t: sfs_loglik(t, sfs, n), 20.0))
    # Watterson's estimator is the MLE: score zero there
    th_w = sfs.sum() / np.sum(1 / np.arange(1, n))
    assert abs(npfunc.grad(sfs_loglik)(th_w, sfs, n)) < 1e-12
    dd = repeat_calls(npfunc.grad(npfunc.grad(sfs_loglik)), (20.0, sfs, n), (25.0, sfs, n))
    np.testing.assert_allclose(dd[0], -sfs.sum() / 20.0**2, rtol=1e-12)
    times = np.array([0.02, 0.05, 0.08, 0.15, 0.3])
    ll = coalescent_loglik(0.0, times)
    assert isinstance(ll, np.float64)
    assert_jit_replays(coalescent_loglik, (np.float64(0.0), times), (np.float64(0.5), times * 2))
    gc = repeat_calls(npfunc.grad(coalescent_loglik), (0.0, times), (-0.5, times))
    assert_deriv(gc[0], scalar_fd(lambda l: coalescent_loglik(l, times), 0.0))
    hc = repeat_calls(npfunc.hessian(coalescent_loglik), (0.0, times))
    assert_deriv(hc[0], scalar_fd(lambda l: npfunc.grad(coalescent_loglik)(l, times), 0.0), rtol=1e-6)
    lnes = np.array([-1.0, 0.0, 1.0])
    assert_same(npfunc.vmap(coalescent_loglik, in_dims=(0, None))(lnes, times),
                np.stack([coalescent_loglik(l, times) for l in lnes]))


def lande_response(G, P, S):
    """Multivariate breeder's equation: beta = P^-1 S, response R = G beta."""
    beta = np.linalg.solve(P, S)
    return G @ beta


def test_lande_equation_response_to_selection():
    G = np.array([[0.5, 0.2], [0.2, 0.4]])
    P = np.array([[1.0, 0.3], [0.3, 0.8]])
    S = np.array([0.3, -0.1])
    R = lande_response(G, P, S)
    assert_jit_replays(lande_response, (G, P, S), (G * 1.1, P, S * 2))
    J = npfunc.jacrev(lande_response, argnums=1)(G, P, S)
    assert_deriv(J, fd(lambda M: lande_response(G, M, S), P))
    Jf = npfunc.jacfwd(lande_response, argnums=1)(G, P, S)
    np.testing.assert_allclose(Jf, J, rtol=1e-12, atol=1e-15)
    Ss = np.stack([S, -S, 2 * S])
    assert_same(npfunc.vmap(lande_response, in_dims=(None, None, 0))(G, P, Ss),
                np.stack([lande_response(G, P, s) for s in Ss]))
    # the univariate breeder's equation R = h^2 S
    np.testing.assert_allclose(lande_response(G[:1, :1], P[:1, :1], S[:1]), 0.5 * 0.3)


# ==== 4. capture-recapture and distance sampling ================================================


def lincoln_petersen(M, C, R):
    """Lincoln-Petersen and Chapman abundance estimates with Chapman's variance."""
    N_lp = M * C / R
    N_ch = (M + 1) * (C + 1) / (R + 1) - 1
    var = (M + 1) * (C + 1) * (M - R) * (C - R) / ((R + 1) ** 2 * (R + 2))
    return {"lincoln_petersen": N_lp, "chapman": N_ch, "se": np.sqrt(var)}


def hypergeom_profile(N, M=60.0, C=50.0, R=12.0):
    """Hypergeometric log-likelihood of R recaptures as a continuous function of N."""
    lchoose = lambda n, k: sps.gammaln(n + 1) - sps.gammaln(k + 1) - sps.gammaln(n - k + 1)
    return lchoose(M, R) + lchoose(N - M, C - R) - lchoose(N, C)


def test_lincoln_petersen_dict_and_continuous_hypergeometric_profile():
    want = lincoln_petersen(60.0, 50.0, 12.0)
    assert_tree_same(npfunc.jit(lincoln_petersen)(60.0, 50.0, 12.0), want)
    assert_jit_replays(lincoln_petersen, (np.float64(60.0), np.float64(50.0), np.float64(12.0)),
                       (np.float64(80.0), np.float64(40.0), np.float64(9.0)))
    g = npfunc.jacrev(lambda x: lincoln_petersen(*x)["chapman"])(np.array([60.0, 50.0, 12.0]))
    assert_deriv(g, fd(lambda x: lincoln_petersen(*x)["chapman"], np.array([60.0, 50.0, 12.0])))
    # the profile's maximum is near M C / R; score by grad, curvature by grad(grad)
    d = repeat_calls(npfunc.grad(hypergeom_profile), (240.0,), (260.0,))
    assert_deriv(d[0], scalar_fd(hypergeom_profile, 240.0, eps=1e-3))
    root = scipy.optimize.brentq(npfunc.grad(hypergeom_profile), 200.0, 300.0)
    assert 240.0 < root < 255.0
    dd = repeat_calls(npfunc.grad(npfunc.grad(hypergeom_profile)), (root,), (230.0,))
    assert dd[0] < 0
    assert_deriv(dd[1], scalar_fd(npfunc.grad(hypergeom_profile), 230.0, eps=1e-3), rtol=1e-5)
    Ns = np.array([150.0, 250.0, 400.0])
    assert_same(npfunc.vmap(hypergeom_profile)(Ns), np.stack([hypergeom_profile(n) for n in Ns]))
    # the plain profile agrees with scipy.stats.hypergeom at integer N
    np.testing.assert_allclose(hypergeom_profile(250.0), st.hypergeom.logpmf(12, 250, 60, 50), rtol=1e-10)


_HISTORIES = np.array([
    [1, 1, 0, 1, 0],
    [1, 0, 1, 1, 1],
    [0, 1, 1, 0, 0],
    [1, 1, 1, 1, 0],
    [0, 0, 1, 0, 1],
    [1, 0, 0, 0, 0],
    [0, 1, 0, 0, 0],
    [1, 1, 0, 0, 1],
])


def cjs_loglik(theta, histories):
    """Cormack-Jolly-Seber: survival phi_t and detection p_t (logit scale, one per interval);
    chi_t = probability of never being seen after occasion t, by the backward recursion."""
    T = histories.shape[1]
    phi = sps.expit(theta[: T - 1])
    p = sps.expit(theta[T - 1:])
    chi = [1.0]
    for t in range(T - 2, -1, -1):
        chi.insert(0, (1 - phi[t]) + phi[t] * (1 - p[t]) * chi[0])
    ll = 0.0
    for h in histories:
        seen = np.flatnonzero(h)
        first, last = seen[0], seen[-1]
        if first == T - 1:
            continue                  # first caught on the last occasion: no information
        for t in range(first, last):
            ll = ll + np.log(phi[t])
            ll = ll + (np.log(p[t]) if h[t + 1] else np.log1p(-p[t]))
        ll = ll + np.log(chi[last])
    return ll


def test_cormack_jolly_seber_likelihood():
    theta = np.array([0.8, 0.5, 1.0, 0.2, -0.3, 0.4, 0.1, 0.0])
    want = cjs_loglik(theta, _HISTORIES)
    assert isinstance(want, np.float64)
    # the histories steer Python loops: traced by jit they are refused (flatnonzero's shape);
    # closed over, they are constants of the recording
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"flatnonzero"):
        npfunc.jit(cjs_loglik)(theta, _HISTORIES)
    f = lambda th: cjs_loglik(th, _HISTORIES)
    assert_jit_replays(f, (theta,), (theta * 0.5,))
    g = repeat_calls(npfunc.grad(f), (theta,), (theta - 0.3,))
    assert_deriv(g[0], fd(f, theta))
    assert_deriv(g[1], fd(f, theta - 0.3))
    H = repeat_calls(npfunc.hessian(f), (theta,), n=3)
    assert_deriv(H[0], fd(npfunc.grad(f), theta), atol=1e-7)
    v = np.linspace(-1, 1, 8)
    hv = repeat_calls(lambda th: npfunc.jvp(npfunc.grad(f), (th,), (v,))[1], (theta,))
    np.testing.assert_allclose(hv[0], H[0] @ v, rtol=1e-10, atol=1e-13)
    jg = repeat_calls(npfunc.jit(npfunc.grad(f)), (theta,), (theta - 0.3,), exact=False)
    np.testing.assert_allclose(jg[1], g[1], rtol=1e-12)
    thetas = np.stack([theta, theta + 0.1, theta - 0.2])
    pg = npfunc.vmap(npfunc.grad(cjs_loglik), in_dims=(0, None))(thetas, _HISTORIES)
    for k in range(3):
        assert_deriv(pg[k], fd(f, thetas[k]))


def schnabel_nll(logN, caught, marked_before, recaptured):
    """Schnabel multiple census: recaptures ~ Poisson(caught_t * M_t / N)."""
    N = np.exp(logN)
    lam = caught * marked_before / N
    return -np.sum(st.poisson.logpmf(recaptured, lam))


def halfnormal_distance_nll(log_sigma, distances, w=50.0):
    """Line-transect distance sampling with a half-normal detection function truncated at w."""
    sigma = np.exp(log_sigma)
    mu = sigma * np.sqrt(np.pi / 2) * sps.erf(w / (sigma * np.sqrt(2)))   # effective strip half-width
    return -np.sum(-distances**2 / (2 * sigma**2) - np.log(mu))


def test_schnabel_and_distance_sampling_likelihoods():
    caught = np.array([30.0, 25.0, 40.0, 35.0])
    marked = np.array([0.0, 30.0, 50.0, 80.0])
    recap = np.array([0, 4, 8, 13])
    f = lambda l: schnabel_nll(l, caught, marked, recap)
    assert_jit_replays(schnabel_nll, (np.float64(5.3), caught, marked, recap), (np.float64(5.6), caught, marked, recap))
    d = repeat_calls(npfunc.grad(f), (5.3,), (5.6,))
    assert_deriv(d[0], scalar_fd(f, 5.3))
    dd = repeat_calls(npfunc.grad(npfunc.grad(f)), (5.3,), (5.6,))
    assert_deriv(dd[0], scalar_fd(npfunc.grad(f), 5.3), rtol=1e-6)
    # the first occasion has no marked animals: lambda = 0 and the pmf of 0 is 1
    assert np.isfinite(f(5.3))
    dist = np.array([2.0, 5.5, 11.0, 0.5, 20.0, 8.0, 14.0, 3.0, 33.0, 6.0])
    g = lambda l: halfnormal_distance_nll(l, dist)
    assert_jit_replays(halfnormal_distance_nll, (np.float64(2.5), dist), (np.float64(2.8), dist * 1.2))
    d = repeat_calls(npfunc.grad(g), (2.5,), (2.8,))
    assert_deriv(d[0], scalar_fd(g, 2.5))
    dd = repeat_calls(npfunc.grad(npfunc.grad(g)), (2.5,), (2.8,))
    assert_deriv(dd[1], scalar_fd(npfunc.grad(g), 2.8), rtol=1e-6)
    sigmas = np.array([2.0, 2.5, 3.0])
    assert_same(npfunc.vmap(halfnormal_distance_nll, in_dims=(0, None))(sigmas, dist),
                np.stack([halfnormal_distance_nll(s, dist) for s in sigmas]))


# ==== 5. species distributions ======================================================================


def sdm_nll(beta, temp, precip, presence):
    """Logistic species-distribution model with a quadratic (Gaussian) niche in temperature."""
    eta = beta[0] + beta[1] * temp + beta[2] * temp**2 + beta[3] * precip
    return np.sum(np.logaddexp(0.0, eta) - presence * eta)


def occupancy_nll(theta, y):
    """Single-season occupancy (MacKenzie): psi occupancy, p detection per visit; a site with
    no detections is either occupied and missed or unoccupied."""
    psi, p = sps.expit(theta[0]), sps.expit(theta[1])
    det = y.sum(axis=1)
    K = y.shape[1]
    lik_occ = psi * p**det * (1 - p) ** (K - det)
    lik = np.where(det > 0, lik_occ, lik_occ + (1 - psi))
    return -np.sum(np.log(lik))


def test_species_distribution_logistic_and_occupancy_models():
    rng = np.random.default_rng(11)
    temp = rng.uniform(-2, 2, 30)
    precip = rng.uniform(0, 1, 30)
    eta = 0.5 + 0.3 * temp - 0.8 * temp**2 + 1.0 * precip
    pres = (rng.random(30) < sps.expit(eta)).astype(float)
    beta = np.array([0.2, 0.1, -0.5, 0.8])
    f = lambda b: sdm_nll(b, temp, precip, pres)
    assert_jit_replays(sdm_nll, (beta, temp, precip, pres), (beta * 2, temp, precip, pres))
    g = repeat_calls(npfunc.grad(f), (beta,), (beta * 2,))
    assert_deriv(g[0], fd(f, beta))
    H = repeat_calls(npfunc.hessian(f), (beta,), (beta * 2,))
    X = np.stack([np.ones(30), temp, temp**2, precip], axis=1)
    mu = sps.expit(X @ beta)
    np.testing.assert_allclose(H[0], X.T @ (X * (mu * (1 - mu))[:, None]), rtol=1e-10)
    # per-site gradients (influence of each site) by vmap over rows
    per = npfunc.vmap(npfunc.grad(sdm_nll), in_dims=(None, 0, 0, 0))(beta, temp, precip, pres)
    np.testing.assert_allclose(per.sum(axis=0), g[0], rtol=1e-10)
    y = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 1]])
    th = np.array([0.3, -0.2])
    o = lambda t: occupancy_nll(t, y)
    assert_jit_replays(occupancy_nll, (th, y), (th + 1.0, y))
    go = repeat_calls(npfunc.grad(o), (th,), (th + 1.0,))
    assert_deriv(go[0], fd(o, th))
    Ho = repeat_calls(npfunc.hessian(o), (th,), n=3)
    assert_deriv(Ho[0], fd(npfunc.grad(o), th), atol=1e-7)
    ys = np.stack([y, y[::-1]], axis=2)       # two species along the last axis
    assert_same(npfunc.vmap(occupancy_nll, in_dims=(None, 2))(th, ys),
                np.stack([occupancy_nll(th, ys[:, :, k]) for k in range(2)]))


# ==== 6. diversity ====================================================================================


def shannon(abundance):
    p = abundance / abundance.sum()
    return -np.sum(sps.xlogy(p, p))


def shannon_masked(abundance):
    p = abundance / abundance.sum()
    p = p[p > 0]
    return -np.sum(p * np.log(p))


def simpson(abundance):
    p = abundance / np.sum(abundance)
    D = np.sum(p**2)
    return {"simpson": 1 - D, "inverse_simpson": 1 / D}


def hill_number(abundance, q):
    """Hill diversity of order q; the q = 1 limit (exp of Shannon) by an early return."""
    p = abundance / abundance.sum()
    p = p[p > 0]
    if q == 1:
        return np.exp(-np.sum(p * np.log(p)))
    return np.sum(p**q) ** (1 / (1 - q))


def pielou(abundance):
    S = np.count_nonzero(abundance)
    return shannon(abundance) / np.log(S)


def test_shannon_simpson_hill_and_evenness():
    x = np.array([40.0, 25.0, 0.0, 12.0, 8.0, 3.0, 0.0, 1.0])
    pos = x[x > 0]
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"np\.where\(mask, x, 0\)"):
        npfunc.jit(shannon_masked)(pos)
    for f in (shannon, shannon_masked, pielou):
        if f is not shannon_masked:
            assert_jit_replays(f, (pos,), (pos[::-1] + 1.0,))
        g = repeat_calls(npfunc.grad(f), (pos,), (pos + np.arange(6.0),))
        assert_deriv(g[0], fd(f, pos, eps=1e-4))
        assert_deriv(g[1], fd(f, pos + np.arange(6.0), eps=1e-4))
    # with absent species: the masked spelling drops them (its derivative in a zero
    # abundance is the normalisation's only); the xlogy spelling: see the strict xfail below
    g = npfunc.grad(shannon_masked)(x)
    keep = x > 0
    assert_deriv(g[keep], fd(shannon_masked, x, eps=1e-4)[keep])
    np.testing.assert_allclose(g[~keep], (1 - shannon_masked(x)) / x.sum(), rtol=1e-12)
    np.testing.assert_allclose(shannon(x), shannon_masked(x), rtol=1e-14)
    assert_same(npfunc.jit(shannon)(x), shannon(x))
    assert_jit_replays(shannon, (x,), (x[::-1].copy(),))
    assert_jit_replays(simpson, (x,), (x * 2 + 1,))
    gs = npfunc.jacrev(lambda a: simpson(a)["inverse_simpson"])(x)
    assert_deriv(gs, fd(lambda a: simpson(a)["inverse_simpson"], x))
    # a community matrix: sites along axis 1
    comm = np.stack([x, x[::-1] + 1.0, np.ones(8)], axis=1)
    assert_same(npfunc.vmap(shannon, in_dims=1)(comm), np.stack([shannon(comm[:, j]) for j in range(3)]))
    sv = npfunc.vmap(simpson, in_dims=1)(comm)
    for k in ("simpson", "inverse_simpson"):
        assert_same(sv[k], np.stack([simpson(comm[:, j])[k] for j in range(3)]))
    pg = npfunc.vmap(npfunc.grad(shannon), in_dims=1)(comm[:, 1:])
    for j in (1, 2):
        assert_deriv(pg[j - 1], fd(shannon, comm[:, j], eps=1e-4))
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"close over it"):
        npfunc.jit(hill_number, static_argnums=1)(x, 2.0)
    for q in (0.0, 0.5, 1.0, 2.0):
        g = npfunc.grad(hill_number)(x, q)
        keep = x > 0
        assert_deriv(g[keep], fd(lambda a: hill_number(a, q), x, eps=1e-4)[keep])
    # derivative in the order q away from 1, and its continuity through q = 1
    dq = repeat_calls(npfunc.grad(hill_number, argnums=1), (x, 2.0), (x, 0.5))
    assert_deriv(dq[0], scalar_fd(lambda q: hill_number(x, q), 2.0))
    np.testing.assert_allclose(hill_number(x, 1.0 + 1e-7), hill_number(x, 1.0), rtol=1e-6)


def test_shannon_xlogy_gradient_with_absent_species_follows_the_nan_convention():
    """xlogy(p, p)'s derivative at p = 0 is log(0) = -inf (true: -p log p has an infinite
    slope there) and the normalisation multiplies it by a_i = 0: inf * 0 = NaN in every entry,
    in both modes, with NumPy's RuntimeWarning -- the 0 * inf convention of
    docs/conventions.md ("Discarded entries"), as in JAX and PyTorch. The fix it names, to
    compute only the entries used (p[p > 0]), gives the finite partials."""
    x = np.array([40.0, 25.0, 0.0, 12.0, 8.0, 3.0, 0.0, 1.0])
    for transform in (npfunc.grad, npfunc.jacfwd):
        with pytest.warns(RuntimeWarning):
            g = transform(shannon)(x)
        assert np.isnan(g).all()
    keep = x > 0
    assert_deriv(npfunc.grad(shannon_masked)(x)[keep], fd(shannon_masked, x, eps=1e-4)[keep])


def test_float32_abundances_keep_float32():
    x = np.array([40.0, 25.0, 12.0, 8.0, 3.0, 1.0], dtype=np.float32)
    H = shannon(x)
    assert isinstance(H, np.float32)
    assert_same(npfunc.jit(shannon)(x), H, rtol=1e-6)
    g = npfunc.grad(shannon)(x)
    assert g.dtype == np.float32
    assert_deriv(g, fd(shannon, x.astype(np.float64)), rtol=1e-4, atol=1e-6)
    s = simpson(x)
    got = npfunc.jit(simpson)(x)
    assert_tree_same(got, s, rtol=1e-6)


def rarefaction(n, counts):
    """Expected richness in a subsample of n individuals (Hurlbert), with gammaln."""
    N = counts.sum()
    lchoose = lambda a, b: sps.gammaln(a + 1) - sps.gammaln(b + 1) - sps.gammaln(a - b + 1)
    absent = np.where(N - counts >= n, np.exp(lchoose(N - counts, n) - lchoose(N, n)), 0.0)
    return np.sum(1 - absent)


def bray_curtis(u, v):
    return np.sum(np.abs(u - v)) / np.sum(u + v)


def test_rarefaction_bray_curtis_and_species_area():
    counts = np.array([50.0, 20.0, 10.0, 5.0, 2.0, 1.0, 1.0])
    assert_same(npfunc.jit(rarefaction)(np.float64(20.0), counts), rarefaction(20.0, counts))
    assert_jit_replays(rarefaction, (np.float64(20.0), counts), (np.float64(35.0), counts))
    d = repeat_calls(npfunc.grad(rarefaction), (20.0, counts), (35.0, counts))
    assert_deriv(d[0], scalar_fd(lambda n: rarefaction(n, counts), 20.0))
    ns = np.array([5.0, 10.0, 40.0])
    assert_same(npfunc.vmap(rarefaction, in_dims=(0, None))(ns, counts), np.stack([rarefaction(n, counts) for n in ns]))
    u = np.array([10.0, 3.0, 0.0, 5.0])
    v = np.array([4.0, 3.0, 2.0, 9.0])
    want = bray_curtis(u, v)
    np.testing.assert_allclose(want, scipy.spatial.distance.braycurtis(u, v), rtol=1e-14)
    assert_jit_replays(bray_curtis, (u, v), (v, u))
    g = npfunc.grad(bray_curtis)(u, v)
    keep = u != v
    assert_deriv(g[keep], fd(lambda a: bray_curtis(a, v), u)[keep])
    # species-area relationship S = c A^z by a log-log polyfit
    area = np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    S = np.array([5.0, 11.0, 22.0, 48.0, 95.0])
    sar = lambda s: np.polyfit(np.log(area), np.log(s), 1)[0]
    assert_same(npfunc.jit(sar)(S), sar(S))
    assert_deriv(npfunc.grad(sar)(S), fd(sar, S))


# ==== 7. metapopulations ==============================================================================


def levins(c, e, p0=0.1, dt=0.1, steps=100):
    """Levins' metapopulation dp/dt = c p (1 - p) - e p, Euler steps; equilibrium 1 - e/c."""
    p = p0
    for _ in range(steps):
        p += dt * (c * p * (1 - p) - e * p)
    return p


def metapopulation_capacity(areas, coords, alpha=1.0):
    """Hanski & Ovaskainen: leading eigenvalue of M_ij = exp(-alpha d_ij) A_i A_j (i != j)."""
    d = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    M = np.exp(-alpha * d) * np.outer(areas, areas)
    np.fill_diagonal(M, 0.0)
    return np.linalg.eigh(M)[0][-1]


def metapopulation_capacity_offdiag(areas, coords, alpha=1.0):
    """The same, the distance's square kept away from 0 on the (discarded) diagonal."""
    sq = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    off = ~np.eye(len(areas), dtype=bool)
    d = np.sqrt(np.where(off, sq, 1.0))
    M = np.where(off, np.exp(-alpha * d) * np.outer(areas, areas), 0.0)
    return np.linalg.eigh(M)[0][-1]


def test_levins_and_metapopulation_capacity():
    p = levins(0.5, 0.2, steps=1000)
    np.testing.assert_allclose(p, 1 - 0.2 / 0.5, rtol=1e-10)
    assert_jit_replays(levins, (np.float64(0.5), np.float64(0.2)), (np.float64(0.8), np.float64(0.1)))
    d = repeat_calls(npfunc.grad(levins, argnums=(0, 1)), (0.5, 0.2), (0.8, 0.1))
    assert_deriv(d[0][0], scalar_fd(lambda c: levins(c, 0.2), 0.5))
    assert_deriv(d[0][1], scalar_fd(lambda e: levins(0.5, e), 0.2))
    dd = repeat_calls(npfunc.grad(npfunc.grad(levins)), (0.5, 0.2), (0.8, 0.1))
    assert_deriv(dd[0], scalar_fd(lambda c: npfunc.grad(levins)(c, 0.2), 0.5), rtol=1e-6)
    cs = np.array([0.3, 0.5, 0.9])
    assert_same(npfunc.vmap(levins, in_dims=(0, None))(cs, 0.2), np.stack([levins(c, 0.2) for c in cs]))
    areas = np.array([1.0, 2.5, 0.7, 1.8, 3.0])
    coords = np.array([[0.0, 0.0], [1.0, 0.3], [2.0, 1.5], [0.5, 2.0], [1.7, 0.9]])
    lam = metapopulation_capacity(areas, coords)
    assert isinstance(lam, np.float64)
    assert_jit_replays(metapopulation_capacity, (areas, coords), (areas * 1.5, coords + 0.1))
    g = repeat_calls(npfunc.grad(metapopulation_capacity), (areas, coords), (areas * 1.5, coords))
    assert_deriv(g[0], fd(lambda a: metapopulation_capacity(a, coords), areas))
    # the coordinates: sqrt of the zero diagonal distance, discarded by fill_diagonal, meets
    # a zero cotangent in reverse mode: NaN with NumPy's warning (docs/conventions.md,
    # "Discarded entries"); forward mode and the fix named there give the derivative
    want = fd(lambda c: metapopulation_capacity(areas, c), coords)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(npfunc.grad(metapopulation_capacity, argnums=1)(areas, coords)).all()
    # forward mode's result is right, but sqrt's rule evaluated 0.5/0 at the discarded entries:
    # NumPy's warnings, which the plain program does not emit (the same convention)
    with pytest.warns(RuntimeWarning):
        Jc = npfunc.jacfwd(metapopulation_capacity, argnums=1)(areas, coords)
    assert_deriv(Jc, want)
    gc = repeat_calls(npfunc.grad(metapopulation_capacity_offdiag, argnums=1), (areas, coords), (areas, coords * 1.1))
    assert_deriv(gc[0], want)
    assert_same(metapopulation_capacity_offdiag(areas, coords), lam)
    # the plain coordinates and areas are not modified (fill_diagonal acts on M only)
    assert coords[0, 0] == 0.0 and areas[0] == 1.0
    ga = npfunc.grad(metapopulation_capacity, argnums=2)(areas, coords, 1.0)
    assert_deriv(ga, scalar_fd(lambda a: metapopulation_capacity(areas, coords, a), 1.0))


# ==== 8. phylogenetics ===================================================================================


def jc_rate_matrix(mu=1.0):
    Q = np.full((4, 4), mu / 3)
    np.fill_diagonal(Q, -mu)
    return Q


def jc_transition(t):
    return scipy.linalg.expm(jc_rate_matrix() * t)


def jc_pair_loglik(d, n_same, n_diff):
    """Log-likelihood of an aligned pair at distance d (substitutions per site)."""
    P = jc_transition(d)
    return n_same * np.log(0.25 * P[0, 0]) + n_diff * np.log(0.25 * P[0, 1])


def test_jukes_cantor_expm_against_closed_form_and_ml_distance():
    t = 0.3
    P = jc_transition(t)
    np.testing.assert_allclose(P[0, 0], 0.25 + 0.75 * np.exp(-4 * t / 3), rtol=1e-12)
    np.testing.assert_allclose(P[0, 1], 0.25 - 0.25 * np.exp(-4 * t / 3), rtol=1e-12)
    assert_jit_replays(jc_transition, (np.float64(0.3),), (np.float64(1.2),))
    J = repeat_calls(npfunc.jacfwd(jc_transition), (0.3,), (1.2,))
    np.testing.assert_allclose(J[0], jc_rate_matrix() @ P, rtol=1e-10, atol=1e-14)
    Jr = npfunc.jacrev(jc_transition)(0.3)
    np.testing.assert_allclose(Jr, J[0], rtol=1e-10, atol=1e-14)
    ll = lambda d: jc_pair_loglik(d, 80.0, 20.0)
    d1 = repeat_calls(npfunc.grad(ll), (0.2,), (0.3,))
    assert_deriv(d1[0], scalar_fd(ll, 0.2))
    d2 = repeat_calls(npfunc.grad(npfunc.grad(ll)), (0.2,), (0.3,))
    assert_deriv(d2[0], scalar_fd(npfunc.grad(ll), 0.2), rtol=1e-6)
    # ML distance = the closed form -3/4 log(1 - 4/3 p)
    d_hat = scipy.optimize.brentq(npfunc.grad(ll), 0.01, 2.0, xtol=1e-14)
    np.testing.assert_allclose(d_hat, -0.75 * np.log(1 - 4 / 3 * 0.2), rtol=1e-10)
    ts = np.array([0.1, 0.5, 2.0])
    assert_same(npfunc.vmap(jc_transition)(ts), np.stack([jc_transition(x) for x in ts]))


def k80_transition(kappa, t):
    """Kimura 2-parameter: transitions (A<->G, C<->T) at kappa times the transversion rate,
    normalised to one substitution per unit time."""
    b = 1.0
    a = kappa
    Q = np.array([[0.0, b, a, b],
                  [b, 0.0, b, a],
                  [a, b, 0.0, b],
                  [b, a, b, 0.0]])
    Q = Q - np.diag(Q.sum(axis=1))
    rate = -np.mean(np.diag(Q))
    return scipy.linalg.expm(Q / rate * t)


def pruning_loglik(branch, kappa, patterns, weights, like=False):
    """Felsenstein pruning on the tree ((1:b1, 2:b2):b3, 3:b4) rooted at the internal join,
    uniform base frequencies; patterns are (sites, 3) nucleotide indices."""
    P1, P2, P3, P4 = (k80_transition(kappa, b) for b in branch)
    L = np.asarray(np.eye(4), like=patterns) if like else np.eye(4)
    inner = (P1 @ L[:, patterns[:, 0]]) * (P2 @ L[:, patterns[:, 1]])    # (4, sites) at the join
    site = 0.25 * np.sum((P3 @ inner) * (P4 @ L[:, patterns[:, 2]]), axis=0)
    return np.sum(weights * np.log(site))


def test_k80_and_felsenstein_pruning_likelihood():
    P = k80_transition(3.0, 0.2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-13)
    assert_jit_replays(k80_transition, (np.float64(3.0), np.float64(0.2)), (np.float64(2.0), np.float64(0.5)))
    Jk = npfunc.jacrev(k80_transition)(3.0, 0.2)
    assert_deriv(Jk, scalar_fd(lambda k: k80_transition(k, 0.2), 3.0))
    patterns = np.array([[0, 0, 0], [0, 2, 0], [1, 1, 3], [2, 2, 2], [0, 1, 2], [3, 3, 1]])
    weights = np.array([40.0, 6.0, 3.0, 35.0, 1.0, 2.0])
    br = np.array([0.1, 0.15, 0.05, 0.2])
    f = lambda b: pruning_loglik(b, 2.5, patterns, weights)
    assert isinstance(f(br), np.float64)
    # traced site patterns index the identity np.eye(4) made in the program (refused naming
    # np.asarray(table, like=i) before pending arrays): jit records and replays NumPy's values,
    # new patterns included
    assert_jit_replays(pruning_loglik, (br, np.float64(2.5), patterns, weights),
                       (br * 2, np.float64(4.0), (patterns + 1) % 4, weights))
    assert_jit_replays(lambda b, k, pat: pruning_loglik(b, k, pat, weights, like=True),
                       (br, np.float64(2.5), patterns), (br * 2, np.float64(4.0), (patterns + 1) % 4))
    # the patterns as data, closed over
    assert_jit_replays(lambda b, k: pruning_loglik(b, k, patterns, weights), (br, np.float64(2.5)),
                       (br * 2, np.float64(4.0)))
    g = repeat_calls(npfunc.grad(f), (br,), (br * 1.5,))
    assert_deriv(g[0], fd(f, br))
    gk = repeat_calls(npfunc.grad(pruning_loglik, argnums=1), (br, 2.5, patterns, weights))
    assert_deriv(gk[0], scalar_fd(lambda k: pruning_loglik(br, k, patterns, weights), 2.5))
    H = repeat_calls(npfunc.hessian(f), (br,), n=3)
    assert_deriv(H[0], fd(npfunc.grad(f), br), atol=1e-6)
    # per-site log-likelihood gradients by vmap over site patterns (one site each)
    one = lambda b, pat, like=False: pruning_loglik(b, 2.5, pat[None, :], np.ones(1), like=like)
    # (the plain identity indexed by batched patterns, refused before pending arrays: the
    # values of a loop, and the gradients of the like= fix)
    per = npfunc.vmap(npfunc.grad(one), in_dims=(None, 0, None))(br, patterns, True)
    assert_same(npfunc.vmap(npfunc.grad(one), in_dims=(None, 0))(br, patterns), per, rtol=1e-12)
    assert_same(npfunc.vmap(one, in_dims=(None, 0))(br, patterns), np.stack([one(br, pat) for pat in patterns]))
    assert_same(npfunc.vmap(one, in_dims=(None, 0, None))(br, patterns, True),
                np.stack([one(br, pat) for pat in patterns]))
    np.testing.assert_allclose(weights @ per, g[0], rtol=1e-10)


def bm_loglik(theta, traits, C):
    """Brownian motion on a phylogeny with Pagel's lambda scaling the off-diagonal shared
    branch lengths: traits ~ N(mu 1, sigma2 (lambda C_off + diag C))."""
    mu, log_s2, lam = theta
    V = np.exp(log_s2) * (lam * (C - np.diag(np.diag(C))) + np.diag(np.diag(C)))
    return st.multivariate_normal.logpdf(traits, mean=mu * np.ones(len(traits)), cov=V)


def test_brownian_motion_pagel_lambda_likelihood():
    C = np.array([[1.0, 0.6, 0.2, 0.2],
                  [0.6, 1.0, 0.2, 0.2],
                  [0.2, 0.2, 1.0, 0.7],
                  [0.2, 0.2, 0.7, 1.0]])
    traits = np.array([1.2, 1.0, 2.1, 2.4])
    th = np.array([1.5, -0.5, 0.8])
    want = bm_loglik(th, traits, C)
    assert isinstance(want, np.float64)
    assert_jit_replays(bm_loglik, (th, traits, C), (th * 0.9, traits + 0.2, C))
    f = lambda t: bm_loglik(t, traits, C)
    g = repeat_calls(npfunc.grad(f), (th,), (th * 0.9,))
    assert_deriv(g[0], fd(f, th))
    H = repeat_calls(npfunc.hessian(f), (th,), (th * 0.9,))
    assert_deriv(H[0], fd(npfunc.grad(f), th), atol=1e-7)
    ths = np.stack([th, th * 0.9, th * 1.1], axis=1)
    assert_same(npfunc.vmap(bm_loglik, in_dims=(1, None, None))(ths, traits, C),
                np.stack([bm_loglik(ths[:, k], traits, C) for k in range(3)]))


# ==== 9. tabulated thermal performance ===================================================================

_TEMPS = np.array([5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0])
_RATES = np.array([0.05, 0.15, 0.35, 0.6, 0.8, 0.7, 0.2])


def thermal_growth(T, spline=False):
    """Intrinsic growth rate at temperature T from a measured thermal-performance table."""
    if spline:
        return scipy.interpolate.CubicSpline(_TEMPS, _RATES)(T)
    return np.interp(T, _TEMPS, _RATES)


def seasonal_population(amplitude, N0=10.0, K=100.0, days=60):
    """Logistic growth under a seasonal temperature cycle, the rate read from the table."""
    N = N0
    for d in range(days):
        T = 18.0 + amplitude * np.sin(2 * np.pi * d / 60)
        r = thermal_growth(T, spline=True)
        N = N + 0.1 * r * N * (1 - N / K)
    return N


def test_thermal_performance_interp_and_spline():
    Ts = np.array([7.0, 18.0, 26.5, 33.0])
    for spline in (False, True):
        want = thermal_growth(Ts, spline)
        assert_same(npfunc.jit(thermal_growth, static_argnums=1)(Ts, spline), want)
        J = npfunc.jacfwd(thermal_growth)(Ts, spline)
        assert_deriv(J, fd(lambda t: thermal_growth(t, spline), Ts))
        assert_same(npfunc.vmap(thermal_growth, in_dims=(0, None))(Ts, spline),
                    np.stack([thermal_growth(t, spline) for t in Ts]))
    d = repeat_calls(npfunc.grad(seasonal_population), (6.0,), (8.0,))
    assert_deriv(d[0], scalar_fd(seasonal_population, 6.0))
    assert_jit_replays(seasonal_population, (np.float64(6.0),), (np.float64(8.0),))


# ==== 10. in-place updates of the caller's arrays ========================================================


def harvest_in_place(stock, rates, years=3):
    """Project an age-structured stock in place (the caller's array is the state) with a
    harvest fraction per class; returns the total catch."""
    L = leslie(np.array([0.0, 1.1, 1.6]), np.array([0.7, 0.5]))
    catch = 0.0
    for _ in range(years):
        stock[:] = L @ stock
        taken = stock * rates
        stock -= taken
        catch = catch + taken.sum()
    return catch


def test_in_place_projection_of_the_callers_stock():
    s0 = np.array([100.0, 40.0, 10.0])
    rates = np.array([0.0, 0.1, 0.3])
    plain_stock = s0.copy()
    want = harvest_in_place(plain_stock, rates)
    assert isinstance(want, np.float64)
    st_jit = s0.copy()
    jf = npfunc.jit(harvest_in_place)
    assert_same(jf(st_jit, rates), want)
    assert_same(st_jit, plain_stock)           # the caller's array updated as by the plain program
    st2, st2_plain = s0 * 2, s0 * 2
    assert_same(jf(st2, rates * 0.5), harvest_in_place(st2_plain, rates * 0.5))
    assert_same(st2, st2_plain)
    # derivatives in the harvest rates: a plain stock cannot hold the traced catch, refused
    # with the functional spelling (stock = stock - taken), which gives the derivative
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x -= y.*Use x = x - y"):
        npfunc.grad(lambda r: harvest_in_place(s0.copy(), r))(rates)
    f = lambda r: harvest_functional(s0, r)
    assert_same(f(rates), want)
    g = repeat_calls(npfunc.grad(f), (rates,), (rates + 0.05,))
    assert_deriv(g[0], fd(f, rates))
    # the stock itself differentiated (or batched): its in-place update reaches the caller
    s_in = s0.copy()
    gs = repeat_calls(lambda: npfunc.grad(harvest_in_place)(s_in.copy(), rates), ())
    assert_deriv(gs[0], fd(lambda x: harvest_in_place(x.copy(), rates), s0))
    npfunc.grad(harvest_in_place)(s_in, rates)
    assert_same(s_in, plain_stock)
    s_b = np.stack([s0, 2 * s0])
    got = npfunc.vmap(harvest_in_place, in_dims=(0, None))(s_b, rates)
    want_b = [s0.copy(), 2 * s0]
    assert_same(got, np.stack([harvest_in_place(x, rates) for x in want_b]))
    assert_same(s_b, np.stack(want_b))


def harvest_functional(stock, rates, years=3):
    L = leslie(np.array([0.0, 1.1, 1.6]), np.array([0.7, 0.5]))
    catch = 0.0
    for _ in range(years):
        stock = L @ stock
        taken = stock * rates
        stock = stock - taken
        catch = catch + taken.sum()
    return catch


# ==== 11. more likelihoods and an extinction time ============================================================


def hwe_multinomial(p, counts):
    """Hardy-Weinberg genotype likelihood by scipy.stats.multinomial."""
    probs = np.array([p * p, 2 * p * (1 - p), (1 - p) ** 2])
    return st.multinomial.logpmf(counts, counts.sum(), probs)


def overdispersed_allele_counts(theta, alt, depth):
    """Allele counts across pools overdispersed by a beta-binomial (mean m, precision phi)."""
    m, phi = sps.expit(theta[0]), np.exp(theta[1])
    return np.sum(st.betabinom.logpmf(alt, depth, m * phi, (1 - m) * phi))


def test_multinomial_hwe_betabinomial_and_hypergeometric_refusal():
    counts = np.array([50, 30, 20])
    want = hwe_multinomial(0.6, counts)
    assert type(want) is np.ndarray and want.shape == ()      # SciPy's multinomial: a 0-d array
    assert_jit_replays(hwe_multinomial, (np.float64(0.6), counts), (np.float64(0.45), counts))
    d = repeat_calls(npfunc.grad(hwe_multinomial), (0.6, counts), (0.45, counts))
    assert_deriv(d[0], scalar_fd(lambda p: hwe_multinomial(p, counts), 0.6))
    np.testing.assert_allclose(npfunc.grad(hwe_multinomial)(0.65, counts), 0.0, atol=1e-10)   # MLE (2*50+30)/200
    dd = repeat_calls(npfunc.grad(npfunc.grad(hwe_multinomial)), (0.6, counts), (0.45, counts))
    assert_deriv(dd[1], scalar_fd(lambda p: npfunc.grad(hwe_multinomial)(p, counts), 0.45), rtol=1e-6)
    alt = np.array([3, 10, 7, 0, 12])
    dep = np.array([20, 25, 18, 15, 30])
    th = np.array([-0.5, 2.0])
    f = lambda t: overdispersed_allele_counts(t, alt, dep)
    assert_jit_replays(overdispersed_allele_counts, (th, alt, dep), (th * 0.5, alt, dep))
    g = repeat_calls(npfunc.grad(f), (th,), (th * 0.5,))
    assert_deriv(g[0], fd(f, th))
    H = repeat_calls(npfunc.hessian(f), (th,), n=3)
    assert_deriv(H[0], fd(npfunc.grad(f), th), atol=1e-7)
    # SciPy's hypergeom has no twin: refused, naming the special-function formula used by
    # hypergeom_profile above
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"hypergeom has no npfunc twin.*scipy\.special"):
        npfunc.grad(lambda N: st.hypergeom.logpmf(12, N, 60, 50))(250.0)


def quasi_extinction_time(r, N0=10.0, threshold=1.0, events=False):
    """Time for a declining population N' = r N (1 - N/K) to reach a quasi-extinction
    threshold: by solve_ivp's terminal event, or by brentq on the dense output."""
    K = 50.0

    def rhs(t, y, r):
        return [r * y[0] * (1 - y[0] / K)]

    if events:
        hit = lambda t, y, r: y[0] - threshold
        hit.terminal = True
        sol = scipy.integrate.solve_ivp(rhs, (0.0, 10.0), [N0], args=(r,), events=hit, rtol=1e-9, atol=1e-10)
        return sol.t_events[0][0]
    sol = scipy.integrate.solve_ivp(rhs, (0.0, 10.0), [N0], args=(r,), dense_output=True,
                                    t_eval=np.linspace(0.0, 10.0, 3), rtol=1e-9, atol=1e-10)
    return scipy.optimize.brentq(lambda t: sol.sol(t)[0] - threshold, 0.0, 10.0, xtol=1e-13)


def test_quasi_extinction_time_event_refusal_and_dense_output_fix():
    r = -0.4
    exact = lambda r: np.log((10.0 / (1 - 10.0 / 50)) / (1.0 / (1 - 1.0 / 50))) / -r
    t_ev = quasi_extinction_time(r, events=True)
    t_bq = quasi_extinction_time(r)
    np.testing.assert_allclose(t_ev, exact(r), rtol=1e-6)
    np.testing.assert_allclose(t_bq, exact(r), rtol=1e-6)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"events.*brentq on sol\(t\)"):
        npfunc.grad(quasi_extinction_time)(r, events=True)
    d = repeat_calls(npfunc.grad(quasi_extinction_time), (r,), (-0.6,), n=2)
    # against the plain program's differences (the integrator's error is smooth in r)
    np.testing.assert_allclose(d[0], scalar_fd(quasi_extinction_time, r, eps=1e-4), rtol=1e-5)
    np.testing.assert_allclose(d[1], scalar_fd(exact, -0.6), rtol=1e-5)
    # brentq's Python float becomes np.float64 once it depends on a traced value (a float
    # subclass; docs/sharp-bits.md), with SciPy's value
    jf = npfunc.jit(quasi_extinction_time)
    for x in (r, -0.6, r):
        got, want = jf(np.float64(x)), quasi_extinction_time(x)
        assert type(want) is float and type(got) is np.float64
        np.testing.assert_allclose(got, want, rtol=1e-9)


# ==== 12. stationary distributions and hidden Markov occupancy =================================================


def wf_mutation_matrix(u, N=6):
    """Wright-Fisher with symmetric mutation u, written with scipy.special.binom and powers."""
    i = np.arange(N + 1)
    p = i / N
    pm = p * (1 - u) + (1 - p) * u
    return sps.binom(N, i)[None, :] * pm[:, None] ** i[None, :] * (1 - pm[:, None]) ** (N - i)[None, :]


def stationary_by_eig(u):
    w, V = np.linalg.eig(wf_mutation_matrix(u).T)
    v = np.real(V[:, np.argmin(np.abs(w - 1))])
    return v / v.sum()


def stationary_by_lstsq(u):
    P = wf_mutation_matrix(u)
    n = P.shape[0]
    A = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(A, b, rcond=None)[0]


def stationary_by_null_space(u):
    v = scipy.linalg.null_space(wf_mutation_matrix(u).T - np.eye(7))[:, 0]
    return v / v.sum()


def test_mutation_drift_stationary_distribution_three_ways():
    u = 0.05
    pi = stationary_by_eig(u)
    np.testing.assert_allclose(stationary_by_lstsq(u), pi, rtol=1e-10)
    np.testing.assert_allclose(stationary_by_null_space(u), pi, rtol=1e-10)
    np.testing.assert_allclose(pi, pi[::-1], rtol=1e-10)          # symmetric mutation
    want = fd(lambda v: stationary_by_lstsq(v[0]), np.array([u]))[:, 0]
    for f in (stationary_by_eig, stationary_by_lstsq):
        assert_jit_replays(f, (np.float64(u),), (np.float64(0.1),), rtol=1e-10)
        J = repeat_calls(npfunc.jacfwd(f), (u,), (0.1,), n=3)
        assert_deriv(J[0], want)
        np.testing.assert_allclose(npfunc.jacrev(f)(u), J[0], rtol=1e-9, atol=1e-13)
        us = np.array([0.02, 0.05, 0.2])
        assert_same(npfunc.vmap(f)(us), np.stack([f(x) for x in us]), rtol=1e-10)
    # null_space has no twin and calls svd: the refusal names both (it named svd only, as if
    # the user had called it) and the twin to write it with
    with pytest.raises(npfunc.errors.ConcretizationError,
                       match=r"scipy\.linalg\.null_space has no npfunc twin and calls scipy\.linalg\._decomp_svd\.svd"
                             r".*write what scipy\.linalg\.null_space computes with npfunc\.scipy\.linalg\.svd"):
        npfunc.jacfwd(stationary_by_null_space)(u)


def occupancy_hmm(theta, y, safe=True):
    """Dynamic occupancy as a two-state hidden Markov model (absent, present) with
    colonisation, extinction and detection; forward algorithm in log space.  An absent site
    is never detected: its emission probability is 0 and its log -inf."""
    col, ext, pdet = sps.expit(theta)
    T = np.array([[1 - col, col], [ext, 1 - ext]])
    logalpha = np.log(np.array([0.5, 0.5]))
    for obs in y:
        emit = np.array([1.0 if obs == 0 else 0.0, pdet if obs else 1 - pdet])
        if safe:
            log_emit = np.where(emit > 0, np.log(np.where(emit > 0, emit, 1.0)), -np.inf)
        else:
            log_emit = np.log(emit)
        logalpha = sps.logsumexp(logalpha[:, None] + np.log(T), axis=0) + log_emit
    return sps.logsumexp(logalpha)


def test_dynamic_occupancy_hmm_forward_algorithm():
    y = [0, 1, 1, 0, 0, 1]
    th = np.array([-0.5, -1.0, 0.3])
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        raw = occupancy_hmm(th, y, safe=False)            # the plain program warns at log(0)
    want = occupancy_hmm(th, y)
    assert_same(want, raw)
    f = lambda t: occupancy_hmm(t, y)
    assert_jit_replays(f, (th,), (th * -1.0,))
    g = repeat_calls(npfunc.grad(f), (th,), (th * -1.0,))
    assert_deriv(g[0], fd(f, th))
    H = repeat_calls(npfunc.hessian(f), (th,), n=3)
    assert_deriv(H[0], fd(npfunc.grad(f), th), atol=1e-7)
    Jf = repeat_calls(npfunc.jacfwd(f), (th,))
    np.testing.assert_allclose(Jf[0], g[0], rtol=1e-12)
    # log(emit) with its 0: reverse mode never sends the constant 0's entry to a parameter
    # (finite, the derivative); forward mode hands log a zero tangent at 0: 0/0 = NaN, the
    # documented 0 * inf convention (docs/conventions.md), fixed by the double where above
    raw_f = lambda t: occupancy_hmm(t, y, safe=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_deriv(npfunc.grad(raw_f)(th), g[0], rtol=1e-12)
        assert np.isnan(npfunc.jacfwd(raw_f)(th)).all()
    thetas = np.stack([th, th * 0.5, -th])
    pg = npfunc.vmap(npfunc.grad(occupancy_hmm), in_dims=(0, None))(thetas, y)
    for k in range(3):
        assert_deriv(pg[k], fd(f, thetas[k]))
