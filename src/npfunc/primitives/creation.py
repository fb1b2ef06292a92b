"""Array creation from traced values: ``zeros_like``, ``ones_like``,
``empty_like``, ``full_like``, ``linspace``, ``logspace``, ``geomspace`` and
``vander`` (composites).

* The ``*_like`` functions give constants shaped like one example (under
  vmap the result is not batched), made as ``like=`` makes them
  (``shape/like.py``): traced values can be written into them.  ``full_like`` with a traced fill value is
  traced (its derivative is the fill value's, summed by the adjoint);
  ``empty_like`` returns zeros.
* ``linspace``/``logspace``/``geomspace`` are differentiable in ``start``,
  ``stop`` (and ``base``), also for array-valued ends, and follow NumPy's
  arithmetic step by step, so values are bit-for-bit NumPy's: the same
  dtype rules, the same ``y * step`` (or ``y / div * delta`` when a step
  underflows to 0), the end points written exactly.
* ``np.indices`` and ``np.tri`` take shapes, not arrays: they need nothing.
"""
from __future__ import annotations

import operator

import numpy as np

from ..core.dispatch import implements
from ..core.primitive import Composite, Sample
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from .elementwise.arithmetic import astype
from .families import composite
from .data_dependent import check
from .indexing import aliasing
from .indexing.updates import set_at
from .sampling import FLOATS, array
from .shape.basic import broadcast_to, concatenate_arrays, moveaxis, reshape
from .shape.like import traced_constant

_PY_SCALARS = (bool, int, float, complex)


def _check_device(fn_name, device):
    if device not in (None, "cpu"):
        raise ValueError(f"np.{fn_name}: Device not understood. Only \"cpu\" is allowed, but "
                         f"received: {device}")


# ---- *_like ----------------------------------------------------------------------------


def _constant_like(fill, fn_name, a, dtype, order, shape, device):
    """A new array of ``fill`` shaped like ``a`` (or ``shape``): a constant of the
    innermost running transform, as ``np.full(shape, fill, like=a)`` makes, so
    that traced values can be written into it (``buf = np.zeros_like(x);
    buf[0] = ...``) as into NumPy's own."""
    _check_device(fn_name, device)
    dt = dtype_of(a) if dtype is None else np.dtype(dtype)
    if shape is None:
        shape, layout = tuple(shape_of(a)), a
    else:  # nothing of `a` but its dtype is used
        # (a traced 0-d size is one dimension, as NumPy's int; np.full then asks for its value)
        scalar = isinstance(shape, (int, np.integer)) or isinstance(shape, Tracer) and not shape.shape
        shape, layout = (shape,) if scalar else tuple(shape), None
    # NumPy lays the result out as `a` (order "K", or "A" for an F-ordered `a`), or as asked
    follows = layout is not None and order in ("K", "A") and len(shape) > 1
    c_order = not follows and order != "F" or follows and aliasing.decide(
        layout, lambda s: s.flags.c_contiguous) is True
    f_order = not follows and order == "F" or follows and not c_order and aliasing.decide(
        layout, lambda s: s.flags.f_contiguous) is True
    out = traced_constant(np.full(shape, fill, dtype=dt, order="F" if f_order else "C"))
    if not c_order and isinstance(out, Tracer):
        out._alias = None  # laid out as `a` is, or in F order: not C order
    return out


def _like_samples(rng):
    out = [Sample(array(rng, s, dt)) for dt in FLOATS for s in ((), (3,), (2, 3))]
    out += [Sample(array(rng, (2, 3)), dtype=np.float32, label="dtype"),
            Sample(array(rng, (2, 3)), shape=(4,), label="shape"),
            Sample(array(rng, (3,), np.float32), dtype=int, shape=(2, 2), label="dtype and shape")]
    return out


