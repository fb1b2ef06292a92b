"""``CubicSpline``, ``PchipInterpolator`` and ``Akima1DInterpolator`` on
traced values: SciPy's formulas for the derivatives at the data points,
then the cubic Hermite form (a ``PPoly``).

``CubicSpline`` solves SciPy's tridiagonal (banded) system with
``npfunc.scipy.linalg.solve_banded``, which is differentiable in the matrix
(a function of ``x``) and the right-hand side (linear in ``y`` and the
boundary values), so the spline is differentiable in ``x``, ``y`` and the
``bc_type`` derivative values.  PCHIP and Akima choose slopes with
data-dependent branches (written with ``np.where``): piecewise smooth in
the data, with the derivative of the branch taken at the given point.
"""
from __future__ import annotations

import numpy as np

from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array
from .._linalg_decomp import solve_banded
from ._ppoly import CubicHermiteSpline, checked, diff, prepare_input

__all__ = ["CubicSpline", "PchipInterpolator", "Akima1DInterpolator"]


def _validate_bc(bc_type, y, expected_shape, axis):
    if isinstance(bc_type, str):
        if bc_type == "periodic":
            gap = np.abs(y[0] - y[-1]) > 1e-15 + 1e-15 * np.abs(y[-1])
            y = checked(y, gap, f"The first and last `y` point along axis {axis} must be identical (within machine "
                        "precision) when bc_type='periodic'.")
        bc_type = (bc_type, bc_type)
    else:
        if len(bc_type) != 2:
            raise ValueError("`bc_type` must contain 2 elements to specify start and end conditions.")
        if "periodic" in bc_type:
            raise ValueError("'periodic' `bc_type` is defined for both curve ends and cannot be used with other "
                             "boundary conditions.")
    out = []
    for bc in bc_type:
        if isinstance(bc, str):
            if bc == "clamped":
                out.append((1, np.zeros(expected_shape)))
            elif bc == "natural":
                out.append((2, np.zeros(expected_shape)))
            elif bc in ("not-a-knot", "periodic"):
                out.append(bc)
            else:
                raise ValueError(f"bc_type={bc} is not allowed.")
        else:
            try:
                order, value = bc
            except Exception as e:
                raise ValueError("A specified derivative value must be given in the form (order, value).") from e
            if order not in (1, 2):
                raise ValueError("The specified derivative order must be 1 or 2.")
            value = as_array(value)
            if tuple(shape_of(value)) != tuple(expected_shape):
                raise ValueError(f"`deriv_value` shape {tuple(shape_of(value))} is not the expected one "
                                 f"{tuple(expected_shape)}.")
            if dtype_of(value).kind == "c":
                y = y.astype(np.complex128)
            out.append((order, value))
    return out, y


def _banded(rows):
    """Band storage ``(3, n)`` from its three rows."""
    return np.stack(rows)


class CubicSpline(CubicHermiteSpline):
    """``scipy.interpolate.CubicSpline`` with every ``bc_type`` ('not-a-knot',
    'periodic', 'clamped', 'natural', or ``((order, value), (order, value))``).

    >>> import numpy as np, npfunc
    >>> x = np.linspace(0.0, 3.0, 7)
    >>> f = lambda y: CubicSpline(x, y)(1.3)
    >>> float(f(np.sin(x))) - float(np.sin(1.3)) < 1e-2
    True
    >>> npfunc.grad(f)(np.sin(x)).round(3)  # the spline is linear in the data
    array([ 0.01 , -0.083,  0.45 ,  0.73 , -0.132,  0.029, -0.004])
    """

    def __init__(self, x, y, axis=0, bc_type="not-a-knot", extrapolate=None):
        x, dx, y, axis, _ = prepare_input(x, y, axis)
        n = shape_of(x)[0]
        bc, y = _validate_bc(bc_type, y, tuple(shape_of(y))[1:], axis)
        if extrapolate is None:
            extrapolate = "periodic" if bc[0] == "periodic" else True
        s = _slopes(x, dx, y, n, bc)
        self._hermite(x, dx, y, s.astype(dtype_of(y)) if dtype_of(s) != dtype_of(y) else s, extrapolate)
        self.axis = axis


