"""Selecting entries: ``select``, ``piecewise``, ``choose``, ``compress``,
``extract`` and the in-place ``place`` and ``putmask``.

All are composites of ``where``, gathers and the functional update, so the
derivative of an output entry is the derivative of the entry (or the branch)
it was taken from, and every transform applies.

* ``select``/``choose``: fixed shapes, so conditions and indices may be
  traced too (under vmap: one choice per batch element).
* ``piecewise``: with concrete conditions (plain masks, or masks computed
  from differentiated values) each function gets exactly the entries NumPy
  gives it (``x[cond]``).  With traced conditions (vmap, jit) the functions
  are evaluated on the whole array, which assumes they act elementwise, as
  piecewise-defined laws do; the entries outside a piece are replaced by an
  entry inside it first, so a branch that is singular elsewhere (``1 / x``
  for ``x > 0``) gives no NaN in the value or the derivative.  (Where no
  entry lies in a piece, its function still runs, on the first entry, and
  the result is discarded; NumPy may warn about that call.)
* ``compress``/``extract``: the output's length depends on the condition;
  under vmap and jit a traced condition raises, naming the fix
  (``np.where(condition, a, 0)`` or npfunc's ``size=`` keyword).
* ``place``/``putmask`` update a traced array in place (the array object
  then holds the result), as ``np.put`` does; a traced mask works too.
"""
from __future__ import annotations

import numpy as np

from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from .data_dependent import as_array, concrete, ensure, first_true, fixed_size, is_traced
from .elementwise.arithmetic import astype, logical_not, minimum, stop_gradient, where
from .elementwise.piecewise import clip, remainder
from .families import composite_via, normalize_axes
from .indexing.aliasing import array_result
from .indexing.gather import getitem, take, take_along_axis
from .indexing.inplace import assign
from .indexing.updates import set_at
from .reductions.index import any as any_
from .reductions.index import argmax
from .searching import truth
from .shape.basic import broadcast_to, concatenate, ravel, reshape, stack
from .selection_samples import (choose_samples, compress_call, compress_samples, extract_samples,
                                piecewise_call, piecewise_samples, place_samples, putmask_samples,
                                select_samples)

_PY_SCALARS = (bool, int, float, complex)


def _weak(x):
    """``x`` for ``np.result_type``: Python scalars stay weak (NEP 50), arrays give dtypes."""
    return x if type(x) in _PY_SCALARS else dtype_of(x)


def _cast(x, dtype):
    if type(x) in _PY_SCALARS:
        return np.asarray(x, dtype=dtype)
    return astype(x, dtype) if dtype_of(x) != dtype else x


# ---- select -------------------------------------------------------------------------------

@composite_via(np.select, target=lambda c1, c2, x1, x2, default: np.select([c1, c2], [x1, x2], default),
               samples=select_samples)
def select(condlist, choicelist, default=0):
    """``np.select`` for traced and plain values: the first true condition
    picks the choice; derivatives flow to the chosen entries only."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    choices = [c if type(c) in _PY_SCALARS else as_array(c) for c in choicelist]
    fallback = default if type(default) in _PY_SCALARS else as_array(default)
    try:
        dtype = np.result_type(*[_weak(c) for c in choices + [fallback]])
    except TypeError as e:
        raise TypeError(f"Choicelist and default value do not have a common dtype: {e}") from None
    conds = [as_array(c) for c in condlist]
    for i, c in enumerate(conds):
        if dtype_of(c) != np.bool_:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    shape = np.broadcast_shapes(*[tuple(shape_of(v)) for v in conds + choices])
    out = _cast(fallback, dtype)
    for cond, choice in zip(reversed(conds), reversed(choices)):  # the first condition wins
        out = where(cond, _cast(choice, dtype), out)
    out = out if tuple(shape_of(out)) == shape else broadcast_to(out, shape)
    return array_result(out)  # np.select gives an array, 0-d too



# ---- piecewise ------------------------------------------------------------------------------

def _conditions(x, condlist):
    """NumPy's reading of ``condlist``: a list of boolean arrays shaped like ``x``."""
    if isinstance(condlist, (Tracer, np.ndarray)):
        first_is_array = ndim_of(condlist) >= 2
    elif np.isscalar(condlist):
        first_is_array = False
    else:
        first_is_array = isinstance(condlist[0], (list, np.ndarray, Tracer))
    if np.isscalar(condlist) or (not first_is_array and ndim_of(x) != 0):
        condlist = [condlist]
    if isinstance(condlist, (Tracer, np.ndarray)):
        condlist = [condlist[i] for i in range(shape_of(condlist)[0])]
    conds = []
    for c in condlist:
        c = as_array(c)
        conds.append(c if dtype_of(c) == np.bool_ else astype(c, bool))
    shapes = {tuple(shape_of(c)) for c in conds}
    if len(shapes) > 1:
        raise ValueError("piecewise: setting an array element with a sequence. The conditions have "
                         f"different shapes {sorted(shapes)}")
    return conds


