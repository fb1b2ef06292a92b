"""Norms and least squares: the vector 2-norm and pinv (primitives); norm,
vector_norm, matrix_norm, cond, matrix_rank and lstsq (composites).

Conventions: the 2-norm (and every norm built on it, 'fro' included) has
gradient 0 at 0, like ``abs``; vectors with some zero entries get finite
gradients for ``ord`` >= 1 (p-norms with ``0 < p < 1`` are not Lipschitz at
0 and give non-finite derivatives there).  The 2, -2 and 'nuc' matrix
norms use only singular values, so repeated singular values are exact.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...interpreters.batching import BatchTracer
from .common import (as_inexact, check_matrix, general_matrix, herm_from_triangle, mH,
                                    real_dtype, safe_reciprocal, stacked_batch)
from .solve import inv
from .spectral import eigvalsh, svd
from ..elementwise.arithmetic import absolute, astype, not_equal, power, stop_gradient, where
from ..families import composite, conj, expand_reduced, normalize_axes, primal_value, reduction
from . import samples
from .products import matmul
from ..reductions.basic import max as reduce_max, min as reduce_min, reduce_sum, sum as sum_
from ..sampling import FLOATS, array
from ..shape.basic import moveaxis, reshape

# ---- the vector 2-norm ------------------------------------------------------------------


def _sq_abs(x):
    return (x.real * x.real + x.imag * x.imag) if dtype_of(x).kind == "c" else x * x


def _norm2_impl(x, *, axes, keepdims):
    return np.sqrt(np.sum(_sq_abs(np.asarray(x)), axis=axes, keepdims=keepdims))


def _norm2_jvp(primals, tangents, out, *, axes, keepdims):
    (x,), (t,) = primals, tangents
    dot = conj(x) * t
    if dtype_of(dot).kind == "c":
        dot = dot.real
    return reduce_sum(dot, axes=axes, keepdims=keepdims) * safe_reciprocal(out)


def _norm2_vjp(g, primals, out, needs, *, axes, keepdims):
    (x,) = primals
    return (expand_reduced(g * safe_reciprocal(out), axes, keepdims, shape_of(x)) * x,)


def _norm2_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x, axes=(0, 1, 2), keepdims=False), Sample(x, axes=(2,), keepdims=True),
                Sample(x, axes=(0, 2), keepdims=False)]
    z = np.array([[0.0, 0.0, 0.0], [0.0, 1.5, -2.0]])
    out += [Sample(z, axes=(1,), keepdims=False, label="zero row and zero entries", kink=True),
            Sample(array(rng, (3,)) + 1j * array(rng, (3,)), axes=(0,), keepdims=False, label="complex")]
    return out


_norm2 = reduction("vector_norm2", _norm2_impl, jvp=_norm2_jvp, vjp=_norm2_vjp, samples=_norm2_samples,
                   notes="gradient 0 at 0 (and finite with some zero entries)")


def norm2(x, axes, keepdims=False):
    """The 2-norm over ``axes`` (sorted non-negative ints), for rule writers."""
    return _norm2.bind(x, axes=tuple(axes), keepdims=bool(keepdims))


# ---- norm ---------------------------------------------------------------------------------


def _vector_norm(x, ord, axes, keepdims):
    if ord is None or ord == 2:
        return norm2(x, axes, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    ax = absolute(x)
    if ord == np.inf:  # 0 for an empty vector, as NumPy (max with initial=0)
        return reduce_max(ax, axis=axes, keepdims=keepdims, initial=0)
    if ord == -np.inf:
        return reduce_min(ax, axis=axes, keepdims=keepdims)
    if ord == 0:
        return reduce_sum(astype(not_equal(x, 0), real_dtype(dtype_of(x))), axes=axes, keepdims=keepdims)
    if ord == 1:
        return reduce_sum(ax, axes=axes, keepdims=keepdims)
    p = float(ord)
    if p < 0:
        return _negative_order_norm(ax, p, axes, keepdims)
    total = reduce_sum(power(ax, p), axes=axes, keepdims=keepdims)
    zero_total = total == 0  # the double where: no 0 ** (1/p - 1) in the derivative
    return where(zero_total, 0, power(where(zero_total, 1, total), 1.0 / p))


def _negative_order_norm(ax, p, axes, keepdims):
    """``sum(|x| ** p) ** (1 / p)`` for ``p < 0``: 0 when an entry is 0 (with
    gradient 0, like ``abs`` at 0: the function is Lipschitz there) and inf
    for an empty vector (the empty sum is 0), both as NumPy's values."""
    zero_entry = ax == 0
    total = reduce_sum(power(where(zero_entry, 1, ax), p), axes=axes, keepdims=keepdims)
    has_zero = reduce_sum(astype(zero_entry, np.intp), axes=axes, keepdims=keepdims) > 0
    empty = total == 0
    value = where(empty, np.inf, power(where(empty, 1, total), 1.0 / p))
    return where(has_zero, 0, value)


