"""Sample builders for the elementwise primitives, including complex ones.

``sampling.unary_samples`` / ``binary_samples`` cover float64 and float32;
the builders here add complex128 and complex64 samples (and real/complex
mixtures, Python complex scalars) for every primitive that makes sense on
complex numbers, plus hand-picked points at the special cases of the
conventions table (ties, zeros), marked ``kink=True``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...core.primitive import Sample
from ..sampling import array, binary_samples, unary_samples

COMPLEX = (np.complex128, np.complex64)


def complex_array(rng: np.random.Generator, shape, dtype=np.complex128,
                  re=(-2.0, 2.0), im=(-1.0, 1.0)) -> np.ndarray:
    """Random complex values with real part in ``re`` and imaginary part in ``im``."""
    return (rng.uniform(*re, size=shape) + 1j * rng.uniform(*im, size=shape)).astype(dtype)


def complex_unary(re=(-2.0, 2.0), im=(-1.0, 1.0)) -> Callable:
    """complex128 (2, 3) and complex64 (3,) samples of a unary function."""

    def make(rng):
        return [Sample(complex_array(rng, (2, 3), np.complex128, re, im), label="complex128"),
                Sample(complex_array(rng, (3,), np.complex64, re, im), label="complex64")]

    return make


def complex_binary(re=(-2.0, 2.0), im=(-1.0, 1.0), re_y=None, im_y=None,
                   scalar: complex | None = 0.5 + 1.5j) -> Callable:
    """Complex samples of a broadcasting binary function: complex128 and complex64
    pairs, a complex array with a real one (both orders) and a Python complex
    scalar with a float32 array (NEP 50: the result is complex64)."""
    re_y = re_y or re
    im_y = im_y or im

    def make(rng):
        cx = lambda shape, dt=np.complex128: complex_array(rng, shape, dt, re, im)  # noqa: E731
        cy = lambda shape, dt=np.complex128: complex_array(rng, shape, dt, re_y, im_y)  # noqa: E731
        out = [Sample(cx((2, 3)), cy((3,)), label="complex128"),
               Sample(cx((3,), np.complex64), cy((3,), np.complex64), label="complex64"),
               Sample(cx((2, 3)), array(rng, (3,), np.float64, re_y), label="complex, real"),
               Sample(array(rng, (3,), np.float64, re), cy((2, 1)), label="real, complex")]
        if scalar is not None:
            out.append(Sample(array(rng, (3,), np.float32, re), scalar, label="float32, python complex"))
        return out

    return make


def combined(*builders: Callable) -> Callable:
    """Concatenate sample builders."""

    def make(rng):
        return [s for build in builders for s in build(rng)]

    return make


def real_and_complex_unary(domain=(-2.0, 2.0), re=None, im=(-1.0, 1.0)) -> Callable:
    """float64/float32 samples on ``domain`` and complex samples around it."""
    return combined(unary_samples(domain=domain), complex_unary(re or domain, im))


def real_and_complex_binary(domain=(-2.0, 2.0), domain_y=None, im=(-1.0, 1.0), im_y=None,
                            scalar=1.5, complex_scalar=0.5 + 1.5j) -> Callable:
    """float64/float32 binary samples plus complex ones on the same domains."""
    return combined(binary_samples(domain=domain, domain_y=domain_y, scalar=scalar),
                    complex_binary(domain, im, domain_y, im_y, scalar=complex_scalar))


def points(*xs, dtype=np.float64, kink=True, label="special point") -> Callable:
    """Unary samples at given points (e.g. zeros of ``abs``)."""

    def make(rng):
        return [Sample(np.asarray(x, dtype=dtype), kink=kink, label=label) for x in xs]

    return make


def pair_points(*pairs, dtype=np.float64, kink=True, label="special point", argnums=None) -> Callable:
    """Binary samples at given points (e.g. ties of ``maximum``)."""

    def make(rng):
        return [Sample(np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype), kink=kink,
                       label=label, argnums=argnums) for x, y in pairs]

    return make
