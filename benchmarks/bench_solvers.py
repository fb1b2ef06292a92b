"""Differentiable solvers: time and peak memory of the ways to get the same derivative.

1. **ODE, 10 states, 20 parameters** (``y' = -a*y + b*tanh(roll(y)) + 0.1 sin t``,
   loss = sum of squares at 20 output times; the gradient in ``(a, b)``):
   * adjoint: ``grad`` of ``npfunc.scipy.integrate.solve_ivp`` (RK45, rtol 1e-8);
   * forward sensitivities: ``jacfwd`` of the same (20 tangent directions, one
     stacked sensitivity solve);
   * a fixed-step RK4 loop in NumPy differentiated by ``grad`` (steps chosen
     to reach about the same accuracy).
   The error column is against the adjoint at rtol 1e-12.
2. **Newton iteration** for ``A x + 0.1 x³ = θ`` (n = 200), the gradient of a
   loss of the solution in ``θ``: ``grad`` through 8 unrolled Newton steps,
   the implicit derivative of the same Newton solver (``custom_jvp`` with the
   implicit-function rule: one linear solve), and
   ``npfunc.scipy.optimize.root`` (SciPy's hybr, implicit derivative).
3. **Checkpointing**: ``grad`` through a 10,000-step loop on R^100, plain and
   with ``npfunc.checkpoint`` on blocks of 100 steps.

Peak memory is measured with ``tracemalloc`` in a separate run (it slows the
code down); times are medians of interleaved repeats without it.  Every row
first checks its derivative against the reference.

    python benchmarks/bench_solvers.py            # full (~1-2 min on 2 cores)
    python benchmarks/bench_solvers.py --quick    # small sizes, correctness smoke run (no memory)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_solvers.py --only newton   # steadier on a loaded machine
"""
from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

import npfunc
from npfunc.scipy import integrate, optimize


def measure(fns: dict, repeats: int, warm: bool = True) -> dict:
    """Median seconds per call of each function (interleaved repeats, one call each)."""
    samples = {k: [] for k in fns}
    for f in fns.values() if warm else ():
        f()  # warm up (jit caches, imports)
    for _ in range(repeats):
        for k, f in fns.items():
            start = time.perf_counter()
            f()
            samples[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


QUICK = {"on": False}


def peak_memory(fn) -> float:
    """Peak traced allocation of one call, in MB (not measured in quick mode: NaN)."""
    if QUICK["on"]:
        return float("nan")
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


# ---- 1. ODE ------------------------------------------------------------------------------------

def ode_problem(n: int, t_out: int):
    rng = np.random.default_rng(0)
    a = 0.5 + rng.uniform(0, 1, n)
    b = rng.uniform(-1, 1, n)
    y0 = rng.uniform(-1, 1, n)
    t_eval = np.linspace(0.0, 5.0, t_out)

    def rhs(t, y, a, b):
        return -a * y + b * np.tanh(np.roll(y, 1)) + 0.1 * np.sin(t)

    def loss(theta, rtol=1e-8):
        res = integrate.solve_ivp(rhs, (0.0, 5.0), y0, t_eval=t_eval, args=(theta[:n], theta[n:]), rtol=rtol,
                                  atol=rtol * 1e-2)
        return (res.y ** 2).sum()

    def rk4_loss(theta, steps):
        a, b = theta[:n], theta[n:]
        h = 5.0 / steps
        every = steps // (t_out - 1)
        y, t, total = y0, 0.0, (y0 ** 2).sum()
        for i in range(1, steps + 1):
            k1 = rhs(t, y, a, b)
            k2 = rhs(t + h / 2, y + h / 2 * k1, a, b)
            k3 = rhs(t + h / 2, y + h / 2 * k2, a, b)
            k4 = rhs(t + h, y + h * k3, a, b)
            y, t = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + h
            if i % every == 0:
                total = total + (y ** 2).sum()
        return total

    return np.concatenate([a, b]), loss, rk4_loss


def bench_ode(quick: bool, repeats: int):
    n, t_out, steps = (3, 3, 40) if quick else (10, 20, 950)  # steps: a multiple of the output intervals
    theta, loss, rk4_loss = ode_problem(n, t_out)
    ref = npfunc.grad(lambda th: loss(th, 1e-12))(theta)
    runs = {
        "adjoint (grad of solve_ivp)": lambda: npfunc.grad(loss)(theta),
        "forward sensitivities (jacfwd)": lambda: npfunc.jacfwd(loss)(theta),
        f"RK4 loop, {steps} steps (grad)": lambda: npfunc.grad(lambda th: rk4_loss(th, steps))(theta),
    }
    errors = {}
    for name, fn in runs.items():
        g = fn()
        errors[name] = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
        np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-4 * np.max(np.abs(ref)), err_msg=name)
    times = measure(runs, repeats, warm=not quick)
    memory = {name: peak_memory(fn) for name, fn in runs.items()}
    title = f"ODE: {n} states, {2 * n} parameters, {t_out} output times"
    return title, [(name, times[name], memory[name], errors[name]) for name in runs]


