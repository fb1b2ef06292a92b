"""A whirlwind tour of npfunc: composable function transforms for NumPy.

Run it with ``python -m npfunc.tour``.  Every step prints a small result and
a one-line check against an independent answer (an analytic formula, a
Python loop or finite differences).  The process exits with status 1 if any
check fails, so the tour doubles as a smoke test.

The idea in one paragraph: a *function transform* takes a numerical function
and returns a new function computing a different quantity.  ``grad(f)``
computes the gradient of ``f``; ``vmap(f)`` runs ``f`` over a batch as
vectorised NumPy; ``vjp``/``jvp`` give vector-Jacobian and Jacobian-vector
products; ``jacrev``/``jacfwd``/``hessian`` build whole derivative matrices.
Because each transform returns an ordinary function, they nest freely:
``vmap(grad(loss))`` is a per-sample gradient, ``jacfwd(jacrev(f))`` a
Hessian, ``jvp(grad(f), ...)`` a Hessian-vector product.  The functions
being transformed are plain NumPy code (``import numpy as np``).
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

from npfunc import grad, hessian, jacfwd, jacrev, jvp, stop_gradient, vjp, vmap

# ---------------------------------------------------------------------------
# Small helpers: section headers, result checks, finite differences
# ---------------------------------------------------------------------------

_failures: list[str] = []


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def show(label: str, value) -> None:
    """Print a result compactly (small arrays in full, big ones by shape)."""
    value = np.asarray(value)
    if value.size <= 8:
        text = np.array2string(value, precision=4, suppress_small=True, separator=", ")
        text = " ".join(text.split())
    else:
        text = f"array of shape {value.shape}"
    print(f"  {label} = {text}")


def check(what: str, got, expected, tol: float = 1e-10) -> None:
    """Compare ``got`` with an independent ``expected``; record a failure if off."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        _failures.append(what)
        print(f"  FAIL: {what}: shape {got.shape} != expected {expected.shape}")
        return
    err = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if err <= tol:
        print(f"  ok: matches {what} (max abs err {err:.1e})")
    else:
        _failures.append(what)
        print(f"  FAIL: {what}: max abs err {err:.3e} > tolerance {tol:.0e}")


def numerical_jacobian(f, x, eps: float = 1e-6):
    """Central differences: d f(x) / d x with shape ``f(x).shape + x.shape``."""
    x = np.asarray(x, dtype=float)
    columns = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        columns.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps))
    out_shape = np.shape(columns[0])
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


def best_time(fn, repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time of ``fn()`` in seconds (after a warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------------------
# A small tanh MLP, written as ordinary NumPy code on ONE example
# ---------------------------------------------------------------------------


def init_mlp(rng, sizes):
    """Parameters ``(W1, b1, W2, b2)`` of a one-hidden-layer MLP."""
    d_in, d_hidden, d_out = sizes
    return (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in),
            0.1 * rng.standard_normal(d_hidden),
            rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden),
            0.1 * rng.standard_normal(d_out))


def mlp(params, x):
    w1, b1, w2, b2 = params
    return np.tanh(x @ w1 + b1) @ w2 + b2


def cross_entropy(params, x, label_onehot):
    """Softmax cross-entropy of one example; log-sum-exp shifted by the max."""
    logits = mlp(params, x)
    m = np.max(logits)
    log_norm = np.log(np.sum(np.exp(logits - m))) + m
    return log_norm - np.sum(logits * label_onehot)


# ---------------------------------------------------------------------------
# The tour
# ---------------------------------------------------------------------------


