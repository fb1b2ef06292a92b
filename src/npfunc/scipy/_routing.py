"""Unmodified SciPy calls with traced values reach npfunc's twins.

SciPy's Python functions convert their inputs with ``np.asarray`` and run
compiled code, which traced values cannot go through.  When a SciPy module
with twins is imported (and npfunc is), each of its functions that has a twin
in ``npfunc.scipy`` is replaced, in SciPy's own namespace, by a small router:
it calls SciPy's function unchanged unless an argument is traced (or, for
functions that take a function, unless a transform is running), in which
case it calls the twin.  A class with a twin (``CubicSpline``,
``gaussian_kde``...) becomes a stand-in that constructs SciPy's object from
plain values and the twin from traced ones.  A distribution object (``scipy.stats.t``) becomes an
instance of a subclass of its own class sharing its state, whose public
methods route the same way, so ``isinstance`` checks and frozen
distributions keep working.  An interpolator made from plain values (a
table loaded once) is SciPy's object, whose evaluating methods are patched
to evaluate a twin made from its state at traced points
(``_route_plain_calls``).

Plain calls get SciPy's results, at the cost of one Python call (measured in
``benchmarks/bench_scipy_routing.py``); code that never imports npfunc sees
SciPy untouched.  Names bound before npfunc was imported (``from
scipy.linalg import expm`` run first) keep SciPy's own function and raise
the conversion error, which names the twin.
"""
from __future__ import annotations

import contextvars
import functools
import importlib
import os
import sys
import types

import numpy as np

from ..core.context import current_stack, describe_stack
from ..core.errors import ConcretizationError, UnsupportedOperationError
from ..core.imports import when_imported
from ..core import tracer as _tracer
from ..core.tracer import Tracer

#: SciPy module -> the npfunc module holding its twins.
TWIN_MODULES = {
    "scipy.linalg": "npfunc.scipy.linalg",
    "scipy.special": "npfunc.scipy.special",
    "scipy.stats": "npfunc.scipy.stats",
    "scipy.signal": "npfunc.scipy.signal",
    "scipy.integrate": "npfunc.scipy.integrate",
    "scipy.optimize": "npfunc.scipy.optimize",
    "scipy.interpolate": "npfunc.scipy.interpolate",
    "scipy.spatial.distance": "npfunc.scipy.spatial.distance",
    "scipy.spatial": "npfunc.scipy.spatial",
    "scipy.fft": "npfunc.scipy.fft",
}

#: SciPy classes whose construction from traced values makes npfunc's twin.
ROUTED_CLASSES = frozenset({"PPoly", "CubicHermiteSpline", "CubicSpline", "PchipInterpolator",
                            "Akima1DInterpolator", "BSpline", "interp1d", "RegularGridInterpolator",
                            "RBFInterpolator", "gaussian_kde", "KDTree", "cKDTree"})

_DISTRIBUTION_METHODS = ("pdf", "logpdf", "pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf",
                         "entropy", "mean", "var", "std", "median", "moment", "stats", "interval", "expect")


def unwrap_pending(args, kwargs):
    """``args`` and ``kwargs`` with the pending arrays among them (core.pending) as their values."""
    from ..core.pending import _unwrap_tree

    return _unwrap_tree(args), _unwrap_tree(kwargs)


def traced(values) -> bool:
    """Whether a traced value is among ``values`` (or in lists and tuples among them, at any depth)."""
    for v in values:
        if isinstance(v, Tracer) or (type(v) in (list, tuple) and traced(v)):
            return True
    return False


def _takes_functions(args, kwargs) -> bool:
    """A solver or integrator given a function: it may close over traced values."""
    return bool(current_stack()) and any(
        isinstance(v, (types.FunctionType, types.MethodType, functools.partial))
        for v in (*args, *kwargs.values()))


def _from_npfunc() -> bool:
    """True when one of npfunc's twins calls SciPy (a twin running SciPy's solver).
    A transform calling a SciPy function it was given, ``jacfwd(scipy.linalg.expm)``,
    is a user's call: it is routed."""
    return sys._getframe(2).f_code.co_filename.startswith(_TWINS_DIR)  # (code, not the module: a doctest's
    # examples run in its module's namespace)


