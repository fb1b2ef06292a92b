"""Natural programs from electromagnetism, optics and waves, with complex numbers, written
first as plain NumPy/SciPy and then run under npfunc's transforms (jit, vmap, grad, jacrev,
jacfwd, hessian, jvp, vjp, linearize, functionalize, checkpoint) against the plain program
(type, dtype, shape, value, side effects) and against five-point differences (for complex
inputs in both real directions: the torch convention dL/dx + i dL/dy).

Programs:
  * Fresnel coefficients (complex index, metals, Brewster angle, R + T = 1);
  * Snell refraction in vector form with an early return at total internal reflection;
  * thin-film stacks by 2x2 characteristic matrices (loop of np.array([[...]]) @), spectra by vmap;
  * angular-spectrum propagation and phase retrieval, Fraunhofer patterns in float32, chirped
    pulses through dispersion (an in-place multiply of a plain spectrum), Gerchberg-Saxton,
    Zernike aberrations and Strehl ratio (a complex pupil buffer), phase-shifting
    interferometry with np.unwrap, split-step beam propagation with checkpointed steps;
  * phased arrays: array factor, pattern in dB, sidelobe loss in complex weights, MVDR
    beamforming by np.linalg.solve, planar-array directivity (einsum, double trapezoid);
  * Jones calculus (polariser, wave plates, Malus), Stokes parameters as a dict, ellipse
    angles, Mueller matrices by np.kron, np.diag of a list of traced scalars;
  * waveguides: rectangular-guide dispersion (complex sqrt, np.emath.sqrt), Sellmeier group
    index and GVD by nested grad, slab modes by brentq, leaky modes by Newton from a complex
    start, directional couplers by scipy.linalg.expm, waveguide-array supermodes by eigh, a
    PT-symmetric dimer by the non-Hermitian np.linalg.eig;
  * scattering: Mie coefficients with spherical_jn/yn (derivative=True), the Bohren-Huffman
    bhmie transcription (recurrences into np.zeros buffers, plain or np.zeros_like of the
    traced index), PEC cylinders with Hankel
    functions, modified spherical Bessel functions (spherical_in/kn);
  * diffraction with special functions: knife edge (Fresnel integrals), Airy disk (double
    where), N-slit gratings with np.divide(..., out=, where=);
  * resonators and materials: Gaussian beams through ABCD systems (complex q), ring
    resonators, Fabry-Perot etalons in float32, Drude metals and surface plasmons, n + i kappa
    tables from permittivities, metal indices by np.emath.power;
  * time-domain waves: 1D FDTD with in-place slice updates;
  * complex arrays updated in place (phase screens, .real/.imag view writes), intensity
    spellings in complex64 (abs**2, z z*, vdot), complex values into a real buffer;
  * plane-wave decomposition by complex lstsq, 1D photonic-crystal Bloch bands (complex arccos,
    band gaps on the branch cut), np.real_if_close;
  * microwave networks: transmission-line return loss, S/T-matrix cascades;
  * Poynting vectors of complex phasors (np.cross), IQ demodulation returning a dict;
  * dipole radiation resistance (scipy.special.sici), the field of a current loop (ellipk and
    ellipe, and the AGM written out);
  * a zoomed power spectrum by the chirp-z transform (scipy.signal.czt);
  * a tabulated beam read through a grid interpolator at traced detector offsets.

Findings fixed here (each with its regression test): np.divide(..., out=, where=) leaked NaN
into Jacobians; arcsin/arccos/arcsinh/arccosh derivatives had the wrong sign on branch cuts;
newton from a complex x0 dropped the imaginary part of the root under jit/vmap; complex values
written into a real traced buffer raised a bare TypeError; the twin hint of SciPy's shared
spherical-Bessel wrapper named spherical_jn for spherical_in/kn; x.transpose(np.int64(-1)) of
a 1-d array (scipy.signal.czt) raised a raw TypeError; np.emath was refused under the wrong
name (it now runs on traced values); checkpoint of a closure over a traced value returned an
escaped tracer under jit (it now runs inline); a plain SciPy RegularGridInterpolator called on
traced points raised a raw TypeError under grad (a twin of it now evaluates them).  Strict
xfail: np.divide(where=) warns/raises where NumPy does not compute.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.special as sps

import npfunc
from natural_checks import assert_deriv, assert_same, fd


def fd_complex(f, z, eps=1e-6):
    """The torch-convention gradient of a real scalar loss of a complex array,
    dL/dx + i dL/dy, by five-point differences in each of the two real directions."""
    z = np.asarray(z, dtype=complex)
    g = np.zeros(z.shape, dtype=complex)
    for idx in np.ndindex(z.shape):
        for direction in (1.0, 1j):
            def along(h):
                zz = z.copy()
                zz[idx] += h * direction
                return float(f(zz))
            d = (-along(2 * eps) + 8 * along(eps) - 8 * along(-eps) + along(-2 * eps)) / (12 * eps)
            g[idx] += d * direction
    return g


def assert_jit_replays(f, *argsets, rtol=1e-12, **jit_kwargs):
    """One jit object called on each argument set (the first records, the others replay),
    every result the plain program's."""
    jf = npfunc.jit(f, **jit_kwargs)
    for args in argsets:
        got, want = jf(*args), f(*args)
        if isinstance(want, tuple):
            for g, w in zip(got, want):
                assert_same(g, w, rtol=rtol)
        else:
            assert_same(got, want, rtol=rtol)


# ---- 1. Fresnel coefficients ----------------------------------------------------------------


def fresnel(n1, n2, theta_i):
    """Amplitude reflection and transmission for s and p polarisation at a planar
    interface; n2 may be complex (absorbing), the transmitted cosine by the complex
    Snell law."""
    cos_i = np.cos(theta_i)
    sin_t = n1 * np.sin(theta_i) / n2
    cos_t = np.sqrt(1 - sin_t**2 + 0j)
    rs = (n1 * cos_i - n2 * cos_t) / (n1 * cos_i + n2 * cos_t)
    rp = (n2 * cos_i - n1 * cos_t) / (n2 * cos_i + n1 * cos_t)
    ts = 2 * n1 * cos_i / (n1 * cos_i + n2 * cos_t)
    tp = 2 * n1 * cos_i / (n2 * cos_i + n1 * cos_t)
    return rs, rp, ts, tp


def reflectance_unpolarised(theta, n2):
    rs, rp, _, _ = fresnel(1.0, n2, theta)
    return 0.5 * (np.abs(rs) ** 2 + np.abs(rp) ** 2)


def test_fresnel_reflectance_jit_vmap_and_grad_in_angle():
    theta = np.linspace(0.05, 1.4, 7)
    n2 = 1.5 + 0.02j
    want = reflectance_unpolarised(theta, n2)
    assert want.dtype == np.float64
    jf = npfunc.jit(reflectance_unpolarised)
    assert_same(jf(theta, n2), want)
    assert_same(jf(theta[::-1].copy(), n2), reflectance_unpolarised(theta[::-1].copy(), n2))
    assert_deriv(npfunc.jacfwd(reflectance_unpolarised)(theta, n2), fd(lambda t: reflectance_unpolarised(t, n2), theta))
    assert_deriv(npfunc.vmap(npfunc.grad(reflectance_unpolarised), in_dims=(0, None))(theta, n2),
                 np.diag(fd(lambda t: reflectance_unpolarised(t, n2), theta)))


def test_fresnel_grad_in_complex_index_and_scalar_types():
    theta = 0.7
    n2 = np.complex128(0.2 + 3.1j)   # a metal
    want = reflectance_unpolarised(theta, n2)
    assert_same(npfunc.jit(reflectance_unpolarised)(np.float64(theta), n2),
                want)
    g = npfunc.grad(reflectance_unpolarised, argnums=1)(theta, n2)
    np.testing.assert_allclose(g, fd_complex(lambda n: reflectance_unpolarised(theta, n), n2), rtol=1e-6)
    # Brewster's angle for a dielectric: the p reflectance vanishes and is stationary there
    n = 1.5
    tb = np.arctan(n)
    rp_sq = lambda t: np.abs(fresnel(1.0, n, t)[1]) ** 2
    assert abs(rp_sq(tb)) < 1e-25
    assert abs(npfunc.grad(rp_sq)(tb)) < 1e-10
    # energy balance R + T = 1 for a lossless interface, also under jit
    def energy(t):
        rs, rp, ts, tp = fresnel(1.0, n, t)
        cos_t = np.sqrt(1 - (np.sin(t) / n) ** 2)
        T_s = n * cos_t / np.cos(t) * np.abs(ts) ** 2
        return np.abs(rs) ** 2 + T_s
    ts_ = np.linspace(0.0, 1.2, 5)
    assert_same(npfunc.jit(energy)(ts_), energy(ts_))
    np.testing.assert_allclose(energy(ts_), 1.0)
    assert_deriv(npfunc.jacrev(energy)(ts_), np.zeros((5, 5)), atol=1e-12)


# ---- 2. Snell refraction in vector form ---------------------------------------------------------


def refract(d, normal, eta):
    """Refract unit direction d at a surface with unit normal (facing the incoming
    ray); returns None at total internal reflection (the early return)."""
    cos_i = -np.dot(normal, d)
    sin2_t = eta**2 * (1.0 - cos_i**2)
    if sin2_t > 1.0:
        return None
    cos_t = np.sqrt(1.0 - sin2_t)
    return eta * d + (eta * cos_i - cos_t) * normal


def test_snell_vector_refraction_grad_and_tir_branch():
    d = np.array([0.3, -0.2, -0.9])
    d = d / np.linalg.norm(d)
    nrm = np.array([0.0, 0.0, 1.0])
    out = refract(d, nrm, 1 / 1.5)
    np.testing.assert_allclose(np.linalg.norm(out), 1.0)
    J = npfunc.jacrev(refract)(d, nrm, 1 / 1.5)
    assert_deriv(J, fd(lambda v: refract(v, nrm, 1 / 1.5), d))
    Jeta = npfunc.jacfwd(refract, argnums=2)(d, nrm, 1 / 1.5)
    assert_deriv(Jeta, fd(lambda e: refract(d, nrm, e[0]), np.array([1 / 1.5]))[:, 0])
    # the grazing ray from glass to air: total internal reflection under grad gives None back
    graze = np.array([0.9, 0.0, -np.sqrt(1 - 0.81)])
    assert refract(graze, nrm, 1.5) is None
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np.where"):
        npfunc.jit(refract)(d, nrm, np.float64(1 / 1.5))


# ---- 3. thin films by 2x2 characteristic matrices ----------------------------------------------


def thin_film_reflectance(thicknesses, indices, wavelength, n_in=1.0, n_sub=1.52):
    """Normal-incidence reflectance of a stack (characteristic matrices, Born & Wolf)."""
    M = np.eye(2, dtype=complex)
    k0 = 2 * np.pi / wavelength
    for d, n in zip(thicknesses, indices):
        delta = k0 * n * d
        layer = np.array([[np.cos(delta), 1j * np.sin(delta) / n],
                          [1j * n * np.sin(delta), np.cos(delta)]])
        M = M @ layer
    B, C = M @ np.array([1.0, n_sub])
    r = (n_in * B - C) / (n_in * B + C)
    return np.abs(r) ** 2


def test_thin_film_stack_grad_in_thicknesses_and_jit():
    d = np.array([95.0, 120.0, 80.0])
    n = np.array([1.38, 2.1, 1.46 + 0.001j])
    R = thin_film_reflectance(d, n, 550.0)
    assert isinstance(R, np.float64)
    jf = npfunc.jit(thin_film_reflectance)
    assert_same(jf(d, n, 550.0), R)
    assert_same(jf(d + 5.0, n, 550.0), thin_film_reflectance(d + 5.0, n, 550.0))
    g = npfunc.grad(thin_film_reflectance)(d, n, 550.0)
    assert g.dtype == np.float64
    assert_deriv(g, fd(lambda t: thin_film_reflectance(t, n, 550.0), d))
    gn = npfunc.grad(thin_film_reflectance, argnums=1)(d, n, 550.0)
    np.testing.assert_allclose(gn, fd_complex(lambda m: thin_film_reflectance(d, m, 550.0), n), rtol=1e-5)


def test_thin_film_spectrum_by_vmap_over_wavelengths():
    d = np.array([100.0, 70.0])
    n = np.array([1.45, 2.3])
    lams = np.linspace(400.0, 800.0, 6)
    want = np.stack([thin_film_reflectance(d, n, lam) for lam in lams])
    assert_same(npfunc.vmap(thin_film_reflectance, in_dims=(None, None, 0))(d, n, lams), want)
    assert_same(npfunc.vmap(thin_film_reflectance, in_dims=(None, None, 0), chunk_size=4)(d, n, lams), want)
    # a design loss: mean reflectance over the band, gradient in the thicknesses
    loss = lambda t: npfunc.vmap(thin_film_reflectance, in_dims=(None, None, 0))(t, n, lams).mean()
    plain = lambda t: np.mean([thin_film_reflectance(t, n, lam) for lam in lams])
    assert_deriv(npfunc.grad(loss)(d), fd(plain, d))
    assert_deriv(npfunc.jit(npfunc.grad(loss))(d), fd(plain, d))


# ---- 4. Fourier optics ---------------------------------------------------------------------------


def angular_spectrum(u0, wavelength, dx, z):
    """Propagate a sampled complex field by the angular spectrum method; evanescent
    components are dropped with a boolean mask."""
    ny, nx = u0.shape
    fx = np.fft.fftfreq(nx, d=dx)
    fy = np.fft.fftfreq(ny, d=dx)
    FX, FY = np.meshgrid(fx, fy)
    arg = 1.0 / wavelength**2 - FX**2 - FY**2
    kz = 2 * np.pi * np.sqrt(np.maximum(arg, 0.0))
    H = np.exp(1j * kz * z)
    H[arg < 0] = 0
    return np.fft.ifft2(np.fft.fft2(u0) * H)


def phase_mask_focus_loss(phi, target, wavelength=0.5, dx=1.0, z=50.0):
    u0 = np.exp(1j * phi)
    u = angular_spectrum(u0, wavelength, dx, z)
    I = np.abs(u) ** 2
    return np.sum((I / I.sum() - target) ** 2)


