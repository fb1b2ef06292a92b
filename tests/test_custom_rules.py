"""custom_jvp and custom_vjp: the user's rule is used by every transform and
survives batching (grad(vmap(f)), vmap(grad(f)))."""
import numpy as np
import pytest

import npfunc
from npfunc.api.custom import CustomRuleError


@npfunc.custom_jvp
def clipped_exp(x):
    return np.exp(x)


@clipped_exp.defjvp
def _clipped_exp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return clipped_exp(x), np.minimum(np.exp(x), 10.0) * t


def expected_derivative(x):
    return np.minimum(np.exp(x), 10.0)


X = np.array([1.0, 5.0, -1.0])


def test_custom_jvp_value_and_every_first_order_transform():
    np.testing.assert_allclose(clipped_exp(X), np.exp(X))
    d = expected_derivative(X)
    _, t = npfunc.jvp(clipped_exp, (X,), (np.ones(3),))
    np.testing.assert_allclose(t, d)
    np.testing.assert_allclose(npfunc.grad(lambda x: clipped_exp(x).sum())(X), d)
    np.testing.assert_allclose(npfunc.jacfwd(clipped_exp)(X), np.diag(d))
    np.testing.assert_allclose(npfunc.jacrev(clipped_exp)(X), np.diag(d))
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(clipped_exp))(X), d)


def test_custom_jvp_rule_survives_batching_inside_grad():
    d = expected_derivative(X)
    np.testing.assert_allclose(npfunc.grad(lambda x: npfunc.vmap(clipped_exp)(x).sum())(X), d)
    np.testing.assert_allclose(npfunc.jacfwd(npfunc.vmap(clipped_exp))(X), np.diag(d))


def test_custom_jvp_second_order_differentiates_the_rule():
    H = npfunc.hessian(lambda x: clipped_exp(x).sum())(X)
    np.testing.assert_allclose(H, np.diag(np.where(np.exp(X) < 10.0, np.exp(X), 0.0)))


def test_custom_jvp_with_pytrees_and_two_arguments():
    @npfunc.custom_jvp
    def f(p, y):
        return {"out": p["a"] * y}

    @f.defjvp
    def f_jvp(primals, tangents):
        (p, y), (tp, ty) = primals, tangents
        return f(p, y), {"out": 2.0 * (tp["a"] * y + p["a"] * ty)}  # twice the true derivative

    p, y = {"a": np.array([1.0, 2.0])}, np.array([3.0, 4.0])
    g_p, g_y = npfunc.grad(lambda p, y: f(p, y)["out"].sum(), argnums=(0, 1))(p, y)
    np.testing.assert_allclose(g_p["a"], 2.0 * y)
    np.testing.assert_allclose(g_y, 2.0 * p["a"])


@npfunc.custom_vjp
def clip_gradient(x, scale):
    return x * scale


def _clip_fwd(x, scale):
    return x * scale, (scale,)


def _clip_bwd(res, g):
    (scale,) = res
    return np.clip(g * scale, -1.0, 1.0), None


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_in_reverse_mode():
    c = np.array([0.5, 3.0, -4.0])
    np.testing.assert_allclose(clip_gradient(X, c), X * c)
    np.testing.assert_allclose(npfunc.grad(lambda x: clip_gradient(x, c).sum())(X), [0.5, 1.0, -1.0])
    np.testing.assert_allclose(npfunc.jacrev(lambda x: clip_gradient(x, c))(X), np.diag([0.5, 1.0, -1.0]))
    # bwd returned None for scale: no cotangent flows to it
    np.testing.assert_allclose(npfunc.grad(lambda s: clip_gradient(X, s).sum())(c), np.zeros(3))


def test_custom_vjp_under_vmap_both_orders():
    c = np.array([0.5, 3.0, -4.0])
    per_example = npfunc.vmap(npfunc.grad(clip_gradient))(X, c)
    np.testing.assert_allclose(per_example, [0.5, 1.0, -1.0])
    outer = npfunc.grad(lambda x: npfunc.vmap(clip_gradient, in_dims=(0, None))(x, 2.0).sum())(X)
    np.testing.assert_allclose(outer, [1.0, 1.0, 1.0])


def test_custom_vjp_unbatched_argument_gets_the_summed_cotangent():
    @npfunc.custom_vjp
    def scale(x, w):
        return x * w

    scale.defvjp(lambda x, w: (x * w, (x, w)), lambda res, g: (g * res[1], g * res[0]))
    xs = np.array([1.0, 2.0, 3.0])
    g_w = npfunc.grad(lambda w: npfunc.vmap(scale, in_dims=(0, None))(xs, w).sum())(np.float64(2.0))
    assert g_w == pytest.approx(xs.sum())


_numpy_asarray = np.asarray  # NumPy's own (bound before any transform runs): opaque to npfunc


