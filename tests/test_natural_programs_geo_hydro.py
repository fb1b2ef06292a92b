"""Natural programs from hydrology, groundwater, geophysics and seismology, written first as
plain NumPy/SciPy the way a hydrologist or seismologist writes them (loops over time steps
into preallocated buffers, np.array([...]) of computed values, early exits, dicts of results,
float32 station data, SciPy solvers, special functions and interpolators), then run under
npfunc's transforms and compared with the plain program: values, dtypes, Python types and side
effects through assert_same, derivatives through five-point differences of the plain program,
vmap through a Python loop and np.stack, each transformed function called several times on the
same and on new inputs (eager compiled pull-backs give the first call's values bit for bit).

Programs:
  * infiltration and runoff: Green-Ampt by Newton with a tolerance exit and by brentq, Horton,
    SCS curve number (np.where and the scalar early return), Thornthwaite PET, FAO-56
    Penman-Monteith (float64 and float32 station data), degree-day snowmelt in float32;
  * hydrographs and routing: unit-hydrograph convolution (double loop into a buffer, np.convolve),
    the Nash cascade (scipy.special.gamma and scipy.stats.gamma.pdf), Muskingum routing (loop into
    np.empty_like, and as an lfilter), a linear reservoir (list of computed values), an HBV-like
    bucket model returning a dict, Nash-Sutcliffe calibration of Muskingum's K and X, the
    Lyne-Hollick baseflow filter with clipping branches, recession constants by np.polyfit,
    a nonlinear reservoir by solve_ivp, flow-duration quantiles by np.sort and np.interp;
  * groundwater: Theis drawdown (scipy.special.exp1) and its calibration misfit in log T, log S,
    Cooper-Jacob, Thiem, Hantush's leaky aquifer (k0), the well function as a quad integral,
    Ogata-Banks advection-dispersion (erfc), steady heterogeneous 1D flow by a tridiagonal
    np.linalg.solve assembled in a loop, transient flow by scipy.linalg.solve_banded, 2D Jacobi
    sweeps with in-place slice updates;
  * open channels and floods: Manning's equation, normal depth by brentq, critical depth, the
    rational method, rating curves by log-linear lstsq and by a CubicSpline built from a plain
    table (evaluated at traced stages), Gumbel and log-normal flood quantiles, GEV by its formula;
  * seismology: straight-ray travel times, earthquake location by Geiger's method (Gauss-Newton
    with np.column_stack and solve; with lstsq, m += dm and a tolerance exit; after a grid
    search), layered-earth rays (ray parameter, two-point ray tracing by brentq, Snell angles
    by np.arcsin of a clipped sine, cumulative offsets), head waves and first arrivals
    (np.minimum), NMO and Dix velocities, double-couple moment tensors (np.array of computed
    entries), P radiation patterns and polarity misfits, eigen-decomposition (Mw, CLVD,
    principal axes by eigh), auxiliary planes (np.cross, arctan2), Brune spectra with t*,
    Q from spectral ratios (polyfit), Aki's b-value, Omori log-likelihood, Ricker synthetic
    traces (np.convolve mode='same'), Shuey AVO, a GMPE, local magnitude, STA/LTA by cumsum
    (float64 and float32), t* from |rfft|, Hilbert envelopes, travel time in a gradient medium
    by quad and through interp1d tables, station corrections by np.bincount;
  * geophysics: gravity of spheres, cylinders and 2D prisms (arctan2, log), sphere depth by
    Gauss-Newton, Bouguer and free-air corrections, line-dipole magnetic anomalies, Tikhonov
    inversion (scipy.linalg.solve assume_a='pos', cho_factor/cho_solve, stacked lstsq, GCV in
    log lambda), truncated-SVD inversion, haversine and epicentral distances, bearings (arctan2
    and %), geodetic to ECEF, Airy isostasy, half-space cooling (erf), geotherms, Mogi sources,
    screw dislocations, layered-earth magnetotellurics (complex tanh recursion), Wenner
    soundings over two layers (image series), Q-attenuated amplitudes;
  * in-place habits: demeaning and tapering a trace in place, Jacobi sweeps into the caller's
    head field (the caller's array changes as in NumPy under jit, grad, vmap, functionalize);
  * other transforms: linearize of Muskingum routing, checkpointed groundwater time steps,
    Theis' well function as a custom_vjp, a float32 gravity profile.

Findings fixed here (each with its regression test): a SciPy interpolator built from plain data
and called at traced points (a rating-curve CubicSpline at a traced stage; also PchipInterpolator,
Akima1DInterpolator, BSpline, interp1d, RegularGridInterpolator, RBFInterpolator and
gaussian_kde's evaluate/pdf/logpdf) raised a raw TypeError from SciPy's compiled code: those
calls now evaluate the twin made from the instance's data (scipy/_routing._route_plain_calls),
and KDTree.query at traced points is refused naming the stop_gradient fix; quad under vmap with a
batched limit and an infinite other limit (the Theis well function as an integral) was refused
without a fix: the message now gives the change of variable, which vmap runs; jacfwd of an RBF
interpolant (kernel matrix @ weight column) gave values 1 ulp from the first call's once the tape
cache compiled the pull-back (eager vmap folded the batched matmul into one GEMV, the staged
recording never did: primitives/linalg/products._folded); jit(grad(f))(np.float64(h)) gave a
0-d array where grad(f) gives an np.float64 (api/_common.scalar_gradient); jit(interp) of a
SciPy interp1d raised AttributeError, the object's ``_call`` copied onto the jit wrapper over
jit's own method (api/jit.Jitted).
Known and left (tested as they are): brentq's and quad's Python float comes back as an
np.float64 under jit and the derivative transforms (a float subclass, as the finance tests
record); a clipped arcsin warns 'divide by zero' in reverse mode and gives NaN in forward mode
where the clip is active (docs/conventions.md, clip); cKDTree (compiled) queried at traced
points still raises SciPy's raw TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.spatial
import scipy.special as sps
import scipy.stats

import npfunc
from natural_checks import assert_deriv as _assert_deriv, assert_same, fd

rng = np.random.default_rng(20261207)


# ======================= hydrology =======================

def green_ampt_F(t, K, psi, dtheta, tol=1e-12, maxit=100):
    """Cumulative infiltration F(t) from the implicit Green-Ampt equation
    F = K t + psi dtheta ln(1 + F/(psi dtheta)) by Newton with a tolerance test."""
    pd = psi * dtheta
    F = K * t  # start
    for _ in range(maxit):
        g = F - K * t - pd * np.log(1 + F / pd)
        dg = 1 - pd / (pd + F)
        step = g / dg
        F = F - step
        if abs(step) < tol:
            break
    return F


def green_ampt_rate(F, K, psi, dtheta):
    return K * (1 + psi * dtheta / F)


def green_ampt_brentq(t, K, psi, dtheta):
    pd = psi * dtheta
    g = lambda F: F - K * t - pd * np.log1p(F / pd)
    return scipy.optimize.brentq(g, 1e-9, 50.0, xtol=1e-14)


def horton(t, f0, fc, k):
    """Horton infiltration capacity and cumulative infiltration."""
    f = fc + (f0 - fc) * np.exp(-k * t)
    F = fc * t + (f0 - fc) / k * (1 - np.exp(-k * t))
    return f, F


def scs_runoff(P, CN):
    """SCS curve-number direct runoff (mm), zero below the initial abstraction."""
    S = 25400.0 / CN - 254.0
    Ia = 0.2 * S
    Q = np.where(P > Ia, (P - Ia) ** 2 / (P + 0.8 * S), 0.0)
    return Q


def scs_runoff_scalar(P, CN):
    S = 25400.0 / CN - 254.0
    Ia = 0.2 * S
    if P <= Ia:
        return 0.0
    return (P - Ia) ** 2 / (P - Ia + S)


def unit_hydrograph_loop(rain, uh):
    """Direct runoff by discrete convolution, written as a double loop into a buffer."""
    n, m = len(rain), len(uh)
    q = np.zeros(n + m - 1)
    for i in range(n):
        for j in range(m):
            q[i + j] += rain[i] * uh[j]
    return q


def unit_hydrograph_convolve(rain, uh):
    return np.convolve(rain, uh)


def nash_uh(t, n, k):
    """Nash cascade instantaneous unit hydrograph (gamma density)."""
    return (t / k) ** (n - 1) * np.exp(-t / k) / (k * sps.gamma(n))


def nash_uh_stats(t, n, k):
    return scipy.stats.gamma.pdf(t, n, scale=k)


def muskingum(inflow, K, X, dt=1.0):
    """Muskingum channel routing, outflow in a preallocated buffer."""
    D = 2 * K * (1 - X) + dt
    C0 = (dt - 2 * K * X) / D
    C1 = (dt + 2 * K * X) / D
    C2 = (2 * K * (1 - X) - dt) / D
    out = np.empty_like(inflow)
    out[0] = inflow[0]
    for i in range(len(inflow) - 1):
        out[i + 1] = C0 * inflow[i + 1] + C1 * inflow[i] + C2 * out[i]
    return out


def muskingum_params(p, inflow):
    K, X = p
    return muskingum(inflow, K, X)


def linear_reservoir(rain, k, dt=1.0):
    S = 0.0
    Q = []
    for r in rain:
        S = S + dt * (r - S / k)
        Q.append(S / k)
    return np.array(Q)


def nse(sim, obs):
    """Nash-Sutcliffe efficiency."""
    return 1 - np.sum((sim - obs) ** 2) / np.sum((obs - np.mean(obs)) ** 2)


def hbv_bucket(params, precip, temp):
    """A minimal HBV-like model: degree-day snow, soil moisture, a linear reservoir;
    results in a dict."""
    tt, cfmax, fc, beta, k = params
    snow = 0.0
    sm = 0.5 * fc
    suz = 0.0
    q = np.zeros(len(precip))
    for i in range(len(precip)):
        p, T = precip[i], temp[i]
        melt = cfmax * np.maximum(T - tt, 0.0)
        snowfall = p * (T < tt)
        rainfall = p - snowfall
        snow = snow + snowfall
        melt = np.minimum(melt, snow)
        snow = snow - melt
        water = rainfall + melt
        recharge = water * (sm / fc) ** beta
        sm = sm + water - recharge
        suz = suz + recharge
        q[i] = k * suz
        suz = suz - q[i]
    return {"q": q, "snow": snow, "sm": sm}


def theis_drawdown(r, t, Q, T, S):
    """Theis drawdown with the well function W(u) = E1(u)."""
    u = r**2 * S / (4 * T * t)
    return Q / (4 * np.pi * T) * sps.exp1(u)


def cooper_jacob(r, t, Q, T, S):
    return Q / (4 * np.pi * T) * np.log(2.25 * T * t / (r**2 * S))


def theis_misfit(logTS, r, t, Q, obs):
    T, S = np.exp(logTS)
    return 0.5 * np.sum((theis_drawdown(r, t, Q, T, S) - obs) ** 2)


def thiem(r, Q, T, R, h0):
    return h0 - Q / (2 * np.pi * T) * np.log(R / r)


def gw_fd_1d(K, h_left=10.0, h_right=5.0, recharge=1e-3, dx=1.0):
    """Steady 1D confined flow with a heterogeneous K (cell values), Dirichlet ends:
    assemble a tridiagonal matrix in a loop, solve, return heads and the outflow."""
    n = K.shape[0] - 1
    Kf = 2 * K[:-1] * K[1:] / (K[:-1] + K[1:])   # harmonic mean at faces
    A = np.zeros((n - 1, n - 1))
    b = np.full(n - 1, -recharge * dx**2)
    for i in range(n - 1):
        A[i, i] = -(Kf[i] + Kf[i + 1])
        if i > 0:
            A[i, i - 1] = Kf[i]
        if i < n - 2:
            A[i, i + 1] = Kf[i + 1]
    b[0] -= Kf[0] * h_left
    b[-1] -= Kf[-1] * h_right
    h = np.linalg.solve(A, b)
    heads = np.concatenate([[h_left], h, [h_right]])
    q_out = -Kf[-1] * (h_right - h[-1]) / dx
    return heads, q_out


def gw_jacobi_2d(h0, n_iter=30):
    """Laplace equation by Jacobi sweeps with in-place interior updates; boundaries fixed."""
    h = h0.copy()
    for _ in range(n_iter):
        h[1:-1, 1:-1] = 0.25 * (h[2:, 1:-1] + h[:-2, 1:-1] + h[1:-1, 2:] + h[1:-1, :-2])
    return h


def manning_Q(y, b, z, n, S):
    """Discharge in a trapezoidal channel by Manning's equation (SI)."""
    A = (b + z * y) * y
    P = b + 2 * y * np.sqrt(1 + z**2)
    R = A / P
    return A / n * R ** (2.0 / 3.0) * np.sqrt(S)


def normal_depth(Q, b, z, n, S):
    return scipy.optimize.brentq(lambda y: manning_Q(y, b, z, n, S) - Q, 1e-6, 50.0, xtol=1e-14)


def critical_depth_rect(q, g=9.81):
    return (q**2 / g) ** (1.0 / 3.0)


def penman_monteith(T, Rn, u2, es_minus_ea, G=0.0, P=101.3):
    """FAO-56 reference evapotranspiration (mm/day)."""
    es = 0.6108 * np.exp(17.27 * T / (T + 237.3))
    delta = 4098 * es / (T + 237.3) ** 2
    gamma = 0.000665 * P
    num = 0.408 * delta * (Rn - G) + gamma * 900 / (T + 273) * u2 * es_minus_ea
    return num / (delta + gamma * (1 + 0.34 * u2))


def degree_day_melt(temp, ddf, t0=np.float32(0.0)):
    melt = ddf * np.maximum(temp - t0, 0)
    return melt, np.cumsum(melt)


def flow_duration(q):
    qs = np.sort(q)[::-1]
    exceed = np.arange(1, len(q) + 1) / (len(q) + 1)
    return np.interp([0.1, 0.5, 0.9], exceed, qs)


def baseflow_filter(q, alpha=0.925):
    """Lyne-Hollick digital filter (one forward pass), quickflow clipped into [0, q]."""
    qf = np.zeros_like(q)
    for i in range(1, len(q)):
        qf[i] = alpha * qf[i - 1] + 0.5 * (1 + alpha) * (q[i] - q[i - 1])
        if qf[i] < 0:
            qf[i] = 0
        if qf[i] > q[i]:
            qf[i] = q[i]
    return q - qf


def rational_peak(C, i, A):
    return C * i * A / 3.6


def stage_discharge_fit(h, Q):
    """Rating curve Q = a (h - h0)^b fitted by log-linear least squares with h0 given."""
    A = np.column_stack([np.ones_like(h), np.log(h - 0.1)])
    coef, *_ = np.linalg.lstsq(A, np.log(Q), rcond=None)
    return np.exp(coef[0]), coef[1]


# ======================= seismology =======================

def travel_times(src, stations, v):
    """Straight-ray travel times; src = (x, y, z, t0)."""
    d = np.sqrt(np.sum((stations - src[:3]) ** 2, axis=1))
    return src[3] + d / v


