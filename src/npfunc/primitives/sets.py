"""Set routines: ``isin`` (a boolean mask: fixed shape, no derivative, works
under every transform) and ``intersect1d``, ``union1d``, ``setdiff1d``,
``setxor1d``, whose length depends on the values.

The set operations return values taken from their inputs, so they are
differentiable: each output entry carries the derivative of the input entry
it is taken from -- the first occurrence in ``ar1`` (then ``ar2``), the
entry NumPy's ``return_index``/``return_indices`` name.  Where values are
concrete (grad, jvp, vjp) NumPy computes the index maps; under vmap and jit
they raise ``DataDependentShapeError`` unless npfunc's ``size=`` keyword asks
for a fixed length: the sorted result's first ``size`` entries, padded with
``fill_value`` (default 0), computed from sorts and masks every transform
runs.  With ``size=``, ``assume_unique`` is a hint: the result is the same
for inputs that are unique.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.primitive import Primitive, Sample
from ..core.values import dtype_of, shape_of
from ..interpreters.batching import materialize_front
from .data_dependent import as_array, concrete, fixed_size, is_traced
from .elementwise.arithmetic import equal, isnan, logical_and, logical_not, logical_or, not_equal
from .elementwise.logic import logical_xor
from .families import composite_via
from .indexing.gather import take
from .sampling import FLOATS, array
from .selection import _sized_take
from .shape.basic import concatenate, moveaxis, ravel
from .sorting import argsort

# ---- isin -------------------------------------------------------------------------------------


def _isin_rows(element, test, batch_ndim, invert):
    """np.isin for each of the leading ``batch_ndim`` rows at once: the values are
    coded by rank, then (row, code) pairs are compared as integers."""
    element, test = np.asarray(element), np.asarray(test)
    lead = element.shape[:batch_ndim]
    rows = math.prod(lead)
    if rows == 0 or element.size == 0:
        return np.zeros(element.shape, bool) ^ bool(invert)
    e = element.reshape(rows, -1)
    t = test.reshape(rows, -1)
    both = np.concatenate([e.ravel(), t.ravel()])
    _, codes = np.unique(both, return_inverse=True)
    width = int(codes.max()) + 1 if codes.size else 1
    keys_e = codes[:e.size].reshape(e.shape) + width * np.arange(rows)[:, None]
    keys_t = codes[e.size:].reshape(t.shape) + width * np.arange(rows)[:, None]
    found = np.isin(keys_e, keys_t)
    if e.dtype.kind in "fc":
        found &= ~np.isnan(e)  # NaN is in no set (NaN != NaN), as in np.isin
    return (~found if invert else found).reshape(element.shape)


def _isin_impl(element, test, *, assume_unique, invert, kind, batch_ndim):
    if batch_ndim:
        return _isin_rows(element, test, batch_ndim, invert)
    return np.isin(element, test, assume_unique=assume_unique, invert=invert, kind=kind)


def _isin_batch(vals, dims, *, batch_ndim, **params):
    (e, t), (de, dt) = vals, dims
    if dt is None:  # elementwise in ``element``: its batch axis goes along
        if batch_ndim:
            e, de = moveaxis(e, de, batch_ndim), batch_ndim
        return _isin.bind(e, t, batch_ndim=batch_ndim, **params), de
    size = shape_of(t)[dt]
    e, t = materialize_front(e, de, size), materialize_front(t, dt, size)
    return _isin.bind(e, t, batch_ndim=batch_ndim + 1, **params), 0


def _isin_prim_samples(rng):
    e = np.round(array(rng, (2, 3)))
    return [Sample(e, np.array([0.0, 1.0, np.nan]), assume_unique=False, invert=False, kind=None, batch_ndim=0),
            Sample(np.array([[1.0, np.nan], [2.0, 3.0]]), np.array([[np.nan, 1.0, 1.0], [3.0, 4.0, 5.0]]),
                   assume_unique=False, invert=True, kind=None, batch_ndim=1, label="already batched")]


_isin = Primitive("isin", _isin_impl, differentiable=False, batch=_isin_batch, samples=_isin_prim_samples,
                  notes="a boolean mask shaped like element: no derivative; NaN is in no set")


def _isin_call(element, test_elements, *, invert=False, kind=None):
    return np.isin(element, test_elements, invert=invert, kind=kind)


def _isin_samples(rng):
    out = []
    for dt in FLOATS:
        e = np.round(array(rng, (3, 4), dt))
        out += [Sample(e, np.round(array(rng, (5,), dt))), Sample(e, np.round(array(rng, (2, 2))), invert=True)]
    out += [Sample(np.array([1.0, np.nan, 2.0]), np.array([np.nan, 2.0]), label="NaN"),
            Sample(np.arange(6).reshape(2, 3), np.array([1, 4, 9]), kind="table", label="integers, table"),
            Sample(np.arange(4), np.array([1.0, 2.5]), label="integer in float")]
    return out


@composite_via(np.isin, target=_isin_call, samples=_isin_samples, differentiable=False)
def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """``np.isin`` for traced and plain values: a boolean mask shaped like
    ``element`` (no derivative); under vmap either argument may be batched."""
    if not is_traced(element, test_elements):
        return np.isin(element, test_elements, assume_unique=assume_unique, invert=invert, kind=kind)
    if kind not in (None, "sort", "table"):
        raise ValueError(f"Invalid kind: '{kind}'. Please use None, 'sort' or 'table'.")
    if kind == "table" and any(dtype_of(v).kind not in "biu" for v in (as_array(element),
                                                                       as_array(test_elements))):
        raise ValueError("The 'table' method is only supported for boolean or integer arrays. Please "
                         "select 'sort' or None for kind.")
    return _isin.bind(as_array(element), as_array(test_elements), assume_unique=bool(assume_unique),
                      invert=bool(invert), kind=kind, batch_ndim=0)


# ---- the set operations ---------------------------------------------------------------------

def _fix(name, args):
    return (f"Use np.isin masks, which keep the shape (np.where(np.isin(a, b), a, fill)), or "
            f"npfunc.numpy.{name}({args}, size=k, fill_value=...) for exactly k sorted values (padded).")


def _flat(*arrays):
    return [ravel(as_array(a)) for a in arrays]


def _joined(a, b):
    return concatenate([a, b])


def _sorted(x):
    """(sorted values, differentiable; the stable permutation)."""
    perm = argsort(x, kind="stable")
    return take(x, perm), perm


def _shifted(mask, first: bool):
    """``mask`` compared with its neighbour: [first] + mask[1:] (helper for groups)."""
    return concatenate([np.array([first]), mask])


def _group_starts(s, collapse_nan=True):
    """True at the first entry of each run of equal sorted values (NaNs one run)."""
    if shape_of(s)[0] == 0:
        return np.zeros(0, bool)
    new = not_equal(s[1:], s[:-1])
    if collapse_nan and dtype_of(s).kind in "fc":
        new = logical_and(new, logical_not(logical_and(isnan(s[1:]), isnan(s[:-1]))))
    return _shifted(new, True)


def _sized(values, keep, size, fill_value, fn_name):
    return _sized_take(values, keep, 0, fixed_size(size, fn_name), 0 if fill_value is None else fill_value,
                       fn_name)


def _union_sized(a, b, size, fill_value):
    s, _ = _sorted(_joined(a, b))
    return _sized(s, _group_starts(s), size, fill_value, "union1d")


@composite_via(np.union1d, target=lambda ar1, ar2, *, size=None: _set_call("union1d", ar1, ar2, size=size),
               samples=lambda rng: _set_samples(rng, "union1d"))
def union1d(ar1, ar2, *, size=None, fill_value=None):
    """``np.union1d`` for traced and plain values: the sorted unique values, each
    carrying the derivative of its first occurrence (in ``ar1``, then ``ar2``)."""
    if size is None and not is_traced(ar1, ar2):
        return np.union1d(ar1, ar2)
    a, b = _flat(ar1, ar2)
    if size is not None:
        return _union_sized(a, b, size, fill_value)
    joined = _joined(a, b)
    _, first = np.unique(concrete(joined, "np.union1d(ar1, ar2)", _fix("union1d", "ar1, ar2")),
                         return_index=True)
    return take(joined, first)


@composite_via(np.intersect1d, target=lambda ar1, ar2, *, size=None: _set_call("intersect1d", ar1, ar2, size=size),
               samples=lambda rng: _set_samples(rng, "intersect1d"))
def intersect1d(ar1, ar2, assume_unique=False, return_indices=False, *, size=None, fill_value=None):
    """``np.intersect1d`` for traced and plain values (``return_indices`` too):
    the common values carry the derivative of their first occurrence in ``ar1``."""
    if size is None and not is_traced(ar1, ar2):
        return np.intersect1d(ar1, ar2, assume_unique=assume_unique, return_indices=return_indices)
    a, b = _flat(ar1, ar2)
    if size is not None:
        if return_indices:
            raise UnsupportedOperationError(
                f"{describe_stack()}: np.intersect1d(..., return_indices=True) with size= is not "
                "supported; the positions of the sized values are np.searchsorted(np.sort(ar1), values) "
                "in the stable sort order (np.argsort(ar1, kind='stable')).")
        s, _ = _sorted(a)
        keep = logical_and(_group_starts(s), isin(s, b))
        return _sized(s, keep, size, fill_value, "intersect1d")
    fix = _fix("intersect1d", "ar1, ar2")
    c1 = concrete(a, "np.intersect1d(ar1, ar2)", fix)
    c2 = concrete(b, "np.intersect1d(ar1, ar2)", fix)
    _, i1, i2 = np.intersect1d(c1, c2, assume_unique=assume_unique, return_indices=True)
    # i1 indexes ravel(ar1); with assume_unique it indexes [ar1, ar2] (as NumPy's values do)
    values = take(_joined(a, b), i1)
    return (values, i1, i2) if return_indices else values


@composite_via(np.setdiff1d, target=lambda ar1, ar2, *, size=None: _set_call("setdiff1d", ar1, ar2, size=size),
               samples=lambda rng: _set_samples(rng, "setdiff1d"))
def setdiff1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """``np.setdiff1d`` for traced and plain values: the values of ``ar1`` not in
    ``ar2``, each carrying the derivative of its first occurrence in ``ar1``."""
    if size is None and not is_traced(ar1, ar2):
        return np.setdiff1d(ar1, ar2, assume_unique=assume_unique)
    a, b = _flat(ar1, ar2)
    if size is not None:
        if assume_unique:  # NumPy keeps ar1's order then
            return _sized(a, isin(a, b, invert=True), size, fill_value, "setdiff1d")
        s, _ = _sorted(a)
        keep = logical_and(_group_starts(s), isin(s, b, invert=True))
        return _sized(s, keep, size, fill_value, "setdiff1d")
    fix = _fix("setdiff1d", "ar1, ar2")
    c1 = concrete(a, "np.setdiff1d(ar1, ar2)", fix)
    c2 = concrete(b, "np.setdiff1d(ar1, ar2)", fix)
    if assume_unique:
        index = np.flatnonzero(np.isin(c1, c2, assume_unique=True, invert=True))
    else:
        u1, first = np.unique(c1, return_index=True)
        index = first[np.isin(u1, np.unique(c2), assume_unique=True, invert=True)]
    return take(a, index)


def _xor_keep_sized(s, perm, n1, assume_unique, a, b):
    """Which sorted entries NumPy's setxor1d keeps (fixed shape)."""
    if assume_unique:  # values seen exactly once (NaN never equals a neighbour)
        same = equal(s[1:], s[:-1])
        return logical_and(logical_not(_shifted(same, False)), logical_not(concatenate([same, np.array([False])])))
    keep = logical_and(_group_starts(s), logical_xor(isin(s, a), isin(s, b)))
    if dtype_of(s).kind not in "fc":
        return keep
    # NumPy keeps one NaN for each input that has one (NaN != NaN after np.unique)
    nan = isnan(s)
    from_b = perm >= n1
    first_nan = logical_and(nan, logical_not(_shifted(nan[:-1], False)))
    nan_b = logical_and(nan, from_b)
    first_nan_b = logical_and(nan_b, logical_not(_shifted(nan_b[:-1], False)))
    return logical_or(logical_and(keep, logical_not(nan)), logical_or(first_nan, first_nan_b))


