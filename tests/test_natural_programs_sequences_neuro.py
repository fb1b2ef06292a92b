"""Natural programs from sequence models, bioinformatics and computational
neuroscience, written first as plain NumPy/SciPy, then run under npfunc's
transforms and compared with the plain program (values, dtypes, Python types,
shapes, side effects) and with five-point differences (derivatives).

Programs:

* sequence models: HMM forward pass in log space (a preallocated table, a
  list of rows, NumPy's own ``np.logaddexp.reduce``), forward-backward
  posteriors, Rabiner's scaled forward pass, Baum-Welch's E/M step, Viterbi
  with back-pointers, a Gaussian-emission HMM with scipy.stats, CTC loss, an
  Elman RNN, an LSTM cell, a GRU over a sequence;
* alignment: soft-DTW, soft Needleman-Wunsch, a first-order Markov chain's
  log-likelihood from transition counts (np.add.at, np.bincount);
* bioinformatics: one-hot encoding, position weight matrices from counts,
  PWM scanning with sliding windows, information content and logo heights,
  GC content, Jukes-Cantor distance, Felsenstein pruning with scipy.linalg.expm;
* neurons: leaky integrate-and-fire (Python threshold and np.where reset, and
  the subthreshold membrane), exponential integrate-and-fire, Izhikevich,
  Hodgkin-Huxley by Euler steps, a cable of compartments (solve_banded);
* networks: a firing-rate network (also updating its state in place), a
  Wilson-Cowan pair, Oja's rule and pair-based STDP updating weights in place,
  temporal-difference learning, a spiking layer with a surrogate gradient
  (custom_vjp);
* spike-train statistics: Poisson GLMs (a Toeplitz design matrix, and
  stimulus/history kernels by np.convolve), receptive-field and LN models,
  spike-triggered average, smoothed rates, cross-correlograms, PSTHs, binned
  counts, ISI CV and a gamma ISI likelihood, threshold-crossing counts;
* population codes: von Mises and Gaussian tuning, population vector, Poisson
  maximum-likelihood decoding (grid and gradient), Fisher information by
  jacfwd, divisive normalisation, drift-diffusion accuracy.
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
    """The same with the table made like the transition matrix (the refusal's fix)."""
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


def test_hmm_forward_table_into_plain_zeros_refuses_and_like_fix_works():
    pi, A, B, obs = _hmm()
    args = (np.log(pi), np.log(A), np.log(B), obs)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"grad.*np.zeros\(shape, like=x\)"):
        npfunc.grad(hmm_forward_table, argnums=1)(*args)
    want = hmm_forward_table(*args)
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


def test_viterbi_score_gradient_is_path_indicator():
    pi, A, B, obs = _hmm(T=7, seed=6)
    args = (np.log(pi), np.log(A), np.log(B), obs)
    path, score = viterbi(*args)
    g = npfunc.grad(lambda la: viterbi(args[0], la, args[2], obs)[1])(args[1])
    counts = np.zeros((3, 3))
    np.add.at(counts, (path[:-1], path[1:]), 1.0)
    assert_same(g, counts)
    assert_deriv(g, fd(lambda la: viterbi(args[0], la, args[2], obs)[1], args[1]))
    # under jit the plain back-pointer table and int() refuse; the like= spelling works
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*like=x"):
        npfunc.jit(viterbi)(*args)
    jv = npfunc.jit(viterbi_like)
    for la in (args[1], np.log(np.random.default_rng(7).dirichlet(np.ones(3), 3))):
        p2, s2 = jv(args[0], la, args[2], obs)
        pw, sw = viterbi(args[0], la, args[2], obs)
        assert_same(p2, pw)
        assert_same(s2, sw)
    As = np.log(np.random.default_rng(8).dirichlet(np.ones(3), (4, 3)))
    paths, scores = npfunc.vmap(viterbi_like, in_dims=(None, 0, None, None))(args[0], As, args[2], obs)
    want = [viterbi(args[0], a, args[2], obs) for a in As]
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
