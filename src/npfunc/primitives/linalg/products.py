"""Products: matmul and einsum (primitives), dot (composite).

Both primitives are multilinear: the JVP is a sum of products with one
operand replaced by its tangent, the VJP contracts the cotangent with the
other operands.  Neither forms anything larger than the result needs.
einsum takes every NumPy subscript form (explicit, implicit, ellipsis,
repeated indices for diagonals, size-1 broadcasting, the sublist form).
The other products (vdot, inner, outer, kron, tensordot, cross, multi_dot)
are composites in ``product_family``.
"""
from __future__ import annotations

import string

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import broadcast_shapes, dtype_of, ndim_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import move_to_front
from ..families import composite, conj, fit_cotangent, sum_to_shape
from . import samples
from ..sampling import FLOATS, array
from ..shape.basic import broadcast_to, moveaxis, reshape, swapaxes, transpose

# ---- matmul -------------------------------------------------------------------------


def _matmul_shape(sa, sb):
    """The shape ``np.matmul`` gives for operand shapes ``sa`` and ``sb``."""
    a2 = (1,) + tuple(sa) if len(sa) == 1 else tuple(sa)
    b2 = tuple(sb) + (1,) if len(sb) == 1 else tuple(sb)
    lead = broadcast_shapes(a2[:-2], b2[:-2])
    core = ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())
    return tuple(lead) + core


def _matmul_jvp(primals, tangents, out):
    a, b = primals
    ta, tb = tangents
    t = zero
    if ta is not zero:
        t = matmul(ta, b)
    if tb is not zero:
        t = matmul(a, tb) if t is zero else t + matmul(a, tb)
    return t


def _matmul_vjp(g, primals, out, needs):
    a, b = primals
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) <= 2 and len(sb) <= 2 and (len(sa) == 2 or len(sb) == 2):
        return _matmul_vjp_small(g, a, b, sa, sb, needs)
    a2 = sa if len(sa) > 1 else (1,) + tuple(sa)
    b2 = sb if len(sb) > 1 else tuple(sb) + (1,)
    sg = shape_of(g)
    lead = sg[: len(sg) - (len(sa) > 1) - (len(sb) > 1)]
    g2 = reshape(g, tuple(lead) + (a2[-2], b2[-1]))
    ga = gb = zero
    if needs[0]:
        bb = reshape(b, b2) if len(sb) == 1 else b
        ga2 = g2 @ swapaxes(conj(bb), -1, -2)
        ga = fit_cotangent(reshape(sum_to_shape(ga2, a2), sa), a)
    if needs[1]:
        aa = reshape(a, a2) if len(sa) == 1 else a
        gb2 = swapaxes(conj(aa), -1, -2) @ g2
        gb = fit_cotangent(reshape(sum_to_shape(gb2, b2), sb), b)
    return ga, gb


def _matmul_vjp_small(g, a, b, sa, sb, needs):
    """matrix @ matrix, matrix @ vector and vector @ matrix: no reshaping of g."""
    ga = gb = zero
    if needs[0]:
        if len(sb) == 2:
            ga = _matmul.bind(g, transpose(conj(b))) if len(sa) == 2 else _matmul.bind(conj(b), g)
        else:  # (n, k) @ (k,): the outer product g bᴴ
            ga = reshape(g, (sa[0], 1)) * conj(b)
        ga = fit_cotangent(ga, a)
    if needs[1]:
        if len(sa) == 2:
            gb = _matmul.bind(transpose(conj(a)), g)
        else:  # (k,) @ (k, m): the outer product conj(a) g
            gb = reshape(conj(a), (sa[0], 1)) * g
        gb = fit_cotangent(gb, b)
    return ga, gb


def _as_view(x, shape, axis=None, to=None):
    """``x`` (with ``axis`` moved to ``to`` first) reshaped without copying, or None (a copy
    would be needed, or a traced value of unknown layout).  A staged value (jit, the compiled
    pull-backs of tape_cache) is decided on its example, which the same primitives made
    with the layout the eager computation has: the recording then takes the eager path, so
    both make the same matrix products (bit for bit)."""
    if type(x) is not np.ndarray:
        example = getattr(x, "_example", None)
        if type(example) is not np.ndarray or _as_view(example, shape, axis, to) is None:
            return None
        return reshape(moveaxis(x, axis, to) if axis is not None else x, shape)
    if axis is not None:
        x = np.moveaxis(x, axis, to)
    try:
        return np.reshape(x, shape, copy=False)
    except (ValueError, TypeError):  # TypeError: NumPy < 2.1 has no copy=
        return None


