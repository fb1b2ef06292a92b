"""``multinomial`` (logpmf, pmf): SciPy's parameter processing, on traced values.

As in SciPy, ``n`` is truncated to an integer (no derivative), and when the
probabilities do not sum to 1 (beyond 10 eps) the last one is replaced by
``1 - sum(p[..., :-1])`` -- so the gradient then flows to the other
entries.  Counts ``x`` that are not non-negative integers summing to ``n``
give -inf (derivative 0); invalid ``n`` or ``p`` give NaN.  ``x`` is
differentiated through the continuous extension of the formula, as for the
other discrete distributions.

>>> import numpy as np, npfunc
>>> from npfunc.scipy import stats
>>> npfunc.grad(lambda p: stats.multinomial.logpmf(np.array([1., 2., 2.]), 5, p))(np.array([0.2, 0.3, 0.5]))
array([5.        , 6.66666667, 4.        ])
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

from ...core.tracer import Tracer
from ...core.values import ndim_of, shape_of
from ...primitives.indexing.aliasing import array_result
from ._base import Frozen, as_float


class multinomial_gen:
    """Multinomial distribution ``scipy.stats.multinomial`` (n, p)."""

    name = "multinomial"

    def __call__(self, n, p):
        """A frozen distribution: ``multinomial(n, p).logpmf(x)``."""
        return Frozen(self, (n, p), {})

    @staticmethod
    def _parameters(n, p):
        p = as_float(p)
        eps = np.finfo(np.result_type(p, np.float32)).eps * 10
        head = p[..., :-1]
        adjusted = 1.0 - np.sum(head, axis=-1)
        off = np.abs(1 - np.sum(p, axis=-1)) > eps
        last = np.where(off, adjusted, p[..., -1])
        p = np.concatenate([head, np.expand_dims(last, -1)], axis=-1)
        bad_p = np.any(p < 0, axis=-1) | np.any(p > 1, axis=-1)
        n = np.trunc(as_float(n))
        return n, p, (n < 0) | bad_p

    @staticmethod
    def _quantiles(x, n, p):
        x = as_float(x)
        if ndim_of(x) == 0:
            raise ValueError("x must be an array.")
        if math.prod(shape_of(x)) != 0 and shape_of(x)[-1] != shape_of(p)[-1]:
            raise ValueError(f"Size of each quantile should be size of p: received {shape_of(x)[-1]}, "
                             f"but expected {shape_of(p)[-1]}.")
        bad = np.any(x != np.floor(x), axis=-1) | np.any(x < 0, axis=-1)
        return x, bad | (np.sum(x, axis=-1) != n)

    def logpmf(self, x, n, p):
        """Log of the probability mass at the count vectors ``x`` (last axis)."""
        n, p, bad_np = self._parameters(n, p)
        x, bad_x = self._quantiles(x, n, p)
        xs = np.where(np.expand_dims(bad_x, -1), 0.0, x)
        ps = np.where(np.expand_dims(bad_np, -1), 0.5, p)
        ns = np.where(bad_np, 0.0, n)
        value = sc.gammaln(ns + 1) + np.sum(sc.xlogy(xs, ps) - sc.gammaln(xs + 1), axis=-1)
        value = np.where(bad_x, -np.inf, value)
        return _as_scipy_returns(np.where(bad_np, np.nan, value))

    def pmf(self, x, n, p):
        """Probability mass at ``x``."""
        return np.exp(self.logpmf(x, n, p))

    def __repr__(self):
        return "<npfunc.scipy.stats.multinomial>"


multinomial = multinomial_gen()


def _as_scipy_returns(value):
    """SciPy's multinomial.logpmf returns ``np.asarray(result)``: a 0-d *array* for one count
    vector (its pmf, np.exp of that, is a NumPy scalar), except for an invalid scalar
    n or p, a Python float NaN (known here only for plain values)."""
    if ndim_of(value) != 0:
        return value
    if isinstance(value, Tracer):
        return array_result(value)
    value = np.asarray(value)
    return float(value) if np.isnan(value) else value
