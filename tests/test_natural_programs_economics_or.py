"""Natural programs from economics and operations research, written first in plain
NumPy/SciPy the way an economist or an OR analyst writes them, then run under
npfunc's transforms and compared with the plain program (values, dtypes, Python
types, shapes, what is left in the caller's arrays) and with five-point central
differences (derivatives).

Programs:

* consumer and producer theory: CES utility (in x and in rho), Cobb-Douglas
  production (``np.prod``), Cobb-Douglas and CES Marshallian demand, a Slutsky
  matrix from ``jacrev`` of demand, Stone-Geary (LES) demand, AIDS budget shares,
  a translog cost function (``einsum``) whose log-price gradient is the cost
  shares, utility maximisation under a budget by ``scipy.optimize.minimize``
  (SLSQP with a constraint) and by a change of variables;
* dynamic programming: a growth model by value iteration (``np.max`` over a
  grid with ``np.where`` for infeasible consumption), a finite MDP Bellman
  operator with ``max``/``argmax`` and a tolerance ``break``, the same with a
  fixed number of sweeps returning (V, policy), policy evaluation by fancy
  indexing and ``np.linalg.solve``, soft (logit) value iteration with
  ``scipy.special.logsumexp``, a softmax policy's exact policy gradient;
* discrete choice: conditional logit log-likelihood, aggregate logit with
  ``np.bincount`` counts, nested logit (preallocated output), logit price
  elasticities (``np.diag_indices`` writes), the BLP share inversion
  (``delta +=``), mixed logit with fixed draws and with a seeded generator inside;
* optimal transport: Sinkhorn in log space, classic Sinkhorn with scaling vectors
  updated in place (``u[:] = ...``);
* portfolios: minimum-variance weights (``np.linalg.solve``), the tangency
  portfolio (``cho_factor``/``cho_solve``), the Markowitz KKT system built with
  ``np.block`` and returning ``float(risk)``;
* inventory and queues: EOQ (``math.sqrt``), the normal newsvendor
  (``norm.ppf/pdf/cdf``), base-stock cost under Poisson demand
  (``poisson.pmf``), M/M/1 returning a dict, Erlang C with ``math.factorial``,
  the Erlang B recursion, Pollaczek-Khinchine;
* auctions and IO: first-price equilibrium bids (``np.trapezoid``), second-price
  revenue with a reserve (``np.sort``, ``np.where``), the Myerson reserve by
  ``scipy.optimize.brentq``, the optimal assignment
  (``linear_sum_assignment``), Cournot by ``np.linalg.solve``, by
  ``scipy.optimize.root`` and by ``fsolve``, logit-Bertrand markups by a fixed
  point, HHI and Gini (``np.sort``);
* input-output and Markov chains: the Leontief inverse and multipliers
  (``np.linalg.inv``), the Leontief power series (``x += term``), Leontief
  prices (``scipy.linalg.solve``), stationary distributions by ``np.linalg.eig``,
  by a replaced row (``A[-1, :] = 1``) and by power iteration, absorption times,
  Tauchen's discretisation (double loop into ``np.empty``, and vectorised);
* growth and finance: Solow steady state and path, the endogenous grid method
  (``np.interp``), present values (vector, loop of Python floats, float32),
  annuity payments, amortisation schedules, IRR by Newton, by ``np.roots`` and by
  ``brentq``, NPV by ``np.polyval``, Macaulay duration, continuous compounding by
  ``np.trapezoid``, hyperbolic discounting, Fisher price index, a gravity trade
  matrix (``np.fill_diagonal``), an in-place row normalisation of a transition
  matrix.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.optimize as so
import scipy.special as sps
import scipy.stats as st

import npfunc
from natural_checks import assert_deriv, assert_same, fd

RNG = np.random.default_rng(20261207)
ERR = npfunc.errors


def _stack(f, xs):
    return np.stack([f(x) for x in xs])


# ==== consumer and producer theory ==========================================================


def ces_utility(x, a, rho):
    """CES utility (sum a_i x_i^rho)^(1/rho)."""
    return np.sum(a * x ** rho) ** (1.0 / rho)


def cobb_douglas(x, alpha=np.array([0.3, 0.5, 0.2]), A=1.0):
    """Cobb-Douglas production A prod x_i^alpha_i."""
    return A * np.prod(x ** alpha)


def cd_demand(p, m, alpha):
    """Marshallian demand of a Cobb-Douglas consumer (alpha normalised first)."""
    alpha = alpha / alpha.sum()
    return alpha * m / p


def ces_demand(p, m, a, sigma):
    """CES Marshallian demand x_i = a_i^s p_i^-s m / sum_j a_j^s p_j^(1-s)."""
    denom = np.sum(a ** sigma * p ** (1 - sigma))
    return a ** sigma * p ** (-sigma) * m / denom


def les_demand(p, m, gamma, beta):
    """Stone-Geary linear expenditure system."""
    supernumerary = m - p @ gamma
    return gamma + beta * supernumerary / p


def aids_shares(lnp, lnm, alpha, Gamma, bvec, a0=0.0):
    """Almost Ideal Demand System budget shares with the translog price index."""
    lnP = a0 + alpha @ lnp + 0.5 * lnp @ Gamma @ lnp
    return alpha + Gamma @ lnp + bvec * (lnm - lnP)


def translog_cost(lnp, a0, a, B):
    return a0 + a @ lnp + 0.5 * np.einsum("i,ij,j->", lnp, B, lnp)


def utility_max_slsqp(p, m=10.0, a=np.array([0.3, 0.7])):
    """Cobb-Douglas utility maximisation under the budget p.x = m, as a constrained problem."""
    obj = lambda x: -(a * np.log(x)).sum()
    cons = ({"type": "eq", "fun": lambda x: p @ x - m},)
    res = so.minimize(obj, np.ones(2), constraints=cons, method="SLSQP", bounds=[(1e-6, None)] * 2)
    return res.x


def utility_max_substituted(p, m=10.0, a=np.array([0.3, 0.7])):
    """The same problem with the budget substituted: x = (t, (m - p0 t) / p1), t in (0, m/p0),
    t = m/p0 * sigmoid(z) (the refusal's 'change of variables')."""
    def obj(z):
        t = m / p[0] / (1 + np.exp(-z[0]))
        x = np.stack([t, (m - p[0] * t) / p[1]])
        return -(a * np.log(x)).sum()
    z = so.minimize(obj, np.zeros(1), method="BFGS").x
    t = m / p[0] / (1 + np.exp(-z[0]))
    return np.stack([t, (m - p[0] * t) / p[1]])


def test_ces_utility_values_grad_hessian_vmap():
    a = np.array([0.2, 0.5, 0.3])
    x = np.array([1.0, 2.0, 3.0])
    f = lambda x: ces_utility(x, a, 0.5)
    jf = npfunc.jit(f)
    assert_same(jf(x), f(x))
    assert_same(jf(x + 0.5), f(x + 0.5))
    xs = x + RNG.random((4, 3))
    assert_same(npfunc.vmap(f)(xs), _stack(f, xs))
    assert_deriv(npfunc.grad(f)(x), fd(f, x))
    assert_deriv(npfunc.hessian(f)(x), fd(npfunc.grad(f), x), rtol=1e-4, atol=1e-7)
    # in rho: a NumPy scalar argument, a NumPy scalar result
    g = lambda r: ces_utility(x, a, r)
    r = np.float64(-0.7)
    assert_same(npfunc.jit(g)(r), g(r))
    dg = npfunc.grad(g)(r)
    assert type(dg) is np.float64
    assert_deriv(dg, fd(g, r))
    assert_same(npfunc.vmap(g)(np.array([0.3, -0.5])), _stack(g, np.array([0.3, -0.5])))


def test_ces_utility_float32():
    a = np.array([0.2, 0.5, 0.3], dtype=np.float32)
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    f = lambda x: ces_utility(x, a, np.float32(0.5))
    assert_same(npfunc.jit(f)(x), f(x), rtol=1e-6)
    g = npfunc.grad(f)(x)
    assert g.dtype == np.float32
    assert_deriv(g, fd(f, x), rtol=1e-3)
    h = lambda x: ces_utility(x, a, 0.5)      # a Python float exponent keeps float32 too
    assert_same(npfunc.jit(h)(x), h(x), rtol=1e-6)


def test_cobb_douglas_and_demands():
    x = np.array([1.0, 2.0, 3.0])
    assert_same(npfunc.jit(cobb_douglas)(x), cobb_douglas(x))
    assert_same(npfunc.jit(cobb_douglas)(2 * x), cobb_douglas(2 * x))
    assert_deriv(npfunc.grad(cobb_douglas)(x), fd(cobb_douglas, x))
    # Euler's theorem for a CRS technology: x . grad f = f
    np.testing.assert_allclose(x @ npfunc.grad(cobb_douglas)(x), cobb_douglas(x), rtol=1e-12)
    alpha = np.array([1.0, 2.0, 3.0])
    d = lambda p: cd_demand(p, 10.0, alpha)
    assert_deriv(npfunc.jacrev(d)(x), fd(d, x))
    assert_deriv(npfunc.jacfwd(cd_demand, argnums=2)(x, 10.0, alpha), fd(lambda a: cd_demand(x, 10.0, a), alpha))
    ps = x + RNG.random((3, 3))
    assert_same(npfunc.vmap(d)(ps), _stack(d, ps))
    a = np.array([0.2, 0.5, 0.3])
    c = lambda s: ces_demand(x, 10.0, a, s)
    assert_same(npfunc.jit(c)(np.float64(1.5)), c(np.float64(1.5)))
    assert_same(npfunc.jit(c)(np.float64(0.5)), c(np.float64(0.5)))
    assert_deriv(npfunc.jacfwd(c)(np.float64(1.5)), fd(c, np.float64(1.5)))


def test_slutsky_matrix_symmetric_negative_semidefinite():
    """S = D_p x + (D_m x) x^T from npfunc's Jacobians of CES demand."""
    a = np.array([0.2, 0.5, 0.3])
    p = np.array([1.0, 2.0, 1.5])
    m = np.float64(10.0)
    Dp = npfunc.jacrev(ces_demand, argnums=0)(p, m, a, 1.7)
    Dm = npfunc.jacfwd(ces_demand, argnums=1)(p, m, a, 1.7)
    assert Dm.shape == (3,)
    assert_deriv(Dp, fd(lambda q: ces_demand(q, m, a, 1.7), p))
    assert_deriv(Dm, fd(lambda mm: ces_demand(p, mm, a, 1.7), m))
    S = Dp + np.outer(Dm, ces_demand(p, m, a, 1.7))
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(S) < 1e-12)
    np.testing.assert_allclose(S @ p, 0.0, atol=1e-12)


