"""Statistics and other reductions built from the reduction primitives
(composites: their derivatives, batching and second order come from the
primitives they are made of): var, std, average, ptp, the nan-functions,
and trace.

Conventions
-----------
* ``std`` at zero variance (a constant slice, or one entry with ``ddof=0``)
  has derivative **0**, not NaN.  JAX differentiates ``sqrt(var)`` there and
  returns NaN (jax-ml/jax#11716: ``0 * inf``); torch returns 0 (it masks the
  zero case, pytorch/pytorch#4320).  0 is the minimum-norm subgradient of
  this norm-like function and matches npfunc's ``linalg.norm`` at 0.  Away
  from zero variance the derivative is the ordinary one.
* ``var``/``std`` with ``N - ddof <= 0`` divide by zero, as NumPy does
  (inf/NaN values and derivatives).
* The nan-functions treat NaN entries as absent: they get a zero derivative,
  and a NaN never leaks into the derivative of the other entries.  An
  all-NaN slice of ``nanmax``/``nanmin``/``nanmean`` gives NaN (as NumPy)
  and a zero derivative.
* Complex ``var``/``std`` are real (``mean(|x - mean(x)|**2)``), as in NumPy.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import (astype, equal, imag, isnan, logical_not, maximum, multiply, real, sqrt,
                                      where)
from ..families import composite, normalize_axes
from ..indexing.gather import getitem
from .basic import _check_unsupported, count_where, divide_by_count, max, mean, mean_same_dtype, min, prod, sum
from .index import all as all_
from .samples import (_nan_extremum_extra, average_samples, reduce_samples, trace_samples,
                      var_samples)
from ..shape.basic import broadcast_to, moveaxis, reshape, transpose

# ---- var / std ----------------------------------------------------------------------

_mean = mean_same_dtype  # (var's ``mean=`` argument shadows the name; float16 stays float16, as in NumPy)


def _resolve_ddof(name, ddof, correction):
    if correction is None or correction is np._NoValue:
        return ddof
    if ddof != 0:
        raise ValueError(f"np.{name}: ddof and correction can't be provided simultaneously")
    return correction


def _abs2(d):
    if dtype_of(d).kind == "c":
        re, im = real(d), imag(d)
        return re * re + im * im
    return d * d


@composite(np.var, samples=var_samples(), scalars=True)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    """``np.var`` for traced and plain values (``ddof``/``correction``, ``where=``, ``mean=``)."""
    return _var(a, axis, dtype, out, ddof, keepdims, where, mean, correction, "var", None)


def _var(a, axis, dtype, out, ddof, keepdims, where, mean, correction, name, deviation_dtype):
    """var; ``deviation_dtype``: the dtype the deviations are rounded to
    (np.nanvar keeps them in the input's dtype even when ``dtype=`` is wider)."""
    _check_unsupported(name, out=out)
    ddof = _resolve_ddof(name, ddof, correction)
    if dtype is not None and np.dtype(dtype).kind in "iub":
        # NumPy works in the integer dtype: the mean, the deviations, their squares
        # and the quotient are all cast to it (truncating)
        a = astype(a, dtype)
        if mean is None:
            mean = _mean(a, axis, dtype, keepdims=True, where=where)
        squares = _abs2(a - mean)
        total = sum(squares, axis, dtype=dtype, keepdims=keepdims, where=where)
        shape = np.broadcast_shapes(shape_of(a), shape_of(where)) if where is not None and where is not True \
            else shape_of(a)
        if where is not None and where is not True:
            n = count_where(where, shape, axis, keepdims, np.dtype(np.float64))
            return astype(total / maximum(n - ddof, 0), dtype)
        n = math.prod(shape[i] for i in normalize_axes(axis, len(shape), name))
        return astype(total / builtins.max(n - ddof, 0), dtype)
    if dtype is not None:
        a = astype(a, dtype)
    elif dtype_of(a).kind not in "fc":
        a = astype(a, np.float64)
    masked = where is not None and where is not True
    shape = np.broadcast_shapes(shape_of(a), shape_of(where)) if masked else shape_of(a)
    if mean is None:
        mean = _mean(a, axis, keepdims=True, where=where)
    d = a - mean
    if deviation_dtype is not None and deviation_dtype != dtype_of(d):
        d = astype(d, deviation_dtype)
    squares = _abs2(d)
    if dtype_of(squares) != dtype_of(a) and dtype_of(a).kind == "f":
        squares = astype(squares, dtype_of(a))
    total = sum(squares, axis, keepdims=keepdims, where=where)
    if masked:
        n = count_where(where, shape, axis, keepdims, dtype_of(total))
        # a slice with nothing selected is a constant NaN (derivative 0)
        return divide_by_count(total, n, maximum(n - ddof, 0))
    n = math.prod(shape[i] for i in normalize_axes(axis, len(shape), name))
    if n == 0:  # an empty slice: a constant NaN, as NumPy's 0/0 (derivative 0)
        return total * 0 + np.nan
    return total / builtins.max(n - ddof, 0)


@composite(np.std, samples=var_samples(), scalars=True)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    """``np.std`` for traced and plain values.

    Derivative 0 at zero variance (JAX gives NaN there, torch 0; see the module notes).
    """
    return _root(var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction))


