"""``npfunc.numpy_fft``: the former name of :mod:`npfunc.numpy.fft`, kept so that
existing imports work (the same functions).

>>> import npfunc.numpy_fft, npfunc.numpy.fft
>>> npfunc.numpy_fft.fft is npfunc.numpy.fft.fft
True
"""
from .numpy.fft import *  # noqa: F401,F403
from .numpy.fft import __all__  # noqa: F401


def __dir__():
    return __all__
