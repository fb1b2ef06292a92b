"""``jit``: record a function's primitives once, replay them on later calls.

Tracing runs the function on the first call's arguments under the staging
interpreter; later calls with arguments of the same structure, shapes and
dtypes replay the recorded primitives, skipping all the Python around them
(transform bookkeeping included).  ``jit(jacrev(f))`` therefore replays the
plain NumPy operations the Jacobian is made of.

Semantics to know:

* Python control flow cannot depend on array values (it raises); use
  ``np.where``.  Python side effects (``print``) happen when tracing only.
* Python scalars and other non-array arguments are static: a new value
  records a new trace.
* Arrays captured from enclosing scopes are used by reference.
* Random draws inside a jitted function raise (they would be frozen).
* When the trace depends on values of an enclosing transform (a closure
  over a traced value), it is not cached: every call re-records.

>>> import numpy as np, npfunc
>>> f = npfunc.jit(lambda x: np.tanh(x).sum())
>>> float(f(np.zeros(3))), float(f(np.ones(3)).round(4))
(0.0, 2.2848)
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ..core import debug
from ..core.tracer import Tracer
from ..core.values import dtype_of, shape_of
from ..interpreters.staging import Const, StagedTracer, StagingInterpreter, Var, replay
from ._common import check_callable, tree_flatten, tree_unflatten


def _is_array(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic, Tracer))


class _Trace:
    __slots__ = ("eqns", "in_vars", "outputs", "out_spec")

    def __init__(self, eqns, in_vars, outputs, out_spec) -> None:
        self.eqns = eqns
        self.in_vars = in_vars
        self.outputs = outputs  # a Var (computed) or a Const (independent of the inputs)
        self.out_spec = out_spec

    def run(self, arrays):
        # Constants are never traced in a cached trace, so plain inputs mean
        # plain values all the way through: skip dispatch.
        plain = not any(isinstance(a, Tracer) for a in arrays) and not debug.FLAGS.nans
        env = replay(self.eqns, dict(zip(self.in_vars, arrays)), plain)
        return tree_unflatten(self.out_spec, [env[o] if type(o) is Var else o.value
                                              for o in self.outputs])


def _record(func, leaves, spec):
    """Run ``func`` once under staging: (first outputs, trace or None if not cacheable)."""
    with StagingInterpreter("jit") as stage:
        wrapped = [stage.new_var(shape_of(x), dtype_of(x), x) if _is_array(x) else x for x in leaves]
        out = func(*tree_unflatten(spec, wrapped))
    out_leaves, out_spec = tree_flatten(out)
    outputs, values = [], []
    for leaf in out_leaves:
        if isinstance(leaf, StagedTracer) and leaf._interp is stage:
            outputs.append(leaf.var)
            values.append(leaf.value)
        else:
            outputs.append(Const(leaf))
            values.append(leaf)
    in_vars = [w.var for w in wrapped if isinstance(w, StagedTracer)]
    consts = [i.value for _, inputs, _, _ in stage.eqns for i in inputs if type(i) is Const]
    cacheable = not any(isinstance(c, Tracer) for c in consts + [o.value for o in outputs if type(o) is Const])
    trace = _Trace(stage.eqns, in_vars, outputs, out_spec) if cacheable else None
    return tree_unflatten(out_spec, values), trace


def jit(func: Callable) -> Callable:
    """``func`` recorded on its first call and replayed on the next (see module doc)."""
    check_callable(func, "jit")
    cache: dict = {}

    @functools.wraps(func)
    def wrapper(*args):
        leaves, spec = tree_flatten(args)
        key = (spec, tuple((tuple(shape_of(x)), dtype_of(x)) if _is_array(x) else ("static", x)
                           for x in leaves))
        try:
            trace = cache.get(key)
        except TypeError:  # an unhashable static argument: no caching
            trace, key = None, None
        if trace is not None:
            return trace.run([x for x in leaves if _is_array(x)])
        out, trace = _record(func, leaves, spec)
        if trace is not None and key is not None:
            cache[key] = trace
        return out

    wrapper.clear_cache = cache.clear  # type: ignore[attr-defined]
    return wrapper
