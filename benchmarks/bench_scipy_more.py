"""Derivatives through the SciPy twins (signal, distances, interpolation,
linear algebra) against hand-written NumPy/SciPy computing the same
quantity.  Each row reports npfunc's time / the hand-written time; before
timing, both results are checked to agree.

    python benchmarks/bench_scipy_more.py            # ~20 s on 2 cores
    python benchmarks/bench_scipy_more.py --quick    # small sizes, few repeats
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.interpolate as si
import scipy.linalg as sl
import scipy.signal as ss
import scipy.spatial.distance as sd

import npfunc
from npfunc.scipy import linalg as L
from npfunc.scipy import signal as S
from npfunc.scipy.interpolate import CubicSpline
from npfunc.scipy.spatial.distance import cdist


def _time(fn, min_time, repeats):
    fn()
    runs = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        runs.append(elapsed / n)
    return statistics.median(runs)


# ---- workloads: (name, npfunc callable, hand-written callable) -----------------------------------

def iir_grad(n):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(n), rng.standard_normal(n)
    b, a = np.array([0.2, 0.3, 0.1]), np.array([1.0, -0.9, 0.3])

    def loss(b, a):
        return (w * S.lfilter(b, a, x)).sum()

    ours = lambda: npfunc.grad(loss, argnums=(0, 1))(b, a)  # noqa: E731

    def hand():  # y = lfilter(b, a, x); the adjoint runs the recursion backwards in time
        y = ss.lfilter(b, a, x)
        gv = ss.lfilter([1.0], a, w[::-1])[::-1]
        gb = np.array([gv[k:] @ x[:n - k] for k in range(len(b))])
        ga = -np.array([gv[k:] @ y[:n - k] for k in range(len(a))])
        return gb, ga

    return f"grad of an IIR filter loss in (b, a), n = {n}", ours, hand


def gp_grad(m):
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 3, (m, 2))
    y = np.sin(pts.sum(axis=1))

    def nll(log_ell):
        k = np.exp(-0.5 * cdist(pts, pts, "sqeuclidean") * np.exp(-2 * log_ell)) + 1e-2 * np.eye(m)
        return 0.5 * y @ np.linalg.solve(k, y) + 0.5 * np.linalg.slogdet(k)[1]

    ours = lambda: npfunc.grad(nll)(np.float64(-0.2))  # noqa: E731

    def hand():
        d2 = sd.cdist(pts, pts, "sqeuclidean")
        k0 = np.exp(-0.5 * d2 * np.exp(0.4))
        k = k0 + 1e-2 * np.eye(m)
        kinv = np.linalg.inv(k)
        alpha = kinv @ y
        dk = k0 * d2 * np.exp(0.4)  # d/d(log_ell)
        return 0.5 * np.sum((kinv - np.outer(alpha, alpha)) * dk)

    return f"GP kernel from cdist: grad of the NLL in the length scale, m = {m}", ours, hand


def spline_jacobian(n, mode):
    x = np.linspace(0, 1, n)
    xp = np.linspace(0.01, 0.99, 4 * n)
    y = np.sin(3 * x)
    transform = npfunc.jacfwd if mode == "jacfwd" else npfunc.jacrev
    ours = lambda: transform(lambda y: CubicSpline(x, y)(xp))(y)  # noqa: E731
    hand = lambda: si.CubicSpline(x, np.eye(n))(xp)  # noqa: E731  (linear in the data: splines of the unit vectors)
    return f"{mode} of a CubicSpline in its data, n = {n}, {4 * n} points", ours, hand


def lyapunov_grad(n):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n)) - 2 * np.sqrt(n) * np.eye(n)
    q = np.eye(n)
    ours = lambda: npfunc.grad(lambda a: np.trace(L.solve_continuous_lyapunov(a, q)))(a)  # noqa: E731

    def hand():  # X solves A X + X A^T = Q; d tr(X) = tr(Y^T ...) with A^T Y + Y A = I
        x = sl.solve_continuous_lyapunov(a, q)
        yy = sl.solve_continuous_lyapunov(a.T, np.eye(n))
        return -(yy @ x.T + yy.T @ x)

    return f"grad of trace(solve_continuous_lyapunov(A, Q)) in A, n = {n}", ours, hand


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 11)
    min_time = 0.002 if args.quick else 0.05
    sizes = dict(iir=2000, gp=64, spline=50, lyap=20) if args.quick else dict(iir=20000, gp=256, spline=200,
                                                                                lyap=40)
    rows = [iir_grad(sizes["iir"]), gp_grad(sizes["gp"]), spline_jacobian(sizes["spline"], "jacfwd"),
            spline_jacobian(sizes["spline"], "jacrev"), lyapunov_grad(sizes["lyap"])]
    print(f"{'workload':<72} {'npfunc':>10} {'hand':>10} {'ratio':>7}")
    for name, ours, hand in rows:
        got, expected = ours(), hand()
        for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple)
                        else (expected,)):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-8)
        t_ours, t_hand = _time(ours, min_time, repeats), _time(hand, min_time, repeats)
        print(f"{name:<72} {t_ours * 1e3:>8.2f}ms {t_hand * 1e3:>8.2f}ms {t_ours / t_hand:>6.2f}x")


if __name__ == "__main__":
    main()
