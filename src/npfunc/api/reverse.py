"""Reverse-mode transforms: vjp, grad, grad_and_value."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import numpy as np

from ..core.context import current_stack
from ..core.debug import FLAGS
from ..core.errors import NonScalarOutputError, OutputTypeError, TangentError
from ..core.lazy import deferred
from ..core.tracer import keep
from ..core.values import PYTHON_NUMBERS, dtype_of, shape_of
from ..core.zeros import zero
from ..interpreters.reverse import ReverseInterpreter, ReverseTracer, backward
from ..primitives.elementwise.arithmetic import ones_like, zeros_like
from ..primitives.indexing.aliasing import mark_input
from ._common import (ArgsSpec, arg_name, check_callable, check_differentiable, check_outputs, fit_dtype,
                      normalize_argnums, scalar_again, scalar_gradient, scalars_again, select_args,
                      split_aux, tree_flatten, tree_unflatten, untraced_leaves, write_back_updated,
                      check_containers_kept)
from .tape_cache import grad_cache

taped_grad_grad = deferred("npfunc.api.tape_replay:taped_grad_grad", globals(), "taped_grad_grad")


def lower(tree, interp):
    """Strip this level's tracers from a pytree (for aux values)."""
    leaves, spec = tree_flatten(tree)
    return tree_unflatten(spec, [
        leaf.primal if isinstance(leaf, ReverseTracer) and leaf._interp is interp else leaf
        for leaf in leaves])


class _Pullback:
    """The linear map ``vjp`` returns: callable many times, and transformable."""

    def __init__(self, transform, in_spec, in_leaves, in_nodes, out_spec, out_leaves, seeds):
        self._transform = transform
        self._in_spec = in_spec
        self._in_leaves = in_leaves
        self._in_nodes = in_nodes
        self._out_spec = out_spec
        self._out_leaves = out_leaves
        self._seeds = seeds
        #: (caller's argument, its traced stand-in, the stand-in's value before the
        #: function ran): written back once the tape, which may read the argument
        #: itself, has done its work (``write_back_updates``)
        self._updates = ()
        #: the arrays the function got untraced (``select_args``' ``others``), or None
        self._others = None

    def write_back_updates(self, results):
        """Give the caller's arguments the values the function left in them (after the
        backward passes that read the tape: it holds the arguments as they were);
        ``results`` (a pytree) comes back with the arrays sharing their memory copied."""
        updates, self._updates = self._updates, ()
        if not updates:
            return results
        leaves, spec = tree_flatten(results)
        return tree_unflatten(spec, write_back_updated(*zip(*updates), leaves, self._transform, self._others))

    def flat(self, ct_leaves):
        """Cotangents of the input leaves (``zero`` where independent)."""
        seeds = [(node, index, ct) for (node, index), ct in zip(self._seeds, ct_leaves)]
        return backward(seeds, self._in_nodes)

    def __call__(self, cotangents, *, retain_graph=True, create_graph=True):
        leaves, spec = tree_flatten(cotangents)
        if spec != self._out_spec:
            if len(self._out_leaves) == 1 and len(leaves) == 1:
                pass  # a lone output: accept the cotangent in any single-leaf wrapping
            else:
                raise TangentError(
                    f"vjp_fn: the cotangents must have the structure of the function's output, "
                    f"{self._out_spec}, but got {spec}")
        fitted = []
        for k, (ct, out) in enumerate(zip(leaves, self._out_leaves)):
            if tuple(shape_of(ct)) != tuple(shape_of(out)):
                raise TangentError(
                    f"vjp_fn: cotangent {k} has shape {tuple(shape_of(ct))} but output {k} has "
                    f"shape {tuple(shape_of(out))}; pass a cotangent shaped like the output")
            fitted.append(fit_dtype(ct, out, f"vjp_fn: cotangent {k}"))
        cts = self.flat(fitted)
        return tree_unflatten(self._in_spec, [
            scalar_gradient(zeros_like(p) if c is zero else c, p) for c, p in zip(cts, self._in_leaves)])


