"""``npfunc.numpy_fft``: the former name of :mod:`npfunc.numpy.fft` (kept so that
existing imports work; the same module object)."""
import sys as _sys

from .numpy import fft as _fft

_sys.modules[__name__] = _fft
