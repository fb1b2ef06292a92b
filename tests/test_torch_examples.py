"""NumPy twins of the torch.func examples: the whirlwind tour, the API page and
the docstrings of vjp, jvp, jacrev, jacfwd (and the usual grad, vmap,
grad_and_value and hessian examples).  One test per example, named after it;
``torch.randn`` becomes ``rng.standard_normal`` and tensor methods become
NumPy functions.  Each checks the quantity against a formula or a loop.
"""
from __future__ import annotations

import numpy as np
import pytest

import npfunc
from npfunc import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap


def relu(v):
    return np.maximum(v, 0.0)


# =====================================================================================
# The whirlwind tour
# =====================================================================================

def test_tour_grad_of_sin_is_cos(rng):
    x = rng.standard_normal(())
    cos_x = grad(lambda t: np.sin(t))(x)
    np.testing.assert_allclose(cos_x, np.cos(x))


def test_tour_second_order_grad_of_sin(rng):
    x = rng.standard_normal(())
    neg_sin_x = grad(grad(lambda t: np.sin(t)))(x)
    np.testing.assert_allclose(neg_sin_x, -np.sin(x))


def test_tour_vmap_simple_linear_model(rng):
    batch_size, feature_size = 3, 5
    weights = rng.standard_normal(feature_size)

    def model(feature_vec):
        assert feature_vec.ndim == 1  # vmap hides the batch dimension
        return relu(feature_vec.dot(weights))

    examples = rng.standard_normal((batch_size, feature_size))
    result = vmap(model)(examples)
    np.testing.assert_allclose(result, [relu(e @ weights) for e in examples])


def test_tour_per_sample_gradients(rng):
    batch_size, feature_size = 3, 5

    def model(weights, feature_vec):
        assert feature_vec.ndim == 1
        return relu(feature_vec.dot(weights))

    def compute_loss(weights, example, target):
        y = model(weights, example)
        return ((y - target) ** 2).mean()  # MSE loss

    weights = rng.standard_normal(feature_size)
    examples = rng.standard_normal((batch_size, feature_size))
    targets = rng.standard_normal(batch_size)
    inputs = (weights, examples, targets)
    grad_weight_per_example = vmap(grad(compute_loss), in_dims=(None, 0, 0))(*inputs)

    expected = []
    for example, target in zip(examples, targets):
        pre = example @ weights
        expected.append(2 * (relu(pre) - target) * (pre > 0) * example)
    np.testing.assert_allclose(grad_weight_per_example, expected)


def test_tour_vjp_of_sin(rng):
    inputs = rng.standard_normal(3)
    func = np.sin
    cotangents = (rng.standard_normal(3),)
    outputs, vjp_fn = vjp(func, inputs)
    vjps = vjp_fn(*cotangents)
    np.testing.assert_allclose(outputs, np.sin(inputs))
    assert isinstance(vjps, tuple) and len(vjps) == 1
    np.testing.assert_allclose(vjps[0], np.cos(inputs) * cotangents[0])


def test_tour_jvp_of_product(rng):
    x = rng.standard_normal(5)
    y = rng.standard_normal(5)
    _, out_tangent = jvp(lambda a, b: a * b, (x, y), (np.ones(5), np.ones(5)))
    np.testing.assert_allclose(out_tangent, x + y)


def test_tour_jacrev_of_sin(rng):
    x = rng.standard_normal(5)
    jacobian = jacrev(np.sin)(x)
    np.testing.assert_allclose(jacobian, np.diag(np.cos(x)))


def test_tour_vmap_jacrev_batched_jacobians(rng):
    x = rng.standard_normal((64, 5))
    jacobian = vmap(jacrev(np.sin))(x)
    assert jacobian.shape == (64, 5, 5)
    np.testing.assert_allclose(jacobian, [np.diag(np.cos(row)) for row in x])


def test_tour_jacfwd_of_sin(rng):
    x = rng.standard_normal(5)
    jacobian = jacfwd(np.sin)(x)
    np.testing.assert_allclose(jacobian, np.diag(np.cos(x)))


