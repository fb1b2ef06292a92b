"""A generated program: a list of Python statements over named arrays.

A :class:`Program` is plain data -- its parameters, the statements of its
body as source lines, what it returns, the arrays it closes over and the
arguments it is called with -- so a failing program prints as a runnable
Python script (:meth:`Program.script`) and is rebuilt by ``exec`` of that
source (:meth:`Program.build`).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

import numpy as np

__all__ = ["Program", "array_source", "run_plain"]


def array_source(a: Any) -> str:
    """Python source that rebuilds ``a`` exactly (floats print round-trip)."""
    if isinstance(a, np.ndarray):
        return f"np.array({a.tolist()!r}, dtype=np.{a.dtype.name})"
    return repr(a)


@dataclasses.dataclass
class Program:
    """A random program and the values it runs on.

    ``params`` are the parameter names: ``x`` (differentiated), optionally
    ``y`` (a second array, or, when ``alias`` is set, the expression in ``x``
    it is passed as: ``"x"`` passes the same array twice, ``"x[::-1]"`` a
    view of it) and ``c`` (a static Python scalar).  ``samples`` are argument sets (the first is the
    point the derivatives are checked at); ``statics`` the values of ``c``
    for successive calls; ``closures`` the initial values of the arrays the
    body reads as free variables, and ``closure_updates`` the new values
    they get between jit calls (``closure_mode``: ``"inplace"`` writes them
    into the same array, ``"rebind"`` binds the name to a new array).
    """

    body: list[str]
    returns: list[str]
    samples: list[dict[str, np.ndarray]]
    alias: str = ""
    has_y: bool = False
    has_c: bool = False
    statics: list = dataclasses.field(default_factory=list)
    closures: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    closure_updates: list[dict[str, np.ndarray]] = dataclasses.field(default_factory=list)
    closure_mode: str = "inplace"
    label: str = ""

    @property
    def params(self) -> tuple[str, ...]:
        return ("x",) + (("y",) if self.has_y else ()) + (("c",) if self.has_c else ())

    # ---- source ---------------------------------------------------------------------------

    def source(self) -> str:
        """The function ``f`` as Python source."""
        lines = [f"def f({', '.join(self.params)}):"]
        lines += ["    " + line for line in self.body]
        lines.append(f"    return {', '.join(self.returns)}" + ("," if len(self.returns) == 1 else ""))
        return "\n".join(lines) + "\n"

    def script(self, sample: int = 0) -> str:
        """A runnable script: the closures, ``f`` and a call on sample ``sample``."""
        head = ["import numpy as np", ""]
        head += [f"{name} = {array_source(v)}" for name, v in self.closures.items()]
        if self.closures:
            head.append("")
        args = self.samples[sample]
        call = ["", f"x = {array_source(args['x'])}"]
        if self.has_y:
            call.append(f"y = {self.alias}  # " + ("the same array passed twice" if self.alias == "x"
                                                     else "a view of x") if self.alias
                        else f"y = {array_source(args['y'])}")
        if self.has_c:
            call.append(f"c = {self.statics[0]!r}  # static; jit calls use {self.statics!r}")
        call.append(f"print(f({', '.join(self.params)}))")
        return "\n".join(head) + self.source() + "\n".join(call) + "\n"

    def aliased(self, x):
        """The second argument made from ``x`` (``x`` itself or a view of it)."""
        return eval(self.alias, {"x": x})  # noqa: S307 -- one of the generator's expressions

    # ---- running ----------------------------------------------------------------------------

    def namespace(self, closures: dict[str, np.ndarray] | None = None) -> dict:
        """Globals for ``f``: NumPy and fresh copies of the closed-over arrays."""
        ns = {"np": np}
        for name, v in (self.closures if closures is None else closures).items():
            ns[name] = v.copy()
        return ns

    def build(self, namespace: dict | None = None) -> Callable:
        """``f`` compiled into ``namespace`` (a fresh :meth:`namespace` by default)."""
        ns = self.namespace() if namespace is None else namespace
        exec(compile(self.source(), f"<difftest {self.label}>", "exec"), ns)
        return ns["f"]

    def arguments(self, sample: int = 0, static_index: int = 0, arrays: dict | None = None) -> tuple:
        """Fresh copies of the arguments of sample ``sample`` (``y`` made from ``x`` when aliased)."""
        src = self.samples[sample] if arrays is None else arrays
        x = np.array(src["x"], copy=True)
        args: list = [x]
        if self.has_y:
            args.append(self.aliased(x) if self.alias else np.array(src["y"], copy=True))
        if self.has_c:
            args.append(self.statics[static_index % len(self.statics)])
        return tuple(args)


def run_plain(f: Callable, args: tuple) -> tuple[tuple, tuple]:
    """``f(*args)`` as NumPy runs it: (output leaves copied, argument arrays after the call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(*args)
    return copy_leaves(out), copy_leaves(arrays_of(args))


def arrays_of(args) -> tuple:
    """The distinct ndarrays among ``args`` (an array passed twice counts once)."""
    seen, out = set(), []
    for a in args:
        if isinstance(a, np.ndarray) and id(a) not in seen:
            seen.add(id(a))
            out.append(a)
    return tuple(out)


def leaves(out) -> tuple:
    """The leaves of a (possibly nested) tuple/list output."""
    if isinstance(out, (tuple, list)):
        return tuple(leaf for item in out for leaf in leaves(item))
    return (out,)


def copy_leaves(out) -> tuple:
    return tuple(np.array(leaf, copy=True) if isinstance(leaf, np.ndarray) else leaf
                 for leaf in leaves(out))
