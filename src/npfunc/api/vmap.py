"""The batching transform: vmap."""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import numpy as np

from ..core.errors import BatchSizeError, ChunkSizeError, InDimsError, OutDimsError
from ..core.tracer import Tracer, snapshot
from ..core.values import ndim_of, shape_of
from ..dask._detect import has_dask
from ..interpreters.batching import BatchInterpreter, BatchTracer
from ..interpreters.structured import dense
from ..primitives.indexing.aliasing import check_plain_array, mark_input
from ..primitives.indexing.gather import getitem
from ..primitives.shape.basic import broadcast_to, concatenate_arrays, expand_dims, moveaxis
from ._common import (ArgsSpec, _is_leaf, as_array, check_containers_kept, check_outputs, is_array, optree, tree_flatten,
                      tree_unflatten, write_back, check_not_shared_with)

RANDOMNESS = ("error", "different", "same")


def _leaf_paths(tree) -> list[str]:
    paths = optree().tree_paths(tree, none_is_leaf=True)
    return ["args" + "".join(f"[{p!r}]" for p in path) for path in paths]


def check_chunk_size(chunk_size, transform: str) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer))
                                   or isinstance(chunk_size, bool) or chunk_size <= 0):
        raise ChunkSizeError(
            f"{transform}: chunk_size must be a positive int or None, got {chunk_size!r}")


def _broadcast_dims(dims_tree, tree, what: str, transform: str) -> list:
    """``dims_tree`` (a prefix of ``tree``) as one dim per leaf of ``tree``."""
    if isinstance(dims_tree, (int, np.integer)) and not isinstance(dims_tree, bool) or dims_tree is None:
        n = len(tree_flatten(tree, none_is_leaf=True)[0])
        return [dims_tree] * n
    if type(dims_tree) is tuple and isinstance(tree, tuple) and len(dims_tree) == len(tree) and all(
            d is None or type(d) is int for d in dims_tree):  # one dim per element (jacfwd's): no optree
        # (a plain tuple of dims also fits a named tuple of outputs: out_dims=(0, 2) for eigh's EighResult)
        dims = []
        for d, sub in zip(dims_tree, tree):
            if sub is None or _is_leaf(sub):
                dims.append(d)
            elif type(sub) is list and all(_is_leaf(x) for x in sub):
                dims += [d] * len(sub)
            else:
                dims += [d] * len(tree_flatten(sub, none_is_leaf=True)[0])
        return dims
    try:
        dims = optree().broadcast_prefix(dims_tree, tree, none_is_leaf=True)
    except ValueError as err:
        reason = str(err).split(";")[0].split(":")[0].split(", got")[0].strip()
        structure = optree().tree_structure(tree, none_is_leaf=True)
        shape = str(optree().tree_unflatten(structure, ["*"] * structure.num_leaves)).replace("'*'", "*")
        raise (InDimsError if what == "in_dims" else OutDimsError)(
            f"{transform}: {what}={dims_tree!r} does not match the structure of the "
            f"{'arguments' if what == 'in_dims' else 'outputs'}, {shape} ({reason}). Give one int "
            f"or None per {'argument' if what == 'in_dims' else 'output'}, or a single int for "
            "all.") from None
    for d in dims:
        if d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool)):
            raise (InDimsError if what == "in_dims" else OutDimsError)(
                f"{transform}: {what} entries must be int or None, got {d!r} in {dims_tree!r}")
    return dims


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """Map ``func`` over an axis of its inputs, as vectorised NumPy.

    ``in_dims`` says which axis of each argument is mapped (an int, ``None``
    for "not mapped", or a pytree matching the arguments); ``out_dims`` where
    the mapped axis goes in each output.  ``chunk_size`` processes the batch
    in pieces of that size to bound memory.

    >>> import numpy as np, npfunc
    >>> batched_dot = npfunc.vmap(np.dot)
    >>> batched_dot(np.ones((4, 3)), np.arange(12.0).reshape(4, 3))
    array([ 3., 12., 21., 30.])
    >>> npfunc.vmap(np.add, in_dims=(0, None))(np.zeros((2, 3)), np.arange(3.0))
    array([[0., 1., 2.],
           [0., 1., 2.]])
    """
    if randomness not in RANDOMNESS:
        raise ValueError(f"vmap: randomness must be one of {RANDOMNESS}, got {randomness!r}")
    check_chunk_size(chunk_size, "vmap")
    if not callable(func):
        raise TypeError(f"vmap: func must be callable, got {type(func).__name__}")

    int_dims = type(in_dims) is int and type(out_dims) is int and chunk_size is None

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if int_dims and not kwargs and args:
            size = _common_size(args, in_dims)
            if size is not None:
                return _vmap_arrays(func, args, in_dims, size, out_dims, randomness)
        leaves, spec = tree_flatten(args, none_is_leaf=True)
        if not isinstance(in_dims, (int, tuple, type(None))) or isinstance(in_dims, bool):
            raise InDimsError(
                f"vmap: in_dims must be an int, None or a tuple with one entry per argument, got "
                f"{type(in_dims).__name__}")
        if isinstance(in_dims, tuple) and len(in_dims) != len(args):
            raise InDimsError(
                f"vmap: in_dims has {len(in_dims)} entries but the function was called with "
                f"{len(args)} positional argument(s); give one int or None per argument")
        dims = [in_dims] * len(leaves) if in_dims is None or type(in_dims) is int else \
            _broadcast_dims(in_dims, args, "in_dims", "vmap")
        if has_dask(leaves, kwargs):  # a Dask graph running this vmap chunk by chunk
            from ..dask._vmap import dask_vmap
            return dask_vmap(func, args, leaves, dims, spec, kwargs, out_dims, randomness, chunk_size)
        size = _batch_size(leaves, dims, args)
        if chunk_size is None or chunk_size >= size:
            return _vmap_call(func, leaves, dims, spec, kwargs, size, out_dims, randomness)
        return _chunked(func, leaves, dims, spec, kwargs, size, out_dims, randomness, chunk_size)

    return wrapper


