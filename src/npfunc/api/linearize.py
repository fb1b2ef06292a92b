"""``linearize``: the JVP of a function at a point, recorded once."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..compiler import generate, optimize
from ..compiler.lower import lower
from ..compiler.program import Program, Var
from ..compiler.trace import holds_tracer
from ..core import debug
from ..core.errors import TangentError
from ..core.tracer import Tracer
from ..core.values import PYTHON_NUMBERS, dtype_of, shape_of
from ..interpreters.staging import StagedTracer, StagingInterpreter, replay
from ..primitives.elementwise.arithmetic import astype
from ._common import check_callable, check_differentiable, tree_flatten, tree_unflatten
from .forward import output_tangent, trace_jvp


def linearize(func: Callable, *primals):
    """``(func(*primals), jvp_fn)`` where ``jvp_fn(*tangents)`` is the JVP at
    ``primals``, evaluated without re-running the non-linear primal work.

    The tangent computation is recorded once (a staging interpreter under a
    JVP), optimised by jit's compiler passes, and run as generated NumPy code
    on plain tangents; under a transform it is replayed through the
    primitives, so ``jvp_fn`` can be transformed (``vmap(jvp_fn)`` gives many
    directions at once).

    >>> import numpy as np, npfunc
    >>> x = np.array([0.0, 1.0])
    >>> out, jvp_fn = npfunc.linearize(np.sin, x)
    >>> np.allclose(jvp_fn(np.ones(2)), np.cos(x))
    True
    """
    check_callable(func, "linearize")
    leaves, in_spec = tree_flatten(primals)
    leaves = check_differentiable(leaves, "linearize", lambda k: f"primal leaf {k}")
    with StagingInterpreter("linearize") as stage:
        tangents = [stage.new_var(shape_of(p), dtype_of(p)) for p in leaves]
        outs, touts, out_spec, _ = trace_jvp(func, leaves, tangents, in_spec, False, "linearize",
                                             hidden=True)
    in_vars = [t._var for t in tangents]
    # the tangent program, optimised; its outputs are the staged output tangents
    staged_outs = [t._var for t in touts if isinstance(t, StagedTracer) and t._interp is stage]
    program = Program(in_vars, stage.eqns, staged_outs)
    if holds_tracer(program):  # linearized at a traced point: replay as recorded
        compiled = None
    else:
        program = optimize(program)
        compiled = generate(lower(program), name="jvp_fn").fn
    position = {var: k for k, var in enumerate(staged_outs)}

    def jvp_fn(*tangent_args):
        t_leaves, t_spec = tree_flatten(tangent_args)
        if t_spec != in_spec:
            raise TangentError(
                f"linearize's jvp_fn: the tangents must have the structure of the primals, {in_spec}, "
                f"but got {t_spec}")
        for k, (t, p) in enumerate(zip(t_leaves, leaves)):
            if tuple(shape_of(t)) != tuple(shape_of(p)):
                raise TangentError(
                    f"linearize's jvp_fn: tangent leaf {k} has shape {tuple(shape_of(t))}, its primal "
                    f"{tuple(shape_of(p))}")
        # (a Python number becomes a 0-d array: the compiled program may reshape or index it)
        args = [np.asarray(t, v.dtype) if type(t) in PYTHON_NUMBERS else
                astype(t, v.dtype) if dtype_of(t) != v.dtype else t for v, t in zip(in_vars, t_leaves)]
        if compiled is None or debug.FLAGS.nans or any(isinstance(a, Tracer) for a in args):
            env = replay(program.eqns, dict(zip(in_vars, args)))  # through bind: transformable
            values = [env[o] if type(o) is Var else o.value for o in program.outputs]
        else:
            values = compiled(*args)
        results = []
        for o, t in zip(outs, touts):
            if isinstance(t, StagedTracer):
                t = values[position[t._var]]
            # (else zero, or not recorded: a constant tangent, never depending on the inputs')
            results.append(output_tangent(t, o))
        return tree_unflatten(out_spec, results)

    return tree_unflatten(out_spec, outs), jvp_fn
