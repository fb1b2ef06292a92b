"""Natural programs about dtypes, shapes, memory layouts and scalar types.

Each program is written first as plain NumPy/SciPy, the way single-precision
imaging code, integer-count statistics, complex signal processing, empty
batches and Fortran-ordered linear algebra are written in practice; then run
under npfunc's transforms and compared with the plain program: result type
(NumPy scalar vs 0-d array), dtype, shape, flags where NumPy documents them,
values, and derivatives against central differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special

import npfunc
from npfunc.testing import numerical_jacobian

rng = np.random.default_rng(20240611)


def assert_same(got, want, rtol=0.0):
    """Same Python type, dtype, shape and (to rtol) value as NumPy's result."""
    assert type(got) is type(want), (type(got), type(want))
    assert np.asarray(got).dtype == np.asarray(want).dtype, (np.asarray(got).dtype, np.asarray(want).dtype)
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    if rtol == 0.0:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


def assert_same_tree(got, want, rtol=0.0):
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_tree(g, w, rtol)
    elif isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            assert_same_tree(got[k], want[k], rtol)
    else:
        assert_same(got, want, rtol)


# =============================================================================================
# The programs (written before looking at what npfunc supports)
# =============================================================================================

# ---- imaging, single precision ----------------------------------------------------------

def normalize_image_f32(img):
    """Per-channel standardisation of an H x W x C float32 image, clipped to
    +-3 sigma, then a soft tanh compression; stays float32 throughout."""
    mean = img.mean(axis=(0, 1), keepdims=True)
    std = img.std(axis=(0, 1), keepdims=True)
    z = (img - mean) / (std + np.float32(1e-6))
    z = np.clip(z, -3, 3)
    return np.tanh(0.5 * z)


def brightness_contrast_u8(params, img):
    """Gain/gamma correction of an 8-bit image: uint8 -> float32 in [0, 1],
    gain * x**gamma, clipped back into range."""
    gain, gamma = params
    x = img.astype(np.float32) / 255
    y = gain * x ** gamma
    return np.clip(y, 0, 1)


# ---- float32 data accumulated in float64 ------------------------------------------------

def f32_stats_f64_accum(x):
    """Sum, variance and a cumulative energy of float32 samples, each
    accumulated in float64 with dtype= (as recommended for long float32 series)."""
    total = np.sum(x, dtype=np.float64)
    mean = np.mean(x, dtype=np.float64)
    var = np.mean((x - mean) ** 2, dtype=np.float64)
    energy = np.cumsum(x * x, dtype=np.float64)
    return total + var + energy[-1] * 1e-3


# ---- counts (integers) mixed with floats ------------------------------------------------

def poisson_loglik(rates, counts):
    """Poisson log-likelihood of integer counts given positive rates; the
    log(k!) term from gammaln of the integer array."""
    return np.sum(counts * np.log(rates) - rates - scipy.special.gammaln(counts + 1))


def fraction_above(x, thr):
    """Number of samples above a threshold (NumPy integer) and their fraction."""
    n = np.sum(x > thr)
    frac = n / x.size
    return n, frac


def weighted_channel_mean(readings):
    """Detector channels weighted by their gains given as a plain list
    (np.average with list weights), plus the weighted spread."""
    gains = [1, 2, 2, 4, 1]
    mu = np.average(readings, weights=gains)
    spread = np.average((readings - mu) ** 2, weights=gains)
    return mu + np.sqrt(spread)


# ---- complex signal processing / quantum amplitudes -------------------------------------

def fir_frequency_response(h):
    """Frequency response H(w) = sum_n h_n e^{-i w n} of FIR taps on 9 frequencies."""
    n = np.arange(h.shape[-1])
    w = np.linspace(0, np.pi, 9)
    E = np.exp(-1j * np.outer(w, n))
    return E @ h


