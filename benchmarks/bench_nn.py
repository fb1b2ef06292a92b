"""npfunc.nn benchmarks: the tutorials' workloads as ratios to hand-written NumPy and to a Python loop.

* per-sample gradients of the tutorial CNN (examples/per_sample_grads.py:
  conv 1->8 3x3, relu, maxpool 2, conv 8->16 3x3, relu, maxpool 2,
  linear 64->10, cross-entropy; 16x16 inputs), batch 64:
  ``vmap(grad(loss), in_dims=(None, 0, 0))`` over ``functional_call``;
* the 10-model ensemble of MLPs 784-128-128-10 (examples/ensembling.py),
  minibatch 64, the same minibatch for every model and one per model:
  ``vmap(functional_call)`` over ``stack_module_state``.

Each is compared with (a) a hand-written, fully vectorised NumPy version
computing the same quantity (im2col convolutions and a hand-derived
backward pass for the CNN; broadcasting matmuls over the model axis for the
ensemble) -- the practical speed limit -- and (b) the Python loop the
transform replaces (a ``grad`` call per sample; a module call per model).
The results are checked equal (``np.testing.assert_allclose``) before any
timing; a measurement is the median of interleaved repeats.

    python benchmarks/bench_nn.py            # full (~20 s)
    python benchmarks/bench_nn.py --quick    # correctness smoke run
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import statistics
import sys
import time

import numpy as np

import npfunc

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"npfunc_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- timing ------------------------------------------------------------------------------------------

def _calibrate(fn, min_time: float) -> int:
    fn()
    start = time.perf_counter()
    fn()
    return max(1, int(min_time / max(time.perf_counter() - start, 1e-9)))


def measure(fns: dict, repeats: int, min_time: float) -> dict:
    """Median seconds per call of each function, measured interleaved."""
    numbers = {k: _calibrate(f, min_time) for k, f in fns.items()}
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            n = numbers[k]
            start = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - start) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


# ---- per-sample gradients of the CNN, by hand ------------------------------------------------------

_win = np.lib.stride_tricks.sliding_window_view


def _im2col_last(a, k: int):
    """(B, H, W, C) channels-last -> (B, OH*OW, C*k*k) rows of 'valid' windows, (c, i, j) order."""
    w = _win(a, (k, k), axis=(1, 2))  # (B, OH, OW, C, k, k)
    b, oh, ow = w.shape[:3]
    return w.reshape(b, oh * ow, -1), (oh, ow)


def _col2im_last(cols, shape, k: int, out_hw):
    """Transpose of _im2col_last: add window entries back into (B, H, W, C)."""
    b, h, w, c = shape
    oh, ow = out_hw
    cols = cols.reshape(b, oh, ow, c, k, k)
    out = np.zeros(shape)
    for i in range(k):
        for j in range(k):
            out[:, i:i + oh, j:j + ow, :] += cols[..., i, j]
    return out


def _pool_forward(a):
    """2x2 max pool of channels-last (B, H, W, C), floor mode; returns output and the argmax mask."""
    b, h, w, c = a.shape
    a = a[:, :h // 2 * 2, :w // 2 * 2]
    blocks = a.reshape(b, h // 2, 2, w // 2, 2, c)
    out = blocks.max(axis=(2, 4))
    mask = blocks == out[:, :, None, :, None, :]
    mask = mask / mask.sum(axis=(2, 4), keepdims=True)  # ties share, as npfunc's max
    return out, mask


def _pool_backward(g, mask, shape):
    b, h, w, c = shape
    full = np.zeros(shape)
    full[:, :h // 2 * 2, :w // 2 * 2] = (mask * g[:, :, None, :, None, :]).reshape(b, h // 2 * 2, w // 2 * 2, c)
    return full


def cnn_per_sample_grads_by_hand(params, x, y):
    """Per-sample gradients of the tutorial CNN's cross-entropy, vectorised over the batch by hand."""
    w1, b1 = params["conv1.weight"], params["conv1.bias"]
    w2, b2 = params["conv2.weight"], params["conv2.bias"]
    wf, bf = params["fc.weight"], params["fc.bias"]
    batch = x.shape[0]
    # forward (channels-last internally)
    x_last = x.transpose(0, 2, 3, 1)
    cols1, hw1 = _im2col_last(x_last, 3)                       # (B, 196, 9)
    z1 = cols1 @ w1.reshape(w1.shape[0], -1).T + b1             # (B, 196, 8)
    a1 = np.maximum(z1, 0.0).reshape(batch, *hw1, -1)           # (B, 14, 14, 8)
    p1, m1 = _pool_forward(a1)                                  # (B, 7, 7, 8)
    cols2, hw2 = _im2col_last(p1, 3)                            # (B, 25, 72)
    z2 = cols2 @ w2.reshape(w2.shape[0], -1).T + b2             # (B, 25, 16)
    a2 = np.maximum(z2, 0.0).reshape(batch, *hw2, -1)           # (B, 5, 5, 16)
    p2, m2 = _pool_forward(a2)                                  # (B, 2, 2, 16)
    h = p2.transpose(0, 3, 1, 2).reshape(batch, -1)             # torch's (C, H, W) flattening
    logits = h @ wf.T + bf
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    d_logits = prob
    d_logits[np.arange(batch), y] -= 1.0                        # per-sample d loss / d logits
    # backward
    g_wf = d_logits[:, :, None] * h[:, None, :]
    d_h = (d_logits @ wf).reshape(batch, p2.shape[3], p2.shape[1], p2.shape[2]).transpose(0, 2, 3, 1)
    d_z2 = (_pool_backward(d_h, m2, a2.shape) * (a2 > 0)).reshape(batch, -1, w2.shape[0])
    g_w2 = np.einsum("bpo,bpk->bok", d_z2, cols2).reshape((batch,) + w2.shape)
    d_cols2 = d_z2 @ w2.reshape(w2.shape[0], -1)
    d_p1 = _col2im_last(d_cols2, p1.shape, 3, hw2)
    d_z1 = (_pool_backward(d_p1, m1, a1.shape) * (a1 > 0)).reshape(batch, -1, w1.shape[0])
    g_w1 = np.einsum("bpo,bpk->bok", d_z1, cols1).reshape((batch,) + w1.shape)
    return {"conv1.weight": g_w1, "conv1.bias": d_z1.sum(1), "conv2.weight": g_w2, "conv2.bias": d_z2.sum(1),
            "fc.weight": g_wf, "fc.bias": d_logits}


