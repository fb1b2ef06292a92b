"""Numerical (central differences) and analytical (reverse and forward mode) derivatives."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..api._common import tree_flatten
from ..api.forward import trace_jvp
from ..api.reverse import trace_vjp
from ..core.zeros import zero
from .problem import GradcheckError, GradcheckUsageError, _Problem, _wide

# ---- numerical derivatives ------------------------------------------------------------


_byte_bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None) or getattr(
    np, "byte_bounds", None)


def _layout_copy(x: np.ndarray) -> np.ndarray:
    """A writable copy of ``x`` with the same strides (C, Fortran or a strided view)."""
    if x.ndim == 0 or x.flags.c_contiguous:
        return np.array(x, order="C", copy=True)
    if x.flags.f_contiguous:
        return np.array(x, order="F", copy=True)
    lo, hi = _byte_bounds(x)
    buf = np.empty(hi - lo, dtype=np.uint8)
    start = x.__array_interface__["data"][0]
    y = np.ndarray(x.shape, x.dtype, buffer=buf, offset=start - lo, strides=x.strides)
    y[...] = x
    return y


def _unit(x, col: int):
    """The direction of column ``col``: a real unit, or an imaginary one past ``x.size``."""
    d = np.zeros(x.shape, dtype=x.dtype)
    d.reshape(-1)[col % max(x.size, 1)] = 1j if col >= x.size else 1
    return d


def _real_view(value, shape, is_complex: bool, what: str) -> np.ndarray:
    """A derivative as a real vector: ``[Re, Im]`` for complex quantities."""
    if value is zero:
        return np.zeros(math.prod(shape) * (2 if is_complex else 1))
    value = np.asarray(value)
    if tuple(value.shape) != tuple(shape):
        raise GradcheckError(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    if is_complex:
        return np.concatenate([value.real.ravel(), value.imag.ravel()]).astype(np.float64)
    if value.dtype.kind == "c":
        raise GradcheckError(f"{what} is complex ({value.dtype}) but should be real")
    return value.astype(np.float64).ravel()


class _Numerical:
    """Central differences of ``func`` along directions in one input at a time."""

    def __init__(self, prob: _Problem, eps: float):
        self.prob = prob
        self.eps = eps
        self.evaluations = 0

    def directional(self, j: int, direction) -> list:
        """``(f(x + eps d) - f(x - eps d)) / (2 eps)`` for every output, widened."""
        prob = self.prob
        x = prob.x(j)
        scalar = isinstance(x, np.generic)
        work = _layout_copy(np.asarray(x))
        base = np.array(x, copy=True)
        sides = []
        for sign in (1, -1):
            work[...] = base + sign * self.eps * direction
            outs = tree_flatten(prob.call({prob.checked[j]: work[()] if scalar else work}))[0]
            self.evaluations += 1
            sides.append([self._fetch(outs, i, j) for i in range(len(prob.diff_out))])
        return [(p - m) / (2 * self.eps) for p, m in zip(*sides)]

    def _fetch(self, outs, i, j):
        prob = self.prob
        value = np.asarray(outs[prob.diff_out[i]])
        ref = prob.out_values[i]
        if value.shape != ref.shape or value.dtype != ref.dtype:
            raise GradcheckError(
                f"{prob.caller}: {prob.describe_output(i)} became {value.dtype}{list(value.shape)} "
                f"when {prob.describe_input(j)} was perturbed by eps={self.eps}; the function must "
                "keep the shape and dtype of its outputs.")
        return np.array(value, dtype=_wide(value.dtype), copy=True)

    def jacobian(self, j: int) -> list:
        """Full Jacobians (real view) of every output w.r.t. input ``j``."""
        prob = self.prob
        x = prob.x(j)
        mats = [np.zeros((prob.n_rows(i), prob.n_cols(j))) for i in range(len(prob.diff_out))]
        for col in range(prob.n_cols(j)):
            for i, d in enumerate(self.directional(j, _unit(x, col))):
                mats[i][:, col] = _real_view(d, d.shape, prob.out_complex(i), "")
        return mats


# ---- analytical derivatives ------------------------------------------------------------


class _Backward:
    """Reverse mode: ``func`` traced once, its pullback called per cotangent."""

    def __init__(self, prob: _Problem, transform: str):
        self.prob = prob
        primals = tuple(prob.x(j) for j in range(len(prob.checked)))
        _, self.pullback, _ = trace_vjp(prob.restricted(), primals, False, transform,
                                        lambda k: prob.describe_input(k))
        self.dtype_issues: list[str] = []

    def cotangents(self, i, ct, *, dense_others=True) -> list:
        """Cotangents for every output leaf: ``ct`` on diff output ``i``; the
        others dense zeros (or symbolic zeros); non-floating outputs symbolic zeros."""
        prob = self.prob
        cts = [zero] * len(prob.out_leaves)
        for q, k in enumerate(prob.diff_out):
            ref = prob.out_values[q]
            if q == i:
                cts[k] = ct
            elif dense_others:
                cts[k] = np.zeros(ref.shape, ref.dtype)
        return cts

    def pull(self, cts) -> list:
        grads = self.pullback.flat(cts)
        for j, g in enumerate(grads):
            x = self.prob.x(j)
            if g is not zero and np.dtype(g.dtype) != np.dtype(x.dtype):
                self.dtype_issues.append(
                    f"the gradient for {self.prob.describe_input(j)} has dtype {g.dtype}")
        return grads

    def jacobians(self) -> list:
        """``mats[i][j]``: real-view Jacobian of diff output i w.r.t. input j, row by row."""
        prob = self.prob
        n_in = len(prob.checked)
        mats = [[np.zeros((prob.n_rows(i), prob.n_cols(j))) for j in range(n_in)]
                for i in range(len(prob.diff_out))]
        for i, ref in enumerate(prob.out_values):
            for row in range(prob.n_rows(i)):
                grads = self.pull(self.cotangents(i, _unit(ref, row)))
                for j, g in enumerate(grads):
                    mats[i][j][row] = _real_view(g, prob.x(j).shape, prob.in_complex(j),
                                                 f"the gradient for {prob.describe_input(j)}")
        return mats

    def projections(self, us, vs) -> list:
        """``proj[i][p][j]`` = ``v_i . J u_j`` for output part p (complex for complex inputs)."""
        prob = self.prob
        out = []
        for i, ref in enumerate(prob.out_values):
            parts = []
            for scale in ((1, 1j) if prob.out_complex(i) else (1,)):
                ct = np.asarray(scale * vs[i], dtype=ref.dtype)
                grads = self.pull(self.cotangents(i, ct))
                parts.append([_project_gradient(g, prob, j, us[j]) for j, g in enumerate(grads)])
            out.append(parts)
        return out


def _project_gradient(g, prob, j, u):
    if g is zero:
        return 0.0
    g = np.asarray(g)
    if tuple(g.shape) != tuple(prob.x(j).shape):
        raise GradcheckError(f"{prob.caller}: the gradient for {prob.describe_input(j)} has shape "
                             f"{tuple(g.shape)}")
    ur, ui = u
    value = np.sum(g.real * ur)
    if ui is not None:
        value = value + 1j * np.sum(g.imag * ui)
    return complex(value) if ui is not None else float(value)


class _Forward:
    """Forward mode: one jvp per direction in one input at a time."""

    def __init__(self, prob: _Problem, transform: str):
        self.prob = prob
        self.transform = transform
        self.dtype_issues: list[str] = []

    def tangents(self, j, direction) -> list:
        prob = self.prob
        x = prob.x(j)
        _, spec = tree_flatten((x,))
        _, touts, _, _ = trace_jvp(prob.restricted([j]), [x], [direction.astype(x.dtype)], spec,
                                   False, self.transform)
        result = []
        for i, k in enumerate(prob.diff_out):
            t = touts[k]
            ref = prob.out_values[i]
            if t is not zero and np.dtype(t.dtype) != ref.dtype:
                self.dtype_issues.append(
                    f"the tangent of {prob.describe_output(i)} has dtype {t.dtype} (perturbing "
                    f"{prob.describe_input(j)})")
            result.append(t)
        return result

    def jacobian(self, j) -> list:
        prob = self.prob
        x = prob.x(j)
        mats = [np.zeros((prob.n_rows(i), prob.n_cols(j))) for i in range(len(prob.diff_out))]
        for col in range(prob.n_cols(j)):
            for i, t in enumerate(self.tangents(j, _unit(x, col))):
                mats[i][:, col] = _real_view(t, prob.out_values[i].shape, prob.out_complex(i),
                                             f"the tangent of {prob.describe_output(i)}")
        return mats


def _directions(prob, us):
    """Per input: the real direction and (for complex inputs) the imaginary one."""
    out = []
    for j, (ur, ui) in enumerate(us):
        x = prob.x(j)
        out.append((ur.astype(x.dtype), None if ui is None else (1j * ui).astype(x.dtype)))
    return out


def _project(derivs, prob, vs, i, p) -> Any:
    """``v_i . part_p(derivative)`` for a pair (real dir, imag dir) of output derivatives."""
    part = np.real if p == 0 else np.imag
    d_re, d_im = derivs
    value = float(np.sum(vs[i] * part(_dense(d_re, prob, i))))
    if d_im is None:
        return value
    return value + 1j * float(np.sum(vs[i] * part(_dense(d_im, prob, i))))


def _by_output(per_input) -> list:
    """``[j][i]`` (per input, then output) as ``[i][j]``."""
    return [list(row) for row in zip(*per_input)] if per_input else []


def _entry(values, i, j, fast: bool) -> np.ndarray:
    """The values of output ``i`` and input ``j``: a Jacobian, or the projections per part."""
    return np.array([part[j] for part in values[i]]) if fast else values[i][j]


def _dense(t, prob, i):
    ref = prob.out_values[i]
    return np.zeros(ref.shape) if t is zero else np.asarray(t)


# ---- public helpers --------------------------------------------------------------------


def get_numerical_jacobian(func: Callable, inputs, *, eps: float = 1e-6, argnums=None) -> tuple:
    """Jacobians of ``func`` at ``inputs`` by central differences.

    Returns ``J[i][j]``, a float64 matrix for floating/complex output leaf
    ``i`` and checked input ``j`` (all floating/complex array inputs, or
    those in ``argnums``), of shape ``(out.size, in.size)`` for real values;
    complex outputs add rows for the imaginary parts and complex inputs add
    columns for the imaginary directions (see the module docstring).

    >>> import numpy as np
    >>> from npfunc.gradcheck import get_numerical_jacobian
    >>> (J,), = get_numerical_jacobian(lambda x: x ** 2, np.array([1.0, 2.0]))
    >>> np.round(J, 6)
    array([[2., 0.],
           [0., 4.]])
    """
    prob = _Problem(func, inputs, argnums, "get_numerical_jacobian")
    num = _Numerical(prob, eps)
    return tuple(map(tuple, _by_output([num.jacobian(j) for j in range(len(prob.checked))])))


def get_analytical_jacobian(func: Callable, inputs, *, mode: str = "backward", argnums=None) -> tuple:
    """Jacobians of ``func`` at ``inputs`` computed by npfunc, one vjp per
    output element (``mode="backward"``) or one jvp per input element
    (``mode="forward"``), laid out like ``get_numerical_jacobian``.

    >>> import numpy as np
    >>> from npfunc.gradcheck import get_analytical_jacobian
    >>> (J,), = get_analytical_jacobian(lambda x: x ** 2, np.array([1.0, 2.0]), mode="forward")
    >>> J
    array([[2., 0.],
           [0., 4.]])
    """
    if mode not in ("backward", "forward"):
        raise GradcheckUsageError(f"get_analytical_jacobian: mode must be 'backward' or 'forward', "
                                  f"got {mode!r}")
    prob = _Problem(func, inputs, argnums, "get_analytical_jacobian")
    if mode == "backward":
        return tuple(map(tuple, _Backward(prob, "get_analytical_jacobian").jacobians()))
    fwd = _Forward(prob, "get_analytical_jacobian")
    return tuple(map(tuple, _by_output([fwd.jacobian(j) for j in range(len(prob.checked))])))
