"""Elementwise functions through their public NumPy forms.

The registry tests (test_registry.py) check every primitive on its samples
through ``prim.bind``.  Here the same checks run through what users write --
``np.arcsin(x)``, ``x // y``, ``np.clip(x, lo, hi)``, ``round(x, 2)`` -- which
also covers the composites (clip, sinc, angle, float_power, modf, frexp,
divmod, allclose, ...) that have no registry samples of their own: value vs
NumPy, JVP vs central differences, VJP/JVP adjoint identity, vmap vs a loop
over several in_dims, and second order for the smooth composites.
"""
from __future__ import annotations

import operator

import numpy as np
import pytest

import npfunc
import npfunc.numpy as fnp
from npfunc.core.primitive import Sample
from npfunc.core.tracer import Tracer
from npfunc.testing import checks


class PublicForm:
    """A NumPy callable seen through the registry checks' interface: ``impl`` is
    NumPy on plain arrays, ``bind`` is the same callable on (possibly traced)
    values, so every check exercises the dispatch from the public form."""

    differentiable = True

    def __init__(self, name, fn, numpy_fn=None):
        self.name = name
        self.fn = fn
        self.numpy_fn = numpy_fn or fn

    def impl(self, *args, **params):
        return self.numpy_fn(*args, **params)

    def bind(self, *args, **params):
        if not any(isinstance(a, Tracer) for a in args):
            return self.numpy_fn(*args, **params)  # the loop side of check_vmap: plain NumPy
        return self.fn(*args, **params)


R = np.random.default_rng(7)


def u(shape=(2, 3), lo=-2.0, hi=2.0, dtype=np.float64):
    return R.uniform(lo, hi, size=shape).astype(dtype)


def c(shape=(2, 3), dtype=np.complex128):
    return (R.uniform(0.3, 2.0, size=shape) + 1j * R.uniform(-1, 1, size=shape)).astype(dtype)


# (id, callable, args, params, smooth): smooth cases also get the second-order check.
SMOOTH = [
    ("float_power", np.float_power, (u(lo=0.5), u((3,))), {}),
    ("float_power-f32-scalar", np.float_power, (u((3,), 0.5, 2, np.float32), 2.5), {}),
    ("float_power-complex", np.float_power, (c(), 1.5), {}),
    ("positive", np.positive, (u(),), {}),
    ("fabs", np.fabs, (u(),), {}),
    ("square", np.square, (u(),), {}),
    ("reciprocal", np.reciprocal, (u(lo=0.5),), {}),
    ("cbrt", np.cbrt, (u(lo=0.3),), {}),
    ("exp2", np.exp2, (u(),), {}),
    ("log2", np.log2, (u(lo=0.3),), {}),
    ("log10", np.log10, (u(lo=0.3),), {}),
    ("logaddexp", np.logaddexp, (u(), u((3,))), {}),
    ("logaddexp2", np.logaddexp2, (u(), u((3,))), {}),
    ("arcsin", np.arcsin, (u(lo=-0.9, hi=0.9),), {}),
    ("arccos", np.arccos, (u(lo=-0.9, hi=0.9),), {}),
    ("arctan2", np.arctan2, (u(), u((3,), 0.3, 2.0)), {}),
    ("hypot", np.hypot, (u(), u((3,))), {}),
    ("arcsinh", np.arcsinh, (u(),), {}),
    ("arccosh", np.arccosh, (u(lo=1.2, hi=3),), {}),
    ("arctanh", np.arctanh, (u(lo=-0.9, hi=0.9),), {}),
    ("deg2rad", np.deg2rad, (u(),), {}),
    ("radians", np.radians, (u(),), {}),
    ("rad2deg", np.rad2deg, (u(),), {}),
    ("degrees", np.degrees, (u(),), {}),
    ("sinc", np.sinc, (u(),), {}),
    ("sinc-at-0", np.sinc, (np.array([0.0, 0.5, -1.5, 0.0]),), {}),
    ("sinc-complex", np.sinc, (c(),), {}),
    ("angle-complex", np.angle, (c(),), {}),
    ("angle-complex-deg", np.angle, (c(),), {"deg": True}),
    ("angle-real", np.angle, (u(),), {}),
    ("sign-complex", np.sign, (c(),), {}),
    ("conj", np.conj, (c(),), {}),
    ("conjugate", np.conjugate, (c(),), {}),
    ("real", np.real, (c(),), {}),
    ("imag", np.imag, (c(),), {}),
    ("abs-complex", np.abs, (c(),), {}),
    ("remainder", np.remainder, (u(lo=-5, hi=5), u((3,), 0.7, 2.0)), {}),
    ("mod", np.mod, (u(lo=-5, hi=5), u((3,), -2.0, -0.7)), {}),
    ("fmod", np.fmod, (u(lo=-5, hi=5), u((3,), 0.7, 2.0)), {}),
    ("fmax", np.fmax, (u(), u((3,))), {}),
    ("fmin", np.fmin, (u(), u((3,))), {}),
    ("clip", np.clip, (u(), -0.5, 0.5), {}),
    ("clip-arrays", np.clip, (u(), u((3,), -2, -0.2), u((2, 1), 0.2, 2.0)), {}),
    ("clip-none-low", np.clip, (u(), None, 0.5), {}),
    ("clip-none-high", np.clip, (u(), -0.5, None), {}),
    ("clip-min-max-kw", lambda x: np.clip(x, min=-0.5, max=1.0), (u(),), {}),
    ("copysign", np.copysign, (u(), u((3,))), {}),
    ("heaviside-x2", lambda x2: np.heaviside(np.array([0.0, 1.0, -2.0]), x2), (u((3,)),), {}),
    ("nan_to_num", np.nan_to_num, (np.array([1.0, np.nan, np.inf, -np.inf, -2.0]),), {}),
    ("nan_to_num-params", lambda x: np.nan_to_num(x, nan=1.0, posinf=3.0, neginf=-3.0),
     (np.array([1.0, np.nan, np.inf, -np.inf, -2.0]),), {}),
    ("modf", np.modf, (u(lo=-5, hi=5),), {}),
    ("frexp-mantissa", lambda x: np.frexp(x)[0], (u(lo=-5, hi=5),), {}),
    ("ldexp", lambda x: np.ldexp(x, np.array([-2, 0, 3])), (u(),), {}),
    ("where-complex", lambda x, y: np.where(np.array([True, False, True]), x, y), (c(), c((3,))), {}),
    ("frexp", np.frexp, (u(lo=-5, hi=5),), {}),
    ("divmod", np.divmod, (u(lo=-5, hi=5), u((3,), 0.7, 2.0)), {}),
]

