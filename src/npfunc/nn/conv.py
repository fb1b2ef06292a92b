"""Convolutions and pooling, vectorised through sliding windows.

A convolution is the classic *im2col* product: the input's sliding windows
(``np.lib.stride_tricks.sliding_window_view``, a view) are laid out as one
row per output position and multiplied by the flattened kernel in a single
BLAS matrix product.  No Python loop runs over positions or batch elements;
the gradient (the windows' transpose, ``window_sum``) loops only over the
positions *inside* a kernel, each step one vectorised slice-add.

Pooling with non-overlapping windows (the usual ``kernel_size == stride``)
is a reshape into blocks followed by a reduction; overlapping or padded
pooling reduces the sliding windows.  Adaptive average pooling is two small
averaging-matrix products, so non-divisible sizes cost nothing extra.

Shapes follow torch: ``(N, C, *spatial)`` or, without the batch axis,
``(C, *spatial)`` -- what a per-sample function sees under ``vmap``.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.values import dtype_of
from .module import ModuleError

_windows = np.lib.stride_tricks.sliding_window_view
_SPATIAL = {1: "L", 2: "H, W"}


def _tuple(v, n: int, name: str, fn: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    try:
        v = tuple(int(i) for i in v)
    except (TypeError, ValueError):
        raise ModuleError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {v!r}") from None
    if len(v) != n:
        raise ModuleError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _padding(padding, kernel, dilation, n: int, fn: str):
    """((before, after), ...) per spatial axis; 'same' keeps the size at stride 1
    (an odd total padding puts the extra element after, as torch does)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ModuleError(f"{fn}: padding must be 'same', 'valid', an int or a tuple of {n} ints, "
                          f"got {padding!r}")
    pads = _tuple(padding, n, "padding", fn)
    if any(p < 0 for p in pads):
        raise ModuleError(f"{fn}: padding must be non-negative, got {padding}")
    return tuple((p, p) for p in pads)


def _as_batched(x, n: int, fn: str):
    """(x with a batch axis, whether one was added)."""
    nd = np.ndim(x)
    if nd == n + 1:
        return x[None], True
    if nd != n + 2:
        spatial = _SPATIAL[n]
        raise ModuleError(
            f"{fn}: expected a {n + 2}-d input (N, C, {spatial}) or a {n + 1}-d input (C, {spatial}), got "
            f"shape {tuple(np.shape(x))}. Add the missing axes, e.g. x[:, None] for a single channel "
            f"or x[None] for a single sample.")
    return x, False


