"""Sorting: ``sort`` and ``partition`` (primitives, differentiable through their
permutation), ``sort_complex``, and ``argsort``, ``argpartition``, ``lexsort``,
``searchsorted`` and ``unique`` (non-differentiable primitives).

The derivative of ``sort`` moves each tangent with its entry: the JVP gathers
the tangent with the stable argsort permutation, the VJP gathers the
cotangent with the inverse permutation.  At ties the sorted values are not
differentiable; the convention (as in JAX) is the stable order: the k-th of
equal entries in the input feeds the k-th tied output position.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.context import describe_stack
from ..core.errors import DataDependentShapeError, UnsupportedOperationError
from ..core.primitive import Primitive, Sample
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..interpreters.batching import materialize_front, move_to_front
from . import call_samples
from .data_dependent import recorded
from .families import composite, composite_via, normalize_axes
from .indexing.gather import take, take_along_axis
from .sampling import FLOATS, array
from .shape.basic import ravel, reshape

# ---- argsort -----------------------------------------------------------------------------


def _argsort_impl(x, *, axis, stable):
    return np.argsort(x, axis=axis, kind="stable" if stable else None)


def _axis_batch(prim):
    def batch(vals, dims, *, axis, **params):
        (x,), (d,) = vals, dims
        return prim.bind(x, axis=axis + (axis >= d), **params), d

    return batch


def _sort_samples(rng, stable_param=False):
    out = []
    for dt in FLOATS:
        for shape, axis in (((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1)):
            params = {"axis": axis, "stable": True} if stable_param else {"axis": axis}
            out.append(Sample(array(rng, shape, dt), **params))
    return out


_argsort = Primitive("argsort", _argsort_impl, differentiable=False,
                     samples=lambda rng: _sort_samples(rng, True) + [
                         Sample(np.array([2.0, 1.0, 2.0, 1.0, 0.5]), axis=0, stable=True, label="ties"),
                         Sample(np.array([[3, 1, 2], [1, 1, 0]]), axis=1, stable=True, label="integers")])
_argsort.batch = _axis_batch(_argsort)


def _sort_kind(kind, stable, fn_name):
    if stable is not None and kind is not None:
        raise ValueError(f"{fn_name}: `kind` and `stable` parameters can't both be specified")
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise ValueError(f"{fn_name}: sort kind must be one of 'quick', 'heap', or 'stable' (got {kind!r})")
    return bool(stable) or kind in ("mergesort", "stable")


def _flat_axis(a, axis, fn_name):
    a = a if isinstance(a, Tracer) else np.asarray(a)
    if axis is None:
        return ravel(a), 0
    return a, normalize_axes(axis, ndim_of(a), fn_name)[0]


@composite(np.argsort, samples=call_samples.sort(), differentiable=False)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.argsort`` for traced and plain values (integer output, no derivative)."""
    if order is not None:
        raise UnsupportedOperationError("np.argsort: 'order' (structured arrays) is not supported")
    stable = _sort_kind(kind, stable, "argsort")
    a, axis = _flat_axis(a, axis, "argsort")
    if ndim_of(a) == 0:
        return np.zeros((), np.intp)
    return _argsort.bind(a, axis=axis, stable=stable)


argsort.primitive = _argsort  # type: ignore[attr-defined]

# ---- inverse permutation (used by the sort VJP) ---------------------------------------------


def _invert_impl(perm, *, axis):
    perm = np.asarray(perm)
    n = perm.shape[axis]
    ranks = np.arange(n).reshape((n,) + (1,) * (perm.ndim - axis - 1))
    out = np.empty_like(perm)
    np.put_along_axis(out, perm, np.broadcast_to(ranks, perm.shape), axis=axis)
    return out


_invert = Primitive("invert_permutation", _invert_impl, differentiable=False,
                    # 1-D only: the generated vmap test shuffles entries, which keeps 1-D
                    # permutations valid (tests/test_indexing.py covers the n-d case)
                    samples=lambda rng: [Sample(rng.permutation(5), axis=0), Sample(np.arange(1), axis=0)],
                    notes="inverse of permutations along axis (O(n), no sort)")
_invert.batch = _axis_batch(_invert)

# ---- sort ---------------------------------------------------------------------------------


def _sort_jvp(primals, tangents, out, *, axis):
    perm = _argsort.bind(primals[0], axis=axis, stable=True)
    return take_along_axis(tangents[0], perm, axis)


