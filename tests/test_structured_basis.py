"""The structured (one-hot) basis of jacrev/jacfwd gives the same Jacobians
as the dense basis and the plain loop, through every operation that keeps
it structured and every one that does not."""
import numpy as np
import pytest

import npfunc
from npfunc.core.primitive import REGISTRY
from npfunc.interpreters import structured

rng = np.random.default_rng(0)
A = rng.standard_normal((5, 6))
W = rng.standard_normal((6, 6))
b = rng.standard_normal(6)
c = rng.uniform(1, 2, 6)

FUNCTIONS = {
    "tanh(Wx+b)": lambda x: np.tanh(W @ x + b),
    "matrix product of a reshape": lambda x: (x.reshape(2, 3) @ A[:3, :4]).ravel() * 2,
    "sum of scaled copies": lambda x: x / c - x * 3 + (-x),
    "column vector": lambda x: (A @ x.reshape(6, 1)).ravel(),
    "row vector": lambda x: (x.reshape(1, 6) @ A.T).ravel(),
    "vector @ matrix": lambda x: x @ W,
    "full sum": lambda x: np.sum(x ** 2 * c) * np.ones(2),
    "float32 cast": lambda x: (x.astype(np.float32) * 2).astype(np.float64),
    "falls back to dense": lambda x: np.concatenate([x[::2] * 2, np.exp(x)]),
    "indexing": lambda x: x[[0, 0, 3]] * c[:3],
}


def loop_jacobian(f, x):
    return npfunc.jacrev(f, chunk_size=1)(x)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("transform", [npfunc.jacrev, npfunc.jacfwd])
def test_matches_loop(name, transform):
    f = FUNCTIONS[name]
    x = rng.standard_normal(6)
    np.testing.assert_allclose(transform(f)(x), loop_jacobian(f, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transform", [npfunc.jacrev, npfunc.jacfwd])
def test_matrix_input(transform):
    B = rng.standard_normal((4, 2))
    f = lambda X: np.tanh(X @ B)  # noqa: E731
    X = rng.standard_normal((3, 4))
    np.testing.assert_allclose(transform(f)(X), loop_jacobian(f, X), rtol=1e-12, atol=1e-12)


def test_under_vmap_and_nested():
    f = FUNCTIONS["tanh(Wx+b)"]
    xs = rng.standard_normal((4, 6))
    expected = np.stack([loop_jacobian(f, x) for x in xs])
    np.testing.assert_allclose(npfunc.vmap(npfunc.jacrev(f))(xs), expected, atol=1e-12)
    np.testing.assert_allclose(npfunc.vmap(npfunc.jacfwd(f))(xs), expected, atol=1e-12)
    g = lambda x: np.log(np.sum(np.exp(A @ x)))  # noqa: E731
    x = rng.standard_normal(6)
    H = npfunc.hessian(g)(x)
    p = np.exp(A @ x) / np.sum(np.exp(A @ x))
    np.testing.assert_allclose(H, A.T @ (np.diag(p) - np.outer(p, p)) @ A, atol=1e-12)
    np.testing.assert_allclose(npfunc.jacrev(npfunc.jacrev(g))(x), H, atol=1e-12)


def test_structure_survives_scaling_and_becomes_dense_in_products():
    s = structured.OneHot(np.arange(1.0, 4.0))
    np.testing.assert_array_equal(s.dense(), np.diag([1.0, 2.0, 3.0]))
    scaled, dim = structured.apply(REGISTRY["multiply"], [s, np.full(3, 2.0)], [0, None], {})
    assert isinstance(scaled, structured.OneHot) and dim == 0
    M = rng.standard_normal((2, 3))
    out, _ = structured.apply(REGISTRY["matmul"], [M, scaled], [None, 0], {})
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, np.stack([M @ row for row in scaled.dense()]))
    assert structured.apply(REGISTRY["exp"], [s], [0], {}) is None  # declines: densified


@pytest.mark.parametrize("transform", [npfunc.jacrev, npfunc.jacfwd])
@pytest.mark.parametrize("x_dtype,w_dtype", [(np.float64, np.float32), (np.float32, np.float64),
                                              (np.float32, np.float32)])
def test_unit_basis_keeps_dtypes(transform, x_dtype, w_dtype):
    Wd = W.astype(w_dtype)
    f = lambda x: Wd @ x  # noqa: E731
    g = lambda x: x @ Wd  # noqa: E731
    x = rng.standard_normal(6).astype(x_dtype)
    for fn in (f, g):
        J = transform(fn)(x)
        expected = loop_jacobian(fn, x)
        # reverse mode gives cotangents of the input, forward mode tangents of the output
        want = x_dtype if transform is npfunc.jacrev else np.result_type(x_dtype, w_dtype)
        assert J.dtype == want
        np.testing.assert_allclose(J, expected, rtol=1e-6)