# Piecewise-constant or integer/bool results: value, vmap (and zero derivatives).
FLAT = [
    ("floor", np.floor, (u(),), {}),
    ("ceil", np.ceil, (u(),), {}),
    ("trunc", np.trunc, (u(),), {}),
    ("fix", np.fix, (u(),), {}),
    ("rint", np.rint, (u(),), {}),
    ("round", np.round, (u(lo=-30, hi=30),), {"decimals": 1}),
    ("around", np.around, (u(lo=-30, hi=30), -1), {}),
    ("round-complex", np.round, (c(),), {"decimals": 2}),
    ("floor_divide", np.floor_divide, (u(lo=-5, hi=5), u((3,), 0.7, 2.0)), {}),
    ("sign", np.sign, (u(),), {}),
    ("heaviside", np.heaviside, (u(), 0.5), {}),
    ("isinf", np.isinf, (np.array([1.0, np.inf, -np.inf, np.nan]),), {}),
    ("isposinf", np.isposinf, (np.array([1.0, np.inf, -np.inf, np.nan]),), {}),
    ("isneginf", np.isneginf, (np.array([1.0, np.inf, -np.inf, np.nan]),), {}),
    ("isnan", np.isnan, (np.array([1.0, np.inf, -np.inf, np.nan]),), {}),
    ("isfinite", np.isfinite, (np.array([1.0, np.inf, -np.inf, np.nan]),), {}),
    ("signbit", np.signbit, (np.array([1.0, -0.0, 0.0, -2.0]),), {}),
    ("isclose", np.isclose, (np.array([1.0, 2.0, 3.0]), np.array([1.0 + 1e-9, 2.1, 3.0])), {}),
    ("isclose-params", lambda a, b: np.isclose(a, b, rtol=0.1, atol=0.0, equal_nan=True),
     (np.array([1.0, np.nan, 3.0]), np.array([1.05, np.nan, 4.0])), {}),
    ("isreal", np.isreal, (np.array([1.0, 2.0 + 0j, 1j]),), {}),
    ("iscomplex", np.iscomplex, (np.array([1.0, 2.0 + 0j, 1j]),), {}),
    ("logical_xor", np.logical_xor, (np.array([True, False, True]), np.array([True, True, False])), {}),
    ("less", np.less, (u(), u((3,))), {}),
    ("greater_equal", np.greater_equal, (u(), u((3,))), {}),
    ("bitwise_and", np.bitwise_and, (np.arange(6), np.array([3, 5, 6, 1, 2, 7])), {}),
    ("bitwise_or", np.bitwise_or, (np.arange(6), np.array([3, 5, 6, 1, 2, 7])), {}),
    ("bitwise_xor", np.bitwise_xor, (np.arange(6), np.array([3, 5, 6, 1, 2, 7])), {}),
    ("invert", np.invert, (np.arange(-3, 3),), {}),
    ("left_shift", np.left_shift, (np.arange(6), np.array([0, 1, 2, 0, 1, 2])), {}),
    ("right_shift", np.right_shift, (np.arange(16, 22), np.array([0, 1, 2, 0, 1, 2])), {}),
    ("remainder-int", np.remainder, (np.arange(-3, 3), np.array([2, 3, 2, 3, 2, 3])), {}),
    ("power-int", np.power, (np.arange(-3, 3), np.array([2, 3, 2, 3, 0, 1])), {}),
    ("frexp-exponent", lambda x: np.frexp(x)[1], (u(lo=-5, hi=5),), {}),
    ("floor_divide-of-divmod", lambda x, y: np.divmod(x, y)[0], (u(lo=-5, hi=5), u((3,), 0.7, 2.0)),
     {}),
]


