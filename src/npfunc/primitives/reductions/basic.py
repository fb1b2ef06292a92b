"""Reductions: sum, prod, max, min (primitives), mean and ``ufunc.reduce``.

``max``/``min`` split the derivative equally among tied entries, like JAX.
``prod`` is exact and division-free at zeros.  The rest of the family lives
in the sibling modules ``scans`` (cumsum, cumprod),
``statistics`` (var, std, average, ptp, nan-functions, trace) and
``index`` (all, any, argmax, argmin, count_nonzero).
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from ...core.dispatch import implements_reduce
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import astype, maximum, minimum, multiply, ones_like, where
from ...interpreters.batching import broadcast_batch
from ..families import composite, conj, expand_reduced, keep_reduced_dims, normalize_axes, reduction
from ..shape.basic import broadcast_to, reshape, transpose
from ..sampling import FLOATS, array
from .samples import mean_integer_dtype, reduce_samples


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
    """Two-way ties for both max and min (kink=True: first order only).  With two
    tied entries the equal split is also the central difference, so the JVP
    vs finite-difference check stays meaningful."""
    out = _reduction_samples(rng)
    x = np.array([[1.0, 3.0, 3.0, -0.5], [2.0, 2.0, -1.0, -1.0]])
    for dt in FLOATS:
        xd = x.astype(dt)
        out += [Sample(xd, axes=(1,), keepdims=False, label="ties", kink=True),
                Sample(xd, axes=(0, 1), keepdims=True, label="ties", kink=True),
                Sample(xd.T.copy(), axes=(0,), keepdims=True, label="ties", kink=True)]
    return out


# ---- sum ---------------------------------------------------------------------------

def _sum_jvp(primals, tangents, out, *, axes, keepdims):
    return reduce_sum(tangents[0], axes=axes, keepdims=keepdims)


def _sum_vjp(g, primals, out, needs, *, axes, keepdims):
    return (expand_reduced(g, axes, keepdims, shape_of(primals[0])),)


# The implementations call the array's method when they can: np.sum & co. add a
# Python layer (argument dispatch, a wrapper) of 1-2 µs to the same reduction.
_sum = reduction("reduce_sum", lambda x, *, axes, keepdims: x.sum(axes, keepdims=keepdims)
                 if type(x) is np.ndarray else np.sum(x, axis=axes, keepdims=keepdims),
                 jvp=_sum_jvp, vjp=_sum_vjp, samples=_reduction_samples,
                 notes="linear: the VJP broadcasts the cotangent over the reduced axes")


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
            f"assign the result instead: y = np.{name}(...)")


def _masked(a, where_, fill):
    """``a`` with the entries outside the ``where=`` mask replaced by ``fill``."""
    if where_ is None or where_ is True:
        return a
    return where(where_, a, fill)


@functools.lru_cache(maxsize=None)
def reduced_dtype(name: str, dtype: np.dtype) -> np.dtype:
    """The dtype of NumPy's ``np.<name>`` of entries of ``dtype`` (bool and small
    integers promote to the platform integer in sums and products)."""
    return getattr(np, name)(np.zeros((1,), dtype)).dtype


def _as_result(total, name, a, dtype=None):
    """``total`` in the dtype NumPy's reduction gives: ``dtype=`` if given (an
    int8 sum wraps around as NumPy's does), else the promoted one (an
    ``axis=()`` reduction reduces nothing, but still promotes)."""
    want = np.dtype(dtype) if dtype is not None else reduced_dtype(name, dtype_of(a))
    return total if dtype_of(total) == want else astype(total, want)


def _unreduced(a):
    """``np.sum(a, axis=())`` and the like reduce nothing, but still give a new
    array (a NumPy scalar for a 0-d ``a``), not ``a`` itself."""
    return a[()] if not shape_of(a) else np.copy(a)


def cast_initial(initial, like):
    """``initial=`` cast to the result's dtype, as NumPy does before reducing."""
    dtype = dtype_of(like)
    if isinstance(initial, Tracer):
        return initial if dtype_of(initial) == dtype else astype(initial, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(initial).astype(dtype, casting="unsafe")[()]


@composite(np.sum, samples=reduce_samples(initial=1.5))
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.sum`` for traced and plain values (``where=`` and ``initial=`` included)."""
    if dtype is None and out is None and initial is None and where is None and dtype_of(a).kind in "fc":
        # the common call: a float sum keeps its dtype, nothing to check or cast
        axes = tuple(range(ndim_of(a))) if axis is None else normalize_axes(axis, ndim_of(a), "sum")
        return reduce_sum(a, axes=axes, keepdims=bool(keepdims)) if axes or keepdims else _unreduced(a)
    _check_unsupported("sum", out=out)
    if dtype is not None:
        a = astype(a, dtype)
    a = _masked(a, where, 0)
    axes = normalize_axes(axis, ndim_of(a), "sum")
    total = _as_result(reduce_sum(a, axes=axes, keepdims=bool(keepdims)) if axes or keepdims else _unreduced(a),
                       "sum", a, dtype)
    return total if initial is None else total + cast_initial(initial, total)


@composite(np.mean, samples=reduce_samples(extra=mean_integer_dtype))
def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """``np.mean`` for traced and plain values (``where=`` included)."""
    _check_unsupported("mean", out=out)
    if dtype is None and dtype_of(a) == np.float16:  # NumPy sums and divides in float32, rounds once
        return astype(mean_same_dtype(astype(a, np.float32), axis, keepdims=keepdims, where=where), np.float16)
    return mean_same_dtype(a, axis, dtype, keepdims=keepdims, where=where)


def mean_same_dtype(a, axis=None, dtype=None, keepdims=False, where=None):
    """``np.mean`` without its float16 rule: a float16 mean summed and divided in float16,
    as the means inside ``np.var`` and ``np.nanmean`` are."""
    if dtype is not None and np.dtype(dtype).kind in "iub":
        # NumPy sums in the integer dtype (wrapping) and casts the quotient back to it (truncating)
        a = astype(a, dtype)
        total = sum(a, axis, dtype=dtype, keepdims=keepdims, where=where)
        if where is not None and where is not True:
            shape = np.broadcast_shapes(shape_of(a), shape_of(where))
            return astype(divide_by_count(total, count_where(where, shape, axis, keepdims,
                                                             np.dtype(np.float64))), dtype)
        count = math.prod(shape_of(a)[i] for i in normalize_axes(axis, ndim_of(a), "mean"))
        return astype(total / count, dtype)
    shape = shape_of(a)
    if dtype is not None:
        a = astype(a, dtype)
    elif dtype_of(a).kind not in "fc":
        a = astype(a, np.float64)
    if where is not None and where is not True:
        shape = np.broadcast_shapes(shape, shape_of(where))
        total = sum(a, axis, keepdims=keepdims, where=where)
        return divide_by_count(total, count_where(where, shape, axis, keepdims, dtype_of(total)))
    axes = normalize_axes(axis, len(shape), "mean")
    count = math.prod(shape[i] for i in axes)
    total = reduce_sum(a, axes=axes, keepdims=bool(keepdims))
    if count == 0:  # NaN, as NumPy's 0/0, but a constant: its derivative is 0, not NaN
        warnings.warn("Mean of empty slice.", RuntimeWarning, stacklevel=2)  # (NumPy's warning; under
        return total * 0 + np.nan                                            # jit, when recording)
    return total / count


def divide_by_count(total, count, divisor=None):
    """``total / divisor`` (default ``count``); where ``count`` is 0 (nothing
    selected) NaN, as in NumPy, but a constant: its derivative is 0, not NaN."""
    divisor = count if divisor is None else divisor
    if not isinstance(count, Tracer) and not np.any(count == 0):
        return total / divisor
    none = count == 0
    out = where(none, np.nan, total / where(none, 1, divisor))
    # np.where gives a 0-d array where NumPy's reduction gives a NumPy scalar
    return out[()] if not shape_of(out) else out


def count_where(mask, shape, axis, keepdims, dtype):
    """The number of selected entries of a ``where=`` mask broadcast to ``shape``,
    as the real floating dtype matching ``dtype`` (so a float32 mean stays float32)."""
    count = sum(astype(broadcast_to(mask, shape), np.intp), axis, keepdims=keepdims)
    return astype(count, np.finfo(dtype).dtype if dtype.kind in "fc" else np.float64)


# ---- prod ---------------------------------------------------------------------------

def others_product(x, axes):
    """For each entry of ``x``, the product of the other entries of its slice
    over ``axes`` -- the derivative of ``prod``, exact and division-free.

    The reduced axes are moved last and flattened; exclusive cumulative
    products from the left and from the right are multiplied.
    """
    from .scans import scan_prod

    shape = shape_of(x)
    kept = [i for i in range(len(shape)) if i not in axes]
    perm = kept + list(axes)
    m = math.prod(shape[a] for a in axes)
    flat = reshape(transpose(x, perm), tuple(shape[i] for i in kept) + (m,))
    last = len(kept)
    if m <= 1:
        others = ones_like(flat)
    else:
        others = scan_prod(flat, last, exclusive=True) * scan_prod(flat, last, reverse=True, exclusive=True)
    others = reshape(others, tuple(shape[i] for i in perm))
    return transpose(others, tuple(np.argsort(perm)))


def _prod_jvp(primals, tangents, out, *, axes, keepdims):
    (x,), (t,) = primals, tangents
    return reduce_sum(t * others_product(x, axes), axes=axes, keepdims=keepdims)


def _prod_vjp(g, primals, out, needs, *, axes, keepdims):
    (x,) = primals
    return (expand_reduced(g, axes, keepdims, shape_of(x)) * conj(others_product(x, axes)),)


def _prod_samples(rng):
    out = _reduction_samples(rng)
    x = array(rng, (3, 4), domain=(-1.5, 1.5))
    x[0, 1] = 0.0
    x[1, 0] = x[1, 3] = 0.0
    x[2, :] = 0.0
    out += [Sample(x, axes=(1,), keepdims=False, label="zeros"),
            Sample(x, axes=(0, 1), keepdims=True, label="zeros"),
            Sample(x.T.copy(), axes=(0,), keepdims=True, label="zeros"),
            Sample(x.astype(np.float32), axes=(1,), keepdims=False, label="zeros"),
            Sample(array(rng, (2, 3)) + 1j * array(rng, (2, 3)), axes=(1,), keepdims=False,
                   label="complex"),
            Sample(array(rng, (2, 0, 3)), axes=(1,), keepdims=False, label="empty")]
    return out


_prod = reduction("reduce_prod", lambda x, *, axes, keepdims: x.prod(axes, keepdims=keepdims)
                  if type(x) is np.ndarray else np.prod(x, axis=axes, keepdims=keepdims),
                  jvp=_prod_jvp, vjp=_prod_vjp, samples=_prod_samples,
                  notes="exact and division-free at zeros: the derivative with respect to an "
                        "entry is the product of the other entries (exclusive cumulative "
                        "products from both sides), correct with one or several zeros and "
                        "differentiable again")


def reduce_prod(x, *, axes, keepdims=False):
    """Product over ``axes`` (a sorted tuple of non-negative ints), for rule writers."""
    if not axes and not keepdims:
        return x
    return _prod.bind(x, axes=axes, keepdims=keepdims)


@composite(np.prod, samples=reduce_samples(initial=1.5, domain=(-1.5, 1.5)))
def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.prod`` for traced and plain values: exact, division-free derivatives at zeros."""
    _check_unsupported("prod", out=out)
    if dtype is not None:
        a = astype(a, dtype)
    a = _masked(a, where, 1)
    axes = normalize_axes(axis, ndim_of(a), "prod")
    total = _as_result(reduce_prod(a, axes=axes, keepdims=bool(keepdims)) if axes or keepdims else _unreduced(a),
                       "prod", a, dtype)
    return total if initial is None else total * cast_initial(initial, total)


# ---- max / min ---------------------------------------------------------------------

def _weights_impl(x, extremum, *, axes):
    """1/(number of ties) where ``x`` equals its slice's extremum, else 0 (NaN
    for a slice whose extremum is NaN: nothing equals it)."""
    hits = (x == extremum).astype(x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / (hits.sum(axes, keepdims=True) if type(hits) is np.ndarray else
                       np.sum(hits, axis=axes, keepdims=True))


def _weights_batch(vals, dims, *, axes):
    vals, d = broadcast_batch(vals, dims)
    return _weights.bind(*vals, axes=tuple(a + (a >= d) for a in axes)), d


def _weights_samples(rng):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    y = array(rng, (2, 3, 4), np.float32)
    # piecewise constant, and every sample sits on its jumps (x == extremum)
    return [Sample(x, np.max(x, axis=1, keepdims=True), axes=(1,), kink=True),
            Sample(x, np.min(x, keepdims=True), axes=(0, 1), kink=True),
            Sample(y, np.max(y, axis=(0, 2), keepdims=True), axes=(0, 2), kink=True)]


# The tie weights are piecewise constant, so one non-differentiable primitive
# computes them (instead of five differentiable ones every rule would trace).
_weights = Primitive("extremum_weights", _weights_impl, differentiable=False, batch=_weights_batch,
                     samples=_weights_samples,
                     notes="where x equals its slice's extremum, 1/(number of ties); else 0")


def _tie_weights(x, out, axes, keepdims):
    """Where each entry equals the extremum, divided by the number of ties."""
    return _weights.bind(x, keep_reduced_dims(out, axes, keepdims, shape_of(x)), axes=axes)


def _extremum_jvp(primals, tangents, out, *, axes, keepdims):
    (x,), (t,) = primals, tangents
    return reduce_sum(multiply(t, _tie_weights(x, out, axes, keepdims)), axes=axes, keepdims=keepdims)


def _extremum_vjp(g, primals, out, needs, *, axes, keepdims):
    (x,) = primals
    return (multiply(keep_reduced_dims(g, axes, keepdims, shape_of(x)), _tie_weights(x, out, axes, keepdims)),)


_max = reduction("reduce_max", lambda x, *, axes, keepdims: x.max(axes, keepdims=keepdims)
                 if type(x) is np.ndarray else np.max(x, axis=axes, keepdims=keepdims),
                 jvp=_extremum_jvp, vjp=_extremum_vjp, samples=_tied_samples,
                 notes="ties split the derivative equally (as in JAX); a NaN in the slice makes "
                       "the derivative of that slice NaN")
_min = reduction("reduce_min", lambda x, *, axes, keepdims: x.min(axes, keepdims=keepdims)
                 if type(x) is np.ndarray else np.min(x, axis=axes, keepdims=keepdims),
                 jvp=_extremum_jvp, vjp=_extremum_vjp, samples=_tied_samples,
                 notes="ties split the derivative equally (as in JAX); a NaN in the slice makes "
                       "the derivative of that slice NaN")


def filled_reduction(a, axes, keepdims, value):
    """``value`` in the shape of ``a`` reduced over ``axes``: traced and batched
    as ``a`` is, with a zero derivative (the result of reducing nothing)."""
    count = reduce_sum(astype(a, bool), axes=axes, keepdims=keepdims)
    return where(count >= 0, value, value)


def _extremum(prim, name, a, axis, out, keepdims, initial, where_):
    _check_unsupported(name, out=out)
    if where_ is not None and where_ is not True:
        if initial is None:
            raise ValueError(f"np.{name}: a where= mask needs initial= (the value of a slice "
                             "with no selected entry)")
        a = where(where_, a, cast_initial(initial, a))
    axes = normalize_axes(axis, ndim_of(a), name)
    if initial is not None and any(shape_of(a)[i] == 0 for i in axes):
        return filled_reduction(a, axes, bool(keepdims), cast_initial(initial, a))
    out = _unreduced(a) if not axes and not keepdims else prim.bind(a, axes=axes, keepdims=bool(keepdims))
    if initial is not None:
        out = (maximum if prim is _max else minimum)(out, cast_initial(initial, out))
    return out


@composite(np.max, np.amax, samples=reduce_samples(initial=0.5, dtype_kw=False, where_needs_initial=True))
def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.max`` for traced and plain values (ties share the derivative)."""
    return _extremum(_max, "max", a, axis, out, keepdims, initial, where)


@composite(np.min, np.amin, samples=reduce_samples(initial=0.5, dtype_kw=False, where_needs_initial=True))
def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``np.min`` for traced and plain values (ties share the derivative)."""
    return _extremum(_min, "min", a, axis, out, keepdims, initial, where)


# ---- ufunc.reduce ------------------------------------------------------------------
# np.add.reduce(x) etc.  The default axis of ufunc.reduce is 0, not None.

@implements_reduce(np.add)
def add_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.add.reduce`` for traced values."""
    return sum(a, axis, dtype, out, keepdims, initial, where)


@implements_reduce(np.multiply)
def multiply_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.multiply.reduce`` for traced values."""
    return prod(a, axis, dtype, out, keepdims, initial, where)


@implements_reduce(np.maximum)
def maximum_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.maximum.reduce`` for traced values."""
    return max(a if dtype is None else astype(a, dtype), axis, out, keepdims, initial, where)


@implements_reduce(np.minimum)
def minimum_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``np.minimum.reduce`` for traced values."""
    return min(a if dtype is None else astype(a, dtype), axis, out, keepdims, initial, where)