def _root(v):
    """std from var: NumPy takes the square root into the variance's dtype, so an
    integer scalar is cast (truncating) and an integer array refuses the cast,
    as np.sqrt(..., out=ints) does."""
    if dtype_of(v).kind in "iub":
        if ndim_of(v):
            raise TypeError(f"Cannot cast ufunc 'sqrt' output from dtype('float64') to "
                            f"dtype('{dtype_of(v)}') with casting rule 'same_kind'")
        return astype(sqrt(v), dtype_of(v))
    return safe_sqrt(v)


def safe_sqrt(v):
    """``sqrt(v)`` whose derivative at ``v == 0`` is 0 instead of inf (the "double where")."""
    at_zero = equal(v, 0)
    if dtype_of(v).kind == "f":  # a NaN variance (an empty slice) keeps its own derivative
        flat = at_zero | isnan(v)
        return where(at_zero, 0, where(flat, v, sqrt(where(flat, 1, v))))
    return where(at_zero, 0, sqrt(where(at_zero, 1, v)))


# ---- average ------------------------------------------------------------------------

@composite(np.average, samples=average_samples())
def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """``np.average`` for traced and plain values, differentiable in ``a`` and ``weights``."""
    nd = ndim_of(a)
    axes = None if axis is None else normalize_axes(axis, nd, "average")
    if weights is None:
        avg = mean(a, axes, keepdims=keepdims)
        size_a = math.prod(shape_of(a))
        size_avg = math.prod(shape_of(avg))
        scl = dtype_of(avg).type(size_a / size_avg if size_avg else np.nan)
    else:
        w = weights if isinstance(weights, (Tracer, np.ndarray)) else np.asarray(weights)  # (a list, as NumPy takes)
        if tuple(shape_of(a)) != tuple(shape_of(w)):
            if axis is None:
                raise TypeError("np.average: axis must be specified when the shapes of a and "
                                "weights differ")
            order = normalize_axes(axis, nd, "average")
            given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
            given = tuple(int(g) % nd for g in given)
            if tuple(shape_of(w)) != tuple(shape_of(a)[g] for g in given):
                raise ValueError("np.average: shape of weights must be consistent with the shape "
                                 "of a along the specified axis")
            w = transpose(w, tuple(np.argsort(given)))
            w = reshape(w, tuple(s if i in order else 1 for i, s in enumerate(shape_of(a))))
        if dtype_of(a).kind in "biu":
            result = np.result_type(dtype_of(a), dtype_of(w), np.float64)
        else:
            result = np.result_type(dtype_of(a), dtype_of(w))
        scl = sum(w, axes, dtype=result, keepdims=keepdims)
        if not isinstance(scl, Tracer) and np.any(np.asarray(scl) == 0.0):
            raise ZeroDivisionError("np.average: weights sum to zero, can't be normalized")
        avg = sum(multiply(astype(a, result), astype(w, result)), axes, keepdims=keepdims) / scl
    if returned:
        if tuple(shape_of(scl)) != tuple(shape_of(avg)):
            scl = broadcast_to(scl, shape_of(avg))
            if not isinstance(scl, Tracer):
                scl = np.array(scl)
        return avg, scl
    return avg


# ---- ptp ----------------------------------------------------------------------------

@composite(np.ptp, samples=reduce_samples(dtype_kw=False, where=False, axes=(None, 1, -1, (0, 2)),
                                         empty=False, bools=False))
def ptp(a, axis=None, out=None, keepdims=False):
    """``np.ptp`` (max - min) for traced and plain values; ties share the derivative."""
    _check_unsupported("ptp", out=out)
    return max(a, axis, keepdims=keepdims) - min(a, axis, keepdims=keepdims)


# ---- nan-functions --------------------------------------------------------------------

def _fill_nan(a, fill):
    """``a`` with NaNs replaced by ``fill``: NaN entries get a zero derivative."""
    if dtype_of(a).kind not in "fc":
        return a
    return where(isnan(a), fill, a)