def test_tour_hessians_from_jacrev_and_jacfwd(rng):
    def f(v):
        return np.sin(v).sum()

    x = rng.standard_normal(5)
    hessian0 = jacrev(jacrev(f))(x)
    hessian1 = jacfwd(jacrev(f))(x)
    np.testing.assert_allclose(hessian0, np.diag(-np.sin(x)), atol=1e-15)
    np.testing.assert_allclose(hessian1, np.diag(-np.sin(x)), atol=1e-15)


def test_tour_hessian_convenience(rng):
    def f(v):
        return np.sin(v).sum()

    x = rng.standard_normal(5)
    hess = hessian(f)(x)
    np.testing.assert_allclose(hess, np.diag(-np.sin(x)), atol=1e-15)


# =====================================================================================
# The API page: a Linear "module" as a function of its parameters
# =====================================================================================

def _linear_params(rng, n_in=3, n_out=3):
    return {"weight": rng.standard_normal((n_out, n_in)), "bias": rng.standard_normal(n_out)}


def _linear(params, v):
    return params["weight"] @ v + params["bias"]


def test_api_jacobian_of_a_model_call(rng):
    params = _linear_params(rng)

    def f(v):
        return _linear(params, v)

    x = rng.standard_normal(3)
    jacobian = jacrev(f)(x)
    assert jacobian.shape == (3, 3)
    np.testing.assert_allclose(jacobian, params["weight"])


def test_api_jacobian_over_model_parameters_functional_call(rng):
    params = _linear_params(rng)
    x = rng.standard_normal(3)
    jacobian = jacrev(_linear)(params, x)
    assert set(jacobian) == {"weight", "bias"}
    # d out_i / d W_jk = delta_ij x_k ;  d out_i / d b_j = delta_ij
    np.testing.assert_allclose(jacobian["weight"], np.einsum("ij,k->ijk", np.eye(3), x))
    np.testing.assert_allclose(jacobian["bias"], np.eye(3))


# =====================================================================================
# vjp docstring
# =====================================================================================

def test_vjp_doc_behaves_like_grad_for_a_scalar_function(rng):
    x = rng.standard_normal(5)

    def f(v):
        return np.sin(v).sum()

    _, vjpfunc = vjp(f, x)
    g = vjpfunc(np.array(1.0))[0]
    np.testing.assert_allclose(g, grad(f)(x))
    np.testing.assert_allclose(g, np.cos(x))


def test_vjp_doc_multiple_outputs(rng):
    x = rng.standard_normal(5)
    _, vjpfunc = vjp(lambda v: (np.sin(v), np.cos(v)), x)
    vjps = vjpfunc((np.ones(5), np.ones(5)))
    np.testing.assert_allclose(vjps[0], np.cos(x) + -np.sin(x))


def test_vjp_doc_outputs_as_python_structs(rng):
    x = rng.standard_normal(5)
    _, vjpfunc = vjp(lambda v: {"first": np.sin(v), "second": np.cos(v)}, x)
    cotangents = {"first": np.ones(5), "second": np.ones(5)}
    vjps = vjpfunc(cotangents)
    np.testing.assert_allclose(vjps[0], np.cos(x) + -np.sin(x))


def test_vjp_doc_partials_for_each_primal_of_matmul(rng):
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((4, 5))
    _, vjpfunc = vjp(np.matmul, x, y)
    cotangents = rng.standard_normal((5, 5))
    vjps = vjpfunc(cotangents)
    assert len(vjps) == 2
    np.testing.assert_allclose(vjps[0], cotangents @ y.T)
    np.testing.assert_allclose(vjps[1], x.T @ cotangents)


def test_vjp_doc_keyword_arguments_keep_their_defaults(rng):
    x = rng.standard_normal(5)

    def f(v, scale=4.0):
        return v * scale

    _, vjpfunc = vjp(f, x)
    vjps = vjpfunc(np.ones_like(x))
    np.testing.assert_allclose(vjps[0], np.full(x.shape, 4.0))


