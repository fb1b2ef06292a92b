"""Natural programs from astronomy and orbital mechanics, written first as plain
NumPy/SciPy the way an astronomer writes them (Kepler's equation by Newton
iterations with tolerances, elements <-> state vectors, radial-velocity and
transit models, n-body forces with np.newaxis / fill_diagonal / triu_indices,
leapfrog and Verlet steps updating arrays in place, solve_ivp of the two-body
and restricted three-body problems, Lambert by universal variables, sky
coordinates with arctan2 / arcsin / np.mod, magnitudes with log10, ephemeris
fits with polyfit and quad), then run under npfunc's transforms and compared
with the plain program: values (type, dtype, shape), side effects on
arguments, and central differences for derivatives.  Refusals are checked for
a message naming the transform and for the advised fix actually working."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.optimize
import scipy.signal
import scipy.special
import scipy.stats

import npfunc
from natural_checks import assert_deriv, assert_same, fd

TWO_PI = 2.0 * np.pi
rng = np.random.default_rng(1618)


# ==== the programs ==============================================================================
# ---- Kepler's equation -------------------------------------------------------------------------


def kepler_newton(M, e, tol=1e-12, maxiter=50):
    """Eccentric anomaly of one mean anomaly: Newton's method, stopped at a tolerance,
    started at pi for high eccentricities."""
    E = M if e < 0.8 else np.pi
    for _ in range(maxiter):
        dE = (E - e * np.sin(E) - M) / (1.0 - e * np.cos(E))
        E = E - dE
        if abs(dE) < tol:
            break
    return E


def kepler_while(M, e):
    """The same as a while loop updating E in place (E -= dE)."""
    E = M + e * np.sin(M)
    dE = 1.0
    it = 0
    while np.abs(dE) > 1e-13 and it < 100:
        dE = (E - e * np.sin(E) - M) / (1.0 - e * np.cos(E))
        E -= dE
        it += 1
    return E


def kepler_vec(M, e, niter=12):
    """Vectorised over mean anomalies: wrap to [0, 2pi), a fixed number of Newton steps."""
    M = np.remainder(M, TWO_PI)
    E = np.where(e > 0.8, np.pi * np.ones_like(M), M)
    for _ in range(niter):
        E = E - (E - e * np.sin(E) - M) / (1.0 - e * np.cos(E))
    return E


def true_anomaly(E, e):
    return 2.0 * np.arctan2(np.sqrt(1.0 + e) * np.sin(E / 2), np.sqrt(1.0 - e) * np.cos(E / 2))


# ---- orbital elements and state vectors --------------------------------------------------------


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def elements_to_state(el, mu=1.0):
    """(a, e, i, Omega, omega, M) -> (r, v): perifocal vectors rotated by R_z(Omega) R_x(i) R_z(omega)."""
    a, e, inc, Om, om, M = el
    nu = true_anomaly(kepler_newton(M, e), e)
    p = a * (1 - e**2)
    r = p / (1 + e * np.cos(nu))
    r_pf = np.array([r * np.cos(nu), r * np.sin(nu), 0.0])
    v_pf = np.sqrt(mu / p) * np.array([-np.sin(nu), e + np.cos(nu), 0.0])
    Q = _rot_z(Om) @ _rot_x(inc) @ _rot_z(om)
    return np.concatenate([Q @ r_pf, Q @ v_pf])


def state_to_elements(rv, mu=1.0):
    """Classical elements of a state vector with the textbook quadrant checks;
    the node vector is z x h with z written as a list."""
    r, v = rv[:3], rv[3:]
    rn, vn = np.linalg.norm(r), np.linalg.norm(v)
    h = np.cross(r, v)
    hn = np.linalg.norm(h)
    n = np.cross([0.0, 0.0, 1.0], h)
    nn = np.linalg.norm(n)
    evec = ((vn**2 - mu / rn) * r - np.dot(r, v) * v) / mu
    e = np.linalg.norm(evec)
    a = -mu / (2 * (vn**2 / 2 - mu / rn))
    inc = np.arccos(h[2] / hn)
    Om = np.arccos(n[0] / nn)
    if n[1] < 0:
        Om = TWO_PI - Om
    om = np.arccos(np.dot(n, evec) / (nn * e))
    if evec[2] < 0:
        om = TWO_PI - om
    nu = np.arccos(np.clip(np.dot(evec, r) / (e * rn), -1.0, 1.0))
    if np.dot(r, v) < 0:
        nu = TWO_PI - nu
    return np.array([a, e, inc, Om, om, nu])


def hohmann_dv(r12, mu=1.0):
    """Total delta-v of a Hohmann transfer between circular orbits (vis-viva)."""
    r1, r2 = r12
    at = 0.5 * (r1 + r2)
    dv1 = abs(np.sqrt(mu * (2 / r1 - 1 / at)) - np.sqrt(mu / r1))
    dv2 = abs(np.sqrt(mu / r2) - np.sqrt(mu * (2 / r2 - 1 / at)))
    return dv1 + dv2


def j2_rates(el, J2=1.08263e-3, R=1.0, mu=1.0):
    """Secular nodal and apsidal rates from J2."""
    a, e, i = el
    n = np.sqrt(mu / a**3)
    fac = 1.5 * J2 * (R / (a * (1 - e * e))) ** 2 * n
    return np.array([-fac * np.cos(i), fac * (2.0 - 2.5 * np.sin(i) ** 2)])


def hill_radius(mp, ms=1.0, a=5.2):
    return a * (mp / (3 * ms)) ** (1.0 / 3.0)


# ---- radial velocities and transits --------------------------------------------------------------


def rv_model(theta, t):
    """Keplerian radial velocity, theta = (K, P, e, omega, tp, gamma)."""
    K, P, e, om, tp, gamma = theta
    nu = true_anomaly(kepler_vec(TWO_PI * (t - tp) / P, e), e)
    return gamma + K * (np.cos(nu + om) + e * np.cos(om))


def rv_chi2(theta, t, vobs, sig):
    return np.sum(((vobs - rv_model(theta, t)) / sig) ** 2)


def rv_loglike_jitter(theta, t, vobs, sig):
    """Gaussian log-likelihood with a jitter term (its log is the last parameter)."""
    s2 = sig**2 + np.exp(2 * theta[6])
    return -0.5 * np.sum((vobs - rv_model(theta[:6], t)) ** 2 / s2 + np.log(TWO_PI * s2))


def uniform_disk_occultation(z, p):
    """Fraction of a uniform unit star hidden by a planet of radius p at separation z,
    filled case by case with boolean masks."""
    z = np.abs(z)
    out = np.zeros_like(z)
    full = z <= 1 - p
    partial = (z > 1 - p) & (z < 1 + p)
    out[full] = p**2
    zp = z[partial]
    k0 = np.arccos((p**2 + zp**2 - 1) / (2 * p * zp))
    k1 = np.arccos((1 - p**2 + zp**2) / (2 * zp))
    out[partial] = (p**2 * k0 + k1 - 0.5 * np.sqrt(4 * zp**2 - (1 + zp**2 - p**2) ** 2)) / np.pi
    return out


def occultation_where(z, p):
    """The same with np.where (the fix the refusal names), the partial case on clipped z."""
    z = np.abs(z)
    zc = np.clip(z, 1 - p + 1e-12, 1 + p - 1e-12)
    k0 = np.arccos((p**2 + zc**2 - 1) / (2 * p * zc))
    k1 = np.arccos((1 - p**2 + zc**2) / (2 * zc))
    part = (p**2 * k0 + k1 - 0.5 * np.sqrt(4 * zc**2 - (1 + zc**2 - p**2) ** 2)) / np.pi
    return np.where(z <= 1 - p, p**2, np.where(z < 1 + p, part, 0.0))


def transit_flux_smooth(theta, t):
    """A transit with a logistic edge (scipy.special.expit), theta = (t0, duration, depth)."""
    t0, dur, depth = theta
    return 1.0 - depth * scipy.special.expit(-(np.abs(t - t0) - dur / 2) / 0.01)


def fit_transit_depth(flux, t, t0=0.0, dur=0.2):
    """Baseline and depth by linear least squares against a box template."""
    box = (np.abs(t - t0) < dur / 2).astype(float)
    A = np.stack([np.ones_like(t), -box], axis=1)
    coef, *_ = np.linalg.lstsq(A, flux, rcond=None)
    return coef


def limb_darkened_intensity(mu, coeffs):
    """Quadratic limb darkening normalised by its disk integral."""
    u1, u2 = coeffs
    return (1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2) / (np.pi * (1 - u1 / 3 - u2 / 6))


# ---- n-body ------------------------------------------------------------------------------------


def pairwise_accel(pos, m):
    """a_i = sum_j m_j (r_j - r_i) / |r_j - r_i|^3, self terms removed with np.fill_diagonal."""
    d = pos[np.newaxis, :, :] - pos[:, np.newaxis, :]
    r2 = np.sum(d**2, axis=-1)
    np.fill_diagonal(r2, 1.0)
    inv3 = r2**-1.5
    np.fill_diagonal(inv3, 0.0)
    return np.einsum("ij,ijk->ik", inv3 * m[np.newaxis, :], d)


def nbody_energy(state, m):
    n = len(m)
    pos = state[: 3 * n].reshape(n, 3)
    vel = state[3 * n:].reshape(n, 3)
    i, j = np.triu_indices(n, k=1)
    pot = -np.sum(m[i] * m[j] / np.linalg.norm(pos[i] - pos[j], axis=1))
    return 0.5 * np.sum(m[:, None] * vel**2) + pot


def leapfrog(state, m, dt=0.02, nsteps=8, like=None):
    """Kick-drift-kick with the trajectory in a preallocated np.empty buffer
    (``like``: the buffer made traced from the start, the fix when plain buffers were refused;
    both spellings now give NumPy's values)."""
    n = len(m)
    pos = state[: 3 * n].reshape(n, 3).copy()
    vel = state[3 * n:].reshape(n, 3).copy()
    traj = np.empty((nsteps + 1, n, 3)) if like is None else np.empty((nsteps + 1, n, 3), like=like)
    traj[0] = pos
    acc = pairwise_accel(pos, m)
    for k in range(nsteps):
        vel += 0.5 * dt * acc
        pos += dt * vel
        acc = pairwise_accel(pos, m)
        vel += 0.5 * dt * acc
        traj[k + 1] = pos
    return traj


def verlet_step_inplace(pos, vel, m, dt):
    """One velocity-Verlet step updating pos and vel in place; returns the kinetic energy."""
    a0 = pairwise_accel(pos, m)
    pos += vel * dt + 0.5 * a0 * dt**2
    a1 = pairwise_accel(pos, m)
    vel += 0.5 * (a0 + a1) * dt
    return 0.5 * np.sum(m[:, None] * vel**2)


# ---- ODEs: two-body and restricted three-body --------------------------------------------------


def two_body_rhs(t, y, mu=1.0):
    r = y[:2]
    return np.concatenate([y[2:], -mu * r / np.linalg.norm(r) ** 3])


def two_body_final(v0, t_eval=None):
    """Final position of a planar orbit launched from (1, 0) with velocity v0."""
    y0 = np.array([1.0, 0.0, v0[0], v0[1]])
    sol = scipy.integrate.solve_ivp(two_body_rhs, (0.0, 2.0), y0, t_eval=t_eval, rtol=1e-10, atol=1e-12)
    return sol.y[:2, -1]


def cr3bp_rhs(t, s, mu):
    x, y, z, vx, vy, vz = s
    r1 = np.sqrt((x + mu) ** 2 + y**2 + z**2)
    r2 = np.sqrt((x - 1 + mu) ** 2 + y**2 + z**2)
    ax = 2 * vy + x - (1 - mu) * (x + mu) / r1**3 - mu * (x - 1 + mu) / r2**3
    ay = -2 * vx + y - (1 - mu) * y / r1**3 - mu * y / r2**3
    az = -(1 - mu) * z / r1**3 - mu * z / r2**3
    return np.array([vx, vy, vz, ax, ay, az])


def jacobi_constant(s, mu=0.01215):
    x, y, z, vx, vy, vz = s
    r1 = np.sqrt((x + mu) ** 2 + y**2 + z**2)
    r2 = np.sqrt((x - 1 + mu) ** 2 + y**2 + z**2)
    return (x**2 + y**2) + 2 * (1 - mu) / r1 + 2 * mu / r2 - (vx**2 + vy**2 + vz**2)


def cr3bp_propagate(s0, mu=0.01215, T=0.3):
    sol = scipy.integrate.solve_ivp(cr3bp_rhs, (0.0, T), s0, args=(mu,), method="DOP853", rtol=1e-11, atol=1e-12)
    return sol.y[:, -1]


# ---- Lambert's problem -------------------------------------------------------------------------


def _stumpff_C(z):
    if z > 0:
        return (1 - np.cos(np.sqrt(z))) / z
    if z < 0:
        return (np.cosh(np.sqrt(-z)) - 1) / (-z)
    return 0.5


def _stumpff_S(z):
    if z > 0:
        sz = np.sqrt(z)
        return (sz - np.sin(sz)) / sz**3
    if z < 0:
        sz = np.sqrt(-z)
        return (np.sinh(sz) - sz) / sz**3
    return 1.0 / 6.0


def lambert_universal(r1, r2, tof, mu=1.0):
    """Departure velocity by universal variables: Newton on z with a finite-difference slope."""
    R1, R2 = np.linalg.norm(r1), np.linalg.norm(r2)
    dth = np.arccos(np.dot(r1, r2) / (R1 * R2))
    if np.cross(r1, r2)[2] < 0:
        dth = TWO_PI - dth
    A = np.sin(dth) * np.sqrt(R1 * R2 / (1 - np.cos(dth)))

    def y(z):
        return R1 + R2 + A * (z * _stumpff_S(z) - 1) / np.sqrt(_stumpff_C(z))

    def F(z):
        return (y(z) / _stumpff_C(z)) ** 1.5 * _stumpff_S(z) + A * np.sqrt(y(z)) - np.sqrt(mu) * tof

    z = 0.1
    for _ in range(100):
        step = F(z) / ((F(z + 1e-6) - F(z - 1e-6)) / 2e-6)
        z = z - step
        if abs(step) < 1e-12:
            break
    f = 1 - y(z) / R1
    g = A * np.sqrt(y(z) / mu)
    return (r2 - f * r1) / g


# ---- sky coordinates, time, photometry ----------------------------------------------------------


def radec_to_altaz(radec, lat=np.deg2rad(40.0), lst=1.3):
    """Altitude and azimuth of (ra, dec) rows: hour angle by np.mod, azimuth wrapped by np.remainder."""
    ra, dec = radec[..., 0], radec[..., 1]
    ha = np.mod(lst - ra, TWO_PI)
    alt = np.arcsin(np.sin(dec) * np.sin(lat) + np.cos(dec) * np.cos(lat) * np.cos(ha))
    az = np.arctan2(-np.cos(dec) * np.sin(ha), np.sin(dec) * np.cos(lat) - np.cos(dec) * np.sin(lat) * np.cos(ha))
    return np.stack([alt, np.remainder(az, TWO_PI)], axis=-1)


_GAL = np.array([[-0.0548755604, -0.8734370902, -0.4838350155],
                 [0.4941094279, -0.4448296300, 0.7469822445],
                 [-0.8676661490, -0.1980763734, 0.4559837762]])


def equatorial_to_galactic(radec_deg):
    """(l, b) in degrees, l wrapped with % 360."""
    ra, dec = np.radians(radec_deg[0]), np.radians(radec_deg[1])
    g = _GAL @ np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    return np.array([np.degrees(np.arctan2(g[1], g[0])) % 360.0, np.degrees(np.arcsin(g[2]))])


def angular_separation(a, b):
    """Haversine separation of (ra, dec) pairs in radians."""
    h = np.sin((b[..., 1] - a[..., 1]) / 2) ** 2 + \
        np.cos(a[..., 1]) * np.cos(b[..., 1]) * np.sin((b[..., 0] - a[..., 0]) / 2) ** 2
    return 2 * np.arcsin(np.sqrt(h))


def wrap_angle(x):
    return np.remainder(x + np.pi, TWO_PI) - np.pi


def gmst_deg(jd):
    """Greenwich mean sidereal time in degrees (pure Python arithmetic on a float jd)."""
    T = (jd - 2451545.0) / 36525.0
    g = 280.46061837 + 360.98564736629 * (jd - 2451545.0) + 0.000387933 * T**2 - T**3 / 38710000.0
    return g % 360.0


def distance_modulus_mag(params):
    """Apparent magnitude of (absolute magnitude, distance in pc, extinction)."""
    M, d, A = params
    return M + 5 * np.log10(d / 10) + A


def planck_color(T, lam1=4.4e-7, lam2=5.5e-7):
    """A B - V like colour of a blackbody: ratio of Planck functions in magnitudes (np.expm1)."""
    h, c, k = 6.62607015e-34, 2.99792458e8, 1.380649e-23

    def B(lam):
        return 2 * h * c**2 / lam**5 / np.expm1(h * c / (lam * k * T))

    return -2.5 * np.log10(B(lam1) / B(lam2))


def total_magnitude(mags):
    return -2.5 * np.log10(np.sum(10 ** (-0.4 * mags)))


def counts_to_mag(counts, exptime=30.0):
    """Instrumental magnitudes of integer photon counts."""
    return -2.5 * np.log10(counts / exptime)


def roche_lobe(q):
    """Eggleton's Roche-lobe radius fraction (np.cbrt, np.log1p)."""
    q13 = np.cbrt(q)
    return 0.49 * q13**2 / (0.6 * q13**2 + np.log1p(q13))


def barycentric_shift_inplace(t, ra_dec, earth_xyz):
    """Roemer delay added to the observation times in place; returns the delays (days)."""
    ra, dec = ra_dec
    n = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    delay = earth_xyz @ n * 499.004783836 / 86400.0
    t += delay
    return delay


def radec_wrap_f32(radec):
    """float32 catalogue rows: RA wrapped to [0, 360), Dec clipped, both to radians."""
    ra = np.remainder(radec[:, 0], np.float32(360.0))
    dec = np.clip(radec[:, 1], -90, 90)
    return np.stack([np.radians(ra), np.radians(dec)], axis=1)


def orbit_phase_divmod(t, P=2.7):
    ncyc, rem = np.divmod(t, P)
    return rem / P + 0.0 * ncyc


# ---- ephemerides, periodograms, fits ------------------------------------------------------------


def ephemeris_spline(values, t_query=np.array([0.25, 1.7, 3.1])):
    cs = scipy.interpolate.CubicSpline(np.arange(len(values), dtype=float), values)
    return cs(t_query)


def lomb_scargle_power(y, t, freqs, like=None):
    """Classical Lomb-Scargle periodogram filled into an np.empty buffer."""
    y = y - y.mean()
    P = np.empty(len(freqs)) if like is None else np.empty(len(freqs), like=like)
    for k, f in enumerate(freqs):
        w = TWO_PI * f
        tau = np.arctan2(np.sum(np.sin(2 * w * t)), np.sum(np.cos(2 * w * t))) / (2 * w)
        c, s = np.cos(w * (t - tau)), np.sin(w * (t - tau))
        P[k] = 0.5 * (np.dot(y, c) ** 2 / np.dot(c, c) + np.dot(y, s) ** 2 / np.dot(s, s))
    return P


def o_minus_c(tmid, epochs=np.arange(8.0)):
    """Linear ephemeris T(E) = T0 + P E by np.polyfit; returns (P, T0, rms of O - C)."""
    coef = np.polyfit(epochs, tmid, 1)
    oc = tmid - np.polyval(coef, epochs)
    return np.array([coef[0], coef[1], np.sqrt(np.mean(oc**2))])


def o_minus_c_listed(tmid, epochs=np.arange(8.0)):
    """The same, evaluating the ephemeris with the coefficients written as a list."""
    P, T0 = np.polyfit(epochs, tmid, 1)
    return tmid - np.polyval([P, T0], epochs)


def time_of_flight_quad(a_e):
    """Time from pericentre to true anomaly pi/2: scipy.integrate.quad of dt/dnu."""
    a, e = a_e
    p = a * (1 - e**2)
    h = np.sqrt(p)
    val, _ = scipy.integrate.quad(lambda nu: p**2 / (h * (1 + e * np.cos(nu)) ** 2), 0.0, np.pi / 2)
    return val


def kepler_brentq(M, e):
    return scipy.optimize.brentq(lambda E: E - e * np.sin(E) - M, 0.0, TWO_PI, xtol=1e-14)


def kepler_scipy_newton(M, e):
    return scipy.optimize.newton(lambda E: E - e * np.sin(E) - M, M, fprime=lambda E: 1 - e * np.cos(E), tol=1e-13)


def lagrange_l1(mu):
    """L1 of the restricted three-body problem by brentq on the x-acceleration."""
    def ax(x):
        return x - (1 - mu) * (x + mu) / abs(x + mu) ** 3 - mu * (x - 1 + mu) / abs(x - 1 + mu) ** 3
    return scipy.optimize.brentq(ax, -mu + 1e-3, 1 - mu - 1e-3, xtol=1e-14)


def lagrange_stability(mu, like=None):
    """|Im| of the eigenvalues of the planar CR3BP linearised at L4, the matrix
    filled entry by entry into np.zeros."""
    Uxy = 3 * np.sqrt(3) / 4 * (1 - 2 * mu)
    A = np.zeros((4, 4)) if like is None else np.zeros((4, 4), like=like)
    A[0, 2] = A[1, 3] = 1.0
    A[2, 0], A[2, 1], A[2, 3] = 0.75, Uxy, 2.0
    A[3, 0], A[3, 1], A[3, 2] = Uxy, 2.25, -2.0
    return np.sort(np.abs(np.linalg.eigvals(A).imag))


def euler_quintic_root(mu, stack=False):
    """A collinear point from Euler's quintic by np.roots: the real root in (0, 1)."""
    c = [1.0, -(3 - mu), 3 - 2 * mu, -mu, 2 * mu, -mu]
    r = np.roots(np.stack(c) if stack else c)
    real = r[np.abs(r.imag) < 1e-9].real
    return real[(real > 0) & (real < 1)][0]


def ephemeris_lookup(t, like=False, t_tab=np.linspace(0, 10, 11), x_tab=np.sin(np.linspace(0, 10, 11))):
    """Linear interpolation by hand: np.searchsorted, then a gather from the table."""
    i = np.clip(np.searchsorted(t_tab, t) - 1, 0, len(t_tab) - 2)
    if like:
        t_tab, x_tab = np.asarray(t_tab, like=i), np.asarray(x_tab, like=i)
    w = (t - t_tab[i]) / (t_tab[i + 1] - t_tab[i])
    return (1 - w) * x_tab[i] + w * x_tab[i + 1]


def zero_self_terms(D):
    """Put inf on the diagonal of the caller's distance matrix in place; sum 1/D."""
    np.fill_diagonal(D, np.inf)
    return np.sum(1.0 / D)


def position_part(state):
    return state[:3]


def reflect_velocity_inplace(state):
    state[3:] *= -1
    return state


def mandel_agol_ellip(k):
    return scipy.special.ellipk(k**2) - scipy.special.ellipe(k**2)


# ==== helpers ==================================================================================


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_array_program(f, x, xs, *, derivatives=True, vmap_rtol=1e-12):
    """jit (two calls), vmap, jit(vmap), jacrev, jacfwd, jvp, vjp and vmap(jacrev)."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref)
    assert_same(jf(xs[0]), f(xs[0]))
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=vmap_rtol)
    assert_same(npfunc.jit(npfunc.vmap(f))(xs), loop(f, xs), rtol=vmap_rtol)
    if not derivatives:
        return
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    t = np.linspace(-1.0, 1.0, np.size(x)).reshape(np.shape(x))
    out, tan = npfunc.jvp(f, (x,), (t,))
    assert_same(out, ref)
    Jm = np.reshape(J, (np.size(ref), np.size(x)))
    assert_deriv(tan, (Jm @ t.ravel()).reshape(np.shape(ref)))
    out, pullback = npfunc.vjp(f, x)
    assert_same(out, ref)
    ct = np.linspace(1.0, 2.0, np.size(ref)).reshape(np.shape(ref))
    assert_deriv(pullback(ct)[0], (ct.ravel() @ Jm).reshape(np.shape(x)))
    assert_same(npfunc.vmap(npfunc.jacrev(f))(xs), loop(npfunc.jacrev(f), xs), rtol=1e-9, atol=1e-12)


def check_scalar_program(f, x, xs, *, hessian=True, jit=True, vmap=True):
    """grad_and_value, jit(grad), grad(jit), vmap(grad), hessian, jacfwd(jacrev)."""
    ref = f(x)
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref)
    G = fd(f, x)
    assert_deriv(g, G)
    if jit:
        assert_same(npfunc.jit(f)(x), ref)
        assert_deriv(npfunc.jit(npfunc.grad(f))(x), G)
        assert_deriv(npfunc.grad(npfunc.jit(f))(x), G)
    if vmap:
        assert_same(npfunc.vmap(f)(xs), loop(f, xs))
        assert_same(npfunc.vmap(npfunc.grad(f))(xs), loop(npfunc.grad(f), xs), rtol=1e-9, atol=1e-12)
    if hessian:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, atol=1e-6)
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, atol=1e-6)


# ==== Kepler's equation ==========================================================================


def test_kepler_newton_derivatives_through_the_iterations():
    for e in (0.3, 0.9):  # both starting branches
        f = lambda M: kepler_newton(M, e)
        for M in (1.2, np.float64(4.0)):
            check_scalar_program(f, M, None, jit=False, vmap=False)
    g = lambda e: kepler_newton(np.float64(1.2), e)
    assert_deriv(npfunc.grad(g)(np.float64(0.4)), fd(g, 0.4))


def test_kepler_newton_jit_static_python_float_and_refusals():
    """A Python float M is static under jit (retraced per value); an np.float64 is
    traced, and `if abs(dE) < tol` is refused, naming np.where."""
    f = npfunc.jit(lambda M: kepler_newton(M, 0.3))
    assert_same(f(1.2), kepler_newton(1.2, 0.3))
    assert_same(f(2.0), kepler_newton(2.0, 0.3))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'M'.*np\.where"):
        f(np.float64(1.2))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(lambda M: kepler_newton(M, 0.3))(np.array([0.3, 2.0]))
    # the fix: a fixed number of Newton steps with np.where instead of the early exit
    Ms = np.array([0.3, 2.0, 4.0])
    assert_same(npfunc.vmap(lambda M: kepler_vec(M, 0.3))(Ms), loop(lambda M: kepler_vec(M, 0.3), Ms))
    np.testing.assert_allclose(kepler_vec(Ms, 0.3), [kepler_newton(M, 0.3) for M in Ms], rtol=1e-14)


def test_kepler_while_inplace_update():
    f = lambda M: kepler_while(M, 0.3)
    check_scalar_program(f, np.float64(1.2), None, jit=False, vmap=False)
    check_scalar_program(f, np.array(1.2), None, jit=False, vmap=False, hessian=False)  # 0-d array M
    g = lambda e: kepler_while(1.2, e)
    assert_deriv(npfunc.grad(g)(0.3), fd(g, 0.3))


def test_kepler_vec_and_true_anomaly():
    M = np.linspace(0.1, 6.0, 5)
    Ms = rng.uniform(0, 6, (3, 5))
    check_array_program(lambda M: kepler_vec(M, 0.4), M, Ms)
    check_array_program(lambda M: kepler_vec(M, 0.85), M, Ms)
    check_array_program(lambda E: true_anomaly(E, 0.3), M, Ms)
    f = lambda e: kepler_vec(M, e)
    assert_deriv(npfunc.jacfwd(f)(0.4), fd(f, 0.4))
    assert_deriv(npfunc.jacrev(f)(0.4), fd(f, 0.4))
    es = np.array([0.1, 0.5, 0.9])
    assert_same(npfunc.vmap(f)(es), loop(f, es))


def test_kepler_vec_float32():
    M = np.linspace(0.1, 6.0, 5).astype(np.float32)
    f = lambda M: kepler_vec(M, np.float32(0.4))
    assert_same(npfunc.jit(f)(M), f(M), rtol=1e-6)
    Ms = np.stack([M, M + np.float32(0.1)])
    assert_same(npfunc.vmap(f)(Ms), loop(f, Ms), rtol=1e-6)
    assert npfunc.jacrev(f)(M).dtype == np.float32
    assert npfunc.grad(lambda M: f(M).sum())(M).dtype == np.float32


def test_kepler_scipy_newton():
    f = lambda M: kepler_scipy_newton(M, 0.4)
    check_scalar_program(f, np.float64(1.2), np.array([0.3, 2.0, 4.0]))


def test_kepler_brentq_root_is_a_float():
    """SciPy's brentq returns a Python float; a traced root comes back as np.float64
    (a float subclass), as the finance programs' test records."""
    f = lambda M: kepler_brentq(M, 0.4)
    M = np.float64(1.2)
    want = f(M)
    assert type(want) is float
    for got in (npfunc.jit(f)(M), npfunc.grad_and_value(f)(M)[1], npfunc.jvp(f, (M,), (1.0,))[0]):
        assert isinstance(got, float) and not isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=1e-14)
    assert_deriv(npfunc.grad(f)(M), fd(f, M))
    assert_deriv(npfunc.hessian(f)(M), fd(npfunc.grad(f), M), atol=1e-6)
    g = lambda e: kepler_brentq(1.2, e)
    assert_deriv(npfunc.grad(g)(np.float64(0.4)), fd(g, 0.4))
    Ms = np.array([0.3, 2.0, 4.0])
    assert_same(npfunc.vmap(f)(Ms), np.array([f(m) for m in Ms]))


