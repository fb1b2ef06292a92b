"""Piecewise elementwise functions: rounding, remainders, clip, fmax/fmin,
copysign, heaviside, nan_to_num, modf, ldexp/frexp.

Conventions (tested in tests/test_conventions.py, table in
docs/conventions.md):

* rounding (``floor``, ``ceil``, ``trunc``, ``rint``, ``round``/``around``
  with any ``decimals``, ``fix``) and ``floor_divide`` are piecewise
  constant: derivative 0 everywhere, also at the jumps;
* ``remainder``/``mod`` and ``fmod`` have derivative 1 in ``x`` and
  ``-floor(x / y)`` (``-trunc(x / y)`` for fmod) in ``y``;
* ``fmax``/``fmin`` split the derivative equally at ties, like
  ``maximum``/``minimum``, and give all of it to the non-NaN argument;
* ``clip`` is ``minimum(maximum(x, a_min), a_max)`` as in JAX: derivative 1
  strictly inside, 0 outside, 1/2 shared with the bound exactly at a bound;
* ``copysign(x1, x2)`` = ``|x1|`` with the sign of ``x2``: 0 at ``x1 == 0``;
* ``heaviside(x1, x2)``: 0 in ``x1``; 1 in ``x2`` where ``x1 == 0``;
* ``nan_to_num``: 1 where the entry is finite, 0 where it was replaced.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ...core.dispatch import implements
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.tracer import Tracer
from ...core.values import dtype_of
from ...core.zeros import zero
from .arithmetic import (_keep, astype, document, equal, extremum, greater, imag, isfinite, isnan, less,
                          logical_and, logical_not, logical_or, maximum, minimum, real, sign, where,
                          zeros_like)
from . import samples
from .samples import combined, complex_array, pair_points, points
from ..families import binary, composite, elementwise_batch, fit_cotangent, fit_tangent, nondiff
from ..sampling import FLOATS, array, binary_samples, unary_samples


def partial_nary(name: str, impl: Callable, *, jvps: Sequence, vjps: Sequence, samples=None,
                 numpy: Sequence = (), notes: str = "") -> Callable:
    """A broadcasting elementwise primitive where a ``None`` rule means "the
    derivative with respect to this argument is identically zero" (symbolic)."""

    def jvp(primals, tangents, out, **params):
        total = zero
        for rule, t in zip(jvps, tangents):
            if rule is not None and t is not zero:
                contrib = rule(t, *primals, out)
                total = contrib if total is zero else total + contrib
        return zero if total is zero else fit_tangent(total, out)

    def vjp(g, primals, out, needs, **params):
        return tuple(fit_cotangent(rule(g, *primals, out), p) if need and rule is not None else zero
                     for rule, need, p in zip(vjps, needs, primals))

    prim = Primitive(name, impl, jvp=jvp, vjp=vjp, samples=samples, notes=notes)
    prim.batch = elementwise_batch(prim)
    bind = prim.bind

    def fn(*args):
        return bind(*args)

    fn.__name__ = fn.__qualname__ = name
    fn.primitive = prim  # type: ignore[attr-defined]
    fn.direct = True  # type: ignore[attr-defined]  # NumPy's call is the primitive's: its samples test it
    if numpy:
        implements(*numpy)(fn)
    return fn


# ---- rounding: derivative 0 ------------------------------------------------------

_ROUNDING_NOTE = "piecewise constant: derivative 0 everywhere, also at the jumps"
_rounding_samples = combined(unary_samples(domain=(-3.0, 3.0)),
                             points([-1.5, -1.0, 0.5, 2.0], label="ties and integers", kink=True))

floor = nondiff("floor", np.floor, samples=_rounding_samples, numpy=[np.floor], notes=_ROUNDING_NOTE)
ceil = nondiff("ceil", np.ceil, samples=_rounding_samples, numpy=[np.ceil], notes=_ROUNDING_NOTE)
trunc = nondiff("trunc", np.trunc, samples=_rounding_samples, numpy=[np.trunc], notes=_ROUNDING_NOTE)
rint = nondiff("rint", np.rint, samples=_rounding_samples, numpy=[np.rint], notes=_ROUNDING_NOTE)


