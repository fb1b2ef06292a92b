"""Exponential, trigonometric and error-function integrals of
``scipy.special``: ``exp1 expi expn dawsn fresnel sici spence wofz owens_t``, and the Voigt
profile ``voigt_profile`` (the real part of ``wofz``).

Each is the integral of an elementary function, so its derivative is that
function (holomorphic for complex input, where SciPy accepts it):

    exp1' = -e^-x / x      expi' = e^x / x       expn(n)' = -expn(n - 1)  (n >= 1)
    dawsn' = 1 - 2x dawsn  fresnel' = (sin(pi x^2/2), cos(pi x^2/2))
    sici' = (sin x / x, cos x / x)                 spence' = log(z) / (1 - z)
    wofz' = -2z wofz + 2i/sqrt(pi)
    owens_t: d/dh = -phi(h) erf(a h / sqrt 2) / 2, d/da = exp(-h^2 (1+a^2)/2) / (2 pi (1+a^2))
    voigt_profile(x, sigma, gamma) = Re w(z) / (sigma sqrt(2 pi)), z = (x + i gamma) / (sigma sqrt 2):
        d/dx = Re w'(z) / (2 sqrt(pi) sigma^2), d/dgamma = -Im w'(z) / (2 sqrt(pi) sigma^2),
        d/dsigma = -(V + Re(z w'(z)) / (sigma sqrt(2 pi))) / sigma; at sigma = 0 (SciPy's Lorentzian)
        the Lorentzian's derivatives and 0 in sigma (V is even in sigma)

Removable singularities get a series so every derivative order stays
exact: ``sin x / x`` is ``np.sinc``'s (series near 0), and ``log(z)/(1-z)``
uses ``-sum (-u)^k / (k+1)``, u = z - 1, for |u| < 0.1.  ``expn``'s integer
order is not differentiated; ``expn(0, x) = e^-x / x`` has derivative
``-(1 + 1/x) expn(0, x)``.  ``fresnel`` and ``sici`` return two outputs: each
is its own primitive (``fresnel_s``, ``fresnel_c``, ``sici_si``, ``sici_ci``).

>>> import npfunc, scipy.special as sc
>>> float(npfunc.grad(lambda x: sc.fresnel(x)[0])(1.0)), float(npfunc.grad(sc.spence)(1.0))
(1.0, -1.0)
"""
from __future__ import annotations

import math

import numpy as np

from ...core.primitive import Composite, Sample
from ..families import nary, unary
from ..sampling import FLOATS, array, binary_samples, unary_samples
from ._lazy import lazy_ufunc, register_when_imported, scipy_special
from .functions import erf

DEFS: dict = {}
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SERIES_TERMS = 18


def _with(*builders):
    def make(rng):
        return [s for b in builders for s in b(rng)]

    return make


def _points(values, label="special points", dtypes=FLOATS):
    return lambda rng: [Sample(np.array(values, dtype=dt), label=label) for dt in dtypes]


def _complex(domain=(0.3, 2.5)):
    def make(rng):
        z = array(rng, (3,), domain=domain) + 1j * array(rng, (3,), domain=(-1.5, 1.5))
        return [Sample(z, label="complex"), Sample(z.astype(np.complex64), label="complex64")]

    return make


