"""Rearranging entries: flip, roll, rot90, pad, the diagonal family
(diagonal, diag, diagflat) and triangles (tril, triu).

All are composites: slices and gathers (whose VJPs scatter), concatenation
and ``where`` with a constant mask, so derivatives and batching come from
those primitives.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import astype, where, zeros_like
from ..families import composite, normalize_axes
from . import samples
from ..indexing.gather import getitem, index_add, take
from .basic import broadcast_to, concatenate_arrays, moveaxis, ravel, reshape


def _array(x):
    return x if isinstance(x, Tracer) else np.asarray(x)


def _along(axis: int, index):
    return (slice(None),) * axis + (index,)


# ---- flip, roll, rot90 --------------------------------------------------------------

def flip(m, axis=None):
    """The values of ``np.flip``, for traced and plain values (``axis`` None, int or tuple)."""
    m = _array(m)
    axes = normalize_axes(axis, ndim_of(m), "flip")
    if not axes:
        return m
    index = [slice(None)] * (max(axes) + 1)
    for a in axes:
        index[a] = slice(None, None, -1)
    return getitem(m, tuple(index))



@composite(np.roll, samples=samples.roll)
def roll(a, shift, axis=None):
    """``np.roll`` for traced and plain values (``shift`` and ``axis`` ints or tuples;
    a traced integer ``shift``, e.g. one per batch element under vmap, too)."""
    a = source = _array(a)
    if axis is None:
        return _fresh(reshape(roll(ravel(a), shift, 0), tuple(shape_of(a))), source)
    nd = ndim_of(a)
    if isinstance(shift, Tracer):
        return _fresh(_roll_traced(a, shift, axis, nd), source)
    totals: dict[int, int] = {}
    for s, ax in np.broadcast(shift, axis):
        ax = normalize_axes(int(ax), nd, "roll")[0]
        totals[ax] = totals.get(ax, 0) + int(s)
    for ax, s in totals.items():
        n = shape_of(a)[ax]
        s = s % n if n else 0
        if s:
            a = concatenate_arrays([getitem(a, _along(ax, slice(n - s, None))),
                                    getitem(a, _along(ax, slice(None, n - s)))], ax)
    return _fresh(a, source)



def _roll_traced(a, shift, axis, nd):
    """Roll by traced integer shifts: a gather at (i - shift) mod n along each axis."""
    from ..elementwise.piecewise import remainder

    if dtype_of(shift).kind not in "iu":
        raise TypeError(f"roll: shift must be an integer, got a traced {dtype_of(shift)} value")
    pairs = np.broadcast_shapes(tuple(shape_of(shift)), np.shape(axis))
    shifts = ravel(broadcast_to(shift, pairs))
    axes = np.broadcast_to(np.asarray(axis), pairs).ravel()
    totals: dict = {}
    for k, ax in enumerate(axes):
        ax = normalize_axes(int(ax), nd, "roll")[0]
        s = getitem(shifts, k)
        totals[ax] = s if ax not in totals else totals[ax] + s
    for ax, s in totals.items():
        n = shape_of(a)[ax]
        if n:
            a = take(a, remainder(np.arange(n) - s, n), axis=ax)
    return a


def _fresh(out, source):
    """``out``, never the very object ``source`` (NumPy returns a new array, and
    an in-place update of the result must not change the input)."""
    if out is source:
        from ...core.tracer import clone

        out = clone(out) if isinstance(out, Tracer) else np.copy(out)
    from ..indexing.aliasing import array_result

    return array_result(out)  # a 0-d result too is an array, not a scalar


def rot90_plan(nd: int, k, axes) -> list[tuple[str, object]]:
    """``np.rot90`` as steps: ("flip", axis) and ("transpose", perm), in order."""
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("rot90: len(axes) must be 2.")
    if nd < 2 or axes[0] % nd == axes[1] % nd:
        raise ValueError("rot90: Axes must be different.")
    if not all(-nd <= ax < nd for ax in axes):
        raise ValueError(f"rot90: Axes={axes} out of range for array of ndim={nd}.")
    k %= 4
    perm = list(range(nd))
    i, j = axes[0] % nd, axes[1] % nd
    perm[i], perm[j] = perm[j], perm[i]
    return {0: [], 1: [("flip", axes[1]), ("transpose", perm)],
            2: [("flip", axes[0]), ("flip", axes[1])], 3: [("transpose", perm), ("flip", axes[1])]}[k]


# ---- pad ------------------------------------------------------------------------------

def _pairs(x, nd: int, as_index: bool, what: str):
    """NumPy's ``pad_width`` / ``constant_values`` forms as one pair per axis."""
    x = np.asarray(x)
    if as_index:
        if x.dtype.kind not in "iu":
            x = np.round(x)
        x = x.astype(np.intp)
        if x.size and x.min() < 0:
            raise ValueError(f"pad: {what} can't contain negative values")
    if x.ndim < 3 and x.size == 1:
        v = x.ravel()[0]
        return [(v, v)] * nd
    if x.ndim < 3 and x.size == 2 and x.shape != (2, 1):
        v = x.ravel()
        return [(v[0], v[1])] * nd
    return [tuple(row) for row in np.broadcast_to(x, (nd, 2))]


