"""``npfunc.scipy.spatial.distance``: ``pdist``, ``cdist``, ``squareform`` and
the distance functions of ``scipy.spatial.distance``, on traced values
(under every transform) and on plain arrays, with SciPy's signatures.

SciPy computes distances in C after ``np.asarray``, which a traced value
cannot go through; these twins compute the same formulas with npfunc's
operations, vectorised over all pairs, so they are differentiable in the
points and in the metric's parameters (``w``, ``V``, ``VI``; the defaults of
``V`` and ``VI``, computed from the points, are differentiated too).

Coincident points: ``euclidean`` (and every metric that is a norm of the
difference) has gradient 0 there, as ``np.linalg.norm`` at 0.  ``pdist``
never compares a point with itself.

>>> import numpy as np, npfunc
>>> from npfunc.scipy.spatial.distance import cdist
>>> x = np.array([[0.0, 0.0], [3.0, 4.0]])
>>> cdist(x, x)
array([[0., 5.],
       [5., 0.]])
>>> npfunc.grad(lambda x: cdist(x, x).sum())(x)   # 0 from the diagonal
array([[-1.2, -1.6],
       [ 1.2,  1.6]])
"""
from __future__ import annotations

import numpy as np
import scipy.spatial.distance as _sd

from ...core import dispatch as _dispatch
from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array, ensure, is_traced
from . import _metrics

__all__ = ["pdist", "cdist", "squareform", "euclidean", "sqeuclidean", "cityblock", "chebyshev", "minkowski",
           "seuclidean", "mahalanobis", "correlation", "cosine", "braycurtis", "canberra", "jensenshannon",
           "hamming", "jaccard", "dice", "yule", "rogerstanimoto", "russellrao", "sokalsneath"]


def _canonical(metric) -> str:
    info = _sd._METRIC_ALIAS.get(metric.lower())
    if info is None:
        raise ValueError(f"Unknown Distance Metric: {metric.lower()}")
    return info.canonical_name


def _double(x):
    return x if dtype_of(x) == np.float64 else x.astype(np.float64)


def _prepare(name, points, kwargs, n, m):
    """The metric's keyword arguments checked and defaulted as SciPy's validators do."""
    unknown = set(kwargs) - _metrics.KWARGS[name]
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {sorted(unknown)}")
    kw = dict(kwargs)
    if kw.get("w") is not None:
        if name == "dice" and dtype_of(points[0]) != np.bool_:
            raise NotImplementedError("npfunc.scipy.spatial.distance: metric 'dice' with w= on non-boolean input "
                                      "is not supported (SciPy's result follows neither of its formulas); pass "
                                      "X != 0")
        kw["w"] = _metrics._weights(as_array(kw["w"]), n)
    else:
        kw.pop("w", None)
    if name == "seuclidean":
        if kw.get("V") is None:
            stacked = points[0] if len(points) == 1 else np.concatenate(points, axis=0)
            kw["V"] = np.var(_double(stacked), axis=0, ddof=1)
        else:
            v = _double(as_array(kw["V"]))
            if ndim_of(v) != 1:
                raise ValueError("Variance vector V must be one-dimensional.")
            if shape_of(v)[0] != n:
                raise ValueError("Variance vector V must be of the same dimension as the vectors on which the "
                                 "distances are computed.")
            kw["V"] = v
    if name == "mahalanobis":
        if kw.get("VI") is None:
            if m <= n:
                raise ValueError(f"The number of observations ({m}) is too small; the covariance matrix is "
                                 f"singular. For observations with {n} dimensions, at least {n + 1} observations "
                                 "are required.")
            stacked = points[0] if len(points) == 1 else np.concatenate(points, axis=0)
            kw["VI"] = np.linalg.inv(_covariance(_double(stacked))).T
        else:
            kw["VI"] = _double(as_array(kw["VI"]))
    if name == "minkowski":
        kw.setdefault("p", 2.0)
    return kw


def _covariance(x):
    """``np.atleast_2d(np.cov(x.T))``: the covariance of the columns of ``x``."""
    centred = x - np.mean(x, axis=0)
    return centred.T @ centred / (shape_of(x)[0] - 1)


def _points(x, name):
    """Points as SciPy's metric sees them: float64, or 0/1 for the boolean metrics."""
    if name in _metrics.BOOLEAN and (name != "dice" or dtype_of(x) == np.bool_):
        return np.not_equal(x, 0).astype(np.float64)
    if name in ("hamming", "jaccard") and dtype_of(x) == np.bool_:
        return x
    return _double(x)


def _pairwise(name, xa, xb, kwargs, m):
    n = shape_of(xa)[1]
    kw = _prepare(name, (xa,) if xb is None else (xa, xb), kwargs, n, m)
    a = _points(xa, name)
    b = a if xb is None else _points(xb, name)
    return _metrics.KERNELS[name](a[:, None, :], b[None, :, :], **kw)


def _callable_pairwise(metric, xa, xb, kwargs):
    from ...api.vmap import vmap

    def row(u):
        return vmap(lambda v: metric(u, v, **kwargs))(xb)

    return _double(vmap(row)(xa))


