"""The operations and arguments random programs are drawn from.

Each entry is a Python expression with placeholders (``{a}``, ``{b}`` float
operands, ``{k}`` an integer array, ``{m}`` a boolean array) that the
statement kinds of ``generator.py`` fill with names the program defines.
"""
import numpy as np

__all__ = ["BOUND", "X_SHAPES", "X_SHAPE_WEIGHTS", "X_DTYPES", "X_DTYPE_WEIGHTS", "STATICS", "UNARY_ANY",
           "UNARY_REAL", "UNARY_COMPLEX", "BINARY_ANY", "BINARY_REAL", "INT_OPS", "BOOL_OPS", "CASTS",
           "REDUCTIONS", "METHOD_REDUCTIONS", "draw_argument"]

BOUND = 1e3  # largest float magnitude a kept statement may produce
X_SHAPES = [(3,), (4,), (2, 3), (3, 3), (3, 2), (2, 2, 3), (1, 3), (3, 1), (5,), ()]
X_SHAPE_WEIGHTS = [4, 3, 4, 3, 2, 2, 1, 1, 1, 1]
X_DTYPES = [np.float64, np.float32, np.complex128]
X_DTYPE_WEIGHTS = [6, 2.5, 1.5]
STATICS = [True, 1, 1.0, -0.0, 0.0, 2, 0.5, False, 0]

UNARY_ANY = ["np.sin({a})", "np.cos({a})", "np.tanh({a})", "np.exp({a})", "{a} ** 2", "{a} ** 3",
             "np.square({a})", "np.sinh({a})", "np.expm1({a})", "-{a}", "+{a}", "np.conj({a})",
             "{a} * 0.5 + 1.0", "np.positive({a})", "np.negative({a})"]
UNARY_REAL = ["np.log1p({a} * {a})", "np.sqrt(1.0 + {a} * {a})", "1.0 / (1.0 + {a} * {a})",
              "np.arctan({a})", "np.hypot({a}, 1.0)", "np.abs({a})", "np.logaddexp({a}, 0.5)",
              "np.cbrt({a} + 2.5)", "np.log(np.abs({a}) + 1.0)", "np.clip({a}, -0.5, 0.5)",
              "np.floor({a})", "np.sign({a}) * {a}", "np.exp2({a})", "np.sinc({a})",
              "np.maximum({a}, 0.1)", "np.deg2rad({a})", "np.fmod({a}, 0.7)", "np.round({a}, 1)"]
UNARY_COMPLEX = ["np.real({a})", "np.imag({a})", "np.abs({a})", "{a} * (1 - 2j)", "np.angle({a})"]
BINARY_ANY = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "np.add({a}, {b})", "np.multiply({a}, {b})",
              "{a} / (2.0 + np.cos({b}))"]
BINARY_REAL = ["{a} / (1.5 + {b} * {b})", "np.maximum({a}, {b})", "np.minimum({a}, {b})",
               "np.arctan2({a}, {b} + 2.0)", "np.hypot({a}, {b})", "np.logaddexp({a}, {b})",
               "np.fmax({a}, {b})", "np.power(np.abs({a}) + 1.0, {b})", "np.copysign({a}, {b})",
               "np.heaviside({a}, 0.5) * {b}"]
INT_OPS = ["{k} + {k}", "{k} * 3", "{k} - 1", "{k} // 2", "{k} % 3", "np.int8(5) * {k}",
           "{k} * {a}", "{a} * {k}", "{k} + 0.5", "np.abs({k})", "-{k}", "{k} ** 2",
           "np.left_shift({k}, 1)", "{k}.astype(np.float32)", "np.maximum({k}, 0)"]
BOOL_OPS = ["{a} > {b}", "{a} < 0.3", "np.logical_not({m})", "{m} & ({a} > 0)", "{m} | {m}",
            "{m} ^ True", "{m}.astype(np.int8)", "{m} * {a}", "{a} * {m}", "np.isfinite({a})",
            "{m} + {m}", "np.sum({m})", "{m}.any()", "np.count_nonzero({m})", "{m}.astype(float)"]
CASTS = ["{a}.astype(np.int8)", "{a}.astype(np.float32)", "{a}.astype(np.float64)", "{a}.astype(bool)",
         "{a}.astype(np.complex128)", "{a}.real.astype(np.int16)", "np.float32({a})"]
REDUCTIONS = ["sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "cumprod", "ptp",
              "amax", "nansum", "average", "median", "any", "all", "argmax", "argmin", "trace"]
METHOD_REDUCTIONS = {"sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "cumprod", "any",
                     "all", "argmax", "argmin", "trace"}


def draw_argument(rng, shape, dtype) -> np.ndarray:
    """An argument: always an ndarray (0-d included), values away from overflow."""
    if dtype == np.complex128:
        v = rng.uniform(-1.2, 1.2, shape) + 1j * rng.uniform(-1.2, 1.2, shape)
    elif dtype == np.int8:
        v = rng.integers(-5, 6, shape)
    elif dtype == np.bool_:
        v = rng.random(shape) < 0.5
    else:
        v = rng.uniform(-1.5, 1.5, shape)
    return np.array(v, dtype=dtype)