def _traced_pairs(c, nd: int):
    """Per-axis (before, after) constants from a traced ``constant_values``."""
    size = int(np.prod(shape_of(c)))
    if size == 1:
        c = reshape(c, (1, 1))
    elif size == 2 and tuple(shape_of(c)) != (2, 1):
        c = reshape(c, (1, 2))
    c = broadcast_to(c, (nd, 2))
    return [(getitem(c, (i, 0)), getitem(c, (i, 1))) for i in range(nd)]


def _block(value, shape, dtype):
    if isinstance(value, Tracer):
        return broadcast_to(astype(value, dtype), shape)
    return np.full(shape, value, dtype=dtype)


def _rev(x, axis, start, stop):
    """``x[start:stop]`` along ``axis``, reversed."""
    return getitem(getitem(x, _along(axis, slice(start, stop))), _along(axis, slice(None, None, -1)))


_STAT_MODES = {"maximum": "max", "minimum": "min", "mean": "mean", "median": "median"}


def _stat_parts(x, axis, n, before, after, mode, stat_length):
    """The blocks of a statistic mode: the statistic of the first (last) ``stat_length``
    entries along ``axis``, repeated ``before`` (``after``) times; NumPy rounds a
    mean or median of integers back to the integer dtype."""
    (lb, la) = stat_length
    lb, la = (n if v is None else max(1, min(int(v), n)) for v in (lb, la))
    stat = getattr(np, _STAT_MODES[mode])
    shape = tuple(shape_of(x))
    parts = []
    for width, piece in ((before, slice(0, lb)), (after, slice(n - la, n))):
        value = stat(getitem(x, _along(axis, piece)), axis=axis, keepdims=True)
        if dtype_of(value) != dtype_of(x):
            value = astype(np.round(value), dtype_of(x))
        parts.append(broadcast_to(value, shape[:axis] + (width,) + shape[axis + 1:]))
    return parts


def _ramp_parts(x, axis, n, before, after, end_values):
    """The blocks of ``linear_ramp``: from each end value towards the edge value,
    without it (NumPy's ``linspace(end, edge, width, endpoint=False)``, floored for
    integers; the after block reversed)."""
    parts = []
    for width, edge, end, flip in ((before, slice(0, 1), end_values[0], False),
                                   (after, slice(n - 1, n), end_values[1], True)):
        if not width:
            parts.append(None)  # (an empty side adds no block)
            continue
        steps = np.arange(width, dtype=np.float64).reshape((1,) * axis + (width,) + (1,) * (ndim_of(x) - axis - 1))
        ramp = end + (getitem(x, _along(axis, edge)) - end) * (steps / width)
        if dtype_of(x).kind in "iub":
            ramp = np.floor(ramp)
        ramp = astype(ramp, dtype_of(x))
        parts.append(getitem(ramp, _along(axis, slice(None, None, -1))) if flip else ramp)
    return parts


