"""Twins of ``scipy.linalg``'s factorisations, matrix functions and matrix
equations (re-exported by ``npfunc.scipy.linalg``; see docs/linalg.md for
the derivative conventions at non-unique factorisations)."""
from __future__ import annotations

import numpy as np

from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.data_dependent import as_array, concrete, is_traced
from ..primitives.elementwise.arithmetic import astype, equal, real, stop_gradient, where
from ..primitives.indexing.gather import take, take_along_axis
from ..primitives.linalg import spectral as _spectral
from ..primitives.linalg.banded import banded_solve, hermitian_banded_solve
from ..primitives.linalg.common import as_inexact, check_square, diag_part, mH, real_dtype
from ..primitives.linalg.lu import lu_parts, rows_from_pivots
from ..primitives.linalg.matfuncs import logm as _logm
from ..primitives.linalg.matfuncs import negligible_imag
from ..primitives.linalg.matfuncs import _sqrtm as _sqrtm_primitive
from ..primitives.linalg.matfuncs import sqrtm as _sqrtm
from ..primitives.linalg.products import matmul
from ..primitives.linalg.schur import hessenberg_parts, schur_parts
from ..primitives.linalg.solve import solve as _solve
from ..primitives.linalg.solve import triangular_solve
from ..primitives.linalg.sylvester import discrete_lyapunov, sylvester
from ..primitives.linalg.tridiagonal import tridiagonal_eigh
from ..primitives.shape.basic import reshape
from ..primitives.sorting import argsort

__all__ = ["lu", "lu_factor", "lu_solve", "schur", "hessenberg", "sqrtm", "logm", "funm", "polar",
           "solve_sylvester", "solve_continuous_lyapunov", "solve_discrete_lyapunov", "solve_banded",
           "solveh_banded", "eigh_tridiagonal"]


# ---- LU -------------------------------------------------------------------------------------

