"""Inverse functions of ``scipy.special`` used by the quantile functions:
``ndtri_exp`` (inverse of ``log_ndtr``), ``gammaincinv`` and ``gammainccinv``
(inverses in ``x`` of the regularized incomplete gamma functions), ``betaincinv`` and
``betainccinv`` (of the regularized incomplete beta functions), ``stdtrit`` (of
Student's t distribution function ``stdtr`` in ``t``), and the Lambert W function
``lambertw`` (inverse of ``w e^w``; SciPy's wrapper calls the ufunc ``_lambertw(z, k, tol)``).

Their derivatives are those of the implicit function ``F(a, x) = p``:
``dx/dp = 1 / F_x`` and ``dx/da = -F_a / F_x``, evaluated at the output
``x`` with the differentiable ``gammainc`` shape derivative and density, so
every derivative order is exact:

    ndtri_exp(y)'      = exp(y + x^2/2) sqrt(2 pi)
    gammaincinv(a, p)  : d/dp = 1 / f(a, x),  d/da = -dP/da(a, x) / f(a, x)
    gammainccinv(a, q) : d/dq = -1 / f(a, x), d/da = -dP/da(a, x) / f(a, x)

with ``f(a, x) = x^(a-1) e^-x / Gamma(a)`` the gamma density, and

    betaincinv(a, b, y)  : d/dy = 1 / g(a, b, x),  d/da = -dI/da(a, b, x) / g, d/db = -dI/db / g
    betainccinv(a, b, y) : d/dy = -1 / g(a, b, x), d/da, d/db the same

with ``g(a, b, x) = x^(a-1) (1-x)^(b-1) / B(a, b)`` the beta density.  Lambert's W on any
branch ``k``: ``W'(z) = e^-W / (1 + W)`` (holomorphic; 1 at z = 0 on the principal branch, no
0/0 there), the branch index and tolerance not differentiated.

>>> import npfunc, scipy.special as sc
>>> round(float(npfunc.grad(lambda a: sc.gammaincinv(a, 0.5))(2.0)), 6)
0.993295
"""
from __future__ import annotations

import math

import numpy as np

from ...core.primitive import Sample
from ..families import conj, nary, unary
from ..sampling import FLOATS, array, unary_samples
from ._lazy import lazy_ufunc, register_when_imported
from .functions import betaln, gammaln, xlog1py, xlogy
from .incomplete import _stdtr_ddf, _stdtr_dt, betainc_shape_derivative, gammainc_shape_derivative

DEFS: dict = {}
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _ndtri_exp_samples(rng):
    out = unary_samples(domain=(-5.0, -0.05))(rng)
    out.append(Sample(np.array([-800.0, -40.0, -1e-2]), label="far tails"))
    return out


ndtri_exp = unary("ndtri_exp", lazy_ufunc("ndtri_exp"),
                  deriv=lambda y, x: np.exp(y + 0.5 * x * x + _LOG_SQRT_2PI),
                  samples=_ndtri_exp_samples,
                  notes="inverse of log_ndtr: derivative exp(y + x^2/2) sqrt(2 pi), from the output")
ndtri_exp.__doc__ = "``scipy.special.ndtri_exp(y)``: x with log_ndtr(x) = y, for traced and plain values."
DEFS["ndtri_exp"] = ndtri_exp


def _inv_density(a, x):
    """1 / f(a, x) = exp(x + gammaln(a) - (a-1) log x)."""
    return np.exp(x + gammaln(a) - xlogy(a - 1, x))


def _da(a, x):
    return -gammainc_shape_derivative(a, x, 1) * _inv_density(a, x)


def _inverse(name, sign, samples):
    fn = nary(name, lazy_ufunc(name),
              jvps=(lambda t, a, p, out: t * _da(a, out), lambda t, a, p, out: sign * t * _inv_density(a, out)),
              vjps=(lambda g, a, p, out: g * _da(a, out), lambda g, a, p, out: sign * g * _inv_density(a, out)),
              samples=samples,
              notes="implicit derivatives at the output: d/dp = +-1/f(a, x), d/da = -dP/da / f(a, x)")
    fn.__doc__ = f"``scipy.special.{name}(a, p)`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


def _inverse_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (2, 3), dt, (0.5, 5.0)), array(rng, (3,), dt, (0.05, 0.95))))
    out.append(Sample(np.array([0.3, 2.0, 40.0]), np.array([5e-3, 0.5, 0.995]), label="tails, large a"))
    out.append(Sample(2.5, array(rng, (3,), domain=(0.1, 0.9)), label="python scalar a"))
    return out


gammaincinv = _inverse("gammaincinv", 1.0, _inverse_samples)
gammainccinv = _inverse("gammainccinv", -1.0, _inverse_samples)



def _inv_beta_density(a, b, x):
    """1 / g(a, b, x) = exp(betaln(a, b) - (a-1) log x - (b-1) log(1-x))."""
    return np.exp(betaln(a, b) - xlogy(a - 1, x) - xlog1py(b - 1, -x))


def _beta_da(a, b, x):
    return -betainc_shape_derivative(a, b, x, 1, 0) * _inv_beta_density(a, b, x)


