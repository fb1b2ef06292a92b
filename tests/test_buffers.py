"""The reused memory of a tape's copies of large arrays (core/buffers.py): a
buffer is handed out again only when nothing refers to it any more."""
import numpy as np
import pytest

import npfunc
from npfunc.core import buffers
from npfunc.core.tracer import keep

LARGE = buffers.MIN_BYTES // 8 * 2  # float64 elements in an array the pool copies


def _address(a):
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def empty_pool():
    buffers.clear()
    yield
    buffers.clear()


def test_a_copy_is_private_both_ways():
    x = np.arange(LARGE, dtype=np.float64)
    c = buffers.copy(x)
    assert c.shape == x.shape and c.dtype == x.dtype and c.flags.writeable
    x[0] = 7.0
    c[1] = -1.0
    assert c[0] == 0.0 and x[1] == 1.0


HOLDERS = {
    "the copy": lambda c: c,
    "a view": lambda c: c[::3],
    "an array over its memory": lambda c: np.ndarray((5,), c.dtype, c, 8, (0,)),
    "a memoryview": memoryview,
    "a reshaped transpose": lambda c: c.reshape(2, -1).T,
}


@pytest.mark.parametrize("hold", HOLDERS)
def test_memory_in_use_is_not_handed_out_again(hold):
    x = np.arange(LARGE, dtype=np.float64)
    c = buffers.copy(x)
    first = _address(c)
    held = HOLDERS[hold](c)
    del c
    again = buffers.copy(x + 1.0)
    assert _address(again) != first
    np.testing.assert_array_equal(np.asarray(held), np.asarray(HOLDERS[hold](x)))  # x's values, not x + 1's
    del held
    assert _address(buffers.copy(x)) == first  # free again


def test_memory_no_longer_used_is_reused():
    x = np.arange(LARGE, dtype=np.float64)
    c = buffers.copy(x)
    first = _address(c)
    del c
    d = buffers.copy(-x)
    assert _address(d) == first
    np.testing.assert_array_equal(d, -x)


def test_small_large_and_object_arrays_are_plain_copies():
    for x in (np.ones(4), np.ones(buffers.MAX_BYTES // 8 + 1, dtype=np.float64),
              np.array([object()] * LARGE, dtype=object)):
        c = buffers.copy(x)
        assert c.base is None and c is not x
    assert buffers._buffers == []


def test_idle_memory_stays_within_the_budget(monkeypatch):
    monkeypatch.setattr(buffers, "IDLE_BUDGET", 3 * buffers.MIN_BYTES)
    for k in range(8):  # one idle buffer of each size
        buffers.copy(np.ones(LARGE + k))
    idle = sum(b.nbytes for b in buffers._buffers)
    assert idle <= 3 * buffers.MIN_BYTES + 8 * (LARGE + 8)
    assert len(buffers._buffers) <= 2


def test_keep_copies_large_writeable_arrays_into_the_pool_and_spares_read_only_ones():
    W = np.ones((LARGE // 4, 4))
    kept = keep(W)
    assert kept is not W and np.shares_memory(kept, buffers._buffers[-1])
    W.flags.writeable = False
    assert keep(W) is W


def test_derivatives_through_reused_memory_stay_right():
    """Large closed-over constants, changed between calls and after use, and
    results that are views of a kept copy, held across later calls."""
    n = 200  # W is 320 KB: the pool keeps its copies
    rng = np.random.default_rng(0)
    W = rng.standard_normal((n, n))
    x = rng.standard_normal(n)

    def scaled_after_use(x):
        y = np.tanh(W @ x)
        W[...] *= 2.0  # the tape must keep W as it was when used
        return y.sum()

    W0 = W.copy()
    g = npfunc.grad(scaled_after_use)(x)
    np.testing.assert_allclose(g, W0.T @ (1 - np.tanh(W0 @ x) ** 2))

    J1 = npfunc.jacrev(lambda x: W @ x)(x)
    W1 = W.copy()
    W += 1.0
    J2 = npfunc.jacrev(lambda x: W @ x)(x)
    for _ in range(3):
        npfunc.jacrev(lambda x: np.sin(W @ x))(x)
    np.testing.assert_array_equal(J1, W1)  # still the first W, though later calls copied other values
    np.testing.assert_array_equal(J2, W1 + 1.0)


def test_threads_never_share_a_buffer_in_use():
    """Copies made concurrently from several threads each keep their own values."""
    import threading

    errors = []

    def work(k):
        x = np.full(LARGE, float(k))
        for _ in range(200):
            c = buffers.copy(x)
            if not (c[0] == k and c[-1] == k):
                errors.append(k)
            c[0] = -1.0  # a write into this copy must not show in another thread's

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("make", [
    lambda a: a, lambda a: a.T, lambda a: a.transpose(1, 2, 0), lambda a: a[:, ::2], lambda a: a[..., 0].T,
])
@pytest.mark.parametrize("big", [False, True])
def test_copies_keep_the_layout(make, big):
    """A kept copy is laid out as the array it copies (``order="K"``): NumPy's
    products pick their kernels, and so round, by the operands' layout."""
    n = 64 if big else 4  # 64**3 float64: pooled; 4**3: a plain copy
    x = make(np.arange(float(n ** 3)).reshape(n, n, n))
    for copied in (buffers.copy(x), keep(x)):
        want = x.copy(order="K")
        assert copied.shape == x.shape and np.array_equal(copied, x)
        assert copied.strides == want.strides
        assert not np.may_share_memory(copied, x)
