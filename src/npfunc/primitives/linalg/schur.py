"""Schur and Hessenberg decompositions (primitives behind
``npfunc.scipy.linalg.schur`` and ``hessenberg``).

Both are ``A = Z T Z^H`` with ``Z`` unitary; they differ in the shape of
``T`` (upper triangular, or Hessenberg with ``Z e1 = e1``).  Differentiating
gives, with ``C = Z^H dA Z`` and the skew-Hermitian ``K = Z^H dZ``::

    dT = C - (K T - T K),    dZ = Z K,

and ``K`` is fixed by asking ``dT`` to keep ``T``'s shape: its entries below
the allowed band are zero.  For Schur that is a triangular Sylvester
recurrence, one column of ``K`` at a time (a triangular solve with
``T[j, j] I - T[j+1:, j+1:]``); for Hessenberg an explicit recurrence
dividing by the subdiagonal of ``H``.  Both run over the matrix size (never
over a stack or batch) and are written with npfunc operations.

Uniqueness: a real Schur form with real eigenvalues and a real Hessenberg
form are unique up to column signs, which do not move under a small
perturbation, so the derivative is that of SciPy's output.  Complex
factors are unique up to a phase per column: ``hessenberg`` follows
LAPACK's (a real subdiagonal), ``schur`` uses ``diag(Z^H dZ) = 0``, which
need not be LAPACK's, so only functions invariant under those phases (the
eigenvalues ``diag(T)``, ``Z T Z^H``, ``|T|``...) have the derivative of
SciPy's output.  Real Schur forms with 2x2 blocks (complex eigenvalues)
are not differentiated (``output='complex'`` is).  Repeated eigenvalues
make the Schur vectors non-unique: the triangular solve then fails with
``LinAlgError``.  VJPs transpose the JVPs.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from ..data_dependent import ensure
from ..elementwise.arithmetic import imag, not_equal, real, where
from ..reductions.scans import cumsum
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays, stack
from .common import (as_inexact, check_square, complex_matrix, diag_embed, general_matrix, mH, stacked_batch,
                     tri_mask)
from .linear_rules import transposed_vjp
from .products import einsum, matmul
from .solve import triangular_solve


def _zeros(lead, n, dtype):
    return np.zeros(tuple(lead) + (n,), dtype)


def _schur_impl(a, *, output, sort):
    from scipy.linalg import schur as _scipy_schur

    if sort is None:
        t, z = _scipy_schur(a, output=output, check_finite=False)
        sdim = np.zeros(a.shape[:-2], np.intp)
    else:
        t, z, sdim = _scipy_schur(a, output=output, sort=sort, check_finite=False)
        sdim = np.asarray(sdim, np.intp)
    dtype = np.result_type(t.dtype, a.dtype)
    return np.asarray(t, dtype), np.asarray(z, dtype), sdim


def _strict_lower_k(c, t):
    """Strictly lower ``K`` with ``(K T - T K)`` equal to ``C`` below the diagonal."""
    n = shape_of(t)[-1]
    lead, dtype = shape_of(t)[:-2], dtype_of(c)
    cols = []
    for j in range(n - 1):
        rhs = c[..., j + 1:, j]
        if j:
            known = stack(cols, axis=-1)[..., j + 1:, :]  # columns 0..j-1, rows below j
            rhs = rhs - matmul(known, t[..., :j, j:j + 1])[..., 0]
        shifted = t[..., j, j][..., None, None] * np.eye(n - j - 1, dtype=dtype) - t[..., j + 1:, j + 1:]
        col = triangular_solve(shifted, rhs[..., None], lower=False)[..., 0]
        cols.append(concatenate_arrays([_zeros(lead, j + 1, dtype_of(col)), col], len(lead)))
    cols.append(_zeros(lead, n, dtype))
    return stack(cols, axis=-1)


def _schur_jvp(primals, tangents, out, *, output, sort):
    (ta,) = tangents
    t, z, _ = out
    if ta is zero:
        return zero, zero, zero
    n = shape_of(t)[-1]
    if dtype_of(t).kind != "c" and n > 1:  # 2x2 blocks: the formula below does not apply
        sub = einsum("...ii->...i", t[..., 1:, :-1])
        checked = ensure(not_equal(sub, 0), "all_false", _BLOCKS_MESSAGE, UnsupportedOperationError)
        t = where(checked[..., :1, None], t, t)  # the check becomes part of the computation
    c = matmul(mH(z), matmul(ta, z))
    kl = _strict_lower_k(c, t)
    k = kl - mH(kl)
    dt = (c - (matmul(k, t) - matmul(t, k))) * tri_mask(n, False, False, dtype_of(c))
    return dt, matmul(z, k), zero


_BLOCKS_MESSAGE = ("schur: the real Schur form has 2x2 blocks (complex eigenvalues), whose derivative is not "
                   "supported; use schur(a, output='complex') and a function invariant under the phases of the "
                   "Schur vectors (diag(T), Z @ T @ Z^H ...), or funm")


def _schur_samples(rng):
    out = []
    for dt in FLOATS:
        q, _ = np.linalg.qr(array(rng, (3, 3), np.float64, (-1.0, 1.0)))
        tri = np.triu(array(rng, (3, 3), np.float64, (-1.0, 1.0)), 1) + np.diag([-1.5, 0.5, 2.0])
        out.append(Sample((q @ tri @ q.T).astype(dt), output="real", sort=None, label="real eigenvalues"))
        stackq = np.linalg.qr(array(rng, (2, 3, 3), np.float64, (-1.0, 1.0)))[0]
        out.append(Sample((stackq @ tri @ np.swapaxes(stackq, -1, -2)).astype(dt), output="real", sort=None,
                          label="stacked"))
    out.append(Sample((q @ tri @ q.T), output="real", sort="lhp", label="sorted"))
    return out


_schur = Primitive("schur", _schur_impl, jvp=_schur_jvp, vjp=transposed_vjp(_schur_jvp, "schur", True),
                   multiple_results=True, samples=_schur_samples,
                   notes="(T, Z, sdim); dT = C - [K, T], dZ = Z K with K = Z^H dZ from a triangular Sylvester "
                         "recurrence; real forms with 2x2 blocks raise; complex Schur vectors in the gauge "
                         "diag(Z^H dZ) = 0 (phase-invariant functions match SciPy)")
_schur.batch = stacked_batch(_schur)


def schur_parts(a, output: str = "real", sort=None):
    """``(T, Z, sdim)`` of a (stack of) square matrices (see module doc)."""
    check_square(a, "schur")
    a = as_inexact(a)
    if output in ("complex", "c") and dtype_of(a).kind != "c":
        from ..elementwise.arithmetic import astype

        a = astype(a, np.result_type(dtype_of(a), np.complex64))
    return _schur.bind(a, output="complex" if output in ("complex", "c") else "real", sort=sort)


# ---- hessenberg ---------------------------------------------------------------------------


def _hessenberg_impl(a):
    from scipy.linalg import hessenberg as _scipy_hessenberg

    h, q = _scipy_hessenberg(a, calc_q=True, check_finite=False)
    return np.asarray(h, a.dtype), np.asarray(q, a.dtype)


def _hessenberg_jvp(primals, tangents, out):
    (ta,) = tangents
    h, q = out
    if ta is zero:
        return zero, zero
    n = shape_of(h)[-1]
    lead, dtype = shape_of(h)[:-2], dtype_of(h)
    c = matmul(mH(q), matmul(ta, q))
    cols = [_zeros(lead, n, dtype), _zeros(lead, n, dtype)] if n > 1 else [_zeros(lead, n, dtype)]
    for j in range(n - 2):  # column j of dH below the subdiagonal vanishes: it fixes column j + 1 of K
        known = stack(cols, axis=-1)  # columns 0..j+1 (j + 1 still zero)
        kh = matmul(known[..., j + 2:, :j + 1], h[..., :j + 1, j:j + 1])[..., 0]
        hk = matmul(h[..., j + 2:, :], known[..., :, j:j + 1])[..., 0]
        col = (c[..., j + 2:, j] - kh + hk) / h[..., j + 1, j][..., None]
        cols[j + 1] = concatenate_arrays([_zeros(lead, j + 2, dtype_of(col)), col], len(lead))
        cols.append(_zeros(lead, n, dtype))
    kl = stack(cols[:n], axis=-1)
    k = kl - mH(kl)
    band = tri_mask(n, False, False, dtype) + np.eye(n, k=-1, dtype=tri_mask(1, True, False, dtype).dtype)
    dh = c - (matmul(k, h) - matmul(h, k))
    if dtype.kind == "c" and n > 1:  # LAPACK's subdiagonal is real: choose the column phases to keep it so
        sub = einsum("...ii->...i", dh[..., 1:, :-1])
        hsub = einsum("...ii->...i", h[..., 1:, :-1])
        theta = cumsum(imag(sub) / real(hsub), axis=-1)
        phases = 1j * concatenate_arrays([np.zeros(tuple(lead) + (1,)), theta], len(lead))
        k = k + diag_embed(phases)
        dh = c - (matmul(k, h) - matmul(h, k))
    return dh * band, matmul(q, k)


def _hessenberg_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (4, 4), dt, (-1.0, 1.0))),
                Sample(array(rng, (2, 3, 3), dt, (-1.0, 1.0)), label="stacked"),
                Sample(array(rng, (2, 2), dt, (-1.0, 1.0)), label="already Hessenberg")]
    out.append(Sample(complex_matrix(rng, (4, 4), general_matrix), label="complex"))
    return out


_hessenberg = Primitive(
    "hessenberg", _hessenberg_impl, jvp=_hessenberg_jvp,
    vjp=transposed_vjp(_hessenberg_jvp, "hessenberg", True), multiple_results=True,
    samples=_hessenberg_samples,
    notes="(H, Q) with Q e1 = e1; K = Q^H dQ by an explicit recurrence dividing by H's subdiagonal "
          "(unreduced H needed); complex: LAPACK's real subdiagonal kept")
_hessenberg.batch = stacked_batch(_hessenberg)


def hessenberg_parts(a):
    """``(H, Q)`` of a (stack of) square matrices."""
    check_square(a, "hessenberg")
    return _hessenberg.bind(as_inexact(a))


__all__ = ["schur_parts", "hessenberg_parts"]
