"""Twins of ``scipy.signal.lfilter`` and ``sosfilt`` (re-exported by
``npfunc.scipy.signal``), differentiable in the signal, the coefficients and
the initial conditions.

With SciPy's normalisation ``b /= a[0]``, ``a /= a[0]`` and ``K = max(len(a),
len(b))``, the filter output is the solution of

    a * y = b * x + z          (``*`` causal convolution, ``z`` = ``zi`` then zeros)

so ``y = iir(a, causal(b, x) + z)`` (``npfunc.primitives.filtering``), and the
final state is the part of ``b * x - a * y + z`` that falls past the end
of the signal: ``zf = (b * x - a * y + z)[N : N + K - 1]`` with full
convolutions.  ``sosfilt`` cascades second-order sections.

``filtfilt`` / ``sosfiltfilt`` follow SciPy's documented recipe with these
filters: extend the signal by ``padlen`` samples at each end ('odd', 'even',
'constant' or no extension), start from the steady state of the step
response (``lfilter_zi`` / ``sosfilt_zi``, a small linear solve) scaled by
the first sample, filter, reverse, filter again from the steady state of the
last sample, reverse and trim.  Plain inputs get SciPy's own results (the
SciPy function is called).
"""
from __future__ import annotations

import numpy as np

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..core.tracer import Tracer
from ..core.values import dtype_of, ndim_of, shape_of
from ..primitives.convolution import window_conv
from ..primitives.data_dependent import as_array, check, concrete, ensure
from ..primitives.filtering import causal_conv, iir
from ._routing import traced

__all__ = ["lfilter", "sosfilt", "lfilter_zi", "sosfilt_zi", "filtfilt", "sosfiltfilt"]


def _coefficients(c, name):
    c = np.atleast_1d(as_array(c))
    if not (ndim_of(c) == 1 and shape_of(c)[0] > 0):
        raise ValueError(f"Parameter {name} is not a non-empty 1d array, since {name}.shape={tuple(shape_of(c))}!")
    return c


def _padded(c, k):
    n = shape_of(c)[-1]
    return c if n == k else np.concatenate([c, np.zeros(k - n, dtype_of(c))])


def _fit_zi(zi, x, axis, k):
    """``zi`` with its filter-state axis last, singleton axes expanded to ``x``'s."""
    zi = as_array(zi)
    if ndim_of(zi) != ndim_of(x):
        raise ValueError(f"Dimensions of parameters x and zi must match, but x.ndim={ndim_of(x)}, "
                         f"zi.ndim={ndim_of(zi)}!")
    expected = list(shape_of(x))
    expected[axis] = k - 1
    for d, (s, e) in enumerate(zip(shape_of(zi), expected)):
        if s != e and not (d != axis % ndim_of(x) and s == 1):
            raise ValueError(f"Unexpected shape for parameter zi: expected {tuple(expected)}, "
                             f"found {tuple(shape_of(zi))}.")
    return np.moveaxis(np.broadcast_to(zi, tuple(expected)), axis, -1)


def lfilter(b, a, x, axis=-1, zi=None):
    """``scipy.signal.lfilter``: the output of the IIR filter ``b / a`` on ``x``
    along ``axis`` (and the final state ``zf`` when ``zi`` is given).

    >>> import numpy as np, npfunc
    >>> x = np.array([1.0, 0.0, 0.0, 0.0])
    >>> lfilter([1.0], [1.0, -0.5], x)
    array([1.   , 0.5  , 0.25 , 0.125])
    >>> npfunc.grad(lambda a1: lfilter([1.0], np.stack([1.0, a1]), x).sum())(-0.5)  # -(1 + 2/2 + 3/4)
    np.float64(-2.75)
    """
    b, a = _coefficients(b, "b"), _coefficients(a, "a")
    x = as_array(x)
    if ndim_of(x) == 0:
        raise ValueError("Parameter x must be at least 1d")
    dtype = np.result_type(dtype_of(b), dtype_of(a), dtype_of(x), *(() if zi is None else (dtype_of(as_array(zi)),)))
    if dtype.char not in "fdgFDG":
        raise NotImplementedError(f"Parameter's dtypes produced result type '{dtype}', which is not supported!")
    axis = int(axis)
    k = max(shape_of(a)[0], shape_of(b)[0])
    z = None if zi is None else _fit_zi(zi, x, axis, k)
    xl = np.moveaxis(x, axis, -1).astype(dtype)
    n = shape_of(xl)[-1]
    a0 = a[0]
    bn, an = b.astype(dtype) / a0, a.astype(dtype) / a0
    v = causal_conv(bn, xl)
    if z is not None and k > 1:
        head = z[..., :n] if k - 1 >= n else np.concatenate(
            [z, np.zeros(tuple(shape_of(z)[:-1]) + (n - (k - 1),), dtype)], axis=-1)
        v = v + head.astype(dtype)
    y = v if shape_of(a)[0] == 1 else iir(an, v)
    out = np.moveaxis(y, -1, axis)
    if z is None:
        return out
    if k == 1:
        return out, np.moveaxis(np.zeros(tuple(shape_of(xl)[:-1]) + (0,), dtype), -1, axis)
    past = (window_conv(xl, _padded(bn, k), start=(n,), shape=(k - 1,))
            - window_conv(y, _padded(an, k), start=(n,), shape=(k - 1,)))
    if k - 1 > n:  # the initial state reaches past the end of a short signal
        past = past + np.concatenate([np.zeros(tuple(shape_of(z)[:-1]) + (0,), dtype), z[..., n:],
                                      np.zeros(tuple(shape_of(z)[:-1]) + (n,), dtype)], axis=-1)[..., :k - 1]
    return out, np.moveaxis(past.astype(dtype), -1, axis)


