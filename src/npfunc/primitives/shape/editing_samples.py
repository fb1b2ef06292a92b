"""Registry samples of ``editing.py`` (append, insert, delete, resize,
trim_zeros, block), kept apart so the definitions stay short.

Positions are passed as ints, slices or lists (static) unless a traced
position is meant: an integer array argument is batched by the generated
vmap test, one position per batch element.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..sampling import FLOATS, array


def append_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt), array(rng, (4,), dt), axis=None),
                Sample(array(rng, (2, 3), dt), array(rng, (1, 3), dt), axis=0),
                Sample(array(rng, (2, 3), dt), array(rng, (2, 2), dt), axis=1)]
    out += [Sample(array(rng, (3,), np.float32), array(rng, (2,)), axis=None, label="float32 with float64"),
            Sample(array(rng, (3,)), 2.5, axis=None, label="python scalar")]
    return out


def insert_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5,), dt), 2, array(rng, (), dt)),
                Sample(array(rng, (5,), dt), 1, array(rng, (3,), dt), label="several values at one index"),
                Sample(array(rng, (2, 3), dt), [0, 3, 1, 3], array(rng, (2, 4), dt), axis=1,
                       label="repeated, unsorted indices"),
                Sample(array(rng, (3, 2), dt), -1, array(rng, (2,), dt), axis=0, label="negative index, row")]
    out += [Sample(array(rng, (2, 3)), slice(0, 3, 2), array(rng, (2,)), axis=1, label="slice"),
            Sample(array(rng, (4,)), np.array([4, 0, 2]), array(rng, (3,)), label="traced positions"),
            Sample(array(rng, (2, 4)), np.array(3), array(rng, (2,)), axis=1, label="traced position"),
            Sample(np.arange(4), [1], np.array([2.7, 3.2]), label="integer array, float values")]
    return out


def delete_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5,), dt), 1), Sample(array(rng, (3, 4), dt), [0, 2, 2], axis=1,
                                                        label="repeated"),
                Sample(array(rng, (3, 4), dt), slice(None, None, -2), axis=1, label="negative step")]
    out += [Sample(array(rng, (2, 3)), -1, axis=None, label="flattened, negative"),
            Sample(array(rng, (4, 2)), [True, False, False, True], axis=0, label="boolean mask"),
            Sample(array(rng, (3, 4)), np.array(2), axis=1, label="traced position"),
            Sample(array(rng, (4,)), [], label="nothing")]
    return out


def resize_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt), new_shape=(4, 4)), Sample(array(rng, (5,), dt), new_shape=3)]
    out += [Sample(array(rng, (3,)), new_shape=(2, 0), label="empty result"),
            Sample(array(rng, (0,)), new_shape=(2,), label="empty input"),
            Sample(array(rng, (6,)), new_shape=(2, 3), label="same size")]
    return out


def trim_zeros_call(x, *, trim, size, fill_value=0, lead=2, trail=1):
    """``x`` (nonzero entries) padded with exact zeros, then trimmed to ``size``
    entries: the samples of the fixed-size form, which every transform runs."""
    from ...numpy import trim_zeros

    return trim_zeros(np.pad(x, (lead, trail)), trim, size=size, fill_value=fill_value)


def trim_zeros_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (4,), dt, (0.5, 2.0))
        out += [Sample(x, trim="fb", size=4), Sample(x, trim="f", size=6, fill_value=-1),
                Sample(x, trim="b", size=3)]
    out += [Sample(np.array([0.5, 0.0, 1.5]), trim="fb", size=2, lead=0, trail=0, label="inner zero"),
            Sample(array(rng, (3,)), trim="bf", size=0, label="size 0")]
    return out


def block_call(a, b, c, d):
    return np.block([[a, b], [c, d]])


def block_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 2), dt), array(rng, (2, 1), dt), array(rng, (1, 2), dt),
                       array(rng, (1, 1), dt)),
                Sample(array(rng, (2,), dt), array(rng, (3,), dt), array(rng, (4,), dt), array(rng, (1,), dt),
                       label="1-d blocks become rows")]
    out.append(Sample(array(rng, (1, 2), np.float32), array(rng, (1, 1)), array(rng, (2, 2), np.float32),
                      array(rng, (2, 1), np.float32), label="mixed precision"))
    return out
