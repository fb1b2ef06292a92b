"""``npfunc.scipy``: twins of SciPy functions that cannot run on traced values
themselves (they convert their inputs with ``np.asarray``).

The submodules (``special``, ``linalg``, ``stats``, ``signal``, ``optimize``,
``integrate``, ``spatial``, ``interpolate``, ``fft``) load on first
use, so ``import npfunc`` does not import SciPy.
"""
import importlib as _importlib

_SUBMODULES = ("special", "linalg", "stats", "signal", "optimize", "integrate", "spatial", "interpolate", "fft")
__all__ = list(_SUBMODULES)


from . import _hints, _routing  # noqa: E402
from . import _array_api as _array_api_scipy  # noqa: E402,F401  (SciPy's array_namespace hook, installed when SciPy imports it)

_hints.register()
_routing.register()  # unmodified SciPy calls with traced values reach the twins
_array_api_scipy.register()  # SCIPY_ARRAY_API=1: SciPy's array-API code runs on traced values


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'npfunc.scipy' has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
