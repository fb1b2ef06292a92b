"""Shape primitives (reshape, transpose, broadcast_to, concatenate) and the
composites built on them (moveaxis, swapaxes, expand_dims, squeeze, ravel,
stack).  All are linear: the JVP applies the primitive to the tangent and
the VJP applies its transpose to the cotangent."""
from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import implements
from ..core.primitive import Primitive, Sample
from ..core.values import ndim_of, shape_of
from ..core.zeros import zero
from ..interpreters.batching import materialize_front, move_to_front
from .families import normalize_axes, sum_to_shape
from .sampling import FLOATS, array

# ---- reshape -------------------------------------------------------------------


def _reshape_batch(vals, dims, *, shape):
    x = move_to_front(vals[0], dims[0])
    return _reshape.bind(x, shape=(shape_of(x)[0],) + shape), 0


_reshape = Primitive(
    "reshape", lambda x, *, shape: np.reshape(x, shape),
    jvp=lambda primals, tangents, out, *, shape: reshape(tangents[0], shape),
    vjp=lambda g, primals, out, needs, *, shape: (reshape(g, shape_of(primals[0])),),
    batch=_reshape_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (2, 3, 4), dt), shape=(6, 4)),
        Sample(array(rng, (6,), dt), shape=(3, 1, 2)),
        Sample(array(rng, (), dt), shape=(1, 1)))],
)


def _resolve_shape(shape, size: int, fn_name: str) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"{fn_name}: can only specify one unknown dimension")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 and known else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"{fn_name}: cannot reshape array of size {size} into shape {shape}")
    return shape


@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    """``np.reshape`` (C or F order) for traced and plain values."""
    shape = newshape if shape is None else shape
    current = shape_of(a)
    shape = _resolve_shape(shape, math.prod(current), "reshape")
    if order == "F":
        return transpose(reshape(transpose(a), shape[::-1]))
    if order not in ("C", "A"):
        raise ValueError(f"reshape: order must be 'C' or 'F', got {order!r}")
    if tuple(current) == shape:
        return a
    return _reshape.bind(a, shape=shape)


@implements(np.ravel)
def ravel(a, order="C"):
    """``np.ravel`` for traced and plain values."""
    return reshape(a, (-1,), order=order)


# ---- transpose ---------------------------------------------------------------------

def _transpose_batch(vals, dims, *, perm):
    d = dims[0]
    physical = (d,) + tuple(p + (p >= d) for p in perm)
    return _transpose.bind(vals[0], perm=physical), 0


_transpose = Primitive(
    "transpose", lambda x, *, perm: np.transpose(x, perm),
    jvp=lambda primals, tangents, out, *, perm: _transpose.bind(tangents[0], perm=perm),
    vjp=lambda g, primals, out, needs, *, perm: (_transpose.bind(g, perm=tuple(np.argsort(perm))),),
    batch=_transpose_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (2, 3, 4), dt), perm=(2, 0, 1)),
        Sample(array(rng, (2, 3), dt), perm=(1, 0)))],
)


@implements(np.transpose)
def transpose(a, axes=None):
    """``np.transpose`` for traced and plain values."""
    nd = ndim_of(a)
    perm = tuple(range(nd))[::-1] if axes is None else tuple(int(p) % nd for p in axes)
    if sorted(perm) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes} do not match an array of dimension {nd}")
    if perm == tuple(range(nd)):
        return a
    return _transpose.bind(a, perm=perm)


def _axis_list(axis, nd: int) -> list[int]:
    return [int(a) % nd for a in (axis if isinstance(axis, (list, tuple)) else (axis,))]


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    """``np.moveaxis`` for traced and plain values."""
    nd = ndim_of(a)
    src, dst = _axis_list(source, nd), _axis_list(destination, nd)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    rest = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        rest.insert(d, s)
    return transpose(a, rest)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    """``np.swapaxes`` for traced and plain values."""
    nd = ndim_of(a)
    perm = list(range(nd))
    i, j = axis1 % nd, axis2 % nd
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


