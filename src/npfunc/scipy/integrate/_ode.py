"""The ODE primitive: SciPy's solve forward, sensitivities for JVPs, adjoints for VJPs.

An ``OdeProblem`` is a right-hand side ``rhs(t, y, *params)`` (flat ``y``,
written with NumPy functions) with SciPy's settings.  ``ode_primitive``
makes a per-call primitive with operands ``(y0, t0, tf, t_eval, *params)``
(``t_eval`` None: SciPy's own step grid) and outputs ``(ys, box)``:
``ys[i]`` is the solution at the i-th output time and ``box`` a 0-d object
array holding the plain solve (``OdeRecord``: dense solution, counts), kept
on the tape as the residual of the adjoint.

* JVP: forward sensitivities, one SciPy solve of ``[y, s]`` with
  ``s' = f_y s + f_p ṗ``, ``s(t0) = ẏ0 - f(t0, y0) ṫ0``, plus ``f(tᵢ, yᵢ) ṫᵢ``
  for moving output times.  The augmented system is again an ``OdeProblem``
  bound through this primitive, so every higher derivative follows.
* VJP: the adjoint method (``_adjoint.py``) for ``y0`` and the parameters,
  closed formulas (``f`` at the end points) for the times.
* vmap: one SciPy solve of the stacked system (``B*n`` states, the batch's
  parameters in front); its step control is shared by the batch.
"""
from __future__ import annotations

import numpy as np

from ...core.context import describe_stack
from ...core.errors import NpfuncError
from ...core.primitive import Primitive
from ...core.tracer import Tracer
from ...core.values import shape_of
from ...core.zeros import zero
from ..optimize._implicit import batch_size, is_float_leaf

IMPLICIT = ("Radau", "BDF", "LSODA")


class OdeSolveError(NpfuncError, RuntimeError):
    """SciPy's solver failed inside a transform, so there is no solution to differentiate."""


class UnsupportedOdeError(NpfuncError, NotImplementedError):
    """An ODE setting npfunc cannot differentiate or batch."""


class OdeSettings:
    """The solver family (``"ivp"`` or ``"odeint"``), method, tolerances and
    forward-only options (first_step, max_step, jac, jac_sparsity, lband ...)."""

    def __init__(self, family: str, method: str, rtol, atol, options: dict) -> None:
        self.family, self.method, self.rtol, self.atol, self.options = family, method, rtol, atol, dict(options)

    def replace(self, **changes) -> "OdeSettings":
        new = OdeSettings(self.family, self.method, self.rtol, self.atol, self.options)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def scalar_atol(self) -> float:
        return float(np.min(self.atol))

    def implicit(self) -> bool:
        return self.family == "odeint" or self.method in IMPLICIT


class UserCallable:
    """A user's ``jac``/``Dfun``: SciPy calls it with the plain values of the
    user's ``args`` (rebuilt from the solve's plain parameters)."""

    def __init__(self, fn, rebuild_args, order: str = "ty") -> None:
        self.fn, self.rebuild_args, self.order = fn, rebuild_args, order

    def bind(self, params):
        fn, args = self.fn, self.rebuild_args(params)
        if self.order == "ty":
            return lambda t, y: fn(t, y, *args)
        return lambda t, y: fn(y, t, *args)


