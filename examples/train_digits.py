"""Tutorial 6: train a small CNN on real data with npfunc.nn and Adam.

The data is scikit-learn's bundled ``digits`` set (1,797 greyscale 8x8
images of handwritten digits; it ships inside the package, nothing is
downloaded).  Install the extra with ``pip install npfunc[examples]``.

The model is an ordinary ``nn.Module``; training is functional:

    grads = npfunc.grad(loss)(params, x, y)          # loss calls functional_call
    params, state = adam.update(grads, state, params)

which is exactly torch.func's recipe.  The script reports test accuracy
(>= 95 % in full mode), shows a tqdm progress bar, checks one minibatch
gradient against finite differences and against a loop of per-sample
gradients, and times the transform against that loop.

    python examples/train_digits.py            # full: ~97-99 % test accuracy
    python examples/train_digits.py --small    # a quick run on a subset
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn
from npfunc.nn import functional as F


class DigitsCNN(nn.Module):
    """conv(1->16) -> relu -> pool -> conv(16->32) -> relu -> pool -> linear(128->10)."""

    def __init__(self, rng=0, width: int = 16):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, rng=gen), nn.ReLU(), nn.MaxPool2d(2),       # 16 x 4 x 4
            nn.Conv2d(width, 2 * width, 3, padding=1, rng=gen), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 2 x 2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2, rng=gen), nn.Linear(8 * width, 10, rng=gen))

    def forward(self, x):
        return self.classifier(self.features(x))


def load_data(seed: int = 0, test_fraction: float = 0.25):
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = (images.reshape(-1, 1, 8, 8) / 16.0 - 0.5) / 0.5  # to [-1, 1]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], labels[train], x[test], labels[test]


def progress(iterable, total: int, desc: str, enabled: bool = True):
    """tqdm's progress bar if installed (the `examples` extra), else the plain iterable."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the examples extra
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=True, disable=not enabled)


def accuracy(model, params, x, y, batch: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        logits = npfunc.functional_call(model, params, (x[i:i + batch],))
        correct += int(np.sum(np.argmax(logits, axis=1) == y[i:i + batch]))
    model.train()
    return correct / len(x)


def check_gradient(model, params, x, y):
    """The minibatch gradient vs central differences and vs a loop of per-sample gradients."""
    model.eval()  # dropout off: a deterministic function

    def loss(p, xb, yb):
        return F.cross_entropy(npfunc.functional_call(model, p, (xb,)), yb)

    grad_fn = npfunc.grad(loss)
    g = grad_fn(params, x, y)
    w = params["features.3.weight"]
    rng = np.random.default_rng(1)
    eps, worst = 1e-6, 0.0
    for _ in range(3):
        idx = tuple(rng.integers(0, s) for s in w.shape)
        step = np.zeros_like(w)
        step[idx] = eps
        up = loss({**params, "features.3.weight": w + step}, x, y)
        down = loss({**params, "features.3.weight": w - step}, x, y)
        fd = (up - down) / (2 * eps)
        worst = max(worst, abs(fd - g["features.3.weight"][idx]) / max(1e-8, abs(fd)))
    assert worst < 1e-4, f"gradient differs from finite differences (relative error {worst:.2e})"

    start = time.perf_counter()
    g = grad_fn(params, x, y)
    t_transform = time.perf_counter() - start
    start = time.perf_counter()
    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for i in range(len(x)):
        gi = grad_fn(params, x[i:i + 1], y[i:i + 1])
        for k in summed:
            summed[k] += gi[k] / len(x)
    t_loop = time.perf_counter() - start
    for k in params:
        np.testing.assert_allclose(g[k], summed[k], rtol=1e-8, atol=1e-12)
    model.train()
    return worst, t_transform, t_loop


def main(small: bool = False) -> dict:
    x_train, y_train, x_test, y_test = load_data()
    if small:
        x_train, y_train, x_test, y_test = x_train[:384], y_train[:384], x_test[:200], y_test[:200]
    epochs, batch = (3, 32) if small else (12, 32)
    model = DigitsCNN(rng=0)
    params = dict(model.named_parameters())
    opt = npfunc.optim.Adam(lr=3e-3)
    state = opt.init(params)

    def loss(p, xb, yb):
        return F.cross_entropy(npfunc.functional_call(model, p, (xb,)), yb)

    value_and_grad = npfunc.grad_and_value(loss)
    rng = np.random.default_rng(0)
    steps = epochs * int(np.ceil(len(x_train) / batch))
    losses = []
    start = time.perf_counter()
    bar = progress(range(steps), steps, "training", enabled=not small)
    order = np.array([], dtype=int)
    for _ in bar:
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(x_train))])
        idx, order = order[:batch], order[batch:]
        grads, value = value_and_grad(params, x_train[idx], y_train[idx])
        params, state = opt.update(grads, state, params)
        losses.append(float(value))
        if hasattr(bar, "set_postfix") and len(losses) % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    train_time = time.perf_counter() - start
    acc = accuracy(model, params, x_test, y_test)
    fd_error, t_transform, t_loop = check_gradient(model, params, x_train[:32], y_train[:32])

    print(f"digits CNN, {len(x_train)} training / {len(x_test)} test images, {epochs} epochs of batch {batch}")
    print(f"  loss: first 10 steps {np.mean(losses[:10]):.3f} -> last 10 steps {np.mean(losses[-10:]):.3f}")
    print(f"  training time {train_time:.1f} s ({1e3 * train_time / steps:.1f} ms per Adam step)")
    print(f"  test accuracy {100 * acc:.1f} %")
    print(f"  gradient check: finite differences rel. error {fd_error:.1e}; "
          f"grad of the batch {1e3 * t_transform:.1f} ms vs loop over 32 samples {1e3 * t_loop:.1f} ms "
          f"({t_loop / t_transform:.1f}x)")
    if not small:
        assert acc >= 0.95, f"test accuracy {acc:.3f} is below 95 %"
    return {"accuracy": acc, "losses": losses, "train_time": train_time, "fd_error": fd_error,
            "t_transform": t_transform, "t_loop": t_loop}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run on a subset")
    main(small=parser.parse_args().small)
