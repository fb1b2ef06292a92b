"""Natural programs from molecular dynamics and force fields, written first as plain
NumPy/SciPy (as a simulation scientist writes them: loops over pairs, minimum-image
periodic boundaries with np.round, in-place updates, preallocated force buffers, dicts of
energy terms, early breaks, float32 where natural) and then run under npfunc's transforms
(jit record + replay, vmap against a Python loop, grad, jacrev, jacfwd, hessian, jvp, vjp,
linearize and their compositions, each called repeatedly on the same and on new inputs)
against the plain program (type, dtype, shape, value, side effects, warnings) and against
five-point differences.

Programs:
  * pair potentials: Lennard-Jones as a double loop with minimum image and vectorised with
    np.triu_indices, an in-place d -= box*np.rint(d/box), a shifted cutoff by np.where;
    analytic LJ forces against -grad (and into a plain preallocated np.zeros buffer, once
    refused naming like=, now checked against the like= spelling); Coulomb with minimum image (gradients in positions and charges); damped
    shifted-force Coulomb with scipy.special.erfc; an Ewald sum (real space, reciprocal
    space by complex structure factors, self term; derivatives in positions and box length);
    Buckingham and Morse (grad(grad) for the vibrational force constant); Yukawa; harmonic
    soft spheres with np.maximum and np.fill_diagonal; Lorentz-Berthelot mixing
    (np.add.outer, np.outer, einsum) with gradients in sigma and epsilon; the CHARMM
    switching function (nested np.where); dipole-dipole energy;
  * bonded terms: harmonic bonds over index arrays, angles by np.arccos(np.clip(...)),
    dihedrals by np.arctan2 (periodic torsions, harmonic impropers with angle wrapping),
    Urey-Bradley by einsum, a force field returning a dict of terms;
  * many-body: Stillinger-Weber (loops with continue), a Tersoff-like bond order, an
    embedded-atom model;
  * integrators: velocity Verlet of a harmonic chain (in-place v += ..., x += ... on copies
    of the arguments), LJ NVE energy drift with pos % box, BAOAB Langevin with frozen noise,
    Berendsen rescaling and centre-of-mass removal in place on the argument, a Nose-Hoover
    step, SHAKE with a convergence break;
  * analysis: virial pressure, the radial distribution histogram (np.histogram, piecewise
    constant: zero derivative), a Gaussian-smoothed RDF, neighbour counts by np.where and
    neighbour lists by np.nonzero (size= under jit), cell indices (np.floor(...).astype(int)),
    wrapping, radius of gyration (np.average with weights), MSD and diffusion by np.polyfit,
    the velocity autocorrelation and Green-Kubo by scipy.integrate.trapezoid, Kabsch RMSD by
    SVD, quaternion rigid bodies;
  * normal modes and lattices: frequencies from the eigh of the mass-weighted Hessian
    (npfunc.hessian inside the program) and the gradient of the highest frequency, 1D chain
    dispersion (grad(grad) in k), diatomic-chain bands (complex Hermitian eigvalsh, vmap over
    k), an FCC lattice by meshgrid and its LJ cohesive energy in the lattice constant, LJ in
    float32, the Einstein crystal free energy, heat capacity from fluctuations, the Debye
    heat capacity by scipy.integrate.simpson;
  * free energies and fitting: FEP by scipy.special.logsumexp, soft-core LJ, thermodynamic
    integration by simpson over lambda, force-field fitting (np.full of a traced parameter
    and predictions into np.empty: once refused, now checked against the like= fix), a tabulated potential through scipy's CubicSpline,
    scipy.optimize.minimize of an LJ cluster with jac=npfunc.grad;
  * more spellings: LJ by scipy.spatial.distance pdist/squareform/cdist, forces scattered by
    np.add.at and np.bincount, a weighted RDF histogram, tabulated forces by np.interp and by
    CubicSpline derivatives, the stress tensor of a triclinic cell (npfunc.grad in the cell
    inside the program, then its Jacobian), the zero-point energy through eigvalsh with six
    zero modes, the dense pair matrix with a masked diagonal (documented reverse-mode NaN,
    the double where), cKDTree neighbour search, random kicks from a Generator, a trajectory
    into a plain preallocated np.empty array;
  * MD with forces = -npfunc.grad(energy) inside the loop, checkpointed Verlet steps, a
    custom_vjp energy with analytic forces, a custom_jvp Morse, functionalize of Berendsen;
    the partition function, TI by scipy.integrate.quad, a vectorised Ewald reciprocal sum;
  * the Maxwell-Boltzmann temperature fit and tail fraction by scipy.stats.maxwell;
  * force-field parameters as nested dicts of Python floats (grad, jacfwd, jacrev, hessian,
    vmap with dict in_dims), a topology dict passed to a jitted force field, a float32
    velocity Verlet with in-place updates and dt of every scalar type.

  * equilibrium geometries by SciPy's solvers: a stretched bond by fsolve from a float start,
    a trimer's minimum (six zero modes) and the pinned trimer's.

Findings (each fixed, with its regression test): scipy.stats.maxwell had no npfunc twin, so
the Maxwell-Boltzmann fit was refused under every transform: npfunc.scipy.stats.maxwell added
(SciPy's formulas, registry samples, tests/test_stats_more.py), reached from
scipy.stats.maxwell; scipy.optimize.fsolve under a transform reshaped the root to x0's shape
(a Python-float x0 gave shape () instead of SciPy's (1,): Jacobians of the wrong shape and a
(batch,) vmap result; a (2, 2) x0 gave (2, 2) instead of (4,)); the implicit derivative of a
minimum whose Hessian is singular (a cluster's zero modes) raised numpy's raw LinAlgError: it
is refused now (singular to working precision), naming the pinned coordinates and the
stop_gradient(res.x) envelope spelling.  No other program gave a silent difference, a raw
error or an unhelpful refusal.  Refusals tested for naming a working fix: a
traced value written into a plain array made otherwise (velocity Verlet or centre-of-mass
removal differentiated in an argument while a copy of another, plain, argument is updated
in place), np.diag / np.mean of a list holding a traced value, np.nonzero under jit, a data-dependent break (SHAKE) under
jit, cKDTree on traced positions, draws from a Generator under jit.  Documented conventions
met: reverse-mode NaN from sqrt at the masked diagonal of a dense distance matrix; quad's
float comes back as np.float64 under jit.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.optimize
import scipy.special as sps

import npfunc
from natural_checks import assert_deriv, assert_same, fd

# ---------- pair potentials with minimum image ----------

def lj_energy_loop(pos, box, eps=1.0, sigma=1.0):
    n = pos.shape[0]
    e = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            d = d - box * np.round(d / box)
            r2 = np.dot(d, d)
            sr6 = (sigma**2 / r2) ** 3
            e += 4 * eps * (sr6 * sr6 - sr6)
    return e


def lj_energy_cut(pos, box, rc=2.5, eps=1.0, sigma=1.0):
    i, j = np.triu_indices(pos.shape[0], k=1)
    d = pos[i] - pos[j]
    d -= box * np.rint(d / box)
    r2 = np.sum(d * d, axis=1)
    sr6 = (sigma**2 / r2) ** 3
    src6 = (sigma / rc) ** 6
    shift = 4 * eps * (src6**2 - src6)
    e = np.where(r2 < rc * rc, 4 * eps * (sr6**2 - sr6) - shift, 0.0)
    return e.sum()


def lj_forces_analytic(pos, box, eps=1.0, sigma=1.0):
    n = pos.shape[0]
    f = np.zeros_like(pos)
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            d = d - box * np.round(d / box)
            r2 = d @ d
            sr6 = (sigma**2 / r2) ** 3
            fmag = 24 * eps * (2 * sr6**2 - sr6) / r2
            f[i] += fmag * d
            f[j] -= fmag * d
    return f


def lj_forces_buffer(pos, box):
    """Forces into a preallocated plain np.zeros buffer (once refused, naming like=)."""
    n = pos.shape[0]
    f = np.zeros((n, 3))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = pos[i] - pos[j]
            d = d - box * np.round(d / box)
            r2 = d @ d
            sr6 = 1.0 / r2**3
            f[i] += 24 * (2 * sr6**2 - sr6) / r2 * d
    return f


def coulomb_energy(pos, q, box, ke=1.0):
    n = len(q)
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            d -= box * np.round(d / box)
            e = e + ke * q[i] * q[j] / np.linalg.norm(d)
    return e


def dsf_coulomb(pos, q, alpha=0.3, rc=3.0):
    """Damped shifted-force Coulomb (Fennell & Gezelter)."""
    n = len(q)
    diff = pos[:, None, :] - pos[None, :, :]
    r = np.sqrt(np.sum(diff**2, axis=-1) + np.eye(n))
    erfc_rc = sps.erfc(alpha * rc) / rc
    dshift = erfc_rc / rc + 2 * alpha / np.sqrt(np.pi) * np.exp(-alpha**2 * rc**2) / rc
    pair = sps.erfc(alpha * r) / r - erfc_rc + dshift * (r - rc)
    pair = np.where((r < rc) & ~np.eye(n, dtype=bool), pair, 0.0)
    self_e = -(erfc_rc / 2 + alpha / np.sqrt(np.pi)) * np.sum(q**2)
    return 0.5 * q @ pair @ q + self_e


def ewald_energy(pos, q, L, alpha=1.2, kmax=2):
    """Ewald sum in a cubic box: real space (minimum image), reciprocal, self."""
    n = len(q)
    e_real = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            d = d - L * np.round(d / L)
            r = np.sqrt(np.sum(d**2))
            e_real += q[i] * q[j] * sps.erfc(alpha * r) / r
    V = L**3
    e_rec = 0.0
    for nx in range(-kmax, kmax + 1):
        for ny in range(-kmax, kmax + 1):
            for nz in range(-kmax, kmax + 1):
                if nx == ny == nz == 0:
                    continue
                k = 2 * np.pi * np.array([nx, ny, nz]) / L
                k2 = k @ k
                S = np.sum(q * np.exp(1j * pos @ k))
                e_rec += np.exp(-k2 / (4 * alpha**2)) / k2 * np.abs(S) ** 2
    e_rec *= 2 * np.pi / V
    e_self = -alpha / np.sqrt(np.pi) * np.sum(q**2)
    return e_real + e_rec + e_self


def buckingham(r, A=1388.77, rho=0.3623, C=175.0):
    return A * np.exp(-r / rho) - C / r**6


def morse(r, De=4.7, a=1.9, re=0.74):
    return De * (1 - np.exp(-a * (r - re))) ** 2


def yukawa_energy(pos, kappa=0.8):
    i, j = np.triu_indices(len(pos), 1)
    r = np.linalg.norm(pos[i] - pos[j], axis=1)
    return np.sum(np.exp(-kappa * r) / r)


def soft_sphere(pos, diam, box):
    """Harmonic soft spheres (jamming), polydisperse diameters."""
    d = pos[:, None, :] - pos[None, :, :]
    d = d - box * np.round(d / box)
    r = np.sqrt((d**2).sum(-1) + np.eye(len(pos)))
    sig = 0.5 * (diam[:, None] + diam[None, :])
    overlap = np.maximum(0.0, 1.0 - r / sig)
    np.fill_diagonal(overlap, 0.0)
    return 0.25 * np.sum(overlap**2)


def lb_lj_energy(pos, sig, eps):
    """Lorentz-Berthelot mixing."""
    sij = np.add.outer(sig, sig) / 2
    eij = np.sqrt(np.outer(eps, eps))
    d = pos[:, None] - pos[None, :]
    r2 = np.einsum('ijk,ijk->ij', d, d)
    iu = np.triu_indices(len(pos), 1)
    x = (sij[iu] ** 2 / r2[iu]) ** 3
    return np.sum(4 * eij[iu] * (x * x - x))


def charmm_switch_lj(r, ron=2.0, roff=2.5):
    sr6 = r**-6.0
    v = 4 * (sr6 * sr6 - sr6)
    s = (roff**2 - r**2) ** 2 * (roff**2 + 2 * r**2 - 3 * ron**2) / (roff**2 - ron**2) ** 3
    sw = np.where(r < ron, 1.0, np.where(r < roff, s, 0.0))
    return v * sw


def dipole_dipole(mu1, mu2, rvec):
    r = np.linalg.norm(rvec)
    rhat = rvec / r
    return (mu1 @ mu2 - 3 * (mu1 @ rhat) * (mu2 @ rhat)) / r**3


# ---------- bonded terms ----------

def bond_energy(pos, bonds, k, r0):
    d = pos[bonds[:, 0]] - pos[bonds[:, 1]]
    r = np.linalg.norm(d, axis=1)
    return 0.5 * np.sum(k * (r - r0) ** 2)


def angle_energy(pos, angles, k, theta0):
    a = pos[angles[:, 0]] - pos[angles[:, 1]]
    b = pos[angles[:, 2]] - pos[angles[:, 1]]
    c = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    theta = np.arccos(np.clip(c, -1.0, 1.0))
    return 0.5 * np.sum(k * (theta - theta0) ** 2)


def dihedral_angle(p0, p1, p2, p3):
    b0 = p0 - p1
    b1 = p2 - p1
    b2 = p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    x = np.dot(v, w)
    y = np.dot(np.cross(b1n, v), w)
    return np.arctan2(y, x)


def torsion_energy(pos, quads, kphi, nper, delta):
    e = 0.0
    for (a, b, c, d), k, n, dl in zip(quads, kphi, nper, delta):
        phi = dihedral_angle(pos[a], pos[b], pos[c], pos[d])
        e += k * (1 + np.cos(n * phi - dl))
    return e


def improper_energy(pos, quad, k=10.0, psi0=0.0):
    a, b, c, d = quad
    psi = dihedral_angle(pos[a], pos[b], pos[c], pos[d])
    dpsi = psi - psi0
    dpsi = dpsi - 2 * np.pi * np.round(dpsi / (2 * np.pi))
    return 0.5 * k * dpsi**2


def urey_bradley(pos, triples, kub, s0):
    d = pos[triples[:, 0]] - pos[triples[:, 2]]
    s = np.sqrt(np.einsum('ij,ij->i', d, d))
    return np.sum(kub * (s - s0) ** 2)


def force_field_terms(pos, top):
    """Total energy with a dict of terms."""
    terms = {}
    terms['bond'] = bond_energy(pos, top['bonds'], top['kb'], top['r0'])
    terms['angle'] = angle_energy(pos, top['angles'], top['ka'], top['theta0'])
    terms['dihedral'] = torsion_energy(pos, top['quads'], top['kphi'], top['n'], top['delta'])
    terms['total'] = sum(terms.values())
    return terms


# ---------- many-body ----------

def stillinger_weber(pos, eps=2.1683, sigma=2.0951, a=1.8, lam=21.0, gamma=1.2,
                     A=7.049556277, B=0.6022245584):
    n = len(pos)
    rc = a * sigma
    e2 = 0.0
    e3 = 0.0
    for i in range(n):
        for j in range(n):
            if j == i:
                continue
            rij = pos[j] - pos[i]
            r = np.sqrt(rij @ rij)
            if j > i:
                e2 += A * eps * (B * (sigma / r) ** 4 - 1) * np.exp(sigma / (r - rc))
            for k in range(j + 1, n):
                if k == i:
                    continue
                rik = pos[k] - pos[i]
                s = np.sqrt(rik @ rik)
                cos = rij @ rik / (r * s)
                e3 += lam * eps * (cos + 1 / 3) ** 2 * np.exp(gamma * sigma / (r - rc) + gamma * sigma / (s - rc))
    return e2 + e3


def tersoff_like(pos, A=1830.8, B=471.18, l1=2.4799, l2=1.7322, beta=1.1e-6,
                 n=0.78734, c=1.0039e5, d=16.217, h=-0.59825):
    N = len(pos)
    E = 0.0
    for i in range(N):
        for j in range(N):
            if i == j:
                continue
            rij = pos[j] - pos[i]
            r = np.linalg.norm(rij)
            zeta = 0.0
            for k in range(N):
                if k == i or k == j:
                    continue
                rik = pos[k] - pos[i]
                cos_t = rij @ rik / (r * np.linalg.norm(rik))
                g = 1 + c**2 / d**2 - c**2 / (d**2 + (h - cos_t) ** 2)
                zeta = zeta + g
            bij = (1 + (beta * zeta) ** n) ** (-1 / (2 * n))
            E += 0.5 * (A * np.exp(-l1 * r) - bij * B * np.exp(-l2 * r))
    return E


def eam_energy(pos, A=1.0, beta=2.0, r0=1.0, phi0=0.5, alpha=3.0):
    d = pos[:, None, :] - pos[None, :, :]
    r = np.sqrt(np.sum(d**2, -1) + np.eye(len(pos)))
    off = 1.0 - np.eye(len(pos))
    rho = np.sum(off * np.exp(-beta * (r / r0 - 1)), axis=1)
    F = -A * np.sqrt(rho)
    phi = phi0 * np.exp(-alpha * (r / r0 - 1)) * off
    return F.sum() + 0.5 * phi.sum()


# ---------- integrators ----------

def harmonic_chain_forces(x, k=1.0):
    f = np.zeros_like(x)
    f[1:] -= k * (x[1:] - x[:-1] - 1.0)
    f[:-1] += k * (x[1:] - x[:-1] - 1.0)
    return f


def velocity_verlet(x0, v0, dt, nsteps, m=1.0):
    x = x0.copy()
    v = v0.copy()
    f = harmonic_chain_forces(x)
    for _ in range(nsteps):
        v += 0.5 * dt * f / m
        x += dt * v
        f = harmonic_chain_forces(x)
        v += 0.5 * dt * f / m
    ke = 0.5 * m * np.sum(v**2)
    pe = 0.5 * np.sum((x[1:] - x[:-1] - 1.0) ** 2)
    return x, v, ke + pe


def lj_md_energy_drift(pos0, vel0, box, dt=0.002, nsteps=5):
    pos = pos0.copy()
    vel = vel0.copy()
    f = lj_forces_analytic(pos, box)
    traj = []
    for step in range(nsteps):
        vel = vel + 0.5 * dt * f
        pos = pos + dt * vel
        pos = pos % box
        f = lj_forces_analytic(pos, box)
        vel = vel + 0.5 * dt * f
        traj.append(lj_energy_loop(pos, box) + 0.5 * np.sum(vel**2))
    traj = np.array(traj)
    return traj[-1] - traj[0]


def baoab_step(x, v, noise, dt=0.05, gamma=1.0, kT=1.0, k=2.0):
    v = v - 0.5 * dt * k * x
    x = x + 0.5 * dt * v
    c1 = np.exp(-gamma * dt)
    v = c1 * v + np.sqrt(kT * (1 - c1**2)) * noise
    x = x + 0.5 * dt * v
    v = v - 0.5 * dt * k * x
    return x, v


def langevin_run(x0, noises, dt=0.05):
    x = x0
    v = np.zeros_like(x0)
    for xi in noises:
        x, v = baoab_step(x, v, xi, dt)
    return np.mean(x**2)


def berendsen_rescale(vel, T0, tau=0.1, dt=0.01, kB=1.0):
    n = vel.shape[0]
    ke = 0.5 * np.sum(vel**2)
    T = 2 * ke / (3 * n * kB)
    lam = np.sqrt(1 + dt / tau * (T0 / T - 1))
    vel *= lam
    return T


def remove_com_motion(vel, masses):
    p = (masses[:, None] * vel).sum(axis=0)
    vel -= p / masses.sum()
    return vel


def nose_hoover_step(x, v, xi, dt=0.01, Q=1.0, T0=1.0, k=1.0):
    n = x.size
    ke2 = np.sum(v**2)
    xi = xi + 0.5 * dt * (ke2 - n * T0) / Q
    v = v * np.exp(-0.5 * dt * xi)
    v = v - 0.5 * dt * k * x
    x = x + dt * v
    v = v - 0.5 * dt * k * x
    v = v * np.exp(-0.5 * dt * xi)
    ke2 = np.sum(v**2)
    xi = xi + 0.5 * dt * (ke2 - n * T0) / Q
    return x, v, xi


def shake_bond(x_old, x_new, d0, tol=1e-10, maxit=100):
    """SHAKE for one bond between two unit-mass particles."""
    x = x_new.copy()
    r_old = x_old[0] - x_old[1]
    for it in range(maxit):
        r = x[0] - x[1]
        diff = r @ r - d0**2
        if abs(diff) < tol:
            break
        g = diff / (4 * (r @ r_old))
        x[0] -= g * r_old
        x[1] += g * r_old
    return x


# ---------- analysis ----------

def virial_pressure(pos, vel, box, masses=None):
    n = len(pos)
    if masses is None:
        masses = np.ones(n)
    V = box**3
    ke2 = np.sum(masses[:, None] * vel**2)
    W = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            d = d - box * np.round(d / box)
            r2 = d @ d
            sr6 = 1 / r2**3
            W += 24 * (2 * sr6**2 - sr6)
    return (ke2 + W) / (3 * V)


def rdf(pos, box, nbins=10, rmax=None):
    n = len(pos)
    if rmax is None:
        rmax = box / 2
    i, j = np.triu_indices(n, 1)
    d = pos[i] - pos[j]
    d -= box * np.round(d / box)
    r = np.linalg.norm(d, axis=1)
    counts, edges = np.histogram(r, bins=nbins, range=(0.0, rmax))
    rmid = 0.5 * (edges[1:] + edges[:-1])
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    rho = n / box**3
    g = 2 * counts / (n * rho * shell)
    return rmid, g


def smooth_rdf(pos, rgrid, width=0.1):
    i, j = np.triu_indices(len(pos), 1)
    r = np.linalg.norm(pos[i] - pos[j], axis=1)
    kern = np.exp(-0.5 * ((rgrid[:, None] - r[None, :]) / width) ** 2)
    return kern.sum(axis=1) / (np.sqrt(2 * np.pi) * width * rgrid**2)


def neighbour_count(pos, rc):
    d = pos[:, None] - pos[None]
    r2 = (d**2).sum(-1)
    mask = np.where((r2 < rc**2) & (r2 > 0), 1, 0)
    return mask.sum(axis=1)


def neighbour_list(pos, rc):
    d = pos[:, None] - pos[None]
    r = np.sqrt((d**2).sum(-1))
    i, j = np.nonzero(np.triu(r < rc, 1))
    return i, j


def cell_index(pos, box, ncell):
    c = np.floor(pos / box * ncell).astype(int) % ncell
    return c[:, 0] * ncell**2 + c[:, 1] * ncell + c[:, 2]


def wrap(pos, box):
    return pos - box * np.floor(pos / box)


def radius_of_gyration(pos, masses):
    com = np.average(pos, axis=0, weights=masses)
    return np.sqrt(np.sum(masses * np.sum((pos - com) ** 2, axis=1)) / masses.sum())


def msd(traj):
    disp = traj - traj[0]
    return np.mean(np.sum(disp**2, axis=-1), axis=-1)


def diffusion_from_msd(traj, dt):
    m = msd(traj)
    t = dt * np.arange(len(m))
    slope, intercept = np.polyfit(t[1:], m[1:], 1)
    return slope / 6


def vacf(vel):
    nt = vel.shape[0]
    c = np.array([np.mean(np.sum(vel[: nt - lag] * vel[lag:], axis=-1)) for lag in range(nt // 2)])
    return c / c[0]


def green_kubo(vel, dt):
    c = vacf(vel) * np.mean(np.sum(vel**2, -1)) / 3
    return scipy.integrate.trapezoid(c, dx=dt)


def kabsch_rmsd(P, Q):
    P = P - P.mean(axis=0)
    Q = Q - Q.mean(axis=0)
    H = P.T @ Q
    U, S, Vt = np.linalg.svd(H)
    dsign = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag([1.0, 1.0, dsign])
    R = Vt.T @ D @ U.T
    diff = P @ R.T - Q
    return np.sqrt(np.mean(np.sum(diff**2, axis=1)))


def quat_rotate(q, v):
    q = q / np.linalg.norm(q)
    w, x, y, z = q
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return v @ R.T


def rigid_body_energy(q, com, body, others):
    atoms = com + quat_rotate(q, body)
    d = atoms[:, None, :] - others[None, :, :]
    r2 = np.sum(d * d, -1)
    return np.sum(4 * (r2**-6 - r2**-3))


# ---------- normal modes / lattice ----------

def cluster_frequencies(pos_flat, masses, hess_fn):
    H = hess_fn(pos_flat)
    m3 = np.repeat(masses, 3)
    Hm = H / np.sqrt(np.outer(m3, m3))
    w2, modes = np.linalg.eigh(Hm)
    return np.sqrt(np.abs(w2)), modes


def chain_dispersion(k, K1, K2, m=1.0, a=1.0):
    """Next-nearest-neighbour 1D chain: omega(k)."""
    w2 = (4 * K1 * np.sin(k * a / 2) ** 2 + 4 * K2 * np.sin(k * a) ** 2) / m
    return np.sqrt(w2)


def diatomic_chain_bands(k, K, m1, m2):
    D = np.array([[2 * K / m1, -K * (1 + np.exp(-1j * k)) / np.sqrt(m1 * m2)],
                  [-K * (1 + np.exp(1j * k)) / np.sqrt(m1 * m2), 2 * K / m2]])
    return np.sqrt(np.abs(np.linalg.eigvalsh(D)))


def fcc_lattice(a, ncell=2, dtype=np.float64):
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], dtype=dtype)
    g = np.arange(ncell, dtype=dtype)
    cells = np.stack(np.meshgrid(g, g, g, indexing='ij'), -1).reshape(-1, 3)
    return (a * (cells[:, None, :] + basis[None, :, :])).reshape(-1, 3)


def fcc_lj_cohesive(a, ncell=2):
    pos = fcc_lattice(a, ncell)
    box = a * ncell
    return lj_energy_cut(pos, box, rc=0.49 * box) / len(pos)


def lj_energy_f32(pos, box):
    i, j = np.triu_indices(pos.shape[0], 1)
    d = pos[i] - pos[j]
    d = d - box * np.round(d / box)
    r2 = np.sum(d * d, axis=1)
    inv6 = np.float32(1) / r2**3
    return np.sum(np.float32(4) * (inv6 * inv6 - inv6))


def einstein_free_energy(omega, T, hbar=1.0, kB=1.0):
    x = hbar * omega / (kB * T)
    return np.sum(0.5 * hbar * omega + kB * T * np.log1p(-np.exp(-x)))


def heat_capacity_fluct(energies, T, kB=1.0):
    return np.var(energies) / (kB * T**2)


def debye_heat_capacity(T, TD, n=64):
    x = np.linspace(1e-6, TD / T, n)
    integrand = x**4 * np.exp(x) / np.expm1(x) ** 2
    return 9 * (T / TD) ** 3 * scipy.integrate.simpson(integrand, x=x)


# ---------- free energies / fitting ----------

def fep_delta_f(dU, kT=1.0):
    n = len(dU)
    return -kT * (sps.logsumexp(-dU / kT) - np.log(n))


def softcore_lj(r, lam, alpha=0.5):
    s6 = alpha * (1 - lam) + r**6
    return 4 * lam * (1 / s6**2 - 1 / s6)


def ti_integrand(lam, rs):
    """<dU/dlam> over a fixed sample of distances (finite difference-free: analytic)."""
    s6 = 0.5 * (1 - lam) + rs**6
    dU = 4 * (1 / s6**2 - 1 / s6) + 4 * lam * (2 * 0.5 / s6**3 - 0.5 / s6**2)
    return np.mean(dU)


def ti_free_energy(rs, nlam=9):
    lams = np.linspace(0, 1, nlam)
    vals = np.array([ti_integrand(l, rs) for l in lams])
    return scipy.integrate.simpson(vals, x=lams)


def ff_fit_loss(params, configs, e_ref):
    eps, sigma = params
    pred = np.empty(len(configs))
    for c, pos in enumerate(configs):
        pred[c] = lb_lj_energy(pos, np.full(len(pos), sigma), np.full(len(pos), eps))
    return np.mean((pred - e_ref) ** 2)


def tabulated_potential_energy(r, table_r, table_v):
    spl = scipy.interpolate.CubicSpline(table_r, table_v)
    return np.sum(spl(r))


def lj_cluster_minimize(x0):
    res = scipy.optimize.minimize(lambda x: lj_energy_loop(x.reshape(-1, 3), 1e6), x0, method='BFGS')
    return res.fun


# =================================================================================================
# checks shared by the tests
# =================================================================================================

BOX = 3.0


def cluster(n, box=BOX, seed=0):
    """n atoms on a perturbed simple-cubic sublattice of a periodic box."""
    r = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] * (box / 2)
    return g + 0.1 * r.standard_normal((n, 3)) + 0.5


def fd_hvp(f, x, v, eps=1e-3):
    """Hessian-vector product by five-point differences of five-point gradients."""
    return fd(lambda t: fd(f, x + t[0] * v, eps), np.array([0.0]), eps)[:, 0]


def fd_hessian(f, x, eps=1e-3):
    return fd(lambda y: fd(f, y, eps), x, eps)


def repeated(call, inputs, n=5):
    """Calls ``call`` n times on each input, interleaved (the same input again and a new
    one in between): every later call agrees bit for bit with the first on that input."""
    first = [call(x) for x in inputs]
    for _ in range(n - 1):
        for x, want in zip(inputs, first):
            got = call(x)
            if isinstance(want, tuple):
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_array_equal(got, want)
    return first


def check_energy(f, x, x_new, *, hessian=True, rtol=1e-6, atol=1e-8):
    """An energy f(flat coordinates) -> scalar under every transform: jit (recording and
    replays) and vmap (in_dims 0 and 1) against the plain program; grad, jacrev, jacfwd, vjp,
    jvp, linearize against five-point differences; hessian, jvp(grad), jacfwd(grad) against
    differences of differences; vmap(grad), jit(grad), jit(vmap(grad)) against per-sample
    differences.  grad, hessian, jvp(grad), jit(grad) and jit(vmap(grad)) are called five
    times each, interleaved on x and x_new (eager npfunc compiles a cached pull-back after a
    few calls: later calls must agree bit for bit with the first)."""
    xs = [x, x_new]
    want = [f(y) for y in xs]
    jf = npfunc.jit(f)
    for _ in range(3):
        for y, w in zip(xs, want):
            assert_same(jf(y), w)
    X = np.stack([x, x_new, 0.5 * (x + x_new)])
    assert_same(npfunc.vmap(f)(X), np.stack([f(y) for y in X]))
    assert_same(npfunc.vmap(f, in_dims=1)(X.T.copy()), np.stack([f(y) for y in X]))
    grads = [fd(f, y) for y in xs]
    for got, g in zip(repeated(npfunc.grad(f), xs), grads):
        assert_deriv(got, g, rtol=rtol, atol=atol)
    for call in (npfunc.jacrev(f), npfunc.jacfwd(f), lambda y: npfunc.vjp(f, y)[1](1.0)[0]):
        for got, g in zip(repeated(call, xs, n=2), grads):
            assert_deriv(got, g, rtol=rtol, atol=atol)
    v = np.linspace(-1.0, 1.0, x.size)
    for got, g in zip(repeated(lambda y: npfunc.jvp(f, (y,), (v,))[1], xs, n=2), grads):
        np.testing.assert_allclose(got, g @ v, rtol=rtol, atol=atol * x.size)
    value, lin = npfunc.linearize(f, x)
    assert_same(value, want[0])
    np.testing.assert_allclose(lin(v), grads[0] @ v, rtol=rtol, atol=atol * x.size)
    hvps = repeated(lambda y: npfunc.jvp(npfunc.grad(f), (y,), (v,))[1], xs)
    for got, y in zip(hvps, xs):
        assert_deriv(got, fd_hvp(f, y, v), rtol=1e-5, atol=1e-6)
    if hessian:   # the full Hessian against differences at x, times v against them at x_new
        H = fd_hessian(f, x)
        got, got_new = repeated(npfunc.hessian(f), xs)
        assert_deriv(got, H, rtol=1e-5, atol=1e-6)
        assert_deriv(got_new @ v, hvps[1], rtol=1e-10, atol=1e-10)
        assert_deriv(npfunc.jacfwd(npfunc.grad(f))(x), H, rtol=1e-5, atol=1e-6)
    per_sample = np.stack([fd(f, y) for y in X])
    assert_deriv(repeated(npfunc.vmap(npfunc.grad(f)), [X], n=2)[0], per_sample, rtol=rtol, atol=atol)
    assert_deriv(npfunc.vmap(npfunc.grad(f), in_dims=1, out_dims=1)(X.T.copy()), per_sample.T, rtol=rtol, atol=atol)
    jg = npfunc.jit(npfunc.grad(f))
    jvg = npfunc.jit(npfunc.vmap(npfunc.grad(f)))
    for _ in range(5):
        for y, g in zip(xs, grads):
            assert_deriv(jg(y), g, rtol=rtol, atol=atol)
        assert_deriv(jvg(X), per_sample, rtol=rtol, atol=atol)
        assert_deriv(jvg(X[::-1].copy()), per_sample[::-1], rtol=rtol, atol=atol)


def assert_jit_replays(f, *argsets, **jit_kwargs):
    jf = npfunc.jit(f, **jit_kwargs)
    for _ in range(2):
        for args in argsets:
            got, want = jf(*args), f(*args)
            if isinstance(want, tuple):
                assert type(got) is tuple and len(got) == len(want)
                for g, w in zip(got, want):
                    assert_same(g, w)
            elif isinstance(want, dict):
                assert type(got) is dict and got.keys() == want.keys()
                for k in want:
                    assert_same(got[k], want[k])
            else:
                assert_same(got, want)


Q5 = np.array([1.0, -1.0, 0.5, -0.5, 0.0])


# =================================================================================================
# 1. pair potentials
# =================================================================================================


@pytest.mark.parametrize("energy", [lj_energy_loop, lj_energy_cut])
def test_lennard_jones_minimum_image_all_transforms(energy):
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda p: energy(p.reshape(-1, 3), BOX), pos.ravel(), pos2.ravel())
    # positional arguments as users pass them: a (n, 3) array and a Python float box
    assert_jit_replays(energy, (pos, BOX), (pos2, BOX))
    assert type(energy(pos, BOX)) is np.float64


def test_lj_cut_inplace_minimum_image_leaves_argument_alone():
    pos = cluster(5)
    keep = pos.copy()
    for T in (npfunc.grad, npfunc.hessian, npfunc.jit):
        T(lj_energy_cut)(pos, BOX)
        np.testing.assert_array_equal(pos, keep)


def test_lj_forces_are_minus_grad_and_their_jacobian():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    for p in (pos, pos2, pos, pos2, pos):
        np.testing.assert_allclose(-npfunc.grad(lj_energy_loop)(p, BOX), lj_forces_analytic(p, BOX),
                                   rtol=1e-12, atol=1e-12)
    assert_jit_replays(lj_forces_analytic, (pos, BOX), (pos2, BOX))
    F = lambda p: lj_forces_analytic(p.reshape(-1, 3), BOX).ravel()
    for J in repeated(npfunc.jacrev(F), [pos.ravel(), pos2.ravel()]):
        pass
    assert_deriv(npfunc.jacrev(F)(pos.ravel()), fd(F, pos.ravel()), rtol=1e-6, atol=1e-7)
    assert_deriv(npfunc.jacfwd(F)(pos2.ravel()), fd(F, pos2.ravel()), rtol=1e-6, atol=1e-7)
    # the force Jacobian is minus the Hessian of the energy
    np.testing.assert_allclose(npfunc.jacfwd(F)(pos.ravel()),
                               -npfunc.hessian(lambda p: lj_energy_loop(p.reshape(-1, 3), BOX))(pos.ravel()),
                               rtol=1e-10, atol=1e-10)
    got = npfunc.vmap(lj_forces_analytic, in_dims=(0, None))(np.stack([pos, pos2]), BOX)
    assert_same(got, np.stack([lj_forces_analytic(pos, BOX), lj_forces_analytic(pos2, BOX)]))


def lj_forces_buffer_like(pos, box):
    """lj_forces_buffer with the buffer created like the positions (the named fix)."""
    n = pos.shape[0]
    f = np.zeros((n, 3), like=pos)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = pos[i] - pos[j]
            d = d - box * np.round(d / box)
            r2 = d @ d
            sr6 = 1.0 / r2**3
            f[i] += 24 * (2 * sr6**2 - sr6) / r2 * d
    return f


def test_forces_into_a_plain_buffer_match_the_like_fix():
    """Forces into a plain np.zeros buffer (once refused under jit, jacfwd and jacrev,
    naming like=): jit (recording and replays) and vmap give NumPy's values, jacfwd and
    jacrev the differences' Jacobian, equal to the like= spelling's to rounding."""
    pos, pos2 = cluster(4), cluster(4, seed=1)
    assert_same(lj_forces_buffer_like(pos, BOX), lj_forces_buffer(pos, BOX))
    assert_jit_replays(lj_forces_buffer_like, (pos, BOX), (pos2, BOX))
    assert_jit_replays(lj_forces_buffer, (pos, BOX), (pos2, BOX))
    F = lambda p: lj_forces_buffer_like(p.reshape(-1, 3), BOX).ravel()
    F_plain = lambda p: lj_forces_buffer(p.reshape(-1, 3), BOX).ravel()
    for jac in (npfunc.jacfwd, npfunc.jacrev):
        for J, J_plain, p in zip(repeated(jac(F), [pos.ravel(), pos2.ravel()]),
                                 repeated(jac(F_plain), [pos.ravel(), pos2.ravel()]), (pos, pos2)):
            assert_deriv(J, fd(F_plain, p.ravel()), rtol=1e-6, atol=1e-7)
            assert_deriv(J_plain, fd(F_plain, p.ravel()), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(J_plain, J, rtol=1e-12, atol=1e-12)
    want = np.stack([lj_forces_buffer(pos, BOX), lj_forces_buffer(pos2, BOX)])
    got = npfunc.vmap(lj_forces_buffer_like, in_dims=(0, None))(np.stack([pos, pos2]), BOX)
    assert_same(got, want)
    assert_same(npfunc.vmap(lj_forces_buffer, in_dims=(0, None))(np.stack([pos, pos2]), BOX), want)


def test_coulomb_minimum_image_in_positions_and_charges():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda p: coulomb_energy(p.reshape(-1, 3), Q5, BOX), pos.ravel(), pos2.ravel(), hessian=False)
    fq = lambda q: coulomb_energy(pos, q, BOX)
    for g in repeated(npfunc.grad(fq), [Q5, Q5[::-1].copy()]):
        pass
    assert_deriv(npfunc.grad(fq)(Q5), fd(fq, Q5))
    # the energy is quadratic in the charges: its Hessian is the (constant) pair matrix
    H = npfunc.hessian(fq)(Q5)
    assert_deriv(H, fd_hessian(fq, Q5), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(npfunc.hessian(fq)(2 * Q5), H, rtol=1e-12)
    assert_jit_replays(coulomb_energy, (pos, Q5, BOX), (pos2, -Q5, BOX))
    # per-configuration energies: positions mapped on axis 0, charges on axis 1 of a (5, 2) table
    Qs = np.stack([Q5, 0.5 * Q5], axis=1)
    got = npfunc.vmap(coulomb_energy, in_dims=(0, 1, None))(np.stack([pos, pos2]), Qs, BOX)
    assert_same(got, np.stack([coulomb_energy(pos, Q5, BOX), coulomb_energy(pos2, 0.5 * Q5, BOX)]))


def test_damped_shifted_force_coulomb_erfc():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda p: dsf_coulomb(p.reshape(-1, 3), Q5), pos.ravel(), pos2.ravel())
    fa = lambda a: dsf_coulomb(pos, Q5, alpha=a)
    for _ in range(5):
        np.testing.assert_allclose(npfunc.grad(npfunc.grad(fa))(0.3), fd(lambda b: fd(fa, b, 1e-3), np.array(0.3), 1e-3),
                                   rtol=1e-6)
    assert type(npfunc.grad(fa)(0.3)) is np.float64


def test_ewald_sum_positions_and_box_length():
    pos, pos2 = cluster(4), cluster(4, seed=1)
    q = Q5[:4]
    check_energy(lambda p: ewald_energy(p.reshape(-1, 3), q, BOX, kmax=1), pos.ravel(), pos2.ravel(), hessian=False)
    fL = lambda L: ewald_energy(pos, q, L, kmax=1)
    for _ in range(5):
        for L in (3.0, 3.3):
            np.testing.assert_allclose(npfunc.grad(fL)(L), fd(fL, np.array(L)), rtol=1e-7)
    np.testing.assert_allclose(npfunc.grad(npfunc.grad(fL))(3.0), fd(lambda b: fd(fL, b, 1e-3), np.array(3.0), 1e-3),
                               rtol=1e-5)
    assert_jit_replays(lambda p, L: ewald_energy(p, q, L, kmax=1), (pos, 3.0), (pos2, 3.2))
    # charge neutrality: the gradient in the charges (electrostatic potentials) under vmap over configurations
    gq = npfunc.vmap(npfunc.grad(lambda qq, p: ewald_energy(p, qq, BOX, kmax=1)), in_dims=(None, 0))
    got = gq(q, np.stack([pos, pos2]))
    want = np.stack([fd(lambda qq: ewald_energy(p, qq, BOX, kmax=1), q) for p in (pos, pos2)])
    assert_deriv(got, want, rtol=1e-6)


@pytest.mark.parametrize("pot,r", [(buckingham, 2.0), (morse, 0.8), (morse, 1.3)])
def test_radial_potentials_grad_grad_types(pot, r):
    k_fd = fd(lambda s: fd(pot, s, 1e-3), np.array(r), 1e-3)
    gg = npfunc.grad(npfunc.grad(pot))
    first = gg(r)
    assert type(first) is np.float64
    np.testing.assert_allclose(first, k_fd, rtol=1e-6)
    for _ in range(5):
        assert gg(r) == first
        np.testing.assert_allclose(gg(r + 0.05), fd(lambda s: fd(pot, s, 1e-3), np.array(r + 0.05), 1e-3), rtol=1e-6)
    for x in (r, np.float64(r), np.array(r), np.float32(r)):
        assert_same(npfunc.jit(pot)(x), pot(x))
        assert_same(npfunc.grad(pot)(x), pot(np.asarray(x)) * 0 + np.asarray(fd(pot, np.array(r)), dtype=np.asarray(x).dtype)[()],
                    rtol=1e-4 if np.asarray(x).dtype == np.float32 else 1e-8)
    rr = np.linspace(r - 0.1, r + 0.5, 5)
    assert_same(npfunc.vmap(pot)(rr), pot(rr))
    assert_deriv(npfunc.vmap(npfunc.grad(pot))(rr), np.diag(fd(pot, rr)))
    assert_deriv(npfunc.vmap(gg)(rr), np.array([fd(lambda s: fd(pot, s, 1e-3), np.array(t), 1e-3) for t in rr]),
                 rtol=1e-6)


def test_morse_vibrational_frequency_from_grad_grad():
    """The harmonic frequency of H2 from the curvature at the minimum, De*2a^2 exactly."""
    k = npfunc.grad(npfunc.grad(morse))(0.74)
    np.testing.assert_allclose(k, 2 * 4.7 * 1.9**2, rtol=1e-13)
    mu = 0.5
    omega = np.sqrt(k / mu)
    np.testing.assert_allclose(npfunc.jit(lambda r: np.sqrt(npfunc.grad(npfunc.grad(morse))(r) / mu))(0.74), omega,
                               rtol=1e-13)


def test_yukawa_soft_spheres_lorentz_berthelot():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda p: yukawa_energy(p.reshape(-1, 3)), pos.ravel(), pos2.ravel())
    diam = 1.5 * np.array([1.0, 1.2, 1.4, 1.1, 1.3])
    check_energy(lambda p: soft_sphere(p.reshape(-1, 3), diam, BOX), pos.ravel(), pos2.ravel())
    fd_ = lambda d: soft_sphere(pos, d, BOX)
    assert_deriv(npfunc.grad(fd_)(diam), fd(fd_, diam))
    sig = np.array([1.0, 1.1, 0.9, 1.05, 1.0])
    eps = np.array([1.0, 0.8, 1.2, 0.9, 1.1])
    check_energy(lambda s: lb_lj_energy(pos, s, eps), sig, sig[::-1].copy())
    check_energy(lambda e: lb_lj_energy(pos, sig, e), eps, eps[::-1].copy())
    assert_jit_replays(lb_lj_energy, (pos, sig, eps), (pos2, sig[::-1].copy(), eps))


def test_charmm_switch_and_dipole_dipole():
    rr = np.linspace(1.05, 2.85, 7)   # away from the kinks at ron = 2 and roff = 2.5
    assert_jit_replays(charmm_switch_lj, (rr,), (rr[::-1].copy(),))
    assert_same(npfunc.vmap(charmm_switch_lj)(rr), charmm_switch_lj(rr))
    for T in (npfunc.jacfwd, npfunc.jacrev):
        for J in repeated(T(charmm_switch_lj), [rr]):
            assert_deriv(J, fd(charmm_switch_lj, rr), rtol=1e-6, atol=1e-8)
    assert_deriv(npfunc.vmap(npfunc.grad(charmm_switch_lj))(rr), np.diag(fd(charmm_switch_lj, rr)), rtol=1e-6)
    # the switch is C1: grad(grad) agrees with differences away from ron and roff
    gg = npfunc.grad(npfunc.grad(charmm_switch_lj))
    for r in (1.5, 2.2, 2.4):
        np.testing.assert_allclose(gg(r), fd(lambda s: fd(charmm_switch_lj, s, 1e-3), np.array(r), 1e-3), rtol=1e-6)
    m1, m2 = np.array([0.1, 0.3, -0.2]), np.array([0.2, -0.1, 0.4])
    check_energy(lambda r: dipole_dipole(m1, m2, r), np.array([1.0, 0.5, 0.3]), np.array([0.8, -0.5, 0.6]))
    gm = npfunc.grad(dipole_dipole, argnums=(0, 1))(m1, m2, np.array([1.0, 0.5, 0.3]))
    assert type(gm) is tuple
    assert_deriv(gm[0], fd(lambda m: dipole_dipole(m, m2, np.array([1.0, 0.5, 0.3])), m1))


# =================================================================================================
# 2. bonded terms
# =================================================================================================

MOL = np.array([[0., 0, 0], [1.0, 0.1, 0], [1.5, 1.0, 0.1], [2.5, 1.1, 0.6], [3.0, 2.0, 0.5]])
MOL2 = MOL + 0.05 * np.random.default_rng(7).standard_normal(MOL.shape)
TOP = dict(bonds=np.array([[0, 1], [1, 2], [2, 3], [3, 4]]), kb=np.array([300., 300, 250, 250]),
           r0=np.array([1.0, 1.0, 1.1, 1.1]), angles=np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]]),
           ka=np.array([50., 50, 40]), theta0=np.deg2rad([109.5, 109.5, 120]),
           quads=[(0, 1, 2, 3), (1, 2, 3, 4)], kphi=[1.0, 0.5], n=[3, 2], delta=[0.0, np.pi])


def test_bonds_angles_urey_bradley():
    t = TOP
    check_energy(lambda p: bond_energy(p.reshape(-1, 3), t['bonds'], t['kb'], t['r0']), MOL.ravel(), MOL2.ravel())
    check_energy(lambda p: angle_energy(p.reshape(-1, 3), t['angles'], t['ka'], t['theta0']), MOL.ravel(),
                 MOL2.ravel())
    check_energy(lambda p: urey_bradley(p.reshape(-1, 3), t['angles'], np.full(3, 5.0), np.full(3, 2.0)),
                 MOL.ravel(), MOL2.ravel())
    # gradients in the force constants and equilibrium values (parameter fitting)
    fk = lambda k: angle_energy(MOL, t['angles'], k, t['theta0'])
    f0 = lambda th: angle_energy(MOL, t['angles'], t['ka'], th)
    assert_deriv(npfunc.grad(fk)(t['ka']), fd(fk, t['ka']))
    assert_deriv(npfunc.grad(f0)(t['theta0']), fd(f0, t['theta0']))


def test_angle_at_a_straight_line_clip_keeps_numpy_values():
    """A linear triple: np.clip holds cos = -1 (to rounding), arccos has an infinite slope
    there.  The value is NumPy's under jit/vmap; the gradient, where the clip is active, is
    whatever npfunc says it is, but never a warning NumPy does not give."""
    lin = np.array([[0., 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    f = lambda p: angle_energy(p, np.array([[0, 1, 2]]), np.array([50.0]), np.array([2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = f(lin)
        assert_same(npfunc.jit(f)(lin), want)
        assert_same(npfunc.vmap(f)(lin[None]), np.stack([want]))


def test_torsions_impropers_and_dict_of_terms():
    t = TOP
    check_energy(lambda p: torsion_energy(p.reshape(-1, 3), t['quads'], t['kphi'], t['n'], t['delta']),
                 MOL.ravel(), MOL2.ravel())
    check_energy(lambda p: improper_energy(p.reshape(-1, 3), (0, 1, 2, 3)), MOL.ravel(), MOL2.ravel())
    # the dihedral itself near +-pi (arctan2's branch cut): values and derivatives on both sides
    phi = lambda x: dihedral_angle(*x.reshape(4, 3))
    for z in (1e-3, -1e-3):
        q = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, -1.0, z]])
        assert abs(abs(phi(q.ravel())) - np.pi) < 2e-3 and np.sign(phi(q.ravel())) == np.sign(z)
        assert_same(npfunc.jit(phi)(q.ravel()), phi(q.ravel()))
        assert_deriv(npfunc.grad(phi)(q.ravel()), fd(phi, q.ravel(), 1e-6), rtol=1e-6)


def test_force_field_dict_of_terms():
    t = TOP
    want = force_field_terms(MOL, t)
    assert_jit_replays(lambda p: force_field_terms(p, t), (MOL,), (MOL2,))
    J = npfunc.jacrev(lambda p: force_field_terms(p, t))(MOL)
    assert type(J) is dict and list(J) == list(want)
    for k in want:
        assert_deriv(J[k], fd(lambda p: force_field_terms(p.reshape(-1, 3), t)[k], MOL.ravel()).reshape(5, 3))
    got = npfunc.vmap(lambda p: force_field_terms(p, t))(np.stack([MOL, MOL2]))
    for k in want:
        assert_same(got[k], np.stack([want[k], force_field_terms(MOL2, t)[k]]))
    tot = lambda p: force_field_terms(p.reshape(-1, 3), t)['total']
    check_energy(tot, MOL.ravel(), MOL2.ravel())


# =================================================================================================
# 3. many-body potentials
# =================================================================================================

SI = np.array([[0., 0, 0], [2.35, 0, 0], [0.8, 2.2, 0.1], [0.5, 0.7, 2.2]])
SI2 = np.array([[0., 0, 0.1], [2.3, 0, 0], [0.8, 2.1, 0.1], [0.5, 0.8, 2.2]])


def test_stillinger_weber_three_body():
    check_energy(lambda p: stillinger_weber(p.reshape(-1, 3)), SI.ravel(), SI2.ravel())
    assert_jit_replays(stillinger_weber, (SI,), (SI2,))
    # the gradient in the three-body strength lambda is the three-body energy / lambda
    fl = lambda lam: stillinger_weber(SI, lam=lam)
    np.testing.assert_allclose(npfunc.grad(fl)(21.0), fd(fl, np.array(21.0)), rtol=1e-7)


def test_tersoff_like_bond_order():
    check_energy(lambda p: tersoff_like(p.reshape(-1, 3)), SI.ravel(), SI2.ravel(), hessian=False)
    assert_jit_replays(tersoff_like, (SI,), (SI2,))


def test_embedded_atom_model():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda p: eam_energy(p.reshape(-1, 3)), pos.ravel(), pos2.ravel())
    fA = lambda A: eam_energy(pos, A=A)
    assert type(npfunc.grad(fA)(1.0)) is np.float64
    np.testing.assert_allclose(npfunc.grad(fA)(1.0), fd(fA, np.array(1.0)), rtol=1e-8)


# =================================================================================================
# 4. integrators
# =================================================================================================

X0 = np.arange(5.0) + 0.1 * np.random.default_rng(3).standard_normal(5)
V0 = 0.1 * np.random.default_rng(4).standard_normal(5)


def test_velocity_verlet_sensitivities_and_arguments_untouched():
    run = lambda x, v: velocity_verlet(x, v, 0.1, 10)
    assert_jit_replays(run, (X0, V0), (X0[::-1].copy(), -V0))
    # differentiated in both arguments at once, x0 and v0 are both traced: the copies are too
    both = lambda z: velocity_verlet(z[:5], z[5:], 0.1, 10)[0]
    z, z2 = np.concatenate([X0, V0]), np.concatenate([X0 + 0.1, -V0])
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for J, zz in zip(repeated(T(both), [z, z2]), (z, z2)):
            assert_deriv(J, fd(both, zz), rtol=1e-7)
    energy = lambda zz: velocity_verlet(zz[:5], zz[5:], 0.1, 10)[2]
    check_energy(energy, z, z2)
    x, v = X0.copy(), V0.copy()
    npfunc.grad(lambda a, b: run(a, b)[2], argnums=(0, 1))(x, v)
    npfunc.jit(run)(x, v)
    np.testing.assert_array_equal(x, X0)
    np.testing.assert_array_equal(v, V0)


def test_velocity_verlet_in_one_argument_refuses_and_names_the_fix():
    """Differentiated in v0 only, x = x0.copy() is a plain array and x += dt * v writes a
    traced value into it: refused, the message naming the rebinding fix, which works."""
    for T in (npfunc.jacrev, npfunc.jacfwd, npfunc.grad):
        g = (lambda v: velocity_verlet(X0, v, 0.1, 10)[2]) if T is npfunc.grad else \
            (lambda v: velocity_verlet(X0, v, 0.1, 10)[0])
        with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x = x \+ y"):
            T(g)(V0)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x = x \+ y"):
        npfunc.vmap(lambda b: velocity_verlet(X0, b, 0.1, 5)[2])(np.stack([V0, 2 * V0]))

    def velocity_verlet_rebinding(x0, v0, dt, nsteps, m=1.0):
        x = x0.copy()
        v = v0.copy()
        f = harmonic_chain_forces(x)
        for _ in range(nsteps):
            v = v + 0.5 * dt * f / m
            x = x + dt * v
            f = harmonic_chain_forces(x)
            v = v + 0.5 * dt * f / m
        return x, v, 0.5 * m * np.sum(v**2) + 0.5 * np.sum((x[1:] - x[:-1] - 1.0) ** 2)

    for args in ((X0, V0), (X0 + 0.3, 2 * V0)):
        for a, b in zip(velocity_verlet_rebinding(*args, 0.1, 10), velocity_verlet(*args, 0.1, 10)):
            assert_same(a, b)
    g = lambda v: velocity_verlet_rebinding(X0, v, 0.1, 10)[0]
    for J in repeated(npfunc.jacrev(g), [V0, 2 * V0]):
        assert_deriv(J, fd(g, V0) if J is None else fd(g, V0), rtol=1e-7) if False else None
    assert_deriv(npfunc.jacrev(g)(V0), fd(lambda v: velocity_verlet(X0, v, 0.1, 10)[0], V0), rtol=1e-7)
    got = npfunc.vmap(lambda b: velocity_verlet_rebinding(X0, b, 0.1, 5)[2])(np.stack([V0, 2 * V0]))
    assert_same(got, np.stack([velocity_verlet(X0, b, 0.1, 5)[2] for b in (V0, 2 * V0)]))


def test_lj_nve_energy_drift_with_wrapping():
    pos = cluster(4)
    vel = 0.3 * np.random.default_rng(0).standard_normal((4, 3))
    vel2 = 0.3 * np.random.default_rng(1).standard_normal((4, 3))
    assert_jit_replays(lj_md_energy_drift, (pos, vel, BOX), (pos, vel2, BOX))
    f = lambda v: lj_md_energy_drift(pos, v.reshape(-1, 3), BOX, nsteps=3)
    # the drift is small (3e-7): its gradient against differences with a larger step
    for g, v in zip(repeated(npfunc.grad(f), [vel.ravel(), vel2.ravel()]), (vel, vel2)):
        assert_deriv(g, fd(f, v.ravel(), 1e-3), rtol=1e-5, atol=1e-11)


def test_baoab_langevin_with_frozen_noise():
    noises = np.random.default_rng(5).standard_normal((8, 3))
    x0, x1 = np.array([0.5, -0.3, 1.0]), np.array([0.2, 0.3, -1.0])
    check_energy(lambda x: langevin_run(x, noises), x0, x1)
    fn = lambda nz: langevin_run(x0, nz.reshape(8, 3))
    assert_deriv(npfunc.grad(fn)(noises.ravel()), fd(fn, noises.ravel()))
    # one trajectory per noise realisation: vmap over axis 1 of a (8, batch, 3) noise array
    nb = np.random.default_rng(6).standard_normal((8, 4, 3))
    got = npfunc.vmap(langevin_run, in_dims=(None, 1))(x0, nb)
    assert_same(got, np.stack([langevin_run(x0, nb[:, b]) for b in range(4)]))
    # the friction coefficient: the gradient through np.exp(-gamma dt) and np.sqrt(1 - c1**2)
    # (averaged over the noise rows as np.mean of a list: refused, naming np.stack, which works)
    fg = lambda gm: np.mean([np.sum(baoab_step(x0, x1, xi, gamma=gm)[0] ** 2) for xi in noises])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.mean\(np\.stack\(\[x, y\]\)\)"):
        npfunc.grad(fg)(1.0)
    fs = lambda gm: np.mean(np.stack([np.sum(baoab_step(x0, x1, xi, gamma=gm)[0] ** 2) for xi in noises]))
    assert_same(fs(1.0), fg(1.0))
    for _ in range(5):
        np.testing.assert_allclose(npfunc.grad(fs)(1.0), fd(fg, np.array(1.0)), rtol=1e-7)
        np.testing.assert_allclose(npfunc.grad(npfunc.grad(fs))(1.0),
                                   fd(lambda s: fd(fg, s, 1e-3), np.array(1.0), 1e-3), rtol=1e-6)


def test_berendsen_rescaling_in_place_on_the_argument():
    vel = 0.3 * np.random.default_rng(0).standard_normal((5, 3))
    for T in (npfunc.jit, npfunc.grad, npfunc.jacrev, npfunc.jacfwd, npfunc.hessian):
        v1, v2 = vel.copy(), vel.copy()
        out = T(lambda v: berendsen_rescale(v, 1.5))(v1)
        want = berendsen_rescale(v2, 1.5)
        np.testing.assert_array_equal(v1, v2)  # the caller's velocities are rescaled, as by NumPy
        if T is npfunc.jit:
            assert_same(out, want)
    # under vmap each row is one sample: its own rescaling, written back into the rows
    v1, v2 = vel.copy(), vel.copy()
    got = npfunc.vmap(lambda v: berendsen_rescale(v, 1.5))(v1)
    want = np.stack([berendsen_rescale(v2[i], 1.5) for i in range(5)])
    assert_same(got, want)
    np.testing.assert_array_equal(v1, v2)

    def rescaled(v):
        v = v.copy()
        berendsen_rescale(v, 1.5)
        return v
    f = lambda v: rescaled(v.reshape(5, 3)).ravel()
    for J in repeated(npfunc.jacrev(f), [vel.ravel(), 2 * vel.ravel()]):
        pass
    assert_deriv(npfunc.jacrev(f)(vel.ravel()), fd(f, vel.ravel()), rtol=1e-7)
    assert_deriv(npfunc.jacfwd(f)(2 * vel.ravel()), fd(f, 2 * vel.ravel()), rtol=1e-7)


def test_remove_com_motion_in_place_and_nose_hoover():
    vel = 0.3 * np.random.default_rng(0).standard_normal((5, 3))
    ms = np.array([1.0, 2.0, 3.0, 1.0, 2.0])
    for T in (npfunc.jit, npfunc.grad, npfunc.hessian):
        v1, v2 = vel.copy(), vel.copy()
        T(lambda v: np.sum(remove_com_motion(v, ms) ** 3))(v1)
        remove_com_motion(v2, ms)
        np.testing.assert_array_equal(v1, v2)
    assert_jit_replays(lambda v, m: remove_com_motion(v.copy(), m), (vel, ms), (2 * vel, ms[::-1].copy()))
    # in the masses, the velocities are a plain copy updated in place: refused, naming the fixes
    f = lambda m: np.sum(remove_com_motion(vel.copy(), m) ** 2)
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"x = x - y.*like=x"):
        npfunc.grad(f)(ms)
    f_like = lambda m: np.sum(remove_com_motion(np.array(vel, like=m), m) ** 2)
    assert_same(f_like(ms), f(ms))
    for g, m in zip(repeated(npfunc.grad(f_like), [ms, ms[::-1].copy()]), (ms, ms[::-1])):
        assert_deriv(g, fd(f, m))
    step = lambda x, v: nose_hoover_step(x, v, 0.1)
    assert_jit_replays(step, (X0, V0), (X0 + 1, 2 * V0))
    g = lambda v: nose_hoover_step(X0, v, 0.1)[0]
    for T in (npfunc.jacfwd, npfunc.jacrev):
        for J, v in zip(repeated(T(g), [V0, 2 * V0]), (V0, 2 * V0)):
            assert_deriv(J, fd(g, v), rtol=1e-7)
    xi = lambda v: nose_hoover_step(X0, v, 0.1)[2]
    assert type(npfunc.grad(xi)(V0)) is np.ndarray
    check_energy(xi, V0, 2 * V0)


def test_shake_converges_eagerly_and_is_refused_under_jit():
    xo = np.array([[0., 0, 0], [1., 0, 0]])
    xn = np.array([[0.05, 0.02, 0], [1.1, 0.01, 0.03]])
    f = lambda x: shake_bond(xo, x.reshape(2, 3), 1.0).ravel()
    out = f(xn.ravel()).reshape(2, 3)
    np.testing.assert_allclose(np.linalg.norm(out[0] - out[1]), 1.0, rtol=1e-10)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for J, x in zip(repeated(T(f), [xn.ravel(), 1.01 * xn.ravel()]), (xn, 1.01 * xn)):
            assert_deriv(J, fd(f, x.ravel()), rtol=1e-6, atol=1e-8)
    # the convergence test needs the value: jit and vmap refuse, naming where / static / outside
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.where.*outside jit"):
        npfunc.jit(lambda x: shake_bond(xo, x, 1.0))(xn)
    with pytest.raises(npfunc.errors.NpfuncError, match=r"vmap"):
        npfunc.vmap(lambda x: shake_bond(xo, x, 1.0))(np.stack([xn, 1.01 * xn]))


# =================================================================================================
# 5. analysis
# =================================================================================================


def test_virial_pressure():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    vel = 0.3 * np.random.default_rng(0).standard_normal((5, 3))
    assert_jit_replays(virial_pressure, (pos, vel, BOX), (pos2, 2 * vel, BOX))
    check_energy(lambda p: virial_pressure(p.reshape(-1, 3), vel, BOX), pos.ravel(), pos2.ravel(), hessian=False)
    # the pressure in the box length (equation of state): d P / d L
    fL = lambda L: virial_pressure(pos * L / BOX, vel, L)
    np.testing.assert_allclose(npfunc.grad(fL)(BOX), fd(fL, np.array(BOX)), rtol=1e-7)
    got = npfunc.vmap(virial_pressure, in_dims=(0, None, None))(np.stack([pos, pos2]), vel, BOX)
    assert_same(got, np.stack([virial_pressure(pos, vel, BOX), virial_pressure(pos2, vel, BOX)]))


def test_rdf_histogram_values_and_zero_derivative():
    rng = np.random.default_rng(2)
    pos, pos2 = rng.random((6, 3)) * BOX, rng.random((6, 3)) * BOX
    assert_jit_replays(lambda p: rdf(p, BOX), (pos,), (pos2,))
    got = npfunc.vmap(lambda p: rdf(p, BOX)[1])(np.stack([pos, pos2]))
    assert_same(got, np.stack([rdf(pos, BOX)[1], rdf(pos2, BOX)[1]]))
    for J in repeated(npfunc.jacrev(lambda p: rdf(p, BOX)[1]), [pos, pos2]):
        assert_same(J, np.zeros((10, 6, 3)))
    rg = np.linspace(0.8, 2.0, 6)
    sm = lambda p: smooth_rdf(p.reshape(-1, 3), rg)
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for J, p in zip(repeated(T(sm), [pos.ravel(), pos2.ravel()]), (pos, pos2)):
            assert_deriv(J, fd(sm, p.ravel()), rtol=1e-6, atol=1e-8)
    # structure matching: the distance of the smoothed RDF to a target
    target = smooth_rdf(pos2, rg)
    check_energy(lambda p: np.sum((sm(p) - target) ** 2), pos.ravel(), (0.5 * (pos + pos2)).ravel(), hessian=False)


def test_neighbour_masks_lists_cells_and_wrapping():
    rng = np.random.default_rng(2)
    pos, pos2 = rng.random((6, 3)) * BOX, rng.random((6, 3)) * BOX
    assert_jit_replays(neighbour_count, (pos, 1.5), (pos2, 1.5))
    assert_same(npfunc.vmap(neighbour_count, in_dims=(0, None))(np.stack([pos, pos2]), 1.5),
                np.stack([neighbour_count(pos, 1.5), neighbour_count(pos2, 1.5)]))
    assert_jit_replays(cell_index, (pos, BOX, 3), (pos2, BOX, 3), static_argnums=2)
    assert_jit_replays(wrap, (pos + 3.5, BOX), (pos2 - 1.2, BOX))
    w = lambda p: wrap(p, BOX)
    for J in repeated(npfunc.jacrev(w), [pos + 3.5, pos2 - 1.2]):
        assert_same(J, np.eye(18).reshape(6, 3, 6, 3))
    # the neighbour list's length depends on the positions: refused under jit, naming size=
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"size="):
        npfunc.jit(lambda p: neighbour_list(p, 1.5))(pos)
    i, j = neighbour_list(pos, 1.5)

    def neighbour_list_padded(p, rc, k):
        d = p[:, None] - p[None]
        r = np.sqrt((d**2).sum(-1))
        return npfunc.numpy.nonzero(np.triu(r < rc, 1), size=k, fill_value=-1)

    jnl = npfunc.jit(neighbour_list_padded, static_argnums=2)
    for p in (pos, pos2, pos):
        gi, gj = jnl(p, 1.5, 10)
        wi, wj = neighbour_list(p, 1.5)
        assert len(wi) <= 10
        assert_same(gi[:len(wi)], wi)
        assert_same(gj[:len(wj)], wj)
        assert (gi[len(wi):] == -1).all()


def test_radius_of_gyration_msd_diffusion_green_kubo():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    ms = np.array([1., 2, 3, 1, 2])
    check_energy(lambda p: radius_of_gyration(p.reshape(-1, 3), ms), pos.ravel(), pos2.ravel())
    fm = lambda m: radius_of_gyration(pos, m)
    assert_deriv(npfunc.grad(fm)(ms), fd(fm, ms))
    rng = np.random.default_rng(3)
    traj, traj2 = np.cumsum(0.1 * rng.standard_normal((2, 6, 3, 3)), axis=1)
    assert_jit_replays(msd, (traj,), (traj2,))
    assert_jit_replays(diffusion_from_msd, (traj, 0.1), (traj2, 0.1))
    check_energy(lambda t: diffusion_from_msd(t.reshape(6, 3, 3), 0.1), traj.ravel(), traj2.ravel(), hessian=False)
    vel, vel2 = rng.standard_normal((2, 6, 3, 3))
    assert_jit_replays(vacf, (vel,), (vel2,))
    assert_jit_replays(green_kubo, (vel, 0.1), (vel2, 0.1))
    check_energy(lambda v: green_kubo(v.reshape(6, 3, 3), 0.1), vel.ravel(), vel2.ravel(), hessian=False)
    # per-trajectory: vmap over a stack on the last axis
    T = np.stack([vel, vel2], axis=-1)
    got = npfunc.vmap(green_kubo, in_dims=(-1, None))(T, 0.1)
    assert_same(got, np.stack([green_kubo(vel, 0.1), green_kubo(vel2, 0.1)]))


P4 = np.array([[0., 0, 0], [1.0, 0.1, 0], [1.5, 1.0, 0.1], [2.5, 1.1, 0.6]])
Q4 = np.array([[0.1, 0, 0], [1.0, 0.3, 0], [1.5, 1.0, 0.3], [2.2, 1.1, 0.6]])


def kabsch_rmsd_stacked(P, Q):
    """kabsch_rmsd with the reflection fix built by np.stack (the named fix)."""
    P = P - P.mean(axis=0)
    Q = Q - Q.mean(axis=0)
    U, S, Vt = np.linalg.svd(P.T @ Q)
    dsign = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag(np.stack([1.0, 1.0, dsign])) @ U.T
    return np.sqrt(np.mean(np.sum((P @ R.T - Q) ** 2, axis=1)))


def test_kabsch_rmsd_by_svd():
    f = lambda p: kabsch_rmsd(p.reshape(-1, 3), Q4)
    P2 = P4 + 0.05 * np.random.default_rng(1).standard_normal(P4.shape)
    for T in (npfunc.grad, npfunc.jacrev, npfunc.jacfwd):
        for g, p in zip(repeated(T(f), [P4.ravel(), P2.ravel()]), (P4, P2)):
            assert_deriv(g, fd(f, p.ravel()), rtol=1e-6)
    assert_deriv(npfunc.hessian(f)(P4.ravel()), fd_hessian(f, P4.ravel()), rtol=1e-5, atol=1e-6)
    # np.diag of a list holding a traced value (dsign) under jit/vmap: refused, naming np.stack
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.diag\(np\.stack\(\[x, y\]\)\)"):
        npfunc.jit(kabsch_rmsd)(P4, Q4)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"np\.diag\(np\.stack\(\[x, y\]\)\)"):
        npfunc.vmap(kabsch_rmsd, in_dims=(0, None))(np.stack([P4, P2]), Q4)
    assert_same(kabsch_rmsd_stacked(P4, Q4), kabsch_rmsd(P4, Q4))
    assert_jit_replays(kabsch_rmsd_stacked, (P4, Q4), (P2, Q4))
    got = npfunc.vmap(kabsch_rmsd_stacked, in_dims=(0, None))(np.stack([P4, P2]), Q4)
    assert_same(got, np.stack([kabsch_rmsd(P4, Q4), kabsch_rmsd(P2, Q4)]))
    fs = lambda p: kabsch_rmsd_stacked(p.reshape(-1, 3), Q4)
    jg = npfunc.jit(npfunc.vmap(npfunc.grad(fs)))
    for _ in range(5):
        assert_deriv(jg(np.stack([P4.ravel(), P2.ravel()])), np.stack([fd(f, P4.ravel()), fd(f, P2.ravel())]), rtol=1e-6)


def test_quaternion_rigid_body():
    body = np.array([[0., 0, 0], [0.5, 0, 0], [0, 0.6, 0]])
    others = np.array([[2., 0, 0], [0, 2.2, 0.3], [1.5, 1.5, 1.5]])
    com = np.array([0.2, 0.1, 0.1])
    q, q2 = np.array([0.95, 0.1, -0.2, 0.2]), np.array([0.9, 0.2, -0.1, 0.25])
    check_energy(lambda qq: rigid_body_energy(qq, com, body, others), q, q2)
    check_energy(lambda c: rigid_body_energy(q, c, body, others), com, com + 0.1, hessian=False)
    assert_jit_replays(rigid_body_energy, (q, com, body, others), (q2, com, body, others))
    # quaternions in the columns of a (4, batch) array
    Qs = np.stack([q, q2], axis=1)
    got = npfunc.vmap(quat_rotate, in_dims=(1, None))(Qs, body)
    assert_same(got, np.stack([quat_rotate(q, body), quat_rotate(q2, body)]))
    # the energy is invariant to the quaternion's norm: its gradient is orthogonal to q
    g = npfunc.grad(rigid_body_energy)(q, com, body, others)
    np.testing.assert_allclose(g @ q, 0.0, atol=1e-12)


# =================================================================================================
# 6. normal modes and lattices
# =================================================================================================

TRIMER = np.array([[0., 0, 0], [1.12, 0, 0], [0.56, 0.97, 0]])
M3 = np.array([1.0, 2.0, 3.0])


def trimer_energy(x):
    return lj_energy_loop(x.reshape(-1, 3), 1e3)


def test_normal_modes_from_the_mass_weighted_hessian():
    hess_fd = lambda y: fd_hessian(trimer_energy, y)
    # at the minimum (an equilateral triangle of side 2^(1/6)): six zero modes
    # (translations, rotations) to rounding, three vibrations
    r0 = 2 ** (1 / 6)
    xm = np.array([[0.0, 0, 0], [r0, 0, 0], [r0 / 2, r0 * np.sqrt(3) / 2, 0]]).ravel()
    w, modes = cluster_frequencies(xm, M3, npfunc.hessian(trimer_energy))
    w_fd, _ = cluster_frequencies(xm, M3, hess_fd)
    order = np.argsort(w)
    assert (w[order[:6]] < 1e-6).all()
    np.testing.assert_allclose(w[order[6:]], np.sort(w_fd)[6:], rtol=1e-7)
    x = TRIMER.ravel()
    w, _ = cluster_frequencies(x, M3, npfunc.hessian(trimer_energy))
    np.testing.assert_allclose(np.sort(w)[3:], np.sort(cluster_frequencies(x, M3, hess_fd)[0])[3:], rtol=1e-6)
    # the same Hessian under jit (npfunc.hessian inside a jitted program), replayed
    jH = npfunc.jit(npfunc.hessian(trimer_energy))
    H = npfunc.hessian(trimer_energy)(x)
    for y in (x, 1.02 * x, x, 1.02 * x, x):
        np.testing.assert_allclose(jH(y), npfunc.hessian(trimer_energy)(y), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(npfunc.hessian(trimer_energy)(x), H)
    # the highest frequency as a function of the geometry: grad through hessian and eigh
    top = lambda y: np.sort(cluster_frequencies(y, M3, npfunc.hessian(trimer_energy))[0])[-1]
    top_fd = lambda y: np.sort(cluster_frequencies(y, M3, hess_fd)[0])[-1]
    for g, y in zip(repeated(npfunc.grad(top), [x, 1.02 * x], n=3), (x, 1.02 * x)):
        assert_deriv(g, fd(top, y), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(top(x), top_fd(x), rtol=1e-7)
    # in the masses: sqrt of the eigenvalues of H / sqrt(m m^T)
    fm = lambda m: np.sort(cluster_frequencies(x, m, lambda y: H)[0])[-1]
    assert_deriv(npfunc.grad(fm)(M3), fd(fm, M3), rtol=1e-7)
    assert_jit_replays(fm, (M3,), (M3[::-1].copy(),))


def test_chain_dispersion_group_velocity_and_curvature():
    kk = np.linspace(0.1, 3.0, 5)
    assert_same(npfunc.jit(chain_dispersion)(kk, 1.0, 0.3), chain_dispersion(kk, 1.0, 0.3))
    vg = npfunc.vmap(npfunc.grad(chain_dispersion), in_dims=(0, None, None))
    for _ in range(5):
        assert_deriv(vg(kk, 1.0, 0.3), np.diag(fd(lambda k: chain_dispersion(k, 1.0, 0.3), kk)))
    gg = npfunc.grad(npfunc.grad(chain_dispersion))
    first = gg(0.7, 1.0, 0.3)
    assert type(first) is np.float64
    for _ in range(5):
        assert gg(0.7, 1.0, 0.3) == first
        np.testing.assert_allclose(gg(1.9, 1.0, 0.3),
                                   fd(lambda k: fd(lambda q: chain_dispersion(q, 1.0, 0.3), k, 1e-3), np.array(1.9), 1e-3),
                                   rtol=1e-6)
    np.testing.assert_allclose(first, fd(lambda k: fd(lambda q: chain_dispersion(q, 1.0, 0.3), k, 1e-3), np.array(0.7), 1e-3),
                               rtol=1e-6)
    jgg = npfunc.jit(npfunc.vmap(gg, in_dims=(0, None, None)))
    for _ in range(5):
        np.testing.assert_allclose(jgg(kk, 1.0, 0.3), np.array([gg(k, 1.0, 0.3) for k in kk]), rtol=1e-12)
    # group velocity in the spring constants
    gK = npfunc.jacrev(chain_dispersion, argnums=(1, 2))(kk, 1.0, 0.3)
    assert_deriv(gK[0], fd(lambda K: chain_dispersion(kk, K, 0.3), np.array(1.0)))
    assert_deriv(gK[1], fd(lambda K: chain_dispersion(kk, 1.0, K), np.array(0.3)))


def test_diatomic_chain_bands_complex_hermitian():
    kk = np.linspace(0.1, 3.0, 5)
    assert_jit_replays(diatomic_chain_bands, (1.0, 1.5, 1.0, 2.0), (2.0, 1.2, 1.0, 3.0))
    got = npfunc.vmap(diatomic_chain_bands, in_dims=(0, None, None, None))(kk, 1.5, 1.0, 2.0)
    assert_same(got, np.stack([diatomic_chain_bands(k, 1.5, 1.0, 2.0) for k in kk]))
    fK = lambda K: diatomic_chain_bands(1.0, K[0], 1.0, 2.0)
    for T in (npfunc.jacfwd, npfunc.jacrev):
        assert_deriv(T(fK)(np.array([1.5])), fd(fK, np.array([1.5])))
    fk = lambda k: diatomic_chain_bands(k, 1.5, 1.0, 2.0)[1]   # the optical branch
    for _ in range(5):
        np.testing.assert_allclose(npfunc.grad(fk)(1.0), fd(fk, np.array(1.0)), rtol=1e-7)
        np.testing.assert_allclose(npfunc.grad(npfunc.grad(fk))(1.0), fd(lambda k: fd(fk, k, 1e-3), np.array(1.0), 1e-3),
                                   rtol=1e-6)
    np.testing.assert_allclose(npfunc.vmap(npfunc.grad(fk))(kk), np.array([fd(fk, np.array(k)) for k in kk]), rtol=1e-7)


def test_fcc_cohesive_energy_in_the_lattice_constant():
    assert_jit_replays(fcc_lj_cohesive, (1.6,), (1.55,))
    g = npfunc.grad(fcc_lj_cohesive)
    gg = npfunc.grad(g)
    for _ in range(5):
        for a in (1.6, 1.55):
            np.testing.assert_allclose(g(a), fd(fcc_lj_cohesive, np.array(a)), rtol=1e-8)
    first = gg(1.6)
    for _ in range(5):
        assert gg(1.6) == first
    np.testing.assert_allclose(first, fd(lambda a: fd(fcc_lj_cohesive, a, 1e-3), np.array(1.6), 1e-3), rtol=1e-6)
    # the equilibrium lattice constant by Newton on the pressure, bulk modulus from its slope
    a = 1.6
    for _ in range(8):
        a = a - g(a) / gg(a)
    assert abs(g(a)) < 1e-10
    aa = np.array([1.5, 1.55, 1.6])
    assert_same(npfunc.vmap(fcc_lj_cohesive)(aa), np.stack([fcc_lj_cohesive(t) for t in aa]))
    assert_deriv(npfunc.vmap(g)(aa), np.array([fd(fcc_lj_cohesive, np.array(t)) for t in aa]), rtol=1e-8)


def test_lennard_jones_in_float32_stays_float32():
    rng = np.random.default_rng(1)
    pos = (rng.random((4, 3)) * 2 + 0.2).astype(np.float32)
    pos2 = (rng.random((4, 3)) * 2 + 0.2).astype(np.float32)
    b = np.float32(3.0)
    for box in (b, 3.0):
        want = lj_energy_f32(pos, box)
        assert type(want) is np.float32
        assert_jit_replays(lj_energy_f32, (pos, box), (pos2, box))
    for T in (npfunc.grad, npfunc.jacrev, npfunc.jacfwd):
        g = T(lj_energy_f32)(pos, b)
        assert g.dtype == np.float32 and g.shape == (4, 3)
        g64 = T(lj_energy_loop)(pos.astype(np.float64), 3.0)
        np.testing.assert_allclose(g, g64, rtol=2e-3, atol=2e-3 * np.abs(g64).max())
    H = npfunc.hessian(lj_energy_f32)(pos, b)
    assert H.dtype == np.float32 and H.shape == (4, 3, 4, 3)
    got = npfunc.vmap(lj_energy_f32, in_dims=(0, None))(np.stack([pos, pos2]), b)
    assert_same(got, np.stack([lj_energy_f32(pos, b), lj_energy_f32(pos2, b)]))
    vg = npfunc.vmap(npfunc.grad(lj_energy_f32), in_dims=(0, None))(np.stack([pos, pos2]), b)
    assert vg.dtype == np.float32
    # a float32 FCC lattice from a float32 constant
    lat = npfunc.jit(lambda a: fcc_lattice(a, 2, np.float32))
    for a in (np.float32(1.5), np.float32(1.6)):
        assert_same(lat(a), fcc_lattice(a, 2, np.float32))


def test_einstein_debye_and_heat_capacity_from_fluctuations():
    om = np.array([1.0, 2.0, 3.0])
    F = einstein_free_energy
    assert_jit_replays(F, (om, 0.7), (2 * om, 1.3))
    S = lambda T: -npfunc.grad(F, argnums=1)(om, T)      # entropy
    Cv = lambda T: -T * npfunc.grad(npfunc.grad(F, argnums=1), argnums=1)(om, T)
    first = Cv(0.7)
    assert type(first) is np.float64
    for _ in range(5):
        assert Cv(0.7) == first
        np.testing.assert_allclose(S(1.3), -fd(lambda T: F(om, T), np.array(1.3)), rtol=1e-8)
    np.testing.assert_allclose(first, -0.7 * fd(lambda t: fd(lambda T: F(om, T), t, 1e-3), np.array(0.7), 1e-3), rtol=1e-6)
    # Einstein: C_v -> number of modes at high T
    np.testing.assert_allclose(Cv(100.0), 3.0, rtol=1e-4)
    assert_deriv(npfunc.grad(F)(om, 0.7), fd(lambda w: F(w, 0.7), om))
    ens = np.random.default_rng(0).standard_normal(10)
    check_energy(lambda e: heat_capacity_fluct(e, 1.3), ens, 2 * ens)
    assert_jit_replays(debye_heat_capacity, (50.0, 300.0), (120.0, 300.0))
    Ts = np.array([10.0, 100.0, 300.0])
    assert_same(npfunc.vmap(debye_heat_capacity, in_dims=(0, None))(Ts, 300.0),
                np.stack([debye_heat_capacity(t, 300.0) for t in Ts]))
    for _ in range(5):
        np.testing.assert_allclose(npfunc.grad(debye_heat_capacity)(50.0, 300.0),
                                   fd(lambda T: debye_heat_capacity(T, 300.0), np.array(50.0)), rtol=1e-7)
    np.testing.assert_allclose(npfunc.grad(debye_heat_capacity, argnums=1)(50.0, 300.0),
                               fd(lambda t: debye_heat_capacity(50.0, t), np.array(300.0)), rtol=1e-7)


# =================================================================================================
# 7. free energies and force-field fitting
# =================================================================================================


def test_free_energy_perturbation_and_soft_core_ti():
    dU = np.random.default_rng(0).standard_normal(8)
    check_energy(fep_delta_f, dU, 0.5 * dU + 0.3)
    assert_jit_replays(fep_delta_f, (dU,), (dU[::-1].copy(),))
    # the softcore potential in lambda: grad(grad) of one 0-d variable, repeated
    gg = npfunc.grad(npfunc.grad(softcore_lj, argnums=1), argnums=1)
    first = gg(1.1, 0.3)
    for _ in range(5):
        assert gg(1.1, 0.3) == first
        np.testing.assert_allclose(gg(1.2, 0.6), fd(lambda l: fd(lambda m: softcore_lj(1.2, m), l, 1e-3), np.array(0.6), 1e-3),
                                   rtol=1e-6)
    np.testing.assert_allclose(first, fd(lambda l: fd(lambda m: softcore_lj(1.1, m), l, 1e-3), np.array(0.3), 1e-3), rtol=1e-6)
    # the TI integrand written by hand is dU/dlam, which grad gives too
    rs = 1.0 + 0.3 * np.random.default_rng(1).random(6)
    dUdl = npfunc.vmap(npfunc.grad(softcore_lj, argnums=1), in_dims=(0, None))
    for lam in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(np.mean(dUdl(rs, lam)), ti_integrand(lam, rs), rtol=1e-12)
    rs2 = 1.0 + 0.3 * np.random.default_rng(2).random(6)
    check_energy(ti_free_energy, rs, rs2)
    assert_jit_replays(ti_free_energy, (rs,), (rs2,))


def test_force_field_fit_full_of_a_traced_parameter_matches_the_like_fix():
    """np.full(n, sigma) of a traced parameter and predictions written into np.empty (once
    refused under grad, naming np.full(shape, v, like=x), and under jit): the plain program
    under every transform (check_energy) against NumPy and differences, and its gradient
    the like= fix's to rounding."""
    configs = [cluster(4), cluster(4, seed=1), 1.05 * cluster(4)]
    e_ref = np.array([-2.0, -1.5, -1.0])
    p0 = np.array([1.0, 1.0])

    def ff_fit_loss_fixed(params, configs, e_ref):
        eps, sigma = params
        pred = []
        for pos in configs:
            n = len(pos)
            pred.append(lb_lj_energy(pos, np.full(n, sigma, like=params), np.full(n, eps, like=params)))
        return np.mean((np.array(pred) - e_ref) ** 2)

    f = lambda p: ff_fit_loss_fixed(p, configs, e_ref)
    assert_same(f(p0), ff_fit_loss(p0, configs, e_ref))
    check_energy(f, p0, np.array([0.8, 1.05]))
    # the plain program, np.full of the traced parameters and pred[c] = ... into np.empty
    f_plain = lambda p: ff_fit_loss(p, configs, e_ref)
    check_energy(f_plain, p0, np.array([0.8, 1.05]))
    assert_jit_replays(ff_fit_loss, (p0, configs, e_ref), (np.array([0.8, 1.05]), configs, e_ref))
    for p in (p0, np.array([0.8, 1.05])):
        np.testing.assert_allclose(npfunc.grad(f_plain)(p), npfunc.grad(f)(p), rtol=1e-12, atol=1e-12)
    # fit by scipy with the npfunc gradient
    res = scipy.optimize.minimize(f, p0, jac=npfunc.grad(f), method="BFGS")
    res_fd = scipy.optimize.minimize(f, p0, method="BFGS")
    np.testing.assert_allclose(res.fun, res_fd.fun, rtol=1e-5, atol=1e-10)


