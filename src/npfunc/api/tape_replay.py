"""Derivatives from a recorded tape, as if its function had run under them.

Eager ``hessian(f)(x)`` is ``jacfwd(jacrev(f))(x)``: ``f`` runs under three
levels (batching, forward, reverse), and every operation ``f`` performs
passes through all three.  The user's code only ever sees the innermost one,
the reverse level.  So ``hessian`` (and likewise ``jacfwd``, ``jvp(grad(f))``
and ``grad(grad(f))``) runs ``f`` under that reverse level alone, with the outer
levels entered but idle, so that ``f`` meets the same transform stack, the
same conversions and the same refusals as eagerly (``taped``).  Then it
computes the derivative from the tape: ``transplant`` carries the recorded
nodes one level up, attaching to each the forward-mode tangent its JVP rule
gives (the primal outputs are the recorded ones: nothing is recomputed and
``f`` is not called again; for ``grad(grad(f))`` each node is recorded again
at the outer reverse level instead), and the pull-back runs through the carried
nodes exactly as ``jacrev``'s runs through a tape recorded over
forward-mode values.  Every rule runs on the same values, in the same order,
as in the eager composition, so the result is the eager one, bit for bit.

The carried-over computation depends on the tape's structure only, so it is
also compiled per structure (``tape_cache``).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ..core.context import describe_stack
from ..core.errors import RandomnessError
from ..core.tracer import snapshot
from ..core.zeros import zero
from ..interpreters.jvp import JVPInterpreter, JVPTracer
from ..interpreters.reverse import ReverseInterpreter, ReverseTracer, _next_seq
from ..primitives.elementwise.arithmetic import zeros_like
from ..primitives.indexing.aliasing import mark_input
from ._calls import RulePrimitive
from ._common import ArgsSpec, scalar_gradient, tree_flatten, tree_unflatten, write_back
from .forward import traced_outputs
from .reverse import _check_scalar, _gradient_from, _seed, _traced_outputs
from .tape_cache import compile_pull_back, read_tape, reachable

_ONE_LEAF = ArgsSpec(None, False)  # the structure of a single array


def taped(func, x, levels, cache, of_tape, name: str, extra: tuple = (), scalar: bool = False):
    """``of_tape(out, ref, in_node, x, *extra)`` for ``func`` run once at the
    real array ``x`` under ``levels`` (the composition's outer levels, idle,
    then the reverse level that records).  A tape ``cache`` keys is served by
    its compiled program (``extra``: further inputs of it, a jvp's tangent)
    once the structure has been met often enough; ``scalar``: only a float64
    scalar output is keyed."""
    interp = levels[-1]
    with contextlib.ExitStack() as entered:  # (left as nested with-statements leave them: errors seen)
        for level in levels:
            entered.enter_context(level)
        tracer = mark_input(interp.new_input(x), x)
        in_node = tracer.node  # before func: an in-place update rebinds tracer.node
        out = func(tracer)
    ref = recorded_ref(interp, cache)

    def eager():
        return of_tape(out, ref, in_node, x, *extra)

    if tracer.node is not in_node:  # the function updated its argument: so does the caller's, after
        try:                        # the tape (which reads the argument as it was) has done its work
            return eager()
        finally:
            write_back(x, tracer.primal)
    if type(out) is ReverseTracer and out._interp is interp and out.index is None and \
            (not scalar or type(out.primal) is np.float64):
        tape = read_tape(out.node, in_node)
        if tape is not None:
            for value in extra:
                tape.add_input(value)
            return cache.pull_back(tape, eager, functools.partial(_compile, of_tape=of_tape, name=name))
    return eager()


_OUTPUT = object()  # the output leaf, when a compiled program is recorded from rebuilt nodes


def _compile(tape, of_tape, name: str):
    def of_nodes(out_node, in_node, *extra):
        return of_tape(_OUTPUT, lambda leaf: (out_node, None) if leaf is _OUTPUT else None, in_node, in_node[4],
                       *extra)

    return compile_pull_back(tape, of_nodes, name)


_RERUN_FIX = "give argnums as a tuple (argnums=(0,)): that runs the plain composition"


def transplant(out, ref, in_node, x_new, tape: bool = True, name: str = "jacrev", fix: str = _RERUN_FIX):
    """The recorded outputs ``out`` rebuilt over ``x_new``, a value of the
    level above: forward mode (a ``JVPTracer``), or reverse mode (a
    ``ReverseTracer``, for ``grad(grad(f))``, whose level records the carried
    nodes as if they had run there).

    ``ref(leaf)`` gives the ``(node, index)`` a leaf of ``out`` was recorded
    as (None for a constant leaf); ``in_node`` is the recorded input's node.
    Returns ``(out', interp, in_node')``: ``out'`` holds tracers of a new
    reverse level ``interp`` whose nodes carry forward-mode values, as if the
    function had run on ``x_new`` under that level (named ``name``; ``fix``: how to
    run the plain composition instead, for the message below).  With ``tape=False`` no
    level is made: ``out'`` holds the forward-mode values (``jacfwd``), and
    ``interp`` and ``in_node'`` are None.

    A call with custom rules (``custom_vjp``, ``custom_jvp``, ``checkpoint``)
    is run again at the new level, as the composition runs it: its forward
    code one level down, in forward mode.  That is the one piece of the
    user's code run twice; if it draws random numbers the draws would differ,
    so that is refused."""
    forward = x_new._interp
    leaves, spec = tree_flatten(out)
    refs = [ref(leaf) for leaf in leaves]
    nodes = reachable([r[0] for r in refs if r is not None] + [in_node])
    calls = any(type(node[1]) is RulePrimitive for node in nodes)
    watch = None
    if calls:
        from ..compiler.randomness import RandomWatch

        watch = RandomWatch()  # (it visits every object of the process: once per function,
        on_calls = getattr(ref, "on_calls", None)  # which then runs the composition)
        if on_calls is not None:
            on_calls()
    carried = {}  # recorded seq -> (new value, new node); for a call: (its outputs, None)

    def carry(parent, index):
        """(value, (node, index) or None) of a recorded parent's output, carried."""
        value, node = carried[parent[0]]
        if node is None:  # an output of a call run again: a tracer of the new level, or a constant
            value = value[index]
            if type(value) is ReverseTracer and value._interp is interp:
                return value.primal, (value.node, value.index)
            return value, None
        value = value if index is None else value[index]
        return value, ((node, index) if tape else None)

    # New nodes are numbered as they are made, in the recorded order: the backward
    # pass visits nodes newest first.
    interp = ReverseInterpreter(name) if tape else None
    with interp or contextlib.nullcontext():  # (live: a call run again records at it)
        for node in nodes:
            seq, prim, params, primals, value, parents, needs = node
            if prim is None:  # the input, or a constant an in-place write lifted onto the tape
                if not tape:
                    carried[seq] = (x_new if node is in_node else value), _NO_NODE
                    continue
                tracer = interp.new_input(x_new if node is in_node else value)
                carried[seq] = (tracer.primal, tracer.node)
                continue
            if type(prim) is RulePrimitive:
                args = list(primals[:prim.n_args])
                for i, parent, index in parents:
                    if i < prim.n_args:
                        new_value, link = carry(parent, index)
                        args[i] = new_value if link is None else ReverseTracer(interp, new_value, *link)
                carried[seq] = (prim.call.reverse(interp, args) if tape else prim.call.forward(forward, args),
                                None)
                continue
            args = list(primals)
            links = []
            for i, parent, index in parents:
                args[i], link = carry(parent, index)
                if link is not None:
                    links.append((i,) + link)
            new_value = forward.known(prim, args, params, value)
            carried[seq] = (new_value, (_next_seq(), prim, params, tuple(args), new_value, tuple(links), needs)
                            if tape else _NO_NODE)
    if watch is not None and watch.changed():
        raise RandomnessError(
            f"{describe_stack()}: a custom_vjp, custom_jvp or checkpoint function drew random numbers. "
            "This derivative is computed from the function's tape, which runs such a function's forward "
            "code a second time (in forward mode), and the draws would differ. Draw outside it and pass "
            f"the numbers in, or {fix}.")
    new_leaves = []
    for leaf, r in zip(leaves, refs):
        if r is None:
            new_leaves.append(leaf)
            continue
        new_value, link = carry(*r)
        new_leaves.append(new_value if link is None else ReverseTracer(interp, new_value, *link))
    if not tape:
        return tree_unflatten(spec, new_leaves), None, None
    return tree_unflatten(spec, new_leaves), interp, carried[in_node[0]][1]


_NO_NODE = ("no node",)  # carried outputs without a new node (jacfwd)


def recorded_ref(interp, cache=None):
    """``ref`` for ``transplant``: the node of a leaf traced by ``interp``.  A
    tape with custom-rule calls turns ``cache`` off: its function then runs the
    plain composition, which runs each such call once."""

    def ref(leaf):
        if type(leaf) is ReverseTracer and leaf._interp is interp:
            return leaf.node, leaf.index
        return None

    if cache is not None:
        ref.on_calls = cache.deactivate
    return ref


# ---- jvp of grad (Hessian-vector products) ------------------------------------------------

def taped_grad_jvp(func, cache, x, t):
    """``jvp(grad(func), (x,), (t,))`` for a real array ``x``, from a tape: the
    ``(gradient, H t)`` pair, as ``trace_jvp`` returns it.  ``func`` runs once,
    under grad's level inside jvp's (idle) level, the stack it meets eagerly."""
    primal, tangent = taped(func, x, [JVPInterpreter("jvp"), ReverseInterpreter("grad")], cache, _grad_jvp_of_tape,
                            "jvp_grad", extra=(t,), scalar=True)
    return [primal], [tangent], _ONE_LEAF, None


def _grad_jvp_of_tape(out, ref, in_node, x, t):
    """(gradient, its tangent along ``t``) from the tape, as ``jvp(grad(f))`` computes them."""
    with JVPInterpreter("jvp") as forward:
        x_new = mark_input(JVPTracer(forward, snapshot(x), snapshot(t)), x)
        new_out, interp, new_in = transplant(out, ref, in_node, x_new)
        primal, pullback, _ = _traced_outputs(interp, new_out, None, False, "grad", _ONE_LEAF, [x_new], [new_in])
        _check_scalar(primal, "grad")
        (ct,) = pullback.flat([_seed(primal)])
        gradient = zeros_like(x_new) if ct is zero else ct
    (primal,), (tangent,), _, _ = traced_outputs(forward, gradient, False, "jvp")
    return primal, (zeros_like(primal) if tangent is zero else tangent)


# ---- grad of grad (second derivatives of scalar functions) --------------------------------

def taped_grad_grad(func, cache, x):
    """``grad(grad(func))(x)`` for a real 0-d array ``x``, from a tape.  ``func``
    runs once, under the inner grad's level inside the outer one's (idle), the
    stack it meets eagerly; the tape is then recorded again at the outer level
    (``transplant``), and the two backward passes run as in the composition."""
    return taped(func, x, [ReverseInterpreter("grad"), ReverseInterpreter("grad")], cache, _grad_grad_of_tape,
                 "grad_grad", scalar=True)


def _grad_grad_of_tape(out, ref, in_node, x):
    """The second derivative from the tape, by the steps of ``grad(grad(f))``:
    the inner grad's general path over the carried tape, then the outer's."""
    with ReverseInterpreter("grad") as outer:
        x_new = mark_input(outer.new_input(x), x)
        outer_in = x_new.node
        new_out, interp, new_in = transplant(
            out, ref, in_node, x_new, name="grad",
            fix="differentiate a function that calls the inner gradient, grad(lambda x: g(x)): that runs the "
                "plain composition")
        primal, pullback, _ = _traced_outputs(interp, new_out, None, False, "grad", _ONE_LEAF, [x_new], [new_in])
        _check_scalar(primal, "grad")
        (ct,) = pullback.flat([_seed(primal)])
        gradient = scalar_gradient(zeros_like(x_new) if ct is zero else ct, x_new)
    return _gradient_from(outer, gradient, None, x, outer_in, False, "grad", False)
