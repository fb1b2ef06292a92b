"""NumPy's functional programming routines on traced values: ``np.vectorize``,
``np.apply_along_axis``, ``np.apply_over_axes``, ``np.fromfunction``.

``np.vectorize`` and ``np.apply_along_axis`` call a Python function once per
element (per 1-D slice).  On traced values npfunc calls it once, under its
own ``vmap``, on all the elements (slices) at once: one batched call, no
Python loop.  ``np.vectorize``'s ``otypes``, ``excluded`` and ``signature``
(core dimensions) are honoured, and a function of several outputs gives a
tuple as in NumPy.  Values agree with NumPy's loop to rounding (a batched
operation may round differently from the same operation on one element).

A function that cannot run batched -- Python control flow on its argument
(``if x > 0:``), ``float(x)``, ``math.sin(x)`` -- makes vmap raise; then the
call falls back to NumPy's own loop, one call per element, which works
under ``grad``/``jvp``/``jacfwd`` (values are concrete there) and raises
under ``vmap`` (data-dependent control flow cannot be batched: write it with
``np.where``).

``np.vectorize`` is a class without a dispatch protocol, so importing npfunc
gives ``np.vectorize.__call__`` an entry that takes this path when an
argument is traced and runs NumPy's call otherwise (see ``numpy_code.hook``).
``np.fromfunction`` needs nothing: it calls the function once on index
arrays, which works when the function closes over traced values.

>>> import numpy as np, npfunc
>>> huber = np.vectorize(lambda r: np.where(abs(r) < 1, 0.5 * r * r, abs(r) - 0.5))
>>> npfunc.grad(lambda r: huber(r).sum())(np.array([-2.0, 0.5, 3.0]))
array([-1. ,  0.5,  1. ])
"""
from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import TWINS, implements
from ..core.errors import BatchedConversionError
from ..core.primitive import Composite, Sample
from ..core.values import ndim_of, shape_of
from .elementwise.arithmetic import astype
from .families import normalize_axes
from .numpy_code import HOOKED, has_tracer
from .sampling import FLOATS, array
from .shape.basic import broadcast_to, expand_dims, moveaxis, reshape, stack, transpose


def _batched(func, flat_args, size):
    """``func`` on each of ``size`` rows of ``flat_args`` (leading axis): one vmapped
    call, or NumPy's loop when the function cannot run batched."""
    from ..api.vmap import vmap

    try:
        return vmap(func)(*flat_args)
    except BatchedConversionError:
        rows = [func(*(a[i] for a in flat_args)) for i in range(size)]
    if isinstance(rows[0], tuple):
        return tuple(stack([r[k] for r in rows]) for k in range(len(rows[0])))
    return stack(rows)


def _as_array(x):
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)


# ---- np.vectorize ---------------------------------------------------------------------------


def _split_excluded(self, args, kwargs):
    """(function of the vectorized arguments, those arguments), as NumPy's ``vectorize`` splits them."""
    excluded = self.excluded
    if not kwargs and not excluded:
        return self.pyfunc, list(args)
    names = [n for n in kwargs if n not in excluded]
    inds = [i for i in range(len(args)) if i not in excluded]

    def func(*vargs):
        the_args = list(args)
        for n, i in enumerate(inds):
            the_args[i] = vargs[n]
        call_kwargs = dict(kwargs)
        call_kwargs.update(zip(names, vargs[len(inds):]))
        return self.pyfunc(*the_args, **call_kwargs)

    return func, [args[i] for i in inds] + [kwargs[n] for n in names]


def _cast(outputs, otypes):
    if not otypes:
        return outputs
    if isinstance(outputs, tuple):
        return tuple(astype(o, np.dtype(t)) for o, t in zip(outputs, otypes))
    return astype(outputs, np.dtype(otypes[0]))


def _core_dims(self):
    dims = getattr(self, "_in_and_out_core_dims", None)
    if dims is None and self.signature is not None:
        from numpy.lib._function_base_impl import _parse_gufunc_signature

        dims = _parse_gufunc_signature(self.signature)
    return dims


def _vectorize_call(self, *args, **kwargs):
    """``np.vectorize(f)(*args)`` with a traced argument: one batched call of ``f``."""
    func, vargs = _split_excluded(self, args, kwargs)
    vargs = [_as_array(a) for a in vargs]
    dims = _core_dims(self)
    if dims is None:
        shape = np.broadcast_shapes(*(tuple(shape_of(a)) for a in vargs))
        size = math.prod(shape)
        if size == 0:
            raise ValueError("cannot call `vectorize` on size 0 inputs unless `otypes` is set")
        flat = [reshape(broadcast_to(a, shape), (size,)) for a in vargs]
        out = _batched(func, flat, size)
        out = tuple(reshape(o, shape) for o in out) if isinstance(out, tuple) else reshape(out, shape)
        return _cast(out, self.otypes)
    return _cast(_vectorize_signature(func, vargs, *dims), self.otypes)


