"""Fitting an ODE model to data: SciPy's solvers, differentiated by npfunc.

A damped oscillator ``y'' = -k y - c y'`` with unknown stiffness ``k`` and
damping ``c`` is observed at a few times, with noise.  The loss integrates
the model with ``scipy.integrate.solve_ivp`` -- called as SciPy code, no
edits -- and ``scipy.optimize.minimize`` fits ``(k, c)`` with the gradient
npfunc computes: one forward and one adjoint SciPy solve per gradient
(docs/solvers.md), checked here against finite differences.  Then the
sensitivity of the fitted trajectory to each parameter is one ``jacfwd``.

    python examples/ode_fit.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import integrate, optimize

import npfunc

TRUE = np.array([3.0, 0.4])  # stiffness k, damping c
Y0 = np.array([1.0, 0.0])


def oscillator(t, y, k, c):
    return np.stack([y[1], -k * y[0] - c * y[1]])


def trajectory(p, t):
    """Position at times ``t`` for parameters ``p = (k, c)``."""
    sol = integrate.solve_ivp(oscillator, (0.0, float(t[-1])), Y0, t_eval=t, args=(p[0], p[1]),
                              rtol=1e-8, atol=1e-10)
    return sol.y[0]


def main(small: bool = False) -> dict:
    n_obs = 15 if small else 40
    rng = np.random.default_rng(0)
    t_obs = np.linspace(0.0, 6.0, n_obs)
    data = trajectory(TRUE, t_obs) + 0.05 * rng.standard_normal(n_obs)

    def loss(p):
        return np.mean((trajectory(p, t_obs) - data) ** 2)

    p0 = np.array([2.0, 0.1])
    # the gradient is right: central differences of the plain loss
    g = npfunc.grad(loss)(p0)
    fd = np.array([(loss(p0 + 1e-6 * e) - loss(p0 - 1e-6 * e)) / 2e-6 for e in np.eye(2)])
    fd_error = float(np.max(np.abs(g - fd)) / np.max(np.abs(fd)))
    assert fd_error < 1e-4, f"adjoint gradient differs from finite differences ({fd_error:.1e})"

    history = [float(loss(p0))]
    start = time.perf_counter()
    fit = optimize.minimize(loss, p0, jac=npfunc.grad(loss), method="BFGS",
                            callback=lambda p: history.append(float(loss(p))))
    fit_time = time.perf_counter() - start
    assert fit.success and np.allclose(fit.x, TRUE, atol=0.15), fit

    t_fine = np.linspace(0.0, 6.0, 200)
    sensitivity = npfunc.jacfwd(trajectory)(fit.x, t_fine)  # d y(t) / d (k, c), shape (200, 2)
    print(f"damped oscillator, {n_obs} noisy observations; true (k, c) = {TRUE}")
    print(f"  adjoint gradient vs finite differences: rel. error {fd_error:.1e}")
    print(f"  BFGS with npfunc's gradient: {fit.nit} iterations, {fit.njev} gradients, {fit_time:.2f} s; "
          f"fit (k, c) = {np.round(fit.x, 3)}, loss {history[0]:.3f} -> {history[-1]:.4f}")
    return {"t_obs": t_obs, "data": data, "t": t_fine, "initial": trajectory(p0, t_fine),
            "fitted": trajectory(fit.x, t_fine), "truth": trajectory(TRUE, t_fine), "p0": p0,
            "fit": fit.x, "history": history, "sensitivity": sensitivity, "fd_error": fd_error}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer observations (a quick check)")
    main(small=parser.parse_args().small)
