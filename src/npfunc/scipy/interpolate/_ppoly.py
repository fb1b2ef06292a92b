"""Piecewise polynomials in the power basis (``PPoly``) and cubic Hermite
splines, on traced values.

``PPoly(c, x)`` holds ``c`` of shape ``(k, m, ...)`` and increasing
breakpoints ``x``; on interval ``i`` the value is
``sum_j c[j, i] * (xp - x[i]) ** (k - 1 - j)``.  Evaluation finds the
interval with ``searchsorted`` (piecewise constant: no derivative), gathers
the coefficients and runs Horner's scheme, so it is differentiable in the
evaluation points, the coefficients and the breakpoints, and batches under
vmap.  Every spline class of this package is a ``PPoly`` or a ``BSpline``.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array, ensure

__all__ = ["PPoly", "CubicHermiteSpline", "prepare_input", "checked", "at", "diff"]


def at(a, index):
    """``a[index]`` for plain or traced ``a`` and (possibly traced) integer indices:
    NumPy's own indexing cannot take a traced index into a plain array."""
    from ...primitives.indexing.gather import getitem

    return getitem(as_array(a), index)


def diff(a, axis=0):
    """``np.diff(a, axis=axis)`` (first difference) on plain or traced values."""
    n = shape_of(a)[axis]
    lo = [slice(None)] * ndim_of(a)
    hi = list(lo)
    lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
    return a[tuple(hi)] - a[tuple(lo)]


def checked(x, bad, message):
    """``x`` after raising ``ValueError(message)`` if any entry of ``bad`` is True
    (on the values, wherever they are: primal, batch or jit replay)."""
    flag = ensure(bad, "all_false", message)
    return np.where(np.any(flag), x, x)  # the check stays part of a recorded computation


def _float(x):
    return x if dtype_of(x) == np.float64 else x.astype(np.float64)


def prepare_input(x, y, axis, dydx=None):
    """SciPy's ``prepare_input``: checked float64 ``x``, ``y`` (complex128 if complex)
    with the interpolation axis first, and ``dx``."""
    x, y = as_array(x), as_array(y)
    if dtype_of(x).kind == "c":
        raise ValueError("`x` must contain real values.")
    x = _float(x)
    complex_y = dtype_of(y).kind == "c" or (dydx is not None and dtype_of(as_array(dydx)).kind == "c")
    dtype = np.complex128 if complex_y else np.float64
    if dydx is not None:
        dydx = as_array(dydx)
        if tuple(shape_of(y)) != tuple(shape_of(dydx)):
            raise ValueError("The shapes of `y` and `dydx` must be identical.")
        dydx = dydx.astype(dtype)
    y = y.astype(dtype)
    axis = axis % ndim_of(y)
    if ndim_of(x) != 1:
        raise ValueError("`x` must be 1-dimensional.")
    if shape_of(x)[0] < 2:
        raise ValueError("`x` must contain at least 2 elements.")
    if shape_of(x)[0] != shape_of(y)[axis]:
        raise ValueError(f"The length of `y` along `axis`={axis} doesn't match the length of `x`")
    x = checked(x, ~np.isfinite(x), "`x` must contain only finite values.")
    y = checked(y, ~np.isfinite(y), "`y` must contain only finite values.")
    dx = diff(x)
    x = checked(x, dx <= 0, "`x` must be strictly increasing sequence.")
    y = np.moveaxis(y, axis, 0)
    if dydx is not None:
        dydx = np.moveaxis(dydx, axis, 0)
    return x, diff(x), y, axis, dydx


def _poch_descending(k, nu):
    """``poch(arange(k, 0, -1), nu)``: the factors of ``nu`` derivatives of the powers."""
    return np.array([math.prod(range(p, p + nu)) for p in range(k, 0, -1)], np.float64)