def _common_size(args, axis: int):
    """The size of the mapped axis when every argument is an ndarray that has it,
    the same for all; None otherwise (the general path then checks, and names
    what is wrong)."""
    size = None
    for a in args:
        if type(a) is not np.ndarray:
            return None
        shape = a.shape
        if not -len(shape) <= axis < len(shape):
            return None
        n = shape[axis]
        if size is None:
            size = n
        elif n != size:
            return None
    return size


def _vmap_arrays(func, args, axis, size, out_dim, randomness):
    """``vmap`` of a function of ndarrays, each mapped over ``axis``: the general
    path's steps without pytrees, for one output (else the general unbatching)."""
    with BatchInterpreter(size, randomness, "vmap") as interp:
        inputs = [_batched_input(interp, a, axis % a.ndim) for a in args]
        values = [t.val for t in inputs]
        out = func(*inputs)
    result = None
    if type(out) is BatchTracer and out._interp is interp:
        val = out.val
        nd = val.ndim
        if -nd <= out_dim < nd:
            out_dim %= nd
            result = _own_array(val if out.bdim == out_dim else moveaxis(val, out.bdim, out_dim), args)
    if result is None:
        result = _own_memory(_unbatch_outputs(out, interp, size, out_dim, "vmap"), args)
    _write_back_rows(args, [axis % a.ndim for a in args], inputs, values, interp)
    return result


def _batch_size(leaves, dims, args) -> int:
    sizes = {}  # leaf number -> size of its mapped axis (the leaves' paths only name them in errors)
    for k, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is None or leaf is None:
            continue
        if type(leaf) is np.ndarray or isinstance(leaf, Tracer):
            shape = leaf.shape
        elif not is_array(leaf) or isinstance(leaf, bool):
            raise InDimsError(
                f"vmap: in_dims says to map {_leaf_paths(args)[k]} over axis {d}, but it is a "
                f"{type(leaf).__name__}, not an array. Use None for it in in_dims.")
        else:
            shape = shape_of(leaf)
        nd = len(shape)
        if not -nd <= d < nd:
            path = _leaf_paths(args)[k]
            raise InDimsError(
                f"vmap: in_dims maps {path} over axis {d}, but it has {nd} dimension(s) "
                f"(shape {tuple(shape)}); valid axes are {-nd}..{nd - 1}"
                if nd else
                f"vmap: in_dims maps {path} over axis {d}, but it is 0-dimensional and has "
                "no axis to map over. Use None for it in in_dims.")
        sizes[k] = shape[d % nd]
    if not sizes:
        raise BatchSizeError(
            "vmap: no input is mapped: in_dims is None for every argument (or there are no "
            "array arguments). Map at least one array input.")
    if len(set(sizes.values())) > 1:
        paths = _leaf_paths(args)
        listing = ", ".join(f"{paths[k]} has size {n}" for k, n in sizes.items())
        raise BatchSizeError(
            f"vmap: the mapped axes of the inputs have different sizes: {listing}. All mapped "
            "inputs must have the same size along their in_dims axis.")
    return next(iter(sizes.values()))