def test_vjp_doc_no_grad_inside_the_function_is_stop_gradient(rng):
    # torch's `with torch.no_grad(): c = x ** 2` is npfunc.stop_gradient(x ** 2)
    x = rng.standard_normal(5)

    def f(v):
        c = npfunc.stop_gradient(v ** 2)
        return v - c

    out, vjpfunc = vjp(f, x)
    np.testing.assert_allclose(out, x - x ** 2)
    np.testing.assert_allclose(vjpfunc(np.ones(5))[0], np.ones(5))


# =====================================================================================
# jacrev docstring
# =====================================================================================

def test_jacrev_doc_sin(rng):
    x = rng.standard_normal(5)
    jacobian = jacrev(np.sin)(x)
    np.testing.assert_allclose(jacobian, np.diag(np.cos(x)))


def test_jacrev_doc_has_aux(rng):
    x = rng.standard_normal(5)

    def f(v):
        return np.sin(v)

    def g(v):
        result = f(v)
        return result, result

    jacobian_f, f_x = jacrev(g, has_aux=True)(x)
    np.testing.assert_allclose(f_x, f(x))
    np.testing.assert_allclose(jacobian_f, np.diag(np.cos(x)))


def test_jacrev_doc_vmap_for_batched_jacobians(rng):
    x = rng.standard_normal((64, 5))
    jacobian = vmap(jacrev(np.sin))(x)
    assert jacobian.shape == (64, 5, 5)
    np.testing.assert_allclose(jacobian[7], np.diag(np.cos(x[7])))


def test_jacrev_doc_jacrev_of_jacrev_is_the_hessian(rng):
    def f(v):
        return np.sin(v).sum()

    x = rng.standard_normal(5)
    np.testing.assert_allclose(jacrev(jacrev(f))(x), np.diag(-np.sin(x)), atol=1e-15)


@pytest.mark.parametrize("jacobian_transform", [jacrev, jacfwd], ids=["jacrev", "jacfwd"])
def test_jacobian_docs_argnums_int(rng, jacobian_transform):
    def f(a, b):
        return a + b ** 2

    x, y = rng.standard_normal(5), rng.standard_normal(5)
    np.testing.assert_allclose(jacobian_transform(f, argnums=1)(x, y), np.diag(2 * y))


