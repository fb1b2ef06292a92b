"""Linear algebra (``np.linalg`` and the products): matmul/einsum and the
products built on them, solves, decompositions, norms, the matrix exponential,
and the primitives behind the ``npfunc.scipy.linalg`` twins."""
from . import products, product_family, solve, spectral, norms, expm, eig, tensor, lstsq  # noqa: F401
from . import banded, lu, matfuncs, schur, sylvester, tridiagonal  # noqa: F401
