"""SciPy's array-API code on traced values.

With ``SCIPY_ARRAY_API=1`` set before SciPy is imported, SciPy asks
``array_api_compat.array_namespace(*arrays)`` which namespace to compute
with.  A traced value answers through ``__array_namespace__``; but arrays
of different libraries make SciPy refuse ("Multiple namespaces"), and inside
a transform a traced value usually meets plain NumPy arrays (weights,
constants, closed-over data).  So, once SciPy's vendored
``array_api_compat`` is imported, its ``array_namespace`` is wrapped: with a
traced value among the arguments and otherwise only NumPy arrays and
scalars, the namespace is ``npfunc.array_api`` (which takes both); every
other call goes to SciPy's function unchanged.

When the variable is not set, SciPy converts traced values with
``np.asarray`` and the conversion error says so: ``array_api_alternative``
lets it name ``SCIPY_ARRAY_API=1`` for the functions SciPy marks as
supporting the standard (``xp_capabilities``).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..core import dispatch
from ..core.dispatch import public_module
from ..core.imports import when_imported
from ..core.tracer import Tracer

_PLAIN = (np.ndarray, np.generic, bool, int, float, complex, type(None))


def _wrap_array_namespace(original):
    def array_namespace(*xs, api_version=None, use_compat=None):
        for x in xs:
            if isinstance(x, Tracer):
                return _traced_namespace(xs, api_version)
        return original(*xs, api_version=api_version, use_compat=use_compat)

    array_namespace.__wrapped__ = original  # type: ignore[attr-defined]
    array_namespace.__doc__ = original.__doc__
    array_namespace.npfunc_hook = True  # type: ignore[attr-defined]
    return array_namespace


def _traced_namespace(xs, api_version):
    for x in xs:
        if not isinstance(x, (Tracer, *_PLAIN)) and hasattr(x, "__array_namespace__"):
            raise TypeError(f"Multiple namespaces for array inputs: npfunc's traced values and "
                            f"{type(x).__module__}.{type(x).__name__}")
    from ..array_api import namespace_for

    return namespace_for(api_version)


def _wrap_is_writeable_array(original):
    def is_writeable_array(x):
        if isinstance(x, Tracer):  # a traced NumPy scalar is immutable, as np.generic: not writeable
            from ..primitives.indexing.aliasing import is_scalar

            return not is_scalar(x)
        return original(x)

    is_writeable_array.__wrapped__ = original  # type: ignore[attr-defined]
    is_writeable_array.__doc__ = original.__doc__
    is_writeable_array.npfunc_hook = True  # type: ignore[attr-defined]
    return is_writeable_array


def install(compat) -> None:
    """Wrap ``compat.array_namespace`` (SciPy's vendored array_api_compat), and
    the names SciPy's modules already bound to it; likewise
    ``is_writeable_array``, which takes every unknown array type for a
    writeable one (``xpx.at(r).set(v)`` would then write into a traced NumPy
    scalar, where SciPy's NumPy path makes a copy)."""
    original = compat.array_namespace
    if getattr(original, "npfunc_hook", False):
        return
    hooks = {original: _wrap_array_namespace(original)}
    writeable = getattr(compat, "is_writeable_array", None)
    if writeable is not None:
        hooks[writeable] = _wrap_is_writeable_array(writeable)
    for name, module in list(sys.modules.items()):
        if module is None or not (name == compat.__name__ or name.startswith("scipy.")):
            continue
        for attr in ("array_namespace", "get_namespace", "is_writeable_array"):
            hooked = hooks.get(getattr(module, attr, None))
            if hooked is not None:
                setattr(module, attr, hooked)


# ---- the conversion error, when SCIPY_ARRAY_API is not set -------------------------------------

_CAPABLE: dict = {"entries": -1, "codes": {}}  # built from SciPy's table on first use


def _capable_functions() -> dict:
    """Code objects of the SciPy functions that support the standard -> their names."""
    table = getattr(sys.modules.get("scipy._lib._array_api"), "xp_capabilities_table", None)
    if table is None:
        return {}
    if _CAPABLE["entries"] != len(table):  # modules imported since add entries
        codes = {}
        for f, caps in list(table.items()):
            if caps.get("np_only") or "array_api_strict" in {b for b, *_ in caps.get("skip_backends", ())}:
                continue
            target = f
            while target is not None:
                code = getattr(target, "__code__", None)
                inner = getattr(target, "__wrapped__", None)
                # A decorator's closure (scipy._lib._util.wrapper) runs for every function it
                # decorates, orthogonal_procrustes and solve_continuous_are alike: on the
                # stack it does not say which one runs, so only the code it wraps names f.
                if code is not None and not (inner is not None and code.co_freevars):
                    codes[code] = _public_name(f)
                target = inner
        _CAPABLE["entries"], _CAPABLE["codes"] = len(table), codes
    return _CAPABLE["codes"]


def _public_name(f) -> str:
    """``scipy.stats.skew`` for the function defined in ``scipy.stats._stats_py``."""
    module = public_module(getattr(f, "__module__", None) or "scipy")
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", "?")
    if "<" in name:  # a function defined inside another: its own name
        name = getattr(f, "__name__", "?")
    return f"{module}.{name}"


def _scipy_array_api_on() -> bool:
    override = sys.modules.get("scipy._lib._array_api_override")
    if override is not None:
        return bool(override.SCIPY_ARRAY_API)
    return bool(os.environ.get("SCIPY_ARRAY_API"))


# scipy.ndimage's resampling functions (and the spline prefilter they call first at order > 1):
# interpolation, for which a convolution is no advice
_NDIMAGE_INTERPOLATION = frozenset({"map_coordinates", "affine_transform", "geometric_transform",
                                    "shift", "zoom", "rotate", "spline_filter", "spline_filter1d"})


def _outermost_ndimage_call() -> str | None:
    """The public name of the outermost scipy.ndimage function on the stack (the one the
    user called: gaussian_filter, whose correlate1d converts the input), or None."""
    codes = _capable_functions()
    frame, found = sys._getframe(2), None
    while frame is not None:
        name = codes.get(frame.f_code)
        if name is not None and name.startswith("scipy.ndimage."):
            found = name
        frame = frame.f_back
    return found


def array_api_alternative(code) -> str | None:
    """For a SciPy function's code object: the sentence about ``SCIPY_ARRAY_API=1``
    when SciPy marks the function as supporting the standard and the variable is unset.
    ``scipy.ndimage`` marks its functions so but runs them on ``np.asarray`` of
    any other namespace's arrays: the variable cannot help, and the sentence
    says what does."""
    name = _capable_functions().get(code)
    if name is None:
        return None
    if name.startswith("scipy.ndimage."):  # its array-API support converts to NumPy (np.asarray)
        called = _outermost_ndimage_call() or name
        if called != name:  # gaussian_filter's correlate1d: the message names what the user called
            name = f"{called} (through {name})"
        if called.rsplit(".", 1)[1] in _NDIMAGE_INTERPOLATION or name.rsplit(".", 1)[1] in _NDIMAGE_INTERPOLATION:
            return (f"{name} computes on NumPy arrays even with SCIPY_ARRAY_API=1, and npfunc has no "
                    "twin for it yet: sample the grid with scipy.interpolate.interpn(points, values, xi, "
                    "method='linear') or RegularGridInterpolator, which work on traced values (order=1; "
                    "mind that xi is (n, ndim), the transpose of map_coordinates' coordinates; ndimage's "
                    "mode='constant' is interpn's bounds_error=False, fill_value=cval, and mode='nearest' "
                    "is np.clip of the coordinates to [0, n - 1])")
        return (f"{name} computes on NumPy arrays even with SCIPY_ARRAY_API=1, and npfunc has no twin "
                "for it yet: write the filter with np.convolve or npfunc.scipy.signal.convolve "
                "(mode='valid') of the input padded as ndimage pads it: its default mode='reflect' is "
                "np.pad(x, r, mode='symmetric'), 'nearest' is np.pad's 'edge', 'mirror' its 'reflect', "
                "'wrap' its 'wrap' and 'constant' its 'constant'")
    if _scipy_array_api_on():
        return None
    return (f"set SCIPY_ARRAY_API=1 in the environment before SciPy is imported, and {name} runs "
            "SciPy's own array-API code on traced values (see docs/scipy.md)")


def register() -> None:
    when_imported("scipy._lib.array_api_compat", install)
    if array_api_alternative not in dispatch.ALTERNATIVES:
        dispatch.ALTERNATIVES.append(array_api_alternative)
