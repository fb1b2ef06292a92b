"""Shape, joining, splitting and rearranging functions (mostly composites).

Every case runs the registry checks on the composite: value vs NumPy (also
under jvp and vjp), JVP vs central differences, VJP/JVP adjoint identity,
vmap vs a Python loop over several in_dims, and second order.
"""
import numpy as np
import pytest

import npfunc
from npfunc.core.dispatch import FUNCTIONS
from npfunc.core.primitive import Sample
from npfunc.core.tracer import Tracer
from npfunc.testing import checks

RNG = np.random.default_rng(0)


def arr(*shape, dtype=np.float64):
    return RNG.uniform(-2, 2, size=shape).astype(dtype)


class Composite:
    """A NumPy-level function seen through the registry checks' eyes: ``impl``
    is NumPy itself, ``bind`` npfunc's implementation (the registered one for
    plain arrays, NumPy dispatch for traced values)."""

    differentiable = True

    def __init__(self, fn, ours=None, name=None):
        self.impl = fn
        self.ours = ours
        self.name = name or getattr(fn, "__name__", "composite")

    def bind(self, *args, **kwargs):
        if self.ours is not None and not any(isinstance(a, Tracer) for a in args):
            out = self.ours(*args, **kwargs)
        else:
            out = self.impl(*args, **kwargs)
        return tuple(out) if isinstance(out, list) else out  # the checks take tuples


def run_checks(fn, sample, second_order=True, vmap=True):
    prim = Composite(fn, FUNCTIONS.get(fn))
    rng = np.random.default_rng(1)
    checks.check_value(prim, sample)
    checks.check_jvp_fd(prim, sample, rng)
    checks.check_adjoint(prim, sample, rng)
    if vmap:
        checks.check_vmap(prim, sample, rng)
    if second_order and all(np.size(a) <= 24 for a in sample.args):
        checks.check_second_order(prim, sample, rng)


def case(fn, *args, **params):
    label = params.pop("label", "")
    return pytest.param(fn, Sample(*args, **params), id=f"{getattr(fn, '__name__', 'fn')}-{label or len(args)}")