def tour_grad() -> None:
    section("grad: derivatives of plain NumPy functions")
    x = np.float64(0.7)
    # grad(f) is a new function returning df/dx; np.sin needs no wrapping.
    show("grad(np.sin)(0.7)", grad(np.sin)(x))
    check("cos(x)", grad(np.sin)(x), np.cos(x))
    # Transforms compose: the gradient of the gradient is the second derivative.
    show("grad(grad(np.sin))(0.7)", grad(grad(np.sin))(x))
    check("-sin(x)", grad(grad(np.sin))(x), -np.sin(x))
    show("grad(grad(grad(np.sin)))(0.7)", grad(grad(grad(np.sin)))(x))
    check("-cos(x)", grad(grad(grad(np.sin)))(x), -np.cos(x))

    # Functions of arrays (returning a scalar), and several arguments at once.
    def f(w, v):
        return np.sum(np.tanh(w) * v ** 2)

    w, v = np.array([0.1, -0.4, 0.9]), np.array([1.0, 2.0, -0.5])
    dw, dv = grad(f, argnums=(0, 1))(w, v)
    show("grad(f, argnums=(0, 1)) -> dw", dw)
    check("(1 - tanh(w)^2) v^2", dw, (1 - np.tanh(w) ** 2) * v ** 2)
    check("2 tanh(w) v", dv, 2 * np.tanh(w) * v)

    # stop_gradient marks a value as a constant for differentiation.
    g = grad(lambda z: np.sum(z * stop_gradient(z)))(w)
    show("grad(sum(z * stop_gradient(z)))", g)
    check("z (the stopped factor is a constant)", g, w)


def tour_vmap() -> None:
    section("vmap: write code for one example, run it on a batch")
    rng = np.random.default_rng(0)
    # np.dot of two vectors, mapped over the leading axis of both arguments.
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    show("vmap(np.dot)(a, b)", vmap(np.dot)(a, b))
    check("row-wise (a * b).sum(1)", vmap(np.dot)(a, b), (a * b).sum(axis=1))

    # A tiny model written for a single feature vector ...
    weights = rng.standard_normal(5)

    def model(feature_vec):
        assert feature_vec.ndim == 1  # inside vmap, each call sees one example
        return np.maximum(feature_vec @ weights, 0.0)

    examples = rng.standard_normal((6, 5))
    # ... runs on a batch without a Python loop (vectorised NumPy underneath).
    out = vmap(model)(examples)
    show("vmap(model)(examples)", out)
    check("a Python loop over examples", out, np.array([model(e) for e in examples]))
    # in_dims says which argument is batched (None = shared by every example).
    scaled = vmap(lambda s, x: s * x, in_dims=(None, 0))(2.0, examples)
    check("broadcasting a shared argument", scaled, 2.0 * examples)


def tour_per_sample_grads() -> None:
    section("per-sample gradients: vmap(grad(loss))")
    rng = np.random.default_rng(1)
    sizes, batch = (784, 128, 10), 64
    params = init_mlp(rng, sizes)
    X = rng.standard_normal((batch, sizes[0]))
    Y = np.eye(sizes[2])[rng.integers(0, sizes[2], batch)]

    # grad of the loss w.r.t. the parameters, for ONE example ...
    loss_grad = grad(cross_entropy)
    # ... mapped over the examples (params shared: in_dims None for them).
    per_sample = vmap(loss_grad, in_dims=(None, 0, 0))
    grads = per_sample(params, X, Y)
    print(f"  MLP {'-'.join(map(str, sizes))}, batch {batch}: per-sample gradient shapes "
          f"{[g.shape for g in grads]}")

    def loop():
        return [loss_grad(params, X[i], Y[i]) for i in range(batch)]

    looped = loop()
    for k, name in enumerate(("W1", "b1", "W2", "b2")):
        check(f"a Python loop of grad, {name}", grads[k], np.stack([g[k] for g in looped]), tol=1e-12)

    t_vmap = best_time(lambda: per_sample(params, X, Y))
    t_loop = best_time(loop, repeats=1)
    print(f"  time: vmap {t_vmap * 1e3:.1f} ms, loop {t_loop * 1e3:.1f} ms "
          f"-> {t_loop / t_vmap:.1f}x speedup from vmap")


