"""The per-thread stack of transform levels.

Every transform call (``grad``, ``vmap``, ...) pushes one ``Interpreter`` for
the duration of the user's function.  Levels come from a global counter, so
an interpreter pushed later always outranks every live one: this is what
keeps nested transforms apart (no perturbation confusion) even when a
``vjp_fn`` is called long after the ``vjp`` that made it.
"""
from __future__ import annotations

import itertools
import threading

from . import array_hooks
from .errors import ConcretizationError, NpfuncError, UnsupportedOperationError

_next_level = itertools.count(1).__next__


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[Interpreter] = []


_state = _ThreadState()


class Interpreter:
    """One transform level.  Subclasses implement ``process``.

    ``process(prim, args, params)`` is called by ``Primitive.bind`` when this
    is the highest level among the arguments.  Arguments that are not this
    level's own tracers are constants from its point of view.
    """

    __slots__ = ("level", "alive", "transform", "hidden", "refused")
    #: Raise, on leaving, a conversion refused that the function caught (reverse and forward
    #: mode, vmap; jit checks its own ``refused`` in compiler/trace.py, where it reports more),
    #: as ``refusal_error``, saying the result would differ from ``plain`` otherwise.
    watch_refusals = False
    refusal_error: type = ConcretizationError
    plain = "the plain function"
    #: True when the values this level makes can end up as plain arrays the user
    #: may write into (a staged program): copies must then be real copies.
    copies_values = False

    def __init__(self, transform: str, hidden: bool = False) -> None:
        self.level = _next_level()
        self.alive = True
        self.transform = transform
        self.hidden = hidden  # an inner level of a composite transform (jacfwd's jvp)
        self.refused: str | None = None  # the first conversion refused at this level (its message)

    def __enter__(self) -> "Interpreter":
        stack = _state.stack
        if not stack:  # this thread's outermost transform: NumPy's constructors take traced values
            array_hooks.enter()
        stack.append(self)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.alive = False
        stack = _state.stack
        # compiled code (Cython, C) asking a traced value for its memory raises a bare TypeError:
        # name the transforms (while they are still on the stack) and the function
        compiled = describe_stack() if exc_type is TypeError and _buffer_refusal(exc) else None
        if stack:
            while stack:  # also drops anything a failed inner transform left
                if stack.pop() is self:
                    break
            if not stack:
                array_hooks.exit()
        if compiled is not None:
            raise UnsupportedOperationError(f"{compiled}: {_buffer_fix(exc)}") from exc
        if exc_type is ValueError and isinstance(exc.__cause__, NpfuncError) and \
                str(exc).startswith("setting an array element with a sequence"):
            # NumPy's own wording for `plain[i] = traced`, with npfunc's refusal (which names
            # the transform and the fix) as its cause: the user sees the refusal
            raise exc.__cause__.with_traceback(None) from exc
        if self.refused is not None and self.watch_refusals and not isinstance(exc, NpfuncError):
            if exc_type is None:  # the function caught the refusal and returned another way
                raise self.refusal_error(
                    f"{self.refused} (The function caught this error and went on along another path, which "
                    f"would make {self.transform} differ from {self.plain}.)")
            # another error hid it (a NumPy method catching it and returning NotImplemented)
            raise self.refusal_error(
                f"{self.refused} (The function caught this error and then raised {exc_type.__name__}: "
                f"{exc})") from exc

    def note_refusal(self, err: Exception) -> None:
        """Keep the first conversion refused at this level (reported on leaving if the function
        caught it), unless code that catches it on purpose asked: np.array's wrappers trying
        NumPy first, array-api-compat's ``is_lazy_array``."""
        from .conversions import probed_by_array_api, probing

        if not probing() and not probed_by_array_api():
            self.refused = self.refused or str(err)

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "live" if self.alive else "exited"
        return f"<{type(self).__name__} {self.transform} level={self.level} {state}>"


def current_stack() -> tuple[Interpreter, ...]:
    """The live interpreters of this thread, outermost first."""
    return tuple(_state.stack)


def _buffer_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is compiled code's refusal of a traced value where it needs an array's
    memory (the buffer protocol: Cython's typed memoryviews, ``memoryview(x)``)."""
    text = str(exc)
    return text.startswith(("a bytes-like object is required, not '", "memoryview: a bytes-like object")) \
        and text.rstrip("'").endswith("Tracer")


#: SciPy functions that find positions (no derivative): find them on the plain values and
#: gather the traced ones
_INDEX_FINDERS = {
    name: (f"find the positions on the plain values, i = {name.split('.')[-1]}(npfunc.stop_gradient(v), ...)[0] "
           "(or on the data before the transform), then gather the traced values, v[i], which npfunc "
           "differentiates and batches")
    for name in ("scipy.signal.find_peaks", "scipy.signal.find_peaks_cwt", "scipy.signal.argrelextrema",
                 "scipy.signal.argrelmax", "scipy.signal.argrelmin", "scipy.signal.peak_prominences",
                 "scipy.signal.peak_widths")}


def _buffer_fix(exc: BaseException) -> str:
    """The refusal for ``_buffer_refusal``: the library function the user called (the outermost
    NumPy/SciPy frame of the traceback) and what works instead.  Only called while building
    an error message."""
    from . import dispatch

    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    found, other = None, None
    for frame in frames:
        module = frame.f_globals.get("__name__", "") or ""
        if found is None and module.split(".")[0] in ("scipy", "numpy"):
            found = frame
        if other is None:
            other = dispatch.TWINS.get(frame.f_code)
            other = f"call {other} instead" if other else next(
                (s for s in (alt(frame.f_code) for alt in dispatch.ALTERNATIVES) if s), None)
    if found is None:
        where = "a compiled function"
    else:
        name = getattr(found.f_code, "co_qualname", found.f_code.co_name)  # Rotation.from_rotvec
        where = f"{dispatch.public_module(found.f_globals['__name__'])}.{name} (called from your code)"
    fix = other or _INDEX_FINDERS.get(where.split(" ")[0]) or (
        "compute it with NumPy and scipy.special functions, which npfunc transforms (docs/coverage.md lists "
        "SciPy's twins)")
    return (f"{where} runs compiled code that needs the memory of a plain array (the buffer protocol), "
            f"which a traced value does not have: {fix}.")


def describe_stack(innermost: str | None = None) -> str:
    """The active transforms as the user composed them, e.g. ``vmap(grad(f))``."""
    names = [interp.transform for interp in _state.stack if not interp.hidden]
    if innermost is not None:
        names.append(innermost)
    if not names:
        return "npfunc"
    text = "f"
    for name in reversed(names):
        text = f"{name}({text})"
    return text


class Invalidated:
    """Stands in for the interpreter of a traced value that must not be used
    any more, with the reason; any use raises it (like an escaped value)."""

    __slots__ = ("level", "transform", "hidden", "message")
    alive = False
    copies_values = False

    def __init__(self, interp, message: str) -> None:
        self.level = interp.level
        self.transform = interp.transform
        self.hidden = interp.hidden
        self.message = message
