"""The NumPy functions that return views, on traced values.

Each computes its result with the ordinary (functional) implementation and
then records, in the alias family of its input (``indexing/aliasing.py``),
how the result reads the shared memory: so that a write through the result
reaches the input, and a write into the input shows in the result, exactly
as with NumPy's views.  What NumPy returns as a copy (advanced indexing,
``flatten``, a reshape NumPy cannot do without copying) stays independent.

These front ends are what ``np.reshape(x, ...)``, ``x.T``, ``x[1:]``... reach;
npfunc's rules call the functional implementations directly, which never
create aliases.

>>> import numpy as np, npfunc
>>> def f(x):
...     y = x[1:]        # a view: writing into it writes into x
...     y *= 3
...     return np.sum(x)
>>> npfunc.grad(f)(np.ones(3))
array([1., 3., 3.])
"""
from __future__ import annotations

import builtins

import numpy as np

from ...core.context import describe_stack
from ...core.dispatch import RETURNS_ITS_ARGUMENT, implements
from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer, clone
from ...core.values import broadcast_shapes, dtype_of, ndim_of, shape_of
from ..families import normalize_axes
from ..indexing import aliasing
from ..indexing.aliasing import (FRESH_C, ImagPart, Index, Positions, ReadOnly, RealPart, Reshape, Transpose,
                                 make_view)
from ..indexing.gather import _gather, _parse_index, split_scalar_bools
from . import basic, joining
from .arranging import diagonal as _diagonal
from .windows import sliding_window_view as _sliding_window_view


def _traced(x) -> bool:
    return isinstance(x, Tracer)


# ---- indexing ---------------------------------------------------------------------------

#: gather's params for ``x[k]``, made once for small ``k`` (nothing changes params)
_INT_INDEX = {k: {"spec": (("i", k),)} for k in range(-8, 64)}


def getitem(x, index):
    """``x[index]``: basic indices give a view; integer-array and boolean
    indices give a copy; indexing every axis with an integer gives a scalar."""
    if type(index) is int:  # x[k], the commonest index: the steps below, known in advance
        params = _INT_INDEX.get(index)
        if params is None:
            params = {"spec": (("i", index),)}
        if not isinstance(x, Tracer):
            return _gather.bind(x, **params)
        top = x._interp  # the level of x's only argument processes it (bind's choice, made here)
        out = top.process(_gather, (x,), params) if top.alive else _gather.bind(x, **params)
        if len(x.shape) == 1:
            return out  # a scalar (or NumPy's IndexError, raised above)
        return make_view(x, out, Index(params["spec"]))
    split = split_scalar_bools(index)
    if split is not None:  # 0-d booleans: new axes (a view), then integer arrays on them
        return getitem(getitem(x, split[0]), split[1])
    spec, arrays = _parse_index(index, "indexing")
    out = _gather.bind(x, *arrays, spec=spec)
    if arrays or not _traced(x):
        return out
    if aliasing.is_scalar(x) and (index is Ellipsis or isinstance(index, tuple) and Ellipsis in index):
        return aliasing.array_result(out)  # s[...] of a NumPy scalar: a new 0-d array
    ints = sum(c[0] == "i" for c in spec)
    if ints == ndim_of(x) and all(c[0] == "i" for c in spec):
        return out  # NumPy returns a scalar: a copy
    return make_view(x, out, Index(spec))


# ---- axis permutations ------------------------------------------------------------------

def _permuted(a, perm):
    return make_view(a, basic.transpose(a, perm), Transpose(perm))


@implements(np.transpose)
def transpose(a, axes=None):
    """``np.transpose`` (a view)."""
    if not _traced(a):
        return np.transpose(a, axes)
    return _permuted(a, basic.transpose_perm(ndim_of(a), axes))


@implements(np.permute_dims)
def permute_dims(a, axes=None):
    """``np.permute_dims`` (a view)."""
    return transpose(a, axes)


