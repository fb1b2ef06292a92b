"""``npfunc.numpy``: the NumPy functions npfunc supports, as an explicit namespace.

Any name is looked up on NumPy and mapped to npfunc's implementation, so
``npfunc.numpy.abs`` is the function ``np.abs`` dispatches to on traced
values.  Plain arrays work too.

>>> import npfunc.numpy as jnp

>>> import numpy as np
>>> float(jnp.sum(jnp.tanh(np.zeros(3))))
0.0
"""
from __future__ import annotations

import numpy as _np

from .core import dispatch as _dispatch
from .core.errors import UnsupportedFunctionError as _Unsupported
from .primitives.elementwise.arithmetic import stop_gradient  # noqa: F401


_EXTRAS = {  # functions NumPy cannot dispatch (they take lists, or are npfunc's own)
    "array": ("shape.joining", "array"), "asarray": ("shape.joining", "asarray"),
    "set_at": ("indexing.updates", "set_at"), "add_at": ("indexing.updates", "add_at"),
}


def __getattr__(name: str):
    if name in _EXTRAS:
        import importlib

        module, attr = _EXTRAS[name]
        return getattr(importlib.import_module(f"npfunc.primitives.{module}"), attr)
    if name == "fft":
        from . import numpy_fft

        return numpy_fft
    target = getattr(_np, name, None)
    fn = None
    if target is not None:
        try:
            fn = _dispatch.UFUNCS.get(target) or _dispatch.FUNCTIONS.get(target)
        except TypeError:  # unhashable attribute (not a function)
            fn = None
    if fn is None:
        if target is not None and (not callable(target) or isinstance(target, type)):
            return target  # constants and types: np.pi, np.float64, np.newaxis, np.ndarray ...
        raise AttributeError(
            f"npfunc.numpy has no function {name!r}" +
            (f" (np.{name} is not supported yet; {_dispatch.COVERAGE_HINT})" if target is not None else ""))
    return fn


def __dir__():
    names = set()
    for table in (_dispatch.UFUNCS, _dispatch.FUNCTIONS):
        for target in table:
            name = getattr(target, "__name__", None)
            if name and getattr(_np, name, None) is target:
                names.add(name)
    return sorted(names | {"stop_gradient", "fft"} | set(_EXTRAS))


del _Unsupported
