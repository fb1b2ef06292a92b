"""Registry samples for ``npfunc.scipy.spatial.distance`` (composites named
``npfunc.scipy.spatial.distance.<name>``)."""
from __future__ import annotations

import numpy as np

from ...core.primitive import Composite, Sample
from ...primitives.sampling import FLOATS, array
from . import distance as D


def _register(name, target, samples, notes="", differentiable=True):
    Composite(f"npfunc.scipy.spatial.distance.{name}", target, samples=samples, differentiable=differentiable,
              notes=notes)


_SMOOTH = ["euclidean", "sqeuclidean", "cityblock", "chebyshev", "minkowski", "seuclidean", "mahalanobis",
           "correlation", "cosine", "braycurtis", "canberra", "jensenshannon"]


def _cdist_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3, 2), dt), array(rng, (4, 2), dt)))
    for metric in _SMOOTH[1:]:
        lo = 0.2 if metric == "jensenshannon" else -2.0
        out.append(Sample(array(rng, (3, 3), np.float64, (lo, 2.0)), array(rng, (4, 3), np.float64, (lo, 2.0)),
                          metric=metric, label=metric))
    out += [Sample(array(rng, (2, 3)), array(rng, (3, 3)), np.abs(array(rng, (3,))) + 0.1, metric="minkowski",
                   p=3.0, label="minkowski p=3, w"),
            Sample(array(rng, (2, 3)), array(rng, (3, 3)), np.abs(array(rng, (3,))) + 0.1, metric="euclidean",
                   label="euclidean, w"),
            Sample(array(rng, (2, 3)), array(rng, (3, 3)), np.abs(array(rng, (3,))) + 0.1, metric="correlation",
                   label="correlation, w")]
    return out


def _cdist_call(xa, xb, w=None, *, metric="euclidean", **kw):
    if w is not None:
        kw["w"] = w
    return D.cdist(xa, xb, metric, **kw)


def _pdist_call(x, w=None, *, metric="euclidean", **kw):
    if w is not None:
        kw["w"] = w
    return D.pdist(x, metric, **kw)


def _pdist_samples(rng):
    out = [Sample(array(rng, (4, 3), dt)) for dt in FLOATS]
    for metric in _SMOOTH[1:]:
        lo = 0.2 if metric == "jensenshannon" else -2.0
        out.append(Sample(array(rng, (5, 3), np.float64, (lo, 2.0)), metric=metric, label=metric))
    out.append(Sample(array(rng, (3, 2)), np.array([0.5, 2.0]), metric="cityblock", label="cityblock, w"))
    return out


_register("cdist", _cdist_call, _cdist_samples, "gradient 0 at coincident points for the norm-type metrics")
_register("pdist", _pdist_call, _pdist_samples, "pairs i < j only")
_register("cdist[boolean]", lambda xa, xb, *, metric: D.cdist(xa, xb, metric),
          lambda rng: [Sample(np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], bool),
                              np.array([[1, 1, 0, 1], [0, 0, 1, 1]], bool), metric=m, label=m)
                       for m in ("hamming", "jaccard", "dice", "yule", "rogerstanimoto", "russellrao", "sokalsneath")],
          "boolean metrics: no derivative", differentiable=False)


def _square_samples(rng):
    v = array(rng, (6,), np.float64, (0.1, 2.0))
    m = D.squareform(v)
    return [Sample(v.astype(dt)) for dt in FLOATS] + [Sample(m, checks=False, force="tovector", label="no checks"),
                                                      Sample(v, round_trip=True, label="round trip, checked")]


def _square_call(x, *, round_trip=False, **kw):
    return D.squareform(D.squareform(x)) if round_trip else D.squareform(x, **kw)


_register("squareform", _square_call, _square_samples, "a gather; vector -> symmetric matrix and back")


def _pair_call(u, v, *, metric, **kw):
    return getattr(D, metric)(u, v, **kw)


_register("euclidean", D.euclidean,
          lambda rng: [Sample(array(rng, (3,), dt), array(rng, (3,), dt)) for dt in FLOATS]
          + [Sample(np.array([1.0, 2.0]), np.array([1.0, 2.0]), label="coincident: gradient 0", kink=True)],
          "gradient 0 at u == v")
_register("distance functions", _pair_call,
          lambda rng: [Sample(array(rng, (4,), np.float64, (0.2, 2.0)), array(rng, (4,), np.float64, (0.2, 2.0)),
                              metric=m, label=m)
                       for m in ("sqeuclidean", "cityblock", "chebyshev", "minkowski", "correlation", "cosine",
                                 "braycurtis", "canberra", "jensenshannon")]
          + [Sample(array(rng, (3,)), array(rng, (3,)), metric="seuclidean", V=np.array([0.5, 1.0, 2.0]),
                    label="seuclidean"),
             Sample(array(rng, (2,)), array(rng, (2,)), metric="mahalanobis", VI=np.array([[2.0, 0.3], [0.3, 1.0]]),
                    label="mahalanobis")])
