"""``npfunc.array_api.linalg``: the standard's linear algebra extension.

Each function is npfunc's ``np.linalg`` function (differentiable and
batchable), under the standard's signature and result types.

>>> import numpy as np, npfunc
>>> from npfunc.array_api import linalg
>>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
>>> npfunc.grad(lambda a: linalg.slogdet(a).logabsdet)(a).round(3)
array([[ 0.6, -0.2],
       [-0.2,  0.4]])
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..core import dispatch as _dispatch
from ._base import array_out, arrays_out, fn
from ._manipulation import matmul, matrix_transpose, tensordot, vecdot

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


def _la(name: str):
    """npfunc's implementation of ``np.linalg.<name>``."""
    return _dispatch.FUNCTIONS[getattr(np.linalg, name)]


def cholesky(x, /, *, upper=False):
    """The Cholesky factor: lower ``L`` with ``x = L L^H``, or ``U = L^H`` with ``upper=True``."""
    lower = _la("cholesky")(x)
    return fn("conjugate")(matrix_transpose(lower)) if upper else lower


def cross(x1, x2, /, *, axis=-1):
    return _la("cross")(x1, x2, axis=axis)


def det(x, /):
    return array_out(_la("det")(x))


def diagonal(x, /, *, offset=0):
    return _la("diagonal")(x, offset=offset)


def eigh(x, /):
    return EighResult(*_la("eigh")(x))


def eigvalsh(x, /):
    return _la("eigvalsh")(x)


def inv(x, /):
    return _la("inv")(x)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002 - the standard's name
    return array_out(_la("matrix_norm")(x, keepdims=keepdims, ord=ord))


def matrix_power(x, n, /):
    return _la("matrix_power")(x, n)


def matrix_rank(x, /, *, rtol=None):
    return array_out(_la("matrix_rank")(x, rtol=rtol))


def outer(x1, x2, /):
    return _la("outer")(x1, x2)


def pinv(x, /, *, rtol=None):
    return _la("pinv")(x, rtol=rtol)


def qr(x, /, *, mode="reduced"):
    if mode not in ("reduced", "complete"):
        raise ValueError(f"npfunc.array_api.linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    return QRResult(*_la("qr")(x, mode=mode))


def slogdet(x, /):
    return SlogdetResult(*arrays_out(_la("slogdet")(x)))


def solve(x1, x2, /):
    """The solution of ``x1 @ out = x2``; a 1-d ``x2`` is a vector (the standard's rule)."""
    return _la("solve")(x1, x2)


def svd(x, /, *, full_matrices=True):
    return SVDResult(*_la("svd")(x, full_matrices=full_matrices))


def svdvals(x, /):
    return _la("svdvals")(x)


def trace(x, /, *, offset=0, dtype=None):
    return array_out(_la("trace")(x, offset=offset, dtype=dtype))


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    return array_out(_la("vector_norm")(x, axis=axis, keepdims=keepdims, ord=ord))


__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
           "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve", "svd",
           "svdvals", "tensordot", "trace", "vecdot", "vector_norm"]
