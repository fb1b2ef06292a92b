"""``npfunc.scipy.linalg``: twins of ``scipy.linalg`` functions that work on
traced values (under every transform) and on plain arrays.

SciPy's linalg functions are not NumPy array functions, so they cannot
dispatch to npfunc: ``scipy.linalg.expm(x)`` on a traced ``x`` fails when
SciPy converts ``x`` to an ndarray (npfunc's ``ConcretizationError`` or
``BatchedConversionError``).  Call the twin instead::

    import npfunc.scipy.linalg as sla
    npfunc.grad(lambda a: sla.expm(a).trace())(a)

Signatures and defaults follow SciPy (e.g. ``cholesky`` returns the upper
factor unless ``lower=True``).  ``overwrite_*`` and ``check_finite`` are
accepted and ignored.  Decompositions are computed with the same LAPACK
routines as ``np.linalg``, so the signs of eigenvectors and singular
vectors can differ from SciPy's choice of driver; everything else agrees.
"""
from __future__ import annotations

import numpy as _np
import scipy.linalg as _sl

from ..core import dispatch as _dispatch
from ..core.errors import UnsupportedOperationError as _UnsupportedOperationError
from ..core.values import dtype_of as _dtype_of, ndim_of as _ndim_of, shape_of as _shape_of
from ..primitives.linalg import norms as _norms
from ..primitives.linalg import solve as _solve
from ..primitives.linalg import spectral as _spectral
from ..primitives.linalg.common import as_inexact as _as_inexact, check_square as _check_square
from ..primitives.linalg.common import diag_part as _diag_part, herm_from_triangle as _herm_from_triangle
from ..primitives.linalg.common import mH as _mH, mT as _mT, tri_mask as _tri_mask
from ..primitives.linalg.expm import expm as _expm
from ..primitives.linalg.expm import frechet as _frechet
from ..primitives.shape.basic import concatenate_arrays as _concatenate_arrays

from ._linalg_decomp import (eigh_tridiagonal, funm, hessenberg, logm, lu, lu_factor, lu_solve, polar, schur,
                             solve_banded, solve_continuous_lyapunov, solve_discrete_lyapunov, solve_sylvester,
                             solveh_banded, sqrtm)
from ._linalg_special import block_diag, circulant, companion, hankel, toeplitz

__all__ = ["solve_triangular", "cho_factor", "cho_solve", "cholesky", "expm", "expm_frechet", "inv",
           "cosm", "sinm", "det", "solve", "eigh", "eigvalsh", "svd", "svdvals", "qr", "norm", "lstsq", "pinv",
           "lu", "lu_factor", "lu_solve", "schur", "hessenberg", "polar", "sqrtm", "logm", "funm",
           "solve_sylvester", "solve_continuous_lyapunov", "solve_discrete_lyapunov", "solve_banded",
           "solveh_banded", "eigh_tridiagonal", "block_diag", "toeplitz", "circulant", "hankel", "companion",
           "solve_lyapunov"]
solve_lyapunov = solve_continuous_lyapunov  # SciPy's alias



def __dir__():
    return __all__


_TRANS = {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}


