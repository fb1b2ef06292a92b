"""Box-Cox transforms of ``scipy.special``: ``boxcox``, ``boxcox1p``, ``inv_boxcox``.

``boxcox(x, lmbda) = (x^lmbda - 1) / lmbda`` (``log x`` at lmbda = 0) is
written as ``L e1(lmbda L)`` with ``L = log x`` and ``e1(u) = expm1(u)/u``,
so its derivative in ``lmbda`` is ``L^2 e1'(lmbda L)``: finite and accurate
at and around lmbda = 0 (where it tends to ``log(x)^2 / 2``) because ``e1'``
is a power series for |u| < 0.1.  ``inv_boxcox(y, lmbda) = exp(y l1(lmbda y))``
with ``l1(v) = log1p(v)/v`` likewise.  Derivatives in ``x`` / ``y`` are
``x^(lmbda-1)``, ``(1+x)^(lmbda-1)`` and ``inv_boxcox / (1 + lmbda y)``.

>>> import numpy as np, npfunc, scipy.special as sc
>>> bool(np.isclose(npfunc.grad(lambda l: sc.boxcox(2.0, l))(0.0), np.log(2.0) ** 2 / 2))
True
"""
from __future__ import annotations

import math

import numpy as np

from ...core.primitive import Sample
from ..families import nary
from ..sampling import FLOATS, array
from ._lazy import lazy_ufunc, register_when_imported

DEFS: dict = {}
_NEAR = 0.1
_TERMS = 16
#: e1'(u) = sum_k (k + 1) u^k / (k + 2)!
_E1_PRIME = tuple((k + 1) / math.factorial(k + 2) for k in range(_TERMS))
#: l1'(v) = sum_k (-1)^(k+1) (k + 1) v^k / (k + 2)
_L1_PRIME = tuple((-1) ** (k + 1) * (k + 1) / (k + 2) for k in range(_TERMS))


def _series_or(u, coeffs, formula):
    """``sum coeffs[k] u^k`` for |u| < 0.1, ``formula(u)`` elsewhere (each at safe points)."""
    near = np.abs(u) < _NEAR
    un = np.where(near, u, 0.0)
    total = 0.0
    for c in reversed(coeffs):
        total = total * un + c
    return np.where(near, total, formula(np.where(near, 1.0, u)))


def _e1_prime(u):
    return _series_or(u, _E1_PRIME, lambda u: (u * np.exp(u) - np.expm1(u)) / (u * u))


def _l1_prime(v):
    return _series_or(v, _L1_PRIME, lambda v: (v / (1 + v) - np.log1p(v)) / (v * v))


def _define(name, dx, dl, samples, notes):
    fn = nary(name, lazy_ufunc(name),
              jvps=(lambda t, x, lm, out: t * dx(x, lm, out), lambda t, x, lm, out: t * dl(x, lm, out)),
              vjps=(lambda g, x, lm, out: g * dx(x, lm, out), lambda g, x, lm, out: g * dl(x, lm, out)),
              samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


def _samples(domain_x):
    def make(rng):
        out = []
        for dt in FLOATS:
            out.append(Sample(array(rng, (2, 3), dt, domain_x), array(rng, (3,), dt, (-1.5, 2.0))))
        out.append(Sample(array(rng, (4,), domain=domain_x), np.array([0.0, 1e-9, -0.05, 0.3]),
                          label="lmbda at and near 0"))
        out.append(Sample(array(rng, (3,), domain=domain_x), 0.5, label="python scalar lmbda"))
        return out

    return make


def _boxcox_dl(x, lm, out):
    log_x = np.log(x)
    return log_x * log_x * _e1_prime(lm * log_x)


def _boxcox1p_dl(x, lm, out):
    log_x = np.log1p(x)
    return log_x * log_x * _e1_prime(lm * log_x)


def _inv_dl(y, lm, out):
    return out * y * y * _l1_prime(lm * y)


boxcox = _define("boxcox", lambda x, lm, out: np.power(x, lm - 1), _boxcox_dl, _samples((0.2, 4.0)),
                 "d/dx = x^(lmbda-1); d/dlmbda = log(x)^2 e1'(lmbda log x), a series near lmbda = 0")
boxcox1p = _define("boxcox1p", lambda x, lm, out: np.power(1 + x, lm - 1), _boxcox1p_dl, _samples((-0.7, 3.0)),
                   "d/dx = (1+x)^(lmbda-1); d/dlmbda = log1p(x)^2 e1'(lmbda log1p x)")
inv_boxcox = _define("inv_boxcox", lambda y, lm, out: out / (1 + lm * y), _inv_dl, _samples((0.05, 0.6)),
                     "d/dy = out / (1 + lmbda y); d/dlmbda = out y^2 l1'(lmbda y), a series near lmbda = 0")

register_when_imported(DEFS)
