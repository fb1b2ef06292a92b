"""Errors from npfunc.nn name the module path (``features.0 (Conv2d)``), the
problem and the fix -- in plain calls, through functional_call and under
transforms."""
import sys

import numpy as np
import pytest

import npfunc
from npfunc import nn
from npfunc.nn import ModuleError
from npfunc.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(36, 10, rng=1))

    def forward(self, x):
        return self.classifier(self.features(x))


GOOD = np.zeros((2, 1, 8, 8))


def test_wrong_input_rank_names_the_path_and_the_fix():
    net = Net()
    with pytest.raises(ModuleError) as info:
        net(np.zeros((2, 8, 8)))  # a batch of images without the channel axis
    msg = str(info.value)
    assert msg.startswith("features.0 (Conv2d): expected 1 input channel on axis 0")
    assert "x[:, None]" in msg
    with pytest.raises(ModuleError, match=r"^features.0 \(Conv2d\): expected a 4-d input \(N, C, H, W\) "
                                          r"or a 3-d input \(C, H, W\), got shape \(8, 8\)\. Add the channel"):
        net(np.zeros((8, 8)))


def test_size_mismatch_deep_in_the_model_names_the_nested_path():
    with pytest.raises(ModuleError, match=r"^classifier.1 \(Linear\): expected an input whose last axis has "
                                          r"in_features=36 entries, got shape \(2, 64\)\. Check the previous"):
        Net()(np.zeros((2, 1, 10, 10)))


def test_path_is_added_once_per_level_and_the_root_call_names_its_class():
    lin = nn.Linear(3, 2)
    with pytest.raises(ModuleError, match=r"^Linear: expected an input whose last axis"):
        lin(np.zeros(4))
    outer = nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(3, 2))))
    with pytest.raises(ModuleError) as info:
        outer(np.zeros(4))
    assert str(info.value).startswith("0.0.0 (Linear): expected") and str(info.value).count("(Linear)") == 1
    # calling a submodule directly gives the path relative to it
    with pytest.raises(ModuleError, match=r"^0.0 \(Linear\)"):
        outer[0](np.zeros(4))


def test_path_inside_functional_call_and_transforms():
    net = Net()
    params = dict(net.named_parameters())

    def loss(p, x):
        return np.sum(npfunc.functional_call(net, p, (x,)))

    with pytest.raises(ModuleError, match=r"^features.0 \(Conv2d\): expected 1 input channel"):
        npfunc.functional_call(net, params, (np.zeros((2, 3, 8, 8)),))
    with pytest.raises(ModuleError, match=r"^classifier.1 \(Linear\)"):
        npfunc.vmap(npfunc.grad(loss), in_dims=(None, 0))(params, np.zeros((3, 1, 1, 10, 10)))
    # the module is unchanged after the error
    assert all(net.state_dict()[k] is not params[k] and np.array_equal(net.state_dict()[k], params[k])
               for k in params)
    assert type(net.features[0].weight) is np.ndarray


def test_module_not_registered_as_submodule_keeps_its_own_label():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = [nn.Linear(3, 2)]  # a plain list: not a registered submodule

        def forward(self, x):
            return self.inner[0](x)

    with pytest.raises(ModuleError, match=r"^Linear: expected"):
        nn.Sequential(Holder())(np.zeros(5))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_other_errors_keep_their_type_and_get_a_note_with_the_path():
    class Bad(nn.Module):
        def forward(self, x):
            return x @ np.ones((7, 2))  # NumPy's own shape error

    model = nn.Sequential(nn.Identity(), nn.Sequential(Bad()))
    with pytest.raises(ValueError) as info:
        model(np.ones(3))
    assert not isinstance(info.value, ModuleError)
    assert info.value.__notes__ == ["(raised in module 1.0 (Bad))"]
    with pytest.raises(npfunc.errors.RandomnessError) as info:
        npfunc.vmap(nn.Sequential(nn.Linear(2, 2), nn.Dropout()))(np.ones((3, 2)))
    assert info.value.__notes__ == ["(raised in module 1 (Dropout))"]
    assert "randomness='different'" in str(info.value)


def test_parameter_dict_for_the_wrong_module():
    net = Net()
    other = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ModuleError, match=r"none of the keys \['0.weight', '0.bias'\] name a parameter or "
                                          r"buffer of Net.*another module"):
        npfunc.functional_call(net, dict(other.named_parameters()), (GOOD,))
    params = dict(net.named_parameters())
    params["classifier.1.wieght"] = params.pop("classifier.1.weight")
    with pytest.raises(ModuleError, match=r"did you mean 'classifier.1.weight'"):
        npfunc.functional_call(net, params, (GOOD,))


def test_arrays_of_the_wrong_shape():
    net = Net()
    params = dict(net.named_parameters())
    params["features.0.weight"] = np.zeros((4, 1, 5, 5))
    with pytest.raises(ModuleError, match=r"'features.0.weight' has shape \(4, 1, 5, 5\) but Net's "
                                          r"'features.0.weight' has shape \(4, 1, 3, 3\)"):
        npfunc.functional_call(net, params, (GOOD,))
    stacked, _ = npfunc.stack_module_state([Net(), Net()])
    with pytest.raises(ModuleError, match="stack_module_state.*npfunc.vmap|vmap"):
        npfunc.functional_call(net, stacked, (GOOD,))
    with pytest.raises(ModuleError, match=r"load_state_dict\(Net\): 'classifier.1.bias' has shape \(3,\)"):
        net.load_state_dict({**net.state_dict(), "classifier.1.bias": np.zeros(3)})
    with pytest.raises(ModuleError, match=r"missing keys \['classifier.1.bias'\]"):
        sd = net.state_dict()
        del sd["classifier.1.bias"]
        net.load_state_dict(sd)


