"""``npfunc.scipy.spatial``: twins of ``scipy.spatial.distance`` (loaded on first use)."""
import importlib

_SUBMODULES = ("distance",)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'npfunc.scipy.spatial' has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES)
