"""``npfunc.array_api.fft``: the standard's FFT extension, on npfunc's ``np.fft``.

>>> import numpy as np, npfunc
>>> from npfunc.array_api import fft
>>> npfunc.grad(lambda x: fft.rfft(x).real.sum())(np.ones(4))
array([3., 0., 1., 0.])
"""
from __future__ import annotations

from .. import numpy_fft as _np_fft
from ._base import check_device
from ._dtypes import as_dtype

_NORMS = ("backward", "ortho", "forward")


def _check_norm(norm, name):
    if norm not in _NORMS:
        raise ValueError(f"npfunc.array_api.fft.{name}: norm must be one of {_NORMS}, got {norm!r}")


def _one_axis(name: str):
    impl = getattr(_np_fft, name)

    def function(x, /, *, n=None, axis=-1, norm="backward"):
        _check_norm(norm, name)
        return impl(x, n=n, axis=axis, norm=norm)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The standard's ``fft.{name}``: npfunc's ``np.fft.{name}``."
    return function


def _many_axes(name: str):
    impl = getattr(_np_fft, name)

    def function(x, /, *, s=None, axes=None, norm="backward"):
        _check_norm(norm, name)
        return impl(x, s=None if s is None else tuple(s), axes=None if axes is None else tuple(axes), norm=norm)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The standard's ``fft.{name}``: npfunc's ``np.fft.{name}``."
    return function


fft, ifft, rfft, irfft, hfft, ihfft = (_one_axis(n) for n in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft"))
fftn, ifftn, rfftn, irfftn = (_many_axes(n) for n in ("fftn", "ifftn", "rfftn", "irfftn"))


def _frequencies(name, n, d, dtype, device):
    check_device(device, f"fft.{name}")
    out = getattr(_np_fft, name)(n, d)
    return out if dtype is None else out.astype(as_dtype(dtype, f"fft.{name}"))


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _frequencies("fftfreq", n, d, dtype, device)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _frequencies("rfftfreq", n, d, dtype, device)


def fftshift(x, /, *, axes=None):
    return _np_fft.fftshift(x, axes=axes)


def ifftshift(x, /, *, axes=None):
    return _np_fft.ifftshift(x, axes=axes)


__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft", "fftfreq",
           "rfftfreq", "fftshift", "ifftshift"]
