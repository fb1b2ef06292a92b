"""Recognising dask arrays without importing dask.

The transforms call ``has_dask`` on every call, so it must cost next to
nothing when Dask is not in use: if ``dask`` was never imported no dask
array can exist, and otherwise a type's module name tells.
"""
from __future__ import annotations

import sys


def is_dask_array(x) -> bool:
    """Whether ``x`` is a dask array (any dask collection with ``chunks``)."""
    t = type(x)
    return t.__module__.startswith("dask") and hasattr(t, "__dask_graph__") and hasattr(t, "chunks")


def has_dask(leaves, kwargs=None) -> bool:
    """Whether any of ``leaves`` (or of the leaves of ``kwargs``) is a dask array;
    False at once when dask was never imported."""
    if "dask" not in sys.modules:
        return False
    if kwargs:
        import optree

        leaves = list(leaves) + optree.tree_leaves(kwargs, none_is_leaf=True)
    return any(is_dask_array(x) for x in leaves)
