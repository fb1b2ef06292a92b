"""SciPy's result objects with fields that refuse to be read.

SciPy's results (``OptimizeResult``, ``OdeResult``) are dicts read by
attribute or by key.  Where a field would hold a value the plain program
does not compute (the step grid that moves under a derivative, a stacked
solve's matrix under vmap), npfunc returns the result as an instance of a
subclass whose reads of that field raise the error that names the fix.
"""
from __future__ import annotations

from typing import Callable

_CLASSES: dict = {}


def with_refused_fields(res, fields: tuple, refuse: Callable[[str], Exception]):
    """``res`` (a SciPy result) as one whose ``fields`` raise ``refuse(field)``
    when read, as ``res.field`` or ``res["field"]``: SciPy's attribute access
    reads the keys.  ``refuse`` is a function made once (it keys the subclass)."""
    base = type(res)
    key = (base, fields, refuse)
    cls = _CLASSES.get(key)
    if cls is None:
        def __getitem__(self, item):
            if item in fields:
                raise refuse(item)
            return base.__getitem__(self, item)

        cls = _CLASSES[key] = type(base.__name__, (base,), {"__getitem__": __getitem__})
    return cls(res)