def bench_cnn(args) -> list[tuple]:
    example = load_example("per_sample_grads")
    batch = 8 if args.quick else 64
    model, params, x, y = example.make_problem(batch)
    fast = example.per_sample_grads(model)
    got, want = fast(params, x, y), cnn_per_sample_grads_by_hand(params, x, y)
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)
    times = measure({"npfunc": lambda: fast(params, x, y),
                     "hand": lambda: cnn_per_sample_grads_by_hand(params, x, y),
                     "loop": lambda: example.loop_grads(model, params, x, y)}, args.repeats, args.min_time)
    return [(f"per-sample grads, tutorial CNN, B={batch}", times)]


# ---- the ensemble --------------------------------------------------------------------------------------

def ensemble_by_hand(params, x, per_model_batch: bool):
    """relu MLPs of every model at once: broadcasting matmuls over the model axis."""
    h = x if per_model_batch else x[None]
    for i, act in ((1, True), (2, True), (3, False)):
        w, b = params[f"fc{i}.weight"], params[f"fc{i}.bias"]
        h = h @ w.transpose(0, 2, 1) + b[:, None, :]
        if act:
            h = np.maximum(h, 0.0)
    return h


def bench_ensemble(args) -> list[tuple]:
    example = load_example("ensembling")
    n_in, hidden = (64, 32) if args.quick else (784, 128)
    models, base, params, buffers = example.make_ensemble(10, n_in, hidden)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, n_in))
    xs = rng.standard_normal((10, 64, n_in))
    rows = []
    for label, fn, data, per_model in (("same minibatch", example.ensemble_fn(base, (0, 0, None)), x, False),
                                       ("minibatch per model", example.ensemble_fn(base, (0, 0, 0)), xs, True)):
        np.testing.assert_allclose(fn(params, buffers, data), ensemble_by_hand(params, data, per_model),
                                   rtol=1e-10, atol=1e-12)
        if per_model:
            loop = lambda: [m(xi) for m, xi in zip(models, xs)]  # noqa: E731
        else:
            loop = lambda: [m(x) for m in models]  # noqa: E731
        times = measure({"npfunc": lambda: fn(params, buffers, data),
                         "hand": lambda: ensemble_by_hand(params, data, per_model),
                         "loop": loop}, args.repeats, args.min_time)
        rows.append((f"ensemble of 10 MLPs {n_in}-{hidden}-{hidden}-10, B=64, {label}", times))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="npfunc.nn benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (correctness smoke run)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 15)
    args.min_time = 0.002 if args.quick else 0.05
    rows = bench_cnn(args) + bench_ensemble(args)
    print(f"npfunc {npfunc.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"{'quick' if args.quick else 'full'} run, median of {args.repeats} repeats, float64")
    header = f"| {'workload':58s} | npfunc | hand-written | Python loop | ÷ hand | ÷ loop |"
    print(header)
    print("|" + "---|" * 6)
    for name, t in rows:
        print(f"| {name:58s} | {1e3 * t['npfunc']:7.2f} ms | {1e3 * t['hand']:7.2f} ms | "
              f"{1e3 * t['loop']:8.2f} ms | {t['npfunc'] / t['hand']:5.2f}x | {t['npfunc'] / t['loop']:5.2f}x |")
    return rows


if __name__ == "__main__":
    main()