_TWINS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _should_route(args, kwargs) -> bool:
    return traced(args) or traced(kwargs.values()) or _takes_functions(args, kwargs)


_ROUTED = contextvars.ContextVar("npfunc_routed_from_scipy", default=False)


def routed() -> bool:
    """True inside a twin reached from an unmodified SciPy call: the twin then
    adds nothing of its own (e.g. ``minimize`` does not fill in ``jac``), so
    its values are the ones SciPy's call would give."""
    return _ROUTED.get()


def _call_twin(twin, args, kwargs):
    """``twin(*args, **kwargs)`` reached from an unmodified SciPy call (see ``routed``)."""
    token = _ROUTED.set(True)
    try:
        return twin(*args, **kwargs)
    finally:
        _ROUTED.reset(token)


def routed_function(original, twin):
    """``original`` (SciPy's), calling ``twin`` when its arguments are traced."""

    @functools.wraps(original)
    def route(*args, **kwargs):
        if _tracer._PENDING is not None:  # arrays made by np.zeros & co. in the function: their values
            args, kwargs = unwrap_pending(args, kwargs)
        if _should_route(args, kwargs) and not _from_npfunc():
            return _call_twin(twin, args, kwargs)
        return original(*args, **kwargs)

    route.npfunc_twin = twin  # type: ignore[attr-defined]
    return route