@implements(np.matrix_transpose, np.linalg.matrix_transpose)
def matrix_transpose(x, /):
    """``np.matrix_transpose``: the last two axes swapped (a view)."""
    if ndim_of(x) < 2:
        raise ValueError("matrix_transpose: Input array must be at least 2-dimensional")
    return swapaxes(x, -1, -2)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    """``np.swapaxes`` (a view)."""
    if not _traced(a):
        return np.swapaxes(a, axis1, axis2)
    return _permuted(a, basic.swapaxes_perm(ndim_of(a), axis1, axis2))


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    """``np.moveaxis`` (a view)."""
    if not _traced(a):
        return np.moveaxis(a, source, destination)
    return _permuted(a, basic.moveaxis_perm(ndim_of(a), source, destination))


@implements(np.rollaxis)
def rollaxis(a, axis, start=0):
    """``np.rollaxis`` (a view)."""
    if not _traced(a):
        return np.rollaxis(a, axis, start)
    return _permuted(a, basic.rollaxis_perm(ndim_of(a), axis, start))


# ---- reshapes --------------------------------------------------------------------------

def _same_data_axes(old, new) -> bool:
    """True when a reshape only inserts or removes length-1 axes: a view for any layout."""
    return [n for n in old if n != 1] == [n for n in new if n != 1]


def _fresh_c(out):
    """``out``, a new C-contiguous array (a copy) NumPy would return."""
    if _traced(out):
        out._alias = FRESH_C
    return out


def _reshaped(a, shape, order, copy):
    """The reshape of a traced ``a``: a view where NumPy gives one, a copy where
    it copies, an uncertain view where that depends on an untracked layout."""
    out = basic.reshape(a, shape, order=order)
    if copy:
        return _fresh_c(clone(out) if out is a else out) if order == "C" else (clone(out) if out is a else out)
    old = tuple(shape_of(a))
    if _same_data_axes(old, shape):
        view = True
    else:
        view = aliasing.decide(a, lambda s: _reshapes_in_place(s, shape, order))
    if view is False:
        if copy is False:
            raise ValueError("Unable to avoid creating a copy while reshaping.")
        return _fresh_c(out) if order == "C" else out
    if view is None and copy is False:
        raise aliasing.uncertain_error("np.reshape(..., copy=False)")
    return make_view(a, out, Reshape(shape, order), uncertain=view is None)


def _reshapes_in_place(s, shape, order) -> bool:
    try:
        np.reshape(s, shape, order=order, copy=False)
    except ValueError:
        return False
    return True


def _order_a(a):
    """NumPy's order='A': Fortran order for Fortran-contiguous arrays, else C."""
    fortran = aliasing.decide(a, lambda s: s.flags.f_contiguous and not s.flags.c_contiguous)
    if fortran is None:
        raise UnsupportedOperationError(
            "order='A' on a traced value whose memory layout npfunc does not know (an array computed "
            "inside the function): the element order would depend on it. Pass order='C' or order='F'.")
    return "F" if fortran else "C"


@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    """``np.reshape``: a view when NumPy can reshape without copying (``copy=``
    as in NumPy)."""
    if shape is None:
        shape = newshape
    if not _traced(a):
        return np.reshape(a, shape, order=order, copy=copy)
    if order == "A":
        order = _order_a(a)
    if order not in ("C", "F"):
        raise ValueError(f"reshape: order must be one of 'C', 'F', 'A', got {order!r}")
    import math

    return _reshaped(a, basic.resolve_shape(shape, math.prod(shape_of(a)), "reshape"), order, copy)


@implements(np.ravel)
def ravel(a, order="C"):
    """``np.ravel``: a view of a contiguous array, else a copy (NumPy's rule)."""
    if not _traced(a):
        return np.ravel(a, order)
    if order == "A":
        order = _order_a(a)
    elif order == "K":
        order = _order_k(a)
    if order not in ("C", "F"):
        raise ValueError(f"ravel: order must be one of 'C', 'F', 'A', 'K', got {order!r}")
    size = int(np.prod(shape_of(a)))
    out = basic.reshape(a, (size,), order=order)
    contiguous = aliasing.decide(
        a, (lambda s: s.flags.c_contiguous) if order == "C" else (lambda s: s.flags.f_contiguous))
    if contiguous is False:
        return _fresh_c(clone(out) if out is a else out)
    return make_view(a, out, Reshape((size,), order), uncertain=contiguous is None)


def _order_k(a):
    if ndim_of(a) <= 1 or aliasing.decide(a, lambda s: s.flags.c_contiguous):
        return "C"
    if aliasing.decide(a, lambda s: s.flags.f_contiguous):
        return "F"
    raise UnsupportedOperationError(
        "ravel(order='K') of a traced value: the element order follows a memory layout npfunc does not "
        "track here. Pass order='C' or order='F'.")


