"""Searching: ``nonzero``, ``argwhere``, ``flatnonzero`` (and ``np.where`` with one
argument).  Their outputs are integer indices: no derivative.

The number of indices depends on the values, so on traced values they work
where the values are concrete (grad, jvp, vjp, functionalize: code that
uses the indices to pick entries differentiates through the picking) and
raise ``DataDependentShapeError`` under vmap and jit.  There the fix is a
fixed shape: ``np.where(mask, x, 0)``, or the ``size=`` keyword npfunc adds
(``npfunc.numpy.argwhere(x, size=k, fill_value=-1)``): exactly ``k``
indices, the first ones in NumPy's order, padded with ``fill_value``
(default 0), as JAX does.

>>> import numpy as np, npfunc
>>> npfunc.vmap(lambda x: npfunc.numpy.flatnonzero(x > 0, size=2, fill_value=-1))(
...     np.array([[1.0, -1.0, 2.0], [-1.0, -2.0, 3.0]]))
array([[ 0,  2],
       [ 2, -1]])
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Sample
from ..core.values import dtype_of, ndim_of, shape_of
from .data_dependent import as_array, concrete, first_true, fixed_size, is_traced
from .elementwise.arithmetic import not_equal, where
from .families import composite_via
from .elementwise.piecewise import floor_divide, remainder
from .shape.basic import ravel, reshape, stack
from .sampling import array


def truth(a):
    """``a != 0`` (NumPy's truth value of entries), the identity for booleans."""
    return a if dtype_of(a) == np.bool_ else not_equal(a, 0)


def _fix(name: str, args: str) -> str:
    return (f"Use np.where(mask, x, 0) to keep the shape, or npfunc.numpy.{name}({args}, "
            "size=k, fill_value=...) for exactly k results (padded).")


def _fills(fill_value, nd: int, fn_name: str) -> tuple:
    if fill_value is None:
        return (0,) * nd
    if np.ndim(fill_value) == 0:
        return (fill_value,) * nd
    fills = tuple(fill_value)
    if len(fills) != nd:
        raise ValueError(f"{fn_name}: fill_value must be a scalar or have one entry per dimension "
                         f"({nd}), got {len(fills)}")
    return fills


def _sized_nonzero(a, size: int, fill_value, fn_name: str):
    """The first ``size`` index tuples of the nonzero entries of ``a`` (fixed shape)."""
    shape = tuple(shape_of(a))
    fills = _fills(fill_value, len(shape), fn_name)
    flat, valid = first_true(ravel(truth(a)), size)
    coords = []
    for n in reversed(shape):  # C order: the last axis varies fastest
        coords.append(remainder(flat, n) if n else flat)
        flat = floor_divide(flat, n) if n else flat
    coords.reverse()
    return tuple(where(valid, c, np.intp(f)) for c, f in zip(coords, fills))


def nonzero(a, *, size=None, fill_value=None):
    """``np.nonzero`` for traced and plain values (index arrays, no derivative).

    Works where values are concrete (grad, jvp, vjp); under vmap and jit pass
    ``size=`` (npfunc's keyword, as in JAX) for a fixed number of indices.
    """
    if size is None and not is_traced(a):
        return np.nonzero(a)
    a = as_array(a)
    if ndim_of(a) == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use np.atleast_1d(scalar).nonzero() "
                         "instead.")
    if size is not None:
        return _sized_nonzero(a, fixed_size(size, "nonzero"), fill_value, "nonzero")
    return np.nonzero(concrete(truth(a), "np.nonzero(a)", _fix("nonzero", "a")))


def argwhere(a, *, size=None, fill_value=None):
    """``np.argwhere`` for traced and plain values (one row of indices per
    nonzero entry, no derivative); ``size=`` as in ``nonzero``."""
    if size is None and not is_traced(a):
        return np.argwhere(a)
    a = as_array(a)
    if ndim_of(a) == 0:  # as NumPy: one row (or none) without coordinates
        return argwhere(reshape(a, (1,)), size=size)[:, :0]
    if size is not None:
        coords = _sized_nonzero(a, fixed_size(size, "argwhere"), fill_value, "argwhere")
        return stack(coords, axis=1)
    return np.argwhere(concrete(truth(a), "np.argwhere(a)", _fix("argwhere", "a")))


def flatnonzero(a, *, size=None, fill_value=None):
    """``np.flatnonzero`` for traced and plain values (flat indices, no derivative);
    ``size=`` as in ``nonzero``."""
    if size is None and not is_traced(a):
        return np.flatnonzero(a)
    flat = ravel(as_array(a))
    if size is not None:
        index, valid = first_true(truth(flat), fixed_size(size, "flatnonzero"))
        return where(valid, index, np.intp(0 if fill_value is None else fill_value))
    return np.flatnonzero(concrete(truth(flat), "np.flatnonzero(a)", _fix("flatnonzero", "a")))


# ---- registration --------------------------------------------------------------------------

def _index_samples(rng):
    """Sized calls (the ones vmap and jit can run), masks with ties to the size."""
    x = np.round(array(rng, (3, 4)))  # integers in [-2, 2]: several zeros
    return [Sample(x, size=5, fill_value=None), Sample(x, size=12, fill_value=-1),
            Sample(x.ravel(), size=3, fill_value=7, label="1-d"),
            Sample(x > 0, size=2, fill_value=None, label="bool"),
            Sample(array(rng, (2, 0)), size=2, fill_value=None, label="empty"),
            Sample(x.astype(np.float32), size=0, fill_value=None, label="size 0")]


_NOTES = ("indices: no derivative; the shape depends on the values, so under vmap and jit only "
          "with size= (npfunc's keyword), which the samples use")
# NumPy's own entry points cannot take size=: the generated tests call npfunc's functions.
composite_via(np.nonzero, target=nonzero, samples=_index_samples, differentiable=False, notes=_NOTES)(nonzero)
composite_via(np.argwhere, target=argwhere, samples=_index_samples, differentiable=False, notes=_NOTES)(argwhere)
composite_via(np.flatnonzero, target=flatnonzero, samples=_index_samples, differentiable=False,
              notes=_NOTES)(flatnonzero)
