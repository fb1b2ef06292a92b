"""Least squares with NumPy's values: the primitive ``lstsq`` computes
``np.linalg.lstsq`` itself (so fits built on it -- ``np.polyfit``, the
``numpy.polynomial`` fits -- give NumPy's coefficients bit for bit) and
differentiates ``x = pinv(a) b`` at constant rank (Golub-Pereyra):

    dx = -P dA x + P P^H dA^H r + (I - P A) dA^H P^H x + P db,  r = b - A x

with ``P = pinv(a, rcond)``; the residual sums ``||r_k||^2`` (returned, as
by NumPy, only for a tall matrix of full column rank) have
``d = 2 Re(r_k^H (db_k - dA x_k))``, and the singular values
``ds_i = Re(u_i^H dA v_i)``.  ``least_squares`` returns NumPy's
``(x, residuals, rank, s)``; ``rank`` is an integer without derivative.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import BatchedConversionError, ConcretizationError, UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import move_to_front
from ..elementwise.arithmetic import astype, imag, real, stop_gradient
from ..families import fit_cotangent, fit_tangent
from ..reductions.basic import reduce_sum
from ..sampling import FLOATS, array
from ..shape.basic import moveaxis, reshape
from .common import add_tangents, as_inexact, diag_embed, diag_part, mH, real_dtype
from .norms import _pinv
from .products import matmul
from .spectral import svd


def _lstsq_impl(a, b, *, rcond):
    x, resid, _, s = np.linalg.lstsq(a, b, rcond=rcond)
    return x, resid, s


def _sq_abs(x):
    return real(x) * real(x) + imag(x) * imag(x) if dtype_of(x).kind == "c" else x * x


def _re(x):
    return real(x) if dtype_of(x).kind == "c" else x


def _jvp(primals, tangents, out, *, rcond):
    (a, b), (ta, tb) = primals, tangents
    x, resid, s = out
    p = _pinv.bind(a, rcond=rcond, hermitian=False)
    has_resid = shape_of(resid)[0] != 0
    r = b - matmul(a, x) if (has_resid or ta is not zero) else None
    dx = dres = ds = zero
    if ta is not zero:
        back = matmul(mH(ta), matmul(mH(p), x))  # dA^H P^H x
        dx = (matmul(p, matmul(mH(p), matmul(mH(ta), r))) - matmul(p, matmul(ta, x))
              + back - matmul(p, matmul(a, back)))
        if has_resid:
            dres = -2 * _re(reduce_sum(r.conj() * matmul(ta, x), axes=(0,)))
        u, _, vh = svd(a, full_matrices=False)
        ds = _re(diag_part(matmul(mH(u), matmul(ta, mH(vh)))))
    if tb is not zero:
        dx = add_tangents(dx, matmul(p, tb))
        if has_resid:
            dres = add_tangents(dres, 2 * _re(reduce_sum(r.conj() * tb, axes=(0,))))
    return (zero if dx is zero else fit_tangent(dx, x), zero if dres is zero else fit_tangent(dres, resid),
            zero if ds is zero else fit_tangent(ds, s))


def _vjp(g, primals, out, needs, *, rcond):
    a, b = primals
    g_x, g_r, g_s = g
    x, resid, s = out
    p = _pinv.bind(a, rcond=rcond, hermitian=False)
    if shape_of(resid)[0] == 0:
        g_r = zero
    r = b - matmul(a, x)
    ga = gb = zero
    if g_x is not zero:
        gh = mH(g_x)
        ga = (matmul(r, matmul(gh, matmul(p, mH(p)))) - matmul(mH(p), matmul(g_x, mH(x)))
              + matmul(matmul(mH(p), x), gh - matmul(gh, matmul(p, a))))
        gb = matmul(mH(p), g_x)
    if g_r is not zero:
        weighted = r * (2 * g_r)[None, :]
        ga = add_tangents(ga, -matmul(weighted, mH(x)))
        gb = add_tangents(gb, weighted)
    if g_s is not zero:
        u, _, vh = svd(a, full_matrices=False)
        ga = add_tangents(ga, matmul(u, matmul(diag_embed(g_s), vh)))
    return (fit_cotangent(ga, a) if needs[0] else zero, fit_cotangent(gb, b) if needs[1] else zero)


def _rank(s, rcond):
    """NumPy's rank: the singular values above ``rcond * max(s)`` (leading axes kept)."""
    s = stop_gradient(s)
    return reduce_sum(astype(s > rcond * s[..., :1], np.intc), axes=(ndim_of(s) - 1,))


