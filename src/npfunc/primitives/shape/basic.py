"""Shape primitives (reshape, transpose, broadcast_to, concatenate) and the
composites built on them (moveaxis, swapaxes, expand_dims, squeeze, ravel,
stack).  All are linear: the JVP applies the primitive to the tangent and
the VJP applies its transpose to the cotangent."""
from __future__ import annotations

import functools
import operator
import math

import numpy as np


from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer, clone
from ...core.values import broadcast_shapes, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import materialize_front, move_to_front
from ..families import composite, fit_cotangent, normalize_axes, sum_to_shape
from ..sampling import FLOATS, array, sequence_call
from . import samples

# ---- reshape -------------------------------------------------------------------


def _reshape_batch(vals, dims, *, shape):
    x = move_to_front(vals[0], dims[0])
    return _reshape.bind(x, shape=(shape_of(x)[0],) + shape), 0


_reshape = Primitive(
    "reshape", lambda x, *, shape: x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape),
    jvp=lambda primals, tangents, out, *, shape: reshape(tangents[0], shape),
    vjp=lambda g, primals, out, needs, *, shape: (reshape(g, shape_of(primals[0])),),
    batch=_reshape_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (2, 3, 4), dt), shape=(6, 4)),
        Sample(array(rng, (6,), dt), shape=(3, 1, 2)),
        Sample(array(rng, (), dt), shape=(1, 1)))],
)


def resolve_shape(shape, size: int, fn_name: str) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"{fn_name}: can only specify one unknown dimension")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 and known else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"{fn_name}: cannot reshape array of size {size} into shape {shape}")
    return shape


def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    """The values of ``np.reshape`` (C or F order), for traced and plain values."""
    shape = newshape if shape is None else shape
    current = shape_of(a)
    if type(shape) is tuple and order == "C" and shape == current:
        return a
    shape = resolve_shape(shape, math.prod(current), "reshape")
    if order == "F":
        return transpose(reshape(transpose(a), shape[::-1]))
    if order != "C":
        raise ValueError(f"reshape: order must be 'C', 'F' or 'A', got {order!r}")
    if tuple(current) == shape:
        return a
    return _reshape.bind(a, shape=shape)


def ravel(a, order="C"):
    """The values of ``np.ravel``, for traced and plain values."""
    return reshape(a, (-1,), order=order)


# ---- transpose ---------------------------------------------------------------------

def _transpose_batch(vals, dims, *, perm):
    d = dims[0]
    physical = (d,) + tuple(p + (p >= d) for p in perm)
    return _transpose.bind(vals[0], perm=physical), 0


_transpose = Primitive(
    "transpose", lambda x, *, perm: x.transpose(perm) if type(x) is np.ndarray else np.transpose(x, perm),
    jvp=lambda primals, tangents, out, *, perm: _transpose.bind(tangents[0], perm=perm),
    vjp=lambda g, primals, out, needs, *, perm: (_transpose.bind(g, perm=tuple(np.argsort(perm))),),
    batch=_transpose_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (2, 3, 4), dt), perm=(2, 0, 1)),
        Sample(array(rng, (2, 3), dt), perm=(1, 0)))],
)


def transpose_perm(nd: int, axes=None) -> tuple[int, ...]:
    """The permutation ``np.transpose(x, axes)`` applies to an ``nd``-d array."""
    if type(axes) is tuple:  # hashable: the rules ask for the same few permutations over and over
        return _checked_perm(nd, axes)
    return _perm(nd, axes)


@functools.lru_cache(maxsize=512)
def _checked_perm(nd: int, axes: tuple) -> tuple[int, ...]:
    return _perm(nd, axes)


def _perm(nd: int, axes) -> tuple[int, ...]:
    if axes is not None and np.ndim(axes) == 0:  # NumPy takes one integer as (axes,): x.transpose(-1) of a 1-d x
        axes = (operator.index(axes),)
    if axes is not None and any(not -nd <= int(p) < nd for p in axes):
        raise np.exceptions.AxisError(f"transpose: axes {tuple(axes)} out of range for an array of dimension {nd}")
    perm = tuple(range(nd))[::-1] if axes is None else tuple(int(p) % nd for p in axes)
    if sorted(perm) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes} do not match an array of dimension {nd}")
    return perm


