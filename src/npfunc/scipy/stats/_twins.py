"""Error messages that name the twin: when ``scipy.stats.norm.logpdf(x)`` meets
a traced ``x``, SciPy's ``np.asarray`` raises npfunc's ConcretizationError /
BatchedConversionError, whose message names the ``npfunc.scipy.stats``
function to call instead (``core.dispatch.TWINS`` maps the code objects of
SciPy's methods to it).  ``scipy.stats`` is not imported for this: the
table is filled when it is (now, or when the user imports it later).
"""
from __future__ import annotations

import importlib.abc
import sys

from ...core import dispatch as _dispatch

_CONTINUOUS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf")
_DISCRETE = ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf")
_DONE: list = []


def _code(fn):
    fn = getattr(fn, "__wrapped__", fn)
    return getattr(fn, "__code__", None)


def register(st) -> None:
    """Map scipy.stats' method code objects to their npfunc.scipy.stats twins."""
    if _DONE or getattr(_dispatch, "TWINS", None) is None:
        return
    _DONE.append(True)
    table = {}
    for cls, methods in ((st.rv_continuous, _CONTINUOUS), (st.rv_discrete, _DISCRETE)):
        for m in methods:
            code = _code(getattr(cls, m, None))
            if code is not None:
                table[code] = f"npfunc.scipy.stats.<distribution>.{m} (same arguments)"
    for obj, name in ((st.multivariate_normal, "multivariate_normal"), (st.dirichlet, "dirichlet")):
        for m in ("logpdf", "pdf"):
            for owner in (type(obj), type(obj())) if name == "multivariate_normal" else (type(obj),):
                code = _code(getattr(owner, m, None))
                if code is not None:
                    table[code] = f"npfunc.scipy.stats.{name}.{m}"
    _dispatch.TWINS.update(table)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Fills the table right after ``scipy.stats`` finishes importing (finds no module itself)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "scipy.stats" or _DONE:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_register(module):
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            register(module)

        spec.loader.exec_module = exec_and_register
        return spec


def install() -> None:
    if "scipy.stats" in sys.modules and hasattr(sys.modules["scipy.stats"], "rv_continuous"):
        register(sys.modules["scipy.stats"])
    elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
