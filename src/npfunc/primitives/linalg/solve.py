"""Linear solves and what derives from them: triangular_solve, solve, inv,
det, slogdet (primitives), cholesky (primitive) and matrix_power (composite).

No rule forms an inverse that a solve can replace: the derivative of
``x = solve(a, b)`` solves with ``a`` (or ``a^H``) again, ``cholesky``
differentiates through triangular solves with its own factor, and only
the rules whose result *is* an inverse (the VJPs of ``det``/``slogdet``)
solve against the identity.  Singular matrices raise NumPy's
``LinAlgError`` in the rules, as they do in the values of ``solve`` and
``inv``; ``det`` and ``slogdet`` have values there, so their rules raise
``SingularMatrixError`` (a ``LinAlgError``) saying so.

Functions that LAPACK computes from one triangle of the input (``cholesky``,
``triangular_solve``) are differentiated as the function NumPy/SciPy
computes: the entries never read get a zero derivative.  For a Hermitian
perturbation this is the usual symmetric derivative.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import NpfuncError
from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from .common import (add_tangents, as_inexact, check_square,
                                    complex_matrix, diag_embed, eye, general_matrix,
                                    herm_from_triangle, herm_from_triangle_adjoint, mH, mT,
                                    matrix_trace, masked, real_dtype, solve_batch, spd_matrix,
                                    stacked_batch, tri_mask)
from ..elementwise.arithmetic import imag, real
from ..families import composite, conj, fit_cotangent
from . import samples
from .products import matmul
from ..sampling import FLOATS, array
from ..shape.basic import broadcast_to, reshape

# ---- triangular_solve -------------------------------------------------------------------


def _trisolve_impl(a, b, *, lower, trans, unit_diagonal):
    if np.ndim(a) == 2 and np.ndim(b) == 2:  # one matrix: LAPACK's O(n^2) substitution
        from scipy.linalg import solve_triangular

        return solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal,
                                check_finite=False)
    # A stack: SciPy would loop over it in Python, so solve the triangle with
    # NumPy's vectorised LU instead (same solution up to rounding).
    n = np.shape(a)[-1]
    tri = np.where(np.tri(n, dtype=bool) if lower else np.tri(n, dtype=bool).T, a, 0)
    if unit_diagonal:
        tri = np.where(np.eye(n, dtype=bool), 1, tri)
    tri = tri if trans == 0 else np.swapaxes(tri, -1, -2)
    if trans == 2:
        tri = np.conj(tri)
    dtype = np.result_type(a, b)
    return np.linalg.solve(tri.astype(dtype, copy=False), np.asarray(b).astype(dtype, copy=False))


def _op(x, trans):
    """``x``, ``x^T`` or ``x^H`` for LAPACK's trans = 0, 1, 2."""
    return x if trans == 0 else mT(x) if trans == 1 else mH(x)


def _read_mask(a, lower, unit_diagonal):
    """The entries of ``a`` a triangular solve reads."""
    return tri_mask(shape_of(a)[-1], lower, unit_diagonal, dtype_of(a))


def _trisolve_jvp(primals, tangents, out, *, lower, trans, unit_diagonal):
    a, (ta, tb) = primals[0], tangents
    rhs = tb
    if ta is not zero:
        da = _op(masked(ta, _read_mask(a, lower, unit_diagonal)), trans)
        rhs = add_tangents(rhs, -matmul(da, out))
    return _trisolve.bind(a, rhs, lower=lower, trans=trans, unit_diagonal=unit_diagonal)


def _adjoint_solve(a, g, lower, trans, unit_diagonal):
    """``op(tri(a))^{-H} g``: the transpose of the solve, itself a triangular solve."""
    params = dict(lower=lower, unit_diagonal=unit_diagonal)
    if dtype_of(a).kind != "c":
        return _trisolve.bind(a, g, trans=0 if trans else 1, **params)
    if trans == 1:  # (a^T)^H = conj(a): solve with a and conjugate around it
        return conj(_trisolve.bind(a, conj(g), trans=0, **params))
    return _trisolve.bind(a, g, trans=2 - trans, **params)