CASES = [
    # ---- shape.py
    case(np.reshape, arr(2, 3, 4), shape=(4, 6), order="F", label="F order"),
    case(np.reshape, arr(2, 3, 4, dtype=np.float32), shape=(-1, 4)),
    case(np.ravel, arr(2, 3)),
    case(np.ravel, arr(2, 3), order="F", label="F order"),
    case(np.squeeze, arr(1, 3, 1, 2), axis=(0, -2), label="axis tuple"),
    case(np.squeeze, arr(1, 3, 1)),
    case(np.expand_dims, arr(2, 3), axis=(0, -1), label="axis tuple"),
    case(np.expand_dims, arr(2, 3, dtype=np.float32), axis=1),
    case(np.transpose, arr(2, 3, 4), axes=(1, -1, 0)),
    case(np.swapaxes, arr(2, 3, 4), axis1=0, axis2=-1),
    case(np.moveaxis, arr(2, 3, 4), source=(0, 1), destination=(-1, 0)),
    case(np.rollaxis, arr(2, 3, 4, 5), axis=3, start=1),
    case(np.rollaxis, arr(2, 3, 4, 5), axis=1, start=4, label="to the end"),
    case(np.rollaxis, arr(2, 3, 4), axis=-1, label="default start"),
    case(np.atleast_1d, arr(), label="0-d"),
    case(np.atleast_2d, arr(3), label="1-d"),
    case(np.atleast_3d, arr(3), label="1-d"),
    case(np.atleast_3d, arr(2, 3), label="2-d"),
    case(np.atleast_3d, arr(), arr(2), arr(2, 3, 1, 2), label="several"),
    case(np.broadcast_to, arr(3, 1), shape=(2, 3, 4)),
    case(np.broadcast_arrays, arr(3, 1), arr(4), arr(), label="three"),
    case(lambda a, b: np.concatenate((a, b), axis=-2), arr(2, 3), arr(1, 3), label="concatenate axis -2"),
    case(np.copy, arr(2, 3)),
    case(lambda x: x.astype(np.float32) * 2.0, arr(2, 3), label="astype to float32"),
    case(lambda x: np.astype(x, np.float64) ** 2, arr(3, dtype=np.float32), label="np.astype to float64"),
    case(lambda x: np.astype(x, np.float64), arr(3), label="np.astype same dtype"),
    # ---- joining.py
    case(lambda a, b: np.concatenate([a, b], axis=None), arr(2, 2), arr(3), label="axis None"),
    case(lambda a, b: np.concatenate([a, b], dtype=np.float32), arr(2), arr(3), label="dtype"),
    case(lambda a, b: np.stack([a, b], axis=-1), arr(2, 3), arr(2, 3), label="stack axis -1"),
    case(lambda a, b: np.vstack([a, b]), arr(3), arr(2, 3), label="vstack"),
    case(lambda a, b: np.hstack((a, b)), arr(3), arr(2), label="hstack 1-d"),
    case(lambda a, b: np.hstack((a, b)), arr(2, 3), arr(2, 1), label="hstack 2-d"),
    case(lambda a, b: np.dstack((a, b)), arr(3), arr(3), label="dstack 1-d"),
    case(lambda a, b: np.dstack((a, b)), arr(2, 3), arr(2, 3, 2), label="dstack"),
    case(lambda a, b: np.column_stack((a, b)), arr(3), arr(3, 2), label="column_stack"),
    case(np.split, arr(6, 2), indices_or_sections=3),
    case(np.split, arr(2, 7), indices_or_sections=[2, -2, 9], axis=1, label="indices"),
    case(np.split, arr(6, dtype=np.float32), indices_or_sections=[4, 2], label="decreasing"),
    case(np.array_split, arr(7, 2), indices_or_sections=3),
    case(np.hsplit, arr(2, 4), indices_or_sections=2),
    case(np.hsplit, arr(4), indices_or_sections=[1], label="1-d"),
    case(np.vsplit, arr(4, 2), indices_or_sections=2),
    case(np.dsplit, arr(1, 2, 4), indices_or_sections=[1, 3]),
    case(np.tile, arr(2, 3), reps=2),
    case(np.tile, arr(3), reps=(2, 1, 2), label="longer reps"),
    case(np.tile, arr(2, 1, 3, dtype=np.float32), reps=(2, 1), label="shorter reps"),
    case(np.repeat, arr(2, 3), repeats=2),
    case(np.repeat, arr(2, 3), repeats=3, axis=-1, label="axis"),
    case(np.repeat, arr(2, 3), repeats=[1, 0, 2], axis=1, label="per element"),
    case(np.repeat, arr(3), repeats=[2], label="length-1 list"),
    case(np.meshgrid, arr(3), arr(2), label="xy"),
    case(np.meshgrid, arr(3), arr(2), arr(2), indexing="ij", label="ij"),
    case(np.meshgrid, arr(3), arr(2, 1), sparse=True, label="sparse"),
    # ---- arranging.py
    case(np.flip, arr(2, 3, 4)),
    case(np.flip, arr(2, 3, 4), axis=(0, -1), label="tuple"),
    case(np.flip, arr(2, 3, dtype=np.float32), axis=1, label="int"),
    case(np.fliplr, arr(2, 3)),
    case(np.flipud, arr(2, 3)),
    case(np.roll, arr(2, 3), shift=2, label="flat"),
    case(np.roll, arr(2, 3), shift=-4, axis=1, label="axis"),
    case(np.roll, arr(2, 3, 4), shift=(1, 2, -1), axis=(0, 2, 0), label="tuples"),
    case(np.rot90, arr(2, 3)),
    case(np.rot90, arr(2, 3), k=2, label="k=2"),
    case(np.rot90, arr(2, 3), k=-1, label="k=-1"),
    case(np.rot90, arr(2, 3, 4), k=3, axes=(2, 1), label="axes"),
    case(np.pad, arr(2, 3), pad_width=1),
    case(np.pad, arr(2, 3), pad_width=((1, 0), (2, 3)), constant_values=((1.5, -1.0), (2.0, 3.0)),
         label="constant pairs"),
    case(np.pad, arr(3, dtype=np.float32), pad_width=(2,), constant_values=7, label="float32"),
    case(np.pad, arr(2, 3), pad_width=(1, 2), mode="edge", label="edge"),
    case(np.pad, arr(2, 3), pad_width={-1: (1, 2)}, mode="wrap", label="dict widths"),
    case(np.pad, arr(2, 4), pad_width=((1, 1), (3, 2)), mode="reflect", label="reflect"),
    case(np.pad, arr(3), pad_width=(5, 7), mode="reflect", label="reflect wide"),
    case(np.pad, arr(2, 3), pad_width=((2, 1), (3, 1)), mode="symmetric", label="symmetric"),
    case(np.pad, arr(2, 3), pad_width=((1, 2), (3, 0)), mode="wrap", label="wrap"),
    case(np.pad, arr(2, 3), pad_width=((0, 5), (7, 1)), mode="wrap", label="wrap wide"),
    case(np.diagonal, arr(3, 4)),
    case(np.diagonal, arr(3, 4), offset=1, label="offset"),
    case(np.diagonal, arr(3, 4), offset=-2, label="negative offset"),
    case(np.diagonal, arr(3, 2, 4), offset=1, axis1=0, axis2=2, label="apart"),
    case(np.diagonal, arr(2, 3, 4), axis1=-1, axis2=1, label="adjacent reversed"),
    case(np.diag, arr(3), label="1-d"),
    case(np.diag, arr(3), k=-2, label="1-d k"),
    case(np.diag, arr(3, 4), k=1, label="2-d"),
    case(np.diagflat, arr(2, 2), k=1),
    case(np.tril, arr(3, 4)),
    case(np.tril, arr(2, 3, 3), k=-1, label="stacked"),
    case(np.triu, arr(3, 4), k=1),
    case(np.triu, arr(3), label="1-d"),
    case(np.lib.stride_tricks.sliding_window_view, arr(5, 4), window_shape=(2, 3)),
    case(np.lib.stride_tricks.sliding_window_view, arr(2, 6), window_shape=3, axis=-1, label="axis"),
    case(np.lib.stride_tricks.sliding_window_view, arr(6, 2), window_shape=(2, 3), axis=(0, 0), label="repeat"),
]


