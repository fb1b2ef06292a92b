"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

Each call of a decorated function binds a primitive made for it (kept out of
the registry), so the rule takes part in every transform like a built-in one:

* ``custom_jvp``: the forward rule is used by jvp/jacfwd; reverse mode
  transposes it with npfunc's own reverse mode (it is linear in the
  tangents); vmap batches the function *and* the rule, so the rule survives
  ``grad(vmap(f))``.
* ``custom_vjp``: ``fwd`` and ``bwd`` are used by vjp/grad/jacrev (``fwd`` is
  re-run when the cotangent arrives, as residuals are not stored on the
  tape); vmap batches ``fwd`` and ``bwd``; forward mode raises.

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
from typing import Callable

from ..core.context import describe_stack
from ..core.errors import NpfuncError
from ..core.primitive import Primitive
from ..core.values import is_inexact
from ..core.zeros import zero
from ..primitives.elementwise.arithmetic import zeros_like
from ..primitives.reductions.basic import reduce_sum
from ..primitives.shape.basic import moveaxis
from ._common import tree_flatten, tree_unflatten


class CustomRuleError(NpfuncError, TypeError):
    """A custom_jvp / custom_vjp function is used in a way its rules do not cover."""


def _flatten_fun(fun: Callable, in_spec, store: dict) -> Callable:
    """``fun`` as a function of flat leaves returning a tuple of leaves;
    records the output structure in ``store`` when it runs."""

    def flat(*leaves):
        out_leaves, out_spec = tree_flatten(fun(*tree_unflatten(in_spec, list(leaves))))
        store["out"] = out_spec
        return tuple(out_leaves)

    return flat


def _instantiate(tangents, primals):
    return [zeros_like(p) if t is zero else t for t, p in zip(tangents, primals)]


def _batched_to(value, d):
    """A value computed with its batch axis first, moved to ``d`` (summed away if None)."""
    if d is None:
        return reduce_sum(value, axes=(0,))
    return moveaxis(value, 0, d)


# ---- custom_jvp -----------------------------------------------------------------------------

class custom_jvp:
    """Decorate a function to give it a custom JVP rule (``@f.defjvp``).

    The rule takes ``(primals, tangents)`` -- tuples shaped like the
    arguments -- and returns ``(primal_out, tangent_out)``; ``tangent_out`` must
    be linear in the tangents (reverse mode transposes it).
    """

    def __init__(self, fun: Callable) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule: Callable | None = None

    def defjvp(self, rule: Callable) -> Callable:
        self.rule = rule
        return rule

    def __call__(self, *args):
        if self.rule is None:
            raise CustomRuleError(f"custom_jvp {self.__name__}: define its rule with @{self.__name__}.defjvp")
        leaves, in_spec = tree_flatten(args)
        store: dict = {}
        prim = _jvp_primitive(self.__name__, _flatten_fun(self.fun, in_spec, store),
                              _flat_jvp_rule(self.rule, in_spec, store), in_spec, store)
        outs = prim.bind(*leaves)  # running the function records the output structure
        return tree_unflatten(store["out"], list(outs))


def _flat_jvp_rule(rule: Callable, in_spec, store: dict) -> Callable:
    """The rule on flat leaves: (primal leaves, tangent leaves) -> (outs, tangent outs)."""

    def flat(primals, tangents):
        out, t_out = rule(tree_unflatten(in_spec, list(primals)), tree_unflatten(in_spec, list(tangents)))
        outs, spec = tree_flatten(out)
        t_outs, t_spec = tree_flatten(t_out)
        if spec != t_spec:
            raise CustomRuleError(f"custom_jvp rule: tangent_out has structure {t_spec}, the output {spec}")
        store["out"] = spec
        return tuple(outs), tuple(t_outs)

    return flat


