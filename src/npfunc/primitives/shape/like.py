"""NumPy's constructors called with ``like=`` a traced value.

``np.zeros((n, 2), like=y)`` is NumPy's own way (NEP 35) to ask for an array
of the kind ``y`` is: here, a traced array, which can then take traced
writes (``traj[i] = y``) where a plain buffer cannot.  The values are the
plain ones NumPy makes; the array is a constant of the innermost running
transform, so a value computed at any level can be written into it.

>>> import numpy as np, npfunc
>>> def trajectory(y0):
...     traj = np.zeros((3, 2), like=y0)
...     y = y0
...     for i in range(3):
...         traj[i] = y
...         y = y * 0.5
...     return traj.sum()
>>> npfunc.grad(trajectory)(np.array([1.0, 2.0]))
array([1.75, 1.75])
"""
from __future__ import annotations

import numpy as np

from ...core.context import current_stack
from ...core.array_hooks import WRAPPERS
from ...core.pending import WRAPPERS as PENDING_WRAPPERS
from ...core.dispatch import implements
from ...core.tracer import Tracer
from ..indexing.aliasing import FRESH_C


def traced_constant(value):
    """The plain array ``value`` as a (C-contiguous) constant of the innermost
    running transform, or as it is when no transform runs."""
    stack = current_stack()
    if not stack or isinstance(value, Tracer):
        return value
    out = stack[-1].lift(np.asarray(value))
    out._alias = FRESH_C
    return out


def _like(np_fn, values=None):
    """The ``like=`` version of ``np_fn`` (computing the values with ``values``)."""
    values = values or np_fn

    def fn(*args, **kwargs):
        return traced_constant(values(*args, **kwargs))

    fn.__name__ = fn.__qualname__ = np_fn.__name__
    fn.__doc__ = f"``np.{np_fn.__name__}(..., like=traced)``: a traced constant array."
    fn.like = True  # type: ignore[attr-defined]  # tested in tests/test_array_construction.py
    return implements(np_fn)(fn)


zeros = _like(np.zeros)
ones = _like(np.ones)
empty = _like(np.empty, np.zeros)  # np.empty's values are unspecified: zeros are as good as any
eye = _like(np.eye)
identity = _like(np.identity)
tri = _like(np.tri)
arange = _like(np.arange)


def _full(shape, fill_value, dtype=None, order="C", *, device=None):
    if not isinstance(fill_value, Tracer):
        return np.full(shape, fill_value, dtype, order)
    from ..elementwise.arithmetic import astype
    from .basic import broadcast_to, copy

    value = astype(fill_value, dtype) if dtype is not None else fill_value
    out = copy(broadcast_to(value, (shape,) if np.ndim(shape) == 0 else tuple(shape)))
    out._alias = FRESH_C
    return out


full = _like(np.full, _full)


def _array_like(name):
    def values(obj, *args, **kwargs):
        from . import joining, views

        if joining._has_tracer(obj):  # (np.asarray(x, like=i) with x traced too: x's own rules)
            traced = {"array": joining.array, "asarray": joining.asarray, "asanyarray": joining.asarray,
                      "ascontiguousarray": views.ascontiguousarray,
                      "asfortranarray": views.asfortranarray}[name]
            kwargs.pop("like", None)
            kwargs.pop("device", None)  # (NumPy's only device is "cpu")
            return traced(obj, *args, **kwargs)
        return getattr(np, name)(obj, *args, **kwargs)

    return values


array = _like(np.array, _array_like("array"))
asarray = _like(np.asarray, _array_like("asarray"))
asanyarray = _like(np.asanyarray, _array_like("asanyarray"))
ascontiguousarray = _like(np.ascontiguousarray, _array_like("ascontiguousarray"))
asfortranarray = _like(np.asfortranarray, _array_like("asfortranarray"))
for _name, _wrapper in WRAPPERS.items():  # np.array & co. while a transform runs
    implements(_wrapper)(globals()[_name])
for _name, _wrapper in PENDING_WRAPPERS.items():  # np.zeros & co. while a transform runs
    if _name in globals():
        implements(_wrapper)(globals()[_name])
