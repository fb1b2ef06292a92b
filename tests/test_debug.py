"""debug_nans finds the first NaN; debug_unwrap looks inside traced values."""
import numpy as np
import pytest

import npfunc
from npfunc.core import debug


def test_names_the_primitive_that_makes_a_nan_in_the_function():
    with npfunc.debug_nans():
        with pytest.raises(FloatingPointError, match=r"grad\(f\): debug_nans: 'log' made a NaN"):
            npfunc.grad(lambda x: np.log(x - 2.0))(np.float64(1.0))
    assert debug.FLAGS.nans is False  # restored after the error


def test_reports_a_nan_made_by_a_derivative_rule():
    f = lambda x: (np.sqrt(x) * 0.0).sum()  # noqa: E731  (0 * inf in the backward pass)
    assert np.isnan(npfunc.grad(f)(np.zeros(2))).all()  # silently NaN without the flag
    with npfunc.debug_nans(), pytest.raises(FloatingPointError, match="invalid value"):
        npfunc.grad(f)(np.zeros(2))


def test_under_vmap_the_message_names_the_stack():
    with npfunc.debug_nans(), pytest.raises(FloatingPointError, match=r"vmap\(f\).*'sqrt'"):
        npfunc.vmap(np.sqrt)(np.array([1.0, -1.0]))


def test_infinities_and_nan_inputs_are_not_reported():
    with npfunc.debug_nans():
        assert npfunc.grad(np.sqrt)(np.float64(0.0)) == np.inf
        assert np.isneginf(np.log(np.float64(0.0)))
        x = np.array([np.nan, 1.0])
        assert np.isnan(npfunc.grad(lambda v: (v * 2.0).sum())(x)).sum() == 0  # NaN came in, not made
        # the double-where pattern keeps NaN out of the branch that is not taken
        safe = lambda v: np.where(v > 0, np.sqrt(np.where(v > 0, v, 1.0)), 0.0).sum()  # noqa: E731
        np.testing.assert_allclose(npfunc.grad(safe)(np.array([0.0, 4.0])), [0.0, 0.25])


def test_can_be_switched_off_inside():
    with npfunc.debug_nans(), npfunc.debug_nans(False):
        with np.errstate(invalid="ignore"):
            out, _ = npfunc.vjp(lambda x: np.log(x - 2.0), np.float64(1.0))
            assert np.isnan(out)
    assert debug.FLAGS.nans is False


def test_debug_unwrap():
    seen = {}

    def f(x):
        seen["all"] = npfunc.debug_unwrap(x)
        seen["one"] = npfunc.debug_unwrap(x, recurse=False)
        return (x ** 2).sum()

    xs = np.arange(6.0).reshape(3, 2)
    npfunc.vmap(npfunc.grad(f))(xs)
    assert type(seen["all"]) is np.ndarray and seen["all"].shape == (3, 2)  # with the batch axis
    assert isinstance(seen["one"], npfunc.core.tracer.Tracer) and seen["one"].shape == (2,)
    assert npfunc.debug_unwrap(xs) is xs


def test_the_flag_is_per_thread():
    import threading

    seen = []
    with npfunc.debug_nans():
        t = threading.Thread(target=lambda: seen.append(debug.FLAGS.nans))
        t.start()
        t.join()
        assert debug.FLAGS.nans is True
    assert seen == [False]
