"""Rule families: the bookkeeping shared by many primitives, written once.

* ``unary``    -- elementwise f(x): one derivative ``deriv(x, out)``.
* ``nary``     -- broadcasting elementwise f(x, y, ...): per-argument rules;
                  cotangents are un-broadcast and cast back here, not in rules.
* ``reduction``-- f(x, axes, keepdims): axis normalisation and batching here.
* ``nondiff``  -- outputs with no derivative (comparisons, sign, ...).

Each family returns the user-facing function (also registered for the NumPy
callables it implements) with the ``Primitive`` at ``fn.primitive``.

Conventions for complex numbers follow torch: the cotangent of a real loss
is the conjugate Wirtinger derivative, so a holomorphic ``f`` has
``vjp(g) = g * conj(f'(x))`` while ``jvp(t) = t * f'(x)``.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, Sequence

import numpy as np

from ..core.debug import FLAGS, NAN_CHECKS
from ..core.dispatch import describe, implements
from ..core.primitive import Composite, Primitive
from ..core.tracer import Tracer, apply_binary
from ..core.values import NUMPY_TYPES, dtype_of, shape_of
from ..core.zeros import zero
from ..core.lazy import deferred
from ..interpreters.batching import BatchTracer, batch_tracer, broadcast_batch

# (imported on first use: these modules are built with this one)
_astype = deferred("npfunc.primitives.elementwise.arithmetic:astype", globals(), "_astype")
_real = deferred("npfunc.primitives.elementwise.arithmetic:real", globals(), "_real")
_conjugate = deferred("npfunc.primitives.elementwise.arithmetic:conjugate", globals(), "_conjugate")
_reduce_sum = deferred("npfunc.primitives.reductions.basic:reduce_sum", globals(), "_reduce_sum")
_reshape = deferred("npfunc.primitives.shape.basic:reshape", globals(), "_reshape")
_broadcast_to = deferred("npfunc.primitives.shape.basic:broadcast_to", globals(), "_broadcast_to")


def _defining_module() -> str:
    """The module that called into this one (where the primitive is defined)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", __name__) if frame is not None else __name__


def _public(fn: Callable, prim: Primitive, name: str, numpy: Sequence) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    # the defining module, not this one: pickle (Dask workers) and documentation tools find
    # a function by its __module__ and __qualname__
    fn.__module__ = _defining_module()
    fn.primitive = prim  # type: ignore[attr-defined]
    fn.direct = True  # type: ignore[attr-defined]  # NumPy's call is the primitive's: its samples test it
    fn.positional_bind = prim.bind  # type: ignore[attr-defined]  # fn(*args) is bind(*args)
    if numpy:
        implements(*numpy)(fn)
    return fn


def composite(*numpy_callables: Callable, samples: Callable, differentiable: bool = True,
              notes: str = "", call: Callable | None = None,
              shape_from_values: bool = False, scalars: bool = False) -> Callable[[Callable], Callable]:
    """Register ``fn`` as npfunc's implementation of NumPy callables it builds
    from primitives, with ``samples`` (``rng -> [Sample]``) for the generated
    tests, which call each callable exactly as a user would::

        @composite(np.diff, samples=diff_samples)
        def diff(a, n=1, axis=-1, prepend=None, append=None): ...

    ``call(target)`` adapts a NumPy callable to the samples' positional
    arrays when a user does not pass arrays positionally: ``np.concatenate``
    takes a list (``call=sequence_call``), ``np.shape`` returns a tuple that
    code then uses (see ``sampling.py``).  ``shape_from_values``: the output's
    shape depends on the input's values, so vmap and jit must raise.
    ``scalars``: NumPy returns a 0-d result as a NumPy scalar (reductions,
    statistics, norms, products), where ``fn`` may end with a 0-d array.
    """

    def register(fn: Callable) -> Callable:
        if scalars:
            fn = scalar_results(fn)
        implements(*numpy_callables)(fn)
        # Aliases (np.max and np.amax) are distinct callables: each is tested.
        made = [Composite(describe(target), target if call is None else call(target), samples=samples,
                          differentiable=differentiable, notes=notes, shape_from_values=shape_from_values)
                for target in numpy_callables]
        fn.composite = made[0]  # type: ignore[attr-defined]
        return fn

    return register


