"""Linear algebra (``np.linalg`` and the products): matmul/einsum and the
products built on them, solves, decompositions, norms, the matrix exponential,
and the primitives behind the ``npfunc.scipy.linalg`` twins.

Importing the package loads none of its modules: each loads when first
needed (see ``npfunc.primitives``)."""
from ...core.lazy import submodules_on_access

__getattr__ = submodules_on_access(__name__)