def _trisolve_vjp(g, primals, out, needs, *, lower, trans, unit_diagonal):
    a, b = primals
    gb = _adjoint_solve(a, g, lower, trans, unit_diagonal)
    ga = zero
    if needs[0]:
        ga = masked(_op(-matmul(gb, mH(out)), trans), _read_mask(a, lower, unit_diagonal))
    return fit_cotangent(ga, a), fit_cotangent(gb, b) if needs[1] else zero


def _trisolve_samples(rng):
    out = []
    for dt in FLOATS:
        a = general_matrix(rng, (3, 3), dt)  # both triangles filled: only one may be read
        out += [
            Sample(a, array(rng, (3, 2), dt), lower=True, trans=0, unit_diagonal=False),
            Sample(a, array(rng, (3, 2), dt), lower=False, trans=1, unit_diagonal=False),
            Sample(a, array(rng, (3, 1), dt), lower=True, trans=2, unit_diagonal=True),
            Sample(general_matrix(rng, (2, 3, 3), dt), array(rng, (3, 2), dt), lower=False, trans=0,
                   unit_diagonal=False, label="stacked a"),
            Sample(a, array(rng, (2, 3, 1), dt), lower=True, trans=1, unit_diagonal=False,
                   label="stacked b"),
        ]
    c = complex_matrix(rng, (3, 3), general_matrix)
    for trans in (0, 1, 2):
        out.append(Sample(c, array(rng, (3, 2)) + 1j * array(rng, (3, 2)), lower=trans != 1, trans=trans,
                          unit_diagonal=False, label="complex"))
    out.append(Sample(general_matrix(rng, (3, 3), np.float32), array(rng, (3, 2)), lower=True, trans=0,
                      unit_diagonal=False, label="mixed precision"))
    return out


_trisolve = Primitive("triangular_solve", _trisolve_impl, jvp=_trisolve_jvp, vjp=_trisolve_vjp,
                      samples=_trisolve_samples,
                      notes="reads one triangle of a (unit_diagonal: not its diagonal); the other "
                            "entries get a zero derivative")
_trisolve.batch = solve_batch(_trisolve)


def triangular_solve(a, b, *, lower: bool, trans: int = 0, unit_diagonal: bool = False):
    """Solve ``op(tri(a)) x = b`` for stacks of triangular ``a``.

    ``trans`` is 0 (``a``), 1 (``a^T``) or 2 (``a^H``); ``b`` is a vector
    when 1-D, otherwise a stack of matrices whose leading axes broadcast
    against ``a``'s.
    """
    check_square(a, "solve_triangular")
    a, b = as_inexact(a), as_inexact(b)
    if ndim_of(b) == 1:
        x = _trisolve.bind(a, reshape(b, (shape_of(b)[0], 1)), lower=bool(lower), trans=int(trans),
                           unit_diagonal=bool(unit_diagonal))
        return x[..., 0]
    return _trisolve.bind(a, b, lower=bool(lower), trans=int(trans), unit_diagonal=bool(unit_diagonal))


triangular_solve.primitive = _trisolve  # type: ignore[attr-defined]


def solve_right_triangular(x, r, *, lower: bool, adjoint: bool = False):
    """``x @ tri(r)^{-1}`` (or ``x @ tri(r)^{-H}`` with ``adjoint``), by a
    triangular solve with ``r^H`` -- no inverse is formed."""
    return mH(_trisolve.bind(r, mH(x), lower=lower, trans=0 if adjoint else 2, unit_diagonal=False))


# ---- solve ---------------------------------------------------------------------------


def _solve_jvp(primals, tangents, out):
    a, (ta, tb) = primals[0], tangents
    rhs = add_tangents(tb, zero if ta is zero else -matmul(ta, out))
    return _solve.bind(a, rhs)


