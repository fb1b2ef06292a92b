"""Natural programs from earth sciences, climate and fluid dynamics, written first as
plain NumPy/SciPy the way a modeller writes them (finite-difference heat,
advection and Burgers solvers with np.roll and ghost cells, shallow water,
energy-balance and box models, radiative transfer, lookup tables with
np.interp, banded groundwater solves, float32 station data), then run under
npfunc's transforms and compared with the plain program: values, dtypes,
Python types and side effects through assert_same, derivatives through
five-point differences of the plain program, vmap through a Python loop."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.signal
import scipy.stats

import npfunc
from natural_checks import assert_deriv as _assert_deriv, assert_same, fd

rng = np.random.default_rng(20261207)


# ---- diffusion / heat --------------------------------------------------------------------

def heat_periodic(u0, kappa=0.1, dx=0.1, dt=0.02, nsteps=30):
    """Explicit FTCS heat equation on a periodic domain with np.roll."""
    u = u0.copy()
    r = kappa * dt / dx**2
    for _ in range(nsteps):
        u = u + r * (np.roll(u, 1) - 2 * u + np.roll(u, -1))
    return u


def heat_ghost_cells(u0, kappa=0.05, dx=0.1, dt=0.05, nsteps=20):
    """FTCS with ghost cells: a buffer one cell wider each side, zero-flux
    boundaries written into the ghosts in place each step."""
    n = u0.shape[0]
    u = np.empty(n + 2)
    u[1:-1] = u0
    r = kappa * dt / dx**2
    for _ in range(nsteps):
        u[0] = u[1]
        u[-1] = u[-2]
        u[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u[1:-1]


def heat_ghost_cells_like(u0, kappa=0.05, dx=0.1, dt=0.05, nsteps=20):
    """The same with the buffer made traced by like=."""
    n = u0.shape[0]
    u = np.empty(n + 2, like=u0)
    u[1:-1] = u0
    r = kappa * dt / dx**2
    for _ in range(nsteps):
        u[0] = u[1]
        u[-1] = u[-2]
        u[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u[1:-1]


def heat_diffusivity_field(kappa, u0=None, dx=0.1, dt=0.01, nsteps=25):
    """Heat equation with a spatially varying diffusivity (the parameter),
    flux form with face-averaged kappa, Dirichlet ends fixed."""
    n = kappa.shape[0]
    if u0 is None:
        u0 = np.sin(np.linspace(0, np.pi, n))
    u = u0.copy()
    kf = 0.5 * (kappa[1:] + kappa[:-1])
    for _ in range(nsteps):
        flux = -kf * np.diff(u) / dx
        u[1:-1] -= dt / dx * np.diff(flux)
    return u


def crank_nicolson_banded(u0, kappa=0.5, dx=0.1, dt=0.01, nsteps=10):
    """Crank-Nicolson for the heat equation, Dirichlet zero ends, solved with
    scipy.linalg.solve_banded each step."""
    n = u0.shape[0]
    r = kappa * dt / dx**2
    ab = np.zeros((3, n))
    ab[0, 1:] = -r / 2
    ab[1, :] = 1 + r
    ab[2, :-1] = -r / 2
    u = u0
    for _ in range(nsteps):
        rhs = (1 - r) * u
        rhs[1:] += r / 2 * u[:-1]
        rhs[:-1] += r / 2 * u[1:]
        u = scipy.linalg.solve_banded((1, 1), ab, rhs)
    return u


def darcy_head(logK, L=100.0, h_left=10.0, h_right=2.0, recharge=1e-3):
    """1D steady groundwater head with conductivity exp(logK) per cell and
    recharge: tridiagonal system in banded form, then discharge at the right."""
    K = np.exp(logK)
    n = K.shape[0]
    dx = L / n
    Kf = 2 * K[1:] * K[:-1] / (K[1:] + K[:-1])  # harmonic mean at faces
    Kw = np.concatenate([[2 * K[0]], Kf])
    Ke = np.concatenate([Kf, [2 * K[-1]]])
    ab = np.zeros((3, n), like=K)
    ab[0, 1:] = -Ke[:-1]
    ab[1] = Kw + Ke
    ab[2, :-1] = -Kw[1:]
    b = np.full(n, recharge * dx**2, like=K)
    b[0] += Kw[0] * h_left
    b[-1] += Ke[-1] * h_right
    h = scipy.linalg.solve_banded((1, 1), ab, b)
    q_out = -Ke[-1] * (h_right - h[-1]) / dx
    return h, q_out


# ---- advection -----------------------------------------------------------------------------

def upwind_advection(c, u0=None, dx=0.05, dt=0.01, nsteps=20):
    """First-order upwinding with a velocity field c (the parameter) chosen
    per cell by np.where on the sign of c."""
    n = c.shape[0]
    if u0 is None:
        x = np.arange(n) * dx
        u0 = np.exp(-((x - 0.5 * n * dx) ** 2) / 0.02)
    u = u0
    for _ in range(nsteps):
        dminus = (u - np.roll(u, 1)) / dx
        dplus = (np.roll(u, -1) - u) / dx
        u = u - dt * c * np.where(c > 0, dminus, dplus)
    return u


def burgers_cfl(u0, nu=0.01, dx=0.05, T=0.2, cfl=0.4):
    """Viscous Burgers with a data-dependent CFL time step and a while loop."""
    u = u0.copy()
    t = 0.0
    while t < T:
        dt = cfl * dx / np.max(np.abs(u))
        dt = min(dt, 0.2 * dx**2 / nu, T - t)
        f = 0.5 * u**2
        fplus = np.where(u > 0, f, np.roll(f, -1))
        flux_div = (fplus - np.roll(fplus, 1)) / dx
        lap = (np.roll(u, -1) - 2 * u + np.roll(u, 1)) / dx**2
        u = u - dt * flux_div + dt * nu * lap
        t += dt
    return u


def shallow_water_lf(h0, g=9.81, dx=1.0, dt=0.02, nsteps=25):
    """1D shallow water by Lax-Friedrichs, periodic, state stacked (h, hu)."""
    q = np.stack([h0, np.zeros_like(h0)])
    for _ in range(nsteps):
        h, hu = q
        F = np.stack([hu, hu**2 / h + 0.5 * g * h**2])
        qp, qm = np.roll(q, -1, axis=1), np.roll(q, 1, axis=1)
        Fp, Fm = np.roll(F, -1, axis=1), np.roll(F, 1, axis=1)
        q = 0.5 * (qp + qm) - dt / (2 * dx) * (Fp - Fm)
    return q


def semi_lagrangian(u0, speed, dt=0.1, nsteps=5):
    """Semi-Lagrangian advection on a periodic grid: interpolate the field at
    departure points with np.interp(period=)."""
    n = u0.shape[0]
    x = np.linspace(0.0, 1.0, n, endpoint=False)
    u = u0
    for _ in range(nsteps):
        xd = x - speed * dt
        u = np.interp(xd, x, u, period=1.0)
    return u


def spectral_diffusion(u0, kappa=0.01, t=1.0):
    """Exact diffusion of a periodic field in Fourier space."""
    n = u0.shape[0]
    k = 2 * np.pi * np.fft.rfftfreq(n, d=1.0 / n)
    uh = np.fft.rfft(u0)
    uh *= np.exp(-kappa * k**2 * t)
    return np.fft.irfft(uh, n)


def diffusion_2d_pad(T0, kappa=0.1, nsteps=10):
    """2D diffusion with edge-padded ghost cells via np.pad."""
    T = T0
    for _ in range(nsteps):
        P = np.pad(T, 1, mode="edge")
        T = T + kappa * (P[2:, 1:-1] + P[:-2, 1:-1] + P[1:-1, 2:] + P[1:-1, :-2] - 4 * T)
    return T


def vorticity_divergence(uv, dx=1000.0, dy=1000.0):
    """Relative vorticity and divergence of a 2D wind (u, v stacked) by np.gradient."""
    u, v = uv
    dvdx = np.gradient(v, dx, axis=1)
    dudy = np.gradient(u, dy, axis=0)
    dudx, dvdy = np.gradient(u, dx, axis=1), np.gradient(v, dy, axis=0)
    return dvdx - dudy, dudx + dvdy


def geostrophic_wind(phi, lat0=45.0, dx=1e5):
    """Geostrophic wind from geopotential: u = -1/f dphi/dy, v = 1/f dphi/dx."""
    f = 2 * 7.292e-5 * np.sin(np.deg2rad(lat0))
    dphidy, dphidx = np.gradient(phi, dx)
    return np.array([-dphidy / f, dphidx / f])


# ---- climate -------------------------------------------------------------------------------

def ebm_equilibrium(params, nlat=30, nsteps=200):
    """Zonal energy-balance model (Budyko/Sellers style): insolation, ice-albedo
    step by np.where, OLR = A + B T, meridional diffusion in x = sin(lat) with
    np.gradient; time stepped to near-equilibrium. Returns global mean T."""
    A, B, D = params
    lat = np.linspace(-85, 85, nlat)
    x = np.sin(np.deg2rad(lat))
    S = 1365.0 / 4 * (1 - 0.482 * (3 * x**2 - 1) / 2)
    T = 10.0 * np.ones(nlat)
    dt = 0.02
    C = 4.0
    for _ in range(nsteps):
        alpha = np.where(T < -10.0, 0.62, 0.3)
        dTdx = np.gradient(T, x)
        transport = D * np.gradient((1 - x**2) * dTdx, x)
        T = T + dt / C * (S * (1 - alpha) - (A + B * T) + transport)
    w = np.cos(np.deg2rad(lat))
    return np.average(T, weights=w)


def ebm_smooth_albedo(T, Tice=-10.0):
    """Smooth ice-albedo feedback: tanh transition, then absorbed solar."""
    alpha = 0.45 - 0.15 * np.tanh((T - Tice) / 5.0)
    return 342.0 * (1 - alpha)


def global_mean_temp(T, lat):
    """Area-weighted global mean of a (lat, lon) field: cos(lat) weights."""
    w = np.cos(np.deg2rad(lat))
    zonal = T.mean(axis=1)
    return np.sum(zonal * w) / np.sum(w)


def radiative_transfer(k_abs, rho=None, dz=500.0, F_top=340.0):
    """Beer-Lambert: optical depth by cumulative sum from the top, downward flux
    exp(-tau), heating rate from the flux divergence np.diff."""
    n = k_abs.shape[0]
    if rho is None:
        z = (np.arange(n) + 0.5) * dz
        rho = 1.2 * np.exp(-z / 8000.0)
    tau = np.cumsum((k_abs * rho * dz)[::-1])[::-1]
    F = F_top * np.exp(-tau)
    heating = np.diff(F) / dz
    return heating


def olr_schwarzschild(T, tau_total=2.0, nlev=40):
    """Gray-atmosphere outgoing longwave: integrate sigma T^4 exp(-tau) dtau with
    np.trapezoid over optical depth, plus the surface term."""
    sigma = 5.670374419e-8
    tau = np.linspace(0.0, tau_total, nlev)
    B = sigma * T**4
    atm = np.trapezoid(B * np.exp(-tau), tau)
    surf = sigma * (T[-1] + 2.0) ** 4 * np.exp(-tau_total)
    return atm + surf


def saturation_lookup(T):
    """Saturation vapour pressure from a lookup table with np.interp (traced x)."""
    Tt = np.arange(-40.0, 45.0, 5.0)
    es = 611.2 * np.exp(17.67 * Tt / (Tt + 243.5))
    return np.interp(T, Tt, es)


def table_sensitivity(fp, xq=np.array([-3.0, 0.4, 2.2, 7.5, 11.0])):
    """Interpolate a table whose values fp are the parameters (traced fp)."""
    xp = np.linspace(0.0, 10.0, fp.shape[0])
    return np.interp(xq, xp, fp, left=0.0, right=fp[-1])


def relative_humidity_f32(T_c, e):
    """Relative humidity from float32 station data (Magnus formula)."""
    es = np.float32(6.112) * np.exp(np.float32(17.67) * T_c / (T_c + np.float32(243.5)))
    rh = 100 * e / es
    return np.clip(rh, 0, 100)


def kelvin_f32(T_c):
    """Unit conversions on float32 data, then dewpoint depression."""
    T_k = T_c + 273.15
    T_f = T_c * 9 / 5 + 32
    return T_k, T_f


def potential_temperature_N2(T, p=None, g=9.81):
    """Potential temperature on pressure levels, its height gradient and the
    Brunt-Vaisala frequency (0 where statically unstable)."""
    n = T.shape[0]
    if p is None:
        p = np.linspace(100000.0, 20000.0, n)
    theta = T * (100000.0 / p) ** (287.0 / 1004.0)
    z = -7000.0 * np.log(p / 100000.0)
    dthdz = np.gradient(theta, z)
    N2 = g / theta * dthdz
    N = np.sqrt(np.where(N2 > 0, N2, 0.0))
    return N


def hydrostatic_pressure(T, z=None, p0=101325.0):
    """Pressure from the hydrostatic equation with cumulative_trapezoid of g/(R T)."""
    n = T.shape[0]
    if z is None:
        z = np.linspace(0, 10000.0, n)
    integrand = 9.81 / (287.0 * T)
    lnp = np.log(p0) - scipy.integrate.cumulative_trapezoid(integrand, z, initial=0)
    return np.exp(lnp)


def degree_days(T_daily, base=10.0):
    """Growing degree days from float32 daily mean temperatures."""
    return np.maximum(T_daily - base, 0).sum()


def warming_trend(series):
    """Linear trend in K/decade of an annual series via np.polyfit, after
    a 5-year running mean with np.convolve."""
    smooth = np.convolve(series, np.ones(5) / 5, mode="valid")
    years = np.arange(smooth.shape[0])
    slope, intercept = np.polyfit(years, smooth, 1)
    return slope * 10


def carbon_box_model(emissions, k_ao=0.2, k_ab=0.05, dt=1.0):
    """Three-box carbon model (atmosphere, ocean, biosphere) stepped with Euler,
    state updated in place in a preallocated history array."""
    nt = emissions.shape[0]
    hist = np.zeros((nt + 1, 3), like=emissions)
    hist[0] = [590.0, 900.0, 2300.0]
    for i in range(nt):
        A, O, B = hist[i]
        fao = k_ao * (A - 0.65 * O)
        fab = k_ab * (A - 0.25 * B)
        hist[i + 1, 0] = A + dt * (emissions[i] - fao - fab)
        hist[i + 1, 1] = O + dt * fao
        hist[i + 1, 2] = B + dt * fab
    return hist[:, 0]


def stommel_box(params, y0=np.array([1.0, 0.5]), t_end=5.0):
    """Two-box thermohaline model integrated by solve_ivp (RK45)."""
    lam, eta = params

    def rhs(t, y):
        T, S = y
        q = np.abs(T - S)
        return np.array([lam * (1.0 - T) - q * T, eta - q * S])

    sol = scipy.integrate.solve_ivp(rhs, (0.0, t_end), y0, rtol=1e-9, atol=1e-11)
    return sol.y[:, -1]


def lorenz63_rk4(y0, sigma=10.0, rho=28.0, beta=8.0 / 3.0, dt=0.01, nsteps=50):
    """Lorenz-63 integrated with RK4, final state."""
    def f(y):
        x, yy, z = y
        return np.array([sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z])

    y = y0
    for _ in range(nsteps):
        k1 = f(y)
        k2 = f(y + 0.5 * dt * k1)
        k3 = f(y + 0.5 * dt * k2)
        k4 = f(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


# ---- hydrology / ocean ---------------------------------------------------------------------

def manning_discharge(geom, S=1e-3):
    """Manning's equation for a trapezoidal channel: width, depth, side slope, n."""
    b, y, z, n = geom
    A = (b + z * y) * y
    P = b + 2 * y * np.sqrt(1 + z**2)
    R = A / P
    return (1.0 / n) * A * R ** (2.0 / 3.0) * np.sqrt(S)


