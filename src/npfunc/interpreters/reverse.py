"""Reverse mode: a tape of nodes per level, replayed backwards with VJP rules.

Every primitive applied to this level's tracers records a ``Node`` holding
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
from ..core.debug import FLAGS
from ..core.primitive import Primitive
from ..core.tracer import PrimalTracer, Tracer, snapshot
from ..core.values import is_inexact
from ..core.zeros import add_any, zero

_next_seq = itertools.count().__next__


class Node:
    """One recorded primitive application (or an input when ``prim`` is None)."""

    __slots__ = ("prim", "params", "primals", "out", "parents", "seq", "n_out")

    def __init__(self, prim, params, primals, out, parents, n_out=1) -> None:
        self.prim = prim
        self.params = params
        self.primals = primals
        self.out = out
        self.parents = parents  # tuple of (argument index, parent node, parent output index)
        self.n_out = n_out
        self.seq = _next_seq()


class ReverseTracer(PrimalTracer):
    __slots__ = ("node", "index")

    def __init__(self, interp: "ReverseInterpreter", primal, node: Node, index: int = 0) -> None:
        self._interp = interp
        self.primal = primal
        self.node = node
        self.index = index


class ReverseInterpreter(Interpreter):
    __slots__ = ()

    def new_input(self, value) -> ReverseTracer:
        value = snapshot(value)
        return ReverseTracer(self, value, Node(None, None, (), value, ()))

    lift = new_input  # a constant is an input nobody asks the cotangent of

    def process(self, prim, args, params):
        primals = list(args)
        parents = []
        plain = type(prim) is Primitive  # and no primal is traced: prim.bind is prim.impl
        for i, arg in enumerate(args):
            if type(arg) is ReverseTracer and arg._interp is self:
                primal = primals[i] = arg.primal
                parents.append((i, arg.node, arg.index))
                if plain and isinstance(primal, Tracer):
                    plain = False
            elif isinstance(arg, Tracer):  # an outer value kept on the tape: later writes must not reach it
                primals[i] = snapshot(arg)
                plain = False
        out = prim.impl(*primals, **params) if plain and not FLAGS.nans else prim.bind(*primals, **params)
        if not prim.differentiable:
            return out
        if prim.multiple_results:
            node = Node(prim, params, tuple(primals), out, tuple(parents), len(out))
            return tuple(
                ReverseTracer(self, o, node, k) if is_inexact(o) else o for k, o in enumerate(out)
            )
        tout = type(out)
        if not (tout is np.float64 or (out.dtype.kind in "fc" if tout is np.ndarray else is_inexact(out))):
            return out
        return ReverseTracer(self, out, Node(prim, params, primals, out, parents))

    def unwrap(self, value):
        """(primal, node, index) of ``value`` at this level; node is None for constants."""
        if isinstance(value, ReverseTracer) and value._interp is self:
            return value.primal, value.node, value.index
        return value, None, 0


def backward(seeds, inputs):
    """Propagate cotangents from ``seeds`` to ``inputs``.

    ``seeds``: list of (node, output index, cotangent); ``inputs``: list of
    input nodes.  Returns one cotangent (or ``zero``) per input node.

    Nodes are visited newest first (a max-heap on creation order): a node's
    cotangent is complete once every later node has been processed.  Only
    nodes that actually receive a non-zero cotangent are ever visited.
    """
    cts: dict[Node, list] = {}
    heap = []
    for node, index, ct in seeds:
        if node is None or ct is zero:
            continue
        slot = cts.get(node)
        if slot is None:
            slot = cts[node] = [zero] * node.n_out
            heap.append((-node.seq, node))
        slot[index] = add_any(slot[index], ct)
    heapq.heapify(heap)

    results = {}
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        node = pop(heap)[1]
        ct = cts.pop(node)
        prim = node.prim
        if prim is None:  # an input
            results[node] = ct[0]
            continue
        g = tuple(ct) if prim.multiple_results else ct[0]
        parents = node.parents
        needs = [False] * len(node.primals)
        for i, _, _ in parents:
            needs[i] = True
        arg_cts = prim.vjp(g, node.primals, node.out, needs, **node.params)
        for i, parent, index in parents:
            c = arg_cts[i]
            if c is zero:
                continue
            slot = cts.get(parent)
            if slot is None:
                slot = cts[parent] = [zero] * parent.n_out
                push(heap, (-parent.seq, parent))
                slot[index] = c
            else:
                slot[index] = add_any(slot[index], c)
    return [results.get(node, zero) for node in inputs]
