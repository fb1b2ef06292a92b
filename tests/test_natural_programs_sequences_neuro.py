"""Natural programs from sequence models, bioinformatics and computational
neuroscience, written first as plain NumPy/SciPy, then run under npfunc's
transforms and compared with the plain program (values, dtypes, Python types,
shapes, side effects) and with five-point differences (derivatives).

Programs:

* sequence models: HMM forward pass in log space (a preallocated table, a
  list of rows, NumPy's own ``np.logaddexp.reduce``), forward-backward
  posteriors, Rabiner's scaled forward pass, Baum-Welch's E/M step, Viterbi
  with back-pointers, a Gaussian-emission HMM with scipy.stats, second
  derivatives by composition, CTC loss, an Elman RNN, an LSTM cell, a GRU;
* alignment and chains: soft-DTW, soft Needleman-Wunsch, a first-order Markov
  chain's log-likelihood from transition counts (np.add.at, np.bincount), its
  stationary distribution by np.linalg.eig;
* bioinformatics: one-hot encoding, position weight matrices from counts,
  PWM scanning with sliding windows, best site, information content and logo
  heights, GC content, motif columns under scipy.stats.multinomial,
  Jukes-Cantor distance, Felsenstein pruning with scipy.linalg.expm;
* neurons: leaky integrate-and-fire (Python threshold and np.where reset, and
  the subthreshold membrane), exponential integrate-and-fire, Izhikevich,
  Hodgkin-Huxley by Euler steps, a cable of compartments (solve_banded);
* networks: a firing-rate network (also updating its state in place, and
  with checkpointed steps), a Wilson-Cowan pair, Oja's rule and pair-based
  STDP updating weights in place, temporal-difference learning, a spiking
  layer with a surrogate gradient (custom_vjp), an autapse step whose two
  arguments are one array;
* spike trains: Poisson GLMs (a Toeplitz design matrix and a Newton step, and
  stimulus/history kernels by np.convolve), receptive-field and LN models,
  spike-triggered average, smoothed rates, an exponential synaptic filter
  (lfilter), cross-correlograms, PSTHs, binned counts, ISI CV, a gamma ISI
  likelihood, threshold-crossing counts, time rescaling and a KS distance,
  medians and IQRs of integer counts (np.percentile), a kernel rate on a
  grid to the last spike;
* population codes: von Mises and Gaussian tuning, population vector, Poisson
  maximum-likelihood decoding (grid and Newton by grad of grad), Fisher
  information by jacfwd, softmax decoding of integer counts, divisive
  normalisation, drift-diffusion accuracy;
* field potentials: Welch band power, Hilbert phase locking, coherence,
  spike detection by scipy.signal.find_peaks, np.emath square roots.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.signal as sig
import scipy.special as sps
import scipy.stats as st
from numpy.lib.stride_tricks import sliding_window_view

import npfunc
from natural_checks import assert_deriv, assert_same, fd

RNG = np.random.default_rng(20261207)


def _hmm(K=3, M=4, T=6, seed=0):
    g = np.random.default_rng(seed)
    pi = g.dirichlet(np.ones(K))
    A = g.dirichlet(np.ones(K), size=K)
    B = g.dirichlet(np.ones(M), size=K)
    obs = g.integers(0, M, T)
    return pi, A, B, obs


def _stack(rows):
    return np.stack(rows)


# =============================================================================================
# 1. HMMs in log space
# =============================================================================================


def hmm_forward_table(log_pi, log_A, log_B, obs):
    """Forward algorithm filling a (T, K) table of log alphas, as in a textbook."""
    T = len(obs)
    K = log_pi.shape[0]
    alpha = np.zeros((T, K))
    alpha[0] = log_pi + log_B[:, obs[0]]
    for t in range(1, T):
        alpha[t] = sps.logsumexp(alpha[t - 1][:, None] + log_A, axis=0) + log_B[:, obs[t]]
    return sps.logsumexp(alpha[-1])


def hmm_forward_table_like(log_pi, log_A, log_B, obs):
    """The same with the table made like the transition matrix (the fix the refusal named
    before plain buffers took traced writes)."""
    T = len(obs)
    K = log_pi.shape[0]
    alpha = np.zeros((T, K), like=log_A)
    alpha[0] = log_pi + log_B[:, obs[0]]
    for t in range(1, T):
        alpha[t] = sps.logsumexp(alpha[t - 1][:, None] + log_A, axis=0) + log_B[:, obs[t]]
    return sps.logsumexp(alpha[-1])


def hmm_forward_numpy_only(log_pi, log_A, log_B, obs):
    """Forward pass without SciPy: NumPy's logaddexp reduction over the previous states."""
    a = log_pi + log_B[:, obs[0]]
    for o in obs[1:]:
        a = np.logaddexp.reduce(a[:, None] + log_A, axis=0) + log_B[:, o]
    return np.logaddexp.reduce(a)


def test_hmm_forward_table_into_plain_zeros_matches_like_fix():
    """The (T, K) table alpha = np.zeros((T, K)) filled with traced rows takes them
    (core/pending.py): under grad, hessian and jit (recording and replay) the plain program
    gives plain NumPy's values and the five-point derivatives, as the like= fix does."""
    pi, A, B, obs = _hmm()
    args = (np.log(pi), np.log(A), np.log(B), obs)
    want = hmm_forward_table(*args)
    args2 = (args[0], 1.3 * args[1], args[2], obs[::-1].copy())
    jp = npfunc.jit(hmm_forward_table)
    assert_same(jp(*args), want)
    assert_same(jp(*args2), hmm_forward_table(*args2))
    assert_same(jp(*args), want)
    gp = npfunc.grad(hmm_forward_table, argnums=1)(*args)
    assert_deriv(gp, fd(lambda z: hmm_forward_table(args[0], z, *args[2:]), args[1]))
    np.testing.assert_allclose(gp, npfunc.grad(hmm_forward_table_like, argnums=1)(*args), rtol=1e-12, atol=0)
    Hp = npfunc.hessian(hmm_forward_table, argnums=1)(*args)
    np.testing.assert_allclose(Hp, npfunc.hessian(hmm_forward_table_like, argnums=1)(*args), rtol=1e-12, atol=1e-15)
    grad_p = npfunc.grad(hmm_forward_table, argnums=1)
    assert_deriv(Hp, fd(lambda z: grad_p(args[0], z, *args[2:]), args[1]), atol=1e-7)
    assert_same(hmm_forward_table_like(*args), want)
    jf = npfunc.jit(hmm_forward_table_like)
    assert_same(jf(*args), want)
    args2 = (args[0], 1.3 * args[1], args[2], obs[::-1].copy())
    assert_same(jf(*args2), hmm_forward_table(*args2))
    g = npfunc.grad(hmm_forward_table_like, argnums=1)(*args)
    assert_deriv(g, fd(lambda z: hmm_forward_table(args[0], z, *args[2:]), args[1]))
    H = npfunc.hessian(hmm_forward_table_like, argnums=1)(*args)
    grad_fn = npfunc.grad(hmm_forward_table_like, argnums=1)
    assert_deriv(H, fd(lambda z: grad_fn(args[0], z, *args[2:]), args[1]), atol=1e-7)


def test_hmm_forward_vmap_over_sequences_needs_traced_emission_table():
    pi, A, B, obs = _hmm(seed=1)
    lp, lA, lB = np.log(pi), np.log(A), np.log(B)
    seqs = np.random.default_rng(11).integers(0, 4, (3, 6))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"table = np.asarray\(table, like=i\)"):
        npfunc.vmap(hmm_forward_table_like, in_dims=(None, None, None, 0))(lp, lA, lB, seqs)
    # the advised fix, inside the program: the emission table made like the observations; then
    # the alpha table (made like log_A, shared by the batch) receives batched rows, and the
    # second refusal's fix (make it like a batched value) is to pass log_A made like them too
    half = lambda p, a, b, o: hmm_forward_table_like(p, a, np.asarray(b, like=o), o)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"np.zeros\(shape, like=x\)"):
        npfunc.vmap(half, in_dims=(None, None, None, 0))(lp, lA, lB, seqs)
    fixed = lambda p, a, b, o: hmm_forward_table_like(p, np.asarray(a, like=o), np.asarray(b, like=o), o)
    got = npfunc.vmap(fixed, in_dims=(None, None, None, 0))(lp, lA, lB, seqs)
    assert_same(got, _stack([hmm_forward_table(lp, lA, lB, s) for s in seqs]))
    got = npfunc.vmap(fixed, in_dims=(None, None, None, 0), chunk_size=2)(lp, lA, lB, seqs)
    assert_same(got, _stack([hmm_forward_table(lp, lA, lB, s) for s in seqs]))


def test_hmm_forward_with_numpy_logaddexp_reduce():
    # np.logaddexp.reduce was refused ("express it with supported functions"); now logsumexp's rule
    pi, A, B, obs = _hmm(seed=2)
    args = (np.log(pi), np.log(A), np.log(B), obs)
    want = hmm_forward_numpy_only(*args)
    assert_same(hmm_forward_numpy_only(*args), hmm_forward_table(*args), rtol=1e-13)
    jf = npfunc.jit(hmm_forward_numpy_only)
    assert_same(jf(*args), want, rtol=1e-14)
    args2 = (args[0] - 0.1, args[1], 1.2 * args[2], obs)
    assert_same(jf(*args2), hmm_forward_numpy_only(*args2), rtol=1e-14)
    for i in range(3):
        f = lambda z: hmm_forward_numpy_only(*args[:i], z, *args[i + 1:])
        assert_deriv(npfunc.grad(hmm_forward_numpy_only, argnums=i)(*args), fd(f, args[i]))
    a32 = tuple(a.astype(np.float32) for a in args[:3]) + (obs,)
    assert_same(npfunc.jit(hmm_forward_numpy_only)(*a32), hmm_forward_numpy_only(*a32), rtol=1e-6)
    As = np.log(np.random.default_rng(3).dirichlet(np.ones(3), (4, 3)))
    got = npfunc.vmap(hmm_forward_numpy_only, in_dims=(None, 0, None, None))(args[0], As, args[2], obs)
    assert_same(got, _stack([hmm_forward_numpy_only(args[0], a, args[2], obs) for a in As]), rtol=1e-14)


@pytest.mark.parametrize("kw", [{}, {"axis": 1}, {"axis": None}, {"axis": (0, 1)},
                                {"axis": -1, "keepdims": True}, {"initial": 0.5}])
def test_logaddexp_reduce_regression(kw):
    x = RNG.standard_normal((3, 4))
    f = lambda z: np.logaddexp.reduce(z, **kw)
    for z in (x, np.where(x > 0.5, -np.inf, x)):
        assert_same(npfunc.jit(f)(z), f(z), rtol=1e-12, atol=1e-15)
    # float32: the same to float32 rounding of the inputs (logsumexp and NumPy's running
    # logaddexp round differently where the result nearly cancels)
    assert_same(npfunc.jit(f)(x.astype(np.float32)), f(x.astype(np.float32)), rtol=1e-6, atol=1e-6)
    assert_deriv(npfunc.jacrev(f)(x), fd(f, x))
    assert_deriv(npfunc.jacfwd(f)(x), fd(f, x))
    if not kw:
        for z in (np.array([np.inf, -np.inf]), np.float64(1.5), np.arange(4), np.zeros((0, 2))):
            assert_same(npfunc.jit(f)(z), f(z))


def hmm_forward_backward(log_pi, log_A, log_B, obs):
    """Posterior state marginals gamma (T, K) and the log-likelihood: lists of rows
    turned into arrays with np.array, backward rows inserted at the front."""
    T, K = len(obs), len(log_pi)
    la = [log_pi + log_B[:, obs[0]]]
    for t in range(1, T):
        la.append(sps.logsumexp(la[-1][:, None] + log_A, axis=0) + log_B[:, obs[t]])
    lb = [np.zeros(K)]
    for t in range(T - 1, 0, -1):
        lb.insert(0, sps.logsumexp(log_A + log_B[:, obs[t]] + lb[0], axis=1))
    la, lb = np.array(la), np.array(lb)
    ll = sps.logsumexp(la[-1])
    gamma = np.exp(la + lb - ll)
    return gamma, ll


def test_forward_backward_posteriors():
    pi, A, B, obs = _hmm(seed=3)
    args = (np.log(pi), np.log(A), np.log(B), obs)
    gamma, ll = hmm_forward_backward(*args)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0)
    jf = npfunc.jit(hmm_forward_backward)
    for a in (args, (args[0], args[1], 0.8 * args[2], obs)):
        g2, l2 = jf(*a)
        w2, wl = hmm_forward_backward(*a)
        assert_same(g2, w2)
        assert_same(l2, wl)
    # the gradient of log p(obs) w.r.t. the log emissions counts the posterior visits
    gB = npfunc.grad(lambda lb: hmm_forward_backward(args[0], args[1], lb, obs)[1])(args[2])
    visits = np.zeros_like(args[2])
    np.add.at(visits.T, obs, gamma)
    assert_deriv(gB, visits)
    Jg = npfunc.jacrev(lambda la: hmm_forward_backward(args[0], la, args[2], obs)[0])(args[1])
    assert_deriv(Jg, fd(lambda la: hmm_forward_backward(args[0], la, args[2], obs)[0], args[1]))
    Jf = npfunc.jacfwd(lambda lp: hmm_forward_backward(lp, args[1], args[2], obs)[0])(args[0])
    assert_deriv(Jf, fd(lambda lp: hmm_forward_backward(lp, args[1], args[2], obs)[0], args[0]))


def scaled_forward(pi, A, B, obs):
    """Rabiner's scaled forward pass in probability space (in-place normalisation)."""
    alpha = pi * B[:, obs[0]]
    c = alpha.sum()
    alpha /= c
    loglik = np.log(c)
    for o in obs[1:]:
        alpha = (alpha @ A) * B[:, o]
        c = alpha.sum()
        alpha /= c
        loglik += np.log(c)
    return loglik


