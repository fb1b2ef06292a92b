"""Testing utilities: the checks every primitive's registry samples must pass.

Importing this package loads every definition (``npfunc.core.lazy.load_all``):
the checks and the generated tests iterate the complete registry."""
from ..core.lazy import load_all as _load_all

_load_all()

from .checks import (check_adjoint, check_jit, check_jvp_fd, check_primitive, check_second_order,
                     check_third_order, check_value, check_vmap, diff_argnums, in_dims_cases)
from .numerical import numerical_jacobian

__all__ = ["check_primitive", "check_value", "check_jvp_fd", "check_adjoint", "check_vmap", "check_jit",
           "check_second_order", "check_third_order", "diff_argnums", "in_dims_cases", "numerical_jacobian"]
