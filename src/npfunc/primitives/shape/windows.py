"""Sliding windows: ``np.lib.stride_tricks.sliding_window_view`` and its transpose.

``sliding_window`` (the view; a primitive) and ``window_sum`` (its adjoint:
every window added back where it came from) are linear and each other's
transpose, like gather and scatter-add.  ``window_sum`` loops over the
positions *inside* one window (9 for a 3x3 kernel), each step one vectorised
slice-add over all windows and batch elements, so the gradient of a
convolution written as ``einsum(..., sliding_window_view(x, k), w)`` costs
about what the forward pass costs.
"""
from __future__ import annotations

import itertools

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import ndim_of, shape_of
from ..families import normalize_axes
from ..sampling import FLOATS, array


def _window_impl(x, *, window_shape, axis):
    return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def _window_sum_impl(g, *, window_shape, axis, shape):
    """Add every window of ``g`` (shaped like ``sliding_window_view`` of an
    array of ``shape``) back into an array of ``shape``."""
    nd = len(shape)
    out = np.zeros(shape, dtype=g.dtype)
    reduced = list(shape)
    for ax, w in zip(axis, window_shape):
        reduced[ax] -= w - 1
    for offsets in itertools.product(*(range(w) for w in window_shape)):
        start = [0] * nd
        for ax, k in zip(axis, offsets):
            start[ax] += k
        target = tuple(slice(s, s + n) for s, n in zip(start, reduced))
        out[target] += g[(Ellipsis,) + offsets]
    return out


def _batched_axes(axis, d):
    return tuple(a + (a >= d) for a in axis)


def _window_batch(vals, dims, *, window_shape, axis):
    (x,), (d,) = vals, dims
    return _window.bind(x, window_shape=window_shape, axis=_batched_axes(axis, d)), d


def _window_sum_batch(vals, dims, *, window_shape, axis, shape):
    (g,), (d,) = vals, dims
    nd = len(shape)
    if d >= nd:  # the batch axis must sit among the leading (array) axes
        from .basic import moveaxis

        g, d = moveaxis(g, d, 0), 0
    size = shape_of(g)[d]
    new_shape = tuple(shape[:d]) + (size,) + tuple(shape[d:])
    return _window_sum.bind(g, window_shape=window_shape, axis=_batched_axes(axis, d), shape=new_shape), d


def _window_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (6,), dt), window_shape=(3,), axis=(0,)),
                Sample(array(rng, (2, 5, 4), dt), window_shape=(2, 3), axis=(1, 2)),
                Sample(array(rng, (4, 3), dt), window_shape=(2,), axis=(0,))]
    out.append(Sample(array(rng, (6, 2)), window_shape=(2, 2), axis=(0, 0), label="repeated axis"))
    out.append(Sample(array(rng, (3, 4)), window_shape=(3, 4), axis=(0, 1), label="one window"))
    return out


def _window_sum_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (4, 3), dt), window_shape=(3,), axis=(0,), shape=(6,)),
                Sample(array(rng, (2, 4, 2, 2, 3), dt), window_shape=(2, 3), axis=(1, 2), shape=(2, 5, 4))]
    out.append(Sample(array(rng, (4, 2, 2, 2)), window_shape=(2, 2), axis=(0, 0), shape=(6, 2),
                      label="repeated axis"))
    return out


_window = Primitive(
    "sliding_window", _window_impl,
    jvp=lambda primals, tangents, out, **p: _window.bind(tangents[0], **p),
    vjp=lambda g, primals, out, needs, **p: (_window_sum.bind(g, shape=tuple(shape_of(primals[0])), **p),),
    batch=_window_batch, samples=_window_samples,
    notes="a read-only view for plain arrays, as in NumPy")
_window_sum = Primitive(
    "window_sum", _window_sum_impl,
    jvp=lambda primals, tangents, out, **p: _window_sum.bind(tangents[0], **p),
    vjp=lambda g, primals, out, needs, *, window_shape, axis, shape: (
        _window.bind(g, window_shape=window_shape, axis=axis),),
    batch=_window_sum_batch, samples=_window_sum_samples,
    notes="the transpose of sliding_window: windows added back into place")


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    """``np.lib.stride_tricks.sliding_window_view`` for traced and plain values.

    ``window_shape`` an int or tuple; ``axis`` None (every axis), an int or a
    tuple (repeats allowed, as in NumPy).  The gradient adds the windows back
    with one vectorised slice-add per position inside a window.
    """
    x = x if isinstance(x, Tracer) else np.asarray(x)
    nd = ndim_of(x)
    window_shape = (int(window_shape),) if np.ndim(window_shape) == 0 else tuple(int(w) for w in window_shape)
    if any(w < 0 for w in window_shape):
        raise ValueError("sliding_window_view: `window_shape` cannot contain negative values")
    if axis is None:
        if len(window_shape) != nd:
            raise ValueError(f"sliding_window_view: Since axis is `None`, must provide window_shape for all "
                             f"dimensions of `x`; got {len(window_shape)} window_shape elements and "
                             f"`x.ndim` is {nd}.")
        axis = tuple(range(nd))
    else:
        axis = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        axis = tuple(normalize_axes(int(a), nd, "sliding_window_view")[0] for a in axis)
        if len(window_shape) != len(axis):
            raise ValueError(f"sliding_window_view: Must provide matching length window_shape and axis; got "
                             f"{len(window_shape)} window_shape elements and {len(axis)} axes elements.")
    shape = list(shape_of(x))
    for ax, w in zip(axis, window_shape):
        if shape[ax] < w:
            raise ValueError("sliding_window_view: window shape cannot be larger than input array shape")
        shape[ax] -= w - 1
    return _window.bind(x, window_shape=window_shape, axis=axis)


sliding_window_view.primitive = _window  # type: ignore[attr-defined]
