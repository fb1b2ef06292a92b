"""Elementwise primitives: arithmetic, transcendental functions, comparisons.

Conventions at special points (tested in tests/test_conventions.py, table in
docs/conventions.md): ``abs`` and ``sign`` have derivative 0 at 0;
``maximum``/``minimum`` split the derivative equally at ties and give the
losing argument an exact 0 (selected, never ``0 * inf``); ``sqrt`` has
derivative +inf at 0; ``x ** y`` has no NaN at ``x = 0`` for ``y >= 1`` or
integer ``y`` and uses ``log(x)`` with zeros replaced in ∂/∂y; ``where``
lets a NaN made in the untaken branch reach that branch's inputs (as JAX).

Complex numbers follow torch: a real loss L of z = x + iy has gradient
dL/dx + i dL/dy, so a holomorphic f has ``vjp(g) = g * conj(f'(z))``.

More elementwise functions live in ``transcendental`` (powers, logs,
inverse trigonometry, sinc, angle...), ``piecewise`` (clip,
rounding, remainders, fmax...) and ``logic`` (predicates and
bitwise operations); they are imported at the bottom of this module.
"""
from __future__ import annotations

import operator
from typing import Callable

import numpy as np

from ...core.primitive import Primitive, Sample
from ...core.values import dtype_of, is_python_scalar, shape_of
from ...core.zeros import zero
from ..families import (_REAL_SCALARS, binary, by_operator, cast_like, composite, conj, elementwise_batch, fit_cotangent, nary,
                        nondiff, unary)
from .samples import (COMPLEX, combined, complex_array, complex_binary, complex_unary,
                      pair_points, points, real_and_complex_binary, real_and_complex_unary,
                      sign_samples, where_samples)
from ..sampling import FLOATS, array, binary_samples, unary_samples

# ---- linear and arithmetic ----------------------------------------------------------


def _keep(t, *_):
    return t


def _negate(t, *_):
    return negative(t)


add = binary("add", by_operator(operator.add, np.add), ufunc=np.add,
             jvps=(_keep, _keep), vjps=(_keep, _keep), samples=real_and_complex_binary(), numpy=[np.add])
subtract = binary("subtract", by_operator(operator.sub, np.subtract), ufunc=np.subtract,
                  jvps=(_keep, _negate), vjps=(_keep, _negate), samples=real_and_complex_binary(),
                  numpy=[np.subtract])
multiply = binary("multiply", by_operator(operator.mul, np.multiply), ufunc=np.multiply,
                  partials=(lambda x, y, out: y, lambda x, y, out: x),
                  samples=real_and_complex_binary(), numpy=[np.multiply])


def _multiply_vjp(g, primals, out, needs):
    """The VJP ``binary`` builds from multiply's partials, without calling them."""
    x, y = primals
    if type(g) is np.float64 and type(x) in _REAL_SCALARS and type(y) in _REAL_SCALARS:
        # real scalars: conj is the identity, and the products need no fitting
        return (g * y if needs[0] else zero, g * x if needs[1] else zero)
    return (fit_cotangent(g * conj(y), x) if needs[0] else zero,
            fit_cotangent(g * conj(x), y) if needs[1] else zero)


multiply.primitive.vjp = _multiply_vjp


def _div_jvp_y(t, x, y, out):
    return -t * out / y


def _div_vjp_y(g, x, y, out):
    return -g * conj(out / y)


divide = binary("divide", by_operator(operator.truediv, np.true_divide), ufunc=np.true_divide,
                jvps=(lambda t, x, y, out: t / y, _div_jvp_y),
                vjps=(lambda g, x, y, out: g / conj(y), _div_vjp_y),
                samples=real_and_complex_binary(domain_y=(0.5, 2.0)), numpy=[np.true_divide])


def _pow_dx(x, y, out):
    """y * x**(y-1), with no 0 * inf at x == 0: for y >= 1 it is finite, and at
    x == y == 0 (where 0 * 0**-1 would be NaN) the base is replaced by 1, which
    gives the limit 0 while keeping every higher derivative exact elsewhere."""
    if is_python_scalar(y):
        if y == 0:
            return zeros_like(x)
        if y == 1:
            return ones_like(x)
        if y == 2:
            return 2 * x
        return y * power(x, y - 1)
    both_zero = logical_and(equal(x, 0), equal(y, 0))
    return y * power(where(both_zero, ones_like(x), x), y - 1)


