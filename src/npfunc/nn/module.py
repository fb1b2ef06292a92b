"""A small torch-shaped module system over NumPy arrays.

Parameters, buffers and submodules are registered by attribute assignment
(``self.weight = nn.Parameter(array)``, ``self.register_buffer(...)``,
``self.fc = nn.Linear(...)``) and stored as plain NumPy arrays, so a module's
state is an ordinary dict of arrays -- exactly what ``functional_call``,
``stack_module_state`` and the transforms work with.

>>> import numpy as np
>>> from npfunc import nn
>>> class Affine(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.weight = nn.Parameter(np.ones((2, 3)))
...         self.register_buffer("offset", np.zeros(2))
...     def forward(self, x):
...         return self.weight @ x + self.offset
>>> m = Affine()
>>> [name for name, _ in m.named_parameters()], list(m.state_dict())
(['weight'], ['weight', 'offset'])
>>> m(np.ones(3))
array([3., 3.])
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from ..core.errors import NpfuncError


class ModuleError(NpfuncError, ValueError):
    """A module was used or configured wrongly.

    Raised inside a submodule's ``forward``, the message starts with the
    submodule's dotted path from the module that was called and its class,
    e.g. ``features.0 (Conv2d): expected ...``, and says how to fix it."""


class Parameter:
    """Marks an array as a trainable parameter when assigned to a module attribute.

    The module stores the array itself; reading the attribute gives the array.
    """

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        data = np.array(data, copy=True)
        if data.dtype.kind not in "fc":
            data = data.astype(np.float64)
        self.data = data

    def __repr__(self) -> str:
        return f"Parameter({self.data!r})"


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of npfunc's layers; subclasses define ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ---------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise ModuleError(
                f"{type(self).__name__}: assign attributes after calling super().__init__() "
                "in __init__")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            if name not in params:
                self._forget(name)
            params[name] = value.data  # re-assignment keeps the registration order
        elif isinstance(value, Module):
            if name not in modules:
                self._forget(name)
            modules[name] = value
        elif name in params:
            params[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise ModuleError(f"{type(self).__name__}.{name} is a submodule; assign a Module or None")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __dir__(self):
        extra = [k for t in (self._parameters, self._buffers, self._modules) for k in t]
        return sorted(set(super().__dir__()) | set(extra))

    def __delattr__(self, name: str) -> None:
        if any(name in t for t in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, value: Any) -> None:
        """Add a parameter (``None`` registers an absent one, like a bias-free layer)."""
        self._forget(name)
        self._parameters[name] = None if value is None else Parameter(value).data

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """Add a buffer: state that is not trained (e.g. running statistics);
        ``persistent=False`` leaves it out of ``state_dict``."""
        self._forget(name)
        self._buffers[name] = None if value is None else np.asarray(value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register a submodule (replacing one of the same name keeps its position)."""
        if not isinstance(name, str) or "." in name or not name:
            raise ModuleError(f"{type(self).__name__}.add_module: the name must be a non-empty string "
                              f"without '.', got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise ModuleError(f"{type(self).__name__}.add_module('{name}'): expected a Module, got "
                              f"{type(module).__name__}")
        if name not in self._modules:
            self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator[tuple[str, "Module"]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def _named(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, value in getattr(module, table).items():
                if value is None:
                    continue
                if remove_duplicate and id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{path}.{name}" if path else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        """(dotted name, array) for every parameter; tied arrays are listed once."""
        return self._named("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Any]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        return self._named("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Any]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state ----------------------------------------------------------------------
    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, np.ndarray]":
        """Parameters and persistent buffers by dotted name: copies (the arrays
        themselves with ``keep_vars=True``).  Tied arrays appear under every name."""
        out = OrderedDict()
        for path, module in self.named_modules(prefix):
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    if value is None or (table is module._buffers and name in module._non_persistent):
                        continue
                    out[f"{path}.{name}" if path else name] = value if keep_vars else np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the module's own arrays (in place, as torch: tied
        parameters stay tied); with ``strict`` the keys must match exactly."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise ModuleError(
                f"load_state_dict({type(self).__name__}): missing keys {missing}, unexpected "
                f"keys {unexpected}. Pass the state_dict of the same architecture, or strict=False.")
        for key in state_dict:
            if key in own and tuple(np.shape(state_dict[key])) != tuple(np.shape(own[key])):
                raise ModuleError(
                    f"load_state_dict({type(self).__name__}): '{key}' has shape "
                    f"{tuple(np.shape(state_dict[key]))} in the state dict but {tuple(np.shape(own[key]))} "
                    "in the module")
        for key, value in state_dict.items():
            if key not in own:
                continue
            current = own[key]
            if isinstance(current, np.ndarray) and current.flags.writeable:
                current[...] = np.asarray(value)
            else:
                owner, leaf = self._locate(key)
                table = owner._parameters if leaf in owner._parameters else owner._buffers
                table[leaf] = np.array(value, dtype=np.asarray(current).dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path ``target`` (``""`` is the module itself)."""
        if not target:
            return self
        module, leaf = self._locate(target)
        child = module._modules.get(leaf)
        if child is None:
            raise ModuleError(f"{type(self).__name__} has no submodule '{target}'")
        return child

    def to(self, dtype) -> "Module":
        """Cast every floating parameter and buffer to ``dtype`` (in place; returns self).
        An array already of ``dtype`` is kept, and an array shared by several
        modules (tied weights) stays shared, as torch's in-place conversion keeps it."""
        dtype = np.dtype(dtype)
        converted: dict = {}  # id of an array -> its cast (tied weights: one cast)
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    if value is None or np.asarray(value).dtype.kind not in "fc":
                        continue
                    cast = converted.get(id(value))
                    if cast is None:
                        cast = converted[id(value)] = np.asarray(value).astype(dtype, copy=False)
                    table[name] = cast
        return self

    def float(self) -> "Module":
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def _locate(self, dotted: str) -> tuple["Module", str]:
        """The submodule owning ``dotted`` and the attribute name within it."""
        *path, leaf = dotted.split(".")
        module = self
        for i, part in enumerate(path):
            child = module._modules.get(part)
            if child is None:
                raise ModuleError(
                    f"{type(self).__name__} has no submodule '{'.'.join(path[:i + 1])}' (from key "
                    f"'{dotted}'); check that the dict belongs to this module")
            module = child
        return module, leaf

    # ---- modes and calls --------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every submodule (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        try:
            return self.forward(*args, **kwargs)
        except Exception as err:
            _record_module_path(self, err)
            raise

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


class _Where:
    """Where in a module tree an exception was raised (kept on the exception)."""

    __slots__ = ("module", "path", "origin", "base", "detached")

    def __init__(self, module: Module, base) -> None:
        self.module, self.path, self.origin = module, "", type(module).__name__
        self.base, self.detached = base, False

    @property
    def label(self) -> str:
        return f"{self.path} ({self.origin})" if self.path else self.origin


def _relative_path(parent: Module, child: Module) -> str | None:
    for name, m in parent._modules.items():
        if m is child:
            return name
    for path, m in parent.named_modules():
        if m is child:
            return path
    return None


_NOTE_PREFIX = "(raised in module "


def _record_module_path(module: Module, err: Exception) -> None:
    """Name the module (and its dotted path from the outermost module called)
    in an error raised inside ``forward``.

    A ``ModuleError`` gets its message prefixed with ``path (Class)``; any
    other exception raised inside a submodule gets a note with the path (so
    its type, which callers may catch, is unchanged).  Called once per level
    as the exception travels up through the ``Module.__call__``s.
    """
    where = getattr(err, "_npfunc_where", None)
    if where is None:
        base = err.args[0] if isinstance(err, ModuleError) and err.args else None
        where = _Where(module, base)
        try:
            err._npfunc_where = where
        except AttributeError:  # pragma: no cover - exceptions without a __dict__
            return
    elif where.detached or where.module is module:
        return
    else:
        rel = _relative_path(module, where.module)
        if rel is None:  # called from forward without being registered as a submodule
            where.detached = True
            return
        where.path = f"{rel}.{where.path}" if where.path else rel
        where.module = module
    if isinstance(err, ModuleError) and isinstance(where.base, str):
        err.args = (f"{where.label}: {where.base}",) + err.args[1:]
    elif where.path and hasattr(err, "add_note"):
        notes = getattr(err, "__notes__", None)
        note = f"{_NOTE_PREFIX}{where.label})"
        if notes and notes[-1].startswith(_NOTE_PREFIX):
            notes[-1] = note
        else:
            err.add_note(note)


def make_rng(rng: Any) -> np.random.Generator:
    """A ``np.random.Generator`` from a seed, a Generator, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