def fir_design_loss(h):
    """Least-squares low-pass design: unit gain in the passband, zero in the stopband."""
    H = fir_frequency_response(h)
    return np.sum(np.abs(H[5:]) ** 2) + np.sum((np.abs(H[:3]) - 1.0) ** 2)


_HAM = np.array([[1.0, 0.5 - 0.2j, 0.0], [0.5 + 0.2j, -0.3, 0.1j], [0.0, -0.1j, 0.7]])


def variational_energy(theta):
    """Energy <psi|H|psi> of a normalised three-level trial state with complex
    amplitudes cos(theta) + i sin(2 theta)."""
    amps = np.cos(theta) + 1j * np.sin(2 * theta)
    psi = amps / np.linalg.norm(amps)
    return np.real(np.vdot(psi, _HAM @ psi))


def f32_power_spectrum(x):
    """One-sided power spectrum of a float32 signal (NumPy 2 FFTs keep single precision)."""
    X = np.fft.rfft(x)
    return np.abs(X) ** 2


# ---- summary statistics: NumPy scalars --------------------------------------------------

def summary_statistics(x):
    """Location/spread summary of a sample, the way a report table is filled:
    each entry is a NumPy scalar."""
    return {
        "mean": np.mean(x),
        "std": np.std(x, ddof=1),
        "median": np.median(x),
        "p90": np.percentile(x, 90),
        "energy": np.einsum("i,i->", x, x),
        "peak": x[np.argmax(np.abs(x))],
    }


def scalar_types(x):
    """A reduction, an element and a ufunc of a 0-d array: all NumPy scalars."""
    s = np.sum(x)
    first = x[0]
    z = np.asarray(2.0) * s
    return s, first, z


# ---- empty batches ------------------------------------------------------------------------

def batch_squared_error(pred, target):
    """Per-feature summed squared error of a minibatch that may have zero rows."""
    err = (pred - target) ** 2
    return err.sum(axis=0)


def batch_mean_loss(pred):
    """Mean squared activation of a minibatch (nan, with NumPy's warning, when empty)."""
    return np.mean(pred ** 2)


# ---- layouts: Fortran order, strided views ----------------------------------------------

def scale_columns_fortran(A, w):
    """Column scaling of a Fortran-ordered design matrix; NumPy's ufuncs keep
    the input's layout (order='K')."""
    return A * w + 1.0


def contiguous_for_c_library(A):
    """Standardise the columns of a matrix and hand a C-contiguous copy to a
    C library (np.ascontiguousarray, as the ctypes/Cython docs say)."""
    Z = (A - A.mean(axis=0)) / A.std(axis=0)
    return np.ascontiguousarray(Z)


def fortran_for_lapack(A):
    """Prepare a column-major work array for a LAPACK-style routine."""
    work = np.asfortranarray(A * 2.0)
    return work


def haar_step(x):
    """One level of the orthonormal Haar transform: even/odd strided slices."""
    avg = (x[::2] + x[1::2]) / np.sqrt(2)
    det = (x[::2] - x[1::2]) / np.sqrt(2)
    return np.concatenate([avg, det])


# ---- keepdims, broadcasting of size-1 axes ------------------------------------------------

