"""Array manipulation: reshape and transpose, broadcasting, joining and splitting,
rearranging (flip, roll, pad, the diagonal family), adding and removing entries
(append, insert, delete, resize, trim_zeros, block), sliding windows, metadata.

Importing the package loads none of its modules: each loads when first
needed (see ``npfunc.primitives``)."""
from ...core.lazy import submodules_on_access

__getattr__ = submodules_on_access(__name__)
