"""npfunc.nn.functional against independent references.

Convolutions are checked against ``scipy.signal.correlate``, pools against
Python loops over windows, losses against the formulas of torch's
documentation written out by hand (loops over samples), and every
derivative against central finite differences.
"""
import math

import numpy as np
import pytest
import scipy.signal
import scipy.special

import npfunc
from npfunc.testing import numerical_jacobian as fd_grad
from npfunc.nn import functional as F

RNG = np.random.default_rng(20240607)


def check_grad(f, x, rtol=1e-5, atol=1e-7):
    np.testing.assert_allclose(npfunc.grad(f)(x), fd_grad(f, x), rtol=rtol, atol=atol)


# ---- convolution ---------------------------------------------------------------------------------------

def dilate(kernel, dilation):
    """The kernel with (d - 1) zeros between its taps along each axis."""
    out = kernel
    for axis, d in enumerate(dilation):
        if d > 1:
            k = out.shape[axis]
            shape = list(out.shape)
            shape[axis] = d * (k - 1) + 1
            spread = np.zeros(shape)
            index = [slice(None)] * out.ndim
            index[axis] = slice(None, None, d)
            spread[tuple(index)] = out
            out = spread
    return out


def conv_reference(x, w, b, stride, pads, dilation, groups):
    """torch's convolution from scipy.signal.correlate, one (sample, out-channel, in-channel) at a time."""
    n_spatial = x.ndim - 2
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    c_out, c_per_group = w.shape[:2]
    per_group_out = c_out // groups
    rows = []
    for sample in xp:
        chans = []
        for o in range(c_out):
            g = o // per_group_out
            acc = 0.0
            for c in range(c_per_group):
                kernel = dilate(w[o, c], dilation)
                acc = acc + scipy.signal.correlate(sample[g * c_per_group + c], kernel, mode="valid")
            acc = acc[tuple(slice(None, None, s) for s in stride)]
            chans.append(acc + (0.0 if b is None else b[o]))
        rows.append(np.stack(chans))
    out = np.stack(rows)
    assert out.ndim == n_spatial + 2
    return out


CONV2D_CASES = [
    # stride, padding, dilation, groups, expected explicit padding
    (1, 0, 1, 1, ((0, 0), (0, 0))),
    (2, 1, 1, 1, ((1, 1), (1, 1))),
    ((2, 1), (1, 2), 1, 1, ((1, 1), (2, 2))),
    (1, "same", 1, 1, ((1, 1), (1, 1))),
    (1, "same", (2, 1), 1, ((2, 2), (1, 1))),
    (1, "valid", 1, 2, ((0, 0), (0, 0))),
    (1, 0, 2, 1, ((0, 0), (0, 0))),
    ((1, 3), (0, 1), (1, 2), 2, ((0, 0), (1, 1))),
]


