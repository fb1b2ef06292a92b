"""Elementwise math beyond the basics: squares and reciprocals, other bases of
exp and log, inverse trigonometric and hyperbolic functions, angle
conversions, ``arctan2``/``hypot``/``logaddexp``, ``sinc``, ``angle`` and
``float_power``.

Conventions at special points (tested in tests/test_conventions.py):
``hypot`` and ``arctan2`` have derivative 0 at the origin (like ``abs`` at
0); ``logaddexp`` splits the derivative equally when both arguments are the
same infinity; ``sinc`` is exact to every order at 0; ``cbrt`` has
derivative +inf at 0 (like ``sqrt``).
"""
from __future__ import annotations

import math

import numpy as np

from ...core.values import dtype_of, is_python_scalar
from .arithmetic import (_keep, absolute, astype, document, equal, exp, imag, less, logical_and, ones_like,
                          power, real, sign, sin, sqrt, stop_gradient, where, zeros_like, cos, cosh, sinh)
from .logic import isinf
from .samples import combined, pair_points, points, real_and_complex_unary
from ..families import binary, composite, unary
from . import samples
from ..sampling import binary_samples, unary_samples

LN2 = math.log(2.0)
LN10 = math.log(10.0)
DEG = 180.0 / math.pi
RAD = math.pi / 180.0

# ---- powers -------------------------------------------------------------------------

positive = unary("positive", np.positive, jvp=_keep, vjp=_keep,
                 samples=real_and_complex_unary(), numpy=[np.positive])
square = unary("square", np.square, deriv=lambda x, out: 2 * x,
               samples=real_and_complex_unary(), numpy=[np.square])
reciprocal = unary("reciprocal", np.reciprocal, deriv=lambda x, out: -(out * out),
                   samples=real_and_complex_unary(domain=(0.5, 2.0)), numpy=[np.reciprocal])
cbrt = unary("cbrt", np.cbrt, deriv=lambda x, out: 1 / (3 * (out * out)),
             samples=combined(unary_samples(domain=(0.3, 2.0)),
                              points([-1.5, -0.4, 0.7], kink=False, label="negative")),
             numpy=[np.cbrt], notes="derivative +inf at 0, like sqrt")


def _fabs_deriv(x, out):
    return sign(x)


fabs = unary("fabs", np.fabs, deriv=_fabs_deriv,
             samples=combined(unary_samples(), points([0.0, -1.5, 2.0], label="zeros")),
             numpy=[np.fabs], notes="derivative 0 at x == 0")


@composite(np.float_power, samples=samples.float_power_samples)
def float_power(x1, x2, /):
    """``np.float_power``: ``x1 ** x2`` computed in float64 (complex128 for complex).

    Derivatives follow ``power``; cotangents come back in each input's dtype."""
    kinds = [dtype_of(a).kind for a in (x1, x2)]
    target = np.complex128 if "c" in kinds else np.float64
    x1 = x1 if is_python_scalar(x1) else astype(x1, target)
    x2 = x2 if is_python_scalar(x2) else astype(x2, target)
    if is_python_scalar(x1) and is_python_scalar(x2):
        return np.float_power(x1, x2)
    return power(x1, x2)


# ---- exponentials and logarithms in base 2 and 10 ----------------------------------------

exp2 = unary("exp2", np.exp2, deriv=lambda x, out: out * LN2,
             samples=real_and_complex_unary(), numpy=[np.exp2])
log2 = unary("log2", np.log2, deriv=lambda x, out: 1 / (x * LN2),
             samples=real_and_complex_unary(domain=(0.2, 3.0)), numpy=[np.log2])
log10 = unary("log10", np.log10, deriv=lambda x, out: 1 / (x * LN10),
              samples=real_and_complex_unary(domain=(0.2, 3.0)), numpy=[np.log10])


