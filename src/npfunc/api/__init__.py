"""The public transforms, thin layers over the interpreters."""
from .forward import jvp
from .jacobians import hessian, jacfwd, jacrev
from .reverse import grad, grad_and_value, vjp
from .vmap import vmap

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "vmap", "jacrev", "jacfwd", "hessian"]
