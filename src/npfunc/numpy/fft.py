"""``npfunc.numpy.fft``: the ``np.fft`` functions npfunc supports, as the
functions ``np.fft.<name>`` dispatches to on traced values (plain arrays
work too).

>>> import numpy as np, npfunc
>>> from npfunc.numpy.fft import fft
>>> g = npfunc.grad(lambda x: np.abs(fft(x)).sum())(np.array([1.0, 0.0, 0.0, 0.0]))
>>> g.round(12)
array([4., 0., 0., 0.])
"""
from __future__ import annotations

import numpy as _np

from . import _namespace

__all__ = _namespace.fill(globals(), _np.fft, "np.fft")


def __getattr__(name: str):
    return _namespace.missing("npfunc.numpy.fft", _np.fft, name)


def __dir__():
    return __all__
