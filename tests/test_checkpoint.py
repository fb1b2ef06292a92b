"""npfunc.checkpoint: intermediates recomputed in the backward pass, the same
derivatives under every transform, bounded memory, and no silent gradient of
a different computation."""
import tracemalloc

import numpy as np
import pytest

import npfunc
from npfunc.api.checkpoint import NondeterministicCheckpointError


def step(y, k):
    return y + 0.05 * np.sin(k * y) * np.cos(y) - 0.01 * y ** 3


def simulate(step_fn, y0, k, n=10):
    y = y0
    for _ in range(n):
        y = step_fn(y, k)
    return (y ** 2).sum()


X = np.array([0.5, 1.0, 1.5])
K = np.float64(1.3)
CK = npfunc.checkpoint(step)


def plain_loss(y, k=K):
    return simulate(step, y, k)


def ck_loss(y, k=K):
    return simulate(CK, y, k)


def test_value_and_gradient():
    assert ck_loss(X) == plain_loss(X)
    for a, b in zip(npfunc.grad(ck_loss, argnums=(0, 1))(X, K), npfunc.grad(plain_loss, argnums=(0, 1))(X, K)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("transform", [
    lambda f: npfunc.hessian(f),
    lambda f: npfunc.jacrev(npfunc.jacrev(f)),
    lambda f: npfunc.jacfwd(f),
    lambda f: npfunc.jacrev(npfunc.jacfwd(f)),
    lambda f: npfunc.vmap(npfunc.grad(f)),
    lambda f: npfunc.grad(lambda y: npfunc.vmap(f)(y).sum()),
    lambda f: npfunc.jit(npfunc.grad(f)),
    lambda f: npfunc.grad(npfunc.jit(f)),
    lambda f: (lambda y: npfunc.linearize(f, y)[1](np.ones_like(y))),
], ids=["hessian", "jacrev2", "jacfwd", "jacrev(jacfwd)", "vmap(grad)", "grad(vmap)", "jit(grad)",
        "grad(jit)", "linearize"])
def test_every_transform_agrees_with_the_plain_function(transform):
    x = np.stack([X, X[::-1]]) if "vmap" in str(transform.__code__.co_names) else X
    np.testing.assert_allclose(transform(ck_loss)(x), transform(plain_loss)(x), rtol=1e-12, atol=1e-14)


def test_static_argnums_and_pytrees():
    def block(state, n):
        y, v = state["y"], state["v"]
        for _ in range(n):
            y, v = y + 0.1 * v, v - 0.1 * np.sin(y)
        return {"y": y, "v": v}

    ck = npfunc.checkpoint(block, static_argnums=(1,))

    def loss(y, blk):
        s = {"y": y, "v": 0.0 * y}
        for _ in range(3):
            s = blk(s, 4)
        return (s["y"] ** 2).sum()

    np.testing.assert_allclose(npfunc.grad(lambda y: loss(y, ck))(X), npfunc.grad(lambda y: loss(y, block))(X),
                               rtol=1e-13)


def test_numpy_global_random_state_is_replayed():
    noisy = npfunc.checkpoint(lambda y: y * np.random.rand(*y.shape))
    np.random.seed(3)
    g = npfunc.grad(lambda y: noisy(y).sum())(X)
    np.random.seed(3)
    np.testing.assert_array_equal(g, np.random.rand(3))


def test_a_recomputation_that_differs_raises():
    rng = np.random.default_rng(0)
    noisy = npfunc.checkpoint(lambda y: y * rng.random())
    with pytest.raises(NondeterministicCheckpointError, match="different outputs"):
        npfunc.grad(lambda y: noisy(y).sum())(X)


def _peak(loss, y0):
    tracemalloc.start()
    npfunc.grad(loss)(y0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_is_bounded_by_the_blocks():
    """150 steps of a 2,000-dimensional state: the plain tape keeps every step's
    intermediates, blocks of 15 checkpointed steps keep 10 states."""
    y0 = np.linspace(0.0, 1.0, 2000)

    def block(y):
        for _ in range(15):
            y = step(y, K)
        return y

    ck_block = npfunc.checkpoint(block)

    def run(blk):
        def loss(y):
            for _ in range(10):
                y = blk(y)
            return (y ** 2).sum()
        return loss

    plain, ck = _peak(run(block), y0), _peak(run(ck_block), y0)
    assert ck < plain / 4, (plain, ck)


def test_bench_solvers_quick_checks_agree(capsys):
    """benchmarks/bench_solvers.py --quick: every row's derivative equals the reference
    (the benchmark asserts it before timing).  No timing is asserted."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location(
        "npfunc_bench_solvers", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_solvers.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--quick"])
    assert len(rows) == 8
    assert "peak MB" in capsys.readouterr().out


def test_checkpoint_of_a_closure_over_a_traced_value_runs_as_written():
    """A checkpointed function closing over a value traced by the enclosing transform cannot
    be recomputed from its arguments alone: it runs inline there (no checkpoint at that level),
    with the plain function's values and derivatives; jit returned a traced value, jvp and vmap
    escaped tracers, grad/jacrev/jacfwd raised EscapedTracerError."""
    x = np.array([1.0, 2.0, 3.0])
    xs = np.stack([x, 2 * x])

    def f(x):
        step = npfunc.checkpoint(lambda u: u * np.sin(x))
        return step(step(x))

    want = x * np.sin(x) ** 2
    jac = np.diag(np.sin(x) ** 2 + 2 * x * np.sin(x) * np.cos(x))
    np.testing.assert_allclose(npfunc.jit(f)(x), want)
    np.testing.assert_allclose(npfunc.jvp(f, (x,), (np.ones(3),))[1], np.diag(jac))
    np.testing.assert_allclose(npfunc.vmap(f)(xs), np.stack([f(v) for v in xs]))
    for jacobian in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jacobian(f)(x), jac)
    np.testing.assert_allclose(npfunc.grad(lambda x: npfunc.jit(f)(x).sum())(x), np.diag(jac))
    # a closure over an enclosing level's value keeps the checkpoint below it
    inner = lambda x: npfunc.grad_and_value(lambda y: npfunc.checkpoint(lambda u: u * x)(y).sum())(x)
    g, v = npfunc.vmap(inner)(xs)
    np.testing.assert_allclose(g, xs)
    np.testing.assert_allclose(v, (xs * xs).sum(1))
