"""Arrays made with np.zeros & co. inside a transformed function take traced writes
(npfunc.core.pending): preallocated buffers, written the way scientists write them.

Each program is compared with plain NumPy under jit (recording and replay with new
values), vmap (against a loop) and the derivative transforms (against five-point
differences); a buffer that only ever holds plain values is NumPy's array in every
respect; what cannot follow NumPy is refused, naming the fix.
"""
from __future__ import annotations

import numpy as np
import pytest

import npfunc
from natural_checks import assert_deriv, assert_same, fd
from npfunc.errors import NpfuncError

rng = np.random.default_rng(7)


# ---- natural programs ---------------------------------------------------------------------

def euler_trajectory(k):
    """Damped oscillator stepped by explicit Euler into a preallocated history."""
    n_steps, dt = 20, 0.05
    traj = np.zeros((n_steps + 1, 2))
    traj[0] = [1.0, 0.0]
    for i in range(n_steps):
        x, v = traj[i]
        traj[i + 1, 0] = x + dt * v
        traj[i + 1, 1] = v + dt * (-k[0] * x - k[1] * v)
    return traj[:, 0] @ traj[:, 0]


def truss_compliance(areas):
    """Three-bar truss: element stiffness matrices assembled into K with np.ix_."""
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.8]])
    elements = [(0, 1), (1, 2), (0, 2)]
    K = np.zeros((6, 6))
    for e, (i, j) in enumerate(elements):
        d = nodes[j] - nodes[i]
        L = np.sqrt(d @ d)
        c, s = d / L
        k = areas[e] / L * np.array([[c * c, c * s], [c * s, s * s]])
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        K[np.ix_(dofs, dofs)] += np.block([[k, -k], [-k, k]])
    free = [4, 5]
    f = np.array([0.0, -1.0])
    u = np.linalg.solve(K[np.ix_(free, free)], f)
    return f @ u


def rotation_about(w):
    """Rodrigues' formula with the skew matrix filled into np.zeros((3, 3))."""
    theta = np.linalg.norm(w)
    kx = np.zeros((3, 3))
    kx[0, 1], kx[0, 2] = -w[2], w[1]
    kx[1, 0], kx[1, 2] = w[2], -w[0]
    kx[2, 0], kx[2, 1] = -w[1], w[0]
    kx /= theta
    R = np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx
    return R @ np.array([1.0, 2.0, 3.0])


def homogeneous_transform(q):
    """A planar pose as a 3x3 matrix: np.eye(3) with its blocks written."""
    T = np.eye(3)
    c, s = np.cos(q[2]), np.sin(q[2])
    T[:2, :2] = [[c, -s], [s, c]]
    T[:2, 2] = q[:2]
    return T @ np.array([0.5, 0.2, 1.0])


def running_mean_history(x):
    """Welford's running mean, logged into a NaN-initialised history."""
    hist = np.full(x.size, np.nan)
    mean = 0.0
    for i, xi in enumerate(x):
        mean = mean + (xi - mean) / (i + 1)
        hist[i] = mean
    return hist


def histogram_density(w):
    """Weighted counts with np.add.at into np.zeros (the bins from plain data)."""
    bins = np.array([0, 2, 1, 2, 0, 1, 2])
    counts = np.zeros(3)
    np.add.at(counts, bins, w)
    return counts / counts.sum()


def image_accumulate(a):
    """An image made by accumulating blobs in place: img = np.zeros(..); img += ..."""
    yy, xx = np.mgrid[0:5, 0:6]
    img = np.zeros((5, 6))
    for k in range(2):
        img += a[k] * np.exp(-((xx - 2.0 * k - 1) ** 2 + (yy - 2.0) ** 2) / 2.0)
    return img


def rows_through_iteration(c):
    """Rows of a preallocated Vandermonde-like matrix written through `for row in M`."""
    M = np.empty((3, 4))
    for p, row in enumerate(M):
        row[:] = c ** p
    return M.sum(axis=0)


def view_written_before_root(x):
    """A row view taken first, written with traced values: the matrix sees the write."""
    M = np.zeros((2, 3))
    top = M[0]
    top[:] = x
    M[1] = 2.0 * M[0]
    return M


