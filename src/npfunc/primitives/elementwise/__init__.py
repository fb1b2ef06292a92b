"""Elementwise functions: NumPy's ufuncs (arithmetic, exponents and logarithms,
trigonometric, rounding, comparisons, logic and bits)."""
from . import arithmetic, logic, transcendental, piecewise  # noqa: F401