@pytest.mark.parametrize("stride, padding, dilation, groups, pads", CONV2D_CASES)
def test_conv2d_matches_scipy_correlate(stride, padding, dilation, groups, pads):
    x = RNG.standard_normal((2, 4, 7, 8))
    w = RNG.standard_normal((6, 4 // groups, 3, 3))
    b = RNG.standard_normal(6)
    got = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    s = (stride,) * 2 if isinstance(stride, int) else stride
    d = (dilation,) * 2 if isinstance(dilation, int) else dilation
    np.testing.assert_allclose(got, conv_reference(x, w, b, s, pads, d, groups), atol=1e-12)


def test_conv2d_same_with_even_kernel_pads_more_after():
    x = RNG.standard_normal((1, 1, 5, 6))
    w = RNG.standard_normal((1, 1, 2, 4))  # total padding 1 and 3: (0, 1) and (1, 2)
    got = F.conv2d(x, w, padding="same")
    assert got.shape == x.shape
    np.testing.assert_allclose(got, conv_reference(x, w, None, (1, 1), ((0, 1), (1, 2)), (1, 1), 1), atol=1e-12)


@pytest.mark.parametrize("stride, padding, dilation, groups, pads", [
    (1, 0, 1, 1, ((0, 0),)), (2, 2, 1, 1, ((2, 2),)), (1, "same", 3, 1, ((3, 3),)), (3, (1,), 2, 3, ((1, 1),)),
])
def test_conv1d_matches_scipy_correlate(stride, padding, dilation, groups, pads):
    x = RNG.standard_normal((3, 6, 17))
    w = RNG.standard_normal((3, 6 // groups, 3))
    got = F.conv1d(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(got, conv_reference(x, w, None, (stride,), pads, (dilation,), groups), atol=1e-12)


def test_conv_accepts_an_unbatched_input_and_float32():
    x = RNG.standard_normal((3, 6, 6))
    w = RNG.standard_normal((2, 3, 3, 3))
    np.testing.assert_allclose(F.conv2d(x, w, padding=1), F.conv2d(x[None], w, padding=1)[0])
    y32 = F.conv2d(x.astype(np.float32), w.astype(np.float32))
    assert y32.dtype == np.float32
    x32 = x.astype(np.float32)
    for out in (F.max_pool2d(x32, 2, 1, 1), F.avg_pool2d(x32, 3, 2, 1, count_include_pad=False),
                F.adaptive_avg_pool2d(x32, 4), F.adaptive_max_pool2d(x32, 4), F.layer_norm(x32, 6),
                F.group_norm(x32[None], 3), F.cross_entropy(x32[:, :, 0], np.array([0, 1, 2]))):
        assert out.dtype == np.float32
    np.testing.assert_allclose(y32, F.conv2d(x, w), rtol=1e-5, atol=1e-5)


def test_conv2d_gradients_match_finite_differences():
    x = RNG.standard_normal((2, 4, 6, 5))
    w = RNG.standard_normal((4, 2, 2, 3))
    b = RNG.standard_normal(4)
    c = RNG.standard_normal(F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2).shape)

    def loss(x, w, b):
        return np.sum(c * np.tanh(F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)))

    gx, gw, gb = npfunc.grad(loss, argnums=(0, 1, 2))(x, w, b)
    np.testing.assert_allclose(gx, fd_grad(lambda v: loss(v, w, b), x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gw, fd_grad(lambda v: loss(x, v, b), w), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gb, fd_grad(lambda v: loss(x, w, v), b), rtol=1e-5, atol=1e-7)


def test_conv1d_gradient_and_jvp():
    x = RNG.standard_normal((2, 3, 9))
    w = RNG.standard_normal((2, 3, 4))
    f = lambda w: np.sum(F.conv1d(x, w, stride=2, padding="valid") ** 2)  # noqa: E731
    check_grad(f, w)
    t = RNG.standard_normal(w.shape)
    _, tangent = npfunc.jvp(f, (w,), (t,))
    np.testing.assert_allclose(tangent, np.sum(fd_grad(f, w) * t), rtol=1e-6)


# ---- pooling ----------------------------------------------------------------------------------------------

def pool_loop(x, k, s, p, reduce, fill):
    """Reference 2-d pooling: loop over output positions."""
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    oh = (xp.shape[2] - k[0]) // s[0] + 1
    ow = (xp.shape[3] - k[1]) // s[1] + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]], axis=(2, 3))
    return out


@pytest.mark.parametrize("k, s, p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (3, 3), (0, 0)), ((3, 2), (1, 2), (1, 1)),
                                     ((2, 3), (2, 1), (0, 1)), ((3, 3), (2, 2), (1, 0))])
def test_max_and_avg_pool2d_match_loops(k, s, p):
    x = RNG.standard_normal((2, 3, 7, 8))
    np.testing.assert_allclose(F.max_pool2d(x, k, s, p), pool_loop(x, k, s, p, np.max, -np.inf))
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p), pool_loop(x, k, s, p, np.mean, 0.0))
    counts = pool_loop(np.ones((1, 1) + x.shape[2:]), k, s, p, np.sum, 0.0)
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p, count_include_pad=False),
                               pool_loop(x, k, s, p, np.sum, 0.0) / counts)


