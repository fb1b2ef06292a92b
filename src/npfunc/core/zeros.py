"""Symbolic zeros.

A tangent or cotangent that is known to be zero is the singleton ``zero``
instead of an array.  Rules skip it, interpreters never wrap it, and it only
becomes an array (``instantiate``) at an API boundary, where the primal's
shape and dtype are known.  Independence of an output from an input is
therefore a structural fact, which is what ``strict=True`` checks.
"""
from __future__ import annotations

import numpy as np

from .debug import NAN_CHECKS
from .lazy import deferred


class Zero:
    """The symbolic zero.  Use the module-level singleton ``zero``."""

    __slots__ = ()
    _instance: "Zero | None" = None

    def __new__(cls) -> "Zero":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "zero"

    def __reduce__(self):
        return (Zero, ())


zero = Zero()


def add_any(a, b):
    """Sum of two tangents/cotangents where either may be symbolic zero."""
    if a is zero:
        return b
    if b is zero:
        return a
    ta = type(a)
    if ta is type(b) and (ta is np.float64 or ta is np.ndarray and a.shape == b.shape and a.dtype == b.dtype) \
            and not NAN_CHECKS[0]:
        return a + b  # what np.add gives them (the commonest accumulation, without the dispatch)
    return _add(a, b)


_add = deferred("npfunc.primitives.elementwise.arithmetic:add", globals(), "_add")
