"""Confluent and Gauss hypergeometric functions: ``hyp1f1(a, b, z)`` and
``hyp2f1(a, b, c, z)``, differentiable in every argument.

* In ``z`` (real or complex): ``d/dz 1F1 = (a/b) 1F1(a+1; b+1; z)`` and
  ``d/dz 2F1 = (ab/c) 2F1(a+1, b+1; c+1; z)``.
* In the parameters (real z): no closed form; ``hyp1f1_parameter_derivative
  (a, b, z, da, db)`` and ``hyp2f1_parameter_derivative(a, b, c, z, da, db,
  dc)`` sum the series in Taylor arithmetic (``hyper_series``: Kummer's
  transformation for 1F1 at z < 0, Pfaff's for 2F1 at z < 0).  Their own
  derivatives are the next orders, and in ``z`` the Leibniz rule applied to
  the formulas above, so every order and nesting works.  2F1's parameter
  derivatives need z < 1 (NaN for z >= 1, an error where the series does not
  converge: z within ~1e-4 of 1); complex z raises for the parameters.

>>> import npfunc, scipy.special as sc
>>> round(float(npfunc.grad(lambda a: sc.hyp1f1(a, 2.0, 0.5))(1.0)), 6)
0.323241
"""
from __future__ import annotations

import math

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of
from ...core.zeros import zero
from ..families import elementwise_batch, fit_cotangent, fit_tangent, nary
from ..sampling import FLOATS, array
from . import hyper_series
from ._lazy import lazy_ufunc, register_when_imported

DEFS: dict = {}


def _real_z(name, z):
    if dtype_of(z).kind == "c":
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.{name}: derivatives in the parameters are implemented for "
            "real z only (the derivative in complex z is available); keep the parameters constant for "
            "complex z.")


def _out_dtype(*args):
    return np.result_type(*(dtype_of(a) for a in args), np.float32)


def _inverse_power_derivative(c, m):
    """d^m/dc^m (1/c) = (-1)^m m! / c^(m+1)."""
    return (-1) ** m * math.factorial(m) / c ** (m + 1)


def _elementwise_primitive(name, impl, rules, samples, notes):
    """A broadcasting primitive with static orders; ``rules[i](*args, **orders)`` = d out / d args[i]."""

    def jvp(primals, tangents, out, **orders):
        total = zero
        for rule, t in zip(rules, tangents):
            if t is not zero:
                term = t * rule(*primals, **orders)
                total = term if total is zero else total + term
        return zero if total is zero else fit_tangent(total, out)

    def vjp(g, primals, out, needs, **orders):
        return tuple(fit_cotangent(g * rule(*primals, **orders), p) if need else zero
                     for rule, need, p in zip(rules, needs, primals))

    prim = Primitive(name, impl, jvp=jvp, vjp=vjp, samples=samples, notes=notes)
    prim.batch = elementwise_batch(prim)
    return prim


# ---- 1F1 --------------------------------------------------------------------------------------------

def _h1_impl(a, b, z, *, da, db):
    _real_z("hyp1f1", z)
    return hyper_series.hyp1f1_parameter_derivative(a, b, z, da, db).astype(_out_dtype(a, b, z), copy=False)


def _h1_shifted(a, b, z, i, j):
    """d^i/da^i d^j/db^j of 1F1 at (a + 1, b + 1, z)."""
    if i == j == 0:
        return hyp1f1(a + 1, b + 1, z)
    return _h1.bind(a + 1, b + 1, z, da=i, db=j)


def _h1_dz(a, b, z, *, da, db):
    """d/dz d^da/da d^db/db 1F1 = Leibniz on (a / b) 1F1(a + 1, b + 1, z)."""
    total = 0
    for m in range(db + 1):
        inner = a * _h1_shifted(a, b, z, da, db - m)
        if da:
            inner = inner + da * _h1_shifted(a, b, z, da - 1, db - m)
        total = total + math.comb(db, m) * _inverse_power_derivative(b, m) * inner
    return total


