"""Natural programs from spectroscopy and particle/nuclear physics data analysis, written first
as plain NumPy/SciPy and then run under npfunc's transforms (jit, vmap, grad, jacrev, jacfwd,
hessian, jvp, vjp and their compositions) against the plain program (type, dtype, shape, value,
side effects) and against five-point differences.

Programs:
  * peak shapes: Gaussian, Lorentzian, Voigt (scipy.special.voigt_profile and Re wofz),
    Thompson-Cox-Hastings pseudo-Voigt, Crystal Ball (single and double where), ARGUS,
    a hypermet peak with an erfc tail; float32 data (an np.float64 constant promotes);
  * fits: multi-peak spectra on np.polyval baselines (chi2 per spectrum, vmap over spectra),
    peak + polynomial baseline with a dict of derived quantities (area, FWHM, resolution) and
    J C J^T, BFGS with npfunc's gradient and the Hessian's covariance at the optimum;
  * resonances: relativistic and non-relativistic Breit-Wigner, Kallen two-body momentum, an
    energy-dependent width with an early return below threshold, BW + complex background,
    a BW normalised on a window by scipy.integrate.quad;
  * likelihoods of histograms (np.histogram of plain data): binned Poisson NLL with CDF
    differences per bin (toys as columns), Neyman chi2 with empty bins, binned exponential
    decay (xlogy) and minimize_scalar, extended unbinned ML, on/off profile likelihood by
    minimize_scalar, Asimov significance, q0 with an early return, CLs with Poisson CDFs and
    the s95 sensitivity by implicit differentiation, poisson.logpmf signal strength, a chi2
    p-value;
  * kinematics: four-vectors from (pt, eta, phi, m), dimuon masses per event (per-event J C J^T
    by vmap(jacrev)), masses of particle rows with events on the last axis, Lorentz boosts
    (np.eye(4, like=beta), and the plain np.eye buffer filled in, which once was refused),
    rest-frame boosts, helicity angle, Delta R with phi wrapping, rapidity/pseudorapidity, transverse mass, fixed-target sqrt(s),
    missing mass of a list of detected particles (and its clipped m^2), event sphericity by
    eigvalsh, a Newton-iterated mass-constrained fit;
  * detector response: resolution smearing by np.convolve (kernel normalised in place), IRF
    convolution of a fluorescence decay, Richardson-Lucy deconvolution, FWHM(E), HPGe
    log-polynomial efficiency (in place += into np.zeros_like of the plain energies, once
    refused, and the acc = acc + ... form), quadratic energy calibration (in place *= of a
    copy: refused, and the fix), dead-time corrections (paralyzable by scipy.special.lambertw),
    tabulated efficiencies by CubicSpline and np.interp, an exGaussian lifetime resolution;
  * absorption spectroscopy: absorbance in float64/float32, Beer-Lambert calibration by lstsq
    and np.polyfit with J C J^T, multi-component unmixing, Doppler widths, line areas (simpson,
    trapezoid), centroids in a window around argmax, baseline subtraction in place (the
    argument's side effect), ModPoly baselines, Savitzky-Golay smoothing and derivatives in
    every edge mode, FWHM of a sampled peak by while loops, median of a cumulative spectrum;
  * histogram filling: np.add.at into a buffer (plain np.zeros, once refused, and the like= fix),
    np.histogram with traced weights; a per-bin expectation written into np.zeros (once refused;
    and the zeros_like fix);
  * nuclear: Klein-Nishina and the Compton edge, Rutherford, Bethe-Bloch and its minimum,
    the semi-empirical mass formula over a nuclide table (pairing by Python-int parity),
    Woods-Saxon rms radii, Bateman chains analytic and by expm, asymmetries (tuple outputs),
    cross sections, Moyal energy-loss straggling (scipy.stats.moyal).

Findings fixed here (each with its regression test): scipy.special.voigt_profile was refused
on traced values (now a primitive, derivatives through w'(z), the Lorentzian's at sigma = 0,
SciPy's continued formula at negative sigma); scipy.special.lambertw was refused (its ufunc
_lambertw is now a primitive; find_ufunc found the module scipy.special._lambertw first);
scipy.signal.savgol_filter was refused (a twin now); scipy.stats.moyal was refused (a twin
now); eager jacfwd's taped calls differed from its first call in the last bit when
np.convolve's kernel was a reversed view (einsum sums in stride order: the kernel is made
contiguous).  Documented behaviours checked: forward mode's 0 * inf = NaN below a clip,
NaN derivatives from a single where's untaken branch.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.special as sps
import scipy.stats as st

import npfunc
from natural_checks import assert_deriv, assert_same, fd

# ---- the programs --------------------------------------------------------------------------------


SQ2PI = np.sqrt(2 * np.pi)

# ---- peak shapes
def gauss_peak(x, A, mu, sigma):
    return A / (sigma * SQ2PI) * np.exp(-0.5 * ((x - mu) / sigma) ** 2)

def gauss_peak32(x, A, mu, sigma):
    """The same peak with Python-float constants: float32 data stays float32."""
    return A / (sigma * 2.5066282746310002) * np.exp(-0.5 * ((x - mu) / sigma) ** 2)

def lorentz_peak(x, A, x0, gamma):
    return A * gamma / np.pi / ((x - x0) ** 2 + gamma ** 2)

def voigt_peak(x, A, mu, sigma, gamma):
    return A * sps.voigt_profile(x - mu, sigma, gamma)

def voigt_wofz(x, A, mu, sigma, gamma):
    z = ((x - mu) + 1j * gamma) / (sigma * np.sqrt(2))
    return A * np.real(sps.wofz(z)) / (sigma * SQ2PI)

def pseudo_voigt(x, A, mu, fwhm_g, fwhm_l):
    # Thompson-Cox-Hastings
    f = (fwhm_g**5 + 2.69269 * fwhm_g**4 * fwhm_l + 2.42843 * fwhm_g**3 * fwhm_l**2
         + 4.47163 * fwhm_g**2 * fwhm_l**3 + 0.07842 * fwhm_g * fwhm_l**4 + fwhm_l**5) ** 0.2
    r = fwhm_l / f
    eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
    sigma = f / (2 * np.sqrt(2 * np.log(2)))
    gamma = f / 2
    return A * (eta * lorentz_peak(x, 1.0, mu, gamma) + (1 - eta) * gauss_peak(x, 1.0, mu, sigma))

def multipeak_spectrum(params, x, baseline):
    """params: flat [A1, mu1, s1, A2, mu2, s2, ...]; polynomial baseline coefficients."""
    y = np.polyval(baseline, x)
    for A, mu, s in params.reshape(-1, 3):
        y = y + gauss_peak(x, A, mu, s)
    return y

def chi2_multipeak(params, x, y, yerr, baseline):
    model = multipeak_spectrum(params, x, baseline)
    r = (y - model) / yerr
    return np.sum(r * r)

def chi2_peak_plus_baseline(theta, x, y):
    """theta = [A, mu, sigma, b0, b1, b2]; weights from Poisson errors sqrt(max(y, 1))."""
    A, mu, sigma = theta[:3]
    base = theta[3:]
    model = gauss_peak(x, A, mu, sigma) + np.polynomial.polynomial.polyval(x, base)
    w = 1.0 / np.maximum(y, 1.0)
    return np.sum(w * (y - model) ** 2)

def fit_summary(theta):
    """Dict of derived peak quantities."""
    A, mu, sigma = theta[0], theta[1], theta[2]
    fwhm = 2 * np.sqrt(2 * np.log(2)) * sigma
    return {"area": A, "centroid": mu, "fwhm": fwhm, "height": A / (sigma * SQ2PI),
            "resolution": fwhm / mu}

# ---- resonances
def breit_wigner_rel(s, M, Gamma):
    return 1.0 / ((s - M**2) ** 2 + M**2 * Gamma**2)

def breit_wigner_nr(E, E0, Gamma):
    return (Gamma / (2 * np.pi)) / ((E - E0) ** 2 + Gamma**2 / 4)

def kallen(a, b, c):
    return a**2 + b**2 + c**2 - 2 * a * b - 2 * a * c - 2 * b * c

def two_body_momentum(M, m1, m2):
    lam = kallen(M**2, m1**2, m2**2)
    return np.sqrt(lam) / (2 * M)

def bw_energy_dependent_width(m, M0, Gamma0, m1=0.13957, m2=0.13957, L=1):
    """Relativistic BW with mass-dependent width (P-wave rho -> pi pi); zero below threshold."""
    if m <= m1 + m2:
        return 0.0
    q = two_body_momentum(m, m1, m2)
    q0 = two_body_momentum(M0, m1, m2)
    Gamma = Gamma0 * (q / q0) ** (2 * L + 1) * (M0 / m)
    return m * M0 * Gamma / ((m**2 - M0**2) ** 2 + M0**2 * Gamma**2)

def bw_amplitude_intensity(m, M0, Gamma0, bg):
    """|BW amplitude + complex background|^2."""
    amp = M0 * Gamma0 / (M0**2 - m**2 - 1j * M0 * Gamma0)
    return np.abs(amp + bg) ** 2

# ---- histograms and likelihoods
def binned_poisson_nll(theta, edges, counts):
    """Signal gaussian + flat background integrated per bin by CDF differences."""
    ns, nb, mu, sigma = theta
    cdf = st.norm.cdf(edges, loc=mu, scale=sigma)
    sig = ns * np.diff(cdf)
    bkg = nb * np.diff(edges) / (edges[-1] - edges[0])
    expected = sig + bkg
    return np.sum(expected - counts * np.log(expected) + sps.gammaln(counts + 1))

def binned_chi2_neyman(theta, edges, counts):
    ns, nb, mu, sigma = theta
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = edges[1] - edges[0]
    expected = ns * width * st.norm.pdf(centres, mu, sigma) + nb * width / (edges[-1] - edges[0])
    err2 = np.where(counts > 0, counts, 1.0)
    return np.sum((counts - expected) ** 2 / err2)

def binned_exp_decay_nll(params, edges, counts):
    """N0 exp(-t/tau) integrated analytically per bin, plus constant background; xlogy."""
    N0, tau, B = params
    integ = N0 * tau * (np.exp(-edges[:-1] / tau) - np.exp(-edges[1:] / tau))
    mu = integ + B * np.diff(edges)
    return np.sum(mu - sps.xlogy(counts, mu))

def exp_decay_f32(t, N0, tau):
    return N0 * np.exp(-t / tau)

def extended_nll(params, x, lo, hi):
    """Extended unbinned ML: gaussian signal + exponential background on [lo, hi]."""
    Ns, Nb, mu, sigma, lam = params
    norm_s = st.norm.cdf(hi, mu, sigma) - st.norm.cdf(lo, mu, sigma)
    fs = st.norm.pdf(x, mu, sigma) / norm_s
    fb = lam * np.exp(-lam * (x - lo)) / (1 - np.exp(-lam * (hi - lo)))
    return Ns + Nb - np.sum(np.log(Ns * fs + Nb * fb))

def profile_nll_mu(mu, n_on, n_off, tau):
    """On/off counting: n_on ~ Pois(mu + b), n_off ~ Pois(tau b); profile out b by
    minimize_scalar (bounded)."""
    def nll(b):
        return (mu + b) - n_on * np.log(mu + b) + tau * b - n_off * np.log(tau * b)
    res = scipy.optimize.minimize_scalar(nll, bounds=(1e-6, 100.0), method="bounded",
                                         options={"xatol": 1e-12})
    return res.fun

def asimov_significance(s, b):
    return np.sqrt(2 * ((s + b) * np.log(1 + s / b) - s))

def q0_counting(n, b):
    """Discovery test statistic for a counting experiment, early return when n <= b."""
    if n <= b:
        return 0.0
    return 2 * (n * np.log(n / b) - (n - b))

def cls_upper(s, n_obs, b):
    """CLs = p_{s+b} / p_b with Poisson CDFs."""
    return st.poisson.cdf(n_obs, s + b) / st.poisson.cdf(n_obs, b)

# ---- kinematics
def four_vector(pt, eta, phi, m):
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    E = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.array([E, px, py, pz])

def invariant_mass(p1, p2):
    p = p1 + p2
    m2 = p[0] ** 2 - p[1] ** 2 - p[2] ** 2 - p[3] ** 2
    return np.sqrt(m2)

def dilepton_mass(kin):
    """kin = [pt1, eta1, phi1, pt2, eta2, phi2] for muons."""
    mmu = 0.105658
    p1 = four_vector(kin[0], kin[1], kin[2], mmu)
    p2 = four_vector(kin[3], kin[4], kin[5], mmu)
    return invariant_mass(p1, p2)

def invariant_mass_events(P):
    """P: (n_particles, 4) rows E, px, py, pz; summed over particles."""
    tot = P.sum(axis=0)
    return np.sqrt(tot[0] ** 2 - tot[1:] @ tot[1:])

def boost_matrix_plain(beta):
    """The textbook buffer: a plain np.eye filled in (once refused on traced beta, naming like=;
    made inside the function, it now takes the traced writes)."""
    b2 = beta @ beta
    gamma = 1.0 / np.sqrt(1.0 - b2)
    L = np.eye(4)
    L[0, 0] = gamma
    L[0, 1:] = -gamma * beta
    L[1:, 0] = -gamma * beta
    L[1:, 1:] += (gamma - 1) * np.outer(beta, beta) / b2
    return L

def boost_matrix(beta):
    b2 = beta @ beta
    gamma = 1.0 / np.sqrt(1.0 - b2)
    L = np.eye(4, like=beta)
    L[0, 0] = gamma
    L[0, 1:] = -gamma * beta
    L[1:, 0] = -gamma * beta
    L[1:, 1:] += (gamma - 1) * np.outer(beta, beta) / b2
    return L

def boost_to_rest(p, q):
    """Boost four-vector p into the rest frame of q."""
    beta = q[1:] / q[0]
    return boost_matrix(beta) @ p

def cos_theta_star(kin):
    """Helicity angle of muon 1 in the dimuon rest frame."""
    mmu = 0.105658
    p1 = four_vector(kin[0], kin[1], kin[2], mmu)
    p2 = four_vector(kin[3], kin[4], kin[5], mmu)
    P = p1 + p2
    p1s = boost_to_rest(p1, P)
    Pdir = P[1:] / np.linalg.norm(P[1:])
    return p1s[1:] @ Pdir / np.linalg.norm(p1s[1:])

def delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.sqrt((eta1 - eta2) ** 2 + dphi**2)

def rapidity(p):
    return 0.5 * np.log((p[0] + p[3]) / (p[0] - p[3]))

def pseudorapidity(p):
    pabs = np.linalg.norm(p[1:])
    return np.arctanh(p[3] / pabs)

def transverse_mass(pt_l, phi_l, met, phi_met):
    return np.sqrt(2 * pt_l * met * (1 - np.cos(phi_l - phi_met)))

def fixed_target_sqrt_s(E_beam, m_beam, m_target):
    return np.sqrt(m_beam**2 + m_target**2 + 2 * E_beam * m_target)

def missing_mass(beam, target, detected):
    """Missing mass of beam + target - sum(detected) four-vectors; detected is a list."""
    miss = beam + target
    for p in detected:
        miss = miss - p
    return np.sqrt(np.maximum(miss[0] ** 2 - np.sum(miss[1:] ** 2), 0.0))

# ---- detector response
def smeared_spectrum(params, e_grid, resolution):
    """True spectrum (two lines on exponential continuum) convolved with a gaussian
    resolution kernel by np.convolve (mode='same'), dx-weighted."""
    A1, E1, A2, E2, c0, k = params
    de = e_grid[1] - e_grid[0]
    true = c0 * np.exp(-k * e_grid)
    for A, E in ((A1, E1), (A2, E2)):
        true = true + A * np.exp(-0.5 * ((e_grid - E) / 0.02) ** 2)
    half = 10
    ker_x = np.arange(-half, half + 1) * de
    kernel = np.exp(-0.5 * (ker_x / resolution) ** 2)
    kernel /= kernel.sum()
    return np.convolve(true, kernel, mode="same")

def irf_convolved_decay(p, t, irf):
    """Fluorescence decay with instrument response: exp decay convolved (full, truncated)."""
    amp, tau = p
    decay = amp * np.exp(-t / tau)
    conv = np.convolve(irf, decay)[: t.size]
    return conv * (t[1] - t[0])

def richardson_lucy(observed, psf, n_iter=5):
    est = np.full_like(observed, observed.mean())
    psf_m = psf[::-1]
    for _ in range(n_iter):
        blurred = np.convolve(est, psf, mode="same")
        ratio = observed / blurred
        est = est * np.convolve(ratio, psf_m, mode="same")
    return est

def fwhm_resolution(E, a, b, c):
    return np.sqrt(a**2 + b**2 * E + (c * E) ** 2)

def efficiency_curve(E, coeffs):
    """Log-polynomial HPGe efficiency: ln eps = sum a_i (ln(E/E0))^i (accumulated in place)."""
    lx = np.log(E / 100.0)
    acc = np.zeros_like(E)
    for i, a in enumerate(coeffs):
        acc += a * lx**i
    return np.exp(acc)

def efficiency_curve_fixed(E, coeffs):
    """The fix the refusal names for traced coefficients: acc = acc + ..."""
    lx = np.log(E / 100.0)
    acc = np.zeros_like(E)
    for i, a in enumerate(coeffs):
        acc = acc + a * lx**i
    return np.exp(acc)

def energy_calibration(channels, gains):
    """Quadratic channel-to-energy calibration with an in-place update of a copy."""
    E = np.asarray(channels, dtype=float).copy()
    E *= gains[1]
    E += gains[0] + gains[2] * channels**2
    return E

def energy_calibration_fixed(channels, gains):
    """The fix the refusal names for traced gains: new arrays, E = E * g."""
    E = np.asarray(channels, dtype=float).copy()
    E = E * gains[1]
    E = E + gains[0] + gains[2] * channels**2
    return E

def dead_time_nonparalyzable(m, tau):
    return m / (1 - m * tau)

def dead_time_paralyzable(m, tau):
    """Invert m = n exp(-n tau) on the lower branch: n = -W(-m tau)/tau."""
    return -np.real(sps.lambertw(-m * tau)) / tau

# ---- spectroscopy: Beer-Lambert etc.
def absorbance(I, I0):
    return -np.log10(I / I0)

def beer_lambert_calibration(conc, A):
    """Least-squares slope and intercept of absorbance vs concentration; returns unknown
    concentration of a sample with absorbance 0.42."""
    X = np.stack([conc, np.ones_like(conc)], axis=1)
    coef, *_ = np.linalg.lstsq(X, A, rcond=None)
    slope, intercept = coef
    return (0.42 - intercept) / slope

def beer_lambert_polyfit(conc, A):
    slope, intercept = np.polyfit(conc, A, 1)
    return slope

def unmix_components(spectrum, E):
    """Multi-component Beer-Lambert: spectrum = E @ c; concentrations by lstsq."""
    c, *_ = np.linalg.lstsq(E, spectrum, rcond=None)
    return c

def doppler_sigma(nu0, T, mass_amu):
    k = 1.380649e-23
    c = 299792458.0
    amu = 1.66053906660e-27
    return nu0 * np.sqrt(k * T / (mass_amu * amu * c**2))

def line_area_simpson(y, x):
    return scipy.integrate.simpson(y, x=x)

def line_area_trapezoid(y, x):
    return np.trapezoid(y, x)

def centroid_window(y, x, half=3):
    """Peak centroid in a window around the maximum channel (integer argmax)."""
    i = int(np.argmax(y))
    lo, hi = max(i - half, 0), min(i + half + 1, y.size)
    w = y[lo:hi]
    return np.sum(w * x[lo:hi]) / np.sum(w)

def subtract_baseline_inplace(y, x, coef):
    """Subtracts a linear baseline from y in place and returns the net area."""
    y -= coef[0] + coef[1] * x
    return y.sum()

def modpoly_baseline(y, x, deg=2, n_iter=5):
    """Iterative polynomial baseline (ModPoly): fit, clip the spectrum to the fit, refit."""
    work = y.copy()
    for _ in range(n_iter):
        c = np.polyfit(x, work, deg)
        fit = np.polyval(c, x)
        work = np.minimum(work, fit)
    return y - fit

def savgol_peak_height(y):
    sm = scipy.signal.savgol_filter(y, 5, 2)
    return sm.max()

def spline_efficiency(E, E_tab, eff_tab):
    cs = scipy.interpolate.CubicSpline(E_tab, eff_tab)
    return cs(E)

def interp_efficiency(E, E_tab, eff_tab):
    return np.interp(E, E_tab, eff_tab)

# ---- nuclear
def klein_nishina(E, theta, re=2.8179403262e-15):
    """dsigma/dOmega for photon energy E (in units of m_e c^2)."""
    P = 1.0 / (1.0 + E * (1 - np.cos(theta)))
    return 0.5 * re**2 * P**2 * (P + 1 / P - np.sin(theta) ** 2)

def compton_edge(E):
    return E * 2 * E / (1 + 2 * E)

def rutherford(theta, Z1, Z2, T):
    k = 1.439976   # MeV fm
    return (Z1 * Z2 * k / (4 * T)) ** 2 / np.sin(theta / 2) ** 4

def bethe_bloch(betagamma, Z=14, A=28.0855, I=173e-6, z=1):
    K = 0.307075
    me = 0.51099895
    bg2 = betagamma**2
    gamma = np.sqrt(1 + bg2)
    beta2 = bg2 / (1 + bg2)
    M = 105.658
    Tmax = 2 * me * bg2 / (1 + 2 * gamma * me / M + (me / M) ** 2)
    return K * z**2 * Z / A / beta2 * (0.5 * np.log(2 * me * bg2 * Tmax / I**2) - beta2)

def semf_binding(coeffs, Z, N):
    """Bethe-Weizsacker binding energy; pairing term by parity of Python ints."""
    aV, aS, aC, aA, aP = coeffs
    A = Z + N
    B = aV * A - aS * A ** (2 / 3) - aC * Z * (Z - 1) / A ** (1 / 3) - aA * (N - Z) ** 2 / A
    if Z % 2 == 0 and N % 2 == 0:
        B = B + aP / np.sqrt(A)
    elif Z % 2 == 1 and N % 2 == 1:
        B = B - aP / np.sqrt(A)
    return B

def semf_table_chi2(coeffs, ZN, B_meas):
    pred = np.array([semf_binding(coeffs, int(z), int(n)) for z, n in ZN])
    return np.sum((pred - B_meas) ** 2)

def woods_saxon_rms(params, r):
    """rms radius of a Woods-Saxon density on a grid (trapezoid)."""
    R, a = params
    rho = 1.0 / (1.0 + np.exp((r - R) / a))
    num = np.trapezoid(rho * r**4, r)
    den = np.trapezoid(rho * r**2, r)
    return np.sqrt(num / den)

def bateman_two_step(t, lam1, lam2, N0):
    """Parent -> daughter -> stable; daughter activity."""
    N2 = N0 * lam1 / (lam2 - lam1) * (np.exp(-lam1 * t) - np.exp(-lam2 * t))
    return lam2 * N2

def decay_chain_expm(lams, t, N0):
    n = lams.size
    Q = np.diag(-lams)
    for i in range(n - 1):
        Q[i + 1, i] = lams[i]
    return scipy.linalg.expm(Q * t) @ N0

def asymmetry(n_plus, n_minus):
    A = (n_plus - n_minus) / (n_plus + n_minus)
    err = np.sqrt((1 - A**2) / (n_plus + n_minus))
    return A, err

def cross_section(N, lumi, eff, bkg):
    return (N - bkg) / (lumi * eff)

def propagate(J, C):
    return J @ C @ J.T


def crystal_ball(x, alpha, n, mu, sigma):
    """Crystal Ball line shape (unnormalised): Gaussian core, power-law low tail."""
    t = (x - mu) / sigma
    a = np.abs(alpha)
    A = (n / a) ** n * np.exp(-0.5 * a**2)
    B = n / a - a
    return np.where(t > -a, np.exp(-0.5 * t**2), A * (B - t) ** (-n))

def crystal_ball_safe(x, alpha, n, mu, sigma):
    """The same with the double where (docs/conventions.md): the tail never sees B - t <= 0."""
    t = (x - mu) / sigma
    a = np.abs(alpha)
    A = (n / a) ** n * np.exp(-0.5 * a**2)
    B = n / a - a
    core = t > -a
    return np.where(core, np.exp(-0.5 * t**2), A * np.where(core, 1.0, B - t) ** (-n))

def argus(m, m0, c, p=0.5):
    """ARGUS background shape for m < m0, zero above (B-meson beam-constrained mass)."""
    z = 1 - (m / m0) ** 2
    return np.where(z > 0, m * np.sqrt(np.where(z > 0, z, 1.0)) ** (2 * p) * np.exp(c * z), 0.0)

def hypermet_peak(x, A, mu, sigma, tail_frac, beta):
    """Gaussian with a low-energy exponential tail (HPGe), the tail via erfc."""
    g = np.exp(-0.5 * ((x - mu) / sigma) ** 2)
    tail = np.exp((x - mu) / beta) * sps.erfc((x - mu) / (np.sqrt(2) * sigma) + sigma / (np.sqrt(2) * beta))
    return A * ((1 - tail_frac) * g + tail_frac * tail)

def sphericity(P3):
    """Sphericity of an event from particle three-momenta (rows): 3/2 (l2 + l3)."""
    S = P3.T @ P3 / np.sum(P3**2)
    lam = np.linalg.eigvalsh(S)
    return 1.5 * (lam[0] + lam[1])

def poisson_logpmf_nll(mu_s, counts, bkg, shape):
    """Binned likelihood with scipy.stats.poisson.logpmf of a signal-strength scaled template."""
    return -np.sum(st.poisson.logpmf(counts, mu_s * shape + bkg))

def chi2_pvalue(theta, x, y, yerr):
    """Goodness of fit: chi2 of a line fit and its p-value chi2.sf(chi2, ndf)."""
    chi2 = np.sum(((y - (theta[0] + theta[1] * x)) / yerr) ** 2)
    return st.chi2.sf(chi2, x.size - 2)

def fwhm_from_samples(y, x):
    """FWHM of a sampled peak by linear interpolation of the half-maximum crossings."""
    i = int(np.argmax(y))
    half = y[i] / 2
    left = i
    while left > 0 and y[left] > half:
        left -= 1
    right = i
    while right < y.size - 1 and y[right] > half:
        right += 1
    xl = x[left] + (half - y[left]) * (x[left + 1] - x[left]) / (y[left + 1] - y[left])
    xr = x[right - 1] + (half - y[right - 1]) * (x[right] - x[right - 1]) / (y[right] - y[right - 1])
    return xr - xl

def cumulative_spectrum_median(y, x):
    """Median energy of a spectrum: cumulative sum, then np.interp at half the total."""
    c = np.cumsum(y)
    return np.interp(c[-1] / 2, c, x)

def bw_normalised_quad(M, Gamma, lo=0.5, hi=1.1):
    """Relativistic BW normalised on a mass window by scipy.integrate.quad, at m = 0.8."""
    f = lambda m: 1.0 / ((m**2 - M**2) ** 2 + M**2 * Gamma**2)
    norm, _ = scipy.integrate.quad(f, lo, hi)
    return f(0.8) / norm

def weighted_histogram_fill(values, weights, edges):
    """A histogram filled with np.add.at into a preallocated buffer (event weights)."""
    h = np.zeros(edges.size - 1)
    idx = np.searchsorted(edges, values, side="right") - 1
    np.add.at(h, idx, weights)
    return h

def weighted_histogram_fill_like(values, weights, edges):
    h = np.zeros(edges.size - 1, like=weights)
    idx = np.searchsorted(edges, values, side="right") - 1
    np.add.at(h, idx, weights)
    return h

def moyal_energy_loss_nll(params, dE):
    """Energy-loss straggling with a Moyal (Landau approximation) distribution."""
    loc, scale = params
    return -np.sum(st.moyal.logpdf(dE, loc=loc, scale=scale))

def moyal_energy_loss_nll_written(params, dE):
    """The Moyal log-density written out (what the refusal of scipy.stats.moyal asks for)."""
    loc, scale = params
    z = (dE - loc) / scale
    return -np.sum(-0.5 * (z + np.exp(-z)) - 0.5 * np.log(2 * np.pi) - np.log(scale))

def lifetime_with_resolution(t, tau, sigma):
    """Exponential decay convolved with a gaussian time resolution (analytic: exGaussian)."""
    return (0.5 / tau) * np.exp(sigma**2 / (2 * tau**2) - t / tau) * sps.erfc((sigma / tau - t / sigma) / np.sqrt(2))

def mass_constrained_fit(p, sigma_p, M):
    """Kinematic fit: scale two massless momenta by factors to satisfy m12 = M, minimising
    chi2 with a Lagrange-free 1D Newton iteration on the common scale."""
    m0 = np.sqrt(2 * p[0] * p[1] * (1 - np.cos(p[2])))
    k = 1.0
    for _ in range(6):
        g = k * m0 - M
        k = k - g / m0
    return k * p[:2]


# ---- helpers ---------------------------------------------------------------------------------


def _tree_identical(got, want):
    """Bit-for-bit the same (types, dtypes, shapes, values) through dicts/tuples/lists."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for k in want:
            _tree_identical(got[k], want[k])
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _tree_identical(g, w)
        return
    assert type(got) is type(want), (type(got), type(want))
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_array_equal(g, w)


