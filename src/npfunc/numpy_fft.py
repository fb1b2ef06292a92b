"""``npfunc.numpy.fft``: the ``np.fft`` functions npfunc supports, as an explicit namespace.

The transforms are the functions ``np.fft.*`` dispatches to on traced values
(they work on plain arrays too); the helpers without array inputs
(``fftfreq``, ``rfftfreq``) are NumPy's own.

>>> import numpy as np, npfunc
>>> from npfunc.numpy_fft import fft
>>> g = npfunc.grad(lambda x: np.abs(fft(x)).sum())(np.array([1.0, 0.0, 0.0, 0.0]))
>>> g.round(12)
array([4., 0., 0., 0.])
"""
from __future__ import annotations

import sys as _sys

import numpy as _np

from .primitives.fft import (fft, fft2, fftn, fftshift, hfft, ifft, ifft2, ifftn,  # noqa: F401
                             ifftshift, ihfft, irfft, irfft2, irfftn, rfft, rfft2, rfftn)

fftfreq = _np.fft.fftfreq
rfftfreq = _np.fft.rfftfreq

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "fftshift", "ifftshift", "fftfreq", "rfftfreq"]

# ``import npfunc.numpy.fft`` finds this module once it has been imported
# (npfunc.numpy is a module, not a package, so it cannot hold a submodule file).
_sys.modules.setdefault("npfunc.numpy.fft", _sys.modules[__name__])
