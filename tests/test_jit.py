"""jit: the compiled function gives what the plain function gives, on every call, or raises."""
import random as pyrandom
import warnings

import numpy as np
import pytest

import npfunc
from npfunc.errors import (ConcretizationError, RandomnessError, RetraceWarning,
                           UnsupportedOperationError)

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
    (lambda: npfunc.jacrev(lambda x: np.tanh(A @ x)), False),
    (lambda: npfunc.vmap(npfunc.grad(f)), True),
    (lambda: npfunc.vmap(npfunc.jacrev(lambda x: np.tanh(A @ x))), True),
], ids=["f", "grad", "jacrev(grad)", "hessian", "jacfwd", "jacrev", "vmap(grad)", "vmap(jacrev)"])
@pytest.mark.parametrize("optimize", [True, False], ids=["optimized", "as-recorded"])
def test_replay_matches_eager(make, batched, optimize):
    g = make()
    arg = np.stack([X, 2 * X]) if batched else X
    jitted = npfunc.jit(g, optimize=optimize)
    for value in (arg, arg, arg + 0.5, -arg):   # the recording call, then replays on new values
        np.testing.assert_allclose(jitted(value), g(value), rtol=1e-12, atol=1e-14)
    assert jitted.trace_count == 1


def test_transforms_of_a_jitted_function():
    jf = npfunc.jit(f)
    jf(X)  # recorded
    np.testing.assert_allclose(npfunc.grad(jf)(X), npfunc.grad(f)(X))
    np.testing.assert_allclose(npfunc.hessian(jf)(X), npfunc.hessian(f)(X))
    xs = rng.standard_normal((3, 4))
    np.testing.assert_allclose(npfunc.vmap(jf)(xs), [f(x) for x in xs])
    np.testing.assert_allclose(npfunc.jacrev(npfunc.jit(npfunc.grad(f)))(X), npfunc.hessian(f)(X))
    np.testing.assert_allclose(npfunc.jit(npfunc.vmap(npfunc.grad(f)))(xs), npfunc.vmap(npfunc.grad(f))(xs))
    np.testing.assert_allclose(npfunc.jit(npfunc.jit(f))(X), f(X))
    # first call under a transform: the recording holds the plain operations
    jg = npfunc.jit(f)
    np.testing.assert_allclose(npfunc.grad(jg)(X), npfunc.grad(f)(X))
    np.testing.assert_allclose(jg(X), f(X))
    assert jg.trace_count == 1


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
    assert len(calls) == 4 == jg.trace_count
    np.testing.assert_allclose(jg(np.ones(3), 3.0), np.sin(np.ones(3)) * 3.0)


def test_closure_over_an_outer_traced_value_is_not_cached_but_correct():
    def outer(x):
        return npfunc.jit(lambda y: x * y)(x).sum()

    np.testing.assert_allclose(npfunc.grad(outer)(X), 2 * X)
    np.testing.assert_allclose(npfunc.grad(outer)(X + 1), 2 * (X + 1))


def test_constant_outputs_and_pytrees():
    c = np.arange(3.0)
    g = npfunc.jit(lambda p: {"const": c, "y": p["a"] * 2.0})
    for k in range(3):
        out = g({"a": np.ones(2)})
        np.testing.assert_array_equal(out["const"], [0.0, 1.0, 2.0])
        np.testing.assert_array_equal(out["y"], [2.0, 2.0])
        if k:
            out["const"][0] = 99.0  # a replay's caller owns what it gets back
    x = np.ones(2)
    same = npfunc.jit(lambda x: (x.copy(), x))
    for _ in range(2):
        a, b = same(x)
        a[0] = 5.0
        assert x[0] == 1.0 and b[0] == 1.0


# ---- static arguments ---------------------------------------------------------------------

pytestmark = pytest.mark.filterwarnings("ignore::npfunc.errors.RetraceWarning")


def test_static_arguments_are_keyed_by_type_and_exact_value():
    g = npfunc.jit(lambda x, s: (x, np.asarray(s), np.copysign(1.0, s) * x))
    x = np.ones(2, np.float32)
    for s in (True, 1, 1.0, 0.0, -0.0, 0, np.nan, np.nan, 1, True):
        _, got, signed = g(x, s)
        want = np.asarray(s)
        assert got.dtype == want.dtype and (np.isnan(got) if np.isnan(want) else got == want)
        np.testing.assert_array_equal(signed, np.copysign(1.0, s) * x)
    assert g.trace_count == 7  # True, 1, 1.0, 0.0, -0.0, 0, nan: NaN hits its own entry