def test_angular_spectrum_phase_retrieval_loss_grad_and_jit():
    rng = np.random.default_rng(4)
    phi = rng.uniform(-np.pi, np.pi, (6, 6))
    target = np.zeros((6, 6))
    target[2:4, 2:4] = 0.25
    want = phase_mask_focus_loss(phi, target)
    jf = npfunc.jit(phase_mask_focus_loss)
    assert_same(jf(phi, target), want)
    assert_same(jf(phi * 0.5, target), phase_mask_focus_loss(phi * 0.5, target))
    g = npfunc.grad(phase_mask_focus_loss)(phi, target)
    assert g.dtype == np.float64
    assert_deriv(g, fd(lambda p: phase_mask_focus_loss(p, target), phi))
    u0 = np.exp(1j * phi)
    assert_same(npfunc.jit(angular_spectrum, static_argnums=(1, 2, 3))(u0, 0.5, 1.0, 50.0),
                angular_spectrum(u0, 0.5, 1.0, 50.0))


def fraunhofer_pattern(aperture):
    """Far-field intensity of a real aperture, centred and normalised to its peak."""
    F = np.fft.fftshift(np.fft.fft2(aperture))
    I = np.abs(F) ** 2
    return I / I.max()


def test_fraunhofer_float32_keeps_dtypes_and_vmaps():
    rng = np.random.default_rng(5)
    a = rng.uniform(0.0, 1.0, (3, 8, 8)).astype(np.float32)
    want = fraunhofer_pattern(a[0])
    assert want.dtype == np.float32       # NumPy 2's pocketfft keeps single precision
    assert_same(npfunc.jit(fraunhofer_pattern)(a[0]), want, rtol=1e-6)
    assert_same(npfunc.vmap(fraunhofer_pattern)(a), np.stack([fraunhofer_pattern(x) for x in a]), rtol=1e-6)
    f = lambda x: fraunhofer_pattern(x)[3:6, 3:6].sum()
    g = npfunc.grad(f)(a[0])
    assert g.dtype == np.float32
    assert_deriv(g, fd(f, a[0].astype(np.float64)), rtol=2e-3, atol=1e-4)


def gaussian_pulse_through_dispersion(gdd, t, tau=1.0, inplace=False):
    """Chirp a transform-limited Gaussian pulse by a quadratic spectral phase and
    return its RMS duration."""
    E = np.exp(-t**2 / (2 * tau**2)).astype(complex)
    dt = t[1] - t[0]
    w = 2 * np.pi * np.fft.fftfreq(t.size, d=dt)
    Ew = np.fft.fft(E)
    if inplace:
        Ew *= np.exp(0.5j * gdd * w**2)
    else:
        Ew = Ew * np.exp(0.5j * gdd * w**2)
    Et = np.fft.ifft(Ew)
    I = np.abs(Et) ** 2
    I /= np.trapezoid(I, t)
    mean = np.trapezoid(t * I, t)
    return np.sqrt(np.trapezoid((t - mean) ** 2 * I, t))


def test_chirped_pulse_duration_derivative_in_gdd():
    t = np.linspace(-20, 20, 128)
    gdd = 1.5
    want = gaussian_pulse_through_dispersion(gdd, t)
    assert gaussian_pulse_through_dispersion(gdd, t, inplace=True) == want
    # Ew = fft(E) does not depend on gdd, a plain array: multiplying it in place by a traced
    # phase is refused, with the functional spelling as the fix (used below)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x \*= y.*Use x = x \* y"):
        npfunc.grad(gaussian_pulse_through_dispersion)(gdd, t, inplace=True)
    # the analytic broadening: tau_rms = tau/sqrt(2) * sqrt(1 + (gdd/tau^2)^2)
    np.testing.assert_allclose(want, np.sqrt(0.5 * (1 + gdd**2)), rtol=1e-6)
    assert_same(npfunc.jit(gaussian_pulse_through_dispersion)(np.float64(gdd), t), want)
    d = npfunc.grad(gaussian_pulse_through_dispersion)(gdd, t)
    assert_deriv(d, fd(lambda g: gaussian_pulse_through_dispersion(g[0], t), np.array([gdd]))[0])
    d2 = npfunc.grad(npfunc.grad(gaussian_pulse_through_dispersion))(gdd, t)
    assert_deriv(d2, fd(lambda g: npfunc.grad(gaussian_pulse_through_dispersion)(g[0], t), np.array([gdd]))[0])
    gs = np.array([0.0, 0.5, 2.0])
    assert_same(npfunc.vmap(gaussian_pulse_through_dispersion, in_dims=(0, None))(gs, t),
                np.stack([gaussian_pulse_through_dispersion(g, t) for g in gs]))


# ---- 5. phased antenna arrays ------------------------------------------------------------------


def array_factor(weights, theta, d=0.5):
    """Array factor of a uniform linear array (spacing in wavelengths) at angles theta."""
    n = np.arange(len(weights))
    k = 2 * np.pi
    steering = np.exp(1j * k * d * np.outer(np.sin(theta), n))     # (angles, elements)
    return steering @ weights


def pattern_db(weights, theta):
    af = array_factor(weights, theta)
    p = np.abs(af) ** 2
    return 10 * np.log10(p / np.max(p))


def sidelobe_loss(weights, theta, main):
    """Mean sidelobe power relative to the power in the steering direction."""
    af = array_factor(weights, theta)
    P = np.abs(af) ** 2
    P0 = np.abs(array_factor(weights, np.array([main]))[0]) ** 2
    side = np.abs(theta - main) > 0.3
    return np.mean(P[side]) / P0


def test_phased_array_pattern_and_complex_weight_gradient():
    rng = np.random.default_rng(7)
    N = 6
    w = np.exp(-1j * np.pi * np.sin(0.3) * np.arange(N)) * (1 + 0.1 * rng.standard_normal(N))
    theta = np.linspace(-1.4, 1.4, 25)
    assert_same(npfunc.jit(pattern_db)(w, theta), pattern_db(w, theta))
    w2 = w * np.exp(0.2j)
    assert_same(npfunc.jit(pattern_db)(w2, theta), pattern_db(w2, theta))
    g = npfunc.grad(sidelobe_loss)(w, theta, 0.3)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, fd_complex(lambda v: sidelobe_loss(v, theta, 0.3), w), rtol=1e-5, atol=1e-9)
    # gradient descent on complex weights lowers the loss
    w_new = w - 0.05 * g
    assert sidelobe_loss(w_new, theta, 0.3) < sidelobe_loss(w, theta, 0.3)


def test_array_factor_jacobians_real_angles_complex_output():
    w = np.ones(4, dtype=complex) / 2
    theta = np.array([0.1, 0.4, -0.3])
    Jf = npfunc.jacfwd(array_factor, argnums=1)(w, theta)
    Jr = npfunc.jacrev(array_factor, argnums=1)(w, theta)
    assert Jf.dtype == np.complex128 and Jr.dtype == np.complex128
    num = fd(lambda t: array_factor(w, t).real, theta) + 1j * fd(lambda t: array_factor(w, t).imag, theta)
    assert_deriv(Jf, num)
    assert_deriv(Jr, num)
    # holomorphic in the weights: jacfwd equals the steering matrix
    Jw = npfunc.jacfwd(array_factor)(w, theta)
    np.testing.assert_allclose(Jw, np.exp(1j * np.pi * np.outer(np.sin(theta), np.arange(4))))
    assert_same(npfunc.vmap(array_factor, in_dims=(1, None))(np.stack([w, 2 * w], axis=1), theta),
                np.stack([array_factor(w, theta), array_factor(2 * w, theta)]))


def mvdr_weights(R, a):
    """Minimum-variance distortionless beamformer w = R^-1 a / (a^H R^-1 a)."""
    Ria = np.linalg.solve(R, a)
    return Ria / (a.conj() @ Ria)


def mvdr_output_power(theta_s, R, N):
    a = np.exp(1j * np.pi * np.arange(N) * np.sin(theta_s))
    w = mvdr_weights(R, a)
    return np.real(w.conj() @ R @ w)


def test_mvdr_beamformer_power_spectrum_derivative_in_look_angle():
    rng = np.random.default_rng(8)
    N = 5
    X = rng.standard_normal((N, 40)) + 1j * rng.standard_normal((N, 40))
    a0 = np.exp(1j * np.pi * np.arange(N) * np.sin(0.4))
    X += 3 * np.outer(a0, rng.standard_normal(40))
    R = X @ X.conj().T / 40
    P = mvdr_output_power(0.2, R, N)
    assert isinstance(P, np.float64)
    assert_same(npfunc.jit(mvdr_output_power, static_argnums=2)(np.float64(0.2), R, N), P)
    d = npfunc.grad(mvdr_output_power)(0.2, R, N)
    assert_deriv(d, fd(lambda t: mvdr_output_power(t[0], R, N), np.array([0.2]))[0])
    angles = np.linspace(-1, 1, 5)
    assert_same(npfunc.vmap(mvdr_output_power, in_dims=(0, None, None))(angles, R, N),
                np.stack([mvdr_output_power(t, R, N) for t in angles]))
    gR = npfunc.grad(mvdr_output_power, argnums=1)(0.2, R, N)
    np.testing.assert_allclose(gR, fd_complex(lambda m: mvdr_output_power(0.2, m, N), R), rtol=1e-5, atol=1e-9)


# ---- 6. Jones calculus -----------------------------------------------------------------------


def rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def linear_polariser(theta):
    R = rotation(theta)
    return R @ np.array([[1.0, 0.0], [0.0, 0.0]]) @ R.T


def waveplate(retardance, theta, diag_of_list=False):
    R = rotation(theta)
    if diag_of_list:
        W = np.diag([np.exp(-0.5j * retardance), np.exp(0.5j * retardance)])
    else:
        W = np.diag(np.exp(np.array([-0.5j, 0.5j]) * retardance))
    return R @ W @ R.T


def transmitted_intensity(angles, E_in):
    """Polariser - quarter-wave plate - analyser; the angles are (p1, qwp, p2)."""
    J = linear_polariser(angles[2]) @ waveplate(np.pi / 2, angles[1]) @ linear_polariser(angles[0])
    E = J @ E_in
    return np.vdot(E, E).real


def test_jones_chain_intensity_grad_hessian_and_malus():
    E_in = np.array([1.0, 1.0j]) / np.sqrt(2)
    angles = np.array([0.1, 0.7, 1.2])
    I = transmitted_intensity(angles, E_in)
    assert isinstance(I, np.float64)
    assert_same(npfunc.jit(transmitted_intensity)(angles, E_in), I)
    assert_same(npfunc.jit(transmitted_intensity)(angles + 0.3, E_in), transmitted_intensity(angles + 0.3, E_in))
    f = lambda a: transmitted_intensity(a, E_in)
    assert_deriv(npfunc.grad(f)(angles), fd(f, angles))
    assert_deriv(npfunc.hessian(f)(angles), fd(npfunc.grad(f), angles), rtol=1e-5, atol=1e-7)
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(angles), fd(npfunc.grad(f), angles), rtol=1e-5, atol=1e-7)
    # Malus: two polarisers only
    malus = lambda t: np.linalg.norm(linear_polariser(t) @ linear_polariser(0.0) @ np.array([1.0, 0.0])) ** 2
    ts = np.linspace(0, np.pi / 2, 5)
    got = npfunc.vmap(malus)(ts)
    assert_same(got, np.stack([malus(t) for t in ts]))
    np.testing.assert_allclose(got, np.cos(ts) ** 2, atol=1e-15)
    assert_deriv(npfunc.vmap(npfunc.grad(malus))(ts), -np.sin(2 * ts), atol=1e-12)


def stokes(E):
    """Stokes parameters of a Jones vector, as a dict."""
    Ex, Ey = E[0], E[1]
    return {"S0": np.abs(Ex) ** 2 + np.abs(Ey) ** 2,
            "S1": np.abs(Ex) ** 2 - np.abs(Ey) ** 2,
            "S2": 2 * np.real(Ex * np.conj(Ey)),
            "S3": -2 * np.imag(Ex * np.conj(Ey))}


def ellipse(E):
    """Orientation and ellipticity angles of the polarisation ellipse, in degrees."""
    S = stokes(E)
    psi = 0.5 * np.arctan2(S["S2"], S["S1"])
    chi = 0.5 * np.arcsin(S["S3"] / S["S0"])
    return np.degrees(psi), np.degrees(chi)


def test_stokes_dict_and_ellipse_under_transforms():
    E = np.array([0.8 + 0.1j, 0.3 - 0.5j])
    want = stokes(E)
    got = npfunc.jit(stokes)(E)
    assert set(got) == set(want)
    for k in want:
        assert_same(got[k], want[k])
    Es = np.array([[1.0, 0.0], [1.0, 1j], [0.6, 0.8 * np.exp(0.3j)]], dtype=complex)
    got = npfunc.vmap(stokes)(Es)
    for k in want:
        assert_same(got[k], np.stack([stokes(e)[k] for e in Es]))
    assert_jit_replays(ellipse, (E,), (E * np.exp(0.4j),), (np.array([0.2 - 0.1j, 0.9 + 0.3j]),))
    g = npfunc.grad(lambda e: ellipse(e)[1])(E)
    np.testing.assert_allclose(g, fd_complex(lambda e: ellipse(e)[1], E), rtol=1e-5)
    # the jvp of S in a real direction: the tangent is real like S
    out, tan = npfunc.jvp(stokes, (E,), (np.array([1.0 + 0j, 0j]),))
    for k in want:
        assert_same(out[k], want[k])
        assert tan[k].dtype == np.float64 and np.ndim(tan[k]) == 0
    np.testing.assert_allclose(tan["S0"], 2 * E[0].real)


def mueller_from_jones(J):
    """Mueller matrix of a non-depolarising element: M = A (J kron J*) A^-1."""
    A = np.array([[1, 0, 0, 1],
                  [1, 0, 0, -1],
                  [0, 1, 1, 0],
                  [0, 1j, -1j, 0]])
    return np.real(A @ np.kron(J, J.conj()) @ np.linalg.inv(A))


def test_mueller_from_jones_kron_real_result():
    M = mueller_from_jones(waveplate(np.pi / 2, 0.3))
    assert M.dtype == np.float64
    np.testing.assert_array_equal(waveplate(np.pi / 2, 0.3, diag_of_list=True), waveplate(np.pi / 2, 0.3))
    # np.diag of a list of traced scalars: refused (NumPy converts the list itself), and the
    # advised np.diag(np.stack([...])) works
    g = lambda a: mueller_from_jones(waveplate(a[0], a[1], diag_of_list=True))
    for transform in (npfunc.jit, npfunc.jacrev):
        with pytest.raises(npfunc.errors.ConcretizationError, match=r"np.diag\(np.stack\(\[x, y\]\)\)"):
            transform(g)(np.array([np.pi / 2, 0.3]))
    h = lambda a: np.diag(np.stack([np.exp(-0.5j * a[0]), np.exp(0.5j * a[0])]))
    assert_same(npfunc.jit(h)(np.array([0.4])), np.diag([np.exp(-0.2j), np.exp(0.2j)]))
    f = lambda a: mueller_from_jones(waveplate(a[0], a[1]))
    a = np.array([np.pi / 2, 0.3])
    assert_jit_replays(f, (a,), (np.array([0.3, -1.1]),))
    assert_deriv(npfunc.jacrev(f)(a), fd(f, a))
    assert_deriv(npfunc.jacfwd(f)(a), fd(f, a))


