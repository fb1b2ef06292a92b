"""Cumulative sums and products (primitives), their NumPy front ends, and the
associative scan the product rules are made of.

``cumprod`` is exact and division-free at zeros: its JVP solves the linear
recurrence ``dy[i] = x[i] * dy[i-1] + t[i] * y[i-1]`` with a log-depth
associative scan built from npfunc operations (slices, products, sums,
concatenation), and its VJP solves the transposed recurrence the same way.
Nothing is ever divided by ``x``, so one zero, several zeros and all-zero
slices get the exact derivative, and the rules are themselves differentiable
(second order) and batchable.  Both primitives carry a ``reverse`` flag
(accumulate from the end), which makes each the other's transpose partner:
the VJP of ``cumsum`` is ``cumsum(reverse=True)``.
"""
from __future__ import annotations

import numpy as np

from ...core.context import describe_stack
from ...core.dispatch import implements_accumulate
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Composite, Primitive, Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ..elementwise.arithmetic import astype, isnan, ones_like, where, zeros_like
from ..families import composite, conj, normalize_axes
from ..indexing.gather import getitem, take_along_axis
from ..sampling import FLOATS, array
from .samples import scan_samples
from .basic import reduced_dtype
from ..shape.basic import concatenate_arrays, ravel

# ---- slicing helpers ----------------------------------------------------------------


def _slice(x, axis: int, start, stop):
    return getitem(x, (slice(None),) * axis + (slice(start, stop),))


def _shift(x, axis: int, toward_end: bool, fill: str):
    """``x`` moved by one along ``axis``; the freed slot holds ones or zeros.

    ``toward_end``: out[i] = x[i-1] (out[0] = fill); else out[i] = x[i+1].
    """
    n = shape_of(x)[axis]
    edge = _slice(x, axis, 0, 1)
    pad = ones_like(edge) if fill == "ones" else zeros_like(edge)
    if toward_end:
        return concatenate_arrays([pad, _slice(x, axis, 0, n - 1)], axis)
    return concatenate_arrays([_slice(x, axis, 1, n), pad], axis)


def linear_recurrence(a, b, axis: int, reverse: bool = False):
    """``h`` with ``h[i] = a[i] * h[i-1] + b[i]`` along ``axis`` (``h[-1] = 0``).

    With ``reverse=True`` the recurrence runs from the end:
    ``h[i] = a[i] * h[i+1] + b[i]``.  ``a`` and ``b`` have the same shape.
    Computed by a Hillis-Steele scan: ``ceil(log2(n))`` vectorised steps,
    each composing the affine maps ``h -> A h + B`` of neighbouring blocks.
    Made only of npfunc operations, so it can be differentiated and batched.
    """
    n = shape_of(b)[axis]
    A, B = a, b
    s = 1
    while s < n:
        head_a, tail_a = _slice(A, axis, 0, n - s), _slice(A, axis, s, n)
        head_b, tail_b = _slice(B, axis, 0, n - s), _slice(B, axis, s, n)
        if reverse:  # block i absorbs block i + s (further from the start)
            B = concatenate_arrays([head_a * tail_b + head_b, _slice(B, axis, n - s, n)], axis)
            if 2 * s < n:
                A = concatenate_arrays([head_a * tail_a, _slice(A, axis, n - s, n)], axis)
        else:  # block i absorbs block i - s
            B = concatenate_arrays([_slice(B, axis, 0, s), tail_a * head_b + tail_b], axis)
            if 2 * s < n:
                A = concatenate_arrays([_slice(A, axis, 0, s), tail_a * head_a], axis)
        s *= 2
    return B


# ---- cumsum -----------------------------------------------------------------------------

def _flip_impl(fn):
    def impl(x, *, axis, reverse):
        if not reverse:
            return fn(x, axis=axis)
        return np.flip(fn(np.flip(x, axis), axis=axis), axis)

    return impl


def _scan_batch(prim):
    def batch(vals, dims, *, axis, **params):
        (x,), (d,) = vals, dims
        return prim.bind(x, axis=axis + (axis >= d), **params), d

    return batch


