"""``npfunc.scipy.signal``: convolution and correlation that work on traced
values (under every transform) and on plain arrays.

SciPy's functions are not NumPy array functions, so ``scipy.signal.convolve(x, k)``
on a traced ``x`` fails when SciPy converts ``x`` with ``np.asarray`` (npfunc's
``ConcretizationError`` under grad/jvp, ``BatchedConversionError`` under
vmap).  Call the functions here instead -- same signatures::

    from npfunc.scipy import signal
    npfunc.grad(lambda k: (signal.convolve(x, k, mode="same") ** 2).sum())(k)

Modes ``full``/``same``/``valid`` in any number of dimensions.  For plain
inputs the result is SciPy's own (the same function is called); on traced
inputs the value is the same up to rounding.  ``method`` picks the SciPy
routine used for plain values; derivatives and batched values are computed
with vectorised sliding windows (small kernels) or FFTs (large kernels).
``np.convolve`` / ``np.correlate`` dispatch to npfunc by themselves.
"""
from __future__ import annotations

import scipy.signal as _ss

from ..core import dispatch as _dispatch
from ..primitives.convolution import signal_conv as _signal_conv

__all__ = ["convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d"]


def _check_method(fn_name, method):
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"scipy.signal.{fn_name}: acceptable method flags are 'auto', 'direct', or 'fft', "
                         f"got {method!r}")


def convolve(in1, in2, mode="full", method="auto"):
    """``scipy.signal.convolve``: n-d convolution, ``mode`` 'full', 'same'
    (shape of ``in1``, centred as in SciPy) or 'valid' (one input at least as
    large as the other in every dimension)."""
    _check_method("convolve", method)
    return _signal_conv(in1, in2, mode, method, False, "convolve")


def correlate(in1, in2, mode="full", method="auto"):
    """``scipy.signal.correlate``: n-d cross-correlation
    ``z[k] = sum_l in1[l + k] conj(in2[l])`` (lags as in SciPy)."""
    _check_method("correlate", method)
    return _signal_conv(in1, in2, mode, method, True, "correlate")


def _no_axes(fn_name, axes):
    if axes is not None:
        raise NotImplementedError(f"npfunc.scipy.signal.{fn_name}: axes=... is not supported; convolve over "
                                  "every axis, or vmap over the axes that are not convolved")


def fftconvolve(in1, in2, mode="full", axes=None):
    """``scipy.signal.fftconvolve`` (``axes=None`` only): convolution through FFTs."""
    _no_axes("fftconvolve", axes)
    return _signal_conv(in1, in2, mode, "fftconvolve", False, "fftconvolve")


def oaconvolve(in1, in2, mode="full", axes=None):
    """``scipy.signal.oaconvolve`` (``axes=None`` only): overlap-add convolution."""
    _no_axes("oaconvolve", axes)
    return _signal_conv(in1, in2, mode, "oaconvolve", False, "oaconvolve")


def _fill_only(fn_name, in1, in2, boundary, fillvalue):
    from ..core.values import ndim_of

    if boundary != "fill" or fillvalue != 0:
        raise NotImplementedError(f"npfunc.scipy.signal.{fn_name}: only boundary='fill' with fillvalue=0 is "
                                  "supported; pad the input with np.pad(..., mode='wrap' / 'symmetric') and "
                                  "use mode='valid' instead")
    if ndim_of(in1) != 2 or ndim_of(in2) != 2:
        raise ValueError(f"scipy.signal.{fn_name}: inputs must both be 2-D arrays")


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """``scipy.signal.convolve2d`` with zero fill (the default boundary)."""
    _fill_only("convolve2d", in1, in2, boundary, fillvalue)
    return _signal_conv(in1, in2, mode, "convolve2d", False, "convolve2d")


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """``scipy.signal.correlate2d`` with zero fill (the default boundary)."""
    _fill_only("correlate2d", in1, in2, boundary, fillvalue)
    return _signal_conv(in1, in2, mode, "convolve2d", True, "correlate2d")


#: SciPy's functions that cannot see traced values, with the twin to call
#: instead (named in npfunc's conversion errors; see core.dispatch.TWINS).
for _name in __all__:
    _target = getattr(_ss, _name, None)
    _code = getattr(getattr(_target, "__wrapped__", _target), "__code__", None)
    if _code is not None and getattr(_dispatch, "TWINS", None) is not None:
        _dispatch.TWINS[_code] = f"npfunc.scipy.signal.{_name}"


def __dir__():
    return __all__