def test_static_argnums_and_argnames():
    def g(x, n, *, mode="sum"):
        y = x[:n] if n else x          # shapes from static values
        return y.sum() if mode == "sum" else y.max()

    jg = npfunc.jit(g, static_argnums=1, static_argnames="mode")
    x = np.arange(5.0)
    assert jg(x, 2) == 1.0 and jg(x, 3) == 3.0 and jg(x, 3, mode="max") == 2.0
    assert jg(x, n=3, mode="max") == 2.0     # the static positional, passed by keyword
    assert jg.trace_count == 4
    assert npfunc.jit(g, static_argnums=-1)(x, 2) == 1.0
    # a static array: keyed by its contents, so a mask from it is concrete
    masked = npfunc.jit(lambda x, mask: x[mask].sum(), static_argnums=1)
    m = np.array([True, False, True, False, True])
    assert masked(x, m) == 6.0
    m[0] = False
    assert masked(x, m) == 6.0 - 0.0 and masked(x, ~m) == 4.0
    with pytest.raises(UnsupportedOperationError, match="static argument 1.*hash"):
        npfunc.jit(lambda x, obj: x, static_argnums=1)(x, _Unhashable())
    with pytest.raises(ValueError, match="static_argnames names 'nope'"):
        npfunc.jit(g, static_argnames="nope")


class _Unhashable:
    __hash__ = None


def test_retracing_is_counted_and_warned_about():
    g = npfunc.jit(lambda x, t: x * t)
    x = np.ones(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RetraceWarning)
        for t in range(6):
            g(x, float(t))
    assert g.trace_count == 6
    msgs = [str(w.message) for w in caught if issubclass(w.category, RetraceWarning)]
    assert len(msgs) == 1 and "argument 1 ('t')" in msgs[0] and "np.float64" in msgs[0]
    # as arrays, one recording serves every value
    h = npfunc.jit(lambda x, t: x * t)
    for t in range(6):
        np.testing.assert_array_equal(h(x, np.float64(t)), x * t)
    assert h.trace_count == 1


def test_retrace_warning_names_a_layout_change():
    g = npfunc.jit(lambda x: x.sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RetraceWarning)
        for k in range(1, 7):  # the same shape and dtype, other strides each call
            g(np.ones((8, 3 * k))[:, ::k])
    msgs = [str(w.message) for w in caught if issubclass(w.category, RetraceWarning)]
    assert len(msgs) == 1 and "kept its shape (8, 3)" in msgs[0] and "np.ascontiguousarray" in msgs[0]


def test_the_cache_is_bounded():
    g = npfunc.jit(lambda x: x + 1, cache_size=2)
    for n in (1, 2, 3, 1):
        g(np.zeros(n))
    assert g.trace_count == 4  # shape (1,) was evicted by (3,)
    g(np.zeros(1))
    assert g.trace_count == 4


# ---- arrays the function closes over: snapshots -------------------------------------------

def _closure_uses():
    def direct(W, x):
        return W @ x

    def derived(W, x):
        return x * W.max()

    def mask(W, x):
        return x[W[0] > 0.5]

    def where(W, x):
        return np.where(W[0] > 0.5, x, 0.0)

    def unique(W, x):
        return x[: len(np.unique(np.round(W[0])))] * 2.0

    def lstsq(W, x):
        return np.linalg.lstsq(W, x, rcond=None)[0]

    return [direct, derived, mask, where, unique, lstsq]


@pytest.mark.parametrize("use", _closure_uses(), ids=lambda u: u.__name__)
def test_closed_over_arrays_are_snapshots(use):
    W = np.array([[0.2, 0.9, 0.7], [1.0, -2.0, 0.5], [0.3, 0.1, 1.5]])
    recorded = W.copy()
    x = np.array([1.0, 2.0, 3.0])
    g = npfunc.jit(lambda x: use(W, x))
    np.testing.assert_allclose(g(x), use(recorded, x))
    W[...] = [[0.9, 0.1, 0.6], [2.0, 1.0, 0.0], [1.3, 0.4, 0.2]]   # change it in place
    for value in (x, x + 1.0):   # every use sees the recorded contents, consistently
        np.testing.assert_allclose(g(value), use(recorded, value))
    g.clear_cache()               # ... until the recording is dropped
    np.testing.assert_allclose(g(x), use(W, x))


# ---- values cannot steer the recording -------------------------------------------------------