def sosfilt(sos, x, axis=-1, zi=None):
    """``scipy.signal.sosfilt``: a cascade of second-order sections (rows of
    ``sos``: ``b0 b1 b2 a0 a1 a2`` with ``a0 == 1``); ``zi`` has shape
    ``(n_sections, ..., 2, ...)`` with the 2 at ``axis``."""
    sos = np.atleast_2d(as_array(sos))
    if ndim_of(sos) != 2 or shape_of(sos)[1] != 6:
        raise ValueError("sos array must be shape (n_sections, 6)")
    checked = ensure(np.not_equal(sos[:, 3], 1), "all_false", "sos[:, 3] should be all ones")
    sos = np.where(np.any(checked), sos, sos)  # the check stays part of a recorded computation
    x = as_array(x)
    axis = int(axis) % max(ndim_of(x), 1)
    n_sections = shape_of(sos)[0]
    if zi is not None:
        zi = as_array(zi)
        expected = (n_sections,) + tuple(shape_of(x))[:axis] + (2,) + tuple(shape_of(x))[axis + 1:]
        if tuple(shape_of(zi)) != expected:
            raise ValueError(f"Invalid zi shape. With axis={axis!r}, an input with shape {tuple(shape_of(x))!r}, "
                             f"and an sos array with {n_sections} sections, zi must have shape {expected!r}, "
                             f"got {tuple(shape_of(zi))!r}.")
    y, finals = x, []
    for s in range(n_sections):
        if zi is None:
            y = lfilter(sos[s, :3], sos[s, 3:], y, axis=axis)
        else:
            y, zf = lfilter(sos[s, :3], sos[s, 3:], y, axis=axis, zi=zi[s])
            finals.append(zf)
    if zi is None:
        return y
    return y, np.stack(finals)


# ---- zero-phase filtering ------------------------------------------------------------------------

def _scipy():
    import scipy.signal  # here, not at import: importing it routes it to npfunc.scipy.signal, which imports this

    return scipy.signal


def _array(v):
    """``v`` as an array; a list holding traced values is stacked (``np.stack`` dispatches to npfunc)."""
    if type(v) in (list, tuple) and traced(v):
        return np.stack([_array(w) for w in v])
    return as_array(v)


