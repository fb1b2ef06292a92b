"""One-dimensional linear interpolation: ``np.interp`` as a primitive.

``interp(x, xp, fp, left, right)`` is NumPy's own ``np.interp`` on plain
arrays, so values are NumPy's exactly.  Batched (vmap over ``xp``, ``fp``,
``left`` or ``right``; the primitive's leading ``batch_ndim`` axes) it runs
NumPy's algorithm vectorised: one ``np.searchsorted`` over all rows (a row
and a value make one complex key, ordered row first), then NumPy's formula
with its special cases (a knot hit exactly gives ``fp[j]``; a NaN from one
side is retried from the other).  No Python loop over the batch.

Derivatives (``x`` inside ``[xp[0], xp[-1]]`` on segment ``j``, weight
``w = (x - xp[j]) / (xp[j+1] - xp[j])``, slope ``s``):

* ``x``: the slope ``s``; 0 outside the table (the constant ``left`` /
  ``right``).  At a knot the segment to its right is used, at the last knot
  the last segment (one-sided, as in JAX).
* ``fp``: ``1 - w`` to ``fp[j]`` and ``w`` to ``fp[j+1]``; ``left`` and
  ``right`` (by default ``fp[0]`` and ``fp[-1]``) where ``x`` is outside.
* ``xp``: ``s * (w - 1)`` to ``xp[j]`` and ``-s * w`` to ``xp[j+1]``.
* Complex ``fp``: the same, holomorphic in ``fp`` (torch's convention).
* ``period``: a composite (wrap, sort, pad by one period each side), as in NumPy.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import TWINS, implements
from ..core.primitive import Composite, Primitive, Sample
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..core.zeros import zero
from ..interpreters.batching import materialize_front
from .elementwise.arithmetic import astype
from .families import conj, fit_cotangent, fit_tangent
from .data_dependent import check
from .indexing.gather import getitem, index_add, take_along_axis
from .sampling import array
from .shape.basic import concatenate_arrays, reshape
from .sorting import argsort

# ---- NumPy's algorithm on stacked rows ---------------------------------------------------


def _rows(x, xp, batch_ndim):
    """Row-major views: x as (B, m), xp as (B, n)."""
    lead = xp.shape[:batch_ndim]
    rows = math.prod(lead)
    return x.reshape(rows, -1), xp.reshape(rows, xp.shape[-1]), lead


def _count_at_most(x2, xp2):
    """For each row b and entry i: the number of xp2[b] entries <= x2[b, i]
    (xp2 rows sorted), with one searchsorted over complex (row, value) keys."""
    rows, n = xp2.shape
    keys = np.empty(xp2.shape, np.complex128)
    keys.real = np.arange(rows)[:, None]
    keys.imag = xp2
    probes = np.empty(x2.shape, np.complex128)
    probes.real = np.arange(rows)[:, None]
    probes.imag = x2
    found = np.searchsorted(keys.ravel(), probes.ravel(), side="right").reshape(x2.shape)
    return found - n * np.arange(rows)[:, None]


def _segment_formula(x, xj, xj1, fj, fj1, slope):
    res = slope * (x - xj) + fj
    retry = np.isnan(res)
    if retry.any():  # a NaN from one side: try the other (NumPy's rule)
        res = np.where(retry, slope * (x - xj1) + fj1, res)
        res = np.where(np.isnan(res) & (fj == fj1), fj, res)
    return res


def _interp_rows(x, xp, fp, left, right, batch_ndim):
    x2, xp2, lead = _rows(np.asarray(x, np.float64), np.asarray(xp, np.float64), batch_ndim)
    fp2 = np.asarray(fp).reshape(xp2.shape)
    lval = np.asarray(left).reshape(-1, 1)
    rval = np.asarray(right).reshape(-1, 1)
    n = xp2.shape[1]
    first, last = xp2[:, :1], xp2[:, -1:]
    if n == 1:
        out = np.where(x2 < first, lval, np.where(x2 > first, rval, fp2[:, :1]))
        return out.reshape(np.shape(x))
    j = _count_at_most(x2, xp2) - 1
    jc = np.clip(j, 0, n - 2)
    take = np.take_along_axis
    xj, xj1 = take(xp2, jc, 1), take(xp2, jc + 1, 1)
    fj, fj1 = take(fp2, jc, 1), take(fp2, jc + 1, 1)
    if fp2.dtype.kind == "c":  # NumPy scales by 1 / dx for complex tables
        inv_dx = 1.0 / (xj1 - xj)
        res = (_segment_formula(x2, xj, xj1, fj.real, fj1.real, (fj1.real - fj.real) * inv_dx)
               + 1j * _segment_formula(x2, xj, xj1, fj.imag, fj1.imag, (fj1.imag - fj.imag) * inv_dx))
        nan_x = x2 + 0j
    else:
        res = _segment_formula(x2, xj, xj1, fj, fj1, (fj1 - fj) / (xj1 - xj))
        nan_x = x2
    at = np.clip(j, 0, n - 1)
    exact = (j == n - 1) | (take(xp2, at, 1) == x2)
    res = np.where(exact, take(fp2, at, 1), res)
    res = np.where(x2 > last, rval, res)
    res = np.where(x2 < first, lval, res)
    res = np.where(np.isnan(x2), nan_x, res)
    return res.reshape(np.shape(x))


def _interp_impl(x, xp, fp, left, right, *, batch_ndim):
    if batch_ndim == 0:
        return np.interp(x, xp, fp, np.asarray(left)[()], np.asarray(right)[()])
    return _interp_rows(x, xp, fp, left, right, batch_ndim)


# ---- the segment of each x (no derivative) ------------------------------------------------


def _segment_impl(x, xp, *, batch_ndim):
    """The segment j (0 <= j <= n - 2; 0 when n == 1) whose rule applies to x."""
    n = np.shape(xp)[-1]
    if batch_ndim == 0:
        count = np.searchsorted(xp, x, side="right")
    else:
        x2, xp2, _ = _rows(np.asarray(x), np.asarray(xp), batch_ndim)
        count = _count_at_most(x2, xp2).reshape(np.shape(x))
    return np.clip(count, 1, max(n - 1, 1)) - 1


def _lift(prim):
    """Batch rule: elementwise in x while the table is shared; otherwise every
    operand gets the new batch axis in front (batch_ndim + 1)."""

    def batch(vals, dims, *, batch_ndim):
        if batch_ndim == 0 and all(d is None for d in dims[1:]):
            return prim.bind(*vals, batch_ndim=0), dims[0]
        size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
        vals = [materialize_front(v if isinstance(v, Tracer) else np.asarray(v), d, size)
                for v, d in zip(vals, dims)]
        return prim.bind(*vals, batch_ndim=batch_ndim + 1), 0

    return batch


def _segment_samples(rng):
    xp = np.sort(array(rng, (5,)))
    return [Sample(array(rng, (7,), domain=(-3, 3)), xp, batch_ndim=0),
            Sample(array(rng, (2, 4), domain=(-3, 3)), np.sort(array(rng, (2, 5)), axis=1), batch_ndim=1)]


_segment = Primitive("interp_segment", _segment_impl, differentiable=False, samples=_segment_samples,
                     notes="the table segment np.interp's derivative rule uses for each x")
_segment.batch = _lift(_segment)

# ---- the derivative rules --------------------------------------------------------------------


class _Parts:
    """What both rules need, on x flattened to (*B, m)."""

    def __init__(self, x, xp, fp, batch_ndim):
        lead = tuple(shape_of(xp)[:batch_ndim])
        self.n = n = shape_of(xp)[-1]
        self.lead = lead
        self.x2 = x2 = reshape(x, lead + (-1,))
        self.lo = lo = _segment.bind(x2, xp, batch_ndim=batch_ndim)
        self.hi = hi = np.minimum(lo + 1, n - 1)
        xlo, xhi = take_along_axis(xp, lo, -1), take_along_axis(xp, hi, -1)
        flo, fhi = take_along_axis(fp, lo, -1), take_along_axis(fp, hi, -1)
        width = xhi - xlo
        flat = width == 0  # a repeated knot (or a one-point table): no slope
        width = np.where(flat, 1.0, width)
        self.w = np.where(flat, 0.0, (x2 - xlo) / width)
        self.s = np.where(flat, 0.0, (fhi - flo) / width)
        self.below = x2 < getitem(xp, (Ellipsis, slice(0, 1)))
        self.above = x2 > getitem(xp, (Ellipsis, slice(-1, None)))
        self.inside = np.logical_not(self.below | self.above | np.isnan(x2))

    def scatter(self, values, index):
        """Zeros of xp's shape with ``values`` added at ``index`` along the last axis."""
        grids = tuple(np.arange(k).reshape((k,) + (1,) * (len(self.lead) - i))
                      for i, k in enumerate(self.lead))
        return index_add(values, grids + (index,), self.lead + (self.n,))


