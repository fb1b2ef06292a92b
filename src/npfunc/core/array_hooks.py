"""``np.array``, ``np.asarray`` & co. (and ``np.isscalar``, ``np.concatenate`` of lists holding
traced values) on traced values, while a transform runs.

NumPy's constructors take no ``__array_function__`` dispatch, so
``np.array([omega, -g / L * np.sin(theta)])`` would ask each traced value
for a plain array and fail.  While a transform runs in any thread, the
constructors in the ``numpy`` module namespace are replaced by wrappers that
call NumPy's own function first and, only when a traced value refused to be
converted, build the traced array (stacking nested lists, copying or
returning a traced value as NumPy would).  Plain data goes straight to NumPy
(one extra Python call while a transform runs, nothing otherwise), NumPy's
own internals keep their direct references, and code that imported the
constructor itself (``from numpy import array``) is not affected: it gets
NumPy's error, whose message names ``np.stack``.
"""
from __future__ import annotations

import threading

import numpy as np

from .errors import BatchedConversionError, ConcretizationError

_lock = threading.Lock()
_active = 0
#: ``probing.depth > 0`` while NumPy's own constructor is tried on a value that
#: may hold traced values: their refusal is expected and handled here, so a
#: recording transform must not count it as a refusal the function caught.
probing = threading.local()
probing.depth = 0


def _try(name, *args, **kwargs):
    """NumPy's own ``np.<name>(...)``, probing (see ``probing``)."""
    return _probe(_ORIGINAL[name], *args, **kwargs)


def _probe(fn, *args, **kwargs):
    """``fn(...)`` of NumPy's, whose refusal of a traced value is expected (see ``probing``)."""
    depth = getattr(probing, "depth", 0)
    probing.depth = depth + 1
    try:
        return fn(*args, **kwargs)
    finally:
        probing.depth = depth


_REFUSALS = (ConcretizationError, BatchedConversionError)

#: NumPy's own ``np.asarray``, whatever the ``numpy`` namespace holds: for code
#: that needs a plain array (and the refusal of a traced value).
_ORIGINAL = {name: getattr(np, name) for name in ("array", "asarray", "asanyarray", "ascontiguousarray",
                                                   "asfortranarray")}
numpy_asarray = _ORIGINAL["asarray"]


def _written(x):
    """``x``, or the traced value of a pending array written with one (core.pending; a plain
    pending array, and a list holding one, NumPy converts through ``__array__``)."""
    from . import tracer

    pending = tracer._PENDING
    if pending is None:
        return x
    if type(x) is pending:
        return x._value()
    if type(x) in (list, tuple):
        from .pending import _unwrap_tree

        return _unwrap_tree(x)
    return x


def _traced_array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    object = _written(object)
    try:
        return _try("array", object, dtype, copy=copy, order=order, subok=subok, ndmin=ndmin, like=like)
    except _REFUSALS:  # a traced value inside: it refused to become a plain array
        from ..primitives.shape.joining import array

        return array(object, dtype=dtype, copy=copy, order=order, ndmin=ndmin)


def _traced_asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    a = _written(a)
    try:
        return _try("asarray", a, dtype, order, device=device, copy=copy, like=like)
    except _REFUSALS:
        from ..primitives.shape.joining import asarray

        return asarray(a, dtype=dtype, order=order, copy=copy)  # a traced scalar becomes a new 0-d array


def _traced_asanyarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    a = _written(a)
    try:
        return _try("asanyarray", a, dtype, order, device=device, copy=copy, like=like)
    except _REFUSALS:
        from ..primitives.shape.joining import asarray

        return asarray(a, dtype=dtype, order=order, copy=copy)  # a traced scalar becomes a new 0-d array


def _traced_ascontiguousarray(a, dtype=None, *, like=None):
    a = _written(a)
    try:
        return _try("ascontiguousarray", a, dtype, like=like)
    except _REFUSALS:
        from ..primitives.shape.views import ascontiguousarray

        return ascontiguousarray(a, dtype)


def _traced_asfortranarray(a, dtype=None, *, like=None):
    a = _written(a)
    try:
        return _try("asfortranarray", a, dtype, like=like)
    except _REFUSALS:
        from ..primitives.shape.views import asfortranarray

        return asfortranarray(a, dtype)


#: NumPy passes the function bound in its namespace to ``like=`` dispatch, so
#: the like= implementations are registered for these as well.
WRAPPERS = {"array": _traced_array, "asarray": _traced_asarray, "asanyarray": _traced_asanyarray,
             "ascontiguousarray": _traced_ascontiguousarray, "asfortranarray": _traced_asfortranarray}
for _name, _fn in WRAPPERS.items():
    _fn.__name__ = _fn.__qualname__ = _name
    _fn.__doc__ = f"NumPy's ``np.{_name}``, also for traced values (while a transform runs)."
    _fn.__wrapped__ = _ORIGINAL[_name]


