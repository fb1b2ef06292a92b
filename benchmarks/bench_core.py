"""Core npfunc benchmarks, as ratios to hand-written vectorised NumPy.

Every workload computes one quantity twice: once with npfunc transforms over
plain NumPy code, once with a hand-written, fully vectorised NumPy formula
for the same quantity (the practical speed limit on this substrate).  The
two results are compared with ``np.testing.assert_allclose`` *before* any
timing, so a wrong fast answer can never look like a win.

Timing: one warm-up call, then the median over several repeats of
``time.perf_counter`` measurements; fast calls are looped inside a repeat so
that each measurement lasts at least a few milliseconds.

    python benchmarks/bench_core.py            # full sizes (about a minute)
    python benchmarks/bench_core.py --quick    # small sizes, few repeats
    python benchmarks/bench_core.py --only hessian

The table's last column is the target from SPEC.md (time / hand-written).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import npfunc
from npfunc import grad, hessian, jacfwd, jacrev, jvp, vmap

# ---------------------------------------------------------------------------
# timing and reporting helpers
# ---------------------------------------------------------------------------


@dataclass
class Config:
    quick: bool
    repeats: int
    min_time: float  # seconds one measurement should last at least
    clock: Callable[[], float] = time.perf_counter  # time.process_time: CPU time, for a loaded machine


@dataclass
class Row:
    workload: str
    t_npfunc: float  # seconds
    t_hand: float  # seconds
    target: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.t_npfunc / self.t_hand


def _calibrate(fn: Callable[[], object], cfg: Config) -> int:
    """How many calls of ``fn`` make one measurement last >= ``cfg.min_time``."""
    for _ in range(3):  # warm up: first-call imports, caches, the allocator, and the eager
        fn()            # transforms' compiled pull-backs (made on a tape's second sighting)
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(cfg.min_time / max(once, 1e-9)))


def _sample(fn: Callable[[], object], number: int, clock=time.perf_counter) -> float:
    start = clock()
    for _ in range(number):
        fn()
    return (clock() - start) / number


def measure_pair(fn_a, fn_b, cfg: Config) -> tuple[float, float]:
    """Median seconds per call of ``fn_a`` and ``fn_b``.

    The two are measured alternately, so that machine noise and drift (other
    processes, page-fault storms from large allocations) hit both alike.
    """
    n_a, n_b = _calibrate(fn_a, cfg), _calibrate(fn_b, cfg)
    samples_a, samples_b = [], []
    for _ in range(cfg.repeats):
        samples_a.append(_sample(fn_a, n_a, cfg.clock))
        samples_b.append(_sample(fn_b, n_b, cfg.clock))
    return statistics.median(samples_a), statistics.median(samples_b)


def check(name: str, got, expected, rtol=1e-7, atol=1e-9) -> None:
    """Assert that two (pytrees of) arrays agree; name the workload if not."""
    got_leaves = got if isinstance(got, (tuple, list)) else (got,)
    exp_leaves = expected if isinstance(expected, (tuple, list)) else (expected,)
    assert len(got_leaves) == len(exp_leaves), f"{name}: {len(got_leaves)} outputs vs {len(exp_leaves)}"
    for k, (g, e) in enumerate(zip(got_leaves, exp_leaves)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"{name}: output {k} differs from the hand-written result")


def compare(name: str, npfunc_fn, hand_fn, target: str, cfg: Config, note: str = "",
            rtol=1e-7, atol=1e-9) -> Row:
    """Check ``npfunc_fn() == hand_fn()``, then time both.  The note gives the
    first three calls of ``npfunc_fn`` when they cost more than later ones (an
    eager jacrev/jacfwd/hessian compiles its tape's pull-back on the third)."""
    firsts = []
    for k in range(3):
        start = time.perf_counter()
        got = npfunc_fn()
        firsts.append(time.perf_counter() - start)
        if k == 0:
            check(name, got, hand_fn(), rtol=rtol, atol=atol)
    t_npfunc, t_hand = measure_pair(npfunc_fn, hand_fn, cfg)
    if not note and max(firsts) > 5 * t_npfunc:
        note = "first calls " + ", ".join(f"{t * 1e3:.2f}" for t in firsts) + " ms"
    return Row(name, t_npfunc, t_hand, target, note)


def compare_jit(name: str, make: Callable[[], Callable], args: tuple, hand_fn, target: str, cfg: Config,
                rtol=1e-7, atol=1e-9) -> Row:
    """Like ``compare`` for ``npfunc.jit(make())(*args)``; the note gives the compile
    time (trace + optimise + code generation) of the first call, taken before timing."""
    jitted = npfunc.jit(make())
    start = time.perf_counter()
    jitted(*args)
    first = time.perf_counter() - start
    times = jitted.last_compile
    row = compare(name, lambda: jitted(*args), hand_fn, target, cfg, rtol=rtol, atol=atol)
    row.note = (f"compile {sum(times.values()) * 1e3:.1f} ms (trace {times['trace'] * 1e3:.1f}, "
                f"optimise {times['optimize'] * 1e3:.1f}, codegen {times['codegen'] * 1e3:.1f}); "
                f"first call {first * 1e3:.1f} ms")
    return row


# ---------------------------------------------------------------------------
# (a) per-sample gradients of an MLP
# ---------------------------------------------------------------------------


def mlp_params(rng, d_in, d_hidden, d_out):
    return (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in), 0.1 * rng.standard_normal(d_hidden),
            rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden), 0.1 * rng.standard_normal(d_out))


