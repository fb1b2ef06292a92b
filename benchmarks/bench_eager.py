"""Eager dispatch overhead: the fixed cost of a transform call and the cost
per primitive per level (issue 14, item 5).

Rows:

* **fixed** -- ``grad(np.sin)(x)``, ``vmap(np.sin)(xs)``, ``jvp``, ``vjp``
  (+ one pullback call) of a single unary primitive on a 0-d value (a batch
  of 8 for vmap), minus the plain ``np.sin`` call;
* **per primitive** -- the slope between chains of 1 and 21 ``np.sin``
  calls under each transform: what one more primitive costs at one level
  (forward and, for reverse mode, backward); ``grad(grad)`` and
  ``vmap(grad)`` show two levels;
* **log-density** -- ``grad`` of a ten-operation log-density on R^2 (a
  banana-shaped density: two gathers, eight arithmetic operations), eager
  and under ``jit``, beside the plain call.

Timing: each callable is warmed up, then looped for at least ``--min-time``
seconds per measurement; the minimum over ``--repeats`` measurements is
reported (``--clock cpu``, the default, counts this process's CPU time, so
other jobs on a loaded machine do not inflate it; ``--clock wall`` uses
``perf_counter``).

    PYTHONPATH=src python benchmarks/bench_eager.py [--repeats 7] [--clock wall] [--json out.json]
    python benchmarks/bench_eager.py --combine before=a1.json,a2.json after=b1.json,b2.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

import npfunc

CHAIN_SHORT, CHAIN_LONG = 1, 21


def chain(k):
    def f(x):
        for _ in range(k):
            x = np.sin(x)
        return x

    return f


def logp(q):
    """A banana-shaped log-density on R^2: ten operations."""
    x, y = q[0], q[1]
    r = y - 0.5 * x * x
    return -0.5 * (x * x / 4.0 + r * r)


def measure(fn, clock, min_time: float, repeats: int) -> float:
    """Seconds per call: the minimum over ``repeats`` timed loops."""
    fn()
    fn()
    loops = 1
    while True:
        start = clock()
        for _ in range(loops):
            fn()
        elapsed = clock() - start
        if elapsed >= min_time:
            break
        loops *= 2 if elapsed <= 0 else max(2, min(10, int(1.5 * min_time / elapsed) + 1))
    best = elapsed / loops
    for _ in range(repeats - 1):
        start = clock()
        for _ in range(loops):
            fn()
        best = min(best, (clock() - start) / loops)
    return best


def cases():
    x0 = np.array(0.5)
    t0 = np.array(1.0)
    xs = np.linspace(0.1, 0.8, 8)
    q = np.array([0.3, -0.2])
    grad, vmap, jvp, vjp = npfunc.grad, npfunc.vmap, npfunc.jvp, npfunc.vjp

    def vjp_call(f):
        def run():
            _, pullback = vjp(f, x0)
            return pullback(t0)
        return run

    out = {}
    out["plain np.sin (0-d)"] = lambda: np.sin(x0)
    out["grad(np.sin)"] = lambda: grad(np.sin)(x0)
    g_sin = grad(np.sin)
    out["grad(np.sin), made once"] = lambda: g_sin(x0)
    v_sin = vmap(np.sin)
    out["vmap(np.sin), made once, batch 8"] = lambda: v_sin(xs)
    out["jvp(np.sin)"] = lambda: jvp(np.sin, (x0,), (t0,))
    out["vjp(np.sin) + pullback"] = vjp_call(np.sin)
    for k in (CHAIN_SHORT, CHAIN_LONG):
        f = chain(k)
        out[f"plain chain{k}"] = (lambda f: lambda: f(x0))(f)
        gf = grad(f)
        out[f"grad chain{k}"] = (lambda gf: lambda: gf(x0))(gf)
        vf = vmap(f)
        out[f"vmap chain{k}"] = (lambda vf: lambda: vf(xs))(vf)
        out[f"jvp chain{k}"] = (lambda f: lambda: jvp(f, (x0,), (t0,)))(f)
        out[f"vjp chain{k}"] = vjp_call(f)
        ggf = grad(grad(f))
        out[f"grad(grad) chain{k}"] = (lambda ggf: lambda: ggf(x0))(ggf)
        vgf = vmap(grad(f))
        out[f"vmap(grad) chain{k}"] = (lambda vgf: lambda: vgf(xs))(vgf)
    out["plain logp (R^2)"] = lambda: logp(q)
    g_logp = grad(logp)
    out["grad(logp)"] = lambda: g_logp(q)
    j_logp = npfunc.jit(grad(logp))
    out["jit(grad(logp))"] = lambda: j_logp(q)
    return out


def table(us: dict) -> list[tuple[str, float, str]]:
    """The reported rows from the raw timings (microseconds per call)."""
    plain = us["plain np.sin (0-d)"]
    span = CHAIN_LONG - CHAIN_SHORT
    rows = [
        ("grad(np.sin): fixed cost (minus plain sin)", us["grad(np.sin), made once"] - plain, "< 8"),
        ("grad(np.sin) including making grad(f)", us["grad(np.sin)"] - plain, ""),
        ("vmap(np.sin), batch 8: fixed cost (minus plain sin)", us["vmap(np.sin), made once, batch 8"] - plain,
         "< 8"),
        ("jvp(np.sin): fixed cost", us["jvp(np.sin)"] - plain, ""),
        ("vjp(np.sin) + pullback: fixed cost", us["vjp(np.sin) + pullback"] - plain, ""),
    ]
    plain_slope = (us[f"plain chain{CHAIN_LONG}"] - us[f"plain chain{CHAIN_SHORT}"]) / span
    for mode, levels in (("grad", 1), ("vmap", 1), ("jvp", 1), ("vjp", 1), ("grad(grad)", 2), ("vmap(grad)", 2)):
        slope = (us[f"{mode} chain{CHAIN_LONG}"] - us[f"{mode} chain{CHAIN_SHORT}"]) / span
        rows.append((f"{mode}: per extra np.sin, per level (minus plain)", (slope - plain_slope) / levels,
                     "< 2"))
    rows += [
        ("plain logp (10 ops, R^2)", us["plain logp (R^2)"], ""),
        ("grad(logp) eager", us["grad(logp)"], "< 30"),
        ("jit(grad(logp))", us["jit(grad(logp))"], "< 5"),
    ]
    return rows


def print_table(columns: dict[str, dict], header: str) -> None:
    """One column of rows per entry of ``columns`` (name -> raw timings)."""
    tables = {name: table(us) for name, us in columns.items()}
    names = [r[0] for r in next(iter(tables.values()))]
    targets = [r[2] for r in next(iter(tables.values()))]
    width = max(len(n) for n in names)
    print(header)
    print(f"{'case'.ljust(width)}  " + "  ".join(f"{c:>10}" for c in columns) + "  target")
    for k, name in enumerate(names):
        print(f"{name.ljust(width)}  " + "  ".join(f"{tables[c][k][1]:10.2f}" for c in columns)
              + f"  {targets[k]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.05)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--json", help="write the raw timings (microseconds) to this file")
    parser.add_argument("--combine", nargs="+", metavar="LABEL=FILE[,FILE...]",
                        help="print a table from saved runs instead of measuring: the minimum of each raw "
                             "timing over a label's files, one column per label")
    args = parser.parse_args(argv)
    if args.combine:
        columns = {}
        for spec in args.combine:
            label, files = spec.split("=", 1)
            runs = [json.load(open(f))["raw_us"] for f in files.split(",")]
            columns[label] = {k: min(run[k] for run in runs) for k in runs[0]}
        print_table(columns, "minimum over saved runs (microseconds per call)")
        return 0
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    us = {name: measure(fn, clock, args.min_time, args.repeats) * 1e6 for name, fn in cases().items()}
    print_table({"us": us}, f"clock: {args.clock} (min of {args.repeats}); Python {platform.python_version()}, "
                            f"NumPy {np.__version__}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"clock": args.clock, "raw_us": us}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
