"""``scipy.special`` functions: elementwise primitives with stable derivatives.

SciPy's special functions are NumPy ufuncs, so ``scipy.special.expit(x)`` on
a traced value reaches npfunc through ``__array_ufunc__``.  Importing SciPy
costs more than importing npfunc itself, so the ufuncs are registered for
dispatch when ``scipy.special`` is first imported (by anyone), and each
primitive's implementation resolves its ufunc on first use.

Derivatives are written to stay finite and accurate where the naive formula
over- or underflows: ``expit'`` from its output, ``log_ndtr'`` as
``sqrt(2/pi) / erfcx(-x/sqrt(2))`` (no exp of a huge square for very
negative x), ``erfcx'`` from its output, ``i0e``/``i1e`` through each other.

Conventions (JAX's): ``xlogy(0, y)`` and ``xlog1py(0, y)`` have derivative 0
with respect to ``y`` -- also at y = 0 (resp. -1), where JAX gives NaN -- and
``log(y)`` with respect to ``x``; ``entr`` has derivative ``-(1 + log x)``
(+inf at 0, 0 for x < 0, where it is constant); ``rel_entr`` and ``kl_div``
have derivative 0 outside x > 0, y > 0, except ``kl_div``'s ∂/∂y = 1 on
x = 0.  ``polygamma`` is not differentiable in its integer order ``n``.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from ...core import dispatch as _dispatch
from ...core.dispatch import implements
from ...core.imports import when_imported
from ...core.errors import UnsupportedOperationError
from ...core.primitive import Sample
from ...core.values import dtype_of
from ...core.zeros import zero
from ..families import binary, nary, unary
from ..sampling import FLOATS, array, binary_samples, unary_samples

_SQRT_PI_2 = math.sqrt(math.pi) / 2          # erfinv' = sqrt(pi)/2 exp(y^2)
_TWO_SQRT_PI = 2 / math.sqrt(math.pi)        # erf' = 2/sqrt(pi) exp(-x^2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)   # normal density at 0
_SQRT_2PI = math.sqrt(2 * math.pi)
_SQRT_2_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2 = 1 / math.sqrt(2)

# ---- lazy SciPy ----------------------------------------------------------------------

_SCIPY: dict = {}            # "module": scipy.special once imported
_UFUNC_DEFS: dict = {}       # scipy.special attribute name -> npfunc function

#: SciPy's Python-level special functions that call ``np.asarray`` on their
#: input (so they cannot see traced values), keyed by code object, mapped to
#: the npfunc function to call instead.  Filled when scipy.special is imported;
#: an error raised inside one of them can name the replacement.
TWINS: dict = {}
_TWIN_NAMES = ("logsumexp", "softmax", "log_softmax", "polygamma")


def _scipy_special():
    sc = _SCIPY.get("module")
    if sc is None:
        import scipy.special as sc  # registers through the import hook, or below

        register_scipy_special(sc)
    return sc


def _lazy_ufunc(name: str):
    """An implementation that looks the SciPy ufunc up on first use."""

    def impl(*args):
        return getattr(_scipy_special(), name)(*args)

    impl.__name__ = name
    return impl


def register_scipy_special(sc=None) -> None:
    """Register every supported ``scipy.special`` ufunc for traced values
    (idempotent; runs by itself when ``scipy.special`` is imported)."""
    if "module" in _SCIPY:
        return
    sc = sc if sc is not None else sys.modules["scipy.special"]
    _SCIPY["module"] = sc
    for name, fn in _UFUNC_DEFS.items():
        ufunc = getattr(sc, name, None)
        if ufunc is None:
            continue
        fn.primitive.impl = ufunc  # type: ignore[attr-defined]
        implements(ufunc)(fn)
        if name == "digamma" and getattr(sc, "psi", None) is not None:
            implements(sc.psi)(fn)
    for name in _TWIN_NAMES:
        target = getattr(sc, name, None)
        target = getattr(target, "__wrapped__", target)
        code = getattr(target, "__code__", None)
        if code is not None:
            TWINS[code] = f"npfunc.scipy.special.{name}"
    core_twins = getattr(_dispatch, "TWINS", None)  # where core looks replacements up, if it does
    if core_twins is not None:
        core_twins.update(TWINS)


def _scipy_unary(name, *, deriv=None, jvp=None, vjp=None, samples=None, notes=""):
    fn = unary(name, _lazy_ufunc(name), deriv=deriv, jvp=jvp, vjp=vjp, samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values."
    _UFUNC_DEFS[name] = fn
    return fn


def _scipy_binary(name, *, partials, samples=None, notes=""):
    fn = binary(name, _lazy_ufunc(name), partials=partials, samples=samples, notes=notes)
    fn.__doc__ = f"``scipy.special.{name}`` for traced and plain values."
    _UFUNC_DEFS[name] = fn
    return fn


# ---- samples -------------------------------------------------------------------------

def _complex_samples(domain=(-1.5, 1.5)):
    def make(rng):
        out = []
        for dt in (np.complex128, np.complex64):
            out.append(Sample((array(rng, (3,), domain=domain) + 1j * array(rng, (3,), domain=domain)).astype(dt),
                              label="complex"))
        return out

    return make


def _with(*builders):
    def make(rng):
        return [s for b in builders for s in b(rng)]

    return make


def _points(values, dtypes=FLOATS, label="special points"):
    return lambda rng: [Sample(np.array(values, dtype=dt), label=label) for dt in dtypes]


# ---- logistic ------------------------------------------------------------------------

expit = _scipy_unary("expit", deriv=lambda x, out: out * (1 - out),
                     samples=_with(unary_samples(domain=(-4, 4)), _points([-30.0, -12.0, 15.0])))
logit = _scipy_unary("logit", deriv=lambda x, out: 1 / (x * (1 - x)),
                     samples=unary_samples(domain=(0.05, 0.95)))
log_expit = _scipy_unary("log_expit", deriv=lambda x, out: expit(-x),
                         samples=_with(unary_samples(domain=(-4, 4)), _points([-40.0, -5.0, 30.0])),
                         notes="derivative expit(-x): no cancellation for large |x|")

# ---- error function and normal distribution --------------------------------------------

erf = _scipy_unary("erf", deriv=lambda x, out: _TWO_SQRT_PI * np.exp(-(x * x)),
                   samples=_with(unary_samples(), _complex_samples()))
erfc = _scipy_unary("erfc", deriv=lambda x, out: -_TWO_SQRT_PI * np.exp(-(x * x)),
                    samples=_with(unary_samples(), _complex_samples()))
erfinv = _scipy_unary("erfinv", deriv=lambda x, out: _SQRT_PI_2 * np.exp(out * out),
                      samples=unary_samples(domain=(-0.9, 0.9)))
erfcinv = _scipy_unary("erfcinv", deriv=lambda x, out: -_SQRT_PI_2 * np.exp(out * out),
                       samples=unary_samples(domain=(0.1, 1.9)))
erfcx = _scipy_unary("erfcx", deriv=lambda x, out: 2 * x * out - _TWO_SQRT_PI,
                     samples=_with(unary_samples(domain=(-1.5, 3)), _points([8.0, 30.0]),
                                   _complex_samples()),
                     notes="derivative 2 x erfcx(x) - 2/sqrt(pi), from the output")
ndtr = _scipy_unary("ndtr", deriv=lambda x, out: _INV_SQRT_2PI * np.exp(-0.5 * (x * x)),
                    samples=_with(unary_samples(domain=(-3, 3)), _complex_samples()))


def _log_ndtr_deriv(x, out):
    """phi(x) / Phi(x) = sqrt(2/pi) / erfcx(-x/sqrt(2)): finite and accurate for x -> -inf
    (where it tends to -x), and 0 where erfcx overflows (phi underflows) for large x."""
    return _SQRT_2_PI / erfcx(-_INV_SQRT_2 * x)


log_ndtr = _scipy_unary("log_ndtr", deriv=_log_ndtr_deriv,
                        samples=_with(unary_samples(domain=(-4, 4)), _points([-35.0, -8.0, 6.0]),
                                      _complex_samples((-1, 1))),
                        notes="derivative sqrt(2/pi) / erfcx(-x/sqrt(2)): stable for very negative x")
ndtri = _scipy_unary("ndtri", deriv=lambda x, out: _SQRT_2PI * np.exp(0.5 * (out * out)),
                     samples=unary_samples(domain=(0.05, 0.95)))

# ---- gamma family --------------------------------------------------------------------

gamma = _scipy_unary("gamma", deriv=lambda x, out: out * digamma(x),
                     samples=_with(unary_samples(domain=(0.3, 4)), _points([-2.5, -0.5, 6.0]),
                                   _complex_samples((0.5, 2))),
                     notes="complex input: first derivative only (SciPy's polygamma is real-only)")
gammaln = _scipy_unary("gammaln", deriv=lambda x, out: digamma(x),
                       samples=_with(unary_samples(domain=(0.3, 5)), _points([-2.5, -0.5, 40.0])),
                       notes="log|Gamma(x)|: derivative digamma(x) also for negative x")
digamma = _scipy_unary("digamma", deriv=lambda x, out: polygamma(1, x),
                       samples=_with(unary_samples(domain=(0.3, 5)), _points([-2.5, -0.5, 40.0])))


def _polygamma_impl(n, x):
    if dtype_of(x).kind == "c":
        raise UnsupportedOperationError(
            "scipy.special.polygamma: complex x is not supported (SciPy computes it for real x "
            "only), so derivatives of digamma, and second derivatives of gamma and gammaln, are "
            "not available at complex points. Differentiate at real points, or once only.")
    out = _scipy_special().polygamma(n, x)
    dt = np.result_type(dtype_of(x), np.float32)
    return out.astype(dt, copy=False) if out.dtype != dt else out


def _polygamma_no_order_derivative(t, n, x, out):
    return zero


def _polygamma_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(1, array(rng, (3,), dt, (0.5, 3))),
                Sample(np.array([0, 1, 3]), array(rng, (2, 3), dt, (0.5, 3)), argnums=(1,))]
    out.append(Sample(np.array([[2], [0]]), array(rng, (3,), domain=(0.5, 3)), argnums=(1,), label="broadcast"))
    return out


_polygamma = nary("polygamma", _polygamma_impl,
                  jvps=(_polygamma_no_order_derivative, lambda t, n, x, out: t * polygamma(n + 1, x)),
                  vjps=(_polygamma_no_order_derivative, lambda g, n, x, out: g * polygamma(n + 1, x)),
                  samples=_polygamma_samples,
                  notes="not differentiable in the integer order n (zero derivative)")


def polygamma(n, x):
    """``scipy.special.polygamma(n, x)`` for traced and plain values (float32 stays float32)."""
    return _polygamma(n, x)


polygamma.primitive = _polygamma.primitive  # type: ignore[attr-defined]


def _digamma_diff(a, b):
    return digamma(a) - digamma(a + b)


beta = _scipy_binary("beta", partials=(lambda a, b, out: out * _digamma_diff(a, b),
                                       lambda a, b, out: out * _digamma_diff(b, a)),
                     samples=binary_samples(domain=(0.5, 3), scalar=1.5))
betaln = _scipy_binary("betaln", partials=(lambda a, b, out: _digamma_diff(a, b),
                                           lambda a, b, out: _digamma_diff(b, a)),
                       samples=binary_samples(domain=(0.5, 3), scalar=1.5))

# ---- x log y and entropies -----------------------------------------------------------


def _xlogy_dy(x, y, out):
    return x / np.where(x == 0, 1, y)


def _xlog1py_dy(x, y, out):
    return x / np.where(x == 0, 1, 1 + y)


def _xlogy_samples(shift):
    def make(rng):
        out = binary_samples(domain=(-2, 2), domain_y=(0.2 - shift, 3))(rng)
        for dt in FLOATS:
            out.append(Sample(np.array([0.0, 1.5, 0.0], dt), np.array([-shift, 2.0, 0.5], dt), argnums=(1,),
                              label="x = 0"))
        c = array(rng, (3,)) + 1j * array(rng, (3,))
        out.append(Sample(c, c + (2.0 - shift), label="complex"))
        return out

    return make


xlogy = _scipy_binary("xlogy", partials=(lambda x, y, out: np.log(y), _xlogy_dy),
                      samples=_xlogy_samples(0.0),
                      notes="at x = 0: d/dy = 0 (also at y = 0), d/dx = log(y)")
xlog1py = _scipy_binary("xlog1py", partials=(lambda x, y, out: np.log1p(y), _xlog1py_dy),
                        samples=_xlogy_samples(1.0),
                        notes="at x = 0: d/dy = 0 (also at y = -1), d/dx = log1p(y)")


def _entr_deriv(x, out):
    negative = x < 0
    return np.where(negative, 0, -(1 + np.log(np.where(negative, 1, x))))


entr = _scipy_unary("entr", deriv=_entr_deriv, samples=unary_samples(domain=(0.1, 2)),
                    notes="derivative -(1 + log x): +inf at 0, 0 for x < 0")


def _positive_pair(x, y):
    inside = (x > 0) & (y > 0)
    return inside, np.where(inside, x, 1), np.where(inside, y, 1)


def _rel_entr_dx(x, y, out):
    inside, sx, sy = _positive_pair(x, y)
    return np.where(inside, np.log(sx / sy) + 1, 0)


def _rel_entr_dy(x, y, out):
    inside, sx, sy = _positive_pair(x, y)
    return np.where(inside, -sx / sy, 0)


def _kl_div_dx(x, y, out):
    inside, sx, sy = _positive_pair(x, y)
    return np.where(inside, np.log(sx / sy), 0)


def _kl_div_dy(x, y, out):
    inside, sx, sy = _positive_pair(x, y)
    on_zero = (x == 0) & (y >= 0)
    return np.where(inside, 1 - sx / sy, np.where(on_zero, 1, 0))


def _entropy_samples(rng):
    out = binary_samples(domain=(0.2, 2.0), scalar=0.7)(rng)
    for dt in FLOATS:
        out.append(Sample(np.array([0.0, 0.5, 0.0], dt), np.array([0.5, 1.5, 2.0], dt), argnums=(1,),
                          label="x = 0"))
    return out


rel_entr = _scipy_binary("rel_entr", partials=(_rel_entr_dx, _rel_entr_dy), samples=_entropy_samples,
                         notes="derivative 0 outside x > 0, y > 0")
kl_div = _scipy_binary("kl_div", partials=(_kl_div_dx, _kl_div_dy), samples=_entropy_samples,
                       notes="derivative 0 outside x > 0, y > 0, except d/dy = 1 on x = 0")

# ---- Huber losses --------------------------------------------------------------------
# huber(delta, r) is r**2/2 for |r| <= delta and delta (|r| - delta/2) beyond: C1 at |r| = delta,
# where both partials agree.  pseudo_huber(delta, r) = delta**2 (sqrt(1 + (r/delta)**2) - 1).
# For delta < 0 both are +inf (a constant: derivative 0), and pseudo_huber is 0 at delta = 0.


def _huber_ddelta(delta, r, out):
    return np.where((delta >= 0) & (np.abs(r) > delta), np.abs(r) - delta, 0)


def _huber_dr(delta, r, out):
    return np.where(delta < 0, 0, np.where(np.abs(r) <= delta, r, delta * np.sign(r)))


def _pseudo_huber_parts(delta, r):
    inside = delta > 0
    d = np.where(inside, delta, 1)
    s = np.hypot(1, r / d)
    return inside, d, s


def _pseudo_huber_ddelta(delta, r, out):
    inside, d, s = _pseudo_huber_parts(delta, r)
    return np.where(inside, 2 * d * (s - 1) - r * r / (d * s), 0)


def _pseudo_huber_dr(delta, r, out):
    inside, d, s = _pseudo_huber_parts(delta, r)
    return np.where(inside, r / s, 0)


def _huber_samples(rng):
    out = binary_samples(domain=(0.3, 2.0), domain_y=(-3.0, 3.0), scalar=None)(rng)
    for dt in FLOATS:  # both sides of |r| = delta, with a Python delta as losses pass it
        out.append(Sample(1.0, np.array([-2.5, -0.4, 0.3, 1.7], dt), label="python delta"))
    return out


huber = _scipy_binary("huber", partials=(_huber_ddelta, _huber_dr), samples=_huber_samples,
                      notes="derivative 0 for delta < 0, where the value is +inf")
pseudo_huber = _scipy_binary("pseudo_huber", partials=(_pseudo_huber_ddelta, _pseudo_huber_dr),
                             samples=_huber_samples, notes="derivative 0 for delta <= 0")

# ---- modified Bessel functions -------------------------------------------------------
# The derivatives of i1 and i1e need i1(x) / x, whose limit at 0 is 1/2.  A
# quotient with the limit patched in at x == 0 has the wrong derivatives from
# the second order on (the patch is a constant) and loses every digit to
# cancellation near 0 ((x i1'(x) - i1(x)) / x**2 ...).  So for |x| < 1 it is the
# Taylor series  i1(x) / x = sum_k (x^2 / 4)^k / (2 k! (k + 1)!),  exact to
# rounding in value and in every derivative with these 12 terms (the next
# one is below 1e-30 at |x| = 1); the quotient is only used for |x| >= 1.

_I1_OVER_X_SERIES = tuple(0.5 / (math.factorial(k) * math.factorial(k + 1)) for k in range(12))
_I1_OVER_X_RADIUS = 1.0


def _i1_over_x_series(x):
    """(near 0, the Taylor series of i1(x)/x there, the points away from 0)."""
    small = np.abs(x) < _I1_OVER_X_RADIUS
    near = np.where(small, x, 0)
    u = near * near * 0.25
    series = _I1_OVER_X_SERIES[-1]
    for c in reversed(_I1_OVER_X_SERIES[:-1]):
        series = series * u + c
    return small, series, np.where(small, 1, x)


def i1_over_x(x):
    """``i1(x) / x`` (1/2 at 0), accurate with all its derivatives near 0."""
    small, series, far = _i1_over_x_series(x)
    return np.where(small, series, i1(far) / far)


def _i1e_over_x(x):
    """``exp(-|x|) i1(x) / x``, with i1e away from 0 (i1 itself overflows for large x)."""
    small, series, far = _i1_over_x_series(x)
    return np.where(small, np.exp(-np.abs(x)) * series, i1e(far) / far)


def _bessel_samples(at_zero: bool, extra=()):
    """Random points, and points near 0 checked to the third derivative
    (i0e, i1e have a kink at 0 from |x|: their points stay further from 0
    than the difference step)."""
    points = ([0.0, 1e-7] if at_zero else [2e-5]) + [-3e-4, 0.02, -0.3, 0.99, 1.01, -2.5] + list(extra)

    def make(rng):
        return unary_samples(domain=(-3, 3))(rng) + [
            Sample(np.array(points), label="near 0, third order", fd_order=3),
            Sample(np.array(points, np.float32), label="near 0, float32")]

    return make


i0 = _scipy_unary("i0", deriv=lambda x, out: i1(x), samples=_bessel_samples(True))
i1 = _scipy_unary("i1", deriv=lambda x, out: i0(x) - i1_over_x(x), samples=_bessel_samples(True),
                  notes="derivative i0(x) - i1(x)/x, the quotient from its Taylor series for |x| < 1 "
                        "(exact at and near 0 to every order)")
i0e = _scipy_unary("i0e", deriv=lambda x, out: i1e(x) - np.sign(x) * out,
                   samples=_bessel_samples(False, [-40.0, 25.0]),
                   notes="derivative i1e(x) - sign(x) i0e(x) (0 at the kink x = 0)")
i1e = _scipy_unary("i1e", deriv=lambda x, out: i0e(x) - np.sign(x) * out - _i1e_over_x(x),
                   samples=_bessel_samples(False, [-40.0, 25.0]),
                   notes="derivative i0e(x) - sign(x) i1e(x) - exp(-|x|) i1(x)/x; 1/2 at x = 0, the "
                         "quotient from its Taylor series for |x| < 1")

# ---- softplus (SciPy >= 1.15 writes it as np.logaddexp(0, x)) ----------------------------

softplus = unary("softplus", lambda x: np.logaddexp(0, x), deriv=lambda x, out: expit(x),
                 samples=_with(unary_samples(domain=(-4, 4)), _points([-40.0, 40.0])),
                 notes="derivative expit(x)")
softplus.__doc__ = "``scipy.special.softplus``: log(1 + exp(x)), for traced and plain values."

from .logsumexp import log_softmax, logsumexp, softmax  # noqa: E402,F401

# ---- dispatch: now, or as soon as scipy.special is imported ---------------------------

when_imported("scipy.special", register_scipy_special)
