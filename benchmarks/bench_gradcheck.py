"""gradcheck fast vs slow mode, and autograd.functional.jacobian vs jacrev.

1. ``gradcheck`` of ``f(x) = tanh(W x) * sum(x)`` on 256 inputs (8 outputs),
   slow mode vs ``fast_mode=True``: calls of ``f`` (plain evaluations for
   finite differences, and traced ones for the analytical derivatives) and
   seconds.
2. The Jacobian of ``tanh(W x + b)`` (n inputs, n outputs) with
   ``autograd.functional.jacobian`` (loop of vjps; ``vectorize=True``;
   ``vectorize=True, strategy="forward-mode"``) against ``npfunc.jacrev`` and
   the hand-written ``(1 - y**2)[:, None] * W``, all checked equal first.

    python benchmarks/bench_gradcheck.py            # n = 64, 256
    python benchmarks/bench_gradcheck.py --quick    # small sizes, one repeat
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import npfunc
from npfunc.autograd.functional import jacobian
from npfunc.core.tracer import Tracer
from npfunc.gradcheck import gradcheck


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_gradcheck(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(8, n)) / np.sqrt(n)
    x = rng.uniform(-1.0, 1.0, size=n)
    counts = {"plain": 0, "traced": 0}

    def f(x):
        counts["traced" if isinstance(x, Tracer) else "plain"] += 1
        return np.tanh(W @ x) * x.sum()

    print(f"gradcheck of tanh(W x) * sum(x), {n} inputs, 8 outputs")
    print(f"{'mode':<34}{'plain calls':>12}{'traced calls':>14}{'seconds':>10}")
    for label, kwargs in [("slow (default checks)", {}),
                          ("fast_mode=True", {"fast_mode": True}),
                          ("slow, + forward + batched", {"check_forward_ad": True,
                                                         "check_batched_grad": True}),
                          ("fast, + forward + batched", {"fast_mode": True, "check_forward_ad": True,
                                                         "check_batched_grad": True})]:
        counts.update(plain=0, traced=0)
        assert gradcheck(f, x, **kwargs)
        calls = dict(counts)
        seconds = median_time(lambda: gradcheck(f, x, **kwargs), repeats)
        print(f"{label:<34}{calls['plain']:>12}{calls['traced']:>14}{seconds:>10.3f}")
    print()


def bench_jacobian(sizes, repeats: int) -> None:
    print("Jacobian of tanh(W x + b), n inputs -> n outputs (median seconds; ratio to hand-written)")
    header = f"{'method':<48}" + "".join(f"{f'n = {n}':>22}" for n in sizes)
    print(header)
    rows = {}
    for n in sizes:
        rng = np.random.default_rng(1)
        W = rng.normal(size=(n, n)) / np.sqrt(n)
        b = rng.normal(size=n)
        x = rng.normal(size=n)
        f = lambda x: np.tanh(W @ x + b)
        y = np.tanh(W @ x + b)
        expected = (1 - y ** 2)[:, None] * W
        methods = {
            "hand-written (1 - y**2)[:, None] * W": lambda: (1 - np.tanh(W @ x + b) ** 2)[:, None] * W,
            "npfunc.jacrev": lambda: npfunc.jacrev(f)(x),
            "npfunc.jacfwd": lambda: npfunc.jacfwd(f)(x),
            "jacobian (loop of vjps)": lambda: jacobian(f, x),
            "jacobian(vectorize=True)": lambda: jacobian(f, x, vectorize=True),
            "jacobian(vectorize=True, forward-mode)":
                lambda: jacobian(f, x, vectorize=True, strategy="forward-mode"),
        }
        for name, fn in methods.items():
            np.testing.assert_allclose(fn(), expected, rtol=1e-10, atol=1e-12)
        hand = median_time(methods["hand-written (1 - y**2)[:, None] * W"], repeats)
        for name, fn in methods.items():
            t = hand if name.startswith("hand") else median_time(fn, repeats)
            rows.setdefault(name, []).append(f"{t * 1e3:9.3f} ms ({t / hand:6.1f}x)")
    for name, cells in rows.items():
        print(f"{name:<48}" + "".join(f"{c:>22}" for c in cells))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 5)
    bench_gradcheck(32 if args.quick else 256, repeats)
    bench_jacobian((16,) if args.quick else (64, 256), repeats)


if __name__ == "__main__":
    main()
