"""The conventions at special points (docs/conventions.md), one test per row,
plus the dtype rules every elementwise function follows: float32 stays
float32, Python scalars are weak (NumPy 2 / NEP 50), and integer or bool
arrays are never differentiated and never make a differentiated function
raise."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import npfunc
from npfunc import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap


def d(f, x, order=1):
    """The ``order``-th derivative of a scalar function at a float64 scalar."""
    for _ in range(order):
        f = grad(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(f(np.float64(x)))


def jvp_of(f, x, t=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return jvp(f, (np.float64(x),), (np.float64(t),))[1]


# ---- abs / sign / fabs / copysign at 0 ---------------------------------------------------

@pytest.mark.parametrize("f", [np.abs, np.absolute, np.fabs, abs, np.sign,
                               lambda x: np.copysign(x, -1.0), lambda x: np.copysign(x, 2.0)],
                         ids=["abs", "absolute", "fabs", "builtin-abs", "sign", "copysign-neg",
                              "copysign-pos"])
def test_kinks_at_zero_have_zero_derivative(f):
    assert d(f, 0.0) == 0.0
    assert d(f, -0.0) == 0.0
    assert jvp_of(f, 0.0) == 0.0
    assert d(lambda x: f(x) * 3.0, 0.0) == 0.0


def test_abs_derivative_away_from_zero_is_sign():
    assert d(np.abs, -2.0) == -1.0 and d(np.abs, 2.0) == 1.0
    assert d(np.sign, 2.0) == 0.0 and d(np.sign, -2.0) == 0.0


def test_complex_abs_and_sign_at_zero():
    z0 = np.complex128(0.0)
    assert grad(np.abs)(z0) == 0
    assert grad(lambda z: np.real(np.sign(z)))(z0) == 0
    assert grad(lambda z: np.imag(np.sign(z)))(z0) == 0
    _, t = jvp(np.abs, (z0,), (np.complex128(1 + 1j),))
    assert t == 0


def test_abs_second_derivative_is_zero_away_from_zero():
    assert d(np.abs, 1.5, order=2) == 0.0


# ---- maximum / minimum / fmax / fmin / clip: ties split equally --------------------------

@pytest.mark.parametrize("fn", [np.maximum, np.minimum, np.fmax, np.fmin])
def test_ties_split_equally(fn):
    x = np.array([1.0, 2.0, -3.0])
    gx, gy = grad(lambda a, b: fn(a, b).sum(), argnums=(0, 1))(x, x.copy())
    np.testing.assert_array_equal(gx, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.5, 0.5])
    # the same traced value on both sides gets all of it
    np.testing.assert_array_equal(grad(lambda a: fn(a, a).sum())(x), [1.0, 1.0, 1.0])
    _, t = jvp(lambda a, b: fn(a, b), (x, x.copy()), (np.ones(3), np.zeros(3)))
    np.testing.assert_array_equal(t, [0.5, 0.5, 0.5])


def test_maximum_without_ties():
    gx, gy = grad(lambda a, b: np.maximum(a, b).sum(), argnums=(0, 1))(
        np.array([1.0, 3.0]), np.array([2.0, 0.0]))
    np.testing.assert_array_equal(gx, [0.0, 1.0])
    np.testing.assert_array_equal(gy, [1.0, 0.0])


def test_fmax_fmin_give_the_derivative_to_the_non_nan_argument():
    x = np.array([np.nan, 1.0])
    y = np.array([2.0, np.nan])
    for fn in (np.fmax, np.fmin):
        gx, gy = grad(lambda a, b: fn(a, b).sum(), argnums=(0, 1))(x, y)
        np.testing.assert_array_equal(gx, [0.0, 1.0])
        np.testing.assert_array_equal(gy, [1.0, 0.0])


def test_reduction_ties_split_equally():
    x = np.array([1.0, 3.0, 3.0])
    np.testing.assert_array_equal(grad(np.max)(x), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(grad(np.min)(-x), [0.0, 0.5, 0.5])


def test_clip_inside_outside_and_at_the_bounds():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda v: np.clip(v, 0.0, 1.0).sum())(x),
                                  [0.0, 0.5, 1.0, 0.5, 0.0])
    lo, hi = np.zeros(5), np.ones(5)
    g = grad(lambda v, a, b: np.clip(v, a, b).sum(), argnums=(0, 1, 2))(x, lo, hi)
    np.testing.assert_array_equal(g[1], [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g[2], [0.0, 0.0, 0.0, 0.5, 1.0])
    # derivatives of x, a_min and a_max always add up to 1
    np.testing.assert_array_equal(g[0] + g[1] + g[2], np.ones(5))
    np.testing.assert_array_equal(grad(lambda v: np.clip(v, None, 0.5).sum())(x),
                                  [1.0, 1.0, 0.5, 0.0, 0.0])


# ---- sqrt, cbrt at 0 ------------------------------------------------------------------

@pytest.mark.parametrize("f", [np.sqrt, np.cbrt, lambda x: x ** 0.5])
def test_root_at_zero_has_infinite_derivative(f):
    assert d(f, 0.0) == np.inf


def test_norm_at_zero_has_zero_gradient():
    np.testing.assert_array_equal(grad(np.linalg.norm)(np.zeros(3)), np.zeros(3))


# ---- x ** y at x = 0 ----------------------------------------------------------------------

@pytest.mark.parametrize("y,expected", [(1, 1.0), (2, 0.0), (3, 0.0), (1.5, 0.0), (0, 0.0),
                                        (2.0, 0.0), (1.0, 1.0), (0.0, 0.0)])
def test_power_at_zero_base_has_no_nan(y, expected):
    assert d(lambda x: x ** y, 0.0) == expected                      # Python scalar exponent
    assert d(lambda x: x ** np.asarray(y), 0.0) == expected          # array exponent
    assert d(lambda x: np.power(x, np.float64(y)), 0.0) == expected  # NumPy scalar exponent
    assert jvp_of(lambda x: x ** np.asarray(y), 0.0) == expected


def test_power_at_zero_second_derivatives():
    assert d(lambda x: x ** 2, 0.0, order=2) == 2.0
    assert d(lambda x: x ** np.float64(2.0), 0.0, order=2) == 2.0
    assert d(lambda x: x ** np.float64(3.0), 0.0, order=2) == 0.0
    assert d(lambda x: x ** np.float64(1.0), 0.0, order=2) == 0.0
    assert d(lambda x: x ** np.float64(0.0), 0.0, order=2) == 0.0
    H = hessian(lambda x: (x ** np.array([1.0, 2.0, 3.0])).sum())(np.zeros(3))
    np.testing.assert_array_equal(np.diag(H), [0.0, 2.0, 0.0])


def test_power_integer_array_exponent_at_zero():
    g = grad(lambda x: (x ** np.array([0, 1, 2, 3])).sum())(np.zeros(4))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0, 0.0])


def test_power_derivative_in_the_exponent_at_zero_base_is_zero():
    for base in (0.0, np.zeros(())):
        assert d(lambda y: base ** y, 2.0) == 0.0
        assert d(lambda y: base ** y, 0.5) == 0.0
    gx, gy = grad(lambda x, y: (x ** y).sum(), argnums=(0, 1))(np.zeros(3), np.array([1.0, 2.0, 3.5]))
    assert not np.any(np.isnan(gx)) and not np.any(np.isnan(gy))
    np.testing.assert_array_equal(gy, [0.0, 0.0, 0.0])


def test_power_derivative_in_the_exponent_elsewhere_is_out_times_log():
    np.testing.assert_allclose(d(lambda y: 2.0 ** y, 3.0), 8.0 * np.log(2.0))


# ---- where: NaN from the untaken branch propagates; the double-where fix ----------------------

def test_where_nan_in_untaken_branch_propagates_as_in_jax():
    x = np.array([0.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = grad(lambda v: np.where(v > 0, np.sqrt(v), 0.0).sum())(x)
        g_inv = grad(lambda v: np.where(v != 0, 1 / v, 0.0).sum())(x)
        g_log = grad(lambda v: np.where(v > 0, np.log(v), 0.0).sum())(np.array([0.0, 1.0]))
        # a NaN *value* in the untaken branch is harmless when its derivative is finite
        g_neg = grad(lambda v: np.where(v > 0, np.log(v), 0.0).sum())(np.array([-1.0, 1.0]))
    assert np.isnan(g[0]) and g[1] == 0.25
    assert np.isnan(g_inv[0])
    assert np.isnan(g_log[0]) and g_log[1] == 1.0
    np.testing.assert_array_equal(g_neg, [0.0, 1.0])


def test_where_double_where_fix():
    x = np.array([0.0, 4.0])

    def safe_sqrt(v):
        positive = v > 0
        inner = np.where(positive, v, 1.0)  # the untaken entries never reach sqrt
        return np.where(positive, np.sqrt(inner), 0.0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 1/0 anywhere
        g = grad(lambda v: safe_sqrt(v).sum())(x)
        H = hessian(lambda v: safe_sqrt(v).sum())(x)
    np.testing.assert_array_equal(g, [0.0, 0.25])
    np.testing.assert_allclose(H, np.diag([0.0, -1 / 32]))


def test_where_untaken_branch_gets_zero_cotangent():
    c = np.array([True, False])
    gx, gy = grad(lambda a, b: np.where(c, a, b).sum(), argnums=(0, 1))(np.ones(2), np.ones(2))
    np.testing.assert_array_equal(gx, [1.0, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 1.0])


# ---- piecewise constant functions: derivative 0, also at the jumps ---------------------------

@pytest.mark.parametrize("f", [np.floor, np.ceil, np.trunc, np.rint, np.round, np.fix,
                               lambda x: np.round(x, 2), lambda x: np.around(x, -1), round,
                               lambda x: x // 0.5, lambda x: np.floor_divide(x, 0.5),
                               lambda x: np.heaviside(x, 0.5), np.sign],
                         ids=["floor", "ceil", "trunc", "rint", "round", "fix", "round2",
                              "around-1", "builtin-round", "floordiv-op", "floor_divide",
                              "heaviside", "sign"])
@pytest.mark.parametrize("x", [1.0, 0.5, 1.3, 0.0, -2.5])
def test_piecewise_constant_derivative_is_zero(f, x):
    assert d(f, x) == 0.0
    assert jvp_of(f, x) == 0.0
    assert d(lambda v: f(v) * v, x) == f(np.float64(x))  # product rule sees a constant


def test_heaviside_derivative_in_x2_where_x1_is_zero():
    x1 = np.array([-1.0, 0.0, 2.0])
    g1, g2 = grad(lambda a, b: np.heaviside(a, b).sum(), argnums=(0, 1))(x1, np.full(3, 0.5))
    np.testing.assert_array_equal(g1, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g2, [0.0, 1.0, 0.0])


def test_remainder_and_fmod_derivatives():
    x, y = np.array([7.5, -7.5]), np.array([2.0, 2.0])
    gx, gy = grad(lambda a, b: np.remainder(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0])
    np.testing.assert_array_equal(gy, -np.floor(x / y))
    gx, gy = grad(lambda a, b: np.fmod(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0])
    np.testing.assert_array_equal(gy, -np.trunc(x / y))
    gx, gy = grad(lambda a, b: (a % b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gy, [-3.0, 4.0])


# ---- other special points -------------------------------------------------------------------

def test_nan_to_num_derivative_is_one_at_finite_entries_only():
    x = np.array([1.0, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(grad(lambda v: np.nan_to_num(v).sum())(x), [1.0, 0.0, 0.0, 0.0])
    _, t = jvp(np.nan_to_num, (x,), (np.full(4, 2.0),))
    np.testing.assert_array_equal(t, [2.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("fn", [np.logaddexp, np.logaddexp2])
def test_logaddexp_with_infinities_is_finite(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for x, y, gx, gy in [(-np.inf, -np.inf, 0.5, 0.5), (np.inf, np.inf, 0.5, 0.5),
                             (0.0, -np.inf, 1.0, 0.0), (np.inf, 3.0, 1.0, 0.0), (2.0, 2.0, 0.5, 0.5)]:
            g = grad(lambda a, b: fn(a, b), argnums=(0, 1))(np.float64(x), np.float64(y))
            assert (float(g[0]), float(g[1])) == (gx, gy), (x, y, g)


def test_hypot_and_arctan2_at_the_origin():
    g = grad(lambda a, b: np.hypot(a, b), argnums=(0, 1))(np.float64(0.0), np.float64(0.0))
    assert (float(g[0]), float(g[1])) == (0.0, 0.0)
    g = grad(lambda a, b: np.arctan2(a, b), argnums=(0, 1))(np.float64(0.0), np.float64(0.0))
    assert (float(g[0]), float(g[1])) == (0.0, 0.0)
    # and the ordinary value next to it
    g = grad(lambda a, b: np.hypot(a, b), argnums=(0, 1))(np.float64(3.0), np.float64(4.0))
    assert np.allclose(g, (0.6, 0.8))


def test_sinc_at_zero_is_exact_to_high_order():
    assert d(np.sinc, 0.0) == 0.0
    np.testing.assert_allclose(d(np.sinc, 0.0, order=2), -np.pi ** 2 / 3, rtol=1e-14)
    np.testing.assert_allclose(d(np.sinc, 0.0, order=3), 0.0, atol=1e-12)
    np.testing.assert_allclose(d(np.sinc, 0.0, order=4), np.pi ** 4 / 5, rtol=1e-13)


def test_angle_of_real_input_is_piecewise_constant():
    assert d(np.angle, -2.0) == 0.0 and d(np.angle, 0.0) == 0.0 and d(np.angle, 3.0) == 0.0


# ---- float32 in, float32 tangents and cotangents ------------------------------------------------

F32_FUNCTIONS = {
    "tanh": np.tanh, "sqrt-abs": lambda x: np.sqrt(np.abs(x) + 1), "square": np.square,
    "reciprocal": lambda x: np.reciprocal(x + 3), "exp2": np.exp2, "log2": lambda x: np.log2(x + 3),
    "log10": lambda x: np.log10(x + 3), "logaddexp": lambda x: np.logaddexp(x, 0.5),
    "arcsin": lambda x: np.arcsin(x / 3), "arctan2": lambda x: np.arctan2(x, 2.0),
    "hypot": lambda x: np.hypot(x, 1.0), "sinc": np.sinc, "clip": lambda x: np.clip(x, -0.5, 0.5),
    "maximum": lambda x: np.maximum(x, 0.0), "where": lambda x: np.where(x > 0, x, 0.1 * x),
    "power": lambda x: x ** 3, "rpow": lambda x: 2.0 ** x, "float_power": lambda x: np.float_power(x, 2),
    "remainder": lambda x: x % 0.7, "copysign": lambda x: np.copysign(x, -1.0),
    "nan_to_num": np.nan_to_num, "round": lambda x: np.round(x, 1) + x, "cbrt": lambda x: np.cbrt(x + 3),
    "deg2rad": np.deg2rad, "fmax": lambda x: np.fmax(x, 0.0), "heaviside": lambda x: np.heaviside(x, 0.5) * x,
}


@pytest.mark.parametrize("name", sorted(F32_FUNCTIONS))
def test_float32_in_float32_derivatives_out(name):
    f = F32_FUNCTIONS[name]
    x = np.array([0.3, -1.2, 2.0], dtype=np.float32)
    loss = lambda v: f(v).sum()  # noqa: E731
    assert grad(loss)(x).dtype == np.float32
    out, t = jvp(f, (x,), (np.ones(3, np.float32),))
    assert t.dtype == out.dtype
    out, pullback = vjp(f, x)
    assert pullback(np.ones_like(out))[0].dtype == np.float32
    assert jacrev(f)(x).dtype == np.float32  # rows are cotangents of x
    assert jacfwd(f)(x).dtype == out.dtype   # columns are tangents of the output
    assert hessian(loss)(x).dtype == np.float32
    assert vmap(grad(lambda v: f(v).sum()))(np.stack([x, x])).dtype == np.float32


# ---- Python scalars are weak (NumPy 2 / NEP 50) under every transform ---------------------------

SCALAR_EXPRESSIONS = {
    "mul": lambda x: x * 2.0, "rmul": lambda x: 2.0 * x, "add-int": lambda x: x + 1,
    "sub": lambda x: 1.5 - x, "div": lambda x: x / 3.0, "rdiv": lambda x: 1.0 / (x + 3.0),
    "pow": lambda x: x ** 2.0, "pow-int": lambda x: x ** 2, "maximum": lambda x: np.maximum(x, 0.0),
    "where": lambda x: np.where(x > 0, x, 0.0), "clip": lambda x: np.clip(x, 0.0, 1.0),
    "arctan2": lambda x: np.arctan2(1.0, x), "mod": lambda x: x % 1.0, "hypot": lambda x: np.hypot(x, 2.0),
    "logaddexp": lambda x: np.logaddexp(x, 1.0),
}


@pytest.mark.parametrize("name", sorted(SCALAR_EXPRESSIONS))
def test_python_scalars_keep_float32(name):
    f = SCALAR_EXPRESSIONS[name]
    x = np.array([0.5, 1.5, -0.25], dtype=np.float32)
    assert f(x).dtype == np.float32  # NumPy 2 itself
    results = {
        "vmap": vmap(f)(np.stack([x, x])),
        "jvp-out": jvp(f, (x,), (np.ones_like(x),))[0],
        "jvp-tangent": jvp(f, (x,), (np.ones_like(x),))[1],
        "vjp-out": vjp(f, x)[0],
        "vjp-cotangent": vjp(f, x)[1](np.ones_like(x))[0],
        "grad": grad(lambda v: f(v).sum())(x),
        "jacrev": jacrev(f)(x),
        "jacfwd": jacfwd(f)(x),
        "hessian": hessian(lambda v: f(v).sum())(x),
        "vmap(grad)": vmap(grad(lambda v: f(v).sum()))(np.stack([x, x])),
        "grad(vmap)": grad(lambda v: vmap(f)(v).sum())(np.stack([x, x])),
    }
    for what, r in results.items():
        assert r.dtype == np.float32, (name, what, r.dtype)


def test_python_complex_scalar_makes_complex64_from_float32():
    x = np.array([0.5, 1.5], dtype=np.float32)
    out, t = jvp(lambda v: v * 1j, (x,), (np.ones_like(x),))
    assert out.dtype == t.dtype == np.complex64
    (g,) = vjp(lambda v: v * 1j, x)[1](np.ones(2, np.complex64))
    assert g.dtype == np.float32


def test_float32_with_float64_array_promotes_and_cotangent_comes_back_float32():
    x32 = np.ones(3, np.float32)
    y64 = np.full(3, 2.0)
    out, pullback = vjp(lambda a, b: a * b, x32, y64)
    assert out.dtype == np.float64
    gx, gy = pullback(np.ones(3))
    assert gx.dtype == np.float32 and gy.dtype == np.float64


# ---- integer and bool arrays are never differentiated and never raise -----------------------

INT_FUNCTIONS = {
    "times-arange": lambda x: (x * np.arange(3)).sum(),
    "divide-by-int": lambda x: (x / np.arange(1, 4)).sum(),
    "int-power": lambda x: (x ** np.arange(3)).sum(),
    "bool-mask-multiply": lambda x: (x * (x > 0)).sum(),
    "int-mask-multiply": lambda x: (x * (x > 0).astype(int)).sum(),
    "where-int-mask": lambda x: np.where(np.array([1, 0, 1]), x, 0.0).sum(),
    "where-computed-mask": lambda x: np.where((x > 0) & (x < 1.5), x ** 2, -x).sum(),
    "integer-index": lambda x: x[np.array([0, 2, 2])].sum(),
    "int-arith-inside": lambda x: (x * ((np.arange(3) * 3 + 1) // 2 % 3)).sum(),
    "astype-int": lambda x: (x * x.astype(np.int64)).sum(),
    "floor-as-int": lambda x: (x * np.floor(x).astype(int)).sum(),
    "bool-ops": lambda x: (x * np.logical_xor(x > 0, x > 1) * ~(x > 5)).sum(),
    "isclose-mask": lambda x: (x * np.isclose(x, 0.5)).sum(),
    "int-maximum": lambda x: (x * np.maximum(np.arange(3), 1)).sum(),
    "int-abs-sign": lambda x: (x * np.abs(np.arange(-1, 2)) + np.sign(np.arange(-1, 2)) * x).sum(),
    "int-plus-float": lambda x: (np.arange(3) + x).sum(),
    "int-clip": lambda x: (x * np.clip(np.arange(3), 0, 1)).sum(),
}


@pytest.mark.parametrize("name", sorted(INT_FUNCTIONS))
def test_integer_and_bool_arrays_are_constants(name, numerical_jacobian):
    f = INT_FUNCTIONS[name]
    x = np.array([0.5, 1.25, -2.3])  # away from the jumps of astype(int) / floor
    g = grad(f)(x)
    np.testing.assert_allclose(g, numerical_jacobian(f, x), rtol=1e-6, atol=1e-8)
    _, t = jvp(f, (x,), (np.ones(3),))
    np.testing.assert_allclose(t, g.sum(), rtol=1e-12)
    np.testing.assert_allclose(vmap(grad(f))(np.stack([x, 2 * x])),
                               np.stack([g, grad(f)(2 * x)]))
    np.testing.assert_allclose(np.diag(hessian(f)(x)), np.diag(jacfwd(jacrev(f))(x)))


def test_integer_values_batched_by_vmap():
    x = np.array([[0.5, 1.0], [2.0, -1.0], [1.0, 1.0]])
    k = np.array([1, 2, 3])

    def f(row, n):
        return (row ** n * (n % 2) + row * (n // 2)).sum()

    g = vmap(grad(f))(x, k)
    expected = np.stack([grad(f)(x[i], int(k[i])) for i in range(3)])
    np.testing.assert_allclose(g, expected)
    ints = vmap(lambda n: (n * 3 + 1) // 2 % 4)(k)
    np.testing.assert_array_equal(ints, (k * 3 + 1) // 2 % 4)
    assert ints.dtype == k.dtype


def test_integer_outputs_have_no_tangent_and_no_cotangent():
    x = np.array([0.5, 1.5])
    out, t = jvp(lambda v: (np.floor(v).astype(int), v * 2), (x,), (np.ones(2),))
    assert out[0].dtype.kind == "i"
    np.testing.assert_array_equal(t[1], [2.0, 2.0])
    out, pullback = vjp(lambda v: v > 1.0, x)
    assert out.dtype == bool


def test_differentiating_with_respect_to_an_integer_array_is_a_clear_error():
    with pytest.raises(npfunc.errors.NonDifferentiableInputError, match="dtype int64"):
        grad(lambda n: (n * 2.0).sum())(np.arange(3))


def test_docs_conventions_examples_run():
    import doctest
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "docs" / "conventions.md"
    with warnings.catch_warnings():
        failures, tried = doctest.testfile(str(path), module_relative=False,
                                           optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert tried > 10 and failures == 0


def test_clipped_side_gets_an_exact_zero_in_reverse_mode():
    """maximum/minimum select the loser's zero: an infinite derivative after the clip gives 0."""
    x = np.array([-1.5, 4.0, 0.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        for f, want in ((lambda x: np.sqrt(np.clip(x, 0.0, None)).sum(), [0.0, 0.25, 0.5 / np.sqrt(0.5)]),
                        (lambda x: np.arccos(np.clip(x, -1.0, 1.0)).sum(), [0.0, 0.0, -1 / np.sqrt(0.75)]),
                        (lambda x: np.sqrt(np.fmax(x, 0.0)).sum(), [0.0, 0.25, 0.5 / np.sqrt(0.5)])):
            np.testing.assert_allclose(npfunc.grad(f)(x), want)
            np.testing.assert_allclose(npfunc.jacrev(f)(x), want)
            np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(np.stack([x, x])), [want, want])
            np.testing.assert_allclose(npfunc.jit(npfunc.grad(f))(x), want)
    # scalars keep NumPy scalar types, promoted as a product with the weight would be
    assert type(npfunc.grad(lambda x: np.maximum(x, 1.0))(-1.0)) is np.float64
    assert type(npfunc.grad(lambda x: np.maximum(x, 1.0))(np.float32(3.0))) is np.float32