def _tree_same(got, want, rtol=1e-12, atol=0.0):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for k in want:
            _tree_same(got[k], want[k], rtol, atol)
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _tree_same(g, w, rtol, atol)
        return
    assert_same(got, want, rtol=rtol, atol=atol)


def repeated(fn, argsets, rounds=5):
    """Call fn on every argument set ``rounds`` times (interleaved); each later call must be
    bit-for-bit the first one for that argument set (eager transforms switch to a cached
    pull-back after a few calls).  Returns the first results."""
    first = [fn(*a) for a in argsets]
    for _ in range(rounds - 1):
        for a, r in zip(argsets, first):
            _tree_identical(fn(*a), r)
    return first


def check_jit(f, *argsets, rtol=1e-12, atol=0.0, **jit_kwargs):
    """One jit object: the first argument set records, the others replay (three rounds); every
    result is the plain program's (type, dtype, shape, value to rounding)."""
    jf = npfunc.jit(f, **jit_kwargs)
    for _ in range(3):
        for a in argsets:
            _tree_same(jf(*a), f(*a), rtol, atol)


def check_vmap(f, batched, in_dims, rtol=1e-12, atol=0.0, **kw):
    """vmap against a Python loop + np.stack (the mapped axis taken per in_dims), five calls."""
    n = next(np.shape(b)[d] for b, d in zip(batched, in_dims) if d is not None)
    rows = []
    for i in range(n):
        args = [b if d is None else np.take(b, i, axis=d) for b, d in zip(batched, in_dims)]
        rows.append(f(*args))
    if isinstance(rows[0], dict):
        want = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    elif isinstance(rows[0], tuple):
        want = tuple(np.stack([r[i] for r in rows]) for i in range(len(rows[0])))
    else:
        want = np.stack(rows)
    vf = npfunc.vmap(f, in_dims=tuple(in_dims), **kw)
    (got,) = repeated(vf, [tuple(batched)])
    _tree_same(got, want, rtol, atol)
    return got