def _vmap_call(func, leaves, dims, spec, kwargs, size, out_dims, randomness, transform="vmap",
               structured=False, hidden=False):
    with BatchInterpreter(size, randomness, transform, structured, hidden) as interp:
        wrapped = [leaf if d is None or leaf is None else _batched_input(interp, leaf, d % ndim_of(leaf))
                   for leaf, d in zip(leaves, dims)]
        values = [getattr(w, "val", None) for w in wrapped]
        args = tree_unflatten(spec, wrapped)
        out = func(*args, **kwargs)
    if type(spec) is not ArgsSpec:  # containers vmap built: the function must not rebind their entries
        check_containers_kept(args, wrapped, transform, none_is_leaf=True)
    result = _unbatch_outputs(out, interp, size, out_dims, transform)
    if transform == "vmap":
        result = _own_memory(result, leaves)
        _write_back_rows(leaves, dims, wrapped, values, interp)
    return result


def _own_memory(outputs, inputs):
    """``outputs`` with every plain array that shares memory with a plain input
    copied: a loop stacks its results into new arrays, which writes into the
    inputs (``_write_back_rows``) or into the results do not reach."""
    leaves, spec = tree_flatten(outputs, none_is_leaf=True)
    fresh = [_own_array(leaf, inputs) for leaf in leaves]
    return outputs if all(a is b for a, b in zip(fresh, leaves)) else tree_unflatten(spec, fresh)


def _own_array(x, inputs):
    """``x``, or a copy of it when it is a plain array sharing memory with a plain input."""
    if type(x) is not np.ndarray or (x.base is None and not any(x is a for a in inputs)):
        return x  # (an array that owns its memory and is no input is new)
    memory = {id(_memory_of(a)) for a in inputs if type(a) is np.ndarray}
    return x.copy() if id(_memory_of(x)) in memory else x


def _memory_of(x: np.ndarray):
    """The object owning the memory of the array ``x`` (NumPy points a view's
    ``base`` at it): two arrays share memory only if they have the same."""
    while type(x.base) is np.ndarray:
        x = x.base
    return x if x.base is None else x.base


def _write_back_rows(leaves, dims, wrapped, values, interp) -> None:
    """Give each mapped argument the function updated in place its new rows, as a
    loop over the rows (views of it) would leave it: ``wrapped[k]`` stands for
    them and held ``values[k]`` when the function was called."""
    updated = [k for k, (tracer, value) in enumerate(zip(wrapped, values))
               if type(tracer) is BatchTracer and tracer.val is not value and tracer._interp is interp]
    for k in updated:  # each argument has a stand-in of its own: another sharing memory missed the update
        check_not_shared_with([leaves[k]], [y for j, y in enumerate(leaves) if j != k], "vmap")
    for leaf, d, tracer, value in zip(leaves, dims, wrapped, values):
        if type(tracer) is not BatchTracer or tracer.val is value or tracer._interp is not interp:
            continue  # not mapped, or not updated in place
        d %= ndim_of(leaf)
        new = tracer.val if tracer.bdim is not None else broadcast_to(
            expand_dims(tracer.val, 0), (shape_of(leaf)[d],) + tuple(shape_of(tracer.val)))
        write_back(leaf, moveaxis(dense(new), tracer.bdim or 0, d))


def _batched_input(interp, leaf, d):
    """The traced value standing for one element of ``leaf`` mapped over axis ``d``:
    an array view of ``leaf`` when it has axes left, else a scalar (as iterating
    over a 1-d array gives scalars)."""
    check_plain_array(leaf)
    tracer = BatchTracer(interp, snapshot(as_array(leaf)), d)
    return mark_input(tracer, leaf, d) if ndim_of(leaf) > 1 else tracer