def softmax_keepdims(logits):
    """Numerically stable softmax over the last axis with keepdims reductions."""
    m = np.max(logits, axis=-1, keepdims=True)
    e = np.exp(logits - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def rbf_kernel_broadcast(a, b):
    """Gaussian kernel between a column (n, 1) and a row (1, m) by broadcasting."""
    return np.exp(-((a - b) ** 2))


# ---- NEP 50 promotion traps ---------------------------------------------------------------

def mixed_precision_step(w32):
    """float32 weights times a Python float stays float32; times an np.float64
    scalar promotes (NEP 50); plus an int32 ramp promotes to float64; times
    1j is complex64."""
    a = w32 * 0.5
    b = w32 * np.float64(0.5)
    c = w32 + np.arange(w32.shape[0], dtype=np.int32)
    d = w32 * 1j
    return a, b, c, d


def dtype_generic_logit(p):
    """Safe logit computed in the input's precision (at least float32): clip by
    that dtype's machine epsilon, write into an output made with empty_like."""
    dt = np.result_type(p, np.float32)
    eps = np.finfo(dt).eps
    q = np.clip(p.astype(dt, copy=False), eps, 1 - eps)
    out = np.empty_like(q)
    out[...] = np.log(q) - np.log1p(-q)
    return out


def quantize_round_trip(x):
    """Simulated float32 storage of a float64 computation: cast, compute, cast back."""
    y = x.astype(np.float32)
    return (np.sin(y) * y).astype(np.float64)


def f32_least_squares(A, b):
    """Normal equations in single precision: solve (A^T A) w = A^T b."""
    return np.linalg.solve(A.T @ A, A.T @ b)


def f32_buffer_fill(x):
    """Fill a preallocated float32 output buffer with a float64 logistic
    (NumPy casts on assignment)."""
    out = np.empty(x.shape, dtype=np.float32)
    out[:] = np.exp(x) / (1 + np.exp(x))
    return out


# =============================================================================================
# Tests
# =============================================================================================

# ---- imaging ------------------------------------------------------------------------------

def test_normalize_image_f32_values_and_dtypes():
    img = rng.random((6, 5, 3)).astype(np.float32)
    want = normalize_image_f32(img)
    assert_same(npfunc.jit(normalize_image_f32)(img), want)
    batch = np.stack([img, img[::-1].copy()])
    got = npfunc.vmap(normalize_image_f32)(batch)
    assert got.dtype == np.float32
    for i in range(2):
        np.testing.assert_allclose(got[i], normalize_image_f32(batch[i]), rtol=1e-6)
    out, tan = npfunc.jvp(normalize_image_f32, (img,), (np.ones_like(img),))
    assert_same(out, want)
    assert tan.dtype == np.float32


def test_normalize_image_f32_gradient_is_float32_and_right():
    img = rng.random((4, 4, 2)).astype(np.float32)
    weights = rng.standard_normal((4, 4, 2))

    def loss(x):
        return np.sum(normalize_image_f32(x) * weights.astype(x.dtype))

    g, v = npfunc.grad_and_value(loss)(img)
    assert_same(v, loss(img))
    assert g.dtype == np.float32 and g.shape == img.shape
    ref = numerical_jacobian(loss, img.astype(np.float64), order=4)
    np.testing.assert_allclose(g, ref, rtol=2e-3, atol=2e-4)
    # jit(grad) and grad(jit) agree with grad
    np.testing.assert_allclose(npfunc.jit(npfunc.grad(loss))(img), g, rtol=1e-6)
    np.testing.assert_allclose(npfunc.grad(npfunc.jit(loss))(img), g, rtol=1e-6)


def test_brightness_contrast_u8_batch():
    imgs = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    p32 = np.array([1.1, 0.8], np.float32)
    for params in (p32, p32.astype(np.float64)):
        got = npfunc.vmap(brightness_contrast_u8, in_dims=(None, 0))(params, imgs)
        want = np.stack([brightness_contrast_u8(params, im) for im in imgs])
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert_same(npfunc.jit(brightness_contrast_u8)(params, imgs[0]), brightness_contrast_u8(params, imgs[0]))

    def loss(p):
        return np.mean(brightness_contrast_u8(p, imgs[0]))

    g = npfunc.grad(loss)(p32)
    assert g.dtype == np.float32
    ref = numerical_jacobian(loss, p32.astype(np.float64), eps=1e-4, order=4)
    np.testing.assert_allclose(g, ref, rtol=1e-3)


# ---- float32 with float64 accumulation ----------------------------------------------------

def test_f32_stats_f64_accum():
    x = rng.standard_normal(50).astype(np.float32)
    want = f32_stats_f64_accum(x)
    assert_same(npfunc.jit(f32_stats_f64_accum)(x), want)
    g, v = npfunc.grad_and_value(f32_stats_f64_accum)(x)
    assert_same(v, want)
    assert g.dtype == np.float32
    ref = numerical_jacobian(f32_stats_f64_accum, x.astype(np.float64), order=4)
    np.testing.assert_allclose(g, ref, rtol=1e-5)
    xs = rng.standard_normal((3, 50)).astype(np.float32)
    got = npfunc.vmap(f32_stats_f64_accum)(xs)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [f32_stats_f64_accum(r) for r in xs], rtol=1e-12)