def geiger_locate(t_obs, stations, v, x0, n_iter=8):
    """Geiger's method: Gauss-Newton on arrival times, G built with np.column_stack."""
    m = x0.copy()
    for _ in range(n_iter):
        diff = m[:3] - stations
        d = np.sqrt(np.sum(diff**2, axis=1))
        t_pred = m[3] + d / v
        r = t_obs - t_pred
        G = np.column_stack([diff / (v * d[:, None]), np.ones(len(d))])
        dm = np.linalg.solve(G.T @ G, G.T @ r)
        m = m + dm
    return m


def geiger_locate_lstsq(t_obs, stations, v, x0, n_iter=8, tol=1e-10):
    m = np.array(x0, dtype=float)
    for it in range(n_iter):
        d = np.linalg.norm(stations - m[:3], axis=1)
        r = t_obs - (m[3] + d / v)
        G = np.empty((len(d), 4))
        G[:, :3] = (m[:3] - stations) / (v * d[:, None])
        G[:, 3] = 1.0
        dm = np.linalg.lstsq(G, r, rcond=None)[0]
        m += dm
        if np.linalg.norm(dm) < tol:
            break
    return m


def layered_offset_time(p, h, v):
    """Offset and travel time of a ray with ray parameter p through flat layers (down and up)."""
    eta = np.sqrt(1.0 / v**2 - p**2)
    x = 2 * np.sum(h * p / eta)
    t = 2 * np.sum(h * (1.0 / v**2) / eta)
    return x, t


def two_point_ray(xr, h, v):
    """Ray parameter for offset xr by brentq, then the travel time."""
    pmax = 1.0 / np.max(v) * (1 - 1e-9)
    p = scipy.optimize.brentq(lambda q: layered_offset_time(q, h, v)[0] - xr, 0.0, pmax, xtol=1e-15)
    return layered_offset_time(p, h, v)[1]


def snell_angles(theta0, v):
    """Angles through a stack by Snell's law; arcsin of a clipped sine (post-critical rays grazing)."""
    p = np.sin(theta0) / v[0]
    s = np.clip(p * v, -1.0, 1.0)
    return np.arcsin(s)


def head_wave_time(x, h, v1, v2):
    ic = np.arcsin(v1 / v2)
    return x / v2 + 2 * h * np.cos(ic) / v1


def first_arrival(x, h, v1, v2):
    """Direct wave or head wave, whichever is first (np.minimum)."""
    t_direct = x / v1
    t_head = head_wave_time(x, h, v1, v2)
    return np.minimum(t_direct, t_head)


def nmo_time(x, t0, vrms):
    return np.sqrt(t0**2 + (x / vrms) ** 2)


def dix_interval(t0, vrms):
    num = np.diff(vrms**2 * t0)
    return np.sqrt(num / np.diff(t0))


def moment_tensor(strike, dip, rake, M0=1.0):
    """Aki & Richards double-couple moment tensor (x north, y east, z down)."""
    ss, cs = np.sin(strike), np.cos(strike)
    sd, cd = np.sin(dip), np.cos(dip)
    s2d, c2d = np.sin(2 * dip), np.cos(2 * dip)
    s2s, c2s = np.sin(2 * strike), np.cos(2 * strike)
    sr, cr = np.sin(rake), np.cos(rake)
    Mxx = -(sd * cr * s2s + s2d * sr * ss**2)
    Mxy = sd * cr * c2s + 0.5 * s2d * sr * s2s
    Mxz = -(cd * cr * cs + c2d * sr * ss)
    Myy = sd * cr * s2s - s2d * sr * cs**2
    Myz = -(cd * cr * ss - c2d * sr * cs)
    Mzz = s2d * sr
    return M0 * np.array([[Mxx, Mxy, Mxz], [Mxy, Myy, Myz], [Mxz, Myz, Mzz]])


def p_radiation(angles, takeoff, azimuth):
    """P-wave radiation amplitude e.M.e for a ray leaving at (takeoff, azimuth)."""
    M = moment_tensor(*angles)
    e = np.array([np.sin(takeoff) * np.cos(azimuth), np.sin(takeoff) * np.sin(azimuth), np.cos(takeoff)])
    return e @ M @ e


def polarity_misfit(angles, takeoffs, azimuths, amps):
    pred = np.array([p_radiation(angles, ti, ai) for ti, ai in zip(takeoffs, azimuths)])
    return np.sum((pred - amps) ** 2)


def mt_decompose(M):
    """Eigen-decomposition of a moment tensor: scalar moment, Mw, CLVD epsilon."""
    w = np.linalg.eigvalsh(M)
    M0 = 0.5 * (np.abs(w[0]) + np.abs(w[-1]))
    Mw = 2.0 / 3.0 * (np.log10(M0) - 9.1)
    eps = -w[1] / max(abs(w[0]), abs(w[-1]))
    return {"M0": M0, "Mw": Mw, "eps": eps}


def brune_spectrum(f, omega0, fc, tstar):
    """Displacement source spectrum with whole-path attenuation exp(-pi f t*)."""
    return omega0 / (1 + (f / fc) ** 2) * np.exp(-np.pi * f * tstar)


def brune_fit_misfit(p, f, obs):
    logom, logfc, tstar = p
    pred = np.log(brune_spectrum(f, np.exp(logom), np.exp(logfc), tstar))
    return np.mean((pred - np.log(obs)) ** 2)


def q_spectral_ratio(f, A1, A2, dt):
    """Q from the slope of ln(A2/A1) against f: slope = -pi dt / Q."""
    slope, intercept = np.polyfit(f, np.log(A2 / A1), 1)
    return -np.pi * dt / slope


def b_value_aki(mags, mc, dm=0.1):
    return np.log10(np.e) / (np.mean(mags) - (mc - dm / 2))


def omori_loglik(p, times, T):
    """Modified Omori law log likelihood: rate K/(t + c)^p on [0, T]."""
    K, c, pp = p
    rate = K / (times + c) ** pp
    integral = K * ((T + c) ** (1 - pp) - c ** (1 - pp)) / (1 - pp)
    return np.sum(np.log(rate)) - integral


def ricker(t, f):
    a = (np.pi * f * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def synthetic_trace(impedance, f=25.0, dt=0.002):
    """Reflectivity from acoustic impedances convolved with a Ricker wavelet (mode='same')."""
    r = (impedance[1:] - impedance[:-1]) / (impedance[1:] + impedance[:-1])
    t = np.arange(-16, 17) * dt
    return np.convolve(r, ricker(t, f), mode="same")


def shuey_avo(theta, vp1, vs1, rho1, vp2, vs2, rho2):
    vp, vs, rho = (vp1 + vp2) / 2, (vs1 + vs2) / 2, (rho1 + rho2) / 2
    dvp, dvs, drho = vp2 - vp1, vs2 - vs1, rho2 - rho1
    R0 = 0.5 * (dvp / vp + drho / rho)
    G = 0.5 * dvp / vp - 2 * (vs / vp) ** 2 * (drho / rho + 2 * dvs / vs)
    F = 0.5 * dvp / vp
    s2 = np.sin(theta) ** 2
    return R0 + G * s2 + F * (np.tan(theta) ** 2 - s2)


def gmpe_ln_pga(M, R, a=-1.0, b=0.9, c=1.1, d=0.003, h=6.0):
    r = np.sqrt(R**2 + h**2)
    return a + b * M - c * np.log(r) - d * r


def sta_lta(x, nsta=3, nlta=10):
    """STA/LTA ratio of the energy by cumulative sums."""
    e = x**2
    cs = np.cumsum(e)
    sta = (cs[nsta:] - cs[:-nsta]) / nsta
    lta = (cs[nlta:] - cs[:-nlta]) / nlta
    n = min(len(sta), len(lta))
    return sta[-n:] / lta[-n:]


def gradient_velocity_time(z_max, v0, kgrad):
    """Vertical travel time through v(z) = v0 + k z by quad."""
    val, err = scipy.integrate.quad(lambda z: 1.0 / (v0 + kgrad * z), 0.0, z_max)
    return val


def velocity_lookup(z, z_tab, v_tab):
    return np.interp(z, z_tab, v_tab)


def vertical_time_interp(zq, z_tab, v_tab):
    f = scipy.interpolate.interp1d(z_tab, 1.0 / v_tab, kind="linear")
    zz = np.linspace(0.0, zq, 21)
    return np.trapezoid(f(zz), zz)


def grid_search_then_refine(t_obs, stations, v, grid):
    """Grid search of epicentre (argmin, not differentiable) then Geiger refinement."""
    rms = np.array([np.sqrt(np.mean((t_obs - travel_times(np.array([g[0], g[1], 5.0, 0.0]), stations, v)
                                     - np.mean(t_obs - travel_times(np.array([g[0], g[1], 5.0, 0.0]), stations, v))) ** 2))
                    for g in grid])
    best = grid[np.argmin(rms)]
    x0 = np.array([best[0], best[1], 5.0, 0.0])
    return geiger_locate(t_obs, stations, v, x0, n_iter=6)


# ======================= geophysics =======================

G_GRAV = 6.674e-11


def sphere_gz(x, x0, z0, R, drho):
    """Vertical gravity of a buried sphere (mGal) at surface points x."""
    M = 4.0 / 3.0 * np.pi * R**3 * drho
    return 1e5 * G_GRAV * M * z0 / ((x - x0) ** 2 + z0**2) ** 1.5


def cylinder_gz(x, x0, z0, R, drho):
    return 1e5 * 2 * np.pi * G_GRAV * R**2 * drho * z0 / ((x - x0) ** 2 + z0**2)


def prism_gz_2d(x, x1, x2, z1, z2, drho):
    """2D rectangular body (Talwani-style closed form with arctan2 and log)."""
    def term(xx, z):
        r2 = xx**2 + z**2
        return xx * np.log(r2) / 2 + z * np.arctan2(xx, z)
    out = np.zeros_like(x)
    for k in range(len(x)):
        a1, a2 = x1 - x[k], x2 - x[k]
        out[k] = term(a2, z2) - term(a1, z2) - term(a2, z1) + term(a1, z1)
    return 2 * G_GRAV * drho * out * 1e5


def sphere_depth_gauss_newton(obs, x, R, drho, z_init=300.0, n_iter=10):
    """Depth and position of a sphere from a profile by Gauss-Newton with a numeric-free J."""
    m = np.array([0.0, z_init])
    for _ in range(n_iter):
        dx = x - m[0]
        r2 = dx**2 + m[1] ** 2
        Mconst = 1e5 * G_GRAV * 4.0 / 3.0 * np.pi * R**3 * drho
        pred = Mconst * m[1] / r2**1.5
        J = np.empty((len(x), 2))
        J[:, 0] = Mconst * 3 * m[1] * dx / r2**2.5
        J[:, 1] = Mconst * (1 / r2**1.5 - 3 * m[1] ** 2 / r2**2.5)
        m = m + np.linalg.solve(J.T @ J, J.T @ (obs - pred))
    return m


def bouguer_correction(h, rho=2670.0):
    fa = 0.3086 * h
    slab = 2 * np.pi * G_GRAV * rho * h * 1e5
    return fa - slab


def dipole_anomaly(x, z, m, inc):
    """Total-field anomaly (nT) of a 2D line dipole with inclination inc."""
    r2 = x**2 + z**2
    Bx = 2e-7 * m * ((x**2 - z**2) * np.cos(inc) + 2 * x * z * np.sin(inc)) / r2**2
    Bz = 2e-7 * m * (2 * x * z * np.cos(inc) - (x**2 - z**2) * np.sin(inc)) / r2**2
    return 1e9 * (Bx * np.cos(inc) + Bz * np.sin(inc))


def tikhonov(G, d, lam, order=1):
    """Tikhonov regularised least squares with a first-difference roughness matrix."""
    n = G.shape[1]
    L = np.diff(np.eye(n), n=order, axis=0)
    A = G.T @ G + lam**2 * L.T @ L
    m = scipy.linalg.solve(A, G.T @ d, assume_a="pos")
    return m


def tikhonov_gcv(loglam, G, d):
    lam = np.exp(loglam)
    n = G.shape[1]
    L = np.diff(np.eye(n), axis=0)
    A = G.T @ G + lam**2 * L.T @ L
    H = G @ np.linalg.solve(A, G.T)
    r = d - H @ d
    return len(d) * np.dot(r, r) / np.trace(np.eye(len(d)) - H) ** 2


def tikhonov_cho(G, d, lam):
    L = np.diff(np.eye(G.shape[1]), axis=0)
    A = G.T @ G + lam**2 * L.T @ L
    c = scipy.linalg.cho_factor(A)
    return scipy.linalg.cho_solve(c, G.T @ d)


def haversine(lat1, lon1, lat2, lon2, R=6371.0):
    """Great-circle distance (km), angles in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def initial_bearing(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.degrees(np.arctan2(y, x)) % 360.0


def geodetic_to_ecef(lat, lon, h, a=6378137.0, f=1 / 298.257223563):
    e2 = f * (2 - f)
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    N = a / np.sqrt(1 - e2 * np.sin(phi) ** 2)
    return np.array([(N + h) * np.cos(phi) * np.cos(lam),
                     (N + h) * np.cos(phi) * np.sin(lam),
                     (N * (1 - e2) + h) * np.sin(phi)])


def airy_root(topo, rho_c=2800.0, rho_m=3300.0):
    return topo * rho_c / (rho_m - rho_c)


def halfspace_cooling(z, age_myr, Tm=1350.0, kappa=1e-6):
    t = age_myr * 3.15576e13
    return Tm * sps.erf(z / (2 * np.sqrt(kappa * t)))


def geotherm(z, T0, q0, A, k=2.5):
    """Conductive geotherm with uniform radiogenic heat production."""
    return T0 + q0 / k * z - A / (2 * k) * z**2


def mogi(x, d, dV, nu=0.25):
    """Surface uplift and radial displacement of a Mogi point source."""
    R3 = (x**2 + d**2) ** 1.5
    C = (1 - nu) * dV / np.pi
    return C * d / R3, C * x / R3


def screw_dislocation(x, s, D):
    """Interseismic surface velocity across a locked strike-slip fault (Savage-Burford)."""
    return s / np.pi * np.arctan(x / D)


def mt_apparent_resistivity(rho, h, f):
    """Layered-earth magnetotelluric impedance by the downward recursion (complex tanh)."""
    mu0 = 4e-7 * np.pi
    w = 2 * np.pi * f
    k = np.sqrt(-1j * w * mu0 / rho[-1])
    Z = 1j * w * mu0 / k
    for j in range(len(rho) - 2, -1, -1):
        kj = np.sqrt(-1j * w * mu0 / rho[j])
        Zj = 1j * w * mu0 / kj
        t = np.tanh(1j * kj * h[j])
        Z = Zj * (Z + Zj * t) / (Zj + Z * t)
    rho_a = np.abs(Z) ** 2 / (w * mu0)
    phase = np.degrees(np.angle(Z))
    return rho_a, phase


def wenner_two_layer(a, rho1, rho2, h, nterms=30):
    """Wenner apparent resistivity over two layers (image series)."""
    k = (rho2 - rho1) / (rho2 + rho1)
    s = 0.0
    for n in range(1, nterms + 1):
        s += k**n * (1 / np.sqrt(1 + (2 * n * h / a) ** 2) - 1 / np.sqrt(4 + (2 * n * h / a) ** 2))
    return rho1 * (1 + 4 * s)


def q_attenuated_amplitude(A0, f, r, v, Q):
    return A0 * np.exp(-np.pi * f * r / (v * Q)) / r


# ======================= batch 2 =======================

def muskingum_lfilter(inflow, K, X, dt=1.0):
    """Muskingum as an IIR filter: O[n] = C0 I[n] + C1 I[n-1] + C2 O[n-1], O[0] = I[0]."""
    D = 2 * K * (1 - X) + dt
    C0 = (dt - 2 * K * X) / D
    C1 = (dt + 2 * K * X) / D
    C2 = (2 * K * (1 - X) - dt) / D
    zi = scipy.signal.lfiltic([C0, C1], [1.0, -C2], y=[inflow[0]], x=[inflow[0]])
    out, _ = scipy.signal.lfilter([C0, C1], [1.0, -C2], inflow[1:], zi=zi)
    return np.concatenate([inflow[:1], out])


def recession_constant(q):
    """Master recession: k from log-linear fit of the falling limb (polyfit)."""
    t = np.arange(len(q), dtype=float)
    slope, _ = np.polyfit(t, np.log(q), 1)
    return np.exp(slope)


def nonlinear_reservoir(a, b, rain_rate=2.0, S0=1.0, T=5.0):
    """dS/dt = P - a S^b integrated with solve_ivp; final storage."""
    sol = scipy.integrate.solve_ivp(lambda t, S: rain_rate - a * S**b, (0.0, T), [S0], rtol=1e-10, atol=1e-12)
    return sol.y[0, -1]


def ogata_banks(x, t, v, D):
    """1D advection-dispersion, continuous injection: C/C0."""
    s = 2 * np.sqrt(D * t)
    return 0.5 * (sps.erfc((x - v * t) / s) + np.exp(v * x / D) * sps.erfc((x + v * t) / s))


def hantush_steady(r, Q, T, B):
    """Steady drawdown in a leaky aquifer, K0 Bessel function."""
    return Q / (2 * np.pi * T) * sps.k0(r / B)


def theis_quad(u):
    """The well function written as the integral W(u) = int_u^inf e^-y / y dy."""
    val, _ = scipy.integrate.quad(lambda y: np.exp(-y) / y, u, np.inf)
    return val


def gumbel_return_level(annual_max, T=100.0):
    """Flood frequency: Gumbel by the method of moments, the T-year flood."""
    mean, sd = np.mean(annual_max), np.std(annual_max, ddof=1)
    beta = sd * np.sqrt(6) / np.pi
    mu = mean - 0.5772 * beta
    return mu - beta * np.log(-np.log(1 - 1 / T))


def gev_return_level(params, T=np.array([10.0, 50.0, 100.0])):
    c, loc, scale = params
    return scipy.stats.genextreme.ppf(1 - 1 / T, c, loc=loc, scale=scale)


def lognormal_flood_ppf(logq):
    m, s = np.mean(logq), np.std(logq, ddof=1)
    return np.exp(scipy.stats.norm.ppf(0.99, loc=m, scale=s))


def rating_spline(h_obs, Q_tab, h_tab):
    cs = scipy.interpolate.CubicSpline(h_tab, Q_tab)
    return cs(h_obs)


def mt_principal_axes(angles):
    """P, B and T axes: eigenvectors of the moment tensor (sign fixed to point down)."""
    M = moment_tensor(*angles)
    w, V = np.linalg.eigh(M)
    V = V * np.sign(V[2])
    return w, V


def auxiliary_plane(strike, dip, rake):
    """Normal and slip vectors -> the auxiliary plane's strike and dip (np.cross, arctan2, arccos)."""
    n = np.array([-np.sin(dip) * np.sin(strike), np.sin(dip) * np.cos(strike), -np.cos(dip)])
    s = np.array([np.cos(rake) * np.cos(strike) + np.cos(dip) * np.sin(rake) * np.sin(strike),
                  np.cos(rake) * np.sin(strike) - np.cos(dip) * np.sin(rake) * np.cos(strike),
                  -np.sin(rake) * np.sin(dip)])
    b = np.cross(n, s)
    if s[2] > 0:
        s = -s
    dip2 = np.arccos(-s[2])
    strike2 = np.arctan2(-s[0], s[1])
    return np.array([strike2 % (2 * np.pi), dip2]), b


def local_magnitude(A_mm, R_km):
    return np.log10(A_mm) + 1.11 * np.log10(R_km) + 0.00189 * R_km - 2.09


def amplitude_spectrum_tstar(trace, dt, fmin=2.0, fmax=20.0):
    """t* from the slope of ln |FFT| over a band (float trace)."""
    spec = np.abs(np.fft.rfft(trace)) * dt
    f = np.fft.rfftfreq(len(trace), dt)
    band = (f >= fmin) & (f <= fmax)
    slope = np.polyfit(f[band], np.log(spec[band]), 1)[0]
    return -slope / np.pi


def envelope_peak(trace):
    env = np.abs(scipy.signal.hilbert(trace))
    return np.max(env)


def epicentral_distance_deg(lat1, lon1, lat2, lon2):
    """Angle between unit vectors, arccos of a clipped dot product."""
    def unit(lat, lon):
        la, lo = np.radians(lat), np.radians(lon)
        return np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    c = np.dot(unit(lat1, lon1), unit(lat2, lon2))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def sta_lta_f32(x, nsta=3, nlta=10):
    e = x * x
    cs = np.cumsum(e, dtype=np.float32)
    sta = (cs[nsta:] - cs[:-nsta]) / np.float32(nsta)
    lta = (cs[nlta:] - cs[:-nlta]) / np.float32(nlta)
    return sta[-len(lta):] / lta


def tsvd_inverse(G, d, k=3):
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    coef = (U[:, :k].T @ d) / s[:k]
    return Vt[:k].T @ coef


def tikhonov_scipy_lstsq(G, d, lam):
    """Tikhonov by the stacked least-squares system [G; lam I] m = [d; 0] (scipy.linalg.lstsq)."""
    n = G.shape[1]
    A = np.vstack([G, lam * np.eye(n)])
    b = np.concatenate([d, np.zeros(n)])
    m, res, rank, sv = scipy.linalg.lstsq(A, b)
    return m


def cumulative_ray(p, h, v):
    """Offsets at each interface along a downgoing ray (np.cumsum)."""
    sin_t = np.clip(p * v, 0.0, 1.0)
    dx = h * sin_t / np.sqrt(1 - sin_t**2)
    return np.cumsum(dx)


def station_corrections(residuals, station_idx, n_sta):
    """Mean residual per station with np.bincount (weights traced)."""
    s = np.bincount(station_idx, weights=residuals, minlength=n_sta)
    c = np.bincount(station_idx, minlength=n_sta)
    return s / np.maximum(c, 1)


def gw_transient_implicit(h0, S=1e-3, T=10.0, dx=10.0, dt=1.0, nsteps=5):
    """Transient 1D groundwater flow, backward Euler with scipy.linalg.solve_banded; fixed ends."""
    n = h0.shape[0]
    r = T * dt / (S * dx**2)
    ab = np.zeros((3, n))
    ab[0, 2:] = -r
    ab[1, 1:-1] = 1 + 2 * r
    ab[1, 0] = ab[1, -1] = 1.0
    ab[2, :-2] = -r
    h = h0.copy()
    for _ in range(nsteps):
        h = scipy.linalg.solve_banded((1, 1), ab, h)
    return h


def thornthwaite_pet(T_monthly, lat_factor):
    """Thornthwaite monthly PET with the heat index over positive months."""
    Tp = np.maximum(T_monthly, 0.0)
    I = np.sum((Tp / 5.0) ** 1.514)
    a = 6.75e-7 * I**3 - 7.71e-5 * I**2 + 1.792e-2 * I + 0.49239
    return 16.0 * lat_factor * (10.0 * Tp / I) ** a


# ======================= checks =======================


def assert_deriv(got, want, rtol=1e-6):
    """Derivatives to five-point accuracy, relative to the largest entry."""
    _assert_deriv(got, want, rtol=rtol, atol=1e-7 * max(1.0, float(np.max(np.abs(want)))))


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def bitwise(got, want):
    """The same result, bit for bit (type, dtype, shape and every bit, NaN included)."""
    assert type(got) is type(want), (type(got), type(want))
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True), np.max(np.abs(got - want))