def _scan_samples(with_zeros: bool):
    def make(rng):
        extra = [{}] if not with_zeros else [dict(exclusive=False), dict(exclusive=True)]
        out = []
        for kw in extra:
            for dt in FLOATS:
                x = array(rng, (3, 4), dt)
                out += [Sample(x, axis=1, reverse=False, **kw), Sample(x, axis=0, reverse=True, **kw),
                        Sample(array(rng, (2, 3, 5), dt), axis=2, reverse=False, **kw),
                        Sample(array(rng, (2, 5, 3), dt), axis=1, reverse=True, **kw)]
            out.append(Sample(array(rng, (1,)), axis=0, reverse=False, label="length 1", **kw))
            out.append(Sample(array(rng, (0, 3)), axis=0, reverse=False, label="length 0", **kw))
            out.append(Sample(array(rng, (4,)) + 1j * array(rng, (4,)), axis=0, reverse=False,
                              label="complex", **kw))
            if with_zeros:
                x = array(rng, (3, 6))
                x[0, 2] = 0.0
                x[1, 1] = x[1, 4] = 0.0
                x[2, :] = 0.0
                out += [Sample(x, axis=1, reverse=False, label="zeros", **kw),
                        Sample(x, axis=1, reverse=True, label="zeros", **kw),
                        Sample(x.T.copy(), axis=0, reverse=False, label="zeros", **kw),
                        Sample(x.astype(np.float32), axis=1, reverse=True, label="zeros", **kw)]
        return out

    return make


_cumsum = Primitive(
    "cumsum", _flip_impl(np.cumsum),
    jvp=lambda primals, tangents, out, *, axis, reverse: _cumsum.bind(tangents[0], axis=axis,
                                                                      reverse=reverse),
    vjp=lambda g, primals, out, needs, *, axis, reverse: (_cumsum.bind(g, axis=axis,
                                                                       reverse=not reverse),),
    samples=_scan_samples(False),
    notes="linear; the VJP is the cumulative sum taken from the other end",
)
_cumsum.batch = _scan_batch(_cumsum)


def scan_sum(x, axis: int, reverse: bool = False):
    """Cumulative sum along a non-negative ``axis`` (from the end if ``reverse``), for rule writers."""
    return _cumsum.bind(x, axis=axis, reverse=reverse)


# ---- cumprod ----------------------------------------------------------------------------

def _cumprod_impl(x, *, axis, reverse, exclusive):
    if not exclusive:
        return _flip_impl(np.cumprod)(x, axis=axis, reverse=reverse)
    x = np.asarray(x)
    out = np.empty_like(x)
    n = x.shape[axis]
    if n == 0:
        return out

    def part(a, lo, hi):
        return a[(slice(None),) * axis + (slice(lo, hi),)]

    if reverse:  # out[i] = prod(x[i+1:])
        part(out, n - 1, n)[...] = 1
        np.cumprod(np.flip(part(x, 1, n), axis), axis=axis, out=np.flip(part(out, 0, n - 1), axis))
    else:  # out[i] = prod(x[:i])
        part(out, 0, 1)[...] = 1
        np.cumprod(part(x, 0, n - 1), axis=axis, out=part(out, 1, n))
    return out


def _cumprod_jvp(primals, tangents, out, *, axis, reverse, exclusive):
    (x,), (t,) = primals, tangents
    if shape_of(x)[axis] == 0:
        return t
    before = out if exclusive else _shift(out, axis, not reverse, "ones")  # y[i-1] (y[i+1] reversed)
    dy = linear_recurrence(x, t * before, axis, reverse)
    if exclusive:  # the exclusive products are the inclusive ones moved by one
        dy = _shift(dy, axis, not reverse, "zeros")
    return dy


def _cumprod_vjp(g, primals, out, needs, *, axis, reverse, exclusive):
    (x,) = primals
    if shape_of(x)[axis] == 0:
        return (g,)
    if exclusive:  # transpose of the move by one
        g = _shift(g, axis, reverse, "zeros")
    before = out if exclusive else _shift(out, axis, not reverse, "ones")
    factor = _shift(conj(x), axis, reverse, "zeros")  # x[j+1] (x[j-1] when reversed)
    return (conj(before) * linear_recurrence(factor, g, axis, not reverse),)


_cumprod = Primitive(
    "cumprod", _cumprod_impl, jvp=_cumprod_jvp, vjp=_cumprod_vjp,
    samples=_scan_samples(True),
    notes="exact and division-free at zeros: the derivative of y[i] with respect to "
          "x[j] (j <= i) is the product of the other entries x[0..i] except x[j], "
          "computed with a log-depth scan (no division by x).  exclusive=True gives "
          "y[i] = prod(x[:i]) (prod(x[i+1:]) when reversed), used by prod's rules",
)
_cumprod.batch = _scan_batch(_cumprod)


