"""scipy.special under the transforms.

* SciPy's ufuncs called unmodified on traced values: value, grad vs central
  differences, vmap(grad) vs a loop, float32 kept;
* stability of the derivatives far in the tails;
* the conventions at x = 0 of xlogy / xlog1py / entr / rel_entr / kl_div;
* the Python-level functions (logsumexp, softmax, log_softmax, polygamma)
  through their npfunc.scipy.special twins, and what happens when SciPy's own
  versions meet a traced value;
* the lazy registration: ``import npfunc`` does not import SciPy.
"""
import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sc

import npfunc
from npfunc.testing import numerical_jacobian as fd_grad
from npfunc.core.errors import NpfuncError
from npfunc.scipy import special as S

EPS = 1e-6


UNARY = [  # (name, domain)
    ("expit", (-5, 5)), ("logit", (0.05, 0.95)), ("log_expit", (-5, 5)), ("erf", (-2, 2)),
    ("erfc", (-2, 2)), ("erfinv", (-0.9, 0.9)), ("erfcinv", (0.1, 1.9)), ("erfcx", (-1.5, 4)),
    ("ndtr", (-3, 3)), ("log_ndtr", (-6, 4)), ("ndtri", (0.05, 0.95)), ("gamma", (0.3, 4)),
    ("gammaln", (0.3, 6)), ("digamma", (0.3, 6)), ("psi", (0.3, 6)), ("entr", (0.1, 2)),
    ("i0", (-3, 3)), ("i1", (-3, 3)), ("i0e", (-3, 3)), ("i1e", (-3, 3)), ("softplus", (-5, 5)),
]

BINARY = [("beta", (0.5, 3), (0.5, 3)), ("betaln", (0.5, 3), (0.5, 3)), ("xlogy", (-2, 2), (0.2, 3)),
          ("xlog1py", (-2, 2), (-0.8, 3)), ("rel_entr", (0.2, 2), (0.2, 2)), ("kl_div", (0.2, 2), (0.2, 2))]