def flatten(a, order="C"):
    """``x.flatten()``: always a copy."""
    if order == "A":
        order = _order_a(a)
    elif order == "K":
        order = _order_k(a)
    out = basic.reshape(a, (int(np.prod(shape_of(a))),), order=order)
    return _fresh_c(clone(out) if out is a else out)


@implements(np.expand_dims)
def expand_dims(a, axis):
    """``np.expand_dims`` (a view)."""
    if not _traced(a):
        return np.expand_dims(a, axis)
    out = basic.expand_dims(a, axis)
    return make_view(a, out, Reshape(shape_of(out)))


@implements(np.squeeze)
def squeeze(a, axis=None):
    """``np.squeeze`` (a view)."""
    if not _traced(a):
        return np.squeeze(a, axis)
    out = basic.squeeze(a, axis)
    if out is a:
        return a  # nothing to squeeze: NumPy returns the array itself
    return make_view(a, out, Reshape(shape_of(out)))


def _atleast(arys, nd, fn):
    out = []
    for a in arys:
        if not _traced(a):
            out.append(fn(a))
        elif ndim_of(a) >= nd:
            out.append(a)  # NumPy returns the array itself
        else:
            b = fn.__wrapped__(a)
            out.append(make_view(a, b, Reshape(shape_of(b))))
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    """``np.atleast_1d`` (views; arrays of enough dimensions are returned as they are)."""
    return _atleast(arys, 1, _lift(np.atleast_1d, basic.atleast_1d))


@implements(np.atleast_2d)
def atleast_2d(*arys):
    """``np.atleast_2d`` (views; arrays of enough dimensions are returned as they are)."""
    return _atleast(arys, 2, _lift(np.atleast_2d, basic.atleast_2d))


@implements(np.atleast_3d)
def atleast_3d(*arys):
    """``np.atleast_3d`` (views; arrays of enough dimensions are returned as they are)."""
    return _atleast(arys, 3, _lift(np.atleast_3d, basic.atleast_3d))


def _lift(np_fn, internal):
    """NumPy's function for plain values, with the internal one as ``__wrapped__``."""
    def fn(a):
        return np_fn(a)

    fn.__wrapped__ = internal
    return fn


def view(x, dtype=None, type=None):
    """``x.view()``: a new array object sharing ``x``'s memory."""
    subclass = type if type is not None else dtype if isinstance(dtype, builtins.type) and issubclass(
        dtype, np.ndarray) else None
    if subclass is not None:
        import sys

        frame = sys._getframe(1)
        while frame is not None:  # SciPy's sparse code views the values of H.multiply(x) it computed
            module = frame.f_globals.get("__name__", "")
            if module.startswith("scipy.sparse"):
                from ...core.tracer import sparse_refusal

                owner = builtins.type(frame.f_locals.get("self")).__name__
                raise sparse_refusal(f"a product of a scipy.sparse {owner} and a traced value (H * x, "
                                     "H.multiply(x))")
            frame = frame.f_back
        raise UnsupportedOperationError(
            f"{describe_stack()}: x.view({subclass.__module__}.{subclass.__name__}) (as np.ma's and np.matrix's "
            "functions make their arrays) on a traced value: traced values are plain arrays, whose "
            "operations differ from a subclass's (a masked mean skips masked entries). Keep the mask as an "
            "array of its own: np.where(mask, x, fill), np.nanmean of np.where(mask, np.nan, x), "
            "np.sum(x, where=~mask).")
    if dtype is not None and np.dtype(dtype) != dtype_of(x):
        raise UnsupportedOperationError(
            "x.view(dtype) reinterprets the bytes of an array, which a traced value does not have; "
            "use x.astype(dtype) to convert the values instead.")
    return make_view(x, x, Reshape(shape_of(x)))


# ---- complex parts ----------------------------------------------------------------------

@implements(np.real)
def real(val):
    """``np.real``: a view of the real part (the array itself when it is real)."""
    if not _traced(val):
        return np.real(val)
    if dtype_of(val).kind != "c":
        return val
    from ..elementwise.arithmetic import real as real_part

    return make_view(val, real_part(val), RealPart())


