"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

A call of a decorated function binds a *call primitive* made for it (kept out
of the registry).  It does not go through the generic ``process`` of the
top interpreter, but picks what to do by that interpreter's kind:

* nothing traced: the function runs as it is;
* **reverse mode on top** (grad, vjp, jacrev): ``fwd`` (or the JVP rule)
  runs *once*, as ordinary code below that level, and a *rule primitive*
  records the call on the tape.  Its node keeps the residuals ``fwd``
  returned, so the backward pass uses exactly the forward that ran: a
  stochastic ``fwd`` gets the gradient of its own draw, a ``vjp_fn`` called
  twice gives the same result, later changes to a closure change nothing;
* **forward mode on top** (jvp, jacfwd): the JVP rule runs once and its
  primal is the output; a ``custom_vjp`` function gets its JVP by
  transposing ``bwd`` (which, like every VJP, is linear in the cotangent);
* **vmap, jit, linearize, functionalize on top**: the generic path, whose
  batch rule maps the function *and* its rules and binds a new call one
  level down, so the rule survives ``grad(vmap(f))``.

Below the level that applies the rule, ``fwd`` (or the JVP rule) is plain
code that the lower levels differentiate as usual; that is what makes
``grad(grad(f))``, ``hessian`` and ``jvp(grad(f))`` work, as in JAX.
``nondiff_argnums`` marks static arguments (functions, settings): they are
passed first to the rules and never traced.

>>> import numpy as np, npfunc
>>> @npfunc.custom_jvp
... def clipped_exp(x):
...     return np.exp(x)
>>> @clipped_exp.defjvp
... def clipped_exp_jvp(primals, tangents):
...     (x,), (t,) = primals, tangents
...     return clipped_exp(x), np.minimum(np.exp(x), 10.0) * t
>>> float(npfunc.grad(clipped_exp)(np.float64(5.0)))
10.0
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from ..core.context import describe_stack
from ..core.errors import ConcretizationError, NpfuncError
from ..core.primitive import Primitive
from ..core.tracer import PrimalTracer, Tracer
from ..core.values import dtype_of, is_inexact, shape_of
from ..core.zeros import add_any, zero
from ..interpreters.jvp import JVPInterpreter
from ..interpreters.reverse import ReverseInterpreter
from ..primitives.elementwise.arithmetic import astype, zeros_like
from ..primitives.reductions.basic import reduce_sum
from ..primitives.shape.basic import moveaxis
from ._common import as_array, tree_flatten, tree_unflatten

__all__ = ["custom_jvp", "custom_vjp", "closure_convert", "CustomRuleError"]


class CustomRuleError(NpfuncError, TypeError):
    """A custom_jvp / custom_vjp function is used in a way its rules do not cover."""


# ---- the machinery shared by custom_jvp, custom_vjp and checkpoint ---------------------------

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
                 vjp_args: Callable | None, jvp_args: Callable | None) -> None:
        super().__init__(name, self._outs, jvp=self._jvp, vjp=self._vjp, batch=self._batch,
                         multiple_results=True, register=False)
        self.owner, self.n_args, self.n_outs = owner, n_args, n_outs
        self.vjp_args, self.jvp_args = vjp_args, jvp_args

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


def _as_out(x):
    """Python numbers as 0-d arrays (interpreters wrap arrays, not Python scalars)."""
    return as_array(x) if isinstance(x, (float, int, complex)) and not isinstance(x, bool) else x


def _fit(ct, primal, name: str, k: int):
    """A rule's cotangent/tangent for leaf ``k`` checked against its primal's shape and cast to its dtype."""
    if tuple(shape_of(ct)) != tuple(shape_of(primal)):
        raise CustomRuleError(
            f"{describe_stack()}: {name}: the rule returned shape {tuple(shape_of(ct))} for leaf {k}, "
            f"whose primal has shape {tuple(shape_of(primal))}")
    if is_inexact(primal) and dtype_of(ct) != dtype_of(primal):
        return astype(ct, dtype_of(primal))
    return ct


class _Static:
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


