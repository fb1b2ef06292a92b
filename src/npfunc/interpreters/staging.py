"""Staging: the fourth interpreter.  Instead of computing, it records.

A ``StagedTracer`` stands for a variable; applying a primitive to one
appends an equation ``Eqn(prim, inputs, params, outs)`` to the interpreter's
list, and the outputs are new variables.  Output shapes and dtypes come from
running the primitive once: on the example values the tracers carry (``jit``
traces with the first call's arguments), or on zeros of the right shapes
when no value is known (``linearize``'s tangents).  ``replay`` evaluates the
equations later through ``bind``, so a replay can itself be transformed;
``npfunc.compiler`` optimises the equations and turns them into Python code.

Each variable remembers which staged inputs it was computed from
(``Var.src``), so an error raised while recording can name the argument.
The tracer's own fields are ``_var`` and ``_example``: a staged value must
keep every ndarray method (``x.var()``), so no slot may shadow one.
"""
from __future__ import annotations

import itertools

import weakref

import numpy as np

from ..core import array_hooks
from ..core.context import Interpreter, describe_stack
from ..core.errors import ConcretizationError, UnsupportedOperationError
from ..core.primitive import Primitive
from ..core.tracer import Tracer, may_change, snapshot
from ..core.values import dtype_of, shape_of

_next_id = itertools.count().__next__

#: Primitives whose output *shape* depends on the input values: a recording
#: would freeze the first call's shape, so they cannot be staged.
VALUE_DEPENDENT_SHAPES = frozenset({"unique"})

_NO_SRC: frozenset = frozenset()


class Var:
    """A staged value: its shape and dtype are known, its contents are not.

    ``src`` names the staged inputs it was computed from (for messages);
    ``errstate`` is the ``np.errstate`` the function set around the operation
    that computed it, when it differs from its caller's (replays restore it),
    else None."""

    __slots__ = ("shape", "dtype", "id", "src", "errstate")

    def __init__(self, shape, dtype, src: frozenset = _NO_SRC) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.id = _next_id()
        self.src = src
        self.errstate = None

    @property
    def aval(self) -> str:
        """``f64[3,4]``: the dtype and shape, as the program printer writes them."""
        return f"{_short_dtype(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __repr__(self) -> str:
        return f"v{self.id}:{self.aval}"


_SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "complex128": "c128",
          "complex64": "c64", "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8",
          "uint8": "u8", "bool": "bool"}


def _short_dtype(dtype) -> str:
    return _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


