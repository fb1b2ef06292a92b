"""Error messages that name the twin: when ``scipy.stats.norm.logpdf(x)`` meets
a traced ``x``, SciPy's ``np.asarray`` raises npfunc's ConcretizationError /
BatchedConversionError, whose message names the ``npfunc.scipy.stats``
function to call instead (``core.dispatch.TWINS`` maps the code objects of
SciPy's methods to it).  ``scipy.stats`` is not imported for this: the
table is filled when it is (now, or when the user imports it later).
"""
from __future__ import annotations

from ...core import dispatch as _dispatch
from ...core.imports import when_imported

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


def install() -> None:
    """Fill the table now, or as soon as ``scipy.stats`` is imported."""
    when_imported("scipy.stats", register)
