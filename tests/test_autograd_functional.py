"""npfunc.autograd.functional: torch's examples, every input/output structure,
strict / create_graph / vectorize / strategy, and agreement with npfunc's
torch.func-style transforms."""
from __future__ import annotations

import doctest
import itertools
import pathlib

import numpy as np
import pytest

import npfunc
from npfunc.autograd import functional as AF
from npfunc.autograd.functional import SingleOutputError, StrategyError, VectorError
from npfunc.core.errors import IndependenceError, NonDifferentiableInputError, OutputTypeError

ROOT = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)
X = RNG.uniform(0.2, 1.0, size=(4, 4))
A, B = RNG.uniform(0.2, 1.0, size=2), RNG.uniform(0.2, 1.0, size=2)

JACOBIAN_MODES = [dict(), dict(vectorize=True), dict(vectorize=True, strategy="forward-mode")]


def close(a, b):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            close(x, y)
    else:
        assert not isinstance(a, tuple)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def exp_reducer(x):
    return np.exp(x).sum(axis=1)


def adder(x, y):
    return 2 * x + 3 * y


def exp_adder(x, y):
    return 2 * np.exp(x) + 3 * y


def pow_reducer(x):
    return (x ** 3).sum()


def pow_adder_reducer(x, y):
    return (2 * x ** 2 + 3 * y ** 2).sum()


# ---- torch's docstring examples, in NumPy ---------------------------------------------


def test_vjp_examples():
    out, v = AF.vjp(exp_reducer, X, np.ones(4))
    close(out, np.exp(X).sum(1))
    close(v, np.exp(X))
    out, v = AF.vjp(adder, (A, B), np.ones(2))
    close(out, 2 * A + 3 * B)
    close(v, (np.full(2, 2.0), np.full(2, 3.0)))


def test_jvp_examples():
    out, t = AF.jvp(exp_reducer, X, np.ones((4, 4)))
    close(out, np.exp(X).sum(1))
    close(t, np.exp(X).sum(1))
    out, t = AF.jvp(adder, (A, B), (np.ones(2), np.ones(2)))
    close(t, np.full(2, 5.0))


@pytest.mark.parametrize("mode", JACOBIAN_MODES)
def test_jacobian_examples(mode):
    x = X[:2, :2]
    J = AF.jacobian(exp_reducer, x, **mode)
    expected = np.zeros((2, 2, 2))
    expected[0, 0], expected[1, 1] = np.exp(x[0]), np.exp(x[1])
    close(J, expected)
    close(AF.jacobian(exp_adder, (A, B), **mode), (np.diag(2 * np.exp(A)), np.diag([3.0, 3.0])))


@pytest.mark.parametrize("mode", [dict(), dict(vectorize=True),
                                  dict(vectorize=True, outer_jacobian_strategy="forward-mode")])
def test_hessian_examples(mode):
    x = X[:2, :2]
    expected = np.zeros((2, 2, 2, 2))
    for i, j in itertools.product(range(2), range(2)):
        expected[i, j, i, j] = 6 * x[i, j]
    close(AF.hessian(pow_reducer, x, **mode), expected)
    zeros = np.zeros((2, 2))
    close(AF.hessian(pow_adder_reducer, (A, B), **mode),
          ((4 * np.eye(2), zeros), (zeros, 6 * np.eye(2))))


@pytest.mark.parametrize("product", [AF.hvp, AF.vhp])
def test_hvp_and_vhp_examples(product):
    x = X[:2, :2]
    out, r = product(pow_reducer, x, np.ones((2, 2)))
    close(out, (x ** 3).sum())
    close(r, 6 * x)
    out, r = product(pow_adder_reducer, (A, B), (np.zeros(2), np.ones(2)))
    close(out, (2 * A ** 2 + 3 * B ** 2).sum())
    close(r, (np.zeros(2), np.full(2, 6.0)))


# ---- output structure ----------------------------------------------------------------------