@pytest.mark.parametrize("jacobian_transform", [jacrev, jacfwd], ids=["jacrev", "jacfwd"])
def test_jacobian_docs_argnums_tuple(rng, jacobian_transform):
    def f(a, b):
        return a + b ** 2

    x, y = rng.standard_normal(5), rng.standard_normal(5)
    jacobian = jacobian_transform(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(jacobian[0], np.diag(np.ones_like(x)))
    np.testing.assert_allclose(jacobian[1], np.diag(2 * y))


def test_jacrev_doc_no_grad_inside_the_function_is_stop_gradient(rng):
    x = rng.standard_normal(5)

    def f(v):
        c = npfunc.stop_gradient(v ** 2)
        return v - c

    np.testing.assert_allclose(jacrev(f)(x), np.eye(5))


# =====================================================================================
# jvp docstring
# =====================================================================================

def test_jvp_doc_function_from_r1_to_rn(rng):
    x = rng.standard_normal(())

    def f(t):
        return t * np.array([1.0, 2.0, 3.0])

    value, derivative = jvp(f, (x,), (np.array(1.0),))
    np.testing.assert_allclose(value, f(x))
    np.testing.assert_allclose(derivative, [1.0, 2.0, 3.0])


def test_jvp_doc_multiple_inputs(rng):
    x = rng.standard_normal(5)
    y = rng.standard_normal(5)
    _, output = jvp(lambda a, b: a * b, (x, y), (np.ones(5), np.ones(5)))
    np.testing.assert_allclose(output, x + y)


# =====================================================================================
# jacfwd docstring
# =====================================================================================

def test_jacfwd_doc_sin(rng):
    x = rng.standard_normal(5)
    np.testing.assert_allclose(jacfwd(np.sin)(x), np.diag(np.cos(x)))


def test_jacfwd_doc_vmap_for_batched_jacobians(rng):
    x = rng.standard_normal((64, 5))
    jacobian = vmap(jacfwd(np.sin))(x)
    assert jacobian.shape == (64, 5, 5)
    np.testing.assert_allclose(jacobian[11], np.diag(np.cos(x[11])))


def test_jacfwd_doc_has_aux(rng):
    x = rng.standard_normal(5)

    def f(v):
        return np.sin(v)

    def g(v):
        result = f(v)
        return result, result

    jacobian_f, f_x = jacfwd(g, has_aux=True)(x)
    np.testing.assert_allclose(f_x, f(x))
    np.testing.assert_allclose(jacobian_f, np.diag(np.cos(x)))


def test_jacfwd_doc_jacfwd_of_jacrev_is_the_hessian(rng):
    def f(v):
        return np.sin(v).sum()

    x = rng.standard_normal(5)
    np.testing.assert_allclose(jacfwd(jacrev(f))(x), np.diag(-np.sin(x)), atol=1e-15)


# =====================================================================================
# grad / grad_and_value / hessian docstrings
# =====================================================================================

def _my_loss_func(y, y_pred):
    loss_per_sample = (0.5 * y_pred - y) ** 2
    loss = loss_per_sample.mean()
    return loss, (y_pred, loss_per_sample)


def test_grad_doc_first_and_second_order(rng):
    x = rng.standard_normal(())
    np.testing.assert_allclose(grad(np.sin)(x), np.cos(x))
    np.testing.assert_allclose(grad(grad(np.sin))(x), -np.sin(x))


def test_grad_doc_per_sample_gradients_with_vmap(rng):
    batch_size, feature_size = 3, 5

    def model(weights, feature_vec):
        return relu(feature_vec @ weights)

    def compute_loss(weights, example, target):
        return ((model(weights, example) - target) ** 2).mean()

    weights = rng.standard_normal(feature_size)
    examples = rng.standard_normal((batch_size, feature_size))
    targets = rng.standard_normal(batch_size)
    got = vmap(grad(compute_loss), in_dims=(None, 0, 0))(weights, examples, targets)
    expected = [grad(compute_loss)(weights, e, t) for e, t in zip(examples, targets)]
    np.testing.assert_allclose(got, expected)


def test_grad_doc_has_aux(rng):
    y_true = rng.random(4)
    y_preds = rng.random(4)
    g, (pred, per_sample) = grad(_my_loss_func, has_aux=True)(y_true, y_preds)
    # d/dy mean((0.5 p - y)^2) = -2 (0.5 p - y) / n
    np.testing.assert_allclose(g, -2 * (0.5 * y_preds - y_true) / 4)
    np.testing.assert_allclose(pred, y_preds)
    np.testing.assert_allclose(per_sample, (0.5 * y_preds - y_true) ** 2)


def test_grad_doc_argnums(rng):
    x, y = rng.standard_normal(()), rng.standard_normal(())

    def f(a, b):
        return a ** 2 + b ** 2

    np.testing.assert_allclose(grad(f)(x, y), 2 * x)
    gx, gy = grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, 2 * x)
    np.testing.assert_allclose(gy, 2 * y)


def test_grad_doc_no_grad_inside_the_function_is_stop_gradient(rng):
    x = rng.standard_normal(())

    def f(v):
        c = npfunc.stop_gradient(v ** 2)
        return v - c

    np.testing.assert_allclose(grad(f)(x), 1.0)


def test_grad_and_value_doc(rng):
    x = rng.standard_normal(())
    g, value = grad_and_value(lambda t: np.sin(t))(x)
    np.testing.assert_allclose(g, np.cos(x))
    np.testing.assert_allclose(value, np.sin(x))