# ==== elements, state vectors, manoeuvres ========================================================


_EL = np.array([1.3, 0.2, 0.4, 0.7, 1.1, 2.0])


def test_elements_to_state_derivatives_and_refusal():
    J = fd(elements_to_state, _EL)
    assert_deriv(npfunc.jacrev(elements_to_state)(_EL), J)
    assert_deriv(npfunc.jacfwd(elements_to_state)(_EL), J)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'el'.*np\.where"):
        npfunc.jit(elements_to_state)(_EL)


def test_state_to_elements_cross_with_a_list_operand():
    """np.cross([0.0, 0.0, 1.0], h) with traced h raised a raw TypeError from
    npfunc's dtype_of under every transform; now the list is an array, as in NumPy."""
    rv = elements_to_state(_EL)
    np.testing.assert_allclose(state_to_elements(rv)[:5], _EL[:5], rtol=1e-10)
    J = fd(state_to_elements, rv)
    assert_deriv(npfunc.jacrev(state_to_elements)(rv), J)
    assert_deriv(npfunc.jacfwd(state_to_elements)(rv), J)
    h = rv[:3] * rv[3:]
    for f in (lambda h: np.cross([0.0, 0.0, 1.0], h), lambda h: np.cross(h, [0, 0, 1]),
              lambda h: np.linalg.cross([0.0, 0.0, 1.0], h), lambda h: np.vdot([1.0, -2.0, 0.5], h),
              lambda h: np.linalg.vecdot([1.0, -2.0, 0.5], h), lambda h: np.einsum("i,i->", [1.0, 2.0, 3.0], h),
              lambda h: np.inner([1.0, 2.0, 3.0], h), lambda h: np.tensordot([1.0, 2.0, 3.0], h, 1)):
        check_array_program(f, h, np.stack([h, 2 * h]))


