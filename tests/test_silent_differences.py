"""Regression tests for values and derivatives that differed from NumPy (or
from the documented conventions) without an error; each was found by the
registry samples, which keep checking them under every transform."""
import numpy as np
import pytest
import scipy.special as sc

import npfunc
from npfunc import errors
from npfunc.scipy import stats

STACK8 = np.arange(-60, 60, 5, dtype=np.int8)[:18].reshape(2, 3, 3) * 3


@pytest.mark.parametrize("fn", [np.trace, lambda x: np.linalg.trace(x)])
@pytest.mark.parametrize("x", [STACK8, STACK8 > 0], ids=["int8", "bool"])
def test_trace_of_small_integer_stacks_promotes_under_vmap_and_jit(fn, x):
    expected = np.stack([fn(m) for m in x])
    for got in (npfunc.vmap(fn)(x), npfunc.jit(npfunc.vmap(fn))(x)):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_initial_is_cast_to_the_result_dtype():
    x = np.ones((2, 3), np.float32)
    got = npfunc.vmap(lambda r: np.sum(r, initial=np.float64(0.5)))(x)
    assert got.dtype == np.float32
    got = npfunc.vmap(lambda r: np.max(r.astype(np.int8), initial=np.int64(3)))(x)
    assert got.dtype == np.int8


def test_empty_axis_tuple_still_promotes():
    x = np.array([[100, 100]], np.int8)
    got = npfunc.vmap(lambda r: np.sum(r, axis=()))(x)
    assert got.dtype == np.sum(x[0], axis=()).dtype
    np.testing.assert_array_equal(got, x.astype(got.dtype))


def test_python_scalar_as_the_array_argument_of_clip():
    lo = np.full((2, 3), -1.0, np.float32)
    got = npfunc.vmap(lambda lo: np.clip(1.5, lo, 1.0))(lo)
    assert got.dtype == np.clip(1.5, lo[0], 1.0).dtype == np.float64


@pytest.mark.parametrize("ord", ["nuc", 2, -2, "fro"])
def test_matrix_norm_gradient_at_the_zero_matrix_is_zero(ord):
    g = npfunc.grad(lambda a: np.linalg.norm(a, ord))(np.zeros((2, 3)))
    np.testing.assert_array_equal(g, 0.0)
    g = npfunc.grad(lambda a: np.linalg.matrix_norm(a, ord=ord).sum())(np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(g, 0.0)


def test_empty_vector_norm_with_a_negative_order_matches_numpy():
    with np.errstate(divide="ignore"):
        for ord in (-1, -2, -0.5):
            expected = np.linalg.norm(np.zeros(0), ord)
            out, _ = npfunc.jvp(lambda x: np.linalg.norm(x, ord), (np.zeros(0),), (np.zeros(0),))
            assert out == expected == np.inf
    g = npfunc.grad(lambda x: np.linalg.norm(x, -1))(np.array([0.0, 2.0, -1.0]))
    np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("f,third_at_0", [(sc.i1, 3 / 8), (sc.i0, 0.0)])
def test_bessel_third_derivative_at_and_near_zero(f, third_at_0):
    d3 = npfunc.grad(npfunc.grad(npfunc.grad(f)))
    assert d3(0.0) == pytest.approx(third_at_0, abs=1e-15)
    assert d3(1e-7) == pytest.approx(third_at_0 if f is sc.i1 else 3.75e-8, rel=1e-12)


def test_density_shape_derivative_at_a_support_edge_is_zero():
    for fn, args in ((stats.gamma.pdf, (0.0,)), (stats.gamma.logpdf, (0.0,)), (stats.chi2.pdf, (0.0,))):
        assert npfunc.grad(lambda a: fn(*args, a))(2.5) == 0.0
    assert npfunc.grad(lambda b: stats.beta.pdf(1.0, 2.0, b))(2.5) == 0.0


def test_layout_orders_follow_known_layouts_and_raise_for_unknown_ones():
    weights = np.arange(6.0)

    def f(x):
        return np.ravel(x, order="K") @ weights

    for x, order in ((np.arange(6.0).reshape(2, 3), "C"), (np.arange(6.0).reshape(3, 2).T, "F")):
        # order='K' reads memory order: a C-ordered argument row by row, a transposed one column by column
        np.testing.assert_array_equal(npfunc.vjp(f, x)[0], f(x))
        np.testing.assert_array_equal(npfunc.grad(f)(x), weights.reshape(x.shape, order=order))
    with pytest.raises(errors.UnsupportedOperationError, match="order='K'.*order='C'"):
        npfunc.grad(lambda x: np.ravel(np.sin(x), order="K") @ weights)(np.ones((2, 3)))
    assert npfunc.grad(lambda x: np.ravel(x, order="K").sum())(np.ones(3)).shape == (3,)


def test_lstsq_residuals_of_rank_deficient_batch_elements_raise():
    a = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    with pytest.raises(errors.UnsupportedOperationError, match="rank < 2"):
        npfunc.vmap(lambda a: np.linalg.lstsq(a, np.ones(3))[1])(np.stack([a, a + np.eye(3, 2)]))
