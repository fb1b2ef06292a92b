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


# ==== dynamic programming ===================================================================


def growth_vfi(beta, alpha=0.3, n=25, iters=40):
    """Deterministic growth on a capital grid: V(k) = max_k' log(k^alpha - k') + beta V(k')."""
    k = np.linspace(0.05, 0.5, n)
    c = k[:, None] ** alpha - k[None, :]
    u = np.where(c > 0, np.log(np.where(c > 0, c, 1.0)), -1e10)
    V = np.zeros(n)
    for _ in range(iters):
        V = np.max(u + beta * V[None, :], axis=1)
    return V


def bellman_mdp(R, P, beta, tol=1e-10, max_iter=500):
    """Value iteration for a finite MDP (R: (S, A), P: (S, A, S)) until the sup-norm change
    is below tol; returns V and the greedy policy."""
    V = np.zeros(R.shape[0])
    for _ in range(max_iter):
        Q = R + beta * P @ V
        V_new = Q.max(axis=1)
        if np.max(np.abs(V_new - V)) < tol:
            V = V_new
            break
        V = V_new
    policy = np.argmax(R + beta * P @ V, axis=1)
    return V, policy


def bellman_sweeps(R, P, beta=0.9, iters=40):
    """The same with a fixed number of sweeps."""
    V = np.zeros(R.shape[0])
    for _ in range(iters):
        Q = R + beta * P @ V
        V = Q.max(axis=1)
    return V, Q.argmax(axis=1)


def policy_evaluation(R, P, beta, policy):
    S = R.shape[0]
    P_pi = P[np.arange(S), policy]
    r_pi = R[np.arange(S), policy]
    return np.linalg.solve(np.eye(S) - beta * P_pi, r_pi)


def soft_value_iteration(R, P, beta, temp=1.0, iters=30):
    """Entropy-regularised (logit shocks) Bellman operator V = temp * logsumexp(Q / temp)."""
    V = np.zeros(R.shape[0])
    for _ in range(iters):
        Q = R + beta * np.einsum("sat,t->sa", P, V)
        V = temp * sps.logsumexp(Q / temp, axis=1)
    return V


