"""``npfunc.scipy.signal``: convolution, correlation, filtering (``lfilter``,
``sosfilt``, zero-phase ``filtfilt``, ``sosfiltfilt``, Savitzky-Golay ``savgol_filter``), detrending and spectral analysis (``csd``, ``welch``, ``periodogram``, ``stft``,
``istft``, ``lombscargle``) that work on traced values (under every transform) and on plain
arrays.

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

import numpy as _np
import scipy.signal as _ss

from ..core import dispatch as _dispatch
from ..core.tracer import Tracer as _Tracer
from ..core.values import dtype_of as _dtype_of
from ..core.values import ndim_of as _ndim_of
from ..core.values import shape_of as _shape_of
from ..primitives.convolution import signal_conv as _signal_conv
from ..primitives.data_dependent import as_array as _as_array
from ._signal_filter import filtfilt, lfilter, lfilter_zi, sosfilt, sosfilt_zi, sosfiltfilt
from ._signal_resample import resample_poly, upfirdn
from ._signal_savgol import savgol_filter
from ._signal_spectral import csd, detrend, istft, lombscargle, periodogram, stft, welch

__all__ = ["convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d", "lfilter",
           "sosfilt", "lfilter_zi", "sosfilt_zi", "filtfilt", "sosfiltfilt", "detrend", "csd", "welch", "periodogram",
           "stft", "istft", "lombscargle", "upfirdn", "resample_poly", "savgol_filter"]


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


def _conv_axes(in1, in2, mode, axes, fn_name):
    """Convolution over ``axes`` only, through FFTs (the other axes broadcast, as in
    SciPy): ``irfftn(rfftn(in1) * rfftn(in2))`` cropped to the mode's window."""
    in1, in2 = _as_array(in1), _as_array(in2)
    nd = _ndim_of(in1)
    if _ndim_of(in2) != nd:
        raise ValueError("in1 and in2 should have the same dimensionality")
    if mode not in ("full", "same", "valid"):
        raise ValueError("acceptable mode flags are 'valid', 'same', or 'full'")
    axes = sorted({int(a) % nd for a in _np.atleast_1d(axes)}) if nd else []
    s1, s2 = tuple(_shape_of(in1)), tuple(_shape_of(in2))
    if any(s1[a] != s2[a] and 1 not in (s1[a], s2[a]) for a in range(nd) if a not in axes):
        raise ValueError("incompatible shapes for in1 and in2: " f"{s1} and {s2}")
    if 0 in s1 or 0 in s2:
        return _np.zeros(0, _np.result_type(_dtype_of(in1), _dtype_of(in2)))
    if mode == "valid" and not all(s1[a] >= s2[a] for a in axes):
        if all(s2[a] >= s1[a] for a in axes):
            in1, in2, s1, s2 = in2, in1, s2, s1
        else:
            raise ValueError("For 'valid' mode, one must be at least as large as the other in every dimension")
    full = [s1[a] + s2[a] - 1 for a in axes]
    if _dtype_of(in1).kind == "c" or _dtype_of(in2).kind == "c":
        out = _np.fft.ifftn(_np.fft.fftn(in1, full, axes) * _np.fft.fftn(in2, full, axes), full, axes)
    else:
        out = _np.fft.irfftn(_np.fft.rfftn(in1, full, axes) * _np.fft.rfftn(in2, full, axes), full, axes)
    out = out.astype(_np.result_type(_dtype_of(in1), _dtype_of(in2), _np.float32))
    index = [slice(None)] * nd
    for a, n in zip(axes, full):
        size = n if mode == "full" else s1[a] if mode == "same" else s1[a] - s2[a] + 1
        start = (n - size) // 2
        index[a] = slice(start, start + size)
    return out[tuple(index)]


def fftconvolve(in1, in2, mode="full", axes=None):
    """``scipy.signal.fftconvolve``: convolution through FFTs, over every axis or
    over ``axes`` (the others broadcast)."""
    if axes is None:
        return _signal_conv(in1, in2, mode, "fftconvolve", False, "fftconvolve")
    return _conv_axes(in1, in2, mode, axes, "fftconvolve")


def oaconvolve(in1, in2, mode="full", axes=None):
    """``scipy.signal.oaconvolve``: overlap-add convolution (the same values as
    ``fftconvolve`` up to rounding), over every axis or over ``axes``."""
    if axes is None:
        return _signal_conv(in1, in2, mode, "oaconvolve", False, "oaconvolve")
    return _conv_axes(in1, in2, mode, axes, "oaconvolve")


_BOUNDARIES = {"fill": "constant", "pad": "constant", "wrap": "wrap", "circular": "wrap", "symm": "symmetric",
               "symmetric": "symmetric"}


def _conv2d(fn_name, in1, in2, mode, boundary, fillvalue, correlate):
    """``convolve2d``/``correlate2d``: zero fill is the plain convolution; another
    boundary (or fill value) extends ``in1`` by ``in2``'s size less one on each
    side, as SciPy does, and the 'full' result is the 'valid' one of the extended
    input ('same' is its centred part, as SciPy crops it)."""
    if _ndim_of(in1) != 2 or _ndim_of(in2) != 2:
        raise ValueError(f"scipy.signal.{fn_name}: inputs must both be 2-D arrays")
    pad_mode = _BOUNDARIES.get(boundary)
    if pad_mode is None:
        raise ValueError(f"scipy.signal.{fn_name}: acceptable boundary flags are 'fill', 'wrap' and 'symm', "
                         f"got {boundary!r}")
    if mode == "valid" or pad_mode == "constant" and not isinstance(fillvalue, _Tracer) and fillvalue == 0:
        return _signal_conv(in1, in2, mode, "convolve2d", correlate, fn_name)
    if mode not in ("full", "same"):
        raise ValueError(f"scipy.signal.{fn_name}: acceptable mode flags are 'valid', 'same', or 'full', "
                         f"got {mode!r}")
    (m, n), (k, l) = _shape_of(in1), _shape_of(in2)
    widths = ((k - 1, k - 1), (l - 1, l - 1))
    extended = (_np.pad(in1, widths, mode="constant", constant_values=fillvalue) if pad_mode == "constant"
                else _np.pad(in1, widths, mode=pad_mode))
    full = _signal_conv(extended, in2, "valid", "convolve2d", correlate, fn_name)
    if mode == "full":
        return full
    i, j = (k // 2, l // 2) if correlate else ((k - 1) // 2, (l - 1) // 2)
    return full[i:i + m, j:j + n]


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """``scipy.signal.convolve2d`` with every boundary ('fill' with any ``fillvalue``,
    'wrap', 'symm')."""
    return _conv2d("convolve2d", in1, in2, mode, boundary, fillvalue, False)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """``scipy.signal.correlate2d`` with every boundary ('fill' with any ``fillvalue``,
    'wrap', 'symm')."""
    return _conv2d("correlate2d", in1, in2, mode, boundary, fillvalue, True)


#: SciPy's functions that cannot see traced values, with the twin to call
#: instead (named in npfunc's conversion errors; see core.dispatch.TWINS).
for _name in __all__:
    _target = getattr(_ss, _name, None)
    _code = getattr(getattr(_target, "__wrapped__", _target), "__code__", None)
    if _code is not None and getattr(_dispatch, "TWINS", None) is not None:
        _dispatch.TWINS[_code] = f"npfunc.scipy.signal.{_name}"


def __dir__():
    return __all__


from . import _signal_samples  # noqa: E402,F401  (registry samples of the twins)

from ._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
