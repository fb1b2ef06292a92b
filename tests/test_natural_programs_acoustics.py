"""Natural programs from acoustics and audio signal processing, written first as plain
NumPy/SciPy the way an acoustician or audio engineer writes them, then run under npfunc's
transforms (jit with a replay on new values, vmap against a Python loop, grad, jacrev,
jacfwd, hessian, jvp, vjp and their compositions, each transformed function called at least
five times on the same and on new inputs so that the cached and compiled eager paths are
exercised) and compared with the plain program: Python type, dtype, shape and value, side
effects on arguments, and five-point differences for derivatives.

Programs:
  * windows and spectra: Kaiser window (scipy.special.i0) differentiated in beta, a Tukey
    window filled in a loop, windowed power spectra (np.hanning, scipy.signal.get_window,
    an in-place doubling of the one-sided bins), an STFT with frames copied into a
    preallocated buffer, spectrograms in dB with a floor, scipy.signal.stft frame energies,
    spectral centroid and flatness, Welch band power through a boolean band mask;
  * filters: RBJ cookbook biquads (np.array of computed coefficients), direct form I and
    transposed direct form II sample loops (a state vector updated in place), lfilter,
    a three-band peaking EQ as an SOS array for sosfilt, biquad magnitude responses in dB,
    freqz of an FIR, a one-pole smoother with an early return, a Schroeder comb with a
    circular delay line, a Schroeder allpass, Karplus-Strong plucked strings, gradient-based
    FIR and parametric-EQ design (scipy.optimize.minimize with jac=npfunc.grad);
  * room acoustics: Sabine and Eyring reverberation times, a shoebox report as a dict,
    band RT60 from an absorption table by np.interp, image-source impulse responses
    (windowed-sinc fractional delays, and nearest-sample integer delays), Schroeder
    backward integration and a T20 fit by np.polyfit, ISO 9613-1 air absorption, Paris'
    diffuse-field absorption by scipy.integrate.quad;
  * levels: SPL in dB, Leq, decibel addition in a loop, L10/L50/L90 by np.percentile
    (a dict), A and C weighting curves, A-weighted totals, octave-band levels from FFT bins,
    phon-to-sone (scalar branch and np.where), Stevens' total loudness, a soft-knee
    compressor curve, an envelope follower with attack/release branches, a float32 soft
    clipper, a fader gain applied in place, peak normalisation;
  * pitch: autocorrelation pitch with argmax and parabolic interpolation, the YIN
    cumulative-mean-normalised difference, the harmonic product spectrum (in-place
    products on a slice);
  * resampling: scipy.signal.resample, linear resampling by np.interp, resample_poly,
    windowed-sinc fractional delays by np.convolve, CubicSpline resampling;
  * physical acoustics: Helmholtz resonators, stiff-string partials, string fundamentals,
    circular-membrane modes (jn_zeros), rectangular room modes, the speed of sound,
    Doppler shifts, the mass law, expansion-chamber mufflers, baffled-piston directivity
    (j1 with the on-axis limit by np.where) and radiation resistance, a tube mode by brentq,
    the 1-D wave equation by leapfrog finite differences (slice updates, buffer rotation),
    a damped string's energy (in-place += on velocity and displacement);
  * cepstra, mel and LPC: real cepstrum, mel scale and a mel filterbank built in loops,
    MFCCs by scipy.fft.dct, LPC by scipy.linalg.solve_toeplitz and by Levinson-Durbin
    (in-place predictor updates), formants from np.roots.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import scipy.fft
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.special

import npfunc
from natural_checks import assert_deriv, assert_same, fd

C_AIR = 343.0
P_REF = 20e-6


# ==== the programs ===============================================================================
# ---- windows and spectra --------------------------------------------------------------------


def kaiser_window(N, beta):
    """Kaiser window by the zeroth-order modified Bessel function."""
    n = np.arange(N)
    r = 2.0 * n / (N - 1) - 1.0
    return scipy.special.i0(beta * np.sqrt(1.0 - r**2)) / scipy.special.i0(beta)


def tukey_window(N, alpha):
    """Tapered cosine window written as a loop over samples into a buffer."""
    w = np.ones(N)
    edge = alpha * (N - 1) / 2.0
    for n in range(N):
        if n < edge:
            w[n] = 0.5 * (1 + np.cos(np.pi * (n / edge - 1)))
        elif n > (N - 1) - edge:
            w[n] = 0.5 * (1 + np.cos(np.pi * ((N - 1 - n) / edge - 1)))
    return w


def windowed_power_spectrum(x, window="hann"):
    """One-sided power spectrum of a windowed frame, normalised by the window energy."""
    N = len(x)
    if window == "hann":
        w = np.hanning(N)
    else:
        w = scipy.signal.get_window(window, N)
    X = np.fft.rfft(x * w)
    P = np.abs(X) ** 2 / np.sum(w**2)
    P[1:-1] *= 2
    return P


def stft_magnitude(x, nfft=8, hop=4, like=None):
    """Magnitude STFT with frames copied into a preallocated buffer (a plain np.zeros,
    or with like=x a traced one)."""
    w = np.hanning(nfft)
    nframes = 1 + (len(x) - nfft) // hop
    frames = np.zeros((nframes, nfft), like=like)
    for i in range(nframes):
        start = i * hop
        frames[i] = x[start:start + nfft] * w
    return np.abs(np.fft.rfft(frames, axis=1))


def spectrogram_db(x, nfft=8, hop=4, floor=1e-10):
    S = stft_magnitude(x, nfft, hop) ** 2
    return 10 * np.log10(np.maximum(S, floor))


def scipy_stft_energy(x, fs=8000.0):
    f, t, Z = scipy.signal.stft(x, fs=fs, nperseg=8, noverlap=4)
    return np.sum(np.abs(Z) ** 2, axis=0)


def spectral_centroid(x, fs=8000.0):
    mag = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), d=1.0 / fs)
    return np.sum(freqs * mag) / np.sum(mag)


def spectral_flatness(x, eps=1e-12):
    """Wiener entropy: geometric over arithmetic mean of the power spectrum."""
    P = np.abs(np.fft.rfft(x)) ** 2 + eps
    return np.exp(np.mean(np.log(P))) / np.mean(P)


def welch_band_power(x, fs=1000.0, band=(100.0, 250.0)):
    f, Pxx = scipy.signal.welch(x, fs=fs, nperseg=16)
    mask = (f >= band[0]) & (f <= band[1])
    return np.trapezoid(Pxx[mask], f[mask])


# ---- filters ---------------------------------------------------------------------------------


def biquad_lowpass(f0, Q, fs=48000.0):
    """RBJ audio-EQ-cookbook low-pass; returns normalised (b, a)."""
    w0 = 2 * np.pi * f0 / fs
    alpha = np.sin(w0) / (2 * Q)
    cw = np.cos(w0)
    b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return b / a[0], a / a[0]


def biquad_peaking(f0, gain_db, Q, fs=48000.0):
    A = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / fs
    alpha = np.sin(w0) / (2 * Q)
    b = np.array([1 + alpha * A, -2 * np.cos(w0), 1 - alpha * A])
    a = np.array([1 + alpha / A, -2 * np.cos(w0), 1 - alpha / A])
    return b / a[0], a / a[0]


def biquad_df1(x, b, a):
    """Direct form I, sample by sample, output into a preallocated buffer."""
    y = np.zeros_like(x)
    x1 = x2 = y1 = y2 = 0.0
    for n in range(len(x)):
        y[n] = b[0] * x[n] + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1 = x1, x[n]
        y2, y1 = y1, y[n]
    return y


def biquad_df2t_state(x, b, a):
    """Transposed direct form II with a state vector updated in place."""
    z = np.zeros(2)
    y = np.empty(len(x))
    for n, xn in enumerate(x):
        yn = b[0] * xn + z[0]
        z[0] = b[1] * xn - a[1] * yn + z[1]
        z[1] = b[2] * xn - a[2] * yn
        y[n] = yn
    return y


def lowpass_lfilter(x, f0, Q=0.707, fs=48000.0):
    b, a = biquad_lowpass(f0, Q, fs)
    return scipy.signal.lfilter(b, a, x)


def eq_cascade_sosfilt(x, gains_db, fs=48000.0):
    """Three peaking sections stacked into an SOS array for scipy.signal.sosfilt."""
    centres = (100.0, 1000.0, 8000.0)
    sos = np.zeros((3, 6))
    for i, (fc, g) in enumerate(zip(centres, gains_db)):
        b, a = biquad_peaking(fc, g, 1.0, fs)
        sos[i, :3] = b
        sos[i, 3:] = a
    return scipy.signal.sosfilt(sos, x)


def biquad_magnitude_db(params, freqs, fs=48000.0):
    """|H(e^jw)| in dB of a peaking biquad, evaluated directly (z^-1 = e^-jw)."""
    f0, g, Q = params
    b, a = biquad_peaking(f0, g, Q, fs)
    z1 = np.exp(-2j * np.pi * freqs / fs)
    H = (b[0] + b[1] * z1 + b[2] * z1**2) / (a[0] + a[1] * z1 + a[2] * z1**2)
    return 20 * np.log10(np.abs(H))


def freqz_group_delay_proxy(b, n=16):
    """|H| of an FIR filter by scipy.signal.freqz."""
    w, h = scipy.signal.freqz(b, worN=n)
    return np.abs(h)


def one_pole_smoother(x, alpha):
    """Exponential smoother; an empty signal returns early."""
    if len(x) == 0:
        return x
    y = np.empty_like(x)
    y[0] = x[0]
    for n in range(1, len(x)):
        y[n] = alpha * x[n] + (1 - alpha) * y[n - 1]
    return y


def feedback_comb(x, g, delay=3, like=None):
    """Schroeder comb with a circular delay line."""
    buf = np.zeros(delay, like=like)
    y = np.zeros(len(x), like=like)
    idx = 0
    for n in range(len(x)):
        out = x[n] + g * buf[idx]
        buf[idx] = out
        idx = (idx + 1) % delay
        y[n] = out
    return y


def schroeder_allpass(x, g, delay=2):
    y = np.zeros(len(x))
    for n in range(len(x)):
        xd = x[n - delay] if n >= delay else 0.0
        yd = y[n - delay] if n >= delay else 0.0
        y[n] = -g * x[n] + xd + g * yd
    return y


def karplus_strong(excitation, decay, n_out=24):
    """Plucked string: a delay line with a two-point averaging loss filter."""
    p = len(excitation)
    buf = excitation.copy()
    out = np.zeros(n_out)
    for n in range(n_out):
        out[n] = buf[n % p]
        buf[n % p] = decay * 0.5 * (buf[n % p] + buf[(n + 1) % p])
    return out


def fir_design_loss(h, freqs, desired):
    """Squared error between |H| of an FIR filter and a desired magnitude."""
    n = np.arange(len(h))
    E = np.exp(-1j * np.outer(freqs, n))
    H = E @ h
    return np.mean((np.abs(H) - desired) ** 2)


def design_fir(h0, freqs, desired, grad):
    res = scipy.optimize.minimize(fir_design_loss, h0, args=(freqs, desired), jac=grad, method="BFGS")
    return res.x, res.fun


def eq_fit_loss(params, freqs, target_db):
    return np.mean((biquad_magnitude_db(params, freqs) - target_db) ** 2)


# ---- room acoustics --------------------------------------------------------------------------


def sabine_rt60(volume, areas, alphas):
    A = np.sum(areas * alphas)
    return 0.161 * volume / A


def eyring_rt60(volume, areas, alphas):
    S = np.sum(areas)
    alpha_mean = np.sum(areas * alphas) / S
    return -0.161 * volume / (S * np.log(1 - alpha_mean))


def room_rt60_report(dims, alphas):
    """Shoebox room: a dict of volume, surface, Sabine and Eyring times and the
    critical distance."""
    Lx, Ly, Lz = dims
    V = Lx * Ly * Lz
    areas = np.array([Ly * Lz, Ly * Lz, Lx * Lz, Lx * Lz, Lx * Ly, Lx * Ly])
    T_sab = sabine_rt60(V, areas, alphas)
    T_eyr = eyring_rt60(V, areas, alphas)
    return {"V": V, "S": areas.sum(), "T_sabine": T_sab, "T_eyring": T_eyr,
            "r_c": 0.057 * np.sqrt(V / T_sab)}


def band_rt60(freqs, volume, surface, table_f, table_alpha):
    """Absorption read from an octave-band table by np.interp, then Sabine per band."""
    alpha = np.interp(freqs, table_f, table_alpha)
    return 0.161 * volume / (surface * alpha)


def image_source_rir(src, mic, room, beta, fs=8000.0, n=64, order=1):
    """Shoebox impulse response by image sources; each arrival is a windowed-sinc
    fractional delay, attenuated by 1/(4 pi r) and the wall reflection factors."""
    rir = np.zeros(n)
    t = np.arange(n)
    for nx, ny, nz in itertools.product(range(-order, order + 1), repeat=3):
        if abs(nx) + abs(ny) + abs(nz) > order:
            continue
        img = np.array([(2 * np.ceil(nx / 2)) * room[0] + (-1) ** nx * src[0],
                        (2 * np.ceil(ny / 2)) * room[1] + (-1) ** ny * src[1],
                        (2 * np.ceil(nz / 2)) * room[2] + (-1) ** nz * src[2]])
        r = np.linalg.norm(img - mic)
        delay = r / C_AIR * fs
        amp = beta ** (abs(nx) + abs(ny) + abs(nz)) / (4 * np.pi * r)
        rir += amp * np.sinc(t - delay) * np.hanning(n)
    return rir


def image_source_rir_int(src, mic, room, beta, fs=8000.0, n=64):
    """First-order image sources at the nearest sample (integer delays)."""
    rir = np.zeros(n)
    images = [src.copy()]
    for axis in range(3):
        for wall in (0.0, room[axis]):
            im = src.copy()
            im[axis] = 2 * wall - src[axis]
            images.append(im)
    for k, im in enumerate(images):
        r = np.linalg.norm(im - mic)
        idx = int(round(r / C_AIR * fs))
        if idx < n:
            rir[idx] += (1.0 if k == 0 else beta) / (4 * np.pi * r)
    return rir


def schroeder_edc_db(rir):
    """Energy decay curve by backward integration, in dB re the total energy."""
    e = np.cumsum(rir[::-1] ** 2)[::-1]
    return 10 * np.log10(e / e[0])


def t_from_edc(edc_db, fs):
    """Reverberation time from a linear fit to the decay curve between -5 and -25 dB."""
    t = np.arange(len(edc_db)) / fs
    mask = (edc_db <= -5) & (edc_db >= -25)
    slope, intercept = np.polyfit(t[mask], edc_db[mask], 1)
    return -60.0 / slope


def exp_decay_rt(tau, fs=1000.0, n=200):
    t = np.arange(n) / fs
    rir = np.exp(-t / tau) * np.cos(2 * np.pi * 50.0 * t)
    return t_from_edc(schroeder_edc_db(rir), fs)


def air_absorption_db_per_m(f, T=293.15, hr=50.0, pa=101.325):
    """ISO 9613-1 atmospheric absorption coefficient in dB/m."""
    pr = 101.325
    T0 = 293.15
    T01 = 273.16
    C = -6.8346 * (T01 / T) ** 1.261 + 4.6151
    h = hr * 10 ** C * (pa / pr) ** -1
    frO = pa / pr * (24 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    frN = pa / pr * (T / T0) ** -0.5 * (9 + 280 * h * np.exp(-4.170 * ((T / T0) ** (-1 / 3) - 1)))
    return 8.686 * f**2 * ((1.84e-11 * (pa / pr) ** -1 * (T / T0) ** 0.5)
                           + (T / T0) ** -2.5 * (0.01275 * np.exp(-2239.1 / T) / (frO + f**2 / frO)
                                                 + 0.1068 * np.exp(-3352.0 / T) / (frN + f**2 / frN)))


def diffuse_absorption(Z):
    """Paris' formula: random-incidence absorption of a locally reacting surface with
    normalised impedance Z (real), by scipy.integrate.quad."""
    def alpha(theta):
        r = (Z * np.cos(theta) - 1) / (Z * np.cos(theta) + 1)
        return (1 - r**2) * np.sin(2 * theta)
    val, _ = scipy.integrate.quad(alpha, 0.0, np.pi / 2)
    return val


# ---- levels and weightings --------------------------------------------------------------------


def spl_db(p):
    rms = np.sqrt(np.mean(p**2))
    return 20 * np.log10(rms / P_REF)


def leq_db(levels):
    return 10 * np.log10(np.mean(10 ** (levels / 10)))


def sum_levels_db(levels):
    total = 0.0
    for L in levels:
        total += 10 ** (L / 10)
    return 10 * np.log10(total)


def statistical_levels(levels):
    """L10, L50, L90 percentiles of a level history, as a dict."""
    return {"L10": np.percentile(levels, 90), "L50": np.median(levels),
            "L90": np.percentile(levels, 10)}


def a_weighting_db(f):
    """IEC 61672 A-weighting in dB."""
    f2 = f**2
    ra = (12194.0**2 * f2**2) / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20 * np.log10(ra) + 2.00


def c_weighting_db(f):
    f2 = f**2
    rc = (12194.0**2 * f2) / ((f2 + 20.6**2) * (f2 + 12194.0**2))
    return 20 * np.log10(rc) + 0.06


def a_weighted_level(band_levels, centres):
    return 10 * np.log10(np.sum(10 ** ((band_levels + a_weighting_db(centres)) / 10)))


def octave_band_levels(x, fs=8000.0, centres=(250.0, 500.0, 1000.0, 2000.0)):
    """Octave band SPLs by summing FFT power between the band edges."""
    P = np.abs(np.fft.rfft(x)) ** 2 / len(x) ** 2
    f = np.fft.rfftfreq(len(x), 1 / fs)
    out = np.zeros(len(centres))
    for i, fc in enumerate(centres):
        band = (f >= fc / np.sqrt(2)) & (f < fc * np.sqrt(2))
        out[i] = 10 * np.log10(2 * P[band].sum() / P_REF**2)
    return out


def phon_to_sone(L):
    if L >= 40:
        return 2 ** ((L - 40) / 10)
    return (L / 40) ** 2.642


def phon_to_sone_vec(L):
    return np.where(L >= 40, 2 ** ((L - 40) / 10), (np.maximum(L, 0) / 40) ** 2.642)


def total_loudness_sones(specific):
    """Stevens: the loudest band plus F times the rest (F = 0.3 for octaves)."""
    Smax = np.max(specific)
    return Smax + 0.3 * (np.sum(specific) - Smax)


def dynamic_range_compressor(x_db, threshold=-20.0, ratio=4.0, knee=6.0):
    """Static curve with a soft knee (three branches by np.where)."""
    over = x_db - threshold
    hard = threshold + over / ratio
    soft = x_db + (1 / ratio - 1) * (over + knee / 2) ** 2 / (2 * knee)
    return np.where(2 * over < -knee, x_db, np.where(2 * np.abs(over) <= knee, soft, hard))


def envelope_follower(x, attack=0.5, release=0.05):
    env = np.zeros_like(x)
    e = 0.0
    for n in range(len(x)):
        level = abs(x[n])
        coef = attack if level > e else release
        e = e + coef * (level - e)
        env[n] = e
    return env


def soft_clip(x, drive):
    return np.tanh(drive * x) / np.tanh(drive)


def gain_db_inplace(buf, gain_db):
    """Apply a fader gain to an audio buffer in place (and return it)."""
    buf *= 10 ** (gain_db / 20)
    return buf


def normalise_peak(x, peak_db=-1.0):
    return x * (10 ** (peak_db / 20) / np.max(np.abs(x)))


# ---- pitch and periodicity ------------------------------------------------------------------


def autocorr_pitch(x, fs=8000.0, fmin=200.0, fmax=2000.0):
    """Pitch from the autocorrelation peak, refined by parabolic interpolation."""
    n = len(x)
    r = np.correlate(x, x, mode="full")[n - 1:]
    lo, hi = int(fs / fmax), int(fs / fmin)
    k = lo + np.argmax(r[lo:hi])
    a, b, c = r[k - 1], r[k], r[k + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return fs / (k + shift)


def yin_difference(x, max_lag, like=None):
    """YIN's cumulative-mean-normalised difference function, in a loop."""
    d = np.zeros(max_lag, like=like)
    for tau in range(1, max_lag):
        d[tau] = np.sum((x[:-tau] - x[tau:]) ** 2)
    dn = np.ones(max_lag, like=like)
    running = 0.0
    for tau in range(1, max_lag):
        running += d[tau]
        dn[tau] = d[tau] * tau / running
    return dn


