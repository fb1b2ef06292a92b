"""Clear errors: each failure raises its own class from ``npfunc.errors`` and
the message names the transform, the offending argument, and the fix.

The autouse fixture in conftest.py checks after every test (so after every
error below) that the transform stack is empty again.
"""
from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

from npfunc import errors, grad, grad_and_value, hessian, jacfwd, jacrev, jit, jvp, vjp, vmap
from npfunc.core.context import current_stack


def check_message(excinfo, *needles):
    """Every needle (a plain substring) occurs in the message."""
    message = str(excinfo.value)
    missing = [n for n in needles if n not in message]
    assert not missing, f"{missing} not in message: {message!r}"
    return message


@pytest.fixture
def X(rng):
    return rng.standard_normal((5, 3))


@pytest.fixture
def x(rng):
    return rng.standard_normal(3)


def test_every_error_class_derives_from_npfunc_error():
    classes = [errors.InDimsError, errors.OutDimsError, errors.BatchSizeError,
               errors.ArgnumsError, errors.NonDifferentiableInputError,
               errors.NonScalarOutputError, errors.OutputTypeError, errors.AuxOutputError,
               errors.TangentError, errors.ChunkSizeError, errors.IndependenceError,
               errors.BatchedConversionError, errors.ConcretizationError,
               errors.EscapedTracerError, errors.UnsupportedFunctionError,
               errors.UnsupportedOperationError]
    for cls in classes:
        assert issubclass(cls, errors.NpfuncError), cls


def test_errors_module_is_importable_by_path():
    module = importlib.import_module("npfunc.errors")
    assert module.IndependenceError is errors.IndependenceError


# ---- vmap: in_dims ------------------------------------------------------------------------------

def test_in_dims_tuple_of_the_wrong_length(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda a, b: a + b, in_dims=(0,))(X, X)
    check_message(info, "vmap", "in_dims", "2 positional argument", "one int or None per argument")


def test_in_dims_nested_structure_mismatch(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda d: d["u"], in_dims=({"w": 0},))({"u": X})
    check_message(info, "vmap", "in_dims", "'w'", "'u'", "one int or None")
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda pair: pair[0], in_dims=((0, 0, 0),))((X, X))
    check_message(info, "vmap", "in_dims", "structure")


def test_in_dims_of_the_wrong_type(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda a, b: a + b, in_dims=[0, None])(X, X[0])
    check_message(info, "vmap", "in_dims", "tuple", "list")
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda a, b: a + b, in_dims=(0.5, None))(X, X[0])
    check_message(info, "vmap", "in_dims", "int or None", "0.5")


def test_in_dims_out_of_range(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(np.sin, in_dims=2)(X)
    check_message(info, "vmap", "args[0]", "axis 2", "-2..1")
    with pytest.raises(errors.InDimsError) as info:
        vmap(np.sin, in_dims=-3)(X)
    check_message(info, "vmap", "args[0]", "-3", "-2..1")
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda d: d["a"] * d["b"], in_dims=({"a": 0, "b": 1},))({"a": X, "b": X[0]})
    check_message(info, "vmap", "args[0]['b']", "axis 1", "-1..0")


def test_vmap_over_an_input_without_any_axis(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda a, s: a * s)(X, np.float64(2.0))
    check_message(info, "vmap", "args[1]", "0-dimensional", "None")


def test_vmap_of_a_non_array_with_an_int_in_dim(X):
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda a, s: a * len(s))(X, "ab")
    check_message(info, "vmap", "args[1]", "str", "None")


def test_vmap_with_every_in_dim_none(X):
    with pytest.raises(errors.BatchSizeError) as info:
        vmap(lambda a, b: a + b, in_dims=None)(X, X)
    check_message(info, "vmap", "no input is mapped", "Map at least one")
    with pytest.raises(errors.BatchSizeError):
        vmap(lambda a, b: a + b, in_dims=(None, None))(X, X)


def test_mismatched_batch_sizes_name_the_arguments_and_sizes(rng):
    with pytest.raises(errors.BatchSizeError) as info:
        vmap(lambda a, b: a + b)(rng.standard_normal((3, 2)), rng.standard_normal((4, 2)))
    check_message(info, "vmap", "args[0] has size 3", "args[1] has size 4", "same size")
    with pytest.raises(errors.BatchSizeError) as info:
        vmap(lambda d: d["a"] + d["b"], in_dims=({"a": 0, "b": 1},))(
            {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal((2, 5))})
    check_message(info, "args[0]['a'] has size 3", "args[0]['b'] has size 5")


