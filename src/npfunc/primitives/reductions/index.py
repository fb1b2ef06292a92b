"""Reductions whose outputs carry no derivative (bool and integer results):
all, any, count_nonzero (axis tuples) and argmax, argmin (one axis or the
flattened array), with their batching rules.  Ties in argmax/argmin pick
the first occurrence, as NumPy does.
"""
from __future__ import annotations

import numpy as np

from ...core.dispatch import implements_reduce
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...interpreters.batching import move_to_front
from ..elementwise.arithmetic import astype, isnan, where
from ..families import composite, normalize_axes, reduction_batch
from .basic import _check_unsupported
from ..sampling import FLOATS, array
from .samples import arg_samples, logical_samples
from ..shape.basic import reshape

# ---- all / any / count_nonzero ----------------------------------------------------------


def _logical_samples(rng):
    out = []
    for dt in FLOATS:
        x = np.round(array(rng, (2, 3, 4), dt))  # integers in [-2, 2]: several zeros
        out += [Sample(x, axes=(0, 1, 2), keepdims=False), Sample(x, axes=(1,), keepdims=False),
                Sample(x, axes=(0, 2), keepdims=True)]
    mask = rng.uniform(size=(3, 4)) > 0.3
    out += [Sample(mask, axes=(1,), keepdims=False, label="bool"),
            Sample(np.ones((2, 3), bool), axes=(0, 1), keepdims=True, label="all true"),
            Sample(np.arange(6).reshape(2, 3), axes=(0,), keepdims=False, label="int"),
            Sample(np.zeros((2, 0)), axes=(1,), keepdims=False, label="empty")]
    return out


def _nondiff_reduction(name, impl, notes=""):
    prim = Primitive(name, impl, differentiable=False, samples=_logical_samples, notes=notes)
    prim.batch = reduction_batch(prim)
    return prim


_all = _nondiff_reduction("reduce_all", lambda x, *, axes, keepdims: np.all(x, axis=axes, keepdims=keepdims),
                          notes="a boolean output: no derivative")
_any = _nondiff_reduction("reduce_any", lambda x, *, axes, keepdims: np.any(x, axis=axes, keepdims=keepdims),
                          notes="a boolean output: no derivative")
_count = _nondiff_reduction(
    "count_nonzero",
    lambda x, *, axes, keepdims: np.asarray(np.count_nonzero(x, axis=axes, keepdims=keepdims), np.intp),
    notes="an integer count: no derivative")


def _logical(prim, name, a, axis, out, keepdims, where_, fill):
    _check_unsupported(name, out=out)
    if where_ is not None and where_ is not True:
        a = where(where_, astype(a, bool), fill)
    axes = normalize_axes(axis, ndim_of(a), name)
    return prim.bind(a, axes=axes, keepdims=bool(keepdims))


@composite(np.all, samples=logical_samples(), differentiable=False)
def all(a, axis=None, out=None, keepdims=False, *, where=None):
    """``np.all`` for traced and plain values (no derivative)."""
    return _logical(_all, "all", a, axis, out, keepdims, where, True)


@composite(np.any, samples=logical_samples(), differentiable=False)
def any(a, axis=None, out=None, keepdims=False, *, where=None):
    """``np.any`` for traced and plain values (no derivative)."""
    return _logical(_any, "any", a, axis, out, keepdims, where, False)


@composite(np.count_nonzero, samples=logical_samples(where=False), differentiable=False, scalars=True)
def count_nonzero(a, axis=None, *, keepdims=False):
    """``np.count_nonzero`` for traced and plain values (an integer, no derivative)."""
    if not isinstance(a, Tracer) and axis is None and not keepdims:
        return np.count_nonzero(a)
    axes = normalize_axes(axis, ndim_of(a), "count_nonzero")
    return _count.bind(a, axes=axes, keepdims=bool(keepdims))