FUNCS = {
    ("single", "single"): (lambda x: np.sin(x) * 2, lambda: A),
    ("tuple", "single"): (lambda x, y: np.sin(x) * y, lambda: (A, B)),
    ("single", "tuple"): (lambda x: (np.sin(x), x.sum() * x), lambda: A),
    ("tuple", "tuple"): (lambda x, y: (x * y, np.exp(y)), lambda: (A, B)),
    ("one-tuple", "one-tuple"): (lambda x: (np.sin(x),), lambda: (A,)),
}


@pytest.mark.parametrize("kinds", list(FUNCS), ids=lambda k: f"{k[0]}-in-{k[1]}-out")
@pytest.mark.parametrize("mode", JACOBIAN_MODES, ids=["loop", "vmap", "forward"])
def test_jacobian_structure_matches_jacrev(kinds, mode):
    f, make = FUNCS[kinds]
    inputs = make()
    J = AF.jacobian(f, inputs, **mode)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    argnums = tuple(range(len(args))) if isinstance(inputs, tuple) else 0
    ref = npfunc.jacrev(f, argnums=argnums)(*args)  # nested [output][input] like torch
    close(J, ref)


@pytest.mark.parametrize("kinds", list(FUNCS), ids=lambda k: f"{k[0]}-in-{k[1]}-out")
def test_vjp_jvp_structure_and_agreement(kinds):
    f, make = FUNCS[kinds]
    inputs = make()
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    out = f(*args)
    v_out = tuple(np.full(np.shape(o), 0.5) for o in out) if isinstance(out, tuple) else np.ones(np.shape(out))
    v_in = tuple(np.full(np.shape(a), 2.0) for a in args) if isinstance(inputs, tuple) else np.ones(2)

    res_out, vj = AF.vjp(f, inputs, v_out)
    ref_out, ref_fn = npfunc.vjp(f, *args)
    close(res_out, ref_out)
    ref_vj = ref_fn(v_out)
    close(vj, ref_vj if isinstance(inputs, tuple) else ref_vj[0])

    res_out, jv = AF.jvp(f, inputs, v_in)
    _, ref_jv = npfunc.jvp(f, args, v_in if isinstance(inputs, tuple) else (v_in,))
    close(res_out, ref_out)
    close(jv, ref_jv)


def test_hessian_and_products_agree_with_npfunc():
    f = lambda x, y: (np.tanh(x) * y ** 2).sum() + (x @ y) ** 2
    H = AF.hessian(f, (A, B))
    ref = npfunc.hessian(f, argnums=(0, 1))(A, B)
    close(H, ref)
    close(AF.hessian(lambda x: f(x, B), A), npfunc.hessian(lambda x: f(x, B))(A))
    v = (np.array([1.0, -2.0]), np.array([0.5, 0.25]))
    Hv = tuple(sum(ref[i][j] @ v[j] for j in range(2)) for i in range(2))
    vH = tuple(sum(v[i] @ ref[i][j] for i in range(2)) for j in range(2))
    close(AF.hvp(f, (A, B), v)[1], Hv)
    close(AF.vhp(f, (A, B), v)[1], vH)
    _, fwd = npfunc.jvp(npfunc.grad(f, argnums=(0, 1)), (A, B), v)
    close(AF.hvp(f, (A, B), v)[1], fwd)


def test_scalar_outputs_and_default_v():
    out, g = AF.vjp(lambda x: (x ** 2).sum(), A)  # v may be omitted: one element
    close(g, 2 * A)
    x1 = np.array([0.3])
    close(AF.jvp(np.sin, x1)[1], np.cos(x1))
    close(AF.hvp(lambda x: (x ** 3).sum(), x1)[1], 6 * x1)
    close(AF.vhp(lambda x: (x ** 3).sum(), x1)[1], 6 * x1)
    close(AF.hessian(lambda x: x ** 3, x1), np.array([[6 * x1[0]]]))  # shape (1,) output


# ---- strict ---------------------------------------------------------------------------------


