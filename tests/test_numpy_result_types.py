"""NumPy scalars where NumPy gives scalars, arrays where it gives arrays, and one
object where NumPy returns one object twice, under every transform (the
generated registry checks compare the kinds for every primitive and composite;
these are the cases found by hand)."""
from __future__ import annotations

import numpy as np
import pytest

import npfunc
import npfunc.array_api as xp

X = np.array([0.3, 1.2, -0.7, 2.0])


def _values(f, x):
    """f(x) as jit (recording and replay), grad_and_value, jvp and vjp return it."""
    jitted = npfunc.jit(f)
    return {"jit": jitted(x), "jit replay": jitted(x + 0.25),
            "grad_and_value": npfunc.grad_and_value(lambda v: f(v))(x)[1],
            "jvp": npfunc.jvp(f, (x,), (x,))[0], "vjp": npfunc.vjp(f, x)[0]}


@pytest.mark.parametrize("f", [np.std, np.median, lambda v: np.percentile(v, 30.0), np.nanmean,
                               lambda v: np.einsum("i,i->", v, v), lambda v: np.vdot(v, v),
                               lambda v: np.linalg.norm(v, 1), lambda v: np.quantile(v, 0.25)],
                         ids=["std", "median", "percentile", "nanmean", "einsum", "vdot", "norm1", "quantile"])
def test_statistics_of_a_whole_array_are_numpy_scalars(f):
    for where, value in _values(f, X).items():
        assert type(value) is np.float64, where
        assert np.isclose(value, f(X) if "replay" not in where else f(X + 0.25)), where


def test_a_reduction_over_no_axis_is_a_new_array_and_a_scalar_for_0d_input():
    def f(v):
        y = np.sum(v, axis=())  # NumPy: a new array, so the write below leaves v alone
        y[0] = 5.0
        return v.sum() + y.sum()

    assert npfunc.jit(f)(X.copy()) == f(X.copy())
    np.testing.assert_allclose(npfunc.grad(f)(X.copy()), [1.0, 2.0, 2.0, 2.0])
    zero_d = np.array(0.7)
    for fn in (np.sum, np.prod, np.max, np.min, np.mean):
        assert type(npfunc.jit(fn)(zero_d)) is np.float64
        assert type(npfunc.jvp(fn, (zero_d,), (zero_d,))[0]) is np.float64


def test_replayed_simplifications_keep_numpy_scalars():
    """``a * 1`` of a 0-d array is a NumPy scalar; the optimiser must not hand out ``a``."""
    for x in (np.array(3, dtype=np.int8), np.array(0.5)):
        for f in (lambda a: a * 1, lambda a: a * 0, lambda a: a + 0, lambda a: -(-a)):
            g = npfunc.jit(f)
            assert [type(g(x)) for _ in range(3)] == [type(f(x))] * 3


def test_one_object_returned_twice_is_one_object():
    def f(x):
        v = np.gradient(x) * 10
        return v, v

    for transform in (npfunc.jit, lambda g: npfunc.jit(npfunc.functionalize(g))):
        g = transform(f)
        for _ in range(2):
            v, p = g(X)
            assert v is p

    def g(x):
        v = x * 2
        return v, v.copy(), v

    for _ in range(2):
        a, b, c = npfunc.jit(g)(X)
        assert a is c and a is not b


def test_array_api_results_stay_0d_arrays():
    def f(v):
        return xp.sum(xp.asarray(v) ** 2)

    for where, value in _values(f, X).items():
        assert type(value) is np.ndarray and value.shape == (), where


def test_weighted_quantile_is_an_array_as_in_numpy_and_a_scalar_with_nans():
    w = np.ones(4)

    def f(v):
        return np.quantile(v, 0.3, weights=w, method="inverted_cdf")

    assert type(npfunc.jit(f)(X)) is type(f(X)) is np.ndarray
    with_nan = np.array([1.0, np.nan, 3.0, 4.0])
    assert type(npfunc.jvp(f, (with_nan,), (X,))[0]) is type(f(with_nan)) is np.float64