def _matrix_norm(x, ord, row, col, keepdims):
    if ord in (None, "fro", "f"):
        return norm2(x, tuple(sorted((row, col))), keepdims)
    if ord in (2, -2, "nuc"):
        out = _singular_value_norm(moveaxis(x, (row, col), (-2, -1)), ord)
    elif ord in (1, -1, np.inf, -np.inf):
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = reduce_sum(absolute(x), axes=(summed,), keepdims=True)
        out = (reduce_max if ord > 0 else reduce_min)(sums, axis=other, keepdims=True)
        if keepdims:
            return out
        return reshape(out, tuple(n for i, n in enumerate(shape_of(x)) if i not in (row, col)))
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    if keepdims:
        shape = list(shape_of(x))
        shape[row] = shape[col] = 1
        out = reshape(out, tuple(shape))
    return out


def _singular_value_norm(x, ord):
    """The 2, -2 or nuclear norm of the (stacked) last two axes of ``x``.

    At the zero matrix every singular vector is a valid one, and LAPACK's
    choice would make the nuclear norm's gradient ``U V^H`` (an identity):
    the documented gradient there is 0 (the minimum-norm subgradient, as for
    ``abs``, the 2-norm and 'fro').  So zero matrices are replaced by a fixed
    matrix with distinct singular values ("double where"), whose derivative
    is then masked: 0 to every order, never NaN."""
    m, n = shape_of(x)[-2:]
    fro = norm2(x, (ndim_of(x) - 2, ndim_of(x) - 1), keepdims=True)
    is_zero = fro == 0
    if isinstance(is_zero, Tracer) or np.any(is_zero):
        k = min(m, n)
        filler = np.zeros((m, n), real_dtype(dtype_of(x)))
        filler[np.arange(k), np.arange(k)] = np.arange(k, 0, -1)
        x = where(is_zero, filler, x)
    s = svd(x, compute_uv=False)
    if ord == "nuc":
        out = reduce_sum(s, axes=(ndim_of(s) - 1,))
    elif ord == 2:  # 0 for an empty matrix, as NumPy
        out = reduce_max(s, axis=-1, initial=0)
    else:
        out = reduce_min(s, axis=-1)
    if isinstance(is_zero, Tracer) or np.any(is_zero):
        out = where(is_zero[..., 0, 0], 0, out)
    return out


