"""Joining and splitting: the stack family, split (a primitive whose VJP is a
concatenation), tile, repeat, meshgrid, and ``array`` for lists of traced
values.  Everything but ``split`` is a composite of reshape, broadcast_to,
concatenate and gather, so derivatives and batching come from those."""
from __future__ import annotations

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer, clone
from ...core.values import broadcast_shapes, dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ..families import composite, normalize_axes
from ..indexing import aliasing
from ..indexing.gather import take
from ..sampling import FLOATS, array as sample_array, sequence_call
from . import samples
from .basic import (atleast_1d, atleast_2d, atleast_3d, broadcast_to, concatenate, concatenate_arrays,
                    ravel, reshape, stack)
from .basic import copy as _copy


def _arrays(tup, fn_name):
    arrays = [a if isinstance(a, Tracer) else np.asarray(a) for a in tup]
    if not arrays:
        raise ValueError(f"{fn_name}: need at least one array to concatenate")
    return arrays


def _as_list(x):
    return [x] if not isinstance(x, tuple) else list(x)


@composite(np.vstack, np.row_stack, samples=samples.vstack, call=sequence_call)
def vstack(tup, *, dtype=None, casting="same_kind"):
    """``np.vstack`` for traced and plain values."""
    return concatenate(_as_list(atleast_2d(*_arrays(tup, "vstack"))), axis=0, dtype=dtype)


@composite(np.hstack, samples=samples.hstack, call=sequence_call)
def hstack(tup, *, dtype=None, casting="same_kind"):
    """``np.hstack`` for traced and plain values."""
    arrays = _as_list(atleast_1d(*_arrays(tup, "hstack")))
    return concatenate(arrays, axis=0 if ndim_of(arrays[0]) == 1 else 1, dtype=dtype)


@composite(np.dstack, samples=samples.dstack, call=sequence_call)
def dstack(tup):
    """``np.dstack`` for traced and plain values."""
    return concatenate(_as_list(atleast_3d(*_arrays(tup, "dstack"))), axis=2)


@composite(np.column_stack, samples=samples.column_stack, call=sequence_call)
def column_stack(tup):
    """``np.column_stack`` for traced and plain values (1-D inputs become columns)."""
    arrays = [reshape(a, (-1, 1)) if ndim_of(a) < 2 else a for a in _arrays(tup, "column_stack")]
    return concatenate(arrays, axis=1)


def unstack(x, /, *, axis=0):
    """The values of ``np.unstack``, for traced and plain values: a tuple of the slices along ``axis``."""
    x = x if isinstance(x, Tracer) else np.asarray(x)
    axis = normalize_axes(axis, ndim_of(x), "unstack")[0]
    shape = tuple(shape_of(x))
    pieces = _split.bind(x, axis=axis, bounds=tuple((i, i + 1) for i in range(shape[axis])))
    rest = shape[:axis] + shape[axis + 1:]
    return tuple(reshape(p, rest) for p in pieces)


# ---- split (primitive) --------------------------------------------------------------

def _piece(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _split_impl(x, *, axis, bounds):
    return tuple(_piece(x, axis, a, b) for a, b in bounds)


def _split_jvp(primals, tangents, out, *, axis, bounds):
    return _split.bind(tangents[0], axis=axis, bounds=bounds)


def _contiguous(bounds, n):
    return bounds[0][0] == 0 and bounds[-1][1] == n and all(
        b[1] == c[0] for b, c in zip(bounds, bounds[1:]))


def _split_vjp(g, primals, out, needs, *, axis, bounds):
    (x,) = primals
    shape, dtype = tuple(shape_of(x)), dtype_of(x)
    pieces = []
    for (a, b), ct in zip(bounds, g):
        if ct is zero:
            ct = np.zeros(shape[:axis] + (b - a,) + shape[axis + 1:], dtype)
        pieces.append(ct)
    if _contiguous(bounds, shape[axis]):
        return (concatenate_arrays(pieces, axis),)
    from ..indexing.gather import index_add

    total = zero
    for (a, b), ct in zip(bounds, pieces):  # overlapping or partial pieces
        part = index_add(ct, (slice(None),) * axis + (slice(a, b),), shape)
        total = part if total is zero else total + part
    return (total,)


def _split_batch(vals, dims, *, axis, bounds):
    (x,), (d,) = vals, dims
    outs = _split.bind(x, axis=axis + (axis >= d), bounds=bounds)
    return outs, (d,) * len(outs)


def _split_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(sample_array(rng, (5, 3), dt), axis=0, bounds=((0, 2), (2, 3), (3, 5))),
                Sample(sample_array(rng, (2, 4), dt), axis=1, bounds=((0, 2), (2, 4)))]
    out += [Sample(sample_array(rng, (4, 3)), axis=0, bounds=((0, 3), (3, 3), (1, 4)), label="overlap"),
            Sample(sample_array(rng, (2, 5)), axis=1, bounds=((0, 0), (0, 5)), label="empty piece")]
    return out


_split = Primitive("split", _split_impl, jvp=_split_jvp, vjp=_split_vjp, batch=_split_batch,
                   samples=_split_samples, multiple_results=True,
                   notes="pieces are the slices bounds[i] of axis; the VJP concatenates")


