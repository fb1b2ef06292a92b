"""In-place syntax on traced values: ``x[i] = v``, ``x[i] += v``, ``x += y``,
``np.f(..., out=x)``, ``x.fill``, ``x.sort``, ``np.copyto``, ``np.put``...

A traced value cannot be written into, so these statements compute the
updated array functionally (``set_at``, or the ufunc followed by NumPy's
casting back to ``x.dtype``) and then make the Python object ``x`` hold the
new value; when ``x`` shares memory with other arrays (views, see
``aliasing.py``) their values follow, exactly as NumPy's would.  Every name
bound to ``x`` or to one of its views sees the write.

Where the object cannot hold the new value, the statement raises with the
functional fix (``x = npfunc.numpy.set_at(x, i, v)``): when the value
written is traced by a transform running inside the one that traces ``x``
(under ``vmap``, a batched value cannot be stored into an unbatched array),
or when ``x`` stands for a NumPy scalar (``s = x.sum()``), which NumPy cannot
write into either (``s += 1`` simply rebinds ``s``, as in NumPy).
"""
from __future__ import annotations

import numpy as np

from ...core import dispatch
from ...core.context import describe_stack
from ...core.dispatch import implements, twin_hint
from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer, keep
from ...core.values import dtype_of, shape_of
from ..elementwise.arithmetic import astype
from .aliasing import array_result, is_scalar, write
from .updates import set_at


def _lifted(x: Tracer, new):
    """``new`` as a value of ``x``'s interpreter and tracer type, or None when
    it is traced by a transform running inside that one (x cannot hold it)."""
    interp = x._interp
    if isinstance(new, Tracer):
        if new._interp is interp and type(new) is type(x):
            return new
        if new._interp.level > interp.level:
            return None
    return interp.lift(keep(new))  # a plain array: a copy, or later writes to it would reach x


def assign(x, new, what: str, fix: str) -> None:
    """Make the array object ``x`` hold ``new`` (the result of the in-place
    operation ``what``: same shape, ``x``'s dtype), or raise naming the
    functional ``fix``."""
    if not isinstance(x, Tracer):
        if not isinstance(new, Tracer):
            np.copyto(x, new)
            return
        from ...interpreters.batching import BatchTracer

        shared = ""
        if isinstance(new, BatchTracer):  # (like= cannot help an array shared by the whole batch)
            shared = (" Under vmap, an array the function did not receive mapped (in_dims=None, or closed "
                      "over) is one plain array for the whole batch, into which every element would write "
                      "its own values: map it (in_dims=0, one row per element), or return the update and "
                      "reduce it over the batch afterwards.")
        view = ""
        if isinstance(x, np.ndarray) and isinstance(x.base, np.ndarray):
            # a[i] += y runs += on the view a[i]: rebinding it (or a[i] = a[i] + y) still
            # writes into the plain a, so only a traced a helps
            view = (" When x is a view of a plain array a (a[i] += y updates the view a[i]), the "
                    "rebinding does not help, since a[i] = a[i] + y writes into a as well: make a "
                    "traced where it is created (a = np.array(a0, like=t) copies a plain a0 into a traced "
                    "array, t being an argument the transform traces; a = a0 + np.zeros_like(t) when t may "
                    "be a scalar, which NumPy's like= refuses).")
        raise UnsupportedOperationError(
            f"{describe_stack()}: {what} writes a traced value into a plain ndarray, which cannot "
            f"hold it (it would silently drop the derivative or the batch). Use {fix}, which "
            "returns a new array, or create the array traced (np.zeros(shape, like=x), or "
            "np.zeros_like(x, shape=shape) when x may be a scalar, which NumPy's like= refuses)." + view + shared
            + twin_hint())
    if not x._interp.alive:
        raise x._escaped()
    if is_scalar(x):
        raise TypeError(
            f"{what}: the target stands for a NumPy scalar (a 0-d result such as x.sum() or x[0] of "
            f"a 1-d x), which cannot be written into; NumPy raises here too. Use {fix}, or make it a "
            "0-d array first with np.array(s).")
    if not shape_of(x):  # a 0-d array holds a 0-d array (a ufunc on one gives a NumPy scalar)
        new = array_result(new) if isinstance(new, Tracer) else np.asarray(new)
    lifted = _lifted(x, new)
    if lifted is None:
        raise UnsupportedOperationError(
            f"{describe_stack()}: {what} cannot update the array in place: the value written is "
            f"traced by {new._interp.transform}, which runs inside the {x._interp.transform} that "
            f"traces the array, so the array cannot hold it. Use {fix}, which returns a new array "
            "(or np.where(mask, v, x) for a mask).")
    write(x, lifted, what)


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
    ``x``, same-kind casting), held by the object ``x`` and its views.  A
    scalar ``x`` is rebound instead, as NumPy scalars are."""
    new = dispatch.ufunc_call(ufunc, "__call__", (x, other), {})
    if is_scalar(x):
        return new
    assign(x, _cast_into(x, new, ufunc), f"x {_OPERATORS.get(ufunc, ufunc.__name__)}= y",
           f"x = x {_OPERATORS.get(ufunc, ufunc.__name__)} y")
    return x


_OPERATORS = {np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/", np.floor_divide: "//",
              np.remainder: "%", np.power: "**", np.matmul: "@", np.bitwise_and: "&", np.bitwise_or: "|",
              np.bitwise_xor: "^", np.left_shift: "<<", np.right_shift: ">>"}


def _harmless(a):
    """A value of ``a``'s kind at which the usual ufuncs neither overflow nor divide by zero."""
    kind = dtype_of(a).kind
    return True if kind == "b" else 1 if kind in "iu" else 0.5