def _edge_values(mask, v):
    return np.where(mask, reshape(v, tuple(shape_of(v)) + (1,)), 0)


def _interp_jvp(primals, tangents, out, *, batch_ndim):
    x, xp, fp, left, right = primals
    tx, txp, tfp, tl, tr = tangents
    p = _Parts(x, xp, fp, batch_ndim)
    inner = zero
    terms = []
    if tfp is not zero:
        terms += [take_along_axis(tfp, p.lo, -1) * (1 - p.w), take_along_axis(tfp, p.hi, -1) * p.w]
    if tx is not zero:
        terms.append(p.s * reshape(tx, p.lead + (-1,)))
    if txp is not zero:
        terms += [p.s * (p.w - 1) * take_along_axis(txp, p.lo, -1),
                  -(p.s * p.w) * take_along_axis(txp, p.hi, -1)]
    for term in terms:
        inner = term if inner is zero else inner + term
    total = zero if inner is zero else np.where(p.inside, inner, 0)
    for mask, t in ((p.below, tl), (p.above, tr)):
        if t is not zero:
            edge = _edge_values(mask, t)
            total = edge if total is zero else total + edge
    if total is zero:
        return zero
    return fit_tangent(reshape(total, tuple(shape_of(x))), out)


def _interp_vjp(g, primals, out, needs, *, batch_ndim):
    x, xp, fp, left, right = primals
    p = _Parts(x, xp, fp, batch_ndim)
    g2 = reshape(g, p.lead + (-1,))
    gin = np.where(p.inside, g2, 0)
    cts = [zero] * 5
    if needs[0]:
        cts[0] = fit_cotangent(reshape(gin * conj(p.s), tuple(shape_of(x))), x)
    if needs[1]:
        cts[1] = fit_cotangent(p.scatter(gin * conj(p.s * (p.w - 1)), p.lo)
                               + p.scatter(-(gin * conj(p.s * p.w)), p.hi), xp)
    if needs[2]:
        cts[2] = fit_cotangent(p.scatter(gin * (1 - p.w), p.lo) + p.scatter(gin * p.w, p.hi), fp)
    for k, mask in ((3, p.below), (4, p.above)):
        if needs[k]:
            cts[k] = fit_cotangent(np.sum(np.where(mask, g2, 0), axis=-1), primals[k])
    return tuple(cts)


