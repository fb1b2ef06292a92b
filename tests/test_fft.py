"""np.fft under the transforms: every public function (composites of the three
registry primitives ``fft``, ``rfft``, ``irfft``) against NumPy's value, the
JVP against central differences, the VJP against the JVP (adjoint identity),
vmap against a loop, and a few end-to-end gradients."""
import numpy as np
import pytest

import npfunc
import npfunc.numpy_fft  # noqa: F401  (the explicit namespace; the lead wires npfunc.numpy.fft)
from npfunc.core.errors import UnsupportedOperationError

EPS = 1e-6


def _direction(rng, x):
    t = rng.standard_normal(np.shape(x))
    if np.iscomplexobj(x):
        t = t + 1j * rng.standard_normal(np.shape(x))
    return np.asarray(t, dtype=np.result_type(x))


def _inner(a, b):
    return float(np.real(np.vdot(np.ravel(a), np.ravel(b))))


def check_linear(f, x, rng, rtol=1e-9):
    """Value vs plain call, JVP vs differences, <u, J v> == <J^T u, v>, vmap vs loop."""
    expected = f(x)
    t = _direction(rng, x)
    out, jv = npfunc.jvp(f, (x,), (t,))
    np.testing.assert_allclose(out, expected, rtol=0, atol=0)
    assert np.result_type(jv) == np.result_type(expected)
    if np.result_type(x) in (np.float64, np.complex128):
        fd = (f(x + EPS * t) - f(x - EPS * t)) / (2 * EPS)
        np.testing.assert_allclose(jv, fd, rtol=1e-6, atol=1e-7)
    out, pullback = npfunc.vjp(f, x)
    u = _direction(rng, out)
    (ct,) = pullback(u)
    assert ct.dtype == np.result_type(x) and ct.shape == np.shape(x)
    lhs, rhs = _inner(u, jv), _inner(ct, t)
    assert np.isclose(lhs, rhs, rtol=rtol, atol=rtol), (lhs, rhs)
    batch = np.stack([x, 2 * x, x + 1])
    for d in (0, -1):
        xb = np.moveaxis(batch, 0, d)
        got = npfunc.vmap(f, in_dims=d)(xb)
        np.testing.assert_allclose(got, np.stack([f(b) for b in batch]), rtol=rtol * 100, atol=rtol * 100)