def softmax_policy_value(theta, R, P, mu0, beta=0.9):
    """Discounted value of a tabular softmax policy pi(a|s) = softmax(theta[s]), exactly."""
    pi = np.exp(theta - theta.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = (pi * R).sum(axis=1)
    V = np.linalg.solve(np.eye(len(r_pi)) - beta * P_pi, r_pi)
    return mu0 @ V


def _mdp(S=4, A=3, seed=5):
    g = np.random.default_rng(seed)
    R = g.standard_normal((S, A))
    P = g.random((S, A, S))
    P /= P.sum(axis=-1, keepdims=True)
    return R, P


def test_growth_value_iteration_in_beta():
    b = np.float64(0.9)
    assert_same(npfunc.jit(growth_vfi)(b), growth_vfi(b))
    assert_same(npfunc.jit(growth_vfi)(np.float64(0.95)), growth_vfi(np.float64(0.95)))
    bs = np.array([0.8, 0.9, 0.95])
    assert_same(npfunc.vmap(growth_vfi)(bs), _stack(growth_vfi, bs))
    assert_deriv(npfunc.jacfwd(growth_vfi)(b), fd(growth_vfi, b), rtol=1e-5, atol=1e-6)
    assert_deriv(npfunc.jacrev(growth_vfi)(b), fd(growth_vfi, b), rtol=1e-5, atol=1e-6)


def test_bellman_with_tolerance_break():
    R, P = _mdp()
    V, pol = bellman_mdp(R, P, 0.9)
    f = lambda R: bellman_mdp(R, P, 0.9)[0]
    # grad and jacobians run the Python loop on concrete values: the break is taken as in NumPy
    assert_deriv(npfunc.jacrev(f)(R), fd(f, R))
    assert_deriv(npfunc.jacfwd(f)(R), fd(f, R))
    out = npfunc.grad(lambda R: bellman_mdp(R, P, 0.9)[0].sum(), has_aux=False)(R)
    assert_deriv(out, fd(lambda R: bellman_mdp(R, P, 0.9)[0].sum(), R))
    # jit and vmap cannot take the break: the refusals name np.where / static arguments
    with pytest.raises(ERR.ConcretizationError, match=r"jit\(f\): bool\(x\).*np.where"):
        npfunc.jit(bellman_mdp)(R, P, 0.9)
    with pytest.raises(ERR.BatchedConversionError, match=r"np.where"):
        npfunc.vmap(lambda R: bellman_mdp(R, P, 0.9))(np.stack([R, R + 1]))


def test_bellman_fixed_sweeps_values_policy_and_batching():
    R, P = _mdp()
    f = lambda R, beta=0.9: bellman_sweeps(R, P, beta)
    jf = npfunc.jit(f)
    for r in (R, -R):
        V, pol = jf(r)
        Vw, polw = f(r)
        assert_same(V, Vw)
        assert_same(pol, polw)
    Rs = np.stack([R, R + 1, -R])
    V, pol = npfunc.vmap(f)(Rs)
    assert_same(V, _stack(lambda r: f(r)[0], Rs))
    assert_same(pol, _stack(lambda r: f(r)[1], Rs))
    betas = np.array([0.5, 0.9])
    _, pol = npfunc.vmap(f, in_dims=(None, 0))(R, betas)
    assert_same(pol, np.stack([f(R, b)[1] for b in betas]))
    V, _ = npfunc.vmap(f, in_dims=(2, None), chunk_size=2)(np.stack([R, -R, 2 * R], axis=2), 0.8)
    assert_same(V, np.stack([f(r, 0.8)[0] for r in (R, -R, 2 * R)]))
    # derivatives in beta (the greedy policy is locally constant) and compositions
    g = lambda b: f(R, b)[0].sum()
    b = np.float64(0.9)
    assert_deriv(npfunc.grad(g)(b), fd(g, b))
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(g))(b), fd(npfunc.grad(g), b), rtol=1e-4)
    y, lin = npfunc.linearize(lambda r: f(r)[0], R)
    assert_same(y, f(R)[0])
    t = RNG.standard_normal(R.shape)
    assert_deriv(lin(t), fd(lambda r: f(r)[0], R).reshape(4, -1) @ t.ravel())


def test_bellman_float32_keeps_dtype():
    R, P = _mdp()
    R32, P32 = R.astype(np.float32), P.astype(np.float32)
    f = lambda R, beta: bellman_sweeps(R, P32, beta)
    for beta in (np.float32(0.9), 0.9):
        V, pol = npfunc.jit(f)(R32, beta)
        Vw, polw = f(R32, beta)
        assert_same(V, Vw, rtol=1e-6)
        assert_same(pol, polw)
    g = npfunc.grad(lambda r: f(r, np.float32(0.9))[0].sum())(R32)
    assert g.dtype == np.float32


def test_policy_evaluation_fancy_indexing_and_solve():
    R, P = _mdp()
    pol = bellman_mdp(R, P, 0.9)[1]
    f = lambda R: policy_evaluation(R, P, 0.9, pol)
    assert_same(npfunc.jit(f)(R), f(R))
    assert_same(npfunc.jit(f)(2 * R), f(2 * R))
    assert_deriv(npfunc.jacrev(f)(R), fd(f, R))
    g = lambda b: policy_evaluation(R, P, b, pol)
    b = np.float64(0.7)
    assert_deriv(npfunc.jacfwd(g)(b), fd(g, b))
    bs = np.array([0.5, 0.6, 0.95])
    assert_same(npfunc.vmap(g)(bs), _stack(g, bs))
    # the policy itself as a traced integer argument
    h = npfunc.jit(policy_evaluation)
    for q in (pol, (pol + 1) % 3):
        assert_same(h(R, P, 0.9, q), policy_evaluation(R, P, 0.9, q))
    Ps = np.stack([P, P[:, ::-1]])
    assert_same(npfunc.vmap(policy_evaluation, in_dims=(None, 0, None, None))(R, Ps, 0.9, pol),
                np.stack([policy_evaluation(R, q, 0.9, pol) for q in Ps]))