# ---- vmap: out_dims -----------------------------------------------------------------------------

def test_out_dims_structure_mismatch(X):
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: (a, a), out_dims=(0, 0, 0))(X)
    check_message(info, "vmap", "out_dims", "outputs", "one int or None per output")
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: {"p": a}, out_dims={"q": 0})(X)
    check_message(info, "vmap", "out_dims", "'q'")


def test_out_dims_out_of_range_or_wrong_type(X):
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: a, out_dims=3)(X)
    check_message(info, "vmap", "out_dims=3", "output 0", "-2..1")
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: a, out_dims="a")(X)
    check_message(info, "vmap", "out_dims", "int or None")


def test_out_dims_none_for_a_batched_output(X):
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: (a.sum(), a), out_dims=(0, None))(X)
    check_message(info, "vmap", "out_dims is None", "output 1", "int out_dim")


def test_out_dims_message_does_not_show_internal_tracers(X):
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda a: (a, a), out_dims=(0, 0, 0))(X)
    assert "Tracer" not in str(info.value)


# ---- chunk_size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
@pytest.mark.parametrize("transform", ["vmap", "jacrev"])
def test_chunk_size_must_be_a_positive_int(transform, bad):
    make = {"vmap": vmap, "jacrev": jacrev}[transform]
    with pytest.raises(errors.ChunkSizeError) as info:
        make(np.sin, chunk_size=bad)  # rejected when the transform is made
    check_message(info, transform, "chunk_size", "positive int or None", repr(bad))


# ---- grad: outputs and inputs -------------------------------------------------------------------

def test_grad_of_a_non_scalar_output(x):
    with pytest.raises(errors.NonScalarOutputError) as info:
        grad(np.sin)(x)
    check_message(info, "grad", "shape (3,)", ".sum()", "jacrev")


def test_grad_of_a_tuple_or_none_output(x):
    with pytest.raises(errors.OutputTypeError) as info:
        grad(lambda a: (a.sum(), a.sum()))(x)
    check_message(info, "grad", "tuple", "has_aux=True")
    with pytest.raises(errors.OutputTypeError) as info:
        grad(lambda a: None)(x)
    check_message(info, "grad", "NoneType")


def test_grad_of_an_integer_output(x):
    with pytest.raises(errors.NonScalarOutputError) as info:
        grad(lambda a: (a > 0).sum())(x)
    check_message(info, "grad", "int64", "floating-point")


@pytest.mark.parametrize("transform", ["grad", "grad_and_value", "jacrev", "jacfwd", "hessian"])
def test_differentiating_an_integer_argument(transform, x):
    make = {"grad": grad, "grad_and_value": grad_and_value, "jacrev": jacrev,
            "jacfwd": jacfwd, "hessian": hessian}[transform]
    with pytest.raises(errors.NonDifferentiableInputError) as info:
        make(lambda a, n: (a * n).sum(), argnums=1)(x, np.arange(3))
    check_message(info, "argument 1", "int64", "astype(float)", "argnums")
    # hessian is jacfwd(jacrev(f)): its own name or the outer jacfwd's is acceptable
    names = ("hessian", "jacfwd") if transform == "hessian" else (transform,)
    assert str(info.value).startswith(names), str(info.value)


def test_differentiating_integer_or_bool_primals_in_vjp_and_jvp():
    with pytest.raises(errors.NonDifferentiableInputError) as info:
        vjp(lambda a, b: a * b, np.ones(2), np.array([1, 2]))
    check_message(info, "vjp", "primal 1", "int64", "astype(float)")
    with pytest.raises(errors.NonDifferentiableInputError) as info:
        jvp(lambda a: a, (np.array([True, False]),), (np.ones(2),))
    check_message(info, "jvp", "bool", "astype(float)")
    with pytest.raises(errors.NonDifferentiableInputError) as info:
        grad(lambda a: a * 2.0)(3)  # a Python int
    check_message(info, "grad", "argument 0", "int")


