"""Elementwise functions: NumPy's ufuncs (arithmetic, exponents and logarithms,
trigonometric, rounding, comparisons, logic and bits, floating-point and integer
routines)."""
from . import arithmetic, logic, transcendental, piecewise, floating  # noqa: F401
