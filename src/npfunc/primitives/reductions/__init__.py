"""Reductions, scans and statistics: sum/prod/max/min, arg-reductions,
mean/var/std/average and the nan-functions, cumulative sums and products."""
from . import basic, index, statistics, scans, quantiles, covariance  # noqa: F401
from . import histograms  # noqa: F401,E402  (uses creation.linspace)
