"""Natural programs from quantum mechanics, chemistry and molecular simulation,
each written first as plain NumPy/SciPy the way a practitioner writes it
(grid and tight-binding Hamiltonians diagonalised with eigh, time evolution
with expm(-iHt), density matrices, mean-field and Hartree-Fock SCF loops,
Lennard-Jones/Morse/bonded force fields over pair distances, Boltzmann
averages with logsumexp, Arrhenius fits, hydrogenic orbitals), then run under
npfunc's transforms and compared with the plain program (values, dtypes,
NumPy scalar or array, side effects) and with central differences
(derivatives).  Refusals are checked for their message and for the fix it
names; gaps are strict xfails."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
from scipy.special import erf, logsumexp

import npfunc
from natural_checks import assert_deriv, assert_same, fd

# ---- one-dimensional Schrodinger equation on a grid ----------------------------------------


def fd_hamiltonian(V, dx=0.1):
    """Three-point finite-difference Hamiltonian -1/2 d^2/dx^2 + V on a grid
    (hbar = m = 1), filled into a preallocated matrix by a loop."""
    n = len(V)
    H = np.zeros((n, n))
    for i in range(n):
        H[i, i] = 1.0 / dx**2 + V[i]
        if i > 0:
            H[i, i - 1] = -0.5 / dx**2
        if i < n - 1:
            H[i, i + 1] = -0.5 / dx**2
    return H


def ground_state_energy_loop(V):
    """Lowest eigenvalue of the loop-built grid Hamiltonian by np.linalg.eigh."""
    w, _ = np.linalg.eigh(fd_hamiltonian(V))
    return w[0]


def ground_state_energy(V, dx=0.1):
    """The same, vectorised: np.diag for the three bands."""
    n = V.shape[0]
    off = -0.5 / dx**2 * np.ones(n - 1)
    H = np.diag(1.0 / dx**2 + V) + np.diag(off, 1) + np.diag(off, -1)
    w, v = np.linalg.eigh(H)
    return w[0]


def ground_state_density(V, dx=0.1):
    """Normalised ground-state density |psi_0|^2 / dx (the sign of the
    eigenvector does not matter)."""
    n = V.shape[0]
    off = -0.5 / dx**2 * np.ones(n - 1)
    H = np.diag(1.0 / dx**2 + V) + np.diag(off, 1) + np.diag(off, -1)
    w, v = np.linalg.eigh(H)
    psi = v[:, 0]
    return psi**2 / dx


def anharmonic_levels(params, n=40, L=8.0):
    """Lowest three levels of V = a x^2 + b x^4 on a grid with
    scipy.linalg.eigh_tridiagonal (select='i')."""
    a, b = params
    x = np.linspace(-L / 2, L / 2, n)
    dx = x[1] - x[0]
    d = 1.0 / dx**2 + a * x**2 + b * x**4
    e = np.full(n - 1, -0.5 / dx**2)
    w = scipy.linalg.eigh_tridiagonal(d, e, eigvals_only=True, select="i", select_range=(0, 2))
    return w


def excitation_gap(params, n=30, L=8.0):
    """E1 - E0 of the anharmonic well by scipy.linalg.eigh on the full matrix,
    asking only for the eigenvalues."""
    a, b = params[0], params[1]
    x = np.linspace(-L / 2, L / 2, n)
    dx = x[1] - x[0]
    T = (np.eye(n) * 2 - np.eye(n, k=1) - np.eye(n, k=-1)) / (2 * dx * dx)
    H = T + np.diag(a * x**2 + b * x**4)
    w = scipy.linalg.eigh(H, eigvals_only=True)
    return w[1] - w[0]


def numerov_shoot(E, V=None, n=200, L=6.0):
    """Numerov integration of psi'' = 2 (V - E) psi from the left wall into a
    preallocated array; returns psi at the right wall (zero at an eigenvalue)."""
    x = np.linspace(-L / 2, L / 2, n)
    h = x[1] - x[0]
    if V is None:
        V = 0.5 * x**2
    k2 = 2.0 * (E - V)
    psi = np.zeros(n)
    psi[1] = 1e-4
    for i in range(1, n - 1):
        c0 = 1.0 + h * h * k2[i - 1] / 12.0
        c1 = 2.0 * (1.0 - 5.0 * h * h * k2[i] / 12.0)
        c2 = 1.0 + h * h * k2[i + 1] / 12.0
        psi[i + 1] = (c1 * psi[i] - c0 * psi[i - 1]) / c2
    return psi[-1]


# ---- tight binding and spin chains ---------------------------------------------------------


def tight_binding_band_energy(t, n_elec=4):
    """Su-Schrieffer-Heeger-like ring with bond hoppings t; band energy of the
    lowest n_elec/2 doubly occupied orbitals (np.linalg.eigvalsh)."""
    n = t.shape[0]
    H = np.zeros((n, n))
    idx = np.arange(n)
    H[idx, (idx + 1) % n] = -t
    H[(idx + 1) % n, idx] = -t
    e = np.linalg.eigvalsh(H)
    return 2.0 * np.sum(e[: n_elec // 2])


def huckel_pi_energy(alpha_beta, adjacency):
    """Huckel pi energy E = sum 2 e_k over occupied orbitals, H = alpha I + beta A
    (one electron per carbon)."""
    alpha, beta = alpha_beta
    n = adjacency.shape[0]
    H = alpha * np.eye(n) + beta * adjacency
    e = np.sort(np.linalg.eigvalsh(H))
    nocc = n // 2
    return 2 * e[:nocc].sum()


SX = np.array([[0.0, 1.0], [1.0, 0.0]])
SY = np.array([[0.0, -1.0j], [1.0j, 0.0]])
SZ = np.array([[1.0, 0.0], [0.0, -1.0]])


def heisenberg_chain(J, h, nsite=4):
    """Open Heisenberg chain sum_i J_i S_i.S_{i+1} + h sum_i Sz_i built by
    np.kron; ground-state energy (complex Hermitian, np.linalg.eigvalsh)."""
    dim = 2**nsite

    def site_op(op, i):
        out = np.array([[1.0 + 0j]])
        for k in range(nsite):
            out = np.kron(out, op if k == i else np.eye(2))
        return out

    H = np.zeros((dim, dim), dtype=complex)
    for i in range(nsite - 1):
        for s in (SX, SY, SZ):
            H += 0.25 * J[i] * site_op(s, i) @ site_op(s, i + 1)
    for i in range(nsite):
        H += 0.5 * h * site_op(SZ, i)
    return np.linalg.eigvalsh(H)[0]


# ---- time evolution ------------------------------------------------------------------------


def rabi_population(params, t=1.3):
    """Two-level system H = [[0, W/2], [W/2, delta]]: excited population after
    time t with scipy.linalg.expm(-1j H t)."""
    W, delta = params
    H = np.array([[0.0, W / 2], [W / 2, delta]])
    U = scipy.linalg.expm(-1j * H * t)
    psi0 = np.array([1.0, 0.0], dtype=complex)
    psi = U @ psi0
    return np.abs(psi[1]) ** 2


def gate_fidelity(controls, dt=0.2):
    """Piecewise-constant control of a qubit: U = prod expm(-i (u_x X + u_y Y) dt),
    fidelity |<target|U|0>|^2 with np.vdot (conjugates its first argument)."""
    psi = np.array([1.0, 0.0], dtype=complex)
    for ux, uy in controls.reshape(-1, 2):
        H = ux * SX + uy * SY + 0.3 * SZ
        psi = scipy.linalg.expm(-1j * dt * H) @ psi
    target = np.array([1.0, 1.0j]) / np.sqrt(2.0)
    return np.abs(np.vdot(target, psi)) ** 2


def eigen_propagate(V, t, dx=0.2):
    """Time evolution by eigendecomposition: psi(t) = U diag(exp(-i E t)) U^T psi0,
    returning the expectation value <x> (np.conj and real part)."""
    n = V.shape[0]
    x = (np.arange(n) - n / 2) * dx
    H = np.diag(1.0 / dx**2 + V) - np.diag(np.full(n - 1, 0.5 / dx**2), 1) - np.diag(np.full(n - 1, 0.5 / dx**2), -1)
    E, U = np.linalg.eigh(H)
    psi0 = np.exp(-((x - 0.5) ** 2))
    psi0 = psi0 / np.linalg.norm(psi0)
    c = U.T @ psi0
    psi_t = U @ (np.exp(-1j * E * t) * c)
    return np.real(np.sum(np.conj(psi_t) * x * psi_t))


def split_operator_step(psi_re_im, V, dt=0.05, dx=0.1):
    """One split-operator step with np.fft: half potential kick, kinetic step in
    k-space, half kick; returns the norm and <x> of the new wavefunction."""
    n = V.shape[0]
    psi = psi_re_im[:n] + 1j * psi_re_im[n:]
    k = 2 * np.pi * np.fft.fftfreq(n, d=dx)
    x = dx * np.arange(n)
    half = np.exp(-0.5j * V * dt)
    psi = half * psi
    psi = np.fft.ifft(np.exp(-0.5j * k**2 * dt) * np.fft.fft(psi))
    psi = half * psi
    rho = np.abs(psi) ** 2
    norm = np.sum(rho) * dx
    return np.array([norm, np.sum(x * rho) * dx / norm])


# ---- density matrices ----------------------------------------------------------------------


def mixed_state_purity(weights_logits, states):
    """Purity tr(rho^2) and von Neumann entropy of rho = sum_k p_k |psi_k><psi_k|
    (softmax weights, np.outer with np.conj, eigvalsh, 0 log 0 := 0)."""
    p = np.exp(weights_logits - weights_logits.max())
    p /= p.sum()
    d = states.shape[1]
    rho = np.zeros((d, d), dtype=complex)
    for pk, psi in zip(p, states):
        rho += pk * np.outer(psi, np.conj(psi))
    purity = np.trace(rho @ rho).real
    lam = np.linalg.eigvalsh(rho)
    lam = lam[lam > 1e-12]
    S = -np.sum(lam * np.log(lam))
    return purity, S


def thermal_energy(beta, H):
    """Canonical <E> = tr(H exp(-beta H)) / tr(exp(-beta H)) with scipy.linalg.expm."""
    rho = scipy.linalg.expm(-beta * H)
    Z = np.trace(rho)
    return np.trace(H @ rho) / Z


# ---- Hartree-Fock ----------------------------------------------------------------------------


def hubbard_scf(U, t=1.0, n=6, nelec=6, tol=1e-10, maxiter=200):
    """Unrestricted-free mean-field Hubbard ring: Fock matrix H0 + U diag(n_other),
    fixed-point iteration with damping until the density changes less than tol."""
    H0 = np.zeros((n, n))
    for i in range(n):
        H0[i, (i + 1) % n] = H0[(i + 1) % n, i] = -t
    dens = np.full(n, nelec / (2 * n)) + 0.05 * np.cos(np.pi * np.arange(n))
    for it in range(maxiter):
        F = H0 + U * np.diag(dens)
        e, C = np.linalg.eigh(F)
        occ = C[:, : nelec // 2]
        new = np.sum(occ**2, axis=1)
        if np.max(np.abs(new - dens)) < tol:
            dens = new
            break
        dens = 0.5 * dens + 0.5 * new
    E = 2 * np.sum(e[: nelec // 2]) - U * np.sum(dens**2)
    return E


def boys_f0(t):
    """Boys function F0(t) = sqrt(pi / t) erf(sqrt t) / 2, with the t -> 0 limit 1."""
    if t < 1e-8:
        return 1.0 - t / 3.0
    return 0.5 * np.sqrt(np.pi / t) * erf(np.sqrt(t))


STO3G_H_EXP = np.array([3.42525091, 0.62391373, 0.16885540])
STO3G_H_COEF = np.array([0.15432897, 0.53532814, 0.44463454])


def h2_sto3g_energy(R):
    """Restricted Hartree-Fock energy of H2 in STO-3G at bond length R (bohr),
    integrals over s Gaussians written out in loops, Roothaan equations by
    scipy.linalg.eigh(F, S), SCF to a fixed tolerance, plus nuclear repulsion."""
    centers = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, R]])
    a = STO3G_H_EXP
    d = STO3G_H_COEF * (2 * a / np.pi) ** 0.75
    nb = 2
    S = np.zeros((nb, nb))
    T = np.zeros((nb, nb))
    Vn = np.zeros((nb, nb))
    for i in range(nb):
        for j in range(nb):
            rab2 = np.sum((centers[i] - centers[j]) ** 2)
            for p in range(3):
                for q in range(3):
                    ap, aq = a[p], a[q]
                    g = ap + aq
                    pre = d[p] * d[q] * np.exp(-ap * aq / g * rab2)
                    S[i, j] += pre * (np.pi / g) ** 1.5
                    T[i, j] += pre * ap * aq / g * (3 - 2 * ap * aq / g * rab2) * (np.pi / g) ** 1.5
                    P = (ap * centers[i] + aq * centers[j]) / g
                    for c in range(2):
                        rpc2 = np.sum((P - centers[c]) ** 2)
                        Vn[i, j] += -2 * np.pi / g * pre * boys_f0(g * rpc2)
    eri = np.zeros((nb, nb, nb, nb))
    for i in range(nb):
        for j in range(nb):
            for k in range(nb):
                for l in range(nb):
                    val = 0.0
                    for p in range(3):
                        for q in range(3):
                            for r in range(3):
                                for s in range(3):
                                    g1 = a[p] + a[q]
                                    g2 = a[r] + a[s]
                                    P = (a[p] * centers[i] + a[q] * centers[j]) / g1
                                    Q = (a[r] * centers[k] + a[s] * centers[l]) / g2
                                    rab2 = np.sum((centers[i] - centers[j]) ** 2)
                                    rcd2 = np.sum((centers[k] - centers[l]) ** 2)
                                    pre = d[p] * d[q] * d[r] * d[s]
                                    pre *= np.exp(-a[p] * a[q] / g1 * rab2 - a[r] * a[s] / g2 * rcd2)
                                    pre *= 2 * np.pi**2.5 / (g1 * g2 * np.sqrt(g1 + g2))
                                    val += pre * boys_f0(g1 * g2 / (g1 + g2) * np.sum((P - Q) ** 2))
                    eri[i, j, k, l] = val
    Hcore = T + Vn
    Pm = np.zeros((nb, nb))
    E_old = 0.0
    for it in range(50):
        J = np.einsum("kl,ijkl->ij", Pm, eri)
        K = np.einsum("kl,ikjl->ij", Pm, eri)
        F = Hcore + J - 0.5 * K
        e, C = scipy.linalg.eigh(F, S)
        Pm = 2 * np.outer(C[:, 0], C[:, 0])
        E = 0.5 * np.sum(Pm * (Hcore + F))
        if abs(E - E_old) < 1e-12:
            break
        E_old = E
    return E + 1.0 / R


def boys_f0_vec(t):
    """Vectorised Boys function; t clamped inside the branch np.where discards, so
    neither it nor its derivative sees 0 / 0."""
    ts = np.maximum(t, 1e-8)
    return np.where(t < 1e-8, 1.0 - t / 3.0, 0.5 * np.sqrt(np.pi / ts) * erf(np.sqrt(ts)))


def h2_sto3g_vectorised(R, maxiter=25):
    """The same RHF energy of H2 written with broadcasting over (basis, basis,
    primitive, primitive) and a fixed number of SCF iterations; the Roothaan
    equations F C = S C e by scipy.linalg.eigh(F, S)."""
    centers = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, R]])
    a = STO3G_H_EXP
    d = STO3G_H_COEF * (2 * a / np.pi) ** 0.75
    A = centers[:, None, None, None, :]
    B = centers[None, :, None, None, :]
    ap = a[:, None]
    aq = a[None, :]
    g = ap + aq
    mu = ap * aq / g
    rab2 = np.sum((A - B) ** 2, axis=-1)
    K = np.outer(d, d) * np.exp(-mu * rab2)
    S = np.sum(K * (np.pi / g) ** 1.5, axis=(2, 3))
    T = np.sum(K * mu * (3 - 2 * mu * rab2) * (np.pi / g) ** 1.5, axis=(2, 3))
    P = (ap[..., None] * A + aq[..., None] * B) / g[..., None]
    rpc2 = np.sum((P[..., None, :] - centers) ** 2, axis=-1)
    V = np.sum(-2 * np.pi / g * K * boys_f0_vec(g[..., None] * rpc2).sum(axis=-1), axis=(2, 3))
    K1 = K[:, :, :, :, None, None, None, None]
    K2 = K[None, None, None, None]
    G1 = g[None, None, :, :, None, None, None, None]
    G2 = g[None, None, None, None, None, None, :, :]
    P1 = P[:, :, :, :, None, None, None, None, :]
    P2 = P[None, None, None, None, :, :, :, :, :]
    pq2 = np.sum((P1 - P2) ** 2, axis=-1)
    pre = 2 * np.pi**2.5 / (G1 * G2 * np.sqrt(G1 + G2)) * K1 * K2
    eri = np.sum(pre * boys_f0_vec(G1 * G2 / (G1 + G2) * pq2), axis=(2, 3, 6, 7))
    Hcore = T + V
    Pm = np.zeros((2, 2))
    for _ in range(maxiter):
        F = Hcore + np.einsum("kl,ijkl->ij", Pm, eri) - 0.5 * np.einsum("kl,ikjl->ij", Pm, eri)
        e, C = scipy.linalg.eigh(F, S)
        Pm = 2 * np.outer(C[:, 0], C[:, 0])
    E = 0.5 * np.sum(Pm * (Hcore + F))
    return E + 1.0 / R


# ---- force fields --------------------------------------------------------------------------


def lj_energy(x_flat, eps=1.0, sigma=1.0):
    """Lennard-Jones cluster energy over unique pairs with np.triu_indices."""
    X = x_flat.reshape(-1, 3)
    i, j = np.triu_indices(len(X), k=1)
    r = np.linalg.norm(X[i] - X[j], axis=1)
    sr6 = (sigma / r) ** 6
    return 4 * eps * np.sum(sr6**2 - sr6)


def lj_energy_loops(x_flat, eps=1.0, sigma=1.0):
    """The same with the double loop everybody writes first."""
    X = x_flat.reshape(-1, 3)
    n = X.shape[0]
    E = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            d = X[i] - X[j]
            r2 = d @ d
            s6 = (sigma**2 / r2) ** 3
            E += 4 * eps * (s6 * s6 - s6)
    return E


def lj_forces_analytic(x_flat, eps=1.0, sigma=1.0):
    """Hand-written LJ forces accumulated into a preallocated (n, 3) array."""
    X = x_flat.reshape(-1, 3)
    n = len(X)
    F = np.zeros_like(X)
    for i in range(n):
        for j in range(i + 1, n):
            d = X[i] - X[j]
            r2 = np.dot(d, d)
            s6 = (sigma * sigma / r2) ** 3
            f = 24 * eps * (2 * s6 * s6 - s6) / r2 * d
            F[i] += f
            F[j] -= f
    return F.ravel()


def lj_cutoff_pbc(x_flat, L=4.0, rc=2.5):
    """Periodic LJ with minimum image (np.round) and a hard cutoff by np.where."""
    X = x_flat.reshape(-1, 3)
    d = X[:, None, :] - X[None, :, :]
    d -= L * np.round(d / L)
    r2 = np.sum(d * d, axis=-1)
    n = len(X)
    iu = np.triu_indices(n, 1)
    r2 = r2[iu]
    inv6 = np.where(r2 < rc * rc, 1.0 / r2**3, 0.0)
    return 2.0 * np.sum(inv6 * inv6 - inv6)


def morse_chain(x, De=4.7, a=1.9, re=0.74):
    """Morse bonds along a 1-D chain of atoms (np.diff of positions)."""
    r = np.diff(x)
    return np.sum(De * (1 - np.exp(-a * (r - re))) ** 2)


def bonded_energy(x_flat, kb=300.0, r0=1.0, ka=50.0, th0=1.9, kd=2.0):
    """Harmonic bonds and angle plus a cosine dihedral of a four-atom chain
    (np.arccos of the normalised dot, np.arctan2 for the dihedral)."""
    X = x_flat.reshape(4, 3)
    b = X[1:] - X[:-1]
    r = np.linalg.norm(b, axis=1)
    e_bond = 0.5 * kb * np.sum((r - r0) ** 2)
    cos_t = -np.sum(b[:-1] * b[1:], axis=1) / (r[:-1] * r[1:])
    th = np.arccos(cos_t)
    e_ang = 0.5 * ka * np.sum((th - th0) ** 2)
    n1 = np.cross(b[0], b[1])
    n2 = np.cross(b[1], b[2])
    m1 = np.cross(n1, b[1] / r[1])
    phi = np.arctan2(np.dot(m1, n2), np.dot(n1, n2))
    e_dih = kd * (1 + np.cos(3 * phi))
    return e_bond + e_ang + e_dih


def coulomb_matrix_eigs(x_flat, Z):
    """Coulomb-matrix descriptor: M_ii = 0.5 Z^2.4, M_ij = Z_i Z_j / |R_i - R_j|,
    sorted eigenvalues (largest first)."""
    X = x_flat.reshape(-1, 3)
    n = len(Z)
    M = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                M[i, j] = 0.5 * Z[i] ** 2.4
            else:
                M[i, j] = Z[i] * Z[j] / np.linalg.norm(X[i] - X[j])
    return np.sort(np.linalg.eigvalsh(M))[::-1]


def damped_coulomb(x_flat, q, alpha=0.3):
    """Real-space Ewald-like sum q_i q_j erfc(alpha r) / r over pairs
    (scipy.special.erfc and scipy.spatial.distance.pdist)."""
    from scipy.spatial.distance import pdist

    X = x_flat.reshape(-1, 3)
    r = pdist(X)
    i, j = np.triu_indices(len(X), 1)
    return np.sum(q[i] * q[j] * scipy.special.erfc(alpha * r) / r)


def dipole_moment_inplace(X, q):
    """Dipole of a charged cluster about its centre of charge magnitude: shift the
    coordinates in place (X -= centre) and return sum q_i r_i."""
    w = np.abs(q)
    centre = (w[:, None] * X).sum(axis=0) / w.sum()
    X -= centre
    return q @ X


def velocity_verlet(x0, v0, nsteps=20, dt=0.01):
    """Velocity Verlet for a Morse diatomic (1-D separation) with the force
    written by hand; trajectory stored in a preallocated array."""
    De, a, re = 4.7, 1.9, 0.74
    traj = np.empty(nsteps + 1)
    x, v = x0, v0
    traj[0] = x
    f = -2 * De * a * np.exp(-a * (x - re)) * (1 - np.exp(-a * (x - re)))
    for k in range(nsteps):
        v = v + 0.5 * dt * f
        x = x + dt * v
        f = -2 * De * a * np.exp(-a * (x - re)) * (1 - np.exp(-a * (x - re)))
        v = v + 0.5 * dt * f
        traj[k + 1] = x
    return traj


def lj_full_matrix(x_flat):
    """LJ energy over the full distance matrix, the self-distances set to inf by
    np.fill_diagonal so 1/r vanishes there; half the double sum."""
    X = x_flat.reshape(-1, 3)
    r = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=-1)
    np.fill_diagonal(r, np.inf)
    inv6 = (1.0 / r) ** 6
    return 2.0 * np.sum(inv6**2 - inv6)


def grid_levels_fill_diagonal(V, dx=0.1):
    """Grid Hamiltonian from the kinetic bands, its diagonal written by np.fill_diagonal."""
    n = V.shape[0]
    H = -0.5 * (np.eye(n, k=1) + np.eye(n, k=-1)) / dx**2
    np.fill_diagonal(H, 1.0 / dx**2 + V)
    return np.linalg.eigvalsh(H)[:3]


def morse_bond_length(De, a=1.9, re=0.74, k=0.2):
    """Equilibrium of a Morse bond in a weak harmonic trap: the root of the force
    by scipy.optimize.brentq."""
    def force(r):
        e = np.exp(-a * (r - re))
        return 2 * De * a * e * (1 - e) + k * r

    return scipy.optimize.brentq(force, 0.3, 1.5, xtol=1e-14)


def morse_minimum(De, a=1.9, re=0.74):
    """The same equilibrium by scipy.optimize.minimize_scalar of the energy."""
    E = lambda r: De * (1 - np.exp(-a * (r - re))) ** 2 + 0.1 * r**2
    return scipy.optimize.minimize_scalar(E, bracket=(0.5, 1.0), tol=1e-12).x


_H_CHAIN = np.diag(np.linspace(-1, 1, 8)) - 0.3 * (np.eye(8, k=1) + np.eye(8, k=-1))


def density_of_states(E, eta=0.05):
    """Lorentzian-broadened DOS from the resolvent: -Im tr (E + i eta - H)^-1 / pi."""
    G = np.linalg.inv((E + 1j * eta) * np.eye(len(_H_CHAIN)) - _H_CHAIN)
    return -np.trace(G).imag / np.pi


def cap_resonance(p):
    """Resonance of a barrier well with a complex absorbing potential: the
    eigenvalue of the non-Hermitian grid Hamiltonian (np.linalg.eigvals) nearest
    E = 1, as (Re E, Im E)."""
    V0, cap = p
    x = np.linspace(-5, 5, 30)
    dx = x[1] - x[0]
    V = V0 * x**2 * np.exp(-0.3 * x**2) - 1j * cap * np.maximum(np.abs(x) - 3.5, 0) ** 2
    H = np.diag(1 / dx**2 + V) - 0.5 / dx**2 * (np.eye(30, k=1) + np.eye(30, k=-1))
    w = np.linalg.eigvals(H)
    k = np.argmin(np.abs(w.real - 1.0))
    return np.array([w[k].real, w[k].imag])


def gaussian_norm_quad(alpha):
    """Normalisation constant of exp(-alpha r^2) by scipy.integrate.quad to infinity."""
    val, err = scipy.integrate.quad(lambda r: r**2 * np.exp(-2 * alpha * r**2), 0, np.inf)
    return 1 / np.sqrt(4 * np.pi * val)


def driven_two_level(W, T=2.0):
    """Excited population of a driven qubit by scipy.integrate.solve_ivp on the
    complex state (SciPy integrates complex systems directly)."""
    def rhs(t, y):
        H = np.array([[0.0, W * np.cos(t)], [W * np.cos(t), 1.0]])
        return -1j * (H @ y)

    sol = scipy.integrate.solve_ivp(rhs, (0, T), np.array([1.0 + 0j, 0.0 + 0j]), t_eval=[T], rtol=1e-10,
                                    atol=1e-12)
    return np.abs(sol.y[1, -1]) ** 2


def two_qubit_state(th):
    """A normalised two-qubit state from three angles (complex amplitudes)."""
    a, b, c = th
    psi = np.array([np.cos(a), np.sin(a) * np.exp(1j * b), 0.5 * np.sin(a) * np.cos(c), np.sin(c) + 0j])
    return psi / np.linalg.norm(psi)


def entanglement_entropy_partial_trace(th):
    """Von Neumann entropy of qubit A: partial trace by np.einsum('ijkj->ik') of the
    reshaped density matrix, eigenvalues clipped away from 0 before the log."""
    psi = two_qubit_state(th)
    rho = np.outer(psi, psi.conj()).reshape(2, 2, 2, 2)
    p = np.clip(np.linalg.eigvalsh(np.einsum("ijkj->ik", rho)), 1e-15, 1.0)
    return -np.sum(p * np.log(p))


def entanglement_entropy_svd(th):
    """The same entropy from the Schmidt coefficients (singular values of the
    2x2 amplitude matrix)."""
    s = np.linalg.svd(two_qubit_state(th).reshape(2, 2), compute_uv=False)
    p = s**2
    return -np.sum(p * np.log(p))


def reduced_purity(th):
    """tr(rho_A^2) with the partial trace by np.trace(axis1=1, axis2=3)."""
    psi = two_qubit_state(th)
    rho_a = np.trace(np.outer(psi, psi.conj()).reshape(2, 2, 2, 2), axis1=1, axis2=3)
    return np.real(np.trace(rho_a @ rho_a))


def smeared_band_energy(t, mu=-0.2, kT=0.1):
    """Open chain with Fermi-Dirac occupations (scipy.special.expit), spin 2."""
    H = np.diag(-t, 1) + np.diag(-t, -1)
    e = np.linalg.eigvalsh(H)
    return 2 * np.sum(scipy.special.expit(-(e - mu) / kT) * e)


def aufbau_energy(eps, nel=3):
    """Fill the nel lowest levels: occupations written through np.argsort."""
    occ = np.zeros_like(eps)
    occ[np.argsort(eps)[:nel]] = 1.0
    return np.sum(occ * eps)


def ideal_gas_lnq_plus_beta_u(p, N=100):
    """ln Q + U / kT of an ideal gas in reduced units (thermal wavelength cubed,
    ln N! by scipy.special.gammaln): the entropy S/k, in log volume and log T."""
    logV, logT = p
    lam3 = np.exp(-1.5 * logT)
    lnQ = N * (logV - np.log(lam3)) - scipy.special.gammaln(N + 1)
    return lnQ + 1.5 * N


def rabi_complex64(p):
    """The Rabi population in single precision: complex64 expm, float32 out."""
    W, d = p
    H = np.stack([np.stack([np.zeros_like(W), W / 2]), np.stack([W / 2, d])])
    U = scipy.linalg.expm(-1j * H.astype(np.complex64) * np.float32(1.3))
    return np.abs(U[1, 0]) ** 2


_KS = np.linspace(-np.pi, np.pi, 16, endpoint=False)


def ssh_band_energy(p):
    """Lower-band energy of the Rice-Mele chain over a k grid: a stack of 2x2
    Bloch Hamiltonians built with np.full for the on-site terms, batched eigvalsh."""
    t1, t2, eps = p
    off = t1 + t2 * np.exp(-1j * _KS)
    Hk = np.stack([np.stack([np.full(_KS.shape, eps + 0j), off], -1),
                   np.stack([np.conj(off), np.full(_KS.shape, -eps + 0j)], -1)], -2)
    return np.linalg.eigvalsh(Hk)[:, 0].mean()


def zak_phase(p):
    """Zak phase of the SSH lower band: gauge-invariant product of neighbouring
    eigenvector overlaps around the Brillouin zone, np.angle of the product."""
    t1, t2 = p
    off = t1 + t2 * np.exp(-1j * _KS)
    Hk = np.stack([np.stack([np.zeros_like(off), off], -1), np.stack([np.conj(off), np.zeros_like(off)], -1)], -2)
    u = np.linalg.eigh(Hk)[1][:, :, 0]
    return -np.angle(np.prod(np.sum(np.conj(u) * np.roll(u, -1, axis=0), axis=1)))


# ---- statistical mechanics -----------------------------------------------------------------


def boltzmann_average(energies, observable, kT):
    """Boltzmann average of an observable over conformer energies with logsumexp."""
    logw = -energies / kT
    logw = logw - logsumexp(logw)
    return np.sum(np.exp(logw) * observable)


def free_energy_perturbation(dU, kT=0.593):
    """Zwanzig: dA = -kT log <exp(-dU / kT)>, with logsumexp and b=1/N."""
    n = dU.shape[0]
    return -kT * logsumexp(-dU / kT, b=1.0 / n)


def rotor_partition(B_over_kT, jmax=60):
    """Rigid-rotor partition function sum_J (2J+1) exp(-B J (J+1) / kT)."""
    J = np.arange(jmax + 1)
    return np.sum((2 * J + 1) * np.exp(-B_over_kT * J * (J + 1)))


def vib_heat_capacity(beta, omegas):
    """Harmonic-oscillator ln Q = sum -ln(2 sinh(beta w / 2)), as a function of
    beta: C/k = beta^2 d^2 lnQ / dbeta^2 computed by the caller."""
    return -np.sum(np.log(2 * np.sinh(0.5 * beta * omegas)))


def arrhenius_fit(lnk, T):
    """Arrhenius parameters (ln A, Ea/R) from ln k = ln A - (Ea/R)/T by np.polyfit."""
    slope, intercept = np.polyfit(1.0 / T, lnk, 1)
    return np.array([intercept, -slope])


def arrhenius_lstsq(lnk, T):
    """The same fit as a least-squares problem with np.linalg.lstsq."""
    A = np.column_stack([np.ones_like(T), -1.0 / T])
    coef, res, rank, sv = np.linalg.lstsq(A, lnk, rcond=None)
    return coef


def eyring_rate(dG, T=np.float32(298.15)):
    """Eyring rate kB T / h exp(-dG / RT) in float32 (kJ/mol)."""
    kB_h = np.float32(2.0837e10)
    R = np.float32(8.314e-3)
    return kB_h * T * np.exp(-dG / (R * T))


# ---- orbitals ------------------------------------------------------------------------------


def hydrogen_radial(r, n=3, l=1):
    """Normalised hydrogen radial function R_nl(r) (atomic units) with
    scipy.special.eval_genlaguerre and factorials."""
    rho = 2.0 * r / n
    norm = np.sqrt((2.0 / n) ** 3 * scipy.special.factorial(n - l - 1) / (2 * n * scipy.special.factorial(n + l)))
    return norm * np.exp(-rho / 2) * rho**l * scipy.special.eval_genlaguerre(n - l - 1, 2 * l + 1, rho)


def gaussian_variational_energy(alpha):
    """Variational energy of exp(-alpha r^2) for hydrogen by radial quadrature
    (np.trapezoid on a grid), kinetic term through the analytic Laplacian."""
    r = np.linspace(1e-6, 12.0, 2000)
    psi = np.exp(-alpha * r**2)
    lap = (4 * alpha**2 * r**2 - 6 * alpha) * psi
    w = 4 * np.pi * r**2
    num = np.trapezoid(w * psi * (-0.5 * lap - psi / r), r)
    den = np.trapezoid(w * psi * psi, r)
    return num / den


def real_sph_harm_density(theta_phi, l=2, m=1):
    """|Y_lm|^2 on the sphere with scipy.special.lpmv and the normalisation by
    factorial ratios."""
    theta, phi = theta_phi
    N = np.sqrt((2 * l + 1) / (4 * np.pi) * scipy.special.factorial(l - m) / scipy.special.factorial(l + m))
    P = scipy.special.lpmv(m, l, np.cos(theta))
    Y = N * P * np.exp(1j * m * phi)
    return np.abs(Y) ** 2


def mulliken_charges(P_flat, S, Z):
    """Mulliken charges q_A = Z_A - (P S)_AA for one basis function per atom."""
    P = P_flat.reshape(S.shape)
    PS = P @ S
    return Z - np.diag(PS)


# =============================================================================================
# tests
# =============================================================================================

rng = np.random.default_rng(20261207)


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_scalar_program(f, x, xs, hess=True, rtol=1e-12):
    """jit (twice), vmap, grad_and_value, jacfwd, jit(grad), grad(jit),
    vmap(grad) and the Hessian of a scalar program."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref, rtol)
    assert_same(jf(xs[0]), f(xs[0]), rtol)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol)
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref, rtol)
    G = fd(f, x)
    assert_deriv(g, G)
    assert_deriv(npfunc.jacfwd(f)(x), G)
    assert_deriv(npfunc.jit(npfunc.grad(f))(x), G)
    assert_deriv(npfunc.grad(npfunc.jit(f))(x), G)
    assert_deriv(npfunc.vmap(npfunc.grad(f))(xs), loop(lambda z: fd(f, z), xs))
    if hess:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, atol=1e-6)
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, atol=1e-6)


