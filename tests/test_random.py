"""npfunc.random under vmap's randomness modes, and derivatives through draws."""
import numpy as np
import pytest

import npfunc
from npfunc.errors import RandomnessError


def test_reproducible_and_matches_numpy_stream():
    a = npfunc.random.default_rng(7).normal(size=(2, 3))
    np.testing.assert_array_equal(a, np.random.default_rng(7).standard_normal((2, 3)))
    np.testing.assert_array_equal(npfunc.random.default_rng(7).uniform(size=4),
                                  npfunc.random.default_rng(7).uniform(size=4))


def test_different_draws_once_for_the_whole_batch():
    rng = npfunc.random.default_rng(3)
    out = npfunc.vmap(lambda x: x + rng.normal(size=2), randomness="different")(np.zeros((5, 2)))
    # one vectorised draw of the batched shape, not five draws in a loop
    np.testing.assert_array_equal(out, np.random.default_rng(3).standard_normal((5, 2)))
    assert len({tuple(row) for row in out}) == 5


def test_same_shares_one_draw():
    rng = npfunc.random.default_rng(1)
    out = npfunc.vmap(lambda x: x + rng.uniform(size=3), randomness="same")(np.zeros((4, 3)))
    np.testing.assert_array_equal(out, np.broadcast_to(out[0], (4, 3)))
    np.testing.assert_array_equal(out[0], np.random.default_rng(1).random(3))


@pytest.mark.parametrize("call", ["normal", "uniform", "standard_normal", "random", "integers",
                                  "bernoulli", "permutation", "choice"])
def test_error_mode_names_the_call(call):
    rng = npfunc.random.default_rng(0)
    draw = {"integers": lambda: rng.integers(0, 5, size=2), "permutation": lambda: rng.permutation(4),
            "choice": lambda: rng.choice(4, size=2), "bernoulli": lambda: rng.bernoulli(0.5, size=2)}
    fn = draw.get(call, lambda: getattr(rng, call)(size=2))
    with pytest.raises(RandomnessError, match=rf"vmap\(f\).*{call if call != 'bernoulli' else 'random'}.*randomness="):
        npfunc.vmap(lambda x: x + fn())(np.zeros((3, 2)))


def test_nested_vmaps_mix_modes():
    rng = npfunc.random.default_rng(2)
    inner = npfunc.vmap(lambda x: x + rng.normal(), randomness="same")
    out = npfunc.vmap(inner, randomness="different")(np.zeros((3, 4)))
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], (3, 4)))  # same along inner
    assert len(set(out[:, 0])) == 3                                            # differs along outer
    both = npfunc.vmap(npfunc.vmap(lambda x: x + rng.normal(), randomness="different"),
                       randomness="different")(np.zeros((3, 4)))
    assert len(set(both.ravel())) == 12


def test_reparameterised_gradients():
    rng = npfunc.random.default_rng(0)
    g_loc, g_scale = npfunc.grad(lambda m, s: rng.normal(m, s, size=4).sum(), argnums=(0, 1))(1.0, 2.0)
    z = np.random.default_rng(0).standard_normal(4)
    assert g_loc == pytest.approx(4.0) and g_scale == pytest.approx(z.sum())
    g = npfunc.grad(lambda hi: npfunc.random.default_rng(5).uniform(0.0, hi, size=3).sum())(2.0)
    assert g == pytest.approx(np.random.default_rng(5).random(3).sum())


def test_batched_parameters_and_per_example_noise():
    rng = npfunc.random.default_rng(4)
    locs = np.arange(3.0)
    out = npfunc.vmap(lambda m: rng.normal(m, 1e-9, size=2), randomness="different")(locs)
    np.testing.assert_allclose(out, np.repeat(locs[:, None], 2, axis=1), atol=1e-6)


