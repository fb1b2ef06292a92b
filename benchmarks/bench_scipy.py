"""Gradients of likelihoods written with scipy.special / npfunc.scipy.stats,
as ratios to their hand-written derivatives in vectorised NumPy.

Each workload checks npfunc's gradient against the hand-written one before
timing (``bench_core``'s helpers: alternating measurements, median).

    python benchmarks/bench_scipy.py            # full sizes
    python benchmarks/bench_scipy.py --quick    # small sizes, few repeats
    python benchmarks/bench_scipy.py --only rician

Workloads (float64, eager):

* ``rician``: grad of a Rician negative log-likelihood (``scipy.special.i0e``,
  called unmodified) in (nu, log sigma) over N observations; by hand the
  Bessel ratio ``i1e/i0e`` gives the gradient.
* ``von Mises mixture``: grad of a two-component von Mises mixture
  (``i0e`` and ``logsumexp``) in its 5 parameters over N angles.
* ``weibull``: grad of a right-censored Weibull likelihood written with
  ``npfunc.scipy.stats.weibull_min.logpdf/logsf`` in (log c, log scale).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import scipy.special as sc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_core import Config, Row, compare, print_table  # noqa: E402

import npfunc  # noqa: E402
from npfunc.scipy import special as S  # noqa: E402
from npfunc.scipy import stats  # noqa: E402


# ---- Rician -----------------------------------------------------------------------------------

def rician_nll(p, x):
    nu, s2 = p[0], np.exp(2 * p[1])
    z = x * nu / s2
    return -np.sum(np.log(x / s2) - (x * x + nu * nu) / (2 * s2) + np.log(sc.i0e(z)) + z)


def rician_grad_by_hand(p, x):
    nu, s2 = p[0], np.exp(2 * p[1])
    z = x * nu / s2
    ratio = sc.i1e(z) / sc.i0e(z)
    return np.array([-np.sum(-nu / s2 + ratio * x / s2),
                     -np.sum(-2.0 + (x * x + nu * nu) / s2 - 2 * ratio * z)])


def bench_rician(cfg: Config, rng) -> list[Row]:
    rows = []
    for n in ((1_000,) if cfg.quick else (1_000, 100_000)):
        x = np.abs(3.0 + 0.8 * (rng.standard_normal(n) + 1j * rng.standard_normal(n)))
        p = np.array([2.5, np.log(0.9)])
        g = npfunc.grad(rician_nll)
        rows.append(compare(f"rician grad, N = {n}", lambda: g(p, x), lambda: rician_grad_by_hand(p, x),
                            "", cfg, rtol=1e-9))
    return rows


# ---- von Mises mixture --------------------------------------------------------------------------

def vm_mixture_nll(theta, x):
    mu, kappa, w = theta[:2], np.exp(theta[2:4]), sc.expit(theta[4])
    comp = kappa * (np.cos(x[:, None] - mu) - 1) - np.log(2 * np.pi * sc.i0e(kappa))
    return -np.sum(S.logsumexp(np.log(np.stack([w, 1 - w])) + comp, axis=1))


def vm_mixture_grad_by_hand(theta, x):
    mu, kappa, w = theta[:2], np.exp(theta[2:4]), sc.expit(theta[4])
    d = x[:, None] - mu
    comp = kappa * (np.cos(d) - 1) - np.log(2 * np.pi * sc.i0e(kappa))
    logits = np.log(np.array([w, 1 - w])) + comp
    r = np.exp(logits - sc.logsumexp(logits, axis=1, keepdims=True))        # responsibilities
    a = sc.i1e(kappa) / sc.i0e(kappa)
    g_mu = -np.sum(r * kappa * np.sin(d), axis=0)
    g_logk = -np.sum(r * (np.cos(d) - a), axis=0) * kappa
    g_w = -np.sum(r[:, 0] * (1 - w) - r[:, 1] * w)
    return np.concatenate([g_mu, g_logk, [g_w]])


def bench_vm_mixture(cfg: Config, rng) -> list[Row]:
    rows = []
    for n in ((1_000,) if cfg.quick else (1_000, 100_000)):
        x = np.concatenate([rng.vonmises(-1.0, 4.0, n // 2), rng.vonmises(2.0, 8.0, n - n // 2)])
        theta = np.array([-0.8, 1.7, 1.2, 1.9, 0.1])
        g = npfunc.grad(vm_mixture_nll)
        rows.append(compare(f"von Mises mixture grad, N = {n}", lambda: g(theta, x),
                            lambda: vm_mixture_grad_by_hand(theta, x), "", cfg, rtol=1e-9))
    return rows


# ---- censored Weibull (npfunc.scipy.stats twin) -------------------------------------------------------

def weibull_nll(theta, t, event):
    c, scale = np.exp(theta[0]), np.exp(theta[1])
    return -np.sum(np.where(event, stats.weibull_min.logpdf(t, c, scale=scale),
                            stats.weibull_min.logsf(t, c, scale=scale)))


def weibull_grad_by_hand(theta, t, event):
    c, scale = np.exp(theta[0]), np.exp(theta[1])
    z = t / scale
    log_z = np.log(z)
    zc = z ** c
    # log f = log c - log scale + (c - 1) log z - z^c ;  log S = -z^c
    d_logc = np.where(event, 1 + c * log_z - c * zc * log_z, -c * zc * log_z)
    d_logscale = np.where(event, -1 - (c - 1) + c * zc, c * zc)
    return -np.array([np.sum(d_logc), np.sum(d_logscale)])


def bench_weibull(cfg: Config, rng) -> list[Row]:
    rows = []
    for n in ((1_000,) if cfg.quick else (1_000, 100_000)):
        t_true = 3.0 * rng.weibull(1.7, n)
        censor = rng.uniform(0, 6, n)
        t, event = np.minimum(t_true, censor), t_true <= censor
        theta = np.array([0.4, 1.0])
        g = npfunc.grad(weibull_nll)
        rows.append(compare(f"censored Weibull grad (stats twin), N = {n}", lambda: g(theta, t, event),
                            lambda: weibull_grad_by_hand(theta, t, event), "", cfg, rtol=1e-9))
    return rows


BENCHMARKS = {"rician": bench_rician, "von Mises mixture": bench_vm_mixture, "weibull": bench_weibull}


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help=f"run only benchmarks whose name contains NAME ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick, repeats=args.repeats or (3 if args.quick else 15),
                 min_time=0.002 if args.quick else 0.05)
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for name, bench in BENCHMARKS.items():
        if not args.only or any(sel in name for sel in args.only):
            rows.extend(bench(cfg, rng))
    print(f"npfunc {npfunc.__version__}, numpy {np.__version__}, {'quick' if cfg.quick else 'full'} run, "
          f"median of {cfg.repeats} repeats, float64; ratio = npfunc grad time / hand-written gradient time")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
