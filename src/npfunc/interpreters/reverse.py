"""Reverse mode: a tape of nodes per level, replayed backwards with VJP rules.

Every primitive applied to this level's tracers records a node holding
the primitive, its params, its (unwrapped) arguments and output, and links to
the nodes of its traced arguments.  ``backward`` walks the nodes reachable
from the outputs in reverse creation order and calls each VJP rule.  The VJP
rules are made of primitives, so the backward pass can itself be
differentiated (``grad(grad(f))``) or batched (``vmap(vjp_fn)``): it simply
runs under whatever interpreters are live when it is called.
"""
from __future__ import annotations

import heapq
import itertools

import numpy as np

from ..core.context import Interpreter
from ..core.debug import FLAGS, NAN_CHECKS
from ..core.primitive import Primitive
from ..core.tracer import _TRACER_TYPES, PrimalTracer, Tracer, keep, snapshot
from ..core.values import NUMPY_TYPES, is_inexact
from ..core.zeros import add_any, zero

_next_seq = itertools.count().__next__
_new_tracer = object.__new__

# A node -- one recorded primitive application, or an input when ``prim`` is
# None -- is a tuple ``(seq, prim, params, primals, out, parents, needs)``:
# one is made per primitive application, and a tuple is the cheapest
# immutable record Python has.  ``seq`` orders nodes by creation (the backward
# pass visits them newest first) and keys their cotangents; ``parents`` holds
# one ``(argument index, parent node, parent output index)`` per traced
# argument, and ``needs[i]`` says whether argument ``i`` is one (what the VJP
# rule is told).  The output index of a value is None unless its node has
# several outputs (``prim.multiple_results``): the backward pass tells the two
# kinds of node apart by it, without looking at the primitive.
_NO_PARENTS = ()
_ONLY_ARGUMENT = (True,)
_BOTH_ARGUMENTS, _FIRST_ARGUMENT, _SECOND_ARGUMENT = (True, True), (True, False), (False, True)


class ReverseTracer(PrimalTracer):
    __slots__ = ("node", "index")

    def __init__(self, interp: "ReverseInterpreter", primal, node: tuple, index: int | None = None) -> None:
        self._interp = interp
        self.primal = primal
        self.node = node
        self.index = index


class ReverseInterpreter(Interpreter):
    __slots__ = ()
    watch_refusals = True

    def new_input(self, value) -> ReverseTracer:
        value = snapshot(value)
        return ReverseTracer(self, value, (_next_seq(), None, None, _NO_PARENTS, value, _NO_PARENTS, _NO_PARENTS))

    lift = new_input  # a constant is an input nobody asks the cotangent of

    def process(self, prim, args, params):
        if len(args) == 1:  # the argument is this level's tracer: bind chose this level for it
            arg = args[0]
            primal = arg.primal
            primals = (primal,)
            parents = ((0, arg.node, arg.index),)
            needs = _ONLY_ARGUMENT
            plain = type(prim) is Primitive and not isinstance(primal, Tracer)
        elif len(args) == 2:  # the commonest case after one argument: binary arithmetic
            x, y = args
            plain = type(prim) is Primitive
            if type(x) is ReverseTracer and x._interp is self:
                px = x.primal
                if type(y) is ReverseTracer and y._interp is self:
                    py = y.primal
                    parents = ((0, x.node, x.index), (1, y.node, y.index))
                    needs = _BOTH_ARGUMENTS
                else:
                    ty = type(y)
                    if ty is float or ty is np.float64 or ty is int:  # an immutable constant, kept as it is
                        py = y
                    elif isinstance(y, Tracer):  # an outer value kept on the tape: later writes must not reach it
                        py = snapshot(y)
                        plain = False
                    else:  # a constant kept on the tape: likewise
                        py = keep(y)
                    parents = ((0, x.node, x.index),)
                    needs = _FIRST_ARGUMENT
            else:  # then y is this level's tracer
                tx = type(x)
                if tx is float or tx is np.float64 or tx is int:  # an immutable constant, kept as it is
                    px = x
                elif isinstance(x, Tracer):  # an outer value kept on the tape: later writes must not reach it
                    px = snapshot(x)
                    plain = False
                else:  # a constant kept on the tape: likewise
                    px = keep(x)
                py = y.primal
                parents = ((1, y.node, y.index),)
                needs = _SECOND_ARGUMENT
            if plain and (isinstance(px, Tracer) or isinstance(py, Tracer)):
                plain = False
            primals = (px, py)
        else:
            primals = list(args)
            parents = []
            needs = [False] * len(args)
            plain = type(prim) is Primitive  # and no primal is traced: prim.bind is prim.impl
            i = 0
            for arg in args:
                if type(arg) is ReverseTracer and arg._interp is self:
                    primal = primals[i] = arg.primal
                    parents.append((i, arg.node, arg.index))
                    needs[i] = True
                    if plain and isinstance(primal, Tracer):
                        plain = False
                elif isinstance(arg, Tracer):  # an outer value kept on the tape: later writes must not reach it
                    primals[i] = snapshot(arg)
                    plain = False
                else:  # a constant kept on the tape: likewise
                    primals[i] = keep(arg)
                i += 1
        if not plain and len(primals) == 1 and type(prim) is Primitive and isinstance(primals[0], Tracer) \
                and primals[0]._interp.alive:
            out = primals[0]._interp.process(prim, primals, params)  # bind's choice, made here
        elif plain and not (NAN_CHECKS[0] and FLAGS.nans):
            if params:
                out = prim.impl(*primals, **params)
            elif prim.operator is not None and type(primals[0]) in NUMPY_TYPES:
                out = prim.operator(*primals)  # what impl computes (families.by_operator), one call shorter
            else:
                out = prim.impl(*primals)
        else:
            out = prim.bind(*primals, **params)
        if not prim.differentiable:
            return out
        if prim.multiple_results:
            node = (_next_seq(), prim, params, tuple(primals), out, tuple(parents), needs)
            return tuple(
                ReverseTracer(self, o, node, k) if is_inexact(o) else o for k, o in enumerate(out)
            )
        tout = type(out)
        if tout is np.float64 or (out.dtype.kind in "fc" if tout is np.ndarray or tout in _TRACER_TYPES
                                  else is_inexact(out)):
            tracer = _new_tracer(ReverseTracer)  # ReverseTracer(self, out, node), without __init__'s frame
            tracer._interp = self
            tracer.primal = out
            tracer.node = (_next_seq(), prim, params, primals, out, parents, needs)
            tracer.index = None
            return tracer
        return out

    def known(self, prim, args, params, out):
        """What ``process`` returns for ``prim(*args)`` when its primal output
        ``out`` is already known (computed by a level below that recorded it,
        whose copies of the constants the arguments are): a node is recorded,
        the primitive does not run (see api/tape_replay.py)."""
        primals, parents, needs = list(args), [], [False] * len(args)
        for i, arg in enumerate(args):
            if type(arg) is ReverseTracer and arg._interp is self:
                primals[i] = arg.primal
                parents.append((i, arg.node, arg.index))
                needs[i] = True
        if not parents or not prim.differentiable:
            return out
        node = (_next_seq(), prim, params, tuple(primals), out, tuple(parents), tuple(needs))
        if prim.multiple_results:
            return tuple(ReverseTracer(self, o, node, k) if is_inexact(o) else o for k, o in enumerate(out))
        return ReverseTracer(self, out, node) if is_inexact(out) else out

    def unwrap(self, value):
        """(primal, node, index) of ``value`` at this level; node is None for constants."""
        if isinstance(value, ReverseTracer) and value._interp is self:
            return value.primal, value.node, value.index
        return value, None, None