def calls(tf, inputs, n=5):
    """Call ``tf`` n times on each input, interleaved (eager npfunc compiles a pull-back after a
    few calls): every call gives the first call's result bit for bit."""
    first = [tf(x) for x in inputs]
    for _ in range(n - 1):
        for x, f0 in zip(inputs, first):
            bitwise(tf(x), f0)
    return first


def jit_calls(f, inputs, n=5, rtol=1e-12):
    """One jit object called n times on each input (the first call records, the others replay):
    each result the plain program's."""
    jf = npfunc.jit(f)
    for _ in range(n):
        for x in inputs:
            got, want = jf(x), f(x)
            if isinstance(want, (tuple, dict)):
                for k in (want if isinstance(want, dict) else range(len(want))):
                    assert_same(got[k], want[k], rtol=rtol)
            else:
                assert_same(got, want, rtol=rtol)


def check_scalar(f, x, x2, xs=None, *, hess=True, jit=True, vmap=True):
    """A scalar program of one array (or 0-d) input: jit, grad, grad_and_value, jit(grad),
    vmap, vmap(grad), jit(vmap(grad)), hessian, jvp(grad) and, for 0-d inputs, grad(grad)."""
    ref = f(x)
    if jit:
        jit_calls(f, [x, x2])
    G, G2 = fd(f, x), fd(f, x2)
    g, g2 = calls(npfunc.grad(f), [x, x2])
    assert_deriv(g, G)
    assert_deriv(g2, G2)
    gv, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref)
    bitwise(gv, g)
    if jit:
        jg = npfunc.jit(npfunc.grad(f))
        for _ in range(5):
            assert_same(jg(x), g, rtol=1e-10)
            assert_same(jg(x2), g2, rtol=1e-10)
    if vmap:
        assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-12)
        want = loop(npfunc.grad(f), xs)
        assert_same(calls(npfunc.vmap(npfunc.grad(f)), [xs])[0], want, rtol=1e-10)
        if jit:
            jvg = npfunc.jit(npfunc.vmap(npfunc.grad(f)))
            for _ in range(5):
                assert_same(jvg(xs), want, rtol=1e-10)
            assert_same(npfunc.vmap(npfunc.jit(f))(xs), loop(f, xs), rtol=1e-12)
    if hess:
        H, H2 = calls(npfunc.hessian(f), [x, x2])
        assert_deriv(H, fd(npfunc.grad(f), x), rtol=1e-5)
        assert_deriv(H2, fd(npfunc.grad(f), x2), rtol=1e-5)
        t = np.linspace(-1.0, 1.0, np.size(x)).reshape(np.shape(x))
        hvp = lambda z: npfunc.jvp(npfunc.grad(f), (z,), (t,))[1]
        hv, _ = calls(hvp, [x, x2])
        assert_deriv(hv, np.tensordot(H, t, axes=np.ndim(x)), rtol=1e-9)
        if np.ndim(x) == 0:
            gg, gg2 = calls(npfunc.grad(npfunc.grad(f)), [x, x2])
            assert type(gg) is type(g)   # a gradient's type (hessian gives a 0-d array, as jacobians do)
            np.testing.assert_allclose(gg, H, rtol=1e-10)
            np.testing.assert_allclose(gg2, H2, rtol=1e-10)


def check_array(f, x, x2, xs=None, *, fwd=True, jit=True, vmap=True, rtol=1e-6):
    """An array program of one input: jit, vmap, jit(vmap), jacrev, jacfwd, jvp, vjp, vmap(jacrev)."""
    ref = f(x)
    if jit:
        jit_calls(f, [x, x2])
    if vmap:
        assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-12)
        if jit:
            assert_same(npfunc.jit(npfunc.vmap(f))(xs), loop(f, xs), rtol=1e-12)
    J, J2 = fd(f, x), fd(f, x2)
    a, b = calls(npfunc.jacrev(f), [x, x2])
    assert_deriv(a, J, rtol)
    assert_deriv(b, J2, rtol)
    t = np.linspace(-1.0, 1.0, np.size(x)).reshape(np.shape(x))
    if fwd:
        a, b = calls(npfunc.jacfwd(f), [x, x2])
        assert_deriv(a, J, rtol)
        assert_deriv(b, J2, rtol)
        y, yd = npfunc.jvp(f, (x,), (t,))
        assert_same(y, ref)
        assert_deriv(yd, np.tensordot(J, t, axes=np.ndim(x)), rtol)
    y, pull = npfunc.vjp(f, x)
    assert_same(y, ref)
    ct = np.linspace(1.0, 2.0, np.size(ref)).reshape(np.shape(ref))
    first = pull(ct)[0]
    assert_deriv(first, np.tensordot(ct, J, axes=np.ndim(ref)), rtol)
    for _ in range(4):
        bitwise(pull(ct)[0], first)
    if vmap:
        assert_same(npfunc.vmap(npfunc.jacrev(f))(xs), loop(npfunc.jacrev(f), xs), rtol=1e-10, atol=1e-14)



# ======================= hydrology tests =======================

_GA = (1.0, 11.0, 0.3)   # K (cm/h), psi (cm), dtheta


def green_ampt_F_fixed(t, K, psi, dtheta, n_iter=30):
    """The same Newton iteration with a fixed count (no tolerance exit): runs under jit and vmap."""
    pd = psi * dtheta
    F = K * t
    for _ in range(n_iter):
        F = F - (F - K * t - pd * np.log(1 + F / pd)) / (1 - pd / (pd + F))
    return F


def test_green_ampt_newton_with_tolerance_exit():
    """Derivatives follow the iterations (values are concrete); jit refuses the exit test,
    naming np.where; the fixed-count loop runs under every transform."""
    f = lambda t: green_ampt_F(t, *_GA)
    check_scalar(f, np.float64(2.0), np.float64(3.5), jit=False, vmap=False)
    gK = lambda K: green_ampt_F(2.0, K, 11.0, 0.3)
    check_scalar(gK, np.float64(1.0), np.float64(0.6), jit=False, vmap=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*argument 0 \('t'\).*np\.where"):
        npfunc.jit(f)(np.float64(2.0))
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(f)(np.array([1.0, 2.0]))
    fixed = lambda t: green_ampt_F_fixed(t, *_GA)
    np.testing.assert_allclose(fixed(np.float64(2.0)), f(np.float64(2.0)), rtol=1e-14)
    check_scalar(fixed, np.float64(2.0), np.float64(3.5), np.array([1.0, 2.0, 3.0]))
    # the infiltration rate at the cumulative depth reached: a composition of the two
    rate = lambda t: green_ampt_rate(green_ampt_F_fixed(t, *_GA), *_GA)
    check_scalar(rate, np.float64(2.0), np.float64(0.5), np.array([0.5, 1.0, 4.0]))


def test_green_ampt_brentq_root_and_type():
    f = lambda t: green_ampt_brentq(t, *_GA)
    t = np.float64(2.0)
    np.testing.assert_allclose(f(t), green_ampt_F(t, *_GA), rtol=1e-12)
    assert type(f(t)) is float
    # brentq's float comes back as an np.float64 (a float) under jit and grad_and_value
    for got in (npfunc.jit(f)(t), npfunc.grad_and_value(f)(t)[1]):
        assert isinstance(got, float) and not isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, f(t), rtol=1e-14)
    assert_deriv(npfunc.grad(f)(t), fd(f, t))
    g5 = calls(npfunc.grad(f), [t, np.float64(3.5)])
    assert_deriv(g5[1], fd(f, 3.5))
    ts = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(npfunc.vmap(f)(ts), [f(v) for v in ts], rtol=1e-12)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(ts), [npfunc.grad(f)(v) for v in ts], rtol=1e-9)
    np.testing.assert_allclose(npfunc.grad(npfunc.grad(f))(t), fd(npfunc.grad(f), t), rtol=1e-6)


