"""Eager jacrev and hessian from the tape (api/tape_replay.py) and its compiled
pull-backs (api/tape_cache.py): the values are the composition's, bit for bit,
call after call, and the function still runs eagerly every time."""
import sys

import numpy as np
import pytest

import npfunc
from npfunc.api import tape_cache
from npfunc.core.context import describe_stack

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def compile_at_once(monkeypatch):
    """Compile a structure on its second appearance (not once it has cost 4 ms).  And run as
    without Dask: once it is imported (another test in this process), grad takes its general
    path (a function may read Dask data), which grad(grad)'s tape is not on."""
    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", 0.0)
    monkeypatch.delitem(sys.modules, "dask", raising=False)


def composed_hessian(f):
    """jacfwd(jacrev(f)) as the eager composition computes it (a tuple of argnums takes no tape)."""
    return lambda x: npfunc.jacfwd(npfunc.jacrev(f), argnums=(0,))(x)[0]


def plain_jacfwd(f):
    return lambda x: npfunc.jacfwd(f, argnums=(0,))(x)[0]
A8 = RNG.standard_normal((8, 8)) / 3
W5 = RNG.standard_normal((5, 5)) / 2
B5 = RNG.standard_normal(5)


def logsumexp(z):
    m = np.max(z)
    return np.log(np.sum(np.exp(z - m))) + m


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def neg_log_likelihood(theta):  # a Gaussian linear model: mean, then log-scale
    y = np.array([0.3, -1.2, 0.8, 2.1, -0.4])
    X = np.linspace(-1, 1, 10).reshape(5, 2)
    mu = X @ theta[:2]
    log_s = theta[2]
    return 0.5 * np.sum(((y - mu) / np.exp(log_s)) ** 2) + y.size * log_s


def energy(q):  # a chain of springs with a Lennard-Jones-like end term
    d = np.diff(q)
    return 0.5 * np.sum((d - 1.0) ** 2) + 1.0 / (1.0 + q[0] ** 2) + np.cos(q).mean()


def entropy(logits):
    p = np.exp(logits - logits.max())
    p = p / p.sum()
    return -np.sum(p * np.log(p))


def matrix_objective(M):  # a 2-d input
    return np.trace(M @ M.T) + np.sum(np.tanh(M)) * M[0, 1]


SCALAR_FUNCTIONS = [
    ("logsumexp(Ax)", lambda x: logsumexp(A8 @ x), RNG.standard_normal(8)),
    ("rosenbrock", rosenbrock, np.array([0.5, 1.2, -0.3, 0.8])),
    ("gaussian nll", neg_log_likelihood, np.array([0.1, -0.2, 0.3])),
    ("springs", energy, np.array([0.0, 1.1, 1.9, 3.2])),
    ("entropy", entropy, np.array([0.2, -1.0, 0.5, 2.0])),
    ("matrix input", matrix_objective, RNG.standard_normal((2, 3))),
    ("float32", lambda x: np.sum(np.sin(x) * x ** 2), np.array([0.5, 1.5, -2.0], np.float32)),
    ("where", lambda x: np.sum(np.where(x > 0, x ** 3, -x)), np.array([0.5, -1.0, 2.0])),
    ("max and indexing", lambda x: np.max(x * x) + x[1] * x[2] - x[::2].sum() ** 2, np.array([0.5, -1.5, 2.0, 1.0])),
]

