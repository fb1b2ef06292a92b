"""Central differences in plain NumPy, to check npfunc against independently."""
from __future__ import annotations

import numpy as np


def numerical_jacobian(f, x, eps: float = 1e-6) -> np.ndarray:
    """Jacobian of ``f`` at ``x`` by central differences, of shape
    ``f(x).shape + x.shape`` (the gradient, for a scalar ``f``).

    Only the differencing is done here, in plain NumPy, so the result checks
    npfunc independently even when ``f`` is itself a transformed function.

    >>> import numpy as np
    >>> np.round(numerical_jacobian(lambda v: (v ** 2).sum(), np.array([1.0, 2.0])), 6)
    array([2., 4.])
    """
    x = np.asarray(x, dtype=np.float64)
    out_shape = np.shape(f(x))
    jac = np.zeros(out_shape + x.shape)
    flat = jac.reshape(out_shape + (x.size,))
    for k in range(x.size):
        step = np.zeros(x.size)
        step[k] = eps
        step = step.reshape(x.shape)
        flat[..., k] = (np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps)
    return jac