def test_discrete_draws():
    rng = npfunc.random.default_rng(0)
    b = rng.bernoulli(0.3, size=10000)
    assert b.dtype == bool and abs(b.mean() - 0.3) < 0.02
    ints = rng.integers(0, 5, size=100)
    assert ints.min() >= 0 and ints.max() < 5
    assert sorted(rng.permutation(6)) == list(range(6))
    x = np.arange(10.0)
    np.testing.assert_array_equal(np.sort(rng.permutation(x)), x)
    c = rng.choice(5, size=4, replace=False)
    assert len(set(c)) == 4
    weighted = rng.choice(3, size=5000, p=[0.1, 0.0, 0.9])
    assert 1 not in set(weighted) and abs((weighted == 2).mean() - 0.9) < 0.02


def test_batched_permutations_are_independent_and_vectorised():
    rng = npfunc.random.default_rng(0)
    perms = npfunc.vmap(lambda x: rng.permutation(x), randomness="different")(np.tile(np.arange(6.0), (4, 1)))
    assert all(sorted(p) == list(range(6)) for p in perms)
    assert len({tuple(p) for p in perms}) > 1


def test_jacfwd_passes_randomness():
    rng = npfunc.random.default_rng(0)
    J = npfunc.jacfwd(lambda x: x * rng.normal(size=3), randomness="same")(np.ones(3))
    assert J.shape == (3, 3) and np.count_nonzero(J - np.diag(np.diag(J))) == 0


def test_a_draw_under_jacfwd_or_hessian_names_their_randomness():
    rng = npfunc.random.default_rng(0)

    def f(x):
        return (x * x * rng.normal(size=2)).sum()

    for transform in (npfunc.jacfwd, npfunc.hessian):
        with pytest.raises(RandomnessError, match=r"inside jacfwd.*to jacfwd.*jacfwd\(jacrev\(f\), randomness='same'\)"):
            transform(f)(np.ones(2))
    assert npfunc.jacfwd(npfunc.jacrev(f), randomness="same")(np.ones(2)).shape == (2, 2)


def test_numpy_global_draws_inside_vmap_follow_randomness():
    """np.random's global generator takes no traced input: under vmap its draw would be
    shared by the batch where a loop draws anew, so 'error' and 'different' refuse it,
    naming npfunc.random; 'same' asks for one draw, and gets it."""
    from npfunc.errors import RandomnessError

    def noisy(x):
        return x + np.random.standard_normal(x.shape)

    for randomness in ("error", "different"):
        with pytest.raises(RandomnessError, match=r"vmap\(f\): np\.random\.standard_normal .*npfunc\.random"):
            npfunc.vmap(noisy, randomness=randomness)(np.zeros((3, 2)))
    shared = npfunc.vmap(noisy, randomness="same")(np.zeros((3, 2)))
    assert np.array_equal(shared[0], shared[1])
    np.random.seed(0)
    assert np.random.standard_normal(2).shape == (2,)  # outside vmap: NumPy's, as always
    assert npfunc.grad(lambda x: (x * np.random.standard_normal(3)).sum())(np.ones(3)).shape == (3,)


def test_binomial_with_a_traced_probability():
    """A p batched by vmap: n Bernoulli draws per element (the binomial distribution),
    following randomness=; NumPy's own draw for a plain p."""
    from npfunc.errors import RandomnessError

    def wright_fisher(p0):
        return npfunc.random.default_rng(3).binomial(400, p0) / 400

    p = np.full(3000, 0.3)
    freq = npfunc.vmap(wright_fisher, randomness="different")(p)
    assert abs(freq.mean() - 0.3) < 0.01 and abs(freq.var() - 0.3 * 0.7 / 400) < 1e-4
    with pytest.raises(RandomnessError, match=r"binomial draws random numbers inside vmap"):
        npfunc.vmap(wright_fisher)(p[:2])
    assert np.array_equal(npfunc.random.default_rng(0).binomial(10, 0.5, size=3),
                          np.random.default_rng(0).binomial(10, 0.5, size=3))