def test_state_to_elements_quadrant_branches_refused_under_jit_and_vmap():
    rv = elements_to_state(_EL)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'rv'.*np\.where"):
        npfunc.jit(state_to_elements)(rv)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(state_to_elements)(np.stack([rv, rv]))


def test_hohmann_and_j2_and_hill():
    check_scalar_program(hohmann_dv, np.array([1.0, 1.5]), np.array([[1.0, 2.0], [1.2, 3.0], [0.8, 1.0]]))
    check_array_program(j2_rates, np.array([1.1, 0.01, 0.9]), np.array([[1.1, 0.01, 0.9], [1.3, 0.1, 0.2]]))
    el32 = np.array([[1.1, 0.01, 0.9], [1.3, 0.1, 0.2]], np.float32)
    assert_same(npfunc.jit(j2_rates)(el32[0]), j2_rates(el32[0]))
    assert_same(npfunc.vmap(j2_rates)(el32), loop(j2_rates, el32), rtol=1e-6)
    check_scalar_program(hill_radius, np.float64(1e-3), np.array([1e-3, 3e-4]))
    mp32 = np.array([1e-3, 3e-4], np.float32)
    assert_same(npfunc.jit(hill_radius)(mp32[0]), hill_radius(mp32[0]))
    # NumPy's own float32 power differs by an ulp between a scalar and an array: compare to rounding
    assert_same(npfunc.vmap(hill_radius)(mp32), loop(hill_radius, mp32), rtol=2e-7)


