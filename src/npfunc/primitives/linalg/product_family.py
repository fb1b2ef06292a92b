"""Products built on matmul and einsum (all composites): vdot, inner, outer,
kron, tensordot, cross, multi_dot, and the array-API spellings
(``np.linalg.vecdot``, ``np.vecdot``, ``np.matvec``, ``np.vecmat``,
``np.linalg.matrix_transpose``, ``np.linalg.trace``, ``np.linalg.diagonal``,
``np.linalg.outer``, ``np.linalg.cross``, ``np.linalg.tensordot``,
``np.linalg.matmul``).  Their derivatives and batching come from the
einsum / matmul / elementwise rules."""
from __future__ import annotations

import string
import warnings

import numpy as np

from ...core.errors import UnsupportedOperationError
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import multiply
from ..families import composite, conj
from ..sampling import sequence_call
from . import samples
from .products import array_operands, einsum, matmul
from ..indexing.aliasing import array_result
from ..shape.basic import moveaxis, ravel, reshape, swapaxes

_LETTERS = string.ascii_letters


def _no_out(name, out):
    if out is not None:
        raise UnsupportedOperationError(f"np.{name}(..., out=...) is not supported on traced values; "
                                        "assign the result instead")


@composite(np.vdot, samples=samples.vdot, scalars=True)
def vdot(a, b, /):
    """``np.vdot``: flattens both, conjugates the first."""
    a, b = array_operands(a, b)
    return einsum("i,i->", conj(ravel(a)), ravel(b))


@composite(np.inner, samples=samples.inner, scalars=True)
def inner(a, b, /):
    """``np.inner``: contraction over the last axes."""
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return multiply(*array_operands(a, b))  # a Python scalar is a float64/int64 array here
    sa = _LETTERS[:na - 1]
    sb = _LETTERS[na - 1:na + nb - 2]
    z = _LETTERS[na + nb - 2]
    return einsum(f"{sa}{z},{sb}{z}->{sa}{sb}", a, b)


@composite(np.outer, samples=samples.outer)
def outer(a, b, out=None):
    """``np.outer``: both inputs flattened."""
    _no_out("outer", out)
    return multiply(reshape(ravel(a), (-1, 1)), reshape(ravel(b), (1, -1)))


@composite(np.kron, samples=samples.kron)
def kron(a, b):
    """``np.kron``: the block (Kronecker) product, for any ranks."""
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return multiply(*array_operands(a, b))  # a Python scalar is a float64/int64 array here
    nd = max(na, nb)
    sa = (1,) * (nd - na) + tuple(shape_of(a))
    sb = (1,) * (nd - nb) + tuple(shape_of(b))
    ra = reshape(a, tuple(x for n in sa for x in (n, 1)))
    rb = reshape(b, tuple(x for n in sb for x in (1, n)))
    return reshape(multiply(ra, rb), tuple(p * q for p, q in zip(sa, sb)))


def _axes_list(axes, nd):
    axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    return [int(a) % nd if nd else int(a) for a in axes]


