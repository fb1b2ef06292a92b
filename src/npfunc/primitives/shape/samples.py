"""Sample builders for the shape functions (reshape, joining, splitting,
rearranging), called as users call them: float64 and float32, negative axes,
every keyword that changes the result, and int8/bool arrays (whose dtype
must survive the rearrangement under vmap and jit)."""
from __future__ import annotations

import numpy as np

from ...core.primitive import Sample
from ..sampling import FLOATS, array, bool_array, int8_array


def _typed(rng, shape):
    """The same shape in every dtype a rearrangement must keep."""
    return [array(rng, shape, dt) for dt in FLOATS] + [int8_array(rng, shape), bool_array(rng, shape)]


def samples(build):
    """``build(rng, x)`` -> [Sample] for each dtype of a (2, 3, 4) array, plus its own extras."""
    def make(rng):
        out = []
        for x in _typed(rng, (2, 3, 4)):
            out += build(x)
        return out

    return make


reshape = samples(lambda x: [Sample(x, (4, 6)), Sample(x, (-1,)), Sample(x, (3, -1), order="F"),
                             Sample(x, shape=(6, 1, 4)), Sample(x[0, 0], (2, 2), order="A"),
                             Sample(x, x.shape, label="same shape")])
ravel = samples(lambda x: [Sample(x), Sample(x, order="F"), Sample(x[0, 0], "K"), Sample(x[0, 0], order="A")])
transpose = samples(lambda x: [Sample(x), Sample(x, (1, 0, 2)), Sample(x, axes=(-1, 0, 1))])
moveaxis = samples(lambda x: [Sample(x, 0, -1), Sample(x, (0, 1), (2, 0)), Sample(x, -1, 1)])
swapaxes = samples(lambda x: [Sample(x, 0, 2), Sample(x, -1, 1), Sample(x, 1, 1)])
rollaxis = samples(lambda x: [Sample(x, 2), Sample(x, 0, 3), Sample(x, -1, 1), Sample(x, 1, 1)])
expand_dims = samples(lambda x: [Sample(x, 0), Sample(x, -1), Sample(x, (0, 4)), Sample(x, axis=(1, -2))])
matrix_transpose = samples(lambda x: [Sample(x), Sample(x[0])])
copy = samples(lambda x: [Sample(x), Sample(x, order="F")])
atleast_nd = samples(lambda x: [Sample(x), Sample(x[0]), Sample(x[0, 0]), Sample(x[0, 0, 0]),
                                Sample(x[0, 0], x[0], label="two arrays")])


def _squeeze(rng):
    out = []
    for x in _typed(rng, (1, 3, 1, 2)):
        out += [Sample(x), Sample(x, 0), Sample(x, axis=(0, -2)), Sample(x, -2)]
    return out + [Sample(array(rng, (1, 1)), label="all ones")]


def _broadcast_to(rng):
    out = []
    for x in _typed(rng, (3, 1)):
        out += [Sample(x, (2, 3, 4)), Sample(x, (3, 1)), Sample(x, shape=(0, 3, 5))]
    return out + [Sample(array(rng, ()), (2, 2), label="0-d"), Sample(array(rng, (4,)), 4, label="int shape")]


def _broadcast_arrays(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 1), dt), array(rng, (4,), dt)),
                Sample(array(rng, (2, 3), dt), array(rng, (), dt), array(rng, (1, 3), dt))]
    return out + [Sample(array(rng, (3, 1)), bool_array(rng, (1, 2)), label="mixed dtypes"),
                  Sample(array(rng, (2,)), label="one array")]


def _astype(rng):
    out = []
    for x in _typed(rng, (2, 3)):
        out += [Sample(x, np.float64), Sample(x, np.float32), Sample(x, np.int8),
                Sample(x, np.complex128), Sample(x, x.dtype, copy=False, label="same dtype")]
    return out + [Sample(array(rng, (3,)), bool, label="to bool")]


