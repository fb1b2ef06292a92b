"""Linear algebra: the composites (value vs NumPy/SciPy, JVP vs central
differences, VJP/JVP adjoint identity, vmap vs a loop), the conventions at
degenerate points, the SciPy twins, and multiple-output primitives under
every transform.  The primitives themselves are also covered by the
registry-generated tests (tests/test_registry.py)."""
from __future__ import annotations

import numpy as np
import optree
import pytest
import scipy.linalg as sl

import npfunc.scipy.linalg as sla
from npfunc import errors, grad, hessian, jacfwd, jacrev, jit, jvp, vjp, vmap
from npfunc.core.primitive import REGISTRY
from npfunc.primitives.linalg import norms as ours_norms
from npfunc.primitives.linalg import solve as ours

EPS = 1e-6

# ---- a generic check for composites -----------------------------------------------------


def _leaves(tree):
    return optree.tree_leaves(tree)


def _inexact(x):
    return np.result_type(x).kind in "fc"


def _direction(rng, x):
    t = rng.standard_normal(np.shape(x))
    if np.iscomplexobj(x):
        t = t + 1j * rng.standard_normal(np.shape(x))
    return np.asarray(t, dtype=np.result_type(x))


def _inner(a, b):
    return float(np.real(np.vdot(np.asarray(a).ravel(), np.asarray(b).ravel())))


def _close(actual, expected, rtol, atol, what):
    for k, (a, e) in enumerate(zip(_leaves(actual), _leaves(expected))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"{what}: leaf {k}")


def check(f, *args, argnums=None, rtol=1e-6, atol=1e-8, batch=True, seed=0):
    """Value under the transforms equals ``f`` on plain arrays (NumPy itself);
    JVP vs central differences; <u, J v> == <J^T u, v>; vmap vs a loop."""
    rng = np.random.default_rng(seed)
    if argnums is None:
        argnums = tuple(i for i, a in enumerate(args) if isinstance(a, np.ndarray) and _inexact(a))
    expected = f(*args)

    def g(*diff):
        full = list(args)
        for i, v in zip(argnums, diff):
            full[i] = v
        return f(*full)

    primals = tuple(args[i] for i in argnums)
    tangents = tuple(_direction(rng, p) for p in primals)
    out, t_out = jvp(g, primals, tangents)
    _close(out, expected, 1e-10 if np.result_type(*primals) == np.float64 else 1e-5, 1e-12, "value")
    for o, e in zip(_leaves(out), _leaves(expected)):
        assert np.result_type(o) == np.result_type(e), (np.result_type(o), np.result_type(e))
    if all(np.result_type(p) in (np.float64, np.complex128) for p in primals):
        plus = g(*(p + EPS * t for p, t in zip(primals, tangents)))
        minus = g(*(p - EPS * t for p, t in zip(primals, tangents)))
        fd = [(np.asarray(a) - np.asarray(b)) / (2 * EPS) if _inexact(a) else np.zeros(np.shape(a))
              for a, b in zip(_leaves(plus), _leaves(minus))]
        _close([t if _inexact(o) else np.zeros(np.shape(t)) for t, o in zip(_leaves(t_out), _leaves(out))],
               fd, rtol * 10, atol * 10 + 1e-7, "jvp vs finite differences")
    _, pullback = vjp(g, *primals)
    cts = optree.tree_map(lambda o: _direction(rng, o) if _inexact(o) else np.zeros_like(o), out)
    c_in = pullback(cts)
    lhs = sum(_inner(u, t) for u, t, o in zip(_leaves(cts), _leaves(t_out), _leaves(out)) if _inexact(o))
    rhs = sum(_inner(c, t) for c, t in zip(c_in, tangents))
    for c, p in zip(c_in, primals):
        assert np.result_type(c) == np.result_type(p) and np.shape(c) == np.shape(p)
    tol = 1e-6 if all(np.result_type(p) in (np.float64, np.complex128) for p in primals) else 1e-4
    assert np.isclose(lhs, rhs, rtol=tol, atol=tol * 1e-2), (lhs, rhs)
    if batch:
        stacked = [np.stack([a * (1 + 0.02 * k) for k in range(3)]) for a in primals]
        got = vmap(g)(*stacked)
        rows = [g(*[s[k] for s in stacked]) for k in range(3)]
        want = optree.tree_map(lambda *xs: np.stack(xs), *rows)
        _close(got, want, 1e-9 if np.result_type(*primals) == np.float64 else 1e-4, 1e-10, "vmap vs loop")
    return out


def _rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _wellcond(rng, *shape, dtype=np.float64):
    n = shape[-1]
    return (rng.uniform(-1, 1, shape) + 3 * np.eye(n)).astype(dtype)


