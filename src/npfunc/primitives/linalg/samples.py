"""Sample builders for the NumPy linear-algebra functions, called as users
call them: float64 and float32, complex, stacks, every keyword that changes
the result, integer inputs (promoted to float64 as NumPy does), and the
special points of the conventions (norms at the zero matrix and with zero
entries, whose central differences are 0: the documented gradient).
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..sampling import FLOATS, array, int8_array


# ---- matrices with known structure ------------------------------------------------------

def general_matrix(rng, shape, dtype):
    """A well-conditioned square matrix (or stack): random plus a multiple of I."""
    n = shape[-1]
    a = array(rng, shape, np.float64, (-1.0, 1.0)) + 2.0 * np.eye(n) * np.sign(rng.uniform(-1, 1, (n,)))
    return a.astype(dtype)


def spd_matrix(rng, shape, dtype):
    """A symmetric positive definite matrix (or stack) with eigenvalues in about [1, 3]."""
    n = shape[-1]
    b = array(rng, shape, np.float64, (-1.0, 1.0))
    a = b @ np.swapaxes(b, -1, -2) / n + np.eye(n)
    return a.astype(dtype)


def symmetric_matrix(rng, shape, dtype):
    """A symmetric matrix (or stack) with well separated eigenvalues."""
    n = shape[-1]
    q, _ = np.linalg.qr(array(rng, shape, np.float64, (-1.0, 1.0)))
    w = np.linspace(-2.0, 2.0, n) + array(rng, shape[:-1], np.float64, (-0.1, 0.1))
    a = (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)
    return a.astype(dtype)


def complex_matrix(rng, shape, maker, dtype=np.complex128):
    """A complex variant of a real sample maker (Hermitian makers stay Hermitian)."""
    re = maker(rng, shape, np.float64)
    n = shape[-1]
    im = array(rng, shape, np.float64, (-0.5, 0.5))
    if maker is general_matrix:
        return (re + 1j * im).astype(dtype)
    im = im - np.swapaxes(im, -1, -2)  # anti-symmetric: i * im is Hermitian
    return (re + 1j * im * (1 - np.eye(n))).astype(dtype)


def _complex(rng, shape, dtype=np.complex128):
    return (array(rng, shape) + 1j * array(rng, shape, domain=(-1.0, 1.0))).astype(dtype)


# ---- products ------------------------------------------------------------------------------

def pairs(shapes, ints: bool = True, complex_ok: bool = True, **params):
    """Two-operand products over ``shapes`` [(shape_a, shape_b, params), ...]."""
    def make(rng):
        out = []
        for dt in FLOATS:
            for sa, sb, kw in shapes:
                out.append(Sample(array(rng, sa, dt), array(rng, sb, dt), **{**params, **kw}))
        sa, sb, kw = shapes[0]
        out.append(Sample(array(rng, sa, np.float32), array(rng, sb), label="mixed precision", **{**params, **kw}))
        if complex_ok:
            out.append(Sample(_complex(rng, sa), _complex(rng, sb), label="complex", **{**params, **kw}))
            out.append(Sample(_complex(rng, sa), array(rng, sb), label="complex, real", **{**params, **kw}))
        if ints:
            out.append(Sample(int8_array(rng, sa), int8_array(rng, sb), label="int8", **{**params, **kw}))
        return out

    return make


def with_list_operand(make, first, second_shape):
    """``make``'s samples plus one whose first operand is a Python list (the
    z axis in ``np.cross([0.0, 0.0, 1.0], h)``): NumPy makes an array of it."""
    def samples(rng):
        return make(rng) + [Sample(list(first), array(rng, second_shape), argnums=(1,), label="list operand")]

    return samples


matmul = pairs([((2, 3), (3, 4), {}), ((3,), (3, 2), {}), ((2, 3), (3,), {}), ((3,), (3,), {}),
                ((2, 1, 2, 3), (4, 3, 2), {})])
dot = pairs([((2, 3), (3, 4), {}), ((3,), (3,), {}), ((2, 3, 4), (4, 2), {}), ((2, 3), (2, 3, 4), {}),
             ((), (2, 3), {}), ((4,), (2, 4, 3), {})])
vdot = with_list_operand(pairs([((2, 3), (3, 2), {}), ((3,), (3,), {})]), [1.0, -2.0, 0.5], (3,))
inner = pairs([((2, 3), (4, 3), {}), ((3,), (3,), {}), ((2, 3), (3,), {}), ((), (2,), {})])
outer = pairs([((3,), (2,), {}), ((2, 2), (3,), {}), ((), (2,), {})])
kron = pairs([((2, 2), (2, 3), {}), ((3,), (2, 2), {}), ((2, 1, 2), (3, 2), {}), ((), (2,), {})])
tensordot = pairs([((2, 3, 4), (3, 4, 2), {}), ((2, 3), (3, 4), dict(axes=1)), ((2, 3), (4, 2), dict(axes=0)),
                   ((2, 3, 4), (4, 2, 3), dict(axes=([1, 2], [2, 0]))), ((3, 2), (2, 3), dict(axes=(0, 1)))])
linalg_tensordot = pairs([((2, 3, 4), (3, 4, 2), {}), ((2, 3), (3, 4), dict(axes=1)),
                          ((2, 3, 4), (4, 2, 3), dict(axes=([1, 2], [2, 0])))])
_cross_arrays = pairs([((3,), (3,), {}), ((2, 3), (3,), {}), ((2,), (2,), {}), ((2, 2), (3,), {}),
                      ((3, 2), (3, 2), dict(axis=0)), ((3, 4), (4, 3), dict(axisa=0, axisb=1, axisc=0)),
                      ((2, 3), (2, 3), dict(axisc=0))])
cross = with_list_operand(_cross_arrays, [0.0, 0.0, 1.0], (2, 3))
linalg_cross = pairs([((3,), (3,), {}), ((2, 3), (3,), {}), ((3, 2), (3, 2), dict(axis=0))])
linalg_outer = pairs([((3,), (2,), {})])
vecdot = with_list_operand(pairs([((2, 3), (3,), {}), ((3,), (3,), {}), ((3, 2), (3, 2), dict(axis=0)),
                                  ((2, 1, 3), (4, 3), dict(axis=-1))]), [1.0, -2.0, 0.5], (2, 3))
vecdot_ufunc = pairs([((2, 3), (3,), {}), ((3, 2), (3, 2), dict(axis=0)),
                      ((3, 2), (2, 3), dict(axes=[(0,), (1,), ()]))])
matvec = pairs([((2, 3), (3,), {}), ((4, 2, 3), (3,), {}), ((2, 3), (4, 3), {})])
vecmat = with_list_operand(pairs([((2,), (2, 3), {}), ((4, 2), (2, 3), {}), ((2,), (4, 2, 3), {})]),
                           [1.0, -2.0], (2, 3))


def einsum(rng):
    out = []
    for dt in FLOATS:
        a, b, c = array(rng, (2, 3), dt), array(rng, (3, 4), dt), array(rng, (4,), dt)
        out += [Sample("ij,jk->ik", a, b), Sample("ij,jk,k->i", a, b, c), Sample("ij->ji", a),
                Sample("ii->i", array(rng, (3, 3), dt)), Sample("ij,ij", a, a.copy()), Sample("...j,jk", a, b)]
    a = array(rng, (2, 3))
    return out + [Sample("ij,kj->ik", a, array(rng, (4, 3), np.float32), label="mixed precision"),
                  Sample("i,i->", _complex(rng, (3,)), array(rng, (3,)), label="complex"),
                  Sample("ij,jk", int8_array(rng, (2, 3)), int8_array(rng, (3, 2)), label="int8"),
                  Sample("ij,j->i", a.astype(np.float32), array(rng, (3,), np.float32), dtype=np.float64,
                         label="dtype="),
                  Sample("ij,j->i", a, array(rng, (3,)), dtype=np.float32, casting="same_kind",
                         label="dtype= with casting="),
                  Sample("ij,jk,kl->il", a, array(rng, (3, 4)), array(rng, (4, 2)), optimize=True),
                  Sample("ij,ij->i", a, array(rng, (1, 3)), label="size-1 broadcast"),
                  Sample("i,j", array(rng, (2,)), array(rng, (3,)), label="implicit outer"),
                  Sample(a, [0, 1], array(rng, (3, 2)), [1, 2], [0, 2], label="sublists"),
                  Sample("ij,j->i", a, [1.0, -2.0, 0.5], argnums=(1,), label="list operand")]


def multi_dot(rng):
    """Called with the sample's arrays as one list."""
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt), array(rng, (3, 4), dt)),
                Sample(array(rng, (3,), dt), array(rng, (3, 4), dt), array(rng, (4, 2), dt), array(rng, (2,), dt)),
                Sample(array(rng, (5, 2), dt), array(rng, (2, 6), dt), array(rng, (6, 3), dt))]
    return out + [Sample(array(rng, (2, 3)), array(rng, (3,), np.float32), label="mixed precision"),
                  Sample(int8_array(rng, (2, 2)), int8_array(rng, (2, 2)), label="int8")]