class _TracedConcatenator:
    """``np.r_`` / ``np.c_``, also for items that are traced values: NumPy's own
    object first; when a traced value refused, the plain forms (arrays and
    numbers, no slices or directive strings) are built with ``np.concatenate``."""

    def __init__(self, name: str, original) -> None:
        self._name, self._original = name, original
        self.__wrapped__ = original
        self.__doc__ = f"NumPy's ``np.{name}``, also for traced values (while a transform runs)."

    def __len__(self) -> int:
        return len(self._original)

    def __getitem__(self, key):
        try:
            return _probe(self._original.__getitem__, key)
        except _REFUSALS as refusal:
            items = key if isinstance(key, tuple) else (key,)
            if any(isinstance(k, (slice, str)) for k in items):
                return self._original[key]  # (ranges and directives: NumPy's refusal, in full this time)
            refused = refusal
        try:
            return _concatenate_items(self._name, items)
        except _REFUSALS:
            raise refused from None


def _concatenate_items(name: str, items):
    """``np.r_[items]`` (1-d pieces along axis 0) or ``np.c_[items]`` (1-d pieces as
    columns, along the last axis) of arrays, traced values and numbers."""
    arrays = [isinstance(x, np.ndarray) for x in items]  # (traced values are ndarrays to isinstance)
    dtype = np.result_type(*[x.dtype if a else x for x, a in zip(items, arrays)])
    pieces = []
    for x in items:
        x = x.astype(dtype) if hasattr(x, "_interp") else np.asarray(x, dtype=dtype)
        if name == "r_":
            pieces.append(np.reshape(x, (1,)) if np.ndim(x) == 0 else x)
        else:
            pieces.append(np.reshape(x, (1, 1)) if np.ndim(x) == 0 else
                          np.reshape(x, (-1, 1)) if np.ndim(x) == 1 else x)
    return np.concatenate(pieces, axis=0 if name == "r_" else -1)


_CONCATENATORS = {name: _TracedConcatenator(name, getattr(np, name)) for name in ("r_", "c_")}


def _traced_concatenate(arrays, *args, **kwargs):
    """``np.concatenate``, also when an item is a list or tuple holding traced values
    (``np.concatenate([lam0, [np.log(n)]])``): NumPy dispatches on the items that are
    arrays, so a plain first item sends the call to NumPy's own code, which asks each
    traced value inside the list for a plain array.  NumPy's function first; when a
    traced value refused, the items that are not arrays are built as ``np.asarray``
    does for traced values, and NumPy's function is called again (it then dispatches)."""
    arrays = _written(arrays)
    try:
        return _probe(_CONCATENATE, arrays, *args, **kwargs)
    except _REFUSALS:
        if not isinstance(arrays, (list, tuple)):
            raise
    items = [a if isinstance(a, np.ndarray) else _traced_asarray(a) for a in arrays]  # (traced values are ndarrays)
    return _CONCATENATE(items, *args, **kwargs)


_CONCATENATE = np.concatenate
_traced_concatenate.__name__ = _traced_concatenate.__qualname__ = "concatenate"
_traced_concatenate.__wrapped__ = _CONCATENATE


def _traced_isscalar(element):
    """``np.isscalar``: a traced value standing for a NumPy scalar is one (NumPy's own function
    asks ``isinstance(x, np.generic)``, which a traced value, an ``np.ndarray`` to ``isinstance``,
    answers False: ``if np.isscalar(r): ...`` would take the array branch)."""
    if hasattr(element, "_interp"):  # (a traced value: a 0-d one that is not a 0-d array)
        return not element.shape and getattr(element, "_alias", None) is None
    return _ISSCALAR(element)


_ISSCALAR = np.isscalar
_traced_isscalar.__name__ = _traced_isscalar.__qualname__ = "isscalar"
_traced_isscalar.__wrapped__ = _ISSCALAR


def enter() -> None:
    """A thread starts running transforms: install the wrappers if no thread runs one yet."""
    global _active
    _acquire()
    if not _active:
        if "zeros" not in _INSTALL:
            _load_pending()
        _NUMPY.update(_INSTALL)
    _active += 1
    _release()


def exit() -> None:
    """A thread's transforms ended: restore NumPy's own functions when no thread runs one."""
    global _active
    _acquire()
    _active -= 1
    if not _active:
        _NUMPY.update(_ORIGINAL)
    _release()


# (enter and exit run once per outermost transform call: the plain lock methods
# and one dict update each are measurably cheaper than ``with`` and setattr.)
_acquire, _release = _lock.acquire, _lock.release
_NUMPY = np.__dict__
_INSTALL = {**WRAPPERS, **_CONCATENATORS, "isscalar": _traced_isscalar, "concatenate": _traced_concatenate}
_ORIGINAL.update({name: c._original for name, c in _CONCATENATORS.items()}, isscalar=_ISSCALAR,
                 concatenate=_CONCATENATE)


def _load_pending() -> None:
    """NumPy's constructors (``np.zeros`` & co.) as pending arrays' makers (core.pending),
    installed from the first transform on (that module needs the tracer classes)."""
    from . import pending

    _ORIGINAL.update(pending.ORIGINALS)
    _INSTALL.update(pending.WRAPPERS)
