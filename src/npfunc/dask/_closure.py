"""Finding the data a function reads without being given it, and swapping it.

``grad(lambda w: mean_loss(w, X, y))`` names the dask arrays ``X`` and ``y``
only inside the function: in its closure cells, in the globals its code
names, in its defaults, in a ``functools.partial``'s arguments, or the same
inside the user's own functions it calls (functions of the same module, or
of ``__main__``).  ``find`` lists those places; ``rebuild`` makes a copy of
the function whose places hold other values (one chunk of each array, or
``Hole`` markers so that the copy shipped to a worker carries no dask graph).
Nothing else about the function changes: same code, same other globals.
"""
from __future__ import annotations

import dis
import functools
import types
from typing import Callable

import optree

_MAX_DEPTH = 4  # how deep into called user functions to look
_MAX_ITEMS = 64  # how many items of containers in closures and globals to look at


class Hole:
    """Marks where data was taken out of a function (to be put back per chunk)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self):
        return (Hole, (self.index,))


@functools.lru_cache(maxsize=4096)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """The globals ``code`` reads (not the attribute names that share ``co_names``)."""
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested lambdas, comprehensions
            names.update(_global_names(const))
    return tuple(sorted(names))


def _holds(value, wanted, budget: list) -> bool:
    """Whether a small container holds a wanted value.  Looks at no more than
    ``budget[0]`` items in all: a large table in the globals is not data (and
    this runs on every grad call)."""
    items = value.values() if isinstance(value, dict) else value
    if len(items) > budget[0]:
        return False
    budget[0] -= len(items)
    for item in items:
        if wanted(item):
            return True
        if isinstance(item, (tuple, list, dict)) and _holds(item, wanted, budget):
            return True
    return False


class Finder:
    """Walks a function for values matching ``wanted``; ``found`` lists them in the
    order ``rebuild`` consumes replacements."""

    def __init__(self, wanted: Callable[[object], bool], module: str | None) -> None:
        self.wanted = wanted
        self.module = module
        self.found: list = []
        self._seen: set[int] = set()

    def value(self, value, depth: int):
        """A plan for replacing what ``value`` holds, or None when it holds nothing."""
        if self.wanted(value):
            self.found.append(value)
            return ("leaf",)
        if isinstance(value, (tuple, list, dict)):
            if not _holds(value, self.wanted, [_MAX_ITEMS]):
                return None
            leaves, spec = optree.tree_flatten(value, none_is_leaf=True)
            mask = [self.wanted(leaf) for leaf in leaves]
            if any(mask):
                self.found.extend(leaf for leaf, m in zip(leaves, mask) if m)
                return ("tree", spec, [None if m else leaf for leaf, m in zip(leaves, mask)], mask)
            return None
        if depth > 0 and self._is_user_function(value):
            entries = self.function(value, depth - 1)
            return ("function", value, entries) if entries else None
        return None

    def _is_user_function(self, value) -> bool:
        if isinstance(value, functools.partial):
            return True
        return isinstance(value, types.FunctionType) and getattr(value, "__module__", None) in (
            self.module, "__main__")

    def function(self, func, depth: int = _MAX_DEPTH) -> list:
        """``[(kind, key, plan)]`` for the places of ``func`` that hold wanted values."""
        if id(func) in self._seen:
            return []
        self._seen.add(id(func))
        entries = []

        def visit(kind, key, value):
            plan = self.value(value, depth)
            if plan is not None:
                entries.append((kind, key, plan))

        if isinstance(func, functools.partial):
            visit("partial_func", None, func.func)
            for i, a in enumerate(func.args):
                visit("partial_arg", i, a)
            for name, a in func.keywords.items():
                visit("partial_kw", name, a)
            return entries
        if not isinstance(func, types.FunctionType):
            return entries
        for i, cell in enumerate(func.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later)
                continue
            visit("cell", i, contents)
        g = func.__globals__
        for name in _global_names(func.__code__):
            if name in g:
                visit("global", name, g[name])
        for i, a in enumerate(func.__defaults__ or ()):
            visit("default", i, a)
        for name, a in (func.__kwdefaults__ or {}).items():
            visit("kwdefault", name, a)
        return entries


def find(func: Callable, wanted: Callable[[object], bool]) -> tuple[list, list]:
    """``(values, entries)``: the wanted values ``func`` reads, and where they are."""
    finder = Finder(wanted, getattr(func, "__module__", None))
    entries = finder.function(func)
    return finder.found, entries


def _rebuild_value(plan, replacements):
    kind = plan[0]
    if kind == "leaf":
        return next(replacements)
    if kind == "tree":
        _, spec, leaves, mask = plan
        return optree.tree_unflatten(spec, [next(replacements) if m else leaf
                                            for leaf, m in zip(leaves, mask)])
    return rebuild(plan[1], plan[2], replacements)


def rebuild(func, entries: list, replacements):
    """A copy of ``func`` with the places in ``entries`` holding the next values of the
    iterator ``replacements`` (in the order ``find`` listed them)."""
    if not entries:
        return func
    if isinstance(func, functools.partial):
        inner, args, keywords = func.func, list(func.args), dict(func.keywords)
        for kind, key, plan in entries:
            value = _rebuild_value(plan, replacements)
            if kind == "partial_func":
                inner = value
            elif kind == "partial_arg":
                args[key] = value
            else:
                keywords[key] = value
        return functools.partial(inner, *args, **keywords)
    cells = list(func.__closure__ or ())
    g = func.__globals__
    defaults = list(func.__defaults__ or ())
    kwdefaults = dict(func.__kwdefaults__ or {})
    for kind, key, plan in entries:
        value = _rebuild_value(plan, replacements)
        if kind == "cell":
            cells[key] = types.CellType(value)
        elif kind == "global":
            if g is func.__globals__:
                g = dict(g)  # the copy's own globals: the module's stay as they are
            g[key] = value
        elif kind == "default":
            defaults[key] = value
        else:
            kwdefaults[key] = value
    new = types.FunctionType(func.__code__, g, func.__name__, tuple(defaults) or None,
                             tuple(cells) if func.__closure__ is not None else None)
    new.__kwdefaults__ = kwdefaults or None
    new.__qualname__ = func.__qualname__
    new.__module__ = func.__module__
    new.__doc__ = func.__doc__
    new.__dict__.update(func.__dict__)
    return new