def wave_number(params, n_iter=30):
    """Linear dispersion omega^2 = g k tanh(k h) solved by Newton, fixed iterations."""
    omega, h = params
    g = 9.81
    k = omega**2 / g
    for _ in range(n_iter):
        th = np.tanh(k * h)
        F = g * k * th - omega**2
        dF = g * th + g * k * h * (1 - th**2)
        k = k - F / dF
    return k


def green_ampt(params, t=2.0, tol=1e-12):
    """Green-Ampt cumulative infiltration F: F = K t + psi dtheta ln(1 + F/(psi dtheta)),
    by fixed-point iteration until converged (data-dependent loop)."""
    K, psi_dtheta = params
    F = K * t
    while True:
        F_new = K * t + psi_dtheta * np.log1p(F / psi_dtheta)
        if abs(F_new - F) < tol:
            return F_new
        F = F_new


def mixed_layer_depth(T, z=None, S=35.0, dT=0.2):
    """Mixed-layer depth: first depth where T drops dT below the surface, linearly
    interpolated between the bracketing levels (argmax on a boolean mask)."""
    n = T.shape[0]
    if z is None:
        z = np.linspace(0.0, 200.0, n)
    below = T < T[0] - dT
    if not below.any():
        return z[-1]
    i = np.argmax(below)
    frac = (T[0] - dT - T[i - 1]) / (T[i] - T[i - 1])
    return z[i - 1] + frac * (z[i] - z[i - 1])