def check_array_program(f, x, xs, rtol=1e-12):
    """jit (twice), vmap, jacrev, jacfwd, jit(jacrev), vjp and jvp of an array program."""
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref, rtol)
    assert_same(jf(xs[0]), f(xs[0]), rtol)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol)
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    assert_deriv(npfunc.jit(npfunc.jacrev(f))(x), J)
    out, pullback = npfunc.vjp(f, x)
    assert_same(out, ref, rtol)
    ct = np.linspace(-1.0, 1.0, np.size(ref)).reshape(np.shape(ref))
    assert_deriv(pullback(ct)[0], np.reshape(ct.ravel() @ np.reshape(J, (np.size(ref), -1)), np.shape(x)))
    t = np.linspace(0.5, 1.5, np.size(x)).reshape(np.shape(x))
    out, tan = npfunc.jvp(f, (x,), (t,))
    assert_same(out, ref, rtol)
    assert_deriv(tan, np.reshape(np.reshape(J, (np.size(ref), -1)) @ np.ravel(t), np.shape(ref)))


GRID = np.linspace(-2.0, 2.0, 24)
HARMONIC = 0.5 * GRID**2


def _wells(n=3):
    return HARMONIC + 0.1 * rng.normal(size=(n, GRID.size))


# ---- grid Hamiltonians -----------------------------------------------------------------------


