"""Selection, editing, searching, sorting and set routines of plain NumPy in
programs as a scientist writes them: piecewise physical laws, masking and
compaction of data, boundary conditions appended to a grid, set operations
on labels and grids.  Values against plain NumPy, derivatives against
central differences, under grad, vmap, jacfwd/jacrev and nested transforms;
every error path, with the fix its message names run and checked.
"""
import numpy as np
import pytest

import npfunc
import npfunc.numpy as jnp
from npfunc.errors import (BatchedConversionError, ConcretizationError, DataDependentShapeError,
                           UnsupportedOperationError)
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(7)


def close(a, b, tol=1e-7):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ---- piecewise physical laws --------------------------------------------------------------

G, M, R = 1.0, 2.0, 1.5


def gravity(r, mass=M):
    """Field of a uniform sphere: linear inside, inverse square outside."""
    return np.piecewise(r, [r < R, r >= R], [lambda r: G * mass * r / R**3, lambda r: G * mass / r**2])


def test_piecewise_law_values_gradients_and_batches():
    r = np.array([0.0, 0.4, 1.2, 1.6, 2.5, 4.0])
    close(gravity(r), np.piecewise(r, [r < R, r >= R], [lambda r: G * M * r / R**3, lambda r: G * M / r**2]))
    energy = lambda r: (gravity(r) ** 2).sum()
    close(npfunc.grad(energy)(r), numerical_jacobian(energy, r))
    close(npfunc.jacfwd(gravity)(r), numerical_jacobian(gravity, r))
    close(npfunc.jacrev(gravity)(r), npfunc.jacfwd(gravity)(r))
    radii = np.stack([r, r + 0.35, r * 0.5])
    with np.errstate(all="raise"):  # each branch sees only its own piece: no 1/0 at r = 0
        batched = npfunc.vmap(gravity)(radii)
        per_row = npfunc.vmap(npfunc.grad(energy))(radii)
    close(batched, np.stack([gravity(row) for row in radii]))
    close(per_row, np.stack([numerical_jacobian(energy, row) for row in radii]))
    # second derivative of the potential-like sum, inside and outside
    close(npfunc.hessian(energy)(r), numerical_jacobian(npfunc.grad(energy), r), 1e-6)


def test_piecewise_parameter_derivative_and_its_error_path():
    r = np.array([0.5, 1.0, 2.0, 3.0])
    # NumPy runs np.piecewise itself when only the functions see the traced mass:
    with pytest.raises(ConcretizationError, match=r"npfunc\.numpy\.piecewise"):
        npfunc.grad(lambda m: gravity(r, m).sum())(2.0)

    def fixed(m):  # the fix the message names
        return jnp.piecewise(r, [r < R, r >= R], [lambda r: G * m * r / R**3, lambda r: G * m / r**2]).sum()

    close(npfunc.grad(fixed)(2.0), numerical_jacobian(fixed, np.float64(2.0)))
    close(npfunc.grad(lambda m: gravity(r * m / m, m).sum())(2.0), gravity(r, 1.0).sum())  # traced r works
    masses = np.array([1.0, 2.0, 3.0])
    close(npfunc.vmap(npfunc.grad(fixed))(masses), np.full(3, gravity(r, 1.0).sum()))


def test_piecewise_forms_numpy_accepts():
    x = np.linspace(-2.1, 2.1, 8)  # no entry on a boundary between pieces
    cases = [
        (lambda x: np.piecewise(x, [x < 0], [lambda v: -v, lambda v: v ** 2])),  # "otherwise"
        (lambda x: np.piecewise(x, x > 0.5, [lambda v: v * 3])),  # one condition, not in a list
        (lambda x: np.piecewise(x, [x < -1, x > 1], [-1.0, 1.0])),  # constants; uncovered entries 0
        (lambda x: np.piecewise(x, [x < 0, x < 1], [lambda v, k: k * v, lambda v, k: v / k], 4.0)),  # later wins
    ]
    for f in cases:
        close(npfunc.jvp(f, (x,), (np.ones_like(x),))[0], f(x))
        close(npfunc.jacfwd(f)(x), numerical_jacobian(f, x))
        close(npfunc.vmap(f)(np.stack([x, -x])), np.stack([f(x), f(-x)]))
    ints = np.arange(-3, 4)
    assert npfunc.vmap(lambda v: np.piecewise(v, [v < 0], [lambda u: u * 2.7]))(ints[None]).dtype == ints.dtype
    close(npfunc.grad(lambda s: np.piecewise(s, [s > 0, s <= 0], [np.sin, np.cos]))(np.float64(0.7)), np.cos(0.7))


