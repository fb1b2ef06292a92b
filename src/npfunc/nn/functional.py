"""``npfunc.nn.functional``: the layers' computations as plain functions.

Everything here is written with NumPy operations, so it runs on plain arrays
and under every npfunc transform.  Names, arguments and semantics follow
``torch.nn.functional`` (``dim`` for the axis, ``reduction=`` for losses);
shapes follow torch: ``(N, C, ...)`` inputs, and convolutions, pools and
most losses also accept an input without the batch axis (``(C, ...)``),
which is what a per-sample function sees under ``vmap``.

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

from ..core.tracer import Tracer
from ..core.values import dtype_of
from ..primitives.elementwise.arithmetic import stop_gradient
from .module import ModuleError

__all__ = [
    "relu", "relu6", "hardtanh", "leaky_relu", "elu", "sigmoid", "logsigmoid", "silu", "mish", "tanh",
    "softsign", "softplus", "gelu", "log_softmax", "softmax",
    "one_hot", "normalize", "cosine_similarity", "pad",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "linear", "bilinear", "embedding", "dropout",
    "layer_norm", "batch_norm", "group_norm",
    "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
]

# ---- activations ------------------------------------------------------------------


def relu(input):
    """max(x, 0); derivative 0 at 0 (JAX's and torch's choice); NaN stays NaN."""
    return np.where(input <= 0, 0.0, input)


def relu6(input):
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0):
    """x clipped to [min_val, max_val]: derivative 1 strictly inside, 0 elsewhere
    (also at the bounds, as torch's)."""
    return np.where(input <= min_val, min_val, np.where(input >= max_val, max_val, input))


def leaky_relu(input, negative_slope: float = 0.01):
    return np.where(input > 0, input, negative_slope * input)


def elu(input, alpha: float = 1.0):
    """x for x > 0, alpha (exp(x) - 1) otherwise (derivative alpha at 0, as torch's)."""
    # (the untaken branch sees no positive x: exp cannot overflow there, the double where)
    return np.where(input > 0, input, alpha * np.expm1(np.where(input > 0, 0.0, input)))


def sigmoid(input):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * input))


def logsigmoid(input):
    """log sigmoid(x) = -softplus(-x), stable for large |x|."""
    return -softplus(-input)


def silu(input):
    return input * sigmoid(input)


def mish(input):
    return input * np.tanh(softplus(input))


def tanh(input):
    return np.tanh(input)


