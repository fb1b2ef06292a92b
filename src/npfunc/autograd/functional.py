"""``torch.autograd.functional`` for NumPy: vjp, jvp, jacobian, hessian, hvp, vhp.

These take ``inputs`` as one array or a tuple of arrays and return results
structured the way torch returns them: a single array where the function
takes (or returns) a single array, a tuple where it takes (or returns) a
tuple, and for ``jacobian``/``hessian`` a tuple of tuples when both sides
are tuples, indexed ``[output][input]``.

``create_graph=False`` (the default) makes every result a constant for any
enclosing npfunc transform (``npfunc.stop_gradient``); ``create_graph=True``
keeps results differentiable, so ``npfunc.grad`` of a function that calls
``hessian(..., create_graph=True)`` works.  ``strict=True`` raises
``IndependenceError`` naming the output and input that are independent;
independence is read from npfunc's symbolic zeros, never from values, so a
dependence whose derivative happens to be 0 at this point is not an error.

>>> import numpy as np
>>> from npfunc.autograd.functional import jacobian
>>> jacobian(lambda x, y: 2 * np.exp(x) + 3 * y, (np.zeros(2), np.ones(2)))
(array([[2., 0.],
       [0., 2.]]), array([[3., 0.],
       [0., 3.]]))
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..api._calls import as_out
from ..api._common import tree_flatten, tree_unflatten
from ..api.forward import trace_jvp
from ..api.reverse import trace_vjp
from ..api.vmap import vmap
from ..core.errors import (IndependenceError, NonDifferentiableInputError, NonScalarOutputError,
                           NpfuncError, OutputTypeError, TangentError)
from ..core.tracer import Tracer
from ..core.values import dtype_of, shape_of
from ..core.zeros import zero
from ..primitives.elementwise.arithmetic import astype, ones_like, stop_gradient, zeros_like
from ..primitives.shape.basic import reshape, stack, transpose

try:  # the structured (one-hot) basis jacrev uses, when the engine provides it
    from ..api.jacobians import _map_basis
except ImportError:  # pragma: no cover - older engines
    _map_basis = None

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp",
           "VectorError", "SingleOutputError", "StrategyError"]

STRATEGIES = ("reverse-mode", "forward-mode")


class VectorError(TangentError, RuntimeError):
    """``v`` is missing where it cannot be inferred, or does not match."""


class SingleOutputError(NonScalarOutputError, RuntimeError):
    """``hessian``/``hvp``/``vhp`` need a function returning one single-element array."""


class StrategyError(NpfuncError, NotImplementedError):
    """A ``strategy`` that needs ``vectorize=True`` was asked for without it."""


# ---- argument handling --------------------------------------------------------------


def _is_array(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic))


def _as_tuple(value, what: str, fn: str, error=TypeError, scalars_as_arrays: bool = True):
    """``(was_tuple, tuple_of_arrays)``, or a clear error naming ``what``; NumPy scalars
    become 0-d arrays unless ``scalars_as_arrays`` is False (the function's outputs,
    returned as the function returned them)."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for k, item in enumerate(items):
        if not _is_array(item):
            where = f"entry {k} of {what}" if is_tuple else what
            raise error(f"{fn}: {what} must be an array or a tuple of arrays, but {where} is a "
                        f"{type(item).__name__}")
    if not scalars_as_arrays:
        return is_tuple, items
    return is_tuple, tuple(np.asarray(x) if isinstance(x, np.generic) else x for x in items)


def _inputs(inputs, fn: str):
    is_tuple, xs = _as_tuple(inputs, "inputs", fn, NonDifferentiableInputError)
    for k, x in enumerate(xs):
        if dtype_of(x).kind not in "fc":
            where = f"input {k}" if is_tuple else "the input"
            raise NonDifferentiableInputError(
                f"{fn}: {where} has dtype {dtype_of(x)}; only floating-point or complex arrays can "
                "be differentiated. Convert it with x.astype(float), or close over it.")
    return is_tuple, xs


def _outputs(out, fn: str):
    # A Python number returned (trace_vjp / trace_jvp give it back as itself) becomes a 0-d
    # array: outputs here are arrays, as torch's are tensors; a NumPy scalar stays as it is
    out = tuple(as_out(x) for x in out) if isinstance(out, tuple) else as_out(out)
    return _as_tuple(out, "the output of the function", fn, OutputTypeError, scalars_as_arrays=False)


