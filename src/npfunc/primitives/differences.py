"""Differences and integrals: ``diff``, ``ediff1d``, ``gradient``,
``trapezoid`` and ``unwrap`` (composites of slicing, subtraction and sums,
so every derivative, batching rule and second order comes from those).

Values are NumPy's bit for bit: each function repeats NumPy's arithmetic in
NumPy's order.  Two choices NumPy makes from the data are kept exactly:

* ``gradient`` with coordinate arrays uses the uniform-spacing formula when
  all spacings are exactly equal, else the general one.  With traced
  coordinates the *value* follows that choice, while the *derivative* is
  always the general formula's: moving one coordinate makes the spacings
  unequal, so that is the function finite differences see.
* ``unwrap`` adds multiples of ``period`` chosen from the data; they are
  piecewise constant, so the derivative in ``p`` is the identity (and the
  derivative in ``period`` counts the multiples added).
"""
from __future__ import annotations

import operator

import numpy as np

from ..core.primitive import Primitive, Sample
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..core.zeros import zero
from .elementwise.arithmetic import astype
from .families import composite, fit_tangent, normalize_axes
from .indexing.gather import getitem
from .sampling import FLOATS, array
from .shape.basic import broadcast_to, concatenate_arrays, reshape

# ---- a value with another expression's derivative ---------------------------------------


def _surrogate_jvp(primals, tangents, out):
    return zero if tangents[1] is zero else fit_tangent(tangents[1], out)


def _surrogate_vjp(g, primals, out, needs):
    from .families import fit_cotangent

    return zero, fit_cotangent(g, primals[1])


def _surrogate_batch(vals, dims):
    from ..interpreters.batching import materialize_front

    size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
    return _surrogate.bind(*(materialize_front(v, d, size) for v, d in zip(vals, dims))), 0


_surrogate = Primitive(
    "value_with_derivative_of", lambda value, surrogate: value,
    jvp=_surrogate_jvp, vjp=_surrogate_vjp, batch=_surrogate_batch,
    samples=lambda rng: [Sample(array(rng, (3,)), array(rng, (3,)), kink=True),
                         Sample(array(rng, (2, 3), np.float32), array(rng, (2, 3), np.float32), kink=True)],
    notes="the value of the first argument with the derivative of the second (np.gradient's "
          "uniform-spacing value with the general formula's derivative); equal shapes and dtypes",
)


def _along(nd: int, axis: int, index):
    return (slice(None),) * axis + (index,) + (slice(None),) * (nd - axis - 1)


def _operand(x):
    return x if isinstance(x, Tracer) else np.asanyarray(x)


# ---- diff ----------------------------------------------------------------------------------


def _diff_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (5,), dt)), Sample(array(rng, (3, 4), dt), 2, 0)]
    x = array(rng, (3, 4))
    out += [
        Sample(x, 3, label="n=3"), Sample(x, 0, label="n=0"),
        Sample(x, 1, -1, np.float64(0.5), label="scalar prepend"),
        Sample(x, 1, 0, array(rng, (2, 4)), array(rng, (1, 4)), label="prepend and append arrays"),
        Sample(array(rng, (4,), np.float32), 1, -1, 0.0, label="python prepend promotes"),
        Sample(x, 1, 1, append=array(rng, (3, 1)), label="append"),
        Sample(np.array([True, False, False, True]), label="booleans"),
        Sample(np.array([3, 1, 4, 1, 5]), 2, label="integers"),
    ]
    return out


@composite(np.diff, samples=_diff_samples)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    """``np.diff`` (``n``, ``axis``, ``prepend``, ``append``) for traced values.

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda x: (np.diff(x) ** 2).sum())(np.array([0.0, 1.0, 3.0]))
    array([-2., -2.,  4.])
    """
    n = operator.index(n)
    if n == 0:
        return a
    if n < 0:
        raise ValueError("order must be non-negative but got " + repr(n))
    a = _operand(a)
    nd = ndim_of(a)
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    (axis,) = normalize_axes(axis, nd, "diff")
    pieces = []
    for extra in (prepend, a, append):
        if extra is np._NoValue:
            continue
        if extra is not a:
            extra = _operand(extra)
            if ndim_of(extra) == 0:
                shape = list(shape_of(a))
                shape[axis] = 1
                extra = broadcast_to(extra, tuple(shape))
        pieces.append(extra)
    if len(pieces) > 1:
        a = np.concatenate(pieces, axis)
    later, earlier = _along(nd, axis, slice(1, None)), _along(nd, axis, slice(None, -1))
    op = np.not_equal if dtype_of(a) == np.bool_ else np.subtract
    for _ in range(n):
        a = op(getitem(a, later), getitem(a, earlier))
    return a


