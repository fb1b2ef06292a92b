"""npfunc.scipy.signal's filters and spectral estimators: values against
SciPy, derivatives in the signal, the coefficients and the initial state
against central differences, every transform, natural programs (an IIR
filter fitted to data by gradient descent, a spectral loss, per-filter
gradients under vmap), and the error paths."""
import numpy as np
import pytest
import scipy.signal as ss

import npfunc
from npfunc.scipy import signal as S
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(11)


def _close(a, b, tol=1e-10):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


# ---- lfilter / sosfilt ----------------------------------------------------------------------------

@pytest.mark.parametrize("b,a", [([1.0, 2.0, 3.0], [2.0, 0.5, 0.1]), ([1.0, 2.0], [1.0, 0.5, 0.2, 0.1]),
                                 ([1.0, 2.0, 3.0, 4.0], [2.0]), ([0.5], [1.0, -0.3])])
@pytest.mark.parametrize("axis", [-1, 0])
def test_lfilter_matches_scipy(b, a, axis):
    x = RNG.standard_normal((3, 10)) if axis == -1 else RNG.standard_normal((10, 3))
    k = max(len(a), len(b))
    zi = RNG.standard_normal((3, k - 1)) if axis == -1 else RNG.standard_normal((k - 1, 3))
    _close(S.lfilter(b, a, x, axis=axis), ss.lfilter(b, a, x, axis=axis))
    _close(S.lfilter(b, a, x, axis=axis, zi=zi), ss.lfilter(b, a, x, axis=axis, zi=zi))
    short = RNG.standard_normal(2)  # the state reaches past the end of the signal
    _close(S.lfilter(b, a, short, zi=np.ones(k - 1)), ss.lfilter(b, a, short, zi=np.ones(k - 1)))


def test_lfilter_dtypes_and_broadcast_zi():
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    out = S.lfilter(np.float32([1, 2]), np.float32([1, 0.5]), x)
    assert out.dtype == ss.lfilter(np.float32([1, 2]), np.float32([1, 0.5]), x).dtype
    zi = np.ones((1, 1))  # singleton axes of zi expand, as in SciPy
    _close(S.lfilter([1.0, 2.0], [1.0, 0.5], x.astype(float), zi=zi),
           ss.lfilter([1.0, 2.0], [1.0, 0.5], x.astype(float), zi=zi))
    z = x + 1j
    _close(S.lfilter([1.0, 0.5j], [1.0, 0.2], z), ss.lfilter([1.0, 0.5j], [1.0, 0.2], z), 1e-5)


def test_sosfilt_matches_scipy():
    sos = ss.butter(4, 0.2, output="sos")
    x = RNG.standard_normal((3, 40))
    _close(S.sosfilt(sos, x), ss.sosfilt(sos, x))
    zi = RNG.standard_normal((2, 3, 2))
    _close(S.sosfilt(sos, x, zi=zi), ss.sosfilt(sos, x, zi=zi))
    _close(S.sosfilt(sos, x.T, axis=0, zi=zi.transpose(0, 2, 1)), ss.sosfilt(sos, x.T, axis=0,
                                                                          zi=zi.transpose(0, 2, 1)))


def test_lfilter_gradients_in_every_argument():
    b, a = np.array([0.5, 0.3, 0.1]), np.array([1.2, -0.4, 0.2])
    x, zi = RNG.standard_normal(12), RNG.standard_normal(2)
    w = RNG.standard_normal(12)

    def loss(b, a, x, zi):
        y, zf = S.lfilter(b, a, x, zi=zi)
        return (w * y).sum() + (zf ** 2).sum()

    grads = npfunc.grad(loss, argnums=(0, 1, 2, 3))(b, a, x, zi)
    args = [b, a, x, zi]
    for k, g in enumerate(grads):
        def f(v, k=k):
            full = list(args)
            full[k] = v
            return loss(*full)
        np.testing.assert_allclose(g, numerical_jacobian(f, args[k]), rtol=1e-6, atol=1e-8)


