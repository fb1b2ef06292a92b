"""Indexing: gathers (``x[i]``, ``take``), functional updates (``set_at``,
``add_at``) and NumPy's in-place syntax on traced values."""
from . import gather, updates, inplace, inplace_calls  # noqa: F401
