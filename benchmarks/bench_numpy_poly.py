"""Polynomials, general eigenvalues and np.vectorize: npfunc time ÷ hand-written NumPy.

Each workload is plain NumPy user code under an npfunc transform, checked
against (then timed beside) a hand-written vectorised NumPy formula for the
same quantity, with bench_core.py's method (interleaved medians).

    python benchmarks/bench_numpy_poly.py           # full sizes
    python benchmarks/bench_numpy_poly.py --quick   # small sizes, few repeats
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from numpy.polynomial import Chebyshev
from numpy.polynomial import chebyshev as C

import npfunc
from npfunc import grad, jacrev, vmap

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_core import Config, Row, compare  # noqa: E402


def polyval_rows(cfg: Config, n_x: int, deg: int) -> list[Row]:
    rng = np.random.default_rng(0)
    c, x = rng.standard_normal(deg + 1), rng.uniform(-1, 1, n_x)
    powers = np.arange(deg, -1, -1)
    loss = lambda c, x: np.polyval(c, x).sum()  # noqa: E731
    rows = [
        compare(f"grad_c of sum(np.polyval), deg {deg}, {n_x} points", lambda: grad(loss)(c, x),
                lambda: np.vander(x, deg + 1).sum(0), "", cfg),
        compare(f"grad_x of sum(np.polyval), deg {deg}, {n_x} points", lambda: grad(loss, argnums=1)(c, x),
                lambda: np.polyval(c[:-1] * powers[:-1], x), "", cfg),
    ]
    cs = rng.standard_normal((64, deg + 1))
    rows.append(compare(f"vmap np.polyval over 64 coefficient sets, {n_x} points",
                        lambda: vmap(np.polyval, in_dims=(0, None))(cs, x),
                        lambda: cs @ np.vander(x, deg + 1).T, "", cfg))
    cheb = lambda c: C.chebval(x, c).sum()  # noqa: E731
    rows.append(compare(f"grad_c of sum(chebval) (numpy.polynomial), deg {deg}", lambda: grad(cheb)(c),
                        lambda: C.chebvander(x, deg).sum(0), "", cfg))
    return rows


def polyfit_rows(cfg: Config, n: int, deg: int) -> list[Row]:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, n)
    y = np.sin(4 * t) + 0.1 * rng.standard_normal(n)
    forecast = lambda y: np.polyval(np.polyfit(t, y, deg), 1.2)  # noqa: E731
    V = np.vander(t, deg + 1)

    def by_hand():
        return np.linalg.pinv(V).T @ (1.2 ** np.arange(deg, -1, -1))   # the hat-matrix row

    series = lambda y: Chebyshev.fit(t, y, deg)(1.2)  # noqa: E731
    return [compare(f"grad_y of np.polyfit forecast, deg {deg}, n {n}", lambda: grad(forecast)(y), by_hand,
                    "", cfg, rtol=1e-6),
            compare(f"grad_y of Chebyshev.fit forecast, deg {deg}, n {n}", lambda: grad(series)(y), by_hand,
                    "", cfg, rtol=1e-6)]


def eig_rows(cfg: Config, n: int) -> list[Row]:
    a = np.random.default_rng(2).standard_normal((n, n)) + 2 * np.eye(n)
    abscissa = lambda m: np.linalg.eigvals(m).real.sum()  # noqa: E731

    def by_hand():   # d sum Re(w) / dA = Re(sum_j conj(u_j) v_j^T) = I
        w, v = np.linalg.eig(a)
        u = np.linalg.inv(v)
        return np.real(v @ u).T

    def jac_by_hand():   # d Re w_j / d A_ik = Re(u_ji v_kj); jacrev: n cotangents, O(n^3) each
        w, v = np.linalg.eig(a)
        u = np.linalg.inv(v)
        return np.einsum("ji,kj->jik", u, v).real

    return [compare(f"grad of sum Re eigvals, n {n}", lambda: grad(abscissa)(a), by_hand, "", cfg),
            compare(f"jacrev of Re np.linalg.eigvals, n {n}", lambda: jacrev(lambda m: np.linalg.eigvals(m).real)(a),
                    jac_by_hand, "", cfg, rtol=1e-6, atol=1e-8)]


def vectorize_rows(cfg: Config, n: int) -> list[Row]:
    x = np.random.default_rng(3).standard_normal(n)
    huber = np.vectorize(lambda r: np.where(abs(r) < 1.0, 0.5 * r * r, abs(r) - 0.5))
    loss = lambda r: huber(r).sum()  # noqa: E731
    rows = [compare(f"grad of np.vectorize(huber) sum, n {n}", lambda: grad(loss)(x),
                    lambda: np.clip(x, -1.0, 1.0), "", cfg)]
    rows.append(compare(f"np.vectorize(huber) plain NumPy loop (reference), n {n}", lambda: huber(x),
                        lambda: np.where(abs(x) < 1.0, 0.5 * x * x, abs(x) - 0.5), "", cfg))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick, repeats=args.repeats or (3 if args.quick else 15),
                 min_time=0.002 if args.quick else 0.05)
    rows = polyval_rows(cfg, 200 if args.quick else 10_000, 8)
    rows += polyfit_rows(cfg, 50 if args.quick else 2_000, 5)
    rows += eig_rows(cfg, 8 if args.quick else 64)
    rows += vectorize_rows(cfg, 100 if args.quick else 10_000)
    width = max(len(r.workload) for r in rows)
    print(f"{'workload':<{width}}  {'npfunc':>10}  {'hand':>10}  ratio")
    for r in rows:
        print(f"{r.workload:<{width}}  {r.t_npfunc * 1e6:8.1f}µs  {r.t_hand * 1e6:8.1f}µs  {r.ratio:6.2f}×")
    print(f"npfunc {npfunc.__name__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
