"""Sample builders for the NumPy reductions, scans and statistics, called as
users call them (``np.sum(x, axis=(0, 2), keepdims=True)``).

Every builder covers float64 and float32, ``axis`` as None, an int, a
negative int, a tuple and ``()``, ``keepdims``, and, where NumPy accepts
them, int8 and bool inputs (whose sums promote to the platform integer),
``dtype=``, ``initial=`` (cast to the result dtype) and ``where=``.
"""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..sampling import FLOATS, array, bool_array, int8_array, with_nans
from ..sampling import array as _array

AXES = (None, 1, -1, (0, 2), (2, 0), ())


def reduce_samples(*, domain=(-2.0, 2.0), dtype_kw: bool = True, initial=None, where: bool = True,
                   where_needs_initial: bool = False, ints: bool = True, bools: bool = True,
                   axes=AXES, nans: bool = False, keepdims: bool = True, empty: bool = True,
                   extra=None):
    """Samples for an ``np.sum``-like reduction.

    ``initial``: a value for ``initial=`` (None: the function has none);
    ``where_needs_initial``: ``where=`` is only valid with ``initial=`` (max, min);
    ``nans``: the float samples hold NaNs (the nan-functions).
    ``extra(rng)`` adds function-specific samples.
    """
    def array(rng, shape, dtype=np.float64, domain=domain):  # noqa: F811 - NaNs for nan-functions
        return with_nans(rng, shape, dtype, domain) if nans else _array(rng, shape, dtype, domain)

    def make(rng):
        out = []
        for dt in FLOATS:
            x = array(rng, (2, 3, 4), dt, domain)
            out += [Sample(x, axis=a) for a in axes]
            if keepdims:
                out.append(Sample(x, axis=1, keepdims=True))
                out.append(Sample(x, axis=None, keepdims=True))
        out.append(Sample(array(rng, (), np.float64, domain), label="0-d"))
        if keepdims:
            out.append(Sample(array(rng, (3,), np.float64, domain), axis=0, keepdims=True))
        empty_kw = {"initial": initial} if where_needs_initial else {}
        # reducing nothing gives a constant: derivative 0 (kink: differences of NaN say nothing)
        if empty:
            out.append(Sample(array(rng, (2, 0), np.float64, domain), axis=1, label="empty axis",
                              kink=True, **empty_kw))
        out.append(Sample(array(rng, (0, 2), np.float64, domain), axis=1, label="empty batch"))
        if dtype_kw:
            out.append(Sample(array(rng, (3, 4), np.float32, domain), axis=1, dtype=np.float64,
                              label="dtype up"))
            out.append(Sample(array(rng, (3, 4), np.float64, domain), axis=0, dtype=np.float32,
                              label="dtype down"))
        if initial is not None:
            x = array(rng, (3, 4), np.float64, domain)
            out.append(Sample(x, axis=1, initial=initial))
            out.append(Sample(array(rng, (3, 4), np.float32, domain), axis=0,
                              initial=np.float64(initial), label="initial cast to float32"))
        if where:
            x = array(rng, (3, 4), np.float64, domain)
            mask = rng.uniform(size=(3, 4)) > 0.3
            mask[:, 0] = True
            kw = {} if initial is None else {"initial": initial}
            if initial is not None or not where_needs_initial:
                out.append(Sample(x, axis=1, where=mask, **kw))
                out.append(Sample(x.astype(np.float32), where=mask[0], label="where broadcast", **kw))
        if ints:
            xi = int8_array(rng, (3, 4))
            out += [Sample(xi, label="int8"), Sample(xi, axis=0, label="int8")]
            if () in axes:
                out.append(Sample(xi, axis=(), label="int8"))
            if keepdims:
                out.append(Sample(xi, axis=-1, keepdims=True, label="int8"))
            if initial is not None:
                out.append(Sample(xi, axis=1, initial=np.int64(3), label="int8 with int64 initial"))
        if bools:
            xb = bool_array(rng, (3, 4))
            out += [Sample(xb, label="bool"), Sample(xb, axis=1, label="bool")]
            if () in axes:
                out.append(Sample(xb, axis=(), label="bool"))
        if extra is not None:
            out += extra(rng)
        return out

    return make


