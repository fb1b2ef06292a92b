"""Reductions and scans through their NumPy front ends: axis handling
(None / int / negative / tuple), keepdims, where=/initial=/dtype=, the
composites (var, std, average, ptp, nan-functions, trace, ufunc.reduce,
ndarray methods) and the conventions at special points (prod and cumprod
with zeros, ties of max/min, std at zero variance, NaNs).

The registry tests cover the primitives on their samples; here every public
function runs through the generic checks of ``npfunc.testing.checks``
(value, JVP vs finite differences, adjoint identity, vmap vs a loop, second
order) by wrapping it in a small primitive-like shim.
"""
import warnings

import numpy as np
import pytest

import npfunc
import npfunc.numpy as jnp
from npfunc.core.errors import UnsupportedOperationError
from npfunc.core.primitive import Sample
from npfunc.testing import checks


class Fn:
    """A Python function seen by ``checks`` as if it were a primitive."""

    differentiable = True

    def __init__(self, name, fn):
        self.name = name
        self.impl = self.bind = fn


def _close(a, e, dtype):
    tol = 1e-12 if np.dtype(dtype) in (np.float64, np.complex128) else 1e-5
    np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=tol, atol=tol)


def run_checks(name, fn, *args, argnums=None, kink=False, second=True, seed=0):
    """Value (and dtype) under jvp/vjp/vmap, FD, adjoint, vmap and second order."""
    rng = np.random.default_rng(seed)
    prim = Fn(name, fn)
    sample = Sample(*args, argnums=argnums, label=name, kink=kink or not second)
    expected = fn(*args)
    nums = checks.diff_argnums(sample)
    f = checks.as_function(prim, sample, nums)
    primals = tuple(args[i] for i in nums)
    out, _ = npfunc.jvp(f, primals, tuple(np.zeros_like(p) for p in primals))
    for o, e in zip(checks._leaves(out), checks._leaves(expected)):
        assert np.result_type(o) == np.result_type(e), (name, np.result_type(o), np.result_type(e))
        assert np.shape(o) == np.shape(e), name
        _close(o, e, np.result_type(e))
    checks.check_jvp_fd(prim, sample, rng)
    checks.check_adjoint(prim, sample, rng)
    checks.check_vmap(prim, sample, rng)
    checks.check_second_order(prim, sample, rng)


RNG = np.random.default_rng(42)
X64 = RNG.uniform(-2, 2, (2, 3, 4))
X32 = X64.astype(np.float32)
M = RNG.uniform(-2, 2, (3, 4))
Z = RNG.uniform(0.5, 2, (3, 5)) * RNG.choice([-1, 1], (3, 5))
Z[0, 1] = 0.0
Z[1, 0] = Z[1, 3] = 0.0
Z[2, :] = 0.0
C = RNG.uniform(-1, 1, (3, 4)) + 1j * RNG.uniform(-1, 1, (3, 4))
NAN = M.copy()
NAN[0, 1] = NAN[2, 3] = np.nan
MASK = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 0]], bool)  # >= 2 per row and column

AXES = [None, 0, -1, (0, -1), (-3, 1), (0, 1, 2)]

# ---- sum / prod / mean / max / min: axes, keepdims, where=, initial=, dtype= ------------

BASIC = []
for fname in ("sum", "prod", "mean", "max", "min", "amax", "amin", "ptp", "var", "std"):
    for axis in AXES:
        for keepdims in (False, True):
            BASIC.append((fname, axis, keepdims))


