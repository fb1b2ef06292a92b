"""npfunc.nn layers and the Module system: outputs vs hand-written NumPy,
torch's batch-norm statistics, dropout under vmap, state dicts, repr,
initialisation, and per-sample gradients through functional_call."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
import scipy.signal

import npfunc
from npfunc.testing import numerical_jacobian as fd_grad
from npfunc import nn
from npfunc.nn import ModuleError
from npfunc.nn import functional as F

RNG = np.random.default_rng(7)


class SmallCNN(nn.Module):
    """conv -> relu -> pool -> conv -> groupnorm -> relu -> adaptive pool -> linear."""

    def __init__(self, rng=0):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, rng=gen), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, rng=gen), nn.GroupNorm(2, 6), nn.Tanh(), nn.AdaptiveAvgPool2d((2, 1)),
        )
        self.flatten = nn.Flatten(-3)
        self.head = nn.Linear(12, 3, rng=gen)

    def forward(self, x):
        return self.head(self.flatten(self.features(x)))


# ---- layer outputs -------------------------------------------------------------------------------

def test_linear_and_bilinear_match_numpy():
    lin = nn.Linear(4, 3, rng=1)
    x = RNG.standard_normal((5, 2, 4))
    np.testing.assert_allclose(lin(x), x @ lin.weight.T + lin.bias)
    assert nn.Linear(4, 3, bias=False, rng=1).bias is None
    bil = nn.Bilinear(3, 2, 4, rng=2)
    a, b = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    want = np.array([[a[n] @ bil.weight[k] @ b[n] for k in range(4)] for n in range(5)]) + bil.bias
    np.testing.assert_allclose(bil(a, b), want)


def test_conv_modules_match_scipy():
    conv = nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding="valid", rng=3)
    x = RNG.standard_normal((2, 2, 6, 7))
    want = np.stack([np.stack([sum(scipy.signal.correlate(x[n, c], conv.weight[o, c], mode="valid")
                                   for c in range(2))[:, ::2] + conv.bias[o] for o in range(3)])
                     for n in range(2)])
    np.testing.assert_allclose(conv(x), want, atol=1e-12)
    c1 = nn.Conv1d(4, 2, 5, padding="same", groups=2, bias=False, rng=4)
    x1 = RNG.standard_normal((3, 4, 9))
    xp = np.pad(x1, ((0, 0), (0, 0), (2, 2)))
    want = np.stack([np.stack([sum(scipy.signal.correlate(xp[n, 2 * o + c], c1.weight[o, c], mode="valid")
                                   for c in range(2)) for o in range(2)]) for n in range(3)])
    np.testing.assert_allclose(c1(x1), want, atol=1e-12)


def test_pool_and_norm_modules_match_functional():
    x = RNG.standard_normal((2, 4, 7, 6))
    np.testing.assert_allclose(nn.MaxPool2d(3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1))
    np.testing.assert_allclose(nn.AvgPool2d(2, count_include_pad=False)(x), F.avg_pool2d(x, 2))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(3)(x), F.adaptive_avg_pool2d(x, 3))
    np.testing.assert_allclose(nn.AdaptiveMaxPool2d((2, 5))(x), F.adaptive_max_pool2d(x, (2, 5)))
    x1 = x[:, :, 0]
    np.testing.assert_allclose(nn.MaxPool1d(2)(x1), F.max_pool1d(x1, 2))
    np.testing.assert_allclose(nn.AvgPool1d(3, 1)(x1), F.avg_pool1d(x1, 3, 1))
    np.testing.assert_allclose(nn.AdaptiveAvgPool1d(4)(x1), F.adaptive_avg_pool1d(x1, 4))
    ln = nn.LayerNorm((7, 6))
    ln.weight = RNG.standard_normal((7, 6))
    mu, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(ln(x), (x - mu) / np.sqrt(var + 1e-5) * ln.weight)
    gn = nn.GroupNorm(2, 4, affine=False)
    blocks = x.reshape(2, 2, -1)
    want = ((blocks - blocks.mean(-1, keepdims=True)) / np.sqrt(blocks.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(gn(x), want, atol=1e-12)


def test_activation_and_shape_modules():
    x = RNG.standard_normal((2, 3, 4))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(nn.Softmax(dim=1)(x), F.softmax(x, 1))
    np.testing.assert_allclose(nn.LogSoftmax(1)(x), F.log_softmax(x, 1))
    np.testing.assert_allclose(nn.Softplus(beta=2.0)(x), F.softplus(x, 2.0))
    with pytest.raises(TypeError, match="unexpected arguments"):
        nn.ReLU(inplace_typo=True)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Unflatten(1, (3, 2, 2))(nn.Flatten()(x)).shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(nn.Identity()(x), x)


# ---- batch norm: torch's statistics -------------------------------------------------------------------

def test_batchnorm_training_updates_running_stats_like_torch():
    bn = nn.BatchNorm2d(3, momentum=0.2)
    bn.weight, bn.bias = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    xs = [RNG.standard_normal((4, 3, 2, 5)) * s + s for s in (1.0, 3.0)]
    mean, var = np.zeros(3), np.ones(3)
    for x in xs:
        y = bn(x)
        m, v = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        want = (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-5)
        np.testing.assert_allclose(y, want * bn.weight[:, None, None] + bn.bias[:, None, None])
        n = 4 * 2 * 5
        mean = 0.8 * mean + 0.2 * m
        var = 0.8 * var + 0.2 * v * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean, mean)
    np.testing.assert_allclose(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 2
    bn.eval()
    x = RNG.standard_normal((2, 3, 2, 2))
    want = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * bn.weight[:, None, None] \
        + bn.bias[:, None, None]
    np.testing.assert_allclose(bn(x), want)
    np.testing.assert_allclose(bn.running_mean, mean)  # eval mode does not update


def test_batchnorm_momentum_none_is_a_cumulative_average_and_1d_shapes():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [RNG.standard_normal((5, 2, 3)) + k for k in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=(0, 2)) for x in xs], axis=0))
    bn2 = nn.BatchNorm1d(2)
    bn2(RNG.standard_normal((6, 2)))
    assert int(bn2.num_batches_tracked) == 1
    with pytest.raises(ModuleError, match="more than 1 value per channel"):
        bn2(np.ones((1, 2)))


def test_batchnorm_without_tracking_always_uses_batch_stats():
    bn = nn.BatchNorm1d(3, track_running_stats=False, affine=False)
    assert list(bn.state_dict()) == []
    x = RNG.standard_normal((6, 3))
    bn.eval()
    np.testing.assert_allclose(bn(x), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5))


def test_batchnorm_under_grad_and_functional_call_updates_buffers_in_place():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    x = RNG.standard_normal((8, 3))
    params = dict(model.named_parameters())
    buffers = {k: v.copy() for k, v in model.named_buffers()}
    before = model[1].running_mean.copy()

    def loss(p):
        return np.sum(npfunc.functional_call(model, (p, buffers), (x,)) ** 2 * np.arange(4))

    g = npfunc.grad(loss)(params)
    # torch semantics: the passed buffers were updated, the module's own were not, nothing traced leaked
    assert type(buffers["1.running_mean"]) is np.ndarray and int(buffers["1.num_batches_tracked"]) == 1
    np.testing.assert_allclose(buffers["1.running_mean"], 0.1 * (x @ model[0].weight.T + model[0].bias).mean(0))
    np.testing.assert_array_equal(model[1].running_mean, before)
    assert type(model[1].running_mean) is np.ndarray
    w = params["0.weight"]
    fd = fd_grad(lambda v: loss({**params, "0.weight": v}), w)
    np.testing.assert_allclose(g["0.weight"], fd, rtol=1e-5, atol=1e-6)


def test_replace_all_batch_norm_modules_allows_vmap_ensembles():
    models = [nn.Sequential(nn.Linear(3, 4, rng=i), nn.BatchNorm1d(4), nn.ReLU()) for i in range(3)]
    for m in models:
        npfunc.replace_all_batch_norm_modules_(m)
        assert m[1].running_mean is None and m[1].track_running_stats is False
    params, buffers = npfunc.stack_module_state(models)
    assert buffers == {}
    x = RNG.standard_normal((5, 3))
    out = npfunc.vmap(lambda p: npfunc.functional_call(models[0], p, (x,)))(params)
    np.testing.assert_allclose(out, np.stack([m(x) for m in models]), atol=1e-12)


def test_batchnorm_eval_mode_works_under_vmap_per_sample():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    model(RNG.standard_normal((10, 3)))  # some statistics
    model.eval()
    x = RNG.standard_normal((6, 3))
    out = npfunc.vmap(lambda v: model(v[None])[0])(x)
    np.testing.assert_allclose(out, model(x))


# ---- dropout -------------------------------------------------------------------------------------------------

def test_dropout_module_train_eval_and_seed():
    x = np.ones((50, 40))
    d = nn.Dropout(0.25, rng=3)
    y = d(x)
    assert abs((y != 0).mean() - 0.75) < 0.03 and np.allclose(y[y != 0], 4 / 3)
    np.testing.assert_array_equal(nn.Dropout(0.25, rng=3)(x), y)  # same seed, same mask
    assert not np.array_equal(d(x), y)  # the generator advances
    np.testing.assert_array_equal(d.eval()(x), x)


def test_dropout_module_under_vmap_randomness():
    model = nn.Sequential(nn.Linear(5, 20, rng=0), nn.Dropout(0.5, rng=1))
    x = np.tile(RNG.standard_normal(5), (4, 1))  # identical rows: only the masks differ
    with pytest.raises(npfunc.errors.RandomnessError) as info:
        npfunc.vmap(model)(x)
    if hasattr(info.value, "add_note"):  # Python >= 3.11: the error is annotated with the module path
        assert info.value.__notes__[-1] == "(raised in module 1 (Dropout))"
    diff = npfunc.vmap(model, randomness="different")(x)
    same = npfunc.vmap(model, randomness="same")(x)
    assert not np.array_equal(diff[0] == 0, diff[1] == 0)
    for row in same[1:]:
        np.testing.assert_array_equal(row, same[0])


# ---- embedding -----------------------------------------------------------------------------------------------

def test_embedding_module_lookup_padding_and_gradient():
    emb = nn.Embedding(6, 3, padding_idx=0, rng=0)
    np.testing.assert_array_equal(emb.weight[0], 0.0)
    idx = np.array([[0, 2, 2], [5, 2, 1]])
    np.testing.assert_allclose(emb(idx), emb.weight[idx])
    g = npfunc.grad(lambda p: np.sum(npfunc.functional_call(emb, p, (idx,)) ** 2))(dict(emb.named_parameters()))
    want = np.zeros((6, 3))
    np.add.at(want, idx, 2 * emb.weight[idx])
    want[0] = 0.0
    np.testing.assert_allclose(g["weight"], want)
    assert "padding_idx=0" in repr(emb)


# ---- module system -------------------------------------------------------------------------------------------

def test_state_dict_round_trip_with_buffers():
    a, b = SmallCNN(rng=0), SmallCNN(rng=1)
    a.extra = nn.BatchNorm1d(3)
    b.extra = nn.BatchNorm1d(3)
    a.extra(RNG.standard_normal((4, 3)))
    sd = a.state_dict()
    assert "extra.running_mean" in sd and "extra.num_batches_tracked" in sd and "features.0.weight" in sd
    sd["features.0.weight"][...] = 0.0  # a copy: the module is not affected
    assert np.any(a.features[0].weight != 0)
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = RNG.standard_normal((2, 1, 8, 8))
    np.testing.assert_allclose(b(x), a(x))
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v, v2)
    with pytest.raises(ModuleError, match=r"'head.weight' has shape \(3, 12\).*\(4, 12\)"):
        nn.Sequential(OrderedDict(head=nn.Linear(12, 4))).load_state_dict({"head.weight": a.head.weight,
                                                                             "head.bias": np.zeros(4)})


def test_load_state_dict_keeps_tied_weights_tied():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(3, 3, bias=False, rng=0)
            self.dec = nn.Linear(3, 3, bias=False, rng=1)
            self.dec.weight = self.enc.weight

    m = Tied()
    assert list(m.state_dict()) == ["enc.weight", "dec.weight"]
    assert [n for n, _ in m.named_parameters()] == ["enc.weight"]
    new = np.arange(9.0).reshape(3, 3)
    m.load_state_dict({"enc.weight": new, "dec.weight": new})
    assert m.enc.weight is m.dec.weight
    np.testing.assert_array_equal(m.dec.weight, new)


def test_repr_of_nested_modules():
    text = repr(SmallCNN())
    assert text.startswith("SmallCNN(\n  (features): Sequential(\n    (0): Conv2d(1, 4, kernel_size=(3, 3), "
                           "stride=(1, 1), padding=(1, 1))\n    (1): ReLU()\n")
    assert "(4): GroupNorm(2, 6, eps=1e-05, affine=True)" in text
    assert "(head): Linear(in_features=12, out_features=3, bias=True)\n)" in text
    assert repr(nn.BatchNorm2d(4)) == ("BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, "
                                       "track_running_stats=True)")
    assert repr(nn.Conv2d(2, 4, 3, stride=2, dilation=2, groups=2, bias=False)) == (
        "Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2), groups=2, bias=False)")


def test_apply_train_eval_and_named_modules():
    model = SmallCNN()

    def init(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight = np.full_like(m.weight, 0.01)
            m.bias = np.zeros_like(m.bias)

    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited[-1] == "SmallCNN" and visited.index("Sequential") > visited.index("Conv2d")
    model.apply(init)
    assert np.all(model.features[3].weight == 0.01) and np.all(model.head.bias == 0)
    assert [n for n, _ in model.named_parameters()][:2] == ["features.0.weight", "features.0.bias"]
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    assert model.get_submodule("features.3") is model.features[3]


def test_containers():
    seq = nn.Sequential(OrderedDict(a=nn.Linear(2, 3), b=nn.ReLU(), c=nn.Linear(3, 1)))
    tail = seq[1:]
    assert [n for n, _ in tail.named_children()] == ["b", "c"] and tail[-1] is seq.c
    x = RNG.standard_normal((4, 2))
    np.testing.assert_allclose(seq(x), seq.c(F.relu(seq.a(x))))
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.Tanh())
    assert len(ml) == 4 and [n for n, _ in ml.named_parameters()][-1] == "2.bias"
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.Linear(1, 2)
    assert list(md) == ["x", "y"] and "y" in md and [n for n, _ in md.named_parameters()][-1] == "y.bias"
    with pytest.raises(IndexError):
        seq[5]
    ml[1] = nn.Sigmoid()  # replacing keeps the position
    assert [type(m).__name__ for m in ml] == ["Linear", "Sigmoid", "Linear", "Tanh"]
    with pytest.raises(ModuleError, match="expected a Module"):
        nn.Sequential(nn.ReLU()).add_module("x", np.ones(3))


def test_buffers_persistence_and_plain_attributes_in_functional_call():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2, rng=0)
            self.register_buffer("scale", np.array(3.0))
            self.register_buffer("cache", np.zeros(2), persistent=False)
            self.offset = np.array([1.0, -1.0])  # a plain attribute, not state

        def forward(self, x):
            return self.lin(x) * self.scale + self.offset

    m = Scaled()
    assert list(m.state_dict()) == ["scale", "lin.weight", "lin.bias"]  # torch: own state first, then children
    assert [n for n, _ in m.named_buffers()] == ["scale", "cache"]
    x = RNG.standard_normal(2)
    # as torch, functional_call may also replace existing plain attributes
    out = npfunc.functional_call(m, {"scale": np.array(1.0), "offset": np.zeros(2)}, (x,))
    np.testing.assert_allclose(out, m.lin(x))
    np.testing.assert_array_equal(m.offset, [1.0, -1.0])
    np.testing.assert_allclose(m(x), m.lin(x) * 3.0 + m.offset)


def test_deterministic_init_from_seed_and_generator():
    a, b = nn.Conv2d(3, 4, 3, rng=11), nn.Conv2d(3, 4, 3, rng=11)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(nn.Conv2d(3, 4, 3, rng=12).weight, a.weight)
    bound = 1 / math.sqrt(3 * 9)  # torch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(a.weight).max() <= bound and np.abs(a.weight).max() > 0.8 * bound
    # one Generator shared by layers: a fixed sequence of draws
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    m1 = (nn.Linear(3, 3, rng=g1), nn.Linear(3, 3, rng=g1))
    m2 = (nn.Linear(3, 3, rng=g2), nn.Linear(3, 3, rng=g2))
    np.testing.assert_array_equal(m1[1].weight, m2[1].weight)
    assert not np.array_equal(m1[0].weight, m1[1].weight)
    np.testing.assert_array_equal(SmallCNN(rng=4).state_dict()["head.weight"], SmallCNN(rng=4).head.weight)


def test_dtype_conversion_and_deepcopy():
    model = SmallCNN().float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model(np.ones((1, 1, 8, 8), dtype=np.float32)).dtype == np.float32
    clone = copy.deepcopy(model.double())
    clone.head.bias[...] = 5.0
    assert not np.any(model.head.bias == 5.0)


# ---- transforms through functional_call -------------------------------------------------------------------

def test_per_sample_grads_of_a_cnn_match_a_loop_and_finite_differences():
    model = SmallCNN(rng=2)
    params = dict(model.named_parameters())
    x = RNG.standard_normal((5, 1, 8, 8))
    y = RNG.integers(0, 3, size=5)

    def loss(p, xi, yi):
        return F.cross_entropy(npfunc.functional_call(model, p, (xi[None],)), yi[None])

    per_sample = npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    for i in range(5):
        g = npfunc.grad(loss)(params, x[i], y[i])
        for k in params:
            np.testing.assert_allclose(per_sample[k][i], g[k], rtol=1e-10, atol=1e-12)
    w = params["features.3.weight"]
    fd = fd_grad(lambda v: loss({**params, "features.3.weight": v}, x[0], y[0]), w)
    np.testing.assert_allclose(per_sample["features.3.weight"][0], fd, rtol=1e-5, atol=1e-7)
    # the mean of per-sample gradients is the minibatch gradient
    batch = npfunc.grad(lambda p: F.cross_entropy(npfunc.functional_call(model, p, (x,)), y))(params)
    for k in params:
        np.testing.assert_allclose(per_sample[k].mean(0), batch[k], atol=1e-12)


def test_jacobian_and_hessian_over_module_parameters():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
    params = dict(model.named_parameters())
    x = RNG.standard_normal(3)
    jac = npfunc.jacrev(lambda p: npfunc.functional_call(model, p, (x,)))(params)
    jac_fwd = npfunc.jacfwd(lambda p: npfunc.functional_call(model, p, (x,)))(params)
    for k in params:
        assert jac[k].shape == (2,) + params[k].shape
        np.testing.assert_allclose(jac[k], jac_fwd[k], atol=1e-12)
    h = npfunc.hessian(lambda b: np.sum(npfunc.functional_call(model, {**params, "2.bias": b}, (x,)) ** 2))(
        params["2.bias"])
    np.testing.assert_allclose(h, 2 * np.eye(2), atol=1e-12)
