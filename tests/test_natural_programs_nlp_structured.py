"""Natural programs from NLP and structured prediction, written first as plain NumPy/SciPy
and then run under npfunc's transforms (jit with a replay, vmap against a Python loop,
grad, jacrev, jacfwd, hessian, jvp, vjp and their compositions, each called several times
on the same and on new inputs) against the plain program (type, dtype, shape, value, side
effects) and against five-point differences.

Programs:
  * hidden Markov models: the forward algorithm in log space (scipy.special.logsumexp in a
    loop over a preallocated table, plain np.zeros and made with like=), Rabiner's scaled forward pass in
    float32, forward-backward posteriors returned as a dict, Viterbi with back-pointers
    (argmax parts non-differentiable, the best score differentiable), a Baum-Welch E-step's
    expected transition counts;
  * linear-chain CRFs: log-likelihood of a gold tag sequence (fancy-indexed gold score, log
    partition by a forward loop), marginals as the gradient of the log partition, the
    structured hinge loss with loss-augmented Viterbi, a semi-Markov segment score by cumsum;
  * parsing: the inside algorithm of a tiny PCFG in CNF (chart dict, logaddexp), the
    matrix-tree theorem for non-projective dependency parsing (slogdet of a Laplacian);
  * n-gram language models: bigram counts by np.add.at with add-k smoothing (grad in k),
    interpolated trigram with softmax-parametrised weights, absolute discounting, perplexity;
    a Zipf fit by np.polyfit;
  * word embeddings: skip-gram negative sampling with np.log(expit), CBOW, GloVe's weighted
    least squares, hierarchical softmax along a Huffman path, an embedding bag with a
    hand-written gradient by np.add.at, cosine analogies with an argmax, PPMI of a
    co-occurrence matrix;
  * classifiers: a softmax classifier over a vocabulary with one-hot labels by np.eye
    indexing (per-example gradients by vmap(grad)), label smoothing, bag-of-words logistic
    regression (np.bincount features, np.logaddexp), multinomial naive Bayes with Laplace
    smoothing (grad in alpha), temperature scaling (grad(grad) in T), focal loss, InfoNCE;
  * attention over tokens: masked scaled dot-product attention (np.where with -inf), sinusoidal
    positional encodings and layer norm, an Elman RNN language model, a Gumbel-softmax with
    fixed noise, sparsemax (sort, cumsum);
  * dynamic programming: soft edit distance with a soft-min (preallocated table), plain
    Levenshtein distance in integers, beam search scores with np.argsort selections;
  * topic models: LDA ELBO pieces (digamma, gammaln), Dirichlet-multinomial log-likelihood
    (grad(grad) in a 0-d concentration), a KL between Dirichlets, NMF's KL objective with
    multiplicative updates in place, entropy and KL by scipy.special.entr/rel_entr;
  * more: Baum-Welch expected transition counts (np.logaddexp.reduce, np.empty(like=)), a
    straight-through one-hot estimator (custom_vjp), a text CNN (sliding_window_view, einsum,
    max-over-time), TF-IDF cosines, expected BLEU for minimum-risk training (np.unique
    n-gram counts), a sparse SGD step in place (np.subtract.at), a float32 skip-gram objective
    with scipy.special.log_expit, logistic regression fitted by scipy.optimize.minimize with
    npfunc's gradient (and the implicit sensitivity of the fit), a CSR document-term matrix,
    a GRU encoder with checkpointed steps, linearize and vmap(in_dims=1, out_dims=1).

Findings fixed here (each with its regression test): np.add.at into a plain table with traced
token indices (jit or vmap over token ids) was refused with generic advice that named no working
fix (then np.zeros(shape, like=tokens); now the plain np.zeros table made while the transform
runs takes the traced indices and values, npfunc.core.pending); a SciPy sparse matrix beside a traced value in a NumPy
function or ufunc (np.dot(X, w), np.matmul, np.add, np.stack) raised raw ValueError/TypeError,
and X * w / X.multiply(w) were refused with advice about np.ma masks (all now name the sparse
matrix and H.toarray()); jit recorded the draws of a generator made inside the function from
the operating system's entropy (np.random.default_rng() with no seed) and replayed them on every
call, where each plain call draws new numbers: a silent difference, now refused (a seeded
generator is replayed as the plain function repeats it).  Refusals kept (each tested with its fix): plain tables passed in
and indexed by traced ids (lB[:, obs[t]] under vmap: np.asarray(table, like=ids)), np.nonzero
under jit, Python int()/min() of traced values under jit.  No longer refused (the plain program
is checked against NumPy, beside the like= fix it used to need): preallocated buffers made by
np.zeros & co. inside the function (the HMM table, soft counts, np.add.at counts, the soft edit
distance table) and np.eye(K)[y] with traced labels.
Documented behaviour met: jit's contraction pass reorders sums (last-bit differences from
eager, compared to rounding); reverse mode's NaN through log's infinite derivative at a zero
count (docs/conventions.md), fixed by the double where.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats

import npfunc
from natural_checks import assert_deriv, assert_same, fd


RNG = np.random.default_rng(20261207)


def assert_jit_replays(f, *argsets, rtol=1e-12, **jit_kwargs):
    """One jit object called on each argument set (the first records, the others replay),
    every result the plain program's (trees of results compared leaf by leaf)."""
    jf = npfunc.jit(f, **jit_kwargs)
    for args in argsets:
        _same_tree(jf(*args), f(*args), rtol)


def _same_tree(got, want, rtol=1e-12):
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            _same_tree(got[k], want[k], rtol)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _same_tree(g, w, rtol)
    else:
        assert_same(got, want, rtol=rtol)


def repeat_same(fn, *args, n=5):
    """Call a transformed function n times on the same arguments: the cached paths the
    later calls take give the first call's values bit for bit."""
    first = fn(*args)
    for _ in range(n - 1):
        again = fn(*args)
        for a, b in zip(np.atleast_1d(_flat(first)), np.atleast_1d(_flat(again))):
            np.testing.assert_array_equal(a, b)
    return first


def repeat_close(fn, want, *args, n=5, rtol=1e-12, atol=1e-14):
    """A jit-compiled function called n times: its optimiser may reorder sums (documented in
    npfunc.compiler.contract), so each call is compared with ``want`` to rounding."""
    for _ in range(n):
        for a, b in zip(np.atleast_1d(_flat(fn(*args))), np.atleast_1d(_flat(want))):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _flat(tree):
    if isinstance(tree, dict):
        return [_flat(tree[k]) for k in sorted(tree)]
    if isinstance(tree, (tuple, list)):
        return [np.asarray(_flat(t)) for t in tree]
    return np.asarray(tree)


def scalar_suite(f, x, x_new, *, rtol=1e-6, atol=1e-8, hess_rtol=1e-5, second=True, batch=None):
    """The derivative transforms and their compositions for a real scalar program of one
    array, each called several times on x and on x_new, against five-point differences."""
    for v in (x, x_new, x):
        want = fd(f, v)
        g = repeat_same(npfunc.grad(f), v)
        assert_deriv(g, want, rtol=rtol, atol=atol)
        assert_deriv(repeat_same(npfunc.jacrev(f), v), want, rtol=rtol, atol=atol)
        assert_deriv(repeat_same(npfunc.jacfwd(f), v), want, rtol=rtol, atol=atol)
        out, vjp_fn = npfunc.vjp(f, v)
        assert_same(out, f(v))
        assert_deriv(vjp_fn(np.ones_like(np.asarray(out)))[0], want, rtol=rtol, atol=atol)
        t = np.cos(np.arange(v.size, dtype=float)).reshape(v.shape)
        o2, dir_ = npfunc.jvp(f, (v,), (t,))
        assert_same(o2, f(v))
        np.testing.assert_allclose(dir_, np.sum(want * t), rtol=rtol, atol=atol)
        repeat_close(npfunc.jit(npfunc.grad(f)), g, v)
        if second:
            H = repeat_same(npfunc.hessian(f), v)
            Hfd = fd(npfunc.grad(f), v)
            assert_deriv(H, Hfd, rtol=hess_rtol, atol=1e-7)
            hvp = lambda vv: npfunc.jvp(npfunc.grad(f), (vv,), (t,))[1]
            assert_deriv(repeat_same(hvp, v), np.tensordot(H, t, axes=t.ndim), rtol=1e-10, atol=1e-12)
    if batch is not None:
        per = np.stack([npfunc.grad(f)(b) for b in batch])
        assert_deriv(repeat_same(npfunc.vmap(npfunc.grad(f)), batch), per, rtol=1e-12, atol=1e-14)
        repeat_close(npfunc.jit(npfunc.vmap(npfunc.grad(f))), per, batch)
        vals = np.stack([f(b) for b in batch])
        assert_same(npfunc.vmap(f)(batch), vals)


def scalar1_suite(f, s, s_new):
    """A program of one 0-d variable: grad and grad(grad), several calls each."""
    for v in (s, s_new, s):
        d1 = fd(lambda a: f(float(a[0])), np.array([v]))[0]
        assert_deriv(repeat_same(npfunc.grad(f), v), d1)
        d2 = fd(lambda a: npfunc.grad(f)(float(a[0])), np.array([v]))[0]
        assert_deriv(repeat_same(npfunc.grad(npfunc.grad(f)), v), d2, rtol=1e-5)
        repeat_close(npfunc.jit(npfunc.grad(f)), npfunc.grad(f)(v), v)


def log_normalise(a, axis=-1):
    return a - sps.logsumexp(a, axis=axis, keepdims=True)


# ---- 1. HMM forward algorithm in log space ---------------------------------------------------


def hmm_forward(log_pi, log_A, log_B, obs, like=None):
    """log p(obs) by the forward algorithm; alpha in a preallocated table."""
    T, K = len(obs), log_pi.shape[0]
    alpha = np.zeros((T, K), like=like)
    alpha[0] = log_pi + log_B[:, obs[0]]
    for t in range(1, T):
        alpha[t] = sps.logsumexp(alpha[t - 1][:, None] + log_A, axis=0) + log_B[:, obs[t]]
    return sps.logsumexp(alpha[-1])


def _hmm_params(K=3, V=4, seed=0):
    r = np.random.default_rng(seed)
    return (log_normalise(r.standard_normal(K)), log_normalise(r.standard_normal((K, K))),
            log_normalise(r.standard_normal((K, V))))


OBS = np.array([0, 2, 1, 3, 3, 0])


def test_hmm_forward_plain_buffer_matches_like_fix():
    """alpha = np.zeros((T, K)) written with traced rows (once refused, naming like=): the plain
    program matches NumPy and differences under every transform, and the like= fix agrees."""
    lp, lA, lB = _hmm_params()
    lp2, lA2, lB2 = _hmm_params(seed=1)
    assert_jit_replays(lambda a, b, c: hmm_forward(a, b, c, OBS), (lp, lA, lB), (lp2, lA2, lB2))
    f = lambda lA_: hmm_forward(lp, lA_, lB, OBS)
    scalar_suite(f, lA, lA2, batch=np.stack([lA, lA2, lA + 0.1]))
    g = npfunc.grad(lambda a, b, c: hmm_forward(a, b, c, OBS), argnums=(0, 1, 2))(lp, lA, lB)
    g_like = npfunc.grad(lambda a, b, c: hmm_forward(a, b, c, OBS, like=b), argnums=(0, 1, 2))(lp, lA, lB)
    for got, want in zip(g, g_like):
        assert_deriv(got, want, rtol=1e-14, atol=0)
    assert_deriv(g[2], fd(lambda c: hmm_forward(lp, lA, c, OBS), lB))


def test_hmm_forward_values_and_derivatives():
    lp, lA, lB = _hmm_params()
    lp2, lA2, lB2 = _hmm_params(seed=1)
    f = lambda lA_, lp=lp, lB=lB: hmm_forward(lp, lA_, lB, OBS, like=lA_)
    assert_jit_replays(lambda a, b, c: hmm_forward(a, b, c, OBS, like=b), (lp, lA, lB), (lp2, lA2, lB2))
    want = hmm_forward(lp, lA, lB, OBS)
    assert type(want) is np.float64
    assert_same(npfunc.jit(f)(lA), want)
    scalar_suite(f, lA, lA2, batch=np.stack([lA, lA2, lA + 0.1]))
    # the emissions, by all three arguments at once
    g = npfunc.grad(lambda a, b, c: hmm_forward(a, b, c, OBS, like=b), argnums=(0, 1, 2))(lp, lA, lB)
    assert_deriv(g[2], fd(lambda c: hmm_forward(lp, lA, c, OBS), lB))
    assert_deriv(g[0], fd(lambda a: hmm_forward(a, lA, lB, OBS), lp))


def test_hmm_forward_vmap_over_sequences_in_dims():
    lp, lA, lB = _hmm_params()
    seqs = np.array([[0, 2, 1, 3, 3, 0], [1, 1, 2, 0, 3, 2], [3, 0, 0, 1, 2, 2]])

    def loglik(obs, lB, like=None):
        if like is not None:
            lB = np.asarray(lB, like=like)
        alpha = lp + lB[:, obs[0]]
        for t in range(1, len(obs)):
            alpha = sps.logsumexp(alpha[:, None] + lA, axis=0) + lB[:, obs[t]]
        return sps.logsumexp(alpha)

    want = np.stack([loglik(s, lB) for s in seqs])
    # a plain table indexed by batched positions: refused, naming like=
    with pytest.raises(npfunc.errors.NpfuncError, match=r"like=i"):
        npfunc.vmap(loglik, in_dims=(0, None))(seqs, lB)
    fixed = lambda obs, lB: loglik(obs, lB, like=obs)
    assert_same(npfunc.vmap(fixed, in_dims=(0, None))(seqs, lB), want)
    # sequences along axis 1
    assert_same(npfunc.vmap(fixed, in_dims=(1, None))(seqs.T.copy(), lB), want)
    G = npfunc.vmap(npfunc.grad(fixed, argnums=1), in_dims=(0, None))(seqs, lB)
    for s, g in zip(seqs, G):
        assert_deriv(g, fd(lambda c: loglik(s, c), lB))