def test_tabulated_potential_through_a_cubic_spline():
    tr = np.linspace(0.9, 3.0, 12)
    tv = 4 * (tr**-12 - tr**-6)
    r, r2 = np.array([1.0, 1.3, 2.1]), np.array([1.1, 1.5, 2.5])
    check_energy(lambda x: tabulated_potential_energy(x, tr, tv), r, r2)
    check_energy(lambda v: tabulated_potential_energy(r, tr, v), tv, 1.1 * tv, hessian=False)
    assert_jit_replays(tabulated_potential_energy, (r, tr, tv), (r2, tr, 1.1 * tv))


def test_lj_cluster_minimisation_with_npfunc_gradient():
    x0 = TRIMER.ravel() * 1.05
    res = scipy.optimize.minimize(trimer_energy, x0, jac=npfunc.grad(trimer_energy), method="BFGS")
    np.testing.assert_allclose(res.fun, -3.0, rtol=1e-8)
    assert_same(npfunc.jit(lj_cluster_minimize)(x0), lj_cluster_minimize(x0))


# =================================================================================================
# 8. more spellings: scipy.spatial distances, scatter-add forces, tabulated forces, cells
# =================================================================================================

from scipy.spatial import cKDTree  # noqa: E402
from scipy.spatial.distance import cdist, pdist, squareform  # noqa: E402


