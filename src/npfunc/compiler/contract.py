"""Contraction: products summed, and stacks of matrix-vector products, as one matmul.

Batching rules and VJPs write a matrix product in the form that batches
easily, which is not the one BLAS runs fastest:

* ``sum(a * b, axes)`` -- an elementwise product followed by a sum over
  axes both factors span -- is a matrix product (with batch axes); it runs
  as one ``matmul`` instead of materialising the product.
* ``A @ Y`` with ``Y`` a stack of column vectors ``(..., k, 1)`` (``vmap``
  of a matrix-vector product) is ``(Y[..., 0] @ A.T)[..., None]``: one
  matrix-matrix product instead of one matrix-vector product per element;
  likewise ``Y @ B`` for a stack of row vectors ``(..., 1, k)``.
* the sum over one axis of a float matrix is a product with a vector of ones
  (BLAS's matrix-vector product beats the reduction at every size measured).
* ``A @ Yᵀ`` with a constant ``A`` is ``(Y @ Aᵀ)ᵀ`` (likewise ``Yᵀ @ A``), with
  ``Aᵀ`` folded into a contiguous constant: BLAS then multiplies two contiguous
  matrices, which it does faster than a transposed operand.

These rewrites change the order of the additions in a sum, so results may
differ from the recorded program in the last bits (as two BLAS calls of
different shapes do); ``jit(f, optimize=False)`` runs the program as recorded.

>>> import numpy as np, npfunc
>>> A = np.arange(6.0).reshape(2, 3)
>>> print(npfunc.make_graph(lambda x: (A * x).sum(axis=1), passes=["contract", "simplify", "dce"])(np.ones(3)).optimized)
{ lambda a:f64[3] .
    C0 = const:f64[2,3]
    b:f64[2] = matmul C0 a
  in (b) }
"""
from __future__ import annotations

import math

import numpy as np

from ..core.primitive import REGISTRY
from .program import Const, Eqn, Program, Var, use_counts

__all__ = ["contract"]


def _shape(atom) -> tuple:
    return atom.shape if type(atom) is Var else tuple(np.shape(atom.value))


def _dtype(atom):
    return atom.dtype if type(atom) is Var else np.asarray(atom.value).dtype


class _Builder:
    """Appends equations computing intermediate values (fresh ``Var``s)."""

    def __init__(self) -> None:
        self.eqns: list = []

    def apply(self, name, inputs, params, shape, dtype, out: Var | None = None) -> Var:
        shape = tuple(shape)
        if out is None:
            if name in ("reshape", "transpose") and len(inputs) == 1 and _shape(inputs[0]) == shape and \
                    (name == "reshape" or tuple(params["perm"]) == tuple(range(len(shape)))):
                return inputs[0]  # a no-op
            out = Var(shape, dtype, frozenset().union(*[i.src for i in inputs if type(i) is Var]))
        self.eqns.append(Eqn(REGISTRY[name], inputs, params, [out]))
        return out


def _arrange(b: _Builder, x, S, present, order, groups):
    """``x`` (right-aligned in the product of shape ``S``) reduced to its present
    axes, ordered as ``order`` and reshaped to the sizes of ``groups``."""
    offset = len(S) - len(_shape(x))
    kept = [a for a in range(offset, len(S)) if a in present]
    squeezed = b.apply("reshape", [x], {"shape": tuple(S[a] for a in kept)}, [S[a] for a in kept], _dtype(x))
    perm = tuple(kept.index(a) for a in order)
    moved = b.apply("transpose", [squeezed], {"perm": perm}, [S[a] for a in order], _dtype(x))
    sizes = tuple(math.prod(S[a] for a in g) for g in groups)
    return b.apply("reshape", [moved], {"shape": sizes}, sizes, _dtype(x))


def _sum_of_product(prod: Eqn, red: Eqn):
    """Equations computing ``red``'s output as a matmul, or None if it is not one."""
    a, b = prod.inputs
    out = red.outs[0]
    S = prod.outs[0].shape
    r = len(S)
    if len(_shape(a)) > r or len(_shape(b)) > r or not all(type(x) in (Var, Const) for x in (a, b)):
        return None
    if _dtype(a).kind not in "fc" or _dtype(b).kind not in "fc" or red.params.get("keepdims") is None:
        return None
    axes = {ax % r for ax in red.params["axes"]}

    def present(x):
        sx = _shape(x)
        off = r - len(sx)
        return {off + j for j, n in enumerate(sx) if n == S[off + j] and S[off + j] != 1}

    pa, pb = present(a), present(b)
    real = [ax for ax in range(r) if S[ax] != 1]
    C = [ax for ax in real if ax in axes]
    K = [ax for ax in real if ax not in axes]
    if not C or any(ax not in pa or ax not in pb for ax in C):
        return None  # nothing contracted, or a sum over an axis only one factor spans
    B = [ax for ax in K if ax in pa and ax in pb]
    Fa = [ax for ax in K if ax in pa and ax not in pb]
    Fb = [ax for ax in K if ax in pb and ax not in pa]
    if len(B) + len(Fa) + len(Fb) != len(K):
        return None
    if np.result_type(_dtype(a), _dtype(b)) != out.dtype:
        return None
    bld = _Builder()
    dtype = prod.outs[0].dtype
    a2 = _arrange(bld, a, S, pa, B + Fa + C, [[x] for x in B] + ([Fa] if Fa or B else []) + [C])
    b2 = _arrange(bld, b, S, pb, B + C + Fb, [[x] for x in B] + [C] + ([Fb] if Fb or B else []))
    mshape = [S[x] for x in B] + ([math.prod(S[x] for x in Fa)] if Fa or B else []) + \
             ([math.prod(S[x] for x in Fb)] if Fb or B else [])
    m = bld.apply("matmul", [a2, b2], {}, mshape, dtype)
    unflat = bld.apply("reshape", [m], {"shape": tuple(S[x] for x in B + Fa + Fb)},
                       [S[x] for x in B + Fa + Fb], dtype)
    perm = tuple((B + Fa + Fb).index(x) for x in K)
    moved = bld.apply("transpose", [unflat], {"perm": perm}, [S[x] for x in K], dtype)
    bld.apply("reshape", [moved], {"shape": out.shape}, out.shape, dtype, out=out)
    return bld.eqns