def test_strict_names_output_and_input():
    f = lambda x, y: (x * 2, np.sin(y))
    for mode in JACOBIAN_MODES:
        with pytest.raises(IndependenceError, match="output 0 of the function does not depend "
                                                    "on input 1"):
            AF.jacobian(f, (A, B), strict=True, **mode)
        J = AF.jacobian(f, (A, B), **mode)
        close(J[0][1], np.zeros((2, 2)))
        close(J[1][0], np.zeros((2, 2)))
    with pytest.raises(IndependenceError, match="output 1 of the function does not depend on any"):
        AF.vjp(lambda x: (x * 2, np.ones(2)), A, (A, A), strict=True)
    with pytest.raises(IndependenceError, match="no output of the function depends on input 1"):
        AF.vjp(lambda x, y: x * 2, (A, B), A, strict=True)
    with pytest.raises(IndependenceError, match="output 1 of the function does not depend on any"):
        AF.jvp(lambda x: (x * 2, np.ones(2)), A, A, strict=True)
    with pytest.raises(IndependenceError, match="no output of the function depends on input 0"):
        AF.jvp(lambda x, y: y * 2, (A, B), (A, B), strict=True)
    close(AF.vjp(lambda x, y: x * 2, (A, B), A)[1][1], np.zeros(2))


def test_strict_is_structural_not_numerical():
    f = lambda x: x * 0.0 + np.sin(x) * 0.0  # depends on x, with a zero derivative
    close(AF.jacobian(f, A, strict=True), np.zeros((2, 2)))
    close(AF.vjp(f, A, np.ones(2), strict=True)[1], np.zeros(2))
    close(AF.jvp(f, A, np.ones(2), strict=True)[1], np.zeros(2))


def test_strict_second_order():
    for mode in [dict(), dict(vectorize=True),
                 dict(vectorize=True, outer_jacobian_strategy="forward-mode")]:
        with pytest.raises(IndependenceError, match=r"input 0 does not depend on input 1.*"
                                                    r"Hessian block \[0\]\[1\]"):
            AF.hessian(pow_adder_reducer, (A, B), strict=True, **mode)
        with pytest.raises(IndependenceError, match="output of the function does not depend on "
                                                    "input 1"):
            AF.hessian(lambda x, y: (x ** 3).sum(), (A, B), strict=True, **mode)
    linear = lambda x: (3 * x).sum()
    with pytest.raises(IndependenceError, match="gradient with respect to input 0 does not depend"):
        AF.hvp(linear, A, A, strict=True)
    with pytest.raises(IndependenceError, match="gradient with respect to input 0 does not depend"):
        AF.vhp(linear, A, A, strict=True)
    with pytest.raises(IndependenceError, match="does not depend on input 1"):
        AF.hvp(lambda x, y: (x ** 3).sum(), (A, B), (A, B), strict=True)
    close(AF.hvp(linear, A, A)[1], np.zeros(2))
    close(AF.vhp(linear, A, A)[1], np.zeros(2))


# ---- create_graph -----------------------------------------------------------------------------


def f3(x):
    return (np.sin(x) * x ** 2).sum()


CREATE_GRAPH_CASES = {
    "hessian": lambda x, cg: AF.hessian(f3, x, create_graph=cg).sum(),
    "hessian-vmap-fwd": lambda x, cg: AF.hessian(f3, x, create_graph=cg, vectorize=True,
                                                 outer_jacobian_strategy="forward-mode").sum(),
    "jacobian": lambda x, cg: AF.jacobian(np.sin, x, create_graph=cg).sum(),
    "jacobian-vmap": lambda x, cg: AF.jacobian(np.sin, x, create_graph=cg, vectorize=True).sum(),
    "vjp": lambda x, cg: AF.vjp(f3, x, create_graph=cg)[1].sum(),
    "jvp": lambda x, cg: AF.jvp(np.sin, x, x, create_graph=cg)[1].sum(),
    "hvp": lambda x, cg: AF.hvp(f3, x, x, create_graph=cg)[1].sum(),
    "vhp": lambda x, cg: AF.vhp(f3, x, x, create_graph=cg)[1].sum(),
}
REFERENCE = {
    "hessian": lambda x: npfunc.hessian(f3)(x).sum(),
    "hessian-vmap-fwd": lambda x: npfunc.hessian(f3)(x).sum(),
    "jacobian": lambda x: npfunc.jacrev(np.sin)(x).sum(),
    "jacobian-vmap": lambda x: npfunc.jacrev(np.sin)(x).sum(),
    "vjp": lambda x: npfunc.grad(f3)(x).sum(),
    "jvp": lambda x: npfunc.jvp(np.sin, (x,), (x,))[1].sum(),
    "hvp": lambda x: npfunc.jvp(npfunc.grad(f3), (x,), (x,))[1].sum(),
    "vhp": lambda x: npfunc.jvp(npfunc.grad(f3), (x,), (x,))[1].sum(),
}


