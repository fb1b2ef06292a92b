"""Shrinking a failing program to a small one that fails the same way.

:func:`reduce_program` drops statements (and returned names) one at a time,
keeping a removal when the smaller program still runs in NumPy and still
fails the same check; it repeats until nothing more can go.  The result is
the starting point of a regression test (which a person then writes as a
natural program).
"""
from __future__ import annotations

import dataclasses
import warnings

from .checks import Report, check_program
from .program import Program

__all__ = ["reduce_program"]


def _statements(body: list[str]) -> list[list[str]]:
    """The body's statements, each with its indented continuation lines."""
    out: list[list[str]] = []
    for line in body:
        if line.startswith((" ", "else:", "elif ")) and out:
            out[-1].append(line)
        else:
            out.append([line])
    return out


def _fails(program: Program, check: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in range(len(program.samples)):
                program.build()(*program.arguments(s))  # NumPy must still run it
            report: Report = check_program(program)
    except Exception:  # noqa: BLE001 -- not a valid smaller program
        return False
    return any(o.transform == check for o in report.failures)


def reduce_program(program: Program, check: str) -> Program:
    """A smaller program that still fails ``check`` (a transform name of a report).

    >>> import numpy as np
    >>> from npfunc.testing.difftest import Program
    >>> p = Program(body=["a = np.sin(x)", "b = a * 2.0"], returns=["b"],
    ...             samples=[{"x": np.ones(3)}] * 4)
    >>> reduce_program(p, "grad").body  # it does not fail: nothing to reduce
    ['a = np.sin(x)', 'b = a * 2.0']
    """
    if not _fails(program, check):
        return program
    changed = True
    while changed:
        changed = False
        stmts = _statements(program.body)
        for k in range(len(stmts)):
            body = [line for j, st in enumerate(stmts) if j != k for line in st]
            candidate = dataclasses.replace(program, body=body)
            if _fails(candidate, check):
                program, changed = candidate, True
                break
        if changed:
            continue
        for k in range(len(program.returns)):
            if len(program.returns) == 1:
                break
            candidate = dataclasses.replace(program, returns=program.returns[:k] + program.returns[k + 1:])
            if _fails(candidate, check):
                program, changed = candidate, True
                break
    return program
