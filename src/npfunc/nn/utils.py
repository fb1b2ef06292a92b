"""Module utilities with torch.func's semantics: functional_call,
stack_module_state, replace_all_batch_norm_modules_."""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

import numpy as np

from ..core.tracer import Tracer
from ..core.values import shape_of
from .module import Module, ModuleError


def _merge(dicts, fn_name: str) -> dict:
    if isinstance(dicts, dict):
        return dict(dicts)
    if not isinstance(dicts, (tuple, list)) or not all(isinstance(d, dict) for d in dicts):
        raise ModuleError(
            f"{fn_name}: parameter_and_buffer_dicts must be a dict or a tuple of dicts, got "
            f"{type(dicts).__name__}")
    merged: dict = {}
    for d in dicts:
        for key, value in d.items():
            if key in merged:
                raise ModuleError(
                    f"{fn_name}: '{key}' appears in more than one of the dicts; each parameter or "
                    "buffer may be given only once")
            merged[key] = value
    return merged


def _tied_names(module: Module) -> dict[str, list[str]]:
    """Dotted names sharing one array (tied weights), keyed by the first name."""
    groups: dict[int, list[str]] = {}
    for table in ("_parameters", "_buffers"):
        for path, value in module._named(table, "", True, False):
            groups.setdefault(id(value), []).append(path)
    return {names[0]: names for names in groups.values() if len(names) > 1}


@contextlib.contextmanager
def _swapped(module: Module, values: dict):
    """Temporarily put ``values`` into the module's parameter/buffer slots."""
    saved = []
    try:
        for key, value in values.items():
            owner, leaf = module._locate(key)
            if leaf in owner._parameters:
                table = owner._parameters
            elif leaf in owner._buffers:
                table = owner._buffers
            else:
                table = None
            if table is None:
                saved.append((owner, leaf, None, owner.__dict__.get(leaf, _MISSING)))
                object.__setattr__(owner, leaf, value)
            else:
                saved.append((owner, leaf, table, table[leaf]))
                table[leaf] = value
        yield
    finally:
        for owner, leaf, table, old in reversed(saved):
            if table is not None:
                table[leaf] = old
            elif old is _MISSING:
                owner.__dict__.pop(leaf, None)
            else:
                object.__setattr__(owner, leaf, old)


_MISSING = object()


def functional_call(module: Module, parameter_and_buffer_dicts, args: Any = (), kwargs: dict | None = None,
                    *, tie_weights: bool = True, strict: bool = False):
    """Call ``module`` with its parameters and buffers replaced by the given ones.

    The module itself is unchanged afterwards, even if ``forward`` raises, so
    the call is a pure function of the dicts -- which is what lets ``grad``,
    ``vmap`` and friends transform it.

    >>> import numpy as np, npfunc
    >>> from npfunc import nn
    >>> layer = nn.Linear(3, 1, rng=0)
    >>> params = {k: np.zeros_like(v) for k, v in layer.named_parameters()}
    >>> npfunc.functional_call(layer, params, (np.ones(3),))
    array([0.])
    """
    values = _merge(parameter_and_buffer_dicts, "functional_call")
    expected = {name: value for table in ("_parameters", "_buffers")
                for name, value in module._named(table, "", True, False)}
    if tie_weights:
        for first, names in _tied_names(module).items():
            given = [n for n in names if n in values]
            if len(given) > 1 and any(values[n] is not values[given[0]] for n in given[1:]):
                raise ModuleError(
                    f"functional_call: {given} are tied in {type(module).__name__} but were given "
                    "different values; pass one of them, or tie_weights=False")
            if given:
                for n in names:
                    values.setdefault(n, values[given[0]])
    missing = [k for k in expected if k not in values]
    unexpected = [k for k in values if k not in expected]
    if strict and (missing or unexpected):
        raise ModuleError(
            f"functional_call({type(module).__name__}, strict=True): missing keys {missing}, "
            f"unexpected keys {unexpected}. Pass exactly the module's named_parameters() and "
            "named_buffers().")
    if unexpected and len(unexpected) == len(values):
        raise ModuleError(
            f"functional_call: none of the keys {unexpected[:5]} name a parameter or buffer of "
            f"{type(module).__name__} (whose keys are {list(expected)[:5]}...). Is the dict "
            "for another module?")
    for key, value in values.items():
        if key in expected and expected[key] is not None and value is not None:
            want, got = tuple(np.shape(expected[key])), tuple(shape_of(value))
            if want != got:
                hint = (" It looks stacked (from stack_module_state): call it under npfunc.vmap."
                        if got[1:] == want else "")
                raise ModuleError(
                    f"functional_call: '{key}' has shape {got} but {type(module).__name__}'s "
                    f"'{key}' has shape {want}.{hint}")
    if not isinstance(args, tuple):
        args = (args,)
    with _swapped(module, values):
        return module(*args, **(kwargs or {}))


def stack_module_state(models: Sequence[Module]) -> tuple[dict, dict]:
    """Stack the parameters and buffers of same-shaped models along a new axis 0.

    Returns ``(params, buffers)`` dicts of new arrays (copies: later changes
    to the models do not show up in them), ready for
    ``vmap(functional_call ...)`` ensembles.

    >>> import numpy as np, npfunc
    >>> from npfunc import nn
    >>> models = [nn.Linear(3, 2, rng=i) for i in range(4)]
    >>> params, buffers = npfunc.stack_module_state(models)
    >>> params["weight"].shape, buffers
    ((4, 2, 3), {})
    """
    models = list(models)
    if not models:
        raise ModuleError("stack_module_state: expected a non-empty list of modules")
    first = models[0]
    out = []
    for table in ("_parameters", "_buffers"):
        names = [n for n, _ in first._named(table, "", True, True)]
        for i, m in enumerate(models[1:], 1):
            other = [n for n, _ in m._named(table, "", True, True)]
            if other != names:
                raise ModuleError(
                    f"stack_module_state: model {i} ({type(m).__name__}) has "
                    f"{'parameters' if table == '_parameters' else 'buffers'} {other}, model 0 has "
                    f"{names}; all models must have the same structure")
        stacked = {}
        for name in names:
            arrays = [dict(m._named(table, "", True, True))[name] for m in models]
            if any(isinstance(a, Tracer) for a in arrays):
                from ..primitives.shape import stack

                stacked[name] = stack(arrays)
                continue
            shapes = {np.shape(a) for a in arrays}
            if len(shapes) > 1:
                raise ModuleError(
                    f"stack_module_state: '{name}' has different shapes across models: "
                    f"{sorted(shapes)}")
            stacked[name] = np.stack([np.asarray(a) for a in arrays])
        out.append(stacked)
    return out[0], out[1]


def replace_all_batch_norm_modules_(root: Module) -> Module:
    """Make every batch-norm module of ``root`` stop tracking running statistics
    (in place), so that it can run under vmap.  Returns ``root``."""
    for module in root.modules():
        if getattr(module, "track_running_stats", None) is not None and hasattr(module, "num_features"):
            module.running_mean = None
            module.running_var = None
            if "num_batches_tracked" in module._buffers:
                module.num_batches_tracked = None
            object.__setattr__(module, "track_running_stats", False)
    return root
