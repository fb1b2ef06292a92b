"""Fusion (optional): chains of elementwise operations compiled into one kernel.

Plain NumPy runs each elementwise operation as a separate pass over memory
with its own call overhead.  ``fuse(program, "numba")`` groups consecutive
float64 elementwise operations of one shape into a region and replaces it
by one call of a loop over the elements compiled by numba (``njit`` with
NumPy's error model: no exceptions on division by zero).

numba is an optional dependency (``pip install npfunc[fuse]``) and fusion is
opt-in (``jit(f, fuse="numba")``): plain NumPy stays the default.  Measured
in ``docs/performance.md``: a fused kernel removes the per-call overhead
that dominates small arrays (the gradient of a 50-operation chain on R^8
runs 10x faster), but NumPy's SIMD ``exp``/``sin``/``tanh`` are as fast as
numba's loop from about a thousand elements on, a kernel costs a compile
(0.1 s, 0.6 s for the first one in a process), and its elementary functions
may differ from NumPy's in the last bit.  numexpr was measured too and lost
to plain NumPy at every size, so it is not offered.  A region is a
codegen-level rewrite: under a transform, ``jit`` replays the unfused
program.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Primitive
from .program import Const, Eqn, Program, Var

__all__ = ["fuse", "BACKENDS"]

BACKENDS = ("numba",)

# primitive -> the scalar expression numba compiles; {0}, {1} are the operands
_OPS = {
    "add": "({0} + {1})",
    "subtract": "({0} - {1})",
    "multiply": "({0} * {1})",
    "divide": "({0} / {1})",
    "negative": "(-{0})",
    **{name: f"np.{name}({{0}})" for name in ("exp", "log", "sin", "cos", "tanh", "sinh", "cosh",
                                              "sqrt", "arctan")},
}

_F64 = np.dtype(np.float64)


def _fusible(eqn) -> tuple | None:
    """The region key (shape) of an elementwise float64 equation without broadcasting."""
    if eqn.prim.name not in _OPS or eqn.params or len(eqn.outs) != 1:
        return None
    out = eqn.outs[0]
    if out.dtype != _F64 or not out.shape:
        return None
    for i in eqn.inputs:
        if type(i) is Var:
            if i.dtype != _F64 or (i.shape != out.shape and i.shape != ()):
                return None
        elif type(i.value) not in (float, int) or type(i.value) is bool:
            return None
    return out.shape


def _regions(program: Program):
    """Lists of equation indices, each a region to fuse (see the module doc)."""
    regions, current, key, defined = [], [], None, set()

    def close():
        nonlocal current, key, defined
        if len(current) > 1:
            regions.append(current)
        current, key, defined = [], None, set()

    for k, eqn in enumerate(program.eqns):
        shape = _fusible(eqn)
        if shape is None:
            if any(i in defined for i in eqn.inputs if type(i) is Var):
                close()
            continue
        if shape != key:
            close()
            key = shape
        current.append(k)
        defined.update(eqn.outs)
    close()
    return regions


def _exports(program: Program, region) -> tuple[list, list]:
    """(inputs from outside the region, values read after it) of a region."""
    members = set(region)
    made, inputs = {}, []
    for k in region:
        for i in program.eqns[k].inputs:
            if type(i) is Var and i not in made and i not in inputs:
                inputs.append(i)
        for o in program.eqns[k].outs:
            made[o] = k
    read_outside = {o for o in program.outputs if type(o) is Var}
    for k, eqn in enumerate(program.eqns):
        if k not in members:
            read_outside.update(i for i in eqn.inputs if type(i) is Var)
    return inputs, [v for v in made if v in read_outside]


def _numba_kernel(program, region, inputs, outputs):
    import numba

    names = {v: f"x{k}" for k, v in enumerate(inputs)}
    body = []
    for j, k in enumerate(region):
        eqn = program.eqns[k]
        ops = [names[i] if type(i) is Var else repr(float(i.value)) for i in eqn.inputs]
        names[eqn.outs[0]] = f"t{j}"
        body.append(f"        t{j} = {_OPS[eqn.prim.name].format(*ops)}")
    loads = [f"        {names[v]} = {names[v]}_a[i]" if v.shape else "" for v in inputs]
    args = [f"{names[v]}_a" if v.shape else names[v] for v in inputs]
    stores = [f"        o{k}[i] = {names[v]}" for k, v in enumerate(outputs)]
    outs = [f"o{k}" for k in range(len(outputs))]
    source = "\n".join([f"def kernel({', '.join(args + outs)}):",
                        f"    for i in range({outs[0]}.size):"] + [x for x in loads if x] + body + stores) + "\n"
    namespace = {"np": np}
    exec(compile(source, "<npfunc fused kernel>", "exec"), namespace)  # noqa: S102
    kernel = numba.njit(error_model="numpy")(namespace["kernel"])
    shape = outputs[0].shape

    def run(*values):
        outs = [np.empty(shape) for _ in outputs]
        kernel(*[np.ascontiguousarray(v).reshape(-1) if np.ndim(v) else float(v) for v in values],
               *[o.reshape(-1) for o in outs])
        return tuple(outs)

    return run, source


def fuse(program: Program, backend: str) -> Program:
    """The program with its elementwise regions replaced by ``backend`` kernels."""
    if backend not in BACKENDS:
        raise ValueError(f"jit: fuse must be one of {BACKENDS} or None, got {backend!r}")
    regions = _regions(program)
    if not regions:
        return program
    build = _numba_kernel
    replaced: dict = {}
    for region in regions:
        inputs, outputs = _exports(program, region)
        if not outputs:
            continue
        run, source = build(program, region, inputs, outputs)
        prim = Primitive(f"fused_{backend}", run, differentiable=False, multiple_results=True,
                         register=False, notes=source)
        replaced[region[-1]] = Eqn(prim, inputs, {}, outputs)
        for k in region[:-1]:
            replaced[k] = None
    eqns = []
    for k, eqn in enumerate(program.eqns):
        new = replaced.get(k, eqn)
        if new is not None:
            eqns.append(new)
    return program.replace(eqns)
