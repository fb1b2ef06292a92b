"""Exact, hashable keys for Python values: equal keys mean interchangeable values.

``==`` and ``hash`` are too coarse for caching a computation: ``True == 1``,
``0.0 == -0.0`` and ``0.0 == 0`` would share one entry although they give
different dtypes or signs, and ``nan != nan`` would never hit.  ``exact_key``
keys a value by its type and exact bits; arrays by shape, dtype and bytes.

>>> exact_key(True) == exact_key(1), exact_key(0.0) == exact_key(-0.0)
(False, False)
>>> exact_key(float("nan")) == exact_key(float("nan"))
True
"""
from __future__ import annotations

import numpy as np

__all__ = ["exact_key", "Unhashable"]


class Unhashable(TypeError):
    """A value with no exact key (an object that is neither hashable nor an array)."""


def exact_key(value):
    """A hashable key that is equal for two values only when they are interchangeable."""
    t = type(value)
    if t is float:
        return (float, value.hex())  # keeps the sign of zero; every NaN the same
    if t is int or t is bool or t is str or value is None or t is bytes:
        return (t, value)
    if t is complex:
        return (complex, value.real.hex(), value.imag.hex())
    if t is tuple or t is list:
        return (t,) + tuple(exact_key(v) for v in value)
    if t is dict:
        return (dict,) + tuple((exact_key(k), exact_key(v)) for k, v in value.items())
    if t is slice:
        return (slice, exact_key(value.start), exact_key(value.stop), exact_key(value.step))
    if isinstance(value, np.ndarray):
        return (np.ndarray, value.shape, value.dtype.str, np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        return (t, value.dtype.str, value.tobytes())
    if isinstance(value, np.dtype):
        return (np.dtype, value.str)
    try:
        hash(value)
    except TypeError:
        raise Unhashable(f"{t.__name__} has no hash") from None
    if isinstance(value, float):  # float subclasses
        return (t, float(value).hex())
    return (t, value)