def joined(extra=None, same_shape: bool = False, one_d: bool = True):
    """Samples for the stack family: several arrays (called as one list)."""
    def make(rng):
        out = []
        for dt in FLOATS:
            a = array(rng, (2, 3), dt)
            out += [Sample(a, array(rng, (2, 3), dt)),
                    Sample(a, array(rng, (2, 3), dt), array(rng, (2, 3), dt))]
        out += [Sample(array(rng, (2, 3)), array(rng, (2, 3), np.float32), label="mixed precision"),
                Sample(int8_array(rng, (2, 3)), bool_array(rng, (2, 3)), label="int8 and bool"),
                Sample(array(rng, (2, 3)), label="one array")]
        if one_d:
            out.append(Sample(array(rng, (3,)), array(rng, (3,)), label="1-d"))
        if not same_shape:
            out.append(Sample(array(rng, (2, 3)), array(rng, (2, 3)), array(rng, (2, 3)), label="three"))
        if extra is not None:
            out += extra(rng)
        return out

    return make


def _concatenate_extra(rng):
    a, b = array(rng, (2, 3)), array(rng, (4, 3))
    return [Sample(a, b, label="different lengths"), Sample(a, array(rng, (2, 5)), axis=1),
            Sample(a, array(rng, (2, 1)), axis=-1), Sample(a, b, axis=None),
            Sample(a, array(rng, (4, 3), np.float32), dtype=np.float32, label="dtype="),
            Sample(a, array(rng, (0, 3)), label="empty piece"),
            Sample(int8_array(rng, (2, 3)), array(rng, (1, 3)), label="int8 and float")]


def _stack_extra(rng):
    a, b = array(rng, (2, 3)), array(rng, (2, 3))
    return [Sample(a, b, axis=1), Sample(a, b, axis=-1), Sample(a, b, dtype=np.float32, label="dtype="),
            Sample(array(rng, ()), array(rng, ()), label="0-d")]


def _vstack_extra(rng):
    return [Sample(array(rng, (2, 3, 2)), array(rng, (1, 3, 2)), label="3-d"),
            Sample(array(rng, ()), array(rng, ()), label="0-d")]


def _dstack_extra(rng):
    return [Sample(array(rng, (2, 3, 2)), array(rng, (2, 3, 1)), label="3-d"),
            Sample(array(rng, ()), array(rng, ()), label="0-d")]


def _hstack_extra(rng):
    return [Sample(array(rng, (2, 3)), array(rng, (2, 1)), label="different widths"),
            Sample(array(rng, (2,)), array(rng, (4,)), label="1-d lengths"),
            Sample(array(rng, ()), array(rng, (2,)), label="0-d and 1-d")]


def _column_stack_extra(rng):
    return [Sample(array(rng, (3,)), array(rng, (3, 2)), label="1-d and 2-d")]


concatenate = joined(_concatenate_extra)
stack = joined(_stack_extra, same_shape=True)
vstack = joined(_vstack_extra)
hstack = joined(_hstack_extra)
dstack = joined(_dstack_extra)
column_stack = joined(_column_stack_extra)


def _split(rng, fixed_axis=None, min_ndim=1):
    out = []
    for x in _typed(rng, (4, 6, 2)):
        out += [Sample(x, 2), Sample(x, [1, 3])]
        if fixed_axis is None:
            out += [Sample(x, 3, axis=1), Sample(x, [0, 2, 2, 5], axis=-2), Sample(x, [-1], axis=0),
                    Sample(x, 1, axis=2)]
    if min_ndim <= 1:
        out.append(Sample(array(rng, (6,)), [2, 10], label="index past the end"))
    return out


def split(kind=None):
    """``np.split`` (``kind=None``), ``array_split`` (uneven), or one of hsplit/vsplit/dsplit."""
    def make(rng):
        if kind == "array_split":
            out = _split(rng)
            x = array(rng, (5, 3))
            return out + [Sample(x, 3, label="uneven"), Sample(x, 2, axis=1, label="uneven"),
                          Sample(x, 7, label="more sections than entries")]
        if kind is None:
            return _split(rng)
        return _split(rng, fixed_axis=True, min_ndim={"hsplit": 1, "vsplit": 2, "dsplit": 3}[kind])

    return make


def _unstack(rng):
    out = []
    for x in _typed(rng, (3, 2, 4)):
        out += [Sample(x), Sample(x, axis=1), Sample(x, axis=-1)]
    return out


