"""The tutorials in examples/ run (in their small mode) and their checks hold.

Each example's ``main(small=True)`` asserts its own results against a Python
loop or finite differences; here we also check the figures it returns.  The
digits example needs scikit-learn (the ``examples`` extra) and is skipped
without it.  Timings are printed by the examples but never asserted.
"""
import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"npfunc_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_sample_grads(capsys):
    out = load("per_sample_grads").main(small=True)
    assert out["max_diff"] < 1e-10 and out["fd_error"] < 1e-5
    grads = out["grads"]
    assert grads["conv1.weight"].shape == (8, 8, 1, 3, 3) and grads["fc.weight"].shape == (8, 10, 64)
    assert "vmap(grad) vs Python loop" in capsys.readouterr().out


def test_ensembling(capsys):
    out = load("ensembling").main(small=True)
    assert out["err_same"] < 1e-10 and out["err_diff"] < 1e-10
    assert "different minibatch" in capsys.readouterr().out


def test_maml_sine(capsys):
    out = load("maml_sine").main(small=True)
    assert out["fd_error"] < 1e-5 and out["loop_error"] < 1e-10
    assert out["fo_error"] > 1e-3  # the second-order terms matter: first-order MAML is measurably off
    history = np.array(out["history"])
    assert history[-30:].mean() < 0.8 * history[:30].mean()
    assert out["after"] < 0.8 * out["before"]
    assert "meta-loss" in capsys.readouterr().out


def test_neural_tangent_kernels(capsys):
    out = load("neural_tangent_kernels").main(small=True)
    assert out["err_methods"] < 1e-10 and out["err_loop"] < 1e-10 and out["fd_error"] < 1e-6
    ntk = out["ntk"]
    assert ntk.shape == (4, 3, 4, 4)
    assert "NTK-vector products" in capsys.readouterr().out


def test_jacobians_hessians(capsys):
    out = load("jacobians_hessians").main(small=True)
    assert set(out["errors"]) >= {"vjp", "jacrev", "jacfwd", "hessian (input)", "hessian (last layer)",
                                  "hvp forward-over-reverse", "hvp reverse-over-reverse"}
    assert max(out["errors"].values()) < 1e-6
    assert "hvp" in capsys.readouterr().out


def test_train_digits(capsys):
    pytest.importorskip("sklearn")
    out = load("train_digits").main(small=True)
    assert out["accuracy"] >= 0.7  # a short run on a subset; the full run reaches >= 95 %
    assert np.mean(out["losses"][-10:]) < 0.75 * np.mean(out["losses"][:10])
    assert out["fd_error"] < 1e-4
    assert "test accuracy" in capsys.readouterr().out


def test_docs_page_examples_run():
    import doctest

    page = pathlib.Path(__file__).resolve().parents[1] / "docs" / "nn.md"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 20


def test_bench_nn_quick_checks_agree(capsys):
    """benchmarks/bench_nn.py --quick: npfunc's results equal the hand-written NumPy versions
    (the benchmark asserts it before timing).  No timing is asserted."""
    spec = importlib.util.spec_from_file_location(
        "npfunc_bench_nn", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_nn.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--quick", "--repeats", "1"])
    assert [name.split(",")[0] for name, _ in rows] == ["per-sample grads", "ensemble of 10 MLPs 64-32-32-10",
                                                        "ensemble of 10 MLPs 64-32-32-10"]
    assert "÷ hand" in capsys.readouterr().out


def test_ode_fit(capsys):
    out = load("ode_fit").main(small=True)
    assert out["fd_error"] < 1e-4 and np.allclose(out["fit"], [3.0, 0.4], atol=0.15)
    assert out["history"][-1] < 0.05 * out["history"][0] and out["sensitivity"].shape == (200, 2)
    assert "BFGS with npfunc's gradient" in capsys.readouterr().out
