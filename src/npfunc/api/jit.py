"""``jit``: record a function once, optimise it, run it as generated NumPy code.

On a call whose arguments have a structure, shapes and dtypes not seen
before, ``jit`` records the function under the staging interpreter (the
first call's values serve as examples), runs the compiler passes
(``npfunc.compiler``) and generates one Python function of NumPy calls.
Later calls with the same signature run that function: the Python around
the NumPy calls -- transform bookkeeping included -- is gone, so
``jit(jacrev(f))`` costs about what the plain NumPy operations of the
Jacobian cost.

What jit keeps from the plain function, and how:

* **Arguments.** Arrays (and NumPy scalars) are traced: a new shape or dtype
  records a new trace.  Everything else -- Python numbers, strings, None,
  objects -- and the arguments named in ``static_argnums`` /
  ``static_argnames`` are *static*: their value is part of the cache key,
  compared by type and exact value (``True`` is not ``1``, ``0.0`` is not
  ``-0.0``, NaN is NaN), and the function sees the value itself, so Python
  control flow and shapes may depend on it.  A static array is keyed by its
  contents.
* **Closed-over arrays are snapshots.**  Arrays the function reads from
  outside its arguments (closures, globals, attributes) are read when it is
  recorded, and every value computed from them (``W.max()``, a mask
  ``W > 2``, the shape of ``np.unique(v)``) is part of the recording.  The
  recording keeps a copy, so changing such an array later changes nothing:
  pass it as an argument, or call ``f.clear_cache()`` after changing it.
* **Values cannot steer Python.**  ``if x.sum() > 0``, ``float(x)``, boolean
  masks and functions whose output shape depends on values (``np.unique``,
  ``np.nonzero``, rank-deficient ``np.linalg.lstsq``) of a traced value raise
  ``ConcretizationError`` naming the argument, with the fix (``np.where``, a
  static argument).
* **Random draws raise** (``npfunc.random``, ``np.random.*``, ``Generator``,
  ``RandomState``, Python's ``random``): a replay would repeat them.
* **Python side effects happen once**, when recording: ``print``, appending
  to a list, writing into an array that is not an argument.
* **In-place updates of arguments work**: ``x += y``, ``x[i] = v``,
  ``np.copyto(x, v)`` and ``out=x`` update the caller's array on every call,
  as the plain function does.
* **Transforms compose** both ways: ``grad(jit(f))``, ``vmap(jit(f))``,
  ``jit(vmap(grad(f)))``.  Under a transform the optimised program is
  replayed through the primitives, so it is differentiated and batched
  like any code.
* **Retracing is visible**: ``f.trace_count``; a ``RetraceWarning`` names the
  argument that changed when a function is recorded on several calls in a
  row.  The cache keeps the ``cache_size`` most recently used recordings.

``f.lower(*args)`` shows the recorded and the optimised program and the
generated code; ``npfunc.make_graph(f)(*args)`` is the same for any function.

>>> import numpy as np, npfunc
>>> f = npfunc.jit(lambda x: np.tanh(x).sum())
>>> float(f(np.zeros(3))), float(f(np.ones(3)).round(4)), f.trace_count
(0.0, 2.2848, 1)
"""
from __future__ import annotations

import functools
import inspect
import time
import warnings
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import optree

from ..compiler import DEFAULT_PASSES, generate, optimize
from ..compiler.fusion import BACKENDS
from ..compiler.fusion import fuse as fuse_regions
from ..compiler.keys import Unhashable, exact_key
from ..compiler.lower import lower
from ..compiler.program import Program, format_program
from ..compiler.trace import argument_views, is_traced_leaf, record
from ..core import debug
from ..core.errors import ArgnumsError, RetraceWarning, UnsupportedOperationError
from ..core.tracer import Tracer, snapshot
from ..primitives.indexing.aliasing import Alias
from ..interpreters.staging import Var, replay
from ._common import arrays_overlap, check_callable, check_containers_kept, tree_unflatten, wrap_like, write_back

__all__ = ["jit", "make_graph", "Jitted", "Lowered"]

#: Calls in a row that record a new trace before jit warns.
RETRACE_WARN_AFTER = 4


