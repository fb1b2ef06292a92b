"""The machinery shared by the distributions: SciPy's argument parsing, its
rules for invalid parameters and points outside the support, frozen
distributions -- written with ``np.where`` so that everything is traceable
(no ``np.asarray``, no boolean indexing, no Python branches on values).

Points outside the support and invalid parameters are replaced by a safe
interior value *before* the formula is evaluated ("double where"), so their
derivatives are exactly 0 rather than NaN.
"""
from __future__ import annotations

import numpy as np

from ...core.tracer import Tracer
from ...core.values import dtype_of
from ._quantiles import discrete_ppf

INF = np.inf


def as_float(v):
    """``v`` promoted to at least float64, as SciPy's ``stats`` does; Python
    scalars stay Python scalars (NumPy 2 weak scalars)."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if not isinstance(v, Tracer):
        v = np.asarray(v)
    dt = dtype_of(v)
    target = np.promote_types(dt, np.float64) if dt.kind != "c" else dt
    return v if dt == target else v.astype(target)


def _no_closed_form(name):
    from ...core.context import describe_stack
    from ...core.errors import UnsupportedOperationError

    return UnsupportedOperationError(
        f"{describe_stack()}: npfunc.scipy.stats.{name}.entropy is not provided: it has no closed form "
        "(SciPy sums or integrates numerically).")


def is_traced(*values) -> bool:
    return any(isinstance(v, Tracer) for v in values)


def both(a, b):
    """Logical and that keeps Python ``True`` free."""
    if a is True:
        return b
    if b is True:
        return a
    return a & b


def safe(mask, value, fill):
    """``value`` where ``mask`` holds, ``fill`` elsewhere (skipped when ``mask`` is True)."""
    return value if mask is True else np.where(mask, value, fill)


def choose(mask, value, other):
    return value if mask is True else np.where(mask, value, other)


def is_const(v, c) -> bool:
    return isinstance(v, float) and v == c


def positive_scalar(v) -> bool:
    return isinstance(v, float) and v > 0


def squeeze_scalar(out):
    """SciPy returns NumPy scalars for 0-d results."""
    if isinstance(out, np.ndarray) and out.ndim == 0:
        return out[()]
    if isinstance(out, (float, int)):  # all-scalar arguments computed with Python floats
        return np.float64(out)
    return out


class Frozen:
    """A distribution with its parameters fixed, as ``scipy.stats.norm(loc, scale)``."""

    def __init__(self, dist, args, kwds):
        self.dist, self.args, self.kwds = dist, args, kwds

    def __getattr__(self, name):
        method = getattr(self.dist, name)
        if not callable(method) or name.startswith("_"):
            raise AttributeError(name)
        if name == "entropy":  # no point argument
            def bound(**kw):
                return method(*self.args, **self.kwds, **kw)
        else:
            def bound(x, *more, **kw):
                return method(x, *self.args, *more, **self.kwds, **kw)

        bound.__name__ = name
        return bound

    def __repr__(self):
        return f"<frozen npfunc.scipy.stats.{self.dist.name}>"


class Distribution:
    """Common parsing: ``shapes`` then ``loc`` (and ``scale`` for continuous
    distributions), positionally or by keyword, as in ``scipy.stats``."""

    name = ""
    shapes: tuple = ()
    params: tuple = ("loc", "scale")

    def __call__(self, *args, **kwds):
        """A frozen distribution: ``norm(loc, scale).logpdf(x)``."""
        self._parse(args, kwds)
        return Frozen(self, args, kwds)

    def _parse(self, args, kwds):
        names = self.shapes + self.params
        if len(args) > len(names):
            raise TypeError(f"{self.name}: too many positional arguments (expected at most {len(names)}: "
                            f"{', '.join(names)})")
        values = dict(zip(names, args))
        for key, v in kwds.items():
            if key not in names:
                raise TypeError(f"{self.name}: unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{self.name}: got multiple values for argument {key!r}")
            values[key] = v
        missing = [n for n in self.shapes if n not in values]
        if missing:
            raise TypeError(f"{self.name}: missing required argument(s) {', '.join(map(repr, missing))}")
        shapes = tuple(as_float(values[n]) for n in self.shapes)
        extra = tuple(as_float(values.get(n, 0.0 if n == "loc" else 1.0)) for n in self.params)
        return shapes, extra

    def __repr__(self):
        return f"<npfunc.scipy.stats.{self.name}>"


class Continuous(Distribution):
    """A location-scale family with standardized ``_logpdf``, ``_cdf``, ...

    Subclasses set ``support`` (or override ``_support(*shapes)``), give an
    ``_argcheck`` for their shape parameters and ``inner`` (a point inside
    the support used in place of the points outside).
    """

    support = (-INF, INF)
    inner = 0.0
    #: SciPy's ``_open_support_mask``: the density is 0 at the support's ends
    open_support = False

    # ---- what subclasses provide (standardized variable z) --------------------------------
    def _support(self, *shapes):
        return self.support

    def _inner(self, *shapes):
        """A point inside the support, used in place of the points outside."""
        return self.inner

    def _argcheck(self, *shapes):
        return True

    def _safe_shapes(self, valid, shapes):
        return tuple(safe(valid, s, 1.0) for s in shapes)

    def _logpdf(self, z, *shapes):
        raise NotImplementedError

    def _pdf(self, z, *shapes):
        return np.exp(self._logpdf(z, *shapes))

    def _cdf(self, z, *shapes):
        raise NotImplementedError

    def _sf(self, z, *shapes):
        raise NotImplementedError

    def _logcdf(self, z, *shapes):
        """log(cdf) below the median, log1p(-sf) above (SciPy's rule)."""
        cdf, sf = self._cdf(z, *shapes), self._sf(z, *shapes)
        low = cdf < 0.5
        return np.where(low, np.log(np.where(low, cdf, 0.5)), np.log1p(-np.where(low, 0.5, sf)))

    def _logsf(self, z, *shapes):
        cdf, sf = self._cdf(z, *shapes), self._sf(z, *shapes)
        high = sf < 0.5
        return np.where(high, np.log(np.where(high, sf, 0.5)), np.log1p(-np.where(high, 0.5, cdf)))

    def _ppf(self, q, *shapes):
        from ...core.context import describe_stack
        from ...core.errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            f"{describe_stack()}: npfunc.scipy.stats.{self.name}.ppf is not provided yet (docs/coverage.md "
            f"lists the distributions with one); compute the quantile outside the transform if no derivative "
            f"is needed, or write the inverse with np and scipy.special functions")

    def _isf(self, q, *shapes):
        """SciPy's generic inverse survival function, ``ppf(1 - q)``; the families
        for which SciPy has its own formula (accurate for small q) override it.  A q
        below rounding makes 1 - q one: the support's upper end, as SciPy's ppf gives."""
        p = 1.0 - q
        top = p == 1.0
        return np.where(top, self._support(*shapes)[1], self._ppf(np.where(top, 0.5, p), *shapes))

    def _entropy(self, *shapes):
        raise _no_closed_form(self.name)

    # ---- the public methods ---------------------------------------------------------------------
    def _prepare(self, x, args, kwds):
        shapes, (loc, scale) = self._parse(args, kwds)
        x = as_float(x)
        valid = self._argcheck(*shapes)
        if not positive_scalar(scale):
            valid = both(valid, scale > 0)
        shapes = self._safe_shapes(valid, shapes)
        scale = safe(valid, scale, 1.0)
        z = x
        if not (isinstance(loc, float) and loc == 0):
            z = z - loc
        if not (isinstance(scale, float) and scale == 1):
            z = z / scale
        return z, shapes, scale, valid

    def _finish(self, out, z, valid, bounded):
        if valid is not True:
            out = np.where(valid, out, np.nan)
        if bounded:  # NaN points are "outside" the support masks: give them NaN back
            out = np.where(np.isnan(z), np.nan, out)
        return squeeze_scalar(out)

    def _density(self, log, x, args, kwds):
        z, shapes, scale, valid = self._prepare(x, args, kwds)
        lo, hi = self._support(*shapes)
        bounded = not (is_const(lo, -INF) and is_const(hi, INF))
        if not bounded:
            inside = True
        elif self.open_support:
            inside = both(z > lo, z < hi)
        else:
            inside = both(z >= lo, z <= hi)
        zs = safe(inside, z, self._inner(*shapes))
        if bounded:
            # At an edge of the support the density may vanish for every nearby
            # shape (gamma's at 0 for a > 1): log-density -inf, whose derivative
            # in the shapes is -inf (log 0), and exp(-inf) * -inf is NaN.  Such
            # points join the outside: the constant 0 (-inf), derivative 0.
            vanishes = self._logpdf(zs, *shapes) == -INF
            inside = both(inside, ~vanishes)
            zs = safe(inside, z, self._inner(*shapes))
        if log:
            val = self._logpdf(zs, *shapes)
            if not (isinstance(scale, float) and scale == 1):
                val = val - np.log(scale)
            out = choose(inside, val, -INF)
        else:
            val = self._pdf(zs, *shapes)
            if not (isinstance(scale, float) and scale == 1):
                val = val / scale
            out = choose(inside, val, 0.0)
        return self._finish(out, z, valid, bounded)

    def _tail(self, which, x, args, kwds):
        z, shapes, scale, valid = self._prepare(x, args, kwds)
        lo, hi = self._support(*shapes)
        bounded = not (is_const(lo, -INF) and is_const(hi, INF))
        inside = both(z > lo, z < hi) if bounded else True
        zs = safe(inside, z, self._inner(*shapes))
        val = getattr(self, "_" + which)(zs, *shapes)
        if inside is not True:
            upper, lower = z >= hi, z <= lo
            outside = {"cdf": np.where(upper, 1.0, 0.0), "sf": np.where(lower, 1.0, 0.0),
                       "logcdf": np.where(upper, 0.0, -INF), "logsf": np.where(lower, 0.0, -INF)}[which]
            val = np.where(inside, val, outside)
        return self._finish(val, z, valid, bounded)

    def logpdf(self, x, *args, **kwds):
        """Log of the probability density at ``x`` (SciPy's signature: shapes, loc=0, scale=1)."""
        return self._density(True, x, args, kwds)

    def pdf(self, x, *args, **kwds):
        """Probability density at ``x``."""
        return self._density(False, x, args, kwds)

    def cdf(self, x, *args, **kwds):
        """Cumulative distribution function at ``x``."""
        return self._tail("cdf", x, args, kwds)

    def logcdf(self, x, *args, **kwds):
        """Log of the cumulative distribution function at ``x``."""
        return self._tail("logcdf", x, args, kwds)

    def sf(self, x, *args, **kwds):
        """Survival function 1 - cdf at ``x``."""
        return self._tail("sf", x, args, kwds)

    def logsf(self, x, *args, **kwds):
        """Log of the survival function at ``x``."""
        return self._tail("logsf", x, args, kwds)

    def _valid_params(self, args, kwds):
        shapes, (loc, scale) = self._parse(args, kwds)
        valid = self._argcheck(*shapes)
        if not positive_scalar(scale):
            valid = both(valid, scale > 0)
        return self._safe_shapes(valid, shapes), loc, safe(valid, scale, 1.0), valid

    def ppf(self, q, *args, **kwds):
        """Percent point function (inverse of ``cdf``) at ``q``: the support's ends at
        q = 0 and 1 (derivative 0 there), NaN outside [0, 1] or for invalid parameters."""
        return self._quantile(self._ppf, q, args, kwds, at_lower_end=0.0)

    def isf(self, q, *args, **kwds):
        """Inverse survival function (inverse of ``sf``) at ``q``: the support's ends at
        q = 1 and 0 (derivative 0 there), NaN outside [0, 1] or for invalid parameters."""
        return self._quantile(self._isf, q, args, kwds, at_lower_end=1.0)

    def _quantile(self, inverse, q, args, kwds, at_lower_end: float):
        """``loc + scale * inverse(q)`` inside (0, 1); the support's lower end at
        ``q == at_lower_end``, its upper end at the other end of [0, 1]."""
        shapes, loc, scale, valid = self._valid_params(args, kwds)
        q = as_float(q)
        inside = (q > 0) & (q < 1)
        z = inverse(np.where(inside, q, 0.5), *shapes)
        lo, hi = self._support(*shapes)
        z = np.where(inside, z, np.where(q == at_lower_end, lo, np.where(q == 1.0 - at_lower_end, hi, np.nan)))
        out = loc + scale * z
        if valid is not True:
            out = np.where(valid, out, np.nan)
        return squeeze_scalar(out)

    def entropy(self, *args, **kwds):
        """Differential entropy (closed form); ``loc`` has no effect, ``scale`` adds log(scale)."""
        shapes, loc, scale, valid = self._valid_params(args, kwds)
        out = self._entropy(*shapes)
        if not (isinstance(scale, float) and scale == 1):
            out = out + np.log(scale)
        if valid is not True:
            out = np.where(valid, out, np.nan)
        return squeeze_scalar(out)