def _pow_dy(x, y, out):
    """out * log(x), with log(0) replaced so that 0 ** y (y > 0) has ∂/∂y = 0."""
    if is_python_scalar(x):  # 2.0 ** y: keep log(x) a weak Python scalar
        return out * (np.log(x).item() if x != 0 else 0.0)
    safe = where(x == 0, ones_like(x), x)
    return out * log(safe)


def _power_samples(rng):
    zeros = np.zeros(3)
    ys = np.array([1.0, 2.0, 3.0])
    return [Sample(zeros, ys, argnums=(0,), label="x = 0, integer y, d/dx"),
            Sample(zeros, ys, argnums=(1,), label="x = 0, integer y, d/dy"),
            Sample(zeros, 3.0, label="x = 0, python scalar y"),
            Sample(array(rng, (3,)), np.array([0, 1, 3]), label="integer array y"),
            Sample(array(rng, (2, 3), np.float32, (0.5, 2.0)), 2, label="float32, python int y")]


def _power(x, y, /, as_operator=False):
    """``np.power(x, y)``; ``x ** y`` with ``as_operator`` (how the ``**`` operator binds it).

    They differ on NumPy scalars: ``s ** 3`` is NumPy's scalar math (the C
    library's ``pow``), ``np.power(s, 3)`` the ufunc's loop, and the two are
    1 ulp apart for some inputs.  On arrays both are the ufunc, except that
    NumPy's operator squares a boolean array (int8, not int64).
    """
    if as_operator:
        x, y = _scalar_operand(x), _scalar_operand(y)
        if type(x) is not np.ndarray and type(y) is not np.ndarray:
            return x ** y
        if type(y) is int and y == 2 and type(x) is np.ndarray and x.dtype == bool:
            return np.square(x)  # the operator squares (int8), where np.power gives int64
    return np.power(x, y)


def _scalar_operand(v):
    """A transform's NumPy-scalar input (held as a read-only 0-d array, api/_common.as_input) as
    the scalar it stands for."""
    if type(v) is np.ndarray and not v.shape and not v.flags.writeable:
        return v[()]
    return v


def _scalar_power_samples(rng):
    return [Sample(np.float64(1.3), 3, as_operator=True, label="s ** 3, scalar math"),
            Sample(np.float32(1.21), -3.0, as_operator=True, label="float32 s ** -3.0, scalar math"),
            Sample(2.5, np.float64(1.7), as_operator=True, label="2.5 ** s"),
            Sample(array(rng, (2, 3), np.float64, (0.5, 2.0)), 1.5, as_operator=True, label="array ** 1.5")]


power = binary("power", _power, ufunc=np.power, partials=(_pow_dx, _pow_dy),
               samples=combined(
                   binary_samples(domain=(0.5, 2.0), domain_y=(-2.0, 2.0), scalar=3.0),
                   complex_binary(re=(0.5, 2.0), re_y=(-2.0, 2.0), im_y=(-0.5, 0.5),
                                  scalar=2.0 - 0.5j),
                   _power_samples, _scalar_power_samples),
               numpy=[np.power],
               notes="no NaN at x == 0 for y >= 1 or integer y; d/dy uses log(x) with "
                     "zeros replaced by 1")

negative = unary("negative", by_operator(operator.neg, np.negative), ufunc=np.negative, jvp=_negate, vjp=_negate,
                 samples=real_and_complex_unary(), numpy=[np.negative])


def _abs_jvp(t, x, out):
    if dtype_of(x).kind == "c":  # d|z| = Re(conj(z) dz) / |z|, 0 at z == 0
        safe = where(out == 0, ones_like(out), out)
        return real(conj(x) * t) / safe
    return t * sign(x)


def _abs_vjp(g, x, out):
    if dtype_of(x).kind == "c":
        safe = where(out == 0, ones_like(out), out)
        return g * x / safe
    return g * sign(x)


