"""Indexing (every index kind, in combination), take / take_along_axis,
functional in-place updates (x[i] = v, x[i] += v, x += y ...), building
arrays from traced values, and sorting."""
import numpy as np
import pytest

import npfunc
from npfunc.core.dispatch import FUNCTIONS
from npfunc.core.errors import (BatchedConversionError, ConcretizationError, UnsupportedOperationError)
from npfunc.core.primitive import Sample
from npfunc.core.tracer import Tracer
from npfunc.primitives.shape.joining import array as np_array
from npfunc.primitives.indexing.updates import add_at, set_at
from npfunc.testing import checks

RNG = np.random.default_rng(0)


def arr(*shape, dtype=np.float64):
    return RNG.uniform(-2, 2, size=shape).astype(dtype)


class Composite:
    """NumPy-level code under the registry checks (see tests/test_shape.py)."""

    differentiable = True

    def __init__(self, fn):
        self.impl = self.bind = fn
        self.name = getattr(fn, "__name__", "composite")


def run_checks(fn, *args, argnums=None, second_order=True, **params):
    prim = Composite(fn)
    sample = Sample(*args, argnums=argnums, **params)
    rng = np.random.default_rng(2)
    checks.check_value(prim, sample)
    checks.check_jvp_fd(prim, sample, rng)
    checks.check_adjoint(prim, sample, rng)
    checks.check_vmap(prim, sample, rng)
    if second_order:
        checks.check_second_order(prim, sample, rng)


X = arr(4, 5, 3)
MASK = np.array([True, False, True, True, False])
MASK2 = RNG.uniform(size=(4, 5)) > 0.4

INDICES = [
    (1,), (-1,), (slice(None, None, -2),), (Ellipsis, -1), (None, 1, Ellipsis, None),
    (slice(1, 3), None, slice(None), 0),
    ([0, 2, 2, 3],), (np.array([[0, -1], [3, 3]]),),
    (slice(None), [1, 0, 1], [2, 2, -1]),
    ([1, 0], slice(None), [2, 2]),
    (0, slice(None), [1, 2]),
    (Ellipsis, [0, 0, 2]),
    (None, [1, 2], None),
    (MASK2,), (MASK2, 1), (MASK2, RNG.integers(-3, 3, size=MASK2.sum())),
    (slice(None), MASK), (1, MASK), (slice(1, None), MASK, 2), (Ellipsis, MASK, None, slice(0, 2)),
    (MASK[:4], slice(None), -1), ([3, 0, -1], MASK), (None, MASK[:4], Ellipsis),
    (X[..., 0] > 0,),
]


def _fresh(x, *others):
    """A new array equal to ``x``: an ndarray for NumPy, a value traced by every
    transform that traces ``x`` or ``others`` (a plain ndarray cannot hold a
    traced value)."""
    return x * 1.0 + sum(0.0 * np.sum(o) for o in others)


def _ids(index):
    return "".join("b" if np.asarray(c).dtype == bool else type(c).__name__[0] for c in index)


@pytest.mark.parametrize("index", INDICES, ids=[_ids(i) for i in INDICES])
def test_getitem(index):
    def f(x):
        return x[index]

    run_checks(f, X, second_order=False)


@pytest.mark.parametrize("index", INDICES[:12] + INDICES[13:20], ids=[_ids(i) for i in INDICES[:12] + INDICES[13:20]])
def test_setitem_matches_numpy(index):
    target = X[index].shape
    v = arr(*target[1:]) if len(target) else arr()  # broadcast over the first axis

    def f(x, v):
        y = _fresh(x, v)
        y[index] = v
        return y

    run_checks(f, X, v, second_order=False)


@pytest.mark.parametrize("index", [([0, 2, 0, 0],), (slice(None), [1, 1, 1]), (MASK2,), (slice(None, 3), 1)])
def test_augmented_setitem_matches_numpy(index):
    """x[i] += v is get, add, set: repeated indices add once (NumPy's buffered semantics)."""
    v = arr(*X[index].shape)

    def f(x, v):
        y = _fresh(x, v)
        y[index] += v * y[index]
        y[index] -= 1.0
        return y

    run_checks(f, X, v, second_order=False)