def test_horton_scs_and_thornthwaite():
    tt = np.linspace(0, 3, 5)
    check_array(lambda p: horton(tt, p[0], p[1], p[2])[1], np.array([80.0, 10.0, 2.0]),
                np.array([60.0, 8.0, 1.5]), rng.uniform([50, 5, 1], [90, 12, 3], (3, 3)))
    jit_calls(lambda p: horton(tt, *p), [np.array([80.0, 10.0, 2.0]), np.array([60.0, 8.0, 1.5])])
    # SCS runoff: np.where between the branches, away from the threshold P = Ia
    check_array(lambda P: scs_runoff(P, 75.0), np.array([10.0, 30.0, 60.0, 120.0]),
                np.array([5.0, 40.0, 80.0, 100.0]), np.array([[5.0, 40.0, 80.0, 100.0], [3.0, 33.0, 66.0, 99.0]]))
    check_scalar(lambda cn: np.sum(scs_runoff(np.array([30.0, 60.0, 120.0]), cn)), np.float64(75.0),
                 np.float64(82.0), np.array([70.0, 80.0, 90.0]))
    Tm = np.array([-5.0, -2.0, 3.0, 9.0, 14.0, 18.0, 21.0, 20.0, 15.0, 9.0, 3.0, -3.0])
    lf = np.linspace(0.8, 1.2, 12)
    check_array(lambda T: thornthwaite_pet(T, lf), Tm, Tm + 1.0, Tm + rng.normal(0, 0.5, (3, 12)))


def test_scs_scalar_early_return():
    """`if P <= Ia: return 0.0` returns a Python float on the dry side: grad gives an
    np.float64 zero there (the argument's type), grad_and_value the float as returned; jit
    refuses the branch, naming np.where."""
    f = lambda P: scs_runoff_scalar(P, 75.0)
    check_scalar(f, np.float64(60.0), np.float64(90.0), jit=False, vmap=False)
    assert f(np.float64(5.0)) == 0.0 and type(f(np.float64(5.0))) is float
    g = npfunc.grad(f)(np.float64(5.0))
    assert g == 0.0 and type(g) is np.float64
    gv, v = npfunc.grad_and_value(f)(np.float64(5.0))
    assert v == 0.0 and type(v) is float   # the constant the function returned, as it is
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'P'.*np\.where"):
        npfunc.jit(f)(np.float64(60.0))


def test_penman_monteith_float64_and_float32_station_data():
    f = lambda v: penman_monteith(v[0], v[1], v[2], v[3])
    check_scalar(f, np.array([20.0, 15.0, 2.0, 1.0]), np.array([25.0, 18.0, 3.0, 1.5]),
                 rng.uniform([10, 10, 1, 0.5], [30, 20, 4, 2], (3, 4)))
    # float32 arrays of daily station data stay float32 (Python-float constants are weak)
    T = np.array([18.0, 21.5, 25.0], dtype=np.float32)
    Rn = np.array([14.0, 16.5, 19.0], dtype=np.float32)
    u2 = np.array([2.1, 1.4, 3.0], dtype=np.float32)
    vpd = np.array([0.9, 1.2, 1.6], dtype=np.float32)
    ref = penman_monteith(T, Rn, u2, vpd)
    assert ref.dtype == np.float32
    assert_same(npfunc.jit(penman_monteith)(T, Rn, u2, vpd), ref, rtol=1e-6)
    assert_same(npfunc.vmap(penman_monteith)(T, Rn, u2, vpd), ref, rtol=1e-6)
    J = npfunc.jacrev(penman_monteith)(T, Rn, u2, vpd)
    assert J.dtype == np.float32
    J64 = npfunc.jacrev(penman_monteith)(*(a.astype(np.float64) for a in (T, Rn, u2, vpd)))
    np.testing.assert_allclose(J, J64, rtol=1e-4)
    g = npfunc.grad(lambda t: np.sum(penman_monteith(t, Rn, u2, vpd)))(T)
    assert g.dtype == np.float32
    # vmap over stations with the wind speed shared (in_dims None)
    got = npfunc.vmap(penman_monteith, in_dims=(0, 0, None, 0))(T, Rn, np.float32(2.0), vpd)
    assert_same(got, np.stack([penman_monteith(T[i], Rn[i], np.float32(2.0), vpd[i]) for i in range(3)]), rtol=1e-6)


def test_degree_day_melt_float32():
    T32 = np.array([-3.0, 1.0, 4.0, 0.5, 7.5], dtype=np.float32)
    ddf = np.float32(3.0)
    m, c = degree_day_melt(T32, ddf)
    assert m.dtype == c.dtype == np.float32
    jit_calls(lambda d: degree_day_melt(T32, d), [ddf, np.float32(2.5)], rtol=1e-6)
    jit_calls(lambda t: degree_day_melt(t, ddf), [T32, T32 + np.float32(1.0)], rtol=1e-6)
    got = npfunc.vmap(degree_day_melt, in_dims=(1, None), out_dims=1)(np.stack([T32, T32 + 1], axis=1), ddf)
    want = np.stack([degree_day_melt(T32, ddf)[1], degree_day_melt(T32 + 1, ddf)[1]], axis=1)
    assert_same(got[1], want, rtol=1e-6)
    g = calls(npfunc.grad(lambda d: np.sum(degree_day_melt(T32, d)[1])), [ddf, np.float32(2.5)])
    assert type(g[0]) is np.float32
    np.testing.assert_allclose(g[0], np.sum(np.cumsum(np.maximum(T32, 0))), rtol=1e-6)
    J = npfunc.jacfwd(lambda t: degree_day_melt(t, ddf)[1])(T32)
    assert J.dtype == np.float32
    np.testing.assert_allclose(J, np.tril(np.ones((5, 5))) * 3.0 * (T32 > 0), rtol=1e-6)


_UH = np.array([0.1, 0.4, 0.3, 0.15, 0.05])


def unit_hydrograph_loop_like(rain, uh):
    """The double loop with the buffer made traced by like= (the advised fix)."""
    n, m = len(rain), len(uh)
    q = np.zeros(n + m - 1, like=rain)
    for i in range(n):
        for j in range(m):
            q[i + j] += rain[i] * uh[j]
    return q


def test_unit_hydrograph_plain_loop_matches_convolve_and_like_fix():
    """The double loop into q = np.zeros(...) (once refused under jacrev and vmap, naming
    like=) now takes the traced sums: it matches NumPy under every transform, and the like=
    fix and np.convolve agree with it."""
    rain = np.array([0.0, 5.0, 12.0, 3.0])
    check_array(lambda r: unit_hydrograph_convolve(r, _UH), rain, np.array([1.0, 2.0, 3.0, 4.0]),
                rng.uniform(0, 10, (3, 4)))
    check_array(lambda u: unit_hydrograph_convolve(rain, u), _UH, _UH[::-1].copy(), rng.uniform(0, 1, (3, 5)))
    np.testing.assert_allclose(unit_hydrograph_loop(rain, _UH), unit_hydrograph_convolve(rain, _UH), rtol=1e-14)
    rains = rng.uniform(0, 10, (3, 4))
    plain = lambda r: unit_hydrograph_loop(r, _UH)
    check_array(plain, rain, np.array([1.0, 2.0, 3.0, 4.0]), rains)
    check_array(lambda u: unit_hydrograph_loop(rain, u), _UH, _UH[::-1].copy(), rng.uniform(0, 1, (3, 5)))
    fix = lambda r: unit_hydrograph_loop_like(r, _UH)
    check_array(fix, rain, np.array([1.0, 2.0, 3.0, 4.0]), rains)
    _assert_deriv(npfunc.jacrev(plain)(rain), npfunc.jacrev(fix)(rain), rtol=1e-14, atol=0)
    assert_same(npfunc.vmap(plain)(rains), npfunc.vmap(fix)(rains), rtol=1e-14)


def test_nash_cascade_unit_hydrograph():
    t = np.linspace(0.5, 10, 6)
    for f in (lambda p: nash_uh(t, p[0], p[1]), lambda p: nash_uh_stats(t, p[0], p[1])):
        check_array(f, np.array([3.0, 1.5]), np.array([2.5, 2.0]), rng.uniform([2, 1], [4, 2], (3, 2)))
    np.testing.assert_allclose(nash_uh(t, 3.0, 1.5), nash_uh_stats(t, 3.0, 1.5), rtol=1e-13)
    # the peak time (n-1) k: d/dt of the IUH vanishes there
    peak = lambda tt: nash_uh(tt, 3.0, 1.5)
    np.testing.assert_allclose(npfunc.grad(peak)(np.float64(3.0)), 0.0, atol=1e-15)
    check_scalar(peak, np.float64(2.0), np.float64(4.5), np.array([1.0, 2.0, 5.0]))


_INFLOW = np.array([10.0, 20.0, 50.0, 80.0, 60.0, 40.0, 25.0, 15.0, 10.0])
_OBS = muskingum(_INFLOW, 2.2, 0.25)


def muskingum_like(inflow, K, X, dt=1.0):
    """Muskingum with the outflow buffer made traced from K (the refusal's advice:
    np.zeros_like(K, shape=...) since K may be a scalar)."""
    D = 2 * K * (1 - X) + dt
    C0, C1, C2 = (dt - 2 * K * X) / D, (dt + 2 * K * X) / D, (2 * K * (1 - X) - dt) / D
    out = np.zeros_like(K, shape=inflow.shape)
    out[0] = inflow[0]
    for i in range(len(inflow) - 1):
        out[i + 1] = C0 * inflow[i + 1] + C1 * inflow[i] + C2 * out[i]
    return out


def test_muskingum_routing_in_inflow():
    check_array(lambda i: muskingum(i, 2.0, 0.2), _INFLOW, _INFLOW[::-1].copy(), rng.uniform(1, 50, (3, 9)))
    # the inflow batched along axis 1 (gauges as columns)
    cols = rng.uniform(1, 50, (9, 3))
    assert_same(npfunc.vmap(lambda i: muskingum(i, 2.0, 0.2), in_dims=1, out_dims=1)(cols),
                np.stack([muskingum(cols[:, k], 2.0, 0.2) for k in range(3)], axis=1))


def test_muskingum_calibration_plain_buffer_matches_like_fix():
    """Differentiating in K and X: the plain np.empty_like(inflow) buffer (once refused,
    naming like= and zeros_like(x, shape=shape)) now takes the traced outflows: routing and
    the Nash-Sutcliffe efficiency match NumPy and differences under every transform, and the
    buffer made from K (the old fix) agrees."""
    p = np.array([2.0, 0.2])
    plain = lambda p: muskingum_params(p, _INFLOW)
    plain_eff = lambda p: nse(muskingum_params(p, _INFLOW), _OBS)
    fixed = lambda p: muskingum_like(_INFLOW, p[0], p[1])
    np.testing.assert_allclose(fixed(p), muskingum_params(p, _INFLOW), rtol=1e-14)
    ps = rng.uniform([1, 0.1], [3, 0.4], (3, 2))
    check_array(plain, p, np.array([1.5, 0.3]), ps)
    check_array(fixed, p, np.array([1.5, 0.3]), ps)
    _assert_deriv(npfunc.jacrev(plain)(p), npfunc.jacrev(fixed)(p), rtol=1e-13, atol=0)
    eff = lambda p: nse(muskingum_like(_INFLOW, p[0], p[1]), _OBS)
    ps = rng.uniform([1, 0.1], [3, 0.4], (3, 2))
    check_scalar(plain_eff, p, np.array([1.5, 0.3]), ps)
    check_scalar(eff, p, np.array([1.5, 0.3]), ps)
    _assert_deriv(npfunc.grad(plain_eff)(p), npfunc.grad(eff)(p), rtol=1e-13, atol=0)
    # a scalar K (a 0-d input) written into the plain buffer
    check_array(lambda K: muskingum(_INFLOW, K, 0.2), np.float64(2.0), np.float64(1.5), np.array([1.0, 2.0, 3.0]))
    # the routing as an IIR filter with the initial state written out (lfiltic is refused)
    def musk_lfilter_zi(p):
        K, X = p
        D = 2 * K * (1 - X) + 1.0
        C0, C1, C2 = (1.0 - 2 * K * X) / D, (1.0 + 2 * K * X) / D, (2 * K * (1 - X) - 1.0) / D
        zi = np.stack([C1 * _INFLOW[0] + C2 * _INFLOW[0]])
        out, _ = scipy.signal.lfilter(np.stack([C0, C1]), np.stack([np.float64(1.0), -C2]), _INFLOW[1:], zi=zi)
        return np.concatenate([_INFLOW[:1], out])
    np.testing.assert_allclose(musk_lfilter_zi(p), muskingum_lfilter(_INFLOW, 2.0, 0.2), rtol=1e-12)
    np.testing.assert_allclose(musk_lfilter_zi(p), fixed(p), rtol=1e-12)
    check_array(musk_lfilter_zi, p, np.array([1.5, 0.3]), rng.uniform([1, 0.1], [3, 0.4], (3, 2)))
    with pytest.raises(npfunc.errors.NpfuncError, match=r"lfiltic.*SCIPY_ARRAY_API=1"):
        npfunc.jacrev(lambda p: muskingum_lfilter(_INFLOW, p[0], p[1]))(p)


def test_linear_reservoir_list_of_states():
    rain = np.array([1.0, 5.0, 2.0, 0.0, 0.0])
    check_array(lambda k: linear_reservoir(rain, k), np.float64(3.0), np.float64(4.0), np.array([2.0, 3.0, 5.0]))
    check_array(lambda r: linear_reservoir(r, 3.0), rain, rain[::-1].copy(), rng.uniform(0, 5, (3, 5)))


_PREC = np.array([5.0, 0.0, 12.0, 3.0, 0.0, 8.0])
_TEMP = np.array([-2.0, 1.0, 3.0, -1.0, 4.0, 6.0])


def hbv_bucket_like(params, precip, temp):
    """The HBV bucket with the discharge buffer made traced (q = np.zeros(n, like=params))."""
    tt, cfmax, fc, beta, k = params
    snow, sm, suz = 0.0, 0.5 * fc, 0.0
    q = np.zeros(len(precip), like=params)
    for i in range(len(precip)):
        p, T = precip[i], temp[i]
        melt = cfmax * np.maximum(T - tt, 0.0)
        snowfall = p * (T < tt)
        snow = snow + snowfall
        melt = np.minimum(melt, snow)
        snow = snow - melt
        water = p - snowfall + melt
        recharge = water * (sm / fc) ** beta
        sm = sm + water - recharge
        suz = suz + recharge
        q[i] = k * suz
        suz = suz - q[i]
    return {"q": q, "snow": snow, "sm": sm}


