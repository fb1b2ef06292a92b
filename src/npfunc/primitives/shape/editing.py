"""Adding and removing entries: ``append``, ``insert``, ``delete``, ``resize``,
``trim_zeros`` and ``block``.

All are gathers from (concatenations of) their inputs, so every output entry
carries the derivative of the entry it came from and every transform
applies.  Positions may be traced where the output's shape stays fixed
(``np.insert`` at traced indices, ``np.delete`` of one traced index, under
vmap one position per batch element).  ``trim_zeros`` keeps a number of
entries that depends on the values: it works where values are concrete
(grad, jvp, vjp) and raises ``DataDependentShapeError`` under vmap and jit,
where npfunc's ``size=`` keyword gives a fixed length.
"""
from __future__ import annotations

import numpy as np

from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ..data_dependent import as_array, concrete, ensure, fixed_size, is_traced
from ..elementwise.arithmetic import astype, equal, less, minimum, where
from ..families import composite, composite_via, normalize_axes
from ..indexing.gather import getitem, take
from ..reductions.basic import sum as reduce_sum
from ..reductions.index import any as any_
from ..reductions.index import argmax
from .basic import broadcast_to, concatenate, concatenate_arrays, moveaxis, ravel, reshape
from .editing_samples import (append_samples, block_call, block_samples, delete_samples, insert_samples,
                              resize_samples, trim_zeros_call, trim_zeros_samples)


def _flat_axis(arr, axis, fn_name):
    arr = as_array(arr)
    if axis is None:
        return (ravel(arr) if ndim_of(arr) != 1 else arr), 0
    return arr, normalize_axes(axis, ndim_of(arr), fn_name)[0]


def _along(axis, index):
    return (slice(None),) * axis + (index,)


# ---- append -------------------------------------------------------------------------------

@composite(np.append, samples=append_samples)
def append(arr, values, axis=None):
    """``np.append`` for traced and plain values (a concatenation)."""
    arr = as_array(arr)
    if axis is None:
        return concatenate([ravel(arr) if ndim_of(arr) != 1 else arr, ravel(as_array(values))], axis=0)
    return concatenate([arr, as_array(values)], axis=axis)


# ---- insert -------------------------------------------------------------------------------

def _int_index(obj, fn_name, fix):
    """A traced ``obj`` as an integer index (booleans select positions: data-dependent)."""
    kind = dtype_of(obj).kind
    if kind == "b":
        if ndim_of(obj) != 1:
            raise ValueError(f"boolean array argument obj to {fn_name} must be one dimensional")
        return np.flatnonzero(concrete(obj, f"np.{fn_name}(arr, mask)", fix))
    if kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    return obj


def _insert_positions(indices, n: int, axis: int):
    """Where each inserted value lands (NumPy's order: stable by index, then by
    argument order), and the gather index of the result from ``[arr, values]``."""
    from ..sorting import _invert, argsort

    count = shape_of(indices)[0]
    indices = ensure(indices, "in_range", f"index out of bounds for axis {axis} with size {n}", IndexError,
           low=-n, high=n + 1)
    indices = where(less(indices, 0), indices + n, indices)
    rank = _invert.bind(argsort(indices, kind="stable"), axis=0)
    land = indices + rank  # positions of the new entries in the result, all distinct
    total = np.arange(n + count)
    hits = equal(reshape(total, (-1, 1)), reshape(land, (1, -1)))  # (result, new entry)
    is_new = any_(hits, axis=1)
    which = argmax(hits, axis=1)
    before = reduce_sum(less(reshape(land, (1, -1)), reshape(total, (-1, 1))), axis=1)
    return where(is_new, n + which, total - before)