@pytest.mark.parametrize("name", list(CREATE_GRAPH_CASES))
def test_create_graph(name):
    x = np.array([0.3, -0.7, 1.1])
    g = npfunc.grad(lambda x: CREATE_GRAPH_CASES[name](x, True))(x)
    close(g, npfunc.grad(REFERENCE[name])(x))
    constant = npfunc.grad(lambda x: CREATE_GRAPH_CASES[name](x, False) + (0.0 * x).sum())(x)
    close(constant, np.zeros(3))


def test_composes_with_vmap():
    xs = np.stack([A, B])
    J = npfunc.vmap(lambda x: AF.jacobian(np.sin, x))(xs)
    close(J, np.stack([np.diag(np.cos(A)), np.diag(np.cos(B))]))
    hv = npfunc.vmap(lambda v: AF.hvp(pow_reducer, A, v)[1])(np.eye(2))
    close(hv, np.diag(6 * A))


# ---- argument errors ---------------------------------------------------------------------------


def test_strategy_errors():
    with pytest.raises(StrategyError, match="needs|only implemented with vectorize=True"):
        AF.jacobian(np.sin, A, strategy="forward-mode")
    with pytest.raises(NotImplementedError):
        AF.hessian(pow_reducer, A, outer_jacobian_strategy="forward-mode")
    with pytest.raises(ValueError, match="strategy must be"):
        AF.jacobian(np.sin, A, strategy="sideways")


def test_v_errors():
    with pytest.raises(VectorError, match="v can only be omitted"):
        AF.vjp(np.sin, A)
    with pytest.raises(RuntimeError, match="v can only be omitted"):
        AF.jvp(np.sin, A)
    with pytest.raises(VectorError, match="v can only be omitted"):
        AF.hvp(pow_reducer, A)
    with pytest.raises(VectorError, match="v has 1 entries but the input has 2"):
        AF.jvp(adder, (A, B), (A,))
    with pytest.raises(VectorError, match="v must be a single array"):
        AF.vjp(np.sin, A, (A, A))
    with pytest.raises(VectorError, match=r"v\[1\] has shape \(3,\)"):
        AF.vhp(pow_adder_reducer, (A, B), (A, np.ones(3)))
    with pytest.raises(VectorError, match=r"v has shape \(3,\)"):
        AF.vjp(np.sin, A, np.ones(3))


def test_input_output_errors():
    with pytest.raises(NonDifferentiableInputError, match="entry 1 of inputs is a list"):
        AF.jacobian(adder, (A, [1.0, 2.0]))
    with pytest.raises(NonDifferentiableInputError, match="dtype int64"):
        AF.vjp(lambda x: x * 2, np.arange(3), np.ones(3))
    with pytest.raises(OutputTypeError, match="output of the function must be an array or a tuple"):
        AF.jacobian(lambda x: [x, x], A)
    with pytest.raises(SingleOutputError, match="single-element array"):
        AF.hessian(np.sin, A)
    with pytest.raises(SingleOutputError, match="single array"):
        AF.vhp(lambda x: (x.sum(), x.sum()), A, A)
    with pytest.raises(RuntimeError, match="single-element"):
        AF.hvp(np.sin, A, A)


def test_docs_page_examples_run():
    result = doctest.testfile(str(ROOT / "docs" / "autograd_functional.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 5
