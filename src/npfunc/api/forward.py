"""Forward-mode transform: jvp."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.context import current_stack, describe_stack
from ..core.debug import FLAGS
from ..core.lazy import deferred
from ..core.errors import IndependenceError, TangentError
from ..core.values import PYTHON_NUMBERS, shape_of
from ..core.zeros import zero
from ..interpreters.jvp import JVPInterpreter, JVPTracer
from ..core.tracer import snapshot
from ..primitives.elementwise.arithmetic import zeros_like
from ..primitives.indexing.aliasing import mark_input
from .tape_cache import cacheable_input, grad_cache
from ._common import (ArgsSpec, check_callable, check_containers_kept, check_differentiable, check_outputs,
                      fit_dtype, scalar_again, scalars_again, split_aux, tree_flatten, tree_unflatten,
                      write_back_updated)


# jvp(grad(f)) from f's tape (loaded on first use)
taped_grad_jvp = deferred("npfunc.api.tape_replay:taped_grad_jvp", globals(), "taped_grad_jvp")


def lower(tree, interp):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten(spec, [
        leaf.primal if isinstance(leaf, JVPTracer) and leaf._interp is interp else leaf
        for leaf in leaves])


def trace_jvp(func: Callable, primal_leaves, tangent_leaves, in_spec, has_aux: bool, transform: str,
              hidden: bool = False):
    """Run ``func`` under a JVP interpreter; returns flat outputs and tangents
    (``zero`` where an output does not depend on the inputs).  ``hidden``
    leaves the level out of error messages' transform stack (for jacfwd,
    whose batching level already carries the name)."""
    with JVPInterpreter(transform, hidden) as interp:
        tracers = [mark_input(JVPTracer(interp, snapshot(p), snapshot(t)), p)
                   for p, t in zip(primal_leaves, tangent_leaves)]
        before = [t.primal for t in tracers]
        args = tree_unflatten(in_spec, tracers)
        out = func(*args)
    if type(in_spec) is not ArgsSpec:  # containers built around the tracers: entries must stay
        check_containers_kept(args, tracers, transform)
    primals, tangents, out_spec, aux = traced_outputs(interp, out, has_aux, transform)
    primals, aux = written_back(primal_leaves, tracers, before, primals, aux, transform,
                                getattr(func, "others", None))
    return primals, tangents, out_spec, aux


def written_back(arguments, tracers, before, primals: list, aux, transform: str = "", others=None):
    """``(primals, aux)`` after the caller's ``arguments`` got what the function left
    in their ``tracers`` (``_common.write_back_updated``), the outputs sharing their
    memory copied; as they are when no argument was updated (the common case)."""
    if all(t.primal is b for t, b in zip(tracers, before)):
        return primals, aux
    aux_leaves, aux_spec = tree_flatten(aux)
    kept = write_back_updated(arguments, tracers, before, primals + aux_leaves, transform, others)
    return kept[:len(primals)], tree_unflatten(aux_spec, kept[len(primals):])


def output_tangent(t, out):
    """The tangent ``t`` (or ``zero``) as returned for the output ``out``: a NumPy scalar
    for a NumPy-scalar output, as its value."""
    if isinstance(out, np.generic):
        if t is zero:
            return out.dtype.type(0)
        return t[()] if type(t) is np.ndarray and not t.shape else t
    return zeros_like(out) if t is zero else t


def traced_outputs(interp, out, has_aux: bool, transform: str):
    """What ``trace_jvp`` returns, from what the function returned under ``interp``."""
    aux = None
    if has_aux:
        out, aux = split_aux(out, transform)
    out_leaves, out_spec = tree_flatten(out)
    raw = out_leaves
    out_leaves = check_outputs(out_leaves, transform)
    tangents = [interp.tangent_of(o) for o in out_leaves]
    # A Python number returned (a constant: `return np.inf` on one branch) stays one, as
    # the plain function's value; its tangent is a zero array all the same.
    primals = [r if type(r) in PYTHON_NUMBERS else scalar_again(interp.primal_of(o)) for r, o in zip(raw, out_leaves)]
    if has_aux:
        aux = scalars_again(lower(aux, interp))
    return primals, tangents, out_spec, aux


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False, has_aux: bool = False):
    """``func(*primals)`` and its Jacobian-vector product with ``tangents``.

    ``primals`` and ``tangents`` are tuples with the same structure and
    shapes.  Returns ``(output, jvp_out)`` (plus ``aux`` with ``has_aux``).
    With ``strict=True`` an output that does not depend on the inputs raises
    instead of getting a zero tangent.

    >>> import numpy as np, npfunc
    >>> x = np.array([0.0, 1.0])
    >>> out, t = npfunc.jvp(np.sin, (x,), (np.ones(2),))
    >>> np.allclose(t, np.cos(x))
    True
    """
    check_callable(func, "jvp")
    for name, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, tuple):
            raise TangentError(
                f"jvp: {name} must be a tuple with one entry per argument of the function, got "
                f"{type(value).__name__}. Write jvp(f, (x,), (t,)) for a single argument.")
    p_leaves, p_spec = tree_flatten(primals)
    t_leaves, t_spec = tree_flatten(tangents)
    if p_spec != t_spec:
        raise TangentError(f"jvp: tangents must have the structure of primals, {p_spec}, but got {t_spec}")
    p_leaves = check_differentiable(p_leaves, "jvp", lambda k: f"primal leaf {k}")
    fitted = []
    for k, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        if tuple(shape_of(t)) != tuple(shape_of(p)):
            raise TangentError(
                f"jvp: tangent leaf {k} has shape {tuple(shape_of(t))} but its primal has shape "
                f"{tuple(shape_of(p))}; pass tangents shaped like the primals")
        if type(t) in PYTHON_NUMBERS:  # a Python number: a 0-d array, as primitives' rules take it
            t = np.asarray(t)
        fitted.append(fit_dtype(t, p, f"jvp: tangent leaf {k}"))
    taped = getattr(func, "_taped_grad", None)
    if taped is not None and taped[0] is func and not (has_aux or strict) and len(primals) == 1 and \
            p_leaves[0] is primals[0] and cacheable_input(primals[0]) and type(fitted[0]) is np.ndarray and \
            not current_stack() and not FLAGS.nans and (cache := grad_cache(func)).warm():
        outs, touts, out_spec, aux = taped_grad_jvp(taped[1], cache, primals[0], fitted[0])
    else:
        outs, touts, out_spec, aux = trace_jvp(func, p_leaves, fitted, p_spec, has_aux, "jvp")
    if strict:
        for k, t in enumerate(touts):
            if t is zero:
                raise IndependenceError(
                    f"{describe_stack('jvp')}: output {k} does not depend on the inputs "
                    "(strict=True). Drop strict=True to get a zero tangent.")
    touts = [output_tangent(t, o) for o, t in zip(outs, touts)]
    result = (tree_unflatten(out_spec, outs), tree_unflatten(out_spec, touts))
    return result + (aux,) if has_aux else result

