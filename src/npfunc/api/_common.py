"""Argument checking and pytree plumbing shared by the transforms."""
from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import (ArgnumsError, AuxOutputError, NonDifferentiableInputError,
                           OutputTypeError)
from ..core import tracer as _tracer
from ..core.tracer import Tracer
from ..core.values import dtype_of, is_python_scalar, shape_of

_optree = None


def optree():
    """The ``optree`` module, imported on first use (``import npfunc`` does not need it)."""
    global _optree
    if _optree is None:
        import optree as module

        _optree = module
    return _optree


class ArgsSpec:
    """optree's structure of one leaf (``n is None``) or of a tuple (or list,
    ``kind``) of ``n`` leaves, made without optree: the common case of
    transform arguments and outputs.  Two of them compare by value; everything
    else (printing, hashing, ``num_leaves``, comparing with optree's own specs)
    is optree's spec."""

    __slots__ = ("n", "none_is_leaf", "kind", "_real")

    def __init__(self, n: int | None, none_is_leaf: bool, kind: type = tuple) -> None:
        self.n = n
        self.none_is_leaf = none_is_leaf
        self.kind = kind
        self._real = None

    def real(self):
        real = self._real
        if real is None:
            example = 0 if self.n is None else self.kind([0] * self.n)
            real = self._real = optree().tree_structure(example, none_is_leaf=self.none_is_leaf)
        return real

    def __eq__(self, other):
        if type(other) is ArgsSpec:
            return self.n == other.n and self.none_is_leaf == other.none_is_leaf and (
                self.n is None or self.kind is other.kind)
        return self.real() == other

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.real())

    def __repr__(self) -> str:
        return repr(self.real())

    def __str__(self) -> str:
        return str(self.real())

    def __getattr__(self, name):
        if name.startswith("_"):  # not optree's (and no recursion while a copy is being built)
            raise AttributeError(name)
        return getattr(self.real(), name)


def _is_leaf(x) -> bool:
    tx = type(x)
    return tx is np.ndarray or tx is float or tx is int or isinstance(x, (Tracer, np.generic))


def tree_flatten(tree, none_is_leaf: bool = False):
    """optree's ``tree_flatten``: (list of leaves, structure)."""
    tt = type(tree)
    if tt is tuple or tt is list:
        for x in tree:
            if not _is_leaf(x):
                break
        else:
            return list(tree), ArgsSpec(len(tree), none_is_leaf, tt)
    elif _is_leaf(tree) or tree is None and none_is_leaf:
        return [tree], ArgsSpec(None, none_is_leaf)
    leaves, spec = optree().tree_flatten(tree, none_is_leaf=none_is_leaf)
    pending = _tracer._PENDING
    if pending is not None:  # an array made by np.zeros & co. in the function: its value (core.pending)
        leaves = [x._value() if type(x) is pending else x for x in leaves]
    return leaves, spec


def tree_unflatten(spec, leaves):
    """optree's ``tree_unflatten``."""
    if type(spec) is ArgsSpec:
        if type(leaves) is not list and type(leaves) is not tuple:
            leaves = list(leaves)
        n = spec.n
        if n is None:
            if len(leaves) == 1:
                return leaves[0]
        elif len(leaves) == n:
            return tuple(leaves) if spec.kind is tuple else list(leaves)
        spec = spec.real()  # optree's error
    return optree().tree_unflatten(spec, leaves)


def as_array(x):
    """Arrays and traced values as they are; NumPy/Python scalars as 0-d arrays."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    if isinstance(x, np.generic) or is_python_scalar(x):
        return np.asarray(x)
    return x


def as_input(x):
    """A transform's input as an array.  A NumPy or Python scalar becomes a
    read-only 0-d array, which marks it as a scalar: immutable, as NumPy's
    scalars are (see primitives/indexing/aliasing.py); ``scalar_again``
    gives the scalar back where the function returned it as it was."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    if isinstance(x, np.generic) or is_python_scalar(x):
        scalar = x
        x = np.array(x)
        x.flags.writeable = False
        key = id(x)
        _SCALAR_INPUTS[key] = (weakref.ref(x, lambda _, key=key: _SCALAR_INPUTS.pop(key, None)), scalar)
    return x


#: id -> (weak reference, scalar) for the 0-d arrays ``as_input`` made of scalars
_SCALAR_INPUTS: dict[int, tuple] = {}