def huber(res, delta):
    """A robust loss written with np.select: quadratic core, linear tails."""
    a = np.abs(res)
    return np.select([a <= delta, a > delta], [0.5 * res ** 2, delta * (a - 0.5 * delta)]).sum()


def test_select_robust_loss():
    res = np.array([-3.0, -0.4, 0.1, 0.9, 2.2])
    close(npfunc.grad(huber)(res, 1.0), numerical_jacobian(lambda r: huber(r, 1.0), res))
    close(npfunc.grad(huber, argnums=1)(res, 1.0), numerical_jacobian(lambda d: huber(res, d), np.float64(1.0)))
    batch, deltas = RNG.normal(size=(4, 5)) * 2, np.array([0.5, 1.0, 1.5, 2.0])
    close(npfunc.vmap(huber)(batch, deltas), [huber(b, d) for b, d in zip(batch, deltas)])
    close(npfunc.vmap(npfunc.grad(huber))(batch, deltas),
          [numerical_jacobian(lambda r: huber(r, d), b) for b, d in zip(batch, deltas)])
    # dtype rules: float32 choices with a Python default stay float32
    x32 = res.astype(np.float32)
    out = npfunc.vmap(lambda x: np.select([x > 0], [x], 0.5))(x32[None])
    assert out.dtype == np.float32
    # a traced default alone is not handed to npfunc by NumPy: the message names the twin
    with pytest.raises(npfunc.errors.NpfuncError, match=r"npfunc\.numpy\.select"):
        npfunc.grad(lambda d: np.select([res > 0], [res], d).sum())(np.float64(1.0))
    close(npfunc.grad(lambda d: jnp.select([res > 0], [res], d).sum())(np.float64(1.0)), (res <= 0).sum())


def test_choose_material_by_region():
    region = np.array([0, 0, 1, 2, 2, 1])  # material index of each cell
    x = np.linspace(0.0, 1.0, 6)

    def heat(k, x):  # conductivity per material, applied cell by cell
        return (np.choose(region, [k[0], k[1], k[2]]) * x ** 2).sum()

    k = np.array([1.0, 5.0, 0.5])
    close(npfunc.grad(heat)(k, x), numerical_jacobian(lambda k: heat(k, x), k))
    close(npfunc.jacrev(npfunc.grad(heat, argnums=1), argnums=1)(k, x), np.diag(2 * np.choose(region, k)))
    # the index itself traced: one region map per batch element
    regions = np.array([[0, 1, 2, 0, 1, 2], [2, 2, 2, 0, 0, 0]])
    got = npfunc.vmap(lambda r: np.choose(r, [x, -x, x ** 2]))(regions)
    close(got, [np.choose(r, [x, -x, x ** 2]) for r in regions])
    close(npfunc.vmap(lambda r: np.choose(r, [x, -x], mode="wrap"))(regions), [np.choose(r, [x, -x], mode="wrap")
                                                                              for r in regions])
    with pytest.raises(ValueError, match="invalid entry in choice array"):
        npfunc.vmap(lambda r: np.choose(r, [x, -x]))(regions)  # 2 choices, index 2: NumPy raises too
    with pytest.raises(ValueError, match="invalid entry"):
        npfunc.jit(lambda r: np.choose(r, [x, -x]))(regions[1])


# ---- masking and compaction of data ---------------------------------------------------------

def mean_of_valid(x):
    """Average of the readings above a detection threshold."""
    return np.extract(x > 0.1, x).mean()


def test_compaction_under_grad_and_the_vmap_error_with_both_fixes():
    x = np.array([0.5, -1.0, 0.05, 2.0, 0.3])
    close(npfunc.grad(mean_of_valid)(x), numerical_jacobian(mean_of_valid, x))
    close(npfunc.grad(lambda x: np.compress(x > 0.1, x).sum())(x), (x > 0.1).astype(float))
    close(npfunc.grad(lambda x: (x[np.nonzero(x > 0.1)] ** 2).sum())(x), 2 * x * (x > 0.1))
    close(npfunc.grad(lambda x: x[np.flatnonzero(x > 0.1)].prod())(x),
          numerical_jacobian(lambda x: x[np.flatnonzero(x > 0.1)].prod(), x))
    batch = np.stack([x, x[::-1] * 2, -x])
    with pytest.raises(DataDependentShapeError, match=r"vmap\(f\).*np\.extract.*np\.where.*size=k") as info:
        npfunc.vmap(mean_of_valid)(batch)
    assert "npfunc.numpy.extract(condition, a, size=k" in str(info.value)

    def masked_mean(x):  # fix 1: keep the shape
        keep = x > 0.1
        return np.where(keep, x, 0.0).sum() / keep.sum()

    close(npfunc.vmap(masked_mean)(batch[:2]), [mean_of_valid(b) for b in batch[:2]])
    # fix 2: exactly k entries, padded; same entries as NumPy, gradient through them
    padded = npfunc.vmap(lambda x: jnp.extract(x > 0.1, x, size=4, fill_value=0.0))(batch)
    for row, b in zip(padded, batch):
        kept = np.extract(b > 0.1, b)
        close(row, np.concatenate([kept, np.zeros(4 - kept.size)])[:4])
    g = npfunc.vmap(npfunc.grad(lambda x: jnp.extract(x > 0.1, x, size=4).sum()))(batch)
    close(g, (batch > 0.1).astype(float))
    with pytest.raises(DataDependentShapeError, match=r"jit\(f\).*np\.compress"):
        npfunc.jit(lambda x: np.compress(x > 0, x))(x)
    close(npfunc.jit(lambda x: jnp.compress(x > 0, x, size=3))(x), [0.5, 0.05, 2.0])