def _split_at(ary, points, axis, fn_name):
    ary = ary if isinstance(ary, Tracer) else np.asarray(ary)
    nd = ndim_of(ary)
    axis = normalize_axes(axis, nd, fn_name)[0]
    n = shape_of(ary)[axis]
    edges = [0] + [int(p) for p in points] + [n]
    bounds = []
    for st, end in zip(edges, edges[1:]):
        a, b, _ = slice(st, end).indices(n)
        bounds.append((a, max(a, b)))
    return list(_split.bind(ary, axis=axis, bounds=tuple(bounds)))


def _sections(n, sections, fn_name, equal):
    sections = int(sections)
    if sections <= 0:
        raise ValueError(f"{fn_name}: number sections must be larger than 0.")
    if equal and n % sections:
        raise ValueError(f"{fn_name}: array split does not result in an equal division")
    each, extra = divmod(n, sections)
    sizes = [each + 1] * extra + [each] * (sections - extra)
    return list(np.cumsum(sizes)[:-1])


def array_split(ary, indices_or_sections, axis=0):
    """The values of ``np.array_split``, for traced and plain values."""
    if np.ndim(indices_or_sections) == 0:
        n = shape_of(ary)[normalize_axes(axis, ndim_of(ary), "array_split")[0]]
        points = _sections(n, indices_or_sections, "array_split", equal=False)
    else:
        points = list(indices_or_sections)
    return _split_at(ary, points, axis, "array_split")


def split(ary, indices_or_sections, axis=0):
    """The values of ``np.split``, for traced and plain values (each piece is a slice of ``ary``)."""
    if np.ndim(indices_or_sections) == 0:
        n = shape_of(ary)[normalize_axes(axis, ndim_of(ary), "split")[0]]
        points = _sections(n, indices_or_sections, "split", equal=True)
    else:
        points = list(indices_or_sections)
    return _split_at(ary, points, axis, "split")


# ---- tile, repeat --------------------------------------------------------------------

@composite(np.tile, samples=samples._tile)
def tile(A, reps):
    """``np.tile`` for traced and plain values (a broadcast, so the VJP is a sum)."""
    A = A if isinstance(A, Tracer) else np.asarray(A)
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shape = tuple(shape_of(A))
    nd = max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    if all(r == 1 for r in reps):
        return _copy(reshape(A, shape))
    inter = tuple(v for n in shape for v in (1, n))
    wide = tuple(v for r, n in zip(reps, shape) for v in (r, n))
    out = broadcast_to(reshape(A, inter), wide)
    return reshape(out, tuple(r * n for r, n in zip(reps, shape)))


@composite(np.repeat, samples=samples._repeat)
def repeat(a, repeats, axis=None):
    """``np.repeat`` for traced and plain values: a scalar count (a broadcast)
    or one count per element (a gather, so repeated gradients accumulate)."""
    if isinstance(repeats, Tracer):
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.repeat with traced repeats has a data-dependent shape; "
            "pass the counts as a plain array")
    a = a if isinstance(a, Tracer) else np.asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    axis = normalize_axes(axis, ndim_of(a), "repeat")[0]
    shape = tuple(shape_of(a))
    counts = np.asarray(repeats)
    if counts.dtype.kind not in "iu" and counts.size:
        counts = counts.astype(np.intp, casting="safe")
    if (counts < 0).any():
        raise ValueError("repeat: repeats may not contain negative values")
    if counts.size == 1 and counts.ndim <= 1:
        r = int(counts.reshape(()))
        expanded = reshape(a, shape[:axis + 1] + (1,) + shape[axis + 1:])
        wide = broadcast_to(expanded, shape[:axis + 1] + (r,) + shape[axis + 1:])
        return reshape(wide, shape[:axis] + (shape[axis] * r,) + shape[axis + 1:])
    if counts.shape != (shape[axis],):
        raise ValueError(f"repeat: operands could not be broadcast together with shape "
                         f"({shape[axis]},) ({', '.join(map(str, counts.shape))},)")
    return take(a, np.repeat(np.arange(shape[axis]), counts), axis=axis)


# ---- meshgrid ---------------------------------------------------------------------------

@composite(np.meshgrid, samples=samples._meshgrid)
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """``np.meshgrid`` for traced and plain values (``indexing`` 'xy' or 'ij', ``sparse``);
    with ``copy=False`` the grids are views of the inputs, as NumPy's are
    (read-only ones unless ``sparse``)."""
    if indexing not in ("xy", "ij"):
        raise ValueError("meshgrid: Valid values for `indexing` are 'xy' and 'ij'.")
    if not copy:
        return _meshgrid_views(xi, sparse, indexing)
    xs = [ravel(x if isinstance(x, Tracer) else np.asarray(x)) for x in xi]
    nd = len(xs)
    sizes = [shape_of(x)[0] for x in xs]
    if indexing == "xy" and nd > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for k, x in enumerate(xs):
        pos = k
        if indexing == "xy" and nd > 1 and k < 2:
            pos = 1 - k
        shape = [1] * nd
        shape[pos] = shape_of(x)[0]
        g = reshape(x, tuple(shape))
        g = g if sparse else broadcast_to(g, tuple(sizes))
        out.append(_copy(g) if copy and g is xi[k] else g)
    return tuple(out)