def harmonic_product_spectrum(x, R=3):
    X = np.abs(np.fft.rfft(x))
    hps = X.copy()
    for r in range(2, R + 1):
        dec = X[::r]
        hps[:len(dec)] *= dec
    return hps[:len(X) // R]


# ---- resampling ------------------------------------------------------------------------------


def resample_fft(x, num):
    return scipy.signal.resample(x, num)


def resample_linear(x, ratio):
    n_out = int(len(x) * ratio)
    t_out = np.arange(n_out) / ratio
    return np.interp(t_out, np.arange(len(x)), x)


def resample_poly_2_3(x):
    return scipy.signal.resample_poly(x, 2, 3)


def fractional_delay(x, d, taps=7):
    """Windowed-sinc fractional delay applied by np.convolve."""
    k = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(k - d) * np.hamming(taps)
    h = h / h.sum()
    return np.convolve(x, h, mode="same")


def spline_resample(x, t_new):
    cs = scipy.interpolate.CubicSpline(np.arange(len(x)), x)
    return cs(t_new)


# ---- resonators, strings, membranes, rooms ----------------------------------------------------


def helmholtz_frequency(V, r, L, c=C_AIR):
    """Helmholtz resonator with flanged-neck end correction 1.7 r."""
    A = np.pi * r**2
    return c / (2 * np.pi) * np.sqrt(A / (V * (L + 1.7 * r)))


def stiff_string_partials(f0, B, n=6):
    k = np.arange(1, n + 1)
    return k * f0 * np.sqrt(1 + B * k**2)


def string_f0(L, T, mu):
    return np.sqrt(T / mu) / (2 * L)


def membrane_modes(radius, tension, sigma, nmodes=3):
    """Circular membrane: f_mn = j_mn c / (2 pi a), Bessel zeros from scipy."""
    c = np.sqrt(tension / sigma)
    freqs = []
    for m in range(2):
        for z in scipy.special.jn_zeros(m, nmodes):
            freqs.append(z * c / (2 * np.pi * radius))
    return np.sort(np.array(freqs))


def room_modes(dims, nmax=1, c=C_AIR):
    Lx, Ly, Lz = dims
    out = []
    for nx, ny, nz in itertools.product(range(nmax + 1), repeat=3):
        if nx == ny == nz == 0:
            continue
        out.append(c / 2 * np.sqrt((nx / Lx) ** 2 + (ny / Ly) ** 2 + (nz / Lz) ** 2))
    return np.array(out)


def speed_of_sound(T_celsius):
    return 331.3 * np.sqrt(1 + T_celsius / 273.15)


def doppler(f, v_source, v_observer, c=C_AIR):
    return f * (c + v_observer) / (c - v_source)


def mass_law_tl(f, m):
    return 20 * np.log10(f * m) - 47.0


def expansion_chamber_tl(f, L, area_ratio, c=C_AIR):
    k = 2 * np.pi * f / c
    return 10 * np.log10(1 + 0.25 * (area_ratio - 1 / area_ratio) ** 2 * np.sin(k * L) ** 2)


def piston_directivity(theta, ka):
    """Baffled piston 2 J1(ka sin t)/(ka sin t), with the on-axis limit by np.where."""
    u = ka * np.sin(theta)
    safe = np.where(np.abs(u) < 1e-8, 1.0, u)
    return np.where(np.abs(u) < 1e-8, 1.0, 2 * scipy.special.j1(safe) / safe)


def piston_radiation_resistance(ka):
    return 1 - scipy.special.j1(2 * ka) / ka


def spring_end_tube_mode(h):
    """First root of k L tan(k L) = h (tube with a compliant end), by brentq."""
    return scipy.optimize.brentq(lambda q: q * np.tan(q) - h, 1e-9, np.pi / 2 - 1e-9)


def wave_equation_fd(c, L=1.0, nx=21, nt=30, pluck=0.3, like=None):
    """Plucked string by the explicit leapfrog scheme, in-place slice updates."""
    dx = L / (nx - 1)
    dt = 0.5 * dx / 1.0
    x = np.linspace(0, L, nx)
    u = np.where(x < pluck, x / pluck, (L - x) / (L - pluck)) * 0.01
    u_prev = u.copy()
    r2 = (c * dt / dx) ** 2
    u_next = np.zeros(nx, like=like)
    for _ in range(nt):
        u_next[1:-1] = 2 * u[1:-1] - u_prev[1:-1] + r2 * (u[2:] - 2 * u[1:-1] + u[:-2])
        u_next[0] = u_next[-1] = 0.0
        u_prev, u, u_next = u, u_next, u_prev
    return u


def damped_string_energy(params, nx=15, nt=20):
    c, damping = params
    dx = 1.0 / (nx - 1)
    dt = 0.4 * dx
    u = np.sin(np.pi * np.linspace(0, 1, nx))
    v = np.zeros(nx)
    for _ in range(nt):
        lap = np.zeros(nx)
        lap[1:-1] = (u[2:] - 2 * u[1:-1] + u[:-2]) / dx**2
        v += dt * (c**2 * lap - damping * v)
        u += dt * v
    return 0.5 * np.sum(v**2) * dx


# ---- cepstra, mel, LPC ------------------------------------------------------------------------


def real_cepstrum(x):
    return np.fft.irfft(np.log(np.abs(np.fft.rfft(x))), n=len(x))


def hz_to_mel(f):
    return 2595.0 * np.log10(1 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (m / 2595.0) - 1)


def mel_filterbank(nfilt, nfft, fs):
    """Triangular filters built with Python loops over FFT bins (floor of the edges)."""
    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(fs / 2), nfilt + 2)
    bins = np.floor((nfft + 1) * mel_to_hz(mels) / fs).astype(int)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for m in range(1, nfilt + 1):
        left, centre, right = bins[m - 1], bins[m], bins[m + 1]
        for k in range(left, centre):
            fb[m - 1, k] = (k - left) / (centre - left)
        for k in range(centre, right):
            fb[m - 1, k] = (right - k) / (right - centre)
    return fb


