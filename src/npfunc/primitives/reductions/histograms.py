"""Counting: ``bincount`` (a primitive, linear in its weights), ``digitize``,
``histogram_bin_edges``, ``histogram``, ``histogram2d`` and ``histogramdd``.

What carries a derivative:

* counts never do (integers, piecewise constant in the data);
* weighted counts are linear in the weights (``bincount``'s cotangent for
  the weights is the output cotangent gathered at ``x``);
* bin edges computed from the data range are differentiable through the
  data's min and max (``linspace`` between them), and edges computed from a
  traced ``range`` through it;
* ``density=True`` divides by the total and the bin widths, so the density
  is differentiable in the weights and in the edges.

Output shapes must not depend on values under vmap and jit: ``bins`` as an
integer or an array (traced or not) is fine, a string estimator (``'auto'``,
``'fd'``, ...) picks the number of bins from the data, which works under
grad and jvp (the count is piecewise constant) and raises a clear error
under vmap and jit.  ``bincount``'s length is ``max(x) + 1``: under vmap the
batch elements must agree on it (``minlength=`` makes them).

Values are NumPy's: the bin of each entry comes from ``searchsorted`` on
the edges (what NumPy's uniform-bin arithmetic is corrected to), weighted
sums use NumPy's order of summation (``bincount`` per block of 65536, or
sorted cumulative sums for explicit edges).
"""
from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from ...core.context import describe_stack
from ...core import dispatch
from ...core.dispatch import implements
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Composite, Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import materialize_front
from ..creation import linspace
from ..elementwise.arithmetic import astype
from ..families import composite, fit_cotangent
from ..data_dependent import check, concrete
from ..indexing.gather import getitem, take, take_along_axis
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays, reshape
from ..sorting import argsort

BLOCK = 65536  # NumPy's histogram works (and sums weights) in blocks of this size

# ---- bincount ---------------------------------------------------------------------------


def _bincount_rows(x, w, minlength, batch_ndim):
    x = np.asarray(x)
    lead = x.shape[:batch_ndim]
    rows = math.prod(lead)
    x2 = x.reshape(rows, -1).astype(np.intp, casting="safe")
    if x2.size and x2.min() < 0:
        raise ValueError("'list' argument must have no negative elements")
    lengths = np.maximum(x2.max(axis=1) + 1 if x2.shape[1] else np.zeros(rows, np.intp), minlength)
    if rows and (lengths != lengths[0]).any():
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.bincount under vmap: the batch elements need results of "
            f"different lengths ({sorted(set(lengths.tolist()))}: the largest value + 1). Pass "
            "minlength= at least the largest value + 1, so that every result has that length.")
    length = int(lengths[0]) if rows else int(minlength)
    flat = (x2 + length * np.arange(rows)[:, None]).ravel()
    weights = None if w is None else np.asarray(w).reshape(-1)
    out = np.bincount(flat, weights, minlength=rows * length)
    return out.reshape(lead + (length,))


def _bincount_impl(x, *weights, minlength, batch_ndim):
    w = weights[0] if weights else None
    if batch_ndim == 0:
        return np.bincount(x, w, minlength=minlength)
    return _bincount_rows(x, w, minlength, batch_ndim)


def _bincount_jvp(primals, tangents, out, *, minlength, batch_ndim):
    if len(primals) == 1 or tangents[1] is zero:
        return zero
    return _bincount.bind(primals[0], tangents[1], minlength=minlength, batch_ndim=batch_ndim)


def _bincount_vjp(g, primals, out, needs, *, minlength, batch_ndim):
    x = primals[0]
    if len(primals) == 1 or not needs[1]:
        return (zero,) * len(primals)
    ct = take(g, x) if batch_ndim == 0 else take_along_axis(g, x, -1)
    return zero, fit_cotangent(ct, primals[1])


def _stack_batch(prim):
    """Batch rule: every operand gets the batch axis in front (``batch_ndim + 1``)."""

    def batch(vals, dims, **params):
        size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
        vals = [materialize_front(v if isinstance(v, Tracer) else np.asarray(v), d, size)
                for v, d in zip(vals, dims)]
        params["batch_ndim"] += 1
        return prim.bind(*vals, **params), 0

    return batch