@composite_via(np.setxor1d, target=lambda ar1, ar2, *, size=None: _set_call("setxor1d", ar1, ar2, size=size),
               samples=lambda rng: _set_samples(rng, "setxor1d"))
def setxor1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """``np.setxor1d`` for traced and plain values: the sorted values in exactly one
    of the inputs, each carrying the derivative of the entry it comes from."""
    if size is None and not is_traced(ar1, ar2):
        return np.setxor1d(ar1, ar2, assume_unique=assume_unique)
    a, b = _flat(ar1, ar2)
    joined = _joined(a, b)
    n1 = shape_of(a)[0]
    if size is not None:
        s, perm = _sorted(joined)
        if shape_of(s)[0] == 0:
            return _sized(s, np.zeros(0, bool), size, fill_value, "setxor1d")
        return _sized(s, _xor_keep_sized(s, perm, n1, assume_unique, a, b), size, fill_value, "setxor1d")
    fix = _fix("setxor1d", "ar1, ar2")
    c1 = concrete(a, "np.setxor1d(ar1, ar2)", fix)
    c2 = concrete(b, "np.setxor1d(ar1, ar2)", fix)
    if assume_unique:
        aux, source = np.concatenate([c1, c2]), np.arange(n1 + c2.size)
    else:
        u1, i1 = np.unique(c1, return_index=True)
        u2, i2 = np.unique(c2, return_index=True)
        aux, source = np.concatenate([u1, u2]), np.concatenate([i1, n1 + i2]).astype(np.intp)
    if aux.size == 0:
        return take(joined, np.zeros(0, np.intp))
    order = np.argsort(aux, kind="stable")
    s = aux[order]
    flag = np.concatenate(([True], s[1:] != s[:-1], [True]))
    return take(joined, source[order[flag[1:] & flag[:-1]]])


