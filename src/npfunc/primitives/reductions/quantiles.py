"""Order statistics: ``median``, ``quantile``, ``percentile`` (every
``method`` NumPy accepts, and ``weights=`` with ``'inverted_cdf'``) and
their nan-versions, built on ``sort`` (a primitive differentiable through
its permutation) and gathers.

Derivatives flow to the order statistics that are interpolated: the
``linear`` quantile between sorted entries ``a[k]`` and ``a[k+1]`` with
weight ``g`` passes ``1 - g`` of the cotangent to the entry that sorts to
``a[k]`` and ``g`` to the one at ``a[k+1]``; the discontinuous methods
(``lower``, ``nearest``, ``inverted_cdf``, ...) pass it whole to the chosen
entry; ``weights`` select an entry and carry no derivative.  A traced ``q``
is differentiable where the method interpolates (the slope between the two
order statistics), and batchable.  At ties the stable sort order decides
which of the equal entries receives the derivative (as ``np.sort`` does).

Values are NumPy's bit for bit: the virtual indices, the ``gamma`` weights
and the two-sided ``lerp`` are NumPy's formulas in NumPy's dtypes (a Python
``q`` promotes weakly).  A slice holding a NaN gives NaN (a zero
derivative); the nan-versions drop NaNs per slice, vectorised over slices.
One dtype NumPy takes from the data: a 0-d quantile of float32 data with a
float64 array ``q`` is float64, except that a NaN slice returns the NaN
entry itself as float32.  npfunc follows that under grad and jvp; under
vmap and jit (no single value to look at) the result stays float64.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ...core.errors import UnsupportedOperationError
from ...core.primitive import Composite, Primitive, Sample
from ...core.tracer import Tracer
from ...core.zeros import zero
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import astype, where
from ..families import composite, example_value, normalize_axes, numpy_scalars
from ..data_dependent import check, peek
from ..indexing.gather import getitem, index_add, take, take_along_axis
from ..sampling import FLOATS, array
from ..shape.basic import moveaxis, reshape
from ..sorting import argsort, sort

# ---- the reduced axis, moved to the front (as NumPy's _ureduce and _quantile do) ----------


def _operand(x):
    return x if isinstance(x, Tracer) else np.asanyarray(x)


def _front(a, axis, fn_name):
    """``(x, axes, nd)``: ``a`` with the reduced axes merged into axis 0 and the
    kept ones after it, in their order; ``axes`` the reduced axes (None: all)."""
    nd = ndim_of(a)
    if axis is None:
        return np.ravel(a), None, nd
    axes = normalize_axes(axis, nd, fn_name)
    if len(axes) == 1:
        return moveaxis(a, axes[0], 0), axes, nd
    keep = [i for i in range(nd) if i not in axes]
    x = moveaxis(a, keep, list(range(len(keep))))
    x = reshape(x, tuple(shape_of(x)[:len(keep)]) + (-1,))
    return moveaxis(x, -1, 0), axes, nd


def _keepdims(r, a_shape, axes, nd, lead: int):
    """``r`` (``lead`` leading q axes, then the kept axes) with the reduced axes back as 1s."""
    shape = tuple(shape_of(r)[:lead]) + tuple(
        1 if axes is None or i in axes else a_shape[i] for i in range(nd))
    return reshape(r, shape)


# ---- selected order statistics (np.argpartition) ------------------------------------------


def _order_impl(x, *, ranks, axis):
    index = np.take(np.argpartition(x, ranks, axis=axis), ranks, axis=axis)
    return np.take_along_axis(x, index, axis=axis), index


def _order_batch(vals, dims, *, ranks, axis):
    (x,), (d,) = vals, dims
    return _order.bind(x, ranks=ranks, axis=axis + (axis >= d)), (d, d)


def _order_jvp(primals, tangents, out, *, ranks, axis):
    return take_along_axis(tangents[0], out[1], axis), zero


def _order_vjp(g, primals, out, needs, *, ranks, axis):
    if g[0] is zero:
        return (zero,)
    index = out[1]
    shape = tuple(shape_of(index))
    grid = tuple(index if i == axis else np.arange(k).reshape((1,) * i + (k,) + (1,) * (len(shape) - i - 1))
                 for i, k in enumerate(shape))
    return (index_add(g[0], grid, tuple(shape_of(primals[0]))),)


def _order_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (7,), dt), ranks=(3,), axis=0),
                Sample(array(rng, (5, 4), dt), ranks=(0, 2, 4), axis=0)]
    out += [Sample(array(rng, (3, 6)), ranks=(1, 5), axis=1, label="axis 1"),
            Sample(np.array([2.0, 1.0, 2.0, 3.0, 2.0]), ranks=(1, 2), axis=0, kink=True, label="ties"),
            Sample(np.array([1.0, np.nan, 0.5]), ranks=(0, 2), axis=0, kink=True, label="nan last")]
    return out


_order = Primitive("order_statistics", _order_impl, jvp=_order_jvp, vjp=_order_vjp, batch=_order_batch,
                   samples=_order_samples, multiple_results=True,
                   notes="(values, positions) of the order statistics of static ranks along an axis, "
                         "by one np.argpartition (O(n)); the derivative goes to those positions (at "
                         "ties one of the equal entries)")


class _Sorted:
    """The order statistics of ``x`` along axis 0 that a computation reads.

    With indices known in advance (plain arrays) only those ranks are
    selected (``np.argpartition``); traced indices (a batched ``q``) read a
    full sort.  ``take(index)`` gathers ranks (``safe``: NaNs read as 0),
    ``has_nan`` marks the slices holding a NaN.
    """

    def __init__(self, x, *indices):
        self.n = n = shape_of(x)[0]
        self.inexact = dtype_of(x).kind in "fc"
        if any(isinstance(i, Tracer) for i in indices) or n == 0:
            self.values, self.ranks = sort(x, axis=0), None
        else:
            wanted = set()
            for i in indices:
                wanted.update(int(r) % n for r in np.unique(np.asarray(i)))
            self.ranks = tuple(sorted(wanted))
            self.values = _order.bind(x, ranks=self.ranks, axis=0)[0]
        v = self.values
        self.has_nan = np.any(np.isnan(x), axis=0) if self.inexact else None
        self.safe_values = where(np.isnan(v), 0, v) if self.inexact else v

    def _position(self, index):
        if self.ranks is None:
            return index
        lookup = np.zeros(self.n, np.intp)
        lookup[list(self.ranks)] = np.arange(len(self.ranks))
        return lookup[np.asarray(index) % self.n]

    def take(self, index, safe=False):
        return take(self.safe_values if safe else self.values, self._position(index), axis=0)


# ---- median --------------------------------------------------------------------------------


def _median_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5,), dt)), Sample(array(rng, (4, 6), dt), 1)]
    x = array(rng, (3, 4, 2))
    out += [Sample(x, 0, label="axis 0"), Sample(x, (0, 2), label="two axes"),
            Sample(x, -1, None, False, True, label="keepdims"), Sample(x, None, None, False, True),
            Sample(np.array([[1.0, np.nan, 3.0], [2.0, 0.5, 4.0]]), 1, kink=True, label="nan slice"),
            Sample(np.array([3, 1, 4, 1]), label="integers"),
            Sample(np.array([2.0, 1.0, 2.0, 3.0]), kink=True, label="ties")]
    return out


def _nan_slices(s, result):
    """NaN where the slice holds one, as NumPy's _median_nancheck;
    the derivative there is zero.  ``s``: a ``_Sorted``."""
    if not s.inexact or s.n == 0:
        return result
    return where(s.has_nan, np.nan, result)  # the primitive: a 0-d result stays a scalar


@composite(np.median, samples=_median_samples, scalars=True)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``np.median``: the middle order statistic (the mean of the two middle
    ones for an even count), differentiable through the sort.

    >>> import numpy as np, npfunc
    >>> npfunc.grad(np.median)(np.array([3.0, 1.0, 2.0, 5.0]))
    array([0.5, 0. , 0.5, 0. ])
    """
    _no_out("median", out)
    a = _operand(a)
    x, axes, nd = _front(a, axis, "median")
    n = shape_of(x)[0]
    middle = np.array([n // 2] if n % 2 else [n // 2 - 1, n // 2], np.intp)
    s = _Sorted(x, middle[middle >= 0])
    r = np.mean(s.take(middle) if n else getitem(x, slice(0, 0)), axis=0)
    r = _nan_slices(s, r)
    return _keepdims(r, shape_of(a), axes, nd, 0) if keepdims else r


def _no_out(name, out):
    if out is not None:
        raise UnsupportedOperationError(f"np.{name}: argument 'out' is not supported on traced values; "
                                        f"assign the result instead: y = np.{name}(...)")


# ---- the virtual index of each method (NumPy's formulas) ------------------------------------


def _floor(x):
    return np.floor(x)


def _boundaries(index, condition):
    """NumPy's _discrete_interpolation_to_boundaries: the previous or next integer."""
    previous = _floor(index)
    gamma = index - previous
    res = astype(where(condition(gamma, index), previous, previous + 1), np.intp)
    return where(res < 0, 0, res)


def _virtual(n, q, alpha, beta):
    return n * q + (alpha + q * (1 - alpha - beta)) - 1


_METHODS = {
    # name: (virtual index, gamma fix or None for an integer index)
    "inverted_cdf": (lambda n, q: _boundaries(n * q - 1, lambda g, i: g == 0), None),
    "averaged_inverted_cdf": (lambda n, q: n * q - 1, lambda g, i: where(g == 0, 0.5, 1.0)),
    "closest_observation": (lambda n, q: _boundaries(
        n * q - 1 - 0.5, lambda g, i: (g == 0) & (_floor(i) % 2 == 1)), None),
    "interpolated_inverted_cdf": (lambda n, q: _virtual(n, q, 0, 1), lambda g, i: g),
    "hazen": (lambda n, q: _virtual(n, q, 0.5, 0.5), lambda g, i: g),
    "weibull": (lambda n, q: _virtual(n, q, 0, 0), lambda g, i: g),
    "linear": (lambda n, q: (n - 1) * q, lambda g, i: g),
    "median_unbiased": (lambda n, q: _virtual(n, q, 1 / 3.0, 1 / 3.0), lambda g, i: g),
    "normal_unbiased": (lambda n, q: _virtual(n, q, 3 / 8.0, 3 / 8.0), lambda g, i: g),
    "lower": (lambda n, q: astype(_floor((n - 1) * q), np.intp), None),
    "higher": (lambda n, q: astype(np.ceil((n - 1) * q), np.intp), None),
    "midpoint": (lambda n, q: 0.5 * (_floor((n - 1) * q) + np.ceil((n - 1) * q)),
                 lambda g, i: where(i % 1 == 0, 0.0, 0.5)),
    "nearest": (lambda n, q: astype(np.around((n - 1) * q), np.intp), None),
}


def _indexes(vi, n, inexact):
    """NumPy's _get_indexes: the two neighbours of each virtual index, clamped."""
    previous = _floor(vi)
    nxt = previous + 1
    above = vi >= n - 1
    previous, nxt = where(above, -1, previous), where(above, -1, nxt)
    below = vi < 0
    previous, nxt = where(below, 0, previous), where(below, 0, nxt)
    if inexact:
        nan = np.isnan(vi)
        previous, nxt = where(nan, -1, previous), where(nan, -1, nxt)
    return astype(previous, np.intp), astype(nxt, np.intp)


def _lerp(a, b, t, t_weak):
    """NumPy's two-sided lerp; ``t_weak``: t stands for a Python float (weak promotion)."""
    diff = b - a
    if t_weak:  # NumPy uses float(t): promoted weakly, so float data keeps its dtype and integer
        dt = np.result_type(dtype_of(diff), 0.5)  # data is interpolated in float64 (as NumPy's result)
        lo = a + diff * astype(t, dt)
        hi = b - diff * astype(1 - t, dt)
    else:
        lo = a + diff * t
        hi = b - diff * (1 - t)
    out = where(t >= 0.5, hi, lo)
    return out if dtype_of(out) == dtype_of(lo) else astype(out, dtype_of(lo))


# ---- quantile --------------------------------------------------------------------------------


def _gather(s, index, per_slice: bool):
    """``s[index]`` along axis 0: one index per q (``take``) or per q and slice."""
    if not per_slice:
        return take(s, index, axis=0)
    rest = tuple(shape_of(s)[1:])
    qshape = tuple(shape_of(index)[:ndim_of(index) - len(rest)])
    flat = reshape(index, (math.prod(qshape),) + rest)
    return reshape(take_along_axis(s, flat, 0), qshape + rest)


def _valid_q(q, percent: bool):
    what = ("Percentiles must be in the range [0, 100]" if percent
            else "Quantiles must be in the range [0, 1]")
    check(q, "unit_interval", what)


def _weights_like(weights, a, axes):
    """NumPy's _weights_are_valid: weights of a's shape, or along ``axes``."""
    w = _operand(weights)
    a_shape, w_shape = tuple(shape_of(a)), tuple(shape_of(w))
    if a_shape != w_shape:
        if axes is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if w_shape != tuple(a_shape[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along specified axis.")
        w = np.transpose(w, tuple(np.argsort(axes)))
        w = reshape(w, tuple(s if ax in axes else 1 for ax, s in enumerate(a_shape)))
    return w


def _order_statistics(x, q, method, weak_q, weights, nan_policy):
    """The quantiles of ``x`` along axis 0 (NumPy's _quantile, vectorised over slices).

    ``nan_policy``: "propagate" (a NaN makes the slice NaN) or "omit" (the
    nan-functions: NaNs are dropped per slice)."""
    n = shape_of(x)[0]
    inexact = dtype_of(x).kind in "fc"
    omit = nan_policy == "omit" and inexact
    if weights is not None:
        return _weighted(x, q, weights, omit)
    try:
        virtual_index, fix_gamma = _METHODS[method]
    except KeyError:
        raise ValueError(f"{method!r} is not a valid method. Use one of: {_METHODS.keys()}") from None
    if omit:
        return _nan_order_statistics(x, q, virtual_index, fix_gamma, method, weak_q)
    rest = tuple(shape_of(x)[1:])
    vi = virtual_index(n, q)
    # NaN entries never reach a result that is not NaN (they sort last, or the
    # slice's result is NaN anyway): reading zeros in their place (safe=True)
    # keeps 0 * NaN out of the derivative in q.
    if fix_gamma is None or (method == "linear" and dtype_of(vi).kind in "iu"):
        s = _Sorted(x, vi)
        result = s.take(vi, safe=True)
    else:
        previous, nxt = _indexes(vi, n, inexact)
        gamma = astype(fix_gamma(vi - previous, vi), dtype_of(vi))
        if not weak_q:
            gamma = reshape(gamma, tuple(shape_of(vi)) + (1,) * len(rest))
        s = _Sorted(x, previous, nxt)
        result = _lerp(s.take(previous, safe=True), s.take(nxt, safe=True), gamma, weak_q)
    if not inexact:
        return result
    result = _nan_slices(s, result)
    if ndim_of(result) == 0 and dtype_of(result) != dtype_of(x):
        # NumPy returns the NaN entry itself for a 0-d result, in the data's dtype.
        # The dtype then depends on the data: known under grad/jvp, not under vmap/jit.
        has_nan = peek(s.has_nan)
        if has_nan is not None and has_nan:
            result = astype(result, dtype_of(x))
    return result


def _nan_order_statistics(x, q, virtual_index, fix_gamma, method, weak_q):
    """The nan-functions: each slice's quantiles among its non-NaN entries
    (one sort; per-slice counts and indices)."""
    n = shape_of(x)[0]
    s = sort(x, axis=0)
    picked = where(np.isnan(s), 0, s)
    rest = tuple(shape_of(s)[1:])
    qn = ndim_of(q)
    # the count of non-NaN entries of each slice, typed as NumPy's Python int would be
    valid = np.sum(np.logical_not(np.isnan(s)), axis=0)
    count = reshape(astype(valid, np.result_type(dtype_of(q), 1)), (1,) * qn + rest)
    q = reshape(q, tuple(shape_of(q)) + (1,) * len(rest))
    vi = virtual_index(count, q)
    last = astype(reshape(valid, (1,) * qn + rest), np.intp) - 1
    if fix_gamma is None or (method == "linear" and dtype_of(vi).kind in "iu"):
        result = _gather(picked, _clamp(where(vi == -1, last, vi), n), True)
    else:
        previous, nxt = _indexes(vi, count, True)
        gamma = astype(fix_gamma(vi - previous, vi), dtype_of(vi))
        # -1 means the last entry of the slice once NaNs are dropped
        previous = _clamp(where(previous == -1, last, previous), n)
        nxt = _clamp(where(nxt == -1, last, nxt), n)
        result = _lerp(_gather(picked, previous, True), _gather(picked, nxt, True), gamma, weak_q)
    empty = reshape(valid == 0, (1,) * qn + rest)  # an all-NaN slice gives NaN
    return where(empty, np.nan, result)


def _clamp(index, n):
    return np.clip(index, 0, builtins.max(n - 1, 0))


def _weighted(x, q, w, omit):
    """'inverted_cdf' with weights: the first entry whose cumulative weight reaches q."""
    n = shape_of(x)[0]
    order = argsort(x, axis=0)
    s = take_along_axis(x, order, 0)
    if tuple(shape_of(w)) == tuple(shape_of(x)):
        w = take_along_axis(w, order, 0)
    else:
        w = take(np.ravel(w), order, axis=0)
    if omit:  # NaN entries weigh nothing
        w = where(np.isnan(s), 0, w)
    cdf = np.cumsum(w, axis=0, dtype=np.float64)
    total = getitem(cdf, slice(-1, None))
    cdf = cdf / total
    check(np.logical_not(np.isnan(getitem(cdf, -1))), "true", "Weights included NaN, inf or were all zero.")
    if dtype_of(q).kind == "f":
        cdf = astype(cdf, dtype_of(q))
    cdf = where(cdf == 0, -1, cdf)
    rest = tuple(shape_of(s)[1:])
    qn = ndim_of(q)
    below = reshape(cdf, (n,) + (1,) * qn + rest) < reshape(q, (1,) + tuple(shape_of(q)) + (1,) * len(rest))
    index = np.minimum(astype(np.sum(below, axis=0), np.intp), n - 1)
    result = _gather(s, index, True)
    if dtype_of(x).kind in "fc" and not omit and n:
        return where(np.isnan(getitem(s, -1)), np.nan, result)
    return result


def _quantile_front(name, a, q, axis, out, method, keepdims, weights, percent, nan_policy):
    _no_out(name, out)
    a = _operand(a)
    if dtype_of(a).kind == "c":
        raise TypeError("a must be an array of real numbers")
    weak_q = type(q) in (int, float)
    q = _operand(q)
    if percent:
        q = np.true_divide(q, 100)
        q = q if isinstance(q, Tracer) else np.asanyarray(q)
    _valid_q(q, percent)
    x, axes, nd = _front(a, axis, name)
    if weights is not None:
        if method != "inverted_cdf":
            raise ValueError(f"Only method 'inverted_cdf' supports weights. Got: {method}.")
        w = _weights_like(weights, a, axes)
        check(w, "nonnegative", "Weights must be non-negative.")
        if tuple(shape_of(w)) == tuple(shape_of(a)):
            weights = _front(w, axis, name)[0]
        else:
            weights = _along_front(w, axes, nd)
    if ndim_of(q) > 2:
        raise ValueError("q must be a scalar or 1d")
    if nan_policy == "omit" and math.prod(shape_of(a)) == 0:
        return np.nanmean(a, axis, keepdims=keepdims)
    r = _order_statistics(x, q, method, weak_q, weights, nan_policy)
    if weights is not None:
        # NumPy's weighted path returns an array, a 0-d one included, but np.quantile a scalar
        # when a NaN reached it: the example value decides, as NumPy's values do
        from ..indexing.aliasing import array_result

        r = _keepdims(r, shape_of(a), axes, nd, ndim_of(q)) if keepdims else r
        example = example_value(a)
        nan = (nan_policy == "propagate" and example is not None and dtype_of(example).kind in "fc"
               and bool(np.isnan(example).any()))
        return numpy_scalars(r) if nan else array_result(r)
    return _keepdims(r, shape_of(a), axes, nd, ndim_of(q)) if keepdims else numpy_scalars(r)


def _along_front(w, axes, nd):
    """Weights given along the reduced ``axes`` (1s elsewhere), merged to match ``_front``."""
    sizes = [shape_of(w)[i] for i in axes]
    w = reshape(w, (math.prod(sizes),)) if len(axes) > 1 else reshape(w, (sizes[0],))
    return reshape(w, (shape_of(w)[0],) + (1,) * (nd - len(axes)))


def _quantile_samples(percent: bool):
    scale = 100.0 if percent else 1.0

    def make(rng):
        out = []
        for dt in FLOATS:
            out += [Sample(array(rng, (7,), dt), dt(0.3 * scale)),
                    Sample(array(rng, (4, 5), dt), np.array([0.1, 0.55, 0.9], dt) * dt(scale), 1)]
        x = array(rng, (3, 6))
        for method in _METHODS:
            out.append(Sample(x, np.array([0.05, 0.37, 0.52, 0.94]) * scale, 1, method=method, label=method))
        out += [
            Sample(x, 0.25 * scale, None, label="python q"),
            Sample(array(rng, (6,), np.float32), 0.3 * scale, label="python q, float32"),
            Sample(x, np.float64(0.6 * scale), 0, None, False, "hazen", True, label="keepdims"),
            Sample(array(rng, (2, 3, 4)), np.array([0.2, 0.7]) * scale, (0, 2), label="two axes"),
            Sample(np.array([[1.0, np.nan, 3.0, 0.0], [2.0, 0.5, 4.0, 1.0]]), np.float64(0.4 * scale), 1,
                   kink=True, label="nan slice (NaN value, zero derivative)"),
            Sample(np.array([5, 1, 4, 2, 3]), np.float64(0.3 * scale), label="integer a"),
            Sample(np.array([5, 1, 4, 2, 3]), 0.3 * scale, method="lower", label="integer a, lower"),
            Sample(x, np.array([[0.13, 0.27], [0.81, 0.9]]) * scale, 1, label="2-d q"),
        ]
        return out

    return make


@composite(np.quantile, samples=_quantile_samples(False))
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
             weights=None):
    """``np.quantile`` with every ``method`` (and ``weights=`` for ``'inverted_cdf'``),
    differentiable in ``a`` and, where the method interpolates, in ``q``.

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda x: np.quantile(x, 0.25))(np.array([4.0, 1.0, 3.0, 2.0, 5.0]))
    array([0., 0., 0., 1., 0.])
    """
    return _quantile_front("quantile", a, q, axis, out, method, keepdims, weights, False, "propagate")


@composite(np.percentile, samples=_quantile_samples(True))
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
               weights=None):
    """``np.percentile``: ``np.quantile`` with ``q`` in percent."""
    return _quantile_front("percentile", a, q, axis, out, method, keepdims, weights, True, "propagate")


def _nan_quantile_samples(percent: bool):
    scale = 100.0 if percent else 1.0

    def make(rng):
        x = array(rng, (4, 6))
        x[0, 2] = x[1, 0] = x[1, 5] = x[3, 1] = np.nan
        out = [Sample(x, np.float64(0.3 * scale), 1), Sample(x, np.array([0.1, 0.6]) * scale, 0),
               Sample(x.astype(np.float32), 0.7 * scale, 1, label="float32, python q"),
               Sample(x, 0.45 * scale, label="flattened"),
               Sample(x, np.float64(0.45 * scale), 1, None, False, "nearest", True,
                      label="nearest, keepdims"),
               Sample(x, np.array([0.02, 0.43, 0.95]) * scale, -1, method="weibull", label="weibull"),
               Sample(np.array([[np.nan, np.nan], [1.0, 2.0]]), np.float64(0.4 * scale), 1, kink=True,
                      label="all-NaN slice (NaN value, zero derivative)"),
               Sample(array(rng, (5,)), np.float64(0.2 * scale), label="no NaN")]
        return out

    return make


@composite(np.nanquantile, samples=_nan_quantile_samples(False))
def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=np._NoValue, *,
                weights=None):
    """``np.nanquantile``: quantiles of the non-NaN entries of each slice (NaNs
    get a zero derivative; an all-NaN slice gives NaN)."""
    keepdims = False if keepdims is np._NoValue else keepdims
    return _quantile_front("nanquantile", a, q, axis, out, method, keepdims, weights, False, "omit")


@composite(np.nanpercentile, samples=_nan_quantile_samples(True))
def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=np._NoValue, *,
                  weights=None):
    """``np.nanpercentile``: ``np.nanquantile`` with ``q`` in percent."""
    keepdims = False if keepdims is np._NoValue else keepdims
    return _quantile_front("nanpercentile", a, q, axis, out, method, keepdims, weights, True, "omit")


