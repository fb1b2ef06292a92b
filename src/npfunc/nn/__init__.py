"""``npfunc.nn``: a small torch-shaped module system over NumPy arrays."""
from .linear import Linear
from .module import IncompatibleKeys, Module, ModuleError, Parameter
from .utils import functional_call, replace_all_batch_norm_modules_, stack_module_state

__all__ = ["Module", "Parameter", "ModuleError", "IncompatibleKeys", "Linear",
           "functional_call", "stack_module_state", "replace_all_batch_norm_modules_"]