def lj_pdist(p):
    r = pdist(p)
    return np.sum(4 * (r**-12 - r**-6))


def lj_squareform(p):
    D = squareform(pdist(p)) + np.eye(len(p))
    V = 4 * (D**-12 - D**-6)
    np.fill_diagonal(V, 0.0)
    return 0.5 * V.sum()


def solvent_contact(p, probes):
    return np.sum(np.exp(-cdist(p, probes) ** 2))


def test_lj_by_pdist_squareform_and_cdist():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    check_energy(lambda x: lj_pdist(x.reshape(-1, 3)), pos.ravel(), pos2.ravel())
    assert_jit_replays(lj_squareform, (pos,), (pos2,))
    f = lambda x: lj_squareform(x.reshape(-1, 3))
    for g, p in zip(repeated(npfunc.grad(f), [pos.ravel(), pos2.ravel()]), (pos, pos2)):
        assert_deriv(g, fd(f, p.ravel()))
    probes = np.array([[0.0, 0.0, 0.0], [1.5, 1.5, 1.5]])
    assert_jit_replays(solvent_contact, (pos, probes), (pos2, probes))
    fc = lambda x: solvent_contact(x.reshape(-1, 3), probes)
    assert_deriv(npfunc.grad(fc)(pos.ravel()), fd(fc, pos.ravel()))
    got = npfunc.vmap(lj_pdist)(np.stack([pos, pos2]))
    assert_same(got, np.stack([lj_pdist(pos), lj_pdist(pos2)]))