class OdeProblem:
    """``rhs(t, y, *params)`` with its settings; ``exact_jac`` lets implicit
    methods use npfunc's Jacobian (for the systems npfunc derives itself)."""

    def __init__(self, rhs, n: int, settings: OdeSettings, cell: dict, exact_jac: bool = False,
                 batch: int = 1, derived: bool = False) -> None:
        self.rhs, self.n, self.settings, self.cell = rhs, n, settings, cell
        self.exact_jac, self.batch, self.derived = exact_jac, batch, derived

    def plain_rhs(self, params):
        """The right-hand side for SciPy.  The user's own is called as written;
        the systems npfunc derives (sensitivities, stacks) are replayed."""
        rhs = self.rhs
        if not self.derived:
            return lambda t, y: np.asarray(rhs(t, y, *params), dtype=float)
        from .._replay import replayed

        fast = replayed(rhs)
        return lambda t, y: np.asarray(fast(np.float64(t), np.asarray(y, dtype=float), *params), dtype=float)

    def jacobian(self, params):
        from ...api.jacobians import jacfwd
        from .._replay import replayed

        rhs = self.rhs
        fast = replayed(lambda t, y, *ps: jacfwd(lambda y: rhs(t, y, *ps))(y))
        return lambda t, y: np.asarray(fast(np.float64(t), np.asarray(y, dtype=float), *params))

    def solve(self, y0, t0: float, tf: float, t_eval, params) -> "OdeRecord":
        import scipy.integrate as si

        s = self.settings
        f = self.plain_rhs(params)
        opts = {k: v.bind(params) if isinstance(v, UserCallable) else v for k, v in s.options.items()}
        if self.exact_jac and s.implicit():
            opts.pop("jac_sparsity", None)
            opts["Dfun" if s.family == "odeint" else "jac"] = self.jacobian(params)
        if s.family == "ivp":
            res = si.solve_ivp(f, (t0, tf), y0, method=s.method, t_eval=t_eval, dense_output=True, rtol=s.rtol,
                               atol=s.atol, **opts)
            if res.status < 0 or (t_eval is not None and res.y.shape[1] != len(t_eval)):
                raise OdeSolveError(f"{describe_stack()}: solve_ivp failed ({res.message}); there is no "
                                    "solution to differentiate. Check the problem and the tolerances.")
            return OdeRecord(self, res.y.T.copy(), res.t, res.sol, res, y0, t0, params)
        ys, info = si.odeint(f, y0, t_eval, tfirst=True, rtol=s.rtol, atol=s.atol, full_output=True, **opts)
        if info["message"] != "Integration successful.":
            raise OdeSolveError(f"{describe_stack()}: odeint failed ({info['message']}); there is no solution "
                                "to differentiate. Check the problem and the tolerances (mxstep, rtol, atol).")
        return OdeRecord(self, ys, np.asarray(t_eval, dtype=float), None, info, y0, t0, params)


class OdeRecord:
    """One plain solve: output values and times, the dense solution, SciPy's report."""

    __slots__ = ("problem", "ys", "t", "sol", "report", "y0", "t0", "params", "_segments")

    def __init__(self, problem, ys, t, sol, report, y0, t0, params) -> None:
        self.problem, self.ys, self.t, self.sol, self.report = problem, ys, t, sol, report
        self.y0, self.t0, self.params = y0, t0, params
        self._segments: dict = {}

    def dense(self, i: int):
        """y(t) on the i-th output interval [t[i-1], t[i]] (i = 0: [t0, t[0]])."""
        if self.sol is not None:
            return self.sol
        seg = self._segments.get(i)
        if seg is None:  # odeint keeps no interpolant: re-solve the interval from its stored start
            import scipy.integrate as si

            s = self.problem.settings
            lo, y_lo = (self.t0, self.y0) if i == 0 else (self.t[i - 1], self.ys[i - 1])
            res = si.solve_ivp(self.problem.plain_rhs(self.params), (lo, self.t[i]), y_lo, method="LSODA",
                               dense_output=True, rtol=s.rtol, atol=s.atol)
            seg = self._segments[i] = res.sol
        return seg


def box(record) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = record
    return out


def record_of(b) -> OdeRecord:
    return np.asarray(b).flat[0]


def _tracer_chain_is_plain(x) -> bool:
    from ...core.tracer import PrimalTracer

    while isinstance(x, Tracer):
        if not isinstance(x, PrimalTracer):
            return False
        x = x.primal
    return True


def check_grid_mode(values) -> None:
    """SciPy's step grid is a value, not a shape: vmap and jit need fixed output times."""
    for v in values:
        if not _tracer_chain_is_plain(v):
            raise UnsupportedOdeError(
                f"{describe_stack()}: solve_ivp without t_eval returns SciPy's own step grid, whose length "
                "depends on the values; under vmap or jit give t_eval (the times to return).")


def output_times(t0, tf, t_eval, record):
    """The output times as a function of the operands (grid: first t0, last tf, interior fixed)."""
    if t_eval is not None:
        return t_eval
    interior = np.asarray(record.t[1:-1], dtype=float)
    return np.concatenate([np.reshape(t0, (1,)), interior, np.reshape(tf, (1,))])


