"""``logsumexp``, ``softmax`` and ``log_softmax`` (``scipy.special``) as primitives.

SciPy writes these as Python functions that call ``np.asarray`` on their
input, so they cannot see traced values; ``npfunc.scipy.special`` has these
twins instead.  Each is one max-shifted NumPy pass, and the derivative rules
reuse the output instead of recomputing the sum:

* ``logsumexp``: the weights ``p = exp(x - out)`` are the softmax, so
  ``jvp = sum(p t)`` and ``vjp = g p``.  Entries equal to -inf get weight 0
  and an all -inf slice (``out = -inf``) gets gradient 0 (never NaN).  With
  ``b``: ∂/∂x = b p sign and ∂/∂b = p sign, sign being that of the sum.
* ``softmax``: ``jvp = y (t - sum(t y))``, ``vjp = y (g - sum(g y))``.
* ``log_softmax``: ``jvp = t - sum(t exp(y))``, ``vjp = g - exp(y) sum(g)``.

Complex input to ``logsumexp`` goes through a composite of ``exp``/``log``.
"""
from __future__ import annotations

import numpy as np

from ...core.dispatch import implements_accumulate, implements_reduce
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import materialize_front
from ..elementwise.arithmetic import astype, stop_gradient
from ..families import binary, fit_cotangent, nondiff, normalize_axes
from ..sampling import FLOATS, array
from ..shape.basic import broadcast_to, reshape

_NEG_INF = -np.inf


# ---- shared NumPy kernel ---------------------------------------------------------------

def _shifted_sum(x, b, axes):
    """(sum(b * exp(x - m)), m) with the max ``m`` over ``axes`` kept, NaN-free shift."""
    if b is not None:
        x = np.where(b != 0, x, _NEG_INF)  # zero weights never set the shift
    m = np.max(x, axis=axes, keepdims=True, initial=_NEG_INF)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    if b is not None:
        e = b * e
    return np.sum(e, axis=axes, keepdims=True), m


def _lse_impl(x, *b, axes, keepdims, return_sign):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s, m = _shifted_sum(x, b[0] if b else None, axes)
        out = np.log(np.abs(s) if return_sign else s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axes)
        if out.ndim == 0:
            out = out[()]
    return out


def _lse_sign_impl(x, *b, axes, keepdims):
    with np.errstate(over="ignore", invalid="ignore"):
        s, _ = _shifted_sum(x, b[0] if b else None, axes)
    s = np.sign(s)
    if not keepdims:
        s = np.squeeze(s, axis=axes)
        if s.ndim == 0:
            s = s[()]
    return s


# ---- logsumexp ---------------------------------------------------------------------

def _kept(out, axes, keepdims):
    """``out`` reshaped to keep the reduced axes as size 1 (broadcasts against x)."""
    if keepdims:
        return out
    shape = list(shape_of(out))
    for a in axes:
        shape.insert(a, 1)
    return reshape(out, tuple(shape))


def _exp_shift_impl(x, o):
    with np.errstate(invalid="ignore"):
        return np.exp(x - np.where(o == _NEG_INF, 0, o))


_exp_shift = binary(
    "logsumexp_weights", _exp_shift_impl,
    partials=(lambda x, o, out: out, lambda x, o, out: -out),
    samples=lambda rng: [Sample(array(rng, (2, 3), dt), array(rng, (2, 1), dt)) for dt in FLOATS]
    + [Sample(np.array([[0.5, -np.inf], [-np.inf, -np.inf]]), np.array([[0.6], [-np.inf]]),
              label="-inf entries and an all -inf slice")],
    notes="exp(x - o), with o = -inf read as 0 (weights 0 for an all -inf slice)")


def _lse_weights(x, b, out, axes, keepdims, return_sign):
    """(p, sign): p = exp(x - out), 0 for an out = -inf slice; sign of the sum
    (a constant; only needed for signed sums)."""
    p = _exp_shift(x, _kept(out, axes, keepdims))
    if b is None or not return_sign:
        return p, None
    return p, np.sign(np.sum(b * p, axis=axes, keepdims=True))


