"""Convolutions and pooling, vectorised through sliding windows.

A convolution is ``einsum`` of the input's sliding windows with the kernel:
no Python loop over positions, and the gradient (the windows' transpose)
costs about what the forward pass does.
"""
from __future__ import annotations

import math

import numpy as np

from .module import ModuleError

_windows = np.lib.stride_tricks.sliding_window_view


def _tuple(v, n: int, name: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _padding(padding, kernel, dilation, n: int):
    """((before, after), ...) per spatial axis; 'same' pads so that stride-1 output keeps the size."""
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    return tuple((p, p) for p in _tuple(padding, n, "padding"))


def _conv(x, weight, bias, stride, padding, dilation, groups, n: int, fn: str):
    """N-d convolution (n = 1 or 2) of (N, C, *spatial) or (C, *spatial) input."""
    unbatched = np.ndim(x) == n + 1
    if unbatched:
        x = x[None]
    if np.ndim(x) != n + 2:
        raise ModuleError(f"{fn}: expected input of shape (N, C, {'L' if n == 1 else 'H, W'}) or "
                          f"(C, {'L' if n == 1 else 'H, W'}), got {np.shape(x)}")
    c_in = np.shape(x)[1]
    c_out, c_per_group = np.shape(weight)[:2]
    kernel = tuple(np.shape(weight)[2:])
    if c_in != c_per_group * groups or c_out % groups:
        raise ModuleError(f"{fn}: input has {c_in} channels but the weight {np.shape(weight)} with "
                          f"groups={groups} expects {c_per_group * groups}")
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    if padding == "same" and any(s != 1 for s in stride):
        raise ValueError(f"{fn}: padding='same' needs stride 1")
    pads = _padding(padding, kernel, dilation, n)
    if any(p for pair in pads for p in pair):
        x = np.pad(x, ((0, 0), (0, 0)) + pads)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    win = _windows(x, span, axis=tuple(range(2, 2 + n)))  # (N, C, *out, *span)
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) + \
        tuple(slice(None, None, d) for d in dilation)
    win = win[index]
    letters = "hw"[:n] if n == 2 else "l"
    kl = "ij"[:n]
    batch = np.shape(win)[0]
    out_spatial = tuple(np.shape(win)[2:2 + n])
    if groups == 1:
        y = np.einsum(f"nc{letters}{kl},oc{kl}->no{letters}", win, weight)
    else:
        win = np.reshape(win, (batch, groups, c_per_group) + out_spatial + kernel)
        w = np.reshape(weight, (groups, c_out // groups, c_per_group) + kernel)
        y = np.einsum(f"ngc{letters}{kl},goc{kl}->ngo{letters}", win, w)
        y = np.reshape(y, (batch, c_out) + out_spatial)
    if bias is not None:
        y = y + np.reshape(bias, (1, c_out) + (1,) * n)
    return y[0] if unbatched else y


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-d convolution (cross-correlation, as torch) of (N, C, L) or (C, L) input."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-d convolution (cross-correlation, as torch) of (N, C, H, W) or (C, H, W) input."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def _pool_windows(x, kernel_size, stride, padding, fill, fn):
    if np.ndim(x) not in (3, 4):
        raise ModuleError(f"{fn}: expected input of shape (N, C, H, W) or (C, H, W), got {np.shape(x)}")
    kernel = _tuple(kernel_size, 2, "kernel_size")
    stride = kernel if stride is None else _tuple(stride, 2, "stride")
    pad = _tuple(padding, 2, "padding")
    lead = np.ndim(x) - 2
    if any(pad):
        x = np.pad(x, ((0, 0),) * lead + ((pad[0], pad[0]), (pad[1], pad[1])), constant_values=fill)
    win = _windows(x, kernel, axis=(lead, lead + 1))
    return win[(slice(None),) * lead + (slice(None, None, stride[0]), slice(None, None, stride[1]))]


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Maximum over each window (ties share the derivative)."""
    return np.max(_pool_windows(x, kernel_size, stride, padding, -np.inf, "max_pool2d"), axis=(-2, -1))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window (zero padding counts, as torch's default)."""
    return np.mean(_pool_windows(x, kernel_size, stride, padding, 0.0, "avg_pool2d"), axis=(-2, -1))


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """Rows average the input ranges torch's adaptive pooling uses."""
    m = np.zeros((out, size))
    for i in range(out):
        start, stop = (i * size) // out, math.ceil((i + 1) * size / out)
        m[i, start:stop] = 1.0 / (stop - start)
    return m


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size, as two small matrix products."""
    if np.ndim(x) not in (3, 4):
        raise ModuleError(f"adaptive_avg_pool2d: expected (N, C, H, W) or (C, H, W), got {np.shape(x)}")
    oh, ow = _tuple(output_size, 2, "output_size")
    h, w = np.shape(x)[-2:]
    return np.einsum("ih,...hw,jw->...ij", _adaptive_matrix(h, oh), x, _adaptive_matrix(w, ow))