def check_derivs(f, x, x_new, *rest, hess=True, rtol=1e-6, atol=1e-8, hrtol=1e-5, hatol=1e-7,
                 rounds=5, eps=1e-5, jit_grad=True):
    """grad, jacrev, jacfwd, vjp, jit(grad) of a scalar f in its first argument against
    five-point differences of the plain program at x and x_new; with ``hess`` also hessian,
    jacfwd(jacrev) and the jvp(grad) Hessian-vector product against differences of the
    gradient.  Each transformed function is called ``rounds`` times on both points."""
    argsets = [(x,) + rest, (x_new,) + rest]
    plain = lambda v: f(v, *rest)
    fds = [fd(plain, v, eps).reshape(np.shape(plain(v)) + np.shape(v)) for v in (x, x_new)]
    for T in (npfunc.grad, npfunc.jacrev, npfunc.jacfwd):
        for got, want in zip(repeated(T(f), argsets, rounds), fds):
            assert_deriv(got, want, rtol, atol)
    gf = npfunc.grad(f)
    jg = npfunc.jit(lambda v: gf(v, *rest))
    for _ in range(rounds if jit_grad else 0):
        for a in argsets:
            assert_same(jg(a[0]), gf(*a), rtol=1e-11, atol=1e-14)
    for v, want in zip((x, x_new), fds):
        out, pull = npfunc.vjp(plain, v)
        assert_same(out, plain(v))
        assert_deriv(pull(np.ones_like(out))[0], want, rtol, atol)
    if not hess:
        return
    Hfd = [fd(lambda u: gf(u, *rest), v, eps).reshape(np.shape(v) * 2) for v in (x, x_new)]
    for T in (npfunc.hessian, lambda g: npfunc.jacfwd(npfunc.jacrev(g))):
        for got, want in zip(repeated(T(f), argsets, rounds), Hfd):
            assert_deriv(got, want, hrtol, hatol)
    direction = np.linspace(0.5, -0.7, np.size(x)).reshape(np.shape(x))
    inner = lambda u: gf(u, *rest)
    hvp = lambda v: npfunc.jvp(inner, (v,), (direction,))[1]
    for got, H in zip(repeated(hvp, [(x,), (x_new,)], rounds), Hfd):
        assert_deriv(got, (H.reshape(np.size(x), np.size(x)) @ direction.ravel()).reshape(np.shape(x)), hrtol, hatol)


def check_jacobians(f, x, x_new, *rest, rtol=1e-6, atol=1e-8, rounds=5, eps=1e-5, vatol=0.0):
    """jacrev, jacfwd, jvp and vjp of an array-valued f in its first argument against
    five-point differences, each called ``rounds`` times on both points."""
    argsets = [(x,) + rest, (x_new,) + rest]
    plain = lambda v: f(v, *rest)
    fds = [fd(plain, v, eps).reshape(np.shape(plain(v)) + np.shape(v)) for v in (x, x_new)]
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for got, want in zip(repeated(T(f), argsets, rounds), fds):
            assert_deriv(got, want, rtol, atol)
    direction = np.linspace(0.3, -0.6, np.size(x)).reshape(np.shape(x))
    jvp = lambda v: npfunc.jvp(plain, (v,), (direction,))
    for (out, tan), v, J in zip(repeated(jvp, [(x,), (x_new,)], rounds), (x, x_new), fds):
        assert_same(out, plain(v), atol=vatol)
        assert_deriv(tan, J.reshape(np.size(out), np.size(x)).dot(direction.ravel()).reshape(np.shape(out)), rtol, atol)
    for v, J in zip((x, x_new), fds):
        out, pull = npfunc.vjp(plain, v)
        ct = np.linspace(1.0, 2.0, np.size(out)).reshape(np.shape(out))
        assert_deriv(pull(ct)[0], (ct.ravel() @ J.reshape(np.size(out), np.size(x))).reshape(np.shape(v)), rtol, atol)


def check_scalar_second(f, t, t_new, *rest, rtol=1e-6, atol=1e-8, rounds=5, eps=1e-5):
    """grad and grad(grad) of f in a 0-d first argument, against differences."""
    g1 = npfunc.grad(f)
    g2 = npfunc.grad(g1)
    d1 = lambda s: fd(lambda u: f(u[0], *rest), np.array([s]), eps)[0]
    d2 = lambda s: fd(lambda u: g1(u[0], *rest), np.array([s]), eps)[0]
    argsets = [(t,) + rest, (t_new,) + rest]
    for got, s in zip(repeated(g1, argsets, rounds), (t, t_new)):
        assert_deriv(got, d1(s), rtol, atol)
    for got, s in zip(repeated(g2, argsets, rounds), (t, t_new)):
        assert_deriv(got, d2(s), 1e-5, 1e-7)


def check_per_sample_grads(f, X, *rest, in_dims=None, rtol=1e-6, atol=1e-8):
    """vmap(grad(f)) and jit(vmap(grad(f))) against per-sample differences (rows of X)."""
    dims = in_dims if in_dims is not None else (0,) + (None,) * len(rest)
    vg = npfunc.vmap(npfunc.grad(f), in_dims=dims)
    jvg = npfunc.jit(vg)
    ax = dims[0]
    want = np.stack([fd(lambda v: f(v, *rest), np.take(X, i, axis=ax))
                     for i in range(X.shape[ax])])
    (got,) = repeated(vg, [(X,) + rest])
    assert_deriv(got, want, rtol, atol)
    X2 = X * 1.01
    want2 = np.stack([fd(lambda v: f(v, *rest), np.take(X2, i, axis=ax))
                      for i in range(X2.shape[ax])])
    for _ in range(3):
        _tree_same(jvg(X, *rest), got, 1e-11, 1e-14)
        assert_deriv(jvg(X2, *rest), want2, rtol, atol)


# ---- data ------------------------------------------------------------------------------------


def peak_data(seed=0, n=40):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 10.0, n)
    truth = 120.0 * np.exp(-0.5 * ((x - 5.0) / 0.8) ** 2) + 10.0 + 0.5 * x
    y = rng.poisson(truth).astype(float)
    return x, y


def decay_histogram(seed=1):
    rng = np.random.default_rng(seed)
    t = np.concatenate([rng.exponential(2.2, 400), rng.uniform(0, 10, 60)])
    counts, edges = np.histogram(t, bins=12, range=(0.0, 10.0))
    return edges, counts


def mass_histogram(seed=2):
    rng = np.random.default_rng(seed)
    m = np.concatenate([rng.normal(3.1, 0.05, 300), rng.uniform(2.8, 3.4, 200)])
    counts, edges = np.histogram(m, bins=15, range=(2.8, 3.4))
    return edges, counts


