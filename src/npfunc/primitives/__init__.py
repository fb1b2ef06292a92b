"""The primitive definitions.  Importing this package fills the registry
and the NumPy dispatch tables."""
from . import elementwise, indexing, linalg, metadata, reductions, shape  # noqa: F401
