"""``multivariate_normal`` and ``dirichlet`` (logpdf, pdf, entropy), differentiable
in the point and in every parameter (``mean``, ``cov``, ``alpha``).

``multivariate_normal`` works from the Cholesky factor of ``cov`` (one
triangular solve for all points); a 1-d ``cov`` (the diagonal) or a scalar
needs no factorization.  With ``allow_singular=True`` it follows SciPy's
eigendecomposition (pseudo-determinant, points off the support get -inf).
Like SciPy, only the lower triangle of ``cov`` is read, so the gradient
with respect to ``cov`` lives in the lower triangle (for a symmetric
parametrization such as ``cov = A @ A.T`` the chain rule gives the same
result as a symmetrized gradient).

Input checks that look at values (positive definiteness, the simplex for
``dirichlet``) run on plain arrays as in SciPy; on traced values they are
skipped (a check on a value is a Python branch, which ``vmap`` cannot take).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ...core.errors import UnsupportedOperationError
from ...core.values import ndim_of, shape_of
from ...primitives.linalg.solve import triangular_solve
from ._base import Frozen, as_float, is_traced, squeeze_scalar

_LOG_2PI = math.log(2 * math.pi)


def _squeeze(out):
    return squeeze_scalar(np.squeeze(out))


class multivariate_normal_gen:
    """Multivariate normal ``scipy.stats.multivariate_normal`` (mean, cov, allow_singular)."""

    name = "multivariate_normal"

    def __call__(self, mean=None, cov=1, allow_singular=False):
        """A frozen distribution: ``multivariate_normal(mean, cov).logpdf(x)``."""
        self._params(mean, cov)
        return Frozen(self, (), {"mean": mean, "cov": cov, "allow_singular": allow_singular})

    # ---- SciPy's parameter and quantile processing, without converting traced values ------------
    def _params(self, mean, cov):
        if hasattr(cov, "covariance") and hasattr(cov, "whiten"):
            raise UnsupportedOperationError(
                "npfunc.scipy.stats.multivariate_normal: scipy.stats.Covariance objects are not supported; "
                "pass the covariance matrix (or its diagonal, or a scalar) as an array")
        cov = as_float(1.0 if cov is None else cov)
        if mean is None:
            dim = 1 if ndim_of(cov) < 2 else shape_of(cov)[0]
            mean = np.zeros(dim)
        else:
            mean = as_float(mean)
            dim = math.prod(shape_of(mean))
            if ndim_of(mean) != 1:
                mean = np.reshape(mean, (dim,)) if dim == 1 else mean
        if ndim_of(mean) != 1 or shape_of(mean)[0] != dim:
            raise ValueError(f"Array 'mean' must be a vector of length {dim}.")
        if dim == 1 and math.prod(shape_of(cov)) == 1:
            cov = np.reshape(cov, ())
        nd = ndim_of(cov)
        if nd > 2:
            raise ValueError(f"Array 'cov' must be at most two-dimensional, but cov.ndim = {nd}")
        if nd == 1 and shape_of(cov)[0] != dim:
            raise ValueError(f"Array 'cov' must be a vector of length {dim}.")
        if nd == 2 and tuple(shape_of(cov)) != (dim, dim):
            rows, cols = shape_of(cov)
            msg = ("Array 'cov' must be square if it is two dimensional, but cov.shape = "
                   f"{tuple(shape_of(cov))}." if rows != cols else
                   f"Dimension mismatch: array 'cov' is of shape {tuple(shape_of(cov))}, but 'mean' is a "
                   f"vector of length {dim}.")
            raise ValueError(msg)
        return dim, mean, cov

    @staticmethod
    def _quantiles(x, dim):
        x = as_float(x)
        if ndim_of(x) == 0:
            x = np.reshape(x, (1,))
        if ndim_of(x) == 1:
            x = np.reshape(x, (-1, 1) if dim == 1 else (1, -1))
        return x

    # ---- log-density ------------------------------------------------------------------------
    def _check_plain(self, cov, allow_singular):
        """SciPy's value checks (plain arrays only)."""
        c = np.asarray(cov)
        s = np.reshape(c, -1) if c.ndim < 2 else np.linalg.eigvalsh(c)
        eps = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
        if np.min(s) < -eps:
            raise ValueError("The input matrix must be symmetric positive semidefinite.")
        if not allow_singular and np.min(s) <= eps:
            raise np.linalg.LinAlgError("When `allow_singular is False`, the input matrix must be symmetric "
                                        "positive definite.")

    def logpdf(self, x, mean=None, cov=1, allow_singular=False):
        """Log of the density at ``x`` (points along the last axis), SciPy's signature."""
        dim, mean, cov = self._params(mean, cov)
        x = self._quantiles(x, dim)
        if not is_traced(cov):
            self._check_plain(cov, allow_singular)
        dev = x - mean
        if allow_singular:
            return _squeeze(self._logpdf_eigh(dev, cov, dim))
        if ndim_of(cov) < 2:  # scalar or diagonal: no factorization
            maha = np.sum(dev * dev / cov, axis=-1)
            logdet = dim * np.log(cov) if ndim_of(cov) == 0 else np.sum(np.log(cov))
            return _squeeze(-0.5 * (dim * _LOG_2PI + logdet + maha))
        try:
            low = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError as e:
            raise np.linalg.LinAlgError(
                "multivariate_normal.logpdf: cov is not symmetric positive definite (Cholesky failed); "
                "pass allow_singular=True for a singular covariance") from e
        lead = shape_of(dev)[:-1]
        cols = np.reshape(dev, (-1, dim)).T
        white = triangular_solve(low, cols, lower=True)
        maha = np.reshape(np.sum(white * white, axis=0), lead)
        logdet = 2.0 * np.sum(np.log(np.diagonal(low)))
        return _squeeze(-0.5 * (dim * _LOG_2PI + logdet + maha))

    def _logpdf_eigh(self, dev, cov, dim):
        if ndim_of(cov) < 2:
            cov = cov * np.eye(dim) if ndim_of(cov) == 0 else np.diag(cov)
        s, u = np.linalg.eigh(cov)
        eps = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
        keep = s > eps
        s_safe = np.where(keep, s, 1.0)
        log_pdet = np.sum(np.where(keep, np.log(s_safe), 0.0))
        rank = np.sum(keep)
        proj = dev @ u
        maha = np.sum(np.where(keep, proj * proj / s_safe, 0.0), axis=-1)
        out = -0.5 * (rank * _LOG_2PI + log_pdet + maha)
        off = np.sum(np.where(keep, 0.0, proj * proj), axis=-1)
        return np.where(off < (1e3 * eps) ** 2, out, -np.inf)

    def pdf(self, x, mean=None, cov=1, allow_singular=False):
        """Density at ``x``."""
        return np.exp(self.logpdf(x, mean, cov, allow_singular))

    def entropy(self, mean=None, cov=1, allow_singular=False):
        """Differential entropy ``(rank (1 + log 2 pi) + log pdet(cov)) / 2`` (``mean`` has no effect)."""
        dim, mean, cov = self._params(mean, cov)
        if not is_traced(cov):
            self._check_plain(cov, allow_singular)
        if allow_singular:
            full = cov if ndim_of(cov) == 2 else (cov * np.eye(dim) if ndim_of(cov) == 0 else np.diag(cov))
            s = np.linalg.eigvalsh(full)
            eps = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
            keep = s > eps
            rank = np.sum(keep)
            log_pdet = np.sum(np.where(keep, np.log(np.where(keep, s, 1.0)), 0.0))
        elif ndim_of(cov) < 2:
            rank = dim
            log_pdet = dim * np.log(cov) if ndim_of(cov) == 0 else np.sum(np.log(cov))
        else:
            rank = dim
            log_pdet = 2.0 * np.sum(np.log(np.diagonal(np.linalg.cholesky(cov))))
        return squeeze_scalar(0.5 * (rank * (1 + _LOG_2PI) + log_pdet))

    def _no_cdf(self, *args, **kwargs):
        raise UnsupportedOperationError(
            "npfunc.scipy.stats.multivariate_normal.cdf/logcdf are not supported on traced values (SciPy "
            "computes them by randomized quasi-Monte Carlo integration, which has no useful derivative)")

    cdf = logcdf = _no_cdf

    def __repr__(self):
        return "<npfunc.scipy.stats.multivariate_normal>"


