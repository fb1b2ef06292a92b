"""NumPy's global random functions (``np.random.normal`` ...) inside ``vmap``.

A draw from NumPy's global generator takes no traced input, so nothing of
npfunc would see it: it would run once, and the whole batch would share it,
where a loop over the batch draws anew for every element.  The first time a
``vmap`` runs, the drawing functions in the ``np.random`` namespace are
replaced by wrappers (for good: swapping 45 names in and out costs more than
a ``vmap`` call) that raise ``RandomnessError`` under a live ``vmap`` whose
``randomness`` is ``'error'`` or ``'different'`` (naming
``npfunc.random.default_rng``, whose draws follow ``randomness``), and
otherwise call NumPy's function, at the cost of one Python call (``'same'``:
one draw for the batch is what it asks for).  Code that bound the function
itself (``from numpy.random import normal``) and ``Generator`` objects are
not affected.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from .context import current_stack, describe_stack
from .errors import RandomnessError

#: modules whose draws are their own business (made on plain values inside a computation)
_LIBRARIES = ("numpy", "scipy", "npfunc")
_NOT_DRAWS = frozenset({"default_rng", "get_bit_generator", "get_state", "seed", "set_bit_generator", "set_state",
                        "test"})
_ORIGINAL = {name: fn for name, fn in np.random.__dict__.items()
             if not name.startswith("_") and type(fn).__name__ == "method" and name not in _NOT_DRAWS}


def _refuse_in_vmap(name: str) -> None:
    for interp in current_stack():
        if interp.transform == "vmap" and getattr(interp, "randomness", "same") != "same":
            raise RandomnessError(
                f"{describe_stack()}: np.random.{name} draws from NumPy's global generator inside vmap "
                f"(randomness={interp.randomness!r}), which cannot give each batch element a draw of its "
                "own: a loop would draw anew for every element. Draw with npfunc.random.default_rng(seed) "
                "(its draws follow randomness=), or pass randomness='same' for one draw shared by the batch.")


def _wrapper(name, original):
    def draw(*args, **kwargs):
        if _active and not sys._getframe(1).f_globals.get("__name__", "").startswith(_LIBRARIES):
            _refuse_in_vmap(name)  # (a library's own draw on plain values, SciPy's norm estimates, is its own)
        return original(*args, **kwargs)

    draw.__name__ = draw.__qualname__ = name
    draw.__doc__ = original.__doc__
    draw.__wrapped__ = original
    return draw


_lock = threading.Lock()
#: live vmaps that refuse shared draws (in every thread): only a quick "look at the
#: stack" flag, which the wrappers confirm on this thread's transform stack
_active = 0
_installed = False


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            np.random.__dict__.update({name: _wrapper(name, fn) for name, fn in _ORIGINAL.items()
                                       if np.random.__dict__.get(name) is fn})
            _installed = True


def enter() -> None:
    """A vmap starts (the first one installs the wrappers)."""
    global _active
    if not _installed:
        _install()
    _active += 1


def exit() -> None:
    """A vmap ended."""
    global _active
    _active -= 1