@pytest.mark.parametrize("fname,axis,keepdims", BASIC)
@pytest.mark.parametrize("x", [X64, X32], ids=["f64", "f32"])
def test_axis_keepdims(fname, axis, keepdims, x):
    np_fn = getattr(np, fname)
    run_checks(fname, lambda x: np_fn(x, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("case", [
    ("sum", dict(where=MASK)), ("sum", dict(initial=1.5, axis=1)), ("sum", dict(dtype=np.float32)),
    ("prod", dict(where=MASK, axis=-1)), ("prod", dict(initial=2.0)),
    ("mean", dict(where=MASK, axis=0)), ("mean", dict(where=MASK, axis=(0, 1), keepdims=True)),
    ("max", dict(where=MASK, initial=-5.0, axis=1)), ("min", dict(initial=0.5, axis=0)),
    ("var", dict(where=MASK, axis=1)), ("var", dict(ddof=1, axis=0)),
    ("var", dict(correction=1, axis=-1, keepdims=True)),
    ("std", dict(ddof=1, axis=(0, 1))), ("std", dict(where=MASK, axis=0, ddof=1)),
], ids=lambda c: f"{c[0]}-{'-'.join(c[1])}")
def test_keyword_arguments(case):
    fname, kw = case
    run_checks(fname, lambda x: getattr(np, fname)(x, **kw), M)


def test_mean_and_var_of_integers_are_float64():
    ints = np.arange(12).reshape(3, 4)
    for fname in ("mean", "var", "std"):
        got = getattr(jnp, fname)(ints, axis=1)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, getattr(np, fname)(ints, axis=1))
    assert npfunc.vmap(np.mean)(ints).dtype == np.float64


@pytest.mark.parametrize("fname", ["var", "std"])
def test_var_std_complex(fname):
    run_checks(fname, lambda z: getattr(np, fname)(z, axis=1), C)
    run_checks(fname, lambda z: getattr(np, fname)(z), C.astype(np.complex64))


def test_var_with_given_mean():
    m = np.mean(M, axis=1, keepdims=True)
    run_checks("var", lambda x, m: np.var(x, axis=1, mean=m), M, m)


# ---- prod with zeros: exact, division-free -----------------------------------------------

def _others(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


@pytest.mark.parametrize("x", [np.array([2.0, 0.0, 3.0, -1.5]), np.array([2.0, 0.0, 3.0, 0.0]),
                               np.array([0.0, 0.0, 0.0]), np.array([0.0]), np.array([4.0, 5.0])])
def test_prod_gradient_with_zeros_is_product_of_the_others(x):
    g = npfunc.grad(np.prod)(x)
    np.testing.assert_array_equal(g, _others(x))
    n = x.size
    hess = np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(n)] for i in range(n)])
    np.testing.assert_allclose(npfunc.hessian(np.prod)(x), hess, atol=1e-15)
    np.testing.assert_allclose(npfunc.jacrev(npfunc.jacrev(np.prod))(x), hess, atol=1e-15)
    assert not np.any(np.isnan(npfunc.jacfwd(np.prod)(x)))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_prod_with_zeros(axis):
    run_checks("prod", lambda x: np.prod(x, axis=axis), Z)
    run_checks("prod", lambda x: np.prod(x, axis=axis), Z.astype(np.float32))


def test_prod_complex():
    run_checks("prod", lambda z: np.prod(z, axis=1), C)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("fname", ["cumsum", "cumprod"])
def test_cumulative(fname, axis):
    fn = getattr(np, fname)
    run_checks(fname, lambda x: fn(x, axis=axis), Z)
    run_checks(fname, lambda x: fn(x, axis=axis), X32[0])
    run_checks(fname, lambda x: fn(x, axis), X64)