def test_repeated_indices_accumulate_in_the_gradient():
    x = arr(4)
    g = npfunc.grad(lambda x: (x[[0, 0, 2, 0]] * np.arange(1.0, 5.0)).sum())(x)
    np.testing.assert_array_equal(g, [1 + 2 + 4, 0, 3, 0])
    g = npfunc.grad(lambda x: np.take(x, [-1, 3, 1]).sum())(x)
    np.testing.assert_array_equal(g, [0, 1, 0, 2])


def test_repeated_writes_last_one_wins():
    x, v = arr(4), np.array([1.0, 2.0, 3.0])

    def f(x, v):
        y = x * 1.0
        y[[1, 1, 2]] = v * 10
        return y

    expected = x.copy()
    expected[[1, 1, 2]] = v * 10
    out, pullback = npfunc.vjp(f, x, v)
    np.testing.assert_array_equal(out, expected)
    gx, gv = pullback(np.ones(4))
    np.testing.assert_array_equal(gx, [1, 0, 0, 1])
    np.testing.assert_array_equal(gv, [0, 10, 10])  # the overwritten write gets nothing


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_take(axis):
    idx = np.array([[0, -1], [2, 2]])
    run_checks(lambda x: np.take(x, idx, axis=axis), arr(3, 4))


@pytest.mark.parametrize("axis,shape", [(-1, (3, 2)), (0, (2, 4)), (1, (1, 6)), (None, (7,))])
def test_take_along_axis(axis, shape):
    x = arr(3, 4)
    n = x.size if axis is None else x.shape[axis]
    idx = RNG.integers(-n, n, size=shape)
    run_checks(lambda x, i: np.take_along_axis(x, i, axis=axis), x, idx)


def test_take_along_axis_with_batched_indices():
    x = arr(3, 4)
    idx = RNG.integers(0, 4, size=(5, 3, 2))
    out = npfunc.vmap(lambda i: np.take_along_axis(x, i, axis=1))(idx)
    np.testing.assert_array_equal(out, np.stack([np.take_along_axis(x, i, 1) for i in idx]))
    gs = npfunc.vmap(npfunc.grad(lambda x, i: np.take_along_axis(x, i, axis=1).sum()), in_dims=(None, 0))(x, idx)
    for g, i in zip(gs, idx):
        expected = np.zeros_like(x)
        np.put_along_axis(expected, i, 0, 1)
        np.add.at(expected, (np.arange(3)[:, None], i), 1.0)
        np.testing.assert_array_equal(g, expected)


def test_traced_boolean_mask_index_is_a_clear_error():
    with pytest.raises(UnsupportedOperationError, match=r"shape of x\[mask\].*depends on the values.*np.where"):
        npfunc.vmap(lambda x: x[x > 0].sum())(arr(2, 3))
    # under grad the mask is concrete (comparisons are not differentiated): it works
    x = arr(5)
    np.testing.assert_array_equal(npfunc.grad(lambda x: x[x > 0].sum())(x), (x > 0).astype(float))


def test_traced_boolean_mask_assignment_is_a_where():
    def f(x):
        y = x * 2.0
        y[y < 0] = 0.5
        return y

    xs = arr(3, 5)
    np.testing.assert_array_equal(npfunc.vmap(f)(xs), np.where(2 * xs < 0, 0.5, 2 * xs))
    g = npfunc.vmap(npfunc.grad(lambda x: f(x).sum()))(xs)
    np.testing.assert_array_equal(g, np.where(xs < 0, 0.0, 2.0))

    def rows(x, v):
        y = _fresh(x, v)
        y[y[:, 0] > 0] = v  # a mask over the leading axis, a row of values
        return y

    x, v = arr(4, 3), arr(3)
    expected = x.copy()
    expected[x[:, 0] > 0] = v
    np.testing.assert_array_equal(npfunc.vmap(rows, in_dims=(None, 0))(x, np.stack([v, v]))[1], expected)
    with pytest.raises(UnsupportedOperationError, match="np.where"):
        npfunc.vmap(lambda x: set_at(x, (x > 0, 0), 1.0))(arr(2, 3, 2))


# ---- in-place operators -----------------------------------------------------------------

def _ops(x, y):
    z = _fresh(x, y)
    z += y
    z *= y
    z -= 0.5
    z /= 2.0 + y * y
    z **= 2
    return z