def _unsupported(msg: str):
    return _UnsupportedOperationError(f"npfunc.scipy.linalg.{msg}")


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """Solve ``op(a) x = b`` reading one triangle of ``a`` (``lower``);
    ``trans`` is 0/'N', 1/'T' or 2/'C'.  Stacks of matrices broadcast."""
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    return _solve.triangular_solve(a, b, lower=bool(lower), trans=_TRANS[trans],
                                   unit_diagonal=bool(unit_diagonal))


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor (upper by default, as in SciPy)."""
    return _solve.cholesky(a, upper=not lower)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """``(c, lower)``: the factor in one triangle of ``c``; like SciPy, the
    other triangle holds the entries of ``a`` (cho_solve never reads them)."""
    _check_square(a, "cho_factor")
    a = _as_inexact(a)
    factor = _solve.cholesky(a, upper=not lower)
    rest = a * _tri_mask(_shape_of(a)[-1], not lower, True, _dtype_of(a))
    return factor + rest, bool(lower)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """Solve ``a x = b`` given ``cho_factor(a)``: two triangular solves."""
    c, lower = c_and_lower
    if _ndim_of(b) == 1:  # one vector for a whole stack of factors: solve it as a column, so the
        from ..primitives.shape.basic import reshape  # first solve's (..., n) is not taken for a matrix

        x = cho_solve((c, lower), reshape(b, (_shape_of(b)[0], 1)))
        return x[..., 0]
    if lower:  # a = L L^H
        y = _solve.triangular_solve(c, b, lower=True, trans=0)
        return _solve.triangular_solve(c, y, lower=True, trans=2)
    y = _solve.triangular_solve(c, b, lower=False, trans=2)  # a = U^H U
    return _solve.triangular_solve(c, y, lower=False, trans=0)


def expm(A):
    """The matrix exponential (stacks allowed); its derivative is the
    Fréchet derivative (block-triangular formula), its VJP the adjoint."""
    return _expm(A)


def _trig_arg(A, name):
    """``1j * A`` for cosm/sinm, and whether ``A`` is complex (SciPy branches on it)."""
    if not hasattr(A, "dtype"):  # a list, as SciPy's np.asarray takes it
        A = _np.asarray(A)
    _check_square(A, name)
    A = _as_inexact(A)
    return 1j * A, _dtype_of(A).kind == "c"


def cosm(A):
    """The matrix cosine as SciPy computes it: ``expm(1j A).real`` for real ``A``,
    ``(expm(1j A) + expm(-1j A)) / 2`` for complex (stacks allowed)."""
    iA, is_complex = _trig_arg(A, "cosm")
    if is_complex:
        return 0.5 * (_expm(iA) + _expm(-iA))
    return _expm(iA).real


def sinm(A):
    """The matrix sine as SciPy computes it: ``expm(1j A).imag`` for real ``A``,
    ``-0.5j (expm(1j A) - expm(-1j A))`` for complex (stacks allowed)."""
    iA, is_complex = _trig_arg(A, "sinm")
    if is_complex:
        return -0.5j * (_expm(iA) - _expm(-iA))
    return _expm(iA).imag


def _double(x):
    """``x`` in double precision (float32 -> float64, complex64 -> complex128), the
    dtype SciPy's det and expm_frechet return for single-precision input."""
    x = _as_inexact(x)
    dtype = _np.result_type(_dtype_of(x), _np.float64)
    if _dtype_of(x) == dtype:
        return x
    from ..primitives.elementwise.arithmetic import astype

    return astype(x, dtype)


def expm_frechet(A, E, method=None, compute_expm=True, check_finite=True):
    """``(expm(A), L(A, E))`` (or ``L(A, E)`` alone), differentiable in both; in double
    precision, as SciPy returns them."""
    _check_square(A, "expm_frechet")
    A, E = _double(A), _double(E)
    if tuple(_shape_of(A)) != tuple(_shape_of(E)):
        raise ValueError("expm_frechet: A and E must have the same shape")
    lfrechet = _frechet(A, E)
    return (_expm(A), lfrechet) if compute_expm else lfrechet


def inv(a, overwrite_a=False, check_finite=True, **kwargs):
    """The inverse of a (stack of) square matrices."""
    return _solve.inv(a)


def det(a, overwrite_a=False, check_finite=True):
    """The determinant of a (stack of) square matrices; in double precision, as SciPy
    returns it (np.linalg.det keeps float32)."""
    return _solve.det(_double(a))


def _symmetric_from_triangle(a, lower: bool):
    """Complex *symmetric* (not Hermitian) matrix read from one triangle."""
    n = _shape_of(a)[-1]
    strict = a * _tri_mask(n, lower, True, _dtype_of(a))
    return strict + _mT(strict) + a * _np.eye(n, dtype=_np.finfo(_dtype_of(a)).dtype)