def test_grad_and_value_doc_has_aux(rng):
    y_true = rng.random(4)
    y_preds = rng.random(4)
    g, (loss, (pred, per_sample)) = grad_and_value(_my_loss_func, has_aux=True)(y_true, y_preds)
    np.testing.assert_allclose(loss, ((0.5 * y_preds - y_true) ** 2).mean())
    np.testing.assert_allclose(g, -2 * (0.5 * y_preds - y_true) / 4)
    np.testing.assert_allclose(per_sample, (0.5 * y_preds - y_true) ** 2)


def test_hessian_doc(rng):
    def f(v):
        return np.sin(v).sum()

    x = rng.standard_normal(5)
    np.testing.assert_allclose(hessian(f)(x), np.diag(-np.sin(x)), atol=1e-15)


# =====================================================================================
# vmap docstring
# =====================================================================================

def test_vmap_doc_batched_dot(rng):
    x, y = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    np.testing.assert_allclose(vmap(np.dot)(x, y), (x * y).sum(1))


def test_vmap_doc_batched_matrix_vector_product(rng):
    m, v = rng.standard_normal((2, 5, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(vmap(np.matmul, in_dims=(0, None))(m, v), m @ v)


def test_vmap_doc_nested_vmap(rng):
    x, y = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    batched_dot = vmap(vmap(np.dot))  # [N1, N0, D], [N1, N0, D] -> [N1, N0]
    np.testing.assert_allclose(batched_dot(x, y), (x * y).sum(-1))


def test_vmap_doc_in_dims_int(rng):
    x, y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    batched_dot = vmap(np.dot, in_dims=1)  # [D, N], [D, N] -> [N]
    np.testing.assert_allclose(batched_dot(x, y), (x * y).sum(0))


def test_vmap_doc_in_dims_tuple_with_none(rng):
    x, y = rng.standard_normal((2, 5)), rng.standard_normal(5)
    batched_dot = vmap(np.dot, in_dims=(0, None))  # [N, D], [D] -> [N]
    np.testing.assert_allclose(batched_dot(x, y), x @ y)


def test_vmap_doc_in_dims_pytree(rng):
    x, y = rng.standard_normal((2, 5)), rng.standard_normal(5)
    batched_dot = vmap(lambda d: np.dot(d["x"], d["y"]), in_dims=({"x": 0, "y": None},))
    np.testing.assert_allclose(batched_dot({"x": x, "y": y}), x @ y)


def test_vmap_doc_out_dims(rng):
    x = rng.standard_normal((2, 5))
    batched_pow = vmap(lambda v: v ** 2, out_dims=1)
    out = batched_pow(x)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out, (x ** 2).T)


def test_vmap_doc_keyword_arguments_are_not_mapped(rng):
    x = rng.standard_normal((2, 5))

    def fn(v, scale=4.0):
        return v * scale

    batched = vmap(fn)
    np.testing.assert_allclose(batched(x), x * 4)
    out = batched(x, scale=x)  # scale is not batched: every row times the whole x
    assert out.shape == (2, 2, 5)
    np.testing.assert_allclose(out, x[:, None, :] * x[None, :, :])


def test_vmap_doc_jacobian_rows_from_vmap_of_vjp(rng):
    n = 5
    x = rng.standard_normal(n)
    _, vjp_fn = vjp(lambda v: v ** 2, x)
    identity = np.eye(n)
    rows = np.stack([vjp_fn(e)[0] for e in identity])   # the slow loop
    (jacobian,) = vmap(vjp_fn)(identity)                  # the vectorised version
    np.testing.assert_allclose(jacobian, rows)
    np.testing.assert_allclose(jacobian, np.diag(2 * x))


@pytest.mark.parametrize("n_models", [1, 4])
def test_vmap_doc_model_ensembling(rng, n_models):
    params = {"weight": rng.standard_normal((n_models, 2, 3)),
              "bias": rng.standard_normal((n_models, 2))}
    x = rng.standard_normal(3)
    out = vmap(_linear, in_dims=(0, None))(params, x)
    expected = [params["weight"][k] @ x + params["bias"][k] for k in range(n_models)]
    np.testing.assert_allclose(out, expected)
