"""Jacobians and Hessians: jacrev (vmap over vjp), jacfwd (vmap over jvp), hessian."""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from ..core.context import current_stack
from ..core.debug import FLAGS
from ..core.lazy import deferred
from ..core.tracer import Tracer, snapshot
from ..core.values import dtype_of, shape_of
from ..core.zeros import zero
from ..interpreters.batching import BatchInterpreter, BatchTracer
from ..interpreters.jvp import JVPInterpreter, JVPTracer
from ..interpreters.reverse import ReverseInterpreter, ReverseTracer, backward
from ..interpreters.structured import OneHot
from ..primitives.elementwise.arithmetic import add, multiply, ones_like, real, zeros_like
from ..primitives.indexing.aliasing import mark_input
from ..primitives.shape.basic import expand_dims, reshape, stack, transpose
from ._common import (ArgsSpec, arg_name, check_callable, check_differentiable, check_not_shared_with,
                      normalize_argnums, select_args,
                      tree_flatten, tree_unflatten, write_back)
from .forward import trace_jvp, traced_outputs, written_back
from .reverse import _traced_outputs, trace_vjp
from .tape_cache import TapeCache, cacheable_input, compile_pull_back, read_tape
from .vmap import RANDOMNESS, _unbatch_outputs, check_chunk_size, vmap

# (loaded on a tape's first use: custom-rule calls and the compiler stay unloaded until then)
taped_run = deferred("npfunc.api.tape_replay:taped", globals(), "taped_run")
transplant = deferred("npfunc.api.tape_replay:transplant", globals(), "transplant")


def _basis(leaves):
    """Rows of the identity, split into one block per leaf: block k has shape
    ``(total, *shape_k)``.  Together they enumerate every unit direction."""
    sizes = [math.prod(shape_of(x)) for x in leaves]
    total = sum(sizes)
    blocks = []
    start = 0
    for x, n in zip(leaves, sizes):
        block = np.zeros((total, n), dtype=dtype_of(x))
        block[np.arange(start, start + n), np.arange(n)] = 1
        blocks.append(block.reshape((total,) + tuple(shape_of(x))))
        start += n
    return blocks


def _map_basis(fn, like, transform, out_dims=0, randomness="error"):
    """``vmap(fn)`` over the standard basis of ``like``'s space, kept
    structured (``OneHot``) so products with it cost what their result costs.
    ``fn`` receives a list holding the basis element (the basis is no pytree
    and no input the user passed: nothing to flatten, mark or copy)."""
    basis = OneHot(np.ones(shape_of(like), dtype=dtype_of(like)), unit=True)
    with BatchInterpreter(basis.size, randomness, transform, True) as interp:
        out = fn([BatchTracer(interp, basis, 0)])
    return _unbatch_outputs(out, interp, basis.size, out_dims, transform)


def _split_rows(value, sizes, index):
    """Rows ``[start, start + sizes[index])`` of a batched value."""
    if len(sizes) == 1:
        return value
    from ..primitives.indexing.gather import getitem

    start = sum(sizes[:index])
    return getitem(value, slice(start, start + sizes[index]))