class dirichlet_gen:
    """Dirichlet distribution ``scipy.stats.dirichlet`` (alpha).  As in SciPy,
    the components of ``x`` run along its *first* axis (shape (K,) or (K, N)),
    and ``x`` may omit the last component (it is then 1 - sum)."""

    name = "dirichlet"

    def __call__(self, alpha):
        """A frozen distribution: ``dirichlet(alpha).logpdf(x)``."""
        return Frozen(self, (alpha,), {})

    @staticmethod
    def _inputs(x, alpha):
        alpha = as_float(alpha)
        if not is_traced(alpha):
            if np.min(alpha) <= 0:
                raise ValueError("All parameters must be greater than 0")
        if ndim_of(alpha) != 1:
            raise ValueError(f"Parameter vector 'a' must be one dimensional, but a.shape = {shape_of(alpha)}.")
        x = as_float(x)
        k = shape_of(alpha)[0]
        n = shape_of(x)[0] if ndim_of(x) else 0
        if n + 1 != k and n != k:
            raise ValueError("Vector 'x' must have either the same number of entries as, or one entry fewer "
                             f"than, parameter vector 'a', but alpha.shape = {shape_of(alpha)} and "
                             f"x.shape = {shape_of(x)}.")
        if n != k:
            if ndim_of(x) > 2:
                raise ValueError("The input must be one dimensional or a two dimensional matrix containing "
                                 "the entries.")
            last = 1 - np.sum(x, axis=0)
            x = np.concatenate([x, np.expand_dims(last, 0)], axis=0)
        if not is_traced(x, alpha):
            xa = np.asarray(x)
            if np.min(xa) < 0:
                raise ValueError("Each entry in 'x' must be greater than or equal to zero.")
            if np.max(xa) > 1:
                raise ValueError("Each entry in 'x' must be smaller or equal one.")
            low = np.reshape(np.asarray(alpha) < 1, (k,) + (1,) * (xa.ndim - 1))
            if np.any((xa == 0) & low):
                raise ValueError("Each entry in 'x' must be greater than zero if its alpha is less than one.")
            if (np.abs(np.sum(xa, 0) - 1.0) > 10e-10).any():
                raise ValueError("The input vector 'x' must lie within the normal simplex. but "
                                 f"np.sum(x, 0) = {np.sum(xa, 0)}.")
        return x, alpha

    def logpdf(self, x, alpha):
        """Log of the density at ``x`` (components along the first axis)."""
        x, alpha = self._inputs(x, alpha)
        lnb = np.sum(sc.gammaln(alpha)) - sc.gammaln(np.sum(alpha))
        a = np.reshape(alpha, (shape_of(alpha)[0],) + (1,) * (ndim_of(x) - 1))
        return _squeeze(np.sum(sc.xlogy(a - 1, x), axis=0) - lnb)

    def pdf(self, x, alpha):
        """Density at ``x``."""
        return np.exp(self.logpdf(x, alpha))

    def entropy(self, alpha):
        """Differential entropy ``lnB(alpha) + (a0 - K) psi(a0) - sum (a_j - 1) psi(a_j)``."""
        alpha = as_float(alpha)
        if not is_traced(alpha) and np.min(alpha) <= 0:
            raise ValueError("All parameters must be greater than 0")
        if ndim_of(alpha) != 1:
            raise ValueError(f"Parameter vector 'a' must be one dimensional, but a.shape = {shape_of(alpha)}.")
        a0 = np.sum(alpha)
        lnb = np.sum(sc.gammaln(alpha)) - sc.gammaln(a0)
        k = shape_of(alpha)[0]
        return squeeze_scalar(lnb + (a0 - k) * sc.psi(a0) - np.sum((alpha - 1) * sc.psi(alpha)))

    def __repr__(self):
        return "<npfunc.scipy.stats.dirichlet>"


multivariate_normal = multivariate_normal_gen()
dirichlet = dirichlet_gen()
