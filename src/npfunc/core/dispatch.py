"""How a plain NumPy call on a traced value reaches npfunc.

Traced values implement ``__array_ufunc__`` and ``__array_function__``; both
look the NumPy callable up in the tables below.  The tables are filled by the
primitive modules (``implements(np.tanh)``), so a NumPy function is supported
exactly when some definition registered it.  The same Python functions form
the explicit ``npfunc.numpy`` namespace.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import UnsupportedFunctionError, UnsupportedOperationError



class Table(dict):
    """A registry keyed by NumPy callables (or names).  A key it lacks may be
    defined by a module that has not been loaded yet: ``table[key]`` loads it
    (see ``core/lazy.py``); ``table.get(key)`` only reads what is loaded."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, key):
        from .lazy import load_for

        if load_for(self.kind, key) and key in self:
            return dict.__getitem__(self, key)
        raise KeyError(key)


UFUNCS: dict[Any, Callable] = Table("ufunc")
UFUNC_REDUCTIONS: dict[Any, Callable] = Table("reduce")
UFUNC_ACCUMULATIONS: dict[Any, Callable] = Table("accumulate")
#: Code objects of foreign functions (SciPy's) that convert their inputs with
#: np.asarray, mapped to the npfunc twin to call instead; filled by npfunc.scipy.
TWINS: dict[Any, str] = {}
FUNCTIONS: dict[Any, Callable] = Table("function")

COVERAGE_HINT = "see docs/coverage.md for what npfunc supports"


#: ufunc -> what traced values call for it: ``UFUNCS[ufunc]``, or, when that
#: function is only its primitive's ``bind`` (a rule family's function, with
#: ``fn.positional_bind``), the primitive itself, which the tracer hands to the
#: deciding interpreter at once (see ``tracer.py``).  Kept by ``implements``.
UFUNC_CALLS: dict[Any, Any] = {}


def implements(*numpy_callables: Any) -> Callable[[Callable], Callable]:
    """Register ``fn`` as the traced-value implementation of NumPy callables."""

    def register(fn: Callable) -> Callable:
        for target in numpy_callables:
            if type(target).__name__ == "ufunc":
                UFUNCS[target] = fn
                prim = getattr(getattr(fn, "positional_bind", None), "__self__", None)
                # (only a plain Primitive: the tracer inlines Primitive.bind, not a subclass's)
                UFUNC_CALLS[target] = prim if type(prim).__name__ == "Primitive" else fn
            else:
                FUNCTIONS[target] = fn
                # (a module imported while a transform runs reads the numpy namespace's wrappers,
                # core/array_hooks.py: NumPy dispatches with its own function, so register both)
                if getattr(target, "npfunc_wrapper", False):
                    FUNCTIONS[target.__wrapped__] = fn
        return fn

    return register


def implements_reduce(ufunc: Any) -> Callable[[Callable], Callable]:
    """Register ``fn`` as ``ufunc.reduce`` for traced values."""

    def register(fn: Callable) -> Callable:
        UFUNC_REDUCTIONS[ufunc] = fn
        return fn

    return register


def implements_accumulate(ufunc: Any) -> Callable[[Callable], Callable]:
    """Register ``fn`` as ``ufunc.accumulate`` for traced values."""

    def register(fn: Callable) -> Callable:
        UFUNC_ACCUMULATIONS[ufunc] = fn
        return fn

    return register


#: Callables ``(code object) -> str | None`` giving another way to run a foreign
#: function found on the stack; npfunc.array_api names ``SCIPY_ARRAY_API=1`` for
#: SciPy's functions that support the Array API standard.
ALTERNATIVES: list[Callable] = []


def twin_hint() -> str:
    """If a registered foreign function is on the call stack, a sentence naming its
    twin and/or the other way to run it (SciPy's array-API path).

    Only called while building an error message, so walking frames is fine."""
    if not TWINS and not ALTERNATIVES:
        return ""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        name = TWINS.get(frame.f_code)
        other = next((s for s in (alt(frame.f_code) for alt in ALTERNATIVES) if s), None)
        if name is not None or other is not None:
            where = f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}"
            if name is not None and "<distribution>" in name:
                name, missing = _distribution_twin(name, frame.f_locals.get("self"))
                if missing:
                    return (f" ({where} converts its input with np.asarray, which a traced value cannot go "
                            f"through: {missing}" + (f"; or {other}" if other else "") + ".)")
            outer = scipy_function()
            if name and outer and outer != f"{public_module(where.rsplit('.', 1)[0])}.{frame.f_code.co_name}":
                # the user called another SciPy function (scipy.linalg.null_space), which has no
                # twin and calls this one (scipy.linalg.svd): name both
                return (f" ({outer} has no npfunc twin and calls {where}, which converts its input with "
                        f"np.asarray, which a traced value cannot go through: write what {outer} computes "
                        f"with {name}" + (f", or {other}" if other else "") + ".)")
            fix = f"call {name} instead" + (f", or {other}" if other else "") if name else other
            return (f" ({where} converts its input with np.asarray, which a traced value cannot go "
                    f"through: {fix}.)")
        frame = frame.f_back
    return ""