def test_scaled_forward_matches_log_space_and_derivatives():
    pi, A, B, obs = _hmm(seed=4)
    want = scaled_forward(pi, A, B, obs)
    np.testing.assert_allclose(want, hmm_forward_table(np.log(pi), np.log(A), np.log(B), obs))
    jf = npfunc.jit(scaled_forward)
    assert_same(jf(pi, A, B, obs), want)
    assert_same(jf(pi, 1.1 * A, B, obs), scaled_forward(pi, 1.1 * A, B, obs))
    for i, x in enumerate((pi, A, B)):
        f = lambda z: scaled_forward(*(pi, A, B)[:i], z, *(pi, A, B)[i + 1:], obs)
        assert_deriv(npfunc.grad(scaled_forward, argnums=i)(pi, A, B, obs), fd(f, x))
    H = npfunc.hessian(scaled_forward, argnums=1)(pi, A, B, obs)
    gA = npfunc.grad(scaled_forward, argnums=1)
    assert_deriv(H, fd(lambda z: gA(pi, z, B, obs), A), atol=1e-7)
    assert_deriv(npfunc.jit(gA)(pi, A, B, obs), gA(pi, A, B, obs), rtol=1e-12)
    f32 = [a.astype(np.float32) for a in (pi, A, B)]
    assert_same(npfunc.jit(scaled_forward)(*f32, obs), scaled_forward(*f32, obs), rtol=1e-6)
    g32 = npfunc.grad(scaled_forward, argnums=1)(*f32, obs)
    assert g32.dtype == np.float32


def baum_welch_step(pi, A, B, obs):
    """One Baum-Welch iteration: scaled alpha/beta tables (made like A), the expected
    transition counts by einsum, and the re-estimated transition matrix."""
    T, K = len(obs), len(pi)
    alpha = np.zeros((T, K), like=A)
    beta = np.ones((T, K), like=A)
    c = np.zeros(T, like=A)
    alpha[0] = pi * B[:, obs[0]]
    c[0] = alpha[0].sum()
    alpha[0] /= c[0]
    for t in range(1, T):
        alpha[t] = (alpha[t - 1] @ A) * B[:, obs[t]]
        c[t] = alpha[t].sum()
        alpha[t] /= c[t]
    for t in range(T - 2, -1, -1):
        beta[t] = A @ (B[:, obs[t + 1]] * beta[t + 1]) / c[t + 1]
    xi = np.einsum("ti,ij,tj,tj,t->ij", alpha[:-1], A, B[:, obs[1:]].T, beta[1:], 1 / c[1:])
    A_new = xi / xi.sum(axis=1, keepdims=True)
    return A_new, np.log(c).sum()


def test_baum_welch_step():
    pi, A, B, obs = _hmm(T=7, seed=5)
    A_new, ll = baum_welch_step(pi, A, B, obs)
    np.testing.assert_allclose(A_new.sum(axis=1), 1.0)
    np.testing.assert_allclose(ll, scaled_forward(pi, A, B, obs))
    jf = npfunc.jit(baum_welch_step)
    for a in (A, A[::-1].copy()):
        got = jf(pi, a, B, obs)
        want = baum_welch_step(pi, a, B, obs)
        assert_same(got[0], want[0])
        assert_same(got[1], want[1])
    J = npfunc.jacrev(lambda a: baum_welch_step(pi, a, B, obs)[0])(A)
    assert_deriv(J, fd(lambda a: baum_welch_step(pi, a, B, obs)[0], A))
    Jf = npfunc.jacfwd(lambda a: baum_welch_step(pi, a, B, obs)[1])(A)
    assert_deriv(Jf, fd(lambda a: baum_welch_step(pi, a, B, obs)[1], A))
    # B is not what the tables were made like: writing B-derived values into them refuses
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"like=x"):
        npfunc.grad(lambda b: baum_welch_step(pi, A, b, obs)[1])(B)


def viterbi(log_pi, log_A, log_B, obs):
    """Viterbi decoding with an integer back-pointer table; returns (path, best score)."""
    T, K = len(obs), len(log_pi)
    delta = log_pi + log_B[:, obs[0]]
    back = np.zeros((T, K), dtype=int)
    for t in range(1, T):
        s = delta[:, None] + log_A
        back[t] = np.argmax(s, axis=0)
        delta = s[back[t], np.arange(K)] + log_B[:, obs[t]]
    path = [int(np.argmax(delta))]
    for t in range(T - 1, 0, -1):
        path.append(back[t, path[-1]])
    return np.array(path[::-1]), delta.max()


def viterbi_like(log_pi, log_A, log_B, obs):
    """Viterbi with the back-pointers made like log_A and the path kept as arrays."""
    T, K = len(obs), len(log_pi)
    delta = log_pi + log_B[:, obs[0]]
    back = np.zeros((T, K), dtype=int, like=log_A)
    for t in range(1, T):
        s = delta[:, None] + log_A
        back[t] = np.argmax(s, axis=0)
        delta = s[back[t], np.arange(K)] + log_B[:, obs[t]]
    path = [np.argmax(delta)]
    for t in range(T - 1, 0, -1):
        path.append(back[t, path[-1]])
    return np.stack(path[::-1]), delta.max()


def viterbi_plain_table(log_pi, log_A, log_B, obs):
    """viterbi_like with the back-pointer table a plain np.zeros (it takes the traced argmax rows)."""
    T, K = len(obs), len(log_pi)
    delta = log_pi + log_B[:, obs[0]]
    back = np.zeros((T, K), dtype=int)
    for t in range(1, T):
        s = delta[:, None] + log_A
        back[t] = np.argmax(s, axis=0)
        delta = s[back[t], np.arange(K)] + log_B[:, obs[t]]
    path = [np.argmax(delta)]
    for t in range(T - 1, 0, -1):
        path.append(back[t, path[-1]])
    return np.stack(path[::-1]), delta.max()


def test_viterbi_score_gradient_is_path_indicator():
    pi, A, B, obs = _hmm(T=7, seed=6)
    args = (np.log(pi), np.log(A), np.log(B), obs)
    path, score = viterbi(*args)
    g = npfunc.grad(lambda la: viterbi(args[0], la, args[2], obs)[1])(args[1])
    counts = np.zeros((3, 3))
    np.add.at(counts, (path[:-1], path[1:]), 1.0)
    assert_same(g, counts)
    assert_deriv(g, fd(lambda la: viterbi(args[0], la, args[2], obs)[1], args[1]))
    # under jit the plain back-pointer table takes the traced argmax rows, but int() of the
    # traced argmax is refused (a value jit cannot know when recording), naming np.where
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"^jit\(f\): int\(x\) needs the value.*np\.where"):
        npfunc.jit(viterbi)(*args)
    # the path kept as arrays: with the plain table and with the table made like log_A
    As = np.log(np.random.default_rng(8).dirichlet(np.ones(3), (4, 3)))
    want = [viterbi(args[0], a, args[2], obs) for a in As]
    for spelling in (viterbi_plain_table, viterbi_like):
        jv = npfunc.jit(spelling)
        for la in (args[1], np.log(np.random.default_rng(7).dirichlet(np.ones(3), 3)), args[1]):
            p2, s2 = jv(args[0], la, args[2], obs)
            pw, sw = viterbi(args[0], la, args[2], obs)
            assert_same(p2, pw)
            assert_same(s2, sw)
        paths, scores = npfunc.vmap(spelling, in_dims=(None, 0, None, None))(args[0], As, args[2], obs)
        assert_same(paths, _stack([w[0] for w in want]))
        assert_same(scores, _stack([w[1] for w in want]))


def gaussian_hmm_loglik(mu, log_A, log_pi, x, sigma=0.7):
    """HMM with Gaussian emissions from scipy.stats.norm.logpdf (T, K)."""
    log_e = st.norm.logpdf(x[:, None], loc=mu[None, :], scale=sigma)
    a = log_pi + log_e[0]
    for t in range(1, len(x)):
        a = sps.logsumexp(a[:, None] + log_A, axis=0) + log_e[t]
    return sps.logsumexp(a)


def test_gaussian_emission_hmm():
    pi, A, _, _ = _hmm(seed=9)
    mu = np.array([-1.0, 0.2, 1.5])
    x = np.random.default_rng(9).standard_normal(6)
    want = gaussian_hmm_loglik(mu, np.log(A), np.log(pi), x)
    jf = npfunc.jit(gaussian_hmm_loglik)
    assert_same(jf(mu, np.log(A), np.log(pi), x), want)
    assert_same(jf(mu + 0.3, np.log(A), np.log(pi), x), gaussian_hmm_loglik(mu + 0.3, np.log(A), np.log(pi), x))
    f = lambda m: gaussian_hmm_loglik(m, np.log(A), np.log(pi), x)
    assert_deriv(npfunc.grad(f)(mu), fd(f, mu))
    assert_deriv(npfunc.hessian(f)(mu), fd(npfunc.grad(f), mu), atol=1e-7)
    xs = np.random.default_rng(10).standard_normal((3, 6))
    got = npfunc.vmap(gaussian_hmm_loglik, in_dims=(None, None, None, 0))(mu, np.log(A), np.log(pi), xs)
    assert_same(got, _stack([gaussian_hmm_loglik(mu, np.log(A), np.log(pi), r) for r in xs]))
    gx = npfunc.vmap(npfunc.grad(gaussian_hmm_loglik, argnums=3), in_dims=(None, None, None, 0))(
        mu, np.log(A), np.log(pi), xs)
    for k in range(3):
        assert_deriv(gx[k], fd(lambda z: gaussian_hmm_loglik(mu, np.log(A), np.log(pi), z), xs[k]))


# =============================================================================================
# 2. Soft alignment by dynamic programming, Markov chains, CTC, recurrent nets
# =============================================================================================


def soft_dtw(x, y, gamma=0.5):
    """Soft-DTW (Cuturi & Blondel) by the O(nm) recursion on a table of inf, like D."""
    n, m = len(x), len(y)
    D = (x[:, None] - y[None, :]) ** 2
    R = np.full((n + 1, m + 1), np.inf, like=D)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            r = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
            R[i, j] = D[i - 1, j - 1] - gamma * sps.logsumexp(-r / gamma)
    return R[n, m]


def test_soft_dtw_value_grad_and_batch():
    x, y = RNG.standard_normal(3), RNG.standard_normal(4)
    jf = npfunc.jit(soft_dtw)
    assert_same(jf(x, y), soft_dtw(x, y))
    assert_same(jf(2 * x, y[::-1].copy()), soft_dtw(2 * x, y[::-1].copy()))
    assert_deriv(npfunc.grad(soft_dtw)(x, y), fd(lambda z: soft_dtw(z, y), x))
    assert_deriv(npfunc.jacfwd(soft_dtw, argnums=1)(x, y), fd(lambda z: soft_dtw(x, z), y))
    assert_deriv(npfunc.jit(npfunc.grad(soft_dtw))(x, y), fd(lambda z: soft_dtw(z, y), x))
    xs = RNG.standard_normal((2, 3))
    assert_same(npfunc.vmap(soft_dtw, in_dims=(0, None))(xs, y), _stack([soft_dtw(r, y) for r in xs]))
    # a Python-float gamma is static under jit: another value records again
    assert_same(jf(x, y, 0.1), soft_dtw(x, y, 0.1))
    assert jf.trace_count == 2


def soft_needleman_wunsch(s1, s2, S, gap=-1.0, temp=1.0):
    """Global alignment score with the max over moves smoothed by temp*log-sum-exp."""
    n, m = len(s1), len(s2)
    F = np.zeros((n + 1, m + 1), like=S)
    F[:, 0] = gap * np.arange(n + 1)
    F[0, :] = gap * np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            moves = np.stack([F[i - 1, j - 1] + S[s1[i - 1], s2[j - 1]], F[i - 1, j] + gap, F[i, j - 1] + gap])
            F[i, j] = temp * np.log(np.sum(np.exp(moves / temp)))
    return F[n, m]


def test_soft_needleman_wunsch_expected_substitutions():
    S = RNG.standard_normal((4, 4))
    S = (S + S.T) / 2
    s1, s2 = np.array([0, 1, 2, 3, 1]), np.array([0, 2, 3, 1])
    want = soft_needleman_wunsch(s1, s2, S)
    jf = npfunc.jit(soft_needleman_wunsch)
    assert_same(jf(s1, s2, S), want)
    assert_same(jf(s1, s2, 2 * S), soft_needleman_wunsch(s1, s2, 2 * S))
    # d score / d S is the expected number of each aligned pair: non-negative, at most min(n, m) in all
    g = npfunc.grad(soft_needleman_wunsch, argnums=2)(s1, s2, S)
    assert_deriv(g, fd(lambda z: soft_needleman_wunsch(s1, s2, z), S))
    assert np.all(g >= 0) and g.sum() <= 4
    Ss = RNG.standard_normal((2, 4, 4))
    got = npfunc.vmap(soft_needleman_wunsch, in_dims=(None, None, 0))(s1, s2, Ss)
    assert_same(got, _stack([soft_needleman_wunsch(s1, s2, z) for z in Ss]))



def stationary_distribution(A):
    """Stationary distribution of a Markov chain: the eigenvector of A.T for the eigenvalue
    closest to 1, real part, normalised to sum 1."""
    w, V = np.linalg.eig(A.T)
    k = np.argmin(np.abs(w - 1))
    v = V[:, k].real
    return v / v.sum()


def stationary_distribution_complex(A):
    """The refusal's fix: the eigendecomposition of a complex copy (complex for every chain)."""
    w, V = np.linalg.eig(A.T.astype(complex))
    k = np.argmin(np.abs(w - 1))
    v = V[:, k].real
    return v / v.sum()


def test_stationary_distribution_by_eig():
    # np.linalg.eig is real when every eigenvalue is real: jit recorded on such a chain then replayed
    # on a chain with a complex pair returned complex128 (the recorded .real was a no-op)
    g = np.random.default_rng(17)
    A_real, A_cplx = g.dirichlet(np.ones(4), 4), g.dirichlet(np.ones(4), 4)
    assert np.isrealobj(np.linalg.eigvals(A_real)) and np.iscomplexobj(np.linalg.eigvals(A_cplx))
    jf = npfunc.jit(stationary_distribution)
    assert_same(jf(A_real), stationary_distribution(A_real))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"eig\(a.astype\(complex\)\)"):
        jf(A_cplx)
    jc = npfunc.jit(stationary_distribution_complex)
    for A in (A_real, A_cplx):
        assert_same(jc(A), stationary_distribution(A), rtol=1e-10)
    assert_same(npfunc.jit(stationary_distribution)(A_cplx), stationary_distribution(A_cplx))
    both = np.stack([A_real, A_cplx])
    assert_same(npfunc.vmap(stationary_distribution)(both), _stack([stationary_distribution(a) for a in both]))
    for A in (A_real, A_cplx):
        assert_deriv(npfunc.jacrev(stationary_distribution)(A), fd(stationary_distribution, A))
        assert_deriv(npfunc.jacfwd(stationary_distribution_complex)(A), fd(stationary_distribution, A))
    ev = npfunc.jit(np.linalg.eigvals)
    assert_same(ev(A_real), np.linalg.eigvals(A_real))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="complex"):
        ev(A_cplx)