@composite(np.zeros_like, samples=_like_samples, differentiable=False)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``np.zeros_like``: a constant (no derivative, not batched under vmap) that
    traced values can be written into.

    >>> import numpy as np, npfunc
    >>> npfunc.vmap(lambda x: np.zeros_like(x, dtype=int) + x.sum())(np.ones((2, 3)))
    array([[3., 3., 3.],
           [3., 3., 3.]])
    """
    return _constant_like(0, "zeros_like", a, dtype, order, shape, device)


@implements(np.empty_like)
def empty_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``np.empty_like``: NumPy leaves the entries undefined; on traced values they are zeros."""
    return _constant_like(0, "empty_like", a, dtype, order, shape, device)


# NumPy's entries are arbitrary: the tests compare shapes and dtypes, through zeros_like.
empty_like.composite = Composite(  # type: ignore[attr-defined]
    "np.empty_like", lambda *args, **params: np.zeros_like(np.empty_like(*args, **params)),
    samples=_like_samples, differentiable=False)


@composite(np.ones_like, samples=_like_samples, differentiable=False)
def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``np.ones_like``: a constant (no derivative, not batched under vmap) that
    traced values can be written into."""
    return _constant_like(1, "ones_like", a, dtype, order, shape, device)


def _full_like_samples(rng):
    x = array(rng, (2, 3))
    return [Sample(x, fill_value=1.5), Sample(array(rng, (3,), np.float32), fill_value=-2.0),
            Sample(x, fill_value=0.5, shape=(4, 1), label="shape"),
            Sample(x, fill_value=2.5, dtype=np.float32, label="dtype"),
            Sample(np.arange(3.0), fill_value=2.7, dtype=int, label="integer dtype")]


def _traced_fill_samples(rng):
    return [Sample(array(rng, (2, 3))), Sample(array(rng, (3,), np.float32)),
            Sample(array(rng, (2, 3)), shape=(3, 2, 4), label="shape"),
            Sample(array(rng, (2, 3)), dtype=np.float32, label="dtype"),
            Sample(array(rng, (2, 3)), dtype=int, label="integer dtype")]


@composite(np.full_like, samples=_full_like_samples)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``np.full_like``: traced when ``fill_value`` is (the derivative of the
    result is the fill value's), a constant otherwise.

    >>> import numpy as np, npfunc
    >>> float(npfunc.grad(lambda c: np.full_like(c * np.ones(4), c).sum())(2.0))
    4.0

    NumPy dispatches ``np.full_like`` on ``a`` only: with a plain ``a`` and a
    traced fill, NumPy's own code runs and its ``np.copyto`` raises.
    """
    if not isinstance(fill_value, Tracer):  # (the shape as given: None means a's, and a's layout)
        return _constant_like(fill_value, "full_like", a, dtype, order, shape, device)
    _check_device("full_like", device)
    dt = dtype_of(a) if dtype is None else np.dtype(dtype)
    shape = tuple(shape_of(a)) if shape is None else ((shape,) if isinstance(shape, (int, np.integer))
                                                      else tuple(shape))
    fill = astype(fill_value, dt)
    if tuple(shape_of(fill)) == shape:
        from .indexing.inplace import clone

        return clone(fill)
    return broadcast_to(fill, shape)


# NumPy dispatches np.full_like on its first argument only: with a plain `a`,
# NumPy's own code runs and its np.copyto meets the traced fill.  A traced
# fill is tested as users write it, computed from the traced array.
Composite("np.full_like(x, fill from x)",
          lambda x, **params: np.full_like(x, x[..., -1:] * 2.0, **params), samples=_traced_fill_samples)


# ---- linspace / logspace / geomspace ------------------------------------------------------


def _as_operand(x):
    return x if isinstance(x, (Tracer, np.ndarray, np.generic) + _PY_SCALARS) else np.asarray(x)


def _weak_dtype(x):
    """What NumPy's promotion sees: Python scalars stay weak."""
    return x if type(x) in (int, float, complex) else dtype_of(x)


def _linspace_dtype(start, stop) -> np.dtype:
    dt = np.result_type(_weak_dtype(start), _weak_dtype(stop))
    if dt.kind not in "fc":  # ensure_inexact: integers (and bools) compute in the default float
        dt = np.result_type(dt, 1.0)
    return dt