def softsign(input):
    return input / (1.0 + np.abs(input))


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta x)) / beta, stable; linear (x itself) where beta x > threshold, as torch."""
    z = beta * input
    smooth = (np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))) / beta
    return np.where(z > threshold, input, smooth)


def gelu(input, approximate: str = "none"):
    """x Φ(x); ``approximate='tanh'`` uses the tanh formula."""
    if approximate == "tanh":
        return 0.5 * input * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * input ** 3)))
    if approximate != "none":
        raise ModuleError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    from scipy.special import erf

    return 0.5 * input * (1.0 + erf(input / math.sqrt(2.0)))


def _axis(dim, axis, default: int = -1) -> int:
    if axis is not None:
        return axis
    return default if dim is None else dim


def log_softmax(input, dim: int | None = None, *, axis: int | None = None):
    """x - logsumexp(x) along ``dim`` (default the last axis; ``axis=`` is a NumPy-style alias).

    The shift by the maximum does not change the derivative, so it is taken
    as a constant."""
    a = _axis(dim, axis)
    shifted = input - stop_gradient(np.max(input, axis=a, keepdims=True))
    return shifted - np.log(np.sum(np.exp(shifted), axis=a, keepdims=True))


def softmax(input, dim: int | None = None, *, axis: int | None = None):
    """exp(x) / sum(exp(x)) along ``dim`` (default the last axis)."""
    a = _axis(dim, axis)
    e = np.exp(input - stop_gradient(np.max(input, axis=a, keepdims=True)))
    return e / np.sum(e, axis=a, keepdims=True)


# ---- small utilities ----------------------------------------------------------------------

def one_hot(indices, num_classes: int = -1):
    """Integer one-hot encoding with a new last axis (``num_classes=-1``: max index + 1)."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise ModuleError(f"one_hot: indices must be integers, got dtype {indices.dtype}")
    if num_classes < 0:
        num_classes = int(indices.max()) + 1 if indices.size else 0
    return (indices[..., None] == np.arange(num_classes)).astype(np.int64)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """x / max(||x||_p, eps) along ``dim``."""
    norm = np.sum(np.abs(input) ** p, axis=dim, keepdims=True) ** (1.0 / p)
    return input / np.maximum(norm, eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim`` (torch's formula)."""
    dot = np.sum(x1 * x2, axis=dim)
    n1 = np.sqrt(np.sum(x1 * x1, axis=dim))
    n2 = np.sqrt(np.sum(x2 * x2, axis=dim))
    return dot / (np.maximum(n1, eps) * np.maximum(n2, eps))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode: str = "constant", value: float = 0.0):
    """torch's padding: ``pad`` lists (before, after) pairs from the *last* axis backwards."""
    if len(pad) % 2 or len(pad) // 2 > np.ndim(input):
        raise ModuleError(f"pad: pad must hold (before, after) pairs for at most {np.ndim(input)} axes, "
                          f"got {tuple(pad)}")
    if mode not in _PAD_MODES:
        raise ModuleError(f"pad: mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    widths = [(0, 0)] * (np.ndim(input) - len(pairs)) + pairs[::-1]
    if mode == "constant":
        return np.pad(input, widths, constant_values=value)
    return np.pad(input, widths, mode=_PAD_MODES[mode])


# ---- losses ----------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction: str, fn: str):
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "none":
        return loss
    raise ModuleError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_same_shape(a, b, fn: str):
    if tuple(np.shape(a)) != tuple(np.shape(b)):
        raise ModuleError(f"{fn}: input has shape {tuple(np.shape(a))} but target has shape "
                          f"{tuple(np.shape(b))}; they must match (reshape one of them, e.g. "
                          "target[:, None] or input[..., 0])")


def mse_loss(input, target, reduction: str = "mean"):
    """(input - target)^2, reduced."""
    _check_same_shape(input, target, "mse_loss")
    return _reduce((input - target) ** 2, reduction, "mse_loss")


def l1_loss(input, target, reduction: str = "mean"):
    """|input - target|, reduced."""
    _check_same_shape(input, target, "l1_loss")
    return _reduce(np.abs(input - target), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """0.5 d^2 / beta where d = |input - target| < beta, else d - 0.5 beta."""
    _check_same_shape(input, target, "smooth_l1_loss")
    d = np.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    return _reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    """0.5 d^2 where d = |input - target| < delta, else delta (d - 0.5 delta)."""
    _check_same_shape(input, target, "huber_loss")
    d = np.abs(input - target)
    return _reduce(np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction, "huber_loss")


def _class_axis_last(x, fn: str):
    """(N, C, d1, ...) -> (N, d1, ..., C); (C,) stays."""
    nd = np.ndim(x)
    if nd == 0:
        raise ModuleError(f"{fn}: input must have a class axis (shape (C,) or (N, C, ...)), got a scalar")
    return np.moveaxis(x, 1, -1) if nd > 1 else x


def _class_indices(target, expected_shape, n_classes: int, ignore_index: int, fn: str):
    if not hasattr(target, "shape"):
        target = np.asarray(target)
    if dtype_of(target).kind not in "iu":
        raise ModuleError(
            f"{fn}: class-index targets must be an integer array, got dtype {dtype_of(target)}. "
            "Class probabilities must have the input's shape (and are only accepted by cross_entropy).")
    if tuple(np.shape(target)) != tuple(expected_shape):
        raise ModuleError(
            f"{fn}: target has shape {tuple(np.shape(target))}, expected {tuple(expected_shape)} (one class "
            "index per sample, the input's shape without its class axis 1)")
    if isinstance(target, Tracer):  # batched under vmap: values are not inspectable
        return target
    bad = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if np.any(bad):
        raise ModuleError(f"{fn}: target holds class indices outside [0, {n_classes}): "
                          f"{np.unique(target[bad])[:5].tolist()}")
    return target


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``.

    ``input`` is (N, C, d1, ...) or (C,); ``weight`` rescales each class; entries
    whose target is ``ignore_index`` count for nothing, and ``'mean'`` divides by
    the total weight of the counted entries (torch's definition).
    """
    logp = _class_axis_last(input, "nll_loss")
    n_classes = np.shape(logp)[-1]
    target = _class_indices(target, np.shape(logp)[:-1], n_classes, ignore_index, "nll_loss")
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    if isinstance(safe, Tracer):
        # Batched targets (under vmap): pick through a one-hot mask; the gradient is a dense
        # where(), as cheap as the log-softmax before it.
        picked = np.sum(np.where(safe[..., None] == np.arange(n_classes), logp, 0.0), axis=-1)
    else:  # concrete targets: plain fancy indexing (its gradient is a fast scatter)
        picked = logp[tuple(np.indices(np.shape(safe), sparse=True)) + (safe,)]
    w = valid.astype(dtype_of(input)) if weight is None else np.where(valid, np.take(weight, safe), 0.0)
    losses = -picked * w
    if reduction == "mean":
        return np.sum(losses) / np.sum(w)
    return _reduce(losses, reduction, "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """Cross entropy of logits ``input`` (N, C, d1, ...) or (C,) with ``target``
    either class indices (N, d1, ...) or class probabilities (the input's shape).

    ``label_smoothing`` mixes the target with the uniform distribution;
    ``weight`` and ``ignore_index`` as in ``nll_loss`` (``ignore_index`` only
    for indices).  Semantics and normalisation are torch's.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ModuleError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_axis = 1 if np.ndim(input) > 1 else 0
    if np.ndim(input) == 0:
        raise ModuleError("cross_entropy: input must have a class axis (shape (C,) or (N, C, ...)), got a scalar")
    logp = log_softmax(input, class_axis)
    n_classes = np.shape(input)[class_axis]
    if tuple(np.shape(target)) == tuple(np.shape(input)) and dtype_of(target).kind == "f":
        probs = target * (1 - label_smoothing) + label_smoothing / n_classes
        per_class = -probs * logp
        if weight is not None:
            per_class = per_class * np.reshape(weight, (n_classes,) + (1,) * (np.ndim(input) - class_axis - 1))
        return _reduce(np.sum(per_class, axis=class_axis), reduction, "cross_entropy")
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    target = target if hasattr(target, "shape") else np.asarray(target)
    logp_last = _class_axis_last(logp, "cross_entropy")
    valid = target != ignore_index
    w = 1.0 if weight is None else weight
    smooth = np.where(valid, -np.sum(logp_last * w, axis=-1), 0.0)
    if reduction == "mean":
        counted = valid if weight is None else np.where(valid, np.take(weight, np.where(valid, target, 0)), 0.0)
        smooth = np.sum(smooth) / np.sum(counted)
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """-(y log p + (1 - y) log(1 - p)) for probabilities ``input``; logs clamped at -100 as torch."""
    _check_same_shape(input, target, "binary_cross_entropy")
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped
        log_p = np.maximum(np.log(input), -100.0)
        log_q = np.maximum(np.log1p(-input), -100.0)
    losses = -(target * log_p + (1 - target) * log_q)
    return _reduce(losses if weight is None else losses * weight, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """BCE of sigmoid(input), computed stably from the logits.

    ``pos_weight`` multiplies the positive term (broadcast along the last,
    class axis); ``weight`` multiplies each element's loss.
    """
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    log_sig = logsigmoid(input)           # log sigmoid(x)
    log_one_minus = logsigmoid(-input)    # log (1 - sigmoid(x))
    pos = target * log_sig if pos_weight is None else pos_weight * target * log_sig
    losses = -(pos + (1 - target) * log_one_minus)
    return _reduce(losses if weight is None else losses * weight, reduction,
                   "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """Pointwise KL divergence ``target * (log target - input)``, ``input`` being log-probabilities.

    ``log_target=True`` takes ``target`` as log-probabilities too.  Terms with
    ``target == 0`` are 0.  ``reduction='batchmean'`` divides the sum by the
    batch size (the mathematically correct KL); ``'mean'`` averages over every
    element, as torch.
    """
    _check_same_shape(input, target, "kl_div")
    if log_target:
        pointwise = np.exp(target) * (target - input)
    else:
        positive = target > 0
        safe = np.where(positive, target, 1.0)
        pointwise = np.where(positive, target * (np.log(safe) - input), 0.0 * input)
    if reduction == "batchmean":
        return np.sum(pointwise) / (np.shape(input)[0] if np.ndim(input) else 1)
    if reduction not in REDUCTIONS:
        raise ModuleError(f"kl_div: reduction must be one of {REDUCTIONS + ('batchmean',)}, got {reduction!r}")
    return _reduce(pointwise, reduction, "kl_div")


# ---- linear, embedding, dropout -----------------------------------------------------------

def linear(input, weight, bias=None):
    """``input @ weight.T + bias``."""
    y = input @ np.swapaxes(weight, -1, -2)
    return y if bias is None else y + bias


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1ᵀ W_k x2 + b_k with ``weight`` of shape (out, in1, in2)."""
    y = np.einsum("...i,kij,...j->...k", input1, weight, input2)
    return y if bias is None else y + bias


def embedding(input, weight, padding_idx: int | None = None):
    """Rows of ``weight`` picked by the integer array ``input``.

    The gradient adds up the cotangents of repeated indices; the row
    ``padding_idx`` (if given) gets no gradient, as in torch.
    """
    if not hasattr(input, "dtype"):
        input = np.asarray(input)
    if dtype_of(input).kind not in "iu":
        raise ModuleError(f"embedding: indices must be integers, got dtype {dtype_of(input)}")
    n = np.shape(weight)[0]
    if not isinstance(input, Tracer) and input.size and (input.min() < 0 or input.max() >= n):
        raise ModuleError(f"embedding: index out of range for {n} embeddings (indices span "
                          f"[{input.min()}, {input.max()}]; valid are 0 .. {n - 1})")
    out = np.take(weight, input, axis=0)
    if padding_idx is not None:
        out = np.where((input == padding_idx)[..., None], stop_gradient(out), out)
    return out


def dropout(input, p: float = 0.5, training: bool = True, rng=None):
    """Zero entries with probability ``p`` and scale the rest by 1/(1-p).

    Draws come from ``npfunc.random`` (``rng``: a seed, ``np.random.Generator``
    or ``npfunc.random.Generator``), so under vmap the ``randomness`` flag
    decides: ``'error'`` raises, ``'different'`` draws a mask per batch
    element, ``'same'`` one mask shared by the batch."""
    if not 0.0 <= p <= 1.0:
        raise ModuleError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    from .. import random as nprandom

    keep = nprandom.default_rng(rng).random(np.shape(input)) >= p
    return np.where(keep, input / (1.0 - p), 0.0 * input)


# ---- normalisation ----------------------------------------------------------------------

def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing ``normalized_shape`` axes (biased variance, as torch)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    k = len(normalized_shape)
    if np.ndim(input) < k or tuple(np.shape(input)[np.ndim(input) - k:]) != normalized_shape:
        raise ModuleError(f"layer_norm: expected an input whose last axes are {normalized_shape}, got shape "
                          f"{tuple(np.shape(input))}")
    axes = tuple(range(-k, 0))
    mean = np.mean(input, axis=axes, keepdims=True)
    centered = input - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    y = centered / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


_VMAP_BN_HINT = (
    "Batch norm in training mode updates its running statistics in place from the whole batch; "
    "under vmap every batch element would need its own copy of them. Fix: call "
    "npfunc.replace_all_batch_norm_modules_(model) first (it stops tracking running statistics, so "
    "batch statistics are used: the usual fix for ensembles and per-sample gradients), or call "
    "model.eval() to normalise with the stored running statistics.")


def _update_running(running_mean, running_var, batch_mean, batch_var, momentum: float) -> None:
    """torch's in-place ``running = (1 - momentum) running + momentum stat``, for both
    statistics or neither (everything is checked before anything is written)."""
    pairs = ((running_mean, batch_mean), (running_var, batch_var))
    new = [(1.0 - momentum) * buf + momentum * stat for buf, stat in pairs]
    if any(isinstance(v, Tracer) for v in new):
        from ..core.context import current_stack

        if any(interp.transform == "vmap" for interp in current_stack()):
            raise ModuleError(
                "batch_norm: training mode with running statistics, inside vmap: the statistics would have "
                f"to be updated from every batch element separately. {_VMAP_BN_HINT}")
        if not all(isinstance(buf, Tracer) for buf, _ in pairs):  # (jit: recorded statistics, plain buffers)
            raise ModuleError(
                "batch_norm: training mode with running statistics inside jit: the running statistics are "
                "plain arrays of the module, which cannot hold statistics jit only records. Pass the buffers "
                "in as an argument of the jitted function, npfunc.functional_call(model, (params, buffers), "
                "args) (jit then updates the caller's buffers in place), or call model.eval(), or "
                "npfunc.replace_all_batch_norm_modules_(model) to normalise with batch statistics only.")
    for buf, _ in pairs:
        if not isinstance(buf, Tracer) and (not isinstance(buf, np.ndarray) or not buf.flags.writeable):
            raise ModuleError("batch_norm: running_mean and running_var must be writeable NumPy arrays to "
                              "be updated in training mode (pass None to use batch statistics only)")
    for (buf, _), value in zip(pairs, new):
        buf[...] = value


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation over every axis of (N, C, *spatial) but the channel axis 1.

    With ``training=True`` the batch's statistics normalise, and the running
    statistics (if given) are updated **in place**, as torch does:
    ``running = (1 - momentum) running + momentum stat`` with the unbiased
    (n / (n - 1)) batch variance.  With ``training=False`` the running
    statistics normalise.  Derivatives flow through the batch statistics, not
    into the running ones.
    """
    nd = np.ndim(input)
    if nd < 2:
        raise ModuleError(f"batch_norm: expected an input of shape (N, C) or (N, C, *spatial), got shape "
                          f"{tuple(np.shape(input))}. Batch statistics need a batch axis; under vmap each "
                          f"element has none. {_VMAP_BN_HINT}")
    c = np.shape(input)[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and tuple(np.shape(value)) != (c,):
            raise ModuleError(f"batch_norm: {name} has shape {tuple(np.shape(value))} but the input "
                              f"{tuple(np.shape(input))} has {c} channels on axis 1")
    shape = (1, c) + (1,) * (nd - 2)
    axes = (0,) + tuple(range(2, nd))
    if training:
        n = math.prod(np.shape(input)[a] for a in axes)
        if n <= 1:
            raise ModuleError(f"batch_norm: expected more than 1 value per channel when training, got input "
                              f"shape {tuple(np.shape(input))}")
        mean = np.mean(input, axis=axes, keepdims=True)
        centered = input - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        if (running_mean is None) != (running_var is None):
            raise ModuleError("batch_norm: give both running_mean and running_var, or neither")
        if running_mean is not None:
            _update_running(running_mean, running_var, stop_gradient(np.reshape(mean, (c,))),
                            stop_gradient(np.reshape(var, (c,))) * (n / (n - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ModuleError("batch_norm: training=False normalises with the running statistics, so "
                              "running_mean and running_var must be given (or pass training=True)")
        mean, var = np.reshape(running_mean, shape), np.reshape(running_var, shape)
        centered = input - mean
    y = centered / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.reshape(weight, shape)
    if bias is not None:
        y = y + np.reshape(bias, shape)
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalise each sample over groups of channels (and all spatial axes) of (N, C, *spatial) input."""
    if np.ndim(input) < 2:
        raise ModuleError(f"group_norm: expected an input of shape (N, C, *spatial), got shape "
                          f"{tuple(np.shape(input))}; add the batch axis with x[None]")
    n, c = np.shape(input)[:2]
    if c % num_groups:
        raise ModuleError(f"group_norm: {c} channels cannot be split into {num_groups} groups")
    grouped = np.reshape(input, (n, num_groups, c // num_groups) + tuple(np.shape(input)[2:]))
    axes = tuple(range(2, np.ndim(grouped)))
    mean = np.mean(grouped, axis=axes, keepdims=True)
    centered = grouped - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    y = np.reshape(centered / np.sqrt(var + eps), np.shape(input))
    shape = (1, c) + (1,) * (np.ndim(input) - 2)
    if weight is not None:
        y = y * np.reshape(weight, shape)
    return y if bias is None else y + np.reshape(bias, shape)


from .conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d,  # noqa: E402,F401
                   avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d)


def __dir__():
    return __all__
