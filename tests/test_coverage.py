"""docs/coverage.md is generated from NumPy's namespaces and the registry: it
must be up to date, and classify every public NumPy function."""
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

    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"np\.array2string.*coverage\.md"):
        npfunc.grad(lambda x: len(np.array2string(x)) * x.sum())(np.ones(3))


def _dispatched():
    import scipy.special  # noqa: F401  (registers SciPy's ufuncs)

    from npfunc.core import dispatch
    for table in (dispatch.UFUNCS, dispatch.FUNCTIONS):
        yield from table.items()


def test_every_supported_function_has_samples():
    """A function is tested as users call it: through its primitive's samples
    when NumPy's call is the primitive's, else through composite samples."""
    from npfunc.core import dispatch
    from npfunc.core.primitive import COMPOSITES

    missing = {dispatch.describe(target) for target, fn in _dispatched()
               if not getattr(fn, "direct", False) and not getattr(fn, "like", False)
               and not hasattr(fn, "composite") and dispatch.describe(target) not in COMPOSITES}
    assert not missing, f"supported without samples: {sorted(missing)}"


def test_every_public_numpy_function_is_classified():
    """Supported, or listed in npfunc/testing/unsupported.py (with a reason, or as planned)."""
    coverage._import_all()
    missing = coverage.unclassified()
    assert not missing, (f"public NumPy functions npfunc neither supports nor lists in "
                         f"npfunc/testing/unsupported.py: {missing}")


def test_unsupported_lists_hold_only_unsupported_numpy_functions():
    coverage._import_all()
    problems = coverage.stale_entries()
    assert not problems, "npfunc/testing/unsupported.py: " + "; ".join(problems)


def test_unsupported_reasons_are_sentences():
    from npfunc.testing import unsupported

    for table in (unsupported.UNSUPPORTED, unsupported.NO_TRACED_INPUTS):
        for name, reason in table.items():
            assert name.startswith("np.") and len(reason) > 20, (name, reason)
