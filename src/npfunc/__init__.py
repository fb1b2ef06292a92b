"""npfunc: torch.func for NumPy.

Composable function transforms over plain NumPy code: ``grad``, ``vjp``,
``jvp``, ``vmap``, ``jacrev``, ``jacfwd`` and ``hessian``, nesting in any order.

>>> import numpy as np, npfunc
>>> f = lambda x: np.tanh(x).sum()
>>> x = np.array([0.0, 0.5])
>>> np.allclose(npfunc.grad(f)(x), 1 - np.tanh(x) ** 2)
True
"""
from . import primitives as _primitives  # noqa: F401  (fills the registry)
from . import numpy  # noqa: F401  (the explicit namespace npfunc.numpy)
from . import autograd, nn, optim, random, scipy  # noqa: F401
from .nn.utils import functional_call, replace_all_batch_norm_modules_, stack_module_state
from .api import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp, vmap
from .api.checkpoint import checkpoint
from .api.custom import custom_jvp, custom_vjp
from .api.functionalize import functionalize
from .api.jit import jit, make_graph
from .api.linearize import linearize
from . import errors
from .core.debug import debug_nans, debug_unwrap
from .primitives.elementwise.arithmetic import stop_gradient

__version__ = "0.1.0"
__all__ = ["grad", "grad_and_value", "vjp", "jvp", "vmap", "jacrev", "jacfwd", "hessian",
           "stop_gradient", "errors", "functional_call", "stack_module_state",
           "replace_all_batch_norm_modules_", "nn", "optim", "random", "numpy", "debug_nans", "debug_unwrap",
           "custom_jvp", "custom_vjp", "checkpoint", "linearize", "jit", "make_graph", "functionalize"]