def markov_chain_loglik(P, seq):
    """Log-likelihood of a DNA sequence under a first-order chain, from transition counts."""
    counts = np.zeros((4, 4))
    np.add.at(counts, (seq[:-1], seq[1:]), 1)
    return np.sum(counts * np.log(P))


def markov_chain_loglik_bincount(P, seq):
    counts = np.bincount(seq[:-1] * 4 + seq[1:], minlength=16).reshape(4, 4)
    return np.sum(counts * np.log(P))


def test_markov_chain_counts():
    P = RNG.dirichlet(np.ones(4), 4)
    seq = RNG.integers(0, 4, 30)
    want = markov_chain_loglik(P, seq)
    assert_same(markov_chain_loglik_bincount(P, seq), want)
    assert_deriv(npfunc.grad(markov_chain_loglik)(P, seq), fd(lambda p: markov_chain_loglik(p, seq), P))
    for f in (markov_chain_loglik_bincount,):
        jf = npfunc.jit(f)
        for s in (seq, RNG.integers(0, 4, 30)):
            assert_same(jf(P, s), want if s is seq else markov_chain_loglik(P, s))
        seqs = RNG.integers(0, 4, (3, 30))
        got = npfunc.vmap(f, in_dims=(None, 0))(P, seqs)
        assert_same(got, _stack([markov_chain_loglik(P, s) for s in seqs]))
    # counts made like the sequence: np.add.at into it works under jit and vmap
    like = lambda p, s: _counts_like_loglik(p, s)
    assert_same(npfunc.jit(like)(P, seq), want)
    seqs = RNG.integers(0, 4, (3, 30))
    assert_same(npfunc.vmap(like, in_dims=(None, 0))(P, seqs), _stack([markov_chain_loglik(P, s) for s in seqs]))


def _counts_like_loglik(P, seq):
    counts = np.zeros((4, 4), like=seq)
    np.add.at(counts, (seq[:-1], seq[1:]), 1)
    return np.sum(counts * np.log(P))


def test_add_at_into_plain_counts_with_traced_indices_matches_numpy():
    """np.add.at(counts, (seq[:-1], seq[1:]), 1) into a plain np.zeros with the sequence traced
    (jit, vmap over sequences): the counts take the traced indices (core/pending.py), plain
    NumPy's log-likelihood, and the np.bincount spelling's."""
    P = RNG.dirichlet(np.ones(4), 4)
    seq = RNG.integers(0, 4, 30)
    seq2 = RNG.integers(0, 4, 30)
    P2 = RNG.dirichlet(np.ones(4), 4)
    jf = npfunc.jit(markov_chain_loglik)
    for p, q in ((P, seq), (P2, seq2), (P, seq2), (P, seq)):
        assert_same(jf(p, q), markov_chain_loglik(p, q))
        np.testing.assert_allclose(jf(p, q), markov_chain_loglik_bincount(p, q), rtol=1e-12)
    seqs = np.stack([seq, seq2, seq[::-1].copy()])
    assert_same(npfunc.vmap(markov_chain_loglik, in_dims=(None, 0))(P, seqs),
                _stack([markov_chain_loglik(P, q) for q in seqs]))
    g = npfunc.grad(markov_chain_loglik)(P, seq)
    assert_deriv(g, fd(lambda z: markov_chain_loglik(z, seq), P))
    assert_deriv(npfunc.jit(npfunc.grad(markov_chain_loglik))(P, seq2), fd(lambda z: markov_chain_loglik(z, seq2), P))


def ctc_neg_loglik(logits, labels, blank=0):
    """Connectionist temporal classification loss by the alpha recursion in log space,
    on the label sequence extended with blanks."""
    T, C = logits.shape
    logp = logits - sps.logsumexp(logits, axis=1, keepdims=True)
    ext = [blank]
    for lab in labels:
        ext += [lab, blank]
    ext = np.array(ext)
    S = len(ext)
    alpha = np.full(S, -np.inf, like=logits)
    alpha[0] = logp[0, blank]
    alpha[1] = logp[0, ext[1]]
    for t in range(1, T):
        prev = alpha.copy()
        for s in range(S):
            terms = [prev[s]]
            if s > 0:
                terms.append(prev[s - 1])
            if s > 1 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(prev[s - 2])
            alpha[s] = sps.logsumexp(np.array(terms)) + logp[t, ext[s]]
    return -np.logaddexp(alpha[-1], alpha[-2])


def test_ctc_loss():
    logits = RNG.standard_normal((4, 3))
    labels = [1, 2]
    want = ctc_neg_loglik(logits, labels)
    jf = npfunc.jit(ctc_neg_loglik)
    assert_same(jf(logits, labels), want)
    assert_same(jf(2 * logits, labels), ctc_neg_loglik(2 * logits, labels))
    g = npfunc.grad(ctc_neg_loglik)(logits, labels)
    assert_deriv(g, fd(lambda z: ctc_neg_loglik(z, labels), logits))
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-12)   # softmax-invariant per frame
    batch = RNG.standard_normal((2, 4, 3))
    got = npfunc.vmap(ctc_neg_loglik, in_dims=(0, None))(batch, labels)
    assert_same(got, _stack([ctc_neg_loglik(b, labels) for b in batch]))
    l32 = logits.astype(np.float32)
    assert_same(npfunc.jit(ctc_neg_loglik)(l32, labels), ctc_neg_loglik(l32, labels), rtol=1e-6)


def elman_rnn(W_x, W_h, b, xs, h0):
    h = h0
    hs = []
    for x in xs:
        h = np.tanh(W_x @ x + W_h @ h + b)
        hs.append(h)
    return np.stack(hs)


def lstm_cell(x, h, c, W, U, b):
    z = W @ x + U @ h + b
    i, f, g, o = np.split(z, 4)
    i, f, o = sps.expit(i), sps.expit(f), sps.expit(o)
    g = np.tanh(g)
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, c


def gru_final_state(xs, Wz, Wr, Wh, h0):
    h = h0.copy()
    for x in xs:
        xh = np.concatenate([x, h])
        z = 1 / (1 + np.exp(-Wz @ xh))
        r = 1 / (1 + np.exp(-Wr @ xh))
        hc = np.tanh(Wh @ np.concatenate([x, r * h]))
        h = (1 - z) * h + z * hc
    return h


def test_recurrent_nets():
    Wx, Wh, b = RNG.standard_normal((3, 2)), 0.5 * RNG.standard_normal((3, 3)), RNG.standard_normal(3)
    xs = RNG.standard_normal((4, 2))
    h0 = np.zeros(3)
    want = elman_rnn(Wx, Wh, b, xs, h0)
    assert_same(npfunc.jit(elman_rnn)(Wx, Wh, b, xs, h0), want)
    J = npfunc.jacrev(elman_rnn, argnums=1)(Wx, Wh, b, xs, h0)
    assert_deriv(J, fd(lambda w: elman_rnn(Wx, w, b, xs, h0), Wh))
    batch = RNG.standard_normal((3, 4, 2))
    got = npfunc.vmap(elman_rnn, in_dims=(None, None, None, 0, None))(Wx, Wh, b, batch, h0)
    assert_same(got, _stack([elman_rnn(Wx, Wh, b, q, h0) for q in batch]))
    # inputs batched along axis 1 (time, batch, features)
    got = npfunc.vmap(elman_rnn, in_dims=(None, None, None, 1, None))(Wx, Wh, b, batch.transpose(1, 0, 2), h0)
    assert_same(got, _stack([elman_rnn(Wx, Wh, b, q, h0) for q in batch]))

    W, U, bb = RNG.standard_normal((8, 2)), RNG.standard_normal((8, 2)), RNG.standard_normal(8)
    h, c = lstm_cell(xs[0], np.zeros(2), np.zeros(2), W, U, bb)
    hj, cj = npfunc.jit(lstm_cell)(xs[0], np.zeros(2), np.zeros(2), W, U, bb)
    assert_same(hj, h)
    assert_same(cj, c)
    Jh, Jc = npfunc.jacfwd(lstm_cell, argnums=3)(xs[0], np.full(2, 0.1), np.full(2, -0.2), W, U, bb)
    assert_deriv(Jh, fd(lambda w: lstm_cell(xs[0], np.full(2, 0.1), np.full(2, -0.2), w, U, bb)[0], W))
    assert_deriv(Jc, fd(lambda w: lstm_cell(xs[0], np.full(2, 0.1), np.full(2, -0.2), w, U, bb)[1], W))

    Wz, Wr, Whh = (RNG.standard_normal((3, 5)) for _ in range(3))
    want = gru_final_state(xs, Wz, Wr, Whh, h0)
    assert_same(npfunc.jit(gru_final_state)(xs, Wz, Wr, Whh, h0), want)
    assert_deriv(npfunc.jacrev(gru_final_state)(xs, Wz, Wr, Whh, h0),
                 fd(lambda q: gru_final_state(q, Wz, Wr, Whh, h0), xs))
    f32 = [a.astype(np.float32) for a in (xs, Wz, Wr, Whh, h0)]
    assert_same(npfunc.jit(gru_final_state)(*f32), gru_final_state(*f32), rtol=1e-6)
    g32 = npfunc.grad(lambda w: gru_final_state(f32[0], w, *f32[2:]).sum())(f32[1])
    assert g32.dtype == np.float32


# =============================================================================================
# 3. Bioinformatics: PWMs, scanning, phylogenetics
# =============================================================================================

BASES = {"A": 0, "C": 1, "G": 2, "T": 3}


def one_hot(seq):
    idx = np.array([BASES[c] for c in seq])
    return np.eye(4)[idx]


def pwm_from_counts(counts, pseudo=0.5, bg=np.full(4, 0.25)):
    freqs = (counts + pseudo) / (counts + pseudo).sum(axis=1, keepdims=True)
    return np.log2(freqs / bg)


def pwm_scan(pwm, X):
    """Log-odds score of every window of a one-hot sequence (sliding_window_view + einsum)."""
    L = pwm.shape[0]
    win = sliding_window_view(X, (L, 4))[:, 0]
    return np.einsum("nlk,lk->n", win, pwm)


def best_site(pwm, X):
    s = pwm_scan(pwm, X)
    i = np.argmax(s)
    return i, s[i]


def information_content(P):
    return 2.0 - (-np.sum(P * np.log2(P), axis=1))


def logo_heights(P):
    ic = 2.0 + np.sum(P * np.log2(P), axis=1, keepdims=True)
    return P * ic


def gc_content(X):
    return X[:, 1:3].sum() / len(X)


def test_pwm_build_scan_and_best_site():
    counts = RNG.integers(0, 10, (5, 4)).astype(float)
    pwm = pwm_from_counts(counts)
    assert_same(npfunc.jit(pwm_from_counts)(counts), pwm)
    assert_deriv(npfunc.jacrev(pwm_from_counts)(counts), fd(pwm_from_counts, counts))
    c32 = counts.astype(np.float32)
    assert_same(npfunc.jit(pwm_from_counts)(c32), pwm_from_counts(c32), rtol=1e-6)
    X = one_hot("ACGTTGCAAGCTAGGT")
    assert_same(npfunc.jit(pwm_scan)(pwm, X), pwm_scan(pwm, X))
    assert_deriv(npfunc.jacfwd(pwm_scan)(pwm, X), fd(lambda p: pwm_scan(p, X), pwm))
    assert_deriv(npfunc.jacrev(pwm_scan, argnums=1)(pwm, X), fd(lambda x: pwm_scan(pwm, x), X))
    pwms = RNG.standard_normal((3, 5, 4))
    assert_same(npfunc.vmap(pwm_scan, in_dims=(0, None))(pwms, X), _stack([pwm_scan(p, X) for p in pwms]))
    i, s = best_site(pwm, X)
    ij, sj = npfunc.jit(best_site)(pwm, X)
    assert_same(ij, i)
    assert_same(sj, s)
    g = npfunc.grad(lambda p: best_site(p, X)[1])(pwm)
    assert_same(g, X[i:i + 5])
    assert_same(npfunc.jit(gc_content)(X), gc_content(X))


def test_information_content_and_logo():
    P = RNG.dirichlet(np.ones(4), 6)
    for f in (information_content, logo_heights):
        assert_same(npfunc.jit(f)(P), f(P))
        P2 = RNG.dirichlet(np.ones(4), 6)
        assert_same(npfunc.jit(f)(P2), f(P2))
        assert_deriv(npfunc.jacrev(f)(P), fd(f, P))
        Ps = RNG.dirichlet(np.ones(4), (3, 6))
        assert_same(npfunc.vmap(f)(Ps), _stack([f(p) for p in Ps]))



def site_loglik(P, counts):
    """Log-likelihood of the nucleotide counts of each aligned column under the motif's
    column probabilities (scipy.stats.multinomial, one count vector at a time)."""
    total = 0.0
    for j in range(len(counts)):
        total = total + st.multinomial.logpmf(counts[j], counts[j].sum(), P[j])
    return total, st.multinomial.logpmf(counts[0], counts[0].sum(), P[0])


def test_motif_column_multinomial_likelihood():
    # SciPy's multinomial.logpmf of one count vector is a 0-d *array*; the twin gave np.float64
    rng = np.random.default_rng(36)
    P = rng.dirichlet(np.ones(4) * 2, 3)
    counts = rng.multinomial(10, [0.25] * 4, size=3)
    total, first = site_loglik(P, counts)
    assert type(first) is np.ndarray and first.shape == ()
    for transform in (npfunc.jit, lambda f: (lambda P, c: npfunc.jvp(lambda q: f(q, c), (P,), (P,))[0])):
        got_total, got_first = transform(site_loglik)(P, counts)
        assert_same(got_first, first)
        assert_same(got_total, total)
    got = npfunc.vmap(site_loglik, in_dims=(None, 0))(P, np.stack([counts, counts[::-1]]))
    assert_same(got[1], _stack([first, site_loglik(P, counts[::-1])[1]]))
    # on the simplex the twin differentiates SciPy's formula (sum_j x_j log p_j)
    g = npfunc.grad(lambda q: site_loglik(q, counts)[0])(P)
    assert_deriv(g, counts / P)