def matrix_only(build):
    """``build(x)`` for float64, float32 and int8 stacks of matrices."""
    def make(rng):
        out = []
        for x in [array(rng, (2, 3, 4), dt) for dt in FLOATS] + [int8_array(rng, (2, 3, 4))]:
            out += build(x)
        return out + [Sample(_complex(rng, (3, 3)), label="complex")]

    return make


linalg_matrix_transpose = matrix_only(lambda x: [Sample(x), Sample(x[0])])
linalg_diagonal = matrix_only(lambda x: [Sample(x), Sample(x, offset=1), Sample(x[0], offset=-2)])
linalg_trace = matrix_only(lambda x: [Sample(x), Sample(x, offset=1), Sample(x[0], offset=-1),
                                      Sample(x, dtype=np.float64)])


# ---- solves and decompositions ------------------------------------------------------------

def square(maker, complex_ok: bool = True, ints: bool = True, extra=None):
    """Square (stacks of) matrices from ``maker``, float64/float32/complex/int8."""
    def make(rng):
        out = []
        for dt in FLOATS:
            out += [Sample(maker(rng, (3, 3), dt)), Sample(maker(rng, (2, 3, 3), dt), label="stacked"),
                    Sample(maker(rng, (1, 1), dt), label="1 x 1")]
        if complex_ok:
            out.append(Sample(complex_matrix(rng, (3, 3), maker), label="complex"))
            out.append(Sample(complex_matrix(rng, (3, 3), maker, np.complex64), label="complex64"))
        if ints:
            a = np.round(maker(rng, (3, 3), np.float64) * 3).astype(np.int8)
            out.append(Sample(a, label="int8"))
        if extra is not None:
            out += extra(rng)
        return out

    return make