@pytest.mark.parametrize("name", ["nonzero", "argwhere", "flatnonzero"])
def test_index_searches(name):
    fn = getattr(np, name)
    x = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]])
    # under grad the indices are plain arrays, as NumPy's
    out = npfunc.jvp(lambda x: (fn(x), x)[0], (x,), (x,))[0]
    for got, ref in zip(out if name == "nonzero" else [out], fn(x) if name == "nonzero" else [fn(x)]):
        assert np.array_equal(got, ref) and np.asarray(got).dtype == np.intp
    with pytest.raises(DataDependentShapeError, match=rf"np\.{name}\(a\).*npfunc\.numpy\.{name}\(a, size=k"):
        npfunc.vmap(fn)(np.stack([x, -x]))
    with pytest.raises(DataDependentShapeError, match=rf"jit\(f\).*np\.{name}"):
        npfunc.jit(fn)(x)
    # the fix: a fixed number of indices, the first ones in NumPy's order, then fill_value
    sized = getattr(jnp, name)
    batch = np.stack([x, x.T.reshape(2, 3), np.zeros((2, 3))])
    got = npfunc.vmap(lambda x: sized(x, size=4, fill_value=-1))(batch)
    jitted = npfunc.jit(lambda x: sized(x, size=4, fill_value=-1))
    for k, b in enumerate(batch):
        ref = fn(b)
        if name == "nonzero":
            want = [np.concatenate([r, -np.ones(4 - r.size, int)]) for r in ref]
            for g_dim, w in zip(got, want):
                assert np.array_equal(g_dim[k], w)
            assert all(np.array_equal(j, w) for j, w in zip(jitted(b), want))
        elif name == "argwhere":
            want = np.concatenate([ref, -np.ones((4 - len(ref), 2), int)])
            assert np.array_equal(got[k], want) and np.array_equal(jitted(b), want)
        else:
            want = np.concatenate([ref, -np.ones(4 - ref.size, int)])
            assert np.array_equal(got[k], want) and np.array_equal(jitted(b), want)
    # one-argument np.where is np.nonzero
    with pytest.raises(DataDependentShapeError, match="np.nonzero"):
        npfunc.vmap(lambda x: np.where(x > 0))(batch)


def test_data_dependent_functions_under_functionalize():
    x = np.array([0.0, 2.0, 0.0, 3.0, 1.0, 0.0])
    assert np.array_equal(npfunc.functionalize(np.argwhere)(x), np.argwhere(x))
    close(npfunc.functionalize(np.trim_zeros)(x), np.trim_zeros(x))
    close(npfunc.functionalize(lambda x: np.union1d(x, x[::-1] + 1))(x), np.union1d(x, x[::-1] + 1))


def test_trim_zeros_signal():
    signal = np.array([0.0, 0.0, 0.7, -1.2, 0.0, 2.0, 0.0])
    energy = lambda s: (np.trim_zeros(s) ** 2).sum() / np.trim_zeros(s).size
    close(energy(signal), (np.array([0.7, -1.2, 0.0, 2.0]) ** 2).mean())
    close(npfunc.grad(energy)(signal), [0, 0, 2 * 0.7 / 4, -2 * 1.2 / 4, 0, 4.0 / 4, 0])
    close(npfunc.grad(lambda s: np.trim_zeros(s, "b").sum())(signal), [1, 1, 1, 1, 1, 1, 0])
    image = np.zeros((4, 5))
    image[1:3, 2:4] = RNG.normal(size=(2, 2))
    close(npfunc.jvp(lambda a: np.trim_zeros(a, axis=1), (image,), (image,))[0], np.trim_zeros(image, axis=1))
    batch = np.stack([signal, np.roll(signal, 1)])
    with pytest.raises(DataDependentShapeError, match=r"np\.trim_zeros.*size=k"):
        npfunc.vmap(energy)(batch)
    got = npfunc.vmap(lambda s: jnp.trim_zeros(s, size=5, fill_value=-1.0))(batch)
    for row, s in zip(got, batch):
        kept = np.trim_zeros(s)
        close(row, np.concatenate([kept, -np.ones(5 - kept.size)]))
    close(jnp.trim_zeros(np.zeros(3), size=2), [0.0, 0.0])


