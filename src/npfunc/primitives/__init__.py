"""The primitive definitions, grouped as NumPy's documentation groups its
routines.  Importing this package fills the registry and the dispatch tables.

``families`` (rule families) and ``sampling`` (sample builders) are the
shared machinery; every other module defines primitives and the NumPy
functions built on them."""
from . import (convolution, elementwise, fft, indexing, linalg, reductions, shape, sorting,  # noqa: F401
               special, searching, selection, sets)
from . import creation, differences, interpolation  # noqa: F401,E402  (after the families they build on)
from . import functional, polynomial  # noqa: F401,E402  (use linalg, shape ...)
from .shape import views  # noqa: F401,E402  (last: the view-returning front ends of NumPy's functions)
