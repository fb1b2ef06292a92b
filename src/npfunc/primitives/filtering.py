"""The all-pole recursive filter (the primitive behind
``npfunc.scipy.signal.lfilter`` and ``sosfilt``).

``iir(a, v)`` solves ``sum_k a[k] y[n - k] = v[n]`` along the last axis
(``y = lfilter([1], a, v)``): a lower-triangular Toeplitz system ``T_a y =
v``.  Its rules are those of a triangular solve with a Toeplitz matrix:

* JVP: ``dy = iir(a, dv - da * y)`` (``*`` the causal convolution);
* VJP: ``g_v = T_a^{-H} g``, the same recursion run backwards in time with
  ``conj(a)`` (``flip(iir(conj(a), flip(g)))``), and
  ``g_a[k] = -sum_n g_v[n] conj(y[n - k])``, a correlation.

All are written with this primitive and npfunc's convolution, so every
order of derivative and every batch works.  Leading axes of ``a`` and ``v``
broadcast.  SciPy's filter takes one coefficient vector per call, so
different filters (a batched ``a``) are run one coefficient vector at a
time, each over all the signals it applies to; the signals themselves are
always filtered in one vectorised call.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Primitive, Sample
from ..core.values import dtype_of, ndim_of, shape_of
from ..core.zeros import zero
from ..interpreters.batching import align_front
from .convolution import window_conv
from .families import conj, fit_cotangent
from .sampling import FLOATS, array
from .shape.arranging import flip
from .shape.basic import concatenate_arrays


def _iir_impl(a, v):
    from scipy.signal import lfilter

    dtype = np.result_type(a, v, np.float16)
    if ndim_of(a) == 1:
        return np.asarray(lfilter(np.ones(1, dtype), a, v, axis=-1), dtype)
    lead = np.broadcast_shapes(a.shape[:-1], v.shape[:-1])
    a_lead = (1,) * (len(lead) - (a.ndim - 1)) + a.shape[:-1]
    a2 = a.reshape(a_lead + a.shape[-1:])
    v2 = np.broadcast_to(v, lead + v.shape[-1:])
    out = np.empty(lead + v.shape[-1:], dtype)
    for idx in np.ndindex(*a_lead):  # one call per coefficient vector (see module doc)
        sel = tuple(i if s != 1 else slice(None) for i, s in zip(idx, a_lead))
        out[sel] = lfilter(np.ones(1, dtype), a2[idx], v2[sel], axis=-1)
    return out


def causal_conv(h, x):
    """``out[n] = sum_k h[k] x[n - k]`` for ``n < len(x)`` along the last axis
    (leading axes broadcast)."""
    n = shape_of(x)[-1]
    return window_conv(x, h, start=(0,), shape=(n,))


def _iir_jvp(primals, tangents, out):
    a, _ = primals
    ta, tv = tangents
    rhs = tv
    if ta is not zero:
        term = -causal_conv(ta, out)
        rhs = term if rhs is zero else rhs + term
    return _iir.bind(a, rhs)


def _iir_vjp(g, primals, out, needs):
    a, v = primals
    gv = flip(_iir.bind(conj(a), flip(g, axis=-1)), axis=-1)
    ga = zero
    if needs[0]:
        n, k = shape_of(out)[-1], shape_of(a)[-1]
        lags = min(k, n)  # lags beyond the signal length see only zeros
        corr = window_conv(gv, out, start=(n - 1,), shape=(lags,), correlate=True)
        if lags < k:
            corr = concatenate_arrays([corr, np.zeros(tuple(shape_of(corr)[:-1]) + (k - lags,), dtype_of(corr))],
                                      ndim_of(corr) - 1)
        ga = fit_cotangent(-corr, a)
    return ga, fit_cotangent(gv, v) if needs[1] else zero


def _iir_batch(vals, dims):
    vals, _ = align_front(list(vals), list(dims))
    return _iir.bind(*vals), 0


def stable_denominator(rng, order, dtype=np.float64, lead=()):
    """Coefficients ``[1, a1, ..]`` of a stable all-pole filter (poles inside 0.8)."""
    poles = 0.8 * rng.uniform(-1.0, 1.0, tuple(lead) + (order,))
    a = np.ones(tuple(lead) + (1,))
    for k in range(order):
        p = poles[..., k:k + 1]
        a = np.concatenate([a, np.zeros(tuple(lead) + (1,))], axis=-1) - p * np.concatenate(
            [np.zeros(tuple(lead) + (1,)), a], axis=-1)
    return a.astype(dtype)


def _iir_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(stable_denominator(rng, 2, dt) * 1.5, array(rng, (7,), dt)),
                Sample(stable_denominator(rng, 3, dt), array(rng, (2, 6), dt), label="stacked signals")]
    out += [Sample(stable_denominator(rng, 2, lead=(2,)), array(rng, (2, 5)), label="stacked filters"),
            Sample(stable_denominator(rng, 4), array(rng, (3,)), label="order above length"),
            Sample(stable_denominator(rng, 2) + 0.1j, array(rng, (5,)) + 0.5j, label="complex")]
    return out


_iir = Primitive("iir_filter", _iir_impl, jvp=_iir_jvp, vjp=_iir_vjp, batch=_iir_batch, samples=_iir_samples,
                 notes="sum_k a[k] y[n-k] = v[n] (lfilter([1], a, v)); VJP runs the recursion backwards in "
                       "time; stacked filters are one SciPy call each")


def iir(a, v):
    """``y`` with ``sum_k a[k] y[n - k] = v[n]`` along the last axis."""
    return _iir.bind(a, v)


__all__ = ["iir", "causal_conv", "stable_denominator"]