def jukes_cantor(p):
    return -0.75 * np.log(1 - 4.0 * p / 3.0)


def test_jukes_cantor_scalar_types():
    for p in (np.float64(0.2), np.float32(0.2), np.array([0.1, 0.3])):
        assert_same(npfunc.jit(jukes_cantor)(p), jukes_cantor(p), rtol=1e-6)
    g = npfunc.grad(jukes_cantor)(np.float64(0.2))
    assert type(g) is np.float64
    assert_deriv(g, 1 / (1 - 4 * 0.2 / 3))
    g32 = npfunc.grad(jukes_cantor)(np.float32(0.2))
    assert type(g32) is np.float32
    assert_same(npfunc.vmap(npfunc.grad(jukes_cantor))(np.array([0.1, 0.3])), 1 / (1 - 4 * np.array([0.1, 0.3]) / 3))
    d2 = npfunc.grad(npfunc.grad(jukes_cantor))(0.2)
    assert_deriv(d2, fd(npfunc.grad(jukes_cantor), 0.2))


def felsenstein_jc(t, leaves):
    """Likelihood of one site on the tree ((a:t0, b:t1):t3, c:t2) under JC69,
    transition matrices by scipy.linalg.expm, tip vectors by rows of np.eye."""
    Q = np.full((4, 4), 1 / 3.0)
    np.fill_diagonal(Q, -1.0)
    P = [sla.expm(Q * ti) for ti in t]
    La = P[0] @ np.eye(4)[leaves[0]]
    Lb = P[1] @ np.eye(4)[leaves[1]]
    Lab = P[3] @ (La * Lb)
    Lc = P[2] @ np.eye(4)[leaves[2]]
    return np.log(0.25 * (Lab * Lc).sum())


def test_felsenstein_pruning_branch_length_gradients_and_jit_with_traced_leaves():
    t = np.array([0.1, 0.2, 0.3, 0.05])
    leaves = np.array([0, 0, 2])
    want = felsenstein_jc(t, leaves)
    assert_deriv(npfunc.grad(felsenstein_jc)(t, leaves), fd(lambda z: felsenstein_jc(z, leaves), t))
    H = npfunc.hessian(felsenstein_jc)(t, leaves)
    assert_deriv(H, fd(lambda z: npfunc.grad(felsenstein_jc)(z, leaves), t), atol=1e-7)
    ts = RNG.random((3, 4)) * 0.3
    got = npfunc.vmap(felsenstein_jc, in_dims=(0, None))(ts, leaves)
    assert_same(got, _stack([felsenstein_jc(z, leaves) for z in ts]))
    # under jit the leaves are traced and index the plain np.eye(4): a traced copy of its rows
    # is read (core/pending.py), plain NumPy's value on recording and on replays with new leaves
    jt = npfunc.jit(felsenstein_jc)
    for z, lv in ((t, leaves), (2 * t, np.array([1, 3, 2])), (t, np.array([3, 3, 3])), (t, leaves)):
        assert_same(jt(z, lv), felsenstein_jc(z, lv))
    assert jt.trace_count == 1
    assert_deriv(npfunc.jit(npfunc.grad(felsenstein_jc))(t, leaves), fd(lambda z: felsenstein_jc(z, leaves), t))
    # the leaves as a static argument (keyed by value: changing them in place records again)
    jf = npfunc.jit(felsenstein_jc, static_argnums=1)
    assert_same(jf(t, leaves), want)
    assert_same(jf(2 * t, leaves), felsenstein_jc(2 * t, leaves))
    other = leaves.copy()
    assert_same(jf(t, other), want)
    other[0] = 3
    assert_same(jf(t, other), felsenstein_jc(t, other))
    assert jf.trace_count == 2


# =============================================================================================
# 4. Single neurons by Euler steps
# =============================================================================================


def lif(I, dt=0.5, tau=10.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, R=10.0):
    """Leaky integrate-and-fire with a Python threshold test and reset; returns the
    membrane trace and the list of spike steps."""
    v = np.full(len(I) + 1, v_rest, like=I)
    spikes = []
    for t in range(len(I)):
        v[t + 1] = v[t] + dt / tau * (-(v[t] - v_rest) + R * I[t])
        if v[t + 1] >= v_th:
            spikes.append(t)
            v[t + 1] = v_reset
    return v, spikes


def lif_where(I, dt=0.5, tau=10.0, v_rest=-65.0, v_th=-50.0, v_reset=-70.0, R=10.0):
    """The same neuron with the reset by np.where; also counts spikes (bool added to int)."""
    v = v_rest
    trace = []
    n = 0
    for It in I:
        v = v + dt / tau * (-(v - v_rest) + R * It)
        fired = v >= v_th
        n = n + fired
        v = np.where(fired, v_reset, v)
        trace.append(v)
    return np.array(trace), n


def lif_subthreshold(I, tau, dt=0.1, R=10.0):
    v = np.zeros_like(I)
    for t in range(1, len(I)):
        v[t] = v[t - 1] + dt / tau * (-v[t - 1] + R * I[t - 1])
    return v


def test_lif_python_threshold():
    I = 2.5 + 0.3 * np.random.default_rng(12).standard_normal(60)
    v, spikes = lif(I)
    assert len(spikes) > 0
    # grad and jvp run the Python branch on concrete values: the derivative of the branch taken
    f = lambda z: lif(z)[0][-1]
    assert_deriv(npfunc.grad(f)(I), fd(f, I))
    (vv, sp), (tv, _) = npfunc.jvp(lif, (I,), (np.ones_like(I),))
    assert_same(vv, v)
    assert sp == spikes and type(sp[0]) is int
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where\(cond, a, b\)"):
        npfunc.jit(lif)(I)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"np.where\(cond, a, b\)"):
        npfunc.vmap(lif)(np.stack([I, I + 0.1]))


def test_lif_where_reset_trace_and_count():
    rng = np.random.default_rng(13)
    I = 1.6 + 0.3 * rng.standard_normal(30)
    trace, n = lif_where(I)
    jf = npfunc.jit(lif_where)
    for z in (I, I + 0.5):
        t2, n2 = jf(z)
        tw, nw = lif_where(z)
        assert_same(t2, tw)
        assert_same(n2, nw)
    Is = 1.6 + 0.3 * rng.standard_normal((3, 30))
    ts, ns = npfunc.vmap(lif_where)(Is)
    want = [lif_where(z) for z in Is]
    assert_same(ts, _stack([w[0] for w in want]))
    assert_same(ns, _stack([w[1] for w in want]))
    J = npfunc.jacrev(lambda z: lif_where(z)[0])(I)
    assert_deriv(J, fd(lambda z: lif_where(z)[0], I))


def test_lif_subthreshold_and_time_constant_into_plain_zeros_like_buffer():
    I = np.random.default_rng(14).standard_normal(8)
    want = lif_subthreshold(I, 10.0)
    assert_same(npfunc.jit(lif_subthreshold)(I, 10.0), want)
    assert_deriv(npfunc.jacfwd(lif_subthreshold)(I, 10.0), fd(lambda z: lif_subthreshold(z, 10.0), I))
    # d/d tau: the buffer np.zeros_like(I) is made like I, which is plain here; it takes the
    # traced writes (core/pending.py) as the fix made like tau does
    want_tau = fd(lambda tau: lif_subthreshold(I, tau), np.float64(10.0))
    fixed = lambda z, tau: _lif_sub_tau_like(z, tau)
    for T in (npfunc.jacfwd, npfunc.jacrev):
        got = T(lif_subthreshold, argnums=1)(I, np.float64(10.0))
        assert_deriv(got, want_tau)
        np.testing.assert_allclose(got, T(fixed, argnums=1)(I, np.float64(10.0)), rtol=1e-12, atol=0)
    assert_deriv(npfunc.jacfwd(fixed, argnums=1)(I, np.float64(10.0)), want_tau)
    for spelling in (lif_subthreshold, fixed):
        jf = npfunc.jit(spelling)
        for z, tau in ((I, np.float64(10.0)), (-I, np.float64(7.0)), (I, np.float64(10.0))):
            assert_same(jf(z, tau), lif_subthreshold(z, tau))
    taus = np.array([5.0, 10.0, 20.0])
    assert_same(npfunc.vmap(lif_subthreshold, in_dims=(None, 0))(I, taus), _stack([lif_subthreshold(I, u) for u in taus]))


def _lif_sub_tau_like(I, tau, dt=0.1, R=10.0):
    v = np.zeros_like(tau, shape=I.shape)
    for t in range(1, len(I)):
        v[t] = v[t - 1] + dt / tau * (-v[t - 1] + R * I[t - 1])
    return v


def exp_if(I, dt=0.1, tau=10.0, EL=-65.0, VT=-50.0, DT=2.0, Vpeak=0.0, Vr=-68.0):
    V = EL
    out = np.empty(len(I), like=I)
    for k in range(len(I)):
        dV = (-(V - EL) + DT * np.exp((V - VT) / DT) + I[k]) / tau
        V = V + dt * dV
        V = np.where(V > Vpeak, Vr, V)
        out[k] = V
    return out


def izhikevich(I, a=0.02, b=0.2, c=-65.0, d=8.0, dt=0.5):
    v, u = -65.0, b * -65.0
    vs = []
    for It in I:
        v = v + dt * (0.04 * v**2 + 5 * v + 140 - u + It)
        u = u + dt * a * (b * v - u)
        spk = v >= 30.0
        vs.append(np.minimum(v, 30.0))
        v = np.where(spk, c, v)
        u = np.where(spk, u + d, u)
    return np.array(vs)


def test_exponential_if_and_izhikevich():
    rng = np.random.default_rng(15)
    I = 20.0 + rng.standard_normal(30)
    for f in (exp_if, izhikevich):
        want = f(I)
        jf = npfunc.jit(f)
        assert_same(jf(I), want)
        assert_same(jf(I + 5.0), f(I + 5.0))
        Is = np.stack([I, I - 8.0, I + 3.0])
        assert_same(npfunc.vmap(f)(Is), _stack([f(z) for z in Is]))
        J = npfunc.jacrev(f)(I[:12])
        assert_deriv(J, fd(f, I[:12]), atol=1e-6)
    I32 = I.astype(np.float32)
    assert_same(npfunc.jit(izhikevich)(I32), izhikevich(I32), rtol=1e-5)