def _weighted_samples(nan_version: bool):
    def make(rng):
        x = array(rng, (3, 5))
        out = [Sample(x, np.array([0.2, 0.5, 0.9]), rng.uniform(0.1, 2.0, (3, 5)), axis=1),
               Sample(array(rng, (6,), np.float32), np.float32(0.5), np.full(6, 0.5), label="float32"),
               Sample(np.array([1.0, np.nan, 3.0, 2.0]), np.float64(0.7), np.ones(4), kink=True, label="nan")]
        if not nan_version:  # NumPy's nanquantile fails on weights along an axis (an IndexError)
            out += [Sample(x, np.float64(0.4), rng.uniform(0.1, 2.0, 5), axis=1, label="weights along axis"),
                    Sample(x, np.float64(0.4), np.array([1.0, 0.0, 2.0]), axis=0, argnums=(0, 1),
                           label="a zero weight")]
        return out

    return make


for _name, _fn in (("quantile", np.quantile), ("nanquantile", np.nanquantile)):
    # weights= is keyword-only in NumPy: the weighted method is tested through a keyword call.
    Composite(f"np.{_name}(weights=)",
              (lambda f: lambda a, q, w, **params: f(a, q, weights=w, method="inverted_cdf", **params))(_fn),
              samples=_weighted_samples(_name == "nanquantile"))