@composite(np.linalg.norm, samples=samples.norm, scalars=True)
def norm(x, ord=None, axis=None, keepdims=False):
    """``np.linalg.norm``: vector ords (None/2, 1, inf, -inf, 0, any p) and
    matrix ords ('fro', 'nuc', 2, -2, 1, -1, inf, -inf) over an int or a
    pair of axes, with ``keepdims``.  The gradient at 0 is 0."""
    x = as_inexact(x)
    nd = ndim_of(x)
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            return norm2(x, tuple(range(nd)), keepdims)
        if nd not in (1, 2):
            raise ValueError("norm: improper number of dimensions to norm (give axis, or ord=None)")
        axis = tuple(range(nd))
    elif isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    axis = tuple(axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, normalize_axes(axis, nd, "norm"), keepdims)
    if len(axis) == 2:
        row, col = (int(a) % nd if -nd <= a < nd else None for a in axis)
        if row is None or col is None:
            raise np.exceptions.AxisError(f"norm: axis {axis} is out of bounds for an array of dimension {nd}")
        if row == col:
            raise ValueError("norm: duplicate axes given")
        return _matrix_norm(x, ord, row, col, keepdims)
    raise ValueError("norm: improper number of dimensions to norm (axis has more than two entries)")


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """``np.linalg.vector_norm`` (any number of axes, flattened when None)."""
    x = as_inexact(x)
    nd = ndim_of(x)
    axes = normalize_axes(axis, nd, "vector_norm")
    return _vector_norm(x, ord, axes, keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """``np.linalg.matrix_norm`` over the last two axes."""
    check_matrix(x, "matrix_norm")
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


for _name, _fn in (("vector_norm", vector_norm), ("matrix_norm", matrix_norm)):
    if hasattr(np.linalg, _name):
        composite(getattr(np.linalg, _name), samples=getattr(samples, _name), scalars=True)(_fn)


@composite(np.linalg.cond, samples=samples.cond)
def cond(x, p=None):
    """``np.linalg.cond`` (composite): singular values for p in (None, 2, -2),
    ``norm(x, p) * norm(inv(x), p)`` otherwise."""
    check_matrix(x, "cond")
    x = as_inexact(x)
    if p in (None, 2, -2):
        s = svd(x, compute_uv=False)
        big, small = s[..., 0], s[..., -1]
        return big / small if p != -2 else small / big
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


@composite(np.linalg.matrix_rank, samples=samples.matrix_rank, differentiable=False)
def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """``np.linalg.matrix_rank``: an integer, no derivative."""
    A = stop_gradient(as_inexact(A))
    if ndim_of(A) < 2:
        nonzero = reduce_sum(astype(not_equal(A, 0), np.int64), axes=tuple(range(ndim_of(A))))
        return astype(nonzero > 0, np.int64)
    s = absolute(eigvalsh(A)) if hermitian else svd(A, compute_uv=False)
    if tol is None:
        m, n = shape_of(A)[-2:]
        rtol = max(m, n) * np.finfo(real_dtype(dtype_of(A))).eps if rtol is None else rtol
        tol = reduce_max(s, axis=-1, keepdims=True) * rtol
    else:
        tol = np.asarray(tol)[..., None]
    return reduce_sum(astype(s > tol, np.int64), axes=(ndim_of(s) - 1,))


# ---- pinv ---------------------------------------------------------------------------------


def _pinv_jvp(primals, tangents, out, *, rcond, hermitian):
    (a,), (t,) = primals, tangents
    p = out
    th = mH(t)
    term1 = -matmul(p, matmul(t, p))
    term2 = matmul(matmul(p, mH(p)), th - matmul(matmul(th, a), p))
    term3 = matmul(th - matmul(p, matmul(a, th)), matmul(mH(p), p))
    return term1 + term2 + term3


def _pinv_vjp(g, primals, out, needs, *, rcond, hermitian):
    (a,) = primals
    p = out
    gh = mH(g)
    term1 = -matmul(mH(p), matmul(g, mH(p)))
    term2 = matmul(gh - matmul(a, matmul(p, gh)), matmul(p, mH(p)))
    term3 = matmul(matmul(mH(p), p), gh - matmul(matmul(gh, p), a))
    return (term1 + term2 + term3,)


def _pinv_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt), rcond=1e-15, hermitian=False),
                Sample(array(rng, (2, 4, 3), dt), rcond=1e-15, hermitian=False, label="tall"),
                Sample(array(rng, (3, 5), dt), rcond=1e-15, hermitian=False, label="wide")]
    u = array(rng, (4, 2))
    out.append(Sample(u @ array(rng, (2, 3)), rcond=1e-4, hermitian=False, label="rank 2, cut above the FD step"))
    out.append(Sample(array(rng, (3, 2)) + 1j * array(rng, (3, 2)), rcond=1e-15, hermitian=False,
                      label="complex"))
    return out


_pinv = Primitive(
    "pinv", lambda a, *, rcond, hermitian: np.linalg.pinv(a, rcond=rcond, hermitian=hermitian),
    jvp=_pinv_jvp, vjp=_pinv_vjp, samples=_pinv_samples,
    notes="the derivative of the pseudo-inverse at constant rank (Golub-Pereyra); singular values "
          "below the cutoff are treated as exact zeros")
_pinv.batch = stacked_batch(_pinv)

_NO_VALUE = getattr(np, "_NoValue", object())


