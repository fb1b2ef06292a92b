"""``__array_namespace_info__``: what the namespace offers.

``capabilities()`` answers for the code running now: boolean indexing and
data-dependent output shapes (``x[mask]``, ``unique_*``, ``nonzero``) work
on plain arrays and under grad, jvp and vjp, whose values are concrete,
but not under vmap (one shape for the whole batch) or jit (shapes recorded
once).  Libraries that ask (array-api-extra's ``apply_where``, SciPy) then
take their fixed-shape path exactly where it is needed.
"""
from __future__ import annotations

import numpy as np

from ..core.context import current_stack
from ._base import CPU, check_device
from ._dtypes import DTYPES, isdtype


def _shapes_follow_values() -> bool:
    from ..interpreters.batching import BatchInterpreter
    from ..interpreters.staging import StagingInterpreter

    return not any(isinstance(i, (BatchInterpreter, StagingInterpreter)) for i in current_stack())


class Info:
    """The object ``__array_namespace_info__()`` returns."""

    __module__ = "npfunc.array_api"

    def capabilities(self) -> dict:
        concrete = _shapes_follow_values()
        return {"boolean indexing": concrete, "data-dependent shapes": concrete, "max dimensions": 64}

    def default_device(self) -> str:
        return CPU

    def devices(self) -> list:
        return [CPU]

    def default_dtypes(self, *, device=None) -> dict:
        check_device(device, "__array_namespace_info__().default_dtypes")
        return {"real floating": np.dtype(np.float64), "complex floating": np.dtype(np.complex128),
                "integral": np.dtype(np.int64), "indexing": np.dtype(np.int64)}

    def dtypes(self, *, device=None, kind=None) -> dict:
        check_device(device, "__array_namespace_info__().dtypes")
        if kind is None:
            return {name: np.dtype(t) for name, t in DTYPES.items()}
        return {name: np.dtype(t) for name, t in DTYPES.items() if isdtype(t, kind)}


def __array_namespace_info__() -> Info:
    """The inspection object of the namespace (capabilities, devices, default dtypes)."""
    return Info()
