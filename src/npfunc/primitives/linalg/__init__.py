"""Linear algebra (``np.linalg`` and the products): matmul/einsum and the
products built on them, solves, decompositions, norms, the matrix exponential."""
from . import products, product_family, solve, spectral, norms, expm, eig, tensor, lstsq  # noqa: F401
