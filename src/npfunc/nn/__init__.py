"""``npfunc.nn``: a small torch-shaped module system over NumPy arrays."""
from . import functional
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss, BCEWithLogitsLoss,
                     Bilinear, Conv1d, Conv2d, CrossEntropyLoss, Dropout, Embedding, Flatten, GELU,
                     GroupNorm, HuberLoss, Identity, KLDivLoss, L1Loss, LayerNorm, LeakyReLU, LogSoftmax,
                     MaxPool2d, ModuleDict, ModuleList, MSELoss, NLLLoss, ReLU, Sequential, Sigmoid, SiLU,
                     SmoothL1Loss, Softmax, Softplus, Tanh)
from .linear import Linear
from .module import IncompatibleKeys, Module, ModuleError, Parameter
from .utils import functional_call, replace_all_batch_norm_modules_, stack_module_state

__all__ = [
    "Module", "Parameter", "ModuleError", "IncompatibleKeys", "functional",
    "Linear", "Bilinear", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Embedding", "Flatten",
    "Identity", "Sequential", "ModuleList", "ModuleDict",
    "ReLU", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax",
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss",
    "functional_call", "stack_module_state", "replace_all_batch_norm_modules_",
]
