"""The ndarray methods and attributes of traced values.

Each one does what the ndarray method does, through the same dispatch as the
NumPy function of the same name (``x.sum()`` is ``np.sum(x)``); in-place
methods (``x.sort()``, ``x.fill(v)``, ``x.partition(k)``, ``x.put(...)``)
update ``x`` and its views.  Attributes that describe memory (``strides``,
``flags``, ``base``) describe the memory NumPy would have used, as far as
npfunc knows it (see primitives/indexing/aliasing.py); what depends on
bytes a traced value does not have (``x.ctypes``, ``x.tobytes()``) raises.
"""
from __future__ import annotations

import numpy as np

from . import dispatch
from .errors import UnsupportedOperationError


def clone(x):
    from .tracer import clone as make

    return make(x)


def _fn(np_func):
    def call(*args, **kwargs):
        return dispatch.function_call(np_func, args, kwargs)

    call.__name__ = np_func.__name__
    return call


class NDArrayMethods:
    """Mixed into ``Tracer``: the ndarray surface beyond operators and indexing."""

    __slots__ = ()

    @property
    def T(self):
        return dispatch.FUNCTIONS[np.transpose](self)

    @property
    def mT(self):
        return dispatch.FUNCTIONS[np.swapaxes](self, -1, -2)

    @property
    def real(self):
        return dispatch.FUNCTIONS[np.real](self)

    @real.setter
    def real(self, value):
        from ..primitives.indexing.inplace import setitem

        setitem(self.real, Ellipsis, value)

    @property
    def imag(self):
        return dispatch.FUNCTIONS[np.imag](self)

    @imag.setter
    def imag(self, value):
        from ..primitives.indexing.inplace import setitem

        setitem(self.imag, Ellipsis, value)

    def conj(self):
        """``x.conj()``: the array itself when it is not complex (NumPy returns ``x``,
        so a later write into either is seen through both), else its conjugate."""
        if self.dtype.kind != "c":
            return self
        return dispatch.ufunc_call(np.conjugate, "__call__", (self,), {})

    conjugate = conj

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return dispatch.FUNCTIONS[np.reshape](self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
            axes = axes[0]
        return dispatch.FUNCTIONS[np.transpose](self, axes or None)

    def swapaxes(self, axis1, axis2):
        return dispatch.FUNCTIONS[np.swapaxes](self, axis1, axis2)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        out = dispatch.FUNCTIONS[np.astype](self, dtype, copy=copy)
        if order in ("C", "F"):  # (a copy laid out so, as NumPy's)
            from ..primitives.shape.views import copy as copy_in

            out = copy_in(out, order=order)
        return out

    def copy(self, order="C"):
        """A new traced array with the same value (in-place updates of one leave the other);
        for a value standing for a NumPy scalar, a scalar again (``np.float64.copy()``)."""
        from ..primitives.indexing.aliasing import is_scalar
        from ..primitives.shape.views import copy

        if is_scalar(self):
            return clone(self)
        return copy(self, order=order)

    def view(self, dtype=None, type=None):
        """A view of the same values (``x.view()``); reinterpreting the bytes as
        another dtype is not supported on traced values."""
        from ..primitives.shape.views import view

        return view(self, dtype, type)

    def ravel(self, order="C"):
        return dispatch.FUNCTIONS[np.ravel](self, order=order)

    def flatten(self, order="C"):
        """A flattened copy (never a view, as in NumPy)."""
        from ..primitives.shape.views import flatten

        return flatten(self, order)

    def fill(self, value):
        """Set every entry to ``value`` in place (the array's views see it)."""
        from ..primitives.indexing.aliasing import is_scalar
        from ..primitives.indexing.inplace import setitem

        if is_scalar(self):
            # NumPy's scalars ignore fill; refusing is safer than ignoring it should
            # NumPy give a 0-d array here (as np.where does) where npfunc has a scalar.
            from .context import describe_stack
            from .errors import UnsupportedOperationError

            raise UnsupportedOperationError(
                f"{describe_stack()}: x.fill(v) on a value that stands for a NumPy scalar (a 0-d result "
                "such as x.sum() or x[0] of a 1-d x), on which NumPy does nothing. Bind a new value "
                "instead (x = np.full_like(x, v)), or make x a 0-d array first with np.array(x).")
        setitem(self, Ellipsis, value)

    def sort(self, axis=-1, kind=None, order=None, *, stable=None):
        """Sort in place along ``axis`` (the array's views see it)."""
        from ..primitives.indexing.inplace import sort_inplace

        sort_inplace(self, axis, kind, order, stable)

    def squeeze(self, axis=None):
        return dispatch.FUNCTIONS[np.squeeze](self, axis)

    def dot(self, other):
        return dispatch.FUNCTIONS[np.dot](self, other)

    sum = _fn(np.sum)
    mean = _fn(np.mean)
    max = _fn(np.max)
    min = _fn(np.min)
    prod = _fn(np.prod)
    var = _fn(np.var)
    std = _fn(np.std)
    cumsum = _fn(np.cumsum)
    cumprod = _fn(np.cumprod)
    argmax = _fn(np.argmax)
    argmin = _fn(np.argmin)
    all = _fn(np.all)
    any = _fn(np.any)
    clip = _fn(np.clip)
    trace = _fn(np.trace)
    diagonal = _fn(np.diagonal)
    repeat = _fn(np.repeat)
    round = _fn(np.round)
    __round__ = _fn(np.round)
    argsort = _fn(np.argsort)
    argpartition = _fn(np.argpartition)
    choose = _fn(np.choose)
    compress = _fn(np.compress)
    nonzero = _fn(np.nonzero)
    searchsorted = _fn(np.searchsorted)
    take = _fn(np.take)

    def partition(self, kth, axis=-1, kind="introselect", order=None):
        """Partition in place (the array's views see it)."""
        from ..primitives.indexing.inplace import assign

        assign(self, dispatch.function_call(np.partition, (self, kth), {"axis": axis, "kind": kind, "order": order}),
               "x.partition(kth)", "x = np.partition(x, kth)")

    def put(self, indices, values, mode="raise"):
        """``np.put(x, indices, values)``: x is updated in place."""
        dispatch.function_call(np.put, (self, indices, values), {"mode": mode})

    def resize(self, *new_shape, refcheck=True):
        raise UnsupportedOperationError(
            "x.resize(...) changes an array's size in place, which a traced value cannot do; use "
            "x = np.resize(x, new_shape) (repeating the values) or build the new array with np.pad / "
            "np.concatenate.")

    def __copy__(self):
        from ..primitives.indexing.aliasing import is_scalar
        from ..primitives.shape.views import copy

        if is_scalar(self):
            return clone(self)
        return copy(self, order="K")

    def __deepcopy__(self, memo):
        return self.__copy__()

    # ---- memory, as NumPy would lay it out ------------------------------------------------
    @property
    def __class__(self):
        """``np.ndarray``: ``isinstance(x, np.ndarray)`` answers for the array a
        traced value stands for (``type(x)`` still tells the truth)."""
        return np.ndarray

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def device(self) -> str:
        return "cpu"

    def to_device(self, device, /, *, stream=None):
        if device != "cpu":
            raise ValueError(f"to_device: npfunc runs on the 'cpu' device only, got {device!r}")
        return self

    @property
    def strides(self) -> tuple:
        from ..primitives.indexing.aliasing import known_layout

        return known_layout(self, "x.strides").strides

    @property
    def flags(self):
        from ..primitives.indexing.aliasing import TracedFlags

        return TracedFlags(self)

    @property
    def base(self):
        from ..primitives.indexing.aliasing import base_of

        return base_of(self)

    @property
    def flat(self):
        from ..primitives.indexing.aliasing import FlatIterator

        return FlatIterator(self)

    def _needs_bytes(what: str):  # noqa: N805 - builds the attributes below, deleted after use
        def refuse(self, *args, **kwargs):
            raise UnsupportedOperationError(
                f"x.{what} needs the bytes of an array, which a traced value does not have (it stands for "
                "an array whose values are being traced); compute it outside the transform, on the "
                "function's result.")

        refuse.__name__ = what
        return refuse

    byteswap = _needs_bytes("byteswap")
    getfield = _needs_bytes("getfield")
    setfield = _needs_bytes("setfield")
    setflags = _needs_bytes("setflags")
    tobytes = _needs_bytes("tobytes")
    tofile = _needs_bytes("tofile")
    dump = _needs_bytes("dump")
    dumps = _needs_bytes("dumps")
    ctypes = property(_needs_bytes("ctypes"))
    data = property(_needs_bytes("data"))
    del _needs_bytes
