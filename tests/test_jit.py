"""jit: record once, replay; same results as eager under every transform."""
import numpy as np
import pytest

import npfunc
from npfunc.errors import ConcretizationError, RandomnessError

rng = np.random.default_rng(0)
A = rng.standard_normal((5, 4))


def f(x):
    z = A @ x
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


X = rng.standard_normal(4)


@pytest.mark.parametrize("make,batched", [
    (lambda: f, False),
    (lambda: npfunc.grad(f), False),
    (lambda: npfunc.jacrev(npfunc.grad(f)), False),
    (lambda: npfunc.hessian(f), False),
    (lambda: npfunc.jacfwd(lambda x: np.tanh(A @ x)), False),
    (lambda: npfunc.vmap(npfunc.grad(f)), True),
], ids=["f", "grad", "jacrev(grad)", "hessian", "jacfwd", "vmap(grad)"])
def test_replay_matches_eager(make, batched):
    g = make()
    arg = np.stack([X, 2 * X]) if batched else X
    expected = g(arg)
    jitted = npfunc.jit(g)
    np.testing.assert_allclose(jitted(arg), expected)           # the recording call
    np.testing.assert_allclose(jitted(arg), expected)           # a replay
    np.testing.assert_allclose(jitted(arg + 0.5), g(arg + 0.5))  # a replay on new values


def test_transforms_of_a_jitted_function():
    jf = npfunc.jit(f)
    jf(X)  # recorded
    np.testing.assert_allclose(npfunc.grad(jf)(X), npfunc.grad(f)(X))
    np.testing.assert_allclose(npfunc.hessian(jf)(X), npfunc.hessian(f)(X))
    xs = rng.standard_normal((3, 4))
    np.testing.assert_allclose(npfunc.vmap(jf)(xs), [f(x) for x in xs])


def test_python_body_runs_once_per_signature():
    calls = []

    def g(x, scale):
        calls.append(1)
        return np.sin(x) * scale

    jg = npfunc.jit(g)
    jg(np.ones(3), 2.0)
    jg(np.zeros(3), 2.0)
    assert len(calls) == 1
    jg(np.zeros(4), 2.0)        # new shape
    jg(np.zeros(3, np.float32), 2.0)  # new dtype
    jg(np.zeros(3), 3.0)        # new static argument
    assert len(calls) == 4
    np.testing.assert_allclose(jg(np.ones(3), 3.0), np.sin(np.ones(3)) * 3.0)


def test_closure_over_an_outer_traced_value_is_not_cached_but_correct():
    def outer(x):
        return npfunc.jit(lambda y: x * y)(x).sum()

    np.testing.assert_allclose(npfunc.grad(outer)(X), 2 * X)
    np.testing.assert_allclose(npfunc.grad(outer)(X + 1), 2 * (X + 1))


def test_constant_outputs_and_pytrees():
    c = np.arange(3.0)
    g = npfunc.jit(lambda p: {"const": c, "y": p["a"] * 2.0})
    for _ in range(2):
        out = g({"a": np.ones(2)})
        np.testing.assert_array_equal(out["const"], c)
        np.testing.assert_array_equal(out["y"], [2.0, 2.0])


def test_errors():
    with pytest.raises(ConcretizationError, match=r"jit.*np\.where"):
        npfunc.jit(lambda x: x if x.sum() > 0 else -x)(X)
    rng_np = npfunc.random.default_rng(0)
    with pytest.raises(RandomnessError, match="inside jit"):
        npfunc.jit(lambda x: x + rng_np.normal(size=4))(X)
