"""vmap over dask arrays: one vectorised vmap per chunk, as a Dask graph.

``npfunc.vmap`` hands a call here when an argument is a dask array.  The
mapped axis of every mapped input becomes one blockwise index (``"b"``), so
Dask gives each task matching blocks of the mapped inputs (aligning their
chunks along that axis) and the whole of every unmapped one; the task runs
the ordinary in-memory vmap on them, which is vectorised NumPy.

Output shapes and dtypes are known before anything is computed: the
function is run once under vmap on a batch of *zero* elements (every mapped
input, and every unmapped dask input, made an empty batch of zeros of its
shape and dtype).  No value is read, so functions that refuse some values
(a Cholesky factor of zeros) are evaluated safely, and shape errors appear
when the graph is built, as they would in memory.
"""
from __future__ import annotations

import uuid

import numpy as np
import optree

from ..api._common import tree_flatten, tree_unflatten
from ..api.vmap import _broadcast_dims, _leaf_paths, _vmap_call, vmap
from ..core.context import describe_stack
from ..core.errors import BatchSizeError, InDimsError
from ..core.tracer import Tracer
from ._detect import is_dask_array
from ._errors import DaskChunkingError, DaskTransformError

_BATCH = "b"  # the blockwise index of the mapped axis


class _Call:
    """``func`` called with its positional and keyword leaves as one flat list."""

    def __init__(self, func, arg_spec, n_args: int, kw_spec) -> None:
        self.func = func
        self.arg_spec = arg_spec
        self.n_args = n_args
        self.kw_spec = kw_spec

    def __call__(self, *leaves):
        args = tree_unflatten(self.arg_spec, list(leaves[:self.n_args]))
        kwargs = tree_unflatten(self.kw_spec, list(leaves[self.n_args:]))
        return self.func(*args, **kwargs)


class _Block:
    """The task run on one chunk: the in-memory vmap, returning the output leaves."""

    def __init__(self, call: _Call, dims: list, static: list, positions: list[int], out_dims,
                 chunk_size) -> None:
        self.call = call
        self.dims = tuple(dims)
        self.static = static
        self.positions = positions
        self.out_dims = out_dims
        self.chunk_size = chunk_size

    def __call__(self, *blocks):
        leaves = list(self.static)
        for position, block in zip(self.positions, blocks):
            leaves[position] = block
        out = vmap(self.call, in_dims=self.dims, out_dims=self.out_dims,
                   chunk_size=self.chunk_size)(*leaves)
        return tuple(tree_flatten(out, none_is_leaf=True)[0])


