"""Conversion errors name the twin: when SciPy's ``scipy.optimize`` or
``scipy.integrate`` is imported, its functions that have an
``npfunc.scipy`` twin are registered in ``dispatch.TWINS`` (see
``core.dispatch.twin_hint``).  Importing npfunc imports no SciPy for this."""
from __future__ import annotations

from ..core import dispatch
from ..core.imports import when_imported

TWINS = {
    "scipy.optimize": ("root", "fsolve", "root_scalar", "brentq", "bisect", "brenth", "ridder", "newton", "fixed_point", "minimize", "minimize_scalar",
                       "least_squares", "curve_fit"),
    "scipy.integrate": ("solve_ivp", "odeint", "quad", "quad_vec", "fixed_quad", "trapezoid", "simpson",
                        "cumulative_trapezoid", "cumulative_simpson", "romb"),
}


def _register(module) -> None:
    for name in TWINS[module.__name__]:
        target = getattr(module, name, None)
        while hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        code = getattr(target, "__code__", None)
        if code is not None:
            dispatch.TWINS[code] = f"npfunc.{module.__name__}.{name}"


def register() -> None:
    for name in TWINS:
        when_imported(name, _register)
