"""``checkpoint``: rematerialisation, as ``jax.checkpoint`` / ``torch.utils.checkpoint``.

Under reverse mode a checkpointed function leaves one node on the tape that
keeps only its inputs and outputs; its intermediates are recomputed when the
cotangent arrives.  A gradient through a long time-stepping loop whose
blocks are checkpointed therefore keeps one state per block instead of
every intermediate of every step (``benchmarks/bench_solvers.py`` measures
it).  Below the level that rematerialises, the function is itself a
checkpoint again, so ``grad(grad(...))`` rematerialises at both levels;
forward mode (``jvp``, ``jacfwd``) runs the function and its tangents as
one checkpoint; ``vmap`` checkpoints the batched function.  A function that
closes over a value traced at the level being processed (``checkpoint(lambda u:
u * x)`` with ``x`` computed from the arguments) cannot be recomputed from its
arguments there: at that level it runs as written, without a checkpoint.

The recomputation must give what the forward pass gave.  NumPy's global
random state (``np.random.*``) is saved and restored around it
(``preserve_rng_state=True``); a recomputation that still differs (another
random generator, a closure changed in between) raises instead of returning
the gradient of a different computation.

>>> import numpy as np, npfunc
>>> def step(y):
...     return y + 0.1 * np.sin(y)
>>> def simulate(y0, step):
...     y = y0
...     for _ in range(100):
...         y = step(y)
...     return y.sum()
>>> y0 = np.array([0.5, 1.0])
>>> g = npfunc.grad(simulate)(y0, npfunc.checkpoint(step))   # 100 nodes on the tape, not 300
>>> bool(np.allclose(g, npfunc.grad(simulate)(y0, step)))
True
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from ..core.context import describe_stack
from ..core.errors import NpfuncError
from ..core.tracer import Tracer
from ..core.values import is_inexact
from ..core.zeros import zero
from ._calls import (CallPrimitive, RulePrimitive, Static, check_closure_levels, flat_fun, instantiate, lower,
                     map_call, outputs, top_interpreter)
from ._common import tree_flatten

__all__ = ["checkpoint", "NondeterministicCheckpointError"]


class NondeterministicCheckpointError(NpfuncError, RuntimeError):
    """A checkpointed function recomputed in the backward pass gave other outputs."""


def checkpoint(fun: Callable, *, static_argnums: int | Sequence[int] = (),
               preserve_rng_state: bool = True) -> Callable:
    """``fun`` with its intermediates recomputed in the backward pass instead of stored.

    ``static_argnums`` marks arguments that are not arrays (settings,
    functions).  See the module docstring for the semantics.
    """
    static_split = Static(f"checkpoint {getattr(fun, '__name__', 'f')}", static_argnums)
    name = getattr(fun, "__name__", "f")

    @functools.wraps(fun)
    def wrapper(*args):
        static, dyn, nums = static_split.split(args)
        leaves, in_spec = tree_flatten(dyn)
        if top_interpreter(leaves) is None:  # nothing traced: the plain call, its outputs as they are
            return fun(*args)
        store: dict = {}
        flat = flat_fun(lambda *d: fun(*Static.merge(static, d, nums)), in_spec, store)
        outs = _Remat(name, flat, preserve_rng_state).bind(*leaves)
        return outputs(store, name, outs)

    return wrapper


class _Remat(CallPrimitive):
    def __init__(self, name: str, flat: Callable, preserve_rng_state: bool, guard: int = -1) -> None:
        super().__init__(f"checkpoint[{name}]", flat, self._batch_rule)
        self.fname, self.flat, self.preserve = name, flat, preserve_rng_state
        #: the level of the interpreter that bound this call last: the function runs one level
        #: below it, so a traced value at that level or above in its outputs came from a closure
        self.guard = guard

    def bind(self, *args, **params):
        top = top_interpreter(args)
        if top is None:
            outs = self.impl(*args)
            _check_closure(self.guard, outs)
            return outs
        self.guard = top.level
        try:
            return super().bind(*args, **params)
        except _Closure as closure:
            if closure.level < top.level:  # pragma: no cover - guards only rise on the way down
                raise
        # The function closes over a value traced at this level (or above): recomputed one level
        # down it would meet that value stale or dead, so it runs here, as written, without a
        # checkpoint at this level; a closure over a level above is that level's to run.
        outs = self.flat(*args)
        _check_closure(top.level + 1, outs)
        return outs

    def _below(self, flat: Callable) -> "_Remat":
        """This call one level down, running ``flat``."""
        return _Remat(self.fname, flat, self.preserve, self.guard)

    def reverse(self, top, leaves):
        lowered = [lower(top, x) for x in leaves]
        rng = np.random.get_state() if self.preserve else None
        # one level down the function is a checkpoint again, so nested reverse
        # levels also keep only inputs and outputs
        outs = self._below(self.flat).bind(*lowered)
        check_closure_levels(self.name, top, outs)
        diff = [i for i, x in enumerate(leaves) if isinstance(x, Tracer) and x._interp is top]
        flat, name = self.flat, self.name

        def vjp_args(args, res, out, g):
            from .reverse import trace_vjp

            def partial(*d):
                full = list(args)
                for i, v in zip(diff, d):
                    full[i] = v
                return [o for o in flat(*full)]

            saved = _swap_rng(rng)
            try:
                again, pull, _ = trace_vjp(partial, tuple(args[i] for i in diff), False, "checkpoint")
            finally:
                _swap_rng(saved)
            _check_same(name, again, out)
            cts = pull.flat([zero if c is zero else c for c in g])
            result = [zero] * len(args)
            for i, c in zip(diff, cts):
                result[i] = c
            return result

        rule = RulePrimitive(self.name, top, len(leaves), len(outs), vjp_args, None, self)
        return rule.bind(*leaves, *outs)

    def forward(self, top, leaves):
        primals = [top.primal_of(x) for x in leaves]
        tangents = instantiate([top.tangent_of(x) for x in leaves], primals)
        n = len(leaves)
        flat = self.flat
        n_out: dict = {}

        def primal_and_tangent(*both):
            from .forward import trace_jvp

            ps, ts = both[:n], both[n:]
            diff = [i for i, p in enumerate(ps) if is_inexact(p)]

            def partial(*d):
                full = list(ps)
                for i, v in zip(diff, d):
                    full[i] = v
                return list(flat(*full))

            outs, t_outs, _, _ = trace_jvp(partial, [ps[i] for i in diff], [ts[i] for i in diff],
                                           tree_flatten(tuple(ps[i] for i in diff))[1], False, "checkpoint",
                                           hidden=True)
            n_out["n"] = len(outs)
            return tuple(outs) + tuple(instantiate(t_outs, outs))

        both = self._below(primal_and_tangent).bind(*primals, *tangents)
        m = n_out["n"]
        return tuple(top.wrap(o, t) for o, t in zip(both[:m], both[m:]))

    def _batch_rule(self, vals, dims):
        cell: dict = {}
        outs = self._below(map_call(self.flat, dims, cell)).bind(*vals)
        return outs, tuple(cell["dims"])


class _Closure(Exception):
    """Internal: a checkpointed function's outputs hold a value traced at ``level`` (a closure)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.level = level


