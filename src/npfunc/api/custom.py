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

from typing import Callable, Sequence

import numpy as np

from ..core.context import describe_stack
from ..core.errors import ConcretizationError
from ..core.tracer import Tracer
from ..core.values import is_inexact
from ..core.zeros import add_any, zero
from ..primitives.elementwise.arithmetic import zeros_like
from ._calls import (CallPrimitive, CustomRuleError, RulePrimitive, Static, as_out, batched_front, batched_to,
                     check_closure_levels, fit, flat_fun, instantiate, lower, map_call, note_numbers,
                     outputs, top_interpreter)
from ._common import tree_flatten, tree_unflatten, wrap_like
from .closure import closure_convert  # noqa: F401  (re-exported: custom rules and closures go together)

__all__ = ["custom_jvp", "custom_vjp", "closure_convert", "CustomRuleError"]


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
        wrap_like(self, fun)
        self.fun = fun
        self.nondiff_argnums = nondiff_argnums
        self.rule: Callable | None = None
        self._static = Static(f"custom_jvp {getattr(fun, '__name__', 'f')}", nondiff_argnums)

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
            out = self(*Static.merge(static, primals, [i % n for i in self._static.nums]))
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
        if top_interpreter(leaves) is None:  # nothing traced: the plain call, its outputs as they are
            return fun(*args)
        store: dict = {}
        flat = flat_fun(lambda *d: fun(*Static.merge(static, d, nums)), in_spec, store)
        flat_rule = _flat_jvp_rule(lambda p, t: rule(*static, p, t), in_spec, store, name)
        outs = _JVPCall(name, flat, flat_rule).bind(*leaves)
        return outputs(store, name, outs)


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
        note_numbers(store, outs)
        outs = tuple(as_out(o) for o in outs)
        return outs, tuple(fit(t, o, f"custom_jvp {name}", k) for k, (t, o) in enumerate(zip(t_outs, outs)))

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
        # (hidden: npfunc's own level, which messages do not name -- grad(f), not grad(custom_jvp(f)))
        _, pull, _ = trace_vjp(tangent_map, tuple(zeros_like(lowered[i]) for i in diff), False,
                               "custom_jvp", hidden=True)
        outs = cell["outs"]
        check_closure_levels(self.name, top, outs)
        inexact = [k for k, o in enumerate(outs) if is_inexact(o)]

        def vjp_args(args, res, out, g):
            cts = pull.flat([zeros_like(out[k]) if g[k] is zero else g[k] for k in inexact])
            result = [zero] * len(args)
            for i, c in zip(diff, cts):
                result[i] = c
            return result

        rule = RulePrimitive(self.name, top, len(leaves), len(outs), vjp_args, None, self)
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
        wrap_like(self, fun)
        self.fun = fun
        self.nondiff_argnums = nondiff_argnums
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self._static = Static(f"custom_vjp {getattr(fun, '__name__', 'f')}", nondiff_argnums)

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
        if top_interpreter(leaves) is None:  # nothing traced: the plain call, its outputs as they are
            return fun(*args)
        store: dict = {}
        flat = flat_fun(lambda *d: fun(*Static.merge(static, d, nums)), in_spec, store)
        flat_fwd = _flat_fwd(lambda *d: fwd(*Static.merge(static, d, nums)), in_spec, store, name)
        flat_bwd = _flat_bwd(lambda res, g: bwd(*static, res, g), in_spec, store, name)
        outs = _VJPCall(name, flat, flat_fwd, flat_bwd).bind(*leaves)
        return outputs(store, name, outs)


def split_residuals(res):
    """(array leaves, rebuild) for a residual pytree: arrays are kept on the
    tape (and batched), every other leaf is static and rides in ``rebuild``."""
    leaves, spec = tree_flatten(res)
    kinds = [isinstance(x, (Tracer, np.ndarray, np.generic)) for x in leaves]
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
        note_numbers(store, outs)
        arrays, rebuild = split_residuals(pair[1])
        return tuple(as_out(o) for o in outs), tuple(arrays), rebuild

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
            return [zero if c is None else fit(c, a, name, i) for i, (c, a) in enumerate(zip(cts, args))]

        def jvp_args(args, res_vals, out, tangents):
            return _transpose_bwd(vjp_args, args, res_vals, out, tangents)

        rule = RulePrimitive(self.name, top, len(leaves), len(outs), vjp_args, jvp_args, self)
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
