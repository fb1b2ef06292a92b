"""torch.autograd-style entry points: ``npfunc.autograd.functional`` (vjp,
jvp, jacobian, hessian, hvp, vhp with torch's argument conventions), and
``gradcheck`` / ``gradgradcheck`` under the names torch users look for.

>>> import numpy as np
>>> from npfunc import autograd
>>> autograd.functional.hessian(lambda x: (x ** 2).sum(), np.ones(2))
array([[2., 0.],
       [0., 2.]])
>>> autograd.gradcheck(np.tanh, np.array([0.1, -0.4]))
True
"""
from . import functional
from ..gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["functional", "gradcheck", "gradgradcheck", "GradcheckError"]
