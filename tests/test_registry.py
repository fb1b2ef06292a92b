"""Tests generated from the registries: every primitive and every composite
NumPy function, every sample, every check (value, JVP vs finite differences,
adjoint identity, vmap vs a loop over in_dims combinations, second order)."""
import contextlib

import numpy as np
import pytest

import npfunc  # noqa: F401  (fills the registry)
import npfunc.scipy.interpolate  # noqa: F401  (registers the twins' composites)
import npfunc.scipy.linalg  # noqa: F401
import npfunc.scipy.signal  # noqa: F401
import npfunc.scipy.spatial.distance  # noqa: F401
import npfunc.scipy.special  # noqa: F401
import npfunc.scipy.stats  # noqa: F401
from npfunc.compiler import randomness
from npfunc.core.primitive import COMPOSITES, REGISTRY
from npfunc.testing import checks


def _cases():
    for registry in (REGISTRY, COMPOSITES):
        for name in sorted(registry):
            prim = registry[name]
            samples = prim.samples(np.random.default_rng(0)) if prim.samples else []
            for k, sample in enumerate(samples):
                yield pytest.param(prim, k, id=f"{name}-{k}")


CASES = list(_cases())


_BUILT: dict = {}


def _sample(prim, k):
    """The k-th sample (each builder runs once per process: the checks never
    write into sample arrays)."""
    if prim.name not in _BUILT:
        _BUILT[prim.name] = prim.samples(np.random.default_rng(0))
    return _BUILT[prim.name][k]


def test_every_primitive_has_samples_and_rules():
    for name, prim in REGISTRY.items():
        assert prim.samples is not None and list(prim.samples(np.random.default_rng(0))), name
        assert prim.batch is not None, name
        if prim.differentiable:
            assert prim.jvp is not None and prim.vjp is not None, name


@pytest.mark.parametrize("prim,k", CASES)
def test_value(prim, k):
    checks.check_value(prim, _sample(prim, k))


@pytest.mark.parametrize("prim,k", CASES)
def test_jvp_matches_finite_differences(prim, k):
    checks.check_jvp_fd(prim, _sample(prim, k), np.random.default_rng(k))


@pytest.mark.parametrize("prim,k", CASES)
def test_vjp_is_adjoint_of_jvp(prim, k):
    checks.check_adjoint(prim, _sample(prim, k), np.random.default_rng(k))


@pytest.mark.parametrize("prim,k", CASES)
def test_vmap_matches_loop(prim, k):
    checks.check_vmap(prim, _sample(prim, k), np.random.default_rng(k))


@pytest.mark.parametrize("prim,k", CASES)
def test_jit_matches_numpy(prim, k):
    # The first sample is recorded with the watch for random draws (a heap scan, tested in
    # test_jit.py), the others without: the scan would dominate these tests' time.
    with contextlib.nullcontext() if k == 0 else randomness.unwatched():
        checks.check_jit(prim, _sample(prim, k), np.random.default_rng(k))


@pytest.mark.parametrize("prim,k", CASES)
def test_second_order(prim, k):
    checks.check_second_order(prim, _sample(prim, k), np.random.default_rng(k))


THIRD_ORDER = [case for case in CASES if _sample(*case.values).fd_order >= 3]


@pytest.mark.parametrize("prim,k", THIRD_ORDER)
def test_third_order_near_special_points(prim, k):
    checks.check_third_order(prim, _sample(prim, k), np.random.default_rng(k))
