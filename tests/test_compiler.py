"""The compiler passes, each on its own: what it removes or rewrites, and that the
program it returns computes exactly what the recorded one did."""
import numpy as np
import pytest

import npfunc
from npfunc.compiler import (contract, cse, dce, fold, generate, optimize, simplify,
                             trace_program)
from npfunc.compiler import randomness
from npfunc.compiler.codegen import _plan_reuse
from npfunc.core.primitive import REGISTRY
from npfunc.errors import ConcretizationError
from npfunc.interpreters.staging import VALUE_DEPENDENT_SHAPES
from npfunc.primitives.elementwise.arithmetic import astype, ones_like
from npfunc.testing import checks

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.0, 1e-310])


def _run(program, *args):
    return generate(program, reuse_min_size=None).fn(*args)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    if a.dtype.kind == "f":  # signed zeros and infinities (a NaN's sign bit means nothing)
        keep = ~np.isnan(a)
        np.testing.assert_array_equal(np.signbit(a[keep]), np.signbit(b[keep]))


def _check(fn, passes, *args, removed=(), kept=(), exact=True):
    """The program after ``passes`` gives the same bits as the recorded one (the same
    values, if not ``exact``); it no longer mentions ``removed`` and still mentions ``kept``."""
    program = trace_program(fn, *args)
    after = optimize(program, passes)
    for got, want in zip(_run(after, *args), _run(program, *args)):
        _same_bits(got, want) if exact else np.testing.assert_array_equal(got, want)
    text = str(after)
    for name in removed:
        assert name not in text, text
    for name in kept:
        assert name in text, text
    return after


# ---- dce ----------------------------------------------------------------------------------

def test_dce_drops_unused_work_and_keeps_the_rest():
    after = _check(lambda x: (np.exp(x), np.sin(x))[1] * 2.0, ["dce"], SPECIAL, removed=["exp"],
                   kept=["sin"])
    assert len(after) == 2
    # a multiple-result equation stays while any of its results is read
    program = trace_program(lambda x: np.linalg.eigh(x @ x.T)[0], np.eye(3) + 0.1)
    assert "eigh" in str(dce(program))


# ---- cse ----------------------------------------------------------------------------------

def test_cse_merges_repeated_work_only_when_exactly_equal():
    after = _check(lambda x: np.sin(x) + np.sin(x) * np.sin(x), ["cse", "dce"], SPECIAL)
    assert str(after).count("sin") == 1
    # parameters and scalars compared exactly: 0.0 is not -0.0, True is not 1
    program = trace_program(lambda x: (x + 0.0, x + -0.0, x * True, x * 1), SPECIAL)
    assert len(cse(program)) == 4
    # two different constant arrays with equal contents are not assumed equal, one is
    c1, c2 = np.ones(8), np.ones(8)
    assert len(cse(trace_program(lambda x: (x * c1, x * c2), SPECIAL))) == 2
    assert len(cse(trace_program(lambda x: (x * c1, x * c1), SPECIAL))) == 1


# ---- fold ---------------------------------------------------------------------------------

def test_fold_computes_what_does_not_depend_on_the_inputs():
    after = _check(lambda x: x * ones_like(x).sum(), ["fold"], SPECIAL, removed=["ones_like", "reduce_sum"])
    assert len(after) == 1
    program = trace_program(lambda x: x + 1.0, SPECIAL)  # nothing to fold
    assert fold(program) is program


# ---- simplify -----------------------------------------------------------------------------

