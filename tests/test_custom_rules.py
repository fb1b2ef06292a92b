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


def test_errors():
    with pytest.raises(CustomRuleError, match="forward mode"):
        npfunc.jvp(lambda x: clip_gradient(x, 2.0), (X,), (X,))

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