def scan_samples(*, domain=(-2.0, 2.0), ints: bool = True, bools: bool = True, nans: bool = False,
                 include_initial: bool = False, with_zeros: bool = False):
    """Samples for ``np.cumsum``-like scans (one axis or the flattened array)."""
    def array(rng, shape, dtype=np.float64, domain=domain):  # noqa: F811 - NaNs for nan-functions
        return with_nans(rng, shape, dtype, domain) if nans else _array(rng, shape, dtype, domain)

    def make(rng):
        out = []
        for dt in FLOATS:
            x = array(rng, (2, 3, 4), dt, domain)
            out += [Sample(x, axis=a) for a in ((None, 0, 1, -1) if not include_initial else (0, 1, -1))]
        if not include_initial:
            out.append(Sample(array(rng, (3, 4), np.float32, domain), axis=1, dtype=np.float64,
                              label="dtype up"))
        else:
            out.append(Sample(array(rng, (5,), np.float64, domain), label="1-d, no axis"))
            out.append(Sample(array(rng, (3, 4), np.float64, domain), axis=1, include_initial=True))
            out.append(Sample(array(rng, (3, 4), np.float32, domain), axis=0, dtype=np.float64,
                              include_initial=True, label="dtype up"))
        if with_zeros:
            x = array(rng, (3, 4), np.float64, domain)
            x[0, 1] = x[2, 0] = x[2, 2] = 0.0
            out.append(Sample(x, axis=1, label="zeros"))
        out.append(Sample(array(rng, (2, 0), np.float64, domain), axis=1, label="empty"))
        if ints:
            xi = int8_array(rng, (3, 4))
            out += [Sample(xi, axis=1, label="int8"), Sample(xi, axis=0, label="int8")]
        if bools:
            out.append(Sample(bool_array(rng, (3, 4)), axis=1, label="bool"))
        return out

    return make


def mean_integer_dtype(rng):
    """``np.mean(..., dtype=<integer>)``: NumPy sums in that dtype (wrapping) and
    truncates the quotient into it."""
    xi = int8_array(rng, (3, 4))
    # float16: NumPy sums and divides in float32 and rounds the mean once (differences in
    # float16 say little: derivatives by the adjoint identity)
    x16 = (array(rng, (4, 64)) * 30).astype(np.float16)
    return [Sample(xi, axis=1, dtype=np.int64, label="integer dtype"),
            Sample(xi, dtype=np.uint8, label="wrapping integer dtype"),
            Sample(array(rng, (3, 4)), axis=0, dtype=np.int16, label="float data, integer dtype"),
            Sample(x16, axis=1, label="float16", fd_order=0),
            Sample(x16, axis=0, keepdims=True, label="float16", fd_order=0),
            Sample(x16, label="float16", fd_order=0)]


def _var_extra(rng):
    x = array(rng, (3, 4))
    const = np.full((2, 3), 0.7)
    xi = int8_array(rng, (3, 4))
    # integer dtype= (NumPy computes in it, truncating); std refuses arrays there, so whole-array ones
    integer = [Sample(xi, dtype=np.int64, label="integer dtype"),
               Sample(xi, ddof=1, dtype=np.int32, label="integer dtype, ddof")]
    return [Sample(x, axis=1, ddof=1), Sample(x, axis=(0, 1), ddof=2, keepdims=True),
            Sample(x, axis=0, correction=1.5),
            Sample(x, axis=1, keepdims=True, mean=np.mean(x, axis=1, keepdims=True), label="mean="),
            Sample(x.astype(np.float32), axis=0, ddof=1, mean=np.mean(x, axis=0, keepdims=True)
                   .astype(np.float32), label="mean="),
            Sample(x[:, :1].copy(), axis=1, ddof=1, label="N - ddof = 0", kink=True),
            Sample(const, axis=1, label="zero variance", kink=True),
            Sample(array(rng, (3,)) + 1j * array(rng, (3,)), label="complex")] + integer


def var_samples(nans: bool = False):
    """``np.var``/``np.std`` (and the nan-versions with ``nans=True``)."""
    return reduce_samples(extra=_var_extra, nans=nans)


def _nan_extremum_extra(rng):
    x = with_nans(rng, (3, 4))
    x[1, :] = np.nan
    return [Sample(x, axis=1, label="all-NaN slice"), Sample(x, axis=0, keepdims=True)]


