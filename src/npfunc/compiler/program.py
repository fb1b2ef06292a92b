"""A staged program: inputs, equations, outputs -- and its printed form.

``Program(in_vars, eqns, outputs)`` is what the staging interpreter recorded:
``in_vars`` are ``Var``s, each equation ``Eqn(prim, inputs, params, outs)``
reads ``Var``s and ``Const``s, and ``outputs`` are ``Var``s or ``Const``s.
Passes take a program and return a new one; equations they do not touch are
shared, never mutated.

``str(program)`` prints it the way a jaxpr reads::

    { lambda a:f64[3] .
        b:f64[3] = sin a
        c:f64[] = reduce_sum[axes=(0,) keepdims=False] b
      in (c) }
"""
from __future__ import annotations

import numpy as np

from ..interpreters.staging import Const, Eqn, Var

__all__ = ["Program", "Var", "Const", "Eqn", "substitute", "use_counts", "layout_observed"]


class Program:
    """Inputs, equations and outputs of a staged function (see module doc)."""

    __slots__ = ("in_vars", "eqns", "outputs")

    def __init__(self, in_vars, eqns, outputs) -> None:
        self.in_vars = list(in_vars)
        self.eqns = list(eqns)
        self.outputs = list(outputs)

    def replace(self, eqns=None, outputs=None) -> "Program":
        return Program(self.in_vars, self.eqns if eqns is None else eqns,
                       self.outputs if outputs is None else outputs)

    def __len__(self) -> int:
        return len(self.eqns)

    def __str__(self) -> str:
        return format_program(self)

    def __repr__(self) -> str:
        return f"<Program: {len(self.in_vars)} inputs, {len(self.eqns)} equations>"


def use_counts(program: Program) -> dict:
    """How many times each ``Var`` is read (outputs count as reads)."""
    counts: dict = {}
    for eqn in program.eqns:
        for i in eqn.inputs:
            if type(i) is Var:
                counts[i] = counts.get(i, 0) + 1
    for o in program.outputs:
        if type(o) is Var:
            counts[o] = counts.get(o, 0) + 1
    return counts


#: Primitives whose result is laid out the same whatever their inputs' layouts.
LAYOUT_BLIND = frozenset({"matmul"})


def layout_observed(program: Program) -> set:
    """The variables, and the ids of the constant arrays, whose memory layout can
    show: in an output's layout, or in the values of an operation whose result
    depends on its inputs' layouts (the order of a sum, a copy's order...).  An
    elementwise ufunc lays its result out like its inputs, so its inputs'
    layouts show where its result's does; ``matmul``'s result is laid out the
    same whatever its inputs' are; any other operation is taken to show its
    inputs' layouts.  Equations whose results nobody reads show nothing."""
    observed: set = set()
    live = {o for o in program.outputs if type(o) is Var}  # (a dead equation shows nothing)

    def observe(atom):
        observed.add(atom if type(atom) is Var else id(atom.value))

    for o in program.outputs:
        observe(o)
    for eqn in reversed(program.eqns):
        prim = eqn.prim
        if not prim.effect and not any(o in live for o in eqn.outs):
            continue
        live.update(i for i in eqn.inputs if type(i) is Var)
        if prim.name in LAYOUT_BLIND:
            continue
        ufunc = getattr(prim, "ufunc", None)
        if ufunc is not None and ufunc.signature is None and not any(o in observed for o in eqn.outs):
            continue
        for i in eqn.inputs:
            observe(i)
    return observed


def substitute(program: Program, mapping: dict) -> Program:
    """The program with every read of a ``Var`` in ``mapping`` replaced by its
    image (a ``Var`` or a ``Const``); chains ``a -> b -> c`` are followed."""
    if not mapping:
        return program

    def resolve(atom):
        while type(atom) is Var and atom in mapping:
            atom = mapping[atom]
        return atom

    eqns = []
    for eqn in program.eqns:
        inputs = [resolve(i) for i in eqn.inputs]
        if any(a is not b for a, b in zip(inputs, eqn.inputs)):
            eqn = Eqn(eqn.prim, inputs, eqn.params, eqn.outs)
        eqns.append(eqn)
    return program.replace(eqns, [resolve(o) for o in program.outputs])


# ---- printing -----------------------------------------------------------------------------

def _letters(k: int) -> str:
    name = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        name = chr(ord("a") + r) + name
    return name


def _param(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array<{value.dtype}{list(value.shape)}>"
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, type):
        return value.__name__
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_program(program: Program) -> str:
    """The program in a short textual form (see the module doc)."""
    names: dict = {}
    consts: list = []

    def name(var: Var) -> str:
        if var not in names:
            names[var] = _letters(len(names))
        return names[var]

    def atom(a) -> str:
        if type(a) is Var:
            return name(a)
        v = a.value
        if isinstance(v, np.ndarray) and v.ndim or not isinstance(v, (np.ndarray, np.generic, int, float,
                                                                      complex, bool)):
            for k, (c, _) in enumerate(consts):
                if c is v:
                    return f"C{k}"
            consts.append((v, a))
            return f"C{len(consts) - 1}"
        return repr(a)

    ins = " ".join(f"{name(v)}:{v.aval}" for v in program.in_vars)
    body = []
    for eqn in program.eqns:
        lhs = " ".join(f"{name(o)}:{o.aval}" for o in eqn.outs)
        params = " ".join(f"{k}={_param(v)}" for k, v in eqn.params.items())
        args = " ".join(atom(i) for i in eqn.inputs)
        body.append(f"    {lhs} = {eqn.prim.name}{f'[{params}]' if params else ''} {args}")
    outs = ", ".join(atom(o) for o in program.outputs)
    header = [f"{{ lambda {ins} ."]
    for k, (v, a) in enumerate(consts):
        header.append(f"    C{k} = {a!r}")
    return "\n".join(header + body + [f"  in ({outs}) }}"])
