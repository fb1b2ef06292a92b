"""LU factorisation with partial pivoting (the primitive behind
``npfunc.scipy.linalg.lu``, ``lu_factor`` and ``lu_solve``).

``lu`` returns ``(perm, piv, l, u)`` for a (stack of) ``m x n`` matrices:
``a = (l @ u)[perm]`` (SciPy's ``p_indices`` form), ``piv`` are LAPACK's row
interchanges (``lu_factor``'s), ``l`` is ``m x k`` unit lower trapezoidal and
``u`` is ``k x n`` upper trapezoidal, ``k = min(m, n)``.

Pivoting is piecewise constant in ``a``: the derivative is that of the
factorisation with the pivot order held fixed, which is the derivative of
SciPy's output wherever the pivot choice does not change (everywhere but
on the measure-zero set where two candidate pivots tie in magnitude).  With
``B = P^T dA`` and the leading ``k x k`` blocks ``L1``, ``U1``::

    X   = L1^{-1} B11 U1^{-1}
    dL1 = L1 tril(X, -1),  dU1 = triu(X) U1
    dL2 = (B21 - L2 dU1) U1^{-1}      (tall: rows below k)
    dU2 = L1^{-1} (B12 - dL1 U2)      (wide: columns right of k)

The VJP is the transpose of this map (``linear_rules.transposed_vjp``).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from ..indexing.gather import take_along_axis
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays
from ..sorting import argsort
from .common import as_inexact, check_matrix, complex_matrix, general_matrix, stacked_batch, tri_mask
from .linear_rules import transposed_vjp
from .products import matmul
from .solve import solve_right_triangular, triangular_solve


def pivots_from_perm(perm: np.ndarray, k: int | None = None) -> np.ndarray:
    """LAPACK's row interchanges (``getrf``'s ipiv, 0-based) producing the
    row order ``q = argsort(perm)``: a loop over the ``k`` pivots,
    vectorised over any stack."""
    perm = np.asarray(perm)
    *lead, m = perm.shape
    q = np.argsort(perm, axis=-1).reshape(-1, m)
    cur = np.broadcast_to(np.arange(m), q.shape).copy()  # original row now at each position
    pos = cur.copy()  # position of each original row
    rows = np.arange(q.shape[0])
    piv = np.empty_like(q)
    for i in range(m):
        j = pos[rows, q[:, i]]
        piv[:, i] = j
        a, b = cur[rows, i].copy(), cur[rows, j].copy()
        cur[rows, i], cur[rows, j] = b, a
        pos[rows, b], pos[rows, a] = i, j
    return piv.reshape(perm.shape)[..., :k].astype(np.int32)


def perm_from_pivots(piv: np.ndarray, m: int) -> np.ndarray:
    """The row order ``q`` (``(l @ u) = a[q]``) of LAPACK's interchanges ``piv``."""
    piv = np.asarray(piv)
    *lead, k = piv.shape
    flat = piv.reshape(-1, k).astype(np.intp)
    q = np.broadcast_to(np.arange(m), (flat.shape[0], m)).copy()
    rows = np.arange(flat.shape[0])
    for i in range(k):
        j = flat[:, i]
        a, b = q[rows, i].copy(), q[rows, j].copy()
        q[rows, i], q[rows, j] = b, a
    return q.reshape(tuple(lead) + (m,))


def _lu_impl(a):
    from scipy.linalg import lu as _scipy_lu

    *lead, m, n = a.shape
    k = min(m, n)
    if a.size == 0:
        perm = np.broadcast_to(np.arange(m), tuple(lead) + (m,)).astype(np.intp)
        return (perm, np.broadcast_to(np.arange(k, dtype=np.int32), tuple(lead) + (k,)).copy(),
                np.zeros(tuple(lead) + (m, k), a.dtype) + np.eye(m, k, dtype=a.dtype),
                np.zeros(tuple(lead) + (k, n), a.dtype))
    perm, l, u = _scipy_lu(a, p_indices=True, check_finite=False)
    perm = np.asarray(perm, dtype=np.intp)
    # a = (l u)[perm]  <=>  (l u) = a[q] with q = argsort(perm); LAPACK's ipiv produces q
    piv = pivots_from_perm(perm, k)
    return perm, piv, l.astype(a.dtype, copy=False), u.astype(a.dtype, copy=False)


