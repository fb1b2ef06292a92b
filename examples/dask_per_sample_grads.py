"""Tutorial 7: per-sample gradients and Jacobians beyond memory, with Dask.

Two workloads that outgrow one array in memory, written as plain NumPy for
ONE example and scaled out by npfunc's transforms over dask arrays:

1. **Per-sample gradient norms** of logistic regression over a dataset read
   from disk as a chunked dask array (the statistic differential privacy
   clips, or that flags mislabelled rows), and the full-batch gradient of
   the mean loss, computed as a Dask reduction of per-chunk gradients:

       per_sample = npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0, 0))(w, X, y)
       norms = np.sqrt((per_sample ** 2).sum(axis=1))          # a lazy dask array
       g = npfunc.grad(lambda w: mean_loss(w, X, y))(w)        # NumPy, like in memory

2. **Sensitivity analysis** of a damped oscillator's response to its four
   parameters: ``vmap(jacfwd(model))`` at sampled parameter points, reduced
   to derivative-based global sensitivity measures (the mean squared
   partial derivatives), with Dask's progress bar on the computation.

Every chunk is one vectorised in-memory vmap; Dask runs the chunks on its
threads, or on a ``distributed`` cluster unchanged (``--cluster``).  The
script checks the results against in-memory npfunc, the hand-written
formula and finite differences.

    python examples/dask_per_sample_grads.py [--small] [--cluster]

(10^6 rows and 10^6 parameter points by default; ``--small`` is what the
tests run.  ``benchmarks/bench_dask.py`` times and measures memory.)
"""
from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np

import npfunc


# ---- 1. logistic regression, written for one row ----------------------------------------------

def loss(w, x, y):
    """Logistic loss of one row ``x`` with label ``y`` in {-1, 1}."""
    return np.logaddexp(0.0, -y * (x @ w))


def mean_loss(w, X, y):
    return np.mean(np.logaddexp(0.0, -y * (X @ w)))


def handwritten_norms(w, X, y):
    """|d loss / d w| per row: |y sigmoid(-y x.w)| * |x|."""
    margin = y * (X @ w)
    return np.abs(y) / (1 + np.exp(margin)) * np.linalg.norm(X, axis=1)


def write_dataset(folder: pathlib.Path, rows: int, features: int, chunk: int = 100_000, seed: int = 0):
    """X (rows x features) and labels y in {-1, 1}, written chunk by chunk as .npy files;
    returns the true weights."""
    rng = np.random.default_rng(seed)
    w_true = rng.standard_normal(features) / np.sqrt(features)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float64, shape=(rows, features))
    y = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.float64, shape=(rows,))
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        X[start:stop] = rng.standard_normal((stop - start, features))
        p = 1 / (1 + np.exp(-X[start:stop] @ w_true))
        y[start:stop] = np.where(rng.random(stop - start) < p, 1.0, -1.0)
    X.flush()
    y.flush()
    del X, y
    return w_true


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def read_dataset(folder: pathlib.Path, chunk: int):
    """The .npy files as dask arrays of ``chunk`` rows: each task reads its own rows
    from disk (so worker processes read the file themselves; nothing is shipped)."""
    import dask
    import dask.array as da

    arrays = []
    for name in ("X", "y"):
        path = str(folder / f"{name}.npy")
        head = np.load(path, mmap_mode="r")
        rows, dtype, tail = head.shape[0], head.dtype, head.shape[1:]
        parts = [da.from_delayed(dask.delayed(_read_rows, pure=True)(path, a, min(a + chunk, rows)),
                                 shape=(min(a + chunk, rows) - a,) + tail, dtype=dtype)
                 for a in range(0, rows, chunk)]
        arrays.append(da.concatenate(parts, axis=0))
    return arrays


def per_sample_norms(w, X, y):
    """Per-sample gradient norms: a dask array for dask inputs, NumPy for NumPy."""
    per_sample = npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0, 0))(w, X, y)
    return np.sqrt((per_sample ** 2).sum(axis=1))


# ---- 2. a damped oscillator, written for one parameter point ----------------------------------

TIMES = np.linspace(0.5, 4.0, 8)
PARAMETERS = ("omega", "zeta", "amplitude", "phase")
LOW = np.array([1.0, 0.05, 0.5, 0.0])
HIGH = np.array([3.0, 0.5, 1.5, np.pi / 2])


def oscillator(p):
    """Displacement at ``TIMES`` of a damped oscillator with parameters
    (natural frequency, damping ratio, amplitude, phase)."""
    omega, zeta, amplitude, phase = p[0], p[1], p[2], p[3]
    damped = omega * np.sqrt(1 - zeta ** 2)
    return amplitude * np.exp(-zeta * omega * TIMES) * np.cos(damped * TIMES + phase)