def lfilter_zi(b, a):
    """``scipy.signal.lfilter_zi``: the state ``zi`` of ``lfilter(b, a, ..., zi=zi)``
    for the steady state of the step response, the solution of ``(I - A) zi = B``
    (differentiable in ``b`` and ``a``).  A traced ``a`` must not start with a zero
    (SciPy drops leading zeros, which would change shapes with the values).

    >>> import numpy as np, npfunc
    >>> lfilter_zi([1.0], [1.0, -0.5])  # y[n] = x[n] + 0.5 y[n - 1] settles at 2 for x = 1: zi = 2 - 1
    array([1.])
    >>> npfunc.grad(lambda a1: lfilter_zi([1.0], np.stack([1.0, a1]))[0])(-0.5)  # d/da1 of -a1 / (1 + a1)
    np.float64(-4.0)
    """
    if not traced((b, a)):
        return _scipy().lfilter_zi(b, a)
    b, a = np.atleast_1d(_array(b)), np.atleast_1d(_array(a))
    if ndim_of(b) != 1:
        raise ValueError("Numerator b must be 1-D.")
    if ndim_of(a) != 1:
        raise ValueError("Denominator a must be 1-D.")
    if isinstance(a, Tracer):
        if shape_of(a)[0] > 1:
            check(a[0], "nonzero", "scipy.signal.lfilter_zi: a traced denominator `a` must have a[0] != 0 "
                  "(SciPy drops leading zeros of `a`, which changes the shapes with the values); drop them "
                  "before the call")
    else:
        while shape_of(a)[0] > 1 and a[0] == 0.0:
            a = a[1:]
    if shape_of(a)[0] < 1:
        raise ValueError("There must be at least one nonzero `a` coefficient.")
    dtype = np.result_type(dtype_of(b), dtype_of(a))
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    a0 = a[0]
    b, a = b.astype(dtype) / a0, a.astype(dtype) / a0
    n = max(shape_of(a)[0], shape_of(b)[0])
    a, b = _padded(a, n), _padded(b, n)
    if n == 1:
        return np.zeros(0, dtype_of(b))
    first = np.zeros(n - 1, dtype)
    first[0] = 1
    # I - companion(a).T: the identity, minus ones above the diagonal, plus a[1:] down the first column
    i_minus_a = (np.eye(n - 1, dtype=dtype) - np.eye(n - 1, k=1, dtype=dtype)) + a[1:, None] * first
    return np.linalg.solve(i_minus_a, b[1:] - a[1:] * b[0])


def sosfilt_zi(sos):
    """``scipy.signal.sosfilt_zi``: the initial states (shape ``(n_sections, 2)``)
    of ``sosfilt`` for the steady state of the step response (differentiable in
    ``sos``).

    >>> sosfilt_zi([[1.0, 0.0, 0.0, 1.0, -0.5, 0.0]])
    array([[1., 0.]])
    """
    if not traced((sos,)):
        return _scipy().sosfilt_zi(sos)
    sos = _array(sos)
    if ndim_of(sos) != 2 or shape_of(sos)[1] != 6:
        raise ValueError("sos must be shape (n_sections, 6)")
    if dtype_of(sos).kind in "biu":
        sos = sos.astype(np.float64)
    dtype, rows, scale = dtype_of(sos), [], 1.0
    for s in range(shape_of(sos)[0]):
        b, a = sos[s, :3], sos[s, 3:]
        rows.append((scale * lfilter_zi(b, a)).astype(dtype))
        scale = scale * (b.sum() / a.sum())  # the section's gain at zero frequency
    return np.stack(rows) if rows else np.zeros((0, 2), dtype)


def _axis_slice(x, axis, start=None, stop=None):
    index = [slice(None)] * ndim_of(x)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _validate_pad(padtype, padlen, x, axis, ntaps):
    """SciPy's pad rules: ``(edge, extended x)``."""
    if padtype not in ("even", "odd", "constant", None):
        raise ValueError(f"Unknown value '{padtype}' given to padtype. "
                         "padtype must be 'even', 'odd', 'constant', or None.")
    edge = 0 if padtype is None else ntaps() * 3 if padlen is None else padlen
    if shape_of(x)[axis] <= edge:
        raise ValueError(f"The length of the input vector x must be greater than padlen, which is {edge}.")
    if padtype is None or edge <= 0:
        return edge, x
    xl = np.moveaxis(x, axis, -1)
    first, last = xl[..., :1], xl[..., -1:]
    if padtype == "constant":
        ones = np.ones(edge, dtype_of(xl))
        left, right = first * ones, last * ones
    else:  # mirror images about the end samples (odd: also turned upside down about them)
        left, right = np.flip(xl[..., 1:edge + 1], -1), np.flip(xl[..., -edge - 1:-1], -1)
        if padtype == "odd":
            left, right = 2 * first - left, 2 * last - right
    return edge, np.moveaxis(np.concatenate([left, xl, right], axis=-1), -1, axis)


def _forward_backward(run, zi, ext, axis, edge):
    """Filter ``ext`` from the steady state ``zi`` scaled by its first sample, then the
    reversed output from ``zi`` scaled by its last sample; reverse and trim."""
    y = run(ext, zi * _axis_slice(ext, axis, stop=1))
    y = np.flip(run(np.flip(y, axis), zi * _axis_slice(y, axis, start=-1)), axis)
    return _axis_slice(y, axis, edge, -edge) if edge > 0 else y


