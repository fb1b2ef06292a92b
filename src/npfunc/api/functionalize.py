"""``functionalize``: run code that mutates arrays as a pure function.

Under ``functionalize`` every array the function touches is a traced value
of an identity interpreter, so ``x[i] = v``, ``x += y`` and ``out=`` are
functional updates (``primitives/indexing/inplace.py``) that any enclosing transform
can differentiate or batch.  When the function returns, each argument it
mutated is written back, so the caller sees what the plain function would
have done to its arrays.

>>> import numpy as np, npfunc
>>> def normalise_(x):          # mutates its argument, returns nothing useful
...     x -= x.mean()
...     x /= np.abs(x).max()
...     return x.sum() * 0.0 + (x ** 2).sum()
>>> x = np.array([1.0, 2.0, 4.0])
>>> g = npfunc.grad(npfunc.functionalize(normalise_))(x)   # differentiable, x untouched
>>> bool(np.all(x == [1.0, 2.0, 4.0]))
True
>>> y = x.copy(); _ = npfunc.functionalize(normalise_)(y)  # plain call: y is updated as usual
>>> np.round(y, 3)
array([-0.8, -0.2,  1. ])
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ..core.context import Interpreter
from ..core.tracer import Tracer
from ._common import check_callable, tree_flatten, tree_unflatten


class FunctionalTracer(Tracer):
    """An array under functionalize: it holds the current value ``val``."""

    __slots__ = ("val",)

    def __init__(self, interp: "FunctionalizeInterpreter", val) -> None:
        self._interp = interp
        self.val = val

    @property
    def shape(self) -> tuple:
        return np.shape(self.val) if not isinstance(self.val, Tracer) else self.val.shape

    @property
    def dtype(self):
        return self.val.dtype if hasattr(self.val, "dtype") else np.result_type(self.val)

    def _concrete(self, kind: str):
        if not self._interp.alive:
            raise self._escaped()
        val = self.val
        if kind == "array":
            return np.asarray(val)
        if kind in ("bool", "int", "float", "complex"):
            return {"bool": bool, "int": int, "float": float, "complex": complex}[kind](val)
        if kind == "index":
            return val.__index__()
        if kind == "item":
            return val.item()
        if kind == "tolist":
            return val.tolist()
        import math

        return getattr(math, kind)(val)  # floor / ceil / trunc


class FunctionalizeInterpreter(Interpreter):
    """The identity transform: computes on the held values and wraps every result."""

    __slots__ = ()

    def process(self, prim, args, params):
        vals = [a.val if type(a) is FunctionalTracer and a._interp is self else a for a in args]
        out = prim.bind(*vals, **params)
        if prim.multiple_results:
            return tuple(FunctionalTracer(self, o) for o in out)
        return FunctionalTracer(self, out)


def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """``func`` with its in-place updates made functional (see module doc).

    ``remove="mutations"`` (the only mode; NumPy has no views to remove)
    also writes mutated arguments back when ``func`` returns.
    """
    check_callable(func, "functionalize")
    if remove != "mutations":
        raise ValueError(f"functionalize: remove must be 'mutations', got {remove!r}")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        leaves, spec = tree_flatten(args)
        with FunctionalizeInterpreter("functionalize") as interp:
            wrapped = [FunctionalTracer(interp, x) if isinstance(x, (np.ndarray, Tracer)) else x
                       for x in leaves]
            before = [w.val if isinstance(w, FunctionalTracer) else None for w in wrapped]
            out = func(*tree_unflatten(spec, wrapped), **kwargs)
        for leaf, w, old in zip(leaves, wrapped, before):
            if isinstance(w, FunctionalTracer) and w.val is not old:
                _write_back(leaf, w.val)
        out_leaves, out_spec = tree_flatten(out)
        return tree_unflatten(out_spec, [o.val if isinstance(o, FunctionalTracer) and o._interp is interp
                                         else o for o in out_leaves])

    return wrapper


def _write_back(target, value) -> None:
    """Give the caller's argument the mutated value, as the plain function would have."""
    from ..primitives.indexing.inplace import assign

    assign(target, value, "writing a functionalized mutation back to its argument",
           "a function that returns the new value instead of mutating its argument")
