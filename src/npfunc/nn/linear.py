"""Linear layers."""
from __future__ import annotations

import math

import numpy as np

from .module import Module, ModuleError, Parameter, make_rng


def uniform_init(rng: np.random.Generator, shape, fan_in: int, dtype=np.float64) -> np.ndarray:
    """torch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features).

    ``rng`` (a seed or ``np.random.Generator``) makes the initialisation deterministic.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None,
                 dtype=np.float64) -> None:
        super().__init__()
        gen = make_rng(rng)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(uniform_init(gen, (out_features, in_features), in_features, dtype))
        if bias:
            self.bias = Parameter(uniform_init(gen, (out_features,), in_features, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        if tuple(np.shape(x)[-1:]) != (self.in_features,):
            raise ModuleError(
                f"expected an input whose last axis has in_features={self.in_features} entries, got "
                f"shape {tuple(np.shape(x))}. Check the previous layer's output size (after a Flatten "
                "it is channels * height * width) or flatten the input first.")
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
