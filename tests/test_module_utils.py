"""functional_call, stack_module_state, replace_all_batch_norm_modules_ and
the functional optimizers, under transforms."""
import numpy as np
import pytest

import npfunc
from npfunc import nn
from npfunc.nn import ModuleError

rng = np.random.default_rng(0)


class MLP(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.fc1 = nn.Linear(4, 8, rng=seed)
        self.fc2 = nn.Linear(8, 3, rng=seed + 100)
        self.register_buffer("scale", np.full(3, 2.0))

    def forward(self, x):
        return np.tanh(self.fc1(x)) @ self.fc2.weight.T * self.scale + self.fc2.bias


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 3, bias=False, rng=1)
        self.dec = nn.Linear(3, 3, bias=False, rng=2)
        self.dec.weight = self.enc.weight  # plain array assignment keeps it a parameter: tied

    def forward(self, x):
        return self.dec(self.enc(x))


def params_of(m):
    return dict(m.named_parameters())


def test_functional_call_matches_module_and_leaves_it_untouched():
    m = MLP()
    x = rng.standard_normal((5, 4))
    before = {k: v.copy() for k, v in m.state_dict().items()}
    new = {k: v * 0.5 for k, v in params_of(m).items()}
    out = npfunc.functional_call(m, new, (x,))
    m2 = MLP()
    m2.load_state_dict({**{k: v * 0.5 for k, v in params_of(m2).items()}, "scale": np.full(3, 2.0)})
    np.testing.assert_allclose(out, m2(x))
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_state_restored_when_forward_raises():
    m = MLP()
    before = m.fc1.weight
    with pytest.raises(ModuleError):
        npfunc.functional_call(m, params_of(m), (np.ones(7),))  # wrong input width
    assert m.fc1.weight is before


def test_tuple_of_dicts_and_duplicate_key_error():
    m = MLP()
    p, b = params_of(m), dict(m.named_buffers())
    x = rng.standard_normal(4)
    np.testing.assert_allclose(npfunc.functional_call(m, (p, b), (x,)), m(x))
    with pytest.raises(ModuleError, match="fc1.weight.*more than one"):
        npfunc.functional_call(m, (p, {"fc1.weight": p["fc1.weight"]}), (x,))


def test_strict_reports_missing_and_unexpected():
    m = MLP()
    p = params_of(m)
    p.pop("fc2.bias")
    with pytest.raises(ModuleError, match=r"missing keys \['fc2.bias', 'scale'\]"):
        npfunc.functional_call(m, p, (np.ones(4),), strict=True)
    with pytest.raises(ModuleError, match="another module"):
        npfunc.functional_call(m, {"conv.weight": np.ones(3)}, (np.ones(4),))


def test_wrong_shape_names_the_key_and_suggests_vmap_for_stacked():
    m = MLP()
    stacked, _ = npfunc.stack_module_state([MLP(0), MLP(1)])
    with pytest.raises(ModuleError, match=r"'fc1.weight' has shape \(2, 8, 4\).*vmap"):
        npfunc.functional_call(m, stacked, (np.ones(4),))


def test_tied_weights():
    m = Tied()
    assert [n for n, _ in m.named_parameters()] == ["enc.weight"]
    x = rng.standard_normal(3)
    W = rng.standard_normal((3, 3))
    tied = npfunc.functional_call(m, {"enc.weight": W}, (x,))
    np.testing.assert_allclose(tied, W @ (W @ x))
    untied = npfunc.functional_call(m, {"enc.weight": W}, (x,), tie_weights=False)
    np.testing.assert_allclose(untied, m.enc.weight @ (W @ x))


def test_grad_and_per_sample_grads_through_functional_call():
    m = MLP()
    p = params_of(m)
    X, Y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))

    def loss(params, x, y):
        return ((npfunc.functional_call(m, params, (x,)) - y) ** 2).sum()

    per_sample = npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0, 0))(p, X, Y)
    for i in range(6):
        g = npfunc.grad(loss)(p, X[i], Y[i])
        for k in p:
            np.testing.assert_allclose(per_sample[k][i], g[k], atol=1e-12)
    # the finite-difference check of one entry
    e = np.zeros_like(p["fc1.weight"])
    e[2, 1] = 1e-6
    fd = (loss({**p, "fc1.weight": p["fc1.weight"] + e}, X[0], Y[0])
          - loss({**p, "fc1.weight": p["fc1.weight"] - e}, X[0], Y[0])) / 2e-6
    assert per_sample["fc1.weight"][0, 2, 1] == pytest.approx(fd, rel=1e-6)