def _case(row, smooth):
    name, fn, args, params = row
    return pytest.param(PublicForm(name, fn), Sample(*args, **params), smooth, id=name)


CASES = [_case(r, True) for r in SMOOTH] + [_case(r, False) for r in FLAT]


@pytest.mark.parametrize("form,sample,smooth", CASES)
def test_value_and_vmap(form, sample, smooth):
    checks.check_value(form, sample)
    checks.check_vmap(form, sample, np.random.default_rng(0))


@pytest.mark.parametrize("form,sample,smooth", [c for c in CASES if c.values[2]])
def test_derivatives(form, sample, smooth):
    rng = np.random.default_rng(1)
    with np.errstate(invalid="ignore"):
        checks.check_jvp_fd(form, sample, rng)
    checks.check_adjoint(form, sample, rng)
    checks.check_second_order(form, sample, rng)


def _has_float_argument(sample):
    return any(np.result_type(a).kind == "f" for a in sample.args)


@pytest.mark.parametrize("form,sample,smooth",
                         [c for c in CASES if not c.values[2] and _has_float_argument(c.values[1])])
def test_piecewise_constant_functions_have_zero_derivative(form, sample, smooth):
    floats = [i for i, a in enumerate(sample.args) if np.result_type(a).kind == "f"]

    grads = npfunc.grad(lambda *xs: _piecewise_loss(form, sample, floats, xs),
                        argnums=tuple(range(len(floats))))(*[sample.args[i] for i in floats])
    for g, i in zip(grads, floats):
        assert g.dtype == np.asarray(sample.args[i]).dtype
        assert np.all(g == 0), (form.name, g)


def _piecewise_loss(form, sample, floats, xs):
    args = list(sample.args)
    for i, x in zip(floats, xs):
        args[i] = x
    out = form.bind(*args, **sample.params)
    leaves = out if isinstance(out, tuple) else (out,)
    total = np.sum(xs[0]) * 0.0  # keeps the loss a traced float scalar
    for leaf in leaves:
        if np.result_type(leaf).kind in "fc":
            total = total + np.real(leaf).sum()
    return total


# ---- operator and method forms -------------------------------------------------------

def _round_builtin(x, ndigits=None):
    return np.round(x, ndigits or 0)  # what round() means for an array (ndarray has no __round__)


OPERATORS = [
    ("floordiv", operator.floordiv, (u(lo=-5, hi=5), u((3,), 0.7, 2.0))),
    ("mod", operator.mod, (u(lo=-5, hi=5), u((3,), 0.7, 2.0))),
    ("pow", operator.pow, (u(lo=0.5), u((3,)))),
    ("rpow", lambda x: 2.0 ** x, (u(),)),
    ("neg", operator.neg, (u(),)),
    ("pos", operator.pos, (u(),)),
    ("abs", abs, (u(),)),
    ("abs-complex", abs, (c(),)),
    ("round", (round, _round_builtin), (u(lo=-30, hi=30),)),
    ("round-2", (lambda x: round(x, 2), lambda x: _round_builtin(x, 2)), (u(),)),
    ("method-round", lambda x: x.round(1), (u(),)),
    ("method-clip", lambda x: x.clip(-0.5, 0.5), (u(),)),
    ("method-conj", lambda x: x.conj(), (c(),)),
    ("attr-real", lambda x: x.real, (c(),)),
    ("attr-imag", lambda x: x.imag, (c(),)),
    ("invert", operator.invert, (np.array([True, False, True]),)),
    ("and", operator.and_, (np.arange(6), np.array([3, 5, 6, 1, 2, 7]))),
    ("or", operator.or_, (np.arange(6), np.array([3, 5, 6, 1, 2, 7]))),
    ("xor", operator.xor, (np.arange(6), np.array([3, 5, 6, 1, 2, 7]))),
]


