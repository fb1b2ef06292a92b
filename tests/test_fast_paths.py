"""The eager fast paths give exactly what the general paths give."""
import copy
import pickle
import threading

import numpy as np
import optree
import pytest

import npfunc
from npfunc.api._common import ArgsSpec, tree_flatten, tree_unflatten
from npfunc.core import array_hooks, context
from npfunc.core.lazy import deferred

TREES = [np.ones(2), 1.0, 3, np.float64(2.0), (np.ones(2), 1.0), (), (np.ones(1),), (np.ones(2), None),
         [np.ones(2)], {"a": np.ones(1)}, (np.ones(2), (1.0,)), None, True, (True, 1.0), [], [1.0, np.ones(2)],
         [np.ones(2), None], [np.ones(1), [2.0]]]


@pytest.mark.parametrize("none_is_leaf", [False, True])
@pytest.mark.parametrize("k", range(len(TREES)))
def test_tree_flatten_is_optrees(k, none_is_leaf):
    tree = TREES[k]
    leaves, spec = tree_flatten(tree, none_is_leaf=none_is_leaf)
    ref_leaves, ref_spec = optree.tree_flatten(tree, none_is_leaf=none_is_leaf)
    assert len(leaves) == len(ref_leaves) and all(a is b for a, b in zip(leaves, ref_leaves))
    assert spec == ref_spec and ref_spec == spec and not spec != ref_spec and not ref_spec != spec
    assert str(spec) == str(ref_spec) and repr(spec) == repr(ref_spec) and f"{spec}" == f"{ref_spec}"
    assert hash(spec) == hash(ref_spec)
    assert spec.num_leaves == ref_spec.num_leaves and spec.num_nodes == ref_spec.num_nodes
    rebuilt = tree_unflatten(spec, leaves)
    assert optree.tree_structure(rebuilt, none_is_leaf=none_is_leaf) == ref_spec
    assert copy.deepcopy(spec) == ref_spec and pickle.loads(pickle.dumps(spec)) == ref_spec


def test_args_spec_compares_like_optree():
    a = tree_flatten((np.ones(1), 2.0))[1]
    assert type(a) is ArgsSpec
    assert a == tree_flatten((3, 4))[1] and a != tree_flatten((3,))[1] and a != tree_flatten(3)[1]
    assert a != tree_flatten((3, 4), none_is_leaf=True)[1]
    assert a != optree.tree_structure([1, 2]) and a != "(*, *)"
    assert a != tree_flatten([3, 4])[1] and tree_flatten([3, 4])[1] == optree.tree_structure([1, 2])
    assert type(tree_unflatten(tree_flatten([3, 4])[1], [1, 2])) is list
    with pytest.raises(ValueError, match="Too few leaves"):
        tree_unflatten(a, [1])


def test_deferred_takes_its_place():
    namespace = {}
    namespace["f"] = deferred("math:hypot", namespace, "f")
    assert namespace["f"](3.0, 4.0) == 5.0
    import math

    assert namespace["f"] is math.hypot


def test_numpys_constructors_are_replaced_only_while_a_transform_runs():
    original = array_hooks._ORIGINAL["array"]
    seen = []

    def f(x):
        seen.append(np.array is original)
        return npfunc.grad(lambda y: np.array([y, 2 * y]).sum())(x) * x

    npfunc.grad(f)(np.array(1.0))
    assert seen == [False] and np.array is original and array_hooks._active == 0
    # a transform left on the stack by an error inside a nested one, cleaned up by its outer exit
    with pytest.raises(ZeroDivisionError):
        npfunc.grad(lambda x: npfunc.vmap(lambda y: 1 / 0)(x).sum())(np.ones(2))
    assert np.array is original and array_hooks._active == 0 and context.current_stack() == ()


def test_two_threads_keep_the_constructors_until_both_end():
    original = array_hooks._ORIGINAL["array"]
    inside, release = threading.Event(), threading.Event()

    def other():
        def f(x):
            inside.set()
            release.wait(10)
            return x.sum()

        npfunc.grad(f)(np.ones(2))

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    npfunc.grad(lambda x: x.sum())(np.ones(2))  # ends while the other thread's transform runs
    assert np.array is not original
    release.set()
    thread.join()
    assert np.array is original and array_hooks._active == 0


