"""Registry samples for ``numpy.polynomial`` (see ``series.py``): every hooked
module function with array arguments, and the series classes used as a
scientist uses them (evaluate, fit, differentiate, integrate, roots,
arithmetic).  The generated tests call NumPy's functions exactly as users
do, so they check NumPy's own code on traced values against NumPy on plain
ones.  The power series and Chebyshev families get every variant; the
other four run the same code paths with fewer samples each."""
from __future__ import annotations

import importlib

import numpy as np

from ...core.primitive import Composite, Sample
from ..sampling import FLOATS, array
from .series import FAMILIES

#: The functions of each family that take arrays (NumPy's ``__all__`` less the
#: constants, the class, and ``*gauss``/``chebpts*``, which take sizes).
SUFFIXES = ("line", "add", "sub", "mulx", "mul", "div", "pow", "val", "der", "int", "fromroots",
            "vander", "fit", "trim", "roots", "val2d", "val3d", "grid2d", "grid3d", "vander2d",
            "vander3d", "companion")


def family_functions():
    """(module name, function name, sample kind) of every sampled module function."""
    for module, prefix, _ in FAMILIES:
        names = [(prefix + s, s) for s in SUFFIXES]
        if prefix == "poly":
            names.append(("polyvalfromroots", "valfromroots"))
        else:
            names += [(f"{prefix}weight", "weight"), (f"{prefix}2poly", "2poly"), (f"poly2{prefix}", "2poly")]
        for name, kind in names:
            yield f"numpy.polynomial.{module}", name, kind


