"""Reductions, scans and statistics: sum/prod/max/min, arg-reductions,
mean/var/std/average and the nan-functions, cumulative sums and products.

Importing the package loads none of its modules: each loads when first
needed (see ``npfunc.primitives``)."""
from ...core.lazy import submodules_on_access

__getattr__ = submodules_on_access(__name__)