# ---- 7. waveguides ---------------------------------------------------------------------------


def rect_waveguide_beta(freq, a, b, modes, scimath=False):
    """Propagation constants of TE_mn modes of a rectangular metal waveguide; below
    cutoff the constant is imaginary (evanescent), by the complex square root."""
    c = 299792458.0
    k = 2 * np.pi * freq / c
    out = []
    for m, n in modes:
        kc2 = (m * np.pi / a) ** 2 + (n * np.pi / b) ** 2
        if scimath:
            out.append(np.emath.sqrt(k**2 - kc2))
        else:
            out.append(np.sqrt(k**2 - kc2 + 0j))
    return np.array(out)


def test_rect_waveguide_scimath_sqrt_dispersion_and_group_delay():
    a, b = 22.86e-3, 10.16e-3
    modes = [(1, 0), (2, 0), (0, 1), (1, 1)]
    f0 = 10e9
    want = rect_waveguide_beta(f0, a, b, modes)
    assert want.dtype == np.complex128
    assert_same(rect_waveguide_beta(f0, a, b, modes, scimath=True), want)
    assert_same(npfunc.jit(rect_waveguide_beta, static_argnums=3)(np.float64(f0), a, b, modes), want)
    assert_same(npfunc.jit(rect_waveguide_beta, static_argnums=3)(np.float64(8e9), a, b, modes),
                rect_waveguide_beta(8e9, a, b, modes))
    # group delay per metre of the propagating TE10 mode: d beta / d omega
    tg = lambda f: np.real(rect_waveguide_beta(f, a, b, [(1, 0)])[0]) / (2 * np.pi)
    got = npfunc.grad(tg)(f0)
    assert_deriv(got, fd(lambda f: tg(f[0] * 1e9), np.array([f0 / 1e9]))[0] / 1e9, rtol=1e-6, atol=0)
    fs = np.array([5e9, 10e9, 16e9])
    assert_same(npfunc.vmap(rect_waveguide_beta, in_dims=(0, None, None, None))(fs, a, b, modes),
                np.stack([rect_waveguide_beta(f, a, b, modes) for f in fs]))


def test_scimath_sqrt_group_delay():
    """np.emath.sqrt on traced values: the same derivative as the +0j spelling."""
    a, b = 22.86e-3, 10.16e-3
    tg = lambda f, s: np.real(rect_waveguide_beta(f, a, b, [(1, 0)], scimath=s)[0])
    assert_deriv(npfunc.grad(lambda f: tg(f, True))(10e9), npfunc.grad(lambda f: tg(f, False))(10e9),
                 rtol=1e-12)

def sellmeier_bk7(lam_um):
    """Refractive index of BK7 glass (Sellmeier, wavelength in micrometres)."""
    B = (1.03961212, 0.231792344, 1.01046945)
    C = (0.00600069867, 0.0200179144, 103.560653)
    l2 = lam_um**2
    n2 = 1.0
    for Bi, Ci in zip(B, C):
        n2 += Bi * l2 / (l2 - Ci)
    return np.sqrt(n2)


def group_index(lam):
    return sellmeier_bk7(lam) - lam * npfunc.grad(sellmeier_bk7)(lam)


def test_sellmeier_group_index_and_gvd_by_nested_grad():
    lam = 0.8
    n = sellmeier_bk7(lam)
    assert isinstance(n, np.float64)
    assert_same(npfunc.jit(sellmeier_bk7)(np.float64(lam)), n)
    assert_jit_replays(sellmeier_bk7, (np.float64(lam),), (np.float64(1.3),))
    assert_deriv(npfunc.grad(sellmeier_bk7)(lam), fd(lambda l: sellmeier_bk7(l[0]), np.array([lam]))[0])
    # GVD ~ lam^3 d2n/dlam2
    d2 = npfunc.grad(npfunc.grad(sellmeier_bk7))(lam)
    assert_deriv(d2, fd(lambda l: npfunc.grad(sellmeier_bk7)(l[0]), np.array([lam]))[0])
    lams = np.linspace(0.4, 1.6, 5)
    ng = npfunc.vmap(group_index)(lams)
    assert_same(ng, np.stack([group_index(l) for l in lams]))
    assert_deriv(npfunc.jacfwd(lambda l: sellmeier_bk7(l))(lams), fd(sellmeier_bk7, lams))
    l32 = lams.astype(np.float32)
    assert_same(npfunc.jit(sellmeier_bk7)(l32), sellmeier_bk7(l32), rtol=1e-6)


def metal_index(eps_real):
    """n = eps^(1/2) for a real permittivity table that may be negative (a metal below the
    plasma frequency): np.emath.power gives a complex result only then."""
    return np.emath.power(eps_real, 0.5)


def test_emath_power_metal_index():
    """np.emath.power of a permittivity table with a negative entry: complex, as NumPy, and its
    forward-mode Jacobian matches the complex square root's."""
    eps = np.array([2.25, -4.0, 1.0])
    assert metal_index(eps).dtype == np.complex128
    assert_same(npfunc.jvp(metal_index, (eps,), (np.ones(3),))[0], metal_index(eps))
    np.testing.assert_allclose(npfunc.jacfwd(metal_index)(eps), np.diag(0.5 / np.sqrt(eps + 0j)), rtol=1e-12)

# ---- 8. scattering with spherical Bessel functions --------------------------------------------


def mie_coefficients(m, x, nmax):
    """Mie coefficients a_n, b_n of a sphere (relative index m, size parameter x),
    from Riccati-Bessel functions psi_n(z) = z j_n(z), xi_n(z) = z h1_n(z)."""
    n = np.arange(1, nmax + 1)
    mx = m * x
    jn_x = sps.spherical_jn(n, x)
    jn_mx = sps.spherical_jn(n, mx)
    yn_x = sps.spherical_yn(n, x)
    djn_x = sps.spherical_jn(n, x, derivative=True)
    djn_mx = sps.spherical_jn(n, mx, derivative=True)
    dyn_x = sps.spherical_yn(n, x, derivative=True)
    psi_x, dpsi_x = x * jn_x, jn_x + x * djn_x
    psi_mx, dpsi_mx = mx * jn_mx, jn_mx + mx * djn_mx
    h_x = jn_x + 1j * yn_x
    xi_x, dxi_x = x * h_x, h_x + x * (djn_x + 1j * dyn_x)
    a = (m * psi_mx * dpsi_x - psi_x * dpsi_mx) / (m * psi_mx * dxi_x - xi_x * dpsi_mx)
    b = (psi_mx * dpsi_x - m * psi_x * dpsi_mx) / (psi_mx * dxi_x - m * xi_x * dpsi_mx)
    return a, b


def mie_qext_qsca(x, m=1.33, nmax=8):
    a, b = mie_coefficients(m, x, nmax)
    n = np.arange(1, nmax + 1)
    qext = 2 / x**2 * np.sum((2 * n + 1) * np.real(a + b))
    qsca = 2 / x**2 * np.sum((2 * n + 1) * (np.abs(a) ** 2 + np.abs(b) ** 2))
    return qext, qsca


def test_mie_efficiencies_derivative_in_size_parameter():
    x = 2.5
    qext, qsca = mie_qext_qsca(x)
    assert isinstance(qext, np.float64)
    np.testing.assert_allclose(qext, qsca, rtol=1e-10)     # a real index does not absorb
    got = npfunc.jit(mie_qext_qsca)(np.float64(x))
    assert_same(got[0], qext)
    assert_same(got[1], qsca)
    f = lambda v: mie_qext_qsca(v[0])[0]
    assert_deriv(npfunc.grad(lambda s: mie_qext_qsca(s)[0])(x), fd(f, np.array([x]))[0])
    xs = np.array([0.5, 1.0, 3.0])
    q = npfunc.vmap(lambda s: mie_qext_qsca(s)[1])(xs)
    assert_same(q, np.stack([mie_qext_qsca(s)[1] for s in xs]))


def test_mie_absorbing_sphere_gradient_in_complex_index():
    x = 1.7
    m = 1.5 + 0.1j
    qabs = lambda mm: np.subtract(*mie_qext_qsca(x, mm, 6))
    want = qabs(m)
    assert want > 0
    assert_same(npfunc.jit(qabs)(np.complex128(m)), want)
    g = npfunc.grad(qabs)(np.complex128(m))
    np.testing.assert_allclose(g, fd_complex(qabs, m), rtol=1e-5)


def cylinder_scattering_width(ka, terms=6, hankel=sps.hankel1):
    """2D scattering width of a perfectly conducting cylinder (TM), Hankel functions."""
    n = np.arange(-terms, terms + 1)
    c = sps.jv(n, ka) / hankel(n, ka)
    return 4 / ka * np.sum(np.abs(c) ** 2)


def hankel1_by_parts(v, x):
    return sps.jv(v, x) + 1j * sps.yv(v, x)


def test_pec_cylinder_hankel_scattering():
    ka = 1.3
    s = cylinder_scattering_width(ka)
    # scipy.special.hankel1 has no rule yet (docs/coverage.md): refused, and J + iY works
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"scipy.special.hankel1 is not supported"):
        npfunc.jit(cylinder_scattering_width)(np.float64(ka))
    sw = lambda k: cylinder_scattering_width(k, hankel=hankel1_by_parts)
    np.testing.assert_allclose(sw(ka), s, rtol=1e-13)
    assert_same(npfunc.jit(sw)(np.float64(ka)), sw(ka))
    assert_same(npfunc.jit(sw)(np.float64(2 * ka)), sw(2 * ka))
    assert_deriv(npfunc.grad(sw)(ka), fd(lambda v: sw(v[0]), np.array([ka]))[0])
    kas = np.array([0.5, 1.3, 2.2])
    assert_same(npfunc.vmap(sw)(kas), np.stack([sw(k) for k in kas]))


def bhmie(x, refrel, nang=3, traced_buffers=True):
    """Bohren & Huffman's bhmie, transcribed: logarithmic derivative by downward recurrence,
    Riccati-Bessel functions by upward recurrence, S1/S2 amplitudes and efficiencies. The
    orders needed (Wiscombe's criterion) depend on x: a Python int from its value."""
    dx = x
    y = x * refrel
    xstop = x + 4.0 * x ** 0.3333 + 2.0
    nstop = int(xstop)
    ymod = abs(y)
    nmx = int(max(xstop, ymod)) + 15
    dang = 0.5 * np.pi / (nang - 1)
    amu = np.cos(np.arange(nang) * dang)
    pi0 = np.zeros(nang)
    pi1 = np.ones(nang)
    nn = 2 * nang - 1
    if traced_buffers:                     # the spelling npfunc's refusal advised (a scalar y) before
                                           # plain np.zeros buffers took traced writes
        s1 = np.zeros_like(y, shape=nn, dtype=complex)
        s2 = np.zeros_like(y, shape=nn, dtype=complex)
    else:
        s1 = np.zeros(nn, dtype=complex)
        s2 = np.zeros(nn, dtype=complex)
    d = np.zeros_like(y, shape=nmx, dtype=complex) if traced_buffers else np.zeros(nmx, dtype=complex)
    for n in range(nmx - 1, 0, -1):
        en = n + 1
        d[n - 1] = en / y - 1.0 / (d[n] + en / y)
    psi0 = np.cos(dx)
    psi1 = np.sin(dx)
    chi0 = -np.sin(dx)
    chi1 = np.cos(dx)
    xi1 = psi1 - 1j * chi1
    qsca = 0.0
    gsca = 0.0
    p = -1.0
    an1 = bn1 = 0j
    for n in range(1, nstop + 1):
        en = float(n)
        fn = (2.0 * en + 1.0) / (en * (en + 1.0))
        psi = (2.0 * en - 1.0) * psi1 / dx - psi0
        chi = (2.0 * en - 1.0) * chi1 / dx - chi0
        xi = psi - 1j * chi
        if n > 1:
            an1, bn1 = an, bn
        an = (d[n - 1] / refrel + en / dx) * psi - psi1
        an = an / ((d[n - 1] / refrel + en / dx) * xi - xi1)
        bn = (refrel * d[n - 1] + en / dx) * psi - psi1
        bn = bn / ((refrel * d[n - 1] + en / dx) * xi - xi1)
        qsca += (2.0 * en + 1.0) * (abs(an) ** 2 + abs(bn) ** 2)
        gsca += ((2.0 * en + 1.0) / (en * (en + 1.0))) * (np.real(an) * np.real(bn) + np.imag(an) * np.imag(bn))
        if n > 1:
            gsca += ((en - 1.0) * (en + 1.0) / en) * (np.real(an1) * np.real(an) + np.imag(an1) * np.imag(an)
                                                        + np.real(bn1) * np.real(bn) + np.imag(bn1) * np.imag(bn))
        pi = pi1.copy()
        tau = en * amu * pi - (en + 1.0) * pi0
        s1[:nang] += fn * (an * pi + bn * tau)
        s2[:nang] += fn * (an * tau + bn * pi)
        p = -p
        s1[nang:] += fn * p * (an * pi[-2::-1] - bn * tau[-2::-1])
        s2[nang:] += fn * p * (bn * pi[-2::-1] - an * tau[-2::-1])
        psi0, psi1 = psi1, psi
        chi0, chi1 = chi1, chi
        xi1 = psi1 - 1j * chi1
        pi1 = ((2.0 * en + 1.0) * amu * pi - (en + 1.0) * pi0) / en
        pi0 = pi
    qsca = 2.0 / (dx * dx) * qsca
    gsca = 4.0 * gsca / (qsca * dx * dx)
    qext = 4.0 / (dx * dx) * np.real(s1[0])
    qback = 4.0 * (abs(s1[2 * nang - 2]) / dx) ** 2
    return s1, s2, qext, qsca, qback, gsca