def test_pool1d_matches_loops_and_default_stride_is_kernel():
    x = RNG.standard_normal((2, 3, 11))
    got = F.max_pool1d(x, 3)
    want = np.stack([x[..., 3 * i:3 * i + 3].max(-1) for i in range(3)], axis=-1)
    np.testing.assert_allclose(got, want)
    got = F.avg_pool1d(x, 4, stride=2, padding=2)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2)))
    want = np.stack([xp[..., 2 * i:2 * i + 4].mean(-1) for i in range((15 - 4) // 2 + 1)], axis=-1)
    np.testing.assert_allclose(got, want)


def test_pool_gradients_match_finite_differences():
    x = RNG.permutation(np.arange(2 * 2 * 6 * 5, dtype=float)).reshape(2, 2, 6, 5) / 10  # no ties
    c = RNG.standard_normal(F.max_pool2d(x, 2, 1, 1).shape)
    check_grad(lambda v: np.sum(c * F.max_pool2d(v, 2, 1, 1)), x)
    check_grad(lambda v: np.sum(np.sin(F.max_pool2d(v, 2))), x)
    check_grad(lambda v: np.sum(np.sin(F.avg_pool2d(v, 3, 2, 1, count_include_pad=False))), x)


def adaptive_loop(x, out, reduce):
    h, w = x.shape[-2:]
    res = np.zeros(x.shape[:-2] + out)
    for i in range(out[0]):
        for j in range(out[1]):
            r0, r1 = math.floor(i * h / out[0]), math.ceil((i + 1) * h / out[0])
            c0, c1 = math.floor(j * w / out[1]), math.ceil((j + 1) * w / out[1])
            res[..., i, j] = reduce(x[..., r0:r1, c0:c1], axis=(-2, -1))
    return res


@pytest.mark.parametrize("size, out", [((7, 5), (3, 2)), ((6, 6), (4, 4)), ((5, 9), (5, 1)), ((3, 4), (6, 7))])
def test_adaptive_pools_with_non_divisible_sizes_match_loops(size, out):
    x = RNG.standard_normal((2, 3) + size)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, out), adaptive_loop(x, out, np.mean), atol=1e-12)
    np.testing.assert_allclose(F.adaptive_max_pool2d(x, out), adaptive_loop(x, out, np.max))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x[0], out), adaptive_loop(x[0], out, np.mean), atol=1e-12)


def test_adaptive_pool_none_keeps_a_size_and_1d_and_gradient():
    x = RNG.standard_normal((2, 3, 7, 5))
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 7, 2)
    y = RNG.standard_normal((2, 3, 10))
    want = np.stack([y[..., math.floor(i * 10 / 4):math.ceil((i + 1) * 10 / 4)].mean(-1) for i in range(4)], -1)
    np.testing.assert_allclose(F.adaptive_avg_pool1d(y, 4), want)
    check_grad(lambda v: np.sum(np.cos(F.adaptive_avg_pool2d(v, 3))), x)


# ---- activations -------------------------------------------------------------------------------------------