def rhs_at(problem: OdeProblem, ts, ys, params):
    """``f(tᵢ, yᵢ)`` for every output time (vectorised with npfunc's vmap)."""
    from ...api.vmap import vmap

    return vmap(problem.rhs, in_dims=(0, 0) + (None,) * len(params))(ts, ys, *params)


# ---- the primitive ----------------------------------------------------------------------------

def ode_primitive(problem: OdeProblem, grid: bool) -> Primitive:
    def impl(y0, t0, tf, t_eval, *params):
        rec = problem.solve(np.asarray(y0, dtype=float), float(t0), float(tf),
                            None if t_eval is None else np.asarray(t_eval, dtype=float), params)
        problem.cell["record"] = rec
        return rec.ys, box(rec)

    def jvp(primals, tangents, out):
        from ...primitives.elementwise.arithmetic import zeros_like

        y0, t0, tf, t_eval, *ps = primals
        ty0, tt0, ttf, tte, *tps = tangents
        ys, b = out
        rec = record_of(b) if grid else None
        times = output_times(t0, tf, t_eval, rec)
        live = [i for i, t in enumerate(tps) if t is not zero and is_float_leaf(ps[i])]
        aug = tangent_problem(problem, live)
        s0 = zeros_like(y0) if ty0 is zero else ty0
        if tt0 is not zero:
            s0 = s0 - problem.rhs(t0, y0, *ps) * tt0
        z0 = np.concatenate([y0, s0])
        zs, _ = ode_primitive(aug, False).bind(z0, t0, tf, times, *ps, *[tps[i] for i in live])
        s = zs[:, problem.n:]
        if grid:
            t_times = None if tt0 is zero and ttf is zero else np.concatenate([
                np.reshape(zeros_like(t0) if tt0 is zero else tt0, (1,)), np.zeros(len(rec.t) - 2),
                np.reshape(zeros_like(tf) if ttf is zero else ttf, (1,))])
        else:
            t_times = None if tte is zero else tte
        if t_times is not None:
            s = s + rhs_at(problem, times, ys, ps) * t_times[:, None]
        return s, zero

    def vjp(g, primals, out, needs):
        from ._adjoint import adjoint_primitive

        g_ys = g[0]
        y0, t0, tf, t_eval, *ps = primals
        ys, b = out
        result = [zero] * len(primals)
        if g_ys is zero:
            return tuple(result)
        floats = [i for i, p in enumerate(ps) if is_float_leaf(p)]
        if needs[0] or needs[1] or any(needs[4 + i] for i in floats):
            core = adjoint_primitive(problem, grid, 0).bind(g_ys, *primals, b)
            a0 = core[0]
            result[0] = a0
            for i, c in zip(floats, core[1:]):
                result[4 + i] = c
            if needs[1]:
                result[1] = -(a0 * problem.rhs(t0, y0, *ps)).sum()
        if needs[1] or needs[2] or needs[3]:
            rec = record_of(b) if grid else None
            g_t = (g_ys * rhs_at(problem, output_times(t0, tf, t_eval, rec), ys, ps)).sum(axis=1)
            if grid:
                result[1] = g_t[0] if result[1] is zero else result[1] + g_t[0]
                result[2] = g_t[-1]
            else:
                result[3] = g_t
        return tuple(r if need else zero for r, need in zip(result, needs))

    def batch(vals, dims):
        if grid:
            raise UnsupportedOdeError(
                f"{describe_stack()}: solve_ivp without t_eval cannot run under vmap (each element would "
                "have its own step grid); give t_eval.")
        stacked, x_s, size = stack(problem, vals, dims)
        ys_s, b_s = ode_primitive(stacked, False).bind(*x_s)
        t_len = shape_of(ys_s)[0]
        ys = np.reshape(ys_s, (t_len, size, problem.n))
        return (ys, batched_box(b_s, size)), (1, 0)

    return Primitive("ode_solve", impl, jvp=jvp, vjp=vjp, batch=batch, multiple_results=True, register=False)


