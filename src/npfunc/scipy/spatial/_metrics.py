"""The distance metrics of ``scipy.spatial.distance`` as broadcasting kernels:
``kernel(u, v, **kwargs)`` maps ``u`` and ``v`` of shape ``(..., n)`` to the
distances ``(...)``; ``cdist`` calls them on ``XA[:, None]`` and
``XB[None, :]``.  Written with npfunc's operations, so each is differentiable
in the points (and in ``w``, ``V``, ``VI``) and batches under vmap.

Conventions at coincident points (``u == v``): the distances that are norms
of ``u - v`` (euclidean, seuclidean, mahalanobis, minkowski, and
jensenshannon's square root) have gradient 0 there, as ``np.linalg.norm``
at 0 -- a subgradient, the choice that keeps gradients of sums of distances
finite; cityblock and chebyshev follow ``abs`` and ``max`` (0 for a zero
difference, ties split equally).  Metrics on booleans have no derivative in
the points.
"""
from __future__ import annotations

import numpy as np

from ...core.values import shape_of
from ...primitives.data_dependent import ensure, is_traced

__all__ = ["KERNELS", "KWARGS", "BOOLEAN"]


def _weights(w, n):
    w = w if is_traced(w) else np.asarray(w, np.float64)
    if w.ndim != 1 or shape_of(w)[0] != n:
        raise ValueError(f"Weights must have same size as input vector. {shape_of(w)[0] if w.ndim else 0} vs. {n}")
    checked = ensure(np.less(w, 0), "all_false", "Input weights should be all non-negative")
    return np.where(np.any(checked), w, w)  # the check stays part of a recorded computation


def _safe_sqrt(q):
    """``sqrt(q)`` with derivative 0 where ``q == 0`` (coincident points), never NaN."""
    pos = q > 0
    return np.where(pos, np.sqrt(np.where(pos, q, 1.0)), 0.0)


def euclidean(u, v, w=None):
    d = u - v
    if w is not None:
        d = d * np.sqrt(w)
    return np.linalg.norm(d, axis=-1)


def sqeuclidean(u, v, w=None):
    d = u - v
    s = d * d
    return np.sum(s if w is None else s * w, axis=-1)


def cityblock(u, v, w=None):
    a = np.abs(u - v)
    return np.sum(a if w is None else a * w, axis=-1)


def chebyshev(u, v, w=None):
    a = np.abs(u - v)
    return np.max(a if w is None else a * (w > 0), axis=-1)


def minkowski(u, v, p=2.0, w=None):
    d = u - v
    if w is not None:
        d = d * (np.where(w > 0, 1.0, 0.0) if p == np.inf else w ** (1.0 / p))
    return np.linalg.norm(d, ord=p, axis=-1)


def seuclidean(u, v, V):
    return np.linalg.norm((u - v) / np.sqrt(V), axis=-1)


def mahalanobis(u, v, VI):
    d = u - v
    return _safe_sqrt(np.sum((d @ VI) * d, axis=-1))


def correlation(u, v, w=None, centered=True):
    if w is not None:
        w = w / np.sum(w)
    if centered:
        umu = np.mean(u, axis=-1, keepdims=True) if w is None else np.sum(u * w, axis=-1, keepdims=True)
        vmu = np.mean(v, axis=-1, keepdims=True) if w is None else np.sum(v * w, axis=-1, keepdims=True)
        u, v = u - umu, v - vmu
    uw, vw = (u, v) if w is None else (u * w, v * w)
    uv = np.sum(u * vw, axis=-1)
    uu = np.sum(u * uw, axis=-1)
    vv = np.sum(v * vw, axis=-1)
    return np.clip(1.0 - uv / np.sqrt(uu * vv), 0.0, 2.0)


def cosine(u, v, w=None):
    return correlation(u, v, w=w, centered=False)


def braycurtis(u, v, w=None):
    diff, total = np.abs(u - v), np.abs(u + v)
    if w is not None:
        diff, total = diff * w, total * w
    return np.sum(diff, axis=-1) / np.sum(total, axis=-1)