def _cast(x, dt):
    if isinstance(x, Tracer):
        return astype(x, dt)
    return np.asarray(x, dtype=dt)


def _linspace_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(dt(rng.uniform(-2, 0)), dt(rng.uniform(1, 3)), 7))
    out += [
        Sample(np.float64(-1.0), np.float64(2.5), 5, False, label="no endpoint"),
        Sample(np.float64(0.5), np.float64(3.0), 4, True, True, label="retstep"),
        Sample(np.float64(0.5), np.float64(3.0), 1, label="one point"),
        Sample(np.float64(0.5), np.float64(3.0), 1, False, True, label="one point, no endpoint, retstep"),
        Sample(np.float64(0.5), np.float64(3.0), 0, label="empty"),
        Sample(np.float64(1.0), np.float64(1.0), 4, True, True, label="zero step", kink=False),
        Sample(array(rng, (3,)), array(rng, (2, 3)), 4, label="array ends"),
        Sample(array(rng, (2,)), np.float64(3.0), 5, True, False, None, 1, label="axis 1"),
        Sample(array(rng, (2, 1)), array(rng, (3,)), 3, axis=-1, label="axis -1"),
        Sample(np.float64(0.2), np.float64(9.7), 6, dtype=int, label="integer dtype"),
        Sample(np.float64(0.2), np.float64(9.7), 6, dtype=np.float32, label="float32 dtype"),
        Sample(np.float32(0.25), 3.0, 5, label="weak python stop"),
        Sample(np.float64(1.0), np.float64(1.0 + 2e-323), 3, True, True, label="denormal step"),
    ]
    return out


@composite(np.linspace, samples=_linspace_samples)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """``np.linspace``, differentiable in ``start`` and ``stop`` (scalars or arrays).

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda b: np.linspace(0.0, b, 5).sum())(2.0)   # d/db sum(b * i / 4)
    np.float64(2.5)
    """
    _check_device("linspace", device)
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    div = (num - 1) if endpoint else num
    start, stop = _as_operand(start), _as_operand(stop)
    dt = _linspace_dtype(start, stop)
    integer_dtype = dtype is not None and np.issubdtype(dtype, np.integer)
    dtype = dt if dtype is None else np.dtype(dtype)
    start, stop = _cast(start, dt), _cast(stop, dt)
    delta = stop - start
    y = np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * ndim_of(delta))
    if div > 0:
        step = delta / div
        # NumPy decides once for the whole array: any step that underflowed
        # to 0 (denormal ends) switches every entry to y / div * delta.
        zero_step = np.any(step == 0)
        if isinstance(zero_step, Tracer):
            y = np.where(zero_step, (y / div) * delta, y * step)
        else:
            y = (y / div) * delta if zero_step else y * step
    else:
        step = np.nan  # sequences of 0 or 1 point have no step
        y = y * delta
    y = y + start
    if endpoint and num > 1:
        y = set_at(y, -1, stop)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    if integer_dtype:
        y = np.floor(y)
    y = astype(y, dtype)
    return (y, step) if retstep else y


def _ndmin(x, nd):
    x = x if isinstance(x, Tracer) else np.asarray(x)
    return reshape(x, (1,) * (nd - ndim_of(x)) + tuple(shape_of(x))) if ndim_of(x) < nd else x


def _logspace_samples(rng):
    return [
        Sample(np.float64(-1.0), np.float64(1.5), 6),
        Sample(np.float32(0.5), np.float32(2.0), 4),
        Sample(np.float64(-1.0), np.float64(1.5), 5, False, np.float64(2.0), label="traced base"),
        Sample(array(rng, (3,)), np.float64(1.0), 4, True, np.array([2.0, 3.0, 0.5]), label="array base"),
        Sample(array(rng, (2,)), array(rng, (2,)), 3, True, 10.0, None, 1, label="axis 1"),
        Sample(np.float64(0.0), np.float64(1.0), 4, dtype=np.float32, label="dtype"),
    ]


