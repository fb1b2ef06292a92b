"""``np.emath`` (``numpy.lib.scimath``): square roots, logarithms, powers and
inverse trigonometric functions that go complex outside the real domain.

NumPy's own code runs on traced values (``numpy_code``): it casts the input to
complex when an entry is outside the real domain (``np.emath.sqrt(-4.0)`` is
``2j``), so the result's dtype depends on the values.  Under ``grad``, ``jvp``
and their compositions the values decide, as in NumPy; under ``vmap`` every
batch element must take the same branch; ``jit``, which records without
values, refuses and says so.  Where a complex result is wanted for every
input, ``np.sqrt(x.astype(complex))`` works under every transform.

>>> import numpy as np, npfunc
>>> npfunc.jvp(np.emath.sqrt, (np.array([-4.0, 4.0]),), (np.ones(2),))[1]
array([0.  -0.25j, 0.25+0.j  ])
"""
from __future__ import annotations

import numpy as np
from numpy.lib import _scimath_impl as _impl

from ..core.primitive import Sample
from .families import composite
from .numpy_code import TracedNumpy, numpy_code, run
from .sampling import FLOATS, array

_NX = TracedNumpy()
_CODE = numpy_code(_impl, {"nx": _NX, "asarray": _NX.asarray, "any": _NX.any, "isreal": _NX.isreal})


def _runner(name: str):
    code = _CODE[name]

    def fn(*args, **kwargs):
        return run(code, args, kwargs, f"np.emath.{name}")

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``np.emath.{name}``: NumPy's own code run on traced values (see {__name__})."
    return fn


def _unary_samples(low: float, high: float, outside: float):
    """Entries inside the real domain (a real result) and, in another sample, one outside it."""
    def samples(rng):
        out = [Sample(array(rng, (2, 3), dt, (low, high))) for dt in FLOATS]
        inside = array(rng, (3,), np.float64, (low, high))
        out.append(Sample(np.append(inside, outside), label="an entry outside the real domain: complex"))
        out.append(Sample(np.float64((low + high) / 2), label="a scalar"))
        return out
    return samples


def _two_argument_samples(rng):
    return [Sample(array(rng, (3,), dt, (1.5, 3.0)), array(rng, (3,), dt, (0.5, 2.0))) for dt in FLOATS] + [
        Sample(np.array([2.0, 3.0]), np.array([-1.5, 0.5]), label="negative argument: complex")]


def _power_samples(rng):
    return [Sample(array(rng, (3,), dt, (0.5, 2.0)), array(rng, (3,), dt, (0.5, 2.0))) for dt in FLOATS] + [
        Sample(np.array([-2.0, 1.5]), np.array([0.5, 1.5]), label="negative base: complex")]


_UNARY = {"sqrt": (0.5, 3.0, -2.0), "log": (0.5, 3.0, -2.0), "log2": (0.5, 3.0, -2.0),
          "log10": (0.5, 3.0, -2.0), "arccos": (-0.8, 0.8, 1.5), "arcsin": (-0.8, 0.8, -1.5),
          "arctanh": (-0.8, 0.8, 1.5)}
for _name, (_low, _high, _outside) in _UNARY.items():
    composite(getattr(np.emath, _name), samples=_unary_samples(_low, _high, _outside))(_runner(_name))
composite(np.emath.logn, samples=_two_argument_samples)(_runner("logn"))
composite(np.emath.power, samples=_power_samples)(_runner("power"))
