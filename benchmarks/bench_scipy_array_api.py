"""grad of scipy.special.logsumexp three ways: time ÷ hand-written NumPy.

* array-API path: SciPy's own ``logsumexp`` (with ``SCIPY_ARRAY_API=1``,
  set by this script before SciPy is imported) running on traced values
  through ``npfunc.array_api``;
* twin: ``npfunc.scipy.special.logsumexp`` (one primitive with its own
  rules; what an unmodified ``scipy.special.logsumexp`` call reaches);
* hand-written: the gradient formula, ``softmax(x)``, in NumPy.

Each workload checks that the three gradients agree before timing them, with
bench_core.py's method (interleaved medians).

    python benchmarks/bench_scipy_array_api.py           # full sizes
    python benchmarks/bench_scipy_array_api.py --quick   # small sizes, few repeats
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # SciPy reads it once, at import

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402

import npfunc  # noqa: E402
from npfunc import grad, vmap  # noqa: E402
from npfunc.scipy import special as twins  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_core import Config, check, measure_pair  # noqa: E402

SCIPY_OWN = getattr(scipy.special.logsumexp, "__wrapped__", scipy.special.logsumexp)  # not npfunc's router


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def rows(cfg: Config, n: int, batch: int, width: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    xs = rng.standard_normal((batch, width))
    workloads = [
        (f"grad of logsumexp(x), n {n}",
         lambda f: (lambda: grad(f)(x)), lambda: softmax(x)),
        (f"grad of sum(logsumexp(X, axis=1)), X {batch}×{width}",
         lambda f: (lambda: grad(lambda a: f(a, axis=1).sum())(xs)), lambda: softmax(xs, axis=1)),
        (f"vmap(grad(logsumexp)) over {batch} rows of {width}",
         lambda f: (lambda: vmap(grad(f))(xs)), lambda: softmax(xs, axis=1)),
    ]
    out = []
    for name, make, by_hand in workloads:
        path, twin = make(SCIPY_OWN), make(twins.logsumexp)
        check(name + " (array-API path)", path(), by_hand(), rtol=1e-10, atol=1e-14)
        check(name + " (twin)", twin(), by_hand(), rtol=1e-10, atol=1e-14)
        t_path, t_hand = measure_pair(path, by_hand, cfg)
        t_twin, t_hand2 = measure_pair(twin, by_hand, cfg)
        out.append((name, t_path, t_twin, (t_hand + t_hand2) / 2))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        raise SystemExit("run with SCIPY_ARRAY_API unset or set to 1: the array-API path needs it")
    cfg = Config(quick=args.quick, repeats=args.repeats or (3 if args.quick else 15),
                 min_time=0.002 if args.quick else 0.05)
    table = rows(cfg, 100 if args.quick else 100_000, 8 if args.quick else 256, 10 if args.quick else 100)
    table += rows(cfg, 10, 4, 10) if not args.quick else []
    width = max(len(r[0]) for r in table)
    print(f"{'workload':<{width}}  {'array-API':>10}  {'twin':>10}  {'hand':>10}  {'API/hand':>8}  "
          f"{'twin/hand':>9}  API/twin")
    for name, t_path, t_twin, t_hand in table:
        print(f"{name:<{width}}  {t_path * 1e6:8.1f}µs  {t_twin * 1e6:8.1f}µs  {t_hand * 1e6:8.1f}µs  "
              f"{t_path / t_hand:7.2f}×  {t_twin / t_hand:8.2f}×  {t_path / t_twin:6.2f}×")
    print(f"npfunc {npfunc.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
