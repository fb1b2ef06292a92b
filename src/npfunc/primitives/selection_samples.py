"""Registry samples of ``selection.py`` (select, piecewise, choose, compress,
extract, place, putmask), kept apart so the definitions stay short.

The generated tests batch every array argument (a boolean mask becomes a
traced mask under vmap) and perturb every float array; conditions that must
stay static (``np.compress`` without ``size=``) are passed as lists.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Sample
from .sampling import FLOATS, array


def _mask(rng, shape, p=0.5):
    return rng.uniform(size=shape) < p


def select_samples(rng):
    """An array ``default`` is not perturbed alone: NumPy does not hand np.select to
    npfunc when only ``default`` is traced (the conversion error names
    npfunc.numpy.select; tests/test_numpy_select.py covers it)."""
    out = []
    for dt in FLOATS:
        out += [Sample(_mask(rng, (2, 3)), _mask(rng, (2, 3)), array(rng, (2, 3), dt), array(rng, (3,), dt), 0.5),
                Sample(_mask(rng, (3,)), _mask(rng, (2, 3)), array(rng, (2, 1), dt), array(rng, (), dt),
                       array(rng, (3,), dt), argnums=(2, 3), label="broadcast, array default")]
    out += [Sample(_mask(rng, (4,)), np.ones(4, bool), array(rng, (4,), np.float32), array(rng, (4,)), 0.0,
                   label="overlapping conditions, float32 with float64"),
            Sample(_mask(rng, (3,)), _mask(rng, (3,)), np.arange(3), np.arange(3) * 2, 7, label="integers")]
    return out


def piecewise_call(x, *, c, case):
    """The piecewise programs the samples run (``c`` is a threshold and a parameter;
    derivatives in a parameter are tested in tests/test_numpy_select.py, as NumPy
    does not hand np.piecewise to npfunc when only the functions are traced)."""
    if case == "two":
        return np.piecewise(x, [x < c, x >= c], [lambda v: np.sin(v) * c, lambda v: c * c / v])
    if case == "otherwise":
        return np.piecewise(x, [x < -c], [lambda v: v * v, lambda v: c * v])
    if case == "constants":
        return np.piecewise(x, [x < c, x > 2 * c], [-1.0, lambda v: v * c])
    return np.piecewise(x, [x < c], [lambda v, k: k * v * c, lambda v, k: v / k], 2.0)  # extra args


def piecewise_samples(rng):
    out = []
    for dt in FLOATS:
        x = np.array([[0.3, 1.7, 0.9], [2.5, 0.6, 1.3]], dt)
        out += [Sample(x, c=1.1, case="two"), Sample(x - 1.5, c=0.5, case="otherwise")]
    x = np.array([0.2, 0.7, 1.6, 2.9, 1.2])
    out += [Sample(x, c=1.0, case="constants"), Sample(x, c=1.0, case="args"),
            Sample(np.float64(2.5), c=1.1, case="two", label="0-d"),
            Sample(np.float64(0.5), c=1.1, case="otherwise", label="0-d, otherwise")]
    return out


def choose_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(np.array([[0, 1, 2], [2, 1, 0]]), array(rng, (2, 3), dt), array(rng, (3,), dt),
                       mode="raise"),
                Sample(np.array([4, -1, 1]), array(rng, (3,), dt), array(rng, (2, 1), dt), mode="wrap"),
                Sample(np.array([5, -2, 0, 1]), array(rng, (4,), dt), array(rng, (4,), dt), mode="clip")]
    out.append(Sample(np.array([1, 0, 1]), np.arange(3), np.arange(3) * 2, mode="raise", label="integers"))
    return out


def compress_call(a, condition, *, axis, size=None, fill_value=0):
    if size is None:
        return np.compress(condition, a, axis=axis)
    from ..numpy import compress

    return compress(condition, a, axis=axis, size=size, fill_value=fill_value)


def compress_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 4), dt), [True, False, True, True], axis=1),
                Sample(array(rng, (3, 4), dt), [False, True], axis=0, label="short condition"),
                Sample(array(rng, (2, 3), dt), [0, 2, 0, 1, 1], axis=None, label="flattened, integers")]
    out += [Sample(array(rng, (3, 4)), _mask(rng, (4,)), axis=1, size=3, label="traced condition, size="),
            Sample(array(rng, (3, 4), np.float32), _mask(rng, (3,)), axis=0, size=4, fill_value=-1.0,
                   label="size= beyond the axis"),
            Sample(array(rng, (3,)), [False, False, False], axis=0, label="nothing selected")]
    return out


def extract_samples(rng):
    return [Sample(array(rng, (2, 3), dt), [[True, False, True], [False, False, True]]) for dt in FLOATS] + [
        Sample(array(rng, (4,)), [1.5, 0.0, 0.0, -2.0], label="nonzero floats")]


def place_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt), array(rng, (2,), dt), _mask(rng, (2, 3))),
                Sample(array(rng, (5,), dt), array(rng, (7,), dt), _mask(rng, (5,)), label="more values")]
    out.append(Sample(array(rng, (4,)), array(rng, (1,)), np.array([True, False, True, True]),
                      label="one value repeated"))
    return out


def putmask_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 3), dt), array(rng, (4,), dt), _mask(rng, (2, 3))),
                Sample(array(rng, (5,), dt), array(rng, (5,), dt), _mask(rng, (5,)), label="same size")]
    out.append(Sample(array(rng, (3,)), array(rng, (2,), np.float32), _mask(rng, (3,)), label="float32 values"))
    return out
