"""Covariance and correlation: ``cov`` and ``corrcoef`` with every keyword
(``y``, ``rowvar``, ``bias``, ``ddof``, ``fweights``, ``aweights``,
``dtype``), composites of ``average``, a centred product and a scaling.

Derivatives flow to the data and to both kinds of weights (through the
weighted mean, the weighted product and the normalisation).  NumPy requires
integral ``fweights``; the check runs on their values under every
transform.  Values are NumPy's bit for bit (the same weighted mean, product
and ``* (1 / fact)`` scaling).  ``corrcoef`` clips to [-1, 1] as NumPy does:
an entry that rounding pushed past 1 (the diagonal, perfectly correlated
rows) has a zero derivative there, which is the exact derivative of the
unclipped value too.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...core.primitive import Composite, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import astype
from ..families import composite, conj
from ..data_dependent import check, peek
from ..indexing.gather import getitem
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays, reshape, transpose
from .statistics import average


def _operand(x):
    return x if isinstance(x, Tracer) else np.asarray(x)


def _ndmin2(x, dtype):
    x = astype(x, dtype)
    nd = ndim_of(x)
    return reshape(x, (1,) * (2 - nd) + tuple(shape_of(x))) if nd < 2 else x


def _sample_weights(weights, name, n, integral):
    w = astype(_operand(weights), np.float64)
    if integral:
        check(w, "integral", "fweights must be integer", TypeError)
    if ndim_of(w) > 1:
        raise RuntimeError(f"cannot handle multidimensional {name}")
    if shape_of(w)[0] != n:
        raise RuntimeError(f"incompatible numbers of samples and {name}")
    check(w, "nonnegative", f"{name} cannot be negative")
    return w


def _cov_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 6), dt)), Sample(array(rng, (5,), dt))]
    x = array(rng, (3, 6))
    out += [
        Sample(x, array(rng, (2, 6)), label="y"),
        Sample(x.T.copy(), None, False, label="rowvar=False"),
        Sample(x.T.copy(), array(rng, (6,)), False, label="rowvar=False, 1-d y"),
        Sample(x, None, True, True, label="bias"),
        Sample(x, None, True, False, 3, label="ddof"),
        Sample(x, None, True, False, None, np.array([1, 2, 1, 3, 1, 2]), label="fweights"),
        Sample(x, None, True, False, None, None, rng.uniform(0.5, 2.0, 6), label="aweights"),
        Sample(x, None, True, False, None, np.array([2, 1, 1, 3, 1, 2]), rng.uniform(0.5, 2.0, 6),
               label="both weights"),
        Sample(x, None, True, False, 0, None, rng.uniform(0.5, 2.0, 6), label="aweights, ddof 0"),
        Sample(x, None, True, True, None, np.array([1, 2, 1, 3, 1, 2]), label="fweights, bias"),
        Sample(x.astype(np.float32), dtype=np.float32, label="dtype"),
        Sample(x, dtype=np.float32, kink=True, label="dtype (float32 arithmetic: no differences)"),
        Sample(array(rng, (1, 4)), label="one variable"),
        Sample(np.array([[1, 4, 2, 8], [0, 3, 3, 1]]), label="integers"),
        Sample(array(rng, (2, 3)) + 1j * array(rng, (2, 3)), label="complex"),
    ]
    return out


@composite(np.cov, samples=_cov_samples)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    """``np.cov``: differentiable in the data and in ``fweights``/``aweights``.

    >>> import numpy as np, npfunc
    >>> x = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0]])
    >>> npfunc.grad(lambda x: np.cov(x)[0, 1])(x)
    array([[ 0.        , -0.5       ,  0.5       ],
           [-0.66666667, -0.16666667,  0.83333333]])
    """
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = _operand(m)
    if ndim_of(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    if y is not None:
        y = _operand(y)
        if ndim_of(y) > 2:
            raise ValueError("y has more than 2 dimensions")
    if dtype is None:
        dtype = np.result_type(dtype_of(m), np.float64) if y is None else \
            np.result_type(dtype_of(m), dtype_of(y), np.float64)
    dtype = np.dtype(dtype)
    X = _ndmin2(m, dtype)
    if not rowvar and ndim_of(m) != 1:
        X = transpose(X)
    if shape_of(X)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y = _ndmin2(y, dtype)
        if not rowvar and shape_of(y)[0] != 1:
            y = transpose(y)
        X = concatenate_arrays([X, y], 0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    n = shape_of(X)[1]
    w = None
    if fweights is not None:
        w = _sample_weights(fweights, "fweights", n, True)
    if aweights is not None:
        aweights = _sample_weights(aweights, "aweights", n, False)
        w = aweights if w is None else w * aweights
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = getitem(w_sum, 0)
    if w is None:
        fact = n - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * np.sum(w * aweights) / w_sum
    fact = _nonpositive_to_zero(fact)
    X = X - reshape(avg, (-1, 1))
    if dtype_of(X) != dtype:  # NumPy subtracts in place: X keeps its dtype
        X = astype(X, dtype)
    X_T = transpose(X) if w is None else transpose(X * w)
    c = np.dot(X, conj(X_T))
    scaled = c * np.true_divide(1, fact)
    c = scaled if dtype_of(scaled) == dtype_of(c) else astype(scaled, dtype_of(c))  # NumPy: c *= ...
    return np.squeeze(c)


def _nonpositive_to_zero(fact):
    """NumPy warns and divides by 0 when the degrees of freedom are not positive."""
    if not isinstance(fact, Tracer):
        if fact <= 0:
            warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
            return 0.0
        return fact
    nonpositive = peek(fact <= 0)  # no single value under vmap and jit: no warning, same result
    if nonpositive is not None and nonpositive:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
    return np.where(fact <= 0, 0.0, fact)


def _weighted_cov_samples(rng):
    x = array(rng, (3, 6))
    return [Sample(x, rng.uniform(0.5, 2.0, 6)), Sample(x, rng.uniform(0.5, 2.0, 6), ddof=0),
            Sample(array(rng, (2, 5), np.float32), rng.uniform(0.5, 2.0, 5).astype(np.float32))]


# aweights are the differentiable weights; they are tested as a positional array.
Composite("np.cov(aweights=)", lambda m, aw, **params: np.cov(m, aweights=aw, **params),
          samples=_weighted_cov_samples)


def _corrcoef_samples(rng):
    out = [Sample(array(rng, (3, 6), dt)) for dt in FLOATS]
    x = array(rng, (3, 6))
    out += [Sample(x, array(rng, (2, 6)), label="y"),
            Sample(x.T.copy(), None, False, label="rowvar=False"),
            Sample(x.astype(np.float32), dtype=np.float32, label="dtype"),
        Sample(x, dtype=np.float32, kink=True, label="dtype (float32 arithmetic: no differences)"),
            Sample(array(rng, (5,)), label="one variable (scalar covariance)"),
            Sample(array(rng, (2, 4)) + 1j * array(rng, (2, 4)), label="complex")]
    return out


@composite(np.corrcoef, samples=_corrcoef_samples)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """``np.corrcoef``: ``cov`` scaled by the standard deviations, clipped to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if ndim_of(c) == 0:  # a single variable: NaN for a zero/NaN/inf variance, else 1
        return c / c
    d = np.diagonal(c)
    stddev = np.sqrt(np.real(d))
    c = c / reshape(stddev, (-1, 1))
    c = c / reshape(stddev, (1, -1))
    if dtype_of(c).kind == "c":
        return np.clip(np.real(c), -1, 1) + np.clip(np.imag(c), -1, 1) * 1j
    return np.clip(c, -1, 1)


__all__ = ["cov", "corrcoef"]
