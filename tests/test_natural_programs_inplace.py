"""Natural programs that lean on NumPy's views, aliasing and in-place updates,
written as a scientist writes them (preallocated histories, Gauss-Seidel
sweeps, in-place eliminations, writes through reshapes, transposes, strided
slices and row views, fancy-index swaps, np.put / np.place / np.add.at ...).

Each program is compared, under every transform, with the plain program:
values (jit on three inputs, functionalize, vmap against a loop), derivatives
(grad / jacrev / jacfwd against central differences) and what is left in the
caller's array (jit, functionalize and vmap update it as NumPy does; grad and
jacrev work on their own copy, as docs/sharp-bits.md documents).

The tests at the end pin (a) refusals, with the fix their message names, and
(b) the discrepancies these programs found (npfunc returned NumPy's values
with other aliasing, without a word), as regression tests.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import npfunc
from npfunc.errors import NpfuncError
from npfunc.testing import numerical_jacobian as _differences  # central, absolute steps
from natural_checks import assert_deriv, assert_same, fd


# ---- the programs ------------------------------------------------------------------------

def euler_history(x):
    """Explicit Euler for du/dt = -u^3 + roll(u), the history preallocated and filled row by row."""
    nt, dt = 15, 0.05
    u = np.empty((nt + 1, x.size), like=x)   # np.empty without like= refuses (see below)
    u[0] = x
    for n in range(nt):
        u[n + 1] = u[n] + dt * (-u[n] ** 3 + np.roll(u[n], 1))
    return np.sum(u[-1] ** 2) + u[:, 0].mean()


def sor_laplace(x):
    """SOR sweeps for Laplace's equation on a 6x6 grid; the top boundary is x."""
    phi = np.zeros((6, 6), like=x)
    phi[0, 1:-1] = x
    phi[-1, :] = 1.0
    omega = 1.5
    for _ in range(5):
        for i in range(1, 5):
            for j in range(1, 5):
                gs = 0.25 * (phi[i + 1, j] + phi[i - 1, j] + phi[i, j + 1] + phi[i, j - 1])
                phi[i, j] = (1 - omega) * phi[i, j] + omega * gs
    return np.sum(phi[1:-1, 1:-1] ** 2)


def thomas(x):
    """Thomas algorithm: forward elimination in place on copies, back substitution into a buffer."""
    n = x.size
    a = -np.ones(n)
    b = 4.0 + x
    c = 0.25 * x
    d = np.arange(1.0, n + 1) + 0.1 * x ** 2
    cp, dp, bp = c.copy(), d.copy(), b.copy()
    for i in range(1, n):
        w = a[i] / bp[i - 1]
        bp[i] -= w * cp[i - 1]
        dp[i] -= w * dp[i - 1]
    sol = np.empty(n, like=x)
    sol[-1] = dp[-1] / bp[-1]
    for i in range(n - 2, -1, -1):
        sol[i] = (dp[i] - cp[i] * sol[i + 1]) / bp[i]
    return sol


def normalise_argument(x):
    """Normalises its argument in place (the caller's array changes, as in NumPy)."""
    x /= x.sum()
    x -= x.mean()
    return np.sum(x ** 2 * np.arange(x.size))


def grid_views(x):
    """12 entries: writes through a reshape of a copy, through .T and strided reshapes of the argument."""
    y = x.copy()
    a = y.reshape(3, 4)
    a[:, 0] = 0.0                      # y[0], y[4], y[8]
    a[1] *= 2.0
    z = x[::2].reshape(2, 3)           # a view of the argument (strided 1-D to 2-D needs no copy)
    z[0, 0] += 1.0
    w = x.reshape(3, 4)[:, ::2].reshape(6)   # a copy: the argument is not written
    w[:] = -1.0
    x.reshape(3, 4).T[1] *= 0.5        # column 1 of the 3x4 grid, through the transpose
    return y * np.arange(12) + x ** 2


