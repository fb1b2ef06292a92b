"""``savgol_filter`` on traced values.

SciPy's Savitzky-Golay filter convolves the signal with ``savgol_coeffs`` through
``scipy.ndimage.convolve1d`` (compiled: ``np.asarray``) and, in the default mode
``'interp'``, replaces the ``window_length // 2`` samples at each end by the
least-squares polynomial fitted to the first (last) ``window_length`` samples.  The
filter is linear in the signal, so on a traced signal the twin extends it as
``convolve1d``'s mode says (``np.pad``: ``mirror`` is NumPy's ``reflect``,
``nearest`` its ``edge``), convolves the extension with the plain coefficients
(``valid``), and for ``'interp'`` takes the edge samples from the matrices SciPy's
own filter gives on the unit signals of one window (the fits are linear in the
samples).  Plain signals get SciPy's own result; traced ones the same up to rounding.

>>> import numpy as np, npfunc, scipy.signal as ss
>>> y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 5.0])
>>> bool(np.allclose(npfunc.jit(lambda v: ss.savgol_filter(v, 5, 2))(y), ss.savgol_filter(y, 5, 2)))
True
"""
from __future__ import annotations

import numpy as np
import scipy.signal as _ss

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.convolution import signal_conv
from ..primitives.data_dependent import as_array

__all__ = ["savgol_filter"]

_PAD = {"mirror": "reflect", "nearest": "edge", "wrap": "wrap", "constant": "constant"}


def savgol_filter(x, window_length, polyorder, deriv=0, delta=1.0, axis=-1, mode="interp", cval=0.0):
    """``scipy.signal.savgol_filter``: a Savitzky-Golay filter along ``axis``."""
    if not isinstance(x, Tracer) and not isinstance(cval, Tracer):
        return _ss.savgol_filter(x, window_length, polyorder, deriv=deriv, delta=delta, axis=axis, mode=mode,
                                 cval=cval)
    if mode not in ("mirror", "constant", "nearest", "interp", "wrap"):
        raise ValueError("mode must be 'mirror', 'constant', 'nearest' 'wrap' or 'interp'.")
    if isinstance(delta, Tracer):
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.signal.savgol_filter with a traced delta: the twin takes the sample "
            "spacing as a plain number; for a derivative of order d divide the filter of delta=1 by delta ** d.")
    k = int(window_length)
    if k % 2 == 0:
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.signal.savgol_filter with an even window_length ({k}) on traced values: "
            "npfunc's twin centres odd windows only; use an odd window_length.")
    x = as_array(x)
    dtype = dtype_of(x) if dtype_of(x) in (np.float32, np.float64) else np.dtype(np.float64)
    x = x.astype(dtype)
    nd = ndim_of(x)
    axis = axis % max(nd, 1)
    n = shape_of(x)[axis]
    coeffs = _ss.savgol_coeffs(k, polyorder, deriv=deriv, delta=delta)
    if mode == "interp" and k > n:
        raise ValueError("If mode is 'interp', window_length must be less than or equal to the size of x.")
    x = np.moveaxis(x, axis, -1)
    half = k // 2
    kernel = np.reshape(coeffs, (1,) * (nd - 1) + (k,))
    if mode == "interp":
        y = signal_conv(x, kernel, "valid", "auto", False, "savgol_filter")
        if half:
            # the edge fits of SciPy's own filter, on the unit signals of one window
            edges = _ss.savgol_filter(np.eye(k), k, polyorder, deriv=deriv, delta=delta, axis=0, mode="interp")
            left = x[..., :k] @ edges[:half].T
            right = x[..., n - k:] @ edges[k - half:].T
            y = np.concatenate([left, y, right], axis=-1)
    else:
        pads = [(0, 0)] * (nd - 1) + [(half, half)]
        if mode == "constant" and isinstance(cval, Tracer):  # the fill value traced: zeros, then cval there
            xp = np.pad(x, pads) + cval * np.pad(np.zeros(n), (half, half), constant_values=1.0)
        elif mode == "constant":
            xp = np.pad(x, pads, mode="constant", constant_values=cval)
        else:
            xp = np.pad(x, pads, mode=_PAD[mode])
        y = signal_conv(xp, kernel, "valid", "auto", False, "savgol_filter")
    return np.moveaxis(y.astype(dtype), -1, axis)