def _vectors(v, refs, refs_is_tuple: bool, fn: str, against: str, can_default: bool):
    """``v`` as a tuple matching ``refs`` in count and shapes (cast to their dtypes)."""
    if v is None:
        if can_default and len(refs) == 1 and math.prod(shape_of(refs[0])) == 1:
            return (ones_like(refs[0]),)
        raise VectorError(
            f"{fn}: v can only be omitted when the {against} is a single array with a single "
            f"element; pass v shaped like the {against}")
    _, vs = _as_tuple(v, "v", fn, VectorError)
    if len(vs) != len(refs):
        if refs_is_tuple:
            raise VectorError(f"{fn}: v has {len(vs)} entries but the {against} has {len(refs)}; "
                              f"give one v per entry")
        raise VectorError(f"{fn}: v must be a single array, like the {against}, but it has "
                          f"{len(vs)} entries")
    out = []
    for k, (a, ref) in enumerate(zip(vs, refs)):
        if tuple(shape_of(a)) != tuple(shape_of(ref)):
            where = f"v[{k}]" if refs_is_tuple else "v"
            raise VectorError(f"{fn}: {where} has shape {tuple(shape_of(a))} but should have shape "
                              f"{tuple(shape_of(ref))}, like the {against}")
        out.append(astype(a, dtype_of(ref)) if dtype_of(a) != dtype_of(ref) else a)
    return tuple(out)


def _unpack(values, is_tuple: bool):
    return tuple(values) if is_tuple else values[0]


def _finish(value, create_graph: bool):
    """Results are constants for enclosing transforms unless ``create_graph``."""
    if create_graph:
        return value
    if isinstance(value, tuple):
        return tuple(_finish(v, False) for v in value)
    return stop_gradient(value)


def _dense(grads, refs):
    return tuple(zeros_like(r) if g is zero else g for g, r in zip(grads, refs))


def _restrict(func, xs, j):
    """``func`` as a function of input ``j`` alone (the others fixed)."""
    def partial(x):
        args = list(xs)
        args[j] = x
        return func(*args)

    return partial


def _independent(fn: str, text: str):
    return IndependenceError(f"{fn}: {text} (strict=True). Drop strict=True to get zeros instead.")


def _map_unit_basis(fn, like, name, out_dims=0):
    """``vmap(fn)`` over the unit arrays of ``like``'s shape (structured when possible)."""
    n = math.prod(shape_of(like))
    if _map_basis is not None:
        return _map_basis(lambda cts: fn(cts[0]), like, name, out_dims=out_dims)
    basis = np.eye(n, dtype=dtype_of(like)).reshape((n,) + tuple(shape_of(like)))
    return vmap(fn, out_dims=out_dims)(basis)


# ---- vjp and jvp ----------------------------------------------------------------------


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``func(*inputs)`` and the vector-Jacobian product ``v^T J``.

    ``v`` is shaped like the output (an array, or a tuple for a tuple
    output); it may be omitted when the output is one single-element array.
    Returns ``(output, vjp)``, ``vjp`` shaped like ``inputs``.

    >>> import numpy as np
    >>> from npfunc.autograd.functional import vjp
    >>> def exp_reducer(x):
    ...     return np.exp(x).sum(axis=1)
    >>> x = np.log(np.arange(1.0, 5.0)).reshape(2, 2)
    >>> vjp(exp_reducer, x, np.ones(2))
    (array([3., 7.]), array([[1., 2.],
           [3., 4.]]))
    >>> def adder(x, y):
    ...     return 2 * x + 3 * y
    >>> vjp(adder, (np.zeros(2), np.ones(2)), np.ones(2))
    (array([3., 3.]), (array([2., 2.]), array([3., 3.])))
    """
    fn = "autograd.functional.vjp"
    is_in_tuple, xs = _inputs(inputs, fn)
    out, pullback, _ = trace_vjp(func, xs, False, fn, lambda k: f"input {k}")
    is_out_tuple, outs = _outputs(out, fn)
    vs = _vectors(v, outs, is_out_tuple, fn, "output of the function", True)
    cts = [c if dtype_of(o).kind in "fc" else zero for c, o in zip(vs, outs)]
    if strict:
        for i in range(len(outs)):
            alone = [c if k == i else zero for k, c in enumerate(cts)]
            if all(g is zero for g in pullback.flat(alone)):
                raise _independent(fn, f"output {i} of the function does not depend on any input")
    grads = pullback.flat(cts)
    if strict:
        for j, g in enumerate(grads):
            if g is zero:
                raise _independent(fn, f"no output of the function depends on input {j}")
    return (_finish(_unpack(outs, is_out_tuple), create_graph),
            _finish(_unpack(_dense(grads, xs), is_in_tuple), create_graph))


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``func(*inputs)`` and the Jacobian-vector product ``J v``.

    ``v`` is shaped like ``inputs``; it may be omitted when the input is one
    single-element array.  Returns ``(output, jvp)``, ``jvp`` shaped like
    the output.  (torch computes this with a double-backward trick; npfunc
    uses forward mode directly.)

    >>> import numpy as np
    >>> from npfunc.autograd.functional import jvp
    >>> def exp_reducer(x):
    ...     return np.exp(x).sum(axis=1)
    >>> jvp(exp_reducer, np.zeros((2, 2)), np.ones((2, 2)))
    (array([2., 2.]), array([2., 2.]))
    >>> def adder(x, y):
    ...     return 2 * x + 3 * y
    >>> jvp(adder, (np.zeros(2), np.ones(2)), (np.ones(2), np.ones(2)))
    (array([3., 3.]), array([5., 5.]))
    """
    fn = "autograd.functional.jvp"
    is_in_tuple, xs = _inputs(inputs, fn)
    vs = _vectors(v, xs, is_in_tuple, fn, "input", True)
    _, in_spec = tree_flatten(xs)
    outs, touts, out_spec, _ = trace_jvp(func, list(xs), list(vs), in_spec, False, fn)
    is_out_tuple, outs = _outputs(tree_unflatten(out_spec, outs), fn)
    if strict:
        for i, t in enumerate(touts):
            if t is zero:
                raise _independent(fn, f"output {i} of the function does not depend on any input")
        for j in range(len(xs)):
            _, spec1 = tree_flatten((xs[j],))
            _, alone, _, _ = trace_jvp(_restrict(func, xs, j), [xs[j]], [vs[j]], spec1, False, fn)
            if all(t is zero for t in alone):
                raise _independent(fn, f"no output of the function depends on input {j}")
    return (_finish(_unpack(outs, is_out_tuple), create_graph),
            _finish(_unpack(_dense(touts, outs), is_out_tuple), create_graph))