def matrix_tweaks(x):
    """M = outer(x, x); column bump through M.T, np.fill_diagonal, M[np.diag_indices(n)] += eps."""
    n = x.size
    M = np.outer(x, x)
    M.T[0] += 1.0
    np.fill_diagonal(M, x ** 2 + 3.0)
    M[np.diag_indices(n)] += 0.5
    d = np.diag(M)                     # a read-only view, read after more writes below
    M[0, 0] += x[1]
    return np.linalg.slogdet(M)[1] + M.sum() + d @ x


def stencil_slices(x):
    """sqrt of the even entries through a strided view, slices of slices, overlapping shifts."""
    y = x.copy()
    z = y[::2]
    z[:] = np.sqrt(z)
    y[2:10][1:5] *= x[:4]
    y[1:][::3] += 1.0
    y[::-1][:3] -= x[-3:] ** 2         # the last three, reversed
    s = x.copy()
    s[1:] += s[:-1]                    # NumPy buffers the overlap
    t = x.copy()
    t[1:] = t[:-1]
    t[:] = t[::-1]
    return y + 2 * s + 3 * t


def pivoting(x):
    """9 entries: row swaps by fancy index, the tuple-swap pitfall, writes into copies that do nothing."""
    A = x.reshape(3, 3) + 3 * np.eye(3)
    A[[0, 1]] = A[[1, 0]]
    B = A.copy()
    B[1], B[2] = B[2], B[1]            # rows are views: both end up as the old row 2
    C = A.copy()
    C[[1, 2]][0] = 50.0                # advanced indexing gives a copy: no effect
    C[:, [0, 2]][1] = 70.0             # no effect
    C[:, 0][1] = x[7] * 3              # a view: writes C[1, 0]
    C[0][2] = 0.1                      # a view
    C[[0, -3], 1] = [x[5], x[6]]       # the same element twice: the last write wins
    return np.concatenate([A.ravel(), B.ravel(), C.ravel()])


def masks_and_puts(x):
    """x[mask] = 0, np.put (wrap), np.place, np.putmask (their different cycling), np.copyto(where=)."""
    y = x.copy()
    y[y < 0] = 0.0
    np.put(y, [1, 3, 13], x[:3] ** 2, mode="wrap")
    mask = np.arange(x.size) % 3 != 1
    p = x.copy()
    np.place(p, mask, x[:2] * 10)      # values in the order of the True entries
    q = x.copy()
    np.putmask(q, mask, x[:2] * 10)    # values by flat position
    r = np.zeros(x.shape, like=x)
    np.copyto(r, x ** 2, where=x > 0.65)
    return np.concatenate([y, p, q, r])


def sort_stats(x):
    """In-place sort, np.sort, and sorting a strided view and the rows of a matrix in place."""
    y = x.copy()
    y.sort()
    w = np.linspace(0, 1, x.size)
    e = x.copy()
    e[::2].sort()
    M = x.reshape(3, 4).copy()
    M.sort(axis=0)
    M[1].sort()
    return np.sum(w * y) + y[-1] - y[0] + np.sort(x ** 2)[1] + e @ w + np.sum(M * np.arange(4))


def histogram_add_at(x):
    """np.add.at accumulates repeated indices; h[idx] += v keeps only the last write per index."""
    idx = np.array([0, 2, 2, 1, 0, 3, 2, 1])
    h = np.zeros(4, like=x)
    np.add.at(h, idx, x)
    g = np.zeros(4, like=x)
    g[idx] += x
    return np.concatenate([h, g])


def rows_normalised(x):
    """Iterating over a matrix gives row views: normalise each in place; unpack rows and combine."""
    M = np.exp(x).reshape(3, 4).copy()
    for row in M:
        row /= row.sum()
    a, b, c = M
    c += a * b
    rows = [M[i] for i in range(3)]
    M *= 2.0                           # the saved rows see it
    return np.concatenate([M.ravel(), rows[0]])


