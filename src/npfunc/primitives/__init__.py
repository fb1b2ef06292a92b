"""The primitive definitions.  Importing this package fills the registry
and the NumPy dispatch tables."""
from . import (convolution, decompositions, elementwise, fft, indexing, linalg, metadata,  # noqa: F401
               reductions, shape, sorting, special, special_incomplete)