def _bincount_samples(rng):
    x = np.array([0, 3, 1, 3, 3, 6, 0])
    return [Sample(x, minlength=0, batch_ndim=0),
            Sample(x, array(rng, (7,)), minlength=0, batch_ndim=0, label="weights"),
            Sample(x, array(rng, (7,), np.float32), minlength=9, batch_ndim=0,
                   label="float32 weights, minlength"),
            Sample(np.array([[0, 2, 2], [1, 2, 0]]), array(rng, (2, 3)), minlength=3, batch_ndim=1,
                   label="batched")]


_bincount = Primitive("bincount", _bincount_impl, jvp=_bincount_jvp, vjp=_bincount_vjp,
                      samples=_bincount_samples,
                      notes="counts have no derivative; weighted counts are linear in the weights; "
                            "under vmap the batch elements must agree on the length (use minlength=)")
_bincount.batch = _stack_batch(_bincount)


@implements(np.bincount)
def bincount(x, /, weights=None, minlength=0):
    """``np.bincount``: counts (no derivative) or weighted sums (linear in ``weights``).

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda w: np.bincount(np.array([0, 2, 2]), w)[2])(np.array([1.0, 2.0, 3.0]))
    array([0., 1., 1.])
    """
    x = x if isinstance(x, Tracer) else np.asarray(x)
    if ndim_of(x) != 1:
        raise ValueError("object too deep for desired array" if ndim_of(x) > 1
                         else "object of too small depth for desired array")
    minlength = operator.index(minlength)
    if minlength < 0:
        raise ValueError("'minlength' must not be negative")
    if weights is None:
        return _bincount.bind(x, minlength=minlength, batch_ndim=0)
    weights = weights if isinstance(weights, Tracer) else np.asarray(weights)
    if tuple(shape_of(weights)) != tuple(shape_of(x)):
        raise ValueError("The weights and list don't have the same length.")
    return _bincount.bind(x, weights, minlength=minlength, batch_ndim=0)


bincount.primitive = _bincount  # type: ignore[attr-defined]


def _np_bincount_samples(rng):
    x = np.array([1, 4, 4, 0, 2, 4])
    return [Sample(x), Sample(x, array(rng, (6,)), label="weights"),
            Sample(x, array(rng, (6,), np.float32), 8, label="float32 weights, minlength"),
            Sample(np.array([True, False, True]), label="booleans")]


bincount.composite = Composite(  # type: ignore[attr-defined]
    "np.bincount", np.bincount, samples=_np_bincount_samples)

# ---- digitize -------------------------------------------------------------------------------


def _digitize_samples(rng):
    bins = np.array([-1.0, 0.0, 0.5, 2.0])
    x = np.array([-2.0, -1.0, 0.2, 0.5, 1.0, 3.0])
    return [Sample(x, bins), Sample(x, bins, True, label="right"),
            Sample(x, bins[::-1].copy(), label="decreasing"),
            Sample(x, bins[::-1].copy(), True, label="decreasing, right"),
            Sample(array(rng, (2, 3), np.float32), bins.astype(np.float32), label="float32, 2-d x")]


@composite(np.digitize, samples=_digitize_samples, differentiable=False)
def digitize(x, bins, right=False):
    """``np.digitize``: bin indices (no derivative), increasing or decreasing bins."""
    x = x if isinstance(x, Tracer) else np.asarray(x)
    bins = bins if isinstance(bins, Tracer) else np.asarray(bins)
    if dtype_of(x).kind == "c":
        raise TypeError("x may not be complex")
    if ndim_of(bins) != 1:
        raise ValueError("object too deep for desired array" if ndim_of(bins) > 1
                         else "object of too small depth for desired array")
    steps = np.diff(astype(bins, np.float64))
    increasing = np.all(steps >= 0)
    decreasing = np.all(steps <= 0)
    check(increasing | decreasing, "true", "bins must be monotonically increasing or decreasing")
    side = "left" if right else "right"
    up = np.searchsorted(bins, x, side=side)
    if not isinstance(increasing, Tracer):
        if increasing:
            return up
        return shape_of(bins)[0] - np.searchsorted(np.flip(bins), x, side=side)
    down = shape_of(bins)[0] - np.searchsorted(np.flip(bins), x, side=side)
    return np.where(increasing, up, down)


