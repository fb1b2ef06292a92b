"""Tutorial 1: per-sample gradients of a small CNN.

A minibatch gradient averages away the per-sample information that
differential privacy (clipping each sample's gradient), influence functions
or gradient-noise diagnostics need.  With npfunc, the per-sample gradient
is the ordinary gradient of a one-sample loss, mapped over the batch:

    def loss(params, x, y):                          # one sample
        logits = npfunc.functional_call(model, params, (x[None],))
        return F.cross_entropy(logits, y[None])

    per_sample = npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0, 0))(params, X, Y)

``functional_call`` runs the model with the parameters passed in, so ``grad``
can differentiate with respect to them; ``vmap`` maps over the samples
(``in_dims=(None, 0, 0)``: the parameters are shared).  The script checks
the result against a Python loop of ``grad`` calls and against finite
differences, and times both.

    python examples/per_sample_grads.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn
from npfunc.nn import functional as F


class CNN(nn.Module):
    """conv(1->8, 3x3) -> relu -> maxpool 2 -> conv(8->16, 3x3) -> relu -> maxpool 2 -> linear(64 -> 10),
    for 1 x 16 x 16 images."""

    def __init__(self, rng=0):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.conv1 = nn.Conv2d(1, 8, 3, rng=gen)
        self.conv2 = nn.Conv2d(8, 16, 3, rng=gen)
        self.fc = nn.Linear(16 * 2 * 2, 10, rng=gen)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # (N, 8, 7, 7)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # (N, 16, 2, 2)
        x = np.reshape(x, np.shape(x)[:-3] + (-1,))  # flatten all but the batch axis
        return self.fc(x)


def make_problem(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    model = CNN(rng=seed)
    params = {k: v.copy() for k, v in model.named_parameters()}
    x = rng.standard_normal((batch, 1, 16, 16))
    y = rng.integers(0, 10, size=batch)
    return model, params, x, y


def sample_loss(model):
    """The loss of one sample (x: (1, 16, 16), y: a scalar label) as a function of the parameters."""

    def loss(params, x, y):
        logits = npfunc.functional_call(model, params, (x[None],))
        return F.cross_entropy(logits, y[None])

    return loss


def per_sample_grads(model):
    return npfunc.vmap(npfunc.grad(sample_loss(model)), in_dims=(None, 0, 0))


def loop_grads(model, params, x, y):
    grad = npfunc.grad(sample_loss(model))
    grads = [grad(params, x[i], y[i]) for i in range(len(x))]
    return {k: np.stack([g[k] for g in grads]) for k in params}


def best_time(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(small: bool = False) -> dict:
    batch = 8 if small else 64
    model, params, x, y = make_problem(batch)
    fast = per_sample_grads(model)
    result = fast(params, x, y)
    looped = loop_grads(model, params, x, y)
    max_diff = max(float(np.max(np.abs(result[k] - looped[k]))) for k in params)
    assert max_diff < 1e-10, f"vmap(grad) differs from the loop by {max_diff}"

    # finite differences for a few entries of sample 0's gradient
    loss = sample_loss(model)
    rng = np.random.default_rng(1)
    fd_err = 0.0
    for name in ("conv1.weight", "conv2.bias", "fc.weight"):
        w = params[name]
        idx = tuple(int(rng.integers(0, s)) for s in w.shape)
        step = np.zeros_like(w)
        step[idx] = 1e-6
        fd = (loss({**params, name: w + step}, x[0], y[0]) - loss({**params, name: w - step}, x[0], y[0])) / 2e-6
        fd_err = max(fd_err, abs(fd - result[name][(0,) + idx]) / max(abs(fd), 1e-6))
    assert fd_err < 1e-5, f"per-sample gradient differs from finite differences ({fd_err:.1e})"

    repeats = 2 if small else 5
    t_vmap = best_time(lambda: fast(params, x, y), repeats)
    t_loop = best_time(lambda: loop_grads(model, params, x, y), 1 if small else 2)
    print(f"per-sample gradients of a CNN, batch {batch}:")
    for k, v in result.items():
        print(f"  {k:14s} {str(v.shape):18s} norm of sample 0: {np.linalg.norm(v[0]):.4f}")
    print(f"  vmap(grad) vs Python loop: max |difference| {max_diff:.1e}; "
          f"vs finite differences: rel. error {fd_err:.1e}")
    print(f"  time: vmap(grad) {1e3 * t_vmap:.1f} ms, loop {1e3 * t_loop:.1f} ms "
          f"({t_loop / t_vmap:.1f}x faster)")
    return {"max_diff": max_diff, "fd_error": fd_err, "t_vmap": t_vmap, "t_loop": t_loop, "grads": result}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="per-sample gradients of a CNN")
    parser.add_argument("--small", action="store_true")
    main(small=parser.parse_args().small)