# ---- boundary conditions and assembled arrays --------------------------------------------------

def second_difference(u, left, right):
    """The discrete Laplacian of interior values u, with Dirichlet values appended."""
    full = np.append(np.insert(u, 0, left), right)
    return full[2:] - 2 * full[1:-1] + full[:-2]


def test_boundary_conditions_appended_to_a_grid():
    u = np.sin(np.linspace(0.3, 2.5, 6))
    left, right = np.float64(0.2), np.float64(-0.4)
    lap = lambda u: second_difference(u, left, right)
    close(lap(u), np.convolve(np.concatenate([[left], u, [right]]), [1, -2, 1], "valid"))
    J = npfunc.jacfwd(lap)(u)
    close(J, numerical_jacobian(lap, u))
    close(npfunc.jacrev(lap)(u), J)
    close(npfunc.jacfwd(second_difference, argnums=1)(u, left, right), np.eye(6)[0])
    close(npfunc.grad(lambda r: second_difference(u, left, r).sum())(right), 1.0)
    batch = np.stack([u, u ** 2, -u])
    lefts = np.array([0.0, 1.0, 2.0])
    close(npfunc.vmap(second_difference, in_dims=(0, 0, None))(batch, lefts, right),
          [second_difference(b, l, right) for b, l in zip(batch, lefts)])
    energy = lambda u: (lap(u) ** 2).sum()
    close(npfunc.hessian(energy)(u), 2 * J.T @ J, 1e-6)


def test_insert_and_delete_positions():
    x = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
    # drop the largest reading of each row (a traced position under vmap)
    drop_max = lambda x: np.delete(x, np.argmax(x))
    batch = np.stack([x, x[::-1], x * np.array([1, 9, 1, 1, 1])])
    close(npfunc.vmap(drop_max)(batch), [np.delete(b, np.argmax(b)) for b in batch])
    close(npfunc.vmap(npfunc.grad(lambda x: drop_max(x).sum()))(batch),
          [np.arange(5) != np.argmax(b) for b in batch])
    # insert the mean at a position that depends on the data
    ins = lambda x: np.insert(x, np.argmin(x), x.mean())
    close(npfunc.vmap(ins)(batch), [np.insert(b, np.argmin(b), b.mean()) for b in batch])
    close(npfunc.jacfwd(ins)(x), numerical_jacobian(ins, x))
    for obj, axis in [([0, 2, 2], 1), (slice(None, None, 2), 0), (np.array([True, False, True]), 1), (-1, None)]:
        a = RNG.normal(size=(2, 3))
        close(npfunc.jvp(lambda a: np.delete(a, obj, axis), (a,), (a,))[0], np.delete(a, obj, axis))
    a = RNG.normal(size=(2, 3))
    for obj, values, axis in [(1, [[7.0], [8.0]], 1), ([1], [7.0, 8.0], 1), ([2, 0, 2], 5.0, 1),
                              (np.array([True, False]), 1.0, 0), (3, [1.0, 2.0], None)]:
        got = npfunc.jvp(lambda a: np.insert(a, obj, values, axis), (a,), (a,))[0]
        close(got, np.insert(a, obj, values, axis))
    with pytest.raises(IndexError):
        npfunc.vmap(lambda x, i: np.insert(x, i, 0.0))(batch, np.array([0, 9, 1]))
    with pytest.raises(DataDependentShapeError, match=r"np\.delete"):
        npfunc.vmap(lambda x, i: np.delete(x, i))(batch, np.array([[0, 1], [1, 1], [2, 3]]))
    assert np.insert(np.arange(3), 1, 2.7).dtype == npfunc.vmap(lambda v: np.insert(np.arange(3), 1, v))(
        np.array([2.7, 1.2])).dtype


def test_block_saddle_point_system():
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    B = np.array([[1.0], [2.0]])

    def solution(A, B):
        K = np.block([[A, B], [B.T, np.zeros((1, 1))]])
        return np.linalg.solve(K, np.array([1.0, 2.0, 0.5]))

    close(solution(A, B), np.linalg.solve(np.block([[A, B], [B.T, np.zeros((1, 1))]]), [1.0, 2.0, 0.5]))
    close(npfunc.jacfwd(solution)(A, B), numerical_jacobian(lambda A: solution(A, B), A), 1e-6)
    close(npfunc.jacrev(solution, argnums=1)(A, B), numerical_jacobian(lambda B: solution(A, B), B), 1e-6)
    scales = np.array([1.0, 2.0, 3.0])
    close(npfunc.vmap(lambda s: solution(A * s, B))(scales), [solution(A * s, B) for s in scales])
    with pytest.raises(TypeError, match="tuple"):
        npfunc.grad(lambda a: np.block(([a, a],)).sum())(np.ones(2))
    with pytest.raises(ValueError, match="depths are mismatched"):
        npfunc.grad(lambda a: np.block([[a], a]).sum())(np.ones(2))


