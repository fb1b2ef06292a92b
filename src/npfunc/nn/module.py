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
    """A module was used or configured wrongly (names the module path and the fix)."""


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
        """Add a buffer: state that is not trained (e.g. running statistics)."""
        self._forget(name)
        self._buffers[name] = None if value is None else np.asarray(value)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
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
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and persistent buffers by dotted name (copies)."""
        out = OrderedDict()
        for path, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    if value is None or (table is module._buffers and name in module._non_persistent):
                        continue
                    out[f"{path}.{name}" if path else name] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the module; with ``strict`` the keys must match exactly."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise ModuleError(
                f"load_state_dict({type(self).__name__}): missing keys {missing}, unexpected "
                f"keys {unexpected}. Pass the state_dict of the same architecture, or strict=False.")
        for key, value in state_dict.items():
            if key not in own:
                continue
            value = np.asarray(value)
            if value.shape != own[key].shape:
                raise ModuleError(
                    f"load_state_dict: '{key}' has shape {value.shape} in the state dict but "
                    f"{own[key].shape} in the module")
            owner, leaf = self._locate(key)
            table = owner._parameters if leaf in owner._parameters else owner._buffers
            table[leaf] = np.array(value, dtype=own[key].dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

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
        return self.forward(*args, **kwargs)

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


def make_rng(rng: Any) -> np.random.Generator:
    """A ``np.random.Generator`` from a seed, a Generator, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
