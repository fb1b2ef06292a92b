"""Sylvester and discrete Lyapunov equations (primitives behind
``npfunc.scipy.linalg.solve_sylvester``, ``solve_continuous_lyapunov`` and
``solve_discrete_lyapunov``).

``X = sylvester(A, B, Q)`` solves ``A X + X B = Q``.  Differentiating the
equation gives another one with the same operator::

    A dX + dX B = dQ - dA X - X dB

and the adjoint operator is ``Y -> A^H Y + Y B^H``, so the VJP solves
``A^H Y + Y B^H = G`` once and returns ``(-Y X^H, -X^H Y, Y)``.  The same
holds for ``X - A X A^H = Q`` (adjoint ``Y - A^H Y A``; cotangent of ``A``
``Y A X^H + Y^H A X``).

One problem is solved by SciPy (Bartels-Stewart on Schur forms).  A stack
of small problems (``m * n <= 64``) is solved as one vectorised
Kronecker-product system; larger stacks go to SciPy, which loops over the
stack (the O(n^3) work per problem then dominates the loop).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import shape_of
from ...core.zeros import zero
from ..families import fit_cotangent
from ..sampling import FLOATS, array
from .common import add_tangents, broadcast_stacked_batch, check_square, general_matrix, mH, spd_matrix
from .products import matmul

_KRON_LIMIT = 64


def _lead(*arrays):
    return np.broadcast_shapes(*[np.shape(x)[:-2] for x in arrays])


def _sylvester_impl(a, b, q):
    dtype = np.result_type(a, b, q)
    lead = _lead(a, b, q)
    m, n = a.shape[-1], b.shape[-1]
    a, b, q = (np.broadcast_to(x, lead + x.shape[-2:]) for x in (a, b, q))
    if lead and m * n <= _KRON_LIMIT:  # (I_n kron A + B^T kron I_m) vec_col(X) = vec_col(Q)
        big = (np.einsum("ij,...kl->...jkil", np.eye(n), a).reshape(lead + (n * m, n * m))
               + np.einsum("...ji,kl->...ikjl", b, np.eye(m)).reshape(lead + (n * m, n * m)))
        vec = np.swapaxes(q, -1, -2).reshape(lead + (n * m, 1))
        x = np.linalg.solve(big.astype(dtype), vec.astype(dtype)).reshape(lead + (n, m))
        return np.swapaxes(x, -1, -2)
    from scipy.linalg import solve_sylvester as _scipy_sylvester

    return np.asarray(_scipy_sylvester(a, b, q), dtype)


def _sylvester_jvp(primals, tangents, out):
    a, b, _ = primals
    ta, tb, tq = tangents
    rhs = add_tangents(tq, zero if ta is zero else -matmul(ta, out), zero if tb is zero else -matmul(out, tb))
    return _sylvester.bind(a, b, rhs)


def _sylvester_vjp(g, primals, out, needs):
    a, b, q = primals
    y = _sylvester.bind(mH(a), mH(b), g)
    ga = -matmul(y, mH(out)) if needs[0] else zero
    gb = -matmul(mH(out), y) if needs[1] else zero
    return (fit_cotangent(ga, a) if needs[0] else zero, fit_cotangent(gb, b) if needs[1] else zero,
            fit_cotangent(y, q) if needs[2] else zero)


def _sylvester_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt), general_matrix(rng, (2, 2), dt) + 4 * np.eye(2, dtype=dt),
                       array(rng, (3, 2), dt)),
                Sample(spd_matrix(rng, (2, 3, 3), dt), spd_matrix(rng, (3, 3), dt), array(rng, (2, 3, 3), dt),
                       label="stacked")]
    big = 6  # past the Kronecker limit: SciPy per problem
    out.append(Sample(spd_matrix(rng, (2, big, big), np.float64), spd_matrix(rng, (2, 11, 11), np.float64),
                      array(rng, (2, big, 11)), label="large stack"))
    out.append(Sample(general_matrix(rng, (2, 2), np.float64) + 0.3j, spd_matrix(rng, (2, 2), np.float64),
                      array(rng, (2, 2)) - 0.2j, label="complex"))
    return out


_sylvester = Primitive("solve_sylvester", _sylvester_impl, jvp=_sylvester_jvp, vjp=_sylvester_vjp,
                       samples=_sylvester_samples,
                       notes="A X + X B = Q; derivatives solve Sylvester equations with (A, B) and (A^H, B^H)")
_sylvester.batch = broadcast_stacked_batch(_sylvester)


def sylvester(a, b, q):
    """``X`` with ``a @ X + X @ b = q`` for (stacks of) matrices."""
    from .common import as_inexact

    check_square(a, "solve_sylvester")
    check_square(b, "solve_sylvester")
    a, b, q = as_inexact(a), as_inexact(b), as_inexact(q)
    if tuple(shape_of(q)[-2:]) != (shape_of(a)[-1], shape_of(b)[-1]):
        raise ValueError(f"solve_sylvester: q must be {shape_of(a)[-1]} x {shape_of(b)[-1]} to match a and b, "
                         f"got shape {tuple(shape_of(q))}")
    return _sylvester.bind(a, b, q)


# ---- discrete Lyapunov -----------------------------------------------------------------------


def _dlyap_impl(a, q, *, method):
    dtype = np.result_type(a, q)
    lead = _lead(a, q)
    n = a.shape[-1]
    a, q = (np.broadcast_to(x, lead + x.shape[-2:]) for x in (a, q))
    if lead and n * n <= _KRON_LIMIT and method != "bilinear":  # (I - A kron conj(A)) vec_row(X) = vec_row(Q)
        big = np.eye(n * n) - np.einsum("...ij,...kl->...ikjl", a, a.conj()).reshape(lead + (n * n, n * n))
        x = np.linalg.solve(big.astype(dtype), q.reshape(lead + (n * n, 1)).astype(dtype))
        return x.reshape(lead + (n, n))
    from scipy.linalg import solve_discrete_lyapunov as _scipy_dlyap

    return np.asarray(_scipy_dlyap(a, q, method=method), dtype)


def _dlyap_jvp(primals, tangents, out, *, method):
    a, _ = primals
    ta, tq = tangents
    rhs = tq
    if ta is not zero:
        rhs = add_tangents(rhs, matmul(matmul(ta, out), mH(a)) + matmul(matmul(a, out), mH(ta)))
    return _dlyap.bind(a, rhs, method=method)


def _dlyap_vjp(g, primals, out, needs, *, method):
    a, q = primals
    y = _dlyap.bind(mH(a), g, method=method)
    ga = zero
    if needs[0]:
        ga = fit_cotangent(matmul(matmul(y, a), mH(out)) + matmul(matmul(mH(y), a), out), a)
    return ga, fit_cotangent(y, q) if needs[1] else zero


def _dlyap_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample((0.3 * general_matrix(rng, (3, 3), dt)).astype(dt), array(rng, (3, 3), dt), method=None),
                Sample((0.3 * general_matrix(rng, (2, 3, 3), dt)).astype(dt), spd_matrix(rng, (3, 3), dt),
                       method=None, label="stacked")]
    out.append(Sample(0.1 * general_matrix(rng, (12, 12), np.float64), array(rng, (12, 12)), method="bilinear",
                      label="bilinear"))
    out.append(Sample(0.3 * general_matrix(rng, (2, 2), np.float64) + 0.1j, array(rng, (2, 2)) + 0.5j,
                      method="direct", label="complex"))
    return out


_dlyap = Primitive("solve_discrete_lyapunov", _dlyap_impl, jvp=_dlyap_jvp, vjp=_dlyap_vjp,
                   samples=_dlyap_samples,
                   notes="X - A X A^H = Q; derivatives solve discrete Lyapunov equations with A and A^H")
_dlyap.batch = broadcast_stacked_batch(_dlyap)


def discrete_lyapunov(a, q, method=None):
    """``X`` with ``X - a @ X @ a^H = q`` for (stacks of) matrices."""
    from .common import as_inexact

    check_square(a, "solve_discrete_lyapunov")
    check_square(q, "solve_discrete_lyapunov")
    if method not in (None, "direct", "bilinear"):
        raise ValueError(f"solve_discrete_lyapunov: method must be None, 'direct' or 'bilinear', got {method!r}")
    return _dlyap.bind(as_inexact(a), as_inexact(q), method=method)


__all__ = ["sylvester", "discrete_lyapunov"]
