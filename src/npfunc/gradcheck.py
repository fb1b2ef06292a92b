"""Check derivative rules against finite differences: ``gradcheck`` and ``gradgradcheck``.

``gradcheck(func, inputs)`` compares the derivatives npfunc computes for
``func`` (reverse mode, and forward mode with ``check_forward_ad=True``)
with central differences of ``func`` itself, and raises ``GradcheckError``
naming the input, the output and the mode when they disagree.  It is the
tool for testing a new primitive's rules, or a function's derivatives.

How values are laid out.  Every comparison is between real matrices: a
complex value counts as its real and imaginary parts, so a complex output
of ``m`` elements gives ``2m`` rows (real parts, then imaginary parts) and a
complex input of ``n`` elements gives ``2n`` columns (derivatives along the
real axis, then along the imaginary axis).  In reverse mode, the row for a
cotangent on the real part of ``y_k`` is ``[Re g, Im g]`` where ``g`` is the
gradient ``vjp`` returns: with torch's (conjugate-Wirtinger) convention,
``g = dL/dRe(x) + 1j * dL/dIm(x)`` for the real function ``L = Re(y_k)``.
For real functions all of this is simply the ``(out.size, in.size)``
Jacobian.

Fast mode compares ``v . J u`` for random unit vectors ``u`` (per input) and
``v`` (per output) instead of whole Jacobians: two evaluations of ``func``
per real input (four per complex one) instead of two per input element.

>>> import numpy as np
>>> from npfunc.gradcheck import gradcheck
>>> gradcheck(lambda x, w: np.tanh(x @ w), (np.ones((2, 3)), np.full(3, 0.1)))
True
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Callable

import numpy as np
import optree

from .api._common import normalize_argnums, tree_flatten, tree_unflatten
from .api.forward import trace_jvp
from .api.reverse import trace_vjp
from .api.vmap import vmap
from .core.errors import NonDifferentiableInputError, NpfuncError
from .core.zeros import zero
from .primitives.elementwise import zeros_like

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "GradcheckUsageError",
           "get_numerical_jacobian", "get_analytical_jacobian"]

_SEED = 0x5EED


class GradcheckError(NpfuncError, RuntimeError):
    """A derivative computed by npfunc disagrees with its reference
    (finite differences, a second run, a loop, or the input's dtype)."""


class GradcheckUsageError(NpfuncError, ValueError):
    """``gradcheck`` was called with options or inputs it cannot check."""


# ---- inputs, outputs and their names ---------------------------------------------


def _is_inexact_array(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in "fc"


def _is_inexact_output(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (float, complex)):
        return True
    return hasattr(x, "dtype") and np.dtype(x.dtype).kind in "fc"


def _wide(dtype) -> np.dtype:
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def _path_text(path) -> str:
    return "".join(f"[{p!r}]" for p in path)


class _Problem:
    """``func`` called on ``inputs``, with the checked input leaves picked out.

    Inputs are positional arguments (pytrees allowed); ``checked`` holds the
    flat indices of the leaves that are perturbed and differentiated.  Outputs
    are the floating/complex leaves of ``func``'s output pytree.
    """

    def __init__(self, func, inputs, argnums, caller, arg_label=None, out_label=None):
        if not callable(func):
            raise GradcheckUsageError(f"{caller}: func must be callable, got {type(func).__name__}")
        self.func = func
        self.caller = caller
        self.args = inputs if isinstance(inputs, tuple) else (inputs,)
        self.leaves, self.spec = tree_flatten(self.args)
        self.paths = optree.tree_paths(self.args)
        self.arg_label = arg_label or (lambda a: f"argument {a}")
        self.out_label = out_label
        if argnums is None:
            self.checked = [k for k, x in enumerate(self.leaves) if _is_inexact_array(x)]
        else:
            nums = set(normalize_argnums(argnums, len(self.args), caller))
            self.checked = []
            for k, (x, path) in enumerate(zip(self.leaves, self.paths)):
                if path[0] not in nums:
                    continue
                if not _is_inexact_array(x):
                    what = getattr(x, "dtype", type(x).__name__)
                    raise NonDifferentiableInputError(
                        f"{caller}: argnums names {self._arg_text(k)}, which is a {what} value; only "
                        "floating-point or complex NumPy arrays can be checked. Leave it out of "
                        "argnums, or convert it with x.astype(float).")
                self.checked.append(k)
        if not self.checked:
            raise GradcheckUsageError(
                f"{caller}: no input to check: none of the selected inputs is a floating-point or "
                "complex NumPy array. Pass arrays (np.float64 is best), or name them in argnums.")
        for j, k in enumerate(self.checked):
            x = self.leaves[k]
            if isinstance(x, np.ndarray) and x.size and any(
                    s == 0 and n > 1 for s, n in zip(x.strides, x.shape)):
                raise GradcheckUsageError(
                    f"{caller}: {self.describe_input(j)} has a dimension with stride 0 (e.g. made by "
                    "np.broadcast_to), so perturbing one element would move several. Pass "
                    "np.ascontiguousarray(x) instead.")
        out = self.call({})
        self.out_leaves, self.out_spec = tree_flatten(out)
        self.out_paths = optree.tree_paths(out)
        self.diff_out = [i for i, o in enumerate(self.out_leaves) if _is_inexact_output(o)]
        self.out_values = [np.asarray(self.out_leaves[i]) for i in self.diff_out]

    # -- sizes ---------------------------------------------------------------
    def x(self, j):
        return self.leaves[self.checked[j]]

    def in_complex(self, j) -> bool:
        return np.dtype(self.x(j).dtype).kind == "c"

    def out_complex(self, i) -> bool:
        return self.out_values[i].dtype.kind == "c"

    def n_cols(self, j) -> int:
        return self.x(j).size * (2 if self.in_complex(j) else 1)

    def n_rows(self, i) -> int:
        return self.out_values[i].size * (2 if self.out_complex(i) else 1)

    # -- names -----------------------------------------------------------------
    def _arg_text(self, k) -> str:
        path = self.paths[k]
        return self.arg_label(path[0]) + _path_text(path[1:])

    def describe_input(self, j) -> str:
        x = self.x(j)
        return f"input {j} ({self._arg_text(self.checked[j])}, {x.dtype}{list(x.shape)})"

    def describe_output(self, i, part=None) -> str:
        o = self.out_values[i]
        k = self.diff_out[i]
        where = self.out_label(k) if self.out_label else _path_text(self.out_paths[k])
        where = f"{where}, " if where else ""
        part = f" ({part} part)" if part else ""
        return f"output {i}{part} ({where}{o.dtype}{list(o.shape)})"

    # -- calling ---------------------------------------------------------------
    def call(self, replace: dict):
        leaves = list(self.leaves)
        for k, v in replace.items():
            leaves[k] = v
        return self.func(*tree_unflatten(self.spec, leaves))

    def restricted(self, which=None) -> Callable:
        """``func`` as a function of the checked inputs ``which`` (default: all)."""
        idx = list(self.checked) if which is None else [self.checked[j] for j in which]
        return lambda *vals: self.call(dict(zip(idx, vals)))

    def with_inputs(self, values) -> "_Problem":
        """A copy of this problem whose checked inputs are ``values``."""
        new = object.__new__(_Problem)
        new.__dict__.update(self.__dict__)
        new.leaves = list(self.leaves)
        for k, v in zip(self.checked, values):
            new.leaves[k] = v
        return new


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


# ---- messages --------------------------------------------------------------------------


def _side_by_side(left, right, titles=("numerical", "analytical")) -> str:
    opts = dict(precision=6, threshold=300, edgeitems=4, max_line_width=64)
    ls = [titles[0]] + np.array2string(np.asarray(left), **opts).splitlines()
    rs = [titles[1]] + np.array2string(np.asarray(right), **opts).splitlines()
    width = max(len(s) for s in ls)
    return "\n".join(f"    {a:<{width}}   {b}" for a, b in itertools.zip_longest(ls, rs, fillvalue=""))


def _excess(a, n, atol, rtol):
    """How far each entry is outside the tolerance (positive = mismatch; NaN counts as inf)."""
    diff = np.abs(np.asarray(a) - np.asarray(n)) - (atol + rtol * np.abs(np.asarray(n)))
    return np.where(np.isnan(diff), np.inf, diff)


def _element_text(count, shape, is_complex, index, axis_name) -> str:
    part = ""
    if is_complex:
        part = " (imaginary part)" if index >= count else " (real part)"
        if axis_name == "input element":
            part = " along the imaginary axis" if index >= count else " along the real axis"
        index %= max(count, 1)
    where = tuple(int(v) for v in np.unravel_index(index, shape)) if shape else ()
    return f"{axis_name} {where}{part}"


def _mismatch_text(prob, i, j, a, n, atol, rtol) -> str:
    ex = _excess(a, n, atol, rtol)
    r, c = np.unravel_index(int(np.argmax(ex)), ex.shape)
    ref, x = prob.out_values[i], prob.x(j)
    row = _element_text(ref.size, ref.shape, prob.out_complex(i), r, "output element")
    col = _element_text(x.size, x.shape, prob.in_complex(j), c, "input element")
    layout = "rows: output elements" + (" (real parts, then imaginary parts)" if prob.out_complex(i) else "")
    layout += "; columns: input elements" + (
        " (real directions, then imaginary directions)" if prob.in_complex(j) else "")
    return (f"  largest mismatch at row {r} ({row}), column {c} ({col}): numerical {n[r, c]:.6g}, "
            f"analytical {a[r, c]:.6g}, allowed difference {atol + rtol * abs(n[r, c]):.3g}\n"
            f"  Jacobians ({layout}):\n" + _side_by_side(n, a))


# ---- the checks ------------------------------------------------------------------------


class _Checker:
    def __init__(self, prob: _Problem, opts: dict):
        self.prob = prob
        self.o = opts
        self.caller = prob.caller
        self.num = _Numerical(prob, opts["eps"])

    def fail(self, mode, text, cause=None):
        err = GradcheckError(f"{self.caller} ({mode} mode): {text}")
        if cause is not None:
            raise err from cause
        raise err

    # -- the derivatives against finite differences -------------------------------
    def derivatives(self) -> dict:
        """Check every enabled mode; returns its values (Jacobians ``[i][j]``, or
        projections ``[i][part][j]`` in fast mode) for the later checks."""
        prob, o = self.prob, self.o
        vectors = self.random_vectors() if o["fast_mode"] else None
        if vectors:
            derivs = [[self.num.directional(j, d) if d is not None else None for d in pair]
                      for j, pair in enumerate(_directions(prob, vectors[0]))]
            numerical = self.projections_of(derivs, vectors[1])
        else:
            numerical = _by_output([self.num.jacobian(j) for j in range(len(prob.checked))])
        results = {}
        for mode in ("backward", "forward"):
            if not o[f"check_{mode}_ad"]:
                continue
            label = ("fast " if vectors else "") + mode
            values, engine = self.analytical(prob, mode, vectors)
            if mode == "backward":  # reentrancy: run the same backward pass again
                again = engine.projections(*vectors) if vectors else engine.jacobians()
                self.check_reentrant(label, values, again)
            self.check_dtypes(label, engine.dtype_issues)
            for i, j in self.pairs():
                if vectors:
                    self.compare_fast(label, i, j, values, numerical, vectors)
                else:
                    self.compare(label, i, j, values[i][j], numerical[i][j])
            results[mode] = values
        return results

    def analytical(self, prob, mode, vectors=None):
        """``(values, engine)`` of reverse or forward mode for ``prob``."""
        if mode == "backward":
            back = _Backward(prob, self.caller)
            return (back.projections(*vectors) if vectors else back.jacobians()), back
        fwd = _Forward(prob, self.caller)
        if vectors:
            tangents = [[fwd.tangents(j, d) if d is not None else None for d in pair]
                        for j, pair in enumerate(_directions(prob, vectors[0]))]
            return self.projections_of(tangents, vectors[1]), fwd
        return _by_output([fwd.jacobian(j) for j in range(len(prob.checked))]), fwd

    def pairs(self):
        return itertools.product(range(len(self.prob.diff_out)), range(len(self.prob.checked)))

    def compare(self, mode, i, j, a, n):
        o = self.o
        if a.size and not np.allclose(a, n, rtol=o["rtol"], atol=o["atol"]):
            self.fail(mode, f"the Jacobian of {self.prob.describe_output(i)} with respect to "
                            f"{self.prob.describe_input(j)} does not match finite differences.\n"
                      + _mismatch_text(self.prob, i, j, a, n, o["atol"], o["rtol"]))

    def check_reentrant(self, mode, first, second):
        tol = self.o["nondet_tol"]
        fast = self.o["fast_mode"]
        for i, j in self.pairs():
            a, b = _entry(first, i, j, fast), _entry(second, i, j, fast)
            worst = float(np.max(np.abs(a - b), initial=0.0))
            if not worst <= tol:
                self.fail(mode, f"the backward pass is not reentrant: computing the Jacobian of "
                                f"{self.prob.describe_output(i)} with respect to "
                                f"{self.prob.describe_input(j)} twice gave values {worst:.3g} apart "
                                f"(nondet_tol={tol}). A VJP rule is nondeterministic; if that is "
                                "intended, pass a larger nondet_tol.\n"
                          + _side_by_side(a, b, ("first run", "second run")))

    def check_dtypes(self, mode, issues):
        if issues and self.o["check_grad_dtypes"]:
            prob = self.prob
            self.fail(mode, f"dtype mismatch (check_grad_dtypes=True): {issues[0]}, but "
                            "gradients and tangents must have the dtype of the value they belong "
                            f"to (inputs: {[str(prob.x(j).dtype) for j in range(len(prob.checked))]}).")

    # -- fast mode ---------------------------------------------------------------
    def random_vectors(self):
        """Fixed-seed random unit vectors: ``(u_re, u_im)`` per input, ``v`` per output."""
        rng = np.random.default_rng(_SEED)
        prob = self.prob

        def unit(shape):
            v = rng.uniform(0.0, 1.0, size=shape)
            norm = np.linalg.norm(v)
            return np.asarray(v / norm if norm else v)

        us = [(unit(prob.x(j).shape), unit(prob.x(j).shape) if prob.in_complex(j) else None)
              for j in range(len(prob.checked))]
        vs = [unit(o.shape) for o in prob.out_values]
        return us, vs

    def projections_of(self, derivs, vs):
        prob = self.prob
        out = []
        for i in range(len(prob.diff_out)):
            parts = []
            for p in range(2 if prob.out_complex(i) else 1):
                parts.append([_project((d[0][i], None if d[1] is None else d[1][i]), prob, vs, i, p)
                              for d in derivs])
            out.append(parts)
        return out

    def compare_fast(self, mode, i, j, analytical, numerical, vectors):
        prob, o = self.prob, self.o
        us, vs = vectors
        for p in range(len(analytical[i])):
            a, n = analytical[i][p][j], numerical[i][p][j]
            atol = o["atol"] * float(np.sum(us[j][0])) * float(np.sum(vs[i]))
            if abs(a - n) <= atol + o["rtol"] * abs(n):
                continue
            part = ("real", "imaginary")[p] if prob.out_complex(i) else None
            text = (f"the projection v.(J u) of the Jacobian of {prob.describe_output(i, part)} "
                    f"with respect to {prob.describe_input(j)} does not match finite "
                    f"differences: numerical {n:.6g}, analytical {a:.6g} (allowed difference "
                    f"{atol + o['rtol'] * abs(n):.3g}; u, v are random unit vectors"
                    + ("; the imaginary part of the projection is along the imaginary axis "
                       "of the input" if prob.in_complex(j) else "") + ").\n")
            self.fail(mode, text + self.slow_pair_report(mode.split()[-1], i, j))

    def slow_pair_report(self, mode, i, j) -> str:
        """The full Jacobians of one pair, to show what fast mode found."""
        prob, o = self.prob, self.o
        n = self.num.jacobian(j)[i]
        if mode == "backward":
            a = _Backward(prob, self.caller).jacobians()[i][j]
        else:
            a = _Forward(prob, self.caller).jacobian(j)[i]
        if a.size and not np.allclose(a, n, rtol=o["rtol"], atol=o["atol"]):
            return ("  Slow mode confirms the mismatch for this pair:\n"
                    + _mismatch_text(prob, i, j, a, n, o["atol"], o["rtol"]))
        return ("  Slow mode finds no mismatch for this pair (the fast-mode tolerance may be too "
                "tight; try fast_mode=False):\n" + _side_by_side(n, a))

    # -- memory layouts ------------------------------------------------------------
    def check_layouts(self, reference):
        prob, o = self.prob, self.o
        variants = _layout_variants(prob)
        for label, values in variants:
            other = prob.with_inputs(values)
            out = tree_flatten(other.call({}))[0]
            for i, k in enumerate(prob.diff_out):
                got = np.asarray(out[k])
                if got.shape != prob.out_values[i].shape or not np.allclose(
                        got, prob.out_values[i], rtol=o["rtol"], atol=o["atol"], equal_nan=True):
                    self.fail("non-contiguous input",
                              f"the value of {prob.describe_output(i)} changes when the inputs are "
                              f"passed as {label}; a rule assumes a memory layout.\n"
                              + _side_by_side(prob.out_values[i], got, ("given layout", label)))
            fast = o["fast_mode"]
            vectors = self.random_vectors() if fast else None
            for mode, ref in reference.items():
                got, _ = self.analytical(other, mode, vectors)
                for i, j in self.pairs():
                    a, b = _entry(ref, i, j, fast), _entry(got, i, j, fast)
                    if not np.allclose(b, a, rtol=o["rtol"], atol=o["atol"]):
                        self.fail(f"{mode} (non-contiguous input)",
                                  f"the {mode}-mode derivative of {prob.describe_output(i)} with "
                                  f"respect to {prob.describe_input(j)} changes when the inputs "
                                  f"are passed as {label}; a rule assumes a memory layout.\n"
                                  + _side_by_side(a, b, ("given layout", label)))

    # -- batching ----------------------------------------------------------------
    def check_batched_backward(self):
        prob, o = self.prob, self.o
        back = _Backward(prob, self.caller)
        rng = np.random.default_rng(_SEED + 1)
        primals = [prob.x(j) for j in range(len(prob.checked))]
        for i, ref in enumerate(prob.out_values):
            cts = np.stack([_random_like(ref, rng) for _ in range(2)])

            def vjp_one(ct, i=i):
                grads = back.pullback.flat(back.cotangents(i, ct, dense_others=False))
                return [zeros_like(p) if g is zero else g for g, p in zip(grads, primals)]

            expected = [np.stack(shards) for shards in zip(*(vjp_one(c) for c in cts))]
            try:
                result = vmap(vjp_one)(cts)
            except Exception as exc:  # noqa: BLE001 - reported as a failed check
                self.fail("batched backward",
                          f"vmap over the vjp for {prob.describe_output(i)} raised "
                          f"{type(exc).__name__}: {exc}", exc)
            for j, (res, exp) in enumerate(zip(result, expected)):
                self.compare_batched("batched backward", "vjp", i, j, res, exp)

    def check_batched_forward(self):
        prob = self.prob
        fwd = _Forward(prob, self.caller)
        rng = np.random.default_rng(_SEED + 2)
        for j in range(len(prob.checked)):
            x = prob.x(j)
            ts = np.stack([_random_like(np.asarray(x), rng) for _ in range(2)])

            def jvp_one(t, j=j):
                return [zeros_like(o) if d is zero else d
                        for d, o in zip(fwd.tangents(j, t), prob.out_values)]

            expected = [np.stack(shards) for shards in zip(*(jvp_one(t) for t in ts))]
            try:
                result = vmap(jvp_one)(ts)
            except Exception as exc:  # noqa: BLE001
                self.fail("batched forward",
                          f"vmap over the jvp along {prob.describe_input(j)} raised "
                          f"{type(exc).__name__}: {exc}", exc)
            for i, (res, exp) in enumerate(zip(result, expected)):
                self.compare_batched("batched forward", "jvp", i, j, res, exp)

    def compare_batched(self, mode, what, i, j, res, exp):
        o = self.o
        res = np.asarray(res)
        if res.shape == exp.shape and np.allclose(res, exp, rtol=o["rtol"], atol=o["atol"]):
            return
        self.fail(mode, f"vmap over the {what} disagrees with a loop of {what}s for "
                        f"{self.prob.describe_output(i)} and {self.prob.describe_input(j)} "
                        f"(batch of 2 random {'cotangents' if what == 'vjp' else 'tangents'}; "
                        f"shapes {list(res.shape)} and {list(exp.shape)}); a batching rule is wrong.\n"
                  + _side_by_side(exp, res, ("loop", "vmap")))

    # -- zero and absent cotangents -------------------------------------------------
    def check_zero_cotangents(self):
        prob = self.prob
        back = _Backward(prob, self.caller)
        cts = [zero] * len(prob.out_leaves)
        for q, k in enumerate(prob.diff_out):
            cts[k] = np.zeros(prob.out_values[q].shape, prob.out_values[q].dtype)
        for j, g in enumerate(back.pullback.flat(cts)):
            if g is not zero and not np.all(np.asarray(g) == 0):
                self.fail("backward", f"a zero cotangent for every output gives a nonzero gradient "
                                      f"for {prob.describe_input(j)}: a VJP rule does not multiply "
                                      f"by its cotangent.\n    gradient: {np.asarray(g)!r}")

    def check_undefined(self):
        prob = self.prob
        back = _Backward(prob, self.caller)
        try:
            grads = back.pullback.flat([zero] * len(prob.out_leaves))
        except Exception as exc:  # noqa: BLE001
            self.fail("backward, undefined cotangent",
                      f"the backward pass with every cotangent absent (symbolic zero) raised "
                      f"{type(exc).__name__}: {exc}", exc)
        for j, g in enumerate(grads):
            if g is not zero and not np.all(np.asarray(g) == 0):
                self.fail("backward, undefined cotangent",
                          f"absent cotangents gave a nonzero gradient for {prob.describe_input(j)}")
        if len(prob.diff_out) < 2:
            return
        rng = np.random.default_rng(_SEED + 3)
        for i, ref in enumerate(prob.out_values):
            ct = _random_like(ref, rng)
            dense = back.pullback.flat(back.cotangents(i, ct, dense_others=True))
            try:
                sparse = back.pullback.flat(back.cotangents(i, ct, dense_others=False))
            except Exception as exc:  # noqa: BLE001
                self.fail("backward, undefined cotangent",
                          f"the backward pass with a cotangent for {prob.describe_output(i)} only "
                          f"(the other outputs' cotangents absent) raised {type(exc).__name__}: "
                          f"{exc}. Rules of multi-output primitives must accept a symbolic zero "
                          "for the outputs that got no cotangent.", exc)
            for j, (d, s) in enumerate(zip(dense, sparse)):
                d = np.zeros(prob.x(j).shape) if d is zero else np.asarray(d)
                s = np.zeros(prob.x(j).shape) if s is zero else np.asarray(s)
                if not np.allclose(d, s, rtol=self.o["rtol"], atol=self.o["atol"]):
                    self.fail("backward, undefined cotangent",
                              f"the gradient for {prob.describe_input(j)} from a cotangent on "
                              f"{prob.describe_output(i)} changes when the other outputs' "
                              "cotangents are absent instead of explicit zeros.\n"
                              + _side_by_side(d, s, ("explicit zeros", "absent")))

    def run(self):
        o = self.o
        if not self.prob.diff_out:
            return
        reference = self.derivatives()
        if o["check_noncontiguous"]:
            self.check_layouts(reference)
        if o["check_batched_forward_grad"]:
            self.check_batched_forward()
        if not o["check_backward_ad"]:
            return
        if o["check_batched_grad"]:
            self.check_batched_backward()
        self.check_zero_cotangents()
        if o["check_undefined_grad"]:
            self.check_undefined()


def _random_like(ref: np.ndarray, rng) -> np.ndarray:
    value = rng.uniform(-1.0, 1.0, size=ref.shape)
    if ref.dtype.kind == "c":
        value = value + 1j * rng.uniform(-1.0, 1.0, size=ref.shape)
    return np.asarray(value, dtype=ref.dtype)


def _layout_variants(prob: _Problem) -> list:
    """The checked inputs re-laid out: Fortran order (2-D and up), then strided views."""
    xs = [prob.x(j) for j in range(len(prob.checked))]
    variants = []
    if any(np.ndim(x) >= 2 for x in xs):
        variants.append(("Fortran-ordered copies", [
            (np.asfortranarray(x) if x.flags.c_contiguous else np.ascontiguousarray(x))
            if isinstance(x, np.ndarray) and x.ndim >= 2 else x for x in xs]))
    if any(np.ndim(x) >= 1 for x in xs):
        variants.append(("strided views", [_strided(x) for x in xs]))
    return variants


def _strided(x):
    """``x`` as a view that takes every other element of a larger buffer."""
    if not isinstance(x, np.ndarray) or x.ndim == 0:
        return x
    buf = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    view = buf[..., ::2]
    view[...] = x
    return view


# ---- entry points ---------------------------------------------------------------------------


def _options(caller, eps, atol, rtol, nondet_tol, check_undefined_grad, check_grad_dtypes,
             check_batched_grad, check_batched_forward_grad, check_forward_ad, check_backward_ad,
             fast_mode, check_noncontiguous) -> dict:
    if not (check_forward_ad or check_backward_ad):
        raise GradcheckUsageError(
            f"{caller}: nothing to check: check_forward_ad and check_backward_ad are both False")
    if check_batched_grad and not check_backward_ad:
        raise GradcheckUsageError(
            f"{caller}: check_batched_grad=True needs check_backward_ad=True (it batches the vjp)")
    if check_batched_forward_grad and not check_forward_ad:
        raise GradcheckUsageError(
            f"{caller}: check_batched_forward_grad=True needs check_forward_ad=True (it batches "
            "the jvp)")
    if not eps > 0:
        raise GradcheckUsageError(f"{caller}: eps must be positive, got {eps!r}")
    return dict(eps=float(eps), atol=float(atol), rtol=float(rtol), nondet_tol=float(nondet_tol),
                check_undefined_grad=check_undefined_grad, check_grad_dtypes=check_grad_dtypes,
                check_batched_grad=check_batched_grad,
                check_batched_forward_grad=check_batched_forward_grad,
                check_forward_ad=check_forward_ad, check_backward_ad=check_backward_ad,
                fast_mode=fast_mode, check_noncontiguous=check_noncontiguous)


def _warn_precision(prob: _Problem) -> None:
    for j in range(len(prob.checked)):
        if prob.x(j).dtype not in (np.float64, np.complex128):
            warnings.warn(
                f"{prob.caller}: {prob.describe_input(j)} is not double precision; central "
                f"differences are unreliable in {prob.x(j).dtype}, so the check may fail for "
                "that reason alone. Pass float64 / complex128 inputs.", UserWarning, stacklevel=4)


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, argnums=None,
              check_noncontiguous: bool = True) -> bool:
    """Check npfunc's derivatives of ``func`` at ``inputs`` against central differences.

    ``inputs`` is one array or a tuple of positional arguments (pytrees
    allowed).  The checked inputs are every floating/complex NumPy array
    leaf, or the leaves of the arguments in ``argnums``; outputs may be a
    pytree, and its floating/complex leaves are checked.  An entry passes when
    ``|analytical - numerical| <= atol + rtol * |numerical|``.

    Checks, in order: the reverse-mode Jacobian (``check_backward_ad``; it is
    computed twice and the runs must agree to ``nondet_tol``), the
    forward-mode one (``check_forward_ad``), gradient/tangent dtypes
    (``check_grad_dtypes``), the same derivatives with the inputs passed as
    Fortran-ordered copies and strided views (``check_noncontiguous``, an
    npfunc addition: NumPy code meets such arrays), vmap over jvp and vjp
    against a loop (``check_batched_forward_grad``, ``check_batched_grad``),
    a zero cotangent giving a zero gradient, and absent (symbolic-zero)
    cotangents giving zero gradients without error (``check_undefined_grad``).
    ``fast_mode=True`` compares random projections ``v . J u`` instead of
    whole Jacobians.

    Returns True, or raises ``GradcheckError`` naming the mode, the output
    and the input (returns False instead with ``raise_exception=False``).

    >>> import numpy as np
    >>> from npfunc.gradcheck import gradcheck
    >>> x = np.linspace(-1.0, 1.0, 4)
    >>> gradcheck(np.sin, x, check_forward_ad=True, check_batched_grad=True)
    True
    >>> gradcheck(lambda x: np.sin(x), x, fast_mode=True)
    True
    """
    opts = _options("gradcheck", eps, atol, rtol, nondet_tol, check_undefined_grad,
                    check_grad_dtypes, check_batched_grad, check_batched_forward_grad,
                    check_forward_ad, check_backward_ad, fast_mode, check_noncontiguous)
    return _run(_Problem(func, inputs, argnums, "gradcheck"), opts, raise_exception)


def _run(prob: _Problem, opts: dict, raise_exception: bool) -> bool:
    _warn_precision(prob)
    try:
        _Checker(prob, opts).run()
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
                  check_forward_ad: bool = False, check_backward_ad: bool = True,
                  fast_mode: bool = False, argnums=None, check_noncontiguous: bool = True,
                  check_fwd_over_rev: bool | None = None,
                  check_rev_over_rev: bool | None = None) -> bool:
    """Check second derivatives: ``gradcheck`` of the function that maps
    ``(*inputs, *grad_outputs)`` to the gradients of ``func`` (its vjp).

    Its checked inputs are those of ``func`` plus the cotangents
    ``grad_outputs`` (one array per floating/complex output leaf; random in
    [-1, 1] when omitted, as strided views with
    ``gen_non_contig_grad_outputs=True``).  ``check_forward_ad`` then checks
    forward-over-reverse and ``check_backward_ad`` reverse-over-reverse
    (torch's ``check_fwd_over_rev`` / ``check_rev_over_rev`` are accepted as
    aliases); the other options are ``gradcheck``'s.

    >>> import numpy as np
    >>> from npfunc.gradcheck import gradgradcheck
    >>> gradgradcheck(lambda x: np.exp(x) * x, np.array([0.5, -1.0]), check_forward_ad=True)
    True
    """
    fwd = check_forward_ad if check_fwd_over_rev is None else check_fwd_over_rev
    rev = check_backward_ad if check_rev_over_rev is None else check_rev_over_rev
    prob = _Problem(func, inputs, argnums, "gradgradcheck")
    nargs = len(prob.args)
    cts = _grad_outputs(prob, grad_outputs, gen_non_contig_grad_outputs)
    checked, spec = list(prob.checked), prob.spec

    def vjp_of_func(*all_args):
        leaves = tree_flatten(all_args[:nargs])[0]
        primals = tuple(leaves[k] for k in checked)

        def partial(*vals):
            full = list(leaves)
            for k, v in zip(checked, vals):
                full[k] = v
            return func(*tree_unflatten(spec, full))

        out, pullback, _ = trace_vjp(partial, primals, False, "gradgradcheck")
        ct_leaves = [zero] * len(tree_flatten(out)[0])
        for ct, k in zip(all_args[nargs:], prob.diff_out):
            ct_leaves[k] = ct
        grads = pullback.flat(ct_leaves)
        return tuple(zeros_like(p) if g is zero else g for g, p in zip(grads, primals))

    def arg_label(a):
        if a < nargs:
            return f"argument {a}"
        return f"the cotangent for {prob.describe_output(a - nargs)}"

    def out_label(k):
        return f"the gradient for {prob.describe_input(k)}"

    new_argnums = None
    if argnums is not None:
        nums = normalize_argnums(argnums, nargs, "gradgradcheck")
        new_argnums = tuple(nums) + tuple(range(nargs, nargs + len(cts)))
    opts = _options("gradgradcheck", eps, atol, rtol, nondet_tol, check_undefined_grad,
                    check_grad_dtypes, check_batched_grad, check_batched_forward_grad, fwd, rev,
                    fast_mode, check_noncontiguous)
    inner = _Problem(vjp_of_func, prob.args + tuple(cts), new_argnums, "gradgradcheck", arg_label,
                     out_label)
    return _run(inner, opts, raise_exception)


def _grad_outputs(prob: _Problem, grad_outputs, non_contiguous: bool) -> list:
    refs = prob.out_values
    if grad_outputs is None:
        rng = np.random.default_rng(_SEED + 4)
        cts = [_random_like(ref, rng) for ref in refs]
        return [_strided(c) for c in cts] if non_contiguous else cts
    given = list(grad_outputs) if isinstance(grad_outputs, (tuple, list)) else [grad_outputs]
    if len(given) != len(refs):
        raise GradcheckUsageError(
            f"gradgradcheck: grad_outputs has {len(given)} entries but the function has "
            f"{len(refs)} floating-point/complex output(s); give one cotangent per output")
    out = []
    for i, (ct, ref) in enumerate(zip(given, refs)):
        ct = np.asarray(ct)
        if ct.shape != ref.shape:
            raise GradcheckUsageError(
                f"gradgradcheck: grad_outputs[{i}] has shape {ct.shape}, but "
                f"{prob.describe_output(i)} has shape {ref.shape}")
        out.append(ct.astype(ref.dtype, copy=False))
    return out