def batched_box(b, size: int):
    """The stacked solve's record once per batch element (a batched residual)."""
    from ...interpreters.batching import materialize_front

    return materialize_front(b, None, size)


def stack(problem: OdeProblem, vals, dims):
    """``(stacked problem, its operands, batch size)`` for a batch of one problem."""
    from ...interpreters.batching import materialize_front

    y0, t0, tf, t_eval, *ps = vals
    d_y0, d_t0, d_tf, d_te, *d_ps = dims
    if d_t0 is None and d_tf is None and d_te is not None:  # only the output times: often sol.sol(t) at a
        raise UnsupportedOdeError(                            # time vmap or jacfwd batches (a root of brentq)
            f"{describe_stack()}: the output times of this ODE solve are batched (t_eval, or t in sol.sol(t): "
            "brentq on the dense output batches its root time under vmap and jacfwd), and one stacked solve "
            "needs one time axis. Give output times that do not depend on the mapped values; grad, jacrev, jvp "
            "and jit evaluate sol.sol at a computed time.")
    if d_t0 is not None or d_tf is not None or d_te is not None:
        raise UnsupportedOdeError(
            f"{describe_stack()}: vmap over the time span or the output times of an ODE solve is not "
            "supported (one stacked solve needs one time axis); map over y0, args or closed-over values.")
    size = batch_size(vals, dims)
    n = problem.n
    y0_s = np.reshape(materialize_front(y0, d_y0, size), (size * n,))
    ps_s = [materialize_front(p, d, size) for p, d in zip(ps, d_ps)]
    return stacked_problem(problem, size), [y0_s, t0, tf, t_eval] + ps_s, size


def stacked_problem(problem: OdeProblem, size: int) -> OdeProblem:
    from ...api.vmap import vmap

    n = problem.n
    rhs = problem.rhs

    def rhs_s(t, y, *ps):
        mapped = vmap(rhs, in_dims=(None, 0) + (0,) * len(ps))
        return np.reshape(mapped(t, np.reshape(y, (size, n)), *ps), (size * n,))

    s = problem.settings
    opts = {k: v for k, v in s.options.items() if k not in ("jac", "Dfun", "jac_sparsity", "col_deriv")}
    if s.family == "ivp" and s.method in ("Radau", "BDF"):
        import scipy.sparse as sp

        block = s.options.get("jac_sparsity")
        block = np.ones((n, n)) if block is None else block
        opts["jac_sparsity"] = sp.block_diag([block] * size, format="csr")
    elif s.family == "ivp" and s.method == "LSODA" or s.family == "odeint":
        lo, hi = ("lband", "uband") if s.family == "ivp" else ("ml", "mu")
        opts[lo] = s.options.get(lo, n - 1) if s.options.get(lo) is not None else n - 1
        opts[hi] = s.options.get(hi, n - 1) if s.options.get(hi) is not None else n - 1
    atol = np.tile(s.atol, size) if np.ndim(s.atol) else s.atol
    return OdeProblem(rhs_s, size * n, s.replace(atol=atol, options=opts), problem.cell, exact_jac=False,
                      batch=size, derived=True)


def tangent_problem(problem: OdeProblem, live) -> OdeProblem:
    """The forward-sensitivity system ``[y, s]`` for the parameters in ``live``."""
    from ...api.forward import jvp

    n, rhs = problem.n, problem.rhs

    def rhs_aug(t, z, *args):
        k = len(args) - len(live)
        ps, tps = list(args[:k]), args[k:]
        y, s = z[:n], z[n:]

        def f(y, *sel):
            full = list(ps)
            for i, v in zip(live, sel):
                full[i] = v
            return rhs(t, y, *full)

        out, t_out = jvp(f, (y,) + tuple(ps[i] for i in live), (s,) + tuple(tps))
        return np.concatenate([out, t_out])

    s = problem.settings
    opts = {k: v for k, v in s.options.items() if k not in ("jac", "Dfun", "jac_sparsity", "lband", "uband",
                                                            "ml", "mu", "col_deriv")}
    atol = np.concatenate([s.atol, s.atol]) if np.ndim(s.atol) else s.atol
    return OdeProblem(rhs_aug, 2 * n, s.replace(atol=atol, options=opts), {}, exact_jac=True, derived=True)