def _inside(x, cond):
    """``x`` with the entries outside ``cond`` replaced by the first entry inside
    it (a constant: no derivative flows through the replacement)."""
    anchor = stop_gradient(take(ravel(x), argmax(ravel(cond))))
    return where(cond, x, anchor)


@composite_via(np.piecewise, target=piecewise_call, samples=piecewise_samples)
def piecewise(x, condlist, funclist, *args, **kw):
    """``np.piecewise`` for traced and plain values (see the module doc for
    traced conditions).  Later conditions win, as in NumPy; the output has
    the dtype of ``x``."""
    x = as_array(x)
    shape, dtype = tuple(shape_of(x)), dtype_of(x)
    if not shape:  # 0-d: as a one-entry array
        return reshape(piecewise(reshape(x, (1,)), [reshape(c, (1,)) for c in _conditions(x, condlist)],
                                 funclist, *args, **kw), ())
    conds = _conditions(x, condlist)
    n, n2 = len(conds), len(funclist)
    if n == n2 - 1:
        taken = any_(stack(conds), axis=0) if conds else np.zeros(shape, bool)
        conds.append(logical_not(taken))
    elif n != n2:
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are expected")
    conds = [broadcast_to(c, shape) if tuple(shape_of(c)) != shape else c for c in conds]
    y = np.zeros(shape, dtype)
    if not is_traced(*conds):  # NumPy's own evaluation: each function sees x[cond]
        for cond, func in zip(conds, funclist):
            if not callable(func):
                y = set_at(y, cond, func)
            elif cond.any():
                y = set_at(y, cond, func(getitem(x, cond), *args, **kw))
        return y
    for cond, func in zip(conds, funclist):
        if callable(func):
            value = func(_inside(x, cond), *args, **kw)
        elif np.ndim(func) == 0 or isinstance(func, Tracer) and ndim_of(func) == 0:
            value = func
        else:
            raise ValueError("piecewise: with traced conditions, a constant piece must be a scalar "
                             "(an array would need as many entries as the condition has)")
        y = where(cond, _cast(value, dtype), y)
    return y if tuple(shape_of(y)) == shape else broadcast_to(y, shape)



# ---- choose ---------------------------------------------------------------------------------

def _store(out, result, call: str):
    """``out=``: write ``result`` into ``out`` as NumPy does (a traced ``out`` takes it)."""
    if tuple(shape_of(out)) != tuple(shape_of(result)):
        raise ValueError(f"{call}: output array has shape {tuple(shape_of(out))}, the result has "
                         f"{tuple(shape_of(result))}")
    assign(out, _cast(result, dtype_of(out)), f"{call}(..., out=o)", f"o = {call}(...)")
    return out


@composite_via(np.choose, target=lambda a, x, y, mode: np.choose(a, [x, y, 0.5], mode=mode),
               samples=choose_samples)