def _vectorize_signature(func, args, in_core, out_core):
    if len(args) != len(in_core):
        raise TypeError(f"wrong number of positional arguments: expected {len(in_core)}, got {len(args)}")
    sizes: dict[str, int] = {}
    loops = []
    for a, core in zip(args, in_core):
        shape, k = tuple(shape_of(a)), len(core)
        if len(shape) < k:
            raise ValueError(f"{len(shape)}-dimensional argument does not have enough dimensions for "
                             f"all core dimensions {core!r}")
        for name, n in zip(core, shape[len(shape) - k:]):
            if sizes.setdefault(name, n) != n:
                raise ValueError(f"inconsistent size for core dimension {name!r}: {n} vs {sizes[name]}")
        loops.append(shape[:len(shape) - k])
    loop = np.broadcast_shapes(*loops)
    size = math.prod(loop)
    if size == 0:
        raise ValueError("cannot call `vectorize` on size 0 inputs unless `otypes` is set")
    flat = [reshape(broadcast_to(a, loop + tuple(sizes[d] for d in core)), (size,) + tuple(sizes[d] for d in core))
            for a, core in zip(args, in_core)]
    out = _batched(func, flat, size)
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != len(out_core):
        raise ValueError(f"wrong number of outputs from pyfunc: expected {len(out_core)}, got {len(outs)}")
    shaped = []
    for o, core in zip(outs, out_core):
        core_shape = tuple(shape_of(o))[1:]
        if len(core_shape) != len(core):
            raise ValueError(f"wrong number of dimensions in pyfunc output: expected {len(core)}, "
                             f"got {len(core_shape)}")
        for name, n in zip(core, core_shape):
            if sizes.setdefault(name, n) != n:
                raise ValueError(f"inconsistent size for core dimension {name!r}: {n} vs {sizes[name]}")
        shaped.append(reshape(o, loop + core_shape))
    return tuple(shaped) if len(out_core) > 1 else shaped[0]


def _install_vectorize() -> None:
    call = np.vectorize.__call__
    call = getattr(call, "npfunc_original", call)

    def __call__(self, *args, **kwargs):
        if any(has_tracer(a) for a in args) or any(has_tracer(v) for v in kwargs.values()):
            return _vectorize_call(self, *args, **kwargs)
        return call(self, *args, **kwargs)

    __call__.__doc__ = call.__doc__
    __call__.npfunc_original = call  # type: ignore[attr-defined]
    np.vectorize.__call__ = __call__
    HOOKED["numpy.vectorize.__call__"] = __call__


_install_vectorize()


# ---- np.apply_along_axis, np.apply_over_axes --------------------------------------------------


@implements(np.apply_along_axis)
def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """``np.apply_along_axis``: ``func1d`` on every 1-D slice along ``axis``, as
    one batched call; the result's axes replace ``axis`` as in NumPy."""
    arr = _as_array(arr)
    nd = ndim_of(arr)
    axis = normalize_axes(axis, nd, "apply_along_axis")[0]
    moved = moveaxis(arr, axis, -1)
    loop = tuple(shape_of(moved))[:-1]
    size = math.prod(loop)
    if size == 0:
        raise ValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    rows = reshape(moved, (size, shape_of(moved)[-1]))
    res = _batched(lambda row: _as_array(func1d(row, *args, **kwargs)), [rows], size)
    res_shape = tuple(shape_of(res))[1:]
    buff = reshape(res, loop + res_shape)
    dims = list(range(len(loop) + len(res_shape)))
    perm = dims[:axis] + dims[len(loop):] + dims[axis:len(loop)]
    return transpose(buff, tuple(perm))


@implements(np.apply_over_axes)
def apply_over_axes(func, a, axes):
    """``np.apply_over_axes``: ``func(a, axis)`` for each axis in turn, keeping dimensions."""
    val = _as_array(a)
    n = ndim_of(val)
    for axis in ((axes,) if np.ndim(axes) == 0 else axes):
        axis = axis + n if axis < 0 else axis
        res = _as_array(func(val, axis))
        if ndim_of(res) != ndim_of(val):
            res = expand_dims(res, axis)
            if ndim_of(res) != ndim_of(val):
                raise ValueError("function is not returning an array of the correct shape")
        val = res
    return val


