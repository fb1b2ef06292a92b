"""npfunc.scipy.integrate.solve_ivp / odeint: SciPy's forward solve; adjoint
gradients, forward sensitivities, vmap and higher order, checked against
finite differences and against npfunc.grad through a fixed-step RK4 loop."""
import numpy as np
import pytest
import scipy.integrate as si

import npfunc
from npfunc.scipy.integrate import OdeSolveError, UnsupportedOdeError, odeint, solve_ivp
from npfunc.scipy.integrate import _ode

T_EVAL = np.linspace(0.0, 2.0, 5)
Y0 = np.array([1.0, 0.5])
K, C = np.float64(2.0), np.float64(0.3)


def oscillator(t, y, k, c):
    return np.stack([y[1], -k * y[0] - c * y[1] + 0.5 * np.sin(t)])


def rk4_loss(y0, k, c, steps=200):
    """The same quantity by a fixed-step RK4 loop in NumPy (npfunc.grad differentiates the loop)."""
    h = (T_EVAL[-1] - T_EVAL[0]) / steps
    y, t, total = y0, 0.0, (y0 ** 2).sum()
    every = steps // (len(T_EVAL) - 1)
    for i in range(1, steps + 1):
        k1 = oscillator(t, y, k, c)
        k2 = oscillator(t + h / 2, y + h / 2 * k1, k, c)
        k3 = oscillator(t + h / 2, y + h / 2 * k2, k, c)
        k4 = oscillator(t + h, y + h * k3, k, c)
        y, t = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + h
        if i % every == 0:
            total = total + (y ** 2).sum()
    return total


def loss(y0, k, c, method="RK45", rtol=1e-10, atol=1e-12):
    res = solve_ivp(oscillator, (0.0, 2.0), y0, method=method, t_eval=T_EVAL, args=(k, c), rtol=rtol, atol=atol)
    return (res.y ** 2).sum()


def fd(f, x, eps=1e-5):
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return (f(x + eps) - f(x - eps)) / (2 * eps)
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


RK4_GRADS = None


def rk4_grads():
    global RK4_GRADS
    if RK4_GRADS is None:
        RK4_GRADS = npfunc.grad(rk4_loss, argnums=(0, 1, 2))(Y0, K, C)
    return RK4_GRADS


def test_plain_calls_are_scipys():
    ours = solve_ivp(oscillator, (0.0, 2.0), Y0, args=(K, C))
    ref = si.solve_ivp(oscillator, (0.0, 2.0), Y0, args=(K, C))
    np.testing.assert_array_equal(ours.y, ref.y)
    np.testing.assert_array_equal(odeint(oscillator, Y0, T_EVAL, args=(K, C), tfirst=True),
                                  si.odeint(oscillator, Y0, T_EVAL, args=(K, C), tfirst=True))


def test_values_inside_a_transform_are_scipys():
    out, _ = npfunc.vjp(lambda y0: solve_ivp(oscillator, (0.0, 2.0), y0, t_eval=T_EVAL, args=(K, C)).y, Y0)
    np.testing.assert_array_equal(out, si.solve_ivp(oscillator, (0.0, 2.0), Y0, t_eval=T_EVAL, args=(K, C)).y)


@pytest.mark.parametrize("method,rtol", [("RK45", 1e-10), ("DOP853", 1e-10), ("RK23", 1e-7), ("Radau", 1e-8),
                                         ("BDF", 1e-9), ("LSODA", 1e-10)])
def test_adjoint_gradient_of_every_method(method, rtol):
    g = npfunc.grad(loss, argnums=(0, 1, 2))(Y0, K, C, method, rtol, rtol * 1e-2)
    tol = max(50 * rtol, 2e-7)
    for ours, ref in zip(g, rk4_grads()):
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


def test_forward_sensitivities_match_the_adjoint():
    rev = npfunc.jacrev(lambda y0, k: solve_ivp(oscillator, (0.0, 2.0), y0, t_eval=T_EVAL, args=(k, C),
                                                rtol=1e-10, atol=1e-12).y, argnums=(0, 1))(Y0, K)
    fwd = npfunc.jacfwd(lambda y0, k: solve_ivp(oscillator, (0.0, 2.0), y0, t_eval=T_EVAL, args=(k, C),
                                                rtol=1e-10, atol=1e-12).y, argnums=(0, 1))(Y0, K)
    for a, b in zip(rev, fwd):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fwd[1], fd(lambda k: solve_ivp(oscillator, (0.0, 2.0), Y0, t_eval=T_EVAL,
                                                               args=(k, C), rtol=1e-10, atol=1e-12).y, K), atol=1e-7)


