"""``npfunc.numpy.linalg``: the ``np.linalg`` functions npfunc supports, as the
functions ``np.linalg.<name>`` dispatches to on traced values (plain arrays
work too), and ``LinAlgError``.

>>> import numpy as np, npfunc
>>> from npfunc.numpy.linalg import det
>>> float(npfunc.grad(det)(np.eye(2))[0, 0])
1.0
"""
from __future__ import annotations

import numpy as _np

from . import _namespace

__all__ = _namespace.fill(globals(), _np.linalg, "np.linalg")


def __getattr__(name: str):
    return _namespace.missing("npfunc.numpy.linalg", _np.linalg, name)


def __dir__():
    return __all__