def _batch(vals, dims, *, rcond):
    (a, b), (da, db) = vals, dims
    if da is None:  # one matrix, many right-hand sides: fold the batch into b's columns
        b = move_to_front(b, db)
        (m, n), (size, _, k) = shape_of(a), shape_of(b)
        x, resid, s = _lstsq.bind(a, reshape(moveaxis(b, 0, -1), (m, k * size)), rcond=rcond)
        x = reshape(x, (n, k, size))
        resid = (reshape(resid, (k, size)), 1) if shape_of(resid)[0] else \
            (np.zeros((size, 0), dtype_of(resid)), 0)
        return (x, 2), resid, (s, None)
    # a stack of matrices: pinv and svd take stacks (values agree with NumPy's to rounding)
    from ..numpy_code import uniform_value

    a = move_to_front(a, da)
    b = move_to_front(b, db) if db is not None else b
    size, m, n = shape_of(a)
    x = matmul(_pinv.bind(a, rcond=rcond, hermitian=False), b)
    s = svd(a, compute_uv=False)
    try:
        ranks = uniform_value(_rank(s, rcond), "int")  # one per matrix of the stack
        rank = int(ranks.flat[0]) if ranks.size and np.all(ranks == ranks.flat[0]) else None
    except (BatchedConversionError, ConcretizationError):  # differing inner batches, or jit
        rank = None
    if rank is None:
        if m <= n:
            rank = -1
        else:
            raise UnsupportedOperationError(
                "np.linalg.lstsq under vmap: the matrices of the batch do not all have the same "
                "rank, so NumPy's residuals differ in shape between them; compute the residuals "
                "as ((b - a @ x) ** 2).sum(0) instead") from None
    if m > n and rank == n:
        resid = reduce_sum(_sq_abs(b - matmul(a, x)), axes=(1,))
    else:
        resid = np.zeros((size, 0), real_dtype(dtype_of(x)))
    return (x, 0), (resid, 0), (s, 0)


def _batch_rule(vals, dims, *, rcond):
    outs = _batch(vals, dims, rcond=rcond)
    return tuple(o for o, _ in outs), tuple(d for _, d in outs)


def _samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5, 3), dt), array(rng, (5, 2), dt), rcond=1e-10, label="tall"),
                Sample(array(rng, (2, 4), dt), array(rng, (2, 1), dt), rcond=1e-10, label="wide")]
    low_rank = array(rng, (5, 2)) @ array(rng, (2, 3))
    out += [Sample(low_rank, array(rng, (5, 2)), rcond=1e-4, kink=True,
                   label="rank 2 of 3, cut above the FD step (a zero singular value is a kink)"),
            Sample(array(rng, (4, 3)) + 1j * array(rng, (4, 3)), array(rng, (4, 1)) + 0j,
                   rcond=1e-10, label="complex")]
    return out


_lstsq = Primitive(
    "lstsq", _lstsq_impl, jvp=_jvp, vjp=_vjp, batch=_batch_rule, multiple_results=True,
    samples=_samples,
    notes="NumPy's (x, residuals, s); derivatives at constant rank (singular values at or "
          "below rcond * max(s) are exact zeros); residuals only for full column rank, as NumPy")


def _plain_value(a):
    """``a``'s value when no transform traces it (polyfit's Vandermonde matrix,
    also as NumPy code running on it holds it), else None."""
    from ..numpy_code import CodeTracer

    while isinstance(a, CodeTracer):
        a = a.val
    return None if isinstance(a, Tracer) else np.asarray(a)


def least_squares(a, b, rcond=None):
    """``np.linalg.lstsq(a, b, rcond)`` on traced values with NumPy's values:
    ``(x, residuals, rank, s)``."""
    a, b = as_inexact(a), as_inexact(b)
    if ndim_of(a) != 2 or ndim_of(b) not in (1, 2) or shape_of(b)[0] != shape_of(a)[0]:
        raise np.linalg.LinAlgError("lstsq: a must be 2-D and b 1-D or 2-D with as many rows as a")
    m, n = shape_of(a)
    eps = np.finfo(real_dtype(np.result_type(dtype_of(a), dtype_of(b)))).eps
    rcond = eps * max(m, n) if rcond is None else (eps if rcond < 0 else rcond)
    vector = ndim_of(b) == 1
    x, resid, s = _lstsq.bind(a, reshape(b, (m, 1)) if vector else b, rcond=float(rcond))
    if vector:
        x = x[:, 0]
    plain_a = _plain_value(a)
    if plain_a is not None:  # the rank depends on a alone: NumPy's, a plain integer even under jit
        return x, resid, np.intc(np.linalg.lstsq(plain_a, np.zeros((m, 1), plain_a.dtype), rcond=rcond)[2]), s
    rank = _rank(s, rcond)
    try:
        from ..numpy_code import uniform_value

        rank = np.intc(uniform_value(rank, "int"))
    except (BatchedConversionError, ConcretizationError):  # ranks differ, or jit: keep them traced
        pass
    return x, resid, rank, s
