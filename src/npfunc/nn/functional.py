"""``npfunc.nn.functional``: the layers' computations as plain functions.

Everything here is written with NumPy operations, so it runs on plain arrays
and under every npfunc transform.  Shapes follow torch: ``(N, C, ...)``
inputs; an input without the batch axis (``(C, ...)``) is accepted too, which
is what a per-sample function sees under ``vmap``.

>>> import numpy as np
>>> from npfunc.nn import functional as F
>>> F.relu(np.array([-1.0, 2.0]))
array([0., 2.])
>>> float(F.cross_entropy(np.array([[2.0, 0.0]]), np.array([0])).round(4))
0.1269
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives.elementwise import stop_gradient
from .module import ModuleError

# ---- activations ------------------------------------------------------------------


def relu(x):
    """max(x, 0); derivative 0 at 0 (JAX's and torch's choice)."""
    return np.where(x > 0, x, 0.0 * x)


def leaky_relu(x, negative_slope: float = 0.01):
    return np.where(x > 0, x, negative_slope * x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def silu(x):
    return x * sigmoid(x)


def tanh(x):
    return np.tanh(x)


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta x)) / beta, stable for large |x|."""
    z = beta * x
    return (np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))) / beta


def gelu(x, approximate: str = "none"):
    """x Φ(x); ``approximate='tanh'`` uses the tanh formula."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def log_softmax(x, axis: int = -1):
    """x - logsumexp(x) along ``axis``; the shift by the max does not change
    the derivative, so it is taken as a constant."""
    shifted = x - stop_gradient(np.max(x, axis=axis, keepdims=True))
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis: int = -1):
    shifted = x - stop_gradient(np.max(x, axis=axis, keepdims=True))
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


# ---- losses ----------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction: str, fn: str):
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_same_shape(a, b, fn: str):
    if np.shape(a) != np.shape(b):
        raise ModuleError(f"{fn}: input has shape {np.shape(a)} but target has shape {np.shape(b)}; "
                          "they must match")


def mse_loss(input, target, reduction: str = "mean"):
    _check_same_shape(input, target, "mse_loss")
    return _reduce((input - target) ** 2, reduction, "mse_loss")


def l1_loss(input, target, reduction: str = "mean"):
    _check_same_shape(input, target, "l1_loss")
    return _reduce(np.abs(input - target), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    _check_same_shape(input, target, "smooth_l1_loss")
    d = np.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    return _reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    _check_same_shape(input, target, "huber_loss")
    d = np.abs(input - target)
    return _reduce(np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction, "huber_loss")


def _class_axis_last(x, fn: str):
    """(N, C, d1, ...) -> (N, d1, ..., C); (C,) stays."""
    nd = np.ndim(x)
    if nd == 0:
        raise ModuleError(f"{fn}: input must have a class axis (shape (C,) or (N, C, ...)), got a scalar")
    return np.moveaxis(x, 1, -1) if nd > 1 else x


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``."""
    logp = _class_axis_last(input, "nll_loss")
    if not hasattr(target, "shape"):
        target = np.asarray(target)
    if np.shape(target) != np.shape(logp)[:-1]:
        raise ModuleError(
            f"nll_loss: target has shape {np.shape(target)}, expected {np.shape(logp)[:-1]} (one class "
            "index per sample)")
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    w = np.where(valid, 1.0, 0.0) if weight is None else np.where(valid, np.take(weight, safe), 0.0)
    losses = -picked * w
    if reduction == "mean":
        return np.sum(losses) / np.sum(w)
    return _reduce(losses, reduction, "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """Cross entropy of logits ``input`` with class indices or class probabilities ``target``."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = log_softmax(input, axis=1 if np.ndim(input) > 1 else 0)
    n_classes = np.shape(input)[1 if np.ndim(input) > 1 else 0]
    is_probabilities = np.shape(target) == np.shape(input) and np.result_type(target).kind == "f"
    if is_probabilities:
        probs = target * (1 - label_smoothing) + label_smoothing / n_classes
        per_class = -probs * logp
        if weight is not None:
            shape = (1, n_classes) + (1,) * (np.ndim(input) - 2) if np.ndim(input) > 1 else (n_classes,)
            per_class = per_class * np.reshape(weight, shape)
        losses = np.sum(per_class, axis=1 if np.ndim(input) > 1 else 0)
        return _reduce(losses, reduction, "cross_entropy")
    if not hasattr(target, "shape"):
        target = np.asarray(target)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    logp_last = _class_axis_last(logp, "cross_entropy")
    valid = target != ignore_index
    w = 1.0 if weight is None else weight
    smooth = -np.sum(logp_last * w, axis=-1) / n_classes * np.where(valid, 1.0, 0.0)
    if reduction == "mean":
        denom = np.sum(np.where(valid, 1.0, 0.0)) if weight is None else \
            np.sum(np.where(valid, np.take(weight, np.where(valid, target, 0)), 0.0))
        smooth = np.sum(smooth) / denom
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + label_smoothing * smooth


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """-(y log p + (1 - y) log(1 - p)), logs clamped at -100 as torch does."""
    _check_same_shape(input, target, "binary_cross_entropy")
    log_p = np.maximum(np.log(input), -100.0)
    log_q = np.maximum(np.log1p(-input), -100.0)
    losses = -(target * log_p + (1 - target) * log_q)
    return _reduce(losses if weight is None else losses * weight, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """BCE of sigmoid(input), computed stably from the logits."""
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    log_sig = -softplus(-input)       # log sigmoid(x)
    log_one_minus = -softplus(input)  # log (1 - sigmoid(x))
    pos = target * log_sig if pos_weight is None else pos_weight * target * log_sig
    losses = -(pos + (1 - target) * log_one_minus)
    return _reduce(losses if weight is None else losses * weight, reduction,
                   "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """KL(target || exp(input)) pointwise, ``input`` being log-probabilities."""
    if log_target:
        pointwise = np.exp(target) * (target - input)
    else:
        safe = np.where(target > 0, target, 1.0)
        pointwise = np.where(target > 0, target * (np.log(safe) - input), 0.0 * input)
    if reduction == "batchmean":
        return np.sum(pointwise) / (np.shape(input)[0] if np.ndim(input) else 1)
    return _reduce(pointwise, reduction, "kl_div")


# ---- linear, embedding, dropout -----------------------------------------------------------

def linear(x, weight, bias=None):
    y = x @ np.swapaxes(weight, -1, -2)
    return y if bias is None else y + bias


def bilinear(x1, x2, weight, bias=None):
    """y_k = x1ᵀ W_k x2 + b_k with ``weight`` of shape (out, in1, in2)."""
    y = np.einsum("...i,kij,...j->...k", x1, weight, x2)
    return y if bias is None else y + bias


def embedding(indices, weight):
    return np.take(weight, indices, axis=0)


def dropout(x, p: float = 0.5, training: bool = True, rng=None):
    """Zero entries with probability ``p`` and scale the rest by 1/(1-p).

    Draws come from ``npfunc.random``, so under vmap the ``randomness`` flag
    decides whether batch elements share a mask."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    from .. import random as nprandom

    gen = nprandom.default_rng(rng)
    keep = gen.random(np.shape(x)) >= p
    return np.where(keep, x / (1.0 - p), 0.0 * x)


# ---- normalisation ----------------------------------------------------------------------

def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(np.shape(x)[-len(normalized_shape):]) != normalized_shape:
        raise ModuleError(f"layer_norm: input shape {np.shape(x)} does not end with {normalized_shape}")
    axes = tuple(range(-len(normalized_shape), 0))
    mean = np.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    y = centered / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def _channel_shape(x, n_channels: int, fn: str):
    if np.ndim(x) < 2 or np.shape(x)[1] != n_channels:
        raise ModuleError(f"{fn}: expected input of shape (N, {n_channels}, ...), got {np.shape(x)}")
    return (1, n_channels) + (1,) * (np.ndim(x) - 2)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation over every axis but the channel axis 1.

    Returns ``(y, new_running_mean, new_running_var)``; the running statistics
    are updated (as constants) only when ``training`` and given."""
    c = np.shape(x)[1] if np.ndim(x) >= 2 else None
    shape = _channel_shape(x, c, "batch_norm")
    axes = (0,) + tuple(range(2, np.ndim(x)))
    if training or running_mean is None:
        mean = np.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        new_mean, new_var = running_mean, running_var
        if training and running_mean is not None:
            n = math.prod(np.shape(x)[a] for a in axes)
            unbiased = stop_gradient(np.reshape(var, (c,))) * (n / max(n - 1, 1))
            new_mean = (1 - momentum) * running_mean + momentum * stop_gradient(np.reshape(mean, (c,)))
            new_var = (1 - momentum) * running_var + momentum * unbiased
    else:
        mean, var = np.reshape(running_mean, shape), np.reshape(running_var, shape)
        centered = x - mean
        new_mean, new_var = running_mean, running_var
    y = centered / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.reshape(weight, shape)
    if bias is not None:
        y = y + np.reshape(bias, shape)
    return y, new_mean, new_var


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    n, c = np.shape(x)[:2]
    if c % num_groups:
        raise ModuleError(f"group_norm: {c} channels cannot be split into {num_groups} groups")
    grouped = np.reshape(x, (n, num_groups, c // num_groups) + tuple(np.shape(x)[2:]))
    axes = tuple(range(2, np.ndim(grouped)))
    mean = np.mean(grouped, axis=axes, keepdims=True)
    centered = grouped - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    y = np.reshape(centered / np.sqrt(var + eps), np.shape(x))
    shape = (1, c) + (1,) * (np.ndim(x) - 2)
    if weight is not None:
        y = y * np.reshape(weight, shape)
    return y if bias is None else y + np.reshape(bias, shape)


from .conv import adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, max_pool2d  # noqa: E402,F401