def numpy_scalars(out):
    """``out`` with each 0-d array (traced or plain) made a NumPy scalar, as
    NumPy's functions that compute values return them (``np.std(x)`` is an
    ``np.float64``; ``isinstance(r, float)``, hashing and ``r.flags`` tell the
    two apart); tuples and named tuples keep their type."""
    if isinstance(out, tuple):
        items = [numpy_scalars(o) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    if isinstance(out, (np.ndarray, Tracer)) and not shape_of(out) and _holds_array(out):
        return out[()]
    return out


_SCALARS = frozenset({np.float64, np.float32, np.complex128, np.complex64, np.int64, np.intp, np.bool_})


def example_value(x):
    """The plain value behind ``x``: ``x`` itself, a traced value's primal, or a
    recording's example value; None for a batched value (which has no single one)."""
    while isinstance(x, Tracer):
        value = getattr(x, "primal", None)
        if value is None:
            value = getattr(x, "_example", None)
        if value is None:
            return None
        x = value
    return x


def primal_value(x):
    """``x``'s value below every differentiating level (grad, jvp): a plain value,
    a batched value (vmap: no single value), or None (jit's recording: none yet)."""
    while isinstance(x, Tracer) and not isinstance(x, BatchTracer):
        x = getattr(x, "primal", None)
    return x


def _holds_array(x) -> bool:
    """Whether the 0-d ``x`` is a 0-d array rather than a NumPy scalar (its example
    value says, so a result that is a scalar already costs no operation; a batched
    value has no single kind, as vmap's result is stacked: False)."""
    return type(example_value(x)) is np.ndarray


def scalar_results(fn: Callable) -> Callable:
    """``fn`` returning NumPy scalars for its 0-d results (see ``numpy_scalars``),
    except with ``keepdims=True`` or ``out=``, where NumPy returns arrays."""
    @functools.wraps(fn)
    def with_scalars(*args, **kwargs):
        out = fn(*args, **kwargs)
        value = getattr(out, "primal", out)
        if type(value) in _SCALARS or kwargs and (kwargs.get("keepdims") or kwargs.get("out") is not None):
            return out  # (the common case, a scalar already, at the cost of two lookups)
        return numpy_scalars(out)

    return with_scalars


# ---- casting and un-broadcasting, used by every family -----------------------

def cast_like(ct, dtype):
    """``ct`` as ``dtype``: real part for real targets, no silent up/down casts."""
    ct_dtype = dtype_of(ct)
    if ct_dtype == dtype:
        return ct
    if ct_dtype.kind == "c" and dtype.kind != "c":
        ct = _real(ct)
    return _astype(ct, dtype)


def sum_to_shape(x, shape):
    """Sum ``x`` over the axes that broadcasting added to reach its shape."""
    xshape = shape_of(x)
    if tuple(xshape) == tuple(shape):
        return x
    lead = len(xshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and xshape[lead + i] != 1
    )
    if axes:
        x = _reduce_sum(x, axes=axes, keepdims=True)
    return _reshape(x, tuple(shape))


#: NumPy's array and scalar types whose shape and dtype can be compared directly
_PLAIN = frozenset({np.ndarray, np.float64, np.float32, np.float16, np.longdouble, np.complex128, np.complex64,
                    np.clongdouble})


def fit_cotangent(ct, primal):
    """Un-broadcast and cast a cotangent to the primal's shape and dtype."""
    if ct is zero:
        return zero
    if type(ct) is np.float64 and type(primal) is np.float64:  # scalar code: nothing to check
        return ct
    if type(ct) in _PLAIN and type(primal) in _PLAIN and ct.shape == primal.shape and ct.dtype == primal.dtype:
        return ct
    shape, dtype = shape_of(primal), dtype_of(primal)
    if tuple(shape_of(ct)) == tuple(shape) and dtype_of(ct) == dtype:  # e.g. traced values (higher order)
        return ct
    return cast_like(sum_to_shape(ct, shape), dtype)


def fit_tangent(t, out):
    """Broadcast and cast a tangent to the output's shape and dtype."""
    if type(t) in _PLAIN and type(out) in _PLAIN and t.shape == out.shape and t.dtype == out.dtype:
        if type(t) is np.ndarray and type(out) is not np.ndarray:
            return t[()]  # a NumPy scalar output's tangent is a NumPy scalar
        return t
    out_shape = shape_of(out)
    if tuple(shape_of(t)) != tuple(out_shape):
        t = _broadcast_to(t, out_shape)
    return cast_like(t, dtype_of(out))


def conj(x):
    """Complex conjugate, free for real values (used all over the VJP rules)."""
    tx = type(x)
    if tx is float or tx is np.float64 or tx is int or \
            (x.dtype.kind != "c" if tx is np.ndarray else dtype_of(x).kind != "c"):
        return x
    return _conjugate(x)


#: Elementwise VJP rules run on the stacked arrays of a vmap level (``_on_stacked``);
#: off, they run operation by operation under the level (tests compare the two).
STACKED_RULES = [True]
_STACKED_SCALARS = frozenset([float, int, np.float64, np.float32, np.int64])


def _on_stacked(vjp, g, primals, out, needs):
    """``vjp(g, primals, out, needs)`` for an elementwise rule whose cotangent is a
    vmap level's value, computed on the stacked arrays when that is what the level
    would compute operation by operation, else None.

    That holds when the cotangent, the output and every differentiated argument
    are that level's values with one layout (batch axis and stacked shape), and
    the other arguments are too or are scalars: then every operation of the rule
    meets operands of one shape, for which the level's elementwise batching rule
    is the operation itself on the stacked arrays, and no cotangent needs
    un-broadcasting.  (``vmap(grad(f))`` runs every backward rule so; this spares
    the level's dispatch for each of their operations.)"""
    interp = g._interp
    bdim = g.bdim
    val = g.val
    shape = val.shape
    if type(val) is not np.ndarray or interp.structured or not STACKED_RULES[0] or \
            type(out) is not BatchTracer or out._interp is not interp or out.bdim != bdim or out.val.shape != shape:
        return None
    if len(primals) == 1:  # a unary rule: its argument is differentiated
        p = primals[0]
        if type(p) is not BatchTracer or p._interp is not interp or p.bdim != bdim or p.val.shape != shape or \
                type(p.val) is not np.ndarray:
            return None
        (c,) = vjp(val, (p.val,), out.val, needs)
        return (c if c is zero else batch_tracer(interp, c, bdim),)
    vals = []
    for p, need in zip(primals, needs):
        tp = type(p)
        if tp is BatchTracer:
            if p._interp is not interp or p.bdim != bdim or p.val.shape != shape or type(p.val) is not np.ndarray:
                return None
            vals.append(p.val)
        elif need or tp not in _STACKED_SCALARS:
            return None
        else:
            vals.append(p)
    cts = vjp(val, tuple(vals), out.val, needs)
    if len(cts) == 1:
        (c,) = cts
        return (c if c is zero else batch_tracer(interp, c, bdim),)
    return tuple([c if c is zero else batch_tracer(interp, c, bdim) for c in cts])


# ---- elementwise ------------------------------------------------------------

def elementwise_batch(prim: Primitive) -> Callable:
    bind = prim.bind

    def batch(vals, dims, **params):
        if len(vals) == 1 and dims[0] is not None:  # what broadcast_batch would return
            value = vals[0]
            if type(value) is np.ndarray and not params and not (NAN_CHECKS[0] and FLAGS.nans):  # what bind would do
                return prim.impl(value), dims[0]
            return bind(value, **params), dims[0]
        vals, out_dim = broadcast_batch(vals, dims)
        if len(vals) == 2 and not params and not (NAN_CHECKS[0] and FLAGS.nans):
            x, y = vals
            if not isinstance(x, Tracer) and not isinstance(y, Tracer):  # what bind would do
                return prim.impl(x, y), out_dim
        return bind(*vals, **params), out_dim

    return batch


def _nary_jvp(jvps):
    def jvp(primals, tangents, out, **params):
        total = zero
        for rule, t in zip(jvps, tangents):
            if t is not zero and rule is not None:
                contrib = rule(t, *primals, out)
                if contrib is not zero:
                    total = contrib if total is zero else total + contrib
        return zero if total is zero else fit_tangent(total, out)

    return jvp


#: Real scalars whose products with a ``np.float64`` are ``np.float64``s (and conj the identity)
_REAL_SCALARS = frozenset([np.float64, float, int])

_NUMPY_TYPES = NUMPY_TYPES


def by_operator(op: Callable, ufunc: np.ufunc) -> Callable:
    """``ufunc(x, y)`` (or ``ufunc(x)``) computed as ``op(x, y)`` when an operand
    is a NumPy array or scalar.  NumPy's operators are its ufuncs (or, for NumPy
    scalars, its scalar math, which gives the same values) without the call's
    argument parsing: several times quicker on scalars, and what user code writes."""
    if ufunc.nin == 1:
        def impl(x, /):
            return op(x) if type(x) in _NUMPY_TYPES else ufunc(x)
    else:
        def impl(x, y, /):
            # (a Python complex on the left would compute with np.float64, a float subclass, itself)
            if type(x) in _NUMPY_TYPES or type(y) in _NUMPY_TYPES and type(x) is not complex:
                return op(x, y)
            return ufunc(x, y)

    impl.__name__ = impl.__qualname__ = ufunc.__name__
    impl.__doc__ = f"``np.{ufunc.__name__}``, by its operator when an operand is a NumPy value."
    impl.operator = op  # (Primitive.operator: interpreters call it directly on NumPy values)
    return impl


def nary(name: str, impl: Callable, *, jvps: Sequence[Callable], vjps: Sequence[Callable],
         samples=None, numpy: Sequence = (), notes: str = "", _rules=None,
         ufunc: np.ufunc | None = None) -> Callable:
    """A broadcasting elementwise primitive with one JVP and VJP rule per argument.

    ``jvps[i](t, *args, out)`` is the output tangent contributed by argument
    ``i`` (it may broadcast); ``vjps[i](g, *args, out)`` its cotangent, before
    un-broadcasting and casting, which happen here.  A rule may be ``None``
    (or return ``zero``): the output does not depend on that argument.
    (``_rules``: the primitive's jvp and vjp rules made by ``unary`` from a
    derivative, equivalent to those built here from ``jvps``/``vjps``, one call shorter.)
    ``ufunc``: the NumPy ufunc ``impl`` computes, when ``impl`` is not that ufunc itself.
    """
    if _rules is not None:
        jvp, vjp = _rules
    elif len(jvps) == 1:
        (only_jvp,) = jvps

        def jvp(primals, tangents, out, **params):
            return fit_tangent(only_jvp(tangents[0], primals[0], out), out)

        jvp.__name__ = f"{name}_jvp"
    else:
        jvp = _nary_jvp(jvps)

    if _rules is not None:
        pass
    elif len(vjps) == 1:
        (only,) = vjps

        def vjp(g, primals, out, needs, **params):
            if type(g) is BatchTracer and not params and (cts := _on_stacked(vjp, g, primals, out, needs)):
                return cts
            return (fit_cotangent(only(g, primals[0], out), primals[0]),)
    elif len(vjps) == 2:
        vx, vy = vjps

        def vjp(g, primals, out, needs, **params):
            if type(g) is BatchTracer and not params and (cts := _on_stacked(vjp, g, primals, out, needs)):
                return cts
            x, y = primals
            if type(g) is np.float64 and type(x) in _REAL_SCALARS and type(y) in _REAL_SCALARS:
                # real scalars: the rules give NumPy scalars, which need no fitting
                cx = vx(g, x, y, out) if needs[0] and vx is not None else zero
                cy = vy(g, x, y, out) if needs[1] and vy is not None else zero
                if (cx is zero or type(cx) is np.float64) and (cy is zero or type(cy) is np.float64):
                    return cx, cy
            return (fit_cotangent(vx(g, x, y, out), x) if needs[0] and vx is not None else zero,
                    fit_cotangent(vy(g, x, y, out), y) if needs[1] and vy is not None else zero)
    else:
        def vjp(g, primals, out, needs, **params):
            if type(g) is BatchTracer and not params and (cts := _on_stacked(vjp, g, primals, out, needs)):
                return cts
            return tuple(
                fit_cotangent(rule(g, *primals, out), p) if need and rule is not None else zero
                for rule, need, p in zip(vjps, needs, primals)
            )

    prim = Primitive(name, impl, jvp=jvp, vjp=vjp, samples=samples, notes=notes, ufunc=ufunc)
    prim.batch = elementwise_batch(prim)
    bind = prim.bind
    # Plain values (the rules' own arithmetic) go straight to impl, as bind would send them.
    # A traced argument goes to its level at once (bind's choice, made here).
    if len(jvps) == 1:
        def fn(x, /):
            if isinstance(x, Tracer):
                top = x._interp
                return top.process(prim, (x,), {}) if top.alive else bind(x)
            if NAN_CHECKS[0] and FLAGS.nans:
                return bind(x)
            return prim.impl(x)
    elif len(jvps) == 2:
        def fn(x, y, /):
            if isinstance(x, Tracer) or isinstance(y, Tracer):
                return apply_binary(prim, x, y)
            if NAN_CHECKS[0] and FLAGS.nans:
                return bind(x, y)
            return prim.impl(x, y)
    else:
        def fn(*args):
            return bind(*args)
    return _public(fn, prim, name, numpy)


def unary(name: str, impl: Callable, *, deriv: Callable | None = None, jvp: Callable | None = None,
          vjp: Callable | None = None, samples=None, numpy: Sequence = (), notes: str = "",
          ufunc: np.ufunc | None = None) -> Callable:
    """An elementwise f(x) given ``deriv(x, out)`` = f'(x), or explicit rules."""
    rules = None
    if deriv is not None:
        def jvp(t, x, out):  # noqa: F811 - built from deriv
            return t * deriv(x, out)

        def vjp(g, x, out):  # noqa: F811
            return g * conj(deriv(x, out))

        def jvp_rule(primals, tangents, out, **params):  # jvp above, as nary would apply it
            t = tangents[0] * deriv(primals[0], out)
            if type(t) is np.float64 and type(out) is np.float64:  # scalar code: nothing to fit
                return t
            return fit_tangent(t, out)

        def vjp_rule(g, primals, out, needs, **params):  # vjp above, as nary would apply it
            x = primals[0]
            if type(g) is BatchTracer and not params and (cts := _on_stacked(vjp_rule, g, primals, out, needs)):
                return cts
            if type(x) is np.float64:  # a real scalar: conj is the identity
                ct = g * deriv(x, out)
                return (ct if type(ct) is np.float64 else fit_cotangent(ct, x),)
            return (fit_cotangent(g * conj(deriv(x, out)), x),)

        jvp_rule.__name__ = f"{name}_jvp"
        rules = (jvp_rule, vjp_rule)
    return nary(name, impl, jvps=(jvp,), vjps=(vjp,), samples=samples, numpy=numpy, notes=notes, _rules=rules,
                ufunc=ufunc)


def binary(name: str, impl: Callable, *, partials: Sequence[Callable] | None = None,
           jvps: Sequence[Callable] | None = None, vjps: Sequence[Callable] | None = None,
           samples=None, numpy: Sequence = (), notes: str = "", ufunc: np.ufunc | None = None) -> Callable:
    """A broadcasting f(x, y) given ``partials[i](x, y, out)`` or explicit rules."""
    rules = None
    if partials is not None:
        px, py = partials
        jvps = (lambda t, x, y, out: t * px(x, y, out), lambda t, x, y, out: t * py(x, y, out))
        vjps = (lambda g, x, y, out: g * conj(px(x, y, out)), lambda g, x, y, out: g * conj(py(x, y, out)))

        def jvp_rule(primals, tangents, out, **params):  # jvps above, as nary would apply them
            x, y = primals
            tx, ty = tangents
            total = zero
            if tx is not zero:
                total = tx * px(x, y, out)
            if ty is not zero:
                contrib = ty * py(x, y, out)
                total = contrib if total is zero else total + contrib
            return zero if total is zero else fit_tangent(total, out)

        def vjp_rule(g, primals, out, needs, **params):  # vjps above, as nary would apply them
            if type(g) is BatchTracer and not params and (cts := _on_stacked(vjp_rule, g, primals, out, needs)):
                return cts
            x, y = primals
            if type(g) is np.float64 and type(x) in _REAL_SCALARS and type(y) in _REAL_SCALARS:
                # real scalars: conj is the identity, and NumPy scalars need no fitting
                cx = g * px(x, y, out) if needs[0] else zero
                cy = g * py(x, y, out) if needs[1] else zero
                if (cx is zero or type(cx) is np.float64) and (cy is zero or type(cy) is np.float64):
                    return cx, cy
            return (fit_cotangent(g * conj(px(x, y, out)), x) if needs[0] else zero,
                    fit_cotangent(g * conj(py(x, y, out)), y) if needs[1] else zero)

        jvp_rule.__name__ = f"{name}_jvp"
        rules = (jvp_rule, vjp_rule)
    return nary(name, impl, jvps=jvps, vjps=vjps, samples=samples, numpy=numpy, notes=notes, _rules=rules,
                ufunc=ufunc)


def nondiff(name: str, impl: Callable, *, samples=None, numpy: Sequence = (), batch=None,
            notes: str = "") -> Callable:
    """A primitive whose outputs carry no derivative (zero tangents).

    The default batching rule is the elementwise one."""
    prim = Primitive(name, impl, differentiable=False, batch=batch,
                     samples=samples, notes=notes)
    if batch is None:
        prim.batch = elementwise_batch(prim)
    bind = prim.bind

    def fn(*args, **params):
        return bind(*args, **params)

    return _public(fn, prim, name, numpy)


# ---- reductions ----------------------------------------------------------------

def normalize_axes(axis, ndim: int, fn_name: str) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise np.exceptions.AxisError(
                f"{fn_name}: axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn_name}: duplicate value in 'axis': {axis}")
    return tuple(sorted(out)) if ndim else ()


def reduction_batch(prim: Primitive) -> Callable:
    """Reduce the same logical axes, leaving the batch axis where it is."""

    def batch(vals, dims, *, axes, keepdims, **params):
        (x,), (d,) = vals, dims
        phys = tuple(a + (a >= d) for a in axes)
        out_dim = d if keepdims else d - sum(a < d for a in axes)
        return prim.bind(x, axes=phys, keepdims=keepdims, **params), out_dim

    return batch


def reduction(name: str, impl: Callable, *, jvp: Callable, vjp: Callable, samples=None,
              notes: str = "") -> Primitive:
    """A reduction primitive with params ``axes`` (sorted tuple) and ``keepdims``."""
    prim = Primitive(name, impl, jvp=jvp, vjp=vjp, samples=samples, notes=notes)
    prim.batch = reduction_batch(prim)
    return prim


def keep_reduced_dims(g, axes, keepdims, shape):
    """A reduced value with its reduced axes kept (size 1), so that it
    broadcasts against the unreduced array of ``shape``."""
    if keepdims:
        return g
    if axes == tuple(range(len(axes))):  # leading axes: broadcasting adds them back
        return g
    kept = list(shape)
    for a in axes:
        kept[a] = 1
    return _reshape(g, tuple(kept))


def expand_reduced(g, axes, keepdims, shape):
    """Broadcast a reduced value back over the reduced axes of ``shape``."""
    return _broadcast_to(keep_reduced_dims(g, axes, keepdims, shape), tuple(shape))


def is_traced(x) -> bool:
    return isinstance(x, Tracer)


def composite_via(numpy_callable: Callable, *, target: Callable, samples: Callable,
                  differentiable: bool = True, notes: str = "") -> Callable[[Callable], Callable]:
    """Like ``composite``, for NumPy functions whose arguments the generated
    tests cannot perturb or batch as NumPy takes them (lists of arrays, as in
    ``np.select``; npfunc's own keywords, as ``size=`` in ``np.argwhere``):
    the tests call ``target`` instead, which calls the NumPy function::

        @composite_via(np.select, target=lambda c, x, y: np.select([c], [x], y), samples=...)
        def select(condlist, choicelist, default=0): ...
    """

    def register(fn: Callable) -> Callable:
        implements(numpy_callable)(fn)
        fn.composite = Composite(describe(numpy_callable), target,  # type: ignore[attr-defined]
                                 samples=samples, differentiable=differentiable, notes=notes)
        return fn

    return register