def test_differentiating_a_non_array_argument():
    with pytest.raises(errors.NonDifferentiableInputError) as info:
        grad(lambda s: 1.0)("text")
    check_message(info, "grad", "argument 0", "str", "argnums")


# ---- argnums ------------------------------------------------------------------------------------

@pytest.mark.parametrize("transform", ["grad", "grad_and_value", "jacrev", "jacfwd"])
def test_argnums_out_of_range(transform, x):
    make = {"grad": grad, "grad_and_value": grad_and_value, "jacrev": jacrev,
            "jacfwd": jacfwd}[transform]
    for bad in (2, -3, (0, 5)):
        with pytest.raises(errors.ArgnumsError) as info:
            make(lambda a, b: (a * b).sum(), argnums=bad)(x, x)
        check_message(info, transform, f"argnums={bad!r}", "2 positional argument", "-2..1")


def test_argnums_repeated(x):
    for transform, make in (("grad", grad), ("jacrev", jacrev), ("jacfwd", jacfwd)):
        with pytest.raises(errors.ArgnumsError) as info:
            make(lambda a, b: (a * b).sum(), argnums=(0, -2))(x, x)
        check_message(info, transform, "argnums=(0, -2)", "same argument")


def test_argnums_repeated_message_says_how_to_fix(x):
    with pytest.raises(errors.ArgnumsError) as info:
        grad(lambda a, b: (a * b).sum(), argnums=(0, 0))(x, x)
    message = str(info.value).lower()
    fix = message.split("more than once")[-1]
    assert re.search(r"only once|at most once|each argument once|remove|distinct|unique", fix), \
        message


@pytest.mark.parametrize("bad", ["0", [0, 1], (), True, (0, 1.0), None])
@pytest.mark.parametrize("transform", ["grad", "grad_and_value", "jacrev", "jacfwd", "hessian"])
def test_argnums_of_the_wrong_type_is_rejected_when_the_transform_is_made(transform, bad):
    make = {"grad": grad, "grad_and_value": grad_and_value, "jacrev": jacrev,
            "jacfwd": jacfwd, "hessian": hessian}[transform]
    with pytest.raises(errors.ArgnumsError) as info:
        make(lambda a: a.sum(), argnums=bad)
    check_message(info, "argnums", "int or a non-empty tuple of ints", repr(bad))


def test_calling_grad_without_arguments():
    with pytest.raises(errors.ArgnumsError) as info:
        grad(lambda: 1.0)()
    check_message(info, "grad", "no positional arguments")


# ---- has_aux ------------------------------------------------------------------------------------

HAS_AUX_CALLS = {
    "grad": lambda fn, a: grad(fn, has_aux=True)(a),
    "grad_and_value": lambda fn, a: grad_and_value(fn, has_aux=True)(a),
    "vjp": lambda fn, a: vjp(fn, a, has_aux=True),
    "jvp": lambda fn, a: jvp(fn, (a,), (a,), has_aux=True),
    "jacrev": lambda fn, a: jacrev(fn, has_aux=True)(a),
    "jacfwd": lambda fn, a: jacfwd(fn, has_aux=True)(a),
}


@pytest.mark.parametrize("transform", list(HAS_AUX_CALLS))
def test_has_aux_without_an_output_aux_pair(transform, x):
    with pytest.raises(errors.AuxOutputError) as info:
        HAS_AUX_CALLS[transform](lambda a: a.sum(), x)
    check_message(info, transform, "has_aux=True", "(output, aux)")
    with pytest.raises(errors.AuxOutputError) as info:
        HAS_AUX_CALLS[transform](lambda a: (a.sum(), a, a), x)
    check_message(info, transform, "length 3", "(output, aux)")


@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_has_aux_message_describes_the_value_not_an_internal_class(transform, x):
    with pytest.raises(errors.AuxOutputError) as info:
        HAS_AUX_CALLS[transform](lambda a: a.sum(), x)
    assert "Tracer" not in str(info.value)


# ---- outputs that are not arrays ----------------------------------------------------------------