def _sort_vjp(g, primals, out, needs, *, axis):
    perm = _argsort.bind(primals[0], axis=axis, stable=True)
    return (take_along_axis(g, _invert.bind(perm, axis=axis), axis),)


_sort = Primitive("sort", lambda x, *, axis: np.sort(x, axis=axis), jvp=_sort_jvp, vjp=_sort_vjp,
                  samples=_sort_samples,
                  notes="ties: the stable order decides which input feeds which output (as in JAX)")
_sort.batch = _axis_batch(_sort)


@composite(np.sort, samples=call_samples.sort())
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.sort`` for traced and plain values; the sorted values carry the
    derivatives of the entries they came from."""
    if order is not None:
        raise UnsupportedOperationError("np.sort: 'order' (structured arrays) is not supported")
    _sort_kind(kind, stable, "sort")
    a, axis = _flat_axis(a, axis, "sort")
    if ndim_of(a) == 0:
        raise np.exceptions.AxisError("sort: axis -1 is out of bounds for array of dimension 0")
    return _sort.bind(a, axis=axis)


sort.primitive = _sort  # type: ignore[attr-defined]

# ---- searchsorted ----------------------------------------------------------------------------


def _searchsorted_impl(a, v, *, side):
    return np.searchsorted(a, v, side=side)


def _searchsorted_batch(vals, dims, *, side):
    (a, v), (da, dv) = vals, dims
    if da is None:
        return _searchsorted.bind(a, v, side=side), dv
    from .elementwise.arithmetic import isnan, less, less_equal, logical_and, logical_not, logical_or
    from .reductions.basic import sum as reduce_sum

    a = move_to_front(a, da)
    size, n = shape_of(a)
    v = materialize_front(v if isinstance(v, Tracer) else np.asarray(v), dv, size)
    vshape = tuple(shape_of(v))
    col = reshape(v, (size, -1, 1))
    row = reshape(a, (size, 1, n))
    # NumPy orders NaN after every number: count the entries of a that sort before v.
    if side == "left":
        before = logical_or(less(row, col), logical_and(isnan(col), logical_not(isnan(row))))
    else:
        before = logical_or(less_equal(row, col), isnan(col))
    count = reduce_sum(before, axis=-1)
    from .elementwise.arithmetic import astype

    return reshape(astype(count, np.intp), vshape), 0


def _searchsorted_samples(rng):
    a = np.sort(array(rng, (6,)))
    return [Sample(a, array(rng, (4,)), side="left"),
            Sample(a, array(rng, (2, 3)), side="right"),
            Sample(np.array([0.0, 1.0, 2.0, 4.0, np.nan]), np.array([1.0, np.nan, -1.0, 5.0]), side="left",
                   label="nan"),
            Sample(np.array([0.0, 1.0, 2.0, 4.0, np.nan]), np.array([1.0, np.nan, -1.0, 5.0]), side="right",
                   label="nan"),
            Sample(np.sort(array(rng, (5,), np.float32)), array(rng, (3,), np.float32), side="left")]


_searchsorted = Primitive("searchsorted", _searchsorted_impl, differentiable=False,
                          batch=_searchsorted_batch, samples=_searchsorted_samples)


@composite(np.searchsorted, samples=call_samples.searchsorted, differentiable=False)
def searchsorted(a, v, side="left", sorter=None):
    """``np.searchsorted`` for traced and plain values (integer output, no derivative)."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right' (got {side!r})")
    a = a if isinstance(a, Tracer) else np.asarray(a)
    if ndim_of(a) != 1:
        raise ValueError("searchsorted: object too deep for desired array (a must be 1-D)")
    if sorter is not None:
        a = take(a, sorter)
    return _searchsorted.bind(a, v, side=side)


searchsorted.primitive = _searchsorted  # type: ignore[attr-defined]

# ---- unique ---------------------------------------------------------------------------------


