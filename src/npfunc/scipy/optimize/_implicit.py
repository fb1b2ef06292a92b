"""Derivatives of solutions from the implicit function theorem.

A solver returns ``x*`` with ``F(x*, θ) = 0`` (a root, a stationary point,
a fixed point).  Its forward computation is SciPy's; its derivative is
``dx*/dθ = -(∂F/∂x)⁻¹ ∂F/∂θ`` at the solution, whatever the solver did to
get there.  ``implicit_solution`` builds it from two pieces:

* a per-call *solve primitive*: SciPy on plain values, and under ``vmap``
  one SciPy solve of the stacked problem (every operand gets the batch axes
  in front, so nested vmaps stack again);
* a ``custom_jvp`` whose rule is the theorem: ``F_θ t`` by npfunc's ``jvp``
  and one ``linear_solve`` with ``∂F/∂x`` given as a function (a JVP of
  ``F``), so reverse mode transposes it into one solve with ``(∂F/∂x)ᵀ``.

``linear_solve`` is itself a primitive (rules after ``jax.lax.custom_linear_solve``):
dense (``np.linalg.solve``) up to ``DENSE_MAX`` unknowns per problem,
matrix-free ``scipy.sparse.linalg.gmres`` above, differentiable in the
right-hand side and in the operands of the matrix, and batched by stacking.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from ...api.custom import custom_jvp
from ...core.context import describe_stack
from ...core.errors import NpfuncError
from ...core.primitive import Primitive
from ...core.tracer import Tracer
from ...core.values import dtype_of, shape_of
from ...core.zeros import zero
from ...interpreters.batching import materialize_front

#: Problems with at most this many unknowns solve their derivative systems densely.
DENSE_MAX = 500
GMRES_RTOL = 1e-12


class NonConvergedError(NpfuncError, RuntimeError):
    """A solver did not converge, so the derivative of its result is undefined."""


class UnsupportedSolverError(NpfuncError, NotImplementedError):
    """A solver setting that npfunc cannot differentiate or batch."""


def is_float_leaf(x) -> bool:
    """A leaf that carries derivatives: a floating or complex array or number."""
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return dtype_of(x).kind in "fc"
    return isinstance(x, (float, complex))


def flatten_batch(x, nb: int):
    """``x`` with its ``nb`` leading batch axes merged into one."""
    if nb == 0:
        return x
    shape = tuple(shape_of(x))
    return np.reshape(x, (math.prod(shape[:nb]),) + shape[nb:])


def mapped(fn: Callable, nb: int) -> Callable:
    """``fn`` applied over ``nb`` leading batch axes of every argument (npfunc's vmap)."""
    if nb == 0:
        return fn
    from ...api.vmap import internal_vmap

    def run(*args):
        batch = tuple(shape_of(args[0]))[:nb]
        flat = [flatten_batch(a, nb) for a in args]
        out = internal_vmap(fn)(*flat)
        if isinstance(out, (tuple, list)):  # e.g. a pullback's one cotangent per primal
            return type(out)(np.reshape(o, batch + tuple(shape_of(o))[1:]) for o in out)
        return np.reshape(out, batch + tuple(shape_of(out))[1:])

    return run


def front(vals, dims, size):
    """Every value with a batch axis of ``size`` in front (broadcast where unbatched)."""
    return [materialize_front(v, d, size) for v, d in zip(vals, dims)]


def batch_size(vals, dims) -> int:
    return next(shape_of(v)[d] for v, d in zip(vals, dims) if d is not None)


# ---- linear solves with the matrix given as a function -------------------------------------

def linear_solve(matvec: Callable, b, *ops, symmetric: bool = False, nb: int = 0):
    """``z`` with ``matvec(z, *ops) == b``; ``matvec`` is linear in its first argument.

    ``b`` has ``nb`` leading batch axes and every operand has them too; the
    systems of different batch elements are independent.
    """
    return _linear_solve_primitive(matvec, symmetric, nb).bind(b, *ops)


def _transposed(matvec: Callable) -> Callable:
    def matvec_t(u, *ops):
        from ...api.reverse import vjp
        from ...primitives.elementwise.arithmetic import zeros_like

        _, pull = vjp(lambda v: matvec(v, *ops), zeros_like(u))
        return pull(u)[0]

    return matvec_t


def _linear_solve_primitive(matvec: Callable, symmetric: bool, nb: int) -> Primitive:
    apply = mapped(matvec, nb)

    def impl(b, *ops):
        b = np.asarray(b)
        if not np.any(b):
            return np.zeros_like(b)
        n = b.shape[-1]
        batch = b.shape[:-1]
        if n <= DENSE_MAX:
            from ...api.vmap import vmap

            # columns A e_j of every system at once: vmap over j
            eye = np.broadcast_to(np.eye(n, dtype=b.dtype).reshape((n,) + (1,) * len(batch) + (n,)),
                                  (n,) + batch + (n,))
            cols = np.asarray(vmap(lambda e: apply(e, *ops))(np.ascontiguousarray(eye)))
            a = np.moveaxis(cols, 0, -1)
            _check_conditioning(a)
            return np.linalg.solve(a, b[..., None])[..., 0]
        return _gmres(apply, b, ops)

    def jvp(primals, tangents, out):
        from ...api.forward import jvp as fwd

        ops = primals[1:]
        rhs = tangents[0]
        live = [i for i, t in enumerate(tangents[1:]) if t is not zero]
        if live:
            def a_of(*sel):
                full = list(ops)
                for i, v in zip(live, sel):
                    full[i] = v
                return apply(out, *full)

            _, da_z = fwd(a_of, tuple(ops[i] for i in live), tuple(tangents[1 + i] for i in live))
            rhs = -da_z if rhs is zero else rhs - da_z
        if rhs is zero:
            return zero
        return _linear_solve_primitive(matvec, symmetric, nb).bind(rhs, *ops)

    def vjp(g, primals, out, needs):
        from ...api.reverse import vjp as rev

        ops = primals[1:]
        lam = _linear_solve_primitive(matvec if symmetric else _transposed(matvec), symmetric, nb).bind(g, *ops)
        result = [lam if needs[0] else zero]
        live = [i for i in range(len(ops)) if needs[1 + i]]
        cts = [zero] * len(ops)
        if live:
            def a_of(*sel):
                full = list(ops)
                for i, v in zip(live, sel):
                    full[i] = v
                return apply(out, *full)

            _, pull = rev(a_of, *[ops[i] for i in live])
            for i, c in zip(live, pull(lam)):
                cts[i] = -c
        return tuple(result + cts)

    def batch(vals, dims):
        size = batch_size(vals, dims)
        out = _linear_solve_primitive(matvec, symmetric, nb + 1).bind(*front(vals, dims, size))
        return out, 0

    return Primitive("linear_solve", impl, jvp=jvp, vjp=vjp, batch=batch, register=False)


def _check_conditioning(a) -> None:
    """Refuse a singular (to working precision) Jacobian of the solution's equations: the
    solution is not locally unique there (a minimum with flat directions, such as the
    translations and rotations of a cluster's energy), and np.linalg.solve would raise a raw
    LinAlgError or return a derivative made of rounding errors.  (The threshold is SciPy's
    for scipy.linalg.solve's ill-conditioning warning: reciprocal condition number < eps.)"""
    n = a.shape[-1]
    eps = np.finfo(a.dtype).eps
    if a.ndim == 2 and a.dtype.kind == "f":  # LAPACK's estimate from an LU factorisation, as SciPy's
        from scipy.linalg import lapack   # solve makes it: a solve's cost, not an SVD's

        getrf, gecon = lapack.get_lapack_funcs(("getrf", "gecon"), (a,))
        with np.errstate(all="ignore"):
            lu, _, info = getrf(a)
            norm = np.abs(a).sum(axis=0).max()
            rcond, _ = gecon(lu, norm, norm="1")
        bad = info != 0 or not rcond >= eps or not np.isfinite(norm)
    else:
        with np.errstate(all="ignore"):
            s = np.linalg.svd(a, compute_uv=False)
        smax, smin = s[..., 0], s[..., -1]
        bad = np.any(~(smin > eps * smax) | ~np.isfinite(smax))
    if bad:
        raise NonConvergedError(
            f"{describe_stack()}: the linear system of an implicit derivative ({n} unknowns) is singular to "
            "working precision: the Jacobian of the equations the solution satisfies (for a minimum, the "
            "Hessian) has no inverse there, so the solution is not locally unique and its derivative is not "
            "defined (a minimum with flat directions: e.g. an energy invariant under translations and "
            "rotations). Make the solution unique (fix the free coordinates, or add a small penalty on "
            "them); for the optimal value, evaluate the objective at the solution held constant, "
            "f(npfunc.stop_gradient(res.x), *args), whose derivative in the parameters is the optimal "
            "value's (the envelope theorem) without this solve.")


def _gmres(apply, b, ops):
    import scipy.sparse.linalg as spla

    shape = b.shape
    n = b.size

    def mv(v):
        return np.asarray(apply(v.reshape(shape), *ops)).ravel()

    op = spla.LinearOperator((n, n), matvec=mv, dtype=b.dtype)
    z, info = spla.gmres(op, b.ravel(), rtol=GMRES_RTOL, atol=0.0, restart=min(n, 100), maxiter=10 * n)
    if info != 0:
        raise NonConvergedError(
            f"{describe_stack()}: the linear system of an implicit derivative ({n} unknowns) did not "
            f"converge with scipy.sparse.linalg.gmres (info={info}); the solution's Jacobian there is "
            "singular or badly conditioned.")
    return z.reshape(shape)


def one_by_one(solve: Callable) -> Callable:
    """``stacked`` for ``implicit_solution`` that solves a batch element by element with
    ``solve``, the plain program's own SciPy call: one SciPy solve of the stacked problem
    shares its trust region, line searches and stopping test across the batch, so where one
    element fails (or, on a non-convex problem, takes another way) the others end elsewhere
    than their own solves do, silently. The info is the first failed element's, else the
    first element's."""

    def stacked(x0, *params):
        xs, infos = [], []
        for i in range(x0.shape[0]):
            x, info = solve(x0[i], *[p[i] for p in params])
            xs.append(np.asarray(x, dtype=float))
            infos.append(info)
        failed = [info for info in infos if not info.get("success", True)]
        return np.stack(xs), {**(failed[0] if failed else infos[0]), "success": not failed}

    return stacked


# ---- the implicit solution --------------------------------------------------------------------

def implicit_solution(name: str, residual: Callable, solve: Callable, x0, params: Sequence,
                      stacked: Callable | None, *, symmetric: bool = False):
    """``(x, cell)``: the flat solution of ``residual(x, *params) = 0``.

    ``solve(x0, *params) -> (x, info)`` runs SciPy on plain values (``x0`` and
    ``x`` flat); ``stacked(x0, *params) -> (x, info)`` does the same for a
    batch (every argument with one leading batch axis), or is None when the
    solver cannot be batched.  ``info`` holds ``success`` and ``message``;
    the last solve's info is in ``cell["info"]``.  ``x`` is differentiable in
    every floating-point entry of ``params`` (``x0`` only starts the solve).
    """
    cell: dict = {}
    xstar = custom_jvp(lambda x0, *p: _solve_primitive(name, solve, stacked, cell, 0).bind(x0, *p))

    @xstar.defjvp
    def _ift(primals, tangents):
        from ...api.forward import jvp
        from ...primitives.elementwise.arithmetic import zeros_like

        ps = primals[1:]
        x = xstar(*primals)
        info = cell.get("info", {})
        if not info.get("success", True):
            raise NonConvergedError(
                f"{describe_stack()}: {name} did not converge ({info.get('message', '')!s}), so the "
                "derivative of its result is not defined. Fix the solve (tolerances, iterations, "
                "starting point) before differentiating it.")
        diff = [i for i, p in enumerate(ps) if is_float_leaf(p)]
        if not diff:
            return x, zeros_like(x)

        def f_of(*sel):
            full = list(ps)
            for i, v in zip(diff, sel):
                full[i] = v
            return residual(x, *full)

        _, f_t = jvp(f_of, tuple(ps[i] for i in diff), tuple(tangents[1 + i] for i in diff))
        t_x = linear_solve(_jacobian_matvec(residual), f_t, x, *ps, symmetric=symmetric)
        return x, -t_x

    return xstar(x0, *params), cell


def _jacobian_matvec(residual: Callable) -> Callable:
    def matvec(v, x, *ps):
        from ...api.forward import jvp

        return jvp(lambda x: residual(x, *ps), (x,), (v,))[1]

    return matvec


def _solve_primitive(name: str, solve: Callable, stacked: Callable | None, cell: dict, nb: int) -> Primitive:
    def impl(x0, *params):
        if nb == 0:
            x, info = solve(np.asarray(x0, dtype=float), *params)
            cell["info"] = info
            return np.asarray(x, dtype=float)
        batch = np.shape(x0)[:nb]
        x, info = stacked(np.asarray(flatten_batch(x0, nb), dtype=float), *[flatten_batch(p, nb) for p in params])
        cell["info"] = info
        x = np.asarray(x, dtype=float)
        return x.reshape(batch + x.shape[1:])

    def batch(vals, dims):
        if stacked is None:
            raise UnsupportedSolverError(
                f"{describe_stack()}: {name} with these settings cannot run under vmap (no vectorised "
                "solve of the stacked problem); see docs/solvers.md for the settings that can.")
        size = batch_size(vals, dims)
        return _solve_primitive(name, solve, stacked, cell, nb + 1).bind(*front(vals, dims, size)), 0

    return Primitive(f"{name}[solve]", impl, batch=batch, differentiable=False, register=False)