absolute = unary("absolute", np.absolute, jvp=_abs_jvp, vjp=_abs_vjp,
                 samples=combined(real_and_complex_unary(),
                                  points([0.0, -1.0, 2.0], [[0.0], [0.5]], label="zeros"),
                                  points([0.0, 1 - 1j], dtype=np.complex128, label="complex zero")),
                 numpy=[np.absolute],
                 notes="derivative 0 at x == 0 (real and complex)")

# ---- transcendental -------------------------------------------------------------------

exp = unary("exp", np.exp, deriv=lambda x, out: out, samples=real_and_complex_unary(),
            numpy=[np.exp])
log = unary("log", np.log, deriv=lambda x, out: 1 / x,
            samples=real_and_complex_unary(domain=(0.2, 3.0)), numpy=[np.log])
log1p = unary("log1p", np.log1p, deriv=lambda x, out: 1 / (1 + x),
              samples=real_and_complex_unary(domain=(-0.7, 3.0)), numpy=[np.log1p])
expm1 = unary("expm1", np.expm1, deriv=lambda x, out: out + 1,
              samples=real_and_complex_unary(), numpy=[np.expm1])
sqrt = unary("sqrt", np.sqrt, deriv=lambda x, out: 0.5 / out,
             samples=real_and_complex_unary(domain=(0.2, 3.0)), numpy=[np.sqrt],
             notes="derivative +inf at 0")
sin = unary("sin", np.sin, deriv=lambda x, out: cos(x), samples=real_and_complex_unary(),
            numpy=[np.sin])
cos = unary("cos", np.cos, deriv=lambda x, out: -sin(x), samples=real_and_complex_unary(),
            numpy=[np.cos])
tan = unary("tan", np.tan, deriv=lambda x, out: 1 + out * out,
            samples=real_and_complex_unary(domain=(-1.2, 1.2)), numpy=[np.tan])
tanh = unary("tanh", np.tanh, deriv=lambda x, out: 1 - out * out,
             samples=real_and_complex_unary(im=(-0.7, 0.7)), numpy=[np.tanh])
sinh = unary("sinh", np.sinh, deriv=lambda x, out: cosh(x), samples=real_and_complex_unary(),
             numpy=[np.sinh])
cosh = unary("cosh", np.cosh, deriv=lambda x, out: sinh(x), samples=real_and_complex_unary(),
             numpy=[np.cosh])
arctan = unary("arctan", np.arctan, deriv=lambda x, out: 1 / (1 + x * x),
               samples=real_and_complex_unary(im=(-0.5, 0.5)), numpy=[np.arctan])


# ---- maximum / minimum: ties split the derivative equally -----------------------------

def _tie_weight(x, y, out, wins):
    """1 where ``x`` is taken alone, 0.5 at ties, 0 where it loses, in ``out``'s dtype."""
    dt = dtype_of(out)
    return astype(wins(x, y), dt) + astype(equal(x, y), dt) * 0.5


def _weighted(v, w):
    """``v * w``, exactly 0 where ``w == 0`` even if ``v`` is infinite or NaN there."""
    if np.isfinite(np.add.reduce(v, axis=None)):  # the common case (a sum of finite v): no 0 * inf
        return v * w
    with np.errstate(invalid="ignore"):  # (NumPy would warn of the 0 * inf discarded below)
        out = v * w
    if type(out) is np.ndarray:
        return np.where(w == 0, np.zeros((), out.dtype), out)
    return type(out)(0) if w == 0 else out  # a NumPy scalar, as the product


def _weighted_samples(rng):
    w = np.array([[0.0, 0.5, 1.0], [1.0, 0.0, 0.5]])
    return [Sample(array(rng, (2, 3), dt), w.astype(dt), argnums=(0,)) for dt in FLOATS] + [
        Sample(array(rng, (3,)), w, argnums=(0,), label="broadcast v"),
        Sample(complex_array(rng, (2, 3)), w, argnums=(0,), label="complex v")]


weighted = nary(
    "weighted", _weighted,
    jvps=(lambda t, v, w, out: weighted(t, w), None),
    vjps=(lambda g, v, w, out: weighted(g, w), None),
    samples=_weighted_samples,
    notes="v * w for a selection weight w (0, 1/2, 1): an exact 0 where w == 0, never 0 * inf = NaN")


