"""Make the gallery's figures (docs/gallery/*.png) by running the examples.

    python tools/gallery.py                 # every figure, about two minutes
    python tools/gallery.py --only ode_fit  # one figure
    python tools/gallery.py --small --out /tmp/figs   # tiny sizes (a smoke test)

Each figure comes from the code in examples/: the script imports an example
and runs its ``main(small=True)`` or its building blocks (the MAML model and
task sampler, the NTK functions), then plots what they return.  Needs
matplotlib; the training curves need scikit-learn (``pip install -e
'.[examples]'``) and are skipped without it.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(ROOT / "src"))  # the working tree's npfunc, as the tests use it

import npfunc  # noqa: E402


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"npfunc_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet(fn, *args, **kwargs):
    """Run an example without its printout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def maml_sine(plt, small: bool):
    """Meta-train the example's SineNet briefly, then adapt it to three new sine waves."""
    ex = load("maml_sine")
    iterations, meta_batch, k, inner_lr = (20, 5, 10, 0.01) if small else (1500, 10, 10, 0.01)
    model = ex.SineNet(rng=0)
    params = {name: v.copy() for name, v in model.named_parameters()}
    task_loss, adapt, _, meta_loss, _ = ex.make_maml(model, inner_lr, 1)
    meta_grad = npfunc.grad_and_value(meta_loss)
    opt = npfunc.optim.Adam(lr=3e-3)
    state = opt.init(params)
    rng = np.random.default_rng(0)
    history = []
    for _ in range(iterations):
        g, value = meta_grad(params, *ex.sample_tasks(rng, meta_batch, k))
        params, state = opt.update(g, state, params)
        history.append(float(value))

    def predict(p, x):
        return npfunc.functional_call(model, p, (x,))

    step = npfunc.jit(lambda p, xs, ys: {n: p[n] - inner_lr * v for n, v in npfunc.grad(task_loss)(p, xs, ys).items()})
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    axes = axes.ravel()
    axes[0].plot(history, color="0.75", lw=0.8)
    window = max(1, len(history) // 30)
    axes[0].plot(np.convolve(history, np.ones(window) / window, mode="valid"), color="C0")
    axes[0].set(title="meta-training", xlabel="iteration", ylabel="meta-loss (query MSE)", yscale="log")
    tasks = np.random.default_rng(7)
    x = np.linspace(-5, 5, 200)[:, None]
    for ax in axes[1:]:
        amp, phase = tasks.uniform(0.5, 5.0), tasks.uniform(0.0, np.pi)
        xs = tasks.uniform(-5.0, 5.0, size=(k, 1))
        ys = amp * np.sin(xs - phase)
        adapted = params
        ax.plot(x, amp * np.sin(x - phase), color="k", lw=1, label="task")
        ax.plot(x, predict(params, x), color="C7", ls="--", label="meta-init")
        for n_steps in range(1, 11):
            adapted = step(adapted, xs, ys)
            if n_steps in (1, 10):
                ax.plot(x, predict(adapted, x), label=f"{n_steps} step{'s' * (n_steps > 1)}",
                        color="C1" if n_steps == 1 else "C3")
        ax.scatter(xs, ys, color="C0", zorder=3, s=18, label=f"K={k} points")
        ax.set(title=f"new task: {amp:.1f} sin(x - {phase:.2f})", xlabel="x")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.suptitle("MAML on sine waves: second-order meta-gradients, vmap over tasks\n(examples/maml_sine.py)")
    return fig


def ntk(plt, small: bool):
    """The empirical NTK of the example's CNN, its trace over pairs of inputs."""
    ex = load("neural_tangent_kernels")
    n = 6 if small else 24
    model = ex.CNN(channels=4, rng=0)
    params = {k: v.copy() for k, v in model.named_parameters()}
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 3, 12, 12))
    # inputs in four groups (noisy copies of four images), so the kernel shows blocks
    x = np.repeat(base, n // 4, axis=0) + 0.5 * rng.standard_normal((n // 4 * 4, 3, 12, 12))

    def fnet_single(p, x):
        return npfunc.functional_call(model, p, (x[None],))[0]

    full = ex.ntk_by_jacobian_contraction(fnet_single, params, x, x)  # (n, n, 4, 4)
    trace = np.trace(full, axis1=2, axis2=3)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    im = axes[0].imshow(trace, cmap="viridis")
    fig.colorbar(im, ax=axes[0], shrink=0.85)
    axes[0].set(title=f"trace of NTK(x_i, x_j), {len(x)} inputs in 4 groups", xlabel="j", ylabel="i")
    im = axes[1].imshow(full[0, 1], cmap="RdBu_r", vmin=-np.abs(full[0, 1]).max(), vmax=np.abs(full[0, 1]).max())
    fig.colorbar(im, ax=axes[1], shrink=0.85)
    axes[1].set(title="NTK(x_0, x_1): 4 x 4 outputs", xlabel="output", ylabel="output")
    fig.suptitle("Empirical neural tangent kernel by vmap(jacrev) contraction (examples/neural_tangent_kernels.py)")
    return fig


def training_curves(plt, small: bool):
    """The digits CNN trained with Adam over grad_and_value (examples/train_digits.py)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("  training curves skipped: needs scikit-learn (pip install -e '.[examples]')")
        return None
    out = quiet(load("train_digits").main, small=small)
    losses = np.array(out["losses"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(losses, color="0.75", lw=0.8, label="minibatch loss")
    window = 10
    ax.plot(np.arange(window - 1, len(losses)), np.convolve(losses, np.ones(window) / window, mode="valid"),
            color="C0", label=f"mean of {window}")
    ax.set(xlabel="Adam step (batch 32)", ylabel="cross-entropy", yscale="log",
           title=f"digits CNN (examples/train_digits.py): test accuracy {100 * out['accuracy']:.1f} %\n"
                 f"after {len(losses)} Adam steps on grad_and_value of a functional_call loss")
    ax.legend()
    return fig


def ode_fit(plt, small: bool):
    """examples/ode_fit.py: SciPy's minimize with npfunc's adjoint gradient of solve_ivp."""
    out = quiet(load("ode_fit").main, small=small)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    ax.plot(out["t"], out["truth"], color="k", lw=1, label="true (k, c) = (3, 0.4)")
    ax.plot(out["t"], out["initial"], color="C7", ls="--", label=f"initial guess ({out['p0'][0]:g}, {out['p0'][1]:g})")
    ax.plot(out["t"], out["fitted"], color="C3", label=f"fit ({out['fit'][0]:.2f}, {out['fit'][1]:.2f})")
    ax.scatter(out["t_obs"], out["data"], color="C0", s=16, zorder=3, label="observations")
    ax.set(xlabel="t", ylabel="position y(t)", title="fitting a damped oscillator (BFGS, adjoint gradients)")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(out["t"], out["sensitivity"][:, 0], label="dy/dk")
    ax.plot(out["t"], out["sensitivity"][:, 1], label="dy/dc")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set(xlabel="t", title="sensitivity of the fit: jacfwd(trajectory)")
    ax.legend(fontsize=8)
    fig.suptitle("An ODE fit with scipy.integrate and scipy.optimize, differentiated by npfunc (examples/ode_fit.py)")
    return fig


FIGURES = {"maml_sine": maml_sine, "ntk": ntk, "training_curves": training_curves, "ode_fit": ode_fit}


def main(argv: list[str] | None = None) -> list[pathlib.Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), help="make only these figures")
    parser.add_argument("--small", action="store_true", help="tiny sizes: a smoke test, not the published figures")
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"), help="folder for the PNG files")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.only or FIGURES:
        start = time.perf_counter()
        fig = FIGURES[name](plt, args.small)
        if fig is None:
            continue
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
        print(f"  {path} ({time.perf_counter() - start:.1f} s)")
    return written


if __name__ == "__main__":
    main()