@implements_reduce(np.logical_and)
def logical_and_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.logical_and.reduce`` for traced values."""
    if initial is not None:
        raise ValueError("np.logical_and.reduce: initial= is not supported on traced values")
    return all(a, axis, out, keepdims, where=where)


@implements_reduce(np.logical_or)
def logical_or_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.logical_or.reduce`` for traced values."""
    if initial is not None:
        raise ValueError("np.logical_or.reduce: initial= is not supported on traced values")
    return any(a, axis, out, keepdims, where=where)


# ---- argmax / argmin -----------------------------------------------------------------

def _arg_batch(prim):
    def batch(vals, dims, *, axis, keepdims):
        (x,), (d,) = vals, dims
        if axis is not None:
            out_dim = d if keepdims else d - (axis < d)
            return prim.bind(x, axis=axis + (axis >= d), keepdims=keepdims), out_dim
        x = move_to_front(x, d)
        shape = shape_of(x)
        out = prim.bind(reshape(x, (shape[0], -1)), axis=1, keepdims=False)
        if keepdims:
            out = reshape(out, (shape[0],) + (1,) * (len(shape) - 1))
        return out, 0

    return batch


def _arg_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x, axis=None, keepdims=False), Sample(x, axis=1, keepdims=False),
                Sample(x, axis=2, keepdims=True), Sample(x, axis=None, keepdims=True)]
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    out += [Sample(ties, axis=1, keepdims=False, label="ties: first wins"),
            Sample(ties, axis=None, keepdims=False, label="ties: first wins"),
            Sample(np.arange(6).reshape(2, 3) % 4, axis=0, keepdims=False, label="int")]
    return out


def _arg_prim(name, np_fn):
    def impl(x, *, axis, keepdims):
        return np.asarray(np_fn(x, axis=axis, keepdims=keepdims))  # (arrays: the batching rule reshapes them)

    prim = Primitive(name, impl, differentiable=False, samples=_arg_samples,
                     notes="an integer index: no derivative; ties give the first occurrence")
    prim.batch = _arg_batch(prim)
    return prim


_argmax = _arg_prim("argmax", np.argmax)
_argmin = _arg_prim("argmin", np.argmin)


def _arg(prim, name, a, axis, out, keepdims):
    _check_unsupported(name, out=out)
    if axis is not None:
        (axis,) = normalize_axes(int(axis), ndim_of(a), name)
    if not isinstance(a, Tracer):
        return getattr(np, name)(a, axis=axis, keepdims=bool(keepdims))
    return prim.bind(a, axis=axis, keepdims=bool(keepdims))


@composite(np.argmax, samples=arg_samples(), differentiable=False, scalars=True)
def argmax(a, axis=None, out=None, *, keepdims=False):
    """``np.argmax`` for traced and plain values (no derivative; first of tied entries)."""
    return _arg(_argmax, "argmax", a, axis, out, keepdims)


@composite(np.argmin, samples=arg_samples(), differentiable=False, scalars=True)
def argmin(a, axis=None, out=None, *, keepdims=False):
    """``np.argmin`` for traced and plain values (no derivative; first of tied entries)."""
    return _arg(_argmin, "argmin", a, axis, out, keepdims)


def _nanarg(fn, name, fill, a, axis, out, keepdims):
    _check_unsupported(name, out=out)
    if dtype_of(a).kind not in "fc":
        return fn(a, axis, keepdims=keepdims)
    nan = isnan(a)
    if not isinstance(a, Tracer) and np.any(np.all(nan, axis=axis)):
        raise ValueError(f"np.{name}: all-NaN slice encountered")
    return fn(where(nan, fill, a), axis, keepdims=keepdims)


@composite(np.nanargmax, samples=arg_samples(nans=True), differentiable=False, scalars=True)
def nanargmax(a, axis=None, out=None, *, keepdims=False):
    """``np.nanargmax``: the index of the largest non-NaN entry."""
    return _nanarg(argmax, "nanargmax", -np.inf, a, axis, out, keepdims)


@composite(np.nanargmin, samples=arg_samples(nans=True), differentiable=False, scalars=True)
def nanargmin(a, axis=None, out=None, *, keepdims=False):
    """``np.nanargmin``: the index of the smallest non-NaN entry."""
    return _nanarg(argmin, "nanargmin", np.inf, a, axis, out, keepdims)