def mfcc(frame, fb, ncoef=4):
    P = np.abs(np.fft.rfft(frame * np.hamming(len(frame)))) ** 2 / len(frame)
    logmel = np.log(fb @ P + 1e-10)
    return scipy.fft.dct(logmel, type=2, norm="ortho")[:ncoef]


def lpc_coefficients(x, order=3):
    """Autocorrelation-method LPC by scipy.linalg.solve_toeplitz."""
    r = np.array([np.dot(x[:len(x) - k], x[k:]) for k in range(order + 1)])
    return scipy.linalg.solve_toeplitz(r[:order], r[1:order + 1])


def levinson_durbin(r, order):
    """Levinson-Durbin recursion, in-place updates of the predictor."""
    a = np.zeros(order + 1)
    a[0] = 1.0
    err = r[0]
    for i in range(1, order + 1):
        acc = r[i] + np.dot(a[1:i], r[i - 1:0:-1])
        k = -acc / err
        a_prev = a.copy()
        for j in range(1, i):
            a[j] = a_prev[j] + k * a_prev[i - j]
        a[i] = k
        err *= 1 - k**2
    return a, err


def lpc_formant_frequencies(a, fs=8000.0):
    """Formants from the roots of the LPC polynomial in the upper half plane."""
    roots = np.roots(a)
    roots = roots[np.imag(roots) > 0]
    return np.sort(np.angle(roots) * fs / (2 * np.pi))


# ==== helpers ====================================================================================

rng = np.random.default_rng(440)


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def same_bits(got, first):
    """Identical results of two calls of one transformed function: type, dtype, bits."""
    if isinstance(first, dict):
        assert set(got) == set(first)
        for k in first:
            same_bits(got[k], first[k])
        return
    if isinstance(first, (tuple, list)):
        assert type(got) is type(first) and len(got) == len(first)
        for g, w in zip(got, first):
            same_bits(g, w)
        return
    assert type(got) is type(first), (type(got), type(first))
    assert np.asarray(got).dtype == np.asarray(first).dtype
    np.testing.assert_array_equal(got, first)


def repeated(tf, *argsets, n=5):
    """Call tf n times on every argument set (interleaved, so that cached pull-backs and
    compiled paths are taken on the later calls); every call must give the first call's
    result bit for bit.  Under jit the first call records (eagerly) and the later ones run
    the optimised program, which may differ in the last bits (documented in
    compiler/contract.py: sum(a * b) runs as a matmul): the replays must agree with each
    other bit for bit and with the recording call to rounding.  Returns the first results."""
    firsts = [tf(*args) for args in argsets]
    if type(tf).__name__ == "Jitted":
        seconds = [tf(*args) for args in argsets]
        for got, first in zip(seconds, firsts):
            assert_same(got, first, rtol=1e-13, atol=1e-13 * np.max(np.abs(first)))
        firsts_replay, n = seconds, n - 1
    else:
        firsts_replay = firsts
    for _ in range(n - 1):
        for args, first in zip(argsets, firsts_replay):
            same_bits(tf(*args), first)
    return firsts


BUFFER_FIX = r"np\.zeros\(shape, like=x\)"


def assert_refused(call, transform, fix=BUFFER_FIX, error=npfunc.errors.NpfuncError):
    """A refusal: npfunc's error, naming the transform and the fix."""
    with pytest.raises(error) as info:
        call()
    assert transform in str(info.value), str(info.value)
    assert re.search(fix, str(info.value)), str(info.value)


def check_array(f, x, xs, *, vmap=True, second=False, rtol=1e-12, d_rtol=1e-6, d_atol=1e-9, eps=1e-5):
    """An array-valued program of one array: jit (record and replay), vmap, jit(vmap),
    jacrev, jacfwd, jvp, vjp, vmap(jacrev) and optionally jacfwd(jacrev)."""
    ref = f(x)
    jf = npfunc.jit(f)
    for args in ((x,), (xs[0],), (x,), (xs[1],), (xs[0],)):
        assert_same(jf(*args), f(*args), rtol=rtol)
    if vmap:
        want = loop(f, xs)
        for _ in range(2):
            assert_same(npfunc.vmap(f)(xs), want, rtol=rtol)
        assert_same(npfunc.jit(npfunc.vmap(f))(xs), want, rtol=rtol)
    J = fd(f, x, eps)
    J1 = fd(f, xs[0], eps)
    jr = repeated(npfunc.jacrev(f), (x,), (xs[0],))
    jw = repeated(npfunc.jacfwd(f), (x,), (xs[0],))
    for got in (jr, jw):
        assert_deriv(got[0], J, rtol=d_rtol, atol=d_atol)
        assert_deriv(got[1], J1, rtol=d_rtol, atol=d_atol)
    t = np.linspace(-1.0, 1.0, np.size(x)).reshape(np.shape(x))
    Jm = np.reshape(J, (np.size(ref), np.size(x)))
    for _ in range(5):
        out, tan = npfunc.jvp(f, (x,), (t,))
        assert_same(out, ref, rtol=rtol)
        assert_deriv(tan, (Jm @ t.ravel()).reshape(np.shape(ref)), rtol=d_rtol, atol=d_atol)
    ct = np.linspace(1.0, 2.0, np.size(ref)).reshape(np.shape(ref))
    for _ in range(5):
        out, pull = npfunc.vjp(f, x)
        assert_same(out, ref, rtol=rtol)
        assert_deriv(pull(ct)[0], (ct.ravel() @ Jm).reshape(np.shape(x)), rtol=d_rtol, atol=d_atol)
    if vmap:
        per = loop(npfunc.jacrev(f), xs)
        for _ in range(3):
            assert_same(npfunc.vmap(npfunc.jacrev(f))(xs), per, rtol=1e-10, atol=1e-14)
    if second:
        H = fd(npfunc.jacrev(f), x)
        got = repeated(npfunc.jacfwd(npfunc.jacrev(f)), (x,), (xs[0],))
        assert_deriv(got[0], H, rtol=1e-5, atol=1e-7)


