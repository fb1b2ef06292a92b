"""Twins of ``scipy.signal.detrend``, ``csd``, ``welch``, ``stft``, ``istft``
and ``lombscargle`` (re-exported by ``npfunc.scipy.signal``).

They follow SciPy 1.17's code paths step by step -- segments, per-segment
detrending, window, FFT, scaling, one-sided doubling, averaging -- with
npfunc's operations, so they are differentiable in the signal (and in a
window passed as an array) and batch under vmap.  Segments are a gather with
a constant index array; ``istft``'s overlap-add is its transpose (a
scatter-add).  ``average='median'`` is differentiable almost everywhere, as
``np.median`` is.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.data_dependent import as_array, is_traced
from ..primitives.indexing.updates import add_at

__all__ = ["detrend", "csd", "welch", "periodogram", "stft", "istft", "lombscargle"]


def lombscargle(x, y, freqs, **kwargs):
    """``scipy.signal.lombscargle``: SciPy's own code, which runs on traced values,
    given its default unit weights as a plain array.  SciPy makes them with
    ``np.ones_like(y)``, traced when ``y`` is, and checks them with a Python ``if``
    (``np.all(weights >= 0)``), which jit and vmap must refuse."""
    import scipy.signal as ss

    if kwargs.get("weights") is None:
        kwargs["weights"] = np.ones(shape_of(y), np.float64)
    return ss.lombscargle(x, y, freqs, **kwargs)  # (called from npfunc: SciPy's own function)


def detrend(data, axis=-1, type="linear", bp=0, overwrite_data=False):
    """``scipy.signal.detrend``: remove the mean (``type='constant'``) or a
    least-squares line per piece between breakpoints ``bp`` (``'linear'``).
    Linear in ``data``: a projection with a constant design matrix."""
    if type not in ("linear", "l", "constant", "c"):
        raise ValueError("Trend type must be 'linear' or 'constant'.")
    data = as_array(data)
    if dtype_of(data).char not in "dfDF":
        data = data.astype(np.float64)
    if type in ("constant", "c"):
        return data - np.mean(data, axis, keepdims=True)
    n = shape_of(data)[axis]
    bp = np.sort(np.unique(np.concatenate(np.atleast_1d(0, np.asarray(bp), n))))
    if np.any(bp > n):
        raise ValueError("Breakpoints must be less than length of data along given axis.")
    moved = np.moveaxis(data, axis, 0)
    flat = np.reshape(moved, (n, -1))
    dtype = dtype_of(flat)
    pieces = []
    for lo, hi in zip(bp[:-1], bp[1:]):
        npts = int(hi - lo)
        design = np.ones((npts, 2), dtype)
        design[:, 0] = np.arange(1, npts + 1, dtype=dtype) / npts
        fit = np.linalg.pinv(design)  # the least-squares (minimum-norm) solution operator, a constant
        piece = flat[lo:hi]
        pieces.append(piece - design @ (fit @ piece))
    out = np.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]
    return np.moveaxis(np.reshape(out, tuple(shape_of(moved))), 0, axis)


# ---- shared pieces ---------------------------------------------------------------------------------

def _get_window(window, nperseg):
    from scipy.signal import get_window

    return get_window(window, nperseg)


def _segments(x, nperseg, step, nseg):
    """``(..., nseg, nperseg)`` slices of the last axis starting every ``step``."""
    index = np.arange(nseg)[:, None] * step + np.arange(nperseg)[None, :]
    return x[..., index]


def _detrend_segments(seg, detr):
    if detr is None or detr is False:
        return seg
    if isinstance(detr, str):
        return detrend(seg, type=detr, axis=-1)
    return detr(seg)


def _spectrum(seg, win, nfft, onesided):
    seg = seg * win
    return np.fft.rfft(np.real(seg), n=nfft) if onesided else np.fft.fft(seg, n=nfft)


def _median(x, axis):
    """``np.median`` along ``axis`` from a sort (differentiable where there are no ties)."""
    n = shape_of(x)[axis]
    s = np.moveaxis(np.sort(x, axis=axis), axis, -1)
    mid = s[..., (n - 1) // 2:n // 2 + 1]
    return np.mean(mid, axis=-1)


def _median_bias(n):
    ii_2 = 2 * np.arange(1.0, (n - 1) // 2 + 1)
    return 1 + np.sum(1.0 / (ii_2 + 1) - 1.0 / ii_2)


# ---- csd / welch -------------------------------------------------------------------------------------

def csd(x, y, fs=1.0, window="hann_periodic", nperseg=None, noverlap=None, nfft=None, detrend="constant",
        return_onesided=True, scaling="density", axis=-1, average="mean"):
    """``scipy.signal.csd``: ``(f, Pxy)``, Welch's estimate of the cross power
    spectral density ``conj(X) Y`` (real when ``y is x``)."""
    same = y is x
    axis = int(axis)
    x = as_array(x)
    y = x if same else as_array(y)
    if not same:
        xo, yo = list(shape_of(x)), list(shape_of(y))
        xo.pop(axis)
        yo.pop(axis)
        try:
            outer = np.broadcast_shapes(tuple(xo), tuple(yo))
        except ValueError as e:
            raise ValueError("x and y cannot be broadcast together.") from e
        if 0 in shape_of(x) or 0 in shape_of(y):
            empty = np.moveaxis(np.empty(outer + (min(shape_of(x)[axis], shape_of(y)[axis]),)), -1, axis)
            return empty, empty
        out_dtype = np.result_type(dtype_of(x), dtype_of(y), np.complex64)
    else:
        if 0 in shape_of(x):
            return np.empty(shape_of(x)), np.empty(shape_of(x))
        out_dtype = np.result_type(dtype_of(x), np.complex64)
    n = shape_of(x)[axis] if same else max(shape_of(x)[axis], shape_of(y)[axis])
    if isinstance(window, (str, tuple)):
        nperseg = int(nperseg) if nperseg is not None else 256
        if nperseg < 1:
            raise ValueError(f"Parameter nperseg={nperseg} is not a positive integer!")
        if n < nperseg:
            warnings.warn(f"nperseg={nperseg} is greater than signal length max(len(x), len(y)) = {n}, "
                          f"using nperseg = {n}", stacklevel=2)
            nperseg = n
        win = _get_window(window, nperseg)
    else:
        win = as_array(window)
        if nperseg is None:
            nperseg = shape_of(win)[0]
    if nperseg != shape_of(win)[0]:
        raise ValueError(f"nperseg={nperseg} does not equal len(win)={shape_of(win)[0]}")
    nfft = int(nfft) if nfft is not None else nperseg
    if nfft < nperseg:
        raise ValueError(f"nfft={nfft} must be greater than or equal to nperseg={nperseg}!")
    noverlap = int(noverlap) if noverlap is not None else nperseg // 2
    if noverlap >= nperseg:
        raise ValueError(f"noverlap={noverlap} must be less than nperseg={nperseg}!")
    complex_in = dtype_of(x).kind == "c" or (not same and dtype_of(y).kind == "c")
    if dtype_of(x).kind == "c" and return_onesided:
        return_onesided = False
    scales = {"spectrum": "magnitude", "density": "psd"}
    if scaling not in scales:
        raise ValueError(f"Parameter scaling={scaling!r} not in {scales}!")
    if return_onesided and complex_in:
        raise ValueError("Complex-valued `x` not allowed for self.fft_mode='onesided'! Set property `fft_mode` "
                         "to 'twosided' or 'centered'.")
    xl = np.moveaxis(x, axis, -1)
    yl = xl if same else np.moveaxis(y, axis, -1)
    if not same:  # zero-pad the shorter one
        if shape_of(xl)[-1] < n:
            xl = np.concatenate([xl, np.zeros(tuple(shape_of(xl)[:-1]) + (n - shape_of(xl)[-1],))], axis=-1)
        if shape_of(yl)[-1] < n:
            yl = np.concatenate([yl, np.zeros(tuple(shape_of(yl)[:-1]) + (n - shape_of(yl)[-1],))], axis=-1)
    step = nperseg - noverlap
    nseg = (n - noverlap) // step
    scale = 1.0 / (fs * np.sum(win * win)) if scaling == "density" else 1.0 / np.sum(win) ** 2
    detr = None if detrend is False else detrend
    sx = _spectrum(_detrend_segments(_segments(xl, nperseg, step, nseg), detr), win, nfft, return_onesided)
    if same:
        pxy = (np.real(sx) ** 2 + np.imag(sx) ** 2) * scale
    else:
        sy = _spectrum(_detrend_segments(_segments(yl, nperseg, step, nseg), detr), win, nfft, return_onesided)
        pxy = np.conj(sx) * sy * scale
    if return_onesided:  # (..., nseg, f): double every frequency that has a mirror image
        nf = shape_of(pxy)[-1]
        stop = nf - 1 if nfft % 2 == 0 else nf
        weights = np.ones(nf)
        weights[1:stop] = 2.0
        pxy = pxy * weights
    if nseg > 1:
        if average == "median":
            bias = _median_bias(nseg)
            if dtype_of(pxy).kind == "c":
                pxy = _median(np.real(pxy), -2) + 1j * _median(np.imag(pxy), -2)
            else:
                pxy = _median(pxy, -2)
            pxy = pxy / bias
        elif average == "mean":
            pxy = np.mean(pxy, axis=-2)
        else:
            raise ValueError(f"Parameter average={average!r} must be 'median' or 'mean'!")
    else:
        pxy = pxy[..., 0, :]
    pxy = pxy.astype(out_dtype)
    if same:
        pxy = np.real(pxy)
    freqs = np.fft.rfftfreq(nfft, 1 / fs) if return_onesided else np.fft.fftfreq(nfft, 1 / fs)
    return freqs, np.moveaxis(pxy, -1, axis)


def welch(x, fs=1.0, window="hann_periodic", nperseg=None, noverlap=None, nfft=None, detrend="constant",
          return_onesided=True, scaling="density", axis=-1, average="mean"):
    """``scipy.signal.welch``: ``(f, Pxx)``, Welch's power spectral density estimate.

    >>> import numpy as np, npfunc
    >>> x = np.sin(0.3 * np.arange(64))
    >>> f, p = welch(x, nperseg=16)
    >>> g = npfunc.grad(lambda x: welch(x, nperseg=16)[1].sum())(x)
    >>> g.shape
    (64,)
    """
    f, pxx = csd(x, x, fs=fs, window=window, nperseg=nperseg, noverlap=noverlap, nfft=nfft, detrend=detrend,
                 return_onesided=return_onesided, scaling=scaling, axis=axis, average=average)
    return f, np.real(pxx)


def periodogram(x, fs=1.0, window="boxcar", nfft=None, detrend="constant", return_onesided=True,
                scaling="density", axis=-1):
    """``scipy.signal.periodogram``: ``(f, Pxx)``, SciPy's own reduction to ``welch``
    with one segment the length of the signal (``nfft`` shorter than it truncates).

    >>> import numpy as np, npfunc
    >>> x = np.sin(0.3 * np.arange(16))
    >>> g = npfunc.grad(lambda x: periodogram(x)[1][2])(x)
    >>> g.shape
    (16,)
    """
    x = as_array(x)
    axis = int(axis)
    n = shape_of(x)[axis]
    if 0 in shape_of(x):
        return np.empty(shape_of(x)), np.empty(shape_of(x))
    if window is None:
        window = "boxcar"
    if nfft is None or nfft == n:
        nperseg = n
    elif nfft > n:
        nperseg = n
    else:
        index = [slice(None)] * ndim_of(x)
        index[axis] = slice(None, nfft)
        x = x[tuple(index)]
        nperseg, nfft = nfft, None
    if hasattr(window, "size") and window.size != nperseg:
        raise ValueError("the size of the window must be the same size of the input on the specified axis")
    return welch(x, fs=fs, window=window, nperseg=nperseg, noverlap=0, nfft=nfft, detrend=detrend,
                 return_onesided=return_onesided, scaling=scaling, axis=axis)


# ---- stft / istft ---------------------------------------------------------------------------------

def _extend(x, n, boundary):
    """SciPy's even/odd/constant/zero extension of the last axis by ``n`` on each side."""
    if n < 1:
        return x
    if boundary == "zeros":
        pad = np.zeros(tuple(shape_of(x)[:-1]) + (n,), dtype_of(x))
        return np.concatenate([pad, x, pad], axis=-1)
    if boundary == "constant":
        return np.concatenate([np.repeat(x[..., :1], n, axis=-1), x, np.repeat(x[..., -1:], n, axis=-1)], axis=-1)
    if shape_of(x)[-1] <= n:
        raise ValueError(f"The extension length n ({n}) is too big. It must not exceed x.shape[axis]-1, which is "
                         f"{shape_of(x)[-1] - 1}.")
    left, right = np.flip(x[..., 1:n + 1], axis=-1), np.flip(x[..., -n - 1:-1], axis=-1)
    if boundary == "odd":
        left, right = 2 * x[..., :1] - left, 2 * x[..., -1:] - right
    return np.concatenate([left, x, right], axis=-1)