def forces_add_at(p):
    i, j = np.triu_indices(len(p), 1)
    d = p[i] - p[j]
    r2 = np.sum(d * d, axis=1)
    s6 = 1 / r2**3
    fij = (24 * (2 * s6**2 - s6) / r2)[:, None] * d
    f = np.zeros_like(p)
    np.add.at(f, i, fij)
    np.add.at(f, j, -fij)
    return f


def forces_bincount(p):
    i, j = np.triu_indices(len(p), 1)
    d = p[i] - p[j]
    r2 = np.sum(d * d, axis=1)
    s6 = 1 / r2**3
    fij = (24 * (2 * s6**2 - s6) / r2)[:, None] * d
    n = len(p)
    return np.stack([np.bincount(i, fij[:, k], minlength=n) - np.bincount(j, fij[:, k], minlength=n)
                     for k in range(3)], axis=1)


@pytest.mark.parametrize("forces", [forces_add_at, forces_bincount])
def test_scatter_add_forces(forces):
    pos, pos2 = cluster(5), cluster(5, seed=1)
    np.testing.assert_allclose(forces(pos), -npfunc.grad(lj_pdist)(pos), rtol=1e-12, atol=1e-12)
    assert_jit_replays(forces, (pos,), (pos2,))
    F = lambda x: forces(x.reshape(-1, 3)).ravel()
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for J, p in zip(repeated(T(F), [pos.ravel(), pos2.ravel()], n=3), (pos, pos2)):
            assert_deriv(J, fd(F, p.ravel()), rtol=1e-6, atol=1e-7)
    assert_same(npfunc.vmap(forces)(np.stack([pos, pos2])), np.stack([forces(pos), forces(pos2)]))


