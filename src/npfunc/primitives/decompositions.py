"""Linear algebra beyond products: ``np.linalg`` (solve, inv, det, slogdet,
cholesky, qr, eigh, eigvalsh, svd, norm, pinv, lstsq, matrix_power, ...)
and the primitives behind ``npfunc.scipy.linalg`` (triangular solves, expm).

The definitions live in ``decompositions_*.py`` by topic; importing this
module registers all of them.  Every function works on stacks of matrices
(the last two axes are the matrix, leading axes are independent problems).
See docs/linalg.md for the conventions at degenerate points.
"""
from . import decompositions_solve  # noqa: F401
from . import decompositions_spectral  # noqa: F401
from . import decompositions_norms  # noqa: F401
from . import decompositions_expm  # noqa: F401
