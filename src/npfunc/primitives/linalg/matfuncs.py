"""Matrix square root and logarithm (primitives behind
``npfunc.scipy.linalg.sqrtm`` and ``logm``).

* ``X = sqrtm(A)``: differentiating ``X X = A`` gives the Sylvester equation
  ``X dX + dX X = dA``; the VJP solves the adjoint one with ``X^H``.
* ``logm``: the Fréchet derivative ``L(A, E)`` is the top-right block of
  ``logm([[A, E], [0, A]])`` (the block-triangular identity that holds for
  every primary matrix function); the VJP is its exact adjoint
  ``conj(L(A^T, conj G))`` (``L(A^H, G)`` for functions real on the real axis).

Both are the principal branches SciPy computes, and like SciPy they return a
complex result when the matrix has eigenvalues on the negative real axis
(the output dtype then depends on the values).  There the derivative is that
of the branch SciPy's value lies on (arguments in (-pi, pi], continuous
from above the cut); the VJP is the exact adjoint of that JVP.  Singular matrices have no differentiable square
root or logarithm (the Sylvester operator is singular).
"""
from __future__ import annotations

import threading
import warnings

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ..elementwise.arithmetic import imag, real, zeros_like
from ..families import fit_cotangent
from ..sampling import FLOATS
from ..shape.basic import concatenate_arrays
from ..families import conj
from .common import as_inexact, check_square, general_matrix, mH, mT, spd_matrix, stacked_batch
from .sylvester import sylvester


def _sqrtm_impl(a):
    from scipy.linalg import sqrtm as _scipy_sqrtm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        out = _scipy_sqrtm(a)
    return np.asarray(out)


def _sqrtm_jvp(primals, tangents, out):
    (ta,) = tangents
    return sylvester(out, out, ta)


def _sqrtm_vjp(g, primals, out, needs):
    return (fit_cotangent(sylvester(mH(out), mH(out), g), primals[0]),)


def _spd_like(rng, shape, dtype):
    return spd_matrix(rng, shape, dtype) + 0.2 * np.triu(general_matrix(rng, shape, np.float64), 1).astype(dtype)


def _matfunc_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(_spd_like(rng, (3, 3), dt)),
                Sample(_spd_like(rng, (2, 3, 3), dt), label="stacked")]
    out.append(Sample(np.array([[-1.0, 0.5], [0.2, 2.0]]), label="negative eigenvalue: complex result"))
    out.append(Sample(_spd_like(rng, (2, 2), np.float64) + 0.3j * np.eye(2), label="complex"))
    return out


_sqrtm = Primitive("sqrtm", _sqrtm_impl, jvp=_sqrtm_jvp, vjp=_sqrtm_vjp, samples=_matfunc_samples,
                   notes="principal square root; X dX + dX X = dA (Sylvester); complex output for eigenvalues on "
                         "the negative real axis, where it is not differentiable")
_sqrtm.batch = stacked_batch(_sqrtm)


def sqrtm(a):
    """The principal square root of a (stack of) square matrices."""
    check_square(a, "sqrtm")
    _check_recordable(a, "sqrtm")
    return _sqrtm.bind(as_inexact(a))


def _check_recordable(a, name: str) -> None:
    """Refuse a real ``a`` whose values jit records: the result is real or complex
    depending on them (eigenvalues on the negative real axis), so one recording
    cannot stand for every call."""
    if dtype_of(a).kind == "c":
        return
    from ..data_dependent import recorded

    stage = recorded(a)
    if stage is not None:
        from ...core.context import describe_stack
        from ...core.errors import ConcretizationError

        raise ConcretizationError(
            f"{describe_stack()}: {name}(A) of a real A is real or complex depending on A's values (complex "
            f"when A has eigenvalues on the negative real axis), which {stage} cannot record once for all "
            f"calls. Pass A.astype(complex) to always get the complex result, or call {name} outside {stage}.")


_GLOBAL_RNG = threading.Lock()


def _logm_impl(a):
    from scipy.linalg import logm as _scipy_logm

    # SciPy's logm estimates 1-norms with random sign vectors drawn from NumPy's
    # global generator, so two calls can differ in the last bit.  Derivatives call
    # it again (and must be reproducible: a VJP evaluated twice gives the same
    # bits), so the draws are fixed here and the global generator is restored.
    with _GLOBAL_RNG, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's accuracy estimate; the value is returned
        state = np.random.get_state()
        try:
            np.random.seed(0)
            return np.asarray(_scipy_logm(a))
        finally:
            np.random.set_state(state)


def _block_frechet(a, e):
    if dtype_of(a).kind != "c" and dtype_of(e).kind == "c":
        # L(A, .) is complex-linear: keep the block real, so that eigenvalues on the
        # negative real axis stay exactly real (on one side of the branch cut) in
        # LAPACK's real Schur form instead of being split to both sides by rounding.
        return _block_frechet(a, real(e)) + 1j * _block_frechet(a, imag(e))
    n = shape_of(a)[-1]
    nd = max(ndim_of(a), ndim_of(e))
    top = concatenate_arrays([a, e], nd - 1)
    bottom = concatenate_arrays([zeros_like(a) + zeros_like(e), a + zeros_like(e)], nd - 1)
    block = _logm.bind(concatenate_arrays([top, bottom], nd - 2))
    return block[..., :n, n:]


def _logm_jvp(primals, tangents, out):
    (ta,) = tangents
    a = primals[0]
    if ta is zero:
        return zero
    return _block_frechet(a, ta)


def _logm_vjp(g, primals, out, needs):
    # The adjoint of L_f(A, .) is L_{f*}(A^H, .) with f*(z) = conj(f(conj z)), i.e.
    # conj(L_f(A^T, conj(G))): equal to L_f(A^H, G) when f is real on the real axis, and
    # still right when A has eigenvalues on the branch cut (where log is not).
    a = primals[0]
    return (fit_cotangent(conj(_block_frechet(mT(a), conj(g))), a),)


_logm = Primitive("logm", _logm_impl, jvp=_logm_jvp, vjp=_logm_vjp, samples=_matfunc_samples,
                  notes="principal logarithm; Fréchet derivative from logm([[A, E], [0, A]]), VJP L(A^H, G); "
                        "complex output for eigenvalues on the negative real axis")
_logm.batch = stacked_batch(_logm)


def logm(a):
    """The principal logarithm of a (stack of) square matrices."""
    check_square(a, "logm")
    _check_recordable(a, "logm")
    return _logm.bind(as_inexact(a))


# ---- a whole-batch decision for SciPy's "real result?" test ---------------------------------------

def _negligible_impl(x, *, tol):
    return np.bool_(np.all(np.abs(np.imag(x)) <= tol))


_negligible = Primitive(
    "negligible_imag", _negligible_impl, differentiable=False,
    batch=lambda vals, dims, *, tol: (_negligible.bind(vals[0], tol=tol), None),
    samples=lambda rng: [Sample(np.array([1.0 + 1e-12j, 2.0]), tol=1e-9), Sample(np.array([1.0 + 1j]), tol=1e-9)],
    notes="all |imag(x)| <= tol, over the whole batch under vmap (one output dtype for the batch); no derivative")


def negligible_imag(x, tol: float):
    """Whether every imaginary part of ``x`` is at most ``tol`` (SciPy's ``_maybe_real``
    test), decided for a whole vmap batch at once."""
    from ..elementwise.arithmetic import stop_gradient

    return _negligible.bind(stop_gradient(x), tol=float(tol))


__all__ = ["sqrtm", "logm", "negligible_imag"]