@pytest.mark.parametrize("fn,sample", CASES)
def test_composite(fn, sample):
    run_checks(fn, sample)


def test_methods_route_to_npfunc():
    x = arr(2, 3)

    def f(x):
        return (x.flatten() * x.ravel()).sum() + x.repeat(2, axis=0).sum() + x.diagonal().sum() \
            + x.squeeze().T.sum()

    g = npfunc.grad(f)(x)
    np.testing.assert_allclose(g, 2 * x + 2 + np.eye(2, 3) + 1)


def test_copy_is_independent_of_the_original():
    def f(x):
        y = np.copy(x)
        y[0] = 0.0
        return (x * y).sum()

    x = arr(3)
    np.testing.assert_allclose(npfunc.grad(f)(x), np.r_[0.0, 2 * x[1:]])


def test_copy_method_is_independent_of_the_original():
    def f(x):
        y = x.copy()
        y[0] = 0.0
        return (x * y).sum()

    x = arr(3)
    np.testing.assert_allclose(npfunc.grad(f)(x), np.r_[0.0, 2 * x[1:]])


def test_pad_with_traced_constant():
    x = arr(2, 3)

    def f(x, c):
        return np.pad(x, ((1, 0), (0, 2)), constant_values=c)

    for c in (np.float64(0.7), np.array([0.5, -1.0])):
        out, (gx, gc) = npfunc.vjp(f, x, c)[0], npfunc.vjp(f, x, c)[1](np.ones((3, 5)))
        np.testing.assert_array_equal(out, np.pad(x, ((1, 0), (0, 2)), constant_values=c))
        count = np.pad(np.zeros_like(x), ((1, 0), (0, 2)), constant_values=1).sum()
        if c.ndim == 0:
            assert np.isclose(gc, count)
        else:  # c = (before, after) for every axis: 1 row of 3 + 2 columns of 3 (corners go to axis 1)
            np.testing.assert_allclose(gc, [3.0, 6.0])
        np.testing.assert_allclose(gx, np.ones_like(x))