def test_hbv_bucket_dict_of_results():
    """The plain q = np.zeros(n) buffer (once refused under jacrev, naming like=) takes the
    traced discharges: the dict of results matches NumPy under jit, vmap (over the parameters
    and over the forcing) and the derivative transforms, as the like=params buffer does."""
    p = np.array([0.0, 3.0, 150.0, 2.0, 0.2])
    p2 = np.array([0.5, 2.5, 120.0, 1.5, 0.3])
    ref = hbv_bucket(p, _PREC, _TEMP)
    jit_calls(lambda p: hbv_bucket(p, _PREC, _TEMP), [p, p2])
    got = hbv_bucket_like(p, _PREC, _TEMP)
    for k in ref:
        assert_same(got[k], ref[k], rtol=1e-14)
    jit_calls(lambda p: hbv_bucket_like(p, _PREC, _TEMP), [p, p2])
    ps = rng.uniform([-0.5, 2, 100, 1.5, 0.1], [0.5, 4, 200, 3, 0.3], (3, 5))
    got = npfunc.vmap(lambda p: hbv_bucket_like(p, _PREC, _TEMP))(ps)
    for k in ref:
        assert_same(got[k], np.stack([np.asarray(hbv_bucket(v, _PREC, _TEMP)[k]) for v in ps]), rtol=1e-12)
    got = npfunc.vmap(lambda p: hbv_bucket(p, _PREC, _TEMP))(ps)
    for k in ref:
        assert_same(got[k], np.stack([np.asarray(hbv_bucket(v, _PREC, _TEMP)[k]) for v in ps]), rtol=1e-12)
    check_array(lambda p: hbv_bucket_like(p, _PREC, _TEMP)["q"], p, p2, ps)
    check_scalar(lambda p: hbv_bucket_like(p, _PREC, _TEMP)["sm"], p, p2, ps)
    plain_q = lambda p: hbv_bucket(p, _PREC, _TEMP)["q"]
    check_array(plain_q, p, p2, ps)
    check_scalar(lambda p: hbv_bucket(p, _PREC, _TEMP)["sm"], p, p2, ps)
    _assert_deriv(npfunc.jacrev(plain_q)(p), npfunc.jacrev(lambda p: hbv_bucket_like(p, _PREC, _TEMP)["q"])(p),
                  rtol=1e-13, atol=0)
    # forcing batched with the parameters shared: the plain np.zeros buffer takes the batched
    # discharges; like=params is then made from a plain array (np.zeros(..., like=plain) is
    # NumPy's own array, not one that takes traced writes): refused, naming like=; the buffer
    # made like the precipitation works
    precs = np.stack([_PREC, _PREC[::-1]])
    got = npfunc.vmap(hbv_bucket, in_dims=(None, 0, None))(p, precs, _TEMP)
    for k in ref:
        assert_same(got[k], np.stack([np.asarray(hbv_bucket(p, pr, _TEMP)[k]) for pr in precs]), rtol=1e-12)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap\(f\).*create the array traced.*like=x"):
        npfunc.vmap(hbv_bucket_like, in_dims=(None, 0, None))(p, precs, _TEMP)

    def hbv_q(params, precip):
        return hbv_bucket_like(params + 0 * precip[:5], precip, _TEMP)["q"]
    got = npfunc.vmap(hbv_q, in_dims=(None, 0))(p, precs)
    assert_same(got, np.stack([hbv_bucket(p, pr, _TEMP)["q"] for pr in precs]), rtol=1e-12)


def test_baseflow_filter_clipping_branches():
    """Python ifs on each filtered value: grad follows them; jit refuses naming np.where."""
    q = np.array([3.0, 8.0, 20.0, 5.0, 2.0, 1.0, 12.0, 6.0])
    check_array(baseflow_filter, q, q * 1.1 + 0.3, jit=False, vmap=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(baseflow_filter)(q)

    def baseflow_clip(q, alpha=0.925):
        qf = np.zeros_like(q)
        for i in range(1, len(q)):
            qf[i] = np.clip(alpha * qf[i - 1] + 0.5 * (1 + alpha) * (q[i] - q[i - 1]), 0.0, q[i])
        return q - qf
    assert_same(baseflow_clip(q), baseflow_filter(q))
    check_array(baseflow_clip, q, q * 1.1 + 0.3, q * rng.uniform(0.9, 1.1, (3, 8)))


def test_recession_flow_duration_and_rating_fit():
    qr = 50 * 0.8 ** np.arange(8) * (1 + 0.01 * np.sin(np.arange(8)))
    check_scalar(recession_constant, qr, qr * 1.1, qr * rng.uniform(0.95, 1.05, (3, 8)))
    qq = np.array([3.0, 8.0, 20.0, 5.0, 2.0, 1.0, 12.0, 6.0])
    check_array(flow_duration, qq, qq * 1.1 + 0.3, rng.uniform(1, 20, (3, 8)))
    hh = np.array([0.5, 0.8, 1.2, 1.6, 2.0])
    QQ = 3.0 * (hh - 0.1) ** 1.7
    f = lambda Q: np.array(stage_discharge_fit(hh, Q))
    np.testing.assert_allclose(f(QQ), [3.0, 1.7], rtol=1e-12)
    check_array(f, QQ, QQ * 1.05, QQ * rng.uniform(0.9, 1.1, (3, 5)))


def test_nonlinear_reservoir_solve_ivp():
    f = lambda p: nonlinear_reservoir(p[0], p[1])
    x = np.array([0.5, 1.5])
    assert_deriv(npfunc.grad(f)(x), fd(f, x), rtol=1e-5)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"jit\(f\).*give t_eval"):
        npfunc.jit(f)(x)

    def with_t_eval(p, T=5.0):
        sol = scipy.integrate.solve_ivp(lambda t, S: 2.0 - p[0] * S**p[1], (0.0, T), [1.0], t_eval=[T],
                                        rtol=1e-10, atol=1e-12)
        return sol.y[0, -1]
    np.testing.assert_allclose(with_t_eval(x), f(x), rtol=1e-9)
    xs = rng.uniform([0.4, 1.2], [0.7, 1.6], (2, 2))
    np.testing.assert_allclose(npfunc.jit(with_t_eval)(x), with_t_eval(x), rtol=1e-12)
    np.testing.assert_allclose(npfunc.vmap(with_t_eval)(xs), loop(with_t_eval, xs), rtol=1e-7)
    assert_deriv(npfunc.jit(npfunc.grad(with_t_eval))(x), fd(with_t_eval, x), rtol=1e-5)


# ======================= groundwater tests =======================

_R = np.array([5.0, 10.0, 20.0, 40.0])
_T = np.array([0.1, 0.5, 1.0, 2.0])
_S_OBS = theis_drawdown(_R, _T, 500.0, 250.0, 1.5e-4)


def test_theis_drawdown_and_calibration():
    f = lambda lp: theis_drawdown(_R, _T, 500.0, np.exp(lp[0]), np.exp(lp[1]))
    x, x2 = np.log([300.0, 1e-4]), np.log([200.0, 2e-4])
    xs = np.log(rng.uniform([100, 1e-4], [400, 3e-4], (3, 2)))
    check_array(f, x, x2, xs)
    check_scalar(lambda lp: theis_misfit(lp, _R, _T, 500.0, _S_OBS), x, x2, xs)
    # the derivative in r is -2 exp(-u)/r * Q/(4 pi T), from W'(u) = -exp(-u)/u
    r = np.float64(12.0)
    g = npfunc.grad(lambda r: theis_drawdown(r, 1.0, 500.0, 300.0, 1e-4))(r)
    u = r**2 * 1e-4 / (4 * 300.0)
    np.testing.assert_allclose(g, -500.0 / (4 * np.pi * 300.0) * np.exp(-u) * 2 / r, rtol=1e-13)
    check_scalar(lambda r: theis_drawdown(r, 1.0, 500.0, 300.0, 1e-4), r, np.float64(30.0),
                 np.array([5.0, 10.0, 50.0]))
    # Cooper-Jacob approaches Theis for small u
    cj = lambda T: cooper_jacob(_R, _T, 500.0, T, 1e-4)
    check_array(cj, np.float64(300.0), np.float64(200.0), np.array([100.0, 250.0]))
    check_array(lambda r: thiem(r, 500.0, 300.0, 1000.0, 50.0), _R, _R * 2, rng.uniform(1, 100, (3, 4)))


def theis_quad_shifted(u):
    """The well function with the variable shifted, W(u) = int_0^inf e^-(u+t)/(u+t) dt."""
    val, _ = scipy.integrate.quad(lambda t: np.exp(-(u + t)) / (u + t), 0.0, np.inf)
    return val


def test_well_function_as_quad_integral():
    u = np.float64(0.1)
    np.testing.assert_allclose(theis_quad(u), sps.exp1(u), rtol=1e-10)
    assert_deriv(npfunc.grad(theis_quad)(u), -np.exp(-u) / u)
    calls(npfunc.grad(theis_quad), [u, np.float64(0.5)])
    np.testing.assert_allclose(npfunc.jit(theis_quad)(u), theis_quad(u), rtol=1e-12)
    us = np.array([0.05, 0.2, 1.0])
    with pytest.raises(npfunc.errors.NpfuncError,
                       match=r"vmap\(f\): vmap over an infinite integration limit.*quad\(lambda t: f\(a \+ t\), 0, np.inf\)"):
        npfunc.vmap(theis_quad)(us)
    # the fix the message gives
    np.testing.assert_allclose(npfunc.vmap(theis_quad_shifted)(us), [theis_quad(v) for v in us], rtol=1e-10)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(theis_quad_shifted))(us), -np.exp(-us) / us, rtol=1e-9)


def test_hantush_and_ogata_banks():
    check_array(lambda r: hantush_steady(r, 500.0, 300.0, 200.0), np.array([5.0, 50.0, 300.0]),
                np.array([10.0, 80.0, 500.0]), rng.uniform(5, 500, (3, 3)))
    check_array(lambda p: ogata_banks(np.array([1.0, 5.0, 10.0]), 10.0, p[0], p[1]), np.array([0.5, 0.8]),
                np.array([0.6, 1.0]), rng.uniform([0.4, 0.5], [0.7, 1.2], (3, 2)))


_K = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 1.0])


def gw_fd_1d_like(K, h_left=10.0, h_right=5.0, recharge=1e-3, dx=1.0):
    """The assembly with the matrix made traced (A = np.zeros(..., like=K))."""
    n = K.shape[0] - 1
    Kf = 2 * K[:-1] * K[1:] / (K[:-1] + K[1:])
    A = np.zeros((n - 1, n - 1), like=K)
    b = np.full(n - 1, -recharge * dx**2)
    for i in range(n - 1):
        A[i, i] = -(Kf[i] + Kf[i + 1])
        if i > 0:
            A[i, i - 1] = Kf[i]
        if i < n - 2:
            A[i, i + 1] = Kf[i + 1]
    b = b - np.concatenate([Kf[:1] * h_left, np.zeros(n - 3), Kf[-1:] * h_right])
    h = np.linalg.solve(A, b)
    return np.concatenate([[h_left], h, [h_right]]), -Kf[-1] * (h_right - h[-1]) / dx


def test_steady_groundwater_heterogeneous_k():
    """The tridiagonal matrix assembled into a plain A = np.zeros(...) (once refused under
    grad, naming like=): heads and the outflow match NumPy under every transform, as the
    like=K assembly does."""
    for a, b in zip(gw_fd_1d_like(_K), gw_fd_1d(_K)):
        assert_same(a, b, rtol=1e-13)
    Ks = rng.uniform(0.5, 3, (3, 6))
    check_array(lambda K: gw_fd_1d_like(K)[0], _K, _K[::-1].copy(), Ks)
    check_scalar(lambda K: gw_fd_1d_like(K)[1], _K, _K[::-1].copy(), Ks)
    check_array(lambda K: gw_fd_1d(K)[0], _K, _K[::-1].copy(), Ks)
    check_scalar(lambda K: gw_fd_1d(K)[1], _K, _K[::-1].copy(), Ks)
    _assert_deriv(npfunc.grad(lambda K: gw_fd_1d(K)[1])(_K), npfunc.grad(lambda K: gw_fd_1d_like(K)[1])(_K),
                  rtol=1e-13, atol=0)


def test_transient_groundwater_solve_banded_and_jacobi():
    h0 = np.array([10.0, 9.0, 8.5, 8.0, 7.0, 6.0, 5.0])
    check_array(gw_transient_implicit, h0, h0[::-1].copy(), h0 + rng.normal(0, 0.1, (3, 7)))
    top = np.full(5, 10.0)
    f = lambda b: gw_jacobi_2d(np.concatenate([b[None], np.zeros((4, 5))]))
    check_array(f, top, np.linspace(5, 10, 5), rng.uniform(0, 10, (3, 5)))
    # the head field's centre value in the boundary head, 2d input of the whole initial field
    g = lambda h0: gw_jacobi_2d(h0, n_iter=10)[2, 2]
    H0 = np.zeros((5, 5))
    H0[0] = 10.0
    check_scalar(g, H0, H0 + 0.5, np.stack([H0, H0 * 2, H0 + 1]), hess=False)
    h_arg = H0.copy()
    npfunc.jit(gw_jacobi_2d)(h_arg)
    assert_same(h_arg, H0)  # the copy protects the argument, under jit as in NumPy


# ======================= channels and floods =======================


def test_manning_normal_and_critical_depth():
    check_scalar(lambda y: manning_Q(y, 3.0, 1.5, 0.03, 1e-3), np.float64(1.2), np.float64(2.0),
                 np.array([0.5, 1.0, 2.0]))
    check_scalar(lambda p: manning_Q(p[0], p[1], p[2], p[3], p[4]), np.array([1.2, 3.0, 1.5, 0.03, 1e-3]),
                 np.array([2.0, 4.0, 1.0, 0.035, 2e-3]), rng.uniform([1, 2, 1, 0.02, 5e-4], [2, 4, 2, 0.04, 2e-3], (3, 5)))
    f = lambda Q: normal_depth(Q, 3.0, 1.5, 0.03, 1e-3)
    Q = np.float64(10.0)
    y = f(Q)
    np.testing.assert_allclose(manning_Q(y, 3.0, 1.5, 0.03, 1e-3), Q, rtol=1e-12)
    np.testing.assert_allclose(npfunc.jit(f)(Q), y, rtol=1e-14)
    g = calls(npfunc.grad(f), [Q, np.float64(20.0)])
    assert_deriv(g[0], fd(f, Q))
    assert_deriv(g[1], fd(f, 20.0))
    # implicit function theorem: dy/dQ = 1 / (dQ/dy)
    np.testing.assert_allclose(g[0], 1 / npfunc.grad(lambda y: manning_Q(y, 3.0, 1.5, 0.03, 1e-3))(y), rtol=1e-10)
    Qs = np.array([5.0, 10.0, 15.0])
    np.testing.assert_allclose(npfunc.vmap(f)(Qs), [f(v) for v in Qs], rtol=1e-12)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(Qs), [npfunc.grad(f)(v) for v in Qs], rtol=1e-9)
    np.testing.assert_allclose(npfunc.jit(npfunc.vmap(npfunc.grad(f)))(Qs), [npfunc.grad(f)(v) for v in Qs],
                               rtol=1e-9)
    np.testing.assert_allclose(calls(npfunc.grad(npfunc.grad(f)), [Q])[0], fd(npfunc.grad(f), Q), rtol=1e-6)
    fn = lambda n: normal_depth(10.0, 3.0, 1.5, n, 1e-3)
    assert_deriv(npfunc.grad(fn)(np.float64(0.03)), fd(fn, 0.03))
    check_scalar(critical_depth_rect, np.float64(2.0), np.float64(3.0), np.array([1.0, 2.0, 4.0]))
    check_array(lambda p: rational_peak(p[0], p[1], p[2]), np.array([0.6, 50.0, 2.5]),
                np.array([0.4, 80.0, 1.0]), rng.uniform([0.2, 10, 1], [0.9, 100, 5], (3, 3)))