def density_linear_eos(TS, rho0=1027.0, alpha=2e-4, beta=7.6e-4):
    """Linear equation of state for (T, S) stacked, then column stratification."""
    T, S = TS
    rho = rho0 * (1 - alpha * (T - 10.0) + beta * (S - 35.0))
    return rho, np.diff(rho)


def log_wind_profile(ustar_z0, z=np.array([2.0, 10.0, 50.0, 100.0])):
    """Neutral log-law wind profile u(z) = u*/kappa ln(z/z0)."""
    ustar, z0 = ustar_z0
    return ustar / 0.41 * np.log(z / z0)


def apply_neumann_bc_(u):
    """Write zero-gradient boundaries into the ghost cells of u in place; returns nothing."""
    u[0] = u[1]
    u[-1] = u[-2]


def interior(u):
    """The interior of a ghosted field, a view of it."""
    return u[1:-1]


def step_with_bc(u):
    """One diffusion step on a ghosted field: boundaries set in place on the
    argument, then the interior updated in place through a view."""
    apply_neumann_bc_(u)
    inner = interior(u)
    inner += 0.1 * (u[2:] - 2 * u[1:-1] + u[:-2])
    return (u**2).sum()


def cfl_dt(u, dx=0.1, cfl=0.5):
    """Data-dependent CFL time step, a NumPy scalar."""
    return cfl * dx / np.max(np.abs(u))


def sediment_transport_smooth(tau, tau_c=0.05):
    """Meyer-Peter Mueller bedload: 8 (tau - tau_c)^1.5 above threshold, 0 below."""
    excess = np.maximum(tau - tau_c, 0.0)
    return 8.0 * excess**1.5


def precip_gamma_cdf(shape_scale, x=np.array([1.0, 5.0, 10.0, 20.0])):
    """Probability of daily rain below thresholds under a gamma distribution
    (scipy.special.gammainc), the standard precipitation model."""
    a, scale = shape_scale
    return scipy.special.gammainc(a, x / scale)


def detrend_anomaly(series):
    """Anomalies of a monthly series: remove the climatology per calendar month
    (reshape to years x 12), then detrend with scipy.signal.detrend."""
    clim = series.reshape(-1, 12).mean(axis=0)
    anom = series - np.tile(clim, series.shape[0] // 12)
    return scipy.signal.detrend(anom)


def station_mean_nan(T):
    """Mean over stations of a (time, station) record with gaps as NaN (np.nanmean),
    then the anomaly of the last year."""
    clim = np.nanmean(T, axis=0)
    return np.nansum(T[-1] - clim)


def hot_day_threshold(T):
    """90th percentile of daily maxima (linear interpolation), the exceedance sum."""
    p90 = np.percentile(T, 90)
    return np.sum(np.maximum(T - p90, 0.0))


def eof_variance(X):
    """Leading EOF explained-variance fraction of a (time, space) anomaly matrix via SVD."""
    A = X - X.mean(axis=0)
    s = np.linalg.svd(A, compute_uv=False)
    return s[0] ** 2 / np.sum(s**2)


def profile_spline(T, z=np.array([0.0, 10, 25, 50, 100, 200]), zq=np.linspace(0, 200, 9)):
    """Cubic spline interpolation of a temperature profile to regular depths."""
    cs = scipy.interpolate.CubicSpline(z, T)
    return cs(zq)


def radiative_equilibrium_brentq(params):
    """Equilibrium surface temperature solving S(1-a)/4 = eps sigma T^4 with brentq."""
    S, a, eps = params
    sigma = 5.67e-8
    g = lambda T: S * (1 - a) / 4 - eps * sigma * T**4
    return scipy.optimize.brentq(g, 100.0, 400.0)


def trend_linregress(y):
    """Trend by scipy.stats.linregress, slope in units per decade."""
    res = scipy.stats.linregress(np.arange(y.shape[0]), y)
    return res.slope * 10


def gradient_stretched(z, T=np.array([15.0, 14.0, 11.0, 8.0, 6.5, 6.0])):
    """Lapse rate on a stretched vertical grid (traced coordinates), second-order edges."""
    return np.gradient(T, z, edge_order=2)


def finite_volume_addat(u, edges=np.array([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2]]), D=0.3):
    """Graph-based finite-volume diffusion: fluxes per edge scattered into cells with np.add.at."""
    flux = D * (u[edges[:, 1]] - u[edges[:, 0]])
    du = np.zeros_like(u)
    np.add.at(du, edges[:, 0], flux)
    np.add.at(du, edges[:, 1], -flux)
    return u + du


def trapz_traced_x(z, w=np.array([1.0, 0.8, 0.5, 0.3, 0.1])):
    """Column-integrated water on traced level heights z (np.trapezoid with traced x)."""
    return np.trapezoid(w, z)


def implicit_diffusion_2d(T0, kappa=0.2):
    """One backward-Euler step of 2D diffusion on a small grid via np.linalg.solve
    on the Kronecker-sum Laplacian."""
    ny, nx = T0.shape
    def lap1(n):
        return -2 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
    L = np.kron(np.eye(ny), lap1(nx)) + np.kron(lap1(ny), np.eye(nx))
    A = np.eye(nx * ny) - kappa * L
    return np.linalg.solve(A, T0.ravel()).reshape(ny, nx)


