"""The public NumPy functions npfunc does not run on traced values, each with
the reason -- the data ``docs/coverage.md`` is generated from.

Whoever adds a function removes its name from ``NOT_YET`` (the test in
``tests/test_coverage.py`` fails while a supported function is still listed
here, and when NumPy has a public function that is neither supported nor
listed).  ``NO_TRACED_INPUTS`` holds functions that work unchanged inside
every transform, NumPy's own function, because they never receive a traced
value (shapes, sizes, dtypes, global settings) or only do Python arithmetic
on it; ``npfunc.numpy`` offers them too.  ``UNSUPPORTED`` holds those that
cannot be supported, with the reason a user would accept.
"""
from __future__ import annotations

#: Planned: array functions npfunc does not support yet (issue 11).  Remove a
#: name when its implementation (with registry samples) lands.
NOT_YET = frozenset({
    # creation from traced values, ranges with traced ends
    "np.asarray_chkfinite",         "np.fromfunction", "np.kaiser",
    # differences, integrals, statistics
                    # polynomials
        "np.poly1d",
    # selection, editing, sets, sorting
                "np.real_if_close",
    # elementwise and integer functions
    "np.packbits",
    "np.unpackbits",     # functional programming, contractions
    "np.vectorize", "np.einsum_path",
    # linear algebra and FFT helpers
    })

_SHAPES = "takes sizes, shapes or dtypes, never a traced value: works unchanged (plain result)"
_SETTINGS = "global NumPy settings, not array functions: work unchanged"
_INDEX = "index arrays from sizes: works unchanged (plain integer result)"

#: Work unchanged inside transforms: no argument is ever a traced array.
NO_TRACED_INPUTS = {
    **{name: _SHAPES for name in (
        "np.indices",
        "np.hamming", "np.hanning", "np.bartlett", "np.blackman", "np.broadcast_shapes", "np.ndindex",
        "np.iterable", "np.__array_namespace_info__")},
    **{name: _INDEX for name in (
        "np.tril_indices", "np.triu_indices", "np.diag_indices", "np.mask_indices")},
    # (it does see traced values: while a transform runs, np.isscalar answers for the NumPy
    # scalar a traced value stands for; core/array_hooks.py)
    "np.isscalar": "True for a traced value standing for a NumPy scalar, as NumPy answers for the scalar",
    **{name: _SETTINGS for name in (
        "np.errstate", "np.seterr", "np.geterr", "np.seterrcall", "np.geterrcall", "np.getbufsize",
        "np.setbufsize", "np.set_printoptions", "np.get_printoptions", "np.printoptions",
        "np.get_include", "np.show_config", "np.show_runtime", "np.info", "np.test")},
}

_IO = "file and buffer I/O: reads or writes bytes, not array values (run it outside the transform)"
_PRINT = ("printing and formatting: needs concrete values (print outside the transform, or "
          "npfunc.debug_unwrap the value)")
_DTYPE = "dtype utility: works on dtypes, not values (call it on x.dtype, which works unchanged)"
_VALUE_DTYPE = "the result dtype depends on the values, which a transform cannot provide"
_LAYOUT = "memory layout: traced values have no memory layout (a plain array gives the same answer)"
_MEMORY = "memory sharing: traced values have no memory (use npfunc's aliasing rules, docs/views)"
_OBJECT = "object arrays and Python-level ufuncs: no numeric derivative (write the function with NumPy ops)"
_ITER = "Python-level iteration over entries: needs concrete values (use vectorised NumPy operations)"
_DATETIME = "datetime64 and business days: no floating-point values to differentiate"
_MATRIX = "np.matrix and record arrays: legacy containers (use ndarray and structured dtypes outside transforms)"

#: Cannot be supported, with the reason a user would accept.
UNSUPPORTED = {
    **{name: _IO for name in (
        "np.save", "np.savez", "np.savez_compressed", "np.savetxt", "np.load", "np.loadtxt",
        "np.genfromtxt", "np.fromregex", "np.fromfile", "np.fromstring", "np.frombuffer", "np.fromiter",
        "np.memmap", "np.from_dlpack")},
    **{name: _PRINT for name in (
        "np.array_repr", "np.array_str", "np.array2string", "np.format_float_positional",
        "np.format_float_scientific", "np.binary_repr", "np.base_repr")},
    **{name: _DTYPE for name in (
        "np.dtype", "np.finfo", "np.iinfo", "np.promote_types", "np.can_cast", "np.issubdtype",
        "np.isdtype", "np.common_type", "np.mintypecode", "np.typename")},
    "np.min_scalar_type": _VALUE_DTYPE,
    **{name: _LAYOUT for name in ("np.require", "np.isfortran")},
    **{name: _MEMORY for name in ("np.may_share_memory", "np.shares_memory")},
    **{name: _OBJECT for name in ("np.frompyfunc", "np.ufunc")},
    **{name: _ITER for name in ("np.nditer", "np.nested_iters", "np.ndenumerate", "np.flatiter",
                                "np.broadcast")},
    **{name: _DATETIME for name in (
        "np.datetime_as_string", "np.datetime_data", "np.busday_count", "np.busday_offset",
        "np.is_busday", "np.busdaycalendar", "np.isnat")},
    **{name: _MATRIX for name in ("np.matrix", "np.asmatrix", "np.bmat", "np.recarray")},
}


def status(name: str) -> tuple[str, str] | None:
    """``(status, reason)`` for an unsupported public NumPy function, or None."""
    if name in NOT_YET:
        return "not yet supported", "planned (issue 11)"
    if name in NO_TRACED_INPUTS:
        return "works unchanged", NO_TRACED_INPUTS[name]
    if name in UNSUPPORTED:
        return "not supported", UNSUPPORTED[name]
    return None