_HT = np.array([0.2, 0.6, 1.0, 1.5, 2.2])
_QT = 4 * _HT**1.6
_RATING = scipy.interpolate.CubicSpline(_HT, _QT)   # a rating curve built once from the gauging table


def discharge_from_stage(h):
    """Discharge at the observed stages through the tabulated rating curve."""
    return _RATING(h)


def volume_from_stage_series(h, dt=3600.0):
    return np.trapezoid(_RATING(h), dx=dt)


def test_rating_curve_spline_built_from_plain_table_at_traced_stages():
    """Finding: SciPy's CubicSpline built from plain data and called at traced stages raised
    a raw TypeError ('a bytes-like object is required, not ReverseTracer') from its compiled
    evaluation; it now evaluates as npfunc's twin made from the spline's coefficients."""
    h = np.array([0.3, 0.9, 2.0])
    check_array(discharge_from_stage, h, np.array([0.5, 1.2, 1.8]), rng.uniform(0.25, 2.1, (3, 3)))
    assert_deriv(npfunc.jacrev(discharge_from_stage)(h), np.diag(_RATING(h, 1)), rtol=1e-12)
    check_scalar(volume_from_stage_series, np.linspace(0.3, 1.8, 6), np.linspace(1.8, 0.3, 6),
                 rng.uniform(0.25, 2.1, (3, 6)))
    check_scalar(lambda h: _RATING(h), np.float64(0.7), np.float64(1.9), np.array([0.3, 1.0, 2.1]))
    # traced table values still make the twin (routed construction)
    check_array(lambda Q: rating_spline(h, Q, _HT), _QT, _QT * 1.1, _QT * rng.uniform(0.9, 1.1, (3, 5)))
    # the other plain interpolators SciPy builds from the same table
    plain = {"pchip": scipy.interpolate.PchipInterpolator(_HT, _QT),
             "akima": scipy.interpolate.Akima1DInterpolator(_HT, _QT),
             "bspline": scipy.interpolate.make_interp_spline(_HT, _QT, k=3),
             "interp1d": scipy.interpolate.interp1d(_HT[::-1], _QT[::-1], kind="cubic"),
             "interp1d-fill": scipy.interpolate.interp1d(_HT, _QT, bounds_error=False, fill_value=(0.0, 99.0)),
             "rgi": scipy.interpolate.RegularGridInterpolator((_HT[::-1],), _QT[::-1], method="cubic_legacy"),
             "spline2": scipy.interpolate.CubicSpline(_HT, np.stack([_QT, _QT**2], axis=1), axis=0)}
    for name, obj in plain.items():
        f = (lambda z: obj(z[:, None])) if name == "rgi" else (lambda z: obj(z))
        check_array(f, h, np.array([0.5, 1.2, 1.8]), rng.uniform(0.25, 2.1, (2, 3)))
    hout = np.array([0.1, 1.0, 3.0])
    assert_same(npfunc.jit(plain["interp1d-fill"])(hout), plain["interp1d-fill"](hout))
    # SciPy's iterative fit of method="cubic" (gcrotmk) is not what an exact fit reproduces: refused
    iterative = scipy.interpolate.RegularGridInterpolator((_HT[::-1],), _QT[::-1], method="cubic")
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match="cubic_legacy"):
        npfunc.jacrev(lambda z: iterative(z[:, None]))(h)
    assert type(_RATING) is scipy.interpolate._cubic.CubicSpline   # SciPy's own object, unchanged


def test_station_field_rbf_and_kde_built_from_plain_data():
    """RBFInterpolator of station values and gaussian_kde of event depths, fitted once from
    plain data, evaluated at traced points (raw TypeError / a refusal before)."""
    sites = rng.uniform(0, 10, (8, 2))
    vals = np.sin(sites[:, 0]) + 0.3 * sites[:, 1]
    rbf = scipy.interpolate.RBFInterpolator(sites, vals)
    f = lambda q: rbf(q.reshape(-1, 2))
    check_array(f, np.array([3.0, 4.0, 6.5, 2.0]), np.array([1.0, 1.0, 5.0, 5.0]), rng.uniform(1, 9, (2, 4)))
    depths = rng.gamma(3.0, 4.0, 30)
    kde = scipy.stats.gaussian_kde(depths)
    z = np.array([5.0, 10.0, 20.0])
    for fn in (kde, kde.evaluate, kde.pdf, kde.logpdf):
        check_array(lambda q: fn(q), z, z + 1.5, rng.uniform(2, 25, (2, 3)))
    check_scalar(lambda q: np.sum(kde.logpdf(q)), z, z + 1.5, rng.uniform(2, 25, (2, 3)))


def test_nearest_station_kdtree_query_refused_and_the_fix():
    stations = rng.uniform(0, 10, (8, 2))
    tree = scipy.spatial.KDTree(stations)
    x = np.array([[3.0, 4.0], [7.0, 1.0]])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev\(f\): scipy.spatial.KDTree queried at "
                       r"traced points.*npfunc.stop_gradient"):
        npfunc.jacrev(lambda z: tree.query(z)[0])(x)

    def nearest_distance(z):
        _, i = tree.query(npfunc.stop_gradient(z))
        return np.linalg.norm(z - tree.data[i], axis=-1)
    plain = lambda z: tree.query(z)[0]
    assert_same(nearest_distance(x), plain(x))
    assert_deriv(npfunc.jacrev(nearest_distance)(x), fd(plain, x))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"vmap\(f\).*cdist"):
        npfunc.vmap(nearest_distance)(np.stack([x, x + 1]))


def test_flood_frequency_gumbel_lognormal_gev():
    am = np.array([120.0, 95.0, 210.0, 150.0, 180.0, 101.0, 133.0, 160.0])
    check_scalar(gumbel_return_level, am, am * 1.1 + 3, am * rng.uniform(0.9, 1.1, (3, 8)))
    check_scalar(lognormal_flood_ppf, np.log(am), np.log(am * 1.1), np.log(am * rng.uniform(0.9, 1.1, (3, 8))))
    p = np.array([-0.1, 100.0, 30.0])
    with pytest.raises(npfunc.errors.NpfuncError, match=r"jacrev\(f\).*genextreme has no npfunc twin"):
        npfunc.jacrev(gev_return_level)(p)

    def gev_formula(params, T=np.array([10.0, 50.0, 100.0])):
        c, loc, scale = params
        y = -np.log(1 - 1 / T)
        return loc + scale * (1 - y**c) / c
    np.testing.assert_allclose(gev_formula(p), gev_return_level(p), rtol=1e-12)
    check_array(gev_formula, p, np.array([0.1, 120.0, 25.0]), rng.uniform([-0.2, 90, 20], [-0.05, 130, 40], (3, 3)))


# ======================= seismology tests =======================

_ST = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 12.0, 0.0], [9.0, 11.0, 0.0], [5.0, -6.0, 0.0]])
_SRC = np.array([4.0, 5.0, 8.0, 0.5])
_TOBS = travel_times(_SRC, _ST, 6.0)
_X0 = np.array([5.0, 5.0, 5.0, 0.0])


def test_travel_times_and_geiger_location():
    check_array(lambda s: travel_times(s, _ST, 6.0), _SRC, _SRC + 0.3, _SRC + rng.normal(size=(3, 4)))
    f = lambda t: geiger_locate(t, _ST, 6.0, _X0)
    np.testing.assert_allclose(f(_TOBS), _SRC, rtol=1e-10)
    check_array(f, _TOBS, _TOBS + 0.01, _TOBS + rng.normal(0, 0.01, (3, 5)))
    # at convergence the location's sensitivity to the picks is the least-squares pseudo-inverse
    d = np.linalg.norm(_ST - _SRC[:3], axis=1)
    G = np.column_stack([(_SRC[:3] - _ST) / (6.0 * d[:, None]), np.ones(5)])
    np.testing.assert_allclose(npfunc.jacrev(f)(_TOBS), np.linalg.pinv(G), rtol=1e-8, atol=1e-12)
    # the velocity, a shared scalar, batched with in_dims None; the picks along axis 1
    Ts = (_TOBS[:, None] + rng.normal(0, 0.01, (5, 3)))
    assert_same(npfunc.vmap(geiger_locate, in_dims=(1, None, None, None))(Ts, _ST, 6.0, _X0),
                np.stack([geiger_locate(Ts[:, k], _ST, 6.0, _X0) for k in range(3)]), rtol=1e-10)
    # the location's sensitivity to the velocity
    fv = lambda v: geiger_locate(_TOBS, _ST, v, _X0)
    check_array(fv, np.float64(6.0), np.float64(5.5), np.array([5.8, 6.0, 6.3]))


def geiger_locate_fixed(t_obs, stations, v, x0, n_iter=8):
    """The lstsq version with m = m + dm and no tolerance exit."""
    m = np.array(x0, dtype=float)
    for _ in range(n_iter):
        d = np.linalg.norm(stations - m[:3], axis=1)
        r = t_obs - (m[3] + d / v)
        G = np.concatenate([(m[:3] - stations) / (v * d[:, None]), np.ones((len(d), 1))], axis=1)
        m = m + np.linalg.lstsq(G, r, rcond=None)[0]
    return m


def test_geiger_lstsq_inplace_update_refused_and_the_fix():
    f = lambda t: geiger_locate_lstsq(t, _ST, 6.0, _X0, tol=0.0)
    with pytest.raises(npfunc.errors.UnsupportedOperationError,
                       match=r"jacrev\(f\): x \+= y .*writes a traced value into a plain ndarray.*x = x \+ y"):
        npfunc.jacrev(f)(_TOBS)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap\(f\): x \+= y"):
        npfunc.vmap(f)(np.stack([_TOBS, _TOBS]))
    g = lambda t: geiger_locate_fixed(t, _ST, 6.0, _X0)
    np.testing.assert_allclose(g(_TOBS), f(_TOBS), rtol=1e-12)
    check_array(g, _TOBS, _TOBS + 0.01, _TOBS + rng.normal(0, 0.01, (3, 5)))


def test_grid_search_then_geiger():
    """argmin over a grid picks the start (no derivative); the refinement is differentiable
    under grad; jit refuses indexing the plain grid with the traced argmin, naming like=."""
    grid = np.array([[gx, gy] for gx in np.linspace(0, 10, 4) for gy in np.linspace(0, 10, 4)])
    f = lambda t: grid_search_then_refine(t, _ST, 6.0, grid)
    np.testing.assert_allclose(f(_TOBS), _SRC, rtol=1e-9)
    check_array(f, _TOBS, _TOBS + 0.01, jit=False, vmap=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.asarray\(table, like=i\)"):
        npfunc.jit(f)(_TOBS)


_H = np.array([1.0, 2.0, 3.0])
_V = np.array([2.0, 3.0, 4.5])


def test_layered_rays_snell_and_two_point_tracing():
    check_array(lambda p: np.array(layered_offset_time(p, _H, _V)), np.float64(0.1), np.float64(0.15),
                np.array([0.05, 0.1, 0.2]))
    check_array(lambda p: cumulative_ray(p, _H, _V), np.float64(0.1), np.float64(0.15), np.array([0.05, 0.1, 0.2]))
    f = lambda x: two_point_ray(x, _H, _V)
    x = np.float64(5.0)
    np.testing.assert_allclose(npfunc.jit(f)(x), f(x), rtol=1e-14)
    g = calls(npfunc.grad(f), [x, np.float64(8.0)])
    assert_deriv(g[0], fd(f, x))
    # dT/dX is the ray parameter (slowness along the surface)
    p = scipy.optimize.brentq(lambda q: layered_offset_time(q, _H, _V)[0] - x, 0.0, 1 / 4.5 * (1 - 1e-9), xtol=1e-15)
    np.testing.assert_allclose(g[0], p, rtol=1e-10)
    np.testing.assert_allclose(calls(npfunc.grad(npfunc.grad(f)), [x])[0], fd(npfunc.grad(f), x), rtol=1e-6)
    xs = np.array([3.0, 5.0, 9.0])
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(f))(xs), [npfunc.grad(f)(v) for v in xs], rtol=1e-9)
    fv = lambda v: two_point_ray(5.0, _H, v)
    assert_deriv(npfunc.grad(fv)(_V), fd(fv, _V))
    assert_deriv(npfunc.hessian(fv)(_V), fd(npfunc.grad(fv), _V), rtol=1e-5)
    # Snell angles through the stack, sub-critical (no clipping active)
    check_array(lambda th: snell_angles(th, _V), np.float64(0.2), np.float64(0.3), np.array([0.1, 0.2, 0.3]))


def test_snell_clipped_arcsin_past_critical():
    """Past the critical angle np.clip holds the sine at 1: reverse mode gives the clip's exact 0
    (with a 'divide by zero' warning from arcsin's rule at 1), forward mode 0 * inf = NaN, as
    docs/conventions.md (clip) says."""
    f = lambda th: snell_angles(th, _V)
    th = np.float64(0.5)   # sin(0.5) / 2 * 4.5 > 1 in the last layer
    assert f(th)[2] == np.pi / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        Jr = npfunc.jacrev(f)(th)
        Jf = npfunc.jacfwd(f)(th)
    assert_deriv(Jr, fd(f, th))
    assert Jr[2] == 0.0 and np.isnan(Jf[2])
    np.testing.assert_allclose(Jf[:2], Jr[:2], rtol=1e-14)


def test_head_waves_first_arrivals_nmo_dix():
    xs = np.array([5.0, 10.0, 20.0])
    check_array(lambda v: head_wave_time(xs, 2.0, v[0], v[1]), np.array([2.0, 4.0]), np.array([2.5, 5.0]),
                rng.uniform([1.5, 4], [2.5, 5], (3, 2)))
    # crossover at x = 2 h sqrt((v2+v1)/(v2-v1)) = 6.93 km for h=2, v1=2, v2=4: away from it
    check_array(lambda x: first_arrival(x, 2.0, 2.0, 4.0), np.array([1.0, 5.0, 10.0, 20.0]),
                np.array([2.0, 6.0, 12.0, 30.0]), np.array([[1.0, 3.0, 9.0, 15.0], [2.0, 4.0, 8.0, 25.0]]))
    xo = np.linspace(0, 2, 5)
    check_array(lambda v: nmo_time(xo, 1.0, v), np.float64(2.0), np.float64(2.5), np.array([1.5, 2.0]))
    t0s = np.array([0.5, 1.0, 1.6, 2.0])
    vr = np.array([1.5, 2.0, 2.4, 2.7])
    check_array(lambda v: dix_interval(t0s, v), vr, vr + 0.1, vr + rng.uniform(0, 0.1, (3, 4)))


