"""``npfunc.nn``: a small torch-shaped module system over NumPy arrays.

Modules hold plain NumPy arrays; ``functional_call`` runs a module with
parameters and buffers passed in as dicts, so any npfunc transform can act on
them (per-sample gradients, ensembles, meta-learning).  See ``docs/nn.md``.
"""
from . import functional
from .activation import (ELU, GELU, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU,
                         Softmax, Softplus, Softsign, Tanh)
from .container import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, BatchNorm1d,
                     BatchNorm2d, Bilinear, Conv1d, Conv2d, Dropout, Embedding, Flatten, GroupNorm, Identity,
                     LayerNorm, MaxPool1d, MaxPool2d, Unflatten)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .linear import Linear
from .module import IncompatibleKeys, Module, ModuleError, Parameter
from .utils import functional_call, replace_all_batch_norm_modules_, stack_module_state

__all__ = [
    "Module", "Parameter", "ModuleError", "IncompatibleKeys", "functional",
    "Linear", "Bilinear", "Conv1d", "Conv2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Embedding", "Flatten", "Unflatten",
    "Identity", "Sequential", "ModuleList", "ModuleDict",
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "Hardtanh", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "LogSigmoid",
    "Softsign", "Softplus", "Softmax", "LogSoftmax",
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss",
    "functional_call", "stack_module_state", "replace_all_batch_norm_modules_",
]