# ---- jacobian ------------------------------------------------------------------------------


def _jacobian_reverse(func, xs, strict, vectorize, fn, independent_text):
    """``(blocks[i][j], is_out_tuple)`` by reverse mode: one vjp per output element."""
    out, pullback, _ = trace_vjp(func, xs, False, fn, lambda k: f"input {k}")
    is_out_tuple, outs = _outputs(out, fn)
    blocks = []
    for i, o in enumerate(outs):
        o_shape = tuple(shape_of(o))
        m = math.prod(o_shape)
        flags = [dtype_of(o).kind not in "fc"] * len(xs)

        def pull(ct, i=i):
            cts = [zero] * len(outs)
            cts[i] = ct
            grads = pullback.flat(cts)
            flags[:] = [g is zero for g in grads]
            return list(_dense(grads, xs))

        if m == 0 or dtype_of(o).kind not in "fc":
            rows = [np.zeros((m,) + tuple(shape_of(x)), dtype=dtype_of(x)) for x in xs]
        elif vectorize:
            rows = _map_unit_basis(pull, o, fn)
        else:
            basis = np.eye(m, dtype=dtype_of(o)).reshape((m,) + o_shape)
            per_row = [pull(basis[r]) for r in range(m)]
            rows = [stack([r[j] for r in per_row]) for j in range(len(xs))]
        if strict:
            for j, flag in enumerate(flags):
                if flag:
                    raise _independent(fn, independent_text(i, j))
        blocks.append([reshape(rows[j], o_shape + tuple(shape_of(x))) for j, x in enumerate(xs)])
    return blocks, is_out_tuple


def _jacobian_forward(func, xs, strict, fn, independent_text):
    """``(blocks[i][j], is_out_tuple)`` by forward mode: vmap of jvp per input."""
    columns, flags, structure = [], [], {}
    for j, x in enumerate(xs):
        _, spec1 = tree_flatten((x,))
        seen = {}

        def push(t, j=j, spec1=spec1, seen=seen):
            outs, touts, out_spec, _ = trace_jvp(_restrict(func, xs, j), [x], [t], spec1, False, fn)
            seen["zero"] = [d is zero for d in touts]
            structure["spec"] = out_spec
            return list(_dense(touts, outs)), outs

        if math.prod(shape_of(x)) == 0:
            outs = push(zeros_like(x))[1]
            cols = [np.zeros((0,) + tuple(shape_of(o)), dtype=dtype_of(o)) for o in outs]
        else:
            cols, outs = _map_unit_basis(push, x, fn, out_dims=(0, None))
        columns.append(cols)
        flags.append(seen["zero"])
    is_out_tuple, outs = _outputs(tree_unflatten(structure["spec"], outs), fn)
    blocks = []
    for i, o in enumerate(outs):
        o_shape = tuple(shape_of(o))
        row = []
        for j, x in enumerate(xs):
            if strict and flags[j][i]:
                raise _independent(fn, independent_text(i, j))
            col = columns[j][i]  # (x.size, *o_shape): move the input axis last
            col = transpose(col, tuple(range(1, len(o_shape) + 1)) + (0,))
            row.append(reshape(col, o_shape + tuple(shape_of(x))))
        blocks.append(row)
    return blocks, is_out_tuple