@implements(np.imag)
def imag(val):
    """``np.imag``: a view of the imaginary part; for a real array, read-only zeros."""
    if not _traced(val):
        return np.imag(val)
    if dtype_of(val).kind != "c":
        zeros = np.zeros(shape_of(val), dtype_of(val))
        zeros.flags.writeable = False
        return zeros
    from ..elementwise.arithmetic import imag as imag_part

    return make_view(val, imag_part(val), ImagPart())


# ---- read-only views --------------------------------------------------------------------

def _broadcast(x, *, shape):
    return basic.broadcast_to(x, shape)


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    """``np.broadcast_to``: a read-only view."""
    if not _traced(array):
        return np.broadcast_to(array, shape, subok=subok)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    out = basic.broadcast_to(array, shape)
    return make_view(array, out, ReadOnly(_broadcast, np.broadcast_to, shape=shape))


@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    """``np.broadcast_arrays``: an argument already of the common shape is
    returned itself, as NumPy returns it; the others as read-only views (NumPy
    still lets one write into them with a warning; npfunc refuses the write)."""
    args = [a if _traced(a) else np.asarray(a) for a in args]
    shape = broadcast_shapes(*[tuple(shape_of(a)) for a in args])
    return tuple(a if tuple(shape_of(a)) == shape else broadcast_to(a, shape) for a in args)


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    """``np.diagonal``: a read-only view."""
    if not _traced(a):
        return np.diagonal(a, offset, axis1, axis2)
    out = _diagonal(a, offset, axis1, axis2)
    return make_view(a, out, ReadOnly(_diagonal, np.diagonal, offset=int(offset), axis1=axis1, axis2=axis2))


@implements(np.linalg.diagonal)
def linalg_diagonal(x, /, *, offset=0):
    """``np.linalg.diagonal``: the diagonal of the last two axes (a read-only view)."""
    if ndim_of(x) < 2:
        raise ValueError("linalg.diagonal: the input must be at least 2-dimensional")
    return diagonal(x, offset, -2, -1)


@implements(np.diag)
def diag(v, k=0):
    """``np.diag``: of a 2-D array, its diagonal (a read-only view); of a 1-D
    array, a new matrix."""
    if ndim_of(v) == 2:
        return diagonal(v, k)
    from .arranging import diag as build

    return build(v, k)


@implements(np.lib.stride_tricks.sliding_window_view)
def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    """``np.lib.stride_tricks.sliding_window_view``: a view, read-only on traced values
    (with ``writeable=True`` too: a write into overlapping windows, which NumPy's
    documentation warns of, is refused rather than guessed)."""
    if not _traced(x):
        return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis, subok=subok, writeable=writeable)
    out = _sliding_window_view(x, window_shape, axis)
    return make_view(x, out, ReadOnly(_sliding_window_view, np.lib.stride_tricks.sliding_window_view,
                                      window_shape=window_shape, axis=axis))


# ---- flips and rotations ----------------------------------------------------------------

@implements(np.flip)
def flip(m, axis=None):
    """``np.flip`` (a view)."""
    if not _traced(m):
        return np.flip(m, axis)
    axes = normalize_axes(axis, ndim_of(m), "flip")
    index = [slice(None)] * ndim_of(m)
    for a in axes:
        index[a] = slice(None, None, -1)
    return getitem(m, tuple(index))


@implements(np.fliplr)
def fliplr(m):
    """``np.fliplr`` (a view)."""
    if ndim_of(m) < 2:
        raise ValueError("fliplr: Input must be >= 2-d.")
    return flip(m, 1)


@implements(np.flipud)
def flipud(m):
    """``np.flipud`` (a view)."""
    if ndim_of(m) < 1:
        raise ValueError("flipud: Input must be >= 1-d.")
    return flip(m, 0)


@implements(np.rot90)
def rot90(m, k=1, axes=(0, 1)):
    """``np.rot90`` (a view)."""
    if not _traced(m):
        return np.rot90(m, k, axes)
    from .arranging import rot90_plan

    out = m
    for step, arg in rot90_plan(ndim_of(m), k, axes):
        out = flip(out, arg) if step == "flip" else transpose(out, arg)
    return out if out is not m else view(m)


# ---- splitting -------------------------------------------------------------------------

