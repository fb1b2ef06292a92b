"""Discrete Fourier transforms (``np.fft``): three linear primitives.

* ``fft``   -- complex-to-complex ``fftn`` / ``ifftn`` over distinct axes;
* ``rfft``  -- real-to-complex ``rfftn`` (the last axis is halved);
* ``irfft`` -- complex-to-real ``irfftn`` (the last axis is Hermitian-extended).

Every other ``np.fft`` function (``fft``, ``ifft2``, ``rfft``, ``hfft``,
``fftshift`` ...) is a composite of these and of slicing.  All are linear, so
the JVP is the same transform of the tangent and the VJP is the adjoint
(conjugate transpose) applied to the cotangent:

* the adjoint of a transform with norm ``N`` is the opposite-direction
  transform with the swapped norm (``backward`` <-> ``forward``, ``ortho``
  stays), followed by the transpose of the ``n``/``s`` zero-padding or
  truncation (truncate what was padded, pad what was truncated);
* ``rfft`` keeps half of a Hermitian spectrum, so its adjoint is ``irfft``
  of the cotangent with the interior frequencies weighted 1/2 (``irfft``
  counts them twice); the adjoint of ``irfft`` is ``rfft`` with the interior
  frequencies weighted 2.  The imaginary parts ``irfft`` ignores (frequency 0
  and Nyquist) get zero cotangent.
"""
from __future__ import annotations

import numpy as np

from . import call_samples
from ..core.errors import UnsupportedOperationError
from ..core.primitive import Primitive, Sample
from ..core.values import dtype_of, ndim_of, shape_of
from .elementwise.arithmetic import conjugate
from .families import composite, fit_cotangent
from .indexing.gather import getitem, index_add
from .sampling import array
from .shape.basic import concatenate_arrays

_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


# ---- helpers ---------------------------------------------------------------------

def _check_norm(norm, fn: str) -> str:
    if norm is None:
        return "backward"
    if norm not in _SWAP:
        raise ValueError(f'np.fft.{fn}: invalid norm value {norm!r}; should be "backward", '
                         '"ortho" or "forward"')
    return norm


def _check_out(out, fn: str) -> None:
    if out is not None:
        raise UnsupportedOperationError(
            f"np.fft.{fn}(..., out=...) writes into an existing array, which a traced value "
            f"cannot be. Assign the result instead: y = np.fft.{fn}(...).")


def _resize(x, axes, sizes):
    """``x`` with each of ``axes`` truncated or zero-padded at the end to ``sizes``."""
    shape = shape_of(x)
    cut = [slice(None)] * len(shape)
    if any(shape[a] > n for a, n in zip(axes, sizes)):
        for a, n in zip(axes, sizes):
            if shape[a] > n:
                cut[a] = slice(0, n)
        x = getitem(x, tuple(cut))
        shape = shape_of(x)
    if any(shape[a] < n for a, n in zip(axes, sizes)):
        target = list(shape)
        for a, n in zip(axes, sizes):
            target[a] = max(n, shape[a])
        x = index_add(x, tuple(slice(0, m) for m in shape), tuple(target))
    return x


def _half_weights(n: int, interior: float, ndim: int, axis: int, like):
    """Weights over the ``n // 2 + 1`` stored frequencies of a real signal of
    length ``n``: 1 at frequency 0 (and Nyquist for even ``n``), ``interior``
    elsewhere; shaped to broadcast along ``axis`` of a rank-``ndim`` value."""
    m = n // 2 + 1
    w = np.full(m, interior, dtype=np.finfo(dtype_of(like)).dtype)
    w[0] = 1
    if n % 2 == 0:
        w[-1] = 1
    return w.reshape((m,) + (1,) * (ndim - 1 - axis))


def _input_sizes(x, axes):
    shape = shape_of(x)
    return tuple(shape[a] for a in axes)


def _fft_batch(prim: Primitive):
    """The transformed axes move past the batch axis, which stays where it is."""

    def batch(vals, dims, *, axes, **params):
        d = dims[0]
        return prim.bind(vals[0], axes=tuple(a + (a >= d) for a in axes), **params), d

    return batch


