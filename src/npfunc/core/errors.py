"""Every failure npfunc reports, one class per failure mode.

Messages follow one shape: ``<transform stack>: <what is wrong with which
argument>. <how to fix it>``.  The transform stack is written the way the
user composed it, e.g. ``vmap(grad(f))``, so a message raised deep inside a
nested transform still says where it came from.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "NpfuncError",
    "InDimsError",
    "OutDimsError",
    "BatchSizeError",
    "ArgnumsError",
    "NonDifferentiableInputError",
    "NonScalarOutputError",
    "OutputTypeError",
    "AuxOutputError",
    "TangentError",
    "ChunkSizeError",
    "IndependenceError",
    "ReplayLinAlgError",
    "BatchedConversionError",
    "ConcretizationError",
    "EscapedTracerError",
    "UnsupportedFunctionError",
    "RandomnessError",
    "UnsupportedOperationError",
    "DataDependentShapeError",
    "NoMemoryError",
    "RetraceWarning",
]


class NpfuncError(Exception):
    """Base class of every error npfunc raises on purpose."""


class InDimsError(NpfuncError, ValueError):
    """``in_dims`` does not match the arguments, or names an axis out of range."""


class OutDimsError(NpfuncError, ValueError):
    """``out_dims`` does not match the outputs, or names an axis out of range."""


class BatchSizeError(NpfuncError, ValueError):
    """Mapped inputs disagree on the batch size, or no input is mapped."""


class ArgnumsError(NpfuncError, ValueError):
    """``argnums`` is out of range, repeated or not an int / tuple of ints."""


class NonDifferentiableInputError(NpfuncError, TypeError):
    """A differentiated input is not a floating (or complex) array."""


class NonScalarOutputError(NpfuncError, ValueError):
    """``grad`` needs a function that returns a real scalar."""


class OutputTypeError(NpfuncError, TypeError):
    """A transformed function returned something that is not an array."""


class AuxOutputError(NpfuncError, TypeError):
    """``has_aux=True`` but the function did not return ``(output, aux)``."""


class TangentError(NpfuncError, ValueError):
    """Tangents or cotangents do not match the primals / outputs."""


class ChunkSizeError(NpfuncError, ValueError):
    """``chunk_size`` is not a positive int or None."""


class IndependenceError(NpfuncError, RuntimeError):
    """``strict=True`` and an output does not depend on an input."""


class BatchedConversionError(NpfuncError, TypeError):
    """A value batched by vmap was used where Python needs a single value."""


class ConcretizationError(NpfuncError, TypeError):
    """A differentiated value was turned into a plain number or ndarray,
    which would silently drop its derivative."""


class EscapedTracerError(NpfuncError, RuntimeError):
    """A traced value was used after the transform that made it returned."""


class UnsupportedFunctionError(NpfuncError, NotImplementedError):
    """A NumPy function that npfunc has no rule for met a traced value."""


class RandomnessError(NpfuncError, RuntimeError):
    """Random numbers were drawn inside vmap with ``randomness='error'``."""


class UnsupportedOperationError(NpfuncError, TypeError):
    """An operation a traced value cannot support (e.g. ``out=``)."""


class NoMemoryError(NpfuncError, AttributeError):
    """Code reading a traced value's memory (``__array_interface__``, as
    ``np.lib.stride_tricks.as_strided`` does): it has none.  An
    ``AttributeError``, as NumPy's probes for the attribute expect."""


class ReplayLinAlgError(NpfuncError, np.linalg.LinAlgError):
    """A linear-algebra operation failed while ``jit`` replayed a recording: the
    recording followed the path its first call took, which a ``try``/``except`` in
    the function cannot change on a replay.  Still a ``LinAlgError``."""


class DataDependentShapeError(UnsupportedOperationError):
    """A function whose output shape depends on array values (``np.argwhere``,
    ``np.union1d``...) met a transform that fixes every shape: ``vmap`` (one
    shape for the whole batch) or ``jit`` (shapes recorded at the first call)."""


class RetraceWarning(UserWarning):
    """``jit`` recorded the function again on several calls in a row (see its message)."""