# ---- integer counts -----------------------------------------------------------------------

def test_poisson_loglik_integer_counts():
    rates = rng.random(6) + 0.5
    counts = rng.integers(0, 8, 6)
    assert_same(npfunc.jit(poisson_loglik)(rates, counts), poisson_loglik(rates, counts), rtol=1e-12)
    R = rng.random((4, 6)) + 0.5
    K = rng.integers(0, 8, (4, 6)).astype(np.int32)
    got = npfunc.vmap(poisson_loglik)(R, K)
    np.testing.assert_allclose(got, [poisson_loglik(r, k) for r, k in zip(R, K)], rtol=1e-12)
    g = npfunc.grad(poisson_loglik)(rates, counts)
    np.testing.assert_allclose(g, counts / rates - 1, rtol=1e-12)
    per_row = npfunc.vmap(npfunc.grad(poisson_loglik))(R, K)
    np.testing.assert_allclose(per_row, K / R - 1, rtol=1e-12)
    with pytest.raises(npfunc.errors.NonDifferentiableInputError, match="int"):
        npfunc.grad(poisson_loglik, argnums=1)(rates, counts)


def test_fraction_above_integer_scalar():
    x = rng.standard_normal(20)
    want = fraction_above(x, 0.1)
    assert_same_tree(npfunc.jit(fraction_above)(x, 0.1), want)
    got = npfunc.vmap(fraction_above, in_dims=(0, None))(np.stack([x, -x]), 0.1)
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    np.testing.assert_array_equal(got[0], [fraction_above(x, 0.1)[0], fraction_above(-x, 0.1)[0]])


def test_weighted_channel_mean_list_weights():
    x = rng.random(5) + 1.0
    want = weighted_channel_mean(x)
    assert_same(npfunc.jit(weighted_channel_mean)(x), want, rtol=1e-12)
    g = npfunc.grad(weighted_channel_mean)(x)
    np.testing.assert_allclose(g, numerical_jacobian(weighted_channel_mean, x, order=4), rtol=1e-6)


# ---- complex ------------------------------------------------------------------------------

def test_fir_frequency_response_complex():
    h = rng.standard_normal(5)
    want = fir_frequency_response(h)
    assert_same(npfunc.jit(fir_frequency_response)(h), want, rtol=1e-12)
    out, tan = npfunc.jvp(fir_frequency_response, (h,), (np.ones(5),))
    assert_same(out, want, rtol=1e-12)
    assert tan.dtype == np.complex128
    np.testing.assert_allclose(tan, fir_frequency_response(np.ones(5)), rtol=1e-12)
    hs = rng.standard_normal((3, 5))
    np.testing.assert_allclose(npfunc.vmap(fir_frequency_response)(hs), [fir_frequency_response(r) for r in hs], rtol=1e-12)
    # complex64 taps: NumPy promotes to complex128 through the complex128 exponential matrix
    h64 = (h + 0.5j * h[::-1]).astype(np.complex64)
    assert_same(npfunc.jit(fir_frequency_response)(h64), fir_frequency_response(h64), rtol=1e-6)