def _round_samples(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3), dt, (-30.0, 30.0))
        out += [Sample(x, decimals=0), Sample(x, decimals=2), Sample(x, decimals=-1)]
    out.append(Sample(complex_array(rng, (3,)), decimals=1))
    return out


_round = nondiff("round", lambda x, *, decimals: np.round(x, decimals), samples=_round_samples,
                 notes=_ROUNDING_NOTE)


@composite(np.round, np.around, samples=samples.round_samples, differentiable=False)
def round(a, decimals=0, out=None):
    """``np.round`` / ``np.around`` (half to even, any ``decimals``): derivative 0."""
    if out is not None:
        raise UnsupportedOperationError(
            "np.round(..., out=...) cannot write into an array on traced values; "
            "assign the result instead: y = np.round(x)")
    return _round(a, decimals=int(decimals))


@composite(np.fix, samples=samples.unary_with_ints(bools=False), differentiable=False)
def fix(x, out=None):
    """``np.fix``: round towards zero, like ``np.trunc`` (derivative 0)."""
    if out is not None:
        raise UnsupportedOperationError(
            "np.fix(..., out=...) cannot write into an array on traced values; "
            "assign the result instead: y = np.fix(x)")
    return trunc(x)


# ---- quotients and remainders ------------------------------------------------------

def _remainder_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (2, 3), dt, (-5.0, 5.0)), array(rng, (3,), dt, (0.7, 2.0))))
        out.append(Sample(array(rng, (3,), dt, (-5.0, 5.0)), array(rng, (3,), dt, (-2.0, -0.7))))
    out.append(Sample(array(rng, (3,), np.float32, (-5.0, 5.0)), 1.5, label="python scalar y"))
    out.append(Sample(np.array([7, -7, 3]), np.array([2.5, 2.5, -1.25]), label="integer x"))
    return out


floor_divide = nondiff("floor_divide", np.floor_divide, samples=_remainder_samples,
                       numpy=[np.floor_divide], notes=_ROUNDING_NOTE)


def _fmod_quotient(x, y, out):
    """The integer n with x = n * y + fmod(x, y), read from the output itself, so it is
    consistent with NumPy's exact remainder; rint makes it a constant."""
    return rint((x - out) / y)


remainder = partial_nary(
    "remainder", np.remainder,
    jvps=(_keep, lambda t, x, y, out: -t * floor_divide(x, y)),
    vjps=(_keep, lambda g, x, y, out: -g * floor_divide(x, y)),
    samples=_remainder_samples, numpy=[np.remainder],
    notes="x - y * floor(x / y): derivative 1 in x, -floor(x / y) in y")
mod = remainder
fmod = partial_nary(
    "fmod", np.fmod,
    jvps=(_keep, lambda t, x, y, out: -t * _fmod_quotient(x, y, out)),
    vjps=(_keep, lambda g, x, y, out: -g * _fmod_quotient(x, y, out)),
    samples=_remainder_samples, numpy=[np.fmod],
    notes="x - y * trunc(x / y): derivative 1 in x, -trunc(x / y) in y")


@composite(np.divmod, samples=samples.divmod_samples)
def divmod_(x1, x2, /):
    """``np.divmod``: ``(floor_divide(x1, x2), remainder(x1, x2))``."""
    return floor_divide(x1, x2), remainder(x1, x2)


@composite(np.modf, samples=samples.unary_with_ints(bools=False), scalars=True)
def modf(x, /):
    """``np.modf``: ``(fractional part, integral part)``; derivatives 1 and 0."""
    if dtype_of(x).kind in "biu":  # NumPy's loop for integers is floating (int8 -> float16)
        x = astype(x, np.modf(np.zeros(1, dtype_of(x)))[0].dtype)
    whole = trunc(x)
    return x - whole, whole


# ---- ldexp / frexp ------------------------------------------------------------------

