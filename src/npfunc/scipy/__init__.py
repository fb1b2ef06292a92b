"""``npfunc.scipy``: twins of SciPy functions that cannot run on traced values
themselves (they convert their inputs with ``np.asarray``).

The submodules (``special``, ``linalg``, ``stats``, ``signal``, ``spatial``,
``interpolate``) load on first
use, so ``import npfunc`` does not import SciPy.
"""
import importlib

_SUBMODULES = ("special", "linalg", "stats", "signal", "spatial", "interpolate")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'npfunc.scipy' has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