def _solve_vjp(g, primals, out, needs):
    a, b = primals
    gb = _solve.bind(mH(a), g)
    ga = -matmul(gb, mH(out)) if needs[0] else zero
    return fit_cotangent(ga, a), fit_cotangent(gb, b) if needs[1] else zero


def _solve_samples(rng):
    out = []
    for dt in FLOATS:
        out += [
            Sample(general_matrix(rng, (3, 3), dt), array(rng, (3, 2), dt)),
            Sample(general_matrix(rng, (2, 3, 3), dt), array(rng, (2, 3, 1), dt), label="stacked"),
            Sample(general_matrix(rng, (2, 1, 3, 3), dt), array(rng, (4, 3, 2), dt), label="broadcast"),
        ]
    out.append(Sample(complex_matrix(rng, (3, 3), general_matrix), array(rng, (3, 2)) + 0.5j,
                      label="complex"))
    out.append(Sample(general_matrix(rng, (3, 3), np.float32), array(rng, (3, 2)), label="mixed precision"))
    return out


_solve = Primitive("solve", lambda a, b: np.linalg.solve(a, b), jvp=_solve_jvp, vjp=_solve_vjp,
                   samples=_solve_samples)
_solve.batch = solve_batch(_solve)


@composite(np.linalg.solve, samples=samples.solve)
def solve(a, b):
    """``np.linalg.solve``: ``b`` is a vector when 1-D, else a (stack of)
    matrices; leading axes broadcast.  Derivatives solve with ``a``/``a^H``."""
    check_square(a, "solve")
    a, b = as_inexact(a), as_inexact(b)
    if ndim_of(b) == 1:
        return _solve.bind(a, reshape(b, (shape_of(b)[0], 1)))[..., 0]
    return _solve.bind(a, b)


solve.primitive = _solve  # type: ignore[attr-defined]

# ---- inv ---------------------------------------------------------------------------


def _square_samples(maker, extra=()):
    def make(rng):
        out = []
        for dt in FLOATS:
            out += [Sample(maker(rng, (3, 3), dt)), Sample(maker(rng, (2, 3, 3), dt), label="stacked"),
                    Sample(maker(rng, (1, 2, 2), dt))]
        out.append(Sample(complex_matrix(rng, (3, 3), maker), label="complex"))
        return out + [s for build in extra for s in build(rng)]

    return make


_inv = Primitive(
    "inv", np.linalg.inv,
    jvp=lambda primals, tangents, out: -matmul(out, matmul(tangents[0], out)),
    vjp=lambda g, primals, out, needs: (-matmul(mH(out), matmul(g, mH(out))),),
    samples=_square_samples(general_matrix),
    notes="the rules use the output (the inverse itself); no other inverse is formed")
_inv.batch = stacked_batch(_inv)


@composite(np.linalg.inv, samples=samples.square(general_matrix))
def inv(a):
    """``np.linalg.inv`` for traced and plain values (stacks of matrices)."""
    check_square(a, "inv")
    return _inv.bind(as_inexact(a))


inv.primitive = _inv  # type: ignore[attr-defined]


# ---- det and slogdet ------------------------------------------------------------------

class SingularMatrixError(NpfuncError, np.linalg.LinAlgError):
    """The derivative of det / slogdet at an exactly singular matrix, whose value NumPy
    gives (0, or sign 0 and -inf) but whose derivative solves with the matrix."""


def _singular_solve(a, b, name: str):
    """``solve(a, b)`` for the rules of det / slogdet: NumPy's values do not raise at an
    exactly singular ``a``, so its LinAlgError from the solve here needs to say why."""
    try:
        return _solve.bind(a, b)
    except SingularMatrixError:
        raise
    except np.linalg.LinAlgError as e:
        from ...core.context import describe_stack

        where = describe_stack()  # (a pullback runs after its transform returned: "npfunc")
        why = ("log|det| has no finite derivative there" if name == "slogdet" else
               "npfunc differentiates det by a solve with the matrix, which fails there (docs/linalg.md)")
        raise SingularMatrixError(
            f"{'' if where == 'npfunc' else where + ': '}the derivative of np.linalg.{name} at an exactly "
            f"singular matrix ({e}): NumPy gives the value, but {why}. Keep the matrix away from "
            "singular, e.g. add eps * np.eye(n).") from None


