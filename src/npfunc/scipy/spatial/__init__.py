"""``npfunc.scipy.spatial``: twins of ``scipy.spatial.distance`` (loaded on first use), and
stand-ins that refuse ``scipy.spatial.KDTree`` / ``cKDTree`` built from traced coordinates
(SciPy's compiled constructor would get the traced value from np.asarray and fail with a
raw TypeError)."""
import importlib

from ...core.context import describe_stack
from ...core.errors import ConcretizationError

_SUBMODULES = ("distance",)


class _TreeRefusal:
    def __init__(self, data, *args, **kwargs):
        name = type(self).__name__
        raise ConcretizationError(
            f"{describe_stack()}: scipy.spatial.{name}(data) with traced data: the tree is SciPy's compiled "
            "code on plain coordinates, and npfunc has no twin for it. Its queries' indices have no "
            f"derivative: build it from plain values, {name}(npfunc.stop_gradient(x)), and compute the "
            "distances you need from x with the indices it returns (np.linalg.norm(x[i] - x[j], axis=-1)); "
            "under vmap or jit, where the values are not known, use all pairs (scipy.spatial.distance.pdist "
            "or cdist) with a cut-off mask, np.where(r < rc, e, 0.0).")


class KDTree(_TreeRefusal):
    """Refuses traced data (see the module doc)."""


class cKDTree(_TreeRefusal):  # noqa: N801 (SciPy's name)
    """Refuses traced data (see the module doc)."""


__all__ = ["KDTree", "cKDTree"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'npfunc.scipy.spatial' has no attribute {name!r}")


def __dir__():
    return sorted(_SUBMODULES + tuple(__all__))