ldexp = partial_nary(
    "ldexp", np.ldexp,
    jvps=(lambda t, x, e, out: ldexp(t, e), None),
    vjps=(lambda g, x, e, out: ldexp(g, e), None),
    samples=lambda rng: [Sample(array(rng, (2, 3), dt), rng.integers(-3, 4, size=(3,)))
                         for dt in FLOATS],
    numpy=[np.ldexp], notes="x * 2**e: linear in x; the integer exponent is not differentiated")

_frexp_exponent = nondiff("frexp_exponent", lambda x: np.frexp(x)[1], samples=unary_samples(),
                          numpy=[])


@composite(np.frexp, samples=samples.unary_with_ints(bools=False), scalars=True)
def frexp(x, /):
    """``np.frexp``: ``(mantissa, exponent)`` with x = mantissa * 2**exponent; the
    mantissa's derivative is 2**-exponent, the integer exponent has none."""
    e = _frexp_exponent(x)
    return ldexp(x, -e), e


# ---- fmax / fmin: NaN-ignoring maximum / minimum -------------------------------------

def _f_wins(x, y, beats):
    """Where ``x`` alone is taken: it beats ``y``, or only ``y`` is NaN."""
    return logical_or(beats(x, y), logical_and(isnan(y), logical_not(isnan(x))))


def _f_extremum(name, ufunc, beats):
    return extremum(name, ufunc, lambda x, y: _f_wins(x, y, beats),
                    "ties split the derivative equally; a NaN argument gets none",
                    combined(binary_samples(), _F_POINTS))


_F_POINTS = pair_points(([1.0, np.nan, 2.0], [1.0, 3.0, np.nan]),
                        label="ties and NaN")
fmax = _f_extremum("fmax", np.fmax, lambda x, y: greater(x, y))
fmin = _f_extremum("fmin", np.fmin, lambda x, y: less(x, y))


# ---- clip ------------------------------------------------------------------------------

def _given(v) -> bool:
    return v is not None and v is not np._NoValue


@composite(np.clip, samples=samples.clip_samples)
def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,
         max=np._NoValue, **kwargs):
    """``np.clip``: ``minimum(maximum(a, a_min), a_max)``; either bound may be None.

    Bounds may be arrays and are differentiated too.  As in JAX, the derivative
    is 1 strictly inside, 0 outside and split 1/2 - 1/2 between ``a`` and the
    bound where ``a`` equals it.
    """
    if kwargs:
        from ...core.context import describe_stack

        raise UnsupportedOperationError(
            f"{describe_stack()}: np.clip's argument {sorted(kwargs)[0]!r} is not supported on traced values; "
            "clip first, then cast or mask the result (y = np.clip(x, lo, hi))")
    if out is not None:  # the result written into `out`, as NumPy's ufunc does (same_kind casting)
        np.copyto(out, clip(a, a_min, a_max, min=min, max=max), casting="same_kind")
        return out
    if _given(a_min) and _given(min) or _given(a_max) and _given(max):
        raise ValueError("np.clip: pass either a_min/a_max or min/max, not both")
    if not isinstance(a, Tracer):  # NumPy converts a Python scalar ``a`` to an array (not weak)
        a = np.asarray(a)
    low = a_min if _given(a_min) else (min if _given(min) else None)
    high = a_max if _given(a_max) else (max if _given(max) else None)
    if low is not None:
        a = maximum(a, low)
    if high is not None:
        a = minimum(a, high)
    return a


# ---- copysign, heaviside -------------------------------------------------------------

copysign = partial_nary(
    "copysign", np.copysign,
    jvps=(lambda t, x1, x2, out: t * (sign(x1) * sign(out)), None),
    vjps=(lambda g, x1, x2, out: g * (sign(x1) * sign(out)), None),
    samples=combined(binary_samples(),
                     pair_points(([0.0, -0.0, 1.5], [-1.0, 2.0, -0.0]), label="zeros",
                                 argnums=(0,))),
    numpy=[np.copysign], notes="abs(x1) with the sign of x2: derivative 0 at x1 == 0, none in x2")