def _column_stack(eqn: Eqn):
    """``A @ Y`` for a stack ``Y`` of columns (or ``Y @ B`` for rows) as one product."""
    a, b = eqn.inputs
    out = eqn.outs[0]
    sa, sb = _shape(a), _shape(b)
    bld = _Builder()
    if len(sa) == 2 and len(sb) >= 3 and sb[-1] == 1 and sb[-2] == sa[1]:
        y = bld.apply("reshape", [b], {"shape": sb[:-1]}, sb[:-1], _dtype(b))
        at = bld.apply("transpose", [a], {"perm": (1, 0)}, sa[::-1], _dtype(a))
        z = bld.apply("matmul", [y, at], {}, sb[:-2] + (sa[0],), out.dtype)
    elif len(sb) == 2 and len(sa) >= 3 and sa[-2] == 1 and sa[-1] == sb[0]:
        y = bld.apply("reshape", [a], {"shape": sa[:-2] + (sa[-1],)}, sa[:-2] + (sa[-1],), _dtype(a))
        z = bld.apply("matmul", [y, b], {}, sa[:-2] + (sb[1],), out.dtype)
    else:
        return None
    bld.apply("reshape", [z], {"shape": out.shape}, out.shape, out.dtype, out=out)
    return bld.eqns


def _untransposed(eqn: Eqn, producers: dict):
    """``A @ Yᵀ`` with a constant ``A`` as ``(Y @ Aᵀ)ᵀ`` (and ``Yᵀ @ A`` as ``(Aᵀ @ Y)ᵀ``):
    the transposed constant is folded into a contiguous array, so BLAS multiplies
    two contiguous matrices, which it does faster than a transposed one."""
    a, b = eqn.inputs
    out = eqn.outs[0]
    if len(_shape(a)) != 2 or len(_shape(b)) != 2:
        return None
    for const, var, right in ((a, b, True), (b, a, False)):
        src = producers.get(var) if type(var) is Var else None
        if type(const) is not Const or src is None or src.prim.name != "transpose" or \
                tuple(src.params["perm"]) != (1, 0) or type(src.inputs[0]) is not Var:
            continue
        y = src.inputs[0]
        bld = _Builder()
        ct = bld.apply("transpose", [const], {"perm": (1, 0)}, _shape(const)[::-1], _dtype(const))
        pair = [y, ct] if right else [ct, y]
        m = bld.apply("matmul", pair, {}, out.shape[::-1], out.dtype)
        bld.apply("transpose", [m], {"perm": (1, 0)}, out.shape, out.dtype, out=out)
        return bld.eqns
    return None


def _sum_as_product(eqn: Eqn):
    """The sum over one axis of a float matrix as a product with a vector of ones:
    BLAS's matrix-vector product is 1.2-9x quicker than the reduction."""
    (x,) = eqn.inputs
    out = eqn.outs[0]
    axes = tuple(eqn.params["axes"])
    if type(x) is not Var or len(x.shape) != 2 or len(axes) != 1 or x.dtype.kind not in "fc" or \
            min(x.shape) < 2:
        return None
    axis = axes[0]
    ones = Const(np.ones(x.shape[axis], dtype=np.dtype(x.dtype.char.lower()) if x.dtype.kind == "c"
                         else x.dtype))
    bld = _Builder()
    kept = (x.shape[1 - axis],)
    total = bld.apply("matmul", [x, ones] if axis == 1 else [ones, x], {}, kept, out.dtype,
                      out=out if out.shape == kept else None)
    if out.shape != kept:  # keepdims
        bld.apply("reshape", [total], {"shape": out.shape}, out.shape, out.dtype, out=out)
    return bld.eqns


def contract(program: Program) -> Program:
    """The program with the matrix products of the module doc made explicit."""
    uses = use_counts(program)
    producers = {}
    eqns = []
    changed = False
    for eqn in program.eqns:
        name = eqn.prim.name
        new = None
        if name == "reduce_sum":
            (x,) = eqn.inputs
            prod = producers.get(x)
            if prod is not None and prod.prim.name == "multiply" and uses.get(x) == 1:
                new = _sum_of_product(prod, eqn)
            if new is None:
                new = _sum_as_product(eqn)
        elif name == "matmul" and not eqn.params:
            new = _column_stack(eqn) or _untransposed(eqn, producers)
        if new is None:
            eqns.append(eqn)
        else:
            eqns.extend(new)
            changed = True
        for o in eqn.outs:
            producers[o] = eqn
    return program.replace(eqns) if changed else program