def _h1_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3,), dt, (-1.5, 2.5)), array(rng, (3,), dt, (0.5, 3.0)),
                          array(rng, (2, 3), dt, (-3.0, 3.0)), da=1, db=0))
    out.append(Sample(array(rng, (3,), domain=(0.5, 2.0)), array(rng, (3,), domain=(0.5, 3.0)),
                      np.array([-30.0, 0.0, 25.0]), da=0, db=1, label="large |z|, z = 0"))
    out.append(Sample(array(rng, (3,), domain=(0.5, 2.0)), array(rng, (3,), domain=(1.0, 3.0)),
                      array(rng, (3,), domain=(-2.0, 2.0)), da=1, db=1, label="mixed"))
    return out


_h1 = _elementwise_primitive(
    "hyp1f1_parameter_derivative", _h1_impl,
    (lambda a, b, z, *, da, db: _h1.bind(a, b, z, da=da + 1, db=db),
     lambda a, b, z, *, da, db: _h1.bind(a, b, z, da=da, db=db + 1),
     _h1_dz),
    _h1_samples, "d^(da+db) hyp1f1 / da^da db^db: series in Taylor arithmetic (Kummer for z < 0)")


def hyp1f1_parameter_derivative(a, b, z, da: int = 1, db: int = 0):
    """``d^(da+db)/da^da db^db`` of ``scipy.special.hyp1f1(a, b, z)`` (real z)."""
    return _h1.bind(a, b, z, da=int(da), db=int(db))


def _hyp1f1_partials(a, b, z, out):
    return (lambda: _h1.bind(a, b, z, da=1, db=0), lambda: _h1.bind(a, b, z, da=0, db=1),
            lambda: (a / b) * hyp1f1(a + 1, b + 1, z))


def _hyp_samples(n_params, params, complex_z):
    def make(rng):
        out = []
        for dt in FLOATS:
            out.append(Sample(*[array(rng, (3,), dt, d) for d in params], array(rng, (2, 3), dt, complex_z[0])))
        out.append(Sample(*[array(rng, (3,), domain=d) for d in params], np.array(complex_z[1]),
                          label="edges of z"))
        z = array(rng, (3,), domain=(-0.6, 0.6)) + 1j * array(rng, (3,), domain=(-0.6, 0.6))
        out.append(Sample(*[array(rng, (3,), domain=d) for d in params], z, argnums=(n_params,),
                          label="complex z"))
        out.append(Sample(*[1.5 for _ in params], array(rng, (3,), domain=(-0.5, 0.5)), argnums=(n_params,),
                          label="python scalar parameters"))
        return out

    return make


def _param_rule(index, name, partials):
    def rule(t, *args):
        if index < len(args) - 2:
            _real_z(name, args[-2])
        return t * partials(*args)[index]()

    return rule


def _param_vjp(index, name, partials):
    def rule(g, *args):
        if index < len(args) - 2:
            _real_z(name, args[-2])
        d = partials(*args)[index]()
        return g * (np.conj(d) if dtype_of(d).kind == "c" else d)

    return rule


hyp1f1 = nary("hyp1f1", lazy_ufunc("hyp1f1"),
              jvps=tuple(_param_rule(i, "hyp1f1", _hyp1f1_partials) for i in range(3)),
              vjps=tuple(_param_vjp(i, "hyp1f1", _hyp1f1_partials) for i in range(3)),
              samples=_hyp_samples(2, [(-1.5, 2.5), (0.5, 3.0)], ((-3.0, 3.0), [-35.0, 0.0, 30.0])),
              notes="d/dz = (a/b) hyp1f1(a+1, b+1, z); d/da, d/db by the series (real z)")
hyp1f1.__doc__ = "``scipy.special.hyp1f1(a, b, z)`` for traced and plain values, differentiable in all arguments."
DEFS["hyp1f1"] = hyp1f1

# ---- 2F1 --------------------------------------------------------------------------------------------


def _h2_impl(a, b, c, z, *, da, db, dc):
    _real_z("hyp2f1", z)
    out = hyper_series.hyp2f1_parameter_derivative(a, b, c, z, da, db, dc)
    return out.astype(_out_dtype(a, b, c, z), copy=False)


def _h2_shifted(a, b, c, z, i, j, k):
    if i == j == k == 0:
        return hyp2f1(a + 1, b + 1, c + 1, z)
    return _h2.bind(a + 1, b + 1, c + 1, z, da=i, db=j, dc=k)


