"""Twins of ``scipy.signal.lfilter`` and ``sosfilt`` (re-exported by
``npfunc.scipy.signal``), differentiable in the signal, the coefficients and
the initial conditions.

With SciPy's normalisation ``b /= a[0]``, ``a /= a[0]`` and ``K = max(len(a),
len(b))``, the filter output is the solution of

    a * y = b * x + z          (``*`` causal convolution, ``z`` = ``zi`` then zeros)

so ``y = iir(a, causal(b, x) + z)`` (``npfunc.primitives.filtering``), and the
final state is the part of ``b * x - a * y + z`` that falls past the end
of the signal: ``zf = (b * x - a * y + z)[N : N + K - 1]`` with full
convolutions.  ``sosfilt`` cascades second-order sections.
"""
from __future__ import annotations

import numpy as np

from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.convolution import window_conv
from ..primitives.data_dependent import as_array, ensure
from ..primitives.filtering import causal_conv, iir

__all__ = ["lfilter", "sosfilt"]


def _coefficients(c, name):
    c = np.atleast_1d(as_array(c))
    if not (ndim_of(c) == 1 and shape_of(c)[0] > 0):
        raise ValueError(f"Parameter {name} is not a non-empty 1d array, since {name}.shape={tuple(shape_of(c))}!")
    return c


def _padded(c, k):
    n = shape_of(c)[-1]
    return c if n == k else np.concatenate([c, np.zeros(k - n, dtype_of(c))])


def _fit_zi(zi, x, axis, k):
    """``zi`` with its filter-state axis last, singleton axes expanded to ``x``'s."""
    zi = as_array(zi)
    if ndim_of(zi) != ndim_of(x):
        raise ValueError(f"Dimensions of parameters x and zi must match, but x.ndim={ndim_of(x)}, "
                         f"zi.ndim={ndim_of(zi)}!")
    expected = list(shape_of(x))
    expected[axis] = k - 1
    for d, (s, e) in enumerate(zip(shape_of(zi), expected)):
        if s != e and not (d != axis % ndim_of(x) and s == 1):
            raise ValueError(f"Unexpected shape for parameter zi: expected {tuple(expected)}, "
                             f"found {tuple(shape_of(zi))}.")
    return np.moveaxis(np.broadcast_to(zi, tuple(expected)), axis, -1)


def lfilter(b, a, x, axis=-1, zi=None):
    """``scipy.signal.lfilter``: the output of the IIR filter ``b / a`` on ``x``
    along ``axis`` (and the final state ``zf`` when ``zi`` is given).

    >>> import numpy as np, npfunc
    >>> x = np.array([1.0, 0.0, 0.0, 0.0])
    >>> lfilter([1.0], [1.0, -0.5], x)
    array([1.   , 0.5  , 0.25 , 0.125])
    >>> npfunc.grad(lambda a1: lfilter([1.0], np.stack([1.0, a1]), x).sum())(-0.5)  # -(1 + 2/2 + 3/4)
    np.float64(-2.75)
    """
    b, a = _coefficients(b, "b"), _coefficients(a, "a")
    x = as_array(x)
    if ndim_of(x) == 0:
        raise ValueError("Parameter x must be at least 1d")
    dtype = np.result_type(dtype_of(b), dtype_of(a), dtype_of(x), *(() if zi is None else (dtype_of(as_array(zi)),)))
    if dtype.char not in "fdgFDG":
        raise NotImplementedError(f"Parameter's dtypes produced result type '{dtype}', which is not supported!")
    axis = int(axis)
    k = max(shape_of(a)[0], shape_of(b)[0])
    z = None if zi is None else _fit_zi(zi, x, axis, k)
    xl = np.moveaxis(x, axis, -1).astype(dtype)
    n = shape_of(xl)[-1]
    a0 = a[0]
    bn, an = b.astype(dtype) / a0, a.astype(dtype) / a0
    v = causal_conv(bn, xl)
    if z is not None and k > 1:
        head = z[..., :n] if k - 1 >= n else np.concatenate(
            [z, np.zeros(tuple(shape_of(z)[:-1]) + (n - (k - 1),), dtype)], axis=-1)
        v = v + head.astype(dtype)
    y = v if shape_of(a)[0] == 1 else iir(an, v)
    out = np.moveaxis(y, -1, axis)
    if z is None:
        return out
    if k == 1:
        return out, np.moveaxis(np.zeros(tuple(shape_of(xl)[:-1]) + (0,), dtype), -1, axis)
    past = (window_conv(xl, _padded(bn, k), start=(n,), shape=(k - 1,))
            - window_conv(y, _padded(an, k), start=(n,), shape=(k - 1,)))
    if k - 1 > n:  # the initial state reaches past the end of a short signal
        past = past + np.concatenate([np.zeros(tuple(shape_of(z)[:-1]) + (0,), dtype), z[..., n:],
                                      np.zeros(tuple(shape_of(z)[:-1]) + (n,), dtype)], axis=-1)[..., :k - 1]
    return out, np.moveaxis(past.astype(dtype), -1, axis)


def sosfilt(sos, x, axis=-1, zi=None):
    """``scipy.signal.sosfilt``: a cascade of second-order sections (rows of
    ``sos``: ``b0 b1 b2 a0 a1 a2`` with ``a0 == 1``); ``zi`` has shape
    ``(n_sections, ..., 2, ...)`` with the 2 at ``axis``."""
    sos = np.atleast_2d(as_array(sos))
    if ndim_of(sos) != 2 or shape_of(sos)[1] != 6:
        raise ValueError("sos array must be shape (n_sections, 6)")
    checked = ensure(np.not_equal(sos[:, 3], 1), "all_false", "sos[:, 3] should be all ones")
    sos = np.where(np.any(checked), sos, sos)  # the check stays part of a recorded computation
    x = as_array(x)
    axis = int(axis) % max(ndim_of(x), 1)
    n_sections = shape_of(sos)[0]
    if zi is not None:
        zi = as_array(zi)
        expected = (n_sections,) + tuple(shape_of(x))[:axis] + (2,) + tuple(shape_of(x))[axis + 1:]
        if tuple(shape_of(zi)) != expected:
            raise ValueError(f"Invalid zi shape. With axis={axis!r}, an input with shape {tuple(shape_of(x))!r}, "
                             f"and an sos array with {n_sections} sections, zi must have shape {expected!r}, "
                             f"got {tuple(shape_of(zi))!r}.")
    y, finals = x, []
    for s in range(n_sections):
        if zi is None:
            y = lfilter(sos[s, :3], sos[s, 3:], y, axis=axis)
        else:
            y, zf = lfilter(sos[s, :3], sos[s, 3:], y, axis=axis, zi=zi[s])
            finals.append(zf)
    if zi is None:
        return y
    return y, np.stack(finals)
