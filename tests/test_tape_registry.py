"""Every primitive's compiled pull-back (api/tape_cache.py) gives the eager
values bit for bit: generated from the registry's first two samples of each
primitive, for jacrev, jacfwd and hessian, whose fourth call runs the
compiled program."""
import numpy as np
import pytest

import npfunc
import npfunc.scipy.special  # noqa: F401  (fills the registry)
import npfunc.scipy.stats  # noqa: F401
from npfunc.api import tape_cache
from npfunc.core.primitive import REGISTRY
from npfunc.testing import checks


def _cases():
    for name in sorted(REGISTRY):
        prim = REGISTRY[name]
        if not prim.differentiable or not prim.samples:
            continue
        for k, sample in enumerate(prim.samples(np.random.default_rng(0))[:2]):  # (the rest: other dtypes)
            nums = checks.diff_argnums(sample)
            if nums and np.result_type(sample.args[nums[0]]).kind == "f" and np.size(sample.args[nums[0]]):
                yield pytest.param(name, k, id=f"{name}-{k}")


CASES = list(_cases())


def _flat_output(prim, sample):
    """The primitive as a function of its first differentiated argument, with
    its real floating outputs as one vector."""
    f = checks.as_function(prim, sample, checks.diff_argnums(sample)[:1])

    def flat(x):
        out = f(x)
        leaves = out if isinstance(out, (tuple, list)) else [out]
        parts = [np.ravel(np.real(leaf)) for leaf in leaves if np.result_type(leaf).kind in "fc"]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    return flat


@pytest.mark.parametrize("name,k", CASES)
def test_compiled_pull_backs_are_the_eager_ones(name, k, monkeypatch):
    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", 0.0)
    prim = REGISTRY[name]
    sample = prim.samples(np.random.default_rng(0))[k]
    x = np.array(sample.args[checks.diff_argnums(sample)[0]], dtype=np.result_type(sample.args[checks.diff_argnums(sample)[0]]))
    flat = _flat_output(prim, sample)
    with np.errstate(all="ignore"):
        try:
            y = flat(x)
        except Exception:  # a sample meant for another argument's derivative
            pytest.skip("no real floating output to differentiate")
        transforms = [npfunc.jacfwd(flat), npfunc.hessian(lambda x: np.sum(flat(x) ** 2))]
        if y.size > 1:
            transforms.append(npfunc.jacrev(flat))
        for T in transforms:
            try:
                results = [T(x.copy()) for _ in range(4)]  # composition/eager, eager, compiling, compiled
            except npfunc.errors.NpfuncError:
                continue  # refused eagerly too (e.g. no second derivative): nothing to compare
            for r in results[1:]:
                np.testing.assert_array_equal(r, results[0])