ACTIVATIONS = [
    (F.relu, lambda x: np.maximum(x, 0)),
    (F.relu6, lambda x: np.clip(x, 0, 6)),
    (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (F.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (F.sigmoid, scipy.special.expit),
    (F.logsigmoid, lambda x: np.log(scipy.special.expit(x))),
    (F.silu, lambda x: x * scipy.special.expit(x)),
    (F.gelu, lambda x: 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))),
    (lambda x: F.gelu(x, "tanh"), lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    (F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    (F.softsign, lambda x: x / (1 + np.abs(x))),
    (lambda x: F.softplus(x, beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (lambda x: F.hardtanh(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
]


@pytest.mark.parametrize("fn, ref", ACTIVATIONS)
def test_activations_match_formulas_and_finite_differences(fn, ref):
    x = RNG.uniform(-3, 3, size=12)
    np.testing.assert_allclose(fn(x), ref(x), rtol=1e-12, atol=1e-12)
    check_grad(lambda v: np.sum(fn(v) * np.arange(1, 13)), x)


def test_activation_conventions_and_extremes():
    np.testing.assert_array_equal(npfunc.grad(lambda v: np.sum(F.relu(v)))(np.array([-1.0, 0.0, 1.0])), [0, 0, 1])
    big = np.array([-800.0, 800.0])
    np.testing.assert_allclose(F.sigmoid(big), [0.0, 1.0])
    np.testing.assert_allclose(F.softplus(np.array([30.0, -800.0])), [30.0, 0.0])  # threshold: exactly x
    np.testing.assert_allclose(F.logsigmoid(big), [-800.0, 0.0])
    np.testing.assert_allclose(F.log_softmax(np.array([1000.0, 0.0])), [0.0, -1000.0])


def test_softmax_and_log_softmax_dims():
    x = RNG.standard_normal((3, 4, 5))
    for dim in (0, 1, -1):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        np.testing.assert_allclose(F.softmax(x, dim), e / e.sum(axis=dim, keepdims=True))
        np.testing.assert_allclose(F.log_softmax(x, dim=dim), np.log(e / e.sum(axis=dim, keepdims=True)))
    np.testing.assert_allclose(F.softmax(x, axis=1), F.softmax(x, 1))
    check_grad(lambda v: np.sum(F.log_softmax(v, 1) * np.arange(60.0).reshape(3, 4, 5)), x)


def test_small_utilities():
    np.testing.assert_array_equal(F.one_hot(np.array([2, 0, 1]), 4), np.eye(4, dtype=int)[[2, 0, 1]])
    assert F.one_hot(np.array([[1], [3]])).shape == (2, 1, 4)
    x = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(F.normalize(x), x / np.linalg.norm(x, axis=1, keepdims=True))
    y = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(F.cosine_similarity(x, y),
                               np.sum(x * y, 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1))
    np.testing.assert_allclose(F.pad(x, (1, 2)), np.pad(x, ((0, 0), (1, 2))))
    np.testing.assert_allclose(F.pad(x, (1, 0, 0, 1), mode="replicate"), np.pad(x, ((0, 1), (1, 0)), mode="edge"))
    check_grad(lambda v: np.sum(F.normalize(v, dim=0) * np.arange(12.0).reshape(3, 4)), x)


# ---- losses -----------------------------------------------------------------------------------------------

def log_softmax_np(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("fn, ref", [
    (F.mse_loss, lambda d: d ** 2),
    (F.l1_loss, np.abs),
    (lambda a, b, **kw: F.smooth_l1_loss(a, b, beta=0.5, **kw),
     lambda d: np.where(np.abs(d) < 0.5, d ** 2, np.abs(d) - 0.25)),  # 0.5 d^2 / 0.5, |d| - 0.5 * 0.5
    (lambda a, b, **kw: F.huber_loss(a, b, delta=0.5, **kw),
     lambda d: np.where(np.abs(d) < 0.5, 0.5 * d ** 2, 0.5 * (np.abs(d) - 0.25))),
])
def test_regression_losses_and_reductions(fn, ref):
    a, b = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    pointwise = ref(a - b)
    np.testing.assert_allclose(fn(a, b, reduction="none"), pointwise)
    np.testing.assert_allclose(fn(a, b, reduction="sum"), pointwise.sum())
    np.testing.assert_allclose(fn(a, b), pointwise.mean())
    check_grad(lambda v: fn(v, b), a)


def ce_reference(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.CrossEntropyLoss for class indices, from its documented formula, one sample at a time.

    logits (N, C, *d), target (N, *d).  For each counted element:
    l = -(1 - eps) w[y] log p_y - (eps / C) sum_c w[c] log p_c; 'mean' divides by sum of w[y].
    """
    n_classes = logits.shape[1]
    w = np.ones(n_classes) if weight is None else weight
    logp = log_softmax_np(logits, 1)
    losses, weights = np.zeros(target.shape), np.zeros(target.shape)
    for idx in np.ndindex(target.shape):
        y = target[idx]
        if y == ignore_index:
            continue
        lp = logp[(idx[0], slice(None)) + idx[1:]]
        losses[idx] = (-(1 - label_smoothing) * w[y] * lp[y]
                       - label_smoothing / n_classes * np.sum(w * lp))
        weights[idx] = w[y]
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / weights.sum()


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_class_indices(shape, weighted, smoothing, reduction):
    logits = RNG.standard_normal(shape)
    target = RNG.integers(0, shape[1], size=(shape[0],) + shape[2:])
    target.flat[1] = -100  # ignored
    weight = RNG.uniform(0.5, 2.0, size=shape[1]) if weighted else None
    kw = dict(weight=weight, reduction=reduction, label_smoothing=smoothing)
    got = F.cross_entropy(logits, target, **kw)
    np.testing.assert_allclose(got, ce_reference(logits, target, **kw), rtol=1e-12, atol=1e-12)
    if reduction != "none":
        check_grad(lambda v: F.cross_entropy(v, target, **kw), logits)


def test_cross_entropy_custom_ignore_index_and_unbatched():
    logits = RNG.standard_normal((6, 3))
    target = np.array([0, 2, 1, 2, 2, 0])
    got = F.cross_entropy(logits, target, ignore_index=2)
    keep = target != 2
    np.testing.assert_allclose(got, -np.mean(log_softmax_np(logits, 1)[keep, target[keep]]))
    np.testing.assert_allclose(F.cross_entropy(logits[1], np.array(2)), -log_softmax_np(logits[1], 0)[2])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_with_class_probabilities(weighted, smoothing):
    logits = RNG.standard_normal((4, 5, 2))
    probs = RNG.dirichlet(np.ones(5), size=(4, 2)).transpose(0, 2, 1)  # (N, C, d)
    weight = RNG.uniform(0.5, 2.0, size=5) if weighted else np.ones(5)
    smoothed = probs * (1 - smoothing) + smoothing / 5
    per_element = -np.sum(weight[None, :, None] * smoothed * log_softmax_np(logits, 1), axis=1)
    got = F.cross_entropy(logits, probs, weight=weight if weighted else None, label_smoothing=smoothing)
    np.testing.assert_allclose(got, per_element.mean())  # 'mean' divides by N * d for probabilities
    np.testing.assert_allclose(F.cross_entropy(logits, probs, reduction="none", label_smoothing=smoothing,
                                               weight=weight if weighted else None), per_element)
    check_grad(lambda v: F.cross_entropy(v, probs, label_smoothing=smoothing), logits)
    check_grad(lambda p: F.cross_entropy(logits, p), probs)


def test_nll_loss_weighted_mean_and_ignore():
    logp = log_softmax_np(RNG.standard_normal((6, 4)), 1)
    target = np.array([0, 3, 1, 1, -1, 2])
    weight = np.array([1.0, 2.0, 0.5, 3.0])
    keep = target != -1
    picked = logp[np.arange(6)[keep], target[keep]]
    w = weight[target[keep]]
    np.testing.assert_allclose(F.nll_loss(logp, target, weight, ignore_index=-1), -(w * picked).sum() / w.sum())
    np.testing.assert_allclose(F.nll_loss(logp, target, weight, ignore_index=-1, reduction="sum"),
                               -(w * picked).sum())
    none = F.nll_loss(logp, target, weight, ignore_index=-1, reduction="none")
    assert none[4] == 0.0 and none.shape == (6,)


def test_binary_cross_entropy_losses():
    x = RNG.standard_normal((5, 3))
    y = RNG.uniform(size=(5, 3))
    p = scipy.special.expit(x)
    w = RNG.uniform(0.5, 2, size=(5, 3))
    pw = np.array([1.0, 2.0, 0.5])
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    np.testing.assert_allclose(F.binary_cross_entropy(p, y), bce.mean())
    np.testing.assert_allclose(F.binary_cross_entropy(p, y, weight=w, reduction="sum"), (w * bce).sum())
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, y), bce.mean())
    with_pw = -(pw * y * np.log(p) + (1 - y) * np.log1p(-p))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none"),
                               w * with_pw)
    # torch clamps the logs at -100 instead of returning inf
    np.testing.assert_allclose(F.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]), reduction="none"),
                               [100.0, 100.0])
    assert np.isfinite(F.binary_cross_entropy_with_logits(np.array([-800.0]), np.array([1.0])))
    check_grad(lambda v: F.binary_cross_entropy_with_logits(v, y, pos_weight=pw), x)
    check_grad(lambda v: F.binary_cross_entropy(F.sigmoid(v), y), x)


def test_kl_div_reductions_and_log_target():
    logq = log_softmax_np(RNG.standard_normal((4, 5)), 1)
    p = RNG.dirichlet(np.ones(5), size=4)
    p[0, 2] = 0.0  # 0 log 0 = 0
    pointwise = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - logq), 0.0)
    np.testing.assert_allclose(F.kl_div(logq, p, reduction="batchmean"), pointwise.sum() / 4)
    np.testing.assert_allclose(F.kl_div(logq, p), pointwise.mean())
    np.testing.assert_allclose(F.kl_div(logq, p, reduction="sum"), pointwise.sum())
    logp = log_softmax_np(RNG.standard_normal((4, 5)), 1)
    np.testing.assert_allclose(F.kl_div(logq, logp, reduction="none", log_target=True),
                               np.exp(logp) * (logp - logq))
    check_grad(lambda v: F.kl_div(v, p, reduction="batchmean"), logq)
    check_grad(lambda v: F.kl_div(logq, v, reduction="sum", log_target=True), logp)


# ---- normalisation ---------------------------------------------------------------------------------------------

def test_layer_norm_matches_formula_and_gradient():
    x = RNG.standard_normal((3, 4, 5))
    w, b = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as torch
    np.testing.assert_allclose(F.layer_norm(x, (4, 5), w, b, eps=1e-3), (x - mu) / np.sqrt(var + 1e-3) * w + b)
    c = RNG.standard_normal(x.shape)
    check_grad(lambda v: np.sum(c * F.layer_norm(v, 5)), x)
    check_grad(lambda v: np.sum(c * F.layer_norm(x, (4, 5), v, b)), w)


def test_group_norm_matches_formula_and_gradient():
    x = RNG.standard_normal((2, 6, 3, 2))
    w, b = RNG.standard_normal(6), RNG.standard_normal(6)
    want = np.empty_like(x)
    for n in range(2):
        for g in range(3):
            block = x[n, 2 * g:2 * g + 2]
            want[n, 2 * g:2 * g + 2] = (block - block.mean()) / np.sqrt(block.var() + 1e-5)
    want = want * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(F.group_norm(x, 3, w, b), want, atol=1e-12)
    c = RNG.standard_normal(x.shape)
    check_grad(lambda v: np.sum(c * F.group_norm(v, 3, w, b)), x)


def test_batch_norm_functional_updates_running_stats_in_place():
    x = RNG.standard_normal((8, 3, 4)) * 2 + 1
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.3)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(y, (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5))
    np.testing.assert_allclose(rm, 0.3 * mean)
    np.testing.assert_allclose(rv, 0.7 + 0.3 * var * 32 / 31)  # unbiased variance in the running estimate
    y_eval = F.batch_norm(x, rm, rv, training=False)
    np.testing.assert_allclose(y_eval, (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5))
    c = RNG.standard_normal(x.shape)
    check_grad(lambda v: np.sum(c[:3, :, :2] * F.batch_norm(v, None, None, training=True)), x[:3, :, :2])


# ---- embedding and dropout ------------------------------------------------------------------------------------

def test_embedding_gradient_accumulates_repeated_indices():
    weight = RNG.standard_normal((5, 3))
    idx = np.array([[1, 3, 1], [4, 1, 0]])
    c = RNG.standard_normal((2, 3, 3))
    np.testing.assert_allclose(F.embedding(idx, weight), weight[idx])
    g = npfunc.grad(lambda w: np.sum(c * F.embedding(idx, w)))(weight)
    want = np.zeros_like(weight)
    np.add.at(want, idx, c)
    np.testing.assert_allclose(g, want)
    assert np.allclose(g[1], c[0, 0] + c[0, 2] + c[1, 1])
    g_pad = npfunc.grad(lambda w: np.sum(c * F.embedding(idx, w, padding_idx=1)))(weight)
    np.testing.assert_allclose(g_pad[1], 0.0)
    np.testing.assert_allclose(np.delete(g_pad, 1, 0), np.delete(want, 1, 0))


def test_dropout_scaling_and_modes():
    x = np.ones((200, 50))
    y = F.dropout(x, 0.3, rng=0)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(F.dropout(x, 0.3, training=False), x)
    np.testing.assert_array_equal(F.dropout(x, 1.0), 0.0)
    np.testing.assert_array_equal(F.dropout(x, 0.3, rng=5), F.dropout(x, 0.3, rng=5))  # seeded: reproducible
    g = npfunc.grad(lambda v: np.sum(F.dropout(v, 0.5, rng=1)))(np.ones(10))
    np.testing.assert_array_equal(g, F.dropout(np.ones(10), 0.5, rng=1))


def test_dropout_under_vmap_follows_randomness():
    x = np.ones((4, 30))
    with pytest.raises(npfunc.errors.RandomnessError, match="randomness"):
        npfunc.vmap(lambda v: F.dropout(v, 0.5, rng=0))(x)
    diff = npfunc.vmap(lambda v: F.dropout(v, 0.5, rng=0), randomness="different")(x)
    same = npfunc.vmap(lambda v: F.dropout(v, 0.5, rng=0), randomness="same")(x)
    assert not np.array_equal(diff[0] != 0, diff[1] != 0)
    assert all(np.array_equal(same[0], s) for s in same)
    assert set(np.unique(diff)) <= {0.0, 2.0}
