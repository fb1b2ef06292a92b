"""The traced value: an object that behaves like an ndarray.

A ``Tracer`` belongs to exactly one interpreter (``_interp``).  Everything a
NumPy user does with it -- ufuncs, ``np.*`` functions, operators, methods,
indexing -- is routed through the dispatch tables to a primitive's ``bind``.
Subclasses (one per interpreter) only say how to read their shape and dtype
and what Python conversions (``bool``, ``float``...) mean for them.
"""
from __future__ import annotations

import math

import numpy as np

from . import buffers, dispatch
from .context import describe_stack
from .errors import EscapedTracerError
from .lazy import deferred
from .ndarray_methods import NDArrayMethods

_getitem = deferred("npfunc.primitives.shape.views:getitem", globals(), "_getitem")
_setitem = deferred("npfunc.primitives.indexing.inplace:setitem", globals(), "_setitem")
_inplace_binary = deferred("npfunc.primitives.indexing.inplace:inplace_binary", globals(), "_inplace_binary")


_ufunc_calls_get = dispatch.UFUNC_CALLS.get
_Primitive = None  # core.primitive.Primitive (that module imports this one)
#: core.pending.PendingArray once that module is loaded (it imports this one): a plain
#: array that becomes traced at its first traced write, unwrapped wherever it meets a tracer
_PENDING = None


def apply_binary(prim, x, y):
    """``prim.bind(x, y)`` for a primitive of two arguments, ``x`` or ``y`` traced:
    the higher level of the two processes it (``Primitive.bind``, inlined, as
    every operator on a traced value goes through here)."""
    if isinstance(x, Tracer):
        top = x._interp
        if isinstance(y, Tracer) and y._interp.level > top.level:
            top = y._interp
    else:
        top = y._interp
    if not top.alive:
        raise next(a for a in (x, y) if isinstance(a, Tracer) and a._interp is top)._escaped()
    return top.process(prim, (x, y), {})


#: Operand types that never set ``__array_ufunc__ = None`` (asking a type without
#: the attribute costs more than the rest of an operator's dispatch); the tracer
#: classes join them as they are defined (``Tracer.__init_subclass__``).
_KNOWN_OPERANDS = {float, int, complex, bool, np.ndarray, *set(np.sctypeDict.values())}
#: The tracer classes (``Tracer.__init_subclass__`` adds them).
_TRACER_TYPES: set = set()


def _has_pending(inputs, out) -> bool:
    """Whether a pending array (core.pending) is among a ufunc's inputs or out= arrays."""
    return any(type(x) is _PENDING for x in inputs) or (out is not None and any(type(x) is _PENDING for x in out))


def _defers(to) -> bool:
    """Whether an operator with an operand of type ``to`` is that type's to compute
    (``__array_ufunc__ = None``, NumPy's rule); a SciPy sparse matrix, which cannot hold
    traced values, refuses here (NumPy would hand it the operation by its priority)."""
    if getattr(to, "__array_ufunc__", 0) is None or to is _PENDING:  # (a pending array unwraps itself)
        return True
    if to.__module__.startswith("scipy.sparse"):
        raise sparse_refusal(f"an operator between a traced value and a scipy.sparse {to.__name__}")
    return False


def sparse_refusal(what: str):
    """The refusal of ``what`` (an operator, np.dot(H, x)...) with a SciPy sparse operand."""
    from .errors import UnsupportedOperationError

    return UnsupportedOperationError(
        f"{describe_stack()}: {what}: a sparse matrix cannot hold traced values, and its compiled products "
        "take plain ones. Make it dense, H.toarray(); then x * H and H @ v work on traced values.")