def test_les_and_aids_demand_systems():
    p = np.array([1.0, 2.0, 1.5])
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.3, 0.5])
    f = lambda p: les_demand(p, 100.0, gamma, beta)
    assert_same(npfunc.jit(f)(p), f(p))
    assert_same(npfunc.jit(f)(2 * p), f(2 * p))
    assert_deriv(npfunc.jacrev(f)(p), fd(f, p))
    # budget exhaustion: p . x(p) = m, so p^T J + x = 0
    J = npfunc.jacfwd(f)(p)
    np.testing.assert_allclose(p @ J + f(p), 0.0, atol=1e-12)
    B = RNG.standard_normal((3, 3)) * 0.01
    B = B + B.T
    alpha, bvec = np.array([0.3, 0.3, 0.4]), np.array([0.01, -0.02, 0.01])
    g = lambda lnp: aids_shares(lnp, np.log(100.0), alpha, B, bvec)
    lnp = np.log(p)
    assert_same(npfunc.jit(g)(lnp), g(lnp))
    assert_deriv(npfunc.jacrev(g)(lnp), fd(g, lnp))
    lnps = np.log(p + RNG.random((3, 3)))
    assert_same(npfunc.vmap(g)(lnps), _stack(g, lnps))


def test_translog_cost_shares_by_grad():
    B = RNG.standard_normal((3, 3)) * 0.1
    B = B + B.T
    a = np.array([0.3, 0.3, 0.4])
    lnp = np.log(np.array([1.0, 2.0, 1.5]))
    f = lambda l: translog_cost(l, 1.0, a, B)
    shares = npfunc.grad(f)(lnp)
    assert_deriv(shares, a + B @ lnp, rtol=1e-12)
    assert_deriv(npfunc.hessian(f)(lnp), B, rtol=1e-12)
    assert_same(npfunc.jit(f)(lnp), f(lnp))
    lnps = RNG.standard_normal((4, 3))
    assert_same(npfunc.vmap(npfunc.grad(f))(lnps), lnps @ B.T + a, rtol=1e-12)


def test_utility_max_with_budget_constraint_refuses_and_substitution_works():
    p = np.array([1.0, 2.0])
    for how in (npfunc.jacrev, npfunc.jit):
        with pytest.raises(ERR.NpfuncError, match=r"constrained minimisation.*change of variables"):
            how(utility_max_slsqp)(p)
    with pytest.raises(ERR.NpfuncError, match=r"constrained minimisation"):
        npfunc.vmap(utility_max_slsqp)(np.stack([p, p[::-1]]))
    # the plain program is unchanged by npfunc
    np.testing.assert_allclose(utility_max_slsqp(p), [3.0, 3.5], rtol=1e-4)
    # the advised fix: the budget written into the objective
    x = utility_max_substituted(p)
    np.testing.assert_allclose(x, [3.0, 3.5], rtol=1e-5)
    J = npfunc.jacrev(utility_max_substituted)(p)
    assert_deriv(J, np.diag(-10.0 * np.array([0.3, 0.7]) / p ** 2), rtol=1e-4, atol=1e-6)
    ps = np.array([[1.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(npfunc.vmap(utility_max_substituted)(ps), 10.0 * np.array([0.3, 0.7]) / ps,
                               rtol=1e-5)
