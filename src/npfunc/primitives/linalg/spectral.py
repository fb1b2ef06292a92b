"""Decompositions with several outputs: eigh, svd and qr (primitives with
``multiple_results=True``), and eigvalsh / svdvals (composites that use
only the values, so the vector cotangent stays a symbolic zero).

Degenerate points.  The derivatives of eigenvectors (singular vectors)
divide by gaps between eigenvalues (squared singular values).  Where two
coincide (to working precision) that factor is taken as 0, so nothing is
NaN or inf.  The result is exact whenever the vectors' cotangent is a
symbolic zero -- ``eigvalsh``, ``svdvals``, the 2/-2/'nuc' norms, or an
``eigh``/``svd`` whose vectors are unused -- and for functions of the
eigenspaces themselves (e.g. the projector onto a repeated eigenvalue's
eigenspace).  Other uses of the vectors at an exactly repeated value (e.g.
``V @ diag(f(w)) @ V.T`` with ``f`` varying, or second derivatives of
eigenvalue functions there) lose the terms inside the repeated block,
which would be 0/0; compute such matrix functions directly (``expm``...)
when they matter.  Near-degenerate values give large but correct
derivatives.  Division by a zero singular value (the orthogonal-complement
terms of a rank-deficient matrix) is taken as 0 too.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from .common import (add_tangents, as_inexact, check_matrix, check_square, complex_matrix,
                                    diag_embed, diag_part, eye, general_matrix, herm_from_triangle,
                                    herm_from_triangle_adjoint, mH, real_dtype, safe_reciprocal,
                                    spectral_gaps, stacked_batch, symmetric_matrix, tri_mask)
from .solve import solve_right_triangular
from ..elementwise.arithmetic import imag, real, zeros_like
from ..families import composite, fit_cotangent, is_traced
from . import samples
from .products import matmul
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays

try:  # NumPy >= 2 returns named tuples
    from numpy.linalg._linalg import EighResult, QRResult, SVDResult
except ImportError:  # pragma: no cover
    from collections import namedtuple

    EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
    QRResult = namedtuple("QRResult", ["Q", "R"])
    SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


def _re(x):
    return real(x) if dtype_of(x).kind == "c" else x


# ---- eigh -------------------------------------------------------------------------------


def _eigh_jvp(primals, tangents, out, *, lower):
    (t,) = tangents
    w, v = out
    p = matmul(mH(v), matmul(herm_from_triangle(t, lower), v))
    return _re(diag_part(p)), matmul(v, p * spectral_gaps(w))


def _eigh_vjp(g, primals, out, needs, *, lower):
    (a,) = primals
    g_w, g_v = g
    w, v = out
    inner = add_tangents(zero if g_w is zero else diag_embed(g_w),
                         zero if g_v is zero else spectral_gaps(w) * matmul(mH(v), g_v))
    full = matmul(v, matmul(inner, mH(v)))
    return (fit_cotangent(herm_from_triangle_adjoint(full, lower), a),)


def _eigh_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(symmetric_matrix(rng, (3, 3), dt), lower=True),
                Sample(symmetric_matrix(rng, (2, 3, 3), dt), lower=False, label="stacked")]
    junk = symmetric_matrix(rng, (3, 3), np.float64) + np.triu(array(rng, (3, 3)), 1)
    out += [Sample(junk, lower=True, label="upper triangle not read"),
            Sample(junk.T.copy(), lower=False, label="lower triangle not read")]
    return out


_eigh = Primitive(
    "eigh", lambda a, *, lower: tuple(np.linalg.eigh(a, UPLO="L" if lower else "U")),
    jvp=_eigh_jvp, vjp=_eigh_vjp, multiple_results=True, samples=_eigh_samples,
    notes="reads one triangle (UPLO); eigenvector derivatives use 0 for 1/(w_j - w_i) at exactly "
          "repeated eigenvalues: exact when the eigenvector cotangent is zero (eigvalsh) or the "
          "function is basis-invariant within eigenspaces")
_eigh.batch = stacked_batch(_eigh)


def _uplo(UPLO) -> bool:
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO argument must be 'L' or 'U', got {UPLO!r}")
    return UPLO == "L"


@composite(np.linalg.eigh, samples=samples.eigh())
def eigh(a, UPLO="L"):
    """``np.linalg.eigh``: ``(eigenvalues, eigenvectors)`` of a (stack of)
    Hermitian matrices, reading the ``UPLO`` triangle.  See the module doc
    for repeated eigenvalues; complex eigenvectors follow the gauge
    ``Im(v^H dv) = 0``, so only phase-invariant functions of them match
    LAPACK's phase choice."""
    check_square(a, "eigh")
    return EighResult(*_eigh.bind(as_inexact(a), lower=_uplo(UPLO)))


