"""Run one program under every transform and compare with plain NumPy.

:func:`check_program` returns a :class:`Report` with one :class:`Outcome`
per check: ``ok``; ``refused`` (an ``NpfuncError``: allowed, counted);
``mismatch`` (a value, dtype, shape or derivative that differs from NumPy's
semantics or from central differences); ``crash`` (any other exception
from npfunc where NumPy ran fine); ``skipped`` (the check does not apply).
"""
from __future__ import annotations

import dataclasses
import traceback
import zlib
import warnings
from typing import Callable

import numpy as np

from ...api import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap
from ...api.functionalize import functionalize
from ...api.jit import jit
from ...api.linearize import linearize
from ...core.errors import NpfuncError
from .compare import FD_TOL, VALUE_RTOL, Mismatch, close, compare, compare_leaves, directional_difference
from .program import Program, arrays_of, copy_leaves, leaves, run_plain

__all__ = ["Outcome", "Report", "check_program"]

JIT_CALLS = (0, 1, 2, 3, 0)     # the sample each jit call runs on
CLOSURE_CHANGES = {2: 0, 4: 1}  # before jit call k, closures get update i
ADJOINT_TOL = {4: 2e-4, 8: 1e-9}
FAILURES = ("mismatch", "crash")


@dataclasses.dataclass
class Outcome:
    transform: str
    status: str  # "ok", "refused", "mismatch", "crash", "skipped"
    detail: str = ""
    error: str = ""  # the exception class of a refusal or crash


@dataclasses.dataclass
class Report:
    program: Program
    outcomes: list[Outcome]
    notes: dict = dataclasses.field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in FAILURES]

    def format(self, failures: list[Outcome] | None = None) -> str:
        """The program as a script, then every failure (or those given): transform and mismatch."""
        parts = [f"=== program {self.program.label} ===", self.program.script()]
        for o in self.failures if failures is None else failures:
            parts.append(f"--- {o.transform}: {o.status}" + (f" ({o.error})" if o.error else ""))
            parts.append(o.detail)
        return "\n".join(parts)


class _Skip(Exception):
    """The reference itself cannot be computed (NumPy raises on it): the check does not apply."""