@composite(np.nansum, samples=reduce_samples(initial=1.5, nans=True), scalars=True)
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.nansum``: NaNs count as 0 and get a zero derivative."""
    return sum(_fill_nan(a, 0), axis, dtype, out, keepdims, initial, where)


@composite(np.nanprod, samples=reduce_samples(initial=1.5, nans=True, domain=(-1.5, 1.5)), scalars=True)
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.nanprod``: NaNs count as 1 and get a zero derivative."""
    return prod(_fill_nan(a, 1), axis, dtype, out, keepdims, initial, where)


def _present(a, where_):
    """The entries that count: not NaN, and inside the ``where=`` mask."""
    keep = logical_not(isnan(a)) if dtype_of(a).kind in "fc" else np.ones(shape_of(a), bool)
    if where_ is not None and where_ is not True:
        keep = keep & where_
    return keep


@composite(np.nanmean, samples=reduce_samples(nans=True), scalars=True)
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """``np.nanmean``: the mean of the non-NaN entries (NaN for an all-NaN slice)."""
    _check_unsupported("nanmean", out=out)
    if dtype_of(a).kind not in "fc":
        return mean(a, axis, dtype, keepdims=keepdims, where=where)
    # (NumPy sums a float16 nanmean in float16: no float32 detour, unlike np.mean)
    return mean_same_dtype(_fill_nan(a, 0), axis, dtype, keepdims=keepdims, where=_present(a, where))


def _nan_extremum(fn, name, a, axis, out, keepdims, initial, where_):
    _check_unsupported(name, out=out)
    if dtype_of(a).kind not in "fc":
        return fn(a, axis, keepdims=keepdims, initial=initial, where=where_)
    fill = -np.inf if fn is max else np.inf
    filled = _fill_nan(a, fill)
    if where_ is not None and where_ is not True:
        if initial is None:
            raise ValueError(f"np.{name}: a where= mask needs initial=")
        filled = where(where_, filled, fill)
    result = fn(filled, axis, keepdims=keepdims, initial=initial)
    if initial is not None:
        return result
    empty = all_(logical_not(_present(a, where_)), axis, keepdims=keepdims)
    return where(empty, np.nan, result)


@composite(np.nanmax, samples=reduce_samples(initial=0.5, dtype_kw=False, where_needs_initial=True,
                                            nans=True, extra=_nan_extremum_extra), scalars=True)
def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.nanmax``: NaNs are skipped (zero derivative); an all-NaN slice gives NaN."""
    return _nan_extremum(max, "nanmax", a, axis, out, keepdims, initial, where)


@composite(np.nanmin, samples=reduce_samples(initial=0.5, dtype_kw=False, where_needs_initial=True,
                                            nans=True, extra=_nan_extremum_extra), scalars=True)
def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.nanmin``: NaNs are skipped (zero derivative); an all-NaN slice gives NaN."""
    return _nan_extremum(min, "nanmin", a, axis, out, keepdims, initial, where)


@composite(np.nanvar, samples=var_samples(nans=True), scalars=True)
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
           correction=None):
    """``np.nanvar``: the variance of the non-NaN entries (NaNs get a zero derivative)."""
    if dtype_of(a).kind not in "fc":
        return var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction)
    return _var(_fill_nan(a, 0), axis, dtype, out, ddof, keepdims, _present(a, where), mean,
                correction, "nanvar", dtype_of(a))


@composite(np.nanstd, samples=var_samples(nans=True), scalars=True)
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
           correction=None):
    """``np.nanstd``: as ``std`` over the non-NaN entries (derivative 0 at zero variance)."""
    return _root(nanvar(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction))


# ---- trace ----------------------------------------------------------------------------

@composite(np.trace, samples=trace_samples())
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """``np.trace`` for traced and plain values (``offset``, ``axis1``, ``axis2``)."""
    if out is not None:
        raise UnsupportedOperationError("np.trace: argument 'out' is not supported on traced "
                                        "values; assign the result instead: y = np.trace(...)")
    nd = ndim_of(a)
    if nd < 2:
        raise ValueError("np.trace: the array must have at least two dimensions")
    i1, i2 = normalize_axes(axis1, nd, "trace")[0], normalize_axes(axis2, nd, "trace")[0]
    if i1 == i2:
        raise ValueError("np.trace: axis1 and axis2 cannot be the same")
    x = moveaxis(a, (i1, i2), (-2, -1))
    n1, n2 = shape_of(x)[-2:]
    offset = int(offset)
    if offset >= 0:
        cols = np.arange(builtins.max(0, builtins.min(n1, n2 - offset)))
        rows, cols = cols, cols + offset
    else:
        rows = np.arange(builtins.max(0, builtins.min(n1 + offset, n2)))
        rows, cols = rows - offset, rows
    return sum(getitem(x, (Ellipsis, rows, cols)), -1, dtype=dtype)