def _check_strategy(strategy, vectorize, fn, arg):
    if strategy not in STRATEGIES:
        raise ValueError(f"{fn}: {arg} must be 'reverse-mode' or 'forward-mode', got {strategy!r}. "
                         "Prefer 'forward-mode' when the function has more outputs than inputs.")
    if strategy == "forward-mode" and not vectorize:
        raise StrategyError(
            f"{fn}: {arg}='forward-mode' is only implemented with vectorize=True (a vmap over "
            "jvps); pass vectorize=True, or use 'reverse-mode'.")


def _blocks(func, xs, strict, vectorize, strategy, fn, independent_text):
    if strategy == "forward-mode":
        return _jacobian_forward(func, xs, strict, fn, independent_text)
    return _jacobian_reverse(func, xs, strict, vectorize, fn, independent_text)


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``.

    Block ``[i][j]`` has shape ``output_i.shape + input_j.shape``; the
    nesting follows torch (see the module docstring).  ``vectorize=True``
    computes all rows with one vmap instead of a loop of vjps;
    ``strategy="forward-mode"`` uses jvps instead (it needs
    ``vectorize=True``).  Unlike torch, ``strict=True`` works with every
    combination, since independence is structural in npfunc.

    >>> import numpy as np
    >>> from npfunc.autograd.functional import jacobian
    >>> def exp_reducer(x):
    ...     return np.exp(x).sum(axis=1)
    >>> jacobian(exp_reducer, np.zeros((2, 2)))
    array([[[1., 1.],
            [0., 0.]],
    <BLANKLINE>
           [[0., 0.],
            [1., 1.]]])
    >>> def exp_adder(x, y):
    ...     return 2 * np.exp(x) + 3 * y
    >>> J = jacobian(exp_adder, (np.zeros(2), np.ones(2)), vectorize=True, strategy="forward-mode")
    >>> J[0]
    array([[2., 0.],
           [0., 2.]])
    """
    fn = "autograd.functional.jacobian"
    _check_strategy(strategy, vectorize, fn, "strategy")
    is_in_tuple, xs = _inputs(inputs, fn)
    blocks, is_out_tuple = _blocks(
        func, xs, strict, vectorize, strategy, fn,
        lambda i, j: f"output {i} of the function does not depend on input {j}")
    rows = [_unpack(tuple(row), is_in_tuple) for row in blocks]
    return _finish(_unpack(tuple(rows), is_out_tuple), create_graph)


# ---- second order --------------------------------------------------------------------------


def _single_output(out, fn):
    if isinstance(out, tuple) or not _is_array(out):
        raise SingleOutputError(f"{fn}: the function must return a single array, but it returned "
                                f"{type(out).__name__}")
    if math.prod(shape_of(out)) != 1:
        raise SingleOutputError(f"{fn}: the function must return a single-element array, but its "
                                f"output has shape {tuple(shape_of(out))}")
    return out


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a function returning one single-element array.

    Computed as the Jacobian (``outer_jacobian_strategy``; forward mode needs
    ``vectorize=True``) of the reverse-mode gradient.  For a tuple of inputs,
    block ``[i][j]`` has shape ``input_i.shape + input_j.shape``.

    >>> import numpy as np
    >>> from npfunc.autograd.functional import hessian
    >>> def pow_reducer(x):
    ...     return (x ** 3).sum()
    >>> hessian(pow_reducer, np.array([[1.0, 2.0], [0.5, 0.0]]))[0, 0]
    array([[6., 0.],
           [0., 0.]])
    >>> def pow_adder_reducer(x, y):
    ...     return (2 * x ** 2 + 3 * y ** 2).sum()
    >>> H = hessian(pow_adder_reducer, (np.ones(2), np.ones(2)))
    >>> H[0][0], H[1][1]
    (array([[4., 0.],
           [0., 4.]]), array([[6., 0.],
           [0., 6.]]))
    """
    fn = "autograd.functional.hessian"
    _check_strategy(outer_jacobian_strategy, vectorize, fn, "outer_jacobian_strategy")
    is_in_tuple, xs = _inputs(inputs, fn)

    def scalar(*inp):
        return reshape(_single_output(func(*inp), fn), ())

    def gradient(*inp):
        blocks, _ = _jacobian_reverse(
            scalar, inp, strict, False, fn,
            lambda i, j: f"the output of the function does not depend on input {j}")
        return tuple(blocks[0])

    blocks, _ = _blocks(
        gradient, xs, strict, vectorize, outer_jacobian_strategy, fn,
        lambda i, j: f"the gradient with respect to input {i} does not depend on input {j}, so "
                     f"Hessian block [{i}][{j}] is structurally zero")
    rows = [_unpack(tuple(row), is_in_tuple) for row in blocks]
    return _finish(_unpack(tuple(rows), is_in_tuple), create_graph)