def leapfrog(x):
    """Velocity Verlet for an anharmonic chain: q and p are row views of one state array."""
    state = np.zeros((2, x.size), like=x)
    q, p = state
    q[:] = x
    dt = 0.1
    for _ in range(10):
        force = -(2 * q - np.roll(q, 1) - np.roll(q, -1)) - 0.1 * q ** 3
        p += 0.5 * dt * force
        q += dt * p
        force = -(2 * q - np.roll(q, 1) - np.roll(q, -1)) - 0.1 * q ** 3
        p += 0.5 * dt * force
    return state


def lu_inplace(x):
    """Doolittle LU without pivoting, in place on a copy (16 entries)."""
    n = 4
    LU = x.reshape(n, n) + 4 * np.eye(n)
    LU = LU.copy()
    for k in range(n - 1):
        LU[k + 1:, k] /= LU[k, k]
        LU[k + 1:, k + 1:] -= np.outer(LU[k + 1:, k], LU[k, k + 1:])
    return np.concatenate([[np.sum(np.log(np.abs(np.diagonal(LU))))], LU.ravel()])


def gram_schmidt(x):
    """Modified Gram-Schmidt, columns of Q written in place (12 entries)."""
    Q = x.reshape(4, 3) + np.eye(4, 3)
    Q = Q.copy()
    for j in range(3):
        for i in range(j):
            Q[:, j] -= (Q[:, i] @ Q[:, j]) * Q[:, i]
        Q[:, j] /= np.linalg.norm(Q[:, j])
    return Q


def rotations_and_aliases(x):
    """rot90 / flip / swapaxes / moveaxis / squeeze are views; asarray and astype(copy=False) alias."""
    M = x.reshape(3, 4).copy()
    np.rot90(M)[0, 0] = x[0] * 5       # M[0, -1]
    np.flip(M, axis=1)[1] *= 2
    np.swapaxes(M, 0, 1)[1, 2] += 1.0  # M[2, 1]
    np.moveaxis(M[None], 0, -1)[0, 0, 0] -= 3.0
    np.squeeze(M[None, :1])[2] = 4.0   # M[0, 2]
    y = x * 1.0
    np.asarray(y)[0] = 5.0
    y.astype(np.float64, copy=False)[1] += 2.0
    c = np.array(y)                    # a copy
    c[2] = -1.0
    np.atleast_2d(y).T[3, 0] *= 3.0
    return np.concatenate([M.ravel(), y, c])


_X12 = np.array([0.3, -0.25, 0.5, 0.7, 1.1, 0.4, 0.9, 1.3, 0.2, 0.6, 0.8, 1.0])
_X16 = np.concatenate([_X12, [0.15, -0.35, 0.45, 0.05]])

PROGRAMS = {
    "euler-history": (euler_history, _X12[:5]),
    "sor-laplace": (sor_laplace, np.array([0.3, 0.5, 0.7, 1.1])),
    "thomas": (thomas, _X12[:6]),
    "normalise-argument": (normalise_argument, _X12[:6] + 1.0),
    "grid-views": (grid_views, _X12),
    "matrix-tweaks": (matrix_tweaks, np.array([0.3, 0.5, 0.7, 1.1])),
    "stencil-slices": (stencil_slices, np.abs(_X12) + 0.1),
    "pivoting": (pivoting, _X12[:9]),
    "masks-and-puts": (masks_and_puts, _X12),
    "sort-stats": (sort_stats, _X12),
    "histogram-add-at": (histogram_add_at, _X12[:8]),
    "rows-normalised": (rows_normalised, _X12),
    "leapfrog": (leapfrog, _X12[:6]),
    "lu-inplace": (lu_inplace, _X16),
    "gram-schmidt": (gram_schmidt, _X12),
    "rotations-and-aliases": (rotations_and_aliases, _X12),
}


def _inputs(x0):
    """Three nearby inputs (no ties, signs or kinks change between them)."""
    return [x0, 1.04 * x0 + 0.01, 0.97 * x0 - 0.005]


