"""``npfunc.scipy.special``: SciPy's special functions for traced values.

The elementwise ones (``expit``, ``erf``, ``gammaln``, ``xlogy`` ...) are
SciPy ufuncs: calling ``scipy.special.expit(x)`` on a traced value already
works, and the functions here are the same implementations.  ``logsumexp``,
``softmax``, ``log_softmax`` and ``polygamma`` are plain Python functions in
SciPy that convert their input with ``np.asarray``, which a traced value
cannot go through -- use the versions here instead.

>>> import numpy as np, npfunc
>>> from npfunc.scipy import special
>>> x = np.array([[0.0, 1.0], [2.0, -np.inf]])
>>> special.logsumexp(x, axis=1).round(4)
array([1.3133, 2.    ])
>>> npfunc.grad(lambda x: special.logsumexp(x, axis=1).sum())(x).round(4)
array([[0.2689, 0.7311],
       [1.    , 0.    ]])
"""
from __future__ import annotations

import scipy.special as _sc

from ..core import dispatch as _dispatch
from ..primitives.special import functions as _special_primitives
from ..primitives.special.functions import (beta, betaln, digamma, entr, erf, erfc, erfcinv, erfcx,  # noqa: F401
                                  erfinv, expit, gamma, gammaln, i0, i0e, i1, i1e, kl_div, log_expit,
                                  log_ndtr, log_softmax, logit, logsumexp, ndtr, ndtri, polygamma,
                                  rel_entr, softmax, softplus, xlog1py, xlogy)

_special_primitives.register_scipy_special(_sc)
psi = digamma

__all__ = ["beta", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv", "erfcx", "erfinv", "expit",
           "gamma", "gammaln", "i0", "i0e", "i1", "i1e", "kl_div", "log_expit", "log_ndtr", "log_softmax",
           "logit", "logsumexp", "ndtr", "ndtri", "polygamma", "psi", "rel_entr", "softmax", "softplus",
           "xlog1py", "xlogy"]

#: SciPy functions that cannot see traced values (they call ``np.asarray``),
#: keyed by their code object, with the npfunc function to call instead.
_TWINS = _special_primitives.TWINS


def __dir__():
    return __all__


def __getattr__(name: str):
    target = getattr(_sc, name, None)
    fn = _dispatch.UFUNCS.get(target) if target is not None and type(target).__name__ == "ufunc" else None
    if fn is not None:
        return fn
    raise AttributeError(
        f"npfunc.scipy.special has no function {name!r}"
        + (f" (scipy.special.{name} is not supported on traced values yet; {_dispatch.COVERAGE_HINT})"
           if target is not None else ""))
