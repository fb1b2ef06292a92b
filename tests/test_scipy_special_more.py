"""scipy.special beyond the basics (issue 12): Bessel functions, gamma relatives,
zeta, exponential and trigonometric integrals, hypergeometric functions,
Box-Cox, spherical harmonics and the twins of SciPy's Python-level functions.

* SciPy's ufuncs called unmodified on traced values: value, grad vs central
  differences of SciPy, vmap(grad) vs a loop, jacfwd, and a second order;
* the conventions at special points (x = 0 to third order for the modified
  Bessel functions, poles of Gamma, lambda = 0, z = 1, the poles of the sphere)
  and large arguments;
* derivatives without a closed form (zeta in x, hypergeometric parameters)
  against mpmath;
* the twins' values against SciPy, and the errors for what has no derivative;
* natural programs: a Rician likelihood and a von Mises mixture fitted by
  gradient descent.
"""
import numpy as np
import pytest
import scipy.special as sc
from scipy.optimize import minimize

import npfunc
from npfunc.core.errors import ConcretizationError, UnsupportedOperationError
from npfunc.scipy import special as S
from npfunc.testing import numerical_jacobian as fd

mpmath = pytest.importorskip("mpmath")

EPS = 1e-6

# (name, args, argnums to differentiate): SciPy's ufunc is called exactly as a user writes it
CASES = [
    ("jv", (np.array([0.0, 1.5, -0.7]), np.array([0.4, 2.0, 7.5])), (1,)),
    ("jn", (np.array([0.0, 1.0, 3.0]), np.array([-2.0, 0.3, 9.0])), (1,)),
    ("yv", (np.array([0.0, 1.5, 2.0]), np.array([0.4, 2.0, 7.5])), (1,)),
    ("yn", (np.array([0, 1, 4]), np.array([0.4, 2.0, 7.5])), (1,)),
    ("iv", (np.array([0.0, 2.0, 1.5]), np.array([0.4, -2.0, 7.5])), (1,)),
    ("ive", (np.array([0.0, 1.5, 3.0]), np.array([0.4, 2.0, 75.0])), (1,)),
    ("kv", (np.array([0.0, 1.5, 3.0]), np.array([0.4, 2.0, 7.5])), (1,)),
    ("kve", (np.array([0.0, 1.5, 3.0]), np.array([0.4, 2.0, 75.0])), (1,)),
    ("j0", (np.array([-3.0, 0.2, 11.0]),), (0,)), ("j1", (np.array([-3.0, 0.2, 11.0]),), (0,)),
    ("y0", (np.array([0.3, 2.0, 11.0]),), (0,)), ("y1", (np.array([0.3, 2.0, 11.0]),), (0,)),
    ("i0", (np.array([-3.0, 0.2, 2.0]),), (0,)), ("i1", (np.array([-3.0, 0.2, 2.0]),), (0,)),
    ("i0e", (np.array([-3.0, 0.2, 20.0]),), (0,)), ("i1e", (np.array([-3.0, 0.2, 20.0]),), (0,)),
    ("k0", (np.array([0.3, 2.0, 11.0]),), (0,)), ("k1", (np.array([0.3, 2.0, 11.0]),), (0,)),
    ("k0e", (np.array([0.3, 2.0, 110.0]),), (0,)), ("k1e", (np.array([0.3, 2.0, 110.0]),), (0,)),
    ("gammasgn", (np.array([-2.5, -0.5, 3.0]),), (0,)),
    ("rgamma", (np.array([-2.5, -0.3, 0.0, 3.0]),), (0,)),
    ("loggamma", (np.array([0.3, 2.5, 40.0]),), (0,)),
    ("binom", (np.array([3.5, 5.0, 7.2]), np.array([1.2, 2.0, 0.4])), (0, 1)),
    ("zeta", (np.array([-3.5, 0.5, 2.5, 7.0]),), (0,)),
    ("zeta", (np.array([1.5, 2.5, 4.0]), np.array([0.5, 1.0, 3.0])), (0, 1)),
    ("exp1", (np.array([0.2, 1.5, 30.0]),), (0,)), ("expi", (np.array([-2.0, 0.5, 4.0]),), (0,)),
    ("expn", (np.array([0, 1, 3]), np.array([0.5, 1.5, 4.0])), (1,)),
    ("dawsn", (np.array([-2.0, 0.0, 3.0]),), (0,)), ("spence", (np.array([0.3, 1.0, 2.5]),), (0,)),
    ("owens_t", (np.array([-1.0, 0.3, 2.0]), np.array([0.5, -2.0, 3.0])), (0, 1)),
    ("hyp1f1", (np.array([0.5, -1.3, 2.0]), np.array([1.5, 2.2, 0.7]), np.array([-3.0, 0.8, 4.0])),
     (0, 1, 2)),
    # (SciPy's hyp2f1 is not smooth in a at (0.5, 1.5, 2.5, z < 0): mpmath checks that point below)
    ("hyp2f1", (np.array([0.45, -1.3, 1.1]), np.array([1.5, 0.7, 0.4]), np.array([2.5, 1.7, 3.0]),
                np.array([-3.0, 0.3, 0.8])), (0, 1, 2, 3)),
    ("boxcox", (np.array([0.3, 1.5, 4.0]), np.array([-0.5, 0.0, 1.3])), (0, 1)),
    ("boxcox1p", (np.array([-0.3, 1.5, 4.0]), np.array([-0.5, 0.0, 1.3])), (0, 1)),
    ("inv_boxcox", (np.array([0.3, 1.5, -0.4]), np.array([-0.5, 0.0, 1.3])), (0, 1)),
    ("gammaincinv", (np.array([0.5, 2.0, 7.0]), np.array([0.1, 0.5, 0.9])), (0, 1)),
    ("gammainccinv", (np.array([0.5, 2.0, 7.0]), np.array([0.1, 0.5, 0.9])), (0, 1)),
    ("ndtri_exp", (np.array([-30.0, -2.0, -0.1]),), (0,)),
]
IDS = [f"{c[0]}-{len(c[1])}" for c in CASES]