# ---- complex-to-complex -------------------------------------------------------------

def _c2c_impl(x, *, axes, s, norm, inverse):
    return (np.fft.ifftn if inverse else np.fft.fftn)(x, s=s, axes=axes, norm=norm)


def _c2c_vjp(g, primals, out, needs, *, axes, s, norm, inverse):
    (x,) = primals
    ct = _c2c.bind(g, axes=axes, s=s, norm=_SWAP[norm], inverse=not inverse)
    return (fit_cotangent(_resize(ct, axes, _input_sizes(x, axes)), x),)


def _c2c_samples(rng):
    out = []
    for real, cplx in ((np.float64, np.complex128), (np.float32, np.complex64)):
        def c(shape):
            return (array(rng, shape) + 1j * array(rng, shape)).astype(cplx)

        out += [
            Sample(c((4,)), axes=(0,), s=(4,), norm="backward", inverse=False),
            Sample(array(rng, (5,), real), axes=(0,), s=(8,), norm="ortho", inverse=False,
                   label="real input, padded"),
            Sample(c((2, 6)), axes=(1,), s=(4,), norm="forward", inverse=False, label="truncated"),
            Sample(c((3, 4)), axes=(0, 1), s=(3, 4), norm="ortho", inverse=True),
            Sample(array(rng, (2, 3, 4), real), axes=(2, 0), s=(5, 1), norm="backward", inverse=True,
                   label="padded and truncated"),
            Sample(c((3, 2)), axes=(0,), s=(3,), norm="forward", inverse=True),
        ]
    return out


_c2c = Primitive("fft", _c2c_impl, vjp=_c2c_vjp, samples=_c2c_samples,
                 jvp=lambda primals, tangents, out, **p: _c2c.bind(tangents[0], **p),
                 notes="linear: VJP is the inverse-direction transform with the swapped norm")
_c2c.batch = _fft_batch(_c2c)


# ---- real-to-complex ---------------------------------------------------------------

def _rfft_impl(x, *, axes, s, norm):
    return np.fft.rfftn(x, s=s, axes=axes, norm=norm)


def _rfft_vjp(g, primals, out, needs, *, axes, s, norm):
    (x,) = primals
    w = _half_weights(s[-1], 0.5, ndim_of(g), axes[-1], g)
    ct = _irfft.bind(g * w, axes=axes, s=s, norm=_SWAP[norm])
    return (fit_cotangent(_resize(ct, axes, _input_sizes(x, axes)), x),)


def _rfft_samples(rng):
    out = []
    for dt in (np.float64, np.float32):
        out += [
            Sample(array(rng, (6,), dt), axes=(0,), s=(6,), norm="backward", label="even"),
            Sample(array(rng, (5,), dt), axes=(0,), s=(5,), norm="ortho", label="odd"),
            Sample(array(rng, (2, 7), dt), axes=(1,), s=(4,), norm="forward", label="truncated"),
            Sample(array(rng, (3, 5), dt), axes=(0, 1), s=(4, 7), norm="backward", label="padded"),
            Sample(array(rng, (2, 3, 4), dt), axes=(2, 0), s=(4, 3), norm="ortho"),
        ]
    return out


_rfft = Primitive("rfft", _rfft_impl, vjp=_rfft_vjp, samples=_rfft_samples,
                  jvp=lambda primals, tangents, out, **p: _rfft.bind(tangents[0], **p),
                  notes="VJP: irfft of the cotangent with interior frequencies weighted 1/2")
_rfft.batch = _fft_batch(_rfft)


# ---- complex-to-real -----------------------------------------------------------------

def _irfft_impl(x, *, axes, s, norm):
    return np.fft.irfftn(x, s=s, axes=axes, norm=norm)


def _irfft_vjp(g, primals, out, needs, *, axes, s, norm):
    (x,) = primals
    ct = _rfft.bind(g, axes=axes, s=s, norm=_SWAP[norm])
    ct = ct * _half_weights(s[-1], 2.0, ndim_of(ct), axes[-1], ct)
    return (fit_cotangent(_resize(ct, axes, _input_sizes(x, axes)), x),)