def float32_buffer(x):
    """A float32 buffer keeps its dtype when float64 values are written into it."""
    out = np.empty(x.shape, dtype=np.float32)
    out[:] = np.sin(x)
    return out * 2


def copyto_and_fill_diagonal(x):
    A = np.zeros((3, 3))
    np.fill_diagonal(A, x)
    B = np.empty((3, 3))
    np.copyto(B, A @ A)
    C = np.zeros(3)
    np.multiply(x, x, out=C)
    return B.sum(axis=1) + C


def newton_on_plain_start(p):
    """Newton's method for x**3 = p on a plain start that is updated in place."""
    z = np.ones(2)
    for _ in range(6):
        F = z ** 3 - p
        J = np.diag(3 * z ** 2)
        z -= np.linalg.solve(J, F)
    return z


PROGRAMS = [
    (euler_trajectory, np.array([4.0, 0.3])),
    (truss_compliance, np.array([1.0, 0.7, 1.3])),
    (rotation_about, np.array([0.3, -0.2, 0.5])),
    (homogeneous_transform, np.array([0.4, -0.1, 0.6])),
    (running_mean_history, np.array([0.5, 1.5, -0.2, 0.9])),
    (histogram_density, np.array([0.2, 0.5, 0.3, 0.9, 0.4, 0.7, 0.1])),
    (image_accumulate, np.array([1.0, 0.5])),
    (rows_through_iteration, np.array([0.5, 1.5, 2.0, -1.0])),
    (view_written_before_root, np.array([0.3, 0.6, 0.9])),
    (float32_buffer, np.array([0.3, 0.6, 0.9])),
    (copyto_and_fill_diagonal, np.array([0.3, 0.6, 0.9])),
    (newton_on_plain_start, np.array([2.0, 3.0])),
]
IDS = [f.__name__ for f, _ in PROGRAMS]


@pytest.mark.parametrize("f, x", PROGRAMS, ids=IDS)
def test_values_under_jit_and_vmap(f, x):
    want = f(x)
    jitted = npfunc.jit(f)
    assert_same(jitted(x), want)
    x2 = x * 1.1
    for _ in range(3):  # replays, with new values
        assert_same(jitted(x2), f(x2))
    X = np.stack([x, x2, 0.9 * x])
    assert_same(npfunc.vmap(f)(X), np.stack([f(r) for r in X]))
    assert_same(npfunc.vmap(f, in_dims=1)(X.T), np.stack([f(r) for r in X]))


@pytest.mark.parametrize("f, x", PROGRAMS, ids=IDS)
def test_derivatives(f, x):
    if f is float32_buffer:
        pytest.skip("float32 output: its derivative is float32's (checked in test_float32_buffer_derivative)")
    want = fd(f, x)
    for _ in range(2):
        assert_deriv(npfunc.jacrev(f)(x), want)
        assert_deriv(npfunc.jacfwd(f)(x), want)
    v = np.linspace(0.5, 1.0, x.size)
    _, tangent = npfunc.jvp(f, (x,), (v,))
    assert_deriv(tangent, want @ v)


@pytest.mark.parametrize("f, x", [(euler_trajectory, np.array([4.0, 0.3])),
                                  (truss_compliance, np.array([1.0, 0.7, 1.3]))], ids=["euler", "truss"])
def test_second_order_and_per_sample(f, x):
    H = fd(lambda y: fd(f, y), x)
    for _ in range(5):  # the taped Hessian compiles its pull-back after a few calls
        assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-4, atol=1e-6)
    v = np.array([0.3, -0.4, 0.2][:x.size])
    for _ in range(5):
        g, hv = npfunc.jvp(npfunc.grad(f), (x,), (v,))
        assert_deriv(hv, H @ v, rtol=1e-4, atol=1e-6)
    X = np.stack([x, 1.1 * x])
    assert_deriv(npfunc.vmap(npfunc.grad(f))(X), np.stack([fd(f, r) for r in X]))
    assert_deriv(npfunc.jit(npfunc.vmap(npfunc.grad(f)))(X), np.stack([fd(f, r) for r in X]))