def test_bohren_huffman_mie_transcription_plain_buffers_match_zeros_like_fix():
    s1, s2, qext, qsca, qback, gsca = bhmie(2.5, 1.33 + 0j)
    want = mie_qext_qsca(2.5)
    np.testing.assert_allclose([qext, qsca], want, rtol=1e-12)
    assert isinstance(qext, np.float64) and isinstance(gsca, np.float64)
    plain = bhmie(2.5, 1.33 + 0j, traced_buffers=False)
    for a, b in zip(plain, (s1, s2, qext, qsca, qback, gsca)):
        assert_same(a, b, rtol=0)
    m = 1.33 + 0.01j
    gx = npfunc.grad(lambda x: bhmie(x, m)[2])(2.5)
    assert_deriv(gx, fd(lambda v: bhmie(v[0], m)[2], np.array([2.5]))[0])
    # the plain np.zeros buffers (once refused, with np.zeros_like(x, shape=...) advised) take
    # the traced recurrences: the same derivative as the np.zeros_like spelling, to rounding
    gx_plain = npfunc.grad(lambda x: bhmie(x, m, traced_buffers=False)[2])(2.5)
    assert type(gx_plain) is type(gx)
    np.testing.assert_allclose(gx_plain, gx, rtol=1e-12)
    gm = npfunc.grad(lambda mm: bhmie(2.5, mm)[3])(np.complex128(m))
    np.testing.assert_allclose(gm, fd_complex(lambda mm: bhmie(2.5, mm)[3], m), rtol=1e-6)
    gm_plain = npfunc.grad(lambda mm: bhmie(2.5, mm, traced_buffers=False)[3])(np.complex128(m))
    np.testing.assert_allclose(gm_plain, gm, rtol=1e-12)
    # the backscatter efficiency's tangent along the imaginary part of the index
    _, t = npfunc.jvp(lambda mm: bhmie(2.5, mm)[4], (np.complex128(m),), (np.complex128(1j),))
    h = 1e-6
    num = (bhmie(2.5, m + 1j * h)[4] - bhmie(2.5, m - 1j * h)[4]) / (2 * h)
    np.testing.assert_allclose(t, num, rtol=1e-6)
    # the number of orders is a Python int from x's value: jit and vmap refuse, naming the fix
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"int\(x\).*static_argnums"):
        npfunc.jit(lambda x: bhmie(x, m)[2])(np.float64(2.5))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"int\(x\)"):
        npfunc.vmap(lambda x: bhmie(x, m)[2])(np.array([2.5, 3.0]))


def screened_multipoles(kappa_r, lmax=3):
    """Radial functions of a screened (Yukawa-like, evanescent) multipole field outside a
    sphere: modified spherical Bessel functions k_l, and i_l inside."""
    l = np.arange(lmax + 1)
    if np.ndim(kappa_r):
        l = l[:, None]
    inside = sps.spherical_in(l, kappa_r)
    return sps.spherical_kn(l, kappa_r), inside


def screened_multipoles_by_hand(kappa_r):
    """The same for l = 0, 1 from their closed forms (the fix: NumPy functions)."""
    x = kappa_r
    k0 = np.pi / 2 * np.exp(-x) / x
    k1 = np.pi / 2 * np.exp(-x) * (x + 1) / x**2
    i0 = np.sinh(x) / x
    i1 = (x * np.cosh(x) - np.sinh(x)) / x**2
    return np.stack([k0, k1]), np.stack([i0, i1])


def test_modified_spherical_bessel_refusal_names_no_wrong_twin():
    """spherical_in/kn share SciPy's decorator with spherical_jn/yn: under jit the conversion error
    said 'call npfunc.scipy.special.spherical_jn / spherical_yn (same arguments) instead', a
    different function; now it says which ones have a twin (primitives/special/twin_hints.py)."""
    x = np.float64(1.3)
    kn, inn = screened_multipoles(x)
    # the hint sits on the code object SciPy's four spherical functions share (which message
    # shows it depends on the conversion path: in this test process npfunc.testing routes the
    # first np.asarray through, and array_api_extra.apply_where is named instead)
    import types
    import scipy.special._spherical_bessel as scipy_spherical
    from npfunc.core import dispatch
    from npfunc.primitives.special import twin_hints
    # SciPy's functions as a process that has not loaded npfunc.scipy sees them (here the twins
    # are routed already, so scipy.special.spherical_jn is npfunc's router)
    unrouted = types.SimpleNamespace(**{n: getattr(scipy_spherical, n) for n in
                                        ("spherical_jn", "spherical_yn", "spherical_in", "spherical_kn")})
    twin_hints.register(unrouted)
    code = scipy_spherical.spherical_in.__code__
    assert code is scipy_spherical.spherical_jn.__code__
    hint = dispatch.TWINS[code]
    assert "if you called spherical_jn or spherical_yn" in hint and "spherical_in, spherical_kn" in hint
    assert all("multigammaln if you called" not in v for v in dispatch.TWINS.values())
    # the same for SciPy's MultiUFunc objects: sph_harm_y has a twin, legendre_p does not
    multi = dispatch.TWINS[type(sps.legendre_p).__call__.__code__]
    assert "if you called sph_harm_y" in multi and "legendre_p" in multi
    with pytest.raises(npfunc.errors.ConcretizationError) as info:
        npfunc.jit(lambda r: screened_multipoles(r)[1].sum(axis=0))(np.array([0.8, 1.3]))
    assert "spherical_yn (same arguments) instead" not in str(info.value)
    k_hand, i_hand = screened_multipoles_by_hand(x)
    np.testing.assert_allclose(k_hand, kn[:2], rtol=1e-13)
    np.testing.assert_allclose(i_hand, inn[:2], rtol=1e-13)
    got = npfunc.jit(screened_multipoles_by_hand)(x)
    assert_same(got[0], k_hand)
    assert_same(got[1], i_hand)
    J = npfunc.jacfwd(lambda v: screened_multipoles_by_hand(v)[0])(1.3)
    np.testing.assert_allclose(J, sps.spherical_kn([0, 1], 1.3, derivative=True), rtol=1e-12)


# ---- 9. diffraction with special functions ----------------------------------------------------


def knife_edge_intensity(x_edge, wavelength=0.5, z=1000.0):
    """Fresnel diffraction past a straight edge: I/I0 = 0.5 [(C + 1/2)^2 + (S + 1/2)^2]."""
    v = x_edge * np.sqrt(2 / (wavelength * z))
    S, C = sps.fresnel(v)
    return 0.5 * ((C + 0.5) ** 2 + (S + 0.5) ** 2)


def test_knife_edge_fresnel_integrals():
    xs = np.linspace(-40.0, 40.0, 9)
    want = knife_edge_intensity(xs)
    assert_same(npfunc.jit(knife_edge_intensity)(xs), want)
    assert_jit_replays(knife_edge_intensity, (xs,), (xs * 0.3 + 1.0,))
    assert_deriv(npfunc.jacfwd(knife_edge_intensity)(xs), fd(knife_edge_intensity, xs))
    assert_deriv(npfunc.vmap(npfunc.grad(knife_edge_intensity))(xs), np.diag(fd(knife_edge_intensity, xs)))
    np.testing.assert_allclose(knife_edge_intensity(np.array([0.0])), 0.25)


def airy_pattern(r, a=1.0, wavelength=0.5, z=100.0):
    """Airy disk intensity 4 (J1(v)/v)^2 with the removable singularity at v = 0."""
    v = 2 * np.pi * a * r / (wavelength * z)
    v_safe = np.where(v == 0, 1.0, v)
    return np.where(v == 0, 1.0, (2 * sps.j1(v_safe) / v_safe) ** 2)


def test_airy_pattern_double_where_at_the_centre():
    r = np.array([0.0, 3.0, 10.0, 30.5])
    want = airy_pattern(r)
    assert_same(npfunc.jit(airy_pattern)(r), want)
    assert_jit_replays(airy_pattern, (r,), (np.array([5.0, 0.0, 1.0, 2.0]),))
    J = npfunc.jacrev(airy_pattern)(r)
    assert np.all(np.isfinite(J))
    assert_deriv(J[1:, 1:], fd(airy_pattern, r)[1:, 1:])
    assert J[0, 0] == 0.0
    # encircled energy by the trapezoid rule, a float32 variant keeps float32
    rr = np.linspace(0.0, 40.0, 81).astype(np.float32)
    ee = lambda a: np.trapezoid(airy_pattern(rr, a) * 2 * np.pi * rr, rr)
    assert_same(npfunc.jit(ee)(np.float32(1.0)), ee(np.float32(1.0)), rtol=1e-5)


def grating_intensity(phi, N):
    """N-slit interference factor (sin(N phi/2) / sin(phi/2))^2 / N^2, with its limit N^2/N^2 = 1
    at the principal maxima, and the single-slit envelope by np.sinc."""
    num = np.sin(N * phi / 2)
    den = np.sin(phi / 2)
    small = np.abs(den) < 1e-12
    ratio = np.divide(num, den, out=np.full_like(phi, float(N)), where=~small)
    return (ratio / N) ** 2 * np.sinc(phi / (2 * np.pi) * 0.4) ** 2


def test_grating_divide_with_out_and_where():
    phi = np.array([0.0, 0.3, 1.1, 2 * np.pi, 4.0])
    want = grating_intensity(phi, 5)
    jf = npfunc.jit(grating_intensity, static_argnums=1)
    with np.errstate(divide="ignore", invalid="ignore"):     # see the xfail below
        assert_same(jf(phi, 5), want)
        assert_same(jf(phi + 0.2, 5), grating_intensity(phi + 0.2, 5))
        assert_same(npfunc.vmap(grating_intensity, in_dims=(0, None))(phi[:, None], 5),
                    np.stack([grating_intensity(p, 5) for p in phi[:, None]]))
        J = npfunc.jacrev(grating_intensity)(phi, 5)
        Jf = npfunc.jacfwd(grating_intensity)(phi, 5)
    # NumPy does not divide where where= is False: those entries are the constant N from
    # out=, with derivative 0; the division 0/0 there must not leak NaN into the Jacobian
    # (it did: a whole NaN column, also off the diagonal)
    assert np.all(np.isfinite(J)) and np.all(np.isfinite(Jf))
    keep = [1, 2, 4]
    assert_deriv(J[np.ix_(keep, keep)], fd(lambda p: grating_intensity(p, 5), phi[keep]))
    assert_deriv(Jf, J, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), 0.0)
    envelope = lambda p: np.sinc(p / (2 * np.pi) * 0.4) ** 2      # where the ratio is the constant N
    assert_deriv(np.diag(J)[[0, 3]], np.diag(fd(envelope, phi[[0, 3]])))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = npfunc.vmap(npfunc.grad(lambda p: grating_intensity(p, 5).sum()))(np.stack([phi, phi + 0.1]))
    assert np.all(np.isfinite(g))


def test_divide_where_does_not_raise_floating_point_errors_numpy_skips():
    phi = np.array([0.0, 0.3, 1.1])
    with np.errstate(all="raise"):
        want = grating_intensity(phi, 3)
        assert_same(npfunc.vmap(grating_intensity, in_dims=(0, None))(phi[:, None], 3),
                    np.stack([grating_intensity(p, 3) for p in phi[:, None]]))
    assert want.shape == (3,)


# ---- 10. Gaussian beams, resonators -------------------------------------------------------------


def gaussian_beam_after_system(w0, elements, wavelength=1.064e-3):
    """Propagate the complex beam parameter q through ABCD elements (lengths in mm);
    returns the beam radius and the wavefront radius of curvature at the end."""
    zr = np.pi * w0**2 / wavelength
    q = 1j * zr
    for kind, value in elements:
        if kind == "space":
            M = np.array([[1.0, value], [0.0, 1.0]])
        else:                                  # thin lens of focal length value
            M = np.array([[1.0, 0.0], [-1.0 / value, 1.0]])
        A, B, C, D = M.ravel()
        q = (A * q + B) / (C * q + D)
    inv_q = 1 / q
    w = np.sqrt(-wavelength / (np.pi * inv_q.imag))
    R = 1 / inv_q.real
    return w, R


def test_gaussian_beam_abcd_complex_q():
    system = [("space", 100.0), ("lens", 50.0), ("space", 60.0)]
    w, R = gaussian_beam_after_system(0.5, system)
    assert isinstance(w, np.float64) and isinstance(R, np.float64)
    got = npfunc.jit(gaussian_beam_after_system, static_argnums=1)(np.float64(0.5), tuple(system))
    assert_same(got[0], w)
    assert_same(got[1], R)
    f = lambda v: gaussian_beam_after_system(v[0], system)[0]
    assert_deriv(npfunc.grad(lambda w0: gaussian_beam_after_system(w0, system)[0])(0.5), fd(f, np.array([0.5]))[0])
    # the lens focal length that minimises the spot at the end: d w / d f by jacfwd
    spot = lambda fl: gaussian_beam_after_system(0.5, [("space", 100.0), ("lens", fl), ("space", 60.0)])[0]
    assert_deriv(npfunc.jacfwd(spot)(50.0), fd(lambda v: spot(v[0]), np.array([50.0]))[0])
    w0s = np.array([0.3, 0.5, 0.8])
    got = npfunc.vmap(lambda w0: gaussian_beam_after_system(w0, system))(w0s)
    assert_same(got[1], np.stack([gaussian_beam_after_system(v, system)[1] for v in w0s]))


def ring_resonator_transmission(phi, a=0.96, r=0.97):
    """All-pass ring: t = (r - a e^{i phi}) / (1 - r a e^{i phi}), power |t|^2 and phase."""
    e = np.exp(1j * phi)
    t = (r - a * e) / (1 - r * a * e)
    return np.abs(t) ** 2, np.angle(t)


def fabry_perot(delta, R):
    """Airy transmission of a lossless Fabry-Perot etalon with finesse coefficient from R."""
    F = 4 * R / (1 - R) ** 2
    return 1 / (1 + F * np.sin(delta / 2) ** 2)