def _nest(out_spec, in_spec, entries, single_arg: bool):
    """``entries[i][j]`` (output leaf i, input leaf j) in the user's structure."""
    per_output = []
    for row in entries:
        per_input = tree_unflatten(in_spec, row)
        per_output.append(per_input[0] if single_arg else per_input)
    return tree_unflatten(out_spec, per_output)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """The Jacobian of ``func`` w.r.t. ``argnums``, by reverse mode: one vjp
    per output element, run together with vmap (``chunk_size`` rows at a
    time; ``chunk_size=1`` is a plain loop).

    The result has shape ``output.shape + input.shape`` per output/input pair,
    nested as the outputs, then as the arguments.

    >>> import numpy as np, npfunc
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> J = npfunc.jacrev(np.sin)(x)
    >>> np.allclose(J, np.diag(np.cos(x)))
    True
    """
    check_callable(func, "jacrev")
    check_chunk_size(chunk_size, "jacrev")
    normalize_argnums(argnums, 1 << 30, "jacrev")

    # one array in, one array out, nothing else asked: the common case, without pytrees
    lone = type(argnums) is int and not has_aux and chunk_size is None
    cache = TapeCache()  # compiled pull-backs, by tape structure (api/tape_cache.py)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = normalize_argnums(argnums, len(args), "jacrev")
        diff_args, partial = select_args(func, args, nums, kwargs)
        x = diff_args[0]
        if lone and type(x) is np.ndarray and x.dtype.kind == "f":
            top = not current_stack()  # (the tape's values are plain: a compiled pull-back may serve)
            with ReverseInterpreter("jacrev") as interp:
                tracer = mark_input(interp.new_input(x), x)
                in_node = tracer.node  # before func: an in-place update rebinds tracer.node
                out = partial(tracer)
            try:
                if type(out) is ReverseTracer and out._interp is interp and out.index is None:
                    primal = out.primal
                    if type(primal) is np.ndarray and primal.dtype.kind == "f" and primal.size > 1:
                        out_node = out.node
                        if top and cache.active and tracer.node is in_node and not FLAGS.nans:
                            tape = read_tape(out_node, in_node)
                            if tape is not None:
                                return cache.pull_back(tape, lambda: _lone_jacobian(out_node, in_node),
                                                       _compile_jacrev)
                        return _lone_jacobian(out_node, in_node)
                in_spec = tree_flatten(diff_args)[1]
                out, pullback, aux = _traced_outputs(interp, out, None, False, "jacrev", in_spec, [x], [in_node])
                return _rows_to_jacobian(out, pullback, aux, diff_args, has_aux, chunk_size,
                                         isinstance(argnums, int))
            finally:  # after the backward passes, which read the tape's (unchanged) argument
                if tracer.node is not in_node:  # the function updated its argument: so does the caller's
                    if hasattr(partial, "others"):
                        check_not_shared_with([x], partial.others(), "jacrev")
                    write_back(x, tracer.primal)
        out, pullback, aux = trace_vjp(partial, diff_args, has_aux, "jacrev", arg_name(nums))
        return pullback.write_back_updates(
            _rows_to_jacobian(out, pullback, aux, diff_args, has_aux, chunk_size, isinstance(argnums, int)))

    wrapper._tape_cache = cache  # (for tests and benchmarks: hits, misses, compiles)
    return wrapper


def _rows_to_jacobian(out, pullback, aux, diff_args, has_aux: bool, chunk_size, single_arg: bool):
    """jacrev's result from a traced function's outputs and pullback: every
    output direction pulled back (one vjp per output element, batched)."""
    out_leaves, out_spec = tree_flatten(out)
    in_leaves = pullback._in_leaves
    sizes = [math.prod(shape_of(o)) for o in out_leaves]

    def pull(cts):
        return [zeros_like(p) if c is zero else c for c, p in zip(pullback.flat(cts), in_leaves)]

    def rows(pull):
        """Every output direction pulled back, stacked: one block per input leaf."""
        if sum(sizes) == 1:  # one output element: a single pullback, no vmap level
            seed = [ones_like(o) if n else zeros_like(o) for o, n in zip(out_leaves, sizes)]
            return [expand_dims(c, 0) for c in pull(seed)]
        if chunk_size == 1:
            basis = _basis(out_leaves)
            found = [pull([b[i] for b in basis]) for i in range(sum(sizes))]
            return [stack([r[j] for r in found]) if found else
                    np.zeros((0,) + tuple(shape_of(x)), dtype_of(x)) for j, x in enumerate(in_leaves)]
        if chunk_size is None and len(out_leaves) == 1:
            return _map_basis(pull, out_leaves[0], "jacrev")
        return vmap(pull, chunk_size=chunk_size)(_basis(out_leaves))

    stacked = rows(pull)
    complex_out = [dtype_of(o).kind == "c" for o in out_leaves]
    if any(complex_out):
        # A vjp with cotangent e_k gives d Re(f_k); with 1j * e_k, d Im(f_k) (the real
        # inner product): a complex output's rows take both, so that jacrev, like jacfwd,
        # gives df_k/dx (along the real part of a complex input).
        stacked_im = rows(lambda cts: pull([multiply(c, 1j) if cx else c
                                            for c, cx in zip(cts, complex_out)]))
    entries = []
    for i, o in enumerate(out_leaves):
        row = []
        for j, x in enumerate(in_leaves):
            block = _split_rows(stacked[j], sizes, i)
            if complex_out[i]:
                im = _split_rows(stacked_im[j], sizes, i)
                if dtype_of(x).kind == "c":
                    block, im = real(block), real(im)
                block = add(block, multiply(im, 1j))
            row.append(reshape(block, tuple(shape_of(o)) + tuple(shape_of(x))))
        entries.append(row)
    _, in_spec = tree_flatten(diff_args)
    jac = _nest(out_spec, in_spec, entries, single_arg)
    return (jac, aux) if has_aux else jac