@composite(np.tensordot, samples=samples.tensordot)
def tensordot(a, b, axes=2):
    """``np.tensordot``: ``axes`` an int N (last N of ``a`` with first N of
    ``b``) or a pair of axis sequences (or ints)."""
    na, nb = ndim_of(a), ndim_of(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0:
            raise ValueError("tensordot: axes must be a non-negative integer")
        ax_a, ax_b = list(range(na - n, na)), list(range(n))
    else:
        try:
            first, second = axes
        except (TypeError, ValueError):
            raise TypeError("tensordot: axes must be an int or a pair of axis sequences") from None
        ax_a, ax_b = _axes_list(first, na), _axes_list(second, nb)
    if len(ax_a) != len(ax_b):
        raise ValueError("tensordot: shape-mismatch for sum (the axis lists differ in length)")
    for i, j in zip(ax_a, ax_b):
        if shape_of(a)[i] != shape_of(b)[j]:
            raise ValueError(f"tensordot: shape-mismatch for sum (axis {i} of a has size "
                             f"{shape_of(a)[i]}, axis {j} of b has size {shape_of(b)[j]})")
    letters = iter(_LETTERS)
    sa = [next(letters) for _ in range(na)]
    sb = [next(letters) for _ in range(nb)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = [sa[i] for i in range(na) if i not in ax_a] + [sb[j] for j in range(nb) if j not in ax_b]
    # NumPy's tensordot returns an array, a 0-d one for a full contraction (einsum gives a scalar)
    return array_result(einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b))


@composite(np.linalg.tensordot, samples=samples.linalg_tensordot)
def linalg_tensordot(x1, x2, /, *, axes=2):
    """``np.linalg.tensordot`` (array-API spelling of tensordot)."""
    return tensordot(x1, x2, axes)


def _levi_civita(na: int, nb: int, dtype):
    """``eps[i, j, k]`` restricted to the first ``na`` / ``nb`` components of
    the operands (2-vectors have a zero third component)."""
    eps = np.zeros((3, 3, 3), dtype=dtype)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        eps[i, j, k], eps[i, k, j] = 1, np.array(-1).astype(dtype)  # wraps for unsigned dtypes, as NumPy's
    return eps[:, :na, :nb]


#: NumPy 2.0 deprecated 2-vectors in np.cross (a DeprecationWarning each call)
_CROSS_2D_DEPRECATED = int(np.__version__.split(".")[0]) >= 2


@composite(np.cross, samples=samples.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """``np.cross`` of 2- or 3-vectors along ``axisa``/``axisb``, result
    along ``axisc`` (``axis`` sets all three); leading axes broadcast."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = array_operands(a, b)
    a = moveaxis(a, axisa, -1)
    b = moveaxis(b, axisb, -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("cross: incompatible dimensions for cross product (dimension must be 2 or 3)")
    if (na == 2 or nb == 2) and _CROSS_2D_DEPRECATED:  # NumPy's warning (under jit, when recording)
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of 3-dimensional vectors "
                      "instead. (deprecated in NumPy 2.0)", DeprecationWarning, stacklevel=2)
    eps = _levi_civita(na, nb, np.result_type(dtype_of(a), dtype_of(b)))
    if na == nb == 2:
        return array_result(einsum("...j,...k,jk->...", a, b, eps[2]))  # 0-d: still an array
    out = einsum("...j,...k,ijk->...i", a, b, eps)
    return moveaxis(out, -1, axisc)


@composite(np.linalg.cross, samples=samples.linalg_cross)
def linalg_cross(x1, x2, /, *, axis=-1):
    """``np.linalg.cross``: 3-vectors only."""
    if shape_of(x1)[axis] != 3 or shape_of(x2)[axis] != 3:
        raise ValueError("linalg.cross: both inputs must have 3 components along axis")
    return cross(x1, x2, axis=axis)


@composite(np.linalg.outer, samples=samples.linalg_outer)
def linalg_outer(x1, x2, /):
    """``np.linalg.outer``: 1-D inputs only."""
    if ndim_of(x1) != 1 or ndim_of(x2) != 1:
        raise ValueError("linalg.outer: the inputs must be 1-dimensional")
    return outer(x1, x2)


@composite(np.linalg.matmul, samples=samples.matmul)
def linalg_matmul(x1, x2, /):
    """``np.linalg.matmul``."""
    return matmul(x1, x2)


@composite(np.linalg.trace, samples=samples.linalg_trace)
def linalg_trace(x, /, *, offset=0, dtype=None):
    """``np.linalg.trace``: the trace of the last two axes."""
    from ..reductions.basic import sum as sum_
    from ..shape.arranging import diagonal

    # a sum, not an einsum: small integers promote as in NumPy (no int8 overflow)
    return sum_(diagonal(x, int(offset), -2, -1), axis=-1, dtype=dtype)


@composite(np.linalg.vecdot, samples=samples.vecdot)
def vecdot(x1, x2, /, *, axis=-1):
    """``np.linalg.vecdot``: ``sum(conj(x1) * x2, axis)`` with broadcasting."""
    x1, x2 = array_operands(x1, x2)
    n1, n2 = shape_of(x1)[axis], shape_of(x2)[axis]
    if n1 != n2:  # the vectors themselves are not broadcast
        raise ValueError(f"vecdot: the vectors along axis {axis} have lengths {n1} and {n2}")
    prod = multiply(conj(x1), x2)
    return einsum("...i->...", moveaxis(prod, axis, -1))


if isinstance(getattr(np, "vecdot", None), np.ufunc):
    def _vecdot_ufunc(x1, x2, /, *, axis=-1, axes=None, **kwargs):
        if axes is not None:  # [(axis of x1,), (axis of x2,), ()]
            x1, x2, axis = moveaxis(x1, axes[0][0], -1), moveaxis(x2, axes[1][0], -1), -1
        return vecdot(x1, x2, axis=axis)

    composite(np.vecdot, samples=samples.vecdot_ufunc)(_vecdot_ufunc)

if isinstance(getattr(np, "matvec", None), np.ufunc):
    composite(np.matvec, samples=samples.matvec)(
        lambda x1, x2, /, **kwargs: einsum("...ij,...j->...i", x1, x2))
    composite(np.vecmat, samples=samples.vecmat)(
        lambda x1, x2, /, **kwargs: einsum("...i,...ij->...j", conj(array_operands(x1)[0]), x2))


# ---- multi_dot -------------------------------------------------------------------------

def _chain_order(dims):
    """Optimal parenthesisation of a matrix chain with sizes ``dims`` (the
    classic O(n^3) dynamic programme); returns the split table."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(arrays, split, i, j):
    if i == j:
        return arrays[i]
    k = split[i][j]
    return matmul(_chain(arrays, split, i, k), _chain(arrays, split, k + 1, j))


@composite(np.linalg.multi_dot, samples=samples.multi_dot, call=sequence_call, scalars=True)
def multi_dot(arrays, *, out=None):
    """``np.linalg.multi_dot``: matmuls in the cheapest order; the first and
    last arrays may be 1-D."""
    _no_out("linalg.multi_dot", out)
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays")
    first_vec, last_vec = ndim_of(arrays[0]) == 1, ndim_of(arrays[-1]) == 1
    if first_vec:
        arrays[0] = reshape(arrays[0], (1, -1))
    if last_vec:
        arrays[-1] = reshape(arrays[-1], (-1, 1))
    for k, a in enumerate(arrays):
        if ndim_of(a) != 2:
            raise ValueError(f"multi_dot: array {k} is {ndim_of(a)}-dimensional, but it must be 2-dimensional")
    dims = [shape_of(a)[0] for a in arrays] + [shape_of(arrays[-1])[1]]
    result = _chain(arrays, _chain_order(dims), 0, len(arrays) - 1)
    if first_vec and last_vec:
        return reshape(result, ())
    if first_vec or last_vec:
        return reshape(result, (-1,))
    return result