def lu(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    """``scipy.linalg.lu``: ``(p, l, u)`` with ``a = p @ l @ u`` (``p`` the
    permutation matrix, or row indices with ``p_indices=True``: ``a = l[p] @ u``),
    or ``(p @ l, u)`` with ``permute_l=True``.  Differentiable in ``a`` with the
    pivot order held fixed.

    >>> import numpy as np, npfunc
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> p, l, u = lu(a)
    >>> np.allclose(p @ l @ u, a)
    True
    >>> npfunc.grad(lambda a: lu(a)[2][1, 1])(a)  # row 1 is the pivot: u[1, 1] = a01 - a00 a11 / a10
    array([[-1.33333333,  1.        ],
           [ 0.44444444, -0.33333333]])
    """
    perm, _, l_, u_ = lu_parts(a)
    if permute_l:
        return take_along_axis(l_, perm[..., :, None], axis=-2), u_
    if p_indices:
        return astype(perm, np.int32), l_, u_
    m = shape_of(a)[-2]
    p = astype(equal(perm[..., :, None], np.arange(m)), real_dtype(dtype_of(l_)))
    return p, l_, u_


def lu_factor(a, overwrite_a=False, check_finite=True):
    """``scipy.linalg.lu_factor``: ``(lu, piv)``, ``l``'s strictly lower part and
    ``u`` in one array, ``piv`` LAPACK's (0-based) row interchanges."""
    _, piv, l_, u_ = lu_parts(a)
    m, n = shape_of(a)[-2:]
    k = min(m, n)
    lower = l_ * np.tri(m, k, -1, dtype=real_dtype(dtype_of(l_)))
    if n > k:
        lower = np.concatenate([lower, np.zeros(tuple(shape_of(lower)[:-1]) + (n - k,), dtype_of(lower))], axis=-1)
    upper = u_
    if m > k:
        upper = np.concatenate([upper, np.zeros(tuple(shape_of(upper)[:-2]) + (m - k, n), dtype_of(upper))], axis=-2)
    return lower + upper, piv


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    """``scipy.linalg.lu_solve``: solve ``a x = b`` (``trans`` 0), ``a^T x = b`` (1)
    or ``a^H x = b`` (2) from ``lu_factor(a)``; differentiable in ``lu`` and ``b``."""
    lu_, piv = lu_and_piv
    check_square(lu_, "lu_solve")
    if isinstance(trans, bool) or trans not in (0, 1, 2):  # SciPy (LAPACK's getrs) takes ints only
        raise ValueError(f"lu_solve: trans must be 0, 1 or 2, got {trans!r}")
    trans = int(trans)
    n = shape_of(lu_)[-1]
    b = as_array(b)
    if shape_of(b)[-2 if ndim_of(b) > 1 else 0] != n:  # (SciPy: b is (n,) or a stack of (n, k))
        raise ValueError(f"lu_solve: shapes of lu {tuple(shape_of(lu_))} and b {tuple(shape_of(b))} are incompatible")
    if ndim_of(b) == 1 and ndim_of(lu_) > 2:  # one vector for a stack of factors: SciPy broadcasts it;
        return lu_solve(lu_and_piv, reshape(b, (n, 1)), trans)[..., 0]  # as a column, not an (m, n) matrix
    rows = rows_from_pivots(piv, n)  # l @ u = a[rows]
    if trans == 0:
        y = triangular_solve(lu_, _rows_of(b, rows), lower=True, unit_diagonal=True)
        return triangular_solve(lu_, y, lower=False)
    y = triangular_solve(lu_, b, lower=False, trans=trans)
    z = triangular_solve(lu_, y, lower=True, trans=trans, unit_diagonal=True)
    return _rows_of(z, argsort(rows))  # x[rows] = z


def _rows_of(x, order):
    """``x[order]`` for a vector, ``x[..., order, :]`` for a stack of (n, k) matrices, with
    ``order`` one row order or (a stack of factors) one per matrix."""
    if ndim_of(x) == 1:
        return take(x, order, axis=0)
    if ndim_of(order) == 1:
        return take(x, order, axis=-2)
    from ..primitives.shape.basic import broadcast_to

    lead = np.broadcast_shapes(tuple(shape_of(x)[:-2]), tuple(shape_of(order)[:-1]))
    x = broadcast_to(x, lead + tuple(shape_of(x)[-2:]))
    return take_along_axis(x, broadcast_to(order[..., None], lead + (shape_of(order)[-1], 1)), axis=-2)


# ---- Schur, Hessenberg, polar ------------------------------------------------------------------

def schur(a, output="real", lwork=None, overwrite_a=False, sort=None, check_finite=True):
    """``scipy.linalg.schur``: ``(T, Z)`` with ``a = Z T Z^H`` (``(T, Z, sdim)``
    with ``sort``).  Derivatives: real forms with real eigenvalues exactly;
    complex forms up to the phases of the Schur vectors (docs/linalg.md)."""
    if output not in ("real", "complex", "r", "c"):
        raise ValueError("schur: argument must be 'real', or 'complex'")
    t, z, sdim = schur_parts(a, output=output, sort=sort)
    if sort is None:
        return t, z
    return t, z, (int(sdim) if not is_traced(sdim) and ndim_of(sdim) == 0 else sdim)


def hessenberg(a, calc_q=False, overwrite_a=False, check_finite=True):
    """``scipy.linalg.hessenberg``: ``H`` (or ``(H, Q)``) with ``a = Q H Q^H``, ``Q e1 = e1``."""
    h, q = hessenberg_parts(a)
    return (h, q) if calc_q else h


def polar(a, side="right"):
    """``scipy.linalg.polar``: ``(u, p)`` with ``a = u p`` (``side='right'``) or
    ``a = p u`` (``'left'``), from the SVD as SciPy computes it."""
    if side not in ("right", "left"):
        raise ValueError("`side` must be either 'right' or 'left'")
    a = as_array(a)
    if ndim_of(a) != 2:
        raise ValueError("`a` must be a 2-D array.")
    w, s, vh = _spectral.svd(a, full_matrices=False)
    u = matmul(w, vh)
    p = matmul(mH(vh) * s, vh) if side == "right" else matmul(w * s, mH(w))
    m, n = shape_of(a)
    if is_traced(a) and (m >= n if side == "right" else m <= n):
        # The SVD's derivative drops the in-block terms at repeated singular values (docs/
        # linalg.md), but u and p are smooth wherever p is invertible, e.g. at a = I or a pure
        # stretch with two equal stretches: take the values from the SVD, as SciPy, and the
        # derivatives from p = sqrtm(a^H a) (Sylvester rule) and u = a p^-1 (p a^-1... left)
        gram = matmul(mH(a), a) if side == "right" else matmul(a, mH(a))
        p_smooth = _sqrtm_primitive.bind(as_inexact(gram))  # positive definite: real, no jit refusal
        u_smooth = mH(_solve(p_smooth, mH(a))) if side == "right" else _solve(p_smooth, a)
        u = stop_gradient(u) + (u_smooth - stop_gradient(u_smooth))
        p = stop_gradient(p) + (p_smooth - stop_gradient(p_smooth))
    return u, p


# ---- matrix functions ---------------------------------------------------------------------------

def sqrtm(A, disp=True, blocksize=64):
    """``scipy.linalg.sqrtm``: the principal square root (``(X, err)`` with ``disp=False``)."""
    a = as_array(A)
    if ndim_of(a) < 2 and int(np.prod(shape_of(a))) == 1:
        return np.exp(np.reshape(a, (1, 1)))  # SciPy's 1-element special case
    x = _sqrtm(a)
    if disp is False:
        return x, _rel_error(matmul(x, x) - a, a)
    return x


def _rel_error(resid, a):
    from ..primitives.linalg.norms import norm

    return norm(resid, "fro", axis=(-2, -1)) ** 2 / norm(a, "fro", axis=(-2, -1))


def logm(A, disp=True):
    """``scipy.linalg.logm``: the principal logarithm (``(F, errest)`` with ``disp=False``)."""
    from ..primitives.linalg.expm import expm
    from ..primitives.linalg.norms import norm

    f = _logm(as_array(A))
    if disp is False:
        a = as_array(A)
        return f, norm(expm(f) - a, 1, axis=(-2, -1)) / norm(a, 1, axis=(-2, -1))
    return f


def _parlett(t, func):
    """``func(T)`` for upper triangular ``T`` by Parlett's recurrence, one superdiagonal
    at a time (SciPy's algorithm, vectorised along each diagonal): the numerator of
    entry ``(i, j)`` is entry ``(i, j)`` of ``T F - F T`` with ``F`` known below that
    diagonal; SciPy leaves it undivided where ``T[j, j] == T[i, i]``."""
    n = shape_of(t)[-1]
    d = diag_part(t)
    f = astype(func(d), dtype_of(t))[..., :, None] * np.eye(n)
    minden = np.abs(stop_gradient(t)[..., 0, 0])
    for p in range(1, n):
        num = diag_part_k(matmul(t, f) - matmul(f, t), p)
        den = d[..., p:] - d[..., :n - p]
        nonzero = den != 0
        val = where(nonzero, num / where(nonzero, den, 1), num)
        pad = np.zeros(tuple(shape_of(val)[:-1]) + (p,), dtype_of(val))
        f = f + np.concatenate([val, pad], axis=-1)[..., :, None] * np.eye(n, k=p)
        minden = np.minimum(minden, np.min(np.abs(stop_gradient(den)), axis=-1))
    return f, minden


def diag_part_k(x, k: int):
    """The ``k``-th superdiagonal of the last two axes."""
    from ..primitives.linalg.products import einsum

    return einsum("...ii->...i", x[..., :-k, k:])


def funm(A, func, disp=True):
    """``scipy.linalg.funm``: ``func`` applied to a matrix by the Schur-Parlett
    method; ``func`` must accept complex arrays (``np.exp``, ``np.sin``,
    ``lambda z: z ** 3`` ...).  Defined, and differentiable, where the
    eigenvalues are distinct (SciPy's Parlett recurrence divides by their
    differences); differentiable also in anything ``func`` closes over."""
    a = as_inexact(as_array(A))
    check_square(a, "funm")
    t, z, _ = schur_parts(a, output="complex")
    f, minden = _parlett(t, func)
    f = matmul(matmul(z, f), mH(z))
    if dtype_of(a).kind != "c":
        f = _maybe_real(f)
    if disp:
        return f
    tol = np.finfo(real_dtype(dtype_of(f))).eps
    minden = np.where(minden == 0, tol, minden)
    from ..primitives.linalg.norms import norm

    offdiag = stop_gradient(t) * np.triu(np.ones(shape_of(t)[-2:]), 1)
    err = np.minimum(1, np.maximum(tol, (tol / minden) * norm(offdiag, 1, axis=(-2, -1))))
    return f, err


def _maybe_real(f):
    """SciPy's ``_maybe_real``: the real part when the imaginary part is negligible
    (decided on the values; under vmap for the whole batch)."""
    tol = 1e3 * np.finfo(np.float32).eps if dtype_of(f) == np.complex64 else 1e6 * np.finfo(np.float64).eps
    from ..core.context import describe_stack
    from ..core.errors import ConcretizationError

    try:
        small = bool(negligible_imag(f, tol))
    except ConcretizationError:
        raise ConcretizationError(
            f"{describe_stack()}: funm(A, func) of a real A returns a real or a complex array depending on the "
            "values (SciPy's test of the imaginary part), which jit cannot record once for all calls. Pass "
            "A.astype(complex) to always get the complex result, or call funm outside jit.") from None
    return real(f) if small else f


# ---- matrix equations ---------------------------------------------------------------------------

def solve_sylvester(a, b, q):
    """``scipy.linalg.solve_sylvester``: ``X`` with ``a X + X b = q``; differentiable in all three."""
    return sylvester(a, b, q)


def solve_continuous_lyapunov(a, q):
    """``scipy.linalg.solve_continuous_lyapunov``: ``X`` with ``a X + X a^H = q``."""
    a = as_inexact(as_array(a))
    return sylvester(a, mH(a), q)


def solve_discrete_lyapunov(a, q, method=None):
    """``scipy.linalg.solve_discrete_lyapunov``: ``X`` with ``a X a^H - X + q = 0``.
    In double precision, as SciPy returns it (its identity matrices are float64; a
    float32 ``a`` still enters its products in float32, so only ``q`` is promoted)."""
    a, q = as_array(a), as_array(q)
    dtype = np.result_type(dtype_of(a), dtype_of(q), np.float64)
    return discrete_lyapunov(a, q if dtype_of(q) == dtype else astype(q, dtype), method=method)


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    """``scipy.linalg.solve_banded``: ``A x = b`` with ``A`` in LAPACK band storage
    ``ab[u + i - j, j] = A[i, j]``; differentiable in ``ab`` and ``b``."""
    lower, upper = (int(v) for v in l_and_u)
    ab, b = as_inexact(as_array(ab)), as_inexact(as_array(b))
    if ndim_of(ab) != 2 or shape_of(ab)[0] != lower + upper + 1:
        raise ValueError(f"invalid values for the number of lower and upper diagonals: l+u+1 ({lower + upper + 1}) "
                         f"does not equal ab.shape[0] ({shape_of(ab)[0] if ndim_of(ab) else 0})")
    if shape_of(b)[0] != shape_of(ab)[-1]:
        raise ValueError("shapes of ab and b are not compatible.")
    if ndim_of(b) == 1:
        return banded_solve(ab, b[:, None], lower, upper)[:, 0]
    return banded_solve(ab, b, lower, upper)


def solveh_banded(ab, b, overwrite_ab=False, overwrite_b=False, lower=False, check_finite=True):
    """``scipy.linalg.solveh_banded``: ``A x = b`` for Hermitian positive definite
    ``A`` stored by one triangle of its band; differentiable in ``ab`` and ``b``."""
    ab, b = as_inexact(as_array(ab)), as_inexact(as_array(b))
    if ndim_of(ab) != 2 or shape_of(b)[0] != shape_of(ab)[-1]:
        raise ValueError("shapes of ab and b are not compatible.")
    if ndim_of(b) == 1:
        return hermitian_banded_solve(ab, b[:, None], lower)[:, 0]
    return hermitian_banded_solve(ab, b, lower)


def eigh_tridiagonal(d, e, eigvals_only=False, select="a", select_range=None, check_finite=True, tol=0.0,
                     lapack_driver="auto"):
    """``scipy.linalg.eigh_tridiagonal``: eigenvalues (and vectors) of the symmetric
    tridiagonal matrix with diagonal ``d`` and off-diagonal ``e``.  ``select='v'``
    (a value range) on traced values picks the eigenvalues in range from their
    current values (not under vmap/jit: use ``select='i'``)."""
    d, e = as_inexact(as_array(d)), as_inexact(as_array(e))
    if select not in ("a", "i", "v", 0, 1, 2, "all", "value", "index"):
        raise ValueError(f"eigh_tridiagonal: invalid select {select!r}")
    select = {0: "a", 1: "v", 2: "i", "all": "a", "value": "v", "index": "i"}.get(select, select)
    if dtype_of(d).kind == "c" or dtype_of(e).kind == "c":
        raise TypeError("Only real arrays currently supported")
    if select == "v" and is_traced(d, e):
        w_all = np.linalg.eigvalsh(_dense_tridiagonal(concrete(d, "eigh_tridiagonal(select='v')", _V_FIX),
                                                      concrete(e, "eigh_tridiagonal(select='v')", _V_FIX)))
        lo, hi = select_range
        idx = np.nonzero((w_all > lo) & (w_all <= hi))[0]
        if not idx.size:
            return (np.zeros(0, dtype_of(d)) if eigvals_only
                    else (np.zeros(0, dtype_of(d)), np.zeros((shape_of(d)[-1], 0), dtype_of(d))))
        select, select_range = "i", (int(idx[0]), int(idx[-1]))
    if select == "i":
        select_range = (int(select_range[0]), int(select_range[1]))
    w, v = tridiagonal_eigh(d, e, select=select, select_range=select_range, tol=tol, lapack_driver=lapack_driver)
    return w if eigvals_only else (w, v)


_V_FIX = "Use select='i' with an index range, which has a fixed number of eigenvalues."


def _dense_tridiagonal(d, e):
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