NON_ARRAY_CALLS = {
    "grad": lambda fn, a: grad(fn)(a),
    "vjp": lambda fn, a: vjp(fn, a),
    "jvp": lambda fn, a: jvp(fn, (a,), (a,)),
    "jacrev": lambda fn, a: jacrev(fn)(a),
    "jacfwd": lambda fn, a: jacfwd(fn)(a),
    "vmap": lambda fn, a: vmap(fn)(np.stack([a, a])),
}


@pytest.mark.parametrize("transform", list(NON_ARRAY_CALLS))
@pytest.mark.parametrize("result", ["a string", ["a", "b"], {"k": "v"}],
                         ids=["str", "list", "dict"])
def test_non_array_outputs(transform, result, x):
    with pytest.raises(errors.OutputTypeError) as info:
        NON_ARRAY_CALLS[transform](lambda a: result, x)
    check_message(info, transform, "str", "array")


def test_vmap_non_array_output_hint_is_one_vmap_accepts(X):
    with pytest.raises(errors.OutputTypeError) as info:
        vmap(lambda a: "text")(X)
    assert "has_aux" not in str(info.value)


# ---- Python conversions of traced values --------------------------------------------------------

def test_bool_of_a_batched_value_names_vmap_and_np_where(X):
    def branchy(a):
        if a.sum() > 0:
            return a
        return -a

    with pytest.raises(errors.BatchedConversionError) as info:
        vmap(branchy)(X)
    check_message(info, "vmap(f)", "bool", "np.where")
    with pytest.raises(errors.BatchedConversionError) as info:
        vmap(grad(lambda a: branchy(a).sum()))(X)
    check_message(info, "vmap(grad(f))", "np.where")
    with pytest.raises(errors.BatchedConversionError) as info:
        grad(lambda m: vmap(lambda r: branchy(r).sum())(m).sum())(X)
    check_message(info, "grad(vmap(f))", "np.where")


_numpy_asarray = np.asarray  # as `from numpy import asarray` binds it: NumPy's own function


@pytest.mark.parametrize("convert", [float, int, _numpy_asarray, lambda a: a.item()],
                         ids=["float", "int", "imported asarray", "item"])
def test_concrete_conversions_of_a_batched_value(convert, X):
    with pytest.raises(errors.BatchedConversionError) as info:
        vmap(lambda a: a * convert(a[0]))(X)
    check_message(info, "vmap", "single value", "np." + ("stack" if convert is _numpy_asarray else "where"))


def test_np_array_of_batched_values_builds_a_batched_array(X):
    np.testing.assert_array_equal(vmap(lambda a: np.array([a[0], a[1]]))(X), X[:, :2])
    with pytest.raises(errors.BatchedConversionError) as info:
        vmap(lambda a: np.sum([a[0], a[1]]))(X)
    check_message(info, "np.sum(np.stack([x, y]))")


CONCRETE = {
    "float": (lambda a: float(a[0]) * a, "float(x)"),
    "asarray": (lambda a: _numpy_asarray(a) * a, "np.asarray(x)"),
    "item": (lambda a: a[0].item() * a, "x.item()"),
    "tolist": (lambda a: a * sum(a.tolist()), "x.tolist()"),
}


@pytest.mark.parametrize("kind", list(CONCRETE))
@pytest.mark.parametrize("transform", ["grad", "jvp", "vjp", "jacrev", "jacfwd"])
def test_concretizing_a_differentiated_value(transform, kind, x):
    fn, what = CONCRETE[kind]
    calls = {
        "grad": lambda: grad(lambda a: fn(a).sum())(x),
        "jvp": lambda: jvp(fn, (x,), (x,)),
        "vjp": lambda: vjp(fn, x),
        "jacrev": lambda: jacrev(fn)(x),
        "jacfwd": lambda: jacfwd(fn)(x),
    }
    with pytest.raises(errors.ConcretizationError) as info:
        calls[transform]()
    check_message(info, what, f"differentiated by {transform}", "npfunc.stop_gradient")


def test_lists_of_differentiated_values_given_to_numpy_point_to_np_stack(x):
    with pytest.raises(errors.ConcretizationError) as info:
        grad(lambda a: np.mean([a[0], a[1]]))(x)
    check_message(info, "grad", "np.mean(np.stack([x, y]))")


