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