def tour_vjp_jvp() -> None:
    section("vjp and jvp: reverse- and forward-mode products")
    rng = np.random.default_rng(2)
    W = rng.standard_normal((3, 4))

    def f(x):  # R^4 -> R^3
        return np.tanh(W @ x)

    x = rng.standard_normal(4)
    J = (1 - np.tanh(W @ x) ** 2)[:, None] * W  # the analytic Jacobian

    # vjp returns f(x) and a function computing cotangent @ J.
    out, vjp_fn = vjp(f, x)
    u = np.array([1.0, -2.0, 0.5])
    (ct,) = vjp_fn(u)  # one cotangent per primal, in a tuple
    show("vjp_fn(u)", ct)
    check("u @ J (analytic Jacobian)", ct, u @ J)
    # vjp_fn is itself transformable: vmap over the rows of the identity gives J.
    (J_rows,) = vmap(vjp_fn)(np.eye(3))
    check("J from vmap(vjp_fn)(identity)", J_rows, J)

    # jvp pushes a tangent forward: J @ t, without building J.
    t = np.array([0.5, 0.0, -1.0, 2.0])
    out, tangent_out = jvp(f, (x,), (t,))
    show("jvp(f, (x,), (t,)) tangent", tangent_out)
    check("J @ t (analytic Jacobian)", tangent_out, J @ t)
    check("finite differences", tangent_out, (f(x + 1e-6 * t) - f(x - 1e-6 * t)) / 2e-6, tol=1e-8)

    # Two inputs: d(x*y) along (1, 1) is x + y.
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    _, t2 = jvp(lambda p, q: p * q, (a, b), (np.ones(5), np.ones(5)))
    check("x + y for d(x*y)", t2, a + b)


def tour_jacobians() -> None:
    section("jacrev / jacfwd: whole Jacobians, and batched Jacobians")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5)
    show("jacrev(np.sin)(x) diagonal", np.diag(jacrev(np.sin)(x)))
    check("diag(cos(x))", jacrev(np.sin)(x), np.diag(np.cos(x)))
    check("diag(cos(x)) via jacfwd", jacfwd(np.sin)(x), np.diag(np.cos(x)))

    W, b = rng.standard_normal((4, 5)), rng.standard_normal(4)

    def layer(x):  # R^5 -> R^4
        return np.tanh(W @ x + b)

    J_rev, J_fwd = jacrev(layer)(x), jacfwd(layer)(x)
    print(f"  jacrev(layer)(x).shape = {J_rev.shape}")
    check("(1 - y^2)[:, None] * W", J_rev, (1 - layer(x) ** 2)[:, None] * W)
    check("jacfwd (forward mode, same Jacobian)", J_fwd, J_rev, tol=1e-14)
    check("finite differences", J_rev, numerical_jacobian(layer, x), tol=1e-8)

    # vmap(jacrev(f)): one Jacobian per example, computed as one batched call.
    xs = rng.standard_normal((64, 5))
    Js = vmap(jacrev(layer))(xs)
    print(f"  vmap(jacrev(layer))(xs).shape = {Js.shape}")
    check("a loop of jacrev", Js, np.stack([jacrev(layer)(xi) for xi in xs]))


def tour_hessians() -> None:
    section("hessian: second derivatives, two ways, and Hessian-vector products")
    rng = np.random.default_rng(4)

    def f(x):
        return np.sum(np.sin(x))

    x = rng.standard_normal(5)
    H = hessian(f)(x)
    show("diag(hessian(sum sin)(x))", np.diag(H))
    check("diag(-sin(x))", H, np.diag(-np.sin(x)))
    # hessian is jacfwd(jacrev(f)) (forward-over-reverse); jacrev(jacrev(f)) agrees.
    check("jacfwd(jacrev(f)) by jacrev(jacrev(f))", jacrev(jacrev(f))(x), jacfwd(jacrev(f))(x),
          tol=1e-14)

    # A less trivial one: logsumexp(A x), with a max shift for stability.
    A = rng.standard_normal((6, 4))

    def lse(x):
        z = A @ x
        m = np.max(z)
        return np.log(np.sum(np.exp(z - m))) + m

    x = rng.standard_normal(4)
    p = np.exp(A @ x - lse(x))  # softmax(A x)
    H_exact = A.T @ (np.diag(p) - np.outer(p, p)) @ A
    print(f"  hessian(logsumexp(A x)).shape = {hessian(lse)(x).shape}")
    check("A^T (diag(p) - p p^T) A", hessian(lse)(x), H_exact)
    check("jacrev(jacrev(lse))", jacrev(jacrev(lse))(x), H_exact)

    # Hessian-vector product without forming H: forward-over-reverse.
    v = rng.standard_normal(4)
    g, Hv = jvp(grad(lse), (x,), (v,))
    show("jvp(grad(lse), (x,), (v,)) -> H v", Hv)
    check("H @ v", Hv, H_exact @ v)
    check("the gradient A^T p", g, A.T @ p)