def test_ring_resonator_and_etalon_phase_response():
    phi = np.linspace(-0.2, 0.2, 9)
    T, ph = ring_resonator_transmission(phi)
    got = npfunc.jit(ring_resonator_transmission)(phi)
    assert_same(got[0], T)
    assert_same(got[1], ph)
    # group delay: d(angle t)/d phi, by jacfwd and by vmap(grad)
    gd = npfunc.jacfwd(lambda p: ring_resonator_transmission(p)[1])(phi)
    assert_deriv(gd, fd(lambda p: ring_resonator_transmission(p)[1], phi))
    gd2 = npfunc.vmap(npfunc.grad(lambda p: ring_resonator_transmission(p)[1]))(phi)
    assert_deriv(gd2, np.diag(gd), rtol=1e-12)
    # finesse derivative in the mirror reflectance, float32 in and out
    d = np.linspace(-0.5, 0.5, 5).astype(np.float32)
    R = np.float32(0.9)
    assert_same(npfunc.jit(fabry_perot)(d, R), fabry_perot(d, R), rtol=1e-6)
    g = npfunc.grad(lambda rr: fabry_perot(d, rr).sum())(R)
    assert g.dtype == np.float32 and np.ndim(g) == 0
    assert_deriv(g, fd(lambda rr: fabry_perot(d.astype(float), rr[0]).sum(), np.array([0.9]))[0], rtol=1e-3)


# ---- 11. plasmonics and material models -------------------------------------------------------------


def drude(omega, wp, gamma, eps_inf=1.0):
    return eps_inf - wp**2 / (omega**2 + 1j * gamma * omega)


def spp_wavevector(omega, wp=9.0, gamma=0.07, eps_d=1.77):
    """Surface plasmon polariton k_sp / k0 = sqrt(eps_m eps_d / (eps_m + eps_d)); returns
    the effective index and the propagation length 1 / (2 Im k)."""
    eps_m = drude(omega, wp, gamma)
    n_eff = np.sqrt(eps_m * eps_d / (eps_m + eps_d))
    k0 = omega / 0.1973          # 1/um for omega in eV
    L = 1 / (2 * k0 * n_eff.imag)
    return n_eff, L


def test_surface_plasmon_dispersion_and_propagation_length():
    omega = np.linspace(1.0, 3.0, 5)
    n_eff, L = spp_wavevector(omega)
    assert n_eff.dtype == np.complex128 and L.dtype == np.float64
    assert_jit_replays(spp_wavevector, (omega,), (omega[::-1] * 0.9,))
    JL = npfunc.jacrev(lambda w: spp_wavevector(w)[1])(omega)
    assert_deriv(JL, fd(lambda w: spp_wavevector(w)[1], omega))
    Jn = npfunc.jacfwd(lambda w: spp_wavevector(w)[0])(omega)
    num = fd(lambda w: spp_wavevector(w)[0].real, omega) + 1j * fd(lambda w: spp_wavevector(w)[0].imag, omega)
    assert_deriv(Jn, num)
    # the material parameters: gradient of the propagation length at one frequency
    Lp = lambda p: spp_wavevector(2.0, p[0], p[1])[1]
    p = np.array([9.0, 0.07])
    assert_deriv(npfunc.grad(Lp)(p), fd(Lp, p))
    assert_same(npfunc.vmap(spp_wavevector, in_dims=(None, 0))(2.0, np.array([8.0, 9.0]))[0],
                np.stack([spp_wavevector(2.0, wp)[0] for wp in (8.0, 9.0)]))


def complex_index_from_permittivity(eps):
    """n + i kappa = sqrt(eps) on the branch with kappa >= 0, and the absorption
    coefficient; the n and kappa written into a preallocated (2, N) table."""
    n = np.sqrt(eps)
    n = np.where(n.imag < 0, -n, n)
    out = np.empty((2,) + eps.shape)
    out[0] = n.real
    out[1] = n.imag
    return out


def test_index_table_from_permittivity_preallocated_matches_like_fix():
    """The (2, N) table preallocated with plain np.empty (once refused under jit, naming
    like=) gives NumPy's values under jit (recording and replay), and the like= spelling
    the refusal advised gives the same values and derivatives."""
    eps = np.array([2.25 + 0.1j, -10.0 + 1.2j, 1.0 + 0.05j, -2.0 - 0.5j])
    want = complex_index_from_permittivity(eps)
    assert np.all(want[1] >= 0)
    assert_jit_replays(complex_index_from_permittivity, (eps,), (eps * 1.5,), (eps.conj(),))

    def table_like(eps):
        n = np.sqrt(eps)
        n = np.where(n.imag < 0, -n, n)
        out = np.empty((2,) + eps.shape, like=eps.real)
        out[0] = n.real
        out[1] = n.imag
        return out

    assert_same(npfunc.jit(table_like)(eps), want)
    assert_same(npfunc.jit(table_like)(eps * 1.5), complex_index_from_permittivity(eps * 1.5))
    g = npfunc.grad(lambda e: table_like(e)[1].sum())(eps)
    np.testing.assert_allclose(g, fd_complex(lambda e: complex_index_from_permittivity(e)[1].sum(), eps), rtol=1e-6)
    g_plain = npfunc.grad(lambda e: complex_index_from_permittivity(e)[1].sum())(eps)
    assert g_plain.dtype == g.dtype
    np.testing.assert_allclose(g_plain, g, rtol=1e-12)
    assert_same(npfunc.vmap(table_like)(np.stack([eps, eps.conj()])),
                np.stack([want, complex_index_from_permittivity(eps.conj())]))
    assert_same(npfunc.vmap(complex_index_from_permittivity)(np.stack([eps, eps.conj()])),
                np.stack([want, complex_index_from_permittivity(eps.conj())]))


# ---- 12. time-domain waves -----------------------------------------------------------------


def fdtd_1d(eps_r, steps=60, src=10):
    """1D Yee FDTD (normalised units, Courant 0.5) with a soft Gaussian source; the fields
    are updated in place, slice by slice; returns the energy of E that passed a probe."""
    n = eps_r.size
    Ez = np.zeros(n, like=eps_r)
    Hy = np.zeros(n, like=eps_r)
    probe = []
    for t in range(steps):
        Hy[:-1] += 0.5 * (Ez[1:] - Ez[:-1])
        Ez[1:] += 0.5 / eps_r[1:] * (Hy[1:] - Hy[:-1])
        Ez[src] += np.exp(-0.5 * ((t - 20) / 6.0) ** 2)
        probe.append(Ez[-5])
    return np.sum(np.array(probe) ** 2)


def test_fdtd_inplace_slices_grad_in_permittivity():
    eps = np.ones(40)
    eps[25:32] = 2.5
    want = fdtd_1d(eps)
    assert_same(npfunc.jit(fdtd_1d)(eps), want)
    assert_same(npfunc.jit(fdtd_1d)(eps * 1.1), fdtd_1d(eps * 1.1))
    sl = slice(24, 33)
    def f(e_sub):
        e = np.concatenate([eps[:24], e_sub, eps[33:]])
        return fdtd_1d(e)
    assert_deriv(npfunc.grad(f)(eps[sl]), fd(f, eps[sl]))


def test_fdtd_plain_buffers_match_numpy_and_zeros_like_works():
    """The FDTD fields in plain np.zeros buffers updated slice by slice (once refused under
    grad, naming like=): grad is the differences', jit (recording and replay) NumPy's
    values; the like= spelling (fdtd_1d) still gives NumPy's values under jit."""
    def fdtd_plain(eps_r, steps=30):
        Ez = np.zeros(eps_r.size)
        Hy = np.zeros(eps_r.size)
        for t in range(steps):
            Hy[:-1] += 0.5 * (Ez[1:] - Ez[:-1])
            Ez[1:] += 0.5 / eps_r[1:] * (Hy[1:] - Hy[:-1])
            Ez[3] += np.exp(-0.5 * ((t - 10) / 4.0) ** 2)
        return np.sum(Ez**2)
    eps = np.linspace(1.0, 2.0, 20)
    assert_deriv(npfunc.grad(fdtd_plain)(eps), fd(fdtd_plain, eps))
    assert_jit_replays(fdtd_plain, (eps,), (eps * 1.1,), (eps[::-1].copy(),))
    assert_same(npfunc.jit(lambda e: fdtd_1d(e, 30, 3))(eps), fdtd_1d(eps, 30, 3))


# ---- 13. phase retrieval and aberrations ----------------------------------------------------------


def gerchberg_saxton(amp_in, amp_out, iterations=5, phase0=None):
    """Gerchberg-Saxton: alternate between the two planes, keeping the phase and
    imposing the measured amplitudes; returns the recovered input-plane phase."""
    phase = np.zeros_like(amp_in) if phase0 is None else phase0
    for _ in range(iterations):
        field = amp_in * np.exp(1j * phase)
        far = np.fft.fft2(field)
        far = amp_out * np.exp(1j * np.angle(far))
        near = np.fft.ifft2(far)
        phase = np.angle(near)
    return phase


def test_gerchberg_saxton_jit_and_derivative_in_target():
    rng = np.random.default_rng(13)
    amp_in = np.ones((4, 4))
    amp_out = rng.uniform(0.5, 1.5, (4, 4))
    p0 = rng.uniform(-1, 1, (4, 4))
    want = gerchberg_saxton(amp_in, amp_out, 3, p0)
    jf = npfunc.jit(gerchberg_saxton, static_argnums=2)
    assert_same(jf(amp_in, amp_out, 3, p0), want)
    assert_same(jf(amp_in, amp_out * 1.2, 3, p0 * 0.5), gerchberg_saxton(amp_in, amp_out * 1.2, 3, p0 * 0.5))
    f = lambda a: np.sum(np.cos(gerchberg_saxton(amp_in, a, 3, p0)))
    assert_deriv(npfunc.grad(f)(amp_out), fd(f, amp_out))


def zernike_psf_strehl(coeffs, N=16):
    """Strehl ratio of a circular pupil with defocus, astigmatism and coma (Zernike, in
    waves), from the peak of the FFT-computed PSF relative to the aberration-free one."""
    y, x = np.mgrid[-1:1:N * 1j, -1:1:N * 1j]
    r, th = np.hypot(x, y), np.arctan2(y, x)
    pupil = (r <= 1.0).astype(float)
    Z = np.stack([np.sqrt(3) * (2 * r**2 - 1),
                  np.sqrt(6) * r**2 * np.cos(2 * th),
                  np.sqrt(8) * (3 * r**3 - 2 * r) * np.cos(th)])
    W = np.tensordot(coeffs, Z, axes=1)
    P = np.zeros((2 * N, 2 * N), dtype=complex)
    P[:N, :N] = pupil * np.exp(2j * np.pi * W)
    psf = np.abs(np.fft.fft2(P)) ** 2
    return psf.max() / pupil.sum() ** 2


def test_zernike_strehl_plain_complex_buffer_matches_like_fix():
    """The pupil written into a plain complex np.zeros buffer (once refused under grad,
    naming like=): grad, jit (recording and replay) and vmap of the plain program agree
    with the like= spelling the refusal advised, with NumPy and with the differences."""
    c = np.array([0.05, -0.03, 0.02])
    S = zernike_psf_strehl(c)
    assert 0.5 < S < 1.0

    def strehl_like(coeffs, N=16):
        y, x = np.mgrid[-1:1:N * 1j, -1:1:N * 1j]
        r, th = np.hypot(x, y), np.arctan2(y, x)
        pupil = (r <= 1.0).astype(float)
        Z = np.stack([np.sqrt(3) * (2 * r**2 - 1), np.sqrt(6) * r**2 * np.cos(2 * th),
                      np.sqrt(8) * (3 * r**3 - 2 * r) * np.cos(th)])
        W = np.tensordot(coeffs, Z, axes=1)
        P = np.zeros((2 * N, 2 * N), dtype=complex, like=coeffs)
        P[:N, :N] = pupil * np.exp(2j * np.pi * W)
        psf = np.abs(np.fft.fft2(P)) ** 2
        return psf.max() / pupil.sum() ** 2

    assert_same(npfunc.jit(strehl_like)(c), S)
    assert_same(npfunc.jit(strehl_like)(2 * c), zernike_psf_strehl(2 * c))
    g_like = npfunc.grad(strehl_like)(c)
    assert_deriv(g_like, fd(zernike_psf_strehl, c))
    g_plain = npfunc.grad(zernike_psf_strehl)(c)
    assert g_plain.dtype == g_like.dtype
    np.testing.assert_allclose(g_plain, g_like, rtol=1e-12, atol=1e-15)
    assert_jit_replays(zernike_psf_strehl, (c,), (2 * c,), (-c,))
    cs = np.array([c, -c, 0.5 * c])
    assert_same(npfunc.vmap(strehl_like)(cs), np.stack([zernike_psf_strehl(v) for v in cs]))
    assert_same(npfunc.vmap(zernike_psf_strehl)(cs), np.stack([zernike_psf_strehl(v) for v in cs]))


def interferogram_phase(I1, I2, I3, I4):
    """Four-step phase-shifting interferometry, unwrapped along the row."""
    wrapped = np.arctan2(I4 - I2, I1 - I3)
    return np.unwrap(wrapped)


def test_phase_shifting_interferometry_unwrap():
    x = np.linspace(0, 1, 12)
    phi = 9.0 * x**2                     # several wraps
    frames = [1 + 0.8 * np.cos(phi + k * np.pi / 2) for k in range(4)]
    want = interferogram_phase(*frames)
    np.testing.assert_allclose(want - want[0], phi - phi[0], atol=1e-12)
    assert_same(npfunc.jit(interferogram_phase)(*frames), want)
    f = lambda a: interferogram_phase(a, *frames[1:])
    assert_deriv(npfunc.jacrev(f)(frames[0]), fd(f, frames[0]))
    assert_deriv(npfunc.jacfwd(f)(frames[0]), fd(f, frames[0]))
    st = [np.stack([fr, fr[::-1]]) for fr in frames]
    assert_same(npfunc.vmap(interferogram_phase)(*st),
                np.stack([interferogram_phase(*[s[i] for s in st]) for i in range(2)]))


# ---- 14. complex arrays updated in place, views of complex arrays --------------------------------


def apply_phase_screen(E, phi):
    """Multiply a field by a phase screen in place (the caller's array changes) and
    return its new total power."""
    E *= np.exp(1j * phi)
    return np.sum(np.abs(E) ** 2)


def add_loss_through_views(E, alpha):
    """Attenuate the real and imaginary parts separately through the .real and .imag
    views, then return the field itself (the argument, modified)."""
    E.real *= np.exp(-alpha)
    E.imag[:] = E.imag * np.exp(-2 * alpha)
    return E


