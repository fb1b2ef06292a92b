"""Natural ML / scientific programs that compose npfunc's transforms, each
checked against a reference computed WITHOUT the transforms: a Python loop
over the batch, central finite differences of the plain function, or a
hand-written derivative.

Programs (one test each unless noted):

1. per-sample gradients of an MLP classifier (params dict, int labels),
   vmap(grad) with in_dims=(None, 0, 0), jit of it, float32;
2. model ensembling: stack_module_state + vmap(functional_call), same and
   per-model minibatches, and per-model gradients;
3. MAML: grad through k inner SGD steps (grad of grad), vmapped over tasks,
   jitted;
4. Hessian-vector products: jvp(grad), vjp(grad), linearize(grad) on several
   tangents, hessian @ v, against a hand-written Hessian;
5. jacfwd(jacrev) / jacrev(jacfwd) / jacrev(jacrev) / jacfwd(jacfwd) /
   hessian, argnums tuples, against differences of a hand gradient;
6. vjp with dict / tuple inputs and outputs against a hand-written pullback;
7. grad with argnums tuples, has_aux, grad_and_value, int / bool / Python
   scalar arguments (a softmax regression);
8. vmap semantics: out_dims tuples, in_dims on the last axis, chunk_size,
   nested vmap(vmap) RBF kernel and its per-pair derivative, vmap over dicts;
9. dropout under vmap(grad): randomness='different' / 'same' against a loop
   that uses the masks a plain draw makes; 'same' with chunk_size;
10. float32 programs keep NumPy's dtypes under every transform;
11. complex parameters: grad of a real loss (torch's conjugate-Wirtinger
    convention) against differences in the real and imaginary directions;
12. custom_vjp log1pexp and custom_jvp clipped-derivative sqrt under vmap,
    jit and higher order;
13. checkpoint inside grad / hessian / vmap(grad) of a residual network;
14. jit(vmap(grad)), grad(jit(f)), vmap(jit(f)), jit(hessian) equal to the
    unjitted compositions;
15. autograd.functional jacobian / hessian / hvp / vhp with create_graph,
    strict, vectorize and strategy options, against hand results;
16. gradcheck passes a correct custom_vjp and fails a wrong one;
17. in-place normalisation of each example under vmap (argument write-back);
18. jvp tangents whose dtype does not match the primal.
"""
from __future__ import annotations

import numpy as np
import pytest

import npfunc
from npfunc import (checkpoint, custom_jvp, custom_vjp, functional_call, grad, grad_and_value, hessian,
                    jacfwd, jacrev, jit, jvp, linearize, nn, stack_module_state, vjp, vmap)
from npfunc.autograd import functional as AF
from npfunc.errors import NpfuncError
from npfunc.gradcheck import GradcheckError, gradcheck
from npfunc.nn import functional as F


# ---------------------------------------------------------------------------
# Reference helpers (no npfunc transforms)

def fd_grad(f, x, eps=1e-6):
    """Central differences of a real scalar function of one real array."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        out[idx] = (f(xp) - f(xm)) / (2 * eps)
    return out


def fd_grad_dict(f, params, eps=1e-6):
    out = {}
    for key in params:
        def fk(v, key=key):
            return f({**params, key: v})
        out[key] = fd_grad(fk, params[key], eps)
    return out


def fd_jac(f, x, eps=1e-6):
    """Jacobian out.shape + x.shape by central differences."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        cols.append((np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * eps))
    out_shape = np.shape(cols[0])
    return np.moveaxis(np.array(cols), 0, -1).reshape(out_shape + x.shape)


def fd_grad_complex(f, z, eps=1e-6):
    """dL/dRe z + 1j dL/dIm z by central differences (torch's convention)."""
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = eps
        out[idx] = (f(z + e) - f(z - e)) / (2 * eps) + 1j * (f(z + 1j * e) - f(z - 1j * e)) / (2 * eps)
    return out


def assert_tree_close(a, b, **kw):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            assert_tree_close(a[k], b[k], **kw)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_close(x, y, **kw)
    else:
        np.testing.assert_allclose(a, b, **kw)


# ---------------------------------------------------------------------------
# 1. Per-sample gradients of an MLP classifier

