"""npfunc on Dask (docs/dask.md): vmap over dask arrays, gradients over dask data.

Every result is compared with the same transform on the data in memory.  The
cluster test starts a real ``distributed.LocalCluster`` with two worker
processes, so the functions below (defined at module level, in closures and
as lambdas) are shipped to other processes.
"""
from __future__ import annotations

import doctest
import functools
import pathlib
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import npfunc  # noqa: E402
from npfunc.dask import DaskChunkingError, DaskReductionError, DaskTransformError  # noqa: E402
from npfunc.errors import BatchSizeError, OutDimsError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def mean_loss(w, X, y):
    """Logistic regression, mean over rows (labels in {-1, 1})."""
    return np.mean(np.logaddexp(0.0, -y * (X @ w)))


def sum_loss(w, X, y):
    return np.sum(np.logaddexp(0.0, -y * (X @ w)))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    Xn = rng.standard_normal((103, 4))
    yn = np.where(rng.random(103) < 0.5, -1.0, 1.0)
    w = rng.standard_normal(4)
    return Xn, yn, w, da.from_array(Xn, chunks=(20, 4)), da.from_array(yn, chunks=20)


def test_import_npfunc_does_not_import_dask():
    code = "import sys, numpy as np, npfunc; npfunc.vmap(np.sin)(np.ones(2)); " \
           "npfunc.grad(np.sum)(np.ones(2)); print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- vmap --------------------------------------------------------------------------------------

def test_vmap_returns_a_dask_array_with_the_chunks_of_the_mapped_axis(data):
    Xn, _, _, X, _ = data
    W = np.arange(8.0).reshape(4, 2) / 8
    out = npfunc.vmap(lambda x, W: np.tanh(x @ W), in_dims=(0, None))(X, W)
    assert npfunc.dask.is_dask_array(out)
    assert out.chunks == (X.chunks[0], (2,)) and out.dtype == np.float64
    np.testing.assert_allclose(out.compute(), np.tanh(Xn @ W), rtol=1e-14)


def test_vmap_per_sample_gradients_match_memory(data):
    Xn, yn, w, X, y = data
    per_sample = npfunc.vmap(npfunc.grad(mean_loss), in_dims=(None, 0, 0))
    out = per_sample(w, X, y)
    assert out.shape == (103, 4) and out.chunks[0] == X.chunks[0]
    np.testing.assert_allclose(out.compute(), per_sample(w, Xn, yn), rtol=1e-13)


def test_vmap_mapped_axis_elsewhere_and_out_dims(data):
    Xn, _, _, X, _ = data
    XT = X.T  # mapped over axis 1, chunked along it
    f = npfunc.vmap(lambda x: np.outer(x, x[:2]), in_dims=1, out_dims=2)
    out = f(XT)
    assert out.shape == (4, 2, 103) and out.chunks[2] == X.chunks[0]
    np.testing.assert_allclose(out.compute(), np.einsum("ni,nj->ijn", Xn, Xn[:, :2]), rtol=1e-14)


def test_vmap_pytrees_in_and_out(data):
    Xn, yn, _, X, y = data

    def f(batch, scale):
        x, label = batch["x"], batch["y"]
        return {"score": scale * (x @ x) * label, "pair": (x[::2], None)}

    out = npfunc.vmap(f, in_dims=({"x": 0, "y": 0}, None), out_dims={"score": 0, "pair": 1})(
        {"x": X, "y": y}, 2.0)
    expected = npfunc.vmap(f, in_dims=({"x": 0, "y": 0}, None), out_dims={"score": 0, "pair": 1})(
        {"x": Xn, "y": yn}, 2.0)
    assert out["pair"][1] is None and out["pair"][0].shape == (2, 103)
    computed = dask.compute(out)[0]
    np.testing.assert_allclose(computed["score"], expected["score"], rtol=1e-14)
    np.testing.assert_allclose(computed["pair"][0], expected["pair"][0], rtol=1e-14)


def test_vmap_unmapped_dask_and_mapped_numpy_inputs(data):
    Xn, yn, _, X, _ = data
    W = np.random.default_rng(1).standard_normal((4, 3))
    Wd = da.from_array(W, chunks=(2, 2))  # unmapped: every chunk gets all of it
    out = npfunc.vmap(lambda x, W, y: (x @ W) * y, in_dims=(0, None, 0))(X, Wd, yn)
    assert out.chunks == (X.chunks[0], (3,))
    np.testing.assert_allclose(out.compute(), (Xn @ W) * yn[:, None], rtol=1e-12, atol=1e-14)