def extremum(name: str, ufunc: np.ufunc, wins: Callable, notes: str, samples) -> Callable:
    """``np.maximum``-like ``ufunc``; ``wins(x, y)``: where ``x`` alone is taken.

    The derivative goes to the argument taken, split equally at ties, through
    ``weighted``: where an argument loses it gets an exact 0, so an infinite
    derivative downstream (``sqrt`` at the clipped side of
    ``np.sqrt(np.clip(x, 0, None))``) gives the 0 of the constant the function
    is there, not ``0 * inf = NaN`` (PyTorch's ``clamp`` selects as well).
    """
    def rule(first):
        def rule(v, x, y, out):
            return weighted(v, _tie_weight(x, y, out, wins) if first else _tie_weight(y, x, out, wins))
        return rule

    return binary(name, ufunc, jvps=(rule(True), rule(False)), vjps=(rule(True), rule(False)),
                  samples=samples, numpy=[ufunc], notes=notes)


_TIES = pair_points(([1.0, 2.0, -3.0], [1.0, 0.5, -3.0]), ([[0.0, 1.0]], [[0.0], [1.0]]),
                    label="ties")
maximum = extremum("maximum", np.maximum, lambda x, y: greater(x, y), "ties split the derivative equally",
                   combined(binary_samples(), _TIES))
minimum = extremum("minimum", np.minimum, lambda x, y: less(x, y), "ties split the derivative equally",
                   combined(binary_samples(), _TIES))


# ---- where ------------------------------------------------------------------------

def _where_samples(rng):
    out = []
    for dt in FLOATS:
        c = rng.uniform(size=(2, 3)) > 0.5
        out.append(Sample(c, array(rng, (2, 3), dt), array(rng, (2, 3), dt), argnums=(1, 2)))
        out.append(Sample(c[0], array(rng, (2, 3), dt), array(rng, (3,), dt), argnums=(1, 2)))
    out.append(Sample(rng.uniform(size=(3,)) > 0.5, array(rng, (3,)), 0.0, argnums=(1,)))
    for dt in COMPLEX:
        c = rng.uniform(size=(2, 3)) > 0.5
        out.append(Sample(c, complex_array(rng, (2, 3), dt), complex_array(rng, (3,), dt),
                          argnums=(1, 2), label=np.dtype(dt).name))
    out.append(Sample(c, complex_array(rng, (2, 3)), array(rng, (2, 3)), argnums=(1, 2),
                      label="complex, real"))
    return out


def _where_jvp_x(t, c, x, y, out):
    return where(c, t, zeros_like(t))


def _where_jvp_y(t, c, x, y, out):
    return where(c, zeros_like(t), t)


where = nary("where", np.where,
             jvps=(None, _where_jvp_x, _where_jvp_y),
             vjps=(None, lambda g, c, x, y, out: where(c, g, zeros_like(g)),
                   lambda g, c, x, y, out: where(c, zeros_like(g), g)),
             samples=_where_samples,
             notes="the branch not taken gets a zero cotangent, but a NaN or inf made while "
                   "computing that branch still poisons its own derivative (0 * inf = NaN, "
                   "as in JAX); guard its input with an inner where (the 'double where' fix)")
composite(np.where, samples=where_samples)(lambda condition, x=None, y=None: _where_dispatch(condition, x, y))


def _where_dispatch(condition, x, y):
    if x is None and y is None:
        from ..searching import nonzero

        return nonzero(condition)
    from ..indexing.aliasing import array_result

    # np.where returns an array, a 0-d one too (library code that wants NumPy's
    # scalar for a 0-d result calls the primitive ``where`` instead)
    return array_result(where(condition, x, y))


# ---- comparisons and other outputs without derivatives --------------------------

def _compare_samples(rng):
    x = array(rng, (2, 3))
    return [Sample(x, array(rng, (3,))), Sample(x, x.copy()), Sample(x, 0.5)]


equal = nondiff("equal", np.equal, samples=_compare_samples, numpy=[np.equal])
not_equal = nondiff("not_equal", np.not_equal, samples=_compare_samples, numpy=[np.not_equal])
less = nondiff("less", np.less, samples=_compare_samples, numpy=[np.less])
less_equal = nondiff("less_equal", np.less_equal, samples=_compare_samples, numpy=[np.less_equal])
greater = nondiff("greater", np.greater, samples=_compare_samples, numpy=[np.greater])
greater_equal = nondiff("greater_equal", np.greater_equal, samples=_compare_samples,
                        numpy=[np.greater_equal])
