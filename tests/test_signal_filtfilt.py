"""Zero-phase filtering (``filtfilt``, ``sosfiltfilt``) and the steady-state
initial conditions (``lfilter_zi``, ``sosfilt_zi``): values against SciPy on
every pad type, derivatives in the signal and the coefficients against
central differences, every transform, unmodified SciPy calls, error paths."""
import numpy as np
import pytest
import scipy.signal as ss

import npfunc
from npfunc.errors import DataDependentShapeError, UnsupportedOperationError
from npfunc.scipy import signal as S
from npfunc.testing import numerical_jacobian

RNG = np.random.default_rng(23)
B, A = ss.butter(3, 0.25)
SOS = ss.butter(3, 0.25, output="sos")  # a first-order section: SciPy's default padlen is 3 * (5 - 1)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _traced_value(f, *args):
    """``f(*args)`` computed on traced values (the primal output of a JVP)."""
    return npfunc.jvp(f, args, tuple(np.zeros_like(a) for a in args))[0]


# ---- values --------------------------------------------------------------------------------------

@pytest.mark.parametrize("padtype", ["odd", "even", "constant", None])
@pytest.mark.parametrize("padlen", [None, 0, 4, 29])
def test_filtfilt_values_match_scipy(padtype, padlen):
    x = RNG.standard_normal(30)
    expected = ss.filtfilt(B, A, x, padtype=padtype, padlen=padlen)
    _close(_traced_value(lambda v: S.filtfilt(B, A, v, padtype=padtype, padlen=padlen), x), expected)
    _close(_traced_value(lambda b, a: S.filtfilt(b, a, x, padtype=padtype, padlen=padlen), B, A), expected)


@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_filtfilt_values_on_every_axis(axis):
    x = RNG.standard_normal((20, 21, 22))
    for padtype, padlen in [("odd", None), ("even", 5), ("constant", 3), (None, None)]:
        expected = ss.filtfilt(B, A, x, axis=axis, padtype=padtype, padlen=padlen)
        _close(_traced_value(lambda v: S.filtfilt(B, A, v, axis=axis, padtype=padtype, padlen=padlen), x),
               expected)
        _close(_traced_value(lambda s: S.sosfiltfilt(s, x, axis=axis, padtype=padtype, padlen=padlen), SOS),
               ss.sosfiltfilt(SOS, x, axis=axis, padtype=padtype, padlen=padlen))


def test_two_dimensional_input_along_axis_0():
    x = RNG.standard_normal((40, 3))
    _close(_traced_value(lambda v: S.filtfilt(B, A, v, axis=0), x), ss.filtfilt(B, A, x, axis=0))
    _close(_traced_value(lambda v: S.sosfiltfilt(SOS, v, axis=0), x), ss.sosfiltfilt(SOS, x, axis=0))


def test_plain_inputs_get_scipys_own_results():
    x = RNG.standard_normal((2, 30))
    np.testing.assert_array_equal(S.filtfilt(B, A, x), ss.filtfilt(B, A, x))
    np.testing.assert_array_equal(S.filtfilt(B, A, x, method="gust"), ss.filtfilt(B, A, x, method="gust"))
    np.testing.assert_array_equal(S.sosfiltfilt(SOS, x), ss.sosfiltfilt(SOS, x))
    np.testing.assert_array_equal(S.lfilter_zi(B, A), ss.lfilter_zi(B, A))
    np.testing.assert_array_equal(S.sosfilt_zi(SOS), ss.sosfilt_zi(SOS))


def test_steady_states_and_dtypes():
    _close(_traced_value(S.lfilter_zi, B, A), ss.lfilter_zi(B, A))
    _close(_traced_value(S.lfilter_zi, np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.5])),
           ss.lfilter_zi([1.0, 2.0, 3.0], [2.0, 0.5]))
    _close(_traced_value(S.sosfilt_zi, SOS), ss.sosfilt_zi(SOS))
    x32 = RNG.standard_normal(30).astype(np.float32)
    b32, a32 = B.astype(np.float32), A.astype(np.float32)
    out = _traced_value(lambda v: S.filtfilt(b32, a32, v), x32)
    expected = ss.filtfilt(b32, a32, x32)
    assert out.dtype == expected.dtype == np.float32
    _close(out, expected, 1e-4)


def test_complex_signal():
    x = RNG.standard_normal(25) + 1j * RNG.standard_normal(25)
    _close(_traced_value(lambda v: S.filtfilt(B, A, v), x), ss.filtfilt(B, A, x))


# ---- derivatives ---------------------------------------------------------------------------------