@pytest.mark.parametrize("body,what", [
    (lambda x: x if x.sum() > 0 else -x, r"bool\(x\)"),
    (lambda x: x[x > 0], "boolean mask"),
    (lambda x: np.unique(x), "np.unique"),
    (lambda x: np.nonzero(x)[0], "nonzero"),
    (lambda x: np.linalg.lstsq(np.outer(x, x)[:, :2], x, rcond=None)[1], r"lstsq: a is rank-deficient"),
    (lambda x: float(x[0]) * x, r"float\(x\)"),
])
def test_value_dependent_shapes_and_control_flow_raise(body, what):
    with pytest.raises((ConcretizationError, UnsupportedOperationError), match=what):
        npfunc.jit(body)(np.array([1.0, -2.0, 3.0]))


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ConcretizationError, match=r"argument 1 \('flag'\).*static_argnums"):
        npfunc.jit(lambda x, flag: x if flag.any() else -x)(X, np.array([True]))
    # lstsq decides the residuals' shape from the rank: fine when the matrix is static
    M = np.outer(X, X)[:, :2]
    g = npfunc.jit(lambda a, b: np.linalg.lstsq(a, b, rcond=None)[1], static_argnums=0)
    np.testing.assert_array_equal(g(M, X), np.linalg.lstsq(M, X, rcond=None)[1])


# ---- random draws --------------------------------------------------------------------------

_gen = np.random.default_rng(1)
_legacy = np.random.RandomState(1)
_npfunc_gen = npfunc.random.default_rng(1)


@pytest.mark.parametrize("draw", [
    lambda x: x + np.random.normal(size=x.shape),
    lambda x: x + np.random.rand(),
    lambda x: x + _gen.normal(size=x.shape),
    lambda x: x * _gen.integers(0, 5),
    lambda x: x + _legacy.standard_normal(),
    lambda x: x + _npfunc_gen.normal(size=x.shape),
    lambda x: x + pyrandom.random(),
], ids=["np.random.normal", "np.random.rand", "Generator", "Generator.integers", "RandomState",
        "npfunc.random", "random.random"])
def test_every_random_draw_raises(draw):
    with pytest.raises(RandomnessError, match="jit"):
        npfunc.jit(draw)(X)


@pytest.mark.parametrize("gen", ["global", "RandomState"])
def test_a_legacy_gaussian_served_from_the_cache_raises(gen):
    """The legacy Gaussian draws come in pairs: the second is served from the RandomState's
    cache, its bit generator untouched.  jit recorded that draw as a constant and replayed it
    (the same 'random' value every call) where the plain function draws anew."""
    state = np.random.RandomState(3) if gen == "RandomState" else np.random.mtrand._rand
    saved = state.get_state()
    try:
        state.seed(3)
        state.normal()  # leaves the pair's second value cached
        with pytest.raises(RandomnessError, match="jit"):
            npfunc.jit(lambda x: x + state.normal())(X)
        state.seed(3)
        state.standard_normal()
        with pytest.raises(RandomnessError, match="jit"):
            npfunc.jit(lambda x: x * state.standard_normal())(X)
    finally:
        state.set_state(saved)


# ---- in-place updates of arguments ---------------------------------------------------------

def _setitem(x, v):
    x[0] = v[1]
    return x.sum()


def _iadd(x, v):
    x += v
    x *= 2.0
    return x


def _copyto(w, v):
    np.copyto(w, v)
    return w


def _out(x, v):
    np.add(x, v, out=x)
    return (x * v).sum()


def _returns_other(w, v):
    np.copyto(w, v * 2.0)
    return v


@pytest.mark.parametrize("fn", [_setitem, _iadd, _copyto, _out, _returns_other], ids=lambda f: f.__name__)
def test_in_place_updates_of_arguments_every_call(fn):
    jf = npfunc.jit(fn)
    for k in range(4):
        a, b = rng.standard_normal(3), rng.standard_normal(3)
        a_plain, b_plain = a.copy(), b.copy()
        want = fn(a_plain, b_plain)
        got = jf(a, b)
        np.testing.assert_allclose(got, want)
        np.testing.assert_array_equal(a, a_plain)
        np.testing.assert_array_equal(b, b_plain)
    assert jf.trace_count == 1


def test_the_same_array_passed_twice_is_one_array():
    def g(a, b):
        a += 1.0
        return b * 2.0

    jg = npfunc.jit(g)
    for _ in range(2):
        x, y = np.zeros(2), np.zeros(2)
        expect = g(y, y)
        np.testing.assert_array_equal(jg(x, x), expect)
        np.testing.assert_array_equal(x, y)
    pure = npfunc.jit(lambda a, b: a * b)   # aliasing does not matter without updates
    for first, second in ((x, x), (x, y), (y, y)):
        np.testing.assert_array_equal(pure(first, second), first * second)
    base = np.zeros(4)
    with pytest.raises(UnsupportedOperationError, match="share memory"):
        for _ in range(2):
            jg(base[:2], base[1:3])


