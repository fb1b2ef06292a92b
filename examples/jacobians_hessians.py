"""Tutorial 5: Jacobians, Hessians, Hessian-vector products and VJPs of a real model.

The whirlwind tour's transforms, applied to an MLP regression model
(``nn.Sequential`` of Linear/Tanh layers) instead of ``sin``:

* ``vjp``: the vector-Jacobian product ``u^T J`` without forming J;
* ``jacrev`` / ``jacfwd``: the Jacobian of the outputs with respect to the
  input, and ``vmap(jacrev(f))`` for a batch of inputs;
* ``hessian`` (= ``jacfwd(jacrev(f))``) of the loss with respect to the
  input and with respect to one layer's weights (through ``functional_call``);
* Hessian-vector products by forward-over-reverse ``jvp(grad(f))`` and by
  reverse-over-reverse, never forming the Hessian.

Every quantity is checked against central finite differences or a Python
loop, and the transforms are timed against the loop / the materialised
alternative.

    python examples/jacobians_hessians.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn
from npfunc.nn import functional as F


def fd_jacobian(f, x, eps=1e-6):
    """Central-difference Jacobian (plain NumPy), shape f(x).shape + x.shape."""
    cols = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        cols.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-12))


def main(small: bool = False) -> dict:
    d_in, hidden, d_out, batch = (8, 16, 4, 8) if small else (32, 128, 16, 64)
    gen = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(d_in, hidden, rng=gen), nn.Tanh(), nn.Linear(hidden, hidden, rng=gen),
                          nn.Tanh(), nn.Linear(hidden, d_out, rng=gen))
    params = {k: v.copy() for k, v in model.named_parameters()}
    x = gen.standard_normal(d_in)
    X = gen.standard_normal((batch, d_in))
    target = gen.standard_normal(d_out)

    def f(x):  # model output as a function of the input
        return model(x)

    def loss_x(x):
        return F.mse_loss(model(x), target)

    def loss_w(w):  # the loss as a function of the last layer's weight
        return F.mse_loss(npfunc.functional_call(model, {**params, "4.weight": w}, (x,)), target)

    report, timings = {}, {}
    repeats = 2 if small else 5

    # -- vjp ---------------------------------------------------------------------------------
    u = gen.standard_normal(d_out)
    out, vjp_fn = npfunc.vjp(f, x)
    (uJ,) = vjp_fn(u)
    report["vjp"] = rel_err(uJ, fd_jacobian(lambda v: u @ f(v), x))

    # -- Jacobians -----------------------------------------------------------------------------
    J_rev = npfunc.jacrev(f)(x)
    J_fwd = npfunc.jacfwd(f)(x)
    J_fd = fd_jacobian(f, x)
    report["jacrev"], report["jacfwd"] = rel_err(J_rev, J_fd), rel_err(J_fwd, J_fd)
    assert J_rev.shape == (d_out, d_in)
    np.testing.assert_allclose(uJ, u @ J_rev, atol=1e-12)

    def jacobian_by_rows(x):  # the Python loop: one vjp per output
        _, pullback = npfunc.vjp(f, x)
        return np.stack([pullback(e)[0] for e in np.eye(d_out)])

    timings["jacrev"] = best_time(lambda: npfunc.jacrev(f)(x), repeats)
    timings["jacfwd"] = best_time(lambda: npfunc.jacfwd(f)(x), repeats)
    timings["jacobian rows loop"] = best_time(lambda: jacobian_by_rows(x), repeats)

    batched = npfunc.vmap(npfunc.jacrev(f))(X)
    looped = np.stack([npfunc.jacrev(f)(xi) for xi in X])
    report["vmap(jacrev) vs loop"] = rel_err(batched, looped)
    timings["vmap(jacrev)"] = best_time(lambda: npfunc.vmap(npfunc.jacrev(f))(X), repeats)
    timings["jacrev loop over batch"] = best_time(lambda: [npfunc.jacrev(f)(xi) for xi in X], 1)

    # -- Hessians ----------------------------------------------------------------------------------
    H = npfunc.hessian(loss_x)(x)
    H_rr = npfunc.jacrev(npfunc.jacrev(loss_x))(x)
    report["hessian (input)"] = rel_err(H, fd_jacobian(npfunc.grad(loss_x), x))
    report["hessian symmetry"] = rel_err(H, H.T)
    np.testing.assert_allclose(H, H_rr, atol=1e-12)
    w = params["4.weight"]
    H_w = npfunc.hessian(loss_w)(w)  # (d_out, hidden, d_out, hidden)
    assert H_w.shape == w.shape * 2
    report["hessian (last layer)"] = rel_err(H_w, fd_jacobian(npfunc.grad(loss_w), w))
    timings["hessian (input)"] = best_time(lambda: npfunc.hessian(loss_x)(x), repeats)
    timings["hessian by grad rows loop"] = best_time(
        lambda: [npfunc.jvp(npfunc.grad(loss_x), (x,), (e,))[1] for e in np.eye(d_in)], 1)

    # -- Hessian-vector products -----------------------------------------------------------------
    v = gen.standard_normal(w.shape)
    hvp_fwd = npfunc.jvp(npfunc.grad(loss_w), (w,), (v,))[1]
    hvp_rev = npfunc.grad(lambda p: np.sum(npfunc.grad(loss_w)(p) * v))(w)
    hvp_dense = np.tensordot(H_w, v, axes=2)
    eps = 1e-6
    hvp_fd = (npfunc.grad(loss_w)(w + eps * v) - npfunc.grad(loss_w)(w - eps * v)) / (2 * eps)
    report["hvp forward-over-reverse"] = rel_err(hvp_fwd, hvp_fd)
    report["hvp reverse-over-reverse"] = rel_err(hvp_rev, hvp_fd)
    np.testing.assert_allclose(hvp_fwd, hvp_dense, atol=1e-12)
    timings["hvp (jvp of grad)"] = best_time(lambda: npfunc.jvp(npfunc.grad(loss_w), (w,), (v,)), repeats)
    timings["hvp via dense hessian"] = best_time(lambda: np.tensordot(npfunc.hessian(loss_w)(w), v, axes=2), 1)

    for name, err in report.items():
        assert err < 1e-6, f"{name}: relative error {err:.1e}"
    print(f"MLP {d_in}-{hidden}-{hidden}-{d_out} (tanh); batch {batch}; last layer {w.shape}:")
    for name, err in report.items():
        ref = "loop" if "loop" in name else "transpose" if "symmetry" in name else "finite differences"
        print(f"  {name:26s} rel. error vs {ref}: {err:.1e}")
    for name, t in timings.items():
        print(f"  time {name:28s} {1e3 * t:8.2f} ms")
    return {"errors": report, "timings": timings}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Jacobians, Hessians, hvp and vjp of a model")
    parser.add_argument("--small", action="store_true")
    main(small=parser.parse_args().small)
