"""Quadrature of sampled values: ``trapezoid``, ``simpson``, ``cumulative_trapezoid``,
``cumulative_simpson``, ``romb``.

SciPy's versions convert their input with ``np.asarray``; these are the same
formulas (the same operations in the same order) written with NumPy calls
that dispatch to npfunc on traced values, so they are differentiable in
``y`` and ``x`` under every transform.  They are registry composites: the
generated tests run their samples.  This module imports no SciPy, so
``import npfunc`` registers them.

>>> import numpy as np, npfunc
>>> from npfunc.scipy.integrate import trapezoid
>>> x = np.linspace(0.0, 1.0, 5)
>>> npfunc.grad(lambda y: trapezoid(y, x))(x ** 2)   # the trapezoid weights
array([0.125, 0.25 , 0.25 , 0.25 , 0.125])
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Composite, Sample
from ...core.values import dtype_of, shape_of
from ...primitives.sampling import array

__all__ = ["trapezoid", "simpson", "cumulative_trapezoid", "cumulative_simpson", "romb"]


def _ndim(x) -> int:
    return len(shape_of(x))


def _shape(x) -> tuple:
    return tuple(shape_of(x))


def _at(nd: int, axis: int, index) -> tuple:
    out = [slice(None)] * nd
    out[axis] = index
    return tuple(out)


def _diff(x, axis: int):
    nd = _ndim(x)
    return x[_at(nd, axis, slice(1, None))] - x[_at(nd, axis, slice(None, -1))]


def _float(y):
    if not hasattr(y, "shape"):
        y = np.asarray(y)
    return y if dtype_of(y).kind in "fc" else y.astype(float)


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """``scipy.integrate.trapezoid``: the composite trapezoidal rule along ``axis``."""
    y = _float(y)
    nd = _ndim(y)
    s1, s2 = _at(nd, axis, slice(1, None)), _at(nd, axis, slice(None, -1))
    if x is None:
        d = dx
    elif _ndim(x) == 1:
        d = x[1:] - x[:-1]
        d = d[tuple(slice(None) if k == axis % nd else None for k in range(nd))]  # broadcast along axis
    else:
        x = np.broadcast_to(x, _shape(y))
        d = x[s1] - x[s2]
    return np.sum(d * (y[s1] + y[s2]) / 2.0, axis=axis)


def cumulative_trapezoid(y, x=None, dx=1.0, axis=-1, initial=None):
    """``scipy.integrate.cumulative_trapezoid`` (``initial`` None or 0)."""
    y = _float(y)
    nd = _ndim(y)
    if _shape(y)[axis] == 0:
        raise ValueError("At least one point is required along `axis`.")
    if x is None:
        d = dx
    elif _ndim(x) == 1:
        shape = [1] * nd
        shape[axis] = -1
        d = np.reshape(_diff(x, -1), tuple(shape))
    elif _ndim(x) != nd:
        raise ValueError("If given, shape of x must be 1-D or the same as y.")
    else:
        d = _diff(x, axis)
    if x is not None and _shape(d)[axis] != _shape(y)[axis] - 1:
        raise ValueError("If given, length of x along axis must be the same as y.")
    res = np.cumsum(d * (y[_at(nd, axis, slice(1, None))] + y[_at(nd, axis, slice(None, -1))]) / 2.0, axis=axis)
    if initial is not None:
        if not np.isscalar(initial):
            raise ValueError("`initial` parameter should be a scalar.")
        if initial != 0:
            raise ValueError("`initial` must be `None` or `0`.")
        shape = list(_shape(res))
        shape[axis] = 1
        res = np.concatenate([np.zeros(tuple(shape), dtype=dtype_of(res)), res], axis=axis)
    return res


def _safe_div(num, den):
    """num / den where den != 0, else 0 (SciPy's ``true_divide(..., where=den != 0)``)."""
    ok = den != 0
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _basic_simpson(y, start, stop, x, dx, axis):
    nd = _ndim(y)
    s0 = _at(nd, axis, slice(start, stop, 2))
    s1 = _at(nd, axis, slice(start + 1, stop + 1, 2))
    s2 = _at(nd, axis, slice(start + 2, stop + 2, 2))
    if x is None:
        result = np.sum(y[s0] + 4.0 * y[s1] + y[s2], axis=axis)
        return result * (dx / 3.0)
    h = _diff(x, axis)
    h0 = _float(h[_at(nd, axis, slice(start, stop, 2))])
    h1 = _float(h[_at(nd, axis, slice(start + 1, stop + 1, 2))])
    hsum = h0 + h1
    hprod = h0 * h1
    h0divh1 = _safe_div(h0, h1)
    tmp = hsum / 6.0 * (y[s0] * (2.0 - _safe_div(1.0, h0divh1)) + y[s1] * (hsum * _safe_div(hsum, hprod))
                        + y[s2] * (2.0 - h0divh1))
    return np.sum(tmp, axis=axis)


def simpson(y, x=None, *, dx=1.0, axis=-1):
    """``scipy.integrate.simpson``: composite Simpson's rule; an even number of
    samples gets Cartwright's correction on the last interval, as in SciPy."""
    y = _float(y)
    nd = _ndim(y)
    n = _shape(y)[axis]
    if x is not None:
        if _ndim(x) == 1:
            shape = [1] * nd
            shape[axis] = _shape(x)[0]
            x = np.reshape(x, tuple(shape))
        elif _ndim(x) != nd:
            raise ValueError("If given, shape of x must be 1-D or the same as y.")
        if _shape(x)[axis] != n:
            raise ValueError("If given, length of x along axis must be the same as y.")
    if n % 2:
        return _basic_simpson(y, 0, n - 2, x, dx, axis)
    last, second, third = _at(nd, axis, -1), _at(nd, axis, -2), _at(nd, axis, -3)
    if n == 2:
        last_dx = dx if x is None else x[last] - x[second]
        return 0.0 + 0.5 * last_dx * (y[last] + y[second])
    result = _basic_simpson(y, 0, n - 3, x, dx, axis)
    if x is None:
        h0 = h1 = np.float64(dx)
    else:
        diffs = _float(_diff(x, axis))
        h0 = np.squeeze(diffs[_at(nd, axis, slice(-2, -1, 1))], axis=axis)
        h1 = np.squeeze(diffs[_at(nd, axis, slice(-1, None, 1))], axis=axis)
    alpha = _safe_div(2 * h1 ** 2 + 3 * h0 * h1, 6 * (h1 + h0))
    beta = _safe_div(h1 ** 2 + 3.0 * h0 * h1, 6 * h0)
    eta = _safe_div(1 * h1 ** 3, 6 * h0 * (h0 + h1))
    return result + alpha * y[last] + beta * y[second] - eta * y[third] + 0.0


def _simpson_pieces(y, dx, equal: bool):
    """Integrals over each first (and, flipped, second) subinterval of every triple."""
    f1, f2, f3 = y[..., :-2], y[..., 1:-1], y[..., 2:]
    if equal:
        d = dx[..., :-1]
        return d / 3 * (5 * f1 / 4 + 2 * f2 - f3 / 4)
    x21, x32 = dx[..., :-1], dx[..., 1:]
    x31 = x21 + x32
    x21_x31 = x21 / x31
    x21_x32 = x21 / x32
    x21x21_x31x32 = x21_x31 * x21_x32
    return x21 / 6 * ((3 - x21_x31) * f1 + (3 + x21x21_x31x32 + x21_x31) * f2 + (-x21x21_x31x32) * f3)


def _cumulative_simpson_sum(y, dx, equal: bool):
    h1 = _simpson_pieces(y, dx, equal)
    h2 = np.flip(_simpson_pieces(np.flip(y, axis=-1), np.flip(dx, axis=-1), equal), axis=-1)
    m = _shape(y)[-1] - 1  # subintervals
    k = m - 1  # entries of h1 and h2
    # subinterval j: h1[j] for even j, h2[j - 1] for odd j, h2[-1] for the last one
    idx = np.array([j if j % 2 == 0 else k + j - 1 for j in range(m - 1)] + [2 * k - 1])
    return np.cumsum(np.take(np.concatenate([h1, h2], axis=-1), idx, axis=-1), axis=-1)


def cumulative_simpson(y, *, x=None, dx=1.0, axis=-1, initial=None):
    """``scipy.integrate.cumulative_simpson``."""
    y = _float(y)
    original_shape = tuple(_shape(y))
    nd = len(original_shape)
    axis = axis % nd if nd else axis
    y_last = np.swapaxes(y, axis, -1)
    if _shape(y_last)[-1] < 3:
        res = np.swapaxes(cumulative_trapezoid(y, x, dx=dx, axis=axis, initial=None), axis, -1)
    elif x is not None:
        x = _float(x)
        if not (tuple(_shape(x)) == original_shape or (_ndim(x) == 1 and _shape(x)[0] == original_shape[axis])):
            raise ValueError("If given, shape of `x` must be the same as `y` or 1-D with the same length as `y` "
                             "along `axis`.")
        x = np.broadcast_to(x, _shape(y_last)) if _ndim(x) == 1 else np.swapaxes(x, axis, -1)
        d = _diff(x, -1)
        if bool(np.any(d <= 0)):
            raise ValueError("Input x must be strictly increasing.")
        res = _cumulative_simpson_sum(y_last, d, equal=False)
    else:
        dx = _float(dx) if not np.isscalar(dx) else np.float64(dx)
        final = list(original_shape)
        final[axis] -= 1
        if not (_ndim(dx) == 0 or tuple(_shape(dx)) == tuple(original_shape[:axis]) + (1,)
                + tuple(original_shape[axis + 1:])):
            raise ValueError("If provided, `dx` must either be a scalar or have the same shape as `y` but with "
                             "only 1 point along `axis`.")
        d = np.swapaxes(np.broadcast_to(dx, tuple(final)), axis, -1)
        res = _cumulative_simpson_sum(y_last, d, equal=True)
    if initial is not None:
        alt = list(original_shape)
        alt[axis] = 1
        initial = _float(initial) if not np.isscalar(initial) else np.float64(initial)
        if not (_ndim(initial) == 0 or tuple(_shape(initial)) == tuple(alt)):
            raise ValueError("If provided, `initial` must either be a scalar or have the same shape as `y` but "
                             "with only 1 point along `axis`.")
        initial = np.swapaxes(np.broadcast_to(initial, tuple(alt)), axis, -1)
        res = np.concatenate([initial, res + initial], axis=-1)
    return np.swapaxes(res, -1, axis)


def romb(y, dx=1.0, axis=-1, show=False):
    """``scipy.integrate.romb``: Romberg integration of ``2**k + 1`` equally spaced samples."""
    if show:
        raise ValueError("npfunc.scipy.integrate.romb: show=True prints SciPy's table; call scipy.integrate.romb "
                         "for that")
    y = _float(y)
    nd = _ndim(y)
    intervals = _shape(y)[axis] - 1
    n, k = 1, 0
    while n < intervals:
        n <<= 1
        k += 1
    if n != intervals:
        raise ValueError("Number of samples must be one plus a non-negative power of 2.")
    h = intervals * np.asarray(dx, dtype=np.float64)
    table = {(0, 0): (y[_at(nd, axis, 0)] + y[_at(nd, axis, -1)]) / 2.0 * h}
    start = stop = step = intervals
    for i in range(1, k + 1):
        start >>= 1
        sl = _at(nd, axis, slice(start, stop, step))
        step >>= 1
        table[(i, 0)] = 0.5 * (table[(i - 1, 0)] + h * np.sum(y[sl], axis=axis))
        for j in range(1, i + 1):
            prev = table[(i, j - 1)]
            table[(i, j)] = prev + (prev - table[(i - 1, j - 1)]) / ((1 << (2 * j)) - 1)
        h = h / 2.0
    return table[(k, k)]


# ---- registry samples --------------------------------------------------------------------------

def _grid(n):
    return np.sort(np.concatenate([[0.0], np.cumsum(0.2 + 0.3 * np.abs(np.sin(np.arange(1, n))))]))


def _trapezoid_samples(rng):
    return [Sample(array(rng, (6,))), Sample(array(rng, (6,)), _grid(6), label="x 1-d"),
            Sample(array(rng, (3, 5)), _grid(5), axis=-1, label="x along the last axis"),
            Sample(array(rng, (5, 3)), _grid(5), axis=0, label="axis=0"),
            Sample(array(rng, (2, 4)), array(rng, (2, 4), domain=(0.0, 3.0)), label="x n-d"),
            Sample(array(rng, (5,)), dx=0.3, label="dx"),
            Sample(array(rng, (6,), np.float32), label="float32")]


def _simpson_samples(rng):
    return [Sample(array(rng, (7,))), Sample(array(rng, (6,)), label="even: Cartwright's correction"),
            Sample(array(rng, (7,)), _grid(7), label="x odd"), Sample(array(rng, (6,)), _grid(6), label="x even"),
            Sample(array(rng, (2,)), _grid(2), label="two samples"),
            Sample(array(rng, (4, 5)), axis=0, dx=0.5, label="axis=0 dx"),
            Sample(array(rng, (3, 6)), _grid(6), label="x 1-d, 2-d y"),
            Sample(array(rng, (5,), np.float32), label="float32")]


def _cumtrapz_samples(rng):
    return [Sample(array(rng, (6,))), Sample(array(rng, (6,)), _grid(6), label="x"),
            Sample(array(rng, (3, 5)), _grid(5), initial=0, label="initial=0"),
            Sample(array(rng, (5, 2)), axis=0, dx=0.25, label="axis=0 dx"),
            Sample(array(rng, (6,), np.float32), label="float32")]


def _cumsimpson_samples(rng):
    return [Sample(array(rng, (7,))), Sample(array(rng, (6,)), x=_grid(6), label="x"),
            Sample(array(rng, (3, 5)), dx=0.4, axis=0, label="axis=0 dx"),
            Sample(array(rng, (5,)), initial=1.5, label="initial"),
            Sample(array(rng, (2,)), label="two samples: trapezoid"),
            Sample(array(rng, (2, 6)), x=_grid(6), initial=0.0, label="x with initial"),
            Sample(array(rng, (5,), np.float32), label="float32")]


def _romb_samples(rng):
    return [Sample(array(rng, (9,))), Sample(array(rng, (5,)), dx=0.25, label="dx"),
            Sample(array(rng, (3, 5)), label="2-d"),
            Sample(array(rng, (5, 2)), axis=0, label="axis=0"), Sample(array(rng, (2,)), label="one interval"),
            Sample(array(rng, (9,), np.float32), label="float32")]


for _fn, _samples in ((trapezoid, _trapezoid_samples), (simpson, _simpson_samples),
                      (cumulative_trapezoid, _cumtrapz_samples), (cumulative_simpson, _cumsimpson_samples),
                      (romb, _romb_samples)):
    _fn.composite = Composite(f"scipy.integrate.{_fn.__name__}", _fn, samples=_samples)  # type: ignore[attr-defined]
