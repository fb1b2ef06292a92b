"""Reused memory for the copies a reverse-mode tape keeps of large arrays.

A tape keeps a private copy of each writeable plain array a primitive used
(``tracer.keep``), so that later writes by the user's code cannot reach the
backward pass.  For a large array most of that copy's cost is not the copy:
the allocator hands out fresh pages for every large block, and the first
write to each page is a page fault (on this project's machine a 2 MB copy
costs 0.15 ms in warm memory and 0.6 ms or more in fresh memory; eager
``jacrev`` of ``tanh(W @ x + b)`` at n=512 spent three quarters of its time
there).  So copies of large arrays go into buffers this module keeps and
hands out again.

A buffer is handed out again only when nothing but this module refers to
it: every NumPy view of a copy, and every array made over its memory,
refers to the buffer (NumPy's ``base``), so CPython's reference count says
exactly when the memory is free.  Idle buffers are kept up to
``IDLE_BUDGET`` bytes in all; the oldest go first.

>>> import numpy as np
>>> x = np.arange(1 << 16, dtype=np.float64)   # 512 KiB
>>> a = copy(x); a[0] = -1.0; float(x[0])        # a private copy
0.0
>>> del a
>>> b = copy(x)                                  # in the same memory as a
>>> bool(np.array_equal(b, x))
True
"""
from __future__ import annotations

import sys
import threading

import numpy as np

#: Smaller arrays are copied as NumPy copies them: their pages are reused anyway.
MIN_BYTES = 1 << 18
#: Larger arrays too: keeping one idle would hold too much memory.
MAX_BYTES = 1 << 25
#: The most idle memory kept between calls.
IDLE_BUDGET = 1 << 26

#: Reference counts are exact only with the GIL (free-threaded builds count per thread).
_POOLED = getattr(sys, "_is_gil_enabled", lambda: True)()

_lock = threading.Lock()
_buffers: list[np.ndarray] = []  # every buffer made and not yet dropped, oldest first


def copy(x: np.ndarray) -> np.ndarray:
    """A private copy of the plain array ``x``, in reused memory when ``x`` is
    large, laid out as ``x`` is (``x.copy(order="K")``): NumPy's products and
    sums pick their kernels, and so round, by the layout of their operands."""
    nbytes = x.nbytes
    if not MIN_BYTES <= nbytes <= MAX_BYTES or not _POOLED or x.dtype.kind not in "biufc":
        return x.copy(order="K")
    with _lock:
        buffer = _take(nbytes)
    flat = buffer.view(x.dtype)
    if x.flags.c_contiguous or x.ndim < 2:
        out = flat.reshape(x.shape)
    else:  # the axes in memory order, outermost first (what order="K" keeps)
        perm = sorted(range(x.ndim), key=lambda i: -abs(x.strides[i]))
        out = flat.reshape([x.shape[i] for i in perm]).transpose(np.argsort(perm))
    np.copyto(out, x)
    return out


def _idle(i: int) -> bool:
    """Whether nothing but this module refers to buffer ``i``: its references
    are then the list's and getrefcount's argument."""
    return sys.getrefcount(_buffers[i]) == 2


def _take(nbytes: int) -> np.ndarray:
    """An idle buffer of ``nbytes`` bytes, or a new one (dropping the oldest
    idle buffers beyond the budget)."""
    idle_bytes = 0
    found = None
    for i in range(len(_buffers)):
        if _idle(i):
            if found is None and _buffers[i].nbytes == nbytes:
                found = i
            else:
                idle_bytes += _buffers[i].nbytes
    if found is not None:
        _buffers.append(_buffers.pop(found))  # most recently used last
        return _buffers[-1]
    idle_bytes += nbytes  # the new buffer is idle again once its copy is dropped
    i = 0
    while idle_bytes > IDLE_BUDGET and i < len(_buffers):
        if _idle(i):
            idle_bytes -= _buffers.pop(i).nbytes
        else:
            i += 1
    _buffers.append(np.empty(nbytes, np.uint8))
    return _buffers[-1]


def clear() -> None:
    """Drop every idle buffer (the memory of copies still in use stays theirs)."""
    with _lock:
        i = 0
        while i < len(_buffers):
            if _idle(i):
                del _buffers[i]
            else:
                i += 1