def muon_pairs(n=5, seed=3):
    rng = np.random.default_rng(seed)
    pt = rng.uniform(20.0, 50.0, (n, 2))
    eta = rng.uniform(-2.0, 2.0, (n, 2))
    phi = rng.uniform(-np.pi, np.pi, (n, 2))
    return np.stack([pt[:, 0], eta[:, 0], phi[:, 0], pt[:, 1], eta[:, 1], phi[:, 1]], axis=1)


# ---- 1. peak shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["gauss", "lorentz", "voigt", "voigt_wofz", "pseudo_voigt"])
def test_peak_shapes_jit_vmap_and_parameter_derivatives(shape):
    x = np.linspace(-3.0, 3.0, 9)
    fn, p, p2 = {
        "gauss": (gauss_peak, (2.0, 0.3, 0.7), (2.5, -0.2, 0.9)),
        "lorentz": (lorentz_peak, (2.0, 0.3, 0.7), (2.5, -0.2, 0.9)),
        "voigt": (voigt_peak, (2.0, 0.3, 0.5, 0.4), (2.5, -0.2, 0.6, 0.2)),
        "voigt_wofz": (voigt_wofz, (2.0, 0.3, 0.5, 0.4), (2.5, -0.2, 0.6, 0.2)),
        "pseudo_voigt": (pseudo_voigt, (2.0, 0.3, 0.9, 0.6), (2.5, -0.2, 0.8, 0.7)),
    }[shape]
    check_jit(fn, (x,) + p, (x[::-1].copy(),) + p2)
    check_jit(lambda th, xx: fn(xx, *th), (np.array(p), x), (np.array(p2), x + 0.1))
    model = lambda th, xx: fn(xx, *th)
    check_jacobians(model, np.array(p), np.array(p2), x)
    # total area in the window, its gradient and Hessian in the parameters
    area = lambda th, xx: np.sum(fn(xx, *th)) * (xx[1] - xx[0])
    check_derivs(area, np.array(p), np.array(p2), x)
    # a batch of parameter sets along axis 1 (columns), x shared
    P = np.stack([np.array(p), np.array(p2), np.array(p) * 1.1], axis=1)
    check_vmap(model, (P, x), (1, None))
    check_per_sample_grads(area, P.T, x)


def test_voigt_profile_agrees_with_wofz_and_derivative_in_position():
    x = np.linspace(-2.0, 2.0, 7)
    np.testing.assert_allclose(voigt_peak(x, 1.0, 0.1, 0.5, 0.3), voigt_wofz(x, 1.0, 0.1, 0.5, 0.3), rtol=1e-12)
    f = lambda mu: voigt_peak(0.4, 1.0, mu, 0.5, 0.3)
    g = lambda mu: voigt_wofz(0.4, 1.0, mu, 0.5, 0.3)
    assert_same(npfunc.jit(f)(np.float64(0.1)), f(np.float64(0.1)))
    assert_same(npfunc.jit(g)(np.float64(0.1)), g(np.float64(0.1)))
    check_scalar_second(f, 0.1, -0.3)
    check_scalar_second(g, 0.1, -0.3)


def test_gauss_peak_float32_stays_float32():
    x = np.linspace(-2, 2, 6, dtype=np.float32)
    A, mu, s = np.float32(3.0), np.float32(0.2), np.float32(0.6)
    # the np.float64 constant SQ2PI promotes float32 data to float64 in NumPy 2: so under npfunc
    assert gauss_peak(x, A, mu, s).dtype == np.float64
    check_jit(gauss_peak, (x, A, mu, s), (x + np.float32(0.5), A, mu, np.float32(0.7)))
    want = gauss_peak32(x, A, mu, s)
    assert want.dtype == np.float32
    check_jit(gauss_peak32, (x, A, mu, s), (x + np.float32(0.5), A, mu, np.float32(0.7)), rtol=1e-6)
    g = npfunc.grad(lambda a, xx: np.sum(gauss_peak32(xx, a, mu, s)))(A, x)
    assert type(g) is np.float32
    np.testing.assert_allclose(g, np.sum(gauss_peak32(x, np.float32(1.0), mu, s)), rtol=1e-6)
    J = npfunc.jacfwd(gauss_peak32, argnums=2)(x, A, mu, s)
    assert J.dtype == np.float32
    np.testing.assert_allclose(J, fd(lambda m: gauss_peak(x.astype(float), 3.0, m[0], 0.6), np.array([0.2]))[:, 0],
                               rtol=1e-5)


# ---- 2. multi-peak fits with baseline ------------------------------------------------------------


def test_multipeak_chi2_derivatives_jit_and_per_spectrum_gradients():
    x = np.linspace(0.0, 10.0, 30)
    true = np.array([50.0, 3.0, 0.6, 30.0, 6.5, 0.9])
    base = np.array([0.02, 0.1, 4.0])
    y = multipeak_spectrum(true, x, base) + np.sin(7 * x)
    yerr = np.sqrt(np.maximum(y, 1.0))
    p0 = true * np.array([1.05, 1.01, 0.9, 0.95, 0.99, 1.1])
    assert_same(multipeak_spectrum(true, x, base), multipeak_spectrum(true, x, base))
    check_jit(chi2_multipeak, (p0, x, y, yerr, base), (true, x, y * 1.1, yerr, base))
    check_jit(multipeak_spectrum, (p0, x, base), (true, x + 0.1, base * 0.5))
    check_derivs(chi2_multipeak, p0, true * 1.02, x, y, yerr, base)
    # several spectra (rows) of the same channels: per-spectrum gradients
    Y = np.stack([y, y * 1.05, y[::-1].copy()])
    per_spec = lambda yy, p: chi2_multipeak(p, x, yy, yerr, base)
    check_vmap(per_spec, (Y, p0), (0, None))
    vg = npfunc.vmap(npfunc.grad(chi2_multipeak), in_dims=(None, None, 0, None, None))
    want = np.stack([fd(lambda p: chi2_multipeak(p, x, yy, yerr, base), p0) for yy in Y])
    for _ in range(5):
        assert_deriv(vg(p0, x, Y, yerr, base), want)


def test_peak_plus_polynomial_baseline_chi2_and_fit_summary_dict():
    x, y = peak_data()
    th = np.array([240.0, 5.1, 0.75, 9.0, 0.6, 0.001])
    th2 = np.array([250.0, 4.9, 0.85, 11.0, 0.4, -0.002])
    check_jit(chi2_peak_plus_baseline, (th, x, y), (th2, x, y + 1.0))
    check_derivs(chi2_peak_plus_baseline, th, th2, x, y)
    check_jit(fit_summary, (th,), (th2,))
    J = npfunc.jacrev(fit_summary)(th)
    assert set(J) == {"area", "centroid", "fwhm", "height", "resolution"}
    for k in J:
        assert_deriv(J[k], fd(lambda t: fit_summary(t)[k], th))
    # error propagation of the fit summary: J C J^T
    C = np.diag([25.0, 0.01, 0.004, 1.0, 0.01, 1e-6])
    Jres = npfunc.jacfwd(lambda t: fit_summary(t)["resolution"])(th)
    var = Jres @ C @ Jres
    want = fd(lambda t: fit_summary(t)["resolution"], th)
    np.testing.assert_allclose(var, want @ C @ want, rtol=1e-6)
    check_vmap(fit_summary, (np.stack([th, th2]),), (0,))


def test_fit_by_scipy_minimize_then_grad_at_optimum_is_zero():
    x, y = peak_data(seed=5)
    f = lambda th: chi2_peak_plus_baseline(th, x, y)
    res = scipy.optimize.minimize(f, np.array([230.0, 5.0, 0.7, 10.0, 0.5, 0.0]),
                                  jac=npfunc.grad(f), method="BFGS", options={"gtol": 1e-8})
    res_fd = scipy.optimize.minimize(f, np.array([230.0, 5.0, 0.7, 10.0, 0.5, 0.0]),
                                     jac=lambda t: fd(f, t), method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(res.x, res_fd.x, rtol=1e-4)
    H = npfunc.hessian(f)(res.x)
    np.testing.assert_allclose(H, fd(npfunc.grad(f), res.x), rtol=1e-5, atol=1e-6)
    cov = 2 * np.linalg.inv(H)
    assert np.all(np.diag(cov) > 0)


# ---- 3. resonances --------------------------------------------------------------------------------


def test_breit_wigner_line_shapes():
    s = np.linspace(0.5, 0.7, 6)
    check_jit(breit_wigner_rel, (s, 0.775, 0.149), (s * 1.1, 0.78, 0.15))
    check_jit(breit_wigner_nr, (s, 0.6, 0.05), (s + 0.01, 0.61, 0.04))
    check_jacobians(lambda p, ss: breit_wigner_rel(ss, p[0], p[1]), np.array([0.775, 0.149]),
                    np.array([0.78, 0.16]), s)
    check_scalar_second(lambda M: breit_wigner_nr(0.62, M, 0.05), 0.6, 0.63)
    check_vmap(breit_wigner_rel, (s, np.array([0.77, 0.78, 0.79]), 0.149), (None, 0, None))


def test_two_body_momentum_and_kallen():
    check_jit(two_body_momentum, (np.float64(1.0), 0.13957, 0.13957), (np.float64(3.1), 0.105, 0.105))
    check_scalar_second(lambda M: two_body_momentum(M, 0.13957, 0.49368), 1.02, 1.8)
    M = np.array([0.9, 1.2, 3.1])
    check_vmap(two_body_momentum, (M, np.array([0.1, 0.2, 0.3]), 0.1), (0, 0, None))


def test_energy_dependent_width_bw_early_return_below_threshold():
    m0, g0 = 0.775, 0.149
    assert bw_energy_dependent_width(0.2, m0, g0) == 0.0
    check_scalar_second(lambda m: bw_energy_dependent_width(m, m0, g0), 0.7, 0.85)
    check_derivs(lambda p: bw_energy_dependent_width(0.75, p[0], p[1]),
                 np.array([m0, g0]), np.array([0.78, 0.16]))
    # the threshold comparison on a traced mass under jit and vmap: refused, naming np.where
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.where"):
        npfunc.jit(bw_energy_dependent_width)(np.float64(0.7), m0, g0)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"np\.where"):
        npfunc.vmap(bw_energy_dependent_width, in_dims=(0, None, None))(np.array([0.7, 0.8]), m0, g0)


def test_bw_with_complex_background_intensity():
    m = np.linspace(0.6, 0.95, 5)
    bg = 0.3 + 0.2j
    check_jit(bw_amplitude_intensity, (m, 0.775, 0.149, bg), (m + 0.01, 0.78, 0.15, 0.1 - 0.1j))
    check_jacobians(lambda p, mm: bw_amplitude_intensity(mm, p[0], p[1], bg),
                    np.array([0.775, 0.149]), np.array([0.77, 0.14]), m)
    check_derivs(lambda p: np.sum(bw_amplitude_intensity(m, p[0], p[1], bg)),
                 np.array([0.775, 0.149]), np.array([0.77, 0.14]))


# ---- 4. binned likelihoods of histograms ------------------------------------------------------


def test_binned_poisson_nll_of_histogram():
    edges, counts = mass_histogram()
    assert counts.dtype == np.int64
    th = np.array([290.0, 210.0, 3.1, 0.05])
    th2 = np.array([310.0, 190.0, 3.09, 0.055])
    check_jit(binned_poisson_nll, (th, edges, counts), (th2, edges, counts[::-1].copy()))
    check_derivs(binned_poisson_nll, th, th2, edges, counts, eps=1e-4)
    # toys: a batch of count vectors (a column per toy), per-toy gradients
    rng = np.random.default_rng(9)
    toys = rng.poisson(counts + 0.5, size=(3, counts.size)).T
    check_vmap(binned_poisson_nll, (th, edges, toys), (None, None, 1))
    vg = npfunc.vmap(npfunc.grad(binned_poisson_nll), in_dims=(None, None, 1))
    want = np.stack([fd(lambda t: binned_poisson_nll(t, edges, toys[:, i]), th, 1e-4) for i in range(3)])
    for _ in range(5):
        assert_deriv(vg(th, edges, toys), want)
    jvg = npfunc.jit(vg)
    for _ in range(3):
        assert_deriv(jvg(th, edges, toys), want)


def test_binned_neyman_chi2_with_empty_bins():
    edges, counts = mass_histogram(seed=4)
    counts = counts.copy()
    counts[[0, 7]] = 0
    th = np.array([290.0, 210.0, 3.1, 0.05])
    check_jit(binned_chi2_neyman, (th, edges, counts), (th * 1.01, edges, counts))
    check_derivs(binned_chi2_neyman, th, th * 1.02, edges, counts, eps=1e-4)


