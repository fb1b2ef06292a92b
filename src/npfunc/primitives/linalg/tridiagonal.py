"""Eigenvalues and eigenvectors of a real symmetric tridiagonal matrix (the
primitive behind ``npfunc.scipy.linalg.eigh_tridiagonal``).

The primitive always computes the selected eigenvalues ``w`` and vectors
``V`` with SciPy (LAPACK's stemr/stebz).  With ``C = V_all^T dT V`` (``dT``
the tridiagonal matrix of the tangents ``dd``, ``de``; ``V_all`` every
eigenvector)::

    dw_k = C[k, k] = sum_i dd_i v_ik^2 + 2 sum_i de_i v_ik v_{i+1,k}
    dV   = V_all (F * C),    F[i, k] = 1 / (w_k - w_i)   (0 for i = k)

An unreduced tridiagonal matrix (every ``e`` nonzero) has distinct
eigenvalues; with zeros in ``e`` repeated eigenvalues can occur, and ``F``
then follows ``np.linalg.eigh``'s convention (0 for values equal to working
precision).  The VJP transposes the JVP.  Eigenvector signs are SciPy's.
SciPy's tridiagonal solver has no batched form: a stack is solved by SciPy
one matrix at a time (O(n^2) work each).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import shape_of
from ...core.zeros import zero
from ..elementwise.arithmetic import zeros_like
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays
from ...interpreters.batching import materialize_front
from .common import mT, spectral_gaps
from .linear_rules import transposed_vjp
from .products import einsum, matmul


def _impl(d, e, *, select, select_range, tol, lapack_driver):
    from scipy.linalg import eigh_tridiagonal as _scipy

    kwargs = dict(select=select, select_range=select_range, tol=tol, lapack_driver=lapack_driver,
                  check_finite=False)
    lead = np.broadcast_shapes(d.shape[:-1], e.shape[:-1])
    d, e = np.broadcast_to(d, lead + d.shape[-1:]), np.broadcast_to(e, lead + e.shape[-1:])
    w, v = _scipy(d, e, **kwargs)  # SciPy loops over a stack itself
    return np.asarray(w), np.asarray(v)


def _tridiag_matmul(dd, de, v):
    """``T @ v`` for the tridiagonal ``T`` with diagonal ``dd`` and off-diagonal ``de``."""
    nd = len(shape_of(v))
    zero_row = zeros_like(v[..., :1, :])
    up = concatenate_arrays([de[..., :, None] * v[..., 1:, :], zero_row], nd - 2)
    down = concatenate_arrays([zero_row, de[..., :, None] * v[..., :-1, :]], nd - 2)
    return dd[..., :, None] * v + up + down


def _jvp(primals, tangents, out, *, select, select_range, tol, lapack_driver):
    d, e = primals
    tdd, tde = tangents
    w, v = out
    tdd = zeros_like(d) if tdd is zero else tdd
    tde = zeros_like(e) if tde is zero else tde
    if select == "a":
        w_all, v_all, picked = w, v, None
    else:
        w_all, v_all = _prim.bind(d, e, select="a", select_range=None, tol=tol, lapack_driver=lapack_driver)
        lo, hi = select_range
        picked = slice(int(lo), int(hi) + 1)
    tv = _tridiag_matmul(tdd, tde, v)
    dw = einsum("...ik,...ik->...k", v, tv)
    c = matmul(mT(v_all), tv)  # the selected vectors keep their own signs; those of v_all cancel
    gaps = spectral_gaps(w_all) if picked is None else spectral_gaps(w_all)[..., :, picked]
    return dw, matmul(v_all, gaps * c)


def _samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5,), dt, (-1.0, 1.0)), array(rng, (4,), dt, (0.3, 1.0)), select="a",
                       select_range=None, tol=0.0, lapack_driver="auto"),
                Sample(array(rng, (2, 4), dt, (-1.0, 1.0)), array(rng, (2, 3), dt, (0.3, 1.0)), select="a",
                       select_range=None, tol=0.0, lapack_driver="auto", label="stacked")]
    out.append(Sample(array(rng, (5,), np.float64, (-1.0, 1.0)), array(rng, (4,), np.float64, (0.3, 1.0)),
                      select="i", select_range=(1, 3), tol=0.0, lapack_driver="auto", label="index subset"))
    out.append(Sample(array(rng, (4,), np.float64, (-1.0, 1.0)), array(rng, (3,), np.float64, (0.3, 1.0)),
                      select="a", select_range=None, tol=0.0, lapack_driver="stev", label="stev"))
    return out


_prim = Primitive("eigh_tridiagonal", _impl, jvp=_jvp, vjp=transposed_vjp(_jvp, "eigh_tridiagonal", True),
                  multiple_results=True, samples=_samples,
                  notes="symmetric tridiagonal (d, e) -> (w, V); dw_k = v_k^T dT v_k, dV = V_all (F * C); "
                        "degenerate pairs as np.linalg.eigh (F = 0); signs are SciPy's")
def _batch(vals, dims, **params):
    size = next(shape_of(v)[k] for v, k in zip(vals, dims) if k is not None)
    d, e = (materialize_front(v, k, size) for v, k in zip(vals, dims))
    return _prim.bind(d, e, **params), (0, 0)


_prim.batch = _batch


def tridiagonal_eigh(d, e, select="a", select_range=None, tol=0.0, lapack_driver="auto"):
    """``(w, V)`` of the symmetric tridiagonal matrix with diagonal ``d`` and off-diagonal ``e``."""
    rng_ = None if select_range is None else tuple(select_range)
    return _prim.bind(d, e, select=select, select_range=rng_, tol=tol, lapack_driver=lapack_driver)


__all__ = ["tridiagonal_eigh"]
