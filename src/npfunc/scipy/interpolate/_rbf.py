"""``RBFInterpolator`` on traced values (global interpolant, ``neighbors=None``).

SciPy's system ``[[K + S, P], [P^T, 0]] [c; d] = [data; 0]`` is built and
solved with npfunc's operations, so the interpolant is differentiable in
the evaluation points, the data values, the data sites, ``smoothing`` and
``epsilon``.  Kernels that are smooth functions of ``r**2`` (gaussian,
multiquadric, inverse_multiquadric, inverse_quadratic) are computed from
``r**2``, so their derivatives of every order are exact where an
evaluation point meets a data site; the others use ``r`` with the norm's
convention (gradient 0 at ``r = 0``): exact for the cubic and quintic
kernels, a subgradient for 'linear', and 0 for the (infinite) second
derivative of 'thin_plate_spline' there.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array, is_traced

__all__ = ["RBFInterpolator"]

_SCALE_INVARIANT = {"linear", "thin_plate_spline", "cubic", "quintic"}
_MIN_DEGREE = {"multiquadric": 0, "linear": 0, "thin_plate_spline": 1, "cubic": 1, "quintic": 2}


def _tps(r2):
    pos = r2 > 0
    safe = np.where(pos, r2, 1.0)
    return np.where(pos, 0.5 * safe * np.log(safe), 0.0)


_FROM_R2 = {"multiquadric": lambda s: -np.sqrt(s + 1), "inverse_multiquadric": lambda s: 1.0 / np.sqrt(s + 1.0),
            "inverse_quadratic": lambda s: 1.0 / (s + 1.0), "gaussian": lambda s: np.exp(-s),
            "thin_plate_spline": _tps}
_FROM_R = {"linear": lambda r: -r, "cubic": lambda r: r ** 3, "quintic": lambda r: -r ** 5}
_AVAILABLE = set(_FROM_R2) | set(_FROM_R)


def _kernel(kernel, a, b):
    diff = a[:, None, :] - b[None, :, :]
    if kernel in _FROM_R2:
        return _FROM_R2[kernel](np.sum(diff * diff, axis=-1))
    return _FROM_R[kernel](np.linalg.norm(diff, axis=-1))


def _monomials(x, powers):
    if shape_of(powers)[0] == 0:
        return np.zeros((shape_of(x)[0], 0))
    return np.prod(x[:, None, :] ** powers, axis=-1)


class RBFInterpolator:
    """``scipy.interpolate.RBFInterpolator(y, d, neighbors=None, smoothing=0.0,
    kernel='thin_plate_spline', epsilon=None, degree=None)``.

    >>> import numpy as np, npfunc
    >>> sites = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> interp = RBFInterpolator(sites, np.array([0.0, 1.0, 1.0, 2.0]))
    >>> interp(np.array([[0.5, 0.5]])).round(6)
    array([1.])
    >>> npfunc.grad(lambda p: interp(p).sum())(np.array([[0.5, 0.5]])).round(6)
    array([[1., 1.]])
    """

    def __init__(self, y, d, neighbors=None, smoothing=0.0, kernel="thin_plate_spline", epsilon=None, degree=None):
        if neighbors is not None and is_traced(y, d, smoothing, epsilon):
            raise UnsupportedOperationError(
                "npfunc.scipy.interpolate.RBFInterpolator: neighbors= selects data points by their values (a "
                "KD-tree query), which traced values cannot do; use neighbors=None (the global interpolant), or "
                "build the interpolator outside the transform")
        self._scipy = None
        y = as_array(y)
        y = y if dtype_of(y) == np.float64 else y.astype(np.float64)
        if ndim_of(y) != 2:
            raise ValueError("`y` must be a 2-dimensional array.")
        ny, ndim = shape_of(y)
        d = as_array(d)
        d_dtype = np.complex128 if dtype_of(d).kind == "c" else np.float64
        d = d.astype(d_dtype) if dtype_of(d) != d_dtype else d
        if shape_of(d)[0] != ny:
            raise ValueError(f"Expected the first axis of `d` to have length {ny}.")
        self.d_shape = tuple(shape_of(d))[1:]
        self.d_dtype = d_dtype
        d = np.reshape(d, (ny, -1))
        smoothing = as_array(smoothing)
        if ndim_of(smoothing) == 0:
            smoothing = np.broadcast_to(smoothing.astype(np.float64), (ny,))
        elif tuple(shape_of(smoothing)) != (ny,):
            raise ValueError(f"Expected `smoothing` to be a scalar or have shape ({ny},).")
        kernel = kernel.lower()
        if kernel not in _AVAILABLE:
            raise ValueError(f"`kernel` must be one of {_AVAILABLE}.")
        if epsilon is None:
            if kernel not in _SCALE_INVARIANT:
                raise ValueError(f"`epsilon` must be specified if `kernel` is not one of {_SCALE_INVARIANT}.")
            epsilon = 1.0
        min_degree = _MIN_DEGREE.get(kernel, -1)
        if degree is None:
            degree = max(min_degree, 0)
        else:
            degree = int(degree)
            if degree < -1:
                raise ValueError("`degree` must be at least -1.")
            if -1 < degree < min_degree:
                warnings.warn(f"`degree` should not be below {min_degree} except -1 when `kernel` is '{kernel}'."
                              "The interpolant may not be uniquely solvable, and the smoothing parameter may have "
                              "an unintuitive effect.", UserWarning, stacklevel=2)
        from scipy.interpolate._rbfinterp_common import _monomial_powers_impl

        powers = np.asarray(_monomial_powers_impl(ndim, degree)).reshape(-1, ndim)
        nobs = ny if neighbors is None else int(min(neighbors, ny))
        if shape_of(powers)[0] > nobs:
            raise ValueError(f"At least {shape_of(powers)[0]} data points are required when `degree` is {degree} "
                             f"and the number of dimensions is {ndim}.")
        self.y, self.d, self.smoothing, self.kernel = y, d, smoothing, kernel
        self.epsilon, self.powers, self.neighbors = epsilon, powers, neighbors
        if neighbors is not None:  # plain values: SciPy's local interpolants
            from scipy.interpolate import RBFInterpolator as _Scipy

            self._scipy = _Scipy(y, np.reshape(d, (ny,) + self.d_shape), neighbors=neighbors, smoothing=smoothing,
                                 kernel=kernel, epsilon=epsilon, degree=degree)
            return
        mins, maxs = np.min(y, axis=0), np.max(y, axis=0)
        self._shift = (maxs + mins) / 2
        scale = (maxs - mins) / 2
        self._scale = np.where(scale == 0.0, 1.0, scale)
        r = shape_of(powers)[0]
        kmat = _kernel(kernel, y * epsilon, y * epsilon)
        pmat = _monomials((y - self._shift) / self._scale, powers)
        top = np.concatenate([kmat + np.diag(smoothing), pmat], axis=1)
        bottom = np.concatenate([pmat.T, np.zeros((r, r))], axis=1)
        lhs = np.concatenate([top, bottom], axis=0)
        rhs = np.concatenate([d, np.zeros((r, shape_of(d)[1]), d_dtype)], axis=0)
        self._coeffs = np.linalg.solve(lhs, rhs)

    def __call__(self, x):
        """The interpolant at the points ``x`` (``(n, ndim)``)."""
        x = as_array(x)
        x = x if dtype_of(x) == np.float64 else x.astype(np.float64)
        if ndim_of(x) != 2:
            raise ValueError("`x` must be a 2-dimensional array.")
        nx, ndim = shape_of(x)
        if ndim != shape_of(self.y)[1]:
            raise ValueError(f"Expected the second axis of `x` to have length {shape_of(self.y)[1]}.")
        if self._scipy is not None:
            if is_traced(x):
                raise UnsupportedOperationError(
                    f"{describe_stack()}: npfunc.scipy.interpolate.RBFInterpolator: an interpolator with neighbors= "
                    "cannot be evaluated "
                    "at traced points (each point selects its neighbours by value); use neighbors=None")
            return self._scipy(x)
        vec = np.concatenate([_kernel(self.kernel, x * self.epsilon, self.y * self.epsilon),
                              _monomials((x - self._shift) / self._scale, self.powers)], axis=-1)
        out = vec @ self._coeffs
        return np.reshape(out, (nx,) + self.d_shape)