# ---- samples ----------------------------------------------------------------------------------

def _set_call(name, ar1, ar2, *, size=None):
    if size is None:
        return getattr(np, name)(ar1, ar2)
    from .. import numpy as npf

    return getattr(npf, name)(ar1, ar2, size=size, fill_value=-9.0)


def _set_samples(rng, name):
    """Sized calls (every transform runs them).  Repeats and values shared by both
    inputs are kinks (perturbing one copy changes the set), so those samples skip
    the finite differences; samples with distinct values test the derivatives."""
    out = []
    for dt in FLOATS:
        a = np.array([0.5, 1.5, -1.0, 1.5, 2.0], dt)
        b = np.array([[2.0, 3.0], [0.5, 0.5]], dt)
        out += [Sample(a, b, size=6, kink=True, label="repeats, overlap"),
                Sample(a, b, size=2, kink=True, label="repeats, overlap, truncated"),
                Sample(array(rng, (4,), dt), array(rng, (3,), dt), size=8, label="distinct")]
    out += [Sample(np.array([1.0, np.nan, 2.0, np.nan]), np.array([np.nan, 2.0, 4.0]), size=5, kink=True,
                   label="NaN"),
            Sample(np.array([3, 1, 3]), np.array([1.0, 2.5]), size=4, kink=True, label="integers with floats"),
            Sample(np.zeros(0), np.array([1.0, 2.0]), size=2, label="empty ar1")]
    return out
