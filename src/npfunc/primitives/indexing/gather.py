"""Indexing: ``x[index]`` (gather) and its transpose, scatter-add.

An index is split into a static ``spec`` -- one entry per index component:
``("s", start, stop, step)``, ``("i", int)``, ``("n",)`` for None, ``("e",)``
for Ellipsis, ``("a", k)`` for the k-th integer-array operand -- and the
integer arrays, which are operands so that they can be batched by vmap.
Concrete boolean masks become integer arrays (``nonzero``); a traced boolean
mask has a data-dependent shape and is rejected.  The gradient of a gather
scatters with ``np.add.at``, so repeated indices accumulate.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import call_samples
from ..families import composite
from ...core.errors import UnsupportedOperationError
from ...core.debug import FLAGS, NAN_CHECKS
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import align_front, move_to_front
from ..shape.basic import expand_dims, moveaxis, transpose
from ..sampling import FLOATS, array

_FULL = ("s", None, None, None)


# ---- spec helpers ------------------------------------------------------------------

def _build(spec, arrays):
    out = []
    for c in spec:
        kind = c[0]
        if kind == "s":
            out.append(slice(c[1], c[2], c[3]))
        elif kind == "i":
            out.append(c[1])
        elif kind == "a":
            out.append(arrays[c[1]])
        elif kind == "n":
            out.append(None)
        else:
            out.append(Ellipsis)
    return tuple(out)


def _advanced_positions(spec):
    """Positions NumPy treats as advanced (ints count once an array is present)."""
    if not any(c[0] == "a" for c in spec):
        return []
    return [i for i, c in enumerate(spec) if c[0] in ("a", "i")]


def _adjacent(positions) -> bool:
    return positions == list(range(positions[0], positions[0] + len(positions)))


def _dims_before(spec, stop: int, ndim: int) -> int:
    """Number of output axes produced by ``spec[:stop]`` for an input of rank ``ndim``."""
    consumed = sum(c[0] in ("s", "i", "a") for c in spec)
    count = 0
    for c in spec[:stop]:
        if c[0] in ("s", "n"):
            count += 1
        elif c[0] == "e":
            count += ndim - consumed
    return count


def index_shape(spec, arrays, shape) -> tuple[int, ...]:
    """The shape of ``x[index]`` for ``x`` of ``shape`` (``arrays``: the index
    arrays or anything with their shapes), following NumPy's placement of
    the advanced-index block."""
    shape = tuple(shape)
    nd = len(shape)
    consumed = sum(c[0] in ("s", "i", "a") for c in spec)
    if consumed > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, but {consumed} were indexed")
    positions = _advanced_positions(spec)
    block = tuple(np.broadcast_shapes(*[tuple(shape_of(a)) for a in arrays])) if arrays else ()
    adjacent = bool(positions) and _adjacent(positions)
    out: list[int] = []
    axis = 0
    placed = False
    for c in spec:
        kind = c[0]
        if kind == "s":
            out.append(len(range(*slice(c[1], c[2], c[3]).indices(shape[axis]))))
            axis += 1
        elif kind == "n":
            out.append(1)
        elif kind == "e":
            count = nd - consumed
            out.extend(shape[axis:axis + count])
            axis += count
        else:
            if adjacent and not placed:
                out.extend(block)
                placed = True
            axis += 1
    out.extend(shape[axis:])
    if positions and not adjacent:
        out = list(block) + out
    return tuple(out)


def _batched_spec(spec, arrays, arr_dims, x_batched: bool, x_ndim: int, size: int):
    """How to index when something is batched.

    Returns ``(spec, arrays, out_dim, perm)``: index the value (batch axis
    first if ``x_batched``) with the new spec and arrays; the result has its
    batch axis at ``out_dim`` once transposed by ``perm`` (None: no transpose).
    """
    positions = _advanced_positions(spec)
    if all(d is None for d in arr_dims):
        new_spec = (_FULL,) + tuple(spec)
        if positions and not _adjacent(positions):
            out_dim = len(np.broadcast_shapes(*[shape_of(a) for a in arrays]))
        else:
            out_dim = 0
        return new_spec, list(arrays), out_dim, None
    new_arrays, rank = align_front(list(arrays), list(arr_dims))
    if not x_batched:
        out_dim = _dims_before(spec, positions[0], x_ndim) if _adjacent(positions) else 0
        return tuple(spec), new_arrays, out_dim, None
    # A leading batch index makes every advanced index non-adjacent, so NumPy
    # puts the advanced block first; move it back to where x[spec] has it.
    batch_index = np.arange(size).reshape((size,) + (1,) * rank)
    new_spec = (("a", len(new_arrays)),) + tuple(spec)
    perm = None
    if _adjacent(positions):
        before = _dims_before(spec, positions[0], x_ndim)
        rest = _dims_before(spec, len(spec), x_ndim)
        if before:
            perm = ((0,) + tuple(1 + rank + i for i in range(before)) + tuple(1 + i for i in range(rank))
                    + tuple(1 + rank + i for i in range(before, rest)))
    return new_spec, new_arrays + [batch_index], 0, perm


# ---- gather --------------------------------------------------------------------------

def _gather_impl(x, *arrays, spec):
    if len(spec) == 1 and spec[0][0] == "i":  # x[k], the commonest index
        return x[spec[0][1]]
    return x[_build(spec, arrays)]


def _gather_batch(vals, dims, *, spec):
    x, arrays = vals[0], vals[1:]
    x_batched = dims[0] is not None
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    x = move_to_front(x, dims[0])
    x_ndim = len(shape_of(x)) - x_batched
    new_spec, new_arrays, out_dim, perm = _batched_spec(spec, arrays, dims[1:], x_batched, x_ndim, size)
    out = _gather.bind(x, *new_arrays, spec=new_spec)
    if perm is not None and len(perm) < ndim_of(out):  # axes of x after the spec keep their order
        perm = perm + tuple(range(len(perm), ndim_of(out)))
    return (out if perm is None else transpose(out, perm)), out_dim


def _gather_vjp(g, primals, out, needs, *, spec):
    x, arrays = primals[0], primals[1:]
    if not arrays and type(x) is np.ndarray and not isinstance(g, Tracer) and not (NAN_CHECKS[0] and FLAGS.nans):
        return (_scatter_impl(g, spec=spec, shape=x.shape),)  # what bind would do, one call shorter
    ct = _scatter.bind(g, *arrays, spec=spec, shape=tuple(shape_of(x)))
    return (ct,) + (zero,) * len(arrays)


def _gather_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (4, 5, 3), dt)
        out += [
            Sample(x, spec=(("i", 1),)),
            Sample(x, spec=(("s", 1, None, 2), ("n",), ("e",), ("i", -1))),
            Sample(x, np.array([0, 2, 2, 3]), spec=(("a", 0),), argnums=(0,), label="repeated"),
            Sample(x, np.array([[0, 1], [3, 3]]), np.array([2, 0]), spec=(("s", None, None, None), ("a", 0), ("a", 1)),
                   argnums=(0,)),
            Sample(x, np.array([1, 0, 1]), np.array([2, 2, 0]), spec=(("a", 0), ("s", None, None, None), ("a", 1)),
                   argnums=(0,), label="non-adjacent"),
            Sample(x, np.array([1, 2]), spec=(("i", 0), ("s", None, None, None), ("a", 0)),
                   argnums=(0,), label="int and array apart"),
        ]
    x = array(rng, (4, 5, 3))
    rows, cols = np.nonzero(rng.uniform(size=(4, 5)) > 0.5)
    out += [
        Sample(x, np.array([-1, 0, -3]), spec=(("e",), ("a", 0)), argnums=(0,), label="negative, ellipsis"),
        Sample(x, rows, cols, spec=(("a", 0), ("a", 1), ("s", None, None, -1)), argnums=(0,),
               label="2-d mask, reversed slice"),
        Sample(x, np.array([0, 2, 2]), spec=(("i", -2), ("n",), ("a", 0)), argnums=(0,),
               label="int, None, array"),
        Sample(x, np.array([1, 3]), np.array([[0], [2]]), spec=(("a", 0), ("n",), ("a", 1)), argnums=(0,),
               label="None between arrays"),
        Sample(x, np.array([2, 0]), spec=(("s", 1, None, None), ("a", 0), ("i", 1)), argnums=(0,),
               label="slice, array, int"),
        Sample(x, np.array([0, 0, 2]), spec=(("n",), ("e",), ("a", 0), ("n",)), argnums=(0,),
               label="None, ellipsis, repeated array"),
    ]
    return out


_gather = Primitive(
    "gather", _gather_impl,
    jvp=lambda primals, tangents, out, *, spec: _gather.bind(tangents[0], *primals[1:], spec=spec),
    vjp=_gather_vjp, batch=_gather_batch, samples=_gather_samples,
)


# ---- scatter-add (the transpose of gather) -------------------------------------------

def _scatter_impl(g, *arrays, spec, shape):
    out = np.zeros(shape, dtype=dtype_of(g))
    if len(spec) == 1 and spec[0][0] == "i":  # x[k], the commonest index
        out[spec[0][1]] = g
        return out
    index = _build(spec, arrays)
    if not arrays:  # basic indexing never repeats an element
        out[index] = g
    elif all(c[0] in ("a", "i") for c in spec):
        # Only integer indices: flatten them to 1-d, where np.add.at is fast
        # (with multi-dimensional index arrays it is an order of magnitude slower).
        lead = np.broadcast_shapes(*[np.shape(i) for i in index])
        flat = tuple(np.broadcast_to(i, lead).ravel() for i in index)
        rest = shape[len(index):]
        # (the leading size spelled out: -1 is ambiguous when ``rest`` holds a 0)
        size = math.prod(lead)
        np.add.at(out, flat, np.reshape(np.broadcast_to(g, lead + tuple(rest)), (size,) + tuple(rest)))
    else:
        np.add.at(out, index, g)
    return out


def _scatter_batch(vals, dims, *, spec, shape):
    g, arrays = vals[0], vals[1:]
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    new_spec, new_arrays, out_dim, perm = _batched_spec(spec, arrays, dims[1:], True, len(shape), size)
    g = expand_dims(g, out_dim) if dims[0] is None else moveaxis(g, dims[0], out_dim)
    if perm is not None:  # into the layout the batched index produces
        g = transpose(g, tuple(np.argsort(perm)))
    return _scatter.bind(g, *new_arrays, spec=new_spec, shape=(size,) + tuple(shape)), 0


def _scatter_vjp(ct, primals, out, needs, *, spec, shape):
    return (_gather.bind(ct, *primals[1:], spec=spec),) + (zero,) * (len(primals) - 1)


def _scatter_samples(rng):
    out = []
    for dt in FLOATS:
        out += [
            Sample(array(rng, (5, 3), dt), spec=(("s", None, None, None), ("i", 1)), shape=(5, 4, 3)),
            Sample(array(rng, (4, 5, 3), dt), np.array([0, 2, 2, 1]), spec=(("a", 0),), shape=(3, 5, 3),
                   argnums=(0,)),
        ]
    out += [
        Sample(array(rng, (2, 3, 1, 4)), np.array([1, -1, 1]), np.array([[0], [2]]), spec=(("a", 0), ("n",), ("a", 1)),
               shape=(3, 5, 4), argnums=(0,), label="None between arrays, repeated"),
        Sample(array(rng, (5, 2)), np.array([2, 0]), spec=(("e",), ("a", 0), ("i", -1)), shape=(5, 3, 2),
               argnums=(0,), label="ellipsis, array, int"),
    ]
    return out


_scatter = Primitive(
    "scatter_add", _scatter_impl,
    jvp=lambda primals, tangents, out, *, spec, shape: _scatter.bind(tangents[0], *primals[1:], spec=spec,
                                                                     shape=shape),
    vjp=_scatter_vjp, batch=_scatter_batch, samples=_scatter_samples,
)


# ---- the user-facing functions --------------------------------------------------------

def _parse_index(index, fn_name: str):
    if not isinstance(index, tuple):
        index = (index,)
    spec = []
    arrays = []
    for c in index:
        if c is None:
            spec.append(("n",))
        elif c is Ellipsis:
            spec.append(("e",))
        elif isinstance(c, slice):
            spec.append(("s", _static_int(c.start), _static_int(c.stop), _static_int(c.step)))
        elif isinstance(c, (bool, np.bool_)):
            raise UnsupportedOperationError(f"{fn_name}: a scalar boolean index is not supported")
        elif isinstance(c, (int, np.integer)):
            spec.append(("i", int(c)))
        else:
            if isinstance(c, Tracer) and dtype_of(c).kind == "b":
                c = _concrete_mask(c)  # its values exist under grad and jvp; vmap and jit raise
            if isinstance(c, Tracer):
                kind = dtype_of(c).kind
                if kind not in "iu":
                    raise IndexError(f"{fn_name}: arrays used as indices must be of integer type, got {c.dtype}")
                spec.append(("a", len(arrays)))
                arrays.append(c)
                continue
            c = np.asarray(c)
            if c.dtype == bool:
                for part in np.nonzero(c):
                    spec.append(("a", len(arrays)))
                    arrays.append(part)
                continue
            if c.dtype.kind not in "iu":
                raise IndexError(f"{fn_name}: arrays used as indices must be of integer type, got {c.dtype}")
            spec.append(("a", len(arrays)))
            arrays.append(c)
    return tuple(spec), arrays


def _concrete_mask(mask):
    from ..data_dependent import concrete

    return concrete(mask, "x[mask] with a traced boolean mask",
                    "Use np.where(mask, x, 0) (or a fixed-size index) instead; an update x[mask] *= v "
                    "(+=, ...) reads x[mask] first: write it x[...] = np.where(mask, x * v, x). Or compute "
                    "the mask outside the transform and close over it (passed as an argument, it is traced "
                    "too).")


def _is_scalar_bool(c) -> bool:
    if isinstance(c, (bool, np.bool_)):
        return True
    return isinstance(c, (Tracer, np.ndarray)) and dtype_of(c).kind == "b" and not shape_of(c)


def split_scalar_bools(index):
    """``(pre, rest)`` with ``x[index] == x[pre][rest]`` when ``index`` holds 0-d
    booleans, else None.  NumPy reads a 0-d boolean as a new length-1 axis taken
    at ``[0]`` (True) or ``[]`` (False): ``pre`` inserts those axes (a view),
    ``rest`` indexes them with integer arrays and leaves the other axes as they are."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(_is_scalar_bool(c) for c in parts):
        return None
    pre, rest = [], []
    for c in parts:
        if _is_scalar_bool(c):
            value = bool(_concrete_mask(c)) if isinstance(c, Tracer) else bool(c)
            pre.append(None)
            rest.append(np.arange(int(value), dtype=np.intp))
            continue
        if c is None:
            pre.append(None)
            rest.append(slice(None))
            continue
        if c is Ellipsis:
            pre.append(Ellipsis)
        else:  # consumes one axis, or as many as a boolean array has
            mask = not isinstance(c, (slice, int, np.integer)) and dtype_of(c if isinstance(c, Tracer)
                                                                             else np.asarray(c)).kind == "b"
            pre.extend([slice(None)] * (len(shape_of(c if isinstance(c, Tracer) else np.asarray(c)))
                                        if mask else 1))
        rest.append(c)
    return tuple(pre), tuple(rest)