def check_scalar(f, x, xs, *, hess=True, vmap=True, rtol=1e-12, d_rtol=1e-6, d_atol=1e-9, h_atol=1e-7):
    """A scalar program of one array: jit (record and replay), vmap, grad, jit(grad),
    vmap(grad) per-sample gradients, jit(vmap(grad)), hessian and jvp(grad) Hessian-vector
    products, each called repeatedly."""
    ref = f(x)
    jf = npfunc.jit(f)
    for args in ((x,), (xs[0],), (x,), (xs[1],), (xs[0],)):
        assert_same(jf(*args), f(*args), rtol=rtol)
    G, G1 = fd(f, x), fd(f, xs[0])
    for tf in (npfunc.grad(f), npfunc.jit(npfunc.grad(f))):
        got = repeated(tf, (x,), (xs[0],))
        assert_deriv(got[0], G, rtol=d_rtol, atol=d_atol)
        assert_deriv(got[1], G1, rtol=d_rtol, atol=d_atol)
        assert got[0].dtype == np.asarray(x).dtype
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref, rtol=rtol)
    if vmap:
        assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=rtol)
        per = loop(npfunc.grad(f), xs)
        for tf in (npfunc.vmap(npfunc.grad(f)), npfunc.jit(npfunc.vmap(npfunc.grad(f)))):
            got = repeated(tf, (xs,), (xs[::-1].copy(),))
            assert_same(got[0], per, rtol=1e-10, atol=1e-14)
            assert_same(got[1], per[::-1], rtol=1e-10, atol=1e-14)
    if hess:
        H = fd(npfunc.grad(f), x)
        got = repeated(npfunc.hessian(f), (x,), (xs[0],))
        assert_deriv(got[0], H, rtol=1e-5, atol=h_atol)
        assert_deriv(got[1], fd(npfunc.grad(f), xs[0]), rtol=1e-5, atol=h_atol)
        t = np.linspace(-1.0, 1.0, np.size(x)).reshape(np.shape(x))
        hvp = lambda p: npfunc.jvp(npfunc.grad(f), (p,), (t,))[1]
        got = repeated(hvp, (x,), (xs[0],))
        Hm = H.reshape(np.size(x), np.size(x))
        assert_deriv(got[0], (Hm @ t.ravel()).reshape(np.shape(x)), rtol=1e-5, atol=h_atol)


def check_scalar0(f, t, ts, *, second=True, rtol=1e-12, d_rtol=1e-6, d_atol=1e-9, solver=False):
    """A scalar function of one 0-d variable: jit, vmap, grad, grad(grad), jit(grad),
    vmap(grad), repeatedly; t and ts[i] are Python or NumPy floats.  ``solver``: f returns
    a SciPy solver's Python float, which a traced result cannot be (npfunc's twins return
    a NumPy float64 then, scipy/integrate/_quad.py and optimize/_problem.py)."""
    ref = f(t)
    jf = npfunc.jit(f)
    for a in (np.float64(t), np.float64(ts[0]), np.float64(t), np.float64(ts[1])):
        want = f(a)
        if solver:
            assert type(want) is float
            want = np.float64(want)
        assert_same(jf(a), want, rtol=rtol)
    for a in (t, ts[0]):   # a Python float is static under jit: SciPy's own result
        if solver and type(a) is float:
            assert_same(jf(a), f(a))
    num = lambda g, s: fd(lambda v: g(v[0]), np.array([s]))[0]
    for tf in (npfunc.grad(f), npfunc.jit(npfunc.grad(f))):
        got = repeated(tf, (t,), (ts[0],))
        assert_deriv(got[0], num(f, t), rtol=d_rtol, atol=d_atol)
        assert_deriv(got[1], num(f, ts[0]), rtol=d_rtol, atol=d_atol)
    tsa = np.asarray(ts, dtype=float)
    assert_same(npfunc.vmap(f)(tsa), loop(f, tsa), rtol=rtol)
    got = repeated(npfunc.vmap(npfunc.grad(f)), (tsa,))
    assert_same(got[0], loop(npfunc.grad(f), tsa), rtol=1e-10, atol=1e-14)
    if second:
        gg = npfunc.grad(npfunc.grad(f))
        got = repeated(gg, (t,), (ts[0],), (ts[1],))
        assert_deriv(got[0], num(npfunc.grad(f), t), rtol=1e-5, atol=1e-7)
        assert_deriv(got[1], num(npfunc.grad(f), ts[0]), rtol=1e-5, atol=1e-7)
        assert_deriv(got[2], num(npfunc.grad(f), ts[1]), rtol=1e-5, atol=1e-7)
        got = repeated(npfunc.vmap(gg), (tsa,))
        assert_same(got[0], loop(gg, tsa), rtol=1e-10, atol=1e-14)


# ==== windows and spectra ========================================================================


def test_kaiser_window_in_beta():
    f = lambda beta: kaiser_window(8, beta)
    w = f(3.0)
    assert w.dtype == np.float64 and w.shape == (8,)
    assert_same(npfunc.jit(f)(np.float64(3.0)), w)
    assert_same(npfunc.jit(f)(np.float64(5.0)), f(5.0))
    for tf in (npfunc.jacfwd(f), npfunc.jacrev(f)):
        got = repeated(tf, (3.0,), (5.0,))
        assert_deriv(got[0], fd(lambda b: f(b[0]), np.array([3.0]))[:, 0])
        assert_deriv(got[1], fd(lambda b: f(b[0]), np.array([5.0]))[:, 0])
    # the window's equivalent noise bandwidth as a scalar of beta
    enbw = lambda beta: 8 * np.sum(kaiser_window(8, beta) ** 2) / np.sum(kaiser_window(8, beta)) ** 2
    check_scalar0(enbw, 3.0, [1.0, 6.0, 4.5])
    assert_same(npfunc.vmap(f)(np.array([1.0, 2.0])), loop(f, np.array([1.0, 2.0])))


def test_tukey_window_loop_in_alpha_plain_buffer_differentiates():
    f = lambda alpha: tukey_window(9, alpha)
    np.testing.assert_allclose(f(0.5), scipy.signal.windows.tukey(9, 0.5), atol=1e-15)
    # w = np.ones(N) made in the function takes w[n] = <traced in alpha>: derivatives in
    # alpha against five-point differences (the branches are taken eagerly)
    # (at alpha = 0.5 the edge is the sample n = 2: a kink the differences straddle)
    for tf in (npfunc.jacfwd(f), npfunc.jacrev(f)):
        got = repeated(tf, (0.45,), (0.7,))
        assert_deriv(got[0], fd(lambda a: f(a[0]), np.array([0.45]))[:, 0])
        assert_deriv(got[1], fd(lambda a: f(a[0]), np.array([0.7]))[:, 0])
    mean = lambda a: np.mean(f(a))
    got = repeated(npfunc.grad(mean), (0.45,), (0.7,))
    assert_deriv(got[0], fd(lambda a: mean(a[0]), np.array([0.45]))[0])
    assert_deriv(got[1], fd(lambda a: mean(a[0]), np.array([0.7]))[0])
    assert_same(npfunc.jvp(f, (0.5,), (1.0,))[0], f(0.5))
    # the branches compare sample indices with alpha: refused by jit and vmap
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit"):
        npfunc.jit(f)(np.float64(0.5))
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap"):
        npfunc.vmap(f)(np.array([0.5, 0.3]))


def test_windowed_power_spectrum_inplace_doubling():
    x = rng.standard_normal(16)
    xs = rng.standard_normal((3, 16))
    for window in ("hann", "blackman"):
        f = lambda v: windowed_power_spectrum(v, window)
        check_array(f, x, xs)
        total = lambda v: np.sum(windowed_power_spectrum(v, window))
        check_scalar(total, x, xs, hess=True)
    x32 = x.astype(np.float32)
    want = windowed_power_spectrum(x32)
    assert want.dtype == np.float64   # np.hanning is float64: the product promotes
    assert_same(npfunc.jit(windowed_power_spectrum)(x32), want)
    assert_same(npfunc.vmap(windowed_power_spectrum)(xs.astype(np.float32)),
                loop(windowed_power_spectrum, xs.astype(np.float32)))


def test_stft_plain_frames_buffer_and_spectrogram_db_match_like_fix():
    x = rng.standard_normal(24)
    xs = rng.standard_normal((3, 24))
    # frames = np.zeros(...) made in the function takes frames[i] = <traced>: the plain
    # program under every transform, and the like=x spelling (the old refusal's advice)
    check_array(stft_magnitude, x, xs)
    fixed = lambda v: stft_magnitude(v, like=v)
    assert_same(fixed(x), stft_magnitude(x))
    check_array(fixed, x, xs)
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        assert_same(jac(stft_magnitude)(x), jac(fixed)(x), rtol=1e-13, atol=1e-15)
    loss_plain = lambda v: np.mean(spectrogram_db(v))
    check_scalar(loss_plain, x, xs, hess=False)
    loss = lambda v: np.mean(10 * np.log10(np.maximum(stft_magnitude(v, like=v) ** 2, 1e-10)))
    assert_same(loss(x), loss_plain(x))
    check_scalar(loss, x, xs, hess=False)
    assert_same(npfunc.grad(loss_plain)(x), npfunc.grad(loss)(x), rtol=1e-13, atol=1e-15)
    # vmap over the time axis of a (time, channel) buffer
    stereo = rng.standard_normal((24, 2))
    assert_same(npfunc.vmap(stft_magnitude, in_dims=1)(stereo), loop(stft_magnitude, stereo.T))
    assert_same(npfunc.vmap(fixed, in_dims=1)(stereo), loop(stft_magnitude, stereo.T))