def lapse_rate_sqrt_warn(T, z=np.linspace(0, 5000, 6)):
    """Brunt-Vaisala frequency with np.sqrt of possibly negative N^2 (NaN + warning
    where unstable, as a careless script gives)."""
    N2 = 9.81 / T * (np.gradient(T, z) + 9.8e-3)
    return np.sqrt(N2)


def heat_content_einsum(T, dz=np.array([10.0, 20.0, 50.0]), area=np.array([[1.0, 2.0], [3.0, 4.0]])):
    """Ocean heat content: sum over depth and area with np.einsum."""
    return 4e6 * np.einsum("kij,k,ij->", T, dz, area)


def column_ratio_quad(k, surface=0.25):
    """Atmospheric column by scipy.integrate.quad plus a surface term, as a
    fraction of the column: ``total += ...`` rebinds total (a float) and leaves
    col alone."""
    col, _ = scipy.integrate.quad(lambda z: np.exp(-k * z), 0.0, 8.0)
    total = col
    total += surface
    return total / col


def equilibrium_field_f32(params, pattern=np.linspace(0.9, 1.1, 5, dtype=np.float32)):
    """Equilibrium temperature by brentq (a Python float) scaled onto a float32
    pattern: NEP 50 keeps the float32 dtype."""
    return radiative_equilibrium_brentq(params) * pattern


def station_record_sum(x):
    """Total of a float32 station record (the NumPy reduction of a 1-D array)."""
    return x.sum()


def trend_formula(y):
    """Least-squares slope per decade written with NumPy (the jit-able form)."""
    t = np.arange(y.shape[0], dtype=float)
    tc = t - t.mean()
    return 10 * np.sum(tc * (y - y.mean())) / np.sum(tc**2)


# ---- checks -----------------------------------------------------------------------------------


def assert_deriv(got, want, rtol=1e-5):
    """Derivatives to five-point accuracy, relative to the largest entry."""
    _assert_deriv(got, want, rtol=rtol, atol=1e-7 * max(1.0, float(np.max(np.abs(want)))))


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_array_program(f, x, xs, fwd=True):
    """jit (twice), vmap, jacrev, jacfwd, jvp, vjp and vmap(jacrev) of an array program."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref, rtol=1e-10)
    assert_same(jf(xs[0]), f(xs[0]), rtol=1e-10)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-10)
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    if fwd:
        assert_deriv(npfunc.jacfwd(f)(x), J)
        t = rng.normal(size=np.shape(x))
        y, yd = npfunc.jvp(f, (x,), (t,))
        assert_same(y, ref, rtol=1e-10)
        assert_deriv(yd, np.tensordot(J, t, axes=np.ndim(x)))
    y, vjp_fn = npfunc.vjp(f, x)
    assert_same(y, ref, rtol=1e-10)
    ct = rng.normal(size=np.shape(ref))
    assert_deriv(vjp_fn(ct)[0], np.tensordot(ct, J, axes=np.ndim(ref)))
    assert_deriv(npfunc.vmap(npfunc.jacrev(f))(xs[:2]), loop(lambda v: fd(f, v), xs[:2]))


def check_scalar_program(f, x, xs, hess=True):
    """grad_and_value, jit(grad), grad(jit), vmap, vmap(grad) and the Hessian of a scalar program."""
    ref = f(x)
    assert_same(npfunc.jit(f)(x), ref, rtol=1e-10)
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref, rtol=1e-10)
    G = fd(f, x)
    assert_deriv(g, G)
    assert_deriv(npfunc.jit(npfunc.grad(f))(x), G)
    assert_deriv(npfunc.grad(npfunc.jit(f))(x), G)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol=1e-10)
    assert_deriv(npfunc.vmap(npfunc.grad(f))(xs), loop(lambda v: fd(f, v), xs))
    if hess:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-4)
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, rtol=1e-4)


N = 12


def _field(*shape):
    return rng.normal(size=shape)


# ---- diffusion ------------------------------------------------------------------------------


def test_heat_periodic():
    check_array_program(heat_periodic, _field(N), _field(3, N))


def test_heat_ghost_cells_like_buffer():
    check_array_program(heat_ghost_cells_like, _field(N), _field(3, N))


def test_heat_ghost_cells_plain_buffer_matches_like_fix():
    """u = np.empty(n + 2) then u[1:-1] = u0 (once refused under jacrev, jit and vmap,
    naming like=): the plain program passes every check of check_array_program (jit and
    its replay, vmap against the loop, derivatives against differences), and its
    Jacobians are those of heat_ghost_cells_like (np.empty(n + 2, like=u0)) to rounding."""
    u0 = _field(N)
    assert_same(heat_ghost_cells_like(u0), heat_ghost_cells(u0))
    check_array_program(heat_ghost_cells, u0, _field(3, N))
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jac(heat_ghost_cells)(u0), jac(heat_ghost_cells_like)(u0),
                                   rtol=1e-12, atol=1e-15)


def test_heat_diffusivity_field_inplace_on_plain_copy_refused_and_fix():
    """u = u0.copy() of a plain profile, then u[1:-1] -= ... with traced kappa:
    refused (out= into a plain array); the advice, a traced buffer, works."""
    k = 0.05 + 0.02 * rng.random(N)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jacrev.*out=x.*like=x"):
        npfunc.jacrev(heat_diffusivity_field)(k)

    def fixed(kappa, dx=0.1, dt=0.01, nsteps=25):
        u = np.zeros(kappa.shape[0], like=kappa)
        u[:] = np.sin(np.linspace(0, np.pi, kappa.shape[0]))
        return heat_diffusivity_field(kappa, u0=u, dx=dx, dt=dt, nsteps=nsteps)

    assert_same(fixed(k), heat_diffusivity_field(k))
    check_array_program(fixed, k, 0.05 + 0.02 * rng.random((3, N)))


def test_crank_nicolson_solve_banded():
    check_array_program(crank_nicolson_banded, _field(N), _field(3, N))


def test_darcy_head_and_outflow():
    check_array_program(lambda k: darcy_head(k)[0], _field(8), _field(3, 8))
    check_scalar_program(lambda k: darcy_head(k)[1], _field(8), _field(3, 8))


def test_spectral_and_padded_2d_diffusion():
    check_array_program(spectral_diffusion, _field(N), _field(3, N))
    check_array_program(diffusion_2d_pad, _field(4, 5), _field(3, 4, 5))


def test_implicit_diffusion_2d_linalg_solve():
    check_array_program(implicit_diffusion_2d, _field(3, 4), _field(3, 3, 4))


def test_finite_volume_add_at():
    check_array_program(finite_volume_addat, _field(4), _field(3, 4))


# ---- advection and flow ---------------------------------------------------------------------


def test_upwind_advection_velocity_sensitivity():
    check_array_program(upwind_advection, _field(N), _field(3, N))


def test_burgers_cfl_time_step():
    """A while loop on a CFL time step: grad and jvp follow the steps taken;
    jit and vmap refuse with the transform named, and a loop over the ensemble
    (the advice: keep it outside) works."""
    u0 = 1.0 + 0.3 * np.sin(np.linspace(0, 2 * np.pi, N, endpoint=False))
    J = fd(burgers_cfl, u0)
    assert_deriv(npfunc.jacrev(burgers_cfl)(u0), J)
    assert_deriv(npfunc.jacfwd(burgers_cfl)(u0), J)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"^jit\(f\): bool\(x\).*outside jit"):
        npfunc.jit(burgers_cfl)(u0)
    ens = u0 + 0.1 * rng.random((3, N))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"^vmap\(f\): bool\(x\)"):
        npfunc.vmap(burgers_cfl)(ens)
    loss = lambda u: np.sum(burgers_cfl(u) ** 2)  # noqa: E731
    assert_deriv(np.stack([npfunc.grad(loss)(u) for u in ens]), loop(lambda u: fd(loss, u), ens))


def test_shallow_water_lax_friedrichs():
    f = lambda h: shallow_water_lf(h, nsteps=10)  # noqa: E731
    check_array_program(f, 1.0 + 0.1 * rng.random(N), 1.0 + 0.1 * rng.random((3, N)))


def test_semi_lagrangian_interp_periodic():
    check_array_program(lambda u: semi_lagrangian(u, 0.13), _field(N), _field(3, N))
    u0 = np.sin(np.linspace(0, 2 * np.pi, N, endpoint=False))
    check_array_program(lambda s: semi_lagrangian(u0, s), 0.13 + 0.01 * rng.random(N), 0.1 + 0.01 * rng.random((3, N)))


def test_vorticity_and_geostrophic_wind():
    check_array_program(lambda uv: vorticity_divergence(uv)[0], _field(2, 4, 5), _field(3, 2, 4, 5))
    check_array_program(geostrophic_wind, _field(4, 5), _field(3, 4, 5))


def test_lorenz63_rk4_and_ensemble_vmap():
    y0 = np.array([1.0, 1.0, 20.0])
    f = lambda y: lorenz63_rk4(y, nsteps=20)  # noqa: E731
    check_array_program(f, y0, y0 + 0.1 * _field(3, 3))


def test_ensemble_grad_through_vmapped_and_jitted_pieces():
    """grad of an ensemble-mean misfit whose members run under vmap, and of a
    misfit calling a jit'ed model: against the plain loop."""
    U0, obs = _field(4, 8), _field(8)
    model = lambda u0, k: heat_periodic(u0, kappa=k, nsteps=8)  # noqa: E731

    def loss(k):
        ens = npfunc.vmap(model, in_dims=(0, None))(U0, k)
        return np.mean((ens.mean(axis=0) - obs) ** 2)

    def loss_plain(k):
        return np.mean((np.stack([model(u, k) for u in U0]).mean(axis=0) - obs) ** 2)

    k = np.float64(0.1)
    assert_same(loss(k), loss_plain(k))
    assert_deriv(npfunc.grad(loss)(k), fd(loss_plain, k))
    assert_deriv(npfunc.hessian(loss)(k), fd(npfunc.grad(loss_plain), k), rtol=1e-4)
    jmodel = npfunc.jit(model)
    loss_j = lambda k: np.sum((jmodel(U0[0], k) - obs) ** 2)  # noqa: E731
    assert_deriv(npfunc.grad(loss_j)(k), fd(lambda k: np.sum((model(U0[0], k) - obs) ** 2), k))
    _, jvp_fn = npfunc.linearize(lambda k: model(U0[0], k), k)
    assert_deriv(jvp_fn(np.float64(1.0)), fd(lambda k: model(U0[0], k), k))