def test_inplace_operators_match_numpy():
    run_checks(_ops, arr(2, 3), arr(3))


def test_inplace_matmul():
    def f(x, m):
        z = _fresh(x, m)
        z @= m
        return z

    run_checks(f, arr(2, 3), arr(3, 3))


def test_inplace_casting_and_shape_follow_numpy():
    def f(x):
        z = (x * 1.0).astype(np.float32)
        z += x  # float64 added into float32 stays float32
        assert z.dtype == np.float32
        return z.astype(np.float64).sum()

    npfunc.grad(f)(arr(3))
    with pytest.raises(ValueError, match="non-broadcastable output"):
        npfunc.grad(lambda x: _iadd(x[0], x).sum())(arr(2, 3))

    def ints(x):
        i = np.argsort(x)
        i += 1
        with pytest.raises(TypeError, match="same_kind"):
            i += 0.5
        return i

    np.testing.assert_array_equal(npfunc.vmap(ints)(np.array([[3.0, 1.0, 2.0]])), [[2, 3, 1]])


def _iadd(a, b):
    a += b
    return a


def test_aliases_and_views_see_the_update():
    def f(x):
        y = x * 1.0
        alias = y
        before = y[:2]  # a view: it follows the writes into y
        y[0] = 10.0
        y *= 2.0
        return alias, before

    x = arr(3)
    alias, before = npfunc.vjp(f, x)[0]
    np.testing.assert_array_equal(alias, np.r_[20.0, 2 * x[1:]])
    np.testing.assert_array_equal(before, np.r_[20.0, 2 * x[1]])
    np.testing.assert_array_equal(before, f(x)[1])


def test_updating_an_input_in_place_under_grad():
    def f(x):
        x[0] = 0.0
        x += 1.0
        return (x ** 2).sum()

    x = arr(4)
    x0 = x.copy()
    np.testing.assert_allclose(npfunc.grad(f)(x), np.r_[0.0, 2 * (x0[1:] + 1)])
    np.testing.assert_allclose(x, np.r_[1.0, x0[1:] + 1])  # and x is updated, as by the plain call


def test_updating_an_input_in_place_under_jvp_and_vmap():
    def f(x):
        x[0] = 0.0
        x += 1.0
        return x ** 2

    x, t = arr(4), arr(4)
    x0 = x.copy()
    out, tout = npfunc.jvp(f, (x,), (t,))
    np.testing.assert_allclose(tout, np.r_[0.0, 2 * (x0[1:] + 1) * t[1:]])
    np.testing.assert_allclose(x, np.r_[1.0, x0[1:] + 1])
    xs = arr(3, 4)
    rows = xs.copy()
    want = np.stack([f(r) for r in rows])  # each row (a view) updated in place
    np.testing.assert_allclose(npfunc.vmap(f)(xs), want)
    np.testing.assert_allclose(xs, rows)  # vmap updates the caller's rows as the loop does


def test_update_with_a_value_from_an_inner_transform_is_a_clear_error():
    def outer(x):
        y = x * 1.0

        def inner(v):
            y[0] = v
            return y.sum()

        return npfunc.grad(inner)(x[1])

    with pytest.raises(UnsupportedOperationError, match="set_at"):
        npfunc.grad(outer)(arr(3))

    def outer_ops(x):
        y = x * 1.0

        def inner(v):
            z = y
            z += v  # z is y: NumPy would change y, which cannot hold a value of the inner grad
            return z.sum()

        return npfunc.grad(inner)(x[1])

    with pytest.raises(UnsupportedOperationError, match=r"x = x \+ y"):
        npfunc.grad(outer_ops)(arr(3))

    def outer_fixed(x):
        y = x * 1.0

        def inner(v):
            z = y + v  # the fix the error names
            return z.sum()

        return npfunc.grad(inner)(x[1])

    assert npfunc.grad(outer_fixed)(arr(3)).shape == (3,)

    def functional(x):
        def inner(v):
            return set_at(x, 0, v).sum() * v
        return npfunc.grad(inner)(x[1])

    x = arr(3)
    g = npfunc.grad(functional)(x)  # d/dx of (v + x1 + x2 + v) at v = x1
    np.testing.assert_allclose(g, [0.0, 3.0, 1.0])