def _irfft_samples(rng):
    out = []
    for real, cplx in ((np.float64, np.complex128), (np.float32, np.complex64)):
        def c(shape):
            return (array(rng, shape) + 1j * array(rng, shape)).astype(cplx)

        out += [
            Sample(c((4,)), axes=(0,), s=(6,), norm="backward", label="even"),
            Sample(c((5,)), axes=(0,), s=(5,), norm="ortho", label="odd, truncated input"),
            Sample(c((3,)), axes=(0,), s=(8,), norm="forward", label="padded input"),
            Sample(array(rng, (4,), real), axes=(0,), s=(6,), norm="backward", label="real input"),
            Sample(c((3, 4)), axes=(0, 1), s=(3, 6), norm="ortho"),
            Sample(c((2, 3, 4)), axes=(2, 0), s=(5, 2), norm="backward", label="unsorted axes"),
        ]
    return out


_irfft = Primitive("irfft", _irfft_impl, vjp=_irfft_vjp, samples=_irfft_samples,
                   jvp=lambda primals, tangents, out, **p: _irfft.bind(tangents[0], **p),
                   notes="VJP: rfft of the cotangent with interior frequencies weighted 2")
_irfft.batch = _fft_batch(_irfft)


# ---- the np.fft functions ---------------------------------------------------------------

def _cook(a, s, axes, fn: str, invreal: bool = False):
    """Normalised ``(axes, s)`` the way ``np.fft`` reads them: ``axes`` default to
    the last ``len(s)`` (or all) axes; ``s[i]`` of -1 or None keeps the input size;
    for the inverse real transforms the last size defaults to ``2 * (m - 1)``."""
    shape = shape_of(a)
    nd = len(shape)
    if nd == 0:
        raise ValueError(f"np.fft.{fn}: the input must have at least one dimension")
    shapeless = s is None
    if axes is None:
        axes = range(nd) if shapeless else range(-len(s), 0)
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    norm_axes = []
    for ax in axes:
        ax = int(ax)
        if not -nd <= ax < nd:
            raise np.exceptions.AxisError(f"np.fft.{fn}: axis {ax} is out of bounds for an array "
                                          f"of dimension {nd}")
        norm_axes.append(ax % nd)
    if shapeless:
        s = [shape[ax] for ax in norm_axes]
        if invreal and norm_axes:
            s[-1] = 2 * (shape[norm_axes[-1]] - 1)
    else:
        s = list(s)
        if len(s) != len(norm_axes):
            raise ValueError(f"np.fft.{fn}: shape and axes have different lengths")
        for i, (n, ax) in enumerate(zip(s, norm_axes)):
            if n is None or n == -1:
                s[i] = 2 * (shape[ax] - 1) if invreal and i == len(s) - 1 else shape[ax]
    s = [int(n) for n in s]
    for n in s:
        if n < 1:
            raise ValueError(f"np.fft.{fn}: invalid number of FFT data points ({n}) specified")
    return tuple(norm_axes), tuple(s)


def _c2c_nd(a, s, axes, norm, out, inverse: bool, fn: str):
    _check_out(out, fn)
    norm = _check_norm(norm, fn)
    axes, s = _cook(a, s, axes, fn)
    if not axes:
        return a
    if len(set(axes)) != len(axes):  # repeated axes: one transform after another, as NumPy does
        for ax, n in reversed(list(zip(axes, s))):
            a = _c2c.bind(a, axes=(ax,), s=(n,), norm=norm, inverse=inverse)
        return a
    return _c2c.bind(a, axes=axes, s=s, norm=norm, inverse=inverse)


def _check_real(a, fn: str) -> None:
    if dtype_of(a).kind == "c":
        raise TypeError(f"np.fft.{fn}: the input must be real (got {dtype_of(a)}); "
                        "use np.fft.fft / np.fft.fftn for complex input")