def test_ground_state_energy_vectorised():
    """E0 = min eig of the banded Hamiltonian: dE0/dV_i = |psi_0(i)|^2 (Hellmann-Feynman)."""
    check_scalar_program(ground_state_energy, HARMONIC, _wells())
    w, v = np.linalg.eigh(fd_hamiltonian(HARMONIC))
    assert_deriv(npfunc.grad(ground_state_energy)(HARMONIC), v[:, 0] ** 2)


def test_ground_state_density():
    """|psi_0|^2 does not depend on LAPACK's sign of the eigenvector."""
    check_array_program(ground_state_density, HARMONIC, _wells())


def test_ground_state_vector_sign_is_lapacks():
    """The eigenvector itself under jit and vmap: NumPy's values and signs."""
    H = fd_hamiltonian(HARMONIC)
    Hs = np.stack([fd_hamiltonian(v) for v in _wells()])
    f = lambda H: np.linalg.eigh(H)[1][:, 0]
    assert_same(npfunc.jit(f)(H), f(H))
    assert_same(npfunc.vmap(f)(Hs), loop(f, Hs))
    r = np.linalg.eigh(H)
    j = npfunc.jit(np.linalg.eigh)(H)
    assert type(j) is type(r)
    assert_same(j.eigenvalues, r.eigenvalues)