def transpose(a, axes=None):
    """The values of ``np.transpose``, for traced and plain values."""
    if axes is None:  # the commonest call, a.T: reverse the axes
        nd = ndim_of(a)
        return a if nd < 2 else _transpose.bind(a, perm=tuple(range(nd - 1, -1, -1)))
    perm = transpose_perm(ndim_of(a), axes)
    if perm == tuple(range(len(perm))):
        return a
    return _transpose.bind(a, perm=perm)


def _axis_list(axis, nd: int) -> list[int]:
    return [int(a) % nd for a in (axis if isinstance(axis, (list, tuple)) else (axis,))]


def moveaxis_perm(nd: int, source, destination) -> list[int]:
    """The permutation ``np.moveaxis`` applies to an ``nd``-d array."""
    src, dst = _axis_list(source, nd), _axis_list(destination, nd)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    rest = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        rest.insert(d, s)
    return rest


def moveaxis(a, source, destination):
    """The values of ``np.moveaxis``, for traced and plain values."""
    return transpose(a, moveaxis_perm(ndim_of(a), source, destination))


def swapaxes_perm(nd: int, axis1, axis2) -> list[int]:
    """The permutation ``np.swapaxes`` applies to an ``nd``-d array."""
    perm = list(range(nd))
    i, j = normalize_axes(axis1, nd, "swapaxes")[0], normalize_axes(axis2, nd, "swapaxes")[0]
    perm[i], perm[j] = perm[j], perm[i]
    return perm


def swapaxes(a, axis1, axis2):
    """The values of ``np.swapaxes``, for traced and plain values."""
    return transpose(a, swapaxes_perm(ndim_of(a), axis1, axis2))


def expand_dims(a, axis):
    """The values of ``np.expand_dims``, for traced and plain values."""
    shape = list(shape_of(a))
    count = 1 if isinstance(axis, (int, np.integer)) else len(axis)
    for ax in normalize_axes(axis, len(shape) + count, "expand_dims"):
        shape.insert(ax, 1)
    return reshape(a, tuple(shape))


def squeeze(a, axis=None):
    """The values of ``np.squeeze``, for traced and plain values."""
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


#: NumPy scalar types whose buffer a broadcast view can be made over directly
_SCALAR_TYPES = frozenset({np.float64, np.float32, np.float16, np.complex128, np.complex64, np.int64, np.int32,
                           np.bool_})


def _broadcast_impl(x, *, shape):
    """``np.broadcast_to(x, shape)``: the same read-only view of ``x``'s memory.
    ``np.broadcast_to`` is written in Python (3 µs); a view made directly over
    the buffer of a scalar or a contiguous array costs a fifth of that, and the
    backward pass of every sum makes one."""
    t = type(x)
    if t in _SCALAR_TYPES:  # a read-only buffer: so is the view
        return np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))
    if t is np.ndarray and x.dtype.kind in "biufc" and (x.flags.c_contiguous or x.flags.f_contiguous):
        lead = len(shape) - x.ndim
        if lead >= 0:
            strides = [0] * lead
            for n, stride, want in zip(x.shape, x.strides, shape[lead:]):
                if n == want:
                    strides.append(stride)
                elif n == 1:
                    strides.append(0)
                else:
                    break  # not broadcastable: NumPy's error
            else:
                out = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
                out.flags.writeable = False
                return out
    return np.broadcast_to(x, shape)


_broadcast = Primitive(
    "broadcast_to", _broadcast_impl,
    jvp=lambda primals, tangents, out, *, shape: broadcast_to(tangents[0], shape),
    vjp=lambda g, primals, out, needs, *, shape: (sum_to_shape(g, shape_of(primals[0])),),
    batch=_broadcast_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (3,), dt), shape=(2, 3)),
        Sample(array(rng, (2, 1), dt), shape=(4, 2, 3)),
        Sample(array(rng, (), dt), shape=(2,)))],
)