def _conv(x, weight, bias, stride, padding, dilation, groups, n: int, fn: str):
    """N-d convolution (n = 1 or 2) of (N, C, *spatial) or (C, *spatial) input."""
    if np.ndim(weight) != n + 2:
        raise ModuleError(f"{fn}: weight must have shape (C_out, C_in / groups, {'kL' if n == 1 else 'kH, kW'}), "
                          f"got {tuple(np.shape(weight))}")
    x, unbatched = _as_batched(x, n, fn)
    c_in = np.shape(x)[1]
    c_out, c_per_group = np.shape(weight)[:2]
    kernel = tuple(np.shape(weight)[2:])
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ModuleError(f"{fn}: groups must be a positive int, got {groups!r}")
    if c_in != c_per_group * groups or c_out % groups:
        raise ModuleError(
            f"{fn}: the input has {c_in} channels (axis 1 of shape {tuple(np.shape(x))}) but the weight "
            f"{tuple(np.shape(weight))} with groups={groups} expects {c_per_group * groups}")
    stride = _tuple(stride, n, "stride", fn)
    dilation = _tuple(dilation, n, "dilation", fn)
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ModuleError(f"{fn}: stride and dilation must be >= 1, got stride={stride}, dilation={dilation}")
    if padding == "same" and any(s != 1 for s in stride):
        raise ModuleError(f"{fn}: padding='same' is only supported with stride 1 (as in torch), got {stride}")
    pads = _padding(padding, kernel, dilation, n, fn)
    if any(p for pair in pads for p in pair):
        x = np.pad(x, ((0, 0), (0, 0)) + pads)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    size = tuple(np.shape(x)[2:])
    if any(s < k for s, k in zip(size, span)):
        raise ModuleError(f"{fn}: the (padded) input size {size} is smaller than the kernel's span {span}")
    win = _windows(x, span, axis=tuple(range(2, 2 + n)))  # (N, C, *positions, *span)
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
              + tuple(slice(None, None, d) for d in dilation)]
    batch = np.shape(win)[0]
    out = tuple(np.shape(win)[2:2 + n])
    positions, k_size = math.prod(out), c_per_group * math.prod(kernel)
    # im2col: one row per (sample, output position), one column per (channel, kernel offset).
    cols = np.transpose(win, (0,) + tuple(range(2, 2 + n)) + (1,) + tuple(range(2 + n, 2 + 2 * n)))
    if groups == 1:
        y = np.reshape(cols, (batch * positions, k_size)) @ np.reshape(weight, (c_out, k_size)).T
    else:
        cols = np.swapaxes(np.reshape(cols, (batch * positions, groups, k_size)), 0, 1)
        w = np.swapaxes(np.reshape(weight, (groups, c_out // groups, k_size)), 1, 2)
        y = np.reshape(np.swapaxes(cols @ w, 0, 1), (batch * positions, c_out))
    if bias is not None:
        y = y + bias
    y = np.moveaxis(np.reshape(y, (batch,) + out + (c_out,)), -1, 1)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-d convolution (cross-correlation, as torch) of (N, C, L) or (C, L) input.

    ``padding`` is an int, a 1-tuple, ``'valid'`` or ``'same'`` (stride 1).
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-d convolution (cross-correlation, as torch) of (N, C, H, W) or (C, H, W) input.

    ``stride``, ``padding`` and ``dilation`` are ints or pairs; ``padding`` may
    also be ``'valid'`` or ``'same'`` (stride 1).  ``weight`` has shape
    ``(C_out, C_in / groups, kH, kW)``.

    >>> import numpy as np
    >>> from npfunc.nn import functional as F
    >>> F.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))[0, 0]
    array([[4., 4.],
           [4., 4.]])
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


# ---- pooling -----------------------------------------------------------------------------------------

def _pool(x, kernel_size, stride, padding, n: int, reduce, fill, fn: str):
    """``reduce`` over each pooling window of the last ``n`` axes."""
    nd = np.ndim(x)
    if nd not in (n + 1, n + 2):
        spatial = _SPATIAL[n]
        raise ModuleError(f"{fn}: expected a {n + 2}-d input (N, C, {spatial}) or a {n + 1}-d input "
                          f"(C, {spatial}), got shape {tuple(np.shape(x))}")
    kernel = _tuple(kernel_size, n, "kernel_size", fn)
    stride = kernel if stride is None or stride == () else _tuple(stride, n, "stride", fn)
    pad = _tuple(padding, n, "padding", fn)
    if any(2 * p > k for p, k in zip(pad, kernel)):
        raise ModuleError(f"{fn}: padding {pad} must be at most half the kernel size {kernel}")
    lead = nd - n
    size = tuple(np.shape(x)[lead:])
    if any(s + 2 * p < k for s, p, k in zip(size, pad, kernel)):
        raise ModuleError(f"{fn}: the (padded) input size {size} is smaller than the kernel {kernel}")
    if stride == kernel and not any(pad):
        # Non-overlapping windows: crop what the last full window leaves, view as blocks.
        out = tuple(s // k for s, k in zip(size, kernel))
        crop = tuple(o * k for o, k in zip(out, kernel))
        if crop != size:
            x = x[(Ellipsis,) + tuple(slice(0, c) for c in crop)]
        blocks = np.reshape(x, tuple(np.shape(x)[:lead]) + tuple(v for o, k in zip(out, kernel) for v in (o, k)))
        return reduce(blocks, tuple(lead + 2 * i + 1 for i in range(n)))
    if any(pad):
        x = np.pad(x, ((0, 0),) * lead + tuple((p, p) for p in pad), constant_values=fill)
    win = _windows(x, kernel, axis=tuple(range(lead, lead + n)))
    win = win[(slice(None),) * lead + tuple(slice(None, None, s) for s in stride)]
    return reduce(win, tuple(range(-n, 0)))


def _max(x, axes):
    return np.max(x, axis=axes)


def _mean(x, axes):
    return np.mean(x, axis=axes)


def max_pool1d(input, kernel_size, stride=None, padding=0):
    """Maximum over each window of (N, C, L) or (C, L) input (ties share the derivative)."""
    return _pool(input, kernel_size, stride, padding, 1, _max, -np.inf, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Maximum over each window of (N, C, H, W) or (C, H, W) input.

    ``stride`` defaults to ``kernel_size``; padding is with -inf, as torch.
    Where several entries of a window tie for the maximum, the derivative is
    split equally among them (torch gives it all to one of them).
    """
    return _pool(input, kernel_size, stride, padding, 2, _max, -np.inf, "max_pool2d")


def _avg_pool(x, kernel_size, stride, padding, count_include_pad, n, fn):
    total = _pool(x, kernel_size, stride, padding, n, _mean, 0.0, fn)
    if count_include_pad or not any(_tuple(padding, n, "padding", fn)):
        return total
    # Rescale each window by (kernel size / number of real, unpadded entries).
    ones = np.ones((1,) + tuple(np.shape(x)[-n:]), dtype=np.promote_types(dtype_of(x), np.float32))
    return total / _pool(ones, kernel_size, stride, padding, n, _mean, 0.0, fn)[0]


def avg_pool1d(input, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    """Mean over each window of (N, C, L) or (C, L) input."""
    return _avg_pool(input, kernel_size, stride, padding, count_include_pad, 1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    """Mean over each window of (N, C, H, W) or (C, H, W) input.

    With padding, zeros count towards the mean (torch's default
    ``count_include_pad=True``); pass ``False`` to average real entries only.
    """
    return _avg_pool(input, kernel_size, stride, padding, count_include_pad, 2, "avg_pool2d")


def _adaptive_ranges(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """Rows average the input ranges of torch's adaptive pooling."""
    m = np.zeros((out, size))
    for i, (start, stop) in enumerate(_adaptive_ranges(size, out)):
        m[i, start:stop] = 1.0 / (stop - start)
    return m


def _output_size(output_size, size: tuple, n: int, fn: str) -> tuple[int, ...]:
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * n
    output_size = tuple(output_size)
    if len(output_size) != n:
        raise ModuleError(f"{fn}: output_size must be an int or a tuple of {n}, got {output_size}")
    out = tuple(s if o is None else int(o) for o, s in zip(output_size, size))
    if any(o < 1 for o in out):
        raise ModuleError(f"{fn}: output_size must be positive, got {output_size}")
    return out


def _check_rank(x, n: int, fn: str):
    if np.ndim(x) not in (n + 1, n + 2):
        spatial = _SPATIAL[n]
        raise ModuleError(f"{fn}: expected a {n + 2}-d input (N, C, {spatial}) or a {n + 1}-d input "
                          f"(C, {spatial}), got shape {tuple(np.shape(x))}")


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) or (C, L) input to ``output_size`` positions."""
    _check_rank(input, 1, "adaptive_avg_pool1d")
    (o,) = _output_size(output_size, np.shape(input)[-1:], 1, "adaptive_avg_pool1d")
    return input @ _adaptive_matrix(np.shape(input)[-1], o).T.astype(np.promote_types(dtype_of(input), np.float32))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) or (C, H, W) input to ``output_size``
    (an int, a pair, ``None`` keeping that size), torch's windows for sizes
    that do not divide evenly; computed as two small matrix products."""
    _check_rank(input, 2, "adaptive_avg_pool2d")
    h, w = np.shape(input)[-2:]
    oh, ow = _output_size(output_size, (h, w), 2, "adaptive_avg_pool2d")
    dt = np.promote_types(dtype_of(input), np.float32)
    return _adaptive_matrix(h, oh).astype(dt) @ input @ _adaptive_matrix(w, ow).T.astype(dt)


def adaptive_max_pool2d(input, output_size):
    """Max pooling of (N, C, H, W) or (C, H, W) input to ``output_size`` with
    torch's (possibly overlapping) adaptive windows; one vectorised reduction
    per output cell."""
    _check_rank(input, 2, "adaptive_max_pool2d")
    h, w = np.shape(input)[-2:]
    oh, ow = _output_size(output_size, (h, w), 2, "adaptive_max_pool2d")
    rows = []
    for r0, r1 in _adaptive_ranges(h, oh):
        row = [np.max(input[..., r0:r1, c0:c1], axis=(-2, -1)) for c0, c1 in _adaptive_ranges(w, ow)]
        rows.append(np.stack(row, axis=-1))
    return np.stack(rows, axis=-2)