@pytest.mark.parametrize("fn,removed,kept", [
    (lambda x: x * 1.0, ["multiply"], []),
    (lambda x: 1 * x, ["multiply"], []),
    (lambda x: x / 1.0, ["divide"], []),
    (lambda x: x * np.ones(8), ["multiply"], []),
    (lambda x: x + (-0.0), ["add"], []),
    (lambda x: x - 0.0, ["subtract"], []),
    (lambda x: x + 0.0, [], ["add"]),            # -0.0 + 0.0 is +0.0
    (lambda x: x - (-0.0), [], ["subtract"]),    # likewise
    (lambda x: x * 0.0, [], ["multiply"]),       # inf * 0 is nan
    (lambda x: -np.ones(8) * x, ["multiply"], ["negative"]),
    (lambda x: (-np.outer(x, x)).sum(axis=1), [], ["negative"]),
    (lambda x: -(-x), ["negative"], []),
    (lambda x: x + -np.sin(x), ["negative"], ["subtract"]),
    (lambda x: x - -np.sin(x), ["negative", "subtract"], ["add"]),
    (lambda x: (-x) * (-np.cos(x)), ["negative"], ["multiply"]),
    (lambda x: x * np.ones(8, np.float32), ["multiply"], []),
    (lambda x: x.astype(np.float64) * 1, ["astype", "multiply"], []),
], ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_simplify_rewrites_are_exact_on_special_values(fn, removed, kept):
    _check(fn, ["simplify", "dce"], SPECIAL, removed=removed, kept=kept)


def test_simplify_keeps_what_is_not_exact():
    z = SPECIAL + 1j * SPECIAL[::-1]
    _check(lambda x: x * 1.0, ["simplify", "dce"], z, kept=["multiply"])           # complex
    _check(lambda x: x * np.ones(8), ["simplify", "dce"], SPECIAL.astype(np.float32),
           kept=["multiply"])                                                     # changes dtype
    _check(lambda x: x * np.ones((2, 8)), ["simplify", "dce"], SPECIAL, kept=["multiply"])  # broadcasts
    _check(lambda x: x + 0, ["simplify", "dce"], np.arange(8), removed=["add"])  # integers: exact
    _check(lambda x: x * 0 + x, ["simplify", "dce"], np.arange(8), removed=["multiply"])


def test_simplify_shape_chains():
    x = np.arange(24.0).reshape(2, 3, 4)
    after = _check(lambda x: np.transpose(np.transpose(x, (1, 0, 2)), (1, 0, 2)) + 1, ["simplify", "dce"], x,
                   removed=["transpose"])
    assert len(after) == 1
    _check(lambda x: np.transpose(np.transpose(x, (1, 2, 0)), (2, 0, 1)).sum(0), ["simplify", "dce"], x,
           removed=["transpose"])
    after = _check(lambda x: x.reshape(6, 4).reshape(4, 6).reshape(24), ["simplify", "dce"], x)
    assert str(after).count("reshape") == 1
    after = _check(lambda x: np.broadcast_to(np.broadcast_to(x[:1], (3, 3, 4)), (2, 3, 3, 4)) * 2.0,
                   ["simplify", "dce"], x)
    assert str(after).count("broadcast_to") == 1
    # a broadcast feeding an elementwise operation that broadcasts anyway
    y = np.arange(4.0)
    _check(lambda y: np.broadcast_to(y, (3, 4)) * np.ones((3, 4)) + y, ["simplify", "dce"], y)
    after = _check(lambda y: np.broadcast_to(y, (3, 4)) + np.arange(12.0).reshape(3, 4), ["simplify", "dce"],
                   y, removed=["broadcast_to"])


def test_simplify_unit_and_diagonal_bases():
    # as eager npfunc's structured bases: the zeros of the basis are not multiplied
    # (so no 0 * inf and no -0.0 + 0.0): equal values for finite entries
    X = np.arange(12.0).reshape(3, 4) - 5
    _check(lambda X: np.eye(3) @ X, ["simplify", "dce"], X, removed=["matmul"], exact=False)
    _check(lambda X: X @ np.eye(4), ["simplify", "dce"], X, removed=["matmul"], exact=False)
    d = np.diag([2.0, -1.0, 0.5])
    after = _check(lambda X: d @ X, ["simplify", "dce"], X, removed=["matmul"], kept=["multiply"],
                   exact=False)
    assert len(after) == 1


# ---- contract -----------------------------------------------------------------------------

@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: (a * b).sum(axis=1), [(5, 4), (4,)]),
    (lambda a, b: (a * b[:, None]).sum(axis=0), [(5, 4), (5,)]),
    (lambda a, b: (a[:, :, None] * b[None, :, :]).sum(axis=1), [(3, 4), (4, 2)]),
    (lambda a, b: (a[:, :, :, None] * b[:, None, :, :]).sum(axis=2), [(6, 3, 4), (6, 4, 2)]),
    (lambda a, b: (a * b).sum(axis=(0, 1), keepdims=True), [(3, 4), (3, 4)]),
    (lambda a, b: (a[:, None, :] * b[None, :, :]).sum(-1).T, [(3, 5), (4, 5)]),
])
def test_contract_turns_summed_products_into_matmul(fn, shapes):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s) for s in shapes]
    program = trace_program(fn, *args)
    after = optimize(program, ["contract", "fold", "simplify", "dce"])
    assert "matmul" in str(after) and "reduce_sum" not in str(after), str(after)
    np.testing.assert_allclose(_run(after, *args)[0], fn(*args), rtol=1e-13, atol=1e-13)


def test_contract_leaves_sums_it_cannot_express():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 1))
    program = trace_program(lambda a, b: (a * b).sum(axis=1), a, b)   # b spans no summed axis
    after = optimize(program, ["contract", "dce"])
    assert "multiply" in str(after)  # the product stays (its sum is a product with ones)
    x = rng.standard_normal((3, 4))
    program = trace_program(lambda x: (x * x).sum(axis=1) + (x * x).sum(), x)  # product read twice
    assert "multiply" in str(contract(program))


