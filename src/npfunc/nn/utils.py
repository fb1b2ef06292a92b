"""Module utilities with torch.func's semantics: functional_call,
stack_module_state, replace_all_batch_norm_modules_."""
from __future__ import annotations

import contextlib
import difflib
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


def _slots(module: Module) -> dict:
    """Every parameter and buffer slot in one traversal: dotted name -> (owner, leaf, table).

    Tied arrays appear under each of their names."""
    slots = {}
    modules = list(module.named_modules())
    for kind in ("_parameters", "_buffers"):  # parameters first, as named_parameters + named_buffers
        for path, owner in modules:
            table = getattr(owner, kind)
            for leaf, value in table.items():
                if value is not None:
                    slots[f"{path}.{leaf}" if path else leaf] = (owner, leaf, table)
    return slots


def _tied_groups(slots: dict) -> list[list[str]]:
    """Dotted names sharing one array (tied weights)."""
    groups: dict[int, list[str]] = {}
    for name, (_, leaf, table) in slots.items():
        groups.setdefault(id(table[leaf]), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _attribute_slot(module: Module, dotted: str):
    """(owner, leaf) of an existing plain (non-parameter) attribute named ``dotted``, else None:
    torch lets functional_call replace those too."""
    *path, leaf = dotted.split(".")
    for part in path:
        module = module._modules.get(part) if isinstance(module, Module) else None
        if module is None:
            return None
    return (module, leaf) if leaf in module.__dict__ else None


@contextlib.contextmanager
def _swapped(slots: dict, attributes: dict, values: dict):
    """Temporarily put ``values`` into the module's slots (and plain attributes)."""
    saved = []
    try:
        for key, value in values.items():
            if key in slots:
                owner, leaf, table = slots[key]
            else:
                owner, leaf = attributes[key]
                table = owner.__dict__
            saved.append((table, leaf, table[leaf]))
            table[leaf] = value
        yield
    finally:
        for table, leaf, old in reversed(saved):
            table[leaf] = old


def functional_call(module: Module, parameter_and_buffer_dicts, args: Any = (), kwargs: dict | None = None,
                    *, tie_weights: bool = True, strict: bool = False):
    """Call ``module`` with its parameters and buffers replaced by the given ones.

    ``parameter_and_buffer_dicts`` is a dict (or a tuple of dicts) from dotted
    names to arrays -- traced values under transforms; names not given keep
    the module's own arrays.  The module's slots are restored afterwards, even
    if ``forward`` raises, so the call is a pure function of the dicts --
    which is what lets ``grad``, ``vmap`` and friends transform it.  (As in
    torch, buffers a module updates in place -- batch norm's running
    statistics in training mode -- are updated in the arrays passed in.)

    Errors name the problem and the fix: keys for another module, keys that
    match nothing (with the closest valid name), arrays of the wrong shape
    (and stacked ones from ``stack_module_state`` used outside ``vmap``).

    >>> import numpy as np, npfunc
    >>> from npfunc import nn
    >>> layer = nn.Linear(3, 1, rng=0)
    >>> params = {k: np.zeros_like(v) for k, v in layer.named_parameters()}
    >>> npfunc.functional_call(layer, params, (np.ones(3),))
    array([0.])
    """
    values = _merge(parameter_and_buffer_dicts, "functional_call")
    slots = _slots(module)
    if tie_weights:
        for names in _tied_groups(slots):
            given = [n for n in names if n in values]
            if len(given) > 1 and any(values[n] is not values[given[0]] for n in given[1:]):
                raise ModuleError(
                    f"functional_call: {given} are tied in {type(module).__name__} but were given "
                    "different values; pass one of them, or tie_weights=False")
            if given:
                for n in names:
                    values.setdefault(n, values[given[0]])
    unexpected = [k for k in values if k not in slots]
    if strict:
        missing = [k for k in slots if k not in values]
        if missing or unexpected:
            raise ModuleError(
                f"functional_call({type(module).__name__}, strict=True): missing keys {missing}, "
                f"unexpected keys {unexpected}. Pass exactly the module's named_parameters() and "
                "named_buffers().")
    attributes: dict = {}
    if unexpected:
        _check_unexpected(module, slots, values, unexpected, attributes)
    for key, value in values.items():
        if key in slots and value is not None:
            owner, leaf, table = slots[key]
            want, got = tuple(np.shape(table[leaf])), tuple(shape_of(value))
            if want != got:
                hint = (" It looks stacked (from stack_module_state): call it under npfunc.vmap."
                        if got[1:] == want else "")
                raise ModuleError(
                    f"functional_call: '{key}' has shape {got} but {type(module).__name__}'s "
                    f"'{key}' has shape {want}.{hint}")
    if not isinstance(args, tuple):
        args = (args,)
    with _swapped(slots, attributes, values):
        return module(*args, **(kwargs or {}))


def _check_unexpected(module: Module, slots: dict, values: dict, unexpected: list, attributes: dict) -> None:
    """Accept keys naming plain attributes (filling ``attributes``); explain every other key."""
    if len(unexpected) == len(values):
        raise ModuleError(
            f"functional_call: none of the keys {unexpected[:5]} name a parameter or buffer of "
            f"{type(module).__name__} (whose keys are {list(slots)[:5]}...). Is the dict "
            "for another module? Build it from this module: dict(model.named_parameters()).")
    unknown = []
    for key in unexpected:
        slot = _attribute_slot(module, key)
        if slot is None:
            unknown.append(key)
        else:
            attributes[key] = slot
    if unknown:
        hints = []
        for key in unknown[:3]:
            close = difflib.get_close_matches(key, list(slots), n=1)
            if close:
                hints.append(f"'{key}' -> did you mean '{close[0]}'?")
        raise ModuleError(
            f"functional_call: {unknown[:5]} name no parameter, buffer or attribute of "
            f"{type(module).__name__}. {' '.join(hints)} Its parameters and buffers are "
            f"{list(slots)[:8]}{'...' if len(slots) > 8 else ''}.")


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
    out = []
    for table in ("_parameters", "_buffers"):
        per_model = [dict(m._named(table, "", True, True)) for m in models]
        names = list(per_model[0])
        for i, (m, named) in enumerate(zip(models[1:], per_model[1:]), 1):
            if list(named) != names:
                raise ModuleError(
                    f"stack_module_state: model {i} ({type(m).__name__}) has "
                    f"{'parameters' if table == '_parameters' else 'buffers'} {list(named)}, model 0 has "
                    f"{names}; all models must have the same structure")
        stacked = {}
        for name in names:
            arrays = [named[name] for named in per_model]
            if any(isinstance(a, Tracer) for a in arrays):
                from ..primitives.shape.basic import stack

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
    (in place), so that it can run under vmap.  Returns ``root``.

    Batch norm in training mode then normalises with each batch's own
    statistics and updates nothing -- what vmap over an ensemble of models
    (or over minibatches) needs.  In eval mode, too, it uses batch statistics
    (there are no running ones any more)."""
    for module in root.modules():
        if getattr(module, "track_running_stats", None) is not None and hasattr(module, "num_features"):
            module.running_mean = None
            module.running_var = None
            if "num_batches_tracked" in module._buffers:
                module.num_batches_tracked = None
            object.__setattr__(module, "track_running_stats", False)
    return root