def _refuse_mutable_object(value, what: str) -> None:
    """An object keyed by its identity (its class keeps object's hash) with attributes
    of its own: they may change between calls (``box.pos = new``, ``cfg.n = 4``)
    where jit would replay what the first call read, so it is refused.  Listed in
    ``static_argnums`` it is the caller's promise that it does not change."""
    if type(value).__hash__ is not object.__hash__ or callable(value) or isinstance(value, type):
        return
    fields = getattr(value, "__dict__", None)
    if not isinstance(fields, dict) or not fields:
        return
    cls = type(value).__name__
    arrays = [n for n, v in fields.items() if isinstance(v, (np.ndarray, Tracer))]
    raise UnsupportedOperationError(
        f"jit: {what} is a {cls} object, which jit would key by its identity: a later call would replay "
        f"what the first call read from it ({', '.join(f'{cls}.{n}' for n in (arrays or list(fields))[:3])}) "
        "even after its attributes changed. Pass its arrays as arguments (or in a tuple, a dict or a "
        "NamedTuple, whose arrays jit traces), or list it in static_argnums to promise that it never changes.")


def replay_failed(error: Exception) -> Exception:
    """The error for a ``LinAlgError`` raised while replaying a recording (still a LinAlgError)."""
    from ..core.errors import ReplayLinAlgError

    if isinstance(error, ReplayLinAlgError):
        return error
    return ReplayLinAlgError(
        f"jit: a linear-algebra operation raised LinAlgError ({error}) while replaying the recording for new "
        "values. The recording follows the path the first call took, where it succeeded: a try/except "
        "LinAlgError inside the function (a jitter added on failure, a fallback solver) cannot take its except "
        "branch on a replay. Catch the error around the jit-ed call (try: f_jit(x) except LinAlgError: ...), "
        "or make the operation succeed for every input (add the jitter unconditionally).")


class _Entry:
    """One cached recording: the generated function and the optimised program."""

    __slots__ = ("fn", "program", "n_out", "out_spec", "single", "mutated", "inputs", "views")

    def __init__(self, fn, program: Program, n_out, out_spec, mutated, inputs, views=()) -> None:
        self.fn = fn
        self.program = program
        self.n_out = n_out
        self.out_spec = out_spec
        self.single = out_spec.num_nodes == 1 and out_spec.num_leaves == 1
        self.mutated = mutated      # leaf indices of the arguments updated in place
        self.inputs = inputs        # leaf indices of the staged inputs, in order
        self.views = views          # outputs that are arguments or views of them (trace.Recording)

    def run(self, leaves):
        args = [leaves[k] for k in self.inputs]
        if debug.FLAGS.nans or any(isinstance(a, Tracer) for a in args):
            outs = self._replay(args)
        else:
            try:
                outs = self.fn(*args)
            except np.linalg.LinAlgError as e:
                raise replay_failed(e) from e
        if self.mutated:
            _check_no_overlap(leaves, self.inputs)
            for k, value in zip(self.mutated, outs[self.n_out:]):
                write_back(leaves[k], value)
            outs = outs[:self.n_out]
        if self.views:
            outs = argument_views(list(outs), leaves, self.views)
        return outs[0] if self.single else tree_unflatten(self.out_spec, list(outs))

    def _replay(self, args):
        """The optimised program through ``bind``: transformable, and checked by debug_nans."""
        program = self.program
        env = replay(program.eqns, dict(zip(program.in_vars, args)))
        return tuple(env[o] if type(o) is Var else _const_out(o.value) for o in program.outputs)


def _const_out(value):
    return value.copy(order="K") if isinstance(value, np.ndarray) else value



def _memory(x):
    """What ``x`` reads its values from: a plain array, the array a traced argument
    stands for (or maps over), a traced family (by id), or None."""
    if type(x) is np.ndarray:
        return x
    marker = getattr(x, "_alias", None) if isinstance(x, Tracer) else None
    if type(marker) is Alias:
        return id(marker.storage)
    if type(marker) is tuple and len(marker) == 2:
        marker = marker[0]
    return marker if type(marker) is np.ndarray else None


