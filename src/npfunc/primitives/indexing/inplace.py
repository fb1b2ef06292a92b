"""In-place syntax on traced values: ``x[i] = v``, ``x[i] += v``, ``x += y``, ``x *= y``...

A traced value cannot be written into, so these statements compute the
updated array functionally (``set_at``, or the ufunc followed by NumPy's
casting back to ``x.dtype``) and then make the Python object ``x`` hold the
new value: the fields of the tracer object are replaced by those of the
result.  Every name bound to that same object sees the new value, as in
NumPy.

Difference from NumPy: there are no views.  ``y = x[:2]`` (or ``x.T``, a
reshape...) computed before ``x[0] = 5`` keeps the old values, whereas a
NumPy view would change with ``x``.

The object can only be updated in place when ``x`` belongs to the innermost
running transform.  If ``x`` comes from an outer transform (a closure over
an outer traced value), an inner transform may already have recorded it, and
the updated value may depend on the inner transform's values, which ``x``
cannot hold.  Then ``x[i] = v`` raises with the functional fix
(``x = npfunc.numpy.set_at(x, i, v)``), and ``x += y`` simply rebinds the
name ``x`` to the new array.
"""
from __future__ import annotations

import numpy as np

from ...core import dispatch
from ...core.dispatch import implements
from ...core.context import current_stack, describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer
from ...core.values import dtype_of, shape_of
from ..elementwise.arithmetic import astype
from .updates import set_at

_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    """Every slot of a tracer class, the inherited ones included."""
    names = _SLOTS.get(cls)
    if names is None:
        found: list[str] = []
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in ((slots,) if isinstance(slots, str) else slots):
                if name not in found and name not in ("__weakref__", "__dict__"):
                    found.append(name)
        names = _SLOTS[cls] = tuple(found)
    return names


def clone(x):
    """A new tracer object holding the same value as ``x`` (an independent copy
    for in-place updates); plain values are copied with ``np.copy``."""
    if not isinstance(x, Tracer):
        return np.copy(x)
    out = object.__new__(type(x))
    for name in _slots(type(x)):
        setattr(out, name, getattr(x, name))
    return out


def _become(x: Tracer, new: Tracer) -> None:
    for name in _slots(type(x)):
        setattr(x, name, getattr(new, name))


def _updatable(x: Tracer) -> bool:
    """True when the object ``x`` can take a new value in place (see module doc)."""
    interp = x._interp
    if not interp.alive:
        raise x._escaped()
    stack = current_stack()
    return bool(stack) and stack[-1] is interp


def _commit(x: Tracer, new) -> bool:
    """Make ``x`` hold ``new`` if possible; False if it cannot."""
    if _updatable(x) and isinstance(new, Tracer) and new._interp is x._interp and type(new) is type(x):
        _become(x, new)
        return True
    return False


def assign(x, new, what: str, fix: str) -> None:
    """Make the array object ``x`` hold ``new`` (the result of the in-place
    operation ``what``), or raise naming the functional ``fix``."""
    if not isinstance(x, Tracer):
        if not isinstance(new, Tracer):
            np.copyto(x, new)
            return
        raise UnsupportedOperationError(
            f"{describe_stack()}: {what} writes a traced value into a plain ndarray, which cannot "
            f"hold it (it would silently drop the derivative or the batch). Use {fix}, which "
            "returns a new array.")
    if _commit(x, new):
        return
    if isinstance(new, Tracer) and new._interp is not x._interp and new._interp.alive:
        why = (f"the value written is traced by {new._interp.transform}, which runs inside the "
               f"{x._interp.transform} that traces the array, so the array cannot hold the result")
    else:
        top = current_stack()[-1].transform if current_stack() else "another transform"
        why = (f"the array is traced by an outer {x._interp.transform} while {top} runs inside it, "
               "and changing it in place could change values the inner transform already recorded")
    raise UnsupportedOperationError(
        f"{describe_stack()}: {what} cannot update the array in place: {why}. Use {fix}, which "
        "returns a new array (or np.where(mask, v, x) for a mask).")


def setitem(x: Tracer, index, value) -> None:
    """``x[index] = value`` for a traced ``x`` (see the module doc)."""
    assign(x, set_at(x, index, value), "x[index] = v", "x = npfunc.numpy.set_at(x, index, v)")


def _cast_into(x, new, ufunc):
    """``new`` as it would be stored into ``x``: same shape, same-kind cast to its dtype."""
    if tuple(shape_of(new)) != tuple(shape_of(x)):
        raise ValueError(
            f"non-broadcastable output operand with shape {tuple(shape_of(x))} doesn't match the "
            f"broadcast shape {tuple(shape_of(new))} (in-place np.{ufunc.__name__} on a traced value)")
    dtype = dtype_of(x)
    if dtype_of(new) != dtype:
        if not np.can_cast(dtype_of(new), dtype, casting="same_kind"):
            raise TypeError(
                f"Cannot cast ufunc '{ufunc.__name__}' output from {dtype_of(new)!r} to {dtype!r} "
                "with casting rule 'same_kind' (in-place update of a traced value); write "
                f"x = x.astype({dtype_of(new)}) first, or use the out-of-place operator")
        new = astype(new, dtype)
    return new