_sign_real = nondiff("sign", np.sign, samples=combined(unary_samples(), points([0.0, -1.0, 2.0])),
                     numpy=[], notes="real: piecewise constant, derivative 0 everywhere (0 at the jump)")


def _sign_complex_rule(v, x, out):
    """d(z/|z|) applied to v: (v - s Re(conj(s) v)) / |z|, 0 at z == 0.  The map is
    self-adjoint for the real inner product, so it is both the JVP and the VJP."""
    r = absolute(x)
    is_zero = equal(r, 0)
    inv = where(is_zero, zeros_like(r), 1 / where(is_zero, ones_like(r), r))
    return (v - out * real(conjugate(out) * v)) * inv


_sign_complex = unary("sign_complex", np.sign, jvp=_sign_complex_rule, vjp=_sign_complex_rule,
                      samples=combined(complex_unary(),
                                       points([0.5, 1 + 1j, -2j], dtype=np.complex128,
                                              kink=False)),
                      notes="z / abs(z), not holomorphic; derivative 0 at z == 0")


def sign(x, /):
    """``np.sign``: -1, 0 or 1 for real ``x`` (zero derivative everywhere, as in JAX);
    ``z / |z|`` for complex ``z`` (NumPy 2), differentiated as such, 0 at ``z == 0``."""
    if dtype_of(x).kind == "c":
        return _sign_complex(x)
    return _sign_real(x)


sign.primitive = _sign_real.primitive  # type: ignore[attr-defined]
composite(np.sign, samples=sign_samples)(sign)

_BOOLS2 = lambda rng: [Sample(rng.uniform(size=(2, 3)) > .5, rng.uniform(size=(3,)) > .5)]  # noqa: E731
logical_not = nondiff("logical_not", np.logical_not,
                      samples=lambda rng: [Sample(rng.uniform(size=(3,)) > 0.5)], numpy=[np.logical_not])
logical_and = nondiff("logical_and", np.logical_and, numpy=[np.logical_and], samples=_BOOLS2)
logical_or = nondiff("logical_or", np.logical_or, numpy=[np.logical_or], samples=_BOOLS2)
isfinite = nondiff("isfinite", np.isfinite, samples=unary_samples(), numpy=[np.isfinite])
isnan = nondiff("isnan", np.isnan, samples=unary_samples(), numpy=[np.isnan])


# ---- constants, casts, stop_gradient ------------------------------------------------

def _unbatched_like(fill):
    """Batch rule for *_like: the result does not vary over the batch."""

    def batch(vals, dims, **params):
        (x,), (d,) = vals, dims
        logical = x.shape[:d] + x.shape[d + 1:]
        return fill(logical, dtype_of(x)), None

    return batch


zeros_like = nondiff("zeros_like", lambda x: np.zeros(shape_of(x), dtype_of(x)),
                     batch=_unbatched_like(np.zeros), samples=unary_samples(), numpy=[])
def _ones(x):
    """``np.ones(np.shape(x), x.dtype)``, without np.ones' Python layer (reverse mode's seed)."""
    out = np.empty(shape_of(x), dtype_of(x))
    out.fill(1)
    return out


ones_like = nondiff("ones_like", _ones,
                    batch=_unbatched_like(np.ones), samples=unary_samples(), numpy=[])


def _stop_batch(vals, dims):
    return stop_gradient.primitive.bind(vals[0]), dims[0]


stop_gradient = nondiff("stop_gradient", lambda x: x, batch=_stop_batch,
                        samples=unary_samples(), numpy=[])
stop_gradient.__doc__ = """The value of ``x`` as a constant: derivatives do not flow through it.

    >>> import numpy as np, npfunc
    >>> npfunc.grad(lambda x: x * npfunc.stop_gradient(x))(np.float64(3.0))
    np.float64(3.0)
    """


def _astype_impl(x, *, dtype):
    x = _scalar_operand(x)  # (np.float64.astype gives a scalar)
    return np.asarray(x).astype(dtype, copy=False) if not isinstance(x, np.generic) else x.astype(dtype)


