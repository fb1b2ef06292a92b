"""Shared pieces of the linear-algebra definitions: matrix helpers written
with npfunc operations (so rules built from them stay differentiable and
batchable), batching rules for stacked matrices, and sample builders.

Every matrix function acts on the last two axes; all leading axes are a
stack of independent problems (NumPy's convention), so batching a
single-operand matrix primitive only moves the batch axis to the front.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import NpfuncError, UnsupportedOperationError
from ...core.primitive import Primitive
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import align_front, move_to_front
from ..elementwise.arithmetic import real, where
from ..families import conj
from .products import einsum
from ..shape.basic import swapaxes

# ---- matrix helpers (rule-writing vocabulary) -------------------------------------------


def mT(x):
    """Transpose of the last two axes."""
    return swapaxes(x, -1, -2)


def mH(x):
    """Conjugate transpose of the last two axes (a plain transpose for real values)."""
    return conj(swapaxes(x, -1, -2))


def real_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return np.finfo(dtype).dtype if dtype.kind in "fc" else np.dtype(np.float64)


def eye(n: int, dtype) -> np.ndarray:
    """A constant identity in ``dtype``."""
    return np.eye(n, dtype=dtype)


def diag_part(x):
    """The diagonal of the last two axes: ``(..., n, n) -> (..., n)``."""
    return einsum("...ii->...i", x)


def diag_embed(v):
    """``(..., n) -> (..., n, n)`` with ``v`` on the diagonal."""
    n = shape_of(v)[-1]
    return v[..., :, None] * eye(n, real_dtype(dtype_of(v)))


def matrix_trace(x):
    """The trace of the last two axes."""
    return einsum("...ii->...", x)


def tri_mask(n: int, lower: bool, strict: bool, dtype) -> np.ndarray:
    """A constant 0/1 mask of the (strictly) lower or upper triangle."""
    k = -1 if strict else 0
    m = np.tri(n, k=k, dtype=bool) if lower else ~np.tri(n, k=-1 - k, dtype=bool)
    return m.astype(real_dtype(dtype))


def masked(x, mask):
    """``x`` with the entries outside ``mask`` set to zero."""
    return x * mask


def herm_from_triangle(x, lower: bool):
    """The Hermitian matrix LAPACK sees when it reads only one triangle of
    ``x``: the triangle, its conjugate mirrored, and the real part of the
    diagonal.  It is linear, so it also maps tangents."""
    n = shape_of(x)[-1]
    strict = masked(x, tri_mask(n, lower, True, dtype_of(x)))
    diag = real(x) * eye(n, real_dtype(dtype_of(x))) if dtype_of(x).kind == "c" else x * eye(n, dtype_of(x))
    return strict + mH(strict) + diag


def herm_from_triangle_adjoint(g, lower: bool):
    """The adjoint of ``herm_from_triangle``: the cotangent of the matrix
    that was read, given the cotangent of the Hermitian matrix LAPACK saw."""
    n = shape_of(g)[-1]
    mask = tri_mask(n, lower, True, dtype_of(g))
    diag_dtype = real_dtype(dtype_of(g))
    diag = (real(g) if dtype_of(g).kind == "c" else g) * eye(n, diag_dtype)
    return masked(g + mH(g), mask) + diag


def safe_reciprocal(d):
    """``1 / d`` with 0 where ``d == 0`` (no division by zero, no warning)."""
    nonzero = d != 0
    return where(nonzero, 1 / where(nonzero, d, 1), 0)


def spectral_gaps(w):
    """``F[..., i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it and
    wherever two values coincide to working precision (the degenerate
    convention): ``|w[j] - w[i]| <= n * eps * max|w|``, the accuracy LAPACK
    computes them to, so values that are equal in exact arithmetic are
    treated alike however rounding split them."""
    from ..reductions.basic import max as reduce_max
    from ..elementwise.arithmetic import absolute, stop_gradient

    d = w[..., None, :] - w[..., :, None]
    n = shape_of(w)[-1]
    scale = reduce_max(absolute(stop_gradient(w)), axis=-1, keepdims=True)[..., None]
    apart = absolute(stop_gradient(d)) > (16 * n * np.finfo(real_dtype(dtype_of(w))).eps) * scale
    return where(apart, 1 / where(apart, d, 1), 0)


def add_tangents(*terms):
    """Sum of tangents or cotangents, skipping symbolic zeros."""
    total = zero
    for t in terms:
        if t is not zero:
            total = t if total is zero else total + t
    return total


# ---- shape checks -------------------------------------------------------------------


def check_square(a, fn_name: str) -> int:
    """``n`` for a stack of ``n x n`` matrices, or NumPy's LinAlgError."""
    shape = shape_of(a)
    if len(shape) < 2:
        raise np.linalg.LinAlgError(
            f"{fn_name}: {len(shape)}-dimensional array given; the array must be at least "
            "two-dimensional (a matrix or a stack of matrices)")
    if shape[-1] != shape[-2]:
        raise np.linalg.LinAlgError(
            f"{fn_name}: the last 2 dimensions of the array must be square, got shape {tuple(shape)}")
    return shape[-1]


def check_matrix(a, fn_name: str) -> None:
    if ndim_of(a) < 2:
        raise np.linalg.LinAlgError(
            f"{fn_name}: {ndim_of(a)}-dimensional array given; the array must be at least "
            "two-dimensional (a matrix or a stack of matrices)")


def as_inexact(a):
    """Integer and bool inputs as float64, the way np.linalg promotes them (lists and
    Python scalars, np.linalg.solve(A, [1.0, 2.0]), as the arrays NumPy makes of them)."""
    if not isinstance(a, (Tracer, np.ndarray, np.generic)):
        a = np.asarray(a)
    if dtype_of(a).kind in "fc":
        return a
    from ..elementwise.arithmetic import astype

    return astype(a, np.float64)


# ---- batching rules for stacked matrices -------------------------------------------------


def _bind_stack(prim: Primitive, vals, batched, **params):
    """``prim.bind(*vals)`` on operands whose batch axis is at the front
    (``batched[i]`` says which are batched).  NumPy's LinAlgError for a stack is
    one error for all of it, while the loop vmap stands for raises only for
    the failing elements: a ``try/except LinAlgError`` around the call would take
    the except branch for the whole batch and silently change the others'
    values.  So when only some elements fail, refuse, naming them."""
    try:
        return prim.bind(*vals, **params)
    except np.linalg.LinAlgError as e:
        if isinstance(e, NpfuncError):
            raise
        size = next(shape_of(v)[0] for v, b in zip(vals, batched) if b)
        failed = []
        for i in range(size):
            try:
                prim.bind(*(v[i] if b else v for v, b in zip(vals, batched)), **params)
            except np.linalg.LinAlgError:
                failed.append(i)
        if not failed or len(failed) == size:
            raise
        from ...core.context import describe_stack

        raise UnsupportedOperationError(
            f"{describe_stack()}: {prim.name} raised LinAlgError ({e}) for batch elements {failed} of "
            f"{size} only. NumPy raises one error for a whole stack, so under vmap a try/except LinAlgError "
            "around it would take the except branch for every element, where a loop over the batch takes "
            "it for those elements alone. Keep every element's matrix valid (e.g. add the jitter "
            "unconditionally, K + eps * np.eye(n)), or loop over the batch in Python.") from None


def stacked_batch(prim: Primitive):
    """Batch rule of a single-operand matrix primitive: leading axes are a
    stack already, so the batch axis just goes to the front."""

    def batch(vals, dims, **params):
        (x,), (d,) = vals, dims
        out = _bind_stack(prim, (move_to_front(x, d),), (True,), **params)
        if prim.multiple_results:
            return out, (0,) * len(out)
        return out, 0

    return batch


def broadcast_stacked_batch(prim: Primitive):
    """Batch rule of a matrix primitive whose operands' leading axes
    broadcast (``solve(a, b)``): batch axes first, ranks padded."""

    def batch(vals, dims, **params):
        vals, _ = align_front(list(vals), list(dims))
        return _bind_stack(prim, vals, tuple(d is not None for d in dims), **params), 0

    return batch


def solve_batch(prim: Primitive):
    """Batch rule of a solve ``prim(a, b)`` with ``b`` a stack of ``n x k``
    matrices.  When only ``b`` is batched (vmap over right-hand sides, and
    every Jacobian of a solve) the batch axis is folded into the columns of
    ``b``: one factorisation of ``a`` serves the whole batch."""
    general = broadcast_stacked_batch(prim)

    def batch(vals, dims, **params):
        (a, b), (da, db) = vals, dims
        if da is not None:
            return general(vals, dims, **params)
        from ..shape.basic import moveaxis, reshape

        b = move_to_front(b, db)
        size, *lead, n, k = shape_of(b)
        x = prim.bind(a, reshape(moveaxis(b, 0, -1), tuple(lead) + (n, k * size)), **params)
        lead_x = tuple(shape_of(x)[:-1])
        return reshape(x, lead_x + (k, size)), len(lead_x) + 1

    return batch


# sample makers live in .samples (imported here by the modules that use them)
from .samples import complex_matrix, general_matrix, spd_matrix, symmetric_matrix  # noqa: E402,F401
