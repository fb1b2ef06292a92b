"""``BSpline`` and ``make_interp_spline`` on traced values.

The ``k + 1`` B-spline basis functions that are nonzero at a point (and
their derivatives) are computed by the Cox-de Boor recursion, vectorised
over the points, with npfunc's operations: a spline's value is their
product with the gathered coefficients, differentiable in the points, the
coefficients and the knots.  ``make_interp_spline`` assembles the
collocation matrix from the same basis values (in LAPACK band storage) and
solves it with ``npfunc.scipy.linalg.solve_banded``, so the interpolant is
differentiable in ``y``, in ``x`` and in the boundary derivative values.
Periodic interpolation solves the full cyclic system densely.
"""
from __future__ import annotations

import numpy as np

from ...core.values import dtype_of, ndim_of, shape_of
from ...primitives.data_dependent import as_array
from ...primitives.indexing.updates import add_at
from .._linalg_decomp import solve_banded
from ._ppoly import at, checked, diff

__all__ = ["BSpline", "make_interp_spline"]


def _float(x):
    return x if dtype_of(x) == np.float64 else x.astype(np.float64)


def _interval(t, k, n, x):
    """SciPy's interval ``l`` in ``[k, n - 1]`` with ``t[l] <= x < t[l + 1]`` (no derivative)."""
    return np.clip(np.searchsorted(t, x, side="right") - 1, k, n - 1)


def _div(num, den):
    """``num / den`` with 0 where ``den == 0`` (repeated knots)."""
    nz = den != 0
    return np.where(nz, num / np.where(nz, den, 1.0), 0.0)


def basis(t, k, x, l, nu=0):
    """``(len(x), k + 1)``: the ``nu``-th derivatives of ``B_{l-k..l, k}`` at ``x``."""
    p = k - nu
    if p < 0:
        return np.zeros(tuple(shape_of(x)) + (k + 1,))
    values = [np.ones(shape_of(x))]  # degree 0: B_{l, 0} = 1
    for j in range(1, p + 1):  # raise the degree (de Boor's BSPLVB)
        saved = 0.0
        new = []
        for r in range(j):
            right = at(t, l + r + 1) - x
            left = x - at(t, l + r + 1 - j)
            temp = _div(values[r], right + left)
            new.append(saved + right * temp)
            saved = left * temp
        new.append(saved)
        values = new
    for d in range(p + 1, k + 1):  # differentiate while raising the degree
        new = []
        for j in range(d + 1):
            i = l - d + j
            term = 0.0
            if j >= 1:
                term = term + _div(values[j - 1], at(t, i + d) - at(t, i))
            if j < d:
                term = term - _div(values[j], at(t, i + d + 1) - at(t, i + 1))
            new.append(d * term)
        values = new
    return np.stack([v + np.zeros(shape_of(x)) for v in values], axis=-1)


