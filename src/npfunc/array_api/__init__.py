"""``npfunc.array_api``: the Python Array API standard (2024.12) on npfunc.

Traced values answer ``x.__array_namespace__()`` with this module, so code
written against the standard (SciPy with ``SCIPY_ARRAY_API=1``,
array-api-extra, scikit-learn's array-API paths ...) runs unchanged under
every transform.  Every function is built on npfunc's implementations, so it
takes plain NumPy arrays and traced values alike: on plain arrays it returns
plain arrays (0-d results as 0-d arrays, never NumPy scalars).

>>> import numpy as np, npfunc
>>> def f(x):
...     xp = x.__array_namespace__()
...     return xp.sum(xp.exp(x) * xp.std(x, correction=1))
>>> x = np.array([0.0, 1.0, 2.0])
>>> npfunc.grad(f)(x).round(4)
array([-4.5537,  2.7183, 12.9427])
>>> npfunc.vmap(npfunc.grad(f))(np.stack([x, 2 * x])).shape
(2, 3)

Where the standard and NumPy differ, the standard is followed: ``std`` and
``var`` take ``correction=``, ``sort``/``argsort`` take ``descending=`` and
``stable=``, ``clip`` keeps ``x``'s dtype, ``ceil`` of an integer array stays
integral, ``unique_*`` return named tuples, ``astype`` refuses complex to
real.  ``docs/array_api.md`` lists what the conformance suite checks and
the remaining differences.
"""
from __future__ import annotations

import math as _math
import sys as _sys

from . import fft, linalg  # noqa: F401  (the extensions)
from . import special  # noqa: F401  (not in the standard: where SciPy looks for special functions)
from . import _samples  # noqa: F401  (registry samples of the functions that add to NumPy's)
from ._creation import (arange, asarray, empty, empty_like, eye, from_dlpack, full, full_like,  # noqa: F401
                        linspace, meshgrid, ones, ones_like, tril, triu, zeros, zeros_like)
from ._dtypes import (DTYPES as _DTYPES, astype, bool, can_cast, complex64, complex128, finfo,  # noqa: F401
                      float32, float64, iinfo, int8, int16, int32, int64, isdtype, result_type, uint8,
                      uint16, uint32, uint64)
from ._elementwise import *  # noqa: F401,F403
from ._elementwise import __all__ as _ELEMENTWISE
from ._info import __array_namespace_info__  # noqa: F401
from ._manipulation import (broadcast_arrays, broadcast_to, concat, expand_dims, flip, matmul,  # noqa: F401
                            matrix_transpose, moveaxis, permute_dims, repeat, reshape, roll, squeeze, stack,
                            take, take_along_axis, tensordot, tile, unstack, vecdot)
from ._statistics import (all, any, argmax, argmin, argsort, count_nonzero, cumulative_prod,  # noqa: F401
                          cumulative_sum, diff, max, mean, min, nonzero, prod, searchsorted, sort, std, sum,
                          unique_all, unique_counts, unique_inverse, unique_values, var, where)

__array_api_version__ = "2024.12"
SUPPORTED_VERSIONS = ("2021.12", "2022.12", "2023.12", "2024.12")

e = _math.e
inf = _math.inf
nan = _math.nan
pi = _math.pi
newaxis = None

_CREATION = ["arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like", "linspace",
             "meshgrid", "ones", "ones_like", "tril", "triu", "zeros", "zeros_like"]
_DATA_TYPES = ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type", *_DTYPES]
_OTHERS = ["broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis", "permute_dims",
           "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack", "take", "take_along_axis",
           "matmul", "matrix_transpose", "tensordot", "vecdot", "all", "any", "argmax", "argmin", "argsort",
           "count_nonzero", "cumulative_prod", "cumulative_sum", "diff", "max", "mean", "min", "nonzero",
           "prod", "searchsorted", "sort", "std", "sum", "unique_all", "unique_counts", "unique_inverse",
           "unique_values", "var", "where"]
__all__ = ["__array_api_version__", "__array_namespace_info__", "e", "inf", "nan", "pi", "newaxis", "fft",
           "linalg", *_CREATION, *_DATA_TYPES, *_ELEMENTWISE, *_OTHERS]


def namespace_for(api_version: str | None = None):
    """This module, for ``x.__array_namespace__(api_version=...)`` (versions
    2021.12 to 2024.12; ``None`` means the newest)."""
    if api_version is not None and api_version not in SUPPORTED_VERSIONS:
        raise ValueError(f"npfunc.array_api supports the Array API standard versions {SUPPORTED_VERSIONS}, "
                         f"not {api_version!r}")
    return _THIS


_THIS = _sys.modules[__name__]