def _pad_axis(x, axis, before, after, mode, reflect_type, stat_length=(None, None), end_values=(0, 0)):
    n = shape_of(x)[axis]
    if n == 0:
        raise ValueError(f"pad: can't extend empty axis {axis} using modes other than 'constant' or 'empty'")
    parts = None
    if mode == "edge":
        edge = tuple(shape_of(x))
        parts = [broadcast_to(getitem(x, _along(axis, slice(0, 1))), edge[:axis] + (before,) + edge[axis + 1:]),
                 broadcast_to(getitem(x, _along(axis, slice(n - 1, n))), edge[:axis] + (after,) + edge[axis + 1:])]
    elif mode == "wrap" and before <= n and after <= n:
        parts = [getitem(x, _along(axis, slice(n - before, n))), getitem(x, _along(axis, slice(0, after)))]
    elif mode == "reflect" and before < n and after < n:
        parts = [_rev(x, axis, 1, before + 1), _rev(x, axis, n - 1 - after, n - 1)]
    elif mode == "symmetric" and before <= n and after <= n:
        parts = [_rev(x, axis, 0, before), _rev(x, axis, n - after, n)]
    elif mode in _STAT_MODES:
        parts = _stat_parts(x, axis, n, before, after, mode, stat_length)
    elif mode == "linear_ramp":
        parts = _ramp_parts(x, axis, n, before, after, end_values)
    if reflect_type == "odd" and mode in ("reflect", "symmetric"):
        if parts is None:
            from ...core.context import describe_stack

            period = n - 1 if mode == "reflect" else n
            raise UnsupportedOperationError(
                f"{describe_stack()}: np.pad(mode={mode!r}, reflect_type='odd') wider than one reflection of an "
                f"axis of {n} is not supported on traced values; pad in steps of {period} (the last step what "
                f"remains), np.pad(np.pad(x, {period}, ...), ...): NumPy's wide padding is those steps")
        first, last = getitem(x, _along(axis, slice(0, 1))), getitem(x, _along(axis, slice(n - 1, n)))
        parts = [2 * first - parts[0], 2 * last - parts[1]]  # reflected about the end values
    if parts is None:  # widths beyond one period: index arrays (NumPy's own pattern)
        index = np.pad(np.arange(n), (before, after), mode=mode,
                       **({"reflect_type": reflect_type} if mode in ("reflect", "symmetric") else {}))
        return take(x, index, axis=axis)
    pieces = ([parts[0]] if before else []) + [x] + ([parts[1]] if after else [])
    return concatenate_arrays(pieces, axis)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean", "median",
              "linear_ramp")


@composite(np.pad, samples=samples._pad)
def pad(array, pad_width, mode="constant", **kwargs):
    """``np.pad`` for traced and plain values.

    Modes ``constant`` (``constant_values``, which may be traced), ``edge``,
    ``reflect``, ``symmetric`` (both ``reflect_type`` values; 'odd' up to one
    reflection), ``wrap``, ``maximum``/``minimum``/``mean``/``median``
    (``stat_length``) and ``linear_ramp`` (``end_values``); every
    ``pad_width`` form NumPy accepts.
    """
    x = source = _array(array)
    if callable(mode) or mode not in _PAD_MODES:
        raise UnsupportedOperationError(
            f"np.pad: mode {mode!r} is not supported on traced values; supported modes are "
            f"{', '.join(_PAD_MODES)}")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"}, "symmetric": {"reflect_type"},
               "linear_ramp": {"end_values"}, **{m: {"stat_length"} for m in _STAT_MODES}}.get(mode, set())
    unexpected = set(kwargs) - allowed
    if unexpected:
        raise ValueError(f"pad: unsupported keyword arguments for mode '{mode}': {unexpected}")
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got {reflect_type!r}")
    nd = ndim_of(x)
    stat_lengths = _pairs(kwargs.get("stat_length"), nd, True, "index") if kwargs.get("stat_length") is not None \
        else [(None, None)] * nd
    end_values = _pairs(kwargs.get("end_values", 0), nd, False, "")
    if isinstance(pad_width, dict):  # {axis: width} (NumPy >= 2.3); other axes unpadded
        widths = [(0, 0)] * nd
        for ax, w in pad_width.items():
            widths[normalize_axes(ax, nd, "pad")[0]] = _pairs(w, 1, True, "index")[0]
    else:
        widths = _pairs(pad_width, nd, True, "index")
    if mode == "constant":
        values = kwargs.get("constant_values", 0)
        consts = _traced_pairs(values, nd) if isinstance(values, Tracer) else _pairs(values, nd, False, "")
        dtype = dtype_of(x)
        for axis, ((before, after), (cb, ca)) in enumerate(zip(widths, consts)):
            if not before and not after:
                continue
            shape = tuple(shape_of(x))
            pieces = [_block(cb, shape[:axis] + (int(before),) + shape[axis + 1:], dtype)] if before else []
            pieces.append(x)
            if after:
                pieces.append(_block(ca, shape[:axis] + (int(after),) + shape[axis + 1:], dtype))
            x = concatenate_arrays(pieces, axis)
        return _fresh(x, source)
    for axis, (before, after) in enumerate(widths):
        if before or after:
            x = _pad_axis(x, axis, int(before), int(after), mode, reflect_type, stat_lengths[axis], end_values[axis])
    return _fresh(x, source)