eigh.primitive = _eigh  # type: ignore[attr-defined]


@composite(np.linalg.eigvalsh, samples=samples.eigh(values_only=True))
def eigvalsh(a, UPLO="L"):
    """``np.linalg.eigvalsh`` (composite of eigh): exact derivatives also
    with repeated eigenvalues, for functions symmetric in them."""
    check_square(a, "eigvalsh")
    if not is_traced(a):
        return np.linalg.eigvalsh(a, UPLO=UPLO)
    return _eigh.bind(as_inexact(a), lower=_uplo(UPLO))[0]


# ---- svd ----------------------------------------------------------------------------


def _svd_parts(a, out, full_matrices):
    """(u_k, s, vh_k, m, n, k): the thin factors even when full ones were computed."""
    u, s, vh = out
    m, n = shape_of(a)[-2:]
    k = min(m, n)
    if full_matrices and m != n:
        u, vh = u[..., :, :k], vh[..., :k, :]
    return u, s, vh, m, n, k


def _svd_jvp(primals, tangents, out, *, full_matrices):
    (a,), (t,) = primals, tangents
    u, s, vh, m, n, k = _svd_parts(a, out, full_matrices)
    v = mH(vh)
    tv = matmul(t, v)
    dp = matmul(mH(u), tv)
    ds = _re(diag_part(dp))
    f = spectral_gaps(s * s)
    s_row, s_col = s[..., None, :], s[..., :, None]
    dp_h = mH(dp)
    du = matmul(u, f * (dp * s_row + s_col * dp_h))
    dv = matmul(v, f * (s_col * dp + dp_h * s_row))
    inv_s = safe_reciprocal(s)
    if m > k:
        du = du + (tv - matmul(u, dp)) * inv_s[..., None, :]
    if n > k:
        tu = matmul(mH(t), u)
        dv = dv + (tu - matmul(v, dp_h)) * inv_s[..., None, :]
    if dtype_of(a).kind == "c":  # the phase of each pair is carried by v
        dv = dv + v * (-1j * imag(diag_part(dp)) * inv_s)[..., None, :]
    dvh = mH(dv)
    if full_matrices and m != n:
        extra_u, extra_vh = out[0][..., :, k:], out[2][..., k:, :]
        du = concatenate_arrays([du, zeros_like(extra_u)], len(shape_of(du)) - 1) if m > k else du
        dvh = concatenate_arrays([dvh, zeros_like(extra_vh)], len(shape_of(dvh)) - 2) if n > k else dvh
    return du, ds, dvh


