"""``npfunc.scipy``: twins of SciPy functions that cannot run on traced values
themselves (they convert their inputs with ``np.asarray``).

The submodules (``special``, ``linalg``, ``stats``, ``signal``, ``optimize``,
``integrate``) load on first
use, so ``import npfunc`` does not import SciPy.
"""
import importlib as _importlib

_SUBMODULES = ("special", "linalg", "stats", "signal", "optimize", "integrate")
__all__ = list(_SUBMODULES)


from . import _hints, _routing  # noqa: E402
from .integrate import _quadrature  # noqa: E402,F401  (registers the quadrature composites; no SciPy import)

_hints.register()
_routing.register()  # unmodified SciPy calls with traced values reach the twins


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'npfunc.scipy' has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