def test_binned_exponential_decay_fit():
    edges, counts = decay_histogram()
    p = np.array([400.0, 2.2, 6.0])
    p2 = np.array([380.0, 2.4, 5.0])
    check_jit(binned_exp_decay_nll, (p, edges, counts), (p2, edges, counts + 1))
    check_derivs(binned_exp_decay_nll, p, p2, edges, counts)
    check_scalar_second(lambda tau: binned_exp_decay_nll(np.array([400.0, tau, 6.0]), edges, counts), 2.2, 2.5)
    # fit tau by minimize_scalar with npfunc derivative afterwards: d nll/d tau = 0 at optimum
    res = scipy.optimize.minimize_scalar(lambda tau: binned_exp_decay_nll(np.array([400.0, tau, 6.0]), edges, counts),
                                         bounds=(1.0, 4.0), method="bounded", options={"xatol": 1e-10})
    g = npfunc.grad(lambda tau: binned_exp_decay_nll(np.array([400.0, tau, 6.0]), edges, counts))(res.x)
    assert abs(g) < 1e-4


def test_exponential_decay_float32_types():
    t = np.linspace(0, 5, 6, dtype=np.float32)
    want = exp_decay_f32(t, np.float32(100.0), np.float32(2.0))
    assert want.dtype == np.float32
    check_jit(exp_decay_f32, (t, np.float32(100.0), np.float32(2.0)),
              (t * np.float32(1.5), np.float32(90.0), np.float32(2.5)), rtol=1e-6)
    g = npfunc.grad(lambda tau: np.sum(exp_decay_f32(t, np.float32(100.0), tau)))(np.float32(2.0))
    assert type(g) is np.float32
    want_g = np.sum(100.0 * np.exp(-t.astype(float) / 2.0) * t / 4.0)
    np.testing.assert_allclose(g, want_g, rtol=1e-5)
    vg = npfunc.vmap(npfunc.grad(lambda tau, tt: exp_decay_f32(tt, np.float32(100.0), tau)), in_dims=(None, 0))(np.float32(2.0), t)
    assert vg.dtype == np.float32


def test_extended_unbinned_nll():
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(5.28, 0.03, 30), 5.2 + rng.exponential(0.1, 50)])
    x = x[(x > 5.2) & (x < 5.4)]
    p = np.array([30.0, 45.0, 5.28, 0.03, 9.0])
    p2 = np.array([28.0, 50.0, 5.279, 0.032, 11.0])
    check_jit(extended_nll, (p, x, 5.2, 5.4), (p2, x[:-3].copy(), 5.2, 5.4))
    check_derivs(extended_nll, p, p2, x, 5.2, 5.4, eps=1e-4)


def test_profile_likelihood_by_minimize_scalar():
    n_on, n_off, tau = 25.0, 30.0, 2.0
    f = lambda mu: profile_nll_mu(mu, n_on, n_off, tau)
    # the profile is stationary at mu_hat = n_on - n_off / tau = 10: take points beside it
    jf = npfunc.jit(f)
    for mu in (5.0, 14.0, 5.0, 14.0):
        assert_same(jf(np.float64(mu)), f(np.float64(mu)))
    g = npfunc.grad(f)
    for mu in (5.0, 14.0) * 5:
        np.testing.assert_allclose(g(mu), fd(lambda m: f(m[0]), np.array([mu]), 1e-4)[0], rtol=1e-5)
    v = npfunc.vmap(f)(np.array([5.0, 10.0, 15.0]))
    assert_same(v, np.stack([f(5.0), f(10.0), f(15.0)]))


def test_asimov_significance_and_q0_counting():
    check_jit(asimov_significance, (np.float64(10.0), np.float64(50.0)), (np.float64(3.0), np.float64(4.0)))
    check_scalar_second(lambda s: asimov_significance(s, 50.0), 10.0, 3.0)
    check_derivs(lambda p: asimov_significance(p[0], p[1]), np.array([10.0, 50.0]), np.array([3.0, 4.0]))
    s = np.array([1.0, 5.0, 10.0])
    b = np.array([[2.0, 20.0, 200.0]]).T
    check_vmap(asimov_significance, (s, b), (0, None))
    check_vmap(asimov_significance, (s, b), (None, 1))
    assert q0_counting(5.0, 10.0) == 0.0
    check_scalar_second(lambda n: q0_counting(n, 10.0), 15.0, 22.0)
    check_scalar_second(lambda bb: q0_counting(30.0, bb), 10.0, 14.0)


def test_cls_with_poisson_cdf():
    check_jit(cls_upper, (np.float64(3.0), 5, 4.0), (np.float64(5.0), 5, 4.0))
    check_scalar_second(lambda s: cls_upper(s, 5, 4.0), 3.0, 5.0)
    # the upper limit s95: CLs(s) = 0.05 by brentq, with the sensitivity d s95 / d b by
    # implicit differentiation through npfunc's gradients
    s95 = scipy.optimize.brentq(lambda s: cls_upper(s, 5, 4.0) - 0.05, 0.1, 30.0, xtol=1e-14)
    dCds = npfunc.grad(cls_upper, argnums=0)(s95, 5, 4.0)
    dCdb = npfunc.grad(cls_upper, argnums=2)(s95, 5, 4.0)
    s95_b = lambda b: scipy.optimize.brentq(lambda s: cls_upper(s, 5, b) - 0.05, 0.1, 30.0, xtol=1e-14)
    np.testing.assert_allclose(-dCdb / dCds, fd(lambda b: s95_b(b[0]), np.array([4.0]), 1e-4)[0], rtol=1e-5)


# ---- 5. kinematics --------------------------------------------------------------------------------


def test_dilepton_invariant_mass_per_event():
    K = muon_pairs()
    check_jit(dilepton_mass, (K[0],), (K[1],))
    check_vmap(dilepton_mass, (K,), (0,))
    check_vmap(dilepton_mass, (K.T.copy(),), (1,))
    check_derivs(dilepton_mass, K[0], K[2])
    check_per_sample_grads(dilepton_mass, K)
    # error propagation J C J^T of the mass from the muon resolution
    C = np.diag([0.5, 1e-6, 1e-6, 0.6, 1e-6, 1e-6])
    J = npfunc.jacrev(dilepton_mass)(K[0])
    Jfd = fd(dilepton_mass, K[0])
    np.testing.assert_allclose(propagate(J[None], C), propagate(Jfd[None], C), rtol=1e-6)
    # per-event mass uncertainties: vmap of jacrev, then J C J^T
    Js = npfunc.vmap(npfunc.jacrev(dilepton_mass))(K)
    sig2 = np.einsum("ni,ij,nj->n", Js, C, Js)
    want = np.array([fd(dilepton_mass, k) @ C @ fd(dilepton_mass, k) for k in K])
    np.testing.assert_allclose(sig2, want, rtol=1e-6)


def test_invariant_mass_of_particle_rows_and_event_batch():
    rng = np.random.default_rng(6)
    p3 = rng.normal(0, 5, (3, 3))
    E = np.sqrt(np.sum(p3**2, axis=1) + 0.14**2)
    P = np.concatenate([E[:, None], p3], axis=1)
    check_jit(invariant_mass_events, (P,), (P * 1.1,))
    check_derivs(invariant_mass_events, P, P[::-1].copy() * 0.9)
    Ps = np.stack([P, P * 0.8, P[::-1].copy()], axis=2)   # events along the last axis
    check_vmap(invariant_mass_events, (Ps,), (2,))


def test_four_vector_jacobian_and_boost():
    v = np.array([30.0, 0.4, 1.2, 0.105658])
    fv = lambda a: four_vector(a[0], a[1], a[2], a[3])
    check_jit(fv, (v,), (v * 1.1,))
    check_jacobians(fv, v, v * 1.1)
    beta = np.array([0.3, -0.2, 0.5])
    L = boost_matrix(beta)
    eta = np.diag([1.0, -1.0, -1.0, -1.0])
    np.testing.assert_allclose(L.T @ eta @ L, eta, atol=1e-12)
    check_jit(boost_matrix, (beta,), (beta * 0.5,))
    check_jacobians(boost_matrix, beta, beta[::-1].copy())
    check_vmap(boost_matrix, (np.stack([beta, beta * 0.5, -beta]),), (0,))


def test_boost_to_rest_frame_gives_mass_at_rest():
    K = muon_pairs(seed=8)
    mmu = 0.105658
    def rest_energy(kin):
        p1 = four_vector(kin[0], kin[1], kin[2], mmu)
        p2 = four_vector(kin[3], kin[4], kin[5], mmu)
        P = p1 + p2
        return boost_to_rest(P, P)
    r = rest_energy(K[0])
    np.testing.assert_allclose(r[0], dilepton_mass(K[0]), rtol=1e-10)
    check_jit(rest_energy, (K[0],), (K[1],))
    check_jacobians(rest_energy, K[0], K[1], atol=1e-6)


def test_helicity_angle_cos_theta_star():
    K = muon_pairs(seed=12)
    check_jit(cos_theta_star, (K[0],), (K[3],))
    check_vmap(cos_theta_star, (K,), (0,))
    check_derivs(cos_theta_star, K[0], K[3], hrtol=3e-5, hatol=1e-6)


def test_delta_r_phi_wrapping_and_rapidities():
    args = (np.float64(0.5), np.float64(3.0), np.float64(-0.2), np.float64(-3.0))
    check_jit(delta_r, args, (np.float64(1.0), np.float64(0.1), np.float64(0.3), np.float64(0.2)))
    dr = lambda v: delta_r(v[0], v[1], v[2], v[3])
    check_derivs(dr, np.array(args), np.array([1.0, 0.1, 0.3, 0.2]))
    e1, p1, e2, p2 = np.array([0.5, 1.0]), np.array([3.0, 0.1]), np.array([-0.2, 0.3]), np.array([-3.0, 0.2])
    check_vmap(delta_r, (e1, p1, e2, p2), (0, 0, 0, 0))
    p = four_vector(25.0, 1.3, 0.4, 0.0)   # massless: rapidity = pseudorapidity
    np.testing.assert_allclose(rapidity(p), pseudorapidity(p), rtol=1e-12)
    check_jit(rapidity, (p,), (four_vector(25.0, -0.5, 0.4, 1.0),))
    check_jit(pseudorapidity, (p,), (four_vector(25.0, -0.5, 0.4, 1.0),))
    check_derivs(rapidity, four_vector(25.0, 1.3, 0.4, 0.3), four_vector(25.0, -0.5, 0.4, 1.0))
    check_derivs(pseudorapidity, p, four_vector(25.0, -0.5, 0.4, 1.0))


def test_transverse_mass_and_fixed_target_energy():
    args = (np.float64(35.0), np.float64(0.3), np.float64(30.0), np.float64(2.8))
    check_jit(transverse_mass, args, (np.float64(40.0), np.float64(-1.0), np.float64(25.0), np.float64(1.5)))
    mt = lambda v: transverse_mass(*v)
    check_derivs(mt, np.array(args), np.array([40.0, -1.0, 25.0, 1.5]))
    check_scalar_second(lambda E: fixed_target_sqrt_s(E, 0.938, 0.938), 120.0, 400.0)
    check_vmap(fixed_target_sqrt_s, (np.array([10.0, 120.0, 400.0]), 0.938, np.array([0.938, 0.000511])),
               (0, None, None))


def test_missing_mass_list_of_detected():
    beam = np.array([10.0, 0.0, 0.0, np.sqrt(100 - 0.000511**2)])
    target = np.array([0.938272, 0.0, 0.0, 0.0])
    target = target + np.array([5.0, 0.0, 0.0, 0.0])   # a heavier recoil system: m^2 > 0
    pi = four_vector(1.2, 0.8, 0.3, 0.13957)
    pi2 = four_vector(0.9, -0.4, 2.5, 0.13957)
    assert missing_mass(beam, target, [pi, pi2]) > 1.0
    check_jit(missing_mass, (beam, target, [pi, pi2]), (beam * 1.01, target, [pi2, pi]))
    check_jacobians(lambda b: missing_mass(b, target, [pi, pi2]), beam, beam * 1.01)
    # derivative w.r.t. a detected momentum inside the list
    g = npfunc.grad(missing_mass, argnums=2)(beam, target, [pi, pi2])
    assert isinstance(g, list) and len(g) == 2
    assert_deriv(g[0], fd(lambda p: missing_mass(beam, target, [p, pi2]), pi))


# ---- 6. detector response and convolution ------------------------------------------------------


def test_resolution_smeared_spectrum_convolve():
    e = np.linspace(0.0, 2.0, 41)
    p = np.array([5.0, 0.662, 3.0, 1.173, 2.0, 1.5])
    p2 = np.array([4.0, 0.7, 3.5, 1.2, 2.2, 1.3])
    check_jit(smeared_spectrum, (p, e, 0.05), (p2, e, 0.06))
    check_jacobians(smeared_spectrum, p, p2, e, 0.05)
    # the resolution itself as parameter (inside the kernel normalised in place)
    res_chi2 = lambda r: np.sum((smeared_spectrum(p, e, r) - smeared_spectrum(p, e, 0.05)) ** 2)
    check_scalar_second(res_chi2, 0.07, 0.04)
    check_vmap(smeared_spectrum, (p, e, np.array([0.03, 0.05, 0.08])), (None, None, 0))


