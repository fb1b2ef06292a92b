"""Convolution and correlation: ``np.convolve``, ``np.correlate`` and the n-d
``scipy.signal.convolve`` / ``correlate`` (one primitive, composites around it).

The primitive ``convolve`` computes a window of the *full* convolution::

    out[n] = full[n + start],   full[m] = sum_i a[i] v[m - i]

per axis over the trailing ``len(start)`` axes (``correlate=True`` uses
``flip(conj(v))`` in place of ``v``: ``full`` is then the full
cross-correlation, lags ``-(K-1) .. N-1``).  Every mode of NumPy and SciPy is
a choice of ``(start, shape)``, and so is every derivative: the operation is
linear in each argument (bilinear; anti-linear in ``v`` for correlation), and

* JVP: ``conv(ta, v) + conv(a, tv)`` with the same window;
* VJP of a convolution: ``a``'s cotangent is the correlation of ``g`` with
  ``v`` at ``start' = K - 1 - start`` and ``v``'s the correlation of ``g``
  with ``a`` at ``N - 1 - start``;
* VJP of a correlation: ``a``'s cotangent is the convolution of ``g`` with
  ``v`` at ``K - 1 - start`` and ``v``'s the correlation of ``a`` with ``g``
  at ``start + L - K``

(``N``, ``K``, ``L`` the sizes of ``a``, ``v`` and ``out`` on an axis).

Leading axes (before the convolved ones) broadcast like NumPy's, which is
how a batch is convolved at once: the batch rule just moves batch axes to
the front.  Plain inputs in a standard mode are computed by the very NumPy
or SciPy function the user called (``method`` says which: ``"numpy"``, or
SciPy's ``"auto"``/``"direct"``/``"fft"``, ``"convolve2d"``, ``"fftconvolve"``
or ``"oaconvolve"``), so values
are bit-for-bit NumPy's / SciPy's.  Anything else (batched inputs,
derivative windows) runs a vectorised direct product of sliding windows for
small kernels and an FFT for large ones -- never a loop over the batch.
"""
from __future__ import annotations

import math

import numpy as np

from . import call_samples
from ..core.primitive import Primitive, Sample
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..core.zeros import zero
from ..interpreters.batching import move_to_front
from .families import composite, fit_cotangent
from .sampling import FLOATS, array
from .shape.basic import reshape

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---- windows of the full result for each mode ----------------------------------------

def numpy_window(mode: str, n: int, k: int, correlate: bool) -> tuple[int, int]:
    """``(start, length)`` of ``np.convolve`` / ``np.correlate`` in the full result."""
    if mode == "full":
        return 0, n + k - 1
    if mode == "valid":
        return min(n, k) - 1, abs(n - k) + 1
    if mode == "same":
        if correlate and n < k:  # NumPy correlates the other way round and reverses
            return n // 2, k
        return (min(n, k) - 1) // 2, max(n, k)
    raise ValueError(f"mode must be one of 'full', 'same' or 'valid', got {mode!r}")