def _unique_rows(x, batch_ndim, equal_nan):
    """np.unique of every batch element at once (they must agree on the count)."""
    lead = x.shape[:batch_ndim]
    rows = math.prod(lead)
    flat = x.reshape(rows, -1)
    n = flat.shape[1]
    perm = np.argsort(flat, axis=1, kind="stable")
    ordered = np.take_along_axis(flat, perm, axis=1)
    new = np.ones(flat.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    if equal_nan and flat.dtype.kind in "fc":
        new[:, 1:] &= ~(np.isnan(ordered[:, 1:]) & np.isnan(ordered[:, :-1]))
    counts_per_row = new.sum(axis=1)
    if rows and (counts_per_row != counts_per_row[0]).any():
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.unique under vmap: the batch elements have different numbers "
            f"of unique values ({sorted(set(counts_per_row.tolist()))}), so the result would be "
            "ragged. Compute np.unique outside vmap, or use np.sort and a mask of first "
            "occurrences (fixed shape) instead.")
    u = int(counts_per_row[0]) if rows else 0
    values = ordered[new].reshape(rows, u)
    index = perm[new].reshape(rows, u)
    group = np.cumsum(new, axis=1) - 1
    inverse = np.empty(flat.shape, dtype=np.intp)
    np.put_along_axis(inverse, perm, group, axis=1)
    starts = np.nonzero(new)[1].reshape(rows, u)
    counts = np.diff(np.concatenate([starts, np.full((rows, 1), n)], axis=1), axis=1)
    return (values.reshape(lead + (u,)), index.reshape(lead + (u,)),
            inverse.reshape(x.shape), counts.reshape(lead + (u,)))


def _unique_impl(x, *, axis, equal_nan, batch_ndim):
    if batch_ndim:
        return _unique_rows(np.asarray(x), batch_ndim, equal_nan)
    kwargs = {} if axis is None else {"axis": axis}
    return tuple(np.unique(x, return_index=True, return_inverse=True, return_counts=True,
                           equal_nan=equal_nan, **kwargs))


def _unique_batch(vals, dims, *, axis, equal_nan, batch_ndim):
    if axis is not None:
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.unique(..., axis=...) is not supported under vmap (the "
            "result's shape depends on the data). Compute it outside vmap.")
    x = vals[0]
    d = dims[0]
    if d >= batch_ndim:  # batch axes stay in front
        from .shape.basic import moveaxis

        x = moveaxis(x, d, 0)
        d = 0
    outs = _unique.bind(x, axis=None, equal_nan=equal_nan, batch_ndim=batch_ndim + 1)
    return outs, (d,) * 4


def _unique_samples(rng):
    return [Sample(np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 0.5]]), axis=None, equal_nan=True, batch_ndim=0),
            Sample(np.array([3, 1, 3, 1, 2]), axis=None, equal_nan=True, batch_ndim=0, label="integers"),
            Sample(array(rng, (2, 4), np.float32), axis=None, equal_nan=True, batch_ndim=1,
                   label="already batched")]


_unique = Primitive("unique", _unique_impl, differentiable=False, multiple_results=True,
                    batch=_unique_batch, samples=_unique_samples,
                    notes="values, first indices, inverse, counts; under vmap the batch elements "
                          "must have equally many unique values")


@composite(np.unique, samples=call_samples.unique())
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, sorted=True):
    """``np.unique`` for traced and plain values.  The values are differentiable
    (the derivative of each is its first occurrence's); index, inverse and counts
    are not.  Under vmap only with ``axis=None`` and when every batch element has
    as many unique values."""
    ar = ar if isinstance(ar, Tracer) else np.asarray(ar)
    stage = recorded(ar)
    if stage is not None:
        raise DataDependentShapeError(
            f"{describe_stack()}: the shape of np.unique(ar) depends on the values of its input, and "
            f"{stage} records every shape at the first call, so a later call would reuse it. Compute "
            "np.unique outside jit, or use np.sort and a mask of first occurrences (fixed shape), or "
            "npfunc.numpy.union1d(ar, ar[:0], size=k) for exactly k sorted unique values.")
    if axis is not None:
        axis = normalize_axes(axis, ndim_of(ar), "unique")[0]
    values, index, inverse, counts = _unique.bind(ar, axis=axis, equal_nan=bool(equal_nan), batch_ndim=0)
    if isinstance(ar, Tracer) and dtype_of(ar).kind in "fc":
        # The values are the input's entries at their first occurrences (NumPy's index):
        # gathered from it, they carry its derivative (at a tie, the first occurrence's).
        values = take(ravel(ar), index) if axis is None else take(ar, index, axis=axis)
    extra = [r for r, want in ((index, return_index), (inverse, return_inverse), (counts, return_counts))
             if want]
    return (values, *extra) if extra else values


unique.primitive = _unique  # type: ignore[attr-defined]


def _sorted_values(target):
    """NumPy's np.unique_values (>= 2.3) may return the values in any order;
    npfunc's are sorted: the generated tests compare them sorted."""
    def call(x):
        return np.sort(target(x))

    return call