def _compile_jacrev(tape):
    return compile_pull_back(tape, _lone_jacobian, "jacrev")


def _lone_jacobian(out_node, in_node):
    """jacrev's rows for one real array output of more than one element and
    one real array input: every output direction pulled back at once."""
    out, x = out_node[4], in_node[4]

    def pull(cts):
        (ct,) = backward([(out_node, None, cts[0])], [in_node])
        return [zeros_like(x) if ct is zero else ct]

    (block,) = _map_basis(pull, out, "jacrev")
    shape = out.shape + x.shape
    return block if block.shape == shape else reshape(block, shape)


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """The Jacobian of ``func`` w.r.t. ``argnums``, by forward mode: one jvp
    per input element, run together with vmap.

    >>> import numpy as np, npfunc
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> J = npfunc.jacfwd(np.sin)(x)
    >>> np.allclose(J, np.diag(np.cos(x)))
    True
    """
    return _make_jacfwd(func, argnums, has_aux, randomness, taped=True)


#: where a traced leaf of jacfwd's aux was (the others bypass its vmap: a Python int stays one)
_TRACED = object()


def _make_jacfwd(func, argnums, has_aux: bool, randomness: str, taped: bool) -> Callable:
    """``jacfwd``; ``taped``: at top level, with one real array in and no aux,
    run ``func`` under a reverse level and push the basis through its tape
    (``tape_replay``; compiled per structure by ``tape_cache``)."""
    check_callable(func, "jacfwd")
    if randomness not in RANDOMNESS:
        raise ValueError(f"jacfwd: randomness must be one of {RANDOMNESS}, got {randomness!r}")
    normalize_argnums(argnums, 1 << 30, "jacfwd")
    # (randomness other than 'error' draws batched values: the composition's business)
    taped = taped and type(argnums) is int and not has_aux and randomness == "error"
    cache = TapeCache()

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = normalize_argnums(argnums, len(args), "jacfwd")
        diff_args, partial = select_args(func, args, nums, kwargs)
        x = diff_args[0]
        if taped and cacheable_input(x) and not current_stack() and not FLAGS.nans and cache.warm():
            # partial runs under a reverse level inside jacfwd's batch level (idle: it meets
            # the transform stack it meets eagerly), then the basis goes through its tape
            return taped_run(partial, x, [BatchInterpreter(x.size, "error", "jacfwd", True),
                                          ReverseInterpreter("jacfwd", True)], cache, _jacfwd_of_tape, "jacfwd")
        in_leaves, in_spec = tree_flatten(diff_args)
        in_leaves = check_differentiable(in_leaves, "jacfwd", arg_name(nums))
        sizes = [math.prod(shape_of(x)) for x in in_leaves]
        box = {}
        x = in_leaves[0]
        lone = type(argnums) is int and type(x) is np.ndarray and x is diff_args[0]  # one array in: no pytree

        def push(tangents):
            if lone:
                with JVPInterpreter("jacfwd", True) as interp:
                    tracer = mark_input(JVPTracer(interp, x, snapshot(tangents[0])), x)
                    out = partial(tracer)
                outs, touts, out_spec, aux = traced_outputs(interp, out, has_aux, "jacfwd")
                outs, aux = written_back((x,), (tracer,), (x,), outs, aux, "jacfwd", getattr(partial, "others", None))
            else:
                outs, touts, out_spec, aux = trace_jvp(partial, in_leaves, tangents, in_spec, has_aux, "jacfwd",
                                                       hidden=True)
            box["spec"] = out_spec
            if has_aux:  # only traced leaves of aux go through the vmap; the rest stay as returned
                leaves, box["aux_spec"] = tree_flatten(aux)
                box["aux_kept"] = [_TRACED if isinstance(v, Tracer) else v for v in leaves]
                aux = [v for v in leaves if isinstance(v, Tracer)]
            return [zeros_like(o) if t is zero else t for o, t in zip(outs, touts)], outs, aux

        if len(in_leaves) == 1:
            columns, outs, aux = _map_basis(push, in_leaves[0], "jacfwd", out_dims=(0, None, None),
                                            randomness=randomness)
        else:
            columns, outs, aux = vmap(push, out_dims=(0, None, None), randomness=randomness)(
                _basis(in_leaves))
        if has_aux:
            traced = iter(aux)
            aux = tree_unflatten(box["aux_spec"], [next(traced) if v is _TRACED else v for v in box["aux_kept"]])
        out_spec = box["spec"]
        if lone and len(outs) == 1 and type(out_spec) is ArgsSpec and out_spec.n is None:
            jac = _lone_columns(columns[0], x.shape, tuple(shape_of(outs[0])))
            return (jac, aux) if has_aux else jac
        entries = []
        for i, o in enumerate(outs):
            row = []
            o_shape = tuple(shape_of(o))
            for j, x in enumerate(in_leaves):
                block = _split_rows(columns[i], sizes, j)
                x_shape = tuple(shape_of(x))
                block = reshape(block, x_shape + o_shape)  # input axes first
                perm = tuple(range(len(x_shape), len(x_shape) + len(o_shape))) + tuple(range(len(x_shape)))
                row.append(transpose(block, perm))
            entries.append(row)
        jac = _nest(box["spec"], in_spec, entries, isinstance(argnums, int))
        return (jac, aux) if has_aux else jac

    wrapper._tape_cache = cache
    return wrapper


