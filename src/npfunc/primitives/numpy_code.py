"""NumPy's own Python code, run on traced values.

Much of NumPy is Python built from functions npfunc supports
(``numpy.polynomial``, ``np.polyfit``, ``np.apply_over_axes`` ...).  Such
code stops on a traced value for two reasons only:

* it converts its inputs with ``np.array``/``np.asarray`` (C functions that
  offer no dispatch protocol), and
* it fills buffers made by ``np.empty``/``np.zeros`` item by item
  (``der[j] = j * c[j]``), and a plain buffer cannot hold a traced value.

``numpy_code(module, ...)`` gives copies of a module's functions whose
globals see ``TracedNumpy``, a ``numpy`` namespace in which those
constructors accept traced values and make buffers that take traced writes.
``run`` calls such a copy under ``CodeInterpreter``, an identity level (like
``functionalize``'s) on top of the user's transforms: every array the code
touches is one of its tracers, so in-place updates are functional updates,
and the result is the same NumPy operations in the same order -- the values
are NumPy's bit for bit and derivatives and batching come from the
primitives.

Data-dependent control flow (``if c[-1] == 0``, ``rank != order``) works as
under ``grad``; under ``vmap`` it works when every batch element takes the
same branch (then the batched run is exactly the stack of the separate runs)
and raises ``BatchedConversionError`` when they differ.

Limits: NumPy code that writes through a view (``t = v[:, ::-1]; t[...] = 1``)
is not run this way until traced values have views; the callers of this
module check their functions' values against NumPy in the generated tests.
"""
from __future__ import annotations

import functools
import types
from typing import Any, Callable

import numpy as np

from ..core.array_hooks import numpy_asarray
from ..core.context import Interpreter, current_stack, describe_stack
from ..core.errors import BatchedConversionError, ConcretizationError
from ..core.tracer import PrimalTracer, Tracer
from ..core.values import dtype_of, shape_of

# ---- the identity level and its tracer ---------------------------------------------------


def _defer_to_opt_outs(cls):
    """``a * q`` where ``q`` opts out of ufuncs (``__array_ufunc__ = None``, e.g. a
    ``Polynomial`` in ``p.convert()``, which evaluates a series at a series):
    return NotImplemented so that Python calls ``q.__rmul__``, as for ndarrays."""
    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul"):
        for method in (f"__{name}__", f"__r{name}__"):
            base = getattr(Tracer, method)

            def op(self, other, base=base):
                if getattr(type(other), "__array_ufunc__", True) is None:
                    return NotImplemented
                return base(self, other)

            op.__name__ = method
            setattr(cls, method, op)
    return cls


@_defer_to_opt_outs
class CodeTracer(Tracer):
    """An array inside NumPy code run by ``run``: it holds the current value ``val``."""

    __slots__ = ("val",)

    def __init__(self, interp: "CodeInterpreter", val) -> None:
        self._interp = interp
        self.val = val

    @property
    def shape(self) -> tuple:
        return tuple(shape_of(self.val))

    @property
    def dtype(self):
        return dtype_of(self.val)

    def sort(self, axis=-1, kind=None, order=None):
        """``a.sort()``: ``a`` holds its sorted values (NumPy code sorts its own copies)."""
        from .indexing.inplace import assign

        assign(self, np.sort(self, axis=axis, kind=kind, order=order), "a.sort()", "a = np.sort(a)")

    def _concrete(self, kind: str):
        if not self._interp.alive:
            raise self._escaped()
        val = self.val
        if kind == "array":
            return numpy_asarray(val)  # NumPy's own: a lower-level traced value refuses
        convert = _CONVERSIONS[kind]
        if kind in _CONTROL:
            # (vmap's record of refusals its function caught: this one is handled here when the batch agrees)
            refused = [(i, i.refused) for i in current_stack()]
            try:
                return convert(val)
            except BatchedConversionError:
                try:
                    value = convert(_peek(val))
                except _NoValue:
                    pass
                else:
                    for interp, before in refused:
                        interp.refused = before
                    return value
                raise disagreement(f"{kind}(x)", self._interp.transform) from None
            except ConcretizationError as e:  # under jit: the branch is NumPy's, not the user's
                raise type(e)(f"{e} (The branch is in {self._interp.transform}, NumPy's own code run on "
                              f"traced values, whose control flow depends on the values: call "
                              f"{self._interp.transform} outside jit; grad, jvp and vmap run it.)") from None
        return convert(val)


def _math(name):
    import math

    return getattr(math, name)


