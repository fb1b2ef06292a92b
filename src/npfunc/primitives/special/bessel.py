"""Bessel functions of ``scipy.special``: ``jv`` (= ``jn``), ``yv yn iv ive kv kve``
(any order), ``j0 j1 y0 y1 k0 k0e k1 k1e`` (fixed order) and the spherical
``spherical_jn`` / ``spherical_yn``.

Derivatives in the argument come from the three-term recurrences
(DLMF 10.6.1, 10.29.1, 10.51.2), written only with Bessel functions of
neighbouring orders -- never as a quotient by ``x`` -- so every derivative
order is exact at ``x = 0`` too (``iv(1, x)'' = (iv(-1) + 2 iv(1) + iv(3)) / 4``),
and the scaled functions stay finite for large arguments:

    J_v' = (J_{v-1} - J_{v+1}) / 2          Y_v' = (Y_{v-1} - Y_{v+1}) / 2
    I_v' = (I_{v-1} + I_{v+1}) / 2          K_v' = -(K_{v-1} + K_{v+1}) / 2
    ive' = (ive_{v-1} + ive_{v+1}) / 2 - sign(x) ive_v
    kve' = kve_v - (kve_{v-1} + kve_{v+1}) / 2
    f_n' = (n f_{n-1} - (n + 1) f_{n+1}) / (2n + 1)     (spherical f = j, y)

Complex arguments are differentiated as holomorphic functions (``ive`` is not
holomorphic: its derivative is for real ``x`` only).  The derivative in a
real order ``v`` (``jv iv kv yv ive kve jn``) has no closed form in terms of
these functions: asking for it raises ``UnsupportedOperationError`` -- the
order is not differentiated when it is a constant.  The integer orders of
``yn`` and the spherical functions have no derivative (zero tangent).

>>> import npfunc, scipy.special as sc
>>> round(float(npfunc.grad(lambda x: sc.jv(1.0, x))(2.0)), 6)
-0.064472
>>> float(npfunc.grad(npfunc.grad(npfunc.grad(lambda x: sc.iv(1.0, x))))(0.0))  # 3/8, exact at 0
0.375
"""
from __future__ import annotations

import numpy as np

from ...core.context import describe_stack
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Sample
from ...core.values import dtype_of
from ..families import conj, nary, unary
from ..sampling import FLOATS, array, unary_samples
from ._lazy import lazy_ufunc, register_when_imported, scipy_special

DEFS: dict = {}


def _order_rule(name):
    """The rule for the order argument: the derivative does not exist in closed form."""

    def rule(*args):
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.{name}(v, x) is differentiated in x only; its "
            f"derivative in the order v has no closed form and is not implemented. Keep v out of "
            f"the differentiated inputs (pass it as a constant, or wrap it in npfunc.stop_gradient).")

    rule.__name__ = f"{name}_order_derivative"
    return rule


def _real_only(name, x):
    if dtype_of(x).kind == "c":
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.special.{name} is not holomorphic (it scales by exp(-|Re z|)), "
            f"so it has no complex derivative; differentiate iv(v, z) * np.exp(-np.abs(z.real)) "
            f"instead, or use real arguments.")