def test_soft_value_iteration_logsumexp():
    R, P = _mdp()
    f = lambda R: soft_value_iteration(R, P, 0.8)
    assert_same(npfunc.jit(f)(R), f(R))
    assert_same(npfunc.jit(f)(R * 2), f(R * 2))
    assert_deriv(npfunc.jacrev(f)(R), fd(f, R))
    Rs = np.stack([R, -R])
    assert_same(npfunc.vmap(f)(Rs), _stack(f, Rs))
    g = lambda t: soft_value_iteration(R, P, 0.8, temp=t).sum()
    t = np.float64(0.5)
    assert_deriv(npfunc.grad(g)(t), fd(g, t))
    assert_deriv(npfunc.jit(npfunc.grad(g))(t), fd(g, t))


def test_softmax_policy_gradient_exact():
    R, P = _mdp()
    mu0 = np.full(4, 0.25)
    theta = RNG.standard_normal((4, 3))
    f = lambda th: softmax_policy_value(th, R, P, mu0)
    assert_same(npfunc.jit(f)(theta), f(theta))
    assert_same(npfunc.jit(f)(-theta), f(-theta))
    g = npfunc.grad(f)(theta)
    assert_deriv(g, fd(f, theta))
    assert_deriv(npfunc.hessian(f)(theta), fd(npfunc.grad(f), theta), rtol=1e-4, atol=1e-7)
    thetas = RNG.standard_normal((3, 4, 3))
    assert_deriv(npfunc.vmap(npfunc.grad(f))(thetas), np.stack([fd(f, t) for t in thetas]))
    # theta is updated in place by a gradient ascent step the plain way
    th = theta.copy()
    th += 0.1 * npfunc.grad(f)(th)
    assert f(th) > f(theta)


# ==== discrete choice =======================================================================


def logit_loglik(beta, X, y):
    """Conditional logit: X (N, J, K), y (N,) chosen alternatives."""
    V = X @ beta
    V = V - V.max(axis=1, keepdims=True)
    logp = V - np.log(np.exp(V).sum(axis=1, keepdims=True))
    return logp[np.arange(len(y)), y].sum()


def choice_counts_ll(beta, X, choices, J):
    """Aggregate logit log-likelihood from choice counts (np.bincount)."""
    counts = np.bincount(choices, minlength=J)
    V = X @ beta
    return counts @ V - len(choices) * sps.logsumexp(V)


def nested_logit(V, nests, lam):
    """Nested logit probabilities into a preallocated vector."""
    P = np.zeros(V.shape[0])
    IV = np.array([lam[k] * sps.logsumexp(V[idx] / lam[k]) for k, idx in enumerate(nests)])
    Pnest = np.exp(IV - sps.logsumexp(IV))
    for k, idx in enumerate(nests):
        w = np.exp(V[idx] / lam[k])
        P[idx] = Pnest[k] * w / w.sum()
    return P


def nested_logit_like(V, nests, lam):
    """The same with the buffer made like V (the refusal's fix; plain NumPy runs it unchanged)."""
    P = np.zeros(V.shape[0], like=V)
    IV = np.array([lam[k] * sps.logsumexp(V[idx] / lam[k]) for k, idx in enumerate(nests)])
    Pnest = np.exp(IV - sps.logsumexp(IV))
    for k, idx in enumerate(nests):
        w = np.exp(V[idx] / lam[k])
        P[idx] = Pnest[k] * w / w.sum()
    return P


def logit_elasticities(p, alpha, xi):
    """Own and cross price elasticities of logit shares with an outside good."""
    delta = xi - alpha * p
    s = np.exp(delta) / (1.0 + np.exp(delta).sum())
    E = alpha * np.outer(np.ones(len(p)), s * p)
    E[np.diag_indices(len(p))] = -alpha * p * (1 - s)
    return E, s


def blp_inversion(s_obs, x_beta, n_iter=60):
    """BLP inversion for plain logit: delta <- delta + log s_obs - log s(delta)."""
    delta = np.log(s_obs) - np.log(1 - s_obs.sum())
    for _ in range(n_iter):
        s = np.exp(delta + x_beta) / (1 + np.exp(delta + x_beta).sum())
        delta += np.log(s_obs) - np.log(s)
    return delta


