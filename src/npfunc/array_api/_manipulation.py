"""Manipulation, indexing and (main-namespace) linear algebra functions."""
from __future__ import annotations

from ._base import array_out, arrays_out, check_array, fn

# ---- manipulation ------------------------------------------------------------------------


def broadcast_arrays(*arrays):
    return [array_out(a) for a in fn("broadcast_arrays")(*arrays)]


def broadcast_to(x, /, shape):
    return array_out(fn("broadcast_to")(x, tuple(shape)))


def concat(arrays, /, *, axis=0):
    """``arrays`` joined along ``axis`` (flattened first when ``axis`` is None)."""
    return array_out(fn("concatenate")(tuple(arrays), axis=axis))


def expand_dims(x, /, axis):
    if not isinstance(axis, int):
        raise TypeError(f"npfunc.array_api.expand_dims: axis must be an int, got {type(axis).__name__}")
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise IndexError(f"npfunc.array_api.expand_dims: axis {axis} is out of bounds for a result of "
                         f"dimension {x.ndim + 1}")
    return array_out(fn("expand_dims")(x, axis))


def flip(x, /, *, axis=None):
    return array_out(fn("flip")(x, axis=axis))


def moveaxis(x, source, destination, /):
    return array_out(fn("moveaxis")(x, source, destination))


def permute_dims(x, /, axes):
    return array_out(fn("permute_dims")(x, tuple(axes)))


def repeat(x, repeats, /, *, axis=None):
    return array_out(fn("repeat")(x, repeats, axis=axis))


def reshape(x, /, shape, *, copy=None):
    """``x`` with a new shape: ``copy=False`` raises where NumPy would have to copy."""
    return array_out(fn("reshape")(x, tuple(shape), copy=copy))


def roll(x, /, shift, *, axis=None):
    return array_out(fn("roll")(x, shift, axis=axis))


def squeeze(x, /, axis):
    """``x`` without the length-1 axes ``axis`` (required; a longer axis raises)."""
    return array_out(fn("squeeze")(x, axis=axis))


def stack(arrays, /, *, axis=0):
    return array_out(fn("stack")(tuple(arrays), axis=axis))


def tile(x, repetitions, /):
    return array_out(fn("tile")(x, tuple(repetitions)))


def unstack(x, /, *, axis=0):
    return arrays_out(fn("unstack")(x, axis=axis))


# ---- indexing ----------------------------------------------------------------------------


def take(x, indices, /, *, axis=None):
    """Elements of ``x`` at ``indices`` along ``axis`` (optional for a 1-d ``x`` only)."""
    check_array(indices, "take", "indices")
    if axis is None:
        if x.ndim != 1:
            raise ValueError("npfunc.array_api.take: axis is required when x has more than one dimension")
        axis = 0
    return array_out(fn("take")(x, indices, axis=axis))


def take_along_axis(x, indices, /, *, axis=-1):
    return array_out(fn("take_along_axis")(x, indices, axis))


# ---- linear algebra (main namespace) --------------------------------------------------------


def matmul(x1, x2, /):
    return array_out(fn("matmul")(x1, x2))


def matrix_transpose(x, /):
    """The last two axes of ``x`` swapped (a stack of matrices)."""
    if x.ndim < 2:
        raise ValueError("npfunc.array_api.matrix_transpose: x must have at least two dimensions")
    return array_out(fn("swapaxes")(x, -1, -2))


def tensordot(x1, x2, /, *, axes=2):
    return array_out(fn("tensordot")(x1, x2, axes=axes))


def vecdot(x1, x2, /, *, axis=-1):
    """Dot products of vectors along ``axis``, conjugating ``x1``."""
    return array_out(fn("vecdot")(x1, x2, axis=axis))
