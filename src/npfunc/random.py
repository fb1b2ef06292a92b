"""``npfunc.random``: random numbers that vmap's ``randomness`` flag understands.

A ``Generator`` (from ``default_rng(seed)``) draws like NumPy's, but inside
``vmap`` it follows the transform's ``randomness`` argument:

* ``"error"`` (the default) raises ``RandomnessError`` naming the call;
* ``"different"`` draws independent values for every batch element, in one
  vectorised draw of the batched shape;
* ``"same"`` draws one value shared by the whole batch.

Distribution parameters may be traced: ``normal(loc, scale)`` is
``loc + scale * z`` (reparameterised), so it is differentiable in ``loc`` and
``scale``.

>>> import numpy as np, npfunc
>>> rng = npfunc.random.default_rng(0)
>>> draws = npfunc.vmap(lambda x: x + rng.normal(size=2), randomness="different")(np.zeros((3, 2)))
>>> draws.shape, bool(np.all(draws[0] != draws[1]))
((3, 2), True)
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from .core.context import current_stack, describe_stack
from .core.tracer import Tracer
from .core.errors import RandomnessError
from .core.values import shape_of
from .interpreters.batching import BatchInterpreter, BatchTracer
from .primitives.families import primal_value

__all__ = ["Generator", "default_rng"]


def _batch_axes(call: str) -> list[BatchInterpreter]:
    """The live vmaps that need a separate draw per element (outermost first)."""
    levels = []
    for interp in current_stack():
        if interp.transform == "jit" and not isinstance(interp, BatchInterpreter):
            raise RandomnessError(
                f"{describe_stack()}: {call} draws random numbers inside jit, where the draw "
                "would be recorded once and replayed unchanged. Draw outside the jitted function "
                "and pass the numbers in as an argument.")
        if not isinstance(interp, BatchInterpreter):
            continue
        if interp.randomness == "error":
            name = interp.transform  # vmap, or jacfwd (which maps over a basis)
            raise RandomnessError(
                f"{describe_stack()}: {call} draws random numbers inside {name}, whose "
                "randomness='error'. Pass randomness='different' (independent values per batch "
                f"element) or randomness='same' (one value for the whole batch) to {name}"
                + (" (for hessian: jacfwd(jacrev(f), randomness='same'))." if name == "jacfwd" else "."))
        if interp.randomness == "different":
            levels.append(interp)
    return levels


def _draw(call: str, sample, shape: tuple):
    """``sample(full_shape)`` with one leading axis per 'different' vmap, wrapped."""
    levels = _batch_axes(call)
    value = sample(tuple(i.axis_size for i in levels) + tuple(shape))
    for interp in levels:
        value = BatchTracer(interp, value, 0)
    return value


_first_states = threading.local()


@contextlib.contextmanager
def same_draws():
    """For ``vmap(..., randomness="same", chunk_size=k)``, which calls the function
    once per chunk: yields ``restart()``, to call before each chunk, which sets
    every generator drawn from so far back to its state before its first draw,
    so that each chunk draws what the first drew (one value for the batch)."""
    outer = getattr(_first_states, "states", None)
    states = _first_states.states = {}

    def restart() -> None:
        for rng, state in states.values():
            rng.bit_generator.state = state

    try:
        yield restart
    finally:
        _first_states.states = outer
        if outer is not None:  # an enclosing chunked vmap needs the states before these draws too
            for key, entry in states.items():
                outer.setdefault(key, entry)


def _shape(size, *params) -> tuple:
    if size is not None:
        return (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    return tuple(np.broadcast_shapes(*[tuple(shape_of(p)) for p in params])) if params else ()


class Generator:
    """A NumPy-like random generator for use inside npfunc transforms."""

    def __init__(self, bit_generator: np.random.Generator) -> None:
        self._rng = bit_generator

    def __repr__(self) -> str:
        return f"npfunc.random.Generator({self._rng.bit_generator.__class__.__name__})"

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying ``np.random.Generator``."""
        return self._rng

    def _draw(self, call: str, sample, shape: tuple):
        states = getattr(_first_states, "states", None)
        if states is not None and id(self._rng) not in states:  # (see same_draws)
            states[id(self._rng)] = (self._rng, self._rng.bit_generator.state)
        return _draw(call, sample, shape)

    # ---- continuous ------------------------------------------------------------------
    def standard_normal(self, size=None, dtype=np.float64):
        """Standard normal draws of shape ``size``."""
        return self._draw("standard_normal", lambda s: self._rng.standard_normal(s, dtype=dtype), _shape(size))

    def normal(self, loc=0.0, scale=1.0, size=None):
        """Normal draws, ``loc + scale * z``: differentiable in ``loc`` and ``scale``."""
        z = self._draw("normal", self._rng.standard_normal, _shape(size, loc, scale))
        return loc + scale * z

    def uniform(self, low=0.0, high=1.0, size=None):
        """Uniform draws on [low, high), ``low + (high - low) * u``: differentiable in the bounds."""
        u = self._draw("uniform", self._rng.random, _shape(size, low, high))
        return low + (high - low) * u

    def random(self, size=None):
        """Uniform draws on [0, 1)."""
        return self._draw("random", self._rng.random, _shape(size))

    def exponential(self, scale=1.0, size=None):
        """Exponential draws, ``scale * e``: differentiable in ``scale``."""
        return scale * self._draw("exponential", self._rng.standard_exponential, _shape(size, scale))

    # ---- discrete (never differentiated) -------------------------------------------------
    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        """Random integers as ``np.random.Generator.integers`` (bounds must be concrete)."""
        return self._draw("integers",
                          lambda s: self._rng.integers(low, high, size=s, dtype=dtype, endpoint=endpoint),
                          _shape(size))

    def bernoulli(self, p=0.5, size=None):
        """Booleans that are True with probability ``p`` (``p`` may be traced; no derivative)."""
        return self.random(_shape(size, p)) < p

    def binomial(self, n, p, size=None):
        """Binomial counts (no derivative): NumPy's draw for plain ``n`` and ``p``, and
        for a ``p`` differentiated by grad/jvp (its value); a ``p`` batched by a
        ``vmap(randomness='different')`` counts ``n`` Bernoulli draws below each
        element's ``p`` (the same distribution, other draws; ``n`` plain)."""
        value = primal_value(p)
        if not isinstance(value, Tracer):  # a value to draw with (None: recorded by jit, which refuses draws)
            return self._draw("binomial", lambda s: self._rng.binomial(n, p if value is None else value, size=s),
                              _shape(size, n, p))
        levels = _batch_axes("binomial")
        if isinstance(n, Tracer) or any(i.randomness == "same" for i in current_stack()
                                        if isinstance(i, BatchInterpreter)) or not levels:
            raise RandomnessError(
                f"{describe_stack()}: npfunc.random binomial(n, p) with p batched by vmap draws n Bernoulli "
                "variates per element, which only randomness='different' allows (with 'same' a loop would give "
                "NumPy's own binomial draws), and needs a plain n. Pass randomness='different', or p in plain.")
        shape = _shape(size, n, p)
        n = np.broadcast_to(np.asarray(n), shape)
        trials = int(n.max()) if n.size else 0
        if trials > 1_000_000:
            raise RandomnessError(f"{describe_stack()}: npfunc.random binomial with a batched p draws n Bernoulli "
                                  f"variates each; n = {trials} is too many. Pass p in plain, or use a normal "
                                  "approximation: n * p + np.sqrt(n * p * (1 - p)) * rng.standard_normal(shape)")
        below = self._draw("binomial", self._rng.random, shape + (trials,)) < np.expand_dims(p, -1)
        return np.sum(below & (np.arange(trials) < n[..., None]), axis=-1)

    def permutation(self, x):
        """A random permutation of ``range(x)`` (int ``x``) or of ``x`` along axis 0."""
        from .primitives.indexing.gather import getitem

        n = int(x) if isinstance(x, (int, np.integer)) else shape_of(x)[0]
        order = np.argsort(self._draw("permutation", self._rng.random, (n,)))
        return order if isinstance(x, (int, np.integer)) else getitem(x, order)

    def choice(self, a, size=None, replace=True, p=None):
        """Random samples of ``a`` (an int ``n`` means ``range(n)``), with or without replacement."""
        from .primitives.indexing.gather import getitem
        from .primitives.shape.basic import reshape

        n = int(a) if isinstance(a, (int, np.integer)) else shape_of(a)[0]
        shape = _shape(size)
        count = math.prod(shape)
        if not replace:
            if count > n:
                raise ValueError("choice: cannot take a larger sample than the population with replace=False")
            if p is not None:  # Gumbel top-k: keys log(p) + Gumbel noise, largest first
                gumbel = self._draw("choice", self._rng.gumbel, (n,))
                order = np.argsort(-(np.log(np.asarray(p, dtype=np.float64)) + gumbel))
            else:
                order = np.argsort(self._draw("choice", self._rng.random, (n,)))
            idx = reshape(getitem(order, slice(0, count)), shape)
        elif p is None:
            idx = self._draw("choice", lambda s: self._rng.integers(0, n, size=s), shape)
        else:
            cdf = np.cumsum(np.asarray(p, dtype=np.float64))
            u = self._draw("choice", self._rng.random, shape)
            idx = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), n - 1)
        return idx if isinstance(a, (int, np.integer)) else getitem(a, idx)


def default_rng(seed=None) -> Generator:
    """A ``Generator`` seeded like ``np.random.default_rng(seed)`` (reproducible)."""
    if isinstance(seed, Generator):
        return seed
    if isinstance(seed, np.random.Generator):
        return Generator(seed)
    return Generator(np.random.default_rng(seed))


def __dir__():
    return __all__