def test_unary_and_binary_rules_match_their_definitions():
    x = np.array([0.3, -1.2, 2.0])
    y = np.array([1.5, 0.5, -0.7])
    g = npfunc.grad(lambda x, y: (np.sin(x) * y + np.power(np.abs(x) + 1, y)).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(g[0], np.cos(x) * y + y * (np.abs(x) + 1) ** (y - 1) * np.sign(x))
    np.testing.assert_allclose(g[1], np.sin(x) + (np.abs(x) + 1) ** y * np.log(np.abs(x) + 1))
    out, t = npfunc.jvp(lambda x: np.exp(x) * x, (x,), (np.ones(3),))
    np.testing.assert_allclose(t, np.exp(x) * (x + 1))
    # NumPy scalars (0-d results) and float32 keep their dtypes through the fast paths
    assert npfunc.grad(np.sin)(np.float32(0.5)).dtype == np.float32
    assert type(npfunc.grad(lambda q: q[0] * q[1])(np.array([2.0, 3.0]))) is np.ndarray


# ---- grad's short path (one real ndarray argument) against the general path ------------

def _general_grad(f, argnums=0, has_aux=False, with_value=False):
    """The same gradient through the general path: the argument wrapped in a tuple
    pytree (the short path takes only a bare ndarray)."""
    def wrapped(*args):
        args = list(args)
        args[argnums] = args[argnums][0]
        return f(*args)
    make = npfunc.grad_and_value if with_value else npfunc.grad

    def call(*args):
        args = list(args)
        args[argnums] = (args[argnums],)
        return make(wrapped, argnums=argnums, has_aux=has_aux)(*args)

    return call


SHORT_PATH_CASES = [
    ("scalar chain", lambda x: np.sin(np.cos(x)), np.array(0.4)),
    ("sum", lambda x: (x * x).sum(), np.array([1.0, -2.0, 3.0])),
    ("identity of a 0-d array", lambda x: x, np.array(0.5)),
    ("constant", lambda x: np.float64(3.0), np.array([1.0, 2.0])),
    ("python float out", lambda x: 2.0, np.array(1.5)),
    ("indexing", lambda q: q[0] * q[1] - 0.5 * q[0] ** 2, np.array([2.0, 3.0])),
    ("float32", lambda x: np.sin(x).sum(), np.array([0.5, 1.0], np.float32)),
    ("in-place", lambda x: (lambda y: (y.__setitem__(0, 5.0), y.sum())[1])(x.copy() * x), np.arange(3.0)),
    ("view written", lambda x: (lambda v: (v.__imul__(3.0), x.sum())[1])(x[1:]), np.ones(3)),
]


@pytest.mark.parametrize("name,f,x", SHORT_PATH_CASES, ids=[c[0] for c in SHORT_PATH_CASES])
def test_grad_short_path_is_the_general_path(name, f, x):
    fast = npfunc.grad(f)(x.copy())
    (slow,) = _general_grad(f)(x.copy())
    assert type(fast) is type(slow) and np.shape(fast) == np.shape(slow)
    assert np.asarray(fast).dtype == np.asarray(slow).dtype
    np.testing.assert_array_equal(fast, slow)


def test_grad_short_path_argnums_aux_and_value():
    def f(a, x, b):
        return (a * np.sin(x) + b).sum(), {"x": x, "n": 2}

    x = np.array([0.1, 0.2])
    g, aux = npfunc.grad(f, argnums=1, has_aux=True)(2.0, x, 1.0)
    np.testing.assert_allclose(g, 2.0 * np.cos(x))
    assert aux["n"] == 2 and type(aux["x"]) is np.ndarray and np.array_equal(aux["x"], x)
    (g2, (value, aux2)) = npfunc.grad_and_value(f, argnums=1, has_aux=True)(2.0, x, 1.0)
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(value, (2.0 * np.sin(x) + 1.0).sum())
    g3, v3 = npfunc.grad_and_value(lambda x: np.sin(x).sum())(x)
    np.testing.assert_allclose(g3, np.cos(x))
    assert np.isclose(v3, np.sin(x).sum())
    # grad of grad, and a gradient that escapes nowhere
    assert np.isclose(npfunc.grad(npfunc.grad(np.sin))(np.array(0.3)), -np.sin(0.3))


@pytest.mark.parametrize("f,error,words", [
    (lambda x: x, npfunc.errors.NonScalarOutputError, "shape (2,)"),
    (lambda x: (x.sum(), x.sum()), npfunc.errors.OutputTypeError, "single scalar"),
    (lambda x: x.sum() * 1j, npfunc.errors.NonScalarOutputError, "complex"),
])
def test_grad_short_path_errors_are_the_general_ones(f, error, words):
    x = np.ones(2)
    with pytest.raises(error) as fast:
        npfunc.grad(f)(x)
    with pytest.raises(error) as slow:
        _general_grad(f)(x)
    assert type(fast.value) is type(slow.value) and words in str(fast.value)
    assert str(fast.value) == str(slow.value)


# ---- vmap's short path (ndarrays mapped over one axis) -----------------------------------

@pytest.mark.parametrize("in_dims,out_dims", [(0, 0), (1, 0), (-1, 1), (0, -1), (1, 1)])
def test_vmap_short_path_is_the_general_path(in_dims, out_dims):
    a = np.arange(12.0).reshape(3, 4)
    b = np.linspace(0, 1, 12).reshape(3, 4)
    f = lambda x, y: np.sin(x) * y + x.sum()  # noqa: E731
    fast = npfunc.vmap(f, in_dims, out_dims)(a, b)
    slow = npfunc.vmap(lambda t: f(*t), ((in_dims, in_dims),), out_dims)((a, b))
    np.testing.assert_array_equal(fast, slow)
    loop = np.stack([f(np.take(a, k, in_dims), np.take(b, k, in_dims)) for k in range(a.shape[in_dims])],
                    axis=out_dims)
    np.testing.assert_allclose(fast, loop)


def test_vmap_short_path_outputs_and_errors():
    xs = np.arange(6.0).reshape(3, 2)
    # an output that does not vary over the batch is broadcast; pytrees of outputs work
    np.testing.assert_array_equal(npfunc.vmap(lambda x: np.ones(2))(xs), np.ones((3, 2)))
    pair = npfunc.vmap(lambda x: (x, x.sum()))(xs)
    np.testing.assert_array_equal(pair[0], xs)
    np.testing.assert_array_equal(pair[1], xs.sum(1))
    with pytest.raises(npfunc.errors.BatchSizeError, match="sizes"):
        npfunc.vmap(np.add)(xs, np.ones((4, 2)))
    with pytest.raises(npfunc.errors.OutDimsError, match="out_dims=3"):
        npfunc.vmap(np.sin, out_dims=3)(xs)
    with pytest.raises(npfunc.errors.InDimsError, match="axis 2"):
        npfunc.vmap(np.sin, in_dims=2)(xs)


# ---- the operator-based arithmetic and x[k] ------------------------------------------------

OPERANDS = [2, 2.5, 1j, True, np.float64(0.3), np.float32(1.5), np.int64(3), np.array(2.0), np.array([1.0, 2.0]),
            np.array([1, 2], np.int32), np.array([0.5], np.float32), np.float16(0.25), np.complex64(1 + 2j)]


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "negative"])
def test_operator_arithmetic_is_the_ufunc(name):
    from npfunc.core.primitive import REGISTRY

    prim = REGISTRY[name]
    calls = [(x,) for x in OPERANDS] if prim.ufunc.nin == 1 else [(x, y) for x in OPERANDS for y in OPERANDS]
    for args in calls:
        with np.errstate(all="ignore"):
            try:
                want = prim.ufunc(*args)
            except TypeError:  # booleans have no subtraction or negation: the same error
                with pytest.raises(TypeError):
                    prim.impl(*args)
                continue
            got = prim.impl(*args)
        assert type(got) is type(want) and np.asarray(got).dtype == np.asarray(want).dtype, args
        np.testing.assert_array_equal(got, want)
    if name != "multiply":
        return
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])  # a subclass whose * is a product: the ufunc, not the operator
    np.testing.assert_array_equal(REGISTRY["multiply"].impl(m, m), np.multiply(m, m))