def mlp_loss(params, x, y):
    """Cross-entropy of a tanh MLP on ONE example (x: features, y: one-hot)."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    m = np.max(logits)
    log_z = np.log(np.sum(np.exp(logits - m))) + m
    return log_z - np.sum(logits * y)


def mlp_per_sample_grads_by_hand(params, X, Y):
    """The same per-sample gradients, batch-vectorised by hand."""
    w1, b1, w2, b2 = params
    H = np.tanh(X @ w1 + b1)
    logits = H @ w2 + b2
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    d_logits = P - Y  # (B, out)
    d_pre = (d_logits @ w2.T) * (1.0 - H * H)  # (B, hidden)
    return (np.einsum("bi,bj->bij", X, d_pre), d_pre,
            np.einsum("bi,bj->bij", H, d_logits), d_logits)


def bench_per_sample_grads(cfg: Config, rng) -> list[Row]:
    dims = (784, 128, 10)
    rows = []
    for batch in ((8,) if cfg.quick else (64, 512)):
        params = mlp_params(rng, *dims)
        X = rng.standard_normal((batch, dims[0]))
        Y = np.eye(dims[2])[rng.integers(0, dims[2], batch)]
        per_sample = vmap(grad(mlp_loss), in_dims=(None, 0, 0))
        rows.append(compare(
            f"per-sample grads MLP 784-128-10, B={batch}",
            lambda: per_sample(params, X, Y),
            lambda: mlp_per_sample_grads_by_hand(params, X, Y),
            "<= 1.3x", cfg))
        rows.append(compare_jit(
            f"jit(per-sample grads) MLP 784-128-10, B={batch}", lambda: per_sample, (params, X, Y),
            lambda: mlp_per_sample_grads_by_hand(params, X, Y), "<= 1.1x", cfg))
    return rows


# ---------------------------------------------------------------------------
# (b) jacrev / jacfwd of tanh(W x + b)
# ---------------------------------------------------------------------------


def bench_jacobians(cfg: Config, rng) -> list[Row]:
    rows = []
    for n in ((16,) if cfg.quick else (64, 512)):
        W = rng.standard_normal((n, n)) / np.sqrt(n)
        b = rng.standard_normal(n)
        x = rng.standard_normal(n)

        def f(x):
            return np.tanh(W @ x + b)

        def by_hand():
            y = np.tanh(W @ x + b)
            return (1.0 - y * y)[:, None] * W

        for name, transform in (("jacrev", jacrev), ("jacfwd", jacfwd)):
            jac = transform(f)
            rows.append(compare(f"{name} tanh(Wx+b), n={n}", lambda: jac(x), by_hand,
                                "<= 6x" if n < 512 else "<= 3x", cfg))  # (SPEC.md's targets)
            rows.append(compare_jit(f"jit({name}) tanh(Wx+b), n={n}", lambda: transform(f), (x,), by_hand,
                                    "<= 1.5x", cfg))
    return rows


# ---------------------------------------------------------------------------
# (c) hessian of logsumexp(A x), (g) Hessian-vector product
# ---------------------------------------------------------------------------


def logsumexp(z):
    m = np.max(z)
    return np.log(np.sum(np.exp(z - m))) + m


def softmax_by_hand(z):
    p = np.exp(z - z.max())
    return p / p.sum()


def bench_hessian(cfg: Config, rng) -> list[Row]:
    rows = []
    for n in ((16,) if cfg.quick else (64, 256)):
        A = rng.standard_normal((n, n)) / np.sqrt(n)
        x = rng.standard_normal(n)

        def f(x):
            return logsumexp(A @ x)

        def by_hand():
            p = softmax_by_hand(A @ x)
            u = A.T @ p
            # A^T (diag(p) - p p^T) A
            return (A.T * p) @ A - np.outer(u, u)

        hess = hessian(f)
        rows.append(compare(f"hessian logsumexp(Ax), n={n}", lambda: hess(x), by_hand,
                            "<= 6x" if n < 256 else "<= 3x", cfg))
        rows.append(compare_jit(f"jit(hessian) logsumexp(Ax), n={n}", lambda: hessian(f), (x,), by_hand,
                                "<= 2x", cfg))
    return rows


def bench_hvp(cfg: Config, rng) -> list[Row]:
    n = 32 if cfg.quick else 512
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(x):
        return logsumexp(A @ x)

    grad_f = grad(f)

    def hvp():  # forward-over-reverse: (gradient, H v)
        return jvp(grad_f, (x,), (v,))

    def by_hand():
        p = softmax_by_hand(A @ x)
        Av = A @ v
        return A.T @ p, A.T @ (p * (Av - p @ Av))

    def hvp_of(x, v):
        return jvp(grad_f, (x,), (v,))

    return [compare(f"HVP jvp(grad) logsumexp(Ax), n={n}", hvp, by_hand, "<= 1.5x", cfg,
                    note="both return (grad, Hv)"),
            compare_jit(f"jit(HVP) logsumexp(Ax), n={n}", lambda: hvp_of, (x, v), by_hand, "<= 1.2x", cfg)]


# ---------------------------------------------------------------------------
# (d) grad of a 50-op elementwise chain on R^8
# ---------------------------------------------------------------------------

# One cycle of five elementwise ops: (forward on x, derivative given x and y=f(x)).
_CYCLE = (
    (np.sin, lambda x, y: np.cos(x)),
    (lambda x: x * 1.5, lambda x, y: 1.5),
    (np.tanh, lambda x, y: 1.0 - y * y),
    (lambda x: x + 0.25, lambda x, y: 1.0),
    (np.exp, lambda x, y: y),
)
CHAIN = _CYCLE * 10  # 50 ops, each one NumPy call


def chain(x):
    for op, _ in CHAIN:
        x = op(x)
    return np.sum(x)


def chain_grad_by_hand(x):
    """Plain NumPy forward (keeping intermediates) + hand-written backward."""
    inputs, outputs = [], []
    for op, _ in CHAIN:
        y = op(x)
        inputs.append(x)
        outputs.append(y)
        x = y
    g = np.ones_like(x)
    for (_, deriv), xi, yi in zip(reversed(CHAIN), reversed(inputs), reversed(outputs)):
        g = g * deriv(xi, yi)
    return g


def bench_chain(cfg: Config, rng) -> list[Row]:
    x = 0.5 * rng.standard_normal(8)
    g = grad(chain)
    row = compare("grad of 50-op elementwise chain, R^8", lambda: g(x), lambda: chain_grad_by_hand(x),
                  "<= 3x", cfg)
    per_op = row.t_npfunc / len(CHAIN) * 1e6  # one transform level (grad)
    row.note = f"{per_op:.1f} us/op/level (hand: {row.t_hand / len(CHAIN) * 1e6:.1f} us/op)"
    return [row, compare_jit("jit(grad) of 50-op elementwise chain, R^8", lambda: grad(chain), (x,),
                             lambda: chain_grad_by_hand(x), "<= 1x", cfg)]


# ---------------------------------------------------------------------------
# (e) ensemble: vmap over 16 stacked MLPs
# ---------------------------------------------------------------------------


def mlp_forward(params, X):
    w1, b1, w2, b2 = params
    return np.tanh(X @ w1 + b1) @ w2 + b2


def bench_ensemble(cfg: Config, rng) -> list[Row]:
    n_models, batch = (4, 8) if cfg.quick else (16, 64)
    models = [mlp_params(rng, 784, 128, 10) for _ in range(n_models)]
    stacked = tuple(np.stack(leaves) for leaves in zip(*models))  # each leaf gets a leading model axis
    X = rng.standard_normal((batch, 784))
    ensemble = vmap(mlp_forward, in_dims=(0, None))

    def by_hand():
        w1, b1, w2, b2 = stacked
        return np.tanh(X @ w1 + b1[:, None, :]) @ w2 + b2[:, None, :]

    return [compare(f"ensemble vmap {n_models} MLPs 784-128-10, B={batch}",
                    lambda: ensemble(stacked, X), by_hand, "<= 1.1x", cfg),
            compare_jit(f"jit(ensemble) {n_models} MLPs 784-128-10, B={batch}", lambda: ensemble, (stacked, X),
                        by_hand, "<= 1.0x", cfg)]


# ---------------------------------------------------------------------------
# (f) batched Jacobians: vmap(jacrev) of tanh(W x)
# ---------------------------------------------------------------------------


def bench_batched_jacobian(cfg: Config, rng) -> list[Row]:
    batch, n = (16, 8) if cfg.quick else (256, 32)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    X = rng.standard_normal((batch, n))
    batched_jac = vmap(jacrev(lambda x: np.tanh(W @ x)))

    def by_hand():
        Y = np.tanh(X @ W.T)
        return (1.0 - Y * Y)[:, :, None] * W

    return [compare(f"vmap(jacrev) tanh(Wx), B={batch}, n={n}", lambda: batched_jac(X), by_hand,
                    "<= 2x", cfg),
            compare_jit(f"jit(vmap(jacrev)) tanh(Wx), B={batch}, n={n}", lambda: batched_jac, (X,), by_hand,
                        "<= 1.1x", cfg)]


# ---------------------------------------------------------------------------
# (h) import time
# ---------------------------------------------------------------------------


def _import_env() -> dict:
    env = dict(os.environ)
    # Measure an installed package as users run it: with its bytecode cached.
    # (Some environments set PYTHONDONTWRITEBYTECODE=1, which would make every
    # import recompile npfunc's sources from scratch.)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _import_profile(module: str, env: dict) -> dict[str, float]:
    """Cumulative import time (seconds) of every module ``import module`` loads,
    in one fresh process (``python -X importtime``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          check=True, env=env, capture_output=True, text=True)
    found = {}
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            found[parts[2]] = int(parts[1]) * 1e-6
    if module not in found:
        raise RuntimeError(f"no importtime line for {module!r} in:\n{proc.stderr[-2000:]}")
    return found


