"""``rankdata`` and ``mode``: integer-valued (or selected) summaries with no
derivative.  SciPy computes them on the plain values; under ``vmap`` the
batch axis is moved to the front and the reduction axis shifted past it,
so one SciPy call handles the whole batch.

>>> import numpy as np
>>> from npfunc.scipy import stats
>>> stats.rankdata(np.array([3.0, 1.0, 2.0]))
array([3., 1., 2.])
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import ndim_of
from ...interpreters.batching import move_to_front

ModeResult = namedtuple("ModeResult", ["mode", "count"])


def _rank_impl(a, *, method, axis, nan_policy):
    import scipy.stats as st

    return st.rankdata(a, method=method, axis=axis, nan_policy=nan_policy)


def _rank_batch(values, dims, *, method, axis, nan_policy):
    (a,), (d,) = values, dims
    a = move_to_front(a, d)
    if axis is None:
        out = _rank.bind(np.reshape(a, (a.shape[0], -1)), method=method, axis=1, nan_policy=nan_policy)
    else:
        out = _rank.bind(a, method=method, axis=axis % (a.ndim - 1) + 1, nan_policy=nan_policy)
    return out, 0


def _rank_samples(rng):
    a = np.array([[3.0, 1.0, 2.0, 2.0], [0.5, 0.5, -1.0, 4.0]])  # ties: ranks jump there
    return [Sample(a, method="average", axis=None, nan_policy="propagate", kink=True),
            Sample(a, method="min", axis=1, nan_policy="propagate", kink=True),
            Sample(a, method="dense", axis=0, nan_policy="propagate", kink=True),
            Sample(np.array([1.0, np.nan, 0.0]), method="ordinal", axis=-1, nan_policy="omit",
                   kink=True)]  # (a NaN rank: differences are NaN there)


_rank = Primitive("stats_rankdata", _rank_impl, differentiable=False, batch=_rank_batch, samples=_rank_samples,
                  notes="scipy.stats.rankdata: ranks, no derivative")


def rankdata(a, method="average", *, axis=None, nan_policy="propagate"):
    """``scipy.stats.rankdata`` for traced and plain values (no derivative)."""
    if method not in ("average", "min", "max", "dense", "ordinal"):
        raise ValueError(f'unknown method "{method}"')
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    return _rank.bind(a, method=method, axis=axis, nan_policy=nan_policy)


def _mode_impl(a, *, axis, nan_policy, keepdims):
    import scipy.stats as st

    out = st.mode(a, axis=axis, nan_policy=nan_policy, keepdims=keepdims)
    return np.asarray(out.mode), np.asarray(out.count)


def _mode_batch(values, dims, *, axis, nan_policy, keepdims):
    (a,), (d,) = values, dims
    a = move_to_front(a, d)
    if axis is None:
        flat = np.reshape(a, (a.shape[0], -1))
        mode, count = _mode.bind(flat, axis=1, nan_policy=nan_policy, keepdims=False)
        if keepdims:
            kept = (a.shape[0],) + (1,) * (a.ndim - 1)
            mode, count = np.reshape(mode, kept), np.reshape(count, kept)
        return (mode, count), (0, 0)
    out = _mode.bind(a, axis=axis % (a.ndim - 1) + 1, nan_policy=nan_policy, keepdims=keepdims)
    return out, (0, 0)


def _mode_samples(rng):
    a = np.array([[1.0, 2.0, 2.0, 5.0], [3.0, 3.0, 1.0, 1.0], [0.5, 4.0, 0.5, 0.5]])  # ties decide the mode
    return [Sample(a, axis=0, nan_policy="propagate", keepdims=False, kink=True),
            Sample(a, axis=-1, nan_policy="propagate", keepdims=True, kink=True),
            Sample(a, axis=None, nan_policy="propagate", keepdims=False, kink=True)]


_mode = Primitive("stats_mode", _mode_impl, differentiable=False, multiple_results=True, batch=_mode_batch,
                  samples=_mode_samples, notes="scipy.stats.mode: (mode, count), no derivative")


def mode(a, axis=0, nan_policy="propagate", keepdims=False):
    """``scipy.stats.mode`` for traced and plain values: ``ModeResult(mode, count)``, no derivative."""
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    if ndim_of(a) == 0 and axis is not None:
        axis = None
    out_mode, count = _mode.bind(a, axis=axis, nan_policy=nan_policy, keepdims=keepdims)
    if isinstance(out_mode, np.ndarray) and out_mode.ndim == 0:
        out_mode, count = out_mode[()], count[()]
    return ModeResult(out_mode, count)