def _receive(cts, heap, node, index, ct):
    """Add ``ct`` to the cotangent of output ``index`` of ``node``; a node seen
    for the first time joins ``heap``.  (The backward loop inlines the case of
    a single-output node.)"""
    seq = node[0]
    if index is None:
        old = cts.get(seq)
        if old is None:
            cts[seq] = ct
            heapq.heappush(heap, (-seq, node))
        else:
            cts[seq] = add_any(old, ct)
        return
    slot = cts.get(seq)
    if slot is None:
        slot = cts[seq] = [zero] * len(node[4])
        heapq.heappush(heap, (-seq, node))
    slot[index] = add_any(slot[index], ct)


def backward(seeds, inputs):
    """Propagate cotangents from ``seeds`` to ``inputs``.

    ``seeds``: list of (node, output index, cotangent); ``inputs``: list of
    input nodes.  Returns one cotangent (or ``zero``) per input node.

    Nodes are visited newest first (a max-heap on creation order): a node's
    cotangent is complete once every later node has been processed.  Only
    nodes that actually receive a non-zero cotangent are ever visited.  A
    node's cotangent is kept under its ``seq``: the value itself for a
    primitive with one output, a list with one entry per output otherwise.
    """
    cts = {}
    heap = []
    for node, index, ct in seeds:
        if node is not None and ct is not zero:
            _receive(cts, heap, node, index, ct)

    results = {}
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        seq, prim, params, primals, out, parents, needs = pop(heap)[1]
        ct = cts.pop(seq)
        while True:  # along a chain: see the end of the loop
            if prim is None:  # an input
                results[seq] = ct
                break
            if prim.multiple_results:
                ct = tuple(ct)
            arg_cts = prim.vjp(ct, primals, out, needs, **params) if params else prim.vjp(ct, primals, out, needs)
            if heap or len(parents) != 1 or parents[0][2] is not None:
                break
            # Nothing else is pending and this node has one parent: no later node can add to
            # the parent's cotangent (any other node using it that received a cotangent
            # would be pending), so it is complete: go on with it, without the heap.
            i, parent, _ = parents[0]
            ct = arg_cts[i]
            if ct is zero:
                parents = _NO_PARENTS
                break
            seq, prim, params, primals, out, parents, needs = parent
        for i, parent, index in parents:
            c = arg_cts[i]
            if c is zero:
                continue
            if index is None:  # the commonest case, inline
                pseq = parent[0]
                old = cts.get(pseq)
                if old is None:
                    cts[pseq] = c
                    push(heap, (-pseq, parent))
                else:
                    cts[pseq] = add_any(old, c)
            else:
                _receive(cts, heap, parent, index, c)
    get = results.get
    return [get(node[0], zero) for node in inputs] if len(inputs) != 1 else [get(inputs[0][0], zero)]