def test_messages_under_jacfwd_name_the_stack_as_written(x):
    with pytest.raises(errors.ConcretizationError) as info:
        jacfwd(lambda a: float(a[0]) * a)(x)
    assert str(info.value).startswith("jacfwd(f):"), str(info.value)


def test_messages_under_nested_transforms_name_the_stack(x, X):
    with pytest.raises(errors.ConcretizationError) as info:
        vmap(grad(lambda r: float(r.sum())))(X)
    check_message(info, "vmap(grad(f))", "npfunc.stop_gradient")
    with pytest.raises(errors.ConcretizationError) as info:
        jacrev(lambda a: float(a[0]) * a)(x)
    assert str(info.value).startswith("jacrev(f):")


# ---- data-dependent Python control flow works where values are concrete -------------------------

def _piecewise(a):
    if a.sum() > 0:            # bool() of a traced value: the primal's truth value
        return (a ** 2).sum()
    return np.sin(a).sum()


def test_control_flow_under_grad_takes_the_primal_branch(x):
    pos, neg = np.abs(x) + 0.1, -np.abs(x) - 0.1
    np.testing.assert_allclose(grad(_piecewise)(pos), 2 * pos)
    np.testing.assert_allclose(grad(_piecewise)(neg), np.cos(neg))
    np.testing.assert_allclose(grad(grad(lambda t: _piecewise(np.stack([t, t]))))(0.5), 4.0)
    np.testing.assert_allclose(grad(grad(lambda t: _piecewise(np.stack([t, t]))))(-0.5),
                               -2 * np.sin(-0.5))