def test_set_at_and_add_at():
    x = arr(5)
    np.testing.assert_array_equal(set_at(x, [1, 3], 2.0), np.where(np.isin(np.arange(5), [1, 3]), 2.0, x))
    np.testing.assert_array_equal(add_at(x, [0, 0, 4], 1.0), x + [2, 0, 0, 0, 1])
    g = npfunc.grad(lambda v: add_at(x, [0, 0, 4], v).sum())(np.float64(3.0))
    assert g == 3.0
    g = npfunc.grad(lambda x: (add_at(x, [0, 0, 4], x[:3]) ** 2).sum())(x)
    y = x.copy()
    np.add.at(y, [0, 0, 4], x[:3])
    expected = 2 * y
    expected[:3] += 2 * y[[0, 0, 4]]
    np.testing.assert_allclose(g, expected)
    with pytest.raises(TypeError, match="complex"):
        set_at(x, 0, 1j)
    with pytest.raises(ValueError, match="broadcast"):
        set_at(x, slice(0, 2), np.ones(3))


# ---- conversions of traced values into plain arrays ------------------------------------

def test_traced_writes_into_a_plain_buffer_match_like_fix_other_plain_arrays_raise():
    """An array made with np.zeros inside the function takes traced writes (a scalar,
    a slice, +=): values, derivatives and batches are plain NumPy's and the like= fix's.
    An array made otherwise (np.array of numbers) still cannot hold a traced value: the
    error names like=x."""
    def scalar_write(x):
        a = np.zeros(3)
        a[0] = x[0]
        return a

    def slice_write(x):
        a = np.zeros(3)
        a[:2] = x[:2]
        return a

    def plain(x):  # the program written the plain way
        a = np.zeros(3)
        a[0] = x[0]
        a[1:] = x[1:] * 2.0
        return a

    def fixed(x):  # the fix the old refusal named
        a = np.zeros(3, like=x)
        a[0] = x[0]
        a[1:] = x[1:] * 2.0
        return a

    for f in (scalar_write, slice_write, plain, fixed):
        run_checks(f, arr(3))
    xs = arr(2, 3)
    for f in (scalar_write, slice_write, plain, fixed):
        np.testing.assert_array_equal(npfunc.vmap(f)(xs), np.stack([f(v) for v in xs]))
        jitted = npfunc.jit(f)
        np.testing.assert_array_equal(jitted(xs[0]), f(xs[0]))  # recording
        np.testing.assert_array_equal(jitted(xs[1]), f(xs[1]))  # replay with new values
    x = arr(3)
    np.testing.assert_array_equal(npfunc.jacrev(plain)(x), npfunc.jacrev(fixed)(x))
    np.testing.assert_array_equal(npfunc.jacfwd(plain)(x), npfunc.jacfwd(fixed)(x))
    np.testing.assert_array_equal(npfunc.vmap(plain)(xs), npfunc.vmap(fixed)(xs))
    g = npfunc.grad(lambda x: (_iadd(np.zeros(3), x) * x).sum())(x)  # a += x into a plain buffer
    np.testing.assert_allclose(g, 2 * x)

    def other_scalar_write(x):
        a = np.array([0.0, 0.0, 0.0])  # made otherwise: a plain array, not a buffer
        a[0] = x[0]
        return a

    def other_slice_write(x):
        a = np.array([0.0, 0.0, 0.0])
        a[:2] = x[:2]
        return a

    with pytest.raises(ConcretizationError, match=r"create the array traced.*like=x"):
        npfunc.grad(lambda x: other_slice_write(x).sum())(arr(3))
    with pytest.raises(BatchedConversionError, match=r"create the array traced.*like=x"):
        npfunc.vmap(other_slice_write)(arr(2, 3))
    # A 0-d traced value: NumPy replaces our error by its own ValueError ("setting an array element
    # with a sequence"), keeping ours as the cause; the transform raises ours again.
    with pytest.raises(ConcretizationError, match=r"create the array traced.*like=x") as info:
        npfunc.grad(lambda x: other_scalar_write(x).sum())(arr(3))
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(UnsupportedOperationError, match="out="):
        npfunc.grad(lambda x: _iadd(np.array([0.0, 0.0, 0.0]), x).sum())(arr(3))