def _rfft_nd(a, s, axes, norm, out, fn: str):
    _check_out(out, fn)
    _check_real(a, fn)
    norm = _check_norm(norm, fn)
    axes, s = _cook(a, s, axes, fn)
    if not axes:
        raise ValueError(f"np.fft.{fn}: at least one axis must be transformed")
    if len(set(axes)) != len(axes):
        a = _rfft.bind(a, axes=axes[-1:], s=s[-1:], norm=norm)
        for ax, n in reversed(list(zip(axes[:-1], s[:-1]))):
            a = _c2c.bind(a, axes=(ax,), s=(n,), norm=norm, inverse=False)
        return a
    return _rfft.bind(a, axes=axes, s=s, norm=norm)


def _irfft_nd(a, s, axes, norm, out, fn: str):
    _check_out(out, fn)
    norm = _check_norm(norm, fn)
    axes, s = _cook(a, s, axes, fn, invreal=True)
    if not axes:
        raise ValueError(f"np.fft.{fn}: at least one axis must be transformed")
    if len(set(axes)) != len(axes):
        for ax, n in zip(axes[:-1], s[:-1]):
            a = _c2c.bind(a, axes=(ax,), s=(n,), norm=norm, inverse=True)
        return _irfft.bind(a, axes=axes[-1:], s=s[-1:], norm=norm)
    return _irfft.bind(a, axes=axes, s=s, norm=norm)


def _one(n):
    return None if n is None else (n,)


@composite(np.fft.fft, samples=call_samples.fft_1d())
def fft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.fft`` for traced and plain values."""
    return _c2c_nd(a, _one(n), (axis,), norm, out, False, "fft")


@composite(np.fft.ifft, samples=call_samples.fft_1d())
def ifft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.ifft`` for traced and plain values."""
    return _c2c_nd(a, _one(n), (axis,), norm, out, True, "ifft")


@composite(np.fft.fft2, samples=call_samples.fft_nd(True))
def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``np.fft.fft2`` for traced and plain values."""
    return _c2c_nd(a, s, axes, norm, out, False, "fft2")


@composite(np.fft.ifft2, samples=call_samples.fft_nd(True))
def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``np.fft.ifft2`` for traced and plain values."""
    return _c2c_nd(a, s, axes, norm, out, True, "ifft2")


@composite(np.fft.fftn, samples=call_samples.fft_nd(False))
def fftn(a, s=None, axes=None, norm=None, out=None):
    """``np.fft.fftn`` for traced and plain values."""
    return _c2c_nd(a, s, axes, norm, out, False, "fftn")


@composite(np.fft.ifftn, samples=call_samples.fft_nd(False))
def ifftn(a, s=None, axes=None, norm=None, out=None):
    """``np.fft.ifftn`` for traced and plain values."""
    return _c2c_nd(a, s, axes, norm, out, True, "ifftn")


@composite(np.fft.rfft, samples=call_samples.fft_1d(real_only=True))
def rfft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.rfft`` for traced and plain real values."""
    return _rfft_nd(a, _one(n), (axis,), norm, out, "rfft")


@composite(np.fft.irfft, samples=call_samples.fft_1d(complex_only=True))
def irfft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.irfft`` for traced and plain values (output length ``n``,
    default ``2 * (m - 1)``)."""
    return _irfft_nd(a, _one(n), (axis,), norm, out, "irfft")


@composite(np.fft.rfft2, samples=call_samples.fft_nd(True, real_only=True))
def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``np.fft.rfft2`` for traced and plain real values."""
    return _rfft_nd(a, s, axes, norm, out, "rfft2")


@composite(np.fft.irfft2, samples=call_samples.fft_nd(True, complex_only=True))
def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``np.fft.irfft2`` for traced and plain values."""
    return _irfft_nd(a, s, axes, norm, out, "irfft2")


@composite(np.fft.rfftn, samples=call_samples.fft_nd(False, real_only=True))
def rfftn(a, s=None, axes=None, norm=None, out=None):
    """``np.fft.rfftn`` for traced and plain real values."""
    return _rfft_nd(a, s, axes, norm, out, "rfftn")