def _svd_vjp(g, primals, out, needs, *, full_matrices):
    (a,) = primals
    g_u, g_s, g_vh = g
    u, s, vh, m, n, k = _svd_parts(a, out, full_matrices)
    if full_matrices and m != n:
        g_u = g_u if g_u is zero else g_u[..., :, :k]
        g_vh = g_vh if g_vh is zero else g_vh[..., :k, :]
    v = mH(vh)
    f = spectral_gaps(s * s)
    inv_s = safe_reciprocal(s)
    gp = zero if g_s is zero else diag_embed(g_s)
    ga = zero
    if g_u is not zero:
        j = matmul(mH(u), g_u)
        gp = add_tangents(gp, (f * (j - mH(j))) * s[..., None, :])
        if m > k:
            ga = matmul((g_u - matmul(u, j)) * inv_s[..., None, :], vh)
    if g_vh is not zero:
        g_v = mH(g_vh)
        kk = matmul(mH(v), g_v)
        gp = add_tangents(gp, s[..., :, None] * (f * (kk - mH(kk))))
        if dtype_of(a).kind == "c":
            gp = gp + diag_embed(-1j * imag(diag_part(kk)) * inv_s)
        if n > k:
            ga = add_tangents(ga, matmul(u, inv_s[..., :, None] * mH(g_v - matmul(v, kk))))
    if gp is not zero:
        ga = add_tangents(ga, matmul(u, matmul(gp, vh)))
    return (fit_cotangent(ga, a),)


def _svd_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt), full_matrices=False),
                Sample(array(rng, (2, 4, 3), dt), full_matrices=False, label="tall, stacked"),
                Sample(array(rng, (3, 5), dt), full_matrices=False, label="wide")]
    out.append(Sample(general_matrix(rng, (2, 3, 3), np.float64), full_matrices=True, label="square"))
    return out


_svd = Primitive(
    "svd", lambda a, *, full_matrices: tuple(np.linalg.svd(a, full_matrices=full_matrices)),
    jvp=_svd_jvp, vjp=_svd_vjp, multiple_results=True, samples=_svd_samples,
    notes="singular-vector derivatives use 0 for 1/(s_j^2 - s_i^2) at exactly repeated singular "
          "values and for 1/s at s == 0: exact when the vector cotangents are zero (svdvals, "
          "matrix norms) or the function is basis-invariant; the extra columns of full_matrices=True "
          "get no derivative")
_svd.batch = stacked_batch(_svd)


@composite(np.linalg.svd, samples=samples.svd)
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """``np.linalg.svd``.  With ``compute_uv=False`` only the singular
    values are used, so their derivative is exact even when some repeat.

    ``hermitian=True`` goes through ``eigh`` as NumPy does (reading the
    lower triangle, the same signs for the vectors).  With
    ``full_matrices=True`` and a non-square matrix, the columns beyond
    ``min(m, n)`` carry no derivative (they are not unique).
    """
    check_matrix(a, "svd")
    if not is_traced(a):
        return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv, hermitian=hermitian)
    if hermitian:
        return _hermitian_svd(as_inexact(a), compute_uv)
    m, n = shape_of(a)[-2:]
    full = bool(full_matrices) and bool(compute_uv) and m != n
    outs = _svd.bind(as_inexact(a), full_matrices=full)
    if not compute_uv:
        return outs[1]
    return SVDResult(*outs)


svd.primitive = _svd  # type: ignore[attr-defined]


def _hermitian_svd(a, compute_uv):
    """NumPy's ``svd(hermitian=True)``: |eigenvalues| in decreasing order, the
    eigenvectors as U and the signs moved into Vh."""
    from ..elementwise.arithmetic import absolute, sign
    from ..indexing.gather import take_along_axis
    from ..sorting import argsort

    w, v = _eigh.bind(a, lower=True)
    s = absolute(w)
    order = argsort(s, axis=-1)[..., ::-1]
    s = take_along_axis(s, order, axis=-1)
    if not compute_uv:
        return s
    sgn = take_along_axis(sign(w), order, axis=-1)
    u = take_along_axis(v, order[..., None, :], axis=-1)
    return SVDResult(u, s, mH(u * sgn[..., None, :]))


def svdvals(x, /):
    """``np.linalg.svdvals`` (composite of svd, values only)."""
    return svd(x, compute_uv=False)


if hasattr(np.linalg, "svdvals"):
    composite(np.linalg.svdvals, samples=samples.svdvals)(svdvals)


# ---- qr ----------------------------------------------------------------------------------


def _psi(c):
    """The upper-triangular ``dR R^{-1}`` part of ``c = Q^H dA R^{-1}``."""
    n = shape_of(c)[-1]
    dt = dtype_of(c)
    return c * tri_mask(n, False, True, dt) + mH(c * tri_mask(n, True, True, dt)) + _re(c) * eye(n, real_dtype(dt))


