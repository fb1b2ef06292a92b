"""np.convolve / np.correlate and npfunc.scipy.signal: values (bit-for-bit on
plain inputs), gradients in both arguments against central differences,
vmap against a loop (and without a loop), second order, errors."""
import numpy as np
import pytest
import scipy.signal as ss

import npfunc
from npfunc.primitives import convolution
from npfunc.scipy import signal as S

MODES = ["full", "same", "valid"]
PAIRS_1D = [(7, 3), (3, 7), (4, 4), (5, 2), (1, 4), (6, 1)]


def _fd_grad(f, args, i, eps=1e-6):
    args = [np.asarray(a, dtype=np.float64) for a in args]
    out = np.zeros_like(args[i])
    for j in np.ndindex(args[i].shape):
        up, down = [a.copy() for a in args], [a.copy() for a in args]
        up[i][j] += eps
        down[i][j] -= eps
        out[j] = (f(*up) - f(*down)) / (2 * eps)
    return out


@pytest.mark.parametrize("fn", [np.convolve, np.correlate])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,k", PAIRS_1D)
def test_numpy_1d_values_and_gradients(fn, mode, n, k):
    rng = np.random.default_rng(n * 10 + k)
    a, v = rng.standard_normal(n), rng.standard_normal(k)
    ref = fn(a, v, mode)
    out, pullback = npfunc.vjp(lambda a, v: fn(a, v, mode), a, v)
    assert np.array_equal(out, ref)                     # NumPy's own result, bit for bit
    w = rng.standard_normal(ref.shape)
    ga, gv = pullback(w)
    loss = lambda a, v: np.sum(w * fn(a, v, mode))      # noqa: E731
    np.testing.assert_allclose(ga, _fd_grad(loss, (a, v), 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gv, _fd_grad(loss, (a, v), 1), rtol=1e-6, atol=1e-9)
    _, t = npfunc.jvp(lambda a, v: fn(a, v, mode), (a, v), (a, v))
    np.testing.assert_allclose(t, 2 * ref, rtol=1e-12, atol=1e-12)   # bilinear


def test_numpy_defaults_scalars_and_complex():
    a, v = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5])
    assert np.array_equal(npfunc.vjp(lambda a: np.convolve(a, v), a)[0], np.convolve(a, v))
    assert np.array_equal(npfunc.vjp(lambda a: np.correlate(a, v), a)[0], np.correlate(a, v))
    assert np.array_equal(convolution.convolve(2.0, v), np.convolve(2.0, v))
    z = a + 1j * v
    assert np.array_equal(convolution.correlate(z, v[::-1] - 2j, "full"), np.correlate(z, v[::-1] - 2j, "full"))
    # complex: the torch convention, g * conj(d out / d a), checked on the real loss |out|^2
    loss = lambda re: np.sum(np.abs(np.correlate(re + 1j * v, z, "full")) ** 2)  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(loss)(a), _fd_grad(loss, (a,), 0), rtol=1e-6)


