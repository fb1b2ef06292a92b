"""Floating-point and integer routines: ``nextafter``, ``spacing``, ``gcd``,
``lcm``, ``bitwise_count``, and NumPy's Bessel function ``i0``.

* ``nextafter(x1, x2)`` is ``x1`` moved by one ulp: derivative 1 in ``x1``
  (what finite differences see), none in ``x2``;
* ``spacing`` is piecewise constant (the ulp of ``x``): no derivative;
* ``gcd``, ``lcm``, ``bitwise_count`` work on integers: no derivative;
* ``np.i0`` (values are NumPy's own) has derivative ``I1(x)``, computed with
  ``scipy.special.i1``.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..families import composite, nondiff, unary
from ..sampling import FLOATS, array, binary_samples, unary_samples
from .arithmetic import _keep, document
from .piecewise import partial_nary
from .samples import combined, points

nextafter = partial_nary(
    "nextafter", np.nextafter, jvps=(_keep, None), vjps=(_keep, None),
    samples=binary_samples(), numpy=[np.nextafter],
    notes="x1 moved one ulp towards x2: derivative 1 in x1, 0 in x2")
nextafter.direct = True  # type: ignore[attr-defined]  # np.nextafter(x1, x2) is the primitive's call

spacing = nondiff("spacing", np.spacing,
                  samples=combined(unary_samples(), points([0.0, -1.0, np.inf, np.nan, 1e300], kink=True,
                                                           label="jumps at 0 and powers of 2; inf, nan")),
                  numpy=[np.spacing], notes="the ulp of x: piecewise constant, no derivative")


def _integer_pairs(rng):
    return [Sample(rng.integers(-30, 30, size=(2, 3)), rng.integers(-30, 30, size=(3,))),
            Sample(np.array([12, 0, -18, 0]), np.array([8, 5, 0, 0]), label="zeros and signs"),
            Sample(rng.integers(1, 50, size=(3,)).astype(np.int32), 6, label="int32 with a python int")]


gcd = nondiff("gcd", np.gcd, samples=_integer_pairs, numpy=[np.gcd],
              notes="integers: no derivative")
lcm = nondiff("lcm", np.lcm, samples=_integer_pairs, numpy=[np.lcm],
              notes="integers: no derivative")
bitwise_count = nondiff(
    "bitwise_count", np.bitwise_count,
    samples=lambda rng: [Sample(rng.integers(-300, 300, size=(2, 3))),
                         Sample(np.array([-1, 7, 0, 255], np.int16), label="int16, negative")],
    numpy=[np.bitwise_count], notes="integers: no derivative")


def _i1(x, out):
    from ..special.functions import i1

    return i1(x)


def _i0_samples(rng):
    return [Sample(array(rng, s, dt, (-3.0, 3.0))) for dt in FLOATS for s in ((), (3,), (2, 3))] + [
        Sample(np.array([-25.0, 0.0, 12.0, 40.0]), label="large and zero")]


_i0 = unary("numpy_i0", np.i0, deriv=_i1, samples=_i0_samples,
            notes="np.i0's values; derivative scipy.special.i1(x)")


@composite(np.i0, samples=_i0_samples)
def i0(x):
    """``np.i0`` for traced and plain values (NumPy's values); derivative
    ``scipy.special.i1(x)``.  NumPy's ``i0`` is Python code over
    ``asanyarray``: its result is an array, also for a NumPy scalar."""
    from ..indexing.aliasing import array_result

    return array_result(_i0(x))

document(globals())

__all__ = ["nextafter", "spacing", "gcd", "lcm", "bitwise_count", "i0"]