def public_module(module: str) -> str:
    """The module a user imports a function from: ``scipy.stats`` for
    ``scipy.stats._stats_py`` (the private parts of the path dropped)."""
    return ".".join(p for p in module.split(".") if not p.startswith("_"))


def scipy_function() -> str:
    """The SciPy function the user called (the outermost SciPy frame) when SciPy's code
    made the current call, else "".  Only called while building an error message."""
    import sys

    frame, found = sys._getframe(1), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("scipy._lib"):
            pass  # decorators' wrappers (_apply_over_batch): the function they wrap is the call
        elif module.startswith("scipy"):
            code = frame.f_code
            # (a decorator's closure, scipy.signal's ``wrapper`` around medfilt, runs for every
            # function it decorates: the function inside it is the one the user called)
            if found is None or not (code.co_freevars and code.co_name == "wrapper"):
                found = frame
        elif found is not None and not module.startswith(("numpy", "npfunc")):
            break
        frame = frame.f_back
    if found is None:
        return ""
    return f"{public_module(found.f_globals['__name__'])}.{found.f_code.co_name}"


def _ndimage_on_stack() -> bool:
    """Whether scipy.ndimage's code is running (it converts with np.asarray whatever
    SCIPY_ARRAY_API says).  Only called while building an error message."""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("scipy.ndimage"):
            return True
        frame = frame.f_back
    return False


def scipy_caller() -> str:
    """When SciPy's code made the call npfunc refuses, a clause naming the SciPy
    function the user called (the outermost SciPy frame) and SciPy's array-API
    route; else "".  Only called while building an error message."""
    name = scipy_function()
    if not name:
        return ""
    if name.startswith("scipy.ndimage.") or _ndimage_on_stack():  # np.asarray whatever the variable says
        return (f", inside SciPy's {name}, which has no npfunc twin and computes on NumPy arrays even with "
                "SCIPY_ARRAY_API=1: write it with NumPy on the input padded as the function pads it (ndimage's "
                "default mode='reflect' is np.pad(x, r, mode='symmetric'); scipy.signal.medfilt pads with "
                "zeros, np.pad's default), e.g. a rank filter as np.median (np.max, np.min) over axis 0 of "
                "np.stack of the shifted windows")
    return (f", inside SciPy's {name}, which has no npfunc twin (docs/scipy.md: with SCIPY_ARRAY_API=1 much of "
            f"SciPy's own code runs on traced values)")


def _distribution_twin(name: str, dist) -> tuple[str, str]:
    """(the twin of SciPy's distribution method ``name`` for the distribution object
    ``dist``, "") or ("", a sentence saying there is none)."""
    import sys

    dname = getattr(dist, "name", None)
    method = name.split("<distribution>.", 1)[1].split()[0]
    if not isinstance(dname, str):
        return name, ""
    twins = sys.modules.get("npfunc.scipy.stats")
    twin = getattr(twins, dname, None) if twins is not None else None
    if twin is not None and callable(getattr(twin, method, None)):
        return name.replace("<distribution>", dname), ""
    missing = f"scipy.stats.{dname}" if twin is None else f"npfunc.scipy.stats.{dname}.{method}"
    return "", (f"{missing} has no npfunc twin yet (docs/coverage.md lists the distributions and methods "
                "there are); write the formula with np and scipy.special functions, which npfunc differentiates")


def describe(fn: Any) -> str:
    """How a user writes ``fn``: ``np.diff``, ``np.linalg.norm``, ``scipy.special.gammaln``."""
    module = getattr(fn, "__module__", None) or "numpy"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if module == "numpy.lib.scimath":  # (np.emath.sqrt is not np.sqrt)
        return f"np.emath.{name}"
    if module.startswith("numpy"):
        module = "np" + module[len("numpy"):] if module != "numpy" else "np"
        module = module.replace("np._core.", "np.").replace("np.core.", "np.")
        if module.startswith("np.") and module.count(".") >= 1 and "linalg" not in module and "fft" not in module \
                and "polynomial" not in module:
            module = "np"
    return f"{module}.{name}"


#: NumPy functions that return their argument itself in some cases (an array
#: already of the dimensions asked for, the real part of a real array...).
RETURNS_ITS_ARGUMENT: set = set()


def _new_object(out, inputs):
    """``out``, but never one of the traced ``inputs`` themselves: NumPy returns a
    new array, so an in-place update of the result must not change an input."""
    for x in inputs:
        if out is x:
            from .tracer import Tracer, clone

            return clone(out) if isinstance(out, Tracer) else out
    return out


def _lookup(table: Table, key):
    """``table.get(key)``, loading the module that defines it if need be."""
    fn = table.get(key)
    if fn is None:
        from .lazy import load_for

        if load_for(table.kind, key):
            fn = table.get(key)
    return fn


def _ufunc_label(ufunc) -> str:
    """How a user writes ``ufunc``: ``np.add``, or ``scipy.special.ellipk`` for
    SciPy's ufuncs (which reach npfunc through the same protocol).  Only
    called while building an error message."""
    import sys

    import numpy as np

    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"np.{name}"
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return f"the ufunc {name}"