class Discrete(Distribution):
    """An integer-valued family shifted by ``loc`` (SciPy's ``rv_discrete`` rules)."""

    params = ("loc",)
    inner = 0.0

    def _support(self, *shapes):
        return 0.0, INF

    def _argcheck(self, *shapes):
        return True

    def _logpmf(self, k, *shapes):
        raise NotImplementedError

    def _pmf(self, k, *shapes):
        edge = self._edge(*shapes) if is_traced(*shapes) else None
        if edge is None:
            return np.exp(self._logpmf(k, *shapes))
        # exp(logpmf)'s derivative is pmf * (k / p ...): 0 * inf where a probability or
        # rate sits on the end of its range (a mass p**k at p = 0), though the mass is a
        # polynomial there (d/dp binom.pmf(1, n, p) = n at p = 0).  Those points take the
        # polynomial (equal values; the power rule gives every derivative), the others
        # exp(logpmf) at a safe placeholder on the edge (no 0 * inf behind np.where)
        inner = np.exp(self._logpmf(k, *self._off_edge(edge, shapes)))
        return np.where(edge, self._edge_pmf(k, edge, *shapes), inner)

    def _edge(self, *shapes):
        """Where a shape parameter sits on the end of its range, or None (no such points)."""
        return None

    def _logcdf(self, k, *shapes):
        return np.log(self._cdf(k, *shapes))

    def _logsf(self, k, *shapes):
        return np.log(self._sf(k, *shapes))

    def _entropy(self, *shapes):
        raise _no_closed_form(self.name)

    def _prepare(self, k, args, kwds):
        shapes, (loc,) = self._parse(args, kwds)
        k = as_float(k)
        if not (isinstance(loc, float) and loc == 0):
            k = k - loc
        valid = self._argcheck(*shapes)
        shapes = tuple(safe(valid, s, self._safe_value(i)) for i, s in enumerate(shapes))
        return k, shapes, valid

    def _safe_value(self, i):
        return 1.0

    def _finish(self, out, k, valid):
        if valid is not True:
            out = np.where(valid, out, np.nan)
        return squeeze_scalar(np.where(np.isnan(k), np.nan, out))

    def _mass(self, log, k, args, kwds):
        k, shapes, valid = self._prepare(k, args, kwds)
        lo, hi = self._support(*shapes)
        inside = (k >= lo) & (k <= hi) & (np.floor(k) == k)
        ks = np.where(inside, k, self.inner)
        if log:
            out = np.where(inside, self._logpmf(ks, *shapes), -INF)
        else:
            out = np.where(inside, self._pmf(ks, *shapes), 0.0)
        return self._finish(out, k, valid)

    def _tail(self, which, k, args, kwds):
        k, shapes, valid = self._prepare(k, args, kwds)
        lo, hi = self._support(*shapes)
        inside = (k >= lo) & (k < hi) & np.isfinite(k)
        ks = np.floor(np.where(inside, k, self.inner))
        lower_tail = which in ("cdf", "logcdf")
        val = getattr(self, "_" + which)(ks, *shapes)
        if which.startswith("log"):
            full, empty = 0.0, -INF
        else:
            full, empty = 1.0, 0.0
        if lower_tail:
            outside = np.where(k >= hi, full, empty)
        else:
            outside = np.where(k < lo, full, empty)
        return self._finish(np.where(inside, val, outside), k, valid)

    def logpmf(self, k, *args, **kwds):
        """Log of the probability mass at ``k`` (SciPy's signature: shapes, loc=0)."""
        return self._mass(True, k, args, kwds)

    def pmf(self, k, *args, **kwds):
        """Probability mass at ``k``."""
        return self._mass(False, k, args, kwds)

    def cdf(self, k, *args, **kwds):
        """Cumulative distribution function at ``k`` (P(X <= k))."""
        return self._tail("cdf", k, args, kwds)

    def logcdf(self, k, *args, **kwds):
        """Log of the cumulative distribution function at ``k``."""
        return self._tail("logcdf", k, args, kwds)

    def sf(self, k, *args, **kwds):
        """Survival function P(X > k)."""
        return self._tail("sf", k, args, kwds)

    def logsf(self, k, *args, **kwds):
        """Log of the survival function at ``k``."""
        return self._tail("logsf", k, args, kwds)

    def ppf(self, q, *args, **kwds):
        """Percent point function: the smallest k with cdf(k) >= q.  A step function of
        ``q`` and the shape parameters (derivative 0); derivative 1 in ``loc``."""
        shapes, (loc,) = self._parse(args, kwds)
        out = discrete_ppf(self.name, as_float(q), *shapes)
        if not (isinstance(loc, float) and loc == 0):
            out = out + loc
        return squeeze_scalar(out)

    def entropy(self, *args, **kwds):
        """Entropy (closed form where one exists); ``loc`` has no effect."""
        shapes, (loc,) = self._parse(args, kwds)
        valid = self._argcheck(*shapes)
        shapes = tuple(safe(valid, s, self._safe_value(i)) for i, s in enumerate(shapes))
        out = self._entropy(*shapes)
        if valid is not True:
            out = np.where(valid, out, np.nan)
        return squeeze_scalar(out)