def _pieces(ary, pieces, axis):
    """Make each piece of ``ary`` along ``axis`` a view of it."""
    if not _traced(ary):
        return pieces
    start = 0
    out = []
    for piece in pieces:
        stop = start + shape_of(piece)[axis]
        spec = (("s", None, None, None),) * axis + (("s", start, stop, None),)
        out.append(make_view(ary, piece, Index(spec)))
        start = stop
    return out


def _split_axis(ary, axis, name):
    return normalize_axes(axis, ndim_of(ary), name)[0]


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    """``np.split``: a list of views."""
    if not _traced(ary):
        return np.split(ary, indices_or_sections, axis)
    return _pieces(ary, joining.split(ary, indices_or_sections, axis), _split_axis(ary, axis, "split"))


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    """``np.array_split``: a list of views."""
    if not _traced(ary):
        return np.array_split(ary, indices_or_sections, axis)
    return _pieces(ary, joining.array_split(ary, indices_or_sections, axis),
                   _split_axis(ary, axis, "array_split"))


def _split_fixed(name, np_fn, axis_of, min_ndim):
    def fn(ary, indices_or_sections):
        if not _traced(ary):
            return np_fn(ary, indices_or_sections)
        nd = ndim_of(ary)
        if nd < min_ndim:
            raise ValueError(f"{name} only works on arrays of {min_ndim} or more dimensions")
        return split(ary, indices_or_sections, axis_of(nd))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``np.{name}``: a list of views."
    return implements(np_fn)(fn)


hsplit = _split_fixed("hsplit", np.hsplit, lambda nd: 1 if nd > 1 else 0, 1)
vsplit = _split_fixed("vsplit", np.vsplit, lambda nd: 0, 2)
dsplit = _split_fixed("dsplit", np.dsplit, lambda nd: 2, 3)


@implements(np.unstack)
def unstack(x, /, *, axis=0):
    """``np.unstack``: a tuple of views."""
    if not _traced(x):
        return np.unstack(x, axis=axis)
    axis = normalize_axes(axis, ndim_of(x), "unstack")[0]
    pieces = joining.unstack(x, axis=axis)
    full = (("s", None, None, None),) * axis
    return tuple(make_view(x, p, Index(full + (("i", k),))) for k, p in enumerate(pieces))


# ---- copies ------------------------------------------------------------------------------

@implements(np.copy)
def copy(a, order="K", subok=False):
    """``np.copy``: a new array (updating one leaves the other alone)."""
    if not _traced(a):
        return np.copy(a, order=order, subok=subok)
    if aliasing.is_scalar(a):  # a NumPy scalar's copy is a new 0-d array, under every transform
        return aliasing.array_result(a)
    out = basic.copy(a, order if order in ("C", "F") else "K")
    out._alias = FRESH_C if order == "C" or ndim_of(a) <= 1 else None
    if out._alias is None and ndim_of(a) == 0:
        out._alias = FRESH_C
    return out


@implements(np.astype)
def astype(x, dtype, /, *, copy=True, device=None):
    """``np.astype``: a new array unless ``copy=False`` and the dtype matches."""
    from ..elementwise.arithmetic import astype as cast

    if not _traced(x):
        return np.astype(x, dtype, copy=copy)
    out = cast(x, dtype)
    if out is x:  # (a NumPy scalar's astype to its own dtype is a NumPy scalar)
        return (clone(x) if aliasing.is_scalar(x) else globals()["copy"](x)) if copy else x
    # A 0-d array stays an array.  (A cast to an integer dtype drops the
    # derivative and gives a plain value: a NumPy scalar when the traced value's
    # primal is one, which must become the 0-d array NumPy's astype returns.)
    if ndim_of(out) == 0 and not aliasing.is_scalar(x):
        if isinstance(out, Tracer):
            out._alias = FRESH_C
        elif isinstance(out, np.generic):
            out = np.array(out)
    return out


# ---- einsum's views ----------------------------------------------------------------------

def einsum_view(subscripts: str, operand, out):
    """``out`` (``np.einsum(subscripts, operand)``) as NumPy returns it: a view
    when the expression only permutes axes or takes diagonals of one operand."""
    if not _traced(operand):
        return out
    positions = np.arange(int(np.prod(shape_of(operand)))).reshape(shape_of(operand))
    try:
        mapped = np.einsum(subscripts, positions)
    except ValueError:
        return out
    if not np.shares_memory(mapped, positions):
        return out
    return make_view(operand, out, Positions(np.array(mapped)))