def test_resize_periodic_extension():
    period = np.array([0.0, 1.0, 0.5])
    tiled = lambda p: np.resize(p, (2, 4))
    close(tiled(period), np.resize(period, (2, 4)))
    close(npfunc.grad(lambda p: (tiled(p) ** 2).sum())(period), 2 * period * np.array([3, 3, 2]))
    close(npfunc.vmap(tiled)(np.stack([period, -period])), [np.resize(period, (2, 4)), np.resize(-period, (2, 4))])


# ---- in-place selection -----------------------------------------------------------------------

def clamp_negative(c):
    """Concentrations: negative entries from a solver set to a floor, in place."""
    c = c.copy()
    np.place(c, c < 0, [1e-3])
    return c


def test_place_and_putmask_in_place():
    c = np.array([0.4, -0.1, 0.2, -0.3])
    close(clamp_negative(c), [0.4, 1e-3, 0.2, 1e-3])
    close(npfunc.grad(lambda c: (clamp_negative(c) ** 2).sum())(c), 2 * c * (c >= 0))
    batch = np.stack([c, -c])
    close(npfunc.vmap(clamp_negative)(batch), [clamp_negative(b) for b in batch])

    def cyc(a, v):
        a = a * 1.0
        np.putmask(a, a > 0, v)
        return a

    v = np.array([10.0, 20.0, 30.0])
    ref = c.copy()
    np.putmask(ref, c > 0, v)
    close(cyc(c, v), ref)
    jac_a, jac_v = npfunc.jacfwd(cyc, argnums=(0, 1))(c, v)  # a traced: it can take traced values
    close(jac_a, numerical_jacobian(lambda a: cyc(a, v), c))
    close(jac_v, np.zeros((4, 3)) + (c > 0)[:, None] * np.eye(3)[np.arange(4) % 3])
    close(npfunc.vmap(cyc, in_dims=(0, None))(batch, v), [cyc(b, v) for b in batch])
    # a plain array cannot hold traced values: the message names the functional fix
    plain = np.zeros(4)
    with pytest.raises(UnsupportedOperationError, match=r"npfunc\.numpy\.set_at\(arr, mask, vals\)"):
        npfunc.grad(lambda s: (np.place(plain, c < 0, s * np.ones(2)), plain.sum())[1])(np.float64(2.0))
    close(npfunc.grad(lambda s: jnp.set_at(plain, c < 0, np.stack([s, s])).sum())(np.float64(2.0)), 2.0)
    with pytest.raises(ValueError, match="Cannot insert from an empty array"):
        npfunc.vmap(lambda c: np.place(c * 1.0, c < 0, []))(batch)


# ---- sorting and searching --------------------------------------------------------------------

def test_nearest_neighbours_with_partition():
    points = RNG.normal(size=(6, 2))
    query = np.array([0.1, -0.2])

    def knn_radius(q, k=3):  # mean distance to the k nearest points
        d = np.sqrt(((points - q) ** 2).sum(axis=1))
        return np.partition(d, k - 1)[:k].mean()

    close(npfunc.grad(knn_radius)(query), numerical_jacobian(knn_radius, query))
    queries = RNG.normal(size=(4, 2))
    close(npfunc.vmap(npfunc.grad(knn_radius))(queries), [numerical_jacobian(knn_radius, q) for q in queries])
    close(npfunc.hessian(knn_radius)(query), numerical_jacobian(npfunc.grad(knn_radius), query), 1e-5)
    d = np.sqrt(((points - query) ** 2).sum(axis=1))
    assert np.array_equal(npfunc.vmap(lambda d: np.argpartition(d, 2))(d[None])[0], np.argpartition(d, 2))
    with pytest.raises(UnsupportedOperationError, match="traced kth"):
        npfunc.vmap(lambda d, k: np.partition(d, k))(d[None], np.array([2]))
    with pytest.raises(ValueError, match="out of bounds"):
        npfunc.grad(lambda d: np.partition(d, 6).sum())(d)