def _slopes(x, dx, y, n, bc):
    """SciPy's first derivatives of the interpolating cubic spline at ``x``."""
    trailing = tuple(shape_of(y))[1:]
    if 0 in shape_of(y):
        return np.zeros(shape_of(y), dtype_of(y))
    dxr = np.reshape(dx, (shape_of(dx)[0],) + (1,) * len(trailing))
    slope = diff(y, 0) / dxr
    bc = list(bc)
    if n == 2:
        if bc[0] in ("not-a-knot", "periodic"):
            bc[0] = (1, slope[0])
        if bc[1] in ("not-a-knot", "periodic"):
            bc[1] = (1, slope[0])
    if n == 3 and bc[0] == "not-a-knot" and bc[1] == "not-a-knot":  # the parabola through the points
        a = np.stack([np.stack([1.0, 1.0, 0.0]), np.stack([dx[1], 2 * (dx[0] + dx[1]), dx[0]]),
                      np.stack([0.0, 1.0, 1.0])])
        b = np.stack([2 * slope[0], 3 * (dxr[0] * slope[1] + dxr[1] * slope[0]), 2 * slope[1]])
        return np.reshape(np.linalg.solve(a.astype(dtype_of(b)), np.reshape(b, (3, -1))), shape_of(b))
    if n == 3 and bc[0] == "periodic":
        t = np.sum(slope / dxr, axis=0) / np.sum(1.0 / dxr, axis=0)
        return np.broadcast_to(t, (n,) + trailing)
    flat = lambda v: np.reshape(v, (shape_of(v)[0], -1))  # noqa: E731
    interior = 3 * (dxr[1:] * slope[:-1] + dxr[:-1] * slope[1:])
    diag_mid = 2 * (dx[:-1] + dx[1:])
    if bc[0] == "periodic":
        # n - 1 unknowns; the cyclic system is condensed to (n-2, n-2) plus two
        # corner terms (SciPy's reduction), then solved by two banded solves.
        diag = np.concatenate([np.stack([2 * (dx[-1] + dx[0])]), diag_mid[:-1]])
        upper = np.concatenate([np.zeros(1), np.stack([dx[-1]]), dx[:-3]])[:n - 2]
        lower = dx[1:]  # its last entry lies outside the condensed matrix (never read)
        ab = _banded([upper, diag, lower])
        b = np.concatenate([(3 * (dxr[0] * slope[-1] + dxr[-1] * slope[0]))[None], interior[:-1]], axis=0)
        b_last = 3 * (dxr[-1] * slope[-2] + dxr[-2] * slope[-1])
        b1 = b[:n - 2]
        e = np.zeros(n - 2)
        b2 = np.concatenate([np.stack([-dx[0]]), e[1:-1], np.stack([-dx[-3]])])
        s1 = np.reshape(solve_banded((1, 1), ab, flat(b1)), shape_of(b1))
        s2 = solve_banded((1, 1), ab, b2)
        s2r = np.reshape(s2, (n - 2,) + (1,) * len(trailing))
        s_m1 = ((b_last - dx[-2] * s1[0] - dx[-1] * s1[-1])
                / (2 * (dx[-1] + dx[-2]) + dx[-2] * s2r[0] + dx[-1] * s2r[-1]))
        return np.concatenate([s1 + s_m1 * s2r, s_m1[None], (s1[0] + s_m1 * s2r[0])[None]], axis=0)
    (start, end) = bc
    zero1 = np.zeros(1)
    if start == "not-a-knot":
        d = x[2] - x[0]
        diag0, up1 = dx[1], d
        b0 = ((dxr[0] + 2 * d) * dxr[1] * slope[0] + dxr[0] ** 2 * slope[1]) / d
    elif start[0] == 1:
        diag0, up1, b0 = 1.0, 0.0, start[1] + 0 * slope[0]
    else:
        diag0, up1 = 2 * dx[0], dx[0]
        b0 = -0.5 * start[1] * dx[0] ** 2 + 3 * (y[1] - y[0])
    if end == "not-a-knot":
        d = x[-1] - x[-3]
        diag_end, low_end = dx[-2], d
        b_end = (dxr[-1] ** 2 * slope[-2] + (2 * d + dxr[-1]) * dxr[-2] * slope[-1]) / d
    elif end[0] == 1:
        diag_end, low_end, b_end = 1.0, 0.0, end[1] + 0 * slope[0]
    else:
        diag_end, low_end = 2 * dx[-1], dx[-1]
        b_end = 0.5 * end[1] * dx[-1] ** 2 + 3 * (y[-1] - y[-2])
    upper = np.concatenate([zero1, np.stack([up1 + 0 * dx[0]]), dx[:-1]])
    diag = np.concatenate([np.stack([diag0 + 0 * dx[0]]), diag_mid, np.stack([diag_end + 0 * dx[0]])])
    lower = np.concatenate([dx[1:], np.stack([low_end + 0 * dx[0]]), zero1])
    b = np.concatenate([b0[None].astype(dtype_of(y)), interior, b_end[None].astype(dtype_of(y))], axis=0)
    return np.reshape(solve_banded((1, 1), _banded([upper, diag, lower]), flat(b)), shape_of(b))