def test_complex_argument_updated_in_place_under_transforms():
    rng = np.random.default_rng(14)
    E0 = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    phi = rng.uniform(-1, 1, 5)
    E_plain = E0.copy()
    P = apply_phase_screen(E_plain, phi)
    E_jit = E0.copy()
    assert_same(npfunc.jit(apply_phase_screen)(E_jit, phi), P)
    np.testing.assert_allclose(E_jit, E_plain, rtol=1e-15)
    # differentiating in phi only: E is a plain argument, which cannot hold the traced product
    E_g = E0.copy()
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x \*= y.*Use x = x \* y"):
        npfunc.grad(apply_phase_screen, argnums=1)(E_g, phi)
    np.testing.assert_array_equal(E_g, E0)            # refused before writing anything
    g = npfunc.grad(apply_phase_screen, argnums=(0, 1))(E0.copy(), phi)[1]
    assert_deriv(g, np.zeros(5), atol=1e-12)          # a phase screen conserves power
    # the gradient in the field itself: 2 E (the screen is unitary), in the complex dtype
    E_h = E0.copy()
    gE = npfunc.grad(apply_phase_screen)(E_h, phi)
    np.testing.assert_allclose(gE, 2 * E0, rtol=1e-12)
    np.testing.assert_allclose(E_h, E_plain, rtol=1e-15)


def test_real_and_imag_view_writes_of_a_complex_argument():
    E0 = np.array([1.0 + 2.0j, -0.5 + 0.25j, 3.0 - 1.0j])
    E_plain = E0.copy()
    out = add_loss_through_views(E_plain, 0.3)
    assert out is E_plain
    E_j = E0.copy()
    got = npfunc.jit(add_loss_through_views)(E_j, np.float64(0.3))
    assert_same(got, out)
    np.testing.assert_array_equal(E_j, E_plain)
    E_v = np.stack([E0, 2 * E0])
    want_v = np.stack([add_loss_through_views(e.copy(), 0.3) for e in E_v])
    got_v = npfunc.vmap(add_loss_through_views, in_dims=(0, None))(E_v, 0.3)
    assert_same(got_v, want_v)
    np.testing.assert_array_equal(E_v, want_v)
    loss = lambda a: np.sum(np.abs(add_loss_through_views(E0.copy(), a[0])) ** 2)
    loss_like = lambda a: np.sum(np.abs(add_loss_through_views(np.asarray(E0, like=a).copy(), a)) ** 2)
    assert_deriv(npfunc.grad(loss_like)(np.array(0.3)),
                 fd(loss, np.array([0.3]))[0])
    gE = npfunc.grad(lambda e: np.sum(np.abs(add_loss_through_views(e, 0.3)) ** 2))(E0.copy())
    np.testing.assert_allclose(gE, fd_complex(lambda e: np.sum(np.abs(add_loss_through_views(e.copy(), 0.3)) ** 2), E0),
                               rtol=1e-6)


def intensity_forms(E):
    """Three ways physicists write the intensity of a complex field."""
    a = np.abs(E) ** 2
    b = (E * E.conj()).real
    c = E.real**2 + E.imag**2
    d = np.vdot(E, E)
    return a, b, c, d


def test_intensity_spellings_types_and_complex64():
    E = np.array([0.3 + 0.4j, 1.0 - 2.0j], dtype=np.complex64)
    want = intensity_forms(E)
    assert [w.dtype for w in want] == [np.float32, np.float32, np.float32, np.complex64]
    assert isinstance(want[3], np.complex64)
    got = npfunc.jit(intensity_forms)(E)
    for g, w in zip(got, want):
        assert_same(g, w, rtol=1e-6)
    outs = npfunc.vmap(intensity_forms)(np.stack([E, 2 * E]))
    for k in range(4):
        assert_same(outs[k], np.stack([intensity_forms(E)[k], intensity_forms(2 * E)[k]]), rtol=1e-6)
    for k in range(3):
        g = npfunc.grad(lambda e: intensity_forms(e)[k].sum())(E)
        assert g.dtype == np.complex64
        np.testing.assert_allclose(g, 2 * E, rtol=1e-6)
    g = npfunc.grad(lambda e: intensity_forms(e)[3].real)(E)
    np.testing.assert_allclose(g, 2 * E, rtol=1e-6)
    # the jvp of the vdot: complex scalar tangent 2 Re(conj(E) t)
    t = np.array([1.0 + 0j, 0.5j], dtype=np.complex64)
    out, tan = npfunc.jvp(lambda e: intensity_forms(e)[3], (E,), (t,))
    assert_same(out, want[3])
    assert isinstance(tan, np.complex64)
    np.testing.assert_allclose(tan, 2 * np.real(np.vdot(E, t)), rtol=1e-6)


# ---- 15. coupled modes, supermodes, plane-wave fits -------------------------------------------------


def directional_coupler_power(L, kappa, dbeta):
    """Coupled-mode equations dA/dz = -i K A for two waveguides, solved by scipy's expm;
    returns the power in each guide after length L, launching into guide 0."""
    K = np.array([[dbeta / 2, kappa], [kappa, -dbeta / 2]])
    T = scipy.linalg.expm(-1j * K * L)
    A = T @ np.array([1.0, 0.0])
    return np.abs(A) ** 2


def test_directional_coupler_expm_complex():
    P = directional_coupler_power(1.3, 0.8, 0.4)
    np.testing.assert_allclose(P.sum(), 1.0)
    kap2 = 0.8**2 + 0.2**2
    np.testing.assert_allclose(P[1], 0.8**2 / kap2 * np.sin(np.sqrt(kap2) * 1.3) ** 2)
    assert_same(npfunc.jit(directional_coupler_power)(np.float64(1.3), np.float64(0.8), np.float64(0.4)), P)
    assert_jit_replays(directional_coupler_power, (np.float64(1.3), np.float64(0.8), np.float64(0.4)),
                       (np.float64(2.0), np.float64(0.3), np.float64(-0.2)), rtol=1e-10)
    f = lambda p: directional_coupler_power(p[0], p[1], p[2])
    p = np.array([1.3, 0.8, 0.4])
    assert_deriv(npfunc.jacrev(f)(p), fd(f, p))
    assert_deriv(npfunc.jacfwd(f)(p), fd(f, p))
    Ls = np.linspace(0.5, 3.0, 4)
    assert_same(npfunc.vmap(directional_coupler_power, in_dims=(0, None, None))(Ls, 0.8, 0.4),
                np.stack([directional_coupler_power(L, 0.8, 0.4) for L in Ls]), rtol=1e-10)


def supermodes(beta, kappa):
    """Propagation constants of the supermodes of a waveguide array with nearest-neighbour
    coupling, by eigh of the (real symmetric) coupling matrix; and a complex Hermitian
    variant with a Peierls phase on the couplings."""
    H = np.diag(beta) + np.diag(kappa, 1) + np.diag(kappa, -1)
    return np.linalg.eigvalsh(H)


def supermodes_with_flux(beta, kappa, flux):
    H = np.diag(beta.astype(complex))
    off = kappa * np.exp(1j * flux)
    H = H + np.diag(off, 1) + np.diag(off.conj(), -1)
    w, V = np.linalg.eigh(H)
    return w, np.abs(V) ** 2


def test_waveguide_array_supermodes_eigh():
    beta = np.array([1.0, 1.1, 0.95, 1.05])
    kappa = np.array([0.2, 0.3, 0.25])
    assert_jit_replays(supermodes, (beta, kappa), (beta[::-1].copy(), kappa * 2))
    assert_deriv(npfunc.jacrev(supermodes)(beta, kappa), fd(lambda b: supermodes(b, kappa), beta))
    w, P = supermodes_with_flux(beta, kappa, 0.4)
    got = npfunc.jit(supermodes_with_flux)(beta, kappa, np.float64(0.4))
    assert_same(got[0], w)
    assert_same(got[1], P, rtol=1e-10, atol=1e-14)
    f = lambda phi: supermodes_with_flux(beta, kappa, phi[0])[0]
    assert_deriv(npfunc.jacfwd(lambda phi: supermodes_with_flux(beta, kappa, phi)[0])(0.4),
                 fd(f, np.array([0.4]))[:, 0])
    g = lambda b: supermodes_with_flux(b, kappa, 0.4)[1][:, 0]       # mode 0's intensity profile
    assert_deriv(npfunc.jacrev(g)(beta), fd(g, beta))


def pt_dimer(p):
    """Two coupled waveguides with balanced gain and loss (a PT-symmetric dimer): the
    non-Hermitian coupling matrix by np.linalg.eig, modes ordered by the real part;
    returns propagation constants (real, imaginary parts) and modal intensity profiles."""
    beta, kappa, g = p
    H = np.array([[beta + 1j * g, kappa], [kappa, beta - 1j * g]])
    w, V = np.linalg.eig(H)
    order = np.argsort(w.real)
    return np.concatenate([w[order].real, w[order].imag, (np.abs(V[:, order]) ** 2).ravel()])


def test_pt_symmetric_dimer_non_hermitian_eig():
    p = np.array([1.0, 0.5, 0.2])
    want = pt_dimer(p)
    assert_same(npfunc.jit(pt_dimer)(p), want, rtol=1e-12)
    assert_same(npfunc.jit(pt_dimer)(p * 1.1), pt_dimer(p * 1.1), rtol=1e-12)
    assert_deriv(npfunc.jacrev(pt_dimer)(p), fd(pt_dimer, p))
    assert_deriv(npfunc.jacfwd(pt_dimer)(p), fd(pt_dimer, p))
    ps = np.array([p, [1.0, 0.4, 0.1]])
    assert_same(npfunc.vmap(pt_dimer)(ps), np.stack([pt_dimer(q) for q in ps]), rtol=1e-12)


def plane_wave_fit(x, samples, kx):
    """Decompose a sampled field into plane waves exp(i kx x) by complex least squares."""
    A = np.exp(1j * np.outer(x, kx))
    coef, res, rank, sv = np.linalg.lstsq(A, samples, rcond=None)
    return coef


def test_plane_wave_decomposition_complex_lstsq():
    rng = np.random.default_rng(15)
    x = np.linspace(0, 4, 11)
    kx = np.array([-2.0, 0.5, 1.5])
    c_true = np.array([1.0 + 0.5j, -0.3j, 0.8])
    u = np.exp(1j * np.outer(x, kx)) @ c_true + 0.01 * (rng.standard_normal(11) + 1j * rng.standard_normal(11))
    want = plane_wave_fit(x, u, kx)
    assert_same(npfunc.jit(plane_wave_fit)(x, u, kx), want, rtol=1e-10)
    loss = lambda k: np.sum(np.abs(plane_wave_fit(x, u, k)) ** 2)
    assert_deriv(npfunc.grad(loss)(kx), fd(loss, kx))
    gu = npfunc.grad(lambda v: np.sum(np.abs(plane_wave_fit(x, v, kx)) ** 2))(u)
    np.testing.assert_allclose(gu, fd_complex(lambda v: np.sum(np.abs(plane_wave_fit(x, v, kx)) ** 2), u), rtol=1e-6)


# ---- 16. periodic media ------------------------------------------------------------------------


def bloch_band(omega, n1=1.0, n2=3.0, d1=0.5, d2=0.5):
    """1D photonic crystal: cos(K a) = half the trace of the unit-cell transfer matrix;
    K a from the principal arccos, complex in band gaps (evanescent Bloch waves)."""
    def layer(n, d):
        ph = omega * n * d
        return np.array([[np.cos(ph), 1j * np.sin(ph) / n], [1j * n * np.sin(ph), np.cos(ph)]])
    M = layer(n1, d1) @ layer(n2, d2)
    half_trace = 0.5 * np.trace(M)
    Ka = np.arccos(half_trace.real + 0j)
    return Ka


def test_photonic_crystal_band_edges_complex_arccos():
    omegas = np.array([0.3, 0.6, 0.8, 1.2])
    want = np.stack([bloch_band(w) for w in omegas])
    assert want.dtype == np.complex128
    assert np.any(np.abs(want.imag) > 1e-6)         # some frequency is in a gap
    assert_same(npfunc.vmap(bloch_band)(omegas), want)
    assert_same(npfunc.jit(bloch_band)(np.float64(0.3)), bloch_band(0.3))
    # group velocity in a pass band: d omega / dK = 1 / (dK/d omega)
    dK = npfunc.grad(lambda w: bloch_band(w).real)(0.3)
    assert_deriv(dK, fd(lambda w: bloch_band(w[0]).real, np.array([0.3]))[0])
    J = npfunc.jacfwd(bloch_band)(0.3)
    num = fd(lambda w: bloch_band(w[0]).real, np.array([0.3]))[0] \
        + 1j * fd(lambda w: bloch_band(w[0]).imag, np.array([0.3]))[0]
    assert_deriv(J, num)


def test_bloch_decay_constant_in_band_gaps_on_the_arccos_cut():
    """In a gap cos(K a) is real with |.| > 1: arccos(x + 0j) sits on its branch cut, and the
    derivative along the real axis (the decay constant's dispersion) must be the one of the side
    NumPy's value is on.  Above +1 it had the opposite sign (fixed in elementwise/transcendental)."""
    for w in (1.3, 2.9):                     # half trace below -1, above +1
        num = fd(lambda o: bloch_band(o[0]).real, np.array([w]))[0] \
            + 1j * fd(lambda o: bloch_band(o[0]).imag, np.array([w]))[0]
        assert abs(num.imag) > 0.05
        assert_deriv(npfunc.jacfwd(bloch_band)(w), num)
        assert_deriv(npfunc.jacrev(bloch_band)(w), num)
        decay = lambda o: -bloch_band(o).imag
        assert_deriv(npfunc.grad(decay)(w), -num.imag)
    ws = np.array([1.5, 2.9, 3.0])
    assert_deriv(npfunc.vmap(npfunc.grad(lambda o: np.abs(bloch_band(o))))(ws),
                 np.diag(fd(lambda o: np.abs(np.stack([bloch_band(v) for v in o])), ws)))


def _signed(re, im):
    z = np.empty(1, dtype=complex)
    z.real, z.imag = re, im
    return z


@pytest.mark.parametrize("f, re, im, along", [
    (np.arcsin, 2.0, 0.0, 1.0), (np.arcsin, -2.0, -0.0, 1.0), (np.arcsin, 2.0, -0.0, 1.0),
    (np.arccos, 2.0, 0.0, 1.0), (np.arccos, -2.0, -0.0, 1.0), (np.arccos, -2.0, 0.0, 1.0),
    (np.arcsinh, -0.0, 2.0, 1j), (np.arcsinh, 0.0, -2.0, 1j), (np.arcsinh, 0.0, 2.0, 1j),
    (np.arccosh, -2.0, -0.0, 1.0), (np.arccosh, 0.5, 0.0, 1.0), (np.arccosh, -2.0, 0.0, 1.0)])
