"""Recording a function into a ``Program``: what ``jit`` does on a cache miss.

``record(call, leaves, names)`` runs ``call`` once under the staging
interpreter, with the array leaves as staged inputs carrying their values
as examples, and returns a ``Recording``:

* the program (inputs, equations, outputs); arrays the function read from
  elsewhere (closures, globals, attributes) are constants of the program,
  copied when recorded (a *snapshot*: later changes to them are not seen);
* the outputs of this first call (computed on the example values, so they
  are exactly the plain function's);
* the inputs the function updated in place (``x += y``, ``x[i] = v``,
  ``np.copyto(x, v)``, ``out=x``): the staged input then holds a new
  variable, which becomes an extra output of the program, written back to
  the caller's array on every call;
* whether the program can be cached: not when it read a value traced by an
  enclosing transform (a closure over an outer traced value).

Recording refuses what a replay could not repeat: random draws (any
generator's state changed), and a function that caught a refused
concretization and carried on along another path.

>>> import numpy as np
>>> rec = record(lambda leaves: np.sin(leaves[0]) * 2.0, [np.zeros(2)], ["x"])
>>> print(rec.program)
{ lambda a:f64[2] .
    b:f64[2] = sin a
    c:f64[2] = multiply b 2.0
  in (c) }
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..core.context import describe_stack
from ..core.errors import ConcretizationError, NpfuncError, OutputTypeError, RandomnessError
from ..core.tracer import Tracer
from ..core.values import dtype_of, shape_of
from ..interpreters.staging import StagedTracer, StagingInterpreter, describe_src
from .program import Const, Eqn, Program, Var
from ..primitives.indexing.aliasing import Alias
from .randomness import RandomWatch, fresh_entropy
from ..primitives.indexing.aliasing import mark_input

__all__ = ["record", "Recording", "is_traced_leaf", "snapshot", "holds_tracer"]


def is_traced_leaf(x) -> bool:
    """Arrays (plain, NumPy scalars, traced values) are staged; anything else is static."""
    return isinstance(x, (Tracer, np.ndarray, np.generic))


class Recording:
    """What one recording produced (see the module doc)."""

    __slots__ = ("program", "n_out", "out_spec", "first", "mutated", "cacheable", "fresh", "views")

    def __init__(self, program, n_out, out_spec, first, mutated, cacheable, fresh=(), views=()) -> None:
        self.program = program      # outputs: the function's, then the mutated inputs' new values
        self.n_out = n_out
        self.out_spec = out_spec
        self.first = first          # the outputs of the recording call (flat)
        self.mutated = mutated      # [(leaf index, new value of the recording call)]
        self.cacheable = cacheable
        self.fresh = tuple(fresh)   # outputs NumPy makes new arrays (not views of an argument)
        #: outputs NumPy gives as an argument itself or a view of it: (output index, leaf
        #: index, the view's operations from the argument), made from the caller's array;
        #: and (output index, None, earlier output index) for one object returned twice
        self.views = tuple(views)


def _keeps_changing(value) -> bool:
    """False only for arrays whose contents cannot change (read-only, owning their data)."""
    return isinstance(value, np.ndarray) and (value.flags.writeable or value.base is not None)


def snapshot(program: Program) -> Program:
    """The program with every constant array copied, so it no longer follows the original."""
    memo: dict = {}

    def frozen(atom):
        if type(atom) is not Const or not _keeps_changing(atom.value):
            return atom
        hit = memo.get(id(atom.value))
        if hit is None:
            hit = memo[id(atom.value)] = (Const(atom.value.copy(order="K")), atom.value)
        return hit[0]

    eqns = []
    for eqn in program.eqns:
        inputs = [frozen(i) for i in eqn.inputs]
        eqns.append(eqn if all(a is b for a, b in zip(inputs, eqn.inputs))
                    else Eqn(eqn.prim, inputs, eqn.params, eqn.outs))
    return Program(program.in_vars, eqns, [frozen(o) for o in program.outputs])


def holds_tracer(program: Program) -> bool:
    """True if a constant of the program is a value traced by some transform."""
    for eqn in program.eqns:
        for i in eqn.inputs:
            if type(i) is Const and isinstance(i.value, Tracer):
                return True
    return any(type(o) is Const and isinstance(o.value, Tracer) for o in program.outputs)


def _holds_traced(obj, depth: int = 2) -> bool:
    """Whether an object the function returned (not an array) holds traced values in
    its items, its fields or its attributes (SciPy's result objects, the user's own)."""
    if isinstance(obj, Tracer):
        return True
    if depth == 0 or obj is None or isinstance(obj, (str, bytes, int, float, complex, np.ndarray, np.generic)):
        return False
    if isinstance(obj, dict):
        values = list(obj.values())
    elif isinstance(obj, (tuple, list)):
        values = list(obj)
    else:
        values = list(getattr(obj, "__dict__", {}).values())
        values += [getattr(obj, a, None) for a in getattr(type(obj), "__slots__", ()) if isinstance(a, str)]
    return any(_holds_traced(v, depth - 1) for v in values)


def record(call, leaves: list, names: list, transform: str = "jit", watch_random: bool = True) -> Recording:
    """Record ``call(staged_leaves)`` (see the module doc).  ``names[k]`` describes
    leaf ``k`` for error messages; leaves that are the same object are staged
    as one value, so an in-place update through one name is seen by the other.
    ``watch_random=False`` skips the check for random draws (it visits every
    object of the process): for calls that run only npfunc's own rules."""
    watch = RandomWatch() if watch_random else None
    with StagingInterpreter(transform) as stage:
        wrapped, staged, by_id = [], [], {}
        for k, x in enumerate(leaves):
            if not is_traced_leaf(x):
                wrapped.append(x)
                continue
            same = by_id.get(id(x))
            if same is None:
                same = by_id[id(x)] = stage.new_var(shape_of(x), dtype_of(x), x, names[k])
                mark_input(same, x)  # its layout decides NumPy's views and copies (part of the key)
                staged.append((k, same, same._var))
            wrapped.append(same)
        try:
            with fresh_entropy() if watch_random else contextlib.nullcontext([]) as seeded:
                out = call(wrapped)
        except NpfuncError:  # npfunc's own errors say what went wrong
            raise
        except Exception as err:
            if stage.refused is None:
                raise
            # the function caught a refusal and then failed another way: the refusal is the cause
            raise ConcretizationError(
                f"{stage.refused} (The function caught this error and then raised "
                f"{type(err).__name__}: {err})") from err
    if seeded:
        raise RandomnessError(
            f"{describe_stack(transform)}: the function made a random generator seeded from the "
            "operating system's entropy (np.random.default_rng() with no seed) while jit recorded it: "
            "each plain call draws new numbers, and jit would replay the recorded draw on every call. "
            "Draw outside the jitted function and pass the numbers in as an argument (or seed the "
            "generator, np.random.default_rng(seed), whose draws every plain call repeats too).")
    if watch is not None and watch.changed():
        raise RandomnessError(
            f"{describe_stack(transform)}: the function drew random numbers (np.random.*, a "
            "Generator or RandomState, or Python's random) while jit recorded it; the draw "
            "would be replayed unchanged on every call. Draw outside the jitted function and "
            "pass the numbers in as an argument.")
    if stage.refused is not None:
        raise ConcretizationError(
            f"{stage.refused} (The function caught this error and went on along another path, "
            f"which would make {transform} differ from the plain function.)")
    from ..api._common import tree_flatten

    out_leaves, out_spec = tree_flatten(out)
    outputs, first, fresh, views = [], [], [], []
    seen = {var for _, _, var in staged}
    families = {id(a.storage) for _, t, _ in staged if type(a := getattr(t, "_alias", None)) is Alias}
    owners = {id(a.storage): k for k, t, _ in staged
              if type(a := getattr(t, "_alias", None)) is Alias and not a.chain}
    arguments = {id(t): k for k, t, _ in staged}
    inputs = [leaves[k] for k, _, _ in staged]
    first_at = {}  # id of an output tracer -> its first position
    for n, leaf in enumerate(out_leaves):
        if type(leaf) is StagedTracer and leaf._interp is stage and id(leaf) in first_at:
            # the same object returned twice (return v, v): NumPy's caller gets one array twice
            views.append((n, None, first_at[id(leaf)]))
            outputs.append(leaf._var)
            first.append(first[first_at[id(leaf)]])
        elif type(leaf) is StagedTracer and leaf._interp is stage:
            first_at[id(leaf)] = n
            value = leaf._example
            alias = getattr(leaf, "_alias", None)
            if id(leaf) in arguments:  # an argument returned (updated in place or not): itself
                views.append((n, arguments[id(leaf)], ()))
            elif type(alias) is Alias and not alias.uncertain and id(alias.storage) in owners:
                views.append((n, owners[id(alias.storage)], alias.chain))
            if type(alias) is not Alias or id(alias.storage) not in families:
                # NumPy gives a new array here: it must not share an argument's memory
                # (the recording's example may be a view of one, as generated code may be)
                fresh.append(n)
                if type(value) is np.ndarray and any(
                        type(a) is np.ndarray and np.may_share_memory(value, a) for a in inputs):
                    value = value.copy(order="K")
            if leaf._var in seen and isinstance(value, np.ndarray):
                value = value.copy(order="K")  # an input, or a value computed twice (v, v.copy()): independent arrays
            seen.add(leaf._var)
            outputs.append(leaf._var)
            first.append(value)
        else:
            if _holds_traced(leaf):
                raise OutputTypeError(
                    f"{transform}: output {n} is a {type(leaf).__name__} holding traced values, which {transform} "
                    "cannot return (only arrays, NumPy scalars, and tuples, lists and dicts of them are "
                    "replayed): return the arrays it holds (res.x, res.slope, dict(res) of a SciPy result) and "
                    "build the object outside.")
            outputs.append(Const(leaf))
            first.append(leaf)
    mutated = []
    for k, tracer, var in staged:
        if tracer._var is not var:
            mutated.append((k, tracer._example))
            outputs.append(tracer._var)
    in_vars = [var for _, _, var in staged]
    program = Program(in_vars, stage.eqns, outputs)
    cacheable = not holds_tracer(program)
    return Recording(snapshot(program), len(out_leaves), out_spec, first, mutated, cacheable, fresh, views)


def argument_views(outs: list, leaves: list, views) -> list:
    """``outs`` with the outputs that NumPy gives as an argument itself or a view
    of it made from the caller's plain array (after its in-place updates were
    written back), so that writes through them reach it as they would, and with
    an object the function returned twice given twice."""
    for n, k, chain in views:
        if k is None:  # the object of an earlier output, returned again
            outs[n] = outs[chain]
            continue
        value = leaves[k]
        if type(value) is not np.ndarray:
            continue  # a traced argument (jit inside a transform): the computed value
        try:
            for op in chain:
                value = op.shadow(value)
                if value is None:
                    break
        except ValueError:  # a layout the recording did not foresee: the computed value
            value = None
        if value is not None:
            outs[n] = value
    return outs


def describe_vars(vars_) -> str:
    """The inputs a set of variables were computed from, for messages."""
    src = frozenset().union(*[v.src for v in vars_ if type(v) is Var])
    return describe_src(src)
