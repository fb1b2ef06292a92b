"""Banded solves (primitives behind ``npfunc.scipy.linalg.solve_banded`` and
``solveh_banded``), differentiated in LAPACK's band storage.

``ab[u + i - j, j] = A[i, j]`` (``solve_banded((l, u), ab, b)``); the
Hermitian form stores one triangle: ``ab[u + i - j, j] = A[i, j]`` for
``i <= j`` (upper, the default) or ``ab[i - j, j]`` for ``i >= j``
(``lower=True``).  As for a dense solve, ``dx = A^{-1} (db - dA x)`` and the
VJP solves with ``A^H`` and projects ``-g_b x^H`` onto the stored band; every
step costs O(n * bandwidth), like the solve.  Band entries that do not lie in
the matrix (the corners of ``ab``) and, for the Hermitian form, the imaginary
part of the diagonal are never read: their derivative is zero.

A stack of systems (vmap over ``ab``) is solved densely and vectorised when
``n <= 128``, else by SciPy one system at a time; a batch of right-hand sides
alone is folded into the columns of ``b`` (one factorisation).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import align_front, move_to_front
from ..elementwise.arithmetic import real, zeros_like
from ..families import conj, fit_cotangent
from ..reductions.basic import reduce_sum
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays, stack
from .common import add_tangents

_DENSE_LIMIT = 128


# ---- band arithmetic, written with npfunc operations ---------------------------------------------

def shift(v, s: int, axis: int):
    """``out[i] = v[i + s]`` along ``axis`` (zero where ``i + s`` is outside)."""
    if s == 0:
        return v
    n = shape_of(v)[axis]
    axis = axis % ndim_of(v)
    pad_shape = list(shape_of(v))
    pad_shape[axis] = min(abs(s), n)
    pad = zeros_like(v)[tuple([slice(None)] * axis + [slice(0, pad_shape[axis])])]
    body = v[tuple([slice(None)] * axis + ([slice(s, None)] if s > 0 else [slice(0, n + s)]))]
    parts = [body, pad] if s > 0 else [pad, body]
    return concatenate_arrays([p for p in parts if shape_of(p)[axis]], axis)


def band_matvec(ab, x, lower: int, upper: int):
    """``A @ x`` for ``A`` in band storage ``ab`` (``(..., l+u+1, n)``), ``x`` ``(..., n, k)``."""
    terms = [shift(ab[..., upper - d, :, None] * x, d, -2) for d in range(-lower, upper + 1)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def band_outer(p, q, lower: int, upper: int):
    """The band of ``p @ q^H`` in band storage: ``out[u + i - j, j] = sum_k p[i, k] conj(q[j, k])``."""
    rows = [reduce_sum(shift(p, -(upper - r), -2) * conj(q), axes=(ndim_of(q) - 1,))
            for r in range(lower + upper + 1)]
    return stack(rows, axis=-2)


def band_transpose(ab, lower: int, upper: int):
    """The storage of ``A^T`` (whose band is ``(u, l)``) from that of ``A``."""
    rows = [shift(ab[..., upper + lower - r, :], -(lower - r), -1) for r in range(lower + upper + 1)]
    return stack(rows, axis=-2)


def hermitian_band(ab, lower: bool):
    """General band storage (``l = u = w``) of the Hermitian matrix stored in one triangle."""
    w = shape_of(ab)[-2] - 1
    diag = ab[..., 0 if lower else w, :]
    if dtype_of(ab).kind == "c":
        diag = real(diag) + 0j * real(diag)
    if lower:  # ab[d, j] = A[j + d, j]; the mirror A[j, j + d] = conj(A[j + d, j]) sits at column j + d
        below = [ab[..., d, :] for d in range(1, w + 1)]
        above = [shift(conj(ab[..., d, :]), -d, -1) for d in range(1, w + 1)]
    else:  # ab[w - d, j] = A[j - d, j]; the mirror A[j, j - d] sits at column j - d
        above = [ab[..., w - d, :] for d in range(1, w + 1)]
        below = [shift(conj(ab[..., w - d, :]), d, -1) for d in range(1, w + 1)]
    rows = above[::-1] + [diag] + below  # general storage row w - d holds offset d = j - i
    return stack(rows, axis=-2)


def hermitian_band_adjoint(gfull, lower: bool):
    """Adjoint of ``hermitian_band``: the cotangent of the stored triangle."""
    w = (shape_of(gfull)[-2] - 1) // 2
    diag = gfull[..., w, :]
    if dtype_of(gfull).kind == "c":
        diag = real(diag) + 0j * real(diag)
    rows = []
    for d in range(1, w + 1):
        above, below = gfull[..., w - d, :], gfull[..., w + d, :]
        if lower:
            rows.append(below + shift(conj(above), d, -1))
        else:
            rows.append(above + shift(conj(below), -d, -1))
    if lower:
        return stack([diag] + rows, axis=-2)
    return stack(rows[::-1] + [diag], axis=-2)


# ---- plain-array implementations -----------------------------------------------------------------

def _dense(ab, lower, upper):
    """The dense matrices of a stack of band storages (plain NumPy)."""
    n = ab.shape[-1]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    r = upper + i - j
    inside = (r >= 0) & (r <= lower + upper)
    return np.where(inside, ab[..., np.clip(r, 0, lower + upper), j], 0)


def _solve_stack(ab, b, lower, upper, single):
    lead = np.broadcast_shapes(ab.shape[:-2], b.shape[:-2])
    dtype = np.result_type(ab, b)
    if not lead:
        return np.asarray(single(ab, b), dtype).reshape(b.shape)
    ab, b = np.broadcast_to(ab, lead + ab.shape[-2:]), np.broadcast_to(b, lead + b.shape[-2:])
    if ab.shape[-1] <= _DENSE_LIMIT:
        return np.linalg.solve(_dense(ab, lower, upper).astype(dtype), b.astype(dtype))
    out = np.empty(lead + b.shape[-2:], dtype)
    for idx in np.ndindex(*lead):
        out[idx] = single(ab[idx], b[idx])
    return out


def _banded_impl(ab, b, *, lower, upper):
    from scipy.linalg import solve_banded as _scipy

    return _solve_stack(ab, b, lower, upper,
                        lambda m, v: _scipy((lower, upper), m, v, check_finite=False))


def _banded_jvp(primals, tangents, out, *, lower, upper):
    ab = primals[0]
    tab, tb = tangents
    rhs = add_tangents(tb, zero if tab is zero else -band_matvec(tab, out, lower, upper))
    return _banded.bind(ab, rhs, lower=lower, upper=upper)


def _banded_vjp(g, primals, out, needs, *, lower, upper):
    ab, b = primals
    gb = _banded.bind(conj(band_transpose(ab, lower, upper)), g, lower=upper, upper=lower)
    gab = fit_cotangent(-band_outer(gb, out, lower, upper), ab) if needs[0] else zero
    return gab, fit_cotangent(gb, b) if needs[1] else zero


def _fold_rhs_batch(prim):
    """Batch rule: a batch of right-hand sides alone becomes more columns of ``b``."""

    def batch(vals, dims, **params):
        (ab, b), (dab, db) = vals, dims
        if dab is not None:
            vals, _ = align_front(list(vals), list(dims))
            return prim.bind(*vals, **params), 0
        from ..shape.basic import moveaxis, reshape

        b = move_to_front(b, db)
        size, *lead, n, k = shape_of(b)
        x = prim.bind(ab, reshape(moveaxis(b, 0, -1), tuple(lead) + (n, k * size)), **params)
        return reshape(x, tuple(lead) + (n, k, size)), len(lead) + 2

    return batch


def random_band(rng, lead, n, lower, upper, dtype):
    """Band storage of a diagonally dominant banded matrix."""
    ab = array(rng, tuple(lead) + (lower + upper + 1, n), np.float64, (-1.0, 1.0))
    ab[..., upper, :] += (lower + upper + 1.5) * np.sign(ab[..., upper, :] + 1e-3)
    return ab.astype(dtype)


def _banded_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(random_band(rng, (), 5, 1, 2, dt), array(rng, (5, 2), dt), lower=1, upper=2),
                Sample(random_band(rng, (), 4, 0, 1, dt), array(rng, (4, 1), dt), lower=0, upper=1,
                       label="upper bidiagonal"),
                Sample(random_band(rng, (2,), 4, 1, 1, dt), array(rng, (2, 4, 3), dt), lower=1, upper=1,
                       label="stacked")]
    out.append(Sample(random_band(rng, (), 4, 1, 1, np.float64) + 0.2j, array(rng, (4, 2)) - 0.5j, lower=1,
                      upper=1, label="complex"))
    return out


_banded = Primitive("solve_banded", _banded_impl, jvp=_banded_jvp, vjp=_banded_vjp, batch=None,
                    samples=_banded_samples,
                    notes="LAPACK band storage; dx = A^{-1}(db - dA x), VJP solves with A^H and keeps the band of "
                          "-g_b x^H; entries outside the matrix get zero")
_banded.batch = _fold_rhs_batch(_banded)


def banded_solve(ab, b, lower: int, upper: int):
    """``A x = b`` for ``A`` in band storage; ``b`` is ``(..., n, k)``."""
    return _banded.bind(ab, b, lower=int(lower), upper=int(upper))


# ---- Hermitian positive definite ----------------------------------------------------------------

def _hbanded_impl(ab, b, *, lower):
    from scipy.linalg import solveh_banded as _scipy

    w = ab.shape[-2] - 1
    if ab.shape[:-2] and ab.shape[-1] <= _DENSE_LIMIT:  # dense Cholesky-free solve of the stack
        lead = np.broadcast_shapes(ab.shape[:-2], b.shape[:-2])
        full = _dense(_plain_hermitian_band(ab, lower), w, w)
        return np.linalg.solve(np.broadcast_to(full, lead + full.shape[-2:]).astype(np.result_type(ab, b)),
                               np.broadcast_to(b, lead + b.shape[-2:]))
    return _solve_stack(ab, b, w, w, lambda m, v: _scipy(m, v, lower=lower, check_finite=False))


def _plain_hermitian_band(ab, lower):
    return np.asarray(hermitian_band(ab, lower))


def _hbanded_jvp(primals, tangents, out, *, lower):
    ab = primals[0]
    tab, tb = tangents
    w = shape_of(ab)[-2] - 1
    rhs = tb
    if tab is not zero:
        rhs = add_tangents(rhs, -band_matvec(hermitian_band(tab, lower), out, w, w))
    return _hbanded.bind(ab, rhs, lower=lower)


def _hbanded_vjp(g, primals, out, needs, *, lower):
    ab, b = primals
    w = shape_of(ab)[-2] - 1
    gb = _hbanded.bind(ab, g, lower=lower)
    gab = zero
    if needs[0]:
        gab = fit_cotangent(hermitian_band_adjoint(-band_outer(gb, out, w, w), lower), ab)
    return gab, fit_cotangent(gb, b) if needs[1] else zero


def spd_band(rng, lead, n, w, lower, dtype):
    """Hermitian band storage of a diagonally dominant positive definite matrix."""
    ab = array(rng, tuple(lead) + (w + 1, n), np.float64, (-1.0, 1.0))
    ab[..., 0 if lower else w, :] = 2.0 * w + 1.5 + np.abs(ab[..., 0 if lower else w, :])
    return ab.astype(dtype)


def _hbanded_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(spd_band(rng, (), 5, 2, False, dt), array(rng, (5, 2), dt), lower=False),
                Sample(spd_band(rng, (), 4, 1, True, dt), array(rng, (4, 1), dt), lower=True, label="lower"),
                Sample(spd_band(rng, (2,), 4, 1, False, dt), array(rng, (2, 4, 2), dt), lower=False,
                       label="stacked")]
    c = spd_band(rng, (), 4, 1, True, np.float64).astype(complex)
    c[1:] += 0.3j
    out.append(Sample(c, array(rng, (4, 2)) + 0.5j, lower=True, label="complex"))
    return out


_hbanded = Primitive("solveh_banded", _hbanded_impl, jvp=_hbanded_jvp, vjp=_hbanded_vjp,
                     samples=_hbanded_samples,
                     notes="Hermitian positive definite band storage (one triangle); the other triangle and the "
                           "imaginary part of the diagonal are not read (zero derivative)")
_hbanded.batch = _fold_rhs_batch(_hbanded)


def hermitian_banded_solve(ab, b, lower: bool):
    """``A x = b`` for Hermitian positive definite ``A`` in one-triangle band storage."""
    return _hbanded.bind(ab, b, lower=bool(lower))


__all__ = ["banded_solve", "hermitian_banded_solve", "band_matvec", "band_outer", "band_transpose",
           "hermitian_band"]