def _no_out(out, *args):
    if out is not None and is_traced(*args):
        raise TypeError("npfunc.scipy.spatial.distance: out= cannot hold traced values; use the returned array")


def cdist(XA, XB, metric="euclidean", *, out=None, **kwargs):
    """``scipy.spatial.distance.cdist``: the ``(mA, mB)`` distances between the rows
    of ``XA`` and ``XB``; ``metric`` a name or a function of two 1-D arrays (which
    then runs under ``npfunc.vmap`` on traced points)."""
    xa, xb = as_array(XA), as_array(XB)
    if ndim_of(xa) != 2:
        raise ValueError("XA must be a 2-dimensional array.")
    if ndim_of(xb) != 2:
        raise ValueError("XB must be a 2-dimensional array.")
    if shape_of(xa)[1] != shape_of(xb)[1]:
        raise ValueError("XA and XB must have the same number of columns (i.e. feature dimension.)")
    _no_out(out, xa, xb)
    if callable(metric):
        if not is_traced(xa, xb, *kwargs.values()):
            return _sd.cdist(xa, xb, metric, out=out, **kwargs)
        return _callable_pairwise(metric, xa, xb, kwargs)
    if not isinstance(metric, str):
        raise TypeError("2nd argument metric must be a string identifier or a function.")
    result = _pairwise(_canonical(metric), xa, xb, kwargs, shape_of(xa)[0] + shape_of(xb)[0])
    if out is not None:
        out[...] = result
        return out
    return result


def pdist(X, metric="euclidean", *, out=None, **kwargs):
    """``scipy.spatial.distance.pdist``: the condensed distances between the rows of
    ``X`` (pairs ``i < j`` in row order)."""
    x = as_array(X)
    if ndim_of(x) != 2:
        raise ValueError(f"A 2-dimensional array must be passed. (Shape was {tuple(shape_of(x))}).")
    _no_out(out, x)
    m = shape_of(x)[0]
    i, j = np.triu_indices(m, 1)
    if callable(metric):
        if not is_traced(x, *kwargs.values()):
            return _sd.pdist(x, metric, out=out, **kwargs)
        from ...api.vmap import vmap

        return _double(vmap(lambda u, v: metric(u, v, **kwargs))(x[i], x[j]))
    if not isinstance(metric, str):
        raise TypeError("2nd argument metric must be a string identifier or a function.")
    name = _canonical(metric)
    n = shape_of(x)[1]
    kw = _prepare(name, (x,), kwargs, n, m)
    a = _points(x, name)
    result = _metrics.KERNELS[name](a[i], a[j], **kw)  # only the pairs: no self-distances
    if out is not None:
        out[...] = result
        return out
    return result


def squareform(X, force="no", checks=True):
    """``scipy.spatial.distance.squareform``: condensed vector <-> square symmetric
    matrix (a gather, so linear and differentiable)."""
    x = as_array(X)
    s = tuple(shape_of(x))
    if force.lower() == "tomatrix" and len(s) != 1:
        raise ValueError("Forcing 'tomatrix' but input X is not a distance vector.")
    if force.lower() == "tovector" and len(s) != 2:
        raise ValueError("Forcing 'tovector' but input X is not a distance matrix.")
    if len(s) == 1:
        if s[0] == 0:
            return np.zeros((1, 1), dtype_of(x))
        d = int(np.ceil(np.sqrt(s[0] * 2)))
        if d * (d - 1) != s[0] * 2:
            raise ValueError("Incompatible vector size. It must be a binomial coefficient n choose 2 for some "
                             "integer n >= 2.")
        index = np.zeros((d, d), np.intp)
        i, j = np.triu_indices(d, 1)
        index[i, j] = index[j, i] = np.arange(s[0])
        return np.where(np.eye(d, dtype=bool), np.zeros((), dtype_of(x)), x[index])
    if len(s) == 2:
        if s[0] != s[1]:
            raise ValueError("The matrix argument must be square.")
        if checks:
            x = _checked_matrix(x)
        d = s[0]
        if d <= 1:
            return np.zeros((0,), dtype_of(x))
        i, j = np.triu_indices(d, 1)
        return x[i, j]
    raise ValueError(f"The first argument must be one or two dimensional array. A {len(s)}-dimensional array is "
                     "not permitted")


def _checked_matrix(x):
    """SciPy's ``is_valid_dm(X, throw=True)``: symmetric with a zero diagonal."""
    asym = ensure(np.not_equal(x, np.swapaxes(x, 0, 1)), "all_false", "Distance matrix 'X' must be symmetric.")
    diag = ensure(np.not_equal(np.diagonal(x), 0), "all_false", "Distance matrix 'X' diagonal must be zero.")
    return np.where(np.any(asym) | np.any(diag), x, x)  # the checks stay part of a recorded computation


# ---- the distance functions between two vectors ---------------------------------------------------

def _vector(u, name):
    u = as_array(u)
    if ndim_of(u) > 1:
        u = np.squeeze(u)
        if ndim_of(u) > 1:
            raise ValueError("Input vector should be 1-D.")
    return np.atleast_1d(u)