@composite(np.fft.irfftn, samples=call_samples.fft_nd(False, complex_only=True))
def irfftn(a, s=None, axes=None, norm=None, out=None):
    """``np.fft.irfftn`` for traced and plain values."""
    return _irfft_nd(a, s, axes, norm, out, "irfftn")


@composite(np.fft.hfft, samples=call_samples.fft_1d(complex_only=True))
def hfft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.hfft``: the real spectrum of a Hermitian-symmetric signal."""
    norm = _SWAP[_check_norm(norm, "hfft")]
    return _irfft_nd(conjugate(a), _one(n), (axis,), norm, out, "hfft")


@composite(np.fft.ihfft, samples=call_samples.fft_1d(real_only=True))
def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """``np.fft.ihfft``: the inverse of ``hfft``, for real input."""
    norm = _SWAP[_check_norm(norm, "ihfft")]
    return conjugate(_rfft_nd(a, _one(n), (axis,), norm, out, "ihfft"))


for _fn in (fft, ifft, fft2, ifft2, fftn, ifftn):
    _fn.primitive = _c2c  # type: ignore[attr-defined]
for _fn in (rfft, rfft2, rfftn):
    _fn.primitive = _rfft  # type: ignore[attr-defined]
for _fn in (irfft, irfft2, irfftn):
    _fn.primitive = _irfft  # type: ignore[attr-defined]
del _fn


# ---- shifts -------------------------------------------------------------------------

def _roll(x, shifts, axes):
    """``np.roll`` along each of ``axes`` (two slices and a concatenation per axis)."""
    for shift, ax in zip(shifts, axes):
        n = shape_of(x)[ax]
        k = shift % n if n else 0
        if k == 0:
            continue
        before = (slice(None),) * ax
        x = concatenate_arrays([getitem(x, before + (slice(n - k, None),)),
                                getitem(x, before + (slice(0, n - k),))], ax)
    return x


def _shift_axes(x, axes, fn: str):
    nd = ndim_of(x)
    if axes is None:
        return tuple(range(nd))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for ax in axes:
        if not -nd <= int(ax) < nd:
            raise np.exceptions.AxisError(f"np.fft.{fn}: axis {ax} is out of bounds for an array "
                                          f"of dimension {nd}")
        out.append(int(ax) % nd)
    return tuple(out)


@composite(np.fft.fftshift, samples=call_samples.fftshift)
def fftshift(x, axes=None):
    """``np.fft.fftshift`` for traced and plain values: frequency 0 to the centre."""
    axes = _shift_axes(x, axes, "fftshift")
    shape = shape_of(x)
    return _roll(x, [shape[ax] // 2 for ax in axes], axes)


@composite(np.fft.ifftshift, samples=call_samples.fftshift)
def ifftshift(x, axes=None):
    """``np.fft.ifftshift`` for traced and plain values: the inverse of ``fftshift``."""
    axes = _shift_axes(x, axes, "ifftshift")
    shape = shape_of(x)
    return _roll(x, [-(shape[ax] // 2) for ax in axes], axes)


# ---- sample frequencies ------------------------------------------------------------------------
#
# NumPy computes them as integers times 1 / (n * d) and does not dispatch them:
# a traced spacing ``d`` flows through NumPy's own arithmetic, so the values
# and the derivatives in ``d`` are NumPy's.  These definitions give the
# explicit namespace (npfunc.numpy.fft.fftfreq) and the registry samples.

def _freq_samples(rng):
    return [Sample(8, np.float64(0.1)), Sample(7, np.float64(2.5)), Sample(5, np.float32(0.5), label="float32 d"),
            Sample(1, np.float64(3.0), label="n = 1")]


@composite(np.fft.fftfreq, samples=_freq_samples)
def fftfreq(n, d=1.0, device=None):
    """``np.fft.fftfreq`` with a traced sample spacing ``d`` (derivative in ``d``)."""
    return np.fft.fftfreq(n, d, device=device)


@composite(np.fft.rfftfreq, samples=_freq_samples)
def rfftfreq(n, d=1.0, device=None):
    """``np.fft.rfftfreq`` with a traced sample spacing ``d`` (derivative in ``d``)."""
    return np.fft.rfftfreq(n, d, device=device)