def _psi_adjoint(x):
    n = shape_of(x)[-1]
    dt = dtype_of(x)
    return x * tri_mask(n, False, True, dt) + mH(x) * tri_mask(n, True, True, dt) + _re(x) * eye(n, real_dtype(dt))


def _qr_tall_jvp(q, r, t):
    b = solve_right_triangular(t, r, lower=False)   # dA R^-1
    mmat = _psi(matmul(mH(q), b))
    return b - matmul(q, mmat), matmul(mmat, r)


def _qr_tall_vjp(q, r, g_q, g_r):
    nmat = add_tangents(zero if g_r is zero else matmul(g_r, mH(r)),
                        zero if g_q is zero else -matmul(mH(q), g_q))
    x = add_tangents(g_q, matmul(q, _psi_adjoint(nmat)))
    return solve_right_triangular(x, r, lower=False, adjoint=True)  # X R^-H


def _qr_jvp(primals, tangents, out):
    (a,), (t,) = primals, tangents
    q, r = out
    m, n = shape_of(a)[-2:]
    if m >= n:
        return _qr_tall_jvp(q, r, t)
    dq, dr1 = _qr_tall_jvp(q, r[..., :, :m], t[..., :, :m])
    dr2 = matmul(mH(dq), a[..., :, m:]) + matmul(mH(q), t[..., :, m:])
    return dq, concatenate_arrays([dr1, dr2], len(shape_of(dr1)) - 1)


def _qr_vjp(g, primals, out, needs):
    (a,) = primals
    g_q, g_r = g
    q, r = out
    m, n = shape_of(a)[-2:]
    if m >= n:
        return (fit_cotangent(_qr_tall_vjp(q, r, g_q, g_r), a),)
    g_r1 = g_r if g_r is zero else g_r[..., :, :m]
    g_r2 = g_r if g_r is zero else g_r[..., :, m:]
    y = a[..., :, m:]
    if g_r2 is not zero:
        g_q = add_tangents(g_q, matmul(y, mH(g_r2)))
    g_x = _qr_tall_vjp(q, r[..., :, :m], g_q, g_r1)
    g_y = zeros_like(y) if g_r2 is zero else matmul(q, g_r2)
    return (fit_cotangent(concatenate_arrays([g_x, g_y], len(shape_of(g_x)) - 1), a),)


def _qr_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)), Sample(array(rng, (2, 4, 3), dt), label="tall"),
                Sample(array(rng, (2, 5), dt) + np.eye(2, 5, dtype=dt), label="wide")]
    out += [Sample(complex_matrix(rng, (3, 3), general_matrix), label="complex"),
            Sample(array(rng, (4, 2)) + 1j * array(rng, (4, 2)), label="complex tall")]
    return out


_qr = Primitive("qr", lambda a: tuple(np.linalg.qr(a)), jvp=_qr_jvp, vjp=_qr_vjp,
                multiple_results=True, samples=_qr_samples,
                notes="mode='reduced'; rules use triangular solves with R (R must be invertible)")
_qr.batch = stacked_batch(_qr)


@composite(np.linalg.qr, samples=samples.qr)
def qr(a, mode="reduced"):
    """``np.linalg.qr`` with ``mode='reduced'`` (or ``'r'``, or ``'complete'``
    for matrices with at least as many columns as rows, where it is the same)."""
    check_matrix(a, "qr")
    m, n = shape_of(a)[-2:]
    if mode not in ("reduced", "r", "complete") or (mode == "complete" and m > n):
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            f"np.linalg.qr: mode={mode!r} is not supported on traced values"
            + (" for a tall matrix (its extra columns of Q are not unique)" if mode == "complete" else "")
            + "; use mode='reduced'")
    q, r = _qr.bind(as_inexact(a))
    return r if mode == "r" else QRResult(q, r)


qr.primitive = _qr  # type: ignore[attr-defined]