def trace_vjp(func: Callable, primals: tuple, has_aux: bool, transform: str, describe=None,
              keep_inputs: bool = False, hidden: bool = False):
    """Run ``func`` under a reverse interpreter: (output, pullback, aux).

    ``keep_inputs``: the tape keeps copies of writeable input arrays (``vjp``,
    whose pullback the caller may call after changing them); ``hidden``: the
    level is npfunc's own (a rule transposed), which messages do not name."""
    in_leaves, in_spec = tree_flatten(primals)
    in_leaves = check_differentiable(in_leaves, transform, describe or (lambda k: f"primal leaf {k}"))
    with ReverseInterpreter(transform, hidden) as interp:
        # (the copy holds the values; the array passed in still gives the layout)
        tracers = [mark_input(interp.new_input(keep(x) if keep_inputs else x), x) for x in in_leaves]
        in_nodes = [t.node for t in tracers]  # before func: an in-place update rebinds t.node
        before = [t.primal for t in tracers]
        args = tree_unflatten(in_spec, tracers)
        out = func(*args)
        aux = None
        if has_aux:
            out, aux = split_aux(out, transform)
    if type(in_spec) is not ArgsSpec:  # containers built around the tracers: entries must stay
        check_containers_kept(args, tracers, transform)
    out, pullback, aux = _traced_outputs(interp, out, aux, has_aux, transform, in_spec, in_leaves, in_nodes)
    pullback._updates = tuple(zip(in_leaves, tracers, before))
    pullback._others = getattr(func, "others", None)
    if keep_inputs:  # the tape holds copies of the arguments: the caller's may change now
        out, aux = pullback.write_back_updates((out, aux))
    return out, pullback, aux


def _traced_outputs(interp, out, aux, has_aux, transform, in_spec, in_leaves, in_nodes):
    """What ``trace_vjp`` returns, from what ``func`` returned under ``interp``."""
    out_leaves, out_spec = tree_flatten(out)
    raw = out_leaves
    out_leaves = check_outputs(out_leaves, transform)
    seeds = []
    primal_outs = []
    for leaf in out_leaves:
        p, node, index = interp.unwrap(leaf)
        primal_outs.append(p)
        seeds.append((node, index))
    pullback = _Pullback(transform, in_spec, in_leaves, in_nodes, out_spec,
                         primal_outs, seeds)
    if has_aux:
        aux = scalars_again(lower(aux, interp))
    # A Python number returned (a constant: `return np.inf` on one branch) stays one, as
    # the plain function's value; the pullback keeps its 0-d array for the cotangent.
    values = [r if type(r) in PYTHON_NUMBERS else scalar_again(p) for r, p in zip(raw, primal_outs)]
    return tree_unflatten(out_spec, values), pullback, aux


