"""Building the ``npfunc.numpy`` namespaces from NumPy's own: a public NumPy
name maps to npfunc's implementation when npfunc supports it, to NumPy's own
object for constants, scalar types and exceptions, and is absent otherwise."""
from __future__ import annotations

import types

import numpy as np

from ..core import dispatch


def implementation(target):
    """npfunc's implementation of a NumPy callable, or None."""
    try:
        return dispatch.UFUNCS.get(target) or dispatch.FUNCTIONS.get(target)
    except TypeError:  # unhashable attribute
        return None


def is_value(obj) -> bool:
    """Constants, dtypes and scalar types, exceptions, ``ndarray``: NumPy's own
    objects, the same under npfunc (``npfunc.numpy.float32 is np.float32``)."""
    if isinstance(obj, types.ModuleType):
        return False
    if isinstance(obj, type):
        return issubclass(obj, (np.generic, BaseException)) or obj is np.ndarray or obj is np.dtype
    return not callable(obj)


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None) or dir(module)
    return sorted(n for n in set(names) if not n.startswith("_"))


def fill(namespace: dict, module, prefix: str) -> list[str]:
    """Bind the supported functions and the values of ``module`` in ``namespace``,
    and NumPy's own functions that work unchanged on traced values (see
    ``npfunc/testing/unsupported.py``); returns the names bound (``__all__``)."""
    from ..testing.unsupported import NO_TRACED_INPUTS

    bound = []
    for name in public_names(module):
        # vars, not getattr: NumPy imports a submodule (np.ma, np.f2py...) when it is
        # first looked up, which import npfunc must not trigger
        obj = vars(module).get(name)
        if obj is None:
            continue
        fn = implementation(obj)
        if fn is not None and getattr(fn, "like", False):  # np.zeros & co.: NumPy's own (like= dispatches)
            fn = None
            obj_works_unchanged = True
        else:
            obj_works_unchanged = False
        if fn is not None:
            namespace[name] = fn
        elif obj_works_unchanged or is_value(obj) or f"{prefix}.{name}" in NO_TRACED_INPUTS:
            namespace[name] = obj
        else:
            continue
        bound.append(name)
    return bound


def missing(module_label: str, module, name: str):
    """The AttributeError for a name a namespace does not offer (late additions
    to the dispatch tables are found here too)."""
    if name.startswith("__"):
        raise AttributeError(f"module {module_label!r} has no attribute {name!r}")
    target = getattr(module, name, None)
    fn = implementation(target) if target is not None else None
    if fn is not None:
        return fn
    hint = (f" ({module_label.replace('npfunc.numpy', 'np')}.{name} is not supported on traced values "
            f"yet; {dispatch.COVERAGE_HINT})" if target is not None else "")
    raise AttributeError(f"module {module_label!r} has no attribute {name!r}{hint}")