def test_fir_design_loss_gradient():
    h = rng.standard_normal(5)
    g, v = npfunc.grad_and_value(fir_design_loss)(h)
    assert_same(v, fir_design_loss(h))
    np.testing.assert_allclose(g, numerical_jacobian(fir_design_loss, h, order=4), rtol=1e-6)
    H = npfunc.hessian(fir_design_loss)(h)
    np.testing.assert_allclose(H, numerical_jacobian(npfunc.grad(fir_design_loss), h, order=4), rtol=1e-5, atol=1e-8)


def test_variational_energy_gradient():
    th = rng.random(3)
    g = npfunc.grad(variational_energy)(th)
    np.testing.assert_allclose(g, numerical_jacobian(variational_energy, th, order=4), rtol=1e-6)
    ths = rng.random((4, 3))
    np.testing.assert_allclose(npfunc.vmap(variational_energy)(ths), [variational_energy(t) for t in ths], rtol=1e-12)


def test_variational_energy_scalar_type():
    th = rng.random(3)
    want = variational_energy(th)
    assert_same(npfunc.jit(variational_energy)(th), want, rtol=1e-12)
    assert_same(npfunc.grad_and_value(variational_energy)(th)[1], want, rtol=1e-12)


def test_f32_power_spectrum_single_precision():
    s = rng.standard_normal(32).astype(np.float32)
    want = f32_power_spectrum(s)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(f32_power_spectrum)(s), want, rtol=1e-5)
    assert npfunc.jit(np.fft.rfft)(s).dtype == np.complex64
    got = npfunc.vmap(f32_power_spectrum)(np.stack([s, 2 * s]))
    assert got.dtype == np.float32
    J = npfunc.jacrev(f32_power_spectrum)(s)
    assert J.dtype == np.float32
    ref = numerical_jacobian(f32_power_spectrum, s.astype(np.float64), order=4)
    np.testing.assert_allclose(J, ref, rtol=1e-4, atol=1e-4)


# ---- NumPy scalars vs 0-d arrays --------------------------------------------------------

def test_scalar_types_of_sum_and_index():
    x = rng.standard_normal(6)
    want = scalar_types(x)
    assert_same_tree(npfunc.jit(scalar_types)(x), want)
    assert_same_tree(npfunc.jvp(scalar_types, (x,), (x,))[0], want)


def test_summary_statistics_are_numpy_scalars():
    x = rng.standard_normal(25)
    want = summary_statistics(x)
    got = npfunc.jit(summary_statistics)(x)
    assert_same_tree(got, want, rtol=1e-12)
    # the difference is observable: np.float64 is a float and hashable, a 0-d array neither
    assert all(isinstance(v, float) for v in got.values())
    out, _ = npfunc.jvp(summary_statistics, (x,), (x,))
    assert_same_tree(out, want, rtol=1e-12)


def test_summary_statistics_values_and_derivative():
    x = rng.standard_normal(25)
    want = summary_statistics(x)
    got = npfunc.jit(summary_statistics)(x)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)

    def report_score(z):
        s = summary_statistics(z)
        return s["std"] + 0.1 * s["energy"] + s["mean"]

    np.testing.assert_allclose(npfunc.grad(report_score)(x), numerical_jacobian(report_score, x, order=4), rtol=1e-6)


def test_scalar_types_of_0d_input():
    theta = np.asarray(0.7)
    f = lambda t: np.sum(t)  # noqa: E731
    assert_same(npfunc.jit(f)(theta), f(theta))
    assert_same(npfunc.jvp(f, (theta,), (theta,))[0], f(theta))


# ---- empty batches ------------------------------------------------------------------------