def test_gradient_in_the_signal():
    x = RNG.standard_normal(30)
    w = RNG.standard_normal(30)
    for padtype in ["odd", "even", "constant", None]:
        f = lambda v: (S.filtfilt(B, A, v, padtype=padtype) * w).sum()  # noqa: E731
        _close(npfunc.grad(f)(x), numerical_jacobian(f, x, order=4), 1e-7)
        g = lambda v: (S.sosfiltfilt(SOS, v, padtype=padtype) * w).sum()  # noqa: E731
        _close(npfunc.grad(g)(x), numerical_jacobian(g, x, order=4), 1e-7)


def test_jacobians_in_the_coefficients():
    x = RNG.standard_normal(30)
    for padtype, padlen in [("odd", None), ("even", 6), ("constant", 3)]:
        f = lambda b, a: S.filtfilt(b, a, x, padtype=padtype, padlen=padlen)  # noqa: E731
        _close(npfunc.jacrev(f, argnums=0)(B, A), numerical_jacobian(lambda b: f(b, A), B, order=4), 1e-6)
        _close(npfunc.jacfwd(f, argnums=1)(B, A), numerical_jacobian(lambda a: f(B, a), A, order=4), 1e-6)


def test_jacobian_in_sos():
    x = RNG.standard_normal(30)

    def f(s5):  # sos without its a0 column (SciPy requires ones there)
        sos = np.concatenate([s5[:, :3], np.ones((s5.shape[0], 1)), s5[:, 3:]], axis=1)
        return S.sosfiltfilt(sos, x, padlen=12)

    s5 = np.delete(ss.butter(4, 0.3, output="sos"), 3, axis=1)
    _close(npfunc.jacrev(f)(s5), numerical_jacobian(f, s5, order=4), 1e-6)
    # the default padlen (SciPy's, read from the values) under grad
    sos = ss.butter(4, 0.3, output="sos")
    g = npfunc.grad(lambda s: S.sosfiltfilt(s, x).sum())(sos)
    fd = numerical_jacobian(lambda s5: S.sosfiltfilt(
        np.concatenate([s5[:, :3], np.ones((2, 1)), s5[:, 3:]], axis=1), x).sum(), s5, order=4)
    _close(np.delete(g, 3, axis=1), fd, 1e-6)


def test_hessian_in_the_denominator():
    x = RNG.standard_normal(25)
    f = lambda a: (S.filtfilt(B, a, x) ** 2).sum()  # noqa: E731
    _close(npfunc.hessian(f)(A), numerical_jacobian(npfunc.grad(f), A, order=4), 1e-5)


def test_gradients_of_the_steady_states():
    f = lambda b, a: S.lfilter_zi(b, a)  # noqa: E731
    _close(npfunc.jacrev(f, argnums=1)(B, A), numerical_jacobian(lambda a: f(B, a), A, order=4), 1e-6)
    _close(npfunc.jacfwd(f, argnums=0)(B, A), numerical_jacobian(lambda b: f(b, A), B, order=4), 1e-6)
    s5 = np.delete(SOS, 3, axis=1)
    g = lambda s5: S.sosfilt_zi(np.concatenate([s5[:, :3], np.ones((2, 1)), s5[:, 3:]], axis=1))  # noqa: E731
    _close(npfunc.jacrev(g)(s5), numerical_jacobian(g, s5, order=4), 1e-6)


# ---- vmap, jit, unmodified SciPy -----------------------------------------------------------------

def test_vmap_matches_a_loop():
    xs = RNG.standard_normal((4, 30))
    _close(npfunc.vmap(lambda v: S.filtfilt(B, A, v))(xs), np.stack([ss.filtfilt(B, A, v) for v in xs]))
    _close(npfunc.vmap(lambda v: S.sosfiltfilt(SOS, v, padtype="even"))(xs),
           np.stack([ss.sosfiltfilt(SOS, v, padtype="even") for v in xs]))
    a_batch = np.stack([ss.butter(3, w)[1] for w in (0.1, 0.2, 0.3)])
    x = xs[0]
    _close(npfunc.vmap(lambda a: S.filtfilt(B, a, x, padlen=5))(a_batch),
           np.stack([ss.filtfilt(B, a, x, padlen=5) for a in a_batch]))
    sos_batch = np.stack([ss.butter(3, w, output="sos") for w in (0.1, 0.2)])
    _close(npfunc.vmap(lambda s: S.sosfiltfilt(s, x, padlen=12))(sos_batch),
           np.stack([ss.sosfiltfilt(s, x) for s in sos_batch]))
    per_signal = npfunc.vmap(npfunc.grad(lambda v: (S.filtfilt(B, A, v) ** 2).sum()))(xs)
    _close(per_signal, np.stack([npfunc.grad(lambda v: (S.filtfilt(B, A, v) ** 2).sum())(v) for v in xs]))