def test_lexsort_records_and_sort_complex():
    surname = np.array([2.0, 1.0, 2.0, 1.0])
    age = np.array([30.0, 40.0, 20.0, 40.0])
    order = np.lexsort((age, surname))
    got = npfunc.jvp(lambda s: np.lexsort((age, s)), (surname,), (surname,))[0]
    assert np.array_equal(got, order)
    batch = np.stack([surname, surname[::-1]])
    assert np.array_equal(npfunc.vmap(lambda s: np.lexsort((age, s)))(batch),
                          [np.lexsort((age, s)) for s in batch])
    roots = np.array([1 + 2j, -1 + 0.5j, 1 - 1j])
    close(npfunc.jvp(np.sort_complex, (roots,), (np.ones(3, complex),))[1], np.ones(3))
    # the real part drives the order; the derivative follows each root
    shift = lambda t: np.sort_complex(roots * t).real.sum()
    close(npfunc.grad(shift)(np.float64(1.5)), roots.real.sum())
    assert npfunc.vmap(np.sort_complex)(np.ones((2, 3), np.float32)).dtype == np.complex128


# ---- set operations on labels and grids ---------------------------------------------------------

def test_sets_of_labels():
    train = np.array([3, 1, 4, 1, 5, 9])
    test_ = np.array([2, 7, 1, 8, 2, 8])
    seen = np.isin(test_, train)
    assert np.array_equal(npfunc.vmap(lambda t: np.isin(t, train))(np.stack([test_, train])),
                          [seen, np.isin(train, train)])
    # per-sample label sets: the mask works under vmap (fixed shape) ...
    close(npfunc.vmap(lambda t, x: np.where(np.isin(t, train), x, 0.0).sum())(
        np.stack([test_, train]), np.ones((2, 6))), [seen.sum(), 6.0])
    # ... the set itself has a data-dependent length
    with pytest.raises(DataDependentShapeError, match=r"np\.intersect1d.*np\.isin.*size=k"):
        npfunc.vmap(lambda t: np.intersect1d(t, train))(np.stack([test_, train]))
    common = npfunc.vmap(lambda t: jnp.intersect1d(t, train, size=4, fill_value=-1))(np.stack([test_, train]))
    assert np.array_equal(common, [[1, -1, -1, -1], [1, 3, 4, 5]])


def test_union_of_time_grids_differentiates_through_the_points():
    t1 = np.array([0.0, 0.5, 1.25, 2.0])
    t2 = np.array([0.25, 1.0, 1.75])

    def integral(t1, t2):  # trapezoid rule of sin on the merged grid
        t = np.union1d(t1, t2)
        y = np.sin(t)
        return ((y[1:] + y[:-1]) * (t[1:] - t[:-1])).sum() / 2

    close(npfunc.grad(integral)(t1, t2), numerical_jacobian(lambda a: integral(a, t2), t1))
    close(npfunc.grad(integral, argnums=1)(t1, t2), numerical_jacobian(lambda b: integral(t1, b), t2))
    close(npfunc.jacfwd(lambda a: np.union1d(a, t2))(t1), numerical_jacobian(lambda a: np.union1d(a, t2), t1))
    # a shared point belongs to its first occurrence (ar1), as NumPy's return_index says
    g1, g2 = npfunc.grad(lambda a, b: np.union1d(a, b).sum(), argnums=(0, 1))(t1, np.array([0.5, 3.0]))
    close(g1, [1, 1, 1, 1]), close(g2, [0, 1])
    with pytest.raises(DataDependentShapeError, match=r"np\.union1d"):
        npfunc.vmap(integral, in_dims=(0, None))(np.stack([t1, t1 + 0.1]), t2)
    sized = npfunc.vmap(lambda a: jnp.union1d(a, t2, size=7))(np.stack([t1, t1 + 0.1]))
    close(sized, [np.union1d(t1, t2), np.union1d(t1 + 0.1, t2)])
    close(npfunc.vmap(npfunc.grad(lambda a: jnp.union1d(a, t2, size=7).sum()))(np.stack([t1, t1 + 0.1])),
          np.ones((2, 4)))


def test_setdiff_setxor_intersect_values_indices_and_derivatives():
    measured = np.array([50.0, 60.0, 120.0, 50.0, 180.0])
    known = np.array([60.0, 180.0, 240.0])
    close(np.setdiff1d(measured, known), npfunc.jvp(lambda m: np.setdiff1d(m, known), (measured,), (measured,))[0])
    g = npfunc.grad(lambda m: (np.setdiff1d(m, known) ** 2).sum())(measured)
    close(g, [100.0, 0, 240.0, 0, 0])  # the repeated 50 counts once, at its first occurrence
    for au in (False, True):
        a, b = (np.unique(measured), known) if au else (measured, known)
        for name in ("intersect1d", "setdiff1d", "setxor1d"):
            ref = getattr(np, name)(a, b, assume_unique=au)
            got = npfunc.jvp(lambda a: getattr(np, name)(a, b, assume_unique=au), (a,), (a,))
            close(got[0], ref)
    ref = np.intersect1d(measured, known, return_indices=True)
    got = npfunc.jvp(lambda m: np.intersect1d(m, known, return_indices=True), (measured,), (measured,))[0]
    for r, o in zip(ref, got):
        assert np.array_equal(r, o)
    close(npfunc.grad(lambda k: np.intersect1d(measured, k).sum())(known), [0, 0, 0])  # values come from ar1
    close(npfunc.grad(lambda m: np.setxor1d(m, known).sum())(measured), [1, 0, 1, 0, 0])
    with pytest.raises(UnsupportedOperationError, match="searchsorted"):
        jnp.intersect1d(measured, known, return_indices=True, size=3)


