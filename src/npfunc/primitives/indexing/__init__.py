"""Indexing: gathers (``x[i]``, ``take``), functional updates (``set_at``,
``add_at``), NumPy's in-place syntax on traced values and index arithmetic
(``unravel_index``, ``ravel_multi_index``, ``ix_``, ``*_indices_from``)."""
from . import gather, updates, inplace, inplace_calls, indices  # noqa: F401