@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sa,sv", [((5, 6), (2, 3)), ((2, 3), (5, 6)), ((4, 4), (4, 4)), ((6, 3), (3, 2))])
def test_scipy_signal_nd(name, mode, sa, sv):
    rng = np.random.default_rng(sum(sa) * 7 + sum(sv))
    a, v = rng.standard_normal(sa), rng.standard_normal(sv)
    ours, theirs = getattr(S, name), getattr(ss, name)
    ref = theirs(a, v, mode)
    assert np.array_equal(ours(a, v, mode), ref)         # plain inputs: SciPy's own result
    out, pullback = npfunc.vjp(lambda a, v: ours(a, v, mode), a, v)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(ref.shape)
    ga, gv = pullback(w)
    loss = lambda a, v: np.sum(w * theirs(a, v, mode))   # noqa: E731
    np.testing.assert_allclose(ga, _fd_grad(loss, (a, v), 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gv, _fd_grad(loss, (a, v), 1), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_scipy_signal_3d_and_methods(mode):
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal((4, 3, 5)), rng.standard_normal((2, 2, 3))
    for method in ("auto", "direct", "fft"):
        for name in ("convolve", "correlate"):
            ref = getattr(ss, name)(a, v, mode, method)
            assert np.array_equal(getattr(S, name)(a, v, mode, method), ref)
            got = npfunc.jvp(lambda a: getattr(S, name)(a, v, mode, method), (a,), (a,))[1]
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_large_kernel_uses_fft_and_matches():
    rng = np.random.default_rng(2)
    a, v = rng.standard_normal((3, 300)), rng.standard_normal(120)
    got = npfunc.vmap(lambda a: S.convolve(a, v, "same"))(a)
    np.testing.assert_allclose(got, np.stack([ss.convolve(r, v, "same") for r in a]), rtol=1e-10, atol=1e-10)
    g = npfunc.vmap(npfunc.grad(lambda v, a: np.sum(S.correlate(a, v, "valid") ** 2)), in_dims=(None, 0))(v, a)
    for gi, ai in zip(g, a):  # d/dv sum(c^2), c = correlate(a, v) = correlate(a, 2c)
        expected = np.correlate(ai, 2 * np.correlate(ai, v, "valid"), "valid")
        np.testing.assert_allclose(gi, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("in_dims", [(0, 0), (0, None), (None, 0), (1, 0), (None, 1)])
@pytest.mark.parametrize("mode", MODES)
def test_vmap_matches_loop(in_dims, mode):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 9) if in_dims[0] == 0 else (9, 4) if in_dims[0] == 1 else (9,))
    v = rng.standard_normal((4, 3) if in_dims[1] == 0 else (3, 4) if in_dims[1] == 1 else (3,))
    for fn in (np.convolve, np.correlate, S.convolve, S.correlate):
        got = npfunc.vmap(lambda a, v: fn(a, v, mode), in_dims=in_dims)(a, v)
        rows = [fn(a if in_dims[0] is None else np.take(a, i, in_dims[0]),
                   v if in_dims[1] is None else np.take(v, i, in_dims[1]), mode) for i in range(4)]
        np.testing.assert_allclose(got, np.stack(rows), rtol=1e-12, atol=1e-12)


def test_vmap_is_one_vectorised_call(monkeypatch):
    """A batch of 16 convolutions runs the general kernel once, not once per element."""
    calls = []
    original = convolution._general

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(convolution, "_general", counting)
    rng = np.random.default_rng(4)
    a, v = rng.standard_normal((16, 20)), rng.standard_normal((16, 5))
    npfunc.vmap(lambda a, v: np.convolve(a, v, "same"))(a, v)
    assert len(calls) == 1 and calls[0][0] == 16
    calls.clear()
    npfunc.vmap(npfunc.grad(lambda a, v: np.sum(np.convolve(a, v, "same") ** 2)))(a, v)
    assert all(shape[0] == 16 for shape in calls)


def test_per_example_gradients_and_jacobians():
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((8, 12)), rng.standard_normal(4)
    per = npfunc.vmap(npfunc.grad(lambda k, x: np.sum(np.tanh(np.convolve(x, k, "valid")))), in_dims=(None, 0))(k, x)
    for p, xi in zip(per, x):
        ref = _fd_grad(lambda k: np.sum(np.tanh(np.convolve(xi, k, "valid"))), (k,), 0)
        np.testing.assert_allclose(p, ref, rtol=1e-6, atol=1e-9)
    a = rng.standard_normal(6)
    jac = npfunc.jacrev(lambda k: S.convolve(a, k, "full"))(k)
    np.testing.assert_allclose(jac, npfunc.jacfwd(lambda k: S.convolve(a, k, "full"))(k), rtol=1e-12)
    expected = np.stack([np.convolve(a, e, "full") for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(jac, expected, rtol=1e-12, atol=1e-14)


def test_second_order():
    rng = np.random.default_rng(6)
    a, v = rng.standard_normal((5, 4)), rng.standard_normal((2, 3))

    def f(v):
        return np.sum(np.sin(S.correlate(a, v, "same")))

    h = npfunc.hessian(f)(v)
    g = npfunc.grad(f)
    fd = np.zeros((6, 6))
    for i in range(6):
        e = np.zeros(6)
        e[i] = 1e-5
        fd[:, i] = ((g(v + e.reshape(2, 3)) - g(v - e.reshape(2, 3))) / 2e-5).ravel()
    np.testing.assert_allclose(h.reshape(6, 6), fd, rtol=1e-5, atol=1e-8)


def test_float32_stays_float32():
    a, v = np.arange(5, dtype=np.float32), np.ones(3, np.float32)
    out, pullback = npfunc.vjp(lambda a, v: np.convolve(a, v, "same"), a, v)
    assert out.dtype == np.float32
    ga, gv = pullback(np.ones(5, np.float32))
    assert ga.dtype == np.float32 and gv.dtype == np.float32
    ga = npfunc.grad(lambda a: np.sum(S.convolve(a, np.ones((2, 2)), "full")))(np.ones((3, 3), np.float32))
    assert ga.dtype == np.float32


def test_errors():
    with pytest.raises(ValueError, match="cannot be empty"):
        npfunc.grad(lambda a: np.sum(np.convolve(a, np.zeros(0))))(np.ones(3))
    with pytest.raises(ValueError, match="mode"):
        convolution.convolve(np.ones(3), np.ones(2), "nope")
    with pytest.raises(ValueError, match="same dimensionality"):
        S.convolve(np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="at least as large"):
        S.convolve(np.ones((2, 5)), np.ones((3, 3)), "valid")
    with pytest.raises(ValueError, match="method"):
        S.convolve(np.ones(3), np.ones(2), method="nope")
    with pytest.raises(ValueError, match="boundary"):
        S.convolve2d(np.ones((3, 3)), np.ones((2, 2)), boundary="torus")
    assert np.array_equal(S.convolve(np.float64(2.0), np.float64(3.0)), ss.convolve(2.0, 3.0))
