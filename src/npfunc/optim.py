"""Functional optimizers over parameter pytrees: SGD, Adam, AdamW.

Each optimizer is ``init(params) -> state`` and
``update(grads, state, params) -> (new_params, new_state)``, a pure function
written with NumPy operations -- so it can be differentiated through (the
inner loop of MAML) or batched with vmap.

>>> import numpy as np, npfunc
>>> opt = npfunc.optim.SGD(lr=0.1, momentum=0.9)
>>> params = {"w": np.array([1.0, -2.0])}
>>> state = opt.init(params)
>>> loss = lambda p: (p["w"] ** 2).sum()
>>> for _ in range(3):
...     params, state = opt.update(npfunc.grad(loss)(params), state, params)
>>> np.round(params["w"], 4)
array([ 0.062, -0.124])
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import optree

from .core.errors import NpfuncError

__all__ = ["SGD", "SGDState", "Adam", "AdamState", "AdamW", "OptimizerError"]


class OptimizerError(NpfuncError, ValueError):
    """Bad optimizer hyper-parameters or mismatched parameter trees."""


def _map(fn, *trees):
    try:
        return optree.tree_map(fn, *trees)
    except ValueError as err:
        raise OptimizerError(
            f"optimizer update: grads, state and params must have the same structure ({err})") from None


def _zeros(params):
    return _map(lambda p: np.zeros(np.shape(p), dtype=np.result_type(p)), params)


def _check(name: str, value: float, low: float = 0.0) -> None:
    if not value >= low:
        raise OptimizerError(f"{name} must be >= {low}, got {value}")


class SGDState(NamedTuple):
    momentum: Any
    step: int


class SGD:
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay (torch's update)."""

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            _check(name, v)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise OptimizerError("SGD: nesterov needs momentum > 0 and dampening = 0")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def init(self, params) -> SGDState:
        return SGDState(_zeros(params) if self.momentum else None, 0)

    def update(self, grads, state: SGDState, params):
        wd, mu = self.weight_decay, self.momentum
        if wd:
            grads = _map(lambda g, p: g + wd * p, grads, params)
        buf = state.momentum
        if mu:
            if state.step == 0:
                buf = grads
            else:
                buf = _map(lambda b, g: mu * b + (1 - self.dampening) * g, buf, grads)
            grads = _map(lambda g, b: g + mu * b, grads, buf) if self.nesterov else buf
        new_params = _map(lambda p, g: p - self.lr * g, params, grads)
        return new_params, SGDState(buf, state.step + 1)


class AdamState(NamedTuple):
    m: Any
    v: Any
    v_max: Any
    step: int


class Adam:
    """Adam (bias-corrected, optional AMSGrad); ``decoupled=True`` is AdamW."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, decoupled: bool = False) -> None:
        _check("lr", lr)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise OptimizerError(f"Adam: betas must be in [0, 1), got {betas}")
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad, self.decoupled = weight_decay, amsgrad, decoupled

    def init(self, params) -> AdamState:
        return AdamState(_zeros(params), _zeros(params), _zeros(params) if self.amsgrad else None, 0)

    def update(self, grads, state: AdamState, params):
        b1, b2 = self.betas
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        if wd and not self.decoupled:
            grads = _map(lambda g, p: g + wd * p, grads, params)
        if wd and self.decoupled:
            params = _map(lambda p: p * (1 - lr * wd), params)
        step = state.step + 1
        m = _map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
        v = _map(lambda v, g: b2 * v + (1 - b2) * (g * g), state.v, grads)
        v_max = _map(np.maximum, state.v_max, v) if self.amsgrad else None
        c1, c2 = 1 - b1 ** step, 1 - b2 ** step
        second = v_max if self.amsgrad else v
        new_params = _map(lambda p, m, v: p - lr * (m / c1) / (np.sqrt(v / c2) + eps), params, m, second)
        return new_params, AdamState(m, v, v_max, step)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01, as torch)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def __dir__():
    return __all__
