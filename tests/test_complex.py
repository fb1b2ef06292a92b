"""Complex numbers (docs/complex.md): torch's convention.

For a real loss L of z = x + iy, ``grad(L)(z) = dL/dx + i dL/dy`` -- checked
here against finite differences in both real directions.  A holomorphic f
has ``jvp(t) = f'(z) t`` and ``vjp(g) = g * conj(f'(z))``; every VJP is the
adjoint of its JVP for the real inner product Re(sum(conj(a) b)).
"""
from __future__ import annotations

import doctest
import pathlib

import numpy as np
import pytest

from npfunc import grad, jacfwd, jacrev, jvp, vjp, vmap

RNG = np.random.default_rng(11)
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def crand(shape=(3,), dtype=np.complex128, re=(0.4, 1.6), im=(-0.8, 0.8)):
    return (RNG.uniform(*re, size=shape) + 1j * RNG.uniform(*im, size=shape)).astype(dtype)


def fd_gradient(loss, z, eps=1e-6):
    """dL/dx + i dL/dy by central differences in each real direction."""
    z = np.asarray(z, dtype=np.complex128)
    g = np.zeros(z.shape, dtype=np.complex128)
    for k in np.ndindex(z.shape):
        for direction in (1.0, 1j):
            e = np.zeros(z.shape, dtype=np.complex128)
            e[k] = eps * direction
            slope = (loss(z + e) - loss(z - e)) / (2 * eps)
            g[k] += slope * direction
    return g


W = crand((3,))

REAL_LOSSES = {
    "abs2-exp": lambda z: (np.abs(np.exp(z)) ** 2).sum(),
    "real-sin-conj": lambda z: np.real(np.sin(z) * np.conj(z)).sum(),
    "abs": lambda z: np.abs(z).sum(),
    "angle": lambda z: np.angle(z).sum(),
    "imag-log": lambda z: np.imag(np.log(z)).sum(),
    "real-cube": lambda z: np.real(z ** 3).sum(),
    "abs-sqrt": lambda z: np.abs(np.sqrt(z)).sum(),
    "real-times-const": lambda z: np.real(z * W).sum(),
    "reciprocal": lambda z: np.real(np.reciprocal(z) + 1 / z).sum(),
    "tanh": lambda z: (np.abs(np.tanh(z)) ** 2).sum(),
    "sign": lambda z: np.real(np.sign(z) * W).sum(),
    "square-imag": lambda z: np.imag(np.square(z)).sum(),
    "divide": lambda z: np.real(W / z + z / W).sum(),
    "power-complex-exponent": lambda z: np.real(z ** W).sum(),
    "exponent": lambda z: np.abs(W ** z).sum(),
    "cosh-sinh": lambda z: np.real(np.cosh(z) * np.sinh(z)).sum(),
    "tan-cos": lambda z: np.imag(np.tan(z) + np.cos(z)).sum(),
    "arcs": lambda z: np.real(np.arcsin(z / 3) + np.arccos(z / 3) * 1j + np.arctan(z)).sum(),
    "hyperbolic-arcs": lambda z: np.real(np.arcsinh(z) + np.arctanh(z / 3) + np.arccosh(z + 2)).sum(),
    "log-bases": lambda z: np.real(np.log2(z) + np.log10(z) * 1j + np.log1p(z)).sum(),
    "exp-bases": lambda z: np.abs(np.exp2(z) + np.expm1(z)).sum(),
    "real-imag-parts": lambda z: (z.real ** 2 * z.imag).sum(),
    "where": lambda z: np.real(np.where(np.array([True, False, True]), z * z, np.conj(z))).sum(),
    "sinc": lambda z: np.real(np.sinc(z)).sum(),
    "positive-negative": lambda z: np.real(np.positive(z) * -z).sum(),
    "float_power": lambda z: np.real(np.float_power(z, 2.5)).sum(),
    "nan_to_num": lambda z: np.imag(np.nan_to_num(z) ** 2).sum(),
    "round-stops": lambda z: np.real(np.round(z, 1) * z).sum(),
}


