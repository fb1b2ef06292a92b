"""``npfunc.scipy.special``: SciPy's special functions for traced values.

The elementwise ones (``expit``, ``erf``, ``gammaln``, ``xlogy``, the Bessel
functions, ``hyp1f1`` ...) are SciPy ufuncs: calling ``scipy.special.jv(v, x)``
on a traced value already works, and the functions here are the same
implementations (``zeta`` too: SciPy's calls ufuncs).  ``logsumexp``,
``softmax``, ``log_softmax``, ``polygamma``, ``spherical_jn``/``spherical_yn``,
``multigammaln``, ``comb``, ``factorial``, ``bernoulli`` and ``sph_harm_y``
are plain Python functions in SciPy that convert their input with
``np.asarray``, which a traced value cannot go through -- use the versions
here instead.  See docs/special.md for the derivative conventions.

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
                                  erfinv, expit, gamma, gammaln, huber, i0, i0e, i1, i1e, kl_div, log_expit,
                                  log_ndtr, log_softmax, logit, logsumexp, ndtr, ndtri, polygamma,
                                  pseudo_huber, rel_entr, softmax, softplus, xlog1py, xlogy)
from ..primitives.special.bessel import (iv, ive, j0, j1, jn, jv, k0, k0e, k1, k1e, kv, kve, y0, y1,  # noqa: F401
                                         yn, yv)
from ..primitives.special.boxcox import boxcox, boxcox1p, inv_boxcox  # noqa: F401
from ..primitives.special.gamma_zeta import binom, gammasgn, loggamma, rgamma, zeta_x_derivative  # noqa: F401
from ..primitives.special.hypergeometric import (hyp1f1, hyp1f1_parameter_derivative, hyp2f1,  # noqa: F401
                                                 hyp2f1_parameter_derivative)
from ..primitives.special.incomplete import (betainc, betaincc, gammainc, gammaincc,  # noqa: F401
                                             gammainc_shape_derivative, betainc_shape_derivative, poch,
                                             stdtr)
from ..primitives.special.elliptic import ellipe, ellipk, ellipkm1  # noqa: F401
from ..primitives.special.integrals import (dawsn, exp1, expi, expn, fresnel, owens_t, sici, spence,  # noqa: F401
                                           voigt_profile, wofz)
from ..primitives.special.inverses import (betainccinv, betaincinv, gammainccinv, gammaincinv,  # noqa: F401
                                          ndtri_exp, stdtrit)
from ._special_twins import (bernoulli, comb, factorial, multigammaln, sph_harm_y, spherical_jn,  # noqa: F401
                             spherical_yn, zeta)

_special_primitives.register_scipy_special(_sc)
psi = digamma

__all__ = ["beta", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv", "erfcx", "erfinv", "expit",
           "gamma", "gammaln", "huber", "i0", "i0e", "i1", "i1e", "kl_div", "log_expit", "log_ndtr",
           "log_softmax", "logit", "logsumexp", "ndtr", "ndtri", "polygamma", "psi", "pseudo_huber",
           "rel_entr", "softmax", "softplus", "xlog1py", "xlogy",
           # Bessel functions
           "iv", "ive", "j0", "j1", "jn", "jv", "k0", "k0e", "k1", "k1e", "kv", "kve", "y0", "y1", "yn", "yv",
           "spherical_jn", "spherical_yn",
           # gamma relatives, zeta, integrals, hypergeometric functions, transforms
           "binom", "gammasgn", "loggamma", "rgamma", "multigammaln", "comb", "factorial", "bernoulli", "zeta",
           "exp1", "expi", "expn", "dawsn", "fresnel", "sici", "spence", "wofz", "voigt_profile", "owens_t", "ellipk", "ellipe",
           "ellipkm1", "hyp1f1",
           "hyp2f1", "boxcox", "boxcox1p", "inv_boxcox", "sph_harm_y", "gammainc", "gammaincc", "betainc",
           "betaincc", "stdtr", "poch", "gammaincinv", "gammainccinv", "betaincinv", "betainccinv", "stdtrit", "ndtri_exp",
           # derivatives without a closed form, as functions of their own
           "gammainc_shape_derivative", "betainc_shape_derivative", "zeta_x_derivative",
           "hyp1f1_parameter_derivative", "hyp2f1_parameter_derivative"]

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

from ._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