def blp_inversion_rebind(s_obs, x_beta, n_iter=60):
    """The same with delta = delta + ... (the refusal's fix)."""
    delta = np.log(s_obs) - np.log(1 - s_obs.sum())
    for _ in range(n_iter):
        s = np.exp(delta + x_beta) / (1 + np.exp(delta + x_beta).sum())
        delta = delta + np.log(s_obs) - np.log(s)
    return delta


def mixed_logit_ll(theta, X, y, draws):
    """Simulated mixed logit: random coefficients b = mean + exp(log sd) * draws."""
    b = theta[:2] + np.exp(theta[2:]) * draws
    V = np.einsum("njk,rk->nrj", X, b)
    p = sps.softmax(V, axis=2)
    pc = p[np.arange(len(y)), :, y]
    return np.log(pc.mean(axis=1)).sum()


def mixed_logit_seeded(theta, X, y, R=30):
    """The same drawing its own standard normals from a seeded generator."""
    draws = np.random.default_rng(11).standard_normal((R, 2))
    return mixed_logit_ll(theta, X, y, draws)


def test_conditional_logit_loglik_score_and_hessian():
    X = RNG.standard_normal((6, 3, 2))
    y = np.array([0, 1, 2, 0, 1, 2])
    f = lambda b: logit_loglik(b, X, y)
    b = np.array([0.5, -0.3])
    assert_same(npfunc.jit(f)(b), f(b))
    assert_same(npfunc.jit(f)(-b), f(-b))
    assert_deriv(npfunc.grad(f)(b), fd(f, b))
    H = npfunc.hessian(f)(b)
    assert_deriv(H, fd(npfunc.grad(f), b), rtol=1e-4, atol=1e-7)
    assert np.all(np.linalg.eigvalsh(H) < 0)
    bs = RNG.standard_normal((3, 2))
    assert_same(npfunc.vmap(f)(bs), _stack(f, bs))
    # per-observation scores by vmap over the data
    score = npfunc.vmap(npfunc.grad(logit_loglik), in_dims=(None, 0, 0))(b, X[:, None], y[:, None])
    assert_deriv(score.sum(axis=0), npfunc.grad(f)(b), rtol=1e-12)
    # the choices as a traced integer argument of jit
    jl = npfunc.jit(logit_loglik)
    for yy in (y, y[::-1].copy()):
        assert_same(jl(b, X, yy), logit_loglik(b, X, yy))


def test_aggregate_logit_with_bincount():
    X = RNG.standard_normal((4, 2))
    ch = np.array([0, 1, 1, 3, 3, 3])
    f = lambda b: choice_counts_ll(b, X, ch, 4)
    b = np.array([0.2, 0.3])
    assert_same(npfunc.jit(f)(b), f(b))
    assert_deriv(npfunc.grad(f)(b), fd(f, b))
    bs = RNG.standard_normal((3, 2))
    assert_same(npfunc.vmap(f)(bs), _stack(f, bs))
    # both formulations of the likelihood agree, and so do their scores
    Xl = np.broadcast_to(X, (6, 4, 2))
    g = lambda b: logit_loglik(b, Xl, ch)
    np.testing.assert_allclose(f(b), g(b), rtol=1e-12)
    assert_deriv(npfunc.grad(g)(b), npfunc.grad(f)(b), rtol=1e-12)


@pytest.mark.xfail(strict=True, raises=ERR.ConcretizationError,
                   reason="known limitation: writes of traced values into np.zeros(n) are refused (advice: like=)")
def test_nested_logit_plain_buffer_known_limitation():
    V = RNG.standard_normal(5)
    nests = [np.array([0, 1]), np.array([2, 3, 4])]
    npfunc.jacrev(lambda v: nested_logit(v, nests, np.array([0.5, 0.8])))(V)