def _heaviside_samples(rng):
    x1 = np.array([-1.0, 0.0, 2.0, 0.0])
    return binary_samples(scalar=0.5)(rng) + [
        Sample(x1, np.array([0.5, 0.25, 0.75, 1.0]), argnums=(1,), label="x1 == 0"),
        Sample(x1.astype(np.float32), np.float32(0.5) * np.ones(4, np.float32), argnums=(1,),
               label="x1 == 0, float32")]


heaviside = partial_nary(
    "heaviside", np.heaviside,
    jvps=(None, lambda t, x1, x2, out: where(equal(x1, 0), t, zeros_like(t))),
    vjps=(None, lambda g, x1, x2, out: where(equal(x1, 0), g, zeros_like(g))),
    samples=_heaviside_samples, numpy=[np.heaviside],
    notes="derivative 0 in x1 (also at 0); 1 in x2 where x1 == 0")


# ---- nan_to_num ------------------------------------------------------------------------

def _keep_finite(v, x):
    """``v`` where ``x`` is finite and 0 where it is not (per part for complex)."""
    if dtype_of(x).kind == "c":
        re = where(isfinite(real(x)), real(v), zeros_like(real(v)))
        im = where(isfinite(imag(x)), imag(v), zeros_like(imag(v)))
        return re + im * 1j
    return where(isfinite(x), v, zeros_like(v))


def _nan_to_num_jvp(primals, tangents, out, **params):
    return zero if tangents[0] is zero else _keep_finite(tangents[0], primals[0])


def _nan_to_num_vjp(g, primals, out, needs, **params):
    return (_keep_finite(g, primals[0]),)


def _nan_to_num_samples(rng):
    x = np.array([[1.5, np.nan, -np.inf], [np.inf, -0.5, 2.0]])
    z = np.array([complex(1, np.nan), complex(np.inf, -1), 0.5 + 2j])
    return [Sample(x, nan=0.0, posinf=None, neginf=None),
            Sample(x.astype(np.float32), nan=1.0, posinf=10.0, neginf=-10.0),
            Sample(array(rng, (2, 3)), nan=0.0, posinf=None, neginf=None),
            Sample(z, nan=-1.0, posinf=5.0, neginf=None)]


_nan_to_num = Primitive(
    "nan_to_num",
    lambda x, *, nan, posinf, neginf: np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf),
    jvp=_nan_to_num_jvp, vjp=_nan_to_num_vjp, samples=_nan_to_num_samples,
    notes="derivative 1 at finite entries, 0 where an entry was replaced")
_nan_to_num.batch = elementwise_batch(_nan_to_num)


def _scalar_param(v, name):
    if v is None:
        return None
    if np.ndim(v) != 0:
        raise UnsupportedOperationError(
            f"np.nan_to_num: {name}= must be a scalar on traced values, got shape {np.shape(v)}")
    return float(v)


@composite(np.nan_to_num, samples=samples.nan_to_num_samples)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``np.nan_to_num``: NaN and infinities replaced; derivative 1 where ``x`` is
    finite and 0 where an entry was replaced.  ``copy=False`` replaces them in
    ``x`` itself (and its views), as NumPy does for an array."""
    from ..indexing.aliasing import is_scalar

    in_place = copy is False and isinstance(x, Tracer) and not is_scalar(x)
    if dtype_of(x).kind not in "fc":  # nothing to replace: x itself, or a copy of it
        if in_place or not isinstance(x, Tracer):
            return x
        from ..shape.views import copy as copy_of

        return copy_of(x)
    new = _nan_to_num.bind(x, nan=_scalar_param(nan, "nan"), posinf=_scalar_param(posinf, "posinf"),
                           neginf=_scalar_param(neginf, "neginf"))
    if not in_place:
        return new
    from ..indexing.inplace import assign

    assign(x, new, "np.nan_to_num(x, copy=False)", "x = np.nan_to_num(x)")
    return x


document(globals())

__all__ = ["floor", "ceil", "trunc", "rint", "round", "fix", "floor_divide", "remainder", "mod",
           "fmod", "divmod_", "modf", "ldexp", "frexp", "fmax", "fmin", "clip", "copysign",
           "heaviside", "nan_to_num", "partial_nary"]
