"""Indexing: gathers (``x[i]``, ``take``), functional updates (``set_at``,
``add_at``), NumPy's in-place syntax on traced values and index arithmetic
(``unravel_index``, ``ravel_multi_index``, ``ix_``, ``*_indices_from``).

Importing the package loads none of its modules: each loads when first
needed (see ``npfunc.primitives``)."""
from ...core.lazy import submodules_on_access

__getattr__ = submodules_on_access(__name__)
