"""Batching (vmap): each traced value is an array with one extra batch axis.

A ``BatchTracer`` holds the stacked value and the position of its batch
axis (``bdim``).  Values not batched are simply not wrapped, so ``None``
means "not batched" everywhere.  Batch rules receive the unwrapped values
and their dims and return ``(out, out_dim)``; they keep the batch axis where
it is when they can, which saves transposes.
"""
from __future__ import annotations

from ..core import random_hooks
from ..core.context import Interpreter, describe_stack
from ..core.errors import BatchedConversionError
from ..core.tracer import Tracer
from ..core.lazy import deferred
from ..core.values import ndim_of, shape_of
from . import structured

_new_tracer = object.__new__
_moveaxis = deferred("npfunc.primitives.shape.basic:moveaxis", globals(), "_moveaxis")
_broadcast_to = deferred("npfunc.primitives.shape.basic:broadcast_to", globals(), "_broadcast_to")
_reshape = deferred("npfunc.primitives.shape.basic:reshape", globals(), "_reshape")


class BatchTracer(Tracer):
    __slots__ = ("val", "bdim")

    def __init__(self, interp: "BatchInterpreter", val, bdim: int) -> None:
        self._interp = interp
        self.val = val
        self.bdim = bdim

    @property
    def shape(self) -> tuple:
        shape = self.val.shape
        return shape[: self.bdim] + shape[self.bdim + 1:]

    @property
    def dtype(self):
        return self.val.dtype

    def _concrete(self, kind: str):
        if not self._interp.alive:
            raise self._escaped()
        what = {"array": "np.asarray(x)", "index": "using it as an index of a NumPy array",
                "item": "x.item()", "tolist": "x.tolist()"}.get(kind, f"{kind}(x)")
        from ..core.conversions import conversion_advice, probing

        if kind in ("array", "index"):
            if kind == "array" and probing():  # np.array's wrapper catches this and stacks instead
                raise BatchedConversionError("a batched value refuses to become a plain array")
            fix = conversion_advice(kind, "For data-dependent choices use np.where(cond, a, b).", self.dtype)
        else:
            # (a[i] = x into a plain array asks for a number: conversion_advice names that case)
            fix = conversion_advice(kind) if kind in ("float", "int", "complex") else ""
            if kind == "format":
                fix = "Return the values and format them outside vmap."
            elif not fix and kind in ("float", "int", "complex"):
                fix = (f"To keep a number per element, drop the {kind}() (vmap stacks what the function "
                       f"returns) or write x.astype({kind}); for a choice, np.where(cond, a, b) instead of if/else.")
            fix = fix or ("Use np.where(cond, a, b) instead of if/else (data-dependent Python control "
                          "flow cannot be batched), or move the computation outside vmap.")
        err = BatchedConversionError(
            f"{describe_stack()}: {what} needs a single value, but under vmap x holds one "
            f"value per batch element. {fix}"
        )
        self._interp.note_refusal(err)  # (a function catching it goes another way: the level reports it)
        raise err