# ---- 2. scaled forward pass in float32 ---------------------------------------------------------


def scaled_forward(pi, A, B, obs):
    """Rabiner's scaled forward pass: log p(obs) = sum log c_t, in the dtype of the tables."""
    alpha = pi * B[:, obs[0]]
    c = alpha.sum()
    alpha = alpha / c
    logp = np.log(c)
    for o in obs[1:]:
        alpha = (alpha @ A) * B[:, o]
        c = alpha.sum()
        alpha /= c
        logp += np.log(c)
    return logp


def test_scaled_forward_float32_types_and_grad():
    lp, lA, lB = _hmm_params()
    pi, A, B = (np.exp(a).astype(np.float32) for a in (lp, lA, lB))
    want = scaled_forward(pi, A, B, OBS)
    assert type(want) is np.float32
    assert_jit_replays(scaled_forward, (pi, A, B, OBS), (pi[::-1].copy(), A.T.copy(), B, OBS), rtol=1e-6)
    g = npfunc.grad(scaled_forward, argnums=1)(pi, A, B, OBS)
    assert g.dtype == np.float32
    A64 = A.astype(float)
    assert_deriv(g, fd(lambda a: scaled_forward(pi.astype(float), a, B.astype(float), OBS), A64), rtol=2e-3)
    # float64 tables agree with the log-space forward
    np.testing.assert_allclose(scaled_forward(np.exp(lp), np.exp(lA), np.exp(lB), OBS), hmm_forward(lp, lA, lB, OBS))
    f = lambda a: scaled_forward(np.exp(lp), a, np.exp(lB), OBS)
    scalar_suite(f, np.exp(lA), np.exp(_hmm_params(seed=3)[1]))


# ---- 3. forward-backward posteriors as a dict -----------------------------------------------


def forward_backward(log_pi, log_A, log_B, obs):
    T, K = len(obs), len(log_pi)
    fwd, bwd = [], [None] * T
    a = log_pi + log_B[:, obs[0]]
    fwd.append(a)
    for t in range(1, T):
        a = sps.logsumexp(a[:, None] + log_A, axis=0) + log_B[:, obs[t]]
        fwd.append(a)
    b = np.zeros(K)
    bwd[T - 1] = b
    for t in range(T - 2, -1, -1):
        b = sps.logsumexp(log_A + (log_B[:, obs[t + 1]] + b)[None, :], axis=1)
        bwd[t] = b
    F, Bk = np.array(fwd), np.array(bwd)
    logZ = sps.logsumexp(F[-1])
    gamma = np.exp(F + Bk - logZ)
    return {"logZ": logZ, "gamma": gamma, "map_states": np.argmax(gamma, axis=1)}


def test_forward_backward_dict_jit_vmap_and_posterior_as_gradient():
    lp, lA, lB = _hmm_params()
    lp2, lA2, lB2 = _hmm_params(seed=5)
    assert_jit_replays(lambda a, b, c: forward_backward(a, b, c, OBS), (lp, lA, lB), (lp2, lA2, lB2))
    out = forward_backward(lp, lA, lB, OBS)
    np.testing.assert_allclose(out["gamma"].sum(1), 1.0)
    # posteriors are the gradient of logZ in the per-position emission scores
    def logZ_of_scores(S):
        return forward_backward(lp, lA, S, np.arange(len(OBS)))["logZ"]
    S = lB[:, OBS]
    g = npfunc.grad(logZ_of_scores)(S)
    np.testing.assert_allclose(g.T, out["gamma"], rtol=1e-12, atol=1e-15)
    # vmap over a batch of emission tables
    Bs = np.stack([lB, lB2, lB * 1.1])
    got = npfunc.vmap(lambda c: forward_backward(lp, lA, c, OBS))(Bs)
    loop = [forward_backward(lp, lA, c, OBS) for c in Bs]
    for k in ("logZ", "gamma", "map_states"):
        assert_same(got[k], np.stack([o[k] for o in loop]))
    J = npfunc.jacrev(lambda c: forward_backward(lp, lA, c, OBS)["gamma"])(lB)
    assert_deriv(J, fd(lambda c: forward_backward(lp, lA, c, OBS)["gamma"], lB))


# ---- 4. Viterbi ---------------------------------------------------------------------------------