def refuse_sparse_operands(args, what) -> None:
    """Refuse a NumPy function or ufunc called with a SciPy sparse matrix beside a traced value
    (NumPy would make a 0-d object array of it): ``what()`` names the call. Lists and tuples of
    pieces (np.stack([H, x])) are looked into one level deep."""
    for a in args:
        to = type(a)
        if to in _KNOWN_OPERANDS:
            continue
        if to is list or to is tuple:
            for b in a:
                if type(b) not in _KNOWN_OPERANDS and type(b).__module__.startswith("scipy.sparse"):
                    raise sparse_refusal(f"{what()} with a scipy.sparse {type(b).__name__} beside a traced value")
        elif to.__module__.startswith("scipy.sparse"):
            raise sparse_refusal(f"{what()} with a scipy.sparse {to.__name__} beside a traced value")


def _ufunc(ufunc, params=None):
    # NumPy's rule for operators: an operand whose type sets __array_ufunc__ = None
    # handles the operation itself (its reflected method is called).  The level that
    # processes a primitive is chosen here as apply_binary chooses it (inlined: every
    # operator on a traced value comes through here).
    def forward(self, other):
        to = type(other)
        if to not in _KNOWN_OPERANDS and _defers(to):
            return NotImplemented
        fn = _ufunc_calls_get(ufunc)
        if type(fn) is _Primitive:
            top = self._interp
            if to in _TRACER_TYPES and other._interp.level > top.level:
                top = other._interp
            if top.alive:
                return top.process(fn, (self, other), params or {})
            return apply_binary(fn, self, other)  # (which raises the escape error)
        if fn is None:
            return dispatch.ufunc_call(ufunc, "__call__", (self, other), {})
        return fn(self, other)

    def reflected(self, other):
        to = type(other)
        if to not in _KNOWN_OPERANDS and _defers(to):
            return NotImplemented
        fn = _ufunc_calls_get(ufunc)
        if type(fn) is _Primitive:
            top = self._interp
            if to in _TRACER_TYPES and other._interp.level > top.level:
                top = other._interp
            if top.alive:
                return top.process(fn, (other, self), params or {})
            return apply_binary(fn, other, self)  # (which raises the escape error)
        if fn is None:
            return dispatch.ufunc_call(ufunc, "__call__", (other, self), {})
        return fn(other, self)

    forward.__name__ = reflected.__name__ = ufunc.__name__
    return forward, reflected


def _refuse_shape_assignment(self, shape) -> None:
    from .conversions import generator_hint
    from .errors import UnsupportedOperationError

    hint = generator_hint()  # NumPy's Generator code assigning a traced parameter's shape, not the user's
    if hint:
        raise UnsupportedOperationError(
            f"{describe_stack()}: a traced value reached NumPy's random Generator code{hint}.")
    raise UnsupportedOperationError(
        f"{describe_stack()}: x.shape = {shape!r} reshapes an array object in place, which traced values "
        f"do not support (NumPy itself recommends against it); write x = x.reshape({shape!r}) instead.")