def inplace_binary(x: Tracer, ufunc, other):
    """``x <op>= other`` for a traced ``x``: NumPy's result (shape and dtype of
    ``x``, same-kind casting), held by the object ``x`` when it can be."""
    new = _cast_into(x, dispatch.ufunc_call(ufunc, "__call__", (x, other), {}), ufunc)
    if _commit(x, new):
        return x
    return new


def into_out(ufunc, inputs, out, kwargs):
    """``np.<ufunc>(..., out=out)`` with traced values: computed out of place,
    then held by ``out`` (a traced array updated in place, or a plain one
    receiving a plain result)."""
    new = _cast_into(out, dispatch.ufunc_call(ufunc, "__call__", tuple(inputs), kwargs), ufunc)
    assign(out, new, f"np.{ufunc.__name__}(..., out=x)",
           f"x = np.{ufunc.__name__}(...) (or npfunc.functionalize around the function)")
    return out


# ---- NumPy's in-place functions ----------------------------------------------------------

def _cycled(v, count: int, dtype):
    """``v`` flattened and repeated cyclically to ``count`` entries (as np.put does)."""
    from .gather import take
    from ..shape.basic import ravel

    v = ravel(v if isinstance(v, Tracer) else np.asarray(v, dtype=dtype))
    n = shape_of(v)[0]
    if n == 0:
        return v
    return v if n == count else take(v, np.arange(count) % n)


@implements(np.put)
def put(a, ind, v, mode="raise"):
    """``np.put`` on a traced ``a`` (``a`` then holds the result; see the module doc)."""
    from ..shape.basic import ravel, reshape

    shape = tuple(shape_of(a))
    size = int(np.prod(shape))
    ind = np.asarray(ind).ravel()
    if mode == "wrap":
        ind = ind % size
    elif mode == "clip":
        ind = np.clip(ind, 0, size - 1)
    elif mode != "raise":
        raise ValueError(f"put: clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    new = reshape(set_at(ravel(a), ind, _cycled(v, ind.size, dtype_of(a))), shape)
    assign(a, new, "np.put(a, ind, v)", "a = npfunc.numpy.set_at(a, index, v)")


@implements(np.put_along_axis)
def put_along_axis(arr, indices, values, axis):
    """``np.put_along_axis`` on a traced ``arr`` (``arr`` then holds the result)."""
    from .gather import along_axis_index

    index, flat = along_axis_index(arr, indices, axis, "put_along_axis")
    if flat:
        from ..shape.basic import ravel, reshape

        new = reshape(set_at(ravel(arr), index, values), tuple(shape_of(arr)))
    else:
        new = set_at(arr, index, values)
    assign(arr, new, "np.put_along_axis(arr, indices, values, axis)",
           "arr = npfunc.numpy.set_at(arr, index, values) with the index of np.take_along_axis")


@implements(np.fill_diagonal)
def fill_diagonal(a, val, wrap=False):
    """``np.fill_diagonal`` on a traced ``a`` (``a`` then holds the result)."""
    from ..shape.basic import ravel, reshape

    shape = tuple(shape_of(a))
    if len(shape) < 2:
        raise ValueError("fill_diagonal: array must be at least 2-d")
    end = None
    if len(shape) == 2:
        step = shape[1] + 1
        if not wrap:
            end = shape[1] * shape[1]
    else:
        if len(set(shape)) != 1:
            raise ValueError("fill_diagonal: All dimensions of input must be of equal length")
        step = 1 + int(np.cumprod(shape[:-1]).sum())
    index = np.arange(int(np.prod(shape)))[:end:step]
    new = reshape(set_at(ravel(a), index, _cycled(val, index.size, dtype_of(a))), shape)
    assign(a, new, "np.fill_diagonal(a, val)", "a = npfunc.numpy.set_at(a, diagonal index, val)")


@implements(np.copyto)
def copyto(dst, src, casting="same_kind", where=True):
    """``np.copyto`` into a traced ``dst`` (``dst`` then holds the result)."""
    from ..elementwise.arithmetic import where as where_
    from ..shape.basic import broadcast_to

    dtype = dtype_of(dst)
    src_dtype = dtype_of(src)
    if not np.can_cast(src_dtype, dtype, casting=casting):
        raise TypeError(f"copyto: Cannot cast array data from {src_dtype!r} to {dtype!r} according to "
                        f"the rule {casting!r}")
    shape = tuple(shape_of(dst))
    src = broadcast_to(src if isinstance(src, Tracer) else np.asarray(src), shape)
    new = src if where is True else where_(where, src, dst)
    new = astype(new, dtype) if dtype_of(new) != dtype else new
    assign(dst, new, "np.copyto(dst, src)", "dst = np.where(mask, src, dst) or dst = src")