def _flat_fun(fun: Callable, in_spec, store: dict) -> Callable:
    """``fun`` on flat leaves returning a tuple of leaves; records the output structure."""

    def flat(*leaves):
        out_leaves, out_spec = tree_flatten(fun(*tree_unflatten(in_spec, list(leaves))))
        store.setdefault("out", out_spec)
        return tuple(_as_out(o) for o in out_leaves)

    return flat


def _out_spec(store: dict, name: str):
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
        with BatchInterpreter(size, "error", "vmap") as interp:
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


# ---- custom_jvp -----------------------------------------------------------------------------

class custom_jvp:
    """Give a function a custom JVP rule (``@f.defjvp``), as ``jax.custom_jvp``.

    The rule takes ``(primals, tangents)`` -- tuples shaped like the
    (non-static) arguments -- and returns ``(primal_out, tangent_out)``;
    ``tangent_out`` must be linear in the tangents (reverse mode transposes
    it).  With ``nondiff_argnums`` the static arguments come first:
    ``rule(*static, primals, tangents)``.  ``defjvps(*fns)`` gives one
    function ``fn(tangent, primal_out, *primals)`` per argument instead.
    """

    def __init__(self, fun: Callable, nondiff_argnums: int | Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = nondiff_argnums
        self.rule: Callable | None = None
        self._static = _Static(f"custom_jvp {getattr(fun, '__name__', 'f')}", nondiff_argnums)

    def defjvp(self, rule: Callable, *, symbolic_zeros: bool = False) -> Callable:
        if symbolic_zeros:
            raise CustomRuleError("custom_jvp.defjvp: symbolic_zeros=True is not supported; "
                                  "tangents of arguments without one arrive as zero arrays")
        self.rule = rule
        return rule

    def defjvps(self, *fns: Callable | None) -> None:
        """One ``fn(tangent, primal_out, *primals)`` per (non-static) argument; None: no dependence."""

        def rule(*pargs):
            static, primals, tangents = pargs[:-2], pargs[-2], pargs[-1]
            n = len(static) + len(primals)
            out = self(*_Static.merge(static, primals, [i % n for i in self._static.nums]))
            t_out = None
            for fn, p, t in zip(fns, primals, tangents):
                if fn is not None:
                    term = fn(t, out, *primals)
                    t_out = term if t_out is None else t_out + term
            return out, (zeros_like(out) if t_out is None else t_out)

        self.rule = rule

    def __call__(self, *args):
        name = self.__name__
        if self.rule is None:
            raise CustomRuleError(f"custom_jvp {name}: define its rule with @{name}.defjvp")
        static, dyn, nums = self._static.split(args)
        fun, rule = self.fun, self.rule
        leaves, in_spec = tree_flatten(dyn)
        store: dict = {}
        flat_fun = _flat_fun(lambda *d: fun(*_Static.merge(static, d, nums)), in_spec, store)
        flat_rule = _flat_jvp_rule(lambda p, t: rule(*static, p, t), in_spec, store, name)
        outs = _JVPCall(name, flat_fun, flat_rule).bind(*leaves)
        return tree_unflatten(_out_spec(store, name), list(outs))


def _flat_jvp_rule(rule: Callable, in_spec, store: dict, name: str) -> Callable:
    """The rule on flat leaves: (primal leaves, tangent leaves) -> (outs, tangent outs)."""

    def flat(primals, tangents):
        pair = rule(tree_unflatten(in_spec, list(primals)), tree_unflatten(in_spec, list(tangents)))
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise CustomRuleError(f"custom_jvp {name}: the rule must return (primal_out, tangent_out)")
        outs, spec = tree_flatten(pair[0])
        t_outs, t_spec = tree_flatten(pair[1])
        if spec != t_spec:
            raise CustomRuleError(
                f"custom_jvp {name}: tangent_out has structure {t_spec}, the output {spec}")
        store.setdefault("out", spec)
        outs = tuple(_as_out(o) for o in outs)
        return outs, tuple(_fit(t, o, f"custom_jvp {name}", k) for k, (t, o) in enumerate(zip(t_outs, outs)))

    return flat


class _JVPCall(CallPrimitive):
    def __init__(self, name, flat_fun, flat_rule) -> None:
        super().__init__(f"custom_jvp[{name}]", flat_fun, self._batch_rule)
        self.fname, self.flat_fun, self.flat_rule = name, flat_fun, flat_rule

    def forward(self, top, leaves):
        primals = [top.primal_of(x) for x in leaves]
        tangents = instantiate([top.tangent_of(x) for x in leaves], primals)
        outs, t_outs = self.flat_rule(tuple(primals), tuple(tangents))
        check_closure_levels(self.name, top, outs + t_outs)
        result = []
        for o, t in zip(outs, t_outs):
            # an output that is top's own tracer closes over a traced value: its tangent adds up
            t = add_any(top.primal_of(t), top.tangent_of(o))
            result.append(top.wrap(top.primal_of(o), t))
        return tuple(result)

    def reverse(self, top, leaves):
        from .reverse import trace_vjp

        lowered = [lower(top, x) for x in leaves]
        diff = [i for i, x in enumerate(leaves) if isinstance(x, Tracer) and x._interp is top]
        cell: dict = {}

        def tangent_map(*ts):
            full = instantiate([zero] * len(lowered), lowered)
            for i, t in zip(diff, ts):
                full[i] = t
            outs, t_outs = self.flat_rule(tuple(lowered), tuple(full))
            cell["outs"] = outs
            return [t for t, o in zip(t_outs, outs) if is_inexact(o)]

        # The rule runs once, here; its linear tangent part is recorded and
        # transposed when the cotangent arrives (the record is the residual).
        _, pull, _ = trace_vjp(tangent_map, tuple(zeros_like(lowered[i]) for i in diff), False,
                               "custom_jvp")
        outs = cell["outs"]
        check_closure_levels(self.name, top, outs)
        inexact = [k for k, o in enumerate(outs) if is_inexact(o)]

        def vjp_args(args, res, out, g):
            cts = pull.flat([zeros_like(out[k]) if g[k] is zero else g[k] for k in inexact])
            result = [zero] * len(args)
            for i, c in zip(diff, cts):
                result[i] = c
            return result

        rule = RulePrimitive(self.name, top, len(leaves), len(outs), vjp_args, None)
        return rule.bind(*leaves, *outs)

    def _batch_rule(self, vals, dims):
        dims, n = tuple(dims), len(vals)
        cell: dict = {}
        b_fun = map_call(self.flat_fun, dims, cell)
        flat_rule = self.flat_rule
        b_pair = map_call(lambda *pt: flat_rule(pt[:n], pt[n:]), dims + dims, cell)  # tangents laid out as primals

        def b_rule(primals, tangents):
            outs, t_outs = b_pair(*primals, *tangents)
            m, ds, size = len(outs), cell["dims"], cell["size"]
            outs, t_outs = list(outs), list(t_outs)
            for k in range(m):  # an output and its tangent share their batch layout
                if ds[k] != ds[m + k]:
                    outs[k], t_outs[k] = batched_front(outs[k], ds[k], size), batched_front(t_outs[k], ds[m + k], size)
                    ds[k] = 0
            cell["dims"] = ds[:m]
            return tuple(outs), tuple(t_outs)

        outs = _JVPCall(self.fname, b_fun, b_rule).bind(*vals)
        return outs, tuple(cell["dims"])


# ---- custom_vjp -----------------------------------------------------------------------------

class custom_vjp:
    """Give a function a custom VJP (``f.defvjp(fwd, bwd)``), as ``jax.custom_vjp``.

    ``fwd(*args)`` returns ``(output, residuals)``; ``bwd(residuals,
    cotangent)`` returns a tuple with one cotangent per argument (``None`` for
    none).  The residuals are kept: the backward pass never runs ``fwd``
    again.  Residuals may hold arrays and any other Python values.  With
    ``nondiff_argnums`` the static arguments come first:
    ``bwd(*static, residuals, cotangent)`` returns cotangents for the others.

    Forward mode (``jvp``, ``jacfwd``) transposes ``bwd``, so ``bwd`` must be
    linear in the cotangent and written with NumPy functions on it.
    """

    def __init__(self, fun: Callable, nondiff_argnums: int | Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = nondiff_argnums
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self._static = _Static(f"custom_vjp {getattr(fun, '__name__', 'f')}", nondiff_argnums)

    def defvjp(self, fwd: Callable, bwd: Callable, *, symbolic_zeros: bool = False) -> None:
        if symbolic_zeros:
            raise CustomRuleError("custom_vjp.defvjp: symbolic_zeros=True is not supported; "
                                  "missing cotangents arrive as zero arrays")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        name = self.__name__
        if self.fwd is None:
            raise CustomRuleError(f"custom_vjp {name}: define its rules with {name}.defvjp(fwd, bwd)")
        static, dyn, nums = self._static.split(args)
        fun, fwd, bwd = self.fun, self.fwd, self.bwd
        leaves, in_spec = tree_flatten(dyn)
        store: dict = {}
        flat_fun = _flat_fun(lambda *d: fun(*_Static.merge(static, d, nums)), in_spec, store)
        flat_fwd = _flat_fwd(lambda *d: fwd(*_Static.merge(static, d, nums)), in_spec, store, name)
        flat_bwd = _flat_bwd(lambda res, g: bwd(*static, res, g), in_spec, store, name)
        outs = _VJPCall(name, flat_fun, flat_fwd, flat_bwd).bind(*leaves)
        return tree_unflatten(_out_spec(store, name), list(outs))


def split_residuals(res):
    """(array leaves, rebuild) for a residual pytree: arrays are kept on the
    tape (and batched), every other leaf is static and rides in ``rebuild``."""
    leaves, spec = tree_flatten(res)
    kinds = [isinstance(x, (np.ndarray, np.generic, Tracer)) for x in leaves]
    arrays = [x for x, k in zip(leaves, kinds) if k]
    statics = [x for x, k in zip(leaves, kinds) if not k]

    def rebuild(array_leaves):
        it_a, it_s = iter(array_leaves), iter(statics)
        return tree_unflatten(spec, [next(it_a) if k else next(it_s) for k in kinds])

    return arrays, rebuild


def _flat_fwd(fwd: Callable, in_spec, store: dict, name: str) -> Callable:
    """fwd on flat leaves -> (out leaves, residual array leaves, rebuild)."""

    def flat(*leaves):
        pair = fwd(*tree_unflatten(in_spec, list(leaves)))
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise CustomRuleError(f"custom_vjp {name}: fwd must return (output, residuals)")
        outs, spec = tree_flatten(pair[0])
        if store.setdefault("out", spec) != spec:
            raise CustomRuleError(f"custom_vjp {name}: fwd's output has structure {spec}, the "
                                  f"function's {store['out']}")
        arrays, rebuild = split_residuals(pair[1])
        return tuple(_as_out(o) for o in outs), tuple(arrays), rebuild

    return flat


def _flat_bwd(bwd: Callable, in_spec, store: dict, name: str) -> Callable:
    def flat(res, cts):
        grads = bwd(res, tree_unflatten(store["out"], list(cts)))
        if not isinstance(grads, tuple) or len(grads) != in_spec.num_children:
            raise CustomRuleError(
                f"custom_vjp {name}: bwd must return a tuple with one cotangent per argument "
                f"({in_spec.num_children}), got {type(grads).__name__}"
                + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
        # None for an argument means "no cotangent": expand it over that argument's leaves
        per_arg = tree_unflatten(in_spec, [0] * in_spec.num_leaves)
        leaves = []
        for g, arg in zip(grads, per_arg):
            n = len(tree_flatten(arg)[0])
            leaves += [None] * n if g is None else tree_flatten(g)[0]
        return tuple(leaves)

    return flat


class _VJPCall(CallPrimitive):
    def __init__(self, name, flat_fun, flat_fwd, flat_bwd) -> None:
        super().__init__(f"custom_vjp[{name}]", flat_fun, self._batch_rule)
        self.fname, self.flat_fun, self.flat_fwd, self.flat_bwd = name, flat_fun, flat_fwd, flat_bwd

    def _record(self, top, leaves):
        lowered = [lower(top, x) for x in leaves]
        outs, res, rebuild = self.flat_fwd(*lowered)  # runs once: below `top` it is plain code
        check_closure_levels(self.name, top, outs + res)
        flat_bwd, name = self.flat_bwd, self.name

        def vjp_args(args, res_vals, out, g):
            cts = flat_bwd(rebuild(list(res_vals)), [zeros_like(o) if c is zero else c for c, o in zip(g, out)])
            return [zero if c is None else _fit(c, a, name, i) for i, (c, a) in enumerate(zip(cts, args))]

        def jvp_args(args, res_vals, out, tangents):
            return _transpose_bwd(vjp_args, args, res_vals, out, tangents)

        rule = RulePrimitive(self.name, top, len(leaves), len(outs), vjp_args, jvp_args)
        return rule.bind(*leaves, *outs, *res)

    reverse = forward = _record

    def _batch_rule(self, vals, dims):
        dims = tuple(dims)
        flat_fwd, flat_bwd = self.flat_fwd, self.flat_bwd
        cell: dict = {}
        fwd_cell: dict = {}

        def fwd_arrays(*leaves):
            outs, res, rebuild = flat_fwd(*leaves)
            fwd_cell["rebuild"] = rebuild  # static residuals: one per batched run
            return outs, res

        b_fun = map_call(self.flat_fun, dims, cell)
        b_fwd_arrays = map_call(fwd_arrays, dims, fwd_cell)

        def b_fwd(*leaves):
            outs, res = b_fwd_arrays(*leaves)
            ds = fwd_cell["dims"]
            fwd_cell["outs"], fwd_cell["res"] = ds[:len(outs)], ds[len(outs):]
            cell["dims"] = ds[:len(outs)]
            return outs, res, list

        def b_bwd(res, cts):
            size, rebuild, nr = fwd_cell["size"], fwd_cell["rebuild"], len(res)
            cts = [batched_front(c, d, size) for c, d in zip(cts, fwd_cell["outs"])]
            g_cell: dict = {}
            grads = map_call(lambda *rc: flat_bwd(rebuild(list(rc[:nr])), rc[nr:]),
                             tuple(fwd_cell["res"]) + (0,) * len(cts), g_cell)(*res, *cts)
            g_dims = iter(g_cell["dims"])
            return tuple(None if g_ is None else batched_to(batched_front(g_, next(g_dims), size), d)
                         for g_, d in zip(grads, dims))

        outs = _VJPCall(self.fname, b_fun, b_fwd, b_bwd).bind(*vals)
        return outs, tuple(cell["dims"])


def _transpose_bwd(vjp_args, args, res_vals, out, tangents):
    """Forward mode of a custom_vjp: ``J t`` as the transpose of ``c -> bwd(res, c)``."""
    from .reverse import trace_vjp

    inexact = [k for k, o in enumerate(out) if is_inexact(o)]

    def linear(*cts):
        full = [zeros_like(o) for o in out]
        for k, c in zip(inexact, cts):
            full[k] = c
        grads = vjp_args(args, res_vals, out, full)
        return [zeros_like(a) if g is zero else g for g, a, t in zip(grads, args, tangents) if t is not zero]

    try:
        _, pull, _ = trace_vjp(linear, tuple(zeros_like(out[k]) for k in inexact), False, "custom_vjp")
        t_in = pull.flat([t for t in tangents if t is not zero])
    except ConcretizationError as err:
        raise CustomRuleError(
            f"{describe_stack()}: forward mode of a custom_vjp function transposes its bwd, which "
            "must then compute with NumPy functions on the cotangent (no np.asarray or float of it). "
            "Define the function with custom_jvp for forward mode.") from err
    result = [zero] * len(out)
    for k, t in zip(inexact, t_in):
        result[k] = t
    return result


# ---- closure conversion ---------------------------------------------------------------------

def concrete_example(x):
    """A plain array with the value (or, when unknown, the shape) of ``x`` for one batch element."""
    from ..interpreters.batching import BatchTracer
    from ..interpreters.staging import StagedTracer
    from ..interpreters.structured import dense
    from ..primitives.indexing.gather import getitem

    while isinstance(x, Tracer):
        if isinstance(x, PrimalTracer):
            x = x.primal
        elif isinstance(x, BatchTracer):
            val = dense(x.val)
            if shape_of(val)[x.bdim] == 0:
                return np.zeros(x.shape, x.dtype)
            x = getitem(val, (slice(None),) * x.bdim + (0,))
        elif isinstance(x, StagedTracer):
            x = x.value if x.value is not None else np.zeros(x.shape, x.dtype)
        elif hasattr(x, "val"):  # functionalize
            x = x.val
        else:  # pragma: no cover - every interpreter's tracer is handled above
            return np.zeros(x.shape, x.dtype)
    return x


def closure_convert(fun: Callable, *example_args) -> tuple[Callable, list]:
    """``(converted, consts)`` with ``converted(*args, *consts) == fun(*args)``,
    where ``consts`` are the traced values ``fun`` closes over (as
    ``jax.closure_convert``).  Solvers pass ``consts`` on as explicit inputs,
    so their derivative rules see every traced value the function depends on.

    If ``fun`` closes over no traced value it is returned as it is (called as
    written, so Python control flow on argument values keeps working) with
    ``consts == []``.  Otherwise it is recorded once with the staging
    interpreter and replayed; control flow on argument values then raises
    and the message says to pass the traced values as arguments instead.

    >>> import numpy as np, npfunc
    >>> from npfunc.api.custom import closure_convert
    >>> def outer(w):
    ...     f, consts = closure_convert(lambda x: w * x, np.ones(2))
    ...     return f(np.arange(2.0), *consts).sum()
    >>> npfunc.grad(outer)(np.array([1.0, 2.0]))
    array([0., 1.])
    """
    from ..interpreters.staging import Const, StagedTracer, StagingInterpreter, Var, replay

    leaves, in_spec = tree_flatten(example_args)
    plain = [concrete_example(x) for x in leaves]
    with np.errstate(all="ignore"):
        probe = fun(*tree_unflatten(in_spec, plain))
    if not any(isinstance(o, Tracer) for o in tree_flatten(probe)[0]):
        return fun, []
    try:
        with StagingInterpreter("closure_convert") as stage:
            wrapped = [stage.new_var(shape_of(x), dtype_of(x), None) if _is_arraylike(x) else x
                       for x in plain]
            out = fun(*tree_unflatten(in_spec, wrapped))
    except ConcretizationError as err:
        raise CustomRuleError(
            f"{describe_stack()}: {getattr(fun, '__name__', 'the function')} closes over a traced "
            "value and branches on the value of its arguments (if/while/float on them), so npfunc "
            "cannot separate the two. Pass the traced values it closes over as arguments (args=...) "
            "instead of closing over them.") from err
    out_leaves, out_spec = tree_flatten(out)
    const_vars: dict[int, Var] = {}
    consts: list = []

    def hoist(value):
        var = const_vars.get(id(value))
        if var is None:
            var = const_vars[id(value)] = Var(shape_of(value), dtype_of(value))
            consts.append(value)
        return var

    eqns = []
    for prim, inputs, params, out_vars in stage.eqns:
        inputs = [hoist(i.value) if type(i) is Const and isinstance(i.value, Tracer) else i for i in inputs]
        eqns.append((prim, inputs, params, out_vars))
    outputs = []
    for o in out_leaves:
        if isinstance(o, StagedTracer) and o._interp is stage:
            outputs.append(o.var)
        elif isinstance(o, Tracer):
            outputs.append(hoist(o))
        else:
            outputs.append(Const(o))
    in_vars = [w.var if isinstance(w, StagedTracer) else None for w in wrapped]
    hoisted = [const_vars[id(c)] for c in consts]
    n_in = len(leaves)

    def converted(*args):
        arg_leaves, spec = tree_flatten(args[:len(args) - len(consts)])
        if spec != in_spec:
            raise CustomRuleError(f"closure_convert: called with structure {spec}, recorded {in_spec}")
        env = {v: x for v, x in zip(in_vars, arg_leaves) if v is not None}
        env.update(zip(hoisted, args[len(args) - len(consts):]))
        replay(eqns, env)
        return tree_unflatten(out_spec, [env[o] if type(o) is Var else o.value for o in outputs])

    converted.__name__ = getattr(fun, "__name__", "converted")
    assert n_in == len(in_vars)
    return converted, consts


def _is_arraylike(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) or (isinstance(x, (int, float, complex)) and not isinstance(x, bool))