def test_float32_buffer_derivative():
    """As for the same values computed without a buffer (np.sin(x).astype(np.float32) * 2)."""
    x = np.array([0.3, 0.6, 0.9])
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        J = jac(float32_buffer)(x)
        assert J.dtype == jac(lambda y: np.sin(y).astype(np.float32) * 2)(x).dtype
        np.testing.assert_allclose(J, np.diag(2 * np.cos(x)), rtol=1e-6)


def test_grad_of_a_scalar_program():
    def energy(q):
        pos = np.zeros((3, 2))
        for i in range(3):
            pos[i] = [np.cos(q[i]), np.sin(q[i])]
        d = pos[:, None, :] - pos[None, :, :]
        r2 = (d ** 2).sum(-1) + np.eye(3)
        return (1.0 / r2).sum()

    q = np.array([0.1, 1.2, 2.5])
    for _ in range(3):
        assert_deriv(npfunc.grad(energy)(q), fd(energy, q))
    def along(t):
        return energy(np.array([t, 1.2, 2.5]))

    second = fd(lambda t: fd(lambda s: along(s[0]), t), np.array([0.1])).item()
    for _ in range(5):  # grad(grad) of a 0-d input compiles its taped pull-back after a few calls
        assert_deriv(npfunc.grad(npfunc.grad(along))(0.1), second, rtol=1e-4)


# ---- a buffer that only holds plain values is NumPy's array ----------------------------------

def test_plain_buffers_behave_as_numpy_arrays():
    seen = {}

    def f(x):
        counts = np.zeros(3, dtype=np.int64)
        for j in [0, 2, 2, 1]:
            counts[j] += 1
        seen["isinstance"] = isinstance(counts, np.ndarray)
        seen["item"] = type(counts[0])
        seen["float"] = float(counts[2])
        seen["bool"] = bool(counts[1] > 0)
        seen["list"] = counts.tolist()
        seen["repr"] = repr(counts)
        seen["str"] = f"{counts}"
        seen["len"] = len(counts)
        seen["sum"] = type(counts.sum())
        seen["plain"] = type(counts * 2)
        seen["asarray"] = type(np.asarray(counts))
        seen["dtype"] = (counts / 2).dtype
        weights = np.ones(3)
        weights[counts.argmax()] = 2.0  # an index computed from the buffer's values
        return (x * weights).sum(), counts

    x = np.array([1.0, 2.0, 3.0])
    want_value, want_counts = f(x)
    expected = dict(seen)
    for transform in (npfunc.jit, npfunc.vmap, lambda g: npfunc.grad(g, has_aux=True)):
        seen.clear()
        arg = np.stack([x, x]) if transform is npfunc.vmap else x
        out = transform(f)(arg)
        assert seen == expected
        counts = out[1]
        assert type(counts) is np.ndarray and counts.dtype == np.int64
    assert expected["isinstance"] and expected["item"] is np.int64


def test_returned_buffer_is_a_new_ndarray_each_call():
    def f(x):
        out = np.zeros(3)
        out[0] = 1.0
        return x.sum(), out

    jitted = npfunc.jit(f)
    x = np.ones(2)
    a = jitted(x)[1]
    a[1] = 5.0  # the caller's array is theirs, as NumPy's would be
    b = jitted(x)[1]
    assert type(b) is np.ndarray
    np.testing.assert_array_equal(b, [1.0, 0.0, 0.0])


def test_only_calls_by_name_from_the_users_code_make_pending_arrays():
    types_seen = []

    def f(x):
        z = np.zeros  # a constructor reached through another name: NumPy's array
        types_seen.append(type(z(2)))
        types_seen.append(type(np.zeros(2)))
        rng = np.random.default_rng(0)  # compiled NumPy code calling np.zeros & co.
        return x * rng.standard_normal()

    npfunc.grad(lambda x: f(x).sum())(np.ones(2))
    assert types_seen[0] is np.ndarray
    assert types_seen[1] is not np.ndarray  # a pending array (isinstance says ndarray)
    assert isinstance(np.zeros(2), np.ndarray) and type(np.zeros(2)) is np.ndarray  # no transform running