def _solve_identity(a, scale, name="det"):
    """``a^{-1} * scale[..., None, None]`` computed as one solve."""
    if isinstance(scale, (int, float, complex, np.generic)):  # scalar arithmetic drops to Python
        scale = np.asarray(scale)
    n = shape_of(a)[-1]
    return _singular_solve(a, diag_embed(broadcast_to(scale[..., None], tuple(shape_of(scale)) + (n,))), name)


def _det_vjp(g, primals, out, needs):
    (a,) = primals
    return (fit_cotangent(_solve_identity(mH(a), g * conj(out)), a),)


def _negative_det_sample(rng):
    a = general_matrix(rng, (3, 3), np.float64)
    return [Sample(a[[1, 0, 2]], label="row swap")]


_det = Primitive(
    "det", np.linalg.det,
    jvp=lambda primals, tangents, out: out * matrix_trace(_singular_solve(primals[0], tangents[0], "det")),
    vjp=_det_vjp, samples=_square_samples(general_matrix, (_negative_det_sample,)),
    notes="derivative through solves with a; an exactly singular a raises LinAlgError")
_det.batch = stacked_batch(_det)


@composite(np.linalg.det, samples=samples.square(general_matrix, extra=samples._row_swap))
def det(a):
    """``np.linalg.det`` for traced and plain values (stacks of matrices)."""
    check_square(a, "det")
    return _det.bind(as_inexact(a))


det.primitive = _det  # type: ignore[attr-defined]


def _slogdet_jvp(primals, tangents, out):
    (a,), (t,) = primals, tangents
    sign, _ = out
    tau = matrix_trace(_singular_solve(a, t, "slogdet"))
    if dtype_of(a).kind != "c":
        return zero, tau
    return sign * (1j * imag(tau)), real(tau)


def _slogdet_vjp(g, primals, out, needs):
    (a,) = primals
    g_sign, g_log = g
    sign, logabs = out
    coef = zero if g_log is zero else g_log
    if dtype_of(a).kind == "c" and g_sign is not zero:
        coef = add_tangents(coef, -1j * imag(conj(g_sign) * sign))
    if coef is zero:
        return (zero,)
    return (fit_cotangent(_solve_identity(mH(a), coef, "slogdet"), a),)


_slogdet = Primitive(
    "slogdet", lambda a: tuple(np.linalg.slogdet(a)), jvp=_slogdet_jvp, vjp=_slogdet_vjp,
    multiple_results=True, samples=_square_samples(general_matrix, (_negative_det_sample,)),
    notes="the sign of a real matrix is piecewise constant (zero derivative); logabsdet is "
          "differentiated through solves with a")
_slogdet.batch = stacked_batch(_slogdet)

try:  # NumPy >= 2 returns named tuples
    from numpy.linalg._linalg import SlogdetResult
except ImportError:  # pragma: no cover
    from collections import namedtuple

    SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])


@composite(np.linalg.slogdet, samples=samples.square(general_matrix, extra=samples._row_swap), scalars=True)
def slogdet(a):
    """``np.linalg.slogdet``: ``(sign, logabsdet)``; only ``logabsdet`` (and
    the phase of a complex ``sign``) carries a derivative."""
    check_square(a, "slogdet")
    return SlogdetResult(*_slogdet.bind(as_inexact(a)))


slogdet.primitive = _slogdet  # type: ignore[attr-defined]


# ---- cholesky ---------------------------------------------------------------------

