"""``RegularGridInterpolator`` and ``interpn`` on traced values.

'linear' and 'nearest' follow SciPy's hypercube formulas (indices from
``searchsorted``, weights from the normalised distances), differentiable in
the points, the values and the grid coordinates (nearest: in the values
only).  The spline methods ('slinear', 'cubic', 'quintic', 'pchip' and the
``*_legacy`` names) interpolate one axis at a time -- tensor-product
interpolation is separable -- with ``make_interp_spline`` /
``PchipInterpolator``: first along the last axis for all points at once,
then along each earlier axis with one spline per point.  SciPy 1.17 solves
the tensor-product system of 'slinear'/'cubic'/'quintic' iteratively
(``gcrotmk``); the interpolant is the same up to that solver's tolerance.
"""
from __future__ import annotations

import itertools

import numpy as np

from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array, ensure, is_traced
from ._bspline import make_interp_spline
from ._cubic import PchipInterpolator
from ._ppoly import at, checked

__all__ = ["RegularGridInterpolator", "interpn"]

_DEGREE = {"slinear": 1, "cubic": 3, "quintic": 5, "pchip": 3, "slinear_legacy": 1, "cubic_legacy": 3,
           "quintic_legacy": 5}
_METHODS = ("linear", "nearest") + tuple(_DEGREE)


def _known(p):
    """The values of ``p`` when they are known (plain, or under grad/jvp); else None."""
    if not is_traced(p):
        return np.asarray(p)
    from ...primitives.elementwise.arithmetic import stop_gradient

    value = stop_gradient(p)
    return None if is_traced(value) else np.asarray(value)


def _grid(points):
    grid, descending = [], []
    for i, p in enumerate(points):
        p = as_array(p)
        p = p if dtype_of(p) == np.float64 else p.astype(np.float64)
        known = _known(p)
        if known is not None and not np.all(known[1:] > known[:-1]) and np.all(known[1:] < known[:-1]):
            descending.append(i)
            p = np.flip(p)
        p = checked(p, p[1:] <= p[:-1], f"The points in dimension {i} must be strictly ascending or descending")
        grid.append(p)
    return tuple(grid), tuple(descending)