_CONVERSIONS = {"bool": bool, "int": int, "float": float, "complex": complex,
                "index": lambda v: v.__index__() if hasattr(v, "__index__") else np.asarray(v).__index__(),
                "item": lambda v: v.item(), "tolist": lambda v: v.tolist(), "format": lambda v: v,
                "floor": _math("floor"), "ceil": _math("ceil"), "trunc": _math("trunc")}
#: Conversions that only steer control flow or pick sizes (no derivative to lose).
_CONTROL = frozenset({"bool", "int", "index", "floor", "ceil", "trunc"})


class CodeInterpreter(Interpreter):
    """The identity transform: computes on the held values and wraps every result."""

    __slots__ = ()

    def __init__(self, name: str) -> None:
        super().__init__(name, hidden=True)

    def process(self, prim, args, params):
        vals = [a.val if type(a) is CodeTracer and a._interp is self else a for a in args]
        out = prim.bind(*vals, **params)
        if prim.multiple_results:
            return tuple(CodeTracer(self, o) for o in out)
        return CodeTracer(self, out)


# ---- values that are the same across a batch ------------------------------------------------


class _NoValue(Exception):
    """The value is not known yet (a staged value under jit)."""


class _Disagree(_NoValue):
    """The elements of a vmapped batch hold different values."""


def disagreement(what: str, transform: str = "NumPy code") -> BatchedConversionError:
    return BatchedConversionError(
        f"{describe_stack()}: {transform} (NumPy's own code, run on traced values) makes a "
        f"data-dependent choice here ({what}), and the elements of the vmapped batch do not agree "
        "on it, so they cannot run as one batch. Call the function in a Python loop over the "
        "batch instead.")


def _peek(x):
    """The plain value under every transform level, with batch axes kept."""
    from ..interpreters.batching import BatchTracer
    from ..interpreters.structured import OneHot

    while True:
        if isinstance(x, BatchTracer):
            val = x.val.dense() if isinstance(x.val, OneHot) else x.val
            arr = _peek(val)
            if arr.shape[x.bdim] == 0:  # an empty batch takes no branch: any value does
                return np.zeros(arr.shape[:x.bdim] + arr.shape[x.bdim + 1:], arr.dtype)
            first = np.take(arr, 0, axis=x.bdim)
            same = (arr == np.expand_dims(first, x.bdim)) | (arr != arr)  # NaN equals NaN here
            if not np.all(same):
                raise _Disagree
            return first
        if isinstance(x, PrimalTracer):
            x = x.primal
        elif isinstance(x, CodeTracer):
            x = x.val
        elif isinstance(x, Tracer):
            raise _NoValue  # staged values have no value yet
        else:
            return np.asarray(x)


def uniform_value(x, kind: str = "bool", what: str = "") -> np.ndarray:
    """The plain value of ``x`` when every batch element holds the same one.

    Sound for control flow and for integer results (sizes, indices, ranks):
    when all batch elements agree, running the batch with that value is
    exactly stacking the separate runs.  Raises ``BatchedConversionError``
    (``kind`` names the conversion) when they differ, or when ``x`` has no
    value yet (under ``jit``)."""
    if not isinstance(x, Tracer):
        return np.asarray(x)
    try:
        return _peek(x)
    except _Disagree:
        raise disagreement(what or f"{kind}(x)") from None
    except _NoValue:
        pass
    inner = x
    while isinstance(inner, CodeTracer):
        inner = inner.val
    if isinstance(inner, Tracer):
        inner._concrete(kind)  # raises the transform's own error
    raise BatchedConversionError(  # pragma: no cover - _concrete always raises here
        f"{kind}(x) needs a single value, but the batch elements differ")


# ---- the traced-aware numpy namespace ----------------------------------------------------------


def _top() -> CodeInterpreter | None:
    stack = current_stack()
    top = stack[-1] if stack else None
    return top if isinstance(top, CodeInterpreter) else None