# ---- bin edges -------------------------------------------------------------------------------


def _operand(v):
    return v if isinstance(v, Tracer) else np.asarray(v)


def _ravel_and_check_weights(a, weights):
    a = _operand(a)
    if dtype_of(a) == np.bool_:
        import warnings

        warnings.warn(f"Converting input from {dtype_of(a)} to {np.uint8} for compatibility.",
                      RuntimeWarning, stacklevel=3)
        a = astype(a, np.uint8)
    if weights is not None:
        weights = _operand(weights)
        if tuple(shape_of(weights)) != tuple(shape_of(a)):
            raise ValueError("weights should have the same shape as a.")
        weights = np.ravel(weights)
    return np.ravel(a), weights


def _outer_edges(a, range):
    """NumPy's _get_outer_edges: the data range (or ``range``), widened by 0.5 if empty."""
    if range is not None:
        first, last = range
        if isinstance(first, Tracer) or isinstance(last, Tracer):
            check(first <= last, "true", "max must be larger than min in range parameter.")
            check(np.isfinite(first) & np.isfinite(last), "true", "supplied range is not finite")
        else:
            if first > last:
                raise ValueError("max must be larger than min in range parameter.")
            if not (np.isfinite(first) and np.isfinite(last)):
                raise ValueError(f"supplied range of [{first}, {last}] is not finite")
    elif math.prod(shape_of(a)) == 0:
        first, last = 0, 1
    else:
        first, last = np.min(a), np.max(a)
        check(np.isfinite(first) & np.isfinite(last), "true",
              "autodetected range of the data is not finite (it holds NaN or inf)")
    if isinstance(first, Tracer) or isinstance(last, Tracer):
        same = first == last
        return np.where(same, first - 0.5, first), np.where(same, last + 0.5, last)
    if first == last:
        first, last = first - 0.5, last + 0.5
    return first, last


def _weak(v):
    return v if type(v) in (int, float) else dtype_of(v)


def _auto_bin_count(a, bins, range):
    """The number of bins a string estimator picks: NumPy's own, on the data's value."""
    fix = ("Pass bins as an integer or as an array of edges; under vmap every batch element "
           "needs the same number of bins.")
    plain = concrete(a, f"np.histogram(bins={bins!r}) (the number of bins)", fix)
    if range is not None:
        range = tuple(concrete(r, "np.histogram's range with a string bins", fix) for r in range)
    return len(np.histogram_bin_edges(plain, bins, range)) - 1


def _bin_edges(a, bins, range, weights):
    """NumPy's _get_bin_edges: ``(edges, n_equal_bins or None)``."""
    n_equal = None
    if isinstance(bins, str):
        if weights is not None:
            raise TypeError("Automated estimation of the number of bins is not supported for weighted data")
        first, last = _outer_edges(a, range)
        n_equal = _auto_bin_count(a, bins, range)
    elif ndim_of(bins) == 0:
        try:
            n_equal = operator.index(bins)
        except TypeError as e:
            raise TypeError("`bins` must be an integer, a string, or an array") from e
        if n_equal < 1:
            raise ValueError("`bins` must be positive, when an integer")
        first, last = _outer_edges(a, range)
    elif ndim_of(bins) == 1:
        edges = _operand(bins)
        falling = np.any(getitem(edges, slice(None, -1)) > getitem(edges, slice(1, None)))
        check(np.logical_not(falling), "true", "`bins` must increase monotonically, when an array")
        return edges, None
    else:
        raise ValueError("`bins` must be 1d, when an array")
    bin_type = np.result_type(_weak(first), _weak(last), dtype_of(a))
    if bin_type.kind in "iub":
        bin_type = np.result_type(bin_type, float)
    edges = linspace(first, last, n_equal + 1, endpoint=True, dtype=bin_type)
    check(np.logical_not(np.any(getitem(edges, slice(None, -1)) >= getitem(edges, slice(1, None)))), "true",
          f"Too many bins for data range. Cannot create {n_equal} finite-sized bins.")
    return edges, n_equal