def filtfilt(b, a, x, axis=-1, padtype="odd", padlen=None, method="pad", irlen=None):
    """``scipy.signal.filtfilt``: zero-phase filtering, ``lfilter`` forwards and
    backwards over ``x`` extended at both ends (``padtype`` 'odd', 'even',
    'constant' or None; ``padlen`` samples, default ``3 * max(len(a), len(b))``),
    differentiable in ``b``, ``a`` and ``x``.  ``method='gust'`` takes plain
    values only.

    >>> import numpy as np, npfunc
    >>> b, a = [0.5, 0.5], [1.0]
    >>> filtfilt(b, a, np.array([0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0]))
    array([0., 1., 2., 1., 0., 0., 0.])
    >>> npfunc.grad(lambda x: filtfilt(b, a, x)[2])(np.zeros(7))
    array([0.  , 0.25, 0.5 , 0.25, 0.  , 0.  , 0.  ])
    """
    if not traced((b, a, x)):
        return _scipy().filtfilt(b, a, x, axis=axis, padtype=padtype, padlen=padlen, method=method, irlen=irlen)
    if method not in ("pad", "gust"):
        raise ValueError("method must be 'pad' or 'gust'.")
    if method == "gust":
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.signal.filtfilt(..., method='gust') (Gustafsson's initial conditions, "
            f"found by a least-squares fit) takes plain values only. Use method='pad' (the default), with "
            f"padtype/padlen as needed, or call it outside the transform.")
    b, a, x = np.atleast_1d(_array(b)), np.atleast_1d(_array(a)), _array(x)
    ntaps = max(shape_of(a)[0], shape_of(b)[0])
    edge, ext = _validate_pad(padtype, padlen, x, axis, lambda: ntaps)
    zi = lfilter_zi(b, a)
    zi_shape = [1] * ndim_of(x)
    zi_shape[axis] = shape_of(zi)[0]
    return _forward_backward(lambda v, z: lfilter(b, a, v, axis=axis, zi=z)[0],
                             np.reshape(zi, zi_shape), ext, axis, edge)


def sosfiltfilt(sos, x, axis=-1, padtype="odd", padlen=None):
    """``scipy.signal.sosfiltfilt``: zero-phase filtering with second-order
    sections, ``sosfilt`` forwards and backwards (padding as ``filtfilt``),
    differentiable in ``sos`` and ``x``.  SciPy's default ``padlen`` depends on
    which of ``sos[:, 2]`` and ``sos[:, 5]`` are zero: a traced ``sos`` under
    ``vmap``/``jit`` needs an explicit ``padlen``, and derivatives are taken at
    a fixed ``padlen`` (SciPy's output jumps where a zero entry becomes nonzero).

    >>> import numpy as np, npfunc
    >>> sos = [[0.5, 0.5, 0.0, 1.0, 0.0, 0.0]]
    >>> sosfiltfilt(sos, np.array([0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0]), padlen=2)
    array([0., 1., 2., 1., 0., 0., 0.])
    """
    if not traced((sos, x)):
        return _scipy().sosfiltfilt(sos, x, axis=axis, padtype=padtype, padlen=padlen)
    sos = np.atleast_2d(_array(sos))
    if ndim_of(sos) != 2:
        raise ValueError("sos array must be 2D")
    if shape_of(sos)[1] != 6:
        raise ValueError("sos array must be shape (n_sections, 6)")
    check(np.not_equal(sos[:, 3], 1), "all_false", "sos[:, 3] should be all ones")
    x = _array(x)
    if ndim_of(x) == 0:
        raise ValueError("x must be at least 1-D")
    n_sections = shape_of(sos)[0]

    def ntaps():  # SciPy's: one tap fewer for each first-order section
        plain = concrete(sos, "scipy.signal.sosfiltfilt(sos, x) with the default padlen (set by which "
                         "entries of sos[:, 2] and sos[:, 5] are zero)", "Pass padlen explicitly (SciPy's "
                         "default is 3 * (2 * n_sections + 1 - min(sum(sos[:, 2] == 0), sum(sos[:, 5] == 0)))).")
        return 2 * n_sections + 1 - int(min((plain[:, 2] == 0).sum(), (plain[:, 5] == 0).sum()))

    edge, ext = _validate_pad(padtype, padlen, x, axis, ntaps)
    zi_shape = [1] * ndim_of(x)
    zi_shape[axis] = 2
    zi = np.reshape(sosfilt_zi(sos), [n_sections] + zi_shape)
    return _forward_backward(lambda v, z: sosfilt(sos, v, axis=axis, zi=z)[0], zi, ext, axis, edge)