def test_python_float_input_comes_back_as_np_float64():
    """gmst_deg(2460000.3) is pure Python arithmetic and returns a float; under grad_and_value
    and jvp the value is an np.float64 (a float subclass) -- the same accepted convention
    as for brentq's root."""
    jd = 2460000.3
    want = gmst_deg(jd)
    assert type(want) is float
    got = npfunc.grad_and_value(gmst_deg)(jd)[1]
    assert isinstance(got, float) and not isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert_deriv(npfunc.grad(gmst_deg)(jd), fd(gmst_deg, jd))
    jds = np.array([2460000.3, 2460001.1])
    assert_same(npfunc.vmap(gmst_deg)(jds), loop(gmst_deg, jds))
    assert_same(npfunc.jit(gmst_deg)(jds), gmst_deg(jds))


# ==== radial velocities and transits =============================================================


_T_RV = np.linspace(0, 30, 25)
_TH_RV = np.array([12.0, 7.3, 0.25, 1.1, 2.0, 0.5])
_V_RV = rv_model(_TH_RV, _T_RV) + np.sin(np.arange(25.0))


def test_rv_model_and_chi2():
    ths = _TH_RV + rng.normal(size=(3, 6)) * 0.02
    check_array_program(lambda th: rv_model(th, _T_RV), _TH_RV, ths)
    check_scalar_program(lambda th: rv_chi2(th, _T_RV, _V_RV, 1.0), _TH_RV, ths)


def test_rv_loglike_with_jitter():
    th = np.append(_TH_RV, 0.1)
    f = lambda th: rv_loglike_jitter(th, _T_RV, _V_RV, np.full(25, 0.8))
    check_scalar_program(f, th, th + rng.normal(size=(3, 7)) * 0.02, hessian=False)


def test_transit_boolean_masks_refused_under_jit_and_vmap_and_np_where_fix():
    z = np.linspace(0.05, 1.3, 9)
    occ = lambda z: uniform_disk_occultation(z, 0.1)
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"jit\(f\).*np\.where\(mask, x, 0\)"):
        npfunc.jit(occ)(z)
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"vmap\(f\).*np\.where\(mask, x, 0\)"):
        npfunc.vmap(occ)(np.stack([z, z]))
    assert_deriv(npfunc.jacrev(occ)(z), fd(occ, z))  # outside jit and vmap the masks have values
    fixed = lambda z: occultation_where(z, 0.1)
    np.testing.assert_allclose(fixed(z), occ(z), rtol=1e-10, atol=1e-15)
    zs = np.stack([z, 0.9 * z])
    assert_same(npfunc.jit(fixed)(z), fixed(z))
    assert_same(npfunc.vmap(fixed)(zs), loop(fixed, zs))
    p_fixed = lambda p: occultation_where(z, p)
    assert_deriv(npfunc.jacrev(p_fixed)(0.1), fd(lambda p: uniform_disk_occultation(z, p), 0.1))


def test_transit_smooth_and_depth_fit():
    t = np.linspace(-0.15, 0.15, 31)
    check_array_program(lambda th: transit_flux_smooth(th, t), np.array([0.013, 0.12, 0.01]),
                        np.array([[0.003, 0.1, 0.02], [0.021, 0.14, 0.01]]))
    flux = transit_flux_smooth(np.array([0.0, 0.2, 0.01]), t) + 1e-4 * np.cos(np.arange(31.0))
    check_array_program(lambda f: fit_transit_depth(f, t), flux, flux + rng.normal(size=(3, 31)) * 1e-4)


def test_limb_darkening():
    mu = np.linspace(0.1, 1, 5)
    check_array_program(lambda c: limb_darkened_intensity(mu, c), np.array([0.4, 0.25]),
                        np.array([[0.4, 0.25], [0.3, 0.1]]))
    c32 = np.array([[0.4, 0.25], [0.3, 0.1]], np.float32)
    f32 = lambda c: limb_darkened_intensity(mu.astype(np.float32), c)
    assert_same(npfunc.jit(f32)(c32[0]), f32(c32[0]))
    assert_same(npfunc.vmap(f32)(c32), loop(f32, c32), rtol=1e-6)
    assert npfunc.jacrev(f32)(c32[0]).dtype == np.float32


# ==== n-body ======================================================================================


_M3 = np.array([1.0, 1e-3, 3e-4])
_POS = np.array([[0.0, 0, 0], [1.0, 0.1, 0], [0.0, -1.5, 0.05]])
_VEL = np.array([[0.0, 0, 0], [0.0, 1.0, 0.01], [1.0 / np.sqrt(1.5), 0, 0]])
_STATE = np.concatenate([_POS.ravel(), _VEL.ravel()])


def test_pairwise_accel_fill_diagonal_and_energy():
    f = lambda p: pairwise_accel(p.reshape(3, 3), _M3)
    check_array_program(f, _POS.ravel(), _POS.ravel() + rng.normal(size=(3, 9)) * 0.01)
    g = lambda m: pairwise_accel(_POS, m)
    check_array_program(g, _M3, _M3 * np.array([[1, 2, 3.0], [2, 1, 1]]))
    check_scalar_program(lambda s: nbody_energy(s, _M3), _STATE, _STATE + rng.normal(size=(3, 18)) * 0.01)


def test_leapfrog_plain_buffer_matches_like_fix():
    """The trajectory in a plain np.empty buffer takes the traced states: NumPy's values and
    derivatives, as with the buffer made traced (like=s)."""
    f = lambda s: leapfrog(s, _M3)[-1].ravel()
    fixed = lambda s: leapfrog(s, _M3, like=s)[-1].ravel()
    assert_same(fixed(_STATE), f(_STATE))
    xs = _STATE + rng.normal(size=(3, 18)) * 0.01
    check_array_program(f, _STATE, xs)
    check_array_program(fixed, _STATE, xs)
    whole = lambda s: leapfrog(s, _M3)  # the whole trajectory, the buffer itself returned
    assert_same(npfunc.jit(whole)(_STATE), whole(_STATE))
    assert_same(npfunc.vmap(whole)(xs), loop(whole, xs))
    assert_deriv(npfunc.jacrev(whole)(_STATE), npfunc.jacfwd(lambda s: leapfrog(s, _M3, like=s))(_STATE), rtol=1e-12)


