"""Registry samples for ``npfunc.scipy.interpolate``: each target constructs
the interpolator from its (traced) data and evaluates it at (traced) points,
as users write it, so the generated tests differentiate and batch through
construction and evaluation together."""
from __future__ import annotations

import numpy as np

from ...core.primitive import Composite, Sample
from ...primitives.sampling import FLOATS, array
from . import (Akima1DInterpolator, BSpline, CubicSpline, PchipInterpolator, PPoly, RBFInterpolator,
               RegularGridInterpolator, interp1d, make_interp_spline)


def _register(name, target, samples, notes=""):
    Composite(f"npfunc.scipy.interpolate.{name}", target, samples=samples, notes=notes)


def _abscissae(rng, n, dtype=np.float64):
    return (np.arange(n) + rng.uniform(-0.2, 0.2, n)).astype(dtype)


def _points(rng, lo, hi, n=5):
    return rng.uniform(lo, hi, n)


def _cubic_call(x, y, xp, dleft=None, *, bc_type="not-a-knot", nu=0, method="call", axis=0):
    if bc_type == "periodic":
        y = np.concatenate([y, y[:1]], axis=0)
        x = np.concatenate([x, x[-1:] + 1.0])
    elif dleft is not None:
        bc_type = ((1, dleft), bc_type)
    spl = CubicSpline(x, y, axis=axis, bc_type=bc_type)
    if method == "derivative":
        return spl.derivative(2)(xp)
    if method == "antiderivative":
        return spl.antiderivative()(xp)
    if method == "integrate":
        return spl.integrate(xp[0], xp[1])
    return spl(xp, nu)


def _cubic_samples(rng):
    out = [Sample(_abscissae(rng, 6), array(rng, (6,)), _points(rng, -0.5, 5.5)),
           Sample(_abscissae(rng, 6), array(rng, (6, 2)), _points(rng, 0, 5), bc_type="natural", nu=1,
                  label="natural, nu=1"),
           Sample(_abscissae(rng, 5), array(rng, (5,)), _points(rng, 0, 4), bc_type="clamped", label="clamped"),
           Sample(_abscissae(rng, 5), array(rng, (5,)), _points(rng, 0, 4), np.float64(0.7), bc_type=(2, 1.5),
                  label="((1, value), (2, value))"),
           Sample(_abscissae(rng, 4), array(rng, (4,)), _points(rng, -2, 7), bc_type="periodic", label="periodic"),
           Sample(_abscissae(rng, 3), array(rng, (3,)), _points(rng, 0, 2), label="three points"),
           Sample(_abscissae(rng, 2), array(rng, (2,)), _points(rng, 0, 1), label="two points"),
           Sample(_abscissae(rng, 5), array(rng, (2, 5)), _points(rng, 0, 4), axis=1, label="axis=1"),
           Sample(_abscissae(rng, 5), array(rng, (5,)), _points(rng, 0, 4), method="derivative", label="derivative"),
           Sample(_abscissae(rng, 5), array(rng, (5,)), _points(rng, 0, 4), method="antiderivative",
                  label="antiderivative"),
           Sample(_abscissae(rng, 5), array(rng, (5,)), np.array([0.3, 3.6]), method="integrate", label="integrate"),
           Sample(_abscissae(rng, 5, np.float32), array(rng, (5,), np.float32), _points(rng, 0, 4),
                  label="float32 data")]
    return out


_register("CubicSpline", _cubic_call, _cubic_samples,
          "slopes from solve_banded: differentiable in x, y, the points and bc values")


def _local_call(x, y, xp, *, cls="pchip", method="akima", extrapolate=None):
    if cls == "pchip":
        return PchipInterpolator(x, y, extrapolate=extrapolate)(xp)
    return Akima1DInterpolator(x, y, method=method, extrapolate=extrapolate)(xp)