@composite(np.logspace, samples=_logspace_samples)
def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """``np.logspace``: ``base ** linspace(start, stop)``, differentiable in all three."""
    if not isinstance(base, (float, int)) and ndim_of(base):
        # An array base broadcasts with the ends and may decide where `axis` is.
        nd = len(np.broadcast_shapes(shape_of(start), shape_of(stop), shape_of(base)))
        start, stop, base = (_ndmin(v, nd) for v in (start, stop, base))
        base = np.expand_dims(base, axis=axis)
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    result = np.power(base, y)
    return result if dtype is None else astype(result, dtype)


def _geomspace_samples(rng):
    return [
        Sample(np.float64(0.5), np.float64(8.0), 5),
        Sample(np.float32(1.0), np.float32(3.0), 4),
        Sample(np.float64(-2.0), np.float64(-20.0), 4, label="negative"),
        Sample(np.float64(1.0), np.float64(10.0), 4, False, label="no endpoint"),
        Sample(np.array([1.0, 2.0]), np.array([[4.0, 3.0], [0.5, 7.0]]), 3, True, None, -1,
               label="arrays, axis"),
        Sample(np.complex128(1 + 1j), np.complex128(-2 + 3j), 4, label="complex"),
        Sample(np.float64(2.0), np.float64(5.0), 1, label="one point"),
        Sample(np.float64(2.0), np.float64(5.0), 3, dtype=np.float32, label="dtype"),
    ]


@composite(np.geomspace, samples=_geomspace_samples)
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """``np.geomspace``, differentiable in ``start`` and ``stop`` (real or complex)."""
    start = start if isinstance(start, Tracer) else np.asanyarray(start)
    stop = stop if isinstance(stop, Tracer) else np.asanyarray(stop)
    for end in (start, stop):
        check(end, "nonzero", "Geometric sequence cannot include zero")
    dt = np.result_type(dtype_of(start), dtype_of(stop), float(num), np.zeros((), dtype))
    dtype = dt if dtype is None else np.dtype(dtype)
    start, stop = _cast(start, dt), _cast(stop, dt)
    # Rotate start to the positive real axis and back, as NumPy does.
    out_sign = np.sign(start)
    start = start / out_sign
    stop = stop / out_sign
    result = logspace(np.log10(start), np.log10(stop), num=num, endpoint=endpoint, base=10.0, dtype=dt)
    if num > 0:  # the end points exactly (10 ** log10(x) need not be x)
        result = set_at(result, 0, start)
        if num > 1 and endpoint:
            result = set_at(result, -1, stop)
    result = result * out_sign
    if axis != 0:
        result = moveaxis(result, 0, axis)
    return astype(result, dtype)


# ---- vander ----------------------------------------------------------------------------------


def _vander_samples(rng):
    return [Sample(array(rng, (4,))), Sample(array(rng, (3,), np.float32), 5),
            Sample(array(rng, (4,)), 3, True, label="increasing"),
            Sample(np.array([0.0, 1.5, -2.0]), label="zero entry"),
            Sample(array(rng, (3,)), 1, label="one column"), Sample(array(rng, (3,)), 0, label="no column")]


@composite(np.vander, samples=_vander_samples)
def vander(x, N=None, increasing=False):
    """``np.vander``: powers of ``x`` by repeated multiplication, as NumPy
    computes them (exact derivatives at zeros)."""
    x = x if isinstance(x, Tracer) else np.asarray(x)
    if ndim_of(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = shape_of(x)[0]
    N = n if N is None else operator.index(N)
    dt = np.promote_types(dtype_of(x), int)
    if N <= 0:
        return np.empty((n, 0), dtype=dt)
    ones = np.ones((n, 1), dtype=dt)
    if N == 1:
        columns = ones
    else:
        powers = np.cumprod(broadcast_to(reshape(astype(x, dt), (n, 1)), (n, N - 1)), axis=1)
        columns = concatenate_arrays([ones, powers], 1)
    return columns if increasing else np.flip(columns, axis=1)


__all__ = ["zeros_like", "empty_like", "ones_like", "full_like", "linspace", "logspace", "geomspace",
           "vander"]