def test_np_array_of_traced_values_works_and_imported_names_point_to_stack():
    def f(x):
        return np.array([x[0], 2 * x[1], 1.0]) * np.asarray([x[1], x[0], x[0] * x[1]])

    run_checks(f, arr(3))
    xs = arr(2, 3)
    np.testing.assert_array_equal(npfunc.vmap(f)(xs), np.stack([f(v) for v in xs]))
    np.testing.assert_array_equal(npfunc.jit(f)(xs[0]), f(xs[0]))
    with pytest.raises(ConcretizationError, match=r"from numpy import array.*np\.stack"):
        npfunc.grad(lambda x: _numpy_array([x[0], x[1]]).sum())(arr(3))


_numpy_array = np.array  # as `from numpy import array` binds it: NumPy's own function


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_np_array_copy_modes_of_a_traced_array_are_numpys(transform):
    """copy=True copies; copy=None (or np._CopyMode.IF_NEEDED, as array-API code passes it)
    returns the array itself, a view of it for ndmin, a copy for another dtype or order;
    copy=False raises where a copy is needed."""
    def f(x):
        y = x * 1.0
        np.array(y, copy=None)[0] = 5.0                       # y itself
        np.array(y, copy=np._CopyMode.IF_NEEDED)[1] *= 2.0    # y itself
        np.array(y, copy=None, ndmin=2)[0, 2] = -1.0          # a view of y
        np.array(y, copy=True)[0] = 0.0                       # a copy
        np.array(y, dtype=np.float32, copy=None)[0] = 0.0     # a copy: another dtype
        np.asarray(y.reshape(2, 2).T, order="C")[0, 0] = 0.0  # a copy: another order
        return y * x

    x = np.array([1.0, 2.0, 3.0, 4.0])
    want = f(x.copy())
    if transform == "vmap":
        np.testing.assert_array_equal(npfunc.vmap(f)(np.stack([x, x]))[1], want)
    elif transform == "jit":
        np.testing.assert_array_equal(npfunc.jit(f)(x.copy()), want)
    else:
        np.testing.assert_allclose(npfunc.grad(lambda v: f(v).sum())(x.copy()), [5.0, 8.0, -1.0, 8.0])
    for bad in (lambda y: np.array(y[0], copy=False), lambda y: np.array(y, dtype=np.float32, copy=False),
                lambda y: np.array([y[0], y[1]], copy=False)):
        with pytest.raises(ValueError, match="copy"):
            bad(x)
        with pytest.raises(ValueError, match="copy"):
            {"grad": lambda g: npfunc.grad(lambda v: g(v).sum()), "jit": npfunc.jit,
             "vmap": npfunc.vmap}[transform](bad)(np.stack([x, x]) if transform == "vmap" else x)


def test_npfunc_array_builds_from_traced_values():
    def f(x):
        return np_array([[x[0], 2.0 * x[1]], [x[0] * x[1], 1.0]])

    x = arr(2)
    expected = np.array([[x[0], 2 * x[1]], [x[0] * x[1], 1.0]])
    run_checks(f, x)
    np.testing.assert_array_equal(npfunc.vmap(f)(np.stack([x, x]))[1], expected)
    out = npfunc.vmap(lambda x: np_array([x[0], 1], dtype=np.float32, ndmin=2))(arr(3, 2))
    assert out.shape == (3, 1, 2) and out.dtype == np.float32
    # promotion as in np.array: a float32 value and a Python float give float64
    assert npfunc.vmap(lambda x: np_array([x[0], 1.0]))(arr(2, 2, dtype=np.float32)).dtype == np.float64
    assert npfunc.vmap(lambda x: np_array((x[0], x[1])))(arr(2, 2, dtype=np.float32)).dtype == np.float32
    np.testing.assert_array_equal(np_array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="inhomogeneous"):
        npfunc.grad(lambda x: np_array([x, x[:1]]).sum())(arr(2))


# ---- sorting -------------------------------------------------------------------------------

@pytest.mark.parametrize("axis,kind", [(-1, None), (0, "stable"), (None, None), (1, "quicksort")])
def test_sort(axis, kind):
    run_checks(lambda x: np.sort(x, axis=axis, kind=kind), arr(3, 4))