def hh_rates(V):
    am = 0.1 * (V + 40.0) / (1.0 - np.exp(-(V + 40.0) / 10.0))
    bm = 4.0 * np.exp(-(V + 65.0) / 18.0)
    ah = 0.07 * np.exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + np.exp(-(V + 35.0) / 10.0))
    an = 0.01 * (V + 55.0) / (1.0 - np.exp(-(V + 55.0) / 10.0))
    bn = 0.125 * np.exp(-(V + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def hodgkin_huxley(gbar, I_ext=10.0, dt=0.05, steps=24):
    """Hodgkin-Huxley squid axon by forward Euler; gating variables updated with +=."""
    g_na, g_k, g_l = gbar
    E_na, E_k, E_l, C = 50.0, -77.0, -54.387, 1.0
    V = -65.0
    m, h, n = 0.05, 0.6, 0.32
    Vs = np.empty(steps, like=gbar)
    for k in range(steps):
        am, bm, ah, bh, an, bn = hh_rates(V)
        m += dt * (am * (1 - m) - bm * m)
        h += dt * (ah * (1 - h) - bh * h)
        n += dt * (an * (1 - n) - bn * n)
        I_ion = g_na * m**3 * h * (V - E_na) + g_k * n**4 * (V - E_k) + g_l * (V - E_l)
        V = V + dt * (I_ext - I_ion) / C
        Vs[k] = V
    return Vs


def test_hodgkin_huxley_conductance_sensitivities():
    gbar = np.array([120.0, 36.0, 0.3])
    want = hodgkin_huxley(gbar)
    jf = npfunc.jit(hodgkin_huxley)
    assert_same(jf(gbar), want, rtol=1e-10)
    assert_same(jf(gbar * 1.05), hodgkin_huxley(gbar * 1.05), rtol=1e-10)
    peak = lambda g: hodgkin_huxley(g).max()
    assert_deriv(npfunc.grad(peak)(gbar), fd(peak, gbar), rtol=1e-5)
    J = npfunc.jacfwd(hodgkin_huxley)(gbar)
    assert J.shape == (24, 3)
    y, jvp_fn = npfunc.linearize(hodgkin_huxley, gbar)
    assert_same(y, want, rtol=1e-10)
    assert_deriv(jvp_fn(np.array([1.0, 0.0, 0.0])), J[:, 0], rtol=1e-10)
    # the rates at V = -40 and -55 hit 0/0 in NumPy too (nan there): away from them they are smooth
    V = np.array([-70.0, -30.0])
    am_grad = npfunc.vmap(npfunc.grad(lambda v: hh_rates(v)[0]))(V)
    assert_deriv(am_grad, np.diag(fd(lambda v: hh_rates(v)[0], V)))


def cable_steady_state(g_axial, g_leak, I_inj):
    """Steady-state voltage of a sealed cable of compartments: a tridiagonal
    system in LAPACK banded storage, built in a table like the injected current."""
    n = len(I_inj)
    ab = np.zeros((3, n), like=I_inj)
    ab[0, 1:] = -g_axial
    ab[1, :] = g_leak + 2 * g_axial
    ab[1, 0] -= g_axial
    ab[1, -1] -= g_axial
    ab[2, :-1] = -g_axial
    return sla.solve_banded((1, 1), ab, I_inj)


def test_cable_banded_solve():
    I_inj = np.zeros(6)
    I_inj[0] = 1.0
    want = cable_steady_state(2.0, 0.1, I_inj)
    jf = npfunc.jit(cable_steady_state)
    assert_same(jf(2.0, 0.1, I_inj), want)
    assert_same(jf(2.0, 0.1, I_inj[::-1].copy()), cable_steady_state(2.0, 0.1, I_inj[::-1].copy()))
    assert_deriv(npfunc.jacrev(cable_steady_state, argnums=2)(2.0, 0.1, I_inj),
                 fd(lambda z: cable_steady_state(2.0, 0.1, z), I_inj))
    # the conductances as traced arguments: the table is made like I_inj (plain here) and refuses
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"like=x"):
        npfunc.grad(lambda g: cable_steady_state(g, 0.1, I_inj)[-1])(np.float64(2.0))
    Is = RNG.random((3, 6))
    assert_same(npfunc.vmap(cable_steady_state, in_dims=(None, None, 0))(2.0, 0.1, Is),
                _stack([cable_steady_state(2.0, 0.1, z) for z in Is]))


# =============================================================================================
# 5. Networks, plasticity and learning rules
# =============================================================================================


def rate_network(W, I, tau=10.0, dt=1.0, steps=40):
    """tau dr/dt = -r + tanh(W r + I), forward Euler from rest (state in W's dtype)."""
    r = np.zeros(W.shape[0], dtype=W.dtype)
    for _ in range(steps):
        r = r + dt / tau * (-r + np.tanh(W @ r + I))
    return r


def rate_network_inplace(W, I, r, tau=10.0, dt=1.0, steps=20):
    """A threshold-linear network advancing the caller's state vector in place;
    returns the total rate."""
    for _ in range(steps):
        r += dt / tau * (-r + np.maximum(W @ r + I, 0.0))
    return r.sum()


def test_rate_network_steady_state_and_dtypes():
    W = 0.5 * RNG.standard_normal((4, 4))
    I = RNG.standard_normal(4)
    want = rate_network(W, I)
    jf = npfunc.jit(rate_network)
    assert_same(jf(W, I), want)
    assert_same(jf(0.9 * W, I), rate_network(0.9 * W, I))
    assert_deriv(npfunc.jacrev(rate_network)(W, I), fd(lambda w: rate_network(w, I), W))
    assert_deriv(npfunc.jacfwd(rate_network, argnums=1)(W, I), fd(lambda i: rate_network(W, i), I))
    Ws = 0.5 * RNG.standard_normal((3, 4, 4))
    assert_same(npfunc.vmap(rate_network, in_dims=(0, None))(Ws, I), _stack([rate_network(w, I) for w in Ws]))
    W32, I32 = W.astype(np.float32), I.astype(np.float32)
    assert_same(npfunc.jit(rate_network)(W32, I32), rate_network(W32, I32), rtol=1e-6)
    g32 = npfunc.grad(lambda w: rate_network(w, I32).sum())(W32)
    assert g32.dtype == np.float32
    # float32 weights with a float64 input: NumPy promotes the state to float64 after one step
    assert_same(npfunc.jit(rate_network)(W32, I), rate_network(W32, I), rtol=1e-6)


def test_rate_network_state_updated_in_place_under_transforms():
    W = 0.3 * RNG.standard_normal((3, 3))
    I = RNG.standard_normal(3)
    r_plain = np.zeros(3)
    want = rate_network_inplace(W, I, r_plain)
    r_jit = np.zeros(3)
    assert_same(npfunc.jit(rate_network_inplace)(W, I, r_jit), want)
    assert_same(r_jit, r_plain)
    r_grad = np.zeros(3)
    g = npfunc.grad(rate_network_inplace, argnums=2)(W, I, r_grad)
    assert_same(r_grad, r_plain)
    assert_deriv(g, fd(lambda r0: rate_network_inplace(W, I, r0.copy()), np.zeros(3)))
    # a plain state with traced weights: the in-place update refuses, naming x = x + y
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x = x \+ y"):
        npfunc.grad(rate_network_inplace)(W, I, np.zeros(3))
    # vmap over inputs and states (states as rows, then as columns): rows updated as a loop would
    Is = RNG.standard_normal((4, 3))
    R, R_ref = np.zeros((4, 3)), np.zeros((4, 3))
    out = npfunc.vmap(rate_network_inplace, in_dims=(None, 0, 0), chunk_size=3)(W, Is, R)
    want = _stack([rate_network_inplace(W, Is[k], R_ref[k]) for k in range(4)])
    assert_same(out, want)
    assert_same(R, R_ref)
    C, C_ref = np.zeros((3, 4)), np.zeros((3, 4))
    out = npfunc.vmap(rate_network_inplace, in_dims=(None, 1, 1))(W, Is.T.copy(), C)
    want = _stack([rate_network_inplace(W, Is[k], C_ref[:, k]) for k in range(4)])
    assert_same(out, want)
    assert_same(C, C_ref)


def wilson_cowan(params, steps=50, dt=0.1):
    """Excitatory/inhibitory population rates; the trajectory as an array of (E, I) tuples."""
    wee, wei, wie, wii = params
    E, I = 0.1, 0.05
    S = lambda x: 1 / (1 + np.exp(-x))
    out = []
    for _ in range(steps):
        dE = -E + S(wee * E - wei * I + 1.0)
        dI = -I + S(wie * E - wii * I)
        E, I = E + dt * dE, I + dt * dI
        out.append((E, I))
    return np.array(out)


def test_wilson_cowan_trajectory():
    p = np.array([12.0, 4.0, 13.0, 11.0])
    want = wilson_cowan(p)
    jf = npfunc.jit(wilson_cowan)
    assert_same(jf(p), want)
    assert_same(jf(p - 1.0), wilson_cowan(p - 1.0))
    assert_deriv(npfunc.jacrev(wilson_cowan)(p), fd(wilson_cowan, p))
    ps = p + RNG.standard_normal((3, 4))
    assert_same(npfunc.vmap(wilson_cowan)(ps), _stack([wilson_cowan(q) for q in ps]))


def oja_rule(w, X, eta=0.01):
    """Oja's Hebbian rule, updating the weight vector in place and returning it."""
    for x in X:
        y = w @ x
        w += eta * y * (x - y * w)
    return w


def test_oja_rule_in_place_under_every_transform():
    X = RNG.standard_normal((6, 3))
    w0 = RNG.standard_normal(3)
    w_plain = w0.copy()
    want = oja_rule(w_plain, X)
    w_jit = w0.copy()
    out = npfunc.jit(oja_rule)(w_jit, X)
    assert out is w_jit
    assert_same(w_jit, w_plain)
    w_fun = w0.copy()
    out = npfunc.functionalize(oja_rule)(w_fun, X)
    assert out is w_fun
    assert_same(w_fun, w_plain)
    for transform in (npfunc.jacrev, npfunc.jacfwd):
        w = w0.copy()
        J = transform(oja_rule)(w, X)
        assert_same(w, w_plain)
        assert_deriv(J, fd(lambda z: oja_rule(z.copy(), X), w0))
    w = w0.copy()
    y, pull = npfunc.vjp(oja_rule, w, X)
    assert_same(y, want)
    assert_same(w, w_plain)
    (gw, gX) = pull(np.ones(3))
    assert_deriv(gX, fd(lambda z: oja_rule(w0.copy(), z).sum(), X))
    w = w0.copy()
    H = npfunc.hessian(lambda z: oja_rule(z, X).sum())(w)
    assert_same(w, w_plain)
    assert_deriv(H, fd(lambda z: npfunc.grad(lambda q: oja_rule(q, X).sum())(z.copy()), w0), atol=1e-7)


def stdp_loop(w, pre, post, A_plus=0.01, A_minus=0.012, tau=20.0):
    """Pair-based STDP over all pre/post spike pairs, into w in place, then clipped in place."""
    for tp in pre:
        for tq in post:
            dt = tq - tp
            if dt > 0:
                w += A_plus * np.exp(-dt / tau)
            else:
                w -= A_minus * np.exp(dt / tau)
    np.clip(w, 0.0, 1.0, out=w)
    return w


def stdp_vectorised(w, pre, post, A_plus=0.01, A_minus=0.012, tau=20.0):
    dt = post[None, :] - pre[:, None]
    dw = np.where(dt > 0, A_plus * np.exp(-dt / tau), -A_minus * np.exp(dt / tau))
    w += dw.sum()
    np.clip(w, 0.0, 1.0, out=w)
    return w


def test_stdp_in_place_jit_and_vmap():
    pre, post = np.array([1.0, 5.0, 9.0]), np.array([3.0, 4.0])
    w0 = RNG.random((2, 2)) * 0.5
    w_loop = w0.copy()
    stdp_loop(w_loop, pre, post)
    w_vec = w0.copy()
    stdp_vectorised(w_vec, pre, post)
    np.testing.assert_allclose(w_vec, w_loop)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where\(cond, a, b\)"):
        npfunc.jit(stdp_loop)(w0.copy(), pre, post)
    jf = npfunc.jit(stdp_vectorised)
    for post_k in (post, post + 3.0):
        w_j, w_p = w0.copy(), w0.copy()
        out = jf(w_j, pre, post_k)
        stdp_vectorised(w_p, pre, post_k)
        assert out is w_j
        assert_same(w_j, w_p)
    Wb = RNG.random((3, 2, 2))
    Wb_ref = Wb.copy()
    out = npfunc.vmap(stdp_vectorised, in_dims=(0, None, None))(Wb, pre, post)
    for k in range(3):
        stdp_vectorised(Wb_ref[k], pre, post)
    assert_same(Wb, Wb_ref)
    assert_same(out, Wb_ref)


def td_values(rewards, alpha, gamma=0.9, episodes=5):
    """Tabular TD(0) on a chain, the value table updated entry by entry."""
    V = np.zeros(len(rewards) + 1)
    for _ in range(episodes):
        for s in range(len(rewards)):
            delta = rewards[s] + gamma * V[s + 1] - V[s]
            V[s] += alpha * delta
    return V


def td_values_like(rewards, alpha, gamma=0.9, episodes=5):
    V = np.zeros_like(rewards * alpha, shape=len(rewards) + 1)
    for _ in range(episodes):
        for s in range(len(rewards)):
            delta = rewards[s] + gamma * V[s + 1] - V[s]
            V[s] += alpha * delta
    return V


def test_td_learning_plain_value_table_matches_like_fix():
    """V = np.zeros(n) updated entry by entry (V[s] += alpha * delta) with traced rewards and
    rate: the plain table takes the writes (core/pending.py), plain NumPy's values under jit
    and vmap, the five-point derivatives, and the like= fix's to rounding."""
    r = RNG.random(5)
    want = td_values(r, 0.1)
    rs = RNG.random((3, 5))
    for spelling in (td_values, td_values_like):
        jf = npfunc.jit(spelling)
        assert_same(jf(r, 0.1), want)
        assert_same(jf(r[::-1].copy(), 0.1), td_values(r[::-1].copy(), 0.1))
        assert_same(jf(r, np.float64(0.2)), td_values(r, np.float64(0.2)))
        assert_same(jf(r, 0.1), want)
        assert_deriv(npfunc.jacrev(spelling)(r, 0.1), fd(lambda z: td_values(z, 0.1), r))
        d_alpha = npfunc.jacfwd(spelling, argnums=1)(r, np.float64(0.1))
        assert_deriv(d_alpha, fd(lambda a: td_values(r, a), np.float64(0.1)))
        assert_same(npfunc.vmap(spelling, in_dims=(0, None))(rs, 0.1), _stack([td_values(q, 0.1) for q in rs]))
    np.testing.assert_allclose(npfunc.jacrev(td_values)(r, 0.1), npfunc.jacrev(td_values_like)(r, 0.1), rtol=1e-12, atol=0)
    np.testing.assert_allclose(npfunc.jacfwd(td_values, argnums=1)(r, np.float64(0.1)),
                               npfunc.jacfwd(td_values_like, argnums=1)(r, np.float64(0.1)), rtol=1e-12, atol=0)


@npfunc.custom_vjp
def spike_fn(v):
    """Heaviside spike nonlinearity with a fast-sigmoid surrogate derivative."""
    return (v > 0).astype(v.dtype)


def _spike_fwd(v):
    return spike_fn(v), v


def _spike_bwd(v, g):
    return (g / (1 + 10 * np.abs(v)) ** 2,)


spike_fn.defvjp(_spike_fwd, _spike_bwd)


def snn_count_loss(w, x, target, beta=0.9, th=1.0):
    """A layer of leaky integrate-and-fire units with soft reset, trained on spike counts."""
    mem = np.zeros(w.shape[1], dtype=w.dtype)
    count = 0.0
    for t in range(x.shape[0]):
        mem = beta * mem + x[t] @ w
        s = spike_fn(mem - th)
        mem = mem - s * th
        count = count + s
    return np.sum((count - target) ** 2)


def _snn_surrogate_grad_by_hand(w, x, target, beta=0.9, th=1.0):
    """The same backward pass written out (reverse loop with the surrogate)."""
    T = x.shape[0]
    mems, ss = [], []
    mem = np.zeros(w.shape[1])
    count = 0.0
    for t in range(T):
        mem = beta * mem + x[t] @ w
        mems.append(mem - th)
        s = (mem - th > 0).astype(float)
        ss.append(s)
        mem = mem - s * th
        count = count + s
    g_count = 2 * (count - target)
    gw = np.zeros_like(w)
    g_mem_next = np.zeros(w.shape[1])   # dL/d mem_t (after the reset), from later steps
    for t in range(T - 1, -1, -1):
        sur = 1 / (1 + 10 * np.abs(mems[t])) ** 2
        g_s = g_count - th * g_mem_next
        g_pre = g_mem_next + g_s * sur         # dL/d mem before the reset
        gw += np.outer(x[t], g_pre)
        g_mem_next = beta * g_pre
    return gw


def test_spiking_layer_surrogate_gradient():
    w = RNG.random((3, 4))
    x = RNG.random((6, 3))
    target = np.array([1.0, 2.0, 0.0, 1.0])
    want = snn_count_loss(w, x, target)
    assert_same(npfunc.jit(snn_count_loss)(w, x, target), want)
    g = npfunc.grad(snn_count_loss)(w, x, target)
    assert_deriv(g, _snn_surrogate_grad_by_hand(w, x, target), rtol=1e-12)
    assert_same(npfunc.jit(npfunc.grad(snn_count_loss))(w, x, target), g)
    ws = RNG.random((2, 3, 4))
    gs = npfunc.vmap(npfunc.grad(snn_count_loss), in_dims=(0, None, None))(ws, x, target)
    for k in range(2):
        assert_deriv(gs[k], _snn_surrogate_grad_by_hand(ws[k], x, target), rtol=1e-12)
    g32 = npfunc.grad(snn_count_loss)(w.astype(np.float32), x.astype(np.float32), target.astype(np.float32))
    assert g32.dtype == np.float32


# =============================================================================================
# 6. Spike trains: GLMs, receptive fields, statistics
# =============================================================================================


def poisson_glm_nll(w, X, y, dt=0.01):
    eta = X @ w
    rate = np.exp(eta) * dt
    return np.sum(rate) - y @ np.log(rate) + np.sum(sps.gammaln(y + 1))


def history_design(stim, spikes, n_stim=5, n_hist=3):
    """Design matrix with stimulus lags and spike-history lags (scipy.linalg.toeplitz), plus a bias."""
    T = len(stim)
    Xs = sla.toeplitz(stim, np.zeros(n_stim))
    Xh = sla.toeplitz(np.r_[0.0, spikes[:-1]], np.zeros(n_hist))
    return np.column_stack([np.ones(T), Xs, Xh])


def glm_from_kernels(k, h, b, stim, spikes, dt=0.01):
    """Negative log-likelihood of a GLM written with causal convolutions."""
    drive = np.convolve(stim, k)[:len(stim)]
    hist = np.convolve(np.r_[0.0, spikes[:-1]], h)[:len(stim)]
    lam = np.exp(b + drive + hist)
    return -(spikes @ np.log(lam * dt) - dt * lam.sum())


def test_poisson_glm_design_and_newton_step():
    rng = np.random.default_rng(16)
    stim = rng.standard_normal(30)
    spikes = (rng.random(30) < 0.3).astype(float)
    X = history_design(stim, spikes)
    assert_same(npfunc.jit(history_design)(stim, spikes), X)
    assert_deriv(npfunc.jacfwd(history_design)(stim, spikes), fd(lambda s: history_design(s, spikes), stim))
    w = np.r_[3.0, 0.1 * rng.standard_normal(8)]
    want = poisson_glm_nll(w, X, spikes)
    assert_same(npfunc.jit(poisson_glm_nll)(w, X, spikes), want)
    g = npfunc.grad(poisson_glm_nll)(w, X, spikes)
    assert_deriv(g, X.T @ (np.exp(X @ w) * 0.01 - spikes))
    H = npfunc.hessian(poisson_glm_nll)(w, X, spikes)
    assert_deriv(H, X.T @ (X * (np.exp(X @ w) * 0.01)[:, None]))
    # a Newton step, jitted, twice
    newton = npfunc.jit(lambda w, X, y: w - np.linalg.solve(npfunc.hessian(poisson_glm_nll)(w, X, y),
                                                            npfunc.grad(poisson_glm_nll)(w, X, y)))
    w1 = newton(w, X, spikes)
    assert_deriv(w1, w - np.linalg.solve(H, g), rtol=1e-10)
    w2 = newton(w1, X, spikes)
    assert poisson_glm_nll(w2, X, spikes) < poisson_glm_nll(w1, X, spikes) < want
    ws = w + 0.1 * rng.standard_normal((3, 9))
    assert_same(npfunc.vmap(poisson_glm_nll, in_dims=(0, None, None))(ws, X, spikes),
                _stack([poisson_glm_nll(q, X, spikes) for q in ws]), rtol=1e-13)


def test_glm_kernels_by_convolution():
    rng = np.random.default_rng(17)
    stim = rng.standard_normal(25)
    spikes = (rng.random(25) < 0.3).astype(float)
    k, h = 0.3 * rng.standard_normal(4), -np.abs(rng.standard_normal(3))
    want = glm_from_kernels(k, h, 3.0, stim, spikes)
    jf = npfunc.jit(glm_from_kernels)
    assert_same(jf(k, h, 3.0, stim, spikes), want)
    assert_same(jf(2 * k, h, 3.0, stim, spikes), glm_from_kernels(2 * k, h, 3.0, stim, spikes))
    for i, x in enumerate((k, h)):
        f = lambda z: glm_from_kernels(*(k, h)[:i], z, *(k, h)[i + 1:], 3.0, stim, spikes)
        assert_deriv(npfunc.grad(glm_from_kernels, argnums=i)(k, h, 3.0, stim, spikes), fd(f, x))
    Hk = npfunc.hessian(glm_from_kernels)(k, h, 3.0, stim, spikes)
    assert_deriv(Hk, fd(lambda z: npfunc.grad(glm_from_kernels)(z, h, 3.0, stim, spikes), k), atol=1e-7)
    db = npfunc.grad(glm_from_kernels, argnums=2)(k, h, np.float64(3.0), stim, spikes)
    assert_deriv(db, fd(lambda b: glm_from_kernels(k, h, b, stim, spikes), np.float64(3.0)))


def test_grad_of_numpy_scalar_bias_is_numpy_scalar():
    rng = np.random.default_rng(17)
    stim = rng.standard_normal(25)
    spikes = (rng.random(25) < 0.3).astype(float)
    k, h = 0.3 * rng.standard_normal(4), -np.abs(rng.standard_normal(3))
    assert type(npfunc.grad(np.exp)(np.float64(3.0))) is np.float64
    db = npfunc.grad(glm_from_kernels, argnums=2)(k, h, np.float64(3.0), stim, spikes)
    assert type(db) is np.float64


def rf_response(kernel, stim):
    return np.convolve(stim, kernel, mode="valid")


def ln_model(kernel, stim, mode="same"):
    """Linear-nonlinear model: convolution then softplus."""
    return np.log1p(np.exp(np.convolve(stim, kernel, mode=mode)))


def test_receptive_field_convolutions():
    rng = np.random.default_rng(18)
    stim = rng.standard_normal(20)
    for kernel in (0.3 * rng.standard_normal(4), 0.3 * rng.standard_normal(5)):   # even and odd lengths
        for mode in ("full", "same", "valid"):
            f = lambda k, s: ln_model(k, s, mode)
            assert_same(npfunc.jit(f)(kernel, stim), f(kernel, stim))
            assert_deriv(npfunc.jacrev(f)(kernel, stim), fd(lambda k: f(k, stim), kernel))
            assert_deriv(npfunc.jacfwd(f, argnums=1)(kernel, stim), fd(lambda s: f(kernel, s), stim))
        ks = rng.standard_normal((3, len(kernel)))
        assert_same(npfunc.vmap(rf_response, in_dims=(0, None))(ks, stim), _stack([rf_response(q, stim) for q in ks]))
    # a kernel longer than the stimulus: NumPy swaps them, 'same' has the longer length
    short, long_k = stim[:3], rng.standard_normal(7)
    for mode in ("full", "same", "valid"):
        f = lambda s: np.convolve(s, long_k, mode)
        assert_same(npfunc.jit(f)(short), f(short))
        assert_deriv(npfunc.jacrev(f)(short), fd(f, short))
    # float32 stimulus with an integer spike-count kernel
    s32 = stim.astype(np.float32)
    kint = np.array([1, 2, 1])
    assert_same(npfunc.jit(rf_response)(kint, s32), rf_response(kint, s32), rtol=1e-6)


def spike_triggered_average(stim, spikes, L):
    acc = np.zeros(L)
    n = 0
    for t in np.nonzero(spikes)[0]:
        if t >= L - 1:
            acc += stim[t - L + 1:t + 1] * spikes[t]
            n += spikes[t]
    return acc / n


def spike_triggered_average_windows(stim, spikes, L):
    """The same with sliding windows and a weighted sum (no data-dependent loop)."""
    win = sliding_window_view(stim, L)
    w = spikes[L - 1:]
    return w @ win / w.sum()


def test_spike_triggered_average_into_plain_buffer_and_by_windows():
    rng = np.random.default_rng(19)
    stim = rng.standard_normal(40)
    spikes = rng.poisson(0.4, 40).astype(float)
    want = spike_triggered_average(stim, spikes, 4)
    np.testing.assert_allclose(spike_triggered_average_windows(stim, spikes, 4), want)
    # acc += stim[...] * spikes[t] into the plain acc = np.zeros(L) takes the traced windows
    # (core/pending.py): plain NumPy's value, the five-point Jacobian, and the windowed spelling's
    out, _ = npfunc.vjp(lambda s: spike_triggered_average(s, spikes, 4), stim)
    assert_same(out, want)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        J = T(spike_triggered_average)(stim, spikes, 4)
        assert_deriv(J, fd(lambda s: spike_triggered_average(s, spikes, 4), stim))
        np.testing.assert_allclose(J, T(spike_triggered_average_windows)(stim, spikes, 4), rtol=1e-12, atol=1e-15)
    # the loop over np.nonzero(spikes) of traced spikes: a data-dependent shape under jit
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"size="):
        npfunc.jit(spike_triggered_average)(stim, spikes, 4)
    jf = npfunc.jit(spike_triggered_average_windows, static_argnums=2)
    assert_same(jf(stim, spikes, 4), spike_triggered_average_windows(stim, spikes, 4))
    sp2 = rng.poisson(0.4, 40).astype(float)
    assert_same(jf(stim, sp2, 4), spike_triggered_average_windows(stim, sp2, 4))
    J = npfunc.jacrev(spike_triggered_average_windows)(stim, spikes, 4)
    assert_deriv(J, fd(lambda s: spike_triggered_average(s, spikes, 4), stim))
    Jy = npfunc.jacfwd(spike_triggered_average_windows, argnums=1)(stim, spikes, 4)
    assert_deriv(Jy, fd(lambda y: spike_triggered_average_windows(stim, y, 4), spikes))