def _interp_samples(rng):
    xp = np.sort(array(rng, (6,), domain=(-2, 2)))
    fp = array(rng, (6,))
    x = array(rng, (9,), domain=(-2.5, 2.5))
    out = [Sample(x, xp, fp, np.float64(fp[0]), np.float64(fp[-1]), batch_ndim=0),
           Sample(array(rng, (2, 4), domain=(-2.5, 2.5)), xp, fp, np.float64(-1.0), np.float64(3.0),
                  batch_ndim=0, label="left/right"),
           Sample(x, xp, fp + 1j * array(rng, (6,)), np.complex128(0.5j), np.complex128(1.0),
                  batch_ndim=0, label="complex"),
           Sample(array(rng, (2, 5), domain=(-2.5, 2.5)), np.sort(array(rng, (2, 6)), axis=1),
                  array(rng, (2, 6)), array(rng, (2,)), array(rng, (2,)), batch_ndim=1, label="batched"),
           Sample(array(rng, (2, 5), domain=(-2.5, 2.5)), np.sort(array(rng, (2, 6)), axis=1),
                  array(rng, (2, 6)) + 1j * array(rng, (2, 6)), array(rng, (2,)) + 0j, array(rng, (2,)) + 0j,
                  batch_ndim=1, label="batched complex"),
           Sample(np.array([0.5, 1.0, 2.0, 2.5]), np.array([0.0, 1.0, 2.0, 3.0]), fp[:4],
                  np.float64(0.0), np.float64(0.0), batch_ndim=0, kink=True, label="knots"),
           Sample(np.array([-1.0, 0.5, 1.0]), np.array([0.5]), np.array([2.0]), np.float64(-3.0),
                  np.float64(4.0), batch_ndim=0, kink=True, label="one-point table")]
    return out