def test_batch_squared_error_empty():
    p = np.zeros((0, 3))
    t = np.zeros((0, 3))
    want = batch_squared_error(p, t)
    assert_same(npfunc.jit(batch_squared_error)(p, t), want)
    assert_same(npfunc.vmap(batch_squared_error)(np.zeros((2, 0, 3)), np.zeros((2, 0, 3))), np.zeros((2, 3)))
    assert_same(npfunc.vmap(batch_squared_error)(np.zeros((0, 4, 3)), np.zeros((0, 4, 3))), np.zeros((0, 3)))
    g = npfunc.grad(lambda a: batch_squared_error(a, t).sum())(p)
    assert g.shape == (0, 3) and g.dtype == np.float64
    assert npfunc.jacrev(lambda a: batch_squared_error(a, t))(p).shape == (3, 0, 3)
    assert npfunc.jacfwd(lambda a: batch_squared_error(a, t))(p).shape == (3, 0, 3)
    # and a non-empty batch for the derivative
    p = rng.standard_normal((4, 3))
    t = rng.standard_normal((4, 3))
    J = npfunc.jacrev(batch_squared_error)(p, t)
    np.testing.assert_allclose(J, numerical_jacobian(lambda a: batch_squared_error(a, t), p, order=4), rtol=1e-6, atol=1e-9)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_batch_mean_loss_empty_warns():
    p = np.zeros((0, 3))
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        want = batch_mean_loss(p)
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        got = npfunc.jit(batch_mean_loss)(p)
    assert_same(got, want)


def test_batch_mean_loss_empty_value():
    p = np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = batch_mean_loss(p)
        got = npfunc.jit(batch_mean_loss)(p)
    assert np.isnan(got) and type(got) is type(want)


# ---- layouts ------------------------------------------------------------------------------

def test_scale_columns_fortran_keeps_layout():
    A = np.asfortranarray(rng.standard_normal((5, 3)))
    w = rng.random(3)
    want = scale_columns_fortran(A, w)
    assert want.flags.f_contiguous
    got = npfunc.jit(scale_columns_fortran)(A, w)
    assert_same(got, want)
    assert got.flags.f_contiguous
    J = npfunc.jacfwd(scale_columns_fortran, argnums=1)(A, w)
    np.testing.assert_allclose(J, numerical_jacobian(lambda v: scale_columns_fortran(A, v), w, order=4), rtol=1e-8, atol=1e-10)


def test_contiguous_for_c_library_values():
    A = np.asfortranarray(rng.standard_normal((6, 3)))
    want = contiguous_for_c_library(A)
    np.testing.assert_allclose(npfunc.jit(contiguous_for_c_library)(A), want, rtol=1e-12)
    J = npfunc.jacrev(contiguous_for_c_library)(A)
    np.testing.assert_allclose(J, numerical_jacobian(contiguous_for_c_library, A, order=4), rtol=1e-6, atol=1e-9)


def test_contiguous_for_c_library_is_c_contiguous():
    A = np.asfortranarray(rng.standard_normal((6, 3)))
    want = contiguous_for_c_library(A)
    got = npfunc.jit(contiguous_for_c_library)(A)
    assert want.flags.c_contiguous
    assert got.flags.c_contiguous
    assert got.tobytes() == want.tobytes()
    assert npfunc.jit(lambda a: a.copy())(A).flags.c_contiguous
    assert npfunc.jvp(contiguous_for_c_library, (A,), (A,))[0].flags.c_contiguous


def test_like_constructors_keep_fortran_layout():
    A = np.asfortranarray(rng.standard_normal((4, 3)))

    def accumulate(a):
        """Accumulator shaped (and laid out) like the input."""
        acc = np.zeros_like(a)
        acc += a * 2.0
        return acc

    assert accumulate(A).flags.f_contiguous
    assert npfunc.jit(accumulate)(A).flags.f_contiguous
    assert npfunc.jit(lambda a: np.array(a * 1.0, order="F"))(np.ascontiguousarray(A)).flags.f_contiguous


def test_fortran_for_lapack():
    A = rng.standard_normal((4, 3))
    want = fortran_for_lapack(A)
    got = npfunc.jit(fortran_for_lapack)(A)
    assert_same(got, want)
    assert got.flags.f_contiguous


