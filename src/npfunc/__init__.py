"""npfunc: torch.func for NumPy.

Composable function transforms over plain NumPy code: ``grad``, ``vjp``,
``jvp``, ``vmap``, ``jacrev``, ``jacfwd`` and ``hessian``, nesting in any order.

>>> import numpy as np, npfunc
>>> f = lambda x: np.tanh(x).sum()
>>> x = np.array([0.0, 0.5])
>>> np.allclose(npfunc.grad(f)(x), 1 - np.tanh(x) ** 2)
True

``import npfunc`` loads the transforms and what they are written with; the
other definitions (``np.linalg``, FFT, special functions ...) load the first
time a traced value meets them, and ``npfunc.nn``, ``npfunc.numpy``,
``npfunc.jit`` ... on first access (see ``npfunc/core/lazy.py``).
"""
import importlib as _importlib

from . import errors
from . import scipy as _scipy  # noqa: F401  (routes unmodified SciPy calls with traced values to the twins)
from .api import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap
from .core import lazy as _lazy
from .core import pending as _pending  # noqa: F401  (np.zeros & co. in the user's function take traced writes)
from .core.debug import debug_nans, debug_unwrap
from .primitives.elementwise.arithmetic import stop_gradient
from .primitives.reductions import basic as _reductions  # noqa: F401  (x.sum(): in almost every first gradient)

_lazy.install_hooks()

__version__ = "0.1.0"
__all__ = ["grad", "grad_and_value", "vjp", "jvp", "vmap", "jacrev", "jacfwd", "hessian",
           "stop_gradient", "errors", "functional_call", "stack_module_state",
           "replace_all_batch_norm_modules_", "nn", "optim", "random", "numpy", "debug_nans", "debug_unwrap",
           "custom_jvp", "custom_vjp", "checkpoint", "linearize", "jit", "make_graph", "functionalize",
           "array_api"]

#: Names that load their module on first access: name -> (module, attribute or None for the module).
_LAZY = {
    "functional_call": ("npfunc.nn.utils", "functional_call"),
    "stack_module_state": ("npfunc.nn.utils", "stack_module_state"),
    "replace_all_batch_norm_modules_": ("npfunc.nn.utils", "replace_all_batch_norm_modules_"),
    "checkpoint": ("npfunc.api.checkpoint", "checkpoint"),
    "custom_jvp": ("npfunc.api.custom", "custom_jvp"),
    "custom_vjp": ("npfunc.api.custom", "custom_vjp"),
    "functionalize": ("npfunc.api.functionalize", "functionalize"),
    "jit": ("npfunc.api.jit", "jit"),
    "make_graph": ("npfunc.api.jit", "make_graph"),
    "linearize": ("npfunc.api.linearize", "linearize"),
}
#: Subpackages and modules loaded on first access (``npfunc.nn`` ...).
_SUBMODULES = ("api", "autograd", "compiler", "core", "gradcheck", "interpreters", "nn", "numpy", "numpy_fft",
               "optim", "primitives", "random", "scipy", "testing", "tour", "array_api")


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(_importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'npfunc' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