def has_tracer(x) -> bool:
    """True for a traced value, or a (nested) list/tuple holding one."""
    if isinstance(x, Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return any(has_tracer(e) for e in x)
    return False


def writable(value):
    """``value`` as a new array object of the running code level, which takes
    in-place updates (plain values included: a buffer may receive traced writes)."""
    interp = _top()
    if interp is None:
        return np.array(value, copy=True) if not isinstance(value, Tracer) else value
    if type(value) is CodeTracer and value._interp is interp:
        value = value.val
    return CodeTracer(interp, value)


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """``np.array`` for code run by ``run``: traced values (and lists of them)
    become arrays, and every array the code makes is one of the running
    level's, so that it takes in-place updates with traced values (NumPy code
    updates the arrays it converts: ``y = np.asarray(y) + 0.0; y *= w``)."""
    from .shape.joining import array as traced_array

    if not has_tracer(object):
        out = np.array(object, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)
        return writable(out) if _top() is not None else out
    out = traced_array(object, dtype=dtype, copy=None, ndmin=ndmin)
    if copy or not isinstance(out, CodeTracer) or out._interp is not _top():
        return writable(out)
    return out


def asarray(a, dtype=None, order=None, *, copy=None, like=None):
    return array(a, dtype=dtype, copy=copy)


def asanyarray(a, dtype=None, order=None, *, copy=None, like=None):
    return asarray(a, dtype=dtype, copy=copy)


def _buffer(maker):
    @functools.wraps(maker)
    def make(*args, **kwargs):
        return writable(maker(*args, **kwargs))

    return make


def _buffer_like(maker):
    @functools.wraps(maker)
    def make(prototype, dtype=None, order="K", subok=True, shape=None, **kwargs):
        if isinstance(prototype, Tracer):
            prototype = np.empty(shape_of(prototype), dtype_of(prototype))
        return writable(maker(prototype, dtype=dtype, shape=shape, **kwargs))

    return make


class _NdarrayMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, (Tracer, np.ndarray))

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, (Tracer, np.ndarray))


class ndarray(metaclass=_NdarrayMeta):
    """``isinstance(x, np.ndarray)`` in NumPy code: true for traced arrays too
    (they stand for arrays)."""


def common_type(*arrays):
    """``np.common_type`` from the dtypes alone (traced values have them)."""
    return np.common_type(*[np.empty(0, dtype_of(a)) for a in arrays])


def nonzero(a):
    """``np.nonzero`` in NumPy code: indices carry no derivative, so a traced
    ``a`` whose zeros are the same in every batch element gives plain indices.
    When they differ, a 1-D ``a`` gives ``_Positions``: NumPy code often uses
    only the count and the first or last position (``np.roots``)."""
    if not isinstance(a, Tracer):
        return np.nonzero(a)
    mask = a != 0
    try:
        return np.nonzero(_peek(mask))
    except _Disagree:
        if len(shape_of(a)) != 1:
            raise disagreement("the positions of the nonzero entries") from None
        return (_Positions(mask),)
    except _NoValue:
        return np.nonzero(uniform_value(mask, "index"))


class _Positions:
    """The nonzero positions of a batched 1-D mask, read one at a time (each
    read must agree across the batch)."""

    def __init__(self, mask) -> None:
        self.mask = mask

    def __len__(self) -> int:
        from .reductions.basic import sum as total

        return int(uniform_value(total(self.mask), "int", "the number of nonzero entries"))

    def __getitem__(self, k):
        from .reductions.index import argmax
        from .reductions.scans import cumsum

        if not isinstance(k, (int, np.integer)):
            raise disagreement("the positions of the nonzero entries")
        n = shape_of(self.mask)[0]
        if k < 0:
            pos = n - 1 - argmax(cumsum(self.mask[::-1]) == -k)
        else:
            pos = argmax(cumsum(self.mask) == k + 1)
        return np.intp(uniform_value(pos, "index", f"the position of nonzero entry {k}"))

    def __array__(self, dtype=None, copy=None):
        raise disagreement("the positions of the nonzero entries")


def _joining(fn):
    """``np.concatenate``-like functions whose sequences may hold lists of traced values."""

    @functools.wraps(fn)
    def join(arrays, *args, **kwargs):
        return fn([asarray(a) for a in arrays], *args, **kwargs)

    return join


class Namespace(types.ModuleType):
    """A module seen through ``overrides``: other names are the module's own."""

    def __init__(self, base: types.ModuleType, **overrides: Any) -> None:
        super().__init__(base.__name__)
        self.__dict__["_base"] = base
        self.__dict__.update(overrides)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["_base"], name)


