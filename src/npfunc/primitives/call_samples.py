"""Sample builders for NumPy functions called as users call them, for the
families that keep their rules in one module (gathers, sorting, convolution,
FFT): float64 and float32, every keyword that changes the result, and
integer or boolean inputs where NumPy accepts them."""
from __future__ import annotations

import numpy as np

from ..core.primitive import Sample
from .sampling import FLOATS, array, bool_array, int8_array


def complex_array(rng, shape, dtype=np.complex128):
    return (rng.uniform(-2, 2, shape) + 1j * rng.uniform(-1, 1, shape)).astype(dtype)

# ---- gathers ----------------------------------------------------------------------------


def take(rng):
    """Indices as lists: NumPy dispatches np.take on ``a`` only, so traced indices
    with a plain ``a`` never reach npfunc (x[i] is the way; see the indexing tests)."""
    out = []
    for x in [array(rng, (3, 4), dt) for dt in FLOATS] + [int8_array(rng, (3, 4)), bool_array(rng, (3, 4))]:
        out += [Sample(x, [0, 2, 2, 1]), Sample(x, [[1, 0], [3, 3]], axis=1),
                Sample(x, [2, -1], axis=0), Sample(x, 5), Sample(x, [1, 0], -1)]
    x = array(rng, (3, 4))
    return out + [Sample(x, [5, -7, 2], axis=1, mode="wrap"), Sample(x, [5, -7, 2], axis=0, mode="clip"),
                  Sample(x, [1, 3], mode="raise"), Sample(x, [], axis=1, label="no indices")]


def take_along_axis(rng):
    out = []
    for x in [array(rng, (3, 4), dt) for dt in FLOATS] + [int8_array(rng, (3, 4)), bool_array(rng, (3, 4))]:
        out += [Sample(x, np.argsort(x, axis=1)), Sample(x, np.argsort(x, axis=0)[:2], axis=0),
                Sample(x, np.array([[0], [3], [3]]), axis=-1, label="repeated"),
                Sample(x, np.array([4, 0, 11]), axis=None)]
    return out