# ---- ediff1d --------------------------------------------------------------------------------


def _ediff1d_samples(rng):
    return [Sample(array(rng, (5,))), Sample(array(rng, (2, 3), np.float32)),
            Sample(array(rng, (4,)), array(rng, (2,)), np.float64(0.5), label="to_end, to_begin"),
            Sample(array(rng, (4,), np.float32), None, [1.0, 2.0], label="list to_begin"),
            Sample(array(rng, (1,)), np.float64(3.0), label="single entry")]


@composite(np.ediff1d, samples=_ediff1d_samples)
def ediff1d(ary, to_end=None, to_begin=None):
    """``np.ediff1d``: differences of the flattened array, with ``to_begin`` /
    ``to_end`` cast to its dtype (differentiable in all three)."""
    ary = np.ravel(_operand(ary))
    dtype = dtype_of(ary)
    body = getitem(ary, slice(1, None)) - getitem(ary, slice(None, -1))
    if to_begin is None and to_end is None:
        return body
    pieces = []
    for name, extra in (("to_begin", to_begin), ("to_end", to_end)):
        if extra is None:
            pieces.append(None)
            continue
        extra = _operand(extra)
        if not np.can_cast(dtype_of(extra), dtype, casting="same_kind"):
            raise TypeError(f"dtype of `{name}` must be compatible with input `ary` under the "
                            "`same_kind` rule.")
        pieces.append(astype(np.ravel(extra), dtype))
    begin, end = pieces
    if dtype_of(body) != dtype:  # e.g. booleans: NumPy writes the difference into ary's dtype
        body = astype(body, dtype)
    return concatenate_arrays([p for p in (begin, body, end) if p is not None], 0)


# ---- gradient ----------------------------------------------------------------------------------


def _spacings(varargs, f, axes):
    """One spacing per axis: a scalar, or the differences of 1-d coordinates
    together with whether they are all equal (None when not known before running)."""
    n = len(varargs)
    if n == 0:
        return [(1.0, True)] * len(axes)
    if n == 1 and ndim_of(varargs[0]) == 0:
        return [(varargs[0], True)] * len(axes)
    if n != len(axes):
        raise TypeError("invalid number of arguments")
    out = []
    for distances, axis in zip(varargs, axes):
        distances = _operand(distances)
        if ndim_of(distances) == 0:
            out.append((distances, True))
            continue
        if ndim_of(distances) != 1:
            raise ValueError("distances must be either scalars or 1d")
        if shape_of(distances)[0] != shape_of(f)[axis]:
            raise ValueError("when 1d, distances must match the length of the corresponding dimension")
        if dtype_of(distances).kind in "iu":
            distances = astype(distances, np.float64)
        diffx = diff(distances)
        same = np.all(diffx == getitem(diffx, 0)) if shape_of(diffx)[0] else np.True_
        out.append((diffx, same))
    return out


def _uniform(f, dx, axis, edge_order, otype):
    nd = ndim_of(f)

    def at(i):
        return getitem(f, _along(nd, axis, i))

    interior = (at(slice(2, None)) - at(slice(None, -2))) / (2. * dx)
    if edge_order == 1:
        first = (at(slice(1, 2)) - at(slice(0, 1))) / dx
        last = (at(slice(-1, None)) - at(slice(-2, -1))) / dx
    else:
        first = (-1.5 / dx) * at(slice(0, 1)) + (2. / dx) * at(slice(1, 2)) + (-0.5 / dx) * at(slice(2, 3))
        last = ((0.5 / dx) * at(slice(-3, -2)) + (-2. / dx) * at(slice(-2, -1))
                + (1.5 / dx) * at(slice(-1, None)))
    return _assemble(first, interior, last, axis, otype)