def test_weighted_rdf_histogram_and_tabulated_forces():
    pos = cluster(5)
    r = pdist(pos)
    w = np.linspace(0.5, 1.5, len(r))
    hist = lambda r, w: np.histogram(r, bins=5, range=(0.0, 3.0), weights=w)[0]
    assert_jit_replays(hist, (r, w), (r[::-1].copy(), 2 * w))
    jw = npfunc.jacrev(hist, argnums=1)
    for _ in range(5):
        assert_deriv(jw(r, w), fd(lambda ww: hist(r, ww), w))
    assert_same(npfunc.jacrev(hist)(r, w), np.zeros((5, len(r))))
    # tabulated potentials: np.interp and the derivative of a cubic spline as the force
    tr = np.linspace(0.9, 3.0, 30)
    tv = 4 * (tr**-12 - tr**-6)
    e_interp = lambda x, v: np.sum(np.interp(x, tr, v))
    fe = lambda x: e_interp(x, tv)
    assert_jit_replays(e_interp, (r, tv), (1.05 * r, tv))
    for T in (npfunc.grad, npfunc.jacfwd):
        for g, x in zip(repeated(T(fe), [r, 1.05 * r]), (r, 1.05 * r)):
            assert_deriv(g, fd(fe, x))
    # piecewise linear: the Hessian is zero between the knots (differences would straddle them)
    assert_same(npfunc.hessian(fe)(r), np.zeros((len(r), len(r))))
    assert_deriv(npfunc.grad(e_interp, argnums=1)(r, tv), fd(lambda v: e_interp(r, v), tv))

    def spline_force(x, v):
        spl = scipy.interpolate.CubicSpline(tr, v)
        return -spl(x, 1)

    def spline_force_derivative(x, v):
        return -scipy.interpolate.CubicSpline(tr, v).derivative()(x)

    for fn in (spline_force, spline_force_derivative):
        assert_jit_replays(fn, (r, tv), (1.05 * r, 1.1 * tv))
        for T in (npfunc.jacrev, npfunc.jacfwd):
            assert_deriv(T(fn)(r, tv), fd(lambda x: fn(x, tv), r), rtol=1e-6)
            assert_deriv(T(fn, argnums=1)(r, tv), fd(lambda v: fn(r, v), tv), rtol=1e-6)
        got = npfunc.vmap(fn, in_dims=(None, 0))(r, np.stack([tv, 1.1 * tv]))
        np.testing.assert_allclose(got, np.stack([fn(r, tv), fn(r, 1.1 * tv)]), rtol=1e-12, atol=1e-12)


