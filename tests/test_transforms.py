"""Behaviour of the transforms and of every composition of them.

Each result is compared against an analytic formula, central differences or
a Python loop over the batch -- never against npfunc itself.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import npfunc
from npfunc import errors, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap
from npfunc.core.context import current_stack

# ---- a small model with known derivatives ----------------------------------
#   g(x) = tanh(A x) : R^3 -> R^4,   f(x) = sum(g(x)) : R^3 -> R

A = np.random.default_rng(0).standard_normal((4, 3))


def g(x):
    return np.tanh(A @ x)


def f(x):
    return np.tanh(A @ x).sum()


def g_jac(x):
    y = np.tanh(A @ x)
    return (1 - y ** 2)[:, None] * A


def f_grad(x):
    y = np.tanh(A @ x)
    return A.T @ (1 - y ** 2)


def f_hess(x):
    y = np.tanh(A @ x)
    return A.T @ np.diag(-2 * y * (1 - y ** 2)) @ A


def g_second(x):
    """d^2 g_i / dx_j dx_k, shape (4, 3, 3)."""
    y = np.tanh(A @ x)
    return (-2 * y * (1 - y ** 2))[:, None, None] * A[:, :, None] * A[:, None, :]


@pytest.fixture
def x(rng):
    return rng.standard_normal(3)


@pytest.fixture
def xs(rng):
    return rng.standard_normal((5, 3))


# ---- first order, each transform alone ---------------------------------------

def test_grad_matches_analytic_gradient(x):
    np.testing.assert_allclose(grad(f)(x), f_grad(x), rtol=1e-12)


def test_grad_matches_central_differences(x, numerical_jacobian):
    def h(v):
        return (np.sin(v) * v ** 2).sum() / (1 + (v ** 2).sum())

    np.testing.assert_allclose(grad(h)(x), numerical_jacobian(h, x), rtol=1e-6, atol=1e-8)


def test_jacrev_and_jacfwd_match_analytic_jacobian(x):
    np.testing.assert_allclose(jacrev(g)(x), g_jac(x), rtol=1e-12)
    np.testing.assert_allclose(jacfwd(g)(x), g_jac(x), rtol=1e-12)


def test_jacobian_shapes_are_output_shape_then_input_shape(rng):
    M = rng.standard_normal((2, 3))

    def h(m):  # (2, 3) -> (3, 3, 2)
        return np.einsum("ij,ik->jki", m, m)

    for transform in (jacrev, jacfwd):
        assert transform(h)(M).shape == (3, 3, 2, 2, 3)
    np.testing.assert_allclose(jacrev(h)(M), jacfwd(h)(M), atol=1e-12)


def test_vjp_and_jvp_are_transposes_of_the_jacobian(x, rng):
    u = rng.standard_normal(4)
    v = rng.standard_normal(3)
    out, vjp_fn = vjp(g, x)
    np.testing.assert_allclose(out, g(x))
    (ct,) = vjp_fn(u)
    np.testing.assert_allclose(ct, g_jac(x).T @ u, rtol=1e-12)
    out2, tangent = jvp(g, (x,), (v,))
    np.testing.assert_allclose(out2, g(x))
    np.testing.assert_allclose(tangent, g_jac(x) @ v, rtol=1e-12)


def test_vjp_fn_can_be_called_many_times(x, rng):
    _, vjp_fn = vjp(g, x)
    for _ in range(3):
        u = rng.standard_normal(4)
        np.testing.assert_allclose(vjp_fn(u)[0], g_jac(x).T @ u, rtol=1e-12)


def test_vmap_matches_python_loop(rng):
    W = rng.standard_normal((3, 4))
    X = rng.standard_normal((6, 3))

    def layer(v):
        return np.maximum(v @ W, 0.0).sum() + np.exp(v).mean()

    np.testing.assert_allclose(vmap(layer)(X), [layer(v) for v in X])


# ---- second order: every route to a Hessian ---------------------------------

HESSIAN_ROUTES = {
    "jacfwd(jacrev)": lambda h: jacfwd(jacrev(h)),
    "jacrev(jacrev)": lambda h: jacrev(jacrev(h)),
    "jacrev(jacfwd)": lambda h: jacrev(jacfwd(h)),
    "jacfwd(jacfwd)": lambda h: jacfwd(jacfwd(h)),
    "jacfwd(grad)": lambda h: jacfwd(grad(h)),
    "jacrev(grad)": lambda h: jacrev(grad(h)),
    "hessian": hessian,
    "vmap(jvp(grad)) over the basis": lambda h: (
        lambda v: vmap(lambda e: jvp(grad(h), (v,), (e,))[1])(np.eye(v.size))),
    "vmap(vjp(grad)) over the basis": lambda h: (
        lambda v: vmap(vjp(grad(h), v)[1])(np.eye(v.size))[0]),
}


@pytest.mark.parametrize("route", list(HESSIAN_ROUTES))
def test_every_route_to_the_hessian_agrees_with_the_formula(route, x):
    np.testing.assert_allclose(HESSIAN_ROUTES[route](f)(x), f_hess(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("outer,inner", [(jacfwd, jacrev), (jacrev, jacrev),
                                         (jacrev, jacfwd), (jacfwd, jacfwd)])
def test_second_derivative_of_a_vector_function(outer, inner, x):
    np.testing.assert_allclose(outer(inner(g))(x), g_second(x), rtol=1e-10, atol=1e-12)


def test_grad_grad_and_third_derivative():
    def h(t):
        return np.sin(t) * t ** 2

    for t in (-1.3, 0.0, 0.7):
        d2 = -np.sin(t) * t ** 2 + 4 * t * np.cos(t) + 2 * np.sin(t)
        np.testing.assert_allclose(grad(grad(h))(t), d2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad(grad(grad(np.sin)))(t), -np.cos(t), rtol=1e-12)


def test_hessian_of_a_matrix_argument(rng):
    M = rng.standard_normal((2, 3))
    H = hessian(lambda m: (m ** 3).sum())(M)
    assert H.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(H.reshape(6, 6), np.diag(6 * M.ravel()), atol=1e-12)


def test_hessian_with_argnums(x, rng):
    y = rng.standard_normal(3)

    def h(a, b):
        return (a * b ** 2).sum()

    np.testing.assert_allclose(hessian(h, argnums=1)(x, y), np.diag(2 * x), atol=1e-12)
    H = hessian(h, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(H[0][0], np.zeros((3, 3)), atol=1e-12)
    np.testing.assert_allclose(H[0][1], np.diag(2 * y), atol=1e-12)
    np.testing.assert_allclose(H[1][0], np.diag(2 * y), atol=1e-12)
    np.testing.assert_allclose(H[1][1], np.diag(2 * x), atol=1e-12)


def test_hessian_vector_product_by_forward_over_reverse(x, rng):
    v = rng.standard_normal(3)
    _, hvp = jvp(grad(f), (x,), (v,))
    np.testing.assert_allclose(hvp, f_hess(x) @ v, rtol=1e-10)


def test_grad_of_jvp_is_a_hessian_vector_product(x, rng):
    v = rng.standard_normal(3)
    got = grad(lambda p: jvp(f, (p,), (v,))[1])(x)
    np.testing.assert_allclose(got, f_hess(x) @ v, rtol=1e-10)


def test_jvp_of_jvp_is_a_second_directional_derivative(x, rng):
    u, v = rng.standard_normal(3), rng.standard_normal(3)
    _, second = jvp(lambda p: jvp(f, (p,), (u,))[1], (x,), (v,))
    np.testing.assert_allclose(second, v @ f_hess(x) @ u, rtol=1e-10)


def test_vjp_of_vjp_fn_gives_back_the_jacobian_product(x, rng):
    u, w = rng.standard_normal(4), rng.standard_normal(3)
    # c -> J^T c is linear; its vjp with w is J w
    _, outer_fn = vjp(lambda c: vjp(g, x)[1](c)[0], u)
    np.testing.assert_allclose(outer_fn(w)[0], g_jac(x) @ w, rtol=1e-12)


def test_jvp_of_a_vjp_fn(x, rng):
    u, du = rng.standard_normal(4), rng.standard_normal(4)
    _, vjp_fn = vjp(g, x)
    _, tangent = jvp(vjp_fn, (u,), (du,))
    np.testing.assert_allclose(tangent[0], g_jac(x).T @ du, rtol=1e-12)


def test_grad_through_a_vjp_fn_made_outside(x, rng):
    c = rng.standard_normal(4)
    _, vjp_fn = vjp(g, x)
    J = g_jac(x)
    got = grad(lambda ct: (vjp_fn(ct)[0] ** 2).sum())(c)
    np.testing.assert_allclose(got, 2 * J @ (J.T @ c), rtol=1e-12)


def test_grad_of_a_function_that_calls_jacrev(x, numerical_jacobian):
    def frob(p):
        return (jacrev(g)(p) ** 2).sum()

    expected = numerical_jacobian(lambda p: (g_jac(p) ** 2).sum(), x)
    np.testing.assert_allclose(grad(frob)(x), expected, rtol=1e-6, atol=1e-9)


def test_grad_of_a_function_that_calls_jacfwd_and_hessian(x, numerical_jacobian):
    expected = numerical_jacobian(lambda p: np.trace(f_hess(p)), x)
    np.testing.assert_allclose(grad(lambda p: (hessian(f)(p) * np.eye(3)).sum())(x),
                               expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grad(lambda p: (jacfwd(g)(p) ** 2).sum())(x),
                               numerical_jacobian(lambda p: (g_jac(p) ** 2).sum(), x),
                               rtol=1e-6, atol=1e-9)


# ---- batching of derivatives -------------------------------------------------

def _per_example_loss(w, example, target):
    y = np.tanh(example @ w)
    return ((y - target) ** 2).mean()


def test_vmap_grad_gives_per_example_gradients(rng):
    w = rng.standard_normal(3)
    examples = rng.standard_normal((7, 3))
    targets = rng.standard_normal(7)
    got = vmap(grad(_per_example_loss), in_dims=(None, 0, 0))(w, examples, targets)
    y = np.tanh(examples @ w)
    expected = (2 * (y - targets) * (1 - y ** 2))[:, None] * examples
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_vmap_grad_over_parameters_ensemble(rng):
    ws = rng.standard_normal((4, 3))
    example, target = rng.standard_normal(3), 0.3
    got = vmap(grad(_per_example_loss), in_dims=(0, None, None))(ws, example, target)
    expected = [grad(_per_example_loss)(w, example, target) for w in ws]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_grad_of_vmap(rng):
    w = rng.standard_normal(3)
    examples = rng.standard_normal((6, 3))
    targets = rng.standard_normal(6)

    def total(wt):
        return vmap(_per_example_loss, in_dims=(None, 0, 0))(wt, examples, targets).sum()

    y = np.tanh(examples @ w)
    expected = examples.T @ (2 * (y - targets) * (1 - y ** 2))
    np.testing.assert_allclose(grad(total)(w), expected, rtol=1e-12)


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_vmap_of_jacobians(transform, xs):
    np.testing.assert_allclose(vmap(transform(g))(xs), [g_jac(p) for p in xs], rtol=1e-12)
    # batch on the last axis of the input
    np.testing.assert_allclose(vmap(transform(g), in_dims=1)(xs.T), [g_jac(p) for p in xs],
                               rtol=1e-12)


def test_vmap_of_hessian(xs):
    np.testing.assert_allclose(vmap(hessian(f))(xs), [f_hess(p) for p in xs], rtol=1e-10,
                               atol=1e-12)


def test_vmap_over_cotangents_of_a_vjp_fn_builds_the_jacobian(x):
    _, vjp_fn = vjp(g, x)
    (rows,) = vmap(vjp_fn)(np.eye(4))
    np.testing.assert_allclose(rows, g_jac(x), rtol=1e-12)
    # cotangents batched along axis 1
    (rows1,) = vmap(vjp_fn, in_dims=1)(np.eye(4))
    np.testing.assert_allclose(rows1, g_jac(x), rtol=1e-12)


def test_vmap_over_vjp_gives_per_example_vjps(xs, rng):
    cts = rng.standard_normal((5, 4))

    def one(p, c):
        _, fn = vjp(g, p)
        return fn(c)[0]

    np.testing.assert_allclose(vmap(one)(xs, cts), [g_jac(p).T @ c for p, c in zip(xs, cts)],
                               rtol=1e-12)


def test_vmap_over_jvp_with_batched_primals_or_tangents(x, xs):
    got = vmap(lambda p: jvp(g, (p,), (np.ones(3),))[1])(xs)
    np.testing.assert_allclose(got, [g_jac(p) @ np.ones(3) for p in xs], rtol=1e-12)
    got = vmap(lambda t: jvp(g, (x,), (t,))[1])(xs)
    np.testing.assert_allclose(got, xs @ g_jac(x).T, rtol=1e-12)


def test_jvp_of_vmap(xs, rng):
    ts = rng.standard_normal(xs.shape)
    out, tangent = jvp(vmap(g), (xs,), (ts,))
    np.testing.assert_allclose(out, [g(p) for p in xs])
    np.testing.assert_allclose(tangent, [g_jac(p) @ t for p, t in zip(xs, ts)], rtol=1e-12)


# ---- vmap of vmap ------------------------------------------------------------

def test_vmap_of_vmap_with_different_in_dims(rng):
    a = rng.standard_normal((5, 3))   # rows mapped by the inner vmap
    b = rng.standard_normal((3, 4))   # columns mapped by the outer vmap

    def inner(u, v):
        return np.dot(u, v) * np.sin(u)

    got = vmap(vmap(inner, in_dims=(0, None)), in_dims=(None, 1))(a, b)
    expected = np.array([[inner(a[i], b[:, j]) for i in range(5)] for j in range(4)])
    assert got.shape == (4, 5, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_three_levels_of_vmap_with_in_dims_and_out_dims(rng):
    a = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((5, 3))

    def h(u, v):  # u: (4,), v: scalar
        return u * v

    F = vmap(vmap(vmap(h, in_dims=(0, None)), in_dims=(None, 0), out_dims=1),
             in_dims=(1, 1), out_dims=-1)
    got = F(a, b)
    # outer maps axis 1 of both (size 3), middle maps b's axis 0 (size 5),
    # inner maps a's leading axis (size 2); out_dims put them at -1, then 1
    expected = np.empty((2, 5, 4, 3))
    for k in range(3):
        for j in range(5):
            for i in range(2):
                expected[i, j, :, k] = h(a[i, k], b[j, k])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---- out_dims ----------------------------------------------------------------

def test_out_dims_int_and_negative(rng):
    X = rng.standard_normal((5, 3, 2))
    np.testing.assert_allclose(vmap(lambda m: m * 2, out_dims=1)(X), np.moveaxis(2 * X, 0, 1))
    np.testing.assert_allclose(vmap(lambda m: m * 2, out_dims=-1)(X), np.moveaxis(2 * X, 0, -1))
    np.testing.assert_allclose(vmap(lambda m: m * 2, out_dims=-2)(X), np.moveaxis(2 * X, 0, -2))


def test_out_dims_tuple_with_none_for_unbatched_outputs(rng):
    X = rng.standard_normal((5, 3))
    c = rng.standard_normal(3)

    def h(row, const):
        return row * const, const.sum(), np.cos(row)

    scaled, total, cosine = vmap(h, in_dims=(0, None), out_dims=(1, None, -1))(X, c)
    np.testing.assert_allclose(scaled, (X * c).T)
    np.testing.assert_allclose(total, c.sum())
    assert np.ndim(total) == 0
    np.testing.assert_allclose(cosine, np.cos(X).T)


def test_unbatched_output_is_broadcast_along_out_dim(rng):
    X = rng.standard_normal((5, 3))
    c = rng.standard_normal(2)
    out = vmap(lambda row, const: const * 2, in_dims=(0, None), out_dims=1)(X, c)
    np.testing.assert_allclose(out, np.repeat((2 * c)[:, None], 5, axis=1))
    out = vmap(lambda row: 1.5)(X)
    np.testing.assert_allclose(out, np.full(5, 1.5))


def test_out_dims_nested_tuples(rng):
    X = rng.standard_normal((4, 3))
    (p, q), r = vmap(lambda v: ((v, v[:2]), v.sum()), out_dims=((1, 0), 0))(X)
    np.testing.assert_allclose(p, X.T)
    np.testing.assert_allclose(q, X[:, :2])
    np.testing.assert_allclose(r, X.sum(1))


def test_vmap_over_a_size_zero_batch():
    out = vmap(np.sin)(np.ones((0, 3)))
    assert out.shape == (0, 3)


# ---- chunk_size ----------------------------------------------------------------

@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8])
def test_vmap_chunk_size_equals_unchunked(chunk_size, rng):
    X = rng.standard_normal((3, 5))   # batch on axis 1
    c = rng.standard_normal(3)

    def h(col, const):
        return np.tanh(col * const), (col ** 2).sum(), const

    kwargs = dict(in_dims=(1, None), out_dims=(1, 0, None))
    full = vmap(h, **kwargs)(X, c)
    chunked = vmap(h, chunk_size=chunk_size, **kwargs)(X, c)
    for a, b in zip(full, chunked):
        np.testing.assert_allclose(b, a, rtol=0, atol=0)
    np.testing.assert_allclose(full[1], (X ** 2).sum(0))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 100])
def test_jacrev_chunk_size_equals_unchunked(chunk_size, x, rng):
    y = rng.standard_normal(3)

    def h(a, b):
        return {"g": g(a) * b.sum(), "s": (a * b).sum()}, a.mean()

    full, aux = jacrev(h, argnums=(0, 1), has_aux=True)(x, y)
    chunked, aux_c = jacrev(h, argnums=(0, 1), has_aux=True, chunk_size=chunk_size)(x, y)
    np.testing.assert_allclose(aux_c, aux)
    for key in ("g", "s"):
        for k in range(2):
            np.testing.assert_allclose(chunked[key][k], full[key][k], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(full["g"][0], g_jac(x) * y.sum(), rtol=1e-12)
    np.testing.assert_allclose(full["s"][1], x, rtol=1e-12)


def test_jacobians_with_empty_outputs_or_inputs(x):
    for transform in (jacrev, jacfwd):
        J = transform(lambda a: a[:0])(x)
        assert J.shape == (0, 3)
        J = transform(lambda a: a.sum() * np.ones(2))(np.ones(0))
        assert J.shape == (2, 0)
    assert jacrev(lambda a: a[:0], chunk_size=2)(x).shape == (0, 3)


def test_jacrev_chunk_size_1_of_an_empty_output(x):
    assert jacrev(lambda a: a[:0], chunk_size=1)(x).shape == (0, 3)


def test_chunked_jacobians_compose(x, xs):
    np.testing.assert_allclose(jacfwd(jacrev(f, chunk_size=1))(x), f_hess(x), rtol=1e-10)
    np.testing.assert_allclose(jacrev(jacrev(f, chunk_size=2), chunk_size=1)(x), f_hess(x),
                               rtol=1e-10)
    np.testing.assert_allclose(vmap(jacrev(g, chunk_size=3))(xs), [g_jac(p) for p in xs],
                               rtol=1e-12)
    total = grad(lambda m: vmap(f, chunk_size=2)(m).sum())(xs)
    np.testing.assert_allclose(total, [f_grad(p) for p in xs], rtol=1e-12)


# ---- argnums -------------------------------------------------------------------

def _three(a, b, c):
    return (a * b ** 2 + np.sin(c)).sum()


def test_grad_argnums_int_tuple_and_negative(rng):
    a, b, c = rng.standard_normal((3, 4))
    np.testing.assert_allclose(grad(_three)(a, b, c), b ** 2)
    np.testing.assert_allclose(grad(_three, argnums=1)(a, b, c), 2 * a * b)
    np.testing.assert_allclose(grad(_three, argnums=-1)(a, b, c), np.cos(c))
    ga, gc = grad(_three, argnums=(0, 2))(a, b, c)
    np.testing.assert_allclose(ga, b ** 2)
    np.testing.assert_allclose(gc, np.cos(c))
    gc, ga = grad(_three, argnums=(-1, 0))(a, b, c)  # order as given
    np.testing.assert_allclose(gc, np.cos(c))
    np.testing.assert_allclose(ga, b ** 2)
    (only,) = grad(_three, argnums=(1,))(a, b, c)  # a 1-tuple gives a 1-tuple
    np.testing.assert_allclose(only, 2 * a * b)


def test_grad_and_value_argnums(rng):
    a, b, c = rng.standard_normal((3, 4))
    (ga, gb), value = grad_and_value(_three, argnums=(0, 1))(a, b, c)
    np.testing.assert_allclose(value, _three(a, b, c))
    np.testing.assert_allclose(ga, b ** 2)
    np.testing.assert_allclose(gb, 2 * a * b)


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_argnums_int_tuple_and_negative(transform, rng):
    a, b = rng.standard_normal((2, 3))

    def h(u, v):
        return u * v ** 2

    np.testing.assert_allclose(transform(h)(a, b), np.diag(b ** 2))
    np.testing.assert_allclose(transform(h, argnums=-1)(a, b), np.diag(2 * a * b))
    ja, jb = transform(h, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ja, np.diag(b ** 2))
    np.testing.assert_allclose(jb, np.diag(2 * a * b))


def test_non_differentiated_arguments_may_be_integers(rng):
    a = rng.standard_normal(4)
    idx = np.array([0, 2, 2])
    np.testing.assert_allclose(grad(lambda u, i: (u[i] ** 2).sum())(a, idx),
                               [2 * a[0], 0, 4 * a[2], 0])
    np.testing.assert_allclose(grad(lambda u, n: (u ** n).sum())(a, 3), 3 * a ** 2)


def test_keyword_arguments_are_passed_through_undifferentiated(rng):
    a = rng.standard_normal(3)

    def h(u, *, scale):
        return (u * scale).sum()

    np.testing.assert_allclose(grad(h)(a, scale=3.0), np.full(3, 3.0))
    np.testing.assert_allclose(vmap(lambda u, *, scale: u * scale)(np.ones((2, 3)), scale=a),
                               np.stack([a, a]))


# ---- has_aux -------------------------------------------------------------------

def _with_aux(p):
    return (p ** 2).sum(), {"mean": p.mean(), "cube": p ** 3}


def _check_aux(aux, p):
    np.testing.assert_allclose(aux["mean"], p.mean())
    np.testing.assert_allclose(aux["cube"], p ** 3)
    assert isinstance(aux["cube"], np.ndarray)  # plain arrays, not traced values


def test_has_aux_grad_and_grad_and_value(x):
    g_, aux = grad(_with_aux, has_aux=True)(x)
    np.testing.assert_allclose(g_, 2 * x)
    _check_aux(aux, x)
    g_, (value, aux) = grad_and_value(_with_aux, has_aux=True)(x)
    np.testing.assert_allclose(g_, 2 * x)
    np.testing.assert_allclose(value, (x ** 2).sum())
    _check_aux(aux, x)


def test_has_aux_vjp_and_jvp(x, rng):
    v = rng.standard_normal(3)
    out, vjp_fn, aux = vjp(_with_aux, x, has_aux=True)
    np.testing.assert_allclose(out, (x ** 2).sum())
    np.testing.assert_allclose(vjp_fn(np.array(2.0))[0], 4 * x)
    _check_aux(aux, x)
    out, tangent, aux = jvp(_with_aux, (x,), (v,), has_aux=True)
    np.testing.assert_allclose(out, (x ** 2).sum())
    np.testing.assert_allclose(tangent, 2 * x @ v)
    _check_aux(aux, x)


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_has_aux_jacobians(transform, x):
    def h(p):
        return g(p), {"mean": p.mean(), "cube": p ** 3}

    jac, aux = transform(h, has_aux=True)(x)
    np.testing.assert_allclose(jac, g_jac(x), rtol=1e-12)
    _check_aux(aux, x)


def test_aux_stays_differentiable_by_an_outer_transform(x):
    # the aux of an inner transform is an ordinary value for the outer one
    def inner_aux(p, transform):
        if transform is jvp:
            return jvp(_with_aux, (p,), (p,), has_aux=True)[2]["cube"].sum()
        if transform is vjp:
            return vjp(_with_aux, p, has_aux=True)[2]["cube"].sum()
        return transform(_with_aux, has_aux=True)(p)[1]["cube"].sum()

    for transform in (grad, jvp, vjp):
        np.testing.assert_allclose(grad(inner_aux)(x, transform), 3 * x ** 2, rtol=1e-12)
    for transform in (jacrev, jacfwd):
        def h(p, transform=transform):
            return transform(lambda q: (q ** 2, (q ** 3).sum()), has_aux=True)(p)[1]
        np.testing.assert_allclose(grad(h)(x), 3 * x ** 2, rtol=1e-12)
    np.testing.assert_allclose(
        vmap(lambda p: jacfwd(lambda q: (q ** 2, p * 3), has_aux=True)(p)[1])(np.eye(3)),
        3 * np.eye(3))


# ---- no perturbation confusion ---------------------------------------------------

@pytest.mark.parametrize("t", [-1.5, 0.0, 0.5, 3.0])
def test_no_perturbation_confusion_grad(t):
    # d/dx [x * d/dy (x*y)] = d/dx x^2 = 2x
    got = grad(lambda a: a * grad(lambda b: a * b)(a))(t)
    np.testing.assert_allclose(got, 2 * t)


@pytest.mark.parametrize("t", [-1.5, 0.0, 0.5, 3.0])
def test_no_perturbation_confusion_jvp(t):
    def inner_derivative(a):
        return jvp(lambda b: a * b, (a,), (1.0,))[1]

    _, got = jvp(lambda a: a * inner_derivative(a), (t,), (1.0,))
    np.testing.assert_allclose(got, 2 * t)


def test_no_perturbation_confusion_siskind_pearlmutter():
    # d/dx [x * (d/dy (x + y))|_{y=1}] at x=1 is 1 (a confused AD gives 2)
    assert grad(lambda a: a * grad(lambda b: a + b)(1.0))(1.0) == 1.0
    assert jvp(lambda a: a * jvp(lambda b: a + b, (1.0,), (1.0,))[1], (1.0,), (1.0,))[1] == 1.0
    assert jacfwd(lambda a: a * jacrev(lambda b: a + b)(1.0))(1.0) == 1.0
    assert jacrev(lambda a: a * jacfwd(lambda b: a + b)(1.0))(1.0) == 1.0


def test_no_perturbation_confusion_under_vmap(rng):
    ts = rng.standard_normal(6)
    got = vmap(grad(lambda a: a * grad(lambda b: a * b)(a)))(ts)
    np.testing.assert_allclose(got, 2 * ts)
    # nested vmaps over closed-over batched values: an outer product, not a diagonal
    us, vs = rng.standard_normal(3), rng.standard_normal(4)
    np.testing.assert_allclose(vmap(lambda u: vmap(lambda v: u * v)(vs))(us), np.outer(us, vs))
    # grad of a vmap closing over the differentiated value
    np.testing.assert_allclose(grad(lambda a: vmap(lambda v: a * v)(vs).sum())(0.3), vs.sum())


# ---- outputs independent of an input ----------------------------------------------

def test_independent_outputs_get_zero_derivatives(rng):
    a, b = rng.standard_normal((2, 3))
    b32 = b.astype(np.float32)

    def h(u, v):
        return np.sin(u)  # v unused

    ga, gb = grad(lambda u, v: h(u, v).sum(), argnums=(0, 1))(a, b32)
    np.testing.assert_allclose(ga, np.cos(a))
    assert gb.shape == (3,) and gb.dtype == np.float32 and not gb.any()

    _, vjp_fn = vjp(h, a, b)
    ca, cb = vjp_fn(np.ones(3))
    np.testing.assert_allclose(ca, np.cos(a))
    np.testing.assert_array_equal(cb, np.zeros(3))

    out, tangent = jvp(lambda v: np.ones(2) * 3.0, (b,), (np.ones(3),))
    np.testing.assert_array_equal(tangent, np.zeros(2))

    for transform in (jacrev, jacfwd):
        ja, jb = transform(h, argnums=(0, 1))(a, b)
        np.testing.assert_allclose(ja, np.diag(np.cos(a)))
        np.testing.assert_array_equal(jb, np.zeros((3, 3)))
        np.testing.assert_array_equal(transform(lambda u: np.zeros(2))(a), np.zeros((2, 3)))


def test_dependence_only_through_comparisons_or_stop_gradient_is_zero(rng):
    a = rng.standard_normal(4)
    np.testing.assert_array_equal(grad(lambda u: np.where(u > 0, 1.0, -1.0).sum())(a),
                                  np.zeros(4))
    np.testing.assert_allclose(grad(lambda u: (npfunc.stop_gradient(u ** 2) * u).sum())(a), a ** 2)


def test_jvp_strict_raises_for_an_independent_output(rng):
    a = rng.standard_normal(3)
    with pytest.raises(errors.IndependenceError, match=r"(?s)output 1.*strict=True"):
        jvp(lambda u: (u * 2, np.ones(2)), (a,), (a,), strict=True)
    with pytest.raises(errors.IndependenceError, match="strict"):
        jvp(grad(lambda u: u.sum()), (a,), (a,), strict=True)  # constant gradient
    out, tangent = jvp(lambda u: u * 2, (a,), (a,), strict=True)
    np.testing.assert_allclose(tangent, 2 * a)


# ---- dtypes ------------------------------------------------------------------------

def test_float32_inputs_give_float32_derivatives(rng):
    a = rng.standard_normal(3).astype(np.float32)
    assert grad(lambda u: (u ** 2).sum())(a).dtype == np.float32
    assert jacrev(np.sin)(a).dtype == np.float32
    assert jacfwd(np.sin)(a).dtype == np.float32
    assert vmap(np.sin)(np.stack([a, a])).dtype == np.float32
    np.testing.assert_allclose(grad(lambda u: (u ** 2).sum())(a), 2 * a, rtol=1e-6)


def test_python_and_numpy_scalars(rng):
    np.testing.assert_allclose(grad(np.sin)(0.5), np.cos(0.5))
    np.testing.assert_allclose(grad(np.sin)(np.float64(0.5)), np.cos(0.5))
    np.testing.assert_allclose(jvp(lambda a, b: a * b, (2.0, 3.0), (1.0, 0.0))[1], 3.0)
    np.testing.assert_allclose(jacfwd(lambda a: a * np.arange(3.0))(2.0), np.arange(3.0))
    np.testing.assert_allclose(jacrev(lambda a: a * np.arange(3.0))(2.0), np.arange(3.0))


# ---- threads -------------------------------------------------------------------------

def test_transforms_in_two_threads_do_not_interfere(rng):
    """Both threads are inside their transforms at the same time (a barrier
    holds them there); each sees only its own levels and gets its own answer."""
    X = rng.standard_normal((4, 3))
    barrier = threading.Barrier(2, timeout=10)
    results, stacks, errors = {}, {}, []

    def scaled_loss(scale):
        def loss(p):
            y = np.sin(p) * scale
            stacks.setdefault(scale, []).append([i.transform for i in current_stack()])
            barrier.wait()   # the other thread is mid-transform now
            return (y * p).sum()
        return loss

    def work(scale, transform):
        try:
            for _ in range(3):
                results.setdefault(scale, []).append(transform(scaled_loss(scale))(X))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)
            barrier.abort()

    def per_row(loss):
        return vmap(grad(loss))

    def whole(loss):
        return grad(lambda m: loss(m))

    threads = [threading.Thread(target=work, args=(1.0, per_row)),
               threading.Thread(target=work, args=(2.0, whole))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors, errors
    expected = np.sin(X) + X * np.cos(X)
    for r in results[1.0]:
        np.testing.assert_allclose(r, expected)
    for r in results[2.0]:
        np.testing.assert_allclose(r, 2 * expected)
    assert all(s == ["vmap", "grad"] for s in stacks[1.0])
    assert all(s == ["grad"] for s in stacks[2.0])
    assert current_stack() == ()
