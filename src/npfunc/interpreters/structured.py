"""Structured batches: the standard basis without the O(n²) zeros.

``jacrev`` and ``jacfwd`` push the rows of an identity matrix through a
vjp/jvp under vmap.  Stored densely, the first matrix product turns an O(n²)
Jacobian into O(n³) work.  ``OneHot(scale)`` stands for the batch whose
element ``k`` is ``scale.flat[k]`` times the k-th unit array of
``scale.shape`` -- a scaled identity.  It stays structured through the
operations that keep it one-hot (scaling, reshaping, casting) and becomes a
dense result, at the cost of the result, in products and full sums.  Any
other primitive sees it materialised, so this is purely a fast path: every
rule remains correct without it.

The rules below are keyed by primitive name; each returns ``(out, out_dim)``
or ``None`` to decline (the interpreter then materialises and runs the
ordinary batch rule).
"""
from __future__ import annotations

import importlib
import math
import sys

import numpy as np

from ..core.lazy import deferred
from ..core.values import broadcast_shapes, dtype_of, is_python_scalar, shape_of

# (imported on first use: the primitives are built with this module)
reshape = deferred("npfunc.primitives.shape.basic:reshape", globals(), "reshape")
transpose = deferred("npfunc.primitives.shape.basic:transpose", globals(), "transpose")
_ARITHMETIC = "npfunc.primitives.elementwise.arithmetic"


def _arithmetic(name: str):
    """The elementwise function ``name`` (``multiply``, ``astype`` ...)."""
    return getattr(sys.modules.get(_ARITHMETIC) or importlib.import_module(_ARITHMETIC), name)


class OneHot:
    """Batch value with element k = ``scale.flat[k] * e_k``; batch axis 0.

    ``unit=True`` records that the scale is all ones (the plain basis), so
    products can skip multiplying by it."""

    __slots__ = ("scale", "unit", "size", "shape", "dtype")

    def __init__(self, scale, unit: bool = False) -> None:
        self.scale = scale
        self.unit = unit
        scale_shape = tuple(shape_of(scale))
        self.size = math.prod(scale_shape)
        self.shape = (self.size,) + scale_shape
        self.dtype = dtype_of(scale)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dense(self):
        n = self.size
        eye = np.eye(n, dtype=self.dtype)
        if self.unit:
            return eye.reshape(self.shape)
        return reshape(eye * reshape(self.scale, (1, n)), self.shape)

    def __repr__(self) -> str:
        return f"OneHot(shape={self.shape}, dtype={self.dtype})"


def dense(value):
    return value.dense() if isinstance(value, OneHot) else value


def _scalable(value, scale_shape) -> bool:
    """True if multiplying by ``value`` keeps the shape of the scale (no broadcast growth)."""
    if is_python_scalar(value):
        return True
    shape = tuple(shape_of(value))
    try:
        return broadcast_shapes(shape, tuple(scale_shape)) == tuple(scale_shape)
    except ValueError:
        return False


def _scaled(fn):
    """Rule for x (OneHot) op u (not batched), or u op x for commutative ops."""

    def rule(vals, dims, commutative):
        (a, b), (da, db) = vals, dims
        if isinstance(a, OneHot) and db is None and _scalable(b, shape_of(a.scale)):
            return OneHot(fn(a.scale, b)), 0
        if commutative and isinstance(b, OneHot) and da is None and _scalable(a, shape_of(b.scale)):
            return OneHot(fn(b.scale, a)), 0
        return None

    return rule


def _multiply(vals, dims):
    return _scaled(_arithmetic("multiply"))(vals, dims, True)


def _divide(vals, dims):
    return _scaled(_arithmetic("divide"))(vals, dims, False)


def _add_like(name):
    def rule(vals, dims):
        (a, b) = vals
        if isinstance(a, OneHot) and isinstance(b, OneHot) and shape_of(a.scale) == shape_of(b.scale):
            return OneHot(_arithmetic(name)(a.scale, b.scale)), 0
        return None

    return rule


def _unary(name):
    def rule(vals, dims, **params):
        (a,) = vals
        if not isinstance(a, OneHot):
            return None
        return OneHot(_arithmetic(name)(a.scale, **params)), 0

    return rule


def _reshape(vals, dims, *, shape):
    if len(vals) != 1:
        return None
    return OneHot(reshape(vals[0].scale, shape), vals[0].unit), 0  # C order keeps flat indices


def _astype(vals, dims, *, dtype):
    return OneHot(_arithmetic("astype")(vals[0].scale, dtype), vals[0].unit), 0


def _reduce_sum(vals, dims, *, axes, keepdims):
    (a,) = vals
    if len(axes) != a.ndim - 1:
        return None
    # element k sums to scale.flat[k]
    kept = (1,) * len(axes) if keepdims else ()
    return reshape(a.scale, (a.size,) + kept), 0


def _unit_for(basis: OneHot, other) -> bool:
    """True when multiplying ``other`` by the basis' scale changes nothing, dtype included."""
    return basis.unit and np.result_type(basis.dtype, dtype_of(other)) == dtype_of(other)


def _matmul(vals, dims):
    """A @ e_k picks column k of A; e_k @ A picks row k.  Only 2-D A, and
    one-hot vectors or single-column / single-row matrices."""
    (a, b), (da, db) = vals, dims
    multiply = _arithmetic("multiply")

    if isinstance(b, OneHot) and da is None and len(shape_of(a)) == 2:
        s = b.scale
        sshape = tuple(shape_of(s))
        if len(sshape) == 1 or (len(sshape) == 2 and sshape[1] == 1):
            scaled = a if _unit_for(b, a) else multiply(
                a, reshape(s, (1, -1) if len(sshape) == 1 else (1, sshape[0])))
            cols = transpose(scaled)
            p = shape_of(a)[0]
            return (cols if len(sshape) == 1 else reshape(cols, (sshape[0], p, 1))), 0
    if isinstance(a, OneHot) and db is None and len(shape_of(b)) == 2:
        s = a.scale
        sshape = tuple(shape_of(s))
        if len(sshape) == 1 or (len(sshape) == 2 and sshape[0] == 1):
            n = sshape[-1]
            rows = b if _unit_for(a, b) else multiply(reshape(s, (n, 1)), b)
            return (rows if len(sshape) == 1 else reshape(rows, (n, 1, shape_of(b)[1]))), 0
    return None


RULES = {
    "multiply": _multiply,
    "divide": _divide,
    "add": _add_like("add"),
    "subtract": _add_like("subtract"),
    "negative": _unary("negative"),
    "conjugate": _unary("conjugate"),
    "reshape": _reshape,
    "astype": _astype,
    "reduce_sum": _reduce_sum,
    "matmul": _matmul,
}


def apply(prim, vals, dims, params):
    """The structured result of ``prim`` or None."""
    rule = RULES.get(prim.name)
    if rule is None or not any(isinstance(v, OneHot) for v in vals):
        return None
    return rule(vals, dims, **params)
