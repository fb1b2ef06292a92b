"""Elementwise VJP rules on a vmap level's stacked arrays (``families._on_stacked``):
``vmap(grad(f))`` runs every backward rule on batched values, and an elementwise
rule whose operands share one layout computes on the stacked arrays what the
level would compute operation by operation.  Generated from the registry: for
every differentiable primitive, the batched VJP with the shortcut equals the one
without, bit for bit, and the shortcut is taken for the elementwise ones."""
import numpy as np
import pytest

import npfunc
import npfunc.scipy.special  # noqa: F401  (fills the registry)
import npfunc.scipy.stats  # noqa: F401
from npfunc.core.primitive import REGISTRY
from npfunc.primitives import families
from npfunc.testing import checks

SIZE = 3


def _cases():
    for name in sorted(REGISTRY):
        prim = REGISTRY[name]
        if not prim.differentiable or not prim.samples:
            continue
        for k, sample in enumerate(prim.samples(np.random.default_rng(0))[:3]):
            nums = checks.diff_argnums(sample)
            if nums and all(np.size(sample.args[i]) for i in nums):
                yield pytest.param(name, k, id=f"{name}-{k}")


CASES = list(_cases())


def _batched_vjp(prim, sample, in_dim, rng):
    """vmap over every array argument (at ``in_dim``) of the VJP with respect to
    the sample's differentiable arguments, with a batched cotangent."""
    nums = checks.diff_argnums(sample)
    arrays = [isinstance(a, (np.ndarray, np.generic)) for a in sample.args]
    dims = tuple((in_dim if np.ndim(a) or in_dim == 0 else 0) if is_arr else None
                 for a, is_arr in zip(sample.args, arrays))
    args = [checks._batched(rng, a, d, SIZE) if d is not None else a for a, d in zip(sample.args, dims)]
    out = prim.bind(*sample.args, **sample.params)
    leaves = out if isinstance(out, (tuple, list)) else (out,)
    cts = [np.stack([rng.standard_normal(np.shape(o)).astype(np.result_type(o)) for _ in range(SIZE)])
           for o in leaves]

    def per_element(cts, *xs):
        def f(*diff):
            full = list(xs)
            for i, v in zip(nums, diff):
                full[i] = v
            return prim.bind(*full, **sample.params)

        out, pullback = npfunc.vjp(f, *[xs[i] for i in nums])
        return pullback(type(out)(cts) if isinstance(out, (tuple, list)) else cts[0])

    return npfunc.vmap(per_element, in_dims=(0,) + dims)(cts, *args)


@pytest.mark.parametrize("name,k", CASES)
def test_stacked_rules_are_the_level_s_operations_bit_for_bit(name, k, monkeypatch):
    prim = REGISTRY[name]
    sample = prim.samples(np.random.default_rng(0))[k]
    taken = []
    on_stacked = families._on_stacked

    def counting(*args):
        result = on_stacked(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(families, "_on_stacked", counting)
    for in_dim in (0, -1):
        with np.errstate(all="ignore"):
            families.STACKED_RULES[0] = False
            try:
                want = _batched_vjp(prim, sample, in_dim, np.random.default_rng(k))
            except Exception as error:  # refused operation by operation: refused on the stacked arrays too
                families.STACKED_RULES[0] = True
                with pytest.raises(type(error)):
                    _batched_vjp(prim, sample, in_dim, np.random.default_rng(k))
                continue
            finally:
                families.STACKED_RULES[0] = True
            got = _batched_vjp(prim, sample, in_dim, np.random.default_rng(k))
        for a, b in zip(got, want):
            assert type(a) is type(b) and np.shape(a) == np.shape(b) and np.result_type(a) == np.result_type(b)
            np.testing.assert_array_equal(a, b)
    nums = checks.diff_argnums(sample)
    family_rule = prim.vjp.__module__ == families.__name__ and "elementwise_batch" in prim.batch.__qualname__
    if family_rule and len(nums) == len(sample.args) and len({np.shape(sample.args[i]) for i in nums}) == 1:
        assert any(taken), f"{name}: the stacked rule was never taken"


def test_vmap_of_grad_of_elementwise_programs_is_a_loop():
    """Per-sample gradients of elementwise programs (every rule on the stacked arrays)
    are the loop's, bit for bit."""
    def softplus_loss(w):
        return np.sum(np.log1p(np.exp(-w * 1.5)) + 0.1 * w * w)

    def chain(x):
        for _ in range(5):
            x = np.sin(x) * np.tanh(x) + x / (1.0 + x * x)
        return x

    rng = np.random.default_rng(3)
    for f, xs in [(softplus_loss, rng.standard_normal((6, 4))), (chain, rng.standard_normal(7)),
                  (lambda x: np.exp(-x ** 2).sum() * np.cos(x[0]), rng.standard_normal((5, 3)))]:
        got = npfunc.vmap(npfunc.grad(f))(xs)
        want = np.stack([npfunc.grad(f)(x) for x in xs])
        np.testing.assert_array_equal(got, want)


def test_mixed_layouts_take_the_level_s_operations():
    """A batch axis elsewhere, or an operand broadcast against the batch, is computed
    operation by operation (the stacked shortcut would sum over the wrong axes)."""
    rng = np.random.default_rng(4)
    xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    f = lambda x, y: np.sum(np.sin(x) * y + x / y)  # noqa: E731
    got = npfunc.vmap(npfunc.grad(f, argnums=(0, 1)), in_dims=(0, 1))(xs, ys)
    want = [npfunc.grad(f, argnums=(0, 1))(xs[i], ys[:, i]) for i in range(4)]
    for k in range(2):
        np.testing.assert_allclose(got[k], np.stack([w[k] for w in want]), rtol=1e-15, atol=0)
    b = rng.standard_normal(3)  # a shared operand: its cotangent sums the batch's
    per_b = npfunc.vmap(npfunc.grad(lambda x, b: np.sum(np.tanh(x * b)), argnums=1), in_dims=(0, None))(xs, b)
    np.testing.assert_allclose(per_b, [npfunc.grad(lambda x, b: np.sum(np.tanh(x * b)), argnums=1)(x, b) for x in xs],
                               rtol=1e-14)