def test_fluorescence_decay_with_instrument_response():
    t = np.linspace(0.0, 10.0, 25)
    irf = np.exp(-0.5 * ((t - 1.0) / 0.3) ** 2)
    irf /= irf.sum() * (t[1] - t[0])
    p = np.array([2.0, 2.5])
    check_jit(irf_convolved_decay, (p, t, irf), (np.array([1.5, 3.0]), t, irf[::-1].copy()))
    check_jacobians(irf_convolved_decay, p, np.array([1.5, 3.0]), t, irf)
    data = irf_convolved_decay(np.array([2.1, 2.4]), t, irf)
    loss = lambda q, y: np.sum((irf_convolved_decay(q, t, irf) - y) ** 2)
    check_derivs(loss, p, np.array([1.5, 3.0]), data)
    check_per_sample_grads(lambda y, q: loss(q, y), np.stack([data, data * 1.1]), p)


def test_richardson_lucy_deconvolution():
    x = np.linspace(-1, 1, 21)
    psf = np.exp(-0.5 * (np.arange(-3, 4) / 1.2) ** 2)
    psf /= psf.sum()
    true = 1.0 + 5 * np.exp(-0.5 * (x / 0.1) ** 2)
    obs = np.convolve(true, psf, mode="same")
    check_jit(richardson_lucy, (obs, psf), (obs * 1.2, psf))
    check_jacobians(richardson_lucy, obs, obs * 1.2, psf)
    check_vmap(richardson_lucy, (np.stack([obs, obs * 2]), psf), (0, None))


def test_fwhm_resolution_and_efficiency_curve():
    E = np.array([122.0, 344.0, 662.0, 1173.0, 1332.0])
    check_jit(fwhm_resolution, (E, 0.8, 0.03, 0.0005), (E * 0.5, 0.9, 0.04, 0.0004))
    check_derivs(lambda q: np.sum(fwhm_resolution(E, *q)), np.array([0.8, 0.03, 0.0005]),
                 np.array([0.9, 0.04, 0.0004]))
    coeffs = np.array([-3.0, -0.6, 0.05, -0.01])
    check_jit(efficiency_curve, (E, coeffs), (E + 10.0, coeffs * 1.1))
    check_jacobians(efficiency_curve, E, E + 10.0, coeffs)
    check_jacobians(lambda c, e: efficiency_curve_fixed(e, c), coeffs, coeffs * 1.1, E)
    check_vmap(efficiency_curve_fixed, (E, np.stack([coeffs, coeffs * 0.9], axis=1)), (None, 1))


def test_energy_calibration_copy_and_inplace():
    ch = np.array([100, 400, 900, 1500])
    gains = np.array([1.5, 0.45, 1e-6])
    ch_before = ch.copy()
    check_jit(energy_calibration, (ch, gains), (ch + 5, gains * 1.01))
    np.testing.assert_array_equal(ch, ch_before)
    check_jacobians(lambda c, g: energy_calibration(c, g), ch.astype(float), ch * 1.1, gains)


def test_dead_time_corrections():
    check_jit(dead_time_nonparalyzable, (np.float64(5e4), 2e-6), (np.float64(1e5), 3e-6))
    check_scalar_second(lambda m: dead_time_nonparalyzable(m, 2e-6), 5e4, 1e5, rtol=1e-6, eps=1.0)
    m = np.array([1e4, 5e4, 1e5])
    n = dead_time_paralyzable(m, 2e-6)
    np.testing.assert_allclose(n * np.exp(-n * 2e-6), m, rtol=1e-12)
    # regression: scipy.special.lambertw (its ufunc _lambertw) was refused on traced values
    check_jit(dead_time_paralyzable, (m, 2e-6), (m * 1.2, 3e-6))
    check_jacobians(dead_time_paralyzable, m, m * 1.2, 2e-6, eps=1.0)
    check_scalar_second(lambda tau: dead_time_paralyzable(5e4, tau) * 1e-4, 2e-6, 3e-6, eps=1e-9)
    check_vmap(dead_time_paralyzable, (m, np.array([[1e-6, 2e-6, 3e-6]])), (None, 1))
    check_per_sample_grads(lambda mm, tau: np.sum(dead_time_paralyzable(mm, tau)) * 1e-4,
                           np.stack([m, m * 0.5]), 2e-6)
    # the lower branch k = -1 (the paralyzable counter's high-rate solution), complex W kept
    hi = lambda mm: -sps.lambertw(-mm * 2e-6, k=-1) / 2e-6
    assert_same(npfunc.jit(hi)(m), hi(m))
    assert_deriv(npfunc.jacfwd(lambda mm: np.real(hi(mm)))(m), fd(lambda mm: np.real(hi(mm)), m, 1.0))


# ---- 7. absorption spectroscopy -----------------------------------------------------------------


def test_absorbance_and_beer_lambert_calibration():
    conc = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    I0 = 1000.0
    I = I0 * 10 ** (-(0.01 + 0.35 * conc)) * (1 + 0.01 * np.sin(5 * conc))
    A = absorbance(I, I0)
    check_jit(absorbance, (I, I0), (I * 0.9, I0))
    check_jit(beer_lambert_calibration, (conc, A), (conc, A * 1.1))
    check_derivs(lambda a: beer_lambert_calibration(conc, a), A, A * 1.1)
    check_derivs(lambda i: beer_lambert_calibration(conc, absorbance(i, I0)), I, I * 0.9, eps=1e-3, hatol=1e-9)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"call np.polyfit outside jit"):
        npfunc.jit(beer_lambert_polyfit)(conc, A)
    check_derivs(lambda a: beer_lambert_polyfit(conc, a), A, A * 1.1, hess=False)
    # calibration uncertainty: J C J^T with C the absorbance covariance
    C = 1e-6 * np.eye(5)
    J = npfunc.jacrev(lambda a: beer_lambert_calibration(conc, a))(A)
    Jfd = fd(lambda a: beer_lambert_calibration(conc, a), A)
    np.testing.assert_allclose(J @ C @ J, Jfd @ C @ Jfd, rtol=1e-6)
    # replicate series (rows): vmap of the calibration
    check_vmap(beer_lambert_calibration, (conc, np.stack([A, A * 1.05, A + 0.01])), (None, 0))


def test_absorbance_float32_reading():
    I = np.array([800.0, 500.0, 300.0], dtype=np.float32)
    want = absorbance(I, np.float32(1000.0))
    assert want.dtype == np.float32
    check_jit(absorbance, (I, np.float32(1000.0)), (I * np.float32(0.9), np.float32(1000.0)), rtol=1e-6)
    J = npfunc.jacfwd(absorbance)(I, np.float32(1000.0))
    assert J.dtype == np.float32
    np.testing.assert_allclose(np.diag(J), -1 / (I.astype(float) * np.log(10)), rtol=1e-5)


def test_multicomponent_unmixing_lstsq():
    wl = np.linspace(400, 700, 12)
    E = np.stack([np.exp(-0.5 * ((wl - c) / 40) ** 2) for c in (450, 550, 640)], axis=1)
    c_true = np.array([0.3, 0.8, 0.5])
    spec = E @ c_true + 0.001 * np.cos(wl)
    check_jit(unmix_components, (spec, E), (spec * 1.1, E))
    check_jacobians(unmix_components, spec, spec * 1.1, E)
    check_jacobians(lambda e, s: unmix_components(s, e), E, E * 1.02, spec)
    check_vmap(unmix_components, (np.stack([spec, spec * 0.5], axis=1), E), (1, None))


def test_doppler_width_and_line_areas():
    check_jit(doppler_sigma, (np.float64(5e14), np.float64(300.0), 23.0), (np.float64(4e14), np.float64(900.0), 40.0))
    check_scalar_second(lambda T: doppler_sigma(5e14, T, 23.0) / 1e9, 300.0, 900.0, eps=1e-2)
    x = np.linspace(-3, 3, 21)
    y = gauss_peak(x, 2.0, 0.1, 0.6)
    check_jit(line_area_simpson, (y, x), (y * 2, x * 1.1))
    check_jit(line_area_trapezoid, (y, x), (y * 2, x * 1.1))
    check_derivs(lambda th: line_area_simpson(gauss_peak(x, *th), x), np.array([2.0, 0.1, 0.6]),
                 np.array([1.5, -0.2, 0.5]))
    check_derivs(lambda th: line_area_trapezoid(gauss_peak(x, *th), x), np.array([2.0, 0.1, 0.6]),
                 np.array([1.5, -0.2, 0.5]))
    check_jacobians(line_area_simpson, y, y * 2, x)
    check_vmap(line_area_simpson, (np.stack([y, 2 * y]), x), (0, None))


def test_peak_centroid_in_window_around_argmax():
    x, y = peak_data(seed=3)
    # the window follows the data (int of argmax): refused under jit and vmap, naming the fix
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"int\(x\)"):
        npfunc.jit(centroid_window)(y, x)
    with pytest.raises(npfunc.errors.BatchedConversionError):
        npfunc.vmap(centroid_window, in_dims=(0, None))(np.stack([y, y[::-1].copy()]), x)
    check_derivs(centroid_window, y, y * 1.01, x, hess=False, jit_grad=False)


def test_subtract_baseline_in_place_side_effect():
    x = np.linspace(0, 1, 6)
    y0 = np.array([5.0, 6.0, 9.0, 7.0, 6.0, 5.5])
    coef = np.array([4.0, 1.0])
    y_plain = y0.copy()
    want = subtract_baseline_inplace(y_plain, x, coef)
    y_jit = y0.copy()
    got = npfunc.jit(subtract_baseline_inplace)(y_jit, x, coef)
    assert_same(got, want)
    np.testing.assert_array_equal(y_jit, y_plain)      # the argument was updated as in NumPy
    # the derivative in the baseline writes a traced value into the plain y: refused, naming the fix
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x = x - y"):
        npfunc.grad(subtract_baseline_inplace, argnums=2)(y0.copy(), x, coef)
    y_grad = y0.copy()
    g = npfunc.grad(subtract_baseline_inplace)(y_grad, x, coef)
    assert_deriv(g, np.ones(6))
    np.testing.assert_array_equal(y_grad, y_plain)
    ys = np.stack([y0, y0 * 2])
    ys_plain = ys.copy()
    want_v = np.stack([subtract_baseline_inplace(r, x, coef) for r in ys_plain])
    got_v = npfunc.vmap(subtract_baseline_inplace, in_dims=(0, None, None))(ys, x, coef)
    assert_same(got_v, want_v)
    np.testing.assert_array_equal(ys, ys_plain)


def test_modpoly_baseline_iterations():
    x, y = peak_data(seed=7, n=25)
    x = x / 10
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"call np.polyfit outside jit"):
        npfunc.jit(modpoly_baseline)(y, x)
    check_jacobians(modpoly_baseline, y, y * 1.1, x, eps=1e-2)   # piecewise linear in y: wide steps are exact
    check_vmap(modpoly_baseline, (np.stack([y, y[::-1].copy()]), x), (0, None))


def test_savgol_smoothed_peak_height():
    x, y = peak_data(seed=2, n=20)
    # regression: scipy.signal.savgol_filter filters through scipy.ndimage (np.asarray) and was
    # refused on traced values; npfunc.scipy.signal.savgol_filter is its twin now
    check_jit(savgol_peak_height, (y,), (y * 1.2,))
    check_derivs(savgol_peak_height, y, y * 1.2, hess=False)
    check_vmap(savgol_peak_height, (np.stack([y, y * 0.5]),), (0,))
    # the smoothed derivative spectrum (deriv=1, delta) for every edge mode, along axis 0 of a batch
    Y = np.stack([y, y[::-1].copy(), y * 0.5], axis=1)
    for mode in ("interp", "mirror", "nearest", "wrap", "constant"):
        f = lambda v: scipy.signal.savgol_filter(v, 7, 3, deriv=1, delta=0.5, axis=0, mode=mode, cval=2.0)
        check_jit(f, (Y,), (Y * 1.5,), atol=1e-13 * np.abs(Y).max())   # (rounding of sums of the data)
        check_jacobians(f, Y, Y * 1.5, vatol=1e-13 * np.abs(Y).max())
    y32 = y.astype(np.float32)
    check_jit(lambda v: scipy.signal.savgol_filter(v, 5, 2), (y32,), (y32 * np.float32(2),), rtol=1e-6)


