"""The general (non-Hermitian) eigendecomposition: ``np.linalg.eig`` (a
primitive with two outputs) and ``np.linalg.eigvals`` (its values only).

Values and dtypes are NumPy's: a real matrix gives real eigenvalues and
vectors when every eigenvalue of the stack is real, complex ones otherwise;
each eigenvector has unit 2-norm and its largest-magnitude entry real
(LAPACK's ``geev`` normalisation).

Derivatives.  With ``E = V^-1 dA V`` (the rows of ``V^-1`` are the left
eigenvectors, scaled so that ``u_j^H v_j = 1``):

* ``dw_j = E_jj = u_j^H dA v_j``;
* ``dv_j = sum_{i != j} v_i E_ij / (w_j - w_i) + c_j v_j``, where ``c_j``
  keeps LAPACK's normalisation to first order: ``Re(v_j^H dv_j) = 0`` (unit
  norm) and ``Im(dv_jk) = 0`` at the entry ``k`` of largest magnitude (it
  stays real).  So the derivative of the vectors is the derivative of what
  ``np.linalg.eig`` returns, and agrees with its finite differences (except
  where two entries of a vector tie for the largest magnitude, where NumPy's
  own choice jumps).

Repeated eigenvalues (``|w_i - w_j|`` within rounding of each other) take
``1/(w_j - w_i)`` as 0, like ``eigh``.  For a diagonalizable matrix the
eigenvalue derivatives are then exact for functions symmetric in the
repeated group (their sum, ``trace``, ``prod``...), and the eigenvectors
lose the terms inside the group (any basis of the eigenspace is an answer).
A defective matrix (a Jordan block, where ``V`` is singular) has no
eigenvalue derivatives: the rules solve with ``V`` and give huge values (or
inf/NaN) there; only the sum of the group (the trace) stays exact.
See docs/linalg.md.
"""
from __future__ import annotations

import numpy as np

from ...core.dispatch import implements
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Composite, Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from ..elementwise.arithmetic import absolute, imag, real, stop_gradient
from ..families import composite, conj, fit_cotangent, fit_tangent, is_traced
from ..indexing.gather import take_along_axis
from ..reductions.basic import reduce_sum
from ..reductions.index import argmax
from ..sampling import FLOATS, array
from .common import (add_tangents, as_inexact, check_square, diag_embed, diag_part, mH,
                     spectral_gaps, stacked_batch)
from .products import matmul
from .solve import solve

try:  # NumPy >= 2 returns a named tuple
    from numpy.linalg._linalg import EigResult
except ImportError:  # pragma: no cover
    from collections import namedtuple

    EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])


def _largest_entry(v):
    """Row index (keepdims) of each column's largest-magnitude entry: the
    entry LAPACK makes real.  A constant of the rules."""
    return argmax(absolute(stop_gradient(v)), axis=-2, keepdims=True)


def _normalise(v, dv0):
    """``dv0`` plus ``c_j v_j`` so that the norm stays 1 and the largest
    entry stays real (see the module doc)."""
    s = reduce_sum(conj(v) * dv0, axes=(len(shape_of(v)) - 2,))  # v_j^H dv0_j
    coef = -real(s) if dtype_of(s).kind == "c" else -s
    if dtype_of(v).kind == "c":
        k = _largest_entry(v)
        vk = take_along_axis(v, k, axis=-2)[..., 0, :]
        dk = take_along_axis(dv0, k, axis=-2)[..., 0, :]
        coef = coef - 1j * (imag(conj(vk) * dk) / real(conj(vk) * vk))
    return dv0 + v * coef[..., None, :]


def _normalise_adjoint(v, g):
    """The adjoint (for the real inner product Re<a, b>) of ``_normalise``'s
    linear map ``dv0 -> dv``."""
    s = reduce_sum(conj(v) * g, axes=(len(shape_of(v)) - 2,))
    out = g - v * real(s)[..., None, :] if dtype_of(s).kind == "c" else g - v * s[..., None, :]
    if dtype_of(v).kind == "c":
        n = shape_of(v)[-2]
        k = _largest_entry(v)
        onehot = (np.arange(n)[:, None] == k)  # (..., n, n): True at (k_j, j)
        vk = take_along_axis(v, k, axis=-2)[..., 0, :]
        out = out - onehot * (1j * imag(s) / real(conj(vk) * vk) * vk)[..., None, :]
    return out


def _eig_jvp(primals, tangents, out):
    (t,) = tangents
    w, v = out
    e = solve(v, matmul(t, v))  # V^-1 dA V
    dw = diag_part(e)
    dv = _normalise(v, matmul(v, e * spectral_gaps(w)))
    return fit_tangent(dw, w), fit_tangent(dv, v)


def _eig_vjp(g, primals, out, needs):
    (a,) = primals
    g_w, g_v = g
    w, v = out
    e_bar = add_tangents(zero if g_w is zero else diag_embed(g_w),
                         zero if g_v is zero else
                         conj(spectral_gaps(w)) * matmul(mH(v), _normalise_adjoint(v, g_v)))
    return (fit_cotangent(solve(mH(v), matmul(e_bar, mH(v))), a),)


