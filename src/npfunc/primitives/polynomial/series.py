"""The ``numpy.polynomial`` package on traced values: the module functions of
``polynomial``, ``chebyshev``, ``legendre``, ``hermite``, ``hermite_e`` and
``laguerre`` (``chebval``, ``chebfit``, ``chebder``, ``chebvander2d`` ...),
``polyutils``, and the ``Polynomial``, ``Chebyshev``, ``Legendre``,
``Hermite``, ``HermiteE`` and ``Laguerre`` series (evaluation, ``fit``,
``deriv``, ``integ``, ``roots``, arithmetic).

Why this route.  These functions are plain Python, not NumPy array
functions, so a traced argument never reaches npfunc's dispatch; and they
convert their inputs with ``np.array`` and fill ``np.empty`` buffers item by
item, so they stop on traced values.  Rewriting each of them (about 180)
would duplicate NumPy and drift from it.  Instead, once NumPy loads
``numpy.polynomial`` (``import npfunc`` does not import it), npfunc replaces
each public function of those modules (and the series classes' ``_val``,
``_fit``, ``_der`` ... hooks) by an entry that calls NumPy's function itself
for plain arguments -- nothing changes without traced values -- and runs a
copy of NumPy's own code under ``primitives/numpy_code.py`` when an argument
is traced.  The series classes' methods are NumPy's and reach the traced
path through those functions; ``fit`` also runs as NumPy code when traced
(its domain test then batches when the batch agrees on it).  Values are NumPy's bit for
bit, every keyword is NumPy's, and the fits differentiate through the least
squares solve (``primitives/linalg/lstsq.py``) with respect to ``x``, ``y``
and ``w``, including the data-dependent domain ``Polynomial.fit`` chooses
(``[min(x), max(x)]``).

A name bound before ``import npfunc`` (``from numpy.polynomial.chebyshev
import chebval`` executed first) keeps NumPy's unhooked function.

>>> import numpy as np, npfunc
>>> from numpy.polynomial import Chebyshev
>>> x = np.linspace(-1.0, 1.0, 20)
>>> def peak(y):            # where the fitted cubic has its value at 0.5
...     return Chebyshev.fit(x, y, 3)(0.5)
>>> g = npfunc.grad(peak)(np.exp(x))
>>> bool(np.isclose(g.sum(), 1.0))   # a fit reproduces constants: weights sum to 1
True
"""
from __future__ import annotations

import importlib

import numpy as np

from ...core.dispatch import implements
from ...core.imports import when_imported
from ...core.primitive import COMPOSITES
from ..linalg.lstsq import least_squares
from ..numpy_code import (HOOKED, Namespace, TracedNumpy, copy_function, hook, numpy_code, run,
                          traced_entry, writable)

FAMILIES = (  # module, prefix, series class
    ("polynomial", "poly", "Polynomial"), ("chebyshev", "cheb", "Chebyshev"),
    ("legendre", "leg", "Legendre"), ("hermite", "herm", "Hermite"),
    ("hermite_e", "herme", "HermiteE"), ("laguerre", "lag", "Laguerre"),
)
_SKIP = {"format_float"}  # printing: never sees a traced value usefully

_NP = TracedNumpy(linalg=Namespace(np.linalg, lstsq=least_squares))
#: module name -> {function name: copy of NumPy's function}, filled by ``install``
CODE: dict[str, dict] = {}
_PU = None  # polyutils as the copies see it


# ---- companion matrices -----------------------------------------------------------------
# NumPy writes the sub- and super-diagonals through views of a flattened buffer
# (``mat.reshape(-1)[1::n + 1]``), which a traced buffer cannot alias yet.  The
# matrix is a constant of the degree plus a last column computed from the
# coefficients, so the constant comes from NumPy's own function on coefficients
# that leave the last column alone, and the column from NumPy's expression.

def _scaled_cheb(c, n):
    scl = np.array([1.] + [np.sqrt(.5)] * (n - 1))
    return (c[:-1] / c[-1]) * (scl / scl[-1]) * .5


def _scaled_leg(c, n):
    scl = 1. / np.sqrt(2 * np.arange(n) + 1)
    return (c[:-1] / c[-1]) * (scl / scl[-1]) * (n / (2 * n - 1))


def _herm_scale(n, two):
    steps = 1. / np.sqrt(two * np.arange(n - 1, 0, -1))
    return np.multiply.accumulate(np.hstack((1., steps)))[::-1]


