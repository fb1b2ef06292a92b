"""Rule builders for primitives whose JVP is easier to state than its VJP.

``transposed_vjp(jvp_rule)`` turns a JVP rule (linear in the tangents, as
every JVP is) into the VJP rule by running npfunc's reverse mode on it: the
transpose of a linear map is its pullback.  The JVP rules of the SciPy
decompositions (lu, schur, hessenberg) are short recurrences; writing their
adjoints by hand would double the code and the places for a sign error.
Because the rule is traced with npfunc operations, the VJP is itself
differentiable and batchable like any other.

``loop_batch(prim)`` is the batch rule of a primitive that only has a
one-problem implementation (SciPy's routines that LAPACK does not batch):
each batch element is bound separately and the results are stacked.  It is
used only where no vectorised formulation exists and the per-problem work
dominates the Python overhead; the module using it says so.
"""
from __future__ import annotations

from typing import Callable

from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import move_to_front
from ..elementwise.arithmetic import zeros_like


def _inexact(x) -> bool:
    return dtype_of(x).kind in "fc"


def transposed_vjp(jvp_rule: Callable, name: str, multiple_results: bool = False) -> Callable:
    """The VJP rule of a primitive whose ``jvp_rule`` is given (see module doc).

    Integer outputs (permutations, pivots) carry no cotangent; integer inputs
    get none.
    """

    def vjp(g, primals, out, needs, **params):
        from ...api.reverse import trace_vjp

        wanted = [i for i, p in enumerate(primals) if needs[i] and _inexact(p)]
        outs = list(out) if multiple_results else [out]
        gs = list(g) if multiple_results else [g]
        live = [k for k, (o, c) in enumerate(zip(outs, gs)) if _inexact(o) and c is not zero]
        if not wanted or not live:
            return tuple(zero for _ in primals)

        def linear(*ts):
            full = [zero] * len(primals)
            for i, t in zip(wanted, ts):
                full[i] = t
            t_out = jvp_rule(tuple(primals), tuple(full), out, **params)
            t_outs = list(t_out) if multiple_results else [t_out]
            return [zeros_like(outs[k]) if t_outs[k] is zero else t_outs[k] for k in live]

        _, pullback, _ = trace_vjp(linear, tuple(zeros_like(primals[i]) for i in wanted), False, name,
                                   hidden=True)
        cts = pullback.flat([gs[k] for k in live])
        result = [zero] * len(primals)
        for i, c in zip(wanted, cts):
            result[i] = c
        return tuple(result)

    return vjp


def loop_batch(prim, n_args: int | None = None) -> Callable:
    """A batch rule binding ``prim`` once per batch element (see module doc)."""
    from ..shape.basic import stack

    def batch(vals, dims, **params):
        size = next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)
        fronts = [v if d is None else move_to_front(v, d) for v, d in zip(vals, dims)]
        rows = [prim.bind(*[v if d is None else v[b] for v, d in zip(fronts, dims)], **params)
                for b in range(size)]
        if prim.multiple_results:
            outs = tuple(stack([r[k] for r in rows]) for k in range(len(rows[0])))
            return outs, (0,) * len(outs)
        return stack(rows), 0

    return batch
