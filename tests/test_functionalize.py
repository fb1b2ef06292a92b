"""functionalize: code that mutates arrays runs as a pure function under every
transform, and mutated arguments are written back like the plain function."""
import numpy as np
import pytest

import npfunc
from npfunc.errors import UnsupportedOperationError


def scale_in_place(x, w):
    x *= w            # operator
    x[0] = x[1] + 1.0  # item assignment
    np.add(x, 1.0, out=x)  # out=
    return (x ** 2).sum()


def pure(x, w):
    y = x * w
    y = np.concatenate([y[1:2] + 1.0, y[1:]])
    y = y + 1.0
    return (y ** 2).sum()


X = np.array([1.0, 2.0, 3.0])
W = np.array([0.5, -1.0, 2.0])


def test_plain_call_writes_mutations_back():
    x, w = X.copy(), W.copy()
    out = npfunc.functionalize(scale_in_place)(x, w)
    x_ref, w_ref = X.copy(), W.copy()
    assert out == scale_in_place(x_ref, w_ref)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(w, W)  # not mutated, not touched


def test_transforms_see_a_pure_function_and_update_inputs_as_numpy():
    f = npfunc.functionalize(scale_in_place)
    x = X.copy()
    g = npfunc.grad(f, argnums=(0, 1))(x, W)
    g_ref = npfunc.grad(pure, argnums=(0, 1))(X, W)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b)
    left = X.copy()
    scale_in_place(left, W)
    np.testing.assert_allclose(x, left)  # the caller's array holds what the plain call leaves in it
    xs = np.stack([X, 2 * X])
    np.testing.assert_allclose(npfunc.vmap(f, in_dims=(0, None))(xs.copy(), W), [pure(v, W) for v in xs])
    np.testing.assert_allclose(npfunc.jacrev(f)(X.copy(), W), npfunc.jacrev(pure)(X, W))


def test_integer_arrays_and_returned_arguments():
    def bump(counts, i):
        counts[i] += 1
        return counts

    counts = np.zeros(3, dtype=int)
    out = npfunc.functionalize(bump)(counts, 2)
    np.testing.assert_array_equal(counts, [0, 0, 1])
    np.testing.assert_array_equal(out, [0, 0, 1])
    assert type(out) is np.ndarray


def test_remove_mutations_and_views_returns_no_aliases():
    def parts(x):
        x[0] += 1.0
        return x, x[1:], x * 2.0

    for remove, aliased in (("mutations", True), ("mutations_and_views", False)):
        x = X.copy()
        whole, tail, doubled = npfunc.functionalize(parts, remove=remove)(x)
        np.testing.assert_array_equal(x, [2.0, 2.0, 3.0])
        assert (whole is x) == aliased and np.shares_memory(tail, x) == aliased
        assert not np.shares_memory(doubled, x)
    with pytest.raises(ValueError, match="mutations_and_views"):
        npfunc.functionalize(pure, remove="views")


def test_copies_arguments_passed_twice_and_shuffles_follow_numpy():
    def f(a, b):
        old = a.copy()
        a += 1.0  # b is the same array: it changes too
        np.random.default_rng(0).shuffle(old)  # shuffles the copy only
        return old, b

    for transform in (lambda g: g, npfunc.functionalize, npfunc.jit):
        x = X.copy()
        old, b = transform(f)(x, x)
        y = X.copy()
        old_ref, b_ref = f(y, y)
        np.testing.assert_array_equal(old, old_ref)
        np.testing.assert_array_equal(b, b_ref)
        np.testing.assert_array_equal(x, y)


def test_plain_buffers():
    buffer = np.zeros(3)

    def writes_traced_into_buffer(x):
        np.multiply(x, 2.0, out=buffer)
        return buffer.sum()

    with pytest.raises(UnsupportedOperationError, match="plain ndarray"):
        npfunc.grad(writes_traced_into_buffer)(X)