def _matmul_batch_one_gemm(a, b, da, db, size, sa, sb):
    """A batch of matrices times one matrix is one matrix product when the
    batch can be folded into the rows (left operand batched) or the columns
    (right operand batched) without copying: one large GEMM beats a stacked
    matmul of small ones.  Returns None when folding would copy."""
    (n, k), m = sa, sb[1]
    if da is not None:  # (B, n, k) @ (k, m): rows
        rows = _as_view(a, (size * n, k), da, 0)
        if rows is None:
            return None
        return reshape(_matmul.bind(rows, b), (size, n, m)), 0
    cols = _as_view(b, (k, size * m), db, 1)
    if cols is None:
        return None
    return reshape(_matmul.bind(a, cols), (n, size, m)), 1


def _matmul_batch(vals, dims):
    (a, b), (da, db) = vals, dims
    size = shape_of(a)[da] if da is not None else shape_of(b)[db]
    sa = shape_of(a)[:da] + shape_of(a)[da + 1:] if da is not None else shape_of(a)
    sb = shape_of(b)[:db] + shape_of(b)[db + 1:] if db is not None else shape_of(b)
    if len(sa) == 2 and len(sb) == 2 and (da is None) != (db is None):
        folded = _matmul_batch_one_gemm(a, b, da, db, size, sa, sb)
        if folded is not None:
            return folded
    # A matrix times a batch of vectors is one matrix product with the vectors as
    # columns (or rows): a stacked matmul of matrix-vector products is many times slower.
    if len(sa) == 2 and len(sb) == 1 and da is None:
        return _matmul.bind(a, moveaxis(b, db, 1)), 1
    if len(sa) == 1 and len(sb) == 2 and db is None:
        return _matmul.bind(moveaxis(a, da, 0), b), 0
    out_shape = (size,) + _matmul_shape(sa, sb)
    lead = max(len(sa), 2) - 2, max(len(sb), 2) - 2
    rank = max(lead)
    if da is not None:
        a = move_to_front(a, da)
        a = reshape(a, (size,) + (1,) * (rank - lead[0]) + ((1,) if len(sa) == 1 else ()) + tuple(sa))
    if db is not None:
        b = move_to_front(b, db)
        b = reshape(b, (size,) + (1,) * (rank - lead[1]) + tuple(sb) + ((1,) if len(sb) == 1 else ()))
    return reshape(_matmul.bind(a, b), out_shape), 0


def _matmul_samples(rng):
    pairs = [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)),
             ((2, 2, 3), (3, 4)), ((4, 1, 2, 3), (2, 3, 2)), ((3,), (2, 3, 4))]
    out = [Sample(array(rng, sa, dt), array(rng, sb, dt)) for dt in FLOATS for sa, sb in pairs]
    out.append(Sample(array(rng, (2, 3), np.float32), array(rng, (3,)), label="mixed precision"))
    return out


_matmul = Primitive("matmul", np.matmul, jvp=_matmul_jvp, vjp=_matmul_vjp, batch=_matmul_batch,
                    samples=_matmul_samples)


@composite(np.matmul, samples=samples.matmul)
def matmul(a, b, /):
    """``a @ b`` for traced and plain values (NumPy's stacking and 1-D rules)."""
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (use * for scalars)")
    return _matmul.bind(a, b)


@composite(np.dot, samples=samples.dot)
def dot(a, b, out=None):
    """``np.dot`` for traced and plain values."""
    if out is not None:
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError("np.dot(..., out=...) is not supported on traced values")
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        # a Python scalar is an array to np.dot (float64, int64), not a weak scalar as to *:
        # np.dot(float32 array, 2.0) is float64
        a, b = array_operands(a, b)
        return a * b
    if nb <= 2:
        return _matmul.bind(a, b)
    letters = string.ascii_letters
    sa = letters[:na]
    sb = letters[na:na + nb - 2] + sa[-1] + letters[na + nb - 2]
    return einsum(f"{sa},{sb}->{sa[:-1]}{sb[:-2]}{sb[-1]}", a, b)


# ---- einsum ---------------------------------------------------------------------------

def _fresh(used: set) -> str:
    for ch in string.ascii_letters:
        if ch not in used:
            used.add(ch)
            return ch
    raise ValueError("einsum: ran out of subscript letters (at most 52 distinct indices)")


def _einsum_impl(*operands, inputs, output):
    return np.einsum(",".join(inputs) + "->" + output, *operands, optimize=len(operands) > 1)