def _tile(rng):
    out = []
    for x in _typed(rng, (2, 3)):
        out += [Sample(x, 2), Sample(x, (2, 1)), Sample(x, (2, 1, 3)), Sample(x, (1, 1))]
    return out + [Sample(array(rng, ()), 3, label="0-d"), Sample(array(rng, (2, 3)), 0, label="zero reps")]


def _repeat(rng):
    out = []
    for x in _typed(rng, (2, 3)):
        out += [Sample(x, 2), Sample(x, 3, axis=0), Sample(x, [1, 0, 2], axis=1), Sample(x, 2, axis=-1)]
    return out + [Sample(array(rng, (3,)), [2, 1, 3], label="list of counts"),
                  Sample(array(rng, ()), 2, label="0-d")]


def _meshgrid(rng):
    out = []
    for dt in FLOATS:
        x, y = array(rng, (3,), dt), array(rng, (2,), dt)
        out += [Sample(x, y), Sample(x, y, indexing="ij"), Sample(x, y, sparse=True),
                Sample(x, y, array(rng, (4,), dt), indexing="ij", sparse=True)]
    return out + [Sample(array(rng, (3,)), label="one array"),
                  Sample(array(rng, (2, 2)), array(rng, (3,)), label="2-d input is flattened"),
                  Sample(array(rng, (3,)), int8_array(rng, (2,)), copy=False, label="int8")]


def _sliding_window_view(rng):
    out = []
    for x in _typed(rng, (5, 4)):
        out += [Sample(x, 3, axis=0), Sample(x, (2, 2)), Sample(x, 2, axis=-1),
                Sample(x, (2, 3), axis=(0, 0))]
    return out + [Sample(array(rng, (6,)), 3, label="1-d")]


# ---- rearranging ------------------------------------------------------------------------

flip = samples(lambda x: [Sample(x), Sample(x, 0), Sample(x, axis=-1), Sample(x, (0, 2)), Sample(x, ())])
fliplr = samples(lambda x: [Sample(x), Sample(x[0])])
flipud = samples(lambda x: [Sample(x), Sample(x[0, 0])])
roll = samples(lambda x: [Sample(x, 2), Sample(x, -1, 1), Sample(x, (1, 2), axis=(0, -1)),
                          Sample(x, 5, axis=2), Sample(x, (1, 1), (1, 1), label="same axis twice"),
                          Sample(x, 0, 0)])
rot90 = samples(lambda x: [Sample(x), Sample(x, 2), Sample(x, -1), Sample(x, 3, axes=(2, 0)),
                           Sample(x, k=1, axes=(-1, -2)), Sample(x, 4)])
diagonal = samples(lambda x: [Sample(x), Sample(x, 1), Sample(x, -1, 1, 2), Sample(x, 0, -1, 0),
                              Sample(x, offset=2, axis1=2, axis2=1), Sample(x, 9, label="offset past the edge")])
triangle = samples(lambda x: [Sample(x), Sample(x, 1), Sample(x, k=-1), Sample(x[0]), Sample(x[0, 0], 1),
                              Sample(x, 5)])


def _diag(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3,), dt)), Sample(array(rng, (3,), dt), 1), Sample(array(rng, (3,), dt), -2),
                Sample(array(rng, (3, 4), dt)), Sample(array(rng, (3, 4), dt), k=2), Sample(array(rng, (4, 3), dt), -1)]
    return out + [Sample(int8_array(rng, (3,)), 1, label="int8"), Sample(bool_array(rng, (3, 3)), label="bool"),
                  Sample(array(rng, (0,)), label="empty")]


def _diagflat(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (2, 2), dt)), Sample(array(rng, (3,), dt), 1), Sample(array(rng, (3,), dt), k=-1)]
    return out + [Sample(int8_array(rng, (2, 2)), label="int8"), Sample(array(rng, ()), label="0-d")]


