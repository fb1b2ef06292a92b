"""Lazy SciPy ufuncs for the special-function modules.

``import npfunc`` must not import SciPy, so each primitive's implementation
looks its ufunc up on first use, and the ufuncs become dispatchable (a
traced value passed to ``scipy.special.jv`` reaches npfunc) when
``scipy.special`` is imported -- now, or later by anyone.  Private ufuncs
that SciPy's Python wrappers call (``_riemann_zeta`` behind ``zeta``) are
found in ``scipy.special._ufuncs``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...core.dispatch import implements
from ...core.imports import when_imported


def scipy_special():
    import scipy.special as sc

    return sc


def find_ufunc(sc, name: str):
    """``scipy.special.<name>``, or the private ufunc of that name (also when the public
    name is something else: ``scipy.special._lambertw`` is the module, the ufunc is in
    ``scipy.special._ufuncs``)."""
    found = getattr(sc, name, None)
    if found is None or (name.startswith("_") and not isinstance(found, np.ufunc)):
        found = getattr(getattr(sc, "_ufuncs", None), name, None) or found
    return found


def lazy_ufunc(name: str, index: int | None = None) -> Callable:
    """An implementation calling ``scipy.special.<name>`` (output ``index`` of a
    multi-output ufunc), resolved on first use."""
    cache: list = []

    def impl(*args):
        if not cache:
            cache.append(find_ufunc(scipy_special(), name))
        out = cache[0](*args)
        return out if index is None else out[index]

    impl.__name__ = name if index is None else f"{name}_{index}"
    return impl


def register_when_imported(defs: dict) -> None:
    """Dispatch ``scipy.special.<name>`` to ``defs[name]`` once SciPy is imported.

    A function with a ``primitive`` whose implementation is the ufunc itself
    gets the ufunc as its implementation (no lookup per call)."""

    def register(sc) -> None:
        for name, fn in defs.items():
            ufunc = find_ufunc(sc, name)
            if ufunc is None:  # pragma: no cover - older SciPy
                continue
            prim = getattr(fn, "primitive", None)
            if prim is not None and getattr(prim.impl, "__name__", None) == name:
                prim.impl = ufunc
            implements(ufunc)(fn)

    when_imported("scipy.special", register)