# ---- climate ---------------------------------------------------------------------------------


def test_energy_balance_model_parameters():
    p = np.array([203.3, 2.09, 0.55])
    ps = p * np.array([[1.0, 1.0, 1.0], [1.02, 0.97, 0.8], [0.99, 1.04, 1.2]])
    f = lambda p: ebm_equilibrium(p, nlat=12, nsteps=25)  # noqa: E731
    check_scalar_program(f, p, ps, hess=False)


def test_global_mean_and_smooth_albedo():
    lat = np.linspace(-80, 80, 5)
    check_scalar_program(lambda T: global_mean_temp(T, lat), _field(5, 4), _field(3, 5, 4))
    check_array_program(ebm_smooth_albedo, 10 * _field(N), 10 * _field(3, N))


def test_radiative_transfer_beer_lambert():
    check_array_program(radiative_transfer, 1e-4 * rng.random(N), 1e-4 * rng.random((3, N)))


def test_gray_olr_trapezoid():
    check_scalar_program(olr_schwarzschild, 200 + 80 * rng.random(40), 200 + 80 * rng.random((3, 40)))


def test_interp_lookup_traced_x_and_traced_table():
    check_array_program(saturation_lookup, 12 * _field(N) + 0.3, 12 * _field(3, N) + 0.3)
    check_array_program(table_sensitivity, _field(6), _field(3, 6))


def test_float32_humidity_and_unit_conversions():
    T = (15 + 5 * _field(6)).astype(np.float32)
    e = (10 + rng.random(6)).astype(np.float32)
    ref = relative_humidity_f32(T, e)
    assert ref.dtype == np.float32
    assert_same(npfunc.jit(relative_humidity_f32)(T, e), ref, rtol=1e-6)
    assert_same(npfunc.vmap(relative_humidity_f32)(np.stack([T, T + 1]), np.stack([e, e])),
                np.stack([ref, relative_humidity_f32(T + 1, e)]), rtol=1e-6)
    J = npfunc.jacrev(relative_humidity_f32)(T, e)
    assert J.dtype == np.float32
    assert_deriv(J, fd(lambda t: relative_humidity_f32(t, e.astype(float)), T), rtol=1e-4)  # the float64 program
    for got, want in zip(npfunc.jit(kelvin_f32)(T), kelvin_f32(T)):
        assert_same(got, want, rtol=1e-6)
    for y, yd in zip(*npfunc.jvp(kelvin_f32, (T,), (np.ones(6, np.float32),))):
        assert y.dtype == yd.dtype == np.float32


def test_degree_days_float32_scalar():
    T = (12 + 5 * _field(30)).astype(np.float32)
    ref = degree_days(T)
    assert type(ref) is np.float32
    assert_same(npfunc.jit(degree_days)(T), ref, rtol=1e-6)
    g, v = npfunc.grad_and_value(degree_days)(T)
    assert_same(v, ref, rtol=1e-6)
    assert_same(g, (T > 10).astype(np.float32))
    Ts = np.stack([T, T - 3])
    assert_same(npfunc.vmap(degree_days)(Ts), loop(degree_days, Ts), rtol=1e-6)


def test_static_stability_and_hydrostatic_pressure():
    T = 290 - 6 * np.arange(10.0) + rng.random(10)
    check_array_program(potential_temperature_N2, T, 290 - 6 * np.arange(10.0) + rng.random((3, 10)))
    T = 288 - 6.5e-3 * np.linspace(0, 1e4, 8)
    check_array_program(hydrostatic_pressure, T, T + rng.random((3, 8)))


def test_sqrt_of_unstable_n2_warns_as_numpy_does():
    T = np.array([288.0, 270.0, 265.0, 260.0, 262.0, 250.0])
    runs = {"plain": lapse_rate_sqrt_warn, "jit": npfunc.jit(lapse_rate_sqrt_warn),
            "jacfwd": npfunc.jacfwd(lapse_rate_sqrt_warn), "jacrev": npfunc.jacrev(lapse_rate_sqrt_warn)}
    for name, f in runs.items():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = f(T)
        assert any("invalid value encountered in sqrt" in str(x.message) for x in w), name
        if name == "plain":
            ref = out
        elif name == "jit":
            assert_same(out, ref)


def test_carbon_box_model_history_buffer():
    check_array_program(carbon_box_model, 8 + rng.random(10), 8 + rng.random((3, 10)))


def test_warming_trend_polyfit():
    """np.polyfit differentiates under grad and vmap, and runs under jit (its rank
    check reads the rank of the plain design matrix); the NumPy slope formula agrees."""
    y = _field(20)
    G = fd(warming_trend, y)
    assert_deriv(npfunc.grad(warming_trend)(y), G)
    ys = _field(3, 20)
    assert_same(npfunc.vmap(warming_trend)(ys), loop(warming_trend, ys), rtol=1e-10)
    jitted = npfunc.jit(warming_trend)
    for series in (y, _field(20) * 2 + 1):
        assert_same(jitted(series), warming_trend(series), rtol=1e-10)
    smooth = lambda y: trend_formula(np.convolve(y, np.ones(5) / 5, mode="valid"))  # noqa: E731
    assert_same(smooth(y), warming_trend(y), rtol=1e-9)
    assert_same(npfunc.jit(smooth)(y), smooth(y), rtol=1e-12)


