"""Comparisons for the differential tests: values against NumPy, derivatives against differences."""
from __future__ import annotations

import numpy as np

__all__ = ["Mismatch", "compare_leaves", "close", "directional_difference", "VALUE_RTOL", "FD_TOL"]

# Values that ran through different but equivalent NumPy operations (batched
# sums, a composite's own formula) may differ in the last bits.
VALUE_RTOL = {"f": {4: 2e-5, 8: 1e-11}, "c": {8: 2e-5, 16: 1e-11}}
# Derivatives against central differences: truncation and rounding of the differences.
FD_TOL = {4: 3e-2, 8: 2e-5}
FD_STEP = {4: 2e-3, 8: 1e-6}


class Mismatch(AssertionError):
    """A transform's result differs from what NumPy's semantics give."""


def _rtol(dtype: np.dtype) -> float:
    return VALUE_RTOL.get(dtype.kind, {}).get(dtype.itemsize, 0.0)


def compare_leaves(got, want, what: str, check_dtype: bool = True, rtol: float | None = None,
                   expected: str = "NumPy") -> None:
    """Raise :class:`Mismatch` unless ``got`` has ``want``'s leaves: dtypes, shapes and values."""
    got, want = tuple(got), tuple(want)
    if len(got) != len(want):
        raise Mismatch(f"{what}: {len(got)} outputs, {expected} gives {len(want)}")
    for k, (g, w) in enumerate(zip(got, want)):
        label = f"{what}[{k}]" if len(want) > 1 else what
        compare(g, w, label, check_dtype, rtol, expected)


def compare(g, w, label: str, check_dtype: bool = True, rtol: float | None = None,
            expected: str = "NumPy") -> None:
    if isinstance(w, list) or isinstance(g, list):
        if not (isinstance(w, list) and isinstance(g, list)) or len(g) != len(w):
            raise Mismatch(f"{label}: got {type(g).__name__}, {expected} gives {type(w).__name__}")
        for k, (gi, wi) in enumerate(zip(g, w)):
            compare(gi, wi, f"{label}[{k}]", check_dtype, rtol, expected)
        return
    ga, wa = np.asarray(g), np.asarray(w)
    if check_dtype and ga.dtype != wa.dtype:
        raise Mismatch(f"{label}: dtype {ga.dtype}, {expected} gives {wa.dtype}")
    if ga.shape != wa.shape:
        raise Mismatch(f"{label}: shape {ga.shape}, {expected} gives {wa.shape}")
    if ga.dtype.kind in "fc" or wa.dtype.kind in "fc":
        tol = max(_rtol(ga.dtype), _rtol(wa.dtype), rtol or 0.0)
        ok = close(ga, wa, tol)
    else:
        ok = np.array_equal(ga, wa)
    if not ok:
        raise Mismatch(f"{label}: values differ\n  got:      {_short(ga)}\n  expected: {_short(wa)} ({expected})")


def close(a, b, rtol: float) -> bool:
    """Equal up to ``rtol`` relative to the larger magnitude of the two (NaNs where both are)."""
    a = np.asarray(a, dtype=np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64)
    b = np.asarray(b, dtype=a.dtype)
    if a.shape != b.shape:
        return False
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False
    a, b = np.where(nan_a, 0, a), np.where(nan_b, 0, b)
    if rtol == 0.0:
        return bool(np.array_equal(a, b))
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return bool(np.all(np.abs(a - b) <= rtol * scale))


def _short(a: np.ndarray) -> str:
    with np.printoptions(precision=17, threshold=40, linewidth=1000):
        return f"{np.array2string(a, separator=', ')} ({a.dtype})"


def directional_difference(F, primals: tuple, tangents: tuple, itemsize: int, scale: float = 1.0):
    """Central difference of the tuple-valued plain ``F`` along ``tangents`` (as
    complex128/float64), with ``scale`` times the usual step."""
    h = FD_STEP[itemsize] * scale
    plus = F(*(np.asarray(p + h * t).astype(p.dtype) for p, t in zip(primals, tangents)))
    minus = F(*(np.asarray(p - h * t).astype(p.dtype) for p, t in zip(primals, tangents)))
    return tuple((_wide(a) - _wide(b)) / (2 * h) for a, b in zip(plus, minus))


def _wide(a):
    a = np.asarray(a)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
