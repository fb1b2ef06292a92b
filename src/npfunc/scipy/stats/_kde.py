"""``gaussian_kde``: SciPy's kernel density estimator, differentiable in the
evaluation points, the dataset and the weights (through the bandwidth,
the weighted covariance and its Cholesky factor as well as the kernel sums).

The density is ``sum_i w_i N(x; d_i, factor^2 C)`` with ``C`` the weighted
data covariance (``np.cov(dataset, aweights=weights)``) and ``factor``
Scott's or Silverman's rule, a scalar or a callable, as in SciPy.  It is
evaluated in log space (``logsumexp`` over the data points), which equals
SciPy's direct sum to rounding and gives finite gradients far from the data.
``resample`` and the ``integrate_*`` methods are not provided.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.values import ndim_of, shape_of
from ...primitives.linalg.solve import triangular_solve
from ...primitives.special.logsumexp import logsumexp
from ._base import as_float

_LOG_2PI = math.log(2 * math.pi)


def _atleast_2d(x):
    x = as_float(x)
    if ndim_of(x) == 0:
        return np.reshape(x, (1, 1))
    if ndim_of(x) == 1:
        return np.reshape(x, (1, -1))
    return x


class gaussian_kde:
    """``scipy.stats.gaussian_kde(dataset, bw_method=None, weights=None)`` for traced and
    plain arrays: ``kde(points)``, ``kde.evaluate``, ``kde.pdf``, ``kde.logpdf``.

    >>> import numpy as np, npfunc
    >>> from npfunc.scipy import stats
    >>> data = np.array([0.0, 0.4, 1.1, 2.0])
    >>> npfunc.grad(lambda d: stats.gaussian_kde(d).logpdf(0.5)[0])(data).round(3)
    array([ 0.51 ,  0.181, -0.406, -0.322])
    """

    def __init__(self, dataset, bw_method=None, weights=None):
        self.dataset = _atleast_2d(dataset)
        if not math.prod(shape_of(self.dataset)) > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        self.d, self.n = shape_of(self.dataset)
        if weights is not None:
            w = as_float(weights)
            if ndim_of(w) != 1:
                raise ValueError("`weights` input should be one-dimensional.")
            if shape_of(w)[0] != self.n:
                raise ValueError("`weights` input should be of length n")
            self._weights = w / np.sum(w)
        else:
            self._weights = np.full(self.n, 1.0 / self.n)
        self._neff = 1.0 / np.sum(self._weights * self._weights)
        if self.d > self.n:
            raise ValueError("Number of dimensions is greater than number of samples. This results in a "
                             "singular data covariance matrix, which cannot be treated using the algorithms "
                             "implemented in `gaussian_kde`. Note that `gaussian_kde` interprets each "
                             "*column* of `dataset` to be a point; consider transposing the input to "
                             "`dataset`.")
        self.set_bandwidth(bw_method=bw_method)

    @property
    def weights(self):
        return self._weights

    @property
    def neff(self):
        return self._neff

    def scotts_factor(self):
        """Scott's rule: neff^(-1 / (d + 4))."""
        return np.power(self.neff, -1.0 / (self.d + 4))

    def silverman_factor(self):
        """Silverman's rule: (neff (d + 2) / 4)^(-1 / (d + 4))."""
        return np.power(self.neff * (self.d + 2.0) / 4.0, -1.0 / (self.d + 4))

    covariance_factor = scotts_factor

    def set_bandwidth(self, bw_method=None):
        """SciPy's bandwidth choices: None/'scott', 'silverman', a scalar or a callable of the kde."""
        if bw_method is None or (isinstance(bw_method, str) and bw_method == "scott"):
            self.covariance_factor = self.scotts_factor
        elif isinstance(bw_method, str) and bw_method == "silverman":
            self.covariance_factor = self.silverman_factor
        elif np.isscalar(bw_method) and not isinstance(bw_method, str) or (
                hasattr(bw_method, "shape") and ndim_of(bw_method) == 0):
            self._bw_method = "use constant"
            self.covariance_factor = lambda: bw_method
        elif callable(bw_method):
            self._bw_method = bw_method
            self.covariance_factor = lambda: self._bw_method(self)
        else:
            raise ValueError("`bw_method` should be 'scott', 'silverman', a scalar or a callable.")
        self._compute_covariance()

    def _compute_covariance(self):
        self.factor = self.covariance_factor()
        w = self._weights
        mean = np.sum(self.dataset * w, axis=1)
        dev = self.dataset - np.expand_dims(mean, 1)
        self._data_covariance = (dev * w) @ dev.T / (1.0 - np.sum(w * w))
        self._data_cho_cov = np.linalg.cholesky(self._data_covariance)
        self.covariance = self._data_covariance * self.factor ** 2
        self.cho_cov = self._data_cho_cov * self.factor
        self.log_det = 2.0 * np.sum(np.log(np.diagonal(self.cho_cov))) + self.d * _LOG_2PI

    @property
    def inv_cov(self):
        return np.linalg.inv(self.covariance)

    def _points(self, points):
        points = _atleast_2d(points)
        d, m = shape_of(points)
        if d != self.d:
            if d == 1 and m == self.d:
                points = np.reshape(points, (self.d, 1))
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        return points

    def logpdf(self, x):
        """Log of the estimated density at the points ``x`` (columns, shape (d, m))."""
        points = self._points(x)
        white_data = triangular_solve(self.cho_cov, self.dataset, lower=True)
        white_points = triangular_solve(self.cho_cov, points, lower=True)
        diff = np.expand_dims(white_points, 2) - np.expand_dims(white_data, 1)      # (d, m, n)
        energy = 0.5 * np.sum(diff * diff, axis=0)                                   # (m, n)
        return logsumexp(np.log(self._weights) - energy, axis=1) - 0.5 * self.log_det

    def evaluate(self, points):
        """The estimated density at ``points`` (shape (d, m), or (m,) when d = 1)."""
        return np.exp(self.logpdf(points))

    __call__ = evaluate
    pdf = evaluate
