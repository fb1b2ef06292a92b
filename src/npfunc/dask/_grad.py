"""Gradients over dask data: a Dask reduction of per-chunk gradients.

A loss that is the mean (or the sum) over the rows of its data,
``L(w, X) = 1/N sum_i l(w, X_i)``, is the weighted sum of the same loss on
row chunks, ``L = sum_c (n_c / N) L(w, X_c)``, and so is its gradient.
``npfunc.grad`` (``grad_and_value``, ``vjp``) hands a call here when the
function reads dask arrays, passed as arguments or closed over (see
``_closure.py``): every chunk task runs the in-memory ``grad_and_value`` on
its rows, and a tree of additions combines them, on whatever scheduler Dask
uses (threads, or a ``distributed`` client).

Which reduction the loss is cannot be read from its code, so it is checked
on the data: a small task evaluates the loss and its gradient on the first
rows, split in two equal halves ``A`` and ``B``; a mean satisfies
``L(A+B) = (L(A) + L(B)) / 2`` and a sum ``L(A+B) = L(A) + L(B)``.  A loss
that is neither (a variance, a median, a batch normalisation) raises
``DaskReductionError`` instead of a wrong gradient; one computed with a
``reduction=`` that the check contradicts does too.  A data-independent term
(a regulariser) added to a mean passes the check and is handled exactly.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import optree

from ..api._common import normalize_argnums, tree_flatten, tree_unflatten
from ..core.context import current_stack, describe_stack
from ..core.tracer import Tracer
from ._closure import Hole, find, rebuild
from ._detect import is_dask_array
from ._errors import DaskChunkingError, DaskReductionError, DaskTransformError

REDUCTIONS = ("auto", "mean", "sum")
_CHECK_ROWS = 4  # rows in each half of the reduction check
_FAN_IN = 8  # partial results added per combining task


def _is_hole(x) -> bool:
    return isinstance(x, Hole)


class _Job:
    """Everything a chunk task needs except its data: the function with its data
    taken out (``Hole`` markers), the arguments likewise, and what to differentiate.
    Shipped once per worker as one graph key."""

    def __init__(self, func, args, kwargs, argnums) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.argnums = argnums

    def grad_and_value(self, blocks) -> tuple[list, Any]:
        """The gradient leaves and the value of the loss on these data blocks."""
        from ..api.reverse import grad_and_value

        holes, entries = find(self.func, _is_hole)
        func = rebuild(self.func, entries, iter([blocks[h.index] for h in holes]))
        fill = functools.partial(optree.tree_map, lambda x: blocks[x.index] if _is_hole(x) else x,
                                 none_is_leaf=True)
        g, value = grad_and_value(func, self.argnums)(*fill(self.args), **fill(self.kwargs))
        return tree_flatten(g)[0], value


def _chunk(job: _Job, kind: str, *blocks):
    """One chunk's weighted gradient and value (weight n_c for a mean, 1 for a sum)."""
    leaves, value = job.grad_and_value(blocks)
    weight = len(blocks[0]) if kind == "mean" else 1
    return [leaf * weight for leaf in leaves], value * weight


def _add(*parts):
    leaves = [sum(p[0][i] for p in parts) for i in range(len(parts[0][0]))]
    return leaves, sum(p[1] for p in parts)


def _finish(total, kind: str, rows: int):
    leaves, value = total
    if kind == "mean" and rows:
        return [leaf / rows for leaf in leaves], value / rows
    return leaves, value


def _check_reduction(job: _Job, requested: str, where: str, *heads) -> str:
    """Which reduction the loss is, from its values and gradients on the first rows."""
    m = len(heads[0]) // 2
    if m == 0:  # at most one row: one chunk, nothing to combine
        return "mean" if requested == "auto" else requested

    def probe(rows):
        leaves, value = job.grad_and_value([h[rows] for h in heads])
        return np.concatenate([np.ravel(np.asarray(x)) for x in [value, *leaves]])

    a, b, both = probe(slice(0, m)), probe(slice(m, 2 * m)), probe(slice(0, 2 * m))
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(both))):
        if requested != "auto":
            return requested
        raise DaskReductionError(
            f"{where}: the loss or its gradient is not finite on the first rows of the dask "
            "data, so npfunc cannot check whether it is a mean or a sum over rows. Pass "
            "reduction='mean' or 'sum' to npfunc.dask.grad.")
    tol = np.sqrt(np.finfo(np.result_type(both.dtype, np.float32)).eps) * (
        np.linalg.norm(a) + np.linalg.norm(b) + np.linalg.norm(both))
    is_mean = np.linalg.norm(both - (a + b) / 2) <= tol
    is_sum = np.linalg.norm(both - (a + b)) <= tol
    if is_mean and is_sum and requested == "auto":
        raise DaskReductionError(
            f"{where}: on the first rows of the dask data the loss and its gradient are zero, "
            "so npfunc cannot tell whether the loss is a mean or a sum over rows. Pass "
            "reduction='mean' or 'sum' to npfunc.dask.grad.")
    found = "mean" if is_mean else "sum" if is_sum else None
    agrees = found is not None and (requested == "auto" or requested == found or is_mean and is_sum)
    if not agrees:
        said = f"it was declared a {requested}, but " if requested != "auto" else ""
        seen = f"the {found}" if found else "neither the mean nor the sum"
        raise DaskReductionError(
            f"{where}: the function reads dask data, so its gradient is computed chunk by chunk, "
            f"which is exact only for a mean or a sum over rows; {said}on {2 * m} rows its value "
            f"and gradient are {seen} of those on the two halves. Write the loss as a mean (or "
            "sum) over rows of per-row terms (a data-independent term may be added to a mean, "
            "not to a sum), or compute the data in memory first (X.compute()).")
    return requested if requested != "auto" else found