def _solve_extra(rng):
    a = general_matrix(rng, (3, 3), np.float64)
    return [Sample(a, array(rng, (3, 2)), label="matrix b"), Sample(a, array(rng, (2, 3, 1)), label="stacked b"),
            Sample(general_matrix(rng, (2, 3, 3), np.float32), array(rng, (2, 3, 4), np.float32)),
            Sample(a, array(rng, (3,), np.float32), label="mixed precision"),
            Sample(complex_matrix(rng, (3, 3), general_matrix), array(rng, (3,)), label="complex a")]


def solve(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt), array(rng, (3,), dt)),
                Sample(general_matrix(rng, (2, 3, 3), dt), array(rng, (2, 3, 2), dt))]
    a = np.round(general_matrix(rng, (3, 3), np.float64) * 3).astype(np.int8)
    return out + _solve_extra(rng) + [Sample(a, int8_array(rng, (3,)), label="int8")]


def _singular(rng):
    a = array(rng, (3, 3))
    a[2] = a[0] + a[1]
    return [Sample(a, label="singular", kink=True)]


def _row_swap(rng):
    a = general_matrix(rng, (3, 3), np.float64)
    return [Sample(a[[1, 0, 2]], label="row swap (negative determinant)")]


def matrix_power(rng):
    out = []
    for dt in FLOATS:
        a = general_matrix(rng, (3, 3), dt) / 2
        out += [Sample(a, 3), Sample(a, 0), Sample(a, 1), Sample(a, -2), Sample(general_matrix(rng, (2, 2, 2), dt), 5)]
    return out + [Sample(complex_matrix(rng, (2, 2), general_matrix), 2, label="complex"),
                  Sample(int8_array(rng, (2, 2)) // 40, 3, label="int8"),
                  Sample(np.round(general_matrix(rng, (2, 2), np.float64)).astype(np.int8), -1, label="int8 inverse")]


def cholesky(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(spd_matrix(rng, (3, 3), dt)), Sample(spd_matrix(rng, (2, 3, 3), dt), upper=True)]
    c = complex_matrix(rng, (3, 3), spd_matrix)
    # (no int8 sample: the vmap test permutes integer entries, which breaks positive definiteness)
    return out + [Sample(c), Sample(c, upper=True)]


def eigh(values_only: bool = False):
    def make(rng):
        out = []
        for dt in FLOATS:
            a = symmetric_matrix(rng, (3, 3), dt)
            out += [Sample(a), Sample(symmetric_matrix(rng, (2, 3, 3), dt), "U"), Sample(a, UPLO="L")]
        c = complex_matrix(rng, (3, 3), symmetric_matrix)
        out += [Sample(np.array([[2, 1], [1, -1]], np.int8), label="int8")]
        if values_only:  # phase-free: complex inputs and repeated eigenvalues are exact
            out += [Sample(c), Sample(c, UPLO="U"), Sample(np.eye(3) * 2.0, label="repeated", kink=True)]
        return out

    return make


def svd(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)), Sample(array(rng, (2, 4, 3), dt), full_matrices=False),
                Sample(array(rng, (3, 5), dt), compute_uv=False), Sample(array(rng, (4, 2), dt), False, False)]
    return out + [Sample(array(rng, (4, 2)), label="full matrices of a tall matrix", kink=True),
                  Sample(int8_array(rng, (3, 3)), compute_uv=False, label="int8"),
                  Sample(_complex(rng, (3, 2)), compute_uv=False, label="complex values"),
                  Sample(symmetric_matrix(rng, (3, 3), np.float64), compute_uv=False, hermitian=True),
                  Sample(symmetric_matrix(rng, (2, 3, 3), np.float32), hermitian=True),
                  Sample(complex_matrix(rng, (3, 3), symmetric_matrix), hermitian=True, compute_uv=False),
                  Sample(np.diag([2.0, 2.0, 1.0]), compute_uv=False, label="repeated values", kink=True)]