def choose(a, choices, out=None, mode="raise"):
    """``np.choose`` for traced and plain values (``mode`` raise, wrap, clip);
    the index ``a`` may be traced (under vmap) too."""
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError(f"choose: clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    a = as_array(a)
    if dtype_of(a).kind not in "biu":
        raise TypeError(f"Cannot cast array data from {dtype_of(a)!r} to dtype('int64') according to "
                        "the rule 'safe'")
    if isinstance(choices, (Tracer, np.ndarray)):
        items = [getitem(choices, i) for i in range(shape_of(choices)[0])] if ndim_of(choices) else [choices]
    else:
        items = [c if type(c) in _PY_SCALARS else as_array(c) for c in choices]
    if not items:
        raise ValueError("choose: 0-length sequence.")
    dtype = np.result_type(*[_weak(c) for c in items])
    shape = np.broadcast_shapes(tuple(shape_of(a)), *[tuple(shape_of(c)) for c in items])
    stacked = stack([broadcast_to(_cast(c, dtype), shape) for c in items])
    index = astype(a, np.intp) if dtype_of(a) != np.intp else a
    n = len(items)
    if mode == "raise":
        index = ensure(index, "in_range", "invalid entry in choice array", ValueError, low=0, high=n)
    elif mode == "wrap":
        index = remainder(index, n)
    else:
        index = clip(index, 0, n - 1)
    index = reshape(broadcast_to(index, shape), (1,) + shape)
    result = reshape(take_along_axis(stacked, index, axis=0), shape)
    return result if out is None else _store(out, result, "np.choose")


# ---- compress, extract ------------------------------------------------------------------------

def _fix(name, args):
    return (f"Use np.where(condition, a, 0) to keep the shape, or npfunc.numpy.{name}({args}, size=k, "
            "fill_value=0) for exactly k entries (padded).")


def _sized_take(a, mask, axis: int, size: int, fill_value, fn_name: str):
    """The first ``size`` slices of ``a`` along ``axis`` where ``mask`` is true, padded
    with ``fill_value`` (fixed shape: vmap and jit can run it)."""
    n = shape_of(a)[axis]
    m = shape_of(mask)[0]
    if m > n:
        raise ValueError(f"{fn_name}(..., size=): the condition has {m} entries, more than the {n} "
                         "it selects from")
    if m < n:
        mask = concatenate([mask, np.zeros(n - m, bool)])
    shape = tuple(shape_of(a))
    out_shape = shape[:axis] + (size,) + shape[axis + 1:]
    fill = np.asarray(fill_value, dtype=dtype_of(a))
    if n == 0:
        return np.full(out_shape, fill)
    index, valid = first_true(mask, size)
    picked = take(a, minimum(index, n - 1), axis=axis)
    valid = reshape(valid, (size,) + (1,) * (len(shape) - axis - 1))
    return where(valid, picked, fill)


def _compress(condition, a, axis, size, fill_value, what, fn_name):
    cond = as_array(condition)
    if ndim_of(cond) != 1:
        raise ValueError("condition must be a 1-d array")
    a = as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    else:
        axis = normalize_axes(axis, ndim_of(a), fn_name)[0]
    if size is not None:
        return _sized_take(a, truth(cond), axis, fixed_size(size, fn_name), fill_value, fn_name)
    index = np.nonzero(concrete(truth(cond), what, _fix(fn_name, "condition, a")))[0]
    n = shape_of(a)[axis]
    if index.size and index[-1] >= n:
        raise IndexError(f"index {index[-1]} is out of bounds for axis {axis} with size {n}")
    return take(a, index, axis=axis)


@composite_via(np.compress, target=compress_call, samples=compress_samples)
def compress(condition, a, axis=None, out=None, *, size=None, fill_value=0):
    """``np.compress`` for traced and plain values: the selected slices carry
    their derivatives.  A traced condition works under grad; under vmap and
    jit pass ``size=`` (npfunc's keyword) for a fixed number of slices."""
    if size is None and not is_traced(condition, a, out):
        return np.compress(condition, a, axis=axis, out=out)
    result = _compress(condition, a, axis, size, fill_value, "np.compress(condition, a)", "compress")
    return result if out is None else _store(out, result, "np.compress")


@composite_via(np.extract, target=lambda arr, condition: np.extract(condition, arr),
               samples=extract_samples)
def extract(condition, arr, *, size=None, fill_value=0):
    """``np.extract`` for traced and plain values (the entries of ``arr`` where
    ``condition`` is nonzero, flattened); ``size=`` as in ``compress``."""
    if size is None and not is_traced(condition, arr):
        return np.extract(condition, arr)
    return _compress(ravel(as_array(condition)), arr, None, size, fill_value,
                     "np.extract(condition, arr)", "extract")


# ---- place, putmask (in place) ------------------------------------------------------------------

def _flat_mask(a, mask, fn_name):
    mask = ravel(truth(as_array(mask)))
    if shape_of(mask)[0] != int(np.prod(shape_of(a))):
        raise ValueError(f"{fn_name}: mask and data must be the same size")
    return mask


def _update(a, mask, values, fn_name):
    new = where(mask, _cast(values, dtype_of(a)), ravel(a))
    assign(a, reshape(new, tuple(shape_of(a))), f"np.{fn_name}(arr, mask, vals)",
           "arr = np.where(mask, values, arr) with one value per entry (or npfunc.numpy.set_at(arr, "
           "mask, vals) with one value per masked entry)")


@composite_via(np.place, target=lambda arr, vals, mask: _placed(np.place, arr, mask, vals),
               samples=place_samples)
def place(arr, mask, vals):
    """``np.place`` on a traced array (or with traced values or mask): the masked
    entries take ``vals`` in order, repeated cyclically; ``arr`` then holds the
    result, as after NumPy's in-place call."""
    if not isinstance(arr, (Tracer, np.ndarray)):
        raise TypeError(f"place() argument 1 must be numpy.ndarray, not {type(arr).__name__}")
    mask = _flat_mask(arr, mask, "place")
    vals = ravel(as_array(vals))
    count = shape_of(vals)[0]
    if count == 0:  # nothing to write, unless the mask selects something: then NumPy raises
        mask = ensure(mask, "all_false", "Cannot insert from an empty array!", ValueError)
        _update(arr, mask, ravel(arr), "place")
        return
    from .reductions.scans import cumsum

    rank = cumsum(astype(mask, np.intp)) - 1  # the k-th masked entry takes vals[k % count]
    _update(arr, mask, take(vals, remainder(rank, count)), "place")


@composite_via(np.putmask, target=lambda a, values, mask: _placed(np.putmask, a, mask, values),
               samples=putmask_samples)
def putmask(a, mask, values):
    """``np.putmask`` on a traced array (or with traced values or mask): entry
    ``n`` takes ``values[n % len(values)]`` where the mask is true; ``a`` then
    holds the result."""
    if not isinstance(a, (Tracer, np.ndarray)):
        raise TypeError(f"putmask: first argument must be an array, not {type(a).__name__}")
    mask = _flat_mask(a, mask, "putmask")
    values = ravel(as_array(values))
    count = shape_of(values)[0]
    if count == 0:
        return
    size = shape_of(mask)[0]
    _update(a, mask, take(values, np.arange(size) % count) if count != size else values, "putmask")


def _placed(fn, arr, mask, vals):
    """The generated tests' view of an in-place function: ``arr`` after ``fn(arr, mask,
    vals)``, on a copy of ``arr`` that is traced wherever ``mask`` or ``vals`` is (a plain
    array cannot hold traced values; see the tests for that error)."""
    lift = 0 * np.sum(vals) + 0 * np.sum(mask)  # exactly 0, traced like mask and vals
    out = astype(arr + lift, dtype_of(arr))
    fn(out, mask, vals)
    return out