def test_derivatives_in_the_times():
    def at_times(t0, t_eval, t1):
        res = solve_ivp(oscillator, (t0, t1), Y0, t_eval=t_eval, args=(K, C), rtol=1e-10, atol=1e-12)
        return res.y.sum()

    t0, te, t1 = np.float64(0.1), np.array([0.5, 1.0, 1.5]), np.float64(2.0)
    g0, ge, g1 = npfunc.grad(at_times, argnums=(0, 1, 2))(t0, te, t1)
    assert g0 == pytest.approx(fd(lambda t: at_times(t, te, t1), t0), rel=1e-6)
    np.testing.assert_allclose(ge, fd(lambda t: at_times(t0, t, t1), te), rtol=1e-6)
    assert g1 == 0.0  # output times fixed: the end of the span does not move them
    f0, fe = npfunc.jacfwd(at_times, argnums=(0, 1))(t0, te, t1)
    assert f0 == pytest.approx(g0, rel=1e-7)
    np.testing.assert_allclose(fe, ge, rtol=1e-7)

    def end_value(t1):  # no t_eval: SciPy's grid, whose last point is t1
        return solve_ivp(oscillator, (0.0, t1), Y0, args=(K, C), rtol=1e-10, atol=1e-12).y[:, -1].sum()

    assert npfunc.grad(end_value)(t1) == pytest.approx(oscillator(t1, si.solve_ivp(
        oscillator, (0.0, t1), Y0, args=(K, C), rtol=1e-10, atol=1e-12).y[:, -1], K, C).sum(), rel=1e-6)


def test_closed_over_traced_values_are_differentiated():
    def closed(k):
        return solve_ivp(lambda t, y: oscillator(t, y, k, C), (0.0, 2.0), Y0, t_eval=T_EVAL, rtol=1e-10,
                         atol=1e-12).y.sum()

    def explicit(k):
        return solve_ivp(oscillator, (0.0, 2.0), Y0, t_eval=T_EVAL, args=(k, C), rtol=1e-10, atol=1e-12).y.sum()

    assert npfunc.grad(closed)(K) == pytest.approx(npfunc.grad(explicit)(K), rel=1e-12)
    assert npfunc.jacfwd(closed)(K) == pytest.approx(npfunc.grad(explicit)(K), rel=1e-7)


def test_closure_with_control_flow_on_the_state_raises_clearly():
    def branchy(k):
        def rhs(t, y):
            return -k * y if y[0] > 0 else -y
        return solve_ivp(rhs, (0.0, 1.0), np.array([1.0]), t_eval=np.array([1.0])).y.sum()

    with pytest.raises(npfunc.api.custom.CustomRuleError, match="args="):
        npfunc.grad(branchy)(K)
    # the same function with k passed through args works (rhs called as written)
    ok = lambda k: solve_ivp(lambda t, y, k: -k * y if y[0] > 0 else -y, (0.0, 1.0), np.array([1.0]),  # noqa
                             t_eval=np.array([1.0]), args=(k,), rtol=1e-10, atol=1e-12).y.sum()
    assert npfunc.grad(ok)(K) == pytest.approx(-np.exp(-2.0), rel=1e-7)


KS = np.array([1.0, 2.0, 3.0])


def test_vmap_over_parameters_and_initial_conditions():
    batch = npfunc.vmap(lambda k: loss(Y0, k, C, rtol=1e-8, atol=1e-10))(KS)
    np.testing.assert_allclose(batch, [loss(Y0, k, C, rtol=1e-8, atol=1e-10) for k in KS], rtol=1e-6)
    y0s = np.stack([Y0, 2 * Y0])
    np.testing.assert_allclose(npfunc.vmap(lambda y0: loss(y0, K, C, "Radau", 1e-8, 1e-10))(y0s),
                               [loss(y0, K, C, "Radau", 1e-8, 1e-10) for y0 in y0s], rtol=1e-6)
    per = npfunc.vmap(npfunc.grad(lambda k: loss(Y0, k, C, rtol=1e-8, atol=1e-10)))(KS)
    np.testing.assert_allclose(per, [npfunc.grad(lambda k: loss(Y0, k, C, rtol=1e-8, atol=1e-10))(k) for k in KS],
                               rtol=1e-5)
    total = npfunc.grad(lambda ks: npfunc.vmap(lambda k: loss(Y0, k, C, rtol=1e-8, atol=1e-10))(ks).sum())(KS)
    np.testing.assert_allclose(total, per, rtol=1e-5)
    jac = npfunc.jacrev(lambda k: solve_ivp(oscillator, (0.0, 2.0), Y0, t_eval=T_EVAL, args=(k, C), rtol=1e-8,
                                            atol=1e-10).y)(K)
    np.testing.assert_allclose(jac, fd(lambda k: solve_ivp(oscillator, (0.0, 2.0), Y0, t_eval=T_EVAL, args=(k, C),
                                                           rtol=1e-10, atol=1e-12).y, K), atol=1e-6)


def test_second_order():
    f = lambda k: loss(Y0, k, C, rtol=1e-8, atol=1e-10)  # noqa: E731
    ref = fd(npfunc.grad(f), K, 1e-4)
    assert npfunc.grad(npfunc.grad(f))(K) == pytest.approx(ref, rel=1e-5)  # reverse over the adjoint
    H = npfunc.hessian(lambda y0: loss(y0, K, C, rtol=1e-8, atol=1e-10))(Y0)  # forward over the adjoint
    np.testing.assert_allclose(H, H.T, rtol=1e-6)



