"""Differential tests: random NumPy programs under every transform, against NumPy.

The oracle is npfunc's promise: for a plain NumPy program ``f``, every
transform gives what NumPy's semantics give, or raises an ``NpfuncError``
(a refusal, which is allowed and counted) -- never a different value
silently.  Each generated program (ufuncs, dtypes, reductions with keywords,
shape operations, basic/advanced/boolean indexing, views and writes through
them, copies, aliasing of arguments, Python scalars, closures, ``np.where``,
contractions, linear algebra, constructors of traced values, static
arguments) is checked for

* values: ``functionalize`` (with both ``remove`` options), ``jit`` (five
  calls with new values, static arguments and changed closures), the primal
  outputs of ``vjp`` and ``jvp``, ``vmap`` against a loop over rows (three
  ``in_dims`` variants) -- including the arguments' contents after the call;
* derivatives: ``jvp`` against central differences, ``vjp`` against ``jvp``
  (adjoint identity), ``grad``, ``jacrev`` against ``jacfwd``, ``hessian``
  and ``jacfwd(jacrev)`` against differences of ``grad``, ``vmap(grad)``,
  ``grad(jit)``, ``jit(grad)``, ``vjp(functionalize)``;
* dtypes of every value, tangent and cotangent.

Run a batch from the command line (``--help`` for options)::

    python -m npfunc.testing.difftest --programs 200 --seed 0

>>> import numpy as np
>>> from npfunc.testing.difftest import generate_program, check_program
>>> program = generate_program(np.random.default_rng(5), label="5")
>>> report = check_program(program)
>>> {o.status for o in report.outcomes} <= {"ok", "refused", "skipped", "mismatch", "crash"}
True
>>> print(program.source().splitlines()[0])
def f(x, y):
"""
from .checks import Outcome, Report, check_program
from .generator import generate_program
from .program import Program
from .reduce import reduce_program
from .runner import KNOWN_ISSUES, Summary, known_issue, main, program_for, run

__all__ = ["Program", "generate_program", "check_program", "Outcome", "Report", "Summary", "run",
           "KNOWN_ISSUES", "known_issue", "program_for", "reduce_program", "main"]
