"""Elementwise primitives: arithmetic, transcendental functions, comparisons.

Conventions at special points (tested in tests/test_conventions.py):
``abs`` has derivative 0 at 0; ``maximum``/``minimum`` split the derivative
equally at ties; ``sqrt`` has derivative +inf at 0; ``x ** y`` has no NaN at
``x = 0`` for ``y >= 1`` and uses ``log(x)`` with zeros replaced in ∂/∂y.
"""
from __future__ import annotations

import numpy as np

from ..core.dispatch import implements
from ..core.primitive import Primitive, Sample
from ..core.values import dtype_of, is_python_scalar
from ..core.zeros import zero
from .families import binary, conj, elementwise_batch, nary, nondiff, unary
from .sampling import FLOATS, array, binary_samples, unary_samples

# ---- linear and arithmetic ----------------------------------------------------------


def _keep(t, *_):
    return t


def _negate(t, *_):
    return negative(t)


add = binary("add", np.add, jvps=(_keep, _keep), vjps=(_keep, _keep),
             samples=binary_samples(), numpy=[np.add])
subtract = binary("subtract", np.subtract, jvps=(_keep, _negate), vjps=(_keep, _negate),
                  samples=binary_samples(), numpy=[np.subtract])
multiply = binary("multiply", np.multiply,
                  partials=(lambda x, y, out: y, lambda x, y, out: x),
                  samples=binary_samples(), numpy=[np.multiply])


def _div_jvp_y(t, x, y, out):
    return -t * out / y


def _div_vjp_y(g, x, y, out):
    return -g * conj(out / y)


divide = binary("divide", np.true_divide,
                jvps=(lambda t, x, y, out: t / y, _div_jvp_y),
                vjps=(lambda g, x, y, out: g / conj(y), _div_vjp_y),
                samples=binary_samples(domain_y=(0.5, 2.0)), numpy=[np.true_divide])


def _pow_dx(x, y, out):
    """y * x**(y-1), exact at x == 0 for y == 0, 1, 2 (no 0 * inf)."""
    if is_python_scalar(y):
        if y == 0:
            return zeros_like(x)
        if y == 1:
            return ones_like(x)
        if y == 2:
            return 2 * x
        return y * power(x, y - 1)
    return where(y == 0, zeros_like(out), y * power(x, y - 1))


def _pow_dy(x, y, out):
    """out * log(x), with log(0) replaced so that 0 ** y (y > 0) has ∂/∂y = 0."""
    safe = where(x == 0, ones_like(x), x)
    return out * log(safe)


power = binary("power", np.power, partials=(_pow_dx, _pow_dy),
               samples=binary_samples(domain=(0.5, 2.0), domain_y=(-2.0, 2.0), scalar=3.0),
               numpy=[np.power])

negative = unary("negative", np.negative, jvp=_negate, vjp=_negate,
                 samples=unary_samples(), numpy=[np.negative])


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
                 samples=unary_samples(), numpy=[np.absolute],
                 notes="derivative 0 at x == 0")

# ---- transcendental -------------------------------------------------------------------

exp = unary("exp", np.exp, deriv=lambda x, out: out, samples=unary_samples(), numpy=[np.exp])
log = unary("log", np.log, deriv=lambda x, out: 1 / x,
            samples=unary_samples(domain=(0.2, 3.0)), numpy=[np.log])
log1p = unary("log1p", np.log1p, deriv=lambda x, out: 1 / (1 + x),
              samples=unary_samples(domain=(-0.7, 3.0)), numpy=[np.log1p])
expm1 = unary("expm1", np.expm1, deriv=lambda x, out: out + 1,
              samples=unary_samples(), numpy=[np.expm1])
sqrt = unary("sqrt", np.sqrt, deriv=lambda x, out: 0.5 / out,
             samples=unary_samples(domain=(0.2, 3.0)), numpy=[np.sqrt],
             notes="derivative +inf at 0")
sin = unary("sin", np.sin, deriv=lambda x, out: cos(x), samples=unary_samples(), numpy=[np.sin])
cos = unary("cos", np.cos, deriv=lambda x, out: -sin(x), samples=unary_samples(), numpy=[np.cos])
tan = unary("tan", np.tan, deriv=lambda x, out: 1 + out * out,
            samples=unary_samples(domain=(-1.2, 1.2)), numpy=[np.tan])
tanh = unary("tanh", np.tanh, deriv=lambda x, out: 1 - out * out,
             samples=unary_samples(), numpy=[np.tanh])