def tour_ensemble() -> None:
    section("model ensembles: vmap over stacked parameters")
    rng = np.random.default_rng(5)
    n_models, sizes, batch = 8, (16, 32, 4), 10
    models = [init_mlp(rng, sizes) for _ in range(n_models)]
    # Stack each parameter across models: W1 becomes (n_models, 16, 32), etc.
    stacked = tuple(np.stack(leaf) for leaf in zip(*models))
    X = rng.standard_normal((batch, sizes[0]))

    # Every model on the same minibatch: map over params only.
    ensemble = vmap(mlp, in_dims=(0, None))
    out = ensemble(stacked, X)
    print(f"  {n_models} MLPs {'-'.join(map(str, sizes))} on one minibatch of {batch}: "
          f"output shape {out.shape}")
    check("a loop over models", out, np.stack([mlp(m, X) for m in models]))

    # Each model on its own minibatch: map over both.
    Xs = rng.standard_normal((n_models, batch, sizes[0]))
    out2 = vmap(mlp)(stacked, Xs)
    check("a loop over (model, minibatch) pairs", out2, np.stack([mlp(m, x) for m, x in zip(models, Xs)]))

    # And gradients of every model at once: vmap(grad(...)) over the stack.
    Y = np.eye(sizes[2])[rng.integers(0, sizes[2], batch)]

    def batch_loss(params, X, Y):
        return np.mean(vmap(cross_entropy, in_dims=(None, 0, 0))(params, X, Y))

    grads = vmap(grad(batch_loss), in_dims=(0, None, None))(stacked, X, Y)
    looped = [grad(batch_loss)(m, X, Y) for m in models]
    check("a loop of grad over models (dW1)", grads[0], np.stack([g[0] for g in looped]), tol=1e-12)

    # Timings.  These models are tiny, so npfunc's per-operation overhead shows;
    # benchmarks/bench_core.py measures a realistic ensemble (16 x 784-128-10).
    w1, b1, w2, b2 = stacked

    def by_hand():  # the same ensemble, batched by hand
        return np.tanh(X @ w1 + b1[:, None]) @ w2 + b2[:, None]

    check("a hand-batched NumPy ensemble", out, by_hand(), tol=1e-12)
    t_vmap = best_time(lambda: ensemble(stacked, X))
    t_hand = best_time(by_hand)
    t_loop = best_time(lambda: [mlp(m, X) for m in models])
    print(f"  time: vmap {t_vmap * 1e6:.0f} us, hand-batched NumPy {t_hand * 1e6:.0f} us, "
          f"loop of plain NumPy {t_loop * 1e6:.0f} us")


def main() -> None:
    """Run the tour; exit with status 1 if any check failed."""
    _failures.clear()
    start = time.perf_counter()
    print("npfunc whirlwind tour: composable grad / vmap / vjp / jvp / jacrev / jacfwd / hessian")
    for step in (tour_grad, tour_vmap, tour_per_sample_grads, tour_vjp_jvp, tour_jacobians,
                 tour_hessians, tour_ensemble):
        try:
            step()
        except Exception:  # report it, keep touring, and fail at the end
            _failures.append(f"{step.__name__} raised")
            print(f"  FAIL: {step.__name__} raised an exception:")
            traceback.print_exc(file=sys.stdout)
    elapsed = time.perf_counter() - start
    print()
    if _failures:
        print(f"{len(_failures)} check(s) FAILED: " + "; ".join(_failures))
        raise SystemExit(1)
    print(f"all checks passed in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
