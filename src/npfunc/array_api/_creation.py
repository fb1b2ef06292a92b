"""Creation functions.

Constants (``arange``, ``eye``, ``linspace`` ...) are plain NumPy arrays.
Buffers (``zeros``, ``ones``, ``empty``, ``full``, the ``*_like`` functions
and ``asarray(..., copy=True)``) made while a transform runs are constants of
that transform (NumPy's ``like=`` arrays), so code that writes traced values
into them works, as it does with JAX's arrays.
"""
from __future__ import annotations

import numpy as np

from ._base import array_out, check_device, fn, traced, writable_buffer
from ._dtypes import as_dtype


def _dtype(dtype, where):
    return None if dtype is None else as_dtype(dtype, where)


def _has_tracer(obj) -> bool:
    if traced(obj):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tracer(o) for o in obj)
    return False


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """``obj`` as an array: a traced value is returned as it is (or copied with
    ``copy=True``); nested lists of traced values are stacked.

    >>> import npfunc, npfunc.array_api as xp
    >>> float(npfunc.grad(lambda t: xp.sum(xp.asarray([t, 2 * t])))(1.0))
    3.0
    """
    check_device(device, "asarray")
    dtype = _dtype(dtype, "asarray")
    if traced(obj):
        if dtype is not None and dtype != obj.dtype:
            if copy is False:
                raise ValueError("npfunc.array_api.asarray: copy=False, but a cast to another dtype copies")
            return fn("astype")(obj, dtype)
        return array_out(fn("copy")(obj) if copy else obj)
    if _has_tracer(obj):
        if copy is False:
            raise ValueError("npfunc.array_api.asarray: copy=False, but building an array from a "
                             "sequence copies")
        return fn("asarray")(obj, dtype=dtype)
    if copy is False and not isinstance(obj, np.ndarray) and not hasattr(obj, "__buffer__") \
            and not hasattr(obj, "__array__"):
        raise ValueError("npfunc.array_api.asarray: copy=False, but a Python object must be copied "
                         "into a new array")
    out = np.asarray(obj, dtype=dtype, copy=copy)
    return writable_buffer(out) if copy else out


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    check_device(device, "arange")
    return np.arange(start, stop, step, dtype=_dtype(dtype, "arange"))


def empty(shape, *, dtype=None, device=None):
    check_device(device, "empty")
    return writable_buffer(np.zeros(shape, dtype=_dtype(dtype, "empty")))


def zeros(shape, *, dtype=None, device=None):
    check_device(device, "zeros")
    return writable_buffer(np.zeros(shape, dtype=_dtype(dtype, "zeros")))


def ones(shape, *, dtype=None, device=None):
    check_device(device, "ones")
    return writable_buffer(np.ones(shape, dtype=_dtype(dtype, "ones")))


def full(shape, fill_value, *, dtype=None, device=None):
    """An array of ``shape`` filled with ``fill_value`` (traced when the fill is)."""
    check_device(device, "full")
    dtype = _dtype(dtype, "full")
    if traced(fill_value):
        return fn("full")(shape, fill_value, dtype=dtype)
    if dtype is None and isinstance(fill_value, np.ndarray):
        dtype = fill_value.dtype
    return writable_buffer(np.full(shape, fill_value, dtype=dtype))


def _like(name, x, dtype, device, fill):
    """A new buffer shaped like ``x`` (its shape as the function sees it, also under vmap)."""
    check_device(device, name)
    dtype = x.dtype if dtype is None else as_dtype(dtype, name)
    if traced(fill):
        return fn("full_like")(x, fill, dtype=dtype)
    return writable_buffer(np.full(x.shape, fill, dtype=dtype))


def empty_like(x, /, *, dtype=None, device=None):
    return _like("empty_like", x, dtype, device, 0)


def zeros_like(x, /, *, dtype=None, device=None):
    return _like("zeros_like", x, dtype, device, 0)


def ones_like(x, /, *, dtype=None, device=None):
    return _like("ones_like", x, dtype, device, 1)


def full_like(x, /, fill_value, *, dtype=None, device=None):
    return _like("full_like", x, dtype, device, fill_value)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    check_device(device, "eye")
    return np.eye(n_rows, n_cols, k=k, dtype=_dtype(dtype, "eye"))


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    """``num`` evenly spaced values (differentiable in traced ends)."""
    check_device(device, "linspace")
    dtype = _dtype(dtype, "linspace")
    if dtype is None and not any(isinstance(v, complex) or getattr(v, "dtype", np.dtype(float)).kind == "c"
                                 for v in (start, stop)):
        dtype = np.dtype(np.float64)
    return fn("linspace")(start, stop, num, endpoint=endpoint, dtype=dtype)


def meshgrid(*arrays, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError(f"npfunc.array_api.meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    return list(fn("meshgrid")(*arrays, indexing=indexing))


def tril(x, /, *, k=0):
    return fn("tril")(x, k=k)


def triu(x, /, *, k=0):
    return fn("triu")(x, k=k)


def from_dlpack(x, /, *, device=None, copy=None):
    """A plain array from a DLPack producer (traced values have no memory to share)."""
    check_device(device, "from_dlpack")
    if traced(x):
        return fn("copy")(x) if copy else x
    return np.from_dlpack(x, copy=copy)
