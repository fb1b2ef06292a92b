"""What to tell a user whose code asked a traced value for a plain NumPy value.

NumPy gives no hook for writing a traced value into a plain array
(``a[i] = x``), indexing a plain array with a traced index (``table[i]``) or
converting a list of traced values inside its own functions
(``np.sum([x, y])``): it asks the traced value for a plain array and the
traced value must refuse.  Which fix applies depends on where that happened,
so the error looks at the code that asked (only when building the message).
"""
from __future__ import annotations

import dis
import sys

_STORES = ("STORE_SUBSCR", "STORE_SLICE")
_LOADS = ("BINARY_SUBSCR", "BINARY_SLICE")
_OURS = ("npfunc.", "optree")


def probing() -> bool:
    """Whether ``np.array`` & co. are trying NumPy's own constructor on values that
    may hold traced ones (``array_hooks``): a traced value's refusal is then
    expected and caught, so the refusal need not build its message (which
    disassembles the asking code: 0.8 ms)."""
    from .array_hooks import probing as state

    return getattr(state, "depth", 0) > 0


def _asking_frames():
    """(the user's frame, the library function it called or None)."""
    frame = sys._getframe(2)
    entry = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if module.startswith(_OURS) and not module.startswith("npfunc.tour"):
            frame = frame.f_back
            continue
        if module.split(".")[0] in ("numpy", "scipy"):
            entry = frame
            frame = frame.f_back
            continue
        return frame, entry
    return None, entry


def _named_scipy_frame(entry):
    """The outermost frame below the user's of a SciPy function defined at module level:
    ``entry`` itself, or, when that is a decorator's closure (scipy._lib._util.wrapper
    around scipy.linalg.eig), the function it called."""
    frame, named = sys._getframe(1), entry
    while frame is not None and frame is not entry:
        if (frame.f_globals.get("__name__", "") or "").startswith("scipy") and \
                "<locals>" not in frame.f_code.co_qualname:
            named = frame  # (keeps the outermost one: the walk goes outwards)
        frame = frame.f_back
    return entry if "<locals>" not in entry.f_code.co_qualname else named


def _instruction(frame) -> str:
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return ins.opname
    return ""


def _called_method(frame) -> str:
    """The name of the attribute the instruction at ``frame`` calls (``rng.binomial``), or ""."""
    name = ""
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset > frame.f_lasti:
            break
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
            name = ins.argval
    return name


def _draws() -> frozenset:
    """NumPy Generator draws (a plain array has no method of these names); only asked
    for while building an error message (numpy.random is not loaded before)."""
    import numpy as np

    return frozenset(n for n in dir(np.random.Generator) if not n.startswith("_")) - frozenset(
        dir(np.ndarray)) - {"bit_generator", "spawn", "bytes"}


def conversion_fix(kind: str) -> str | None:
    """The fix for the operation that asked for a plain value of ``kind``
    (``"array"`` or ``"index"``), or None when nothing specific applies."""
    from .dispatch import twin_hint

    if twin_hint():
        return None  # a twin exists: its name is the fix (appended by the caller)
    user, entry = _asking_frames()
    if entry is not None and kind == "array":
        name = f"{entry.f_globals.get('__name__', '?')}.{entry.f_code.co_name}"
        if name.startswith("scipy"):  # twin_hint found no twin and no array-API path
            named = _named_scipy_frame(entry)
            public = ".".join(p for p in named.f_globals["__name__"].split(".") if not p.startswith("_"))
            return (f"{public}.{named.f_code.co_name} (called from your code) converts its arguments with "
                    "np.asarray and has no npfunc twin (docs/coverage.md lists what npfunc supports): write "
                    "that step with np functions, or keep traced values out of it.")
        if type(entry.f_locals.get("self")).__name__ in ("RClass", "CClass", "AxisConcatenator"):
            return ("np.r_ / np.c_ with a range or a directive string (0:3, 'r') beside a traced value cannot "
                    "build it: write the pieces out, np.concatenate([np.arange(0, 3), x]) for np.r_[0:3, x].")
        short = "np." + entry.f_code.co_name if name.startswith("numpy") else name
        return (f"{short} (called from your code) turned its argument into a plain array, which a traced "
                f"value cannot become: pass arrays, e.g. build a list of traced values into one with "
                f"np.stack([...]) first ({short}(np.stack([x, y])) instead of {short}([x, y])).")
    if user is None or (entry is not None and kind != "array"):
        return None
    op = _instruction(user)
    if op in _STORES:
        return ("Writing a traced value into a plain NumPy array (a[i] = x) cannot work, the array cannot "
                "hold it: create the array traced, e.g. a = np.zeros(shape, like=x), and writes of traced "
                "values into it work; or build the result functionally with npfunc.numpy.set_at(a, i, x).")
    if op in _LOADS:
        return ("Indexing a plain NumPy array with a traced index (table[i]) cannot work: make the table a "
                "traced constant first, table = np.asarray(table, like=i), then table[i] works; or use "
                "npfunc.numpy.take(table, i).")
    method = _called_method(user) if kind == "array" else ""
    if method in _draws():
        return (f"A NumPy random Generator's {method}(...) turned a traced parameter into a plain "
                "array: NumPy's generators take plain numbers. Draw with npfunc.random.default_rng(seed), whose "
                "draws follow vmap's randomness= and take traced parameters where its docstrings say so, or "
                "draw standard variates and transform them (loc + scale * rng.standard_normal(shape)).")
    if kind == "array":
        return ("A NumPy function or method turned a traced value into a plain array. Call NumPy's functions "
                "through the module (np.array(...), which accepts traced values while a transform runs, not "
                "a name imported with `from numpy import array`), and pass traced values to np.* functions "
                "rather than to methods of plain arrays (np.dot(a, x) instead of a.dot(x)); to build an "
                "array from traced values use np.stack([...]).")
    return None


def conversion_advice(kind: str, default: str = "") -> str:
    """What a refused conversion of ``kind`` tells the user: the fix for the
    operation that asked (``conversion_fix``, else ``default``), then the twin or
    SciPy's array-API path when a foreign function asked (``dispatch.twin_hint``,
    which ``conversion_fix`` leaves to its caller)."""
    from .dispatch import twin_hint

    return ((conversion_fix(kind) or default) + twin_hint()).strip()
