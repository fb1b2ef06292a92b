"""Central differences in plain NumPy, to check npfunc against independently."""
from __future__ import annotations

import numpy as np


def numerical_jacobian(f, x, eps: float = 1e-6, *, relative: bool = False, order: int = 2) -> np.ndarray:
    """Jacobian of ``f`` at ``x`` by central differences, of shape
    ``f(x).shape + x.shape`` (the gradient, for a scalar ``f``).

    ``relative=True`` steps each entry by ``eps * max(1, |x_k|)``; ``order=4``
    uses the five-point formula.  ``f`` always gets a new array, so a function
    that updates its argument in place leaves ``x`` alone.

    Only the differencing is done here, in plain NumPy, so the result checks
    npfunc independently even when ``f`` is itself a transformed function.

    >>> import numpy as np
    >>> np.round(numerical_jacobian(lambda v: (v ** 2).sum(), np.array([1.0, 2.0])), 6)
    array([2., 4.])
    """
    if order not in (2, 4):
        raise ValueError(f"numerical_jacobian: order must be 2 or 4, got {order!r}")
    x = np.asarray(x, dtype=np.float64)
    out_shape = np.shape(f(x.copy()))
    jac = np.zeros(out_shape + x.shape)
    flat = jac.reshape(out_shape + (x.size,))
    for k in range(x.size):
        h = eps * max(1.0, abs(x.flat[k])) if relative else eps
        step = np.zeros(x.size)
        step[k] = h
        step = step.reshape(x.shape)
        if order == 2:
            flat[..., k] = (np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * h)
        else:
            flat[..., k] = (-np.asarray(f(x + 2 * step)) + 8 * np.asarray(f(x + step))
                            - 8 * np.asarray(f(x - step)) + np.asarray(f(x - 2 * step))) / (12 * h)
    return jac