def test_jit_and_linearize():
    g = npfunc.grad(loss, argnums=(0, 1))(Y0, K, C)
    for a, b in zip(npfunc.jit(npfunc.grad(loss, argnums=(0, 1)))(Y0, K, C), g):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    _, lin = npfunc.linearize(lambda k: loss(Y0, k, C), K)
    assert lin(np.float64(1.0)) == pytest.approx(g[1], rel=1e-6)


def test_forward_solve_runs_once_per_gradient(monkeypatch):
    calls = []
    solve = _ode.OdeProblem.solve
    monkeypatch.setattr(_ode.OdeProblem, "solve", lambda self, *a: calls.append(self.n) or solve(self, *a))
    _, vjp_fn = npfunc.vjp(lambda k: loss(Y0, k, C), K)
    vjp_fn(np.float64(1.0))
    vjp_fn(np.float64(2.0))
    assert calls == [2]  # the adjoint reads the kept dense solution; it never solves forward again


def test_odeint():
    def ys(y0, k):
        return odeint(lambda y, t, k, c: oscillator(t, y, k, c), y0, T_EVAL, args=(k, C), rtol=1e-11, atol=1e-12)

    g = npfunc.grad(lambda y0, k: (ys(y0, k) ** 2).sum(), argnums=(0, 1))(Y0, K)
    for ours, ref in zip(g, rk4_grads()[:2]):
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    np.testing.assert_allclose(npfunc.jacfwd(ys, argnums=1)(Y0, K), npfunc.jacrev(ys, argnums=1)(Y0, K), atol=1e-7)
    np.testing.assert_allclose(npfunc.vmap(lambda k: ys(Y0, k))(KS), np.stack([ys(Y0, k) for k in KS]), rtol=1e-6)
    # the last output time moves the last value by y'(t) = -y(t)
    assert npfunc.grad(lambda t: odeint(lambda y, t: -y, Y0, t, rtol=1e-10, atol=1e-12)[-1, 0])(T_EVAL)[-1] == \
        pytest.approx(-Y0[0] * np.exp(-2.0), rel=1e-6)


def test_dense_output_is_differentiable():
    def at(k, t):
        return solve_ivp(oscillator, (0.0, 2.0), Y0, args=(k, C), dense_output=True, rtol=1e-10,
                         atol=1e-12).sol(t)[0]

    assert npfunc.grad(at)(K, np.float64(1.3)) == pytest.approx(fd(lambda k: at(k, np.float64(1.3)), K), rel=1e-6)
    assert npfunc.grad(at, argnums=1)(K, np.float64(1.3)) == pytest.approx(
        fd(lambda t: at(K, t), np.float64(1.3)), rel=1e-6)


def test_errors():
    with pytest.raises(UnsupportedOdeError, match="events"):
        npfunc.grad(lambda k: solve_ivp(oscillator, (0, 1), Y0, args=(k, C), events=lambda t, y, k, c: y[0]).y.sum())(K)
    with pytest.raises(UnsupportedOdeError, match="t_eval"):
        npfunc.vmap(lambda k: solve_ivp(oscillator, (0, 1), Y0, args=(k, C)).y.sum())(KS)
    with pytest.raises(UnsupportedOdeError, match="time span"):
        npfunc.vmap(lambda t1: solve_ivp(oscillator, (0, t1), Y0, t_eval=np.array([0.5]), args=(K, C)).y)(KS)
    with pytest.raises(OdeSolveError, match="failed"):
        npfunc.grad(lambda k: solve_ivp(lambda t, y, k: k * y ** 2, (0, 2), np.array([1.0]), args=(k,)).y.sum())(K)


def test_docs_page_examples_run():
    import doctest
    import pathlib

    page = pathlib.Path(__file__).resolve().parents[1] / "docs" / "solvers.md"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 30


def test_user_jacobian_and_float32_and_lists():
    def jac(t, y, k, c):
        return np.array([[0.0, 1.0], [-k, -c]])

    def f(k):
        return solve_ivp(oscillator, (0.0, 2.0), Y0, method="Radau", jac=jac, t_eval=list(T_EVAL), args=(k, C),
                         rtol=1e-8, atol=1e-10).y.sum()

    assert npfunc.grad(f)(K) == pytest.approx(fd(f, K), rel=1e-5)
    g32 = npfunc.grad(lambda y0: loss(y0, K, C, rtol=1e-8, atol=1e-10))(Y0.astype(np.float32))
    assert g32.dtype == np.float32
    dfun = lambda y, t, k, c: np.array([[0.0, 1.0], [-k, -c]])  # noqa: E731
    g = npfunc.grad(lambda k: odeint(lambda y, t, k, c: oscillator(t, y, k, c), Y0, T_EVAL, args=(k, C),
                                     Dfun=dfun, rtol=1e-10, atol=1e-12).sum())(K)
    assert g == pytest.approx(npfunc.grad(lambda k: odeint(lambda y, t, k, c: oscillator(t, y, k, c), Y0, T_EVAL,
                                                           args=(k, C), rtol=1e-10, atol=1e-12).sum())(K), rel=1e-6)
