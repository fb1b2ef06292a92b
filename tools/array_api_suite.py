"""Run the data-apis conformance suite (array-api-tests) on traced values.

A development tool, not part of npfunc.  ``array-api-tests`` calls the
namespace it is given on arrays it makes with that namespace's creation
functions.  ``namespace(mode)`` returns ``npfunc.array_api`` whose creation
functions return traced values of one long-lived transform, so every
function the suite checks runs on traced values through that transform's
rules:

* ``plain``: npfunc.array_api itself (NumPy arrays in, NumPy arrays out);
* ``jvp``: forward mode, float arrays carry a non-zero tangent;
* ``grad``: reverse mode (every operation is recorded on a tape);
* ``vmap``: a batch of two identical copies; a conversion the suite makes
  (``float(x)``, ``bool(x)``) checks that both copies agree and reads one.

Conversions made by the suite itself read the values; those made inside
npfunc behave as under the real transform (so data-dependent shapes raise
under vmap: run that mode with ``--disable-data-dependent-shapes``).

Usage (see docs/array_api.md)::

    export PYTHONPATH=$PWD/src:$PWD/tools
    export ARRAY_API_TESTS_MODULE="exec('import array_api_suite; xp = array_api_suite.namespace(\\"jvp\\")')"
    cd <array-api-tests checkout> && python -m pytest array_api_tests -n 2 --max-examples=50
"""
from __future__ import annotations

import sys
import types

import numpy as np

import npfunc.array_api as _xp
from npfunc.core.tracer import PrimalTracer, Tracer
from npfunc.interpreters.batching import BatchInterpreter, BatchTracer
from npfunc.interpreters.jvp import JVPInterpreter, JVPTracer
from npfunc.interpreters.reverse import ReverseInterpreter

_CREATION = ("arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like", "linspace",
             "meshgrid", "ones", "ones_like", "tril", "triu", "zeros", "zeros_like")
_CONVERT = {"bool": bool, "int": int, "index": lambda v: np.asarray(v).__index__(), "float": float,
            "complex": complex, "item": lambda v: np.asarray(v).item(), "tolist": lambda v: np.asarray(v).tolist(),
            "array": np.asarray, "floor": lambda v: np.floor(v), "ceil": lambda v: np.ceil(v),
            "trunc": lambda v: np.trunc(v)}


def _asked_by_suite() -> bool:
    """True when the conversion comes from the suite's own checks (not from npfunc)."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if not module.startswith(("npfunc", __name__)) and module != "numpy" and \
                not module.startswith("numpy."):
            return module.startswith(("array_api_tests", "hypothesis", "conftest", "_pytest"))
        frame = frame.f_back
    return False


def _plain(x):
    """The plain value a traced value of the suite's transform stands for."""
    while isinstance(x, Tracer):
        if isinstance(x, BatchTracer):
            both = np.moveaxis(np.asarray(_plain(x.val)), x.bdim, 0)
            if both.shape[0] == 2 and not np.array_equal(both[0], both[1], equal_nan=True):
                raise AssertionError(f"vmap: the two identical batch elements differ: {both[0]!r} vs {both[1]!r}")
            return both[0]
        x = x.primal
    return x


def _patch_conversions() -> None:
    for cls in (PrimalTracer, BatchTracer):
        original = cls._concrete

        def concrete(self, kind, original=original):
            if _asked_by_suite():
                return _CONVERT[kind](_plain(self))
            return original(self, kind)

        cls._concrete = concrete


def _lifter(mode: str):
    if mode == "jvp":
        interp = JVPInterpreter("jvp")

        def lift(value):
            value = np.asarray(value)
            if value.dtype.kind in "fc":
                tangent = np.where(np.isfinite(value), 0.5 * value + 1, 1).astype(value.dtype)
                return JVPTracer(interp, value, tangent)
            return value  # forward mode carries no integer or boolean tracers
    elif mode == "grad":
        interp = ReverseInterpreter("grad")

        def lift(value):
            value = np.asarray(value)
            return interp.lift(value) if value.dtype.kind in "fc" else value  # as reverse mode records
    elif mode == "vmap":
        interp = BatchInterpreter(2)
        lift = interp.lift
    else:
        raise ValueError(f"unknown mode {mode!r}: plain, jvp, grad or vmap")
    interp.__enter__()  # stays on the stack for the whole session
    return lift


def namespace(mode: str = "jvp") -> types.ModuleType:
    """npfunc.array_api whose creation functions make traced values of ``mode``."""
    if mode == "plain":
        return _xp
    _patch_conversions()
    lift = _lifter(mode)

    def lifted(x):
        if isinstance(x, (list, tuple)):
            return type(x)(lifted(v) for v in x)
        return x if isinstance(x, Tracer) else lift(x)

    def wrap(f):
        def creation(*args, **kwargs):
            return lifted(f(*args, **kwargs))

        creation.__name__ = creation.__qualname__ = f.__name__
        creation.__wrapped__ = f
        return creation

    module = types.ModuleType(f"npfunc.array_api[{mode}]")
    for name in dir(_xp):
        value = getattr(_xp, name)
        setattr(module, name, wrap(value) if name in _CREATION else value)
    fft = types.ModuleType("npfunc.array_api.fft")
    for name in _xp.fft.__all__:
        value = getattr(_xp.fft, name)
        setattr(fft, name, wrap(value) if name.endswith("freq") else value)
    module.fft = fft
    module.__name__ = f"npfunc.array_api[{mode}]"
    return module