_ANG = np.array([0.6, 0.8, 1.2])   # strike, dip, rake (radians)


def test_moment_tensor_and_radiation_pattern():
    check_array(lambda a: moment_tensor(*a), _ANG, _ANG + 0.1, _ANG + rng.normal(0, 0.1, (3, 3)))
    M = moment_tensor(*_ANG)
    np.testing.assert_allclose(np.trace(M), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.linalg.det(M), 0.0, atol=1e-15)   # a double couple
    check_scalar(lambda a: p_radiation(a, 0.7, 1.1), _ANG, _ANG + 0.1, _ANG + rng.normal(0, 0.1, (3, 3)))
    # the pattern over a fan of rays, vmapped over take-off and azimuth with the mechanism shared
    tk = np.linspace(0.2, 1.4, 5)
    az = np.linspace(0.0, 5.0, 5)
    got = npfunc.vmap(p_radiation, in_dims=(None, 0, 0))(_ANG, tk, az)
    assert_same(got, np.stack([p_radiation(_ANG, a, b) for a, b in zip(tk, az)]), rtol=1e-12)
    J = npfunc.jacfwd(lambda a: npfunc.vmap(p_radiation, in_dims=(None, 0, 0))(a, tk, az))(_ANG)
    assert_deriv(J, fd(lambda a: np.array([p_radiation(a, x, y) for x, y in zip(tk, az)]), _ANG))
    # the misfit of a mechanism to observed P amplitudes
    amps = np.array([p_radiation(np.array([0.5, 0.9, 1.0]), a, b) for a, b in zip(tk, az)])
    check_scalar(lambda a: polarity_misfit(a, tk, az, amps), _ANG, _ANG + 0.1, _ANG + rng.normal(0, 0.1, (2, 3)))


def test_moment_tensor_decomposition():
    Mt = moment_tensor(0.6, 0.8, 1.2, 1e17) + np.diag([1e15, 2e15, -5e14])
    f = lambda M: mt_decompose(M)["Mw"]
    ref = mt_decompose(Mt)
    assert type(ref["Mw"]) is np.float64 and type(ref["eps"]) is np.float64
    M1 = Mt / 1e17
    for key in ("Mw", "eps"):
        g = lambda M: mt_decompose(M * 1e17)[key]
        assert_deriv(npfunc.grad(g)(M1), fd(g, M1))
        calls(npfunc.grad(g), [M1, M1 * 1.1])
    got = npfunc.grad_and_value(lambda M: mt_decompose(M)["Mw"])(Mt)[1]
    assert_same(got, ref["Mw"])
    # Python's max of two traced magnitudes: jit refuses, naming np.where
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*'M'.*np\.where"):
        npfunc.jit(f)(Mt)
    # principal axes by eigh, the eigenvector signs fixed by np.sign
    check_array(lambda a: mt_principal_axes(a)[0], _ANG, _ANG + 0.1, _ANG + rng.normal(0, 0.1, (3, 3)))
    check_array(lambda a: mt_principal_axes(a)[1], _ANG, _ANG + 0.1, _ANG + rng.normal(0, 0.1, (3, 3)))


