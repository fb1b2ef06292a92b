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


# ---- NumPy functions built from the elementwise primitives (composites) ------------------

def _ints_and_bools(rng, n_args: int):
    from ..sampling import bool_array, int8_array

    return [Sample(*[int8_array(rng, (2, 3)) for _ in range(n_args)], label="int8"),
            Sample(*[bool_array(rng, (2, 3)) for _ in range(n_args)], label="bool")]


def round_samples(rng):
    from ..sampling import FLOATS, int8_array

    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3), dt, (-30.0, 30.0))
        out += [Sample(x), Sample(x, 2), Sample(x, decimals=-1), Sample(x, 0)]
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.125])
    out += [Sample(x, label="halves to even", kink=True), Sample(x, 2, label="halves", kink=True),
            Sample(complex_array(rng, (3,)), 1, label="complex"),
            Sample(int8_array(rng, (2, 3)), -1, label="int8, decimals=-1"),
            Sample(int8_array(rng, (2, 3)), 1, label="int8, decimals=1"),
            Sample(int8_array(rng, (2, 3)), label="int8")]
    return out


def unary_with_ints(domain=(-3.0, 3.0), complex_ok=False, bools=True):
    """float64/float32 samples plus int8 (and bool) arrays NumPy accepts."""
    def make(rng):
        out = unary_samples(domain=domain)(rng)
        out += [s for s in _ints_and_bools(rng, 1) if bools or s.label != "bool"]
        if complex_ok:
            out += complex_unary()(rng)
        return out

    return make


def divmod_samples(rng):
    from ..sampling import FLOATS, int8_array

    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt, (-5.0, 5.0)), array(rng, (3,), dt, (0.7, 2.0))),
                Sample(array(rng, (3,), dt, (-5.0, 5.0)), array(rng, (3,), dt, (-2.0, -0.7)))]
    y = int8_array(rng, (2, 3))
    y[y == 0] = 3
    return out + [Sample(array(rng, (3,), np.float32, (-5.0, 5.0)), 1.5, label="python scalar y"),
                  Sample(int8_array(rng, (2, 3)), y, label="int8"),
                  Sample(int8_array(rng, (2, 3)), 7, label="int8, python int")]


def clip_samples(rng):
    from ..sampling import FLOATS, int8_array

    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3), dt)
        out += [Sample(x, -0.5, 1.0), Sample(x, None, 0.5), Sample(x, -1.0, None),
                Sample(x, array(rng, (3,), dt, (-2.0, -0.2)), array(rng, (2, 1), dt, (0.2, 2.0)),
                       label="array bounds"),
                Sample(x, min=-0.5, max=0.5), Sample(x, max=0.0)]
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    out += [Sample(x, -0.5, 0.5, label="at the bounds", kink=True),
            Sample(1.5, array(rng, (3,), np.float32, (-2.0, 0.0)), array(rng, (3,), np.float32, (0.5, 1.0)),
                   label="python scalar a"),
            Sample(2, array(rng, (2, 3), np.float64, (-2.0, 0.0)), 1.0, label="python int a"),
            Sample(np.float32(0.5), array(rng, (3,)), None, label="NumPy scalar a"),
            Sample(array(rng, (3,), np.float32), np.float64(-0.5), np.float64(0.5),
                   label="float64 NumPy scalars"),
            Sample(array(rng, (3,), np.float32), -0.5, array(rng, (3,), np.float64, (0.5, 1.0)),
                   label="float32 a, float64 bound"),
            Sample(int8_array(rng, (2, 3)), -50, 50, label="int8"),
            Sample(int8_array(rng, (2, 3)), -50.5, 50.5, label="int8, float bounds"),
            Sample(array(rng, (3,)), 1.0, -1.0, label="min > max")]
    return out


def nan_to_num_samples(rng):
    from ..sampling import int8_array

    x = np.array([[1.5, np.nan, -np.inf], [np.inf, -0.5, 2.0]])
    z = np.array([complex(1, np.nan), complex(np.inf, -1), 0.5 + 2j])
    return [Sample(x), Sample(x, nan=-1.0), Sample(x.astype(np.float32), True, 1.0, 10.0, -10.0),
            Sample(x, posinf=1e300, neginf=-1e300), Sample(array(rng, (2, 3))),
            Sample(z, nan=-1.0, posinf=5.0), Sample(int8_array(rng, (3,)), label="int8"),
            Sample(np.float64(np.nan), label="0-d")]


