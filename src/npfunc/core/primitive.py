"""Primitives: the one place an operation and all its rules are defined.

A ``Primitive`` holds

* ``impl(*args, **params)`` -- the NumPy computation on plain arrays;
* ``jvp(primals, tangents, out, **params)`` -- the tangent of the output;
  tangents may be the symbolic ``zero``;
* ``vjp(cotangent, primals, out, needs, **params)`` -- a tuple with one
  cotangent (or ``zero``) per argument; ``needs[i]`` says whether argument
  ``i`` wants one;
* ``batch(values, dims, **params)`` -- ``(out, out_dim)`` for arguments whose
  batch axis is ``dims[i]`` (``None`` = not batched);
* ``samples(rng)`` -- example ``Sample``s the generated tests run on.

Rules are written with npfunc's own operations, so every rule is itself
differentiable and batchable.  That is what makes ``grad(grad(f))``,
``jacfwd(jacrev(f))`` and ``vmap(vjp_fn)`` work without extra code.  A
future staging interpreter only needs a new ``Interpreter.process``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from . import debug
from .dispatch import Table
from .tracer import Tracer

_FLAGS = debug.FLAGS  # per-thread debug switches, read by every plain application
_NAN_CHECKS = debug.NAN_CHECKS  # nonzero while some thread debugs NaNs

#: Every primitive by name.  Modules load on first use (core/lazy.py), so
#: ``REGISTRY[name]`` may load one; iterate it after ``core.lazy.load_all()``.
REGISTRY: dict[str, "Primitive"] = Table("primitive")
#: NumPy (and SciPy) functions npfunc implements by composing primitives,
#: keyed by name; each carries samples, so the generated tests cover the
#: function exactly as a user calls it.
COMPOSITES: dict[str, "Composite"] = Table("composite")


class Sample:
    """One example call of a primitive: positional ``args`` and static ``params``.

    ``argnums`` lists the arguments the generated derivative tests perturb
    (default: every floating-point array argument).  ``kink=True`` marks a
    sample at a non-differentiable point (ties, kinks): its convention is
    checked by the adjoint identity and by hand, not by differences.
    ``fd_order`` is the highest derivative order compared with differences
    (default 2; 0 with ``kink``): 1 at a point where central differences
    still give the convention but the gradient jumps (a norm at 0), 3 near
    special points of functions whose higher derivatives are delicate.
    """

    __slots__ = ("args", "params", "argnums", "label", "kink", "fd_order")

    def __init__(self, *args: Any, argnums: tuple[int, ...] | None = None,
                 label: str = "", kink: bool = False, fd_order: int | None = None, **params: Any) -> None:
        self.args = args
        self.params = params
        self.argnums = argnums
        self.label = label
        self.kink = kink
        self.fd_order = (0 if kink else 2) if fd_order is None else fd_order

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{a.dtype}{list(a.shape)}" if isinstance(a, (np.ndarray, np.generic)) else repr(a)
            for a in self.args
        )
        extra = f" {self.params}" if self.params else ""
        return f"Sample({shapes}{extra}{' ' + self.label if self.label else ''})"


class Primitive:
    """An operation with its implementation and its rules (see module doc)."""

    __slots__ = ("name", "impl", "jvp", "vjp", "batch", "samples",
                 "differentiable", "multiple_results", "notes", "effect", "ufunc", "operator")

    def __init__(
        self,
        name: str,
        impl: Callable,
        *,
        jvp: Callable | None = None,
        vjp: Callable | None = None,
        batch: Callable | None = None,
        samples: Callable[..., Iterable[Sample]] | None = None,
        differentiable: bool = True,
        multiple_results: bool = False,
        notes: str = "",
        register: bool = True,
        effect: bool = False,
        ufunc: np.ufunc | None = None,
    ) -> None:
        if differentiable and (jvp is None or vjp is None):
            raise ValueError(f"primitive {name!r}: a differentiable primitive needs jvp and vjp rules")
        if register and name in REGISTRY:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name = name
        self.impl = impl
        self.jvp = jvp
        self.vjp = vjp
        self.batch = batch
        self.samples = samples
        self.differentiable = differentiable
        self.multiple_results = multiple_results
        self.notes = notes
        #: an application matters even when its output is unused (it raises on
        #: bad values): program optimisations must keep it
        self.effect = effect
        #: the NumPy ufunc ``impl`` computes (``impl`` itself, or a quicker way to
        #: the same values), for the compiler's ``out=`` buffers and operators
        self.ufunc = impl if ufunc is None and isinstance(impl, np.ufunc) else ufunc
        #: the Python operator ``impl`` computes with when its first argument is a NumPy
        #: array or scalar (``families.by_operator``): the same values, one call shorter
        self.operator = getattr(impl, "operator", None)
        if register:  # per-function primitives (custom rules) stay out of the registry
            REGISTRY[name] = self

    def bind(self, *args: Any, **params: Any) -> Any:
        """Apply the primitive: the highest-level traced argument decides who runs it."""
        top = None
        for arg in args:
            if isinstance(arg, Tracer):
                interp = arg._interp
                if top is None or interp.level > top.level:
                    top = interp
            elif type(arg) is _tracer._PENDING:  # a plain array made in the function (core.pending)
                return self.bind(*[a._value() if type(a) is _tracer._PENDING else a for a in args], **params)
        if top is None:
            if _NAN_CHECKS[0] and _FLAGS.nans:
                return debug.apply_checked(self, args, params)
            return self.impl(*args, **params)
        if not top.alive:
            raise next(a for a in args if isinstance(a, Tracer) and a._interp is top)._escaped()
        return top.process(self, args, params)

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


class Composite:
    """A NumPy function implemented from primitives, as the generated tests see it.

    ``target`` is the callable a user writes (``np.diff``, or a lambda
    calling an ndarray method): on plain arrays it is NumPy's own function,
    on traced values it dispatches to npfunc.  So ``impl`` (the reference)
    and ``bind`` (what the transforms run) are both ``target``, and the
    primitive checks in ``npfunc.testing.checks`` apply unchanged: values
    under every transform are compared with NumPy's, derivatives with
    finite differences of NumPy's.
    """

    __slots__ = ("name", "target", "samples", "differentiable", "notes", "shape_from_values")
    multiple_results = False

    def __init__(self, name: str, target: Callable, *, samples: Callable[..., Iterable[Sample]],
                 differentiable: bool = True, notes: str = "", shape_from_values: bool = False) -> None:
        if name in COMPOSITES:
            raise ValueError(f"composite {name!r} is already registered")
        self.name = name
        self.target = target
        self.samples = samples
        self.differentiable = differentiable
        self.notes = notes
        #: the output's shape depends on the input's values (np.nonzero): vmap
        #: and jit must raise an error naming the function
        self.shape_from_values = shape_from_values
        COMPOSITES[name] = self

    def bind(self, *args: Any, **params: Any) -> Any:
        return self.target(*args, **params)

    impl = bind

    def __repr__(self) -> str:
        return f"Composite({self.name})"


def unregister(name: str) -> None:
    """Remove a primitive from the registry (used by tests that define broken rules)."""
    REGISTRY.pop(name, None)


from . import tracer as _tracer  # noqa: E402  (tracer.py needs the class, and this module needs tracer.py)

_tracer._Primitive = Primitive