@implements(np.expand_dims)
def expand_dims(a, axis):
    """``np.expand_dims`` for traced and plain values."""
    shape = list(shape_of(a))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = len(shape) + len(axes)
    for ax in sorted(a_ % nd for a_ in axes):
        shape.insert(ax, 1)
    return reshape(a, tuple(shape))


@implements(np.squeeze)
def squeeze(a, axis=None):
    """``np.squeeze`` for traced and plain values."""
    shape = shape_of(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        axes = normalize_axes(axis, len(shape), "squeeze")
        if any(shape[i] != 1 for i in axes):
            raise ValueError("squeeze: cannot select an axis to squeeze out which has size not equal to one")
    return reshape(a, tuple(n for i, n in enumerate(shape) if i not in axes))


# ---- broadcast_to -------------------------------------------------------------------

def _broadcast_batch(vals, dims, *, shape):
    x = move_to_front(vals[0], dims[0])
    xs = shape_of(x)
    pad = len(shape) - (len(xs) - 1)
    if pad:
        x = reshape(x, (xs[0],) + (1,) * pad + tuple(xs[1:]))
    return _broadcast.bind(x, shape=(xs[0],) + shape), 0


_broadcast = Primitive(
    "broadcast_to", lambda x, *, shape: np.broadcast_to(x, shape),
    jvp=lambda primals, tangents, out, *, shape: broadcast_to(tangents[0], shape),
    vjp=lambda g, primals, out, needs, *, shape: (sum_to_shape(g, shape_of(primals[0])),),
    batch=_broadcast_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (3,), dt), shape=(2, 3)),
        Sample(array(rng, (2, 1), dt), shape=(4, 2, 3)),
        Sample(array(rng, (), dt), shape=(2,)))],
)


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    """``np.broadcast_to`` for traced and plain values (the result is read-only for ndarrays)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if tuple(shape_of(array)) == shape:
        return array
    return _broadcast.bind(array, shape=shape)


# ---- concatenate / stack -----------------------------------------------------------

def _concat_jvp(primals, tangents, out, *, axis):
    from .elementwise import zeros_like

    return concatenate_arrays([zeros_like(p) if t is zero else t for p, t in zip(primals, tangents)], axis)


def _concat_vjp(g, primals, out, needs, *, axis):
    from .indexing import getitem

    cts = []
    start = 0
    for p, need in zip(primals, needs):
        stop = start + shape_of(p)[axis]
        cts.append(getitem(g, (slice(None),) * axis + (slice(start, stop),)) if need else zero)
        start = stop
    return tuple(cts)


def _concat_batch(vals, dims, *, axis):
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    return _concat.bind(*[materialize_front(v, d, size) for v, d in zip(vals, dims)], axis=axis + 1), 0


_concat = Primitive(
    "concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
    jvp=_concat_jvp, vjp=_concat_vjp, batch=_concat_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (2, 3), dt), array(rng, (1, 3), dt), axis=0),
        Sample(array(rng, (2, 3), dt), array(rng, (2, 2), dt), array(rng, (2, 1), dt), axis=1))],
)


def concatenate_arrays(arrays, axis: int):
    """Concatenate a list of values along a non-negative ``axis`` (rule helper)."""
    if len(arrays) == 1:
        return arrays[0]
    return _concat.bind(*arrays, axis=axis)


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    """``np.concatenate`` for traced and plain values."""
    arrays = list(arrays)
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = ndim_of(arrays[0])
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    return concatenate_arrays(arrays, axis % nd)


@implements(np.stack)
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """``np.stack`` for traced and plain values."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("stack: need at least one array to stack")
    nd = ndim_of(arrays[0]) + 1
    axis = axis % nd
    return concatenate_arrays([expand_dims(a, axis) for a in arrays], axis)