def _general(f, dx, axis, edge_order, otype):
    nd = ndim_of(f)

    def at(i):
        return getitem(f, _along(nd, axis, i))

    def along(v):
        shape = [1] * nd
        shape[axis] = -1
        return reshape(v, tuple(shape))

    dx1, dx2 = getitem(dx, slice(0, -1)), getitem(dx, slice(1, None))
    a = -(dx2) / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    c = dx1 / (dx2 * (dx1 + dx2))
    interior = along(a) * at(slice(None, -2)) + along(b) * at(slice(1, -1)) + along(c) * at(slice(2, None))
    if edge_order == 1:
        first = (at(slice(1, 2)) - at(slice(0, 1))) / getitem(dx, 0)
        last = (at(slice(-1, None)) - at(slice(-2, -1))) / getitem(dx, -1)
    else:
        dx1, dx2 = getitem(dx, 0), getitem(dx, 1)
        a = -(2. * dx1 + dx2) / (dx1 * (dx1 + dx2))
        b = (dx1 + dx2) / (dx1 * dx2)
        c = - dx1 / (dx2 * (dx1 + dx2))
        first = a * at(slice(0, 1)) + b * at(slice(1, 2)) + c * at(slice(2, 3))
        dx1, dx2 = getitem(dx, -2), getitem(dx, -1)
        a = (dx2) / (dx1 * (dx1 + dx2))
        b = - (dx2 + dx1) / (dx1 * dx2)
        c = (2. * dx2 + dx1) / (dx2 * (dx1 + dx2))
        last = a * at(slice(-3, -2)) + b * at(slice(-2, -1)) + c * at(slice(-1, None))
    return _assemble(first, interior, last, axis, otype)


def _assemble(first, interior, last, axis, otype):
    # NumPy writes each piece into an array of dtype otype: cast each, as it does.
    return concatenate_arrays([astype(p, otype) for p in (first, interior, last)], axis)


def _gradient_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (6,), dt)), Sample(array(rng, (4, 5), dt), edge_order=2)]
    f = array(rng, (4, 5))
    x = np.sort(rng.uniform(0, 3, 5))
    out += [
        Sample(f, np.float64(0.5), label="traced scalar spacing"),
        Sample(f, np.float64(0.5), np.float64(2.0), edge_order=2, label="one spacing per axis"),
        Sample(f, x, axis=1, label="coordinates"),
        Sample(f, x, axis=-1, edge_order=2, label="coordinates, edge order 2"),
        Sample(f, np.sort(rng.uniform(0, 3, 4)), x, label="coordinates per axis"),
        Sample(f, np.arange(5.0) * 0.25, axis=1, label="uniform coordinates"),
        Sample(f, np.arange(4.0) * 0.5, np.float64(0.3), edge_order=2, label="uniform and scalar"),
        Sample(f, axis=(1, 0), label="several axes"),
        Sample(array(rng, (3,)), label="three points"),
        Sample(array(rng, (3,)), edge_order=2, label="three points, edge order 2"),
        Sample(array(rng, (2, 3)), axis=0, label="two points"),
        Sample(np.array([1, 4, 9, 16]), np.array([0, 1, 3, 4]), label="integers"),
    ]
    return out


@composite(np.gradient, samples=_gradient_samples)
def gradient(f, *varargs, axis=None, edge_order=1):
    """``np.gradient`` (scalar or coordinate spacing, ``edge_order`` 1 or 2,
    ``axis``), differentiable in ``f`` and in the spacings (see the module notes).

    >>> import numpy as np, npfunc
    >>> x = np.linspace(0.0, 1.0, 5)
    >>> npfunc.grad(lambda h: np.gradient(x ** 2, h).sum())(0.25)
    np.float64(-20.0)
    """
    f = _operand(f)
    nd = ndim_of(f)
    given = (axis,) if isinstance(axis, (int, np.integer)) else axis
    axes = tuple(range(nd)) if axis is None else tuple(normalize_axes(a, nd, "gradient")[0] for a in given)
    if len(set(axes)) != len(axes):
        raise ValueError("repeated axis")
    spacings = _spacings(varargs, f, axes)
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    otype = dtype_of(f)
    if otype.kind not in "fc":
        if otype.kind in "iu":
            f = astype(f, np.float64)
        otype = np.dtype(np.float64)
    outs = []
    for ax, (dx, same) in zip(axes, spacings):
        if shape_of(f)[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at least "
                             "(edge_order + 1) elements are required.")
        if ndim_of(dx) == 0:
            outs.append(_uniform(f, dx, ax, edge_order, otype))
            continue
        general = _general(f, dx, ax, edge_order, otype)
        if isinstance(dx, Tracer):  # the value NumPy picks, the general formula's derivative
            if isinstance(same, Tracer):
                uniform = _uniform(f, getitem(dx, 0), ax, edge_order, otype)
                outs.append(_surrogate.bind(np.where(same, uniform, general), general))
            elif same:
                outs.append(_surrogate.bind(_uniform(f, getitem(dx, 0), ax, edge_order, otype), general))
            else:
                outs.append(general)
        elif same:
            outs.append(_uniform(f, getitem(dx, 0), ax, edge_order, otype))
        else:
            outs.append(general)
    return outs[0] if len(axes) == 1 else tuple(outs)