def vjp(func: Callable, *primals: Any, has_aux: bool = False):
    """The output of ``func(*primals)`` and its vector-Jacobian product function.

    Returns ``(output, vjp_fn)`` (or ``(output, vjp_fn, aux)`` with
    ``has_aux=True``).  ``vjp_fn(cotangents)`` takes cotangents shaped like
    the output and returns a tuple with one cotangent per primal; it can be
    called many times and transformed (``vmap(vjp_fn)``).

    >>> import numpy as np, npfunc
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> y, vjp_fn = npfunc.vjp(np.sin, x)
    >>> (g,) = vjp_fn(np.ones(3))
    >>> np.allclose(g, np.cos(x))
    True
    """
    check_callable(func, "vjp")
    if "dask" in sys.modules:  # dask data: a Dask reduction of per-chunk gradients (npfunc/dask)
        from ..dask._grad import vjp_hook
        if (out := vjp_hook(func, primals, has_aux)) is not NotImplemented:
            return out
    out, pullback, aux = trace_vjp(func, primals, has_aux, "vjp",
                                   lambda k: f"primal {k}" if len(primals) > 1 else "the primal", keep_inputs=True)
    return (out, pullback, aux) if has_aux else (out, pullback)


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Like ``grad``, but the new function returns ``(gradient, value)``
    (``(gradient, (value, aux))`` with ``has_aux=True``).

    >>> import numpy as np, npfunc
    >>> g, v = npfunc.grad_and_value(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
    >>> g, v
    (array([2., 4.]), np.float64(5.0))
    """
    return _make_grad(func, argnums, has_aux, "grad_and_value", with_value=True)


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient of a function returning a real scalar, w.r.t. ``argnums``.

    With a tuple ``argnums`` the gradient is a tuple; with ``has_aux=True``
    ``func`` returns ``(output, aux)`` and the new function ``(gradient, aux)``.

    >>> import numpy as np, npfunc
    >>> x = np.float64(0.5)
    >>> np.isclose(npfunc.grad(np.sin)(x), np.cos(x))
    np.True_
    >>> np.isclose(npfunc.grad(npfunc.grad(np.sin))(x), -np.sin(x))
    np.True_
    """
    return _make_grad(func, argnums, has_aux, "grad", with_value=False)


def _make_grad(func, argnums, has_aux, transform, with_value):
    check_callable(func, transform)
    normalize_argnums(argnums, 1 << 30, transform)  # type errors now, range at call time
    one_array = type(argnums) is int and argnums >= 0  # the common call may take the short path
    # grad of a grad function (a second derivative) may take the inner function's tape
    taped_inner = getattr(func, "_taped_grad", None)
    if taped_inner is None or taped_inner[0] is not func or argnums != 0 or has_aux or with_value:
        taped_inner = None

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if one_array and not kwargs and argnums < len(args) and "dask" not in sys.modules:
            x = args[argnums]
            if type(x) is np.ndarray and x.dtype.kind == "f":
                if taped_inner is not None and len(args) == 1 and \
                        (second := _second_derivative_from_tape(taped_inner, x)) is not None:
                    return second
                return _grad_of_array(func, args, argnums, x, has_aux, transform, with_value)
        if "dask" in sys.modules:  # dask data: a Dask reduction of per-chunk gradients (npfunc/dask)
            from ..dask._grad import grad_hook
            if (out := grad_hook(func, args, kwargs, argnums, has_aux, transform, with_value)) is not NotImplemented:
                return out
        nums = normalize_argnums(argnums, len(args), transform)
        diff_args, partial = select_args(func, args, nums, kwargs)
        out, pullback, aux = trace_vjp(partial, diff_args, has_aux, transform, arg_name(nums))
        _check_scalar(out, transform)
        cts = pullback.flat([_seed(out)])
        grads = tree_unflatten(pullback._in_spec, [scalar_gradient(zeros_like(p) if c is zero else c, p)
                                                   for c, p in zip(cts, pullback._in_leaves)])
        result = grads[0] if isinstance(argnums, int) else grads
        return pullback.write_back_updates(_grad_result(result, out, aux, has_aux, with_value))

    # jvp(grad(f)) (a Hessian-vector product) may take f's tape (api/tape_replay.py); the
    # wrapper names itself, as functools.wraps copies the attribute onto wrappers of it
    wrapper._taped_grad = (wrapper, func) if (
        argnums == 0 and type(argnums) is int and not has_aux and not with_value) else None
    return wrapper


def _second_derivative_from_tape(taped_inner, x):
    """``grad(g)(x)`` for a grad function ``g`` of ``f`` (``taped_inner``: ``(g, f)``)
    from ``f``'s tape (api/tape_replay.py), or None where the composition runs: an
    input other than a 0-d array, under another transform or ``debug_nans``, on the
    first call.  (A module function: a grad function pickled by value, for Dask's
    workers, refers to it by name.)"""
    if x.shape == () and not current_stack() and not FLAGS.nans:
        cache = grad_cache(taped_inner[0], "grad")
        if cache.warm():
            return taped_grad_grad(taped_inner[1], cache, x)
    return None


def _grad_of_array(func, args, argnum, x, has_aux, transform, with_value):
    """``grad`` with respect to one real ndarray argument, without pytrees: the
    short path of ``_make_grad``'s wrapper (the same steps as ``trace_vjp`` and
    the pullback, for one input and, usually, one output node)."""
    with ReverseInterpreter(transform) as interp:
        tracer = mark_input(interp.new_input(x), x)
        in_node = tracer.node  # before func: an in-place update rebinds tracer.node
        if len(args) == 1:
            out = func(tracer)
        else:
            args = list(args)
            args[argnum] = tracer
            out = func(*args)
        aux = None
        if has_aux:
            out, aux = split_aux(out, transform)
    result = _gradient_from(interp, out, aux, x, in_node, has_aux, transform, with_value)
    if tracer.node is not in_node:  # the function updated its argument: so does the caller's, after
        leaves, spec = tree_flatten(result)  # the backward pass (which read the argument as it was)
        others = lambda: untraced_leaves(args, (argnum,))
        result = tree_unflatten(spec, write_back_updated((x,), (tracer,), (None,), leaves, transform, others))
    return result


def _gradient_from(interp, out, aux, x, in_node, has_aux, transform, with_value):
    """``_grad_of_array``'s result, from what the function returned under ``interp``."""
    if type(out) is ReverseTracer and out._interp is interp:
        primal = out.primal
        if type(primal) is np.float64:  # a real scalar: the checks would pass
            seed = _ONE_FLOAT64
        else:
            _check_scalar(primal, transform)
            seed = _seed(primal)
        (ct,) = backward(((out.node, out.index, seed),), (in_node,))
        if not (has_aux or with_value):
            return zeros_like(x) if ct is zero else ct
        primal = scalar_again(primal)
        if has_aux:
            aux = scalars_again(lower(aux, interp))
    else:  # not traced (a constant function), or a pytree: the general steps
        primal, pullback, aux = _traced_outputs(interp, out, aux, has_aux, transform, ArgsSpec(None, False),
                                                [x], [in_node])
        _check_scalar(primal, transform)
        (ct,) = pullback.flat([_seed(primal)])
    return _grad_result(zeros_like(x) if ct is zero else ct, primal, aux, has_aux, with_value)


def _grad_result(grads, out, aux, has_aux, with_value):
    if with_value:
        return (grads, (out, aux)) if has_aux else (grads, out)
    return (grads, aux) if has_aux else grads


_ONE_FLOAT64 = np.float64(1.0)
_ONE = {np.dtype(np.float64): _ONE_FLOAT64, np.dtype(np.float32): np.float32(1.0)}


def _seed(out):
    """The cotangent 1 of a scalar output: a NumPy scalar for a NumPy scalar
    (the arithmetic of the backward pass then stays on fast scalars), else an
    array of ones."""
    if isinstance(out, np.generic):
        one = _ONE.get(out.dtype)
        if one is not None:
            return one
    return ones_like(out)


def _check_scalar(out, transform):
    tout = type(out)
    if (tout is np.float64 or tout is np.ndarray) and out.shape == () and out.dtype.kind == "f":
        return  # a real scalar: the checks below would pass
    leaves, _ = tree_flatten(out)
    if len(leaves) != 1 or isinstance(out, (tuple, list, dict)):
        raise OutputTypeError(
            f"{transform}: the function must return a single scalar array, but it returned "
            f"{type(out).__name__}. Return one value (use has_aux=True to return more).")
    shape = tuple(shape_of(out))
    if shape != ():
        raise NonScalarOutputError(
            f"{transform}: the function must return a scalar, but its output has shape {shape}. "
            "Reduce it (e.g. .sum()), or use npfunc.vjp / npfunc.jacrev for non-scalar outputs.")
    kind = dtype_of(out).kind
    if kind != "f":
        fix = ("take np.real or np.abs of a complex loss, or use npfunc.vjp" if kind == "c" else
               "integer and boolean outputs have no gradient: compute the loss in floating point "
               "(e.g. x.astype(float))")
        raise NonScalarOutputError(
            f"{transform}: the function must return a real floating-point scalar, but it "
            f"returned dtype {dtype_of(out)}; {fix}.")