# ---- samples ----------------------------------------------------------------------------


def real_spectrum_matrix(rng, shape, dtype=np.float64):
    """A non-symmetric matrix (or stack) with well separated real eigenvalues."""
    n = shape[-1]
    s = array(rng, shape, np.float64, (-1.0, 1.0)) + 2.0 * np.eye(n)
    d = np.linspace(-2.0, 2.0, n) + array(rng, shape[:-1], np.float64, (-0.1, 0.1))
    return ((s * d[..., None, :]) @ np.linalg.inv(s)).astype(dtype)


def complex_spectrum_matrix(rng, shape, dtype=np.float64):
    """A real matrix (or stack) with complex-conjugate eigenvalue pairs."""
    n = shape[-1]
    a = array(rng, shape, np.float64, (-1.0, 1.0))
    rot = np.zeros((n, n))
    for i in range(0, n - 1, 2):  # 2x2 rotation blocks: eigenvalues (1 + i/2) * (+-i ...)
        rot[i, i + 1], rot[i + 1, i] = 1.0 + i / 2, -1.0 - i / 2
    if n % 2:
        rot[-1, -1] = 0.5
    s = a + 2.0 * np.eye(n)
    return ((s @ rot) @ np.linalg.inv(s)).astype(dtype)


def _eig_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(real_spectrum_matrix(rng, (3, 3), dt), label="real eigenvalues"),
                Sample(complex_spectrum_matrix(rng, (4, 4), dt), label="complex pairs")]
    out += [Sample(real_spectrum_matrix(rng, (2, 3, 3)), label="stacked"),
            Sample(complex_spectrum_matrix(rng, (2, 3, 3)), label="stacked, a complex pair and a real value"),
            Sample(array(rng, (3, 3)) + 1j * array(rng, (3, 3)), label="complex matrix"),
            Sample(np.array([[2.0]]), label="1x1")]
    return out


_eig = Primitive(
    "eig", lambda a: tuple(np.linalg.eig(a)), jvp=_eig_jvp, vjp=_eig_vjp,
    multiple_results=True, samples=_eig_samples,
    notes="dtype follows NumPy (real when every eigenvalue of a real stack is real); vector "
          "derivatives keep LAPACK's normalisation (unit norm, largest entry real); 1/(w_j - w_i) "
          "is 0 at repeated eigenvalues; defective matrices have no derivative (inf/NaN)")
_eig.batch = stacked_batch(_eig)


def _eig_call_samples(rng):
    return [s for s in _eig_samples(rng) if "stacked" in s.label or "complex matrix" in s.label]


@implements(np.linalg.eig)
def eig(a):
    """``np.linalg.eig``: ``(eigenvalues, eigenvectors)`` of a (stack of)
    square matrices, as NumPy returns them; see the module doc for the
    derivatives and their conventions."""
    check_square(a, "eig")
    return EigResult(*_real_as_recorded(_eig.bind(as_inexact(a))))


_COMPLEX_LATER = (
    "np.linalg.eig returns real arrays when every eigenvalue is real and complex ones otherwise: this "
    "computation was recorded (jit) for a matrix whose eigenvalues were all real, and this call's matrix "
    "has complex ones, for which the recorded steps (a .real that was a no-op, real arithmetic) would "
    "give other dtypes and values than NumPy. Fix the dtype: np.linalg.eig(a.astype(complex)) is "
    "complex for every matrix; or keep the eigendecomposition outside jit.")


def _real_as_recorded(out):
    """The outputs of ``eig``, with a check, when they are traced and real, that they stay real
    where the computation is replayed (jit records the dtype of its first call's values)."""
    w, v = out
    if isinstance(w, Tracer) and dtype_of(w).kind != "c":
        from ..data_dependent import ensure

        w = ensure(w, "real_dtype", _COMPLEX_LATER, UnsupportedOperationError)
    return w, v


eig.primitive = _eig  # type: ignore[attr-defined]
# The generated tests build cotangents as plain tuples: test the call through a tuple of its outputs.
eig.composite = Composite("np.linalg.eig", lambda a: tuple(np.linalg.eig(a)),  # type: ignore[attr-defined]
                          samples=_eig_call_samples)


def _eigvals_samples(rng):
    return _eig_samples(rng) + [Sample(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), label="float32 2x2")]


@composite(np.linalg.eigvals, samples=_eigvals_samples)
def eigvals(a):
    """``np.linalg.eigvals``: the eigenvalues of ``eig`` (the vectors get no
    cotangent, so symmetric functions of a repeated eigenvalue group are exact)."""
    check_square(a, "eigvals")
    if not is_traced(a):
        return np.linalg.eigvals(a)
    return _real_as_recorded(_eig.bind(as_inexact(a)))[0]