def _check_no_overlap(leaves, inputs) -> None:
    """Refuse arguments that share memory (views of one array, plain or traced)
    when the function updates one in place."""
    memories = [m for k in inputs if (m := _memory(leaves[k])) is not None]
    for i in range(len(memories)):
        for j in range(i):
            a, b = memories[i], memories[j]
            if type(a) is int or type(b) is int:
                shared = a == b if type(a) is type(b) else False
            else:
                shared = np.may_share_memory(a, b) and arrays_overlap(a, b)
            if shared:
                raise UnsupportedOperationError(
                    "jit: two arguments share memory (views of one array) and the function "
                    "updates an argument in place; the recording cannot follow the update from "
                    "one view to the other. Pass the base array once, or copy one of them.")


class Lowered:
    """The programs of one recording: ``staged`` as recorded, ``optimized`` after the
    passes, ``source`` of the generated function, and ``times`` (seconds per stage)."""

    __slots__ = ("staged", "optimized", "source", "times")

    def __init__(self, staged: Program, optimized: Program, source: str, times: dict) -> None:
        self.staged = staged
        self.optimized = optimized
        self.source = source
        self.times = times

    def __str__(self) -> str:
        return (f"staged ({len(self.staged)} equations):\n{format_program(self.staged)}\n"
                f"optimized ({len(self.optimized)} equations):\n{format_program(self.optimized)}")

    __repr__ = __str__


def _plain_key(arrays, head: tuple):
    """The fast path's key: ``head``, then the shape, dtype and strides of each
    array (the layout decides which reshapes are views); None unless every one
    is a plain ndarray."""
    key = list(head)
    for a in arrays:
        if type(a) is not np.ndarray:
            return None
        key += (a.shape, a.dtype, a.strides)
    return tuple(key)


def _layout_key(x, depth: int = 0):
    """What decides a traced argument's layout, for the cache key: the plain array
    (or mapped axis of one) it stands for, a fresh C-ordered array, or None
    when it is a view of something else (keyed apart, as an unknown layout).
    So ``grad(jitted)(x)`` and ``jitted(x)`` share one recording."""
    marker = getattr(x, "_alias", None)
    if type(marker) is np.ndarray:
        return marker.strides
    if isinstance(marker, Tracer) and depth < 8:
        return _layout_key(marker, depth + 1)
    if type(marker) is tuple and len(marker) == 2 and type(marker[1]) is int:
        return (_layout_key(marker[0], depth + 1) if isinstance(marker[0], Tracer) else
                getattr(marker[0], "strides", None), marker[1])
    return marker if marker == "C" else None


