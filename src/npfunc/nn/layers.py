"""Layers: linear products, convolution, pooling, normalisation, dropout,
embedding and shape modules (thin wrappers of ``functional``).  Activations,
containers and losses live in ``activation.py``, ``container.py`` and ``loss.py``."""
from __future__ import annotations

import math

import numpy as np

from ..core.context import current_stack
from ..core.tracer import Tracer
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


def _ntuple(v, n: int):
    """An int repeated n times; a sequence as a tuple; a string (a padding mode) unchanged."""
    return (v,) * n if isinstance(v, (int, np.integer)) else tuple(v) if not isinstance(v, str) else v


def _rank_error(x, ranks: str, example: str) -> ModuleError:
    return ModuleError(f"expected {ranks}, got shape {tuple(np.shape(x))}. {example}")


class _ConvNd(Module):
    n: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, *, rng=None, dtype=np.float64) -> None:
        super().__init__()
        name = type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ModuleError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                              f"be divisible by groups={groups}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ModuleError(f"{name}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
        if padding == "same" and any(s != 1 for s in _ntuple(stride, self.n)):
            raise ModuleError(f"{name}: padding='same' needs stride 1, got stride={stride}")
        gen = make_rng(rng)
        kernel = _ntuple(kernel_size, self.n)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.dilation = _ntuple(stride, self.n), _ntuple(dilation, self.n)
        self.padding, self.groups = _ntuple(padding, self.n), groups
        fan_in = in_channels // groups * math.prod(kernel)
        self.weight = Parameter(uniform_init(gen, (out_channels, in_channels // groups) + kernel, fan_in, dtype))
        if bias:
            self.bias = Parameter(uniform_init(gen, (out_channels,), fan_in, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        n = self.n
        spatial = "L" if n == 1 else "H, W"
        if np.ndim(x) not in (n + 1, n + 2):
            raise _rank_error(x, f"a {n + 2}-d input (N, C, {spatial}) or a {n + 1}-d input (C, {spatial})",
                              "Add the channel axis with x[:, None] (or x[None] for one sample).")
        if np.shape(x)[-n - 1] != self.in_channels:
            hint = ("Check the previous layer's out_channels, or the axis order (channels first, as "
                    f"(N, C, {spatial})).")
            if self.in_channels == 1 and np.ndim(x) == n + 1:
                hint = "For a batch of single-channel inputs, add the channel axis: x[:, None]. " + hint
            raise ModuleError(f"expected {self.in_channels} input channel{'s' * (self.in_channels != 1)} "
                              f"on axis {np.ndim(x) - n - 1}, got shape {tuple(np.shape(x))}. {hint}")
        conv = F.conv1d if n == 1 else F.conv2d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,) * self.n, "valid"):
            s += f", padding={self.padding if isinstance(self.padding, str) else self.padding!r}"
        if self.dilation != (1,) * self.n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C, L) or (C, L) input (torch's cross-correlation)."""

    n = 1


class Conv2d(_ConvNd):
    """2-d convolution over (N, C, H, W) or (C, H, W) input (torch's cross-correlation).

    ``padding`` may be an int, a pair, ``'valid'`` or ``'same'``; ``rng`` (a seed
    or ``np.random.Generator``) makes the initialisation deterministic.
    """

    n = 2


# ---- pooling -----------------------------------------------------------------------------

class _PoolNd(Module):
    n = 2
    fn = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding

    def _check(self, x):
        n = self.n
        spatial = "L" if n == 1 else "H, W"
        if np.ndim(x) not in (n + 1, n + 2):
            raise _rank_error(x, f"a {n + 2}-d input (N, C, {spatial}) or a {n + 1}-d input (C, {spatial})",
                              "Add the channel axis with x[:, None] (or x[None] for one sample).")

    def forward(self, x):
        self._check(x)
        return type(self).fn(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_PoolNd):
    n, fn = 1, staticmethod(F.max_pool1d)


class MaxPool2d(_PoolNd):
    n, fn = 2, staticmethod(F.max_pool2d)


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        self._check(x)
        return type(self).fn(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


class AvgPool1d(_AvgPoolNd):
    n, fn = 1, staticmethod(F.avg_pool1d)


class AvgPool2d(_AvgPoolNd):
    n, fn = 2, staticmethod(F.avg_pool2d)


class _AdaptivePool(_PoolNd):
    def __init__(self, output_size) -> None:
        Module.__init__(self)
        self.output_size = output_size

    def forward(self, x):
        self._check(x)
        return type(self).fn(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    n, fn = 1, staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    n, fn = 2, staticmethod(F.adaptive_avg_pool2d)


class AdaptiveMaxPool2d(_AdaptivePool):
    n, fn = 2, staticmethod(F.adaptive_max_pool2d)


# ---- normalisation --------------------------------------------------------------------------

def _under_vmap() -> bool:
    return any(isinstance(i, BatchInterpreter) for i in current_stack())


def _register_affine(module: Module, shape, weight: bool, bias: bool, dtype) -> None:
    """A normalisation layer's scale (ones) and shift (zeros), or absent (None) ones."""
    if weight:
        module.weight = Parameter(np.ones(shape, dtype=dtype))
    else:
        module.register_parameter("weight", None)
    if bias:
        module.bias = Parameter(np.zeros(shape, dtype=dtype))
    else:
        module.register_parameter("bias", None)


class _BatchNorm(Module):
    expected: str = ""
    ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, dtype=np.float64) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_affine(self, (num_features,), affine, affine, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0.0
            self.running_var[...] = 1.0
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        if np.ndim(x) not in self.ndims:
            hint = ("Under vmap each element has no batch axis, so batch statistics cannot be computed "
                    "per element: call model.eval() to use the running statistics, use GroupNorm / "
                    "LayerNorm, or map over whole minibatches." if _under_vmap() else
                    "Batch norm needs the batch axis N first.")
            raise _rank_error(x, self.expected, hint)
        if np.shape(x)[1] != self.num_features:
            raise ModuleError(f"expected {self.num_features} channels on axis 1, got shape "
                              f"{tuple(np.shape(x))}. Check the previous layer's output channels.")
        # torch: batch statistics in training mode, or when there are no running statistics.
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # (Under vmap, F.batch_norm refuses to update running statistics from batched values; it
        # checks before writing anything, and the counter below only moves after it succeeded.)
        updating = self.training and self.track_running_stats and self.running_mean is not None
        factor = 0.0 if self.momentum is None else self.momentum
        counter = self.num_batches_tracked if updating else None
        if counter is not None and self.momentum is None:
            if isinstance(counter, Tracer):  # stacked buffers under vmap
                raise ModuleError("training mode with running statistics, inside vmap. " + F._VMAP_BN_HINT)
            factor = 1.0 / (float(counter) + 1.0)  # cumulative moving average
        y = F.batch_norm(x, self.running_mean if (updating or not self.training) else None,
                         self.running_var if (updating or not self.training) else None,
                         self.weight, self.bias, training=use_batch_stats, momentum=factor, eps=self.eps)
        if counter is not None:
            if isinstance(counter, np.ndarray) and counter.flags.writeable:
                counter[...] += 1
            else:
                self.num_batches_tracked = np.asarray(counter) + 1
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input, torch's semantics: batch
    statistics in training mode (running statistics updated in place with
    ``momentum`` and the unbiased variance; ``momentum=None`` is a cumulative
    average), running statistics in eval mode."""

    expected, ndims = "a 2-d input (N, C) or a 3-d input (N, C, L)", (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input (see ``BatchNorm1d``)."""

    expected, ndims = "a 4-d input (N, C, H, W)", (4,)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes, with an optional elementwise affine map."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 *, dtype=np.float64) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        _register_affine(self, shape, elementwise_affine, elementwise_affine and bias, dtype)

    def forward(self, x):
        k = len(self.normalized_shape)
        if np.ndim(x) < k or tuple(np.shape(x)[np.ndim(x) - k:]) != self.normalized_shape:
            raise ModuleError(f"expected an input whose last axes are {self.normalized_shape}, got shape "
                              f"{tuple(np.shape(x))}. Pass normalized_shape = the trailing feature axes.")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalise each sample over groups of channels of (N, C, *spatial) input
    (per-sample statistics: unlike batch norm it works under vmap)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 dtype=np.float64) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ModuleError(f"GroupNorm: num_channels={num_channels} is not divisible into "
                              f"num_groups={num_groups} groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _register_affine(self, (num_channels,), affine, affine, dtype)

    def forward(self, x):
        if np.ndim(x) < 2:
            raise _rank_error(x, "an input (N, C, *spatial)", "Add the batch axis with x[None].")
        if np.shape(x)[1] != self.num_channels:
            raise ModuleError(f"expected {self.num_channels} channels on axis 1, got shape {tuple(np.shape(x))}. "
                              "GroupNorm needs the batch axis N first: add it with x[None] for one sample.")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


# ---- dropout, embedding, shape --------------------------------------------------------------

class Dropout(Module):
    """Zero entries with probability ``p`` in training mode (scaling the rest
    by 1/(1-p)); the identity in eval mode.

    Draws come from ``npfunc.random`` with the generator made from ``rng``, so
    a seed makes the masks reproducible and vmap's ``randomness`` applies:
    ``'error'`` raises, ``'different'`` gives each batch element its own mask,
    ``'same'`` shares one mask.
    """

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
    """A lookup table: integer indices of any shape -> rows of ``weight`` (num_embeddings, embedding_dim).

    Initialised N(0, 1) as torch; the row ``padding_idx`` starts at zero and gets no gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *, rng=None,
                 dtype=np.float64) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ModuleError(f"Embedding: padding_idx={padding_idx} must be within num_embeddings "
                                  f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        weight = make_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def forward(self, indices):
        if not hasattr(indices, "dtype"):
            indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise ModuleError(f"expected integer indices, got dtype {indices.dtype}. Convert with "
                              "indices.astype(np.int64).")
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"


class Flatten(Module):
    """Flatten axes ``start_dim`` .. ``end_dim`` into one (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = tuple(np.shape(x))
        nd = len(shape)
        if nd == 0:
            return np.reshape(x, (1,))
        start, end = self.start_dim % nd, self.end_dim % nd
        if start > end:
            raise ModuleError(f"start_dim={self.start_dim} comes after end_dim={self.end_dim} for an input of "
                              f"shape {shape}")
        return np.reshape(x, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        shape = tuple(np.shape(x))
        d = self.dim % len(shape)
        return np.reshape(x, shape[:d] + self.unflattened_size + shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Identity(Module):
    def forward(self, x):
        return x