# ---- trapezoid ---------------------------------------------------------------------------------


def _trapezoid_samples(rng):
    out = [Sample(array(rng, (5,), dt)) for dt in FLOATS]
    y = array(rng, (3, 5))
    out += [
        Sample(y, np.sort(rng.uniform(0, 2, 5)), label="x"),
        Sample(y, None, np.float64(0.25), label="traced dx"),
        Sample(y, np.sort(rng.uniform(0, 2, 3)), axis=0, label="x, axis 0"),
        Sample(y, np.sort(rng.uniform(0, 2, (3, 5)), axis=1), label="n-d x"),
        Sample(array(rng, (4,), np.float32), None, 0.5, label="python dx"),
        Sample(np.arange(4), np.array([0.0, 0.5, 1.5, 2.0]), label="integer y"),
    ]
    return out


@composite(np.trapezoid, samples=_trapezoid_samples)
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """``np.trapezoid``: differentiable in ``y``, ``x`` and ``dx``.

    >>> import numpy as np, npfunc
    >>> t = np.linspace(0.0, 1.0, 11)
    >>> round(float(npfunc.grad(lambda a: np.trapezoid(a * t ** 2, t))(1.0)), 3)
    0.335
    """
    y = _operand(y)
    nd = ndim_of(y)
    if x is None:
        d = dx
    else:
        x = _operand(x)
        if ndim_of(x) == 1:
            d = diff(x)
            shape = [1] * nd
            shape[axis] = shape_of(d)[0]
            d = reshape(d, tuple(shape))
        else:
            d = diff(x, axis=axis)
    (ax,) = normalize_axes(axis, nd, "trapezoid")
    upper, lower = getitem(y, _along(nd, ax, slice(1, None))), getitem(y, _along(nd, ax, slice(None, -1)))
    return np.sum(d * (upper + lower) / 2.0, axis)


# ---- unwrap --------------------------------------------------------------------------------------


def _unwrap_samples(rng):
    base = np.cumsum(rng.uniform(-2.5, 2.5, 8))
    wrapped = (base + np.pi) % (2 * np.pi) - np.pi
    out = [Sample(wrapped), Sample(wrapped.astype(np.float32)),
           Sample(np.stack([wrapped, wrapped[::-1]]), 2.0, 1, label="discont"),
           Sample(np.stack([wrapped, wrapped[::-1]]).T.copy(), axis=0, label="axis 0"),
           Sample(wrapped * 180 / np.pi, period=360.0, label="degrees"),
           Sample(np.array([0, 1, 5, 2, 6]), period=4, label="integer period")]
    return out


@composite(np.unwrap, samples=_unwrap_samples)
def unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    """``np.unwrap``: removes jumps larger than ``discont`` by multiples of
    ``period`` (piecewise constant, so the derivative in ``p`` is the identity).

    NumPy dispatches on ``p`` only: a traced ``discont`` or ``period`` works
    when ``p`` is traced too (with a plain ``p`` NumPy's own code runs)."""
    p = _operand(p)
    nd = ndim_of(p)
    dd = diff(p, axis=axis)
    if discont is None:
        discont = period / 2
    (ax,) = normalize_axes(axis, nd, "unwrap")
    dtype = np.result_type(dtype_of(dd), period if type(period) in (int, float) else dtype_of(period))
    if dtype.kind in "iu":
        interval_high, rem = divmod(period, 2)
        boundary_ambiguous = rem == 0
    else:
        interval_high = period / 2
        boundary_ambiguous = True
    interval_low = -interval_high
    ddmod = np.mod(dd - interval_low, period) + interval_low
    if isinstance(boundary_ambiguous, Tracer) or boundary_ambiguous:
        flip = (ddmod == interval_low) & (dd > 0)
        if isinstance(boundary_ambiguous, Tracer):
            flip = flip & boundary_ambiguous
        high = interval_high
        if type(high) not in (int, float):
            high = astype(high, dtype_of(ddmod))
        ddmod = np.where(flip, high, ddmod)
    ph_correct = ddmod - dd
    ph_correct = np.where(np.abs(dd) < discont, 0, ph_correct)
    head = getitem(p, _along(nd, ax, slice(0, 1)))
    tail = getitem(p, _along(nd, ax, slice(1, None))) + np.cumsum(ph_correct, ax)
    return concatenate_arrays([astype(head, dtype), astype(tail, dtype)], ax)


__all__ = ["diff", "ediff1d", "gradient", "trapezoid", "unwrap"]
