"""Shared fixtures for the behaviour tests of the transforms.

* Every test must leave this thread's transform stack empty -- also after an
  error inside a (nested) transform.  The autouse fixture checks it.
* ``numerical_jacobian`` gives central-difference Jacobians to compare the
  transforms against, independently of npfunc.
"""
from __future__ import annotations

import os
import zlib

# One BLAS thread per process: pytest-xdist runs a worker per core, and
# OpenBLAS threads spinning beside them would oversubscribe the cores.  (Set
# before the workers start, so they inherit it before importing NumPy.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from npfunc.core import context  # noqa: E402
from npfunc.testing import numerical_jacobian as _numerical_jacobian  # noqa: E402


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


@pytest.fixture(autouse=True)
def module_generators_reseeded(request):
    """A test that draws from a generator of its module (``rng =
    default_rng(0)`` at module level) sees the same numbers whatever ran
    before it in its process: pytest-xdist hands tests to workers differently
    from run to run, so each test restarts those generators from seeds of its
    own name."""
    module = request.module
    generators = [name for name, value in vars(module).items() if isinstance(value, np.random.Generator)]
    for name in generators:
        setattr(module, name, np.random.default_rng(zlib.crc32(f"{request.node.nodeid}:{name}".encode())))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def numerical_jacobian():
    return _numerical_jacobian