def _pair(name, u, v, **kw):
    u, v = _vector(u, name), _vector(v, name)
    n = shape_of(u)[0]
    if name in ("seuclidean", "mahalanobis"):
        key = "V" if name == "seuclidean" else "VI"
        kw[key] = _double(as_array(kw[key]))
    elif kw.get("w") is not None:
        kw["w"] = _metrics._weights(as_array(kw["w"]), n)
    else:
        kw.pop("w", None)
    if name in ("hamming", "jaccard", "dice", "russellrao", "yule", "rogerstanimoto", "sokalsneath"):
        a = u if dtype_of(u) == np.bool_ and name in ("hamming", "jaccard") else u.astype(np.float64)
        b = v if dtype_of(v) == np.bool_ and name in ("hamming", "jaccard") else v.astype(np.float64)
    else:
        a, b = _double(u), _double(v)
    return _metrics.KERNELS[name](a, b, **kw)


def euclidean(u, v, w=None):
    """Euclidean distance ``||u - v||`` (gradient 0 at ``u == v``)."""
    return _pair("euclidean", u, v, w=w)


def sqeuclidean(u, v, w=None):
    """Squared Euclidean distance."""
    return _pair("sqeuclidean", u, v, w=w)


def cityblock(u, v, w=None):
    """City block (Manhattan) distance."""
    return _pair("cityblock", u, v, w=w)


def chebyshev(u, v, w=None):
    """Chebyshev distance ``max |u - v|`` (ties split the gradient equally)."""
    return _pair("chebyshev", u, v, w=w)


def minkowski(u, v, p=2, w=None):
    """Minkowski ``p``-distance (gradient 0 at ``u == v``)."""
    if p <= 0:
        raise ValueError("p must be greater than 0")
    return _pair("minkowski", u, v, p=p, w=w)


def seuclidean(u, v, V):
    """Standardized Euclidean distance with component variances ``V``."""
    return _pair("seuclidean", u, v, V=V)


def mahalanobis(u, v, VI):
    """Mahalanobis distance ``sqrt((u - v) VI (u - v))``."""
    return _pair("mahalanobis", u, v, VI=VI)


def correlation(u, v, w=None, centered=True):
    """Correlation distance ``1 - corr(u, v)``."""
    if dtype_of(as_array(u)).kind == "c" or dtype_of(as_array(v)).kind == "c":
        raise TypeError("`u` and `v` must be real.")
    return _pair("correlation", u, v, w=w, centered=centered)


def cosine(u, v, w=None):
    """Cosine distance ``1 - u.v / (|u| |v|)``."""
    return correlation(u, v, w=w, centered=False)


def braycurtis(u, v, w=None):
    """Bray-Curtis dissimilarity."""
    return _pair("braycurtis", u, v, w=w)


def canberra(u, v, w=None):
    """Canberra distance (0/0 terms count as 0)."""
    return _pair("canberra", u, v, w=w)


def jensenshannon(p, q, base=None, *, axis=0, keepdims=False):
    """Jensen-Shannon distance between probability vectors along ``axis``."""
    p, q = np.moveaxis(_double(as_array(p)), axis, -1), np.moveaxis(_double(as_array(q)), axis, -1)
    out = _metrics.jensenshannon(p, q, base=base)
    return np.expand_dims(out, axis) if keepdims else out


def hamming(u, v, w=None):
    """Fraction of differing entries (no derivative in the points)."""
    u, v = _vector(u, "hamming"), _vector(v, "hamming")
    if tuple(shape_of(u)) != tuple(shape_of(v)):
        raise ValueError("The 1d arrays must have equal lengths.")
    return _pair("hamming", u, v, w=w)


def jaccard(u, v, w=None):
    """Jaccard-Needham dissimilarity (no derivative in the points)."""
    return _pair("jaccard", u, v, w=w)


def dice(u, v, w=None):
    """Dice dissimilarity."""
    return _pair("dice", u, v, w=w)


def yule(u, v, w=None):
    """Yule dissimilarity."""
    return _pair("yule", u, v, w=w)


def rogerstanimoto(u, v, w=None):
    """Rogers-Tanimoto dissimilarity."""
    return _pair("rogerstanimoto", u, v, w=w)


def russellrao(u, v, w=None):
    """Russell-Rao dissimilarity."""
    return _pair("russellrao", u, v, w=w)


def sokalsneath(u, v, w=None):
    """Sokal-Sneath dissimilarity."""
    return _pair("sokalsneath", u, v, w=w)


for _name in __all__:  # conversion errors in SciPy's versions name these twins
    _target = getattr(_sd, _name, None)
    _code = getattr(getattr(_target, "__wrapped__", _target), "__code__", None)
    if _code is not None and getattr(_dispatch, "TWINS", None) is not None:
        _dispatch.TWINS[_code] = f"npfunc.scipy.spatial.distance.{_name}"

from . import _samples  # noqa: E402,F401  (registry samples of the twins)

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