def _einsum_jvp(primals, tangents, out, *, inputs, output):
    total = zero
    for k, t in enumerate(tangents):
        if t is zero:
            continue
        ops = list(primals)
        ops[k] = t
        term = _einsum.bind(*ops, inputs=inputs, output=output)
        total = term if total is zero else total + term
    return total


def _einsum_vjp(g, primals, out, needs, *, inputs, output):
    sizes = {}
    for subs, op in zip(inputs, primals):
        for ch, n in zip(subs, shape_of(op)):
            if sizes.get(ch, 1) == 1:  # a length-1 axis broadcasts; any other length (0 too) is the index's
                sizes[ch] = n
    cts = []
    for k, need in enumerate(needs):
        if not need:
            cts.append(zero)
            continue
        used = set("".join(inputs) + output)
        others = [(s, conj(p)) for i, (s, p) in enumerate(zip(inputs, primals)) if i != k]
        target = list(inputs[k])
        seen = set()
        for pos, ch in enumerate(target):  # a repeated index is a diagonal: embed with eye
            if ch in seen:
                new = _fresh(used)
                target[pos] = new
                others.append((ch + new, np.eye(sizes[ch], dtype=dtype_of(g))))
            seen.add(ch)
        available = set(output).union(*(set(s) for s, _ in others))
        kept = "".join(ch for ch in target if ch in available)
        ct = _einsum.bind(g, *(p for _, p in others), inputs=(output,) + tuple(s for s, _ in others), output=kept)
        full = tuple(sizes[ch] for ch in inputs[k])
        if len(kept) != len(target):  # indices summed in operand k alone: constant along them
            dims = iter(shape_of(ct))
            ct = reshape(ct, tuple(next(dims) if ch in available else 1 for ch in target))
        if tuple(shape_of(ct)) != full:  # and along those the other operands broadcast (length 1)
            ct = broadcast_to(ct, full)
        cts.append(fit_cotangent(sum_to_shape(ct, shape_of(primals[k])), primals[k]))
    return tuple(cts)


def _einsum_batch(vals, dims, *, inputs, output):
    used = set("".join(inputs) + output)
    b = _fresh(used)
    new_inputs = tuple(s[:d] + b + s[d:] if d is not None else s for s, d in zip(inputs, dims))
    return _einsum.bind(*vals, inputs=new_inputs, output=b + output), 0


def _einsum_samples(rng):
    out = []
    for dt in FLOATS:
        out += [
            Sample(array(rng, (2, 3), dt), array(rng, (3, 4), dt), inputs=("ij", "jk"), output="ik"),
            Sample(array(rng, (2, 3), dt), array(rng, (2, 3), dt), inputs=("ij", "ij"), output=""),
            Sample(array(rng, (3, 3), dt), inputs=("ii",), output="", label="trace"),
            Sample(array(rng, (2, 3), dt), array(rng, (4,), dt), inputs=("ij", "k"), output="jk",
                   label="summed alone"),
            Sample(array(rng, (2, 3, 4), dt), array(rng, (4, 3), dt), array(rng, (2,), dt),
                   inputs=("bij", "jk", "b"), output="bik"),
            Sample(array(rng, (3, 3), dt), inputs=("ii",), output="i", label="diagonal"),
            Sample(array(rng, (2, 2, 3), dt), inputs=("iij",), output="ij", label="diagonal, kept axis"),
            Sample(array(rng, (3,), dt), array(rng, (4,), dt), inputs=("i", "j"), output="ij", label="outer"),
            Sample(array(rng, (2, 1, 3), dt), array(rng, (4, 3), dt), inputs=("abi", "bi"), output="abi",
                   label="size-1 broadcasting"),
            Sample(array(rng, (5, 2, 3), dt), array(rng, (2, 3, 4), dt), array(rng, (4, 2), dt),
                   inputs=("abc", "bcd", "de"), output="ae", label="chain"),
            Sample(array(rng, (3, 3), dt), array(rng, (3,), dt), inputs=("ii", "i"), output="",
                   label="diagonal times vector"),
        ]
    z = array(rng, (2, 3)) + 1j * array(rng, (2, 3))
    out.append(Sample(z, array(rng, (3, 2)) - 0.5j, inputs=("ij", "jk"), output="ik", label="complex"))
    out.append(Sample(array(rng, (2, 3), np.float32), array(rng, (3,)), inputs=("ij", "j"), output="i",
                      label="mixed precision"))
    out.append(Sample(np.zeros((0, 3)), inputs=("ij",), output="j", label="summed over an empty axis"))
    out.append(Sample(np.zeros((0, 3)), array(rng, (1, 3)), inputs=("ij", "ij"), output="j",
                      label="empty axis against a length-1 one"))
    out.append(Sample(array(rng, (4, 3)), array(rng, (1, 3)), inputs=("ij", "ij"), output="j",
                      label="length-1 broadcasting of a summed index"))
    return out