class BatchInterpreter(Interpreter):
    """``structured=True`` when some values are ``structured.OneHot`` bases
    (set by jacrev/jacfwd); only then are structured fast paths looked for."""

    __slots__ = ("axis_size", "randomness", "structured")
    watch_refusals = True
    refusal_error = BatchedConversionError
    plain = "a loop over the batch"

    def __init__(self, axis_size: int, randomness: str = "error", transform: str = "vmap",
                 structured: bool = False, hidden: bool = False) -> None:
        super().__init__(transform, hidden)
        self.axis_size = axis_size
        self.randomness = randomness
        self.structured = structured
        if not random_hooks.installed:  # np.random's global draws inside vmap must not be shared
            random_hooks.install()

    def process(self, prim, args, params):
        if len(args) == 1:  # the argument is this level's tracer: bind chose this level for it
            arg = args[0]
            vals = [arg.val]
            dims = [arg.bdim]
        elif len(args) == 2:  # binary arithmetic: no loop
            x, y = args
            if type(x) is BatchTracer and x._interp is self:
                vals, dims = [x.val, y], [x.bdim, None]
            else:
                vals, dims = [x, y], [None, None]
            if type(y) is BatchTracer and y._interp is self:
                vals[1], dims[1] = y.val, y.bdim
        else:
            vals = list(args)
            dims = [None] * len(args)
            i = 0
            for arg in args:
                if type(arg) is BatchTracer and arg._interp is self:
                    vals[i] = arg.val
                    dims[i] = arg.bdim
                i += 1
        if self.structured:
            OneHot = structured.OneHot
            for v in vals:
                if type(v) is OneHot:  # a structured basis: its rule, or its dense value
                    result = structured.apply(prim, vals, dims, params)
                    if result is not None:
                        return self.wrap(*result)
                    vals = [structured.dense(v) for v in vals]
                    break
        out, out_dim = prim.batch(vals, dims, **params)
        if prim.multiple_results:
            return tuple(self.wrap(o, d) for o, d in zip(out, out_dim))
        if out_dim is None:
            return out
        tracer = _new_tracer(BatchTracer)  # batch_tracer(self, out, out_dim), inline
        tracer._interp = self
        tracer.val = out
        tracer.bdim = out_dim
        return tracer

    def wrap(self, val, bdim):
        if bdim is None:
            return val
        return BatchTracer(self, val, bdim)

    def lift(self, value) -> BatchTracer:
        """``value`` (the same for every batch element) as this level's tracer."""
        return BatchTracer(self, materialize_front(value, None, self.axis_size), 0)


def batch_tracer(interp: BatchInterpreter, val, bdim: int) -> BatchTracer:
    """``BatchTracer(interp, val, bdim)`` without ``__init__``'s frame (for hot paths)."""
    tracer = _new_tracer(BatchTracer)
    tracer._interp = interp
    tracer.val = val
    tracer.bdim = bdim
    return tracer


# ---- helpers for batch rules ------------------------------------------------

def move_to_front(x, dim):
    """``x`` with its batch axis first (unbatched values are returned as they are)."""
    if dim is None or dim == 0:
        return x
    return _moveaxis(x, dim, 0)


def materialize_front(x, dim, size):
    """``x`` with a batch axis of ``size`` first, broadcasting it if unbatched."""
    if dim is not None:
        return move_to_front(x, dim)
    return _broadcast_to(x, (size,) + tuple(shape_of(x)))


def align_front(vals, dims):
    """Batch axes to the front and logical ranks padded to a common rank, so
    that NumPy broadcasting lines the batch axes up (the elementwise case).

    Unbatched values are left alone: right-aligned broadcasting already
    places them correctly.  Returns the new values and the common logical rank.
    """
    rank = max(ndim_of(v) - (d is not None) for v, d in zip(vals, dims))
    out = []
    for v, d in zip(vals, dims):
        if d is None:
            out.append(v)
            continue
        v = move_to_front(v, d)
        pad = rank - (ndim_of(v) - 1)
        if pad:
            shape = v.shape
            v = _reshape(v, (shape[0],) + (1,) * pad + tuple(shape[1:]))
        out.append(v)
    return out, rank


def broadcast_batch(vals, dims):
    """Elementwise batching: (aligned values, out_dim).

    Fast path: when every batched operand has the same rank and batch axis,
    and every unbatched operand only spans axes right of that batch axis,
    the arrays already broadcast correctly and nothing moves.
    """
    if len(vals) == 2:  # the fast path for two operands, without the loops
        (x, y), (dx, dy) = vals, dims
        if dy is None:
            if dx is not None and (type(y) is float or type(y) is int or ndim_of(y) <= len(x.shape) - 1 - dx):
                return vals, dx
        elif dx is None:
            if type(x) is float or type(x) is int or ndim_of(x) <= len(y.shape) - 1 - dy:
                return vals, dy
        elif dx == dy and len(x.shape) == len(y.shape):
            return vals, dx
    nd = bd = None
    uniform = True
    for v, d in zip(vals, dims):
        if d is not None:
            n = len(v.shape)
            if nd is None:
                nd, bd = n, d
            elif n != nd or d != bd:
                uniform = False
                break
    if uniform:
        limit = nd - 1 - bd
        for v, d in zip(vals, dims):
            if d is None and type(v) is not float and type(v) is not int and ndim_of(v) > limit:
                uniform = False
                break
        if uniform:
            return vals, bd
    aligned, _ = align_front(vals, dims)
    return aligned, 0
