"""Polynomials: NumPy's functions (``np.polyval``, ``np.polyfit``, ``np.roots``
...) and the ``numpy.polynomial`` package, run as NumPy's own code on traced
values (``primitives/numpy_code.py``)."""
from . import legacy, series, series_samples  # noqa: F401
