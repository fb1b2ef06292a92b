"""Predicates, logical and bitwise operations: outputs without derivatives.

Every function here returns a boolean or integer array (plain, or batched
under vmap) and never carries a tangent, so it can be used freely inside
differentiated code: ``x * (x > 0)``, ``np.where(np.isinf(x), 0.0, x)``,
``np.isclose(a, b)``.  ``allclose`` and ``array_equal`` return a Python
``bool`` on plain arrays and under grad/jvp (the values are concrete), and a
batched boolean under vmap.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ...core.tracer import Tracer
from ...core.values import shape_of
from .arithmetic import document, equal, imag, logical_not, not_equal
from ..families import composite, nondiff
from . import samples
from ..sampling import array


def _special_values(rng):
    x = np.array([[0.0, -np.inf, np.inf], [np.nan, -0.0, 1.5]])
    return [Sample(x), Sample(x.astype(np.float32)), Sample(np.array(2.5))]


def _special_complex(rng):
    return [Sample(np.array([1 + 1j, complex(np.inf, 0), complex(0, -np.inf), complex(np.nan, 1)]))]


def _samples(*builders):
    def make(rng):
        return [s for b in builders for s in b(rng)]

    return make


def _bools(rng):
    return [Sample(rng.uniform(size=(2, 3)) > 0.5, rng.uniform(size=(3,)) > 0.5)]


def _ints(rng):
    return [Sample(rng.integers(0, 64, size=(2, 3)), rng.integers(0, 64, size=(3,))),
            Sample(rng.integers(-8, 8, size=(3,)).astype(np.int32), 5)]


def _shifts(rng):
    return [Sample(rng.integers(0, 64, size=(2, 3)), rng.integers(0, 4, size=(3,))),
            Sample(rng.integers(-8, 8, size=(3,)).astype(np.int32), 2)]


# ---- floating-point predicates ----------------------------------------------------

isinf = nondiff("isinf", np.isinf, samples=_samples(_special_values, _special_complex),
                numpy=[np.isinf])
isposinf = nondiff("isposinf", np.isposinf, samples=_special_values, numpy=[np.isposinf])
isneginf = nondiff("isneginf", np.isneginf, samples=_special_values, numpy=[np.isneginf])
signbit = nondiff("signbit", np.signbit, samples=_special_values, numpy=[np.signbit])


def _isclose_samples(rng):
    a = array(rng, (2, 3))
    b = a + np.array([0.0, 1e-9, 1.0])
    b[0, 0] = np.nan
    a[0, 0] = np.nan
    return [Sample(a, b, rtol=1e-5, atol=1e-8, equal_nan=False),
            Sample(a, b, rtol=1e-5, atol=1e-8, equal_nan=True),
            Sample(a.astype(np.float32), 0.5, rtol=0.5, atol=0.0, equal_nan=False)]


_isclose = nondiff("isclose", lambda a, b, *, rtol, atol, equal_nan:
                   np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan),
                   samples=_isclose_samples)


@composite(np.isclose, samples=samples.close_samples, differentiable=False)
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``np.isclose`` (elementwise, boolean result)."""
    return _isclose(a, b, rtol=float(rtol), atol=float(atol), equal_nan=bool(equal_nan))


def _all(mask):
    """Whether every entry of ``mask`` is true (one value per batch element under
    vmap): no entry is false, which is also right for an empty mask."""
    from ..reductions.basic import sum as reduce_sum

    return equal(reduce_sum(logical_not(mask)), 0)


def _as_bool(result):
    return result if isinstance(result, Tracer) else bool(result)


@composite(np.allclose, samples=samples.close_samples, differentiable=False)
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``np.allclose``: a ``bool`` (batched under vmap); never differentiated."""
    return _as_bool(_all(isclose(a, b, rtol, atol, equal_nan)))


@composite(np.array_equal, samples=samples.equal_samples, differentiable=False)
def array_equal(a1, a2, equal_nan=False):
    """``np.array_equal``: same shape and equal entries (NaN == NaN with ``equal_nan``)."""
    if tuple(shape_of(a1)) != tuple(shape_of(a2)):
        # NumPy's Python bool; for traced inputs a NumPy one, which a transform can return
        return np.False_ if isinstance(a1, Tracer) or isinstance(a2, Tracer) else False
    same = equal(a1, a2)
    if equal_nan:
        from .arithmetic import isnan, logical_and, logical_or

        same = logical_or(same, logical_and(isnan(a1), isnan(a2)))
    return _as_bool(_all(same))


@composite(np.isreal, samples=samples.real_or_complex_test_samples, differentiable=False)
def isreal(x):
    """``np.isreal``: the imaginary part is 0 (all True for real dtypes)."""
    return equal(imag(x), 0)


@composite(np.iscomplex, samples=samples.real_or_complex_test_samples, differentiable=False)
def iscomplex(x):
    """``np.iscomplex``: the imaginary part is not 0 (all False for real dtypes)."""
    return not_equal(imag(x), 0)


# ---- logical and bitwise ------------------------------------------------------------

logical_xor = nondiff("logical_xor", np.logical_xor, samples=_bools, numpy=[np.logical_xor])
bitwise_and = nondiff("bitwise_and", np.bitwise_and, samples=_samples(_bools, _ints),
                      numpy=[np.bitwise_and])
bitwise_or = nondiff("bitwise_or", np.bitwise_or, samples=_samples(_bools, _ints),
                     numpy=[np.bitwise_or])
bitwise_xor = nondiff("bitwise_xor", np.bitwise_xor, samples=_samples(_bools, _ints),
                      numpy=[np.bitwise_xor])
invert = nondiff("invert", np.invert,
                 samples=lambda rng: [Sample(rng.uniform(size=(2, 3)) > 0.5),
                                      Sample(rng.integers(-8, 8, size=(3,)))],
                 numpy=[np.invert])
left_shift = nondiff("left_shift", np.left_shift, samples=_shifts, numpy=[np.left_shift])
right_shift = nondiff("right_shift", np.right_shift, samples=_shifts, numpy=[np.right_shift])


document(globals())

__all__ = ["isinf", "isposinf", "isneginf", "signbit", "isclose", "allclose", "array_equal",
           "isreal", "iscomplex", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
           "invert", "left_shift", "right_shift"]