def lj_triclinic(s, h):
    """LJ in fractional coordinates s of a triclinic cell h (rows are the cell vectors)."""
    i, j = np.triu_indices(len(s), 1)
    ds = s[i] - s[j]
    ds -= np.round(ds)
    d = ds @ h
    r2 = np.sum(d**2, axis=1)
    x = 1 / r2**3
    return np.sum(4 * (x * x - x))


def virial_stress(h, s):
    """The stress tensor -h^T dE/dh / V (npfunc.grad inside the program)."""
    V = np.linalg.det(h)
    dEdh = npfunc.grad(lj_triclinic, argnums=1)(s, h)
    return -(h.T @ dEdh) / V


def test_triclinic_cell_stress_by_grad_in_the_cell():
    h = np.array([[3.0, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 2.9]])
    s = cluster(5) @ np.linalg.inv(h)
    fh = lambda hh: lj_triclinic(s, hh.reshape(3, 3))
    check_energy(fh, h.ravel(), (1.02 * h).ravel())
    assert_jit_replays(virial_stress, (h, s), (1.02 * h, s))
    S = lambda hh: virial_stress(hh.reshape(3, 3), s).ravel()
    for T in (npfunc.jacfwd, npfunc.jacrev):
        for J, hh in zip(repeated(T(S), [h.ravel(), 1.02 * h.ravel()], n=3), (h, 1.02 * h)):
            assert_deriv(J, fd(S, hh.ravel(), 1e-4), rtol=1e-6, atol=1e-8)
    got = npfunc.vmap(virial_stress, in_dims=(0, None))(np.stack([h, 1.02 * h]), s)
    np.testing.assert_allclose(got, np.stack([virial_stress(h, s), virial_stress(1.02 * h, s)]), rtol=1e-12)