def _lse_jvp(primals, tangents, out, *, axes, keepdims, return_sign):
    x, b = primals[0], (primals[1] if len(primals) > 1 else None)
    p, sign = _lse_weights(x, b, out, axes, keepdims, return_sign)
    if sign is not None:
        p = p * sign
    tx, tb = tangents[0], (tangents[1] if len(tangents) > 1 else zero)
    total = 0
    if tx is not zero:
        total = tx * (p if b is None else b * p)
    if tb is not zero:
        total = total + tb * p
    return astype(np.sum(total, axis=axes, keepdims=keepdims), dtype_of(out))


def _lse_vjp(g, primals, out, needs, *, axes, keepdims, return_sign):
    x, b = primals[0], (primals[1] if len(primals) > 1 else None)
    p, sign = _lse_weights(x, b, out, axes, keepdims, return_sign)
    gp = _kept(g, axes, keepdims) * p
    if sign is not None:
        gp = gp * sign
    ct_x = fit_cotangent(gp if b is None else gp * b, x) if needs[0] else zero
    if b is None:
        return (ct_x,)
    return ct_x, (fit_cotangent(gp, b) if needs[1] else zero)


def _reduce_batch(prim):
    """Reduce the same logical axes; x and b (same logical shape) batched in front."""

    def batch(vals, dims, *, axes, keepdims, **params):
        if len(vals) == 1:
            d = dims[0]
            phys = tuple(a + (a >= d) for a in axes)
            out_dim = d if keepdims else d - sum(a < d for a in axes)
            return prim.bind(vals[0], axes=phys, keepdims=keepdims, **params), out_dim
        size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
        vals = [materialize_front(v, d, size) for v, d in zip(vals, dims)]
        return prim.bind(*vals, axes=tuple(a + 1 for a in axes), keepdims=keepdims, **params), 0

    return batch