class BSpline:
    """``scipy.interpolate.BSpline(t, c, k, extrapolate=True, axis=0)`` on traced
    knots and coefficients.

    >>> import numpy as np, npfunc
    >>> t = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0])
    >>> spl = BSpline(t, np.array([0.0, 1.0, 0.0, 2.0]), 2)
    >>> spl(np.array([0.5, 1.5]))
    array([0.625, 0.625])
    >>> npfunc.grad(lambda x: BSpline(t, np.array([0.0, 1.0, 0.0, 2.0]), 2)(x))(np.float64(1.5))
    np.float64(1.5)
    """

    def __init__(self, t, c, k, extrapolate=True, axis=0):
        self.k = int(k)
        c = as_array(c)
        self.t = _float(as_array(t))
        self.c = c.astype(np.complex128) if dtype_of(c).kind == "c" else _float(c)
        self.extrapolate = "periodic" if extrapolate == "periodic" else bool(extrapolate)
        n = shape_of(self.t)[0] - self.k - 1
        axis = axis % max(ndim_of(self.c), 1)
        self.axis = axis
        if axis != 0:
            self.c = np.moveaxis(self.c, axis, 0)
        if self.k < 0:
            raise ValueError("Spline order cannot be negative.")
        if ndim_of(self.t) != 1:
            raise ValueError("Knot vector must be one-dimensional.")
        if n < self.k + 1:
            raise ValueError(f"Need at least {2 * self.k + 2} knots for degree {self.k}")
        if shape_of(self.c)[0] < n:
            raise ValueError("Knots, coefficients and degree are inconsistent.")
        self.t = checked(self.t, diff(self.t) < 0, "Knots must be in a non-decreasing order.")

    @classmethod
    def construct_fast(cls, t, c, k, extrapolate=True, axis=0):
        self = object.__new__(cls)
        self.t, self.c, self.k, self.extrapolate, self.axis = t, c, int(k), extrapolate, axis
        return self

    @property
    def tck(self):
        return self.t, self.c, self.k

    def __call__(self, x, nu=0, extrapolate=None):
        """Values (or the ``nu``-th derivative) at ``x``."""
        if extrapolate is None:
            extrapolate = self.extrapolate
        xp = _float(as_array(x))
        x_shape = tuple(shape_of(xp))
        flat = np.reshape(xp, (-1,))
        k, t = self.k, self.t
        n = shape_of(t)[0] - k - 1
        if extrapolate == "periodic":
            flat = t[k] + np.mod(flat - t[k], t[n] - t[k])
            extrapolate = False
        l = _interval(t, k, n, flat)
        b = basis(t, k, flat, l, nu)  # (N, k + 1)
        index = l[:, None] - k + np.arange(k + 1)
        coef = at(self.c, index)  # (N, k + 1, ...)
        trailing = (1,) * (ndim_of(self.c) - 1)
        out = np.sum(np.reshape(b, tuple(shape_of(b)) + trailing) * coef, axis=1)
        if not extrapolate:
            inside = np.reshape((flat >= t[k]) & (flat <= t[n]), (-1,) + trailing)
            out = np.where(inside, out, np.nan)
        out = np.reshape(out, x_shape + tuple(shape_of(self.c))[1:])
        if self.axis != 0:
            order = list(range(ndim_of(out)))
            x_ndim = len(x_shape)
            order = order[x_ndim:x_ndim + self.axis] + order[:x_ndim] + order[x_ndim + self.axis:]
            out = np.transpose(out, order)
        return out

    def evaluate_each(self, x, nu=0):
        """``out[j] = spline_j(x[j], nu)`` where ``spline_j`` has the coefficients
        ``c[:, j]`` (one spline per point, as a tensor-product evaluation needs)."""
        k, t = self.k, self.t
        n = shape_of(t)[0] - k - 1
        l = _interval(t, k, n, x)
        b = basis(t, k, x, l, nu)  # (m, k + 1)
        index = l[:, None] - k + np.arange(k + 1)
        coef = at(self.c, (index, np.arange(shape_of(x)[0])[:, None]))  # (m, k + 1, ...)
        trailing = (1,) * (ndim_of(self.c) - 2)
        return np.sum(np.reshape(b, tuple(shape_of(b)) + trailing) * coef, axis=1)

    def _padded(self):
        c = self.c
        extra = shape_of(self.t)[0] - shape_of(c)[0]
        if extra > 0:
            c = np.concatenate([c, np.zeros((extra,) + tuple(shape_of(c))[1:], dtype_of(c))], axis=0)
        return c

    def derivative(self, nu=1):
        """The ``nu``-th derivative as a ``BSpline`` (FITPACK's ``splder``)."""
        t, c, k = self.t, self._padded(), self.k
        trailing = (1,) * (ndim_of(c) - 1)
        for _ in range(nu):
            dt = np.reshape(t[k + 1:-1] - t[1:-k - 1], (-1,) + trailing)
            c = (c[1:-1 - k] - c[:-2 - k]) * k / dt
            c = np.concatenate([c, np.zeros((k,) + tuple(shape_of(c))[1:], dtype_of(c))], axis=0)
            t = t[1:-1]
            k -= 1
        return type(self).construct_fast(t, c, k, extrapolate=self.extrapolate, axis=self.axis)

    def antiderivative(self, nu=1):
        """The ``nu``-th antiderivative as a ``BSpline`` (FITPACK's ``splantider``)."""
        t, c, k = self.t, self._padded(), self.k
        trailing = (1,) * (ndim_of(c) - 1)
        for _ in range(nu):
            dt = np.reshape(t[k + 1:] - t[:-k - 1], (-1,) + trailing)
            c = np.cumsum(c[:-k - 1] * dt, axis=0) / (k + 1)
            c = np.concatenate([np.zeros((1,) + tuple(shape_of(c))[1:], dtype_of(c)), c,
                                np.repeat(c[-1:], k + 2, axis=0)], axis=0)
            t = np.concatenate([t[:1], t, t[-1:]])
            k += 1
        extrapolate = False if self.extrapolate == "periodic" else self.extrapolate
        return type(self).construct_fast(t, c, k, extrapolate=extrapolate, axis=self.axis)

    def integrate(self, a, b, extrapolate=None):
        """The definite integral from ``a`` to ``b`` (SciPy's handling of the bounds)."""
        if extrapolate is None:
            extrapolate = self.extrapolate
        a, b = _float(as_array(a)), _float(as_array(b))
        sign = np.where(b < a, -1.0, 1.0)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        k = self.k
        n = shape_of(self.t)[0] - k - 1
        anti = BSpline.construct_fast(*self.antiderivative().tck[:3], extrapolate=True, axis=0)
        at = lambda p: anti(p, extrapolate=True)  # noqa: E731
        if extrapolate == "periodic":
            ts, te = self.t[k], self.t[n]
            period = te - ts
            n_periods = np.floor_divide(hi - lo, period)
            left = (hi - lo) - n_periods * period
            whole = at(te) - at(ts)
            start = ts + np.mod(lo - ts, period)
            end = start + left
            wraps = end > te
            part = np.where(wraps, at(te) - at(start) + at(ts + np.maximum(end - te, 0.0)) - at(ts),
                            at(np.minimum(end, te)) - at(start))
            total = n_periods * whole + part
        else:
            if not extrapolate:
                lo, hi = np.maximum(lo, self.t[k]), np.minimum(hi, self.t[n])
            total = at(hi) - at(lo)
        return np.asarray(sign * total)  # an array, 0-d for one curve, as SciPy's

    def __repr__(self) -> str:
        return f"npfunc.scipy.interpolate.BSpline(k={self.k}, n={shape_of(self.t)[0] - self.k - 1})"