def scalar_again(value):
    """``value``, or the scalar argument it stands for when it is the 0-d array
    ``as_input`` made of one (a function returning its scalar argument, or a
    view or copy the primitives gave as the argument itself: NumPy returns the
    scalar there)."""
    entry = _scalar_input(value)
    return value if entry is None else entry[1]


def _scalar_input(value):
    """``_SCALAR_INPUTS``' entry for ``value`` if it is one of those 0-d arrays, else None."""
    if type(value) is np.ndarray and not value.shape and not value.flags.writeable:
        entry = _SCALAR_INPUTS.get(id(value))
        if entry is not None and entry[0]() is value:
            return entry
    return None


def scalars_again(tree):
    """``scalar_again`` on each leaf of a pytree (outputs and aux)."""
    leaves, spec = tree_flatten(tree)
    if not any(type(v) is np.ndarray and not v.shape for v in leaves):
        return tree
    return tree_unflatten(spec, [scalar_again(v) for v in leaves])


def scalar_gradient(ct, primal):
    """A cotangent for the input ``primal``: a NumPy scalar when ``primal`` is a scalar
    argument's 0-d array (``as_input``), as the gradient of a NumPy scalar."""
    if type(ct) is np.ndarray and not ct.shape and _scalar_input(primal) is not None:
        return ct[()]
    if isinstance(ct, Tracer) and isinstance(primal, Tracer) and not shape_of(ct) and _staged_scalar(primal):
        return ct[()]  # recorded: the replay gives a NumPy scalar where the 0-d gradient is an array
    return ct


def _staged_scalar(primal) -> bool:
    """Whether ``primal`` is jit's staged NumPy scalar argument (its example is the scalar):
    ``jit(grad(f))(np.float64(x))`` gives the NumPy scalar ``grad(f)`` gives."""
    from ..interpreters.staging import StagedTracer

    return type(primal) is StagedTracer and isinstance(primal._example, np.generic)


def is_array(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic)) or (is_python_scalar(x) and not isinstance(x, bool))


