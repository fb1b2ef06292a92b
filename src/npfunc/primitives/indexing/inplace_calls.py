"""Registry samples for the NumPy functions that write into their first
argument (``np.copyto``, ``np.put``, ``np.put_along_axis``,
``np.fill_diagonal``; implemented in ``inplace``).

The generated tests call each as a user does -- on a fresh copy, which is
then returned -- so that values, derivatives (in the written array and in
the values written) and batching are checked like any other function.

Two harness details hold until the in-place rewrite of ``inplace.py``
(views, main) lands, which makes both cases work; then drop them:

* a plain array cannot take a traced write (``np.copy`` of a plain argument
  is plain, and writing a batched value into it raises), so the harness's
  copy is made to depend (with an exact zero) on a traced argument;
* ``np.copyto`` of a plain ``src`` into a traced ``dst`` raises on this
  branch, so ``src`` is made traced with ``dst`` (an exact zero again).

Values are finite, so ``0 * values`` is exactly 0.
"""
from __future__ import annotations

import numpy as np

from ...core.dispatch import describe
from ...core.primitive import Composite, Sample
from ...core.tracer import Tracer
from ..sampling import FLOATS, array, bool_array, int8_array


def _zero_from(x):
    """An exact 0 traced as ``x`` is (entries of ``x`` are finite)."""
    return np.sum(x * 0)


def _writes_into_copy(target):
    def call(a, *args, **params):
        out = np.copy(a)
        traced = [x for x in args if isinstance(x, Tracer)]
        if traced and not isinstance(a, Tracer):
            out = np.astype(out + _zero_from(traced[0]), out.dtype)
        if target is np.copyto and isinstance(out, Tracer) and not isinstance(args[0], Tracer):
            src = np.asarray(args[0])
            args = (np.astype(src + _zero_from(out), src.dtype),) + args[1:]
        target(out, *args, **params)
        return out

    call.__name__ = f"{target.__name__}_into_copy"
    return call


def _copyto(rng):
    out = []
    for dt in FLOATS:
        dst = array(rng, (2, 3), dt)
        out += [Sample(dst, array(rng, (2, 3), dt)), Sample(dst, array(rng, (3,), dt), label="broadcast"),
                Sample(dst, array(rng, (2, 3), dt), where=bool_array(rng, (2, 3))),
                Sample(dst, 1.5, label="python scalar")]
    return out + [Sample(array(rng, (2, 3), np.float32), array(rng, (2, 3)), label="float64 into float32"),
                  Sample(int8_array(rng, (3,)), int8_array(rng, (3,)), label="int8"),
                  Sample(array(rng, (3,)), array(rng, (3,)), casting="unsafe", where=bool_array(rng, (3,)))]


def _put(rng):
    out = []
    for dt in FLOATS:
        a = array(rng, (3, 4), dt)
        out += [Sample(a, [0, 5, 11], array(rng, (3,), dt)), Sample(a, [2, 7], 0.5),
                Sample(a, [1, 2, 3, 4], array(rng, (2,), dt), label="values cycle")]
    a = array(rng, (2, 3))
    return out + [Sample(a, [7, -8], array(rng, (2,)), mode="wrap"), Sample(a, [9, -1], array(rng, (2,)), mode="clip"),
                  Sample(a, [1, 1], array(rng, (2,)), label="repeated index: the last write wins", kink=True),
                  Sample(int8_array(rng, (4,)), [0, 3], int8_array(rng, (2,)), label="int8")]


def _put_along_axis(rng):
    out = []
    for dt in FLOATS:
        a = array(rng, (3, 4), dt)
        out += [Sample(a, np.argsort(a, axis=1)[:, :2], array(rng, (3, 2), dt), 1),
                Sample(a, np.argsort(a, axis=0)[:1], array(rng, (1, 4), dt), 0),
                Sample(a, np.argsort(a, axis=1)[:, :1], 0.25, -1, label="scalar value")]
    a = array(rng, (3, 4))
    return out + [Sample(a, np.array([1, 5, 10]), array(rng, (3,)), None, label="flattened"),
                  Sample(int8_array(rng, (2, 3)), np.array([[2], [0]]), int8_array(rng, (2, 1)), 1, label="int8")]


def _fill_diagonal(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 3), dt), 0.5), Sample(array(rng, (3, 4), dt), array(rng, (3,), dt)),
                Sample(array(rng, (5, 2), dt), array(rng, (2,), dt), wrap=True),
                Sample(array(rng, (5, 2), dt), 1.0, True), Sample(array(rng, (2, 2, 2), dt), -1.0, label="3-d")]
    return out + [Sample(array(rng, (3, 3)), array(rng, (2,)), label="values cycle"),
                  Sample(int8_array(rng, (3, 3)), 7, label="int8")]


for _target, _samples in ((np.copyto, _copyto), (np.put, _put), (np.put_along_axis, _put_along_axis),
                          (np.fill_diagonal, _fill_diagonal)):
    Composite(describe(_target), _writes_into_copy(_target), samples=_samples,
              notes="writes into its first argument: checked on a fresh copy")
del _target, _samples