def _data(func, args, kwargs):
    """The dask arrays a call reads: those closed over (in ``find`` order), then those
    among the arguments; and the function, arguments and keywords with ``Hole``s."""
    closed, entries = find(func, is_dask_array)
    counter = iter(range(1 << 62))
    hollow = rebuild(func, entries, (Hole(next(counter)) for _ in closed))
    data = list(closed)

    def take(x):
        if is_dask_array(x):
            data.append(x)
            return Hole(next(counter))
        return x

    args = optree.tree_map(take, args, none_is_leaf=True)
    kwargs = optree.tree_map(take, kwargs, none_is_leaf=True)
    return data, hollow, args, kwargs


def _rows(data, where: str):
    """The data's common number of rows and row chunks (rechunking along rows to
    agree; chunks along other axes are an error naming the rechunk)."""
    first = None
    out = []
    for x in data:
        if x.ndim == 0:
            raise DaskChunkingError(
                f"{where}: the function reads a 0-dimensional dask array, which has no rows to "
                "split the computation by; compute it first (x.compute()).")
        if any(n != n for n in x.shape) or any(c != c for c in x.chunks[0]):
            raise DaskChunkingError(
                f"{where}: a dask array the function reads has unknown chunk sizes (shape "
                f"{x.shape}); call x.compute_chunk_sizes() first.")
        split = [i for i in range(1, x.ndim) if len(x.chunks[i]) > 1]
        if split:
            fix = ", ".join(f"{i}: -1" for i in split)
            raise DaskChunkingError(
                f"{where}: the gradient over dask data is computed chunk by chunk along rows "
                f"(axis 0), but a dask array of shape {x.shape} is also split along axis "
                f"{split[0]} (chunks {x.chunks}). Rechunk it first: x.rechunk({{{fix}}}).")
        if first is None:
            first = x
        elif x.shape[0] != first.shape[0]:
            raise DaskChunkingError(
                f"{where}: the dask arrays the function reads have different numbers of rows "
                f"({first.shape[0]} and {x.shape[0]}); every dask array is split by rows (axis "
                "0), so they must agree. Compute small arrays that are not row data in memory "
                "(x.compute()).")
        elif x.chunks[0] != first.chunks[0]:
            x = x.rechunk({0: first.chunks[0]})
        out.append(x)
    return out, first.shape[0], first.chunks[0]