def test_errors():
    @npfunc.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(CustomRuleError, match="defjvp"):
        no_rule(X)

    @npfunc.custom_vjp
    def bad(x):
        return x

    bad.defvjp(lambda x: (x, None), lambda res, g: g)  # not a tuple
    with pytest.raises(CustomRuleError, match="one cotangent per argument"):
        npfunc.grad(lambda x: bad(x).sum())(X)

    @npfunc.custom_vjp
    def wrong_shape(x):
        return x

    wrong_shape.defvjp(lambda x: (x, None), lambda res, g: (g[:1],))
    with pytest.raises(CustomRuleError, match="shape"):
        npfunc.grad(lambda x: wrong_shape(x).sum())(X)

    @npfunc.custom_vjp
    def opaque(x):
        return 2.0 * x

    opaque.defvjp(lambda x: (2.0 * x, None), lambda res, g: (2.0 * _numpy_asarray(g),))
    with pytest.raises(CustomRuleError, match="transposes its bwd"):
        npfunc.jvp(opaque, (X,), (X,))


# ---- residuals are kept (issue 10 item 3) -------------------------------------------------

def _dropout(counter):
    @npfunc.custom_vjp
    def dropout(x):
        return x * (np.random.rand(*x.shape) > 0.5)

    def fwd(x):
        counter.append(1)
        mask = (np.random.rand(*x.shape) > 0.5).astype(x.dtype)
        return x * mask, mask

    dropout.defvjp(fwd, lambda mask, g: (g * mask,))
    return dropout


def test_stochastic_forward_gets_the_gradient_of_its_own_draw():
    calls = []
    dropout = _dropout(calls)
    x = np.arange(1.0, 65.0)
    np.random.seed(0)
    out, vjp_fn = npfunc.vjp(dropout, x)
    (g,) = vjp_fn(np.ones_like(x))
    np.testing.assert_array_equal(g, (out != 0).astype(float))  # the mask that ran
    (g2,) = vjp_fn(np.ones_like(x))
    np.testing.assert_array_equal(g, g2)  # a vjp_fn called twice gives the same result
    assert len(calls) == 1  # fwd ran once, never again when cotangents arrived
    grads = npfunc.grad(lambda x: (dropout(x) ** 2).sum())(x)
    assert len(calls) == 2
    assert set(np.unique(grads / (2 * x))) <= {0.0, 1.0}


def test_residuals_not_recomputed_from_a_changed_closure():
    state = {"scale": 2.0}

    @npfunc.custom_vjp
    def scaled(x):
        return state["scale"] * x

    scaled.defvjp(lambda x: (state["scale"] * x, state["scale"]), lambda s, g: (s * g,))
    _, vjp_fn = npfunc.vjp(scaled, X)
    state["scale"] = 100.0
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], 2.0 * np.ones(3))


def test_residuals_may_hold_any_python_values_and_pytrees():
    @npfunc.custom_vjp
    def f(x):
        return np.sin(x)

    def fwd(x):
        return np.sin(x), {"cos": np.cos(x), "how": "analytic", "fn": np.negative, "n": 3, "none": None}

    def bwd(res, g):
        assert res["how"] == "analytic" and res["n"] == 3 and res["none"] is None
        return (res["fn"](-res["cos"]) * g,)

    f.defvjp(fwd, bwd)
    np.testing.assert_allclose(npfunc.grad(lambda x: f(x).sum())(X), np.cos(X))
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(X), np.cos(X))
    np.testing.assert_allclose(npfunc.jacrev(npfunc.vmap(f))(X), np.diag(np.cos(X)))


# ---- nondiff_argnums ----------------------------------------------------------------------

def _apply_custom():
    def apply(fn, x, power):
        return fn(x) ** power

    apply_vjp = npfunc.custom_vjp(apply, nondiff_argnums=(0, 2))

    def fwd(fn, x, power):
        y = fn(x)
        return y ** power, (y, x)

    def bwd(fn, power, res, g):
        y, x = res
        _, fn_vjp = npfunc.vjp(fn, x)
        return fn_vjp(g * power * y ** (power - 1))

    apply_vjp.defvjp(fwd, bwd)
    return apply_vjp


def test_custom_vjp_nondiff_argnums_take_functions_and_settings():
    apply_vjp = _apply_custom()
    expected = 3 * np.tanh(X) ** 2 * (1 - np.tanh(X) ** 2)
    np.testing.assert_allclose(apply_vjp(np.tanh, X, 3), np.tanh(X) ** 3)
    np.testing.assert_allclose(npfunc.grad(lambda x: apply_vjp(np.tanh, x, 3).sum())(X), expected)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(lambda x: apply_vjp(np.tanh, x, 3)))(X), expected)
    np.testing.assert_allclose(npfunc.jacfwd(lambda x: apply_vjp(np.tanh, x, 3))(X), np.diag(expected))
    with pytest.raises(CustomRuleError, match="nondiff_argnums"):
        npfunc.grad(lambda p: apply_vjp(np.tanh, X, p).sum())(np.float64(3.0))