class _Pick:
    """Output leaf ``k`` of a chunk's results."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, results):
        return results[self.k]


def dask_vmap(func, args: tuple, leaves: list, dims: list, spec, kwargs: dict, out_dims,
              randomness: str, chunk_size):
    """``vmap(func, in_dims, out_dims)(*args, **kwargs)`` with dask arrays among the
    argument ``leaves`` (mapped over ``dims``): the outputs are dask arrays."""
    import dask
    import dask.array as da
    from dask.utils import funcname

    where = describe_stack("vmap")
    kw_leaves, kw_spec = tree_flatten(kwargs, none_is_leaf=True)
    paths = _leaf_paths(args) + [f"kwargs{''.join(f'[{p!r}]' for p in path)}"
                                 for path in optree.tree_paths(kwargs, none_is_leaf=True)]
    leaves = list(leaves) + kw_leaves
    dims = [None if d is None else int(d) for d in dims] + [None] * len(kw_leaves)
    call = _Call(func, spec, len(leaves) - len(kw_leaves), kw_spec)
    _check_traced(leaves, paths, where)
    size, chunks = _batch(leaves, dims, paths, where)
    _check_chunks(leaves, dims, paths, randomness, where)

    # The graph's inputs: mapped leaves carry the batch index at their mapped
    # axis; an unmapped dask array (or ndarray: one shared copy in the graph)
    # gets indices of its own, so every task receives all of it.
    static, positions, pairs = list(leaves), [], []
    for k, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is not None:
            d %= np.ndim(leaf) if not is_dask_array(leaf) else leaf.ndim
            dims[k] = d
            if not is_dask_array(leaf):
                leaf = np.asarray(leaf)
                leaf = da.from_array(leaf, chunks=tuple(chunks if i == d else -1
                                                        for i in range(leaf.ndim)))
            index = tuple(_BATCH if i == d else f"a{k}_{i}" for i in range(leaf.ndim))
        elif is_dask_array(leaf) or (isinstance(leaf, np.ndarray) and leaf.ndim):
            leaf = leaf if is_dask_array(leaf) else da.from_array(leaf, chunks=-1)
            index = tuple(f"a{k}_{i}" for i in range(leaf.ndim))
        else:
            continue
        static[k] = None
        positions.append(k)
        pairs += [leaf, index]

    out_leaves, out_spec, shapes, real_dims = _abstract_outputs(call, leaves, dims, out_dims,
                                                                randomness, size)
    block = _Block(call, dims, static, positions, out_dims, chunk_size)
    # A fresh name per call: the function may read state that changed since the last.
    token = f"vmap-{funcname(func)}"
    results = da.blockwise(block, (_BATCH,), *pairs, concatenate=True, align_arrays=True,
                           dtype=object, meta=np.empty((0,), dtype=object),
                           name=f"{token}-chunks-{uuid.uuid4().hex}")
    outputs = []
    for k, (leaf, shape, d) in enumerate(zip(out_leaves, shapes, real_dims)):
        if leaf is None:
            outputs.append(None)
            continue
        dtype = np.result_type(leaf)
        meta = np.empty((0,) * len(shape), dtype=dtype)
        if d is None:  # the same in every chunk: the first chunk's
            first = dask.delayed(_Pick(k), pure=True)(results.to_delayed()[0])
            outputs.append(da.from_delayed(first, shape=shape, dtype=dtype, meta=meta))
            continue
        index = tuple(_BATCH if i == d else f"o{i}" for i in range(len(shape)))
        new_axes = {f"o{i}": n for i, n in enumerate(shape) if i != d}
        outputs.append(da.blockwise(_Pick(k), index, results, (_BATCH,), new_axes=new_axes,
                                    dtype=dtype, meta=meta, name=f"{token}-{uuid.uuid4().hex}"))
    return tree_unflatten(out_spec, outputs)


def _check_traced(leaves, paths, where):
    for k, leaf in enumerate(leaves):
        if isinstance(leaf, Tracer):
            raise DaskTransformError(
                f"{where}: vmap over dask arrays was given {paths[k]}, a value traced by an "
                "enclosing transform; the dask graph runs later, outside that transform, and "
                "cannot carry it. Apply the transforms inside the mapped function "
                "(vmap(grad(f)) over the dask array), or use npfunc.dask.grad for a gradient "
                "over dask data.")


def _check_chunks(leaves, dims, paths, randomness, where):
    for k, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is not None and is_dask_array(leaf):
            bad = [i for i, c in enumerate(leaf.chunks) if i != d % max(leaf.ndim, 1) and len(c) > 1]
            if bad:
                fix = ", ".join(f"{i}: -1" for i in bad)
                raise DaskChunkingError(
                    f"{where}: {paths[k]} is mapped over axis {d % leaf.ndim} but is also split "
                    f"into chunks along axis {bad[0]} (chunks {leaf.chunks}); each task must see "
                    f"whole elements of the batch. Rechunk it first: x.rechunk({{{fix}}}).")
    if randomness != "error":
        raise DaskTransformError(
            f"{where}: randomness={randomness!r} is not supported over dask arrays: every chunk "
            "would draw from its own copy of the generator, so the draws would repeat across "
            "chunks and processes. Draw the random numbers as a dask array (dask.array.random) "
            "chunked like the data and pass them as a mapped input.")


def _batch(leaves, dims, paths, where) -> tuple[int, tuple]:
    """The batch size and the chunks of the mapped axis (those of the first mapped
    dask array, or one chunk when only unmapped inputs are dask arrays)."""
    sizes, chunks = {}, None
    for k, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is None or leaf is None:
            continue
        dask_leaf = is_dask_array(leaf)
        if not dask_leaf and not (isinstance(leaf, (np.ndarray, np.generic, int, float, complex))
                                  and not isinstance(leaf, bool)):
            raise InDimsError(
                f"{where}: in_dims says to map {paths[k]} over axis {d}, but it is a "
                f"{type(leaf).__name__}, not an array. Use None for it in in_dims.")
        shape = tuple(leaf.shape) if dask_leaf else np.shape(leaf)
        nd = len(shape)
        if not -nd <= d < nd:
            raise InDimsError(
                f"{where}: in_dims maps {paths[k]} over axis {d}, but it has {nd} "
                f"dimension(s) (shape {shape}); valid axes are {-nd}..{nd - 1}" if nd else
                f"{where}: in_dims maps {paths[k]} over axis {d}, but it is 0-dimensional and "
                "has no axis to map over. Use None for it in in_dims.")
        n = shape[d % nd]
        if dask_leaf and n != n:  # NaN: chunk sizes unknown (after boolean indexing)
            raise DaskChunkingError(
                f"{where}: {paths[k]} has unknown chunk sizes along its mapped axis {d % nd}; "
                "call x.compute_chunk_sizes() first.")
        sizes[paths[k]] = n
        if dask_leaf and chunks is None:
            chunks = leaf.chunks[d % nd]
    if not sizes:
        raise BatchSizeError(
            f"{where}: no input is mapped: in_dims is None for every argument. Map at least one "
            "array input.")
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{p} has size {n}" for p, n in sizes.items())
        raise BatchSizeError(
            f"{where}: the mapped axes of the inputs have different sizes: {listing}. All mapped "
            "inputs must have the same size along their in_dims axis.")
    size = next(iter(sizes.values()))
    return size, chunks if chunks is not None else (size,)


def _abstract_outputs(call, leaves, dims, out_dims, randomness, size):
    """Run the function under vmap on an empty batch: the output structure, each
    output's shape in the result and its out_dim.  Unmapped dask inputs are made an
    empty batch too (so no value is needed), and out_dims None is taken as 0 here."""
    zeros, zero_dims = [], []
    for leaf, d in zip(leaves, dims):
        if d is not None:
            shape = list(np.shape(leaf) if not is_dask_array(leaf) else leaf.shape)
            shape[d] = 0
            zeros.append(np.zeros(shape, dtype=np.result_type(leaf) if not is_dask_array(leaf)
                                  else leaf.dtype))
            zero_dims.append(d)
        elif is_dask_array(leaf):
            zeros.append(np.zeros((0,) + tuple(leaf.shape), dtype=leaf.dtype))
            zero_dims.append(0)
        else:
            zeros.append(leaf)
            zero_dims.append(None)
    zero_out_dims = optree.tree_map(lambda d: 0 if d is None else d, out_dims, none_is_leaf=True)
    spec = tree_flatten(tuple(zeros), none_is_leaf=True)[1]
    out = _vmap_call(call, zeros, zero_dims, spec, {}, 0, zero_out_dims, randomness)
    out_leaves, out_spec = tree_flatten(out, none_is_leaf=True)
    real = _broadcast_dims(out_dims, out, "out_dims", "vmap")
    stand_in = _broadcast_dims(zero_out_dims, out, "out_dims", "vmap")
    shapes = []
    for leaf, d, z in zip(out_leaves, real, stand_in):
        if leaf is None:
            shapes.append(None)
            continue
        shape = list(np.shape(leaf))
        del shape[z % len(shape)]
        if d is not None:
            d %= len(shape) + 1
            shape.insert(d, size)
        shapes.append(tuple(shape))
    real = [None if d is None or s is None else d % len(s) for d, s in zip(real, shapes)]
    return out_leaves, out_spec, shapes, real