# ---- make_interp_spline -------------------------------------------------------------------------

def _not_a_knot(x, k):
    if k % 2 == 1:
        k2, t = (k + 1) // 2, x
    else:
        k2, t = k // 2, (x[1:] + x[:-1]) / 2
    inner = t[k2:-k2]
    return np.concatenate([np.repeat(x[:1], k + 1), inner, np.repeat(x[-1:], k + 1)])


def _augknt(x, k):
    return np.concatenate([np.repeat(x[:1], k), x, np.repeat(x[-1:], k)])


def _derivative_spec(deriv, shape):
    if deriv is None:
        return [], []
    if isinstance(deriv, str):
        if deriv == "clamped":
            deriv = [(1, np.zeros(shape))]
        elif deriv == "natural":
            deriv = [(2, np.zeros(shape))]
        else:
            raise ValueError(f"Unknown boundary condition : {deriv}")
    try:
        ords, vals = zip(*deriv)
    except TypeError as e:
        raise ValueError("Derivatives, `bc_type`, should be specified as a pair of iterables of pairs of "
                         "(order, value).") from e
    return [int(o) for o in ords], [as_array(v) for v in vals]


def _periodic_knots(x, k):
    n = shape_of(x)[0]
    xc = x
    if k % 2 == 0:
        dx = diff(xc)
        xc = np.concatenate([xc[:1], xc[1:-1] - dx[:-1] / 2, xc[-1:]])
    dx = diff(xc)
    left, right = [xc[0]], [xc[-1]]
    for i in range(k):
        left.insert(0, left[0] - dx[-(i % (n - 1)) - 1])
        right.append(right[-1] + dx[i % (n - 1)])
    return np.concatenate([np.stack(left[:-1]), xc, np.stack(right[1:])]) if k else xc