@pytest.mark.parametrize("name", ["union1d", "intersect1d", "setdiff1d", "setxor1d"])
def test_sized_set_operations_equal_numpy_padded(name):
    rng = np.random.default_rng(3)
    for trial in range(60):
        a = rng.integers(0, 5, rng.integers(0, 7)).astype(float)
        b = rng.integers(0, 5, rng.integers(0, 7)).astype(float)
        if trial % 3 == 0:
            a[rng.random(a.size) < 0.3] = np.nan
            b[rng.random(b.size) < 0.3] = np.nan
        ref = getattr(np, name)(a, b)
        got = getattr(jnp, name)(a, b, size=ref.size + 2, fill_value=-7.0)
        assert np.array_equal(got, np.concatenate([ref, [-7.0, -7.0]]), equal_nan=True), (a, b)
        truncated = getattr(jnp, name)(a, b, size=max(ref.size - 1, 0))
        assert np.array_equal(truncated, ref[:max(ref.size - 1, 0)], equal_nan=True)


def test_set_operations_under_jit_need_size():
    a, b = np.array([1.0, 2.0, 2.0]), np.array([2.0, 3.0])
    with pytest.raises(DataDependentShapeError, match=r"jit\(f\).*np\.setxor1d"):
        npfunc.jit(np.setxor1d)(a, b)
    f = npfunc.jit(lambda a, b: jnp.setxor1d(a, b, size=3))
    close(f(a, b), [1.0, 3.0, 0.0])
    close(f(np.array([5.0, 4.0, 4.0]), b), [2.0, 3.0, 4.0])  # replayed with new values


# ---- numbers: i0, nextafter, spacing, gcd, lcm, fftfreq ------------------------------------------

def von_mises_loglik(kappa, mu, x):
    return (kappa * np.cos(x - mu) - np.log(2 * np.pi * np.i0(kappa))).sum()


def test_von_mises_likelihood_through_i0():
    x = np.array([0.1, -0.4, 0.7, 0.2])
    f = lambda k: von_mises_loglik(k, 0.1, x)
    close(npfunc.grad(f)(np.float64(2.0)), numerical_jacobian(f, np.float64(2.0)))
    close(npfunc.hessian(f)(np.float64(2.0)), numerical_jacobian(npfunc.grad(f), np.float64(2.0)), 1e-6)
    kappas = np.array([0.5, 2.0, 8.0])
    close(npfunc.vmap(npfunc.grad(f))(kappas), [numerical_jacobian(f, k) for k in kappas])
    assert npfunc.vmap(np.i0)(np.ones((2, 2), np.float32)).dtype == np.float32


def test_floating_and_integer_routines():
    x = np.array([1.0, -2.5, 1e-3])
    close(npfunc.grad(lambda x: np.nextafter(x, np.inf).sum())(x), np.ones(3))
    close(npfunc.grad(lambda x: (x / np.spacing(x)).sum() * 0 + x.sum())(x), np.ones(3))
    assert np.array_equal(npfunc.vmap(np.spacing)(x[None])[0], np.spacing(x))
    a, b = np.array([[12, 18], [7, 0]]), np.array([8, 6])
    assert np.array_equal(npfunc.vmap(np.gcd, in_dims=(0, None))(a, b), np.gcd(a, b))
    assert np.array_equal(npfunc.vmap(np.lcm)(a, a[::-1]), np.lcm(a, a[::-1]))


def test_spectral_derivative_with_traced_spacing():
    n = 16
    u = np.sin(2 * np.pi * np.arange(n) / n)

    def derivative_norm(d):  # |du/dx| by FFT on a grid of spacing d
        k = 2j * np.pi * np.fft.fftfreq(n, d)
        return np.abs(np.fft.ifft(k * np.fft.fft(u))).sum()

    close(npfunc.grad(derivative_norm)(np.float64(0.1)), numerical_jacobian(derivative_norm, np.float64(0.1)),
          1e-6)
    close(npfunc.vmap(lambda d: np.fft.rfftfreq(n, d))(np.array([0.1, 0.2])),
          [np.fft.rfftfreq(n, 0.1), np.fft.rfftfreq(n, 0.2)])