def into_out(ufunc, inputs, out, kwargs):
    """``np.<ufunc>(..., out=out)`` with traced values: computed out of place,
    then held by ``out`` (a traced array updated in place, or a plain one
    receiving a plain result); with ``where=``, the entries it leaves out keep
    ``out``'s values, as NumPy's."""
    mask = kwargs.pop("where", True)
    if mask is not True:
        # NumPy does not compute the entries left out: their derivative is 0, not the
        # ufunc's there (1/0 in np.divide(a, b, out=..., where=b != 0)), so only the kept
        # entries of each input carry a derivative (a NaN at a left-out entry stops here),
        # and the left-out entries read a harmless constant (0.5; 1 for integers, True for
        # booleans), so that no warning or FloatingPointError (np.errstate) arises from
        # them where NumPy raises none
        inputs = [np.where(mask, a, _harmless(a))
                  if isinstance(a, (Tracer, np.ndarray)) else a for a in inputs]
    new = _cast_into(out, dispatch.ufunc_call(ufunc, "__call__", tuple(inputs), kwargs), ufunc)
    if mask is not True:
        new = np.where(mask, new, out)
    op = _OPERATORS.get(ufunc)
    if op is not None and mask is True and len(inputs) == 2 and inputs[0] is out:
        # what a plain ndarray's `x += y` calls: name the statement the user wrote
        what, fix = f"x {op}= y (np.{ufunc.__name__}(x, y, out=x))", f"x = x {op} y"
    else:
        what, fix = f"np.{ufunc.__name__}(..., out=x)", f"x = np.{ufunc.__name__}(...)"
    assign(out, new, what, fix)
    return out


#: The ufuncs whose ``at`` method traced values take (an accumulated scatter-add).
AT_UFUNCS = (np.add, np.subtract)


def ufunc_at(ufunc, a, indices, b=None, /) -> None:
    """``np.add.at(a, indices, b)`` and ``np.subtract.at`` with traced values:
    ``a`` (and its views) then hold ``a`` with ``b`` added at ``indices``,
    repeated indices accumulating (``npfunc.numpy.add_at``, written back)."""
    from .updates import add_at

    name = f"np.{ufunc.__name__}.at"
    if ufunc in (np.minimum, np.maximum) and b is not None and _integer_arrays(indices):
        assign(a, _cast_into(a, _extreme_at(ufunc, a, indices, b), ufunc), f"{name}(a, indices, b)",
               f"a = np.array(a, like=b) (a traced copy) before {name}(a, indices, b)")
        return
    if ufunc not in AT_UFUNCS:
        product = (f"; for a product with plain values v, build the factors with NumPy (f = "
                   f"np.ones(a.shape); {name}(f, indices, v)) and write a = a * f"
                   if ufunc in (np.multiply, np.true_divide) else "")
        raise UnsupportedOperationError(
            f"{describe_stack()}: {name} is not supported on traced values (np.add.at and "
            "np.subtract.at are; np.minimum.at and np.maximum.at with integer-array indices). Write "
            "the update out of place: npfunc.numpy.set_at(a, indices, v) assigns (the last of repeated "
            f"indices wins), npfunc.numpy.add_at(a, indices, v) accumulates{product}.")
    if b is None:
        raise ValueError(f"{name}: second operand needed for ufunc")  # NumPy's error
    if dtype_of(a).kind in "biu" and np.result_type(dtype_of(a), b if not isinstance(b, Tracer)
                                                   else dtype_of(b)).kind in "fc":
        # NumPy adds in floating point and truncates into a after each addition, so the
        # result depends on the order of repeated indices: not an accumulated sum
        raise UnsupportedOperationError(
            f"{describe_stack()}: {name} of floating-point values into an integer array truncates "
            "after every addition, which npfunc does not reproduce; cast the values first "
            f"({name}(a, indices, b.astype(a.dtype))) or make the array floating-point")
    if ufunc is np.subtract:
        b = np.negative(b) if isinstance(b, Tracer) else np.negative(np.asarray(b))
    assign(a, _cast_into(a, add_at(a, indices, b), ufunc), f"{name}(a, indices, b)",
           f"a = npfunc.numpy.add_at(a, indices, {'-' if ufunc is np.subtract else ''}b)")