def test_sort_ties_follow_the_stable_order():
    x = np.array([2.0, 1.0, 2.0, 1.0])
    out, pullback = npfunc.vjp(np.sort, x)
    (g,) = pullback(np.array([10.0, 20.0, 30.0, 40.0]))
    np.testing.assert_array_equal(out, [1, 1, 2, 2])
    np.testing.assert_array_equal(g, [30, 10, 40, 20])
    _, t = npfunc.jvp(np.sort, (x,), (np.array([1.0, 2.0, 3.0, 4.0]),))
    np.testing.assert_array_equal(t, [2, 4, 1, 3])


def test_invert_permutation_along_an_axis():
    from npfunc.primitives.sorting import _invert

    for axis in (0, 1, 2):
        perm = np.argsort(arr(3, 4, 5), axis=axis)
        np.testing.assert_array_equal(_invert.bind(perm, axis=axis), np.argsort(perm, axis=axis))
        perms = np.stack([perm, np.flip(perm, axis)])
        got = npfunc.vmap(lambda p: _invert.bind(p, axis=axis), in_dims=1, out_dims=2)(np.moveaxis(perms, 0, 1))
        np.testing.assert_array_equal(np.moveaxis(got, 2, 0), np.argsort(perms, axis=axis + 1))


def test_sort_based_code_differentiates():
    def median_of_three(x):
        return np.sort(x, axis=-1)[..., 1]

    run_checks(median_of_three, arr(4, 3))


def test_argsort_searchsorted_unique_values():
    x = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, 5.0, 5.0, -1.0]])

    def f(x):
        a = np.argsort(x, axis=-1, stable=True)
        s = np.searchsorted(np.sort(x[0]), x[1], side="right")
        u, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
        return a, s, u, idx, inv, cnt

    expected = (np.argsort(x, axis=-1, stable=True), np.searchsorted(np.sort(x[0]), x[1], side="right"),
                *np.unique(x, return_index=True, return_inverse=True, return_counts=True))
    for got, want in zip(_under_grad(f, x), expected):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    # the unique values carry their first occurrences' tangents
    _, t = npfunc.jvp(lambda x: np.unique(x) * x.sum(), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, x.sum() + np.unique(x) * x.size)


def _under_grad(f, x):
    results = []

    def loss(x):
        results.extend(np.asarray(npfunc.stop_gradient(r)) for r in f(x))  # (np.unique's values are traced)
        return x.sum()

    npfunc.grad(loss)(x)
    return results


def test_searchsorted_vmap_with_batched_sorted_array():
    a = np.sort(arr(4, 6), axis=1)
    a[:, 2] = a[:, 3]  # ties inside a
    a[1, -1] = np.nan
    v = np.concatenate([a[:, [3, 0]], arr(4, 2), np.full((4, 1), np.nan)], axis=1)
    for side in ("left", "right"):
        got = npfunc.vmap(lambda a, v: np.searchsorted(a, v, side=side))(a, v)
        np.testing.assert_array_equal(got, [np.searchsorted(r, w, side=side) for r, w in zip(a, v)])
    got = npfunc.vmap(lambda v: np.searchsorted(a[0], v, sorter=np.arange(6)))(v)
    np.testing.assert_array_equal(got, [np.searchsorted(a[0], w) for w in v])


def test_unique_under_vmap():
    xs = np.array([[3, 1, 3, 2], [0, 0, 5, 7]])
    vals, inv = npfunc.vmap(lambda x: np.unique(x, return_inverse=True))(xs)
    np.testing.assert_array_equal(vals, [np.unique(r) for r in xs])
    np.testing.assert_array_equal(inv, [np.unique(r, return_inverse=True)[1] for r in xs])
    with pytest.raises(UnsupportedOperationError, match="different numbers of unique values"):
        npfunc.vmap(np.unique)(np.array([[1, 1], [1, 2]]))
    with pytest.raises(UnsupportedOperationError, match="axis"):
        npfunc.vmap(lambda x: np.unique(x, axis=0))(np.ones((2, 3, 2)))
    np.testing.assert_array_equal(FUNCTIONS[np.unique](np.array([[1, 2], [1, 2], [0, 5]]), axis=0),
                                  [[0, 5], [1, 2]])
    assert not isinstance(FUNCTIONS[np.unique](np.array([1.0])), Tracer)


