"""``scipy.fft`` on traced values: SciPy's own functions, unmodified, reach
npfunc's transforms (``npfunc.scipy.fft``), with SciPy's dtypes and values
(to rounding), and SciPy functions handed to a transform as they are
(``jacfwd(scipy.linalg.expm)``) are routed like calls inside a function."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sf
import scipy.linalg
import scipy.signal
import scipy.stats

import npfunc
from npfunc.errors import UnsupportedOperationError
from npfunc.testing import numerical_jacobian

rng = np.random.default_rng(20261207)
X1 = rng.standard_normal(9)
X2 = rng.standard_normal((4, 6))
NORMS = [None, "backward", "ortho", "forward"]
ONE_D = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_D = ["fft2", "ifft2", "fftn", "ifftn", "rfft2", "irfft2", "rfftn", "irfftn", "hfft2", "ihfft2", "hfftn", "ihfftn"]


def _input(name, x):
    """Complex input for the transforms that take it (hfft, irfft: a spectrum)."""
    return x + 0.3j * x[::-1] if name in ("fft", "ifft", "hfft", "irfft", "fft2", "ifft2", "fftn", "ifftn",
                                          "irfft2", "irfftn", "hfft2", "hfftn") else x


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ONE_D)
def test_one_dimensional_transforms_match_scipy_under_jit_and_vmap(name, norm):
    fn = getattr(sf, name)
    x = _input(name, X1)
    expected = fn(x, norm=norm)
    got = npfunc.jit(lambda v: fn(v, norm=norm))(x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    xs = np.stack([x, 2 * x, x[::-1]])
    batched = npfunc.vmap(lambda v: fn(v, n=8, norm=norm))(xs)
    np.testing.assert_allclose(batched, np.stack([fn(v, n=8, norm=norm) for v in xs]), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("name", ONE_D)
def test_gradients_through_scipy_fft_match_central_differences(name, norm):
    fn = getattr(sf, name)

    def power(v):  # a spectral power of a real signal (a complex one for the inverse real transforms)
        return np.sum(np.abs(fn(_input(name, v), norm=norm)) ** 2 * np.linspace(1.0, 2.0, fn(_input(name, v)).size))

    np.testing.assert_allclose(npfunc.grad(power)(X1), numerical_jacobian(power, X1, order=4),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", N_D)
def test_n_dimensional_transforms_match_scipy(name):
    fn = getattr(sf, name)
    x = _input(name, X2)
    for norm in NORMS:
        expected = fn(x, norm=norm)
        got = npfunc.jit(lambda v: fn(v, norm=norm))(x)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got = npfunc.vmap(lambda v: fn(v, s=(5,), axes=(-1,)))(np.asfortranarray(x))
    np.testing.assert_allclose(got, fn(x, s=(5,), axes=(-1,)), rtol=1e-12, atol=1e-12)


def test_single_precision_stays_single():
    x = X1.astype(np.float32)
    assert npfunc.jit(sf.rfft)(x).dtype == np.complex64
    g = npfunc.grad(lambda v: np.abs(sf.rfft(v)).sum())(x)
    assert g.dtype == np.float32


def test_scipy_signal_fftconvolve_itself_runs_on_traced_values():
    """SciPy's own fftconvolve (not npfunc's twin) is written with scipy.fft."""
    own = getattr(scipy.signal.fftconvolve, "__wrapped__", scipy.signal.fftconvolve)
    kernel = np.array([0.25, 0.5, 0.25])

    def smoothed_energy(v):
        return np.sum(own(v, kernel, mode="same") ** 2)

    np.testing.assert_allclose(smoothed_energy(X1), np.sum(np.convolve(X1, kernel, "same") ** 2), rtol=1e-12)
    np.testing.assert_allclose(npfunc.grad(smoothed_energy)(X1), numerical_jacobian(smoothed_energy, X1, order=4),
                               rtol=1e-6, atol=1e-8)


def test_extra_scipy_arguments():
    assert np.allclose(npfunc.jit(lambda v: sf.fft(v, overwrite_x=True, workers=2))(X1), sf.fft(X1))
    with pytest.raises(NotImplementedError, match=r"scipy\.fft\.fft: plan="):
        npfunc.jit(lambda v: sf.fft(v, plan=object()))(X1)
    with pytest.raises(ValueError, match="invalid norm"):
        npfunc.jit(lambda v: sf.rfft(v, norm="unitary"))(X1)


@pytest.mark.parametrize("name", ["dct", "idct", "dst", "idst", "dctn", "idctn", "dstn", "idstn"])
def test_real_to_real_transforms_refuse_traced_values_and_name_the_fix(name):
    fn = getattr(sf, name)
    with pytest.raises(UnsupportedOperationError, match=rf"grad\(f\): scipy\.fft\.{name} of a traced value .*(np\.fft|np\.eye)"):
        npfunc.grad(lambda v: fn(v).sum())(X1)
    np.testing.assert_array_equal(getattr(npfunc.scipy.fft, name)(X1), fn(X1))  # plain values: SciPy's


def test_the_dct_hint_is_the_dct():
    """The formula the refusal suggests is SciPy's DCT-II."""
    n = X1.size
    k = np.arange(n)
    hinted = (np.exp(-1j * np.pi * k / (2 * n)) * np.fft.fft(np.concatenate([X1, X1[::-1]]))[:n]).real
    np.testing.assert_allclose(hinted, sf.dct(X1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sf.dct(np.eye(n), axis=0) @ X1, sf.dct(X1), rtol=1e-12, atol=1e-12)


def test_scipy_functions_handed_to_transforms_are_routed():
    """``jacfwd(scipy.linalg.expm)``: the transform calls SciPy's (routed) function
    itself, which must reach the twin as a call from the user's code does."""
    a = np.array([[0.1, 0.2], [-0.3, 0.4]])
    jac = npfunc.jacfwd(scipy.linalg.expm)(a)
    np.testing.assert_allclose(jac, numerical_jacobian(scipy.linalg.expm, a, order=4), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(npfunc.jit(scipy.linalg.expm)(a), scipy.linalg.expm(a), rtol=1e-13)
    np.testing.assert_allclose(npfunc.grad(scipy.stats.norm.logpdf)(0.3), -0.3)
    np.testing.assert_allclose(npfunc.vmap(sf.rfft)(X2), sf.rfft(X2), rtol=1e-13, atol=1e-13)
