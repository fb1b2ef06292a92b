"""Outputs whose shape depends on array values (``np.argwhere``, ``np.extract``,
the set routines, ``np.trim_zeros``...).

Under grad, jvp, vjp and functionalize every traced value still has concrete
values, so these functions compute their index maps with NumPy on those
values (``concrete``) and build differentiable outputs by gathering from the
traced inputs: the derivative of an output entry is the derivative of the
input entry it was taken from.  Under ``vmap`` (one shape for the whole
batch) and ``jit`` (shapes recorded once) there is no such value, and
``concrete`` raises ``DataDependentShapeError`` naming the function and a
fix that works there.

The fixes offer fixed shapes: ``np.where(mask, x, fill)``, or npfunc's
``size=`` variants (``npfunc.numpy.nonzero(x, size=k, fill_value=...)``),
which return exactly ``k`` entries, padded with ``fill_value``.  They are
built from ``first_true`` below, which every transform can batch and record.

``ensure`` checks a condition on values wherever they live (on the primal
under grad, on the whole batch under vmap, at every replay under jit), for
errors NumPy raises on values, such as an out-of-range ``np.choose`` index,
a zero in ``np.geomspace`` or a quantile outside [0, 1]; ``check`` is the
same for call sites that do not use the value.  ``peek`` reads a value where
one exists, for choices that only refine a result (a warning, NumPy's dtype
of a 0-d NaN result) and may be skipped under vmap and jit.
"""
from __future__ import annotations

import numpy as np

from ..core.array_hooks import numpy_asarray
from ..core.context import describe_stack
from ..core.errors import BatchedConversionError, ConcretizationError, DataDependentShapeError
from ..core.primitive import Primitive, Sample
from ..core.tracer import Tracer
from ..core.values import shape_of

__all__ = ["concrete", "peek", "recorded", "first_true", "fixed_size", "ensure", "check", "is_traced",
           "as_array"]


def is_traced(*values) -> bool:
    return any(isinstance(v, Tracer) for v in values)


def as_array(x):
    """``x`` as an array: traced values as they are, anything else through ``np.asarray``."""
    return x if isinstance(x, Tracer) else np.asarray(x)


def concrete(x, what: str, fix: str) -> np.ndarray:
    """The values of ``x`` as a plain ndarray, or ``DataDependentShapeError``.

    ``what`` names the call (``"np.argwhere(a)"``), ``fix`` says what to
    write instead under vmap and jit.  The result carries no derivative:
    it is used for indices, masks and shapes only.
    """
    if not isinstance(x, Tracer):
        return np.asarray(x)
    from .elementwise.arithmetic import stop_gradient

    value = stop_gradient(x)  # plain under any stack of grad/jvp/vjp levels
    if not isinstance(value, Tracer):
        return np.asarray(value)
    try:
        return numpy_asarray(value)  # NumPy's own: a batched or recorded value refuses
    except BatchedConversionError:
        reason = "vmap needs one output shape for the whole batch"
    except ConcretizationError:
        reason = "jit records every shape at the first call, and later calls would reuse it"
    from ..core.dispatch import scipy_function

    inside = scipy_function()
    if inside:  # SciPy's code made the call: the fix is not the user's to write there
        raise DataDependentShapeError(
            f"{describe_stack()}: the shape of {what}, which SciPy's {inside} computes, depends on the values "
            f"of its input, and {reason}. Call {inside.rsplit('.', 1)[-1]} with plain values (computed "
            "outside the transform), or write its formula out with np functions.") from None
    raise DataDependentShapeError(
        f"{describe_stack()}: the shape of {what} depends on the values of its input, and "
        f"{reason}. {fix}") from None


def peek(x):
    """The plain value of ``x`` where every transform still has one (grad, jvp,
    vjp), else None (vmap: one value per element; jit: none yet).  The refusal
    is expected here (``array_hooks._probe``): jit must not take it for one the
    user's function caught and went on from, which it refuses to record."""
    from ..core.array_hooks import _probe

    try:
        return _probe(concrete, x, "", "")
    except DataDependentShapeError:
        return None


def recorded(x) -> str | None:
    """The recording transform (``"jit"``) behind ``x``, if one records it: its
    shapes are frozen at the first call.  Looks through every wrapping tracer."""
    from ..core.tracer import PrimalTracer
    from ..interpreters.staging import StagedTracer

    while isinstance(x, Tracer):
        if isinstance(x, StagedTracer):  # a variable: shapes and dtypes only
            return x._interp.transform
        x = x.primal if isinstance(x, PrimalTracer) else getattr(x, "val", None)  # batch, functionalize
    return None