def _unbatch_outputs(out, interp, size, out_dims, transform):
    if type(out_dims) is tuple and type(out) is tuple and len(out_dims) == len(out) and all(
            d is None or type(d) is int for d in out_dims):  # one dim per element (jacfwd's): each on its own
        parts, first = [], 0
        for sub, d in zip(out, out_dims):
            leaves, spec = tree_flatten(sub, none_is_leaf=True)
            parts.append(tree_unflatten(spec, _unbatch_leaves(leaves, [d] * len(leaves), interp, size,
                                                              transform, first)))
            first += len(leaves)
        return tuple(parts)
    out_leaves, out_spec = tree_flatten(out, none_is_leaf=True)
    dims = [out_dims] * len(out_leaves) if out_dims is None or type(out_dims) is int else \
        _broadcast_dims(out_dims, out, "out_dims", transform)
    return tree_unflatten(out_spec, _unbatch_leaves(out_leaves, dims, interp, size, transform))


def _unbatch_leaves(out_leaves, dims, interp, size, transform, first=0):
    """Each output leaf with its batch axis at its out_dim (``first``: the number of leaves before these)."""
    results = []
    for k, (leaf, d) in enumerate(zip(out_leaves, dims), first):
        if leaf is None:
            results.append(None)
            continue
        leaf = check_outputs([leaf], transform, k)[0] if not isinstance(leaf, Tracer) else leaf
        batched = isinstance(leaf, BatchTracer) and leaf._interp is interp
        if d is None:
            if batched:
                raise OutDimsError(
                    f"{transform}: out_dims is None for output {k}, but that output varies over "
                    "the batch. Give it an int out_dim, or return a value that does not depend "
                    "on the mapped inputs.")
            results.append(leaf)
            continue
        nd = ndim_of(leaf) + 1
        if not -nd <= d < nd:
            raise OutDimsError(
                f"{transform}: out_dims={d} is out of range for output {k}, which has "
                f"{nd} dimension(s) with the batch axis; valid values are {-nd}..{nd - 1}")
        d %= nd
        if batched:
            results.append(dense(leaf.val) if leaf.bdim == d else moveaxis(dense(leaf.val), leaf.bdim, d))
        else:
            value = broadcast_to(expand_dims(leaf, d), _insert(shape_of(leaf), d, size))
            results.append(np.ascontiguousarray(value) if not isinstance(value, Tracer) else value)
    return results


def _insert(shape, axis, n):
    shape = list(shape)
    shape.insert(axis, n)
    return tuple(shape)


def _chunked(func, leaves, dims, spec, kwargs, size, out_dims, randomness, chunk_size):
    from ..random import same_draws

    pieces = []
    # randomness="same" is one draw for the whole batch: every chunk draws what the first drew
    with (same_draws() if randomness == "same" else contextlib.nullcontext(lambda: None)) as restart:
        for start in range(0, size, chunk_size):
            stop = min(start + chunk_size, size)
            chunk = [
                leaf if d is None or leaf is None else
                getitem(leaf, (slice(None),) * (d % ndim_of(leaf)) + (slice(start, stop),))
                for leaf, d in zip(leaves, dims)
            ]
            restart()
            pieces.append(_vmap_call(func, chunk, dims, spec, kwargs, stop - start, out_dims, randomness))
    _, out_spec = tree_flatten(pieces[0], none_is_leaf=True)
    dims_out = _broadcast_dims(out_dims, pieces[0], "out_dims", "vmap")
    flat = [tree_flatten(p, none_is_leaf=True)[0] for p in pieces]
    merged = []
    for k, d in enumerate(dims_out):
        parts = [f[k] for f in flat]
        if d is None or parts[0] is None:
            merged.append(parts[0])
        else:
            merged.append(concatenate_arrays(parts, d % ndim_of(parts[0])))
    return tree_unflatten(out_spec, merged)


def internal_vmap(func: Callable) -> Callable:
    """``vmap(func)`` over the leading axis of every argument for npfunc's own use (a
    solver's batched residual): its level is hidden, so messages name the user's
    transforms only (``vmap(grad(f))``, not ``vmap(grad(vmap(f)))``)."""
    def run(*args):
        leaves, spec = tree_flatten(args, none_is_leaf=True)
        dims = [0] * len(leaves)
        size = _batch_size(leaves, dims, args)
        return _vmap_call(func, leaves, dims, spec, {}, size, 0, "error", hidden=True)

    return run