def test_vmap_inputs_with_different_row_chunks_are_aligned(data):
    Xn, yn, _, X, _ = data
    y = da.from_array(yn, chunks=37)
    out = npfunc.vmap(lambda x, y: x * y)(X, y)
    np.testing.assert_allclose(out.compute(), Xn * yn[:, None], rtol=1e-15)


def test_vmap_keyword_arguments_and_nested_vmap():
    rng = np.random.default_rng(2)
    Xn = rng.standard_normal((10, 3, 5))
    X = da.from_array(Xn, chunks=(4, 3, 5))
    out = npfunc.vmap(npfunc.vmap(lambda r, power: np.sum(r ** power)))(X, power=2)
    np.testing.assert_allclose(out.compute(), np.sum(Xn ** 2, axis=-1), rtol=1e-14)


def test_vmap_jacfwd_over_dask_and_chunk_size():
    rng = np.random.default_rng(3)
    P = rng.standard_normal((50, 3))
    model = lambda p: np.stack([np.sin(p[0]) * p[1], p[2] ** 3, np.exp(p[0] * p[2])])
    out = npfunc.vmap(npfunc.jacfwd(model), chunk_size=7)(da.from_array(P, chunks=16))
    assert out.shape == (50, 3, 3) and out.chunks[0] == (16, 16, 16, 2)
    np.testing.assert_allclose(out.compute(), npfunc.vmap(npfunc.jacfwd(model))(P), rtol=1e-14)


def test_vmap_builds_the_graph_without_reading_values():
    calls = []

    def boom():
        calls.append(1)
        raise AssertionError("computed while building the graph")

    X = da.from_delayed(dask.delayed(boom)(), shape=(6, 3, 3), dtype=float)
    out = npfunc.vmap(np.linalg.cholesky)(X)  # the shape comes from an empty batch: no values
    assert out.shape == (6, 3, 3) and not calls
    A = np.eye(3) * 2 + 0.1
    chol = npfunc.vmap(np.linalg.cholesky)(da.from_array(np.stack([A] * 6), chunks=(2, 3, 3)))
    np.testing.assert_allclose(chol.compute(), np.linalg.cholesky(np.stack([A] * 6)), rtol=1e-14)


def test_vmap_empty_dask_array():
    X = da.zeros((0, 3), chunks=(5, 3))
    out = npfunc.vmap(np.sum)(X)
    assert out.shape == (0,) and out.compute().shape == (0,)


def test_vmap_out_dims_none_output_comes_from_the_first_chunk(data):
    _, _, _, X, _ = data
    W = np.ones((4, 2))
    rows, shared = npfunc.vmap(lambda x, W: (x @ W, W.sum(0)), in_dims=(0, None),
                               out_dims=(0, None))(X, W)
    assert shared.shape == (2,) and rows.shape == (103, 2)
    np.testing.assert_allclose(shared.compute(), [4.0, 4.0])


def test_vmap_errors(data):
    Xn, yn, w, X, y = data
    with pytest.raises(DaskChunkingError, match=r"rechunk\(\{1: -1\}\)"):
        npfunc.vmap(np.sum)(X.rechunk((20, 2)))
    with pytest.raises(BatchSizeError, match="different sizes"):
        npfunc.vmap(lambda a, b: a[0] * b)(X, y[:50])
    with pytest.raises(DaskTransformError, match="dask.array.random"):
        npfunc.vmap(np.sum, randomness="different")(X)
    with pytest.raises(DaskChunkingError, match="compute_chunk_sizes"):
        npfunc.vmap(np.sum)(X[X[:, 0] > 0])
    with pytest.raises(DaskTransformError, match="traced by an enclosing transform"):
        npfunc.jvp(lambda w: npfunc.vmap(lambda x, w: x @ w, in_dims=(0, None))(X, w), (w,), (w,))
    with pytest.raises(OutDimsError):  # an output that varies, declared shared: seen on compute
        npfunc.vmap(lambda x: x * 2, out_dims=None)(X).compute()
    with pytest.raises(ValueError, match="matmul|shape|align"):  # shape errors when building
        npfunc.vmap(lambda x: x @ np.ones(3))(X)


