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


def _rgi_from_plain(obj, args, kwargs):
    method = kwargs.get("method", args[1] if len(args) > 1 else None) or obj.method
    if method not in ("linear", "nearest"):
        from ...core.context import describe_stack
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            f"{describe_stack()}: a scipy.interpolate.RegularGridInterpolator made from plain values, "
            f"method={method!r}, evaluated at traced points: SciPy fits that spline with an iterative solver, "
            "whose values npfunc's exact fit would not reproduce. Construct it inside the function (npfunc's "
            "twin then fits it exactly), or use method='linear'.")
    return RegularGridInterpolator(obj.grid, obj.values, method=obj.method, bounds_error=obj.bounds_error,
                                   fill_value=obj.fill_value)


#: SciPy interpolators made from plain values and evaluated at traced points: class name ->
#: (the methods that evaluate, a twin of an object made from its state, the call's arguments).
#: The state is SciPy's (its coefficients, knots, grid): the twin evaluates the same function.
FROM_PLAIN = {
    "PPoly": (("__call__", "integrate"),
              lambda obj, args, kwargs: PPoly.construct_fast(obj.c, obj.x, obj.extrapolate, obj.axis)),
    "BSpline": (("__call__", "integrate"),
                lambda obj, args, kwargs: BSpline.construct_fast(obj.t, obj.c, obj.k, obj.extrapolate, obj.axis)),
    "RegularGridInterpolator": (("__call__",), _rgi_from_plain),
}

from . import _samples  # noqa: E402,F401  (registry samples of the twins)

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