def test_auxiliary_plane_branch():
    f = lambda a: auxiliary_plane(*a)[0]
    check_array(f, _ANG, _ANG + 0.1, jit=False, vmap=False)
    check_array(lambda a: auxiliary_plane(*a)[1], _ANG, _ANG + 0.1, jit=False, vmap=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(f)(_ANG)


_FF = np.logspace(-1, 1.3, 8)


def test_source_spectra_attenuation_and_q():
    check_array(lambda p: brune_spectrum(_FF, p[0], p[1], p[2]), np.array([1.0, 2.0, 0.02]),
                np.array([1.5, 3.0, 0.03]), rng.uniform([0.5, 1, 0.01], [2, 4, 0.04], (3, 3)))
    obs = brune_spectrum(_FF, 1.2, 2.5, 0.025)
    check_scalar(lambda p: brune_fit_misfit(p, _FF, obs), np.array([0.0, 1.0, 0.02]), np.array([0.1, 0.8, 0.03]),
                 rng.uniform([0, 0.5, 0.01], [0.3, 1.2, 0.04], (3, 3)))
    A1 = np.exp(-0.01 * _FF)
    f = lambda A2: q_spectral_ratio(_FF, A1, A2, 2.0)
    np.testing.assert_allclose(f(np.exp(-0.05 * _FF)), np.pi * 2.0 / 0.04, rtol=1e-12)
    check_scalar(f, np.exp(-0.05 * _FF), np.exp(-0.04 * _FF) * 1.01, np.exp(-0.05 * _FF) * rng.uniform(0.95, 1.05, (3, 8)))
    check_array(lambda Q: q_attenuated_amplitude(1.0, np.array([1.0, 5.0, 10.0]), 20.0, 3.5, Q), np.float64(200.0),
                np.float64(100.0), np.array([50.0, 300.0]))


def test_statistical_seismology():
    mags = np.array([2.1, 2.5, 3.0, 2.2, 2.8, 4.1, 2.3])
    check_scalar(lambda m: b_value_aki(m, 2.0), mags, mags + 0.1, mags + rng.uniform(0, 0.2, (3, 7)))
    times = np.array([0.1, 0.3, 0.5, 1.2, 2.5, 5.0, 9.0])
    check_scalar(lambda p: omori_loglik(p, times, 10.0), np.array([5.0, 0.1, 1.1]), np.array([6.0, 0.2, 1.2]),
                 rng.uniform([4, 0.05, 1.05], [7, 0.3, 1.3], (3, 3)))
    check_array(lambda R: gmpe_ln_pga(6.5, R), np.array([5.0, 20.0, 80.0]), np.array([10.0, 30.0, 100.0]),
                rng.uniform(1, 100, (3, 3)))
    check_array(lambda A: local_magnitude(A, np.array([20.0, 50.0, 100.0])), np.array([0.5, 2.0, 0.1]),
                np.array([1.0, 3.0, 0.2]), rng.uniform(0.1, 3, (3, 3)))
    sidx = np.array([0, 1, 1, 2, 0, 2, 2])
    check_array(lambda r: station_corrections(r, sidx, 4), rng.normal(size=7), rng.normal(size=7),
                rng.normal(size=(3, 7)))


_IMP = np.array([4e6, 5e6, 4.5e6, 7e6, 6e6, 8e6])
_TT = np.arange(64) * 0.01
_TRC = np.exp(-((_TT - 0.3) / 0.05) ** 2) * np.sin(2 * np.pi * 8 * _TT) + 0.1 * np.exp(-_TT)


def test_synthetic_traces_and_avo():
    imp = _IMP / 1e6
    check_array(synthetic_trace, imp, imp * np.array([1, 1.1, 0.9, 1, 1.05, 1]), imp * rng.uniform(0.9, 1.1, (3, 6)))
    assert_same(synthetic_trace(_IMP), synthetic_trace(imp), rtol=1e-12)
    check_array(lambda f: ricker(np.linspace(-0.05, 0.05, 7), f), np.float64(25.0), np.float64(30.0),
                np.array([20.0, 30.0]))
    th = np.radians(np.array([0.0, 10.0, 20.0, 30.0]))
    props = np.array([3.0, 1.5, 2.4, 2.8, 1.6, 2.3])
    check_array(lambda p: shuey_avo(th, *p), props, props[::-1].copy(), props * rng.uniform(0.95, 1.05, (3, 6)))
    # angle gathers batched along axis 1 with the properties shared
    ths = np.stack([th, th * 0.5], axis=1)
    assert_same(npfunc.vmap(shuey_avo, in_dims=(1,) + (None,) * 6)(ths, *props),
                np.stack([shuey_avo(ths[:, k], *props) for k in range(2)]))


def test_sta_lta_float64_and_float32():
    tr = np.sin(np.linspace(0, 6, 20)) * np.linspace(0.2, 2, 20)
    check_array(sta_lta, tr, tr[::-1].copy(), tr + rng.normal(0, 0.1, (3, 20)))
    x32 = (_TRC[:20] + 0.2).astype(np.float32)
    ref = sta_lta_f32(x32)
    assert ref.dtype == np.float32
    jit_calls(sta_lta_f32, [x32, x32 * np.float32(2.0)], rtol=1e-6)
    assert_same(npfunc.vmap(sta_lta_f32)(np.stack([x32, x32 * 2])), np.stack([ref, sta_lta_f32(x32 * 2)]), rtol=1e-6)
    for J in (npfunc.jacrev(sta_lta_f32)(x32), npfunc.jacfwd(sta_lta_f32)(x32)):
        assert J.dtype == np.float32
        np.testing.assert_allclose(J, npfunc.jacrev(sta_lta_f32)(x32.astype(np.float64)), rtol=2e-4, atol=1e-5)


def test_spectral_t_star_and_envelope():
    check_scalar(lambda tr: amplitude_spectrum_tstar(tr, 0.01), _TRC, _TRC * 1.1 + 0.01 * np.cos(_TT),
                 _TRC + rng.normal(0, 0.01, (3, 64)), hess=False)
    check_scalar(envelope_peak, _TRC, _TRC * 1.1, _TRC + rng.normal(0, 0.01, (3, 64)), hess=False)


def test_travel_time_in_gradient_medium_and_tables():
    f = lambda k: gradient_velocity_time(10.0, 2.0, k)
    k = np.float64(0.3)
    np.testing.assert_allclose(f(k), np.log1p(0.3 * 10.0 / 2.0) / 0.3, rtol=1e-12)
    g = calls(npfunc.grad(f), [k, np.float64(0.5)])
    assert_deriv(g[0], fd(f, k))
    np.testing.assert_allclose(npfunc.vmap(f)(np.array([0.1, 0.3])), [f(0.1), f(0.3)], rtol=1e-10)
    zt = np.array([0.0, 2.0, 5.0, 10.0])
    vt = np.array([2.0, 3.0, 4.5, 6.0])
    check_array(lambda z: velocity_lookup(z, zt, vt), np.array([1.0, 3.0, 7.0]), np.array([0.5, 4.0, 9.0]),
                rng.uniform(0.1, 9.9, (3, 3)))
    check_array(lambda v: velocity_lookup(np.array([1.0, 3.0, 7.0]), zt, v), vt, vt * 1.1,
                vt * rng.uniform(0.9, 1.1, (3, 4)))
    check_scalar(lambda v: vertical_time_interp(8.0, zt, v), vt, vt * 1.1, vt * rng.uniform(0.9, 1.1, (3, 4)))


def demean_inplace(trace):
    """Remove the mean in place (the caller's trace changes) and return the peak amplitude."""
    trace -= trace.mean()
    return np.max(np.abs(trace))


def taper_inplace(trace, frac=0.2):
    """Cosine taper applied to the ends of the caller's trace, returned."""
    m = int(frac * len(trace))
    w = 0.5 * (1 - np.cos(np.pi * np.arange(m) / m))
    trace[:m] *= w
    trace[-m:] *= w[::-1]
    return trace


def test_traces_updated_in_place():
    tr = np.sin(np.linspace(0, 5, 10)) + 0.3
    want_arg = tr.copy()
    want = demean_inplace(want_arg)
    for name, t in (("jit", npfunc.jit), ("grad", npfunc.grad), ("functionalize", npfunc.functionalize)):
        a = tr.copy()
        got = t(demean_inplace)(a)
        assert_same(a, want_arg)   # the side effect NumPy has
        if name != "grad":
            assert_same(got, want)
    a = np.stack([tr, 2 * tr])
    wa = a.copy()
    want = np.stack([demean_inplace(r) for r in wa])
    assert_same(npfunc.vmap(demean_inplace)(a), want)
    assert_same(a, wa)
    a = tr.copy()
    wa = tr.copy()
    want = taper_inplace(wa)
    got = npfunc.jit(taper_inplace)(a)
    assert got is a and np.array_equal(a, wa)   # returns the argument itself, as NumPy does
    a = tr.copy()
    J = npfunc.jacrev(taper_inplace)(a)
    assert_same(a, wa)
    assert_deriv(J, fd(lambda t: taper_inplace(t.copy()), tr))


# ======================= geophysics tests =======================

_XS = np.linspace(-500, 500, 7)


def sphere_gauss_newton_like(obs, x, R, drho, z_init=300.0, n_iter=10):
    """Gauss-Newton with the Jacobian built by np.stack (instead of filling np.empty columns)."""
    m = np.array([0.0, z_init])
    Mconst = 1e5 * G_GRAV * 4.0 / 3.0 * np.pi * R**3 * drho
    for _ in range(n_iter):
        dx = x - m[0]
        r2 = dx**2 + m[1] ** 2
        pred = Mconst * m[1] / r2**1.5
        J = np.stack([Mconst * 3 * m[1] * dx / r2**2.5, Mconst * (1 / r2**1.5 - 3 * m[1] ** 2 / r2**2.5)], axis=1)
        m = m + np.linalg.solve(J.T @ J, J.T @ (obs - pred))
    return m


def test_gravity_forward_models():
    check_array(lambda p: sphere_gz(_XS, p[0], p[1], 100.0, 500.0), np.array([0.0, 200.0]), np.array([50.0, 250.0]),
                rng.uniform([-50, 150], [50, 300], (3, 2)))
    check_array(lambda p: cylinder_gz(_XS, p[0], p[1], 100.0, 500.0), np.array([0.0, 200.0]),
                np.array([50.0, 250.0]), rng.uniform([-50, 150], [50, 300], (3, 2)))
    check_array(lambda x: prism_gz_2d(x, -100.0, 100.0, 50.0, 150.0, 400.0), _XS, _XS + 30.0,
                _XS + rng.normal(0, 20, (3, 7)))
    # in the body's corners the buffer np.zeros_like(x) of the plain stations (once refused,
    # naming like=) takes the traced values
    corners = np.array([-100.0, 100.0, 50.0, 150.0])
    check_array(lambda p: prism_gz_2d(_XS, p[0], p[1], p[2], p[3], 400.0), corners,
                corners + np.array([10.0, -10.0, 5.0, 20.0]), corners + rng.normal(0, 5, (3, 4)))
    check_array(bouguer_correction, np.array([100.0, 500.0, 1200.0]), np.array([50.0, 400.0, 900.0]),
                rng.uniform(0, 1000, (3, 3)))


def test_sphere_depth_gauss_newton():
    obs = sphere_gz(_XS, 20.0, 180.0, 100.0, 500.0)
    f = lambda o: sphere_depth_gauss_newton(o, _XS, 100.0, 500.0, z_init=150.0)
    np.testing.assert_allclose(f(obs), [20.0, 180.0], rtol=1e-9)
    # the Jacobian's columns written into a plain J = np.empty(...) (once refused under
    # jacrev, naming like=): the plain program under every transform, as the np.stack form
    g = lambda o: sphere_gauss_newton_like(o, _XS, 100.0, 500.0, z_init=150.0)
    assert_same(g(obs), f(obs), rtol=1e-12)
    obs_s = obs * rng.uniform(0.98, 1.02, (3, 7))
    check_array(g, obs, obs * 1.02, obs_s)
    check_array(f, obs, obs * 1.02, obs_s)
    _assert_deriv(npfunc.jacrev(f)(obs), npfunc.jacrev(g)(obs), rtol=1e-13, atol=0)


def test_magnetic_dipole_and_mt_soundings():
    check_array(lambda p: dipole_anomaly(_XS, p[0], 1e3, p[1]), np.array([100.0, 1.0]), np.array([150.0, 1.2]),
                rng.uniform([80, 0.5], [200, 1.3], (3, 2)))
    rho = np.array([100.0, 10.0, 1000.0])
    h = np.array([500.0, 1000.0])
    lr = np.log(rho)
    f = lambda lr: mt_apparent_resistivity(np.exp(lr), h, 1.0)[0]
    check_scalar(f, lr, lr + 0.2, lr + rng.normal(0, 0.2, (3, 3)))
    check_scalar(lambda lr: mt_apparent_resistivity(np.exp(lr), h, 1.0)[1], lr, lr + 0.2,
                 lr + rng.normal(0, 0.2, (3, 3)))
    # a half-space: rho_a = rho, phase 45 degrees
    ra, ph = mt_apparent_resistivity(np.array([50.0, 50.0]), np.array([300.0]), 2.0)
    np.testing.assert_allclose([ra, ph], [50.0, 135.0], rtol=1e-12)   # (the e^{-i omega t} convention's 45)
    lf = np.log(np.array([0.1, 1.0, 10.0]))
    g = lambda lf: np.array(mt_apparent_resistivity(rho, h, np.exp(lf)))
    check_array(g, np.float64(0.0), np.float64(-1.0), lf)
    check_array(lambda a: wenner_two_layer(a, 100.0, 20.0, 5.0), np.array([1.0, 5.0, 20.0]),
                np.array([2.0, 10.0, 40.0]), rng.uniform(1, 40, (3, 3)))
    check_scalar(lambda p: wenner_two_layer(10.0, p[0], p[1], p[2]), np.array([100.0, 20.0, 5.0]),
                 np.array([80.0, 30.0, 8.0]), rng.uniform([50, 10, 2], [150, 50, 10], (3, 3)))


_GM = rng.normal(size=(8, 5))
_D = rng.normal(size=8)


def test_tikhonov_inversions():
    check_array(lambda d: tikhonov(_GM, d, 0.5), _D, _D + 0.1, _D + rng.normal(0, 0.1, (3, 8)))
    check_array(lambda l: tikhonov(_GM, _D, l), np.float64(0.5), np.float64(0.8), np.array([0.3, 0.5, 1.0]))
    check_scalar(lambda G: np.sum(tikhonov(G, _D, 0.5) ** 2), _GM, _GM + 0.1, _GM + rng.normal(0, 0.1, (3, 8, 5)))
    check_array(lambda l: tikhonov_cho(_GM, _D, l), np.float64(0.5), np.float64(0.8), np.array([0.3, 0.5, 1.0]))
    np.testing.assert_allclose(tikhonov_cho(_GM, _D, 0.5), tikhonov(_GM, _D, 0.5), rtol=1e-12)
    check_scalar(lambda l: tikhonov_gcv(l, _GM, _D), np.float64(-0.5), np.float64(0.2), np.array([-1.0, 0.0, 0.5]))
    check_array(lambda l: tikhonov_scipy_lstsq(_GM, _D, l), np.float64(0.5), np.float64(0.8),
                np.array([0.3, 0.5, 1.0]))
    check_array(lambda d: tikhonov_scipy_lstsq(_GM, d, 0.5), _D, _D + 0.1, _D + rng.normal(0, 0.1, (3, 8)))
    # the data batched along axis 1 (one inversion per survey column), lambda shared
    Ds = _D[:, None] + rng.normal(0, 0.1, (8, 3))
    assert_same(npfunc.vmap(tikhonov, in_dims=(None, 1, None))(_GM, Ds, 0.5),
                np.stack([tikhonov(_GM, Ds[:, k], 0.5) for k in range(3)]), rtol=1e-10)
    check_array(lambda d: tsvd_inverse(_GM, d), _D, _D + 0.1, _D + rng.normal(0, 0.1, (3, 8)))
    check_scalar(lambda G: np.sum(tsvd_inverse(G, _D)), _GM, _GM + 0.05, _GM + rng.normal(0, 0.05, (3, 8, 5)),
                 hess=False)


def test_geodesy():
    check_scalar(lambda p: haversine(p[0], p[1], 35.0, 139.0), np.array([40.0, -120.0]), np.array([-33.0, 151.0]),
                 rng.uniform([-60, -180], [60, 180], (3, 2)))
    check_array(lambda lat: haversine(lat, np.array([10.0, 20.0, 30.0]), 35.0, 139.0), np.array([40.0, 0.0, -20.0]),
                np.array([41.0, 5.0, -25.0]), rng.uniform(-60, 60, (3, 3)))
    check_scalar(lambda p: epicentral_distance_deg(p[0], p[1], 35.0, 139.0), np.array([40.0, -120.0]),
                 np.array([-33.0, 151.0]), rng.uniform([-60, -180], [60, 180], (3, 2)))
    np.testing.assert_allclose(haversine(40.0, -120.0, 35.0, 139.0) / 6371.0,
                               np.radians(epicentral_distance_deg(40.0, -120.0, 35.0, 139.0)), rtol=1e-10)
    check_scalar(lambda p: initial_bearing(p[0], p[1], 35.0, 139.0), np.array([40.0, -120.0]),
                 np.array([-33.0, 151.0]), rng.uniform([-60, -180], [60, 180], (3, 2)))
    # distances from many events to one station: vmap with the station shared (in_dims None)
    ev = rng.uniform([-60, -180], [60, 180], (4, 2))
    assert_same(npfunc.vmap(haversine, in_dims=(0, 0, None, None))(ev[:, 0], ev[:, 1], 35.0, 139.0),
                haversine(ev[:, 0], ev[:, 1], 35.0, 139.0), rtol=1e-12)
    ecef = lambda p: geodetic_to_ecef(p[0], p[1], p[2], a=6378.137)   # km
    check_array(ecef, np.array([40.0, -120.0, 0.1]), np.array([-33.0, 151.0, 0.02]),
                rng.uniform([-60, -180, 0], [60, 180, 1], (3, 3)))


def test_lithosphere_and_deformation():
    check_array(airy_root, np.array([1000.0, 3000.0]), np.array([500.0, 2000.0]), rng.uniform(0, 4000, (3, 2)))
    zz = np.array([1e3, 1e4, 5e4])
    check_array(lambda a: halfspace_cooling(zz, a), np.float64(20.0), np.float64(50.0), np.array([10.0, 30.0, 80.0]))
    check_array(lambda p: geotherm(np.array([0.0, 10.0, 30.0]), p[0], p[1], p[2]), np.array([10.0, 60.0, 1.0]),
                np.array([15.0, 70.0, 2.0]), rng.uniform([5, 50, 0.5], [20, 80, 2], (3, 3)))
    mogi_uz_ur = lambda p: np.stack(mogi(np.array([0.0, 1.0, 3.0]), p[0], p[1]))
    check_array(mogi_uz_ur, np.array([2.0, 1e-3]), np.array([3.0, 2e-3]), rng.uniform([1, 1e-4], [4, 1e-3], (3, 2)))
    check_array(lambda p: screw_dislocation(np.array([-20.0, 0.0, 5.0, 50.0]), p[0], p[1]), np.array([30.0, 15.0]),
                np.array([35.0, 10.0]), rng.uniform([20, 5], [40, 20], (3, 2)))



# ======================= linearize, checkpoint, custom_vjp, in-place arguments =======================


def gw_explicit_step(h, r=0.4):
    """One explicit step of transient 1D groundwater flow, ends held fixed."""
    hn = h.copy()
    hn[1:-1] = h[1:-1] + r * (h[2:] - 2 * h[1:-1] + h[:-2])
    return hn


def gw_explicit_energy(h0, n=10, checkpointed=False):
    step = npfunc.checkpoint(gw_explicit_step) if checkpointed else gw_explicit_step
    h = h0
    for _ in range(n):
        h = step(h)
    return np.sum(h**2)


@npfunc.custom_vjp
def well_function(u):
    """Theis' W(u) = E1(u) with its derivative -exp(-u)/u written by hand."""
    return sps.exp1(u)


well_function.defvjp(lambda u: (well_function(u), u), lambda u, g: (-g * np.exp(-u) / u,))


def theis_custom(lp, r=np.array([5.0, 20.0]), t=np.array([0.5, 1.0])):
    T, S = np.exp(lp)
    return np.sum(500.0 / (4 * np.pi * T) * well_function(r**2 * S / (4 * T * t)))


def jacobi_in_place(h, n=5):
    """Jacobi sweeps written into the caller's head field; the centre head returned."""
    for _ in range(n):
        h[1:-1, 1:-1] = 0.25 * (h[2:, 1:-1] + h[:-2, 1:-1] + h[1:-1, 2:] + h[1:-1, :-2])
    return h[2, 2]


def test_linearize_checkpoint_and_custom_vjp():
    f = lambda i: muskingum(i, 2.0, 0.2)
    y, jf = npfunc.linearize(f, _INFLOW)
    assert_same(y, f(_INFLOW))
    t = np.linspace(-1, 1, 9)
    first = jf(t)
    assert_deriv(first, fd(f, _INFLOW) @ t)
    for _ in range(4):
        bitwise(jf(t), first)
    h0 = np.array([10.0, 9.0, 8.5, 8.0, 7.0, 6.0, 5.0])
    ck = lambda h: gw_explicit_energy(h, checkpointed=True)
    g = npfunc.grad(gw_explicit_energy)
    assert_same(calls(npfunc.grad(ck), [h0, h0 + 1])[0], g(h0), rtol=1e-13)
    assert_same(npfunc.jit(npfunc.grad(ck))(h0), g(h0), rtol=1e-12)
    assert_same(npfunc.vmap(npfunc.grad(ck))(np.stack([h0, h0 + 1])), np.stack([g(h0), g(h0 + 1)]), rtol=1e-12)
    assert_deriv(npfunc.hessian(ck)(h0), fd(g, h0))
    ref = lambda lp: np.sum(theis_drawdown(np.array([5.0, 20.0]), np.array([0.5, 1.0]), 500.0, *np.exp(lp)))
    x = np.log([300.0, 1e-4])
    assert_same(theis_custom(x), ref(x), rtol=1e-14)
    check_scalar(theis_custom, x, x + 0.1, np.stack([x, x + 0.1, x - 0.2]), hess=False)


def test_head_field_updated_in_place_and_float32_gravity():
    H0 = np.zeros((5, 5))
    H0[0] = 10.0
    a = H0.copy()
    want = jacobi_in_place(a)
    for t in (npfunc.functionalize, npfunc.jit):
        b = H0.copy()
        assert_same(t(jacobi_in_place)(b), want)
        assert_same(b, a)   # the caller's field is updated, as in NumPy
    c = H0.copy()
    g = npfunc.grad(jacobi_in_place)(c)
    assert_same(c, a)
    assert_deriv(g, fd(lambda h: jacobi_in_place(h.copy()), H0))
    e = np.stack([H0, 2 * H0])
    ee = e.copy()
    assert_same(npfunc.vmap(jacobi_in_place)(e), np.stack([jacobi_in_place(r) for r in ee]))
    assert_same(e, ee)
    # a float32 survey profile and float32 body parameters stay float32
    x32 = np.linspace(-500, 500, 7).astype(np.float32)
    gz = lambda p: sphere_gz(x32, p[0], p[1], np.float32(100.0), np.float32(500.0))
    p = np.array([0.0, 200.0], dtype=np.float32)
    ref = gz(p)
    assert ref.dtype == np.float32
    jit_calls(gz, [p, p + np.float32(10.0)], rtol=1e-6)
    assert_same(npfunc.vmap(gz)(np.stack([p, p + 10])), np.stack([gz(p), gz(p + 10)]), rtol=1e-6)
    for J in (npfunc.jacrev(gz)(p), npfunc.jacfwd(gz)(p)):
        assert J.dtype == np.float32
        np.testing.assert_allclose(J, npfunc.jacrev(gz)(p.astype(np.float64)), rtol=1e-4, atol=1e-9)


# ======================= regressions of the findings =======================


def test_compiled_pull_back_folds_a_batched_matmul_as_the_eager_call(monkeypatch):
    """Finding: jacfwd of a kernel matrix times a column of weights (an RBF interpolant)
    gave the first call's values eagerly and, once the tape cache compiled the pull-back,
    values 1 ulp away: eager vmap folds (B, n, k) @ (k, 1) into one GEMV of B*n rows when
    the rows are a view, the staged recording never folded (a stacked matmul rounds
    differently). The staged rule now folds where its example's layout is a view
    (primitives/linalg/products._folded)."""
    import npfunc.api.tape_cache as tape_cache
    monkeypatch.setattr(tape_cache, "COMPILE_AFTER_SECONDS", 0.0)   # compile on the second appearance
    sites = rng.uniform(0, 10, (8, 2))
    w = rng.normal(size=(8, 1))

    def kernel_sum(q):
        d = q.reshape(-1, 2)[:, None, :] - sites[None, :, :]
        r2 = np.sum(d * d, axis=-1)
        return (r2 * np.log(r2)) @ w
    x = np.array([3.0, 4.0, 6.5, 2.0])
    for t in (npfunc.jacfwd, npfunc.jacrev):
        a, _ = calls(t(kernel_sum), [x, x + 0.5], n=6)
        assert_deriv(a, fd(kernel_sum, x))
    rbf = scipy.interpolate.RBFInterpolator(sites, np.sin(sites[:, 0]))
    calls(npfunc.jacfwd(lambda q: rbf(q.reshape(-1, 2))), [x, x + 0.5], n=6)
    assert_same(npfunc.jit(npfunc.jacfwd(kernel_sum))(x), npfunc.jacfwd(kernel_sum)(x), rtol=1e-13)


def test_jit_of_grad_keeps_the_numpy_scalar_type_of_the_gradient():
    """Finding: grad(f)(np.float64(h)) is an np.float64, jit(grad(f)) gave a 0-d array when
    the last operation of the pull-back was a reshape (a spline evaluated at one stage)."""
    f = lambda h: np.reshape(np.reshape(h, (-1,)) ** 2, ())
    for x in (np.float64(0.7), 0.7, np.float32(0.7), np.array(0.7)):
        want = npfunc.grad(f)(x)
        got = npfunc.jit(npfunc.grad(f))(x)
        assert_same(got, want)
        assert_same(npfunc.jit(npfunc.grad_and_value(f))(x)[0], want)
    want = npfunc.grad(discharge_from_stage)(np.float64(0.7))
    assert type(want) is np.float64
    assert_same(npfunc.jit(npfunc.grad(discharge_from_stage))(np.float64(0.7)), want, rtol=1e-12)


def test_jit_of_a_callable_object_with_a_call_attribute():
    """Finding: jit(interp) of a SciPy interp1d (whose instance holds a ``_call``) copied the
    object's attributes onto the jit wrapper, shadowing jit's own ``_call``: AttributeError
    'tuple' object has no attribute 'x'. jit's wrapper keeps its methods."""
    interp = scipy.interpolate.interp1d(_HT, _QT, bounds_error=False, fill_value=(0.0, 99.0))
    h = np.array([0.1, 1.0, 3.0])
    jf = npfunc.jit(interp)
    for v in (h, h * 0.5, h):
        assert_same(jf(v), interp(v))
    assert jf.__wrapped__ is interp