def _with_order(name, dx, *, integer_order=False, samples=None, notes=""):
    """A Bessel function f(v, x) with ``dx(v, x, out)`` = df/dx."""
    order = None if integer_order else _order_rule(name)
    fn = nary(name, lazy_ufunc(name),
              jvps=(order and (lambda t, v, x, out: order()), lambda t, v, x, out: t * dx(v, x, out)),
              vjps=(order and (lambda g, v, x, out: order()), lambda g, v, x, out: g * conj(dx(v, x, out))),
              samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}(v, x)`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


def _fixed(name, deriv, samples, notes=""):
    fn = unary(name, lazy_ufunc(name), deriv=deriv, samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}(x)`` for traced and plain values (see the module doc)."
    DEFS[name] = fn
    return fn


# ---- samples ------------------------------------------------------------------------------------

def _order_samples(domain=(0.2, 5.0), complex_ok=True, integer_only=False, zero_ok=True, large=(),
                   negative=False):
    """Orders (integer, half-integer, negative) against arguments; derivatives in x only."""

    def make(rng):
        out = []
        orders = np.array([0.0, 1.0, 2.0]) if integer_only else np.array([0.0, 1.5, -0.7])
        for dt in FLOATS:
            out.append(Sample(orders.astype(dt), array(rng, (2, 3), dt, domain), argnums=(1,)))
        out.append(Sample(2, array(rng, (3,), domain=domain), argnums=(1,), label="python int order"))
        out.append(Sample(np.array([[0.0], [3.0]]), array(rng, (4,), domain=domain), argnums=(1,),
                          label="broadcast"))
        if negative:
            out.append(Sample(np.array([0.0, 1.0, 4.0]), array(rng, (3,), domain=(-5.0, -0.2)), argnums=(1,),
                              label="negative x, integer orders"))
        if zero_ok:  # integer orders at and near 0: every derivative order is finite there
            out.append(Sample(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1e-4, 0.0, 1e-3]),
                              argnums=(1,), label="x at and near 0"))
        if large:
            out.append(Sample(np.array([0.0, 1.0, 2.5]), np.array(large), argnums=(1,), label="large x"))
        if complex_ok:
            z = array(rng, (3,), domain=domain) + 1j * array(rng, (3,), domain=(-1, 1))
            out.append(Sample(np.array([0.0, 1.0, 2.5]), z, argnums=(1,), label="complex"))
        return out

    return make


def _fixed_samples(domain=(0.2, 5.0), zero_ok=False, large=()):
    def make(rng):
        out = unary_samples(domain=domain)(rng)
        if zero_ok:
            out.append(Sample(np.array([0.0, 1e-4, -1e-3]), label="at and near 0"))
        if large:
            out.append(Sample(np.array(large), label="large x"))
        return out

    return make


# ---- any order ------------------------------------------------------------------------------------

def _jv_dx(v, x, out):
    return 0.5 * (jv(v - 1, x) - jv(v + 1, x))


def _yv_dx(v, x, out):
    return 0.5 * (yv(v - 1, x) - yv(v + 1, x))


def _iv_dx(v, x, out):
    return 0.5 * (iv(v - 1, x) + iv(v + 1, x))


def _ive_dx(v, x, out):
    _real_only("ive", x)
    return 0.5 * (ive(v - 1, x) + ive(v + 1, x)) - np.sign(x) * out


def _kv_dx(v, x, out):
    return -0.5 * (kv(v - 1, x) + kv(v + 1, x))


def _kve_dx(v, x, out):
    return out - 0.5 * (kve(v - 1, x) + kve(v + 1, x))


_RECURRENCE = "d/dx by the order recurrence (exact at x = 0 to every order); d/dv not implemented (error)"

jv = _with_order("jv", _jv_dx, samples=_order_samples(negative=True, large=[80.0, 300.0, 1e3]),
                 notes=_RECURRENCE)
yv = _with_order("yv", _yv_dx, samples=_order_samples(zero_ok=False, large=[80.0, 300.0, 1e3]),
                 notes="d/dx by the order recurrence; d/dv not implemented (error)")
iv = _with_order("iv", _iv_dx, samples=_order_samples(domain=(0.2, 4.0), negative=True, large=[30.0, 200.0, 600.0]),
                 notes=_RECURRENCE)
ive = _with_order("ive", _ive_dx,
                  samples=_order_samples(domain=(0.1, 4.0), complex_ok=False, zero_ok=False,
                                         large=[30.0, 500.0, 1e4]),
                  notes="d/dx = (ive(v-1) + ive(v+1))/2 - sign(x) ive(v) (real x only); d/dv: error")
kv = _with_order("kv", _kv_dx, samples=_order_samples(zero_ok=False, large=[30.0, 200.0, 600.0]),
                 notes="d/dx by the order recurrence; d/dv not implemented (error)")
kve = _with_order("kve", _kve_dx, samples=_order_samples(zero_ok=False, large=[30.0, 500.0, 1e4]),
                  notes="d/dx = kve(v) - (kve(v-1) + kve(v+1))/2; d/dv not implemented (error)")
jn = jv  # SciPy's jn is the same ufunc as jv
yn = _with_order("yn", lambda n, x, out: 0.5 * (yn(n - 1, x) - yn(n + 1, x)), integer_order=True,
                 samples=_order_samples(integer_only=True, zero_ok=False, complex_ok=False),
                 notes="integer order n (SciPy truncates), not differentiated; d/dx by the recurrence")


# ---- fixed order ---------------------------------------------------------------------------------

j0 = _fixed("j0", lambda x, out: -j1(x), _fixed_samples((-6.0, 6.0), zero_ok=True, large=[120.0, 1e3]),
            notes="derivative -j1(x)")
j1 = _fixed("j1", lambda x, out: 0.5 * (j0(x) - jv(2, x)),
            _fixed_samples((-6.0, 6.0), zero_ok=True, large=[120.0, 1e3]),
            notes="derivative (j0(x) - jv(2, x)) / 2: exact at 0 to every order")
y0 = _fixed("y0", lambda x, out: -y1(x), _fixed_samples((0.2, 6.0), large=[120.0, 1e3]),
            notes="derivative -y1(x)")
y1 = _fixed("y1", lambda x, out: 0.5 * (y0(x) - yv(2, x)), _fixed_samples((0.2, 6.0), large=[120.0, 1e3]),
            notes="derivative (y0(x) - yv(2, x)) / 2")
k0 = _fixed("k0", lambda x, out: -k1(x), _fixed_samples((0.2, 6.0), large=[60.0, 700.0]),
            notes="derivative -k1(x)")
k1 = _fixed("k1", lambda x, out: -0.5 * (k0(x) + kv(2, x)), _fixed_samples((0.2, 6.0), large=[60.0, 700.0]),
            notes="derivative -(k0(x) + kv(2, x)) / 2")
k0e = _fixed("k0e", lambda x, out: out - k1e(x), _fixed_samples((0.2, 6.0), large=[60.0, 1e4]),
             notes="derivative k0e(x) - k1e(x): finite for large x")
k1e = _fixed("k1e", lambda x, out: out - 0.5 * (k0e(x) + kve(2, x)),
             _fixed_samples((0.2, 6.0), large=[60.0, 1e4]),
             notes="derivative k1e(x) - (k0e(x) + kve(2, x)) / 2")

# ---- spherical Bessel functions (SciPy's Python functions: twins call these primitives) --------------


def _spherical_impl(name):
    def impl(n, z):
        return getattr(scipy_special(), name)(n, z)

    impl.__name__ = name
    return impl


def spherical_derivative(fn, n, z):
    """(n f_{n-1}(z) - (n + 1) f_{n+1}(z)) / (2n + 1); the n = 0 term needs no f_{-1}."""
    below = fn(np.maximum(n - 1, 0), z)
    return (n * below - (n + 1) * fn(n + 1, z)) / (2 * n + 1)


def _spherical_samples(zero_ok):
    def make(rng):
        out = []
        for dt in FLOATS:
            out.append(Sample(np.array([0, 1, 3]), array(rng, (2, 3), dt, (0.3, 6.0))))
        out.append(Sample(2, array(rng, (3,), domain=(-6.0, -0.3)), label="negative z, python int n"))
        z = array(rng, (3,), domain=(0.5, 3.0)) + 1j * array(rng, (3,), domain=(-1, 1))
        out.append(Sample(np.array([0, 1, 2]), z, label="complex"))
        if zero_ok:
            out.append(Sample(np.array([0, 1, 2, 3]), np.array([0.0, 0.0, 1e-3, 0.0]), label="z at 0"))
        return out

    return make


def _spherical(name, zero_ok):
    def rule(n, z, out):
        return spherical_derivative(fn, n, z)

    fn = nary(name, _spherical_impl(name),
              jvps=(None, lambda t, n, z, out: t * rule(n, z, out)),
              vjps=(None, lambda g, n, z, out: g * conj(rule(n, z, out))),
              samples=_spherical_samples(zero_ok),
              notes="integer order n not differentiated; d/dz = (n f_{n-1} - (n+1) f_{n+1}) / (2n+1)")
    return fn


spherical_jn = _spherical("spherical_jn", True)
spherical_yn = _spherical("spherical_yn", False)

register_when_imported(DEFS)