class TracedNumpy(Namespace):
    """``numpy`` as NumPy code run by ``run`` sees it: the constructors above,
    everything else NumPy's own (which dispatches traced values to npfunc)."""

    def __init__(self, **overrides: Any) -> None:
        base = dict(array=array, asarray=asarray, asanyarray=asanyarray, ndarray=ndarray,
                    common_type=common_type, nonzero=nonzero,
                    concatenate=_joining(np.concatenate), hstack=_joining(np.hstack),
                    vstack=_joining(np.vstack), stack=_joining(np.stack),
                    empty=_buffer(np.empty), zeros=_buffer(np.zeros), ones=_buffer(np.ones),
                    full=_buffer(np.full), empty_like=_buffer_like(np.empty_like),
                    zeros_like=_buffer_like(np.zeros_like), ones_like=_buffer_like(np.ones_like))
        base.update(overrides)
        super().__init__(np, **base)


# ---- rebinding and running -------------------------------------------------------------------


def _implementation(fn):
    """The Python function behind ``fn`` (NumPy's array-function dispatchers wrap one)."""
    impl = getattr(fn, "_implementation", None)
    return impl if isinstance(impl, types.FunctionType) else fn


def copy_function(fn: types.FunctionType, namespace: dict) -> types.FunctionType:
    """``fn`` with ``namespace`` as its globals (same code, defaults and closure)."""
    copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__doc__, copy.__qualname__ = fn.__doc__, fn.__qualname__
    return copy


def numpy_code(module: types.ModuleType, overrides: dict[str, Any]) -> dict[str, Callable]:
    """Copies of the functions defined in ``module`` whose globals are the
    module's with ``overrides`` (e.g. ``{"np": TracedNumpy()}``); they call
    each other's copies.  Returns ``{name: copy}``."""
    namespace = dict(vars(module))
    namespace.update(overrides)
    copies = {}
    for name, value in vars(module).items():
        fn = _implementation(value)
        if isinstance(fn, types.FunctionType) and fn.__module__ == module.__name__ \
                and name not in overrides:
            copies[name] = namespace[name] = copy_function(fn, namespace)
    return copies


def _wrap_inputs(x, interp):
    """Arrays become the running level's (NumPy code may update them in place
    with traced values); numbers and other objects stay as they are."""
    if isinstance(x, (Tracer, np.ndarray)):
        return CodeTracer(interp, x)
    if type(x) in (list, tuple):
        return type(x)(_wrap_inputs(e, interp) for e in x)
    return x


def _unwrap(x, interp):
    if type(x) is CodeTracer and x._interp is interp:
        return x.val
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # named tuples
        return type(x)(*(_unwrap(e, interp) for e in x))
    if type(x) in (list, tuple):
        return type(x)(_unwrap(e, interp) for e in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, interp) for k, v in x.items()}
    if hasattr(x, "__dict__") and not isinstance(x, (type, types.ModuleType, types.FunctionType)):
        for name, value in list(vars(x).items()):  # an object the code made (a fitted series)
            new = _unwrap(value, interp)
            if new is not value:
                vars(x)[name] = new  # not setattr: properties may refuse it (np.poly1d)
    return x


def run(fn: Callable, args: tuple, kwargs: dict, name: str = "NumPy code"):
    """Call ``fn`` (a ``numpy_code`` copy) under a fresh ``CodeInterpreter``."""
    with CodeInterpreter(name) as interp:
        out = fn(*_wrap_inputs(args, interp), **{k: _wrap_inputs(v, interp) for k, v in kwargs.items()})
        for arg in args:  # objects the code updated (``self`` of a constructor)
            if hasattr(arg, "__dict__") and not isinstance(arg, (type, types.ModuleType, Tracer)):
                _unwrap(arg, interp)
        return _unwrap(out, interp)


def traced_entry(original: Callable, copy: Callable) -> Callable:
    """``original`` for plain arguments, ``run(copy, ...)`` when one is traced."""

    @functools.wraps(original)
    def entry(*args, **kwargs):
        if any(has_tracer(a) for a in args) or any(has_tracer(v) for v in kwargs.values()):
            return run(copy, args, kwargs, getattr(original, "__name__", "NumPy code"))
        return original(*args, **kwargs)

    entry.npfunc_original = original  # type: ignore[attr-defined]
    return entry


#: NumPy callables that have no dispatch protocol and whose module attribute
#: now holds a ``traced_entry`` (qualified name -> entry), for docs/coverage.md.
HOOKED: dict[str, Callable] = {}


def hook(owner: Any, attr: str, copy: Callable, label: str) -> Callable:
    """Replace ``owner.attr`` (a NumPy function without a dispatch protocol)
    by its ``traced_entry``: plain calls still run NumPy's function itself."""
    original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
    original = getattr(original, "npfunc_original", original)
    entry = traced_entry(original, copy)
    setattr(owner, attr, entry)
    HOOKED[label] = entry
    return entry