# ---- diagonals and triangles ------------------------------------------------------------

def _diagonal_index(n1: int, n2: int, offset: int):
    if offset >= 0:
        length = max(0, min(n1, n2 - offset))
        return np.arange(length), np.arange(length) + offset
    length = max(0, min(n1 + offset, n2))
    return np.arange(length) - offset, np.arange(length)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The values of ``np.diagonal``, for traced and plain values (the diagonal is the last axis)."""
    a = _array(a)
    nd = ndim_of(a)
    if nd < 2:
        raise ValueError("diagonal: diag requires an array of at least two dimensions")
    ax1 = normalize_axes(axis1, nd, "diagonal")[0]
    ax2 = normalize_axes(axis2, nd, "diagonal")[0]
    if ax1 == ax2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    shape = shape_of(a)
    rows, cols = _diagonal_index(shape[ax1], shape[ax2], int(offset))
    index = [slice(None)] * nd
    index[ax1], index[ax2] = rows, cols
    out = getitem(a, tuple(index))
    position = min(ax1, ax2) if abs(ax1 - ax2) == 1 else 0
    return moveaxis(out, position, -1)


def diag(v, k=0):
    """The values of ``np.diag``, for traced and plain values: a 1-D input
    becomes a (k-th) diagonal matrix, a 2-D input gives its k-th diagonal."""
    v = _array(v)
    nd = ndim_of(v)
    if nd == 2:
        return diagonal(v, k)
    if nd != 1:
        raise ValueError("diag: Input must be 1- or 2-d.")
    k = int(k)
    n = shape_of(v)[0]
    size = n + abs(k)
    rows = np.arange(n) + max(-k, 0)
    cols = np.arange(n) + max(k, 0)
    return index_add(v, (rows, cols), (size, size))


@composite(np.diagflat, samples=samples._diagflat)
def diagflat(v, k=0):
    """``np.diagflat`` for traced and plain values."""
    return diag(ravel(_array(v)), k)


def _triangle(m, mask_fn):
    m = _array(m)
    shape = tuple(shape_of(m))
    mask = mask_fn(*shape[-2:]) if len(shape) >= 2 else mask_fn(shape[0], shape[0])
    return where(mask, m, zeros_like(m))


@composite(np.tril, samples=samples.triangle)
def tril(m, k=0):
    """``np.tril`` for traced and plain values (over the last two axes)."""
    return _triangle(m, lambda n, p: np.tri(n, p, k=int(k), dtype=bool))


@composite(np.triu, samples=samples.triangle)
def triu(m, k=0):
    """``np.triu`` for traced and plain values (over the last two axes)."""
    return _triangle(m, lambda n, p: ~np.tri(n, p, k=int(k) - 1, dtype=bool))