class Jitted:
    """A function compiled by ``jit`` (see the module doc)."""

    def __init__(self, func: Callable, static_argnums=(), static_argnames=(),
                 passes: Sequence[str] = DEFAULT_PASSES, cache_size: int = 64, fuse: str | None = None) -> None:
        check_callable(func, "jit")
        if fuse is not None and fuse not in BACKENDS:
            raise ValueError(f"jit: fuse must be one of {BACKENDS} or None, got {fuse!r}")
        self._fuse = fuse
        wrap_like(self, func)
        self._func = func
        self._passes = tuple(passes)
        self._cache_size = int(cache_size)
        if self._cache_size < 1:
            raise ValueError(f"jit: cache_size must be a positive int, got {cache_size!r}")
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._param_names = positional
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        for i in nums:
            if not isinstance(i, int) or isinstance(i, bool):
                raise ArgnumsError(f"jit: static_argnums must be ints, got {static_argnums!r}")
        known = {p.name for p in params}
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
        for name in names:
            if params and name not in known and not var_kw:
                raise ArgnumsError(
                    f"jit: static_argnames names {name!r}, which is not a parameter of "
                    f"{getattr(func, '__name__', 'the function')} ({', '.join(known) or 'none'})")
        # a static argument may be passed either way: by position or by keyword
        self._static_nums = frozenset(nums) | {positional.index(n) for n in names if n in positional}
        self._static_names = frozenset(names) | {positional[i] for i in nums if 0 <= i < len(positional)}
        self._cache: OrderedDict = OrderedDict()
        self._fast: dict = {}
        self.trace_count = 0
        self.last_compile: dict = {}
        self._streak = 0
        self._previous = None
        self._warned = False

    # ---- calls ----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if not kwargs and not self._static_nums and not debug.FLAGS.nans:
            # fast path: plain arrays, flat or in a pytree, seen before
            key = _plain_key(args, ())
            if key is not None:
                entry = self._fast.get(key)
                return self._call(args, kwargs) if entry is None else self._run_fast(entry, args)
            leaves, spec = optree.tree_flatten(args)
            key = _plain_key(leaves, (spec,))
            entry = None if key is None else self._fast.get(key)
            if entry is not None:
                return self._run_fast(entry, leaves)
        return self._call(args, kwargs)

    def _run_fast(self, entry, leaves):
        self._streak = 0
        try:
            outs = entry.fn(*leaves)
        except np.linalg.LinAlgError as e:
            raise replay_failed(e) from e
        if entry.views:
            outs = argument_views(list(outs), leaves, entry.views)
        return outs[0] if entry.single else tree_unflatten(entry.out_spec, list(outs))

    def _call(self, args, kwargs):
        key, leaves, spec, statics = self._key(args, kwargs)
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            self._streak = 0
            return entry.run(leaves)
        entry, out = self._compile(leaves, spec, statics, args, kwargs)
        if entry is not None:  # (a recording that reads an outer traced value is never cached)
            self._note_retrace(key)
            self._cache[key] = entry
            if len(self._cache) > self._cache_size:
                _, evicted = self._cache.popitem(last=False)
                self._fast = {k: e for k, e in self._fast.items() if e is not evicted}
            fast = self._fast_key(args, kwargs, entry)
            if fast is not None:
                self._fast[fast] = entry
        return out

    def _fast_key(self, args, kwargs, entry):
        """The fast path's key for these arguments, if they may take it: a pure function
        (no argument updated) of plain arrays, each its own input."""
        if kwargs or self._static_nums or entry.mutated:
            return None
        flat = all(type(a) is np.ndarray for a in args)
        leaves, spec = (args, None) if flat else optree.tree_flatten(args)
        if entry.inputs != list(range(len(leaves))):
            return None
        return _plain_key(leaves, () if flat else (spec,))

    def _key(self, args, kwargs):
        statics = []
        dyn_args = list(args)
        for i in sorted({i % len(args) for i in self._static_nums if -len(args) <= i < len(args)}):
            # (a static argument not passed by position is passed by keyword, or not at all)
            statics.append((i, self._static_key(args[i], f"static argument {i}{self._pname(i)}")))
            dyn_args[i] = None
        dyn_kwargs = {}
        for name, value in kwargs.items():
            if name in self._static_names:
                statics.append((name, self._static_key(value, f"static argument '{name}'")))
            else:
                dyn_kwargs[name] = value
        leaves, spec = optree.tree_flatten((tuple(dyn_args), dyn_kwargs))
        leaf_keys = []
        ids: dict = {}
        for k, x in enumerate(leaves):
            if isinstance(x, (Tracer, np.ndarray, np.generic)):
                # the first leaf that is this same object: aliasing is part of the key
                leaf_keys.append((x.shape, x.dtype, x.strides if type(x) is np.ndarray else _layout_key(x),
                                  ids.setdefault(id(x), k)))
            else:
                _refuse_mutable_object(x, f"argument leaf {k}")
                leaf_keys.append(self._static_key(x, f"argument leaf {k}"))
        key = (spec, tuple(leaf_keys), tuple(statics))
        return key, leaves, spec, statics

    @staticmethod
    def _static_key(value, what: str):
        try:
            return ("static", exact_key(value))
        except Unhashable:
            raise UnsupportedOperationError(
                f"jit: {what} is a {type(value).__name__}, which has no hash, so jit cannot tell "
                "whether a later call passes the same value. Pass the arrays it holds as arguments "
                "(or in a tuple, a dict or a NamedTuple, whose arrays jit traces), and other values as "
                "hashable ones (a tuple instead of a list).") from None

    def _pname(self, i: int) -> str:
        return f" ('{self._param_names[i]}')" if 0 <= i < len(self._param_names) else ""

    def _rebuild(self, spec, args, kwargs):
        """A function of the leaves that calls the user's function with the static values back."""
        func = self._func
        nums = {i % len(args) for i in self._static_nums if -len(args) <= i < len(args)}

        def call(leaves):
            dyn_args, dyn_kwargs = tree_unflatten(spec, leaves)
            full = [args[i] if i in nums else a for i, a in enumerate(dyn_args)]
            statics = {k: v for k, v in kwargs.items() if k in self._static_names}
            out = func(*full, **dyn_kwargs, **statics)
            check_containers_kept((dyn_args, dyn_kwargs), leaves, "jit")  # (a replay could not redo it)
            return out

        return call

    def _names(self, spec) -> list:
        paths = spec.paths()
        names = []
        for path in paths:
            if path[0] == 0:
                i = path[1]
                label = f"argument {i}{self._pname(i)}"
            else:
                label = f"keyword argument '{path[1]}'"
            names.append(label + "".join(f"[{p!r}]" for p in path[2:]))
        return names

    def _record(self, leaves, spec, args, kwargs):
        start = time.perf_counter()
        rec = record(self._rebuild(spec, args, kwargs), leaves, self._names(spec))
        traced = time.perf_counter()
        if not rec.cacheable:  # used once: not worth optimising
            return rec, rec.program, None, {"trace": traced - start}
        program = optimize(rec.program, self._passes)
        optimised = time.perf_counter()
        code = lower(program)
        if self._fuse is not None:
            code = fuse_regions(code, self._fuse)
        generated = generate(code, name=_identifier(self._func), fresh=rec.fresh)
        done = time.perf_counter()
        times = {"trace": traced - start, "optimize": optimised - traced, "codegen": done - optimised}
        return rec, program, generated, times

    def _compile(self, leaves, spec, statics, args, kwargs):
        rec, program, generated, times = self._record(leaves, spec, args, kwargs)
        self.trace_count += 1
        self.last_compile = times
        if rec.mutated:  # as every replay checks: views of one array cannot be followed
            _check_no_overlap(leaves, list({id(x): k for k, x in reversed(list(enumerate(leaves)))}.values()))
        # The recorded new values may be views of arguments written back before them
        # (y = x.flatten() of a 1-d x is computed as a view): copy them all first.
        new_values = [(k, value.copy(order="K") if isinstance(value, np.ndarray) else snapshot(value))
                      for k, value in rec.mutated]
        for k, value in new_values:
            write_back(leaves[k], value)
        first = argument_views(list(rec.first), leaves, rec.views) if rec.views else rec.first
        out = first[0] if rec.out_spec.num_nodes == 1 and rec.out_spec.num_leaves == 1 else \
            tree_unflatten(rec.out_spec, list(first))
        if not rec.cacheable:
            return None, out
        inputs, seen = [], set()
        for k, x in enumerate(leaves):
            if is_traced_leaf(x) and id(x) not in seen:
                seen.add(id(x))
                inputs.append(k)
        entry = _Entry(generated.fn, program, rec.n_out, rec.out_spec, [k for k, _ in rec.mutated], inputs,
                       rec.views)
        return entry, out

    # ---- retracing ---------------------------------------------------------------------------
    def _note_retrace(self, key) -> None:
        previous, self._previous = self._previous, key
        self._streak += 1
        if self._streak < RETRACE_WARN_AFTER or self._warned or previous is None:
            return
        self._warned = True
        warnings.warn(RetraceWarning(
            f"jit({getattr(self._func, '__name__', 'f')}) recorded the function again on {self._streak} calls "
            f"in a row: {self._what_changed(previous, key)}. Each recording costs a "
            "full trace and compile."), stacklevel=4)

    def _what_changed(self, old, new) -> str:
        if old[0] != new[0]:
            return "the structure of the arguments changed (a different pytree)"
        if old[2] != new[2]:
            for (name, a), (_, b) in zip(old[2], new[2]):
                if a != b:
                    label = f"argument {name}{self._pname(name)}" if isinstance(name, int) else f"'{name}'"
                    return (f"static {label} changed value (static arguments are part of the cache "
                            "key); if it varies from call to call, pass it as an array instead")
        names = self._names(new[0])
        for k, (a, b) in enumerate(zip(old[1], new[1])):
            if a != b:
                if a[0] == "static" or b[0] == "static":
                    return (f"{names[k]} is a Python value (not an array), so jit treats it as static "
                            "and records once per value; pass it as an array (np.asarray(v) or "
                            "np.float64(v)) to trace it instead")
                if a[:2] == b[:2] and a[2] != b[2]:
                    return (f"{names[k]} kept its shape {a[0]} and dtype {a[1]} but changed its layout "
                            f"(strides {a[2]} to {b[2]}: a transposed, strided or sliced view), which "
                            "decides NumPy's views and copies; pass np.ascontiguousarray(x) to keep one "
                            "layout")
                if a[:3] == b[:3]:
                    return (f"{names[k]} is now the same array as another argument (or no longer is), "
                            "which jit records apart; pass distinct arrays")
                return (f"{names[k]} changed from shape {a[0]} dtype {a[1]} to shape {b[0]} dtype "
                        f"{b[1]}; each new shape or dtype needs its own recording")
        return "the arguments changed"

    # ---- inspection -----------------------------------------------------------------------
    def lower(self, *args, **kwargs) -> Lowered:
        """Record the function for these arguments and show the programs (no caching)."""
        _, leaves, spec, _ = self._key(args, kwargs)
        rec, program, generated, times = self._record(leaves, spec, args, kwargs)
        return Lowered(rec.program, program, generated.source if generated else "", times)

    def clear_cache(self) -> None:
        """Forget every recording (for example after changing an array the function closes over)."""
        self._cache.clear()
        self._fast.clear()

    def __repr__(self) -> str:
        return f"jit({_identifier(self._func)}, {len(self._cache)} cached, traced {self.trace_count}x)"

    def __get__(self, obj, objtype=None):  # jit on a method: bind like a function
        return self if obj is None else functools.partial(self, obj)


