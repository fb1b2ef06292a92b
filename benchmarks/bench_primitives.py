"""Per-primitive overhead table: what each transform costs on top of plain NumPy.

For every primitive in ``npfunc.core.primitive.REGISTRY`` this takes its first
float64 sample (small inputs; the same samples the generated tests run on)
and times, with ``time.perf_counter``:

* **plain**  ``prim.impl(*args, **params)`` -- the plain NumPy computation;
* **bind**   ``prim.bind(*args, **params)`` on plain arrays -- dispatch with
  no transform active;
* **grad**   ``npfunc.grad(lambda *d: sum(real(outputs)))`` w.r.t. the
  sample's differentiable arguments (forward + backward; the summation adds
  one ``reduce_sum`` per output, and ``real`` for complex outputs).  Skipped
  for non-differentiable primitives;
* **vmap**   ``npfunc.vmap(f)`` over 8 stacked copies of every array argument
  (``in_dims=0`` for each array, ``None`` for Python scalars and tuples).

Derived columns:

* ``grad ovh = grad - 2 x plain``: the backward's NumPy work is not known per
  primitive, so it is charged as one more forward; what is left is (roughly)
  the cost of the transform machinery.  ``grad/plain`` is the plain ratio;
* ``vmap ovh = vmap - plain``: on these small inputs a vectorised call over 8
  rows costs about as much as one plain call, so what is left is (roughly)
  the batching machinery.  ``vmap/8plain`` compares with a Python loop over
  the batch (< 1 means vmap beats the loop), ``vmap/plain`` with one call.

Before timing, the vmap result is checked against ``np.stack`` of the plain
results, and grad's result against the arguments' shapes; a failing or
raising transform is reported in the ``note`` column instead of timed.

Timing: every function is warmed up, then calls are looped so that one
measurement lasts at least ``--min-time``; the four variants of a primitive
are measured round-robin (so drift hits them alike) ``--repeats`` times, and
the median (``--stat min`` for the minimum) is reported, in microseconds.
A variant whose median exceeds its minimum by 1.5x is flagged ``noisy`` in
the note column (on a loaded 2-core machine, multi-threaded OpenBLAS calls on
tiny matrices can stall for milliseconds; ``OPENBLAS_NUM_THREADS=1`` avoids it).

    python benchmarks/bench_primitives.py                # all primitives (~45 s on 2 cores)
    python benchmarks/bench_primitives.py --quick        # a few primitives, few repeats
    python benchmarks/bench_primitives.py --filter eig --filter solve
    python benchmarks/bench_primitives.py --markdown     # markdown tables
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import npfunc
import npfunc.numpy as fnp
import npfunc.scipy.interpolate  # noqa: F401  (the twins' primitives join the registry on import:
import npfunc.scipy.linalg  # noqa: F401       every one of them is benchmarked, not only those
import npfunc.scipy.signal  # noqa: F401       some earlier sample happened to load)
import npfunc.scipy.special  # noqa: F401
import npfunc.scipy.stats  # noqa: F401
from npfunc.core.primitive import REGISTRY, Primitive, Sample
from npfunc.testing.checks import diff_argnums

BATCH = 8
QUICK_PRIMITIVES = ("add", "sin", "matmul", "reduce_sum", "reshape", "gather", "eigh", "argmax")


# ---------------------------------------------------------------------------
# choosing a sample and building the four callables
# ---------------------------------------------------------------------------


def _is_array(a) -> bool:
    return isinstance(a, (np.ndarray, np.generic))


def _float_args(sample: Sample) -> list:
    return [a for a in sample.args if _is_array(a) and np.result_type(a).kind in "fc"]


def pick_sample(prim: Primitive, rng) -> tuple[Sample | None, str]:
    """The first sample whose floating-point arguments are all float64.

    Falls back to the first sample (bool / integer / complex primitives), and
    says so in the returned note."""
    samples = list(prim.samples(rng)) if prim.samples is not None else []
    if not samples:
        return None, "no samples"
    for s in samples:
        floats = _float_args(s)
        if floats and all(np.result_type(a) == np.float64 for a in floats):
            return s, ""
    dtypes = sorted({str(np.result_type(a)) for a in samples[0].args if _is_array(a)})
    return samples[0], f"no f64 sample ({'/'.join(dtypes) or 'no arrays'})"


def describe(sample: Sample) -> str:
    short = {"float64": "f64", "float32": "f32", "complex128": "c128", "complex64": "c64",
             "int64": "i64", "int32": "i32", "bool": "b"}
    parts = []
    for a in sample.args:
        if _is_array(a):
            dt = str(np.result_type(a))
            parts.append(f"{short.get(dt, dt)}[{','.join(map(str, np.shape(a)))}]")
        else:
            parts.append(type(a).__name__)
    return " ".join(parts)


def _leaves(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _scalarize(out):
    """Sum of the real parts of every floating-point output, with npfunc ops."""
    total = None
    for leaf in _leaves(out):
        kind = np.result_type(leaf).kind
        if kind not in "fc":
            continue
        term = fnp.sum(fnp.real(leaf) if kind == "c" else leaf)
        total = term if total is None else total + term
    return total


def make_grad(prim: Primitive, sample: Sample) -> tuple[Callable | None, str]:
    if not prim.differentiable:
        return None, "non-differentiable"
    nums = tuple(i for i in diff_argnums(sample)
                 if _is_array(sample.args[i]) and np.result_type(sample.args[i]).kind in "fc")
    if not nums:
        return None, "no float args"
    if not any(np.result_type(o).kind in "fc" for o in _leaves(prim.impl(*sample.args, **sample.params))):
        return None, "no float outputs"
    base = list(sample.args)
    params = sample.params

    def loss(*diff):
        full = list(base)
        for i, v in zip(nums, diff):
            full[i] = v
        return _scalarize(prim.bind(*full, **params))

    g = npfunc.grad(loss, argnums=tuple(range(len(nums))))
    primals = tuple(sample.args[i] for i in nums)
    got = g(*primals)
    for p, c in zip(primals, got):
        if np.shape(c) != np.shape(p):
            raise AssertionError(f"gradient shape {np.shape(c)} != argument shape {np.shape(p)}")
    return (lambda: g(*primals)), ""


def make_vmap(prim: Primitive, sample: Sample) -> Callable:
    args = sample.args
    params = sample.params
    dims = tuple(0 if _is_array(a) else None for a in args)
    if not any(d is not None for d in dims):
        raise ValueError("no array arguments")
    batched = tuple(np.stack([np.asarray(a)] * BATCH) if d == 0 else a for a, d in zip(args, dims))
    vf = npfunc.vmap(lambda *xs: prim.bind(*xs, **params), in_dims=dims)
    got = vf(*batched)
    expected = prim.impl(*args, **params)
    got_l, exp_l = _leaves(got), _leaves(expected)
    if len(got_l) != len(exp_l):
        raise AssertionError(f"{len(got_l)} outputs, expected {len(exp_l)}")
    for g, e in zip(got_l, exp_l):
        e = np.stack([np.asarray(e)] * BATCH)
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-12, atol=1e-12, equal_nan=True)
    return lambda: vf(*batched)


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------


@dataclass
class Config:
    repeats: int
    min_time: float  # seconds one measurement lasts at least
    stat: str = "median"


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    fn()  # warm up
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(min_time / max(once, 1e-9)))


NOISY = 1.5  # a variant whose median exceeds its minimum by this factor is flagged "noisy"


def measure(fns: dict[str, Callable], cfg: Config, noisy: list[str] | None = None) -> dict[str, float]:
    """Seconds per call of each function, measured round-robin; the names of
    variants whose repeats disagree (median > NOISY x min) go to ``noisy``."""
    numbers = {k: _calibrate(f, cfg.min_time) for k, f in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(cfg.repeats):
        for k, f in fns.items():
            n = numbers[k]
            start = time.perf_counter()
            for _ in range(n):
                f()
            times[k].append((time.perf_counter() - start) / n)
    if noisy is not None:
        noisy += [k for k, v in times.items() if statistics.median(v) > NOISY * min(v)]
    reduce = min if cfg.stat == "min" else statistics.median
    return {k: reduce(v) for k, v in times.items()}


# ---------------------------------------------------------------------------
# one row per primitive
# ---------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    sample: str
    plain: float | None = None  # microseconds
    bind: float | None = None
    grad: float | None = None
    vmap: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def grad_ovh(self):
        return None if self.grad is None or self.plain is None else self.grad - 2 * self.plain

    @property
    def grad_ratio(self):
        return None if self.grad is None or not self.plain else self.grad / self.plain

    @property
    def vmap_ovh(self):
        return None if self.vmap is None or self.plain is None else self.vmap - self.plain

    @property
    def vmap_loop_ratio(self):
        return None if self.vmap is None or not self.plain else self.vmap / (BATCH * self.plain)

    @property
    def vmap_ratio(self):
        return None if self.vmap is None or not self.plain else self.vmap / self.plain


def _err(what: str, exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(msg) > 60:
        msg = msg[:57] + "..."
    return f"{what}: {type(exc).__name__}" + (f" ({msg})" if msg else "")


def bench_primitive(prim: Primitive, cfg: Config, rng) -> Row:
    sample, note = pick_sample(prim, rng)
    if sample is None:
        return Row(prim.name, "-", notes=[note])
    row = Row(prim.name, describe(sample), notes=[note] if note else [])
    args, params = sample.args, sample.params
    fns: dict[str, Callable] = {
        "plain": lambda: prim.impl(*args, **params),
        "bind": lambda: prim.bind(*args, **params),
    }
    try:
        g, why = make_grad(prim, sample)
        if g is not None:
            fns["grad"] = g
        elif why:
            row.notes.append(why)
    except Exception as exc:  # a benchmark reports a broken transform, it does not stop
        row.notes.append(_err("grad", exc))
    try:
        fns["vmap"] = make_vmap(prim, sample)
    except Exception as exc:
        row.notes.append(_err("vmap", exc))
    noisy: list[str] = []
    for k, t in measure(fns, cfg, noisy).items():
        setattr(row, k, t * 1e6)
    if noisy:
        row.notes.append(f"noisy: {', '.join(noisy)}")
    return row


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------

COLUMNS = ("primitive", "sample", "plain µs", "bind µs", "grad µs", "grad ovh µs", "grad/plain",
           "vmap µs", "vmap ovh µs", "vmap/8plain", "vmap/plain", "note")
RIGHT = {c for c in COLUMNS if c not in ("primitive", "sample", "note")}


def _fmt(x, kind="us") -> str:
    if x is None:
        return "-"
    if kind == "ratio":
        return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:.0f}"


def _cells(r: Row) -> list[str]:
    return [r.name, r.sample, _fmt(r.plain), _fmt(r.bind), _fmt(r.grad), _fmt(r.grad_ovh),
            _fmt(r.grad_ratio, "ratio"), _fmt(r.vmap), _fmt(r.vmap_ovh),
            _fmt(r.vmap_loop_ratio, "ratio"), _fmt(r.vmap_ratio, "ratio"), "; ".join(r.notes)]


def render(header: list[str], body: list[list[str]], markdown: bool, n_left: int | None = None) -> str:
    """An aligned text (or markdown) table; numeric columns are right-aligned."""
    right = [h in RIGHT if n_left is None else i >= n_left for i, h in enumerate(header)]
    if markdown:
        esc = [[c.replace("|", "\\|") for c in row] for row in body]
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in esc]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body])


def sort_rows(rows: list[Row], key: str) -> list[Row]:
    if key == "name":
        return sorted(rows, key=lambda r: r.name)
    if key == "vmap":
        return sorted(rows, key=lambda r: (r.vmap_ovh is None, -(r.vmap_ovh or 0)))
    # grad overhead first; rows without grad after, by vmap overhead
    return sorted(rows, key=lambda r: (r.grad_ovh is None, -(r.grad_ovh if r.grad_ovh is not None
                                                              else (r.vmap_ovh or 0))))


def environment(cfg: Config) -> list[str]:
    env = [f"python {platform.python_version()}, numpy {np.__version__}, npfunc "
           f"{getattr(npfunc, '__version__', '?')}, {platform.machine()}, {os.cpu_count()} CPUs",
           f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"]
    threads = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS") if k in os.environ]
    if threads:
        env.append(", ".join(threads))
    env.append(f"timing: {cfg.stat} of {cfg.repeats} repeats, each looping >= "
               f"{cfg.min_time * 1e3:g} ms of calls; vmap batch = {BATCH}")
    return env


def floors(cfg: Config) -> list[str]:
    """Reference costs of the transforms around a near-empty function."""
    x = np.linspace(0.1, 0.6, 6).reshape(2, 3)
    xb = np.stack([x] * BATCH)
    g = npfunc.grad(lambda v: fnp.sum(v))
    vneg = npfunc.vmap(lambda v: fnp.negative(v))
    t = measure({"np.sum": lambda: np.sum(x), "grad(sum)": lambda: g(x),
                 "vmap(negative)": lambda: vneg(xb)}, cfg)
    return ["reference: " + ", ".join(f"{k} {v * 1e6:.2f} µs" for k, v in t.items())
            + " on f64[2,3] (grad ovh and vmap ovh include such fixed costs)"]


def select(filters: list[str] | None, quick: bool) -> list[Primitive]:
    if filters:
        return [p for n, p in REGISTRY.items() if any(f.lower() in n.lower() for f in filters)]
    if quick:
        return [REGISTRY[n] for n in QUICK_PRIMITIVES if n in REGISTRY]
    return list(REGISTRY.values())


def worst(rows: list[Row], attr: str, n: int = 10) -> list[Row]:
    have = [r for r in rows if getattr(r, attr) is not None]
    return sorted(have, key=lambda r: -getattr(r, attr))[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK_PRIMITIVES)} (unless --filter), few repeats")
    parser.add_argument("--filter", action="append", default=None, metavar="NAME",
                        help="primitives whose name contains NAME (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 9; 3 quick)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds one measurement lasts at least (default 0.008; 0.001 quick)")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--sort", choices=("grad", "vmap", "name"), default="grad",
                        help="table order: grad overhead (default), vmap overhead, or name")
    ns = parser.parse_args(argv)
    cfg = Config(repeats=ns.repeats or (3 if ns.quick else 9),
                 min_time=ns.min_time if ns.min_time is not None else (0.001 if ns.quick else 0.008),
                 stat=ns.stat)
    prims = select(ns.filter, ns.quick)
    if not prims:
        print(f"no primitive matches {ns.filter}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    rows = [bench_primitive(p, cfg, rng) for p in prims]
    elapsed = time.perf_counter() - start

    out = print
    for line in environment(cfg) + floors(cfg):
        out(("* " if ns.markdown else "") + line)
    out("")
    out(render(list(COLUMNS), [_cells(r) for r in sort_rows(rows, ns.sort)], ns.markdown))
    out("")
    for title, attr, ratio in (("grad overhead (grad - 2 x plain)", "grad_ovh", "grad_ratio"),
                               ("vmap overhead (vmap - plain)", "vmap_ovh", "vmap_ratio")):
        top = worst(rows, attr)
        out(("### " if ns.markdown else "") + f"worst {len(top)} by {title}")
        if not ns.markdown:
            out("")
        hdr = ["primitive", "sample", "plain µs", title.split(" (")[0] + " µs", ratio.replace("_ratio", "/plain")]
        body = [[r.name, r.sample, _fmt(r.plain), _fmt(getattr(r, attr)),
                 _fmt(getattr(r, ratio), "ratio")] for r in top]
        out(render(hdr, body, ns.markdown, n_left=2))
        out("")
    n_grad = sum(r.grad is not None for r in rows)
    n_vmap = sum(r.vmap is not None for r in rows)
    out(f"{len(rows)} primitives ({n_grad} with grad, {n_vmap} with vmap) in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
