"""``npfunc.array_api.special``: SciPy's special functions, for SciPy's array-API code.

Not part of the standard.  With ``SCIPY_ARRAY_API=1``, a ``scipy.special``
function given arrays of a namespace other than NumPy's looks for
``xp.special.<name>`` before converting its arguments to NumPy arrays
(``scipy/special/_support_alternative_backends.py``).  Every
``scipy.special`` function npfunc implements is found here, so SciPy's own
code (``scipy.stats``, ``scipy.special.logsumexp`` ...) calls npfunc's
differentiable version; other names raise ``AttributeError`` and SciPy takes
its NumPy fallback, whose error names the function.

>>> import numpy as np, npfunc.array_api as xp
>>> float(xp.special.gammaln(np.float64(4.0)).round(6))
1.791759
"""
from __future__ import annotations

import importlib

from ..core import dispatch as _dispatch


def _lookup(name: str):
    sc = importlib.import_module("scipy.special")
    for where in (getattr(sc, "_ufuncs", None), getattr(sc, "_special_ufuncs", None), sc):
        target = getattr(where, name, None)
        while target is not None:  # SciPy's ufunc, its array-API wrapper, npfunc's router around it
            try:
                fn = _dispatch.UFUNCS.get(target) or _dispatch.FUNCTIONS.get(target)
            except TypeError:  # not hashable: not a function
                fn = None
            if fn is not None:
                return fn
            target = getattr(target, "__wrapped__", None)
    twins = importlib.import_module("npfunc.scipy.special")
    return getattr(twins, name, None) if name in getattr(twins, "__all__", ()) else None


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    fn = _lookup(name)
    if fn is None:
        raise AttributeError(f"npfunc.array_api.special has no function {name!r} (npfunc does not implement "
                             f"scipy.special.{name}; {_dispatch.COVERAGE_HINT})")
    return fn
