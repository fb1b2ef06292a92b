"""``npfunc.scipy.integrate``: SciPy's ODE solvers and quadrature, differentiable.

* ``solve_ivp`` and ``odeint`` (every method): SciPy's forward solve; the
  solution is differentiable in ``y0``, the times, ``args`` and closed-over
  traced values -- adjoint method in reverse mode, forward sensitivities in
  forward mode, one stacked solve under ``vmap``.
* Quadrature of samples (``trapezoid``, ``simpson``, ``cumulative_trapezoid``,
  ``cumulative_simpson``, ``romb``): SciPy's formulas as NumPy calls.
* Quadrature of functions (``quad``, ``quad_vec``, ``fixed_quad``):
  derivatives in the integrand's parameters by differentiating under the
  integral, in the limits by the fundamental theorem of calculus.

Outside any transform every function here gives SciPy's result.  The ODE
and ``quad`` parts load SciPy on first use.  See docs/solvers.md.
"""
import importlib

from ._quadrature import cumulative_simpson, cumulative_trapezoid, romb, simpson, trapezoid

_LAZY = {"solve_ivp": "._ivp", "odeint": "._ivp", "TracedOdeSolution": "._ivp", "OdeSolveError": "._ode",
         "UnsupportedOdeError": "._ode", "quad": "._quad", "quad_vec": "._quad", "fixed_quad": "._quad"}

__all__ = ["solve_ivp", "odeint", "quad", "quad_vec", "fixed_quad", "trapezoid", "simpson", "cumulative_trapezoid",
           "cumulative_simpson", "romb", "OdeSolveError", "UnsupportedOdeError", "TracedOdeSolution"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'npfunc.scipy.integrate' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__():
    return sorted(__all__)

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