class PPoly:
    """``scipy.interpolate.PPoly``: a piecewise polynomial in the power basis
    (increasing breakpoints), on traced or plain coefficients and breakpoints.

    >>> import numpy as np, npfunc
    >>> p = PPoly(np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([0.0, 1.0, 2.0]))
    >>> p(np.array([0.5, 1.5]))
    array([0.5, 2. ])
    >>> npfunc.grad(lambda c: PPoly(c, np.array([0.0, 1.0, 2.0]))(1.5))(p.c)
    array([[0. , 0.5],
           [0. , 1. ]])
    """

    def __init__(self, c, x, extrapolate=None, axis=0):
        c, x = as_array(c), _float(as_array(x))
        if extrapolate is None:
            extrapolate = True
        elif extrapolate != "periodic":
            extrapolate = bool(extrapolate)
        self.extrapolate = extrapolate
        if ndim_of(c) < 2:
            raise ValueError("Coefficients array must be at least 2-dimensional.")
        if not (0 <= axis < ndim_of(c) - 1):
            raise ValueError(f"axis={axis} must be between 0 and {ndim_of(c) - 1}")
        self.axis = axis
        if axis != 0:
            c = np.moveaxis(np.moveaxis(c, axis + 1, 0), axis + 1, 0)
        if ndim_of(x) != 1:
            raise ValueError("x must be 1-dimensional")
        if shape_of(x)[0] < 2:
            raise ValueError("at least 2 breakpoints are needed")
        if shape_of(c)[0] == 0:
            raise ValueError("polynomial must be at least of order 0")
        if shape_of(c)[1] != shape_of(x)[0] - 1:
            raise ValueError("number of coefficients != len(x)-1")
        x = checked(x, diff(x) < 0, "npfunc.scipy.interpolate.PPoly: the breakpoints must be increasing "
                    "(reverse decreasing ones and the intervals' coefficients)")
        self.c = c.astype(np.complex128 if dtype_of(c).kind == "c" else np.float64)
        self.x = x

    @classmethod
    def construct_fast(cls, c, x, extrapolate=None, axis=0):
        self = object.__new__(cls)
        self.c, self.x, self.axis = c, x, axis
        self.extrapolate = True if extrapolate is None else extrapolate
        return self

    # ---- evaluation ---------------------------------------------------------------------------

    def __call__(self, x, nu=0, extrapolate=None):
        """Values (or the ``nu``-th derivative) at ``x``; ``extrapolate`` as in SciPy."""
        if nu < 0:
            raise ValueError("Order of derivative cannot be negative")
        if extrapolate is None:
            extrapolate = self.extrapolate
        src = self if nu == 0 else self.derivative(nu)
        xp = _float(as_array(x))
        x_shape = tuple(shape_of(xp))
        flat = np.reshape(xp, (-1,))
        out = _evaluate(src.c, src.x, flat, extrapolate)
        out = np.reshape(out, x_shape + tuple(shape_of(src.c))[2:])
        if self.axis != 0:
            nd, x_ndim = ndim_of(out), len(x_shape)
            order = list(range(nd))
            order = order[x_ndim:x_ndim + self.axis] + order[:x_ndim] + order[x_ndim + self.axis:]
            out = np.transpose(out, order)
        return out

    def evaluate_each(self, x):
        """``out[j] = poly_j(x[j])`` where ``poly_j`` has the coefficients ``c[:, :, j]``."""
        c, bp = self.c, self.x
        m = shape_of(c)[1]
        i = np.clip(np.searchsorted(bp, x, side="right") - 1, 0, m - 1)
        trailing = (1,) * (ndim_of(c) - 3)
        s = np.reshape(x - at(bp, i), (-1,) + trailing)
        ci = at(c, (slice(None), i, np.arange(shape_of(x)[0])))  # (k, m_points, ...)
        acc = ci[0]
        for j in range(1, shape_of(c)[0]):
            acc = acc * s + ci[j]
        return acc

    # ---- calculus ------------------------------------------------------------------------------

    def derivative(self, nu=1):
        """The ``nu``-th derivative as a ``PPoly`` (an antiderivative for ``nu < 0``)."""
        if nu < 0:
            return self.antiderivative(-nu)
        k = shape_of(self.c)[0]
        c2 = self.c if nu == 0 else self.c[:k - nu]
        if shape_of(c2)[0] == 0:
            c2 = np.zeros((1,) + tuple(shape_of(self.c))[1:], dtype_of(self.c))
        factor = _poch_descending(shape_of(c2)[0], nu)
        c2 = c2 * np.reshape(factor, (-1,) + (1,) * (ndim_of(c2) - 1))
        return type(self).construct_fast(c2, self.x, self.extrapolate, self.axis)

    def antiderivative(self, nu=1):
        """The ``nu``-th antiderivative (zero at ``x[0]``, continuous) as a ``PPoly``."""
        if nu <= 0:
            return self.derivative(-nu)
        c = self.c
        for _ in range(nu):
            c = _antiderivative_once(c, self.x)
        extrapolate = False if self.extrapolate == "periodic" else self.extrapolate
        return type(self).construct_fast(c, self.x, extrapolate, self.axis)

    def integrate(self, a, b, extrapolate=None):
        """The definite integral from ``a`` to ``b`` (``nan`` outside the breakpoints
        without extrapolation; periodic as in SciPy)."""
        if extrapolate is None:
            extrapolate = self.extrapolate
        anti = PPoly.construct_fast(_antiderivative_once(self.c, self.x), self.x, True, 0)
        a, b = _float(as_array(a)), _float(as_array(b))
        sign = np.where(b < a, -1.0, 1.0)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if extrapolate == "periodic":
            xs, xe = self.x[0], self.x[-1]
            period = xe - xs
            n_periods = np.floor_divide(hi - lo, period)
            left = (hi - lo) - n_periods * period
            whole = _ad(anti, xe, False) - _ad(anti, xs, False)
            start = xs + np.mod(lo - xs, period)
            end = start + left
            inside = end <= xe
            part = np.where(_bcast(inside, whole), _ad(anti, np.minimum(end, xe), False) - _ad(anti, start, False),
                            _ad(anti, xe, False) - _ad(anti, start, False)
                            + _ad(anti, xs + np.maximum(end - xe, 0.0), False) - _ad(anti, xs, False))
            total = _bcast(n_periods, whole) * whole + part
        else:
            total = _ad(anti, hi, bool(extrapolate)) - _ad(anti, lo, bool(extrapolate))
        return np.asarray(_bcast(sign, total) * total)  # an array, 0-d for one curve, as SciPy's

    def __repr__(self) -> str:
        return f"npfunc.scipy.interpolate.{type(self).__name__}(order={shape_of(self.c)[0]})"