def _partial(f, args, k):
    return lambda v: f(*[v if j == k else a for j, a in enumerate(args)])


@pytest.mark.parametrize("name,args,argnums", CASES, ids=IDS)
def test_unmodified_scipy_function(name, args, argnums):
    f = getattr(sc, name)
    np.testing.assert_array_equal(getattr(S, name)(*args), f(*args))
    for k in argnums:
        g = npfunc.grad(lambda *a: np.sum(f(*a)), argnums=k)(*args)
        ref = fd(lambda v: np.sum(_partial(f, args, k)(v)), args[k])
        np.testing.assert_allclose(g, ref, rtol=2e-6, atol=1e-8, err_msg=f"{name} argument {k}")
        # jacfwd of the elementwise function is diagonal
        jac = npfunc.jacfwd(_partial(f, args, k))(args[k])
        np.testing.assert_allclose(np.diag(jac), ref, rtol=2e-6, atol=1e-8)
        # vmap(grad) over the elements against a loop
        elem = lambda *a: f(*a)  # noqa: E731
        per = npfunc.vmap(npfunc.grad(elem, argnums=k))(*args)
        loop = [npfunc.grad(elem, argnums=k)(*[np.asarray(a)[i] for a in args]) for i in range(len(args[0]))]
        np.testing.assert_allclose(per, loop, rtol=1e-12, atol=1e-300)
        # second order (nested): the diagonal Hessian against differences of the gradient
        g1 = npfunc.vmap(npfunc.grad(elem, argnums=k))
        h = npfunc.vmap(npfunc.grad(npfunc.grad(elem, argnums=k), argnums=k))(*args)
        step = [EPS * np.maximum(1.0, np.abs(a)) if j == k else 0 for j, a in enumerate(args)]
        up = g1(*[a + s for a, s in zip(args, step)])
        down = g1(*[a - s for a, s in zip(args, step)])
        np.testing.assert_allclose(h, (up - down) / (2 * step[k]), rtol=2e-5, atol=1e-7,
                                   err_msg=f"{name} second order, argument {k}")