def test_nested_logit_with_like_buffer():
    V = RNG.standard_normal(5)
    nests = [np.array([0, 1]), np.array([2, 3, 4])]
    lam = np.array([0.5, 0.8])
    assert_same(nested_logit_like(V, nests, lam), nested_logit(V, nests, lam))
    f = lambda v: nested_logit_like(v, nests, lam)
    assert_same(npfunc.jit(f)(V), nested_logit(V, nests, lam))
    assert_same(npfunc.jit(f)(2 * V), nested_logit(2 * V, nests, lam))
    assert_deriv(npfunc.jacrev(f)(V), fd(lambda v: nested_logit(v, nests, lam), V))
    Vs = RNG.standard_normal((3, 5))
    assert_same(npfunc.vmap(f)(Vs), np.stack([nested_logit(v, nests, lam) for v in Vs]))
    g = lambda l: nested_logit_like(V, nests, l)
    # a buffer like V is plain when only lam is traced: refused again, the advice names like=x
    with pytest.raises(ERR.ConcretizationError, match=r"like=x"):
        npfunc.jacfwd(g)(lam)
    # lam = 1 everywhere is plain logit
    np.testing.assert_allclose(g(np.ones(2)), sps.softmax(V), rtol=1e-12)


def test_logit_elasticities_diag_indices_write():
    p = np.array([1.0, 2.0, 3.0])
    xi = np.array([1.0, 0.5, 0.2])
    f = lambda p: logit_elasticities(p, 0.5, xi)
    E, s = npfunc.jit(f)(p)
    Ew, sw = f(p)
    assert_same(E, Ew)
    assert_same(s, sw)
    assert_same(npfunc.jit(f)(2 * p)[0], f(2 * p)[0])
    # the elasticity matrix is d log s / d log p: check against jacrev of log shares
    logs = lambda lp: np.log(f(np.exp(lp))[1])
    assert_deriv(npfunc.jacrev(logs)(np.log(p)), Ew, rtol=1e-10)
    assert_deriv(npfunc.jacfwd(lambda p: f(p)[0])(p), fd(lambda p: f(p)[0], p))
    ps = RNG.random((3, 3)) + 0.5
    assert_same(npfunc.vmap(lambda p: f(p)[0])(ps), _stack(lambda p: f(p)[0], ps))


def test_blp_inversion_inplace_refusal_and_rebinding_fix():
    s_obs = np.array([0.2, 0.3, 0.1])
    xb = np.array([0.1, 0.2, 0.3])
    # plain: the inversion recovers log(s_j / s_0) - x_beta
    np.testing.assert_allclose(blp_inversion(s_obs, xb), np.log(s_obs / 0.4) - xb, atol=1e-10)
    # delta starts as a plain array (from the data): delta += traced is refused with the fix
    with pytest.raises(ERR.UnsupportedOperationError, match=r"x \+= y.*Use x = x \+ y"):
        npfunc.jacrev(lambda x: blp_inversion(s_obs, x))(xb)
    f = lambda x: blp_inversion_rebind(s_obs, x)
    assert_same(f(xb), blp_inversion(s_obs, xb))
    assert_same(npfunc.jit(f)(xb), blp_inversion(s_obs, xb))
    assert_same(npfunc.jit(f)(2 * xb), blp_inversion(s_obs, 2 * xb))
    assert_deriv(npfunc.jacrev(f)(xb), fd(f, xb), atol=1e-7)
    assert_deriv(npfunc.jacrev(lambda s: blp_inversion_rebind(s, xb))(s_obs),
                 fd(lambda s: blp_inversion(s, xb), s_obs), atol=1e-7)
    xbs = RNG.random((2, 3))
    assert_same(npfunc.vmap(f)(xbs), np.stack([blp_inversion(s_obs, x) for x in xbs]))