def test_jit_values():
    f = npfunc.jit(lambda v: S.filtfilt(B, A, v, padtype="even"))
    g = npfunc.jit(lambda s, v: S.sosfiltfilt(s, v, padlen=10))
    for _ in range(2):  # the recorded call and a replay
        x = RNG.standard_normal(30)
        _close(f(x), ss.filtfilt(B, A, x, padtype="even"))
        _close(g(SOS, x), ss.sosfiltfilt(SOS, x, padlen=10))
    h = npfunc.jit(npfunc.grad(lambda b, v: (S.filtfilt(b, A, v) ** 2).sum()))
    x = RNG.standard_normal(30)
    _close(h(B, x), npfunc.grad(lambda b: (ss.filtfilt(b, A, x) ** 2).sum())(B))


def test_unmodified_scipy_calls_under_grad():
    x = RNG.standard_normal(30)
    f = lambda v: (ss.filtfilt(B, A, v) ** 2).sum()  # noqa: E731
    _close(npfunc.grad(f)(x), numerical_jacobian(f, x, order=4), 1e-7)
    h = lambda a: (ss.filtfilt(B, a, x) ** 2).sum()  # noqa: E731
    _close(npfunc.grad(h)(A), numerical_jacobian(h, A, order=4), 1e-6)
    k = lambda v: (ss.sosfiltfilt(SOS, v) ** 2).sum()  # noqa: E731
    _close(npfunc.grad(k)(x), numerical_jacobian(k, x, order=4), 1e-7)
    # a coefficient list holding a traced value
    m = lambda c: ss.filtfilt([0.5, c], [1.0, -0.3], x).sum()  # noqa: E731
    _close(npfunc.grad(m)(0.5), numerical_jacobian(m, np.array(0.5), order=4), 1e-7)
    _close(npfunc.vmap(lambda v: ss.filtfilt(B, A, v))(np.stack([x, -x])),
           ss.filtfilt(B, A, np.stack([x, -x])))


# ---- errors --------------------------------------------------------------------------------------

def test_gust_refused_under_a_transform():
    x = RNG.standard_normal(30)
    with pytest.raises(UnsupportedOperationError, match=r"grad\(.*method='gust'"):
        npfunc.grad(lambda v: ss.filtfilt(B, A, v, method="gust").sum())(x)
    with pytest.raises(UnsupportedOperationError, match="method='gust'"):
        npfunc.vmap(lambda v: S.filtfilt(B, A, v, method="gust", irlen=5))(np.stack([x, x]))
    with pytest.raises(ValueError, match="method must be 'pad' or 'gust'"):
        npfunc.grad(lambda v: S.filtfilt(B, A, v, method="bad").sum())(x)


def test_bad_padlen_and_padtype():
    x = RNG.standard_normal(12)
    for fn, args in [(S.filtfilt, (B, A)), (S.sosfiltfilt, (SOS,))]:
        with pytest.raises(ValueError, match="must be greater than padlen, which is 12"):
            npfunc.grad(lambda v: fn(*args, v, padlen=12).sum())(x)
        with pytest.raises(ValueError, match="Unknown value 'wrap' given to padtype"):
            npfunc.grad(lambda v: fn(*args, v, padtype="wrap").sum())(x)
    with pytest.raises(ValueError, match="which is 12"):  # the default, 3 * max(len(a), len(b))
        npfunc.grad(lambda v: S.filtfilt(B, A[:3], v[:12]).sum())(x)
    with pytest.raises(ValueError, match="which is 12"):
        ss.filtfilt(B, A[:3], x)


def test_sos_errors():
    x = RNG.standard_normal(30)
    bad = SOS.copy()
    bad[0, 3] = 2.0
    with pytest.raises(ValueError, match=r"sos\[:, 3\] should be all ones"):
        npfunc.grad(lambda s: S.sosfiltfilt(s, x).sum())(bad)
    with pytest.raises(ValueError, match=r"shape \(n_sections, 6\)"):
        npfunc.grad(lambda v: S.sosfiltfilt(SOS[:, :5], v).sum())(x)
    # SciPy's default padlen reads which coefficients are zero: a batch of filters needs padlen
    with pytest.raises(DataDependentShapeError, match="Pass padlen explicitly"):
        npfunc.vmap(lambda s: S.sosfiltfilt(s, x))(np.stack([SOS, SOS]))


def test_traced_denominator_with_a_leading_zero():
    with pytest.raises(ValueError, match=r"a\[0\] != 0"):
        npfunc.grad(lambda a: S.lfilter_zi(B, a).sum())(np.r_[0.0, A])
