"""``closure_convert``: the traced values a function closes over, as explicit inputs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.context import describe_stack
from ..core.errors import ConcretizationError
from ..core.tracer import PrimalTracer, Tracer
from ..core.values import dtype_of, shape_of
from ._calls import CustomRuleError
from ._common import tree_flatten, tree_unflatten

__all__ = ["closure_convert", "concrete_example"]


def concrete_example(x):
    """A plain array with the value (or, when unknown, the shape) of ``x`` for one batch element."""
    from ..interpreters.batching import BatchTracer
    from ..interpreters.staging import StagedTracer
    from ..interpreters.structured import dense
    from ..primitives.indexing.gather import getitem

    while isinstance(x, Tracer):
        if isinstance(x, PrimalTracer):
            x = x.primal
        elif isinstance(x, BatchTracer):
            val = dense(x.val)
            if shape_of(val)[x.bdim] == 0:
                return np.zeros(x.shape, x.dtype)
            x = getitem(val, (slice(None),) * x.bdim + (0,))
        elif isinstance(x, StagedTracer):
            x = x._example if x._example is not None else np.zeros(x.shape, x.dtype)
        elif hasattr(x, "val"):  # functionalize
            x = x.val
        else:  # pragma: no cover - every interpreter's tracer is handled above
            return np.zeros(x.shape, x.dtype)
    return x


def closure_convert(fun: Callable, *example_args) -> tuple[Callable, list]:
    """``(converted, consts)`` with ``converted(*args, *consts) == fun(*args)``,
    where ``consts`` are the traced values ``fun`` closes over (as
    ``jax.closure_convert``).  Solvers pass ``consts`` on as explicit inputs,
    so their derivative rules see every traced value the function depends on.

    If ``fun`` closes over no traced value it is returned as it is (called as
    written, so Python control flow on argument values keeps working) with
    ``consts == []``.  Otherwise it is recorded once with the staging
    interpreter and replayed; control flow on argument values then raises
    and the message says to pass the traced values as arguments instead.

    >>> import numpy as np, npfunc
    >>> from npfunc.api.closure import closure_convert
    >>> def outer(w):
    ...     f, consts = closure_convert(lambda x: w * x, np.ones(2))
    ...     return f(np.arange(2.0), *consts).sum()
    >>> npfunc.grad(outer)(np.array([1.0, 2.0]))
    array([0., 1.])
    """
    from ..interpreters.staging import Const, Eqn, StagedTracer, StagingInterpreter, Var, replay

    leaves, in_spec = tree_flatten(example_args)
    plain = [concrete_example(x) for x in leaves]
    with np.errstate(all="ignore"):
        probe = fun(*tree_unflatten(in_spec, plain))
    if not any(isinstance(o, Tracer) for o in tree_flatten(probe)[0]):
        return fun, []
    try:
        with StagingInterpreter("closure_convert") as stage:
            wrapped = [stage.new_var(shape_of(x), dtype_of(x), None) if _is_arraylike(x) else x
                       for x in plain]
            out = fun(*tree_unflatten(in_spec, wrapped))
    except ConcretizationError as err:
        raise CustomRuleError(
            f"{describe_stack()}: {getattr(fun, '__name__', 'the function')} closes over a traced "
            "value and branches on the value of its arguments (if/while/float on them), so npfunc "
            "cannot separate the two. Pass the traced values it closes over as arguments (args=...) "
            "instead of closing over them.") from err
    out_leaves, out_spec = tree_flatten(out)
    const_vars: dict[int, Var] = {}
    consts: list = []

    def hoist(value):
        var = const_vars.get(id(value))
        if var is None:
            var = const_vars[id(value)] = Var(shape_of(value), dtype_of(value))
            consts.append(value)
        return var

    eqns = []
    for eqn in stage.eqns:
        inputs = [hoist(i.value) if type(i) is Const and isinstance(i.value, Tracer) else i for i in eqn.inputs]
        eqns.append(Eqn(eqn.prim, inputs, eqn.params, eqn.outs))
    outputs = []
    for o in out_leaves:
        if isinstance(o, StagedTracer) and o._interp is stage:
            outputs.append(o._var)
        elif isinstance(o, Tracer):
            outputs.append(hoist(o))
        else:
            outputs.append(Const(o))
    in_vars = [w._var if isinstance(w, StagedTracer) else None for w in wrapped]
    hoisted = [const_vars[id(c)] for c in consts]
    n_in = len(leaves)

    def converted(*args):
        arg_leaves, spec = tree_flatten(args[:len(args) - len(consts)])
        if spec != in_spec:
            raise CustomRuleError(f"closure_convert: called with structure {spec}, recorded {in_spec}")
        env = {v: x for v, x in zip(in_vars, arg_leaves) if v is not None}
        env.update(zip(hoisted, args[len(args) - len(consts):]))
        replay(eqns, env)
        return tree_unflatten(out_spec, [env[o] if type(o) is Var else o.value for o in outputs])

    converted.__name__ = getattr(fun, "__name__", "converted")
    assert n_in == len(in_vars)
    return converted, consts


def _is_arraylike(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) or (isinstance(x, (int, float, complex)) and not isinstance(x, bool))