def test_control_flow_under_jvp_jacobians_and_hessian(x):
    pos, neg = np.abs(x) + 0.1, -np.abs(x) - 0.1
    np.testing.assert_allclose(jvp(_piecewise, (pos,), (np.ones(3),))[1], 2 * pos.sum())
    np.testing.assert_allclose(jvp(_piecewise, (neg,), (np.ones(3),))[1], np.cos(neg).sum())
    np.testing.assert_allclose(jacrev(_piecewise)(neg), np.cos(neg))
    np.testing.assert_allclose(jacfwd(_piecewise)(pos), 2 * pos)
    np.testing.assert_allclose(hessian(_piecewise)(pos), 2 * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(hessian(_piecewise)(neg), np.diag(-np.sin(neg)), atol=1e-12)


def test_int_and_bool_of_a_differentiated_value_give_the_primals(x):
    def power(a):
        n = int(a[0])            # 2 at a[0] = 2.7
        out = a[1]
        for _ in range(n):       # loop count from a traced value
            out = out * a[1]
        return out if bool(a[0] > 0) else -out

    a = np.array([2.7, 1.3])
    np.testing.assert_allclose(grad(power)(a), [0.0, 3 * 1.3 ** 2])
    np.testing.assert_allclose(jvp(power, (a,), (np.array([0.0, 1.0]),))[1], 3 * 1.3 ** 2)
    # closing over an unbatched differentiated value inside vmap is fine too
    got = vmap(lambda r, c: grad(_piecewise)(c) * r, in_dims=(0, None))(np.ones((2, 3)), x)
    np.testing.assert_allclose(got, np.stack([grad(_piecewise)(x)] * 2))


# ---- escaped traced values ----------------------------------------------------------------------

def test_a_traced_value_that_escapes_grad(x):
    leaked = []

    def loss(a):
        leaked.append(a * 2)          # stored in an outer list: escapes
        return (a ** 2).sum()

    np.testing.assert_allclose(grad(loss)(x), 2 * x)  # the transform itself is fine
    (value,) = leaked
    uses = [lambda: value + 1, lambda: np.sin(value), lambda: float(value[0]),
            lambda: bool(value[0] > 0), lambda: grad(lambda b: (b * value).sum())(x),
            lambda: vmap(lambda b: b * value)(np.ones((2, 3)))]
    for use in uses:
        with pytest.raises(errors.EscapedTracerError) as info:
            use()
        check_message(info, "grad", "escaped", "Return it")


@pytest.mark.parametrize("transform", ["vmap", "jvp"])
def test_a_traced_value_that_escapes_vmap_or_jvp(transform, X):
    leaked = []

    def keep(a):
        leaked.append(a)
        return a

    if transform == "vmap":
        vmap(keep)(X)
    else:
        jvp(keep, (X,), (X,))
    with pytest.raises(errors.EscapedTracerError) as info:
        leaked[0] * 3
    check_message(info, transform, "escaped")


# ---- unsupported NumPy --------------------------------------------------------------------------

@pytest.mark.parametrize("transform", ["grad", "vmap"])
@pytest.mark.parametrize("name,call", [
    ("np.array2string", lambda a: np.array2string(a)),
])
def test_unsupported_numpy_function_is_named(transform, name, call, x, X):
    with pytest.raises(errors.UnsupportedFunctionError) as info:
        if transform == "grad":
            grad(lambda a: call(a).sum())(x)
        else:
            vmap(call)(X)
    check_message(info, transform, name, "not supported", "supported functions")


# (call into out=, the functional spelling, its derivative)
_OUT_CALLS = {
    "sin": (lambda a, out: np.sin(a, out=out), lambda a: np.sin(a), lambda a: np.diag(np.cos(a))),
    "add": (lambda a, out: np.add(a, 1.0, out=out), lambda a: np.add(a, 1.0), lambda a: np.eye(3)),
    "multiply-positional": (lambda a, out: np.multiply(a, a, out),  # out given positionally
                            lambda a: np.multiply(a, a), lambda a: np.diag(2 * a)),
}


@pytest.mark.parametrize("name", _OUT_CALLS)
def test_out_argument_into_a_plain_buffer_matches_the_functional_spelling(name, x, X):
    """out=np.empty(3) made while the transform runs takes the traced result: NumPy returns the
    buffer itself, with the functional spelling's values and derivatives."""
    call, functional, deriv = _OUT_CALLS[name]

    def f(a):
        buf = np.empty(3)
        result = call(a, buf)
        assert result is buf  # the out= array itself, as NumPy returns it
        return buf

    want = f(x)
    np.testing.assert_array_equal(want, functional(x))
    jitted = jit(f)
    for arg in (x, 2 * x, x):  # the recording call, then replays with new values
        got = jitted(arg)
        assert type(got) is np.ndarray and got.dtype == want.dtype
        np.testing.assert_allclose(got, functional(arg), rtol=1e-15)
    np.testing.assert_allclose(vmap(f)(X), np.stack([f(r) for r in X]), rtol=1e-15)
    np.testing.assert_allclose(grad(lambda a: f(a).sum())(x), grad(lambda a: functional(a).sum())(x), rtol=1e-15)
    for jac in (jacrev, jacfwd):
        np.testing.assert_allclose(jac(f)(x), deriv(x), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("call", [
    lambda a: np.sin(a, out=np.array([0.0, 0.0, 0.0])),
    lambda a: np.add(a, 1.0, out=_PLAIN_OUT),
    lambda a: np.multiply(a, a, _PLAIN_OUT),   # out given positionally
], ids=["sin-np.array", "add-global", "multiply-positional-global"])
def test_out_argument_on_an_array_made_otherwise_with_traced_values(call, x):
    """A plain array not made by np.zeros & co. while the transform runs (np.array of numbers,
    a global) cannot take the traced result: refused, naming both fixes."""
    with pytest.raises(errors.UnsupportedOperationError) as info:
        grad(lambda a: call(a).sum())(x)
    message = check_message(info, "grad", "out=", "plain ndarray", "create the array traced", "like=x")
    assert re.search(r"x = np\.(sin|add|multiply)\(", message)  # the functional fix
    np.testing.assert_array_equal(_PLAIN_OUT, 0.0)  # left alone


_PLAIN_OUT = np.zeros(3)


def test_out_argument_into_a_traced_array_updates_it_functionally(x):
    def f(a):
        b = a * 1.0
        np.multiply(b, a, out=b)
        np.add(b, 1.0, out=b)
        return b.sum()

    np.testing.assert_allclose(grad(f)(x), 2 * x)


# ---- the stack after errors ---------------------------------------------------------------------

def test_user_exceptions_propagate_unchanged_and_the_stack_unwinds(X):
    def boom(a):
        raise KeyError("from user code")

    with pytest.raises(KeyError, match="from user code"):
        grad(lambda m: vmap(boom)(m).sum())(X)
    assert current_stack() == ()
    with pytest.raises(KeyError):
        jacfwd(jacrev(boom))(X[0])
    assert current_stack() == ()
    # later transforms are unaffected
    np.testing.assert_allclose(vmap(grad(lambda r: (r ** 2).sum()))(X), 2 * X)


def test_errors_inside_nested_transforms_leave_the_stack_empty(X):
    for call in (lambda: vmap(vmap(np.sin, in_dims=5))(X),
                 lambda: grad(lambda a: grad(np.sin)(a))(X[0]),
                 lambda: vmap(jacfwd(lambda r: float(r[0])))(X)):
        with pytest.raises(errors.NpfuncError):
            call()
        assert current_stack() == ()


# ---- jvp / vjp argument checking ----------------------------------------------------------------

def test_jvp_primals_must_be_a_tuple(x):
    with pytest.raises(errors.TangentError) as info:
        jvp(np.sin, x, x)
    check_message(info, "jvp", "primals", "tuple", "jvp(f, (x,), (t,))")


def test_tangent_and_cotangent_shapes_must_match(x):
    with pytest.raises(errors.TangentError) as info:
        jvp(np.sin, (x,), (np.ones(2),))
    check_message(info, "jvp", "tangent", "(2,)", "(3,)")
    _, vjp_fn = vjp(np.sin, x)
    with pytest.raises(errors.TangentError) as info:
        vjp_fn(np.ones(4))
    check_message(info, "vjp", "cotangent", "(4,)", "(3,)")


# ---- refusals that name a fix that works ---------------------------------------------------------

def test_vmap_update_of_an_unmapped_buffer_names_mapping_it():
    """``diag += u**2`` into an argument vmap passes unmapped: like= cannot help (the one
    array is shared by the batch); the message says to map it, which works."""
    def accumulate(u, diag):
        diag += u ** 2
        return diag

    U = np.arange(12.0).reshape(4, 3)
    with pytest.raises(errors.UnsupportedOperationError) as info:
        vmap(accumulate, in_dims=(0, None))(U, np.zeros(3))
    check_message(info, "vmap", "x += y", "in_dims=None", "in_dims=0")
    rows = np.zeros((4, 3))
    np.testing.assert_array_equal(vmap(accumulate)(U, rows), U ** 2)
    np.testing.assert_array_equal(rows, U ** 2)  # each row updated in place, as a loop over rows does


def test_scipy_spline_without_twin_names_the_twin_that_computes_it():
    """splrep/splev and UnivariateSpline(s=0) have no twin; the message names the class
    the user called and make_interp_spline(x, y, k=3), which is the same spline."""
    import scipy.interpolate as si

    x = np.linspace(0.0, 3.0, 9)
    y = np.sin(x) * x
    for f in (lambda y: si.splev(1.3, si.splrep(x, y)), lambda y: si.UnivariateSpline(x, y, s=0)(1.3)):
        with pytest.raises(errors.ConcretizationError) as info:
            grad(f)(y)
        check_message(info, "grad", "make_interp_spline(x, y, k=3)")
    assert "scipy.interpolate.UnivariateSpline (called from your code)" in str(info.value)
    fix = lambda y: si.make_interp_spline(x, y, k=3)(1.3)  # noqa: E731
    np.testing.assert_allclose(fix(y), si.splev(1.3, si.splrep(x, y)), rtol=1e-13)
    h = 1e-6
    fd = [(fix(y + h * e) - fix(y - h * e)) / (2 * h) for e in np.eye(9)]
    np.testing.assert_allclose(grad(fix)(y), fd, rtol=1e-6, atol=1e-9)


def test_scipy_sparse_operands_are_refused_naming_toarray():
    """A traced scalar times a scipy.sparse matrix, and a sparse product of a traced vector:
    npfunc refusals naming H.toarray() (they were raw ValueError/TypeError from NumPy or SciPy)."""
    import scipy.sparse as sp

    H = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    for f in (lambda x: (x[0] * H).sum(), lambda x: (H @ x).sum()):
        for transform in (grad, jit):
            with pytest.raises(errors.NpfuncError, match=r"toarray"):
                transform(f)(np.ones(2))
    np.testing.assert_allclose(grad(lambda x: (H.toarray() @ x).sum())(np.ones(2)), [1.0, 1.0])