def _integer_arrays(indices) -> bool:
    """An index of integer arrays only (one, or a tuple; plain or traced): the form
    _extreme_at takes."""
    parts = indices if isinstance(indices, tuple) else (indices,)
    for i in parts:
        if isinstance(i, (slice, type(Ellipsis), type(None), bool)):
            return False
        if (dtype_of(i) if isinstance(i, Tracer) else np.asarray(i).dtype).kind not in "iu":
            return False
    return len(parts) > 0


def _extreme_at(ufunc, a, indices, b):
    """``a`` after ``np.minimum.at(a, indices, b)`` (``maximum``): the values ordered so
    that the extreme one of each repeated index is written last by ``set_at``
    (the last write wins), then combined with ``a`` by the ufunc; an index that
    receives a NaN ends NaN, as NumPy's propagates it."""
    from ..sorting import argsort
    from .gather import take
    from .updates import add_at

    shape = tuple(shape_of(a))
    parts = [i if isinstance(i, Tracer) else np.asarray(i)
             for i in (indices if isinstance(indices, tuple) else (indices,))]
    if len(parts) > len(shape):
        raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional, "
                         f"but {len(parts)} were indexed")
    rest = shape[len(parts):]
    target = np.broadcast_shapes(*(tuple(shape_of(i)) for i in parts)) + rest
    # one index array per axis, every element written listed once (set_at checks the bounds
    # and wraps negative indices as x[i] = v does)
    grids = [np.broadcast_to(np.reshape(i, tuple(shape_of(i)) + (1,) * len(rest)), target).reshape(-1)
             for i in parts]
    grids += [np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (len(rest) - k - 1)), target).reshape(-1)
              for k, n in enumerate(rest)]
    dt = dtype_of(a)
    v = np.broadcast_to(b if isinstance(b, Tracer) else np.asarray(b, dtype=np.result_type(dt, b)),
                        target).reshape(-1)
    order = argsort(v, kind="stable")
    if ufunc is np.minimum:  # the smallest last
        order = order[::-1]
    fill = (np.inf if ufunc is np.minimum else -np.inf) if dt.kind in "fc" else (
        np.iinfo(dt).max if ufunc is np.minimum else np.iinfo(dt).min) if dt.kind in "iu" else (
        ufunc is np.minimum)
    winners = set_at(np.full(shape, fill, dtype=dt), tuple(take(g, order) for g in grids), take(v, order))
    out = ufunc(a, winners)
    if dt.kind in "fc":
        nan_hit = add_at(np.zeros(shape), tuple(grids), np.isnan(v).astype(float)) > 0
        out = np.where(nan_hit, np.nan, out)
    return out


def sort_inplace(x: Tracer, axis=-1, kind=None, order=None, stable=None) -> None:
    """``x.sort(...)``: ``x`` (and its views) now hold the sorted values."""
    from ..sorting import sort

    assign(x, sort(x, axis=axis, kind=kind, order=order, stable=stable), "x.sort()", "x = np.sort(x)")


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
    if not isinstance(dst, Tracer) and isinstance(new, Tracer) and _called_from_numpy("full", "full_like"):
        # (refuses: NumPy's full/full_like fill a plain array by copyto)
        from ...core.conversions import FULL_FIX

        assign(dst, new, "np.full/np.full_like(..., v) with a traced fill value v", FULL_FIX)
    assign(dst, new, "np.copyto(dst, src)", "dst = np.where(mask, src, dst) or dst = src")


def _called_from_numpy(*names) -> bool:
    """True when NumPy's own function of one of ``names`` made the call (only asked
    while a refusal is worded: dst is then a plain array)."""
    import sys

    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return False
        if frame.f_code.co_name in names and frame.f_globals.get("__name__", "").startswith("numpy"):
            return True
        frame = frame.f_back
    return False
