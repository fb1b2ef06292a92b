"""npfunc on Dask: transforms over dask arrays, computed chunk by chunk.

* ``npfunc.vmap`` over a dask array returns a dask array: each chunk is one
  vectorised in-memory vmap (``_vmap.py``).
* ``npfunc.grad``, ``grad_and_value`` and ``vjp`` of a loss that reads dask
  data (as arguments or closed over) compute the gradient as a Dask
  reduction of per-chunk gradients (``_grad.py``); ``npfunc.dask.grad`` and
  friends take ``reduction="mean"`` or ``"sum"`` to state the loss's form.

Importing npfunc never imports dask: the implementations load on first use.
"""
from __future__ import annotations

from ._detect import is_dask_array
from ._errors import DaskChunkingError, DaskReductionError, DaskTransformError

__all__ = ["grad", "grad_and_value", "vjp", "is_dask_array", "DaskChunkingError",
           "DaskReductionError", "DaskTransformError"]


def __getattr__(name: str):
    # _grad imports npfunc.api, which imports this package: load it on first use.
    if name in ("grad", "grad_and_value", "vjp"):
        from . import _grad
        return getattr(_grad, name)
    raise AttributeError(f"module 'npfunc.dask' has no attribute {name!r}")