def smooth_rate(spikes, sigma=2.0):
    t = np.arange(-3 * sigma, 3 * sigma + 1)
    k = np.exp(-t**2 / (2 * sigma**2))
    k /= k.sum()
    return np.convolve(spikes, k, mode="same")


def exp_synapse_trace(spikes, tau=5.0, dt=1.0):
    a = np.exp(-dt / tau)
    return sig.lfilter([1 - a], [1, -a], spikes)


def cross_correlogram(a, b, maxlag=3):
    full = np.correlate(a - a.mean(), b - b.mean(), mode="full")
    mid = len(full) // 2
    return full[mid - maxlag: mid + maxlag + 1] / len(a)


def test_rate_smoothing_synaptic_filter_and_correlogram():
    rng = np.random.default_rng(20)
    sp = (rng.random(24) < 0.3).astype(float)
    for f in (smooth_rate, exp_synapse_trace):
        assert_same(npfunc.jit(f)(sp), f(sp))
        assert_same(npfunc.jit(f)(sp[::-1].copy()), f(sp[::-1].copy()))
        assert_deriv(npfunc.jacrev(f)(sp), fd(f, sp))
        batch = rng.random((3, 24))
        assert_same(npfunc.vmap(f)(batch), _stack([f(z) for z in batch]))
        s32 = sp.astype(np.float32)
        assert_same(npfunc.jit(f)(s32), f(s32), rtol=1e-6)
    tau_grad = npfunc.grad(lambda tau: exp_synapse_trace(sp, tau)[-1])(np.float64(5.0))
    assert_deriv(tau_grad, fd(lambda tau: exp_synapse_trace(sp, tau)[-1], np.float64(5.0)))
    a, b = rng.random(12), rng.random(12)
    assert_same(npfunc.jit(cross_correlogram)(a, b), cross_correlogram(a, b))
    assert_deriv(npfunc.jacrev(cross_correlogram, argnums=1)(a, b), fd(lambda z: cross_correlogram(a, z), b))
    As = rng.random((3, 12))
    assert_same(npfunc.vmap(cross_correlogram, in_dims=(0, None))(As, b),
                _stack([cross_correlogram(q, b) for q in As]))


def threshold_crossings(v, th=-50.0, dt=0.001):
    """Upward crossings of a threshold: count (NumPy int) and rate (float)."""
    up = (v[1:] >= th) & (v[:-1] < th)
    n = up.sum()
    return n, n / (len(v) * dt)


def isi_cv(spike_times):
    isi = np.diff(spike_times)
    return isi.std() / isi.mean()


def psth(spike_times, bins):
    counts, edges = np.histogram(spike_times, bins=bins)
    return counts / np.diff(edges)


def binned_counts(times, T=1.0, dt=0.1):
    idx = np.floor(times / dt).astype(int)
    return np.bincount(idx, minlength=int(T / dt))


def gamma_isi_nll(params, isis):
    k, theta = params
    return -np.sum(st.gamma.logpdf(isis, a=k, scale=theta))


def test_spike_train_statistics():
    rng = np.random.default_rng(21)
    v = -60 + 15 * np.sin(np.linspace(0, 12, 50)) + rng.standard_normal(50)
    n, rate = threshold_crossings(v)
    for z in (v, v + 3.0):
        got, want = npfunc.jit(threshold_crossings)(z), threshold_crossings(z)
        assert_same(got[0], want[0])
        assert_same(got[1], want[1])
    vs = np.stack([v, v + 3.0, v - 5.0])
    ns, rates = npfunc.vmap(threshold_crossings)(vs)
    assert_same(ns, _stack([threshold_crossings(z)[0] for z in vs]))
    assert_same(rates, _stack([threshold_crossings(z)[1] for z in vs]))
    times = np.sort(rng.random(10))
    assert_same(npfunc.jit(isi_cv)(times), isi_cv(times))
    assert_deriv(npfunc.grad(isi_cv)(times), fd(isi_cv, times))
    tb = np.sort(rng.random((3, 10)), axis=1)
    assert_same(npfunc.vmap(isi_cv)(tb), _stack([isi_cv(z) for z in tb]))
    edges = np.linspace(0, 1, 5)
    for z in (times, np.sort(rng.random(10))):
        assert_same(npfunc.jit(psth)(z, edges), psth(z, edges))
        assert_same(npfunc.jit(binned_counts)(z), binned_counts(z))
    # binned counts under vmap: np.bincount's length depends on the values unless minlength bounds it
    got = npfunc.vmap(binned_counts)(tb)
    assert_same(got, _stack([binned_counts(z) for z in tb]))



def time_rescaled_isis(log_rate, t, spikes):
    """Time-rescaling theorem: the integrated intensity at the spikes (cumulative sum of the
    rate on a grid, np.interp at the spike times); rescaled intervals mapped to (0, 1)."""
    Lam = np.concatenate([[0.0], np.cumsum(np.exp(log_rate[:-1]) * np.diff(t))])
    tau = np.diff(np.interp(spikes, t, Lam))
    return 1 - np.exp(-tau)