def viterbi(log_pi, log_A, log_B, obs):
    """Best path (back-pointers, argmax: not differentiable) and its score (max: differentiable)."""
    T, K = len(obs), len(log_pi)
    delta = log_pi + log_B[:, obs[0]]
    back = np.zeros((T, K), dtype=np.int64)
    for t in range(1, T):
        scores = delta[:, None] + log_A
        back[t] = np.argmax(scores, axis=0)
        delta = np.max(scores, axis=0) + log_B[:, obs[t]]
    path = [int(np.argmax(delta))]
    for t in range(T - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path.reverse()
    return np.array(path), np.max(delta)


def path_score(log_pi, log_A, log_B, obs, path):
    s = log_pi[path[0]] + log_B[path[0], obs[0]]
    s = s + np.sum(log_A[path[:-1], path[1:]]) + np.sum(log_B[path[1:], obs[1:]])
    return s


def test_viterbi_score_grad_equals_path_indicator_and_jit_refusal():
    lp, lA, lB = _hmm_params()
    path, best = viterbi(lp, lA, lB, OBS)
    assert_same(path_score(lp, lA, lB, OBS, path), best)
    gpath, gbest = npfunc.grad(lambda a: viterbi(lp, a, lB, OBS)[1])(lA), None
    # the gradient of the best score is the count of each transition on the best path
    counts = np.zeros_like(lA)
    np.add.at(counts, (path[:-1], path[1:]), 1.0)
    np.testing.assert_array_equal(gpath, counts)
    assert_deriv(gpath, fd(lambda a: viterbi(lp, a, lB, OBS)[1], lA))
    # path values under grad's forward pass are the plain ones
    p2, s2 = npfunc.vjp(lambda a: viterbi(lp, a, lB, OBS), lA)[0]
    assert_same(p2, path)
    assert_same(s2, best)
    # int(traced argmax) is data-dependent Python: jit refuses, naming the fix
    with pytest.raises(npfunc.errors.ConcretizationError):
        npfunc.jit(viterbi)(lp, lA, lB, OBS)


def viterbi_vectorised(log_pi, log_A, log_B, obs):
    """The same with back-tracking by array indexing (no int()), jit-friendly."""
    T, K = len(obs), len(log_pi)
    delta = log_pi + log_B[:, obs[0]]
    backs = []
    for t in range(1, T):
        scores = delta[:, None] + log_A
        backs.append(np.argmax(scores, axis=0))
        delta = np.max(scores, axis=0) + log_B[:, obs[t]]
    last = np.argmax(delta)
    path = [last]
    for bp in reversed(backs):
        path.append(bp[path[-1]])
    return np.stack(path[::-1]), np.max(delta)


def test_viterbi_vectorised_jit_vmap():
    lp, lA, lB = _hmm_params()
    lp2, lA2, lB2 = _hmm_params(seed=9)
    want = viterbi(lp, lA, lB, OBS)
    got = viterbi_vectorised(lp, lA, lB, OBS)
    assert_same(got[0], want[0])
    assert_jit_replays(lambda a, b, c: viterbi_vectorised(a, b, c, OBS), (lp, lA, lB), (lp2, lA2, lB2))
    Bs = np.stack([lB, lB2, lB[:, ::-1].copy()])
    got = npfunc.vmap(lambda c: viterbi_vectorised(lp, lA, c, OBS))(Bs)
    loop = [viterbi_vectorised(lp, lA, c, OBS) for c in Bs]
    assert_same(got[0], np.stack([l[0] for l in loop]))
    assert_same(got[1], np.stack([l[1] for l in loop]))


# ---- 5. linear-chain CRF ---------------------------------------------------------------------


def crf_log_partition(unary, trans):
    alpha = unary[0]
    for t in range(1, unary.shape[0]):
        alpha = sps.logsumexp(alpha[:, None] + trans, axis=0) + unary[t]
    return sps.logsumexp(alpha)


def crf_loglik(unary, trans, tags):
    """log p(tags | x) for a linear-chain CRF: gold score minus log partition."""
    T = len(tags)
    gold = unary[np.arange(T), tags].sum() + trans[tags[:-1], tags[1:]].sum()
    return gold - crf_log_partition(unary, trans)


TAGS = np.array([0, 1, 1, 2, 0])


def test_crf_loglik_all_transforms():
    r = np.random.default_rng(3)
    U, W = r.standard_normal((5, 3)), r.standard_normal((3, 3))
    U2, W2 = r.standard_normal((5, 3)), r.standard_normal((3, 3))
    assert_jit_replays(crf_loglik, (U, W, TAGS), (U2, W2, TAGS[::-1].copy()))
    scalar_suite(lambda u: crf_loglik(u, W, TAGS), U, U2, batch=np.stack([U, U2]))
    scalar_suite(lambda w: crf_loglik(U, w, TAGS), W, W2)
    # probabilities of all 3**5 tag sequences sum to one
    import itertools
    tot = sum(np.exp(crf_loglik(U, W, np.array(s))) for s in itertools.product(range(3), repeat=5))
    np.testing.assert_allclose(tot, 1.0)


def test_crf_marginals_are_gradient_of_log_partition_and_vmap_over_sentences():
    r = np.random.default_rng(4)
    U, W = r.standard_normal((4, 3)), r.standard_normal((3, 3))
    marg = npfunc.grad(crf_log_partition)(U, W)
    np.testing.assert_allclose(marg.sum(axis=1), 1.0)
    # brute force marginals
    import itertools
    want = np.zeros_like(U)
    Z = np.exp(crf_log_partition(U, W))
    for s in itertools.product(range(3), repeat=4):
        s = np.array(s)
        p = np.exp(U[np.arange(4), s].sum() + W[s[:-1], s[1:]].sum()) / Z
        want[np.arange(4), s] += p
    np.testing.assert_allclose(marg, want, rtol=1e-12)
    # a batch of sentences sharing the transition matrix (in_dims None), tags batched
    Us = r.standard_normal((3, 5, 3))
    tags = np.array([[0, 1, 1, 2, 0], [2, 2, 1, 0, 0], [1, 0, 2, 1, 2]])
    f = lambda u, w, t: crf_loglik(u, w, np.asarray(t))
    want = np.stack([crf_loglik(u, W, t) for u, t in zip(Us, tags)])
    with pytest.raises(npfunc.errors.NpfuncError, match="like="):
        npfunc.vmap(crf_loglik, in_dims=(0, None, 0))(Us, W, tags)
    fixed = lambda u, w, t: crf_loglik(u, np.asarray(w, like=u), t)
    assert_same(npfunc.vmap(fixed, in_dims=(0, None, 0))(Us, W, tags), want)
    # per-sentence gradients of the shared transitions
    G = npfunc.vmap(npfunc.grad(fixed, argnums=1), in_dims=(0, None, 0))(Us, W, tags)
    for u, t, g in zip(Us, tags, G):
        assert_deriv(g, fd(lambda w: crf_loglik(u, w, t), W))


def structured_hinge(unary, trans, tags):
    """max over sequences of score + Hamming loss, minus the gold score (loss-augmented Viterbi)."""
    T, K = unary.shape
    aug = unary + (np.arange(K)[None, :] != tags[:, None])
    delta = aug[0]
    for t in range(1, T):
        delta = np.max(delta[:, None] + trans, axis=0) + aug[t]
    gold = unary[np.arange(T), tags].sum() + trans[tags[:-1], tags[1:]].sum()
    return np.max(delta) - gold


def test_structured_hinge_subgradient_jit_vmap():
    r = np.random.default_rng(5)
    U, W = r.standard_normal((5, 3)), r.standard_normal((3, 3))
    U2 = r.standard_normal((5, 3))
    assert_jit_replays(structured_hinge, (U, W, TAGS), (U2, W, TAGS))
    g = npfunc.grad(structured_hinge)(U, W, TAGS)
    assert_deriv(g, fd(lambda u: structured_hinge(u, W, TAGS), U))
    Us = np.stack([U, U2, -U])
    assert_same(npfunc.vmap(structured_hinge, in_dims=(0, None, None))(Us, W, TAGS),
                np.stack([structured_hinge(u, W, TAGS) for u in Us]))
    assert_deriv(npfunc.jacfwd(structured_hinge, argnums=1)(U, W, TAGS), fd(lambda w: structured_hinge(U, w, TAGS), W))


def semi_markov_score(x, seg_starts, seg_labels, w):
    """Sum of segment scores, each the mean of a feature run (cumsum) times a label weight."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    ends = np.append(seg_starts[1:], len(x))
    means = (c[ends] - c[seg_starts]) / (ends - seg_starts)
    return np.sum(w[seg_labels] * means) - 0.5 * np.sum(w ** 2)


def test_semi_markov_segment_score():
    x = np.linspace(-1, 2, 9) ** 2
    starts, labels = np.array([0, 2, 5]), np.array([1, 0, 1])
    w = np.array([0.3, -0.7])
    assert_jit_replays(semi_markov_score, (x, starts, labels, w), (x[::-1].copy(), starts, labels, w * 2))
    scalar_suite(lambda v: semi_markov_score(v, starts, labels, w), x, x + 0.5)
    scalar_suite(lambda v: semi_markov_score(x, starts, labels, v), w, -w)


# ---- 6. parsing: inside algorithm and the matrix-tree theorem ---------------------------------------


def inside_logZ(unary, binary):
    """Inside algorithm (CKY with logsumexp) for a PCFG in CNF: unary (n, N) scores of each
    nonterminal over each word, binary (N, N, N) rule scores A -> B C; a dict chart."""
    n, N = unary.shape
    chart = {}
    for i in range(n):
        chart[i, i + 1] = unary[i]
    for span in range(2, n + 1):
        for i in range(n - span + 1):
            j = i + span
            acc = None
            for k in range(i + 1, j):
                s = binary + chart[i, k][None, :, None] + chart[k, j][None, None, :]
                s = sps.logsumexp(s, axis=(1, 2))
                acc = s if acc is None else np.logaddexp(acc, s)
            chart[i, j] = acc
    return chart[0, n][0]


def test_inside_algorithm_pcfg():
    r = np.random.default_rng(6)
    U, Bn = r.standard_normal((4, 2)), r.standard_normal((2, 2, 2)) - 1.0
    U2, B2 = r.standard_normal((4, 2)), r.standard_normal((2, 2, 2)) - 1.0
    assert_jit_replays(inside_logZ, (U, Bn), (U2, B2))
    scalar_suite(lambda b: inside_logZ(U, b), Bn, B2)
    # the expected count of each rule is the gradient; their sum is the number of binary nodes
    counts = npfunc.grad(inside_logZ, argnums=1)(U, Bn)
    np.testing.assert_allclose(counts.sum(), 3.0)
    assert_same(npfunc.vmap(inside_logZ, in_dims=(None, 0))(U, np.stack([Bn, B2])),
                np.stack([inside_logZ(U, Bn), inside_logZ(U, B2)]))


def matrix_tree_logZ(theta, root):
    """Koo et al. (2007): log partition of non-projective dependency trees by the
    matrix-tree theorem; theta[h, m] head->modifier scores, root[m] root scores."""
    n = theta.shape[0]
    A = np.exp(theta) * (1 - np.eye(n))
    L = np.diag(A.sum(axis=0)) - A
    L[0, :] = np.exp(root)
    sign, logdet = np.linalg.slogdet(L)
    return logdet


def test_matrix_tree_theorem_marginals():
    r = np.random.default_rng(7)
    th, rt = r.standard_normal((4, 4)), r.standard_normal(4)
    th2, rt2 = r.standard_normal((4, 4)), r.standard_normal(4)
    assert_jit_replays(matrix_tree_logZ, (th, rt), (th2, rt2))
    scalar_suite(lambda t: matrix_tree_logZ(t, rt), th, th2, batch=np.stack([th, th2]))
    # edge marginals: each modifier has exactly one head (root included)
    g_th, g_rt = npfunc.grad(matrix_tree_logZ, argnums=(0, 1))(th, rt)
    np.testing.assert_allclose(g_th.sum(axis=0) + g_rt, 1.0)
    np.testing.assert_allclose(g_rt.sum(), 1.0)


# ---- 7. n-gram language models -----------------------------------------------------------------


CORPUS = np.array([0, 1, 2, 1, 0, 3, 1, 2, 2, 4, 0, 1, 3, 3, 1, 0, 2, 1])
V = 5


def bigram_counts(tokens, V, like=None):
    C = np.zeros((V, V), like=like)
    np.add.at(C, (tokens[:-1], tokens[1:]), 1.0)
    return C


def add_k_logprob(k, train, test, V=V):
    """Log-probability of a test sequence under an add-k smoothed bigram model."""
    C = bigram_counts(train, V)
    P = (C + k) / (C.sum(axis=1, keepdims=True) + k * V)
    return np.sum(np.log(P[test[:-1], test[1:]]))


def test_add_k_smoothing_grad_in_k():
    test = np.array([0, 1, 2, 4, 4, 3])
    f = lambda k: add_k_logprob(k, CORPUS, test)
    want = f(0.5)
    assert type(want) is np.float64
    assert_jit_replays(f, (0.5,), (1.5,), (np.float64(0.1),))
    scalar1_suite(f, 0.5, 0.05)
    # best k by Newton on grad/grad(grad)
    k = 0.5
    for _ in range(8):
        k = k - npfunc.grad(f)(k) / npfunc.grad(npfunc.grad(f))(k)
    assert abs(npfunc.grad(f)(k)) < 1e-9
    ks = np.array([0.1, 0.5, 2.0])
    assert_same(npfunc.vmap(f)(ks), np.stack([f(k) for k in ks]))
    assert_same(npfunc.vmap(npfunc.grad(f))(ks), np.stack([npfunc.grad(f)(k) for k in ks]))


def bigram_counts_loop(tokens, V, weights, like=None):
    """Soft counts accumulated in a Python loop into a preallocated table."""
    C = np.zeros((V, V), like=like)
    for a, b, w in zip(tokens[:-1], tokens[1:], weights):
        C[a, b] += w
    return C


def test_counts_by_np_add_at_with_traced_tokens_plain_table_matches_like_fix():
    """Regression: np.add.at into a plain table with traced token indices (tokens an argument
    of jit, or batched by vmap) raised the generic 'a NumPy function or method' advice, then
    named np.zeros(shape, like=tokens); the plain np.zeros table made inside the function now
    takes the traced indices: the counts are NumPy's under jit (recording and replay) and vmap,
    as with the like=tokens fix."""
    plain = lambda t: bigram_counts(t, V)
    assert_jit_replays(plain, (CORPUS,), (CORPUS[::-1].copy(),), (CORPUS,))
    toks = np.stack([CORPUS, CORPUS[::-1]])
    assert_same(npfunc.vmap(plain)(toks), np.stack([bigram_counts(CORPUS, V), bigram_counts(CORPUS[::-1], V)]))
    fixed = lambda t: bigram_counts(t, V, like=t)
    assert_jit_replays(fixed, (CORPUS,), (CORPUS[::-1].copy(),))
    assert_same(npfunc.vmap(fixed)(np.stack([CORPUS, CORPUS[::-1]])),
                np.stack([bigram_counts(CORPUS, V), bigram_counts(CORPUS[::-1], V)]))


def test_soft_counts_loop_and_np_add_at_agree():
    w = np.linspace(0.5, 1.5, len(CORPUS) - 1)
    want = np.zeros((V, V))
    np.add.at(want, (CORPUS[:-1], CORPUS[1:]), w)
    assert_same(bigram_counts_loop(CORPUS, V, w), want)
    # the plain table (once refused under jacrev, naming like=) takes the traced soft counts
    plain = lambda v: bigram_counts_loop(CORPUS, V, v)
    f = lambda v: bigram_counts_loop(CORPUS, V, v, like=v)
    J = npfunc.jacrev(f)(w)
    assert_deriv(J, fd(plain, w))
    assert_same(npfunc.jit(f)(w), want)
    assert_deriv(npfunc.jacrev(plain)(w), J, rtol=1e-14, atol=0)
    assert_deriv(npfunc.jacfwd(plain)(w), J, rtol=1e-14, atol=0)
    assert_jit_replays(plain, (w,), (w[::-1].copy(),))
    ws = np.stack([w, w[::-1], 2 * w])
    assert_same(npfunc.vmap(plain)(ws), np.stack([plain(v) for v in ws]))

    def plain_scatter(v):
        C = np.zeros((V, V))
        np.add.at(C, (CORPUS[:-1], CORPUS[1:]), v)
        return C
    assert_jit_replays(plain_scatter, (w,), (w[::-1].copy(),))
    assert_same(npfunc.vmap(plain_scatter)(ws), np.stack([plain_scatter(v) for v in ws]))
    assert_deriv(npfunc.jacrev(plain_scatter)(w), J, rtol=1e-14, atol=0)
    assert_deriv(npfunc.jacfwd(plain_scatter)(w), J, rtol=1e-14, atol=0)

    def scatter(v):
        C = np.zeros((V, V), like=v)
        np.add.at(C, (CORPUS[:-1], CORPUS[1:]), v)
        return C
    assert_same(npfunc.jit(scatter)(w), want)
    assert_same(npfunc.jit(scatter)(w[::-1].copy()), bigram_counts_loop(CORPUS, V, w[::-1].copy()))
    assert_deriv(npfunc.jacfwd(scatter)(w), J)


def interpolated_trigram(logits, tokens, V=V):
    """Jelinek-Mercer interpolation of unigram, bigram and trigram MLEs with weights
    softmax(logits); returns the mean negative log-likelihood and the perplexity."""
    lam = sps.softmax(logits)
    uni = np.bincount(tokens, minlength=V) / len(tokens)
    bi = bigram_counts(tokens, V)
    bi = bi / np.maximum(bi.sum(axis=1, keepdims=True), 1)
    tri = np.zeros((V, V, V))
    np.add.at(tri, (tokens[:-2], tokens[1:-1], tokens[2:]), 1.0)
    tri = tri / np.maximum(tri.sum(axis=2, keepdims=True), 1)
    nll = 0.0
    for t in range(2, len(tokens)):
        a, b, c = tokens[t - 2], tokens[t - 1], tokens[t]
        p = lam[0] * uni[c] + lam[1] * bi[b, c] + lam[2] * tri[a, b, c]
        nll = nll - np.log(p)
    nll = nll / (len(tokens) - 2)
    return {"nll": nll, "perplexity": np.exp(nll)}


def test_interpolated_trigram_dict_and_grad():
    lg = np.array([0.2, -0.1, 0.4])
    assert_jit_replays(lambda v: interpolated_trigram(v, CORPUS), (lg,), (lg[::-1].copy(),))
    out = interpolated_trigram(lg, CORPUS)
    assert type(out["nll"]) is np.float64 and type(out["perplexity"]) is np.float64
    f = lambda v: interpolated_trigram(v, CORPUS)["nll"]
    scalar_suite(f, lg, np.array([1.0, 0.0, -1.0]), batch=np.stack([lg, -lg]))
    J = npfunc.jacrev(lambda v: interpolated_trigram(v, CORPUS))(lg)
    assert_deriv(J["perplexity"], fd(lambda v: interpolated_trigram(v, CORPUS)["perplexity"], lg))


def absolute_discount(d, train, test, V=V):
    """Absolute discounting interpolated with the unigram distribution (Ney et al.)."""
    C = bigram_counts(train, V)
    uni = (np.bincount(train, minlength=V) + 1.0) / (len(train) + V)
    row = C.sum(axis=1, keepdims=True)
    n_types = (C > 0).sum(axis=1, keepdims=True)
    P = np.maximum(C - d, 0) / row + d * n_types / row * uni[None, :]
    return np.mean(np.log(P[test[:-1], test[1:]]))


def test_absolute_discounting_grad_in_discount():
    test = np.array([0, 1, 2, 4, 4, 3, 1])
    f = lambda d: absolute_discount(d, CORPUS, test)
    assert_jit_replays(f, (0.75,), (0.3,))
    scalar1_suite(f, 0.75, 0.3)
    ds = np.array([0.2, 0.5, 0.9])
    assert_same(npfunc.vmap(f)(ds), np.stack([f(d) for d in ds]))


def zipf_fit(counts):
    """Zipf exponent by a log-log least squares fit of sorted frequencies."""
    freq = np.sort(counts)[::-1]
    ranks = np.arange(1, len(freq) + 1)
    slope, intercept = np.polyfit(np.log(ranks), np.log(freq), 1)
    return -slope


def test_zipf_fit_polyfit():
    c = 100.0 / np.arange(1, 8) ** 1.1 * (1 + 0.05 * np.sin(np.arange(7)))
    want = zipf_fit(c)
    assert_jit_replays(zipf_fit, (c,), (c[::-1] * 2,))
    scalar_suite(zipf_fit, c, c * 1.3 + 0.1, second=False)


# ---- 8. word embeddings -------------------------------------------------------------------------


def sgns_loss(W_in, W_out, center, context, negatives):
    """Skip-gram with negative sampling (Mikolov et al. 2013) for one (center, context) pair."""
    v = W_in[center]
    pos = np.log(sps.expit(W_out[context] @ v))
    neg = np.sum(np.log(sps.expit(-W_out[negatives] @ v)))
    return -(pos + neg)


def test_skipgram_negative_sampling_loss_and_per_pair_gradients():
    r = np.random.default_rng(8)
    Win, Wout = 0.3 * r.standard_normal((6, 4)), 0.3 * r.standard_normal((6, 4))
    negs = np.array([3, 5, 1])
    assert_jit_replays(sgns_loss, (Win, Wout, 0, 2, negs), (Win * 2, Wout, 0, 2, negs))
    assert_jit_replays(lambda a, b: sgns_loss(a, b, 4, 1, negs), (Win, Wout), (Wout, Win))
    scalar_suite(lambda w: sgns_loss(w, Wout, 0, 2, negs), Win, Win * -1.5)
    scalar_suite(lambda w: sgns_loss(Win, w, 0, 2, negs), Wout, Wout + 0.2)
    # gradients only touch the rows used
    g = npfunc.grad(sgns_loss)(Win, Wout, 0, 2, negs)
    assert np.all(g[1:] == 0) and np.any(g[0] != 0)
    # per-pair gradients for a batch of pairs, embeddings shared
    centers, contexts = np.array([0, 4, 2]), np.array([2, 1, 5])
    Negs = np.array([[3, 5, 1], [0, 2, 3], [1, 1, 4]])
    f = lambda c, o, n, Win: sgns_loss(Win, Wout, c, o, n)
    with pytest.raises(npfunc.errors.NpfuncError, match="like="):
        npfunc.vmap(npfunc.grad(f, argnums=3), in_dims=(0, 0, 0, None))(centers, contexts, Negs, Win)
    fixed = lambda c, o, n, Win: sgns_loss(np.asarray(Win, like=n), np.asarray(Wout, like=n), c, o, n)
    G = npfunc.vmap(npfunc.grad(fixed, argnums=3), in_dims=(0, 0, 0, None))(centers, contexts, Negs, Win)
    for c, o, n, gk in zip(centers, contexts, Negs, G):
        np.testing.assert_allclose(gk, npfunc.grad(sgns_loss)(Win, Wout, c, o, n), rtol=1e-12)
    L = npfunc.vmap(fixed, in_dims=(0, 0, 0, None))(centers, contexts, Negs, Win)
    assert_same(L, np.stack([sgns_loss(Win, Wout, c, o, n) for c, o, n in zip(centers, contexts, Negs)]))


def cbow_logprob(E, U, context, target):
    """CBOW: mean of context embeddings, full softmax over the vocabulary (log_softmax)."""
    h = E[context].mean(axis=0)
    return sps.log_softmax(U @ h)[target]


def test_cbow_full_softmax():
    r = np.random.default_rng(9)
    E, U = r.standard_normal((7, 3)), r.standard_normal((7, 3))
    ctx = np.array([1, 3, 3, 6])
    assert_jit_replays(cbow_logprob, (E, U, ctx, 2), (U, E, ctx[::-1].copy(), 5))
    scalar_suite(lambda e: cbow_logprob(e, U, ctx, 2), E, E * 0.5)
    Us = np.stack([U, U * 2, -U])
    assert_same(npfunc.vmap(cbow_logprob, in_dims=(None, 0, None, None))(E, Us, ctx, 2),
                np.stack([cbow_logprob(E, u, ctx, 2) for u in Us]))


def glove_loss(W, Wc, b, bc, X, x_max=10.0, alpha=0.75):
    """GloVe's weighted least squares over the nonzero co-occurrences."""
    i, j = np.nonzero(X)
    x = X[i, j]
    f = np.minimum((x / x_max) ** alpha, 1.0)
    diff = np.sum(W[i] * Wc[j], axis=1) + b[i] + bc[j] - np.log(x)
    return 0.5 * np.sum(f * diff ** 2)


def test_glove_weighted_least_squares():
    r = np.random.default_rng(10)
    X = np.floor(np.abs(r.standard_normal((5, 5))) * 8)
    W, Wc, b, bc = (0.1 * r.standard_normal(s) for s in ((5, 2), (5, 2), 5, 5))
    assert_jit_replays(lambda *p: glove_loss(*p, X), (W, Wc, b, bc), (Wc, W, bc, b))
    scalar_suite(lambda w: glove_loss(w, Wc, b, bc, X), W, W + 0.3)
    # the co-occurrence counts as the variable: f's kink at x_max and log x
    Xs = X + 0.5
    f = lambda x: glove_loss(W, Wc, b, bc, x)
    assert_deriv(npfunc.grad(f)(Xs), fd(f, Xs))
    with pytest.raises(npfunc.errors.DataDependentShapeError, match="np.nonzero"):
        npfunc.jit(lambda x: glove_loss(W, Wc, b, bc, x))(X)


def hierarchical_softmax_logprob(node_vecs, h, path_nodes, path_codes):
    """log p(word | h) along its Huffman path: sum of log sigmoid(+/- n . h)."""
    signs = 1.0 - 2.0 * path_codes
    return np.sum(np.log(sps.expit(signs * (node_vecs[path_nodes] @ h))))


def test_hierarchical_softmax_normalises_and_grads():
    r = np.random.default_rng(11)
    N = r.standard_normal((3, 4))  # a complete tree over 4 words: root 0, children 1 and 2
    h = r.standard_normal(4)
    paths = {0: ([0, 1], [0, 0]), 1: ([0, 1], [0, 1]), 2: ([0, 2], [1, 0]), 3: ([0, 2], [1, 1])}
    total = sum(np.exp(hierarchical_softmax_logprob(N, h, np.array(p), np.array(c))) for p, c in paths.values())
    np.testing.assert_allclose(total, 1.0)
    p, c = np.array(paths[2][0]), np.array(paths[2][1])
    assert_jit_replays(hierarchical_softmax_logprob, (N, h, p, c), (N * 2, -h, p, c))
    scalar_suite(lambda v: hierarchical_softmax_logprob(N, v, p, c), h, -h, batch=np.stack([h, -h, 2 * h]))


def embedding_bag_logistic(E, w, ids, y):
    """Mean-pooled embeddings of a bag of token ids into a logistic loss."""
    h = E[ids].mean(axis=0)
    z = h @ w
    return np.logaddexp(0.0, -y * z)


def embedding_bag_grad_by_hand(E, w, ids, y):
    h = E[ids].mean(axis=0)
    z = h @ w
    dz = -y * sps.expit(-y * z)
    gE = np.zeros_like(E)
    np.add.at(gE, ids, np.outer(np.ones(len(ids)) / len(ids), dz * w))
    return gE, dz * h


def test_embedding_bag_grad_matches_hand_written_np_add_at():
    r = np.random.default_rng(12)
    E, w = r.standard_normal((6, 3)), r.standard_normal(3)
    ids = np.array([1, 4, 1, 5])
    for y in (1.0, -1.0):
        gE, gw = npfunc.grad(embedding_bag_logistic, argnums=(0, 1))(E, w, ids, y)
        hE, hw = embedding_bag_grad_by_hand(E, w, ids, y)
        np.testing.assert_allclose(gE, hE, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(gw, hw, rtol=1e-12)
    # the hand-written gradient itself under transforms: jit, and its Jacobian is the Hessian
    assert_jit_replays(embedding_bag_grad_by_hand, (E, w, ids, 1.0), (E * 2, w, ids[::-1].copy(), -1.0))
    H = npfunc.jacfwd(lambda e: embedding_bag_grad_by_hand(e, w, ids, 1.0)[0])(E)
    np.testing.assert_allclose(H, npfunc.hessian(embedding_bag_logistic)(E, w, ids, 1.0), rtol=1e-10, atol=1e-14)
    scalar_suite(lambda e: embedding_bag_logistic(e, w, ids, 1.0), E, E - 0.4)


def analogy(E, a, b, c):
    """b - a + c, nearest word by cosine (excluding the inputs); returns the id and the cosine."""
    En = E / np.linalg.norm(E, axis=1, keepdims=True)
    q = En[b] - En[a] + En[c]
    q = q / np.linalg.norm(q)
    sims = En @ q
    sims[[a, b, c]] = -np.inf
    best = np.argmax(sims)
    return best, sims[best]


def test_cosine_analogy_argmax_and_its_similarity_gradient():
    r = np.random.default_rng(13)
    E = r.standard_normal((8, 3))
    best, sim = analogy(E, 0, 1, 2)
    assert type(best) is np.int64 and type(sim) is np.float64
    assert_jit_replays(analogy, (E, 0, 1, 2), (E[::-1].copy(), 0, 1, 2))
    g = npfunc.grad(lambda e: analogy(e, 0, 1, 2)[1])(E)
    assert_deriv(g, fd(lambda e: analogy(e, 0, 1, 2)[1], E))
    Es = np.stack([E, E * 2 + 1, np.roll(E, 1, axis=0)])
    got = npfunc.vmap(analogy, in_dims=(0, None, None, None))(Es, 0, 1, 2)
    loop = [analogy(e, 0, 1, 2) for e in Es]
    assert_same(got[0], np.stack([l[0] for l in loop]))
    assert_same(got[1], np.stack([l[1] for l in loop]))


def ppmi(C, alpha=0.75):
    """Positive PMI with context-distribution smoothing (Levy et al. 2015)."""
    total = C.sum()
    pw = C.sum(axis=1) / total
    pc = C.sum(axis=0) ** alpha
    pc = pc / pc.sum()
    with np.errstate(divide="ignore"):
        pmi = np.log(C / total) - np.log(pw)[:, None] - np.log(pc)[None, :]
    return np.maximum(pmi, 0.0)


def test_ppmi_with_zero_counts():
    C = np.array([[4.0, 0.0, 1.0], [2.0, 3.0, 0.0], [0.0, 1.0, 5.0]])
    C2 = C.T + 1.0
    assert_jit_replays(ppmi, (C,), (C2,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = npfunc.jit(ppmi)(C)
    J = npfunc.jacrev(ppmi)(C2)
    assert_deriv(J, fd(ppmi, C2))
    Cs = np.stack([C, C2])
    assert_same(npfunc.vmap(ppmi)(Cs), np.stack([ppmi(c) for c in Cs]))
    # derivative at a zero count: -inf PMI is clipped at 0, whose derivative is 0 there; log's
    # derivative 1/0 warns as NumPy does (docs/conventions.md), silenced by the caller's errstate
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="ignore", invalid="ignore"):
            Jz = npfunc.jacfwd(ppmi)(C)
            Jr = npfunc.jacrev(ppmi)(C)
    # reverse mode sends a zero cotangent through log's infinite derivative at the zero count:
    # 0 * inf = NaN reaches C.sum() and so every entry (docs/conventions.md, "Discarded entries");
    # the double-where spelling keeps the zero out of log and agrees with forward mode
    assert np.all(np.isnan(Jr))

    def ppmi_safe(C, alpha=0.75):
        total = C.sum()
        pw = C.sum(axis=1) / total
        pc = C.sum(axis=0) ** alpha
        pc = pc / pc.sum()
        pmi = np.log(np.where(C > 0, C, 1.0) / total) - np.log(pw)[:, None] - np.log(pc)[None, :]
        return np.where(C > 0, np.maximum(pmi, 0.0), 0.0)
    assert_same(ppmi_safe(C), ppmi(C))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(npfunc.jacrev(ppmi_safe)(C), Jz, rtol=1e-12, atol=1e-15)
        assert_same(npfunc.jit(ppmi_safe)(C2), ppmi(C2))
    assert np.all(np.isfinite(Jz))
    assert np.all(Jz[0, 1] == 0)


# ---- 9. classifiers over a vocabulary -----------------------------------------------------------


def softmax_xent(W, b, X, y, n_classes):
    """Softmax regression with one-hot labels by np.eye indexing."""
    Y = np.eye(n_classes)[y]
    logits = X @ W + b
    logp = logits - sps.logsumexp(logits, axis=1, keepdims=True)
    return -np.sum(Y * logp) / len(y)


def test_softmax_classifier_per_example_gradients():
    """One-hot labels by np.eye(K)[y]: with y traced (a jit argument, or batched by vmap) the
    plain identity made inside the function is read at the traced labels (once refused,
    naming like=i), as with the like= fix."""
    r = np.random.default_rng(14)
    X, y = r.standard_normal((6, 4)), np.array([0, 2, 1, 2, 2, 0])
    W, b = 0.1 * r.standard_normal((4, 3)), np.zeros(3)
    assert_jit_replays(lambda w, c, x: softmax_xent(w, c, x, y, 3), (W, b, X), (W * 3, b + 1, X[::-1].copy()))
    # labels as a jit argument: np.eye(K)[y] indexes the plain identity with a traced index
    assert_jit_replays(softmax_xent, (W, b, X, y, 3), (W * 3, b + 1, X, y[::-1].copy(), 3),
                       (W, b, X, np.array([1, 1, 0, 2, 0, 1]), 3), static_argnums=4)

    def softmax_xent_like(W, b, X, y, n_classes):
        Y = np.asarray(np.eye(n_classes), like=y)[y]
        logits = X @ W + b
        return -np.sum(Y * (logits - sps.logsumexp(logits, axis=1, keepdims=True))) / len(y)
    assert_jit_replays(softmax_xent_like, (W, b, X, y, 3), (W * 3, b + 1, X, y[::-1].copy(), 3), static_argnums=4)
    scalar_suite(lambda w: softmax_xent(w, b, X, y, 3), W, W + 0.5)
    # per-example gradients (one example per call, a (1, d) batch inside)
    per = lambda W, b, x, t: softmax_xent(W, b, x[None], t[None], 3)
    fixed = lambda W, b, x, t: -np.sum(np.eye(3, like=x)[t] * sps.log_softmax(x @ W + b))
    gW = npfunc.vmap(npfunc.grad(fixed), in_dims=(None, None, 0, 0))(W, b, X, y)
    loop = np.stack([npfunc.grad(per)(W, b, x, np.array(t)) for x, t in zip(X, y)])
    np.testing.assert_allclose(gW, loop, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gW.mean(axis=0), npfunc.grad(softmax_xent)(W, b, X, y, 3), rtol=1e-12)
    repeat_close(npfunc.jit(npfunc.vmap(npfunc.grad(fixed), in_dims=(None, None, 0, 0))), gW, W, b, X, y)
    # the plain program, labels batched: per-example gradients as the loop, the fix and differences
    g_plain = npfunc.vmap(npfunc.grad(per), in_dims=(None, None, 0, 0))(W, b, X, y)
    np.testing.assert_allclose(g_plain, loop, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_plain, gW, rtol=1e-12, atol=1e-15)
    assert_deriv(g_plain, np.stack([fd(lambda w: per(w, b, x, np.array(t)), W) for x, t in zip(X, y)]))
    repeat_close(npfunc.jit(npfunc.vmap(npfunc.grad(per), in_dims=(None, None, 0, 0))), gW, W, b, X, y)
    assert_same(npfunc.vmap(per, in_dims=(None, None, 0, 0))(W, b, X, y),
                np.stack([per(W, b, x, np.array(t)) for x, t in zip(X, y)]))


def label_smoothed_xent(logits, y, eps=0.1):
    K = logits.shape[-1]
    q = np.full(K, eps / K)
    q[y] += 1.0 - eps
    return -np.sum(q * sps.log_softmax(logits))


def test_label_smoothing():
    z = np.array([1.0, -0.5, 2.0, 0.3])
    scalar_suite(lambda v: label_smoothed_xent(v, 2), z, -z, batch=np.stack([z, -z, 2 * z]))
    assert_jit_replays(lambda v: label_smoothed_xent(v, 2), (z,), (z * 3,))
    # the gradient is softmax minus the smoothed target
    q = np.full(4, 0.025)
    q[2] += 0.9
    np.testing.assert_allclose(npfunc.grad(label_smoothed_xent)(z, 2), sps.softmax(z) - q, rtol=1e-12, atol=1e-16)


def bow_features(docs, V):
    return np.stack([np.bincount(d, minlength=V) for d in docs]).astype(float)


def bow_logreg_loss(w, b, X, y, lam=0.1):
    """Bag-of-words logistic regression, labels in {-1, +1}, log(1 + exp(-y z)) by logaddexp."""
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -y * z)) + 0.5 * lam * w @ w


def test_bag_of_words_logistic_regression():
    docs = [np.array([0, 1, 1, 3]), np.array([2, 2, 4]), np.array([0, 3, 3, 3, 1]), np.array([4, 2])]
    X = bow_features(docs, 5)
    y = np.array([1.0, -1.0, 1.0, -1.0])
    w = np.linspace(-0.3, 0.3, 5)
    assert_jit_replays(bow_logreg_loss, (w, 0.1, X, y), (w * 2, np.float64(-0.2), X, -y))
    scalar_suite(lambda v: bow_logreg_loss(v, 0.1, X, y), w, -w, batch=np.stack([w, -w]))
    # bias as a 0-d variable
    scalar1_suite(lambda c: bow_logreg_loss(w, c, X, y), 0.1, -1.0)
    # per-document gradients
    per = npfunc.vmap(npfunc.grad(bow_logreg_loss), in_dims=(None, None, 0, 0))(w, 0.1, X[:, None, :], y[:, None])
    loop = np.stack([npfunc.grad(bow_logreg_loss)(w, 0.1, x[None], t[None]) for x, t in zip(X, y)])
    np.testing.assert_allclose(per, loop, rtol=1e-12)
    # Newton's method with the Hessian
    v = np.zeros(5)
    for _ in range(6):
        v = v - np.linalg.solve(npfunc.hessian(bow_logreg_loss)(v, 0.1, X, y), npfunc.grad(bow_logreg_loss)(v, 0.1, X, y))
    assert np.linalg.norm(npfunc.grad(bow_logreg_loss)(v, 0.1, X, y)) < 1e-10


def naive_bayes_logpost(alpha, counts_by_class, priors, doc):
    """Multinomial naive Bayes with Laplace/Lidstone smoothing alpha: log posterior of each class."""
    theta = (counts_by_class + alpha) / (counts_by_class.sum(axis=1, keepdims=True) + alpha * counts_by_class.shape[1])
    joint = np.log(priors) + np.log(theta) @ doc
    return joint - sps.logsumexp(joint)


def test_naive_bayes_smoothing_derivatives():
    Cc = np.array([[3.0, 0.0, 5.0, 1.0], [0.0, 4.0, 1.0, 2.0]])
    pri = np.array([0.4, 0.6])
    doc = np.array([1.0, 2.0, 0.0, 1.0])
    f = lambda a: naive_bayes_logpost(a, Cc, pri, doc)[0]
    assert_jit_replays(lambda a: naive_bayes_logpost(a, Cc, pri, doc), (1.0,), (0.5,))
    scalar1_suite(f, 1.0, 0.2)
    J = npfunc.jacfwd(naive_bayes_logpost, argnums=3)(1.0, Cc, pri, doc)
    assert_deriv(J, fd(lambda d: naive_bayes_logpost(1.0, Cc, pri, d), doc))
    alphas = np.array([0.1, 1.0, 3.0])
    assert_same(npfunc.vmap(lambda a: naive_bayes_logpost(a, Cc, pri, doc))(alphas),
                np.stack([naive_bayes_logpost(a, Cc, pri, doc) for a in alphas]))


def temperature_nll(T, logits, y):
    """Temperature scaling (Guo et al. 2017): NLL of held-out labels at temperature T."""
    z = logits / T
    return -np.mean(z[np.arange(len(y)), y] - sps.logsumexp(z, axis=1))


def test_temperature_scaling_newton_and_types():
    r = np.random.default_rng(15)
    L = 3 * r.standard_normal((8, 4))
    y = np.array([0, 1, 2, 3, 0, 1, 1, 2])
    f = lambda T: temperature_nll(T, L, y)
    assert type(f(1.5)) is np.float64
    assert_jit_replays(f, (1.5,), (0.7,))
    scalar1_suite(f, 1.5, 3.0)
    T = 1.0
    for _ in range(30):
        T = T - npfunc.grad(f)(T) / npfunc.grad(npfunc.grad(f))(T)
    assert abs(npfunc.grad(f)(T)) < 1e-10
    # float32 logits stay float32 (T a Python float)
    L32 = L.astype(np.float32)
    got = npfunc.jit(lambda T: temperature_nll(T, L32, y))(1.5)
    assert_same(got, temperature_nll(1.5, L32, y), rtol=1e-6)
    g32 = npfunc.grad(temperature_nll, argnums=1)(1.5, L32, y)
    assert g32.dtype == np.float32


def focal_loss(logits, y, gamma=2.0):
    p = sps.softmax(logits, axis=-1)
    pt = p[np.arange(len(y)), y]
    return -np.mean((1 - pt) ** gamma * np.log(pt))


def test_focal_loss():
    r = np.random.default_rng(16)
    Z = r.standard_normal((4, 3))
    y = np.array([2, 0, 1, 1])
    scalar_suite(lambda z: focal_loss(z, y), Z, Z * 2)
    assert_jit_replays(focal_loss, (Z, y), (-Z, y[::-1].copy()))
    g = lambda gm: focal_loss(Z, y, gm)
    scalar1_suite(g, 2.0, 0.5)


def info_nce(Q, K, tau=0.1):
    """InfoNCE / contrastive loss: row i of Q matches row i of K."""
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Kn = K / np.linalg.norm(K, axis=1, keepdims=True)
    S = Qn @ Kn.T / tau
    return -np.mean(np.diag(S) - sps.logsumexp(S, axis=1))


def test_info_nce():
    r = np.random.default_rng(17)
    Q, K = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    assert_jit_replays(info_nce, (Q, K), (K, Q))
    scalar_suite(lambda q: info_nce(q, K), Q, Q + K)
    scalar1_suite(lambda t: info_nce(Q, K, t), 0.1, 0.5)
    Qs = np.stack([Q, -Q, Q * 3])
    assert_same(npfunc.vmap(info_nce, in_dims=(0, None))(Qs, K), np.stack([info_nce(q, K) for q in Qs]))


# ---- 10. attention over tokens and sequence encoders -----------------------------------------------


def masked_attention(Q, K, Vv, lengths):
    """Scaled dot-product attention over padded keys: key j of row i is masked when
    j >= lengths[i]; the mask by np.where with -inf, the softmax written out."""
    d = Q.shape[-1]
    S = Q @ K.T / np.sqrt(d)
    mask = np.arange(K.shape[0])[None, :] < lengths[:, None]
    S = np.where(mask, S, -np.inf)
    S = S - S.max(axis=1, keepdims=True)
    P = np.exp(S)
    P /= P.sum(axis=1, keepdims=True)
    return P @ Vv


def test_masked_attention_all_transforms():
    r = np.random.default_rng(18)
    Q, K, Vv = r.standard_normal((3, 4)), r.standard_normal((5, 4)), r.standard_normal((5, 2))
    lengths = np.array([5, 3, 1])
    assert_jit_replays(masked_attention, (Q, K, Vv, lengths), (K[:3], Q[:3].repeat(2, 0)[:5], Vv, np.array([2, 2, 4])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = npfunc.jacrev(masked_attention, argnums=1)(Q, K, Vv, lengths)
        Jf = npfunc.jacfwd(masked_attention, argnums=1)(Q, K, Vv, lengths)
    want = fd(lambda k: masked_attention(Q, k, Vv, lengths), K)
    assert_deriv(J, want)
    assert_deriv(Jf, want)
    # masked keys get exactly zero derivative
    assert np.all(J[2, :, 1:] == 0)
    f = lambda q: np.sum(masked_attention(q, K, Vv, lengths) ** 2)
    scalar_suite(f, Q, Q * 0.3)
    # a batch of sentences: keys batched along axis 1 (time-major), lengths batched
    Ks = r.standard_normal((5, 2, 4))
    Ls = np.array([[5, 3, 1], [2, 2, 2]])
    got = npfunc.vmap(masked_attention, in_dims=(None, 1, None, 0))(Q, Ks, Vv, Ls)
    assert_same(got, np.stack([masked_attention(Q, Ks[:, b], Vv, Ls[b]) for b in range(2)]))


def positional_encoding(T, d):
    pos = np.arange(T)[:, None]
    i = np.arange(d // 2)[None, :]
    angle = pos / 10000 ** (2 * i / d)
    pe = np.zeros((T, d))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe


def layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return g * (x - mu) / np.sqrt(var + eps) + b


def encode(E, ids, g, b):
    x = E[ids] + positional_encoding(len(ids), E.shape[1])
    return layer_norm(x, g, b)


def test_positional_encoding_layer_norm_float32():
    r = np.random.default_rng(19)
    E = r.standard_normal((10, 4)).astype(np.float32)
    g, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    ids = np.array([3, 1, 4, 1, 5])
    want = encode(E, ids, g, b)
    assert want.dtype == np.float64  # the float64 positional table promotes
    assert_jit_replays(lambda e, gg, bb: encode(e, ids, gg, bb), (E, g, b), (E * 2, g * 3, b + 1))
    J = npfunc.jacrev(lambda gg: encode(E, ids, gg, b))(g)
    assert_deriv(J, fd(lambda gg: encode(E, ids, gg, b), g.astype(float)))
    f = lambda e: np.sum(encode(e, ids, g, b)[:, 0] ** 3)
    E64 = E.astype(float)
    scalar_suite(f, E64, E64 * 0.5, rtol=1e-5)


def elman_lm_nll(params, ids):
    """An Elman RNN language model: the NLL of each next token (a preallocated list, tanh)."""
    E, Wh, Wo = params["E"], params["Wh"], params["Wo"]
    h = np.zeros(Wh.shape[0])
    nll = []
    for t in range(len(ids) - 1):
        h = np.tanh(E[ids[t]] + Wh @ h)
        logits = Wo @ h
        nll.append(sps.logsumexp(logits) - logits[ids[t + 1]])
    return np.array(nll).sum()


def test_elman_rnn_language_model_pytree_grad():
    r = np.random.default_rng(20)
    P = {"E": 0.5 * r.standard_normal((6, 3)), "Wh": 0.5 * r.standard_normal((3, 3)), "Wo": 0.5 * r.standard_normal((6, 3))}
    ids = np.array([0, 3, 2, 5, 1])
    assert_jit_replays(lambda p: elman_lm_nll(p, ids), (P,), ({k: v * 1.1 for k, v in P.items()},))
    g = npfunc.grad(elman_lm_nll)(P, ids)
    for k in P:
        assert_deriv(g[k], fd(lambda v: elman_lm_nll({**P, k: v}, ids), P[k]))
    scalar_suite(lambda w: elman_lm_nll({**P, "Wh": w}, ids), P["Wh"], -P["Wh"])


def gumbel_softmax(logits, u, tau):
    """The Gumbel-softmax relaxation with fixed uniforms u."""
    g = -np.log(-np.log(u))
    return sps.softmax((logits + g) / tau)


def test_gumbel_softmax_fixed_noise():
    z = np.array([0.5, -1.0, 2.0, 0.1])
    u = np.array([0.3, 0.8, 0.1, 0.55])
    assert_jit_replays(gumbel_softmax, (z, u, 0.5), (z * 2, u[::-1].copy(), 2.0))
    assert_deriv(npfunc.jacfwd(gumbel_softmax)(z, u, 0.5), fd(lambda v: gumbel_softmax(v, u, 0.5), z))
    assert_deriv(npfunc.jacrev(gumbel_softmax, argnums=2)(z, u, 0.5), fd(lambda t: gumbel_softmax(z, u, t[0]), np.array([0.5]))[:, 0])
    scalar1_suite(lambda t: gumbel_softmax(z, u, t)[2], 0.5, 1.3)
    U = np.stack([u, u[::-1], np.full(4, 0.5)])
    assert_same(npfunc.vmap(gumbel_softmax, in_dims=(None, 0, None))(z, U, 0.5),
                np.stack([gumbel_softmax(z, uu, 0.5) for uu in U]))


def sparsemax(z):
    """Sparsemax (Martins & Astudillo 2016): Euclidean projection onto the simplex."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    cs = np.cumsum(zs)
    support = 1 + k * zs > cs
    kz = k[support][-1]
    tau = (cs[kz - 1] - 1) / kz
    return np.maximum(z - tau, 0.0)


def sparsemax_fixed_shape(z):
    zs = np.sort(z)[::-1]
    k = np.arange(1, z.shape[-1] + 1)
    cs = np.cumsum(zs)
    kz = np.sum(1 + k * zs > cs)
    tau = (np.take(cs, kz - 1) - 1) / kz
    return np.maximum(z - tau, 0.0)


def test_sparsemax():
    z = np.array([0.9, 0.2, 1.4, -0.3, 0.8])
    p = sparsemax(z)
    np.testing.assert_allclose(p.sum(), 1.0)
    assert_same(sparsemax_fixed_shape(z), p)
    J = npfunc.jacrev(sparsemax)(z)
    assert_deriv(J, fd(sparsemax, z))
    with pytest.raises(npfunc.errors.NpfuncError):
        npfunc.jit(sparsemax)(z)
    assert_jit_replays(sparsemax_fixed_shape, (z,), (z[::-1] * 3,), (np.array([5.0, 0.0, 0.0, 0.0, 0.1]),))
    assert_deriv(npfunc.jacfwd(sparsemax_fixed_shape)(z), fd(sparsemax, z))
    Z = np.stack([z, z * 3, -z])
    assert_same(npfunc.vmap(sparsemax_fixed_shape)(Z), np.stack([sparsemax(v) for v in Z]))


# ---- 11. dynamic programming: edit distances and beam search ---------------------------------------


def soft_edit_distance(S, sub_cost, gap, gamma=0.5, like=None):
    """Levenshtein-like DP with a soft minimum (-gamma logsumexp(-x/gamma)); S[i, j] a
    substitution mismatch in [0, 1], weighted by sub_cost; a preallocated table."""
    n, m = S.shape
    D = np.zeros((n + 1, m + 1)) if like is None else np.zeros_like(like, dtype=float, shape=(n + 1, m + 1))
    D[:, 0] = gap * np.arange(n + 1)
    D[0, :] = gap * np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cand = np.array([D[i - 1, j] + gap, D[i, j - 1] + gap, D[i - 1, j - 1] + sub_cost * S[i - 1, j - 1]])
            D[i, j] = -gamma * sps.logsumexp(-cand / gamma)
    return D[n, m]


def test_soft_edit_distance_table():
    a, b = np.array([0, 1, 2, 1]), np.array([1, 1, 2])
    S = (a[:, None] != b[None, :]).astype(float)
    S2 = 0.5 * S + 0.1
    # the plain table D = np.zeros(...) (once refused, naming like=) takes the traced soft minima
    assert_jit_replays(soft_edit_distance, (S, 1.0, 1.0), (S2, 0.7, 1.3))
    scalar_suite(lambda s: soft_edit_distance(s, 1.0, 1.0), S, S2)
    scalar1_suite(lambda g: soft_edit_distance(S, 1.0, g), 1.0, 0.6)
    scalar1_suite(lambda c: soft_edit_distance(S, c, 1.0), 1.0, 0.7)
    Ss = np.stack([S, S2])
    assert_same(npfunc.vmap(soft_edit_distance, in_dims=(0, None, None))(Ss, 1.0, 1.0),
                np.stack([soft_edit_distance(s, 1.0, 1.0) for s in Ss]))
    fixed = lambda S, c, g: soft_edit_distance(S, c, g, like=S)
    for got, want in zip(npfunc.grad(soft_edit_distance, argnums=(0, 1, 2))(S, 1.0, 1.0),
                         npfunc.grad(fixed, argnums=(0, 1, 2))(S, 1.0, 1.0)):
        assert type(got) is type(want)
        assert_deriv(got, want, rtol=1e-14, atol=0)
    want = soft_edit_distance(S, 1.0, 1.0)
    assert type(want) is np.float64
    assert_jit_replays(fixed, (S, 1.0, 1.0), (S2, 0.7, 1.3))
    scalar_suite(lambda s: fixed(s, 1.0, 1.0), S, S2)
    scalar1_suite(lambda g: soft_edit_distance(S, 1.0, g, like=g), 1.0, 0.6)
    # the soft distance tends to Levenshtein's as gamma -> 0
    np.testing.assert_allclose(soft_edit_distance(S, 1.0, 1.0, gamma=1e-3), 2.0, atol=1e-2)
    Ss = np.stack([S, S2])
    assert_same(npfunc.vmap(fixed, in_dims=(0, None, None))(Ss, 1.0, 1.0), np.stack([fixed(s, 1.0, 1.0) for s in Ss]))


def levenshtein(a, b):
    """Plain integer Levenshtein distance by the two-row DP."""
    prev = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = np.empty_like(prev)
        cur[0] = i
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def levenshtein_vectorised(a, b):
    """The same, the inner minimum over a row by np.minimum.accumulate (no Python min)."""
    n, m = len(a), len(b)
    prev = np.arange(m + 1)
    for i in range(1, n + 1):
        sub = prev[:-1] + (a[i - 1] != b)
        up = prev[1:] + 1
        diag = np.minimum(sub, up)
        cur = np.concatenate([[i], diag])
        # insertion chain: cur[j] = min_k (cur[k] + (j - k))
        cur = np.minimum.accumulate(cur - np.arange(m + 1)) + np.arange(m + 1)
        prev = cur
    return prev[-1]


def test_levenshtein_integer_types_under_jit_and_vmap():
    a, b = np.array([3, 1, 4, 1, 5]), np.array([3, 4, 1, 5, 9, 2])
    want = levenshtein(a, b)
    assert want == 3 and type(want) is np.int64
    assert_same(levenshtein_vectorised(a, b), want)
    with pytest.raises(npfunc.errors.ConcretizationError):
        npfunc.jit(levenshtein)(a, b)
    assert_jit_replays(levenshtein_vectorised, (a, b), (a[::-1].copy(), b), (b[:5], b))
    As = np.array([[3, 1, 4, 1, 5], [2, 7, 1, 8, 2], [3, 4, 1, 5, 9]])
    assert_same(npfunc.vmap(levenshtein_vectorised, in_dims=(0, None))(As, b),
                np.stack([levenshtein(x, b) for x in As]))


def beam_search(log_probs, beam=2):
    """Beam search over a fixed table of per-step log-probabilities (T, V) with a bigram
    bonus; returns the best hypothesis, its score, and all final beam scores."""
    T, Vv = log_probs.shape
    hyps = [((), 0.0)]
    for t in range(T):
        cand = []
        for seq, score in hyps:
            for w in range(Vv):
                bonus = 0.1 if seq and seq[-1] == w else 0.0
                cand.append((seq + (w,), score + log_probs[t, w] + bonus))
        scores = np.array([c[1] for c in cand])
        keep = np.argsort(-scores, kind="stable")[:beam]
        hyps = [cand[k] for k in keep]
    return np.array(hyps[0][0]), hyps[0][1], np.array([h[1] for h in hyps])


def test_beam_search_scores():
    r = np.random.default_rng(21)
    L = log_normalise(r.standard_normal((4, 3)))
    best, score, finals = beam_search(L)
    assert type(score) is np.float64
    # the best hypothesis' score is differentiable in the table (the selection is constant)
    g = npfunc.grad(lambda l: beam_search(l)[1])(L)
    onehot = np.zeros_like(L)
    onehot[np.arange(4), best] = 1.0
    np.testing.assert_array_equal(g, onehot)
    J = npfunc.jacrev(lambda l: beam_search(l)[2])(L)
    assert_deriv(J, fd(lambda l: beam_search(l)[2], L))
    # the values from under the transforms are the plain ones
    out, _ = npfunc.vjp(lambda l: beam_search(l), L)
    _same_tree(out, (best, score, finals))
    with pytest.raises(npfunc.errors.ConcretizationError):
        npfunc.jit(beam_search)(L)


# ---- 12. topic models ------------------------------------------------------------------------------


def lda_doc_elbo(gamma, phi, alpha, log_beta, doc):
    """The per-document LDA ELBO (Blei et al. 2003) for mean-field parameters gamma (K,) and
    phi (N, K), word ids doc (N,); the terms kept in a dict."""
    Elog_theta = sps.digamma(gamma) - sps.digamma(gamma.sum())
    terms = {
        "p_theta": sps.gammaln(alpha.sum()) - sps.gammaln(alpha).sum() + ((alpha - 1) * Elog_theta).sum(),
        "p_z": (phi @ Elog_theta).sum(),
        "p_w": (phi * log_beta[:, doc].T).sum(),
        "q_theta": -(sps.gammaln(gamma.sum()) - sps.gammaln(gamma).sum() + ((gamma - 1) * Elog_theta).sum()),
        "q_z": -np.sum(sps.xlogy(phi, phi)),
    }
    terms["elbo"] = sum(terms.values())
    return terms


def test_lda_elbo_pieces_and_coordinate_ascent_fixed_point():
    r = np.random.default_rng(22)
    K, Vv = 3, 6
    log_beta = log_normalise(r.standard_normal((K, Vv)))
    doc = np.array([0, 2, 2, 5, 1])
    alpha = np.full(K, 0.5)
    gamma = alpha + np.array([1.0, 2.5, 1.5])
    phi = sps.softmax(r.standard_normal((5, K)), axis=1)
    out = lda_doc_elbo(gamma, phi, alpha, log_beta, doc)
    assert type(out["elbo"]) is np.float64
    assert_jit_replays(lambda g, p: lda_doc_elbo(g, p, alpha, log_beta, doc), (gamma, phi), (gamma * 2, phi[::-1].copy()))
    f = lambda g: lda_doc_elbo(g, phi, alpha, log_beta, doc)["elbo"]
    scalar_suite(f, gamma, gamma + 1.0, batch=np.stack([gamma, gamma * 3]))
    # the coordinate-ascent update gamma = alpha + sum_n phi_n is a stationary point in gamma
    g_star = alpha + phi.sum(axis=0)
    np.testing.assert_allclose(npfunc.grad(f)(g_star), 0.0, atol=1e-12)
    # phi's update: softmax(log beta + E log theta) is stationary on the simplex: the gradient
    # in phi's logits vanishes there
    Elog = sps.digamma(g_star) - sps.digamma(g_star.sum())
    logits_star = log_beta[:, doc].T + Elog
    h = lambda lg: lda_doc_elbo(g_star, sps.softmax(lg, axis=1), alpha, log_beta, doc)["elbo"]
    np.testing.assert_allclose(npfunc.grad(h)(logits_star), 0.0, atol=1e-12)
    scalar_suite(h, logits_star, logits_star + 0.3, second=False)


def dirichlet_multinomial_loglik(s, m, counts):
    """Polya / Dirichlet-multinomial log-likelihood of count vectors with concentration s
    (0-d) and mean m: alpha = s m."""
    a = s * m
    n = counts.sum(axis=1)
    ll = (sps.gammaln(n + 1) - sps.gammaln(counts + 1).sum(axis=1)
          + sps.gammaln(a.sum()) - sps.gammaln(n + a.sum())
          + (sps.gammaln(counts + a) - sps.gammaln(a)).sum(axis=1))
    return ll.sum()


def test_dirichlet_multinomial_concentration():
    counts = np.array([[3.0, 0.0, 1.0, 6.0], [1.0, 1.0, 4.0, 2.0], [0.0, 5.0, 2.0, 2.0]])
    m = np.array([0.2, 0.3, 0.2, 0.3])
    f = lambda s: dirichlet_multinomial_loglik(s, m, counts)
    assert type(f(2.0)) is np.float64
    assert_jit_replays(f, (2.0,), (7.5,))
    scalar1_suite(f, 2.0, 7.5)
    # against scipy.stats.dirichlet_multinomial
    want = sum(scipy.stats.dirichlet_multinomial.logpmf(c, 2.0 * m, c.sum()) for c in counts)
    np.testing.assert_allclose(f(2.0), want, rtol=1e-12)
    scalar_suite(lambda mm: dirichlet_multinomial_loglik(2.0, mm, counts), m, m * 2)
    ss = np.array([0.5, 2.0, 10.0])
    assert_same(npfunc.vmap(f)(ss), np.stack([f(s) for s in ss]))
    assert_same(npfunc.vmap(npfunc.grad(npfunc.grad(f)))(ss), np.stack([npfunc.grad(npfunc.grad(f))(s) for s in ss]))


def kl_dirichlet(a, b):
    """KL(Dir(a) || Dir(b))."""
    a0, b0 = a.sum(), b.sum()
    return (sps.gammaln(a0) - sps.gammaln(a).sum() - sps.gammaln(b0) + sps.gammaln(b).sum()
            + ((a - b) * (sps.digamma(a) - sps.digamma(a0))).sum())


def test_kl_between_dirichlets():
    a, b = np.array([1.5, 0.7, 3.0]), np.array([1.0, 1.0, 1.0])
    assert_jit_replays(kl_dirichlet, (a, b), (b + 0.5, a))
    scalar_suite(lambda v: kl_dirichlet(v, b), a, a + 2.0, batch=np.stack([a, a * 2]))
    # Monte Carlo-free check: KL(a||a) = 0 with zero gradient
    np.testing.assert_allclose(kl_dirichlet(a, a), 0.0, atol=1e-14)
    np.testing.assert_allclose(npfunc.grad(kl_dirichlet)(a, a), 0.0, atol=1e-13)
    # the same with scipy.stats.dirichlet's entropy: KL = -H(a) - E_a log p_b
    Elog = sps.digamma(a) - sps.digamma(a.sum())
    cross = -(sps.gammaln(b.sum()) - sps.gammaln(b).sum() + ((b - 1) * Elog).sum())
    np.testing.assert_allclose(kl_dirichlet(a, b), cross - scipy.stats.dirichlet(a).entropy(), rtol=1e-12)


def nmf_kl_updates(V_, W, H, n_iter=3):
    """Lee & Seung multiplicative updates for KL-NMF, W and H updated in place; returns the
    generalised KL divergence after the updates."""
    for _ in range(n_iter):
        WH = W @ H
        H *= (W.T @ (V_ / WH)) / W.sum(axis=0)[:, None]
        WH = W @ H
        W *= ((V_ / WH) @ H.T) / H.sum(axis=1)[None, :]
    WH = W @ H
    return np.sum(V_ * np.log(V_ / WH) - V_ + WH)


def test_nmf_multiplicative_updates_in_place_side_effects():
    r = np.random.default_rng(23)
    V_ = np.abs(r.standard_normal((4, 5))) + 0.1
    W0, H0 = np.abs(r.standard_normal((4, 2))) + 0.5, np.abs(r.standard_normal((2, 5))) + 0.5
    W1, H1 = W0.copy(), H0.copy()
    want = nmf_kl_updates(V_, W1, H1)
    assert not np.array_equal(W1, W0)  # plain NumPy updated the arguments
    # jit: the same value and the same writes into the caller's arrays
    W2, H2 = W0.copy(), H0.copy()
    jf = npfunc.jit(nmf_kl_updates, static_argnums=3)
    assert_same(jf(V_, W2, H2), want)
    np.testing.assert_allclose(W2, W1, rtol=1e-12)
    np.testing.assert_allclose(H2, H1, rtol=1e-12)
    W3, H3 = W0.copy() * 1.1, H0.copy()
    W4, H4 = W3.copy(), H3.copy()
    assert_same(jf(V_, W3, H3), nmf_kl_updates(V_, W4, H4))
    np.testing.assert_allclose(W3, W4, rtol=1e-12)
    # the divergence after the updates, differentiated in the data
    f = lambda v: nmf_kl_updates(v, W0.copy(), H0.copy())
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="like="):
        npfunc.grad(f)(V_)
    f_like = lambda v: nmf_kl_updates(v, np.array(W0, like=v), np.array(H0, like=v))
    assert_deriv(npfunc.grad(f_like)(V_), fd(f, V_))
    scalar_suite(f_like, V_, V_ + 0.5, second=False)
    # grad in the initial factors: the arguments of grad are updated as NumPy updates them
    # (H, a plain argument updated in place with W's traced values, is refused)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x \*= y"):
        npfunc.grad(nmf_kl_updates, argnums=1)(V_, W0.copy(), H0.copy())
    for _ in range(3):
        W5, H5 = W0.copy(), H0.copy()
        gW, gH = npfunc.grad(nmf_kl_updates, argnums=(1, 2))(V_, W5, H5)
        assert_deriv(gW, fd(lambda w: nmf_kl_updates(V_, w, H0.copy()), W0))
        assert_deriv(gH, fd(lambda h: nmf_kl_updates(V_, W0.copy(), h), H0))
        np.testing.assert_allclose(H5, H1, rtol=1e-12)
        np.testing.assert_allclose(W5, W1, rtol=1e-12)


def topic_entropies(beta):
    """Entropy of each topic's word distribution and the KL of each topic from the corpus
    average, by scipy.special.entr and rel_entr."""
    H = sps.entr(beta).sum(axis=1)
    avg = beta.mean(axis=0)
    kl = sps.rel_entr(beta, avg[None, :]).sum(axis=1)
    return H, kl


def test_topic_entropies_entr_rel_entr():
    r = np.random.default_rng(24)
    beta = sps.softmax(r.standard_normal((3, 5)), axis=1)
    beta[0, 2] = 0.0  # a word a topic never emits: entr(0) = 0, rel_entr(0, q) = 0
    beta[0] /= beta[0].sum()
    assert_jit_replays(topic_entropies, (beta,), (beta[::-1].copy(),))
    np.testing.assert_allclose(topic_entropies(beta)[1], scipy.stats.entropy(beta, beta.mean(axis=0), axis=1), rtol=1e-12)
    b2 = beta + 0.05
    J = npfunc.jacrev(lambda b: topic_entropies(b)[1])(b2)
    assert_deriv(J, fd(lambda b: topic_entropies(b)[1], b2))
    f = lambda b: np.sum(topic_entropies(b)[0])
    scalar_suite(f, b2, b2 * 1.5)
    Bs = np.stack([beta, b2])
    got = npfunc.vmap(topic_entropies)(Bs)
    assert_same(got[0], np.stack([topic_entropies(b)[0] for b in Bs]))
    assert_same(got[1], np.stack([topic_entropies(b)[1] for b in Bs]))


# ---- 13. more sequence and text programs -------------------------------------------------------------


def baum_welch_expected_transitions(log_pi, log_A, log_B, obs):
    """The E-step's expected transition counts xi summed over time, from a forward and a
    backward pass with np.logaddexp.reduce; returned with the log-likelihood."""
    T, K = len(obs), len(log_pi)
    fa = np.empty((T, K), like=log_A)
    fb = np.empty((T, K), like=log_A)
    fa[0] = log_pi + log_B[:, obs[0]]
    for t in range(1, T):
        fa[t] = np.logaddexp.reduce(fa[t - 1][:, None] + log_A, axis=0) + log_B[:, obs[t]]
    fb[-1] = 0.0
    for t in range(T - 2, -1, -1):
        fb[t] = np.logaddexp.reduce(log_A + log_B[:, obs[t + 1]] + fb[t + 1], axis=1)
    ll = np.logaddexp.reduce(fa[-1])
    xi = np.zeros((K, K), like=log_A)
    for t in range(T - 1):
        xi += np.exp(fa[t][:, None] + log_A + log_B[:, obs[t + 1]] + fb[t + 1] - ll)
    return xi, ll


def test_baum_welch_expected_counts_are_gradients():
    lp, lA, lB = _hmm_params()
    lp2, lA2, lB2 = _hmm_params(seed=11)
    xi, ll = baum_welch_expected_transitions(lp, lA, lB, OBS)
    np.testing.assert_allclose(xi.sum(), len(OBS) - 1)
    np.testing.assert_allclose(ll, hmm_forward(lp, lA, lB, OBS), rtol=1e-12)
    # the expected transition counts are the gradient of the log-likelihood in log A
    np.testing.assert_allclose(npfunc.grad(lambda a: hmm_forward(lp, a, lB, OBS, like=a))(lA), xi, rtol=1e-12)
    assert_jit_replays(lambda a, b, c: baum_welch_expected_transitions(a, b, c, OBS), (lp, lA, lB), (lp2, lA2, lB2))
    J = npfunc.jacrev(lambda a: baum_welch_expected_transitions(lp, a, lB, OBS)[0])(lA)
    assert_deriv(J, fd(lambda a: baum_welch_expected_transitions(lp, a, lB, OBS)[0], lA))
    Jf = npfunc.jacfwd(lambda a: baum_welch_expected_transitions(lp, a, lB, OBS)[0])(lA)
    np.testing.assert_allclose(Jf, J, rtol=1e-10, atol=1e-14)
    As = np.stack([lA, lA2])
    got = npfunc.vmap(lambda a: baum_welch_expected_transitions(lp, a, lB, OBS))(As)
    loop = [baum_welch_expected_transitions(lp, a, lB, OBS) for a in As]
    assert_same(got[0], np.stack([l[0] for l in loop]))
    assert_same(got[1], np.stack([l[1] for l in loop]))


@npfunc.custom_vjp
def straight_through_onehot(logits):
    """Hard one-hot of the argmax in the forward pass; the softmax's gradient in the backward
    pass (the straight-through estimator)."""
    return np.eye(logits.shape[-1], like=logits)[np.argmax(logits, axis=-1)]


def _st_fwd(logits):
    return straight_through_onehot(logits), sps.softmax(logits, axis=-1)


def _st_bwd(p, g):
    return (p * (g - np.sum(g * p, axis=-1, keepdims=True)),)


straight_through_onehot.defvjp(_st_fwd, _st_bwd)


def test_straight_through_estimator_custom_vjp():
    z = np.array([[0.2, 1.5, -0.3], [2.0, 0.1, 0.0]])
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    loss = lambda lg: np.sum((straight_through_onehot(lg) @ emb) ** 2)
    want_val = np.sum((np.eye(3)[np.argmax(z, axis=-1)] @ emb) ** 2)
    assert_same(npfunc.jit(loss)(z), want_val)
    assert_same(loss(z), want_val)
    g = repeat_same(npfunc.grad(loss), z)
    # the surrogate: the gradient of the same loss with the softmax in place of the one-hot, at
    # the hard output
    Y = np.eye(3)[np.argmax(z, axis=-1)]
    p = sps.softmax(z, axis=-1)
    gy = 2 * (Y @ emb) @ emb.T
    np.testing.assert_allclose(g, p * (gy - np.sum(gy * p, axis=-1, keepdims=True)), rtol=1e-12)
    Zs = np.stack([z, -z, z * 2])
    per = npfunc.vmap(npfunc.grad(loss))(Zs)
    for zz, gg in zip(Zs, per):
        np.testing.assert_allclose(gg, npfunc.grad(loss)(zz), rtol=1e-12)
    repeat_close(npfunc.jit(npfunc.grad(loss)), g, z)


def text_cnn_score(E, filt, w, ids, width=3):
    """A one-layer text CNN: embeddings of the tokens, windows by sliding_window_view, a
    ReLU, max-over-time pooling and a linear score."""
    X = E[ids]                                                     # (T, d)
    win = np.lib.stride_tricks.sliding_window_view(X, width, axis=0)  # (T-w+1, d, w)
    feats = np.maximum(np.einsum("tdw,fdw->tf", win, filt), 0.0)
    return feats.max(axis=0) @ w


def test_text_cnn_sliding_windows_max_pooling():
    r = np.random.default_rng(25)
    E, filt, w = r.standard_normal((7, 2)), r.standard_normal((4, 2, 3)), r.standard_normal(4)
    ids = np.array([1, 5, 2, 2, 6, 0])
    assert_jit_replays(lambda e, f: text_cnn_score(e, f, w, ids), (E, filt), (E * 0.5, -filt))
    scalar_suite(lambda f: text_cnn_score(E, f, w, ids), filt, filt * 0.7, second=False)
    scalar_suite(lambda e: text_cnn_score(e, filt, w, ids), E, E + 0.2, second=False)
    # its Hessian in w is zero, in the filters piecewise zero
    np.testing.assert_array_equal(npfunc.hessian(lambda ww: text_cnn_score(E, filt, ww, ids))(w), np.zeros((4, 4)))
    Fs = np.stack([filt, -filt, filt * 2])
    assert_same(npfunc.vmap(text_cnn_score, in_dims=(None, 0, None, None))(E, Fs, w, ids),
                np.stack([text_cnn_score(E, f, w, ids) for f in Fs]))


def tfidf_cosine(counts, q):
    """TF-IDF vectors (smooth idf, as scikit-learn) and the cosine of each document with a query."""
    n = counts.shape[0]
    df = np.count_nonzero(counts, axis=0)
    idf = np.log((1 + n) / (1 + df)) + 1
    X = counts * idf
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    qv = q * idf
    qv = qv / np.linalg.norm(qv)
    return X @ qv


def test_tfidf_cosine_in_soft_counts():
    counts = np.array([[2.0, 0.0, 1.0, 0.0], [0.0, 3.0, 1.0, 1.0], [1.0, 1.0, 0.0, 4.0]])
    q = np.array([1.0, 0.0, 1.0, 0.5])
    assert_jit_replays(tfidf_cosine, (counts, q), (counts[::-1].copy(), q[::-1].copy()))
    J = npfunc.jacrev(tfidf_cosine, argnums=1)(counts, q)
    assert_deriv(J, fd(lambda v: tfidf_cosine(counts, v), q))
    scalar_suite(lambda v: tfidf_cosine(counts, v)[1], q, q + 1.0, batch=np.stack([q, q + 1]))
    Qs = np.stack([q, q * 2, q[::-1]])
    assert_same(npfunc.vmap(tfidf_cosine, in_dims=(None, 0))(counts, Qs), np.stack([tfidf_cosine(counts, v) for v in Qs]))


def bleu(hyp, ref, max_n=2):
    """Sentence BLEU with clipped n-gram precisions (np.unique counts) and the brevity penalty;
    the geometric mean of the precisions, add-one smoothed."""
    logp = []
    for n in range(1, max_n + 1):
        h = np.lib.stride_tricks.sliding_window_view(hyp, n)
        rf = np.lib.stride_tricks.sliding_window_view(ref, n)
        hu, hc = np.unique(h, axis=0, return_counts=True)
        ru, rc = np.unique(rf, axis=0, return_counts=True)
        match = 0
        for g, c in zip(hu, hc):
            hit = np.all(ru == g, axis=1)
            match += min(c, rc[hit].sum()) if hit.any() else 0
        logp.append(np.log((match + 1) / (len(h) + 1)))
    bp = np.exp(min(0.0, 1 - len(ref) / len(hyp)))
    return bp * np.exp(np.mean(logp))


def expected_bleu(logits, candidates, ref):
    """Minimum-risk training: the expected BLEU of candidates under softmax(logits)."""
    scores = np.array([bleu(c, ref) for c in candidates])
    return sps.softmax(logits) @ scores


def test_expected_bleu_risk():
    ref = np.array([1, 2, 3, 4, 2])
    cands = [np.array([1, 2, 3, 4]), np.array([2, 2, 3, 4, 2, 1]), np.array([4, 3, 2, 1])]
    lg = np.array([0.5, -0.2, 0.1])
    want = expected_bleu(lg, cands, ref)
    assert type(want) is np.float64
    assert_jit_replays(lambda v: expected_bleu(v, cands, ref), (lg,), (-lg,))
    scalar_suite(lambda v: expected_bleu(v, cands, ref), lg, lg * 3, batch=np.stack([lg, -lg]))


def sgd_step_in_place(E, ids, grad_rows, lr):
    """A sparse SGD step on an embedding table, in place (repeated ids accumulate)."""
    np.subtract.at(E, ids, lr * grad_rows)
    return np.sum(E ** 2)


def test_sparse_sgd_step_in_place_side_effects():
    r = np.random.default_rng(26)
    E0 = r.standard_normal((5, 2))
    ids = np.array([1, 3, 1])
    G = r.standard_normal((3, 2))
    E1 = E0.copy()
    want = sgd_step_in_place(E1, ids, G, 0.1)
    E2 = E0.copy()
    assert_same(npfunc.jit(sgd_step_in_place)(E2, ids, G, 0.1), want)
    np.testing.assert_array_equal(E2, E1)
    E3 = E0.copy()
    g = npfunc.grad(sgd_step_in_place, argnums=(0, 3))(E3, ids, G, 0.1)
    np.testing.assert_array_equal(E3, E1)  # the argument is updated as NumPy updates it
    assert_deriv(g[0], fd(lambda e: sgd_step_in_place(e, ids, G, 0.1), E0))
    assert_deriv(g[1], fd(lambda l: sgd_step_in_place(E0.copy(), ids, G, l[0]), np.array([0.1]))[0])
    # the learning rate as the only variable: the traced update goes into a plain table
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="add_at"):
        npfunc.grad(sgd_step_in_place, argnums=3)(E0.copy(), ids, G, 0.1)
    scalar1_suite(lambda l: sgd_step_in_place(np.array(E0, like=np.stack([l])), ids, G, l), 0.1, -0.5)


def log_expit_sgns_float32(v, U):
    """A float32 negative-sampling objective with scipy.special.log_expit (stable) and the
    np.log(expit) spelling."""
    s = U @ v
    return np.sum(sps.log_expit(s[:1])) + np.sum(np.log(sps.expit(-s[1:])))


def test_float32_skipgram_objective_dtypes():
    r = np.random.default_rng(27)
    v, U = r.standard_normal(3).astype(np.float32), r.standard_normal((4, 3)).astype(np.float32)
    want = log_expit_sgns_float32(v, U)
    assert type(want) is np.float32
    assert_jit_replays(log_expit_sgns_float32, (v, U), (v * 2, U[::-1].copy()), rtol=1e-6)
    g = npfunc.grad(log_expit_sgns_float32)(v, U)
    assert g.dtype == np.float32
    v64, U64 = v.astype(float), U.astype(float)
    np.testing.assert_allclose(g, fd(lambda x: log_expit_sgns_float32(x, U64), v64), rtol=1e-5)
    Vs = np.stack([v, -v])
    got = npfunc.vmap(log_expit_sgns_float32, in_dims=(0, None))(Vs, U)
    assert_same(got, np.stack([log_expit_sgns_float32(x, U) for x in Vs]), rtol=1e-6)
    assert npfunc.vmap(npfunc.grad(log_expit_sgns_float32), in_dims=(0, None))(Vs, U).dtype == np.float32
    scalar_suite(lambda x: log_expit_sgns_float32(x, U64), v64, -v64, batch=np.stack([v64, -v64]))


def fit_logreg_with_scipy(X, y, lam):
    """Fit by scipy.optimize.minimize with npfunc.grad as the Jacobian (npfunc outside the
    solver), the fitted weights returned."""
    import scipy.optimize
    loss = lambda w: bow_logreg_loss(w, 0.0, X, y, lam)
    res = scipy.optimize.minimize(loss, np.zeros(X.shape[1]), jac=npfunc.grad(loss), method="BFGS", tol=1e-12)
    return res.x


def test_scipy_minimize_with_npfunc_gradient_and_implicit_sensitivity():
    docs = [np.array([0, 1, 1, 3]), np.array([2, 2, 4]), np.array([0, 3, 3, 3, 1]), np.array([4, 2])]
    X = bow_features(docs, 5)
    y = np.array([1.0, -1.0, 1.0, -1.0])
    w = fit_logreg_with_scipy(X, y, 0.1)
    np.testing.assert_allclose(npfunc.grad(bow_logreg_loss)(w, 0.0, X, y, 0.1), 0.0, atol=1e-8)
    # d w*/d lam by the implicit function theorem: -H^{-1} d(grad)/d lam
    H = npfunc.hessian(bow_logreg_loss)(w, 0.0, X, y, 0.1)
    dg = npfunc.jacfwd(lambda l: npfunc.grad(bow_logreg_loss)(w, 0.0, X, y, l))(0.1)
    dw = -np.linalg.solve(H, dg)
    dw_fd = (fit_logreg_with_scipy(X, y, 0.1 + 1e-4) - fit_logreg_with_scipy(X, y, 0.1 - 1e-4)) / 2e-4
    np.testing.assert_allclose(dw, dw_fd, rtol=1e-4, atol=1e-6)


# ---- 14. a document-term matrix in scipy.sparse ------------------------------------------------------


def sparse_bow_loss(w, X, y):
    """Logistic loss over a CSR document-term matrix, as scikit-learn users write it."""
    return np.mean(np.logaddexp(0.0, -y * (X @ w)))


def test_sparse_document_term_matrix_refusals_name_the_dense_fix():
    """Regression: np.dot(X, w) and np.matmul(X, w) with a CSR matrix X and a traced w raised
    a raw ValueError from matmul (NumPy's 0-d object array of the matrix), np.add(X, w) a raw
    TypeError later, and X * w / X.multiply(w) (SciPy's code viewing the traced product with
    .view(np.ndarray)) a refusal about np.ma masks; all now name the sparse matrix and
    H.toarray()."""
    import scipy.sparse
    counts = np.array([[2.0, 0.0, 1.0, 0.0], [0.0, 3.0, 1.0, 1.0], [1.0, 1.0, 0.0, 4.0]])
    y = np.array([1.0, -1.0, 1.0])
    w = np.array([0.1, -0.2, 0.3, 0.05])
    for fmt in (scipy.sparse.csr_matrix, scipy.sparse.csr_array):
        X = fmt(counts)
        programs = [lambda v: sparse_bow_loss(v, X, y),
                    lambda v: np.sum(np.dot(X, v)),
                    lambda v: np.sum(np.matmul(X, v)),
                    lambda v: np.sum(np.add(X, v)),
                    lambda v: np.sum(X.multiply(v)),
                    lambda v: np.sum(v @ X.T)]
        if fmt is scipy.sparse.csr_array:
            programs.append(lambda v: np.sum(X * v))
        for prog in programs:
            for transform in (npfunc.grad, npfunc.jit):
                with pytest.raises(npfunc.errors.NpfuncError, match=r"scipy.sparse.*toarray\(\)"):
                    transform(prog)(w)
        with pytest.raises(npfunc.errors.NpfuncError, match=r"scipy.sparse.*toarray\(\)"):
            npfunc.vmap(lambda v: np.dot(X, v))(np.stack([w, w]))
    # the fix the messages name
    Xd = scipy.sparse.csr_array(counts).toarray()
    want = sparse_bow_loss(w, scipy.sparse.csr_array(counts), y)
    assert_jit_replays(lambda v: sparse_bow_loss(v, Xd, y), (w,), (-w,))
    assert_same(sparse_bow_loss(w, Xd, y), want)
    scalar_suite(lambda v: sparse_bow_loss(v, Xd, y), w, w * 3, batch=np.stack([w, -w]))
    # a sparse product of plain values beside traced ones is fine
    f = lambda v: np.sum((scipy.sparse.csr_array(counts).T @ y) * v)
    assert_same(npfunc.jit(f)(w), f(w))
    assert_deriv(npfunc.grad(f)(w), fd(f, w))


# ---- 15. checkpointed recurrences, linearize, out_dims ---------------------------------------------------


def gru_step(h, x, Wz, Wr, Wh):
    hx = np.concatenate([h, x])
    z = sps.expit(Wz @ hx)
    rr = sps.expit(Wr @ hx)
    hh = np.tanh(Wh @ np.concatenate([rr * h, x]))
    return (1 - z) * h + z * hh


def gru_encode(params, X, step=gru_step):
    h = np.zeros(params["Wz"].shape[0])
    for x in X:
        h = step(h, x, params["Wz"], params["Wr"], params["Wh"])
    return h


def test_gru_encoder_checkpointed_steps_and_linearize():
    r = np.random.default_rng(28)
    H, D = 3, 2
    P = {k: 0.5 * r.standard_normal((H, H + D)) for k in ("Wz", "Wr", "Wh")}
    X = r.standard_normal((5, D))
    loss = lambda p, step=gru_step: np.sum(gru_encode(p, X, step) ** 2)
    g_plain = npfunc.grad(loss)(P)
    g_ckpt = npfunc.grad(lambda p: loss(p, npfunc.checkpoint(gru_step)))(P)
    for k in P:
        np.testing.assert_allclose(g_ckpt[k], g_plain[k], rtol=1e-12, atol=1e-15)
        assert_deriv(g_plain[k], fd(lambda v: loss({**P, k: v}), P[k]))
    assert_jit_replays(lambda p: gru_encode(p, X), (P,), ({k: -v for k, v in P.items()},))
    # linearize in the inputs: the tangent map called repeatedly equals jvp
    out, jvp_fn = npfunc.linearize(lambda x: gru_encode(P, x), X)
    assert_same(out, gru_encode(P, X))
    for s in range(4):
        t = np.cos(np.arange(X.size) + s).reshape(X.shape)
        want = npfunc.jvp(lambda x: gru_encode(P, x), (X,), (t,))[1]
        np.testing.assert_allclose(jvp_fn(t), want, rtol=1e-12, atol=1e-15)
    # a batch of sequences, time-major (in_dims=1), the hidden states returned batch-last
    Xs = r.standard_normal((5, 4, D))
    got = npfunc.vmap(lambda x: gru_encode(P, x), in_dims=1, out_dims=1)(Xs)
    assert_same(got, np.stack([gru_encode(P, Xs[:, b]) for b in range(4)], axis=1))
    scalar_suite(lambda x: np.sum(gru_encode(P, x) ** 2), X, X * 0.5, second=False)


# ---- 16. negative sampling with a generator made inside the function ---------------------------------


def sgns_sampled_loss(v, U, k=3, seed=None):
    """Skip-gram negative sampling that draws its negatives itself (a fresh generator per call,
    seeded or from the operating system's entropy)."""
    rng = np.random.default_rng(seed)
    negs = rng.integers(1, U.shape[0], size=k)
    return -np.log(sps.expit(U[0] @ v)) - np.sum(np.log(sps.expit(-U[negs] @ v)))


def test_jit_refuses_a_generator_seeded_from_os_entropy_inside_the_function():
    """Regression: jit recorded np.random.default_rng()'s draws (a generator made during
    recording escaped the watch of live generators) and replayed them on every call, while each
    plain call draws new negatives: a silent difference. jit now refuses it
    (compiler/randomness.fresh_entropy); a seeded generator gives the plain function's draws."""
    r = np.random.default_rng(29)
    v, U = r.standard_normal(3), r.standard_normal((50, 3))
    with pytest.raises(npfunc.errors.RandomnessError, match=r"default_rng\(seed\)"):
        npfunc.jit(sgns_sampled_loss)(v, U)
    with pytest.raises(npfunc.errors.RandomnessError):
        npfunc.jit(lambda x: np.sum(x * np.random.RandomState().standard_normal(3)))(v)
    # seeded inside: every plain call repeats the draws, and so does jit's replay
    f = lambda x, u: sgns_sampled_loss(x, u, seed=7)
    assert_jit_replays(f, (v, U), (-v, U * 2), (v, U))
    scalar_suite(lambda x: f(x, U), v, v * 2)
    # the eager transforms run the function at each call: new draws each time, as NumPy
    g = npfunc.grad(sgns_sampled_loss)
    draws = {tuple(g(v, U)) for _ in range(6)}
    assert len(draws) > 1