def test_errors_match_numpy():
    with pytest.raises(ValueError, match="equal division"):
        npfunc.vmap(lambda a: np.split(a, 4))(arr(2, 6))
    with pytest.raises(ValueError):
        npfunc.grad(lambda a: np.squeeze(a, axis=0).sum())(arr(2, 3))
    with pytest.raises(ValueError, match="same number of dimensions"):
        npfunc.grad(lambda a: np.concatenate([a, a[0]]).sum())(arr(2, 3))
    with pytest.raises(np.exceptions.AxisError):
        npfunc.grad(lambda a: np.expand_dims(a, 3).sum())(arr(2, 3))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="mode"):
        npfunc.grad(lambda a: np.pad(a, 1, mode="empty").sum())(arr(3))
    with pytest.raises(npfunc.errors.UnsupportedOperationError,
                       match=r"grad\(f\): np.pad\(mode=.reflect., reflect_type=.odd.\) wider than one reflection"):
        npfunc.grad(lambda a: np.pad(a, 3, mode="reflect", reflect_type="odd").sum())(arr(3))
    with pytest.raises(ValueError, match="Input must be"):
        npfunc.grad(lambda a: np.fliplr(a).sum())(arr(3))


def test_sliding_window_conv_gradient():
    """A 2-D convolution written as einsum over sliding windows: value and
    gradients (input and kernel) against finite differences."""
    x = arr(2, 3, 6, 5)
    w = arr(4, 3, 3, 2)

    def conv(x, w):
        win = np.lib.stride_tricks.sliding_window_view(x, (3, 2), axis=(2, 3))
        return np.einsum("nchwij,ocij->nohw", win, w)

    def loss(x, w):
        return (np.tanh(conv(x, w)) ** 2).sum()

    gx, gw = npfunc.grad(loss, argnums=(0, 1))(x, w)
    eps = 1e-6
    for g, arg in ((gx, 0), (gw, 1)):
        v = RNG.standard_normal(g.shape)
        args = [x, w]
        plus = list(args)
        plus[arg] = args[arg] + eps * v
        minus = list(args)
        minus[arg] = args[arg] - eps * v
        fd = (loss(*plus) - loss(*minus)) / (2 * eps)
        assert np.isclose((g * v).sum(), fd, rtol=1e-6, atol=1e-8)
    # per-sample gradients of the kernel under vmap
    per = npfunc.vmap(npfunc.grad(lambda xi, w: loss(xi[None], w), argnums=1), in_dims=(0, None))(x, w)
    np.testing.assert_allclose(per.sum(0), gw, rtol=1e-10)


@pytest.mark.parametrize("fn", [
    lambda x: np.roll(x, 0), lambda x: np.pad(x, 0), lambda x: np.meshgrid(x)[0],
    lambda x: np.concatenate([x]), lambda x: np.tile(x, 1), lambda x: np.copy(x),
], ids=["roll", "pad", "meshgrid", "concatenate", "tile", "copy"])
def test_results_numpy_copies_are_new_objects(fn):
    """An in-place update of a result NumPy returns as a new array must not
    change the input (no aliasing through the returned tracer object)."""
    def f(x):
        y = fn(x)
        y[0] = 0.0
        return x, y

    x = arr(3)
    (x_out, y_out), _ = npfunc.vjp(f, x)
    np.testing.assert_array_equal(x_out, x)
    np.testing.assert_array_equal(y_out, np.r_[0.0, x[1:]])