_einsum = Primitive("einsum", _einsum_impl, jvp=_einsum_jvp, vjp=_einsum_vjp, batch=_einsum_batch,
                    samples=_einsum_samples)


def _parse_einsum(subscripts: str, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        lhs, output = subscripts.split("->")
        explicit = True
    else:
        lhs, output, explicit = subscripts, "", False
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: {len(inputs)} operand subscripts for {len(shapes)} operands")
    used = set(ch for ch in subscripts if ch.isalpha())
    ell_rank = max((len(s) - (len(t) - 3) for t, s in zip(inputs, shapes) if "..." in t), default=0)
    ell = "".join(_fresh(used) for _ in range(ell_rank))
    expanded = []
    for t, s in zip(inputs, shapes):
        if "..." in t:
            n = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_rank - n:] if n else "")
        if len(t) != len(s):
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of rank {len(s)}")
        expanded.append(t)
    if explicit:
        output = output.replace("...", ell)
    else:
        counts = {}
        for t in expanded:
            for ch in t:
                counts[ch] = counts.get(ch, 0) + 1
        output = ell + "".join(sorted(ch for ch, n in counts.items() if n == 1 and ch not in ell))
    return tuple(expanded), output


_SUBLIST_LABELS = string.ascii_uppercase + string.ascii_lowercase  # ascending, as NumPy sorts


def _sublist_text(sublist) -> str:
    parts = []
    for label in sublist:
        if label is Ellipsis:
            parts.append("...")
        elif isinstance(label, (int, np.integer)) and 0 <= label < 52:
            parts.append(_SUBLIST_LABELS[int(label)])
        else:
            raise ValueError(f"einsum: subscript labels must be integers in [0, 52) or Ellipsis, got {label!r}")
    return "".join(parts)


def _from_sublists(args):
    """``einsum(op0, sub0, op1, sub1, ..., [out])`` as (subscripts, operands)."""
    args = list(args)
    output = None
    if len(args) % 2:
        output = args.pop()
    operands = args[0::2]
    text = ",".join(_sublist_text(sub) for sub in args[1::2])
    if output is not None:
        text += "->" + _sublist_text(output)
    return text, operands


def array_operands(*xs) -> list:
    """List and tuple operands (``np.cross([0, 0, 1], h)``) as the arrays NumPy makes
    of them; arrays, NumPy scalars and traced values as they are."""
    return [x if isinstance(x, (Tracer, np.ndarray, np.generic)) else np.asarray(x) for x in xs]


@composite(np.einsum, samples=samples.einsum, scalars=True)
def einsum(*operands, out=None, dtype=None, optimize=False, **kwargs):
    """``np.einsum`` for traced and plain values: explicit and implicit
    output, ellipsis, repeated indices (diagonals), size-1 broadcasting and
    the sublist form ``einsum(op0, [0, 1], op1, [1, 2], [0, 2])``.
    ``optimize`` is accepted (contractions of several operands are always
    optimised); ``dtype`` casts the operands first."""
    if out is not None:
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError("np.einsum(..., out=...) is not supported on traced values; "
                                        "assign the result instead")
    if operands and isinstance(operands[0], str):
        subscripts, operands = operands[0], list(operands[1:])
    else:
        subscripts, operands = _from_sublists(operands)
    operands = array_operands(*operands)  # (lists become arrays, as NumPy's einsum makes them)
    casting = kwargs.pop("casting", "safe")
    kwargs.pop("order", None)  # a memory layout: traced values have none
    if kwargs:
        raise TypeError(f"np.einsum: unexpected keyword arguments {sorted(kwargs)}")
    if dtype is not None:
        from ..elementwise.arithmetic import astype

        for op in operands:
            if not np.can_cast(dtype_of(op), dtype, casting):
                raise TypeError(f"np.einsum: operand dtype {dtype_of(op)} cannot be cast to {np.dtype(dtype)} "
                                f"according to the rule {casting!r}")
        operands = [astype(op, dtype) for op in operands]
    inputs, output = _parse_einsum(subscripts, [shape_of(op) for op in operands])
    out = _einsum.bind(*operands, inputs=inputs, output=output)
    if len(operands) == 1:  # permutations and diagonals of one operand are views in NumPy
        from ..shape.views import einsum_view

        out = einsum_view(subscripts, operands[0], out)
    return out


