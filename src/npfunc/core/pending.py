"""Plain arrays made while a transform runs, which become traced at their first traced write.

Scientists preallocate: ``out = np.zeros(n)``, then ``out[i] = g(x[i])``.
NumPy's constructors take no dispatch, so ``out`` would be a plain array,
and a plain array cannot hold a traced value.  While a transform runs,
``np.zeros`` & co. called from the user's own code (not from NumPy's,
SciPy's or npfunc's) return a ``PendingArray`` instead: the array NumPy
made, which behaves as that array in everything -- every operation is
NumPy's own on its memory, so values, dtypes, Python types, views and
conversions are NumPy's -- until a traced value is written into it.  At that
write it becomes a constant of the transform it was made under (what
``np.zeros(n, like=x)`` makes) and takes the write; from then on it is that
traced array, views made through it included (``primitives/indexing/aliasing.py``
keeps NumPy's aliasing).

What could not follow is refused, never guessed:

* a plain reference to the memory handed out before the first traced write
  (``np.asarray(out)`` kept, ``out.T`` or ``out.reshape(...)`` taken as a plain
  view) would not see the write: the write raises, naming the fix;
* a pending array used after its transform returned stays plain: a traced
  write into it is refused as a plain array's is.

>>> import numpy as np, npfunc
>>> def trajectory(y0):
...     traj = np.zeros((3, 2))
...     y = y0
...     for i in range(3):
...         traj[i] = y
...         y = y * 0.5
...     return traj.sum()
>>> npfunc.grad(trajectory)(np.array([1.0, 2.0]))
array([1.75, 1.75])
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from .context import current_stack
from .errors import UnsupportedOperationError
from .tracer import Tracer

#: Functions that write into their first argument (``np.copyto(dst, src)``).
_WRITERS = frozenset(["copyto", "fill_diagonal", "put", "place", "putmask", "put_along_axis"])
#: Attributes NumPy reads to take an object's memory without asking ``__array__``:
#: a pending array hands its memory over only through ``__array__`` (counted, see ``_check_alone``).
_MEMORY_PROTOCOLS = frozenset(["__array_interface__", "__array_struct__", "__buffer__"])


class PendingArray:
    """A plain array made while a transform runs, traced from its first traced write.

    ``_data``: the plain array (for a view, NumPy's view of its root's memory);
    ``_traced``: the traced array once written (None before); ``_level``: the
    transform it was made under; ``_root``: the array it views (None for a
    root); ``_keys``: the basic indices that read it from its root;
    ``_views``: weak references to the pending views of a root."""

    __slots__ = ("_data", "_traced", "_level", "_root", "_keys", "_views", "__weakref__")
    __array_priority__ = 1001
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, data: np.ndarray, level, root: "PendingArray | None" = None, keys: tuple = ()) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_traced", None)
        object.__setattr__(self, "_level", level)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_views", [] if root is None else None)

    # ---- which value this is -------------------------------------------------------------
    def _value(self):
        """The plain array, or the traced one once its root was written."""
        traced = self._traced
        if traced is not None:
            return traced
        root = self._root
        if root is None or root._traced is None:
            return self._data
        traced = root._traced
        for key in self._keys:  # a view of a root written since: read it through the traced root
            traced = traced[key]
        object.__setattr__(self, "_traced", traced)
        object.__setattr__(self, "_data", None)
        return traced

    def _is_traced(self) -> bool:
        root = self if self._root is None else self._root
        return root._traced is not None

    def _promote(self):
        """Become traced (the root, and so every view of it): the traced value of ``self``."""
        root = self if self._root is None else self._root
        if root._traced is None:
            level = root._level
            if not level.alive or level not in current_stack():
                return None  # (its transform returned: it stays plain, and refuses as a plain array does)
            _check_alone(root)
            data = root._data
            traced = level.lift(data)
            # the layout NumPy gave it: a view or reshape of it views or copies as NumPy's would
            traced._alias = "C" if data.flags.c_contiguous else data
            object.__setattr__(root, "_traced", traced)
            object.__setattr__(root, "_data", None)
            for ref in root._views:
                view = ref()
                if view is not None:
                    object.__setattr__(view, "_data", None)
            root._views.clear()
        return self._value()

    # ---- NumPy's protocols -----------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        value = self._value()
        if isinstance(value, Tracer):
            return value.__array__(dtype, copy)  # (the tracer's refusal)
        if copy:
            return np.array(value, dtype=dtype, copy=True)
        return value if dtype is None else np.asarray(value, dtype=dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        targets = [x for x in (out or ())] + ([inputs[0]] if method == "at" else [])
        pending_targets = [x for x in targets if type(x) is PendingArray]
        if pending_targets and (_holds_traced(inputs) or any(t._is_traced() for t in pending_targets)):
            for target in pending_targets:
                target._promote()  # (one whose transform returned stays plain: NumPy refuses below)
        args = [_unwrap(x) for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(_unwrap(x) for x in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:  # NumPy returns the out= arrays themselves
            results = result if isinstance(result, tuple) else (result,)
            mapped = tuple(o if type(o) is PendingArray else r for o, r in zip(out, results))
            return mapped if isinstance(result, tuple) else mapped[0]
        return result

    def __array_function__(self, func, types, args, kwargs):
        name = getattr(func, "__name__", "")
        if name in _WRITERS and args and type(args[0]) is PendingArray:
            target = args[0]
            if _holds_traced(args[1:]) or _holds_traced(kwargs.values()) or target._is_traced():
                target._promote()
        out = kwargs.get("out")
        if type(out) is PendingArray and (_holds_traced(args) or out._is_traced()):
            out._promote()
        result = func(*_unwrap_tree(args), **{k: _unwrap_tree(v) for k, v in kwargs.items()})
        if out is not None and type(out) is PendingArray:
            return out
        return result

    # ---- attributes: the value's ------------------------------------------------------------
    def __getattr__(self, name):
        if name in _MEMORY_PROTOCOLS:
            raise AttributeError(name)
        return getattr(self._value(), name)

    def __setattr__(self, name, value):
        setattr(self._value(), name, value)

    @property
    def __class__(self):
        """``np.ndarray``, as for the array this is (``type(x)`` tells the truth)."""
        return np.ndarray

    def __dir__(self):
        return dir(self._value())

    # ---- indexing ---------------------------------------------------------------------------
    def __getitem__(self, key):
        value = self._value()
        key = _unwrap_tree(key)
        if type(value) is np.ndarray and _holds_traced(key if type(key) is tuple else (key,)):
            level = self._level  # a traced index into the plain values (np.eye(k)[labels]): read a
            if level.alive and level in current_stack():  # traced copy of them, as like= would make
                table = level.lift(value.copy())
                table._alias = "C"
                return table[key]
        result = value[key]
        if isinstance(value, Tracer) or type(result) is not np.ndarray:
            return result
        root = self if self._root is None else self._root
        if result.base is not None and _shares(result, root):  # a view: a pending view of the root
            view = PendingArray(result, root._level, root, self._keys + (key,))
            views = root._views
            if len(views) >= 64 and len(views) & (len(views) - 1) == 0:  # (rows read in a loop: drop the dead)
                views[:] = [ref for ref in views if ref() is not None]
            views.append(weakref.ref(view))
            return view
        return PendingArray(result, root._level)  # a copy (advanced indexing): a pending array of its own

    def __setitem__(self, key, value):
        key = _unwrap_tree(key)
        if _holds_traced((value,)) or self._is_traced() or \
                _holds_traced(key if type(key) is tuple else (key,)):  # (t[labels] = 0.9, labels traced)
            traced = self._promote()
            if traced is not None:
                traced[key] = _unwrap_tree(value)
                return
        self._data[key] = _unwrap_tree(value)

    def __iter__(self):
        value = self._value()
        if isinstance(value, Tracer) or value.ndim < 2:
            return iter(value)
        return (self[i] for i in range(len(value)))

    def __len__(self) -> int:
        return len(self._value())

    def __contains__(self, item) -> bool:
        return _unwrap(item) in self._value()

    # ---- conversions ------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return bool(self._value())

    def __int__(self) -> int:
        return int(self._value())

    def __float__(self) -> float:
        return float(self._value())

    def __complex__(self) -> complex:
        return complex(self._value())

    def __index__(self) -> int:
        return self._value().__index__()

    def __round__(self, ndigits=None):
        return round(self._value(), ndigits)

    def __format__(self, spec: str) -> str:
        return format(self._value(), spec)

    def __repr__(self) -> str:
        return repr(self._value())

    def __str__(self) -> str:
        return str(self._value())

    def __copy__(self):
        return self._value().__copy__()

    def __deepcopy__(self, memo):
        return self._value().__deepcopy__(memo)

    def __reduce_ex__(self, protocol):
        return self._value().__reduce_ex__(protocol)

    # ---- operators ----------------------------------------------------------------------------
    def __neg__(self):
        return -self._value()

    def __pos__(self):
        return +self._value()

    def __abs__(self):
        return abs(self._value())

    def __invert__(self):
        return ~self._value()

    def _binary(op):  # noqa: N805 - builds the operators below, deleted after use
        def forward(self, other):
            return op(self._value(), _unwrap(other))

        def reflected(self, other):
            return op(_unwrap(other), self._value())

        return forward, reflected

    import operator as _op

    __add__, __radd__ = _binary(_op.add)
    __sub__, __rsub__ = _binary(_op.sub)
    __mul__, __rmul__ = _binary(_op.mul)
    __truediv__, __rtruediv__ = _binary(_op.truediv)
    __floordiv__, __rfloordiv__ = _binary(_op.floordiv)
    __mod__, __rmod__ = _binary(_op.mod)
    __pow__, __rpow__ = _binary(_op.pow)
    __matmul__, __rmatmul__ = _binary(_op.matmul)
    __and__, __rand__ = _binary(_op.and_)
    __or__, __ror__ = _binary(_op.or_)
    __xor__, __rxor__ = _binary(_op.xor)
    __lshift__, __rlshift__ = _binary(_op.lshift)
    __rshift__, __rrshift__ = _binary(_op.rshift)
    __divmod__, __rdivmod__ = _binary(divmod)
    __lt__, __gt__ = _binary(_op.lt)[0], _binary(_op.gt)[0]
    __le__, __ge__ = _binary(_op.le)[0], _binary(_op.ge)[0]
    __eq__, __ne__ = _binary(_op.eq)[0], _binary(_op.ne)[0]  # type: ignore[assignment]

    def _inplace(op):  # noqa: N805 - builds the in-place operators below, deleted after use
        def method(self, other):
            other = _unwrap(other)
            if _holds_traced((other,)) or self._is_traced():
                traced = self._promote()
                if traced is not None:
                    op(traced, other)  # (a traced array takes in-place operators in place)
                    return self
            op(self._data, other)
            return self

        return method

    __iadd__ = _inplace(_op.iadd)
    __isub__ = _inplace(_op.isub)
    __imul__ = _inplace(_op.imul)
    __itruediv__ = _inplace(_op.itruediv)
    __ifloordiv__ = _inplace(_op.ifloordiv)
    __imod__ = _inplace(_op.imod)
    __ipow__ = _inplace(_op.ipow)
    __imatmul__ = _inplace(_op.imatmul)
    __iand__ = _inplace(_op.iand)
    __ior__ = _inplace(_op.ior)
    __ixor__ = _inplace(_op.ixor)
    __ilshift__ = _inplace(_op.ilshift)
    __irshift__ = _inplace(_op.irshift)
    del _binary, _inplace, _op

    # ---- ndarray methods that write -----------------------------------------------------------
    def fill(self, value) -> None:
        self[...] = value


# ---- helpers --------------------------------------------------------------------------------

def _unwrap(x):
    return x._value() if type(x) is PendingArray else x


def _unwrap_tree(x):
    """``x`` with the pending arrays in it (at any depth of lists, tuples and dicts) as their
    values; ``x`` itself when it holds none."""
    tx = type(x)
    if tx is PendingArray:
        return x._value()
    if tx is tuple or tx is list:
        if any(type(v) is PendingArray or type(v) in _CONTAINERS for v in x):
            return tx(_unwrap_tree(v) for v in x)
        return x
    if tx is dict:
        if any(type(v) is PendingArray or type(v) in _CONTAINERS for v in x.values()):
            return {k: _unwrap_tree(v) for k, v in x.items()}
        return x
    return x


_CONTAINERS = (tuple, list, dict)


def _holds_traced(values) -> bool:
    """Whether a traced value (or a written pending array) is among ``values``, at any depth."""
    for v in values:
        tv = type(v)
        if isinstance(v, Tracer) or (tv is PendingArray and v._is_traced()):
            return True
        if (tv is list or tv is tuple) and _holds_traced(v):
            return True
    return False


def _shares(view: np.ndarray, root: PendingArray) -> bool:
    data = root._data
    return view.base is data or np.shares_memory(view, data)


def _check_alone(root: PendingArray) -> None:
    """Refuse the first traced write when something other than the pending arrays
    themselves holds the memory (a plain view, ``np.asarray(out)`` kept): it would
    not see the write.  CPython's reference counts say it exactly: every NumPy view
    refers to the array owning its memory."""
    arrays = [root._data] + [v._data for v in (ref() for ref in root._views) if v is not None]
    for array in arrays:
        viewers = sum(1 for other in arrays if other.base is array)
        # (the list, the loop's name, the getrefcount argument, the pending array's slot, its views)
        if sys.getrefcount(array) > 4 + viewers:
            raise UnsupportedOperationError(
                f"{_describe()}: a traced value is written into an array made with np.zeros & co. while "
                "the transform runs, but a plain view of it or a reference to its memory was taken before "
                "(a reshape, a transpose, np.asarray of it, kept in a variable or a list), and would not see "
                "the write. Take such views after the traced writes, or make the array traced from the "
                "start: np.zeros(shape, like=x) with x a traced array.")


def _describe() -> str:
    from .context import describe_stack

    return describe_stack()


# ---- NumPy's constructors, while a transform runs ---------------------------------------------

#: Where NumPy's, SciPy's, npfunc's and every installed package's code lives: their calls get
#: NumPy's own arrays (their code expects plain arrays).
def _library_dirs() -> tuple:
    import importlib.util
    import os
    import sysconfig

    dirs = {os.path.dirname(os.path.dirname(__file__)), os.path.dirname(np.__file__)}
    spec = importlib.util.find_spec("scipy")  # (without importing it)
    if spec is not None and spec.submodule_search_locations:
        dirs.update(spec.submodule_search_locations)
    paths = sysconfig.get_paths()
    dirs.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    return tuple(os.path.join(d, "") for d in dirs)


_LIBRARY_DIRS: tuple | None = None
_SITES: dict = {}  # (code, instruction offset) -> the name the call there calls, or None
#: Code objects of libraries' Python code (npfunc's own included): their calls get NumPy's
#: arrays, found in one lookup (npfunc's rules call np.zeros_like & co. on every gradient).
_LIBRARY_CODE: set = set()


def _user_level(name: str):
    """The innermost running transform when ``np.<name>`` was called by name from the
    user's code (not from a library's Python code, nor from compiled code, whose calls
    make no frame: the call site in the nearest Python frame must spell ``name``), else None."""
    frame = sys._getframe(2)
    code = frame.f_code
    if code in _LIBRARY_CODE:
        return None
    stack = current_stack()
    if not stack:
        return None
    key = (code, frame.f_lasti)
    called = _SITES.get(key, _SITES)
    if called is _SITES:
        if len(_SITES) > 4096:  # (code made by exec over and over: forget the oldest sites)
            _SITES.clear()
        if _is_library(code):
            _LIBRARY_CODE.add(code)
            return None
        called = _SITES[key] = _called_name(code, frame.f_lasti)
    return stack[-1] if called == name else None


def _is_library(code) -> bool:
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        _LIBRARY_DIRS = _library_dirs()
    return code.co_filename.startswith(_LIBRARY_DIRS)


def _called_name(code, offset: int) -> str | None:
    """The name called at ``offset`` in ``code`` (``zeros`` for ``np.zeros(n)``), read
    from the source; None for library code, unknown source, or another call."""
    if _is_library(code) or not hasattr(code, "co_positions"):
        return None
    import ast
    import linecache

    try:
        line, end_line, col, end_col = list(code.co_positions())[offset // 2]
        lines = linecache.getlines(code.co_filename)
        if line is None or end_line is None or col is None or end_col is None or end_line > len(lines):
            return None
        text = "".join(lines[line - 1:end_line])
        # the call's source: from its column on the first line to its end column on the last
        last_start = len(text) - len(lines[end_line - 1])
        segment = text[col:last_start + end_col] if end_line > line else lines[line - 1][col:end_col]
        node = ast.parse(segment.strip(), mode="eval").body
    except (SyntaxError, ValueError, IndexError):
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _pending(np_fn):
    def fn(*args, **kwargs):
        out = np_fn(*args, **kwargs)
        if type(out) is not np.ndarray or kwargs.get("like") is not None:
            return out
        level = _user_level(name)
        return out if level is None else PendingArray(out, level)

    name = np_fn.__name__
    return _named(fn, np_fn)


def _pending_full(np_fn, empty, prototype: bool):
    """``np.full`` / ``np.full_like``, whose fill value may be traced: NumPy's empty array,
    pending, then filled (NumPy's own function for a plain fill value)."""

    def fn(*args, **kwargs):
        fill = args[1] if len(args) > 1 else kwargs.get("fill_value")
        first = args[0] if args else kwargs.get("a" if prototype else "shape")
        if prototype and _holds_traced((first,)):  # a traced prototype: NumPy dispatches to npfunc
            return np_fn(*args, **kwargs)
        if kwargs.get("like") is not None or not _holds_traced((_unwrap(fill),)):
            out = np_fn(*args, **kwargs)
            level = _user_level(name) if type(out) is np.ndarray and kwargs.get("like") is None else None
            return out if level is None else PendingArray(out, level)
        level = _user_level(name)
        if level is None:
            return np_fn(*args, **kwargs)  # (NumPy's refusal)
        rest = dict(kwargs)
        rest.pop("fill_value", None)
        first = args[0] if args else rest.pop("a" if prototype else "shape")
        extra = args[2:]
        fill = _unwrap(fill)
        if prototype:
            out = empty(_unwrap(first), *extra, **rest)
        else:
            dtype = extra[0] if extra else rest.pop("dtype", None)
            out = empty(first, fill.dtype if dtype is None else dtype, *extra[1:], **rest)
        pending = PendingArray(out, level)
        del out  # (the pending array holds the memory alone: see _check_alone)
        pending[...] = fill
        return pending

    name = np_fn.__name__
    return _named(fn, np_fn)


def _named(fn, np_fn):
    # NumPy's name and docstring (numpy.ma, imported lazily, edits them at import; help() shows
    # NumPy's): called from the user's code while a transform runs, the array made can take
    # traced writes (see this module)
    fn.__name__ = fn.__qualname__ = np_fn.__name__
    fn.__doc__ = np_fn.__doc__
    fn.__module__ = getattr(np_fn, "__module__", "numpy")
    fn.__wrapped__ = np_fn
    fn.npfunc_wrapper = True  # (core.dispatch registers NumPy's own function with it)
    return fn


CONSTRUCTORS = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
                "eye", "identity")
#: NumPy's own constructors (whatever the ``numpy`` namespace holds while a transform runs).
ORIGINALS = {name: getattr(np, name) for name in CONSTRUCTORS}
WRAPPERS = {name: _pending(fn) for name, fn in ORIGINALS.items() if name not in ("full", "full_like")}
WRAPPERS["full"] = _pending_full(ORIGINALS["full"], ORIGINALS["empty"], prototype=False)
WRAPPERS["full_like"] = _pending_full(ORIGINALS["full_like"], ORIGINALS["empty_like"], prototype=True)

from . import tracer as _tracer  # noqa: E402

_tracer._PENDING = PendingArray