def _meshgrid_views(xi, sparse, indexing):
    """``np.meshgrid(..., copy=False)``: each input reshaped onto its axis (a view
    where NumPy's reshape gives one), broadcast to the grid unless ``sparse``."""
    from . import views

    nd = len(xi)
    grids = []
    for k, x in enumerate(xi):
        pos = 1 - k if indexing == "xy" and nd > 1 and k < 2 else k
        grids.append(views.reshape(x, (1,) * pos + (-1,) + (1,) * (nd - pos - 1)))
    if sparse:
        return tuple(grids)
    shape = broadcast_shapes(*[shape_of(g) for g in grids])
    return tuple(views.broadcast_to(g, shape) for g in grids)


# ---- array / asarray of (nested) lists of traced values ---------------------------------

def _has_tracer(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tracer(o) for o in obj)
    return False


def _build(obj):
    if isinstance(obj, Tracer):
        return obj
    if not isinstance(obj, (list, tuple)) or not _has_tracer(obj):
        return np.asarray(obj)
    parts = [_build(o) for o in obj]
    dtype = np.result_type(*[dtype_of(p) for p in parts])
    shapes = {tuple(shape_of(p)) for p in parts}
    if len(shapes) != 1:
        raise ValueError("array: setting an array element with a sequence. The requested array has "
                         f"an inhomogeneous shape (elements of shapes {sorted(shapes)})")
    from ..elementwise.arithmetic import astype

    return stack([astype(p, dtype) if dtype_of(p) != dtype else p for p in parts])


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """``np.array`` that also accepts (nested) lists and tuples of traced values
    and scalars: they are stacked (``np.array`` itself would try to convert each
    traced value to a plain number and raise).  Without traced values it is
    ``np.array``.  ``copy`` as in NumPy: ``None`` returns a traced array itself
    (or a view of it, for ``ndmin``) unless a copy is needed, ``False`` raises
    where one would be.

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda x: array([[x, 2 * x], [x * x, 1.0]]).sum())(np.float64(3.0))
    np.float64(9.0)
    """
    if not _has_tracer(object):
        return np.array(object, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)
    copy = _COPY_MODES.get(copy, copy)
    out = _build(object)
    if out is object:  # a traced value itself: NumPy copies it only when asked to, or when it must
        from .views import copy as copy_of, reshape as view_of

        cast = dtype is not None and dtype_of(out) != np.dtype(dtype)
        layout = True if order not in ("C", "F") else aliasing.decide(
            out, (lambda s: s.flags.c_contiguous) if order == "C" else (lambda s: s.flags.f_contiguous))
        if copy is False and (cast or layout is not True or aliasing.is_scalar(out)):
            raise ValueError(_NO_COPY)
        if copy or layout is False or aliasing.is_scalar(out):  # (np.asarray(np.float64(1)): a new 0-d array)
            out = copy_of(out, order=order if order in ("C", "F") else "K")
        elif layout is None and not cast:  # it may or may not be laid out so: writes through it are refused
            out = aliasing.make_view(out, clone(out), aliasing.Reshape(shape_of(out)), uncertain=True)
        if ndmin > ndim_of(out) and not cast:
            return view_of(out, (1,) * (ndmin - ndim_of(out)) + tuple(shape_of(out)))
    else:  # a new array, stacked from a sequence
        if copy is False:
            raise ValueError(_NO_COPY)
        if isinstance(out, Tracer):
            out._alias = "C"  # a new C-contiguous array (aliasing.FRESH_C)
    if dtype is not None and dtype_of(out) != np.dtype(dtype):
        from ..elementwise.arithmetic import astype

        out = aliasing.array_result(astype(out, dtype))  # a cast to a new array, 0-d included
    nd = ndim_of(out)
    if ndmin > nd:
        out = reshape(out, (1,) * (ndmin - nd) + tuple(shape_of(out)))
    return out


#: ``np._CopyMode`` (which array-API code passes as ``copy=``) as True, None, False
_COPY_MODES = {np._CopyMode.ALWAYS: True, np._CopyMode.IF_NEEDED: None, np._CopyMode.NEVER: False}

#: NumPy's refusal of ``copy=False`` when a copy is needed (its own words are a migration note)
_NO_COPY = ("Unable to avoid copy while creating an array as requested: np.array(..., copy=False) "
            "never copies; use np.asarray(x) (copy=None) to allow a copy when needed.")


def asarray(a, dtype=None, order=None, *, copy=None, like=None):
    """``np.asarray`` that also accepts (nested) lists of traced values; a traced
    value itself is returned as it is (no copy) unless ``dtype``, ``order`` or
    ``copy=True`` ask for one."""
    if not _has_tracer(a):
        return np.asarray(a, dtype=dtype, order=order, copy=copy)
    return array(a, dtype=dtype, copy=copy, order="K" if order is None else order)