def test_float32_and_complex_kept():
    x32 = np.array([0.5, 1.5], dtype=np.float32)
    out, t = npfunc.jvp(lambda x: sc.jv(1.0, x), (x32,), (np.ones_like(x32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    z = np.array([0.5 + 0.3j, 2.0 - 1.0j])
    h = 1e-6
    for name in ("jv", "iv", "kv", "yv"):
        f = getattr(sc, name)
        _, t = npfunc.jvp(lambda z: f(1.5, z), (z,), (np.ones_like(z),))
        np.testing.assert_allclose(t, (f(1.5, z + h) - f(1.5, z - h)) / (2 * h), rtol=1e-7)
    for f in (sc.loggamma, sc.rgamma, sc.exp1, sc.dawsn, sc.wofz, sc.spence):  # holomorphic: first order
        _, t = npfunc.jvp(f, (z,), (np.ones_like(z),))
        np.testing.assert_allclose(t, (f(z + h) - f(z - h)) / (2 * h), rtol=1e-7)
        (ct,) = npfunc.vjp(f, z)[1](np.ones_like(z))
        np.testing.assert_allclose(ct, np.conj(t), rtol=1e-12)


# ---- modified Bessel functions near 0, to third order ---------------------------------------------

@pytest.mark.parametrize("v", [0.0, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("x", [0.0, 1e-4, 1e-2])
def test_modified_bessel_third_derivative_near_zero(v, x):
    d3 = npfunc.grad(npfunc.grad(npfunc.grad(lambda x: sc.iv(v, x))))(x)
    ref = float(mpmath.diff(lambda t: mpmath.besseli(v, t), x, 3))
    np.testing.assert_allclose(d3, ref, rtol=1e-9, atol=1e-12)
    if x > 0:  # ive has a kink at 0 for v = 0 (exp(-|x|))
        d3 = npfunc.jacfwd(npfunc.jacfwd(npfunc.jacrev(lambda x: sc.ive(v, x))))(np.array(x))
        ref = float(mpmath.diff(lambda t: mpmath.besseli(v, t) * mpmath.exp(-t), x, 3))
        np.testing.assert_allclose(d3, ref, rtol=1e-8, atol=1e-12)


def test_bessel_large_arguments_stay_finite():
    x = np.array([500.0, 5e3, 1e4])
    for f in (lambda x: sc.ive(1.5, x), lambda x: sc.kve(2.0, x), sc.k1e, sc.i1e):
        g = npfunc.vmap(npfunc.grad(f))(x)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, (f(x + 1e-3) - f(x - 1e-3)) / 2e-3, rtol=1e-6)
    g = npfunc.grad(lambda x: np.sum(sc.jv(3.0, x)))(np.array([1e3, 1e4]))
    np.testing.assert_allclose(g, (sc.jv(2.0, [1e3, 1e4]) - sc.jv(4.0, [1e3, 1e4])) / 2)


def test_spherical_bessel_twins():
    n, z = np.array([0, 1, 2, 4]), np.array([0.0, 0.7, -2.5, 6.0])
    for ours, theirs in ((S.spherical_jn, sc.spherical_jn), (S.spherical_yn, sc.spherical_yn)):
        zz = z if ours is S.spherical_jn else np.abs(z) + 0.3
        np.testing.assert_array_equal(ours(n, zz), theirs(n, zz))
        np.testing.assert_allclose(ours(n, zz, derivative=True), theirs(n, zz, derivative=True), rtol=1e-12,
                                   atol=1e-15)
        g = npfunc.vmap(npfunc.grad(lambda z, n: ours(n, z)))(zz, n)
        np.testing.assert_allclose(g, theirs(n, zz, derivative=True), rtol=1e-12, atol=1e-15)
        h = npfunc.vmap(npfunc.grad(npfunc.grad(lambda z, n: ours(n, z))))(zz, n)
        fdh = (theirs(n, zz + EPS, True) - theirs(n, zz - EPS, True)) / (2 * EPS)
        np.testing.assert_allclose(h, fdh, rtol=1e-6, atol=1e-8)
    # j_n''(0): 2/3 * ... for n = 0: -1/3
    assert np.isclose(npfunc.grad(npfunc.grad(lambda z: S.spherical_jn(0, z)))(0.0), -1 / 3)


# ---- special points ------------------------------------------------------------------------------------

def test_rgamma_at_the_poles_of_gamma():
    for x in (0.0, -1.0, -2.0, -5.0):
        d1 = npfunc.grad(sc.rgamma)(x)
        d2 = npfunc.grad(npfunc.grad(sc.rgamma))(x)
        np.testing.assert_allclose(d1, float(mpmath.diff(mpmath.rgamma, x, 1)), rtol=1e-12)
        np.testing.assert_allclose(d2, float(mpmath.diff(mpmath.rgamma, x, 2)), rtol=1e-10)


def test_spence_and_boxcox_removable_singularities():
    d = [npfunc.jacfwd(npfunc.jacfwd(npfunc.jacfwd(sc.spence)))(np.array(1.0 + e)) for e in (0.0, 1e-9)]
    np.testing.assert_allclose(d, -2 / 3, rtol=1e-6)  # d^3 spence at 1 = -2/3
    x = 2.5
    for lm in (0.0, 1e-10):
        np.testing.assert_allclose(npfunc.grad(lambda l: sc.boxcox(x, l))(lm), np.log(x) ** 2 / 2, rtol=1e-9)
        np.testing.assert_allclose(npfunc.grad(npfunc.grad(lambda l: sc.boxcox(x, l)))(lm), np.log(x) ** 3 / 3,
                                   rtol=1e-8)
        np.testing.assert_allclose(npfunc.grad(lambda l: sc.inv_boxcox(0.4, l))(lm), -0.08 * np.exp(0.4),
                                   rtol=1e-8)


@pytest.mark.parametrize("x,q", [(-7.5, None), (-2.0, None), (-0.7, None), (0.0, None), (0.5, None),
                                 (1.02, None), (3.0, None), (2.5, 0.3), (1.5, 4.0)])
def test_zeta_derivative_in_x_against_mpmath(x, q):
    f = (lambda x: sc.zeta(x)) if q is None else (lambda x: sc.zeta(x, q))
    for order in (1, 2, 3):
        g = f
        for _ in range(order):
            g = npfunc.grad(g)
        ref = float(mpmath.zeta(x, 1 if q is None else q, order))
        np.testing.assert_allclose(g(x), ref, rtol=1e-9, atol=1e-12, err_msg=f"order {order}")


def test_hypergeometric_parameter_derivatives_against_mpmath():
    a, b, z = 0.7, 1.6, -2.5
    h = npfunc.hessian(lambda p: sc.hyp1f1(p[0], p[1], z))(np.array([a, b]))
    for i in range(2):
        for j in range(2):
            d = [0, 0]
            d[i] += 1
            d[j] += 1
            ref = float(mpmath.diff(lambda A, B: mpmath.hyp1f1(A, B, z), (a, b), tuple(d)))
            np.testing.assert_allclose(h[i, j], ref, rtol=1e-9)
    p = np.array([0.5, 1.2, 2.3])
    for z in (-4.0, 0.4):
        g = npfunc.grad(lambda p: sc.hyp2f1(p[0], p[1], p[2], z))(p)
        ref = [float(mpmath.diff(lambda A, B, C: mpmath.hyp2f1(A, B, C, z), tuple(p), d))
               for d in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
        np.testing.assert_allclose(g, ref, rtol=1e-10)


def test_sph_harm_y_twin_values_and_derivatives():
    n, m = np.array([2, 3, 4, 1]), np.array([1, -2, 0, -1])
    theta, phi = np.array([0.4, 1.3, 2.9, 0.8]), np.array([0.3, -1.0, 2.0, 0.5])
    for diff_n in (0, 1, 2):
        ours, theirs = S.sph_harm_y(n, m, theta, phi, diff_n=diff_n), sc.sph_harm_y(n, m, theta, phi,
                                                                                     diff_n=diff_n)
        for a, b in zip(ours if diff_n else (ours,), theirs if diff_n else (theirs,)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    jac = sc.sph_harm_y(n, m, theta, phi, diff_n=1)[1]
    real_part = npfunc.vmap(npfunc.grad(lambda t, p, n, m: S.sph_harm_y(n, m, t, p).real, argnums=(0, 1)))
    gt, gp = real_part(theta, phi, n, m)
    np.testing.assert_allclose(gt, jac[..., 0].real, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gp, jac[..., 1].real, rtol=1e-12, atol=1e-14)
    # at the pole: the one-sided derivative from inside [0, pi]
    d = npfunc.jacfwd(lambda t: S.sph_harm_y(1, 1, t, 0.3))(np.array(0.0))
    h = 1e-7
    np.testing.assert_allclose(d, (sc.sph_harm_y(1, 1, h, 0.3) - sc.sph_harm_y(1, 1, 0.0, 0.3)) / h, rtol=1e-6)
    with pytest.raises(ValueError, match="diff_n"):
        S.sph_harm_y(1, 1, 0.3, 0.3, diff_n=3)


def test_combinatorial_twins():
    N, k = np.array([5.0, 3.5, 2.0, -1.0, 6.0]), np.array([2.0, 1.5, 3.0, 1.0, -0.5])
    np.testing.assert_array_equal(S.comb(N, k), sc.comb(N, k))
    np.testing.assert_allclose(S.comb(N, k, repetition=True), sc.comb(N, k, repetition=True))
    assert S.comb(5, 2, exact=True) == sc.comb(5, 2, exact=True) == 10
    assert type(S.comb(5.0, 2.0)) is type(sc.comb(5.0, 2.0))
    g = npfunc.grad(lambda N: np.sum(S.comb(N, k)))(N)
    assert np.all(np.isfinite(g)) and np.all(g[[2, 3, 4]] == 0)
    np.testing.assert_allclose(g[:2], fd(lambda N: np.sum(sc.comb(N, k)), N)[:2], rtol=1e-7)
    n = np.array([-1.5, 0.0, 2.5, 4.0])
    np.testing.assert_array_equal(S.factorial(n), sc.factorial(n))
    gn = npfunc.vmap(npfunc.grad(S.factorial))(n)
    np.testing.assert_allclose(gn[1:], sc.gamma(n[1:] + 1) * sc.digamma(n[1:] + 1))
    assert gn[0] == 0
    np.testing.assert_allclose(npfunc.grad(lambda n: S.factorial(n, extend="complex"))(-1.5),
                               sc.gamma(-0.5) * sc.digamma(-0.5))
    a = np.array([3.5, 6.0])
    np.testing.assert_allclose(S.multigammaln(a, 4), sc.multigammaln(a, 4), rtol=1e-13)
    np.testing.assert_allclose(npfunc.grad(lambda a: np.sum(S.multigammaln(a, 4)))(a),
                               fd(lambda a: np.sum(sc.multigammaln(a, 4)), a), rtol=1e-7)
    np.testing.assert_array_equal(S.bernoulli(6), sc.bernoulli(6))


def test_twin_errors():
    with pytest.raises(UnsupportedOperationError, match="exact=True"):
        npfunc.grad(lambda n: S.comb(n, 2.0, exact=True))(5.0)
    with pytest.raises(UnsupportedOperationError, match="exact=True"):
        npfunc.grad(lambda n: S.factorial(n, exact=True))(5.0)
    with pytest.raises(UnsupportedOperationError, match="Python integer"):
        npfunc.vmap(S.bernoulli)(np.array([2.0, 3.0]))
    with pytest.raises(ValueError, match="condition a"):
        S.multigammaln(np.array([1.0]), 4)
    assert np.isnan(npfunc.grad(lambda a: S.multigammaln(a, 4))(1.0))
    with pytest.raises(ValueError, match="extend"):
        S.factorial(3.0, extend="bad")
    # SciPy's own Python functions, called unmodified, reach the twins
    assert npfunc.grad(lambda n: sc.comb(n, 2.0))(5.0) == npfunc.grad(lambda n: S.comb(n, 2.0))(5.0)
    assert npfunc.grad(lambda z: sc.spherical_jn(1, z))(1.0) == npfunc.grad(lambda z: S.spherical_jn(1, z))(1.0)


def test_derivatives_without_a_formula_raise():
    with pytest.raises(UnsupportedOperationError, match=r"scipy\.special\.jv\(v, x\).*order v"):
        npfunc.grad(lambda v: sc.jv(v, 2.0))(1.0)
    with pytest.raises(UnsupportedOperationError, match=r"kv\(v, x\).*order"):
        npfunc.jacfwd(lambda v: sc.kv(v, 2.0))(np.array([1.0, 2.0]))
    with pytest.raises(UnsupportedOperationError, match="not holomorphic"):
        npfunc.jvp(lambda z: sc.ive(1.0, z), (np.array([1.0 + 1j]),), (np.array([1.0 + 0j]),))
    with pytest.raises(UnsupportedOperationError, match="real z only"):
        npfunc.jvp(lambda a: sc.hyp1f1(a, 1.5, 0.3 + 0.2j), (0.5,), (1.0,))
    with pytest.raises(UnsupportedOperationError, match="real x only"):
        npfunc.jvp(lambda x: sc.zeta(x), (np.array([2.0 + 1j]),), (np.array([1.0 + 0j]),))
    with pytest.raises(ArithmeticError, match="did not converge"):
        npfunc.grad(lambda a: sc.hyp2f1(a, 1.0, 2.0, 1 - 1e-9))(0.5)
    # the order of yn / expn / spherical functions is an integer: no derivative, no error
    assert npfunc.grad(lambda x: sc.yn(2, x) + sc.expn(2, x))(1.5) != 0


# ---- natural programs ------------------------------------------------------------------------------------

def rician_nll(params, x):
    """Negative log-likelihood of Rician data (magnitude MRI), written as a user would."""
    nu, log_sigma = params[0], params[1]
    s2 = np.exp(2 * log_sigma)
    z = x * nu / s2
    # log I0(z) = log(i0e(z)) + z: stable for large z
    return -np.sum(np.log(x / s2) - (x * x + nu * nu) / (2 * s2) + np.log(sc.i0e(z)) + z)


def rician_grad_by_hand(params, x):
    nu, log_sigma = params
    s2 = np.exp(2 * log_sigma)
    z = x * nu / s2
    ratio = sc.i1e(z) / sc.i0e(z)  # I1/I0
    d_nu = -np.sum(-nu / s2 + ratio * x / s2)
    d_ls = -np.sum(-2.0 + (x * x + nu * nu) / s2 - 2 * ratio * z)
    return np.array([d_nu, d_ls])


def test_rician_likelihood_fit():
    rng = np.random.default_rng(3)
    nu, sigma = 3.0, 0.8
    x = np.abs(nu + sigma * rng.standard_normal(400) + 1j * sigma * rng.standard_normal(400))
    p = np.array([1.0, 0.0])
    np.testing.assert_allclose(npfunc.grad(rician_nll)(p, x), rician_grad_by_hand(p, x), rtol=1e-10)
    np.testing.assert_allclose(npfunc.hessian(rician_nll)(p, x), fd(lambda q: npfunc.grad(rician_nll)(q, x), p),
                               rtol=1e-6)
    fit = minimize(rician_nll, p, args=(x,), jac=npfunc.grad(rician_nll), method="L-BFGS-B")
    assert fit.success
    p = fit.x
    assert abs(p[0] - nu) < 0.2 and abs(np.exp(p[1]) - sigma) < 0.1
    # per-sample gradients (vmap over observations)
    per = npfunc.vmap(npfunc.grad(rician_nll), in_dims=(None, 0))(p, x[:, None])
    np.testing.assert_allclose(per.sum(0), npfunc.grad(rician_nll)(p, x), rtol=1e-10, atol=1e-9)


def test_von_mises_mixture_with_scipy_special():
    rng = np.random.default_rng(5)
    data = np.concatenate([rng.vonmises(-1.0, 4.0, 150), rng.vonmises(2.0, 8.0, 150)])

    def nll(theta):
        mu, log_kappa, logit_w = theta[:2], theta[2:4], theta[4]
        kappa = np.exp(log_kappa)
        w = sc.expit(logit_w)
        comp = kappa * (np.cos(data[:, None] - mu) - 1) - np.log(2 * np.pi * sc.i0e(kappa))
        mix = np.log(np.stack([w, 1 - w])) + comp
        return -np.sum(S.logsumexp(mix, axis=1))

    theta = np.array([-0.5, 1.5, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(npfunc.grad(nll)(theta), fd(nll, theta), rtol=1e-6)
    fit = minimize(nll, theta, jac=npfunc.grad(nll), method="BFGS")
    mu, kappa = fit.x[:2], np.exp(fit.x[2:4])
    assert abs(mu[0] + 1.0) < 0.2 and abs(mu[1] - 2.0) < 0.2
    assert abs(kappa[0] - 4.0) < 1.5 and abs(kappa[1] - 8.0) < 3.0


def test_scipy_benchmark_quick_correctness():
    """benchmarks/bench_scipy.py --quick: npfunc's gradients equal the hand-written ones (no timing asserted)."""
    import pathlib
    import subprocess
    import sys

    bench = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scipy.py"
    proc = subprocess.run([sys.executable, str(bench), "--quick", "--repeats", "1"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for workload in ("rician", "von Mises mixture", "censored Weibull"):
        assert workload in proc.stdout
