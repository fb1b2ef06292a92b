"""Guards for NumPy functions whose behaviour depends on array values.

* ``check(x, test, message)``: NumPy raises for some inputs (a zero in
  ``geomspace``, a quantile outside [0, 1], negative ``bincount`` input).
  The check is a primitive, so it runs on the values wherever they exist:
  on the primals under grad and jvp, on the whole batch under vmap (a loop
  over the batch would stop at the first bad element), and on every call of
  a jitted function.  It returns nothing useful and has no derivative.
* ``static_value(x, what, fix)``: the plain value of ``x`` where every
  transform on the stack still has one (grad, jvp, vjp, functionalize), for
  quantities that decide an output's *shape* (the number of bins NumPy's
  ``bins='auto'`` picks).  Such quantities are piecewise constant, so no
  derivative is lost.  Under vmap (one value per batch element) and jit (no
  value while recording) it raises an error naming the function and ``fix``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.primitive import Primitive, Sample
from ..core.tracer import PrimalTracer, Tracer

#: name -> predicate(value, batch_axis) on a plain array: True when the value is acceptable.
TESTS: dict[str, Callable[[np.ndarray, int | None], bool]] = {
    "nonzero": lambda x, d: not np.any(x == 0),
    "nonnegative": lambda x, d: not np.any(x < 0),
    "unit_interval": lambda x, d: bool(np.all((0 <= x) & (x <= 1))),
    "integral": lambda x, d: bool(np.all(x == np.around(x))),
    "finite": lambda x, d: bool(np.all(np.isfinite(x))),
    "true": lambda x, d: bool(np.all(x)),
}


def _fail(error, message):
    where = describe_stack()
    raise error(message if where == "npfunc" else f"{where}: {message}")


def _check_impl(x, *, test, message, error):
    if not TESTS[test](np.asarray(x), None):
        _fail(error, message)
    return np.True_


def _check_batch(vals, dims, *, test, message, error):
    (x,), (d,) = vals, dims
    if not TESTS[test](np.asarray(x), d):
        _fail(error, message)
    return np.True_, None


_check = Primitive(
    "value_check", _check_impl, differentiable=False, batch=_check_batch,
    samples=lambda rng: [
        Sample(np.array([1.0, -2.0]), test="nonzero", message="zero", error=ValueError),
        Sample(np.array([[0.1, 0.5], [0.9, 0.25]]), test="unit_interval", message="outside",
               error=ValueError),
        Sample(np.array([3, 0]), test="nonnegative", message="negative", error=ValueError),
    ],
    notes="raises `error(message)` when `test` fails on the value (on the primal under "
          "grad/jvp, on the whole batch under vmap, on every call under jit); no derivative",
)


def check(x, test: str, message: str, error: type = ValueError) -> None:
    """Raise ``error(message)`` when ``TESTS[test]`` fails on the value of ``x``,
    under whatever transforms are active (see the module notes)."""
    if isinstance(x, Tracer):
        _check.bind(x, test=test, message=message, error=error)
    elif not TESTS[test](np.asarray(x), None):
        _fail(error, message)


def static_value(x, what: str, fix: str):
    """The plain value of ``x`` (descending through grad/jvp/functionalize
    tracers), or an ``UnsupportedOperationError`` that says ``what`` needs
    the value and how to ``fix`` it."""
    while isinstance(x, Tracer):
        if not x._interp.alive:
            raise x._escaped()
        if isinstance(x, PrimalTracer):
            x = x.primal
            continue
        held = getattr(x, "val", None)
        if type(x).__name__ == "FunctionalTracer":
            x = held
            continue
        transform = x._interp.transform
        why = ("records the function once and replays it, so it has no value to decide it with"
               if transform == "jit" else
               "holds one value per batch element, and they could need different shapes")
        raise UnsupportedOperationError(
            f"{describe_stack()}: {what} depends on the values of its input, and {transform} {why}. "
            f"{fix}")
    return x


__all__ = ["check", "static_value", "TESTS"]
