"""``upfirdn`` and ``resample_poly`` on traced values.

``upfirdn(h, x, up, down)`` upsamples ``x`` by inserting ``up - 1`` zeros after
each sample, filters the result with the FIR filter ``h`` (a full
convolution) and keeps every ``down``-th sample: a linear map of ``x`` (and
of ``h``), written here with the stacking, convolution and slicing that npfunc
differentiates and batches.  ``resample_poly`` designs its low-pass filter
from plain values (``up``, ``down``, the window), as SciPy does, pads it so
that the output samples are centred, and applies ``upfirdn``; the background
removal of ``padtype='mean'`` (and ``median``, ``minimum``, ``maximum``) is
applied to the traced signal.  The signal-extension modes of ``upfirdn``
other than zeros (``'symmetric'``, ``'reflect'`` ...) are refused on traced
values; plain calls go to SciPy.

>>> import numpy as np, npfunc
>>> x = np.array([1.0, 2.0, 0.5])
>>> upfirdn(np.array([1.0, 0.5]), x, up=2)
array([1.  , 0.5 , 2.  , 1.  , 0.5 , 0.25])
>>> npfunc.grad(lambda x: resample_poly(x, 3, 2).sum())(np.ones(4)).shape
(4,)
"""
from __future__ import annotations

import math

import numpy as np
import scipy.signal as _ss

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.data_dependent import as_array
from ..primitives.convolution import signal_conv

__all__ = ["upfirdn", "resample_poly"]

_BACKGROUND = {"mean": np.mean, "median": np.median, "minimum": np.min, "maximum": np.max}
_EXTENSIONS = ("constant", "symmetric", "reflect", "edge", "wrap", "smooth", "line", "antisymmetric",
               "antireflect")


def _traced(*values) -> bool:
    return any(isinstance(v, Tracer) for v in values)


def _factor(value, name: str) -> int:
    if value != int(value):
        raise ValueError(f"{name} must be an integer")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1" if name != "up and down" else "up and down must be >= 1")
    return value


def upfirdn(h, x, up=1, down=1, axis=-1, mode="constant", cval=0):
    """``scipy.signal.upfirdn``: upsample, FIR filter, downsample along ``axis``."""
    if not _traced(h, x, cval):
        return _ss.upfirdn(h, x, up, down, axis=axis, mode=mode, cval=cval)
    up, down = _factor(up, "up"), _factor(down, "down")
    if mode != "constant" or isinstance(cval, Tracer) or cval != 0:
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.signal.upfirdn(..., mode={mode!r}, cval={cval!r}) on traced values: "
            "npfunc's twin extends the signal with zeros only (mode='constant', cval=0). Extend it yourself "
            "with np.pad(x, ..., mode=...), which traced values take, and filter the padded signal.")
    h, x = as_array(h), as_array(x)
    if ndim_of(h) != 1 or shape_of(h)[0] == 0:
        raise ValueError("h must be 1-D with non-zero length")
    nd = ndim_of(x)
    axis = axis % max(nd, 1)
    dtype = np.result_type(dtype_of(h), dtype_of(x), np.float32)
    x = np.moveaxis(x, axis, -1).astype(dtype)
    n = shape_of(x)[-1]
    if up > 1:  # each sample followed by up - 1 zeros, the last ones dropped
        spread = np.stack([x] + [np.zeros_like(x)] * (up - 1), axis=-1)
        x = np.reshape(spread, tuple(shape_of(x)[:-1]) + (n * up,))[..., :(n - 1) * up + 1]
    kernel = np.reshape(h.astype(dtype), (1,) * (nd - 1) + (shape_of(h)[0],))
    y = signal_conv(x, kernel, "full", "auto", False, "upfirdn")[..., ::down]
    return np.moveaxis(y, -1, axis)


def resample_poly(x, up, down, axis=0, window=("kaiser", 5.0), padtype="constant", cval=None):
    """``scipy.signal.resample_poly``: resampling by ``up / down`` with a polyphase
    FIR filter (designed as SciPy designs it, or ``window`` given as the filter)."""
    custom = isinstance(window, (list, np.ndarray, Tracer))
    if not _traced(x, window if custom else None, cval):
        return _ss.resample_poly(x, up, down, axis=axis, window=window, padtype=padtype, cval=cval)
    x = as_array(x)
    up, down = _factor(up, "up"), _factor(down, "down")
    if cval is not None and padtype != "constant":
        raise ValueError(f"cval has no effect when padtype is {padtype}")
    g = math.gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.copy()
    axis = axis % max(ndim_of(x), 1)
    n_in = shape_of(x)[axis]
    n_out = n_in * up
    n_out = n_out // down + bool(n_out % down)
    if custom:
        h = as_array(window)
        if ndim_of(h) > 1:
            raise ValueError("window must be 1-D")
        half_len = (shape_of(h)[0] - 1) // 2
    else:  # the low-pass filter SciPy designs: cutoff at the lower Nyquist rate
        max_rate = max(up, down)
        half_len = 10 * max_rate
        h = _ss.firwin(2 * half_len + 1, 1.0 / max_rate, window=window)
        if dtype_of(x).kind in "fc":
            h = h.astype(dtype_of(x))
    h = h * up
    # zeros before the filter put the output samples at its centre; zeros after it make
    # the filtered signal long enough to keep n_out samples
    pre = down - half_len % down
    first = (half_len + pre) // down
    post = 0
    while ((n_in - 1) * up + shape_of(h)[0] + pre + post - 1) // down + 1 < n_out + first:
        post += 1
    h = np.concatenate([np.zeros(pre, dtype_of(h)), h, np.zeros(post, dtype_of(h))])
    background = _BACKGROUND.get(padtype)
    if background is not None:
        level = background(x, axis=axis, keepdims=True)
        x = x - level
    elif padtype not in _EXTENSIONS:
        raise ValueError("padtype must be one of: maximum, mean, median, minimum, " + ", ".join(_EXTENSIONS))
    y = upfirdn(h, x, up, down, axis=axis, mode="constant" if background is not None else padtype,
                cval=0 if cval is None or background is not None else cval)
    keep = [slice(None)] * ndim_of(y)
    keep[axis] = slice(first, first + n_out)
    y = y[tuple(keep)]
    return y + level if background is not None else y
