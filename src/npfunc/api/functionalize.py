"""``functionalize``: code that mutates arrays, as a function every transform takes.

In npfunc every transform already sees NumPy's in-place updates and views as
functional updates (``primitives/indexing/aliasing.py``): ``x[i] = v``,
``x += y``, ``out=``, writes through views.  So ``functionalize(f)`` runs ``f``
with exactly NumPy's semantics -- arguments mutated directly or through
views are mutated as the plain function mutates them, traced or not -- and
exists for torch.func code and for its ``remove`` option:

* ``remove="mutations"``: outputs alias the inputs as the plain function's
  do (``return x[1:]`` returns a view of the argument);
* ``remove="mutations_and_views"``: no output shares memory with an input or
  with another output; each is a copy where it would.

>>> import numpy as np, npfunc
>>> def normalise_(x):          # mutates its argument
...     x -= x.mean()
...     x /= np.abs(x).max()
...     return (x ** 2).sum()
>>> y = np.array([1.0, 2.0, 4.0])
>>> _ = npfunc.functionalize(normalise_)(y)  # a plain call mutates y, as NumPy does
>>> np.round(y, 3)
array([-0.8, -0.2,  1. ])
>>> x = np.array([1.0, 2.0, 4.0])
>>> g = npfunc.grad(npfunc.functionalize(normalise_))(x)   # and so does every transform
>>> np.round(g, 3), np.round(x, 3)
(array([-0.288,  0.432, -0.144]), array([-0.8, -0.2,  1. ]))
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ..core.tracer import Tracer
from ..primitives.indexing.aliasing import alias_of
from ._common import check_callable, tree_flatten, tree_unflatten

REMOVE = ("mutations", "mutations_and_views")


def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """``func`` with NumPy's in-place semantics under every transform (see module doc)."""
    check_callable(func, "functionalize")
    if remove not in REMOVE:
        raise ValueError(f"functionalize: remove must be one of {REMOVE}, got {remove!r}")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = func(*args, **kwargs)
        if remove == "mutations":
            return out
        return _unaliased(out, tree_flatten((args, kwargs))[0])

    return wrapper


def _unaliased(out, inputs):
    """``out`` with every leaf that shares memory with an input or an earlier
    output replaced by a copy."""
    leaves, spec = tree_flatten(out)
    seen = [x for x in inputs if isinstance(x, (Tracer, np.ndarray))]
    fresh = []
    for leaf in leaves:
        if any(_shares(leaf, other) for other in seen):
            leaf = np.copy(leaf)
        seen.append(leaf)
        fresh.append(leaf)
    return tree_unflatten(spec, fresh)


def _shares(a, b) -> bool:
    """True when ``a`` and ``b`` are the same array or share memory (traced: the same alias family)."""
    if a is b:
        return True
    if isinstance(a, Tracer) or isinstance(b, Tracer):
        alias_a, alias_b = alias_of(a), alias_of(b)
        return alias_a is not None and alias_b is not None and alias_a.storage is alias_b.storage
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.shares_memory(a, b)
