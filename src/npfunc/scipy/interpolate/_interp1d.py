"""``interp1d`` on traced values (SciPy's legacy 1-D interpolator, every
``kind``, ``fill_value`` and ``bounds_error``).

Linear interpolation is differentiable in the new points, ``y`` and ``x``;
the piecewise-constant kinds (nearest, previous, next, zero) are
differentiable in ``y`` only (their derivative in the points is 0 between
the jumps); the spline kinds go through ``make_interp_spline``.  Bounds are
checked on the values wherever they live (``bounds_error=True`` raises under
grad, vmap or jit alike).
"""
from __future__ import annotations

import numpy as np

from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array, ensure
from ._bspline import make_interp_spline
from ._ppoly import at

__all__ = ["interp1d"]


def _is_extrapolate(fill_value) -> bool:
    return isinstance(fill_value, str) and fill_value == "extrapolate"


def _broadcast_up_to(arr, shape, name):
    arr = as_array(arr)
    if tuple(shape_of(arr)) != tuple(shape):
        try:
            np.broadcast_shapes(tuple(shape_of(arr)), tuple(shape))
            if len(shape_of(arr)) > len(shape):
                raise ValueError
        except ValueError:
            raise ValueError(f"{name} with shape {tuple(shape_of(arr))} cannot be broadcast to shape {tuple(shape)}")
        arr = np.broadcast_to(arr, tuple(shape))
    return arr


class interp1d:
    """``scipy.interpolate.interp1d`` (kinds 'linear', 'nearest', 'nearest-up',
    'zero', 'slinear', 'quadratic', 'cubic', 'previous', 'next' or an int order).

    >>> import numpy as np, npfunc
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> f = lambda y: interp1d(x, y)(np.array([0.5, 1.25]))
    >>> f(np.array([0.0, 2.0, 0.0]))
    array([1. , 1.5])
    >>> npfunc.jacrev(f)(np.array([0.0, 2.0, 0.0]))
    array([[0.5 , 0.5 , 0.  ],
           [0.  , 0.75, 0.25]])
    """

    def __init__(self, x, y, kind="linear", axis=-1, copy=True, bounds_error=None, fill_value=np.nan,
                 assume_sorted=False):
        self.bounds_error = bounds_error
        self.copy = copy
        if kind in ("zero", "slinear", "quadratic", "cubic"):
            order = {"zero": 0, "slinear": 1, "quadratic": 2, "cubic": 3}[kind]
            kind = "spline"
        elif isinstance(kind, int):
            order, kind = kind, "spline"
        elif kind not in ("linear", "nearest", "nearest-up", "previous", "next"):
            raise NotImplementedError(f"{kind} is unsupported: Use fitpack routines for other types.")
        x, y = as_array(x), as_array(y)
        if ndim_of(y) == 0:
            raise ValueError("the y array must have at least one dimension.")
        axis = axis % ndim_of(y)
        if not assume_sorted:
            ind = np.argsort(x, kind="mergesort")
            x = at(x, ind)
            y = at(y, (slice(None),) * axis + (ind,))
        if ndim_of(x) != 1:
            raise ValueError("the x array must have exactly one dimension.")
        if dtype_of(y).kind not in "fc":
            y = y.astype(np.float64)
        self.axis = axis
        self.y = y
        self._y_extra_shape = tuple(shape_of(y))[:axis] + tuple(shape_of(y))[axis + 1:]
        self._y = np.reshape(np.moveaxis(y, axis, 0), (shape_of(y)[axis], -1))
        self.x = x
        self._kind = kind
        minval = 1
        if kind in ("previous", "next") and _is_extrapolate(fill_value):
            self._no_bounds_error()
            fill_value = ((np.nan, np.take(self.y, -1, axis)) if kind == "previous"
                          else (np.take(self.y, 0, axis), np.nan))
        if kind == "spline":
            minval = order + 1
            self._spline = make_interp_spline(self.x, self._y, k=order, check_finite=False)
        if shape_of(self.x)[0] < minval:
            raise ValueError(f"x and y arrays must have at least {minval} entries")
        self.fill_value = fill_value

    def _no_bounds_error(self):
        if self.bounds_error:
            raise ValueError("Cannot extrapolate and raise at the same time.")
        self.bounds_error = False

    @property
    def fill_value(self):
        return self._fill_value_orig

    @fill_value.setter
    def fill_value(self, fill_value):
        if _is_extrapolate(fill_value):
            self._no_bounds_error()
            self._extrapolate = True
        else:
            shape = self._y_extra_shape or (1,)
            if isinstance(fill_value, tuple) and len(fill_value) == 2:
                below = _broadcast_up_to(fill_value[0], shape, "fill_value (below)")
                above = _broadcast_up_to(fill_value[1], shape, "fill_value (above)")
            else:
                below = above = _broadcast_up_to(fill_value, shape, "fill_value")
            self._fill_value_below, self._fill_value_above = below, above
            self._extrapolate = False
            if self.bounds_error is None:
                self.bounds_error = True
        self._fill_value_orig = fill_value

    # ---- evaluation ----------------------------------------------------------------------------

    def _call(self, x_new):
        x, y, n = self.x, self._y, shape_of(self.x)[0]
        if self._kind == "linear":
            hi = np.clip(np.searchsorted(x, x_new), 1, n - 1)
            lo = hi - 1
            x_lo, x_hi = at(x, lo), at(x, hi)
            y_lo = at(y, lo)
            slope = (at(y, hi) - y_lo) / (x_hi - x_lo)[:, None]
            return slope * (x_new - x_lo)[:, None] + y_lo
        if self._kind in ("nearest", "nearest-up"):
            bounds = x / 2.0
            bounds = bounds[1:] + bounds[:-1]
            side = "left" if self._kind == "nearest" else "right"
            return at(y, np.clip(np.searchsorted(bounds, x_new, side=side), 0, n - 1))
        if self._kind in ("previous", "next"):
            ind = 0 if self._kind == "previous" else 1
            shifted = np.nextafter(x, -np.inf if ind == 0 else np.inf)
            idx = np.clip(np.searchsorted(shifted, x_new, side="left" if ind == 0 else "right"), 1 - ind, n - ind)
            return at(y, idx + ind - 1)
        return self._spline(x_new)

    def __call__(self, x):
        """Interpolated values at ``x`` (shape ``x.shape`` in place of ``axis``)."""
        x = as_array(x)
        if dtype_of(x).kind not in "fc":
            x = x.astype(np.float64)
        x_shape = tuple(shape_of(x))
        x_new = np.reshape(x, (-1,))
        y_new = self._call(x_new)
        if not self._extrapolate:
            below = x_new < self.x[0]
            above = x_new > self.x[-1]
            if self.bounds_error:
                below = ensure(below, "all_false", "A value in x_new is below the interpolation range's minimum "
                               "value.")
                above = ensure(above, "all_false", "A value in x_new is above the interpolation range's maximum "
                               "value.")
            fill_below = np.reshape(self._fill_value_below, (1, -1))
            fill_above = np.reshape(self._fill_value_above, (1, -1))
            y_new = np.where(below[:, None], fill_below, np.where(above[:, None], fill_above, y_new))
        y_new = np.reshape(y_new, x_shape + self._y_extra_shape)
        if self.axis != 0 and x_shape != ():
            nx, ny = len(x_shape), len(self._y_extra_shape)
            order = list(range(nx, nx + self.axis)) + list(range(nx)) + list(range(nx + self.axis, nx + ny))
            y_new = np.transpose(y_new, order)
        return y_new