def test_verlet_step_updates_arguments_like_numpy():
    def plain():
        p, v = _POS.copy(), _VEL.copy()
        return verlet_step_inplace(p, v, _M3, 0.05), p, v

    want, p_want, v_want = plain()
    j = npfunc.jit(verlet_step_inplace)
    for scale in (1.0, 1.1):  # the recording call and a replay
        p, v = _POS * scale, _VEL.copy()
        pr, vr = p.copy(), v.copy()
        assert_same(j(p, v, _M3, 0.05), verlet_step_inplace(pr, vr, _M3, 0.05))
        np.testing.assert_allclose(p, pr, rtol=1e-14)
        np.testing.assert_allclose(v, vr, rtol=1e-14)
    P, V = np.stack([_POS, 1.1 * _POS]), np.stack([_VEL, 0.9 * _VEL])
    Pr, Vr = P.copy(), V.copy()
    ref = np.stack([verlet_step_inplace(Pr[i], Vr[i], _M3, 0.05) for i in range(2)])
    assert_same(npfunc.vmap(verlet_step_inplace, in_dims=(0, 0, None, None))(P, V, _M3, 0.05), ref)
    np.testing.assert_allclose(P, Pr, rtol=1e-14)
    np.testing.assert_allclose(V, Vr, rtol=1e-14)
    # differentiated in both updated arguments, they are updated as by NumPy
    p, v = _POS.copy(), _VEL.copy()
    (gp, gv), val = npfunc.grad_and_value(verlet_step_inplace, argnums=(0, 1))(p, v, _M3, 0.05)
    assert_same(val, want)
    np.testing.assert_array_equal(p, p_want)
    np.testing.assert_array_equal(v, v_want)
    assert_deriv(gv, fd(lambda vv: verlet_step_inplace(_POS.copy(), vv.copy(), _M3, 0.05), _VEL))
    assert_deriv(gp, fd(lambda pp: verlet_step_inplace(pp.copy(), _VEL.copy(), _M3, 0.05), _POS))


def test_verlet_step_refused_when_only_vel_is_differentiated():
    """pos += vel * dt writes a traced value into the plain pos: refused, naming the transform."""
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad\(f\).*plain ndarray"):
        npfunc.grad(verlet_step_inplace, argnums=1)(_POS.copy(), _VEL.copy(), _M3, 0.05)


def test_zero_self_terms_fill_diagonal_of_an_argument():
    D0 = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.5], [2.0, 1.5, 0.0]])
    want_D = D0.copy()
    want = zero_self_terms(want_D)
    a = D0.copy()
    assert_same(npfunc.jit(zero_self_terms)(a), want)
    np.testing.assert_array_equal(a, want_D)
    a = D0.copy()
    g, v = npfunc.grad_and_value(zero_self_terms)(a)
    assert_same(v, want)
    np.testing.assert_array_equal(a, want_D)
    np.testing.assert_allclose(g, np.where(np.eye(3) > 0, 0.0, -1.0 / np.where(D0 > 0, D0, 1.0) ** 2))
    B = np.stack([D0, 2 * D0])
    Br = B.copy()
    assert_same(npfunc.vmap(zero_self_terms)(B), loop(zero_self_terms, Br))
    np.testing.assert_array_equal(B, Br)


# ==== ODEs ========================================================================================


def test_two_body_solve_ivp_derivatives():
    v0 = np.array([0.1, 1.1])
    J = fd(two_body_final, v0)
    assert_deriv(npfunc.jacrev(two_body_final)(v0), J, rtol=1e-5, atol=1e-7)
    assert_deriv(npfunc.jacfwd(two_body_final)(v0), J, rtol=1e-5, atol=1e-7)


def test_two_body_solve_ivp_without_t_eval_refused_and_t_eval_fix():
    v0s = np.array([[0.1, 1.1], [0.0, 1.0]])
    with pytest.raises(npfunc.errors.NpfuncError, match=r"jit\(f\).*give t_eval"):
        npfunc.jit(two_body_final)(v0s[0])
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap\(f\).*give t_eval"):
        npfunc.vmap(two_body_final)(v0s)
    f = lambda v: two_body_final(v, t_eval=[2.0])
    assert_same(f(v0s[0]), two_body_final(v0s[0]))
    jf = npfunc.jit(f)
    assert_same(jf(v0s[0]), f(v0s[0]))
    assert_same(jf(v0s[1]), f(v0s[1]))
    # vmap integrates the stacked system with one step control (docs/solvers.md):
    # equal to the separate solves within the solver's tolerance, not bit for bit
    assert_same(npfunc.vmap(f)(v0s), loop(f, v0s), rtol=1e-8)


def test_cr3bp_jacobi_constant_and_propagation():
    s0 = np.array([0.8, 0.0, 0.0, 0.0, 0.3, 0.0])
    check_scalar_program(jacobi_constant, s0, s0 + rng.normal(size=(3, 6)) * 0.01)
    J = fd(cr3bp_propagate, s0)
    assert_deriv(npfunc.jacfwd(cr3bp_propagate)(s0), J, rtol=1e-5, atol=1e-7)
    assert_deriv(npfunc.jacrev(cr3bp_propagate)(s0), J, rtol=1e-5, atol=1e-7)
    # the Jacobi constant is conserved along the flow: its gradient pulled through the flow
    # equals the gradient at the start
    C = lambda s: jacobi_constant(cr3bp_propagate(s))
    assert_deriv(npfunc.grad(C)(s0), npfunc.grad(jacobi_constant)(s0), rtol=1e-6, atol=1e-7)


# ==== Lambert ======================================================================================


def test_lambert_universal_variables():
    r1, r2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.2, 0.1])
    f = lambda r: lambert_universal(r1, r, 1.5)
    J = fd(f, r2)
    assert_deriv(npfunc.jacrev(f)(r2), J, rtol=1e-5, atol=1e-6)
    assert_deriv(npfunc.jacfwd(f)(r2), J, rtol=1e-5, atol=1e-6)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'r'.*np\.where"):
        npfunc.jit(f)(r2)


# ==== coordinates and photometry ==================================================================


def test_sky_coordinates():
    rd = np.array([[0.3, 0.5], [2.0, -0.2], [4.5, 1.0]])
    check_array_program(radec_to_altaz, rd, rd[None] + rng.normal(size=(3, 3, 2)) * 0.1)
    check_array_program(equatorial_to_galactic, np.array([83.6, 22.0]),
                        np.array([[83.6, 22.0], [266.4, -28.9], [10.0, 40.0]]))
    b = np.array([0.35, 0.45])
    check_scalar_program(lambda a: angular_separation(a, b), rd[0], rd)
    check_array_program(wrap_angle, np.array([-7.0, -1.0, 2.0, 4.0, 10.0]), rng.uniform(-10, 10, (3, 5)))
    check_array_program(orbit_phase_divmod, np.array([0.5, 3.3, 9.9]), rng.uniform(0.1, 9.9, (3, 3)))


def test_radec_wrap_float32():
    rd = np.array([[370.0, 95.0], [-10.0, -20.0], [180.5, 45.0]], np.float32)
    assert_same(npfunc.jit(radec_wrap_f32)(rd), radec_wrap_f32(rd))
    rds = np.stack([rd, rd * np.float32(0.5)])
    assert_same(npfunc.vmap(radec_wrap_f32)(rds), loop(radec_wrap_f32, rds))
    J = npfunc.jacrev(radec_wrap_f32)(rd)
    assert J.dtype == np.float32 and npfunc.jacfwd(radec_wrap_f32)(rd).dtype == np.float32
    assert_deriv(J, fd(radec_wrap_f32, rd.astype(float)), rtol=1e-4, atol=1e-6)


def test_magnitudes():
    check_scalar_program(distance_modulus_mag, np.array([4.8, 250.0, 0.1]),
                         np.array([[4.8, 250.0, 0.1], [-1.0, 10.0, 0.0]]))
    p32 = np.array([[4.8, 250.0, 0.1], [-1.0, 10.0, 0.0]], np.float32)
    assert_same(npfunc.jit(distance_modulus_mag)(p32[0]), distance_modulus_mag(p32[0]))
    assert_same(npfunc.vmap(distance_modulus_mag)(p32), loop(distance_modulus_mag, p32))
    check_scalar_program(planck_color, np.float64(5800.0), np.array([3000.0, 5800.0, 10000.0]))
    check_array_program(planck_color, np.array([5800.0, 4000.0]), np.array([[3000.0, 5800.0]]))
    check_scalar_program(total_magnitude, np.array([5.0, 6.2, 7.1]), np.array([[5.0, 6.2, 7.1], [1.0, 1.0, 1.0]]))
    check_array_program(roche_lobe, np.array([0.1, 1.0, 5.0]), np.array([[0.1, 1.0, 5.0], [0.5, 0.2, 2.0]]))
    cnt = np.array([1200, 53000, 800])
    assert_same(npfunc.jit(counts_to_mag)(cnt), counts_to_mag(cnt))
    cnts = np.stack([cnt, 2 * cnt])
    assert_same(npfunc.vmap(counts_to_mag)(cnts), loop(counts_to_mag, cnts))
    f = lambda T: counts_to_mag(cnt, T)
    assert_deriv(npfunc.jacrev(f)(30.0), fd(f, 30.0))