def _plain(f, x):
    """f on a copy of x: (its output, what it left in the copy)."""
    xc = x.copy()
    out = f(xc)
    return np.asarray(out), xc



# ---- values --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROGRAMS)
def test_jit_matches_plain_on_three_inputs(name):
    f, x0 = PROGRAMS[name]
    jf = npfunc.jit(f)
    for x in _inputs(x0):
        ref, left = _plain(f, x)
        xj = x.copy()
        np.testing.assert_allclose(jf(xj), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(xj, left)     # jit writes mutated arguments back
    assert jf.trace_count == 1


@pytest.mark.parametrize("name", PROGRAMS)
def test_functionalize_matches_plain(name):
    f, x0 = PROGRAMS[name]
    ref, left = _plain(f, x0)
    xf = x0.copy()
    np.testing.assert_allclose(npfunc.functionalize(f)(xf), ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(xf, left)
    xv = x0.copy()
    out = npfunc.functionalize(f, remove="mutations_and_views")(xv)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", PROGRAMS)
def test_vmap_matches_a_loop(name):
    f, x0 = PROGRAMS[name]
    X = np.stack(_inputs(x0))
    X_loop = X.copy()
    want = np.stack([f(row) for row in X_loop])      # rows are views: a function updating its
    got = X.copy()                                   # argument updates them, and vmap as well
    np.testing.assert_allclose(npfunc.vmap(f)(got), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, X_loop, rtol=1e-12, atol=1e-14)
    # the batch at the last axis: each example is a strided view in the loop
    got_t = X.T.copy()
    np.testing.assert_allclose(npfunc.vmap(f, in_dims=1, out_dims=0)(got_t), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_t.T, X_loop, rtol=1e-12, atol=1e-14)


# ---- derivatives ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("transform", ["grad", "jacrev", "jacfwd", "jit(jacrev)"])
def test_derivatives_match_differences(name, transform):
    f, x0 = PROGRAMS[name]
    ref, _ = _plain(f, x0)
    if transform == "grad" and ref.ndim:
        pytest.skip("grad needs a scalar output")
    J = _differences(f, x0)
    make = {"grad": npfunc.grad, "jacrev": npfunc.jacrev, "jacfwd": npfunc.jacfwd,
            "jit(jacrev)": lambda f: npfunc.jit(npfunc.jacrev(f))}[transform]
    x = x0.copy()
    got = make(f)(x)
    np.testing.assert_allclose(got, J, rtol=2e-5, atol=2e-6 * max(1.0, np.abs(J).max()))
    _, left = _plain(f, x0)
    np.testing.assert_allclose(x, left, rtol=1e-12, atol=1e-14)  # the caller's array: as the plain call leaves it


def test_vmap_of_grad_matches_a_loop():
    for name in ("euler-history", "sor-laplace", "normalise-argument", "matrix-tweaks", "sort-stats"):
        f, x0 = PROGRAMS[name]
        X = np.stack(_inputs(x0))
        want = np.stack([npfunc.grad(f)(row.copy()) for row in X])
        np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(X), want, rtol=1e-10, atol=1e-12)


def test_grad_and_value_of_a_program_mutating_its_argument():
    """The value is the plain one, and the caller's array is updated as the plain call updates it."""
    x = PROGRAMS["normalise-argument"][1].copy()
    ref, left = _plain(normalise_argument, x)
    g, v = npfunc.grad_and_value(normalise_argument)(x)
    assert np.isclose(v, ref, rtol=1e-12)
    np.testing.assert_allclose(x, left, rtol=1e-12)
    assert not np.array_equal(left, PROGRAMS["normalise-argument"][1])  # (the plain call does change it)


# ---- jit and what it closes over (docs/sharp-bits.md: snapshots) ------------------------------

_W = np.ones(3)


def _weighted(v):
    return (_W * v).sum()


def test_jit_snapshots_a_global_array_as_documented():
    """sharp-bits.md documents snapshot semantics: a closed-over array changed in place
    after recording is NOT seen until clear_cache() -- a documented, silent stale value."""
    global _W
    _W = np.ones(3)
    jf = npfunc.jit(_weighted)
    v = np.arange(1.0, 4.0)
    assert jf(v) == _weighted(v) == 6.0
    _W[:] = 2.0
    assert _weighted(v) == 12.0
    assert jf(v) == 6.0                              # stale, as documented
    jf.clear_cache()
    assert jf(v) == 12.0
    # grad and vmap read the live value
    _W[:] = 3.0
    np.testing.assert_array_equal(npfunc.grad(_weighted)(v), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(npfunc.vmap(_weighted)(np.ones((2, 3))), [9.0, 9.0])


# ---- writes plain NumPy refuses are refused too -------------------------------------------

@pytest.mark.parametrize("transform", ["jit", "grad", "vmap"])
def test_writes_into_read_only_views_raise_as_in_numpy(transform):
    def diag_write(x):
        M = np.outer(x, x)
        d = np.diag(M)                               # read-only in NumPy
        d[0] = 1.0
        return M.sum()

    def broadcast_write(x):
        b = np.broadcast_to(x, (2, x.size))
        b[0, 0] = 1.0
        return b.sum()

    x = np.array([0.3, 0.5, 0.7])
    T = {"jit": npfunc.jit, "grad": npfunc.grad, "vmap": npfunc.vmap}[transform]
    arg = np.stack([x, x]) if transform == "vmap" else x
    for f in (diag_write, broadcast_write):
        with pytest.raises(ValueError, match="read-only"):
            f(x.copy())
        with pytest.raises(ValueError, match="read-only"):
            T(f)(arg.copy())


# ---- refusals: as a scientist first writes it ------------------------------------------------

def _refusal(f, x, transform):
    """The error raised, unwrapping NumPy's ValueError raised from an npfunc refusal."""
    T = {"jit": npfunc.jit, "grad": npfunc.grad, "jacrev": npfunc.jacrev, "vmap": npfunc.vmap}[transform]
    arg = np.stack([x, x]) if transform == "vmap" else x
    with pytest.raises(Exception) as info:
        T(f)(arg.copy())
    err = info.value
    if not isinstance(err, NpfuncError) and isinstance(err.__cause__, NpfuncError):
        err = err.__cause__
    return err


def _euler_plain_empty(x):
    u = np.empty((6, x.size))                        # no like=: a plain buffer
    u[0] = x
    for n in range(5):
        u[n + 1] = u[n] + 0.05 * (-u[n] ** 3)
    return np.sum(u[-1] ** 2)


def _thomas_plain_empty(x):
    sol = np.empty(x.size)                           # scalar writes of traced values
    sol[-1] = x[-1] / 4.0
    for i in range(x.size - 2, -1, -1):
        sol[i] = (x[i] - sol[i + 1]) / 4.0
    return sol


def _cumsum_out(x):
    buf = np.empty_like(x)
    np.cumsum(x, out=buf)
    return buf


def _ravel_of_computed(x):
    M = np.outer(x, np.arange(1.0, 4.0))
    r = M.ravel()                                    # a view of the C-contiguous M, in NumPy
    r[0] = 5.0
    return M.sum()


def _shape_assignment(x):
    y = x.copy()
    y.shape = (2, x.size // 2)
    y[:, 0] = 0.0
    return y.sum()


def _multiply_at(x):
    y = x.copy()
    np.multiply.at(y, [0, 0, 2], 2.0)
    return y


_X6 = np.array([0.3, 0.5, 0.7, 1.1, 0.2, 0.9])


@pytest.mark.parametrize("f", [_euler_plain_empty, _thomas_plain_empty])
def test_plain_buffers_take_traced_writes(f):
    """u = np.empty(...); u[i] = traced: the buffer, made while the transform runs, becomes
    traced at its first traced write (npfunc.core.pending): every transform gives plain
    NumPy's values, and the derivatives are the five-point differences'."""
    want = f(_X6.copy())
    for _ in range(2):
        assert_same(npfunc.jit(f)(_X6.copy()), want)
    X = np.stack([_X6, 1.1 * _X6])
    assert_same(npfunc.vmap(f)(X), np.stack([f(x) for x in X]))
    assert_deriv(npfunc.jacrev(f)(_X6.copy()), fd(f, _X6))
    assert_deriv(npfunc.jacfwd(f)(_X6.copy()), fd(f, _X6))


@pytest.mark.parametrize("transform", ["jit", "jacrev", "vmap"])
@pytest.mark.parametrize("f, fix", [(_cumsum_out, "assign the result"),
                                    (_ravel_of_computed, ".copy()"),
                                    (_multiply_at, "set_at")])
def test_refusals_name_a_fix(f, fix, transform):
    f(_X6.copy())                                    # plain NumPy runs it
    err = _refusal(f, _X6, transform)
    assert isinstance(err, NpfuncError), repr(err)
    assert fix in str(err)


@pytest.mark.parametrize("transform", ["jit", "grad", "vmap"])
def test_shape_assignment_refuses_naming_reshape(transform):
    """``y.shape = ...`` (an in-place reshape) is refused with the fix, y = y.reshape(...)
    (it used to be a bare AttributeError)."""
    _shape_assignment(_X6.copy())
    err = _refusal(_shape_assignment, _X6, transform)
    assert isinstance(err, NpfuncError), repr(err)
    assert "y.reshape" in str(err) or "x.reshape" in str(err)


def _ufunc_where_out(x):
    y = x.copy()
    np.exp(y, out=y, where=np.arange(x.size) % 2 == 0)   # out= given: nothing is uninitialised
    z = np.zeros_like(y)
    np.divide(1.0, y, out=z, where=y > 1.0)
    return y + z


def test_ufunc_where_with_out_keeps_the_unselected_entries():
    """np.exp(y, out=y, where=m): entries where m is false keep y's values (it used to be
    refused with a message about uninitialised entries)."""
    ref = _ufunc_where_out(_X6.copy())
    np.testing.assert_allclose(npfunc.jit(_ufunc_where_out)(_X6.copy()), ref, rtol=1e-14)
    np.testing.assert_allclose(npfunc.vmap(_ufunc_where_out)(np.stack([_X6, _X6]))[1], ref, rtol=1e-14)
    J = _differences(_ufunc_where_out, _X6)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(T(_ufunc_where_out)(_X6.copy()), J, rtol=2e-5, atol=1e-7)


# ---- discrepancies these programs found (regressions) ----------------------------------------

_COUNTS = np.array([3.0, 0.0, 5.0, 2.0])


def binned_rates(x):
    """Rates per bin, an empty bin gives inf, cleaned in place with nan_to_num(copy=False)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = x ** 2 / _COUNTS
    np.nan_to_num(rates, copy=False, posinf=0.0)
    return np.sum(rates * np.arange(1.0, 5.0))


_XR = np.array([0.5, 0.7, 1.1, 0.3])


@pytest.mark.parametrize("transform", ["jit", "vmap", "grad_and_value"])
def test_nan_to_num_copy_false_replaces_in_place(transform):
    """np.nan_to_num(a, copy=False) replaces in place (npfunc used to ignore copy=False:
    def f(x): y = x * 1.0; y[0] = np.nan; np.nan_to_num(y, copy=False); return y gave
    [nan, 2.] under jit, vmap, jvp and vjp where NumPy gives [0., 2.])."""
    ref = binned_rates(_XR.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if transform == "jit":
            got = npfunc.jit(binned_rates)(_XR.copy())
        elif transform == "vmap":
            got = npfunc.vmap(binned_rates)(np.stack([_XR, _XR]))[0]
        else:
            got = npfunc.grad_and_value(binned_rates)(_XR.copy())[1]
    assert np.isclose(got, ref, rtol=1e-12), (got, ref)


_ZERO_TIMES_INF = pytest.mark.xfail(strict=True, reason=(
    "reverse mode: the replaced entry's zero cotangent meets the infinite derivative of "
    "x ** 2 / 0, and 0 * inf = NaN, as in JAX and PyTorch (docs/conventions.md, the "
    "double-where section); forward mode is exact"))


@pytest.mark.parametrize("transform", [pytest.param("grad", marks=_ZERO_TIMES_INF), "jacfwd"])
def test_nan_to_num_copy_false_derivative(transform):
    J = _differences(binned_rates, _XR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = {"grad": npfunc.grad, "jacfwd": npfunc.jacfwd}[transform](binned_rates)(_XR.copy())
    np.testing.assert_allclose(got, J, rtol=2e-5, atol=1e-6)


def _array_copy_none(x):
    """NumPy 2's np.array(a, copy=None) copies only if needed: here it returns y itself."""
    y = x * 2.0
    z = np.array(y, copy=None)
    z[0] = 0.0
    return y


def _meshgrid_no_copy(x):
    """meshgrid(sparse=True, copy=False) returns views of its inputs."""
    y = x * 1.0
    X, Y = np.meshgrid(y[:3], y[3:], sparse=True, copy=False)
    X[0, 0] = 5.0
    Y[1, 0] = -1.0
    return y


def _ix_views(x):
    """np.ix_ returns reshaped views of its 1-D inputs."""
    y = x * 1.0
    I, J = np.ix_(y[:3], y[3:])
    I[0, 0] = 5.0
    return y


@pytest.mark.parametrize("transform", ["jit", "vmap", "jacrev", "jvp"])
@pytest.mark.parametrize("f", [_array_copy_none, _meshgrid_no_copy, _ix_views])
def test_views_numpy_returns_are_views(f, transform):
    """Views NumPy returns, which npfunc used to give as copies, losing writes through
    them: np.array(y, copy=None) (copy=None was taken as True),
    np.meshgrid(..., sparse=True, copy=False) and np.ix_."""
    ref = f(_X6.copy())
    if transform == "jit":
        got = npfunc.jit(f)(_X6.copy())
    elif transform == "vmap":
        got = npfunc.vmap(f)(np.stack([_X6, _X6]))[0]
    elif transform == "jvp":
        got = npfunc.jvp(f, (_X6.copy(),), (np.ones(6),))[0]
    else:
        got = npfunc.vjp(f, _X6.copy())[0]
    np.testing.assert_array_equal(got, ref)


def diffuse_step(u):
    """One explicit diffusion step, in place; returns u for chaining (a common idiom)."""
    u[1:-1] += 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u


def _run_rod(step, x):
    u = x.copy()
    for _ in range(5):
        v = step(u)
        v[0] = v[-1] = 0.0            # boundary conditions on the returned state
    return u


def test_jit_result_is_the_mutated_argument():
    """NumPy: step(u) returns u itself, so writing into the result changes u; jit used to
    return a copy, losing the boundary conditions."""
    x = np.linspace(0.0, 1.0, 6) ** 2 + 1.0
    np.testing.assert_allclose(_run_rod(npfunc.jit(diffuse_step), x), _run_rod(diffuse_step, x))


@pytest.mark.parametrize("f", [lambda u: u, diffuse_step, lambda u: diffuse_step(u)[1:]],
                         ids=["identity", "mutated", "view-of-mutated"])
def test_jit_outputs_share_memory_where_numpy_does(f):
    """docs/guide/jit.md: 'a result is a view of an argument where NumPy's would be'."""
    u = np.linspace(1.0, 2.0, 5) ** 2
    assert np.shares_memory(f(u), u)
    jf = npfunc.jit(f)
    for _ in range(3):  # the recording call, then replays
        uj = np.linspace(1.0, 2.0, 5) ** 2
        out = jf(uj)
        assert np.shares_memory(out, uj)
        out[0] = -7.0
        assert uj[0 if out.shape == uj.shape else 1] == -7.0