def ks_distance(log_rate, t, spikes):
    z = np.sort(time_rescaled_isis(log_rate, t, spikes))
    n = len(z)
    return np.max(np.abs(z - (np.arange(1, n + 1) - 0.5) / n))


def test_time_rescaling_goodness_of_fit():
    rng = np.random.default_rng(37)
    t = np.linspace(0, 1, 41)
    spikes = np.sort(rng.random(8))
    lr = np.log(5 + 3 * np.sin(2 * np.pi * t))
    for f in (time_rescaled_isis, ks_distance):
        jf = npfunc.jit(f)
        assert_same(jf(lr, t, spikes), f(lr, t, spikes))
        assert_same(jf(0.9 * lr, t, spikes), f(0.9 * lr, t, spikes))
        assert_deriv(npfunc.jacrev(f)(lr, t, spikes), fd(lambda z: f(z, t, spikes), lr))
        lrs = np.stack([lr, 0.9 * lr])
        assert_same(npfunc.vmap(f, in_dims=(0, None, None))(lrs, t, spikes), _stack([f(z, t, spikes) for z in lrs]))
    Js = npfunc.jacfwd(time_rescaled_isis, argnums=2)(lr, t, spikes)
    assert_deriv(Js, fd(lambda s: time_rescaled_isis(lr, t, s), spikes))


def test_gamma_isi_likelihood():
    isis = np.random.default_rng(22).gamma(2.0, 0.05, 30)
    p = np.array([2.0, 0.05])
    want = gamma_isi_nll(p, isis)
    jf = npfunc.jit(gamma_isi_nll)
    assert_same(jf(p, isis), want, rtol=1e-13)
    assert_same(jf(np.array([2.5, 0.04]), isis), gamma_isi_nll(np.array([2.5, 0.04]), isis), rtol=1e-13)
    assert_deriv(npfunc.grad(gamma_isi_nll)(p, isis), fd(lambda q: gamma_isi_nll(q, isis), p))
    H = npfunc.hessian(gamma_isi_nll)(p, isis)
    assert_deriv(H, fd(lambda q: npfunc.grad(gamma_isi_nll)(q, isis), p), rtol=1e-5)
    gi = npfunc.grad(gamma_isi_nll, argnums=1)(p, isis)
    assert_deriv(gi, fd(lambda z: gamma_isi_nll(p, z), isis))



def test_spike_counts_summed_in_float32_by_ufunc_reduce():
    def total_counts32(counts):
        """Total spike count per trial, accumulated in float32 (memory-bound recordings)."""
        return np.add.reduce(counts, axis=1, dtype=np.float32), np.add.accumulate(counts[0], dtype=np.float32)
    counts = np.random.default_rng(23).poisson(3.0, (4, 10)).astype(float)
    got, want = npfunc.jit(total_counts32)(counts), total_counts32(counts)
    assert_same(got[0], want[0])
    assert_same(got[1], want[1])



def trial_count_summary(spikes):
    """Spike counts per trial from an int8 raster: the median and interquartile range of the
    counts over trials, and each neuron's median count (np.percentile of integers)."""
    counts = spikes.sum(axis=2)                       # (trials, neurons), NumPy's int64
    per_trial = spikes.sum(axis=(1, 2))
    q1, q3 = np.percentile(per_trial, 25), np.percentile(per_trial, 75)
    return np.median(counts, axis=0), q3 - q1, np.percentile(spikes[:, :, :10], 50, axis=2)


def test_percentile_of_integer_spike_counts():
    # np.percentile / np.quantile of integer data with a Python-number q came back in the data's
    # integer dtype, with the interpolation truncated, under jit and vmap (NumPy: float64)
    raster = (np.random.default_rng(26).random((5, 3, 12)) < 0.3).astype(np.int8)
    want = trial_count_summary(raster)
    for r in (raster, raster[::-1].copy()):
        got, want = npfunc.jit(trial_count_summary)(r), trial_count_summary(r)
        for g, w in zip(got, want):
            assert_same(g, w)
    rasters = np.stack([raster, 1 - raster])
    got = npfunc.vmap(trial_count_summary)(rasters)
    for k in range(3):
        assert_same(got[k], _stack([trial_count_summary(r)[k] for r in rasters]))
    a = np.array([[0, 1, 1, 0], [1, 1, 0, 0]], dtype=np.int8)
    for f, dt in ((lambda z: np.quantile(z, 0.3), np.uint8), (lambda z: np.nanpercentile(z, 50, axis=1), np.int64),
                  (lambda z: np.quantile(z, 0.5, method="midpoint"), np.int8)):
        assert_same(npfunc.jit(f)(a.astype(dt)), f(a.astype(dt)))


# =============================================================================================
# 7. Population codes and decision models
# =============================================================================================

PREFS = np.linspace(-np.pi, np.pi, 8, endpoint=False)


def von_mises_tuning(theta, prefs, kappa=2.0, rmax=20.0, base=1.0):
    return base + rmax * np.exp(kappa * (np.cos(theta - prefs) - 1))


def population_vector(rates, prefs):
    return np.arctan2(np.sum(rates * np.sin(prefs)), np.sum(rates * np.cos(prefs)))


def poisson_loglik_theta(theta, counts, prefs, T=0.5):
    f = von_mises_tuning(theta, prefs) * T
    return np.sum(counts * np.log(f) - f - sps.gammaln(counts + 1))


def ml_decode_grid(counts, prefs, n_grid=64):
    grid = np.linspace(-np.pi, np.pi, n_grid, endpoint=False)
    ll = np.array([poisson_loglik_theta(g, counts, prefs) for g in grid])
    return grid[np.argmax(ll)]


def ml_decode_grid_like(counts, prefs, n_grid=64):
    """ml_decode_grid with the grid made like the log-likelihoods (the refusal's fix)."""
    grid = np.linspace(-np.pi, np.pi, n_grid, endpoint=False)
    ll = np.array([poisson_loglik_theta(g, counts, prefs) for g in grid])
    return np.asarray(grid, like=ll)[np.argmax(ll)]



def softmax_decoder(counts, W):
    """Posterior over stimulus classes from spike counts: a softmax of the integer
    counts (a sharpness check), and of the class scores counts @ W.T."""
    return sps.softmax(counts, axis=-1), sps.log_softmax(counts @ W.T, axis=-1)


def test_softmax_of_integer_spike_counts_keeps_scipys_dtype():
    # scipy.special.softmax / log_softmax exponentiate integers as NumPy does (float16 for int8,
    # float32 for int16); the twins computed them in float64 under jit and vmap
    counts = np.random.default_rng(27).poisson(2.0, (3, 6))
    W = np.random.default_rng(28).standard_normal((4, 6))
    for dt in (np.int8, np.int16, np.int64):
        c = counts.astype(dt)
        got, want = npfunc.jit(softmax_decoder)(c, W), softmax_decoder(c, W)
        assert_same(got[0], want[0], rtol=1e-3)
        assert_same(got[1], want[1])
        got = npfunc.vmap(softmax_decoder, in_dims=(0, None))(np.stack([c, c[::-1]]), W)
        assert_same(got[0], _stack([softmax_decoder(c, W)[0], softmax_decoder(c[::-1], W)[0]]), rtol=1e-3)
    g = npfunc.grad(lambda w: softmax_decoder(counts, w)[1][0, 2])(W)
    assert_deriv(g, fd(lambda w: softmax_decoder(counts, w)[1][0, 2], W))


def raster_second_moment(raster):
    """Squared binary raster (an int array NumPy gives for bool ** 2) and its trial mean."""
    sq = raster ** 2
    return sq, sq.mean(axis=0)


def test_bool_raster_squared_dtype():
    raster = np.random.default_rng(29).random((4, 5)) < 0.3
    got, want = npfunc.jit(raster_second_moment)(raster), raster_second_moment(raster)
    assert_same(got[1], want[1])
    assert_same(got[0], want[0])


def fisher_information(theta, prefs, T=0.5):
    """I(theta) = T sum f'(theta)^2 / f(theta), with f' by npfunc.jacfwd inside the program."""
    df = npfunc.jacfwd(von_mises_tuning)(theta, prefs)
    f = von_mises_tuning(theta, prefs)
    return T * np.sum(df ** 2 / f)


def test_tuning_curves_population_vector_and_scalar_types():
    for theta in (np.float64(0.3), np.float32(0.3), 0.3):
        want = von_mises_tuning(theta, PREFS)
        assert_same(npfunc.jit(von_mises_tuning)(theta, PREFS), want, rtol=1e-6)
    assert_same(npfunc.jacfwd(von_mises_tuning)(np.float64(0.3), PREFS).shape, (8,))
    assert_deriv(npfunc.jacrev(von_mises_tuning)(np.float64(0.3), PREFS), fd(lambda t: von_mises_tuning(t, PREFS), 0.3))
    thetas = np.linspace(-1, 1, 5)
    assert_same(npfunc.vmap(von_mises_tuning, in_dims=(0, None))(thetas, PREFS),
                _stack([von_mises_tuning(t, PREFS) for t in thetas]))
    r = von_mises_tuning(0.3, PREFS)
    assert_same(npfunc.jit(population_vector)(r, PREFS), population_vector(r, PREFS))
    np.testing.assert_allclose(population_vector(r, PREFS), 0.3, atol=1e-3)
    assert_deriv(npfunc.grad(population_vector)(r, PREFS), fd(lambda z: population_vector(z, PREFS), r))
    rs = RNG.random((3, 8))
    assert_same(npfunc.vmap(population_vector, in_dims=(0, None))(rs, PREFS),
                _stack([population_vector(z, PREFS) for z in rs]))
    # the decoded angle as a function of the stimulus: d theta_hat / d theta = 1 for this code
    dec = lambda t: population_vector(von_mises_tuning(t, PREFS), PREFS)
    assert_deriv(npfunc.grad(dec)(np.float64(0.3)), fd(dec, 0.3))
    assert_deriv(npfunc.vmap(npfunc.grad(dec))(thetas), np.array([fd(dec, t) for t in thetas]))


def test_poisson_decoding_grid_and_gradient():
    rng = np.random.default_rng(24)
    counts = rng.poisson(von_mises_tuning(0.4, PREFS) * 0.5)
    th_grid = ml_decode_grid(counts, PREFS)
    # grid[np.argmax(ll)]: a plain grid indexed by a traced argmax refuses, naming the fix
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"table = np.asarray\(table, like=i\)"):
        npfunc.jit(ml_decode_grid)(counts, PREFS)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"npfunc.numpy.take"):
        npfunc.vmap(ml_decode_grid, in_dims=(0, None))(counts[None], PREFS)
    assert_same(ml_decode_grid_like(counts, PREFS), th_grid)
    jd = npfunc.jit(ml_decode_grid_like)
    assert_same(jd(counts, PREFS), th_grid)
    c2 = rng.poisson(von_mises_tuning(-1.0, PREFS) * 0.5)
    assert_same(jd(c2, PREFS), ml_decode_grid(c2, PREFS))
    cs = rng.poisson(von_mises_tuning(0.4, PREFS) * 0.5, (3, 8))
    assert_same(npfunc.vmap(ml_decode_grid_like, in_dims=(0, None))(cs, PREFS),
                _stack([ml_decode_grid(c, PREFS) for c in cs]))
    # refine by Newton steps on the log-likelihood's derivative (grad of grad)
    dll = npfunc.grad(poisson_loglik_theta)
    d2ll = npfunc.grad(dll)
    th = th_grid
    for _ in range(5):
        th = th - dll(th, counts, PREFS) / d2ll(th, counts, PREFS)
    assert abs(dll(th, counts, PREFS)) < 1e-9
    assert_deriv(dll(np.float64(0.2), counts, PREFS), fd(lambda t: poisson_loglik_theta(t, counts, PREFS), 0.2))
    assert_deriv(npfunc.hessian(poisson_loglik_theta)(np.float64(0.2), counts, PREFS),
                 fd(lambda t: dll(t, counts, PREFS), 0.2))
    jg = npfunc.jit(dll)
    assert_deriv(jg(np.float64(0.2), counts, PREFS), dll(np.float64(0.2), counts, PREFS), rtol=1e-12)
    assert_deriv(jg(np.float64(-0.7), counts, PREFS), dll(np.float64(-0.7), counts, PREFS), rtol=1e-12)


def test_fisher_information_nested_jacfwd():
    thetas = np.linspace(-1.0, 1.0, 4)
    for t in thetas:
        f_prime = fd(lambda z: von_mises_tuning(z, PREFS), t)
        want = 0.5 * np.sum(f_prime ** 2 / von_mises_tuning(t, PREFS))
        np.testing.assert_allclose(fisher_information(t, PREFS), want, rtol=1e-8)
    got = npfunc.vmap(fisher_information, in_dims=(0, None))(thetas, PREFS)
    assert_same(got, _stack([fisher_information(t, PREFS) for t in thetas]), rtol=1e-13)
    jf = npfunc.jit(fisher_information)
    assert_same(jf(np.float64(0.3), PREFS), fisher_information(np.float64(0.3), PREFS), rtol=1e-13)
    dI = npfunc.grad(fisher_information)(np.float64(0.3), PREFS)
    assert_deriv(dI, fd(lambda t: fisher_information(t, PREFS), 0.3))


def gaussian_population_mle(s, centers, counts, width=0.5, amp=10.0):
    """Log-likelihood of Gaussian tuning curves given spike counts (float32 data)."""
    f = amp * np.exp(-0.5 * ((s - centers) / width) ** 2) + np.float32(0.1)
    return np.sum(counts * np.log(f) - f)


def test_gaussian_population_float32():
    centers = np.linspace(-1, 1, 6).astype(np.float32)
    counts = np.random.default_rng(25).poisson(3.0, 6).astype(np.float32)
    s = np.float32(0.2)
    want = gaussian_population_mle(s, centers, counts)
    assert type(want) is np.float32
    assert_same(npfunc.jit(gaussian_population_mle)(s, centers, counts), want, rtol=1e-6)
    g = npfunc.grad(gaussian_population_mle)(s, centers, counts)
    assert np.asarray(g).dtype == np.float32
    assert_deriv(g, fd(lambda z: gaussian_population_mle(z, centers.astype(float), counts.astype(float)), 0.2),
                 rtol=1e-4)
    ss = np.linspace(-0.5, 0.5, 3).astype(np.float32)
    assert_same(npfunc.vmap(gaussian_population_mle, in_dims=(0, None, None))(ss, centers, counts),
                _stack([gaussian_population_mle(z, centers, counts) for z in ss]), rtol=1e-6)