def test_ndarray_methods_are_not_shadowed():
    from npfunc.interpreters.staging import StagedTracer

    assert not set(StagedTracer.__slots__) & set(dir(np.ndarray))
    x = rng.standard_normal(6)
    g = npfunc.jit(lambda x: (x.var(), x.std(), x.mean(), x.T, x.real))
    for _ in range(2):
        for a, b in zip(g(x), (x.var(), x.std(), x.mean(), x.T, x.real)):
            np.testing.assert_allclose(a, b)


# ---- inspection ----------------------------------------------------------------------------

def test_lower_and_make_graph_show_what_the_passes_did():
    def g(x):
        y = np.sin(x)
        return (y * y * 1.0).T.T + np.sin(x)

    lowered = npfunc.jit(g).lower(np.ones((2, 3)))
    assert str(lowered.staged).count("sin") == 2 and "transpose" in str(lowered.staged)
    assert str(lowered.optimized).count("sin") == 1 and "transpose" not in str(lowered.optimized)
    assert "def g(" in lowered.source
    assert set(lowered.times) == {"trace", "optimize", "codegen"}
    text = str(npfunc.make_graph(g)(np.ones((2, 3))))
    assert text.startswith("staged (") and "optimized (" in text


# ---- composition with every transform, both ways ---------------------------------------------

def _sq(x):
    return np.tanh(A @ x) ** 2


_TRANSFORMS = {
    "grad": lambda g: npfunc.grad(lambda x: g(x).sum()),
    "vjp": lambda g: lambda x: npfunc.vjp(g, x)[1](np.ones(5))[0],
    "jvp": lambda g: lambda x: npfunc.jvp(g, (x,), (np.ones(4),))[1],
    "jacrev": npfunc.jacrev,
    "jacfwd": npfunc.jacfwd,
    "hessian": lambda g: npfunc.hessian(lambda x: g(x).sum()),
    "vmap": lambda g: lambda x: npfunc.vmap(g)(np.stack([x, -x])),
    "linearize": lambda g: lambda x: npfunc.linearize(g, x)[1](np.ones(4)),
    "functionalize": npfunc.functionalize,
}


@pytest.mark.parametrize("name", sorted(_TRANSFORMS))
def test_jit_composes_both_ways(name):
    T = _TRANSFORMS[name]
    want = T(_sq)(X)
    inside = npfunc.jit(T(_sq))
    outside = T(npfunc.jit(_sq))
    for value in (X, X, X + 0.25):
        expect = want if value is X else T(_sq)(value)
        np.testing.assert_allclose(inside(value), expect, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(outside(value), expect, rtol=1e-12, atol=1e-14)
    assert inside.trace_count == 1


def test_debug_nans_checks_replays_too():
    g = npfunc.jit(lambda x: np.log(x - 2.0))
    g(np.array([3.0, 4.0]))      # recorded without NaN
    with npfunc.debug_nans():
        with pytest.raises(FloatingPointError, match="log"):
            g(np.array([1.0, 4.0]))


def test_keyword_arguments_and_methods():
    g = npfunc.jit(lambda x, *, w, scale=2.0: (x * w).sum() * scale)
    x, w = np.arange(3.0), np.ones(3)
    for _ in range(2):
        assert g(x, w=w) == 6.0 and g(x, w=w, scale=3.0) == 9.0
    assert g.trace_count == 2   # scale is a Python float: static

    class Model:
        def __init__(self):
            self.W = np.eye(3) * 2.0

        @npfunc.jit
        def __call__(self, x):
            return self.W @ x

    m = Model()
    for _ in range(2):
        np.testing.assert_array_equal(m(x), 2.0 * x)
    with pytest.raises(ConcretizationError, match=r"keyword argument 'w'"):
        npfunc.jit(lambda x, *, w: x if w.sum() > 0 else -x)(x, w=w)


def test_replays_of_plain_arrays_take_the_fast_path():
    jf = npfunc.jit(f)
    jf(X)
    expected = f(X)

    def slow_path(*args):  # the keyed lookup: only for arguments the fast path does not know
        raise AssertionError("the fast path missed a known signature")

    jf._call = slow_path
    np.testing.assert_allclose(jf(X.copy()), expected)
    strided = np.stack([X, X], axis=1)[:, 0]  # the same values, another layout: keyed apart
    with pytest.raises(AssertionError, match="fast path missed"):
        jf(strided)


def test_vmap_of_a_jitted_function_that_updates_its_argument():
    def f(x):
        x *= 2.0
        return np.sin(x).sum()

    xs = rng.standard_normal((3, 4))
    np.testing.assert_allclose(npfunc.vmap(npfunc.jit(f))(xs.copy()), [f(x.copy()) for x in xs])
    np.testing.assert_allclose(npfunc.grad(npfunc.jit(f))(X.copy()), npfunc.grad(f)(X.copy()))