def _histogram_samples(rng):
    out = [Sample(array(rng, (12,), dt)) for dt in FLOATS]
    a = array(rng, (3, 5))
    out += [
        Sample(a, 4, label="4 bins"),
        Sample(a, np.array([-2.0, -0.5, 0.0, 0.4, 2.0]), label="edges"),
        Sample(a, 5, (-1.0, 1.0), label="range"),
        Sample(a, 5, None, True, label="density"),
        Sample(a, np.array([-2.0, -0.5, 0.0, 0.4, 2.0]), None, True, label="edges, density"),
        Sample(a, 3, None, None, rng.uniform(0.5, 2, (3, 5)), label="weights"),
        Sample(a, np.array([-2.0, -0.5, 0.0, 0.4, 2.0]), None, None, rng.uniform(0.5, 2, (3, 5)),
               label="edges, weights"),
        Sample(a, 3, None, True, rng.uniform(0.5, 2, (3, 5)), label="weights, density"),
        Sample(a, 3, None, None, rng.uniform(0.5, 2, (3, 5)) + 1j, label="complex weights"),
        Sample(np.full(4, 2.5), 3, kink=True, label="constant data (edges jump when it varies)"),
        Sample(np.array([3, 1, 4, 1, 5, 9, 2, 6]), 4, label="integers"),
    ]
    return out


def _edges_samples(rng):
    a = array(rng, (3, 5))
    return [Sample(array(rng, (12,), dt)) for dt in FLOATS] + [
        Sample(a, 4, label="4 bins"), Sample(a, np.array([-2.0, -0.5, 0.0, 0.4, 2.0]), label="edges"),
        Sample(a, 5, (-1.0, 1.0), label="range"),
        Sample(a, 3, None, rng.uniform(0.5, 2, (3, 5)), label="weights"),
        Sample(np.full(4, 2.5), 3, kink=True, label="constant data (edges jump when it varies)"),
        Sample(np.array([3, 1, 4, 1, 5, 9, 2, 6]), 4, label="integers")]


@composite(np.histogram_bin_edges, samples=_edges_samples)
def histogram_bin_edges(a, bins=10, range=None, weights=None):
    """``np.histogram_bin_edges``: differentiable through the data's min and max
    (or a traced ``range``); explicit edges are returned as given."""
    a, weights = _ravel_and_check_weights(a, weights)
    return _bin_edges(a, bins, range, weights)[0]


def _bin_index(a, edges):
    """The bin of each entry, ``len(edges) - 1`` for entries outside the edges (and NaN)."""
    nbins = shape_of(edges)[0] - 1
    index = np.searchsorted(edges, a, side="right") - 1
    index = np.where(a == getitem(edges, -1), nbins - 1, index)
    return np.where((index < 0) | (index > nbins - 1), nbins, index)


def _weighted_counts(index, weights, nbins):
    """Weighted counts as NumPy sums them: bincount per block, cast to the weights' dtype."""
    ntype = dtype_of(weights)
    total = None
    for start in builtins.range(0, builtins.max(shape_of(index)[0], 1), BLOCK):
        part_index = getitem(index, slice(start, start + BLOCK))
        part = getitem(weights, slice(start, start + BLOCK))
        if ntype.kind == "c":
            re = getitem(bincount(part_index, np.real(part), nbins + 1), slice(0, nbins))
            im = getitem(bincount(part_index, np.imag(part), nbins + 1), slice(0, nbins))
            block = astype(re, ntype) + astype(im, ntype) * 1j
        else:
            block = astype(getitem(bincount(part_index, part, nbins + 1), slice(0, nbins)), ntype)
        total = block if total is None else total + block
    return total


