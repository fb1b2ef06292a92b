"""The primitive definitions, grouped as NumPy's documentation groups its
routines.  Importing a module fills the registry and the dispatch tables
with its definitions.

Importing this package loads none of them: ``import npfunc`` loads what the
transforms are written with, and ``npfunc.core.lazy`` loads the rest on
first use (``load_all()`` loads every module listed in ``MODULES``).

``families`` (rule families) and ``sampling`` (sample builders) are the
shared machinery; every other module defines primitives and the NumPy
functions built on them."""

#: The modules that define something, in a loading order (a module imports
#: the modules it builds on itself; ``special`` and ``polynomial`` load as
#: whole packages).  A new module goes here, and into the index:
#: ``python -m npfunc.core.lazy_index --write``.
MODULES = (
    "convolution", "filtering",
    "elementwise.arithmetic", "elementwise.logic", "elementwise.transcendental", "elementwise.piecewise",
    "elementwise.floating",
    "fft",
    "indexing.gather", "indexing.updates", "indexing.inplace", "indexing.inplace_calls", "indexing.indices",
    "linalg.products", "linalg.product_family", "linalg.solve", "linalg.spectral", "linalg.norms", "linalg.expm",
    "linalg.eig", "linalg.tensor", "linalg.lstsq",
    "linalg.banded", "linalg.lu", "linalg.matfuncs", "linalg.schur", "linalg.sylvester", "linalg.tridiagonal",
    "reductions.basic", "reductions.index", "reductions.statistics", "reductions.scans", "reductions.quantiles",
    "reductions.covariance", "reductions.histograms",
    "shape.basic", "shape.joining", "shape.arranging", "shape.windows", "shape.metadata", "shape.editing",
    "shape.like",
    "sorting", "special", "searching", "selection", "sets",
    "creation", "differences", "interpolation",
    "functional", "polynomial", "emath",
    "shape.views",
)

from ..core.lazy import submodules_on_access  # noqa: E402

__getattr__ = submodules_on_access(__name__)
