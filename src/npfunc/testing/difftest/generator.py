"""Random programs: statements drawn one at a time and kept when NumPy runs them.

Each statement kind (the ``_k_*`` methods of :class:`_Builder`) proposes a
few source lines over the names defined so far.  The candidate body runs in
plain NumPy on every argument sample and static value (warnings and
floating-point errors count as failures); a statement is kept only when it
runs everywhere and every float value stays finite and moderate, so the
programs are valid NumPy and their derivatives are well conditioned.  The
names' shapes, dtypes and memory sharing are read back from those runs, not
inferred, so no kind needs to know NumPy's shape rules.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .catalog import (BINARY_ANY, BINARY_REAL, BOOL_OPS, BOUND, CASTS, INT_OPS, METHOD_REDUCTIONS, REDUCTIONS,
                      STATICS, UNARY_ANY, UNARY_COMPLEX, UNARY_REAL, X_DTYPE_WEIGHTS, X_DTYPES,
                      X_SHAPE_WEIGHTS, X_SHAPES, draw_argument)
from .program import Program

__all__ = ["generate_program"]

@dataclasses.dataclass
class _Val:
    """What a name holds after the body so far ran (read back from the plain run)."""
    name: str
    kind: str  # "array", "scalar" (NumPy or Python), "list"
    shape: tuple = ()
    dtype: np.dtype = np.dtype(np.float64)
    view: bool = False      # an ndarray sharing memory with something else
    closure: bool = False   # shares memory with a closed-over array: never written
    writeable: bool = True
    varies: bool = False    # differs between argument samples: depends on the arguments

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def is_float(self) -> bool:
        return self.dtype.kind in "fc"


class _Rejected(Exception):
    pass


class _Builder:
    def __init__(self, rng: np.random.Generator, program: Program) -> None:
        self.rng = rng
        self.p = program
        self.env: dict[str, _Val] = {}
        self.counter = 0
        self.refresh(program.body)

    # ---- running candidates --------------------------------------------------------------

    def _runs(self, body: list[str]) -> list[dict]:
        src = compile("\n".join(body) + "\n", "<candidate>", "exec")
        results = []
        for s in range(len(self.p.samples)):
            for st in range(max(1, len(self.p.statics))):
                ns = self.p.namespace()
                for name, value in zip(self.p.params, self.p.arguments(s, st)):
                    ns[name] = value
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    with np.errstate(all="raise"):
                        exec(src, ns)
                results.append(ns)
                if not self.p.has_c:
                    break
        return results

    def refresh(self, body: list[str]) -> None:
        """Run ``body`` everywhere; raise ``_Rejected`` or record the names it defines."""
        try:
            runs = self._runs(body)
        except Exception as err:  # any failure of NumPy rejects the candidate
            raise _Rejected(str(err)) from None
        for ns in runs:
            for name, v in ns.items():
                if name.startswith("_") or name == "np":
                    continue
                _check_moderate(v)
        first = runs[0]
        other = runs[len(runs) // len(self.p.samples)]  # sample 1, same static value
        closures = [first[n] for n in self.p.closures]
        env = {}
        for name, v in first.items():
            if name in ("np", "c", "i") or name.startswith("_") or name in self.p.closures:
                continue
            if isinstance(v, list):
                env[name] = _Val(name, "list")
            elif isinstance(v, np.ndarray):
                env[name] = _Val(name, "array", v.shape, v.dtype, v.base is not None,
                                 any(np.shares_memory(v, w) for w in closures), v.flags.writeable)
            elif isinstance(v, (np.generic, float, int, bool, complex)):
                env[name] = _Val(name, "scalar", (), np.asarray(v).dtype)
        for name, val in env.items():
            val.varies = not _same(first[name], other.get(name))
        for name in self.p.closures:
            w = first[name]
            env[name] = _Val(name, "array", w.shape, w.dtype, False, True, True)
        self.env = env

    def attempt(self, lines: list[str] | None) -> bool:
        if not lines:
            return False
        body = self.p.body + lines
        try:
            self.refresh(body)
        except _Rejected:
            self.refresh(self.p.body)
            return False
        self.p.body = body
        return True

    # ---- picking names ---------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def pick(self, pred=lambda v: True, kinds=("array",)) -> _Val | None:
        cands = [v for v in self.env.values() if v.kind in kinds and pred(v)]
        if not cands:
            return None
        # favour recent names that depend on the arguments: chains rather than fans
        weights = np.arange(1, len(cands) + 1, dtype=float) ** 1.5 * [4.0 if v.varies else 1.0 for v in cands]
        return cands[self.rng.choice(len(cands), p=weights / weights.sum())]

    def pick_float(self, real=False, min_ndim=0, kinds=("array",)) -> _Val | None:
        return self.pick(lambda v: v.dtype.kind in ("f" if real else "fc") and v.ndim >= min_ndim, kinds)

    def operand(self, shape: tuple, real=False) -> str:
        """A float operand broadcastable to ``shape``: a name, a slice of one or a literal."""
        def fits(v):
            try:
                return np.broadcast_shapes(v.shape, shape) == tuple(shape)
            except ValueError:
                return False
        r = self.rng.random()
        if r < 0.2:
            return self.choice(["0.5", "2.0", "0.25", "1.5", "3"])
        v = self.pick(lambda v: v.dtype.kind in ("f" if real else "fc") and fits(v), ("array", "scalar"))
        if v is None:
            return "0.75"
        if self.rng.random() < 0.5:
            return f"np.{self.choice(['sin', 'cos', 'tanh'])}({v.name})"
        return v.name

    def choice(self, items):
        return items[self.rng.integers(len(items))]

    def basic_index(self, shape: tuple) -> str:
        if not shape:
            return self.choice(["...", "()", "None"])
        n = shape[0]
        opts = ["1:", "::-1", "0", "-1", ":-1", "::2", "...", "None, :", f"{n - 1}::-1"]
        if len(shape) >= 2:
            m = shape[1]
            opts += [":, 0", "1:, ::-1", "..., -1", ":, 1:", "0, :", f"::-1, {m - 1}", ":, None, :"]
        if n >= 3:
            opts += ["1:3", "-2:", "1:-1"]
        return self.choice(opts)

    def advanced_index(self, shape: tuple) -> str:
        n = shape[0]
        opts = [f"[0, {n - 1}]", f"np.array([{n - 1}, 0, {n - 1}])", f"[{n - 1}]",
                "np.array([" + ", ".join(self.choice(["True", "False"]) for _ in range(n)) + "])"]
        if len(shape) >= 2:
            m = shape[1]
            opts += [f"[0, {n - 1}], [{m - 1}, 0]", f":, [{m - 1}, 0]", f"[{n - 1}], :"]
        return self.choice(opts)

    def axis(self, v: _Val) -> str:
        if v.ndim == 0:
            return self.choice(["None", "()"])
        opts = ["None", str(self.rng.integers(-v.ndim, v.ndim)), "0", "-1"]
        if v.ndim >= 2:
            opts += ["(0, 1)", "(-1, 0)", "()"]
        return self.choice(opts)

    # ---- statement kinds -------------------------------------------------------------------

    def _k_unary(self):
        a = self.pick_float()
        if a is None:
            return None
        ops = UNARY_ANY + (UNARY_COMPLEX if a.dtype.kind == "c" else UNARY_REAL)
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name)]

    def _k_binary(self):
        a = self.pick_float(kinds=("array", "scalar"))
        if a is None:
            return None
        real = a.dtype.kind == "f"
        b = self.operand(a.shape, real=real)
        ops = BINARY_ANY + (BINARY_REAL if real and not b[0].isdigit() else [])
        if self.rng.random() < 0.5:
            a_name, b = b, a.name  # the broadcast operand on either side
        else:
            a_name = a.name
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a_name, b=b)]

    def _k_int_bool(self):
        k = self.pick(lambda v: v.dtype.kind in "iu", ("array", "scalar"))
        m = self.pick(lambda v: v.dtype.kind == "b", ("array", "scalar"))
        a = self.pick_float(real=True, kinds=("array", "scalar"))
        if a is None:
            return None
        ops = [op for op in INT_OPS if k is not None] + [op for op in BOOL_OPS if m is not None or "{m}" not in op]
        op = self.choice(ops)
        b = self.operand(a.shape, real=True)
        name = self.fresh("k" if "{k}" in op else "m")
        return [f"{name} = " + op.format(k=k.name if k else "", m=m.name if m else "", a=a.name, b=b)]

    def _k_cast(self):
        a = self.pick(lambda v: v.dtype.kind in "fcb", ("array", "scalar"))
        if a is None:
            return None
        op = self.choice(CASTS)
        if a.dtype.kind == "c" and ("int" in op or "float" in op or "bool" in op) and ".real" not in op:
            op = "np.real({a})" if self.rng.random() < 0.5 else op.replace("{a}", "{a}.imag")
        return [f"{self.fresh('a')} = " + op.format(a=a.name)]

    def _k_reduction(self):
        a = self.pick(lambda v: v.dtype.kind in "fcib", ("array",))
        if a is None:
            return None
        red = self.choice(REDUCTIONS)
        kw = []
        if red not in ("trace", "median", "average"):
            kw.append(f"axis={self.axis(a)}")
        elif red != "trace":
            kw.append(f"axis={self.choice(['None', '0', '-1'])}")
        if red in ("sum", "mean", "max", "min", "prod", "any", "all", "amax", "nansum", "var", "std", "ptp") \
                and self.rng.random() < 0.4:
            kw.append("keepdims=True")
        if red in ("sum", "mean", "prod", "cumsum", "trace", "nansum", "var", "std") and self.rng.random() < 0.35:
            dt = ["np.float32", "np.float64"] + (["np.int16", "np.int64"] if a.dtype.kind in "ib" else [])
            kw.append(f"dtype={self.choice(dt)}")
        if red in ("var", "std") and self.rng.random() < 0.5:
            kw.append("ddof=1")
        if red in ("sum", "max", "min", "prod") and self.rng.random() < 0.25:
            kw.append(f"initial={self.choice(['0.5', '1', '-2.0'])}")
        if red in ("sum", "mean", "max") and a.ndim >= 1 and self.rng.random() < 0.15:
            mask = "np.array([" + ", ".join(self.choice(["True", "False"]) for _ in range(a.shape[-1])) + "])"
            kw.append(f"where={mask}")
            if red == "max":
                kw.append("initial=-1.0")
        kws = ", ".join(kw)
        name = self.fresh("s" if "axis=None" in kws else "a")
        if red in METHOD_REDUCTIONS and self.rng.random() < 0.5:
            return [f"{name} = {a.name}.{red}({kws})"]
        return [f"{name} = np.{red}({a.name}{', ' if kws else ''}{kws})"]

    def _k_shape(self):
        a = self.pick(lambda v: True)
        if a is None:
            return None
        nd = a.ndim
        ax = str(self.rng.integers(-nd, nd)) if nd else "0"
        ops = ["{a}.reshape(-1)", "np.ravel({a})", "{a}.T", "np.expand_dims({a}, 0)", "{a}[None]",
               "np.atleast_2d({a})", "{a}.flatten()", "np.tile({a}, 2)", "np.broadcast_to({a}, (2,) + {a}.shape)",
               "np.reshape({a}, (1, -1))", "{a}.ravel()"]
        if nd >= 1:
            ops += [f"np.flip({{a}}, {ax})", f"np.roll({{a}}, 1, axis={ax})", f"np.repeat({{a}}, 2, axis={ax})",
                    "np.pad({a}, 1)", f"np.sort({{a}}, axis={ax})", f"np.cumsum({{a}}, axis={ax})",
                    f"np.diff({{a}}, axis={ax})" if a.shape[int(ax)] > 1 else "np.squeeze({a})",
                    "np.squeeze({a})", f"np.concatenate([{{a}}, {{a}} * 2.0], axis={ax})",
                    f"np.stack([{{a}}, np.sin({{a}})], axis={ax})", "np.hstack([{a}, {a}])",
                    "np.vstack([{a}, {a}])", "{a}.reshape(" + str(a.size) + ", 1)",
                    f"np.take_along_axis({{a}}, np.argsort({{a}}, axis={ax}), axis={ax})",
                    "np.clip(0.3, -{a} * {a}, 1.0)" if a.dtype.kind == "f" else "np.ravel({a})"]
        if nd >= 2:
            ops += ["np.transpose({a})", "np.swapaxes({a}, 0, 1)", "np.moveaxis({a}, 0, -1)",
                    "{a}.reshape({a}.shape[0], -1)", "{a}.reshape(-1, order='F')", "np.rot90({a})",
                    "np.transpose({a}, (1, 0) + tuple(range(2, {a}.ndim)))"]
        b = self.pick(lambda v: v.ndim == nd and v.dtype.kind in "fc" and v.name != a.name)
        if b is not None and nd >= 1:
            ops += [f"np.concatenate([{{a}}, {b.name}], axis={ax})", f"np.stack([{{a}}, {b.name}])"]
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name)]

    def _k_index(self):
        a = self.pick(lambda v: v.ndim >= 1)
        if a is None:
            return None
        r = self.rng.random()
        if r < 0.55:
            return [f"{self.fresh('v')} = {a.name}[{self.basic_index(a.shape)}]"]
        if r < 0.8:
            return [f"{self.fresh('a')} = {a.name}[{self.advanced_index(a.shape)}]"]
        if r < 0.9 and a.dtype.kind == "f":
            return [f"{self.fresh('a')} = {a.name}[{a.name} > {self.choice(['0', '0.2', '-0.5'])}]"]
        return [f"{self.fresh('a')} = np.take({a.name}, [{a.size - 1}, 0])"]

    def _k_view(self):
        a = self.pick(lambda v: v.ndim >= 1)
        if a is None:
            return None
        ops = [f"{{a}}[{self.basic_index(a.shape)}]", "{a}.T", "{a}.reshape(-1)", "np.ravel({a})",
               "{a}[None]", "np.expand_dims({a}, -1)", "{a}[...]", "np.asarray({a})", "{a}.view()",
               "np.flip({a}, 0)", "{a}[::-1][1:]", "np.atleast_2d({a})"]
        if a.ndim >= 2:
            ops += ["np.swapaxes({a}, 0, 1)", "{a}.reshape({a}.shape[0], -1)", "{a}[:, ::-1]"]
        if 1 in a.shape:
            ops.append("np.squeeze({a})")
        if a.dtype.kind == "c":
            ops += ["{a}.real", "{a}.imag", "np.real({a})"]
        return [f"{self.fresh('v')} = " + self.choice(ops).format(a=a.name)]

    def _target(self):
        """An array to write into: views and arguments first, never a closed-over array."""
        def ok(v):
            return not v.closure and v.writeable
        t = self.pick(lambda v: ok(v) and (v.view or v.name in ("x", "y")))
        if t is None or self.rng.random() < 0.3:
            t = self.pick(ok) or t
        return t

    def _k_write(self):
        t = self._target()
        if t is None:
            return None
        real = t.dtype.kind != "c"
        e = self.operand(t.shape, real=real)
        ops = [f"{{t}} += {e}", f"{{t}} *= {e}", f"{{t}} -= {e}", f"np.multiply({{t}}, 2.0, out={{t}})",
               f"np.add({{t}}, {e}, out={{t}})", f"np.copyto({{t}}, {e})", "{t}.fill(0.25)",
               f"{{t}}[...] = {e}", "np.sin({t}, out={t})", f"{{t}} /= 1.5 + np.abs({e})"]
        if t.ndim >= 1:
            idx = self.basic_index(t.shape)
            ops += [f"{{t}}[{idx}] = {self.operand((), real)}", f"{{t}}[{idx}] += {self.operand((), real)}",
                    f"{{t}}[{self.advanced_index(t.shape)}] = {self.operand((), real)}",
                    "{t}.sort()", "{t}.sort(axis=0)", "{t}[1:] += {t}[:-1]", "{t}[:-1] = {t}[1:] * 0.5",
                    f"{{t}}[{{t}} > 0.5] = {self.choice(['0.0', '1.0'])}", f"{{t}}[0] = np.tanh({{t}}[-1])",
                    f"{{t}}[[0, 0, -1]] += {self.operand((), real)}",
                    f"np.add.at({{t}}, [0, 0, -1], {self.operand((), real)})",
                    f"{{t}}[[-1, 0, -1]] = {self.operand((3,), real)}", f"np.copyto({{t}}, {e}, where={{t}} > 0)"]
        if t.ndim >= 2:
            ops += ["{t}.T[0] = {t}[:, -1]", "{t}[:, 0] *= 2.0"]
        if t.dtype.kind == "c":
            ops += ["{t}.real[...] = 0.5", "{t}.imag *= -1.0"]
        return [self.choice(ops).format(t=t.name)]

    def _k_copy(self):
        a = self.pick()
        if a is None:
            return None
        ops = ["{a}.copy()", "np.copy({a})", "{a}.astype({a}.dtype)", "np.array({a})", "+{a}",
               "np.array({a}, copy=True)", "{a}[...].copy()", "np.ascontiguousarray({a})", "{a}.T.copy()",
               "np.concatenate([{a}.reshape(-1)])", "np.roll({a}, 0)", "np.tile({a}, 1)", "{a}.flatten()",
               "np.pad({a}, 0)", "{a}.astype({a}.dtype, copy=False)", "np.asarray({a}, dtype={a}.dtype)"]
        name = self.fresh("a")
        lines = [f"{name} = " + self.choice(ops).format(a=a.name)]
        if a.is_float() and not a.closure and a.writeable and self.rng.random() < 0.6:
            # write into the source afterwards: the copy must not see it
            lines.append(f"{a.name}[...] = np.cos({a.name})" if a.ndim else f"{a.name}[...] = 0.0")
        return lines

    def _k_list_alias(self):
        a = self.pick(lambda v: v.is_float() and not v.closure and v.writeable)
        if a is None:
            return None
        b = self.pick(lambda v: v.is_float() and not v.closure and v.writeable) or a
        name = self.fresh("L")
        upd = self.choice([f"{name}[0] += 1.0", f"{name}[1] *= np.cos({name}[0])", f"{name}[0][...] = 0.5",
                           f"{name}[1] -= {name}[0] * 0.5" if a.shape == b.shape else f"{name}[1] *= 2.0"])
        return [f"{name} = [{a.name}, {b.name}]", upd]

    def _k_accumulate(self):
        a = self.pick_float(min_ndim=1)
        if a is None:
            return None
        s = self.fresh("s")
        body = self.choice(["{s} += {a}[i] * {a}[i]", "{s} += np.sin({a}[i])", "{s} = {s} * 0.5 + {a}[i]"])
        forms = [[f"{s} = 0.0", f"for i in range({a.shape[0]}):", "    " + body.format(s=s, a=a.name)],
                 [f"{s} = {a.name}.sum() + 1.0", f"{s} *= 0.5"],
                 [f"{s} = {a.name}.ravel()[0] + 1.0"], [f"{s} = {a.name}[0] * 2"],
                 [f"{s} = 0", f"{s} += {a.name}.mean()"], [f"{s} = float({a.name}.ravel()[0])"],
                 [f"{s} = {a.name}.shape[0] * 0.5"], [f"{s} = len({a.name})"]]
        weights = np.array([4, 2, 2, 2, 2, 0.5, 1, 0.5])
        return forms[self.rng.choice(len(forms), p=weights / weights.sum())]

    def _k_where(self):
        a = self.pick_float(real=True)
        if a is None:
            return None
        b = self.operand(a.shape, real=True)
        m = self.pick(lambda v: v.dtype.kind == "b" and v.ndim <= a.ndim)
        ops = [f"np.where({{a}} > {self.choice(['0', '0.3'])}, {{a}}, {b} * 2.0)",
               f"np.where({{a}} < {b}, {b}, 0.0)",
               "np.where({a} > 0, np.sin({a}), np.cos({a}))"]
        if m is not None:
            ops.append(f"np.where({m.name}, {{a}}, {b})")
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name)]

    def _k_contract(self):
        a = self.pick_float(min_ndim=1)
        if a is None:
            return None
        n = a.shape[-1]
        b = self.pick(lambda v: v.is_float() and v.ndim >= 1 and v.shape[0] == n)
        ops = ["np.einsum('...i->...', {a})", "{a} @ np.ones({n})", "np.dot({a}, np.arange({n}) * 0.5)",
               "np.outer({a}, {a})", "np.inner({a}, {a})", "np.einsum('...i,...i->...', {a}, {a})"]
        if b is not None:
            ops += [f"{{a}} @ {b.name}", f"np.dot({{a}}, {b.name})", f"np.matmul({{a}}, {b.name})",
                    f"np.tensordot({{a}}, {b.name}, axes=1)"]
        if a.ndim == 2:
            ops += ["{a}.T @ {a}", "np.einsum('ij,ik->jk', {a}, {a})", "np.einsum('ij->j', {a})"]
            if a.shape[0] == a.shape[1]:
                ops += ["np.einsum('ii->i', {a})", "np.trace({a})", "np.einsum('ii', {a})",
                        "np.diagonal({a}) * 1.0"]
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name, n=n)]

    def _k_linalg(self):
        a = self.pick_float(min_ndim=1)
        if a is None:
            return None
        M = self.fresh("M")
        if a.ndim == 2 and a.shape[0] == a.shape[1]:
            lines = [f"{M} = 2.0 * np.eye({a.shape[0]}) + 0.3 * np.tanh({a.name})"]
        else:
            lines = [f"{M} = 2.0 * np.eye({a.shape[-1]}) + 0.3 * np.tanh(np.outer({a.name}[..., 0], {a.name}))"
                     if a.ndim > 1 else
                     f"{M} = 2.0 * np.eye({a.shape[0]}) + 0.3 * np.tanh(np.outer({a.name}, np.cos({a.name})))"]
        n = a.shape[-1] if a.ndim == 1 or a.shape[0] != a.shape[-1] else a.shape[0]
        b = self.pick(lambda v: v.is_float() and v.ndim >= 1 and v.shape[0] == n)
        rhs = b.name if b is not None and b.ndim <= 2 else f"np.ones({n})"
        op = self.choice([f"np.linalg.solve({M}, {rhs})", f"np.linalg.det({M})", f"np.linalg.inv({M})",
                          f"np.linalg.slogdet({M})[1]", f"np.linalg.norm({M})", f"np.linalg.eigvalsh({M} + {M}.T)",
                          f"np.linalg.solve({M}, {rhs}) * np.linalg.det({M})", f"np.linalg.norm({M}, axis=0)"])
        return lines + [f"{self.fresh('a')} = {op}"]

    def _k_make_array(self):
        parts = []
        for _ in range(self.rng.integers(2, 4)):
            v = self.pick(lambda v: v.is_float() and v.dtype.kind == "f", ("array", "scalar"))
            if v is None:
                parts.append("1.0")
            elif v.kind == "scalar" or v.ndim == 0:
                parts.append(v.name)
            else:
                parts.append(f"{v.name}.ravel()[{self.rng.integers(v.size)}]")
        parts.append(self.choice(["1.0", "0.5", "2"]))
        ctor = self.choice(["np.array", "np.asarray", "np.stack"])
        return [f"{self.fresh('a')} = {ctor}([{', '.join(parts)}])"]

    def _k_buffer(self):
        a = self.pick_float(min_ndim=1)
        if a is None:
            return None
        buf = self.fresh("b")
        n = a.shape[0]
        make = self.choice([f"np.zeros({a.shape!r}, like={a.name})", f"np.zeros_like({a.name})",
                            f"np.empty_like({a.name})", f"np.ones({n + 1}, like={a.name})",
                            f"np.zeros({a.shape!r})", f"np.full({a.shape!r}, 0.5, like={a.name})"])
        lines = [f"{buf} = {make}"]
        if f"({n + 1}" in make:
            rows = a.name if a.ndim == 1 else f"{a.name}.sum(axis=tuple(range(1, {a.name}.ndim)))"
            lines.append(f"{buf}[1:] = {rows}")
        else:
            lines.append(self.choice([f"{buf}[...] = np.sin({a.name})", f"{buf}[0] = {a.name}[-1]",
                                      f"{buf}[:] = {a.name}\n{buf} *= {a.name}"]))
            if "\n" in lines[-1]:
                lines[-1:] = lines[-1].split("\n")
            if "empty_like" in make and "[0] =" in lines[-1]:
                lines[-1] = f"{buf}[...] = {a.name} * 2.0"
        return lines

    def _k_control(self):
        a = self.pick_float(real=True)
        if a is None:
            return None
        n = self.fresh("a")
        return [self.choice([f"{n} = {a.name} * 2.0 if {a.name}.sum() > 0 else {a.name} - 1.0",
                             f"if {a.name}.max() > 0.5:\n    {n} = np.sin({a.name})\n"
                             f"else:\n    {n} = {a.name} ** 2"])
                ][0].split("\n")

    def _k_static(self):
        if not self.p.has_c:
            return None
        a = self.pick_float()
        if a is None:
            return None
        shape = a.shape
        c0 = self.p.statics[0]
        ops = ["{a} * c", "{a} + c", "np.full({shape!r}, c)", "{a} + np.array(c)", "np.copysign(1.0, c) * {a}",
               "{a} ** c", "np.add({a}, c)", "np.arange(3) * c", "{a} * 2.0 if c else {a} + 1.0",
               "np.asarray(c) * {a}", "np.zeros({shape!r}) + c", "{a} / (1.5 + c)", "np.array([c, 1])",
               "np.tile({a}, int(c) + 1)", "{a}[:int(c) + 1]" if a.ndim else "{a} - c",
               "np.where({a} > c, {a}, c)",
               "np.sum({a}, dtype=type(c))" if not isinstance(c0, bool) else "{a} + c"]
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name, shape=shape)]

    def _k_closure(self):
        if not self.p.closures:
            return None
        w = self.choice(list(self.p.closures))
        a = self.pick_float(kinds=("array",))
        if a is None:
            return None
        ops = ["{a} * {w}.sum()", "{a} + {w}.max()", "np.where({w}.ravel()[0] > 0, {a}, -{a})",
               "{a} * ({w}.mean() > 0.2)", "{a} + {w}[0]", "np.sin({a}) * {w}.ravel()[-1]",
               "{a} + np.count_nonzero({w} > 0)"]
        shape = self.p.closures[w].shape
        try:
            if np.broadcast_shapes(shape, a.shape) == a.shape:
                ops += ["{a} * {w}", "{a} - np.tanh({w})", "np.where({w} > 0, {a}, 0.5)", "np.maximum({a}, {w})"]
        except ValueError:
            pass
        if a.ndim >= 1 and len(shape) == 2 and shape[1] == a.shape[0]:
            ops += ["{w} @ {a}"]
        return [f"{self.fresh('a')} = " + self.choice(ops).format(a=a.name, w=w)]

    KINDS = {"unary": 10, "binary": 9, "int_bool": 3, "cast": 2, "reduction": 6, "shape": 5,
             "index": 5, "view": 6, "write": 11, "copy": 4, "list_alias": 1.5, "accumulate": 2.5,
             "where": 2, "contract": 3, "linalg": 1.5, "make_array": 1.5, "buffer": 2, "control": 1,
             "static": 3, "closure": 3}

    def statement(self) -> bool:
        names = list(self.KINDS)
        w = np.array([self.KINDS[k] for k in names])
        kind = names[self.rng.choice(len(names), p=w / w.sum())]
        try:
            lines = getattr(self, f"_k_{kind}")()
        except (ValueError, IndexError, KeyError):  # a kind that does not fit the names (an empty array)
            return False
        return self.attempt(lines)


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            _same(p, q) for p, q in zip(a, b))
    try:
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    except Exception:  # noqa: BLE001
        return False


def _check_moderate(v) -> None:
    arrays = v if isinstance(v, list) else [v]
    for a in arrays:
        if isinstance(a, (np.ndarray, np.generic, float, complex)) and np.asarray(a).dtype.kind in "fc":
            arr = np.asarray(a)
            if not np.all(np.isfinite(arr)) or (arr.size and np.max(np.abs(arr)) > BOUND):
                raise _Rejected("not finite or too large")


def generate_program(rng: np.random.Generator, statements: int | None = None, label: str = "") -> Program:
    """A random valid program of ``statements`` statements (3 to 8 by default).

    >>> import numpy as np
    >>> p = generate_program(np.random.default_rng(0), label="0")
    >>> p.source().startswith("def f(x")
    True
    """
    shape = X_SHAPES[rng.choice(len(X_SHAPES), p=np.array(X_SHAPE_WEIGHTS) / sum(X_SHAPE_WEIGHTS))]
    dtype = X_DTYPES[rng.choice(len(X_DTYPES), p=np.array(X_DTYPE_WEIGHTS) / sum(X_DTYPE_WEIGHTS))]
    has_y = rng.random() < 0.55
    alias = ""
    if has_y and rng.random() < 0.3:
        forms = ["x", "x"] + (["x[::-1]", "x[1:]"] if len(shape) >= 1 else [])
        forms += ["x.T"] if len(shape) >= 2 else []
        alias = forms[rng.integers(len(forms))]
    y_dtype = y_shape = None
    if has_y and not alias:
        y_dtype = [dtype, np.int8, np.bool_][rng.choice(3, p=[0.6, 0.2, 0.2])]
        y_shape = shape if rng.random() < 0.6 or not shape else shape[1:]
    samples = []
    for _ in range(4):
        s = {"x": draw_argument(rng, shape, dtype)}
        if y_dtype is not None:
            s["y"] = draw_argument(rng, y_shape, y_dtype)
        samples.append(s)
    has_c = rng.random() < 0.35
    statics = list(rng.permutation(np.array(STATICS, dtype=object))[:4]) if has_c else []
    statics = [v.item() if isinstance(v, np.generic) else v for v in statics]
    closures, updates = {}, []
    if rng.random() < 0.4:
        for k in range(rng.integers(1, 3)):
            wshape = [shape, (3,), (2, shape[0]) if shape else (2,), ()][rng.integers(4)]
            closures[f"W{k}"] = rng.uniform(-1.0, 1.0, wshape)
        updates = [{n: rng.uniform(-1.0, 1.0, w.shape) for n, w in closures.items()} for _ in range(2)]
    program = Program(body=[], returns=[], samples=samples, alias=alias, has_y=has_y, has_c=has_c,
                      statics=statics, closures=closures, closure_updates=updates,
                      closure_mode="inplace" if rng.random() < 0.6 else "rebind", label=label)
    builder = _Builder(rng, program)
    target = int(rng.integers(3, 9)) if statements is None else statements
    tries = 0
    while len(program.body) < target and tries < 12 * target:
        tries += 1
        builder.statement()
    _choose_returns(rng, builder)
    return program


def _choose_returns(rng, builder: _Builder) -> None:
    env = builder.env
    names = [n for n, v in env.items() if v.kind in ("array", "scalar") and n not in builder.p.closures]
    defined = [n for n in names if n not in ("x", "y")]
    varying = [n for n in defined if env[n].varies and env[n].is_float()]
    returns = [varying[-1]] if varying else [defined[-1]] if defined else ["x"]
    for n in rng.permutation(names)[: rng.integers(0, 3)]:
        if n not in returns:
            returns.append(str(n))
    if not any(env[n].is_float() for n in returns if n in env):
        floats = [n for n in names if env[n].is_float()]
        returns.append(floats[-1] if floats else "x")
    builder.p.returns = returns