def test_lfilter_jacobians_and_second_order():
    b, a, x = np.array([1.0, 0.5]), np.array([1.0, -0.6, 0.2]), RNG.standard_normal(8)
    f = lambda a: S.lfilter(b, a, x)  # noqa: E731
    np.testing.assert_allclose(npfunc.jacfwd(f)(a), npfunc.jacrev(f)(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npfunc.jacrev(f)(a), numerical_jacobian(f, a), rtol=1e-6, atol=1e-8)
    energy = lambda a: (S.lfilter(b, a, x) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.hessian(energy)(a), numerical_jacobian(npfunc.grad(energy), a),
                               rtol=1e-5, atol=1e-7)


def test_per_filter_gradients_under_vmap():
    x = RNG.standard_normal(16)
    poles = np.array([0.2, 0.5, 0.8])

    def response_energy(p):
        return (S.lfilter([1.0], np.stack([1.0, -p]), x) ** 2).sum()

    got = npfunc.vmap(npfunc.grad(response_energy))(poles)
    np.testing.assert_allclose(got, [numerical_jacobian(response_energy, p) for p in poles], rtol=1e-6)


def test_fit_an_iir_filter_to_data():
    """Recover a one-pole low-pass filter from its input and output."""
    x = RNG.standard_normal(200)
    target = ss.lfilter([0.3], [1.0, -0.7], x)

    def residual(params):  # the pole stays inside the unit circle: 0.95 tanh(theta)
        gain, pole = params[0], 0.95 * np.tanh(params[1])
        return S.lfilter(np.stack([gain]), np.stack([1.0, -pole]), x) - target

    params = np.array([0.1, 0.2])
    for _ in range(20):  # Gauss-Newton: the Jacobian of the recursion in its coefficients (jacfwd)
        jac = npfunc.jacfwd(residual)(params)
        params = params - np.linalg.lstsq(jac, residual(params), rcond=None)[0]
    loss = lambda p: (residual(p) ** 2).mean()  # noqa: E731
    assert np.allclose(npfunc.grad(loss)(params), 0, atol=1e-10)
    np.testing.assert_allclose([params[0], 0.95 * np.tanh(params[1])], [0.3, 0.7], atol=1e-8)


def test_sosfilt_gradient_in_sections():
    sos = ss.butter(2, 0.3, output="sos")
    x = RNG.standard_normal(20)

    def f(bcoef):
        s = np.concatenate([bcoef[None], sos[:, 3:]], axis=1)
        return S.sosfilt(s, x).sum()

    np.testing.assert_allclose(npfunc.grad(f)(sos[0, :3]), numerical_jacobian(f, sos[0, :3]), rtol=1e-6)


# ---- spectral ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(nperseg=16), dict(nperseg=16, noverlap=4, nfft=20, detrend="linear",
                                                         scaling="spectrum"),
                                dict(nperseg=10, average="median"), dict(nperseg=10, return_onesided=False),
                                dict(window="hamming", nperseg=11, nfft=16), dict(nperseg=200)])
def test_welch_and_csd_match_scipy(kw):
    x, y = RNG.standard_normal((2, 100)), RNG.standard_normal((2, 90))
    with pytest.warns(UserWarning) if kw.get("nperseg") == 200 else _nullcontext():
        _close(S.welch(x, **kw), ss.welch(x, **kw))
    with pytest.warns(UserWarning) if kw.get("nperseg") == 200 else _nullcontext():
        _close(S.csd(x, y, **kw), ss.csd(x, y, **kw))


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("kw", [dict(nperseg=16), dict(nperseg=16, noverlap=5, nfft=20, boundary="even",
                                                         padded=False, scaling="psd"),
                                dict(nperseg=15, boundary="odd", detrend="linear"), dict(nperseg=8, boundary=None),
                                dict(nperseg=8, boundary="constant")])
def test_stft_istft_match_scipy(kw):
    x = RNG.standard_normal((2, 100))
    _close(S.stft(x, **kw), ss.stft(x, **kw))
    f, t, z = ss.stft(x, nperseg=16)
    _close(S.istft(z, nperseg=16), ss.istft(z, nperseg=16))
    with pytest.warns(UserWarning, match="NOLA"):
        ours = S.istft(z, nperseg=16, boundary=False)
    with pytest.warns(UserWarning, match="NOLA"):
        _close(ours, ss.istft(z, nperseg=16, boundary=False))


def test_detrend_matches_scipy():
    x = RNG.standard_normal((3, 40))
    for kw in (dict(), dict(type="constant"), dict(bp=[10, 25]), dict(axis=0)):
        _close(S.detrend(x, **kw), ss.detrend(x, **kw))


def test_spectral_gradients():
    x = RNG.standard_normal(64)
    band = lambda x: S.welch(x, nperseg=16)[1][2:5].sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(band)(x), numerical_jacobian(band, x), rtol=1e-6, atol=1e-9)
    cross = lambda x: np.real(S.csd(x, np.roll(x, 3), nperseg=16)[1]).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(cross)(x), numerical_jacobian(cross, x), rtol=1e-6, atol=1e-9)
    roundtrip = lambda x: S.istft(S.stft(x, nperseg=16)[2], nperseg=16)[1]  # noqa: E731
    np.testing.assert_allclose(roundtrip(x), x, atol=1e-12)
    np.testing.assert_allclose(npfunc.jacrev(roundtrip)(x), np.eye(64), atol=1e-12)
    window = np.hanning(16)
    in_window = lambda w: S.welch(x, window=w, nperseg=16)[1].sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(in_window)(window), numerical_jacobian(in_window, window),
                               rtol=1e-6, atol=1e-9)