# ---- gradients over dask data ------------------------------------------------------------------

def test_grad_of_a_mean_over_dask_data_matches_memory(data):
    Xn, yn, w, X, y = data
    expected = npfunc.grad(mean_loss)(w, Xn, yn)
    np.testing.assert_allclose(npfunc.grad(mean_loss)(w, X, y), expected, rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(lambda w: mean_loss(w, X, y))(w), expected, rtol=1e-12)
    g, v = npfunc.grad_and_value(lambda w: mean_loss(w, X, y))(w)
    np.testing.assert_allclose(v, mean_loss(w, Xn, yn), rtol=1e-13)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_grad_of_a_sum_and_of_a_regularised_mean(data):
    Xn, yn, w, X, y = data
    np.testing.assert_allclose(npfunc.grad(sum_loss)(w, X, y), npfunc.grad(sum_loss)(w, Xn, yn),
                               rtol=1e-12)
    reg = lambda w, X, y: mean_loss(w, X, y) + 0.3 * np.sum(w ** 2)
    g, v = npfunc.grad_and_value(reg)(w, X, y)
    g_mem, v_mem = npfunc.grad_and_value(reg)(w, Xn, yn)
    np.testing.assert_allclose(g, g_mem, rtol=1e-12)
    np.testing.assert_allclose(v, v_mem, rtol=1e-13)


def _closure_loss(X, y):
    def loss(w):  # X, y in closure cells
        return mean_loss(w, X, y)
    return loss


def test_data_found_in_closures_defaults_partials_and_called_functions(data):
    Xn, yn, w, X, y = data
    expected = npfunc.grad(mean_loss)(w, Xn, yn)
    holder = {"X": X, "y": y}

    def uses_helper(w):  # the data sits in the globals... of a function it calls
        return helper(w, holder)

    def with_defaults(w, X=X, *, y=y):
        return mean_loss(w, X, y)

    for f in [_closure_loss(X, y), with_defaults, functools.partial(mean_loss, X=X, y=y),
              lambda w: helper(w, (X, y)), uses_helper]:
        np.testing.assert_allclose(npfunc.grad(f)(w), expected, rtol=1e-12)


def helper(w, d):
    X, y = (d["X"], d["y"]) if isinstance(d, dict) else d
    return mean_loss(w, X, y)


