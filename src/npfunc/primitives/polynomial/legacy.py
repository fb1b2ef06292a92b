"""NumPy's polynomial functions: ``np.polyval``, ``np.polyfit``, ``np.poly``,
``np.roots``, ``np.polyadd``/``polysub``/``polymul``/``polydiv``,
``np.polyder``, ``np.polyint``.

They are NumPy's own code (``numpy/lib/_polynomial_impl.py``) run on traced
values by ``primitives/numpy_code.py``, so values, dtypes, keywords and
errors are NumPy's; derivatives come from the primitives the code calls:
``np.roots`` and ``np.poly`` of a matrix through ``np.linalg.eigvals`` of
the companion matrix (complex results as NumPy gives them), ``np.polyfit``
through the least-squares solve (``primitives/linalg/lstsq.py``, which
gives NumPy's coefficients bit for bit) with respect to ``x``, ``y`` and
``w``, including ``full=True`` (residuals, singular values) and ``cov``.

Two helpers replace names NumPy's module imports: ``vander`` (NumPy's fills
a reversed view of its result) and ``lstsq`` (NumPy's values, see above).
Data-dependent steps (``np.roots`` strips leading/trailing zero
coefficients, ``np.polydiv`` drops a vanishing leading remainder term,
``np.poly`` returns real coefficients for conjugate roots) follow the values
under ``grad``; under ``vmap`` they must agree across the batch.

>>> import numpy as np, npfunc
>>> x = np.linspace(0.0, 1.0, 6)
>>> slope = lambda y: np.polyfit(x, y, 1)[0]
>>> np.round(npfunc.grad(slope)(x ** 2), 6)   # d slope / d y_i
array([-0.714286, -0.428571, -0.142857,  0.142857,  0.428571,  0.714286])
"""
from __future__ import annotations

import numpy as np
import numpy.lib._polynomial_impl as _impl

from ...core.primitive import Composite, Sample
from ...core.values import dtype_of, ndim_of, shape_of
from ..families import composite
from ..linalg.eig import complex_spectrum_matrix, real_spectrum_matrix
from ..linalg.lstsq import least_squares
from ..numpy_code import TracedNumpy, copy_function, has_tracer, hook, numpy_code, run
from ..sampling import FLOATS, array