class Tracer(NDArrayMethods):
    """Base class of the traced values made by npfunc's interpreters.

    ``_alias`` (often unset) records how the value shares memory with others
    the way a NumPy array would (see primitives/indexing/aliasing.py)."""

    __slots__ = ("_interp", "_alias", "__weakref__")
    __array_priority__ = 1000

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _TRACER_TYPES.add(cls)
        if cls.__array_ufunc__ is not None:
            _KNOWN_OPERANDS.add(cls)
        shape = cls.__dict__.get("shape")
        if isinstance(shape, property) and shape.fset is None:
            cls.shape = shape.setter(_refuse_shape_assignment)

    # ---- what subclasses provide -------------------------------------------
    shape: tuple
    dtype: np.dtype

    def _concrete(self, kind: str):
        """The value for ``bool``/``int``/``float``/... or a clear error."""
        raise NotImplementedError

    # ---- array protocol ----------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for x in inputs:
            if type(x) not in _KNOWN_OPERANDS:  # (a SciPy sparse matrix: NumPy's object array of it)
                if _PENDING is not None and _has_pending(inputs, None):
                    return NotImplemented  # (NumPy asks the pending array, which unwraps itself)
                refuse_sparse_operands(inputs, lambda: dispatch.describe_ufunc(ufunc, method))
                break
        if method == "__call__" and not kwargs:  # the hot case of dispatch.ufunc_call, inline
            fn = _ufunc_calls_get(ufunc)
            if type(fn) is _Primitive:
                if len(inputs) == 1:  # self: its level decides
                    top = self._interp
                    if not top.alive:
                        raise self._escaped()
                    out = top.process(fn, inputs, {})
                    return out if out is not self else dispatch._new_object(out, inputs)
                if len(inputs) == 2:
                    out = apply_binary(fn, *inputs)
                else:
                    out = fn.bind(*inputs)
                for x in inputs:
                    if out is x:
                        return dispatch._new_object(out, inputs)
                return out
            if fn is not None:
                out = fn(*inputs)
                for x in inputs:
                    if out is x:
                        return dispatch._new_object(out, inputs)
                return out
        if _PENDING is not None and _has_pending((), kwargs.get("out")):
            return NotImplemented
        return dispatch.ufunc_call(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if _PENDING in types:
            return NotImplemented  # (NumPy asks the pending array, which unwraps itself)
        for a in args:
            if type(a) not in _KNOWN_OPERANDS:  # a list of pieces, or a SciPy sparse matrix (refused)
                refuse_sparse_operands(args, lambda: dispatch.describe(func))
                break
        return dispatch.function_call(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        return self._concrete("array")

    @property
    def __array_interface__(self):
        # (an AttributeError, as a missing attribute gives: NumPy probes for it)
        from .errors import NoMemoryError

        raise NoMemoryError(
            "a traced value has no __array_interface__: its values are not in memory NumPy could read "
            "through strides, so np.lib.stride_tricks.as_strided (and other code reading the memory) cannot "
            "run on it. Frame a signal with np.lib.stride_tricks.sliding_window_view, which npfunc "
            "differentiates, and repeat values with np.broadcast_to.")

    # ---- shape-like attributes ---------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d traced array")
        return shape[0]

    def __iter__(self):
        n = len(self)  # raises for a 0-d value, as iter() of a 0-d array does
        return (self[i] for i in range(n))

    # ---- Python conversions ------------------------------------------------
    def __bool__(self) -> bool:
        return self._concrete("bool")

    def __int__(self) -> int:
        return self._concrete("int")

    def __index__(self) -> int:
        return self._concrete("index")

    def __float__(self) -> float:
        return self._concrete("float")

    def __complex__(self) -> complex:
        return self._concrete("complex")

    def item(self, *args):
        return self._concrete("item")

    def __format__(self, spec: str) -> str:
        # f"{x}" is str(x), as for any object; a spec (f"{loss:.4f}") formats the number, as NumPy
        # does for a 0-d array (and refuses for others), so it needs the value
        if not spec:
            return str(self)
        if self.shape:
            raise TypeError("unsupported format string passed to numpy.ndarray.__format__")
        return format(self._concrete("format"), spec)

    def tolist(self):
        return self._concrete("tolist")

    # ---- operators -----------------------------------------------------------
    __add__, __radd__ = _ufunc(np.add)
    __sub__, __rsub__ = _ufunc(np.subtract)
    __mul__, __rmul__ = _ufunc(np.multiply)
    __truediv__, __rtruediv__ = _ufunc(np.true_divide)
    __floordiv__, __rfloordiv__ = _ufunc(np.floor_divide)
    __mod__, __rmod__ = _ufunc(np.remainder)
    # (x ** y is not np.power(x, y) on NumPy scalars: scalar math, see the power primitive)
    __pow__, __rpow__ = _ufunc(np.power, {"as_operator": True})
    __matmul__, __rmatmul__ = _ufunc(np.matmul)
    __and__, __rand__ = _ufunc(np.bitwise_and)
    __or__, __ror__ = _ufunc(np.bitwise_or)
    __xor__, __rxor__ = _ufunc(np.bitwise_xor)
    __lshift__, __rlshift__ = _ufunc(np.left_shift)
    __rshift__, __rrshift__ = _ufunc(np.right_shift)
    __lt__, _ = _ufunc(np.less)
    __le__, _ = _ufunc(np.less_equal)
    __gt__, _ = _ufunc(np.greater)
    __ge__, _ = _ufunc(np.greater_equal)
    __eq__, _ = _ufunc(np.equal)  # type: ignore[assignment]
    __ne__, _ = _ufunc(np.not_equal)  # type: ignore[assignment]
    del _
    __hash__ = None  # type: ignore[assignment]

    def __neg__(self):
        return dispatch.ufunc_call(np.negative, "__call__", (self,), {})

    def __pos__(self):
        return dispatch.ufunc_call(np.positive, "__call__", (self,), {})

    def __divmod__(self, other):
        return dispatch.ufunc_call(np.divmod, "__call__", (self, other), {})

    def __rdivmod__(self, other):
        return dispatch.ufunc_call(np.divmod, "__call__", (other, self), {})

    def __floor__(self) -> int:
        return self._concrete("floor")

    def __ceil__(self) -> int:
        return self._concrete("ceil")

    def __trunc__(self) -> int:
        return self._concrete("trunc")

    def __abs__(self):
        return dispatch.ufunc_call(np.absolute, "__call__", (self,), {})

    def __invert__(self):
        return dispatch.ufunc_call(np.invert, "__call__", (self,), {})

    def __getitem__(self, index):
        return _getitem(self, index)

    def __setitem__(self, index, value):
        """``x[index] = value``: x, and every view sharing its memory, now hold
        the updated values (computed functionally).  See
        npfunc/primitives/indexing/inplace.py."""
        if type(value) is _PENDING:
            value = value._value()
        _setitem(self, index, value)

    # ---- in-place operators: x += y makes x hold NumPy's result (x's shape and dtype)
    def _inplace(ufunc, name):  # noqa: N805 - builds the methods below, deleted after use
        def method(self, other):
            if type(other) is _PENDING:
                other = other._value()
            return _inplace_binary(self, ufunc, other)

        method.__name__ = method.__qualname__ = name
        return method

    __iadd__ = _inplace(np.add, "__iadd__")
    __isub__ = _inplace(np.subtract, "__isub__")
    __imul__ = _inplace(np.multiply, "__imul__")
    __itruediv__ = _inplace(np.true_divide, "__itruediv__")
    __ifloordiv__ = _inplace(np.floor_divide, "__ifloordiv__")
    __imod__ = _inplace(np.remainder, "__imod__")
    __ipow__ = _inplace(np.power, "__ipow__")
    __imatmul__ = _inplace(np.matmul, "__imatmul__")
    __iand__ = _inplace(np.bitwise_and, "__iand__")
    __ior__ = _inplace(np.bitwise_or, "__ior__")
    __ixor__ = _inplace(np.bitwise_xor, "__ixor__")
    del _inplace

    def __array_namespace__(self, *, api_version=None):
        """The Python Array API standard's namespace for traced values: ``npfunc.array_api``."""
        from ..array_api import namespace_for

        return namespace_for(api_version)

    def _escaped(self):
        message = getattr(self._interp, "message", None)
        if message is not None:  # invalidated (see core.context.Invalidated)
            from .errors import UnsupportedOperationError

            return UnsupportedOperationError(f"{describe_stack()}: {message}")
        return EscapedTracerError(
            f"a value (shape {self.shape}, dtype {self.dtype}) traced by "
            f"{self._interp.transform} was used after that transform returned: it escaped from "
            "the transformed function, e.g. through a global, a list, an attribute or a "
            "closure. Return it from the transformed function instead of storing it.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self._interp.transform}>(shape={self.shape}, dtype={self.dtype})"


class PrimalTracer(Tracer):
    """A tracer of a differentiating interpreter: it wraps a primal value.

    Shape and dtype are the primal's.  ``bool``/``int`` of it are the primal's
    (data-dependent control flow works under grad and jvp, as values are
    concrete), but ``float``/``complex``/``np.asarray`` would silently drop the
    derivative, so they raise and point to ``npfunc.stop_gradient``.
    """

    __slots__ = ("primal",)

    @property
    def shape(self) -> tuple:
        return self.primal.shape if hasattr(self.primal, "shape") else ()

    @property
    def dtype(self):
        return self.primal.dtype

    def _concrete(self, kind: str):
        if not self._interp.alive:
            raise self._escaped()
        if kind == "bool":
            return bool(self.primal)
        if kind == "format":  # a string carries no derivative: nothing is lost
            return self.primal
        if kind in ("int", "index"):
            return int(self.primal) if kind == "int" else self.primal.__index__()
        if kind in ("floor", "ceil", "trunc"):  # piecewise constant: nothing is lost
            import math

            return getattr(math, kind)(self.primal)
        from .conversions import conversion_fix, probing
        from .errors import ConcretizationError

        if kind == "array" and probing():  # np.array's wrapper catches this and stacks instead
            raise ConcretizationError("a traced value refuses to become a plain array")
        what = {"array": "np.asarray(x)", "item": "x.item()", "tolist": "x.tolist()"}.get(kind, f"{kind}(x)")
        fix = conversion_fix(kind)
        err = ConcretizationError(
            f"{describe_stack()}: {what} on a value differentiated by {self._interp.transform} "
            "would silently drop its derivative (if a constant is what you want, say so with "
            "npfunc.stop_gradient(x))." + (" " + fix if fix else "") + dispatch.twin_hint())
        self._interp.note_refusal(err)  # (a function catching it goes another way: the level reports it)
        raise err


# ---- tracer objects as NumPy arrays: copies and in-place updates ---------------------------

_VALUE_SLOTS: dict[type, tuple[str, ...]] = {}
_NOT_VALUES = ("__weakref__", "__dict__", "_alias")


def _value_slots(cls: type) -> tuple[str, ...]:
    """The slots that hold a tracer's value (its interpreter's fields)."""
    names = _VALUE_SLOTS.get(cls)
    if names is None:
        found: list[str] = []
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in ((slots,) if isinstance(slots, str) else slots):
                if name not in found and name not in _NOT_VALUES:
                    found.append(name)
        names = _VALUE_SLOTS[cls] = tuple(found)
    return names


def clone(x: Tracer) -> Tracer:
    """A new tracer object holding the value of ``x``: updating one in place
    leaves the other alone (a copy, in NumPy's terms, at no cost)."""
    out = object.__new__(type(x))
    for name in _value_slots(type(x)):
        setattr(out, name, getattr(x, name))
    return out


def snapshot(x):
    """``x`` as an interpreter keeps it for later (a tape, a staged program):
    a private copy of a traced object, which the user's code may update in
    place afterwards; plain values as they are."""
    return clone(x) if isinstance(x, Tracer) else x


def may_change(x: np.ndarray) -> bool:
    """Whether the memory of the plain array ``x`` may still be written: it is
    writeable, or a read-only view of writeable memory, or of memory NumPy does
    not own (a buffer, a memory map)."""
    a = x
    while not a.flags.writeable:
        base = a.base
        if base is None:
            return False  # read-only memory of its own
        if not isinstance(base, np.ndarray):
            return True
        a = base
    return True


def keep(x):
    """A plain array as a tape keeps it until the backward pass: a copy when its
    memory may still change (``may_change``), since the user's code may update
    it in place after the primitive used it; read-only memory as it is (mark a
    large constant read-only, ``W.flags.writeable = False``, to spare the
    copy; large copies reuse memory, see ``buffers``).  Anything else (traced
    values, NumPy and Python scalars) as it is."""
    if type(x) is np.ndarray and may_change(x):
        return x.copy(order="K") if x.nbytes < buffers.MIN_BYTES else buffers.copy(x)
    return x


def become(x: Tracer, new: Tracer) -> None:
    """Give the object ``x`` the value of ``new`` (every name bound to ``x`` sees it)."""
    for name in _value_slots(type(x)):
        setattr(x, name, getattr(new, name))