def reference(fn: Callable, *args):
    """``fn(*args)`` computing an expected value: if it raises, the check is skipped."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except Exception as err:  # noqa: BLE001
        raise _Skip(f"the reference raises {type(err).__name__}: {err}") from None


def _same(a, b) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b, equal_nan=True))


def _shapes(values) -> tuple:
    return tuple(np.shape(v) for v in values)


class _Checker:
    def __init__(self, program: Program, rng: np.random.Generator) -> None:
        self.p = program
        self.rng = rng
        self.f = program.build()
        self.outcomes: list[Outcome] = []
        self.notes: dict = {}
        x = program.samples[0]["x"]
        self.complex = x.dtype.kind == "c"
        y = program.samples[0].get("y")
        self.diff_y = program.has_y and not program.alias and y is not None and y.dtype.kind in "fc"
        self.ref = [self._plain_G(s) for s in range(len(program.samples))]
        # differences need the precision of the least precise float the program touches
        low = any(np.asarray(v).dtype in (np.float32, np.complex64) for v in self.ref[0] + tuple(self.diff(0)))
        self.itemsize = 4 if low or "float32" in program.source() else 8
        # values computed in float32 anywhere may differ in float32's last bits
        # where npfunc runs other (batched, composite) operations than the program
        self.rtol = VALUE_RTOL["f"][self.itemsize]

    # ---- the functions under test ---------------------------------------------------------

    def diff(self, s: int) -> tuple:
        src = self.p.samples[s]
        return (src["x"].copy(),) + ((src["y"].copy(),) if self.diff_y else ())

    def assemble(self, d: tuple, s: int = 0) -> tuple:
        """Arguments of ``f`` from the differentiated ones (others: fresh copies of sample ``s``)."""
        args = [d[0]]
        if self.p.has_y:
            args.append(self.p.aliased(d[0]) if self.p.alias else d[1] if self.diff_y
                        else self.p.samples[s]["y"].copy())
        if self.p.has_c:
            args.append(self.p.statics[0])
        return tuple(args)

    def G(self, s: int = 0, f: Callable | None = None) -> Callable:
        """``f``'s outputs and the final values of its differentiated arguments."""
        f = self.f if f is None else f

        def G(*d):
            out = f(*self.assemble(d, s))
            return out, d
        return G

    def _plain_G(self, s: int) -> tuple:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return copy_leaves(self.G(s)(*self.diff(s)))

    def float_index(self, s: int = 0) -> list[int]:
        return [k for k, v in enumerate(self.ref[s]) if np.asarray(v).dtype.kind in "fc"]

    def Gf(self, s: int = 0, f: Callable | None = None) -> Callable:
        """``G`` restricted to its float leaves, as a tuple: the function differentiated."""
        G, idx = self.G(s, f), self.float_index(s)

        def Gf(*d):
            out = leaves(G(*d))
            return tuple(out[k] for k in idx)
        return Gf

    def weights(self, s: int) -> tuple:
        return tuple(self._draw(np.shape(self.ref[s][k]), np.asarray(self.ref[s][k]).dtype)
                     for k in self.float_index(s))

    def loss(self, s: int, w: tuple, f: Callable | None = None) -> Callable:
        Gf = self.Gf(s, f)

        def loss(*d):
            total = 0.0
            for o, wk in zip(Gf(*d), w):
                total = total + np.real(np.sum(o * wk))
            return total
        return loss

    def _settled(self, F: Callable, primals: tuple, tangents: tuple, fd: tuple) -> None:
        """Before a derivative is called wrong for differing from ``fd``: skip the
        check if central differences with half and twice the step do not agree
        with ``fd`` (a jump within the step, as floor has, or rounding that an
        ill-conditioned program amplifies): the reference is not a derivative."""
        for scale in (0.5, 2.0):
            other = reference(directional_difference, F, primals, tangents, self.itemsize, scale)
            if not all(close(a, b, FD_TOL[self.itemsize]) for a, b in zip(fd, other)):
                raise _Skip(f"central differences do not settle (step x{scale} gives other values)")

    def _draw(self, shape, dtype):
        v = self.rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            v = v + 1j * self.rng.standard_normal(shape)
        return np.asarray(v).astype(dtype)

    # ---- running one check ------------------------------------------------------------------

    def attempt(self, name: str, fn: Callable, retries: tuple = ()) -> Outcome:
        """Run ``fn(sample)``; on a mismatch, ``retries`` are the other samples that must also fail."""
        outcome = self._once(name, fn, 0)
        if outcome.status == "mismatch":
            for s in retries:
                again = self._once(name, fn, s)
                if again.status != "mismatch":
                    outcome = Outcome(name, "ok", f"mismatch at sample 0 only (a kink?): {outcome.detail}")
                    break
                outcome.detail += f"\n  also at sample {s}: {again.detail.splitlines()[0]}"
        self.outcomes.append(outcome)
        return outcome

    @staticmethod
    def _once(name: str, fn: Callable, s: int) -> Outcome:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = fn(s)
        except Mismatch as err:
            return Outcome(name, "mismatch", str(err))
        except _Skip as err:
            return Outcome(name, "skipped", str(err))
        except NpfuncError as err:
            return Outcome(name, "refused", str(err).split("\n")[0][:300], type(err).__name__)
        except Exception as err:  # noqa: BLE001 -- any other exception from npfunc is a bug
            cause = err.__cause__ or err.__context__
            if isinstance(cause, NpfuncError):
                # NumPy's own code re-raised npfunc's refusal (``plain[i] = traced`` gives a
                # ValueError from the ConcretizationError): the user sees npfunc's message.
                return Outcome(name, "refused", str(cause).split("\n")[0][:300],
                               f"{type(err).__name__} from {type(cause).__name__}")
            tb = traceback.format_exception(type(err), err, err.__traceback__)
            return Outcome(name, "crash", "".join(tb[-6:]).rstrip(), type(err).__name__)
        if result == "skipped":
            return Outcome(name, "skipped")
        return Outcome(name, "ok", result or "")

    # ---- value checks ------------------------------------------------------------------------

    def _left_as_plain(self, what: str, given: tuple, want: list) -> None:
        """The caller's differentiated arguments hold afterwards what the plain function
        left in them (``want`` ends with those values: ``G`` returns them)."""
        compare_leaves(list(given), want[len(want) - len(given):],
                       f"{what}: the caller's argument afterwards", rtol=self.rtol)

    def _unchanged(self, what: str, given: tuple, original: tuple) -> None:
        for k, (g, o) in enumerate(zip(given, original)):
            if not np.array_equal(g, o, equal_nan=True):
                raise Mismatch(f"{what}: the caller's argument {k} was changed (the transform must not mutate it)")

    def check_functionalize(self, s: int, remove: str = "mutations") -> None:
        want_out, want_args = run_plain(self.f, self.p.arguments(s))
        args = self.p.arguments(s)
        out = functionalize(self.f, remove=remove)(*args)
        got = leaves(out)
        compare_leaves(got, want_out, "output", rtol=self.rtol)
        compare_leaves(arrays_of(args), want_args, "argument after the call", rtol=self.rtol)
        if remove == "mutations_and_views":
            arrays = [a for a in got if isinstance(a, np.ndarray)]
            for k, a in enumerate(arrays):
                for other in list(arrays_of(args)) + arrays[:k]:
                    if np.shares_memory(a, other):
                        raise Mismatch(f"output {k} shares memory with an input or an earlier output")

    def check_first_order(self, s: int) -> None:
        """vjp and jvp: primal values (all outputs), JVP against differences, VJP adjoint to the JVP."""
        d = self.diff(s)
        want = self.ref[s]
        idx = self.float_index(s)
        out, _ = jvp(self.G(s), d, tuple(np.zeros_like(a) for a in d))
        compare_leaves(leaves(out), want, "jvp primal output", rtol=self.rtol)
        self._left_as_plain("jvp", d, want)
        t = tuple(self._draw(a.shape, a.dtype) for a in d)
        out, tang = jvp(self.Gf(s), self.diff(s), t)
        tang = leaves(tang)
        for k, (tk, ok) in enumerate(zip(tang, out)):
            if np.asarray(tk).dtype != np.asarray(ok).dtype:
                raise Mismatch(f"jvp tangent {k}: dtype {np.asarray(tk).dtype}, "
                               f"its output has {np.asarray(ok).dtype}")
        fd = reference(directional_difference, self.Gf(s), self.diff(s), t, self.itemsize)
        for k, (a, b) in enumerate(zip(tang, fd)):
            if not close(a, b, FD_TOL[self.itemsize]):
                self._settled(self.Gf(s), self.diff(s), t, fd)
                raise Mismatch(f"jvp tangent of output {k} differs from central differences\n"
                               f"  jvp: {np.asarray(a).ravel()[:8]}\n  fd:  {np.asarray(b).ravel()[:8]}")
        # linearize: the same tangents from the staged linear map
        _, jvp_fn = linearize(self.Gf(s), *self.diff(s))
        compare_leaves(leaves(jvp_fn(*t)), tang, "linearize's jvp_fn", rtol=ADJOINT_TOL[self.itemsize],
                       expected="jvp")
        # vjp: values of every output, then the adjoint identity against this JVP
        d = self.diff(s)
        out, pullback = vjp(self.G(s), *d)
        compare_leaves(leaves(out), want, "vjp primal output", rtol=self.rtol)
        self._left_as_plain("vjp", d, want)
        d = self.diff(s)
        _, pullback = vjp(self.Gf(s), *d)
        u = tuple(self._draw(np.shape(want[k]), np.asarray(want[k]).dtype) for k in idx)
        cot = pullback(u)
        for j, (c, a) in enumerate(zip(cot, d)):
            if np.asarray(c).dtype != a.dtype or np.shape(c) != a.shape:
                raise Mismatch(f"vjp cotangent {j}: {np.asarray(c).dtype}{np.shape(c)}, "
                               f"the primal is {a.dtype}{a.shape}")
        lhs = sum(np.real(np.vdot(np.asarray(uk, complex), np.asarray(tk, complex))) for uk, tk in zip(u, tang))
        rhs = sum(np.real(np.vdot(np.asarray(ck, complex), np.asarray(tk, complex))) for ck, tk in zip(cot, t))
        scale = max(1.0, sum(float(np.sum(np.abs(uk) * np.abs(tk))) for uk, tk in zip(u, tang)))
        if abs(lhs - rhs) > ADJOINT_TOL[self.itemsize] * scale:
            raise Mismatch(f"vjp is not the adjoint of jvp: <u, J t> = {lhs!r}, <vjp(u), t> = {rhs!r}")

    def check_grad(self, s: int) -> None:
        d = self.diff(s)
        w = self.weights(s)
        t = tuple(self._draw(a.shape, a.dtype) for a in d)
        g = grad(self.loss(s, w), argnums=tuple(range(len(d))))(*d)
        for j, (gj, a) in enumerate(zip(g, d)):
            if np.asarray(gj).dtype != a.dtype:
                raise Mismatch(f"grad {j}: dtype {np.asarray(gj).dtype}, the input is {a.dtype}")
        got = sum(np.real(np.vdot(np.asarray(gj, complex), np.asarray(tj, complex))) for gj, tj in zip(g, t))
        (want,) = reference(directional_difference, lambda *z: (self.loss(s, w)(*z),), self.diff(s), t,
                            self.itemsize)
        if not close(got, want, FD_TOL[self.itemsize]):
            self._settled(lambda *z: (self.loss(s, w)(*z),), self.diff(s), t, (want,))
            raise Mismatch(f"grad . t = {got!r}, central differences give {float(want)!r}")

    def check_jacobians(self, s: int) -> str | None:
        # Jacobians of complex functions follow torch's convention (jacrev's rows are
        # conjugate-linear): compared only where both are the real Jacobian.
        if self.complex or any(np.asarray(self.ref[s][k]).dtype.kind == "c" for k in self.float_index(s)):
            return "skipped"
        d = self.diff(s)
        argnums = tuple(range(len(d)))
        Jr = jacrev(self.Gf(s), argnums=argnums)(*d)
        Jf = jacfwd(self.Gf(s), argnums=argnums)(*self.diff(s))
        t = tuple(self._draw(a.shape, a.dtype) for a in d)
        _, tang = jvp(self.Gf(s), self.diff(s), t)
        tol = ADJOINT_TOL[self.itemsize]
        for k in range(len(Jr)):
            for j in argnums:
                compare(Jr[k][j], Jf[k][j], f"jacrev [{k}][{j}]", check_dtype=False, rtol=tol, expected="jacfwd")
            Jt = sum(np.tensordot(np.asarray(Jf[k][j], float), t[j], axes=t[j].ndim) for j in argnums)
            compare(Jt, np.asarray(leaves(tang)[k], float), f"jacfwd @ t [{k}]", check_dtype=False, rtol=tol,
                    expected="jvp")

    def loss_x(self, s: int, w: tuple, f: Callable | None = None) -> Callable:
        rest = self.diff(s)[1:]
        loss = self.loss(s, w, f)
        return lambda x: loss(x, *(r.copy() for r in rest))

    def check_second_order(self, s: int) -> str | None:
        if self.complex:
            return "skipped"
        x = self.diff(s)[0]
        w = self.weights(s)
        L = self.loss_x(s, w)
        t = self._draw(x.shape, x.dtype)
        H = np.asarray(hessian(L)(x.copy())).reshape(x.size, x.size)
        (fd,) = reference(directional_difference, lambda z: (grad(L)(z),), (x,), (t,), self.itemsize)
        if not close(H @ t.ravel(), np.ravel(fd), FD_TOL[self.itemsize] * 5):
            self._settled(lambda z: (grad(L)(z),), (x,), (t,), (fd,))
            raise Mismatch(f"hessian @ t differs from central differences of grad\n"
                           f"  H t: {(H @ t.ravel())[:8]}\n  fd:  {np.ravel(fd)[:8]}")
        H2 = np.asarray(jacfwd(jacrev(L))(x.copy())).reshape(x.size, x.size)
        compare(H2, H, "jacfwd(jacrev)", check_dtype=False, rtol=ADJOINT_TOL[self.itemsize], expected="hessian")

    def batch(self) -> list[int] | None:
        """Samples with the same output shapes as sample 0 (None: the program is ragged)."""
        shapes = [_shapes(r) for r in self.ref[:3]]
        return [0, 1, 2] if all(sh == shapes[0] for sh in shapes) else None

    def check_vmap_grad(self, s: int) -> str | None:
        rows = self.batch()
        if self.complex or rows is None:
            return "skipped"
        w = self.weights(0)
        X = np.stack([self.p.samples[r]["x"] for r in rows])
        L = self.loss_x(0, w)
        want = np.stack([reference(grad(L), X[r].copy()) for r in range(len(rows))])
        got = vmap(grad(L))(X.copy())
        compare(got, want, "vmap(grad)", rtol=ADJOINT_TOL[self.itemsize], expected="a loop of grad")

    def _vmap_ref(self, rows: list[int], y_batched: bool, f: Callable) -> tuple[tuple, list]:
        """Stacked results of ``f`` on each row, and the stacked rows of the mapped
        arguments after the calls (a loop over views of the batch leaves them so);
        a row of a 0-d argument is a NumPy scalar, as ``X[i]`` is, and stays as it was."""
        per_row, after = [], []
        for r in rows:
            args = [a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in self.p.arguments(r)]
            if self.p.has_y and not self.p.alias:
                y = args[1] if y_batched else self.p.samples[0]["y"].copy()
                args[1] = y
            if self.p.alias:
                args[1] = self.p.aliased(args[0])
            per_row.append(reference(run_plain, f, tuple(args))[0])
            mapped = [args[0]] + ([args[1]] if self.p.has_y and not self.p.alias and y_batched else [])
            after.append([np.array(a) for a in mapped])
        outs = tuple(np.stack([np.asarray(row[k]) for row in per_row]) for k in range(len(per_row[0])))
        return outs, [np.stack([row[k] for row in after]) for k in range(len(after[0]))]

    def check_vmap(self, s: int, variant: str, f: Callable | None = None) -> str | None:
        rows = self.batch()
        if rows is None:
            return "skipped"
        f = self.f if f is None else f
        p = self.p
        y_plain = p.has_y and not p.alias
        y_mutated = y_plain and not np.array_equal(run_plain(self.f, p.arguments(0))[1][-1], p.samples[0]["y"])
        y_batched = variant != "y unbatched"
        if variant == "y unbatched" and (not y_plain or y_mutated):
            return "skipped"
        if variant == "x at axis -1" and p.samples[0]["x"].ndim == 0:
            return "skipped"
        X = np.stack([p.samples[r]["x"] for r in rows])
        batched = [np.moveaxis(X, 0, -1) if variant == "x at axis -1" else X]
        dims = [-1 if variant == "x at axis -1" else 0]
        if y_plain:
            batched.append(np.stack([p.samples[r]["y"] for r in rows]) if y_batched else p.samples[0]["y"].copy())
            dims.append(0 if y_batched else None)
        statics = (p.statics[0],) if p.has_c else ()

        def V(*arrays):
            x = arrays[0]
            head = (x, p.aliased(x)) if p.alias else tuple(arrays)
            return f(*(head + statics))
        originals = [a.copy() for a in batched]
        want, after = self._vmap_ref(rows, y_batched, self.f)
        got = vmap(V, in_dims=tuple(dims))(*batched)
        compare_leaves(leaves(got), want, f"vmap ({variant})", rtol=self.rtol)
        # the mapped arguments hold what the loop left in their rows; an unmapped one is unchanged
        if variant == "x at axis -1":
            after[0] = np.moveaxis(after[0], 0, -1)
        compare_leaves(batched[:len(after)], after, f"vmap ({variant}): the caller's batch afterwards",
                       rtol=self.rtol)
        self._unchanged("vmap", batched[len(after):], originals[len(after):])

    # ---- jit ------------------------------------------------------------------------------------

    def _ref_with(self, args: tuple, closures: dict) -> tuple:
        f = self.p.build(self.p.namespace(closures))
        out, after = run_plain(f, args)
        return out + after

    def check_jit(self, s: int) -> str:
        p = self.p
        ns = p.namespace()
        jf = jit(p.build(ns))
        recorded: dict = {}
        rules = set()
        for call, sample in enumerate(JIT_CALLS):
            change = CLOSURE_CHANGES.get(call)
            if change is not None and p.closure_updates:
                for name, value in p.closure_updates[change].items():
                    if p.closure_mode == "inplace":
                        ns[name][...] = value
                    else:
                        ns[name] = value.copy()
            static = p.statics[call % len(p.statics)] if p.has_c else None
            key = (type(static).__name__, repr(static))
            current = {n: ns[n].copy() for n in p.closures}
            snapshot = recorded.setdefault(key, current)
            # (with changed closures the plain program itself may raise: shapes that
            # depend on a closed-over array's values; then the check does not apply)
            live = reference(self._ref_with, p.arguments(sample, call), current)
            snap = reference(self._ref_with, p.arguments(sample, call), snapshot)
            args = p.arguments(sample, call)
            got = leaves(jf(*args)) + arrays_of(args)
            situation = (f"jit call {call} (sample {sample}" + (f", c={static!r}" if p.has_c else "")
                         + (f", closures {p.closure_mode} changed" if change is not None and p.closures else "")
                         + ")")
            differ = not all(_same(a, b) for a, b in zip(live, snap))
            try:
                compare_leaves(got, live, situation, rtol=self.rtol)
                rules.add("live" if differ else "")
            except Mismatch as err:
                try:
                    compare_leaves(got, snap, situation, rtol=self.rtol)
                    rules.add("snapshot")
                except Mismatch:
                    raise err from None
        if p.closures and p.closure_updates:
            rules.discard("")
            self.notes["jit closure rule"] = "+".join(sorted(rules)) or "closures changed, output unaffected"
        return ""

    def check_grad_jit(self, s: int) -> None:
        w = self.weights(s)
        x = self.diff(s)[0]
        want = reference(grad(self.loss_x(s, w)), x.copy())
        got = grad(jit(self.loss_x(s, w)))(x.copy())
        compare(got, want, "grad(jit(f))", rtol=ADJOINT_TOL[self.itemsize], expected="grad(f)")
        jg = jit(grad(self.loss_x(s, w)))
        for r in (0, 1, 0):
            xr = self.p.samples[r]["x"]
            if _shapes(self.ref[r]) != _shapes(self.ref[s]):
                continue
            compare(jg(xr.copy()), reference(grad(self.loss_x(s, w)), xr.copy()), f"jit(grad(f)) on sample {r}",
                    rtol=ADJOINT_TOL[self.itemsize], expected="grad(f)")

    def check_vjp_functionalize(self, s: int) -> None:
        d = self.diff(s)
        _, pull = reference(vjp, self.Gf(s), *d)
        _, pull_fz = vjp(functionalize(self.Gf(s)), *self.diff(s))
        u = tuple(self._draw(np.shape(self.ref[s][k]), np.asarray(self.ref[s][k]).dtype)
                  for k in self.float_index(s))
        compare_leaves(pull_fz(u), reference(pull, u), "vjp(functionalize(f)) cotangents", expected="vjp(f)")

    def run(self) -> Report:
        fd_retry = (1, 2)
        self.attempt("functionalize", self.check_functionalize)
        self.attempt("functionalize(remove='mutations_and_views')",
                     lambda s: self.check_functionalize(s, "mutations_and_views"))
        self.attempt("jit", self.check_jit)
        self.attempt("vjp/jvp/linearize", self.check_first_order, fd_retry)
        self.attempt("grad", self.check_grad, fd_retry)
        self.attempt("jacrev/jacfwd", self.check_jacobians)
        self.attempt("hessian, jacfwd(jacrev)", self.check_second_order, fd_retry)
        for variant in ("in_dims=0", "x at axis -1", "y unbatched"):
            self.attempt(f"vmap {variant}", lambda s, v=variant: self.check_vmap(s, v))
        self.attempt("vmap(grad)", self.check_vmap_grad)
        self.attempt("vmap(jit(f))", lambda s: self.check_vmap(s, "in_dims=0", jit(self.p.build())))
        self.attempt("grad(jit(f)), jit(grad(f))", self.check_grad_jit)
        self.attempt("vjp(functionalize(f))", self.check_vjp_functionalize)
        return Report(self.p, self.outcomes, self.notes)


def check_program(program: Program, rng: np.random.Generator | None = None) -> Report:
    """Run ``program`` under every transform; a :class:`Report` of what held.

    >>> import numpy as np
    >>> from npfunc.testing.difftest import Program
    >>> p = Program(body=["a = np.sin(x)", "x[0] += a[1]"], returns=["a"],
    ...             samples=[{"x": np.linspace(-1, 1, 3) + k} for k in range(4)])
    >>> report = check_program(p)
    >>> report.failures
    []
    """
    if rng is None:
        rng = np.random.default_rng(zlib.crc32(program.label.encode()))
    return _Checker(program, rng).run()