@pytest.mark.parametrize("name", sorted(REAL_LOSSES))
def test_grad_of_real_loss_is_dx_plus_i_dy(name):
    loss = REAL_LOSSES[name]
    z = crand()
    g = grad(loss)(z)
    assert g.dtype == np.complex128 and g.shape == z.shape
    np.testing.assert_allclose(g, fd_gradient(loss, z), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["abs2-exp", "abs", "angle", "real-cube", "sign", "tanh"])
def test_complex64_gradients_stay_complex64(name):
    loss = REAL_LOSSES[name]
    z = crand(dtype=np.complex64)
    g = grad(loss)(z)
    assert g.dtype == np.complex64
    np.testing.assert_allclose(g, fd_gradient(loss, z.astype(np.complex128)), rtol=2e-3, atol=2e-4)


def test_gradient_of_a_real_parameter_through_complex_values_is_real():
    x = np.array([0.3, -0.7, 1.1])

    def loss(theta):
        return np.abs(np.exp(1j * theta) + 0.5).sum()

    g = grad(loss)(x)
    assert g.dtype == np.float64
    fd = np.array([(loss(x + e) - loss(x - e)) / 2e-6 for e in np.eye(3) * 1e-6])
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    g32 = grad(loss)(x.astype(np.float32))
    assert g32.dtype == np.float32


def test_holomorphic_vjp_is_g_times_conj_derivative():
    z = crand()
    gbar = crand()
    for f, df in [(np.exp, np.exp), (np.sin, np.cos), (lambda v: v ** 3, lambda v: 3 * v ** 2),
                  (np.log, lambda v: 1 / v), (np.sqrt, lambda v: 0.5 / np.sqrt(v)),
                  (np.square, lambda v: 2 * v), (np.reciprocal, lambda v: -1 / v ** 2),
                  (np.tanh, lambda v: 1 - np.tanh(v) ** 2), (np.arctan, lambda v: 1 / (1 + v * v))]:
        _, pullback = vjp(f, z)
        np.testing.assert_allclose(pullback(gbar)[0], gbar * np.conj(df(z)), rtol=1e-12)
        _, t = jvp(f, (z,), (gbar,))
        np.testing.assert_allclose(t, df(z) * gbar, rtol=1e-12)


def test_real_imag_conj_vjps():
    z = crand()
    g = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(vjp(np.real, z)[1](g)[0], g + 0j)
    np.testing.assert_array_equal(vjp(np.imag, z)[1](g)[0], 1j * g)
    np.testing.assert_array_equal(vjp(np.conj, z)[1](g * (1 + 1j))[0], g * (1 - 1j))
    # on real inputs the parts are the identity and zero
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda v: np.real(v).sum())(x), [1.0, 1.0])
    np.testing.assert_array_equal(grad(lambda v: (np.imag(v) + v).sum())(x), [1.0, 1.0])


COMPLEX_MAPS = {
    "exp": np.exp, "polynomial": lambda z: z ** 3 - 2j * z + 1, "abs": np.abs,
    "conj-times": lambda z: np.conj(z) * z * 1j, "sign": np.sign, "angle": np.angle,
    "sqrt-log": lambda z: np.sqrt(z) + np.log(z), "real-imag": lambda z: z.real * z.imag + 1j * z.real,
    "mixed-real": lambda z: np.abs(z) * np.exp(1j * np.angle(z)),
}


@pytest.mark.parametrize("name", sorted(COMPLEX_MAPS))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_vjp_is_adjoint_of_jvp(name, dtype):
    f = COMPLEX_MAPS[name]
    z = crand(dtype=dtype)
    t = crand(dtype=dtype)
    out, jt = jvp(f, (z,), (t,))
    out2, pullback = vjp(f, z)
    u = RNG.standard_normal(np.shape(out)).astype(out.dtype)
    if out.dtype.kind == "c":
        u = u + 1j * RNG.standard_normal(np.shape(out)).astype(out.dtype)
    (ct,) = pullback(u)
    assert jt.dtype == out.dtype and ct.dtype == z.dtype
    lhs = np.real(np.vdot(u, jt))
    rhs = np.real(np.vdot(ct, t))
    tol = 1e-10 if dtype == np.complex128 else 1e-4
    np.testing.assert_allclose(lhs, rhs, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(COMPLEX_MAPS))
