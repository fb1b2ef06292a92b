"""Layers: convolution, pooling, normalisation, dropout, embedding,
activations, containers and loss modules (thin wrappers of ``functional``)."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Iterable

import numpy as np

from ..core.context import current_stack
from ..interpreters.batching import BatchInterpreter
from . import functional as F
from .linear import uniform_init
from .module import Module, ModuleError, Parameter, make_rng

# ---- products ---------------------------------------------------------------------------


class Bilinear(Module):
    """``y_k = x1ᵀ W_k x2 + b_k``."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, *,
                 rng=None) -> None:
        super().__init__()
        gen = make_rng(rng)
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = Parameter(uniform_init(gen, (out_features, in1_features, in2_features), in1_features))
        if bias:
            self.bias = Parameter(uniform_init(gen, (out_features,), in1_features))
        else:
            self.register_parameter("bias", None)

    def forward(self, x1, x2):
        return F.bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in1_features={self.in1_features}, in2_features={self.in2_features}, out_features={self.out_features}"


class _ConvNd(Module):
    n: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, *, rng=None) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ModuleError(f"{type(self).__name__}: channels ({in_channels}, {out_channels}) must be "
                              f"divisible by groups={groups}")
        gen = make_rng(rng)
        kernel = (kernel_size,) * self.n if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        fan_in = in_channels // groups * math.prod(kernel)
        self.weight = Parameter(uniform_init(gen, (out_channels, in_channels // groups) + kernel, fan_in))
        if bias:
            self.bias = Parameter(uniform_init(gen, (out_channels,), fan_in))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        conv = F.conv1d if self.n == 1 else F.conv2d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class Conv1d(_ConvNd):
    n = 1


class Conv2d(_ConvNd):
    n = 2


# ---- pooling -----------------------------------------------------------------------------

class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ---- normalisation --------------------------------------------------------------------------

class _BatchNorm(Module):
    expected_ndims: tuple[int, ...] = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features))
            self.bias = Parameter(np.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features))
            self.register_buffer("running_var", np.ones(num_features))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, x):
        if np.ndim(x) not in self.expected_ndims:
            raise ModuleError(
                f"{type(self).__name__}({self.num_features}): expected a {' or '.join(map(str, self.expected_ndims))}"
                f"-d input (N, C, ...), got shape {np.shape(x)}")
        updating = self.training and self.running_mean is not None
        if updating and any(isinstance(i, BatchInterpreter) for i in current_stack()):
            raise ModuleError(
                f"{type(self).__name__}({self.num_features}) is in training mode and updates its running "
                "statistics, which cannot be done per batch element under vmap. Call "
                "npfunc.replace_all_batch_norm_modules_(model) to stop tracking them, or model.eval() "
                "to use the stored statistics.")
        use_batch_stats = self.training or self.running_mean is None
        y, mean, var = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                    training=use_batch_stats, momentum=self.momentum, eps=self.eps)
        if updating:
            self.running_mean, self.running_var = mean, var
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    expected_ndims = (4,)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape))
            self.bias = Parameter(np.zeros(shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ModuleError(f"GroupNorm: {num_channels} channels are not divisible into {num_groups} groups")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        if affine:
            self.weight = Parameter(np.ones(num_channels))
            self.bias = Parameter(np.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


# ---- dropout, embedding, shape --------------------------------------------------------------

class Dropout(Module):
    """Dropout with draws from ``npfunc.random`` (vmap's ``randomness`` applies)."""

    def __init__(self, p: float = 0.5, *, rng=None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ModuleError(f"Dropout: p must be in [0, 1], got {p}")
        from .. import random as nprandom

        self.p = p
        self.rng = nprandom.default_rng(rng)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng=None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(make_rng(rng).standard_normal((num_embeddings, embedding_dim)))

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = np.shape(x)
        nd = len(shape)
        start, end = self.start_dim % nd, self.end_dim % nd
        return np.reshape(x, shape[:start] + (-1,) + shape[end + 1:])


class Identity(Module):
    def forward(self, x):
        return x


# ---- activations --------------------------------------------------------------------------------

def _activation(name: str, fn, **defaults):
    def __init__(self, **kwargs):
        Module.__init__(self)
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{name}: unexpected arguments {sorted(unknown)}")
        for key, value in {**defaults, **kwargs}.items():
            object.__setattr__(self, key, value)

    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k in defaults})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)}" for k in defaults)

    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                  "__doc__": f"Module form of ``functional.{fn.__name__}``."})


ReLU = _activation("ReLU", F.relu)
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, negative_slope=0.01)
GELU = _activation("GELU", F.gelu, approximate="none")
SiLU = _activation("SiLU", F.silu)
Tanh = _activation("Tanh", F.tanh)
Sigmoid = _activation("Sigmoid", F.sigmoid)
Softplus = _activation("Softplus", F.softplus, beta=1.0, threshold=20.0)
Softmax = _activation("Softmax", F.softmax, axis=-1)
LogSoftmax = _activation("LogSoftmax", F.log_softmax, axis=-1)


# ---- containers -----------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied in order; indexable."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        values = list(self._modules.values())
        return Sequential(*values[i]) if isinstance(i, slice) else values[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules: dict | None = None) -> None:
        super().__init__()
        for name, m in (modules or {}).items():
            self.add_module(name, m)

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        self.add_module(name, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


# ---- losses ------------------------------------------------------------------------------------------

def _loss(name: str, fn, **defaults):
    def __init__(self, **kwargs):
        Module.__init__(self)
        for key, value in {**defaults, **kwargs}.items():
            object.__setattr__(self, key, value)

    def forward(self, input, target):
        return fn(input, target, **{k: getattr(self, k) for k in defaults})

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "__doc__": f"Module form of ``functional.{fn.__name__}``."})


MSELoss = _loss("MSELoss", F.mse_loss, reduction="mean")
L1Loss = _loss("L1Loss", F.l1_loss, reduction="mean")
SmoothL1Loss = _loss("SmoothL1Loss", F.smooth_l1_loss, reduction="mean", beta=1.0)
HuberLoss = _loss("HuberLoss", F.huber_loss, reduction="mean", delta=1.0)
CrossEntropyLoss = _loss("CrossEntropyLoss", F.cross_entropy, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0)
NLLLoss = _loss("NLLLoss", F.nll_loss, weight=None, ignore_index=-100, reduction="mean")
BCELoss = _loss("BCELoss", F.binary_cross_entropy, weight=None, reduction="mean")
BCEWithLogitsLoss = _loss("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, weight=None,
                          reduction="mean", pos_weight=None)
KLDivLoss = _loss("KLDivLoss", F.kl_div, reduction="mean", log_target=False)