def test_barycentric_shift_updates_times_in_place():
    ed = np.array([[0.9, 0.4, 0.0], [0.5, 0.85, 0.01], [-0.3, 0.95, 0.0]])
    rd = np.array([1.2, 0.3])
    t, tr = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])
    assert_same(npfunc.jit(barycentric_shift_inplace)(t, rd, ed), barycentric_shift_inplace(tr, rd, ed))
    np.testing.assert_array_equal(t, tr)
    T = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    Tr = T.copy()
    rds = np.array([[1.2, 0.3], [0.2, -0.4]])
    ref = np.stack([barycentric_shift_inplace(Tr[i], rds[i], ed) for i in range(2)])
    assert_same(npfunc.vmap(barycentric_shift_inplace, in_dims=(0, 0, None))(T, rds, ed), ref)
    np.testing.assert_array_equal(T, Tr)
    # one time array shifted by a batch of directions: a loop would shift it twice; refused
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap\(f\)"):
        npfunc.vmap(barycentric_shift_inplace, in_dims=(None, 0, None))(np.array([1.0, 2.0, 3.0]), rds, ed)
    # under grad, times made inside the function are plain: refused; t = t + delay works
    def shifted_sq(rd):
        t = np.array([1.0, 2.0, 3.0])
        barycentric_shift_inplace(t, rd, ed)
        return np.sum(t**2)

    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad\(f\).*like=x"):
        npfunc.grad(shifted_sq)(rd)

    def shifted_sq_fixed(rd):
        t = np.array([1.0, 2.0, 3.0], like=rd)
        barycentric_shift_inplace(t, rd, ed)
        return np.sum(t**2)

    assert_same(shifted_sq_fixed(rd), shifted_sq(rd))
    assert_deriv(npfunc.grad(shifted_sq_fixed)(rd), fd(shifted_sq, rd))


# ==== ephemerides, periodograms and fits ==========================================================


def test_ephemeris_spline():
    check_array_program(ephemeris_spline, np.array([0.0, 0.8, 0.9, 0.1, -0.7]), rng.normal(size=(3, 5)))


def test_lomb_scargle_plain_buffer_matches_like_fix():
    """The periodogram filled into a plain np.empty buffer: NumPy's values and derivatives, as
    with the buffer made traced (like=y)."""
    t = np.sort(rng.uniform(0, 20, 30))
    fr = np.array([0.1, 0.25, 0.5])
    y = np.sin(TWO_PI * 0.25 * t) + 0.1 * np.cos(3.0 * t)
    f = lambda y: lomb_scargle_power(y, t, fr)
    fixed = lambda y: lomb_scargle_power(y, t, fr, like=y)
    assert_same(fixed(y), f(y))
    ys = y + rng.normal(size=(3, 30)) * 0.1
    check_array_program(f, y, ys)
    check_array_program(fixed, y, ys)
    assert_deriv(npfunc.jacrev(f)(y), npfunc.jacrev(fixed)(y), rtol=1e-12)


def test_o_minus_c_polyfit_under_jit():
    """np.polyfit branches on the rank of its Vandermonde matrix (`if rank != order`):
    under jit that rank was traced and jit refused; it depends on the plain epochs
    alone, so it is NumPy's integer now."""
    tm = 0.3 + 2.1 * np.arange(8.0) + 1e-3 * np.sin(np.arange(8.0))
    tms = tm + 1e-3 * rng.normal(size=(3, 8))
    check_array_program(o_minus_c, tm, tms)
    check_scalar_program(lambda t: o_minus_c(t)[2], tm, tms, hessian=False)
    full = lambda t: np.polyfit(np.arange(8.0), t, 2, full=True)
    for got, want in zip(npfunc.jit(full)(tm), full(tm)):
        assert_same(got, want, rtol=1e-10)


def test_polyval_of_a_list_of_traced_coefficients_refused_and_stack_fix():
    tm = 0.3 + 2.1 * np.arange(8.0) + 1e-3 * np.sin(np.arange(8.0))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev\(f\).*np\.polyval.*np\.stack"):
        npfunc.jacrev(o_minus_c_listed)(tm)
    fixed = lambda t: t - np.polyval(np.stack(np.polyfit(np.arange(8.0), t, 1)), np.arange(8.0))
    assert_same(fixed(tm), o_minus_c_listed(tm))
    assert_deriv(npfunc.jacrev(fixed)(tm), fd(o_minus_c_listed, tm))


@pytest.mark.xfail(strict=True, reason="np.polyfit's RankWarning (a Python warnings.warn at recording) is "
                                       "not repeated by jit's replays; NumPy warns on every call")
def test_polyfit_rank_warning_on_every_jit_call():
    epochs = np.ones(8)  # a degenerate design: NumPy warns 'Polyfit may be poorly conditioned'
    f = npfunc.jit(lambda t: np.polyfit(epochs, t, 1))
    for k in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f(np.arange(8.0) * (k + 1))
        assert any("poorly conditioned" in str(w.message) for w in caught), k


def test_time_of_flight_quad_is_a_numpy_scalar():
    """scipy.integrate.quad returns a float; under jit, grad_and_value, jvp and vjp the
    value was a 0-d ndarray (not a float, not a scalar); now it is an np.float64."""
    ae = np.array([1.2, 0.3])
    want = time_of_flight_quad(ae)
    assert type(want) is float
    for got in (npfunc.jit(time_of_flight_quad)(ae), npfunc.grad_and_value(time_of_flight_quad)(ae)[1],
                npfunc.jvp(time_of_flight_quad, (ae,), (np.ones(2),))[0], npfunc.vjp(time_of_flight_quad, ae)[0]):
        assert type(got) is np.float64, type(got)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    G = fd(time_of_flight_quad, ae)
    assert_deriv(npfunc.grad(time_of_flight_quad)(ae), G)
    assert_deriv(npfunc.jit(npfunc.grad(time_of_flight_quad))(ae), G)
    assert_deriv(npfunc.hessian(time_of_flight_quad)(ae), fd(npfunc.grad(time_of_flight_quad), ae), atol=1e-6)
    aes = np.array([[1.2, 0.3], [2.0, 0.6]])
    assert_same(npfunc.vmap(time_of_flight_quad)(aes), loop(time_of_flight_quad, aes))


def test_chi2_pvalue():
    r = np.array([0.3, -1.2, 0.8, 0.1, -0.5])
    check_scalar_program(lambda r: scipy.stats.chi2.sf(np.sum(r**2), 5), r, r + rng.normal(size=(3, 5)) * 0.1)


# ==== Lagrange points ==============================================================================


def test_lagrange_l1_brentq():
    mu = np.float64(0.01215)
    want = lagrange_l1(mu)
    np.testing.assert_allclose(npfunc.jit(lagrange_l1)(mu), want, rtol=1e-14)
    assert_deriv(npfunc.grad(lagrange_l1)(mu), fd(lagrange_l1, mu))
    mus = np.array([0.01215, 0.001, 0.1])
    assert_same(npfunc.vmap(lagrange_l1)(mus), np.array([lagrange_l1(m) for m in mus]))


def test_lagrange_stability_plain_buffer_matches_like_fix():
    """The matrix filled entry by entry into a plain np.zeros: NumPy's values and derivatives,
    as with the matrix made traced (like=mu)."""
    mu = np.float64(0.01215)
    J = fd(lagrange_stability, mu)
    mus = np.array([0.01, 0.02])
    assert_deriv(npfunc.jacfwd(lagrange_stability)(mu), J)
    assert_deriv(npfunc.jacrev(lagrange_stability)(mu), J)
    jf = npfunc.jit(lagrange_stability)
    for m in (mu, np.float64(0.02), mu):  # the recording call, then replays with new values
        assert_same(jf(m), lagrange_stability(m))
    assert_same(npfunc.vmap(lagrange_stability)(mus), loop(lagrange_stability, mus))
    fixed = lambda mu: lagrange_stability(mu, like=mu)
    assert_deriv(npfunc.jacfwd(lagrange_stability)(mu), npfunc.jacfwd(fixed)(mu), rtol=1e-12)
    # NumPy's own like= takes arrays only, not an np.float64: the plain call needs a 0-d array
    with pytest.raises(TypeError, match="like"):
        fixed(mu)
    assert_same(fixed(np.asarray(mu)), lagrange_stability(mu))
    assert_deriv(npfunc.jacrev(fixed)(mu), J)
    assert_deriv(npfunc.jacfwd(fixed)(mu), J)
    assert_same(npfunc.jit(fixed)(mu), lagrange_stability(mu))
    assert_same(npfunc.vmap(fixed)(mus), loop(lagrange_stability, mus))


def test_euler_quintic_roots_list_refused_and_stack_fix():
    mu = np.float64(0.01215)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"grad\(f\).*np\.roots.*np\.stack"):
        npfunc.grad(euler_quintic_root)(mu)
    fixed = lambda mu: euler_quintic_root(mu, stack=True)
    g, v = npfunc.grad_and_value(fixed)(mu)
    assert_same(v, euler_quintic_root(mu))
    assert_deriv(g, fd(euler_quintic_root, mu))


# ==== gathers, views, in-place updates, unsupported functions =======================================


def test_ephemeris_lookup_plain_table_refused_under_jit_and_like_fix():
    t = np.array([0.5, 3.3, 9.9])
    assert_deriv(npfunc.jacrev(ephemeris_lookup)(t), fd(ephemeris_lookup, t))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.asarray\(table, like=i\)"):
        npfunc.jit(ephemeris_lookup)(t)
    fixed = lambda t: ephemeris_lookup(t, like=True)
    assert_same(npfunc.jit(fixed)(t), ephemeris_lookup(t))
    ts = np.stack([t, t + 0.05])
    assert_same(npfunc.vmap(fixed)(ts), loop(ephemeris_lookup, ts))