# ---- what cannot follow NumPy is refused -------------------------------------------------------

@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_a_plain_view_taken_before_the_first_traced_write_is_refused(transform):
    def f(x):
        M = np.zeros((2, 2))
        MT = M.T  # a plain view: it could not see the write below
        M[0, 0] = x[0]
        return (M + MT).sum()

    T = {"grad": npfunc.grad, "jit": npfunc.jit, "vmap": npfunc.vmap}[transform]
    arg = np.ones((3, 2)) if transform == "vmap" else np.ones(2)
    with pytest.raises(NpfuncError, match="like=x"):
        T(f)(arg)


def test_a_view_taken_after_the_write_follows_numpy():
    def f(x):
        M = np.zeros((2, 2))
        M[0, 0] = x[0]
        MT = M.T
        M[1, 0] = 2 * x[1]
        return (M + MT).sum() + MT[0, 1]

    x = np.array([0.5, 0.25])
    assert_same(npfunc.jit(f)(x), f(x))
    assert_deriv(npfunc.grad(f)(x), fd(f, x))


def test_a_buffer_kept_after_its_transform_stays_plain():
    kept = []

    def f(x):
        buf = np.zeros(2)
        kept.append(buf)
        return x.sum()

    npfunc.grad(f)(np.ones(2))
    buf = kept[0]
    buf[0] = 3.0  # plain writes after the transform: NumPy's
    assert buf.sum() == 3.0
    inner = []

    def g(x):
        buf[1] = x[0]  # a traced write into a plain array made under a transform that returned
        return x.sum()

    with pytest.raises(NpfuncError):
        npfunc.grad(g)(np.ones(2))
    assert not inner


def test_scipy_calls_take_pending_arrays():
    import scipy.linalg
    import scipy.special

    def f(x):
        K = np.zeros((2, 2))
        K[0, 0], K[1, 1] = x[0], x[1]
        K[0, 1] = K[1, 0] = 0.1
        u = scipy.linalg.solve(K, np.ones(2))
        e = np.empty(2)
        e[:] = x
        return u.sum() + scipy.special.logsumexp(e) + scipy.special.expit(e).sum()

    x = np.array([1.0, 2.0])
    assert_same(npfunc.jit(f)(x), f(x))
    assert_deriv(npfunc.grad(f)(x), fd(f, x))
    X = np.array([[1.0, 2.0], [1.5, 0.7]])
    assert_same(npfunc.vmap(f)(X), np.stack([f(r) for r in X]))


def test_a_write_from_an_inner_transform_is_refused():
    def outer(x):
        buf = np.zeros(2)
        buf[1] = x[1]

        def inner(y):
            buf[0] = y[0]  # a value of the inner grad, into an array of the outer one
            return (y ** 2).sum()

        return npfunc.grad(inner)(x).sum() + buf.sum()

    with pytest.raises(NpfuncError, match="set_at"):
        npfunc.grad(outer)(np.array([1.0, 2.0]))


def test_fortran_order_buffers_view_and_copy_as_numpy():
    """An F-ordered buffer: a C-order reshape copies it, ravel(order="K") views it, as in NumPy."""
    def f(x):
        A = np.zeros((3, 2), order="F")
        A[:, 0] = x
        A[:, 1] = x ** 2
        r = A.reshape(-1)  # a copy (C order of an F-ordered array)
        r[0] = 100.0
        B = np.full_like(np.ones((2, 3)), 0.5)
        B[0] = x
        C = np.ones_like(np.arange(3.0))
        C *= x
        return A.sum() + r.sum() + B.sum() + C.sum()

    def g(x):
        A = np.zeros((3, 3), order="F")
        A[0] = x
        v = A.ravel(order="K")  # a view of the F-ordered memory, taken after the traced write
        v[1] = 7.0
        return A

    x = np.array([0.1, 0.2, 0.3])
    assert_same(npfunc.jit(f)(x), f(x))
    assert_deriv(npfunc.grad(f)(x), fd(f, x))
    assert_same(npfunc.jit(g)(x), g(x))
    assert_same(npfunc.vmap(g)(np.stack([x, 2 * x])), np.stack([g(x), g(2 * x)]))
    assert_deriv(npfunc.jacrev(g)(x), fd(g, x))