_register("PchipInterpolator", _local_call,
          lambda rng: [Sample(_abscissae(rng, 6), np.array([0.0, 1.0, 1.5, 3.0, 2.0, 2.5]), _points(rng, 0, 5)),
                       Sample(_abscissae(rng, 6), array(rng, (6, 2)), _points(rng, -1, 6), label="2 columns"),
                       Sample(_abscissae(rng, 2), array(rng, (2,)), _points(rng, 0, 1), label="two points")],
          "monotone slopes: piecewise smooth in the data")
_register("Akima1DInterpolator", _local_call,
          lambda rng: [Sample(_abscissae(rng, 7), array(rng, (7,)), _points(rng, 0, 6), cls="akima"),
                       Sample(_abscissae(rng, 7), array(rng, (7, 2)), _points(rng, -1, 7), cls="akima",
                              method="makima", extrapolate=True, label="makima, extrapolate")],
          "no extrapolation by default (nan outside)")


def _ppoly_call(c, x, xp, *, op="call", extrapolate=None):
    p = PPoly(c, x, extrapolate=extrapolate)
    if op == "antiderivative":
        return p.antiderivative(2)(xp)
    if op == "integrate":
        return p.integrate(xp[0], xp[1])
    return p(xp)


_register("PPoly", _ppoly_call,
          lambda rng: [Sample(array(rng, (3, 4), dt), _abscissae(rng, 5, dt), _points(rng, -1, 5)) for dt in FLOATS]
          + [Sample(array(rng, (4, 3)), _abscissae(rng, 4), _points(rng, 0, 3), op="antiderivative", label="antider"),
             Sample(array(rng, (4, 3)), _abscissae(rng, 4), np.array([2.5, 0.4]), op="integrate", label="integrate"),
             Sample(array(rng, (3, 3)), _abscissae(rng, 4), _points(rng, -2, 6), extrapolate="periodic",
                    label="periodic")])


def _bspline_call(inner, c, xp, *, k=3, op="call", extrapolate=True):
    # knots: the ends repeated k + 1 times around traced interior knots (the
    # tests perturb only knots that can move without reordering)
    t = np.concatenate([np.zeros(k + 1), inner, np.full(k + 1, 4.0)])
    b = BSpline(t, c, k, extrapolate=extrapolate)
    if op == "derivative":
        return b.derivative()(xp)
    if op == "antiderivative":
        return b.antiderivative()(xp)
    if op == "integrate":
        return b.integrate(xp[0], xp[1])
    return b(xp)


def _inner_knots(rng):
    return np.arange(1.0, 4.0) + rng.uniform(-0.2, 0.2, 3)


def _bspline_samples(rng):
    out = []
    for k in (1, 2, 3):
        t = _inner_knots(rng)
        out.append(Sample(t, array(rng, (len(t) + k + 1,)), _points(rng, 0, 4), k=k, label=f"k={k}"))
    t = _inner_knots(rng)
    n = len(t) + 4
    out += [Sample(t, array(rng, (n, 2)), _points(rng, 0, 4), op="derivative", label="derivative"),
            Sample(t, array(rng, (n,)), _points(rng, 0, 4), op="antiderivative", label="antiderivative"),
            Sample(t, array(rng, (n,)), np.array([3.1, 0.6]), op="integrate", label="integrate"),
            Sample(t, array(rng, (n,)), np.array([0.2, 1.7, 3.9]), extrapolate=False, label="no extrapolation")]
    return out


_register("BSpline", _bspline_call, _bspline_samples, "Cox-de Boor basis: differentiable in t, c and the points")


def _make_interp_call(x, y, xp, *, k=3, bc_type=None, nu=0):
    if bc_type == "periodic":
        y = np.concatenate([y, y[:1]], axis=0)
        x = np.concatenate([x, x[-1:] + 1.0])
    return make_interp_spline(x, y, k=k, bc_type=bc_type)(xp, nu)


