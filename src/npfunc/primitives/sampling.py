"""Builders for the sample inputs every primitive declares.

A ``samples`` entry of a primitive is a function ``rng -> list[Sample]``; the
helpers here build the common ones.  Samples cover float64 and float32,
broadcasting, and the parameters of the primitive (axis, keepdims, ...).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.primitive import Sample

FLOATS = (np.float64, np.float32)

UNARY_SHAPES = ((), (3,), (2, 3))
BINARY_SHAPES = (
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((2, 1, 3), (4, 1)),
    ((), (3,)),
)


def array(rng: np.random.Generator, shape, dtype=np.float64, domain=(-2.0, 2.0)) -> np.ndarray:
    low, high = domain
    return rng.uniform(low, high, size=shape).astype(dtype)


def int8_array(rng, shape) -> np.ndarray:
    """Entries of both signs large enough that an int8 sum or product overflows."""
    return rng.integers(-100, 100, size=shape).astype(np.int8)


def bool_array(rng, shape) -> np.ndarray:
    return rng.uniform(size=shape) > 0.4


def with_nans(rng, shape, dtype=np.float64, domain=(-2.0, 2.0)) -> np.ndarray:
    """A random array with a few NaNs, none of its slices entirely NaN."""
    x = array(rng, shape, dtype, domain)
    flat = x.reshape(-1)
    flat[:: 3] = np.nan
    return x


def unary_samples(domain=(-2.0, 2.0), shapes=UNARY_SHAPES, dtypes=FLOATS) -> Callable:
    def make(rng):
        return [Sample(array(rng, s, dt, domain)) for dt in dtypes for s in shapes]

    return make


def binary_samples(domain=(-2.0, 2.0), domain_y=None, shapes=BINARY_SHAPES, dtypes=FLOATS,
                   scalar: float | None = 1.5) -> Callable:
    domain_y = domain_y or domain

    def make(rng):
        out = []
        for dt in dtypes:
            for sx, sy in shapes:
                out.append(Sample(array(rng, sx, dt, domain), array(rng, sy, dt, domain_y)))
        if scalar is not None:
            out.append(Sample(array(rng, (3,), np.float64, domain), scalar, label="python scalar y"))
            out.append(Sample(scalar, array(rng, (3,), np.float64, domain_y), label="python scalar x"))
        out.append(Sample(array(rng, (3,), np.float32, domain), array(rng, (3,), np.float64, domain_y),
                          label="mixed precision"))
        return out

    return make


def sequence_call(target: Callable) -> Callable:
    """``target`` (``np.concatenate``, ``np.vstack`` ...) called with the sample's
    arrays as one list, as users call it, so each array is an argument the
    generated tests differentiate and batch."""
    def call(*arrays, **params):
        return target(list(arrays), **params)

    call.__name__ = f"{getattr(target, '__name__', 'call')}_of_list"
    return call