def _cholesky_impl(a, *, upper):
    if not upper:
        return np.linalg.cholesky(a)
    try:
        return np.linalg.cholesky(a, upper=True)
    except TypeError:  # pragma: no cover - NumPy 1.x: the lower factor of a^H, mirrored
        return np.conj(np.swapaxes(np.linalg.cholesky(np.conj(np.swapaxes(a, -1, -2))), -1, -2))


def _phi_mask(n, dtype):
    """Strictly lower triangle plus half the diagonal."""
    return tri_mask(n, True, True, dtype) + 0.5 * eye(n, real_dtype(dtype))


def _cholesky_jvp(primals, tangents, out, *, upper):
    (t,) = tangents
    low = mH(out) if upper else out
    e = herm_from_triangle(t, lower=not upper)
    y = _trisolve.bind(low, e, lower=True, trans=0, unit_diagonal=False)       # L^-1 E
    x = mH(_trisolve.bind(low, mH(y), lower=True, trans=0, unit_diagonal=False))  # L^-1 E L^-H
    d_low = matmul(low, x * _phi_mask(shape_of(x)[-1], dtype_of(x)))
    return mH(d_low) if upper else d_low


def _cholesky_vjp(g, primals, out, needs, *, upper):
    (a,) = primals
    low = mH(out) if upper else out
    g_low = mH(g) if upper else g
    s = matmul(mH(low), g_low) * _phi_mask(shape_of(low)[-1], dtype_of(low))
    z = _trisolve.bind(low, s, lower=True, trans=2, unit_diagonal=False)          # L^-H S
    w = mH(_trisolve.bind(low, mH(z), lower=True, trans=2, unit_diagonal=False))  # L^-H S L^-1
    return (fit_cotangent(herm_from_triangle_adjoint(w, lower=not upper), a),)


def _cholesky_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(spd_matrix(rng, (3, 3), dt), upper=False),
                Sample(spd_matrix(rng, (2, 3, 3), dt), upper=False, label="stacked"),
                Sample(spd_matrix(rng, (2, 3, 3), dt), upper=True, label="stacked")]
    c = complex_matrix(rng, (3, 3), spd_matrix)
    out += [Sample(c, upper=False, label="complex"), Sample(c, upper=True, label="complex")]
    return out


_cholesky = Primitive(
    "cholesky", _cholesky_impl, jvp=_cholesky_jvp, vjp=_cholesky_vjp, samples=_cholesky_samples,
    notes="reads one triangle of a (the lower one, or the upper with upper=True), so entries of the "
          "other get a zero derivative; rules use triangular solves with the factor")
_cholesky.batch = stacked_batch(_cholesky)


@composite(np.linalg.cholesky, samples=samples.cholesky)
def cholesky(a, /, *, upper=False):
    """``np.linalg.cholesky`` (lower factor, or upper with ``upper=True``).

    Only the triangle LAPACK reads carries a derivative, so the gradient
    with respect to ``a`` itself is triangular; for a Hermitian
    perturbation (e.g. ``a = b @ b.T``) this is the symmetric derivative.
    """
    check_square(a, "cholesky")
    return _cholesky.bind(as_inexact(a), upper=bool(upper))


cholesky.primitive = _cholesky  # type: ignore[attr-defined]


# ---- matrix_power ---------------------------------------------------------------

@composite(np.linalg.matrix_power, samples=samples.matrix_power)
def matrix_power(a, n):
    """``np.linalg.matrix_power`` (composite): repeated squaring with matmul;
    ``n == 0`` gives the identity (no derivative) and ``n < 0`` uses ``inv``."""
    n_sq = check_square(a, "matrix_power")
    try:
        n = int(n.__index__())
    except (AttributeError, TypeError):
        raise TypeError("matrix_power: exponent must be an integer") from None
    if n == 0:
        shape = tuple(shape_of(a))
        return np.broadcast_to(np.eye(n_sq, dtype=dtype_of(a)), shape).copy()
    if n < 0:
        a, n = inv(a), -n
    result = None
    base = a
    while True:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if not n:
            return result
        base = matmul(base, base)