def svdvals(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 3), dt)), Sample(array(rng, (2, 4, 3), dt))]
    return out + [Sample(int8_array(rng, (2, 3)), label="int8"), Sample(_complex(rng, (3, 2)), label="complex"),
                  Sample(np.diag([2.0, 2.0, 1.0]), label="repeated values", kink=True)]


def qr(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)), Sample(array(rng, (2, 4, 3), dt)),
                Sample(array(rng, (4, 3), dt), "r"), Sample(general_matrix(rng, (3, 3), dt), mode="complete"),
                Sample(array(rng, (2, 3), dt) + np.eye(2, 3, dtype=dt) * 2, mode="complete")]
    return out + [Sample(complex_matrix(rng, (3, 3), general_matrix), label="complex"),
                  Sample(np.round(general_matrix(rng, (3, 3), np.float64) * 3).astype(np.int8), label="int8")]


# ---- norms and least squares ------------------------------------------------------------------

VECTOR_ORDS = (None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1, -2)
MATRIX_ORDS = (None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf)


def norm(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x), Sample(x, axis=1), Sample(x, None, (0, 2)), Sample(x, 2, -1, True),
                Sample(x[0], "fro"), Sample(x, "nuc", (2, 1), keepdims=True)]
    v, m = array(rng, (5,)), array(rng, (3, 4))
    out += [Sample(v, o) for o in VECTOR_ORDS] + [Sample(m, o) for o in MATRIX_ORDS]
    out += [Sample(array(rng, (2, 3)), o, 0, label="vector along axis 0") for o in (1, np.inf, 3)]
    out += [Sample(_complex(rng, (4,)), o, label="complex") for o in (None, 1, np.inf, 3)]
    out += [Sample(_complex(rng, (3, 2)), o, label="complex") for o in ("fro", "nuc", 2, 1)]
    out += [Sample(int8_array(rng, (3, 4)), label="int8"), Sample(int8_array(rng, (3, 4)), 1, 1, label="int8"),
            Sample(int8_array(rng, (3, 4)), "nuc", label="int8")]
    # the conventions: gradient 0 at 0 (central differences of a norm at 0 are 0)
    zeros_m = np.zeros((3, 2))
    out += [Sample(zeros_m, o, label="zero matrix", fd_order=1) for o in MATRIX_ORDS]
    out += [Sample(np.zeros((4,)), o, label="zero vector", fd_order=1) for o in (None, 2, 1, np.inf, 3, -1)]
    out += [Sample(np.zeros((2, 3, 3)), o, (1, 2), label="stack of zero matrices", fd_order=1) for o in ("nuc", 2)]
    zero_entries = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 0.0]])
    out += [Sample(zero_entries, o, 1, label="zero entries", kink=True) for o in (None, 1, 3, -1, -np.inf)]
    out += [Sample(np.zeros((0,)), o, label="empty vector", kink=True) for o in (None, 1, 2, 3, np.inf, 0, -1, -2)]
    out += [Sample(array(rng, (2, 0)), o, 1, label="empty slices", kink=True) for o in (2, np.inf, -1.5)]
    return out