def _jvp_primitive(name, flat_fun, flat_rule, in_spec, store) -> Primitive:
    def jvp(primals, tangents, out):
        return flat_rule(tuple(primals), tuple(_instantiate(tangents, primals)))[1]

    def vjp(g, primals, out, needs):
        # The rule is linear in the tangents: its transpose is its VJP in them.
        from .reverse import trace_vjp

        diff = [i for i, p in enumerate(primals) if is_inexact(p)]

        def linear(*ts):
            full = [zeros_like(p) for p in primals]
            for i, t in zip(diff, ts):
                full[i] = t
            return list(flat_rule(tuple(primals), tuple(full))[1])

        _, pullback, _ = trace_vjp(linear, tuple(zeros_like(primals[i]) for i in diff), False, "custom_jvp")
        cts = pullback.flat([zeros_like(o) if c is zero else c for c, o in zip(g, out)])
        result = [zero] * len(primals)
        for i, c in zip(diff, cts):
            result[i] = c if needs[i] else zero
        return tuple(result)

    def batch(vals, dims):
        from .vmap import vmap

        dims = tuple(dims)
        b_fun = vmap(flat_fun, in_dims=dims, out_dims=0)
        b_rule = vmap(flat_rule, in_dims=(dims, dims), out_dims=0)  # tangents are laid out as primals
        inner: dict = {}
        prim = _jvp_primitive(name, b_fun, b_rule, in_spec, inner)
        outs = prim.bind(*vals)
        return outs, (0,) * len(outs)

    return Primitive(f"custom_jvp[{name}]", flat_fun, jvp=jvp, vjp=vjp, batch=batch,
                     multiple_results=True, register=False)


# ---- custom_vjp -----------------------------------------------------------------------------

class custom_vjp:
    """Decorate a function to give it a custom VJP (``f.defvjp(fwd, bwd)``).

    ``fwd(*args)`` returns ``(output, residuals)``; ``bwd(residuals, cotangent)``
    returns a tuple with one cotangent per argument (``None`` for none).
    """

    def __init__(self, fun: Callable) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise CustomRuleError(f"custom_vjp {self.__name__}: define its rules with "
                                  f"{self.__name__}.defvjp(fwd, bwd)")
        leaves, in_spec = tree_flatten(args)
        store: dict = {}
        flat_fwd, flat_bwd = _flat_vjp_rules(self.fwd, self.bwd, in_spec, store)
        prim = _vjp_primitive(self.__name__, _flatten_fun(self.fun, in_spec, store), flat_fwd, flat_bwd)
        outs = prim.bind(*leaves)  # running the function records the output structure
        return tree_unflatten(store["out"], list(outs))


def _flat_vjp_rules(fwd: Callable, bwd: Callable, in_spec, store: dict):
    def flat_fwd(*leaves):
        out, res = fwd(*tree_unflatten(in_spec, list(leaves)))
        outs, spec = tree_flatten(out)
        store["out"] = spec
        return tuple(outs), res

    def flat_bwd(res, cts):
        grads = bwd(res, tree_unflatten(store["out"], list(cts)))
        if not isinstance(grads, tuple) or len(grads) != in_spec.num_children:
            raise CustomRuleError(
                f"custom_vjp bwd must return a tuple with one cotangent per argument "
                f"({in_spec.num_children}), got {type(grads).__name__}")
        # None for an argument means "no cotangent": expand it over that argument's leaves
        per_arg = tree_unflatten(in_spec, [0] * in_spec.num_leaves)
        leaves = []
        for g, arg in zip(grads, per_arg):
            n = len(tree_flatten(arg)[0])
            leaves += [None] * n if g is None else tree_flatten(g)[0]
        return tuple(leaves)

    return flat_fwd, flat_bwd


def _vjp_primitive(name, flat_fun, flat_fwd, flat_bwd) -> Primitive:
    def jvp(primals, tangents, out):
        raise CustomRuleError(
            f"{describe_stack()}: {name} has a custom_vjp rule, which only reverse mode can use. "
            "Differentiate it with grad/vjp/jacrev, or define it with custom_jvp for forward mode.")

    def vjp(g, primals, out, needs):
        _, res = flat_fwd(*primals)  # residuals are recomputed, not kept on the tape
        cts = flat_bwd(res, [zeros_like(o) if c is zero else c for c, o in zip(g, out)])
        return tuple(zero if c is None or not need else c for c, need in zip(cts, needs))

    def batch(vals, dims):
        from .vmap import vmap

        dims = tuple(dims)
        b_fun = vmap(flat_fun, in_dims=dims, out_dims=0)
        b_fwd = vmap(flat_fwd, in_dims=dims, out_dims=0)

        def b_bwd(res, cts):  # residuals and cotangents are batched first (out_dims=0 above)
            grads = vmap(flat_bwd, in_dims=(0, 0), out_dims=0)(res, list(cts))
            return tuple(None if g_ is None else _batched_to(g_, d) for g_, d in zip(grads, dims))

        prim = _vjp_primitive(name, b_fun, b_fwd, b_bwd)
        outs = prim.bind(*vals)
        return outs, (0,) * len(outs)

    return Primitive(f"custom_vjp[{name}]", flat_fun, jvp=jvp, vjp=vjp, batch=batch,
                     multiple_results=True, register=False)