VECTOR_FUNCTIONS = [
    ("tanh(Wx+b)", lambda x: np.tanh(W5 @ x + B5), RNG.standard_normal(5)),
    ("softmax", lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(), np.array([0.1, 2.0, -1.0])),
    ("pendulum rhs", lambda s: np.stack([s[1], -np.sin(s[0]) - 0.1 * s[1]]), np.array([0.3, -0.2])),
    ("outer", lambda x: np.outer(x, np.cumsum(x)), np.array([1.0, -2.0, 0.5])),
    ("concatenate", lambda x: np.concatenate([np.sin(x), x[:2] * 3.0]), np.array([0.4, 0.1, 2.0])),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name,f,x", SCALAR_FUNCTIONS, ids=_ids(SCALAR_FUNCTIONS))
def test_hessian_is_the_composition_bit_for_bit(name, f, x):
    want = composed_hessian(f)(x)
    H = npfunc.hessian(f)
    for _ in range(5):  # the composition, eager from the tape, then compiled
        got = H(x)
        assert type(got) is type(want) and got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert H._tape_cache.hits >= 2 and H._tape_cache.compiles == 1
    # and it is the Hessian
    np.testing.assert_allclose(got, npfunc.jacrev(npfunc.jacfwd(f))(x), rtol=2e-4 if x.dtype == np.float32 else 1e-9,
                               atol=1e-5 if x.dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("name,f,x", VECTOR_FUNCTIONS, ids=_ids(VECTOR_FUNCTIONS))
def test_jacrev_is_the_uncached_one_bit_for_bit(name, f, x, monkeypatch):
    J = npfunc.jacrev(f)
    got = [J(x) for _ in range(4)]
    assert J._tape_cache.hits == 2 and J._tape_cache.compiles == 1
    monkeypatch.setattr(tape_cache, "ENABLED", False)
    want = npfunc.jacrev(f)(x)
    for g in got:
        assert g.shape == want.shape and g.dtype == want.dtype
        np.testing.assert_array_equal(g, want)
    np.testing.assert_allclose(want, npfunc.jacfwd(f)(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,f,x", VECTOR_FUNCTIONS + SCALAR_FUNCTIONS, ids=_ids(VECTOR_FUNCTIONS + SCALAR_FUNCTIONS))
def test_jacfwd_is_the_eager_one_bit_for_bit(name, f, x):
    want = plain_jacfwd(f)(x)
    J = npfunc.jacfwd(f)
    for _ in range(5):
        got = J(x)
        assert type(got) is type(want) and got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert J._tape_cache.hits == 2 and J._tape_cache.compiles == 1


def test_a_new_branch_shape_or_scalar_is_a_new_key():
    scale = [2.0]

    def f(x):
        if x[0] > 0:  # data-dependent control flow: each branch its own tape
            y = np.sin(x) * scale[0]
        else:
            y = np.cos(x) ** 2
        return y.sum() * x.sum()

    H = npfunc.hessian(f)
    composed = composed_hessian(f)
    points = [np.array([0.5, 1.0]), np.array([-0.5, 1.0]), np.array([0.7, 0.2]), np.array([-1.0, 2.0]),
              np.array([0.5, 1.0, 2.0])]
    for rounds in range(3):
        for k, x in enumerate(points):
            if rounds == 2 and k == 0:
                scale[0] = 3.0  # a Python scalar the tape holds by value
            np.testing.assert_array_equal(H(x), composed(x))
    assert H._tape_cache.compiles >= 3


def test_closed_over_arrays_are_read_on_every_call():
    W = np.eye(3)
    f = lambda x: np.tanh(W @ x)  # noqa: E731
    J = npfunc.jacrev(f)
    x = np.array([0.1, 0.2, 0.3])
    for k in range(5):
        W[...] = np.arange(9.0).reshape(3, 3) * (k + 1) / 10  # changed in place between calls
        got = J(x)
        np.testing.assert_allclose(got, (1 - np.tanh(W @ x) ** 2)[:, None] * W, rtol=1e-12)
    assert J._tape_cache.hits >= 2


def test_the_function_runs_on_every_call():
    calls = []

    def f(x):
        calls.append(1)
        print_like = repr(type(x).__name__)
        assert print_like
        return np.sum(x ** 3)

    H = npfunc.hessian(f)
    for _ in range(5):
        H(np.array([1.0, 2.0]))
    assert len(calls) == 5 and H._tape_cache.hits == 2


def test_the_function_meets_the_composition_s_transform_stack():
    seen = []

    def f(x):
        seen.append(describe_stack())
        return np.sum(x ** 2)

    x = np.array([1.0, 2.0])
    npfunc.hessian(f)(x)
    composed_hessian(f)(x)
    assert seen[0] == seen[1] == "jacfwd(jacrev(f))"


@pytest.mark.parametrize("body", ["float", "random"])
def test_refusals_inside_the_function_are_the_composition_s(body):
    rng = npfunc.random.default_rng(0)

    def f(x):
        if body == "float":
            return float(x[0]) * np.sum(x)
        return np.sum(x * rng.normal(size=2))

    x = np.array([1.0, 2.0])
    with pytest.raises(Exception) as eager:
        composed_hessian(f)(x)
    with pytest.raises(Exception) as taped:
        npfunc.hessian(f)(x)
    assert type(taped.value) is type(eager.value) and str(taped.value) == str(eager.value)


def test_in_place_updates_and_custom_rules_take_the_eager_path():
    @npfunc.custom_vjp
    def softplus(x):
        return np.log1p(np.exp(x))

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g / (1 + np.exp(-x)),))

    def written(x):
        y = x * 1.0
        y[0] = y[1] ** 2  # an in-place update of a traced value
        return np.sum(y ** 3)

    def writes_input(x):
        x *= 2.0
        return np.sum(x ** 3)

    for f in [lambda x: np.sum(softplus(x) ** 2), written, writes_input]:
        x = np.array([0.5, -1.0, 2.0])
        x_eager, x_taped = x.copy(), x.copy()
        want = composed_hessian(f)(x_eager)
        H = npfunc.hessian(f)
        for _ in range(3):
            np.testing.assert_array_equal(H(x_taped.copy()), want)
        got = H(x_taped)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(x_taped, x_eager)  # the caller's array, as the composition leaves it
    # a tape with a custom-rule call is carried once; then the function runs the composition
    H = npfunc.hessian(lambda x: np.sum(softplus(x) ** 2))
    for _ in range(2):
        H(np.array([0.5, 1.0]))
    assert not H._tape_cache.active


@pytest.mark.parametrize("f,x", [
    (lambda x: np.sin(x) * x.sum(), np.array([0.5, 1.0])),  # a vector function: a 3-d Hessian
    (lambda x: np.float64(3.0), np.array([0.5, 1.0])),  # independent of x
    (lambda x: (np.sum(x ** 2), np.prod(x)), np.array([0.5, 1.0])),  # a tuple of outputs
    (lambda x: np.sum(x * 1j) * 2.0, np.array([0.5, 1.0])),  # complex
])
def test_hessian_of_other_outputs_is_the_composition(f, x):
    want = composed_hessian(f)(x)
    H = npfunc.hessian(f)
    for _ in range(3):
        got = H(x)
        for g, w in zip(np.atleast_1d(np.asarray(got, dtype=object) if isinstance(got, tuple) else [got]),
                        np.atleast_1d(np.asarray(want, dtype=object) if isinstance(want, tuple) else [want])):
            np.testing.assert_array_equal(g, w)


def test_under_other_transforms_and_debug_nans_the_cache_stays_out():
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    xs = np.linspace(0.1, 1.0, 6).reshape(3, 2)
    H = npfunc.hessian(f)
    batched = npfunc.vmap(H)(xs)
    for k in range(3):
        np.testing.assert_allclose(batched[k], composed_hessian(f)(xs[k]), rtol=1e-14)
    assert H._tape_cache.hits == H._tape_cache.misses == 0
    with npfunc.debug_nans():
        for _ in range(3):
            H(xs[0])
    assert H._tape_cache.hits == 0


def test_a_function_whose_tape_always_changes_stops_being_keyed():
    calls = [0]

    def f(x):
        calls[0] += 1
        y = x
        for _ in range(calls[0]):  # one more operation on every call
            y = np.sin(y)
        return y

    J = npfunc.jacrev(f)
    x = np.array([0.2, 0.4])
    for _ in range(tape_cache.GIVE_UP_AFTER + 3):
        J(x)
    assert not J._tape_cache.active and not J._tape_cache.entries
    got = J(x)
    calls[0] -= 1
    np.testing.assert_array_equal(got, npfunc.jacrev(f, argnums=(0,))(x)[0])


def test_keys_tell_apart_what_changes_the_pull_back():
    from npfunc.api.tape_cache import _freeze

    assert _freeze(0.0) != _freeze(-0.0) and _freeze(float("nan")) == _freeze(float("nan"))
    assert _freeze(1) != _freeze(True) and _freeze((1, 2)) != _freeze([1, 2])
    assert _freeze(slice(1, None)) == _freeze(slice(1, None)) != _freeze(slice(1, 2))
    assert _freeze(np.array([1, 2])) != _freeze(np.array([1, 3]))
    assert _freeze(np.ones(3)) is tape_cache._NOT_KEYABLE  # float arrays are values, not parameters
    assert _freeze({"a": 1}) is tape_cache._NOT_KEYABLE
    assert _freeze(lambda t: t) is tape_cache._NOT_KEYABLE  # a function may change behaviour
    assert _freeze(np.float64) == _freeze(np.float64) and _freeze(np.add) != _freeze(np.multiply)


@pytest.mark.parametrize("body", ["float", "random", "stack"])
def test_jacfwd_s_function_meets_what_it_meets_eagerly(body):
    rng = npfunc.random.default_rng(0)
    seen = []

    def f(x):
        seen.append(describe_stack())
        if body == "float":
            return float(x[0]) * x
        if body == "random":
            return x * rng.normal(size=2)
        return np.sin(x)

    x = np.array([1.0, 2.0])
    if body == "stack":
        np.testing.assert_array_equal(npfunc.jacfwd(f)(x), plain_jacfwd(f)(x))
        assert seen == ["jacfwd(f)", "jacfwd(f)"]
        return
    with pytest.raises(Exception) as eager:
        plain_jacfwd(f)(x)
    with pytest.raises(Exception) as taped:
        npfunc.jacfwd(f)(x)
    assert type(taped.value) is type(eager.value) and str(taped.value) == str(eager.value)
    # other randomness settings take the composition, as before
    J = npfunc.jacfwd(lambda x: x * rng.normal(size=2), randomness="same")
    assert J(x).shape == (2, 2) and J._tape_cache.misses == 0


def test_jacfwd_with_custom_rules_is_the_eager_one():
    @npfunc.custom_jvp
    def clipped_exp(x):
        return np.exp(np.minimum(x, 3.0))

    clipped_exp.defjvp(lambda primals, tangents: (clipped_exp(primals[0]), clipped_exp(primals[0]) * tangents[0]))

    @npfunc.custom_vjp
    def halved(x):
        return x * 1.0

    halved.defvjp(lambda x: (x * 1.0, None), lambda _, g: (0.5 * g,))

    for f in [lambda x: clipped_exp(x) * x, lambda x: np.sin(halved(x)) * x,
              npfunc.checkpoint(lambda x: np.tanh(x) ** 2)]:
        x = np.array([0.5, 4.0, -1.0])
        want = plain_jacfwd(f)(x)
        J = npfunc.jacfwd(f)
        for _ in range(3):
            np.testing.assert_array_equal(J(x), want)


# ---- jvp(grad(f)): Hessian-vector products from the tape -------------------------------------

@pytest.mark.parametrize("name,f,x", SCALAR_FUNCTIONS, ids=_ids(SCALAR_FUNCTIONS))
def test_hvp_is_the_composition_bit_for_bit(name, f, x):
    g = npfunc.grad(f)
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape).astype(x.dtype)
    want = npfunc.jvp(lambda y: g(y), (x,), (v,))  # a lambda around grad: the composition
    for _ in range(5):
        got = npfunc.jvp(g, (x,), (v,))
        for a, b in zip(got, want):
            assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    cache = tape_cache.grad_cache(g)
    if x.dtype == np.float64:
        assert cache.hits == 2 and cache.compiles == 1
    # the tangent is the same array as the point, or a new one on each call
    np.testing.assert_array_equal(npfunc.jvp(g, (x,), (x,))[1], npfunc.jvp(lambda y: g(y), (x,), (x,))[1])


def test_hvp_tape_only_for_grad_itself():
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    g = npfunc.grad(f)
    x, v = np.array([0.3, 0.6]), np.array([1.0, 0.0])
    batched = npfunc.vmap(g)  # a wrapper of grad: the attribute it copies names grad, not it
    assert batched._taped_grad[0] is g
    out = npfunc.jvp(batched, (np.stack([x, x]),), (np.stack([v, v]),))
    np.testing.assert_array_equal(out[1][0], npfunc.jvp(g, (x,), (v,))[1])
    for other in [npfunc.grad(f, has_aux=False, argnums=(0,)), npfunc.grad_and_value(f),
                  npfunc.grad(lambda x: (f(x), 1), has_aux=True)]:
        assert other._taped_grad is None
    with pytest.raises(npfunc.errors.NonScalarOutputError) as taped:
        npfunc.jvp(npfunc.grad(np.sin), (x,), (v,))
    with pytest.raises(npfunc.errors.NonScalarOutputError) as eager:
        npfunc.jvp(lambda y: npfunc.grad(np.sin)(y), (x,), (v,))
    assert str(taped.value) == str(eager.value)


def test_a_function_called_once_runs_the_plain_composition():
    f = lambda x: np.sum(np.exp(x) * x)  # noqa: E731
    x = np.array([0.1, 0.2])
    for make in [npfunc.hessian, npfunc.jacfwd]:
        T = make(f)
        T(x)
        assert T._tape_cache.misses == T._tape_cache.hits == 0
        T(x)
        assert T._tape_cache.misses == 1
    g = npfunc.grad(f)
    npfunc.jvp(g, (x,), (x,))
    assert tape_cache.grad_cache(g).misses == 0


def test_a_pull_back_that_does_not_compile_stays_eager(monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("cannot be recorded")

    from npfunc.api import jacobians

    monkeypatch.setattr(jacobians, "compile_pull_back", refuse)
    f = lambda x: np.tanh(W5 @ x + B5)  # noqa: E731
    J = npfunc.jacrev(f)
    x = np.linspace(0.0, 1.0, 5)
    monkeypatch.setattr(tape_cache, "ENABLED", False)
    want = npfunc.jacrev(f)(x)
    monkeypatch.setattr(tape_cache, "ENABLED", True)
    for _ in range(4):
        np.testing.assert_array_equal(J(x), want)
    assert J._tape_cache.compiles == 0 and list(J._tape_cache.entries.values()) == [None]


def test_threads_share_one_transformed_function():
    import threading

    f = lambda x: logsumexp(A8 @ x) * np.sum(x ** 2)  # noqa: E731
    H = npfunc.hessian(f)
    points = [RNG.standard_normal(8) for _ in range(4)]
    wants = [composed_hessian(f)(p) for p in points]
    failures = []

    def work(k):
        for i in range(30):
            p = (k + i) % 4
            if not np.array_equal(H(points[p]), wants[p]):
                failures.append((k, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and H._tape_cache.hits > 0


def test_a_structure_compiles_once_its_eager_pull_backs_cost_what_compiling_does(monkeypatch):
    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", 3600.0)
    J = npfunc.jacrev(lambda x: np.sin(x) * x)
    x = np.array([0.1, 0.2])
    for _ in range(20):
        J(x)
    assert J._tape_cache.compiles == 0 and J._tape_cache.misses == 20 and J._tape_cache.active
    (spent,) = J._tape_cache.entries.values()
    assert 0.0 < spent < 1.0
    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", spent)
    J(x)
    J(x)
    assert J._tape_cache.compiles == 1 and J._tape_cache.hits == 1


# ---- the natural programs of tests/test_natural_programs*.py, from the tape ------------------

def _natural_programs():
    import test_natural_programs as first
    import test_natural_programs_fields as second

    return {**first.PROGRAMS, **second.PROGRAMS}


@pytest.mark.parametrize("name", sorted(_natural_programs()))
def test_natural_programs_from_the_tape_are_the_composition(name):
    f, x = _natural_programs()[name]
    g = npfunc.grad(f)
    gg_line = npfunc.grad(npfunc.grad(along(f, x)))  # the second derivative along a line
    cases = [(npfunc.hessian(f), composed_hessian(f)), (npfunc.jacfwd(g), plain_jacfwd(g)),
             (lambda x: npfunc.jvp(g, (x,), (np.cos(x),))[1], lambda x: npfunc.jvp(lambda y: g(y), (x,), (np.cos(x),))[1]),
             (lambda x: gg_line(np.array(0.0)), lambda x: composed_grad_grad(along(f, x))(np.array(0.0)))]
    with np.errstate(all="ignore"):
        for taped, composed in cases:
            try:
                want = composed(x.copy())
            except Exception as error:  # refused by the composition: refused the same way
                with pytest.raises(type(error)):
                    for _ in range(3):
                        taped(x.copy())
                continue
            for _ in range(4):  # the composition, the tape, compiling, compiled
                np.testing.assert_array_equal(taped(x.copy()), want)


def test_a_custom_rule_call_that_draws_random_numbers_is_refused():
    @npfunc.custom_vjp
    def noisy(x):
        return x + np.random.normal(size=x.shape) * 1e-3

    noisy.defvjp(lambda x: (noisy(x), None), lambda _, g: (g,))
    f = lambda x: np.sum(noisy(x) ** 2)  # noqa: E731
    x = np.array([0.5, 1.0])
    npfunc.jacfwd(npfunc.jacrev(f), argnums=(0,))(x)  # the composition runs it once: fine
    H = npfunc.hessian(f)
    H(x)  # the first call: the composition
    with pytest.raises(npfunc.errors.RandomnessError, match="argnums=\\(0,\\)"):
        H(x)
    assert H(x).shape == (2, 2)  # from then on, the composition
    H0 = npfunc.hessian(f, argnums=(0,))(x)[0][0]  # the fix the message names
    assert H0.shape == (2, 2)


# ---- grad(grad(f)): second derivatives of scalar functions from the tape ---------------------

def composed_grad_grad(f):
    """grad(grad(f)) as the eager composition computes it (the outer grad of a lambda takes no tape)."""
    inner = npfunc.grad(f)
    return npfunc.grad(lambda t: inner(t))


def along(f, x):
    """f restricted to the line through x along a fixed direction: a function of a 0-d array."""
    d = np.linspace(1.0, -0.5, x.size).reshape(x.shape).astype(x.dtype)
    return lambda t: f(x + t * d)


def _same(got, want):
    assert type(got) is type(want) and np.shape(got) == np.shape(want) and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,f,x", SCALAR_FUNCTIONS, ids=_ids(SCALAR_FUNCTIONS))
def test_grad_of_grad_is_the_composition_bit_for_bit(name, f, x):
    h = along(f, x)
    t = np.array(0.25, dtype=x.dtype)
    want = composed_grad_grad(h)(t)
    inner = npfunc.grad(h)
    gg = npfunc.grad(inner)
    for _ in range(5):  # the composition, from the tape, compiling, compiled
        _same(gg(t), want)
    cache = tape_cache.grad_cache(inner, "grad")
    if x.dtype == np.float64:  # (only a float64 scalar output is keyed)
        assert cache.hits == 2 and cache.compiles == 1
    # and it is the second derivative
    fd = (inner(t + 1e-4) - inner(t - 1e-4)) / 2e-4
    np.testing.assert_allclose(want, fd, rtol=1e-2 if x.dtype == np.float32 else 1e-6, atol=1e-6)


def test_grad_of_grad_of_scalar_programs():
    """Second derivatives users take of one-variable functions: a potential's curvature,
    a log-density's observed information, a Taylor coefficient."""
    def morse(r):
        return 4.0 * (1.0 - np.exp(-1.3 * (r - 1.1))) ** 2

    def log_gamma_density(theta):
        a, b, data = 2.5, 1.5, np.array([0.3, 1.2, 0.8, 2.2])
        return (a - 1) * np.log(theta) - b * theta + np.sum(-theta * data + np.log(theta))

    def pendulum_energy(q):
        return 0.5 * np.cos(q) ** 2 - np.cos(q) + q * np.sin(q) / (1.0 + q * q)

    for f, t in [(morse, np.array(1.4)), (log_gamma_density, np.array(0.7)), (pendulum_energy, np.array(-0.4))]:
        want = composed_grad_grad(f)(t)
        gg = npfunc.grad(npfunc.grad(f))
        for _ in range(4):
            _same(gg(t), want)
        third = npfunc.grad(npfunc.grad(npfunc.grad(f)))(t)  # a level more: the composition around the tape
        assert third == composed_grad_grad(npfunc.grad(f))(t)


def test_grad_of_grad_meets_the_composition_s_stack_and_refusals():
    seen = []

    def f(t):
        seen.append(describe_stack())
        return np.sin(t) * t

    t = np.array(0.5)
    gg = npfunc.grad(npfunc.grad(f))
    for _ in range(3):
        gg(t)
    composed_grad_grad(f)(t)
    assert len(set(seen)) == 1, seen
    rng = npfunc.random.default_rng(0)
    for body in [lambda t: float(t) * t, lambda t: t * rng.normal(), lambda t: np.sin(t) if t > 0 else t]:
        try:
            want = composed_grad_grad(body)(t)
        except Exception as error:
            gg = npfunc.grad(npfunc.grad(body))
            for _ in range(3):
                with pytest.raises(type(error)) as taped:
                    gg(t)
                assert str(taped.value) == str(error)
        else:
            gg = npfunc.grad(npfunc.grad(body))
            for _ in range(3):
                _same(gg(t), want)


def test_grad_of_grad_other_inputs_take_the_composition():
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    inner = npfunc.grad(f)
    gg = npfunc.grad(inner)
    for x in [np.array([0.5]), np.array(2), 0.5, np.float64(0.5)]:
        try:
            want = composed_grad_grad(f)(x)
        except Exception as error:
            with pytest.raises(type(error)) as taped:
                gg(x)
                gg(x)
            assert str(taped.value) == str(error)
            continue
        for _ in range(3):
            got = gg(x)
            assert type(got) is type(want)
            np.testing.assert_array_equal(got, want)
    assert tape_cache.grad_cache(inner, "grad").misses == 0
    # a grad of grad with other arguments, or under another transform, is the composition
    two = npfunc.grad(npfunc.grad(lambda x, y: np.sin(x) * y), argnums=0)
    assert two(np.array(0.5), 2.0) == npfunc.grad(lambda x, y: npfunc.grad(lambda x, y: np.sin(x) * y)(x, y))(
        np.array(0.5), 2.0)
    batched = npfunc.vmap(gg)
    np.testing.assert_array_equal(batched(np.array([0.1, 0.2])), [gg(np.array(0.1)), gg(np.array(0.2))])
    with npfunc.debug_nans():
        assert gg(np.array(0.3)) == composed_grad_grad(f)(np.array(0.3))


def test_grad_of_grad_with_custom_rules_and_in_place_updates():
    @npfunc.custom_vjp
    def softplus(x):
        return np.log1p(np.exp(x))

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g / (1 + np.exp(-x)),))

    def writes_input(t):
        t *= 2.0
        return np.sin(t) * t

    for f in [lambda t: softplus(t) ** 3, writes_input, npfunc.checkpoint(lambda t: np.tanh(t) ** 2)]:
        t_eager, t_taped = np.array(0.3), np.array(0.3)
        want = composed_grad_grad(f)(t_eager)
        gg = npfunc.grad(npfunc.grad(f))
        for _ in range(3):
            _same(gg(t_taped.copy()), want)
        _same(gg(t_taped), want)
        np.testing.assert_array_equal(t_taped, t_eager)  # the caller's array, as the composition leaves it

    @npfunc.custom_vjp
    def noisy(x):
        return x + np.random.normal() * 1e-3

    noisy.defvjp(lambda x: (noisy(x), None), lambda _, g: (g,))
    f = lambda t: noisy(t) ** 2  # noqa: E731
    gg = npfunc.grad(npfunc.grad(f))
    gg(np.array(0.5))
    with pytest.raises(npfunc.errors.RandomnessError, match=r"grad\(lambda x: g\(x\)\)"):
        gg(np.array(0.5))
    inner = npfunc.grad(f)
    assert npfunc.grad(lambda x: inner(x))(np.array(0.5)) > 0  # the fix the message names


def test_grad_functions_pickle_by_value():
    """Dask's workers receive grad functions pickled by value (cloudpickle): the wrapper
    refers to module functions by name, never to thread-local state."""
    cloudpickle = pytest.importorskip("cloudpickle")
    gg = npfunc.grad(npfunc.grad(lambda t: np.sin(t) * t))
    t = np.array(0.7)
    for _ in range(3):
        want = gg(t)
    again = cloudpickle.loads(cloudpickle.dumps(gg))
    for _ in range(3):
        _same(again(t), want)
