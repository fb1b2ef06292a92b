"""Index arithmetic: ``unravel_index``, ``ravel_multi_index``, ``ix_`` and the
``array_equiv``.

Their outputs are integers or booleans: no derivative.  Integer index arrays
may be traced (computed under vmap, e.g. from ``np.argmax``): the arithmetic
is fixed-shape, and NumPy's range errors are checked on the values wherever
they are (``ensure``).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ..data_dependent import as_array, concrete, ensure, is_traced
from ..elementwise.arithmetic import astype, equal
from ..elementwise.piecewise import clip, floor_divide, remainder
from ..families import composite, composite_via
from ..sampling import array


def _index_array(x, fn_name):
    x = as_array(x)
    if dtype_of(x).kind not in "iu":
        raise TypeError("only int indices permitted")
    return astype(x, np.intp) if dtype_of(x) != np.intp else x


def _strides(dims, order):
    """Element strides of a C- or F-ordered array of shape ``dims``."""
    if order not in ("C", "F"):
        raise ValueError("only 'C' or 'F' order is permitted")
    strides, step = [0] * len(dims), 1
    for k in (reversed(range(len(dims))) if order == "C" else range(len(dims))):
        strides[k] = step
        step *= dims[k]
    return strides


def _unravel_samples(rng):
    return [Sample(np.array([5, 7, 0, 11]), shape=(3, 4)),
            Sample(np.array([[1, 2], [3, 0]]), shape=(2, 2), order="F"),
            Sample(np.array([23, 6]), shape=(2, 3, 4))]


@composite(np.unravel_index, samples=_unravel_samples, differentiable=False)
def unravel_index(indices, shape, order="C"):
    """``np.unravel_index`` for traced and plain flat indices (no derivative)."""
    if not is_traced(indices):
        return np.unravel_index(indices, shape, order=order)
    dims = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    strides = _strides(dims, order)
    flat = _index_array(indices, "unravel_index")
    size = int(np.prod(dims))
    flat = ensure(flat, "in_range", f"index out of bounds for array with size {size}", ValueError,
                  low=0, high=size)
    return tuple(remainder(floor_divide(flat, s), n) for s, n in zip(strides, dims))


def _ravel_call(i, j, *, dims, mode="raise", order="C"):
    return np.ravel_multi_index((i, j), dims, mode=mode, order=order)


def _ravel_samples(rng):
    return [Sample(np.array([1, 2, 0]), np.array([3, 0, 2]), dims=(3, 4)),
            Sample(np.array([5, -1]), np.array([3, 9]), dims=(3, 4), mode=("clip", "wrap")),
            Sample(np.array([[0, 1]]), np.array([[2], [1]]), dims=(2, 3), mode="wrap", order="F")]


@composite_via(np.ravel_multi_index, target=_ravel_call, samples=_ravel_samples, differentiable=False)
def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """``np.ravel_multi_index`` for traced and plain coordinates (``mode`` per
    dimension or for all; no derivative)."""
    if not is_traced(*multi_index):
        return np.ravel_multi_index(multi_index, dims, mode=mode, order=order)
    dims = (int(dims),) if np.ndim(dims) == 0 else tuple(int(d) for d in dims)
    if len(multi_index) != len(dims):
        raise ValueError(f"parameter multi_index must be a sequence of length {len(dims)}")
    modes = (mode,) * len(dims) if isinstance(mode, str) else tuple(mode)
    total = 0
    for coord, n, m, s in zip(multi_index, dims, modes, _strides(dims, order)):
        coord = _index_array(coord, "ravel_multi_index")
        if m == "raise":
            coord = ensure(coord, "in_range", "invalid entry in coordinates array", ValueError,
                           low=0, high=n)
        elif m == "wrap":
            coord = remainder(coord, n)
        elif m == "clip":
            coord = clip(coord, 0, n - 1)
        else:
            raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {m!r})")
        total = total + coord * s
    return total


def _ix_call(a, b):
    return np.ix_(a, b)


@composite_via(np.ix_, target=_ix_call, differentiable=False,
               samples=lambda rng: [Sample(np.array([2, 0]), np.array([1, 1, 3])),
                                    Sample(array(rng, (3,)), np.array([0, 2]), label="floats pass through")])
def ix_(*args):
    """``np.ix_`` for traced and plain sequences: each becomes an open-mesh axis
    (a traced boolean mask selects a data-dependent number of positions); an
    array of positions gives a view of it, as NumPy's reshape does."""
    if not is_traced(*args):
        return np.ix_(*args)
    from ..shape.views import reshape as view_reshape

    out = []
    nd = len(args)
    for k, a in enumerate(args):
        a = as_array(a)
        if ndim_of(a) != 1:
            raise ValueError("Cross index must be 1 dimensional")
        if dtype_of(a) == np.bool_:
            a = np.nonzero(concrete(a, "np.ix_(mask)", "Pass integer positions (a fixed number)."))[0]
        out.append(view_reshape(a, (1,) * k + (shape_of(a)[0],) + (1,) * (nd - k - 1)))
    return tuple(out)


def _equiv_samples(rng):
    x = np.round(array(rng, (2, 3)))
    return [Sample(x, x[0] + 0.0), Sample(x, np.round(array(rng, (3,)))), Sample(x, x.copy()),
            Sample(x, np.ones((2, 2)), label="shapes do not broadcast")]


@composite(np.array_equiv, samples=_equiv_samples, differentiable=False)
def array_equiv(a1, a2):
    """``np.array_equiv``: shapes broadcast and all entries are equal (a ``bool``;
    one per batch element under vmap)."""
    if not is_traced(a1, a2):
        return np.array_equiv(a1, a2)
    a1, a2 = as_array(a1), as_array(a2)
    try:
        np.broadcast_shapes(tuple(shape_of(a1)), tuple(shape_of(a2)))
    except ValueError:
        return np.False_  # an array, so vmap can return it
    from ..elementwise.logic import _all, _as_bool

    return _as_bool(_all(equal(a1, a2)))


__all__ = ["unravel_index", "ravel_multi_index", "ix_", "array_equiv"]
