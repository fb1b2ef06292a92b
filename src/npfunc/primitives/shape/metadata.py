"""NumPy functions that only read shape or dtype: no primitive, no derivative."""
from __future__ import annotations

import math

import numpy as np

from ...core.dispatch import implements
from ...core.tracer import Tracer


def _plain(x):
    """Something NumPy's metadata functions accept in place of a traced value."""
    return x.dtype if isinstance(x, Tracer) else x


@implements(np.result_type)
def result_type(*arrays_and_dtypes):
    return np.result_type(*[_plain(a) for a in arrays_and_dtypes])


@implements(np.shape)
def shape(a):
    return tuple(a.shape) if isinstance(a, Tracer) else np.shape(a)


@implements(np.ndim)
def ndim(a):
    return a.ndim if isinstance(a, Tracer) else np.ndim(a)


@implements(np.size)
def size(a, axis=None):
    if not isinstance(a, Tracer):
        return np.size(a, axis)
    return math.prod(a.shape) if axis is None else a.shape[axis]


@implements(np.iscomplexobj)
def iscomplexobj(x):
    return np.dtype(_plain(x) if isinstance(x, Tracer) else np.result_type(x)).kind == "c"


@implements(np.isrealobj)
def isrealobj(x):
    return not iscomplexobj(x)
