"""Element-wise functions: npfunc's ufuncs under the standard's names.

NumPy 2's ufuncs are the standard's functions (NEP 50 gives Python scalars
the array's dtype); what differs is settled here: the names (``acos`` for
``arccos`` ...), 0-d results are arrays, ``ceil``/``floor``/``trunc`` keep an
integer dtype, and ``clip`` keeps ``x``'s dtype and shape.
"""
from __future__ import annotations

import numpy as np

from ._base import array_out, fn

_NAMES = {  # the standard's name -> NumPy's
    "abs": "absolute", "acos": "arccos", "acosh": "arccosh", "add": "add", "asin": "arcsin",
    "asinh": "arcsinh", "atan": "arctan", "atan2": "arctan2", "atanh": "arctanh",
    "bitwise_and": "bitwise_and", "bitwise_left_shift": "left_shift", "bitwise_invert": "invert",
    "bitwise_or": "bitwise_or", "bitwise_right_shift": "right_shift", "bitwise_xor": "bitwise_xor",
    "conj": "conjugate", "copysign": "copysign", "cos": "cos", "cosh": "cosh", "divide": "divide",
    "equal": "equal", "exp": "exp", "expm1": "expm1", "floor_divide": "floor_divide",
    "greater": "greater", "greater_equal": "greater_equal", "hypot": "hypot", "imag": "imag",
    "isfinite": "isfinite", "isinf": "isinf", "isnan": "isnan", "less": "less", "less_equal": "less_equal",
    "log": "log", "log1p": "log1p", "log2": "log2", "log10": "log10", "logaddexp": "logaddexp",
    "logical_and": "logical_and", "logical_not": "logical_not", "logical_or": "logical_or",
    "logical_xor": "logical_xor", "maximum": "maximum", "minimum": "minimum", "multiply": "multiply",
    "negative": "negative", "nextafter": "nextafter", "not_equal": "not_equal", "positive": "positive",
    "pow": "power", "real": "real", "reciprocal": "reciprocal", "remainder": "remainder", "round": "round",
    "sign": "sign", "signbit": "signbit", "sin": "sin", "sinh": "sinh", "square": "square", "sqrt": "sqrt",
    "subtract": "subtract", "tan": "tan", "tanh": "tanh",
}


_BINARY = frozenset({
    "add", "atan2", "bitwise_and", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "copysign", "divide", "equal", "floor_divide", "greater", "greater_equal", "hypot", "less", "less_equal",
    "logaddexp", "logical_and", "logical_or", "logical_xor", "maximum", "minimum", "multiply", "nextafter",
    "not_equal", "pow", "remainder", "subtract"})


def _unary(name: str, numpy_name: str):
    impl = fn(numpy_name)

    def function(x, /):
        return array_out(impl(x))

    return _named(function, name, numpy_name)


def _binary(name: str, numpy_name: str):
    impl = fn(numpy_name)

    def function(x1, x2, /):
        return array_out(impl(x1, x2))

    return _named(function, name, numpy_name)


def _named(function, name, numpy_name):
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The standard's ``{name}``: npfunc's ``np.{numpy_name}``."
    return function


for _name, _numpy_name in _NAMES.items():
    globals()[_name] = (_binary if _name in _BINARY else _unary)(_name, _numpy_name)
del _name, _numpy_name


def _is_float(x) -> bool:
    return getattr(x, "dtype", None) is not None and x.dtype.kind == "f"


def floor_divide(x1, x2, /):
    """``floor(x1 / x2)``: as NumPy's ``//``, but with the standard's values where an
    operand is infinite (NumPy gives NaN for ``inf // 2`` and -1 for ``1 // -inf``)."""
    with np.errstate(invalid="ignore"):  # inf // 2 is NaN in NumPy, replaced below
        out = fn("floor_divide")(x1, x2)
    if _is_float(out):
        infinite = fn("logical_or")(fn("isinf")(x1), fn("isinf")(x2))
        out = fn("where")(infinite, fn("floor")(fn("divide")(x1, x2)), out)
    return array_out(out)


def expm1(x, /):
    """``exp(x) - 1``, accurate near 0; complex infinities and NaNs give the
    standard's values (those of ``exp(x) - 1``)."""
    if x.dtype.kind != "c":
        return array_out(fn("expm1")(x))
    with np.errstate(invalid="ignore"):  # NumPy's complex expm1 at infinities, replaced below
        out = fn("expm1")(x)
    if x.dtype.kind == "c":
        out = fn("where")(fn("isfinite")(x), out, fn("exp")(x) - 1)
    return array_out(out)


def _rounding(name: str):
    impl = fn(name)

    def function(x, /):
        if x.dtype.kind in "biu":  # already integral: NumPy would return floats
            return array_out(fn("copy")(x))
        return array_out(impl(x))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The standard's ``{name}``: an integer array keeps its dtype."
    return function


ceil = _rounding("ceil")
floor = _rounding("floor")
trunc = _rounding("trunc")


def clip(x, /, min=None, max=None):  # noqa: A002 - the standard's names
    """``x`` clamped to ``[min, max]``, with ``x``'s dtype and shape (NaN in any operand gives NaN).

    >>> import numpy as np, npfunc.array_api as xp
    >>> xp.clip(np.array([1, 5, 9], dtype=np.int8), 2, 6)
    array([2, 5, 6], dtype=int8)
    """
    out = x
    if max is not None:
        out = fn("minimum")(out, max)
    if min is not None:
        out = fn("maximum")(out, min)
    if out is x:
        return array_out(fn("copy")(x))
    return array_out(fn("astype")(out, x.dtype, copy=False))


__all__ = [*_NAMES, "ceil", "floor", "trunc", "clip"]
