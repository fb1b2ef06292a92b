"""SciPy's array-API path (SCIPY_ARRAY_API=1) and what users see without it.

SciPy reads ``SCIPY_ARRAY_API`` once, when it is imported, and this test
process has imported SciPy without it; so the checks of SciPy's array-API
code on traced values (tests/scipy_array_api_checks.py) run in a subprocess
with the variable set.  The tests here, in this process, check the
conversion error users get without the variable and npfunc's hooks.
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import npfunc
import npfunc.array_api as xp
from npfunc.errors import ConcretizationError

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = pathlib.Path(npfunc.__file__).resolve().parents[1]


def test_scipy_array_api_code_under_every_transform():
    env = dict(os.environ, SCIPY_ARRAY_API="1",
               PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(ROOT / "tests" / "scipy_array_api_checks.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout.splitlines()[-1]


def _array_api_on() -> bool:
    from scipy._lib._array_api import SCIPY_ARRAY_API

    return bool(SCIPY_ARRAY_API)


@pytest.fixture
def without_variable():
    if _array_api_on():
        pytest.skip("this process imported SciPy with SCIPY_ARRAY_API set")


X = np.array([0.3, -1.2, 2.0, 0.7])


def test_conversion_error_names_the_variable(without_variable):
    import scipy.optimize as so

    # (rosen_der runs on traced values: its buffer is xp.zeros_like(x); rosen_hess writes
    # traced numbers into a plain np.zeros, where NumPy raises from npfunc's refusal, which
    # the transform raises again)
    with pytest.raises(ConcretizationError) as info:
        npfunc.grad(lambda x: so.rosen_hess(x).sum())(X)
    assert isinstance(info.value.__cause__, ValueError)
    assert re.search(r"SCIPY_ARRAY_API=1 .*scipy\.optimize\.rosen_hess runs.*docs/scipy\.md", str(info.value))


def test_conversion_error_names_the_twin_and_the_variable(without_variable):
    import scipy.signal as sig

    scipy_own = getattr(sig.convolve2d, "__wrapped__", sig.convolve2d)  # SciPy's, not npfunc's router
    with pytest.raises(ConcretizationError, match=r"call npfunc\.scipy\.signal\.convolve2d instead, or set "
                                                  r"SCIPY_ARRAY_API=1"):
        npfunc.grad(lambda x: scipy_own(x[None], np.ones((1, 2))).sum())(X)


def test_ndimage_conversion_error_does_not_offer_the_variable():
    """scipy.ndimage computes on np.asarray of a traced value with or without
    SCIPY_ARRAY_API: the message names what works instead, and that does.
    (savgol_filter, which calls it, has a twin in npfunc.scipy.signal.)"""
    import scipy.ndimage as ndi
    import scipy.signal as sig

    x = np.sin(np.arange(9.0))
    with pytest.raises(ConcretizationError) as info:
        npfunc.jacrev(lambda x: ndi.convolve1d(x, sig.savgol_coeffs(5, 2)))(x)
    assert "SCIPY_ARRAY_API=1 in the environment" not in str(info.value)
    # (named as called: savgol_filter calls ndimage's convolve1d, which calls correlate1d)
    assert re.search(r"scipy\.ndimage\.convolve1d \(through scipy\.ndimage\.correlate1d\) computes on NumPy "
                     r"arrays.*np\.convolve", str(info.value))
    w = sig.savgol_coeffs(5, 2)
    smooth = lambda x: np.convolve(x, w, mode="valid")  # noqa: E731
    np.testing.assert_allclose(npfunc.jacrev(smooth)(x)[0], np.concatenate([w[::-1], np.zeros(4)]), rtol=1e-12)
    np.testing.assert_allclose(smooth(x), sig.savgol_filter(x, 5, 2)[2:-2], rtol=1e-12)


def test_scipy_namespace_lookup_takes_numpy_arrays_beside_traced_values():
    from scipy._lib import array_api_compat

    seen = []
    npfunc.grad(lambda x: seen.append(array_api_compat.array_namespace(x, np.ones(2), 1.0, None)) or x.sum())(X)
    assert seen == [xp]
    assert array_api_compat.array_namespace(np.ones(2)) is not xp

    class Foreign:
        def __array_namespace__(self, api_version=None):
            return None

    with pytest.raises(TypeError, match="Multiple namespaces"):
        npfunc.grad(lambda x: array_api_compat.array_namespace(x, Foreign()) or x.sum())(X)


def test_traced_numpy_scalar_is_not_writeable_for_scipy():
    """array_api_compat takes unknown array types for writeable: xpx.at(r).set(v)
    on pearsonr's r (a NumPy scalar, which SciPy copies into a 0-d array) wrote
    into the traced scalar and raised TypeError under grad."""
    from scipy._lib import array_api_compat
    import scipy.stats

    seen = []
    npfunc.grad(lambda x: seen.append((array_api_compat.is_writeable_array(x),
                                        array_api_compat.is_writeable_array(x.sum()))) or x.sum())(X)
    assert seen == [(True, False)]
    v = np.array([0.3, 1.2, 2.0, 0.7, 1.1])
    x = np.array([0.9, 0.4, 1.7, 0.6, 0.2])
    r = lambda x: scipy.stats.pearsonr(x, v).statistic  # noqa: E731
    xm, vm = x - x.mean(), v - v.mean()
    want = vm / np.sqrt(xm @ xm * (vm @ vm)) - (xm @ vm) * xm / (np.sqrt(vm @ vm) * (xm @ xm) ** 1.5)
    np.testing.assert_allclose(npfunc.grad(r)(x), want, rtol=1e-12)
    assert type(npfunc.grad_and_value(r)(x)[1]) is type(r(x))


def test_special_functions_for_scipy_array_api_code():
    import scipy.special as sc

    g = npfunc.grad(lambda x: xp.special.gammaln(x).sum() + xp.special.xlogy(x, x).sum())(X + 2)
    np.testing.assert_allclose(g, sc.digamma(X + 2) + np.log(X + 2) + 1, rtol=1e-12)
    assert xp.special.logsumexp is not None  # twins too
    with pytest.raises(AttributeError, match="scipy.special.not_a_function"):
        xp.special.not_a_function  # noqa: B018