def test_integer_index_of_a_traced_value():
    x = np.arange(6.0).reshape(2, 3)
    g = npfunc.grad(lambda x: (x[1] * x[-1]).sum() + x[0][2])(x)
    want = np.zeros_like(x)
    want[1] = 2 * x[1]
    want[0, 2] = 1
    np.testing.assert_allclose(g, want)

    def write_through_row(x):
        row = x[0]  # a view: writing into it writes into x
        row *= 3.0
        return x.sum()

    np.testing.assert_allclose(npfunc.grad(write_through_row)(x), [[3.0] * 3, [1.0] * 3])
    with pytest.raises(IndexError):
        npfunc.grad(lambda s: s[0])(np.array(1.0))
    with pytest.raises(IndexError):
        npfunc.grad(lambda v: v[5])(np.ones(3))


def test_broadcast_shapes_is_numpys():
    import itertools

    from npfunc.core.values import broadcast_shapes

    shapes = [(), (1,), (3,), (1, 3), (2, 1), (2, 3), (4, 1, 3), (0,), (1, 0), (2, 0), (5, 4, 1)]
    for k in (1, 2, 3):
        for combo in itertools.product(shapes, repeat=k):
            try:
                want = np.broadcast_shapes(*combo)
            except ValueError as error:
                with pytest.raises(ValueError, match=str(error)[:30]):
                    broadcast_shapes(*combo)
                continue
            assert broadcast_shapes(*combo) == want
    assert broadcast_shapes() == np.broadcast_shapes()


