"""Shared fixtures for the behaviour tests of the transforms.

* Every test must leave this thread's transform stack empty -- also after an
  error inside a (nested) transform.  The autouse fixture checks it.
* ``numerical_jacobian`` gives central-difference Jacobians to compare the
  transforms against, independently of npfunc.
"""
from __future__ import annotations

import numpy as np
import pytest

from npfunc.core import context


@pytest.fixture(autouse=True)
def transform_stack_is_empty_after_test():
    """Fail a test that leaves an interpreter on the transform stack."""
    assert context.current_stack() == (), "a previous test leaked transform levels"
    yield
    leaked = context.current_stack()
    if leaked:
        # Clean up so that one leak does not fail every following test.
        for interp in reversed(leaked):
            interp.__exit__(None, None, None)
    assert leaked == (), f"transform stack not empty after the test: {leaked}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def central_jacobian(f, x, eps=1e-6):
    """Jacobian of ``f`` at ``x`` by central differences, shape
    ``f(x).shape + x.shape``.  The differencing itself is plain NumPy, so it
    checks npfunc independently (``f`` may itself be a transformed function)."""
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


@pytest.fixture
def numerical_jacobian():
    return central_jacobian