sinh = unary("sinh", np.sinh, deriv=lambda x, out: cosh(x), samples=unary_samples(), numpy=[np.sinh])
cosh = unary("cosh", np.cosh, deriv=lambda x, out: sinh(x), samples=unary_samples(), numpy=[np.cosh])
arctan = unary("arctan", np.arctan, deriv=lambda x, out: 1 / (1 + x * x),
               samples=unary_samples(), numpy=[np.arctan])


# ---- maximum / minimum: ties split the derivative equally -----------------------------

def _tie_weight(x, y, out, wins):
    """1 where ``x`` wins, 0.5 at ties, 0 where it loses, in ``out``'s dtype."""
    dt = dtype_of(out)
    return astype(wins(x, y), dt) + astype(equal(x, y), dt) * 0.5


maximum = binary(
    "maximum", np.maximum,
    partials=(lambda x, y, out: _tie_weight(x, y, out, greater),
              lambda x, y, out: _tie_weight(y, x, out, greater)),
    samples=binary_samples(), numpy=[np.maximum], notes="ties split the derivative equally")
minimum = binary(
    "minimum", np.minimum,
    partials=(lambda x, y, out: _tie_weight(x, y, out, less),
              lambda x, y, out: _tie_weight(y, x, out, less)),
    samples=binary_samples(), numpy=[np.minimum], notes="ties split the derivative equally")


# ---- where ------------------------------------------------------------------------

def _where_samples(rng):
    out = []
    for dt in FLOATS:
        c = rng.uniform(size=(2, 3)) > 0.5
        out.append(Sample(c, array(rng, (2, 3), dt), array(rng, (2, 3), dt), argnums=(1, 2)))
        out.append(Sample(c[0], array(rng, (2, 3), dt), array(rng, (3,), dt), argnums=(1, 2)))
    out.append(Sample(rng.uniform(size=(3,)) > 0.5, array(rng, (3,)), 0.0, argnums=(1,)))
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
implements(np.where)(lambda condition, x=None, y=None: _where_dispatch(condition, x, y))


def _where_dispatch(condition, x, y):
    if x is None and y is None:
        from .indexing import nonzero

        return nonzero(condition)
    return where(condition, x, y)


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
sign = nondiff("sign", np.sign, samples=unary_samples(), numpy=[np.sign],
               notes="piecewise constant: derivative 0 everywhere (0 at the jump)")
logical_not = nondiff("logical_not", np.logical_not, 
                      samples=lambda rng: [Sample(rng.uniform(size=(3,)) > 0.5)], numpy=[np.logical_not])
logical_and = nondiff("logical_and", np.logical_and, numpy=[np.logical_and, np.bitwise_and],
                      samples=lambda rng: [Sample(rng.uniform(size=(3,)) > .5, rng.uniform(size=(3,)) > .5)])
logical_or = nondiff("logical_or", np.logical_or, numpy=[np.logical_or, np.bitwise_or],
                     samples=lambda rng: [Sample(rng.uniform(size=(3,)) > .5, rng.uniform(size=(3,)) > .5)])
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


zeros_like = nondiff("zeros_like", lambda x: np.zeros(np.shape(x), dtype_of(x)),
                     batch=_unbatched_like(np.zeros), samples=unary_samples(), numpy=[])
ones_like = nondiff("ones_like", lambda x: np.ones(np.shape(x), dtype_of(x)),
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
    return np.asarray(x).astype(dtype, copy=False) if not isinstance(x, np.generic) else x.astype(dtype)


def _astype_jvp(primals, tangents, out, *, dtype):
    (t,) = tangents
    return astype(t, dtype) if np.dtype(dtype).kind in "fc" else zero


def _astype_vjp(g, primals, out, needs, *, dtype):
    (x,) = primals
    from .families import cast_like

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

conjugate = unary("conjugate", np.conjugate, jvp=lambda t, x, out: conjugate(t),
                  vjp=lambda g, x, out: conjugate(g),
                  samples=lambda rng: [Sample(array(rng, (3,)) + 1j * array(rng, (3,)))],
                  numpy=[np.conjugate])
real = unary("real", np.real, jvp=lambda t, x, out: real(t),
             vjp=lambda g, x, out: g,
             samples=lambda rng: [Sample(array(rng, (3,)) + 1j * array(rng, (3,))),
                                  Sample(array(rng, (2, 3)))],
             numpy=[np.real])
imag = unary("imag", np.imag, jvp=lambda t, x, out: imag(t),
             vjp=lambda g, x, out: g * 1j,
             samples=lambda rng: [Sample(array(rng, (3,)) + 1j * array(rng, (3,)))],
             numpy=[np.imag])