def canberra(u, v, w=None):
    num, den = np.abs(u - v), np.abs(u) + np.abs(v)
    nonzero = den != 0  # 0/0 terms count as 0 (SciPy's nansum)
    d = np.where(nonzero, num / np.where(nonzero, den, 1.0), 0.0)
    return np.sum(d if w is None else d * w, axis=-1)


def jensenshannon(u, v, base=None):
    from ..special import rel_entr

    p = u / np.sum(u, axis=-1, keepdims=True)
    q = v / np.sum(v, axis=-1, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m), axis=-1) + np.sum(rel_entr(q, m), axis=-1)
    if base is not None:
        js = js / np.log(base)
    return _safe_sqrt(js / 2.0)


# ---- metrics on booleans (no derivative in the points) -----------------------------------------

def _counts(u, v, w):
    """``(nff, nft, ntf, ntt)`` of 0/1 vectors (weighted like SciPy's Python versions)."""
    not_u, not_v = 1.0 - u, 1.0 - v
    if w is not None:
        not_u, u = not_u * w, u * w
    return (np.sum(not_u * not_v, axis=-1), np.sum(not_u * v, axis=-1), np.sum(u * not_v, axis=-1),
            np.sum(u * v, axis=-1))


def hamming(u, v, w=None):
    ne = np.not_equal(u, v).astype(np.float64)
    if w is None:
        return np.mean(ne, axis=-1)
    return np.sum(ne * (w / np.sum(w)), axis=-1)


def jaccard(u, v, w=None):
    nu, nv = np.not_equal(u, 0), np.not_equal(v, 0)
    unequal = np.logical_xor(nu, nv).astype(np.float64)
    nonzero = np.logical_or(nu, nv).astype(np.float64)
    if w is not None:
        unequal, nonzero = unequal * w, nonzero * w
    a, b = np.sum(unequal, axis=-1), np.sum(nonzero, axis=-1)
    return np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)


def dice(u, v, w=None):
    nff, nft, ntf, ntt = _counts(u, v, w)
    return (ntf + nft) / (2.0 * ntt + ntf + nft)


def yule(u, v, w=None):
    nff, nft, ntf, ntt = _counts(u, v, w)
    half_r = ntf * nft
    zero = half_r == 0
    return np.where(zero, 0.0, 2.0 * half_r / np.where(zero, 1.0, ntt * nff + half_r))


def rogerstanimoto(u, v, w=None):
    nff, nft, ntf, ntt = _counts(u, v, w)
    return 2.0 * (ntf + nft) / (ntt + nff + 2.0 * (ntf + nft))


def russellrao(u, v, w=None):
    ntt = np.sum(u * v if w is None else u * v * w, axis=-1)
    n = float(shape_of(u)[-1]) if w is None else np.sum(w)
    return (n - ntt) / n


def sokalsneath(u, v, w=None):
    nff, nft, ntf, ntt = _counts(u, v, w)
    denom = ntt + 2.0 * (ntf + nft)
    checked = ensure(np.equal(denom, 0), "all_false",
                     "Sokal-Sneath dissimilarity is not defined for vectors that are entirely false.")
    return 2.0 * (ntf + nft) / np.where(checked, 1.0, denom)


KERNELS = {"euclidean": euclidean, "sqeuclidean": sqeuclidean, "cityblock": cityblock, "chebyshev": chebyshev,
           "minkowski": minkowski, "seuclidean": seuclidean, "mahalanobis": mahalanobis,
           "correlation": correlation, "cosine": cosine, "braycurtis": braycurtis, "canberra": canberra,
           "jensenshannon": jensenshannon, "hamming": hamming, "jaccard": jaccard, "dice": dice, "yule": yule,
           "rogerstanimoto": rogerstanimoto, "russellrao": russellrao, "sokalsneath": sokalsneath}

#: The keyword arguments each metric takes in pdist/cdist.
KWARGS = {name: {"w"} for name in KERNELS}
KWARGS.update(minkowski={"p", "w"}, seuclidean={"V"}, mahalanobis={"VI"}, jensenshannon={"base"})

#: Metrics SciPy computes on booleans (``X != 0``) even for float input; ``dice``
#: keeps float input as it is (unless weighted, which this twin does not support).
BOOLEAN = {"yule", "rogerstanimoto", "russellrao", "sokalsneath", "dice"}
