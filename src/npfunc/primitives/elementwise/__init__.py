"""Elementwise functions: NumPy's ufuncs (arithmetic, exponents and logarithms,
trigonometric, rounding, comparisons, logic and bits, floating-point and integer
routines).

Importing the package loads none of its modules: each loads when first
needed (see ``npfunc.primitives``)."""
from ...core.lazy import submodules_on_access

__getattr__ = submodules_on_access(__name__)