def test_linregress_under_jit_formula_works():
    """scipy.stats.linregress checks its input for NaN in SciPy's code (jit refused
    it); its twin writes the checks with np.where: jit gives SciPy's value, grad
    runs it, and the NumPy formula agrees."""
    y = _field(15)
    f = lambda y: scipy.stats.linregress(np.arange(y.shape[0]), y).slope * 10  # noqa: E731
    assert_deriv(npfunc.grad(f)(y), fd(f, y))
    assert_same(npfunc.jit(f)(y), f(y), rtol=1e-12)
    assert_same(npfunc.jit(trend_formula)(y), f(y), rtol=1e-9)


def test_station_statistics_nan_percentile_eof():
    T = np.where(rng.random((6, 4)) < 0.2, np.nan, _field(6, 4))
    check_scalar_program(station_mean_nan, T, _field(3, 6, 4), hess=False)
    check_scalar_program(hot_day_threshold, 25 + 5 * _field(30), 25 + 5 * _field(3, 30), hess=False)
    check_scalar_program(eof_variance, _field(8, 4), _field(3, 8, 4))


def test_profile_spline_and_stretched_grid_gradient():
    check_array_program(profile_spline, 20 - 2 * np.arange(6.0) + rng.random(6),
                        20 - np.arange(6.0) + rng.random((3, 6)))
    z = np.array([0.0, 5.0, 15.0, 40.0, 90.0, 200.0])
    check_array_program(gradient_stretched, z, z * np.array([[1.0], [1.1], [0.9]]))
    check_scalar_program(trapz_traced_x, z[:5] / 30, z[:5] / 30 * np.array([[1.0], [1.1], [0.9]]))


def test_ocean_heat_content_einsum():
    check_scalar_program(heat_content_einsum, _field(3, 2, 2), _field(3, 3, 2, 2), hess=False)


# ---- ODE and solvers -------------------------------------------------------------------------


def test_stommel_box_solve_ivp():
    """solve_ivp's derivative is the exact one of the continuous problem (checked
    against differences with a coarse step, which average out the adaptive grid);
    jit and vmap need t_eval, as the message says, and then work."""
    p = np.array([1.2, 0.6])
    f = lambda p: stommel_box(p)  # noqa: E731
    J = fd(f, p, eps=1e-3)
    assert_deriv(npfunc.jacrev(f)(p), J, rtol=1e-5)
    assert_deriv(npfunc.jacfwd(f)(p), J, rtol=1e-5)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"jit\(f\): solve_ivp without t_eval.*give t_eval"):
        npfunc.jit(f)(p)

    def with_t_eval(params):
        lam, eta = params

        def rhs(t, y):
            q = np.abs(y[0] - y[1])
            return np.array([lam * (1.0 - y[0]) - q * y[0], eta - q * y[1]])

        sol = scipy.integrate.solve_ivp(rhs, (0.0, 5.0), np.array([1.0, 0.5]), t_eval=np.array([5.0]),
                                        rtol=1e-9, atol=1e-11)
        return sol.y[:, -1]

    assert_same(npfunc.jit(with_t_eval)(p), with_t_eval(p), rtol=1e-12)
    ps = np.array([[1.2, 0.6], [1.0, 0.5]])
    np.testing.assert_allclose(npfunc.vmap(with_t_eval)(ps), loop(with_t_eval, ps), rtol=1e-7)


def test_manning_and_wave_dispersion_newton():
    g = np.array([5.0, 1.2, 2.0, 0.03])
    gs = g * np.array([[1.0, 1, 1, 1], [0.8, 0.9, 0.7, 1.1], [1.2, 1.5, 0.5, 0.9]])
    check_scalar_program(manning_discharge, g, gs)
    p = np.array([0.8, 10.0])
    check_scalar_program(wave_number, p, np.array([[0.8, 10.0], [1.0, 5.0], [0.5, 20.0]]))


def test_green_ampt_fixed_point_loop():
    """A while-True convergence loop: grad follows it; vmap refuses naming np.where."""
    p = np.array([0.5, 3.0])
    g, v = npfunc.grad_and_value(green_ampt)(p)
    assert_same(v, green_ampt(p))
    assert_deriv(g, fd(green_ampt, p), rtol=1e-4)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(green_ampt)(np.array([[0.5, 3.0], [0.3, 2.0]]))
    ps = np.array([[0.5, 3.0], [0.3, 2.0], [1.0, 5.0]])
    assert_deriv(np.stack([npfunc.grad(green_ampt)(q) for q in ps]), loop(lambda q: fd(green_ampt, q), ps), rtol=1e-4)


def test_mixed_layer_depth_argmax_branch():
    T = 20 - np.linspace(0, 3, 12) ** 2 + 0.01 * rng.random(12)
    g, v = npfunc.grad_and_value(mixed_layer_depth)(T)
    assert_same(v, mixed_layer_depth(T))
    assert_deriv(g, fd(mixed_layer_depth, T))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(mixed_layer_depth)(T)


def test_brentq_equilibrium_grad_and_vmap():
    p = np.array([1361.0, 0.3, 0.61])
    ps = np.array([[1361.0, 0.3, 0.61], [1361.0, 0.32, 0.6], [1300.0, 0.3, 0.7]])
    f = radiative_equilibrium_brentq
    assert_deriv(npfunc.grad(f)(p), fd(f, p))
    np.testing.assert_allclose(npfunc.vmap(f)(ps), [f(q) for q in ps], rtol=1e-10)
    np.testing.assert_allclose(npfunc.jit(f)(p), f(p), rtol=1e-12)


@pytest.mark.xfail(strict=True, reason="brentq's root is a Python float (weak under NEP 50): root * float32 data "
                   "is float32 in NumPy; under jit/jvp/vmap the root is a traced np.float64 and the product is float64")
def test_brentq_root_times_float32_keeps_float32():
    p = np.array([1361.0, 0.3, 0.61])
    ref = equilibrium_field_f32(p)
    assert ref.dtype == np.float32
    assert_same(npfunc.jit(equilibrium_field_f32)(p), ref, rtol=1e-6)


@pytest.mark.xfail(strict=True, reason="quad's integral is a Python float: under jit it is an np.float64 "
                   "(the type differs, and its product with float32 data is float64 instead of float32)")
def test_quad_integral_type_under_jit():
    f = lambda k: scipy.integrate.quad(lambda z: np.exp(-k * z), 0.0, 8.0)[0]  # noqa: E731
    k = np.float64(0.5)
    assert_same(npfunc.jit(f)(k), f(k))


def test_quad_column_ratio_aliasing():
    """Regression: quad's traced integral was a 0-d array, so ``total += s`` after
    ``total = col`` updated col too (jit gave 1.0, NumPy 1.127...)."""
    k = np.float64(0.5)
    ref = column_ratio_quad(k)
    np.testing.assert_allclose(npfunc.jit(column_ratio_quad)(k), ref, rtol=1e-12)
    np.testing.assert_allclose(npfunc.jvp(column_ratio_quad, (k,), (np.float64(1.0),))[0], ref, rtol=1e-12)
    assert_deriv(npfunc.grad(column_ratio_quad)(k), fd(column_ratio_quad, k))
    np.testing.assert_allclose(npfunc.vmap(column_ratio_quad)(np.array([0.5, 0.8])),
                               [column_ratio_quad(0.5), column_ratio_quad(0.8)], rtol=1e-12)