class RegularGridInterpolator:
    """``scipy.interpolate.RegularGridInterpolator(points, values, method='linear',
    bounds_error=True, fill_value=nan)`` on traced grids, values and points.

    >>> import numpy as np, npfunc
    >>> g = (np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0]))
    >>> v = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> RegularGridInterpolator(g, v)(np.array([[0.5, 0.5], [1.5, 0.25]]))
    array([1.5 , 3.25])
    >>> npfunc.grad(lambda p: RegularGridInterpolator(g, v)(p).sum())(np.array([[0.5, 0.5]]))
    array([[2., 1.]])
    """

    def __init__(self, points, values, method="linear", bounds_error=True, fill_value=np.nan, *, solver=None,
                 solver_args=None):
        if method not in _METHODS:
            raise ValueError(f"Method '{method}' is not defined")
        if solver is not None or solver_args:
            raise NotImplementedError("npfunc.scipy.interpolate.RegularGridInterpolator: solver/solver_args are "
                                      "not supported (the spline methods are solved exactly, axis by axis)")
        if method in _DEGREE:
            self._validate_grid(points, method)
        self.method = method
        self.bounds_error = bounds_error
        self.grid, self._descending = _grid(points)
        values = as_array(values)
        if dtype_of(values).kind not in "fc":
            values = values.astype(np.float64)
        if len(self.grid) > ndim_of(values):
            raise ValueError(f"There are {len(self.grid)} point arrays, but values has {ndim_of(values)} "
                             "dimensions")
        for i, p in enumerate(self.grid):
            if shape_of(p)[0] != shape_of(values)[i]:
                raise ValueError(f"There are {shape_of(p)[0]} points and {shape_of(values)[i]} values in "
                                 f"dimension {i}")
        if fill_value is not None:
            fdtype = dtype_of(fill_value) if is_traced(fill_value) else np.asarray(fill_value).dtype
            if not np.can_cast(fdtype, dtype_of(values), casting="same_kind"):
                raise ValueError("fill_value must be either 'None' or of a type compatible with values")
        self.fill_value = fill_value
        if self._descending:
            values = np.flip(values, axis=self._descending)
        if method == "pchip" and dtype_of(values).kind == "c":
            raise ValueError("`PchipInterpolator` only works with real values. If you are trying to use the real "
                             "components of the passed array, use `np.real` on the array before passing to "
                             "`RegularGridInterpolator`.")
        self.values = values

    @staticmethod
    def _validate_grid(points, method):
        k = _DEGREE[method]
        for i, p in enumerate(points):
            size = shape_of(np.atleast_1d(as_array(p)))[0]
            if size <= k:
                raise ValueError(f"There are {size} points in dimension {i}, but method {method} requires at least "
                                 f" {k + 1} points per dimension.")

    def __call__(self, xi, method=None, *, nu=None):
        """Interpolated values at the points ``xi`` (``(..., ndim)`` or a tuple of
        coordinate arrays); ``nu`` gives derivative orders per dimension (spline methods)."""
        method = self.method if method is None else method
        if method not in _METHODS:
            raise ValueError(f"Method '{method}' is not defined")
        if method in _DEGREE and method != self.method:
            self._validate_grid(self.grid, method)
        if nu is not None and method not in ("slinear", "cubic", "quintic"):
            raise ValueError(f"Can only compute derivatives for methods ('slinear', 'cubic', 'quintic'), got "
                             f"method ={method!r}.")
        ndim = len(self.grid)
        xi = _coords(xi, ndim)
        xi_shape = tuple(shape_of(xi))
        xi = np.reshape(xi, (-1, ndim))
        xi = xi if dtype_of(xi) == np.float64 else xi.astype(np.float64)
        nans = np.any(np.isnan(xi), axis=-1)
        out_of_bounds = None
        if self.bounds_error:
            for i, g in enumerate(self.grid):
                p = xi[:, i]
                bad = ensure((p < g[0]) | (p > g[-1]), "all_false",
                             f"One of the requested xi is out of bounds in dimension {i}")
                xi = np.where(np.any(bad), xi, xi)
        else:
            out_of_bounds = np.zeros(shape_of(xi)[0], bool)
            for i, g in enumerate(self.grid):
                out_of_bounds = out_of_bounds | (xi[:, i] < g[0]) | (xi[:, i] > g[-1])
        if method == "linear":
            result = self._linear(xi)
        elif method == "nearest":
            result = self._nearest(xi)
        else:
            result = self._spline(xi, method, nu)
        extra = (1,) * (ndim_of(self.values) - ndim)
        if not self.bounds_error and self.fill_value is not None:
            result = np.where(np.reshape(out_of_bounds, (-1,) + extra), self.fill_value, result)
        result = np.where(np.reshape(nans, (-1,) + extra), np.nan, result)
        return np.reshape(result, xi_shape[:-1] + tuple(shape_of(self.values))[ndim:])

    def _indices(self, xi):
        indices, distances = [], []
        for i, g in enumerate(self.grid):
            p = xi[:, i]
            idx = np.clip(np.searchsorted(g, p, side="right") - 1, 0, shape_of(g)[0] - 2)
            indices.append(idx)
            lo = at(g, idx)
            distances.append((p - lo) / (at(g, idx + 1) - lo))
        return indices, distances

    def _linear(self, xi):
        indices, distances = self._indices(xi)
        extra = (1,) * (ndim_of(self.values) - len(indices))
        total = 0.0
        for corner in itertools.product((0, 1), repeat=len(indices)):
            weight = 1.0
            for c, d in zip(corner, distances):
                weight = weight * (d if c else 1 - d)
            edge = tuple(i + c for i, c in zip(indices, corner))
            total = total + at(self.values, edge) * np.reshape(weight, (-1,) + extra)
        return total

    def _nearest(self, xi):
        indices, distances = self._indices(xi)
        return at(self.values, tuple(np.where(d <= 0.5, i, i + 1) for i, d in zip(indices, distances)))

    def _spline(self, xi, method, nu):
        ndim = len(self.grid)
        k = _DEGREE[method]
        nu = (0,) * ndim if nu is None else tuple(int(v) for v in np.broadcast_to(nu, (ndim,)))
        values = np.moveaxis(self.values, ndim - 1, 0)  # the last grid axis first
        last = ndim - 1
        if method == "pchip":
            if nu[last]:
                raise ValueError("pchip: derivatives are not supported")
            folded = PchipInterpolator(self.grid[last], values, axis=0)(xi[:, last])
        else:
            folded = make_interp_spline(self.grid[last], values, k=k, axis=0)(xi[:, last], nu=nu[last])
        # folded: (m, n_0, ..., n_{last-1}, ...): one dataset per point
        for i in range(last - 1, -1, -1):
            data = np.moveaxis(folded, i + 1, 0)  # (n_i, m, ...)
            if method == "pchip":
                folded = PchipInterpolator(self.grid[i], data, axis=0).evaluate_each(xi[:, i])
            else:
                spl = make_interp_spline(self.grid[i], data, k=k, axis=0)
                folded = spl.evaluate_each(xi[:, i], nu=nu[i])
        return folded


def _coords(xi, ndim):
    """SciPy's ``_ndim_coords_from_arrays``: points as ``(..., ndim)``.  A tuple
    holds one coordinate array per dimension (a 1-tuple is its one entry);
    anything else is an array of points, a 1-d one reshaped to ``(-1, ndim)``
    (``[x, y]`` of two arrays is therefore two rows of points, not columns)."""
    if isinstance(xi, tuple) and len(xi) == 1:
        xi = xi[0]
    if isinstance(xi, tuple):
        arrays = np.broadcast_arrays(*[as_array(v) for v in xi])
        return np.stack([a if dtype_of(a) == np.float64 else a.astype(np.float64) for a in arrays], axis=-1)
    xi = as_array(xi)
    if ndim_of(xi) == 1:
        xi = np.reshape(xi, (-1, ndim))
    if ndim_of(xi) == 0 or shape_of(xi)[-1] != ndim:
        got = "a scalar" if ndim_of(xi) == 0 else f"dimension {shape_of(xi)[-1]}"
        raise ValueError(f"The requested sample points xi have {got} but this "
                         f"RegularGridInterpolator has dimension {ndim}")
    return xi


def interpn(points, values, xi, method="linear", bounds_error=True, fill_value=np.nan):
    """``scipy.interpolate.interpn``: interpolation on a regular grid (the
    ``RegularGridInterpolator`` methods; 'splinef2d' is not supported)."""
    if method == "splinef2d":
        raise NotImplementedError("npfunc.scipy.interpolate.interpn: method='splinef2d' is not supported; use "
                                  "'cubic'")
    return RegularGridInterpolator(points, values, method=method, bounds_error=bounds_error,
                                   fill_value=fill_value)(xi)