def test_scipy_stft_frame_energy():
    x = rng.standard_normal(24)
    xs = rng.standard_normal((3, 24))
    check_array(scipy_stft_energy, x, xs)


def test_spectral_centroid_and_flatness():
    x = rng.standard_normal(16)
    xs = rng.standard_normal((3, 16))
    c = spectral_centroid(x)
    assert isinstance(c, np.float64)
    check_scalar(spectral_centroid, x, xs)
    check_scalar(spectral_flatness, x, xs)
    x32 = x.astype(np.float32)
    want = spectral_flatness(x32)
    assert isinstance(want, np.float32)
    assert_same(npfunc.jit(spectral_flatness)(x32), want, rtol=1e-6)
    g = npfunc.grad(spectral_flatness)(x32)
    assert g.dtype == np.float32
    assert_deriv(g, fd(spectral_flatness, x), rtol=2e-3, atol=1e-4)


def test_welch_band_power_mask():
    x = rng.standard_normal(48)
    xs = rng.standard_normal((3, 48))
    check_scalar(welch_band_power, x, xs, hess=True)


# ==== filters ====================================================================================


def test_biquad_coefficients_in_f0_and_q():
    f = lambda p: np.concatenate(biquad_lowpass(p[0], p[1]))
    p = np.array([2000.0, 0.707])
    ps = np.array([[500.0, 1.0], [4000.0, 2.0], [1000.0, 0.5]])
    check_array(f, p, ps, d_rtol=1e-6, d_atol=1e-12)
    g = lambda p: np.concatenate(biquad_peaking(p[0], p[1], p[2]))
    check_array(g, np.array([1000.0, 6.0, 1.2]), np.array([[300.0, -3.0, 0.7], [5000.0, 9.0, 2.0]]),
                d_atol=1e-12, second=True)


def test_direct_form_loops_match_lfilter_and_differentiate():
    x = rng.standard_normal(12)
    xs = rng.standard_normal((3, 12))
    b, a = biquad_lowpass(3000.0, 0.9)
    np.testing.assert_allclose(biquad_df1(x, b, a), scipy.signal.lfilter(b, a, x), atol=1e-14)
    np.testing.assert_allclose(biquad_df2t_state(x, b, a), scipy.signal.lfilter(b, a, x), atol=1e-14)
    check_array(lambda v: biquad_df1(v, b, a), x, xs)
    check_array(lambda v: biquad_df2t_state(v, b, a), x, xs)   # z, y: plain buffers made in the function
    # in the cutoff: the filter output's energy; the buffers (zeros_like of the plain signal,
    # np.zeros, np.empty) are plain buffers made in the function, which take the traced samples
    energy = lambda f0: np.sum(biquad_df1(x, *biquad_lowpass(f0, 0.9)) ** 2)
    check_scalar0(energy, 3000.0, [2000.0, 5000.0, 800.0], d_rtol=1e-5)
    energy2 = lambda f0: np.sum(biquad_df2t_state(x, *biquad_lowpass(f0, 0.9)) ** 2)
    check_scalar0(energy2, 3000.0, [2000.0, 5000.0, 800.0], d_rtol=1e-5)
    energy_lfilter = lambda f0: np.sum(lowpass_lfilter(x, f0, 0.9) ** 2)
    for e in (energy, energy2):
        np.testing.assert_allclose(npfunc.grad(e)(3000.0), npfunc.grad(energy_lfilter)(3000.0), rtol=1e-10)


def test_lfilter_lowpass_in_signal_and_cutoff():
    x = rng.standard_normal(12)
    xs = rng.standard_normal((3, 12))
    check_array(lambda v: lowpass_lfilter(v, 2000.0), x, xs)
    energy = lambda f0: np.sum(lowpass_lfilter(x, f0) ** 2)
    check_scalar0(energy, 3000.0, [2000.0, 5000.0, 800.0], d_rtol=1e-5)
    x32 = x.astype(np.float32)
    want = lowpass_lfilter(x32, 2000.0)
    assert_same(npfunc.jit(lambda v: lowpass_lfilter(v, 2000.0))(x32), want)
    assert_same(npfunc.vmap(lambda v: lowpass_lfilter(v, 2000.0), in_dims=1)(xs.T.copy()),
                loop(lambda v: lowpass_lfilter(v, 2000.0), xs))


def test_sosfilt_peaking_eq_cascade_in_gains_plain_sos_buffer_matches_functional():
    x = rng.standard_normal(16)
    gains = np.array([3.0, -2.0, 6.0])
    g_batch = np.array([[0.0, 0.0, 0.0], [-6.0, 4.0, 1.0]])
    g_loss = np.array([[0.0, 1.0, 0.0], [-6.0, 4.0, 1.0], [2.0, 2.0, 2.0]])
    # sos = np.zeros((3, 6)) made in the function, filled with coefficients traced in the
    # gains: sosfilt differentiates in the gains, as for the functional spelling below
    f = lambda g: eq_cascade_sosfilt(x, g)
    check_array(f, gains, g_batch)
    check_scalar(lambda g: np.sum(f(g) ** 2), gains, g_loss, d_rtol=1e-5)
    # built functionally, sosfilt differentiates in the gains
    def eq_sos(g):
        rows = [np.concatenate(biquad_peaking(fc, gi, 1.0)) for fc, gi in zip((100.0, 1000.0, 8000.0), g)]
        return scipy.signal.sosfilt(np.stack(rows), x)
    assert_same(eq_sos(gains), f(gains))
    check_array(eq_sos, gains, g_batch)
    loss = lambda g: np.sum(eq_sos(g) ** 2)
    check_scalar(loss, gains, g_loss, d_rtol=1e-5)
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        assert_same(jac(f)(gains), jac(eq_sos)(gains), rtol=1e-12, atol=1e-15)
    xs = rng.standard_normal((3, 16))
    assert_same(npfunc.vmap(eq_cascade_sosfilt, in_dims=(0, None))(xs, gains),
                loop(lambda v: eq_cascade_sosfilt(v, gains), xs))


def test_biquad_magnitude_response_db_and_eq_fit():
    freqs = np.array([50.0, 200.0, 1000.0, 3000.0, 10000.0])
    p = np.array([1000.0, 6.0, 1.2])
    ps = np.array([[300.0, -3.0, 0.7], [5000.0, 9.0, 2.0], [800.0, 1.0, 1.0]])
    # 1 - cos(w0) cancels for small w0: five-point steps of 1e-5 Hz are noise-limited there
    check_array(lambda q: biquad_magnitude_db(q, freqs), p, ps, d_atol=1e-8, eps=1e-2)
    target = biquad_magnitude_db(np.array([900.0, 4.0, 1.0]), freqs)
    loss = lambda q: eq_fit_loss(q, freqs, target)
    # the centre frequency in kHz, so five-point steps resolve it (1 - cos(w0) cancels)
    scaled = lambda q: loss(q * np.array([1000.0, 1.0, 1.0]))
    k = np.array([1000.0, 1.0, 1.0])
    check_scalar(scaled, p / k, ps / k, h_atol=1e-6)
    # BFGS with the npfunc gradient
    res = scipy.optimize.minimize(scaled, np.array([1.2, 5.0, 1.5]), jac=npfunc.grad(scaled), method="BFGS")
    assert res.fun < 1e-8


def test_freqz_fir_magnitude():
    b = np.array([0.25, 0.5, 0.25])
    bs = np.array([[1.0, -1.0, 0.5], [0.3, 0.3, 0.3]])
    check_array(freqz_group_delay_proxy, b, bs)


def test_one_pole_smoother_early_return_and_alpha_into_plain_buffer():
    x = rng.standard_normal(10)
    xs = rng.standard_normal((3, 10))
    check_array(lambda v: one_pole_smoother(v, 0.3), x, xs)
    # y = np.empty_like(x) of the plain signal: a plain buffer made in the function, which
    # takes the samples traced in alpha
    f = lambda a: np.sum(one_pole_smoother(x, a) ** 2)
    check_scalar0(f, 0.3, [0.1, 0.8, 0.5])
    g = lambda a: np.sum(one_pole_smoother(x + 0 * a, a) ** 2)   # x traced too: its buffer is
    check_scalar0(g, 0.3, [0.1, 0.8, 0.5])
    np.testing.assert_allclose(npfunc.grad(f)(0.3), npfunc.grad(g)(0.3), rtol=1e-13)
    empty = np.zeros(0)
    assert npfunc.jit(lambda v: one_pole_smoother(v, 0.3))(empty).shape == (0,)
    x32 = x.astype(np.float32)
    want = one_pole_smoother(x32, 0.3)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(lambda v: one_pole_smoother(v, 0.3))(x32), want, rtol=1e-6)
    g = npfunc.grad(lambda v: one_pole_smoother(v, 0.3).sum())(x32)
    assert g.dtype == np.float32


def test_comb_and_allpass_reverberator_plain_buffers_match_like_fix():
    x = rng.standard_normal(10)
    xs = rng.standard_normal((3, 10))
    # the delay line and the output: plain np.zeros buffers made in the function, which take
    # the traced samples (checked against the like= spelling too)
    check_array(lambda v: feedback_comb(v, 0.6), x, xs)
    check_array(lambda v: schroeder_allpass(v, 0.5), x, xs)
    check_array(lambda v: feedback_comb(v, 0.6, like=v), x, xs)
    tail_plain = lambda g: np.sum(feedback_comb(x, g) ** 2)
    check_scalar0(tail_plain, 0.6, [0.3, 0.8, 0.5])
    tail = lambda g: np.sum(feedback_comb(x, g, like=np.asarray(x, like=np.reshape(g, (1,)))) ** 2)
    assert_same(tail(0.6), np.sum(feedback_comb(x, 0.6) ** 2))
    check_scalar0(tail, 0.6, [0.3, 0.8, 0.5])
    np.testing.assert_allclose(npfunc.grad(tail_plain)(0.6), npfunc.grad(tail)(0.6), rtol=1e-13)