# ---- side effects and views -----------------------------------------------------------------


def test_ghost_cells_written_into_the_argument():
    """step_with_bc writes the ghosts of its argument and updates the interior
    through a view: every transform leaves the argument as the plain call does."""
    u = _field(N)
    want_u = u.copy()
    want = step_with_bc(want_u)
    for name in ("jit", "grad", "jacfwd", "jacrev"):
        a = u.copy()
        out = getattr(npfunc, name)(step_with_bc)(a)
        np.testing.assert_allclose(a, want_u, rtol=1e-14, err_msg=name)
        if name == "jit":
            assert_same(out, want)
    U = np.stack([u, 2 * u])
    want_U = U.copy()
    want_v = loop(step_with_bc, want_U)
    assert_same(npfunc.vmap(step_with_bc)(U), want_v)
    np.testing.assert_allclose(U, want_U, rtol=1e-14)
    a = u.copy()
    y, _ = npfunc.vjp(step_with_bc, a)
    assert_same(y, want)
    np.testing.assert_allclose(a, want_u, rtol=1e-14)
    check_scalar_program(lambda v: step_with_bc(v.copy()), u, _field(3, N))


def test_bc_helper_returning_none_and_interior_view():
    u = _field(8)
    a, b = u.copy(), u.copy()
    apply_neumann_bc_(a)
    assert npfunc.jit(apply_neumann_bc_)(b) is None
    np.testing.assert_array_equal(b, a)
    B = np.stack([u, u + 1])
    A = B.copy()
    for row in A:
        apply_neumann_bc_(row)
    npfunc.vmap(apply_neumann_bc_)(B)
    np.testing.assert_array_equal(B, A)
    w = u.copy()
    v = npfunc.jit(interior)(w)
    assert np.shares_memory(v, w)
    v[0] = 99.0
    assert w[1] == 99.0


def test_float32_state_updated_in_place():
    """u += dt * tendency on a float32 state with a float64 dt: stays float32."""
    def step32(u, dt=np.float64(0.1)):
        u += dt * (np.roll(u, 1) - 2 * u + np.roll(u, -1))
        return u.sum()

    u = _field(8).astype(np.float32)
    want_u = u.copy()
    want = step32(want_u)
    for name in ("jit", "grad"):
        a = u.copy()
        out = getattr(npfunc, name)(step32)(a)
        assert_same(a, want_u, rtol=0)
        if name == "jit":
            assert_same(out, want, rtol=0)
        else:
            assert out.dtype == np.float32
    a = u.copy()
    y, yd = npfunc.jvp(step32, (a,), (np.ones(8, np.float32),))
    assert_same(y, want, rtol=0)
    assert yd.dtype == np.float32
    assert_same(a, want_u, rtol=0)


def test_cfl_dt_numpy_scalar():
    check_scalar_program(cfl_dt, _field(N), _field(3, N), hess=False)


@pytest.mark.xfail(strict=True, reason="vmap(np.sum, in_dims=1) of float32 station columns reduces the batched "
                   "(n, B) array along axis 0 (NumPy adds row after row) while the loop sums each column pairwise: "
                   "16777216 against 16778204 for [2**24, 1, ..., 1]")
def test_float32_station_sums_vmapped_over_columns():
    x = np.ones(1001, np.float32)
    x[0] = 2**24
    records = np.stack([x, x], axis=1)  # (time, station)
    want = np.stack([station_record_sum(records[:, i]) for i in range(2)])
    assert_same(npfunc.vmap(station_record_sum, in_dims=1)(records), want, rtol=0)


def test_misc_profiles_and_transfer():
    TS = [[10.0], [35.0]]
    check_array_program(lambda TS: density_linear_eos(TS)[1], _field(2, 6) + TS, _field(3, 2, 6) + TS)
    check_array_program(log_wind_profile, np.array([0.3, 0.05]), np.array([[0.3, 0.05], [0.4, 0.1], [0.2, 0.01]]))
    check_array_program(sediment_transport_smooth, 0.06 + 0.1 * rng.random(N), 0.06 + 0.1 * rng.random((3, N)))
    check_array_program(precip_gamma_cdf, np.array([0.8, 6.0]), np.array([[0.8, 6.0], [1.2, 4.0], [0.5, 10.0]]))
    check_array_program(detrend_anomaly, _field(36), _field(3, 36))


def sst_at_buoys(sst, lat=np.array([-10.0, 0.0, 10.0, 20.0]), lon=np.array([0.0, 15.0, 30.0]),
                 buoys=[np.array([-5.0, 12.0]), np.array([3.0, 28.0])]):
    """SST at two buoys by RegularGridInterpolator; the buoys are given as a list
    of (lat, lon) rows, which SciPy reads as an array of points."""
    return scipy.interpolate.RegularGridInterpolator((lat, lon), sst)(buoys)


def sst_at_mooring(sst, lat=np.array([-10.0, 0.0, 10.0, 20.0]), lon=np.array([0.0, 15.0, 30.0])):
    """SST at one mooring given as a 1-d (lat, lon) point: SciPy returns shape (1,)."""
    return scipy.interpolate.RegularGridInterpolator((lat, lon), sst)(np.array([4.0, 21.0]))


def test_regular_grid_interpolator_point_forms():
    """Regression: a list of point rows was stacked as coordinate columns (other
    values), and a single 1-d point gave shape () instead of SciPy's (1,)."""
    sst = 20 + _field(4, 3)
    check_array_program(sst_at_buoys, sst, 20 + _field(3, 4, 3))
    check_array_program(sst_at_mooring, sst, 20 + _field(3, 4, 3))


def enso_teleconnection(rain, nino34=np.array([0.8, -0.3, 1.9, -1.1, 0.2, 1.4, -0.6])):
    """Correlation of a station's seasonal rainfall with the Nino-3.4 index (scipy.stats.pearsonr)."""
    return scipy.stats.pearsonr(rain, nino34).statistic


def test_enso_teleconnection_pearsonr():
    """Regression: SciPy's xpx.at(r).set(nan) took the traced NumPy scalar r for a
    writeable array and raised TypeError under grad; SciPy copies a scalar first."""
    rain = 100 + 20 * _field(7)
    ref = enso_teleconnection(rain)
    g, v = npfunc.grad_and_value(enso_teleconnection)(rain)
    assert_same(v, ref)
    assert_deriv(g, fd(enso_teleconnection, rain))
    y, yd = npfunc.jvp(enso_teleconnection, (rain,), (np.ones(7),))
    assert_same(y, ref)