def where_samples(rng):
    from ..sampling import FLOATS, bool_array, int8_array

    out = []
    c = bool_array(rng, (2, 3))
    for dt in FLOATS:
        out += [Sample(c, array(rng, (2, 3), dt), array(rng, (2, 3), dt)),
                Sample(c[0], array(rng, (2, 3), dt), array(rng, (3,), dt), label="broadcast"),
                Sample(c, array(rng, (2, 3), dt), 0.0, label="python scalar y"),
                Sample(c, 1.5, array(rng, (1, 3), dt), label="python scalar x")]
    out += [Sample(c, array(rng, (2, 3), np.float32), array(rng, (2, 3)), label="mixed precision"),
            Sample(array(rng, (2, 3)), array(rng, (2, 3)), array(rng, (2, 3)), argnums=(1, 2),
                   label="float condition"),
            Sample(c, int8_array(rng, (2, 3)), int8_array(rng, (2, 3)), label="int8"),
            Sample(c, int8_array(rng, (2, 3)), 1000, label="int8 and a large python int"),
            Sample(c, bool_array(rng, (2, 3)), False, label="bool"),
            Sample(c, complex_array(rng, (2, 3)), array(rng, (2, 3)), label="complex, real")]
    return out


def sign_samples(rng):
    return (unary_samples()(rng) + points([0.0, -1.0, 2.0], kink=True)(rng) + complex_unary()(rng)
            + points([0.5, 1 + 1j, -2j, 0j], dtype=np.complex128, label="complex zero", kink=True)(rng)
            + _ints_and_bools(rng, 1)[:1])


def float_power_samples(rng):
    from ..sampling import int8_array

    out = []
    for dt in (np.float64, np.float32):
        out += [Sample(array(rng, (2, 3), dt, (0.5, 2.0)), array(rng, (3,), dt)),
                Sample(array(rng, (3,), dt, (0.5, 2.0)), 2.5, label="python scalar exponent")]
    return out + [Sample(1.5, array(rng, (3,)), label="python scalar base"),
                  Sample(int8_array(rng, (3,)) // 30, np.array([2, 3, 1], np.int8), label="int8"),
                  Sample(complex_array(rng, (3,)), array(rng, (3,)), label="complex base"),
                  Sample(np.array([0.0, 1.0, 2.0]), np.array([2.0, 3.0, 1.0]), label="zero base", kink=True)]


def sinc_samples(rng):
    return (unary_samples()(rng)
            + [Sample(np.array([0.0, 1e-3, -0.05, 0.099, 0.101, 1.0]), label="near and at 0", fd_order=3)]
            + complex_unary()(rng) + _ints_and_bools(rng, 1)[:1])


def angle_samples(rng):
    out = [Sample(complex_array(rng, (2, 3))), Sample(complex_array(rng, (3,), np.complex64)),
           Sample(complex_array(rng, (3,)), True), Sample(complex_array(rng, (3,)), deg=True)]
    return out + unary_samples()(rng) + [Sample(np.array([-1.0, 0.0, 2.0]), deg=True, label="real", kink=True)] \
        + _ints_and_bools(rng, 1)


def close_samples(rng):
    """isclose / allclose: tolerances, NaNs, broadcasting, scalars."""
    a = array(rng, (2, 3))
    b = a + np.array([0.0, 1e-9, 1.0])
    b[0, 0] = a[0, 0] = np.nan
    return [Sample(a, b), Sample(a, b, equal_nan=True), Sample(a, b, 1e-3, 0.5),
            Sample(a.astype(np.float32), 0.5, rtol=0.5, atol=0.0), Sample(a, a.copy()),
            Sample(a, b[0], label="broadcast"), Sample(complex_array(rng, (3,)), complex_array(rng, (3,)), atol=2.0),
            Sample(array(rng, (2, 3), np.float32), array(rng, (2, 3)), atol=1.0)]


def equal_samples(rng):
    a = array(rng, (2, 3))
    b = a.copy()
    b[1, 2] = 7.0
    c = a.copy()
    c[0, 0] = np.nan
    return [Sample(a, a.copy()), Sample(a, b), Sample(a, a[0], label="different shapes"),
            Sample(c, c.copy()), Sample(c, c.copy(), equal_nan=True), Sample(c, c.copy(), True),
            Sample(a.astype(np.float32), a.astype(np.float32)), Sample(np.zeros((0,)), np.zeros((0,)))]


def real_or_complex_test_samples(rng):
    z = complex_array(rng, (2, 3))
    z[0, 1] = 2.0 + 0j
    return [Sample(z), Sample(complex_array(rng, (3,), np.complex64)), Sample(array(rng, (2, 3))),
            Sample(array(rng, (3,), np.float32))] + _ints_and_bools(rng, 1)
