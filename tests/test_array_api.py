"""npfunc.array_api: a conformance smoke test that needs no external suite.

The full check is the data-apis suite (array-api-tests, run as described in
docs/array_api.md, also on traced values with tools/array_api_suite.py);
these tests keep the essentials in the repository: every name of the
2024.12 standard exists, traced values answer ``__array_namespace__`` under
every transform, the places where the standard differs from NumPy follow the
standard, and buffers made inside a transform take traced writes.  The
functions with logic of their own also have registry samples
(``array_api._samples``), so test_registry checks them under every transform.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import npfunc
import npfunc.array_api as xp
from npfunc.errors import UnsupportedOperationError

# ---- names --------------------------------------------------------------------------------

MAIN = """
arange asarray empty empty_like eye from_dlpack full full_like linspace meshgrid ones ones_like tril triu
zeros zeros_like astype can_cast finfo iinfo isdtype result_type abs acos acosh add asin asinh atan atan2
atanh bitwise_and bitwise_left_shift bitwise_invert bitwise_or bitwise_right_shift bitwise_xor ceil clip
conj copysign cos cosh divide equal exp expm1 floor floor_divide greater greater_equal hypot imag isfinite
isinf isnan less less_equal log log1p log2 log10 logaddexp logical_and logical_not logical_or logical_xor
maximum minimum multiply negative nextafter not_equal positive pow real reciprocal remainder round sign
signbit sin sinh square sqrt subtract tan tanh trunc take take_along_axis matmul matrix_transpose tensordot
vecdot broadcast_arrays broadcast_to concat expand_dims flip moveaxis permute_dims repeat reshape roll
squeeze stack tile unstack argmax argmin count_nonzero nonzero searchsorted where unique_all unique_counts
unique_inverse unique_values argsort sort cumulative_sum cumulative_prod max mean min prod std sum var all
any diff __array_namespace_info__ e inf nan pi newaxis bool int8 int16 int32 int64 uint8 uint16 uint32
uint64 float32 float64 complex64 complex128
""".split()
LINALG = """cholesky cross det diagonal eigh eigvalsh inv matmul matrix_norm matrix_power matrix_rank
matrix_transpose outer pinv qr slogdet solve svd svdvals tensordot trace vecdot vector_norm""".split()
FFT = "fft ifft fftn ifftn rfft irfft rfftn irfftn hfft ihfft fftfreq rfftfreq fftshift ifftshift".split()


def test_every_name_of_the_2024_12_standard():
    assert xp.__array_api_version__ == "2024.12"
    assert [n for n in MAIN if not hasattr(xp, n)] == []
    assert [n for n in LINALG if not hasattr(xp.linalg, n)] == []
    assert [n for n in FFT if not hasattr(xp.fft, n)] == []
    assert set(MAIN) - {"newaxis"} <= set(xp.__all__)


TRANSFORMS = {
    "grad": lambda f, x: npfunc.grad(lambda x: f(x).sum())(x),
    "jvp": lambda f, x: npfunc.jvp(f, (x,), (np.ones_like(x),))[1],
    "vjp": lambda f, x: npfunc.vjp(f, x)[1](np.ones(2))[0],
    "vmap": lambda f, x: npfunc.vmap(f)(np.stack([x, x])),
    "jacrev": lambda f, x: npfunc.jacrev(f)(x),
    "jacfwd": lambda f, x: npfunc.jacfwd(f)(x),
    "hessian": lambda f, x: npfunc.hessian(lambda x: f(x).sum())(x),
    "jit": lambda f, x: npfunc.jit(f)(x),
    "jit(grad)": lambda f, x: npfunc.jit(npfunc.grad(lambda x: f(x).sum()))(x),
    "linearize": lambda f, x: npfunc.linearize(f, x)[1](np.ones_like(x)),
    "vmap(jacrev)": lambda f, x: npfunc.vmap(npfunc.jacrev(f))(np.stack([x, x])),
    "functionalize": lambda f, x: npfunc.grad(lambda x: npfunc.functionalize(f)(x).sum())(x),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_traced_values_answer_the_namespace(transform):
    seen = []

    def f(x):
        ns = x.__array_namespace__()
        seen.append(ns is xp and x.__array_namespace__(api_version="2023.12") is xp)
        return ns.exp(ns.std(x, correction=1) * x)

    TRANSFORMS[transform](f, np.array([0.5, 2.0]))
    assert seen and all(seen)


def test_unknown_api_version_is_refused():
    with pytest.raises(ValueError, match="2024.12"):
        npfunc.grad(lambda x: x.__array_namespace__(api_version="2099.01").sum(x))(np.ones(2))


# ---- the namespace against NumPy and the standard, under the transforms -------------------------

def _check(f, x, rtol=1e-6):
    """``f`` (namespace functions) under grad, vmap and second order, against
    central differences of its plain value."""
    x = np.asarray(x, dtype=float)
    value = f(x)
    g = npfunc.grad(lambda x: f(x).sum())(x)
    eps = 1e-6
    fd = np.array([(f(x + eps * d).sum() - f(x - eps * d).sum()) / (2 * eps)
                   for d in np.eye(x.size).reshape((x.size,) + x.shape)]).reshape(x.shape)
    np.testing.assert_allclose(g, fd, rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(npfunc.vmap(f)(np.stack([x, 2 * x])), np.stack([value, f(2 * x)]), rtol=1e-12)
    h = npfunc.jacfwd(npfunc.grad(lambda x: f(x).sum()))(x)
    hfd = np.array([(npfunc.grad(lambda x: f(x).sum())(x + eps * d) - npfunc.grad(lambda x: f(x).sum())(x - eps * d))
                    / (2 * eps) for d in np.eye(x.size).reshape((x.size,) + x.shape)])
    np.testing.assert_allclose(h.reshape(hfd.shape), hfd, rtol=1e-4, atol=1e-6)


CASES = {
    "std(correction=1)": lambda x: xp.std(x, correction=1) * x,
    "var(axis, keepdims)": lambda x: xp.var(xp.reshape(x, (2, 2)), axis=0, correction=0.5, keepdims=True),
    "sort(descending)": lambda x: xp.sort(x, descending=True) * xp.arange(4.0),
    "clip(array bounds)": lambda x: xp.clip(x, xp.asarray(-0.5), 0.9) ** 2,
    "cumulative_sum(include_initial)": lambda x: xp.cumulative_sum(x * x, include_initial=True),
    "take": lambda x: xp.take(x, xp.asarray([3, 0, 0]), axis=0) * xp.asarray([1.0, 2.0, 3.0]),
    "matrix_transpose": lambda x: xp.matrix_transpose(xp.reshape(x, (2, 2))) @ xp.reshape(x, (2, 2)),
    "vecdot": lambda x: xp.vecdot(xp.reshape(x, (2, 2)), xp.reshape(x[::-1], (2, 2))),
    "linalg.slogdet": lambda x: xp.linalg.slogdet(xp.reshape(x, (2, 2)) + 3 * xp.eye(2)).logabsdet,
    "linalg.cholesky(upper)": lambda x: xp.linalg.cholesky(
        xp.reshape(x, (2, 2)) @ xp.matrix_transpose(xp.reshape(x, (2, 2))) + xp.eye(2), upper=True),
    "fft.rfft(ortho)": lambda x: xp.abs(xp.fft.rfft(x, norm="ortho")) ** 2,
    "logaddexp + where": lambda x: xp.where(x > 0, xp.logaddexp(x, 1.0), xp.expm1(x)),
    "zeros buffer written": lambda x: _buffer(x),
    "asarray of traced scalars": lambda x: xp.asarray([x[0] * x[1], x[2]]) * xp.sum(x),
    "full(traced fill)": lambda x: xp.full((3,), xp.sum(x)) * xp.arange(3.0),
}


def _buffer(x):
    out = xp.zeros_like(x)  # SciPy's way: a buffer filled with computed values
    out[1:] = x[:-1] * x[1:]
    out[0] = xp.sin(x[0])
    return out


@pytest.mark.parametrize("case", CASES)
def test_namespace_functions_under_transforms(case):
    _check(CASES[case], [0.3, -1.2, 2.0, 0.7])


def test_jit_replays_namespace_code():
    f = CASES["zeros buffer written"]
    x = np.array([0.3, -1.2, 2.0, 0.7])
    jitted = npfunc.jit(npfunc.grad(lambda x: f(x).sum()))
    np.testing.assert_allclose(jitted(x), npfunc.grad(lambda x: f(x).sum())(x))
    np.testing.assert_allclose(jitted(2 * x), npfunc.grad(lambda x: f(x).sum())(2 * x))


# ---- where the standard differs from NumPy ---------------------------------------------------

def test_results_are_arrays_not_numpy_scalars():
    for out in (xp.sum(np.ones(3)), xp.max(np.ones(3)), xp.linalg.det(np.eye(2)), xp.add(np.array(1.0), 2.0),
                xp.vecdot(np.ones(2), np.ones(2)), xp.argmax(np.arange(3))):
        assert type(out) is np.ndarray and out.ndim == 0


def test_sort_and_argsort_follow_the_standard():
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(xp.argsort(x, descending=True), [0, 2, 3, 1, 4])  # ties keep their order
    np.testing.assert_array_equal(xp.sort(x, descending=True), [3, 3, 2, 1, 1])
    np.testing.assert_array_equal(xp.argsort(x), [1, 4, 3, 0, 2])


def test_integer_dtypes_follow_the_standard():
    i8 = np.array([1, 5, 9], dtype=np.int8)
    assert xp.clip(i8, 2, 6).dtype == np.int8 and xp.ceil(i8).dtype == np.int8
    assert xp.sum(np.zeros(2, np.uint8)).dtype == np.uint64
    assert xp.sum(np.zeros(2, np.uint8), dtype=xp.uint8).dtype == np.uint8
    assert xp.sum(np.array(3, np.int8)).dtype == np.int64  # also for a 0-d input
    assert xp.cumulative_sum(np.ones(2, np.uint8), dtype=xp.uint8, include_initial=True).dtype == np.uint8
    assert xp.linalg.trace(np.ones((2, 2), np.uint8)).dtype == np.uint64


def test_promotion_and_data_type_functions():
    assert xp.result_type(xp.int8, 1) == np.int8 and xp.result_type(np.ones(2, np.float32), 1.0) == np.float32
    assert xp.result_type(xp.float32, xp.complex64, xp.float64) == np.complex128
    with pytest.raises(ValueError):
        xp.result_type(1, 2.0)
    assert xp.can_cast(xp.int8, xp.int16) and not xp.can_cast(xp.float64, xp.float32)
    info = xp.finfo(xp.float32)
    assert type(info.eps) is float and info.bits == 32 and info.dtype == np.float32
    assert xp.iinfo(xp.int8).max == 127 and type(xp.iinfo(xp.uint16).min) is int
    assert xp.isdtype(xp.float32, ("integral", "real floating")) and not xp.isdtype(xp.int8, "unsigned integer")
    with pytest.raises(ValueError, match="kind"):
        xp.isdtype(xp.int8, "integer")
    with pytest.raises(TypeError, match="imaginary"):
        xp.astype(np.ones(2, complex), xp.float64)
    with pytest.raises(TypeError, match="not one of the standard"):
        xp.zeros(2, dtype=np.float16)


def test_special_values_follow_the_standard():
    inf = math.inf
    out = xp.floor_divide(np.array([inf, -inf, 1.0, -1.0]), np.array([2.0, 2.0, -inf, inf]))
    np.testing.assert_array_equal(out, [inf, -inf, -0.0, -0.0])
    assert np.signbit(out[2:]).all()
    assert xp.expm1(np.array([complex(inf, 0.0)]))[0] == complex(inf, 0.0)


def test_shapes_and_copies_follow_the_standard():
    with pytest.raises(ValueError):
        xp.reshape(np.ones((2, 3)).T, (6,), copy=False)
    assert not np.shares_memory(xp.reshape(np.ones(6), (2, 3), copy=True), np.ones(6))
    with pytest.raises(ValueError):
        xp.matrix_transpose(np.ones(3))
    with pytest.raises(ValueError):
        xp.take(np.ones((2, 2)), np.array([0]))
    with pytest.raises(ValueError):
        xp.squeeze(np.ones((2, 1)), axis=0)
    with pytest.raises(ValueError):
        xp.asarray(np.ones(2), dtype=xp.float32, copy=False)
    assert isinstance(xp.meshgrid(np.ones(2), np.ones(3)), list)
    assert xp.cumulative_sum(np.ones((2, 3)), axis=1, include_initial=True).shape == (2, 4)
    assert xp.fft.fftfreq(4, dtype=xp.float32).dtype == np.float32


def test_unique_functions_follow_the_standard():
    x = np.array([1.0, np.nan, 2.0, np.nan, 1.0])
    values, indices, inverse, counts = xp.unique_all(x)
    assert values.size == 4 and counts.tolist()[:2] == [2, 1]  # every NaN is distinct
    assert inverse.shape == x.shape and xp.unique_inverse(x).inverse_indices.shape == x.shape
    assert xp.unique_counts(np.array([[2.0, 1.0], [2.0, 2.0]])).counts.tolist() == [1, 3]
    with pytest.raises(UnsupportedOperationError):  # batch elements with different numbers of values
        npfunc.vmap(xp.unique_values)(np.array([[1.0, 1.0], [1.0, 2.0]]))


def test_linalg_results_are_named():
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    assert xp.linalg.slogdet(a).sign == 1 and xp.linalg.eigh(a).eigenvalues.shape == (2,)
    np.testing.assert_allclose(xp.linalg.cholesky(a, upper=True), np.linalg.cholesky(a).T)
    assert xp.linalg.svd(a).S.shape == (2,) and xp.linalg.qr(a, mode="complete").R.shape == (2, 2)


def test_zero_dimensional_boolean_indices():
    x = np.arange(6.0).reshape(2, 3)

    def f(x):
        return x[True].sum() + x[xp.asarray(False)].sum() + x[..., True][0].sum()

    np.testing.assert_array_equal(npfunc.grad(f)(x), [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])


def test_info_reports_what_runs_now():
    info = xp.__array_namespace_info__()
    assert info.devices() == ["cpu"] and info.default_device() == "cpu"
    assert info.default_dtypes()["real floating"] == np.float64 and info.default_dtypes()["indexing"] == np.int64
    assert set(info.dtypes(kind="unsigned integer")) == {"uint8", "uint16", "uint32", "uint64"}
    assert info.capabilities()["data-dependent shapes"]
    seen = []
    npfunc.vmap(lambda x: seen.append(info.capabilities()["boolean indexing"]) or x)(np.ones((2, 1)))
    npfunc.grad(lambda x: seen.append(info.capabilities()["boolean indexing"]) or x.sum())(np.ones(2))
    assert seen == [False, True]
    with pytest.raises(ValueError, match="cpu"):
        xp.zeros(2, device="gpu")