def test_keep_copies_memory_that_may_still_change():
    from npfunc.core.tracer import keep

    a = np.ones(3)
    assert keep(a) is not a and np.array_equal(keep(a), a)
    b = np.ones(3)
    b.flags.writeable = False
    assert keep(b) is b  # read-only memory of its own: kept as it is
    c = np.ones((3, 3))
    v = c.T
    v.flags.writeable = False
    assert keep(v) is not v  # a read-only view of writeable memory
    assert keep(np.broadcast_to(np.ones(3), (2, 3))) is not None
    d = np.broadcast_to(np.ones(3), (2, 3))
    assert keep(d) is not d
    e = np.frombuffer(bytearray(b"abcdefgh"), dtype=np.uint8)
    assert keep(e) is not e  # foreign memory
    s = np.float64(1.0)
    assert keep(s) is s and keep(2.0) == 2.0


@pytest.mark.parametrize("x, shape", [
    (np.float64(2.0), (3,)), (np.float32(1.5), ()), (np.int64(3), (2, 2)), (np.complex128(1 + 2j), (2,)),
    (np.ones((3, 1)), (2, 3, 4)), (np.ones((3, 1), order="F"), (3, 5)), (np.arange(6.0).reshape(2, 3)[:, ::2], (4, 2, 2)),
    (np.ones(0), (3, 0)), (np.ones(1), (0,)), (np.ones((2, 3)), (2, 3)), (np.array(["a"]), (2,)),
    (np.ones(3).astype(">f8"), (2, 3)),
], ids=repr)
def test_broadcast_view_is_numpys(x, shape):
    """broadcast_to's implementation makes the view itself: the same values,
    strides, dtype and read-only flag as np.broadcast_to, and its errors."""
    from npfunc.primitives.shape.basic import _broadcast_impl

    got, want = _broadcast_impl(x, shape=shape), np.broadcast_to(x, shape)
    assert got.shape == want.shape and got.dtype == want.dtype and got.strides == want.strides
    assert not got.flags.writeable
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        _broadcast_impl(np.ones((2, 3)), shape=(3, 3))
    with pytest.raises(ValueError):
        _broadcast_impl(np.ones(3), shape=())


def _central(f, x, eps=1e-6):
    return np.array([(f(x + e) - f(x - e)) / (2 * eps) for e in np.eye(x.size).reshape((x.size,) + x.shape) * eps])


