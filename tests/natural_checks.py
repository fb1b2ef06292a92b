"""Comparisons shared by the natural-program test files: a program's value under a
transform against plain NumPy's (type, dtype, shape, value) and a derivative
against five-point differences of the plain program."""
from __future__ import annotations

import numpy as np

from npfunc.testing import numerical_jacobian


def fd(f, x, eps=1e-5):
    """Five-point central differences of the plain program."""
    return numerical_jacobian(f, np.asarray(x, dtype=float), eps, order=4)


def assert_same(got, want, rtol=1e-12, atol=0.0):
    """Same Python type (array, NumPy scalar, float), dtype, shape and value (to rounding)."""
    assert type(got) is type(want), (type(got), type(want))
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def assert_deriv(got, want, rtol=1e-5, atol=1e-8):
    """A derivative: the shape of ``want`` and its values."""
    got = np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
