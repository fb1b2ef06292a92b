"""npfunc.scipy.integrate quadrature: the sampled rules equal SciPy's and are
registry composites (tests/test_registry.py runs their samples); quad,
quad_vec and fixed_quad are differentiable in limits and parameters."""
import numpy as np
import pytest
import scipy.integrate as si

import npfunc
from npfunc.core.primitive import COMPOSITES
from npfunc.scipy.integrate import (cumulative_simpson, cumulative_trapezoid, fixed_quad, quad, quad_vec, romb,
                                    simpson, trapezoid)

NAMES = ["trapezoid", "simpson", "cumulative_trapezoid", "cumulative_simpson", "romb"]


@pytest.mark.parametrize("name", NAMES)
def test_sampled_rules_equal_scipy_on_every_registry_sample(name):
    composite = COMPOSITES[f"scipy.integrate.{name}"]
    for sample in composite.samples(np.random.default_rng(0)):
        ours = composite.bind(*sample.args, **sample.params)
        ref = getattr(si, name)(*sample.args, **sample.params)
        assert np.result_type(ours) == np.result_type(ref), sample
        np.testing.assert_allclose(ours, ref, rtol=1e-14 if np.result_type(ref) == np.float64 else 1e-6,
                                   atol=1e-15, err_msg=str(sample))


def test_gradients_are_the_rules_weights():
    x = np.linspace(0.0, 1.0, 5)
    np.testing.assert_allclose(npfunc.grad(lambda y: trapezoid(y, x))(x ** 2), [0.125, 0.25, 0.25, 0.25, 0.125])
    np.testing.assert_allclose(npfunc.grad(lambda y: simpson(y, x))(x ** 2), np.array([1, 4, 2, 4, 1]) / 12)
    np.testing.assert_allclose(npfunc.grad(lambda y: romb(y, dx=0.25))(x), si.romb(np.eye(5), dx=0.25, axis=0))
    J = npfunc.jacrev(lambda y: cumulative_trapezoid(y, x, initial=0))(x)
    np.testing.assert_allclose(J, si.cumulative_trapezoid(np.eye(5), x, axis=0, initial=0))
    J = npfunc.jacfwd(lambda y: cumulative_simpson(y, x=x))(x)
    np.testing.assert_allclose(J, si.cumulative_simpson(np.eye(5), x=x, axis=0), atol=1e-15)


def test_derivative_in_the_sample_points():
    y = np.array([0.3, 1.2, -0.4, 0.8, 0.5, 1.1])
    x = np.array([0.0, 0.4, 0.9, 1.1, 1.8, 2.0])
    for rule in (trapezoid, simpson):
        g = npfunc.grad(lambda x: rule(y, x))(x)
        ref = [(rule(y, x + 1e-6 * e) - rule(y, x - 1e-6 * e)) / 2e-6 for e in np.eye(6)]
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-8)


def gauss(x, k):
    return np.exp(-k * x ** 2)


def test_quad_value_and_derivatives():
    k, b = np.float64(1.5), np.float64(2.0)

    def integral(k, b):
        return quad(gauss, 0.0, b, args=(k,))[0]

    assert integral(k, b) == si.quad(gauss, 0.0, b, args=(k,))[0]
    gk, gb = npfunc.grad(integral, argnums=(0, 1))(k, b)
    assert gk == pytest.approx(-si.quad(lambda x: x ** 2 * gauss(x, k), 0.0, b)[0], rel=1e-8)
    assert gb == pytest.approx(gauss(b, k), rel=1e-14)  # the fundamental theorem
    fk, fb = npfunc.jacfwd(integral, argnums=(0, 1))(k, b)
    # (pytest >= 9.2 refuses 0-d arrays inside a tuple given to approx: compare floats)
    assert (float(fk), float(fb)) == pytest.approx((float(gk), float(gb)), rel=1e-10)
    assert npfunc.hessian(lambda k: integral(k, b))(k) == pytest.approx(
        si.quad(lambda x: x ** 4 * gauss(x, k), 0.0, b)[0], rel=1e-7)
    # an infinite limit: the Gaussian integral sqrt(pi / k) / 2
    g_inf = npfunc.grad(lambda k: quad(gauss, 0.0, np.inf, args=(k,))[0])(k)
    assert g_inf == pytest.approx(-0.25 * np.sqrt(np.pi) * k ** -1.5, rel=1e-8)
    # closed over instead of args
    assert npfunc.grad(lambda k: quad(lambda x: np.exp(-k * x ** 2), 0.0, b)[0])(k) == pytest.approx(gk, rel=1e-12)