def test_spectral_loss_under_vmap():
    signals = RNG.standard_normal((4, 48))
    psd = npfunc.vmap(lambda s: S.welch(s, nperseg=12)[1])(signals)
    _close(psd, ss.welch(signals, nperseg=12)[1])


# ---- fftconvolve / oaconvolve with axes ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_fftconvolve_axes(mode):
    a, b = RNG.standard_normal((3, 7)), RNG.standard_normal((3, 4))
    _close(S.fftconvolve(a, b, mode, axes=1), ss.fftconvolve(a, b, mode, axes=1))
    _close(S.oaconvolve(a, b[:1], mode, axes=-1), ss.oaconvolve(a, b[:1], mode, axes=-1))
    f = lambda a: (S.fftconvolve(a, b, mode, axes=1) ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(f)(a), numerical_jacobian(f, a), rtol=1e-6, atol=1e-8)


# ---- errors ---------------------------------------------------------------------------------------------

def test_errors():
    with pytest.raises(ValueError, match="non-empty 1d"):
        S.lfilter(np.ones((2, 2)), [1.0], np.ones(4))
    with pytest.raises(NotImplementedError, match="not supported"):
        S.lfilter([1, 2], [1], np.arange(4))
    with pytest.raises(ValueError, match="Unexpected shape for parameter zi"):
        S.lfilter([1.0, 2.0], [1.0, 0.5], np.ones((2, 5)), zi=np.ones((2, 3)))
    with pytest.raises(ValueError, match="sos\\[:, 3\\] should be all ones"):
        S.sosfilt(np.array([[1.0, 0, 0, 2.0, 0, 0]]), np.ones(4))
    with pytest.raises(ValueError, match="sos\\[:, 3\\] should be all ones"):
        npfunc.vmap(lambda s: S.sosfilt(s, np.ones(4)))(np.array([[[1.0, 0, 0, 1.0, 0, 0]],
                                                                 [[1.0, 0, 0, 3.0, 0, 0]]]))
    with pytest.raises(ValueError, match="Trend type"):
        S.detrend(np.ones(4), type="quadratic")
    with pytest.raises(ValueError, match="noverlap"):
        S.welch(np.ones(32), nperseg=8, noverlap=8)
    with pytest.raises(ValueError, match="average"):
        S.welch(np.ones(32), nperseg=8, average="mode")
    with pytest.raises(ValueError, match="incompatible shapes"):
        S.fftconvolve(np.ones((2, 3)), np.ones((3, 3)), axes=1)


def test_unmodified_scipy_calls_reach_the_twins():
    x = RNG.standard_normal(32)
    f = lambda x: ss.lfilter([1.0, 0.5], [1.0, -0.3], x).sum() + ss.welch(x, nperseg=8)[1].sum()  # noqa: E731
    g = lambda x: S.lfilter([1.0, 0.5], [1.0, -0.3], x).sum() + S.welch(x, nperseg=8)[1].sum()  # noqa: E731
    np.testing.assert_allclose(npfunc.grad(f)(x), npfunc.grad(g)(x), rtol=1e-12)


@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("boundary,fillvalue", [("wrap", 0), ("symm", 0), ("fill", 1.5)])
def test_2d_boundaries_match_scipy_and_differences(name, boundary, fillvalue):
    """Every boundary of convolve2d/correlate2d, as SciPy extends the input (kernels
    smaller and larger than the image, odd and even sizes)."""
    import scipy.signal as ss

    from npfunc.testing import numerical_jacobian

    rng = np.random.default_rng(7)
    image = rng.standard_normal((4, 5))
    for shape in ((3, 3), (2, 4), (5, 6)):
        kernel = rng.standard_normal(shape)
        for mode in ("full", "same", "valid"):
            if mode == "valid" and shape == (5, 6):
                continue
            want = getattr(ss, name)(image, kernel, mode, boundary, fillvalue)

            def f(x):
                return getattr(ss, name)(x, kernel, mode, boundary, fillvalue)

            np.testing.assert_allclose(npfunc.jit(f)(image), want, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(npfunc.jacrev(f)(image), numerical_jacobian(f, image, order=4),
                                       rtol=1e-6, atol=1e-8)