def test_haar_step_strided_and_reversed_inputs():
    base = rng.standard_normal(32)
    jf = npfunc.jit(haar_step)
    for x in (base[:16], base[::2], base[::-2], np.asfortranarray(base[:16])):
        assert_same(jf(x), haar_step(x), rtol=1e-15)
    M = rng.standard_normal((8, 3))  # signals in the columns: in_dims=1 on a non-contiguous batch axis
    got = npfunc.vmap(haar_step, in_dims=1)(M)
    np.testing.assert_allclose(got, [haar_step(M[:, j]) for j in range(3)], rtol=1e-15)
    x = base[::2]
    np.testing.assert_allclose(npfunc.jacrev(haar_step)(x), numerical_jacobian(haar_step, x, order=4), atol=1e-9)


def test_reshape_of_fortran_and_strided_inputs_same_jit():
    """One jitted function called on C, F, strided and reversed arrays of the same shape."""
    def unfold(a):
        return (a * 2.0).reshape(-1), a.T.ravel(), a.reshape(4, 3)

    jf = npfunc.jit(unfold)
    C = rng.standard_normal((3, 4))
    for X in (C, np.asfortranarray(C), rng.standard_normal((6, 8))[::2, ::2], rng.standard_normal((4, 3)).T, C[::-1, ::-1]):
        assert_same_tree(jf(X), unfold(X))


# ---- keepdims softmax and broadcasting ----------------------------------------------------

def test_softmax_keepdims_float32_derivatives():
    L = rng.standard_normal((3, 5)).astype(np.float32)
    want = softmax_keepdims(L)
    assert_same(npfunc.jit(softmax_keepdims)(L), want)
    got = npfunc.vmap(softmax_keepdims)(L)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ref = numerical_jacobian(softmax_keepdims, L[0].astype(np.float64), order=4)
    for J in (npfunc.jacrev(softmax_keepdims)(L[0]), npfunc.jacfwd(softmax_keepdims)(L[0])):
        assert J.dtype == np.float32 and J.shape == (5, 5)
        np.testing.assert_allclose(J, ref, rtol=1e-4, atol=1e-6)
    H = npfunc.hessian(lambda z: softmax_keepdims(z)[0])(L[0])
    assert H.dtype == np.float32
    (ct,) = npfunc.vjp(softmax_keepdims, L)[1](np.ones_like(L))
    assert ct.dtype == np.float32 and ct.shape == L.shape


def test_rbf_kernel_broadcast_shapes():
    a = rng.standard_normal((3, 1))
    b = rng.standard_normal((1, 4))
    assert_same(npfunc.jit(rbf_kernel_broadcast)(a, b), rbf_kernel_broadcast(a, b))
    ga, gb = npfunc.grad(lambda u, v: rbf_kernel_broadcast(u, v).sum(), argnums=(0, 1))(a, b)
    assert ga.shape == (3, 1) and gb.shape == (1, 4)
    np.testing.assert_allclose(ga, numerical_jacobian(lambda u: rbf_kernel_broadcast(u, b).sum(), a, order=4), rtol=1e-6)
    np.testing.assert_allclose(gb, numerical_jacobian(lambda v: rbf_kernel_broadcast(a, v).sum(), b, order=4), rtol=1e-6)
    Ja, Jb = npfunc.jacrev(rbf_kernel_broadcast, argnums=(0, 1))(a, b)
    assert Ja.shape == (3, 4, 3, 1) and Jb.shape == (3, 4, 1, 4)
    As = rng.standard_normal((2, 3, 1))
    got = npfunc.vmap(rbf_kernel_broadcast, in_dims=(0, None))(As, b)
    np.testing.assert_allclose(got, [rbf_kernel_broadcast(x, b) for x in As], rtol=1e-15)


# ---- promotion traps ----------------------------------------------------------------------