@pytest.mark.parametrize("name,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unmodified_scipy_unary(name, domain):
    f = getattr(sc, name)
    rng = np.random.default_rng(0)
    x = rng.uniform(*domain, size=(2, 3))
    np.testing.assert_allclose(getattr(S, name)(x), f(x), rtol=1e-15)
    g = npfunc.grad(lambda v: f(v).sum())(x)
    np.testing.assert_allclose(g, fd_grad(lambda v: f(v).sum(), x), rtol=1e-6, atol=1e-8)
    per_row = npfunc.vmap(npfunc.grad(lambda v: (f(v) * np.arange(1.0, 4.0)).sum()))(x)
    loop = np.stack([npfunc.grad(lambda v: (f(v) * np.arange(1.0, 4.0)).sum())(r) for r in x])
    np.testing.assert_allclose(per_row, loop, rtol=1e-13)
    # second order: the diagonal Hessian against differences of the gradient
    h = npfunc.vmap(npfunc.grad(npfunc.grad(f)))(x[0])
    fd = (npfunc.vmap(npfunc.grad(f))(x[0] + EPS) - npfunc.vmap(npfunc.grad(f))(x[0] - EPS)) / (2 * EPS)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-7)
    x32 = x.astype(np.float32)
    out, t = npfunc.jvp(f, (x32,), (np.ones_like(x32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    (ct,) = npfunc.vjp(f, x32)[1](np.ones_like(out))
    assert ct.dtype == np.float32


@pytest.mark.parametrize("name,dx,dy", BINARY, ids=[b[0] for b in BINARY])
def test_unmodified_scipy_binary(name, dx, dy):
    f = getattr(sc, name)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(*dx, size=(2, 3)), rng.uniform(*dy, size=(3,))
    np.testing.assert_allclose(getattr(S, name)(x, y), f(x, y), rtol=1e-15)
    gx, gy = npfunc.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, fd_grad(lambda a: f(a, y).sum(), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy, fd_grad(lambda b: f(x, b).sum(), y), rtol=1e-6, atol=1e-8)
    got = npfunc.vmap(npfunc.grad(lambda a, b: f(a, b).sum(), argnums=1), in_dims=(0, None))(x, y)
    loop = np.stack([npfunc.grad(lambda a, b: f(a, b).sum(), argnums=1)(r, y) for r in x])
    np.testing.assert_allclose(got, loop, rtol=1e-13)
    # float32 stays float32; with a Python scalar operand the dtype is SciPy's own
    y32 = y.astype(np.float32)
    out, t = npfunc.jvp(lambda b: f(b, b), (y32,), (np.ones(3, np.float32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    out, t = npfunc.jvp(lambda b: f(1.5, b), (y32,), (np.ones(3, np.float32),))
    assert out.dtype == f(1.5, y32).dtype and t.dtype == out.dtype


def test_complex_holomorphic():
    z = np.array([0.3 + 0.4j, -0.5 + 0.2j, 1.1 - 0.7j])
    for f in (sc.erf, sc.erfc, sc.erfcx, sc.ndtr, sc.log_ndtr, sc.gamma):
        dz = np.array([1.0 + 0.5j, -0.3 + 1j, 0.2 - 0.1j])
        _, t = npfunc.jvp(f, (z,), (dz,))
        fd = (f(z + EPS * dz) - f(z - EPS * dz)) / (2 * EPS)
        np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-8)


# ---- tails -----------------------------------------------------------------------------

def _inverse_mills(t):
    """phi(-t) / Phi(-t) for large t, from the asymptotic series of Mills' ratio."""
    r = (1 - 1 / t**2 + 3 / t**4 - 15 / t**6 + 105 / t**8 - 945 / t**10) / t
    return 1 / r


def test_log_ndtr_derivative_far_left_and_right():
    x = np.array([-1e6, -1e3, -60.0, -40.0, -25.0])
    g = npfunc.vmap(npfunc.grad(sc.log_ndtr))(x)
    np.testing.assert_allclose(g, _inverse_mills(-x), rtol=1e-12)
    g = npfunc.vmap(npfunc.grad(sc.log_ndtr))(np.array([10.0, 40.0, 1e3]))
    assert np.all(np.isfinite(g)) and np.all(g >= 0) and g[0] < 1e-20
    # second derivative stays finite and tends to -1
    h = npfunc.vmap(npfunc.grad(npfunc.grad(sc.log_ndtr)))(np.array([-1e4, -50.0]))
    np.testing.assert_allclose(h, [-1.0, -1.0], atol=1e-3)
    g32 = npfunc.grad(lambda v: sc.log_ndtr(v).sum())(np.array([-30.0, -8.0], np.float32))
    np.testing.assert_allclose(g32, _inverse_mills(np.array([30.0, 8.0])), rtol=1e-5)


def test_log_ndtr_matches_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    for x in (-300.0, -20.0, -3.0, 0.0, 2.5, 9.0):
        exact = mpmath.npdf(x) / mpmath.ncdf(x)
        got = npfunc.grad(sc.log_ndtr)(np.float64(x))
        np.testing.assert_allclose(got, float(exact), rtol=1e-13)


def test_logistic_tails():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    g = npfunc.vmap(npfunc.grad(sc.log_expit))(x)
    np.testing.assert_allclose(g, sc.expit(-x), rtol=1e-15)
    g = npfunc.vmap(npfunc.grad(sc.expit))(x)
    assert np.all(np.isfinite(g)) and g[2] == 0.25
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(S.softplus))(x), sc.expit(x), rtol=1e-15)


def test_exponentially_scaled_bessel_far_out():
    x = np.array([-500.0, -30.0, 0.0, 30.0, 500.0])
    g0 = npfunc.vmap(npfunc.grad(sc.i0e))(x)
    g1 = npfunc.vmap(npfunc.grad(sc.i1e))(x)
    np.testing.assert_allclose(g0, sc.i1e(x) - np.sign(x) * sc.i0e(x), rtol=1e-12, atol=1e-300)
    assert g1[2] == 0.5 and np.all(np.isfinite(g1))
    np.testing.assert_allclose(npfunc.grad(sc.i1)(0.0), 0.5)


def test_erfcx_and_ndtri_extremes():
    x = np.array([30.0, 1e4])
    g = npfunc.vmap(npfunc.grad(sc.erfcx))(x)
    np.testing.assert_allclose(g, -1 / (np.sqrt(np.pi) * x**2), rtol=1e-2)
    p = np.array([1e-300, 1 - 1e-12])
    g = npfunc.vmap(npfunc.grad(sc.ndtri))(p)
    np.testing.assert_allclose(g, 1 / (np.exp(-sc.ndtri(p) ** 2 / 2) / np.sqrt(2 * np.pi)), rtol=1e-10)


# ---- conventions at x = 0 ----------------------------------------------------------

def test_xlogy_conventions():
    x, y = np.array([0.0, 0.0, 2.0]), np.array([0.0, 3.0, 0.5])
    gx, gy = npfunc.grad(lambda a, b: sc.xlogy(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gy, [0.0, 0.0, 4.0])
    np.testing.assert_allclose(gx, np.log(y))  # -inf at y = 0 is the true derivative
    gx, gy = npfunc.grad(lambda a, b: sc.xlog1py(a, b).sum(), argnums=(0, 1))(x, y - 1)
    np.testing.assert_array_equal(gy, [0.0, 0.0, 4.0])
    hess = npfunc.hessian(lambda b: sc.xlogy(x, b).sum())(np.array([0.0, 3.0, 0.5]))
    np.testing.assert_array_equal(np.diag(hess), [0.0, 0.0, -8.0])


def test_entropy_conventions():
    with np.errstate(divide="ignore"):
        g = npfunc.grad(lambda v: sc.entr(v).sum())(np.array([0.0, 0.5, -1.0]))
    np.testing.assert_allclose(g, [np.inf, np.log(2) - 1, 0.0])
    x, y = np.array([0.0, 0.5, 0.0, -1.0]), np.array([0.5, 1.5, 0.0, 1.0])
    gx, gy = npfunc.grad(lambda a, b: sc.rel_entr(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, [0.0, np.log(1 / 3) + 1, 0.0, 0.0])
    np.testing.assert_allclose(gy, [0.0, -1 / 3, 0.0, 0.0])
    gx, gy = npfunc.grad(lambda a, b: sc.kl_div(a, b).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, [0.0, np.log(1 / 3), 0.0, 0.0])
    np.testing.assert_allclose(gy, [1.0, 1 - 1 / 3, 1.0, 0.0])


# ---- polygamma -------------------------------------------------------------------------

def test_polygamma():
    x = np.array([0.7, 1.5, 4.0])
    n = np.array([0, 1, 3])
    np.testing.assert_allclose(S.polygamma(n, x), sc.polygamma(n, x), rtol=1e-15)
    g = npfunc.grad(lambda v: S.polygamma(n, v).sum())(x)
    np.testing.assert_allclose(g, sc.polygamma(n + 1, x), rtol=1e-14)
    np.testing.assert_allclose(g, fd_grad(lambda v: sc.polygamma(n, v).sum(), x), rtol=1e-6)
    got = npfunc.vmap(lambda k: npfunc.grad(lambda v: S.polygamma(k, v))(1.5))(n)
    np.testing.assert_allclose(got, sc.polygamma(n + 1, 1.5), rtol=1e-14)
    assert S.polygamma(2, x.astype(np.float32)).dtype == np.float32
    # the order carries no derivative (even when given as a float)
    out, t = npfunc.jvp(lambda k: S.polygamma(k, x), (np.array([1.0, 1.0, 1.0]),), (np.ones(3),))
    np.testing.assert_array_equal(t, 0.0)
    # digamma's derivative is polygamma(1, .): hessian of gammaln
    np.testing.assert_allclose(npfunc.hessian(lambda v: sc.gammaln(v).sum())(x), np.diag(sc.polygamma(1, x)))


# ---- logsumexp / softmax / log_softmax ------------------------------------------------

LSE_CASES = [
    dict(), dict(axis=0), dict(axis=-1), dict(axis=(0, 2)), dict(axis=1, keepdims=True),
    dict(axis=None, keepdims=True), dict(axis=1, b="pos"), dict(axis=(1, 2), b="row"),
    dict(axis=1, b="signed", return_sign=True), dict(axis=2, b="signed", return_sign=True, keepdims=True),
]


def _b(kind, rng, shape):
    if kind == "pos":
        return rng.uniform(0.2, 2.0, shape)
    if kind == "row":
        return rng.uniform(0.2, 2.0, shape[-1])  # broadcasts against a
    return np.where(rng.uniform(size=shape) > 0.3, 1.0, -0.3) * rng.uniform(0.5, 1.5, shape)


@pytest.mark.parametrize("case", LSE_CASES, ids=[str(c) for c in LSE_CASES])
def test_logsumexp_against_scipy(case):
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, (2, 3, 4))
    kw = dict(case)
    if "b" in kw:
        kw["b"] = _b(kw["b"], rng, x.shape)
    expected = sc.logsumexp(x, **kw)
    got = S.logsumexp(x, **kw)
    if kw.get("return_sign"):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-13)
        np.testing.assert_array_equal(got[1], expected[1])
        value = lambda v: (S.logsumexp(v, **kw)[0] * np.cos(np.arange(got[0].size)).reshape(got[0].shape)).sum()
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-13)
        assert np.shape(got) == np.shape(expected)
        value = lambda v: (S.logsumexp(v, **kw) * np.cos(np.arange(np.size(got))).reshape(np.shape(got))).sum()
    g = npfunc.grad(value)(x)
    np.testing.assert_allclose(g, fd_grad(value, x), rtol=1e-6, atol=1e-8)
    if "b" in kw:
        b = kw.pop("b")
        bvalue = lambda bb: (np.cos(np.arange(np.size(got[0] if isinstance(got, tuple) else got)))
                             * np.ravel(S.logsumexp(x, b=bb, **kw)[0] if kw.get("return_sign")
                                        else S.logsumexp(x, b=bb, **kw))).sum()
        np.testing.assert_allclose(npfunc.grad(bvalue)(b), fd_grad(bvalue, b), rtol=1e-6, atol=1e-8)
    xb = np.stack([x, x * 0.5, x - 1])
    got_b = npfunc.vmap(npfunc.grad(value))(xb)
    np.testing.assert_allclose(got_b, np.stack([npfunc.grad(value)(v) for v in xb]), rtol=1e-12)


def test_logsumexp_hessian_and_float32():
    rng = np.random.default_rng(4)
    A, x = rng.standard_normal((5, 3)), rng.standard_normal(3)
    f = lambda v: S.logsumexp(A @ v)
    p = sc.softmax(A @ x)
    expected = A.T @ (np.diag(p) - np.outer(p, p)) @ A
    np.testing.assert_allclose(npfunc.hessian(f)(x), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(npfunc.jacfwd(npfunc.jacrev(f))(x), expected, rtol=1e-12, atol=1e-14)
    x32 = rng.standard_normal((2, 4)).astype(np.float32)
    out = S.logsumexp(x32, axis=1)
    assert out.dtype == np.float32
    assert npfunc.grad(lambda v: S.logsumexp(v))(x32).dtype == np.float32
    # a float32 input with float64 weights promotes like SciPy
    assert S.logsumexp(x32, b=np.ones(4)).dtype == sc.logsumexp(x32, b=np.ones(4)).dtype


def test_logsumexp_neg_inf_convention():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    out = S.logsumexp(x, axis=1)
    np.testing.assert_array_equal(out, sc.logsumexp(x, axis=1))
    g = npfunc.grad(lambda v: S.logsumexp(v, axis=1).sum())(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], sc.softmax([0.0, -np.inf, 1.0]))
    np.testing.assert_array_equal(g[1], 0.0)
    H = npfunc.hessian(lambda v: S.logsumexp(v))(np.array([0.0, -np.inf, 1.0]))
    assert np.all(np.isfinite(H)) and np.all(H[1] == 0) and np.all(H[:, 1] == 0)
    # all -inf with b and a sign
    out, sign = S.logsumexp(np.full(3, -np.inf), b=np.ones(3), return_sign=True)
    assert out == -np.inf and sign == 0
    assert npfunc.grad(lambda v: S.logsumexp(v, b=np.ones(3)))(np.full(3, -np.inf)).tolist() == [0.0] * 3


def test_logsumexp_scalars_lists_and_complex():
    assert S.logsumexp(2.0) == sc.logsumexp(2.0)
    np.testing.assert_allclose(S.logsumexp([1.0, 2.0, 3.0]), sc.logsumexp([1.0, 2.0, 3.0]), rtol=1e-15)
    np.testing.assert_allclose(npfunc.grad(S.logsumexp)(np.float64(0.3)), 1.0)
    z = np.array([0.3 + 1.0j, -0.4 + 2.5j, 1.0 - 0.5j])
    np.testing.assert_allclose(S.logsumexp(z), sc.logsumexp(z), rtol=1e-13)
    dz = np.array([0.5 - 0.2j, 1.0 + 0.3j, -0.7 + 0.1j])
    _, t = npfunc.jvp(S.logsumexp, (z,), (dz,))
    np.testing.assert_allclose(t, (S.logsumexp(z + EPS * dz) - S.logsumexp(z - EPS * dz)) / (2 * EPS), rtol=1e-6)
    out, sign = S.logsumexp(z, return_sign=True)
    eo, es = sc.logsumexp(z, return_sign=True)
    np.testing.assert_allclose(out, eo, rtol=1e-13)
    np.testing.assert_allclose(sign, es, rtol=1e-13)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
def test_softmax_family(name, axis):
    ours, theirs = getattr(S, name), getattr(sc, name)
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, (2, 3, 4))
    np.testing.assert_allclose(ours(x, axis=axis), theirs(x, axis=axis), rtol=1e-13, atol=1e-15)
    w = np.cos(np.arange(x.size)).reshape(x.shape)
    value = lambda v: (ours(v, axis=axis) * w).sum()
    np.testing.assert_allclose(npfunc.grad(value)(x), fd_grad(value, x), rtol=1e-6, atol=1e-8)
    xb = np.stack([x, 2 * x])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(value))(xb),
                               np.stack([npfunc.grad(value)(v) for v in xb]), rtol=1e-12)
    x0 = x[0, 0]
    H = npfunc.hessian(lambda v: (ours(v) * w[0, 0]).sum())(x0)
    Hfd = np.stack([fd_grad(lambda v: npfunc.grad(lambda u: (ours(u) * w[0, 0]).sum())(v)[i], x0)
                    for i in range(4)])
    np.testing.assert_allclose(H, Hfd, rtol=1e-5, atol=1e-7)
    x32 = x.astype(np.float32)
    assert ours(x32, axis=axis).dtype == np.float32
    assert npfunc.grad(lambda v: (ours(v, axis=axis) * w).sum())(x32).dtype == np.float32