def grad_and_value_over_chunks(func: Callable, args: tuple, kwargs: dict, argnums, transform: str,
                               reduction: str = "auto", has_aux: bool = False):
    """``(gradient, value)`` of ``func(*args, **kwargs)`` w.r.t. ``argnums``, computed
    as a Dask reduction over the row chunks of the dask arrays it reads; or
    ``NotImplemented`` when it reads none."""
    import dask

    if reduction not in REDUCTIONS:
        raise ValueError(f"{transform}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not (any(is_dask_array(x) for x in optree.tree_leaves((args, kwargs), none_is_leaf=True))
            or find(func, is_dask_array)[0]):
        return NotImplemented  # the common case, kept cheap: this runs on every grad call
    data, hollow, hollow_args, hollow_kwargs = _data(func, args, kwargs)
    where = describe_stack(transform)
    if has_aux:
        raise DaskTransformError(
            f"{where}: has_aux=True is not supported when the function reads dask data: the "
            "gradient is combined from chunks, and an aux value per chunk has no combination. "
            "Compute the aux values separately (e.g. with vmap over the dask array).")
    nums = normalize_argnums(argnums, len(args), transform)
    for i in nums:
        if any(_is_hole(x) for x in optree.tree_leaves(hollow_args[i], none_is_leaf=True)):
            raise DaskTransformError(
                f"{where}: argument {i} is differentiated but holds a dask array; the gradient "
                "over dask data is taken w.r.t. in-memory parameters, with the data as other "
                "arguments or closed over. Per-row gradients w.r.t. the data are "
                "vmap(grad(f)) over the dask array.")
    if current_stack() or any(isinstance(x, Tracer) for x in optree.tree_leaves((args, kwargs))):
        raise DaskTransformError(
            f"{where}: the function reads dask data inside another transform; the gradient over "
            "dask data is computed by Dask outside any transform, so it cannot be nested "
            "(grad of it, vmap of it). Apply npfunc's transforms to the per-chunk function "
            "instead, or compute the data in memory.")
    data, rows, chunks = _rows(data, where)
    # Not pure: a fresh key per call, as the function may read state that changed.
    job = dask.delayed(_Job(hollow, hollow_args, hollow_kwargs, nums), pure=False, traverse=False)
    heads = [x[:2 * min(_CHECK_ROWS, rows // 2)] for x in data]
    kind = dask.delayed(_check_reduction, pure=True)(job, reduction, where, *heads)
    blocks = [x.to_delayed().reshape(-1) for x in data]
    parts = [dask.delayed(_chunk, pure=True)(job, kind, *(b[c] for b in blocks))
             for c in range(len(chunks))]
    while len(parts) > 1:
        parts = [dask.delayed(_add, pure=True)(*parts[i:i + _FAN_IN])
                 for i in range(0, len(parts), _FAN_IN)]
    (leaves, value), = dask.compute(dask.delayed(_finish, pure=True)(parts[0], kind, rows))
    spec = tree_flatten(tuple(args[i] for i in nums))[1]
    grads = tree_unflatten(spec, leaves)
    return (grads[0] if isinstance(argnums, (int, np.integer)) else grads), value


class _ScalarPullback:
    """``vjp_fn`` of a scalar loss over dask data: the cotangent times the gradient."""

    def __init__(self, grads: tuple) -> None:
        self.grads = grads

    def __call__(self, cotangent):
        from ..core.errors import TangentError
        from ..core.values import shape_of

        leaves, _ = tree_flatten(cotangent)
        if len(leaves) != 1 or tuple(shape_of(leaves[0])) != ():
            raise TangentError(
                "vjp_fn: the function returns a scalar, so the cotangent must be a scalar, got "
                f"{cotangent!r}")
        ct = leaves[0]
        return optree.tree_map(lambda g: ct * g, self.grads)


def grad_hook(func, args, kwargs, argnums, has_aux, transform, with_value, reduction="auto"):
    """``npfunc.grad`` / ``grad_and_value`` of a function reading dask data, or
    ``NotImplemented`` when it reads none."""
    out = grad_and_value_over_chunks(func, args, kwargs, argnums, transform, reduction, has_aux)
    if out is NotImplemented or with_value:
        return out
    return out[0]


def vjp_hook(func, primals, has_aux, reduction="auto"):
    """``npfunc.vjp`` of a scalar function reading dask data, or ``NotImplemented``."""
    out = grad_and_value_over_chunks(func, primals, {}, tuple(range(len(primals))), "vjp",
                                     reduction, has_aux)
    if out is NotImplemented:
        return out
    grads, value = out
    return value, _ScalarPullback(grads)


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
         reduction: str = "auto") -> Callable:
    """``npfunc.grad`` with the reduction over dask data stated: ``"mean"`` or ``"sum"``
    (checked on the first rows), or ``"auto"`` (found by that check, as ``npfunc.grad``
    does).  Functions that read no dask array get ``npfunc.grad``.

    >>> import numpy as np, dask.array as da, npfunc
    >>> X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    >>> loss = lambda w, X: np.mean((X @ w) ** 2)
    >>> g = npfunc.dask.grad(loss, reduction="mean")(np.ones(2), X)
    >>> bool(np.allclose(g, npfunc.grad(loss)(np.ones(2), X.compute())))
    True
    """
    return _make(func, argnums, has_aux, reduction, "grad", with_value=False)


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
                   reduction: str = "auto") -> Callable:
    """``npfunc.grad_and_value`` with the reduction over dask data stated (see ``grad``)."""
    return _make(func, argnums, has_aux, reduction, "grad_and_value", with_value=True)


def vjp(func: Callable, *primals: Any, has_aux: bool = False, reduction: str = "auto"):
    """``npfunc.vjp`` of a scalar function over dask data, with the reduction stated."""
    from ..api.reverse import vjp as memory_vjp

    out = vjp_hook(func, primals, has_aux, reduction)
    return memory_vjp(func, *primals, has_aux=has_aux) if out is NotImplemented else out


def _make(func, argnums, has_aux, reduction, transform, with_value):
    from ..api import reverse

    if reduction not in REDUCTIONS:
        raise ValueError(f"{transform}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    memory = (reverse.grad_and_value if with_value else reverse.grad)(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = grad_hook(func, args, kwargs, argnums, has_aux, transform, with_value, reduction)
        return memory(*args, **kwargs) if out is NotImplemented else out

    return wrapper