def make_interp_spline(x, y, k=3, t=None, bc_type=None, axis=0, check_finite=True):
    """``scipy.interpolate.make_interp_spline``: the interpolating B-spline of degree
    ``k`` (knots and boundary conditions as in SciPy, including 'periodic')."""
    if bc_type is None or bc_type in ("not-a-knot", "periodic"):
        deriv_l = deriv_r = None
    elif isinstance(bc_type, str):
        deriv_l = deriv_r = bc_type
    else:
        try:
            deriv_l, deriv_r = bc_type
        except TypeError as e:
            raise ValueError(f"Unknown boundary condition: {bc_type}") from e
    x = _float(as_array(x))
    y = as_array(y)
    y = y.astype(np.complex128) if dtype_of(y).kind == "c" else _float(y)
    axis = axis % ndim_of(y)
    y = np.moveaxis(y, axis, 0)
    if bc_type == "periodic":
        gap = np.abs(y[0] - y[-1]) > 1e-15 + 1e-5 * np.abs(y[-1])
        y = checked(y, gap, "First and last points does not match while periodic case expected")
    if shape_of(x)[0] != shape_of(y)[0]:
        raise ValueError(f"Shapes of x {tuple(shape_of(x))} and y {tuple(shape_of(y))} are incompatible")
    if ndim_of(x) != 1:
        raise ValueError("Expect x to be a 1D strictly increasing sequence.")
    x = checked(x, x[1:] == x[:-1], "Expect x to not have duplicates")
    x = checked(x, x[1:] < x[:-1], "Expect x to be a 1D strictly increasing sequence.")
    if k == 0:
        if any(v is not None for v in (t, deriv_l, deriv_r)):
            raise ValueError("Too much info for k=0: t and bc_type can only be None.")
        return BSpline.construct_fast(np.concatenate([x, x[-1:]]), y, 0, axis=axis)
    if k == 1 and t is None:
        if not (deriv_l is None and deriv_r is None):
            raise ValueError("Too much info for k=1: bc_type can only be None.")
        return BSpline.construct_fast(np.concatenate([x[:1], x, x[-1:]]), y, 1, axis=axis)
    k = int(k)
    if bc_type == "periodic" and t is not None:
        raise NotImplementedError("For periodic case t is constructed automatically and can not be passed manually")
    if t is None:
        if deriv_l is None and deriv_r is None:
            t = _periodic_knots(x, k) if bc_type == "periodic" else _not_a_knot(x, k)
        else:
            t = _augknt(x, k)
    t = _float(as_array(t))
    if k < 0:
        raise ValueError("Expect non-negative k.")
    if ndim_of(t) != 1:
        raise ValueError("Expect t to be a 1-D sorted array_like.")
    t = checked(t, t[1:] < t[:-1], "Expect t to be a 1-D sorted array_like.")
    if shape_of(t)[0] < shape_of(x)[0] + k + 1:
        raise ValueError(f"Got {shape_of(t)[0]} knots, need at least {shape_of(x)[0] + k + 1}.")
    x = checked(x, (x[:1] < t[k]) | (x[-1:] > t[-k]), "Out of bounds w/ x.")
    if bc_type == "periodic":
        return _periodic(x, y, t, k, axis)
    ords_l, vals_l = _derivative_spec(deriv_l, tuple(shape_of(y))[1:])
    ords_r, vals_r = _derivative_spec(deriv_r, tuple(shape_of(y))[1:])
    if not all(0 <= i <= k for i in ords_l):
        raise ValueError("Bad boundary conditions at x[0].")
    if not all(0 <= i <= k for i in ords_r):
        raise ValueError("Bad boundary conditions at x[-1].")
    n, nt = shape_of(x)[0], shape_of(t)[0] - k - 1
    nleft, nright = len(ords_l), len(ords_r)
    if nt - n != nleft + nright:
        raise ValueError(f"The number of derivatives at boundaries does not match: expected {nt - n}, got "
                         f"{nleft}+{nright}")
    trailing = tuple(shape_of(y))[1:]
    if 0 in shape_of(y):
        return BSpline.construct_fast(t, np.zeros((nt,) + trailing), k, axis=axis)
    # collocation rows: boundary derivatives, values, boundary derivatives
    points, orders = [], []
    for o in ords_l:
        points.append(x[:1]), orders.append(o)
    points.append(x), orders.append(None)
    for o in ords_r:
        points.append(x[-1:]), orders.append(o)
    row_blocks, col_blocks, val_blocks, r0 = [], [], [], 0
    for pts, o in zip(points, orders):
        l = _interval(t, k, nt, pts)
        vals = basis(t, k, pts, l, 0 if o is None else o)
        rows = np.arange(r0, r0 + shape_of(pts)[0])
        r0 += shape_of(pts)[0]
        row_blocks.append(np.broadcast_to(rows[:, None], (shape_of(pts)[0], k + 1)))
        col_blocks.append(l[:, None] - k + np.arange(k + 1))
        val_blocks.append(vals)
    rows = np.concatenate([np.reshape(r, (-1,)) for r in row_blocks])
    cols = np.concatenate([np.reshape(c, (-1,)) for c in col_blocks])
    vals = np.concatenate([np.reshape(v, (-1,)) for v in val_blocks])
    kl = ku = k
    ab = add_at(np.zeros((kl + ku + 1, nt)), (ku + rows - cols, cols), vals)
    rhs_parts = [np.reshape(v, (1, -1)) for v in vals_l] + [np.reshape(y, (n, -1))] \
        + [np.reshape(v, (1, -1)) for v in vals_r]
    rhs = np.concatenate([p.astype(dtype_of(y)) for p in rhs_parts], axis=0)
    c = solve_banded((kl, ku), ab, rhs)
    return BSpline.construct_fast(t, np.reshape(c, (nt,) + trailing), k, axis=axis)


