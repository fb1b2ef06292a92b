"""Linear algebra (``np.linalg`` and the products): matmul/einsum and the
products built on them, solves, decompositions, norms, the matrix exponential."""
from . import products, product_family, solve, spectral, norms, expm, lu, schur, sylvester, matfuncs, banded, tridiagonal  # noqa: F401