def _spd(rng, *shape, dtype=np.float64):
    b = rng.uniform(-1, 1, shape)
    return (b @ np.swapaxes(b, -1, -2) / shape[-1] + np.eye(shape[-1])).astype(dtype)


@pytest.fixture
def r():
    return np.random.default_rng(7)


# ---- products -----------------------------------------------------------------------


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),                    # implicit output
    ("ba,ac", [(2, 3), (3, 4)]),                    # implicit: sorted letters
    ("ii", [(3, 3)]),                               # implicit trace
    ("ii->i", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipsis broadcasting
    ("...ij,...jk", [(2, 3, 4), (4, 2)]),            # implicit with ellipsis
    ("i...->...", [(3, 2, 2)]),
    ("ij,ij->ij", [(2, 1), (2, 3)]),                 # size-1 broadcasting of a letter
    ("i,j->ij", [(3,), (4,)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("ij,j,jk->ik", [(2, 3), (3,), (3, 2)]),
    (",i->i", [(), (3,)]),
    ("ii,i->", [(3, 3), (3,)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM_CASES)
def test_einsum_subscript_forms(subscripts, shapes, r):
    ops = [_rand(r, *s) for s in shapes]
    check(lambda *xs: np.einsum(subscripts, *xs), *ops)


def test_einsum_sublist_form_float32_and_complex(r):
    a, b = _rand(r, 2, 3), _rand(r, 3, 4)
    check(lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), a, b)
    check(lambda a, b: np.einsum(a, [Ellipsis, 1], b, [1, 2]), a, b)
    check(lambda a, b: np.einsum("ij,jk->ik", a, b), a.astype(np.float32), b.astype(np.float32))
    z = a + 1j * _rand(r, 2, 3)
    check(lambda z, b: np.einsum("ij,jk->ik", z, b), z, b + 0.5j)
    out = grad(lambda a: np.einsum("ij,jk->", a, b, dtype=np.float32, casting="same_kind")
               .astype(np.float64))(a)
    assert out.dtype == np.float64
    with pytest.raises(TypeError, match="cast"):  # as NumPy: the default casting is 'safe'
        grad(lambda a: np.einsum("ij,jk->", a, b, dtype=np.float32))(a)
    with pytest.raises(errors.UnsupportedOperationError):
        grad(lambda a: np.einsum("ij->", a, out=np.empty(())))(a)


def test_einsum_second_order_and_vmap_of_grad(r):
    a, b = _rand(r, 3, 3), _rand(r, 3)
    f = lambda a: np.einsum("ii,i,ij->", a, b, a)  # noqa: E731
    H = hessian(f)(a)
    from npfunc.testing import numerical_jacobian as central_jacobian
    np.testing.assert_allclose(H, central_jacobian(grad(f), a), rtol=1e-5, atol=1e-6)
    stack = np.stack([a, 2 * a])
    np.testing.assert_allclose(vmap(grad(f))(stack), np.stack([grad(f)(a), grad(f)(2 * a)]))


def test_vdot_inner_outer_kron(r):
    a, b = _rand(r, 2, 3), _rand(r, 2, 3)
    check(np.vdot, a, b)
    z = a + 1j * b
    check(np.vdot, z, b + 1j)
    check(np.inner, a, _rand(r, 4, 3))
    check(np.inner, _rand(r, 3), _rand(r, 3))
    check(lambda x: np.inner(x, 2.0), a)
    check(np.outer, a, _rand(r, 4))
    check(np.kron, _rand(r, 2, 3), _rand(r, 2, 2))
    check(np.kron, _rand(r, 3), _rand(r, 2, 2))
    check(np.kron, _rand(r, 2, 1, 2), _rand(r, 3))


@pytest.mark.parametrize("axes", [2, 1, 0, ([1, 0], [0, 1]), (2, 0), ([-1], [0])])
def test_tensordot(axes, r):
    a = _rand(r, 3, 4, 2)
    b = {2: (4, 2, 5), 0: (2, 2)}.get(axes if isinstance(axes, int) else None, (2, 3, 5))
    if axes == ([1, 0], [0, 1]):
        b = (4, 3, 5)
    check(lambda a, b: np.tensordot(a, b, axes), a, _rand(r, *b))


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors")
@pytest.mark.parametrize("shapes,kw", [
    (((4, 3), (4, 3)), {}),
    (((3,), (4, 3)), {}),
    (((3, 4), (4, 3)), dict(axisa=0)),
    (((3, 4), (3, 4)), dict(axis=0)),
    (((4, 3), (3, 4)), dict(axisb=0, axisc=0)),
    (((4, 2), (4, 3)), {}),
    (((4, 3), (2,)), {}),
])
def test_cross(shapes, kw, r):
    a, b = (_rand(r, *s) for s in shapes)
    check(lambda a, b: np.cross(a, b, **kw), a, b)


def test_cross_of_2_vectors(r):
    a, b = _rand(r, 4, 2), _rand(r, 4, 2)
    with pytest.warns(DeprecationWarning):
        expected = np.cross(a, b)
    out, _ = jvp(lambda a: np.cross(a, b), (a,), (a,))
    np.testing.assert_allclose(out, expected)


def test_multi_dot(r):
    mats = [_rand(r, 3), _rand(r, 3, 5), _rand(r, 5, 2), _rand(r, 2, 4), _rand(r, 4)]
    check(lambda *xs: np.linalg.multi_dot(list(xs)), *mats)
    check(lambda *xs: np.linalg.multi_dot(xs), *mats[1:4])
    check(lambda *xs: np.linalg.multi_dot(xs), *mats[1:3])


def test_array_api_spellings(r):
    a, b = _rand(r, 2, 3, 4), _rand(r, 2, 3, 4)
    check(lambda a, b: np.linalg.vecdot(a, b, axis=1), a, b)
    check(lambda a, b: np.vecdot(a, b), a, b)
    check(lambda a: np.linalg.matrix_transpose(a), a)
    check(lambda a: np.linalg.trace(a[..., :3]), a)
    check(lambda a: np.linalg.trace(a, offset=1), a)
    check(lambda a: np.linalg.diagonal(a, offset=-1), a)
    check(lambda a, b: np.linalg.tensordot(a, np.transpose(b, (1, 2, 0)), axes=2), a, b)
    check(lambda a, b: np.linalg.outer(a, b), _rand(r, 3), _rand(r, 4))
    check(lambda a, b: np.linalg.cross(a, b), _rand(r, 4, 3), _rand(r, 4, 3))
    check(lambda a, b: np.linalg.matmul(a, b), a, _rand(r, 4, 2))
    if hasattr(np, "matvec"):
        z = _rand(r, 2, 4) + 1j * _rand(r, 2, 4)
        check(lambda a, v: np.matvec(a, v), a, _rand(r, 2, 4))
        check(lambda v, m: np.vecmat(v, m), z, np.swapaxes(a, 1, 2) + 0.5j)


# ---- solve, inv, det, slogdet, cholesky, matrix_power -------------------------------------


def test_solve_vector_matrix_stacked_broadcast(r):
    a = _wellcond(r, 3, 3)
    check(np.linalg.solve, a, _rand(r, 3))
    check(np.linalg.solve, a, _rand(r, 3, 2))
    check(np.linalg.solve, _wellcond(r, 2, 3, 3), _rand(r, 3))
    check(np.linalg.solve, _wellcond(r, 2, 1, 3, 3), _rand(r, 4, 3, 2))
    check(np.linalg.solve, a.astype(np.float32), _rand(r, 3, 2, dtype=np.float32))
    check(np.linalg.solve, np.arange(9.0).reshape(3, 3) ** 2 + 1, _rand(r, 3))


def test_inv_det_slogdet(r):
    a = _wellcond(r, 2, 3, 3)
    a[0] = a[0][[1, 0, 2]]  # a negative determinant in the stack
    check(np.linalg.inv, a)
    check(np.linalg.det, a)
    out = check(np.linalg.slogdet, a)
    assert type(out).__name__ == "SlogdetResult"
    z = a + 0.3j * _rand(r, 2, 3, 3)
    check(np.linalg.slogdet, z)
    check(np.linalg.det, z)


def test_slogdet_sign_has_no_derivative(r):
    a = _wellcond(r, 3, 3)
    g = grad(lambda a: np.linalg.slogdet(a)[0] * 1.0)(a)
    assert np.all(g == 0)
    g = grad(lambda a: np.linalg.slogdet(a).logabsdet)(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-12)
    _, t = jvp(lambda a: np.linalg.slogdet(a), (a,), (a,))
    assert np.all(t[0] == 0) and np.isclose(t[1], 3.0)


def test_hessian_of_logdet(r):
    a = _spd(r, 3, 3)
    H = hessian(lambda a: np.linalg.slogdet(a)[1])(a)
    ai = np.linalg.inv(a)
    np.testing.assert_allclose(H, -np.einsum("li,jk->ijkl", ai, ai), rtol=1e-10, atol=1e-12)


def test_cholesky(r):
    a = _spd(r, 2, 3, 3)
    check(np.linalg.cholesky, a)
    check(lambda a: np.linalg.cholesky(a, upper=True), a)
    junk = a + np.triu(_rand(r, 3, 3), 1)  # only the lower triangle is read
    np.testing.assert_allclose(ours.cholesky(junk), np.linalg.cholesky(a))
    g = grad(lambda x: np.linalg.cholesky(x).sum())(junk[0])
    assert np.all(np.triu(g, 1) == 0)
    # through a symmetric parametrisation the usual symmetric derivative
    b = _rand(r, 3, 3)
    f = lambda b: np.log(np.diagonal(np.linalg.cholesky(b @ b.T + np.eye(3)))).sum()  # noqa: E731
    np.testing.assert_allclose(grad(f)(b), np.linalg.solve(b @ b.T + np.eye(3), b), rtol=1e-10)


def test_matrix_power(r):
    a = _wellcond(r, 2, 3, 3)
    for n in (0, 1, 2, 3, 5, -1, -2):
        check(lambda a: np.linalg.matrix_power(a, n), a, batch=n != 0)
    out = grad(lambda a: np.linalg.matrix_power(a, 0).sum() + a.sum())(a[0])
    np.testing.assert_allclose(out, np.ones((3, 3)))
    ints = np.arange(4).reshape(2, 2)
    np.testing.assert_array_equal(ours.matrix_power(ints, 3), np.linalg.matrix_power(ints, 3))


def test_no_explicit_inverse_in_solve_cholesky_eigh_rules(r, monkeypatch):
    """The derivative rules of solve / cholesky / eigh / qr use solves, never inv."""
    def forbidden(*args, **kwargs):
        raise AssertionError("an explicit inverse was formed")

    monkeypatch.setattr(REGISTRY["inv"], "impl", forbidden)
    a, b = _wellcond(r, 3, 3), _rand(r, 3, 2)
    spd = _spd(r, 3, 3)
    for f, x in [(lambda a: np.linalg.solve(a, b).sum(), a),
                 (lambda a: np.linalg.cholesky(a).sum(), spd),
                 (lambda a: (np.linalg.eigh(a)[1] ** 3).sum(), spd),
                 (lambda a: np.linalg.qr(a)[0].sum() + np.linalg.qr(a)[1].sum(), a)]:
        hessian(f)(x)
        jacfwd(grad(f))(x)


# ---- eigh, svd, qr ---------------------------------------------------------------------


def _sym(rng, *shape):
    return _spd(rng, *shape) + np.swapaxes(_spd(rng, *shape), -1, -2) - 2 * np.eye(shape[-1])


def test_eigh_and_eigvalsh(r):
    a = _sym(r, 2, 3, 3)
    out = check(np.linalg.eigh, a)
    assert type(out).__name__ == "EighResult"
    check(lambda a: np.linalg.eigh(a, UPLO="U"), a + np.tril(_rand(r, 3, 3), -1))
    check(np.linalg.eigvalsh, a)
    check(lambda a: np.linalg.eigvalsh(a, "U"), a)
    check(lambda a: np.linalg.eigvalsh(a), a.astype(np.float32))


@pytest.mark.parametrize("where", ["eigvalsh", "eigh values only", "scipy eigvalsh"])
def test_repeated_eigenvalues_give_exact_gradients(where):
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    a = q @ np.diag([1.0, 1.0, 1.0, 2.0]) @ q.T  # a triple eigenvalue (split by rounding)
    fn = {"eigvalsh": np.linalg.eigvalsh, "eigh values only": lambda a: np.linalg.eigh(a)[0],
          "scipy eigvalsh": sla.eigvalsh}[where]
    lower = np.tri(4)
    with np.errstate(all="raise"):
        g = grad(lambda a: (fn(a) ** 2).sum())(a)        # = 2 a on the triangle read
        np.testing.assert_allclose(g, 2 * a * (2 * lower - np.eye(4)), atol=1e-12)
        g = grad(lambda a: fn(a).sum())(np.eye(4))       # exactly repeated
        np.testing.assert_allclose(g, np.eye(4))
        H = hessian(lambda a: fn(a).sum())(a)            # the trace: zero Hessian
        assert np.allclose(H, 0)
        H2 = hessian(lambda a: (fn(a) ** 2).sum())(a)    # not exact inside the block, but finite
        assert np.all(np.isfinite(H2))
        assert np.all(np.isfinite(grad(lambda a: fn(a).max())(np.eye(3))))


def test_eigenspace_projector_is_exact_at_degenerate_point(r):
    """The projector onto a repeated eigenvalue's eigenspace is smooth; the
    0 taken for the gap inside the block is then exact."""
    q, _ = np.linalg.qr(_rand(r, 3, 3))
    a = q @ np.diag([1.0, 1.0, 3.0]) @ q.T
    c = _rand(r, 3, 3)

    def f(a):
        v = np.linalg.eigh(a)[1][:, :2]
        return ((v @ v.T) * c).sum()

    sym = lambda m: np.tril(m) + np.tril(m, -1).T  # noqa: E731  (the matrix eigh reads)
    fd = np.zeros_like(a)
    for i in range(3):
        for j in range(3):
            e = np.zeros_like(a)
            e[i, j] = EPS
            fd[i, j] = (f(sym(a + e)) - f(sym(a - e))) / (2 * EPS)
    np.testing.assert_allclose(grad(f)(a), fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad(f)(a + np.triu(c, 1)), grad(f)(a), atol=1e-12)


def test_complex_hermitian_eigh_phase_invariant(r):
    b = _rand(r, 3, 3) + 1j * _rand(r, 3, 3)
    a = b @ b.conj().T
    f = lambda a: (lambda w, v: (v * w ** 2) @ v.conj().T)(*np.linalg.eigh(a))  # noqa: E731  (= a^2)
    t = _rand(r, 3, 3) + 1j * _rand(r, 3, 3)
    t = t + t.conj().T
    out, tan = jvp(f, (a,), (t,))
    np.testing.assert_allclose(tan, a @ t + t @ a, atol=1e-10)
    _, pull = vjp(f, a)
    u = _rand(r, 3, 3) + 1j * _rand(r, 3, 3)
    (c,) = pull(u)
    assert np.isclose(_inner(u, tan), _inner(c, t))


def test_svd(r):
    a = _rand(r, 2, 4, 3)
    out = check(lambda a: np.linalg.svd(a, full_matrices=False), a)
    assert type(out).__name__ == "SVDResult"
    check(lambda a: np.linalg.svd(a, compute_uv=False), a)
    check(lambda a: np.linalg.svd(a, full_matrices=False), _rand(r, 3, 5))
    check(lambda a: np.linalg.svd(a), _wellcond(r, 3, 3))
    check(lambda a: np.linalg.svdvals(a), a)
    check(lambda a: np.linalg.svd(a, compute_uv=False), a.astype(np.float32))


def test_svd_full_matrices_non_square(r):
    a = _rand(r, 4, 2)
    u, s, vh = np.linalg.svd(a)
    out, _ = jvp(np.linalg.svd, (a,), (a,))
    for x, y in zip(out, (u, s, vh)):
        np.testing.assert_allclose(x, y)
    # the first min(m, n) columns carry the derivative: reconstruction is exact
    f = lambda a: (lambda u, s, vh: (u[:, :2] * s) @ vh)(*np.linalg.svd(a))  # noqa: E731
    t = _rand(r, 4, 2)
    _, tan = jvp(f, (a,), (t,))
    np.testing.assert_allclose(tan, t, atol=1e-12)


def test_repeated_singular_values_exact(r):
    q1, _ = np.linalg.qr(_rand(r, 4, 4))
    q2, _ = np.linalg.qr(_rand(r, 3, 3))
    a = q1[:, :3] @ np.diag([2.0, 2.0, 1.0]) @ q2.T
    with np.errstate(all="raise"):
        g = grad(lambda a: np.linalg.svd(a, compute_uv=False).sum())(a)
        g_nuc = grad(lambda a: np.linalg.norm(a, "nuc"))(a)
        np.testing.assert_allclose(g, q1[:, :3] @ q2.T, atol=1e-12)
        np.testing.assert_allclose(g_nuc, g, atol=1e-12)
        np.testing.assert_allclose(grad(lambda a: np.linalg.norm(a, 2))(np.eye(3)), np.eye(3) / 3)
        # the left singular subspace of the repeated value is smooth: exact

        def proj(a):
            u = np.linalg.svd(a, full_matrices=False)[0][:, :2]
            return ((u @ u.T) * np.arange(16.0).reshape(4, 4)).sum()

        t = _rand(r, 4, 3)
        _, tan = jvp(proj, (a,), (t,))
        assert np.isclose(tan, (proj(a + EPS * t) - proj(a - EPS * t)) / (2 * EPS), rtol=1e-6)


def test_complex_svd_phase_invariant(r):
    a = _rand(r, 4, 3) + 1j * _rand(r, 4, 3)
    f = lambda a: (lambda u, s, vh: (u * s ** 3) @ vh)(*np.linalg.svd(a, full_matrices=False))  # noqa: E731
    t = _rand(r, 4, 3) + 1j * _rand(r, 4, 3)
    _, tan = jvp(f, (a,), (t,))
    fd = (f(a + EPS * t) - f(a - EPS * t)) / (2 * EPS)
    np.testing.assert_allclose(tan, fd, rtol=1e-6, atol=1e-7)
    _, pull = vjp(f, a)
    u = _rand(r, 4, 3) + 1j * _rand(r, 4, 3)
    assert np.isclose(_inner(u, tan), _inner(pull(u)[0], t))


def test_qr_modes(r):
    a = _rand(r, 2, 4, 3)
    out = check(np.linalg.qr, a)
    assert type(out).__name__ == "QRResult"
    check(lambda a: np.linalg.qr(a, mode="r"), a)
    check(np.linalg.qr, _rand(r, 3, 5) + np.eye(3, 5))
    check(lambda a: np.linalg.qr(a, mode="complete"), _rand(r, 3, 5) + np.eye(3, 5))
    with pytest.raises(errors.UnsupportedOperationError, match="mode"):
        grad(lambda a: np.linalg.qr(a, mode="complete")[0].sum())(a[0])


# ---- norms, pinv, lstsq, cond, matrix_rank --------------------------------------------

VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 1.5, 0.5, -1]
MATRIX_ORDS = [None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
def test_vector_norms(ord, r):
    x = _rand(r, 2, 5)
    check(lambda x: np.linalg.norm(x, ord, axis=1), x)
    check(lambda x: np.linalg.norm(x, ord, axis=0, keepdims=True), x)
    check(lambda x: np.linalg.norm(x[0], ord), x)
    check(lambda x: np.linalg.vector_norm(x, ord=2 if ord is None else ord), x)
    check(lambda x: np.linalg.vector_norm(x, axis=(0, 1), ord=2 if ord is None else ord, keepdims=True), x)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norms(ord, r):
    x = _rand(r, 2, 3, 4)
    check(lambda x: np.linalg.norm(x, ord, axis=(1, 2)), x)
    check(lambda x: np.linalg.norm(x, ord, axis=(2, 0), keepdims=True), x)
    check(lambda x: np.linalg.norm(x[0], ord), x)
    check(lambda x: np.linalg.matrix_norm(x, ord="fro" if ord is None else ord), x.astype(np.float32))


def test_norm_defaults_and_complex(r):
    x = _rand(r, 2, 3, 4)
    check(np.linalg.norm, x)
    check(lambda x: np.linalg.norm(x, keepdims=True), x)
    z = x + 1j * _rand(r, 2, 3, 4)
    check(lambda z: np.linalg.norm(z, axis=-1), z)
    check(lambda z: np.linalg.norm(z[0], "nuc"), z)
    with pytest.raises(ValueError):
        grad(lambda x: np.linalg.norm(x, "fro", axis=0))(x)
    with pytest.raises(ValueError):
        grad(lambda x: np.linalg.norm(x, 3))(x)


def test_norm_at_zero_has_zero_gradient():
    with np.errstate(all="raise"):
        for f in (np.linalg.norm, lambda x: np.linalg.norm(x, "fro"), lambda x: np.linalg.norm(x, axis=1).sum(),
                  lambda x: np.linalg.norm(x.ravel(), 3), lambda x: np.linalg.vector_norm(x)):
            g = grad(f)(np.zeros((2, 3)))
            assert np.all(g == 0)
        # zero entries in a non-zero vector: finite, the usual formula
        x = np.array([0.0, 3.0, -4.0, 0.0])
        for ord, expected in [(None, x / 5), (1, np.sign(x)), (3, np.sign(x) * x ** 2 / np.cbrt(91.0) ** 2),
                              (np.inf, np.array([0, 0, -1.0, 0]))]:
            np.testing.assert_allclose(grad(lambda x: np.linalg.norm(x, ord))(x), expected, rtol=1e-12)
        assert np.all(np.isfinite(hessian(np.linalg.norm)(np.zeros(3))))


def test_pinv_lstsq(r):
    check(np.linalg.pinv, _rand(r, 2, 4, 3))
    check(np.linalg.pinv, _rand(r, 3, 5))
    check(lambda a: np.linalg.pinv(a, hermitian=True), _sym(r, 3, 3))
    check(lambda a: np.linalg.pinv(a, rtol=None), _rand(r, 4, 3))
    a, b = _rand(r, 5, 3), _rand(r, 5, 2)
    out = check(np.linalg.lstsq, a, b, batch=False)
    assert out[2] == 3 and np.result_type(out[2]) == np.result_type(np.linalg.lstsq(a, b)[2])
    check(lambda a, b: np.linalg.lstsq(a, b)[0], a, b)
    check(lambda a, b: np.linalg.lstsq(a, b, rcond=None)[1], a, _rand(r, 5))
    check(lambda a, b: np.linalg.lstsq(a, b)[0], _rand(r, 3, 5), _rand(r, 3))
    # under vmap the residuals are returned for every (full-rank) problem
    A, B = np.stack([a, 2 * a]), np.stack([b, b])
    x, res, rank, s = vmap(np.linalg.lstsq)(A, B)
    for k in range(2):
        xk, rk, _, sk = np.linalg.lstsq(A[k], B[k])
        np.testing.assert_allclose(x[k], xk, atol=1e-12)
        np.testing.assert_allclose(res[k], rk, atol=1e-12)
        np.testing.assert_allclose(s[k], sk)
    np.testing.assert_array_equal(rank, [3, 3])


def test_cond_and_matrix_rank(r):
    a = _wellcond(r, 2, 3, 3)
    for p in (None, 2, -2, "fro", 1, np.inf):
        check(lambda a: np.linalg.cond(a, p), a)
    low = _rand(r, 4, 2) @ _rand(r, 2, 3)
    rank_one = np.outer(np.ones(4), np.arange(3.0))
    assert vmap(np.linalg.matrix_rank)(np.stack([low, rank_one])).tolist() == [2, 1]
    assert ours_norms.matrix_rank(low) == np.linalg.matrix_rank(low)
    assert grad(lambda a: np.linalg.matrix_rank(a) * a.sum())(a[0]).shape == (3, 3)


# ---- multiple-result primitives under every transform ---------------------------------------


def test_multiple_results_compose(r):
    a = _spd(r, 3, 3)
    f = lambda a: np.linalg.eigh(a)  # noqa: E731
    J = jacrev(f)(a)
    Jf = jacfwd(f)(a)
    for x, y in zip(J, Jf):
        np.testing.assert_allclose(x, y, atol=1e-10)
    stack = np.stack([a, a + np.eye(3)])
    Jv = vmap(jacrev(f))(stack)
    np.testing.assert_allclose(Jv[0][1], jacrev(f)(stack[1])[0], atol=1e-10)
    w_only = lambda a: np.linalg.slogdet(a)[1] + np.linalg.eigvalsh(a).sum()  # noqa: E731
    np.testing.assert_allclose(vmap(hessian(w_only))(stack)[1], hessian(w_only)(stack[1]), atol=1e-10)
    g_vjp = vmap(lambda u: vjp(lambda a: np.linalg.svd(a)[0], a)[1](u)[0])(np.stack([np.eye(3)] * 2))
    np.testing.assert_allclose(g_vjp[0], g_vjp[1])


# ---- SciPy twins -----------------------------------------------------------------------


def test_scipy_twins_match_scipy_on_plain_values(r):
    a, b, spd = _wellcond(r, 3, 3), _rand(r, 3, 2), _spd(r, 3, 3)
    cases = [("solve_triangular", (a, b), dict(lower=True)), ("solve_triangular", (a, b), dict(trans="C")),
             ("solve_triangular", (a, b[:, 0]), dict(trans=1, unit_diagonal=True)),
             ("cholesky", (spd,), {}), ("cholesky", (spd,), dict(lower=True)), ("cho_factor", (spd,), {}),
             ("cho_factor", (spd,), dict(lower=True)), ("expm", (a / 3,), {}), ("inv", (a,), {}),
             ("det", (a,), {}), ("solve", (a, b), {}), ("solve", (spd + np.tril(a, -1), b), dict(assume_a="pos")),
             ("solve", (spd + np.triu(a, 1), b), dict(assume_a="sym", lower=True)),
             ("solve", (a, b), dict(transposed=True)), ("solve", (a, b), dict(assume_a="upper triangular")),
             ("solve", (a, b), dict(assume_a="diagonal")), ("eigvalsh", (spd,), {}),
             ("eigh", (spd,), dict(eigvals_only=True)), ("svdvals", (b,), {}), ("norm", (a,), dict(ord=1)),
             ("pinv", (b,), {}), ("expm_frechet", (a / 3, b @ b.T), {}), ("qr", (b,), dict(mode="economic")),
             ("qr", (b,), dict(mode="r"))]
    for name, args, kw in cases:
        got, expected = getattr(sla, name)(*args, **kw), getattr(sl, name)(*args, **kw)
        _close(got, expected, 1e-10, 1e-12, f"{name} {kw}")
    c = sla.cho_factor(spd)
    np.testing.assert_allclose(sla.cho_solve(c, b), sl.cho_solve(sl.cho_factor(spd), b))
    for x, y in zip(sla.lstsq(b, a[:, 0])[:2], sl.lstsq(b, a[:, 0])[:2]):
        np.testing.assert_allclose(x, y, atol=1e-12)


def test_scipy_twins_under_transforms(r):
    a, b, spd = _wellcond(r, 3, 3), _rand(r, 3, 2), _spd(r, 3, 3)
    check(lambda a, b: sla.solve_triangular(a, b, lower=True), a, b)
    check(lambda a, b: sla.solve_triangular(a, b, trans="T", unit_diagonal=True), a, b)
    check(lambda a, b: sla.solve_triangular(a, b, lower=True), _wellcond(r, 2, 3, 3), b)
    check(lambda a, b: sla.cho_solve(sla.cho_factor(a), b), spd, b)
    check(lambda a, b: sla.cho_solve(sla.cho_factor(a, lower=True), b), spd, b[:, 0])
    check(lambda a: sla.cho_factor(a)[0], spd)
    check(sla.expm, a / 3)
    check(sla.expm, _rand(r, 2, 3, 3) / 2)
    check(sla.expm, (a + 1j * b @ b.T) / 3)
    check(sla.expm_frechet, a / 3, spd)
    check(lambda a, b: sla.solve(a, b, assume_a="pos"), spd + np.triu(a, 1), b)
    check(lambda a: sla.cholesky(a), spd)


def test_expm_second_order_and_adjoint(r):
    a = _rand(r, 3, 3) / 2
    from npfunc.testing import numerical_jacobian as central_jacobian
    f = lambda a: (sla.expm(a) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(hessian(f)(a), central_jacobian(grad(f), a), rtol=1e-5, atol=1e-6)
    e = _rand(r, 3, 3)
    g = grad(lambda a: np.sum(sla.expm(a) * e))(a)
    np.testing.assert_allclose(g, sl.expm_frechet(a.T, e, compute_expm=False), rtol=1e-10)


def test_unmodified_scipy_calls_reach_the_twins(r):
    import npfunc.scipy.linalg as twins

    a = _rand(r, 3, 3)
    np.testing.assert_allclose(grad(lambda a: sl.expm(a).sum())(a), grad(lambda a: twins.expm(a).sum())(a))
    stack = np.stack([a, a.T])
    np.testing.assert_allclose(vmap(lambda a: sl.solve_triangular(a, a))(stack),
                               np.stack([sl.solve_triangular(m, m) for m in stack]), rtol=1e-10)


def test_linalg_errors(r):
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        grad(lambda a: np.linalg.inv(a).sum())(_rand(r, 2, 3))
    with pytest.raises(np.linalg.LinAlgError, match="two-dimensional"):
        grad(lambda a: np.linalg.det(a))(_rand(r, 3))
    with pytest.raises(np.linalg.LinAlgError):
        grad(lambda a: np.linalg.solve(a, np.ones(2)).sum())(np.zeros((2, 2)))
    with pytest.raises(errors.UnsupportedOperationError, match=r"grad\(f\).*subset_by_index"):
        grad(lambda a: sla.eigh(a, subset_by_index=(0, 1))[0].sum())(_spd(r, 3, 3))
    # the generalized problem with b = I is the standard one: the sum of eigenvalues is the trace
    np.testing.assert_allclose(grad(lambda a: sla.eigh(a, np.eye(3))[0].sum())(_spd(r, 3, 3)), np.eye(3),
                               atol=1e-12)


@pytest.mark.parametrize("fn, in_axis, product", [
    (lambda v: A34 @ v, 0, "f64[3,5] = matmul"),      # matrix @ batched vectors: the vectors as columns
    (lambda v: A34 @ v, 1, "f64[3,5] = matmul"),
    (lambda v: v @ A34.T, 0, "f64[5,3] = matmul"),    # batched vectors @ matrix: the vectors as rows
])
def test_a_matrix_times_batched_vectors_is_one_matrix_product(fn, in_axis, product):
    """vmap of a matrix-vector product is one 2-d matrix product (one GEMM), not a
    stacked product of (k, 1) matrices; the values are the loop's."""
    V = np.random.default_rng(1).standard_normal((5, 4))
    V = V if in_axis == 0 else V.T.copy()
    np.testing.assert_allclose(vmap(fn, in_dims=in_axis)(V),
                               np.stack([fn(np.take(V, i, axis=in_axis)) for i in range(5)]), rtol=1e-14)
    assert product in str(jit(vmap(fn, in_dims=in_axis)).lower(V))


A34 = np.arange(12.0).reshape(3, 4) / 7.0
