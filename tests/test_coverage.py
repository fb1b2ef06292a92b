"""docs/coverage.md is generated from the registry and must be up to date."""
import numpy as np

import npfunc  # noqa: F401
from npfunc.core.primitive import REGISTRY
from npfunc.testing import coverage


def test_coverage_doc_is_current():
    path = coverage.default_path()
    assert path.exists(), "run: python -m npfunc.testing.coverage --write"
    assert path.read_text() == coverage.render(), (
        "docs/coverage.md is stale: run python -m npfunc.testing.coverage --write")


def test_every_primitive_has_samples():
    missing = [name for name, p in REGISTRY.items()
               if p.samples is None or not list(p.samples(np.random.default_rng(0)))]
    assert not missing, f"primitives without registry samples: {missing}"


def test_unsupported_function_names_itself_and_coverage_doc():
    import pytest

    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"np\.histogram.*coverage\.md"):
        npfunc.grad(lambda x: np.histogram(x)[0].sum() * x.sum())(np.ones(3))
