"""Testing utilities: the checks every primitive's registry samples must pass."""
from .checks import (check_adjoint, check_jit, check_jvp_fd, check_primitive, check_second_order,
                     check_third_order, check_value, check_vmap, diff_argnums, in_dims_cases)
from .numerical import numerical_jacobian

__all__ = ["check_primitive", "check_value", "check_jvp_fd", "check_adjoint", "check_vmap", "check_jit",
           "check_second_order", "check_third_order", "diff_argnums", "in_dims_cases", "numerical_jacobian"]
