"""``scipy.stats.linregress`` on traced values.

SciPy's version checks its data with Python ``if``s (NaNs, identical x, the
clipping of r), which a traced value under ``jit`` or ``vmap`` cannot answer;
here the same statistics are written with ``np.where``, so every transform
runs them.  Plain calls are SciPy's own (the router calls this only with a
traced argument)."""
from __future__ import annotations

import numpy as np
import scipy.special as sc


def linregress(x, y, alternative="two-sided", *, axis=0, nan_policy="propagate", keepdims=False):
    """``scipy.stats.linregress`` of 1-d ``x`` and ``y``:
    slope, intercept, r, the p-value of r = 0 (Student's t with n - 2 degrees of
    freedom) and the standard errors, differentiable in ``x`` and ``y``."""
    from scipy.stats._stats_py import LinregressResult

    from ...core.context import describe_stack
    from ...core.errors import UnsupportedOperationError

    if nan_policy != "propagate" or keepdims or alternative not in ("two-sided", "less", "greater"):
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.stats.linregress on traced values supports nan_policy='propagate', "
            "keepdims=False and alternative 'two-sided', 'less' or 'greater'")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 1 or y.ndim != 1:
        raise UnsupportedOperationError(f"{describe_stack()}: scipy.stats.linregress on traced values takes 1-d "
                                        "x and y (call it per row for batched data, or under vmap)")
    n = x.shape[0]
    if n <= 2:  # SciPy's two-point case returns Python floats chosen by comparing the values
        raise UnsupportedOperationError(f"{describe_stack()}: scipy.stats.linregress of {n} points on traced "
                                        "values: give at least 3 points")
    xmean, ymean = np.mean(x), np.mean(y)
    ssxm, ssxym, _, ssym = np.reshape(np.cov(x, y, bias=1), (4,))
    degenerate = (ssxm == 0.0) | (ssym == 0.0)
    safe = np.where(degenerate, 1.0, ssxm * ssym)
    r = np.where(degenerate, np.where(ssxym == 0, np.nan, 0.0), np.clip(ssxym / np.sqrt(safe), -1.0, 1.0))
    slope = ssxym / ssxm
    intercept = ymean - slope * xmean
    df = n - 2
    tiny = 1.0e-20
    t = r * np.sqrt(df / ((1.0 - r + tiny) * (1.0 + r + tiny)))
    if alternative == "two-sided":
        pvalue = 2 * sc.stdtr(df, -np.abs(t))
    elif alternative == "less":
        pvalue = sc.stdtr(df, t)
    else:
        pvalue = sc.stdtr(df, -t)
    slope_stderr = np.sqrt((1 - r ** 2) * ssym / ssxm / df)
    intercept_stderr = slope_stderr * np.sqrt(ssxm + xmean ** 2)
    out = [v[()] for v in (slope, intercept, r, pvalue, slope_stderr, intercept_stderr)]  # NumPy scalars, as SciPy's
    return LinregressResult(slope=out[0], intercept=out[1], rvalue=out[2], pvalue=out[3], stderr=out[4],
                            intercept_stderr=out[5])