# ---- samples --------------------------------------------------------------------------------


def _one(*args, **params):
    return lambda rng: [Sample(*args, **params)]


def _smooth(x):
    return np.exp(-x * x) * np.sin(3.0 * x) + np.tanh(x)


def _vectorize_samples(rng):
    # float64 only: NumPy calls f on scalars, and NumPy's float32 exp/sin on scalars and on
    # arrays (SIMD loops) differ in the last bit, so float32 agrees only to rounding
    return [Sample(array(rng, (2, 3))), Sample(array(rng, (4,))), Sample(np.float64(0.3), label="0-d")]


_SMOOTH = np.vectorize(_smooth)
Composite("np.vectorize(f)(x)", lambda x: _SMOOTH(x), samples=_vectorize_samples)
_TWO = np.vectorize(lambda x, y, k: (x * y + k, np.exp(x - y)), excluded={2})
Composite("np.vectorize(f, excluded)(x, y, k): two outputs",
          lambda x, y: _TWO(x, y, 2.0),
          samples=lambda rng: [Sample(array(rng, (3,)), array(rng, (2, 1)), label="broadcast")])
_TYPED = np.vectorize(lambda x, scale: np.sqrt(1.0 + (scale * x) ** 2), otypes=[np.float32])
Composite("np.vectorize(f, otypes)(x, scale=)", lambda x, s: _TYPED(x, scale=s),
          samples=lambda rng: [Sample(array(rng, (4,)), array(rng, (4,)), label="keyword vectorized")])
_SIG = np.vectorize(lambda a, b: (a * b).sum() / (np.sqrt((a * a).sum()) + 1.0), signature="(n),(n)->()")
Composite("np.vectorize(f, signature='(n),(n)->()')", lambda a, b: _SIG(a, b),
          samples=lambda rng: [Sample(array(rng, (2, 3)), array(rng, (3,))),
                               Sample(array(rng, (2, 1, 4)), array(rng, (3, 4)), label="broadcast loops")])
_OUTER = np.vectorize(lambda v: np.outer(v, v) + 1.0, signature="(n)->(n,n)")
Composite("np.vectorize(f, signature='(n)->(n,n)')", lambda v: _OUTER(v),
          samples=lambda rng: [Sample(array(rng, (3, 2)))])


def _along_samples(rng):
    out = [Sample(array(rng, (3, 4), dt), label=f"axis 1 {np.dtype(dt).name}") for dt in FLOATS]
    return out + [Sample(array(rng, (3, 4, 2)), label="3-D")]


apply_along_axis.composite = Composite(  # type: ignore[attr-defined]
    "np.apply_along_axis(cumsum-like, 1, a)",
    lambda a: np.apply_along_axis(lambda r: np.cumsum(r) * r[0], 1, a), samples=_along_samples)
Composite("np.apply_along_axis(scalar, 0, a)",
          lambda a: np.apply_along_axis(lambda r: (r * r).sum(), 0, a), samples=_along_samples)
_W = np.array([0.5, -2.0])
Composite("np.apply_along_axis(matrix, -1, a, extra)",
          lambda a: np.apply_along_axis(lambda r, w: np.outer(r, w), -1, a, _W),
          samples=lambda rng: [Sample(array(rng, (2, 3)))])
# NumPy dispatches np.apply_along_axis on arr only: a traced extra argument with a plain arr
# reaches NumPy's loop, whose conversion error then names npfunc.numpy.apply_along_axis.
TWINS[np.apply_along_axis._implementation.__code__] = "npfunc.numpy.apply_along_axis"
apply_over_axes.composite = Composite(  # type: ignore[attr-defined]
    "np.apply_over_axes(np.sum, a, [0, 2])", lambda a: np.apply_over_axes(np.sum, a, [0, 2]),
    samples=lambda rng: [Sample(array(rng, (2, 3, 4), dt)) for dt in FLOATS])
Composite("np.apply_over_axes(max, a, -1)", lambda a: np.apply_over_axes(lambda x, ax: x.max(ax), a, -1),
          samples=lambda rng: [Sample(array(rng, (3, 4)))])
Composite("np.fromfunction(f closing over a, shape)",
          lambda a, b: np.fromfunction(lambda i, j: a * i + np.sin(b * j), (3, 4)),
          samples=lambda rng: [Sample(np.float64(0.7), np.float64(-1.2))])
