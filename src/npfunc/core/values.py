"""Small helpers that read shape and dtype of any value npfunc meets:
plain ndarrays, NumPy and Python scalars, and traced values."""
from __future__ import annotations

import numpy as np

from .tracer import Tracer

_PY_SCALARS = (bool, int, float, complex)
#: The Python number types themselves (a type test: isinstance of a traced value asks its
#: ``__class__`` property, a Python call, once per type)
PYTHON_NUMBERS = frozenset(_PY_SCALARS)
#: NumPy's own array and scalar types (not subclasses: np.matrix's ``*`` is a product)
NUMPY_TYPES = frozenset([np.ndarray, *set(np.sctypeDict.values())])


# (Tracer first: ``isinstance(tracer, np.ndarray)`` asks the tracer's ``__class__``
# property, a Python call; a match on Tracer never gets there.)


def shape_of(x) -> tuple:
    if type(x) is np.ndarray or isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.shape
    shape = getattr(x, "shape", None)  # e.g. a structured batch value
    return shape if shape is not None else np.shape(x)


def ndim_of(x) -> int:
    return len(shape_of(x))


_FLOAT64 = np.dtype(np.float64)


def dtype_of(x) -> np.dtype:
    if type(x) is np.ndarray or isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    if type(x) is float:
        return _FLOAT64
    dtype = getattr(x, "dtype", None)
    return dtype if dtype is not None else np.result_type(x)


def is_inexact_dtype(dtype) -> bool:
    return dtype.kind in "fc"


def is_inexact(x) -> bool:
    """True for floating or complex values: the only ones that carry derivatives."""
    tx = type(x)
    if tx is np.ndarray:  # the hot cases, without the generic lookup
        return x.dtype.kind in "fc"
    if tx is np.float64:
        return True
    return dtype_of(x).kind in "fc"


def is_python_scalar(x) -> bool:
    return isinstance(x, _PY_SCALARS)


def is_array_like(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic) + _PY_SCALARS)


def broadcast_shapes(*shapes) -> tuple:
    """``np.broadcast_shapes`` for tuples of ints, in Python (NumPy's builds
    arrays and costs about 3 µs; this is called on every structured product and
    matmul rule).  Raises NumPy's ``ValueError`` on shapes that do not broadcast."""
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    rank = max(map(len, shapes), default=0)
    out = [1] * rank
    for shape in shapes:
        offset = rank - len(shape)
        for i, n in enumerate(shape):
            m = out[offset + i]
            if m == 1:
                out[offset + i] = n
            elif n != 1 and n != m:
                return np.broadcast_shapes(*shapes)  # NumPy's error, with its message
    return tuple(out)