def _bcast(v, like):
    """``v`` (a scalar) shaped to broadcast against ``like``."""
    return np.reshape(v, (1,) * ndim_of(like)) if ndim_of(like) else v


def _ad(poly, point, extrapolate):
    return _evaluate(poly.c, poly.x, np.reshape(point, (1,)), extrapolate)[0]


def _evaluate(c, x, xp, extrapolate):
    """Horner's scheme on the interval of each point of the 1-D ``xp``: ``(len(xp),) + c.shape[2:]``."""
    m = shape_of(c)[1]
    if extrapolate == "periodic":
        xp = x[0] + np.mod(xp - x[0], x[-1] - x[0])
        extrapolate = False
    i = np.clip(np.searchsorted(x, xp, side="right") - 1, 0, m - 1)
    trailing = (1,) * (ndim_of(c) - 2)
    s = np.reshape(xp - at(x, i), (-1,) + trailing)
    ci = at(c, (slice(None), i))
    acc = ci[0]
    for j in range(1, shape_of(c)[0]):
        acc = acc * s + ci[j]
    if not extrapolate:
        inside = np.reshape((xp >= x[0]) & (xp <= x[-1]), (-1,) + trailing)
        acc = np.where(inside, acc, np.nan)
    return acc


def _antiderivative_once(c, x):
    """Coefficients of the antiderivative that is 0 at ``x[0]`` and continuous: the
    new constant terms are the running sums of the integrals over the intervals."""
    k = shape_of(c)[0]
    trailing = (1,) * (ndim_of(c) - 2)
    factor = np.reshape(np.arange(k, 0, -1, dtype=np.float64), (-1, 1) + trailing)
    raised = c / factor  # powers k..1
    h = np.reshape(diff(x), (-1,) + trailing)
    powers = np.reshape(np.arange(k, 0, -1), (-1, 1) + trailing)
    integrals = np.sum(raised * h[None] ** powers, axis=0)  # each interval's integral
    zeros = np.zeros((1,) + tuple(shape_of(integrals))[1:], dtype_of(integrals))
    constants = np.cumsum(np.concatenate([zeros, integrals[:-1]], axis=0), axis=0)
    return np.concatenate([raised, constants[None]], axis=0)


class CubicHermiteSpline(PPoly):
    """``scipy.interpolate.CubicHermiteSpline``: the piecewise cubic with values ``y``
    and first derivatives ``dydx`` at ``x``; linear in ``y`` and ``dydx``."""

    def __init__(self, x, y, dydx, axis=0, extrapolate=None):
        if extrapolate is None:
            extrapolate = True
        x, dx, y, axis, dydx = prepare_input(x, y, axis, dydx)
        self._hermite(x, dx, y, dydx, extrapolate)
        self.axis = axis

    def _hermite(self, x, dx, y, dydx, extrapolate):
        dxr = np.reshape(dx, (shape_of(dx)[0],) + (1,) * (ndim_of(y) - 1))
        slope = diff(y, 0) / dxr
        t = (dydx[:-1] + dydx[1:] - 2 * slope) / dxr
        self.c = np.stack([t / dxr, (slope - dydx[:-1]) / dxr - t, dydx[:-1], y[:-1]])
        self.x = x
        self.extrapolate = extrapolate