def _check_closure(guard: int, outs) -> None:
    """Signal outputs holding a value traced at level ``guard`` or above: the function closed
    over it, and a recomputation one level down would see a stale or dead value."""
    if guard < 0:
        return
    for o in outs:
        if isinstance(o, Tracer) and o._interp.level >= guard:
            raise _Closure(o._interp.level)


def _swap_rng(state):
    """Install NumPy's global random ``state`` (if any); returns the one it replaced."""
    if state is None:
        return None
    current = np.random.get_state()
    np.random.set_state(state)
    return current


def _same_up_to_rounding(a, s) -> bool:
    """Equal, or for floating values equal to rounding: the recomputation runs npfunc's
    primitives where the forward pass ran NumPy's functions (np.einsum's default
    unoptimised loop against an optimised contraction differ in the last bits), which
    is not the nondeterminism the check is for (random draws differ by far more)."""
    if a.shape != s.shape or a.dtype.kind not in "fc" or s.dtype.kind not in "fc":
        return a.shape == s.shape and np.array_equal(a, s, equal_nan=True)
    rtol = 1000 * np.finfo(np.result_type(a.dtype, s.dtype)).eps
    scale = np.max(np.abs(np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)), initial=0.0)
    return bool(np.allclose(a, s, rtol=rtol, atol=rtol * scale, equal_nan=True))


def _check_same(name: str, again, stored) -> None:
    for a, s in zip(again, stored):
        if isinstance(a, Tracer) or isinstance(s, Tracer):
            continue  # values of an enclosing transform: compared at the bottom level
        if not _same_up_to_rounding(np.asarray(a), np.asarray(s)):
            raise NondeterministicCheckpointError(
                f"{describe_stack()}: {name} gave different outputs when recomputed for the backward "
                "pass, so its gradient would belong to another computation. Make it deterministic "
                "(draw random numbers outside and pass them in, or use np.random.* whose state "
                "checkpoint restores), or do not checkpoint it.")