# ---- 2. Newton ---------------------------------------------------------------------------------

def newton_problem(n: int):
    rng = np.random.default_rng(1)
    m = rng.standard_normal((n, n)) / np.sqrt(n)
    a = m @ m.T + n ** 0.5 * np.eye(n) * 0.5
    theta = rng.uniform(-1, 1, n)

    def residual(x, th):
        return a @ x + 0.1 * x ** 3 - th

    def jac(x):
        return a + np.diag(0.3 * x ** 2)

    def newton(th, iters=8):
        x = 0.0 * th
        for _ in range(iters):
            x = x - np.linalg.solve(jac(x), residual(x, th))
        return x

    def loss_of(x):
        return (np.sin(x) ** 2).sum()

    @npfunc.custom_jvp
    def solve(th):  # the same 8 Newton steps, run on plain values
        return newton(th)

    @solve.defjvp
    def solve_jvp(primals, tangents):  # implicit function theorem: J dx = dθ
        (th,), (dth,) = primals, tangents
        x = solve(th)
        return x, np.linalg.solve(jac(x), dth)

    def exact_grad(th):
        x = newton(th, 30)
        return np.linalg.solve(jac(x).T, np.sin(2 * x))

    return theta, newton, solve, residual, jac, loss_of, exact_grad


def bench_newton(quick: bool, repeats: int):
    n = 8 if quick else 200
    theta, newton, solve, residual, jac, loss_of, exact_grad = newton_problem(n)
    ref = exact_grad(theta)

    def scipy_root(th):
        return optimize.root(residual, np.zeros(n), args=(th,), jac=lambda x, th: jac(x), tol=1e-13).x

    runs = {
        "unrolled: grad through 8 Newton steps": lambda: npfunc.grad(lambda th: loss_of(newton(th)))(theta),
        "implicit: custom_jvp around the Newton solver": lambda: npfunc.grad(lambda th: loss_of(solve(th)))(theta),
        "implicit: npfunc.scipy.optimize.root (hybr)": lambda: npfunc.grad(lambda th: loss_of(scipy_root(th)))(theta),
    }
    errors = {}
    for name, fn in runs.items():
        g = fn()
        errors[name] = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-9, err_msg=name)
    times = measure(runs, repeats, warm=not quick)
    memory = {name: peak_memory(fn) for name, fn in runs.items()}
    return f"Newton iteration, n = {n}", [(name, times[name], memory[name], errors[name]) for name in runs]


# ---- 3. checkpointing --------------------------------------------------------------------------

def bench_checkpoint(quick: bool, repeats: int):
    steps, block, dim = (60, 20, 10) if quick else (10_000, 100, 100)
    y0 = np.linspace(-1.0, 1.0, dim)
    k = np.float64(0.7)

    def step(y, k):
        return y + 0.01 * (np.sin(k * y) - 0.1 * y ** 3)

    def run_block(y, k):
        for _ in range(block):
            y = step(y, k)
        return y

    ck_block = npfunc.checkpoint(run_block)

    def simulate(k, blk):
        y = y0
        for _ in range(steps // block):
            y = blk(y, k)
        return (y ** 2).sum()

    runs = {
        f"grad through {steps} steps": lambda: npfunc.grad(simulate)(k, run_block),
        f"grad, checkpoint every {block} steps": lambda: npfunc.grad(simulate)(k, ck_block),
    }
    ref = runs[f"grad through {steps} steps"]()
    np.testing.assert_allclose(runs[f"grad, checkpoint every {block} steps"](), ref, rtol=1e-12)
    times = measure(runs, max(1, repeats // 3), warm=not quick)
    memory = {name: peak_memory(fn) for name, fn in runs.items()}
    return f"time stepping on R^{dim}", [(name, times[name], memory[name], 0.0) for name in runs]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", action="append", choices=["ode", "newton", "checkpoint"],
                        help="run only these sections (repeatable)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    QUICK["on"] = args.quick
    benches = {"ode": bench_ode, "newton": bench_newton, "checkpoint": bench_checkpoint}
    sections = [fn(args.quick, repeats) for name, fn in benches.items() if not args.only or name in args.only]
    rows = []
    for title, entries in sections:
        print(f"\n{title}")
        print(f"  {'method':48s} {'time':>10s} {'peak MB':>9s} {'rel. error':>11s}")
        for name, t, mem, err in entries:
            print(f"  {name:48s} {t * 1e3:8.1f} ms {mem:9.2f} {err:11.1e}")
            rows.append((f"{title}: {name}", t))
    return rows


if __name__ == "__main__":
    main()
