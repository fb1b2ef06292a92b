"""Tutorial 3: MAML on few-shot sine-wave regression.

Model-agnostic meta-learning (Finn et al., 2017) learns an initialisation
from which a few gradient steps fit a new task.  Every task is a sine wave
``a sin(x - phase)`` seen through K = 10 points; the inner loop adapts the
shared parameters by SGD on those points, and the meta-loss is the adapted
model's error on fresh points of the same wave.  The meta-gradient
differentiates *through* the inner SGD steps -- a second-order derivative,
which npfunc gets by nesting ``grad`` in ``grad``:

    def adapt(params, xs, ys):                    # inner loop, inside grad
        for _ in range(steps):
            g = npfunc.grad(task_loss)(params, xs, ys)
            params = {k: params[k] - inner_lr * g[k] for k in params}
        return params

    def maml_loss(params, xs, ys, xq, yq):        # one task
        return task_loss(adapt(params, xs, ys), xq, yq)

    meta_loss = lambda p, *tasks: npfunc.vmap(maml_loss, in_dims=(None, 0, 0, 0, 0))(p, *tasks).mean()
    meta_grad = npfunc.grad(meta_loss)           # second order, batched over tasks

The script checks the meta-gradient against finite differences (which a
first-order approximation would fail) and against a loop over the tasks,
times vmap against that loop, and shows the meta-loss falling.

    python examples/maml_sine.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn
from npfunc.nn import functional as F


class SineNet(nn.Module):
    def __init__(self, hidden: int = 40, rng=0):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.net = nn.Sequential(nn.Linear(1, hidden, rng=gen), nn.ReLU(), nn.Linear(hidden, hidden, rng=gen),
                                 nn.ReLU(), nn.Linear(hidden, 1, rng=gen))

    def forward(self, x):
        return self.net(x)


def sample_tasks(rng, n_tasks: int, k: int):
    """Support and query sets (n_tasks, k, 1) of random sine waves, and their amplitude/phase."""
    amp = rng.uniform(0.1, 5.0, size=(n_tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(n_tasks, 1, 1))
    xs = rng.uniform(-5.0, 5.0, size=(n_tasks, k, 1))
    xq = rng.uniform(-5.0, 5.0, size=(n_tasks, k, 1))
    return xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase)


def make_maml(model, inner_lr: float, steps: int):
    def task_loss(params, x, y):
        return F.mse_loss(npfunc.functional_call(model, params, (x,)), y)

    def adapt(params, xs, ys):
        for _ in range(steps):
            g = npfunc.grad(task_loss)(params, xs, ys)
            params = {k: params[k] - inner_lr * g[k] for k in params}
        return params

    def maml_loss(params, xs, ys, xq, yq):
        return task_loss(adapt(params, xs, ys), xq, yq)

    def meta_loss(params, xs, ys, xq, yq):
        return np.mean(npfunc.vmap(maml_loss, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq))

    def meta_loss_loop(params, xs, ys, xq, yq):
        return sum(maml_loss(params, *t) for t in zip(xs, ys, xq, yq)) / len(xs)

    return task_loss, adapt, maml_loss, meta_loss, meta_loss_loop


def main(small: bool = False) -> dict:
    iterations, meta_batch, k = (300, 10, 10) if small else (3000, 25, 10)
    meta_lr = 3e-3 if small else 1e-3  # a short run takes larger steps
    inner_lr, steps = 0.01, 1
    model = SineNet(rng=0)
    params = {name: v.copy() for name, v in model.named_parameters()}
    task_loss, adapt, maml_loss, meta_loss, meta_loss_loop = make_maml(model, inner_lr, steps)
    meta_grad = npfunc.grad_and_value(meta_loss)
    rng = np.random.default_rng(0)

    # -- checks on one meta-batch: loop over tasks, finite differences, first-order approximation --
    batch = sample_tasks(rng, 5, k)
    g, value = meta_grad(params, *batch)
    g_loop = npfunc.grad(meta_loss_loop)(params, *batch)
    loop_err = max(float(np.max(np.abs(g[n] - g_loop[n]))) for n in params)
    assert loop_err < 1e-10, f"vmap over tasks differs from the loop ({loop_err})"
    name, idx, eps = "net.0.weight", (3, 0), 1e-5
    step = np.zeros_like(params[name])
    step[idx] = eps
    fd = (meta_loss({**params, name: params[name] + step}, *batch)
          - meta_loss({**params, name: params[name] - step}, *batch)) / (2 * eps)
    fd_err = abs(fd - g[name][idx]) / abs(fd)
    assert fd_err < 1e-5, f"meta-gradient differs from finite differences ({fd_err:.1e})"

    def first_order(params, xs, ys, xq, yq):  # FOMAML: treat the adapted parameters as constants
        adapted = npfunc.vmap(adapt, in_dims=(None, 0, 0))(params, xs, ys)
        per_task = npfunc.vmap(npfunc.grad(task_loss))(adapted, xq, yq)
        return {n: v.mean(0) for n, v in per_task.items()}

    fo_err = abs(first_order(params, *batch)[name][idx] - fd) / abs(fd)

    start = time.perf_counter()
    meta_grad(params, *batch)
    t_vmap = time.perf_counter() - start
    start = time.perf_counter()
    npfunc.grad(meta_loss_loop)(params, *batch)
    t_loop = time.perf_counter() - start

    # -- meta-training --
    eval_tasks = sample_tasks(np.random.default_rng(123), 100, k)
    before = float(meta_loss(params, *eval_tasks))
    opt = npfunc.optim.Adam(lr=meta_lr)
    state = opt.init(params)
    history = []
    start = time.perf_counter()
    for it in range(iterations):
        g, value = meta_grad(params, *sample_tasks(rng, meta_batch, k))
        params, state = opt.update(g, state, params)
        history.append(float(value))
        if not small and (it + 1) % 500 == 0:
            print(f"  iteration {it + 1:5d}: meta-loss (last 100) {np.mean(history[-100:]):.3f}")
    train_time = time.perf_counter() - start
    after = float(meta_loss(params, *eval_tasks))
    window = max(10, iterations // 10)
    first, last = float(np.mean(history[:window])), float(np.mean(history[-window:]))

    print(f"MAML, sine waves, K={k}, {steps} inner SGD step(s) of lr {inner_lr}, meta-batch {meta_batch}:")
    print(f"  meta-gradient vs finite differences: rel. error {fd_err:.1e} "
          f"(first-order MAML would be off by {fo_err:.1e}); vmap vs loop over tasks {loop_err:.1e}")
    print(f"  meta-gradient of 5 tasks: vmap {1e3 * t_vmap:.1f} ms vs loop {1e3 * t_loop:.1f} ms "
          f"({t_loop / t_vmap:.1f}x)")
    print(f"  meta-training: {iterations} iterations in {train_time:.1f} s; meta-loss "
          f"{first:.3f} (first {window}) -> {last:.3f} (last {window})")
    print(f"  held-out tasks, loss after adaptation: {before:.3f} before meta-training -> {after:.3f} after")
    assert last < first and after < before, "the meta-loss did not fall"
    return {"fd_error": fd_err, "fo_error": fo_err, "loop_error": loop_err, "history": history,
            "before": before, "after": after, "t_vmap": t_vmap, "t_loop": t_loop}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="MAML on sine waves")
    parser.add_argument("--small", action="store_true")
    main(small=parser.parse_args().small)