def test_cumprod_gradient_with_zeros_is_exact():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    expected = np.array([[np.prod([x[k] for k in range(i + 1) if k != j]) if j <= i else 0.0
                          for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(npfunc.jacrev(np.cumprod)(x), expected)
    np.testing.assert_array_equal(npfunc.jacfwd(np.cumprod)(x), expected)
    hess = npfunc.hessian(lambda x: np.cumprod(x)[-1])(x)
    np.testing.assert_array_equal(hess, npfunc.hessian(np.prod)(x))


def test_cumsum_dtype_and_methods():
    run_checks("cumsum", lambda x: np.cumsum(x, axis=1, dtype=np.float32), M)
    run_checks("cumsum", lambda x: x.cumsum(0), M)
    run_checks("cumprod", lambda x: x.cumprod(), M)


@pytest.mark.skipif(not hasattr(np, "cumulative_sum"), reason="NumPy < 2.1")
@pytest.mark.parametrize("fname", ["cumulative_sum", "cumulative_prod"])
def test_cumulative_include_initial(fname):
    fn = getattr(np, fname)
    run_checks(fname, lambda x: fn(x, axis=-1, include_initial=True), Z)
    run_checks(fname, lambda x: fn(x, axis=0), Z)
    run_checks(fname, lambda x: fn(x), Z[0])


# ---- max / min ties -------------------------------------------------------------------

def test_max_min_ties_split_equally():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(npfunc.grad(lambda x: np.max(x, axis=1).sum())(x),
                               [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(npfunc.grad(np.min)(x), [[1.0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(npfunc.grad(np.amax)(x), [[0, 0.5, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(npfunc.grad(np.ptp)(x), [[-1.0, 0.5, 0.5], [0, 0, 0]])
    # two tied entries: the equal split is also the central difference
    run_checks("max", lambda x: np.max(x, axis=-1), x[:1], kink=True)


# ---- std at zero variance -----------------------------------------------------------

def test_std_at_zero_variance_has_zero_derivative():
    # 0.1 is not representable: the computed mean is off by an ulp, the variance is
    # ~1e-34 and not zero, and the derivative is the ordinary (finite) one.
    assert np.all(np.isfinite(npfunc.grad(np.std)(np.full((2, 3), 0.1))))
    for x in (np.ones(4), np.full((2, 3), 0.5), np.array([3.0])):
        g = npfunc.grad(np.std)(x)
        assert np.all(g == 0), g
        assert np.all(npfunc.hessian(np.std)(x) == 0)
        _, t = npfunc.jvp(np.std, (x,), (np.ones_like(x),))
        assert t == 0
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    g = npfunc.grad(lambda x: np.std(x, axis=1).sum())(x)
    assert np.all(g[0] == 0) and np.all(np.isfinite(g))
    g2 = npfunc.grad(lambda x: np.std(x[1]))(x)
    d = x[1] - x[1].mean()
    np.testing.assert_allclose(g2[1], d / (3 * np.std(x[1])))
    assert np.all(npfunc.grad(np.nanstd)(np.array([2.0, np.nan, 2.0])) == 0)


# ---- average ----------------------------------------------------------------------------

W = RNG.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize("case", [
    dict(), dict(axis=1), dict(axis=(-1, 0), keepdims=True), dict(axis=0, returned=True),
], ids=str)
def test_average_unweighted(case):
    run_checks("average", lambda x: np.average(x, **case), M)


@pytest.mark.parametrize("weights,axis", [(W, None), (W, 1), (W[:, 0], 0), (W[0], -1),
                                          (W.T, (1, 0)), (W, (0, 1))], ids=str)
@pytest.mark.parametrize("returned", [False, True])
def test_average_weighted(weights, axis, returned):
    run_checks("average", lambda x, w: np.average(x, axis=axis, weights=w, returned=returned),
               M, weights)
    run_checks("average", lambda x, w: np.average(x, axis=axis, weights=w, keepdims=True),
               M.astype(np.float32), weights.astype(np.float32))


def test_average_errors():
    with pytest.raises(TypeError, match="axis must be specified"):
        npfunc.grad(lambda x: np.average(x, weights=W[0]))(M)
    with pytest.raises(ValueError, match="consistent"):
        npfunc.grad(lambda x: np.average(x, axis=0, weights=W[0]))(M)
    with pytest.raises(ZeroDivisionError):
        npfunc.grad(lambda x: np.average(x, axis=1, weights=np.zeros(4)).sum())(M)


# ---- nan-functions -----------------------------------------------------------------

NANFNS = ["nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd", "nancumsum",
          "nancumprod"]


@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("fname", NANFNS)
def test_nan_functions(fname, axis):
    fn = getattr(np, fname)
    run_checks(fname, lambda x: fn(x, axis=axis), NAN)
    run_checks(fname, lambda x: fn(x, axis=axis), NAN.astype(np.float32))
    g = npfunc.grad(lambda x: np.sum(fn(x, axis=axis)))(NAN)
    assert g[0, 1] == 0 and g[2, 3] == 0 and np.all(np.isfinite(g))


def test_nan_functions_all_nan_slice():
    x = NAN.copy()
    x[1, :] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for fname in ("nanmax", "nanmin", "nanmean", "nanvar", "nanstd", "nansum", "nanprod"):
            fn = getattr(np, fname)
            np.testing.assert_allclose(getattr(jnp, fname)(x, axis=1), fn(x, axis=1))
            g = npfunc.grad(lambda x: np.sum(np.where(np.isnan(fn(x, axis=1)), 0.0, fn(x, axis=1))))(x)
            assert np.all(g[1] == 0) and np.all(np.isfinite(g)), fname
            out = npfunc.vmap(lambda r: fn(r))(x)
            np.testing.assert_allclose(out, [fn(r) for r in x])


def test_nan_functions_keep_integer_dtype():
    ints = np.arange(12).reshape(3, 4)
    for fname in ("nanmax", "nanmin", "nansum", "nanprod", "nanargmax"):
        got = npfunc.vmap(getattr(np, fname))(ints)
        expected = np.array([getattr(np, fname)(r) for r in ints])
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype, fname


# ---- outputs without derivatives ------------------------------------------------------

NONDIFF = [("all", {}), ("any", {}), ("all", dict(axis=(0, -1))), ("any", dict(axis=-1, keepdims=True)),
           ("all", dict(where=MASK[0])), ("count_nonzero", {}), ("count_nonzero", dict(axis=(1, 2))),
           ("count_nonzero", dict(axis=0, keepdims=True)), ("argmax", {}), ("argmin", dict(axis=-1)),
           ("argmax", dict(axis=1, keepdims=True)), ("argmin", dict(keepdims=True)),
           ("nanargmax", dict(axis=0)), ("nanargmin", {})]


@pytest.mark.parametrize("fname,kw", NONDIFF, ids=lambda v: str(v))
def test_nondifferentiable_outputs(fname, kw):
    x = np.round(X64)
    x[0, 1, 2] = np.nan if fname.startswith("nan") else x[0, 1, 2]
    fn = getattr(np, fname)
    expected = fn(x, **kw)
    # a derivative through them is zero, not an error
    g = npfunc.grad(lambda x: np.sum(x) + np.sum(fn(x, **kw)) * 1.0)(x)
    np.testing.assert_array_equal(g, np.ones_like(x))
    out, t = npfunc.jvp(lambda x: fn(x, **kw), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(out, expected)
    for in_dims in (0, 1, -1):
        xb = np.stack([x, -x, x[:, ::-1]], axis=in_dims if in_dims >= 0 else x.ndim)
        got = npfunc.vmap(lambda x: fn(x, **kw), in_dims=in_dims)(xb)
        rows = [fn(np.take(xb, b, axis=in_dims), **kw) for b in range(3)]
        np.testing.assert_array_equal(got, np.stack(rows))
        assert got.dtype == np.asarray(rows[0]).dtype


def test_argmax_ties_pick_first():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    np.testing.assert_array_equal(npfunc.vmap(np.argmax)(x), [1, 0])
    np.testing.assert_array_equal(npfunc.vmap(np.argmin, in_dims=1)(x), [0, 1, 1])


def test_argmax_used_as_index_under_vmap():
    def pick(x):
        return x[np.argmax(x)] * 2

    np.testing.assert_allclose(npfunc.vmap(pick)(M), 2 * M.max(axis=1))
    g = npfunc.grad(lambda x: pick(x))(M[0])
    np.testing.assert_allclose(g, 2.0 * (M[0] == M[0].max()))


# ---- trace -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(offset=1), dict(offset=-1), dict(offset=5),
                                dict(offset=-2, axis1=1, axis2=0), dict(axis1=-1, axis2=0),
                                dict(offset=1, axis1=2, axis2=1)], ids=str)
def test_trace(kw):
    run_checks("trace", lambda x: np.trace(x, **kw), X64)
    run_checks("trace", lambda x: np.trace(x, **kw), X32)
    if "axis1" not in kw:
        run_checks("trace", lambda x: x.trace(**kw), M)


# ---- ufunc.reduce and ndarray methods -----------------------------------------------------

@pytest.mark.parametrize("ufunc", [np.add, np.multiply, np.maximum, np.minimum])
@pytest.mark.parametrize("kw", [dict(), dict(axis=None), dict(axis=-1, keepdims=True), dict(axis=(0, 2))],
                         ids=str)
def test_ufunc_reduce(ufunc, kw):
    run_checks(ufunc.__name__, lambda x: ufunc.reduce(x, **kw), X64)


def test_logical_ufunc_reduce():
    b = MASK
    for ufunc, fn in ((np.logical_and, np.all), (np.logical_or, np.any)):
        got = npfunc.vmap(lambda m: ufunc.reduce(m))(b)
        np.testing.assert_array_equal(got, fn(b, axis=1))
        got = npfunc.vmap(lambda m: ufunc.reduce(m, axis=None), in_dims=1)(b)
        np.testing.assert_array_equal(got, fn(b, axis=0))


METHODS = [("sum", dict(axis=1)), ("prod", {}), ("mean", dict(axis=-1, keepdims=True)),
           ("var", dict(ddof=1)), ("std", dict(axis=0)), ("max", {}), ("min", dict(axis=1)),
           ("cumsum", dict(axis=-1)), ("cumprod", {})]


@pytest.mark.parametrize("meth,kw", METHODS, ids=lambda v: str(v))
def test_ndarray_methods(meth, kw):
    run_checks(meth, lambda x: getattr(x, meth)(**kw), M)


def test_nondiff_methods():
    def f(x):
        return (x.argmax(), x.argmin(axis=0), x.all(), x.any(axis=1))

    got = npfunc.vmap(f)(np.stack([M, -M]))
    for k, expected in enumerate(zip(*[f(m) for m in (M, -M)])):
        np.testing.assert_array_equal(got[k], np.stack(expected))


# ---- plain values and errors ------------------------------------------------------------

@pytest.mark.parametrize("fname,kw", [("sum", dict(axis=(0, 2))), ("prod", dict(axis=-1)), ("var", dict(ddof=2)),
                                      ("std", {}), ("cumsum", {}), ("cumprod", dict(axis=1)),
                                      ("average", dict(axis=1)), ("ptp", dict(axis=0)),
                                      ("trace", {}), ("count_nonzero", {}), ("argmax", dict(axis=2))],
                         ids=lambda v: str(v))
def test_explicit_namespace_on_plain_arrays(fname, kw):
    for x in (X64, X32):
        got, expected = getattr(jnp, fname)(x, **kw), getattr(np, fname)(x, **kw)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert np.result_type(got) == np.result_type(expected)


def test_errors():
    with pytest.raises(UnsupportedOperationError, match="out"):
        npfunc.grad(lambda x: np.sum(x, out=np.empty(())))(M)
    with pytest.raises(UnsupportedOperationError, match="out"):
        npfunc.grad(lambda x: np.cumsum(x, out=np.empty(12)).sum())(M)
    with pytest.raises(ValueError, match="initial"):
        npfunc.grad(lambda x: np.max(x, where=MASK))(M)
    with pytest.raises(np.exceptions.AxisError):
        npfunc.grad(lambda x: np.prod(x, axis=2))(M)
    with pytest.raises(ValueError, match="ddof and correction"):
        npfunc.grad(lambda x: np.var(x, ddof=1, correction=1))(M)
    with pytest.raises(ValueError, match="same"):
        npfunc.grad(lambda x: np.trace(x, axis1=1, axis2=-1))(M)


def test_batched_jacobians_of_reductions():
    def f(x):
        return np.stack([np.prod(x), np.std(x), np.cumprod(x)[-1], np.max(x), np.var(x, ddof=1)])

    xs = np.stack([Z[0], Z[1], M[0, :3].repeat(2)[:5]])
    got = npfunc.vmap(npfunc.jacrev(f))(xs)
    loop = np.stack([npfunc.jacfwd(f)(x) for x in xs])
    np.testing.assert_allclose(got, loop, atol=1e-12)
    got = npfunc.vmap(npfunc.hessian(lambda x: np.prod(x) + np.cumprod(x).sum()))(xs)
    loop = np.stack([npfunc.jacrev(npfunc.jacfwd(lambda x: np.prod(x) + np.cumprod(x).sum()))(x) for x in xs])
    np.testing.assert_allclose(got, loop, atol=1e-12)


def test_ufunc_accumulate_dispatches_to_the_scans():
    import npfunc

    x = np.array([1.0, 2.0, 3.0])
    g = npfunc.grad(lambda x: np.multiply.accumulate(x).sum() + np.add.accumulate(x)[1])(x)
    # d/dx of (x0 + x0 x1 + x0 x1 x2) + (x0 + x1)
    np.testing.assert_allclose(g, [1 + x[1] + x[1] * x[2] + 1, x[0] + x[0] * x[2] + 1, x[0] * x[1]])