def _mlp_params(rng, sizes, dtype=np.float64):
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        p[f"W{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
        p[f"b{i}"] = (0.1 * rng.standard_normal(b)).astype(dtype)
    return p


def mlp_loss(p, x, y):
    """Cross-entropy of ONE example x (features,) with int label y."""
    h = np.tanh(x @ p["W0"] + p["b0"])
    logits = h @ p["W1"] + p["b1"]
    m = logits.max()
    return np.log(np.sum(np.exp(logits - m))) + m - logits[y]


def mlp_grad_by_hand(p, x, y):
    h = np.tanh(x @ p["W0"] + p["b0"])
    logits = h @ p["W1"] + p["b1"]
    s = np.exp(logits - logits.max())
    s /= s.sum()
    d = s - np.eye(len(s))[y]
    dh = (p["W1"] @ d) * (1 - h ** 2)
    return {"W0": np.outer(x, dh), "b0": dh, "W1": np.outer(h, d), "b1": d}


def test_per_sample_gradients_of_an_mlp_match_a_loop_and_differences():
    rng = np.random.default_rng(0)
    p = _mlp_params(rng, [4, 8, 3])
    X, Y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    per_sample = vmap(grad(mlp_loss), in_dims=(None, 0, 0))(p, X, Y)
    jitted = jit(vmap(grad(mlp_loss), in_dims=(None, 0, 0)))(p, X, Y)
    chunked = vmap(grad(mlp_loss), in_dims=(None, 0, 0), chunk_size=4)(p, X, Y)
    for i in range(len(X)):
        ref = mlp_grad_by_hand(p, X[i], Y[i])
        for k in p:
            assert per_sample[k].shape == (6,) + p[k].shape
            np.testing.assert_allclose(per_sample[k][i], ref[k], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(jitted[k][i], ref[k], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(chunked[k][i], ref[k], rtol=1e-12, atol=1e-14)
    # the hand gradient itself against differences, for one example
    fd = fd_grad_dict(lambda q: mlp_loss(q, X[2], Y[2]), p)
    assert_tree_close(mlp_grad_by_hand(p, X[2], Y[2]), fd, atol=1e-7)
    # mean of per-sample gradients == gradient of the mean loss
    g_mean = grad(lambda q: np.mean(np.stack([mlp_loss(q, x, y) for x, y in zip(X, Y)])))(p)
    assert_tree_close({k: v.mean(0) for k, v in per_sample.items()}, g_mean, rtol=1e-12, atol=1e-14)
    # float32 stays float32
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    g32 = vmap(grad(mlp_loss), in_dims=(None, 0, 0))(p32, X.astype(np.float32), Y)
    assert all(v.dtype == np.float32 for v in g32.values())
    assert_tree_close({k: v[0] for k, v in g32.items()}, mlp_grad_by_hand(p, X[0], Y[0]), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# 2. Ensembles with stack_module_state

def test_model_ensemble_matches_a_loop_over_models():
    models = [nn.Sequential(nn.Linear(5, 7, rng=i), nn.GELU(), nn.Linear(7, 2, rng=100 + i)) for i in range(4)]
    params, buffers = stack_module_state(models)
    base = models[0]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 5))
    xs = rng.standard_normal((4, 9, 5))
    y = rng.integers(0, 2, 9)

    def fmodel(p, b, x):
        return functional_call(base, (p, b), (x,))

    same = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, x)
    own = vmap(fmodel)(params, buffers, xs)
    np.testing.assert_allclose(same, np.stack([m(x) for m in models]), rtol=1e-13)
    np.testing.assert_allclose(own, np.stack([m(xx) for m, xx in zip(models, xs)]), rtol=1e-13)
    # the base model is restored after functional_call under vmap
    np.testing.assert_array_equal(base(x), models[0](x))

    def loss(p, b, x):
        return F.cross_entropy(fmodel(p, b, x), y)

    g = vmap(grad(loss), in_dims=(0, 0, None))(params, buffers, x)
    for i, m in enumerate(models):
        own_params = dict(m.named_parameters())
        ref = fd_grad_dict(lambda q: F.cross_entropy(functional_call(m, q, (x,)), y), own_params)
        assert_tree_close({k: v[i] for k, v in g.items()}, ref, atol=1e-7)


# ---------------------------------------------------------------------------
# 3. MAML: the gradient of the loss after k inner SGD steps

def _sine_net(p, x):
    return np.tanh(x @ p["w"] + p["b"]) @ p["v"] + p["c"]


def _mse(p, x, y):
    return np.mean((_sine_net(p, x) - y) ** 2)


def _adapt(p, x, y, steps=3, lr=0.1):
    for _ in range(steps):
        g = grad(_mse)(p, x, y)
        p = {n: p[n] - lr * g[n] for n in p}
    return p


def maml_objective(p, xs, ys, xq, yq):
    return _mse(_adapt(p, xs, ys), xq, yq)


def test_maml_meta_gradient_through_inner_sgd_steps():
    rng = np.random.default_rng(2)
    p = {"w": 0.5 * rng.standard_normal((1, 12)), "b": np.zeros(12),
         "v": 0.3 * rng.standard_normal((12, 1)), "c": np.zeros(1)}
    T = 3
    XS, XQ = rng.uniform(-5, 5, (T, 8, 1)), rng.uniform(-5, 5, (T, 8, 1))
    phase = rng.uniform(0, np.pi, (T, 1, 1))
    YS, YQ = np.sin(XS + phase), np.sin(XQ + phase)
    meta = grad(maml_objective)(p, XS[0], YS[0], XQ[0], YQ[0])
    # the plain function (the inner npfunc.grad runs un-nested) differentiated numerically
    ref = fd_grad_dict(lambda q: maml_objective(q, XS[0], YS[0], XQ[0], YQ[0]), p)
    assert_tree_close(meta, ref, atol=2e-8, rtol=1e-6)
    per_task = vmap(grad(maml_objective), in_dims=(None, 0, 0, 0, 0))(p, XS, YS, XQ, YQ)
    jitted = jit(vmap(grad(maml_objective), in_dims=(None, 0, 0, 0, 0)))(p, XS, YS, XQ, YQ)
    for t in range(T):
        loop = grad(maml_objective)(p, XS[t], YS[t], XQ[t], YQ[t])
        assert_tree_close({k: v[t] for k, v in per_task.items()}, loop, rtol=1e-11, atol=1e-13)
        assert_tree_close({k: v[t] for k, v in jitted.items()}, loop, rtol=1e-11, atol=1e-13)
    # first-order MAML (stop_gradient on the inner gradient) differs: the second-order term is there
    fo = grad(lambda q: _mse({n: q[n] - 0.1 * npfunc.stop_gradient(grad(_mse)(q, XS[0], YS[0])[n]) for n in q},
                             XQ[0], YQ[0]))(p)
    assert not np.allclose(fo["w"], meta["w"], rtol=1e-3)


# ---------------------------------------------------------------------------
# 4, 5. Hessian-vector products and the four spellings of a Hessian

_A = np.array([[0.8, -0.3, 0.5, 0.1, 0.0],
               [0.2, 0.9, -0.4, 0.3, 0.5],
               [-0.6, 0.1, 0.7, -0.2, 0.4],
               [0.3, 0.3, 0.2, 1.1, -0.5],
               [0.0, -0.7, 0.1, 0.4, 0.6]])


def energy(x):
    """softplus(A x) summed + quartic + a product term: a dense Hessian."""
    return np.sum(np.logaddexp(0.0, _A @ x)) + 0.25 * np.sum(x ** 4) + np.prod(np.cos(x[:3]))


def energy_grad_by_hand(x):
    s = 1 / (1 + np.exp(-(_A @ x)))
    c, sn = np.cos(x[:3]), np.sin(x[:3])
    gp = np.zeros_like(x)
    for i in range(3):
        gp[i] = -sn[i] * np.prod(np.delete(c, i))
    return _A.T @ s + x ** 3 + gp


def energy_hessian_by_hand(x):
    s = 1 / (1 + np.exp(-(_A @ x)))
    H = _A.T @ np.diag(s * (1 - s)) @ _A + np.diag(3 * x ** 2)
    c, sn = np.cos(x[:3]), np.sin(x[:3])
    P = np.prod(c)
    for i in range(3):
        for j in range(3):
            if i == j:
                H[i, i] += -P
            else:
                k = 3 - i - j
                H[i, j] += sn[i] * sn[j] * c[k]
    return H


def test_hessian_vector_products_agree_with_the_hessian():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5)
    H = energy_hessian_by_hand(x)
    np.testing.assert_allclose(grad(energy)(x), energy_grad_by_hand(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fd_jac(energy_grad_by_hand, x), H, atol=1e-7)
    np.testing.assert_allclose(hessian(energy)(x), H, rtol=1e-12, atol=1e-13)
    _, lin = linearize(grad(energy), x)
    _, pull = vjp(grad(energy), x)
    V = rng.standard_normal((4, 5))
    for v in V:
        np.testing.assert_allclose(jvp(grad(energy), (x,), (v,))[1], H @ v, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(lin(v), H @ v, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(pull(v)[0], v @ H, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(vmap(lin)(V), V @ H.T, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(vmap(lambda v: jvp(grad(energy), (x,), (v,))[1])(V), V @ H.T, rtol=1e-11, atol=1e-13)
    # a batch of points, one HVP each
    Xs = rng.standard_normal((3, 5))
    hv = vmap(lambda x, v: jvp(grad(energy), (x,), (v,))[1])(Xs, V[:3])
    for i in range(3):
        np.testing.assert_allclose(hv[i], energy_hessian_by_hand(Xs[i]) @ V[i], rtol=1e-11, atol=1e-13)


def test_four_spellings_of_the_hessian_and_argnums_tuples():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(5)
    H = energy_hessian_by_hand(x)
    for spelling in (jacfwd(jacrev(energy)), jacrev(jacfwd(energy)), jacrev(jacrev(energy)),
                     jacfwd(jacfwd(energy)), hessian(energy), jit(hessian(energy))):
        np.testing.assert_allclose(spelling(x), H, rtol=1e-11, atol=1e-13)

    def g(a, b):            # hand Hessian blocks below
        return np.sum(a ** 2 * b[0]) + np.sin(b[1]) * a[0] + a[1] * b[0] * b[1]
    a, b = np.array([1.0, 2.0]), np.array([0.5, 0.3])
    Haa = np.diag([2 * b[0], 2 * b[0]])
    Hab = np.array([[2 * a[0], np.cos(b[1])], [2 * a[1] + b[1], b[0]]])
    Hbb = np.array([[0.0, a[1]], [a[1], -np.sin(b[1]) * a[0]]])
    want = ((Haa, Hab), (Hab.T, Hbb))
    for spelling in (hessian(g, argnums=(0, 1)), jacfwd(jacrev(g, argnums=(0, 1)), argnums=(0, 1)),
                     jacrev(jacrev(g, argnums=(0, 1)), argnums=(0, 1))):
        assert_tree_close(spelling(a, b), want, rtol=1e-12, atol=1e-14)
    # argnums=1 only
    np.testing.assert_allclose(hessian(g, argnums=1)(a, b), Hbb, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# 6. vjp with pytree inputs and outputs

def test_vjp_with_dict_and_tuple_inputs_and_outputs():
    rng = np.random.default_rng(5)

    def f(params, xy):
        x, y = xy
        r = params["a"] * x + params["B"] @ y
        return {"r": r, "pair": (np.sum(r ** 2), x * y[0])}

    params = {"a": np.float64(1.5), "B": rng.standard_normal((3, 3))}
    xy = (rng.standard_normal(3), rng.standard_normal(3))
    out, pull = vjp(f, params, xy)
    assert_tree_close(out, f(params, xy), rtol=0, atol=0)
    cts = [{"r": rng.standard_normal(3), "pair": (np.float64(rng.standard_normal()), rng.standard_normal(3))}
           for _ in range(3)]
    for ct in cts:
        gp, gxy = pull(ct)
        x, y = xy
        a, B = params["a"], params["B"]
        r = a * x + B @ y
        cr = ct["r"] + 2 * r * ct["pair"][0]
        gy = B.T @ cr
        gy[0] += ct["pair"][1] @ x
        want = ({"a": cr @ x, "B": np.outer(cr, y)}, (a * cr + ct["pair"][1] * y[0], gy))
        assert isinstance(gxy, tuple)
        assert_tree_close((gp, gxy), want, rtol=1e-12, atol=1e-14)
    # a batch of cotangents through vmap(pull)
    stacked = {"r": np.stack([c["r"] for c in cts]),
               "pair": (np.stack([c["pair"][0] for c in cts]), np.stack([c["pair"][1] for c in cts]))}
    gp_b, gxy_b = vmap(pull)(stacked)
    for i, ct in enumerate(cts):
        gp, gxy = pull(ct)
        assert_tree_close(({k: v[i] for k, v in gp_b.items()}, (gxy_b[0][i], gxy_b[1][i])), (gp, gxy),
                          rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# 7. grad with argnums tuples, has_aux, int / bool / Python scalar arguments

def softmax_regression(w, b, x, y, reg, n_classes, use_bias):
    logits = x @ w + (b if use_bias else 0.0)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.arange(n_classes) == y[:, None]
    loss = -np.mean(np.sum(onehot * np.log(p), -1)) + reg * np.sum(w ** 2)
    return loss, {"acc": np.mean(np.argmax(p, -1) == y), "probs": p}


def test_grad_argnums_has_aux_and_non_array_arguments():
    rng = np.random.default_rng(6)
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    X, Y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    args = (w, b, X, Y, 0.01, 3, True)
    loss0, aux0 = softmax_regression(*args)
    P, onehot = aux0["probs"], np.eye(3)[Y]
    gw_ref, gb_ref = X.T @ (P - onehot) / 7 + 0.02 * w, (P - onehot).mean(0)

    (gw, gb), aux = grad(softmax_regression, argnums=(0, 1), has_aux=True)(*args)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, gb_ref, rtol=1e-12, atol=1e-14)
    assert aux["acc"] == aux0["acc"]
    np.testing.assert_allclose(aux["probs"], P, rtol=0, atol=0)
    (gw2,), (value, aux2) = grad_and_value(softmax_regression, argnums=(0,), has_aux=True)(*args)
    np.testing.assert_allclose(gw2, gw_ref, rtol=1e-12, atol=1e-14)
    assert value == loss0 and aux2["acc"] == aux0["acc"]
    # the Python-scalar regulariser as the differentiated argument
    greg, _ = grad(softmax_regression, argnums=4, has_aux=True)(*args)
    np.testing.assert_allclose(greg, np.sum(w ** 2), rtol=1e-12)
    # use_bias=False: the bias gets a zero gradient
    (_, gb_off), _ = grad(softmax_regression, argnums=(0, 1), has_aux=True)(w, b, X, Y, 0.01, 3, False)
    np.testing.assert_array_equal(gb_off, np.zeros(3))
    # int labels and the bool flag under vmap (per-example gradients over a batch of minibatches)
    Xb, Yb = rng.standard_normal((2, 7, 4)), rng.integers(0, 3, (2, 7))
    gwb, auxb = vmap(grad(softmax_regression, has_aux=True), in_dims=(None, None, 0, 0, None, None, None))(
        w, b, Xb, Yb, 0.01, 3, True)
    for i in range(2):
        _, a_i = softmax_regression(w, b, Xb[i], Yb[i], 0.01, 3, True)
        Pi, oi = a_i["probs"], np.eye(3)[Yb[i]]
        np.testing.assert_allclose(gwb[i], Xb[i].T @ (Pi - oi) / 7 + 0.02 * w, rtol=1e-12, atol=1e-14)
        assert auxb["acc"][i] == a_i["acc"]
    # the one-hot spelled as a row lookup in np.eye(3) made in the function: a traced index reads a
    # traced copy of its values (npfunc.core.pending), so per-example gradients match the loop
    def onehot_lookup(w, x, y):
        return np.sum((x @ w) * np.eye(3)[y])
    per = vmap(grad(onehot_lookup), in_dims=(None, 0, 0))(w, X, Y)
    np.testing.assert_allclose(per, np.stack([grad(onehot_lookup)(w, x, y) for x, y in zip(X, Y)]),
                               rtol=1e-12, atol=1e-15)
    # differentiating an int argument is refused, naming the argument
    with pytest.raises(NpfuncError, match="argument 3"):
        grad(softmax_regression, argnums=(0, 3), has_aux=True)(*args)


# ---------------------------------------------------------------------------
# 8. vmap semantics: out_dims, in_dims on the last axis, nested maps, dicts

def rbf(x, y, ls):
    return np.exp(-np.sum((x - y) ** 2) / (2 * ls ** 2))


def test_vmap_axes_nested_kernels_and_dicts():
    rng = np.random.default_rng(7)

    def centre(x):                       # ONE example (features,)
        m = x.mean()
        return m, x - m, np.float64(3.0)

    X = rng.standard_normal((4, 6))      # 6 examples stored as columns
    for cs in (None, 4):
        m, c, k = vmap(centre, in_dims=-1, out_dims=(0, 1, None), chunk_size=cs)(X)
        np.testing.assert_allclose(m, [X[:, j].mean() for j in range(6)], rtol=1e-14)
        np.testing.assert_allclose(c, np.stack([X[:, j] - X[:, j].mean() for j in range(6)], 1), rtol=1e-14)
        assert k == 3.0 and np.shape(k) == ()

    A, B = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    pairwise = vmap(vmap(rbf, in_dims=(None, 0, None)), in_dims=(0, None, None))
    K = pairwise(A, B, 0.7)
    np.testing.assert_allclose(K, [[rbf(a, b, 0.7) for b in B] for a in A], rtol=1e-14)
    dK = vmap(vmap(grad(rbf, argnums=2), in_dims=(None, 0, None)), in_dims=(0, None, None))(A, B, 0.7)
    np.testing.assert_allclose(dK, [[rbf(a, b, 0.7) * np.sum((a - b) ** 2) / 0.7 ** 3 for b in B] for a in A],
                               rtol=1e-12)
    # the same kernel with the inner map over the LAST axis of a transposed B
    K2 = vmap(vmap(rbf, in_dims=(None, 1, None)), in_dims=(0, None, None))(A, B.T, 0.7)
    np.testing.assert_allclose(K2, K, rtol=1e-14)
    # out_dims=1 from the inner map: the transposed kernel
    Kt = vmap(vmap(rbf, in_dims=(None, 0, None)), in_dims=(0, None, None), out_dims=1)(A, B, 0.7)
    np.testing.assert_allclose(Kt, K.T, rtol=1e-14)

    def affine(p, x):
        return p["W"] @ x + p["b"]
    P = {"W": rng.standard_normal((3, 2, 4)), "b": rng.standard_normal(2)}
    xx = rng.standard_normal((4, 3))                   # 3 inputs as columns
    out = vmap(affine, in_dims=({"W": 0, "b": None}, 1))(P, xx)
    np.testing.assert_allclose(out, [P["W"][i] @ xx[:, i] + P["b"] for i in range(3)], rtol=1e-14)
    o = vmap(lambda p: {"s": p["W"].sum(), "t": p["W"] * 2}, in_dims=({"W": 0, "b": None},),
             out_dims={"s": 0, "t": 2})(P)
    np.testing.assert_allclose(o["s"], P["W"].sum((1, 2)), rtol=1e-14)
    np.testing.assert_allclose(o["t"], np.moveaxis(P["W"] * 2, 0, 2), rtol=0)
    # out_dims=None for an output that varies refuses
    with pytest.raises(NpfuncError, match="out_dims"):
        vmap(lambda r: r * 2, out_dims=None)(X)


# ---------------------------------------------------------------------------
# 9. Dropout under vmap(grad) and randomness

def _dropout_net(seed):
    return nn.Sequential(nn.Linear(4, 6, rng=0), nn.Tanh(), nn.Dropout(0.5, rng=seed), nn.Linear(6, 1, rng=1))


def test_per_sample_gradients_with_dropout_follow_randomness():
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((5, 4)), rng.standard_normal(5)
    net = _dropout_net(11)
    params = dict(net.named_parameters())
    lin0, lin1 = net[0], net[3]

    def sample_loss(p, x, y):
        out = functional_call(net, p, (x[None],))
        return np.sum((out[:, 0] - y) ** 2)

    def loss_with_mask(p, x, y, mask):          # the same network, mask applied by hand
        h = np.tanh(x @ p["0.weight"].T + p["0.bias"]) * mask
        return np.sum((h @ p["3.weight"].T + p["3.bias"] - y) ** 2)

    assert lin0 is net[0] and lin1 is net[3]
    # "different": one vectorised draw of the batched shape (B, 1, 6), as a plain call on a batch draws it
    masks = nn.Dropout(0.5, rng=11)(np.ones((5, 1, 6)))[:, 0]
    g = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="different")(params, X, Y)
    for i in range(5):
        ref = fd_grad_dict(lambda q: loss_with_mask(q, X[i], Y[i], masks[i]), params)
        assert_tree_close({k: v[i] for k, v in g.items()}, ref, atol=1e-7)
    assert len({tuple(m) for m in masks}) > 1
    # "same": one mask for the batch, the one an unbatched call draws
    net2 = _dropout_net(11)
    mask = nn.Dropout(0.5, rng=11)(np.ones((1, 6)))[0]
    g = vmap(grad(lambda p, x, y: np.sum((functional_call(net2, p, (x[None],))[:, 0] - y) ** 2)),
             in_dims=(None, 0, 0), randomness="same")(params, X, Y)
    for i in range(5):
        ref = fd_grad_dict(lambda q: loss_with_mask(q, X[i], Y[i], mask), params)
        assert_tree_close({k: v[i] for k, v in g.items()}, ref, atol=1e-7)
    # the default refuses, naming randomness
    with pytest.raises(NpfuncError, match="randomness"):
        vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, Y)
    # eval(): no randomness needed, and no mask
    net.eval()
    g_eval = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, Y)
    ref = fd_grad_dict(lambda q: loss_with_mask(q, X[0], Y[0], 1.0), params)
    assert_tree_close({k: v[0] for k, v in g_eval.items()}, ref, atol=1e-7)


def test_randomness_same_is_one_draw_for_the_whole_batch_even_when_chunked():
    """vmap(randomness='same') promises one value shared by the whole batch;
    chunk_size only bounds memory (torch.func.vmap restores the RNG state for
    every chunk under 'same').  npfunc draws once per chunk instead."""
    x = np.zeros((5, 2))
    rng = npfunc.random.default_rng(0)
    unchunked = vmap(lambda r: r + rng.normal(size=2), randomness="same")(x)
    assert (unchunked == unchunked[0]).all()
    rng = npfunc.random.default_rng(0)
    chunked = vmap(lambda r: r + rng.normal(size=2), randomness="same", chunk_size=2)(x)
    assert (chunked == chunked[0]).all(), f"rows differ between chunks:\n{chunked}"
    np.testing.assert_array_equal(chunked, unchunked)


def test_dropout_ensemble_with_randomness_same_and_chunk_size():
    """The same promise through nn.Dropout: an ensemble evaluated with one shared
    dropout mask gives the same outputs whatever chunk_size is."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4))
    models = [_dropout_net(5) for _ in range(4)]
    for i, m in enumerate(models):
        m[0].weight[...] += 0.1 * i
    params, buffers = stack_module_state(models)

    def run(cs):
        base = _dropout_net(5)
        return vmap(lambda p, b: functional_call(base, (p, b), (x,)), randomness="same", chunk_size=cs)(
            params, buffers)
    np.testing.assert_array_equal(run(2), run(None))


# ---------------------------------------------------------------------------
# 10. float32 keeps NumPy's dtypes

@pytest.mark.parametrize("name", ["tanh_mse", "logsumexp", "norm", "where_leaky"])
def test_float32_programs_keep_float32(name):
    f = {
        "tanh_mse": lambda w, x: np.mean((np.tanh(x @ w) - 0.5) ** 2),
        "logsumexp": lambda w, x: np.log(np.sum(np.exp(x @ w))),
        "norm": lambda w, x: np.linalg.norm(x @ w) / 3,
        "where_leaky": lambda w, x: np.sum(np.where(x @ w > 0, x @ w, 0.01 * (x @ w)) ** 2),
    }[name]
    rng = np.random.default_rng(10)
    w = rng.standard_normal(3).astype(np.float32)
    X = rng.standard_normal((4, 5, 3)).astype(np.float32)
    plain = f(w, X[0])
    assert np.asarray(plain).dtype == np.float32
    results = {
        "grad": grad(f)(w, X[0]),
        "grad_and_value.value": grad_and_value(f)(w, X[0])[1],
        "vmap": vmap(f, in_dims=(None, 0))(w, X),
        "vmap(grad)": vmap(grad(f), in_dims=(None, 0))(w, X),
        "jit(vmap(grad))": jit(vmap(grad(f), in_dims=(None, 0)))(w, X),
        "jvp.tangent": jvp(lambda v: f(v, X[0]), (w,), (np.ones(3, np.float32),))[1],
        "hessian": hessian(f)(w, X[0]),
        "jacrev": jacrev(f)(w, X[0]),
        "jacfwd": jacfwd(f)(w, X[0]),
        "vjp": vjp(lambda v: f(v, X[0]), w)[1](np.float32(1.0))[0],
    }
    wrong = {k: np.asarray(v).dtype for k, v in results.items() if np.asarray(v).dtype != np.float32}
    assert not wrong, wrong
    g64 = fd_grad(lambda v: f(v, X[0].astype(np.float64)), w.astype(np.float64))
    np.testing.assert_allclose(results["grad"], g64, rtol=2e-3, atol=2e-4)


# ---------------------------------------------------------------------------
# 11. Complex parameters

def test_gradient_of_a_real_loss_of_complex_parameters():
    rng = np.random.default_rng(12)
    A = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    b = rng.standard_normal(5) + 1j * rng.standard_normal(5)

    def least_squares(z):
        r = A @ z - b
        return np.real(np.vdot(r, r))

    target = np.abs(A @ (rng.standard_normal(3) + 1j * rng.standard_normal(3))) ** 2

    def phase_retrieval(z):
        return np.sum((np.abs(A @ z) ** 2 - target) ** 2)

    def spectral(z):
        return np.sum(np.abs(np.fft.fft(z)) * np.arange(3)) + np.sum(np.angle(z) ** 2)

    z = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    Z = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    np.testing.assert_allclose(grad(least_squares)(z), 2 * A.conj().T @ (A @ z - b), rtol=1e-12)
    for L in (least_squares, phase_retrieval, spectral):
        g = grad(L)(z)
        assert g.dtype == np.complex128
        np.testing.assert_allclose(g, fd_grad_complex(L, z), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(jit(grad(L))(z), g, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(grad(jit(L))(z), g, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(vmap(grad(L))(Z), [fd_grad_complex(L, zz) for zz in Z], rtol=1e-6, atol=1e-6)
        # the directional derivative along a complex tangent t is Re(conj(g) . t)
        t = rng.standard_normal(3) + 1j * rng.standard_normal(3)
        np.testing.assert_allclose(jvp(L, (z,), (t,))[1], np.real(np.vdot(g, t)), rtol=1e-10)
        # gradient descent on complex parameters decreases the loss
        assert L(z - 1e-4 * g) < L(z)
    # complex64 in, complex64 gradient out
    z64, A64, b64 = z.astype(np.complex64), A.astype(np.complex64), b.astype(np.complex64)
    g64 = grad(lambda v: np.real(np.vdot(A64 @ v - b64, A64 @ v - b64)))(z64)
    assert g64.dtype == np.complex64
    np.testing.assert_allclose(g64, 2 * A.conj().T @ (A @ z - b), rtol=1e-4)


# ---------------------------------------------------------------------------
# 12. custom_vjp / custom_jvp under vmap, jit and higher order

@custom_vjp
def log1pexp(x):
    return np.logaddexp(0.0, x)


def _log1pexp_fwd(x):
    return np.logaddexp(0.0, x), x


def _log1pexp_bwd(x, g):
    return (g * np.exp(-np.logaddexp(0.0, -x)),)   # sigmoid(x), stable


log1pexp.defvjp(_log1pexp_fwd, _log1pexp_bwd)


@custom_jvp
def safe_sqrt(x):
    return np.sqrt(x)


@safe_sqrt.defjvp
def _safe_sqrt_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = np.sqrt(x)
    return y, t * np.minimum(0.5 / np.maximum(y, 1e-300), 1e3)   # derivative clipped at 1000


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def test_custom_rules_under_vmap_jit_and_second_order():
    xs = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    want = _sigmoid(xs)
    for spelling in (vmap(grad(log1pexp)), jit(vmap(grad(log1pexp))), vmap(jit(grad(log1pexp))),
                     grad(jit(lambda x: np.sum(log1pexp(x)))), lambda x: np.diag(jacrev(log1pexp)(x)),
                     lambda x: np.diag(jacfwd(log1pexp)(x)), lambda x: jvp(log1pexp, (x,), (np.ones(5),))[1]):
        got = spelling(xs)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
    # the bwd rule is differentiated for the second derivative
    np.testing.assert_allclose(vmap(grad(grad(log1pexp)))(xs), want * (1 - want), rtol=1e-12, atol=1e-300)
    # per-sample logistic-regression gradients with huge margins stay finite and exact
    rng = np.random.default_rng(13)
    X, y = 100 * rng.standard_normal((6, 3)), rng.integers(0, 2, 6).astype(float)
    w = np.array([0.1, -0.2, 0.3])

    def nll(w, x, y):
        z = x @ w
        return log1pexp(z) - y * z
    ps = vmap(grad(nll), in_dims=(None, 0, 0))(w, X, y)
    np.testing.assert_allclose(ps, [(_sigmoid(x @ w) - yy) * x for x, yy in zip(X, y)], rtol=1e-12)

    s = np.array([0.0, 1e-12, 0.25, 4.0])
    clipped = np.minimum(0.5 / np.maximum(np.sqrt(s), 1e-300), 1e3)
    for spelling in (vmap(grad(safe_sqrt)), jit(vmap(grad(safe_sqrt))), vmap(jit(grad(safe_sqrt))),
                     grad(lambda v: np.sum(safe_sqrt(v))), grad(jit(lambda v: np.sum(safe_sqrt(v)))),
                     lambda v: np.diag(jacfwd(safe_sqrt)(v)), lambda v: np.diag(jacrev(safe_sqrt)(v))):
        np.testing.assert_allclose(spelling(s), clipped, rtol=1e-15)
    np.testing.assert_allclose(grad(grad(safe_sqrt))(4.0), -0.25 * 4.0 ** -1.5, rtol=1e-14)
    np.testing.assert_allclose(safe_sqrt(s), np.sqrt(s), rtol=0)


# ---------------------------------------------------------------------------
# 13. checkpoint inside grad

def _block(h, W):
    return h + 0.1 * np.tanh(h @ W)


def resnet_loss(W, x, block):
    h = x
    for _ in range(8):
        h = block(h, W)
    return np.sum(h ** 2)


def test_checkpointed_residual_network_has_the_same_derivatives():
    rng = np.random.default_rng(14)
    W, x = 0.5 * rng.standard_normal((4, 4)), rng.standard_normal((3, 4))
    ck = checkpoint(_block)
    ref = fd_grad(lambda V: resnet_loss(V, x, _block), W)
    g = grad(resnet_loss)(W, x, ck)
    np.testing.assert_allclose(g, ref, atol=1e-7)
    np.testing.assert_allclose(g, grad(resnet_loss)(W, x, _block), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(hessian(resnet_loss)(W, x, ck), hessian(resnet_loss)(W, x, _block),
                               rtol=1e-12, atol=1e-13)
    gg = grad(lambda V: np.sum(grad(resnet_loss)(V, x, ck) ** 2))(W)
    np.testing.assert_allclose(gg, fd_grad(lambda V: np.sum(grad(resnet_loss)(V, x, _block) ** 2), W),
                               atol=1e-6, rtol=1e-6)
    X = rng.standard_normal((5, 3, 4))
    vg = vmap(grad(resnet_loss), in_dims=(None, 0, None))(W, X, ck)
    for i in range(5):
        np.testing.assert_allclose(vg[i], grad(resnet_loss)(W, X[i], _block), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jit(grad(resnet_loss), static_argnums=2)(W, x, ck), g, rtol=1e-12, atol=1e-14)
    # NumPy's global random state is restored for the recomputation
    def noisy_block(h, W):
        keep = np.random.rand(*h.shape) < 0.8
        return h + 0.1 * np.tanh(h @ W) * keep
    np.random.seed(1)
    g_ck = grad(resnet_loss)(W, x, checkpoint(noisy_block))
    np.random.seed(1)
    g_plain = grad(resnet_loss)(W, x, noisy_block)
    np.testing.assert_allclose(g_ck, g_plain, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------------------
# 14. jit compositions equal the unjitted ones

def ridge_tanh(w, x, y, lam):
    r = np.tanh(x @ w) - y
    return np.mean(r ** 2) + lam * np.sum(w ** 2)


def test_jit_compositions_equal_the_plain_compositions():
    rng = np.random.default_rng(15)
    w, X, Y = rng.standard_normal(3), rng.standard_normal((8, 3)), rng.standard_normal(8)

    def by_hand(w, x, y, lam):
        t = np.tanh(x @ w)
        return 2 * (t - y) * (1 - t ** 2) * x + 2 * lam * w

    pg = vmap(grad(ridge_tanh), in_dims=(None, 0, 0, None))
    jpg = jit(pg)
    jl = jit(ridge_tanh)
    for lam in (0.1, 0.2, np.float64(0.3)):
        ref = np.stack([by_hand(w, x, y, lam) for x, y in zip(X, Y)])
        np.testing.assert_allclose(pg(w, X, Y, lam), ref, rtol=1e-12)
        np.testing.assert_allclose(jpg(w, X, Y, lam), ref, rtol=1e-12)
        np.testing.assert_allclose(vmap(grad(jl), in_dims=(None, 0, 0, None))(w, X, Y, lam), ref, rtol=1e-12)
        np.testing.assert_allclose(vmap(jl, in_dims=(None, 0, 0, None))(w, X, Y, lam),
                                   [ridge_tanh(w, x, y, lam) for x, y in zip(X, Y)], rtol=1e-14)
    # non-contiguous arguments give the same results
    for Xv in (np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2]):
        np.testing.assert_allclose(jpg(w, Xv, Y, 0.1), pg(w, X, Y, 0.1), rtol=1e-14)
    # differentiate the jitted function with respect to the regulariser (a traced scalar)
    np.testing.assert_allclose(grad(jl, argnums=3)(w, X, Y, np.float64(0.1)), np.sum(w ** 2), rtol=1e-14)
    np.testing.assert_allclose(hessian(jl)(w, X, Y, 0.1), hessian(ridge_tanh)(w, X, Y, 0.1), rtol=1e-12)
    np.testing.assert_allclose(jit(hessian(ridge_tanh))(w, X, Y, 0.1), hessian(ridge_tanh)(w, X, Y, 0.1),
                               rtol=1e-12)
    np.testing.assert_allclose(hessian(ridge_tanh)(w, X, Y, 0.1),
                               fd_jac(lambda v: grad(ridge_tanh)(v, X, Y, 0.1), w), atol=1e-7)


# ---------------------------------------------------------------------------
# 15. autograd.functional against torch's documented semantics

_M = np.array([[0.5, -1.0, 0.2], [0.3, 0.8, -0.6], [1.1, 0.0, 0.4]])


def two_input_energy(x, y):
    return np.sum(np.sin(x) * (_M @ y)) + np.sum(x ** 2 * y ** 3)


def two_input_hessian(x, y):
    Hxx = np.diag(-np.sin(x) * (_M @ y) + 2 * y ** 3)
    Hxy = np.cos(x)[:, None] * _M + np.diag(6 * x * y ** 2)
    Hyy = np.diag(6 * x ** 2 * y)
    return ((Hxx, Hxy), (Hxy.T, Hyy))


def test_autograd_functional_options_follow_torch():
    rng = np.random.default_rng(16)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    Hr = two_input_hessian(x, y)
    for vec, strat in ((False, "reverse-mode"), (True, "reverse-mode"), (True, "forward-mode")):
        H = AF.hessian(two_input_energy, (x, y), vectorize=vec, outer_jacobian_strategy=strat)
        assert isinstance(H, tuple) and isinstance(H[0], tuple)
        assert_tree_close(H, Hr, rtol=1e-12, atol=1e-14)
        J = AF.jacobian(lambda a, b: (a * b, np.exp(b).sum()), (x, y), vectorize=vec, strategy=strat)
        assert_tree_close(J, ((np.diag(y), np.diag(x)), (np.zeros(3), np.exp(y))), rtol=1e-13)
    v = (rng.standard_normal(3), rng.standard_normal(3))
    Hm = np.block([[Hr[0][0], Hr[0][1]], [Hr[1][0], Hr[1][1]]])
    out, hv = AF.hvp(two_input_energy, (x, y), v)
    out2, vh = AF.vhp(two_input_energy, (x, y), v)
    np.testing.assert_allclose(out, two_input_energy(x, y), rtol=1e-15)
    np.testing.assert_allclose(np.concatenate(hv), Hm @ np.concatenate(v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.concatenate(vh), np.concatenate(v) @ Hm, rtol=1e-12, atol=1e-14)
    # single input given as a 1-tuple: results are 1-tuples, as torch
    J1 = AF.jacobian(lambda a: a ** 2, (x,))
    assert isinstance(J1, tuple) and len(J1) == 1
    np.testing.assert_allclose(J1[0], np.diag(2 * x), rtol=1e-15)

    # create_graph=True keeps results differentiable; False makes them constants (torch detaches)
    f = lambda a: np.sum(np.sin(a) * a ** 2)                       # noqa: E731
    d3 = (-np.cos(x) * x ** 2 - 6 * x * np.sin(x) + 6 * np.cos(x))  # d/dx of f''
    for fn in (AF.hvp, AF.vhp):
        np.testing.assert_allclose(npfunc.grad(lambda a: np.sum(fn(f, a, v[0], create_graph=True)[1]))(x),
                                   d3 * v[0], rtol=1e-12)
        np.testing.assert_array_equal(
            npfunc.grad(lambda a: np.sum(fn(f, a, v[0])[1]) + 0 * np.sum(a))(x), np.zeros(3))
    for vec, strat in ((False, "reverse-mode"), (True, "reverse-mode"), (True, "forward-mode")):
        g = npfunc.grad(lambda a: np.sum(AF.hessian(f, a, create_graph=True, vectorize=vec,
                                                    outer_jacobian_strategy=strat)))(x)
        np.testing.assert_allclose(g, d3, rtol=1e-12)
    # strict: an input the outputs do not depend on is an error naming it
    with pytest.raises(NpfuncError, match="input 1"):
        AF.jacobian(lambda a, b: (a * 2, np.sin(a)), (x, y), strict=True)
    with pytest.raises(NpfuncError, match="input 1"):
        AF.hvp(lambda a, b: np.sum(a ** 3) + np.sum(b), (x, y), v, strict=True)
    # strategy='forward-mode' needs vectorize=True, as in torch
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        AF.jacobian(np.sin, x, strategy="forward-mode")
    # under vmap: a batch of hvps is the Hessian's rows
    rows = npfunc.vmap(lambda u: AF.hvp(f, x, u)[1])(np.eye(3))
    np.testing.assert_allclose(rows, np.diag(-np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x)),
                               rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# 16. gradcheck: a right and a wrong custom_vjp

@custom_vjp
def softplus_right(x):
    return np.logaddexp(0.0, x)


softplus_right.defvjp(lambda x: (np.logaddexp(0.0, x), x), lambda x, g: (g * _sigmoid(x),))


@custom_vjp
def softplus_wrong(x):
    return np.logaddexp(0.0, x)


softplus_wrong.defvjp(lambda x: (np.logaddexp(0.0, x), x), lambda x, g: (g * _sigmoid(-x),))   # 1 - sigmoid


def test_gradcheck_accepts_a_right_rule_and_rejects_a_wrong_one():
    x = np.array([0.3, -1.2, 2.0])
    assert gradcheck(softplus_right, x, check_forward_ad=True, check_batched_grad=True)
    assert gradcheck(lambda v: np.sum(softplus_right(v) * v), x, fast_mode=True)
    with pytest.raises(GradcheckError, match="backward"):
        gradcheck(softplus_wrong, x)
    assert gradcheck(softplus_wrong, x, raise_exception=False) is False
    assert gradcheck(lambda v: softplus_wrong(v) * v, x, fast_mode=True, raise_exception=False) is False
    # under forward mode the wrong bwd is transposed: forward mode is wrong too
    assert gradcheck(softplus_wrong, x, check_backward_ad=False, check_forward_ad=True,
                     raise_exception=False) is False


# ---------------------------------------------------------------------------
# 17. In-place normalisation of each example under vmap

def normalise_(x):
    """Standardise ONE example in place (as preprocessing code does) and return its energy."""
    x -= x.mean()
    x /= np.abs(x).max()
    return (x ** 2).sum()


@pytest.mark.parametrize("spelling", ["vmap", "vmap(functionalize)", "jit(vmap)", "vmap(jit)"])
def test_vmap_of_a_function_that_mutates_its_example_writes_back(spelling):
    """A loop over the rows mutates the caller's batch (rows are views), and a
    plain call of jit(normalise_) or functionalize(normalise_) mutates its
    argument; vmap returns the right values but silently leaves the batch as
    it was."""
    X = np.array([[1.0, 2.0, 4.0], [3.0, -1.0, 0.5]])
    X_loop = X.copy()
    energies = [normalise_(row) for row in X_loop]         # rows are views: X_loop changes
    assert not np.allclose(X_loop, X)
    wrapped = {"vmap": vmap(normalise_), "vmap(functionalize)": vmap(npfunc.functionalize(normalise_)),
               "jit(vmap)": jit(vmap(normalise_)), "vmap(jit)": vmap(jit(normalise_))}[spelling]
    X_v = X.copy()
    out = wrapped(X_v)
    np.testing.assert_allclose(out, energies, rtol=1e-14)
    np.testing.assert_allclose(X_v, X_loop, rtol=1e-14, err_msg=f"{spelling} did not write back the mutation")


def test_jit_alone_writes_back_the_mutation():
    x = np.array([1.0, 2.0, 4.0])
    y = x.copy()
    normalise_(y)
    z = x.copy()
    jit(normalise_)(z)
    np.testing.assert_allclose(z, y, rtol=1e-14)


# ---------------------------------------------------------------------------
# 18. jvp tangents whose dtype does not match the primal

def test_jvp_refuses_a_complex_tangent_for_a_real_primal():
    """docs/guide/jvp.md: "Tangents must match their primals' shapes and
    (floating) dtypes; a mismatch is an error naming the argument."  A complex
    tangent for a real primal has its imaginary part dropped instead (only a
    NumPy ComplexWarning), so the result is the JVP along Re(t)."""
    x = np.array([0.2, 0.7])
    t = np.array([1.0 + 2.0j, -1.0 + 0.5j])
    with pytest.raises(NpfuncError):
        jvp(np.sin, (x,), (t,))


def test_jvp_with_a_float32_tangent_for_a_float64_primal():
    x = np.array([0.2, 0.7])
    try:
        out, tan = jvp(np.sin, (x,), (np.ones(2, np.float32),))
    except NpfuncError:
        return                          # the documented refusal
    np.testing.assert_allclose(tan, np.cos(x), rtol=1e-15)
    assert tan.dtype == np.float64


# ---------------------------------------------------------------------------
# Refusals met while writing the programs above: each must be an npfunc error
# naming the transform (messages judged in the report)

def test_refusals_of_natural_spellings_name_the_transform():
    rng = np.random.default_rng(17)
    w, X = rng.standard_normal(3), rng.standard_normal((4, 3))
    labels = np.array([True, False, True, True])

    def branchy(w, x, y):               # Python if on a per-example label
        z = x @ w
        return np.logaddexp(0, -z) if y else np.logaddexp(0, z)
    with pytest.raises(NpfuncError, match=r"vmap\(grad\(f\)\).*np\.where"):
        vmap(grad(branchy), in_dims=(None, 0, 0))(w, X, labels)
    # np.where spelling works and matches the loop
    g = vmap(grad(lambda w, x, y: np.logaddexp(0, np.where(y, -(x @ w), x @ w))), in_dims=(None, 0, 0))(w, X, labels)
    np.testing.assert_allclose(g, [grad(branchy)(w, x, y) for x, y in zip(X, labels)], rtol=1e-13)

    gen = npfunc.random.default_rng(0)

    def noisy(x):
        return x * gen.normal(size=3)
    with pytest.raises(NpfuncError, match=r"jacfwd\(f\).*randomness"):
        jacfwd(noisy)(np.ones(3))
    with pytest.raises(NpfuncError, match=r"jacfwd\(jacrev\(f\)\).*randomness"):
        hessian(lambda x: np.sum(noisy(x) ** 2))(np.ones(3))
    with pytest.raises(NpfuncError, match=r"jit\(f\).*Draw outside"):
        jit(noisy)(np.ones(3))
    # npfunc's own generator is not restored for a checkpoint's recomputation: refused, not wrong
    with pytest.raises(NpfuncError, match="checkpoint"):
        grad(lambda W: resnet_loss(W, X[:2, :], checkpoint(lambda h, W: h + 0.1 * np.tanh(h @ W) *
                                                             gen.bernoulli(0.8, size=h.shape))))(
            0.5 * rng.standard_normal((3, 3)))
    # an int / bool leaf in a parameter dict
    with pytest.raises(NpfuncError, match="argument 0"):
        grad(lambda p: np.sum(p["w"] ** 2) * p["step"])({"w": w, "step": np.array(3)})