def test_inverse_trig_derivative_along_a_branch_cut_takes_the_value_side(f, re, im, along):
    z = _signed(re, im)
    h = 1e-6
    moved = lambda t: f(_signed(re + t, im) if along == 1.0 else _signed(re, im + t))
    num = (moved(h) - moved(-h)) / (2 * h)        # stays on the cut, on the side of the signed zero
    _, tan = npfunc.jvp(f, (z,), (np.array([along], dtype=complex),))
    np.testing.assert_allclose(tan, num, rtol=1e-6)
    # the pullback of Re and Im parts, as jacrev builds it
    J = npfunc.jacrev(f)(z)
    np.testing.assert_allclose(J[0, 0] * along, num[0], rtol=1e-6)


def real_if_close_band(omega):
    """The same band, with NumPy's real_if_close to drop the tiny imaginary part."""
    return np.real_if_close(bloch_band(omega))


def test_real_if_close_refused_with_advice():
    w = np.float64(0.3)
    want = real_if_close_band(w)
    assert want.dtype == np.float64                  # pass band: real
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"real_if_close"):
        npfunc.grad(lambda o: real_if_close_band(o))(w)


# ---- 17. microwave networks --------------------------------------------------------------------


def input_impedance(ZL, Z0, beta_l):
    """Lossless line: Zin = Z0 (ZL + j Z0 tan(beta l)) / (Z0 + j ZL tan(beta l))."""
    t = np.tan(beta_l)
    return Z0 * (ZL + 1j * Z0 * t) / (Z0 + 1j * ZL * t)


def return_loss_db(ZL, Z0, beta_l):
    Zin = input_impedance(ZL, Z0, beta_l)
    gamma = (Zin - 50.0) / (Zin + 50.0)
    return -20 * np.log10(np.abs(gamma))


def test_transmission_line_return_loss_complex_load():
    ZL = 30.0 - 20.0j
    bl = np.linspace(0.1, 1.4, 6)
    want = return_loss_db(ZL, 70.0, bl)
    assert_same(npfunc.jit(return_loss_db)(ZL, 70.0, bl), want)
    assert_jit_replays(return_loss_db, (np.complex128(ZL), np.float64(70.0), bl),
                       (np.complex128(80 + 5j), np.float64(50.0), bl[::-1]))
    assert_deriv(npfunc.jacfwd(return_loss_db, argnums=2)(ZL, 70.0, bl), fd(lambda b: return_loss_db(ZL, 70.0, b), bl))
    g = npfunc.grad(lambda z: return_loss_db(z, 70.0, 0.6))(np.complex128(ZL))
    np.testing.assert_allclose(g, fd_complex(lambda z: return_loss_db(z, 70.0, 0.6), ZL), rtol=1e-6)
    assert isinstance(g, np.complex128) or (isinstance(g, np.ndarray) and g.shape == ())
    gZ0 = npfunc.grad(return_loss_db, argnums=1)(ZL, 70.0, 0.6)
    assert_deriv(gZ0, fd(lambda z: return_loss_db(ZL, z[0], 0.6), np.array([70.0]))[0])


def s_to_t(S):
    """Two-port scattering to transfer (cascade) matrix."""
    S11, S12, S21, S22 = S[0, 0], S[0, 1], S[1, 0], S[1, 1]
    return np.array([[-(S11 * S22 - S12 * S21) / S21, S11 / S21], [-S22 / S21, 1 / S21]])


def t_to_s(T):
    T11, T12, T21, T22 = T.ravel()
    return np.array([[T12 / T22, (T11 * T22 - T12 * T21) / T22], [1 / T22, -T21 / T22]])


def cascade_transmission(phases, r=0.3):
    """Cascade of partially reflecting mirrors separated by phase delays; |S21|^2."""
    Sm = np.array([[r, np.sqrt(1 - r**2) * 1j], [np.sqrt(1 - r**2) * 1j, r]])
    T = s_to_t(Sm)
    for ph in phases:
        D = np.diag(np.exp(np.array([1j, -1j]) * ph))
        T = T @ D @ s_to_t(Sm)
    S = t_to_s(T)
    return np.abs(S[1, 0]) ** 2


def test_cascaded_mirrors_s_and_t_matrices():
    ph = np.array([0.3, 1.2, 2.0])
    want = cascade_transmission(ph)
    assert 0 < want <= 1
    assert_same(npfunc.jit(cascade_transmission)(ph), want)
    assert_same(npfunc.jit(cascade_transmission)(ph[::-1].copy()), cascade_transmission(ph[::-1].copy()))
    assert_deriv(npfunc.grad(cascade_transmission)(ph), fd(cascade_transmission, ph))
    assert_deriv(npfunc.hessian(cascade_transmission)(ph), fd(npfunc.grad(cascade_transmission), ph), atol=1e-7)
    phs = np.array([ph, ph + 0.1])
    assert_same(npfunc.vmap(cascade_transmission)(phs), np.stack([cascade_transmission(p) for p in phs]))
    assert_same(npfunc.vmap(cascade_transmission, in_dims=1)(phs.T.copy()),
                np.stack([cascade_transmission(p) for p in phs]))


def directivity(weights, n_theta=61, n_phi=32):
    """Directivity of a planar array (x-y grid, half-wave spacing) over a ground plane, by
    numerical integration of |AF|^2 over the upper half-space with np.trapezoid in both angles."""
    th = np.linspace(0, np.pi / 2, n_theta)
    ph = np.linspace(0, 2 * np.pi, n_phi)
    TH, PH = np.meshgrid(th, ph, indexing="ij")
    ny, nx = weights.shape
    kx = np.pi * np.sin(TH) * np.cos(PH)
    ky = np.pi * np.sin(TH) * np.sin(PH)
    AF = np.einsum("mn,tpm,tpn->tp", weights, np.exp(1j * ky[..., None] * np.arange(ny)),
                   np.exp(1j * kx[..., None] * np.arange(nx)))
    U = np.abs(AF) ** 2
    P = np.trapezoid(np.trapezoid(U * np.sin(TH), ph, axis=1), th)
    return 2 * np.pi * U.max() / P


def test_planar_array_directivity_einsum_and_double_trapezoid():
    w = np.ones((2, 3), dtype=complex)
    D = directivity(w)
    assert isinstance(D, np.float64)
    assert_same(npfunc.jit(directivity)(w), D)
    w2 = w * np.exp(0.3j * np.arange(3)) * np.exp(-0.5j * np.arange(2))[:, None] * np.array([[1.0], [0.7]])
    assert_same(npfunc.jit(directivity)(w2), directivity(w2))
    g = npfunc.grad(directivity)(w2)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, fd_complex(directivity, w2), rtol=1e-5, atol=1e-8)


# ---- 18. modes found by root finding -----------------------------------------------------------


def slab_te0_index(wavelength, d=1.0, n_core=1.5, n_clad=1.45):
    """Effective index of the TE0 mode of a symmetric slab waveguide: the root of the
    dispersion relation tan(kx d/2) = gamma/kx by brentq (a Python float)."""
    k0 = 2 * np.pi / wavelength
    def disp(neff):
        kx = k0 * np.sqrt(n_core**2 - neff**2)
        gamma = k0 * np.sqrt(neff**2 - n_clad**2)
        return np.tan(kx * d / 2) - gamma / kx
    return scipy.optimize.brentq(disp, n_clad + 1e-9, n_core - 1e-9)


def test_slab_mode_index_by_brentq_implicit_derivative():
    n = slab_te0_index(1.55)
    assert isinstance(n, float) and 1.45 < n < 1.5
    assert_deriv(npfunc.grad(slab_te0_index)(1.55), fd(lambda l: slab_te0_index(l[0]), np.array([1.55]))[0])
    # group index n_g = n - lambda dn/dlambda, over a few wavelengths
    lams = np.array([1.3, 1.55, 1.8])
    ng = npfunc.vmap(lambda l: slab_te0_index(l) - l * npfunc.grad(slab_te0_index)(l))(lams)
    want = [slab_te0_index(l) - l * fd(lambda v: slab_te0_index(v[0]), np.array([l]))[0] for l in lams]
    assert_deriv(ng, want)
    got = npfunc.jit(slab_te0_index)(np.float64(1.55))
    assert got == n and isinstance(got, np.float64)       # Python float -> np.float64 (known)


def leaky_mode(a, x0=1.0 + 0.5j):
    """A complex propagation constant: the root of w^2 = a + 1j by Newton from a complex start."""
    return scipy.optimize.newton(lambda w: w**2 - a - 1j, x0)


def leaky_mode_real_system(a):
    """The advised form: real and imaginary parts as a real system for scipy.optimize.root."""
    g = lambda w: w**2 - a - 1j
    sol = scipy.optimize.root(lambda v: np.stack([g(v[0] + 1j * v[1]).real, g(v[0] + 1j * v[1]).imag]),
                              np.array([1.0, 0.5]), tol=1e-12)
    return sol.x[0] + 1j * sol.x[1]


def test_complex_newton_refused_instead_of_dropping_the_imaginary_part():
    """newton from a complex x0 under jit and vmap returned the real part of the root (a float64,
    with a ComplexWarning), and a Python complex x0 raised a raw TypeError; now a refusal whose
    advice (a real system of twice the size) works (fixed in scipy/optimize/_problem.py)."""
    w = leaky_mode(2.0)
    assert isinstance(w, complex) and abs(w.imag) > 0.1
    for x0 in (1.0 + 0.5j, np.complex128(1.0 + 0.5j), [1.0 + 0.5j, 1.2 + 0.1j]):
        with pytest.raises(npfunc.errors.NpfuncError, match=r"complex x0 is not supported.*real system"):
            npfunc.jit(lambda a: leaky_mode(a, x0))(np.float64(2.0))
        with pytest.raises(npfunc.errors.NpfuncError, match=r"complex x0 is not supported"):
            npfunc.vmap(lambda a: leaky_mode(a, x0))(np.array([2.0, 3.0]))
        with pytest.raises(npfunc.errors.NpfuncError, match=r"complex x0 is not supported"):
            npfunc.grad(lambda a: np.abs(leaky_mode(a, x0)).sum())(2.0)
    np.testing.assert_allclose(leaky_mode_real_system(2.0), w, rtol=1e-12)
    assert_same(npfunc.jit(leaky_mode_real_system)(np.float64(2.0)), leaky_mode_real_system(2.0), rtol=1e-12)
    L = lambda a: np.abs(leaky_mode_real_system(a))
    assert_deriv(npfunc.grad(L)(2.0), fd(lambda v: L(v[0]), np.array([2.0]))[0])
    assert_same(npfunc.vmap(leaky_mode_real_system)(np.array([2.0, 3.0])),
                np.stack([leaky_mode_real_system(a) for a in (2.0, 3.0)]), rtol=1e-10)


# ---- 19. buffers of the wrong kind ---------------------------------------------------------------


def sampled_field(k, x, complex_buffer=False):
    """Fill a buffer with the plane wave exp(i k x); with a real buffer (a common slip) NumPy
    keeps the real part, with a ComplexWarning."""
    buf = np.zeros_like(x, dtype=complex) if complex_buffer else np.zeros_like(x)
    buf[:] = np.exp(1j * k * x)
    return buf


def test_complex_values_into_a_real_buffer_refused_as_an_npfunc_error():
    """It was a bare TypeError from set_at; now an npfunc refusal (still a TypeError) whose
    advice (a complex buffer, or np.real) works."""
    x = np.linspace(0.0, 1.0, 4)
    with pytest.warns(np.exceptions.ComplexWarning):
        want_real = sampled_field(2.0, x)
    np.testing.assert_allclose(want_real, np.cos(2.0 * x))
    for transform in (npfunc.jit, npfunc.grad):
        with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"complex values into an array of dtype "
                           r"float64.*np.zeros_like\(x, dtype=complex\)"):
            transform(lambda xx: sampled_field(2.0, xx).sum())(x)
    want = sampled_field(2.0, x, complex_buffer=True)
    assert_same(npfunc.jit(sampled_field, static_argnums=2)(np.float64(2.0), x, True), want)
    J = npfunc.jacfwd(lambda xx: sampled_field(2.0, xx, True))(x)
    np.testing.assert_allclose(J, np.diag(2j * want))


# ---- 20. fields, Poynting vectors, beam propagation -------------------------------------------------


def time_averaged_poynting(E, H):
    """<S> = 1/2 Re(E x H*) for complex phasors, rows of 3-vectors."""
    return 0.5 * np.real(np.cross(E, np.conj(H)))


def plane_wave_fields(k_dir, pol, n=1.5, eta0=376.73):
    """E and H phasors of a plane wave in a dielectric along unit k with polarisation pol."""
    k_hat = k_dir / np.linalg.norm(k_dir)
    E = pol - np.dot(pol, k_hat) * k_hat           # transverse part
    H = n / eta0 * np.cross(k_hat, E)
    return E, H


def test_poynting_vector_cross_of_complex_phasors():
    k = np.array([0.2, 0.1, 1.0])
    pol = np.array([1.0, 1j, 0.0])                 # circular-ish polarisation
    E, H = plane_wave_fields(k, pol)
    S = time_averaged_poynting(E, H)
    assert S.dtype == np.float64
    np.testing.assert_allclose(np.cross(S, k), 0.0, atol=1e-15)       # along k
    assert_jit_replays(time_averaged_poynting, (E, H), (E.conj(), 2 * H))
    Es, Hs = np.stack([E, 2 * E, E.conj()]), np.stack([H, H, H.conj()])
    assert_same(npfunc.vmap(time_averaged_poynting)(Es, Hs),
                np.stack([time_averaged_poynting(e, h) for e, h in zip(Es, Hs)]))
    f = lambda kk: time_averaged_poynting(*plane_wave_fields(kk, pol))
    assert_deriv(npfunc.jacrev(f)(k), fd(f, k))
    assert_deriv(npfunc.jacfwd(f)(k), fd(f, k))
    gp = npfunc.grad(lambda p: time_averaged_poynting(*plane_wave_fields(k, p))[2])(pol)
    np.testing.assert_allclose(gp, fd_complex(lambda p: time_averaged_poynting(*plane_wave_fields(k, p))[2], pol),
                               rtol=1e-6, atol=1e-12)


