"""Call primitives: the machinery shared by ``custom_jvp``, ``custom_vjp`` and ``checkpoint``.

A *call primitive* is bound per call of a decorated function.  Its ``bind``
looks at the kind of the top interpreter: with reverse or forward mode on
top it runs the user's rule (or the function) once, as ordinary code one
level down, and a *rule primitive* records the call at that level with the
custom derivative; every other interpreter takes the generic path, whose
batch rule (``map_call``) maps the function and its rules and binds a new
call one level down.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..core.context import describe_stack
from ..core.errors import NpfuncError
from ..core.primitive import Primitive
from ..core.tracer import PrimalTracer, Tracer
from ..core.values import PYTHON_NUMBERS, dtype_of, is_inexact, shape_of
from ..core.zeros import add_any, zero
from ..interpreters.jvp import JVPInterpreter
from ..interpreters.reverse import ReverseInterpreter
from ..primitives.elementwise.arithmetic import astype, zeros_like
from ..primitives.reductions.basic import reduce_sum
from ..primitives.shape.basic import moveaxis
from ._common import as_array, tree_flatten, tree_unflatten


class CustomRuleError(NpfuncError, TypeError):
    """A custom_jvp / custom_vjp function is used in a way its rules do not cover."""


def top_interpreter(values: Sequence):
    """The highest-level interpreter among the tracers in ``values`` (None if none)."""
    top = None
    for x in values:
        if isinstance(x, Tracer):
            interp = x._interp
            if top is None or interp.level > top.level:
                top = interp
    return top


def lower(top, x):
    """``x`` one level below ``top``: its primal if it is ``top``'s tracer."""
    if isinstance(x, PrimalTracer) and x._interp is top:
        return x.primal
    return x


def _unused_rule(*_, **__):  # pragma: no cover - call primitives never reach generic jvp/vjp
    raise AssertionError("a call primitive's rules are applied by its bind")


class CallPrimitive(Primitive):
    """A per-call primitive whose ``bind`` chooses by the kind of the top interpreter.

    Subclasses give ``impl`` (the plain computation on flat leaves), ``batch``,
    and ``reverse(top, leaves)`` / ``forward(top, leaves)`` for reverse and
    forward mode on top.  Every other interpreter (vmap, staging,
    functionalize) gets the generic ``process``.
    """

    def __init__(self, name: str, impl: Callable, batch: Callable) -> None:
        super().__init__(name, impl, jvp=_unused_rule, vjp=_unused_rule, batch=batch,
                         multiple_results=True, register=False)

    def bind(self, *args, **params):
        top = top_interpreter(args)
        if top is None:
            return self.impl(*args)
        if not top.alive:
            raise next(a for a in args if isinstance(a, Tracer) and a._interp is top)._escaped()
        if isinstance(top, ReverseInterpreter):
            return self.reverse(top, args)
        if isinstance(top, JVPInterpreter):
            return self.forward(top, args)
        return top.process(self, args, params)

    def reverse(self, top, leaves):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, top, leaves):  # pragma: no cover - abstract
        raise NotImplementedError


