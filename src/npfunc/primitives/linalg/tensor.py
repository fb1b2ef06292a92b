"""``np.linalg.tensorinv`` and ``np.linalg.tensorsolve``: the tensor forms of
``inv`` and ``solve``, reshaped to a matrix problem exactly as NumPy does
(so values are NumPy's and the derivatives are those of ``inv``/``solve``)."""
from __future__ import annotations

import math

import numpy as np

from ...core.primitive import Sample
from ...core.values import ndim_of, shape_of
from ..families import composite
from ..sampling import FLOATS, array
from ..shape.basic import reshape, transpose
from .solve import inv, solve


def _square_tensor(rng, left, right, dtype=np.float64):
    """A tensor of shape ``left + right`` whose matrix form is well conditioned."""
    m = math.prod(left)
    a = array(rng, (m, m), np.float64, (-1.0, 1.0)) + 3.0 * np.eye(m)
    return a.reshape(tuple(left) + tuple(right)).astype(dtype)


def _tensorinv_samples(rng):
    out = [Sample(_square_tensor(rng, (2, 3), (6,), dt), ind=2) for dt in FLOATS]
    out.append(Sample(_square_tensor(rng, (2, 2), (2, 2)), label="default ind=2"))
    out += [Sample(_square_tensor(rng, (6,), (3, 2)), ind=1, label="ind=1"),
            Sample(_square_tensor(rng, (4,), (4,)), ind=1, label="a matrix")]
    return out


@composite(np.linalg.tensorinv, samples=_tensorinv_samples)
def tensorinv(a, ind=2):
    """``np.linalg.tensorinv``: the inverse of ``a`` seen as the matrix of its
    first ``ind`` axes against the others."""
    old = tuple(shape_of(a))
    if not ind > 0:
        raise ValueError("tensorinv: ind must be a positive integer, got " + repr(ind))
    prod = math.prod(old[ind:])
    inverse = inv(reshape(a, (prod, -1)))
    return reshape(inverse, old[ind:] + old[:ind])


def _tensorsolve_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(_square_tensor(rng, (2, 3), (3, 2), dt), array(rng, (2, 3), dt)))
    a = _square_tensor(rng, (6,), (2, 3))
    out += [Sample(a, array(rng, (6,))), Sample(np.moveaxis(a, 1, 0).copy(), array(rng, (6,)),
                                                axes=(0,), label="axes moved last")]
    return out


@composite(np.linalg.tensorsolve, samples=_tensorsolve_samples)
def tensorsolve(a, b, axes=None):
    """``np.linalg.tensorsolve``: ``x`` with ``tensordot(a, x, x.ndim) == b``;
    ``axes`` (axes of ``a`` moved to the end first) as in NumPy."""
    an = ndim_of(a)
    if axes is not None:
        order = list(range(an))
        for k in axes:
            order.remove(k)
            order.insert(an, k)
        a = transpose(a, tuple(order))
    old = tuple(shape_of(a))[-(an - ndim_of(b)):]
    prod = math.prod(old)
    if math.prod(shape_of(a)) != prod ** 2:
        raise np.linalg.LinAlgError(
            "tensorsolve: the arrays must satisfy prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    x = solve(reshape(a, (prod, prod)), reshape(b, (-1,)))
    return reshape(x, old)