def test_mixed_logit_fixed_and_seeded_draws():
    X = RNG.standard_normal((5, 3, 2))
    y = np.array([0, 1, 2, 1, 0])
    draws = np.random.default_rng(3).standard_normal((40, 2))
    f = lambda th: mixed_logit_ll(th, X, y, draws)
    th = np.array([0.1, 0.2, -1.0, -0.5])
    assert_same(npfunc.jit(f)(th), f(th))
    assert_same(npfunc.jit(f)(-th), f(-th))
    assert_deriv(npfunc.grad(f)(th), fd(f, th))
    ths = RNG.standard_normal((2, 4))
    assert_same(npfunc.vmap(f)(ths), _stack(f, ths))
    g = lambda th: mixed_logit_seeded(th, X, y)
    assert_same(npfunc.jit(g)(th), g(th))
    assert_same(npfunc.jit(g)(-th), g(-th))
    assert_deriv(npfunc.grad(g)(th), fd(g, th))
    assert_deriv(npfunc.jit(npfunc.grad(g))(th), fd(g, th))


# ==== optimal transport =====================================================================


def sinkhorn_log(C, a, b, eps=0.2, n_iter=25):
    """Entropic OT in log space; returns the transport cost <P, C>."""
    f = np.zeros_like(a)
    g = np.zeros_like(b)
    for _ in range(n_iter):
        f = eps * np.log(a) - eps * sps.logsumexp((g[None, :] - C) / eps, axis=1)
        g = eps * np.log(b) - eps * sps.logsumexp((f[:, None] - C) / eps, axis=0)
    P = np.exp((f[:, None] + g[None, :] - C) / eps)
    return np.sum(P * C)


def sinkhorn_scaling(C, a, b, eps=0.5, n_iter=40):
    """Classic Sinkhorn with scaling vectors updated in place."""
    K = np.exp(-C / eps)
    u = np.ones_like(a)
    v = np.ones_like(b)
    for _ in range(n_iter):
        u[:] = a / (K @ v)
        v[:] = b / (K.T @ u)
    return u[:, None] * K * v[None, :]


def sinkhorn_scaling_like(C, a, b, eps=0.5, n_iter=40):
    """The same with the scaling vectors made like the kernel (the refusal's fix)."""
    K = np.exp(-C / eps)
    u = np.ones(a.shape, like=K)
    v = np.ones(b.shape, like=K)
    for _ in range(n_iter):
        u[:] = a / (K @ v)
        v[:] = b / (K.T @ u)
    return u[:, None] * K * v[None, :]


def test_sinkhorn_log_space():
    C = RNG.random((3, 4))
    a, b = np.full(3, 1 / 3), np.full(4, 0.25)
    f = lambda C: sinkhorn_log(C, a, b)
    assert_same(npfunc.jit(f)(C), f(C))
    assert_same(npfunc.jit(f)(2 * C), f(2 * C))
    assert_deriv(npfunc.grad(f)(C), fd(f, C))
    Cs = RNG.random((2, 3, 4))
    assert_same(npfunc.vmap(f)(Cs), _stack(f, Cs))
    # in the marginals (a simplex direction), forward mode
    g = lambda a: sinkhorn_log(C, a, b)
    t = np.array([1.0, -0.5, -0.5])
    _, dt = npfunc.jvp(g, (a,), (t,))
    assert_deriv(dt, fd(g, a) @ t)


def test_sinkhorn_scaling_inplace():
    C = RNG.random((3, 4))
    a, b = np.full(3, 1 / 3), np.full(4, 0.25)
    with pytest.raises(ERR.ConcretizationError, match=r"like=x"):
        npfunc.jacrev(lambda C: sinkhorn_scaling(C, a, b))(C)
    f = lambda C: sinkhorn_scaling_like(C, a, b)
    assert_same(f(C), sinkhorn_scaling(C, a, b))
    assert_same(npfunc.jit(f)(C), sinkhorn_scaling(C, a, b))
    assert_same(npfunc.jit(f)(C ** 2), sinkhorn_scaling(C ** 2, a, b))
    assert_deriv(npfunc.jacrev(f)(C), fd(lambda C: sinkhorn_scaling(C, a, b), C))
    Cs = RNG.random((2, 3, 4))
    assert_same(npfunc.vmap(f)(Cs), _stack(lambda C: sinkhorn_scaling(C, a, b), Cs))
    P = f(C)
    np.testing.assert_allclose(P.sum(axis=0), b, rtol=1e-12)
