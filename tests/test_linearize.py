"""linearize: the recorded JVP equals jvp for every primitive, skips the primal
work when replayed, and composes with the other transforms."""
import numpy as np
import pytest

import npfunc
from npfunc.core.primitive import REGISTRY
from npfunc.errors import ConcretizationError, TangentError
from npfunc.testing import checks


def _cases():
    for name in sorted(REGISTRY):
        prim = REGISTRY[name]
        if not prim.differentiable or prim.samples is None:
            continue
        for k, sample in enumerate(prim.samples(np.random.default_rng(0))):
            if checks.diff_argnums(sample):
                yield pytest.param(prim, k, id=f"{name}-{k}")


@pytest.mark.parametrize("prim,k", list(_cases()))
def test_linearize_matches_jvp_for_every_primitive(prim, k):
    sample = prim.samples(np.random.default_rng(0))[k]
    nums = checks.diff_argnums(sample)
    f = checks.as_function(prim, sample, nums)
    primals = tuple(np.asarray(sample.args[i]) for i in nums)
    rng = np.random.default_rng(k)
    tangents = tuple(checks._direction(rng, p) for p in primals)
    out, jvp_fn = npfunc.linearize(f, *primals)
    expected_out, expected_t = npfunc.jvp(f, primals, tangents)
    got = jvp_fn(*tangents)
    tol = checks._tol(*primals) * 10
    for a, b in zip(checks._leaves(got), checks._leaves(expected_t)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        assert np.result_type(a) == np.result_type(b)
    for a, b in zip(checks._leaves(out), checks._leaves(expected_out)):
        np.testing.assert_array_equal(a, b)


def test_replay_does_not_rerun_the_primal_work():
    calls = {"exp": 0}
    exp = REGISTRY["exp"]
    original = exp.impl

    def counting(*args, **params):
        calls["exp"] += 1
        return original(*args, **params)

    x = np.array([0.1, 0.2, 0.3])
    out, jvp_fn = npfunc.linearize(lambda v: np.exp(np.sin(v)) * v, x)
    exp.impl = counting
    try:
        t = jvp_fn(np.ones(3))
    finally:
        exp.impl = original
    assert calls["exp"] == 0
    np.testing.assert_allclose(t, np.exp(np.sin(x)) * (np.cos(x) * x + 1))


def test_vmap_and_grad_of_the_linear_map():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 3))
    f = lambda x: np.tanh(A @ x)  # noqa: E731
    x = rng.standard_normal(3)
    _, jvp_fn = npfunc.linearize(f, x)
    np.testing.assert_allclose(npfunc.vmap(jvp_fn)(np.eye(3)).T, npfunc.jacfwd(f)(x), atol=1e-12)
    g = npfunc.grad(lambda x: npfunc.linearize(lambda v: np.sin(v).sum(), x)[1](np.ones(3)))(x)
    np.testing.assert_allclose(g, -np.sin(x))


def test_pytrees_and_errors():
    f = lambda p: {"y": p["a"] * p["b"]}  # noqa: E731
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    out, jvp_fn = npfunc.linearize(f, p)
    t = jvp_fn({"a": np.ones(2), "b": np.zeros(2)})
    np.testing.assert_allclose(t["y"], p["b"])
    with pytest.raises(TangentError, match="structure"):
        jvp_fn(np.ones(2))
    with pytest.raises(TangentError, match="shape"):
        jvp_fn({"a": np.ones(3), "b": np.zeros(2)})
    with pytest.raises(ConcretizationError, match="linearize"):
        npfunc.linearize(lambda v: v * float(v[0]), np.ones(2))