def test_views_and_inplace_updates_of_state_vectors():
    s = np.arange(6.0) + 1
    out = npfunc.jit(position_part)(s)
    assert_same(out, position_part(s))
    assert np.shares_memory(out, s)
    a, r = s.copy(), s.copy()
    want = reflect_velocity_inplace(r)
    got = npfunc.jit(reflect_velocity_inplace)(a)
    assert_same(got, want)
    assert got is a
    np.testing.assert_array_equal(a, r)
    S = np.stack([s, 2 * s])
    Sr = S.copy()
    assert_same(npfunc.vmap(reflect_velocity_inplace)(S), loop(reflect_velocity_inplace, Sr))
    np.testing.assert_array_equal(S, Sr)
    x = s.copy()
    J = npfunc.jacrev(lambda x: reflect_velocity_inplace(x) * 2)(x)
    np.testing.assert_array_equal(x, r)  # updated once, as by one plain call
    np.testing.assert_array_equal(J, np.diag([2.0, 2, 2, -2, -2, -2]))


def test_elliptic_integrals_refusal_names_scipy_special():
    """The refusal named 'np.ellipk', which does not exist; it names scipy.special.ellipkinc
    (ellipk and ellipe are primitives now, see test_natural_programs_robotics.py)."""
    k = np.array([0.1, 0.5, 0.9])
    incomplete = lambda k: scipy.special.ellipkinc(0.3, k**2)
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"jacrev\(f\): scipy\.special\.ellipkinc is not"):
        npfunc.jacrev(incomplete)(k)
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"jit\(f\): scipy\.special\.ellipkinc is not"):
        npfunc.jit(incomplete)(k)
    assert_same(npfunc.jit(mandel_agol_ellip)(k), mandel_agol_ellip(k))
    assert_deriv(npfunc.jacrev(mandel_agol_ellip)(k), fd(mandel_agol_ellip, k))


def test_jit_closed_over_masses_are_a_snapshot():
    """Documented (docs/guide/jit.md): closed-over arrays are read at recording;
    clear_cache() reads them again."""
    m = _M3.copy()
    f = npfunc.jit(lambda s: nbody_energy(s, m))
    assert_same(f(_STATE), nbody_energy(_STATE, m))
    before = nbody_energy(_STATE, m)
    m[1] *= 2
    assert_same(f(_STATE), before)
    f.clear_cache()
    assert_same(f(_STATE), nbody_energy(_STATE, m))


# ==== Kepler's equation with a hand-written derivative ============================================


def _kepler_body(M, e):
    E = M + e * np.sin(M)
    for _ in range(30):
        E = E - (E - e * np.sin(E) - M) / (1 - e * np.cos(E))
    return E


kepler_custom = npfunc.custom_vjp(_kepler_body)


def _kepler_fwd(M, e):
    E = kepler_custom(M, e)
    return E, (E, e)


def _kepler_bwd(res, g):
    """dE/dM = 1 / (1 - e cos E), dE/de = sin E / (1 - e cos E) (implicit function theorem)."""
    E, e = res
    d = 1 - e * np.cos(E)
    return g / d, np.sum(g * np.sin(E) / d) * np.ones_like(e)


kepler_custom.defvjp(_kepler_fwd, _kepler_bwd)

kepler_custom_jvp = npfunc.custom_jvp(_kepler_body)


@kepler_custom_jvp.defjvp
def _kepler_jvp(primals, tangents):
    M, e = primals
    dM, de = tangents
    E = _kepler_body(M, e)
    return E, (dM + de * np.sin(E)) / (1 - e * np.cos(E))


def test_kepler_custom_rules_keep_numpy_scalars():
    """A custom_vjp / custom_jvp function returned a 0-d ndarray where its body returns an
    np.float64 (np.float64 is a float, and Python floats were made 0-d arrays): plainly
    called, under grad_and_value, jvp and jit."""
    M, e = np.float64(1.0), np.float64(0.3)
    want = _kepler_body(M, e)
    assert type(want) is np.float64
    for F in (kepler_custom, kepler_custom_jvp):
        f = lambda M: F(M, e)
        assert_same(F(M, e), want)
        assert_same(npfunc.grad_and_value(f)(M)[1], want)
        assert_same(npfunc.jvp(f, (M,), (np.float64(1.0),))[0], want)
        assert_same(npfunc.jit(f)(M), want)
        assert_deriv(npfunc.grad(f)(M), fd(lambda M: _kepler_body(M, e), M))
        assert_deriv(npfunc.grad(lambda e: F(M, e))(e), fd(lambda e: _kepler_body(M, e), e))
        Ms = np.linspace(0.2, 5.0, 4)
        assert_same(npfunc.vmap(f)(Ms), loop(lambda M: _kepler_body(M, e), Ms))
        assert_same(npfunc.vmap(npfunc.grad(f))(Ms), loop(npfunc.grad(f), Ms), rtol=1e-12)
        assert_deriv(npfunc.jit(npfunc.grad(lambda M: F(M, e).sum()))(Ms), fd(lambda M: _kepler_body(M, e).sum(), Ms))


# ==== checkpointed leapfrog =========================================================================


def _kick_drift(p, v):
    return p + 0.02 * v, v + 0.02 * pairwise_accel(p, _M3)


def _energy_after_steps(s, step, n=4):
    p, v = s[:9].reshape(3, 3), s[9:].reshape(3, 3)
    for _ in range(n):
        p, v = step(p, v)
    return np.sum(v**2) + np.sum(p**2)


def test_checkpointed_nbody_steps():
    """A deterministic step (np.fill_diagonal, np.einsum) was refused as nondeterministic:
    the recomputation runs npfunc's einsum, which rounds differently from NumPy's default
    unoptimised one in the last bit, and checkpoint compared the outputs exactly."""
    step = npfunc.checkpoint(_kick_drift)
    f = lambda s: _energy_after_steps(s, step)
    plain = lambda s: _energy_after_steps(s, _kick_drift)
    G = npfunc.grad(plain)(_STATE)
    assert_deriv(npfunc.grad(f)(_STATE), G, rtol=1e-12, atol=1e-14)
    assert_deriv(G, fd(plain, _STATE))
    assert_deriv(npfunc.hessian(f)(_STATE), npfunc.hessian(plain)(_STATE), rtol=1e-10, atol=1e-12)
    # a random draw inside is still refused
    noisy = npfunc.checkpoint(lambda p, v: (p + 0.02 * v * np.random.default_rng().normal(), v))
    with pytest.raises(npfunc.api.checkpoint.NondeterministicCheckpointError, match="grad"):
        npfunc.grad(lambda s: _energy_after_steps(s, noisy))(_STATE)


# ==== phase folding, batching axes, static step counts ================================================


def fold_phase(params, t=np.array([0.3, 7.0, -8.0, 19.0, 33.3])):
    """Phases of observation times folded at a trial (t0, P): np.mod, np.fmod, np.divmod and %."""
    t0, P = params
    a = np.mod(t - t0, P) / P
    b = np.fmod(t - t0, P) / P
    n, r = np.divmod(t - t0, P)
    return np.concatenate([a, b, r / P + 0.0 * n, ((t - t0) % P) / P])


def leapfrog_static(s, nsteps):
    p, v = s[:9].reshape(3, 3), s[9:].reshape(3, 3)
    for _ in range(nsteps):
        v = v + 0.01 * pairwise_accel(p, _M3)
        p = p + 0.02 * v
    return p


def test_fold_phase_wrt_epoch_and_period():
    check_array_program(fold_phase, np.array([0.1, 2.5]), np.array([[0.1, 2.5], [0.2, 3.1], [-0.4, 1.7]]))
    m = lambda x: np.mod(x, -2.5)  # a negative divisor: NumPy's sign convention
    x = np.array([7.0, -8.0, 19.0])
    assert_same(npfunc.jit(m)(x), m(x))
    assert_deriv(npfunc.jacrev(m)(x), fd(m, x))
    x32 = np.array([-30.0, 400.0], np.float32)
    w = lambda x: np.mod(x, np.float32(360.0))
    assert_same(npfunc.jit(w)(x32), w(x32))
    assert_same(npfunc.vmap(w)(x32), loop(w, x32))


def test_vmap_axes_and_static_step_counts():
    Ms = rng.uniform(0, 6, (5, 3))
    g = lambda M: kepler_vec(M, 0.4)
    cols = [g(Ms[:, i]) for i in range(3)]
    assert_same(npfunc.vmap(g, in_dims=1)(Ms), np.stack(cols))
    assert_same(npfunc.vmap(g, in_dims=1, out_dims=1)(Ms), np.stack(cols, axis=1))
    j = npfunc.jit(leapfrog_static, static_argnums=1)
    assert_same(j(_STATE, 3), leapfrog_static(_STATE, 3))
    assert_same(j(_STATE, 5), leapfrog_static(_STATE, 5))
    assert_same(npfunc.jit(leapfrog_static)(_STATE, 4), leapfrog_static(_STATE, 4))  # a Python int is static
    jk = npfunc.jit(g)
    M64 = np.linspace(0.1, 6, 5)
    assert_same(jk(M64), g(M64))
    assert_same(jk(M64.astype(np.float32)), g(M64.astype(np.float32)), rtol=1e-6)  # retraced for the dtype
    assert_same(jk(np.array([1, 2, 3])), g(np.array([1, 2, 3])))
    assert_same(npfunc.vmap(g)(np.array([1, 2, 3])), loop(g, np.array([1, 2, 3])))


def test_autograd_functional_on_rv_fit():
    from npfunc.autograd import functional as AF

    chi = lambda th: rv_chi2(th, _T_RV, _V_RV, 1.0)
    assert_deriv(AF.jacobian(lambda th: rv_model(th, _T_RV), _TH_RV), fd(lambda th: rv_model(th, _T_RV), _TH_RV))
    H = fd(npfunc.grad(chi), _TH_RV)
    assert_deriv(AF.hessian(chi, _TH_RV), H, atol=1e-5)
    assert_deriv(AF.hvp(chi, _TH_RV, np.ones(6))[1], H @ np.ones(6), atol=1e-5)
    out, g = AF.vjp(chi, _TH_RV)
    # documented (docs/autograd_functional.md): the output as the function returned it (a NumPy scalar)
    assert type(out) is type(chi(_TH_RV)) is np.float64
    np.testing.assert_allclose(out, chi(_TH_RV), rtol=1e-14)
    assert_deriv(g, fd(chi, _TH_RV))