def describe_ufunc(ufunc, method: str = "__call__") -> str:
    """``np.add`` (``np.add.at``...) for messages."""
    return _ufunc_label(ufunc) + ("" if method == "__call__" else f".{method}")


def ufunc_call(ufunc, method: str, inputs, kwargs):
    if method == "__call__" and not kwargs:
        fn = UFUNCS.get(ufunc)
        if fn is not None:
            return _new_object(fn(*inputs), inputs)
    from .context import describe_stack

    if method == "at":  # np.add.at(a, indices, b): an in-place update of a
        from ..primitives.indexing.inplace import ufunc_at

        return ufunc_at(ufunc, *inputs, **kwargs)
    out = kwargs.pop("out", None)
    if out is not None:
        if method != "__call__" or len(out) != 1:
            raise UnsupportedOperationError(
                f"{describe_stack()}: np.{ufunc.__name__}.{method}(..., out=...) is not supported on "
                f"traced values. Assign the result instead: y = np.{ufunc.__name__}(...).")
        from ..primitives.indexing.inplace import into_out

        return into_out(ufunc, inputs, out[0], kwargs)
    if kwargs.get("where", True) is not True:
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.{ufunc.__name__}(..., where=...) leaves entries "
            "uninitialised, which a traced value cannot be. Use np.where(mask, "
            f"np.{ufunc.__name__}(...), fallback) instead.")
    kwargs.pop("where", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs.pop("casting", "same_kind") != "same_kind" or kwargs.pop("order", "K") != "K" or \
            kwargs.pop("subok", True) is not True:
        raise UnsupportedOperationError(
            f"{describe_stack()}: np.{ufunc.__name__}: the casting/order/subok arguments are not "
            "supported on traced values; drop them")
    if method == "__call__" and not kwargs:
        fn = _lookup(UFUNCS, ufunc)
        if fn is not None:
            if dtype is None:
                return _new_object(fn(*inputs), inputs)
            from ..primitives.elementwise.arithmetic import astype

            return _new_object(fn(*[astype(x, dtype) if hasattr(x, "dtype") else x for x in inputs]), inputs)
    if method == "__call__":
        fn = _lookup(UFUNCS, ufunc)
        if fn is not None:
            return _new_object(fn(*inputs, **kwargs), inputs)
    elif method in ("reduce", "accumulate"):
        table = UFUNC_REDUCTIONS if method == "reduce" else UFUNC_ACCUMULATIONS
        fn = _lookup(table, ufunc)
        if fn is not None:
            if dtype is not None:  # (popped above for __call__: reductions take it too)
                kwargs["dtype"] = dtype
            return _new_object(fn(*inputs, **kwargs), inputs)
    elif method == "outer" and ufunc.nin == 2 and len(inputs) == 2:
        fn = _lookup(UFUNCS, ufunc)
        if fn is not None:
            return _ufunc_outer(fn, inputs, dtype, kwargs)
    import numpy as np

    what = _ufunc_label(ufunc) + ("" if method == "__call__" else f".{method}")
    twin = getattr(np, ufunc.__name__, None)
    fix = "Express it with supported functions, or file an issue."
    if method == "__call__" and isinstance(twin, np.ufunc) and twin is not ufunc and _lookup(UFUNCS, twin):
        fix = f"np.{ufunc.__name__} computes the same function (to rounding) and is supported: call it instead."
    raise UnsupportedFunctionError(
        f"{describe_stack()}: {what} is not supported on traced values{scipy_caller()} ({COVERAGE_HINT}). {fix}"
    )


def _ufunc_outer(fn, inputs, dtype, kwargs):
    """``ufunc.outer(a, b)``: the ufunc of ``a`` reshaped to ``a.shape + (1,) * b.ndim`` and
    ``b``.  As NumPy's ``outer``, Python scalars and lists become arrays first (no weak
    promotion)."""
    import numpy as np

    from .tracer import Tracer

    a, b = (x if isinstance(x, (Tracer, np.ndarray, np.generic)) else np.asarray(x) for x in inputs)
    a = np.reshape(a, tuple(np.shape(a)) + (1,) * np.ndim(b))
    if dtype is not None:
        from ..primitives.elementwise.arithmetic import astype

        a, b = astype(a, dtype), astype(b, dtype)
    return fn(a, b, **kwargs)


def function_call(func, args, kwargs):
    fn = FUNCTIONS.get(func)
    if fn is None:
        fn = _lookup(FUNCTIONS, func)
    if fn is None:
        from .context import describe_stack

        from .conversions import generator_hint

        raise UnsupportedFunctionError(
            f"{describe_stack()}: {describe(func)} is not supported on traced values{scipy_caller()}"
            f"{generator_hint()} ({COVERAGE_HINT}). Express it with supported functions, or file an issue."
        )
    out = fn(*args, **kwargs)
    if args and out is args[0] and func not in RETURNS_ITS_ARGUMENT:
        return _new_object(out, args[:1])
    return out
