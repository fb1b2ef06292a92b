"""Functional index updates: ``x[index] = v`` and ``x[index] += v`` on traced values.

``set_at(x, index, v)`` is the functional form (a new array, ``x`` is not
touched); it is the primitive ``scatter_set``: ``x`` with the indexed
positions replaced by ``v`` (broadcast to the indexed shape, cast to
``x.dtype``).  Derivatives: w.r.t. ``x`` the cotangent with the overwritten
positions zeroed; w.r.t. ``v`` the cotangent gathered at ``index`` (summed
over broadcasting).  With repeated integer indices the last write wins, as in
NumPy, and only the winning write of ``v`` gets a cotangent.

``add_at(x, index, v)`` adds ``v`` at ``index`` with repeated indices
accumulating (like ``np.add.at``, but returning a new array).

The in-place syntax on traced values (``x[i] = v``, ``x[i] += v``, ``x += y``,
``x *= y`` ...) is implemented in ``inplace.py`` with these functions.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import materialize_front
from ..elementwise.arithmetic import astype, where, zeros_like
from ..families import fit_cotangent
from .gather import (_FULL, _is_scalar_bool, _batched_spec, _build, _gather, _parse_index, _scatter, getitem, index_shape,
                     split_scalar_bools)
from ..sampling import FLOATS, array
from ..shape.basic import broadcast_to, moveaxis, reshape, transpose

# ---- which write wins (a non-differentiable helper) ------------------------------------


def _last_write_impl(*arrays, spec, shape):
    out_shape = index_shape(spec, arrays, shape)
    ids = np.arange(math.prod(out_shape)).reshape(out_shape)
    slots = np.full(shape, -1, dtype=ids.dtype)
    index = _build(spec, arrays)
    slots[index] = ids
    return slots[index] == ids


def _last_write_batch(vals, dims, *, spec, shape):
    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    new_spec, new_arrays, out_dim, perm = _batched_spec(spec, vals, dims, True, len(shape), size)
    mask = _last_write.bind(*new_arrays, spec=new_spec, shape=(size,) + tuple(shape))
    return (mask if perm is None else transpose(mask, perm)), out_dim


def _last_write_samples(rng):
    return [
        Sample(np.array([0, 2, 2, 1, 0]), spec=(("a", 0),), shape=(4, 3), label="repeated"),
        Sample(np.array([[0, 1], [1, 1]]), np.array([2, 2]), spec=(("a", 0), _FULL, ("a", 1)), shape=(3, 2, 4),
               label="non-adjacent"),
    ]


_last_write = Primitive("last_write", _last_write_impl, differentiable=False, batch=_last_write_batch,
                        samples=_last_write_samples,
                        notes="True where an integer-array index writes last (NumPy's order)")


def last_write(arrays, spec, shape):
    """Boolean array shaped like ``x[index]``: True where that write is the one
    that ends up in ``x`` (the last of repeated indices)."""
    return _last_write.bind(*arrays, spec=spec, shape=tuple(shape))


# ---- scatter_set -------------------------------------------------------------------------

def _set_impl(x, v, *arrays, spec):
    out = np.array(x, copy=True)
    out[_build(spec, arrays)] = v
    return out


def _set_jvp(primals, tangents, out, *, spec):
    x, arrays = primals[0], primals[2:]
    tx, tv = tangents[0], tangents[1]
    tx = zeros_like(x) if tx is zero else tx
    return _set.bind(tx, 0 if tv is zero else tv, *arrays, spec=spec)


def _set_vjp(g, primals, out, needs, *, spec):
    x, v, arrays = primals[0], primals[1], primals[2:]
    gx = _set.bind(g, 0, *arrays, spec=spec) if needs[0] else zero
    gv = zero
    if needs[1]:
        gv = _gather.bind(g, *arrays, spec=spec)
        if arrays:  # repeated indices: only the last write reaches the output
            gv = where(last_write(arrays, spec, shape_of(x)), gv, zeros_like(gv))
        gv = fit_cotangent(gv, v)
    return (gx, gv) + (zero,) * len(arrays)


def _set_batch(vals, dims, *, spec):
    x, v, arrays = vals[0], vals[1], vals[2:]
    size = next(shape_of(a)[d] for a, d in zip(vals, dims) if d is not None)
    x = materialize_front(x, dims[0], size)
    logical = tuple(shape_of(x)[1:])
    target = index_shape(spec, [_logical_shape(a, d) for a, d in zip(arrays, dims[2:])], logical)
    new_spec, new_arrays, out_dim, perm = _batched_spec(spec, arrays, dims[2:], True, len(logical), size)
    if dims[1] is not None or ndim_of(v) > 0:
        v = materialize_front(v, dims[1], size)
        vs = tuple(shape_of(v)[1:])
        v = reshape(v, (size,) + (1,) * (len(target) - len(vs)) + vs)
        v = moveaxis(broadcast_to(v, (size,) + tuple(target)), 0, out_dim)
        if perm is not None:
            v = transpose(v, tuple(np.argsort(perm)))
    return _set.bind(x, v, *new_arrays, spec=new_spec), 0


def _logical_shape(a, d):
    """A stand-in (no memory) with the shape ``a`` has without its batch axis."""
    s = tuple(shape_of(a))
    return np.broadcast_to(np.intp(0), s if d is None else s[:d] + s[d + 1:])


def _set_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (4, 5, 3), dt)
        out += [
            Sample(x, array(rng, (5, 3), dt), spec=(("i", 1),)),
            Sample(x, array(rng, (1, 5), dt), spec=(("s", 1, None, 2), ("n",), ("e",), ("i", -1)),
                   label="broadcast v"),
            Sample(x, array(rng, (), dt), spec=(_FULL, ("s", None, None, -2)), label="0-d v"),
            Sample(x, array(rng, (4, 5, 3), dt), np.array([0, 2, 2, 3]), spec=(("a", 0),), argnums=(0, 1),
                   label="repeated"),
            Sample(x, array(rng, (4, 2, 2), dt), np.array([[0, 1], [3, 3]]), np.array([2, 0]),
                   spec=(_FULL, ("a", 0), ("a", 1)), argnums=(0, 1), label="repeated pairs"),
            Sample(x, array(rng, (3, 5), dt), np.array([1, 0, 1]), np.array([2, 2, 0]),
                   spec=(("a", 0), _FULL, ("a", 1)), argnums=(0, 1), label="non-adjacent"),
            Sample(x, array(rng, (2, 5), dt), np.array([1, 2]), spec=(("i", 0), _FULL, ("a", 0)),
                   argnums=(0, 1), label="int and array apart"),
        ]
    return out


_set = Primitive("scatter_set", _set_impl, jvp=_set_jvp, vjp=_set_vjp, batch=_set_batch,
                 samples=_set_samples,
                 notes="repeated indices: the last write wins (as in NumPy) and alone gets a cotangent")


# ---- the user-facing functions ------------------------------------------------------------

def _traced_mask(index):
    """The traced boolean mask when ``index`` is one (alone, or ``(mask,)``)."""
    parts = index if isinstance(index, tuple) else (index,)
    masks = [c for c in parts if isinstance(c, Tracer) and dtype_of(c).kind == "b"]
    if not masks:
        return None
    if len(parts) != 1:
        raise UnsupportedOperationError(
            f"{describe_stack()}: x[mask] = v with a traced boolean mask is only supported "
            "with the mask alone as the index (its selection has a data-dependent shape). "
            "Write x = np.where(mask, v, x) instead.")
    return masks[0]


def _fit_values(v, target, dtype, fn_name):
    """``v`` cast to ``dtype`` and shaped to broadcast against ``target``."""
    if isinstance(v, (list, tuple)):
        from ..shape.joining import array

        v = array(v)  # also a list of traced values
    elif not isinstance(v, (Tracer, bool, int, float, complex)):
        v = np.asarray(v)
    vshape = tuple(shape_of(v))
    if len(vshape) > len(target):  # NumPy drops leading length-1 axes of the values
        extra = len(vshape) - len(target)
        if any(n != 1 for n in vshape[:extra]):
            raise ValueError(f"{fn_name}: could not broadcast input array from shape {vshape} "
                             f"into shape {tuple(target)}")
        v = reshape(v, vshape[extra:])
        vshape = vshape[extra:]
    try:
        ok = np.broadcast_shapes(vshape, tuple(target)) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn_name}: could not broadcast input array from shape {vshape} "
                         f"into shape {tuple(target)}")
    vdtype = dtype_of(v)
    if vdtype.kind == "c" and dtype.kind != "c":
        # NumPy casts (ComplexWarning, the imaginary part dropped; a Python complex into one
        # entry is its TypeError): an npfunc refusal naming both fixes
        raise UnsupportedOperationError(
            f"{describe_stack()}: {fn_name}: cannot write complex values into an array of dtype {dtype} "
            "(NumPy would drop the imaginary part with a ComplexWarning); take np.real(v) (or make x "
            "complex, e.g. np.zeros_like(x, dtype=complex)) explicitly")
    if isinstance(v, (bool, int, float)):  # weak Python scalars: NumPy casts them on assignment
        return v
    return astype(v, dtype) if vdtype != dtype else v


def _fills(values, xshape) -> bool:
    """Whether ``values`` (leading length-1 axes dropped) broadcast to ``xshape``: then
    ``x[flag] = values`` is right whichever the flag (NumPy also takes an empty value for
    False, which then stays with the refusal)."""
    if isinstance(values, (list, tuple)):
        return False
    vshape = tuple(shape_of(values))
    while len(vshape) > len(xshape) and vshape[0] == 1:
        vshape = vshape[1:]
    try:
        return np.broadcast_shapes(vshape, xshape) == xshape
    except ValueError:
        return False


def set_at(x, index, values):
    """The functional form of ``x[index] = values``: a new array, ``x`` unchanged.

    Works on traced and plain values, with any index NumPy accepts (basic,
    integer arrays, concrete boolean masks, in any combination), and with a
    traced boolean ``mask`` as the whole index (then ``np.where(mask, v, x)``).
    ``values`` is broadcast to ``x[index].shape`` and cast to ``x.dtype``.  With
    repeated integer indices the last write wins, as in NumPy.

    >>> import numpy as np
    >>> set_at(np.zeros(4), [1, 3], 2.0)
    array([0., 2., 0., 2.])
    """
    x = x if isinstance(x, Tracer) else np.asarray(x)
    parts = index if isinstance(index, tuple) else (index,)
    # a traced 0-d boolean alone (SciPy's xpx.at(r, const).set(nan)) selects all of x or
    # nothing, a shape the value does not change: np.where below, as for a traced mask
    lone = (len(parts) == 1 and isinstance(parts[0], Tracer) and _is_scalar_bool(parts[0])
            and _fills(values, tuple(shape_of(x))))
    split = None if lone else split_scalar_bools(index)
    if split is not None:  # 0-d booleans: update x[pre] (only length-1 axes added), reshape back
        return reshape(set_at(getitem(x, split[0]), split[1], values), tuple(shape_of(x)))
    mask = _traced_mask(index)
    xshape = tuple(shape_of(x))
    if mask is not None:
        mshape = tuple(shape_of(mask))
        if xshape[:len(mshape)] != mshape:
            raise IndexError(f"set_at: boolean index of shape {mshape} does not match the array's "
                             f"shape {xshape}")
        rest = xshape[len(mshape):]
        values = _fit_values(values, rest, dtype_of(x), "set_at (traced boolean mask)")
        out = where(reshape(mask, mshape + (1,) * len(rest)), values, x)
        return out if dtype_of(out) == dtype_of(x) else astype(out, dtype_of(x))
    spec, arrays = _parse_index(index, "set_at")
    target = index_shape(spec, arrays, xshape)
    values = _fit_values(values, target, dtype_of(x), "set_at")
    if not isinstance(x, Tracer) and not isinstance(values, Tracer) and not any(
            isinstance(a, Tracer) for a in arrays):
        return _set_impl(x, values, *arrays, spec=spec)
    return _set.bind(x, values, *arrays, spec=spec)


set_at.primitive = _set  # type: ignore[attr-defined]


def add_at(x, index, values):
    """``x`` with ``values`` added at ``index``; repeated indices accumulate
    (like ``np.add.at``, but returning a new array instead of writing into ``x``).

    >>> import numpy as np
    >>> add_at(np.zeros(3), [0, 0, 2], 1.0)
    array([2., 0., 1.])
    """
    x = x if isinstance(x, Tracer) else np.asarray(x)
    xshape = tuple(shape_of(x))
    spec, arrays = _parse_index(index, "add_at")
    target = index_shape(spec, arrays, xshape)
    values = _fit_values(values, target, dtype_of(x), "add_at")
    if isinstance(values, (bool, int, float)):
        values = np.asarray(values, dtype=dtype_of(x))
    values = broadcast_to(values, tuple(target))
    return x + _scatter.bind(values, *arrays, spec=spec, shape=xshape)
