"""``npfunc.scipy.optimize``: SciPy's solvers with derivatives of their solutions.

Each twin has SciPy's signature and, called on plain values outside any
transform, *is* SciPy's call.  Inside a transform the forward solve is still
SciPy's; the solution is differentiable in ``args``, in every traced value
the user's function closes over, and (``curve_fit``) in the data, through
the implicit function theorem at the solution -- never through the
solver's iterations.  See docs/solvers.md.

>>> import numpy as np, npfunc
>>> from npfunc.scipy import optimize
>>> def sqrt_of(a):   # the root of x**2 - a, by SciPy's brentq
...     return optimize.brentq(lambda x, a: x * x - a, 0.0, 10.0, args=(a,))
>>> a = np.float64(2.0)
>>> bool(np.isclose(npfunc.grad(sqrt_of)(a), 0.5 / np.sqrt(a)))
True
"""
from scipy.optimize import OptimizeResult  # noqa: F401

from ._implicit import NonConvergedError, UnsupportedSolverError, linear_solve
from ._least_squares import curve_fit, least_squares
from ._minimize import minimize, minimize_scalar
from ._roots import bisect, brenth, brentq, fixed_point, fsolve, newton, ridder, root, root_scalar

__all__ = ["root", "fsolve", "root_scalar", "brentq", "newton", "fixed_point", "minimize", "minimize_scalar",
           "least_squares", "curve_fit", "OptimizeResult", "NonConvergedError", "UnsupportedSolverError",
           "linear_solve"]

from . import _discrete  # noqa: E402

#: routed from SciPy's module but not public twins: linear_sum_assignment runs on the cost's value under
#: grad and jvp, linprog refuses (naming the envelope-theorem spelling), fsolve is root(..., 'hybr').x;
#: bisect, brenth and ridder share brentq's twin (SciPy's own method finds the root)
ROUTED_ONLY = ("linear_sum_assignment", "linprog", "fsolve", "bisect", "brenth", "ridder")
linear_sum_assignment, linprog, fsolve = _discrete.linear_sum_assignment, _discrete.linprog, _discrete.fsolve

from .._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