def _lu_jvp(primals, tangents, out):
    (ta,) = tangents
    perm, _, l, u = out
    if ta is zero:
        return zero, zero, zero, zero
    m, n = shape_of(l)[-2], shape_of(u)[-1]
    k = min(m, n)
    q = argsort(perm, axis=-1)
    b = take_along_axis(ta, q[..., :, None], axis=-2)  # P^T dA: rows in factor order
    l1, u1 = l[..., :k, :], u[..., :, :k]
    x = solve_right_triangular(triangular_solve(l1, b[..., :k, :k], lower=True, unit_diagonal=True),
                               u1, lower=False)
    dt = dtype_of(x)
    dl1 = matmul(l1, x * tri_mask(k, True, True, dt))
    du1 = matmul(x * tri_mask(k, False, False, dt), u1)
    dl, du = dl1, du1
    if m > k:  # tall: the rows of L below the square block
        dl2 = solve_right_triangular(b[..., k:, :k] - matmul(l[..., k:, :], du1), u1, lower=False)
        dl = concatenate_arrays([dl1, dl2], len(shape_of(dl1)) - 2)
    if n > k:  # wide: the columns of U right of the square block
        du2 = triangular_solve(l1, b[..., :k, k:] - matmul(dl1, u[..., :, k:]), lower=True,
                               unit_diagonal=True)
        du = concatenate_arrays([du1, du2], len(shape_of(du1)) - 1)
    return zero, zero, dl, du


def _lu_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)),
                Sample(array(rng, (4, 3), dt, (-1.0, 1.0)), label="tall"),
                Sample(array(rng, (2, 4), dt, (-1.0, 1.0)), label="wide"),
                Sample(general_matrix(rng, (2, 3, 3), dt), label="stacked")]
    out.append(Sample(complex_matrix(rng, (3, 3), general_matrix), label="complex"))
    return out


_lu = Primitive("lu", _lu_impl, jvp=_lu_jvp, vjp=transposed_vjp(_lu_jvp, "lu", True),
                multiple_results=True, samples=_lu_samples,
                notes="(perm, piv, l, u) with a = (l @ u)[perm]; the derivative holds the pivot "
                      "order fixed (piecewise constant in a); VJP by transposing the JVP")
_lu.batch = stacked_batch(_lu)


def lu_parts(a):
    """``(perm, piv, l, u)`` of a (stack of) matrices (see module doc)."""
    check_matrix(a, "lu")
    return _lu.bind(as_inexact(a))


# ---- LAPACK's pivots as a row order, on traced pivots ---------------------------------------

def _perm_impl(piv, *, m):
    return perm_from_pivots(piv, m)


def _perm_batch(vals, dims, *, m):
    from ...interpreters.batching import move_to_front

    return _perm.bind(move_to_front(vals[0], dims[0]), m=m), 0


_perm = Primitive("lu_pivots_to_permutation", _perm_impl, differentiable=False, batch=_perm_batch,
                  samples=lambda rng: [Sample(np.array([2, 2, 2], np.int32), m=3),
                                       Sample(np.array([[1, 3, 3], [0, 1, 2]], np.int32), m=4)],
                  notes="the row order q (l @ u = a[q]) of LAPACK's interchanges; no derivative")


def rows_from_pivots(piv, m: int):
    """The row order ``q`` with ``l @ u = a[q]``, from ``lu_factor``'s pivots."""
    return _perm.bind(piv, m=int(m))


__all__ = ["lu_parts", "rows_from_pivots", "pivots_from_perm", "perm_from_pivots"]