def _static_int(v):
    """A slice bound as a Python int.  A traced bound has its value under grad and jvp; under
    jit and vmap the slice's length would depend on it, which is refused as such."""
    if v is None:
        return None
    if isinstance(v, Tracer):
        from ..data_dependent import concrete

        v = concrete(v, "x[a:b] with a traced slice bound",
                     "Make the bound a Python int (under jit, jit(f, static_argnums=...)), or keep the full "
                     "length and mask: np.where(np.arange(n) < b, x, 0).")
    return operator.index(v)


def getitem(x, index):
    """``x[index]`` for traced and plain values (basic, integer-array and
    concrete boolean indices in any combination)."""
    split = split_scalar_bools(index)
    if split is not None:
        return getitem(getitem(x, split[0]), split[1])
    spec, arrays = _parse_index(index, "indexing")
    return _gather.bind(x, *arrays, spec=spec)


def index_add(g, index, shape):
    """An array of zeros of ``shape`` with ``g`` added at ``index`` (repeats accumulate)."""
    spec, arrays = _parse_index(index, "index_add")
    return _scatter.bind(g, *arrays, spec=spec, shape=tuple(shape))


@composite(np.take, samples=call_samples.take)
def take(a, indices, axis=None, out=None, mode=None):
    """``np.take`` for traced and plain values (also a traced integer ``indices``;
    ``mode`` 'raise', 'wrap' or 'clip')."""
    if out is not None:
        raise UnsupportedOperationError("np.take: 'out' is not supported on traced values; assign "
                                        "the result instead: y = np.take(...)")
    if mode not in (None, "raise", "wrap", "clip"):
        raise ValueError(f"np.take: clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    if axis is None:
        from ..shape.basic import ravel

        a, axis = ravel(a), 0
    from ..families import normalize_axes

    axis = normalize_axes(axis, len(shape_of(a)), "take")[0]
    if not isinstance(indices, Tracer):
        indices = np.asarray(indices)
        if indices.size == 0:  # np.take([]) is fine in NumPy (an empty float list)
            indices = indices.astype(np.intp)
    if mode in ("wrap", "clip"):
        n = shape_of(a)[axis]
        if n == 0:
            raise IndexError("np.take: cannot do a non-empty take from an empty axes.")
        if isinstance(indices, Tracer):
            from ..elementwise.piecewise import clip, remainder

            indices = remainder(indices, n) if mode == "wrap" else clip(indices, 0, n - 1)
        else:
            indices = np.asarray(indices)
            indices = np.remainder(indices, n) if mode == "wrap" else np.clip(indices, 0, n - 1)
    return getitem(a, (slice(None),) * axis + (indices,))


def along_axis_index(arr, indices, axis, fn_name):
    """The index ``arr[index]`` that np.take_along_axis / put_along_axis use,
    and whether it applies to the flattened ``arr`` (``axis=None``)."""
    indices = indices if isinstance(indices, Tracer) else np.asarray(indices)
    if dtype_of(indices).kind not in "iu":
        raise IndexError(f"{fn_name}: `indices` must be an integer array")
    if axis is None:
        if len(shape_of(indices)) != 1:
            raise ValueError(f"{fn_name}: when axis=None, `indices` must have a single dimension.")
        return (indices,), True
    shape = tuple(shape_of(arr))
    nd = len(shape)
    if len(shape_of(indices)) != nd:
        raise ValueError(f"{fn_name}: `indices` and `arr` must have the same number of dimensions")
    from ..families import normalize_axes

    axis = normalize_axes(axis, nd, fn_name)[0]
    index = tuple(indices if i == axis else np.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1))
                  for i, n in enumerate(shape))
    return index, False


@composite(np.take_along_axis, samples=call_samples.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    """``np.take_along_axis`` for traced and plain values (also traced integer
    ``indices``, e.g. under vmap): a gather, so repeated indices accumulate in
    the gradient."""
    arr = arr if isinstance(arr, Tracer) else np.asarray(arr)
    index, flat = along_axis_index(arr, indices, axis, "take_along_axis")
    if flat:
        from ..shape.basic import ravel

        arr = ravel(arr)
    return getitem(arr, index)