# ---- nanmedian -----------------------------------------------------------------------------------


def _nanmedian_samples(rng):
    x = array(rng, (4, 5))
    x[0, 1] = x[2, 0] = x[2, 3] = np.nan
    return [Sample(x, 1), Sample(x, 0), Sample(x.astype(np.float32), 1, label="float32"),
            Sample(x, label="flattened"), Sample(x, (0, 1), label="all axes"),
            Sample(x, 1, None, False, True, label="keepdims"),
            Sample(np.array([[np.nan, np.nan, np.nan], [1.0, 3.0, 2.0]]), 1, kink=True,
                   label="all-NaN slice (NaN value, zero derivative)"),
            Sample(np.array([np.nan, 2.0, 1.0, 4.0]), label="1-d"),
            Sample(array(rng, (3, 4)), -1, label="no NaN"),
            Sample(np.array([[3, 1, 2], [0, 5, 4]]), 1, label="integers")]


@composite(np.nanmedian, samples=_nanmedian_samples, scalars=True)
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=np._NoValue):
    """``np.nanmedian``: the median of the non-NaN entries of each slice (NaNs
    get a zero derivative; an all-NaN slice gives NaN)."""
    _no_out("nanmedian", out)
    keepdims = False if keepdims is np._NoValue else keepdims
    a = _operand(a)
    if dtype_of(a).kind not in "fc":
        return median(a, axis, keepdims=keepdims)
    if math.prod(shape_of(a)) == 0:
        return np.nanmean(a, axis, keepdims=keepdims)
    x, axes, nd = _front(a, axis, "nanmedian")
    n = shape_of(x)[0]
    s = sort(x, axis=0)
    valid = np.sum(np.logical_not(np.isnan(s)), axis=0)
    low = _gather(s, _clamp(reshape((valid - 1) // 2, (1,) + tuple(shape_of(valid))), n), True)
    high = _gather(s, _clamp(reshape(valid // 2, (1,) + tuple(shape_of(valid))), n), True)
    low, high = getitem(low, 0), getitem(high, 0)
    pair = (low + high) / 2
    # NumPy: along an axis shorter than 600 of an n-d array, a masked median
    # (always (low + high) / 2); otherwise the median of each compacted slice.
    masked = axis is not None and ndim_of(a) > 1 and (axes is None or len(axes) < nd) and n < 600
    r = pair if masked else where(valid % 2 == 1, low, pair)
    r = where(valid == 0, np.nan, r)
    r = r if dtype_of(r) == dtype_of(pair) else astype(r, dtype_of(pair))
    return _keepdims(r, shape_of(a), axes, nd, 0) if keepdims else r


__all__ = ["median", "quantile", "percentile", "nanquantile", "nanpercentile", "nanmedian"]