def test_contract_stacks_of_matrix_vector_products():
    rng = np.random.default_rng(0)
    A, Y = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    program = trace_program(lambda Y: (A @ Y.reshape(6, 3, 1)).reshape(6, 4), Y)
    after = optimize(program)
    assert str(after).count("matmul") == 1 and "[6,3,1]" not in str(after), str(after)
    np.testing.assert_allclose(_run(after, Y)[0], Y @ A.T, rtol=1e-14)
    B = rng.standard_normal((3, 5))
    program = trace_program(lambda Y: (Y.reshape(6, 1, 3) @ B).reshape(6, 5), Y)
    np.testing.assert_allclose(_run(optimize(program), Y)[0], Y @ B, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("axis, keepdims", [(0, False), (1, False), (0, True), (1, True), (-1, False)])
def test_contract_sums_matrix_rows_with_a_product(dtype, axis, keepdims):
    """The sum over one axis of a float matrix is a matrix-vector product with ones
    (quicker in BLAS); the dtype and shape are the sum's, the values to rounding."""
    X = (np.arange(20.0).reshape(4, 5) / 3 - 2).astype(dtype)
    fn = lambda X: X.sum(axis=axis, keepdims=keepdims)  # noqa: E731
    after = optimize(trace_program(fn, X))
    assert "reduce_sum" not in str(after) and "matmul" in str(after), str(after)
    got, want = _run(after, X)[0], fn(X)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    for keep in (X[:1], X.astype(int)):  # one row (nothing to gain), integers: the reduction stays
        assert "reduce_sum" in str(optimize(trace_program(fn, keep)))


def test_contract_multiplies_contiguous_matrices():
    """A @ Yᵀ with a constant A becomes (Y @ Aᵀ)ᵀ with Aᵀ folded contiguous (and Yᵀ @ A
    becomes (Aᵀ @ Y)ᵀ): no product reads a transposed operand."""
    from npfunc.compiler.program import Const

    rng = np.random.default_rng(0)
    A, B, Y = rng.standard_normal((4, 3)), rng.standard_normal((5, 2)), rng.standard_normal((5, 3))
    for fn, want, product in ((lambda Y: A @ Y.T, A @ Y.T, "matmul a C0"), (lambda Y: Y.T @ B, Y.T @ B, "matmul C0 a")):
        after = optimize(trace_program(fn, Y))
        assert product in str(after) and "transpose[perm=(1, 0)] b" in str(after), str(after)
        consts = [i.value for e in after.eqns for i in e.inputs if type(i) is Const]
        assert consts and all(c.flags.c_contiguous for c in consts)
        np.testing.assert_allclose(_run(after, Y)[0], want, rtol=1e-14)


def test_transposed_constants_are_stored_contiguous_where_their_layout_cannot_show():
    """A transposed constant read by products only (directly, or through elementwise
    operations whose results only products read) is stored C-contiguous; where its
    layout shows -- in an output's layout, or in a sum's order -- it keeps its own,
    as NumPy computes it.  Dead equations show nothing (contraction leaves the
    product it replaced for dce)."""
    from npfunc.compiler.program import Const, layout_observed

    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6))

    def consts(program):
        return [i.value for e in program.eqns for i in e.inputs if type(i) is Const and np.ndim(i.value) == 2]

    hidden = lambda x: (A.T + x[:, None]) @ x  # noqa: E731  (the sum's layout goes into a product only)
    shown = lambda x: A.T + x[:, None]  # noqa: E731  (an output laid out like A.T, as NumPy's)
    summed = lambda x: (A.T * x).sum(axis=0)  # noqa: E731  (a sum in A.T's memory order)
    x = rng.standard_normal(6)
    for fn, contiguous in ((hidden, True), (shown, False), (summed, False)):
        program = optimize(trace_program(fn, x), ["fold"])
        (c,) = consts(program)
        assert c.flags.c_contiguous is contiguous, (fn, program)
        got, want = npfunc.jit(fn)(x), fn(x)
        if contiguous:  # (BLAS may sum a product with a transposed matrix in another order)
            np.testing.assert_allclose(got, want, rtol=1e-14)
        else:
            np.testing.assert_array_equal(got, want)
        assert got.flags.f_contiguous == want.flags.f_contiguous
    program = trace_program(lambda x: (A.T * x).sum(axis=1), x)  # observed while the reduction is live...
    assert any(id(c) in layout_observed(program) for c in consts(program))
    after = optimize(program)  # ... not once contraction made it a product
    assert all(c.flags.c_contiguous for c in consts(after)), str(after)


# ---- code generation and buffer reuse ---------------------------------------------------------

def test_generated_code_is_straight_line_numpy():
    program = trace_program(lambda x: np.tanh(x.reshape(2, 4)).sum(axis=0), SPECIAL)
    source = generate(program).source
    assert source.count("\n") == 5 and "for " not in source and "reshape((2, 4))" in source