def test_roll_by_a_traced_shift_and_index_arithmetic():
    x = np.array([[1.0, 4.0, 2.0, 0.5], [3.0, 0.0, 7.0, 1.0]])
    peak_first = lambda v: np.roll(v, -np.argmax(v))  # align each row at its peak
    close(npfunc.vmap(peak_first)(x), [np.roll(r, -np.argmax(r)) for r in x])
    close(npfunc.vmap(npfunc.grad(lambda v: (peak_first(v) * np.arange(4)).sum()))(x),
          [np.roll(np.arange(4.0), np.argmax(r)) for r in x])
    with pytest.raises(BatchedConversionError, match=r"npfunc\.numpy\.roll"):
        npfunc.vmap(lambda s: np.roll(x, s, axis=1), in_dims=0)(np.array([1, 2]))
    close(npfunc.vmap(lambda s: jnp.roll(x, s, axis=1))(np.array([1, 2])), [np.roll(x, 1, 1), np.roll(x, 2, 1)])
    flat = npfunc.vmap(lambda v: np.argmax(v))(x.reshape(1, 8))
    rows, cols = npfunc.vmap(lambda i: np.unravel_index(i, x.shape))(flat)
    assert (rows[0], cols[0]) == np.unravel_index(np.argmax(x), x.shape)
    back = npfunc.vmap(lambda r, c: np.ravel_multi_index((r, c), x.shape))(rows, cols)
    assert back[0] == np.argmax(x)
    with pytest.raises(ValueError, match="out of bounds"):
        npfunc.vmap(lambda i: np.unravel_index(i, (2, 2)))(np.array([1, 4]))
    assert np.array_equal(npfunc.vmap(lambda a, b: np.array_equiv(a, b))(x, x[::-1]), [False, False])
    i, j = npfunc.vmap(lambda a: np.tril_indices_from(a), in_dims=0)(np.ones((1, 3, 3)))
    assert np.array_equal(i[0], np.tril_indices(3)[0]) and np.array_equal(j[0], np.tril_indices(3)[1])


def test_grad_of_code_that_merely_uses_the_non_differentiable_functions():
    def loss(w):
        labels = np.unique(np.round(w))  # counts and labels: no derivative
        picked = w[np.argwhere(w > 0).ravel()]
        n_common = np.intersect1d(np.round(w), labels).size
        return (picked ** 2).sum() * n_common + np.count_nonzero(w > 1) * w.sum()

    w = np.array([0.4, -1.2, 2.3, 1.7])
    close(npfunc.grad(loss)(w), numerical_jacobian(loss, w))
    close(npfunc.jacrev(npfunc.grad(loss))(w), numerical_jacobian(npfunc.grad(loss), w), 1e-6)


def test_unique_under_jit_raises_instead_of_freezing_its_length():
    f = lambda x: np.unique(x).sum() + len(np.unique(x))  # len would be frozen at the first call
    with pytest.raises(DataDependentShapeError, match=r"jit\(f\).*np\.unique.*union1d\(ar, ar\[:0\], size=k\)"):
        npfunc.jit(f)(np.array([1.0, 1.0, 2.0]))
    fixed = npfunc.jit(lambda x: jnp.union1d(x, x[:0], size=3, fill_value=np.nan))
    close(fixed(np.array([1.0, 1.0, 2.0])), [1.0, 2.0, np.nan])
    close(fixed(np.array([1.0, 3.0, 2.0])), [1.0, 2.0, 3.0])
    close(npfunc.grad(f)(np.array([1.0, 3.0, 2.0])), np.ones(3))  # grad: values are concrete, len too


def test_out_arguments_and_linearize():
    a = np.array([0, 1, 1, 0])
    x = np.array([1.0, 2.0, 3.0, 4.0])

    def chosen(x):
        out = x * 0.0  # a traced buffer takes the result
        np.choose(a, [x, x ** 2], out=out)
        return out

    close(chosen(x), np.choose(a, [x, x ** 2]))
    close(npfunc.jacfwd(chosen)(x), np.diag(np.choose(a, [np.ones(4), 2 * x])))

    def compressed(x):
        out = np.zeros(2) + 0.0 * x[:2]
        np.compress([True, False, False, True], x, out=out)
        return out

    close(npfunc.jacrev(compressed)(x), np.eye(4)[[0, 3]])
    out, lin = npfunc.linearize(mean_of_valid, np.array([0.5, -1.0, 2.0]))
    close(out, 1.25)
    close(lin(np.ones(3)), 1.0)