def _import_seconds(module: str, env: dict) -> float:
    """In-process cumulative import time of ``module`` (``python -X importtime``)."""
    return _import_profile(module, env)[module]


def _wall_seconds(code: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


#: A first gradient after ``import npfunc``: what lazy loading (npfunc/core/lazy.py) defers
#: must not come back on first use.  Prints the seconds from before ``import numpy``.
_FIRST_GRAD = ("import time; t = time.perf_counter(); import numpy as np; import npfunc; "
               "npfunc.grad(lambda x: (np.tanh(x) ** 2).sum())(np.ones(3)); print(time.perf_counter() - t)")


def _first_grad_seconds(env: dict) -> float:
    proc = subprocess.run([sys.executable, "-c", _FIRST_GRAD], check=True, env=env, capture_output=True, text=True)
    return float(proc.stdout)


def bench_import(cfg: Config, rng) -> list[Row]:
    repeats = 3 if cfg.quick else 11
    env = _import_env()
    _wall_seconds("import npfunc", env)  # writes the bytecode cache if missing
    t_npfunc, t_numpy, own, wall_npfunc, wall_bare, t_first = [], [], [], [], [], []
    for _ in range(repeats):  # interleaved, like the other measurements
        profile = _import_profile("npfunc", env)
        t_npfunc.append(profile["npfunc"])
        own.append(profile["npfunc"] - profile.get("numpy", 0.0))  # numpy loads inside npfunc's import
        t_numpy.append(_import_seconds("numpy", env))
        wall_npfunc.append(_wall_seconds("import npfunc", env))
        wall_bare.append(_wall_seconds("pass", env))
        t_first.append(_first_grad_seconds(env))
    med = statistics.median
    return [Row("import npfunc (hand: import numpy)", med(t_npfunc), med(t_numpy), "<= 120 ms",
                note=f"python -X importtime, cumulative, fresh process each time; npfunc's own modules "
                     f"(and optree, SciPy ... if loaded) take {med(own) * 1e3:.1f} ms of it (same process, "
                     f"less the numpy line); wall time of "
                     f"`python -c 'import npfunc'` {med(wall_npfunc) * 1e3:.0f} ms vs "
                     f"{med(wall_bare) * 1e3:.0f} ms for `python -c pass`"),
            Row("import numpy, npfunc + first grad (hand: import numpy)", med(t_first), med(t_numpy), "",
                note="in-process wall time from before `import numpy` to the first gradient's result "
                     "(definitions npfunc loads on first use included)")]


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------

BENCHMARKS = {
    "per-sample": bench_per_sample_grads,
    "jacobian": bench_jacobians,
    "hessian": bench_hessian,
    "chain": bench_chain,
    "ensemble": bench_ensemble,
    "batched-jacobian": bench_batched_jacobian,
    "hvp": bench_hvp,
    "import": bench_import,
}


def _fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def print_table(rows: list[Row]) -> None:
    header = ("workload", "npfunc", "hand-written", "ratio", "target")
    lines = [(r.workload, _fmt_time(r.t_npfunc), _fmt_time(r.t_hand), f"{r.ratio:.2f}x", r.target)
             for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))
    notes = [(r.workload, r.note) for r in rows if r.note]
    if notes:
        print()
        for workload, note in notes:
            print(f"  {workload}: {note}")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats (a correctness smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default) or this process's CPU time (steadier on a machine "
                             "shared with other jobs; BLAS threads add up)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the rows as JSON (for benchmarks/plot_jit.py)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help=f"run only benchmarks whose name contains NAME ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick,
                 repeats=args.repeats or (3 if args.quick else 15),
                 min_time=0.002 if args.quick else 0.05,
                 clock=time.process_time if args.clock == "cpu" else time.perf_counter)
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for name, bench in BENCHMARKS.items():
        if args.only and not any(sel in name for sel in args.only):
            continue
        rows.extend(bench(cfg, rng))
    if not rows:
        parser.error(f"--only {args.only} matches no benchmark; choose from {', '.join(BENCHMARKS)}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"npfunc {npfunc.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"{'quick' if cfg.quick else 'full'} run, median of {cfg.repeats} repeats, {args.clock} clock, float64, "
          f"{os.cpu_count()} cpus, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    print_table(rows)
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"machine": machine_info(cfg),
                       "rows": [{"workload": r.workload, "npfunc_s": r.t_npfunc, "hand_s": r.t_hand,
                                 "ratio": r.ratio, "target": r.target, "note": r.note} for r in rows]},
                      fh, indent=1)
    return rows


def machine_info(cfg: Config) -> dict:
    """Versions, cores and load: the context a table of timings needs."""
    import platform

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"npfunc": npfunc.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load_average": load, "repeats": cfg.repeats,
            "clock": "cpu" if cfg.clock is time.process_time else "wall",
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


if __name__ == "__main__":
    main()
