"""What every part of ``npfunc.array_api`` shares.

The namespace is written with npfunc's own functions (those ``npfunc.numpy``
exposes), so each of its functions takes plain arrays and traced values
alike and runs under every transform.  What differs between NumPy and the
standard is settled here once: results are arrays, never NumPy scalars; the
only device is ``"cpu"``; buffers made while a transform runs can take
traced writes.
"""
from __future__ import annotations

import numpy as np

from .. import numpy as fnp
from ..core import dispatch
from ..core.context import current_stack
from ..core.tracer import Tracer

CPU = "cpu"


_FUNCTIONS: dict = {}


def fn(name: str):
    """npfunc's implementation of ``np.<name>`` (plain and traced values): the
    function the dispatch tables give NumPy's callable (also for ``np.full`` and
    ``np.asarray``, which ``npfunc.numpy`` leaves as NumPy's own)."""
    found = _FUNCTIONS.get(name)
    if found is None:
        target = getattr(np, name, None)
        found = dispatch.UFUNCS.get(target) or dispatch.FUNCTIONS.get(target) if target is not None else None
        _FUNCTIONS[name] = found = found or getattr(fnp, name)
    return found


def traced(x) -> bool:
    return isinstance(x, Tracer)


def array_out(x):
    """A result as an array: NumPy returns 0-d results as scalars (``np.float64``),
    and npfunc's 0-d traced results stand for those scalars (immutable); the
    standard's are 0-d arrays, which code such as ``xpx.at(r, mask).set(v)``
    updates in place."""
    if isinstance(x, np.generic):
        return np.asarray(x)
    from ..primitives.indexing.aliasing import array_result

    return array_result(x)  # (a traced scalar: a new 0-d array; whoever else holds the scalar keeps it)


def arrays_out(xs):
    return tuple(array_out(x) for x in xs)


def check_device(device, where: str) -> None:
    if device is not None and device != CPU:
        raise ValueError(f"npfunc.array_api.{where}: the only device is 'cpu', got {device!r}")


def check_array(x, where: str, what: str = "x") -> None:
    """The standard's functions take arrays, not Python scalars or lists."""
    if not isinstance(x, (Tracer, np.ndarray, np.generic)):
        raise TypeError(f"npfunc.array_api.{where}: {what} must be an array, got {type(x).__name__} "
                        "(wrap it with xp.asarray)")


def writable_buffer(value):
    """A new array made by a creation function: plain, or, while a transform
    runs, a constant of the innermost transform, so that SciPy-style code that
    fills a buffer with traced values (``out[i] = y``) works.  Integer and
    boolean buffers stay plain: they never hold derivatives, and under
    grad and jvp a traced integer would only cost time."""
    if current_stack() and value.dtype.kind in "fc":
        from ..primitives.shape.like import traced_constant

        return traced_constant(value)
    return value


def normalize_axis(axis: int, ndim: int, where: str) -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise IndexError(f"npfunc.array_api.{where}: axis {axis} is out of bounds for an array of "
                         f"dimension {ndim}")
    return axis % ndim if ndim else 0
