"""Regression tests for what the differential tests (npfunc.testing.difftest) found.

Each test is the failing program reduced by hand to a natural one, checked
under the transforms it failed under against plain NumPy.  Failures not
fixed yet are strict xfails whose reason says what goes wrong and where: a
fix turns them into failures, and the lead removes the mark (and the
matching entry of ``npfunc.testing.difftest.KNOWN_ISSUES``).
"""
import numpy as np
import pytest

import npfunc
from npfunc.errors import NpfuncError


def _plain(f, *args):
    return f(*(np.array(a, copy=True) for a in args))


def _same(got, want):
    """Equal values, dtypes, and the ndarray / NumPy-scalar distinction."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)


def _under_transforms(f, x):
    """f's value at x under vjp, jvp, functionalize and (row by row) vmap equals NumPy's."""
    want = _plain(f, x)
    _same(npfunc.vjp(f, x.copy())[0], want)
    _same(npfunc.jvp(f, (x.copy(),), (np.ones_like(x),))[0], want)
    _same(npfunc.functionalize(f)(x.copy()), want)
    xs = np.stack([x, x + 0.25])
    got = npfunc.vmap(f)(xs.copy())
    rows = [_plain(f, row) for row in xs]
    got = got if isinstance(got, tuple) else (got,)
    rows = [r if isinstance(r, tuple) else (r,) for r in rows]
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g, np.stack([r[k] for r in rows]))


X = np.array([0.7, -0.4, 1.3])


# ---- fixed -------------------------------------------------------------------------------------

def test_cast_of_a_0d_value_to_an_integer_dtype_under_jvp():
    """Was an AttributeError: the cast drops the derivative and gives a plain
    0-d ndarray, which astype then tried to mark as traced."""
    f = lambda x: (x.real.astype(np.int16), x.astype(bool), x * 2.0)  # noqa: E731
    x = np.array(0.65)
    _same(npfunc.jvp(f, (x,), (np.array(1.0),))[0], f(x))
    _same(npfunc.vjp(f, x)[0], f(x))


def test_a_row_of_a_1d_batch_stays_a_scalar_under_an_inner_grad():
    """vmap over a 1-d array hands each row as a NumPy scalar (as X[i] is), so
    ``x /= 2`` rebinds x; grad inside vmap used to turn it into an array that
    the update changed in place, giving 0.5 instead of 1."""
    def keep_input(x):
        y = x
        x /= 2.0
        return y

    X1 = np.array([1.0, 2.0, 3.0])
    want = np.stack([npfunc.grad(keep_input)(X1[i]) for i in range(3)])
    np.testing.assert_array_equal(npfunc.vmap(npfunc.grad(keep_input))(X1), want)
    np.testing.assert_array_equal(want, [1.0, 1.0, 1.0])


def test_writes_into_a_view_of_a_numpy_scalar_leave_the_scalar_alone():
    """What NumPy derives from a scalar is a new value: ``t += 1`` on
    ``np.transpose(s)``, ``s.reshape(())``, ``s[...]`` or ``np.ravel(s)``
    used to update ``s`` through an alias."""
    def transposed(x):
        s = x[0]
        t = np.transpose(s)
        t += 1.0
        return s, t

    def reshaped(x):
        s = x[0]
        t = s.reshape(())
        t += 1.0
        return s, t

    def ellipsis(x):
        s = x[0]
        t = s[...]  # a new 0-d array
        t += 1.0
        return s, t

    def raveled(x):
        s = x.sum()
        r = np.ravel(s)
        r[0] = 5.0
        return s, r

    def broadcast(x):
        s = x[0]
        b = np.broadcast_to(s, (2,))  # read-only, reads the scalar's old value
        s += 1.0
        return b, s

    for f in (transposed, reshaped, ellipsis, raveled, broadcast):
        _under_transforms(f, X)


def test_a_0d_row_raveled_and_written_under_vmap():
    """``np.ravel`` of a scalar row is a new array: writing into it leaves the row alone."""
    def f(x):
        a = np.ravel(x)
        a[0] = np.tanh(a[-1])
        return a + 2.0, x

    xs = np.array([-0.6, 0.3, 1.1])
    got = npfunc.vmap(f)(xs.copy())
    rows = [f(xs[i]) for i in range(3)]
    for k in range(2):
        np.testing.assert_array_equal(got[k], np.stack([r[k] for r in rows]))


@pytest.mark.parametrize("make", [
    pytest.param(lambda x: np.asarray(x[0]), id="asarray of a scalar"),
    pytest.param(lambda x: np.asanyarray(x[0]), id="asanyarray of a scalar"),
    pytest.param(lambda x: np.array(x[0], dtype=np.float32), id="array of a scalar with a dtype"),
    pytest.param(lambda x: np.where(x[0] > 0, x[0], x[1]), id="where of scalars"),
    pytest.param(lambda x: np.tensordot(x, x, axes=1), id="tensordot of vectors"),
    pytest.param(lambda x: np.roll(x[0], 1), id="roll of a scalar"),
    pytest.param(lambda x: np.cross(x[:2], x[1:]), id="cross of 2-vectors"),
    pytest.param(lambda x: np.select([x[0] > 0], [x[1]], 0.0), id="select of scalars"),
])
@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
def test_0d_arrays_numpy_returns_are_updated_in_place(make):
    """NumPy returns these 0-d results as arrays, so ``a += 1`` updates the
    array ``b`` shares; npfunc had NumPy scalars, and ``a += 1`` rebound
    ``a``: b kept the old value, silently."""
    def f(x):
        a = make(x)
        b = a
        a += 1.0
        return b

    def filled(x):
        a = make(x)
        a.fill(0.25)
        return a

    _under_transforms(f, X)
    _under_transforms(filled, X)


def test_fill_on_a_numpy_scalar_refuses():
    """NumPy's scalars ignore ``fill``; npfunc refuses (an NpfuncError) rather
    than ignore it where it might have a scalar NumPy does not."""
    def f(x):
        s = x.sum()
        s.fill(0.0)
        return s

    assert f(X.copy()) == X.sum()
    with pytest.raises(NpfuncError, match="fill"):
        npfunc.grad(f)(X.copy())


def test_library_where_keeps_numpy_scalars_for_medians():
    """np.median and np.quantile give NumPy scalars, although np.where (which
    they use) gives 0-d arrays."""
    for f in (np.median, lambda v: np.quantile(v, 0.3), lambda v: np.nanpercentile(v, 40)):
        seen = {}

        def g(x):
            seen["r"] = f(x)
            return seen["r"]

        npfunc.vjp(g, X.copy())
        from npfunc.primitives.indexing.aliasing import is_scalar

        assert is_scalar(seen["r"])


def test_repeated_index_update_of_an_empty_view_under_grad():
    """The VJP of a gather with an integer index into an empty axis reshaped its
    cotangent with -1 next to a 0 (a ValueError from NumPy)."""
    def f(x):
        v = x[:, 1:]  # shape (3, 0)
        v[[0, 0, -1]] += 0.75
        return x * np.sin(x), v

    x = np.array([[1.4], [0.37], [0.8]])
    _under_transforms(f, x)
    np.testing.assert_allclose(npfunc.grad(lambda z: f(z)[0].sum())(x), np.sin(x) + x * np.cos(x))


@pytest.mark.parametrize("fn", [
    lambda y: y.mean(dtype=np.int64), lambda y: y.mean(dtype=np.uint8), lambda y: y.var(dtype=np.int64),
    lambda y: np.var(y, ddof=1, dtype=np.int32, keepdims=True), lambda y: y.std(dtype=np.int64),
    lambda y: np.nanstd(y, dtype=np.int64), lambda y: np.mean(y.astype(float), dtype=np.int8)],
    ids=["mean int64", "mean uint8 (wraps)", "var int64", "var int32 ddof keepdims", "std int64",
         "nanstd int64", "mean of floats into int8"])
def test_integer_dtype_statistics_under_vmap(fn):
    """np.mean/var/std(..., dtype=<integer>) compute in that dtype and truncate
    (``np.var(bools, dtype=np.int64)`` is 0); the traced versions computed in
    float64 and returned float64 (0.222...)."""
    k = np.array([[3, -4, 7], [1, 2, 2], [True, True, False]], dtype=np.int8)
    want = np.stack([fn(row) for row in k])
    got = npfunc.vmap(fn)(k)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_integer_dtype_std_of_an_array_refuses_like_numpy():
    k = np.array([[3, -4, 7], [1, 2, 2]], dtype=np.int8)
    with pytest.raises(TypeError, match="Cannot cast ufunc 'sqrt'"):
        np.std(k, axis=1, dtype=np.int64)
    with pytest.raises(TypeError, match="Cannot cast ufunc 'sqrt'"):
        npfunc.vmap(lambda y: np.std(y, dtype=np.int64, keepdims=True))(k)


# ---- not fixed (the lead's or another helper's area) --------------------------------------------

def test_jit_arguments_that_are_views_of_each_other_refuse_on_every_call():
    """jit(f)(x, x[::-1]) with f updating x in place: the recording treats the
    arguments as independent arrays, so the first call used to return y's old
    values; it now refuses as every replay does, before writing anything."""
    def f(x, y):
        x += 2.0
        return -y

    a = np.array([1.5, 0.6, 0.9, 1.4])
    before = a.copy()
    jf = npfunc.jit(f)
    for _ in range(2):
        with pytest.raises(NpfuncError, match="share memory"):
            jf(a, a[::-1])
        np.testing.assert_array_equal(a, before)
    np.testing.assert_array_equal(jf(a, a.copy()[::-1]), -before[::-1])  # independent arrays work
    b = np.stack([a, 2 * a])  # under vmap too: the traced arguments are views of one array
    with pytest.raises(NpfuncError, match="share memory"):
        npfunc.vmap(jf)(b, b[:, ::-1])


def test_jit_0d_array_arguments_are_arrays():
    """Fixed on main by e5e6347 (jit marks its inputs): was a TypeError on x[...] = v."""
    def f(x):
        old = x.copy()
        x[...] = 0.5
        np.add(x, old, out=x)
        return x * 2.0

    x = np.array(1.25)
    a, b = x.copy(), x.copy()
    np.testing.assert_array_equal(npfunc.jit(f)(a), f(b))
    np.testing.assert_array_equal(a, b)


def test_jit_copy_of_a_view_of_an_argument_is_independent():
    """Fixed on main by e5e6347: jit returned the written values (the copy was elided)."""
    def f(x):
        v = x[::-1]
        old = v.copy()
        v[...] = 0.0
        return old

    x = np.array([1.1, -0.9, -1.4, -0.3])
    np.testing.assert_array_equal(npfunc.jit(f)(x.copy()), f(x.copy()))


def test_i0_of_a_scalar_is_an_array():
    def f(x):
        a = np.i0(x[0])
        b = a
        a += 1.0
        return b

    _under_transforms(f, X)


def test_weighted_quantile_of_a_vector_is_an_array():
    def f(x):
        a = np.quantile(x, 0.5, weights=np.ones(3), method="inverted_cdf")
        b = a
        a += 1.0
        return b

    _under_transforms(f, X)


@pytest.mark.parametrize("copy", [
    lambda x: x.flatten(), lambda x: np.roll(x, 0), lambda x: np.pad(x, 0), lambda x: np.repeat(x, 1),
    lambda x: np.stack([x])[0]], ids=["flatten", "roll 0", "pad 0", "repeat 1", "stack"])
def test_jit_copies_that_change_nothing_are_copies(copy):
    def f(x):
        old = copy(x)
        view = old[...]  # (returning ``old`` itself happens to work)
        x[...] = 0.0
        return view

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(npfunc.jit(f)(x.copy()), f(x.copy()))


def test_conj_method_of_a_real_array_is_the_array_itself():
    """NumPy's x.conj() returns x itself for a real x (a later write shows through
    both); npfunc returned a copy, so the value differed silently."""
    def f(x):
        a = x.conj()
        x[...] = 0.0
        return a

    _under_transforms(f, X)
    np.testing.assert_array_equal(npfunc.jit(f)(X.copy()), f(X.copy()))


def test_jit_plain_array_changed_after_its_use():
    def f(x):
        y = np.array([0.98, 0.5])
        z = x + y
        y.fill(0.25)
        return z

    jf = npfunc.jit(f)
    np.testing.assert_array_equal(jf(np.zeros(2)), f(np.zeros(2)))
    np.testing.assert_array_equal(jf(np.ones(2)), f(np.ones(2)))


def test_jit_reads_a_closed_over_array_once():
    """jit's documented rule (as JAX's): a plain array the function closes over is
    read when the function is recorded; the function's writes into it happen
    once, so a replay computes with the recorded contents, where the plain
    function would read its own earlier writes."""
    y = np.array([1.0, 2.0])

    def f(x):
        z = x * y
        y[...] += 1.0  # a write into a closed-over array: a side effect
        return z

    jf = npfunc.jit(f)
    np.testing.assert_array_equal(jf(np.ones(2)), [1.0, 2.0])
    np.testing.assert_array_equal(y, [2.0, 3.0])      # the write happened, when recording
    np.testing.assert_array_equal(jf(np.ones(2)), [1.0, 2.0])  # the replay: recorded contents
    np.testing.assert_array_equal(y, [2.0, 3.0])      # and no write
    jf.clear_cache()                                   # the documented way to read it again
    np.testing.assert_array_equal(jf(np.ones(2)), [2.0, 3.0])


def test_integer_cast_of_a_0d_array_updated_in_place_is_an_array():
    """Program 13:1061 (seed 13): after ``x += np.sin(x)`` the traced 0-d array's
    value is a NumPy scalar, and its cast to int8 came back as the scalar
    ``np.int8``, where NumPy's astype gives a 0-d array: ``a2[...] = 1`` raised
    TypeError.  It is now the array, under every transform."""
    def f(x):
        x += np.sin(x)
        a2 = x.astype(np.int8)
        a2[...] = 3
        return x * 2.0, a2, np.std(a2, axis=())

    x = np.array(-1.013, dtype=np.float32)
    want = f(x.copy())
    _same(npfunc.jvp(f, (x.copy(),), (np.ones_like(x),))[0], want)
    _same(npfunc.vjp(f, x.copy())[0], want)
    assert type(npfunc.jvp(f, (x.copy(),), (np.ones_like(x),))[0][1]) is np.ndarray
    g = npfunc.grad(lambda x: f(x)[0])(x.copy())
    np.testing.assert_allclose(g, 2.0 * (1.0 + np.cos(x)), rtol=1e-6)
    # writing the traced value itself into the plain integer array is refused, with the fix
    def g2(x):
        x += np.sin(x)
        a2 = x.astype(np.int8)
        a2[...] = x
        return x * 1.0
    with pytest.raises(npfunc.errors.ConcretizationError, match="like=x"):
        npfunc.grad(g2)(x.copy())


def test_plain_array_written_after_copyto_into_a_traced_array():
    """Program 16:455 (seed 16): ``np.copyto(x, a1)`` with a plain ``a1`` (floor
    carries no derivative) made the traced ``x`` hold ``a1``'s memory, so the
    later ``a1[...] = np.cos(a1)`` changed ``x`` too, under jvp and vjp, silently."""
    def f(x):
        a1 = np.floor(x)
        np.copyto(x, a1)
        a2 = a1[...].copy()
        a1[...] = np.cos(a1)
        return a2, x * 1.0

    x = np.array([[0.08, 0.24, -1.29], [-0.014, 0.63, 0.71]])
    _under_transforms(f, x)


def test_plain_arrays_changed_after_use_keep_their_derivatives():
    """A reverse-mode tape keeps the constants a primitive used until the backward
    pass; a plain array the function changes afterwards (a reused work buffer) must
    not change the derivative (it did: the tape held the array itself)."""
    def reuse_buffer(x):
        buf = np.empty(2)
        total = 0.0
        for k in range(3):
            buf[...] = k + 1.0
            total = total + (x * buf).sum()
        return total

    def scaled_after_use(x):
        a = np.ones(2)
        y = np.sin(x) * a
        a *= 5.0
        return y.sum() + (a @ x)

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(npfunc.grad(reuse_buffer)(x), [6.0, 6.0])
    np.testing.assert_allclose(npfunc.grad(scaled_after_use)(x), np.cos(x) + 5.0)
    np.testing.assert_allclose(npfunc.jacrev(lambda x: np.atleast_1d(scaled_after_use(x)))(x)[0],
                               np.cos(x) + 5.0)
    _, pull = npfunc.vjp(scaled_after_use, x)
    np.testing.assert_allclose(pull(np.float64(1.0))[0], np.cos(x) + 5.0)
    # a read-only constant is kept as it is (no copy), and still gives the right derivative
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    W.flags.writeable = False
    np.testing.assert_allclose(npfunc.grad(lambda x: (W @ x).sum())(x), W.sum(axis=0))


def test_einsum_derivatives_over_empty_and_broadcast_indices():
    """Seed 22, program 595: the VJP of einsum('ij->j', y) for an empty y took the
    empty index for a length-1 one (and a summed index that another operand
    broadcasts with length 1 failed the same way): a reshape error."""
    y = np.zeros((0, 3))
    np.testing.assert_array_equal(npfunc.grad(lambda y: np.einsum("ij->j", y).sum())(y), y)
    x, w = np.arange(12.0).reshape(4, 3), np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(npfunc.grad(lambda x: np.einsum("ij,ij->j", x, w).sum())(x), np.repeat(w, 4, 0))
    np.testing.assert_allclose(npfunc.grad(lambda w: np.einsum("ij,ij->j", x, w).sum())(w), x.sum(0, keepdims=True))


def test_jit_first_call_writes_back_values_recorded_as_views():
    """Seed 28, program 319: on jit's first (recording) call, an argument's new value
    recorded as a view of another argument (y gets x.flatten() of a 1-d x, then x is
    written) was written back after that argument, so y received x's new values;
    later calls were right."""
    def f(x, y):
        a = x.flatten()
        x[...] = np.cos(x)
        np.copyto(y, a)
        return y * 1.0

    jf = npfunc.jit(f)
    for _ in range(2):  # the recording call, then a replay
        x, y = np.array([0.7, -0.2, 1.2]), np.zeros(3)
        xp, yp = x.copy(), y.copy()
        want = f(xp, yp)
        np.testing.assert_array_equal(jf(x, y), want)
        np.testing.assert_array_equal(y, yp)
        np.testing.assert_array_equal(x, xp)
