"""Statistical, searching, sorting, set and utility functions."""
from __future__ import annotations

from collections import namedtuple

from ._base import array_out, arrays_out, fn
from ._dtypes import as_dtype

# ---- statistical -------------------------------------------------------------------------


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001 - the standard's name
    return array_out(fn("max")(x, axis=_axis(axis), keepdims=keepdims))


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return array_out(fn("min")(x, axis=_axis(axis), keepdims=keepdims))


def mean(x, /, *, axis=None, keepdims=False):
    return array_out(fn("mean")(x, axis=_axis(axis), keepdims=keepdims))


def _accumulator(x, dtype, where):
    return None if dtype is None else as_dtype(dtype, where)


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    return array_out(fn("sum")(x, axis=_axis(axis), dtype=_accumulator(x, dtype, "sum"), keepdims=keepdims))


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    return array_out(fn("prod")(x, axis=_axis(axis), dtype=_accumulator(x, dtype, "prod"), keepdims=keepdims))


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Standard deviation with ``correction`` (NumPy's ``ddof``) degrees of freedom removed."""
    return array_out(fn("std")(x, axis=_axis(axis), ddof=correction, keepdims=keepdims))


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Variance with ``correction`` (NumPy's ``ddof``) degrees of freedom removed."""
    return array_out(fn("var")(x, axis=_axis(axis), ddof=correction, keepdims=keepdims))


def _cumulative(name, x, axis, dtype, include_initial):
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"npfunc.array_api.{name}: axis is required when x has more than one dimension")
        axis = 0
    return array_out(fn(name)(x, axis=axis, dtype=_accumulator(x, dtype, name), include_initial=include_initial))


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative("cumulative_sum", x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative("cumulative_prod", x, axis, dtype, include_initial)


# ---- searching ---------------------------------------------------------------------------


def argmax(x, /, *, axis=None, keepdims=False):
    return array_out(fn("argmax")(x, axis=axis, keepdims=keepdims))


def argmin(x, /, *, axis=None, keepdims=False):
    return array_out(fn("argmin")(x, axis=axis, keepdims=keepdims))


def count_nonzero(x, /, *, axis=None, keepdims=False):
    return array_out(fn("count_nonzero")(x, axis=_axis(axis), keepdims=keepdims))


def nonzero(x, /):
    if x.ndim == 0:
        raise ValueError("npfunc.array_api.nonzero: x must have at least one dimension")
    return tuple(fn("nonzero")(x))


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    return array_out(fn("searchsorted")(x1, x2, side=side, sorter=sorter))


def where(condition, x1, x2, /):
    return array_out(fn("where")(condition, x1, x2))


# ---- sorting -----------------------------------------------------------------------------


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    """Indices that sort ``x`` along ``axis``; ``descending`` keeps equal values in their
    original order when ``stable``."""
    if not descending:
        return array_out(fn("argsort")(x, axis=axis, stable=stable))
    n = x.shape[axis]
    # sort the reversed values ascending (stably), reverse the result: descending, ties in order
    reversed_order = fn("argsort")(fn("flip")(x, axis=axis), axis=axis, stable=stable)
    return (n - 1) - fn("flip")(reversed_order, axis=axis)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """``x`` sorted along ``axis`` (NaNs last ascending, first descending)."""
    if not descending:
        return array_out(fn("sort")(x, axis=axis, stable=stable))
    return array_out(fn("take_along_axis")(x, argsort(x, axis=axis, descending=True, stable=stable), axis))


# ---- sets --------------------------------------------------------------------------------

UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def unique_all(x, /):
    """The distinct values of ``x`` (each NaN distinct), first indices, inverse indices
    (shaped like ``x``) and counts.  Their number depends on the values: this runs
    under grad and jvp, not under vmap."""
    return UniqueAllResult(*arrays_out(fn("unique_all")(x)))


def unique_counts(x, /):
    return UniqueCountsResult(*arrays_out(fn("unique_counts")(x)))


def unique_inverse(x, /):
    return UniqueInverseResult(*arrays_out(fn("unique_inverse")(x)))


def unique_values(x, /):
    return array_out(fn("unique_values")(x))


# ---- utility -----------------------------------------------------------------------------


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return array_out(fn("all")(x, axis=_axis(axis), keepdims=keepdims))


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return array_out(fn("any")(x, axis=_axis(axis), keepdims=keepdims))


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    kwargs = {}
    if prepend is not None:
        kwargs["prepend"] = prepend
    if append is not None:
        kwargs["append"] = append
    return array_out(fn("diff")(x, n=n, axis=axis, **kwargs))