_ASSUME = {None: "gen", "gen": "gen", "general": "gen", "sym": "sym", "symmetric": "sym",
           "her": "her", "hermitian": "her", "pos": "pos", "positive definite": "pos",
           "diagonal": "diagonal", "lower triangular": "lower", "upper triangular": "upper"}


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None,
          transposed=False):
    """``scipy.linalg.solve`` for assume_a in gen/sym/her/pos/diagonal/lower
    triangular/upper triangular (sym/her/pos read one triangle, as SciPy)."""
    kind = _ASSUME.get(assume_a)
    if kind is None:
        raise _unsupported(f"solve: assume_a={assume_a!r} is not supported; use 'gen', 'sym', 'her', "
                           "'pos', 'diagonal' or a triangular structure")
    _check_square(a, "solve")
    a, b = _as_inexact(a), _as_inexact(b)
    if kind in ("lower", "upper"):
        return _solve.triangular_solve(a, b, lower=kind == "lower", trans=1 if transposed else 0)
    if kind == "diagonal":
        d = _diag_part(a)
        return b / (d if _ndim_of(b) == 1 else d[..., :, None])
    if kind == "pos":  # by Cholesky, as SciPy: a matrix that is not positive definite raises LinAlgError
        if _ndim_of(b) == 1 and _ndim_of(a) > 2:  # one vector for a stack: as a column (see cho_solve)
            from ..primitives.shape.basic import reshape

            return solve(a, reshape(b, (_shape_of(b)[0], 1)), lower=lower, assume_a=assume_a,
                         transposed=transposed)[..., 0]
        a = _herm_from_triangle(a, lower=bool(lower))
        factor = _solve.cholesky(_mT(a) if transposed else a)
        y = _solve.triangular_solve(factor, b, lower=True)
        return _solve.triangular_solve(factor, y, lower=True, trans=2)
    if kind == "her":
        a = _herm_from_triangle(a, lower=bool(lower))
    elif kind == "sym":
        a = (_symmetric_from_triangle(a, bool(lower)) if _dtype_of(a).kind == "c"
             else _herm_from_triangle(a, bool(lower)))
    if transposed:
        a = _mT(a)
    return _solve.solve(a, b)


def _check_eigh(kwargs):
    from ..core.context import describe_stack

    bad = [k for k in ("subset_by_index", "subset_by_value", "eigvals") if kwargs.get(k) is not None]
    if bad:
        raise _UnsupportedOperationError(
            f"{describe_stack()}: scipy.linalg.eigh({bad[0]}=...) is not supported on traced values: "
            "compute all eigenvalues and slice them (w = scipy.linalg.eigh(a)[0]; w[lo:hi + 1])")
    if kwargs.get("type", 1) != 1:
        raise _UnsupportedOperationError(
            f"{describe_stack()}: scipy.linalg.eigh(a, b, type={kwargs['type']!r}) is not supported on "
            "traced values (type=1, a v = w b v, is)")


def _reduced(a, b, lower):
    """The standard problem of the generalized ``a v = w b v``, as LAPACK's sygvd
    reduces it: ``c = L^-1 a L^-H`` with ``b = L L^H``; ``v = L^-H v_c``."""
    a = _herm_from_triangle(_as_inexact(a), lower=lower)
    factor = _solve.cholesky(_herm_from_triangle(_as_inexact(b), lower=lower))
    y = _solve.triangular_solve(factor, a, lower=True)
    return _solve.triangular_solve(factor, _mH(y), lower=True), factor


def eigh(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         check_finite=True, driver=None, **kwargs):
    """Eigenvalues (and eigenvectors) of a Hermitian matrix read from one triangle;
    with ``b`` (Hermitian positive definite) the generalized problem ``a v = w b v``,
    reduced by ``b``'s Cholesky factor as LAPACK does (SciPy's values and signs to
    rounding, eigenvectors normalised to ``v^H b v = I``)."""
    _check_eigh(kwargs)
    uplo = "L" if lower else "U"
    factor = None
    if b is not None:  # (the reduced matrix read from the triangle LAPACK's sygst writes)
        a, factor = _reduced(a, b, bool(lower))
    if eigvals_only:
        return _spectral.eigvalsh(a, UPLO=uplo)
    w, v = _spectral.eigh(a, UPLO=uplo)
    if factor is not None:
        v = _solve.triangular_solve(factor, v, lower=True, trans=2)
    return w, v


def eigvalsh(a, b=None, *, lower=True, overwrite_a=False, overwrite_b=False, check_finite=True,
             driver=None, **kwargs):
    """Eigenvalues of a Hermitian matrix (exact derivatives with repeats); with ``b``,
    of the generalized problem ``a v = w b v``."""
    _check_eigh(kwargs)
    if b is not None:
        return _spectral.eigvalsh(_reduced(a, b, bool(lower))[0], UPLO="L" if lower else "U")
    return _spectral.eigvalsh(a, UPLO="L" if lower else "U")