def test_eigh_namedtuple_vmap_out_dims_tuple():
    """out_dims=(0, 2) for eigh's EighResult (a named tuple): eigenvectors stacked
    on the last axis, the result still an EighResult (a plain tuple was refused)."""
    Hs = np.stack([fd_hamiltonian(v) for v in _wells()])
    r = npfunc.vmap(np.linalg.eigh, out_dims=(0, 2))(Hs)
    assert type(r) is type(np.linalg.eigh(Hs[0]))
    assert_same(r.eigenvalues, loop(np.linalg.eigvalsh, Hs))
    assert_same(r.eigenvectors, np.stack([np.linalg.eigh(H)[1] for H in Hs], axis=2))


def test_grid_hamiltonian_plain_buffer_matches_like_fix():
    """H = np.zeros((n, n)); H[i, i] = ... + V[i] (once refused, naming like=) now takes the
    traced writes: the plain program matches NumPy and differences under every transform,
    and the like= fix it used to need gives the same values and derivatives."""
    wells3, wells2 = _wells(), _wells(2)
    check_scalar_program(ground_state_energy_loop, HARMONIC, wells3, hess=False)

    def hamiltonian_like(V, dx=0.1):
        n = len(V)
        H = np.zeros((n, n), like=V)
        for i in range(n):
            H[i, i] = 1.0 / dx**2 + V[i]
            if i > 0:
                H[i, i - 1] = -0.5 / dx**2
            if i < n - 1:
                H[i, i + 1] = -0.5 / dx**2
        return H

    f = lambda V: np.linalg.eigh(hamiltonian_like(V))[0][0]
    assert_same(f(HARMONIC), ground_state_energy_loop(HARMONIC))
    check_scalar_program(f, HARMONIC, wells2, hess=False)
    assert_deriv(npfunc.grad(ground_state_energy_loop)(HARMONIC), npfunc.grad(f)(HARMONIC), rtol=1e-12, atol=0)
    assert_same(npfunc.vmap(ground_state_energy_loop)(wells2), npfunc.vmap(f)(wells2))


def test_anharmonic_levels_eigh_tridiagonal_select():
    p = np.array([0.5, 0.1])
    check_array_program(anharmonic_levels, p, p + 0.05 * rng.normal(size=(3, 2)))


def test_excitation_gap_scipy_eigh_eigvals_only():
    p = np.array([0.5, 0.1])
    check_scalar_program(excitation_gap, p, p + 0.05 * rng.normal(size=(3, 2)))


def test_numerov_shooting_plain_buffer_matches_zeros_like_fix():
    """psi = np.zeros(n); psi[i + 1] = ...: a Python-float energy is static under
    jit (two energies, two recordings); a traced energy (once refused, naming
    np.zeros_like(x, shape=shape)) is written into the plain buffer: grad and vmap
    match differences and a loop, and the zeros_like fix agrees."""
    jf = npfunc.jit(numerov_shoot)
    assert_same(jf(0.55), numerov_shoot(0.55))
    assert_same(jf(0.6), numerov_shoot(0.6))
    jt = npfunc.jit(numerov_shoot)  # a traced energy (a NumPy scalar), recorded then replayed
    for E in (np.float64(0.55), np.float64(0.6), np.float64(0.45)):
        assert_same(jt(E), numerov_shoot(E))
    g_plain = npfunc.grad(numerov_shoot)(0.55)
    assert_deriv(g_plain, fd(numerov_shoot, 0.55), rtol=1e-6)

    def shoot_fixed(E, n=200, L=6.0):
        x = np.linspace(-L / 2, L / 2, n)
        h = x[1] - x[0]
        k2 = 2.0 * (E - 0.5 * x**2)
        psi = np.zeros_like(E, shape=(n,))
        psi[1] = 1e-4
        for i in range(1, n - 1):
            c0 = 1.0 + h * h * k2[i - 1] / 12.0
            c1 = 2.0 * (1.0 - 5.0 * h * h * k2[i] / 12.0)
            c2 = 1.0 + h * h * k2[i + 1] / 12.0
            psi[i + 1] = (c1 * psi[i] - c0 * psi[i - 1]) / c2
        return psi[-1]

    assert_same(shoot_fixed(0.55), numerov_shoot(0.55))
    assert_deriv(npfunc.grad(shoot_fixed)(0.55), fd(numerov_shoot, 0.55), rtol=1e-6)
    assert_deriv(g_plain, npfunc.grad(shoot_fixed)(0.55), rtol=1e-12, atol=0)
    Es = np.array([0.45, 0.5, 0.55])
    assert_same(npfunc.vmap(shoot_fixed)(Es), loop(numerov_shoot, Es))
    assert_same(npfunc.vmap(numerov_shoot)(Es), loop(numerov_shoot, Es))


# ---- tight binding, Huckel, spin chains --------------------------------------------------------