@composite(np.linalg.pinv, samples=samples.pinv)
def pinv(a, rcond=None, hermitian=False, *, rtol=_NO_VALUE):
    """``np.linalg.pinv`` (scalar ``rcond``/``rtol`` on traced values).  The
    derivative holds where the rank is constant; with ``hermitian=True`` only
    the lower triangle is read, as in NumPy."""
    check_matrix(a, "pinv")
    a = as_inexact(a)
    if rtol is not _NO_VALUE:
        if rcond is not None:
            raise ValueError("pinv: pass rcond or rtol, not both")
        m, n = shape_of(a)[-2:]
        rcond = max(m, n) * np.finfo(real_dtype(dtype_of(a))).eps if rtol is None else rtol
    elif rcond is None:
        rcond = 1e-15
    if np.ndim(rcond) != 0 and not isinstance(a, Tracer) and not isinstance(rcond, Tracer):
        return np.linalg.pinv(a, rcond=rcond, hermitian=hermitian)  # a cutoff per matrix: NumPy's own
    if np.ndim(rcond) != 0 or isinstance(rcond, Tracer):
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError("pinv: rcond/rtol must be a plain scalar on traced values")
    if hermitian:
        a = herm_from_triangle(a, lower=True)
    return _pinv.bind(a, rcond=float(rcond), hermitian=bool(hermitian))


pinv.primitive = _pinv  # type: ignore[attr-defined]


# ---- lstsq ----------------------------------------------------------------------------------

def _concrete_int(x):
    """``int(x)`` when ``x`` has a value here (a plain value, or a primal under grad
    and jvp), else None (batched by vmap, or recorded by jit: no single value yet)."""
    x = primal_value(x)
    return None if x is None or isinstance(x, Tracer) else int(x)


def _check_batch_full_rank(rank, n):
    """Under vmap NumPy would return residuals for the full-rank batch elements
    only (a ragged result): raise when a batch element is rank-deficient."""
    val = rank
    while isinstance(val, BatchTracer):
        val = val.val
    if isinstance(val, Tracer):  # recorded by jit: every replay checks the full rank the residuals assume
        from ..data_dependent import check
        from ...core.errors import UnsupportedOperationError

        check(rank == n, "true", f"np.linalg.lstsq: a is rank-deficient (rank < {n}), for which NumPy returns "
              "empty residuals, where the recorded program returns them. For the solution alone write "
              "np.linalg.pinv(a, rcond) @ b; for the residuals, np.sum(abs(b - a @ x) ** 2, axis=0)",
              UnsupportedOperationError)
        return
    if np.any(np.asarray(val) != n):
        from ...core.context import describe_stack
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            f"{describe_stack()}: np.linalg.lstsq: some batch elements have rank < {n}, for which NumPy "
            "returns empty residuals (the batched result would be ragged). Compute the residuals "
            "yourself: np.sum(abs(b - a @ x) ** 2, axis=0).")


@composite(np.linalg.lstsq, samples=samples.lstsq, scalars=True)
def lstsq(a, b, rcond=None):
    """``np.linalg.lstsq`` (composite): ``(x, residuals, rank, s)`` with
    ``x = pinv(a, rcond) @ b``; ``x``, ``residuals`` and ``s`` are
    differentiable, ``rank`` is an integer.  Under vmap the rank may differ
    across the batch, so residuals are returned whenever ``m > n`` (NumPy
    returns an empty array for rank-deficient ``a``)."""
    a, b = as_inexact(a), as_inexact(b)
    common = np.result_type(dtype_of(a), dtype_of(b))  # NumPy solves in the common dtype
    a, b = astype(a, common), astype(b, common)
    if ndim_of(a) != 2 or ndim_of(b) not in (1, 2):
        raise np.linalg.LinAlgError("lstsq: a must be 2-D and b 1-D or 2-D")
    m, n = shape_of(a)
    if shape_of(b)[0] != m:
        raise np.linalg.LinAlgError("lstsq: incompatible dimensions of a and b")
    eps = np.finfo(real_dtype(np.result_type(dtype_of(a), dtype_of(b)))).eps
    rcond = eps * max(m, n) if rcond is None else rcond
    x = matmul(_pinv.bind(a, rcond=float(rcond), hermitian=False), b)
    s = svd(a, compute_uv=False)
    rank = sum_(stop_gradient(s) > rcond * stop_gradient(s)[..., :1], axis=0, dtype=np.intc)
    concrete_rank = _concrete_int(rank)
    if concrete_rank is not None:
        rank = np.intc(concrete_rank)  # NumPy's type for it
    elif m > n:
        _check_batch_full_rank(rank, n)
    if m > n and (concrete_rank is None or concrete_rank == n):
        r = b - matmul(a, x)
        resid = reduce_sum(_sq_abs(r), axes=(0,))
        if ndim_of(b) == 1:
            resid = reshape(resid, (1,))
    else:
        resid = np.empty((0,), dtype=real_dtype(dtype_of(x)))
    return x, resid, rank, s