def test_quad_under_vmap():
    ks = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(npfunc.vmap(lambda k: quad(gauss, 0.0, 2.0, args=(k,))[0])(ks),
                               [si.quad(gauss, 0.0, 2.0, args=(k,))[0] for k in ks], rtol=1e-8)
    bs = np.array([0.5, 1.0, 3.0])
    np.testing.assert_allclose(npfunc.vmap(lambda b: quad(gauss, 0.0, b, args=(1.0,))[0])(bs),
                               [si.quad(gauss, 0.0, b, args=(1.0,))[0] for b in bs], rtol=1e-8)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(lambda b: quad(gauss, 0.0, b, args=(1.0,))[0]))(bs),
                               gauss(bs, 1.0), rtol=1e-8)


def test_scalar_integral_is_an_immutable_scalar_under_transforms():
    """SciPy's integral of a scalar integrand is a float (quad) or np.float64
    (quad_vec): ``v += c`` rebinds v and leaves other names bound to it alone.
    A traced 0-d array would be updated in place and change them too."""
    def ratio(k, integrate):
        col = integrate(lambda z: np.exp(-k * z), 0.0, 8.0)[0]
        total = col
        total += 0.25  # rebinds total; col keeps the integral
        return total / col

    k = np.float64(0.5)
    for integrate in (quad, quad_vec):
        f = lambda k: ratio(k, integrate)  # noqa: E731
        want = f(k)
        assert npfunc.jit(f)(k) == pytest.approx(want, rel=1e-12)
        assert npfunc.jvp(f, (k,), (np.float64(1.0),))[0] == pytest.approx(want, rel=1e-12)
        assert type(npfunc.jit(lambda k: integrate(lambda z: np.exp(-k * z), 0.0, 8.0)[0])(k)) is np.float64
        ref = (f(k + 1e-6) - f(k - 1e-6)) / 2e-6
        assert npfunc.grad(f)(k) == pytest.approx(ref, rel=1e-6)


def test_quad_vec_and_fixed_quad():
    k = np.float64(2.0)
    vec = lambda k: quad_vec(lambda x: np.stack([np.sin(k * x), x * np.cos(k * x)]), 0.0, 1.0)[0]  # noqa: E731
    np.testing.assert_allclose(vec(k), si.quad_vec(lambda x: np.array([np.sin(k * x), x * np.cos(k * x)]), 0, 1)[0])
    ref = (vec(k + 1e-6) - vec(k - 1e-6)) / 2e-6
    np.testing.assert_allclose(npfunc.jacrev(vec)(k), ref, rtol=1e-6)
    np.testing.assert_allclose(npfunc.jacfwd(vec)(k), ref, rtol=1e-6)
    fq = lambda k, b: fixed_quad(lambda x: np.exp(-k * x), 0.0, b, n=8)[0]  # noqa: E731
    assert fq(k, 1.0) == si.fixed_quad(lambda x: np.exp(-k * x), 0.0, 1.0, n=8)[0]
    gk, gb = npfunc.grad(fq, argnums=(0, 1))(k, np.float64(1.0))
    assert gb == pytest.approx(np.exp(-k), rel=1e-10)
    assert gk == pytest.approx(-(1 - 3 * np.exp(-k)) / k ** 2, rel=1e-10)  # -∫ x e^{-kx}, exact at this order