# ---- NumPy's in-place functions on traced arrays --------------------------------------------

def _inplace_cases():
    def put(x, v):
        y = _fresh(x, v)
        np.put(y, [0, 5, -1, 5], v)
        return y

    def put_wrap(x, v):
        y = _fresh(x, v)
        np.put(y, [13, -15], v[:1], mode="wrap")
        return y

    def put_along(x, v):
        y = _fresh(x, v)
        np.put_along_axis(y, np.array([[1, 1], [0, 2], [3, 0]]), v[:2], axis=1)
        return y

    def put_along_flat(x, v):
        y = _fresh(x, v)
        np.put_along_axis(y, np.array([4, 0]), v[:2], axis=None)
        return y

    def fill(x, v):
        y = _fresh(x, v)
        np.fill_diagonal(y, v[:2])
        return y

    def copyto(x, v):
        y = _fresh(x, v)
        np.copyto(y, v[:4], where=x > 0)
        return y

    def list_of_values(x, v):
        y = _fresh(x, v)
        y[0, :2] = [v[0], 2.0 * v[1]]
        return y

    def add_at_repeats(x, v):
        y = _fresh(x, v)
        np.add.at(y, (np.array([0, 2, 0, 0]), np.array([1, 1, 1, 3])), v)
        return y

    def subtract_at_rows(x, v):
        y = _fresh(x, v)
        np.subtract.at(y, [1, 1, -1], v)  # each row update is v, broadcast
        return y

    def add_at_through_a_view(x, v):
        y = _fresh(x, v)
        np.add.at(y[1:, ::2], [0, 0, 1], v[:2] * 2.0)  # y itself is updated
        return y

    return [put, put_wrap, put_along, put_along_flat, fill, copyto, list_of_values, add_at_repeats,
            subtract_at_rows, add_at_through_a_view]


@pytest.mark.parametrize("fn", _inplace_cases(), ids=lambda f: f.__name__)
def test_numpy_inplace_functions(fn):
    run_checks(fn, arr(3, 4), arr(4), second_order=False)


def test_ufunc_at_follows_numpy():
    """np.add.at / np.subtract.at accumulate repeated indices, cast as NumPy does
    (each value cast to the target's dtype, then added), and raise NumPy's errors;
    into a buffer made with np.zeros they follow NumPy under grad, vmap and jit;
    other ufuncs' at and a plain target made otherwise refuse, naming the fix."""
    ints = np.arange(6).reshape(2, 3)

    def update(a, v):
        a = a.copy() if not isinstance(a, Tracer) else a * 1
        np.add.at(a, ([0, 0, 1], [2, 2, 0]), v)
        return a

    for v in (3, np.array([7, -2, 3], dtype=np.int8), np.array([1.5, -2.25, 3.75], dtype=np.float32)):
        for a in (ints, ints.astype(np.float32)):
            if a.dtype.kind == "i" and np.asarray(v).dtype.kind == "f":
                continue
            want = a.copy()
            np.add.at(want, ([0, 0, 1], [2, 2, 0]), v)
            got = npfunc.vmap(lambda a: update(a, v))(np.stack([a, a]))
            np.testing.assert_array_equal(got, [want, want])
            assert got.dtype == want.dtype
    # NumPy truncates into an integer array after each addition: order-dependent, refused
    with pytest.raises(UnsupportedOperationError, match="truncates"):
        npfunc.vmap(lambda a: update(a, np.array([1.7, -2.2, 3.9])))(np.stack([ints, ints]))
    with pytest.raises(ValueError, match="second operand"):
        npfunc.grad(lambda x: (np.add.at(x, [0]), x.sum())[1])(arr(3))
    with pytest.raises(UnsupportedOperationError, match=r"np\.multiply\.at.*add_at"):
        npfunc.grad(lambda x: (np.multiply.at(x * 1.0, [0], 2.0), x.sum())[1])(arr(3))
    with pytest.raises(IndexError):
        npfunc.grad(lambda x: (np.add.at(x * 1.0, [5], 2.0), x.sum())[1])(arr(3))

    def into_buffer(v):  # a buffer made with np.zeros takes the traced accumulation
        out = np.zeros(3)
        np.add.at(out, [0, 0, 2], v * v[::-1])
        return out

    def into_buffer_fixed(v):
        out = np.zeros(3, like=v)
        np.add.at(out, [0, 0, 2], v * v[::-1])
        return out

    run_checks(into_buffer, arr(3))
    v = arr(3)
    np.testing.assert_array_equal(npfunc.jacrev(into_buffer)(v), npfunc.jacrev(into_buffer_fixed)(v))
    vs = arr(3, 3)
    np.testing.assert_array_equal(npfunc.vmap(into_buffer)(vs), np.stack([into_buffer(r) for r in vs]))
    jitted = npfunc.jit(into_buffer)
    np.testing.assert_array_equal(jitted(vs[0]), into_buffer(vs[0]))  # recording
    np.testing.assert_array_equal(jitted(vs[1]), into_buffer(vs[1]))  # replay with new values

    def into_plain(v):
        out = np.array([0.0, 0.0, 0.0])  # made otherwise: a plain array, not a buffer
        np.add.at(out, [0, 0], v)
        return out.sum()

    with pytest.raises(UnsupportedOperationError,
                       match=r"plain ndarray.*npfunc\.numpy\.add_at.*create the array traced.*like=x"):
        npfunc.grad(into_plain)(arr(2))


