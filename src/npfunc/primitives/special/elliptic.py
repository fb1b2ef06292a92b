"""Complete elliptic integrals of ``scipy.special``: ``ellipk ellipe ellipkm1``
(parameter m, SciPy's convention: K(m) = int_0^{pi/2} (1 - m sin^2 t)^(-1/2) dt).

Their derivatives are Legendre's relations

    K'(m) = (E(m) - (1 - m) K(m)) / (2 m (1 - m))      E'(m) = (E(m) - K(m)) / (2 m)

with a removable singularity at m = 0 (K'(0) = pi/8, E'(0) = -pi/8), where the
quotients lose every digit to cancellation.  For |m| < 0.1 they are the
differentiated Taylor series of

    K(m) = pi/2 sum c_n^2 m^n      E(m) = pi/2 sum c_n^2 m^n / (1 - 2n),    c_n = binom(2n, n) / 4^n,

exact to rounding with 22 terms (the next is below 1e-22 there), and so are all
higher derivatives.  ``ellipkm1(p) = K(1 - p)`` has derivative -K'(1 - p).  At
m = 1 (p = 0) K is infinite and so are the derivatives.

>>> import npfunc, scipy.special as sc
>>> round(float(npfunc.grad(sc.ellipk)(0.0)), 12), round(float(npfunc.grad(sc.ellipe)(0.0)), 12)
(0.392699081699, -0.392699081699)
"""
from __future__ import annotations

import math

import numpy as np

from ..families import unary
from ..sampling import FLOATS, unary_samples
from ...core.primitive import Sample
from ._lazy import lazy_ufunc, register_when_imported

DEFS: dict = {}
_TERMS = 22
_RADIUS = 0.1
_C2 = tuple((math.comb(2 * n, n) / 4.0**n) ** 2 for n in range(_TERMS + 1))
#: coefficients of the derivative series, m^(n-1) for n = 1..TERMS
_DK = tuple(math.pi / 2 * n * _C2[n] for n in range(1, _TERMS + 1))
_DE = tuple(math.pi / 2 * n * _C2[n] / (1 - 2 * n) for n in range(1, _TERMS + 1))


def _horner(coeffs, m):
    out = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = out * m + c
    return out


def _split(m):
    """(near 0, m there (0 elsewhere), m away from 0 (a safe 0.5 near it))."""
    small = np.abs(m) < _RADIUS
    return small, np.where(small, m, 0.0), np.where(small, 0.5, m)


def _dk(m):
    small, near, far = _split(m)
    legendre = (ellipe(far) - (1 - far) * ellipk(far)) / (2 * far * (1 - far))
    return np.where(small, _horner(_DK, near), legendre)


def _de(m):
    small, near, far = _split(m)
    return np.where(small, _horner(_DE, near), (ellipe(far) - ellipk(far)) / (2 * far))


_POINTS = (0.0, 1e-6, -0.05, 0.099, 0.101, -2.0, 0.9)


def _samples(domain, of_p=False):
    """Random points, and points around m = 0 and the series radius (as p = 1 - m for ellipkm1)."""
    points = np.array([1 - m if of_p else m for m in _POINTS])

    def make(rng):
        out = unary_samples(domain=domain)(rng)
        for dt in FLOATS:
            out.append(Sample(points.astype(dt), label="around the series radius and m = 0", fd_order=3))
        return out

    return make


def _define(name, deriv, samples, notes):
    fn = unary(name, lazy_ufunc(name), deriv=deriv, samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


ellipk = _define("ellipk", lambda m, out: _dk(m), _samples((-2.0, 0.9)),
                 "derivative (E - (1-m) K) / (2 m (1-m)), its Taylor series for |m| < 0.1 (pi/8 at 0)")
ellipe = _define("ellipe", lambda m, out: _de(m), _samples((-2.0, 0.9)),
                 "derivative (E - K) / (2 m), its Taylor series for |m| < 0.1 (-pi/8 at 0)")
ellipkm1 = _define("ellipkm1", lambda p, out: -_dk(1 - p), _samples((0.1, 3.0), of_p=True),
                   "ellipkm1(p) = K(1 - p): derivative -K'(1 - p)")

register_when_imported(DEFS)