def test_jvp_matches_finite_differences_in_a_complex_direction(name):
    f = COMPLEX_MAPS[name]
    z, t = crand(), crand()
    _, jt = jvp(f, (z,), (t,))
    eps = 1e-6
    fd = (f(z + eps * t) - f(z - eps * t)) / (2 * eps)
    np.testing.assert_allclose(jt, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(COMPLEX_MAPS))
def test_vmap_of_complex_functions(name):
    f = COMPLEX_MAPS[name]
    zs = crand((4, 3))
    np.testing.assert_allclose(vmap(f)(zs), np.stack([f(z) for z in zs]), rtol=1e-13)
    np.testing.assert_allclose(vmap(f, in_dims=1)(zs.T), np.stack([f(z) for z in zs]), rtol=1e-13)


def test_per_sample_complex_gradients_with_vmap():
    zs = crand((5, 3))
    loss = REAL_LOSSES["abs2-exp"]
    g = vmap(grad(loss))(zs)
    np.testing.assert_allclose(g, np.stack([grad(loss)(z) for z in zs]), rtol=1e-13)
    w = crand((3,))
    g2 = vmap(grad(lambda z, w: np.abs(z * w).sum()), in_dims=(0, None))(zs, w)
    np.testing.assert_allclose(g2, np.stack([grad(lambda z: np.abs(z * w).sum())(z) for z in zs]))


def test_vmap_of_vjp_and_jvp_with_complex_values():
    z = crand()
    _, pullback = vjp(np.exp, z)
    gs = crand((4, 3))
    np.testing.assert_allclose(vmap(pullback)(gs)[0], gs * np.conj(np.exp(z)), rtol=1e-13)
    ts = crand((4, 3))
    jt = vmap(lambda t: jvp(np.sin, (z,), (t,))[1])(ts)
    np.testing.assert_allclose(jt, ts * np.cos(z), rtol=1e-13)


def test_jacfwd_of_a_real_to_complex_function():
    x = np.array([0.2, -0.5])
    J = jacfwd(lambda v: np.exp(1j * v))(x)
    np.testing.assert_allclose(J, np.diag(1j * np.exp(1j * x)))


def _partial_x(f, z, eps=1e-6):
    """Central differences of f along the real part of each input entry (columns)."""
    cols = []
    for k in range(z.size):
        e = np.zeros(z.shape, z.dtype)
        e.flat[k] = eps
        cols.append(((f(z + e) - f(z - e)) / (2 * eps)).ravel())
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("chunk_size", [None, 1, 2])
@pytest.mark.parametrize("f, z", [
    (lambda v: np.exp(1j * v), np.array([0.2, -0.5, 1.1])),              # R -> C
    (lambda v: np.stack([np.sin(v[0]) * 1j, v[1] ** 2 + 0j]), np.array([0.4, 0.3])),
    (lambda z: z ** 2 * np.exp(z), np.array([0.3 + 0.2j, 0.1 - 0.5j])),  # holomorphic
    (lambda z: np.conj(z) * z[::-1], np.array([0.3 + 0.2j, -1.0 + 0.5j])),  # not holomorphic
], ids=["exp(i x)", "mixed rows", "holomorphic", "conj"])
def test_jacrev_of_a_complex_output_equals_jacfwd_and_differences(f, z, chunk_size):
    """A complex output's Jacobian holds df/dx, real and imaginary parts (its
    rows take the pullbacks of both e_k and 1j e_k), as jacfwd's does."""
    J = jacrev(f, chunk_size=chunk_size)(z)
    np.testing.assert_allclose(J, jacfwd(f)(z), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(J, _partial_x(f, z), rtol=1e-7, atol=1e-9)


def test_second_order_through_complex_intermediates():
    # L(x) = |exp(i x) + 2|^2 = 5 + 4 cos x, so L'' = -4 cos x
    x = np.float64(0.3)
    L = lambda v: np.abs(np.exp(1j * v) + 2.0) ** 2  # noqa: E731
    np.testing.assert_allclose(grad(grad(L))(x), -4 * np.cos(x), rtol=1e-12)


def test_docs_complex_examples_run():
    failures, tried = doctest.testfile(str(DOCS / "complex.md"), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert tried > 5 and failures == 0
