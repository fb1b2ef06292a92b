"""Array manipulation: reshape and transpose, broadcasting, joining and splitting,
rearranging (flip, roll, pad, the diagonal family), sliding windows, metadata."""
from . import basic, joining, arranging, windows, metadata, like  # noqa: F401