@pytest.mark.parametrize("name, f", [
    ("chain", lambda x: np.sin(np.cos(np.tanh(x))).sum()),
    ("diamond: a parent used again later", lambda x: (np.cos(np.sin(x)) * np.sin(x)).sum()),
    ("chain into a two-output node", lambda x: np.linalg.slogdet(np.diag(np.exp(np.sin(x))) + 1.0)[1]),
    ("chain through a zero derivative", lambda x: (np.floor(np.sin(np.cos(x)) * 3.0) + np.exp(x)).sum()),
    ("two outputs seeded", lambda x: sum(np.sin(v).sum() for v in np.split(np.tanh(x), 2))),
    ("an input used twice", lambda x: (x * np.sin(x)).sum()),
])
def test_backward_along_chains_and_graphs(name, f):
    """The backward pass follows a chain without its heap while nothing else is
    pending; diamonds, several outputs and symbolic zeros go through the heap."""
    x = np.array([0.3, -0.8, 1.1, 0.4])
    np.testing.assert_allclose(npfunc.grad(f)(x), _central(f, x), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(npfunc.hessian(f)(x), np.stack([_central(lambda v: npfunc.grad(f)(v)[i], x)
                                                               for i in range(x.size)]), rtol=1e-5, atol=1e-7)


def test_np_array_of_traced_values_builds_no_refusal_message(monkeypatch):
    """np.array([...]) of traced values tries NumPy's constructor first; the traced
    values' refusal is caught, so it builds no message (which disassembles the
    calling code: 0.4-0.8 ms a call); nor does a traced write into a buffer made by
    np.zeros while the transform runs, which takes it.  Outside those, a refusal's
    message is full."""
    from npfunc.core import conversions

    def no_message(*args):
        raise AssertionError("a refusal message was built while np.array probed")

    monkeypatch.setattr(conversions, "conversion_fix", no_message)
    y = np.array([1.0, 2.0, 3.0])
    f = lambda y: np.array([y[0] * y[1], np.sin(y[2])]).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(f)(y), [2.0, 1.0, np.cos(3.0)])
    np.testing.assert_allclose(npfunc.vmap(f)(np.stack([y, y])), [f(y)] * 2)
    np.testing.assert_allclose(npfunc.jit(f)(y), f(y))
    np.testing.assert_allclose(npfunc.jacfwd(lambda y: np.array([y[0], y[1] * 2.0]))(y)[1], [0.0, 2.0, 0.0])

    def store(y):
        a = np.zeros((2, 3))
        a[0] = y * y
        return a.sum()

    np.testing.assert_allclose(npfunc.grad(store)(y), 2 * y, rtol=1e-15)
    np.testing.assert_allclose(npfunc.vmap(store)(np.stack([y, 2 * y])), [store(y), store(2 * y)], rtol=1e-15)
    jitted = npfunc.jit(store)
    for v in (y, 3 * y):  # the recording call and a replay
        np.testing.assert_allclose(jitted(v), store(v), rtol=1e-15)
    monkeypatch.undo()

    def store_made_otherwise(y):
        a = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # not np.zeros & co.: stays plain
        a[0] = y
        return a.sum()

    with pytest.raises(npfunc.errors.ConcretizationError, match="like=x") as info:  # a real refusal: the full message
        npfunc.grad(store_made_otherwise)(y)
    assert "create the array traced" in str(info.value) and "np.array(a, like=x)" in str(info.value)


# ---- jacrev's and jacfwd's short paths (one array in, one array out) -------------------