def test_pending_arrays_with_the_other_transforms_and_out():
    x = np.array([0.7, 1.9, -0.4])

    def nested(x):  # a written buffer handed to an inner grad
        buf = np.zeros(3)
        buf[:] = x ** 2
        return (npfunc.grad(lambda b: (b ** 3).sum())(buf) * x).sum()

    def integer_buffer(x):  # float values written into an int buffer truncate, as NumPy's do
        ib = np.zeros(3, dtype=int)
        ib[0] = x[0] * 4
        ib[1:] = x[1:] * 3
        return ib

    def out_arguments(x):
        A = np.arange(9.0).reshape(3, 3)
        buf = np.empty(3)
        np.matmul(A, x, out=buf)
        r = np.empty(3)
        np.sin(x, out=r)
        return buf + r

    def checkpointed(x):
        def step(y):
            out = np.zeros(3)
            out[:] = np.tanh(y)
            return out

        return npfunc.checkpoint(step)(x).sum()

    def in_place(x):
        buf = np.zeros(3)
        buf += x
        buf *= 2
        return buf

    def custom(x):
        @npfunc.custom_vjp
        def h(y):
            o = np.zeros(3)
            o[:] = y ** 2
            return o

        h.defvjp(lambda y: (h(y), y), lambda y, g: (2 * y * g,))
        return h(x).sum()

    assert_deriv(npfunc.grad(nested)(x), fd(nested, x))
    assert_same(npfunc.jit(integer_buffer)(x), integer_buffer(x))
    assert_same(npfunc.vmap(integer_buffer)(np.stack([x, -x])), np.stack([integer_buffer(x), integer_buffer(-x)]))
    assert_same(npfunc.jit(out_arguments)(x), out_arguments(x))
    assert_deriv(npfunc.jacrev(out_arguments)(x), fd(out_arguments, x))
    assert_deriv(npfunc.grad(checkpointed)(x), fd(checkpointed, x))
    assert_same(npfunc.functionalize(in_place)(x), in_place(x))
    assert_same(npfunc.jit(npfunc.functionalize(in_place))(x), in_place(x))
    assert_deriv(npfunc.grad(custom)(x), 2 * x)


def test_a_buffer_read_by_a_traced_operation_before_its_first_traced_write():
    """jit keeps a copy of each plain array a recorded operation reads: it must not count as a
    reference the write would miss."""
    def f(lam):
        w = np.zeros(3)
        g = lam * w + 1.0  # w read while still plain
        w -= 0.1 * g       # its first traced write
        return w.sum()

    x = np.array([1.0, 2.0, 3.0])
    for transform in (npfunc.jit, lambda h: npfunc.vmap(h), npfunc.grad):
        arg = np.stack([x, x]) if transform is not npfunc.jit and transform is not npfunc.grad else x
        got = transform(f)(arg)
        if transform is npfunc.grad:
            assert_deriv(got, fd(f, x))
        elif transform is npfunc.jit:
            assert_same(got, f(x))
        else:
            assert_same(got, np.stack([f(x), f(x)]))


def test_a_plain_value_written_at_traced_indices():
    """Label smoothing: t[labels] = 1 - eps with traced labels makes the buffer traced."""
    def smoothed_targets(labels):
        t = np.full((labels.size, 4), 0.1 / 3)
        t[np.arange(labels.size), labels] = 0.9
        return t

    labels = np.array([2, 0, 3])
    for y in (labels, labels[::-1].copy()):
        assert_same(npfunc.jit(smoothed_targets)(y), smoothed_targets(y))
    Y = np.stack([labels, labels[::-1]])
    assert_same(npfunc.vmap(smoothed_targets)(Y), np.stack([smoothed_targets(y) for y in Y]))