_COLUMN = {  # prefix -> the term NumPy subtracts from the last column (Laguerre: adds)
    "poly": lambda c, n: c[:-1] / c[-1],
    "cheb": _scaled_cheb,
    "leg": _scaled_leg,
    "herm": lambda c, n: _herm_scale(n, 2.) * c[:-1] / (2.0 * c[-1]),
    "herme": lambda c, n: _herm_scale(n, 1.) * c[:-1] / c[-1],
    "lag": lambda c, n: (c[:-1] / c[-1]) * n,
}


def _companion(module, prefix):
    name = f"{prefix}companion"
    original = getattr(getattr(module, name), "npfunc_original", getattr(module, name))
    small = CODE[module.__name__][name]  # NumPy's code: checks and the 1 x 1 case
    column = _COLUMN[prefix]

    def companion(c):
        [c] = _PU.as_series([c])
        if len(c) <= 2:
            return small(c)
        n = len(c) - 1
        neutral = np.zeros(n + 1, c.dtype)
        neutral[-1] = 1
        mat = writable(original(neutral))
        if prefix == "lag":
            mat[:, -1] += column(c, n)
        else:
            mat[:, -1] -= column(c, n)
        return mat

    companion.__name__ = companion.__qualname__ = name
    return companion


def _modules():
    """(module, prefix, series class) of the six families."""
    return [(importlib.import_module(f"numpy.polynomial.{m}"), prefix,
             getattr(importlib.import_module("numpy.polynomial"), cls)) for m, prefix, cls in FAMILIES]


def _copy_code(pu) -> None:
    global _PU
    CODE[pu.__name__] = copies = numpy_code(pu, {"np": _NP})
    _PU = Namespace(pu, **copies)
    for module, prefix, _ in _modules():
        copies = CODE[module.__name__] = numpy_code(module, {"np": _NP, "pu": _PU})
        name = f"{prefix}companion"
        copies[name] = copies[f"{prefix}val"].__globals__[name] = _companion(module, prefix)


def _dispatched(target, copy, label):
    """Functions NumPy does dispatch (``polyval2d``, ``polygrid2d``): registered as usual."""

    def fn(*args, **kwargs):
        return run(copy, args, kwargs, label)

    fn.__name__ = fn.__qualname__ = target.__name__
    fn.composite = COMPOSITES.get(f"np.polynomial.polynomial.{target.__name__}")  # its samples
    implements(target)(fn)
    return fn


def _hook_functions(pu) -> None:
    entries = {}
    for module in [pu] + [m for m, _, _ in _modules()]:
        copies = CODE[module.__name__]
        for name in module.__all__:
            value = getattr(module, name)
            if name in _SKIP or not callable(value) or isinstance(value, type):
                continue  # constants, classes
            original = getattr(value, "npfunc_original", value)
            owner = CODE.get(getattr(original, "__module__", None), {})
            copy = copies.get(name) or owner.get(getattr(original, "__name__", None))
            if copy is None:
                continue
            label = f"{module.__name__}.{name}"
            if hasattr(value, "_implementation"):
                entries[original] = _dispatched(value, copy, label)
            else:
                entries[original] = hook(module, name, copy, label)
    for _, _, cls in _modules():
        for attr, value in list(vars(cls).items()):
            if isinstance(value, staticmethod):
                fn = getattr(value.__func__, "npfunc_original", value.__func__)
                if fn in entries:
                    setattr(cls, attr, staticmethod(entries[fn]))


def _hook_fit() -> None:
    """``Series.fit`` picks its domain from the data (``if domain[0] == domain[1]``):
    run as NumPy code, that test may be batched when the batch agrees on it."""
    polybase = importlib.import_module("numpy.polynomial._polybase")
    fit = vars(polybase.ABCPolyBase)["fit"].__func__
    fit = getattr(fit, "npfunc_original", fit)
    namespace = dict(vars(polybase), np=_NP, pu=_PU)
    entry = traced_entry(fit, copy_function(fit, namespace))
    polybase.ABCPolyBase.fit = classmethod(entry)
    HOOKED["numpy.polynomial._polybase.ABCPolyBase.fit"] = entry


def install(package) -> None:
    """Hook ``numpy.polynomial`` (run once it is imported: ``import npfunc``
    does not import it, NumPy loads it on first use)."""
    pu = importlib.import_module("numpy.polynomial.polyutils")
    _copy_code(pu)
    _hook_functions(pu)
    _hook_fit()


when_imported("numpy.polynomial", install)
