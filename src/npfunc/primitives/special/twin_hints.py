"""Error hints for SciPy's Python-level special functions that have a twin in
``npfunc.scipy.special``: when one of them converts a traced value with
``np.asarray``, the conversion error names the twin (``core.dispatch.TWINS``
maps code objects to twins).  Filled when ``scipy.special`` is imported, so
the hint appears without importing ``npfunc.scipy``.
"""
from __future__ import annotations

import os

from ...core import dispatch
from ...core.imports import when_imported

_TWINS = {"multigammaln": "multigammaln", "comb": "comb", "factorial": "factorial",
          "spherical_jn": "spherical_jn / spherical_yn (same arguments)",
          "sph_harm_y": "sph_harm_y (same arguments)"}


def _code(fn):
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object (SciPy's MultiUFunc): its __call__
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)
    return code


#: Where npfunc's own code lives (its router's code object is shared by every routed function).
_OURS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Every public name the twins above cover.
_COVERED = {"multigammaln", "comb", "factorial", "spherical_jn", "spherical_yn", "sph_harm_y"}


def register(sc) -> None:
    for name, twin in _TWINS.items():
        fn = getattr(sc, name, None)
        code = _code(fn) if fn is not None else None
        if code is None or code.co_filename.startswith(_OURS):  # npfunc.scipy routes it to the twin already
            continue
        hint = f"npfunc.scipy.special.{twin}"
        # SciPy may wrap several functions in one decorator (spherical_jn, yn, in, kn share
        # _spherical_bessel.wrapper): the code object is the same, so say which ones have a twin
        others = sorted(n for n in dir(sc) if not n.startswith("_") and n not in _COVERED
                        and _code(getattr(sc, n, None)) is code)
        if others:
            mine = sorted(n for n in _COVERED if _code(getattr(sc, n, None)) is code)
            hint += (f" if you called {' or '.join(mine)} (scipy.special.{', '.join(others)}, in the same "
                     "SciPy wrapper, have no twin yet: write them with NumPy functions)")
        dispatch.TWINS.setdefault(code, hint)


when_imported("scipy.special", register)