def _define(name, deriv, samples, notes="", impl=None):
    fn = unary(name, impl or lazy_ufunc(name), deriv=deriv, samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


exp1 = _define("exp1", lambda x, out: -np.exp(-x) / x,
               _with(unary_samples(domain=(0.1, 4.0)), _points([30.0, 700.0], "large x"), _complex()),
               notes="derivative -exp(-x)/x")
expi = _define("expi", lambda x, out: np.exp(x) / x,
               _with(unary_samples(domain=(0.1, 4.0)), _points([-3.0, -0.5, 40.0], "negative and large x"),
                     _complex()),
               notes="derivative exp(x)/x")
dawsn = _define("dawsn", lambda x, out: 1 - 2 * x * out,
                _with(unary_samples(domain=(-4.0, 4.0)), _points([0.0, 30.0], "0 and large x"), _complex()),
                notes="derivative 1 - 2x dawsn(x)")
wofz = _define("wofz", lambda z, out: -2 * z * out + 2j / math.sqrt(math.pi),
               _with(_complex((-2.0, 2.0)), unary_samples(domain=(-3.0, 3.0), dtypes=(np.float64,))),
               notes="derivative -2z wofz(z) + 2i/sqrt(pi); real input gives complex output")


def _log_ratio(z):
    """log(z) / (1 - z), with the series -sum (-u)^k / (k+1) near z = 1 (u = z - 1)."""
    u = z - 1
    near = np.abs(u) < 0.1
    un = np.where(near, u, 0.0)
    series = 0.0
    for k in range(_SERIES_TERMS - 1, -1, -1):  # Horner
        series = series * (-un) + 1.0 / (k + 1)
    zf = np.where(near, 2.0, z)
    return np.where(near, -series, np.log(zf) / (1 - zf))


spence = _define("spence", lambda z, out: _log_ratio(z),
                 _with(unary_samples(domain=(0.1, 3.0)), _points([1.0, 0.97, 1.05, 1.0 + 1e-9], "around 1",
                                                                 dtypes=(np.float64,)),
                       _complex((0.5, 2.0))),
                 notes="derivative log(z)/(1-z), a series near z = 1 (-1 at z = 1); -inf at 0")


def _expn_dx(n, x, out):
    lower = np.maximum(n - 1, 0)
    return np.where(n >= 1, -expn(lower, x), -(1 + 1 / x) * out)


def _expn_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(np.array([0, 1, 2, 5]), array(rng, (2, 4), dt, (0.2, 4.0))))
    out.append(Sample(3, array(rng, (3,), domain=(0.1, 40.0)), label="python int n"))
    out.append(Sample(np.array([[1], [4]]), np.array([0.5, 2.0, 50.0]), label="broadcast, large x"))
    return out


expn = nary("expn", lazy_ufunc("expn"),
            jvps=(None, lambda t, n, x, out: t * _expn_dx(n, x, out)),
            vjps=(None, lambda g, n, x, out: g * _expn_dx(n, x, out)),
            samples=_expn_samples,
            notes="integer order n not differentiated; d/dx = -expn(n-1, x), -(1 + 1/x) expn(0, x) for n = 0")
DEFS["expn"] = expn

# ---- two-output integrals: one primitive per output --------------------------------------------------


def _pair(name, first, second, d_first, d_second, samples, notes):
    a = unary(f"{name}_{first}", lazy_ufunc(name, 0), deriv=d_first, samples=samples, notes=notes)
    b = unary(f"{name}_{second}", lazy_ufunc(name, 1), deriv=d_second, samples=samples, notes=notes)

    def both(x, /):
        return a(x), b(x)

    both.__name__ = both.__qualname__ = name
    both.__doc__ = f"``scipy.special.{name}(x)``: ({first}, {second}) for traced and plain values."

    def call_scipy(x):
        return getattr(scipy_special(), name)(x)

    both.composite = Composite(f"scipy.special.{name}", call_scipy, samples=samples,  # type: ignore[attr-defined]
                               notes=notes)
    DEFS[name] = both
    return both, a, b


fresnel, fresnel_s, fresnel_c = _pair(
    "fresnel", "s", "c",
    lambda x, out: np.sin(0.5 * np.pi * x * x), lambda x, out: np.cos(0.5 * np.pi * x * x),
    _with(unary_samples(domain=(-2.5, 2.5)), _points([0.0, 40.0], "0 and large x"), _complex((-1.5, 1.5))),
    "derivatives sin(pi x^2 / 2), cos(pi x^2 / 2)")


def _sinc(x):
    return np.sinc(x / np.pi)


sici, sici_si, sici_ci = _pair(
    "sici", "si", "ci", lambda x, out: _sinc(x), lambda x, out: np.cos(x) / x,
    _with(unary_samples(domain=(0.2, 5.0)), _points([-2.0, -0.3, 60.0], "negative and large x"),
          _complex((0.3, 3.0))),
    "derivatives sin(x)/x (1 at 0, np.sinc's series), cos(x)/x; SciPy's real Ci(x) = Ci(|x|) for x < 0")

# ---- Owen's T -----------------------------------------------------------------------------------------


def _owens_dh(h, a, out):
    return -0.5 * _INV_SQRT_2PI * np.exp(-0.5 * h * h) * erf(a * h * (1 / math.sqrt(2)))


def _owens_da(h, a, out):
    s = 1 + a * a
    return np.exp(-0.5 * h * h * s) / (2 * np.pi * s)


def _owens_samples(rng):
    out = binary_samples(domain=(-2.5, 2.5), domain_y=(-3.0, 3.0))(rng)
    out.append(Sample(np.array([0.0, 0.0, 8.0, -40.0]), np.array([0.5, 1e3, 0.0, 2.0]), label="edges"))
    return out