def test_tight_binding_plain_buffer_matches_like_fix():
    """H = np.zeros((n, n)); H[idx, (idx + 1) % n] = -t (once refused, naming like=):
    the plain program under every transform, and the like= fix agrees."""
    t = np.array([1.0, 0.8, 1.0, 0.8, 1.0, 0.8]) + 0.05 * rng.normal(size=6)
    ts = t + 0.05 * rng.normal(size=(3, 6))
    check_scalar_program(tight_binding_band_energy, t, ts)

    def band_energy(t, n_elec=4):
        n = t.shape[0]
        H = np.zeros((n, n), like=t)
        idx = np.arange(n)
        H[idx, (idx + 1) % n] = -t
        H[(idx + 1) % n, idx] = -t
        return 2.0 * np.sum(np.linalg.eigvalsh(H)[: n_elec // 2])

    assert_same(band_energy(t), tight_binding_band_energy(t))
    check_scalar_program(band_energy, t, ts)
    assert_deriv(npfunc.grad(tight_binding_band_energy)(t), npfunc.grad(band_energy)(t), rtol=1e-12, atol=0)
    # a closed shell of the degenerate SSH ring: the filled pair is a symmetric function, exact
    t0 = np.array([1.0, 0.8, 1.0, 0.8, 1.0, 0.8])
    closed = lambda t: band_energy(t, n_elec=6)
    assert_deriv(npfunc.grad(closed)(t0), fd(closed, t0))


def test_huckel_pi_energy():
    adj = np.zeros((6, 6))
    for i in range(6):
        adj[i, (i + 1) % 6] = adj[(i + 1) % 6, i] = 1.0
    adj[0, 3] = adj[3, 0] = 1.0
    f = lambda ab: huckel_pi_energy(ab, adj)
    check_scalar_program(f, np.array([0.0, -1.0]), rng.normal(size=(3, 2)))


def test_heisenberg_chain_plain_inplace_sum_matches_like_fix():
    """H = np.zeros(..., complex); H += J[i] * ... (once refused, naming x += y and the
    fixes) now takes the traced sums: the plain program matches NumPy and differences,
    and the like= buffer gives the same eigvalsh derivative."""
    J = np.array([1.0, 0.9, 1.1])
    Js = J + 0.1 * rng.normal(size=(2, 3))
    plain = lambda J: heisenberg_chain(J, 0.2)
    check_scalar_program(plain, J, Js, hess=False)

    def chain(J, h=0.2, nsite=4):
        def site_op(op, i):
            out = np.array([[1.0 + 0j]])
            for k in range(nsite):
                out = np.kron(out, op if k == i else np.eye(2))
            return out

        H = np.zeros((2**nsite, 2**nsite), dtype=complex, like=J)
        for i in range(nsite - 1):
            for s in (SX, SY, SZ):
                H += 0.25 * J[i] * site_op(s, i) @ site_op(s, i + 1)
        for i in range(nsite):
            H += 0.5 * h * site_op(SZ, i)
        return np.linalg.eigvalsh(H)[0]

    assert_same(chain(J), heisenberg_chain(J, 0.2))
    check_scalar_program(chain, J, Js, hess=False)
    assert_deriv(npfunc.grad(plain)(J), npfunc.grad(chain)(J), rtol=1e-12, atol=0)


# ---- time evolution ----------------------------------------------------------------------------


def test_rabi_population_expm_complex():
    check_scalar_program(rabi_population, np.array([1.0, 0.3]), rng.normal(size=(3, 2)))


def test_gate_fidelity_vdot():
    c = rng.normal(size=8)
    check_scalar_program(gate_fidelity, c, rng.normal(size=(3, 8)), hess=False)


def test_eigen_propagation_expectation():
    V = 0.5 * (np.arange(20) * 0.2 - 2) ** 2
    f = lambda V: eigen_propagate(V, 0.7)
    check_scalar_program(f, V, V + 0.1 * rng.normal(size=(3, 20)), hess=False)
    g = lambda t: eigen_propagate(V, t)
    check_scalar_program(g, 0.7, np.array([0.1, 0.5, 0.9]))


def test_split_operator_fft_step():
    n = 32
    x = 0.1 * np.arange(n)
    psi = np.exp(-((x - 1.5) ** 2))
    z = np.concatenate([psi, 0.1 * psi])
    V = 0.5 * (x - 1.6) ** 2
    f = lambda z: split_operator_step(z, V)
    check_array_program(f, z, z + 0.05 * rng.normal(size=(3, 2 * n)))


def test_rayleigh_quotient_complex_gradient():
    """grad of a real function of a complex state is d/dRe + i d/dIm (docs/complex.md)."""
    H = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    H = H + H.conj().T

    def rayleigh(psi):
        return np.real(np.vdot(psi, H @ psi) / np.vdot(psi, psi))

    psi = rng.normal(size=4) + 1j * rng.normal(size=4)
    G = fd(lambda z: rayleigh(z[:4] + 1j * z[4:]), np.concatenate([psi.real, psi.imag]))
    assert_deriv(npfunc.grad(rayleigh)(psi), G[:4] + 1j * G[4:])
    assert_same(npfunc.jit(rayleigh)(psi), rayleigh(psi))


# ---- density matrices ----------------------------------------------------------------------------


def _states():
    st = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    return st / np.linalg.norm(st, axis=1, keepdims=True)


def test_mixed_state_plain_accumulation_matches_like_fix():
    """rho = np.zeros(..., complex); rho += p_k |psi_k><psi_k| (once refused, naming
    x += y): the plain program's purity and entropy match NumPy and differences, and
    the like= buffer agrees."""
    st = _states()
    w = np.array([0.1, -0.3, 0.5])
    ws = rng.normal(size=(3, 3))
    plain_purity = lambda w: mixed_state_purity(w, st)[0]
    plain_entropy = lambda w: mixed_state_purity(w, st)[1]
    g, v = npfunc.grad_and_value(plain_purity)(w)
    assert_same(v, plain_purity(w))
    assert_deriv(g, fd(plain_purity, w))
    assert_deriv(npfunc.jacfwd(plain_purity)(w), fd(plain_purity, w))
    assert_deriv(npfunc.hessian(plain_purity)(w), fd(npfunc.grad(plain_purity), w), atol=1e-6)
    assert_deriv(npfunc.grad(plain_entropy)(w), fd(plain_entropy, w))

    def plain_density(w):  # the buffer of mixed_state_purity, without its masked entropy
        p = np.exp(w - w.max())
        p /= p.sum()
        rho = np.zeros((4, 4), dtype=complex)
        for pk, psi in zip(p, st):
            rho += pk * np.outer(psi, np.conj(psi))
        return rho

    check_scalar_program(lambda w: np.trace(plain_density(w) @ plain_density(w)).real, w, ws)

    def density(w):
        p = np.exp(w - w.max())
        p /= p.sum()
        rho = np.zeros((4, 4), dtype=complex, like=w)
        for pk, psi in zip(p, st):
            rho += pk * np.outer(psi, np.conj(psi))
        return rho

    purity = lambda w: np.trace(density(w) @ density(w)).real

    def entropy(w):
        lam = np.linalg.eigvalsh(density(w))
        lam = lam[lam > 1e-12]
        return -np.sum(lam * np.log(lam))

    assert_same(purity(w), mixed_state_purity(w, st)[0])
    assert_same(entropy(w), mixed_state_purity(w, st)[1])
    check_scalar_program(purity, w, ws)
    assert_deriv(npfunc.grad(plain_purity)(w), npfunc.grad(purity)(w), rtol=1e-12, atol=1e-15)
    assert_deriv(npfunc.grad(plain_entropy)(w), npfunc.grad(entropy)(w), rtol=1e-12, atol=1e-15)
    # the entropy drops the zero eigenvalue by a boolean mask: grad works, vmap/jit refuse
    assert_deriv(npfunc.grad(entropy)(w), fd(entropy, w))
    with pytest.raises(npfunc.errors.DataDependentShapeError, match=r"vmap\(f\).*np.where"):
        npfunc.vmap(entropy)(rng.normal(size=(3, 3)))


def test_thermal_energy_expm():
    H = np.array([[0.0, 0.3], [0.3, 1.0]])
    f = lambda b: thermal_energy(b, H)
    check_scalar_program(f, 1.2, np.array([0.5, 1.0, 2.0]))
    Hc = np.array([[0.0, 0.3 + 0.2j], [0.3 - 0.2j, 1.0]])
    g = lambda b: thermal_energy(b, Hc)  # complex128 NumPy scalar out
    bs = np.array([0.5, 1.2])
    assert_same(npfunc.jit(g)(np.float64(1.2)), g(np.float64(1.2)))
    assert_same(npfunc.vmap(g)(bs), loop(g, bs))
    out, tan = npfunc.jvp(g, (1.2,), (1.0,))
    assert_same(out, g(1.2))
    np.testing.assert_allclose(tan, (g(1.2 + 1e-6) - g(1.2 - 1e-6)) / 2e-6, rtol=1e-6)


# ---- mean field and Hartree-Fock ------------------------------------------------------------------


def test_hubbard_scf_loop():
    """A converged-by-tolerance SCF loop: Python floats are static under jit; grad
    follows the iterations actually run; vmap and a traced U under jit refuse
    the data-dependent break and name np.where / static arguments."""
    jf = npfunc.jit(hubbard_scf)
    assert_same(jf(2.0), hubbard_scf(2.0))
    assert_same(jf(3.0), hubbard_scf(3.0))
    assert_deriv(npfunc.grad(hubbard_scf)(2.0), fd(hubbard_scf, 2.0), rtol=1e-6)
    assert_deriv(npfunc.jacfwd(hubbard_scf)(2.0), fd(hubbard_scf, 2.0), rtol=1e-6)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*static_argnums"):
        jf(np.float64(2.0))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np.where"):
        npfunc.vmap(hubbard_scf)(np.array([1.0, 2.0]))


def test_h2_sto3g_plain_loop_buffers_grad_matches_differences():
    """Integrals accumulated into np.zeros buffers (S[i, j] += ..., once refused under
    grad, naming like=) now take the traced sums: the force matches five-point
    differences of the plain program and the vectorised program's gradient."""
    g = npfunc.grad(h2_sto3g_energy)(1.4)
    assert_deriv(g, fd(h2_sto3g_energy, 1.4))
    assert_deriv(g, npfunc.grad(h2_sto3g_vectorised)(1.4), rtol=1e-9)  # (25 fixed SCF iterations there)
    assert_same(h2_sto3g_vectorised(1.4), h2_sto3g_energy(1.4), rtol=1e-13)


def test_h2_sto3g_vectorised_generalized_eigh():
    """Roothaan equations with scipy.linalg.eigh(F, S): the force -dE/dR, the
    force constant d2E/dR2 (harmonic frequency), jit and vmap over bond lengths."""
    R = np.float64(1.4)
    Rs = np.array([1.2, 1.4, 1.6])
    assert_same(npfunc.jit(h2_sto3g_vectorised)(R), h2_sto3g_vectorised(R))
    assert_same(npfunc.vmap(h2_sto3g_vectorised)(Rs), loop(h2_sto3g_vectorised, Rs))
    dE = fd(h2_sto3g_vectorised, R)
    g, v = npfunc.grad_and_value(h2_sto3g_vectorised)(R)
    assert_same(v, h2_sto3g_vectorised(R))
    assert_deriv(g, dE, rtol=1e-6)
    assert_deriv(npfunc.jit(npfunc.grad(h2_sto3g_vectorised))(R), dE, rtol=1e-6)
    short = lambda R: h2_sto3g_vectorised(R, maxiter=3)  # the minimal-basis MO is fixed by symmetry
    k = npfunc.hessian(short)(R)
    assert_deriv(k, fd(npfunc.grad(short), R), rtol=1e-6)
    omega = np.sqrt(k / (1836.15 / 2))  # hartree; STO-3G H2 is about 5480 cm-1 at 1.4 bohr
    assert 5000 < omega * 219474.63 < 6000


def test_generalized_eigh_values_vectors_and_derivatives():
    """scipy.linalg.eigh(a, b) on traced values: SciPy's values and signs (to rounding),
    derivatives in a and b, float32, complex, lower=False and eigvals_only."""
    A = rng.normal(size=(4, 4))
    A = A + A.T
    Bm = rng.normal(size=(4, 4))
    B = Bm @ Bm.T + 4 * np.eye(4)
    vecs = lambda B: scipy.linalg.eigh(A, B)[1]
    vals = lambda A: scipy.linalg.eigh(A, B, eigvals_only=True)
    assert_same(npfunc.jit(vecs)(B), vecs(B), rtol=1e-12, atol=1e-14)
    assert_same(npfunc.jit(vals)(A), vals(A), rtol=1e-12, atol=1e-14)
    assert_deriv(npfunc.jacrev(vecs)(B), fd(vecs, B), atol=1e-7)
    assert_deriv(npfunc.jacfwd(vals)(A), fd(vals, A), atol=1e-7)
    Bs = np.stack([B, B + np.eye(4)])
    assert_same(npfunc.vmap(vecs)(Bs), loop(vecs, Bs), rtol=1e-12, atol=1e-14)
    up = lambda A: scipy.linalg.eigh(np.triu(A), np.triu(B), lower=False)[1]
    assert_same(npfunc.jit(up)(A), up(A), rtol=1e-12, atol=1e-14)
    f32 = lambda A: scipy.linalg.eigh(A, B.astype(np.float32))[1]
    assert_same(npfunc.jit(f32)(A.astype(np.float32)), f32(A.astype(np.float32)), rtol=1e-5, atol=1e-6)
    Ac = A + 0.5j * (np.triu(A, 1) - np.tril(A, -1))
    Bc = B + 0.3j * (np.triu(np.ones((4, 4)), 1) - np.tril(np.ones((4, 4)), -1))
    cv = lambda Ac: scipy.linalg.eigh(Ac, Bc)
    assert_same(npfunc.jit(cv)(Ac)[1], cv(Ac)[1], rtol=1e-12, atol=1e-14)
    with pytest.raises(np.linalg.LinAlgError):
        npfunc.grad(lambda A: scipy.linalg.eigh(A, -B)[0][0])(A)


def test_eigh_subset_refusal_names_transform_and_fix():
    A = rng.normal(size=(4, 4))
    A = A + A.T
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"grad\(f\).*subset_by_index.*w\[lo:hi \+ 1\]"):
        npfunc.grad(lambda A: scipy.linalg.eigh(A, subset_by_index=(0, 1))[0].sum())(A)
    f = lambda A: scipy.linalg.eigh(A)[0][0:2].sum()
    assert_same(f(A), scipy.linalg.eigh(A, subset_by_index=(0, 1))[0].sum())
    assert_deriv(npfunc.grad(f)(A), fd(f, A))


# ---- force fields ----------------------------------------------------------------------------------


CLUSTER = np.array([[0, 0, 0], [1.1, 0, 0], [0, 1.1, 0], [0.6, 0.6, 0.9]], dtype=float).ravel()


def _clusters(n=3):
    return CLUSTER + 0.05 * rng.normal(size=(n, CLUSTER.size))


def test_lj_energy_triu_indices():
    check_scalar_program(lj_energy, CLUSTER, _clusters())


def test_lj_energy_double_loop():
    check_scalar_program(lj_energy_loops, CLUSTER, _clusters())
    assert_same(npfunc.jit(lj_energy_loops)(CLUSTER), lj_energy(CLUSTER), rtol=1e-13)


def test_lj_forces_are_minus_grad():
    """Hand-written forces (F[i] += f into np.zeros_like) against -grad of the energy."""
    check_array_program(lj_forces_analytic, CLUSTER, _clusters(), rtol=1e-11)
    assert_deriv(lj_forces_analytic(CLUSTER), -npfunc.grad(lj_energy)(CLUSTER))
    assert_deriv(npfunc.jacrev(lj_forces_analytic)(CLUSTER), -npfunc.hessian(lj_energy)(CLUSTER))


def test_lj_float32_dtypes():
    X = CLUSTER.astype(np.float32)
    ref = lj_energy(X)
    assert_same(npfunc.jit(lj_energy)(X), ref, rtol=1e-6)
    g, v = npfunc.grad_and_value(lj_energy_loops)(X)
    assert g.dtype == np.float32
    assert_same(v, lj_energy_loops(X), rtol=1e-6)
    assert npfunc.jacrev(lj_forces_analytic)(X).dtype == np.float32
    assert_same(npfunc.jit(lj_cutoff_pbc)(X), lj_cutoff_pbc(X), rtol=1e-6)


def test_lj_periodic_minimum_image_cutoff():
    check_scalar_program(lj_cutoff_pbc, CLUSTER, _clusters())


def test_morse_chain_vibrational_frequencies():
    """Normal modes of a Morse chain at its minimum: the mass-weighted Hessian's
    eigenvalues (one zero translation), and their derivatives in the masses."""
    x0 = np.arange(4) * 0.74
    check_scalar_program(morse_chain, x0 + 0.05, x0 + 0.05 * rng.normal(size=(3, 4)))
    K = npfunc.hessian(morse_chain)(x0)
    np.testing.assert_allclose(K, fd(npfunc.grad(morse_chain), x0), rtol=1e-6, atol=1e-6)

    def omega2(m):
        w = 1.0 / np.sqrt(m)
        return np.linalg.eigvalsh(w[:, None] * K * w[None, :])[1:]

    m = np.array([1.0, 12.0, 12.0, 1.0])
    check_array_program(omega2, m, m + rng.uniform(0, 1, size=(3, 4)), rtol=1e-10)


def test_bonded_energy_angles_dihedral():
    xb = np.array([[0, 0, 0], [1, 0, 0], [1.3, 0.95, 0], [2.3, 1.0, 0.4]], dtype=float).ravel()
    check_scalar_program(bonded_energy, xb, xb + 0.05 * rng.normal(size=(3, 12)))


def test_coulomb_matrix_plain_buffer_matches_like_fix():
    """M = np.empty((n, n)); M[i, j] = ... (once refused under jacrev, naming like=):
    the plain program under every transform, and the like= fix agrees."""
    Z = np.array([6.0, 1.0, 1.0, 8.0])
    f = lambda x: coulomb_matrix_eigs(x, Z)
    clusters = _clusters()
    check_array_program(f, CLUSTER, clusters, rtol=1e-11)

    def cm(x_flat):
        X = x_flat.reshape(-1, 3)
        n = len(Z)
        M = np.empty((n, n), like=x_flat)
        for i in range(n):
            for j in range(n):
                if i == j:
                    M[i, j] = 0.5 * Z[i] ** 2.4
                else:
                    M[i, j] = Z[i] * Z[j] / np.linalg.norm(X[i] - X[j])
        return np.sort(np.linalg.eigvalsh(M))[::-1]

    assert_same(cm(CLUSTER), f(CLUSTER))
    check_array_program(cm, CLUSTER, clusters, rtol=1e-11)
    assert_deriv(npfunc.jacrev(f)(CLUSTER), npfunc.jacrev(cm)(CLUSTER), rtol=1e-12, atol=1e-15)


def test_damped_coulomb_pdist_erfc():
    q = np.array([1.0, -1.0, 0.5, -0.5])
    check_scalar_program(lambda x: damped_coulomb(x, q), CLUSTER, _clusters())


def test_dipole_centering_in_place():
    """X -= centre inside the function: the caller's array is updated as by NumPy."""
    q = np.array([1.0, -1.0, 0.5, -0.5])
    X0 = CLUSTER.reshape(4, 3)
    a, b = X0.copy(), X0.copy()
    assert_same(npfunc.jit(dipole_moment_inplace)(b, q), dipole_moment_inplace(a, q))
    np.testing.assert_array_equal(b, a)
    Xs = _clusters().reshape(3, 4, 3)
    a, b = Xs.copy(), Xs.copy()
    ref = np.stack([dipole_moment_inplace(x, q) for x in a])
    assert_same(npfunc.vmap(dipole_moment_inplace, in_dims=(0, None))(b, q), ref)
    np.testing.assert_array_equal(b, a)
    f = lambda x: dipole_moment_inplace(x.reshape(4, 3), q)
    a, b = CLUSTER.copy(), CLUSTER.copy()
    J = npfunc.jacrev(f)(b)
    f(a)
    np.testing.assert_array_equal(b, a)
    assert_deriv(J, fd(lambda x: f(x.copy()), CLUSTER))


def test_centering_returns_a_view_of_the_argument():
    def center(x_flat):
        X = x_flat.reshape(-1, 3)
        X -= X.mean(axis=0)
        return X

    a, b = CLUSTER.copy(), CLUSTER.copy()
    r, j = center(a), npfunc.jit(center)(b)
    assert_same(j, r)
    np.testing.assert_array_equal(b, a)
    assert np.shares_memory(j, b)


def test_velocity_verlet_plain_trajectory_buffer_matches_zeros_like_fix():
    """traj = np.empty(n); traj[k + 1] = x (once refused, naming the scalar fix
    np.zeros_like(x, shape=...)) runs plain and under every transform, and agrees
    with that fix."""
    f = lambda x0: velocity_verlet(x0, 0.0)
    check_array_program(f, np.float64(0.9), np.array([0.8, 0.9, 1.0]))
    assert_deriv(npfunc.jacrev(f)(0.9), fd(f, 0.9))  # a Python float

    def verlet(x0, nsteps=20, dt=0.01):
        De, a, re = 4.7, 1.9, 0.74
        traj = np.zeros_like(x0, shape=(nsteps + 1,))
        x, v = x0, 0.0
        traj[0] = x
        f = -2 * De * a * np.exp(-a * (x - re)) * (1 - np.exp(-a * (x - re)))
        for k in range(nsteps):
            v = v + 0.5 * dt * f
            x = x + dt * v
            f = -2 * De * a * np.exp(-a * (x - re)) * (1 - np.exp(-a * (x - re)))
            v = v + 0.5 * dt * f
            traj[k + 1] = x
        return traj

    assert_same(verlet(0.9), f(0.9))
    check_array_program(verlet, np.float64(0.9), np.array([0.8, 0.9, 1.0]))
    assert_deriv(npfunc.jacrev(f)(0.9), npfunc.jacrev(verlet)(0.9), rtol=1e-12, atol=0)


def test_lj_full_matrix_fill_diagonal_inf():
    """np.fill_diagonal(r, inf) over norms of zero vectors: no NaN in any derivative."""
    check_scalar_program(lj_full_matrix, CLUSTER, _clusters())
    assert_same(lj_full_matrix(CLUSTER), lj_energy(CLUSTER), rtol=1e-13)


def test_fill_diagonal_into_plain_matrix_refused_with_working_fixes():
    """np.fill_diagonal(H_plain, traced) used to advise np.stack; it names the buffer
    and the functional form, and both work."""
    V = HARMONIC[:12]
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"grad\(f\).*np.fill_diagonal\(a, v\) writes"):
        npfunc.grad(lambda V: grid_levels_fill_diagonal(V)[0])(V)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*like=v"):
        npfunc.vmap(grid_levels_fill_diagonal)(np.stack([V, V]))

    def levels_like(V, dx=0.1):
        n = V.shape[0]
        H = np.zeros((n, n), like=V) - 0.5 * (np.eye(n, k=1) + np.eye(n, k=-1)) / dx**2
        np.fill_diagonal(H, 1.0 / dx**2 + V)
        return np.linalg.eigvalsh(H)[:3]

    def levels_functional(V, dx=0.1):
        n = V.shape[0]
        H = -0.5 * (np.eye(n, k=1) + np.eye(n, k=-1)) / dx**2
        H = H + np.diag(1.0 / dx**2 + V - np.diag(H))
        return np.linalg.eigvalsh(H)[:3]

    Vs = V + 0.1 * rng.normal(size=(3, 12))
    for f in (levels_like, levels_functional):
        assert_same(f(V), grid_levels_fill_diagonal(V))
        check_array_program(f, V, Vs, rtol=1e-11)