def _identifier(func) -> str:
    name = getattr(func, "__name__", "f")
    if name == "<lambda>":
        return "lambda_"
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return name if name and not name[0].isdigit() else "f"


def jit(func: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), optimize: bool | Sequence[str] = True,
        cache_size: int = 64, fuse: str | None = None):
    """``func`` recorded, optimised and compiled to NumPy code (see the module doc).

    ``static_argnums`` / ``static_argnames``: arguments keyed by value instead
    of traced.  ``optimize``: ``True`` for the default passes, ``False`` to run
    the program as recorded, or a sequence of pass names
    (``npfunc.compiler.PASSES``).  ``cache_size``: recordings kept.
    ``fuse``: ``None`` (plain NumPy, the default), or ``"numba"`` to compile
    elementwise chains into one kernel (an optional dependency; see
    ``npfunc.compiler.fusion`` and docs/performance.md for when that pays).  Usable as a decorator, with or without arguments.

    >>> import numpy as np, npfunc
    >>> @npfunc.jit(static_argnums=1)
    ... def power_sum(x, n):
    ...     return (x ** n).sum() if n > 0 else x.sum() * 0
    >>> int(power_sum(np.arange(3.0), 2)), power_sum.trace_count
    (5, 1)
    """
    passes = DEFAULT_PASSES if optimize is True else () if optimize is False else tuple(optimize)
    if func is None:
        return lambda f: Jitted(f, static_argnums, static_argnames, passes, cache_size, fuse)
    return Jitted(func, static_argnums, static_argnames, passes, cache_size, fuse)


def make_graph(func: Callable, *, static_argnums: int | Sequence[int] = (),
               static_argnames: str | Sequence[str] = (), passes: Sequence[str] | None = None):
    """A function of the arguments that returns the ``Lowered`` programs of ``func``
    for them (recorded and optimised, as ``jit`` would run them).

    >>> import numpy as np, npfunc
    >>> print(npfunc.make_graph(lambda x: np.sin(x) * 1.0)(np.zeros(2)))
    staged (2 equations):
    { lambda a:f64[2] .
        b:f64[2] = sin a
        c:f64[2] = multiply b 1.0
      in (c) }
    optimized (1 equations):
    { lambda a:f64[2] .
        b:f64[2] = sin a
      in (b) }
    """
    jitted = Jitted(func, static_argnums, static_argnames, DEFAULT_PASSES if passes is None else passes)
    return jitted.lower
