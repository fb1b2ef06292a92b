"""grad of unmodified NumPy statistics and interpolation, against hand-written derivatives.

Each workload differentiates plain NumPy code (``np.median``, ``np.quantile``,
``np.interp``, ``np.cov``) with ``npfunc.grad`` and compares it with a
hand-written NumPy function computing the same value and gradient (the
practical speed limit).  Results are checked with ``assert_allclose`` before
any timing.  Reported: median time of each and the ratio npfunc / hand.

    python benchmarks/bench_numpy_functions.py            # full sizes (~20 s)
    python benchmarks/bench_numpy_functions.py --quick    # small sizes, few repeats
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

import npfunc


def _time(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    fn()
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - t0 >= min_time or loops > 1e6:
            break
        loops *= 2
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


# ---- the workloads: (npfunc, hand-written), each returning (value, gradient) --------------------

def median_pair(n: int, rng):
    x = rng.standard_normal(n)  # n odd: the middle order statistic

    def hand():
        k = n // 2
        i = np.argpartition(x, k)[k]
        g = np.zeros(n)
        g[i] = 1.0
        return x[i], g

    return x, npfunc.grad_and_value(np.median), hand


def quantile_pair(n: int, rng):
    x = rng.standard_normal(n)
    q = 0.9

    def loss(x):
        return np.quantile(x, q)

    def hand():
        v = (n - 1) * q
        lo = int(np.floor(v))
        g_ = v - lo
        idx = np.argpartition(x, (lo, lo + 1))
        a, b = x[idx[lo]], x[idx[lo + 1]]
        g = np.zeros(n)
        g[idx[lo]] += 1 - g_
        g[idx[lo + 1]] += g_
        return a + (b - a) * g_, g

    return x, npfunc.grad_and_value(loss), hand


def interp_pair(m: int, rng, n: int = 1000):
    xp = np.sort(rng.uniform(0, 10, n))
    fp = np.sin(xp)
    x = rng.uniform(-0.5, 10.5, m)

    def loss(x, fp):
        return np.sum(np.interp(x, xp, fp) ** 2)

    def hand():
        y = np.interp(x, xp, fp)
        j = np.clip(np.searchsorted(xp, x, side="right"), 1, n - 1) - 1
        dx = xp[j + 1] - xp[j]
        w = (x - xp[j]) / dx
        s = (fp[j + 1] - fp[j]) / dx
        inside = (x >= xp[0]) & (x <= xp[-1])
        g = 2 * y
        gin = np.where(inside, g, 0.0)
        g_fp = np.bincount(j, gin * (1 - w), minlength=n) + np.bincount(j + 1, gin * w, minlength=n)
        g_fp[0] += np.sum(g[x < xp[0]])
        g_fp[-1] += np.sum(g[x > xp[-1]])
        return np.sum(y ** 2), (gin * s, g_fp)

    def run():
        (gx, gfp), v = npfunc.grad_and_value(loss, argnums=(0, 1))(x, fp)
        return v, (gx, gfp)

    return None, run, hand


def cov_pair(n: int, rng, k: int = 16):
    X = rng.standard_normal((k, n))
    W = rng.standard_normal((k, k))

    def loss(X):
        return np.sum(np.cov(X) * W)

    def hand():
        Xc = X - X.mean(axis=1, keepdims=True)
        C = Xc @ Xc.T / (n - 1)
        return np.sum(C * W), (W + W.T) @ Xc / (n - 1)

    return X, npfunc.grad_and_value(loss), hand


WORKLOADS = {
    "grad np.median": (median_pair, (10_001, 1_000_001), (1_001,)),
    "grad np.quantile (linear)": (quantile_pair, (10_001, 1_000_001), (1_001,)),
    "grad np.interp (x and fp)": (interp_pair, (10_000, 1_000_000), (1_000,)),
    "grad np.cov (16 variables)": (cov_pair, (1_000, 100_000), (200,)),
}


def _check(got, want):
    (g_got, v_got), (v_want, g_want) = got, want
    np.testing.assert_allclose(v_got, v_want, rtol=1e-10)
    for a, b in zip(g_got if isinstance(g_got, tuple) else (g_got,),
                    g_want if isinstance(g_want, tuple) else (g_want,)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def main(argv=None) -> list[tuple[str, int, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 short repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    min_time = 0.002 if args.quick else 0.05
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'workload':32} {'size':>10} {'npfunc':>11} {'hand':>11} {'ratio':>7}")
    for name, (make, sizes, quick_sizes) in WORKLOADS.items():
        for size in (quick_sizes if args.quick else sizes):
            arg, fn, hand = make(size, rng)
            call = (lambda: fn(arg)) if arg is not None else fn
            got = call()
            if arg is None:  # interp returns (value, grads)
                got = (got[1], got[0])
            _check(got, hand())
            t_np, t_hand = _time(call, repeats, min_time), _time(hand, repeats, min_time)
            rows.append((name, size, t_np, t_hand))
            print(f"{name:32} {size:>10} {t_np * 1e6:>9.1f}us {t_hand * 1e6:>9.1f}us {t_np / t_hand:>6.2f}x")
    return rows


if __name__ == "__main__":
    main()