def test_mixed_precision_step_nep50():
    w = rng.standard_normal(4).astype(np.float32)
    want = mixed_precision_step(w)
    assert [r.dtype for r in want] == [np.float32, np.float64, np.float64, np.complex64]
    assert_same_tree(npfunc.jit(mixed_precision_step)(w), want)
    got = npfunc.vmap(mixed_precision_step)(np.stack([w, 2 * w]))
    assert [r.dtype for r in got] == [r.dtype for r in want]
    out, tan = npfunc.jvp(mixed_precision_step, (w,), (np.ones_like(w),))
    assert_same_tree(out, want)
    assert [t.dtype for t in tan] == [r.dtype for r in want]


def test_dtype_generic_logit_precisions_and_compositions():
    for dt in (np.float16, np.float32, np.float64):
        p = rng.uniform(0.01, 0.99, 6).astype(dt)
        want = dtype_generic_logit(p)
        assert_same(npfunc.jit(dtype_generic_logit)(p), want)
        got = npfunc.vmap(npfunc.jit(dtype_generic_logit))(np.stack([p, p[::-1]]))
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got[1], dtype_generic_logit(p[::-1]))
        _, tan = npfunc.jvp(dtype_generic_logit, (p,), (np.ones_like(p),))
        assert tan.dtype == want.dtype
        g = npfunc.grad(lambda z: dtype_generic_logit(z).sum())(p)
        assert g.dtype == dt
        q = want.dtype.type
        np.testing.assert_allclose(g, 1 / (p.astype(q) * (1 - p.astype(q))), rtol=5e-3 if dt == np.float16 else 1e-5)
    P = rng.uniform(0.05, 0.95, (3, 4)).astype(np.float32)
    G = npfunc.jit(npfunc.vmap(npfunc.grad(lambda z: dtype_generic_logit(z).sum())))(P)
    assert G.dtype == np.float32
    np.testing.assert_allclose(G, 1 / (P * (1 - P)), rtol=1e-5)
    with pytest.raises(npfunc.errors.NonDifferentiableInputError, match="int32"):
        npfunc.grad(lambda z: dtype_generic_logit(z).sum())(np.arange(3, dtype=np.int32))
    k = np.arange(1, 4, dtype=np.int32)
    assert_same(npfunc.jit(dtype_generic_logit)(k), dtype_generic_logit(k))


def test_quantize_round_trip():
    x = rng.standard_normal(8)
    want = quantize_round_trip(x)
    assert_same(npfunc.jit(quantize_round_trip)(x), want)
    out, tan = npfunc.jvp(quantize_round_trip, (x,), (np.ones(8),))
    assert_same(out, want)
    assert tan.dtype == np.float64
    g, v = npfunc.grad_and_value(lambda z: quantize_round_trip(z).sum())(x)
    assert_same(v, want.sum())
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.sin(x) + x * np.cos(x), rtol=1e-5)


def test_f32_least_squares():
    A = rng.standard_normal((8, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    want = f32_least_squares(A, b)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(f32_least_squares)(A, b), want, rtol=1e-5)
    Bs = rng.standard_normal((3, 8)).astype(np.float32)
    got = npfunc.vmap(f32_least_squares, in_dims=(None, 0))(A, Bs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [f32_least_squares(A, r) for r in Bs], rtol=1e-4)
    g = npfunc.grad(lambda M: f32_least_squares(M, b).sum())(A)
    assert g.dtype == np.float32
    ref = numerical_jacobian(lambda M: f32_least_squares(M, b.astype(np.float64)).sum(), A.astype(np.float64), order=4)
    np.testing.assert_allclose(g, ref, rtol=1e-3, atol=1e-4)


def test_f32_buffer_fill():
    """A preallocated float32 buffer (np.empty made in the function) takes the traced
    float64 values cast as NumPy casts them on assignment: NumPy's dtype and values."""
    x = rng.standard_normal(6)
    want = f32_buffer_fill(x)
    assert_same(npfunc.jit(f32_buffer_fill)(x), want)
    out, tan = npfunc.jvp(f32_buffer_fill, (x,), (np.ones(6),))
    assert_same(out, want)
