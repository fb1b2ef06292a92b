"""SciPy's own array-API code on traced values (run with SCIPY_ARRAY_API=1).

Collected only by tests/test_scipy_array_api.py, which runs this file in a
subprocess with the variable set before SciPy is imported (SciPy reads it
once, at import).  Each case is a function R^6 -> R written with SciPy as a
user writes it; it is checked against plain SciPy: its value under the
transforms, grad against central differences, vmap against a loop (or the
error SciPy's value-dependent Python branches give under vmap), and a
second-order transform against differences of the gradient.

Functions that npfunc routes to a twin (``scipy.special.logsumexp``,
``scipy.signal.fftconvolve``...) are also called through SciPy's own
function (``scipy_own``), so that SciPy's array-API code itself is tested.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

if not os.environ.get("SCIPY_ARRAY_API"):  # pragma: no cover - collected by mistake
    pytest.skip("needs SCIPY_ARRAY_API=1 set before SciPy is imported", allow_module_level=True)

import npfunc  # noqa: E402
import scipy.fft as sfft  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.signal as sig  # noqa: E402
import scipy.special as sc  # noqa: E402
import scipy.stats as st  # noqa: E402
from npfunc.errors import BatchedConversionError  # noqa: E402

X0 = np.array([0.3, -1.2, 2.0, 0.7, 1.1, -0.4])
W = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0])  # plain data mixed with traced values


def scipy_own(fn):
    """SciPy's function itself, not npfunc's router to a twin."""
    return fn.__wrapped__ if hasattr(fn, "npfunc_twin") else fn


def pos(x):
    return np.exp(x / 3)


BRANCHES = "SciPy branches on values"  # vmap: bool(x) of a batched value raises
CASES = {
    # scipy.special: SciPy's own logsumexp & co. (the routed calls reach the twins), the ufuncs
    "special.logsumexp": (lambda x: scipy_own(sc.logsumexp)(x, b=W), True),
    "special.logsumexp (twin)": (lambda x: sc.logsumexp(x, b=W), True),
    "special.softmax": (lambda x: scipy_own(sc.softmax)(x)[1], True),
    "special.log_softmax": (lambda x: scipy_own(sc.log_softmax)(x)[2], True),
    "special ufuncs": (lambda x: (scipy_own(sc.erf)(x) + scipy_own(sc.gammaln)(pos(x)) + sc.expit(x)
                                  + scipy_own(sc.xlogy)(pos(x), W) + sc.log_ndtr(x)).sum(), True),
    # scipy.optimize
    "optimize.rosen": (so.rosen, True),
    "optimize.rosen_der": (lambda x: so.rosen_der(x) @ W, True),
    "optimize.rosen_hess": (lambda x: (so.rosen_hess(x) @ W) @ W, True),
    "optimize.rosen_hess_prod": (lambda x: so.rosen_hess_prod(x, W) @ W, True),
    # scipy.stats
    "stats.zscore": (lambda x: st.zscore(x) @ W, True),
    "stats.moment": (lambda x: st.moment(x, 3), True),
    "stats.skew": (st.skew, True),
    "stats.kurtosis": (st.kurtosis, True),
    "stats.variation": (lambda x: st.variation(pos(x)), True),
    "stats.entropy": (lambda x: st.entropy(pos(x), W), True),
    "stats.pmean": (lambda x: st.pmean(pos(x), 2.5), BRANCHES),
    "stats.gmean": (lambda x: st.gmean(pos(x), weights=W), True),
    "stats.hmean": (lambda x: st.hmean(pos(x)), BRANCHES),
    "stats.Normal": (lambda x: st.Normal(mu=x[0], sigma=pos(x[1])).logpdf(x[2]) + st.Normal().cdf(x[3]),
                     BRANCHES),
    "stats.Uniform": (lambda x: st.Uniform(a=x[0] - 3, b=x[2] + 3).logcdf(x[3]), BRANCHES),
    "stats.make_distribution": (lambda x: st.make_distribution(st.gamma)(a=pos(x[0])).logpdf(pos(x[1])),
                                BRANCHES),
    # scipy.fft
    "fft.fft": (lambda x: (sfft.fft(x) * W).real.sum() + sfft.ifft(x).imag @ W, True),
    "fft.rfft": (lambda x: np.abs(sfft.rfft(x, norm="ortho")).sum() + sfft.irfft(x)[3], True),
    "fft.fftn": (lambda x: np.abs(sfft.fftn(x.reshape(2, 3))).sum() + sfft.fftshift(x) @ W, True),
    # scipy.signal
    "signal.detrend": (lambda x: (sig.detrend(x) ** 2) @ W, True),
    "signal.hilbert": (lambda x: np.abs(sig.hilbert(x)) @ W, True),
    "signal.envelope": (lambda x: sig.envelope(np.tile(x, 2))[0][3], True),
    "signal.resample": (lambda x: sig.resample(x, 9)[2], True),
    "signal.freqz": (lambda x: np.abs(sig.freqz(x[:3], worN=8)[1]).sum(), True),
    "signal.fftconvolve": (lambda x: scipy_own(sig.fftconvolve)(x, W[:3]) @ np.arange(8.0), True),
    "signal.convolve": (lambda x: scipy_own(sig.convolve)(x, W[:3], method="direct")[2], True),
}


def _fd(f, x, eps=1e-6):
    return np.array([(f(x + eps * d) - f(x - eps * d)) / (2 * eps) for d in np.eye(x.size)])


@pytest.mark.parametrize("name", CASES)
def test_scipy_under_transforms(name):
    f, vmappable = CASES[name]
    x = X0
    value = f(x)
    primal, tangent = npfunc.jvp(f, (x,), (W,))
    np.testing.assert_allclose(primal, value, rtol=1e-12, atol=1e-14)
    g = npfunc.grad(f)(x)
    np.testing.assert_allclose(g, _fd(f, x), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(tangent, g @ W, rtol=1e-9, atol=1e-12)
    batch = np.stack([x, 0.9 * x])
    if vmappable is True:
        np.testing.assert_allclose(npfunc.vmap(f)(batch), [value, f(0.9 * x)], rtol=1e-12)
        np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(batch)[1], npfunc.grad(f)(0.9 * x), rtol=1e-10)
    else:
        with pytest.raises(BatchedConversionError):
            npfunc.vmap(f)(batch)
    # second order: reverse over reverse (jacrev maps only the pullback, which is npfunc's code)
    h = npfunc.jacrev(npfunc.grad(f))(x)
    np.testing.assert_allclose(h, _fd(npfunc.grad(f), x, 1e-5), rtol=1e-4, atol=1e-5)


def test_hessian_and_jit_of_scipy_code():
    f = CASES["stats.skew"][0]
    np.testing.assert_allclose(npfunc.hessian(f)(X0), npfunc.jacrev(npfunc.grad(f))(X0), rtol=1e-9, atol=1e-12)
    jitted = npfunc.jit(npfunc.grad(so.rosen))
    np.testing.assert_allclose(jitted(X0), so.rosen_der(X0), rtol=1e-12)
    np.testing.assert_allclose(jitted(2 * X0), so.rosen_der(2 * X0), rtol=1e-12)


def test_rosen_derivatives_are_scipy_s_own():
    np.testing.assert_allclose(npfunc.grad(so.rosen)(X0), so.rosen_der(X0), rtol=1e-12)
    np.testing.assert_allclose(npfunc.hessian(so.rosen)(X0), so.rosen_hess(X0), rtol=1e-12)
    np.testing.assert_allclose(npfunc.jacfwd(so.rosen_der)(X0), so.rosen_hess(X0), rtol=1e-12)


def test_scipy_sees_traced_values_as_array_api_arrays():
    from scipy._lib._array_api import array_namespace

    import npfunc.array_api as xp

    seen = []
    npfunc.grad(lambda x: seen.append(array_namespace(x, W, 2.0)) or x.sum())(X0)
    assert seen == [xp]
    assert array_namespace(X0).__name__.endswith("array_api_compat.numpy")  # plain arrays: unchanged


def test_functions_numpy_cannot_run_name_the_way_out():
    """SciPy converts to NumPy where it has no array-API code (scipy.fft.dct ...):
    npfunc's twins are the way there; the error must not be a silent wrong value."""
    with pytest.raises(Exception):
        npfunc.grad(lambda x: sfft.dct(x)[1])(X0)