def test_ensemble_with_stack_module_state():
    models = [MLP(seed) for seed in range(5)]
    params, buffers = npfunc.stack_module_state(models)
    assert params["fc1.weight"].shape == (5, 8, 4) and buffers["scale"].shape == (5, 3)
    x = rng.standard_normal((7, 4))
    base = MLP()
    same = npfunc.vmap(lambda p, b: npfunc.functional_call(base, (p, b), (x,)))(params, buffers)
    np.testing.assert_allclose(same, np.stack([m(x) for m in models]), atol=1e-12)
    xs = rng.standard_normal((5, 7, 4))
    diff = npfunc.vmap(lambda p, b, x: npfunc.functional_call(base, (p, b), (x,)))(params, buffers, xs)
    np.testing.assert_allclose(diff, np.stack([m(xi) for m, xi in zip(models, xs)]), atol=1e-12)


def test_stack_module_state_copies_and_validates():
    models = [MLP(0), MLP(1)]
    params, _ = npfunc.stack_module_state(models)
    models[0].fc1.weight[...] = 0.0
    assert np.any(params["fc1.weight"][0] != 0.0)
    with pytest.raises(ModuleError, match="non-empty"):
        npfunc.stack_module_state([])
    with pytest.raises(ModuleError, match="same structure"):
        npfunc.stack_module_state([MLP(), Tied()])
    wide = MLP()
    wide.fc1 = nn.Linear(4, 9)
    with pytest.raises(ModuleError, match="different shapes"):
        npfunc.stack_module_state([MLP(), wide])


def test_replace_all_batch_norm_modules_on_a_stand_in():
    class FakeBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.num_features = 3
            self.track_running_stats = True
            self.register_buffer("running_mean", np.zeros(3))
            self.register_buffer("running_var", np.ones(3))

    root = nn.Module()
    root.bn = FakeBN()
    assert npfunc.replace_all_batch_norm_modules_(root) is root
    assert root.bn.running_mean is None and root.bn.track_running_stats is False
    assert list(root.state_dict()) == []


def test_module_bookkeeping():
    m = MLP()
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "fc2"]
    assert len(list(m.parameters())) == 4 and len(list(m.children())) == 2
    assert "Linear(in_features=4, out_features=8, bias=True)" in repr(m)
    with pytest.raises(ModuleError, match="missing keys"):
        m.load_state_dict({})
    result = m.load_state_dict({"scale": np.ones(3)}, strict=False)
    assert "fc1.weight" in result.missing_keys
    np.testing.assert_array_equal(m.scale, np.ones(3))
    assert m.eval().training is False and m.fc1.training is False
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Linear", "MLP"]
    np.testing.assert_array_equal(nn.Linear(2, 2, rng=3).weight, nn.Linear(2, 2, rng=3).weight)


@pytest.mark.parametrize("make", [
    lambda: npfunc.optim.SGD(lr=0.1),
    lambda: npfunc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: npfunc.optim.Adam(lr=0.1),
    lambda: npfunc.optim.Adam(lr=0.1, amsgrad=True, weight_decay=0.1),
    lambda: npfunc.optim.AdamW(lr=0.1),
])
def test_optimizers_minimise_and_are_differentiable(make):
    opt = make()
    target = np.array([1.0, -2.0, 0.5])
    loss = lambda p: ((p["w"] - target) ** 2).sum()  # noqa: E731
    params = {"w": np.zeros(3)}
    state = opt.init(params)
    for _ in range(200):
        params, state = opt.update(npfunc.grad(loss)(params), state, params)
    assert loss(params) < (0.1 if opt.weight_decay else 1e-3)

    def after_two_steps(w0):  # differentiable through the update (MAML's inner loop)
        p, s = {"w": w0}, opt.init({"w": w0})
        for _ in range(2):
            p, s = opt.update(npfunc.grad(loss)(p), s, p)
        return loss(p)

    w0 = np.array([0.3, 0.2, -0.1])
    g = npfunc.grad(after_two_steps)(w0)
    eps = 1e-6
    fd = np.array([(after_two_steps(w0 + eps * e) - after_two_steps(w0 - eps * e)) / (2 * eps)
                   for e in np.eye(3)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_sgd_matches_torch_update_rule():
    opt = npfunc.optim.SGD(lr=0.1, momentum=0.9)
    p = {"w": np.array([1.0])}
    s = opt.init(p)
    values = []
    for _ in range(3):
        p, s = opt.update({"w": 2 * p["w"]}, s, p)
        values.append(float(p["w"][0]))
    np.testing.assert_allclose(values, [0.8, 0.46, 0.062])