def test_softmax_neg_inf_entries():
    x = np.array([0.5, -np.inf, 1.0])
    np.testing.assert_array_equal(S.softmax(x), sc.softmax(x))
    np.testing.assert_array_equal(S.log_softmax(x), sc.log_softmax(x))
    J = npfunc.jacrev(S.softmax)(x)
    assert np.all(np.isfinite(J)) and np.all(J[1] == 0) and np.all(J[:, 1] == 0)
    J = npfunc.jacfwd(S.log_softmax)(x)
    assert np.all(np.isfinite(J))
    np.testing.assert_allclose(J[[0, 2]][:, [0, 2]], npfunc.jacfwd(S.log_softmax)(x[[0, 2]]), rtol=1e-15)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "polygamma"])
def test_scipy_python_functions_called_unmodified_reach_the_twins(name):
    """SciPy's Python-level functions convert with np.asarray; called on traced
    values they are routed to npfunc.scipy.special's twins."""
    fn, twin = getattr(sc, name), getattr(S, name)
    args = (lambda x: (1, x)) if name == "polygamma" else (lambda x: (x,))
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(npfunc.grad(lambda v: fn(*args(v)).sum())(x),
                               npfunc.grad(lambda v: twin(*args(v)).sum())(x), rtol=1e-14)
    xs = np.stack([x, 2 * x])
    np.testing.assert_allclose(npfunc.vmap(lambda v: fn(*args(v)))(xs), np.stack([fn(*args(v)) for v in xs]),
                               rtol=1e-14)