def _h2_dz(a, b, c, z, *, da, db, dc):
    """Leibniz on (a b / c) 2F1(a + 1, b + 1; c + 1; z)."""
    total = 0
    for p in range(min(da, 1) + 1):
        for q in range(min(db, 1) + 1):
            fa = (a if p == 0 else 1.0) * math.comb(da, p)
            fb = (b if q == 0 else 1.0) * math.comb(db, q)
            for m in range(dc + 1):
                total = total + (fa * fb * math.comb(dc, m) * _inverse_power_derivative(c, m)
                                 * _h2_shifted(a, b, c, z, da - p, db - q, dc - m))
    return total


def _h2_samples(rng):
    out = []
    for dt in FLOATS:
        out.append(Sample(array(rng, (3,), dt, (-1.0, 2.0)), array(rng, (3,), dt, (-1.0, 2.0)),
                          array(rng, (3,), dt, (0.5, 3.0)), array(rng, (3,), dt, (-2.0, 0.8)),
                          da=1, db=0, dc=0))
    out.append(Sample(array(rng, (3,), domain=(0.2, 1.5)), array(rng, (3,), domain=(0.2, 1.5)),
                      array(rng, (3,), domain=(1.0, 3.0)), np.array([-2.0, 0.0, 0.6]), da=0, db=1, dc=0,
                      label="z below 0 (Pfaff), at 0, near 1"))
    out.append(Sample(array(rng, (3,), domain=(0.2, 1.5)), array(rng, (3,), domain=(0.2, 1.5)),
                      array(rng, (3,), domain=(1.0, 3.0)), array(rng, (3,), domain=(-1.0, 0.7)),
                      da=0, db=0, dc=1))
    return out


_h2 = _elementwise_primitive(
    "hyp2f1_parameter_derivative", _h2_impl,
    (lambda a, b, c, z, *, da, db, dc: _h2.bind(a, b, c, z, da=da + 1, db=db, dc=dc),
     lambda a, b, c, z, *, da, db, dc: _h2.bind(a, b, c, z, da=da, db=db + 1, dc=dc),
     lambda a, b, c, z, *, da, db, dc: _h2.bind(a, b, c, z, da=da, db=db, dc=dc + 1),
     _h2_dz),
    _h2_samples, "d^(da+db+dc) hyp2f1: Gauss series in Taylor arithmetic (Pfaff for z < 0), z < 1")


def hyp2f1_parameter_derivative(a, b, c, z, da: int = 1, db: int = 0, dc: int = 0):
    """``d^(da+db+dc)/da^da db^db dc^dc`` of ``scipy.special.hyp2f1(a, b, c, z)`` (real z < 1)."""
    return _h2.bind(a, b, c, z, da=int(da), db=int(db), dc=int(dc))


def _hyp2f1_partials(a, b, c, z, out):
    return (lambda: _h2.bind(a, b, c, z, da=1, db=0, dc=0), lambda: _h2.bind(a, b, c, z, da=0, db=1, dc=0),
            lambda: _h2.bind(a, b, c, z, da=0, db=0, dc=1), lambda: (a * b / c) * hyp2f1(a + 1, b + 1, c + 1, z))


hyp2f1 = nary("hyp2f1", lazy_ufunc("hyp2f1"),
              jvps=tuple(_param_rule(i, "hyp2f1", _hyp2f1_partials) for i in range(4)),
              vjps=tuple(_param_vjp(i, "hyp2f1", _hyp2f1_partials) for i in range(4)),
              samples=_hyp_samples(3, [(-1.0, 2.0), (-1.0, 2.0), (0.5, 3.0)], ((-2.0, 0.8), [-4.0, 0.0, 0.85])),
              notes="d/dz = (ab/c) hyp2f1(a+1, b+1, c+1, z); d/da, d/db, d/dc by the series (real z < 1)")
hyp2f1.__doc__ = ("``scipy.special.hyp2f1(a, b, c, z)`` for traced and plain values, differentiable in all "
                  "arguments (parameters: real z < 1).")
DEFS["hyp2f1"] = hyp2f1

register_when_imported(DEFS)