def scan_prod(x, axis: int, reverse: bool = False, exclusive: bool = False):
    """Cumulative product along a non-negative ``axis``, for rule writers.

    ``reverse``: accumulate from the end; ``exclusive``: leave the entry itself
    out (``prod(x[:i])``, or ``prod(x[i+1:])`` when reversed)."""
    return _cumprod.bind(x, axis=axis, reverse=reverse, exclusive=exclusive)


# ---- the NumPy front ends ------------------------------------------------------------

def _reject_out(name, out):
    if out is not None:
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.{name}: argument 'out' is not supported on traced values; assign the result "
            f"instead: y = np.{name}(...)")


def _prepare(name, a, axis, dtype):
    if dtype is not None:
        a = astype(a, dtype)
    if axis is None:
        return ravel(a), 0
    nd = ndim_of(a)
    (axis,) = normalize_axes(int(axis), nd, name)
    return a, axis


@composite(np.cumsum, samples=scan_samples())
def cumsum(a, axis=None, dtype=None, out=None):
    """``np.cumsum`` for traced and plain values (``axis=None`` flattens first)."""
    _reject_out("cumsum", out)
    result_dtype = np.dtype(dtype) if dtype is not None else reduced_dtype("sum", dtype_of(a))
    a, axis = _prepare("cumsum", a, axis, dtype)
    return astype(scan_sum(a, axis), result_dtype)


@composite(np.cumprod, samples=scan_samples(domain=(-1.5, 1.5), with_zeros=True))
def cumprod(a, axis=None, dtype=None, out=None):
    """``np.cumprod`` for traced and plain values: exact, division-free derivatives at zeros."""
    _reject_out("cumprod", out)
    result_dtype = np.dtype(dtype) if dtype is not None else reduced_dtype("prod", dtype_of(a))
    a, axis = _prepare("cumprod", a, axis, dtype)
    return astype(scan_prod(a, axis), result_dtype)


def _cumulative(name, scan, fill, x, axis, dtype, out, include_initial):
    _reject_out(name, out)
    if axis is None:
        if ndim_of(x) > 1:
            raise ValueError(f"np.{name}: axis must be given for arrays with more than one dimension")
        axis = 0
    if ndim_of(x) == 0:
        raise ValueError(f"np.{name}: the input must have at least one dimension")
    reduction = "sum" if fill == 0 else "prod"
    result_dtype = np.dtype(dtype) if dtype is not None else reduced_dtype(reduction, dtype_of(x))
    x, axis = _prepare(name, x, axis, dtype)
    y = astype(scan(x, axis), result_dtype)  # NumPy keeps an explicit dtype (uint8 stays uint8)
    if include_initial:
        shape = list(shape_of(y))
        shape[axis] = 1
        y = concatenate_arrays([np.full(shape, fill, dtype=dtype_of(y)), y], axis)
    return y


if hasattr(np, "cumulative_sum"):
    @composite(np.cumulative_sum, samples=scan_samples(include_initial=True))
    def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        """``np.cumulative_sum`` (NumPy >= 2.1) for traced and plain values."""
        return _cumulative("cumulative_sum", scan_sum, 0, x, axis, dtype, out, include_initial)

    @composite(np.cumulative_prod, samples=scan_samples(include_initial=True, with_zeros=True))
    def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        """``np.cumulative_prod`` (NumPy >= 2.1) for traced and plain values."""
        return _cumulative("cumulative_prod", scan_prod, 1, x, axis, dtype, out, include_initial)


@composite(np.nancumsum, samples=scan_samples(nans=True))
def nancumsum(a, axis=None, dtype=None, out=None):
    """``np.nancumsum``: NaNs count as 0 and get a zero derivative."""
    _reject_out("nancumsum", out)
    return cumsum(where(isnan(a), 0, a), axis, dtype)


@composite(np.nancumprod, samples=scan_samples(nans=True, domain=(-1.5, 1.5)))
def nancumprod(a, axis=None, dtype=None, out=None):
    """``np.nancumprod``: NaNs count as 1 and get a zero derivative."""
    _reject_out("nancumprod", out)
    return cumprod(where(isnan(a), 1, a), axis, dtype)