def test_karplus_strong_plain_output_buffer():
    exc = rng.standard_normal(5)
    excs = rng.standard_normal((3, 5))
    ks = lambda e: karplus_strong(e, 0.99)
    check_array(ks, exc, excs)   # out = np.zeros(n_out): a plain buffer made in the function
    # in the decay: buf = excitation.copy() is a copy of the plain excitation (not a buffer
    # made with np.zeros & co.): the traced write is refused, naming the traced copy
    energy = lambda d: np.sum(karplus_strong(exc, d) ** 2)
    assert_refused(lambda: npfunc.grad(energy)(0.99), "grad", fix=r"a copy of a plain array.*np\.array\(a, like=x\)")


def test_fir_design_by_gradient():
    freqs = np.linspace(0, np.pi, 12)
    desired = (freqs < np.pi / 2).astype(float)
    h0 = np.hamming(5) / 4
    hs = rng.standard_normal((3, 5)) * 0.3
    loss = lambda h: fir_design_loss(h, freqs, desired)
    check_scalar(loss, h0, hs, h_atol=1e-6)
    h_np, f_np = design_fir(h0, freqs, desired, None)
    h_nf, f_nf = design_fir(h0, freqs, desired, npfunc.grad(fir_design_loss))
    assert f_nf <= f_np + 1e-8
    np.testing.assert_allclose(npfunc.grad(loss)(h_nf), 0.0, atol=1e-5)
    assert_same(npfunc.vmap(fir_design_loss, in_dims=(0, None, None))(hs, freqs, desired),
                loop(loss, hs))


# ==== room acoustics =============================================================================


def test_sabine_eyring_in_absorption():
    areas = np.array([20.0, 20.0, 15.0, 15.0, 12.0, 12.0])
    al = np.array([0.1, 0.1, 0.2, 0.2, 0.3, 0.05])
    als = rng.uniform(0.05, 0.6, (3, 6))
    check_scalar(lambda a: sabine_rt60(60.0, areas, a), al, als)
    check_scalar(lambda a: eyring_rt60(60.0, areas, a), al, als)
    assert isinstance(sabine_rt60(60.0, areas, al), np.float64)
    check_scalar0(lambda V: eyring_rt60(V, areas, al), 60.0, [30.0, 100.0, 75.0])
    # Eyring tends to Sabine for small absorption
    small = np.full(6, 1e-3)
    np.testing.assert_allclose(eyring_rt60(60.0, areas, small), sabine_rt60(60.0, areas, small), rtol=1e-3)


def test_room_report_dict():
    dims = np.array([5.0, 4.0, 3.0])
    al = np.array([0.1, 0.1, 0.2, 0.2, 0.3, 0.05])
    f = lambda d: room_rt60_report(d, al)
    want = f(dims)
    got = npfunc.jit(f)(dims)
    assert set(got) == set(want)
    for k in want:
        assert_same(got[k], want[k])
    got = npfunc.jit(f)(dims * 1.5)
    for k in want:
        assert_same(got[k], f(dims * 1.5)[k])
    dd = rng.uniform(2.0, 8.0, (3, 3))
    got = npfunc.vmap(f)(dd)
    for k in want:
        assert_same(got[k], np.stack([f(d)[k] for d in dd]))
    J = npfunc.jacrev(f)(dims)
    Jf = npfunc.jacfwd(f)(dims)
    for k in want:
        num = fd(lambda d: f(d)[k], dims)
        assert_deriv(J[k], num)
        assert_deriv(Jf[k], num)
    check_scalar(lambda d: f(d)["T_eyring"], dims, dd)


def test_band_rt60_from_absorption_table():
    table_f = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0])
    table_a = np.array([0.05, 0.08, 0.15, 0.3, 0.45, 0.5])
    freqs = np.array([160.0, 630.0, 1250.0, 3150.0])
    check_array(lambda a: band_rt60(freqs, 60.0, 94.0, table_f, a), table_a,
                rng.uniform(0.05, 0.6, (3, 6)))
    check_array(lambda fr: band_rt60(fr, 60.0, 94.0, table_f, table_a), freqs,
                np.array([[130.0, 300.0, 700.0, 1900.0], [500.0, 900.0, 1100.0, 3900.0]]))


def test_image_source_rir_sinc_delays_accumulated_into_plain_buffer():
    room = np.array([5.0, 4.0, 3.0])
    mic = np.array([3.0, 2.0, 1.5])
    src = np.array([1.0, 1.2, 1.1])
    f = lambda s: image_source_rir(s, mic, room, 0.8, n=48, order=1)
    # rir = np.zeros(n) made in the function; rir += <traced arrival> makes it traced
    srcs = np.array([[1.5, 1.0, 1.2], [0.8, 2.5, 1.8], [2.0, 0.7, 0.9]])
    check_array(f, src, srcs)
    energy = lambda b: np.sum(image_source_rir(src, mic, room, b, n=48) ** 2)
    check_scalar0(energy, 0.8, [0.5, 0.9, 0.3])


def test_image_source_rir_integer_delays_into_plain_buffer():
    room = np.array([5.0, 4.0, 3.0])
    mic = np.array([3.0, 2.0, 1.5])
    src = np.array([1.0, 1.2, 1.1])
    f = lambda b: image_source_rir_int(src, mic, room, b, n=160)
    want = f(0.8)
    assert np.count_nonzero(want) == 7
    # rir[idx] += <traced in beta> into rir = np.zeros(n) made in the function
    check_array(lambda b: f(b[0]), np.array([0.8]), np.array([[0.5], [0.9], [0.3]]))
    for tf in (npfunc.jacfwd(f), npfunc.jacrev(f)):
        got = repeated(tf, (0.8,), (0.5,))
        assert_deriv(got[0], fd(lambda b: f(b[0]), np.array([0.8]))[:, 0])
        assert_deriv(got[1], fd(lambda b: f(b[0]), np.array([0.5]))[:, 0])
    # the source position decides the sample index: int(round(r)) of a traced distance is
    # refused under jit; the eager Jacobians in the source position (the amplitudes 1/(4 pi r)
    # written into the plain rir, the indices constant nearby) are the differences'
    g = lambda s: image_source_rir_int(s, mic, room, 0.8, n=160)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit"):
        npfunc.jit(g)(src)
    for tf in (npfunc.jacrev(g), npfunc.jacfwd(g)):
        got = repeated(tf, (src,), (src + 0.05,))
        assert_deriv(got[0], fd(g, src))
        assert_deriv(got[1], fd(g, src + 0.05))


def test_schroeder_decay_and_t20_fit():
    rir = np.exp(-np.arange(40) / 8.0) * np.cos(np.arange(40))
    rirs = rir * rng.uniform(0.5, 1.5, (3, 40))
    check_array(schroeder_edc_db, rir, rirs)
    rt = lambda tau: exp_decay_rt(tau)
    # t[mask] with a mask computed from traced values: a data-dependent shape under jit
    with pytest.raises(npfunc.errors.NpfuncError, match=r"jit"):
        npfunc.jit(rt)(np.float64(0.02))
    for t0 in (0.02, 0.03):
        got = repeated(npfunc.grad(rt), (t0,))
        assert_deriv(got[0], fd(lambda v: rt(v[0]), np.array([t0]), eps=1e-8)[0], rtol=1e-5)


def test_air_absorption_iso9613():
    f = np.array([125.0, 500.0, 2000.0, 8000.0])
    fs = np.array([[63.0, 250.0, 1000.0, 4000.0], [100.0, 800.0, 3150.0, 10000.0]])
    check_array(air_absorption_db_per_m, f, fs, d_atol=1e-12)
    T = lambda T: air_absorption_db_per_m(4000.0, T=T)
    check_scalar0(T, 293.15, [273.15, 303.15, 283.15], d_atol=1e-12)
    hr = lambda h: air_absorption_db_per_m(4000.0, hr=h)
    check_scalar0(hr, 50.0, [20.0, 80.0, 35.0], d_atol=1e-12)


def test_diffuse_absorption_quad():
    a = diffuse_absorption(3.0)
    assert isinstance(a, float)
    check_scalar0(diffuse_absorption, 3.0, [1.5, 8.0, 5.0], d_rtol=1e-6, solver=True)


# ==== levels and weightings ======================================================================


def test_spl_leq_and_decibel_sum():
    p = rng.standard_normal(12) * 0.2
    ps = rng.standard_normal((3, 12)) * 0.2
    check_scalar(spl_db, p, ps)
    L = np.array([60.0, 70.0, 65.0, 58.0])
    Ls = rng.uniform(40, 90, (3, 4))
    check_scalar(leq_db, L, Ls)
    check_scalar(sum_levels_db, L, Ls)
    assert isinstance(sum_levels_db(L), np.float64)
    np.testing.assert_allclose(sum_levels_db(np.array([60.0, 60.0])), 60 + 10 * np.log10(2))
    p32 = p.astype(np.float32)
    want = spl_db(p32)
    assert isinstance(want, np.float32)
    assert_same(npfunc.jit(spl_db)(p32), want, rtol=1e-6)
    assert npfunc.grad(spl_db)(p32).dtype == np.float32
    assert_same(npfunc.vmap(spl_db)(ps.astype(np.float32)), loop(spl_db, ps.astype(np.float32)), rtol=1e-6)


def test_statistical_levels_percentiles_dict():
    L = 60 + 5 * rng.standard_normal(11)
    Ls = 60 + 5 * rng.standard_normal((3, 11))
    want = statistical_levels(L)
    got = npfunc.jit(statistical_levels)(L)
    for k in want:
        assert_same(got[k], want[k])
    got = npfunc.jit(statistical_levels)(Ls[0])
    for k in want:
        assert_same(got[k], statistical_levels(Ls[0])[k])
    got = npfunc.vmap(statistical_levels)(Ls)
    for k in want:
        assert_same(got[k], np.stack([statistical_levels(l)[k] for l in Ls]))
    spread = lambda l: statistical_levels(l)["L10"] - statistical_levels(l)["L90"]
    check_scalar(spread, L, Ls, hess=False)


def test_a_and_c_weighting_curves():
    f = np.array([31.5, 100.0, 1000.0, 4000.0, 12500.0])
    fs = np.array([[50.0, 200.0, 800.0, 2000.0, 8000.0], [20.0, 63.0, 500.0, 6300.0, 16000.0]])
    np.testing.assert_allclose(a_weighting_db(np.array([1000.0])), 0.0, atol=2e-3)
    check_array(a_weighting_db, f, fs, d_atol=1e-8, second=True)
    check_array(c_weighting_db, f, fs, d_atol=1e-8)
    check_scalar0(lambda fr: a_weighting_db(fr), 1000.0, [100.0, 4000.0, 50.0])
    f32 = f.astype(np.float32)
    want = a_weighting_db(f32)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(a_weighting_db)(f32), want, rtol=1e-6)
    assert_same(npfunc.vmap(a_weighting_db)(f32), want, rtol=1e-6)