@pytest.mark.parametrize("name,fn,args", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_operator_forms(name, fn, args):
    form = PublicForm(name, *fn) if isinstance(fn, tuple) else PublicForm(name, fn)
    sample = Sample(*args)
    checks.check_value(form, sample)
    checks.check_vmap(form, sample, np.random.default_rng(0))
    if any(np.result_type(a).kind in "fc" for a in args):
        with np.errstate(invalid="ignore"):
            checks.check_jvp_fd(form, sample, np.random.default_rng(2))
        checks.check_adjoint(form, sample, np.random.default_rng(2))


def test_bitwise_operators_on_integers_are_bitwise_not_logical():
    got = npfunc.vmap(lambda i: (i & 6, i | 1, i ^ 3, ~i))(np.arange(8))
    assert [g.tolist() for g in got] == [(np.arange(8) & 6).tolist(), (np.arange(8) | 1).tolist(),
                                        (np.arange(8) ^ 3).tolist(), (~np.arange(8)).tolist()]


# ---- functions returning Python bools --------------------------------------------------

def test_allclose_and_array_equal():
    x = np.array([[1.0, 2.0], [1.0, 2.5]])
    got = npfunc.vmap(lambda r: np.allclose(r, np.array([1.0, 2.0])))(x)
    np.testing.assert_array_equal(got, [True, False])
    got = npfunc.vmap(lambda r: np.array_equal(r, np.array([1.0, 2.0])))(x)
    np.testing.assert_array_equal(got, [True, False])

    def f(x):
        close = np.allclose(x, 1.0)  # concrete under grad: a Python bool
        assert close is True or close is False
        return (x * 2.0).sum() if close else x.sum()

    np.testing.assert_allclose(npfunc.grad(f)(np.ones(3)), 2.0 * np.ones(3))
    np.testing.assert_allclose(npfunc.grad(f)(np.zeros(3)), np.ones(3))
    assert fnp.allclose(np.ones(2), np.ones(2)) is True
    assert fnp.array_equal(np.ones(2), np.ones(3)) is False
    assert fnp.array_equal(np.array([np.nan]), np.array([np.nan]), equal_nan=True) is True
    assert npfunc.vmap(lambda r: np.allclose(r[:0], 1.0))(x).tolist() == [True, True]


def test_namespace_exposes_the_new_functions():
    for name in ["float_power", "fabs", "square", "reciprocal", "cbrt", "exp2", "log2", "log10",
                 "logaddexp", "logaddexp2", "arcsin", "arccos", "arctan2", "hypot", "arcsinh",
                 "arccosh", "arctanh", "deg2rad", "radians", "rad2deg", "degrees", "sinc", "fmax",
                 "fmin", "clip", "sign", "copysign", "mod", "remainder", "fmod", "floor_divide",
                 "floor", "ceil", "trunc", "rint", "round", "around", "fix", "heaviside",
                 "nan_to_num", "real", "imag", "conj", "conjugate", "angle", "isinf", "isneginf",
                 "isposinf", "logical_xor", "isclose", "allclose", "array_equal", "isreal",
                 "iscomplex", "signbit", "modf", "frexp", "ldexp", "divmod", "positive",
                 "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift"]:
        assert callable(getattr(fnp, name)), name
        if getattr(np, name).__name__ == name:  # aliases (np.mod is np.remainder) are not listed
            assert name in dir(fnp), name


def test_clip_argument_errors():
    x = np.ones(3)
    with pytest.raises(ValueError, match="either a_min/a_max or min/max"):
        npfunc.grad(lambda x: np.clip(x, 0.0, 1.0, min=0.0).sum())(x)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad\(f\): np\.clip's argument 'casting'"):
        npfunc.grad(lambda x: np.clip(x, 0.0, 1.0, casting="unsafe").sum())(x)


def test_clip_into_a_plain_empty_out_matches_numpy():
    """np.clip(x, lo, hi, out=np.empty(n)): a buffer made while the transform runs takes the
    traced write (npfunc.core.pending); values, the returned out= array and derivatives are NumPy's."""
    from npfunc.testing import numerical_jacobian

    def f(x):
        buf = np.empty(3)
        r = np.clip(x, 0.0, 1.0, out=buf)
        return (r * buf).sum() + buf[1]

    def g(x):
        return np.clip(x, 0.0, 1.0, out=np.empty(3))

    x = np.array([-0.5, 0.3, 1.7])  # below, inside and above [0, 1]: no ties at the bounds
    jitted = npfunc.jit(f)
    for y in (x, 1.1 * x, 0.5 * x):  # the recording call, then replays with new values
        got = jitted(y)
        assert type(got) is type(f(y))
        np.testing.assert_allclose(got, f(y), rtol=1e-14)
    X = np.stack([x, 0.5 * x, -x])
    np.testing.assert_allclose(npfunc.vmap(f)(X), np.stack([f(r) for r in X]), rtol=1e-14)
    out = npfunc.jit(g)(x)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, g(x))
    np.testing.assert_allclose(npfunc.grad(f)(x), numerical_jacobian(f, x, 1e-5, order=4), rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(npfunc.grad(lambda y: g(y).sum())(x), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(npfunc.jacfwd(g)(x), np.diag([0.0, 1.0, 0.0]))


def test_clip_into_out_updates_it_as_numpy():
    def clipped_update(g):
        np.clip(g, -0.3, 0.3, out=g)
        return g * 2.0

    g, plain = np.array([0.5, -1.0, 0.1]), np.array([0.5, -1.0, 0.1])
    want = clipped_update(plain)
    np.testing.assert_allclose(npfunc.jit(clipped_update)(g), want)
    np.testing.assert_allclose(g, plain)
    np.testing.assert_allclose(npfunc.jacrev(clipped_update)(np.array([0.5, -1.0, 0.1])), np.diag([0.0, 0.0, 2.0]))


def test_round_and_rounding_keep_numpy_values_and_dtypes():
    x = np.array([0.5, 1.5, 2.5, -0.5, 1.25], dtype=np.float32)
    for f in (np.round, np.rint, np.floor, np.ceil, np.trunc, np.fix,
              lambda v: np.round(v, 1), lambda v: np.around(v, -1)):
        out = npfunc.vmap(f)(np.stack([x, -x]))
        np.testing.assert_array_equal(out, np.stack([f(x), f(-x)]))
        assert out.dtype == np.float32


def test_nan_to_num_complex_parts_are_masked_separately():
    z = np.array([complex(np.nan, 1.0), complex(2.0, np.inf), 1 + 1j])
    _, pullback = npfunc.vjp(np.nan_to_num, z)
    (g,) = pullback(np.array([1 + 1j, 1 + 1j, 1 + 1j]))
    np.testing.assert_array_equal(g, [1j, 2.0 * 0 + 1.0, 1 + 1j])


def test_sinc_derivatives_at_zero_are_exact():
    # sinc(x) = 1 - (pi x)^2 / 6 + (pi x)^4 / 120 - ...
    d1 = npfunc.grad(np.sinc)
    d2 = npfunc.grad(d1)
    d4 = npfunc.grad(npfunc.grad(d2))
    assert d1(0.0) == 0.0
    np.testing.assert_allclose(d2(0.0), -np.pi ** 2 / 3, rtol=1e-14)
    np.testing.assert_allclose(d4(0.0), np.pi ** 4 / 5, rtol=1e-14)
    # continuous with the values just beside 0
    np.testing.assert_allclose(d2(1e-4), -np.pi ** 2 / 3, rtol=1e-6)


class _Deferring:
    """An operand that opts out of ufuncs, as NumPy's protocol allows: its own
    (reflected) operator methods handle arithmetic with arrays."""
    __array_ufunc__ = None

    def __radd__(self, other):
        return ("radd", np.shape(other))

    def __mul__(self, other):
        return ("mul", np.shape(other))

    __rmul__ = __mul__


class _Refusing:
    __array_ufunc__ = None


@pytest.mark.parametrize("transform", ["grad", "vmap", "jit"])
def test_operands_with_array_ufunc_none_handle_the_operation(transform):
    seen = []

    def f(x):
        seen.append((x + _Deferring(), x * _Deferring(), _Deferring() * x))
        with pytest.raises(TypeError, match="unsupported operand"):
            x - _Refusing()
        return (x * x).sum()

    x = np.ones(3)
    plain = f(x)
    {"grad": npfunc.grad(f), "vmap": npfunc.vmap(f), "jit": npfunc.jit(f)}[transform](
        np.ones((2, 3)) if transform == "vmap" else x)
    assert seen[0] == (("radd", (3,)), ("mul", (3,)), ("mul", (3,)))  # what NumPy gives
    assert all(s == seen[0] for s in seen[1:]) and plain == 3.0