_interp = Primitive("interp", _interp_impl, jvp=_interp_jvp, vjp=_interp_vjp, samples=_interp_samples,
                    notes="np.interp; d/dx is the slope of the segment right of x (the last segment at "
                          "xp[-1]), 0 outside the table; fp, xp, left, right get the interpolation weights")
_interp.batch = _lift(_interp)


# ---- np.interp ---------------------------------------------------------------------------------


def _operand(v):
    return v if isinstance(v, Tracer) else np.asarray(v)


def _table(v, what):
    if ndim_of(v) != 1:
        raise ValueError(f"np.interp: {what} must be a 1-D sequence (got {ndim_of(v)} dimensions)")
    return v


def _fill(v, default, ftype):
    if v is None:
        return default
    return astype(v, ftype) if isinstance(v, Tracer) else np.asarray(v, dtype=ftype)


@implements(np.interp)
def interp(x, xp, fp, left=None, right=None, period=None):
    """``np.interp`` for traced values: differentiable in ``x``, ``xp``, ``fp``,
    ``left`` and ``right`` (see the module notes), with ``period``.

    >>> import numpy as np, npfunc
    >>> xp, fp = np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0, 30.0])
    >>> float(npfunc.grad(lambda x: np.interp(x, xp, fp))(1.5))
    20.0
    """
    fp = _operand(fp)
    ftype = np.dtype(np.complex128 if dtype_of(fp).kind == "c" else np.float64)
    x, xp = astype(_operand(x), np.float64), astype(_operand(xp), np.float64)
    fp = astype(fp, ftype)
    if period is not None:
        if isinstance(period, Tracer):
            check(period, "nonzero", "period must be a non-zero value")
        elif period == 0:
            raise ValueError("period must be a non-zero value")
        period = np.abs(period)
        left = right = None
        if ndim_of(xp) != 1 or ndim_of(fp) != 1:
            raise ValueError("Data points must be 1-D sequences")
        if shape_of(xp)[0] != shape_of(fp)[0]:
            raise ValueError("fp and xp are not of the same length")
        x = x % period
        xp = xp % period
        order = argsort(xp)
        xp, fp = getitem(xp, order), getitem(fp, order)
        xp = concatenate_arrays([getitem(xp, slice(-1, None)) - period, xp,
                                 getitem(xp, slice(0, 1)) + period], 0)
        fp = concatenate_arrays([getitem(fp, slice(-1, None)), fp, getitem(fp, slice(0, 1))], 0)
    _table(xp, "xp")
    _table(fp, "fp")
    if shape_of(xp)[0] == 0:
        raise ValueError("array of sample points is empty")
    if shape_of(fp)[0] != shape_of(xp)[0]:
        raise ValueError("fp and xp are not of the same length.")
    left = _fill(left, getitem(fp, 0), ftype)
    right = _fill(right, getitem(fp, -1), ftype)
    return _interp.bind(x, xp, fp, left, right, batch_ndim=0)


interp.primitive = _interp  # type: ignore[attr-defined]
# NumPy dispatches np.interp on x, xp and fp: with those plain and a traced
# left/right/period, NumPy's own code converts them; the error names npfunc's.
TWINS[np.interp._implementation.__code__] = "npfunc.numpy.interp"


def _np_interp_samples(rng):
    xp = np.sort(rng.uniform(0, 4, 7))
    fp = array(rng, (7,))
    x = rng.uniform(-0.5, 4.5, 10)
    return [
        Sample(x, xp, fp, label="x, xp, fp"),
        Sample(x.astype(np.float32), xp, fp.astype(np.float32), label="float32 (computed in float64)"),
        Sample(x, xp, fp, -2.0, 5.0, label="python left, right"),
        Sample(x, xp, fp + 1j * array(rng, (7,)), label="complex fp"),
        Sample(x, xp, fp + 1j * array(rng, (7,)), 1j, label="complex fp, left"),
        Sample(np.float64(1.3), xp, fp, label="scalar x"),
        Sample(rng.uniform(-5, 9, 8), rng.uniform(0, 4, 5), array(rng, (5,)), None, None, 4.0,
               label="period"),
        Sample(rng.uniform(-5, 9, (2, 3)), rng.uniform(0, 4, 5), array(rng, (5,)) + 1j, period=-4.5,
               label="negative period, complex"),
    ]


# The NumPy call (casts, defaults, period) around the primitive, tested as users call it.
interp.composite = Composite("np.interp", np.interp, samples=_np_interp_samples)  # type: ignore[attr-defined]

__all__ = ["interp"]