def test_a_weighted_total_level():
    centres = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0])
    bands = np.array([70.0, 68.0, 65.0, 62.0, 60.0, 55.0])
    check_scalar(lambda b: a_weighted_level(b, centres), bands, rng.uniform(40, 80, (3, 6)))
    assert_same(npfunc.vmap(a_weighted_level, in_dims=(None, 0))(bands, np.stack([centres, centres * 1.1])),
                loop(lambda c: a_weighted_level(bands, c), np.stack([centres, centres * 1.1])))


def test_octave_band_levels_from_fft_bins_into_plain_buffer():
    x = rng.standard_normal(32) * 0.1
    xs = rng.standard_normal((3, 32)) * 0.1
    check_array(octave_band_levels, x, xs)   # out = np.zeros(len(centres)) made in the function
    check_scalar(lambda v: np.sum(octave_band_levels(v)), x, xs)


def test_phon_to_sone_branches():
    for L0, Ls in ((50.0, [45.0, 70.0, 60.0]), (30.0, [20.0, 35.0, 10.0])):
        # the Python if on the level: concrete under grad
        for tf in (npfunc.grad(phon_to_sone), npfunc.grad(npfunc.grad(phon_to_sone))):
            got = repeated(tf, (L0,), (Ls[0],))
        np.testing.assert_allclose(npfunc.grad(phon_to_sone)(L0),
                                   fd(lambda v: phon_to_sone(v[0]), np.array([L0]))[0], rtol=1e-6)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np\.where"):
        npfunc.jit(phon_to_sone)(np.float64(50.0))
    check_scalar0(lambda L: phon_to_sone_vec(L), 50.0, [45.0, 70.0, 60.0])
    check_scalar0(lambda L: phon_to_sone_vec(L), 30.0, [20.0, 35.0, 10.0])
    L = np.array([30.0, 45.0, 60.0, 75.0])
    check_array(phon_to_sone_vec, L, np.array([[20.0, 50.0, 65.0, 38.0], [41.0, 39.0, 10.0, 90.0]]))
    assert_same(npfunc.vmap(phon_to_sone_vec)(L), phon_to_sone_vec(L))


def test_total_loudness_stevens():
    s = np.array([1.0, 3.0, 2.0, 0.5])
    ss = rng.uniform(0.1, 4.0, (3, 4))
    check_scalar(total_loudness_sones, s, ss, hess=True)
    f = lambda L: total_loudness_sones(phon_to_sone_vec(L))
    check_scalar(f, np.array([50.0, 62.0, 71.0, 45.0]), rng.uniform(41, 80, (3, 4)))


def test_compressor_curve_and_envelope_follower():
    x = np.array([-40.0, -25.0, -22.0, -19.0, -16.0, -5.0])
    xs = np.array([[-30.0, -23.5, -20.0, -18.0, -10.0, 0.0], [-50.0, -21.0, -24.0, -17.5, -12.0, -3.0]])
    check_array(dynamic_range_compressor, x, xs)
    for p in ((-20.0, 4.0, 6.0),):
        f = lambda r: np.sum(dynamic_range_compressor(x, p[0], r, p[2]))
        check_scalar0(f, 4.0, [2.0, 10.0, 3.0])
    sig = rng.standard_normal(10)
    sigs = rng.standard_normal((3, 10))
    # the attack/release branch compares |x[n]| with the traced envelope
    env = lambda v: envelope_follower(v)
    for tf in (npfunc.jacrev(env), npfunc.jacfwd(env)):
        got = repeated(tf, (sig,), (sigs[0],))
        assert_deriv(got[0], fd(env, sig))
        assert_deriv(got[1], fd(env, sigs[0]))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit"):
        npfunc.jit(env)(sig)


def test_soft_clip_float32_and_inplace_gain():
    x = rng.uniform(-1, 1, 8).astype(np.float32)
    xs = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    want = soft_clip(x, np.float32(3.0))
    assert want.dtype == np.float32
    assert_same(npfunc.jit(soft_clip)(x, np.float32(3.0)), want)
    assert_same(npfunc.jit(soft_clip)(xs[0], np.float32(2.0)), soft_clip(xs[0], np.float32(2.0)))
    assert_same(npfunc.jit(soft_clip)(x, 3.0), soft_clip(x, 3.0))
    assert_same(npfunc.vmap(soft_clip, in_dims=(0, None))(xs, np.float32(3.0)), loop(lambda v: soft_clip(v, np.float32(3.0)), xs))
    g = npfunc.grad(lambda d: soft_clip(x, d).sum())(np.float32(3.0))
    assert type(g) is np.float32
    x64 = x.astype(np.float64)
    check_array(lambda v: soft_clip(v, 3.0), x64, xs.astype(np.float64))
    check_scalar0(lambda d: np.sum(soft_clip(x64, d) ** 2), 3.0, [1.0, 5.0, 2.0])
    # in-place fader gain: the caller's buffer changes like NumPy's
    buf = x64.copy()
    want_buf = x64.copy()
    ret = gain_db_inplace(want_buf, -6.0)
    got = npfunc.jit(gain_db_inplace)(buf, np.float64(-6.0))
    assert_same(got, ret)
    np.testing.assert_array_equal(buf, want_buf)
    gain_loss = lambda g: np.sum(gain_db_inplace(x64.copy(), g) ** 2)
    assert_refused(lambda: npfunc.grad(gain_loss)(-6.0), "grad", fix=r"x = x \* y")
    buf32 = x.copy()
    out = npfunc.jit(gain_db_inplace)(buf32, np.float64(-6.0))
    want32 = gain_db_inplace(x.copy(), np.float64(-6.0))
    assert_same(out, want32)
    np.testing.assert_array_equal(buf32, want32)


def test_peak_normalisation():
    x = rng.standard_normal(8)
    xs = rng.standard_normal((3, 8))
    check_array(normalise_peak, x, xs)


# ==== pitch ======================================================================================


def tone(f0, n=64, fs=8000.0, phase=0.3):
    t = np.arange(n) / fs
    return np.sin(2 * np.pi * f0 * t + phase) + 0.4 * np.sin(4 * np.pi * f0 * t)


def test_autocorrelation_pitch_parabolic():
    x = tone(440.0)
    p = autocorr_pitch(x)
    assert isinstance(p, np.float64)
    assert abs(p - 440.0) < 10
    xs = np.stack([tone(f) for f in (430.0, 445.0, 450.0)])
    check_scalar(autocorr_pitch, x, xs, hess=False, d_rtol=1e-5, d_atol=1e-7)
    # the estimated pitch of a tone as a function of its frequency (argmax is piecewise constant)
    est = lambda f0: autocorr_pitch(tone(f0))
    check_scalar0(est, 440.0, [445.0, 435.0, 450.0], d_rtol=1e-5)


def test_yin_difference_function_plain_buffers_match_like_fix():
    x = tone(1000.0, n=20)
    xs = np.stack([tone(f, n=20) for f in (900.0, 1100.0, 1200.0)])
    # d = np.zeros(...), dn = np.ones(...) made in the function take the traced differences,
    # as the like= buffers do
    check_array(lambda v: yin_difference(v, 8), x, xs, d_rtol=1e-5, d_atol=1e-8)
    check_array(lambda v: yin_difference(v, 8, like=v), x, xs, d_rtol=1e-5, d_atol=1e-8)
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        assert_same(jac(lambda v: yin_difference(v, 8))(x), jac(lambda v: yin_difference(v, 8, like=v))(x),
                    rtol=1e-13, atol=1e-15)


def test_harmonic_product_spectrum():
    x = rng.standard_normal(18)
    xs = rng.standard_normal((3, 18))
    check_array(harmonic_product_spectrum, x, xs, d_rtol=1e-5)


# ==== resampling =================================================================================


def test_fft_polyphase_and_linear_resampling():
    x = rng.standard_normal(12)
    xs = rng.standard_normal((3, 12))
    check_array(lambda v: resample_fft(v, 8), x, xs)
    check_array(lambda v: resample_fft(v, 18), x, xs)
    check_array(lambda v: resample_linear(v, 1.5), x, xs)
    # a traced time axis through np.interp
    t = np.array([0.5, 2.25, 7.9])
    check_array(lambda tt: np.interp(tt, np.arange(12), x), t, np.array([[1.1, 3.3, 8.8], [0.2, 5.5, 10.7]]))


def test_resample_poly_traced_signal():
    """scipy.signal.resample_poly (and upfirdn) of a traced signal: npfunc's twin."""
    x = rng.standard_normal(12)
    xs = rng.standard_normal((3, 12))
    check_array(resample_poly_2_3, x, xs, rtol=1e-13, d_atol=1e-9)
    check_array(lambda v: scipy.signal.resample_poly(v, 3, 2, padtype="mean"), x, xs, rtol=1e-13, d_atol=1e-9)
    h = scipy.signal.firwin(9, 0.4)
    check_array(lambda v: scipy.signal.upfirdn(h, v, 3, 2), x, xs, rtol=1e-13, d_atol=1e-9)


def test_plain_cubic_spline_at_traced_times():
    """A spline made from plain samples, evaluated at traced times: a twin of SciPy's
    object (its coefficients and breakpoints) evaluates them."""
    x = rng.standard_normal(10)
    t = np.array([0.5, 3.3, 7.25])
    for _ in range(3):
        assert_deriv(npfunc.jacfwd(lambda t: spline_resample(x, t))(t), fd(lambda t: spline_resample(x, t), t))
        assert_deriv(npfunc.jacrev(lambda t: spline_resample(x, t))(t), fd(lambda t: spline_resample(x, t), t))
    jitted = npfunc.jit(lambda t: spline_resample(x, t))
    assert_same(jitted(t), spline_resample(x, t), rtol=1e-13)
    assert_same(jitted(t + 0.4), spline_resample(x, t + 0.4), rtol=1e-13)


def test_fractional_delay_and_spline_resampling():
    x = rng.standard_normal(10)
    xs = rng.standard_normal((3, 10))
    check_array(lambda v: fractional_delay(v, 0.3), x, xs)
    d_energy = lambda d: np.sum(fractional_delay(x, d) * x)
    check_scalar0(d_energy, 0.3, [0.1, -0.4, 0.45])
    tn = np.array([0.5, 3.3, 7.25])
    check_array(lambda v: spline_resample(v, tn), x, xs)