def _triage(window, nperseg, input_length):
    if isinstance(window, (str, tuple)):
        if nperseg is None:
            nperseg = 256
        if nperseg > input_length:
            warnings.warn(f"nperseg = {nperseg:d} is greater than input length  = {input_length:d}, using "
                          f"nperseg = {input_length:d}", stacklevel=3)
            nperseg = input_length
        return _get_window(window, nperseg), nperseg
    win = as_array(window)
    if ndim_of(win) != 1:
        raise ValueError("window must be 1-D")
    if input_length < shape_of(win)[-1]:
        raise ValueError("window is longer than input signal")
    if nperseg is None:
        nperseg = shape_of(win)[0]
    elif nperseg != shape_of(win)[0]:
        raise ValueError("value specified for nperseg is different from length of window")
    return win, nperseg


def stft(x, fs=1.0, window="hann_periodic", nperseg=256, noverlap=None, nfft=None, detrend=False,
         return_onesided=True, boundary="zeros", padded=True, axis=-1, scaling="spectrum"):
    """``scipy.signal.stft``: ``(f, t, Zxx)`` (SciPy's legacy STFT)."""
    if scaling == "psd":
        scaling = "density"
    elif scaling != "spectrum":
        raise ValueError(f"Parameter scaling={scaling!r} not in ['spectrum', 'psd']!")
    if boundary not in ("even", "odd", "constant", "zeros", None):
        raise ValueError(f"Unknown boundary option '{boundary}', must be one of: "
                         "['even', 'odd', 'constant', 'zeros', None]")
    axis = int(axis)
    x = as_array(x)
    out_dtype = np.result_type(dtype_of(x), np.complex64)
    if 0 in shape_of(x):
        return np.empty(shape_of(x)), np.empty(shape_of(x)), np.empty(shape_of(x))
    xl = np.moveaxis(x, axis, -1) if ndim_of(x) > 1 else x
    if nperseg is not None:
        nperseg = int(nperseg)
        if nperseg < 1:
            raise ValueError("nperseg must be a positive integer")
    win, nperseg = _triage(window, nperseg, shape_of(xl)[-1])
    nfft = nperseg if nfft is None else int(nfft)
    if nfft < nperseg:
        raise ValueError("nfft must be greater than or equal to nperseg.")
    noverlap = nperseg // 2 if noverlap is None else int(noverlap)
    if noverlap >= nperseg:
        raise ValueError("noverlap must be less than nperseg.")
    step = nperseg - noverlap
    if boundary is not None:
        xl = _extend(xl, nperseg // 2, boundary)
    if padded:
        nadd = (-(shape_of(xl)[-1] - nperseg) % step) % nperseg
        xl = np.concatenate([xl, np.zeros(tuple(shape_of(xl)[:-1]) + (nadd,), dtype_of(xl))], axis=-1)
    scale = 1.0 / (fs * np.sum(win * win)) if scaling == "density" else 1.0 / np.sum(win) ** 2
    onesided = bool(return_onesided) and dtype_of(x).kind != "c"
    if return_onesided and not onesided:
        warnings.warn("Input data is complex, switching to return_onesided=False", stacklevel=2)
    length = shape_of(xl)[-1]
    nseg = (length - nperseg) // step + 1
    seg = _detrend_segments(_segments(xl, nperseg, step, nseg), detrend)
    win = win.astype(out_dtype) if np.result_type(dtype_of(win), np.complex64) != out_dtype else win
    zxx = (_spectrum(seg, win, nfft, onesided) * np.sqrt(scale)).astype(out_dtype)
    freqs = np.fft.rfftfreq(nfft, 1 / fs) if onesided else np.fft.fftfreq(nfft, 1 / fs)
    time = np.arange(nperseg / 2, length - nperseg / 2 + 1, nperseg - noverlap) / float(fs)
    if boundary is not None:
        time = time - (nperseg / 2) / fs
    return freqs, time, np.moveaxis(zxx, -1, (axis - 1) if axis < 0 else axis)


def istft(Zxx, fs=1.0, window="hann_periodic", nperseg=None, noverlap=None, nfft=None, input_onesided=True,
          boundary=True, time_axis=-1, freq_axis=-2, scaling="spectrum"):
    """``scipy.signal.istft``: ``(t, x)``, the inverse STFT by weighted overlap-add."""
    zxx = as_array(Zxx)
    zxx = zxx + 0j if dtype_of(zxx).kind != "c" else zxx
    freq_axis, time_axis = int(freq_axis), int(time_axis)
    if ndim_of(zxx) < 2:
        raise ValueError("Input stft must be at least 2d!")
    if freq_axis == time_axis:
        raise ValueError("Must specify differing time and frequency axes!")
    nseg = shape_of(zxx)[time_axis]
    n_default = 2 * (shape_of(zxx)[freq_axis] - 1) if input_onesided else shape_of(zxx)[freq_axis]
    if nperseg is None:
        nperseg = n_default
    else:
        nperseg = int(nperseg)
        if nperseg < 1:
            raise ValueError("nperseg must be a positive integer")
    if nfft is None:
        nfft = nperseg if input_onesided and nperseg == n_default + 1 else n_default
    elif nfft < nperseg:
        raise ValueError("nfft must be greater than or equal to nperseg.")
    else:
        nfft = int(nfft)
    noverlap = nperseg // 2 if noverlap is None else int(noverlap)
    if noverlap >= nperseg:
        raise ValueError("noverlap must be less than nperseg.")
    step = nperseg - noverlap
    nd = ndim_of(zxx)
    fa, ta = freq_axis % nd, time_axis % nd
    zxx = np.moveaxis(zxx, (fa, ta), (-2, -1))
    if isinstance(window, (str, tuple)):
        win = _get_window(window, nperseg)
    else:
        win = as_array(window)
        if ndim_of(win) != 1:
            raise ValueError("window must be 1-D")
        if shape_of(win)[0] != nperseg:
            raise ValueError(f"window must have length of {nperseg}")
    xsubs = (np.fft.irfft(zxx, n=nfft, axis=-2) if input_onesided else np.fft.ifft(zxx, n=nfft, axis=-2))
    xsubs = xsubs[..., :nperseg, :]
    if np.result_type(dtype_of(win), dtype_of(xsubs)) != dtype_of(xsubs):
        win = win.astype(dtype_of(xsubs))
    if scaling == "spectrum":
        xsubs = xsubs * np.sum(win)
    elif scaling == "psd":
        xsubs = xsubs * np.sqrt(fs * np.sum(win ** 2))
    else:
        raise ValueError(f"Parameter scaling={scaling!r} not in ['spectrum', 'psd']!")
    length = nperseg + (nseg - 1) * step
    index = (np.arange(nseg)[:, None] * step + np.arange(nperseg)[None, :]).ravel()  # (segment, sample)
    frames = np.swapaxes(xsubs, -1, -2) * win  # (..., nseg, nperseg)
    frames = np.reshape(frames, tuple(shape_of(frames)[:-2]) + (nseg * nperseg,))
    x = add_at(np.zeros(tuple(shape_of(frames)[:-1]) + (length,), dtype_of(frames)), (Ellipsis, index), frames)
    norm = np.zeros(length, np.result_type(dtype_of(win), np.float64 if dtype_of(xsubs) == np.float64 else
                                           dtype_of(xsubs)))
    norm = add_at(norm, index, np.tile(win * win, nseg))
    if boundary:
        x = x[..., nperseg // 2:-(nperseg // 2)]
        norm = norm[..., nperseg // 2:-(nperseg // 2)]
    if not is_traced(norm) and np.sum(norm > 1e-10) != len(norm):
        warnings.warn("NOLA condition failed, STFT may not be invertible."
                      + (" Possibly due to missing boundary" if not boundary else ""), stacklevel=2)
    x = x / np.where(norm > 1e-10, norm, 1.0)
    if input_onesided:
        x = np.real(x)
    if ndim_of(x) > 1 and ta != nd - 1:
        x = np.moveaxis(x, -1, ta - 1 if fa < ta else ta)
    time = np.arange(shape_of(x)[0]) / float(fs)
    return time, x