implements_accumulate(np.add)(lambda a, axis=0, dtype=None, out=None: cumsum(a, axis, dtype, out))
implements_accumulate(np.multiply)(lambda a, axis=0, dtype=None, out=None: cumprod(a, axis, dtype, out))


# ---- running maxima and minima: np.maximum.accumulate, np.minimum.accumulate ---------------
# The running extremum is an entry of x: the one the scan last took.  A primitive
# finds its position (no derivative) and take_along_axis reads it, so the derivative
# of each output is that of the entry it is (the first of tied entries, as argmax;
# the first NaN once one is met, as NumPy propagates it).

def _running_pick_impl(x, *, axis, larger):
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    if n == 0:
        return np.moveaxis(np.zeros(x.shape, np.intp), -1, axis)
    best = (np.maximum if larger else np.minimum).accumulate(x, axis=-1)
    before = np.concatenate([best[..., :1], best[..., :-1]], axis=-1)
    improves = (x > before) if larger else (x < before)
    new = improves | (np.isnan(x) & ~np.isnan(before))
    new[..., 0] = True
    picks = np.maximum.accumulate(np.where(new, np.arange(n), 0), axis=-1)
    return np.moveaxis(picks, -1, axis)


def _running_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (6,), dt), axis=0, larger=True), Sample(array(rng, (3, 5), dt), axis=1, larger=False)]
    out += [Sample(np.array([1.0, 3.0, 3.0, 2.0, 5.0, 5.0]), axis=0, larger=True, label="ties"),
            Sample(np.array([2.0, np.nan, 1.0, 4.0]), axis=0, larger=False, label="nan")]
    return out


_running_pick = Primitive("running_pick", _running_pick_impl, differentiable=False, samples=_running_samples,
                          notes="positions of the running maximum (larger=True) or minimum along axis")


def _running_pick_batch(vals, dims, *, axis, larger):
    (x,), (d,) = vals, dims
    return _running_pick.bind(x, axis=axis + (axis >= d), larger=larger), d


_running_pick.batch = _running_pick_batch


def _running_extremum(name, larger, a, axis=0, dtype=None, out=None):
    _reject_out(f"{name}.accumulate", out)
    if dtype is not None:
        a = astype(a, dtype)
    if ndim_of(a) == 0:
        raise ValueError(f"np.{name}.accumulate: the input must have at least one dimension")
    if dtype_of(a).kind == "c":  # (NumPy orders complex numbers lexicographically)
        raise UnsupportedOperationError(f"np.{name}.accumulate of complex values is not supported on "
                                        "traced values; accumulate the real part, or keep it outside the transform")
    axis = normalize_axes(axis, ndim_of(a), f"{name}.accumulate")[0]
    return take_along_axis(a, _running_pick.bind(a, axis=axis, larger=larger), axis)


@implements_accumulate(np.maximum)
def maximum_accumulate(a, axis=0, dtype=None, out=None):
    """``np.maximum.accumulate``: the running maximum; each entry's derivative is that
    of the entry it equals (the first of ties; NaN propagates, as in NumPy)."""
    return _running_extremum("maximum", True, a, axis, dtype, out)


@implements_accumulate(np.minimum)
def minimum_accumulate(a, axis=0, dtype=None, out=None):
    """``np.minimum.accumulate``: the running minimum (see ``maximum_accumulate``)."""
    return _running_extremum("minimum", False, a, axis, dtype, out)


def _accumulate_samples(larger):
    def make(rng):
        out = []
        for dt in FLOATS:
            out += [Sample(array(rng, (7,), dt)), Sample(array(rng, (3, 4), dt), 1),
                    Sample(array(rng, (3, 4), dt), 0)]
        out += [Sample(np.array([1.0, 3.0, 3.0, 2.0, 5.0, 5.0]), label="ties", kink=True),
                Sample(np.array([2.0, np.nan, 1.0, 4.0]), label="nan", kink=True)]
        return out
    return make


Composite("np.maximum.accumulate", lambda a, axis=0: np.maximum.accumulate(a, axis=axis),
          samples=_accumulate_samples(True))
Composite("np.minimum.accumulate", lambda a, axis=0: np.minimum.accumulate(a, axis=axis),
          samples=_accumulate_samples(False))