def divisive_normalization(x, sigma=1.0, n=2.0):
    xn = np.abs(x) ** n
    return xn / (sigma ** n + xn.sum())


def ddm_accuracy(v, a, z=0.5):
    """Drift-diffusion model: probability of the correct boundary, drift v, separation a."""
    return (1 - np.exp(-2 * v * a * z)) / (1 - np.exp(-2 * v * a))


def test_divisive_normalization_and_drift_diffusion():
    x = RNG.standard_normal(5)
    assert_same(npfunc.jit(divisive_normalization)(x), divisive_normalization(x))
    assert_deriv(npfunc.jacrev(divisive_normalization)(x), fd(divisive_normalization, x))
    xs = RNG.standard_normal((3, 5))
    assert_same(npfunc.vmap(divisive_normalization)(xs), _stack([divisive_normalization(q) for q in xs]))
    v, a = np.float64(0.8), np.float64(1.5)
    assert_same(npfunc.jit(ddm_accuracy)(v, a), ddm_accuracy(v, a))
    assert_same(npfunc.jit(ddm_accuracy)(np.float64(0.3), a), ddm_accuracy(np.float64(0.3), a))
    gv, ga = npfunc.grad(ddm_accuracy, argnums=(0, 1))(v, a)
    assert_deriv(gv, fd(lambda q: ddm_accuracy(q, a), v))
    assert_deriv(ga, fd(lambda q: ddm_accuracy(v, q), a))
    assert_deriv(npfunc.hessian(ddm_accuracy)(v, a), fd(lambda q: npfunc.grad(ddm_accuracy)(q, a), v))
    vs = np.linspace(0.1, 1.0, 4)
    assert_same(npfunc.vmap(ddm_accuracy, in_dims=(0, None))(vs, 1.5), _stack([ddm_accuracy(q, 1.5) for q in vs]))
    dv = npfunc.vmap(npfunc.grad(ddm_accuracy), in_dims=(0, None))(vs, 1.5)
    assert_deriv(dv, np.diag(fd(lambda q: ddm_accuracy(q, 1.5), vs)))


# =============================================================================================
# 8. Long simulations with checkpointed steps
# =============================================================================================


def rate_network_checkpointed(W, I, steps=10):
    """rate_network's Euler loop with each step checkpointed; the weights passed to the step."""
    step = npfunc.checkpoint(lambda r, W, I: r + 0.1 * (-r + np.tanh(W @ r + I)))
    r = np.zeros(W.shape[0])
    for _ in range(steps):
        r = step(r, W, I)
    return r.sum()


def rate_network_checkpointed_closure(W, I, steps=3):
    """The same step closing over W and I, as one writes it first."""
    step = npfunc.checkpoint(lambda r: r + 0.1 * (-r + np.tanh(W @ r + I)))
    r = np.zeros(W.shape[0])
    for _ in range(steps):
        r = step(r)
    return r.sum()


def test_checkpointed_euler_loop():
    W = RNG.standard_normal((3, 3))
    I = RNG.standard_normal(3)
    plain = lambda w: rate_network(w, I, steps=10).sum()
    assert_same(rate_network_checkpointed(W, I), plain(W), rtol=1e-14)
    assert_deriv(npfunc.grad(rate_network_checkpointed)(W, I), fd(plain, W))
    assert_deriv(npfunc.jacfwd(rate_network_checkpointed)(W, I), fd(plain, W))
    assert_deriv(npfunc.hessian(rate_network_checkpointed)(W, I), fd(npfunc.grad(plain), W), atol=1e-7)
    jf = npfunc.jit(rate_network_checkpointed)
    assert_same(jf(W, I), rate_network_checkpointed(W, I))
    assert_same(jf(0.5 * W, I), rate_network_checkpointed(0.5 * W, I))
    assert_deriv(npfunc.jit(npfunc.grad(rate_network_checkpointed))(W, I), fd(plain, W))
    gs = npfunc.vmap(npfunc.grad(rate_network_checkpointed), in_dims=(0, None))(np.stack([W, 0.5 * W]), I)
    assert_deriv(gs[1], fd(plain, 0.5 * W))
    # one checkpointed call closing over the differentiated W is right
    one = lambda w: rate_network_checkpointed_closure(w, I, steps=1)
    assert_deriv(npfunc.grad(one)(W), fd(lambda w: rate_network(w, I, steps=1).sum(), W))


def test_checkpoint_closing_over_differentiated_weights_over_steps():
    W = RNG.standard_normal((3, 3))
    I = RNG.standard_normal(3)
    plain = lambda w: rate_network(w, I, steps=3).sum()
    try:
        g = npfunc.grad(rate_network_checkpointed_closure)(W, I)
    except npfunc.errors.NpfuncError as e:
        assert "argument" in str(e) and not isinstance(e, npfunc.errors.EscapedTracerError), str(e)
    else:
        assert_deriv(g, fd(plain, W))


# =============================================================================================
# 9. Field potentials: spectra, phase, spike detection
# =============================================================================================


def lfp_band_power(x, fs=250.0):
    """Welch spectrum of a local field potential and its power in the 10-30 Hz band."""
    f, P = sig.welch(x, fs=fs, nperseg=16)
    band = (f >= 10) & (f <= 30)
    return np.trapezoid(P[band], f[band])


def phase_locking(x, spike_idx):
    """Spike-field phase locking: the Hilbert phase at the spikes, mean resultant length."""
    phase = np.angle(sig.hilbert(x))
    return np.abs(np.mean(np.exp(1j * phase[spike_idx])))


def spike_field_coherence(x, y):
    return sig.coherence(x, y, nperseg=16)[1]


def test_lfp_spectra_and_phase_locking():
    rng = np.random.default_rng(30)
    x = np.sin(2 * np.pi * 20 * np.arange(64) / 250.0) + 0.5 * rng.standard_normal(64)
    want = lfp_band_power(x)
    jf = npfunc.jit(lfp_band_power)
    assert_same(jf(x), want, rtol=1e-12)
    assert_same(jf(2 * x), lfp_band_power(2 * x), rtol=1e-12)
    assert_deriv(npfunc.grad(lfp_band_power)(x), fd(lfp_band_power, x))
    xs = rng.standard_normal((2, 64))
    assert_same(npfunc.vmap(lfp_band_power)(xs), _stack([lfp_band_power(z) for z in xs]), rtol=1e-12)
    x32 = x.astype(np.float32)
    assert_same(npfunc.jit(lfp_band_power)(x32), lfp_band_power(x32), rtol=1e-5)
    spikes = np.array([3, 17, 30, 44, 58])
    assert_same(npfunc.jit(phase_locking)(x, spikes), phase_locking(x, spikes), rtol=1e-12)
    assert_deriv(npfunc.grad(phase_locking)(x, spikes), fd(lambda z: phase_locking(z, spikes), x))


def test_coherence_refusal_names_csd_twin_which_works():
    rng = np.random.default_rng(31)
    x = rng.standard_normal(64)
    y = x[::-1] + rng.standard_normal(64)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"npfunc.scipy.signal.csd"):
        npfunc.jit(spike_field_coherence)(x, y)
    import npfunc.scipy.signal as nsig

    def coherence_by_csd(x, y):   # the advice: the cross-spectrum by npfunc's twin, the rest as SciPy
        _, Pxy = nsig.csd(x, y, nperseg=16)
        _, Pxx = sig.welch(x, nperseg=16)
        _, Pyy = sig.welch(y, nperseg=16)
        return np.abs(Pxy) ** 2 / (Pxx * Pyy)

    want = spike_field_coherence(x, y)
    assert_same(npfunc.jit(coherence_by_csd)(x, y), want, rtol=1e-10)
    assert_deriv(npfunc.jacrev(coherence_by_csd)(x, y), fd(lambda z: spike_field_coherence(z, y), x))


def peak_spike_heights(v, th=1.0):
    """Detect spikes as peaks above threshold and sum their heights."""
    peaks, props = sig.find_peaks(v, height=th)
    return props["peak_heights"].sum()


def test_find_peaks_spike_detection_under_grad():
    """find_peaks runs Cython on the trace's memory: refused (it raised a raw TypeError), naming
    the fix, which works: the peaks of the plain trace, the heights gathered from the traced one."""
    v = np.random.default_rng(32).standard_normal(40)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"find_peaks.*stop_gradient.*v\[i\]"):
        npfunc.grad(peak_spike_heights)(v)
    fixed = lambda v: v[sig.find_peaks(npfunc.stop_gradient(v), height=1.0)[0]].sum()  # noqa: E731
    assert fixed(v) == peak_spike_heights(v, 1.0)
    peaks = sig.find_peaks(v, height=1.0)[0]
    assert_same(npfunc.grad(fixed)(v), np.isin(np.arange(40), peaks).astype(float))


def conduction_delay_spread(x):
    """Square roots of signed quantities by NumPy's complex-valued ``np.emath`` functions:
    the spread of complex delays sqrt(x) and the complex exponent x ** 0.5."""
    return np.abs(np.emath.sqrt(x)).sum() + np.abs(np.emath.power(x, 0.5)).sum()


def test_emath_square_roots_of_signed_quantities():
    """np.emath runs on traced values: complex where an entry is negative, as NumPy; jit,
    which records without values, refuses (NumPy's code branches on them)."""
    x = np.array([-1.0, 4.0])
    assert_deriv(npfunc.grad(conduction_delay_spread)(x), fd(conduction_delay_spread, x))
    xs = np.array([[-1.0, 4.0], [-2.0, 3.0]])
    np.testing.assert_allclose(npfunc.vmap(conduction_delay_spread)(xs), [conduction_delay_spread(v) for v in xs])
    with pytest.raises(npfunc.errors.ConcretizationError, match="np.emath"):
        npfunc.jit(conduction_delay_spread)(x)


def kernel_rate_on_grid(t, dt=0.5):
    """Kernel density of spike times on a time grid running to the last spike."""
    grid = np.arange(0.0, t.max(), dt)
    return np.exp(-(grid[:, None] - t[None, :]) ** 2).sum(axis=1)


def kernel_rate_on_grid_stopped(t, dt=0.5):
    grid = np.arange(0.0, npfunc.stop_gradient(t.max()), dt)
    return np.exp(-(grid[:, None] - t[None, :]) ** 2).sum(axis=1)


def test_time_grid_to_last_spike_under_grad_with_stop_gradient():
    t = np.sort(np.random.default_rng(33).random(6)) * 10
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"stop_gradient"):
        npfunc.jacrev(kernel_rate_on_grid)(t)
    assert_same(kernel_rate_on_grid_stopped(t), kernel_rate_on_grid(t))
    assert_deriv(npfunc.jacrev(kernel_rate_on_grid_stopped)(t), fd(kernel_rate_on_grid, t))
    assert_deriv(npfunc.jacfwd(kernel_rate_on_grid_stopped)(t), fd(kernel_rate_on_grid, t))


def test_time_grid_to_last_spike_refusal_under_jit_names_a_fix():
    t = np.sort(np.random.default_rng(33).random(6)) * 10
    with pytest.raises(npfunc.errors.NpfuncError) as info:
        npfunc.jit(kernel_rate_on_grid)(t)
    assert "np.dot" not in str(info.value) and ("static" in str(info.value) or "linspace" in str(info.value))


def autapse_step(r, drive, w=0.5):
    """One update of units driven by an input; called with drive=r for units that excite
    themselves (an autapse), so the in-place update of r is seen through drive."""
    r += w * drive
    return np.tanh(r + drive)


def test_autapse_aliased_arguments_jit_and_refusals():
    r0 = np.array([0.2, 0.4, 0.6])
    a = r0.copy()
    want = autapse_step(a, a)
    b = r0.copy()
    assert_same(npfunc.jit(autapse_step)(b, b), want)
    assert_same(b, a)
    c = r0.copy()
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="shares memory with another argument"):
        npfunc.vjp(autapse_step, c, c)


def test_autapse_aliased_arguments_under_vmap_and_grad():
    r0 = np.array([0.2, 0.4, 0.6])
    X = np.stack([r0, 2 * r0])
    Y = X.copy()
    want = _stack([autapse_step(Y[k], Y[k]) for k in range(2)])
    try:
        got = npfunc.vmap(autapse_step)(X, X)
    except npfunc.errors.UnsupportedOperationError:
        pass
    else:
        assert_same(got, want)
    a, b = r0.copy(), r0.copy()
    want = autapse_step(a, a).sum()
    try:
        _, val = npfunc.grad_and_value(lambda r, d: autapse_step(r, d).sum())(b, b)
    except npfunc.errors.UnsupportedOperationError:
        pass
    else:
        assert_same(val, want)


def test_hmm_second_derivatives_by_composition():
    pi, A, B, obs = _hmm(K=2, M=3, T=5, seed=34)
    lp, lA, lB = np.log(pi), np.log(A), np.log(B)
    f = lambda la: hmm_forward_numpy_only(lp, la, lB, obs)
    H = npfunc.hessian(f)(lA)
    assert_deriv(H, fd(npfunc.grad(f), lA), atol=1e-7)
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(lA), H, rtol=1e-10, atol=1e-12)
    assert_deriv(npfunc.jacrev(npfunc.jacfwd(f))(lA), H, rtol=1e-10, atol=1e-12)
    assert_deriv(npfunc.jit(npfunc.hessian(f))(lA), H, rtol=1e-10, atol=1e-12)
    # per-sequence gradients by vmap(grad), emission table made like the observations
    seqs = np.random.default_rng(35).integers(0, 3, (3, 5))
    per_seq = lambda la, o: hmm_forward_numpy_only(lp, la, np.asarray(lB, like=o), o)
    gs = npfunc.vmap(npfunc.grad(per_seq), in_dims=(None, 0))(lA, seqs)
    for k in range(3):
        assert_deriv(gs[k], fd(lambda la: hmm_forward_numpy_only(lp, la, lB, seqs[k]), lA))