def test_brentq_root_is_a_python_float_under_jit():
    """SciPy's brentq returns a Python float; under jit with nothing traced the
    solver runs as written (it returned np.float64)."""
    f = npfunc.jit(morse_bond_length)
    assert_same(f(4.7), morse_bond_length(4.7))
    assert_same(f(3.0), morse_bond_length(3.0))
    # traced: the root carries its derivative (implicit function theorem), a NumPy scalar
    a, re, k, De = 1.9, 0.74, 0.2, 4.7
    r = morse_bond_length(De)
    e = np.exp(-a * (r - re))
    drdDe = -(2 * a * e * (1 - e)) / (2 * De * a * a * (2 * e * e - e) + k)
    g, v = npfunc.grad_and_value(morse_bond_length)(np.float64(De))
    np.testing.assert_allclose(g, drdDe, rtol=1e-9)
    assert v == r
    Des = np.array([3.0, 4.7, 6.0])
    assert_same(npfunc.vmap(morse_bond_length)(Des), np.array([morse_bond_length(d) for d in Des]), rtol=1e-12)


def test_minimize_scalar_equilibrium_derivative():
    """The minimiser's derivative in De against the implicit-function value
    (five-point differences of a 1e-8-accurate minimiser are noisier than that)."""
    a, re, De = 1.9, 0.74, 4.7
    r = morse_minimum(De)
    e = np.exp(-a * (r - re))
    drdDe = -(2 * a * e * (1 - e)) / (2 * De * a * a * (2 * e * e - e) + 0.2)
    np.testing.assert_allclose(npfunc.grad(morse_minimum)(De), drdDe, rtol=1e-9)
    assert_same(npfunc.jit(morse_minimum)(np.float64(De)), morse_minimum(np.float64(De)))