def _astype_jvp(primals, tangents, out, *, dtype):
    (t,) = tangents
    return astype(t, dtype) if np.dtype(dtype).kind in "fc" else zero


def _astype_vjp(g, primals, out, needs, *, dtype):
    (x,) = primals
    return (cast_like(g, dtype_of(x)),)


def _astype_batch(vals, dims, *, dtype):
    return _astype.bind(vals[0], dtype=dtype), dims[0]


_astype = Primitive("astype", _astype_impl, jvp=_astype_jvp, vjp=_astype_vjp, batch=_astype_batch,
                    samples=lambda rng: [Sample(array(rng, (2, 3)), dtype=np.float32),
                                         Sample(array(rng, (3,), np.float32), dtype=np.float64)])


def astype(x, dtype):
    """``x`` converted to ``dtype`` (a no-op when it already has it)."""
    dtype = np.dtype(dtype)
    if dtype_of(x) == dtype:
        return x
    return _astype.bind(x, dtype=dtype)


astype.primitive = _astype  # type: ignore[attr-defined]

# ---- complex parts ---------------------------------------------------------------------

def _real_part_samples(rng):
    return [Sample(array(rng, (2, 3)), label="float64"), Sample(array(rng, (3,), np.float32),
                                                                 label="float32")]


conjugate = unary("conjugate", np.conjugate, jvp=lambda t, x, out: conjugate(t),
                  vjp=lambda g, x, out: conjugate(g),
                  samples=combined(complex_unary(), _real_part_samples),
                  numpy=[np.conjugate])
conjugate.__doc__ = "``np.conjugate`` / ``np.conj``: linear, its VJP conjugates the cotangent."
real = unary("real", np.real, jvp=lambda t, x, out: real(t),
             vjp=lambda g, x, out: g,
             samples=combined(complex_unary(), _real_part_samples))
real.__doc__ = "``np.real``: the cotangent g of the real part becomes the (real) cotangent g."


def _imag_vjp(g, x, out):
    if dtype_of(x).kind != "c":
        return zeros_like(g)
    return g * 1j


imag = unary("imag", np.imag, jvp=lambda t, x, out: imag(t), vjp=_imag_vjp,
             samples=combined(complex_unary(), _real_part_samples))
imag.__doc__ = "``np.imag``: the cotangent g of the imaginary part becomes i * g."


def _make_complex_impl(re, im):
    """``re + 1j * im`` exactly (the sum would turn an infinite part into NaN)."""
    out = np.empty(np.broadcast_shapes(np.shape(re), np.shape(im)),
                   np.result_type(re, im, np.complex64))
    out.real = re
    out.imag = im
    return out


def _make_complex_samples(rng):
    return [Sample(array(rng, (2, 3)), array(rng, (2, 3))),
            Sample(array(rng, (3,), np.float32), array(rng, (2, 1), np.float32), label="broadcast float32"),
            Sample(array(rng, (3,)), np.array([np.inf, -np.inf, 0.0]), argnums=(), label="infinite imaginary part")]


make_complex = binary(
    "make_complex", _make_complex_impl,
    jvps=(lambda t, re, im, out: t, lambda t, re, im, out: t * 1j),
    vjps=(lambda g, re, im, out: real(g), lambda g, re, im, out: imag(g)),
    samples=_make_complex_samples,
    notes="re + 1j * im, exactly; writes through x.real / x.imag are made of it")

def document(namespace: dict) -> None:
    """Give every family-made public function of a module a docstring naming the
    NumPy function it implements and its convention (the primitive's notes)."""
    for name, fn in list(namespace.items()):
        prim = getattr(fn, "primitive", None)
        if name.startswith("_") or prim is None or not callable(fn) or fn.__doc__:
            continue
        numpy_name = prim.name if hasattr(np, prim.name) else name
        fn.__doc__ = (f"``np.{numpy_name}`` for traced and plain values"
                      + (f"; {prim.notes}." if prim.notes else ".")
                      + ("" if prim.differentiable else " The result carries no derivative."))


zeros_like.__doc__ = "Zeros shaped like ``x`` in its dtype, constant under every transform (for rules)."
ones_like.__doc__ = "Ones shaped like ``x`` in its dtype, constant under every transform (for rules)."
document(globals())

# The rest of the elementwise functions (they import the definitions above).
