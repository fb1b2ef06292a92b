"""Pytrees -- dicts, (nested) tuples, lists, namedtuples and None leaves -- as
inputs and outputs of every transform, and the errors for mismatched
structures."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

from npfunc import errors, grad, grad_and_value, jacfwd, jacrev, jvp, vjp, vmap

Pair = namedtuple("Pair", "a b")


@pytest.fixture
def u(rng):
    return rng.standard_normal(3)


@pytest.fixture
def v(rng):
    return rng.standard_normal(3)


def assert_tree_allclose(got, expected, **kw):
    """Same container types, same keys/arity, leaves close (any array type)."""
    if isinstance(expected, (dict, tuple, list)) or expected is None:
        assert type(got) is type(expected), (type(got), type(expected))
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for k in expected:
            assert_tree_allclose(got[k], expected[k], **kw)
    elif isinstance(expected, (tuple, list)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_tree_allclose(a, b, **kw)
    elif expected is None:
        assert got is None
    else:
        np.testing.assert_allclose(got, expected, **kw)


# A function of a nested input: {"w": (a, [b, c]), "p": Pair(d, e), "none": None}
def _nested_loss(tree):
    a, (b, c) = tree["w"]
    pair = tree["p"]
    assert tree["none"] is None
    return (a * b).sum() + (c ** 2).sum() + (np.sin(pair.a) * pair.b).sum()


def _nested_input(rng):
    return {"w": (rng.standard_normal(3), [rng.standard_normal(3), rng.standard_normal(2)]),
            "p": Pair(rng.standard_normal(2), rng.standard_normal(2)),
            "none": None}


def _nested_grad(t):
    a, (b, c) = t["w"]
    p = t["p"]
    return {"w": (b, [a, 2 * c]), "p": Pair(np.cos(p.a) * p.b, np.sin(p.a)), "none": None}


# ---- grad / grad_and_value -------------------------------------------------------------

def test_grad_of_a_nested_input_keeps_its_structure(rng):
    tree = _nested_input(rng)
    assert_tree_allclose(grad(_nested_loss)(tree), _nested_grad(tree))
    g, value = grad_and_value(_nested_loss)(tree)
    assert_tree_allclose(g, _nested_grad(tree))
    np.testing.assert_allclose(value, _nested_loss(tree))


def test_grad_over_list_and_namedtuple_arguments(u, v):
    assert_tree_allclose(grad(lambda l: (l[0] * l[1]).sum())([u, v]), [v, u])
    assert_tree_allclose(grad(lambda p: (p.a * p.b).sum())(Pair(u, v)), Pair(v, u))
    assert_tree_allclose(grad(lambda p: p[0].sum())((u, None)), (np.ones(3), None))


def test_grad_with_tuple_argnums_over_pytrees(u, v):
    def loss(d, p):
        return (d["x"] * p.a).sum() + (p.b ** 2).sum()

    gd, gp = grad(loss, argnums=(0, 1))({"x": u}, Pair(v, u))
    assert_tree_allclose(gd, {"x": v})
    assert_tree_allclose(gp, Pair(u, 2 * u))


def test_grad_has_aux_with_a_pytree_aux(u):
    g, aux = grad(lambda x: ((x ** 2).sum(), {"stats": (x.mean(), [x.max()]), "n": None}),
                  has_aux=True)(u)
    np.testing.assert_allclose(g, 2 * u)
    assert_tree_allclose(aux, {"stats": (u.mean(), [u.max()]), "n": None})


# ---- vjp ------------------------------------------------------------------------------

def test_vjp_with_pytree_primals_and_outputs(u, v):
    def f(d, p):
        return {"prod": d["x"] * p.a, "pair": Pair(np.sin(p.b), None)}

    out, vjp_fn = vjp(f, {"x": u}, Pair(v, u))
    assert_tree_allclose(out, {"prod": u * v, "pair": Pair(np.sin(u), None)})
    ct = {"prod": np.ones(3), "pair": Pair(2 * np.ones(3), None)}
    cd, cp = vjp_fn(ct)
    assert_tree_allclose(cd, {"x": v})
    assert_tree_allclose(cp, Pair(u, 2 * np.cos(u)))


def test_vjp_with_a_none_leaf_in_the_primals(u):
    _, vjp_fn = vjp(lambda t: t[0] * 2, (u, None))
    (ct,) = vjp_fn(np.ones(3))
    assert_tree_allclose(ct, (2 * np.ones(3), None))


def test_vjp_cotangent_structure_mismatch(u):
    _, vjp_fn = vjp(lambda x: {"p": x, "q": x * 2}, u)
    with pytest.raises(errors.TangentError) as info:
        vjp_fn({"p": u, "r": u})
    assert "vjp" in str(info.value) and "structure" in str(info.value)
    _, vjp_fn = vjp(lambda x: (x, x), u)
    with pytest.raises(errors.TangentError):
        vjp_fn((u,))


# ---- jvp ------------------------------------------------------------------------------

def test_jvp_with_pytree_primals_tangents_and_outputs(u, v):
    def f(p, d):
        return Pair(p.a * p.b, {"s": (d["x"] ** 2).sum(), "n": None})

    primals = (Pair(u, v), {"x": u})
    tangents = (Pair(np.ones(3), np.zeros(3)), {"x": v})
    out, tangent = jvp(f, primals, tangents)
    assert_tree_allclose(out, Pair(u * v, {"s": (u ** 2).sum(), "n": None}))
    assert_tree_allclose(tangent, Pair(v, {"s": 2 * u @ v, "n": None}))


def test_jvp_tangent_structure_mismatch(u):
    with pytest.raises(errors.TangentError) as info:
        jvp(lambda d: d["a"], ({"a": u},), ({"b": u},))
    assert "jvp" in str(info.value) and "structure" in str(info.value)
    with pytest.raises(errors.TangentError):
        jvp(lambda t: t[0], ((u, None),), ((u, u),))
    with pytest.raises(errors.TangentError):
        jvp(lambda t: t[0], ((u, u),), ([u, u],))  # tuple vs list


# ---- vmap -------------------------------------------------------------------------------

def test_vmap_over_dict_list_and_namedtuple_inputs(rng):
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    c = rng.standard_normal(3)

    def f(d, l, p):
        return d["x"] * l[0] + p.a * p.b

    out = vmap(f, in_dims=({"x": 0}, [1], Pair(0, None)))({"x": X}, [Y], Pair(X, c))
    expected = [X[i] * Y[:, i] + X[i] * c for i in range(4)]
    np.testing.assert_allclose(out, expected)


def test_vmap_in_dims_prefix_covers_a_whole_subtree(rng):
    X = rng.standard_normal((4, 3))
    d = {"a": X, "b": (X, [X])}
    out = vmap(lambda t: t["a"] + t["b"][0] * t["b"][1][0], in_dims=(0,))(d)
    np.testing.assert_allclose(out, X + X * X)


def test_vmap_with_none_inputs_and_none_in_dims(rng):
    X = rng.standard_normal((4, 3))
    out = vmap(lambda t, flag: t[0] * 2 if flag is None else t[0], in_dims=((0, None), None))(
        (X, None), None)
    np.testing.assert_allclose(out, 2 * X)


def test_vmap_pytree_outputs_with_pytree_out_dims(rng):
    X = rng.standard_normal((4, 3))
    c = rng.standard_normal(2)

    def f(row):
        return {"p": Pair(row, row.sum()), "l": [row * 2, c], "n": None}

    out = vmap(f, out_dims={"p": Pair(1, 0), "l": [-1, None], "n": None})(X)
    assert_tree_allclose(out, {"p": Pair(X.T, X.sum(1)), "l": [2 * X.T, c], "n": None})
    # a single int applies to every output leaf
    out = vmap(f)(X)
    assert_tree_allclose(out, {"p": Pair(X, X.sum(1)), "l": [2 * X, np.stack([c] * 4)],
                               "n": None})


def test_vmap_of_grad_over_a_pytree_of_parameters(rng):
    W = rng.standard_normal((5, 2, 3))
    b = rng.standard_normal(2)
    x = rng.standard_normal(3)

    def loss(params, inp):
        return (np.tanh(params["W"] @ inp + params["b"]) ** 2).sum()

    got = vmap(grad(loss), in_dims=({"W": 0, "b": None}, None))({"W": W, "b": b}, x)
    for k in range(5):
        y = np.tanh(W[k] @ x + b)
        dz = 2 * y * (1 - y ** 2)
        np.testing.assert_allclose(got["W"][k], np.outer(dz, x))
        np.testing.assert_allclose(got["b"][k], dz)


def test_vmap_structure_mismatch_errors(rng):
    X = rng.standard_normal((4, 3))
    with pytest.raises(errors.InDimsError) as info:
        vmap(lambda d: d["u"], in_dims=({"w": 0},))({"u": X})
    assert "in_dims" in str(info.value)
    with pytest.raises(errors.InDimsError):
        vmap(lambda l: l[0], in_dims=([0, 0, 0],))([X, X])
    with pytest.raises(errors.InDimsError):
        vmap(lambda p: p.a, in_dims=((0, 0),))(Pair(X, X))  # tuple vs namedtuple
    with pytest.raises(errors.OutDimsError) as info:
        vmap(lambda r: {"p": r}, out_dims={"q": 0})(X)
    assert "out_dims" in str(info.value)
    with pytest.raises(errors.OutDimsError):
        vmap(lambda r: (r, r), out_dims=[0, 0])(X)  # list vs tuple


# ---- jacrev / jacfwd ------------------------------------------------------------------------

@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_nests_outputs_then_inputs(transform, u, v):
    def f(d):
        return {"prod": d["x"] * d["y"], "total": Pair((d["x"] ** 2).sum(), None)}

    jac = transform(f)({"x": u, "y": v})
    expected = {"prod": {"x": np.diag(v), "y": np.diag(u)},
                "total": Pair({"x": 2 * u, "y": np.zeros(3)}, None)}
    assert_tree_allclose(jac, expected)


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_with_tuple_argnums_over_namedtuple_and_list(transform, u, v):
    def f(p, l):
        return p.a * l[0] + p.b

    ja, jb = transform(f, argnums=(0, 1))(Pair(u, v), [v])
    assert_tree_allclose(ja, Pair(np.diag(v), np.eye(3)))
    assert_tree_allclose(jb, [np.diag(u)])


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_with_none_leaves_and_pytree_aux(transform, u):
    jac, aux = transform(lambda t: ((t[0] * 3, None), {"m": t[0].mean(), "n": None}),
                         has_aux=True)((u, None))
    assert_tree_allclose(jac, ((3 * np.eye(3), None), None))
    assert_tree_allclose(aux, {"m": u.mean(), "n": None})


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_jacobian_of_a_tuple_output(transform, u):
    js, jc = transform(lambda x: (np.sin(x), np.cos(x).sum()))(u)
    np.testing.assert_allclose(js, np.diag(np.cos(u)))
    np.testing.assert_allclose(jc, -np.sin(u))


def test_jacrev_chunked_over_pytrees_equals_unchunked(u, v):
    def f(d):
        return {"prod": d["x"] * d["y"], "s": [(d["x"] ** 2).sum()]}

    full = jacrev(f)({"x": u, "y": v})
    for chunk_size in (1, 2, 5):
        assert_tree_allclose(jacrev(f, chunk_size=chunk_size)({"x": u, "y": v}), full)
