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

import itertools

from ..core.context import Interpreter
from ..core.tracer import PrimalTracer
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
        return ReverseTracer(self, value, Node(None, None, (), value, ()))

    def process(self, prim, args, params):
        primals = []
        parents = []
        for i, arg in enumerate(args):
            if isinstance(arg, ReverseTracer) and arg._interp is self:
                primals.append(arg.primal)
                parents.append((i, arg.node, arg.index))
            else:
                primals.append(arg)
        out = prim.bind(*primals, **params)
        if not prim.differentiable:
            return out
        if prim.multiple_results:
            node = Node(prim, params, tuple(primals), out, tuple(parents), len(out))
            return tuple(
                ReverseTracer(self, o, node, k) if is_inexact(o) else o for k, o in enumerate(out)
            )
        if not is_inexact(out):
            return out
        return ReverseTracer(self, out, Node(prim, params, tuple(primals), out, tuple(parents)))

    def unwrap(self, value):
        """(primal, node, index) of ``value`` at this level; node is None for constants."""
        if isinstance(value, ReverseTracer) and value._interp is self:
            return value.primal, value.node, value.index
        return value, None, 0


def backward(seeds, inputs):
    """Propagate cotangents from ``seeds`` to ``inputs``.

    ``seeds``: list of (node, output index, cotangent); ``inputs``: list of
    input nodes.  Returns one cotangent (or ``zero``) per input node.
    """
    cts: dict[Node, list] = {}
    for node, index, ct in seeds:
        if node is None or ct is zero:
            continue
        slot = cts.setdefault(node, [zero] * node.n_out)
        slot[index] = add_any(slot[index], ct)

    # Reachable nodes, processed from the newest: a node's cotangent is
    # complete once every node created after it has been processed.
    seen = set()
    stack = list(cts)
    order = []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        for _, parent, _ in node.parents:
            if parent not in seen:
                stack.append(parent)
    order.sort(key=lambda n: n.seq, reverse=True)

    input_set = set(inputs)
    results = {}
    for node in order:
        ct = cts.pop(node, None)
        if node in input_set:
            results[node] = ct[0] if ct is not None else zero
            continue
        if ct is None or node.prim is None:
            continue
        g = tuple(ct) if node.n_out > 1 or node.prim.multiple_results else ct[0]
        if g is zero or (isinstance(g, tuple) and all(c is zero for c in g)):
            continue
        needs = [False] * len(node.primals)
        for i, _, _ in node.parents:
            needs[i] = True
        arg_cts = node.prim.vjp(g, node.primals, node.out, needs, **node.params)
        for i, parent, index in node.parents:
            c = arg_cts[i]
            if c is zero:
                continue
            slot = cts.setdefault(parent, [zero] * parent.n_out)
            slot[index] = add_any(slot[index], c)
    return [results.get(node, zero) for node in inputs]
