"""Noticing random draws made while a function is traced.

A draw inside a jitted function would be recorded as a constant and
replayed unchanged, so it must raise.  ``npfunc.random`` raises by itself;
NumPy's generators (``np.random.*``, ``Generator``, ``RandomState``) and
Python's ``random`` know nothing of npfunc, so ``RandomWatch`` notes the
state of every live bit generator before tracing and compares it after: any
draw advances a state.  A ``RandomState`` is watched too: its legacy Gaussian
draws come in pairs, and the second of a pair is served from the
``RandomState``'s own cache without touching its bit generator.  (A generator created *during* tracing is not seen:
its draws are frozen like any other value the function computes from
constants.  Seeded inside the function, that is what the plain function
gives every call anyway.  Seeded from the operating system's entropy,
``np.random.default_rng()`` with no seed, it is not: every plain call draws
new numbers, so ``fresh_entropy`` notes NumPy asking for entropy while the
function is recorded.)

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> watch = RandomWatch()
>>> _ = rng.normal()
>>> watch.changed()
True
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import random

import numpy as np

from .keys import exact_key

__all__ = ["RandomWatch"]

_TYPES = frozenset({np.random.MT19937, np.random.PCG64, np.random.PCG64DXSM, np.random.Philox,
                    np.random.SFC64, random.Random, np.random.RandomState})


def _state(obj):
    if isinstance(obj, random.Random):
        return obj.getstate()
    if type(obj) is np.random.RandomState:  # (its cached second Gaussian is not in the bit generator)
        return exact_key(obj.get_state(legacy=False))
    return exact_key(obj.state)


_enabled = True


@contextlib.contextmanager
def unwatched():
    """Record without watching (for npfunc's own tests of many primitives,
    whose time the heap scan would dominate; each primitive's first sample
    is still recorded with the watch)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


class RandomWatch:
    """The states of all live random generators, to compare with later (see module doc)."""

    __slots__ = ("states",)

    def __init__(self) -> None:
        if not _enabled:
            self.states = []
            return
        objects = gc.get_objects()
        # (the filter runs in C, over map and compress: twice as quick as a list comprehension
        # on the millions of objects of a large process)
        found = itertools.compress(objects, map(_TYPES.__contains__, map(type, objects)))
        self.states = [(obj, _state(obj)) for obj in found]

    def changed(self) -> bool:
        """True if any watched generator has drawn since the watch was made."""
        return any(_state(obj) != state for obj, state in self.states)


@contextlib.contextmanager
def fresh_entropy():
    """Within the block, NumPy seeding a new generator from the operating system's entropy
    (``np.random.default_rng()``, ``SeedSequence()``, ``PCG64()``, ``RandomState()`` with
    no seed) on this thread is noted: the block yields a list that such a seeding appends
    to.  NumPy's ``SeedSequence`` takes its entropy from ``numpy.random.bit_generator``'s
    module-level ``randbits`` (``secrets.randbits``), looked up at each call, so a
    stand-in there sees every seeding; other threads' seedings pass through unnoted."""
    import threading

    from numpy.random import bit_generator

    seen: list = []
    if not _enabled or not callable(getattr(bit_generator, "randbits", None)):
        yield seen
        return
    original = bit_generator.randbits
    me = threading.get_ident()

    def randbits(k):
        if threading.get_ident() == me:
            seen.append(k)
        return original(k)

    bit_generator.randbits = randbits
    try:
        yield seen
    finally:
        bit_generator.randbits = original
