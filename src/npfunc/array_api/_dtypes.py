"""Data types and the data type functions of the standard.

The dtype objects are NumPy's scalar types (``float64 is numpy.float64``), as
in ``array_api_compat.numpy``: ``x.dtype == float64`` holds for plain and
traced arrays, and every dtype can be passed on to NumPy.  NumPy 2's
promotion (NEP 50: Python scalars take the array's dtype) is the standard's
wherever the standard specifies one.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..core.tracer import Tracer
from ._base import array_out, check_device, fn

bool = np.bool_  # noqa: A001 - the standard's name
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
float32, float64 = np.float32, np.float64
complex64, complex128 = np.complex64, np.complex128

DTYPES = {"bool": bool, "int8": int8, "int16": int16, "int32": int32, "int64": int64, "uint8": uint8,
          "uint16": uint16, "uint32": uint32, "uint64": uint64, "float32": float32, "float64": float64,
          "complex64": complex64, "complex128": complex128}
_SUPPORTED = frozenset(np.dtype(t) for t in DTYPES.values())
_PY_SCALARS = (builtins.bool, int, float, complex)
_KINDS = ("bool", "signed integer", "unsigned integer", "integral", "real floating", "complex floating",
          "numeric")


def as_dtype(dtype, where: str) -> np.dtype:
    """``dtype`` as a NumPy dtype, refusing those outside the standard."""
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"npfunc.array_api.{where}: {dtype!r} is not a data type") from None
    if out not in _SUPPORTED:
        raise TypeError(f"npfunc.array_api.{where}: {out} is not one of the standard's data types "
                        f"({', '.join(DTYPES)})")
    return out


def _dtype_of(x, where: str) -> np.dtype:
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    return as_dtype(x, where)


def isdtype(dtype, kind) -> builtins.bool:
    """Whether ``dtype`` is of ``kind`` (a dtype, a kind name or a tuple of them).

    >>> import npfunc.array_api as xp
    >>> xp.isdtype(xp.float32, ("integral", "real floating")), xp.isdtype(xp.int8, "unsigned integer")
    (True, False)
    """
    dtype = as_dtype(dtype, "isdtype")
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"npfunc.array_api.isdtype: unknown kind {kind!r}, expected one of {_KINDS}")
        return np.isdtype(dtype, kind)
    return dtype == as_dtype(kind, "isdtype")


def result_type(*arrays_and_dtypes) -> np.dtype:
    """The dtype the standard's promotion gives (Python scalars are weak, NEP 50).

    >>> import numpy as np, npfunc.array_api as xp
    >>> xp.result_type(xp.int8, xp.int16), xp.result_type(np.zeros(2, np.float32), 1.0)
    (dtype('int16'), dtype('float32'))
    """
    if not arrays_and_dtypes:
        raise ValueError("npfunc.array_api.result_type: at least one array or dtype is required")
    args = []
    for a in arrays_and_dtypes:
        if isinstance(a, _PY_SCALARS):
            args.append(a)
        else:
            args.append(_dtype_of(a, "result_type"))
    if all(isinstance(a, _PY_SCALARS) for a in args):
        raise ValueError("npfunc.array_api.result_type: at least one array or dtype is required "
                         "(Python scalars alone have no result type)")
    return np.result_type(*args)  # NumPy 2 treats Python scalars as weak (NEP 50)


def can_cast(from_, to, /) -> builtins.bool:
    """Whether ``from_`` (a dtype or an array) casts to ``to`` under the promotion rules."""
    return builtins.bool(np.can_cast(_dtype_of(from_, "can_cast"), as_dtype(to, "can_cast"), casting="safe"))


class finfo_object:  # noqa: N801 - the standard's name
    """Machine limits of a floating dtype, as Python floats (the standard's ``finfo``)."""

    __slots__ = ("bits", "eps", "max", "min", "smallest_normal", "dtype")

    def __init__(self, bits: int, eps: float, max: float, min: float, smallest_normal: float,  # noqa: A002
                 dtype: np.dtype) -> None:
        self.bits, self.eps, self.max, self.min = bits, eps, max, min
        self.smallest_normal, self.dtype = smallest_normal, dtype

    def __repr__(self) -> str:
        return f"finfo_object(bits={self.bits}, eps={self.eps}, dtype={self.dtype})"


class iinfo_object:  # noqa: N801
    """Machine limits of an integer dtype, as Python ints."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, bits: int, max: int, min: int, dtype: np.dtype) -> None:  # noqa: A002
        self.bits, self.max, self.min, self.dtype = bits, max, min, dtype

    def __repr__(self) -> str:
        return f"iinfo_object(bits={self.bits}, min={self.min}, max={self.max}, dtype={self.dtype})"


def finfo(type, /) -> finfo_object:  # noqa: A002 - the standard's parameter name
    dtype = _dtype_of(type, "finfo")
    if dtype.kind not in "fc":
        raise ValueError(f"npfunc.array_api.finfo: {dtype} is not a floating-point data type")
    info = np.finfo(dtype)
    return finfo_object(int(info.bits), float(info.eps), float(info.max), float(info.min),
                        float(info.smallest_normal), info.dtype)


def iinfo(type, /) -> iinfo_object:  # noqa: A002
    dtype = _dtype_of(type, "iinfo")
    if dtype.kind not in "iu":
        raise ValueError(f"npfunc.array_api.iinfo: {dtype} is not an integer data type")
    info = np.iinfo(dtype)
    return iinfo_object(int(info.bits), int(info.max), int(info.min), info.dtype)


def astype(x, dtype, /, *, copy: builtins.bool = True, device=None):
    """``x`` cast to ``dtype`` (a new array unless ``copy=False`` and nothing changes).

    Casting a complex array to a real dtype raises: say which part you mean
    (``xp.real(x)`` or ``xp.imag(x)``)."""
    check_device(device, "astype")
    dtype = as_dtype(dtype, "astype")
    if x.dtype.kind == "c" and dtype.kind != "c":
        raise TypeError(f"npfunc.array_api.astype: casting complex {x.dtype} to {dtype} would drop the "
                        "imaginary part; cast xp.real(x) or xp.imag(x) instead")
    return array_out(fn("astype")(x, dtype, copy=copy))