# ==== physical acoustics =========================================================================


def test_helmholtz_resonator():
    p = np.array([1e-3, 0.01, 0.05])
    ps = np.array([[2e-3, 0.012, 0.04], [5e-4, 0.008, 0.06], [1.5e-3, 0.015, 0.03]])
    f = lambda q: helmholtz_frequency(q[0], q[1], q[2])
    assert isinstance(f(p), np.float64)
    # scale to similar magnitudes so five-point differences resolve every direction
    s = np.array([1e-3, 1e-2, 1e-2])
    g = lambda q: f(q * s)
    check_scalar(g, p / s, ps / s, h_atol=1e-5)
    check_scalar0(lambda V: helmholtz_frequency(V, 0.01, 0.05), 1e-3, [2e-3, 5e-4, 1e-3 * 1.5],
                  second=False)


def test_string_partials_and_fundamental():
    check_array(lambda q: stiff_string_partials(q[0], q[1]), np.array([110.0, 1e-3]),
                np.array([[220.0, 5e-4], [55.0, 2e-3]]), d_atol=1e-8)
    check_scalar(lambda q: string_f0(q[0], q[1], q[2]), np.array([0.65, 70.0, 6e-4 * 1e3]) * np.array([1, 1, 1]),
                 np.array([[0.6, 60.0, 0.5], [0.7, 80.0, 0.7], [0.65, 72.0, 0.55]]), h_atol=1e-5)


def test_membrane_modes_and_room_modes():
    f = lambda q: membrane_modes(q[0], q[1], q[2])
    q = np.array([0.3, 2000.0, 0.3])
    check_array(f, q, np.array([[0.2, 1500.0, 0.25], [0.35, 2500.0, 0.4]]), d_atol=1e-7)
    dims = np.array([5.0, 4.0, 3.0])
    check_array(room_modes, dims, np.array([[6.0, 4.5, 2.8], [3.0, 3.5, 2.5]]), d_atol=1e-8)
    f32 = room_modes(dims.astype(np.float32))
    assert_same(npfunc.jit(room_modes)(dims.astype(np.float32)), f32, rtol=1e-6)


def test_speed_of_sound_doppler_mass_law():
    check_scalar0(speed_of_sound, 20.0, [0.0, 35.0, -10.0])
    assert isinstance(speed_of_sound(20.0), float)
    assert_same(npfunc.jit(speed_of_sound)(np.float64(20.0)), speed_of_sound(np.float64(20.0)))
    dop = lambda v: doppler(1000.0, v[0], v[1])
    check_scalar(dop, np.array([20.0, -5.0]), np.array([[10.0, 0.0], [-30.0, 15.0], [0.0, 0.0]]))
    check_array(lambda f: mass_law_tl(f, 10.0), np.array([125.0, 1000.0, 4000.0]),
                np.array([[250.0, 500.0, 2000.0], [63.0, 8000.0, 3150.0]]))
    # speed of sound with a Python float: npfunc.grad returns a float like the input kind
    g = npfunc.grad(speed_of_sound)(20.0)
    assert isinstance(g, (float, np.floating))


def test_expansion_chamber_muffler():
    f = np.array([100.0, 250.0, 400.0, 600.0])
    fs = np.array([[150.0, 300.0, 450.0, 700.0], [80.0, 200.0, 350.0, 500.0]])
    check_array(lambda fr: expansion_chamber_tl(fr, 0.5, 9.0), f, fs, d_atol=1e-9)
    design = lambda p: np.mean(expansion_chamber_tl(f, p[0], p[1]))
    check_scalar(design, np.array([0.5, 9.0]), np.array([[0.3, 4.0], [0.7, 16.0], [0.45, 6.0]]), h_atol=1e-6)


def test_piston_directivity_and_radiation():
    th = np.array([0.0, 0.2, 0.6, 1.2])
    ths = np.array([[0.1, 0.3, 0.0, 1.0], [0.0, 0.5, 0.9, 1.4]])
    check_array(lambda t: piston_directivity(t, 3.0), th, ths, d_atol=1e-9)
    f = lambda ka: piston_directivity(np.array([0.0, 0.3, 0.7]), ka)
    assert_deriv(npfunc.jacfwd(f)(3.0), fd(lambda k: f(k[0]), np.array([3.0]))[:, 0])
    assert_deriv(npfunc.jacrev(f)(3.0), fd(lambda k: f(k[0]), np.array([3.0]))[:, 0])
    check_scalar0(piston_radiation_resistance, 0.5, [0.2, 2.0, 1.0])


def test_tube_mode_brentq():
    q = spring_end_tube_mode(1.0)
    assert isinstance(q, float)
    np.testing.assert_allclose(q * np.tan(q), 1.0)
    # implicit derivative dq/dh = 1 / (tan q + q sec^2 q)
    check_scalar0(spring_end_tube_mode, 1.0, [0.5, 2.0, 3.0], d_rtol=1e-5, solver=True)
    np.testing.assert_allclose(npfunc.grad(spring_end_tube_mode)(1.0), 1 / (np.tan(q) + q / np.cos(q) ** 2), rtol=1e-9)


def test_wave_equation_leapfrog():
    assert_refused(lambda: npfunc.jit(lambda c: wave_equation_fd(c, nx=11, nt=12))(np.float64(1.0)), "jit")
    # u_next made like=c is not enough: the buffer rotation writes into the plain u_prev next
    f = lambda c: wave_equation_fd(c, nx=11, nt=12, like=np.reshape(c, (1,)))
    assert_same(f(1.0), wave_equation_fd(1.0, nx=11, nt=12))
    assert_refused(lambda: npfunc.jit(f)(np.float64(1.0)), "jit")
    assert_refused(lambda: npfunc.jacfwd(f)(1.0), "jacfwd")


def test_damped_string_energy_inplace():
    p = np.array([1.0, 0.1])
    ps = np.array([[0.8, 0.2], [1.2, 0.05], [0.9, 0.0]])
    assert_refused(lambda: npfunc.grad(damped_string_energy)(p), "grad", fix=r"x = x \+ y")


# ==== cepstra, mel, LPC ==========================================================================


def test_real_cepstrum():
    x = rng.standard_normal(16)
    xs = rng.standard_normal((3, 16))
    check_array(real_cepstrum, x, xs, d_rtol=1e-5)


def test_mel_scale_and_mfcc():
    check_scalar0(hz_to_mel, 1000.0, [100.0, 4000.0, 8000.0])
    check_scalar0(mel_to_hz, 1000.0, [100.0, 2000.0, 2500.0])
    f = np.array([100.0, 1000.0, 4000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f)
    check_array(lambda v: mel_to_hz(hz_to_mel(v)), f, np.array([[200.0, 300.0, 400.0], [50.0, 60.0, 70.0]]),
                d_atol=1e-8)
    fb = mel_filterbank(5, 16, 8000.0)
    x = rng.standard_normal(16)
    xs = rng.standard_normal((3, 16))
    # scipy.fft.dct has no rule: refused, naming the matrix-product fix, which works
    assert_refused(lambda: npfunc.jit(lambda v: mfcc(v, fb))(x), "jit", fix=r"scipy\.fft\.dct\(np\.eye")
    D = scipy.fft.dct(np.eye(5), type=2, norm="ortho", axis=0)
    def mfcc_matrix(v, ncoef=4):
        P = np.abs(np.fft.rfft(v * np.hamming(len(v)))) ** 2 / len(v)
        return (D @ np.log(fb @ P + 1e-10))[:ncoef]
    np.testing.assert_allclose(mfcc_matrix(x), mfcc(x, fb), rtol=1e-12, atol=1e-14)
    check_array(mfcc_matrix, x, xs, d_rtol=1e-5)
    check_scalar(lambda v: mfcc_matrix(v)[1], x, xs, hess=False, d_rtol=1e-5)
    # the filterbank itself is built from concrete edges: a traced sample rate is refused
    with pytest.raises(npfunc.errors.NpfuncError):
        npfunc.jit(lambda fs: mel_filterbank(5, 16, fs))(np.float64(8000.0))


def test_lpc_solve_toeplitz_and_levinson():
    x = tone(700.0, n=24) + 0.1 * rng.standard_normal(24)
    xs = np.stack([tone(f, n=24) for f in (500.0, 900.0, 1200.0)])
    assert_refused(lambda: npfunc.jit(lpc_coefficients)(x), "jit", fix=r"solve_toeplitz.*no npfunc twin")
    # the Toeplitz system written out for np.linalg.solve works
    def lpc_solve(v, order=3):
        r = np.stack([np.dot(v[:len(v) - k], v[k:]) for k in range(order + 1)])
        R = np.stack([np.stack([r[abs(i - j)] for j in range(order)]) for i in range(order)])
        return np.linalg.solve(R, r[1:])
    np.testing.assert_allclose(lpc_solve(x), lpc_coefficients(x), rtol=1e-12)
    check_array(lpc_solve, x, xs, d_rtol=1e-5, d_atol=1e-8)
    r = np.array([1.0, 0.5, 0.2, 0.1])
    # a = np.zeros(order + 1) is read (np.dot(a[1:i], ...)) before its traced writes: jit takes it
    lev = npfunc.jit(lambda v: levinson_durbin(v, 3)[0])
    for v in (r, np.array([1.0, 0.6, 0.3, 0.05])):
        assert_same(lev(v), levinson_durbin(v, 3)[0])
    assert_deriv(npfunc.jacrev(lambda v: levinson_durbin(v, 3)[0])(r), fd(lambda v: levinson_durbin(v, 3)[0], r))
    np.testing.assert_allclose(levinson_durbin(r, 3)[0][1:], -scipy.linalg.solve_toeplitz(r[:3], r[1:]))


def test_lpc_formants_by_roots():
    a = np.array([1.0, -1.2, 0.9, -0.2])
    As = np.array([[1.0, -1.0, 0.8, -0.1], [1.0, -1.4, 0.95, -0.3]])
    # np.roots trims leading zeros with a value test: refused under jit, naming it
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*bool\(x\)"):
        npfunc.jit(lpc_formant_frequencies)(a)
    for tf in (npfunc.jacrev(lpc_formant_frequencies), npfunc.jacfwd(lpc_formant_frequencies)):
        got = repeated(tf, (a,), (As[0],))
        assert_deriv(got[0], fd(lpc_formant_frequencies, a), rtol=1e-5, atol=1e-7)
        assert_deriv(got[1], fd(lpc_formant_frequencies, As[0]), rtol=1e-5, atol=1e-7)