JACOBIAN_CASES = [
    ("identity", lambda x: x, np.array([0.5, -1.0, 2.0])),
    ("tanh(Wx+b)", lambda x: np.tanh(np.arange(9.0).reshape(3, 3) @ x + 1.0), np.array([0.1, 0.2, -0.3])),
    ("matrix in, vector out", lambda x: np.sin(x).sum(axis=0), np.arange(6.0).reshape(2, 3) / 7),
    ("vector in, matrix out", lambda x: np.outer(x, x), np.array([1.0, 2.0, 3.0])),
    ("0-d in", lambda x: np.stack([x, x * x, np.sin(x)]), np.array(0.7)),
    ("0-d out", lambda x: (x ** 3).sum(), np.array([1.0, -2.0])),
    ("one element out", lambda x: (x * x).sum(keepdims=True), np.array([1.0, -2.0])),
    ("independent output", lambda x: np.ones(3), np.array([1.0, 2.0])),
    ("partly independent", lambda x: np.concatenate([x, np.zeros(2)]), np.array([1.0, 2.0])),
    ("float32", lambda x: np.exp(x) * x, np.array([0.5, 1.0], np.float32)),
    ("complex output", lambda x: np.exp(1j * x), np.array([0.5, 1.0])),
    ("input written in place", lambda x: (x.__imul__(2.0), np.sin(x))[1], np.array([0.3, 0.6])),
    ("view of the input written", lambda x: (x[1:].__iadd__(x[:1]), x * x)[1], np.array([1.0, 2.0, 3.0])),
    ("tuple output", lambda x: (x * 2.0, x.sum()), np.array([1.0, 2.0])),
    ("empty output", lambda x: x[:0] * 2.0, np.array([1.0, 2.0])),
]


@pytest.mark.parametrize("name,f,x", JACOBIAN_CASES, ids=[c[0] for c in JACOBIAN_CASES])
@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobian_short_path_is_the_general_path(transform, name, f, x):
    make = getattr(npfunc, transform)
    fast = make(f)(x.copy())
    slow = make(f, argnums=(0,))(x.copy())  # a tuple of argnums takes the general path
    other = (npfunc.jacfwd if transform == "jacrev" else npfunc.jacrev)(f, argnums=(0,))(x.copy())
    fast_leaves = optree.tree_leaves(fast)
    slow_leaves = optree.tree_leaves(slow)  # (one more tuple level: one entry per argnum)
    assert len(fast_leaves) == len(slow_leaves) == len(optree.tree_leaves(f(x.copy())))
    for got, want, ref in zip(fast_leaves, slow_leaves, optree.tree_leaves(other)):
        assert type(got) is type(want) and got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)  # and forward agrees with reverse


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobian_short_path_with_other_arguments_and_errors(transform):
    make = getattr(npfunc, transform)

    def f(a, x, *, scale):
        return scale * np.sin(a * x)

    x = np.array([0.1, 0.2, 0.3])
    J = make(f, argnums=1)(2.0, x, scale=3.0)
    np.testing.assert_allclose(J, np.diag(6.0 * np.cos(2.0 * x)))
    J = make(f, argnums=-1)(2.0, x, scale=3.0)
    np.testing.assert_allclose(J, np.diag(6.0 * np.cos(2.0 * x)))
    with pytest.raises(npfunc.errors.NonDifferentiableInputError, match=transform):
        make(lambda n: n * 2)(np.arange(3))
    with pytest.raises(npfunc.errors.OutputTypeError, match=transform):
        make(lambda x: "text")(x)
    # under an outer transform the argument is traced: the general path, same values
    H = npfunc.jacfwd(make(lambda x: np.sin(x) * x.sum()))(x)
    np.testing.assert_allclose(H, npfunc.jacrev(npfunc.jacrev(lambda x: np.sin(x) * x.sum()))(x))


def test_jacobian_short_paths_are_taken(monkeypatch):
    from npfunc.api import jacobians

    taken = []
    for name in ("_lone_jacobian", "_lone_columns"):
        original = getattr(jacobians, name)
        monkeypatch.setattr(jacobians, name, lambda *a, _f=original, _n=name: (taken.append(_n), _f(*a))[1])
    x = np.array([0.1, 0.2])
    npfunc.jacrev(np.sin)(x)
    npfunc.jacfwd(np.sin)(x)
    assert taken == ["_lone_jacobian", "_lone_columns"]
    npfunc.jacrev(np.sin, argnums=(0,))(x)
    npfunc.jacfwd(lambda d: np.sin(d["x"]))({"x": x})
    assert taken == ["_lone_jacobian", "_lone_columns"]