def fixed_size(size, fn_name: str) -> int:
    """``size=`` checked: a non-negative int."""
    if isinstance(size, Tracer) or isinstance(size, (bool, np.bool_)) or np.ndim(size) != 0 \
            or int(size) != size or int(size) < 0:
        raise ValueError(f"{fn_name}: size must be a non-negative Python int, got {size!r}")
    return int(size)


def first_true(mask, size: int):
    """``(index, valid)`` for the first ``size`` True entries of the 1-D ``mask``:
    ``index`` holds their positions in order (padded with positions of False
    entries), ``valid`` says which of the ``size`` slots found a True entry.
    Fixed shapes, so vmap and jit can run it."""
    from .elementwise.arithmetic import less, logical_not
    from .reductions.index import count_nonzero
    from .shape.basic import concatenate
    from .sorting import argsort

    n = shape_of(mask)[0]
    if size > n:
        mask = concatenate([mask, np.zeros(size - n, bool)])
    order = argsort(logical_not(mask), kind="stable")  # the True entries first, in order
    index = order[:size]
    valid = less(np.arange(size), count_nonzero(mask))
    return index, valid


# ---- ensure: NumPy's value errors, wherever the values are -------------------------------

#: name -> predicate on a plain array (True: acceptable), given the params of ``ensure``.
TESTS = {
    "in_range": lambda x, low, high: not x.size or bool((x >= low).all() and (x < high).all()),
    "all_false": lambda x, low, high: not x.any(),
    "true": lambda x, low, high: bool(np.all(x)),
    "nonzero": lambda x, low, high: not np.any(x == 0),
    "nonnegative": lambda x, low, high: not np.any(x < 0),
    "unit_interval": lambda x, low, high: bool(np.all((0 <= x) & (x <= 1))),
    "integral": lambda x, low, high: bool(np.all(x == np.around(x))),
    "finite": lambda x, low, high: bool(np.all(np.isfinite(x))),
    "real_dtype": lambda x, low, high: x.dtype.kind != "c",
}


def _ensure_impl(x, *, test, low, high, error, message):
    if not TESTS[test](np.asarray(x), low, high):
        where = describe_stack()
        raise error(message if where == "npfunc" else f"{where}: {message}")
    return x


def _ensure_batch(vals, dims, **params):
    return _ensure.bind(vals[0], **params), dims[0]  # the whole batch at once


_ensure = Primitive(
    "ensure", _ensure_impl, batch=_ensure_batch, effect=True,
    # the value passes through unchanged, and so does its derivative (a float checked
    # for a domain and then used keeps its gradient)
    jvp=lambda primals, tangents, out, **_: tangents[0],
    vjp=lambda g, primals, out, needs, **_: (g,),
    samples=lambda rng: [
        Sample(np.array([0, 2, 1]), test="in_range", low=0, high=3, error=ValueError, message="bad"),
        Sample(np.array([[False, False]]), test="all_false", low=0, high=0, error=IndexError,
               message="bad"),
        Sample(np.array([1.0, -2.0]), test="nonzero", low=0, high=0, error=ValueError, message="zero"),
        Sample(np.array([[0.1, 0.5], [0.9, 0.25]]), test="unit_interval", low=0, high=0, error=ValueError,
               message="outside")],
    notes="x itself, after raising error(message) when the test fails on its values (the primal "
          "under grad, the whole batch under vmap, every replay under jit); the identity's derivative")


def ensure(x, test: str, message: str, error: type = ValueError, low=0, high=0):
    """``x`` (an index or mask), after raising ``error(message)`` unless ``TESTS[test]``
    holds for its values.  Use the returned value: a recorded computation then
    depends on the check, so no optimisation can drop it."""
    if isinstance(x, Tracer):
        return _ensure.bind(x, test=test, low=low, high=high, error=error, message=message)
    return _ensure_impl(x, test=test, low=low, high=high, error=error, message=message)


def check(x, test: str, message: str, error: type = ValueError) -> None:
    """Raise ``error(message)`` unless ``TESTS[test]`` holds for the values of
    ``x``, under whatever transforms run (``ensure`` without its result; the
    primitive is marked as an effect, so no optimisation drops it)."""
    ensure(x, test, message, error)