@composite(np.insert, samples=insert_samples)
def insert(arr, obj, values, axis=None):
    """``np.insert`` for traced and plain values: ``obj`` an int, a slice, a
    sequence of ints (traced ones too) or a boolean mask; ``values`` cast to
    ``arr``'s dtype and broadcast as NumPy does."""
    if not is_traced(arr, obj, values):
        return np.insert(arr, obj, values, axis=axis)
    arr, axis = _flat_axis(arr, axis, "insert")
    shape, dtype = tuple(shape_of(arr)), dtype_of(arr)
    n = shape[axis]
    if isinstance(obj, slice):
        indices = np.arange(*obj.indices(n), dtype=np.intp)
    elif isinstance(obj, Tracer):
        indices = _int_index(obj, "insert", "Pass the positions as integers (a fixed number of them).")
    else:
        indices = np.array(obj)
        if indices.dtype == bool:
            if indices.ndim != 1:
                raise ValueError("boolean array argument obj to insert must be one dimensional")
            indices = np.flatnonzero(indices)
        elif indices.size == 0 and not isinstance(obj, np.ndarray):
            indices = indices.astype(np.intp)
    if ndim_of(indices) > 1:
        raise ValueError("index array argument obj to insert must be one dimensional or scalar")
    values = as_array(values)
    values = astype(values, dtype) if dtype_of(values) != dtype else values
    nd = len(shape)
    if int(np.prod(shape_of(indices))) == 1:  # NumPy's single-index rules for the values
        if ndim_of(values) < nd:
            values = reshape(values, (1,) * (nd - ndim_of(values)) + tuple(shape_of(values)))
        if ndim_of(indices) == 0:  # as NumPy: arr[:, k] = values, not arr[:, [k]]
            values = moveaxis(values, 0, axis)
        count = shape_of(values)[axis]
        values = broadcast_to(values, shape[:axis] + (count,) + shape[axis + 1:])
        if not isinstance(indices, Tracer):
            index = int(indices.reshape(()))
            if index < -n or index > n:
                raise IndexError(f"index {obj} is out of bounds for axis {axis} with size {n}")
            index += n if index < 0 else 0
            return concatenate_arrays([getitem(arr, _along(axis, slice(None, index))), values,
                                       getitem(arr, _along(axis, slice(index, None)))], axis)
        indices = broadcast_to(reshape(indices, (1,)), (count,))  # all at one traced position
    else:
        count = shape_of(indices)[0]
        target = shape[:axis] + (count,) + shape[axis + 1:]
        vshape = tuple(shape_of(values))
        if len(vshape) > len(target):  # NumPy drops leading length-1 axes of the values
            values = reshape(values, vshape[len(vshape) - len(target):])
        values = broadcast_to(values, target)
    gather = _insert_positions(indices, n, axis)
    return take(concatenate_arrays([arr, values], axis), gather, axis=axis)


# ---- delete -------------------------------------------------------------------------------

_DELETE_FIX = ("Delete one position per call (np.delete(arr, i) with a traced integer i keeps the "
               "shape fixed), or keep the shape and mask the entries with np.where.")

@composite(np.delete, samples=delete_samples)
def delete(arr, obj, axis=None):
    """``np.delete`` for traced and plain values: ``obj`` an int (a traced one
    too), a slice, a sequence of ints or a boolean mask."""
    if not is_traced(arr, obj):
        return np.delete(arr, obj, axis=axis)
    arr, axis = _flat_axis(arr, axis, "delete")
    n = shape_of(arr)[axis]
    if isinstance(obj, Tracer):
        obj = _int_index(obj, "delete", _DELETE_FIX)
        if isinstance(obj, Tracer) and ndim_of(obj) == 0:  # one position: the shape is fixed
            obj = ensure(obj, "in_range", f"index out of bounds for axis {axis} with size {n}", IndexError,
                   low=-n, high=n)
            obj = where(less(obj, 0), obj + n, obj)
            kept = np.arange(n - 1)
            return take(arr, where(less(kept, obj), kept, kept + 1), axis=axis)
        if isinstance(obj, Tracer):  # repeated positions count once: data-dependent
            obj = concrete(obj, "np.delete(arr, positions)", _DELETE_FIX)
    keep = np.ones(n, dtype=bool)
    if isinstance(obj, slice):
        keep[obj] = False
    elif isinstance(obj, (int, np.integer)) and not isinstance(obj, (bool, np.bool_)):
        if obj < -n or obj >= n:
            raise IndexError(f"index {obj} is out of bounds for axis {axis} with size {n}")
        keep[obj] = False
    else:
        given = obj
        obj = np.asarray(obj)
        if obj.size == 0 and not isinstance(given, np.ndarray):
            obj = obj.astype(np.intp)
        if obj.dtype == bool:
            if obj.shape != (n,):
                raise ValueError("boolean array argument obj to delete must be one dimensional and "
                                 f"match the axis length of {n}")
            keep = ~obj
        else:
            keep[obj,] = False
    return take(arr, np.flatnonzero(keep), axis=axis)


# ---- resize -------------------------------------------------------------------------------

@composite(np.resize, samples=resize_samples)
def resize(a, new_shape):
    """``np.resize`` for traced and plain values: the flattened entries repeated
    cyclically (repeats accumulate their derivatives)."""
    if isinstance(new_shape, (int, np.integer)):
        new_shape = (new_shape,)
    new_shape = tuple(int(s) for s in new_shape)
    if any(s < 0 for s in new_shape):
        raise ValueError("all elements of `new_shape` must be non-negative")
    flat = ravel(as_array(a))
    size, new_size = shape_of(flat)[0], int(np.prod(new_shape))
    if size == 0 or new_size == 0:
        return np.zeros(new_shape, dtype_of(flat))
    return reshape(take(flat, np.arange(new_size) % size), new_shape)


