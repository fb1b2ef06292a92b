"""A solver's user function ``f(x, *args)`` as a function of explicit inputs.

The arrays in ``args`` and every traced value ``f`` closes over become the
``params`` whose derivatives the implicit function theorem gives; other
leaves of ``args`` (numbers, strings, functions) stay static.  With no live
transform and nothing traced, the twins call SciPy exactly as written.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...api._common import tree_flatten, tree_unflatten
from ...api.closure import closure_convert
from ...core.context import current_stack, describe_stack
from ...core.tracer import PrimalTracer, Tracer
from ...core.values import shape_of
from ._implicit import UnsupportedSolverError


def _is_array(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic))


def _is_complex_start(x0) -> bool:
    """A complex starting point: a complex number or array, or a sequence holding one."""
    if _is_array(x0):
        return np.dtype(getattr(x0, "dtype", np.float64)).kind == "c"
    if isinstance(x0, (list, tuple)):
        return any(_is_complex_start(v) for v in x0)
    return isinstance(x0, complex)


def as_args(args) -> tuple:
    return args if isinstance(args, tuple) else (args,)


class Problem:
    """``fun(x, *args)`` with the traced inputs gathered in ``params``."""

    def __init__(self, name: str, fun: Callable, x0, args=(), example_x=None) -> None:
        complex_start = _is_complex_start(x0)
        if not _is_array(x0):  # SciPy takes any sequence for x0 (np.asarray), traced entries too
            from ...primitives.shape.joining import asarray

            x0 = asarray(x0, dtype=np.complex128 if complex_start else np.float64)
        args = as_args(args)
        self.name, self.user_fun, self.user_args = name, fun, args
        leaves, self._spec = tree_flatten(args)
        self._kinds = [_is_array(x) for x in leaves]
        self._statics = [x for x, k in zip(leaves, self._kinds) if not k]
        arrays = [x for x, k in zip(leaves, self._kinds) if k]
        self.shape = tuple(shape_of(x0))
        self.traced = bool(current_stack())  # no live transform: no value can be traced
        if self.traced:
            def call(x, *arr):
                return fun(x, *self.rebuild(arr))

            # (messages name the user's function: "brentq's function balance", not "call")
            call.__name__ = f"{name}'s function {getattr(fun, '__name__', '')}".rstrip()
            example = x0 if example_x is None else example_x
            self.fun, consts = closure_convert(call, example, *arrays)
        else:
            self.fun, consts = (lambda x, *arr: fun(x, *self.rebuild(arr))), []
        self.n_arrays = len(arrays)
        self.params = list(arrays) + list(consts)
        if self.traced and not isinstance(x0, Tracer) and not any(isinstance(p, Tracer) for p in self.params):
            # a transform is live but nothing here is traced (a jit recording calling a solver
            # on constants): SciPy as written, so the result is SciPy's (a Python float root)
            self.traced = False
        if complex_start and self.traced:
            # the roots npfunc differentiates, batches and records are real: a complex start
            # was cast to float (the imaginary part of the root silently dropped)
            raise UnsupportedSolverError(
                f"{describe_stack()}: {name}: a complex x0 is not supported on traced values (the "
                "roots npfunc differentiates, batches and records are real); solve for the real and "
                "imaginary parts as a real system of twice the size, e.g. scipy.optimize.root(lambda v: "
                "[f(v[0] + 1j * v[1]).real, f(v[0] + 1j * v[1]).imag], [x0.real, x0.imag])")

    def rebuild(self, arrays) -> tuple:
        it_a, it_s = iter(arrays), iter(self._statics)
        return tree_unflatten(self._spec, [next(it_a) if k else next(it_s) for k in self._kinds])

    def __call__(self, x, params):
        out = self.fun(x, *params)
        if isinstance(out, (list, tuple)):  # SciPy takes a sequence of values (np.asarray)
            from ...primitives.shape.joining import asarray

            out = asarray(out, dtype=np.float64)
        return out

    def user_args_of(self, params) -> tuple:
        """The user's ``args`` rebuilt from (plain) params, for user callables."""
        return self.rebuild(params[:self.n_arrays])


def plain_callable(fn: Callable | None, name: str, what: str) -> Callable | None:
    """A user callable (jac, hess, callback) made safe for SciPy inside a transform:
    a differentiated closure value is replaced by its value (the derivative of
    the solution comes from the implicit function theorem, not from it)."""
    if fn is None or not callable(fn):
        return fn

    def call(*a, **k):
        return _strip(fn(*a, **k), name, what)

    return call


def _strip(out, name: str, what: str):
    leaves, spec = tree_flatten(out)
    plain = []
    for x in leaves:
        while isinstance(x, PrimalTracer):
            x = x.primal
        if isinstance(x, Tracer):
            how = "batched by vmap" if x._interp.transform == "vmap" else f"traced by {x._interp.transform}"
            raise UnsupportedSolverError(
                f"{describe_stack()}: the {what} given to {name} computes with a value {how} (a closed-over "
                f"parameter), which SciPy's solver cannot take: it calls {what} with plain numbers. Leave {what} "
                "out: npfunc computes the derivatives it needs itself.")
        plain.append(x)
    return tree_unflatten(spec, plain)


def flat_residual(problem: Problem, post: Callable | None = None) -> Callable:
    """``residual(x_flat, *params)``: the user's function on a flat ``x``, flattened."""
    shape = problem.shape

    def residual(x, *params):
        out = problem(np.reshape(x, shape), params)
        if post is not None:
            out = post(out)
        return np.reshape(out, (-1,))

    return residual


#: Fields of SciPy's results that describe the solve itself: under vmap there is one
#: solve of the stacked problem, so they are not any element's.
STACKED_FIELDS = {"minimize": ("hess_inv", "hess"), "least_squares": ("optimality", "active_mask"),
                  "root": ("fjac", "r", "qtf", "cov_x")}


def per_element(res, x, name: str):
    """``res`` as it is, or, when ``x`` is batched by vmap, a copy whose fields that
    describe the one stacked solve (``STACKED_FIELDS``) refuse to be read: a loop
    would give each element its own, and the stacked one is none of them."""
    from ...interpreters.batching import BatchTracer
    from .._results import with_refused_fields

    fields = tuple(k for k in STACKED_FIELDS[name] if k in res)
    if not fields or not isinstance(x, BatchTracer):
        return res
    return with_refused_fields(res, fields, _STACKED_REFUSALS[name])


def _stacked_refusal(name: str):
    def refuse(field: str) -> Exception:
        return UnsupportedSolverError(
            f"{describe_stack()}: res.{field} of {name} under vmap describes the one solve of the stacked "
            f"problem, not each element's (a loop would give each its own). Compute it from res.x, e.g. "
            f"npfunc.hessian(objective)(res.x) and its inverse for hess_inv.")

    return refuse


_STACKED_REFUSALS = {name: _stacked_refusal(name) for name in STACKED_FIELDS}
