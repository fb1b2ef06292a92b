"""The adjoint method: the VJP of an ODE solution in ``y0`` and the parameters.

For cotangents ``gᵢ`` on the outputs ``y(tᵢ)`` the adjoint ``a`` runs
backwards from the last output time to ``t0``: ``a' = -aᵀ f_y``,
``q' = -aᵀ f_p`` (``q`` accumulates the parameter gradient), and ``a`` jumps
by ``gᵢ`` at each output time; then ``∂L/∂y0 = a(t0)``, ``∂L/∂p = q(t0)``.
Each segment is one backward SciPy solve with the forward's method and
tolerances (rtol as given, the smallest atol), ``y(t)`` read from the
forward's dense solution (the residual kept on the tape; ``odeint`` keeps
none, so each interval is re-solved forward from its stored start).  The
VJP ``aᵀ f_(y,p)`` is npfunc's; implicit methods get the exact Jacobian of
the adjoint system from npfunc.

``adjoint_primitive`` is linear in the cotangents; its own derivatives (for
``hessian``, ``grad(grad)``, ``jvp(grad)``) are written with the forward
primitive: ``d/dx [J(x)ᵀ g] w = ∇ₓ ⟨g, J(x) w⟩`` is a reverse pass through
the forward-sensitivity system, which is again an ODE solve with an
adjoint.  Cotangent batches (``jacrev``, ``vmap(vjp_fn)``) integrate all
adjoints in one solve; a batch of forward solves (``vmap(grad)``) uses the
stacked forward solve it already made.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.context import describe_stack
from ...core.primitive import Primitive
from ...core.values import shape_of
from ...core.zeros import add_any, zero
from ..optimize._implicit import batch_size, is_float_leaf, mapped
from ._ode import OdeProblem, OdeSolveError, ode_primitive, record_of, stack


def adjoint_primitive(problem: OdeProblem, grid: bool, nc: int) -> Primitive:
    """Operands ``(g, y0, t0, tf, t_eval, *params, box)``; outputs ``(a(t0), q(t0) per float param)``.

    ``g`` has ``nc`` leading cotangent-batch axes, and so do the outputs."""

    def floats_of(ps):
        return [i for i, p in enumerate(ps) if is_float_leaf(p)]

    def impl(g, y0, t0, tf, t_eval, *rest):
        ps, b = rest[:-1], rest[-1]
        g = np.asarray(g, dtype=float)
        cb = g.shape[:nc]
        c = math.prod(cb)
        floats = floats_of(ps)
        a0, qs = integrate(problem, record_of(b), g.reshape((c,) + g.shape[nc:]), ps, floats, float(t0))
        out = [a0.reshape(cb + (problem.n,))]
        out += [q.reshape(cb + tuple(np.shape(ps[i]))) for q, i in zip(qs, floats)]
        return tuple(out)

    def call(*x):
        return ode_primitive(problem, grid).bind(*x)[0]

    def jvp(primals, tangents, out):
        g, x, b = primals[0], primals[1:-1], primals[-1]
        tg, tx = tangents[0], tangents[1:-1]
        result = [zero] * len(out)
        if tg is not zero:
            result = list(adjoint_primitive(problem, grid, nc).bind(tg, *x, b))
        live = [k for k, t in enumerate(tx) if t is not zero]
        if live:
            second = _second_order(call, x, live, [tx[k] for k in live], g, nc)
            result = [add_any(r, s) for r, s in zip(result, second)]
        return tuple(result)

    def vjp(w, primals, out, needs):
        from ...primitives.elementwise.arithmetic import zeros_like

        g, x = primals[0], primals[1:-1]
        w = [zeros_like(o) if c is zero else c for c, o in zip(w, out)]
        ct_g, ct_x = _transpose(call, x, floats_of(x[4:]), g, w, nc)
        result = [ct_g if needs[0] else zero] + [c if need else zero for c, need in zip(ct_x, needs[1:-1])]
        return tuple(result + [zero])

    def batch(vals, dims):
        from ...interpreters.batching import materialize_front
        from ...primitives.indexing.gather import getitem
        from ...primitives.shape.basic import moveaxis

        g, x, b = vals[0], list(vals[1:-1]), vals[-1]
        dg, dx, db = dims[0], list(dims[1:-1]), dims[-1]
        size = batch_size(vals, dims)
        if db is None and all(d is None for d in dx):  # a batch of cotangents for one solve
            outs = adjoint_primitive(problem, grid, nc + 1).bind(materialize_front(g, dg, size), *x, b)
            return outs, (0,) * len(outs)
        stacked, x_s, size = stack(problem, x, dx)
        if db is not None:  # the stacked forward solve this batch made (a slice, squeezed: an integer index
            # of an object array is the record itself, not the 0-d box jit's recording needs)
            b_s = np.squeeze(getitem(b, (slice(None),) * db + (slice(0, 1),)), axis=db)
        else:  # pragma: no cover - a batched forward always leaves a batched record
            b_s = ode_primitive(stacked, grid).bind(*x_s)[1]
        n = problem.n
        g_f = moveaxis(materialize_front(g, dg, size), 0, nc + 1)  # (*cb, T, B, n)
        shape = tuple(shape_of(g_f))
        g_s = np.reshape(g_f, shape[:nc + 1] + (size * n,))
        outs = adjoint_primitive(stacked, grid, nc).bind(g_s, *x_s, b_s)
        a0 = np.reshape(outs[0], shape[:nc] + (size, n))
        res = [moveaxis(a0, nc, 0)] + [moveaxis(q, nc, 0) for q in outs[1:]]
        return tuple(res), (0,) * len(res)

    return Primitive("ode_adjoint", impl, jvp=jvp, vjp=vjp, batch=batch, multiple_results=True, register=False)


def _float_operands(x):
    """Indices of the forward operands that carry derivatives (t_eval may be None)."""
    return [k for k, v in enumerate(x) if v is not None and is_float_leaf(v)]


def _partial(call, x, idx):
    def f(*sel):
        full = list(x)
        for k, v in zip(idx, sel):
            full[k] = v
        return call(*full)

    return f


def _second_order(call, x, live, t_live, g, nc):
    """``d/dε [J(x + ε t)ᵀ g]`` for the adjoint's outputs (``y0`` and float params)."""
    from ...api.forward import jvp
    from ...api.reverse import vjp

    outs = [0] + [4 + i for i, p in enumerate(x[4:]) if is_float_leaf(p)]  # y0 and float params

    def tangent_ys(*sel):
        xs = list(x)
        for k, v in zip(outs, sel):
            xs[k] = v
        return jvp(_partial(call, xs, live), tuple(xs[k] for k in live), tuple(t_live))[1]

    _, pull = vjp(tangent_ys, *[x[k] for k in outs])
    return list(mapped(lambda gc: pull(gc), nc)(g) if nc else pull(g))


