"""Staging: the fourth interpreter.  Instead of computing, it records.

A ``StagedTracer`` stands for a variable; applying a primitive to one
appends an equation ``(prim, inputs, params, outputs)`` to the interpreter's
list, and the outputs are new variables.  Output shapes and dtypes come from
running the primitive once: on the example values the tracers carry (``jit``
traces with the first call's arguments), or on zeros of the right shapes
when no value is known (``linearize``'s tangents).  ``replay`` evaluates the
equations later through ``bind``, so a replay can itself be transformed.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.context import Interpreter, describe_stack
from ..core.errors import ConcretizationError
from ..core.primitive import Primitive
from ..core.tracer import Tracer, snapshot
from ..core.values import dtype_of, shape_of

_next_id = itertools.count().__next__


class Var:
    """A staged value: its shape and dtype are known, its contents are not."""

    __slots__ = ("shape", "dtype", "id")

    def __init__(self, shape, dtype) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.id = _next_id()

    def __repr__(self) -> str:
        return f"v{self.id}:{self.dtype}{list(self.shape)}"


class Const:
    """An equation input that is known while staging (a primal, a parameter)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


class StagedTracer(Tracer):
    """A variable being recorded; ``value`` is an example value (or None)."""

    __slots__ = ("var", "value")

    def __init__(self, interp: "StagingInterpreter", var: Var, value=None) -> None:
        self._interp = interp
        self.var = var
        self.value = value

    @property
    def shape(self) -> tuple:
        return self.var.shape

    @property
    def dtype(self):
        return self.var.dtype

    def _concrete(self, kind: str):
        if not self._interp.alive:
            raise self._escaped()
        if kind in ("array", "index"):
            from ..core.conversions import conversion_fix
            from ..core.dispatch import twin_hint

            fix = conversion_fix(kind)
            if fix is not None:
                raise ConcretizationError(f"{describe_stack()}: np.asarray(x) of a value inside "
                                          f"{self._interp.transform}. {fix}{twin_hint()}")
        if self._interp.transform == "jit":
            raise ConcretizationError(
                f"{describe_stack()}: {kind}(x) of a value inside jit: the function is recorded "
                "once and replayed, so Python control flow cannot depend on array values. Use "
                "np.where(cond, a, b), or keep that part outside jit.")
        raise ConcretizationError(
            f"{describe_stack()}: the {self._interp.transform} computation needs the value of a "
            "tangent (through bool/float/np.asarray), which is not known while it is recorded. "
            "Derivative rules must not branch on tangent values.")


_identity = Primitive("identity", lambda x: x, jvp=lambda primals, tangents, out: tangents[0],
                      vjp=lambda g, primals, out, needs: (g,), batch=lambda vals, dims: (vals[0], dims[0]),
                      register=False)


class StagingInterpreter(Interpreter):
    __slots__ = ("eqns",)

    def __init__(self, transform: str) -> None:
        super().__init__(transform)
        self.eqns: list = []

    def new_var(self, shape, dtype, value=None) -> StagedTracer:
        return StagedTracer(self, Var(shape, dtype), value)

    def lift(self, value) -> StagedTracer:
        """A variable holding the constant ``value`` (for in-place writes of values
        that do not depend on the recorded inputs)."""
        tracer = self.new_var(shape_of(value), dtype_of(value), value)
        self.eqns.append((_identity, [Const(snapshot(value))], {}, [tracer.var]))
        return tracer

    def process(self, prim, args, params):
        inputs = []
        examples = []
        known = True
        for arg in args:
            if type(arg) is StagedTracer and arg._interp is self:
                inputs.append(arg.var)
                if arg.value is None:
                    known = False
                    examples.append(np.zeros(arg.var.shape, arg.var.dtype))
                else:
                    examples.append(arg.value)
            else:  # kept in the program: a private copy, which later writes cannot reach
                inputs.append(Const(snapshot(arg)))
                examples.append(arg)
        if known:
            out = prim.bind(*examples, **params)
        else:
            with np.errstate(all="ignore"):  # zeros are stand-ins: their warnings mean nothing
                out = prim.bind(*examples, **params)
        outs = out if prim.multiple_results else (out,)
        out_vars = [Var(shape_of(o), dtype_of(o)) for o in outs]
        self.eqns.append((prim, inputs, params, out_vars))
        tracers = tuple(StagedTracer(self, v, o if known else None) for v, o in zip(out_vars, outs))
        return tracers if prim.multiple_results else tracers[0]


def replay(eqns, env: dict, plain: bool = False):
    """Evaluate recorded equations; ``env`` maps input ``Var``s to values and
    receives every computed one.  ``plain``: every input and constant is a
    plain array, so each primitive's implementation is called directly."""
    for prim, inputs, params, out_vars in eqns:
        args = [env[i] if type(i) is Var else i.value for i in inputs]
        out = prim.impl(*args, **params) if plain else prim.bind(*args, **params)
        for var, value in zip(out_vars, out if prim.multiple_results else (out,)):
            env[var] = value
    return env