def test_batchnorm_in_training_mode_under_vmap_explains_the_fix():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2))
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    before = {k: v.copy() for k, v in buffers.items()}
    xs = np.zeros((3, 4, 1, 5, 5))
    with pytest.raises(ModuleError) as info:
        npfunc.vmap(lambda x: npfunc.functional_call(model, (params, buffers), (x,)))(xs)
    msg = str(info.value)
    assert msg.startswith("1 (BatchNorm2d): batch_norm: training mode with running statistics, inside vmap")
    assert "replace_all_batch_norm_modules_(model)" in msg and "model.eval()" in msg
    for k in buffers:  # nothing was half-updated
        np.testing.assert_array_equal(buffers[k], before[k])
    # the fixes work
    model.eval()
    npfunc.vmap(lambda x: npfunc.functional_call(model, (params, buffers), (x,)))(xs)
    model.train()
    npfunc.replace_all_batch_norm_modules_(model)
    npfunc.vmap(lambda x: model(x))(np.random.default_rng(0).standard_normal(xs.shape))


def test_batchnorm_training_mode_works_under_forward_mode_jacobians():
    """jacfwd / hessian run vmap over tangents only: the batch statistics are not batched, so the
    running statistics can be updated (once per call), as without the transform."""
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2))
    x = np.random.default_rng(0).standard_normal((5, 3))
    params = dict(model.named_parameters())

    def f(b):
        return np.sum(npfunc.functional_call(model, {**params, "1.bias": b}, (x,)) ** 2 * np.arange(1, 3))

    h = npfunc.hessian(f)(params["1.bias"])
    np.testing.assert_allclose(h, np.diag([2 * 5, 4 * 5]), atol=1e-10)  # d2/db2 of sum_n c_k (y + b)^2
    assert int(model[1].num_batches_tracked) == 1
    np.testing.assert_allclose(npfunc.jacfwd(f)(params["1.bias"]), npfunc.jacrev(f)(params["1.bias"]), atol=1e-10)


def test_batchnorm_per_sample_input_under_vmap_explains_why():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2, track_running_stats=False))
    with pytest.raises(ModuleError, match=r"^1 \(BatchNorm1d\): expected a 2-d input \(N, C\) or a 3-d input "
                                          r"\(N, C, L\), got shape \(2,\)\. Under vmap each element has no "
                                          r"batch axis.*GroupNorm"):
        npfunc.vmap(model)(np.ones((4, 3)))


def test_layer_specific_input_errors():
    with pytest.raises(ModuleError, match=r"^Embedding: expected integer indices, got dtype float64.*astype"):
        nn.Embedding(4, 2)(np.array([0.0, 1.0]))
    with pytest.raises(ModuleError, match="index out of range for 4 embeddings"):
        nn.Embedding(4, 2)(np.array([0, 4]))
    with pytest.raises(ModuleError, match=r"^GroupNorm: expected 4 channels on axis 1.*x\[None\]"):
        nn.GroupNorm(2, 4)(np.ones((4, 5, 5)))
    with pytest.raises(ModuleError, match=r"^LayerNorm: expected an input whose last axes are \(5,\)"):
        nn.LayerNorm(5)(np.ones((2, 4)))
    with pytest.raises(ModuleError, match=r"^MaxPool2d: expected a 4-d input"):
        nn.MaxPool2d(2)(np.ones(5))
    with pytest.raises(ModuleError, match=r"^BatchNorm2d: expected 3 channels on axis 1"):
        nn.BatchNorm2d(3)(np.ones((2, 4, 3, 3)))


def test_loss_errors():
    with pytest.raises(ModuleError, match=r"^MSELoss: mse_loss: input has shape \(4, 1\) but target has shape "
                                          r"\(4,\).*target\[:, None\]"):
        nn.MSELoss()(np.ones((4, 1)), np.ones(4))
    with pytest.raises(ModuleError, match="reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ModuleError, match="reduction must be one of"):
        F.l1_loss(np.ones(2), np.ones(2), reduction="avg")
    with pytest.raises(ModuleError, match=r"target has shape \(3, 1\), expected \(3,\)"):
        F.cross_entropy(np.ones((3, 4)), np.zeros((3, 1), dtype=int))
    with pytest.raises(ModuleError, match=r"class indices outside \[0, 4\): \[4\]"):
        F.cross_entropy(np.ones((3, 4)), np.array([0, 4, 1]))
    with pytest.raises(ModuleError, match="must be an integer array"):
        F.nll_loss(np.ones((3, 4)), np.zeros(3))


def test_configuration_errors():
    with pytest.raises(ModuleError, match="divisible by groups=3"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ModuleError, match="padding='same' needs stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ModuleError, match="padding must be 'same', 'valid'"):
        nn.Conv1d(1, 1, 3, padding="full")
    with pytest.raises(ModuleError, match="smaller than the kernel"):
        F.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)))
    with pytest.raises(ModuleError, match="at most half the kernel size"):
        F.max_pool2d(np.ones((1, 1, 4, 4)), 2, padding=2)
    with pytest.raises(ModuleError, match="p must be in"):
        nn.Dropout(1.5)
    with pytest.raises(ModuleError, match="not divisible into num_groups=4"):
        nn.GroupNorm(4, 6)
