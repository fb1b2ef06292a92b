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

_CONTINUOUS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf", "entropy")
_DISCRETE = ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "ppf", "entropy")
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
    for m in ("logpdf", "pdf", "entropy"):
        for obj in (st.multivariate_normal, st.dirichlet):
            code = _code(getattr(type(obj), m, None))
            if code is not None:
                table.setdefault(code, f"npfunc.scipy.stats.{type(obj).__name__[:-4]}.{m}")
    for m in ("logpmf", "pmf"):
        code = _code(getattr(type(st.multinomial), m, None))
        if code is not None:
            table[code] = f"npfunc.scipy.stats.multinomial.{m}"
    for m in ("__init__", "evaluate", "logpdf", "pdf", "__call__"):
        code = _code(getattr(st.gaussian_kde, m, None))
        if code is not None:
            table[code] = "npfunc.scipy.stats.gaussian_kde (same arguments)"
    for name in ("rankdata",):
        code = _code(getattr(st, name, None))
        if code is not None:
            table[code] = f"npfunc.scipy.stats.{name}"
    _dispatch.TWINS.update(table)


def install() -> None:
    """Fill the table now, or as soon as ``scipy.stats`` is imported."""
    when_imported("scipy.stats", register)
