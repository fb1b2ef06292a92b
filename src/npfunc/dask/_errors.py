"""The failures of npfunc's Dask support, one class per failure mode.

They live beside the Dask code so that ``import npfunc`` stays free of it;
each derives from ``npfunc.errors.NpfuncError`` and from the built-in
exception a Python user would expect.
"""
from __future__ import annotations

from ..core.errors import NpfuncError

__all__ = ["DaskChunkingError", "DaskReductionError", "DaskTransformError"]


class DaskChunkingError(NpfuncError, ValueError):
    """A dask array is chunked in a way the computation cannot be split by
    (chunks along an axis that is not mapped, unknown chunk sizes, data whose
    rows disagree)."""


class DaskReductionError(NpfuncError, ValueError):
    """A function differentiated over dask data is not a sum or a mean over
    the rows of the data, so its gradient is not a sum of per-chunk gradients."""


class DaskTransformError(NpfuncError, TypeError):
    """Dask data used where the computation cannot run chunk by chunk (inside
    another transform, with ``has_aux``, or as the value differentiated)."""
