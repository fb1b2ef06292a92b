"""Twins of ``scipy.linalg``'s special matrices (re-exported by
``npfunc.scipy.linalg``).  Each is a gather from its arguments with a
constant index pattern, so it is linear and differentiable in every
entry, and vmap batches it (leading axes batch as in SciPy 1.17:
``toeplitz``, ``circulant``, ``companion`` and ``block_diag`` treat them as a
stack; ``hankel`` ravels its arguments, as SciPy still does)."""
from __future__ import annotations

import numpy as np

from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.data_dependent import as_array, ensure

__all__ = ["block_diag", "toeplitz", "circulant", "hankel", "companion"]


def block_diag(*arrs):
    """``scipy.linalg.block_diag``: the blocks on the diagonal of one matrix
    (0-d and 1-d arguments are rows; leading axes broadcast as a stack)."""
    if arrs == ():
        arrs = ([],)
    arrs = [np.atleast_2d(as_array(a)) for a in arrs]
    batch = np.broadcast_shapes(*[tuple(shape_of(a))[:-2] for a in arrs])
    arrs = [np.broadcast_to(a, batch + tuple(shape_of(a))[-2:]) for a in arrs]
    dtype = np.result_type(*[dtype_of(a) for a in arrs])
    rows_total = sum(shape_of(a)[-2] for a in arrs)
    cols_total = sum(shape_of(a)[-1] for a in arrs)
    rows, col = [], 0
    for a in arrs:
        r, c = shape_of(a)[-2:]
        parts = [np.zeros(batch + (r, col), dtype), a.astype(dtype), np.zeros(batch + (r, cols_total - col - c), dtype)]
        rows.append(np.concatenate(parts, axis=-1))
        col += c
    if not rows_total:
        return np.zeros(batch + (0, cols_total), dtype)
    return np.concatenate(rows, axis=-2)


def _gather_last(vals, index):
    """``vals[..., index]`` for a constant integer ``index`` array."""
    return vals[..., index]


def toeplitz(c, r=None):
    """``scipy.linalg.toeplitz``: first column ``c``, first row ``r`` (default
    ``conj(c)``; ``r[0]`` is ignored).  Leading axes are a stack."""
    c = np.atleast_1d(as_array(c))
    r = np.conjugate(c) if r is None else np.atleast_1d(as_array(r))
    batch = np.broadcast_shapes(tuple(shape_of(c))[:-1], tuple(shape_of(r))[:-1])
    c = np.broadcast_to(c, batch + tuple(shape_of(c))[-1:])
    r = np.broadcast_to(r, batch + tuple(shape_of(r))[-1:])
    m, n = shape_of(c)[-1], shape_of(r)[-1]
    vals = np.concatenate([np.flip(c, axis=-1), r[..., 1:]], axis=-1)
    index = (m - 1) - np.arange(m)[:, None] + np.arange(n)[None, :]
    return _gather_last(vals, index)


def circulant(c):
    """``scipy.linalg.circulant``: ``out[i, j] = c[(i - j) % n]``; leading axes are a stack."""
    c = np.atleast_1d(as_array(c))
    n = shape_of(c)[-1]
    index = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return _gather_last(c, index)


def hankel(c, r=None):
    """``scipy.linalg.hankel``: first column ``c``, last row ``r`` (default zeros;
    ``r[0]`` is ignored); ``out[i, j] = concat(c, r[1:])[i + j]``."""
    c = as_array(c)
    r = np.zeros(shape_of(c), dtype_of(c)) if r is None else as_array(r)
    if ndim_of(c) > 1 or ndim_of(r) > 1:
        import warnings

        warnings.warn("Beginning in SciPy 1.19, multidimensional input will be treated as a batch, not `ravel`ed. "
                      "To preserve the existing behavior and silence this warning, `ravel` arguments before "
                      "passing them to `hankel`.", FutureWarning, stacklevel=2)
    c, r = np.ravel(c), np.ravel(r)
    vals = np.concatenate([c, r[1:]])
    m, n = shape_of(c)[0], shape_of(r)[0]
    return _gather_last(vals, np.arange(m)[:, None] + np.arange(n)[None, :])


def companion(a):
    """``scipy.linalg.companion``: the companion matrix of the polynomial with
    coefficients ``a`` (highest degree first; ``a[..., 0]`` must be nonzero)."""
    a = np.atleast_1d(as_array(a))
    n = shape_of(a)[-1]
    if n < 2:
        raise ValueError("The length of `a` along the last axis must be at least 2.")
    checked = ensure(np.equal(a[..., 0], 0), "all_false",
                     "The first coefficient(s) of `a` (i.e. elements of `a[..., 0]`) must not be zero.")
    lead = np.where(np.any(checked), a[..., 0:1], a[..., 0:1])  # keeps the check in a recorded computation
    first_row = -a[..., 1:] / (1.0 * lead)
    batch = tuple(shape_of(first_row))[:-1]
    below = np.broadcast_to(np.eye(n - 2, n - 1, dtype=dtype_of(first_row)), batch + (n - 2, n - 1))
    return np.concatenate([first_row[..., None, :], below], axis=-2)