class Const:
    """An equation input that is known while staging (a primal, a parameter)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, (np.ndarray, np.generic)) and np.ndim(v):
            return f"const:{_short_dtype(v.dtype)}[{','.join(map(str, np.shape(v)))}]"
        return repr(v.item() if isinstance(v, (np.ndarray, np.generic)) else v)


class Eqn:
    """One recorded primitive application: ``outs = prim(*inputs, **params)``."""

    __slots__ = ("prim", "inputs", "params", "outs")

    def __init__(self, prim, inputs, params, outs) -> None:
        self.prim = prim
        self.inputs = list(inputs)
        self.params = params
        self.outs = list(outs)

    def __repr__(self) -> str:
        return f"Eqn({self.outs} = {self.prim.name}{self.inputs})"


class StagedTracer(Tracer):
    """A variable being recorded; ``_example`` is an example value (or None)."""

    __slots__ = ("_var", "_example")

    def __init__(self, interp: "StagingInterpreter", var: Var, example=None) -> None:
        self._interp = interp
        self._var = var
        self._example = example

    @property
    def shape(self) -> tuple:
        return self._var.shape

    @property
    def dtype(self):
        return self._var.dtype

    def _concrete(self, kind: str):
        interp = self._interp
        if not interp.alive:
            raise self._escaped()
        what = {"array": "np.asarray(x)", "item": "x.item()", "tolist": "x.tolist()",
                "index": "using x as an index"}.get(kind, f"{kind}(x)")
        fix = None
        if kind in ("array", "index", "float", "int", "complex"):  # (a[i] = x asks for a number too)
            from ..core.conversions import conversion_advice, probing

            if kind == "array" and probing():  # np.array's wrapper catches this and stacks instead
                raise ConcretizationError("a recorded value refuses to become a plain array")
            fix = conversion_advice(kind, dtype=self._var.dtype) or None
        if fix is not None:
            err = ConcretizationError(f"{describe_stack()}: {what} of a value inside {interp.transform}. {fix}")
        elif kind == "format" and interp.transform == "jit":
            err = ConcretizationError(
                f"{describe_stack()}: format(x) (an f-string or format() with a spec) needs the value of an "
                f"array computed from {describe_src(self._var.src)}, but jit records the function once and "
                "replays it, so the number is not known (and the string would be made once, while "
                "recording). Return the value and format it outside jit.")
        elif interp.transform == "jit":
            err = ConcretizationError(
                f"{describe_stack()}: {what} needs the value of an array computed from "
                f"{describe_src(self._var.src)}, but jit records the function once and replays "
                "it, so Python control flow and shapes cannot depend on array values. Use "
                "np.where(cond, a, b) instead of if/else; if the value is a flag or a size, mark "
                f"the argument static (jit(f, static_argnums=...)); or keep that part outside jit.")
        else:
            err = ConcretizationError(
                f"{describe_stack()}: the {interp.transform} computation needs the value of a "
                f"tangent (through {what}), which is not known while it is recorded. "
                "Derivative rules must not branch on tangent values.")
        if not getattr(array_hooks.probing, "depth", 0):  # (np.array's own refusals are handled)
            from ..core.conversions import lazy_probe_refusal, probed_by_array_api

            # SciPy's is_lazy_array probe catches the refusal and takes its lazy path (no value
            # checks or warnings): reported on leaving, naming the SciPy function
            msg = lazy_probe_refusal(interp.transform) if probed_by_array_api() else str(err)
            interp.refused = interp.refused or msg
        raise err


def describe_src(src) -> str:
    """``argument 0 ('x')`` / ``arguments 0 ('x') and 1 ('y')`` for a set of input names."""
    names = sorted(src)
    if not names:
        return "the arguments"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


_identity = Primitive("identity", lambda x: x, jvp=lambda primals, tangents, out: tangents[0],
                      vjp=lambda g, primals, out, needs: (g,), batch=lambda vals, dims: (vals[0], dims[0]),
                      register=False)


class StagingInterpreter(Interpreter):
    """Records equations.  ``refused`` keeps the first concretization refused
    while recording, so a caller can tell that a function swallowed it (and
    took a different path than the plain function would)."""

    copies_values = True  # the generated program returns plain arrays: x.copy() must copy
    __slots__ = ("eqns", "_kept", "_errstate", "_state")

    def __init__(self, transform: str) -> None:
        super().__init__(transform)
        self.eqns: list[Eqn] = []
        self.refused: str | None = None
        # id of a plain array -> (its copy as kept, a weak reference to the array: its id stays
        # its own while it lives, and a buffer written later, core/pending.py, is not held)
        self._kept: dict = {}
        self._errstate = np.geterr()  # the caller's: replays run under the errstate of their call
        self._state = self._errstate  # the last other one seen, shared by the variables it applies to

    def _constant(self, value):
        """``value`` as the program keeps it: a traced value's private copy, and a
        plain array that may still change copied as it is now (the function, or
        its caller, may write into it after this use), once per contents."""
        if isinstance(value, Tracer):
            return snapshot(value)
        if type(value) is not np.ndarray or not may_change(value):
            return value
        hit = self._kept.get(id(value))
        if hit is None or hit[1]() is not value or hit[0].tobytes() != value.tobytes():
            kept = value.copy(order="K")
            kept.flags.writeable = False  # (so later passes need not copy it again)
            hit = self._kept[id(value)] = (kept, weakref.ref(value))
        return hit[0]

    def new_var(self, shape, dtype, example=None, name: str | None = None) -> StagedTracer:
        return StagedTracer(self, Var(shape, dtype, frozenset((name,)) if name else _NO_SRC), example)

    def lift(self, value) -> StagedTracer:
        """A variable holding the constant ``value`` (for in-place writes of values
        that do not depend on the recorded inputs)."""
        tracer = self.new_var(shape_of(value), dtype_of(value), value)
        self.eqns.append(Eqn(_identity, [Const(self._constant(value))], {}, [tracer._var]))
        return tracer

    def process(self, prim, args, params):
        inputs = []
        examples = []
        known = True
        src = _NO_SRC
        for arg in args:
            if type(arg) is StagedTracer and arg._interp is self:
                var = arg._var
                inputs.append(var)
                if var.src:
                    src = src | var.src if src else var.src
                if arg._example is None:
                    known = False
                    examples.append(np.zeros(var.shape, var.dtype))
                else:
                    examples.append(arg._example)
            else:  # kept in the program: a private copy, which later writes cannot reach
                inputs.append(Const(self._constant(arg)))
                examples.append(arg)
        if prim.name in VALUE_DEPENDENT_SHAPES:
            self._refuse_value_dependent(prim, src)
        state = np.geterr()
        if state == self._errstate:
            state = None
        else:
            if known:
                self._refuse_raising_errstate(prim, state)
            if state == self._state:
                state = self._state
            self._state = state
        if known:
            out = prim.bind(*examples, **params)
        else:
            with np.errstate(all="ignore"):  # zeros are stand-ins: their warnings mean nothing
                out = prim.bind(*examples, **params)
        outs = out if prim.multiple_results else (out,)
        out_vars = [Var(shape_of(o), dtype_of(o), src) for o in outs]
        if state is not None:  # set by the function around this operation: replays restore it
            for var in out_vars:
                var.errstate = state
        self.eqns.append(Eqn(prim, inputs, params, out_vars))
        tracers = tuple(StagedTracer(self, v, o if known else None) for v, o in zip(out_vars, outs))
        return tracers if prim.multiple_results else tracers[0]

    def _refuse_raising_errstate(self, prim, state):
        """An np.errstate(...='raise') set inside the function (``state``, NumPy's now): the
        program keeps the operations, not the errstate, so a replay would not raise where NumPy
        does (and a function that catches FloatingPointError would lose its except branch)."""
        raising = sorted(k for k, v in state.items() if v in ("raise", "call") and self._errstate[k] != v)
        if not raising:
            return  # only warnings differ: replays restore the errstate (Var.errstate)
        modes = ", ".join(f"{k}={state[k]!r}" for k in raising)
        msg = (f"{describe_stack()}: np.{prim.name} runs under np.errstate({modes}) set inside the "
               f"function, which {self.transform} cannot replay (it records the NumPy operations, not "
               "the errstate), so a FloatingPointError NumPy raises, and an except branch catching it, "
               f"would be lost. Keep np.errstate (and any try/except FloatingPointError) outside the "
               f"{self.transform}-ed function, around the call, whose errstate the replay follows.")
        self.refused = self.refused or msg
        raise UnsupportedOperationError(msg)

    def _refuse_value_dependent(self, prim, src):
        msg = (f"{describe_stack()}: np.{prim.name} of an array computed from {describe_src(src)} "
               f"has a shape that depends on the values, which a recording cannot keep "
               f"({self.transform} records once and replays). Mark the argument static "
               "(jit(f, static_argnums=...)) if it is fixed, or keep that part outside jit.")
        self.refused = self.refused or msg
        raise ConcretizationError(msg)


def replay(eqns, env: dict, plain: bool = False):
    """Evaluate recorded equations; ``env`` maps input ``Var``s to values and
    receives every computed one.  ``plain``: every input and constant is a
    plain array, so each primitive's implementation is called directly."""
    for eqn in eqns:
        args = [env[i] if type(i) is Var else i.value for i in eqn.inputs]
        prim = eqn.prim
        if eqn.outs[0].errstate is not None:
            with np.errstate(**eqn.outs[0].errstate):
                out = prim.impl(*args, **eqn.params) if plain else prim.bind(*args, **eqn.params)
        else:
            out = prim.impl(*args, **eqn.params) if plain else prim.bind(*args, **eqn.params)
        if prim.multiple_results:
            for var, value in zip(eqn.outs, out):
                env[var] = value
        else:
            env[eqn.outs[0]] = out
    return env


def var_of(x):
    """The ``Var`` of a staged value, or None for anything else."""
    return x._var if type(x) is StagedTracer else None


def example_of(x):
    """The example value a staged value carries (None when not known)."""
    return x._example