def _average_samples(rng):
    out = []
    for dt in FLOATS:
        x, w = array(rng, (3, 4), dt), array(rng, (3, 4), dt, (0.5, 2.0))
        out += [Sample(x), Sample(x, axis=1), Sample(x, axis=(0, 1), keepdims=True),
                Sample(x, 0, w, label="weights"), Sample(x, None, w, label="weights, all axes"),
                Sample(x, -1, w, returned=True, label="weights, returned")]
    x = array(rng, (2, 3, 4))
    out += [Sample(x, 1, array(rng, (3,), domain=(0.5, 2.0)), label="1-d weights"),
            Sample(x, (2, 0), array(rng, (4, 2), domain=(0.5, 2.0)), keepdims=True,
                   label="weights over two axes"),
            Sample(x, axis=1, returned=True, label="returned without weights"),
            Sample(int8_array(rng, (3, 4)), axis=0, label="int8"),
            Sample(int8_array(rng, (3, 4)), 1, rng.integers(1, 4, (3, 4)), label="int weights"),
            Sample(x.astype(np.float32), 1, array(rng, (2, 3, 4), domain=(0.5, 2.0)),
                   label="float32 data, float64 weights")]
    return out


def average_samples():
    return _average_samples


def _trace_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 3), dt)), Sample(array(rng, (3, 4), dt), 1),
                Sample(array(rng, (4, 3), dt), -2), Sample(array(rng, (2, 3, 4), dt), 0, 1, 2),
                Sample(array(rng, (2, 3, 4), dt), offset=1, axis1=-1, axis2=0)]
    out += [Sample(array(rng, (3, 3)), 5, label="offset past the edge"),
            Sample(array(rng, (3, 3), np.float32), dtype=np.float64, label="dtype up"),
            Sample(int8_array(rng, (4, 4)), label="int8"),
            Sample(int8_array(rng, (2, 4, 4)), 0, 1, 2, label="int8 stack"),
            Sample(bool_array(rng, (2, 3, 3)), 0, 1, 2, label="bool stack"),
            Sample(bool_array(rng, (3, 3)), label="bool"),
            Sample(int8_array(rng, (3, 3)), dtype=np.int8, label="int8 kept")]
    return out


def trace_samples():
    return _trace_samples


def _logical_samples(rng):
    out = []
    for dt in FLOATS:
        x = np.round(array(rng, (2, 3, 4), dt))  # integers in [-2, 2]: several zeros
        out += [Sample(x, axis=a) for a in AXES] + [Sample(x, axis=1, keepdims=True)]
    mask = bool_array(rng, (3, 4))
    where = rng.uniform(size=(3, 4)) > 0.5
    out += [Sample(mask), Sample(mask, axis=0), Sample(mask, axis=-1, keepdims=True),
            Sample(mask, axis=1, where=where, label="where="),
            Sample(int8_array(rng, (3, 4)) // 50, axis=1, label="int8"),
            Sample(np.zeros((2, 0)), axis=1, label="empty"), Sample(np.float64(0.0), label="0-d")]
    return out


def logical_samples(where: bool = True):
    """``np.all``/``np.any``/``np.count_nonzero`` (``where=False``: no ``where=``)."""
    def make(rng):
        return [s for s in _logical_samples(rng) if where or "where" not in s.params]

    return make


def _arg_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt)
        out += [Sample(x), Sample(x, 1), Sample(x, axis=-1), Sample(x, axis=0, keepdims=True),
                Sample(x, keepdims=True)]
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    out += [Sample(ties, axis=1, label="ties: first wins"), Sample(ties, label="ties: first wins"),
            Sample(int8_array(rng, (3, 4)), axis=0, label="int8"),
            Sample(bool_array(rng, (3, 4)), axis=1, label="bool")]
    return out


def arg_samples(nans: bool = False):
    """``np.argmax``-like samples; with ``nans``, NaNs in the float ones (never a whole slice)."""
    def make(rng):
        out = _arg_samples(rng)
        if nans:
            for s in out:
                x = s.args[0]
                if x.dtype.kind == "f" and x.ndim == 3:
                    x[0, 0, :2] = np.nan
                    x[1, 2, 1:3] = np.nan
            x = np.array([[np.nan, 1.0, np.nan], [2.0, np.nan, -1.0]])
            out += [Sample(x, axis=1, label="NaNs"), Sample(x, label="NaNs")]
        return out

    return make
