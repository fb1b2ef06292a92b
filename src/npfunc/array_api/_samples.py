"""Registry samples for the namespace functions that add to NumPy's.

Most of ``npfunc.array_api`` hands its arguments to a NumPy function npfunc
already tests; the functions below compute something of their own (the
standard's keywords and values), so each is a ``Composite``: the generated
tests of ``tests/test_registry.py`` compare it under every transform with
its value on plain arrays and with finite differences.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Composite, Sample
from ..primitives.sampling import FLOATS, array
from . import fft, linalg
from . import _creation, _elementwise, _manipulation, _statistics


def _register(name, fn, samples, differentiable=True):
    Composite(f"array_api.{name}", lambda *args, **params: fn(*args, **params), samples=samples,
              differentiable=differentiable)


def _moments(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (3, 4), dt)
        out += [Sample(x, correction=1), Sample(x, axis=0, correction=1.5, keepdims=True),
                Sample(x, axis=(0, 1), correction=0)]
    return out


def _sorting(rng):
    x = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.75, -0.5, 3.0]])
    return [Sample(x, descending=True), Sample(x.astype(np.float32), axis=0, descending=True),
            Sample(x, descending=False, stable=False), Sample(array(rng, (5,)), descending=True)]


def _ties(rng):
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    return [Sample(x, descending=True, label="ties keep their order"), Sample(x, label="ties")]


def _clip(rng):
    out = [Sample(array(rng, (2, 3), dt), -0.5, 0.75) for dt in FLOATS]
    out += [Sample(array(rng, (2, 3)), array(rng, (3,), domain=(-2, -0.2)), array(rng, (2, 1), domain=(0.1, 2)),
                   label="array bounds"),
            Sample(array(rng, (4,), np.float32), None, 0.5, label="max only, float32 kept")]
    return out


def _unary_complex(rng):
    out = [Sample(array(rng, (3,), dt)) for dt in FLOATS]
    out.append(Sample(array(rng, (3,)) + 1j * array(rng, (3,)), label="complex"))
    return out


def _reals(rng):
    return [Sample(array(rng, (3,), dt) + 0.1) for dt in FLOATS] + [Sample(np.array([1, -2, 3]), label="integers")]


def _spd(rng):
    return [Sample(s.args[0]) for s in _cholesky(rng)]


def _cumulative(rng):
    return [Sample(array(rng, (4,), dt), include_initial=True) for dt in FLOATS] + [
        Sample(array(rng, (2, 3)), axis=1, include_initial=True), Sample(array(rng, (2, 3)), axis=0)]


def _take(rng):
    return [Sample(array(rng, (5,)), np.array([4, 0, 0, 2])),
            Sample(array(rng, (3, 4), np.float32), np.array([1, 3]), axis=1)]


def _take_along(rng):
    return [Sample(array(rng, (3, 4)), np.array([[0, 3], [1, 1], [2, 0]]), axis=1)]


def _matrices(rng):
    return [Sample(array(rng, (2, 3, 4), dt)) for dt in FLOATS]


def _vecdot(rng):
    return [Sample(array(rng, (2, 3)), array(rng, (3,))),
            Sample(array(rng, (3, 2), np.float32), array(rng, (3, 2), np.float32), axis=0),
            Sample(array(rng, (3,)) + 1j * array(rng, (3,)), array(rng, (3,)) + 1j * array(rng, (3,)),
                   label="complex: x1 conjugated")]


def _cholesky(rng):
    a = array(rng, (3, 3))
    spd = a @ a.T + 3 * np.eye(3)
    return [Sample(spd, upper=True), Sample(spd.astype(np.float32), upper=False)]


def _norms(rng):
    return [Sample(array(rng, (2, 3)), axis=(0, 1)), Sample(array(rng, (2, 3)), ord=1, axis=1, keepdims=True),
            Sample(array(rng, (4,), np.float32), ord=np.inf)]


def _ffts(rng):
    return [Sample(array(rng, (6,)), norm="ortho"), Sample(array(rng, (2, 5), np.float32), axis=0, n=6),
            Sample(array(rng, (4,)), norm="forward")]


def _fftns(rng):
    x = array(rng, (3, 4)) + 1j * array(rng, (3, 4))
    return [Sample(x, axes=(0, 1), norm="ortho"), Sample(x, s=(4, 4), axes=(1, 0))]


def _full_like(rng):
    return [Sample(array(rng, (2, 3)), array(rng, ()), label="traced fill"),
            Sample(array(rng, (3,), np.float32), np.float32(0.5), dtype=np.float64)]


def _linspace(rng):
    return [Sample(array(rng, ()), array(rng, ()), num=5), Sample(array(rng, ()), 2.0, num=4, endpoint=False)]


def _asarray_list(rng):
    return [Sample(array(rng, ()), array(rng, ()))]


def _manipulations(rng):
    return [Sample(array(rng, (2, 1, 3), dt)) for dt in FLOATS]


def _where_scalar(rng):
    x = array(rng, (2, 3))
    return [Sample(x > 0, x, 0.5), Sample(x > 0, -1.0, x)]


_register("std", _statistics.std, _moments)
_register("var", _statistics.var, _moments)
_register("sort", _statistics.sort, _sorting)
_register("argsort", _statistics.argsort, _ties, differentiable=False)
_register("clip", _elementwise.clip, _clip)
_register("expm1", _elementwise.expm1, _unary_complex)
_register("ceil", _elementwise.ceil, _reals, differentiable=False)
_register("floor_divide", _elementwise.floor_divide,
          lambda rng: [Sample(np.array([7.0, -3.5, np.inf, 1.0]), np.array([2.0, 2.0, 3.0, -np.inf]))],
          differentiable=False)
_register("cumulative_sum", _statistics.cumulative_sum, _cumulative)
_register("cumulative_prod", _statistics.cumulative_prod, _cumulative)
_register("take", _manipulation.take, _take)
_register("take_along_axis", _manipulation.take_along_axis, _take_along)
_register("matrix_transpose", _manipulation.matrix_transpose, _matrices)
_register("vecdot", _manipulation.vecdot, _vecdot)
_register("where", _statistics.where, _where_scalar)
_register("squeeze", lambda x: _manipulation.squeeze(x, axis=1), _manipulations)
_register("unstack", lambda x: _manipulation.unstack(x, axis=2)[1], _manipulations)
_register("concat(axis=None)", lambda x: _manipulation.concat([x, 2 * x], axis=None), _manipulations)
_register("reshape(copy=True)", lambda x: _manipulation.reshape(x, (3, 2), copy=True), _manipulations)
_register("linalg.cholesky", linalg.cholesky, _cholesky)
_register("linalg.slogdet", lambda x: linalg.slogdet(x).logabsdet, _spd)
_register("linalg.vector_norm", linalg.vector_norm, _norms)
_register("fft.rfft", fft.rfft, _ffts)
_register("fft.fftn", fft.fftn, _fftns)
_register("full_like", _creation.full_like, _full_like)
_register("linspace", _creation.linspace, _linspace)
_register("asarray([a, b])", lambda a, b: _creation.asarray([[a, b], [b, a]]), _asarray_list)