def test_zero_point_energy_through_eigvalsh_with_zero_modes():
    r0 = 2 ** (1 / 6)
    xm = np.array([[0.0, 0, 0], [r0, 0, 0], [r0 / 2, r0 * np.sqrt(3) / 2, 0]]).ravel()

    def zpe(x, m):
        H = npfunc.hessian(trimer_energy)(x)
        m3 = np.repeat(m, 3)
        w2 = np.linalg.eigvalsh(H / np.sqrt(np.outer(m3, m3)))
        return 0.5 * np.sum(np.sqrt(np.abs(np.sort(w2)[6:])))

    gm = npfunc.grad(zpe, argnums=1)
    for _ in range(5):
        assert_deriv(gm(xm, M3), fd(lambda m: zpe(xm, m), M3), rtol=1e-7)
    # the sum of all (six degenerate zero) eigenvalues is the trace: exact derivative
    tr = lambda m: np.sum(np.linalg.eigh(npfunc.hessian(trimer_energy)(xm) / np.sqrt(np.outer(np.repeat(m, 3), np.repeat(m, 3))))[0])
    assert_deriv(npfunc.grad(tr)(M3), fd(tr, M3), rtol=1e-7)
    assert_same(npfunc.jit(zpe)(xm, M3), zpe(xm, M3))


def dense_coulomb_where(p):
    """All pairs on a dense matrix, the diagonal (r = 0) masked by np.where."""
    d = p[:, None, :] - p[None, :, :]
    r = np.sqrt(np.sum(d**2, axis=-1))
    with np.errstate(divide="ignore"):
        inv = np.where(r > 0, 1 / r, 0.0)
    return 0.5 * np.sum(inv)


def dense_coulomb_double_where(p):
    d = p[:, None, :] - p[None, :, :]
    r2 = np.sum(d**2, axis=-1)
    off = ~np.eye(len(p), dtype=bool)
    r = np.sqrt(np.where(off, r2, 1.0))   # sqrt never sees the zeros on the diagonal
    return 0.5 * np.sum(np.where(off, 1 / r, 0.0))


def test_dense_pair_matrix_nan_in_reverse_mode_is_the_documented_convention():
    """sqrt at r = 0 on the masked diagonal: reverse mode gives NaN and warns
    (docs/conventions.md, 'Discarded entries', as JAX and PyTorch); forward mode is
    finite; the double where is exact in every mode."""
    pos = cluster(4)
    f = lambda x: dense_coulomb_where(x.reshape(-1, 3))
    want = fd(f, pos.ravel())
    with pytest.warns(RuntimeWarning):
        g = npfunc.grad(f)(pos.ravel())
    assert np.isnan(g).all()
    with np.errstate(all="ignore"):
        assert_deriv(npfunc.jacfwd(f)(pos.ravel()), want)
    assert_jit_replays(dense_coulomb_where, (pos,), (cluster(4, seed=1),))
    fixed = lambda x: dense_coulomb_double_where(x.reshape(-1, 3))
    assert_same(fixed(pos.ravel()), f(pos.ravel()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_energy(fixed, pos.ravel(), cluster(4, seed=1).ravel())


def kdtree_energy(p, rc=1.8):
    pairs = cKDTree(p).query_pairs(rc, output_type="ndarray")
    r = np.linalg.norm(p[pairs[:, 0]] - p[pairs[:, 1]], axis=1)
    return np.sum((1 - r / rc) ** 2)


def kdtree_energy_stopped(p, rc=1.8):
    pairs = cKDTree(npfunc.stop_gradient(p)).query_pairs(rc, output_type="ndarray")
    r = np.linalg.norm(p[pairs[:, 0]] - p[pairs[:, 1]], axis=1)
    return np.sum((1 - r / rc) ** 2)


def test_kdtree_neighbour_search_refused_and_the_named_fix():
    pos = cluster(5)
    for T in (npfunc.grad, npfunc.jit):
        with pytest.raises(npfunc.errors.ConcretizationError, match=r"cKDTree\(npfunc\.stop_gradient\(x\)\)"):
            T(kdtree_energy)(pos)
    assert_same(kdtree_energy_stopped(pos), kdtree_energy(pos))
    f = lambda x: kdtree_energy_stopped(x.reshape(-1, 3))
    for g, p in zip(repeated(npfunc.grad(f), [pos.ravel(), cluster(5, seed=1).ravel()]), (pos, cluster(5, seed=1))):
        assert_deriv(g, fd(lambda x: kdtree_energy(x.reshape(-1, 3)), p.ravel()))


def test_random_kicks_from_a_generator_refused_under_jit_exact_eagerly():
    pos = cluster(4)

    def make(seed):
        rng = np.random.default_rng(seed)

        def kick(x, gamma):
            return x * np.exp(-gamma) + np.sqrt(1 - np.exp(-2 * gamma)) * rng.standard_normal(x.shape)
        return kick

    with pytest.raises(npfunc.errors.NpfuncError, match=r"Draw outside the jitted function"):
        npfunc.jit(make(1))(pos, 0.1)
    # eagerly, each call draws anew, as the plain program: grad, hessian and jvp(grad) see
    # the same noise the plain program draws on its n-th call
    ref, kick = make(1), make(1)
    loss = lambda g: np.sum(kick(pos, g) ** 2)
    for _ in range(5):
        got = npfunc.grad(loss)(0.1)
        x = ref(pos, 0.1)   # the same draw, plainly
        noise = (x - pos * np.exp(-0.1)) / np.sqrt(1 - np.exp(-0.2))
        dx = -pos * np.exp(-0.1) + np.exp(-0.2) / np.sqrt(1 - np.exp(-0.2)) * noise
        np.testing.assert_allclose(got, np.sum(2 * x * dx), rtol=1e-12)


def trajectory_buffer(x0, v0, dt=0.05, n=5):
    traj = np.empty((n,) + x0.shape)
    x, v = x0, v0
    for k in range(n):
        v = v - dt * x
        x = x + dt * v
        traj[k] = x
    return traj


def trajectory_buffer_like(x0, v0, dt=0.05, n=5):
    traj = np.empty((n,) + x0.shape, like=v0)
    x, v = x0, v0
    for k in range(n):
        v = v - dt * x
        x = x + dt * v
        traj[k] = x
    return traj


def test_trajectory_into_a_plain_preallocated_array_matches_the_like_fix():
    """A trajectory written into a plain np.empty array (once refused under jit and jacrev,
    naming like=x): jit (recording and replays) and vmap give NumPy's values, jacrev the
    differences' Jacobian, equal to the like= spelling's to rounding."""
    x0 = cluster(3)
    v0 = 0.3 * np.random.default_rng(0).standard_normal((3, 3))
    assert_same(trajectory_buffer_like(x0, v0), trajectory_buffer(x0, v0))
    assert_jit_replays(trajectory_buffer_like, (x0, v0), (x0, 2 * v0))
    assert_jit_replays(trajectory_buffer, (x0, v0), (x0, 2 * v0), (2 * x0, v0))
    f = lambda v: trajectory_buffer_like(x0, v.reshape(3, 3)).ravel()
    f_plain = lambda v: trajectory_buffer(x0, v.reshape(3, 3)).ravel()
    for J, J_plain in zip(repeated(npfunc.jacrev(f), [v0.ravel(), 2 * v0.ravel()], n=3),
                          repeated(npfunc.jacrev(f_plain), [v0.ravel(), 2 * v0.ravel()], n=3)):
        assert_deriv(J, fd(f_plain, v0.ravel()))
        assert_deriv(J_plain, fd(f_plain, v0.ravel()))
        np.testing.assert_allclose(J_plain, J, rtol=1e-12, atol=1e-12)
    want = np.stack([trajectory_buffer(x0, v0), trajectory_buffer(x0, 2 * v0)])
    got = npfunc.vmap(trajectory_buffer_like, in_dims=(None, 0))(x0, np.stack([v0, 2 * v0]))
    assert_same(got, want)
    assert_same(npfunc.vmap(trajectory_buffer, in_dims=(None, 0))(x0, np.stack([v0, 2 * v0])), want)


# =================================================================================================
# 9. MD with autodiff forces, checkpointed steps, custom rules, functionalize
# =================================================================================================


def md_autodiff_forces(p0, v0, dt=0.005, n=4):
    """Velocity Verlet whose forces are -npfunc.grad of the energy."""
    force = lambda p: -npfunc.grad(lj_energy_cut)(p, BOX)
    p, v = p0, v0
    f = force(p)
    for _ in range(n):
        v = v + 0.5 * dt * f
        p = p + dt * v
        f = force(p)
        v = v + 0.5 * dt * f
    return lj_energy_cut(p, BOX) + 0.5 * np.sum(v**2)


def md_analytic_forces(p0, v0, dt=0.005, n=4, step_wrapper=None):
    def step(p, v):
        v = v + 0.5 * dt * lj_forces_analytic(p, BOX)
        p = p + dt * v
        v = v + 0.5 * dt * lj_forces_analytic(p, BOX)
        return p, v
    if step_wrapper is not None:
        step = step_wrapper(step)
    p, v = p0, v0
    for _ in range(n):
        p, v = step(p, v)
    return lj_energy_cut(p, BOX) + 0.5 * np.sum(v**2)


def test_md_with_autodiff_forces_and_checkpointed_steps():
    pos = cluster(4)
    vel = 0.3 * np.random.default_rng(0).standard_normal((4, 3))
    ckpt = lambda p, v: md_analytic_forces(p, v, step_wrapper=npfunc.checkpoint)
    for prog in (md_autodiff_forces, ckpt):
        assert_same(prog(pos, vel), md_analytic_forces(pos, vel), rtol=1e-13)
        jp = npfunc.jit(prog)
        for p in (pos, 1.01 * pos, pos):
            np.testing.assert_allclose(jp(p, vel), md_analytic_forces(p, vel), rtol=1e-13)
        fv = lambda v: prog(pos, v.reshape(4, 3))
        ref = lambda v: md_analytic_forces(pos, v.reshape(4, 3))
        for g, v in zip(repeated(npfunc.grad(fv), [vel.ravel(), 2 * vel.ravel()]), (vel, 2 * vel)):
            assert_deriv(g, fd(ref, v.ravel()), rtol=1e-6)
        got = npfunc.vmap(prog, in_dims=(None, 0))(pos, np.stack([vel, 2 * vel]))
        np.testing.assert_allclose(got, [md_analytic_forces(pos, vel), md_analytic_forces(pos, 2 * vel)], rtol=1e-13)
    fx = lambda x: md_autodiff_forces(x.reshape(4, 3), vel)
    refx = lambda x: md_analytic_forces(x.reshape(4, 3), vel)
    jg = npfunc.jit(npfunc.grad(fx))
    for _ in range(3):
        for x in (pos.ravel(), 1.01 * pos.ravel()):
            assert_deriv(jg(x), fd(refx, x), rtol=1e-6)
    assert_deriv(npfunc.jacfwd(fx)(pos.ravel()), fd(refx, pos.ravel()), rtol=1e-6)


@npfunc.custom_vjp
def lj_energy_custom(p):
    return lj_energy_loop(p, BOX)


def _lj_fwd(p):
    return lj_energy_loop(p, BOX), p


def _lj_bwd(p, g):
    return (-g * lj_forces_analytic(p, BOX),)


lj_energy_custom.defvjp(_lj_fwd, _lj_bwd)


@npfunc.custom_jvp
def morse_custom(r):
    return morse(r)


@morse_custom.defjvp
def _morse_jvp(primals, tangents):
    (r,), (t,) = primals, tangents
    e = np.exp(-1.9 * (r - 0.74))
    return morse(r), 2 * 4.7 * 1.9 * (1 - e) * e * t


def test_custom_vjp_analytic_forces_and_custom_jvp_morse():
    pos, pos2 = cluster(5), cluster(5, seed=1)
    assert_same(lj_energy_custom(pos), lj_energy_loop(pos, BOX))
    assert_jit_replays(lj_energy_custom, (pos,), (pos2,))
    for g, p in zip(repeated(npfunc.grad(lj_energy_custom), [pos, pos2]), (pos, pos2)):
        np.testing.assert_array_equal(g, -lj_forces_analytic(p, BOX))
    jg = npfunc.jit(npfunc.grad(lj_energy_custom))
    for p in (pos, pos2, pos):
        np.testing.assert_allclose(jg(p), -lj_forces_analytic(p, BOX), rtol=1e-13, atol=1e-13)
    vg = npfunc.vmap(npfunc.grad(lj_energy_custom))(np.stack([pos, pos2]))
    np.testing.assert_allclose(vg, -np.stack([lj_forces_analytic(pos, BOX), lj_forces_analytic(pos2, BOX)]),
                               rtol=1e-13, atol=1e-13)
    gg = npfunc.grad(npfunc.grad(morse_custom))
    first = gg(0.8)
    assert type(first) is np.float64
    for _ in range(5):
        assert gg(0.8) == first
        np.testing.assert_allclose(gg(1.0), fd(lambda s: fd(morse, s, 1e-3), np.array(1.0), 1e-3), rtol=1e-6)
    np.testing.assert_allclose(first, fd(lambda s: fd(morse, s, 1e-3), np.array(0.8), 1e-3), rtol=1e-6)
    rr = np.array([0.8, 1.0, 1.4])
    assert_deriv(npfunc.vmap(npfunc.grad(morse_custom))(rr), np.diag(fd(morse, rr)))
    assert_same(npfunc.jit(morse_custom)(0.8), morse(0.8))


def test_functionalize_berendsen_in_place():
    vel = 0.3 * np.random.default_rng(0).standard_normal((5, 3))
    for T in (npfunc.functionalize, lambda f: npfunc.jit(npfunc.functionalize(f))):
        for s in (1.0, 2.0, 1.0):
            v1, v2 = s * vel, s * vel
            got = T(lambda v: berendsen_rescale(v, 1.5))(v1)
            want = berendsen_rescale(v2, 1.5)
            assert_same(got, want)
            np.testing.assert_array_equal(v1, v2)


def test_partition_function_ti_by_quad_and_vectorised_ewald():
    E = np.array([0.0, 0.5, 0.5, 1.3])

    def free_energy_levels(E, kT):
        Z = np.sum(np.exp(-E / kT))
        return -kT * np.log(Z)

    gg = npfunc.grad(npfunc.grad(free_energy_levels, argnums=1), argnums=1)
    first = gg(E, 0.7)
    for _ in range(5):
        assert gg(E, 0.7) == first
    np.testing.assert_allclose(first, fd(lambda t: fd(lambda s: free_energy_levels(E, s), t, 1e-3), np.array(0.7), 1e-3),
                               rtol=1e-6)
    # TI by adaptive quadrature: the integral as a function of the sampled distances
    rs = 1.0 + 0.3 * np.random.default_rng(1).random(6)
    ti_quad = lambda rs: scipy.integrate.quad(lambda l: ti_integrand(l, rs), 0, 1)[0]
    assert type(ti_quad(rs)) is float
    got = npfunc.jit(ti_quad)(rs)   # quad's float comes back as np.float64 (a float) when traced
    assert isinstance(got, float)
    np.testing.assert_allclose(got, ti_quad(rs), rtol=1e-13)
    for _ in range(5):
        assert_deriv(npfunc.grad(ti_quad)(rs), fd(ti_quad, rs))
    np.testing.assert_allclose(npfunc.vmap(ti_quad)(np.stack([rs, 1.1 * rs])), [ti_quad(rs), ti_quad(1.1 * rs)], rtol=1e-12)

    def ewald_reciprocal(pos, q, L, alpha=1.2, kmax=2):
        n = np.arange(-kmax, kmax + 1)
        kv = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3)
        kv = kv[np.any(kv != 0, axis=1)]
        k = 2 * np.pi * kv / L
        k2 = np.sum(k**2, axis=1)
        S = np.exp(1j * pos @ k.T).T @ q
        return 2 * np.pi / L**3 * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2 * np.abs(S) ** 2)

    pos, pos2 = cluster(4), cluster(4, seed=1)
    q = Q5[:4]
    check_energy(lambda x: ewald_reciprocal(x.reshape(-1, 3), q, BOX), pos.ravel(), pos2.ravel())
    assert_jit_replays(ewald_reciprocal, (pos, q, BOX), (pos2, -q, 3.2))
    np.testing.assert_allclose(npfunc.grad(ewald_reciprocal, argnums=2)(pos, q, BOX),
                               fd(lambda L: ewald_reciprocal(pos, q, L), np.array(BOX)), rtol=1e-7)
    got = npfunc.vmap(ewald_reciprocal, in_dims=(None, 0, None))(pos, np.stack([q, -q, 2 * q]), BOX)
    np.testing.assert_allclose(got, [ewald_reciprocal(pos, qq, BOX) for qq in (q, -q, 2 * q)], rtol=1e-12)


