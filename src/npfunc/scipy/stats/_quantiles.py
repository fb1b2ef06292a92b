"""Quantiles of the discrete distributions: a step function of ``q`` and of the
shape parameters, so it carries no derivative.  SciPy computes the values
(on plain arrays, also under ``vmap``: the primitive is elementwise)."""
from __future__ import annotations

import numpy as np

from ...core.primitive import Primitive, Sample
from ...primitives.families import elementwise_batch


def _impl(q, *shapes, dist):
    import scipy.stats as st

    with np.errstate(all="ignore"):
        return np.asarray(getattr(st, dist).ppf(q, *shapes), dtype=np.float64)


def _samples(rng):
    q = np.array([0.0, 0.05, 0.5, 0.93, 1.0])  # the ends of [0, 1] included: not differentiable there
    return [Sample(q, np.array([0.3]), dist="geom", kink=True),
            Sample(q, 3.0, np.array([0.4]), dist="nbinom", kink=True),
            Sample(q, 6.0, 1.5, np.array([2.5]), dist="betabinom", kink=True),
            Sample(q, np.array([0.2, 0.5, 0.7, 0.9, 1.0]), dist="bernoulli", kink=True),
            Sample(q, np.array([3.5]), dist="poisson", kink=True),
            Sample(q, 8.0, np.array([0.35]), dist="binom", kink=True)]


_discrete_ppf = Primitive("stats_discrete_ppf", _impl, differentiable=False, samples=_samples,
                          notes="scipy.stats.<dist>.ppf for discrete distributions: step function, no derivative")
_discrete_ppf.batch = elementwise_batch(_discrete_ppf)


def discrete_ppf(dist: str, q, *shapes):
    """``scipy.stats.<dist>.ppf(q, *shapes)`` (loc = 0) on traced or plain values."""
    return _discrete_ppf.bind(q, *shapes, dist=dist)