def _routed_method(routed_cls, name, twin):
    def method(self, *args, **kwargs):
        if _tracer._PENDING is not None:
            args, kwargs = unwrap_pending(args, kwargs)
        if (traced(args) or traced(kwargs.values())) and not _from_npfunc():
            return getattr(twin, name)(*args, **kwargs)
        return getattr(super(routed_cls, self), name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def routed_distribution(original, twin):
    """``original`` (a SciPy distribution object) whose methods call ``twin``'s
    on traced arguments; an instance of a subclass of its class, sharing its state."""
    cls = type(original)
    routed_cls = type(cls.__name__, (cls,), {"__module__": cls.__module__, "npfunc_twin": twin})
    for name in _DISTRIBUTION_METHODS:
        if hasattr(twin, name):
            setattr(routed_cls, name, _routed_method(routed_cls, name, twin))
    out = object.__new__(routed_cls)
    out.__dict__ = original.__dict__
    return out


def routed_class(original: type, twin: type) -> type:
    """A stand-in for the SciPy class ``original`` (an interpolator, ``gaussian_kde``)
    whose construction makes a ``twin`` when an argument is traced and an
    instance of ``original`` itself otherwise (so plain objects pickle and compare
    as SciPy's).  ``isinstance`` and ``issubclass`` answer for ``original`` (and
    ``twin``), and user subclasses construct as subclasses of ``original`` do."""
    base_meta = type(original)

    def __call__(cls, *args, **kwargs):
        if cls is not routed:  # a user's subclass: ordinary construction
            return base_meta.__call__(cls, *args, **kwargs)
        if _tracer._PENDING is not None:
            args, kwargs = unwrap_pending(args, kwargs)
        if _should_route(args, kwargs) and not _from_npfunc():
            return _call_twin(twin, args, kwargs)
        return original(*args, **kwargs)

    def __instancecheck__(cls, obj):
        return base_meta.__instancecheck__(cls, obj) or isinstance(obj, (original, twin))

    def __subclasscheck__(cls, sub):
        return base_meta.__subclasscheck__(cls, sub) or issubclass(sub, (original, twin))

    meta = type(f"Routed{base_meta.__name__}", (base_meta,), {
        "__call__": __call__, "__instancecheck__": __instancecheck__, "__subclasscheck__": __subclasscheck__})
    routed = meta(original.__name__, (original,), {
        "__module__": original.__module__, "__qualname__": original.__qualname__, "__doc__": original.__doc__,
        "npfunc_twin": twin})
    return routed


def _ppoly_twin(obj, twins, args, kwargs):
    if np.any(np.diff(obj.x) < 0):
        raise UnsupportedOperationError(
            f"{describe_stack()}: a SciPy {type(obj).__name__} with decreasing breakpoints called at traced "
            "points: npfunc's twin takes increasing ones. Build the piecewise polynomial on increasing "
            "breakpoints: for an interpolant of a table given in decreasing x, interpolate the reversed table "
            "(CubicSpline(x[::-1], y[::-1])), the same function.")
    return twins.PPoly.construct_fast(obj.c, obj.x, obj.extrapolate, obj.axis)


def _bspline_twin(obj, twins, args, kwargs):
    return twins.BSpline.construct_fast(obj.t, obj.c, obj.k, obj.extrapolate, obj.axis)


def _rgi_twin(obj, twins, args, kwargs):
    method = kwargs.get("method", args[1] if len(args) > 1 else None) or obj.method
    if method not in ("linear", "nearest", "pchip") and not method.endswith("_legacy"):
        raise UnsupportedOperationError(
            f"{describe_stack()}: a scipy.interpolate.RegularGridInterpolator made from plain values, "
            f"method={method!r}, evaluated at traced points: SciPy fits that spline iteratively (gcrotmk), and "
            "npfunc's exact fit would not reproduce its values. Use npfunc.scipy.interpolate."
            "RegularGridInterpolator for the exact spline, or method='linear', 'pchip' or "
            f"'{method}_legacy' (SciPy's exact spline, one axis at a time).")
    # SciPy keeps the grid ascending and the values flipped to match
    return twins.RegularGridInterpolator(obj.grid, obj.values, method=obj.method, bounds_error=obj.bounds_error,
                                         fill_value=obj.fill_value)


def _interp1d_twin(obj, twins, args, kwargs):
    kind = obj._spline.k if obj._kind == "spline" else obj._kind  # x and y are stored sorted
    return twins.interp1d(obj.x, obj.y, kind=kind, axis=obj.axis, bounds_error=obj.bounds_error,
                          fill_value=obj.fill_value, assume_sorted=True)


def _same_state_twin(obj, twins, args=(), kwargs=None):
    """The twin sharing the plain instance's fitted state (the same attribute names)."""
    twin = object.__new__(getattr(twins, _scipy_name(obj)))
    twin.__dict__.update(vars(obj))
    return twin


def _scipy_name(obj) -> str:
    for cls in type(obj).__mro__:
        if cls.__name__ in _PLAIN_INSTANCE_TWINS:
            return cls.__name__
    raise AssertionError(type(obj))


def _rbf_twin(obj, twins, args, kwargs):
    twin = _same_state_twin(obj, twins)
    twin._scipy = obj if obj.neighbors is not None else None  # local interpolants: the twin refuses traced x
    return twin


def _tree_query_refusal(obj, twins, args, kwargs):
    raise ConcretizationError(
        f"{describe_stack()}: scipy.spatial.{type(obj).__name__} queried at traced points: the tree search is "
        "SciPy's compiled code on plain coordinates and its indices have no derivative. Query at plain points, "
        "tree.query(npfunc.stop_gradient(x)), and compute the distances from x with the indices it returns "
        "(np.linalg.norm(x - tree.data[i], axis=-1)); under vmap or jit, where the values are not known, use "
        "all pairs (scipy.spatial.distance.cdist) with np.argmin or a cut-off mask.")


#: SciPy classes (those defining the methods; subclasses inherit them) whose instances, made
#: from plain data and called on traced points, evaluate as the twin made from their data
#: (SciPy's compiled evaluation cannot take traced values): the twin maker and the methods.
_PLAIN_INSTANCE_TWINS = {
    "PPoly": (_ppoly_twin, ("__call__", "integrate")),
    "BSpline": (_bspline_twin, ("__call__", "integrate")),
    "RegularGridInterpolator": (_rgi_twin, ("__call__",)),
    "interp1d": (_interp1d_twin, ("__call__",)),
    "RBFInterpolator": (_rbf_twin, ("__call__",)),
    "gaussian_kde": (_same_state_twin, ("evaluate", "__call__", "pdf", "logpdf")),
    "KDTree": (_tree_query_refusal, ("query", "query_ball_point")),
    "cKDTree": (_tree_query_refusal, ("query", "query_ball_point")),
}


def _route_plain_calls(original: type, twins) -> None:
    """The methods of ``original`` (a plain SciPy interpolator called with a traced
    argument) call the twin made from the instance's plain data; plain calls are
    SciPy's.  PPoly's ``__call__`` covers CubicSpline, PchipInterpolator,
    Akima1DInterpolator and CubicHermiteSpline, which inherit it."""
    to_twin, names = _PLAIN_INSTANCE_TWINS[original.__name__]
    for name in names:
        method = getattr(original, name)
        if getattr(method, "npfunc_plain_call", False):
            continue

        def make(method, name):
            @functools.wraps(method)
            def routed_method(self, *args, **kwargs):
                if (traced(args) or traced(kwargs.values())) and not _from_npfunc():
                    return _call_twin(getattr(to_twin(self, twins, args, kwargs), name), args, kwargs)
                return method(self, *args, **kwargs)

            routed_method.npfunc_plain_call = True  # type: ignore[attr-defined]
            return routed_method

        try:
            setattr(original, name, make(method, name))
        except TypeError:  # a compiled class (cKDTree) cannot be patched: its raw error stays
            pass


def _is_distribution(obj) -> bool:
    from scipy.stats import rv_continuous, rv_discrete
    from scipy.stats._multivariate import multi_rv_generic

    return isinstance(obj, (rv_continuous, rv_discrete, multi_rv_generic))


#: twin module name -> the SciPy module whose routes wait for it to finish loading
_WAITING: dict = {}


def install(scipy_module) -> None:
    """Route every function of ``scipy_module`` that has a twin."""
    twin_name = TWIN_MODULES[scipy_module.__name__]
    loading = sys.modules.get(twin_name)
    if loading is not None and getattr(getattr(loading, "__spec__", None), "_initializing", False):
        # the twin module imported SciPy's while it loads: its twins are not all defined
        # yet, so the routes are installed when it is done (twins_loaded, at its end)
        _WAITING[twin_name] = scipy_module
        return
    try:
        twins = importlib.import_module(twin_name)
    except ModuleNotFoundError:  # no twins for this module yet
        return
    _install_from(scipy_module, twins)


def twins_loaded(twin_name: str) -> None:
    """Called at the end of each twin module: install the routes that waited for it."""
    scipy_module = _WAITING.pop(twin_name, None)
    if scipy_module is not None:
        _install_from(scipy_module, sys.modules[twin_name])


def _install_from(scipy_module, twins) -> None:
    for name in (*getattr(twins, "__all__", ()), *getattr(twins, "ROUTED_ONLY", ())):
        original = getattr(scipy_module, name, None)
        twin = getattr(twins, name, None)
        if original is None or twin is None or twin is original or hasattr(original, "npfunc_twin"):
            continue
        if isinstance(original, types.FunctionType) or (
                isinstance(original, types.BuiltinFunctionType) and name in getattr(twins, "ROUTED_ONLY", ())):
            setattr(scipy_module, name, routed_function(original, twin))
        elif scipy_module.__name__ == "scipy.stats" and _is_distribution(original):
            setattr(scipy_module, name, routed_distribution(original, twin))
        elif isinstance(original, type) and isinstance(twin, type) and name in ROUTED_CLASSES:
            setattr(scipy_module, name, routed_class(original, twin))
            if name in _PLAIN_INSTANCE_TWINS:
                _route_plain_calls(original, twins)
        elif type(original).__module__ == "uarray":  # scipy.fft's functions are uarray multimethods
            setattr(scipy_module, name, routed_function(original, twin))


def register() -> None:
    """Install the routes for each SciPy module when it is (or once it is) imported."""
    for module_name in TWIN_MODULES:
        when_imported(module_name, install)