@composite(np.unique_values, samples=call_samples.unique(False), call=_sorted_values,
           notes="sorted (NumPy >= 2.3 leaves the order unspecified)")
def unique_values(x):
    """``np.unique_values`` for traced and plain values (no derivative; sorted,
    each NaN its own value)."""
    return unique(x, equal_nan=False)


@composite(np.unique_counts, samples=call_samples.unique(False), differentiable=False)
def unique_counts(x):
    """``np.unique_counts``: (values, counts) as NumPy's named tuple."""
    values, counts = unique(x, return_counts=True, equal_nan=False)
    return _result_type(np.unique_counts)(values, counts)


@composite(np.unique_inverse, samples=call_samples.unique(False), differentiable=False)
def unique_inverse(x):
    """``np.unique_inverse``: (values, inverse_indices) as NumPy's named tuple."""
    values, inverse = unique(x, return_inverse=True, equal_nan=False)
    return _result_type(np.unique_inverse)(values, inverse)


@composite(np.unique_all, samples=call_samples.unique(False), differentiable=False)
def unique_all(x):
    """``np.unique_all``: (values, indices, inverse_indices, counts) as NumPy's named tuple."""
    values, index, inverse, counts = unique(x, return_index=True, return_inverse=True, return_counts=True,
                                            equal_nan=False)
    return _result_type(np.unique_all)(values, index, inverse, counts)


for _fn in (unique_values, unique_counts, unique_inverse, unique_all):
    _fn.primitive = _unique  # type: ignore[attr-defined]  (no derivative)
del _fn


def _result_type(fn):
    """The named tuple class NumPy's ``fn`` returns (found from a tiny call)."""
    return type(fn(np.zeros(1)))


# ---- partition, argpartition ------------------------------------------------------------------
#
# NumPy leaves the order inside each part unspecified, so the values are
# NumPy's own (``np.partition``).  The derivative moves each tangent with its
# entry, as for ``sort``: the permutation is recovered by matching the output
# with the input in sorted order (equal values in the stable order, as at the
# ties of ``sort``).


def _matching(x, out, axis):
    """``p`` with ``x[p] == out`` along ``axis`` (``out`` a rearrangement of ``x``)."""
    ranks = _invert.bind(_argsort.bind(out, axis=axis, stable=True), axis=axis)
    return take_along_axis(_argsort.bind(x, axis=axis, stable=True), ranks, axis)


def _partition_jvp(primals, tangents, out, *, kth, axis):
    return take_along_axis(tangents[0], _matching(primals[0], out, axis), axis)


def _partition_vjp(g, primals, out, needs, *, kth, axis):
    back = _invert.bind(_matching(primals[0], out, axis), axis=axis)
    return (take_along_axis(g, back, axis),)


def _partition_prim_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (7,), dt), kth=(3,), axis=0),
                Sample(array(rng, (3, 5), dt), kth=(0, 4), axis=1)]
    out.append(Sample(np.array([2.0, 1.0, 2.0, 1.0, 0.5, 2.0]), kth=(2,), axis=0, kink=True, label="ties"))
    return out


_partition = Primitive("partition", lambda x, *, kth, axis: np.partition(x, kth, axis=axis),
                       jvp=_partition_jvp, vjp=_partition_vjp, samples=_partition_prim_samples,
                       notes="values are NumPy's; the derivative follows each entry (ties: stable order)")
_partition.batch = _axis_batch(_partition)
_argpartition = Primitive("argpartition", lambda x, *, kth, axis: np.argpartition(x, kth, axis=axis),
                          differentiable=False, samples=_partition_prim_samples,
                          notes="integer indices: no derivative")
_argpartition.batch = _axis_batch(_argpartition)


def _kth(kth, fn_name):
    if isinstance(kth, Tracer):
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.{fn_name} with a traced kth is not supported (it decides which "
            "entries are compared). Pass kth as a plain int or sequence of ints, or use np.sort.")
    return tuple(int(k) for k in np.atleast_1d(kth))


def _partition_args(a, kth, axis, kind, order, fn_name):
    if order is not None:
        raise UnsupportedOperationError(f"np.{fn_name}: 'order' (structured arrays) is not supported")
    if kind != "introselect":
        raise ValueError(f"select kind must be 'introselect' (got {kind!r})")
    a, axis = _flat_axis(a, axis, fn_name)
    if ndim_of(a) == 0:
        raise np.exceptions.AxisError("axis -1 is out of bounds for array of dimension 0")
    n = shape_of(a)[axis]
    kth = _kth(kth, fn_name)
    for k in kth:
        if not -n <= k < n:
            raise ValueError(f"kth(={k}) out of bounds ({n})")
    return a, tuple(k % n for k in kth), axis