class RulePrimitive(Primitive):
    """Records a call at the interpreter ``owner`` with its custom rules.

    Operands are ``(args..., outs..., residuals...)``: ``args`` are the call's
    arguments (``owner``'s tracers), ``outs`` its outputs computed one level
    below, ``residuals`` whatever the rules need (kept in the tape node).  At
    ``owner`` the derivative with respect to ``args`` is the custom one
    (``vjp_args(args, residuals, outs, cotangents)`` /
    ``jvp_args(args, residuals, outs, tangents)``); an output that is itself
    ``owner``'s tracer (a closure over a traced value) also passes its own
    derivative through.  Anywhere else the primitive is the identity on
    ``outs``: the lower levels already saw the forward computation as code.
    """

    def __init__(self, name: str, owner, n_args: int, n_outs: int,
                 vjp_args: Callable | None, jvp_args: Callable | None, call: CallPrimitive) -> None:
        super().__init__(name, self._outs, jvp=self._jvp, vjp=self._vjp, batch=self._batch,
                         multiple_results=True, register=False)
        self.owner, self.n_args, self.n_outs = owner, n_args, n_outs
        self.vjp_args, self.jvp_args = vjp_args, jvp_args
        self.call = call  # the call that recorded this (run again when a tape is carried up a level)

    def _outs(self, *ops):
        return tuple(ops[self.n_args:self.n_args + self.n_outs])

    def bind(self, *ops, **params):
        owner = self.owner
        if any(isinstance(x, Tracer) and x._interp is owner for x in ops):
            return Primitive.bind(self, *ops)
        return self._outs(*ops)

    def _vjp(self, g, primals, out, needs):
        n, m = self.n_args, self.n_outs
        result = [zero] * len(primals)
        if any(needs[:n]):
            if self.vjp_args is None:
                raise CustomRuleError(f"{describe_stack()}: {self.name} has no reverse-mode rule")
            cts = self.vjp_args(primals[:n], primals[n + m:], out, g)
            for i in range(n):
                if needs[i]:
                    result[i] = cts[i]
        for k in range(m):
            if needs[n + k]:
                result[n + k] = g[k]
        return tuple(result)

    def _jvp(self, primals, tangents, out):
        n, m = self.n_args, self.n_outs
        t_out = [zero] * m
        if any(t is not zero for t in tangents[:n]):
            if self.jvp_args is None:
                raise CustomRuleError(f"{describe_stack()}: {self.name} has no forward-mode rule")
            t_out = list(self.jvp_args(primals[:n], primals[n + m:], out, tangents[:n]))
        return tuple(add_any(t, tangents[n + k]) for k, t in enumerate(t_out))

    def _batch(self, vals, dims):
        raise CustomRuleError(
            f"{describe_stack()}: {self.name} closes over a value batched by a vmap inside the "
            "transform that differentiates it. Pass that value to the function as an argument.")


def check_closure_levels(name: str, top, values) -> None:
    """Closures over tracers of levels above ``top`` cannot be attributed to a rule."""
    for v in values:
        if isinstance(v, Tracer) and v._interp.level > top.level:
            raise CustomRuleError(
                f"{describe_stack()}: {name} closes over a value traced by "
                f"{v._interp.transform} inside the transform ({top.transform}) that differentiates "
                "its arguments. Pass that value to the function as an argument instead.")


def instantiate(tangents, primals) -> list:
    """Symbolic zeros as zero arrays shaped like the primals."""
    return [zeros_like(p) if t is zero or t is None else t for t, p in zip(tangents, primals)]


def batched_to(value, d):
    """A value computed with its batch axis first, moved to ``d`` (summed away if None)."""
    if d is None:
        return reduce_sum(value, axes=(0,))
    return moveaxis(value, 0, d)


def as_out(x):
    """Python numbers as 0-d arrays (interpreters wrap arrays, not Python scalars); a
    NumPy scalar (np.float64 is a float too) stays the NumPy scalar the function returned."""
    return as_array(x) if isinstance(x, (float, int, complex)) and not isinstance(x, (bool, np.generic)) else x


def fit(ct, primal, name: str, k: int):
    """A rule's cotangent/tangent for leaf ``k`` checked against its primal's shape and cast to its dtype."""
    if tuple(shape_of(ct)) != tuple(shape_of(primal)):
        raise CustomRuleError(
            f"{describe_stack()}: {name}: the rule returned shape {tuple(shape_of(ct))} for leaf {k}, "
            f"whose primal has shape {tuple(shape_of(primal))}")
    if is_inexact(primal) and dtype_of(ct) != dtype_of(primal):
        return astype(ct, dtype_of(primal))
    return ct