def thomas(a, b, c, d, like=None):
    """Tridiagonal solve by the Thomas algorithm (a sub-, b main, c super-diagonal),
    element by element into buffers shaped like the right-hand side."""
    n = d.shape[0]
    cp = np.empty_like(d) if like is None else np.empty(n, like=like)
    dp = np.empty_like(d) if like is None else np.empty(n, like=like)
    cp[0] = c[0] / b[0]
    dp[0] = d[0] / b[0]
    for i in range(1, n):
        m = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / m if i < n - 1 else 0.0
        dp[i] = (d[i] - a[i] * dp[i - 1]) / m
    x = np.empty_like(dp)
    x[-1] = dp[-1]
    for i in range(n - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return x


def implicit_vertical_diffusion(K, like=False):
    """One backward-Euler step of vertical diffusion with a diffusivity profile K
    (the parameter), solved by the Thomas algorithm on a plain temperature profile."""
    n = K.shape[0]
    T0 = np.linspace(300.0, 250.0, n)
    lower = -np.concatenate([[0.0], K[1:]])
    upper = -np.concatenate([K[:-1], [0.0]])
    main = 1 + K + np.concatenate([K[1:], [0.0]])
    return thomas(lower, main, upper, T0, like=K if like else None)


def test_thomas_vertical_diffusion_buffers_like_the_rhs_match_like_fix():
    """np.empty_like(d) of the plain right-hand side, written with values traced
    through K (once refused under jacrev, naming like=): the plain program passes
    every check of check_array_program, as do buffers made with like=K, and the two
    Jacobians agree to rounding."""
    K = 0.5 + rng.random(6)
    fixed = lambda K: implicit_vertical_diffusion(K, like=True)  # noqa: E731
    assert_same(fixed(K), implicit_vertical_diffusion(K))
    Ks = 0.5 + rng.random((3, 6))
    check_array_program(implicit_vertical_diffusion, K, Ks)
    check_array_program(fixed, K, Ks)
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jac(implicit_vertical_diffusion)(K), jac(fixed)(K), rtol=1e-12, atol=1e-15)
    n = 6
    a, c, b = -np.ones(n), -np.ones(n), 4 + rng.random(n)
    solve_d = lambda d: thomas(a, b, c, d)  # noqa: E731
    check_array_program(solve_d, _field(n), _field(3, n))


def test_ensemble_diagnostic_accumulated_into_shared_buffer_refused_by_vmap():
    """Members adding into one unbatched buffer (a loop accumulates across members)
    cannot run as one batch: vmap refuses; returning the diagnostic and summing works."""
    def member(u, diag):
        diag += u**2
        return u.sum()

    U = _field(3, 4)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap\(f\).*out=x"):
        npfunc.vmap(member, in_dims=(0, None))(U, np.zeros(4))
    d_loop = np.zeros(4)
    r_loop = loop(lambda u: member(u, d_loop), U)
    r, d = npfunc.vmap(lambda u: (u.sum(), u**2))(U)
    assert_same(r, r_loop)
    np.testing.assert_allclose(d.sum(axis=0), d_loop, rtol=1e-15)


def test_interp_traced_fill_values_need_the_twin():
    """np.interp dispatches on x, xp and fp only: traced left/right with a plain
    table reach NumPy's float(left); the message names npfunc.numpy.interp, which works."""
    from npfunc.numpy import interp

    zq = np.array([0.3, 1.7, 2.2, 4.9, -0.5, 6.1])
    fp = np.array([1.0, 0.5, 0.2, 0.4, 0.9, 1.3])
    plain = lambda p: np.interp(zq, np.arange(6.0), fp, left=p[0], right=p[1])  # noqa: E731
    twin = lambda p: interp(zq, np.arange(6.0), fp, left=p[0], right=p[1])  # noqa: E731
    p = np.array([-1.0, 2.0])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev\(f\).*npfunc\.numpy\.interp"):
        npfunc.jacrev(plain)(p)
    assert_same(twin(p), plain(p))
    check_array_program(twin, p, np.array([[-1.0, 2.0], [0.0, 3.0], [1.0, 1.0]]))


def monthly_totals(daily, days=np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])):
    """Monthly precipitation totals from a daily record with np.add.reduceat at month starts."""
    starts = np.concatenate([[0], np.cumsum(days)[:-1]])
    return np.add.reduceat(daily, starts)


def test_monthly_climatology_with_bincount():
    months = np.repeat(np.arange(12), 3)
    clim = lambda T: np.bincount(months, weights=T, minlength=12) / np.bincount(months, minlength=12)  # noqa: E731
    check_array_program(clim, _field(36), _field(3, 36))


@pytest.mark.xfail(strict=True, raises=npfunc.errors.UnsupportedFunctionError,
                   reason="np.add.reduceat (monthly totals of daily data) is not supported on traced values")
def test_monthly_totals_reduceat():
    daily = rng.gamma(0.6, 5.0, size=365)
    check_array_program(monthly_totals, daily, rng.gamma(0.6, 5.0, size=(3, 365)))


def ice_melt_time_event(p):
    """Time until an ice layer melts: a terminal solve_ivp event."""
    Q, L = p

    def thinning(t, y):
        return [-Q / L * (1 + 0.1 * y[0])]

    def melted(t, y):
        return y[0]

    melted.terminal = True
    sol = scipy.integrate.solve_ivp(thinning, (0.0, 100.0), [2.0], events=melted, rtol=1e-10, atol=1e-12)
    return sol.t_events[0][0]


def ice_melt_time_dense(p):
    """The same time found by brentq on the dense solution (t_eval keeps jit able to stage it)."""
    Q, L = p
    sol = scipy.integrate.solve_ivp(lambda t, y: [-Q / L * (1 + 0.1 * y[0])], (0.0, 20.0), [2.0],
                                    dense_output=True, t_eval=np.array([20.0]), rtol=1e-10, atol=1e-12)
    return scipy.optimize.brentq(lambda t: sol.sol(t)[0], 0.0, 20.0)


def _melt_exact(p):
    return p[1] / (0.1 * p[0]) * np.log(1.2)


def test_ice_melt_event_refused_and_the_brentq_fix():
    """Events are refused, naming brentq on sol(t); that fix differentiates
    (against the closed form) and runs under jit."""
    p = np.array([1.0, 3.0])
    np.testing.assert_allclose(ice_melt_time_event(p), _melt_exact(p), rtol=1e-8)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"grad\(f\): solve_ivp with events.*brentq on sol\(t\)"):
        npfunc.grad(ice_melt_time_event)(p)
    np.testing.assert_allclose(ice_melt_time_dense(p), _melt_exact(p), rtol=1e-8)
    np.testing.assert_allclose(npfunc.grad(ice_melt_time_dense)(p), npfunc.grad(_melt_exact)(p), rtol=1e-7)
    # (the value; its type is np.float64 where brentq gives a float: test_brentq_root_times_float32_keeps_float32)
    np.testing.assert_allclose(npfunc.jit(ice_melt_time_dense)(p), ice_melt_time_dense(p), rtol=1e-12)


@pytest.mark.xfail(strict=True, raises=npfunc.errors.NpfuncError,
                   reason="vmap of brentq on a dense ODE solution: the stacked root search evaluates sol.sol(t) at "
                          "batched t, refused as 'vmap over the output times' (the message names vmap(vmap(vmap(f))))")
def test_ice_melt_dense_brentq_under_vmap():
    ps = np.array([[1.0, 3.0], [1.5, 3.0]])
    np.testing.assert_allclose(npfunc.vmap(ice_melt_time_dense)(ps), [_melt_exact(q) for q in ps], rtol=1e-8)


def test_jit_snapshots_a_closed_over_forcing_field():
    """A model reading a forcing field from its closure: jit records the field
    (documented snapshot semantics); clear_cache() or passing it as an argument
    picks up a changed field, and different states give the plain values."""
    forcing = np.linspace(0.0, 1.0, N)

    def step(u):
        return u + 0.1 * (np.roll(u, 1) - 2 * u + np.roll(u, -1)) + 0.05 * forcing

    jstep = npfunc.jit(step)
    u1, u2 = _field(N), _field(N)
    assert_same(jstep(u1), step(u1))
    assert_same(jstep(u2), step(u2))
    old = step(u1)
    forcing[:] = 2.0
    assert_same(jstep(u1), old)  # the recorded field
    jstep.clear_cache()
    assert_same(jstep(u1), step(u1))
    with_arg = npfunc.jit(lambda u, F: u + 0.1 * (np.roll(u, 1) - 2 * u + np.roll(u, -1)) + 0.05 * F)
    assert_same(with_arg(u1, forcing), step(u1))
    forcing[:] = -1.0
    assert_same(with_arg(u1, forcing), step(u1))