def _periodic(x, y, t, k, axis):
    """SciPy's periodic interpolation, solved as the full ``(n + k - 1)`` system
    (continuity of ``k - 1`` derivatives at the ends, then the values)."""
    n = shape_of(x)[0]
    nt = n + k - 1
    trailing = tuple(shape_of(y))[1:]
    rows = []
    for i in range(k - 1):
        first = basis(t, k, x[:1], np.full(1, k), i + 1)[0]
        last = basis(t, k, x[-1:], np.full(1, n + k - 1), i + 1)[0]
        rows.append(np.concatenate([first, np.zeros(nt - (k + 1))]) - np.concatenate([np.zeros(nt - k), last[:-1]]))
    left = np.where(x == t[k], k, np.searchsorted(t, x) - 1)
    vals = basis(t, k, x, left, 0)
    index = left[:, None] - k + np.arange(k + 1)
    dense = add_at(np.zeros((n, nt)), (np.broadcast_to(np.arange(n)[:, None], (n, k + 1)), index), vals)
    matrix = np.concatenate([np.stack(rows), dense], axis=0) if rows else dense
    rhs = np.concatenate([np.zeros((k - 1, int(np.prod(trailing, dtype=int))), dtype_of(y)),
                          np.reshape(y, (n, -1))], axis=0)
    c = np.linalg.solve(matrix.astype(dtype_of(rhs)) if dtype_of(rhs).kind == "c" else matrix, rhs)
    return BSpline.construct_fast(t, np.reshape(c, (nt,) + trailing), k, extrapolate="periodic", axis=axis)