def nonzero(rng):
    return [Sample(array(rng, (2, 3)).round()), Sample(bool_array(rng, (4,))), Sample(int8_array(rng, (2, 2)) // 60)]


# ---- sorting ----------------------------------------------------------------------------


def sort(kinds: bool = True):
    def make(rng):
        out = []
        for x in [array(rng, (3, 4), dt) for dt in FLOATS] + [int8_array(rng, (3, 4)), bool_array(rng, (3, 4))]:
            out += [Sample(x), Sample(x, 0), Sample(x, axis=None), Sample(x, -1, stable=True)]
            if kinds:
                out += [Sample(x, 1, "mergesort"), Sample(x, kind="heapsort", axis=0)]
        ties = np.array([[2.0, 1.0, 2.0, np.nan, 1.0], [0.5, -0.0, 0.0, 3.0, np.nan]])
        return out + [Sample(ties, label="ties and NaN", kink=True), Sample(ties, axis=0, kind="stable", kink=True),
                      Sample(array(rng, (0, 3)), label="empty")]

    return make


def searchsorted(rng):
    """``a`` spaced so that the tests' 5% perturbations of a batch keep it sorted."""
    out = []
    for dt in FLOATS:
        a = np.array([-4.0, -1.5, -0.5, 0.3, 1.0, 2.5], dt)
        out += [Sample(a, array(rng, (4,), dt)), Sample(a, array(rng, (2, 3), dt), side="right"),
                Sample(a, a[2:4].copy(), "left", label="hits"), Sample(a, a[2:4].copy(), "right", label="hits")]
    a = array(rng, (6,))
    nan = np.array([0.0, 1.0, 2.0, 4.0, np.nan])
    return out + [Sample(a, array(rng, (3,)), sorter=np.argsort(a).tolist()),
                  Sample(nan, np.array([1.0, np.nan, -1.0, 5.0]), label="nan"),
                  Sample(np.array([-4.0, -1.0, 0.5, 3.0]), int8_array(rng, (3,)) // 30, label="int8 v"),
                  Sample(np.array([-4.0, -1.0, 0.5, 3.0]), 0.5, label="python scalar v")]


def unique(returns: bool = True):
    """Distinct float values (so the perturbed batch keeps its count) and
    integer ones with repeats (the batch permutes them)."""
    def make(rng):
        out = []
        for dt in FLOATS:
            x = array(rng, (2, 3), dt)
            out += [Sample(x), Sample(x.ravel())]
        ints = np.array([[3, 1, 3], [1, 2, 2]], np.int8)
        out += [Sample(ints, label="repeats"), Sample(ints.astype(bool), label="bool"),
                Sample(np.array([1.0, np.nan, 2.0, np.nan]), label="NaNs")]
        if returns:
            out += [Sample(ints, True, True, True), Sample(ints, return_inverse=True),
                    Sample(ints, return_counts=True, return_index=True),
                    Sample(ints.ravel(), equal_nan=False), Sample(np.array([1.0, np.nan, np.nan]), equal_nan=False)]
        return out

    return make


# ---- convolution ------------------------------------------------------------------------


def convolve(rng):
    return _convolve(rng) + [Sample(array(rng, ()), array(rng, (3,)), label="0-d")]


def correlate(rng):
    return _convolve(rng)


def _convolve(rng):
    out = []
    for dt in FLOATS:
        a, v = array(rng, (6,), dt), array(rng, (3,), dt)
        out += [Sample(a, v), Sample(v, a, "same"), Sample(a, v, mode="valid"), Sample(v, a, "valid"),
                Sample(a, array(rng, (6,), dt), "same")]
    return out + [Sample(array(rng, (5,)), array(rng, (3,), np.float32), label="mixed precision"),
                  Sample(complex_array(rng, (5,)), array(rng, (2,)), "same", label="complex"),
                  Sample(array(rng, (4,)), complex_array(rng, (3,)), label="complex kernel"),
                  Sample(int8_array(rng, (5,)), int8_array(rng, (2,)), label="int8")]


# ---- FFT ----------------------------------------------------------------------------------

NORMS = (None, "backward", "ortho", "forward")


def _inputs(rng, shape, real_only=False, complex_only=False):
    xs = [] if complex_only else [array(rng, shape, dt) for dt in FLOATS]
    if not real_only:
        xs += [complex_array(rng, shape), complex_array(rng, shape, np.complex64)]
    return xs


def fft_1d(real_only=False, complex_only=False):
    """fft/ifft/rfft/ihfft (``real_only``) and irfft/hfft (``complex_only``)."""
    def make(rng):
        out = []
        for x in _inputs(rng, (3, 6), real_only, complex_only):
            out += [Sample(x), Sample(x, 4), Sample(x, 8, 0), Sample(x, axis=-2), Sample(x, norm="ortho")]
        x = _inputs(rng, (5,), real_only, complex_only)[0]
        out += [Sample(x, None, -1, norm) for norm in NORMS[1:]]
        out += [Sample(x, n=1, label="n = 1"), Sample(x, 7, label="odd n")]
        if not complex_only:
            out.append(Sample(int8_array(rng, (4,)), label="int8"))
        return out

    return make


def fft_nd(two_d: bool, real_only=False, complex_only=False):
    """fft2/fftn and their real and inverse variants (``s``, ``axes``, ``norm``)."""
    def make(rng):
        out = []
        for x in _inputs(rng, (2, 3, 4), real_only, complex_only):
            out += [Sample(x), Sample(x, (4, 6)), Sample(x, axes=(0, 2)), Sample(x, None, (-1, -2), "ortho")]
            if not two_d:
                out += [Sample(x, axes=(1,)), Sample(x, (3, 2, 5))]
        x = _inputs(rng, (3, 4), real_only, complex_only)[0]
        out += [Sample(x, norm=norm) for norm in NORMS[2:]]
        out.append(Sample(x, s=(2, 3), axes=(1, 0), label="s with axes"))
        if not complex_only:
            out.append(Sample(int8_array(rng, (2, 3)), label="int8"))
        return out

    return make


def fftshift(rng):
    out = []
    for x in [array(rng, (3, 4), dt) for dt in FLOATS] + [int8_array(rng, (3, 4)), bool_array(rng, (2, 5)),
                                                          complex_array(rng, (3, 5))]:
        out += [Sample(x), Sample(x, 0), Sample(x, axes=(-1,)), Sample(x, (0, 1))]
    return out