RETURNS_ITS_ARGUMENT.update({np.squeeze, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.real, np.astype})


# ---- samples: the generated tests call each function as users do ------------------------

def _register_samples() -> None:
    from ...core.dispatch import describe
    from ...core.primitive import Composite, Sample
    from ..linalg import samples as linalg_samples
    from ..sampling import array
    from . import samples

    def x(rng, shape, dtype=np.float64):
        return array(rng, shape, dtype)

    cases = {
        np.reshape: samples.reshape, np.ravel: samples.ravel, np.transpose: samples.transpose,
        np.permute_dims: lambda r: [Sample(x(r, (2, 3, 4)), axes=(2, 0, 1))],
        np.matrix_transpose: samples.matrix_transpose,
        np.linalg.matrix_transpose: linalg_samples.linalg_matrix_transpose,
        np.swapaxes: samples.swapaxes, np.moveaxis: samples.moveaxis, np.rollaxis: samples.rollaxis,
        np.expand_dims: samples.expand_dims, np.squeeze: samples._squeeze,
        np.atleast_1d: samples.atleast_nd, np.atleast_2d: samples.atleast_nd, np.atleast_3d: samples.atleast_nd,
        np.real: samples_complex_parts, np.imag: samples_complex_parts,
        np.broadcast_to: samples._broadcast_to, np.broadcast_arrays: samples._broadcast_arrays,
        np.diagonal: samples.diagonal, np.linalg.diagonal: linalg_samples.linalg_diagonal, np.diag: samples._diag,
        np.lib.stride_tricks.sliding_window_view: samples._sliding_window_view,
        np.flip: samples.flip, np.fliplr: samples.fliplr, np.flipud: samples.flipud, np.rot90: samples.rot90,
        np.split: samples.split(), np.array_split: samples.split("array_split"), np.hsplit: samples.split("hsplit"),
        np.vsplit: samples.split("vsplit"), np.dsplit: samples.split("dsplit"), np.unstack: samples._unstack,
        np.copy: samples.copy, np.astype: samples._astype,
    }
    for target, make in cases.items():
        Composite(describe(target), target, samples=make)


def samples_complex_parts(rng):
    """``np.real`` / ``np.imag`` of complex arrays (views) and of a real array."""
    from ...core.primitive import Sample
    from ..elementwise.samples import complex_array
    from ..sampling import array

    return [Sample(complex_array(rng, (2, 3), np.complex128)), Sample(complex_array(rng, (3,), np.complex64)),
            Sample(array(rng, (3,)), label="real input")]


_register_samples()


def asfortranarray(a, dtype=None):
    """``np.asfortranarray`` of a traced value: the array itself when it is
    F-contiguous, else an F-ordered copy (at least 1-d, as NumPy gives)."""
    return _laid_out(a, dtype, "F")


def ascontiguousarray(a, dtype=None):
    """``np.ascontiguousarray`` of a traced value: the array itself when it is
    C-contiguous, else a C-ordered copy (at least 1-d, as NumPy gives)."""
    return _laid_out(a, dtype, "C")


def _laid_out(a, dtype, order):
    """``a`` (as ``dtype``) in memory order ``order``, as np.ascontiguousarray and
    np.asfortranarray give it: itself when it is laid out so, else a copy."""
    if dtype is not None and np.dtype(dtype) != dtype_of(a):
        from ..elementwise.arithmetic import astype as cast

        out = cast(a, dtype)
        return copy(reshape(out, (1,)) if ndim_of(out) == 0 else out, order=order)  # (the cast kept a's layout)
    if ndim_of(a) == 0:
        return reshape(a, (1,))
    laid_out = aliasing.decide(a, (lambda s: s.flags.c_contiguous) if order == "C" else
                               (lambda s: s.flags.f_contiguous))
    if laid_out:
        return a
    if laid_out is False:
        return copy(a, order=order)
    # NumPy gives a itself or a copy, as a's layout decides: the value is laid out so either
    # way, and writes through it refuse (an uncertain member)
    return make_view(a, basic.copy(a, order), Reshape(shape_of(a)), uncertain=True)