def split_step_bpm(n_profile, field0, dz=0.5, steps=6, k0=2 * np.pi / 1.0, n0=1.5, dx=0.5, closure=False):
    """Split-step Fourier beam propagation through a 1D index profile; each step is
    checkpointed (recomputed in the backward pass). Returns the power in the central guide.
    With closure=True the step closes over the index profile (the natural spelling), else
    it receives it as an argument."""
    kx = 2 * np.pi * np.fft.fftfreq(field0.size, d=dx)
    diffract = np.exp(-1j * kx**2 / (2 * k0 * n0) * dz)

    def step(u, n):
        u = np.fft.ifft(np.fft.fft(u) * diffract)
        return u * np.exp(1j * k0 * (n - n0) * dz)

    def step_closed(u):
        return step(u, n_profile)

    u = field0
    for _ in range(steps):
        u = npfunc.checkpoint(step_closed)(u) if closure else npfunc.checkpoint(step)(u, n_profile)
    centre = slice(field0.size // 2 - 2, field0.size // 2 + 2)
    return np.sum(np.abs(u[centre]) ** 2) * dx


def _bpm_inputs():
    x = (np.arange(16) - 8) * 0.5
    return 1.5 + 0.01 * np.exp(-(x / 2.0) ** 2), np.exp(-(x / 1.5) ** 2).astype(complex)


def test_beam_propagation_checkpointed_steps():
    n, u0 = _bpm_inputs()
    P = split_step_bpm(n, u0)
    assert isinstance(P, np.float64)
    assert split_step_bpm(n, u0, closure=True) == P
    assert_same(npfunc.jit(split_step_bpm)(n, u0), P)
    assert_same(npfunc.jit(split_step_bpm)(n * 1.001, u0), split_step_bpm(n * 1.001, u0))
    g = npfunc.grad(split_step_bpm)(n, u0)
    assert_deriv(g, fd(lambda m: split_step_bpm(m, u0), n), rtol=1e-5, atol=1e-7)
    gu = npfunc.grad(split_step_bpm, argnums=1)(n, u0)
    np.testing.assert_allclose(gu, fd_complex(lambda v: split_step_bpm(n, v), u0), rtol=1e-5, atol=1e-9)
    ns = np.stack([n, n[::-1].copy()])
    assert_same(npfunc.vmap(split_step_bpm, in_dims=(0, None))(ns, u0),
                np.stack([split_step_bpm(m, u0) for m in ns]))
    # closing over a value traced by the *outer* transform only (u0 differentiated, n plain) works
    gu_closed = npfunc.grad(lambda v: split_step_bpm(n, v, closure=True))(u0)
    np.testing.assert_allclose(gu_closed, gu, rtol=1e-12)


def test_checkpoint_closing_over_a_jit_traced_value_returns_an_array():
    n, u0 = _bpm_inputs()
    got = npfunc.jit(lambda m: split_step_bpm(m, u0, closure=True))(n)
    assert_same(got, split_step_bpm(n, u0))


def test_checkpoint_closing_over_the_differentiated_value():
    n, u0 = _bpm_inputs()
    g = npfunc.grad(lambda m: split_step_bpm(m, u0, closure=True))(n)
    assert_deriv(g, npfunc.grad(split_step_bpm)(n, u0), rtol=1e-12)


def iq_demodulate(signal, t, f_carrier):
    """Coherent detection of a sampled real signal: mix with exp(-i w t), average; dict out."""
    baseband = signal * np.exp(-2j * np.pi * f_carrier * t)
    z = 2 * baseband.mean()
    return {"I": z.real, "Q": z.imag, "amplitude": np.abs(z), "phase_deg": np.angle(z, deg=True)}


def test_iq_demodulation_dict_of_numpy_scalars():
    t = np.arange(200) / 1000.0
    s = 0.7 * np.cos(2 * np.pi * 50.0 * t + 0.4)
    want = iq_demodulate(s, t, 50.0)
    assert isinstance(want["I"], np.float64) and isinstance(want["amplitude"], np.float64)
    np.testing.assert_allclose(want["amplitude"], 0.7, rtol=1e-12)
    np.testing.assert_allclose(want["phase_deg"], np.degrees(0.4), rtol=1e-12)
    got = npfunc.jit(iq_demodulate)(s, t, 50.0)
    for k in want:
        assert_same(got[k], want[k], rtol=1e-11)
    got2 = npfunc.jit(iq_demodulate)(2 * s, t, 50.0)
    assert_same(got2["amplitude"], iq_demodulate(2 * s, t, 50.0)["amplitude"], rtol=1e-11)
    # the phase's derivative in the carrier frequency (a frequency offset tilts the phase)
    ph = lambda f: iq_demodulate(s, t, f)["phase_deg"]
    assert_deriv(npfunc.grad(ph)(50.0), fd(lambda f: ph(f[0]), np.array([50.0]))[0])
    _, tan = npfunc.jvp(lambda sig: iq_demodulate(sig, t, 50.0), (s,), (s,))
    for k in ("I", "Q", "amplitude"):      # linear in the signal: the tangent along s is the value
        np.testing.assert_allclose(tan[k], want[k], rtol=1e-10, atol=1e-14)
        assert isinstance(tan[k], np.float64) or np.ndim(tan[k]) == 0


# ---- 21. antennas and magnetostatics with special functions ----------------------------------------


def dipole_radiation_resistance(kL):
    """Radiation resistance of a thin centre-fed dipole of electrical length kL (Balanis 4-70),
    with the sine and cosine integrals from scipy.special.sici."""
    eta = 376.73
    si1, ci1 = sps.sici(kL)
    si2, ci2 = sps.sici(2 * kL)
    gamma = 0.5772156649015329
    return eta / (2 * np.pi) * (gamma + np.log(kL) - ci1
                                + 0.5 * np.sin(kL) * (si2 - 2 * si1)
                                + 0.5 * np.cos(kL) * (gamma + np.log(kL / 2) + ci2 - 2 * ci1))


def test_dipole_radiation_resistance_sici():
    R = dipole_radiation_resistance(np.pi)          # half-wave dipole: about 73 ohm
    np.testing.assert_allclose(R, 73.08, rtol=1e-3)
    assert isinstance(R, np.float64)
    assert_same(npfunc.jit(dipole_radiation_resistance)(np.float64(np.pi)), R)
    kLs = np.array([0.5, np.pi, 2 * np.pi - 0.3])
    assert_jit_replays(dipole_radiation_resistance, (kLs,), (kLs[::-1] * 0.8,))
    assert_deriv(npfunc.jacfwd(dipole_radiation_resistance)(kLs), fd(dipole_radiation_resistance, kLs))
    assert_deriv(npfunc.vmap(npfunc.grad(dipole_radiation_resistance))(kLs),
                 np.diag(fd(dipole_radiation_resistance, kLs)))


def loop_field_on_plane(rho, a=1.0, I=1.0, ellipk=sps.ellipk, ellipe=sps.ellipe):
    """Axial field B_z of a circular current loop (radius a) in its own plane at radius rho < a,
    from the complete elliptic integrals (mu0 = 1)."""
    m = 4 * a * rho / (a + rho) ** 2
    K, E = ellipk(m), ellipe(m)
    return I / (2 * np.pi) / (a + rho) * (K + (a**2 - rho**2) / (a - rho) ** 2 * E)


def ellipk_agm(m, iterations=8):
    """K(m) = pi / (2 AGM(1, sqrt(1 - m))), by a fixed number of AGM steps."""
    a, b = np.ones_like(m), np.sqrt(1 - m)
    for _ in range(iterations):
        a, b = 0.5 * (a + b), np.sqrt(a * b)
    return np.pi / (2 * a)


def ellipe_agm(m, iterations=8):
    """E(m) by the AGM with the sum of squared half-differences (Abramowitz & Stegun 17.6)."""
    a, b = np.ones_like(m), np.sqrt(1 - m)
    c2_sum = 0.5 * m                      # c_0^2 / 2 with c_0^2 = m
    p = 1.0
    for _ in range(iterations):
        c = 0.5 * (a - b)
        a, b = 0.5 * (a + b), np.sqrt(a * b)
        p *= 2.0
        c2_sum = c2_sum + p / 2 * c**2
    return np.pi / (2 * a) * (1 - c2_sum)


def test_current_loop_elliptic_integrals_and_agm_work():
    rho = np.array([0.1, 0.3, 0.5])
    want = loop_field_on_plane(rho)
    # scipy.special.ellipk/ellipe were refused here; they are primitives now
    assert_jit_replays(loop_field_on_plane, (rho,), (rho[::-1] * 0.9,))
    assert_deriv(npfunc.jacrev(loop_field_on_plane)(rho), fd(loop_field_on_plane, rho))
    np.testing.assert_allclose(ellipk_agm(rho), sps.ellipk(rho), rtol=1e-14)
    np.testing.assert_allclose(ellipe_agm(rho), sps.ellipe(rho), rtol=1e-14)
    agm = lambda r: loop_field_on_plane(r, ellipk=ellipk_agm, ellipe=ellipe_agm)
    np.testing.assert_allclose(agm(rho), want, rtol=1e-13)
    assert_same(npfunc.jit(agm)(rho), agm(rho))
    assert_deriv(npfunc.jacrev(agm)(rho), fd(loop_field_on_plane, rho))
    # d K / d m = (E - (1 - m) K) / (2 m (1 - m))
    m = rho
    dK = (sps.ellipe(m) - (1 - m) * sps.ellipk(m)) / (2 * m * (1 - m))
    assert_deriv(npfunc.vmap(npfunc.grad(ellipk_agm))(m), dK, rtol=1e-10)


# ---- 22. spectral zoom ---------------------------------------------------------------------------


def zoom_spectrum(signal, f_lo, f_hi, m=6, fs=1.0):
    """Power spectrum on a fine grid between f_lo and f_hi by the chirp-z transform
    (scipy.signal.czt, which transposes its input with x.transpose(*np.arange(...)))."""
    w = np.exp(-2j * np.pi * (f_hi - f_lo) / (m * fs))
    a = np.exp(2j * np.pi * f_lo / fs)
    X = scipy.signal.czt(signal, m=m, w=w, a=a)
    return np.abs(X) ** 2 / signal.size


def test_chirp_z_zoom_spectrum():
    """x.transpose(np.int64(-1)) of a 1-d traced array (and np.transpose(x, 0)) raised a raw
    TypeError ('int' object is not iterable): NumPy takes one integer as the axes of a 1-d array
    (fixed in primitives/shape/basic.py)."""
    t = np.arange(24)
    s = np.cos(2 * np.pi * 0.21 * t) + 0.5 * np.cos(2 * np.pi * 0.23 * t + 0.3)
    want = zoom_spectrum(s, 0.18, 0.26)
    assert_same(npfunc.jit(zoom_spectrum)(s, 0.18, 0.26), want)
    assert_same(npfunc.jit(zoom_spectrum)(s[::-1].copy(), 0.18, 0.26), zoom_spectrum(s[::-1].copy(), 0.18, 0.26))
    J = npfunc.jacrev(lambda x: zoom_spectrum(x, 0.18, 0.26))(s)
    assert_deriv(J, fd(lambda x: zoom_spectrum(x, 0.18, 0.26), s))
    g = npfunc.grad(lambda f0: zoom_spectrum(s, f0, 0.26).sum())(0.18)
    assert_deriv(g, fd(lambda f0: zoom_spectrum(s, f0[0], 0.26).sum(), np.array([0.18]))[0])
    assert_same(npfunc.vmap(zoom_spectrum, in_dims=(0, None, None))(np.stack([s, 2 * s]), 0.18, 0.26),
                np.stack([want, zoom_spectrum(2 * s, 0.18, 0.26)]))
    x = np.linspace(0.0, 1.0, 3)
    for f in (lambda v: v.transpose(np.int64(-1)), lambda v: np.transpose(v, 0)):
        assert_same(npfunc.jit(f)(x), f(x))
    with pytest.raises(ValueError):
        npfunc.jit(lambda v: np.outer(v, v).transpose(1))(x)


# ---- 23. tabulated fields ----------------------------------------------------------------------------

_X_GRID = np.linspace(-2.0, 2.0, 9)
_Y_GRID = np.linspace(-1.0, 1.0, 5)
_BEAM = np.exp(-(_X_GRID[:, None] ** 2 + 2 * _Y_GRID[None, :] ** 2))


def detector_signal(offset, interp):
    """Power on a 3-pixel detector whose centre is displaced by ``offset`` (x, y), read from a
    tabulated beam profile through a grid interpolator built once from plain data."""
    pts = np.stack([offset[0] + np.array([-0.5, 0.0, 0.5]), offset[1] + np.zeros(3)], axis=-1)
    return np.sum(interp(pts))


def test_tabulated_beam_through_a_grid_interpolator():
    import scipy.interpolate

    import npfunc.scipy.interpolate as nsi
    twin = nsi.RegularGridInterpolator((_X_GRID, _Y_GRID), _BEAM)
    off = np.array([0.2, -0.1])
    plain = scipy.interpolate.RegularGridInterpolator((_X_GRID, _Y_GRID), _BEAM)
    want = detector_signal(off, plain)
    np.testing.assert_allclose(detector_signal(off, twin), want, rtol=1e-14)
    assert_same(npfunc.jit(detector_signal, static_argnums=1)(off, twin), detector_signal(off, twin))
    assert_deriv(npfunc.grad(detector_signal)(off, twin), fd(lambda o: detector_signal(o, plain), off))
    offs = np.array([[0.2, -0.1], [-0.3, 0.25]])
    assert_same(npfunc.vmap(detector_signal, in_dims=(0, None))(offs, twin),
                np.stack([detector_signal(o, twin) for o in offs]))


def test_plain_scipy_grid_interpolator_called_on_traced_points():
    """SciPy's interpolator made once from plain data, evaluated at traced points: a twin of
    it (its grid and values) evaluates them."""
    import scipy.interpolate
    plain = scipy.interpolate.RegularGridInterpolator((_X_GRID, _Y_GRID), _BEAM)
    off = np.array([0.2, -0.1])
    want = detector_signal(off, plain)
    for _ in range(3):
        assert_deriv(npfunc.grad(detector_signal)(off, plain), fd(lambda o: detector_signal(o, plain), off))
    jitted = npfunc.jit(lambda o: detector_signal(o, plain))
    assert_same(jitted(off), want, rtol=1e-14)
    assert_same(jitted(off + 0.05), detector_signal(off + 0.05, plain), rtol=1e-14)
    offs = np.array([[0.2, -0.1], [-0.3, 0.25]])
    assert_same(npfunc.vmap(detector_signal, in_dims=(0, None))(offs, plain),
                np.stack([detector_signal(o, plain) for o in offs]), rtol=1e-14)
    assert type(plain) is scipy.interpolate.RegularGridInterpolator.__bases__[0]  # still SciPy's object