def _lse_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt, (-3, 3))
        out += [Sample(x, axes=(1,), keepdims=False, return_sign=False),
                Sample(x, axes=(0, 2), keepdims=True, return_sign=False),
                Sample(x, axes=(0, 1, 2), keepdims=False, return_sign=False),
                Sample(array(rng, (2, 3), dt), array(rng, (2, 3), dt, (0.2, 2)), axes=(1,), keepdims=False,
                       return_sign=False, label="b"),
                Sample(np.array([[0.5, 1.0, -1.0], [2.0, 0.1, 0.3]], dt),
                       np.array([[1.0, -2.0, 0.5], [-1.0, 0.2, 0.7]], dt), axes=(1,), keepdims=True,
                       return_sign=True, label="signed b")]
    out.append(Sample(np.array([[0.5, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]]), axes=(1,), keepdims=False,
                      return_sign=False, label="-inf entries"))
    out.append(Sample(np.array([[0.5, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], np.float32), axes=(1,),
                      keepdims=False, return_sign=False, label="all -inf slice: gradient 0"))
    return out


_lse = Primitive("logsumexp", _lse_impl, jvp=_lse_jvp, vjp=_lse_vjp, samples=_lse_samples,
                 notes="-inf entries get weight 0; an all -inf slice gets gradient 0")
_lse.batch = _reduce_batch(_lse)

_lse_sign = nondiff("logsumexp_sign", _lse_sign_impl, batch=None,
                    notes="the sign of sum(b exp(x)) for return_sign=True",
                    samples=lambda rng: [Sample(array(rng, (2, 3)), array(rng, (2, 3)), axes=(1,), keepdims=False),
                                         Sample(array(rng, (2, 3)), axes=(0, 1), keepdims=True)])
_lse_sign.primitive.batch = _reduce_batch(_lse_sign.primitive)


def _float_dtype(*values):
    dt = np.result_type(*[dtype_of(v) for v in values])
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _complex_logsumexp(a, axes, b, keepdims, return_sign):
    """Complex input: the max-shifted formula, written with differentiable operations."""
    m = stop_gradient(np.max(np.real(a), axis=axes, keepdims=True))
    m = np.where(np.isfinite(m), m, 0)
    s = np.sum(np.exp(a - m) if b is None else b * np.exp(a - m), axis=axes, keepdims=True)
    if return_sign:
        mag = np.abs(s)
        out, sign = np.log(mag) + m, s / np.where(mag == 0, 1, mag)
    else:
        out, sign = np.log(s) + m, None
    if not keepdims:
        out = reshape(out, tuple(n for i, n in enumerate(shape_of(out)) if i not in axes))
        sign = None if sign is None else reshape(sign, shape_of(out))
    return (out, sign) if return_sign else out


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``scipy.special.logsumexp`` for traced and plain values.

    ``log(sum(b * exp(a)))`` over ``axis`` without overflow.  Entries equal to
    -inf get zero gradient, and a slice that is entirely -inf gives -inf with
    gradient 0 (not NaN).

    >>> import numpy as np, npfunc
    >>> from npfunc.scipy.special import logsumexp
    >>> x = np.array([1.0, 2.0, -np.inf])
    >>> npfunc.grad(logsumexp)(x).round(4)
    array([0.2689, 0.7311, 0.    ])
    """
    a = a if isinstance(a, Tracer) else np.asarray(a)
    b = b if b is None or isinstance(b, Tracer) else np.asarray(b)
    dt = _float_dtype(a) if b is None else _float_dtype(a, b)
    a = astype(a, dt)
    if b is not None:
        b = astype(b, dt)
        shape = np.broadcast_shapes(tuple(shape_of(a)), tuple(shape_of(b)))
        a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    if ndim_of(a) == 0:
        a = reshape(a, (1,))
        b = None if b is None else reshape(b, (1,))
    axes = normalize_axes(axis, ndim_of(a), "logsumexp")
    keepdims = bool(keepdims)
    if dt.kind == "c":
        return _complex_logsumexp(a, axes, b, keepdims, bool(return_sign))
    args = (a,) if b is None else (a, b)
    out = _lse.bind(*args, axes=axes, keepdims=keepdims, return_sign=bool(return_sign))
    if not return_sign:
        return out
    return out, _lse_sign(*args, axes=axes, keepdims=keepdims)


logsumexp.primitive = _lse  # type: ignore[attr-defined]


# ---- np.logaddexp.reduce / accumulate --------------------------------------------------

def _logaddexp_only(name, out, extra=()):
    if out is not None or any(extra):
        raise UnsupportedOperationError(
            f"np.logaddexp.{name} with out= or where= is not supported on traced values: "
            "write scipy.special.logsumexp(a, axis=...) (b= for weights, np.where(mask, a, -np.inf) for a "
            "mask) and assign the result.")


@implements_reduce(np.logaddexp)
def logaddexp_reduce(a, axis=0, dtype=None, out=None, keepdims=False, initial=np._NoValue, where=True):
    """``np.logaddexp.reduce`` for traced values (an HMM's forward step, an importance
    sampler's log-sum of weights, written with NumPy alone): ``logsumexp`` over ``axis``,
    which is NumPy's running logaddexp to rounding, in the dtype and shape NumPy's
    reduction gives (NumPy reduces a zero array of the same shape first: it checks
    ``axis`` and says the dtype)."""
    _logaddexp_only("reduce", out, (where is not True and where is not None,))
    if dtype is not None:
        a = astype(a, dtype)
    like = np.logaddexp.reduce(np.zeros(shape_of(a), dtype_of(a)), axis=axis, keepdims=keepdims)
    dt = np.result_type(like)
    res = logsumexp(astype(a, dt), axis=axis, keepdims=keepdims)
    if initial is not np._NoValue and initial is not None:
        res = np.logaddexp(res, np.asarray(initial, dt))
    return astype(res, dt)


@implements_accumulate(np.logaddexp)
def logaddexp_accumulate(a, axis=0, dtype=None, out=None):
    """``np.logaddexp.accumulate`` (running log-evidence): NumPy's own sequential fold,
    np.logaddexp of the running value and the next slice, exact for any spread of values."""
    _logaddexp_only("accumulate", out)
    if dtype is not None:
        a = astype(a, dtype)
    if ndim_of(a) == 0:
        raise ValueError("np.logaddexp.accumulate: the input must have at least one dimension")
    axis = normalize_axes(axis, ndim_of(a), "logaddexp.accumulate")[0]
    a = np.moveaxis(astype(a, _float_dtype(a)), axis, 0)
    run = [a[0]]
    for i in range(1, shape_of(a)[0]):
        run.append(np.logaddexp(run[-1], a[i]))
    return np.stack(run, axis=axis)


# ---- softmax / log_softmax ------------------------------------------------------------

def _axes_batch(prim):
    def batch(vals, dims, *, axes):
        d = dims[0]
        return prim.bind(vals[0], axes=tuple(a + (a >= d) for a in axes)), d

    return batch


def _softmax_impl(x, *, axes):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axes, keepdims=True))
        return e / np.sum(e, axis=axes, keepdims=True)


def _log_softmax_impl(x, *, axes):
    m = np.max(x, axis=axes, keepdims=True)
    shifted = x - np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


def _softmax_jvp(primals, tangents, out, *, axes):
    (t,) = tangents
    return out * (t - np.sum(t * out, axis=axes, keepdims=True))


def _softmax_vjp(g, primals, out, needs, *, axes):
    return (fit_cotangent(out * (g - np.sum(g * out, axis=axes, keepdims=True)), primals[0]),)


def _log_softmax_jvp(primals, tangents, out, *, axes):
    (t,) = tangents
    return t - np.sum(t * np.exp(out), axis=axes, keepdims=True)


def _log_softmax_vjp(g, primals, out, needs, *, axes):
    return (fit_cotangent(g - np.exp(out) * np.sum(g, axis=axes, keepdims=True), primals[0]),)


def _softmax_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3, 4), dt, (-3, 3))
        out += [Sample(x, axes=(2,)), Sample(x, axes=(0, 2)), Sample(x, axes=(0, 1, 2)),
                Sample(array(rng, (5,), dt), axes=(0,))]
    return out


def _with_neg_inf(dtype):
    def make(rng):
        x = np.array([[0.5, -np.inf, 1.0], [-np.inf, 2.0, 0.1]], dtype)
        return _softmax_samples(rng) + [Sample(x, axes=(1,), label="-inf entries")]

    return make


_softmax = Primitive("softmax", _softmax_impl, jvp=_softmax_jvp, vjp=_softmax_vjp,
                     samples=_with_neg_inf(np.float64), notes="-inf entries: value 0, gradient 0")
_softmax.batch = _axes_batch(_softmax)
_log_softmax = Primitive("log_softmax", _log_softmax_impl, jvp=_log_softmax_jvp, vjp=_log_softmax_vjp,
                         samples=_with_neg_inf(np.float32),
                         notes="-inf entries: value -inf; the others' gradient ignores them")
_log_softmax.batch = _axes_batch(_log_softmax)


def _softmax_call(prim, x, axis, name):
    if not isinstance(x, (Tracer, np.ndarray)):
        x = np.asarray(x)
    if dtype_of(x).kind in "iu":  # SciPy exponentiates the integers: float16 for int8, float32 for int16
        x = astype(x, np.exp(np.zeros(0, dtype_of(x))).dtype)
    elif dtype_of(x).kind not in "fc":
        x = astype(x, np.float64)
    if dtype_of(x).kind == "c":
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError(f"npfunc.scipy.special.{name}: complex input is not supported; "
                                        "pass the real part, or use logsumexp (which accepts complex)")
    if ndim_of(x) == 0:  # SciPy gives a NumPy scalar for a 0-d input
        return reshape(prim.bind(reshape(x, (1,)), axes=(0,)), ())[()]
    return prim.bind(x, axes=normalize_axes(axis, ndim_of(x), name))


def softmax(x, axis=None):
    """``scipy.special.softmax`` for traced and plain values (real input).

    >>> import numpy as np, npfunc
    >>> from npfunc.scipy.special import softmax
    >>> softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    return _softmax_call(_softmax, x, axis, "softmax")


def log_softmax(x, axis=None):
    """``scipy.special.log_softmax`` for traced and plain values (real input)."""
    return _softmax_call(_log_softmax, x, axis, "log_softmax")


softmax.primitive = _softmax  # type: ignore[attr-defined]
log_softmax.primitive = _log_softmax  # type: ignore[attr-defined]
