"""npfunc's compiler for staged programs: the passes ``jit`` runs.

A function recorded by the staging interpreter is a ``Program`` (inputs,
equations, outputs; ``program.py``).  ``optimize`` runs the passes, each a
function ``Program -> Program`` in a module of its own:

========== ==============================================================
``fold``     constant folding: what does not depend on the inputs' values
``simplify`` exact algebraic rewrites (``x * 1``, ``-(-x)``, chains of
             reshapes and transposes, unit and diagonal bases)
``cse``      common-subexpression elimination
``contract`` products summed, and stacks of matrix-vector products, as one
             ``matmul`` (reassociates sums: last-bit differences)
``dce``      dead-code elimination
========== ==============================================================

``lower`` (``lower.py``) applies rewrites meant for the generated code only
(merging products of one large matrix with several vectors), and
``generate`` (``codegen.py``) writes the program as one Python
function of NumPy calls, reusing dead buffers for large elementwise
results.  ``trace_program`` records a function of plain arrays, for tests
and exploration.

>>> import numpy as np
>>> p = trace_program(lambda x: np.sin(x) * np.sin(x) * 1.0, np.ones(2))
>>> print(optimize(p))
{ lambda a:f64[2] .
    b:f64[2] = sin a
    c:f64[2] = multiply b b
  in (c) }
"""
from __future__ import annotations

from typing import Callable, Sequence

from .codegen import Generated, generate
from .contract import contract
from .cse import cse
from .dce import dce
from .fold import fold
from .lower import lower
from .program import Program, format_program
from .simplify import simplify

__all__ = ["Program", "PASSES", "DEFAULT_PASSES", "optimize", "generate", "Generated",
           "trace_program", "format_program", "lower", "fold", "simplify", "cse", "contract", "dce"]

PASSES: dict[str, Callable[[Program], Program]] = {
    "fold": fold, "simplify": simplify, "cse": cse, "contract": contract, "dce": dce,
}

#: The order jit runs them in: clean up, contract, then clean up what contraction exposed.
DEFAULT_PASSES = ("fold", "simplify", "cse", "dce", "contract", "fold", "simplify", "cse", "dce")


def optimize(program: Program, passes: Sequence[str] = DEFAULT_PASSES) -> Program:
    """``program`` after the named passes, in order (see the module doc)."""
    for name in passes:
        try:
            fn = PASSES[name]
        except KeyError:
            raise ValueError(f"unknown compiler pass {name!r}; the passes are {sorted(PASSES)}") from None
        program = fn(program)
    return program


def trace_program(func: Callable, *args) -> Program:
    """The program ``func(*args)`` records (array arguments staged, the rest static)."""
    from .trace import record

    rec = record(lambda leaves: func(*leaves), list(args), [f"argument {k}" for k in range(len(args))])
    return rec.program