def _lazy(module: str, name: str):
    """``module.name`` looked up at call time: npfunc does not import numpy.polynomial."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _P():
    return importlib.import_module("numpy.polynomial")


def _c(rng, n, dt=np.float64, shape=()):
    """Coefficients of magnitude 0.5 ... 2 (a well-defined degree, roots away from infinity)."""
    mag = array(rng, (n,) + shape, dt, (0.5, 2.0))
    return (mag * np.sign(rng.uniform(-1, 1, mag.shape))).astype(dt)


def _x(rng, n=5, dt=np.float64):
    return array(rng, (n,), dt, (-1.0, 1.0))


def _samples_for(fn: str, full: bool):
    """``rng -> [Sample]`` for the module function whose name ends in ``fn``."""
    dts = FLOATS if full else (np.float64,)

    def make(rng):
        S = Sample
        if fn == "line":
            return [S(np.float64(1.5), np.float64(-2.0))]
        if fn in ("add", "sub"):
            out = [S(_c(rng, 4, dt), _c(rng, 2, dt)) for dt in dts]
            return out + ([S(_c(rng, 2), _c(rng, 3), label="shorter first")] if full else [])
        if fn == "mul":
            return [S(_c(rng, 3, dt), _c(rng, 3, dt)) for dt in dts]
        if fn in ("mulx", "fromroots", "2poly", "companion", "roots"):
            return [S(_c(rng, 4, dt)) for dt in dts] + ([S(_c(rng, 2), label="degree 1")] if full else [])
        if fn == "div":
            return [S(_c(rng, 5), _c(rng, 3))] + ([S(_c(rng, 4), _c(rng, 1), label="by a constant")]
                                                 if full else [])
        if fn == "pow":
            return [S(_c(rng, 3, dt), 3) for dt in dts] + ([S(_c(rng, 2), 0, label="power 0")] if full else [])
        if fn == "val":
            out = [S(_x(rng, 5, dt), _c(rng, 4, dt)) for dt in dts]
            if full:
                out += [S(_x(rng, 3), _c(rng, 4, shape=(2,)), label="two series (tensor)"),
                        S(_x(rng, 2), _c(rng, 4, shape=(2,)), tensor=False, label="tensor=False"),
                        S(np.float64(0.3), _c(rng, 3), label="scalar x")]
            return out
        if fn in ("val2d", "grid2d"):
            return [S(_x(rng, 3), _x(rng, 3), _c(rng, 3, shape=(2,)))]
        if fn in ("val3d", "grid3d"):
            return [S(_x(rng, 2), _x(rng, 2), _x(rng, 2), _c(rng, 2, shape=(2, 2)))]
        if fn == "der":
            out = [S(_c(rng, 5, dt)) for dt in dts]
            if full:
                out += [S(_c(rng, 5), m=2, scl=0.5, label="m=2, scl"),
                        S(_c(rng, 4, shape=(2,)), axis=0, label="columns"),
                        S(_c(rng, 3, shape=(2,)).T.copy(), m=3, axis=1, label="axis=1, m beyond degree")]
            return out
        if fn == "int":
            out = [S(_c(rng, 4, dt)) for dt in dts]
            if full:
                out += [S(_c(rng, 3), m=2, k=[1.0, -2.0], lbnd=0.5, scl=2.0, label="m, k, lbnd, scl"),
                        S(_c(rng, 3, shape=(2,)), m=1, axis=0, label="columns")]
            else:
                out.append(S(_c(rng, 3), m=2, k=[1.0], lbnd=-0.5, label="m, k, lbnd"))
            return out
        if fn == "vander":
            return [S(_x(rng, 5, dt), 3) for dt in dts] + ([S(_x(rng, 4), 0, label="degree 0")] if full else [])
        if fn == "vander2d":
            return [S(_x(rng, 3), _x(rng, 3), [2, 1])]
        if fn == "vander3d":
            return [S(_x(rng, 2), _x(rng, 2), _x(rng, 2), [1, 1, 2])]
        if fn == "fit":
            out = []
            for dt in dts:
                x = np.linspace(-1, 1, 9).astype(dt) + array(rng, (9,), dt, (-0.05, 0.05))
                out.append(S(x, np.sin(2 * x) + array(rng, (9,), dt, (-0.1, 0.1)), 3))
            if full:
                x = np.linspace(-1, 1, 8) + array(rng, (8,), np.float64, (-0.05, 0.05))
                out += [S(x, array(rng, (8, 2)), 2, label="2-D y"),
                        S(x, np.cos(x), 3, None, False, array(rng, (8,), np.float64, (0.5, 1.5)),
                          label="weights, differentiated"),
                        S(x, np.cos(x), [0, 2, 3], label="selected degrees")]
            return out
        if fn == "trim":
            c = np.concatenate([_c(rng, 3), [1e-3]])
            return [S(c, tol=0.1, label="last coefficient below tol")]
        if fn == "weight":
            return [S(array(rng, (4,), np.float64, (0.1, 0.9)))]
        if fn == "valfromroots":
            return [S(_x(rng, 4), _c(rng, 3)),
                    S(_x(rng, 2), _c(rng, 3, shape=(2,)), tensor=False, label="tensor=False")]
        raise KeyError(fn)

    return make


def _function_samples():
    for module, name, kind in family_functions():
        full = name.startswith(("poly", "cheb")) and not name.startswith("poly2")
        Composite(f"np.{module[len('numpy.'):]}.{name}", _lazy(module, name), samples=_samples_for(kind, full))


_function_samples()


# ---- polyutils ---------------------------------------------------------------------------

def _one(maker):
    return lambda rng: [maker(rng)]


_PU = "numpy.polynomial.polyutils"
Composite("np.polynomial.polyutils.as_series", lambda a, b: tuple(_lazy(_PU, "as_series")([a, b])),
          samples=_one(lambda rng: Sample(_c(rng, 3), _c(rng, 2, np.float32))))
Composite("np.polynomial.polyutils.trimseq", _lazy(_PU, "trimseq"),
          samples=lambda rng: [Sample(np.concatenate([_c(rng, 3), [0.0, 0.0]]), kink=True,
                                      label="trailing zeros")])
Composite("np.polynomial.polyutils.trimcoef", _lazy(_PU, "trimcoef"),
          samples=_one(lambda rng: Sample(np.concatenate([_c(rng, 3), [1e-3]]), 0.01)))
Composite("np.polynomial.polyutils.getdomain", _lazy(_PU, "getdomain"), samples=_one(lambda rng: Sample(_x(rng, 6))))
Composite("np.polynomial.polyutils.mapdomain", _lazy(_PU, "mapdomain"),
          samples=_one(lambda rng: Sample(_x(rng, 4), np.array([-1.0, 2.0]), np.array([0.0, 1.5]))))
Composite("np.polynomial.polyutils.mapparms", _lazy(_PU, "mapparms"),
          samples=_one(lambda rng: Sample(np.array([-1.0, 2.0]), np.array([0.0, 1.5]))))


def _interpolate(theta):
    """Chebyshev interpolant of a function with a traced parameter (passed in ``args``)."""
    return _P().chebyshev.chebinterpolate(lambda x, t: np.exp(t * x) * np.sin(3 * x), 6, args=(theta,))


Composite("np.polynomial.chebyshev.chebinterpolate", _interpolate,
          samples=_one(lambda rng: Sample(np.float64(0.7))))


# ---- the series classes ------------------------------------------------------------------

def _class_samples(cls_name: str, full: bool):
    name = f"np.polynomial.{cls_name}"

    def cls(*args, **kwargs):
        return getattr(_P(), cls_name)(*args, **kwargs)

    cls.fit = lambda *a, **k: getattr(_P(), cls_name).fit(*a, **k)
    dom = [-1.0, 2.0]
    Composite(f"{name}(c)(x)", lambda c, x: cls(c, domain=dom)(x),
              samples=lambda rng: [Sample(_c(rng, 4, dt), array(rng, (5,), dt, (-1, 2))) for dt in
                                   (FLOATS if full else (np.float64,))])

    deg = 3 if full else 2  # Hermite/Laguerre cubics make the second-order differences too noisy

    def fit(x, y, x0):
        return cls.fit(x, y, deg)(x0)

    def fit_samples(rng):
        x = np.linspace(0.0, 3.0, 12) + array(rng, (12,), np.float64, (-0.1, 0.1))
        return [Sample(x, np.exp(-x) + array(rng, (12,), np.float64, (-0.05, 0.05)), np.array([0.5, 2.5]),
                       label="domain from x")]

    Composite(f"{name}.fit(x, y, {deg})(x0)", fit, samples=fit_samples)
    Composite(f"{name}.deriv", lambda c: cls(c, domain=[0.0, 2.0]).deriv(2).coef,
              samples=_one(lambda rng: Sample(_c(rng, 5))))
    Composite(f"{name}.integ", lambda c: cls(c, domain=[0.0, 2.0]).integ(2, k=[1.0], lbnd=0.5).coef,
              samples=_one(lambda rng: Sample(_c(rng, 3))))
    if full:
        Composite(f"{name}.roots", lambda c: cls(c, domain=dom).roots(),
                  samples=_one(lambda rng: Sample(_c(rng, 4))))
        Composite(f"{name}.convert", lambda c: cls(c, domain=[0.0, 2.0]).convert(kind=_P().Polynomial).coef,
                  samples=_one(lambda rng: Sample(_c(rng, 4))))
        Composite(f"{name} arithmetic", lambda a, b: (cls(a) * cls(b) - 2.0 * cls(a) + cls(b) ** 2).coef,
                  samples=_one(lambda rng: Sample(_c(rng, 3), _c(rng, 2))))


for _, _prefix, _cls in FAMILIES:
    _class_samples(_cls, _prefix in ("poly", "cheb"))
