"""Derivatives through np.unique's values (they were silently zero): each value
carries its first occurrence's derivative."""
import numpy as np

import npfunc


def test_grad_through_unique_is_not_silently_zero():
    """grad of sum(np.unique(x)**2) on distinct x must equal 2*x."""
    x = np.array([3.0, 1.0, 2.0])
    g = npfunc.grad(lambda a: np.sum(np.unique(a) ** 2))(x)
    np.testing.assert_allclose(g, 2 * x)


def test_jvp_tangent_through_unique_is_not_silently_zero():
    """jvp of np.unique on distinct x must carry the tangent."""
    x = np.array([3.0, 1.0, 2.0])
    _, t = npfunc.jvp(np.unique, (x,), (np.array([30.0, 10.0, 20.0]),))
    np.testing.assert_allclose(t, [10.0, 20.0, 30.0])


def test_jacrev_of_unique_values_is_not_silently_zero():
    """jacrev of np.unique_values on distinct x is a permutation matrix."""
    x = np.array([3.0, 1.0, 2.0])
    J = npfunc.jacrev(np.unique_values)(x)
    np.testing.assert_allclose(J, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