def broadcast_to(array, shape, subok=False):
    """The values of ``np.broadcast_to``, for traced and plain values."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if tuple(shape_of(array)) == shape:
        return array
    return _broadcast.bind(array, shape=shape)


# ---- concatenate / stack -----------------------------------------------------------

def _concat_jvp(primals, tangents, out, *, axis):
    from ..elementwise.arithmetic import zeros_like

    return concatenate_arrays([zeros_like(p) if t is zero else t for p, t in zip(primals, tangents)], axis)


def _concat_vjp(g, primals, out, needs, *, axis):
    from ..indexing.gather import getitem

    cts = []
    start = 0
    for p, need in zip(primals, needs):
        stop = start + shape_of(p)[axis]
        cts.append(fit_cotangent(getitem(g, (slice(None),) * axis + (slice(start, stop),)), p) if need else zero)
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
        Sample(array(rng, (2, 3), dt), array(rng, (2, 2), dt), array(rng, (2, 1), dt), axis=1))] + [
        Sample(array(rng, (2, 3), np.float32), array(rng, (1, 3)), axis=0, label="mixed precision")],
)


def _stack_impl(*xs, axis):
    # np.array of a tuple stacks on a new first axis as np.stack does (dtype
    # promotion included), without np.stack's Python layer (4 µs for two vectors)
    return np.array(xs) if axis == 0 else np.stack(xs, axis=axis)


def _stack_jvp(primals, tangents, out, *, axis):
    from ..elementwise.arithmetic import zeros_like

    return _stack.bind(*[zeros_like(p) if t is zero else t for p, t in zip(primals, tangents)], axis=axis)


def _stack_vjp(g, primals, out, needs, *, axis):
    from ..indexing.gather import getitem

    lead = (slice(None),) * axis
    return tuple(fit_cotangent(getitem(g, lead + (k,) if axis else k), p) if need else zero
                 for k, (p, need) in enumerate(zip(primals, needs)))


def _stack_batch(vals, dims, *, axis):
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    return _stack.bind(*[materialize_front(v, d, size) for v, d in zip(vals, dims)], axis=axis + 1), 0


# One primitive for np.stack (and np.array of a list of traced values): a new
# axis for k arrays of one shape is one node, not k reshapes and a concatenation.
_stack = Primitive(
    "stack", _stack_impl, jvp=_stack_jvp, vjp=_stack_vjp, batch=_stack_batch,
    samples=lambda rng: [s for dt in FLOATS for s in (
        Sample(array(rng, (), dt), array(rng, (), dt), array(rng, (), dt), axis=0, label="scalars"),
        Sample(array(rng, (2, 3), dt), array(rng, (2, 3), dt), axis=1),
        Sample(array(rng, (3,), dt), array(rng, (3,), dt), axis=1, label="new last axis"))] + [
        Sample(array(rng, (2,), np.float32), array(rng, (2,)), axis=0, label="mixed precision")],
)


def concatenate_arrays(arrays, axis: int):
    """Concatenate a list of values along a non-negative ``axis`` (rule helper)."""
    if len(arrays) == 1:
        return arrays[0]
    return _concat.bind(*arrays, axis=axis)


@composite(np.concatenate, samples=samples.concatenate, call=sequence_call)
def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    """``np.concatenate`` for traced and plain values."""
    arrays = [a if isinstance(a, Tracer) else np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("concatenate: need at least one array to concatenate")
    if dtype is not None:
        arrays = [_as_dtype(a, dtype) for a in arrays]
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = ndim_of(arrays[0])
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    if any(ndim_of(a) != nd for a in arrays):
        raise ValueError("concatenate: all the input arrays must have same number of dimensions")
    axis = normalize_axes(axis, nd, "concatenate")[0]
    if len(arrays) == 1:
        return copy(arrays[0])
    return concatenate_arrays(arrays, axis)


def _as_dtype(a, dtype):
    from ..elementwise.arithmetic import astype

    return astype(a, dtype) if isinstance(a, Tracer) else np.asarray(a, dtype=dtype)


@composite(np.stack, samples=samples.stack, call=sequence_call)
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """``np.stack`` for traced and plain values."""
    arrays = [a if isinstance(a, Tracer) else np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("stack: need at least one array to stack")
    if dtype is not None:
        arrays = [_as_dtype(a, dtype) for a in arrays]
    shapes = {tuple(shape_of(a)) for a in arrays}
    if len(shapes) != 1:
        raise ValueError("stack: all input arrays must have the same shape")
    nd = ndim_of(arrays[0]) + 1
    axis = normalize_axes(axis, nd, "stack")[0]
    if len(arrays) == 1:
        return expand_dims(arrays[0], axis)
    return _stack.bind(*arrays, axis=axis)


# ---- more axis bookkeeping (composites) ---------------------------------------------

def rollaxis_perm(nd: int, axis, start=0) -> list[int]:
    """The permutation ``np.rollaxis`` applies to an ``nd``-d array."""
    axis = normalize_axes(axis, nd, "rollaxis")[0]
    if start < 0:
        start += nd
    if not 0 <= start < nd + 1:
        raise np.exceptions.AxisError(f"rollaxis: 'start' arg requires {-nd} <= start < {nd + 1}")
    if axis < start:
        start -= 1
    perm = [i for i in range(nd) if i != axis]
    perm.insert(start, axis)
    return perm


def _atleast(arys, nd: int, lift):
    out = []
    for a in arys:
        a = a if isinstance(a, Tracer) else np.asarray(a)
        if ndim_of(a) < nd:
            a = reshape(a, lift(tuple(shape_of(a))))
        out.append(a)
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*arys):
    """``np.atleast_1d`` for traced and plain values."""
    return _atleast(arys, 1, lambda s: (1,))


def atleast_2d(*arys):
    """``np.atleast_2d`` for traced and plain values."""
    return _atleast(arys, 2, lambda s: (1,) * (2 - len(s)) + s)


def atleast_3d(*arys):
    """``np.atleast_3d`` for traced and plain values (1-D ``(n,)`` becomes ``(1, n, 1)``)."""
    return _atleast(arys, 3, lambda s: {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])


def broadcast_arrays(*args, subok=False):
    """``np.broadcast_arrays`` for traced and plain values (a tuple, as in NumPy 2)."""
    shape = broadcast_shapes(*[tuple(shape_of(a)) for a in args])
    return tuple(broadcast_to(a if isinstance(a, Tracer) else np.asarray(a), shape) for a in args)


_copy = Primitive(
    "copy", lambda x, *, order="K": np.array(x, copy=True, order=order),
    jvp=lambda primals, tangents, out, **params: tangents[0],
    vjp=lambda g, primals, out, needs, **params: (g,),
    batch=lambda vals, dims, **params: (_copy.bind(vals[0], **params), dims[0]),
    samples=lambda rng: [Sample(array(rng, (2, 3), dt)) for dt in FLOATS] + [
        Sample(np.asfortranarray(array(rng, (2, 3), np.float64)), order="C"),
        Sample(array(rng, (2, 3), np.float64), order="F")],
    notes="a new array with the same values; traced values are only copied where a staged program "
          "could hand the result out as an array the user writes into")


def copy(a, order="K"):
    """A copy of ``a`` laid out in ``order``: a new traced object (in-place
    updates of one leave the other alone), or ``np.copy`` of a plain value.
    Traced values never change in place, so a new object is enough, except
    under a transform whose program returns plain arrays (jit): there the copy
    is recorded, with the layout NumPy gives it."""
    if isinstance(a, Tracer):
        if a._interp.copies_values:
            return _copy.bind(a) if order == "K" else _copy.bind(a, order=order)
        if not a.shape:  # np.array(np.float64(2.0)) is a 0-d array, which jvp and vjp return as such
            return _copy.bind(a)
        if order in ("C", "F"):  # a primal laid out otherwise is copied so (jvp and vjp return it)
            value = getattr(a, "primal", None)
            if type(value) is np.ndarray and value.ndim > 1 and not (
                    value.flags.c_contiguous if order == "C" else value.flags.f_contiguous):
                return _copy.bind(a, order=order)
        return clone(a)
    return np.copy(a, order=order)


