"""Tutorial 2: model ensembling with stack_module_state and vmap.

Ten MLPs with the same architecture but different weights are usually run
one after the other.  ``stack_module_state`` stacks their parameters along a
new leading axis, and ``vmap`` over ``functional_call`` runs all of them in
one vectorised pass:

    params, buffers = npfunc.stack_module_state(models)
    def run(p, b, x):
        return npfunc.functional_call(base, (p, b), (x,))
    same = npfunc.vmap(run, in_dims=(0, 0, None))(params, buffers, x)   # one minibatch for all
    diff = npfunc.vmap(run, in_dims=(0, 0, 0))(params, buffers, xs)     # a minibatch per model

``base`` is any one model of the same architecture: only its structure is
used.  Both variants are checked against a Python loop over the models and
timed against it.

    python examples/ensembling.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn


class MLP(nn.Module):
    def __init__(self, n_in: int = 784, hidden: int = 128, n_out: int = 10, rng=0):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.fc1 = nn.Linear(n_in, hidden, rng=gen)
        self.fc2 = nn.Linear(hidden, hidden, rng=gen)
        self.fc3 = nn.Linear(hidden, n_out, rng=gen)

    def forward(self, x):
        x = np.maximum(self.fc1(x), 0.0)
        x = np.maximum(self.fc2(x), 0.0)
        return self.fc3(x)


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_ensemble(n_models: int, n_in: int, hidden: int, seed: int = 0):
    models = [MLP(n_in, hidden, rng=seed + i) for i in range(n_models)]
    params, buffers = npfunc.stack_module_state(models)
    base = MLP(n_in, hidden, rng=seed)  # only the architecture is used
    return models, base, params, buffers


def ensemble_fn(base, in_dims):
    def run(p, b, x):
        return npfunc.functional_call(base, (p, b), (x,))

    return npfunc.vmap(run, in_dims=in_dims)


def main(small: bool = False) -> dict:
    n_models, batch = 10, 64
    n_in, hidden = (64, 32) if small else (784, 128)
    models, base, params, buffers = make_ensemble(n_models, n_in, hidden)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_in))
    xs = rng.standard_normal((n_models, batch, n_in))

    same_fn = ensemble_fn(base, (0, 0, None))
    diff_fn = ensemble_fn(base, (0, 0, 0))
    same = same_fn(params, buffers, x)
    diff = diff_fn(params, buffers, xs)
    same_loop = np.stack([m(x) for m in models])
    diff_loop = np.stack([m(xi) for m, xi in zip(models, xs)])
    err_same = float(np.max(np.abs(same - same_loop)))
    err_diff = float(np.max(np.abs(diff - diff_loop)))
    assert same.shape == (n_models, batch, 10) and err_same < 1e-10 and err_diff < 1e-10

    repeats = 3 if small else 10
    t_same = best_time(lambda: same_fn(params, buffers, x), repeats)
    t_same_loop = best_time(lambda: [m(x) for m in models], repeats)
    t_diff = best_time(lambda: diff_fn(params, buffers, xs), repeats)
    t_diff_loop = best_time(lambda: [m(xi) for m, xi in zip(models, xs)], repeats)
    votes = np.argmax(same, axis=-1)
    agreement = float(np.mean(votes == votes[0]))
    print(f"ensemble of {n_models} MLPs {n_in}-{hidden}-{hidden}-10, minibatch {batch}:")
    print("  stacked parameters: " + ", ".join(f"{k} {v.shape}" for k, v in params.items()))
    print(f"  same minibatch:      output {same.shape}, max |vmap - loop| {err_same:.1e}, "
          f"vmap {1e3 * t_same:.2f} ms vs loop {1e3 * t_same_loop:.2f} ms ({t_same_loop / t_same:.1f}x)")
    print(f"  different minibatch: output {diff.shape}, max |vmap - loop| {err_diff:.1e}, "
          f"vmap {1e3 * t_diff:.2f} ms vs loop {1e3 * t_diff_loop:.2f} ms ({t_diff_loop / t_diff:.1f}x)")
    print(f"  (untrained models agree with model 0 on {100 * agreement:.0f} % of the predictions)")
    return {"err_same": err_same, "err_diff": err_diff, "t_same": t_same, "t_same_loop": t_same_loop,
            "t_diff": t_diff, "t_diff_loop": t_diff_loop}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="model ensembling with vmap")
    parser.add_argument("--small", action="store_true")
    main(small=parser.parse_args().small)
