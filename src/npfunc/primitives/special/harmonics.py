"""Spherical harmonics ``scipy.special.sph_harm_y(n, m, theta, phi)``
(SciPy >= 1.15), differentiable in the polar angle ``theta`` and the
azimuth ``phi``.

``d/dphi Y = i m Y`` and, by the ladder operators (Condon--Shortley phase,
as SciPy),

    d/dtheta Y_n^m = ( sqrt((n-m)(n+m+1)) e^(-i phi) Y_n^(m+1)
                     - sqrt((n+m)(n-m+1)) e^(+i phi) Y_n^(m-1) ) / 2,

which has no ``cot(theta)`` term, so it is finite at the poles theta = 0, pi
and exact to every order.  At the poles it is the one-sided derivative from
inside [0, pi]: SciPy evaluates Y at |theta| there, so its values have a
kink at theta = 0 that central differences see.  The integer degree ``n`` and order ``m`` are not
differentiated.  SciPy's ``sph_harm_y`` is not a ufunc (it converts its
inputs with ``np.asarray``): ``npfunc.scipy.special.sph_harm_y`` calls this
primitive.

>>> import npfunc
>>> from npfunc.scipy import special
>>> round(float(npfunc.grad(lambda t: special.sph_harm_y(1, 0, t, 0.0).real)(0.5)), 6)
-0.234249
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..families import conj, nary
from ..sampling import FLOATS, array
from ._lazy import scipy_special


def _impl(n, m, theta, phi):
    return scipy_special().sph_harm_y(n, m, theta, phi)


def _ladder(n, m):
    """(sqrt((n-m)(n+m+1)), sqrt((n+m)(n-m+1))): 0 where the neighbour order does not exist."""
    up = np.sqrt(np.maximum((n - m) * (n + m + 1), 0))
    down = np.sqrt(np.maximum((n + m) * (n - m + 1), 0))
    return up, down


def dtheta(n, m, theta, phi):
    """d/dtheta of ``sph_harm_y(n, m, theta, phi)`` (ladder form)."""
    up, down = _ladder(n, m)
    return 0.5 * (up * np.exp(-1j * phi) * sph_harm_y(n, m + 1, theta, phi)
                  - down * np.exp(1j * phi) * sph_harm_y(n, m - 1, theta, phi))


def dphi(n, m, theta, phi, out):
    return 1j * m * out


def _samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(np.array([2, 3, 3]), np.array([1, -2, 0]), array(rng, (2, 3), dt, (0.1, 3.0)),
                          array(rng, (3,), dt, (-3.0, 3.0))))
    out.append(Sample(np.array([1, 2, 4, 3]), np.array([1, -1, 4, 0]), np.array([0.0, np.pi, 0.0, 1e-3]),
                      np.array([0.3, -1.0, 2.0, 0.5]), kink=True, label="at the poles (one-sided)"))
    out.append(Sample(3, 2, array(rng, (3,), domain=(0.2, 3.0)), 0.4, label="python int degree and order"))
    return out


sph_harm_y = nary("sph_harm_y", _impl,
                  jvps=(None, None, lambda t, n, m, th, ph, out: t * dtheta(n, m, th, ph),
                        lambda t, n, m, th, ph, out: t * dphi(n, m, th, ph, out)),
                  vjps=(None, None, lambda g, n, m, th, ph, out: g * conj(dtheta(n, m, th, ph)),
                        lambda g, n, m, th, ph, out: g * conj(dphi(n, m, th, ph, out))),
                  samples=_samples,
                  notes="d/dphi = i m Y; d/dtheta by the ladder operators (exact at the poles); n, m integers")
sph_harm_y.__doc__ = "``scipy.special.sph_harm_y(n, m, theta, phi)`` (diff_n=0) for traced and plain values."