def _sorted_cumulative_counts(a, weights, edges):
    """NumPy's explicit-edges weighted path: cumulative weights of the sorted data."""
    ntype = dtype_of(weights)
    cum = None
    for start in builtins.range(0, builtins.max(shape_of(a)[0], 1), BLOCK):
        part_a = getitem(a, slice(start, start + BLOCK))
        order = argsort(part_a)
        sa = getitem(part_a, order)
        sw = getitem(getitem(weights, slice(start, start + BLOCK)), order)
        cw = concatenate_arrays([np.zeros(1, ntype), np.cumsum(sw)], 0)
        at = concatenate_arrays([np.searchsorted(sa, getitem(edges, slice(None, -1)), "left"),
                                 np.searchsorted(sa, getitem(edges, slice(-1, None)), "right")], 0)
        block = getitem(cw, at)
        cum = block if cum is None else cum + block
    return np.diff(cum)


@composite(np.histogram, samples=_histogram_samples)
def histogram(a, bins=10, range=None, density=None, weights=None):
    """``np.histogram``: counts (no derivative), weighted counts (linear in the
    weights), a density (through the normalisation and the bin widths) and
    edges (through the data's min and max); see the module notes.

    >>> import numpy as np, npfunc
    >>> float(npfunc.grad(lambda s: np.histogram(s * np.arange(4.0), bins=2)[1][-1])(1.0))
    3.0
    """
    a, weights = _ravel_and_check_weights(a, weights)
    edges, n_equal = _bin_edges(a, bins, range, weights)
    nbins = shape_of(edges)[0] - 1
    index = _bin_index(a, edges)
    if weights is None:
        n = getitem(bincount(index, None, nbins + 1), slice(0, nbins))
    elif n_equal is not None:
        n = _weighted_counts(index, weights, nbins)
    else:
        n = _sorted_cumulative_counts(a, weights, edges)
    if density:
        widths = astype(np.diff(edges), float)
        return n / widths / np.sum(n), edges
    return n, edges


def _weighted_histogram_samples(rng):
    a = array(rng, (10,))
    return [Sample(a, rng.uniform(0.5, 2, 10), bins=4),
            Sample(a, rng.uniform(0.5, 2, 10), bins=4, density=True),
            Sample(a, rng.uniform(0.5, 2, 10), bins=np.array([-2.0, 0.0, 0.5, 2.0])),
            Sample(a.astype(np.float32), rng.uniform(0.5, 2, 10).astype(np.float32), bins=3)]


# NumPy dispatches np.histogram on a, bins and weights: with those plain and a
# traced range, NumPy's own code meets the traced edges; the error names npfunc's.
dispatch.TWINS[np.histogram._implementation.__code__] = "npfunc.numpy.histogram"

# weights is the differentiable argument; tested as a keyword call with traced weights.
Composite("np.histogram(weights=)", lambda a, w, **params: np.histogram(a, weights=w, **params),
          samples=_weighted_histogram_samples)

# ---- histogramdd / histogram2d ----------------------------------------------------------------


def _dd_samples(rng):
    s = array(rng, (12, 2))
    return [Sample(s), Sample(s, 3, label="3 bins"), Sample(s, (2, 4), label="bins per axis"),
            Sample(s, bins=[np.array([-2.0, 0.0, 2.0]), 3], label="edges and count"),
            Sample(s, bins=3, range=[(-1.0, 1.0), None], label="range"),
            Sample(s, 3, None, True, label="density"),
            Sample(s, 3, None, True, rng.uniform(0.5, 2, 12), label="weights, density"),
            Sample(array(rng, (9, 3), np.float32), 2, label="float32, 3-d"),
            Sample(array(rng, (10,)), 4, label="1-d sample")]


