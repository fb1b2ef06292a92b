"""Twins of SciPy's Python-level special functions, which convert their inputs
with ``np.asarray`` and so cannot see traced values: ``spherical_jn``,
``spherical_yn``, ``multigammaln``, ``comb``, ``factorial``, ``bernoulli``,
``zeta`` and ``sph_harm_y``, with SciPy's signatures.

Each is registered as a composite with samples, so the generated registry
tests run it under every transform; ``tests/test_scipy_special_more.py``
compares its values with SciPy's.

>>> import npfunc
>>> from npfunc.scipy import special
>>> float(special.comb(5.0, 2.0)), float(npfunc.grad(lambda n: special.comb(n, 2.0))(5.0))
(10.0, 4.5)
>>> round(float(npfunc.grad(lambda z: special.spherical_jn(0, z))(1.0)), 6)
-0.301169
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special as _sc

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.primitive import Composite, Sample
from ..core.tracer import Tracer
from ..primitives.families import numpy_scalars
from ..primitives.sampling import FLOATS, array
from ..primitives.special.bessel import spherical_derivative
from ..primitives.special.bessel import spherical_jn as _jn
from ..primitives.special.bessel import spherical_yn as _yn
from ..primitives.special.functions import gamma, gammaln
from ..primitives.special.gamma_zeta import binom, hurwitz_zeta, riemann_zeta
from ..primitives.special.harmonics import dtheta as _dtheta
from ..primitives.special.harmonics import sph_harm_y as _sph_harm_y

_LOG_PI = math.log(math.pi)


def _traced(*values) -> bool:
    return any(isinstance(v, Tracer) for v in values)


def _scalar(out):
    """SciPy returns NumPy scalars for 0-d results of plain inputs."""
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def _no_exact(name, *values):
    if _traced(*values):
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.{name}(..., exact=True) computes with Python integers: it has "
            f"no derivative and cannot take traced values. Use exact=False (the gamma-function form, "
            f"differentiable) or pass plain integers.")


# ---- spherical Bessel functions ------------------------------------------------------------------

def spherical_jn(n, z, derivative=False):
    """``scipy.special.spherical_jn(n, z, derivative=False)`` for traced and plain values."""
    return _jn(n, z) if not derivative else spherical_derivative(_jn, n, z)


def spherical_yn(n, z, derivative=False):
    """``scipy.special.spherical_yn(n, z, derivative=False)`` for traced and plain values."""
    return _yn(n, z) if not derivative else spherical_derivative(_yn, n, z)


# ---- gamma-function combinatorics ----------------------------------------------------------------

def multigammaln(a, d):
    """``scipy.special.multigammaln(a, d)``: log of the multivariate gamma function.

    As in SciPy, ``a <= (d - 1) / 2`` raises ``ValueError`` for plain input; for
    traced input (a Python check on a value is not possible under ``vmap``) the
    result is NaN there."""
    d = np.asarray(d)[()]
    if not np.isscalar(d) or np.floor(d) != d:
        raise ValueError("d should be a positive integer (dimension)")
    d = int(d)
    if not _traced(a) and np.any(np.asarray(a) <= 0.5 * (d - 1)):
        raise ValueError(f"condition a ({a}) > 0.5 * (d-1) ({0.5 * (d - 1)}) not met")
    res = (d * (d - 1) * 0.25) * _LOG_PI
    for j in range(d):
        res = res + gammaln(a - 0.5 * j)
    if _traced(a):
        res = numpy_scalars(np.where(a > 0.5 * (d - 1), res, np.nan))  # (SciPy's 0-d result is a scalar)
    return res


def comb(N, k, *, exact=False, repetition=False):
    """``scipy.special.comb(N, k, exact=False, repetition=False)``: the number of
    combinations, ``binom(N, k)`` where 0 <= k <= N and 0 elsewhere (derivative 0
    there).  ``exact=True`` is integer arithmetic: plain integers only."""
    if exact:
        _no_exact("comb", N, k)
        return _sc.comb(N, k, exact=True, repetition=repetition)
    if repetition:  # SciPy: binom(N + k - 1, k), 1 at k = 0 (no masking otherwise)
        one = (k == 0) & (N >= 0)
        return _scalar(np.where(one, 1.0, binom(N + k - 1, k)))
    inside = (k <= N) & (N >= 0) & (k >= 0)
    n_safe = np.where(inside, N, 1.0)
    k_safe = np.where(inside, k, 0.0)
    return _scalar(np.where(inside, binom(n_safe, k_safe), 0.0))


def factorial(n, exact=False, extend="zero"):
    """``scipy.special.factorial(n, exact=False, extend='zero')``: ``gamma(n + 1)``,
    0 for n < 0 (``extend='zero'``) or the analytic continuation (``'complex'``)."""
    if extend not in ("zero", "complex"):
        raise ValueError(f"argument `extend` must be either 'zero' or 'complex', received: {extend}")
    if exact or not _traced(n):
        if exact:
            _no_exact("factorial", n)
        return _sc.factorial(n, exact=exact, extend=extend)
    if extend == "complex":
        return gamma(n + 1)
    keep = n >= 0
    value = np.where(keep, gamma(np.where(keep, n, 0.0) + 1), 0.0)
    value = np.where(np.isnan(n), np.nan, value)
    # SciPy computes arrays in double precision (a scalar keeps its own precision)
    return value.astype(np.float64) if np.ndim(n) and value.dtype == np.float32 else value


def bernoulli(n):
    """``scipy.special.bernoulli(n)``: the Bernoulli numbers B_0 .. B_n (no derivative:
    ``n`` is a Python integer)."""
    if _traced(n):
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.bernoulli(n) takes a Python integer n (the result is a "
            f"table of numbers with no derivative); pass a plain int.")
    return _sc.bernoulli(n)


def zeta(x, q=None, out=None):
    """``scipy.special.zeta(x, q=None)`` (Riemann or Hurwitz), differentiable in x and q."""
    if out is not None:
        if _traced(x, q):
            raise UnsupportedOperationError(
                f"{describe_stack()}: zeta(..., out=...) cannot write a traced result into an array; "
                f"assign the result instead.")
        return _sc.zeta(x, q, out=out)
    return riemann_zeta(x) if q is None else hurwitz_zeta(x, q)


# ---- spherical harmonics ---------------------------------------------------------------------------

def _dtheta2(n, m, theta, phi):
    """Second theta-derivative: the ladder form applied to the first."""
    up = np.sqrt(np.maximum((n - m) * (n + m + 1), 0))
    down = np.sqrt(np.maximum((n + m) * (n - m + 1), 0))
    return 0.5 * (up * np.exp(-1j * phi) * _dtheta(n, m + 1, theta, phi)
                  - down * np.exp(1j * phi) * _dtheta(n, m - 1, theta, phi))


def sph_harm_y(n, m, theta, phi, *, diff_n=0):
    """``scipy.special.sph_harm_y(n, m, theta, phi, *, diff_n=0)``: Y_n^m and, for
    ``diff_n`` 1 or 2, its gradient ``[d/dtheta, d/dphi]`` and Hessian, as SciPy
    returns them; differentiable in ``theta`` and ``phi``."""
    if diff_n not in (0, 1, 2):
        raise ValueError(f"diff_n is currently only implemented for orders 0, 1, and 2, received: {diff_n}.")
    y = _sph_harm_y(n, m, theta, phi)
    if diff_n == 0:
        return y
    d_theta = _dtheta(n, m, theta, phi)
    im = 1j * m
    d_phi = im * y
    jac = np.stack(np.broadcast_arrays(d_theta, d_phi), axis=-1)
    if diff_n == 1:
        return y, jac
    tt = _dtheta2(n, m, theta, phi)
    tp = im * d_theta
    pp = im * d_phi
    row0 = np.stack(np.broadcast_arrays(tt, tp), axis=-1)
    row1 = np.stack(np.broadcast_arrays(tp, pp), axis=-1)
    return y, jac, np.stack([row0, row1], axis=-2)


# ---- registry samples ------------------------------------------------------------------------------

def _spherical_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(np.array([0, 2, 3]), array(rng, (2, 3), dt, (0.3, 6.0))))
    out.append(Sample(np.array([0, 1, 4]), array(rng, (3,), domain=(-5.0, 5.0)), derivative=True))
    return out


def _multigammaln_samples(rng):
    return [Sample(array(rng, (2, 3), dt, (2.5, 6.0)), d=3) for dt in FLOATS] + \
        [Sample(array(rng, (3,), domain=(1.2, 4.0)), d=2, label="d = 2")]


def _comb_samples(rng):
    out = [Sample(array(rng, (3,), dt, (3.0, 8.0)), array(rng, (2, 3), dt, (0.3, 2.5))) for dt in FLOATS]
    out.append(Sample(np.array([2.0, -1.5, 5.0, 4.0]), np.array([3.0, 1.0, -0.5, 2.0]),
                      label="outside 0 <= k <= N (0, derivative 0)"))
    out.append(Sample(array(rng, (3,), domain=(1.5, 5.0)), np.array([0.5, 1.5, 2.5]), repetition=True,
                      label="repetition"))
    return out


def _factorial_samples(rng):
    return [Sample(array(rng, (3,), dt, (0.2, 5.0))) for dt in FLOATS] + [
        Sample(np.array([-1.5, -0.5, 2.5]), label="negative n (0)"),
        Sample(np.array([-1.5, -0.3, 2.5]), extend="complex", label="extend='complex'")]


def _zeta_samples(rng):
    return [Sample(array(rng, (3,), domain=(1.5, 5.0))), Sample(np.array([-3.5, 0.5, 2.0])),
            Sample(array(rng, (3,), domain=(1.5, 5.0)), array(rng, (3,), domain=(0.4, 3.0)))]


def _sph_samples(rng):
    theta, phi = array(rng, (3,), domain=(0.2, 3.0)), array(rng, (3,), domain=(-3.0, 3.0))
    n, m = np.array([2, 3, 4]), np.array([1, -2, 0])
    return [Sample(n, m, theta, phi), Sample(n, m, theta, phi, diff_n=1), Sample(n, m, theta, phi, diff_n=2)]


def _register(name, fn, samples, differentiable=True, notes=""):
    Composite(f"npfunc.scipy.special.{name}", fn, samples=samples, differentiable=differentiable, notes=notes)


_register("spherical_jn", spherical_jn, _spherical_samples, notes="derivative by the order recurrence")
_register("spherical_yn", spherical_yn, _spherical_samples, notes="derivative by the order recurrence")
_register("multigammaln", multigammaln, _multigammaln_samples, notes="sum of gammaln")
_register("comb", comb, _comb_samples, notes="binom where 0 <= k <= N, else 0 (derivative 0)")
_register("factorial", factorial, _factorial_samples, notes="gamma(n + 1); 0 for n < 0 with extend='zero'")
_register("bernoulli", bernoulli, lambda rng: [Sample(6), Sample(1)], differentiable=False,
          notes="table of numbers, no derivative")
_register("zeta", zeta, _zeta_samples, notes="Riemann / Hurwitz zeta (primitives riemann_zeta, hurwitz_zeta)")
_register("sph_harm_y", sph_harm_y, _sph_samples, notes="values, gradient and Hessian as SciPy's diff_n")

__all__ = ["spherical_jn", "spherical_yn", "multigammaln", "comb", "factorial", "bernoulli", "zeta",
           "sph_harm_y"]