_register("make_interp_spline", _make_interp_call,
          lambda rng: [Sample(_abscissae(rng, 7), array(rng, (7,)), _points(rng, 0, 6), k=k, label=f"k={k}")
                       for k in (0, 1, 2, 3, 5)]
          + [Sample(_abscissae(rng, 6), array(rng, (6, 2)), _points(rng, 0, 5), bc_type="natural", nu=1,
                    label="natural"),
             Sample(_abscissae(rng, 5), array(rng, (5,)), _points(rng, -1, 7), bc_type="periodic",
                    label="periodic")])


def _interp1d_call(x, y, xnew, *, kind="linear", bounds_error=None, fill_value=np.nan):
    return interp1d(x, y, kind=kind, bounds_error=bounds_error, fill_value=fill_value)(xnew)


_register("interp1d", _interp1d_call,
          lambda rng: [Sample(_abscissae(rng, 6), array(rng, (2, 6)), _points(rng, 0.5, 4.2), kind=kind, label=kind)
                       for kind in ("linear", "nearest", "previous", "next", "zero", "slinear", "quadratic", "cubic")]
          + [Sample(_abscissae(rng, 6), array(rng, (6,)), _points(rng, -1, 6), bounds_error=False,
                    fill_value=(-1.0, 2.0), label="fill below/above"),
             Sample(_abscissae(rng, 6), array(rng, (6,)), _points(rng, -1, 6), fill_value="extrapolate",
                    label="extrapolate")],
          "piecewise-constant kinds: derivative in y only")


def _rgi_call(g0, g1, values, xi, *, method="linear", bounds_error=True, fill_value=np.nan):
    return RegularGridInterpolator((g0, g1), values, method=method, bounds_error=bounds_error,
                                   fill_value=fill_value)(xi)


def _rgi_samples(rng):
    g0, g1 = _abscissae(rng, 6), _abscissae(rng, 7)
    xi = np.stack([rng.uniform(0.2, 4.8, 4), rng.uniform(0.2, 5.8, 4)], axis=-1)
    out = [Sample(g0, g1, array(rng, (6, 7)), xi, method=m, label=m)
           for m in ("linear", "nearest", "slinear", "cubic", "pchip")]
    out.append(Sample(g0, g1, array(rng, (6, 7, 2)), xi * 1.3 - 0.5, bounds_error=False, fill_value=None,
                      label="extrapolate, trailing axis"))
    # SciPy reshapes a 1-d xi to (-1, ndim): one point (output shape (1,)), and two
    # points for a (2, 2) xi given row by row
    out.append(Sample(g0, g1, array(rng, (6, 7)), xi[0], label="one point as a 1-d xi"))
    out.append(Sample(g0, g1, array(rng, (6, 7)), xi[:2].ravel(), label="two points in a flat xi"))
    return out


_register("RegularGridInterpolator", _rgi_call, _rgi_samples,
          "linear/nearest hypercube; spline methods axis by axis (exact tensor-product interpolant)")


def _rbf_call(y, d, x, *, kernel="thin_plate_spline", epsilon=None, smoothing=0.0, degree=None):
    return RBFInterpolator(y, d, kernel=kernel, epsilon=epsilon, smoothing=smoothing, degree=degree)(x)


def _rbf_samples(rng):
    sites = rng.uniform(0, 1, (8, 2))
    pts = rng.uniform(0.1, 0.9, (3, 2))
    out = [Sample(sites, array(rng, (8,)), pts, kernel=k, epsilon=3.0, label=k)
           for k in ("thin_plate_spline", "cubic", "quintic", "gaussian", "multiquadric", "inverse_quadratic")]
    out.append(Sample(sites, array(rng, (8, 2)), pts, kernel="linear", smoothing=0.1, label="linear, smoothing"))
    return out


_register("RBFInterpolator", _rbf_call, _rbf_samples,
          "smooth kernels from r**2 (exact at data sites); r-based kernels with the norm's convention")
