"""NumPy functions that only read shape or dtype: no primitive, no derivative."""
from __future__ import annotations

import math

import numpy as np

from ...core.tracer import Tracer
from ..families import composite, normalize_axes
from . import samples


def _plain(x):
    """Something NumPy's metadata functions accept in place of a traced value."""
    return x.dtype if isinstance(x, Tracer) else x


@composite(np.result_type, samples=samples.result_type, differentiable=False, call=samples.uses_metadata)
def result_type(*arrays_and_dtypes):
    return np.result_type(*[_plain(a) for a in arrays_and_dtypes])


@composite(np.shape, samples=samples.metadata, differentiable=False, call=samples.uses_metadata)
def shape(a):
    return tuple(a.shape) if isinstance(a, Tracer) else np.shape(a)


@composite(np.ndim, samples=samples.metadata, differentiable=False, call=samples.uses_metadata)
def ndim(a):
    return a.ndim if isinstance(a, Tracer) else np.ndim(a)


@composite(np.size, samples=samples.size, differentiable=False, call=samples.uses_metadata)
def size(a, axis=None):
    if not isinstance(a, Tracer):
        return np.size(a, axis)
    if axis is None:
        return math.prod(a.shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return math.prod(a.shape[i] for i in normalize_axes(axes, len(a.shape), "size"))


@composite(np.iscomplexobj, samples=samples.metadata, differentiable=False, call=samples.uses_metadata)
def iscomplexobj(x):
    return np.dtype(_plain(x) if isinstance(x, Tracer) else np.result_type(x)).kind == "c"


@composite(np.isrealobj, samples=samples.metadata, differentiable=False, call=samples.uses_metadata)
def isrealobj(x):
    return not iscomplexobj(x)


# ---- index arrays from an array's shape ----------------------------------------------------

def _shape_only(a):
    return np.empty(tuple(a.shape), dtype=bool) if isinstance(a, Tracer) else a


@composite(np.diag_indices_from, samples=samples.diag_indices_from, differentiable=False,
           call=samples.uses_indices)
def diag_indices_from(arr):
    """``np.diag_indices_from``: reads only the shape (plain integer index arrays)."""
    return np.diag_indices_from(_shape_only(arr))


@composite(np.tril_indices_from, samples=samples.tri_indices_from, differentiable=False,
           call=samples.uses_indices)
def tril_indices_from(arr, k=0):
    """``np.tril_indices_from``: reads only the shape (plain integer index arrays)."""
    return np.tril_indices_from(_shape_only(arr), k)


@composite(np.triu_indices_from, samples=samples.tri_indices_from, differentiable=False,
           call=samples.uses_indices)
def triu_indices_from(arr, k=0):
    """``np.triu_indices_from``: reads only the shape (plain integer index arrays)."""
    return np.triu_indices_from(_shape_only(arr), k)