def scipy_window(mode: str, sa, sv, fn_name: str, correlate2d: bool = False):
    """``(start, shape)`` tuples of ``scipy.signal.convolve``/``correlate`` in the full
    result (``correlate2d`` centres 'same' differently for even kernels)."""
    if mode == "full":
        return (0,) * len(sa), tuple(n + k - 1 for n, k in zip(sa, sv))
    if mode == "same":
        return tuple(k // 2 if correlate2d else (k - 1) // 2 for k in sv), tuple(sa)
    if mode == "valid":
        if not (all(n >= k for n, k in zip(sa, sv)) or all(k >= n for n, k in zip(sa, sv))):
            raise ValueError(f"{fn_name}: for 'valid' mode, one must be at least as large as the other "
                             "in every dimension")
        return tuple(min(n, k) - 1 for n, k in zip(sa, sv)), tuple(abs(n - k) + 1 for n, k in zip(sa, sv))
    raise ValueError(f"{fn_name}: acceptable mode flags are 'valid', 'same', or 'full', got {mode!r}")


def _standard_mode(method, start, shape, sa, sv, correlate):
    """The mode name when ``(start, shape)`` is one the reference function computes."""
    for mode in ("full", "same", "valid"):
        try:
            if method == "numpy":
                s, n = numpy_window(mode, sa[0], sv[0], correlate)
                if (s,) == start and (n,) == shape:
                    return mode
            elif scipy_window(mode, sa, sv, "", method == "convolve2d" and correlate) == (start, shape):
                return mode
        except ValueError:
            continue
    return None


# ---- plain-array computation ------------------------------------------------------------

def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (sizes the FFT is fast for)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _direct(a, v, start, shape, nd):
    """Sliding windows of ``a`` (padded or cropped to what the window needs)
    contracted with the flipped kernel; leading axes broadcast."""
    sa, sv = a.shape[a.ndim - nd:], v.shape[v.ndim - nd:]
    pads, crops = [(0, 0)] * (a.ndim - nd), [slice(None)] * (a.ndim - nd)
    for n, k, s, m in zip(sa, sv, start, shape):
        lo, total = s - k + 1, m + k - 1      # a[lo : lo + total] is what the windows read
        c0, c1 = min(max(lo, 0), n), min(max(lo + total, 0), n)
        c1 = max(c1, c0)
        before = min(max(-lo, 0), total)
        crops.append(slice(c0, c1))
        pads.append((before, total - before - (c1 - c0)))
    ap = np.pad(a[tuple(crops)], pads)
    win = np.lib.stride_tricks.sliding_window_view(ap, tuple(sv), axis=tuple(range(a.ndim - nd, a.ndim)))
    # (contiguous: einsum's summation order follows the operands' strides, and a kernel
    # reaching here as a view -- a flipped psf[::-1, ::-1] -- must give the bits its copy gives)
    vf = np.ascontiguousarray(np.flip(v, axis=tuple(range(v.ndim - nd, v.ndim))))
    outs, ks = _LETTERS[:nd], _LETTERS[nd:2 * nd]
    return np.einsum(f"...{outs}{ks},...{ks}->...{outs}", win, vf)


def _fft(a, v, start, shape, nd, dtype):
    axes = tuple(range(-nd, 0))
    full = [n + k - 1 for n, k in zip(a.shape[a.ndim - nd:], v.shape[v.ndim - nd:])]
    size = [_fast_len(n) for n in full]
    if dtype.kind == "c":
        out = np.fft.ifftn(np.fft.fftn(a, size, axes) * np.fft.fftn(v, size, axes), axes=axes)
    else:
        out = np.fft.irfftn(np.fft.rfftn(a, size, axes) * np.fft.rfftn(v, size, axes), size, axes=axes)
    return out[(Ellipsis,) + tuple(slice(s, s + m) for s, m in zip(start, shape))]


def _general(a, v, start, shape, correlate):
    nd = len(start)
    dtype = np.result_type(a, v)
    if correlate:
        v = np.conj(np.flip(v, axis=tuple(range(v.ndim - nd, v.ndim))))
    lead = np.broadcast_shapes(a.shape[:a.ndim - nd], v.shape[:v.ndim - nd])
    if a.size == 0 or v.size == 0 or 0 in shape:
        return np.zeros(tuple(lead) + tuple(shape), dtype)
    kernel = math.prod(v.shape[v.ndim - nd:])
    full = math.prod(n + k - 1 for n, k in zip(a.shape[a.ndim - nd:], v.shape[v.ndim - nd:]))
    direct_cost = kernel * math.prod(shape)
    if dtype.kind in "fc" and kernel > 16 and direct_cost > 6 * full * max(math.log2(full), 1.0):
        out = _fft(a, v, start, shape, nd, dtype)
    else:
        out = _direct(a, v, start, shape, nd)
    return np.asarray(out, dtype=dtype)


def _impl(a, v, *, start, shape, correlate, method):
    nd = len(start)
    if np.ndim(a) == nd and np.ndim(v) == nd:
        mode = _standard_mode(method, start, shape, np.shape(a), np.shape(v), correlate)
        if mode is not None:
            if method == "numpy":
                return (np.correlate if correlate else np.convolve)(a, v, mode)
            import scipy.signal as ss

            if method == "convolve2d":
                return (ss.correlate2d if correlate else ss.convolve2d)(a, v, mode)
            if method in ("fftconvolve", "oaconvolve"):
                if not correlate:
                    return getattr(ss, method)(a, v, mode)
                method = "fft"
            return (ss.correlate if correlate else ss.convolve)(a, v, mode, method)
    return _general(np.asarray(a), np.asarray(v), start, shape, correlate)


# ---- rules --------------------------------------------------------------------------------

def _sizes(x, nd):
    s = shape_of(x)
    return tuple(s[len(s) - nd:])


def _jvp(primals, tangents, out, **params):
    a, v = primals
    ta, tv = tangents
    total = zero
    if ta is not zero:
        total = _conv.bind(ta, v, **params)
    if tv is not zero:
        term = _conv.bind(a, tv, **params)
        total = term if total is zero else total + term
    return total


def _vjp(g, primals, out, needs, *, start, shape, correlate, method):
    a, v = primals
    nd = len(start)
    na, kv = _sizes(a, nd), _sizes(v, nd)
    ga = gv = zero
    if needs[0]:
        s = tuple(k - 1 - st for k, st in zip(kv, start))
        ga = fit_cotangent(_conv.bind(g, v, start=s, shape=na, correlate=not correlate, method=method), a)
    if needs[1]:
        if correlate:
            s = tuple(st + m - k for st, m, k in zip(start, shape, kv))
            gv = _conv.bind(a, g, start=s, shape=kv, correlate=True, method=method)
        else:
            s = tuple(n - 1 - st for n, st in zip(na, start))
            gv = _conv.bind(g, a, start=s, shape=kv, correlate=True, method=method)
        gv = fit_cotangent(gv, v)
    return ga, gv


def _batch(vals, dims, *, start, shape, correlate, method):
    """Batch axes to the front; leading axes padded to a common rank (they broadcast)."""
    nd = len(start)
    rank = max(ndim_of(x) - (d is not None) - nd for x, d in zip(vals, dims))
    out = []
    for x, d in zip(vals, dims):
        if d is not None:
            x = move_to_front(x, d)
            s = shape_of(x)
            pad = rank - (len(s) - 1 - nd)
            if pad:
                x = reshape(x, (s[0],) + (1,) * pad + tuple(s[1:]))
        out.append(x)
    return _conv.bind(*out, start=start, shape=shape, correlate=correlate, method=method), 0


def _samples(rng):
    out = []
    for dt in FLOATS:
        for corr in (False, True):
            for n, k in ((6, 3), (3, 6), (4, 4), (5, 2)):
                for mode in ("full", "same", "valid"):
                    s, m = numpy_window(mode, n, k, corr)
                    out.append(Sample(array(rng, (n,), dt), array(rng, (k,), dt), start=(s,), shape=(m,),
                                      correlate=corr, method="numpy", label=f"np {mode}"))
            for sa, sv in (((4, 5), (2, 3)), ((2, 3), (3, 4)), ((3, 2, 4), (2, 2, 3))):
                for mode in ("full", "same", "valid"):
                    try:
                        st, sh = scipy_window(mode, sa, sv, "")
                    except ValueError:
                        continue
                    out.append(Sample(array(rng, sa, dt), array(rng, sv, dt), start=st, shape=sh,
                                      correlate=corr, method="auto", label=f"scipy {mode}"))
    out += [
        Sample(array(rng, (2, 5)), array(rng, (3,)), start=(1,), shape=(5,), correlate=False, method="numpy",
               label="leading axes (batched impl)"),
        Sample(array(rng, (4,)), array(rng, (3, 1, 2)), start=(2,), shape=(3,), correlate=True, method="auto",
               label="leading axes broadcast"),
        Sample(array(rng, (5, 4)), array(rng, (3, 3)), start=(1, 2), shape=(4, 3), correlate=False, method="auto",
               label="window of the full result"),
        Sample(array(rng, (40,)), array(rng, (33,)), start=(3,), shape=(60,), correlate=True, method="fft",
               label="large kernel (FFT path)"),
        Sample(array(rng, (5,), np.float32), array(rng, (3,)), start=(0,), shape=(7,), correlate=False,
               method="numpy", label="mixed precision"),
        Sample(array(rng, (5,)) + 1j * array(rng, (5,)), array(rng, (3,)) - 0.5j, start=(2,), shape=(3,),
               correlate=True, method="numpy", label="complex valid"),
        Sample(array(rng, (4, 3)) + 1j * array(rng, (4, 3)), array(rng, (2, 2)) + 0.3j, start=(0, 0),
               shape=(5, 4), correlate=False, method="auto", label="complex full"),
        Sample(array(rng, (5, 6)), array(rng, (2, 4)), start=(1, 2), shape=(5, 6), correlate=True,
               method="convolve2d", label="correlate2d same"),
    ]
    return out


_conv = Primitive("convolve", _impl, jvp=_jvp, vjp=_vjp, batch=_batch, samples=_samples,
                  notes="bilinear (anti-linear in v for correlate=True); leading axes broadcast")


# ---- public functions ------------------------------------------------------------------------

def _as_array(x):
    return x if isinstance(x, Tracer) else np.asarray(x)


def _vector(x, fn_name: str, arg: str):
    x = _as_array(x)
    if ndim_of(x) == 0:
        x = reshape(x, (1,))
    elif ndim_of(x) != 1:
        raise ValueError(f"np.{fn_name}: object too deep for desired array ({arg} must be 1-d)")
    if shape_of(x)[0] == 0:
        raise ValueError(f"{arg} cannot be empty")
    return x


def window_conv(a, v, *, start, shape, correlate=False, method="auto"):
    """The window ``[start, start + shape)`` of the full convolution (or, with
    ``correlate=True``, cross-correlation) of ``a`` and ``v`` over their
    trailing ``len(start)`` axes; leading axes broadcast."""
    return _conv.bind(_as_array(a), _as_array(v), start=tuple(int(s) for s in start),
                      shape=tuple(int(m) for m in shape), correlate=bool(correlate), method=method)


@composite(np.convolve, samples=call_samples.convolve)
def convolve(a, v, mode="full"):
    """``np.convolve`` for traced and plain values (1-d; modes full/same/valid)."""
    a, v = _vector(a, "convolve", "a"), _vector(v, "convolve", "v")
    s, n = numpy_window(mode, shape_of(a)[0], shape_of(v)[0], False)
    return _conv.bind(a, v, start=(s,), shape=(n,), correlate=False, method="numpy")


@composite(np.correlate, samples=call_samples.correlate)
def correlate(a, v, mode="valid"):
    """``np.correlate`` for traced and plain values: ``c[k] = sum_n a[n+k] conj(v[n])``."""
    a, v = _vector(a, "correlate", "a"), _vector(v, "correlate", "v")
    s, n = numpy_window(mode, shape_of(a)[0], shape_of(v)[0], True)
    return _conv.bind(a, v, start=(s,), shape=(n,), correlate=True, method="numpy")


def signal_conv(in1, in2, mode, method, correlate, fn_name):
    """``scipy.signal.convolve``/``correlate`` semantics (``method`` names the
    reference function used for plain inputs; values agree up to rounding)."""
    a, v = _as_array(in1), _as_array(in2)
    if ndim_of(a) == ndim_of(v) == 0:
        return a * (np.conj(v) if correlate else v)
    if ndim_of(a) != ndim_of(v):
        raise ValueError(f"scipy.signal.{fn_name}: in1 and in2 should have the same dimensionality")
    start, shape = scipy_window(mode, shape_of(a), shape_of(v), f"scipy.signal.{fn_name}",
                                method == "convolve2d" and correlate)
    if 0 in shape_of(a) or 0 in shape_of(v):
        return np.zeros((0,), np.result_type(dtype_of(a), dtype_of(v)))
    return _conv.bind(a, v, start=start, shape=shape, correlate=correlate, method=method)


convolve.primitive = correlate.primitive = _conv  # type: ignore[attr-defined]