def _lse_weight(a, b, lse, base_exp):
    """The weight of ``a`` in a log-sum-exp of two terms, 1 / (1 + B^(b - a)) for
    base B, computed as B^-lse(0, b - a).  Equal infinities (where b - a would be
    NaN) count as a tie and get exactly 1/2, a lone infinity gets 1 or 0, and no
    NaN is made anywhere, not even in an untaken branch."""
    same_infinity = logical_and(equal(a, b), isinf(a))
    diff = where(same_infinity, zeros_like(b), b) - where(same_infinity, zeros_like(a), a)
    return base_exp(-lse(zeros_like(diff), diff))


# finite outputs only: central differences are NaN at an infinite output
_LSE_POINTS = pair_points(([0.0, 1.0, -1.0], [-np.inf, 1.0, 40.0]), kink=False,
                          label="-inf and ties")
logaddexp = binary(
    "logaddexp", np.logaddexp,
    partials=(lambda x, y, out: _lse_weight(x, y, logaddexp, exp),
              lambda x, y, out: _lse_weight(y, x, logaddexp, exp)),
    samples=combined(binary_samples(), _LSE_POINTS),
    numpy=[np.logaddexp],
    notes="finite derivative with infinite arguments; equal infinities split it equally")
logaddexp2 = binary(
    "logaddexp2", np.logaddexp2,
    partials=(lambda x, y, out: _lse_weight(x, y, logaddexp2, exp2),
              lambda x, y, out: _lse_weight(y, x, logaddexp2, exp2)),
    samples=combined(binary_samples(), _LSE_POINTS),
    numpy=[np.logaddexp2],
    notes="finite derivative with infinite arguments; equal infinities split it equally")

# ---- inverse trigonometric and hyperbolic functions ---------------------------------------

# Complex arguments: the derivatives are written with the function's value (cos(arcsin z) =
# sqrt(1 - z^2) off the branch cuts). On a cut (arcsin(2 + 0j), the signed zero picks the side)
# the value is on NumPy's (C99's) side, while sqrt(1 - z * z) lands on whichever side the signed
# zeros of NumPy's complex products and differences give, and had the opposite sign there.
def _complex(x) -> bool:
    return dtype_of(x).kind == "c"


arcsin = unary("arcsin", np.arcsin,
               deriv=lambda x, out: 1 / cos(out) if _complex(x) else 1 / sqrt(1 - x * x),
               samples=real_and_complex_unary(domain=(-0.9, 0.9), im=(-0.5, 0.5)),
               numpy=[np.arcsin], notes="derivative +inf at +-1")
arccos = unary("arccos", np.arccos,
               deriv=lambda x, out: -1 / sin(out) if _complex(x) else -1 / sqrt(1 - x * x),
               samples=real_and_complex_unary(domain=(-0.9, 0.9), im=(-0.5, 0.5)),
               numpy=[np.arccos], notes="derivative -inf at +-1")
arcsinh = unary("arcsinh", np.arcsinh,
                deriv=lambda x, out: 1 / cosh(out) if _complex(x) else 1 / sqrt(x * x + 1),
                samples=real_and_complex_unary(im=(-0.5, 0.5)), numpy=[np.arcsinh])
arccosh = unary("arccosh", np.arccosh,
                deriv=lambda x, out: 1 / sinh(out) if _complex(x) else 1 / (sqrt(x - 1) * sqrt(x + 1)),
                samples=real_and_complex_unary(domain=(1.2, 3.0)), numpy=[np.arccosh],
                notes="derivative +inf at 1")
arctanh = unary("arctanh", np.arctanh, deriv=lambda x, out: 1 / (1 - x * x),
                samples=real_and_complex_unary(domain=(-0.9, 0.9), im=(-0.5, 0.5)),
                numpy=[np.arctanh])

deg2rad = unary("deg2rad", np.deg2rad, deriv=lambda x, out: RAD,
                samples=unary_samples(domain=(-180.0, 180.0)), numpy=[np.deg2rad, np.radians])