@implements(np.histogramdd)
def histogramdd(sample, bins=10, range=None, density=None, weights=None):
    """``np.histogramdd``: counts, weighted counts and densities over a grid of
    bins; edges from the data range are differentiable as in ``histogram``."""
    if isinstance(sample, (list, tuple)):
        sample = np.stack([_operand(s) for s in sample], axis=1)
    else:
        sample = _operand(sample)
        if ndim_of(sample) != 2:
            sample = np.transpose(np.atleast_2d(sample))
    N, D = shape_of(sample)
    if weights is not None:
        weights = _operand(weights)
    try:
        if len(bins) != D:
            raise ValueError("The dimension of bins must be equal to the dimension of the sample x.")
    except TypeError:
        bins = D * [bins]
    if range is None:
        range = (None,) * D
    elif len(range) != D:
        raise ValueError("range argument must have one entry per dimension")
    edges, nbin, widths = [], [], []
    for i in builtins.range(D):
        column = getitem(sample, (slice(None), i))
        if ndim_of(bins[i]) == 0:
            if bins[i] < 1:
                raise ValueError(f"`bins[{i}]` must be positive, when an integer")
            smin, smax = _outer_edges(column, range[i])
            try:
                n = operator.index(bins[i])
            except TypeError as e:
                raise TypeError(f"`bins[{i}]` must be an integer, when a scalar") from e
            e = linspace(smin, smax, n + 1)
        elif ndim_of(bins[i]) == 1:
            e = _operand(bins[i])
            check(np.logical_not(np.any(getitem(e, slice(None, -1)) > getitem(e, slice(1, None)))), "true",
                  f"`bins[{i}]` must be monotonically increasing, when an array")
        else:
            raise ValueError(f"`bins[{i}]` must be a scalar or 1d array")
        edges.append(e)
        nbin.append(shape_of(e)[0] + 1)  # one outlier bin at each end
        widths.append(np.diff(e))
    flat = 0
    for i in builtins.range(D):
        column = getitem(sample, (slice(None), i))
        count = np.searchsorted(edges[i], column, side="right")
        count = np.where(column == getitem(edges[i], -1), count - 1, count)
        flat = flat + count * int(np.prod(nbin[i + 1:], dtype=np.intp))
    hist = bincount(flat, weights, int(np.prod(nbin, dtype=np.intp)))
    hist = astype(reshape(hist, tuple(nbin)), float)
    hist = getitem(hist, D * (slice(1, -1),))
    if density:
        s = np.sum(hist)
        for i in builtins.range(D):
            shape = [1] * D
            shape[i] = nbin[i] - 2
            hist = hist / reshape(widths[i], tuple(shape))
        hist = hist / s
    return hist, edges


# The generated tests compare flat outputs: (hist, *edges).
histogramdd.composite = Composite(  # type: ignore[attr-defined]
    "np.histogramdd", lambda *args, **params: (lambda h, e: (h, *e))(*np.histogramdd(*args, **params)),
    samples=_dd_samples)


def _2d_samples(rng):
    x, y = array(rng, (10,)), array(rng, (10,))
    return [Sample(x, y), Sample(x, y, 3, label="3 bins"), Sample(x, y, [2, 4], label="bins per axis"),
            Sample(x, y, np.array([-2.0, 0.0, 0.5, 2.0]), label="shared edges"),
            Sample(x, y, bins=3, range=[[-1.0, 1.0], [-2.0, 2.0]], density=True, label="range, density"),
            Sample(x, y, 3, None, None, rng.uniform(0.5, 2, 10), label="weights")]


@composite(np.histogram2d, samples=_2d_samples)
def histogram2d(x, y, bins=10, range=None, density=None, weights=None):
    """``np.histogram2d``: ``histogramdd`` of the pairs ``(x, y)``."""
    if shape_of(x)[0] != shape_of(y)[0]:
        raise ValueError("x and y must have the same length.")
    try:
        N = len(bins)
    except TypeError:
        N = 1
    if N not in {1, 2}:
        bins = [_operand(bins), _operand(bins)]
    hist, edges = histogramdd([x, y], bins, range, density, weights)
    return hist, edges[0], edges[1]


__all__ = ["bincount", "digitize", "histogram_bin_edges", "histogram", "histogramdd", "histogram2d"]