def test_tabulated_efficiency_spline_and_interp():
    E_tab = np.array([60.0, 122.0, 344.0, 662.0, 1173.0, 1332.0])
    eff = np.array([0.05, 0.12, 0.06, 0.03, 0.02, 0.018])
    E = np.array([100.0, 500.0, 1000.0])
    check_jit(spline_efficiency, (E, E_tab, eff), (E + 20.0, E_tab, eff * 1.1))
    check_jacobians(spline_efficiency, E, E + 20.0, E_tab, eff)
    check_jacobians(lambda ef, e: spline_efficiency(e, E_tab, ef), eff, eff * 1.1, E)
    check_jit(interp_efficiency, (E, E_tab, eff), (E + 20.0, E_tab, eff * 1.1))
    check_jacobians(interp_efficiency, E, E + 20.0, E_tab, eff)
    check_vmap(spline_efficiency, (np.array([100.0, 200.0]), E_tab, np.stack([eff, eff * 2])), (0, None, 0))


# ---- 8. nuclear physics --------------------------------------------------------------------------


def test_klein_nishina_and_compton_edge():
    th = np.linspace(0.1, 3.0, 6)
    check_jit(klein_nishina, (np.float64(1.3), th), (np.float64(0.5), th * 0.9))
    check_jacobians(lambda t, E: klein_nishina(E, t) * 1e30, th, th * 0.9, 1.3)
    check_scalar_second(lambda E: klein_nishina(E, 1.0) * 1e30, 1.3, 0.5)
    check_scalar_second(compton_edge, 1.3, 0.5)
    check_vmap(klein_nishina, (np.array([0.2, 1.3]), th), (0, None))


def test_rutherford_cross_section():
    th = np.linspace(0.3, 2.5, 5)
    check_jit(rutherford, (th, 2, 79, 5.0), (th * 1.1, 2, 79, 7.7))
    check_jacobians(lambda t: np.log(rutherford(t, 2, 79, 5.0)), th, th * 1.1)
    check_scalar_second(lambda T: rutherford(0.5, 2, 79, T), 5.0, 7.7)


def test_bethe_bloch_minimum_ionising():
    bg = np.array([0.5, 1.0, 3.5, 10.0, 100.0])
    check_jit(bethe_bloch, (bg,), (bg * 1.3,))
    check_jacobians(bethe_bloch, bg, bg * 1.3)
    check_scalar_second(bethe_bloch, 3.5, 10.0)
    # the minimum by minimize_scalar; its curvature by npfunc
    res = scipy.optimize.minimize_scalar(bethe_bloch, bounds=(1.0, 10.0), method="bounded", options={"xatol": 1e-10})
    assert abs(npfunc.grad(bethe_bloch)(res.x)) < 1e-6


def test_semi_empirical_mass_formula_fit():
    ZN = np.array([[8, 8], [20, 20], [26, 30], [50, 70], [82, 126], [29, 34], [19, 20]])
    coeffs = np.array([15.75, 17.8, 0.711, 23.7, 11.18])
    rng = np.random.default_rng(13)
    B_meas = np.array([semf_binding(coeffs, int(z), int(n)) for z, n in ZN]) + rng.normal(0, 2, len(ZN))
    # the nuclide table as a jit argument is traced: int(z) is refused, the table closed over works
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"int\(x\).*'ZN'"):
        npfunc.jit(semf_table_chi2)(coeffs, ZN, B_meas)
    check_jit(lambda c, b: semf_table_chi2(c, ZN, b), (coeffs, B_meas), (coeffs * 1.01, B_meas + 1))
    check_derivs(semf_table_chi2, coeffs, coeffs * 1.01, ZN, B_meas)
    check_vmap(semf_binding, (np.stack([coeffs, coeffs * 1.02]), 26, 30), (0, None, None))
    # the linear least-squares solution: gradient vanishes there
    X = npfunc.jacrev(lambda c: np.array([semf_binding(c, int(z), int(n)) for z, n in ZN]))(coeffs)
    Xfd = fd(lambda c: np.array([semf_binding(c, int(z), int(n)) for z, n in ZN]), coeffs)
    assert_deriv(X, Xfd)
    c_hat = np.linalg.lstsq(X, B_meas, rcond=None)[0]
    assert np.max(np.abs(npfunc.grad(semf_table_chi2)(c_hat, ZN, B_meas))) < 1e-6


def test_woods_saxon_rms_radius():
    r = np.linspace(0.0, 15.0, 61)
    p = np.array([6.6, 0.55])
    check_jit(woods_saxon_rms, (p, r), (np.array([5.0, 0.5]), r))
    check_derivs(woods_saxon_rms, p, np.array([5.0, 0.5]), r)
    check_per_sample_grads(woods_saxon_rms, np.array([[6.6, 0.55], [4.0, 0.5], [7.1, 0.6]]), r)


def test_bateman_daughter_activity_and_expm_chain():
    t = np.linspace(0.0, 20.0, 6)
    check_jit(bateman_two_step, (t, 0.3, 0.05, 1e6), (t + 1, 0.25, 0.07, 1e6))
    check_jacobians(lambda lam, tt: bateman_two_step(tt, lam[0], lam[1], 1.0), np.array([0.3, 0.05]),
                    np.array([0.25, 0.07]), t)
    lams = np.array([0.3, 0.05, 0.01])
    N0 = np.array([1.0, 0.0, 0.0])
    # the expm chain agrees with Bateman for the daughter
    np.testing.assert_allclose(decay_chain_expm(lams, 5.0, N0)[1] * lams[1],
                               bateman_two_step(5.0, 0.3, 0.05, 1.0), rtol=1e-10)
    check_jit(decay_chain_expm, (lams, np.float64(5.0), N0), (lams * 1.1, np.float64(7.0), N0))
    check_jacobians(decay_chain_expm, lams, lams * 1.1, 5.0, N0)
    check_scalar_second(lambda tt: decay_chain_expm(lams, tt, N0)[2], 5.0, 7.0)
    check_vmap(decay_chain_expm, (lams, np.array([1.0, 5.0, 9.0]), N0), (None, 0, None))


def test_asymmetry_and_cross_section_tuple_outputs():
    check_jit(asymmetry, (np.float64(520.0), np.float64(480.0)), (np.float64(300.0), np.float64(700.0)))
    J = npfunc.jacrev(asymmetry, argnums=(0, 1))(520.0, 480.0)
    assert isinstance(J, tuple) and isinstance(J[0], tuple)
    for i in range(2):
        want = fd(lambda v: asymmetry(v[0], v[1])[i], np.array([520.0, 480.0]))
        assert_deriv(np.array(J[i]), want)
    check_vmap(asymmetry, (np.array([520.0, 300.0]), np.array([480.0, 700.0])), (0, 0))
    check_jit(cross_section, (np.float64(1500.0), 35.0, 0.4, 200.0), (np.float64(900.0), 35.0, 0.4, 210.0))
    check_derivs(lambda v: cross_section(*v), np.array([1500.0, 35.0, 0.4, 200.0]),
                 np.array([900.0, 30.0, 0.5, 210.0]))


def test_plain_preallocated_buffer_matches_like_fix():
    """Per-bin expectation written into a plain np.zeros buffer (once refused, naming
    zeros_like(x, shape=shape)): the plain program and the fix both give NumPy's values and
    the differences' derivatives, and agree with each other."""
    edges = np.linspace(0.0, 10.0, 6)

    def expected_plain(tau):
        out = np.zeros(edges.size - 1)
        for i in range(edges.size - 1):
            out[i] = tau * (np.exp(-edges[i] / tau) - np.exp(-edges[i + 1] / tau))
        return out

    def expected_like(tau):
        out = np.zeros_like(tau, shape=edges.size - 1)
        for i in range(edges.size - 1):
            out[i] = tau * (np.exp(-edges[i] / tau) - np.exp(-edges[i + 1] / tau))
        return out

    tau = np.float64(2.0)
    assert_same(expected_like(tau), expected_plain(tau))
    for f in (expected_plain, expected_like):
        check_jit(f, (np.float64(2.0),), (np.float64(3.0),))
        for _ in range(5):
            assert_deriv(npfunc.jacfwd(f)(2.0), fd(lambda t: expected_plain(t[0]), np.array([2.0]))[:, 0])
            assert_deriv(npfunc.jacrev(f)(3.0), fd(lambda t: expected_plain(t[0]), np.array([3.0]))[:, 0])
        check_vmap(f, (np.array([1.0, 2.0, 4.0]),), (0,))
        check_scalar_second(lambda t: f(t)[2], 2.0, 3.0)
    assert_deriv(npfunc.jacfwd(expected_plain)(2.0), npfunc.jacfwd(expected_like)(2.0), rtol=1e-14, atol=0)


def test_missing_mass_clipped_at_zero_documented_derivatives():
    """Below zero the clipped m^2 makes the mass flat: reverse mode gives 0 (as differences do),
    forward mode 0 * inf = NaN with NumPy's warning (docs/conventions.md, the clip row)."""
    beam = np.array([10.0, 0.0, 0.0, np.sqrt(100 - 0.000511**2)])
    target = np.array([0.938272, 0.0, 0.0, 0.0])
    dets = [four_vector(1.2, 0.8, 0.3, 0.13957), four_vector(0.9, -0.4, 2.5, 0.13957)]
    f = lambda b: missing_mass(b, target, dets)
    assert f(beam) == 0.0
    assert_deriv(npfunc.jacrev(f)(beam), fd(f, beam))
    assert_deriv(npfunc.grad(f)(beam), np.zeros(4))
    with pytest.warns(RuntimeWarning, match="invalid value"):
        assert np.all(np.isnan(npfunc.jacfwd(f)(beam)))


def test_plain_buffer_programs_match_the_fixes():
    """Traced values written into buffers made inside the function (np.eye filled in,
    np.zeros_like of plain data accumulated with +=), once refused naming like= / x = x + y:
    the plain programs give NumPy's values (jit, vmap) and the differences' derivatives, as
    the fixes do."""
    beta = np.array([0.3, -0.2, 0.5])
    assert_same(boost_matrix(beta), boost_matrix_plain(beta))
    check_jit(boost_matrix_plain, (beta,), (beta * 0.5,))
    check_vmap(boost_matrix_plain, (np.stack([beta, beta * 0.5, -beta]),), (0,))
    check_jacobians(boost_matrix_plain, beta, beta * 0.5)
    assert_deriv(npfunc.jacfwd(boost_matrix_plain)(beta), npfunc.jacfwd(boost_matrix)(beta), rtol=1e-14, atol=0)
    E = np.array([122.0, 344.0, 662.0])
    coeffs = np.array([-3.0, -0.6, 0.05, -0.01])
    check_jit(efficiency_curve, (E, coeffs), (E * 1.1, coeffs * 1.1))
    check_vmap(efficiency_curve, (E, np.stack([coeffs, coeffs * 1.1])), (None, 0))
    check_jacobians(lambda c, e: efficiency_curve(e, c), coeffs, coeffs * 1.1, E)
    check_jacobians(lambda c, e: efficiency_curve_fixed(e, c), coeffs, coeffs * 1.1, E)
    assert_deriv(npfunc.jacrev(efficiency_curve, argnums=1)(E, coeffs),
                 npfunc.jacrev(efficiency_curve_fixed, argnums=1)(E, coeffs), rtol=1e-14, atol=0)


def test_plain_copy_scaled_in_place_refused_naming_the_fix():
    """A plain copy of the channels (not made by np.zeros & co.) scaled with *= by traced
    gains: refused with the fix, which works."""
    ch = np.array([100, 400, 900, 1500])
    gains = np.array([1.5, 0.45, 1e-6])
    with pytest.raises(npfunc.errors.UnsupportedOperationError,
                       match=r"jacrev\(f\).*x = x \* y.*create the array traced.*like=x"):
        npfunc.jacrev(energy_calibration, argnums=1)(ch, gains)
    assert_same(energy_calibration_fixed(ch, gains), energy_calibration(ch, gains))
    check_jacobians(lambda g, c: energy_calibration_fixed(c, g), gains, gains * 1.01, ch)
    check_vmap(energy_calibration_fixed, (ch, np.stack([gains, gains * 2])), (None, 0))


def test_convolution_kernel_given_as_reversed_view_cached_jacfwd_bit_for_bit():
    """Regression: np.convolve with the kernel as a reversed view (psf[::-1]) of a batched
    signal summed in another order than with its copy (einsum follows the strides), so
    jacfwd's taped calls (which hold a copy) differed from its first call in the last bit."""
    psf = np.exp(-0.5 * (np.arange(-3, 4) / 1.2) ** 2)
    psf /= psf.sum()
    rev = psf[::-1]
    obs = 1.0 + 5 * np.exp(-0.5 * (np.linspace(-1, 1, 21) / 0.1) ** 2)
    f = lambda o: np.convolve(np.convolve(o, psf, mode="same"), rev, mode="same")
    (J,) = repeated(npfunc.jacfwd(f), [(obs,)], rounds=6)
    assert_deriv(J, fd(f, obs))