# ---- trim_zeros -----------------------------------------------------------------------------

def _trim_sized(x, trim, size, fill_value):
    """The trimmed 1-D ``x`` as exactly ``size`` entries, padded with ``fill_value``."""
    from ..searching import truth

    n = shape_of(x)[0]
    nz = truth(x)
    count = reduce_sum(nz)
    first = argmax(nz) if "f" in trim else 0
    stop = n - argmax(nz[::-1]) if "b" in trim else n
    length = where(equal(count, 0), 0, stop - first)
    positions = first + np.arange(size)
    fill = np.asarray(fill_value, dtype_of(x))
    if n == 0:
        return np.full(size, fill)
    picked = take(x, minimum(positions, n - 1))
    return where(less(np.arange(size), length), picked, fill)


@composite_via(np.trim_zeros, target=trim_zeros_call, samples=trim_zeros_samples)
def trim_zeros(filt, trim="fb", axis=None, *, size=None, fill_value=0):
    """``np.trim_zeros`` for traced and plain values.  The kept entries carry
    their derivatives; how many are kept depends on the values, so under vmap
    and jit pass ``size=`` (npfunc's keyword, 1-D ``filt``): exactly ``size``
    entries from the first kept one, padded with ``fill_value``."""
    if size is None and not is_traced(filt):
        return np.trim_zeros(filt, trim, axis) if axis is not None else np.trim_zeros(filt, trim)
    trim = trim.lower()
    if trim not in {"fb", "bf", "f", "b"}:
        raise ValueError(f"unexpected character(s) in `trim`: {trim!r}")
    x = as_array(filt)
    nd = ndim_of(x)
    if size is not None:
        if nd != 1:
            raise ValueError("trim_zeros(..., size=) needs a 1-D array")
        return _trim_sized(x, trim, fixed_size(size, "trim_zeros"), fill_value)
    axes = tuple(range(nd)) if axis is None else normalize_axes(axis, nd, "trim_zeros")
    if not axes:
        return x
    from ..searching import truth

    found = np.argwhere(concrete(truth(x), "np.trim_zeros(filt)",
                                 "Keep the zeros and mask them (np.where(filt != 0, filt, fill)), or "
                                 "pass size=k to npfunc.numpy.trim_zeros (1-D) for exactly k entries."))
    if found.size == 0:
        start = stop = np.zeros(nd, np.intp)
    else:
        start, stop = found.min(axis=0), found.max(axis=0) + 1
        if "f" not in trim:
            start = (None,) * nd
        if "b" not in trim:
            stop = (None,) * nd
    from .views import getitem as view  # NumPy returns a slice of filt: a view

    return view(x, tuple(slice(start[ax], stop[ax]) if ax in axes else slice(None) for ax in range(nd)))


# ---- block -------------------------------------------------------------------------------

def _where(index):
    return "arrays" + "".join(f"[{i}]" for i in index)


def _depth(arrays, index):
    """(depth of the leaves, their largest ndim), checked as NumPy checks them."""
    if isinstance(arrays, tuple):
        raise TypeError(f"{_where(index)} is a tuple. Only lists can be used to arrange blocks, and "
                        "np.block does not allow implicit conversion from tuple to ndarray.")
    if not isinstance(arrays, list):
        return len(index), ndim_of(arrays) if isinstance(arrays, Tracer) else np.ndim(arrays)
    if not arrays:
        raise ValueError(f"Lists cannot be empty. {_where(index)} is empty")
    depths = [_depth(a, index + [i]) for i, a in enumerate(arrays)]
    for k, (d, _) in enumerate(depths):
        if d != depths[0][0]:
            raise ValueError(f"List depths are mismatched. First element was at depth {depths[0][0]}, "
                             f"but there is an element at depth {d} ({_where(index + [k])})")
    return depths[0][0], max(nd for _, nd in depths)


def _assemble(arrays, depth, max_depth, ndim):
    if depth == max_depth:
        a = as_array(arrays)
        nd = ndim_of(a)
        return reshape(a, (1,) * (ndim - nd) + tuple(shape_of(a))) if nd < ndim else a
    parts = [_assemble(a, depth + 1, max_depth, ndim) for a in arrays]
    return concatenate(parts, axis=-(max_depth - depth))


@composite_via(np.block, target=block_call, samples=block_samples)
def block(arrays):
    """``np.block`` for traced and plain values (nested lists of arrays)."""
    max_depth, max_ndim = _depth(arrays, [])
    out = _assemble(arrays, 0, max_depth, max(max_depth, max_ndim))
    if out is arrays:
        from ..indexing.inplace import clone

        out = clone(out)
    return out