def test_density_of_states_resolvent():
    check_scalar_program(density_of_states, 0.3, np.linspace(-1.0, 1.0, 5))


def test_cap_resonance_complex_eigvals():
    p = np.array([1.0, 0.5])
    check_array_program(cap_resonance, p, p + 0.01 * rng.normal(size=(3, 2)), rtol=1e-10)


def test_gaussian_normalisation_quad():
    exact = lambda a: (2 * a / np.pi) ** 0.75
    np.testing.assert_allclose(gaussian_norm_quad(0.7), exact(0.7), rtol=1e-10)
    assert_same(npfunc.jit(gaussian_norm_quad)(np.float64(0.7)), gaussian_norm_quad(np.float64(0.7)))
    a = np.array([0.5, 0.7])
    assert_same(npfunc.vmap(gaussian_norm_quad)(a), loop(gaussian_norm_quad, a), rtol=1e-10)
    assert_deriv(npfunc.grad(gaussian_norm_quad)(0.7), fd(exact, 0.7), rtol=1e-7)


def test_driven_two_level_complex_solve_ivp_refused_with_working_fix():
    """A complex y0 refuses under every transform, naming the real system of twice
    the size; that fix runs under grad, jit and vmap (one vectorised solve: the
    batch agrees with the loop to the solver's tolerance)."""
    for transform in (npfunc.grad, npfunc.jit):
        with pytest.raises(npfunc.errors.NpfuncError, match=r"(grad|jit)\(f\).*complex y0.*twice the size"):
            transform(driven_two_level)(np.float64(0.5))

    def driven_real(W, T=2.0):
        def rhs(t, z):
            y = z[:2] + 1j * z[2:]
            H = np.array([[0.0, W * np.cos(t)], [W * np.cos(t), 1.0]])
            dy = -1j * (H @ y)
            return np.concatenate([dy.real, dy.imag])

        sol = scipy.integrate.solve_ivp(rhs, (0, T), np.array([1.0, 0.0, 0.0, 0.0]), t_eval=[T], rtol=1e-10,
                                        atol=1e-12)
        return sol.y[1, -1] ** 2 + sol.y[3, -1] ** 2

    W = np.float64(0.5)
    np.testing.assert_allclose(driven_real(W), driven_two_level(W), rtol=1e-8)
    assert_same(npfunc.jit(driven_real)(W), driven_real(W))
    assert_deriv(npfunc.grad(driven_real)(W), fd(driven_real, W), rtol=1e-6)
    Ws = np.array([0.3, 0.5])
    assert_same(npfunc.vmap(driven_real)(Ws), loop(driven_real, Ws), rtol=1e-9)


def test_hellmann_feynman_custom_vjp_keeps_numpy_scalar():
    """A custom_vjp ground-state energy (dE0/dV = |psi_0|^2, the Hellmann-Feynman
    rule) returns the NumPy scalar the function returns (it gave a 0-d array:
    np.float64 is a Python float, which the call turned into an array)."""

    @npfunc.custom_vjp
    def e0(V):
        return ground_state_energy(V)

    def e0_fwd(V):
        n = V.shape[0]
        off = -50.0 * np.ones(n - 1)
        w, v = np.linalg.eigh(np.diag(100.0 + V) + np.diag(off, 1) + np.diag(off, -1))
        return w[0], v[:, 0] ** 2

    e0.defvjp(e0_fwd, lambda density, g: (g * density,))
    V = HARMONIC
    assert_same(e0(V), ground_state_energy(V))
    assert_same(npfunc.jit(e0)(V), ground_state_energy(V))
    g, v = npfunc.grad_and_value(e0)(V)
    assert_same(v, ground_state_energy(V))
    assert_deriv(g, fd(ground_state_energy, V))
    Vs = _wells(2)
    assert_same(npfunc.vmap(e0)(Vs), loop(ground_state_energy, Vs))
    assert_deriv(npfunc.vmap(npfunc.grad(e0))(Vs), loop(lambda z: fd(ground_state_energy, z), Vs))
    ck = lambda V: npfunc.checkpoint(ground_state_energy)(V)
    assert_same(ck(V), ground_state_energy(V))
    assert_same(npfunc.grad_and_value(ck)(V)[1], ground_state_energy(V))


_ANGLES = np.array([0.4, 0.3, 0.7])


def test_entanglement_entropy_partial_trace_and_schmidt():
    ths = _ANGLES + 0.1 * rng.normal(size=(3, 3))
    check_scalar_program(entanglement_entropy_partial_trace, _ANGLES, ths)
    check_scalar_program(entanglement_entropy_svd, _ANGLES, ths)
    check_scalar_program(reduced_purity, _ANGLES, ths)
    np.testing.assert_allclose(entanglement_entropy_svd(_ANGLES), entanglement_entropy_partial_trace(_ANGLES),
                               rtol=1e-12)


def test_fermi_smeared_band_energy():
    t = np.array([1.0, 0.9, 1.1, 0.95, 1.05])
    check_scalar_program(smeared_band_energy, t, t + 0.05 * rng.normal(size=(3, 5)))


def test_aufbau_argsort_occupations():
    e = np.array([0.3, -0.5, 0.1, 0.8, -0.2])
    check_scalar_program(aufbau_energy, e, e + 0.01 * rng.normal(size=(3, 5)), hess=False)


def test_ideal_gas_entropy_gammaln():
    check_scalar_program(ideal_gas_lnq_plus_beta_u, np.array([2.0, 1.0]), rng.normal(size=(3, 2)))


def test_rabi_complex64_float32_out():
    p = np.array([1.0, 0.3], np.float32)
    ref = rabi_complex64(p)
    assert type(ref) is np.float32
    assert_same(npfunc.jit(rabi_complex64)(p), ref, rtol=1e-6)
    g, v = npfunc.grad_and_value(rabi_complex64)(p)
    assert g.dtype == np.float32
    assert_same(v, ref, rtol=1e-6)
    assert_deriv(g, fd(rabi_population, p.astype(float)), rtol=1e-4, atol=1e-5)  # the float64 program's
    ps = np.stack([p, 1.1 * p])
    assert_same(npfunc.vmap(rabi_complex64)(ps), loop(rabi_complex64, ps), rtol=1e-6)


def test_band_energy_plain_np_full_matches_like_fix():
    """np.full(shape, traced) (once refused, naming the fixes) now fills with the traced
    value: the plain program under every transform matches NumPy and differences, a
    batched fill value gives a loop's rows, and the like= fix agrees."""
    p = np.array([1.0, 0.6, 0.2])
    ps = p + 0.05 * rng.normal(size=(3, 3))
    check_scalar_program(ssh_band_energy, p, ps)
    fill = lambda p: np.full(3, p[0], dtype=complex)
    P = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert_same(npfunc.vmap(fill)(P), loop(fill, P))

    def band_energy(p):
        t1, t2, eps = p
        off = t1 + t2 * np.exp(-1j * _KS)
        Hk = np.stack([np.stack([(eps + 0j) * np.ones(_KS.shape), off], -1),
                       np.stack([np.conj(off), np.full(_KS.shape, -eps + 0j, like=p)], -1)], -2)
        return np.linalg.eigvalsh(Hk)[:, 0].mean()

    assert_same(band_energy(p), ssh_band_energy(p))
    check_scalar_program(band_energy, p, ps)
    assert_deriv(npfunc.grad(ssh_band_energy)(p), npfunc.grad(band_energy)(p), rtol=1e-12, atol=1e-15)