def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
        lapack_driver="gesdd"):
    """``(U, s, Vh)`` or ``s``; see ``np.linalg.svd`` for the derivative conventions."""
    out = _spectral.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(out) if compute_uv else out


def svdvals(a, overwrite_a=False, check_finite=True):
    """Singular values (exact derivatives with repeats)."""
    return _spectral.svd(a, compute_uv=False)


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    """``scipy.linalg.qr`` for modes 'economic', 'r', and 'full' when the
    matrix is not tall (where it equals 'economic'); no pivoting."""
    if pivoting:
        raise _unsupported("qr: pivoting=True is not supported on traced values")
    m, n = _shape_of(a)[-2:]
    if mode == "economic" or (mode == "full" and m <= n):
        return tuple(_spectral.qr(a, mode="reduced"))
    if mode == "r":
        r = _spectral.qr(a, mode="r")
        if m > n:  # SciPy's full-size R: zero rows below
            r = _concatenate_arrays([r, _np.zeros(tuple(_shape_of(r)[:-2]) + (m - n, n), _dtype_of(r))],
                                   _ndim_of(r) - 2)
        return (r,)
    raise _unsupported(f"qr: mode={mode!r} is not supported for this shape on traced values; use "
                       "mode='economic'")


def norm(a, ord=None, axis=None, keepdims=False, check_finite=True):
    """Vector and matrix norms (``np.linalg.norm``); gradient 0 at 0."""
    return _norms.norm(a, ord=ord, axis=axis, keepdims=keepdims)


def pinv(a, *, atol=None, rtol=None, return_rank=False, check_finite=True):
    """The pseudo-inverse with SciPy's cutoff ``atol + rtol * max(s)``
    (``atol`` must be 0/None on traced values)."""
    if atol not in (None, 0, 0.0):
        raise _unsupported("pinv: atol is not supported on traced values; use rtol")
    m, n = _shape_of(a)[-2:]
    if rtol is None:
        rtol = max(m, n) * _np.finfo(_np.finfo(_dtype_of(_as_inexact(a))).dtype).eps
    out = _norms.pinv(a, rcond=rtol)
    if return_rank:
        return out, _norms.matrix_rank(a, rtol=rtol)
    return out


def lstsq(a, b, cond=None, overwrite_a=False, overwrite_b=False, check_finite=True, lapack_driver=None):
    """``(x, residues, rank, s)`` as ``np.linalg.lstsq``; ``cond`` is the
    relative cutoff for small singular values."""
    if _ndim_of(a) > 2 or _ndim_of(b) > 2:  # SciPy >= 1.15 batches here; npfunc's lstsq is NumPy's, 2-D only
        from ..core.context import describe_stack

        raise _UnsupportedOperationError(
            f"{describe_stack()}: scipy.linalg.lstsq of stacked a {tuple(_shape_of(a))} / b {tuple(_shape_of(b))} "
            "(SciPy batches over the leading axes) is not supported on traced values: map the 2-D problem "
            "over the stack, npfunc.vmap(lambda a, b: scipy.linalg.lstsq(a, b)[0])(a, b) (in_dims=None for "
            "the one not stacked), or loop over it.")
    return _norms.lstsq(a, b, rcond=cond)


#: The SciPy functions (keyed by their code objects) that cannot see traced
#: values, with the twin to call instead -- for error messages that name the
#: replacement (the same scheme as in ``npfunc.scipy.special``).
_TWINS: dict = {}
for _name in __all__:
    _target = getattr(_sl, _name, None)
    _target = getattr(_target, "__wrapped__", _target)
    _code = getattr(_target, "__code__", None)
    if _code is not None:
        _TWINS[_code] = f"npfunc.scipy.linalg.{_name}"
if getattr(_dispatch, "TWINS", None) is not None:
    _dispatch.TWINS.update(_TWINS)
del _name, _target, _code

from . import _linalg_samples  # noqa: E402,F401  (registry samples of the twins)

from ._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