def _jacfwd_of_tape(out, ref, in_node, x):
    """``jacfwd(f)(x)`` from the tape ``f`` recorded (see ``tape_replay``)."""

    def image(x_new):  # what f gives at the forward-mode value x_new
        return transplant(out, ref, in_node, x_new, tape=False)[0]

    return _make_jacfwd(image, 0, False, "error", taped=False)(x)


def _lone_columns(columns, x_shape, o_shape):
    """jacfwd's Jacobian of one array output from the batch of its columns
    (input elements first): output axes first, then input axes."""
    if len(x_shape) != 1:
        columns = reshape(columns, x_shape + o_shape)
    if not o_shape:
        return columns
    nx = len(x_shape)
    return transpose(columns, tuple(range(nx, nx + len(o_shape))) + tuple(range(nx)))


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of a scalar function: ``jacfwd(jacrev(func))`` (forward over reverse).

    Called outside other transforms, with one real array argument
    differentiated, ``func`` runs under the reverse level alone and the
    forward-over-reverse part is computed from its tape (``tape_replay``):
    the same values as the composition, and a tape met again runs a compiled
    program (``tape_cache``).

    >>> import numpy as np, npfunc
    >>> H = npfunc.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    >>> H
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    check_callable(func, "hessian")
    composed = _make_jacfwd(jacrev(func, argnums), argnums, False, "error", taped=False)
    if type(argnums) is not int:
        return composed
    cache = TapeCache()

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if current_stack() or FLAGS.nans or not cache.warm():
            return composed(*args, **kwargs)
        nums = normalize_argnums(argnums, len(args), "jacfwd")
        diff_args, partial = select_args(func, args, nums, kwargs)
        x = diff_args[0]
        if not cacheable_input(x):
            return composed(*args, **kwargs)
        # func runs once, under jacrev's level, inside jacfwd's two levels: they stay idle
        # (none of their values reaches func), but func meets the transform stack it meets
        # in the composition (its messages, vmap's randomness rule, batch-aware layers).
        levels = [BatchInterpreter(x.size, "error", "jacfwd", True), JVPInterpreter("jacfwd", True),
                  ReverseInterpreter("jacrev")]
        return taped_run(partial, x, levels, cache, _hessian_of_tape, "hessian")

    wrapper._tape_cache = cache
    return wrapper


def _hessian_of_tape(out, ref, in_node, x):
    """``jacfwd(jacrev(f))(x)`` from the tape ``f`` recorded (see ``tape_replay``)."""

    def gradient(x_new):  # what jacrev(f) gives at the forward-mode value x_new
        new_out, interp, new_in = transplant(out, ref, in_node, x_new)
        in_spec = tree_flatten((x_new,))[1]
        traced, pullback, _ = _traced_outputs(interp, new_out, None, False, "jacrev", in_spec, [x_new], [new_in])
        return _rows_to_jacobian(traced, pullback, None, (x_new,), False, None, True)

    return _make_jacfwd(gradient, 0, False, "error", taped=False)(x)