def test_zak_phase_quantised():
    """pi in the topological phase (t2 > t1), 0 in the trivial one; its derivative 0."""
    topo, trivial = np.array([0.5, 1.0]), np.array([1.0, 0.5])
    np.testing.assert_allclose(abs(zak_phase(topo)), np.pi, rtol=1e-12)
    np.testing.assert_allclose(zak_phase(trivial), 0.0, atol=1e-12)
    assert_same(npfunc.jit(zak_phase)(trivial), zak_phase(trivial), atol=1e-15)
    assert_same(npfunc.vmap(zak_phase)(np.stack([trivial, 1.1 * trivial])),
                loop(zak_phase, np.stack([trivial, 1.1 * trivial])), atol=1e-15)
    assert_deriv(npfunc.grad(zak_phase)(trivial), np.zeros(2), atol=1e-12)


def test_complex_hermitian_perturbation_eigenvector_expectation():
    """<v0|O|v0> and E1 of A + p0 B + p1 diag(k^2), A and B complex Hermitian:
    first and second derivatives (perturbation theory) through eigh's vectors,
    which are defined up to a phase the expectation does not see."""
    n = 5
    A = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    B = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    A, B = A + A.conj().T, B + B.conj().T
    O = np.diag(np.arange(n, dtype=float))

    def hamiltonian(p):
        return A + p[0] * B + p[1] * np.diag(np.arange(n) ** 2.0)

    def expectation(p):
        v0 = np.linalg.eigh(hamiltonian(p))[1][:, 0]
        return np.real(np.vdot(v0, O @ v0))

    p = np.array([0.3, 0.1])
    ps = p + 0.05 * rng.normal(size=(3, 2))
    check_scalar_program(expectation, p, ps, rtol=1e-10)
    check_scalar_program(lambda p: np.linalg.eigvalsh(hamiltonian(p))[1], p, ps, rtol=1e-10)


# ---- statistical mechanics -----------------------------------------------------------------------


def test_boltzmann_average_logsumexp():
    E = np.array([0.0, 0.5, 1.2])
    O = np.array([1.0, 2.0, 3.0])
    check_scalar_program(lambda e: boltzmann_average(e, O, 0.6), E, E + 0.1 * rng.normal(size=(3, 3)))
    check_scalar_program(lambda kT: boltzmann_average(E, O, kT), 0.6, np.array([0.3, 0.6, 0.9]))


def test_free_energy_perturbation_weighted_logsumexp():
    dU = rng.normal(size=10)
    check_scalar_program(free_energy_perturbation, dU, dU + 0.1 * rng.normal(size=(3, 10)))


def test_rotor_partition_and_heat_capacity():
    check_scalar_program(rotor_partition, 0.05, np.array([0.01, 0.05, 0.1]))
    om = np.array([1.0, 2.0, 3.0])
    lnq = lambda b: vib_heat_capacity(b, om)
    check_scalar_program(lnq, 1.0, np.array([0.5, 1.0, 2.0]))
    # C/k = beta^2 d2 lnQ / dbeta2 = sum (x/2)^2 / sinh(x/2)^2, x = beta w
    b = 1.0
    c = b**2 * npfunc.grad(npfunc.grad(lnq))(b)
    np.testing.assert_allclose(c, np.sum((b * om / 2) ** 2 / np.sinh(b * om / 2) ** 2), rtol=1e-12)


_T = np.array([300.0, 320.0, 340.0, 360.0])
_LNK = 10 - 5000 / _T + np.array([0.01, -0.02, 0.015, -0.005])


def test_arrhenius_polyfit():
    """np.polyfit of ln k on 1/T: derivatives in ln k and in T, and jit at fixed T
    (lstsq takes the rank from the plain matrix: NumPy's own rank check runs)."""
    f = lambda y: arrhenius_fit(y, _T)
    ys = _LNK + 0.01 * rng.normal(size=(3, 4))
    assert_same(npfunc.jit(f)(_LNK), f(_LNK))
    assert_same(npfunc.jit(f)(ys[0]), f(ys[0]))
    assert_same(npfunc.vmap(f)(ys), loop(f, ys))
    J = fd(f, _LNK)
    assert_deriv(npfunc.jacrev(f)(_LNK), J, atol=1e-6)
    assert_deriv(npfunc.jit(npfunc.jacrev(f))(_LNK), J, atol=1e-6)
    g = lambda T: arrhenius_fit(_LNK, T)
    assert_deriv(npfunc.jacfwd(g)(_T), fd(g, _T), rtol=1e-4)
    assert_same(npfunc.vmap(g)(_T + np.arange(3.0)[:, None]), loop(g, _T + np.arange(3.0)[:, None]))


def test_polyfit_traced_abscissa_under_jit_refuses():
    """With T traced the rank has no value while jit records: a refusal naming jit
    whose last fix (keep the fit outside jit) is the one that applies."""
    g = lambda T: arrhenius_fit(_LNK, T)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*outside jit"):
        npfunc.jit(g)(_T)


def test_arrhenius_lstsq():
    f = lambda y: arrhenius_lstsq(y, _T)
    assert_same(npfunc.jit(f)(_LNK), f(_LNK))
    ys = _LNK + 0.01 * rng.normal(size=(3, 4))
    assert_same(npfunc.vmap(f)(ys), loop(f, ys))
    assert_deriv(npfunc.jacrev(f)(_LNK), fd(f, _LNK), atol=1e-6)


def test_eyring_rate_float32_scalars():
    dG = np.float32(80.0)
    ref = eyring_rate(dG)
    assert type(ref) is np.float32
    assert_same(npfunc.jit(eyring_rate)(dG), ref, rtol=1e-6)
    g, v = npfunc.grad_and_value(eyring_rate)(dG)
    assert_same(v, ref, rtol=1e-6)
    assert type(g) is np.float32
    dGs = np.array([70.0, 80.0, 90.0], np.float32)
    assert_same(npfunc.vmap(eyring_rate)(dGs), loop(eyring_rate, dGs), rtol=1e-6)


# ---- orbitals --------------------------------------------------------------------------------------


def test_gaussian_variational_energy_trapezoid():
    check_scalar_program(gaussian_variational_energy, 0.28, np.array([0.2, 0.28, 0.4]))
    # the variational minimum: 8 / (9 pi) for a single Gaussian
    assert abs(gaussian_variational_energy(8 / (9 * np.pi)) + 4 / (3 * np.pi)) < 1e-4


def test_mulliken_charges():
    S = np.array([[1.0, 0.6], [0.6, 1.0]])
    f = lambda P: mulliken_charges(P, S, np.array([1.0, 1.0]))
    check_array_program(f, np.array([0.6, 0.5, 0.5, 0.7]), rng.normal(size=(3, 4)))


def test_unsupported_scipy_special_named_as_scipy():
    """eval_genlaguerre and lpmv are SciPy ufuncs npfunc has no rule for: the
    refusal names them as the user wrote them, not as np.* functions."""
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"jacrev\(f\): scipy\.special\.eval_genlaguerre"):
        npfunc.jacrev(hydrogen_radial)(np.array([1.0, 2.0, 5.0]))
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"jit\(f\): scipy\.special\.lpmv"):
        npfunc.jit(real_sph_harm_density)(np.array([0.7, 0.3]))


@pytest.mark.xfail(strict=True, raises=npfunc.errors.UnsupportedFunctionError,
                   reason="scipy.special.eval_genlaguerre (hydrogen radial functions) has no rule")
def test_hydrogen_radial_genlaguerre():
    r = np.array([1.0, 2.0, 5.0])
    assert_deriv(npfunc.jacrev(hydrogen_radial)(r), fd(hydrogen_radial, r))


@pytest.mark.xfail(strict=True, raises=npfunc.errors.UnsupportedFunctionError,
                   reason="scipy.special.lpmv (associated Legendre functions) has no rule")
def test_spherical_harmonic_density_lpmv():
    tp = np.array([0.7, 0.3])
    assert_deriv(npfunc.jacrev(real_sph_harm_density)(tp), fd(real_sph_harm_density, tp))


@pytest.mark.xfail(strict=True, reason="hessian of np.abs(amplitude) ** 2 where the amplitude is 0 is 0: abs's "
                   "derivative at 0 is taken as 0 (JAX's convention), so the smooth |z|^2 loses its curvature "
                   "(Rabi population at zero coupling: 0 instead of 0.834; np.abs(x) ** 2 at x = 0: 0, not 2)")
def test_population_curvature_at_zero_coupling():
    p = np.array([0.0, 0.3])
    assert_deriv(npfunc.hessian(rabi_population)(p), fd(npfunc.grad(rabi_population), p), atol=1e-6)


def test_population_curvature_at_zero_coupling_by_conjugate_product():
    """Written as (z * conj(z)).real the population has its curvature at W = 0
    (perturbation theory: P ~ W^2 t^2 sinc^2)."""
    def population(p, t=1.3):
        W, delta = p
        H = np.array([[0.0, W / 2], [W / 2, delta]])
        psi = scipy.linalg.expm(-1j * H * t) @ np.array([1.0, 0.0], dtype=complex)
        return (psi[1] * np.conj(psi[1])).real

    p = np.array([0.0, 0.3])
    H = npfunc.hessian(population)(p)
    assert_deriv(H, fd(npfunc.grad(population), p), atol=1e-6)
    delta, t = 0.3, 1.3
    np.testing.assert_allclose(H[0, 0], 2 * (np.sin(delta * t / 2) / delta) ** 2, rtol=1e-10)


# ---- rounding-level differences ------------------------------------------------------------------


def test_scalar_power_operator_bitwise():
    r2 = np.float32(1.21)
    f = lambda r2: (1.0 / r2) ** 3
    assert f(r2) != np.power(1.0 / r2, 3)  # NumPy itself: the operator on a scalar is not the ufunc
    got = npfunc.jit(f)(r2)
    assert type(got) is np.float32
    assert got == f(r2)
    for got in (npfunc.jit(f)(np.float32(1.3)), npfunc.grad_and_value(f)(r2)[1],
                npfunc.jvp(f, (r2,), (np.float32(1.0),))[0], npfunc.vjp(f, r2)[0]):
        assert type(got) is np.float32
        assert got == f(r2) or got == f(np.float32(1.3))
    g = lambda r2: np.power(1.0 / r2, 3)  # the ufunc keeps its own loop
    assert npfunc.jit(g)(r2) == g(r2) and npfunc.grad_and_value(g)(r2)[1] == g(r2)
