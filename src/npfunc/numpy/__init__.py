"""``npfunc.numpy``: the NumPy functions npfunc supports, as an explicit namespace.

Every supported public function of ``numpy`` is here under its NumPy name,
as the function ``np.<name>`` dispatches to on traced values (plain arrays
work too), with NumPy's constants, dtypes and exceptions, npfunc's own
``stop_gradient``, ``set_at``, ``add_at``, ``array``, ``asarray``, and the
submodules ``npfunc.numpy.linalg`` and ``npfunc.numpy.fft``.  A name NumPy
has but npfunc does not support raises ``AttributeError`` saying so.

>>> import npfunc.numpy as jnp
>>> import numpy as np
>>> float(jnp.sum(jnp.tanh(np.zeros(3))))
0.0
>>> import npfunc.numpy.linalg
>>> npfunc.numpy.linalg.norm is jnp.linalg.norm
True
"""
from __future__ import annotations

import numpy as _np

from ..core.lazy import load_all as _load_all

_load_all()  # the namespace offers every supported function: load every definition

from . import _namespace  # noqa: E402
from ..primitives.elementwise.arithmetic import stop_gradient  # noqa: F401  (in __all__)
from ..primitives.indexing.updates import add_at, set_at  # noqa: F401

__all__ = sorted(set(_namespace.fill(globals(), _np, "np"))
                 | {"stop_gradient", "set_at", "add_at", "array", "asarray", "linalg", "fft"})

# after fill, which binds NumPy's own np.array/np.asarray under these names: npfunc's
# accept lists of traced values even when imported by name (from npfunc.numpy import array)
from ..primitives.shape.joining import array, asarray  # noqa: E402,F401

from . import fft, linalg  # noqa: E402  (after the functions: they are the same objects)


def __getattr__(name: str):
    return _namespace.missing("npfunc.numpy", _np, name)


def __dir__():
    return __all__