def _gradient_fn(func, fn, strict):
    """``inputs -> (gradient tuple, output)`` for a single-element output (reverse mode)."""
    def gradient(*inp):
        out, pullback, _ = trace_vjp(func, inp, False, fn, lambda k: f"input {k}")
        out = _single_output(as_out(out), fn)
        grads = pullback.flat([ones_like(out)])
        if strict:
            for j, g in enumerate(grads):
                if g is zero:
                    raise _independent(fn, f"the output of the function does not depend on input {j}")
        return _dense(grads, inp), out

    return gradient


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``func(*inputs)`` and the Hessian-vector product ``H v``, by forward
    mode over the reverse-mode gradient.

    >>> import numpy as np
    >>> from npfunc.autograd.functional import hvp
    >>> def pow_reducer(x):
    ...     return (x ** 3).sum()
    >>> hvp(pow_reducer, np.array([1.0, 2.0]), np.ones(2))
    (np.float64(9.0), array([ 6., 12.]))
    >>> def pow_adder_reducer(x, y):
    ...     return (2 * x ** 2 + 3 * y ** 2).sum()
    >>> hvp(pow_adder_reducer, (np.ones(2), np.ones(2)), (np.zeros(2), np.ones(2)))
    (np.float64(10.0), (array([0., 0.]), array([6., 6.])))
    """
    fn = "autograd.functional.hvp"
    is_in_tuple, xs = _inputs(inputs, fn)
    vs = _vectors(v, xs, is_in_tuple, fn, "input", True)
    _, in_spec = tree_flatten(xs)
    _, touts, _, out = trace_jvp(_gradient_fn(func, fn, strict), list(xs), list(vs), in_spec, True, fn)
    if strict:
        for j, t in enumerate(touts):
            if t is zero:
                raise _independent(fn, f"the gradient with respect to input {j} does not depend on "
                                       "any input, so its Hessian-vector product is structurally zero")
    return _finish(out, create_graph), _finish(_unpack(_dense(touts, xs), is_in_tuple), create_graph)


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``func(*inputs)`` and the vector-Hessian product ``v^T H``, by reverse
    mode over the reverse-mode gradient.

    >>> import numpy as np
    >>> from npfunc.autograd.functional import vhp
    >>> def pow_reducer(x):
    ...     return (x ** 3).sum()
    >>> vhp(pow_reducer, np.array([1.0, 2.0]), np.ones(2))
    (np.float64(9.0), array([ 6., 12.]))
    >>> def pow_adder_reducer(x, y):
    ...     return (2 * x ** 2 + 3 * y ** 2).sum()
    >>> vhp(pow_adder_reducer, (np.ones(2), np.ones(2)), (np.zeros(2), np.ones(2)))
    (np.float64(10.0), (array([0., 0.]), array([6., 6.])))
    """
    fn = "autograd.functional.vhp"
    is_in_tuple, xs = _inputs(inputs, fn)
    vs = _vectors(v, xs, is_in_tuple, fn, "input", True)
    grads, pullback, out = trace_vjp(_gradient_fn(func, fn, strict), xs, True, fn,
                                     lambda k: f"input {k}")
    if strict:
        for k in range(len(xs)):
            alone = [c if q == k else zero for q, c in enumerate(vs)]
            if all(g is zero for g in pullback.flat(alone)):
                raise _independent(fn, f"the gradient with respect to input {k} does not depend on "
                                       "any input")
    result = pullback.flat(list(vs))
    if strict:
        for j, g in enumerate(result):
            if g is zero:
                raise _independent(fn, f"no entry of the gradient depends on input {j}, so the "
                                       "vector-Hessian product for it is structurally zero")
    return _finish(out, create_graph), _finish(_unpack(_dense(result, xs), is_in_tuple), create_graph)


def __dir__():
    return __all__