class PchipInterpolator(CubicHermiteSpline):
    """``scipy.interpolate.PchipInterpolator``: monotone piecewise cubic (Fritsch-Carlson
    slopes by a weighted harmonic mean; zero where the data turn)."""

    def __init__(self, x, y, axis=0, extrapolate=None):
        x, dx, y, axis, _ = prepare_input(x, y, axis)
        if dtype_of(y).kind == "c":
            raise ValueError("`PchipInterpolator` only works with real values for `y`. If you are trying to use the "
                             "real components of the passed array, use `np.real` on the array before passing to "
                             "`PchipInterpolator`.")
        xv = np.reshape(x, (shape_of(x)[0],) + (1,) * (ndim_of(y) - 1))
        dk = _pchip_derivatives(xv, y)
        self._hermite(x, dx, y, dk, True if extrapolate is None else extrapolate)
        self.axis = axis


def _edge_case(h0, h1, m0, m1):
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    mask = np.sign(d) != np.sign(m0)
    mask2 = (np.sign(m0) != np.sign(m1)) & (np.abs(d) > 3.0 * np.abs(m0))
    return np.where(mask, 0.0, np.where(mask2, 3.0 * m0, d))


def _pchip_derivatives(x, y):
    hk = x[1:] - x[:-1]
    mk = (y[1:] - y[:-1]) / hk
    if shape_of(y)[0] == 2:
        return np.concatenate([mk, mk], axis=0)
    smk = np.sign(mk)
    condition = (smk[1:] != smk[:-1]) | (mk[1:] == 0) | (mk[:-1] == 0)
    w1 = 2 * hk[1:] + hk[:-1]
    w2 = hk[1:] + 2 * hk[:-1]
    safe_lo, safe_hi = np.where(condition, 1.0, mk[:-1]), np.where(condition, 1.0, mk[1:])
    whmean = (w1 / safe_lo + w2 / safe_hi) / (w1 + w2)
    inner = np.where(condition, 0.0, 1.0 / np.where(condition, 1.0, whmean))
    first = _edge_case(hk[0], hk[1], mk[0], mk[1])
    last = _edge_case(hk[-1], hk[-2], mk[-1], mk[-2])
    return np.concatenate([first[None], inner, last[None]], axis=0)


class Akima1DInterpolator(CubicHermiteSpline):
    """``scipy.interpolate.Akima1DInterpolator`` (``method`` 'akima' or 'makima';
    no extrapolation unless asked, as in SciPy)."""

    def __init__(self, x, y, axis=0, *, method="akima", extrapolate=None):
        if method not in ("akima", "makima"):
            raise NotImplementedError(f"`method`={method} is unsupported.")
        x, dx, y, axis, _ = prepare_input(x, y, axis)
        if dtype_of(y).kind == "c":
            raise ValueError("`Akima1DInterpolator` only works with real values for `y`. If you are trying to use "
                             "the real components of the passed array, use `np.real` on the array before passing "
                             "to `Akima1DInterpolator`.")
        extrapolate = False if extrapolate is None else extrapolate
        trailing = (1,) * (ndim_of(y) - 1)
        if shape_of(y)[0] == 2:
            hk = np.reshape(dx, (1,) + trailing)
            mk = (y[1:] - y[:-1]) / hk
            t = np.concatenate([mk, mk], axis=0)
        else:
            mid = diff(y, 0) / np.reshape(dx, (-1,) + trailing)
            m1 = 2.0 * mid[0] - mid[1]
            m0 = 2.0 * m1 - mid[0]
            mm2 = 2.0 * mid[-1] - mid[-2]
            mm1 = 2.0 * mm2 - mid[-1]
            m = np.concatenate([m0[None], m1[None], mid, mm2[None], mm1[None]], axis=0)
            t = 0.5 * (m[3:] + m[:-3])
            dm = np.abs(diff(m, 0))
            if method == "makima":
                pm = np.abs(m[1:] + m[:-1])
                f1, f2 = dm[2:] + 0.5 * pm[2:], dm[:-2] + 0.5 * pm[:-2]
            else:
                f1, f2 = dm[2:], dm[:-2]
            f12 = f1 + f2
            defined = f12 > 1e-9 * np.max(f12)
            ratio = f2 / np.where(defined, f12, 1.0)
            t = np.where(defined, m[1:-2] + ratio * (m[2:-1] - m[1:-2]), t)
        self._hermite(x, dx, y, t, extrapolate)
        self.axis = axis