def _real(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _complex(rng, shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


NORMS = [None, "backward", "ortho", "forward"]

CASES_1D = [  # (name, kwargs, input kind, shape)
    ("fft", {}, "c", (6,)), ("fft", {"n": 9}, "r", (2, 6)), ("fft", {"n": 4, "axis": 0}, "c", (6, 3)),
    ("ifft", {}, "c", (5,)), ("ifft", {"n": 8, "axis": -2}, "r", (5, 2)), ("ifft", {"n": 3}, "c", (2, 7)),
    ("rfft", {}, "r", (6,)), ("rfft", {}, "r", (7,)), ("rfft", {"n": 10, "axis": 0}, "r", (7, 2)),
    ("rfft", {"n": 5}, "r", (2, 8)),
    ("irfft", {}, "c", (4,)), ("irfft", {"n": 7}, "c", (4,)), ("irfft", {"n": 16}, "c", (2, 3)),
    ("irfft", {"n": 4, "axis": 0}, "c", (6, 2)), ("irfft", {}, "r", (5,)),
    ("hfft", {}, "c", (4,)), ("hfft", {"n": 9}, "c", (2, 4)),
    ("ihfft", {}, "r", (6,)), ("ihfft", {"n": 5}, "r", (2, 8)),
]

CASES_ND = [
    ("fft2", {}, "c", (3, 4)), ("fft2", {"s": (5, 2)}, "r", (2, 3, 4)), ("ifft2", {"axes": (0, 2)}, "c", (3, 2, 4)),
    ("fftn", {}, "c", (2, 3, 4)), ("fftn", {"axes": (0, -1), "s": (4, 2)}, "c", (3, 2, 3)),
    ("fftn", {"axes": (1,)}, "r", (2, 3)), ("fftn", {"axes": (0, 0), "s": (4, 6)}, "c", (3, 2)),
    ("ifftn", {"s": (3, -1), "axes": (1, 2)}, "c", (2, 5, 3)), ("ifftn", {}, "r", (4, 3)),
    ("rfft2", {}, "r", (4, 6)), ("rfft2", {"s": (3, 5)}, "r", (4, 6)),
    ("irfft2", {}, "c", (4, 4)), ("irfft2", {"s": (5, 7)}, "c", (3, 4)),
    ("rfftn", {}, "r", (2, 3, 4)), ("rfftn", {"axes": (2, 0), "s": (5, 3)}, "r", (2, 3, 4)),
    ("rfftn", {"axes": (1, 1), "s": (3, 6)}, "r", (2, 4)),
    ("irfftn", {}, "c", (2, 3, 4)), ("irfftn", {"axes": (0, 2), "s": (3, 9)}, "c", (2, 3, 4)),
    ("irfftn", {"axes": (0, 0), "s": (3, 4)}, "c", (2, 3)),
    ("fftshift", {}, "c", (5, 4)), ("fftshift", {"axes": 1}, "r", (3, 5)),
    ("ifftshift", {}, "r", (5, 4)), ("ifftshift", {"axes": (0,)}, "c", (7, 2)),
]


def _input(rng, kind, shape, single=False):
    if kind == "c":
        return _complex(rng, shape, np.complex64 if single else np.complex128)
    return _real(rng, shape, np.float32 if single else np.float64)


def _case_id(case):
    name, kw, kind, shape = case
    return f"{name}-{kind}{list(shape)}-{kw}"


@pytest.mark.parametrize("case", CASES_1D + CASES_ND, ids=_case_id)
@pytest.mark.parametrize("single", [False, True], ids=["64", "32"])
def test_fft_functions(case, single):
    name, kw, kind, shape = case
    rng = np.random.default_rng(0)
    x = _input(rng, kind, shape, single)
    np_fn = getattr(np.fft, name)
    norms = NORMS if "shift" not in name else [None]
    for norm in norms:
        kwargs = dict(kw, norm=norm) if norm else dict(kw)
        expected = np_fn(x, **kwargs)
        got = getattr(npfunc.numpy_fft, name)(x, **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-5 if single else 1e-12, atol=1e-5 if single else 1e-12)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        check_linear(lambda v: np_fn(v, **kwargs), x, rng, rtol=2e-4 if single else 1e-9)


def test_norms_are_validated():
    x = np.ones(4)
    with pytest.raises(ValueError, match="norm"):
        npfunc.grad(lambda v: np.fft.fft(v, norm="bogus").real.sum())(x)


def test_out_is_rejected():
    with pytest.raises(UnsupportedOperationError, match="out="):
        npfunc.grad(lambda v: np.fft.fft(v, out=np.empty(4, complex)).real.sum())(np.ones(4))


def test_rfft_of_complex_is_a_type_error():
    with pytest.raises(TypeError, match="fft"):
        npfunc.jvp(lambda v: np.fft.rfft(v), (np.ones(4) + 0j,), (np.ones(4) + 0j,))


def test_power_spectrum_gradient_and_hessian():
    """grad and hessian of sum |rfft(x)|^2: the quadratic form of the half-spectrum DFT."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(8)

    def f(v):
        X = np.fft.rfft(v)
        return (X.real ** 2 + X.imag ** 2).sum()

    F = np.fft.fft(np.eye(8))[:5]  # rows: the half-spectrum DFT
    H_expected = 2 * np.real(F.conj().T @ F)
    np.testing.assert_allclose(npfunc.grad(f)(x), H_expected @ x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(npfunc.hessian(f)(x), H_expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(npfunc.jacfwd(npfunc.jacrev(f))(x), H_expected, rtol=1e-10, atol=1e-10)


def test_circular_convolution_grad_per_sample():
    """vmap(grad) of a loss through an FFT convolution equals the loop."""
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal(6)
    xs = rng.standard_normal((4, 6))

    def loss(x):
        y = np.fft.irfft(np.fft.rfft(x) * np.fft.rfft(kernel), n=6)
        return (np.tanh(y) ** 2).sum()

    got = npfunc.vmap(npfunc.grad(loss))(xs)
    expected = np.stack([npfunc.grad(loss)(x) for x in xs])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # against differences
    x = xs[0]
    g = npfunc.grad(loss)(x)
    fd = np.array([(loss(x + EPS * e) - loss(x - EPS * e)) / (2 * EPS) for e in np.eye(6)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_jacobians_of_ifft2():
    rng = np.random.default_rng(3)
    x = _real(rng, (3, 4))

    def f(v):
        return np.fft.ifft2(v, s=(4, 3), norm="ortho").imag

    J1 = npfunc.jacrev(f)(x)
    J2 = npfunc.jacfwd(f)(x)
    np.testing.assert_allclose(J1, J2, rtol=1e-12, atol=1e-14)
    fd = np.stack([(f(x + EPS * e) - f(x - EPS * e)) / (2 * EPS) for e in np.eye(12).reshape(12, 3, 4)], -1)
    np.testing.assert_allclose(J1, fd.reshape(J1.shape), rtol=1e-6, atol=1e-8)


def test_vmap_of_vjp_fn_and_batched_unbatched_mix():
    rng = np.random.default_rng(4)
    x = _complex(rng, (5,))
    out, pullback = npfunc.vjp(lambda v: np.fft.fft(v, n=7), x)
    gs = _complex(rng, (3, 7))
    got = npfunc.vmap(pullback)(gs)[0]
    expected = np.stack([pullback(g)[0] for g in gs])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_namespace():
    import npfunc.numpy_fft as nf

    import npfunc.numpy.fft

    assert nf.fft is npfunc.numpy_fft.fft is npfunc.numpy.fft.fft
    assert nf.fftfreq is npfunc.numpy.fft.fftfreq  # npfunc's: a traced spacing d