def _beta_db(a, b, x):
    return -betainc_shape_derivative(a, b, x, 0, 1) * _inv_beta_density(a, b, x)


def _beta_inverse(name, sign):
    fn = nary(name, lazy_ufunc(name),
              jvps=(lambda t, a, b, y, out: t * _beta_da(a, b, out),
                    lambda t, a, b, y, out: t * _beta_db(a, b, out),
                    lambda t, a, b, y, out: sign * t * _inv_beta_density(a, b, out)),
              vjps=(lambda g, a, b, y, out: g * _beta_da(a, b, out),
                    lambda g, a, b, y, out: g * _beta_db(a, b, out),
                    lambda g, a, b, y, out: sign * g * _inv_beta_density(a, b, out)),
              samples=_beta_inverse_samples,
              notes="implicit derivatives at the output: d/dy = +-1/g(a, b, x), d/da = -dI/da / g, "
                    "d/db = -dI/db / g (g the beta density)")
    fn.__doc__ = f"``scipy.special.{name}(a, b, y)`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


def _beta_inverse_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3,), dt, (0.6, 5.0)), array(rng, (2, 3), dt, (0.6, 5.0)),
                          array(rng, (3,), dt, (0.05, 0.95))))
    out.append(Sample(np.array([0.5, 2.0, 30.0]), np.array([3.0, 0.7, 20.0]), np.array([1e-3, 0.5, 0.99]),
                      label="tails, large shapes"))
    out.append(Sample(2.5, 1.5, array(rng, (3,), domain=(0.1, 0.9)), label="python scalar shapes"))
    return out


betaincinv = _beta_inverse("betaincinv", 1.0)

def _t_density(df, x):
    """The Student t density at ``x`` (the normal's for df = inf, where SciPy's t is the normal)."""
    finite = np.isfinite(df)
    return np.where(finite, _stdtr_dt(np.where(finite, df, 1.0), x), np.exp(-0.5 * x * x - _LOG_SQRT_2PI))


def _stdtrit_ddf(df, x):
    """-dF/ddf / f at the output (0 at df = inf, the normal's limit)."""
    finite = np.isfinite(df)
    d = np.where(finite, df, 1.0)
    return np.where(finite, -_stdtr_ddf(d, x) / _stdtr_dt(d, x), 0.0)


def _stdtrit_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3,), dt, (0.8, 12.0)), array(rng, (2, 3), dt, (0.05, 0.95))))
    out.append(Sample(np.array([1.0, 3.0, 60.0]), np.array([2e-2, 0.5, 0.999]), label="tails, the median, large df"))
    out.append(Sample(4.0, array(rng, (3,), domain=(0.1, 0.9)), label="python scalar df"))
    return out


stdtrit = nary("stdtrit", lazy_ufunc("stdtrit"),
               jvps=(lambda t, df, p, out: t * _stdtrit_ddf(df, out), lambda t, df, p, out: t / _t_density(df, out)),
               vjps=(lambda g, df, p, out: g * _stdtrit_ddf(df, out), lambda g, df, p, out: g / _t_density(df, out)),
               samples=_stdtrit_samples,
               notes="implicit derivatives at the output: d/dp = 1/f(x), d/ddf = -dF/ddf / f (f the t density)")
stdtrit.__doc__ = "``scipy.special.stdtrit(df, p)``: the t quantile, for traced and plain values."
DEFS["stdtrit"] = stdtrit

betainccinv = _beta_inverse("betainccinv", -1.0)

# ---- Lambert W ------------------------------------------------------------------------------------


def _lambertw_deriv(out):
    return np.exp(-out) / (1 + out)


def _lambertw_samples(rng):
    z = array(rng, (3,), domain=(0.3, 2.5)) + 1j * array(rng, (3,), domain=(-1.5, 1.5))
    return [Sample(array(rng, (4,), domain=(-0.3, 3.0)), 0, 1e-8, label="real z, principal branch"),
            Sample(np.array([-0.3, -0.2, -0.05]), -1, 1e-8, label="real z in (-1/e, 0), branch -1 (real W)"),
            Sample(np.array([0.0, 1e-3, 40.0]), 0, 1e-8, label="0 and large z"),
            Sample(z, np.array([[0], [1]]), 1e-8, label="complex z, branches 0 and 1")]


_lambertw = nary("_lambertw", lazy_ufunc("_lambertw"),
                 jvps=(lambda t, z, k, tol, out: t * _lambertw_deriv(out), None, None),
                 vjps=(lambda g, z, k, tol, out: g * conj(_lambertw_deriv(out)), None, None),
                 samples=_lambertw_samples,
                 notes="W'(z) = exp(-W) / (1 + W) on every branch (holomorphic; real z gives complex W: the "
                       "cotangent of a real z is the real part); branch k and tol not differentiated")
_lambertw.__doc__ = ("``scipy.special._lambertw(z, k, tol)``, the ufunc behind ``scipy.special.lambertw``, "
                     "for traced and plain values.")
DEFS["_lambertw"] = _lambertw

register_when_imported(DEFS)