owens_t = nary("owens_t", lazy_ufunc("owens_t"),
               jvps=(lambda t, h, a, out: t * _owens_dh(h, a, out), lambda t, h, a, out: t * _owens_da(h, a, out)),
               vjps=(lambda g, h, a, out: g * _owens_dh(h, a, out), lambda g, h, a, out: g * _owens_da(h, a, out)),
               samples=_owens_samples,
               notes="d/dh = -phi(h) erf(a h / sqrt 2) / 2; d/da = exp(-h^2 (1 + a^2) / 2) / (2 pi (1 + a^2))")
DEFS["owens_t"] = owens_t


# ---- the Voigt profile ---------------------------------------------------------------------------------


def _voigt_parts(x, sigma, gamma):
    """(w'(z), z, nonzero, s) with sigma replaced by 1 where it is 0 (the double where: the
    Lorentzian branch there never sees a division by 0).  SciPy evaluates the same formula
    at negative sigma (z in the lower half-plane), so its derivatives are these there too."""
    positive = sigma != 0
    s = np.where(positive, sigma, 1.0)
    z = (x + 1j * gamma) / (s * math.sqrt(2))
    dw = -2 * z * wofz(z) + 2j / math.sqrt(math.pi)
    return dw, z, positive, s


def _lorentz_den(x, gamma):
    r2 = x * x + gamma * gamma
    return np.where(r2 > 0, r2, 1.0)


def _voigt_dx(x, sigma, gamma, out):
    dw, z, positive, s = _voigt_parts(x, sigma, gamma)
    r2 = _lorentz_den(x, gamma)
    return np.where(positive, np.real(dw) / (2 * math.sqrt(math.pi) * s * s), -2 * gamma * x / (np.pi * r2 * r2))


def _voigt_dsigma(x, sigma, gamma, out):
    dw, z, positive, s = _voigt_parts(x, sigma, gamma)
    return np.where(positive, -(out + np.real(z * dw) * _INV_SQRT_2PI / s) / s, 0.0)


def _voigt_dgamma(x, sigma, gamma, out):
    dw, z, positive, s = _voigt_parts(x, sigma, gamma)
    r2 = _lorentz_den(x, gamma)
    return np.where(positive, -np.imag(dw) / (2 * math.sqrt(math.pi) * s * s),
                    (x * x - gamma * gamma) / (np.pi * r2 * r2))


def _voigt_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (4,), dt, (-3.0, 3.0)), array(rng, (4,), dt, (0.3, 1.5)),
                          array(rng, (4,), dt, (0.1, 1.5))))
    out.append(Sample(np.array([-2.0, 0.0, 0.7, 25.0]), 0.6, 0.0, label="gamma = 0 (Gaussian), far tail"))
    out.append(Sample(np.array([-1.0, 0.3, 2.0]), 0.0, 0.5, label="sigma = 0 (Lorentzian)"))
    out.append(Sample(np.array([-1.0, 0.3, 2.0]), np.array([-0.5, -1.2, 0.7]), np.array([0.4, -0.3, -0.9]),
                      label="negative sigma and gamma (SciPy's formula continued)"))
    out.append(Sample(np.array([[0.5], [-1.0]]), np.array([0.4, 1.2]), 0.8, label="broadcast"))
    return out


voigt_profile = nary(
    "voigt_profile", lazy_ufunc("voigt_profile"),
    jvps=(lambda t, x, s, g, out: t * _voigt_dx(x, s, g, out), lambda t, x, s, g, out: t * _voigt_dsigma(x, s, g, out),
          lambda t, x, s, g, out: t * _voigt_dgamma(x, s, g, out)),
    vjps=(lambda gr, x, s, g, out: gr * _voigt_dx(x, s, g, out),
          lambda gr, x, s, g, out: gr * _voigt_dsigma(x, s, g, out),
          lambda gr, x, s, g, out: gr * _voigt_dgamma(x, s, g, out)),
    samples=_voigt_samples,
    notes="Re w'(z) of the Faddeeva function w = wofz, z = (x + i gamma)/(sigma sqrt 2); at sigma = 0 the "
          "Lorentzian's derivatives (0 in sigma); sigma = gamma = 0 (SciPy's delta) is not differentiable")
voigt_profile.__doc__ = "``scipy.special.voigt_profile`` for traced and plain values (see the module doc)."
DEFS["voigt_profile"] = voigt_profile


register_when_imported(DEFS)