def _partition_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (7,), dt), 3), Sample(array(rng, (3, 5), dt), [0, -1], axis=1),
                Sample(array(rng, (4, 3), dt), 2, axis=0)]
    out += [Sample(array(rng, (2, 3)), 4, axis=None, label="flattened"),
            Sample(np.array([[3, 1, 2, 1], [0, 5, 5, 1]]), 1, label="integers")]
    return out


@composite(np.partition, samples=_partition_samples)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``np.partition`` for traced and plain values: NumPy's arrangement, each
    entry carrying its own derivative."""
    a, kth, axis = _partition_args(a, kth, axis, kind, order, "partition")
    return _partition.bind(a, kth=kth, axis=axis)


@composite(np.argpartition, samples=_partition_samples, differentiable=False)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """``np.argpartition`` for traced and plain values (integer output, no derivative)."""
    a, kth, axis = _partition_args(a, kth, axis, kind, order, "argpartition")
    return _argpartition.bind(a, kth=kth, axis=axis)


# ---- lexsort, sort_complex ----------------------------------------------------------------


def _lexsort_batch(vals, dims, *, axis):
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    keys = [materialize_front(v, d, size) for v, d in zip(vals, dims)]
    return _lexsort.bind(*keys, axis=axis + 1), 0


def _lexsort_prim_samples(rng):
    return [Sample(np.round(array(rng, (6,))), np.array([1, 0, 1, 1, 0, 0]), axis=0),
            Sample(np.round(array(rng, (3, 4), np.float32)), np.round(array(rng, (3, 4))), axis=1)]


_lexsort = Primitive("lexsort", lambda *keys, axis: np.lexsort(keys, axis=axis), differentiable=False,
                     batch=_lexsort_batch, samples=_lexsort_prim_samples,
                     notes="integer indices: no derivative; the last key is the primary one")


def _lexsort_call(k1, k2, *, axis=-1):
    return np.lexsort((k1, k2), axis=axis)


def _lexsort_samples(rng):
    ties = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    return [Sample(array(rng, (5,)), ties),
            Sample(np.round(array(rng, (2, 4))), np.round(array(rng, (2, 4))), axis=0),
            Sample(np.arange(5)[::-1].copy(), ties.astype(np.float32), label="integer and float32 keys")]


@composite_via(np.lexsort, target=_lexsort_call, samples=_lexsort_samples, differentiable=False)
def lexsort(keys, axis=-1):
    """``np.lexsort`` for traced and plain keys (integer output, no derivative)."""
    if isinstance(keys, (Tracer, np.ndarray)):
        keys = [keys[i] for i in range(shape_of(keys)[0])] if ndim_of(keys) > 0 else [keys]
    keys = [k if isinstance(k, Tracer) else np.asarray(k) for k in keys]
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    if len({tuple(shape_of(k)) for k in keys}) != 1:
        raise ValueError("all keys need to be the same shape")
    nd = ndim_of(keys[0])
    if nd == 0:  # one entry: index 0
        return np.lexsort([np.zeros(())])
    return _lexsort.bind(*keys, axis=normalize_axes(axis, nd, "lexsort")[0])


def _sort_complex_samples(rng):
    from .elementwise.samples import complex_array

    ties = np.array([1 + 2j, 1 - 1j, -1 + 0j, 1 + 2j])
    return [Sample(complex_array(rng, (5,))), Sample(complex_array(rng, (2, 3), np.complex64)),
            Sample(array(rng, (4,)), label="float64 input"), Sample(array(rng, (4,), np.float32), label="float32"),
            Sample(ties, kink=True, label="ties"), Sample(np.array([3, 1, 2], np.int16), label="int16")]


@composite(np.sort_complex, samples=_sort_complex_samples)
def sort_complex(a):
    """``np.sort_complex``: sorted by real part, then imaginary part, as a complex
    array (NumPy's dtype rules); entries keep their derivatives."""
    from .elementwise.arithmetic import astype

    out = sort(a)
    dtype = dtype_of(out)
    if dtype.kind == "c":
        return out
    target = "F" if dtype.char in "bhBH" else ("G" if dtype.char == "g" else "D")
    return astype(out, np.dtype(target))
