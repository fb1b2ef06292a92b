"""NumPy's global random functions (``np.random.normal`` ...) inside ``vmap``.

A draw from NumPy's global generator takes no traced input, so nothing of
npfunc would see it: it would run once, and the whole batch would share it,
where a loop over the batch draws anew for every element.  Once a ``vmap``
has run (and ``numpy.random`` is imported), the drawing functions in the
``np.random`` namespace are wrappers (for good: swapping 45 names in and out
would cost more than a ``vmap`` call).  Under a live ``vmap`` whose
``randomness`` is ``'error'`` or ``'different'`` they raise
``RandomnessError`` naming ``npfunc.random.default_rng`` (whose draws follow
``randomness``); otherwise, and for draws SciPy or NumPy make themselves,
they call NumPy's function, at the cost of one Python call.  Code that bound
the function itself (``from numpy.random import normal``) and ``Generator``
objects are not affected.
"""
from __future__ import annotations

import sys
import threading

from .context import _state, current_stack, describe_stack
from .errors import RandomnessError
from .imports import when_imported

#: modules whose draws are their own business (made on plain values inside a computation)
_LIBRARIES = ("numpy", "scipy", "npfunc")
_NOT_DRAWS = frozenset({"default_rng", "get_bit_generator", "get_state", "seed", "set_bit_generator", "set_state",
                        "test"})


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
        if getattr(_state, "stack", None) and not sys._getframe(1).f_globals.get("__name__", "").startswith(
                _LIBRARIES):
            _refuse_in_vmap(name)  # (a library's own draw on plain values, SciPy's norm estimates, is its own)
        return original(*args, **kwargs)

    draw.__name__ = draw.__qualname__ = name
    draw.__doc__ = original.__doc__
    draw.__wrapped__ = original
    return draw


_lock = threading.Lock()
installed = False  # (read by the batching interpreter: one bool check per vmap)


def _install(random_module) -> None:
    """Wrap the drawing functions of ``numpy.random`` (once it is imported: importing
    npfunc or running a vmap does not import it)."""
    with _lock:
        namespace = random_module.__dict__
        namespace.update({name: _wrapper(name, fn) for name, fn in list(namespace.items())
                          if not name.startswith("_") and type(fn).__name__ == "method" and name not in _NOT_DRAWS})


def install() -> None:
    """The first vmap installs the wrappers (now, or when np.random is first imported)."""
    global installed
    if not installed:
        installed = True
        when_imported("numpy.random", _install)
