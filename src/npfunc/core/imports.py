"""Run code right after a module finishes importing, without importing it.

SciPy's ufuncs become dispatchable (and SciPy functions get their twin hints)
only once SciPy is imported, and ``import npfunc`` must not import SciPy (it
costs more than all of npfunc).  ``when_imported`` runs a callback at once
if the module is already loaded, or right after it is imported later.
"""
from __future__ import annotations

import importlib.abc
import sys
from typing import Callable

_PENDING: dict[str, list[Callable]] = {}
#: Modules whose code has run (their callbacks are running or ran): a callback
#: registered for one of them from inside such a callback runs at once.
_EXECUTED: set[str] = set()


def _loaded(module) -> bool:
    spec = getattr(module, "__spec__", None)
    return module is not None and (not getattr(spec, "_initializing", False) or module.__name__ in _EXECUTED)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds no module itself: asks the other finders for the spec and wraps
    the loader's ``exec_module`` so the callbacks run after it."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PENDING:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_run(module):
            exec_module(module)
            _EXECUTED.add(fullname)
            for callback in _PENDING.pop(fullname, []):
                callback(module)

        spec.loader.exec_module = exec_then_run
        return spec


_FINDER = _AfterImport()


def when_imported(name: str, callback: Callable) -> None:
    """Call ``callback(module)`` now if ``name`` is imported, else right after it is."""
    module = sys.modules.get(name)
    if module is not None and _loaded(module):
        callback(module)
        return
    _PENDING.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
