"""Registry samples for the continuous densities and tails of the first
distributions (norm, t, cauchy, laplace, logistic, expon, gamma, chi2, beta) of
``npfunc.scipy.stats``: the generated tests compare each method with
``scipy.stats``' own under every transform, its derivatives with central
differences of SciPy's, and include the edges of the support, where a
shape-parameter derivative of a vanishing density must be 0, not NaN.
"""
from __future__ import annotations

import numpy as np
import scipy.stats as _scipy_stats

from ...core.primitive import Composite, Sample
from ...primitives.sampling import array

METHODS = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")


class TwinComposite(Composite):
    """A twin function checked against the SciPy function it stands for:
    ``impl`` (the reference values) is SciPy's, ``bind`` npfunc's."""

    __slots__ = ("reference",)

    def __init__(self, name, target, reference, **kwargs) -> None:
        super().__init__(name, target, **kwargs)
        self.reference = reference

    def impl(self, *args, **params):
        with np.errstate(all="ignore"):
            return self.reference(*args, **params)


# (distribution, shape ranges, support edges, shape values at the edges whose
# density vanishes there -- its shape derivatives must be 0)
_SHAPES = {
    "norm": ((), (), ()),
    "t": (((1.5, 6.0),), (), ()),
    "cauchy": ((), (), ()),
    "laplace": ((), (), ()),
    "logistic": ((), (), ()),
    "expon": ((), (0.0,), ()),
    "gamma": (((0.6, 4.0),), (0.0,), ((2.5,),)),
    "chi2": (((1.0, 6.0),), (0.0,), ((4.5,),)),
    "beta": (((0.6, 3.0), (0.6, 3.0)), (0.0, 1.0), ((2.5, 1.7), (1.5, 3.2))),
}


def _points(rng, name, n):
    low, high = {"expon": (0.05, 3.0), "gamma": (0.05, 4.0), "chi2": (0.05, 6.0),
                 "beta": (0.05, 0.95)}.get(name, (-3.0, 3.0))
    return array(rng, (n,), domain=(low, high))


def _samples(name, method):
    ranges, edges, edge_shapes = _SHAPES[name]

    def make(rng):
        shapes = [array(rng, (4,), domain=r) for r in ranges]
        x = _points(rng, name, 4)
        out = [Sample(x, *shapes), Sample(x[:1].copy(), *[s[:1].copy() for s in shapes], label="one point"),
               Sample(x, *shapes, array(rng, (4,), domain=(-0.5, 0.5)), array(rng, (4,), domain=(0.5, 2.0)),
                      label="loc and scale"),
               Sample(x.reshape(2, 2), *[s[:2].copy() for s in shapes], label="broadcast")]
        if method in ("logpdf", "pdf"):
            for edge, values in zip(edges, edge_shapes or [()] * len(edges)):
                if not values:
                    continue
                # only the shapes move: differences across the edge in x say nothing
                out.append(Sample(np.array([edge]), *[np.array([v]) for v in values], label="support edge",
                                  argnums=tuple(range(1, 1 + len(values))), fd_order=1))
        return out

    return make


def _isf_samples(name):
    ranges = _SHAPES[name][0]

    def make(rng):
        shapes = [array(rng, (3,), domain=r) for r in ranges]
        q = array(rng, (3,), domain=(0.05, 0.95))
        return [Sample(q, *shapes), Sample(q, *shapes, array(rng, (3,), domain=(-0.5, 0.5)),
                                           array(rng, (3,), domain=(0.5, 2.0)), label="loc and scale"),
                Sample(np.array([2e-3, 1e-2, 0.03]), *shapes, label="upper tail (SciPy's own isf formulas)")]

    return make


def register() -> None:
    from . import _continuous

    for name in _SHAPES:
        ours, theirs = getattr(_continuous, name), getattr(_scipy_stats, name)
        for method in METHODS:
            TwinComposite(f"scipy.stats.{name}.{method}", getattr(ours, method), getattr(theirs, method),
                          samples=_samples(name, method),
                          notes="npfunc.scipy.stats twin, checked against scipy.stats")
        TwinComposite(f"scipy.stats.{name}.isf", ours.isf, theirs.isf, samples=_isf_samples(name),
                      notes="npfunc.scipy.stats twin, checked against scipy.stats")