class Static:
    """Arguments at ``nondiff_argnums``: never traced, passed to the rules first."""

    def __init__(self, owner: str, nondiff_argnums) -> None:
        nums = (nondiff_argnums,) if isinstance(nondiff_argnums, int) else tuple(nondiff_argnums)
        self.owner, self.nums = owner, tuple(sorted(set(nums)))

    def split(self, args: tuple):
        nums = [i % len(args) if -len(args) <= i < len(args) else None for i in self.nums]
        if None in nums:
            raise CustomRuleError(f"{self.owner}: nondiff_argnums={self.nums} is out of range for a call "
                                  f"with {len(args)} positional argument(s)")
        static = tuple(args[i] for i in nums)
        for i, s in zip(nums, static):
            if any(isinstance(leaf, Tracer) for leaf in tree_flatten(s)[0]):
                raise CustomRuleError(
                    f"{describe_stack()}: {self.owner}: argument {i} is in nondiff_argnums but holds a "
                    "traced value. nondiff_argnums is for functions and static settings; pass arrays "
                    "as ordinary arguments (a custom_vjp bwd returns None for one without a cotangent).")
        dyn = tuple(a for i, a in enumerate(args) if i not in nums)
        return static, dyn, nums

    @staticmethod
    def merge(static, dyn, nums):
        args = list(dyn)
        for i, s in sorted(zip(nums, static)):
            args.insert(i, s)
        return tuple(args)


def flat_fun(fun: Callable, in_spec, store: dict) -> Callable:
    """``fun`` on flat leaves returning a tuple of leaves; records the output structure."""

    def flat(*leaves):
        out_leaves, out_spec = tree_flatten(fun(*tree_unflatten(in_spec, list(leaves))))
        store.setdefault("out", out_spec)
        note_numbers(store, out_leaves)
        return tuple(as_out(o) for o in out_leaves)

    return flat


def note_numbers(store: dict, out_leaves) -> None:
    """Keep the Python numbers among a call's output leaves: constants, which the call gives
    back as they are (``outputs``)."""
    store.setdefault("numbers", {k: o for k, o in enumerate(out_leaves) if type(o) in PYTHON_NUMBERS})


def outputs(store: dict, name: str, outs):
    """The call's outputs in the function's structure, the Python numbers it returned as they were
    (interpreters carry them as 0-d arrays; a number depends on nothing, so it is the same at every level)."""
    outs = list(outs)
    for k, number in store.get("numbers", {}).items():
        outs[k] = number
    return tree_unflatten(out_spec(store, name), outs)


def out_spec(store: dict, name: str):
    if "out" not in store:  # pragma: no cover - the function always ran first
        raise CustomRuleError(f"{name}: output structure unknown")
    return store["out"]


def map_call(fn: Callable, dims: Sequence, cell: dict) -> Callable:
    """``fn`` mapped over ``dims`` (one per flat argument, None = not mapped), as
    a function of the unwrapped values: what a batch rule binds one level down.

    Outputs (any pytree) come back with the batch axis first where they vary
    over the batch and unbatched where they do not; ``cell["dims"]`` receives
    one dim (0 or None) per output leaf and ``cell["size"]`` the batch size.
    """
    from ..interpreters.batching import BatchInterpreter, BatchTracer, move_to_front
    from ..interpreters.structured import dense

    dims = tuple(dims)

    def run(*vals):
        size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
        # (hidden: npfunc's own level under the user's vmap, which messages do not name)
        with BatchInterpreter(size, "error", "vmap", hidden=True) as interp:
            out = fn(*[v if d is None else BatchTracer(interp, v, d) for v, d in zip(vals, dims)])
        leaves, spec = tree_flatten(out)
        new, out_dims = [], []
        for o in leaves:
            if isinstance(o, BatchTracer) and o._interp is interp:
                new.append(move_to_front(dense(o.val), o.bdim))
                out_dims.append(0)
            else:
                new.append(o)
                out_dims.append(None)
        cell["dims"], cell["size"] = out_dims, size
        return tree_unflatten(spec, new)

    return run


def batched_front(x, d, size):
    """``x`` with a batch axis of ``size`` first (broadcast if unbatched)."""
    from ..interpreters.batching import materialize_front

    return materialize_front(x, d, size)