# ==== orbit fits by least squares, SciPy's periodogram, clipped arccos =================================


def fit_rv_least_squares(v, t=_T_RV):
    res = scipy.optimize.least_squares(lambda th: rv_model(th, t) - v, _TH_RV * 1.01,
                                       xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return res.x


def test_rv_least_squares_fit_sensitivity_to_the_data():
    """d(fit)/d(data) by the implicit function theorem on the full Hessian of the
    objective (not Gauss-Newton's J^T J: the residuals are not small). Finite
    differences of the solve are only as good as its stopping rule, so the reference
    is the theorem evaluated independently at the solver's optimum."""
    x = fit_rv_least_squares(_V_RV)
    H = npfunc.hessian(lambda th: 0.5 * np.sum((rv_model(th, _T_RV) - _V_RV) ** 2))(x)
    J = npfunc.jacfwd(lambda th: rv_model(th, _T_RV))(x)
    want = np.linalg.solve(H, J.T)
    assert_deriv(npfunc.jacrev(fit_rv_least_squares)(_V_RV), want, rtol=1e-9, atol=1e-12)
    tangent = np.linspace(-1.0, 1.0, len(_V_RV))
    assert_deriv(npfunc.jvp(fit_rv_least_squares, (_V_RV,), (tangent,))[1], want @ tangent, rtol=1e-9, atol=1e-12)
    assert_same(npfunc.jit(fit_rv_least_squares)(_V_RV), x, rtol=1e-9)
    vs = np.stack([_V_RV, 1.01 * _V_RV])
    # one solve of the stacked problem (docs/solvers.md): equal to the solver's tolerance
    # (SciPy's default ones here: with the 1e-15 above the stacked solve takes some 20 s)
    fit = lambda v: scipy.optimize.least_squares(lambda th: rv_model(th, _T_RV) - v, _TH_RV * 1.01).x
    assert_same(npfunc.vmap(fit)(vs), loop(fit, vs), rtol=1e-5)


_T_LS = np.sort(np.random.default_rng(7).uniform(0, 20, 30))
_W_LS = np.array([0.5, 1.0, 1.5]) * TWO_PI


def test_scipy_lombscargle_derivatives_and_weights_workaround():
    y = np.sin(TWO_PI * 0.25 * _T_LS)
    f = lambda y: scipy.signal.lombscargle(_T_LS, y, _W_LS)
    assert_deriv(npfunc.jacrev(f)(y), fd(f, y))
    assert_deriv(npfunc.jacfwd(f)(y), fd(f, y))
    # with the (default) unit weights passed, SciPy's weight check sees a plain array
    w = lambda y: scipy.signal.lombscargle(_T_LS, y, _W_LS, weights=np.ones(len(_T_LS)))
    ys = np.stack([y, 2 * y + 0.1])
    assert_same(npfunc.jit(w)(y), f(y))
    assert_same(npfunc.vmap(w)(ys), loop(f, ys))


def test_scipy_lombscargle_jit_and_vmap_without_weights():
    """Refused under jit and vmap (advising np.where / static_argnums, neither of which
    applies): SciPy makes weights = np.ones_like(y), traced, and checks np.all(weights >= 0).
    npfunc.scipy.signal.lombscargle passes the unit weights as a plain array."""
    y = np.sin(TWO_PI * 0.25 * _T_LS)
    f = lambda y: scipy.signal.lombscargle(_T_LS, y, _W_LS)
    assert_same(npfunc.jit(f)(y), f(y))
    ys = np.stack([y, 2 * y + 0.1])
    assert_same(npfunc.vmap(f)(ys), loop(f, ys))
    g = lambda w: scipy.signal.lombscargle(_T_LS, y, w, normalize=True, floating_mean=True)
    assert_same(npfunc.jit(g)(_W_LS), g(_W_LS))
    assert_deriv(npfunc.jacfwd(g)(_W_LS), fd(g, _W_LS))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_arccos_of_clipped_cosine_grad_outside_the_range():
    f = lambda c: np.sum(np.arccos(np.clip(c, -1.0, 1.0)))
    c = np.array([1.2, 0.5, -1.3])
    assert_deriv(npfunc.grad(f)(c), fd(f, c))


# ==== pair forces by np.add.at, periodic phase curves, robust statistics, views of state vectors ========


def pair_forces_add_at(p):
    """Accelerations (unit masses) accumulated from a pair list with np.add.at into np.zeros_like."""
    P = p.reshape(3, 3)
    i, j = np.triu_indices(3, 1)
    d = P[j] - P[i]
    f = d / np.linalg.norm(d, axis=1, keepdims=True) ** 3
    acc = np.zeros_like(P)
    np.add.at(acc, i, f)
    np.add.at(acc, j, -f)
    return acc.ravel()


_XP = np.linspace(0, 1, 9, endpoint=False)
_FP = 1 - 0.01 * np.exp(-(((_XP - 0.5) / 0.05) ** 2))


def phase_curve(ph, fp=_FP):
    """A tabulated phase curve interpolated periodically (np.interp with period=1)."""
    return np.interp(ph, _XP, fp, period=1.0)


def robust_jitter(r):
    """Scaled median absolute deviation."""
    return 1.4826 * np.median(np.abs(r - np.median(r)))


def sigma_clipped_mean(y, where=False):
    """Iterative 3-sigma clipping; ``where`` is the refusal's fix (masked sums, fixed size)."""
    mask = np.ones(len(y), bool)
    for _ in range(3):
        if where:
            n = np.sum(mask)
            m = np.sum(np.where(mask, y, 0.0)) / n
            s = np.sqrt(np.sum(np.where(mask, (y - m) ** 2, 0.0)) / n)
        else:
            m, s = y[mask].mean(), y[mask].std()
        mask = np.abs(y - m) < 3 * s
    return np.sum(np.where(mask, y, 0.0)) / np.sum(mask) if where else y[mask].mean()


def drift_inplace(state, dt=0.1):
    state[:3] += dt * state[3:]
    return state[:3]


def test_pair_forces_add_at_and_phase_curves():
    p = _POS.ravel()
    check_array_program(pair_forces_add_at, p, p + rng.normal(size=(2, 9)) * 0.01)
    check_array_program(phase_curve, np.array([0.13, 0.97, 1.45, -0.2]), rng.uniform(-1, 2, (3, 4)))
    f = lambda fp: phase_curve(np.array([0.13, 0.97, 1.45, -0.2]), fp)
    check_array_program(f, _FP, _FP + rng.normal(size=(2, 9)) * 0.01)


def test_robust_statistics():
    r = np.array([0.3, -1.2, 0.8, 0.1, -0.5, 2.0])
    check_scalar_program(robust_jitter, r, rng.normal(size=(3, 6)), hessian=False)
    check_array_program(lambda r: np.percentile(r, [16, 50, 84]), r, rng.normal(size=(3, 6)))
    y = np.concatenate([np.sin(np.arange(20.0)), [10.0]])
    ys = np.stack([y, 1.1 * y])
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"jit\(f\).*np\.where\(mask, x, 0\)"):
        npfunc.jit(sigma_clipped_mean)(y)
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"vmap\(f\).*np\.where\(mask, x, 0\)"):
        npfunc.vmap(sigma_clipped_mean)(ys)
    assert_deriv(npfunc.grad(sigma_clipped_mean)(y), fd(sigma_clipped_mean, y))
    fixed = lambda y: sigma_clipped_mean(y, where=True)
    np.testing.assert_allclose(fixed(y), sigma_clipped_mean(y), rtol=1e-14)
    np.testing.assert_allclose(npfunc.jit(fixed)(y), sigma_clipped_mean(y), rtol=1e-14)
    np.testing.assert_allclose(npfunc.vmap(fixed)(ys), loop(sigma_clipped_mean, ys), rtol=1e-14)


def test_drift_in_place_returns_a_view_under_jit():
    s = np.arange(6.0) + 1
    a, r = s.copy(), s.copy()
    want = drift_inplace(r)
    got = npfunc.jit(drift_inplace)(a)
    assert_same(got, want)
    np.testing.assert_array_equal(a, r)
    assert np.shares_memory(got, a)
    S = np.stack([s, 2 * s])
    R = S.copy()
    assert_same(npfunc.vmap(drift_inplace)(S), loop(drift_inplace, R))
    np.testing.assert_array_equal(S, R)
    x, v = npfunc.jit(lambda st: (st[:3], st[3:]))(a)
    x[0] = 100.0
    assert a[0] == 100.0 and np.shares_memory(v, a)


def test_odeint_two_body():
    def final(v0):
        y0 = np.array([1.0, 0.0, v0[0], v0[1]])
        ys = scipy.integrate.odeint(lambda y, t: np.concatenate([y[2:], -y[:2] / np.linalg.norm(y[:2]) ** 3]),
                                    y0, np.linspace(0, 2, 5), rtol=1e-10, atol=1e-12)
        return ys[-1, :2]

    v0 = np.array([0.1, 1.1])
    J = fd(final, v0)
    assert_deriv(npfunc.jacrev(final)(v0), J, rtol=1e-5, atol=1e-7)
    assert_deriv(npfunc.jacfwd(final)(v0), J, rtol=1e-5, atol=1e-7)
    assert_same(npfunc.jit(final)(v0), final(v0))
    v0s = np.array([[0.1, 1.1], [0.0, 1.0]])
    assert_same(npfunc.vmap(final)(v0s), loop(final, v0s), rtol=1e-8)  # one stacked solve