def test_pytree_parameters_and_tuple_argnums(data):
    Xn, yn, w, X, y = data
    params = {"w": w, "b": np.array(0.3)}

    def loss(params, scale, X, y):
        return scale * np.mean(np.logaddexp(0.0, -y * (X @ params["w"] + params["b"])))

    g = npfunc.grad(loss, argnums=(0, 1))(params, np.float64(2.0), X, y)
    g_mem = npfunc.grad(loss, argnums=(0, 1))(params, np.float64(2.0), Xn, yn)
    for a, b in zip([g[0]["w"], g[0]["b"], g[1]], [g_mem[0]["w"], g_mem[0]["b"], g_mem[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_vjp_of_a_scalar_loss_over_dask_data(data):
    Xn, yn, w, X, y = data
    out, vjp_fn = npfunc.vjp(lambda w: mean_loss(w, X, y), w)
    np.testing.assert_allclose(out, mean_loss(w, Xn, yn), rtol=1e-13)
    (g,) = vjp_fn(np.float64(3.0))
    np.testing.assert_allclose(g, 3 * npfunc.grad(mean_loss)(w, Xn, yn), rtol=1e-12)


def test_vjp_fn_is_transformable(data):
    Xn, yn, w, X, y = data
    _, vjp_fn = npfunc.vjp(lambda w: mean_loss(w, X, y), w)
    (gs,) = npfunc.vmap(vjp_fn)(np.array([1.0, -2.0]))
    g = npfunc.grad(mean_loss)(w, Xn, yn)
    np.testing.assert_allclose(gs, np.stack([g, -2 * g]), rtol=1e-12)


def test_data_npfunc_cannot_see_is_a_clear_error(data):
    _, _, w, X, _ = data

    class Holder:
        pass

    holder = Holder()
    holder.X = X  # an attribute: not looked into
    with pytest.raises(npfunc.errors.OutputTypeError, match="pass the dask arrays"):
        npfunc.grad(lambda w: np.mean(holder.X @ w))(w)


def test_float32_data_and_rows_in_differently_chunked_arrays():
    rng = np.random.default_rng(5)
    Xn = rng.standard_normal((60, 3)).astype(np.float32)
    yn = rng.standard_normal(60).astype(np.float32)
    w = np.ones(3, dtype=np.float32)
    loss = lambda w, X, y: np.mean((X @ w - y) ** 2)
    g = npfunc.grad(loss)(w, da.from_array(Xn, chunks=(7, 3)), da.from_array(yn, chunks=25))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, npfunc.grad(loss)(w, Xn, yn), rtol=1e-5)


def test_explicit_reduction_is_checked(data):
    Xn, yn, w, X, y = data
    g = npfunc.dask.grad(mean_loss, reduction="mean")(w, X, y)
    np.testing.assert_allclose(g, npfunc.grad(mean_loss)(w, Xn, yn), rtol=1e-12)
    with pytest.raises(DaskReductionError, match="declared a sum"):
        npfunc.dask.grad(mean_loss, reduction="sum")(w, X, y)
    assert np.allclose(npfunc.dask.grad(mean_loss)(w, Xn, yn), npfunc.grad(mean_loss)(w, Xn, yn))
    with pytest.raises(ValueError, match="reduction"):
        npfunc.dask.grad(mean_loss, reduction="median")


def test_losses_that_do_not_split_by_chunks_are_errors(data):
    Xn, yn, w, X, y = data
    with pytest.raises(DaskReductionError, match="neither the mean nor the sum"):
        npfunc.grad(lambda w: np.var(X @ w))(w)
    with pytest.raises(DaskReductionError, match="not to a sum"):
        npfunc.grad(lambda w: sum_loss(w, X, y) + np.sum(w ** 2))(w)
    with pytest.raises(DaskChunkingError, match=r"rechunk\(\{1: -1\}\)"):
        npfunc.grad(mean_loss)(w, X.rechunk((20, 2)), y)
    with pytest.raises(DaskChunkingError, match="different numbers of rows"):
        npfunc.grad(mean_loss)(w, X, y[:50])
    with pytest.raises(DaskTransformError, match="argument 0 is differentiated"):
        npfunc.grad(lambda X, w: mean_loss(w, X, y))(X, w)
    with pytest.raises(DaskTransformError, match="has_aux"):
        npfunc.grad(lambda w: (mean_loss(w, X, y), 0.0), has_aux=True)(w)
    with pytest.raises(DaskTransformError, match="inside another transform"):
        npfunc.vmap(npfunc.grad(lambda w: mean_loss(w, X, y)))(np.stack([w, w]))


# ---- a real cluster: two worker processes ------------------------------------------------------

def test_local_cluster_with_two_processes(data):
    distributed = pytest.importorskip("distributed")
    Xn, yn, w, X, y = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        per_sample = npfunc.vmap(npfunc.grad(mean_loss), in_dims=(None, 0, 0))(w, X, y)
        np.testing.assert_allclose(per_sample.compute(),
                                   npfunc.vmap(npfunc.grad(mean_loss), in_dims=(None, 0, 0))(w, Xn, yn),
                                   rtol=1e-13)
        lam = 0.1
        g = npfunc.grad(lambda w: mean_loss(w, X, y) + lam * w @ w)(w)  # a lambda: by value
        np.testing.assert_allclose(g, npfunc.grad(mean_loss)(w, Xn, yn) + 2 * lam * w, rtol=1e-12)
        workers = client.run(lambda: __import__("os").getpid())
        assert len(set(workers.values())) == 2
        with pytest.raises(DaskReductionError):
            npfunc.grad(lambda w: np.var(X @ w))(w)


# ---- the example and the page ------------------------------------------------------------------

def test_example_dask_per_sample_grads(capsys):
    import importlib.util

    path = ROOT / "examples" / "dask_per_sample_grads.py"
    spec = importlib.util.spec_from_file_location("npfunc_example_dask_per_sample_grads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(small=True)
    assert out["norms"].shape == (20_000,) and out["sensitivity"].shape == (8, 4)
    assert out["sens_error"] < 1e-12 and abs(out["shares"].sum() - 1) < 1e-12
    assert "Completed" in capsys.readouterr().out  # Dask's progress bar ran


# ---- the page ----------------------------------------------------------------------------------

def test_docs_dask_examples_run():
    failures, tried = doctest.testfile(str(ROOT / "docs" / "dask.md"), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert tried > 10 and failures == 0
