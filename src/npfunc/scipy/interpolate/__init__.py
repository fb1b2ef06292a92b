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


def _route_plain_spline_calls():
    """SciPy's own piecewise polynomials and B-splines (``CubicSpline``, ``PchipInterpolator``,
    ``PPoly``, ``make_interp_spline``'s ``BSpline``... built from plain data, e.g. a property
    table inside the function) called at traced points: SciPy's compiled evaluation asks the
    traced value for a memoryview or a contiguous array (a raw ``TypeError``/``ValueError``).
    Such a call evaluates the object's own coefficients with the twin instead; plain calls
    run SciPy's code."""
    import scipy.interpolate._bsplines as _si_bsplines
    import scipy.interpolate._interpolate as _si_impl

    from .._routing import traced

    routes = ((_si_impl.PPoly, PPoly, lambda o: PPoly.construct_fast(o.c, o.x, o.extrapolate, o.axis)),
              (_si_bsplines.BSpline, BSpline, lambda o: BSpline.construct_fast(o.t, o.c, o.k, o.extrapolate, o.axis)))
    for cls, twin_cls, twin_of in routes:
        original = cls.__call__
        if getattr(original, "npfunc_twin", None) is not None:
            continue

        def __call__(self, x, nu=0, extrapolate=None, *, _original=original, _twin_of=twin_of):
            if traced((x,)):
                return _twin_of(self)(x, nu, extrapolate)
            return _original(self, x, nu, extrapolate)

        __call__.__name__ = __call__.__qualname__ = "__call__"
        __call__.__doc__ = original.__doc__
        __call__.__wrapped__ = original
        __call__.npfunc_twin = twin_cls
        cls.__call__ = __call__


_route_plain_spline_calls()


def _route_plain_grid_calls():
    """Likewise SciPy's own ``RegularGridInterpolator`` (a plain table) called at traced
    points: its Cython index search raised the raw TypeError.  Such a call evaluates the
    object's grid and (ascending) values with the twin; for 'slinear', 'cubic' and 'quintic',
    which SciPy solves iteratively (the twin's exact values would differ), it is refused,
    naming the twin and the exact '*_legacy' methods."""
    import scipy.interpolate._rgi as _si_rgi

    from .._routing import traced

    cls = _si_rgi.RegularGridInterpolator
    original = cls.__call__
    if getattr(original, "npfunc_twin", None) is not None:
        return

    def __call__(self, xi, method=None, *, nu=None):
        if traced((xi,)):
            chosen = self.method if method is None else method
            if chosen in ("slinear", "cubic", "quintic"):
                from ...core.context import describe_stack
                from ...core.errors import UnsupportedOperationError

                raise UnsupportedOperationError(
                    f"{describe_stack()}: SciPy's RegularGridInterpolator(method={chosen!r}) called at traced "
                    "points: SciPy solves its spline system iteratively (gcrotmk), so its values differ from the "
                    "exact interpolant npfunc would compute by up to that solver's tolerance. Build it with "
                    "npfunc.scipy.interpolate.RegularGridInterpolator (the exact interpolant), or use "
                    f"method={chosen + '_legacy'!r}, which SciPy computes exactly too.")
            twin = RegularGridInterpolator(self.grid, self.values, self.method, self.bounds_error, self.fill_value,
                                           solver=getattr(self, "_solver", None),
                                           solver_args=getattr(self, "_solver_args", None))
            return twin(xi, method, nu=nu)
        return original(self, xi, method, nu=nu)

    __call__.__name__ = __call__.__qualname__ = "__call__"
    __call__.__doc__ = original.__doc__
    __call__.__wrapped__ = original
    __call__.npfunc_twin = RegularGridInterpolator
    cls.__call__ = __call__


_route_plain_grid_calls()
from . import _samples  # noqa: E402,F401  (registry samples of the twins)

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
