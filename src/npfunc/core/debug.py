"""Debugging aids: find the first operation that makes a NaN, and look inside
traced values.

>>> import numpy as np, npfunc
>>> with npfunc.debug_nans():
...     npfunc.grad(lambda x: np.log(x - 2.0))(np.float64(1.0))
Traceback (most recent call last):
...
FloatingPointError: grad(f): debug_nans: 'log' made a NaN from inputs without NaN...
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .context import describe_stack
from .tracer import Tracer


class _Flags(threading.local):  # per thread, like the transform stack
    nans = False


FLAGS = _Flags()
#: How many ``debug_nans()`` blocks are open in any thread.  The hot paths read
#: ``NAN_CHECKS[0] and FLAGS.nans``: a list item costs a fraction of reading a
#: thread-local attribute, and is 0 unless someone is debugging.
NAN_CHECKS = [0]


@contextlib.contextmanager
def debug_nans(enabled: bool = True):
    """Within the block, raise ``FloatingPointError`` at the first operation
    that makes a NaN from inputs without one -- in the function or in any
    derivative rule.  Primitives are named with the transforms around them;
    NumPy arithmetic inside a rule raises NumPy's own error (``invalid value``)
    whose traceback points at the rule.  Infinities are legitimate values
    (``log(0)``, ``sqrt``'s derivative at 0) and are not reported."""
    previous, FLAGS.nans = FLAGS.nans, enabled
    NAN_CHECKS[0] += 1
    try:
        if enabled:
            with np.errstate(invalid="raise"):
                yield
        else:
            yield
    finally:
        FLAGS.nans = previous
        NAN_CHECKS[0] -= 1


def _has_nan(value) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_nan(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic, float, complex)):
        value = np.asarray(value)
        return value.dtype.kind in "fc" and bool(np.isnan(value).any())
    return False


def _report(prim, args) -> FloatingPointError:
    return FloatingPointError(
        f"{describe_stack()}: debug_nans: {prim.name!r} made a NaN from inputs without NaN "
        f"(argument shapes {[np.shape(a) for a in args]}). If it is in a derivative rule, the "
        "function is not differentiable there (see docs/conventions.md); the 'double where' "
        "pattern keeps such points out of a branch that is not taken.")


def apply_checked(prim, args, params):
    """``prim.impl`` with NaN checks (used by ``bind`` while debug_nans is on)."""
    try:
        out = prim.impl(*args, **params)
    except FloatingPointError as err:
        raise _report(prim, args) from err
    if _has_nan(out) and not any(_has_nan(a) for a in args):
        raise _report(prim, args)
    return out


def debug_unwrap(x, *, recurse: bool = True):
    """The value inside a traced ``x``: the primal of a differentiated value,
    the stacked array (with its batch axis) of a batched one.  With
    ``recurse`` (the default), unwraps every level down to a NumPy array.
    For debugging only: the result carries no derivative or batch information."""
    while isinstance(x, Tracer):
        x = getattr(x, "primal", None) if hasattr(x, "primal") else x.val
        if not recurse:
            break
    return x