def _pad(rng):
    out = []
    for x in _typed(rng, (2, 3)):
        out += [Sample(x, 1), Sample(x, ((1, 2), (0, 1))), Sample(x, (2, 1), mode="edge"),
                Sample(x, 2, "reflect"), Sample(x, ((1, 1), (2, 2)), mode="symmetric"),
                Sample(x, ((3, 0), (4, 5)), mode="wrap")]
    x = array(rng, (2, 3))
    out += [Sample(x, 1, constant_values=2.5), Sample(x, ((1, 0), (0, 2)), constant_values=((1, 2), (3, 4))),
            Sample(x, (1,), constant_values=(-1.0,)), Sample(x, {1: (1, 2)}, label="dict pad_width"),
            Sample(x, 5, mode="reflect", label="reflect wider than the array"),
            Sample(x, 4, mode="symmetric", reflect_type="even"),
            Sample(array(rng, (2, 3), np.float32), 1, constant_values=np.float64(0.5),
                   label="float64 constant into float32"),
            Sample(int8_array(rng, (3,)), 2, constant_values=1.7, label="float constant into int8"),
            Sample(array(rng, (2, 3)), 0, label="no padding"),
            Sample(x, ((1, 1), (2, 1)), mode="reflect", reflect_type="odd"),
            Sample(x, 2, mode="symmetric", reflect_type="odd"),
            Sample(x, ((1, 2), (2, 1)), mode="mean"), Sample(x, 2, mode="maximum", stat_length=2, kink=True),
            Sample(x, ((2, 1), (1, 3)), mode="minimum", stat_length=((1, 2), (2, 1)), kink=True),
            Sample(array(rng, (2, 5)), 2, mode="median", kink=True),
            Sample(int8_array(rng, (4,)), 2, mode="mean", label="mean of integers, rounded"),
            Sample(x, ((1, 2), (3, 1)), mode="linear_ramp", end_values=((0.5, -1.0), (2.0, 0.0))),
            Sample(int8_array(rng, (4,)), 3, mode="linear_ramp", end_values=5, label="integer ramp, floored")]
    return out


# ---- metadata: the tests use the answer as code does, so that it must be the
# logical (unbatched, traced-dtype) value under every transform -------------------------

def _metadata(rng):
    out = []
    for x in _typed(rng, (2, 3)):
        out += [Sample(x), Sample(x[0, 0], label="0-d")]
    return out + [Sample(array(rng, (2,)) + 1j * array(rng, (2,)), label="complex")]


def _size(rng):
    x = array(rng, (2, 3, 4))
    return _metadata(rng) + [Sample(x, 1), Sample(x, axis=-1), Sample(x, (0, 2))]


def _result_type(rng):
    out = []
    for dt in FLOATS:
        x = array(rng, (2, 3), dt)
        out += [Sample(x, array(rng, (3,), np.float64)), Sample(x, int8_array(rng, (3,))),
                Sample(x, 1.5), Sample(x, np.float32), Sample(x, np.complex64)]
    return out + [Sample(int8_array(rng, (3,)), bool_array(rng, (3,))), Sample(bool_array(rng, (2,)), 2),
                  Sample(int8_array(rng, (3,)), np.float32(1.0), label="NumPy scalar")]


def uses_metadata(target):
    """``target`` (np.shape, np.ndim ...) called as code uses its answer."""
    name = target.__name__
    if name == "shape":
        call = lambda x: np.broadcast_to(x, (2,) + target(x))  # noqa: E731
    elif name == "result_type":
        call = lambda x, *others: np.astype(x, target(x, *others))  # noqa: E731
    else:
        call = lambda x, *args, **kw: x * target(x, *args, **kw)  # noqa: E731
    call.__name__ = f"uses_{name}"
    return call


metadata = _metadata
size = _size
result_type = _result_type


def diag_indices_from(rng):
    return [Sample(x) for x in _typed(rng, (3, 3))] + [Sample(array(rng, (2, 2, 2)), label="3-d cube")]


def tri_indices_from(rng):
    out = []
    for x in _typed(rng, (3, 3)):
        out += [Sample(x), Sample(x, 1), Sample(x, k=-1)]
    return out + [Sample(array(rng, (3, 4)), 2, label="rectangular")]


def uses_indices(target):
    """``np.*_indices_from`` called as code uses its answer: to index the array."""
    def call(x, *args, **kwargs):
        return x[target(x, *args, **kwargs)]

    call.__name__ = f"uses_{target.__name__}"
    return call
