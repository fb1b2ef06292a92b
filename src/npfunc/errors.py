"""The exceptions npfunc raises on purpose (one class per failure mode).

All derive from ``NpfuncError``; each also derives from the built-in
exception a Python user would expect (``ValueError``, ``TypeError``...).
"""
from .core.errors import *  # noqa: F401,F403
from .core.errors import __all__  # noqa: F401
