"""Reductions: sum, max, min (primitives) and mean (composite).

``max``/``min`` split the derivative equally among tied entries, like JAX.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import implements, implements_reduce
from ..core.errors import UnsupportedOperationError
from ..core.primitive import Sample
from ..core.values import dtype_of, ndim_of, shape_of
from .elementwise import astype, equal, multiply
from .families import expand_reduced, normalize_axes, reduction
from .sampling import FLOATS, array


def _reduction_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x, axes=(0, 1, 2), keepdims=False),
                Sample(x, axes=(1,), keepdims=False),
                Sample(x, axes=(0, 2), keepdims=True),
                Sample(array(rng, (3,), dt), axes=(0,), keepdims=True)]
    out.append(Sample(array(rng, ()), axes=(), keepdims=False, label="0-d"))
    return out


def _tied_samples(rng):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    return _reduction_samples(rng) + [Sample(x, axes=(1,), keepdims=False, label="ties", kink=True),
                                      Sample(x, axes=(0, 1), keepdims=True, label="ties", kink=True)]


# ---- sum ---------------------------------------------------------------------------

def _sum_jvp(primals, tangents, out, *, axes, keepdims):
    return reduce_sum(tangents[0], axes=axes, keepdims=keepdims)


def _sum_vjp(g, primals, out, needs, *, axes, keepdims):
    return (expand_reduced(g, axes, keepdims, shape_of(primals[0])),)


_sum = reduction("reduce_sum", lambda x, *, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims),
                 jvp=_sum_jvp, vjp=_sum_vjp, samples=_reduction_samples)


def reduce_sum(x, *, axes, keepdims=False):
    """Sum over ``axes`` (a tuple of non-negative ints), for rule writers."""
    if not axes and not keepdims:
        return x
    return _sum.bind(x, axes=axes, keepdims=keepdims)


def _check_unsupported(name, **given):
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise UnsupportedOperationError(
            f"np.{name}: argument {bad[0]!r} is not supported on traced values; "
            "apply it separately (e.g. np.where for 'where', an astype for 'dtype')")


@implements(np.sum)
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.sum`` for traced and plain values."""
    _check_unsupported("sum", out=out, initial=initial, where=where)
    if dtype is not None:
        a = astype(a, dtype)
    axes = normalize_axes(axis, ndim_of(a), "sum")
    return reduce_sum(a, axes=axes, keepdims=bool(keepdims))


@implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """``np.mean`` for traced and plain values."""
    _check_unsupported("mean", out=out, where=where)
    shape = shape_of(a)
    axes = normalize_axes(axis, len(shape), "mean")
    if dtype is not None:
        a = astype(a, dtype)
    elif dtype_of(a).kind not in "fc":
        a = astype(a, np.float64)
    count = math.prod(shape[i] for i in axes)
    return reduce_sum(a, axes=axes, keepdims=bool(keepdims)) / count


# ---- max / min ---------------------------------------------------------------------

def _tie_weights(x, out, axes, keepdims):
    """Where each entry equals the extremum, divided by the number of ties."""
    dt = dtype_of(x)
    hits = astype(equal(x, expand_reduced(out, axes, keepdims, shape_of(x))), dt)
    count = reduce_sum(hits, axes=axes, keepdims=True)
    return hits / count


def _extremum_jvp(primals, tangents, out, *, axes, keepdims):
    (x,), (t,) = primals, tangents
    return reduce_sum(multiply(t, _tie_weights(x, out, axes, keepdims)), axes=axes, keepdims=keepdims)


def _extremum_vjp(g, primals, out, needs, *, axes, keepdims):
    (x,) = primals
    return (multiply(expand_reduced(g, axes, keepdims, shape_of(x)), _tie_weights(x, out, axes, keepdims)),)


_max = reduction("reduce_max", lambda x, *, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims),
                 jvp=_extremum_jvp, vjp=_extremum_vjp, samples=_tied_samples,
                 notes="ties split the derivative equally")
_min = reduction("reduce_min", lambda x, *, axes, keepdims: np.min(x, axis=axes, keepdims=keepdims),
                 jvp=_extremum_jvp, vjp=_extremum_vjp, samples=_tied_samples,
                 notes="ties split the derivative equally")


def _extremum(prim, name, a, axis, out, keepdims, initial, where):
    _check_unsupported(name, out=out, initial=initial, where=where)
    axes = normalize_axes(axis, ndim_of(a), name)
    if not axes and not keepdims:
        return a
    return prim.bind(a, axes=axes, keepdims=bool(keepdims))


@implements(np.max, np.amax)
def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.max`` for traced and plain values (ties share the derivative)."""
    return _extremum(_max, "max", a, axis, out, keepdims, initial, where)


@implements(np.min, np.amin)
def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.min`` for traced and plain values (ties share the derivative)."""
    return _extremum(_min, "min", a, axis, out, keepdims, initial, where)


implements_reduce(np.add)(lambda a, axis=0, dtype=None, out=None, keepdims=False:
                          sum(a, axis, dtype, out, keepdims))
implements_reduce(np.maximum)(lambda a, axis=0, dtype=None, out=None, keepdims=False:
                              max(a, axis, out, keepdims))
implements_reduce(np.minimum)(lambda a, axis=0, dtype=None, out=None, keepdims=False:
                              min(a, axis, out, keepdims))