def test_buffer_reuse_only_where_safe():
    def chain(x):
        a = np.sin(x)          # a buffer ...
        b = np.exp(a)          # ... dead after this: b may write into it
        c = b * 2.0
        v = c.reshape(8)       # a view of c, read below
        d = np.tanh(c)         # c is still read through v: not here
        return d + v.sum()

    x = np.linspace(-1, 1, 8)
    program = optimize(trace_program(chain, x), ["dce"])
    plan = _plan_reuse(program, min_size=1)
    names = {eqn.outs[0]: eqn.prim.name for eqn in program.eqns}
    reused = {program.eqns[k].prim.name: names[buf] for k, buf in plan.items()}
    assert reused.get("exp") == "sin"
    assert reused.get("tanh") != "multiply"
    out_buffers = {o for o in program.outputs}
    assert not out_buffers & set(plan.values())
    got = generate(program, reuse_min_size=1)
    assert "out=" in got.source
    np.testing.assert_array_equal(got.fn(x)[0], chain(x))
    np.testing.assert_array_equal(got.fn(x)[0], chain(x))  # and again: no state kept


def test_buffers_are_never_inputs_constants_or_returned():
    c = np.ones(8)
    program = trace_program(lambda x: (np.sin(x) + c, np.cos(x)), SPECIAL)
    gen = generate(program, reuse_min_size=1)
    x = SPECIAL.copy()
    gen.fn(x)
    _same_bits(x, SPECIAL)
    assert (c == 1).all()


# ---- every primitive: the compiled program gives the primitive's value ----------------------

def _samples():
    for name in sorted(REGISTRY):
        prim = REGISTRY[name]
        if prim.samples is None:
            continue
        count = len(prim.samples(np.random.default_rng(0)))
        for k in sorted({0, count - 1}):  # the first and the last: the suite stays quick
            yield pytest.param(name, k, id=f"{name}-{k}")


@pytest.mark.parametrize("name,k", list(_samples()))
def test_jit_of_every_primitive(name, k):
    prim = REGISTRY[name]
    sample = prim.samples(np.random.default_rng(0))[k]
    args = [np.asarray(a) if isinstance(a, (np.ndarray, np.generic)) else a for a in sample.args]
    want = prim.impl(*args, **sample.params)
    jitted = npfunc.jit(lambda *a: prim.bind(*a, **sample.params))
    with randomness.unwatched():  # (test_registry.py records each primitive with the watch)
        _check_jit_of_primitive(name, jitted, args, want)


def _check_jit_of_primitive(name, jitted, args, want):
    if name in VALUE_DEPENDENT_SHAPES:
        with pytest.raises(ConcretizationError, match="shape that depends on the values"):
            jitted(*args)
        return
    for _ in range(2):  # the recording, then the generated code
        got = jitted(*args)
        for g, w in zip(checks._leaves(got), checks._leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=0, equal_nan=True)
            assert np.result_type(g) == np.result_type(w)


def test_lowering_merges_products_of_one_large_matrix():
    from npfunc.compiler import lower

    rng = np.random.default_rng(0)
    A = rng.standard_normal((300, 300))
    x, v = rng.standard_normal(300), rng.standard_normal(300)
    program = trace_program(lambda x, v: (A @ x, np.sin(A @ v), A @ np.cos(x)), x, v)
    low = lower(program)
    names = [e.prim.name for e in low.eqns]
    assert names.count("stacked_matvec") == 1 and names.count("matmul") == 1  # A @ cos(x) reads a later value
    for got, want in zip(generate(low).fn(x, v), (A @ x, np.sin(A @ v), A @ np.cos(x))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    small = trace_program(lambda x: (np.eye(3) @ x, np.eye(3) @ -x), np.ones(3))
    assert lower(small) is small


@pytest.mark.parametrize("backend", ["numba"])
def test_fusion_backends_give_the_values_and_stay_transformable(backend):
    pytest.importorskip(backend)

    def chain(x):
        y = np.exp(np.tanh(np.sin(x) * 1.5 + 0.25))
        return (y * y - x).sum() + np.cos(x).max()

    x = np.linspace(-1.0, 2.0, 7)
    g = npfunc.grad(chain)
    fused = npfunc.jit(g, fuse=backend)
    assert f"fused_{backend}" in fused.lower(x).source
    for value in (x, x, x + 0.5):
        np.testing.assert_allclose(fused(value), g(value), rtol=1e-12, atol=1e-14)
    # under a transform the unfused program is replayed through the primitives
    np.testing.assert_allclose(npfunc.jacrev(fused)(x), npfunc.hessian(chain)(x), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="fuse must be one of"):
        npfunc.jit(g, fuse="cuda")