def _transpose(call, x, float_params, g, w, nc):
    """(J w, ∇ₓ ⟨g, J(x) w⟩) for the adjoint's cotangent ``w`` (shaped like its outputs)."""
    from ...api.forward import jvp
    from ...api.reverse import vjp

    ins = [0] + [4 + i for i in float_params]
    idx = _float_operands(x)

    def per(gc, *wc):
        def tangent_ys(*xf):
            xs = list(x)
            for k, v in zip(idx, xf):
                xs[k] = v
            return jvp(_partial(call, xs, ins), tuple(xs[k] for k in ins), tuple(wc))[1]

        jw, pull = vjp(tangent_ys, *[x[k] for k in idx])
        return (jw,) + tuple(pull(gc))

    out = mapped(per, nc)(g, *w) if nc else per(g, *w)
    ct_g, cts = out[0], out[1:]
    if nc:
        cts = [c.sum(axis=tuple(range(nc))) for c in cts]
    ct_x = [zero] * len(x)
    for k, c in zip(idx, cts):
        ct_x[k] = c
    return ct_g, ct_x


# ---- the backward integration on plain values -----------------------------------------------

def integrate(problem: OdeProblem, rec, g, ps, floats, t0: float):
    """``(a(t0), [q_i(t0)])`` for ``c`` cotangents ``g`` of shape ``(c, T, n)``."""
    import scipy.integrate as si

    from ...api.jacobians import jacfwd
    from ...api.reverse import vjp
    from ...api.vmap import vmap
    from .._replay import replayed

    s = problem.settings
    n, rhs = problem.n, problem.rhs
    c = g.shape[0]
    pf = [np.asarray(ps[i], dtype=float) for i in floats]
    sizes = [p.size for p in pf]
    p_tot = sum(sizes)
    width = n + p_tot
    state = {"seg": None}

    def f(t, y, *sel):
        full = list(ps)
        for i, v in zip(floats, sel):
            full[i] = v
        return rhs(t, y, *full)

    def cotangents(t, y, a, *p):  # aᵀ f_(y, p) for the c adjoints, as one flat row each
        _, pull = vjp(lambda y, *p: f(t, y, *p), y, *p)
        cts = pull(a[0]) if c == 1 else vmap(pull)(a)
        return np.concatenate([np.reshape(cts[0], (c, n))] + [np.reshape(ct, (c, -1)) for ct in cts[1:]], axis=1)

    def jacobian(t, y, *p):
        jy, *jp = jacfwd(lambda y, *p: f(t, y, *p), argnums=tuple(range(1 + len(p))))(y, *p)
        return jy, jp

    fast_cts, fast_jac = replayed(cotangents), replayed(jacobian)

    def adj_rhs(t, z):
        y = np.asarray(state["seg"](t), dtype=float)
        a = z.reshape(c, width)[:, :n]
        return -np.asarray(fast_cts(np.float64(t), y, a, *pf)).ravel()

    def adj_jac(t, z):
        jy, jp = fast_jac(np.float64(t), np.asarray(state["seg"](t), dtype=float), *pf)
        block = np.zeros((width, width))
        block[:n, :n] = -np.asarray(jy).T
        if jp:
            block[n:, :n] = -np.concatenate([np.reshape(j, (n, -1)) for j in jp], axis=1).T
        return np.kron(np.eye(c), block) if c > 1 else block

    times = rec.t
    z = np.zeros((c, width))
    for i in range(len(times) - 1, -1, -1):
        z[:, :n] += g[:, i]
        hi, lo = times[i], (times[i - 1] if i > 0 else t0)
        if hi == lo:
            continue
        state["seg"] = rec.dense(i)
        if s.family == "ivp":
            extra = {"jac": adj_jac} if s.method in ("Radau", "BDF", "LSODA") else {}
            res = si.solve_ivp(adj_rhs, (hi, lo), z.ravel(), method=s.method, rtol=s.rtol, atol=s.scalar_atol(),
                               **extra)
            if res.status < 0:
                raise OdeSolveError(f"{describe_stack()}: the adjoint solve failed ({res.message})")
            z = res.y[:, -1].reshape(c, width)
        else:
            out, info = si.odeint(adj_rhs, z.ravel(), [hi, lo], Dfun=adj_jac, tfirst=True, rtol=s.rtol,
                                  atol=s.scalar_atol(), full_output=True)
            if info["message"] != "Integration successful.":
                raise OdeSolveError(f"{describe_stack()}: the adjoint solve failed ({info['message']})")
            z = out[-1].reshape(c, width)
    qs, start = [], n
    for size in sizes:
        qs.append(z[:, start:start + size])
        start += size
    return z[:, :n], qs