def sample_points(n: int, chunk: int, seed: int = 1):
    """n parameter points, uniform in the box [LOW, HIGH], as a lazy dask array."""
    import dask.array as da

    u = da.random.default_rng(seed).random((n, len(LOW)), chunks=(chunk, len(LOW)))
    return LOW + (HIGH - LOW) * u


def sensitivity(points):
    """Mean squared derivative of each output (time) w.r.t. each parameter, (8, 4):
    a lazy Dask reduction over ``vmap(jacfwd(oscillator))``."""
    J = npfunc.vmap(npfunc.jacfwd(oscillator))(points)
    return (J ** 2).mean(axis=0)


def _fd_jacobian(f, p, eps=1e-6):
    return np.stack([(f(p + eps * e) - f(p - eps * e)) / (2 * eps) for e in np.eye(len(p))], axis=-1)


# ---- the tour ---------------------------------------------------------------------------------

def main(small: bool = False, cluster: bool = False) -> dict:
    import dask
    from dask.diagnostics import ProgressBar

    rows, features, chunk = (20_000, 16, 5_000) if small else (1_000_000, 50, 50_000)
    points, point_chunk = (20_000, 5_000) if small else (1_000_000, 50_000)
    client = None
    if cluster:
        from distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None))
    out = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp)
            write_dataset(folder, rows, features)
            X, y = read_dataset(folder, chunk)
            w = np.full(features, 0.1)
            print(f"1. logistic regression, {rows:,} rows x {features} features in "
                  f"{X.numblocks[0]} chunks ({'2-process LocalCluster' if cluster else 'Dask threads'})")

            start = time.perf_counter()
            norms = per_sample_norms(w, X, y).compute()
            t_norms = time.perf_counter() - start
            X_mem, y_mem = np.load(folder / "X.npy"), np.load(folder / "y.npy")
            out["norm_error"] = np.max(np.abs(norms - handwritten_norms(w, X_mem, y_mem)))
            print(f"  per-sample gradient norms: {t_norms:.2f} s; median {np.median(norms):.4f}, "
                  f"max {norms.max():.4f}; max |error| vs the formula {out['norm_error']:.1e}")

            start = time.perf_counter()
            g, value = npfunc.grad_and_value(lambda w: mean_loss(w, X, y))(w)
            t_grad = time.perf_counter() - start
            g_mem = npfunc.grad(mean_loss)(w, X_mem, y_mem)
            out["grad_error"] = np.max(np.abs(g - g_mem))
            print(f"  full-batch gradient (Dask reduction of per-chunk gradients): {t_grad:.2f} s; "
                  f"loss {value:.5f}, max |g - in-memory g| {out['grad_error']:.1e}")
            del X_mem, y_mem

        sample = sample_points(points, point_chunk)
        print(f"2. sensitivity of a damped oscillator at {points:,} parameter points")
        start = time.perf_counter()
        if cluster:
            nu = sensitivity(sample).compute()
        else:
            with ProgressBar(dt=0.5):
                nu = sensitivity(sample).compute(scheduler="threads")
        t_sens = time.perf_counter() - start
        few = sample[:3].compute()
        J = npfunc.vmap(npfunc.jacfwd(oscillator))(few)
        out["fd_error"] = max(np.max(np.abs(J[i] - _fd_jacobian(oscillator, few[i]))) for i in range(3))
        # Scaled by the squared parameter ranges (as in the DGSM bound on total Sobol indices).
        scaled = nu.sum(axis=0) * (HIGH - LOW) ** 2
        total = scaled / scaled.sum()
        print(f"  vmap(jacfwd) over {points:,} points: {t_sens:.2f} s; Jacobian vs finite "
              f"differences {out['fd_error']:.1e}")
        print("  derivative-based sensitivity (mean squared derivative x range^2), share: " +
              ", ".join(f"{name} {share:.1%}" for name, share in zip(PARAMETERS, total)))
        if small:
            P = dask.compute(sample)[0]
            out["sens_error"] = np.max(np.abs(nu - (npfunc.vmap(npfunc.jacfwd(oscillator))(P) ** 2).mean(0)))
            assert out["sens_error"] < 1e-12
        out.update(norms=norms, grad=g, sensitivity=nu, shares=total)
    finally:
        if client is not None:
            cluster_obj = client.cluster
            client.close()
            cluster_obj.close()
    assert out["norm_error"] < 1e-10 and out["grad_error"] < 1e-12 and out["fd_error"] < 1e-6
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--cluster", action="store_true", help="run on a 2-process LocalCluster")
    args = parser.parse_args()
    main(small=args.small, cluster=args.cluster)
