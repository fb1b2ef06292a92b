"""The individual checks and their mismatch messages."""
from __future__ import annotations

import itertools

import numpy as np

from ..api._common import tree_flatten
from ..api.vmap import vmap
from ..core.zeros import zero
from ..primitives.elementwise.arithmetic import zeros_like
from .problem import GradcheckError, _Problem, _SEED
from .jacobians import _Backward, _Forward, _Numerical, _by_output, _directions, _entry, _project

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
        """Fixed-seed random signed unit vectors: ``(u_re, u_im)`` per input, ``v``
        per output.  Signed, so that a rule that is not linear in its tangent or
        cotangent (``abs(g) * f'(x)``) cannot agree with the differences."""
        rng = np.random.default_rng(_SEED)
        prob = self.prob

        def unit(shape):
            v = rng.uniform(-1.0, 1.0, size=shape)
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
            atol = o["atol"] * float(np.sum(np.abs(us[j][0]))) * float(np.sum(np.abs(vs[i])))
            if abs(a - n) <= atol + o["rtol"] * abs(n):
                continue
            part = ("real", "imaginary")[p] if prob.out_complex(i) else None
            text = (f"the projection v.(J u) of the Jacobian of {prob.describe_output(i, part)} "
                    f"with respect to {prob.describe_input(j)} does not match finite "
                    f"differences: numerical {n:.6g}, analytical {a:.6g} (allowed difference "
                    f"{atol + o['rtol'] * abs(n):.3g}; u, v are random signed unit vectors"
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

    # -- linearity ------------------------------------------------------------------
    # Central differences only see the rules at the directions they are fed: a
    # VJP ``abs(g) * f'(x)`` is right for every unit cotangent.  Every rule must
    # be linear (over the reals) in its tangent / cotangent, so this checks
    # rule(a u + b w) == a rule(u) + b rule(w) for random signed u, w and a
    # negative b: exact up to rounding for a correct rule, O(1) off otherwise.
    _SCALES = (1.75, -0.625)

    def check_linear_backward(self):
        prob = self.prob
        back = _Backward(prob, self.caller)
        rng = np.random.default_rng(_SEED + 5)
        a, b = self._SCALES
        for i, ref in enumerate(prob.out_values):
            u, w = _random_like(ref, rng), _random_like(ref, rng)
            pull = [back.pullback.flat(back.cotangents(i, c))
                    for c in (u, w, np.asarray(a * u + b * w, ref.dtype))]
            for j in range(len(prob.checked)):
                gu, gw, combined = (_dense_like(g[j], prob.x(j)) for g in pull)
                self.compare_linear("backward (linearity)", "VJP", "cotangent", i, j, a * gu + b * gw,
                                    combined)

    def check_linear_forward(self):
        prob = self.prob
        fwd = _Forward(prob, self.caller)
        rng = np.random.default_rng(_SEED + 6)
        a, b = self._SCALES
        for j in range(len(prob.checked)):
            x = np.asarray(prob.x(j))
            u, w = _random_like(x, rng), _random_like(x, rng)
            outs = [fwd.tangents(j, t) for t in (u, w, np.asarray(a * u + b * w, x.dtype))]
            for i, ref in enumerate(prob.out_values):
                tu, tw, combined = (_dense_like(t[i], ref) for t in outs)
                self.compare_linear("forward (linearity)", "JVP", "tangent", i, j, a * tu + b * tw,
                                    combined)

    def compare_linear(self, mode, rule, what, i, j, expected, got):
        o = self.o
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
        if expected.shape == got.shape and np.allclose(got, expected, rtol=o["rtol"], atol=o["atol"] * scale):
            return
        a, b = self._SCALES
        self.fail(mode, f"the {rule} is not linear in the {what}: for random signed {what}s u and w "
                        f"of {self.prob.describe_output(i) if rule == 'VJP' else self.prob.describe_input(j)}, "
                        f"the derivative for {self.prob.describe_input(j) if rule == 'VJP' else self.prob.describe_output(i)} "
                        f"from {a} u + ({b}) w differs from {a} (from u) + ({b}) (from w). A {rule} rule "
                        f"must be linear in its {what} g (g * f'(x), never abs(g) * f'(x) or g ** 2); "
                        "the unit directions of the Jacobian checks cannot see this.\n"
                  + _side_by_side(expected, got, ("a*rule(u) + b*rule(w)", "rule(a*u + b*w)")))

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
        prob = self.prob
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
        # linearity first: a rule that is not linear may match the differences at
        # some directions and not others, and this names the cause
        if o["check_backward_ad"]:
            self.check_linear_backward()
        if o["check_forward_ad"]:
            self.check_linear_forward()
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


def _dense_like(value, ref) -> np.ndarray:
    """A derivative as a widened array (zeros for a symbolic zero)."""
    ref = np.asarray(ref)
    if value is zero:
        return np.zeros(ref.shape, np.complex128 if ref.dtype.kind == "c" else np.float64)
    value = np.asarray(value)
    return value.astype(np.complex128 if value.dtype.kind == "c" else np.float64)


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