def vander(x, N=None, increasing=False):
    """``np.vander`` (columns ``x**(N-1) ... x**0``), as NumPy computes it:
    running products of ``x`` (``multiply.accumulate``), in
    ``promote_types(x.dtype, int)``."""
    from ..reductions.scans import cumprod
    from ..shape.basic import broadcast_to, concatenate

    x = _NX.asarray(x)
    if ndim_of(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = shape_of(x)[0]
    N = n if N is None else int(N)
    dt = np.promote_types(dtype_of(x), int)
    cols = [np.ones((n, 1), dt)]
    if N > 1:
        cols.append(cumprod(broadcast_to(x.astype(dt)[:, None], (n, N - 1)), axis=1))
    v = concatenate(cols, axis=1)[:, :N]
    return v if increasing else v[:, ::-1].copy()


def _leading_trimmed(a):
    """The coefficients ``np.poly1d(a)`` keeps: leading zeros stripped (``[0]`` if none is left)."""
    if isinstance(a, np.poly1d):
        return a.coeffs
    c = np.atleast_1d(_NX.asarray(a))
    if ndim_of(c) > 1:
        raise ValueError("Polynomial must be 1d only.")
    first = _NX.nonzero(c)[0]
    return c[int(first[0]):] if len(first) else _NX.array([0], dtype=dtype_of(c))


def polymul(a1, a2):
    """``np.polymul`` as NumPy computes it (``poly1d`` of each factor, then a
    convolution), without building ``poly1d`` objects from traced values."""
    truepoly = isinstance(a1, np.poly1d) or isinstance(a2, np.poly1d)
    val = _NX.convolve(_leading_trimmed(a1), _leading_trimmed(a2))
    return np.poly1d(val) if truepoly else val


def roots(p):
    """``np.roots`` as NumPy computes it (eigenvalues of the companion matrix of
    ``p`` stripped of leading and trailing zeros, one root 0 per trailing
    zero), reading only the first and last nonzero positions: under vmap the
    batch must agree on those, not on zeros inside ``p``."""
    p = np.atleast_1d(p)
    if ndim_of(p) != 1:
        raise ValueError("Input must be a rank-1 array.")
    if not _NX.any(p != 0):
        return _NX.array([])
    positions = _NX.nonzero(_NX.ravel(p))[0]
    first, last = int(positions[0]), int(positions[-1])
    trailing = shape_of(p)[0] - last - 1
    p = p[first:last + 1]
    if dtype_of(p).kind not in "fc":
        p = p.astype(float)
    n = shape_of(p)[0]
    if n > 1:
        companion = np.diag(_NX.ones((n - 2,), dtype_of(p)), -1)
        companion[0, :] = -p[1:] / p[0]
        found = np.linalg.eigvals(companion)
    else:
        found = _NX.array([])
    return _NX.hstack((found, _NX.zeros(trailing, dtype_of(found))))


def trim_zeros(filt, trim="fb", axis=None):
    """``np.trim_zeros`` of a 1-D array, as ``np.poly1d`` uses it (where the zeros
    are carries no derivative; under vmap the batch must agree on it)."""
    nonzero = _NX.nonzero(filt)[0]
    if len(nonzero) == 0:
        return filt[:0]
    start = int(nonzero[0]) if "f" in trim.lower() else 0
    stop = int(nonzero[-1]) + 1 if "b" in trim.lower() else len(filt)
    return filt[start:stop]


_NX = TracedNumpy()
_OVERRIDES = {"NX": _NX, "array": _NX.array, "ones": _NX.ones, "hstack": _NX.hstack,
              "vander": vander, "lstsq": least_squares, "polymul": polymul, "trim_zeros": trim_zeros,
              "roots": roots}
_CODE = numpy_code(_impl, _OVERRIDES)
_CODE.update(polymul=polymul, roots=roots)
# np.poly1d(c) with traced coefficients: its constructor runs as NumPy code (the methods
# then call np.polyval, np.polyder ... which dispatch as usual)
hook(np.poly1d, "__init__", copy_function(getattr(np.poly1d.__init__, "npfunc_original",
                                                  np.poly1d.__init__), _CODE["polyval"].__globals__),
     "numpy.poly1d.__init__")


def _runner(name: str):
    code = _CODE[name]

    def fn(*args, **kwargs):
        return run(code, args, kwargs, f"np.{name}")

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``np.{name}``: NumPy's own code run on traced values (see {__name__})."
    return fn


def _register(name: str, samples) -> None:
    composite(getattr(np, name), samples=samples)(_runner(name))


# ---- samples ------------------------------------------------------------------------------


def _coef(rng, n, dt=np.float64):
    return array(rng, (n,), dt, (0.5, 2.0)) * np.sign(rng.uniform(-1, 1, n)).astype(dt)


def _polyval_samples(rng):
    out = [Sample(_coef(rng, 4, dt), array(rng, (5,), dt)) for dt in FLOATS]
    out += [Sample(_coef(rng, 3), array(rng, (2, 3)), label="2-D x"),
            Sample(_coef(rng, 5), np.float64(0.7), label="scalar x"),
            Sample(np.array([2, -1, 3]), array(rng, (4,)), label="integer coefficients"),
            Sample(_coef(rng, 3), array(rng, (4,), np.float32), label="mixed precision"),
            Sample(_coef(rng, 3) + 1j * _coef(rng, 3), array(rng, (4,)), label="complex coefficients")]
    return out


def _polyfit_samples(rng):
    out = []
    for dt in FLOATS:
        x = np.linspace(-1, 1, 9).astype(dt) + array(rng, (9,), dt, (-0.05, 0.05))
        out.append(Sample(x, array(rng, (9,), dt), 3))
    x = np.linspace(0, 2, 8) + array(rng, (8,), np.float64, (-0.05, 0.05))
    y = np.sin(x) + array(rng, (8,), np.float64, (-0.1, 0.1))
    w = array(rng, (8,), np.float64, (0.5, 1.5))
    out += [Sample(x, array(rng, (8, 2)), 2, label="2-D y"),
            Sample(x, y, 2, w=w, label="weights as a keyword"),
            Sample(x, y, 2, None, False, w, label="weights positional, differentiated"),
            Sample(x, y, 3, cov=True, label="cov"),
            Sample(x, array(rng, (8, 2)), 1, cov=True, label="cov, 2-D y"),
            Sample(x, y, 2, cov="unscaled", label="cov unscaled"),
            Sample(x, y, 0, label="degree 0"),
            Sample(x, y, 2, rcond=1e-3, label="rcond"),
            Sample(np.arange(6), np.arange(6.0) ** 2, 2, label="integer x"),
            Sample(x.tolist(), y, 1, argnums=(1,), label="x a list: a plain design matrix, whose rank "
                   "(polyfit's check) stays a plain integer under jit")]
    return out


def _polyfit_full_samples(rng):
    x = np.linspace(0, 2, 8) + array(rng, (8,), np.float64, (-0.05, 0.05))
    return [Sample(x, np.cos(x) + array(rng, (8,), np.float64, (-0.1, 0.1)), 2),
            Sample(x, array(rng, (8, 2)), 1, label="2-D y")]


def polyfit_full(x, y, deg):
    """``np.polyfit(..., full=True)`` without the plain-number outputs
    (rank and rcond), for the generated derivative tests."""
    c, resids, rank, s, rcond = np.polyfit(x, y, deg, full=True)
    return c, resids, s


def _roots_samples(rng):
    out = [Sample(_coef(rng, 4, dt)) for dt in FLOATS]
    out += [Sample(np.array([1.0, -6.0, 11.0, -6.0]), label="real roots 1, 2, 3"),
            Sample(np.array([1.0, 0.0, 4.0]), label="conjugate roots +-2i"),
            Sample(np.array([0.0, 0.0, 2.0, -3.0, 1.0]), kink=True, label="leading zeros stripped"),
            Sample(np.array([2.0, -3.0, 1.0, 0.0, 0.0]), kink=True, label="two roots at zero"),
            Sample(_coef(rng, 4) + 1j * _coef(rng, 4), label="complex coefficients"),
            Sample(np.array([3.0]), label="a constant: no roots")]
    return out


def _poly_samples(rng):
    out = [Sample(array(rng, (3,), dt)) for dt in FLOATS]
    out += [Sample(real_spectrum_matrix(rng, (3, 3)), label="matrix, real eigenvalues"),
            Sample(complex_spectrum_matrix(rng, (4, 4)), label="matrix, conjugate eigenvalues: real result"),
            Sample(array(rng, (3,)) + 1j * array(rng, (3,)), label="complex roots"),
            Sample(np.array([1, 2]), label="integer roots")]
    return out


def _polyint_samples(rng):
    out = [Sample(_coef(rng, 4, dt)) for dt in FLOATS]
    out += [Sample(_coef(rng, 3), m=3, label="m=3"),
            Sample(_coef(rng, 3), 2, k=np.array([0.5, -1.0]), label="k (see npfunc.numpy.polyint)"),
            Sample(_coef(rng, 3), 2, k=1.5, label="scalar k"),
            Sample(_coef(rng, 3), m=0, label="m=0")]
    return out


def _polyder_samples(rng):
    out = [Sample(_coef(rng, 5, dt)) for dt in FLOATS]
    out += [Sample(_coef(rng, 5), m=2, label="m=2"), Sample(_coef(rng, 3), m=4, label="m beyond the degree"),
            Sample(_coef(rng, 3), m=0, label="m=0")]
    return out


def _binary_samples(rng):
    out = [Sample(_coef(rng, 3, dt), _coef(rng, 5, dt)) for dt in FLOATS]
    out += [Sample(_coef(rng, 4), _coef(rng, 2), label="longer first"),
            Sample(_coef(rng, 3), _coef(rng, 3), label="same length"),
            Sample(_coef(rng, 3), np.float64(2.0), label="a constant"),
            Sample(_coef(rng, 2) + 1j * _coef(rng, 2), _coef(rng, 3), label="complex")]
    return out


def _polydiv_samples(rng):
    # float64 only: NumPy drops the remainder's leading term when it is within 1e-8 of 0, which
    # float32 rounding leaves on either side of (so batches of float32 divisions take both branches)
    out = [Sample(_coef(rng, 5), _coef(rng, 3))]
    out += [Sample(_coef(rng, 2), _coef(rng, 3), label="lower degree numerator"),
            Sample(_coef(rng, 4), np.array([2.0]), label="divide by a constant")]
    return out


_register("polyval", _polyval_samples)
_register("polyfit", _polyfit_samples)
_register("roots", _roots_samples)
_register("poly", _poly_samples)
_register("polyint", _polyint_samples)
_register("polyder", _polyder_samples)
_register("polyadd", _binary_samples)
_register("polysub", _binary_samples)
_register("polymul", _binary_samples)
_register("polydiv", _polydiv_samples)

def _polyint_k_samples(rng):
    return [Sample(_coef(rng, 3), 2, np.array([0.5, -1.0])),
            Sample(_coef(rng, 4), 1, np.array([2.0]), label="one constant")]


Composite("npfunc.numpy.polyint", lambda p, m, k: (_runner("polyint") if has_tracer(k) else np.polyint)(p, m, k),
          samples=_polyint_k_samples, notes="integration constants k traced, p plain")

Composite("np.polyfit(full=True)", polyfit_full, samples=_polyfit_full_samples,
          notes="residuals and singular values of the scaled Vandermonde matrix")


def _poly1d_samples(rng):
    return [Sample(_coef(rng, 4), array(rng, (3,))),
            Sample(np.array([0.0, 1.5, -2.0]), np.float64(0.4), kink=True, label="leading zero dropped")]


Composite("np.poly1d(c)(x)", lambda c, x: np.poly1d(c)(x), samples=_poly1d_samples)
Composite("np.poly1d arithmetic, deriv, integ",
          lambda a, b: ((np.poly1d(a) * np.poly1d(b)).deriv() + np.poly1d(a).integ(k=1.0) - b[0]).coeffs,
          samples=lambda rng: [Sample(_coef(rng, 3), _coef(rng, 2))])
