"""``npfunc.scipy.interpolate``: SciPy's interpolators on traced values.

Construct them with traced data and call them with traced points, under
every transform: the objects hold npfunc values, and evaluation is written
with npfunc's operations.  Derivatives flow to the evaluation points, the
data values (splines are linear in them), the abscissae/knots where the
math allows, and the boundary-condition values.  See docs/scipy_more.md.
"""
from ._ppoly import CubicHermiteSpline, PPoly
from ._cubic import Akima1DInterpolator, CubicSpline, PchipInterpolator

__all__ = ["PPoly", "CubicHermiteSpline", "CubicSpline", "PchipInterpolator", "Akima1DInterpolator"]
from ._bspline import BSpline, make_interp_spline

__all__ += ["BSpline", "make_interp_spline"]
from ._interp1d import interp1d
from ._rbf import RBFInterpolator
from ._rgi import RegularGridInterpolator, interpn

__all__ += ["interp1d", "RegularGridInterpolator", "interpn", "RBFInterpolator"]


def _ppoly_of(obj):
    """npfunc's PPoly with the coefficients and breakpoints of SciPy's (plain) piecewise
    polynomial ``obj`` (PPoly, CubicSpline, PchipInterpolator, Akima1DInterpolator...)."""
    import numpy as _np

    from ...core.context import describe_stack
    from ...core.errors import UnsupportedOperationError

    if _np.any(_np.diff(obj.x) < 0):
        raise UnsupportedOperationError(
            f"{describe_stack()}: a SciPy {type(obj).__name__} with decreasing breakpoints called on traced "
            "points: npfunc's twin takes increasing ones; build it as "
            "npfunc.scipy.interpolate.PPoly(c[:, ::-1] re-expanded, x[::-1]) or interpolate on increasing x")
    return PPoly.construct_fast(obj.c, obj.x, obj.extrapolate, obj.axis)


def _rbf_of(obj):
    """npfunc's RBFInterpolator with the state of SciPy's (plain) ``obj``: the same
    attributes, SciPy's solved coefficients."""
    twin = object.__new__(RBFInterpolator)
    for name in ("y", "d", "d_shape", "d_dtype", "smoothing", "kernel", "epsilon", "powers", "neighbors"):
        setattr(twin, name, getattr(obj, name))
    if obj.neighbors is None:
        twin._scipy = None
        twin._shift, twin._scale, twin._coeffs = obj._shift, obj._scale, obj._coeffs
    else:  # local interpolants: the twin refuses traced points, naming neighbors=
        twin._scipy = obj
    return twin


def _interp1d_of(obj):
    """npfunc's interp1d on the (sorted) data of SciPy's plain ``obj``."""
    kind = obj._spline.k if obj._kind == "spline" else obj._kind
    return interp1d(obj.x, obj.y, kind=kind, axis=obj.axis, copy=False, bounds_error=obj.bounds_error,
                    fill_value=obj.fill_value, assume_sorted=True)


#: SciPy class -> its twin made from a plain instance's state, for calls of a plain
#: instance (built outside the transform) on traced points (scipy/_routing.route_plain_calls)
PLAIN_CALLS = {
    "PPoly": _ppoly_of, "CubicHermiteSpline": _ppoly_of, "CubicSpline": _ppoly_of,
    "PchipInterpolator": _ppoly_of, "Akima1DInterpolator": _ppoly_of,
    "BSpline": lambda obj: BSpline.construct_fast(obj.t, obj.c, obj.k, obj.extrapolate, obj.axis),
    "RegularGridInterpolator": lambda obj: RegularGridInterpolator(
        obj.grid, obj.values, obj.method, obj.bounds_error, obj.fill_value),
    "RBFInterpolator": _rbf_of, "interp1d": _interp1d_of,
}


def _register_twins():
    """Conversion errors inside SciPy's interpolators name these twins."""
    import scipy.interpolate as _si

    from ...core import dispatch as _dispatch

    if getattr(_dispatch, "TWINS", None) is None:
        return
    for name in __all__:
        target = getattr(_si, name, None)
        for fn in ((target.__init__, getattr(target, "__call__", None)) if isinstance(target, type) else (target,)):
            code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
            if code is not None:
                _dispatch.TWINS.setdefault(code, f"npfunc.scipy.interpolate.{name}")


_register_twins()
from . import _samples  # noqa: E402,F401  (registry samples of the twins)

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
