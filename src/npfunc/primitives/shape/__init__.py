"""Array manipulation: reshape and transpose, broadcasting, joining and splitting,
rearranging (flip, roll, pad, the diagonal family), adding and removing entries
(append, insert, delete, resize, trim_zeros, block), sliding windows, metadata."""
from . import basic, joining, arranging, windows, metadata, editing, like  # noqa: F401