def test_scipy_softplus_unmodified():
    x = np.array([-3.0, 0.0, 2.0])
    np.testing.assert_allclose(npfunc.grad(lambda v: sc.softplus(v).sum())(x), sc.expit(x), rtol=1e-15)
    np.testing.assert_allclose(S.softplus(x), sc.softplus(x), rtol=1e-15)


def test_namespace():
    assert S.psi is S.digamma
    assert S.erf is npfunc.primitives.special.functions.erf
    assert S.__getattr__("expit") is S.expit
    with pytest.raises(AttributeError, match="not supported"):
        S.struve  # noqa: B018  (not supported)


# ---- lazy registration -----------------------------------------------------------------

def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_npfunc_does_not_import_scipy_special():
    assert _run("import sys, npfunc; print('scipy.special' in sys.modules)").strip() == "False"


@pytest.mark.parametrize("order", ["npfunc first", "scipy first", "implementation first"])
def test_ufuncs_dispatch_whatever_the_import_order(order):
    imports = {"npfunc first": "import npfunc, scipy.special as sc",
               "scipy first": "import scipy.special as sc, npfunc",
               "implementation first": "import npfunc; npfunc.primitives.special.functions.erf(0.5); "
                                       "import scipy.special as sc"}[order]
    code = (f"{imports}\nimport numpy as np\n"
            "g = npfunc.grad(lambda x: sc.erf(x).sum())(np.zeros(2))\n"
            "assert np.allclose(g, 2 / np.sqrt(np.pi)), g\n"
            "assert npfunc.grad(sc.psi)(1.0) > 0\n")
    _run(code)