rad2deg = unary("rad2deg", np.rad2deg, deriv=lambda x, out: DEG,
                samples=unary_samples(), numpy=[np.rad2deg, np.degrees])


def _safe_square_norm(x, y):
    """x*x + y*y with 0 replaced by 1 (the numerators vanish there)."""
    den = x * x + y * y
    return where(equal(den, 0), ones_like(den), den)


arctan2 = binary(
    "arctan2", np.arctan2,
    partials=(lambda y, x, out: x / _safe_square_norm(x, y),
              lambda y, x, out: -y / _safe_square_norm(x, y)),
    samples=combined(binary_samples(domain=(0.2, 2.0), domain_y=(-2.0, 2.0)),
                     binary_samples(domain=(-2.0, 2.0), domain_y=(0.2, 2.0), dtypes=(np.float64,),
                                    scalar=None)),
    numpy=[np.arctan2], notes="derivative 0 at the origin")


def _hypot_partial(a, out):
    safe = where(equal(out, 0), ones_like(out), out)
    return a / safe


hypot = binary(
    "hypot", np.hypot,
    partials=(lambda x, y, out: _hypot_partial(x, out), lambda x, y, out: _hypot_partial(y, out)),
    samples=combined(binary_samples(), pair_points(([0.0, 1.0], [0.0, 0.0]), label="origin")),
    numpy=[np.hypot], notes="derivative 0 at the origin, like abs at 0")

# ---- sinc: exact derivatives at and near 0 ---------------------------------------------

# Taylor coefficients of sinc in u = (pi x)^2: sum (-u)^n / (2n + 1)!.  For |x| < 0.1
# (|pi x| < 0.32) eight terms are exact to far below rounding, for the derivatives too.
_SINC_SERIES = tuple((-1.0) ** n / math.factorial(2 * n + 1) for n in range(8))
_SINC_SERIES_RADIUS = 0.1


@composite(np.sinc, samples=samples.sinc_samples, scalars=True)
def sinc(x):
    """``np.sinc``: sin(pi x) / (pi x), 1 at 0.

    The value is NumPy's.  Derivatives for |x| < 0.1 come from the Taylor series,
    so they are exact at 0 (where the quotient would be 0/0) and free of the
    cancellation in (cos(pi x) - sinc(x)) / x near 0.

    >>> import numpy as np, npfunc
    >>> d2 = npfunc.grad(npfunc.grad(np.sinc))(0.0)
    >>> bool(np.isclose(d2, -np.pi ** 2 / 3, rtol=1e-15))
    True
    """
    at_zero = equal(x, 0)
    safe = where(at_zero, ones_like(x), x)
    px = math.pi * safe
    value = where(at_zero, ones_like(px), sin(px) / px)
    u = (math.pi * x) * (math.pi * x)
    series = _SINC_SERIES[-1]
    for c in reversed(_SINC_SERIES[:-1]):
        series = series * u + c
    # value from the quotient, derivative from the series (their difference is exactly 0)
    near_zero = stop_gradient(value) + (series - stop_gradient(series))
    return where(less(absolute(x), _SINC_SERIES_RADIUS), near_zero, value)


# ---- angle ------------------------------------------------------------------------


@composite(np.angle, samples=samples.angle_samples, scalars=True)
def angle(z, deg=False):
    """``np.angle``: arctan2(imag z, real z); piecewise constant (0 or pi) for real z."""
    if dtype_of(z).kind == "c":
        out = arctan2(imag(z), real(z))
    else:
        out = arctan2(0, stop_gradient(z))
    return out * DEG if deg else out


document(globals())

__all__ = ["positive", "square", "reciprocal", "cbrt", "fabs", "float_power", "exp2", "log2",
           "log10", "logaddexp", "logaddexp2", "arcsin", "arccos", "arcsinh", "arccosh",
           "arctanh", "deg2rad", "rad2deg", "arctan2", "hypot", "sinc", "angle"]