def normalize_argnums(argnums, nargs: int, transform: str) -> tuple[int, ...]:
    """``argnums`` as a tuple of non-negative ints, or a clear error."""
    if type(argnums) is int and 0 <= argnums < nargs:  # the common case
        return (argnums,)
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool) else argnums
    if not isinstance(nums, tuple) or not nums or not all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in nums):
        raise ArgnumsError(
            f"{transform}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    if nargs == 0:
        raise ArgnumsError(
            f"{transform}(f) was called with no positional arguments; pass the value(s) to "
            "differentiate as positional arguments")
    out = []
    for i in nums:
        if not -nargs <= i < nargs:
            raise ArgnumsError(
                f"{transform}: argnums={argnums!r} is out of range for a function called with "
                f"{nargs} positional argument(s); valid values are {-nargs}..{nargs - 1}")
        out.append(int(i) % nargs)
    if len(set(out)) != len(out):
        unique = tuple(dict.fromkeys(nums))
        raise ArgnumsError(
            f"{transform}: argnums={argnums!r} names the same argument more than once; list each "
            f"argument once, e.g. argnums={unique if len(unique) > 1 else unique[0]!r}")
    return tuple(out)


def check_callable(func, transform: str) -> None:
    if not callable(func):
        raise TypeError(f"{transform}: the function to transform must be callable, got "
                        f"{type(func).__name__} ({func!r}); write {transform}(f) with a function f")


def select_args(func: Callable, args: Sequence, nums: tuple[int, ...], kwargs: dict):
    """The differentiated arguments and a function of them alone."""
    if not kwargs and len(nums) == len(args) and nums == tuple(range(len(args))):
        return tuple(args), func  # every argument, in order: the function itself
    args = list(args)

    def partial(*diff):
        full = list(args)
        for i, v in zip(nums, diff):
            full[i] = v
        return func(*full, **kwargs)

    # the arrays the function also gets: an argument updated in place must not share their memory
    partial.others = lambda: untraced_leaves(args, nums) + tree_flatten(kwargs)[0]
    return tuple(args[i] for i in nums), partial


def untraced_leaves(args: Sequence, nums) -> list:
    """The leaves of the arguments outside ``nums`` (given to the function as they are)."""
    return [leaf for i, a in enumerate(args) if i not in nums for leaf in tree_flatten(a)[0]]


def check_differentiable(leaves, transform: str, where: Callable[[int], str]) -> list:
    """Leaves as arrays; integer/bool (or non-array) leaves are an error."""
    out = []
    for k, leaf in enumerate(leaves):
        if type(leaf) is np.ndarray and leaf.dtype.kind in "fc":  # the common case, checked at once
            out.append(leaf)
            continue
        if not is_array(leaf):
            raise NonDifferentiableInputError(
                f"{transform}: {where(k)} is a {type(leaf).__name__}, not an array; only "
                "floating-point (or complex) arrays can be differentiated. Close over it, or "
                "leave it out of argnums.")
        leaf = as_input(leaf)
        if dtype_of(leaf).kind not in "fc":
            raise NonDifferentiableInputError(
                f"{transform}: {where(k)} has dtype {dtype_of(leaf)}; only floating-point (or "
                "complex) arrays can be differentiated. Convert it with x.astype(float), or "
                "close over it / leave it out of argnums if it is a constant.")
        out.append(leaf)
    return out


def arg_name(nums: tuple[int, ...], leaf_counts: Sequence[int] | None = None) -> Callable[[int], str]:
    """Describe the k-th differentiated leaf in terms of the caller's arguments."""

    def describe(k: int) -> str:
        if leaf_counts is None:
            return f"argument {nums[k]}"
        for num, n in zip(nums, leaf_counts):
            if k < n:
                return f"argument {num}" + (f" (leaf {k})" if n > 1 else "")
            k -= n
        return f"leaf {k}"

    return describe


def describe_value(x) -> str:
    """How a user would describe ``x`` (no internal class names)."""
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return f"a single array of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"a {type(x).__name__}"


def split_aux(out: Any, transform: str):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AuxOutputError(
            f"{transform}(..., has_aux=True): the function must return a pair (output, aux), "
            f"but it returned {describe_value(out)}. Return (output, aux), or drop has_aux=True.")
    return out[0], out[1]


def check_outputs(leaves, transform: str, first: int = 0) -> list:
    out = []
    for k, leaf in enumerate(leaves, first):
        if type(leaf) is np.ndarray or isinstance(leaf, (Tracer, np.generic)):  # (a NumPy scalar stays one)
            out.append(leaf)
            continue
        if not is_array(leaf):
            fix = ("return only arrays from the mapped function, and handle other values outside vmap"
                   if transform == "vmap" else
                   "return np arrays, or use has_aux=True to return other values alongside")
            if type(leaf).__module__.startswith("dask"):  # data npfunc/dask could not see
                fix = ("pass the dask arrays the function reads as arguments (in_dims=None under "
                       "vmap): npfunc did not find them, so Dask built a graph around traced "
                       "values (docs/dask.md)")
            raise OutputTypeError(
                f"{transform}: the function must return arrays (or a pytree of arrays), but "
                f"output {k} is a {type(leaf).__name__}. To fix it, {fix}.")
        out.append(as_array(leaf))
    return out


def fit_dtype(value, like, what: str):
    """The tangent or cotangent ``value`` in the dtype of ``like`` (its primal or
    output): another real or integer dtype is cast, as a direction in the same
    space; a complex one for a real ``like`` would lose its imaginary part, so it
    is refused (``what`` names it)."""
    have, want = dtype_of(value), dtype_of(like)
    if have == want:
        return value
    if have.kind == "c" and want.kind != "c":
        from ..core.errors import TangentError

        raise TangentError(
            f"{what} is complex ({have}) but belongs to a real value ({want}): casting it would drop its "
            "imaginary part. Pass a real one, or make the value complex (x.astype(complex)).")
    from ..primitives.elementwise.arithmetic import astype

    return astype(value, want)


def check_containers_kept(tree, leaves, transform: str, none_is_leaf: bool = False) -> None:
    """After the function ran on ``tree``, the containers a transform built around
    ``leaves`` (the caller's dicts and lists, rebuilt around traced values): refuse
    when the function rebound an entry (``params['w'] = ...``, ``state['t'] += 1``),
    which NumPy's caller would see in its own container and the transform's caller
    would not."""
    after, _ = tree_flatten(tree, none_is_leaf)
    if len(after) == len(leaves) and all(a is b for a, b in zip(after, leaves)):
        return
    from ..core.errors import UnsupportedOperationError

    raise UnsupportedOperationError(
        f"{transform}: the function rebinds an entry of a dict, list or other container it was given "
        f"(params['w'] = ..., state['t'] += 1). {transform} hands the function a container of its own, so "
        "the caller's would not change as it does when NumPy runs the function. Update arrays in place "
        "(params['w'] -= ..., which reaches the caller's arrays), or return the new values.")


def write_back_updated(arguments, tracers, before, results=(), transform: str = "", others=None) -> list:
    """After the function ran: give each caller's argument the value the function
    left in its traced stand-in when it updated that in place (``x += 1``,
    ``x[0] = v``: the stand-in then holds another primal than ``before``), as
    the plain function leaves its argument.  ``results`` (a list of output
    values) come back with each array that shares an updated argument's memory
    copied first (``y = x.copy()`` before the update may hold the argument's
    array itself: traced values share what never changes in place).

    An updated argument sharing memory with another argument (one array passed
    twice, or views of one array) is refused, as jit refuses it: each has a
    stand-in of its own, so the other did not see the update that NumPy's
    shared memory would have shown it.  ``others`` (a function giving the
    arguments not traced here, e.g. outside ``argnums``) are checked too: they
    are the plain arrays, which did not see the update either."""
    updated = [(x, tracer.primal) for x, tracer, value in zip(arguments, tracers, before)
               if tracer.primal is not value]
    if not updated:
        return list(results)
    if len(arguments) > 1:
        _check_updated_not_shared(arguments, tracers, before, transform)
    if others is not None:
        check_not_shared_with([x for x, _ in updated], others(), transform)
    targets = [x for x, _ in updated if type(x) is np.ndarray]
    results = [r.copy(order="K") if type(r) is np.ndarray and any(np.may_share_memory(r, x) for x in targets)
               else r for r in results]
    for x, value in updated:
        write_back(x, value)
    return results


def _check_updated_not_shared(arguments, tracers, before, transform: str) -> None:
    for k, x in enumerate(arguments):
        if tracers[k].primal is not before[k]:  # updated
            check_not_shared_with([x], [y for j, y in enumerate(arguments) if j != k], transform)


def check_not_shared_with(updated, others, transform: str) -> None:
    """Refuse when an argument ``updated`` in place shares memory with one of ``others`` (the
    other arguments, traced on their own or given as they are: they did not see the update,
    as NumPy's shared memory would have shown it)."""
    for x in updated:
        if type(x) is not np.ndarray:
            continue
        for y in others:
            if type(y) is np.ndarray and (x is y or (np.may_share_memory(x, y) and arrays_overlap(x, y))):
                from ..core.errors import UnsupportedOperationError

                raise UnsupportedOperationError(
                    f"{transform or 'the transform'}: the function updated an argument in place that shares "
                    "memory with another argument (one array passed twice, or views of one array, the other "
                    "maybe outside argnums or in_dims=None); the updated one is traced on its own, so the other "
                    "would not see the update as it does when NumPy runs the function. Pass the array once, or "
                    "copy one of them.")


def arrays_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of one buffer have an element in common (two columns of a
    matrix do not); when that is too hard to tell, they are taken to."""
    try:
        return bool(np.shares_memory(a, b, max_work=100_000))
    except np.exceptions.TooHardError:
        return True


def write_back(target, value) -> None:
    """Give the caller's argument ``target`` the new value the function left in it
    (jit's recorded updates, vmap's updated rows), as the plain function would
    have: ``np.copyto``, which a traced ``target`` (an outer transform's value,
    an ``np.ndarray`` to ``isinstance``) takes as an in-place update.  NumPy
    scalars are immutable: the plain function only rebinds its local name."""
    if isinstance(target, np.ndarray):
        np.copyto(target, value)


def wrap_like(wrapper, func) -> None:
    """``functools.update_wrapper(wrapper, func)`` for a transform object: the name, doc
    and ``__wrapped__`` of ``func``, and the attributes in its ``__dict__`` that do not
    name one of the wrapper's own (a callable object's ``_call`` or ``_cache``, as
    SciPy's ``interp1d`` has, must not replace the wrapper's methods)."""
    functools.update_wrapper(wrapper, func, updated=())
    if "__name__" not in wrapper.__dict__:  # a callable object: its class's name (the rules' messages use it)
        wrapper.__name__ = getattr(type(func), "__name__", "f")
    own = type(wrapper)
    for name, value in getattr(func, "__dict__", {}).items():
        if not hasattr(own, name):
            wrapper.__dict__.setdefault(name, value)

