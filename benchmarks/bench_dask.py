"""npfunc on Dask: time and peak memory per process, in memory vs Dask threads vs a cluster.

1. **Per-sample gradient norms** of logistic regression over 10^6 rows x 50
   features (400 MB, written to a temporary .npy file and read as a chunked
   dask array of 50,000-row chunks), ``vmap(grad(loss), in_dims=(None, 0, 0))``
   then the row norms; and the full-batch gradient of the mean loss
   (``npfunc.grad`` over the dask data: a Dask reduction of per-chunk
   gradients).  Compared: hand-written NumPy in memory, npfunc in memory
   (the arrays loaded whole), npfunc on Dask's threaded scheduler (2 threads),
   npfunc on a ``LocalCluster`` of 2 worker processes x 1 thread.
2. **Sensitivity analysis**: ``vmap(jacfwd(oscillator))`` at 10^6 sampled
   parameter points (4 parameters, 8 outputs), reduced to mean squared
   derivatives; in memory, on threads (with Dask's progress bar), on the
   cluster.

Every configuration runs in a fresh process (fresh workers for the cluster),
so the peak resident set size (``VmHWM``) is that configuration's: for the
cluster, the client's and each worker's.  "base" is the resident size
just before the work (Python, NumPy, npfunc and, where used, Dask loaded).
Each configuration first checks its result against the hand-written one.

    python benchmarks/bench_dask.py                 # full sizes (~2-3 min on 2 cores)
    python benchmarks/bench_dask.py --quick         # 20,000 rows / points: a smoke run
    python benchmarks/bench_dask.py --only sensitivity --only threads
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODES = ("numpy", "memory", "threads", "cluster")


def _example():
    spec = importlib.util.spec_from_file_location("npfunc_example_dask",
                                                  ROOT / "examples" / "dask_per_sample_grads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child started by a
    # big parent would report the parent's peak.
    return _status_mb("VmHWM")


def _worker_memory():
    return {"base": _rss_mb(), "peak": _peak_mb()}


def _import_npfunc():
    import npfunc  # noqa: F401


def _warm_up(ex, args) -> None:
    import dask.array as da
    import npfunc

    w = np.full(args.features, 0.1)
    X, y = np.ones((8, args.features)), np.ones(8)
    for X, y in [(X, y), (da.from_array(X, chunks=(4, -1)), da.from_array(y, chunks=4))]:
        np.asarray(ex.per_sample_norms(w, X, y))
        npfunc.grad(lambda w: ex.mean_loss(w, X, y))(w)
    np.asarray(ex.sensitivity(ex.sample_points(100, 50)))
    np.asarray((npfunc.vmap(npfunc.jacfwd(ex.oscillator))(np.ones((8, 4))) ** 2).mean(0))


def run_one(workload: str, mode: str, folder: pathlib.Path, args) -> dict:
    """One configuration, in this (fresh) process: times, memory, a correctness check."""
    ex = _example()
    import dask.array  # noqa: F401  (imports are not part of the timings)
    import npfunc

    client = None
    if mode == "cluster":
        from distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None, silence_logs=40))
        client.run(_import_npfunc)
    _warm_up(ex, args)  # first-call costs (thread pools, shipping code to workers) are not timed
    if client is not None:
        workers_base = client.run(_worker_memory)
    if mode == "threads":
        import dask
        dask.config.set(scheduler="threads", num_workers=2)
    result = {"workload": workload, "mode": mode, "base": _rss_mb()}
    try:
        if workload == "per-sample":
            result.update(_per_sample(ex, npfunc, mode, folder, args))
        else:
            result.update(_sensitivity(ex, npfunc, mode, args))
        result["peak"] = _peak_mb()
        if client is not None:
            after = client.run(_worker_memory)
            result["workers"] = [{"base": workers_base[k]["base"], "peak": v["peak"]}
                                 for k, v in sorted(after.items())]
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    return result


def _per_sample(ex, npfunc, mode, folder, args) -> dict:
    w = np.full(args.features, 0.1)
    reference = np.load(folder / "norms.npy")
    g_reference = np.load(folder / "grad.npy")
    out = {}
    start = time.perf_counter()
    if mode in ("numpy", "memory"):
        X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
        out["load"] = time.perf_counter() - start
        start = time.perf_counter()
        norms = ex.handwritten_norms(w, X, y) if mode == "numpy" else ex.per_sample_norms(w, X, y)
        out["norms"] = time.perf_counter() - start
        if mode == "memory":
            start = time.perf_counter()
            g = npfunc.grad(ex.mean_loss)(w, X, y)
            out["grad"] = time.perf_counter() - start
            np.testing.assert_allclose(g, g_reference, rtol=1e-10)
    else:
        X, y = ex.read_dataset(folder, args.chunk)
        norms = ex.per_sample_norms(w, X, y).compute()
        out["norms"] = time.perf_counter() - start  # includes reading the file, chunk by chunk
        start = time.perf_counter()
        g = npfunc.grad(lambda w: ex.mean_loss(w, X, y))(w)
        out["grad"] = time.perf_counter() - start
        np.testing.assert_allclose(g, g_reference, rtol=1e-10)
    np.testing.assert_allclose(norms, reference, rtol=1e-10)
    return out


def _sensitivity(ex, npfunc, mode, args) -> dict:
    import dask

    sample = ex.sample_points(args.points, args.chunk)
    reference = None
    out = {}
    if mode in ("numpy", "memory"):
        P = dask.compute(sample, scheduler="sync")[0]
        start = time.perf_counter()
        if mode == "numpy":
            nu = _handwritten_sensitivity(P)
        else:
            nu = (npfunc.vmap(npfunc.jacfwd(ex.oscillator))(P) ** 2).mean(axis=0)
        out["jacobians"] = time.perf_counter() - start
    else:
        start = time.perf_counter()
        if mode == "threads":
            from dask.diagnostics import ProgressBar
            with ProgressBar(dt=0.25, out=sys.stderr):
                nu = ex.sensitivity(sample).compute()
        else:
            nu = ex.sensitivity(sample).compute()
        out["jacobians"] = time.perf_counter() - start  # includes drawing the points
    reference = np.load(args.folder / "sensitivity.npy")
    np.testing.assert_allclose(nu, reference, rtol=1e-10)
    return out


def _handwritten_sensitivity(P):
    """Mean squared derivatives of the oscillator, differentiated by hand."""
    from numpy import cos, exp, sin, sqrt
    T = np.linspace(0.5, 4.0, 8)
    om, ze, am, ph = (P[:, i:i + 1] for i in range(4))
    s = sqrt(1 - ze ** 2)
    env = exp(-ze * om * T)
    arg = om * s * T + ph
    d_om = am * env * (-ze * T * cos(arg) - s * T * sin(arg))
    d_ze = am * env * (-om * T * cos(arg) + om * ze / s * T * sin(arg))
    d_am = env * cos(arg)
    d_ph = -am * env * sin(arg)
    return np.stack([(d ** 2).mean(axis=0) for d in (d_om, d_ze, d_am, d_ph)], axis=-1)


def prepare(folder: pathlib.Path, args) -> None:
    """The dataset on disk and the reference results (hand-written NumPy, computed here)."""
    ex = _example()
    import dask
    import npfunc

    ex.write_dataset(folder, args.rows, args.features)
    X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
    w = np.full(args.features, 0.1)
    np.save(folder / "norms.npy", ex.handwritten_norms(w, X, y))
    margin = y * (X @ w)
    np.save(folder / "grad.npy", -(y / (1 + np.exp(margin))) @ X / len(y))
    P = dask.compute(ex.sample_points(args.points, args.chunk), scheduler="sync")[0]
    nu = _handwritten_sensitivity(P)
    J = npfunc.vmap(npfunc.jacfwd(ex.oscillator))(P[:1000])
    np.testing.assert_allclose((J ** 2).mean(0), _handwritten_sensitivity(P[:1000]), rtol=1e-10)
    np.save(folder / "sensitivity.npy", nu)


def _fmt_mem(r: dict) -> str:
    text = f"{r['peak']:.0f} MB (base {r['base']:.0f})"
    for k, w in enumerate(r.get("workers", [])):
        text += f"; worker {k + 1}: {w['peak']:.0f} MB (base {w['base']:.0f})"
    return text


def report(results: list, args) -> None:
    print(f"\nper-sample gradient norms, logistic regression: {args.rows:,} rows x {args.features} "
          f"features ({args.rows * args.features * 8 / 2 ** 20:.0f} MB), chunks of {args.chunk:,} rows")
    print("| configuration | load | norms | full-batch grad | peak RSS per process |")
    print("|---|---|---|---|---|")
    names = {"numpy": "hand-written NumPy, in memory", "memory": "npfunc vmap(grad), in memory",
             "threads": "npfunc on Dask threads (2)", "cluster": "npfunc on LocalCluster (2 processes)"}
    for r in results:
        if r["workload"] == "per-sample":
            load = f"{r['load']:.2f} s" if "load" in r else "(in norms)"
            grad = f"{r['grad']:.2f} s" if "grad" in r else "-"
            print(f"| {names[r['mode']]} | {load} | {r['norms']:.2f} s | {grad} | {_fmt_mem(r)} |")
    print(f"\nsensitivity analysis, vmap(jacfwd(oscillator)) at {args.points:,} points "
          "(4 parameters, 8 outputs), mean squared derivatives")
    print("| configuration | time | peak RSS per process |")
    print("|---|---|---|")
    for r in results:
        if r["workload"] == "sensitivity":
            name = names[r["mode"]].replace("vmap(grad)", "vmap(jacfwd)")
            print(f"| {name} | {r['jacobians']:.2f} s | {_fmt_mem(r)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows and points")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--only", action="append", default=[],
                        help="run configurations whose workload or mode contains this (repeatable)")
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.points, args.chunk, args.features = 20_000, 20_000, 5_000, 16
    if args.one:
        print(json.dumps(run_one(*args.one, args.folder, args)))
        return
    wanted = [(w, m) for w in ("per-sample", "sensitivity") for m in MODES
              if all(any(o in x for x in (w, m)) for o in args.only) or not args.only]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        args.folder = folder
        prepare(folder, args)
        for workload, mode in wanted:
            cmd = [sys.executable, __file__, "--one", workload, mode, "--folder", str(folder),
                   "--rows", str(args.rows), "--features", str(args.features),
                   "--points", str(args.points), "--chunk", str(args.chunk)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{workload} / {mode} failed:\n{proc.stdout}\n{proc.stderr}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{workload:12s} {mode:8s} done", file=sys.stderr)
    report(results, args)


if __name__ == "__main__":
    main()