def test_custom_jvp_nondiff_argnums():
    def smooth_abs(eps, x):
        return np.sqrt(x * x + eps)

    f = npfunc.custom_jvp(smooth_abs, nondiff_argnums=(0,))

    @f.defjvp
    def f_jvp(eps, primals, tangents):
        (x,), (t,) = primals, tangents
        y = f(eps, x)
        return y, x / y * t

    d = X / np.sqrt(X * X + 0.5)
    np.testing.assert_allclose(npfunc.grad(lambda x: f(0.5, x).sum())(X), d)
    np.testing.assert_allclose(npfunc.jacfwd(lambda x: f(0.5, x))(X), np.diag(d))
    np.testing.assert_allclose(npfunc.vmap(lambda x: f(0.5, x))(X), np.sqrt(X * X + 0.5))
    second = npfunc.hessian(lambda x: f(0.5, x).sum())(X)
    np.testing.assert_allclose(np.diag(second), 0.5 / (X * X + 0.5) ** 1.5)


def test_defjvps():
    @npfunc.custom_jvp
    def mul(x, y):
        return x * y

    mul.defjvps(lambda t, out, x, y: t * y, lambda t, out, x, y: x * t)
    y = np.array([2.0, 3.0, 4.0])
    gx, gy = npfunc.grad(lambda x, y: mul(x, y).sum(), argnums=(0, 1))(X, y)
    np.testing.assert_allclose(gx, y)
    np.testing.assert_allclose(gy, X)


# ---- every transform, including higher order ----------------------------------------------

@npfunc.custom_vjp
def vjp_sin(x):
    return np.sin(x)


vjp_sin.defvjp(lambda x: (vjp_sin(x), np.cos(x)), lambda c, g: (c * g,))


@pytest.mark.parametrize("which", ["jvp", "vjp"])
def test_every_transform(which):
    f = clipped_sin_jvp if which == "jvp" else vjp_sin
    x = np.array([0.1, 0.2, 0.3])
    loss = lambda x: f(x).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(loss)(x), np.cos(x))
    np.testing.assert_allclose(npfunc.jacrev(f)(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(npfunc.jacfwd(f)(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(x), np.cos(x))
    np.testing.assert_allclose(npfunc.grad(lambda x: npfunc.vmap(f)(x).sum())(x), np.cos(x))
    np.testing.assert_allclose(npfunc.vmap(npfunc.vmap(f))(np.tile(x, (2, 1))), np.sin(np.tile(x, (2, 1))))
    np.testing.assert_allclose(npfunc.hessian(loss)(x), np.diag(-np.sin(x)), atol=1e-15)
    np.testing.assert_allclose(npfunc.grad(npfunc.grad(f))(np.float64(3.0)), -np.sin(3.0))
    np.testing.assert_allclose(npfunc.jvp(npfunc.grad(loss), (x,), (np.ones(3),))[1], -np.sin(x))
    np.testing.assert_allclose(npfunc.jacrev(npfunc.jacfwd(f))(x).diagonal(axis1=1, axis2=2),
                               np.diag(-np.sin(x)), atol=1e-15)
    np.testing.assert_allclose(npfunc.jit(npfunc.grad(loss))(x), np.cos(x))
    np.testing.assert_allclose(npfunc.grad(npfunc.jit(loss))(x), np.cos(x))
    _, jvp_fn = npfunc.linearize(f, x)
    np.testing.assert_allclose(jvp_fn(np.ones(3)), np.cos(x))
    np.testing.assert_allclose(npfunc.grad(npfunc.functionalize(loss))(x), np.cos(x))


@npfunc.custom_jvp
def clipped_sin_jvp(x):
    return np.sin(x)


@clipped_sin_jvp.defjvp
def _sin_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    return clipped_sin_jvp(x), np.cos(x) * t


def test_custom_jvp_rule_runs_once_per_call_and_is_its_primal():
    runs = []

    @npfunc.custom_jvp
    def f(x):
        runs.append("fun")
        return np.exp(x)

    @f.defjvp
    def f_rule(primals, tangents):
        runs.append("rule")
        (x,), (t,) = primals, tangents
        y = np.exp(x)
        return y, y * t

    npfunc.grad(lambda x: f(x).sum())(X)
    assert runs == ["rule"]
    runs.clear()
    npfunc.jvp(f, (X,), (X,))
    assert runs == ["rule"]


def test_closure_over_the_differentiated_value_is_differentiated_as_code():
    def loss(w):
        @npfunc.custom_vjp
        def f(x):
            return x * w

        f.defvjp(lambda x: (x * w, None), lambda res, g: (2.0 * g,))  # a deliberately odd rule for x
        return f(w).sum()

    # d/dw f(w) with f(x) = x w: the custom rule for x (2) plus the closure's x (= w)
    np.testing.assert_allclose(npfunc.grad(loss)(X), 2.0 + X)


def test_closure_over_an_outer_vmap_value():
    ws = np.array([1.0, 2.0, 3.0])

    def per_w(w):
        @npfunc.custom_vjp
        def f(x):
            return w * np.sin(x)

        f.defvjp(lambda x: (w * np.sin(x), np.cos(x)), lambda c, g: (w * c * g,))
        return npfunc.grad(f)(np.float64(0.5))

    np.testing.assert_allclose(npfunc.vmap(per_w)(ws), ws * np.cos(0.5))