def test_voigt_profile_derivatives_at_the_edges_scipy_defines():
    """Regression: scipy.special.voigt_profile had no npfunc primitive (UnsupportedFunctionError);
    its derivatives hold for negative sigma and gamma too (SciPy continues the formula there,
    and a first version took sigma <= 0 for the Lorentzian: derivative 0 in sigma, silently),
    and at sigma = 0 they are the Lorentzian's."""
    f = lambda p: sps.voigt_profile(p[0], p[1], p[2])
    for p in ([0.1, -0.5, 0.3], [0.1, 0.5, -0.3], [-0.4, -0.7, -0.2], [1.3, 0.4, 0.0]):
        p = np.array(p)
        for _ in range(5):
            assert_deriv(npfunc.grad(f)(p), fd(f, p, 1e-6))
        check_derivs(f, p, p * 1.1)
    lor = lambda p: p[1] / np.pi / (p[0] ** 2 + p[1] ** 2)
    for q in ([0.3, 0.4], [-1.0, 0.2]):
        q = np.array(q)
        g = npfunc.grad(f)(np.array([q[0], 0.0, q[1]]))
        assert_deriv(g[[0, 2]], fd(lor, q))
        assert g[1] == 0.0
        H = npfunc.hessian(lambda r: sps.voigt_profile(r[0], 0.0, r[1]))(q)
        assert_deriv(H, fd(npfunc.grad(lor), q), rtol=1e-5, atol=1e-7)
    x32 = np.float32([0.1, 0.2])
    assert_same(npfunc.jit(sps.voigt_profile)(x32, np.float32(0.5), np.float32(0.3)),
                sps.voigt_profile(x32, np.float32(0.5), np.float32(0.3)))


# ---- 9. more line shapes and event-level analysis ------------------------------------------------


def test_crystal_ball_line_shape_where_tail():
    x = np.linspace(2.9, 3.2, 9)
    p = np.array([1.5, 3.0, 3.097, 0.02])
    p2 = np.array([1.2, 4.0, 3.095, 0.025])
    cb = lambda q, xx: crystal_ball(xx, *q)
    check_jit(cb, (p, x), (p2, x + 0.01))
    # the single where: the untaken tail, (B - t) ** -n of a negative base, is NaN in the core and
    # so is its derivative in n there (0 * NaN, documented: docs/conventions.md, the double where)
    J = npfunc.jacrev(cb)(p, x)
    core = (x - p[2]) / p[3] > -p[0]
    assert np.all(np.isnan(J[core, 1])) and not np.any(np.isnan(J[:, [0, 2, 3]]))
    safe = lambda q, xx: crystal_ball_safe(xx, *q)
    assert_same(safe(p, x), cb(p, x))
    check_jit(safe, (p, x), (p2, x + 0.01))
    check_jacobians(safe, p, p2, x)
    check_derivs(lambda q, xx: np.sum(safe(q, xx)), p, p2, x)
    check_vmap(crystal_ball_safe, (x, p[0], p[1], np.array([3.09, 3.1]), p[3]), (None, None, None, 0, None))


def test_argus_background_double_where():
    m = np.linspace(5.2, 5.3, 8)
    check_jit(argus, (m, 5.29, -20.0), (m + 0.002, 5.289, -15.0))
    check_jacobians(lambda q, mm: argus(mm, q[0], q[1]), np.array([5.29, -20.0]), np.array([5.289, -15.0]), m)
    check_jacobians(argus, m, m - 0.001, 5.29, -20.0)


def test_hypermet_peak_with_erfc_tail():
    x = np.linspace(655.0, 670.0, 11)
    p = np.array([100.0, 661.7, 0.9, 0.2, 1.5])
    p2 = np.array([90.0, 661.5, 1.0, 0.1, 2.0])
    hp = lambda q, xx: hypermet_peak(xx, *q)
    check_jit(hp, (p, x), (p2, x))
    check_jacobians(hp, p, p2, x)
    check_derivs(lambda q, xx: np.sum(hp(q, xx)), p, p2, x, hatol=1e-6)


def test_event_sphericity_eigvalsh():
    rng = np.random.default_rng(21)
    P3 = rng.normal(0, 3, (6, 3))
    check_jit(sphericity, (P3,), (P3 * 1.3 + 0.1,))
    check_derivs(sphericity, P3, P3[::-1] * 0.9 + 0.2)
    events = rng.normal(0, 3, (6, 3, 4))      # events along the last axis
    check_vmap(sphericity, (events,), (2,))


def test_poisson_logpmf_signal_strength():
    shape = np.array([1.0, 4.0, 9.0, 4.0, 1.0])
    bkg = np.array([10.0, 9.0, 8.0, 7.0, 6.0])
    counts = np.array([12, 13, 17, 10, 7])
    check_jit(poisson_logpmf_nll, (np.float64(1.0), counts, bkg, shape), (np.float64(0.5), counts + 1, bkg, shape))
    check_scalar_second(poisson_logpmf_nll, 1.0, 0.3, counts, bkg, shape)
    check_vmap(poisson_logpmf_nll, (np.array([0.0, 1.0, 2.0]), counts, bkg, shape), (0, None, None, None))


def test_chi2_pvalue_of_line_fit():
    x = np.linspace(0, 1, 8)
    y = 1.0 + 2.0 * x + 0.1 * np.sin(9 * x)
    yerr = np.full(8, 0.08)
    th = np.array([1.02, 1.95])
    check_jit(chi2_pvalue, (th, x, y, yerr), (th * 1.01, x, y, yerr))
    check_derivs(chi2_pvalue, th, np.array([0.98, 2.05]), x, y, yerr, eps=1e-6)


def test_fwhm_from_samples_while_loops():
    x = np.linspace(-3, 3, 31)
    y = gauss_peak(x, 5.0, 0.13, 0.7)
    np.testing.assert_allclose(fwhm_from_samples(y, x), 2.3548 * 0.7, rtol=1e-2)
    check_derivs(fwhm_from_samples, y, y * 1.1 + 0.01 * x, x, hess=False, jit_grad=False)
    with pytest.raises(npfunc.errors.ConcretizationError):
        npfunc.jit(fwhm_from_samples)(y, x)
    sigmas = np.array([0.6, 0.7, 0.8])
    per = lambda s: fwhm_from_samples(gauss_peak(x, 5.0, 0.13, s), x)
    check_scalar_second(per, 0.7, 0.61)


def test_cumulative_spectrum_median():
    x = np.linspace(0, 10, 21)
    y = np.exp(-x / 3) + 0.1
    check_jit(cumulative_spectrum_median, (y, x), (y[::-1].copy(), x))
    check_derivs(cumulative_spectrum_median, y, y[::-1].copy(), x, hess=False)
    check_vmap(cumulative_spectrum_median, (np.stack([y, y * 2 + 0.5], axis=1), x), (1, None))


def test_breit_wigner_normalised_by_quad():
    check_jit(bw_normalised_quad, (np.float64(0.775), np.float64(0.149)), (np.float64(0.78), np.float64(0.2)))
    check_derivs(lambda q: bw_normalised_quad(q[0], q[1]), np.array([0.775, 0.149]), np.array([0.78, 0.2]),
                 hess=False, rounds=2)   # (quad's adaptive loop is slow; grad(grad) below is called 5 times)
    check_scalar_second(lambda M: bw_normalised_quad(M, 0.149), 0.775, 0.8)
    check_vmap(bw_normalised_quad, (np.array([0.77, 0.78]), 0.149), (0, None))


def test_weighted_histogram_fill_add_at():
    edges = np.linspace(0, 1, 6)
    vals = np.array([0.05, 0.3, 0.31, 0.77, 0.99, 0.5])
    w = np.array([1.0, 0.5, 2.0, 1.5, 0.7, 1.1])
    # the plain np.zeros buffer (once refused under jacrev, naming like=) takes np.add.at's
    # traced weights: as NumPy, differences and the like= fix
    check_jit(weighted_histogram_fill, (vals, w, edges), (vals[::-1].copy(), w * 2, edges))
    check_jacobians(lambda ww, v: weighted_histogram_fill(v, ww, edges), w, w * 1.5, vals)
    check_vmap(weighted_histogram_fill, (vals, np.stack([w, 2 * w]), edges), (None, 0, None))
    check_vmap(weighted_histogram_fill, (np.stack([vals, vals[::-1]]), np.stack([w, 2 * w]), edges), (0, 0, None))
    assert_deriv(npfunc.jacrev(weighted_histogram_fill, argnums=1)(vals, w, edges),
                 npfunc.jacrev(weighted_histogram_fill_like, argnums=1)(vals, w, edges), rtol=1e-14, atol=0)
    assert_same(weighted_histogram_fill_like(vals, w, edges), weighted_histogram_fill(vals, w, edges))
    check_jit(weighted_histogram_fill_like, (vals, w, edges), (vals[::-1].copy(), w * 2, edges))
    check_jacobians(lambda ww, v: weighted_histogram_fill_like(v, ww, edges), w, w * 1.5, vals)
    check_vmap(weighted_histogram_fill_like, (vals, np.stack([w, 2 * w]), edges), (None, 0, None))
    # np.histogram with traced weights: the histogram is linear in them
    hw = lambda ww: np.histogram(vals, bins=edges, weights=ww)[0]
    check_jit(hw, (w,), (w * 3,))
    check_jacobians(hw, w, w * 3)


def test_moyal_energy_loss_fit():
    rng = np.random.default_rng(31)
    dE = st.moyal.rvs(loc=1.5, scale=0.2, size=20, random_state=rng)
    p = np.array([1.5, 0.2])
    # regression: scipy.stats.moyal had no twin (a refusal naming the written-out formula); it has now
    check_jit(moyal_energy_loss_nll, (p, dE), (np.array([1.4, 0.25]), dE))
    check_derivs(moyal_energy_loss_nll, p, np.array([1.4, 0.25]), dE)
    np.testing.assert_allclose(moyal_energy_loss_nll_written(p, dE), moyal_energy_loss_nll(p, dE), rtol=1e-12)
    check_jit(moyal_energy_loss_nll_written, (p, dE), (np.array([1.4, 0.25]), dE))
    check_derivs(moyal_energy_loss_nll_written, p, np.array([1.4, 0.25]), dE)
    # the most probable energy loss and quantiles of the fitted straggling: ppf, cdf, sf in loc and scale
    q = np.array([0.1, 0.5, 0.9])
    quant = lambda pp: st.moyal.ppf(q, loc=pp[0], scale=pp[1])
    check_jit(quant, (p,), (np.array([1.4, 0.25]),))
    check_jacobians(quant, p, np.array([1.4, 0.25]))
    check_jacobians(lambda pp: st.moyal.sf(dE[:4], pp[0], pp[1]), p, np.array([1.4, 0.25]))
    check_vmap(lambda loc: st.moyal.cdf(dE, loc, 0.2), (np.array([1.4, 1.5]),), (0,))


def test_lifetime_with_gaussian_resolution():
    t = np.linspace(-0.5, 5.0, 9)
    check_jit(lifetime_with_resolution, (t, 1.5, 0.1), (t * 1.1, 1.6, 0.12))
    check_jacobians(lambda q, tt: lifetime_with_resolution(tt, q[0], q[1]), np.array([1.5, 0.1]),
                    np.array([1.6, 0.12]), t)
    nll = lambda q, tt: -np.sum(np.log(lifetime_with_resolution(tt, q[0], q[1])))
    check_derivs(nll, np.array([1.5, 0.1]), np.array([1.6, 0.12]), t)


def test_mass_constrained_fit_newton_loop():
    p = np.array([45.0, 40.0, 2.7])
    check_jit(mass_constrained_fit, (p, None, 91.1876), (p * 1.01, None, 91.1876))
    check_jacobians(mass_constrained_fit, p, p * 1.01, None, 91.1876)
    check_vmap(mass_constrained_fit, (np.stack([p, p * 1.02]), None, 91.1876), (0, None, None))


def test_empty_channels_warn_as_numpy_does():
    """An asymmetry of two empty counters and the absorbance of a dead pixel: NaN with NumPy's
    RuntimeWarning, under jit (recording and replay) and vmap as in the plain program."""
    zero = (np.float64(0.0), np.float64(0.0))
    with pytest.warns(RuntimeWarning, match="invalid value"):
        want = asymmetry(*zero)
    jf = npfunc.jit(asymmetry)
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="invalid value"):
            got = jf(*zero)
        _tree_same(got, want)
        assert np.isnan(got[0])
    with pytest.warns(RuntimeWarning, match="invalid value"):
        got = npfunc.vmap(asymmetry)(np.array([0.0, 5.0]), np.array([0.0, 3.0]))
    assert np.isnan(got[0][0]) and got[0][1] == asymmetry(5.0, 3.0)[0]
    I = np.array([-1.0, 500.0])
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log10"):
        want = absorbance(I, 1000.0)
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log10"):
        got = npfunc.jit(absorbance)(I, 1000.0)
    _tree_identical(got, want)        # (NaN where NumPy has NaN)