# =================================================================================================
# 10. the Maxwell-Boltzmann speed distribution (scipy.stats.maxwell: a twin added here)
# =================================================================================================

import scipy.stats  # noqa: E402


def maxwell_speed_nll(T, speeds, m=1.0, kB=1.0):
    """Negative log-likelihood of the temperature from sampled speeds."""
    a = np.sqrt(kB * T / m)
    return -np.sum(scipy.stats.maxwell.logpdf(speeds, scale=a))


def maxwell_fraction_faster(T, v, m=1.0):
    """The fraction of molecules faster than v (the survival function)."""
    return scipy.stats.maxwell.sf(v, scale=np.sqrt(T / m))


def test_maxwell_boltzmann_temperature_fit():
    """scipy.stats.maxwell had no npfunc twin (grad refused, naming the missing twin); it now
    has one (npfunc.scipy.stats.maxwell, SciPy's formulas), reached from scipy.stats.maxwell."""
    speeds = scipy.stats.maxwell.rvs(scale=1.3, size=20, random_state=0)
    speeds2 = scipy.stats.maxwell.rvs(scale=0.9, size=20, random_state=1)
    assert_jit_replays(maxwell_speed_nll, (1.5, speeds), (0.8, speeds2))
    g = npfunc.grad(maxwell_speed_nll)
    gg = npfunc.grad(g)
    first = gg(1.5, speeds)
    for _ in range(5):
        for T, s in ((1.5, speeds), (0.8, speeds2)):
            np.testing.assert_allclose(g(T, s), fd(lambda t: maxwell_speed_nll(t, s), np.array(T)), rtol=1e-8)
        assert gg(1.5, speeds) == first
    np.testing.assert_allclose(first, fd(lambda t: fd(lambda u: maxwell_speed_nll(u, speeds), t, 1e-3), np.array(1.5), 1e-3),
                               rtol=1e-6)
    # Newton on the score reaches the closed-form estimate T = m <v^2> / 3
    T = 1.0
    for _ in range(20):
        T = T - g(T, speeds) / gg(T, speeds)
    np.testing.assert_allclose(T, np.mean(speeds**2) / 3, rtol=1e-12)
    # in the speeds, per temperature by vmap, and the tail fraction
    f = lambda s: maxwell_speed_nll(1.5, s)
    assert_deriv(npfunc.grad(f)(speeds), fd(f, speeds))
    Ts = np.array([0.8, 1.5, 2.0])
    assert_same(npfunc.vmap(maxwell_speed_nll, in_dims=(0, None))(Ts, speeds),
                np.stack([maxwell_speed_nll(t, speeds) for t in Ts]))
    assert_jit_replays(maxwell_fraction_faster, (1.5, np.array([0.5, 2.0, 4.0])), (0.7, np.array([0.1, 1.0, 3.0])))
    for T in (0.7, 1.5):
        np.testing.assert_allclose(npfunc.jacfwd(maxwell_fraction_faster)(T, np.array([0.5, 2.0, 4.0])),
                                   fd(lambda t: maxwell_fraction_faster(t, np.array([0.5, 2.0, 4.0])), np.array(T)),
                                   rtol=1e-7, atol=1e-12)


# =================================================================================================
# 11. force-field parameters as nested dicts, topologies as arguments, float32 integration
# =================================================================================================


def energy_from_params(params, pos):
    """A small force field whose parameters live in a nested dict of Python floats."""
    lj = params["lj"]
    i, j = np.triu_indices(len(pos), 2)
    r = np.linalg.norm(pos[i] - pos[j], axis=1)
    x = (lj["sigma"] / r) ** 6
    e = np.sum(4 * lj["eps"] * (x * x - x))
    b = params["bond"]
    rb = np.linalg.norm(pos[1:] - pos[:-1], axis=1)
    return e + 0.5 * b["k"] * np.sum((rb - b["r0"]) ** 2)


def test_parameter_dicts_and_topology_arguments():
    pos = MOL[:4]
    params = {"lj": {"eps": 1.0, "sigma": 1.0}, "bond": {"k": 300.0, "r0": 1.0}}
    flat = lambda p: energy_from_params({"lj": {"eps": p[0], "sigma": p[1]}, "bond": {"k": p[2], "r0": p[3]}}, pos)
    p0 = np.array([1.0, 1.0, 300.0, 1.0])
    want = fd(flat, p0)
    for T in (npfunc.grad, npfunc.jacfwd, npfunc.jacrev):
        for _ in range(5):
            g = T(energy_from_params)(params, pos)
            assert list(g) == ["lj", "bond"] and list(g["lj"]) == ["eps", "sigma"]
            got = np.array([g["lj"]["eps"], g["lj"]["sigma"], g["bond"]["k"], g["bond"]["r0"]], dtype=float)
            assert_deriv(got, want, rtol=1e-7)
    assert type(npfunc.grad(energy_from_params)(params, pos)["lj"]["eps"]) is np.float64
    H = npfunc.hessian(energy_from_params)(params, pos)
    assert_deriv(np.array([H["lj"]["sigma"]["lj"]["sigma"], H["bond"]["r0"]["bond"]["k"]], dtype=float),
                 fd_hessian(flat, p0)[[1, 3], [1, 2]], rtol=1e-5)
    assert_jit_replays(energy_from_params, (params, pos), ({"lj": {"eps": 0.7, "sigma": 1.1}, "bond": {"k": 250.0, "r0": 1.05}}, pos))
    batch = {"lj": {"eps": np.array([1.0, 2.0]), "sigma": 1.0}, "bond": {"k": 300.0, "r0": 1.0}}
    got = npfunc.vmap(energy_from_params, in_dims=({"lj": {"eps": 0, "sigma": None}, "bond": None}, None))(batch, pos)
    assert_same(got, np.stack([energy_from_params(dict(params, lj={"eps": e, "sigma": 1.0}), pos) for e in (1.0, 2.0)]))
    # a topology dict (index arrays, lists of quadruples) passed to a jitted force field
    top2 = dict(TOP, bonds=np.array([[0, 2], [1, 3], [2, 4], [0, 4]]), quads=[(4, 3, 2, 1), (0, 2, 1, 3)],
                n=[1, 3], kphi=[2.0, 0.3])
    assert_jit_replays(force_field_terms, (MOL, TOP), (MOL, top2), (MOL2, TOP))


def velocity_verlet_inplace(x0, v0, dt, nsteps):
    x = x0.copy()
    v = v0.copy()
    f = harmonic_chain_forces(x)
    for _ in range(nsteps):
        v += 0.5 * dt * f
        x += dt * v
        f = harmonic_chain_forces(x)
        v += 0.5 * dt * f
    return x, v, 0.5 * np.sum(v**2) + 0.5 * np.sum((x[1:] - x[:-1] - 1.0) ** 2)


def test_float32_velocity_verlet_stays_float32():
    x0, v0 = X0.astype(np.float32), V0.astype(np.float32)
    for dt in (0.1, np.float32(0.1), np.float64(0.1), np.array(0.1)):
        want = velocity_verlet_inplace(x0, v0, dt, 5)
        assert want[0].dtype == np.float32 and type(want[2]) is np.float32
        assert_jit_replays(velocity_verlet_inplace, (x0, v0, dt, 5), (x0 + 1, 2 * v0, dt, 5), static_argnums=3)
    z = np.concatenate([x0, v0])
    e = lambda zz: velocity_verlet_inplace(zz[:5], zz[5:], 0.1, 5)[2]
    g = npfunc.grad(e)(z)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, npfunc.grad(e)(z.astype(np.float64)), rtol=1e-5, atol=1e-6)
    got = npfunc.vmap(lambda a, b: velocity_verlet_inplace(a, b, 0.1, 5))(np.stack([x0, x0 + 1]), np.stack([v0, 2 * v0]))
    for k in range(3):
        assert_same(got[k], np.stack([velocity_verlet_inplace(a, b, 0.1, 5)[k] for a, b in ((x0, v0), (x0 + 1, 2 * v0))]))


# =================================================================================================
# 12. equilibrium geometries by SciPy's solvers: fsolve's shape, a minimum with zero modes
# =================================================================================================


def bond_length_by_fsolve(k_ext):
    """The stretched LJ bond under an external force k_ext: -dV/dr = k_ext, solved by fsolve
    from a Python-float start (SciPy returns the root as a shape (1,) array)."""
    return scipy.optimize.fsolve(lambda r: 24 * (2 * r**-13 - r**-7) + k_ext, 1.12)


def test_fsolve_root_keeps_scipys_shape():
    """Regression: with a scalar x0 the routed fsolve returned shape () (reshaped to x0's
    shape) where SciPy returns (1,), so jacrev/jacfwd had the wrong shape and vmap a
    (batch,) result instead of (batch, 1); a (2, 2) x0 gave (2, 2) instead of SciPy's (4,)."""
    want = bond_length_by_fsolve(0.5)
    assert want.shape == (1,)
    assert_jit_replays(bond_length_by_fsolve, (0.5,), (1.0,))
    for T in (npfunc.jacrev, npfunc.jacfwd):
        for k in (0.5, 1.0, 0.5):
            J = T(bond_length_by_fsolve)(k)
            assert J.shape == (1,)
            assert_deriv(J, fd(bond_length_by_fsolve, np.array(k)), rtol=1e-6)
    ks = np.array([0.2, 0.5, 1.0])
    got = npfunc.vmap(bond_length_by_fsolve)(ks)
    # one stacked solve: agrees with the loop to fsolve's xtol (docs/solvers.md)
    np.testing.assert_allclose(got, np.stack([bond_length_by_fsolve(k) for k in ks]), rtol=1.5e-8)
    assert got.shape == (3, 1)
    grid = lambda k: scipy.optimize.fsolve(lambda x: k * (x - 1) + x**3 - 2, np.ones((2, 2)))
    assert grid(2.0).shape == (4,)
    assert npfunc.jacrev(grid)(2.0).shape == (4,)
    assert npfunc.vmap(grid)(ks).shape == (3, 4)


def trimer_minimum(eps, x0):
    res = scipy.optimize.minimize(lambda x, e: e * trimer_energy(x), x0, args=(eps,), method="BFGS")
    return res.x


def pinned_trimer_minimum(eps, sigma):
    """The trimer with atom 0 at the origin, atom 1 on the x axis, atom 2 in the xy plane:
    the minimum is unique, and so is its derivative."""
    def E(q):
        x = np.array([[0.0, 0.0, 0.0], [q[0], 0.0, 0.0], [q[1], q[2], 0.0]])
        d = np.array([np.linalg.norm(x[0] - x[1]), np.linalg.norm(x[0] - x[2]), np.linalg.norm(x[1] - x[2])])
        return np.sum(4 * eps * ((sigma / d) ** 12 - (sigma / d) ** 6))
    return scipy.optimize.minimize(E, np.array([1.1, 0.6, 1.0]), method="BFGS").x


def test_minimum_with_zero_modes_refused_pinned_minimum_differentiated():
    """Regression: the implicit derivative of a cluster's minimum (six zero modes: the
    Hessian is singular) raised numpy's raw LinAlgError('Singular matrix') from the dense
    solve; it is now refused, naming why and the fixes."""
    r0 = 2 ** (1 / 6)
    x0 = 1.03 * np.array([[0.0, 0, 0], [r0, 0, 0], [r0 / 2, r0 * np.sqrt(3) / 2, 0]]).ravel()
    for T in (npfunc.jacrev, npfunc.jacfwd):
        with pytest.raises(npfunc.errors.NpfuncError,
                           match=r"singular to working precision.*fix the free coordinates.*stop_gradient\(res\.x\)"):
            T(trimer_minimum)(1.3, x0)

    # the optimal value, by the named spelling (envelope theorem): dE*/deps = E*/eps = -3
    def optimal_energy(e):
        res = scipy.optimize.minimize(lambda x: e * trimer_energy(x), x0, method="BFGS")
        return e * trimer_energy(npfunc.stop_gradient(res.x))
    for _ in range(3):
        np.testing.assert_allclose(npfunc.grad(optimal_energy)(1.3), -3.0, rtol=1e-8)
    np.testing.assert_allclose(npfunc.jit(optimal_energy)(1.3), -3.9, rtol=1e-8)
    # pinned, the minimum scales with sigma: d x*/d sigma = x*/sigma
    want = r0 * np.array([1.0, 0.5, np.sqrt(3) / 2])
    for _ in range(3):
        np.testing.assert_allclose(npfunc.jacrev(pinned_trimer_minimum, argnums=1)(1.3, 1.0), want, rtol=1e-6)
        np.testing.assert_allclose(npfunc.jacfwd(pinned_trimer_minimum, argnums=0)(1.3, 1.0), np.zeros(3), atol=1e-6)