def vector_norm(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x), Sample(x, axis=1), Sample(x, axis=(0, 2), keepdims=True), Sample(x, ord=1, axis=-1),
                Sample(x, ord=np.inf), Sample(x, ord=3, axis=(1, 2))]
    out += [Sample(array(rng, (5,)), ord=o) for o in VECTOR_ORDS if o is not None]
    return out + [Sample(int8_array(rng, (3, 4)), label="int8"), Sample(_complex(rng, (4,)), ord=1),
                  Sample(np.zeros((3, 2)), label="zero", fd_order=1), Sample(np.zeros((3, 2)), ord=1, fd_order=1),
                  Sample(np.zeros((0,)), ord=-1, label="empty", kink=True)]


def matrix_norm(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x), Sample(x, keepdims=True), Sample(x, ord="nuc"), Sample(x, ord=2, keepdims=True)]
    out += [Sample(array(rng, (3, 4)), ord=o) for o in MATRIX_ORDS if o is not None]
    out += [Sample(np.zeros((2, 3, 2)), ord=o, label="zero matrices", fd_order=1) for o in ("fro", "nuc", 2, -2, 1)]
    return out + [Sample(int8_array(rng, (3, 3)), ord="nuc", label="int8"), Sample(_complex(rng, (2, 2)), ord=2)]


def cond(rng):
    out = []
    for dt in FLOATS:
        a = general_matrix(rng, (3, 3), dt)
        out += [Sample(a), Sample(general_matrix(rng, (2, 3, 3), dt), 2)]
    a = general_matrix(rng, (3, 3), np.float64)
    out += [Sample(a, p) for p in (-2, 1, -1, np.inf, -np.inf, "fro", "nuc")]
    return out + [Sample(array(rng, (3, 2)), label="rectangular"), Sample(array(rng, (2, 3)), -2, label="wide"),
                  Sample(complex_matrix(rng, (3, 3), general_matrix), label="complex"),
                  Sample(np.round(general_matrix(rng, (3, 3), np.float64) * 3).astype(np.int8), label="int8")]


def matrix_rank(rng):
    low = array(rng, (4, 2)) @ array(rng, (2, 3))
    out = [Sample(array(rng, (3, 4))), Sample(low, label="rank 2"), Sample(low, 1e-3), Sample(low, rtol=0.5),
           Sample(array(rng, (2, 3, 3)), label="stacked"), Sample(array(rng, (4,)), label="vector"),
           Sample(np.zeros((3,)), label="zero vector"), Sample(np.zeros((2, 2)), label="zero matrix"),
           Sample(symmetric_matrix(rng, (3, 3), np.float64), hermitian=True),
           Sample(int8_array(rng, (3, 3)), label="int8"), Sample(array(rng, (3, 3), np.float32), label="float32")]
    return out


def pinv(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)), Sample(array(rng, (2, 4, 3), dt)),
                Sample(array(rng, (3, 5), dt), 1e-10), Sample(symmetric_matrix(rng, (3, 3), dt), hermitian=True)]
    low = array(rng, (4, 2)) @ array(rng, (2, 3))
    return out + [Sample(low, rtol=1e-4, label="rank 2, cut above the difference step"),
                  Sample(low, rcond=1e-4, label="rank 2"),
                  Sample(_complex(rng, (3, 2)), label="complex"), Sample(int8_array(rng, (2, 3)), label="int8")]


def lstsq(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5, 3), dt), array(rng, (5,), dt)),
                Sample(array(rng, (5, 3), dt), array(rng, (5, 2), dt), None),
                Sample(array(rng, (2, 4), dt), array(rng, (2,), dt), label="wide")]
    low = array(rng, (5, 2)) @ array(rng, (2, 3))
    return out + [Sample(general_matrix(rng, (3, 3), np.float64), array(rng, (3,)), label="square"),
                  Sample(low.T.copy(), array(rng, (3,)), 1e-4, label="rank deficient, wide"),
                  Sample(array(rng, (4, 2), np.float32), array(rng, (4,)), label="mixed precision"),
                  Sample(int8_array(rng, (4, 2)), int8_array(rng, (4,)), label="int8")]