def test_np_put_into_a_plain_buffer_matches_like_fix_other_plain_arrays_refuse():
    """np.put of traced values into np.zeros(4) made in the function: NumPy's values,
    derivatives and batches, as the like= fix; into an array made otherwise (np.array of
    numbers) it is a clear error naming set_at and like=x."""
    def f(v):
        a = np.zeros(4)
        np.put(a, [0, 1], v)
        return a

    def fixed(v):
        a = np.zeros(4, like=v)
        np.put(a, [0, 1], v)
        return a

    run_checks(f, arr(2))
    v = arr(2)
    np.testing.assert_array_equal(npfunc.jacrev(f)(v), npfunc.jacrev(fixed)(v))
    np.testing.assert_array_equal(npfunc.jacfwd(f)(v), npfunc.jacfwd(fixed)(v))
    vs = arr(3, 2)
    np.testing.assert_array_equal(npfunc.vmap(f)(vs), np.stack([f(r) for r in vs]))
    jitted = npfunc.jit(f)
    np.testing.assert_array_equal(jitted(vs[0]), f(vs[0]))  # recording
    np.testing.assert_array_equal(jitted(vs[1]), f(vs[1]))  # replay with new values

    def other(v):
        a = np.array([0.0, 0.0, 0.0, 0.0])  # made otherwise: a plain array, not a buffer
        np.put(a, [0, 1], v)
        return a

    with pytest.raises(UnsupportedOperationError, match="plain ndarray.*set_at.*create the array traced.*like=x"):
        npfunc.grad(lambda v: other(v).sum())(arr(2))


def test_array_api_aliases():
    run_checks(lambda x: np.permute_dims(x, (2, 0, 1)), arr(2, 3, 4))
    run_checks(np.matrix_transpose, arr(2, 3, 4))
    run_checks(lambda x: np.unstack(x, axis=1), arr(2, 3))
    xs = np.array([[3, 1, 3], [2, 2, 0]])
    for fn in (np.unique_values, np.unique_counts, np.unique_inverse, np.unique_all):
        got = npfunc.vmap(fn)(xs)
        for k, row in enumerate(xs):
            want = fn(row)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                np.testing.assert_array_equal(g[k], w)


def test_npfunc_numpy_exposes_array_building_and_functional_updates():
    import npfunc
    import npfunc.numpy as jnp

    x = np.array([1.0, 2.0])
    g = npfunc.grad(lambda x: jnp.array([[x[0], 2.0], [x[1] * x[0], 0.0]]).sum())(x)
    np.testing.assert_allclose(g, [1.0 + x[1], x[0]])
    g = npfunc.grad(lambda x: (jnp.set_at(np.zeros(3), 1, x[0]) * 3.0).sum())(x)
    np.testing.assert_allclose(g, [3.0, 0.0])
    np.testing.assert_allclose(jnp.add_at(np.zeros(3), np.array([0, 0]), np.ones(2)), [2.0, 0.0, 0.0])
