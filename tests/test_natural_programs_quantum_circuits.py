"""Natural programs from quantum-computing simulation, each written first as
plain NumPy/SciPy the way a practitioner writes it, then run under npfunc's
transforms and compared with the plain program (values, dtypes, NumPy scalar
or array, side effects) and with central differences (derivatives).

Programs:
 1. one-qubit RY rotation built by np.array of traced cos/sin, <Z>
 2. RX/RZ gates of complex entries, Bloch vector of the rotated state (tuple)
 3. two-qubit product ansatz with np.kron and a CNOT matrix, <Z Z>
 4. gate application by einsum on the state reshaped to (2,)*n
 5. gate application by np.tensordot + np.moveaxis
 6. Pauli-string expectation from a string "XZY" by functools.reduce(np.kron)
 7. hardware-efficient variational circuit (layers of RY + CZ ladder), energy of
    a transverse-field Ising Hamiltonian; gradient vs the parameter-shift rule
 8. the same energy in float32 / complex64
 9. CZ by fancy-index sign flip on a copy (psi[idx] *= -1)
10. phase gate by np.where on a bit mask of basis indices
11. measurement probabilities |psi|^2 and marginal of qubit 0 (reshape+sum)
12. density matrix np.outer, partial trace by einsum 'ijkj->ik', purity
13. von Neumann entanglement entropy from eigvalsh with clipped eigenvalues
14. Schmidt coefficients by np.linalg.svd of the reshaped state
15. depolarising channel as a Kraus sum (loop over Kraus operators)
16. amplitude damping of a traced gamma, excited population
17. fidelity of pure states |<psi|phi>|^2 via np.vdot
18. Uhlmann fidelity via scipy.linalg.sqrtm
19. trace distance 0.5 * sum |eigvalsh(rho - sigma)|
20. time evolution expm(-i H t) of a two-qubit Ising model, magnetisation
21. first-order Trotter steps with expm of each term in a loop
22. rotation gate built as scipy.linalg.expm(-1j*theta/2*X)
23. QAOA MaxCut on a 4-node ring: cost diagonal by bit loops, phase and mixer layers
24. in-place normalisation of an argument state (psi /= norm) and its return
25. state-preparation infidelity 1 - |<target|U(theta)|0>|^2
26. Lindblad dephasing by explicit Euler steps with rho += dt * ...
27. projective measurement collapse with an early return on tiny probabilities
28. Hamiltonian assembled by += of kron terms into np.zeros(..., like=)
29. expectation returned as a Python float (float(...)) -> refusal
30. dictionary of observables (<X>, <Y>, <Z>) from a parameterised state
31. einsum 'i,ij,j->' expectation with np.conj, vmap with in_dims None
32. Bloch-sphere purity of a noisy qubit from np.trace(rho @ rho).real
33. global phase removal by np.angle of the first amplitude
34. Hessian of the variational energy, jvp/linearize of the QAOA energy
35. X on the top qubit by a tuple swap of views (NumPy's aliasing result)
36. the textbook stride kernel: pairs (j, j + 2**q) updated in place in a loop
37. phase on odd amplitudes of an argument in place (jit, vmap with in_dims)
38. CNOT by an overlapping row-view assignment
39. complex state as output (Jacobian) and as input (Rayleigh quotient gradient)
40. float32 state times a Python complex phase (complex64)
41. ground-state overlap from eigh; negativity by partial transpose; decay
    rates from eigvals of a non-Hermitian effective Hamiltonian
42. scipy.linalg.eigh(subset_by_index) and logm: refusals and their fixes
43. Lindbladian as a superoperator on column-stacked vec(rho) (order='F')
44. complex eigenvector phases under jit/vmap; argmin ground configuration
45. shot estimates: searchsorted on a CDF with fixed uniforms; Generator.choice refusal
46. complex solve_ivp (refused; real/imag split works); np.real_if_close (refused)
47. scipy.sparse Hamiltonians: refusals, the dense fix, traced scalar * sparse (xfail)
48. np.kron of lists of traced values: refusal, the stacked fix, the advice (xfail)
49. RX by scipy.linalg.cosm / sinm (fixed: twins)
50. a returned reshape view of the argument; np.allclose's bool under jit (xfail)
51. complex(re, im) of traced parts (refusal; advice xfail)
52. expm_multiply: eager derivatives, jit refusal (message xfail), expm @ v rewrite
53. custom_vjp whose backward is the parameter-shift rule; checkpointed layers
54. <ZZ> from probabilities |psi|**2: Hessian at theta = 0, where amplitudes are
    exactly zero (xfail), and the (psi * psi.conj()).real spelling
55. transverse-field Ising ground energy by eigvalsh; susceptibility at the
    degenerate zero field (documented gap, xfail)
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

import npfunc
from natural_checks import assert_deriv, assert_same, fd

rng = np.random.default_rng(2024)

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULI = {"I": I2, "X": X, "Y": Y, "Z": Z}
CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex)
H_GATE = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_scalar(f, x, xs, hess=False, rtol=1e-12):
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
    assert_deriv(npfunc.vmap(npfunc.grad(f))(xs), loop(lambda z: fd(f, z), xs))
    if hess:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, atol=1e-6)
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, atol=1e-6)


def check_array(f, x, xs, rtol=1e-12):
    ref = f(x)
    jf = npfunc.jit(f)
    assert_same(jf(x), ref, rtol)
    assert_same(jf(xs[0]), f(xs[0]), rtol)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs), rtol)
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    out, pullback = npfunc.vjp(f, x)
    assert_same(out, ref, rtol)
    ct = np.linspace(-1.0, 1.0, np.size(ref)).reshape(np.shape(ref))
    assert_deriv(pullback(ct)[0], np.reshape(ct.ravel() @ np.reshape(J, (np.size(ref), -1)), np.shape(x)))
    t = np.linspace(0.5, 1.5, np.size(x)).reshape(np.shape(x))
    out, tan = npfunc.jvp(f, (x,), (t,))
    assert_same(out, ref, rtol)
    assert_deriv(tan, np.reshape(np.reshape(J, (np.size(ref), -1)) @ np.ravel(t), np.shape(ref)))


# ---- gates ----------------------------------------------------------------------------------


def ry(theta):
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -s], [s, c]])


def rx(theta):
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def rz(theta):
    return np.array([[np.exp(-0.5j * theta), 0], [0, np.exp(0.5j * theta)]])


def expval(psi, op):
    return np.real(np.conj(psi) @ op @ psi)


# 1
def ry_z_expectation(theta):
    psi = ry(theta[0]) @ np.array([1.0, 0.0])
    return psi @ np.real(Z) @ psi


# 2
def bloch_vector(angles):
    a, b = angles
    psi = rz(b) @ rx(a) @ np.array([1, 0], dtype=complex)
    return np.array([expval(psi, X), expval(psi, Y), expval(psi, Z)])


# 3
def zz_product_ansatz(params):
    a, b = params
    psi0 = np.zeros(4, dtype=complex)
    psi0[0] = 1.0
    U = CNOT @ np.kron(ry(a), ry(b))
    psi = U @ psi0
    return expval(psi, np.kron(Z, Z)) + 0.5 * expval(psi, np.kron(X, I2))


# 4, 5
def apply_1q_einsum(psi, gate, q, n):
    t = psi.reshape((2,) * n)
    t = np.moveaxis(t, q, 0)
    t = np.einsum("ab,b...->a...", gate, t)
    t = np.moveaxis(t, 0, q)
    return t.reshape(-1)


def apply_1q_tensordot(psi, gate, q, n):
    t = psi.reshape([2] * n)
    t = np.tensordot(gate, t, axes=([1], [q]))
    return np.moveaxis(t, 0, q).reshape(2**n)


def apply_cz(psi, q1, q2, n):
    t = psi.reshape((2,) * n).copy()
    idx = [slice(None)] * n
    idx[q1] = 1
    idx[q2] = 1
    t[tuple(idx)] *= -1
    return t.reshape(-1)


def zero_state(n, dtype=complex):
    psi = np.zeros(2**n, dtype=dtype)
    psi[0] = 1
    return psi


def three_qubit_einsum(thetas):
    n = 3
    psi = zero_state(n)
    for q in range(n):
        psi = apply_1q_einsum(psi, ry(thetas[q]), q, n)
    psi = apply_1q_einsum(psi, rx(thetas[0] * thetas[1]), 2, n)
    return np.abs(psi) ** 2


def three_qubit_tensordot(thetas):
    n = 3
    psi = zero_state(n)
    for q in range(n):
        psi = apply_1q_tensordot(psi, rx(thetas[q]), q, n)
    psi = apply_cz(psi, 0, 2, n)
    psi = apply_1q_tensordot(psi, H_GATE, 0, n)
    return np.vdot(psi, np.kron(X, np.kron(I2, Z)) @ psi).real


# 6
def pauli_op(label):
    return functools.reduce(np.kron, [PAULI[c] for c in label])


def pauli_expectation(psi, label):
    return np.real(np.vdot(psi, pauli_op(label) @ psi))


def pauli_string_energy(thetas):
    n = 3
    psi = zero_state(n)
    for q in range(n):
        psi = apply_1q_einsum(psi, ry(thetas[q]), q, n)
    psi = CNOT_chain(psi, n)
    ham = {"ZZI": 1.0, "IZZ": 1.0, "XII": -0.5, "IXI": -0.5, "IIX": -0.5, "XYZ": 0.25}
    return sum(c * pauli_expectation(psi, s) for s, c in ham.items())


def CNOT_chain(psi, n):
    for q in range(n - 1):
        op = np.kron(np.kron(np.eye(2**q), CNOT), np.eye(2 ** (n - q - 2)))
        psi = op @ psi
    return psi


# 7, 8
def tfim_terms(n, J=1.0, h=0.7):
    terms = []
    for q in range(n - 1):
        label = ["I"] * n
        label[q] = label[q + 1] = "Z"
        terms.append((-J, "".join(label)))
    for q in range(n):
        label = ["I"] * n
        label[q] = "X"
        terms.append((-h, "".join(label)))
    return terms


def tfim_hamiltonian(n, dtype=complex):
    return sum(c * pauli_op(s) for c, s in tfim_terms(n)).astype(dtype)


H3 = tfim_hamiltonian(3)


def hea_state(params, n=3, dtype=complex):
    """Hardware-efficient ansatz: layers of RY on every qubit, then a CZ ladder."""
    params = params.reshape(-1, n)
    psi = zero_state(n, dtype)
    for layer in params:
        for q in range(n):
            psi = apply_1q_einsum(psi, ry(layer[q]).astype(dtype), q, n)
        for q in range(n - 1):
            psi = apply_cz(psi, q, q + 1, n)
    return psi


def vqe_energy(params):
    psi = hea_state(params)
    return np.real(psi.conj() @ H3 @ psi)


def vqe_energy32(params):
    psi = hea_state(params, dtype=np.complex64)
    return np.real(psi.conj() @ H3.astype(np.complex64) @ psi)


def parameter_shift(f, params):
    g = np.zeros_like(params)
    for k in range(params.size):
        e = np.zeros_like(params)
        e.flat[k] = np.pi / 2
        g.flat[k] = 0.5 * (f(params + e) - f(params - e))
    return g


# 10
def phase_by_mask(phi):
    n = 3
    psi = np.full(2**n, 1 / np.sqrt(2**n), dtype=complex)
    idx = np.arange(2**n)
    bit1 = (idx >> 1) & 1
    psi = psi * np.where(bit1 == 1, np.exp(1j * phi[0]), 1.0)
    psi = apply_1q_einsum(psi, H_GATE, 1, n)
    return np.abs(psi) ** 2


# 11
def marginal_qubit0(thetas):
    psi = three_qubit_einsum_state(thetas)
    probs = np.abs(psi) ** 2
    return probs.reshape(2, 4).sum(axis=1)


def three_qubit_einsum_state(thetas):
    n = 3
    psi = zero_state(n)
    for q in range(n):
        psi = apply_1q_einsum(psi, ry(thetas[q]), q, n)
    psi = CNOT_chain(psi, n)
    return psi


# 12, 13, 14
def reduced_density(psi, dA, dB):
    rho = np.outer(psi, psi.conj()).reshape(dA, dB, dA, dB)
    return np.einsum("ijkj->ik", rho)


def purity_of_half(thetas):
    psi = three_qubit_einsum_state(thetas)
    rhoA = reduced_density(psi, 2, 4)
    return np.trace(rhoA @ rhoA).real


def entanglement_entropy(thetas):
    psi = three_qubit_einsum_state(thetas)
    rhoA = reduced_density(psi, 2, 4)
    p = np.linalg.eigvalsh(rhoA)
    p = np.clip(p, 1e-12, None)
    return -np.sum(p * np.log2(p))


def schmidt_coefficients(thetas):
    psi = three_qubit_einsum_state(thetas)
    s = np.linalg.svd(psi.reshape(2, 4), compute_uv=False)
    return s


# 15, 16
def depolarize(rho, p):
    kraus = [np.sqrt(1 - 3 * p / 4) * I2, np.sqrt(p / 4) * X, np.sqrt(p / 4) * Y, np.sqrt(p / 4) * Z]
    out = np.zeros_like(rho)
    for K in kraus:
        out = out + K @ rho @ K.conj().T
    return out


def depolarized_purity(x):
    theta, p = x
    psi = rx(theta) @ np.array([1, 0], dtype=complex)
    rho = np.outer(psi, psi.conj())
    rho = depolarize(rho, p)
    return np.trace(rho @ rho).real


def amplitude_damping(x):
    theta, gamma = x
    psi = ry(theta) @ np.array([1.0, 0.0])
    rho = np.outer(psi, psi).astype(complex)
    K0 = np.array([[1, 0], [0, np.sqrt(1 - gamma)]])
    K1 = np.array([[0, np.sqrt(gamma)], [0, 0]])
    rho = K0 @ rho @ K0.T + K1 @ rho @ K1.T
    return rho[1, 1].real


# 17, 18, 19
def pure_fidelity(thetas):
    a = hea_state(thetas)
    target = np.ones(8, dtype=complex) / np.sqrt(8)
    return np.abs(np.vdot(target, a)) ** 2


def noisy_qubit(x):
    theta, p = x[0], x[1]
    psi = ry(theta) @ np.array([1.0, 0.0])
    rho = np.outer(psi, psi).astype(complex)
    return depolarize(rho, p)


SIGMA = np.array([[0.7, 0.2 - 0.1j], [0.2 + 0.1j, 0.3]])


def uhlmann_fidelity(x):
    rho = noisy_qubit(x)
    s = scipy.linalg.sqrtm(rho)
    return np.real(np.trace(scipy.linalg.sqrtm(s @ SIGMA @ s))) ** 2


def trace_distance(x):
    rho = noisy_qubit(x)
    w = np.linalg.eigvalsh(rho - SIGMA)
    return 0.5 * np.sum(np.abs(w))


# 20, 21, 22
def ising_magnetisation(x):
    t, h = x
    H = np.kron(Z, Z) + h * (np.kron(X, I2) + np.kron(I2, X))
    psi0 = np.array([1, 0, 0, 0], dtype=complex)
    psi = scipy.linalg.expm(-1j * H * t) @ psi0
    return expval(psi, np.kron(Z, I2) + np.kron(I2, Z)) / 2


def trotter_magnetisation(x, steps=4):
    t, h = x
    dt = t / steps
    Uzz = scipy.linalg.expm(-1j * dt * np.kron(Z, Z))
    Ux = scipy.linalg.expm(-1j * dt * h * (np.kron(X, I2) + np.kron(I2, X)))
    psi = np.array([1, 0, 0, 0], dtype=complex)
    for _ in range(steps):
        psi = Ux @ (Uzz @ psi)
    return expval(psi, np.kron(Z, I2))


def expm_rotation(theta):
    U = scipy.linalg.expm(-0.5j * theta[0] * X)
    psi = U @ np.array([1, 0], dtype=complex)
    return np.abs(psi) ** 2


# 23 QAOA
EDGES = [(0, 1), (1, 2), (2, 3), (3, 0)]


def maxcut_diagonal(n, edges):
    cost = np.zeros(2**n)
    for z in range(2**n):
        bits = [(z >> (n - 1 - k)) & 1 for k in range(n)]
        cost[z] = sum(1 for i, j in edges if bits[i] != bits[j])
    return cost


def qaoa_energy(params, n=4, edges=EDGES):
    p = len(params) // 2
    gammas, betas = params[:p], params[p:]
    C = maxcut_diagonal(n, edges)
    psi = np.ones(2**n, dtype=complex) / np.sqrt(2**n)
    for g, b in zip(gammas, betas):
        psi = np.exp(-1j * g * C) * psi
        mixer = scipy.linalg.expm(-1j * b * X)
        for q in range(n):
            psi = apply_1q_einsum(psi, mixer, q, n)
    return -np.real(np.sum(C * np.abs(psi) ** 2))


# 24
def normalise_inplace(psi):
    psi /= np.linalg.norm(psi)
    return psi


# 25
TARGET = np.array([0.5, 0.5j, -0.5, 0.5j])


def infidelity(theta):
    psi = np.array([1, 0, 0, 0], dtype=complex)
    psi = np.kron(rx(theta[0]), rz(theta[1])) @ psi
    psi = CNOT @ psi
    psi = np.kron(ry(theta[2]), rx(theta[3])) @ psi
    return 1 - abs(np.vdot(TARGET, psi)) ** 2


# 26
def lindblad_dephasing(x, steps=20, T=1.0):
    omega, gamma = x
    dt = T / steps
    H = 0.5 * omega * X
    L = np.sqrt(gamma) * Z
    psi = np.array([1, 0], dtype=complex)
    rho = np.outer(psi, psi.conj())
    for _ in range(steps):
        comm = H @ rho - rho @ H
        diss = L @ rho @ L.conj().T - 0.5 * (L.conj().T @ L @ rho + rho @ L.conj().T @ L)
        rho = rho + dt * (-1j * comm + diss)
    return np.real(rho[1, 1])


# 27
def measure_and_collapse(thetas, outcome=1, tol=1e-12):
    psi = three_qubit_einsum_state(thetas)
    t = psi.reshape(2, 4)
    prob = np.sum(np.abs(t[outcome]) ** 2)
    if prob < tol:
        return np.zeros(4)
    post = t[outcome] / np.sqrt(prob)
    return np.abs(post) ** 2


# 28
def hamiltonian_by_accumulation(J, n=3):
    H = np.zeros((2**n, 2**n), dtype=complex, like=J)
    for q in range(n - 1):
        ops = [I2] * n
        ops[q] = Z
        ops[q + 1] = Z
        H += J[q] * functools.reduce(np.kron, ops)
    for q in range(n):
        ops = [I2] * n
        ops[q] = X
        H += 0.5 * functools.reduce(np.kron, ops)
    return H


def ground_energy_of_couplings(J):
    H = hamiltonian_by_accumulation(J)
    return np.linalg.eigvalsh(H)[0]


# 29
def energy_as_float(params):
    psi = hea_state(params)
    return float(np.real(psi.conj() @ H3 @ psi))


# 30
def pauli_dict(angles):
    psi = rz(angles[1]) @ ry(angles[0]) @ np.array([1, 0], dtype=complex)
    return {"X": expval(psi, X), "Y": expval(psi, Y), "Z": expval(psi, Z)}


# 31
def einsum_expectation(psi_re, op):
    psi = psi_re.astype(complex)
    psi = psi / np.linalg.norm(psi)
    return np.einsum("i,ij,j->", np.conj(psi), op, psi).real


# 32
def bloch_purity(x):
    r = x[:3]
    rho = 0.5 * (I2 + r[0] * X + r[1] * Y + r[2] * Z)
    return np.trace(rho @ rho).real


# 33
def remove_global_phase(angles):
    psi = rz(angles[1]) @ rx(angles[0]) @ np.array([1, 0], dtype=complex)
    psi = psi * np.exp(-1j * np.angle(psi[0]))
    return np.array([psi[0].real, psi[1].real, psi[1].imag])


# ==== tests =================================================================================


def test_ry_z_expectation():
    th = np.array([0.7])
    check_scalar(ry_z_expectation, th, rng.uniform(-2, 2, size=(3, 1)), hess=True)
    assert_deriv(npfunc.grad(ry_z_expectation)(th), -np.sin(th))


def test_bloch_vector():
    check_array(bloch_vector, np.array([0.4, 1.1]), rng.uniform(-2, 2, size=(3, 2)))


def test_zz_product_ansatz():
    check_scalar(zz_product_ansatz, np.array([0.3, -0.8]), rng.uniform(-2, 2, size=(3, 2)), hess=True)


def test_three_qubit_einsum_probabilities():
    check_array(three_qubit_einsum, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)))


def test_three_qubit_tensordot_cz():
    check_scalar(three_qubit_tensordot, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)))


def test_pauli_string_energy():
    check_scalar(pauli_string_energy, np.array([0.1, 0.9, -1.3]), rng.uniform(-2, 2, size=(3, 3)))


def test_vqe_energy_and_parameter_shift():
    p = rng.uniform(-np.pi, np.pi, size=6)
    check_scalar(vqe_energy, p, rng.uniform(-2, 2, size=(3, 6)))
    assert_deriv(npfunc.grad(vqe_energy)(p), parameter_shift(vqe_energy, p), rtol=1e-10)


def test_vqe_energy_hessian():
    p = rng.uniform(-np.pi, np.pi, size=3)
    H = fd(npfunc.grad(vqe_energy), p)
    assert_deriv(npfunc.hessian(vqe_energy)(p), H, atol=1e-6)
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(vqe_energy))(p), H, atol=1e-6)


def test_vqe_energy_complex64():
    p = rng.uniform(-np.pi, np.pi, size=6).astype(np.float32)
    ref = vqe_energy32(p)
    assert ref.dtype == np.float32
    assert_same(npfunc.jit(vqe_energy32)(p), ref, rtol=1e-6)
    ps = rng.uniform(-2, 2, size=(3, 6)).astype(np.float32)
    assert_same(npfunc.vmap(vqe_energy32)(ps), loop(vqe_energy32, ps), rtol=1e-6)
    g = npfunc.grad(vqe_energy32)(p)
    assert g.dtype == np.float32
    assert_deriv(g, parameter_shift(vqe_energy, p.astype(float)), rtol=1e-4, atol=1e-5)


def test_phase_by_mask():
    check_array(phase_by_mask, np.array([0.6]), rng.uniform(-2, 2, size=(3, 1)))


def test_marginal_qubit0():
    check_array(marginal_qubit0, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)))


def test_purity_of_half():
    check_scalar(purity_of_half, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)), hess=True)


def test_entanglement_entropy():
    check_scalar(entanglement_entropy, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)))


def test_schmidt_coefficients():
    check_array(schmidt_coefficients, np.array([0.3, 1.2, -0.5]), rng.uniform(-2, 2, size=(3, 3)))


def test_depolarized_purity():
    check_scalar(depolarized_purity, np.array([0.8, 0.2]), rng.uniform(0.05, 0.5, size=(3, 2)), hess=True)


def test_amplitude_damping():
    check_scalar(amplitude_damping, np.array([2.0, 0.3]), rng.uniform(0.1, 0.6, size=(3, 2)))


def test_pure_fidelity():
    check_scalar(pure_fidelity, rng.uniform(-2, 2, size=6), rng.uniform(-2, 2, size=(3, 6)))


def test_uhlmann_fidelity_sqrtm():
    check_scalar(uhlmann_fidelity, np.array([0.8, 0.3]), rng.uniform(0.1, 0.6, size=(3, 2)), rtol=1e-10)


def test_trace_distance():
    check_scalar(trace_distance, np.array([0.8, 0.3]), rng.uniform(0.1, 0.6, size=(3, 2)))


def test_ising_magnetisation_expm():
    check_scalar(ising_magnetisation, np.array([0.9, 0.6]), rng.uniform(0.2, 1.5, size=(3, 2)), hess=True)


def test_trotter_magnetisation():
    check_scalar(trotter_magnetisation, np.array([0.9, 0.6]), rng.uniform(0.2, 1.5, size=(3, 2)))


def test_expm_rotation():
    check_array(expm_rotation, np.array([0.9]), rng.uniform(-2, 2, size=(3, 1)))


def test_qaoa_energy():
    p = np.array([0.4, 0.8, 0.3, 0.6])
    check_scalar(qaoa_energy, p, rng.uniform(0, 1, size=(3, 4)))


def test_qaoa_jvp_linearize():
    p = np.array([0.4, 0.8, 0.3, 0.6])
    t = np.array([1.0, -0.5, 0.25, 2.0])
    ref = qaoa_energy(p)
    out, tan = npfunc.jvp(qaoa_energy, (p,), (t,))
    assert_same(out, ref)
    G = fd(qaoa_energy, p)
    assert_deriv(tan, G @ t)
    out, lin = npfunc.linearize(qaoa_energy, p)
    assert_same(out, ref)
    assert_deriv(lin(t), G @ t)


def test_normalise_inplace_argument():
    psi = np.array([1.0, 2.0, 2.0 + 1j, 0.0])
    want_arg = psi.copy()
    want = normalise_inplace(want_arg)
    arg = psi.copy()
    got = npfunc.jit(normalise_inplace)(arg)
    assert_same(got, want)
    assert_same(arg, want_arg)
    arg2 = psi.copy() * 3
    want2 = normalise_inplace(psi.copy() * 3)
    got2 = npfunc.jit(normalise_inplace)(arg2)
    assert_same(got2, want2)
    assert_same(arg2, want2)


def test_normalise_inplace_vmap():
    psis = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    want = psis.copy()
    for row in want:
        normalise_inplace(row)
    arg = psis.copy()
    got = npfunc.vmap(normalise_inplace)(arg)
    assert_same(got, want)
    assert_same(arg, want)


def test_infidelity():
    check_scalar(infidelity, np.array([0.1, 0.5, -0.3, 1.0]), rng.uniform(-2, 2, size=(3, 4)), hess=True)


def test_lindblad_dephasing():
    check_scalar(lindblad_dephasing, np.array([2.0, 0.3]), rng.uniform(0.1, 2, size=(3, 2)))


def test_measure_and_collapse_early_return():
    """if prob < tol: return ... refuses under jit and names np.where; eager
    transforms (jacrev, jacfwd) take the branch the point takes; the np.where
    spelling the message advises runs under jit and vmap."""
    th = np.array([0.3, 1.2, -0.5])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(measure_and_collapse)(th)
    J = fd(measure_and_collapse, th)
    assert_deriv(npfunc.jacrev(measure_and_collapse)(th), J)
    assert_deriv(npfunc.jacfwd(measure_and_collapse)(th), J)

    def collapse_where(thetas, outcome=1, tol=1e-12):
        t = three_qubit_einsum_state(thetas).reshape(2, 4)
        prob = np.sum(np.abs(t[outcome]) ** 2)
        post = np.abs(t[outcome]) ** 2 / np.where(prob < tol, 1.0, prob)
        return np.where(prob < tol, 0.0, post)

    assert_same(collapse_where(th), measure_and_collapse(th))
    check_array(collapse_where, th, rng.uniform(-2, 2, size=(3, 3)))


def test_hamiltonian_accumulation_like():
    J = np.array([1.0, 0.6])
    check_scalar(ground_energy_of_couplings, J, rng.uniform(0.2, 1.5, size=(3, 2)))


def test_energy_as_float():
    p = rng.uniform(-2, 2, size=3)
    ref = energy_as_float(p)
    assert type(ref) is float
    with pytest.raises(npfunc.errors.ConcretizationError):
        npfunc.grad(energy_as_float)(p)


def test_pauli_dict():
    a = np.array([0.7, 0.3])
    ref = pauli_dict(a)
    got = npfunc.jit(pauli_dict)(a)
    assert got.keys() == ref.keys()
    for k in ref:
        assert_same(got[k], ref[k])
    J = npfunc.jacrev(pauli_dict)(a)
    for k in ref:
        assert_deriv(J[k], fd(lambda z: pauli_dict(z)[k], a))
    xs = rng.uniform(-2, 2, size=(3, 2))
    V = npfunc.vmap(pauli_dict)(xs)
    for k in ref:
        assert_same(V[k], np.stack([pauli_dict(x)[k] for x in xs]))


def test_einsum_expectation_in_dims_none():
    op = pauli_op("ZX")
    x = np.array([0.3, -1.0, 0.5, 0.2])
    check_scalar(lambda v: einsum_expectation(v, op), x, rng.normal(size=(3, 4)))
    xs = rng.normal(size=(4, 3))
    got = npfunc.vmap(einsum_expectation, in_dims=(1, None))(xs, op)
    assert_same(got, np.stack([einsum_expectation(xs[:, i], op) for i in range(3)]))
    got = npfunc.vmap(einsum_expectation, in_dims=(1, None), chunk_size=2)(xs, op)
    assert_same(got, np.stack([einsum_expectation(xs[:, i], op) for i in range(3)]))


def test_bloch_purity():
    check_scalar(bloch_purity, np.array([0.3, -0.2, 0.5]), rng.uniform(-0.5, 0.5, size=(3, 3)), hess=True)


def test_remove_global_phase():
    check_array(remove_global_phase, np.array([0.7, 0.3]), rng.uniform(0.1, 2, size=(3, 2)))


# ---- in-place gate application, views and aliasing -------------------------------------------


def x_on_top_qubit_views(psi):
    """X on the top qubit of a 2-qubit state by a tuple swap of views: NumPy
    assigns psi[:2] first, so psi[2:] then receives the *new* psi[:2] (both
    halves end as the old psi[2:]); a transform must do the same."""
    psi[:2], psi[2:] = psi[2:], psi[:2]
    return psi


def apply_gate_stride(psi, U, q):
    """The textbook state-vector kernel: pairs (j, j + 2**q) updated in place."""
    stride = 2**q
    for i in range(0, psi.size, 2 * stride):
        for j in range(i, i + stride):
            a, b = psi[j], psi[j + stride]
            psi[j] = U[0, 0] * a + U[0, 1] * b
            psi[j + stride] = U[1, 0] * a + U[1, 1] * b
    return psi


def stride_circuit(th):
    psi = np.zeros(8, like=th)
    psi[0] = 1.0
    for q in range(3):
        apply_gate_stride(psi, ry(th[q]), q)
    return psi**2


def phase_on_odd_inplace(psi, phi):
    psi[1::2] *= np.exp(1j * phi)


def cnot_by_row_view(psi):
    t = psi.reshape(2, 2)
    t[1] = t[1, ::-1]
    return psi


def test_view_swap_aliasing():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    want = x_on_top_qubit_views(a.copy())
    assert_same(want, np.array([3.0, 4.0, 3.0, 4.0]))
    arg = a.copy()
    assert_same(npfunc.jit(x_on_top_qubit_views)(arg), want)
    assert_same(arg, want)
    rows = np.stack([a, a + 1])
    wrows = rows.copy()
    for r in wrows:
        x_on_top_qubit_views(r)
    assert_same(npfunc.vmap(x_on_top_qubit_views)(rows), wrows)
    assert_same(rows, wrows)

    def loss(x):
        return np.sum(x_on_top_qubit_views(x * np.array([1.0, 2.0, 3.0, 4.0])) * np.arange(1, 5))

    x = np.array([0.7, 1.1, 0.3, 0.2])
    assert_deriv(npfunc.grad(loss)(x), fd(loss, x))


def test_stride_kernel_circuit():
    check_array(stride_circuit, np.array([0.3, 1.1, -0.4]), rng.uniform(-2, 2, size=(3, 3)))
    assert_same(stride_circuit(np.array([0.3, 1.1, -0.4])), three_qubit_ry_probs(np.array([0.3, 1.1, -0.4])))


def three_qubit_ry_probs(th):
    psi = zero_state(3)
    for q in range(3):
        psi = apply_1q_einsum(psi, ry(th[q]), 2 - q, 3)
    return np.abs(psi) ** 2


def test_phase_inplace_argument_jit_vmap():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=complex) / 10
    want = a[0].copy()
    phase_on_odd_inplace(want, 0.3)
    arg = a[0].copy()
    assert npfunc.jit(phase_on_odd_inplace)(arg, 0.3) is None
    assert_same(arg, want)
    arg = a[0].copy()
    want = a[0].copy()
    phase_on_odd_inplace(want, np.float64(0.5))
    npfunc.jit(phase_on_odd_inplace)(arg, np.float64(0.5))
    assert_same(arg, want)
    phis = np.array([0.1, 0.2])
    want = a.copy()
    for r, p in zip(want, phis):
        phase_on_odd_inplace(r, p)
    arg = a.copy()
    npfunc.vmap(phase_on_odd_inplace)(arg, phis)
    assert_same(arg, want)
    want = a.T.copy()
    for i in range(2):
        phase_on_odd_inplace(want[:, i], 0.3)
    arg = a.T.copy()
    npfunc.vmap(phase_on_odd_inplace, in_dims=(1, None))(arg, 0.3)
    assert_same(arg, want)


def test_cnot_by_overlapping_row_view():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    want = cnot_by_row_view(a.copy())
    arg = a.copy()
    assert_same(npfunc.jit(cnot_by_row_view)(arg), want)
    assert_same(arg, want)
    rows = np.stack([a, a + 1])
    wrows = rows.copy()
    for r in wrows:
        cnot_by_row_view(r)
    npfunc.vmap(cnot_by_row_view)(rows)
    assert_same(rows, wrows)


# ---- complex states as outputs and inputs ----------------------------------------------------


def qubit_state(th):
    c, s = np.cos(th[0] / 2), np.sin(th[0] / 2)
    return np.array([c, -1j * s * np.exp(1j * th[1])])


def test_complex_state_jacobian():
    th = np.array([0.4, 0.9])
    J = fd(lambda t: qubit_state(t).real, th) + 1j * fd(lambda t: qubit_state(t).imag, th)
    assert_deriv(npfunc.jacrev(qubit_state)(th), J)
    assert_deriv(npfunc.jacfwd(qubit_state)(th), J)
    t = np.array([1.0, 0.5])
    out, tan = npfunc.jvp(qubit_state, (th,), (t,))
    assert_same(out, qubit_state(th))
    assert_deriv(tan, J @ t)
    assert_same(npfunc.jit(qubit_state)(th), qubit_state(th))


def rayleigh_quotient(psi):
    H = np.kron(Z, Z) + 0.5 * np.kron(X, I2)
    return np.real(np.vdot(psi, H @ psi)) / np.real(np.vdot(psi, psi))


def test_rayleigh_quotient_complex_state_gradient():
    """grad of a real loss of a complex state: dL/dRe + i dL/dIm (torch's convention)."""
    psi = np.array([1.0 + 0.2j, 0.3 - 0.1j, 0.2, 0.5j])
    g = npfunc.grad(rayleigh_quotient)(psi)
    want = fd(lambda r: rayleigh_quotient(r + 1j * psi.imag), psi.real) + 1j * fd(
        lambda i: rayleigh_quotient(psi.real + 1j * i), psi.imag)
    assert g.dtype == np.complex128
    assert_deriv(g, want)
    assert_same(npfunc.jit(rayleigh_quotient)(psi), rayleigh_quotient(psi))
    psis = psi + rng.normal(size=(3, 4))
    assert_same(npfunc.vmap(rayleigh_quotient)(psis), loop(rayleigh_quotient, psis))


def rotated_pair32(x):
    U = np.kron(np.array([[np.cos(x[0]), -np.sin(x[0])], [np.sin(x[0]), np.cos(x[0])]]), np.eye(2, dtype=np.float32))
    psi = U @ np.array([1, 0, 0, 0], dtype=np.float32)
    return psi * np.exp(1j * x[1])


def test_float32_state_times_python_complex():
    x = np.array([0.3, 0.2], dtype=np.float32)
    ref = rotated_pair32(x)
    assert ref.dtype == np.complex64
    assert_same(npfunc.jit(rotated_pair32)(x), ref, rtol=1e-6)
    xs = np.stack([x, x + 1])
    assert_same(npfunc.vmap(rotated_pair32)(xs), loop(rotated_pair32, xs), rtol=1e-6)
    assert npfunc.jacrev(rotated_pair32)(x).dtype == np.complex64


# ---- spectra: ground states, partial transpose, non-Hermitian decay -------------------------


def ground_state_overlap(x):
    H = -np.kron(Z, Z) - x[0] * (np.kron(X, I2) + np.kron(I2, X)) - x[1] * np.kron(Z, I2)
    w, v = np.linalg.eigh(H)
    plus = np.ones(4) / 2
    return np.abs(np.vdot(plus, v[:, 0])) ** 2


def negativity(th):
    c, s = np.cos(th[0]), np.sin(th[0])
    psi = np.array([c, 0, 0, s])
    rho = (1 - th[1]) * np.outer(psi, psi.conj()) + th[1] * np.eye(4) / 4
    pt = rho.reshape(2, 2, 2, 2).transpose(0, 3, 2, 1).reshape(4, 4)
    w = np.linalg.eigvalsh(pt)
    return np.sum(np.abs(w) - w) / 2


def decay_rates(x):
    Heff = np.array([[0, x[0]], [x[0], -0.5j * x[1]]])
    w = np.linalg.eigvals(Heff)
    return np.sort(-2 * w.imag)


def test_ground_state_overlap_eigh():
    check_scalar(ground_state_overlap, np.array([0.5, 0.2]), rng.uniform(0.2, 1.0, size=(3, 2)), hess=True)


def test_negativity_partial_transpose():
    check_scalar(negativity, np.array([0.5, 0.2]), rng.uniform(0.2, 0.6, size=(3, 2)))


def test_decay_rates_eigvals():
    check_array(decay_rates, np.array([0.3, 1.0]), rng.uniform(0.1, 0.4, size=(3, 2)) + [0, 1])


# ---- refusals with working advice ------------------------------------------------------------


def tfim_gap_subset(x):
    H = -np.kron(Z, Z) - x[0] * (np.kron(X, I2) + np.kron(I2, X))
    return scipy.linalg.eigh(H, eigvals_only=True, subset_by_index=[0, 0])[0]


def test_eigh_subset_refused_with_working_fix():
    x = np.array([0.5])
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"subset_by_index.*slice"):
        npfunc.grad(tfim_gap_subset)(x)

    def fixed(x):
        H = -np.kron(Z, Z) - x[0] * (np.kron(X, I2) + np.kron(I2, X))
        return scipy.linalg.eigh(H, eigvals_only=True)[0:1][0]

    assert_same(fixed(x), tfim_gap_subset(x))
    check_scalar(fixed, x, rng.uniform(0.2, 1.0, size=(3, 1)))


def relative_entropy(x):
    rho = np.array([[x[0], 0.1], [0.1, 1 - x[0]]])
    sig = np.array([[0.6, 0.0], [0.0, 0.4]])
    return np.trace(rho @ (scipy.linalg.logm(rho) - scipy.linalg.logm(sig))).real


def test_logm_refused_under_jit_with_working_fix():
    x = np.array([0.3])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"astype\(complex\)"):
        npfunc.jit(relative_entropy)(x)
    assert_deriv(npfunc.grad(relative_entropy)(x), fd(relative_entropy, x))

    def fixed(x):
        rho = np.array([[x[0], 0.1], [0.1, 1 - x[0]]]).astype(complex)
        sig = np.array([[0.6, 0.0], [0.0, 0.4]])
        return np.trace(rho @ (scipy.linalg.logm(rho) - scipy.linalg.logm(sig))).real

    assert_same(npfunc.jit(fixed)(x), relative_entropy(x))
    assert_same(npfunc.jit(fixed)(x + 0.1), relative_entropy(x + 0.1))


# ---- vectorised superoperators, sampling, bitstrings -----------------------------------------


def lindblad_superoperator_population(x):
    """Column-stacking vec(rho) (order='F'): vec(A rho B) = (B^T kron A) vec(rho);
    the Lindbladian exponentiated with expm."""
    H = 0.5 * x[0] * X
    L = np.sqrt(x[1]) * np.array([[0, 1], [0, 0]], dtype=complex)
    eye = np.eye(2)
    LdL = L.conj().T @ L
    gen = (-1j * (np.kron(eye, H) - np.kron(H.T, eye)) + np.kron(L.conj(), L)
           - 0.5 * (np.kron(eye, LdL) + np.kron(LdL.T, eye)))
    rho0 = np.array([[0, 0], [0, 1]], dtype=complex)
    v = scipy.linalg.expm(2.0 * gen) @ rho0.flatten(order="F")
    return v.reshape(2, 2, order="F")[1, 1].real


def test_lindblad_superoperator_fortran_vec():
    check_scalar(lindblad_superoperator_population, np.array([0.5, 0.2]), rng.uniform(0.1, 1.0, size=(3, 2)))


def complex_ground_vector(x):
    H = x[0] * X + x[1] * Y + 0.3 * Z
    return np.linalg.eigh(H)[1][:, 0]


def test_complex_eigenvector_phase_is_lapacks():
    x = np.array([0.5, 0.2])
    xs = np.stack([x, x + 1, x - 0.3])
    assert_same(npfunc.jit(complex_ground_vector)(x), complex_ground_vector(x))
    assert_same(npfunc.vmap(complex_ground_vector)(xs), loop(complex_ground_vector, xs))


BITS = np.array(list(itertools.product([0, 1], repeat=3)))


def ground_configuration_weight(x):
    """Boltzmann weight of the classical ground configuration of a 3-spin chain."""
    spins = 1 - 2 * BITS
    E = x[0] * np.sum(spins[:, :-1] * spins[:, 1:], axis=1) + x[1] * spins.sum(1)
    p = np.exp(-E) / np.sum(np.exp(-E))
    return p[np.argmin(E)]


def test_ground_configuration_weight_argmin():
    x = np.array([0.5, 0.2])
    check_scalar(ground_configuration_weight, x, np.stack([x + 0.1, -x, x * 2]))


UNIFORMS = np.random.default_rng(3).random(50)


def sampled_z(x):
    """<Z> estimated from 50 shots by inverse-CDF sampling with fixed uniforms."""
    psi = np.array([np.cos(x[0] / 2), np.sin(x[0] / 2)])
    cdf = np.cumsum(psi**2)
    outcomes = np.searchsorted(cdf, UNIFORMS)
    return np.mean(1 - 2 * outcomes)


def test_shot_estimate_searchsorted():
    x = np.array([0.5, 0.2])
    jf = npfunc.jit(sampled_z)
    assert_same(jf(x), sampled_z(x))
    assert_same(jf(x + 1), sampled_z(x + 1))
    xs = np.stack([x, x + 1, x + 2])
    assert_same(npfunc.vmap(sampled_z)(xs), loop(sampled_z, xs))


def shots_with_generator(th, shots=200):
    p = np.array([np.cos(th[0] / 2), np.sin(th[0] / 2)]) ** 2
    out = np.random.default_rng(7).choice(2, size=shots, p=p)
    counts = np.bincount(out, minlength=2)
    return (counts[0] - counts[1]) / shots


def test_generator_choice_with_traced_probabilities_refused():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"choice.*npfunc\.random\.default_rng"):
        npfunc.jit(shots_with_generator)(np.array([0.5]))


# ---- refusals: complex ODE, real_if_close, scipy.sparse --------------------------------------


def tdse_populations(x):
    H = x[0] * X + x[1] * Z
    sol = scipy.integrate.solve_ivp(lambda t, y: -1j * (H @ y), (0, 1.0), np.array([1, 0], dtype=complex),
                                    rtol=1e-10, atol=1e-12)
    return np.abs(sol.y[:, -1]) ** 2


def test_complex_solve_ivp_refused_with_working_fix():
    x = np.array([0.5, 0.2])
    with pytest.raises(npfunc.errors.NpfuncError, match=r"complex y0.*real and imaginary parts"):
        npfunc.jacrev(tdse_populations)(x)

    def split(x):
        H = x[0] * X + x[1] * Z
        A = np.real(-1j * H)
        B = np.imag(-1j * H)
        M = np.block([[A, -B], [B, A]])
        sol = scipy.integrate.solve_ivp(lambda t, y: M @ y, (0, 1.0), np.array([1.0, 0, 0, 0]),
                                        t_eval=[1.0], rtol=1e-10, atol=1e-12)
        y = sol.y[:, -1]
        return y[:2] ** 2 + y[2:] ** 2

    np.testing.assert_allclose(split(x), tdse_populations(x), rtol=1e-8)
    assert_same(npfunc.jit(split)(x), split(x))
    assert_deriv(npfunc.jacrev(split)(x), fd(split, x), rtol=1e-4, atol=1e-6)


def z_via_real_if_close(x):
    psi = np.array([np.cos(x[0]), np.sin(x[0])])
    return np.real_if_close(np.vdot(psi, Z @ psi))


def test_real_if_close_refused():
    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match="real_if_close"):
        npfunc.grad(z_via_real_if_close)(np.array([0.5]))


HZZ_SPARSE = scipy.sparse.kron(Z, Z).tocsr()
HX_SPARSE = (scipy.sparse.kron(X, I2) + scipy.sparse.kron(I2, X)).tocsr()


def sparse_ising_energy(x):
    H = HZZ_SPARSE + x[0] * HX_SPARSE
    psi = np.array([np.cos(x[1]), 0, 0, np.sin(x[1])])
    return np.real(np.vdot(psi, H @ psi))


def test_sparse_matvec_with_traced_state_refused_dense_fix_works():
    x = np.array([0.5, 0.2])

    def matvec(x):
        psi = np.array([np.cos(x[1]), 0, 0, np.sin(x[1])])
        return np.real(np.vdot(psi, HZZ_SPARSE @ psi))

    with pytest.raises(npfunc.errors.ConcretizationError, match=r"csr_matrix.__matmul__"):
        npfunc.grad(matvec)(x)

    def dense(x):
        H = HZZ_SPARSE.toarray() + x[0] * HX_SPARSE.toarray()
        psi = np.array([np.cos(x[1]), 0, 0, np.sin(x[1])])
        return np.real(np.vdot(psi, H @ psi))

    assert_same(dense(x), sparse_ising_energy(x))
    check_scalar(dense, x, rng.uniform(0.1, 1.0, size=(3, 2)))


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_traced_scalar_times_sparse_matrix_is_an_npfunc_refusal(transform):
    def bell_energy(x):
        H = x[0] * HX_SPARSE + HZZ_SPARSE
        psi = np.array([1.0, 0, 0, 1]) / np.sqrt(2)
        return np.real(np.vdot(psi, H @ psi))

    x = np.array([0.5, 0.2])
    assert np.isclose(bell_energy(x), 1.0)
    with pytest.raises(npfunc.errors.NpfuncError):
        if transform == "grad":
            npfunc.grad(bell_energy)(x)
        elif transform == "jit":
            npfunc.jit(bell_energy)(x)
        else:
            npfunc.vmap(bell_energy)(np.stack([x, x + 1]))


def product_state_reduced(th):
    psi = np.kron([np.cos(th[0]), np.sin(th[0])], [np.cos(th[1]), 1j * np.sin(th[1])])
    rho = np.outer(psi, psi.conj())
    return np.trace(rho.reshape(2, 2, 2, 2), axis1=1, axis2=3).real


def test_kron_of_lists_refused_stacked_fix_works():
    th = np.array([0.5, 0.2])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.kron.*np\.stack"):
        npfunc.jit(product_state_reduced)(th)

    def fixed(th):
        psi = np.kron(np.stack([np.cos(th[0]), np.sin(th[0])]), np.stack([np.cos(th[1]), 1j * np.sin(th[1])]))
        rho = np.outer(psi, psi.conj())
        return np.trace(rho.reshape(2, 2, 2, 2), axis1=1, axis2=3).real

    assert_same(fixed(th), product_state_reduced(th))
    check_array(fixed, th, rng.uniform(-1, 1, size=(3, 2)))


@pytest.mark.xfail(strict=True, reason=(
    "the refusal for a list of traced values passed to a two-argument function says "
    "'np.kron(np.stack([x, y])) instead of np.kron([x, y])' (core/conversions.py's generic "
    "list advice, written for one-argument functions): taken literally it calls np.kron with "
    "one argument; np.einsum gets 'np.einsum(np.stack([x, y]))' and np.linalg.norm is named "
    "'np.norm'"))
def test_kron_of_lists_advice_keeps_both_arguments():
    th = np.array([0.5, 0.2])
    with pytest.raises(npfunc.errors.ConcretizationError) as info:
        npfunc.jit(product_state_reduced)(th)
    assert "np.kron(np.stack([x, y]))" not in str(info.value)


# ---- matrix trigonometric functions (fixed: twins for scipy.linalg.cosm / sinm) --------------


def rx_by_cosm_sinm(theta):
    """RX(theta) = cos(theta X / 2) - i sin(theta X / 2), with scipy.linalg.cosm/sinm
    (before the twins: refused with advice to call npfunc.scipy.linalg.expm, a function
    the program never called)."""
    A = 0.5 * theta[0] * np.real(X) + 0.5 * theta[1] * np.real(Z)
    U = scipy.linalg.cosm(A) - 1j * scipy.linalg.sinm(A)
    return np.abs(U @ np.array([1, 0], dtype=complex)) ** 2


def cosm_sinm_complex(theta):
    A = theta[0] * X + theta[1] * Y
    return np.abs(scipy.linalg.cosm(A)) + np.abs(scipy.linalg.sinm(A))


def test_rx_by_cosm_sinm():
    th = np.array([0.9, 0.4])
    check_array(rx_by_cosm_sinm, th, rng.uniform(-2, 2, size=(3, 2)))
    want = np.abs(scipy.linalg.expm(-0.5j * (th[0] * X + th[1] * Z))[:, 0]) ** 2
    np.testing.assert_allclose(rx_by_cosm_sinm(th), want, rtol=1e-12)


def test_cosm_sinm_complex_and_float32():
    th = np.array([0.7, -0.3])
    check_array(cosm_sinm_complex, th, rng.uniform(-1, 1, size=(3, 2)))
    A32 = np.array([[0.2, 0.5], [0.5, -0.1]], dtype=np.float32)
    for f in (scipy.linalg.cosm, scipy.linalg.sinm):
        assert_same(npfunc.jit(f)(A32), f(A32))
        assert_same(npfunc.vmap(f)(np.stack([A32, 2 * A32])), np.stack([f(A32), f(2 * A32)]))


# ---- returned views and Python results --------------------------------------------------------


def as_qubit_tensor(psi):
    return psi.reshape(2, 2)


def test_returned_reshape_is_a_view_of_the_argument_under_jit():
    a = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2)
    want_arg = a.copy()
    t_plain = as_qubit_tensor(want_arg)
    t_plain[1, 1] = -t_plain[1, 1]
    arg = a.copy()
    t = npfunc.jit(as_qubit_tensor)(arg)
    assert np.shares_memory(t, arg)
    t[1, 1] = -t[1, 1]
    assert_same(arg, want_arg)


def is_unitary(theta):
    U = scipy.linalg.expm(-1j * theta[0] * X)
    return np.allclose(U @ U.conj().T, np.eye(2))


@pytest.mark.xfail(strict=True, reason=(
    "np.allclose returns a Python bool; under jit the replayed result is np.bool_ (the known "
    "'Python scalar results come back as NumPy scalars under jit' limitation, here for bool)"))
def test_is_unitary_python_bool_under_jit():
    th = np.array([0.3])
    assert type(is_unitary(th)) is bool
    assert_same(npfunc.jit(is_unitary)(th), is_unitary(th))


def phase_amplitude_builtin_complex(t):
    """An amplitude built with Python's complex(re, im) from traced parts."""
    amp = complex(np.cos(t[0]), np.sin(t[0]))
    return abs(amp + 1) ** 2


def test_builtin_complex_of_traced_parts_refused_and_rewrite_works():
    t = np.array([0.3])
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"complex\(x\)"):
        npfunc.grad(phase_amplitude_builtin_complex)(t)

    def rewritten(t):
        amp = np.cos(t[0]) + 1j * np.sin(t[0])
        return abs(amp + 1) ** 2

    assert_same(rewritten(t), np.float64(phase_amplitude_builtin_complex(t)))
    check_scalar(rewritten, t, rng.uniform(-2, 2, size=(3, 1)))


@pytest.mark.xfail(strict=True, reason=(
    "complex(re, im) of traced parts: the refusal (core/conversions.py, built-in complex()) "
    "names no fix under jit and vmap (np.where / static_argnums, which do not apply) and under "
    "grad only stop_gradient, which drops the derivative the program wants; the working "
    "rewrite re + 1j * im is not named (math.*/cmath.* calls get their np twin named)"))
@pytest.mark.parametrize("transform", ["grad", "jit"])
def test_builtin_complex_refusal_names_the_1j_rewrite(transform):
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"1j"):
        getattr(npfunc, transform)(phase_amplitude_builtin_complex)(np.array([0.3]))


def krylov_populations(x):
    """psi(t) = expm(-i H t) psi0 by scipy.sparse.linalg.expm_multiply (no matrix exponential formed)."""
    H = np.kron(Z, Z) + x[0] * np.kron(X, I2)
    psi = scipy.sparse.linalg.expm_multiply(-1j * x[1] * H, np.array([1, 0, 0, 0], dtype=complex))
    return np.abs(psi) ** 2


def test_expm_multiply_eager_derivatives_and_jit_rewrite():
    """Eager transforms run SciPy's algorithm on traced values (derivatives match
    differences); under jit its data-dependent control flow refuses, and expm(A) @ v
    records."""
    x = np.array([0.6, 0.8])
    J = fd(krylov_populations, x)
    assert_deriv(npfunc.jacrev(krylov_populations)(x), J)
    assert_deriv(npfunc.jacfwd(krylov_populations)(x), J)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\)"):
        npfunc.jit(krylov_populations)(x)

    def dense(x):
        H = np.kron(Z, Z) + x[0] * np.kron(X, I2)
        return np.abs(scipy.linalg.expm(-1j * x[1] * H) @ np.array([1, 0, 0, 0], dtype=complex)) ** 2

    np.testing.assert_allclose(dense(x), krylov_populations(x), rtol=1e-12, atol=1e-15)
    check_array(dense, x, rng.uniform(0.2, 1.0, size=(3, 2)))


@pytest.mark.xfail(strict=True, reason=(
    "under jit, scipy.sparse.linalg.expm_multiply's own data-dependent control flow (its norm "
    "estimates) refuses with the generic bool(x) message, which points at the program's "
    "if/else (np.where, static_argnums) and names neither expm_multiply nor the rewrite "
    "scipy.linalg.expm(A) @ v that records"))
def test_expm_multiply_jit_refusal_names_the_scipy_function():
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"expm_multiply"):
        npfunc.jit(krylov_populations)(np.array([0.6, 0.8]))


# ---- custom_vjp with the parameter-shift rule, checkpointed layers ----------------------------


@npfunc.custom_vjp
def shifted_energy(p):
    return vqe_energy(p)


def _shifted_energy_fwd(p):
    return vqe_energy(p), p


def _shifted_energy_bwd(p, g):
    return (g * parameter_shift(vqe_energy, p),)


shifted_energy.defvjp(_shifted_energy_fwd, _shifted_energy_bwd)


def test_custom_vjp_parameter_shift_backward():
    """The hardware's gradient rule as the backward pass (its loop writes into
    np.zeros_like(params), traced under jit(grad) and vmap(grad))."""
    p = rng.uniform(-2, 2, size=6)
    ps = rng.uniform(-2, 2, size=(3, 6))
    G = fd(vqe_energy, p)
    assert_same(shifted_energy(p), vqe_energy(p))
    assert_deriv(npfunc.grad(shifted_energy)(p), G)
    jg = npfunc.jit(npfunc.grad(shifted_energy))
    assert_deriv(jg(p), G)
    assert_deriv(jg(ps[0]), fd(vqe_energy, ps[0]))
    assert_deriv(npfunc.vmap(npfunc.grad(shifted_energy))(ps), loop(lambda z: fd(vqe_energy, z), ps))
    assert_same(npfunc.vmap(shifted_energy)(ps), loop(vqe_energy, ps))


def checkpointed_vqe(p):
    def layer(psi, th):
        for q in range(3):
            psi = apply_1q_einsum(psi, ry(th[q]), q, 3)
        for q in range(2):
            psi = apply_cz(psi, q, q + 1, 3)
        return psi

    step = npfunc.checkpoint(layer)
    psi = zero_state(3)
    for th in p.reshape(-1, 3):
        psi = step(psi, th)
    return np.real(psi.conj() @ H3 @ psi)


def test_checkpointed_layers():
    p = rng.uniform(-2, 2, size=6)
    assert_same(checkpointed_vqe(p), vqe_energy(p))
    check_scalar(checkpointed_vqe, p, rng.uniform(-2, 2, size=(3, 6)), hess=True)


# ---- second derivatives of probabilities |amplitude|**2 at amplitudes that are exactly zero ---


def zz_from_probabilities(th):
    """<Z Z> from the measurement probabilities |psi|**2 of RY(a) x RX(b) |00>
    (= cos a cos b); at a = b = 0 three amplitudes are exactly zero."""
    psi = np.kron(ry(th[0]), rx(th[1])) @ np.array([1, 0, 0, 0], dtype=complex)
    p = np.abs(psi) ** 2
    return p @ np.array([1.0, -1.0, -1.0, 1.0])


def zz_from_probabilities_conj(th):
    psi = np.kron(ry(th[0]), rx(th[1])) @ np.array([1, 0, 0, 0], dtype=complex)
    p = (psi * psi.conj()).real
    return p @ np.array([1.0, -1.0, -1.0, 1.0])


def test_probability_hessian_away_from_zero_amplitudes_and_conj_spelling():
    th = np.array([0.4, -0.7])
    check_scalar(zz_from_probabilities, th, rng.uniform(-2, 2, size=(3, 2)), hess=True)
    H = fd(npfunc.grad(zz_from_probabilities_conj), np.zeros(2))
    np.testing.assert_allclose(H, -np.eye(2), atol=1e-8)
    assert_deriv(npfunc.hessian(zz_from_probabilities_conj)(np.zeros(2)), H, atol=1e-6)
    assert_deriv(npfunc.grad(zz_from_probabilities)(np.zeros(2)), np.zeros(2))


@pytest.mark.xfail(strict=True, reason=(
    "Hessian of np.abs(psi)**2 where an amplitude is exactly 0 (a circuit at theta = 0): "
    "abs's documented derivative 0 at 0 (docs/conventions.md) makes d(|z|**2) = 2|z| d|z| and "
    "its derivative 2 (d|z|)**2 vanish, so the smooth |z|**2 gets Hessian 0 in place of 2 "
    "(here -0.5 * I where central differences give -I; (psi * psi.conj()).real gives -I). "
    "Not fixable in abs's rule: any linear derivative of |z| at 0 loses (d|z|)**2 = |dz|**2"))
def test_probability_hessian_at_zero_amplitudes():
    th = np.zeros(2)
    H = fd(npfunc.grad(zz_from_probabilities), th)
    assert_deriv(npfunc.hessian(zz_from_probabilities)(th), H, atol=1e-6)


def tfim_ground_energy(h):
    H = -pauli_op("ZZ") - h[0] * (pauli_op("XI") + pauli_op("IX"))
    return np.linalg.eigvalsh(H)[0]


def test_tfim_ground_energy_and_susceptibility_away_from_zero_field():
    """E0(h) = -sqrt(1 + 4 h**2): gradient everywhere (also at the degenerate h = 0),
    second derivative away from h = 0."""
    for h in (np.array([0.0]), np.array([0.3])):
        assert_deriv(npfunc.grad(tfim_ground_energy)(h), fd(tfim_ground_energy, h))
    h = np.array([0.3])
    H = fd(npfunc.grad(tfim_ground_energy), h)
    np.testing.assert_allclose(H, [[-4 / (1 + 4 * 0.09) ** 1.5]], rtol=1e-6)
    assert_deriv(npfunc.hessian(tfim_ground_energy)(h), H, atol=1e-6)


@pytest.mark.xfail(strict=True, reason=(
    "zero-field susceptibility d2E0/dh2 at h = 0, where E0 = -sqrt(1 + 4 h**2) is smooth but "
    "doubly degenerate: eigvalsh's second derivative drops the 0/0 term inside the repeated "
    "block (documented in docs/linalg.md, 'Repeated eigenvalues'), giving -2 where the "
    "differences give -4"))
def test_tfim_zero_field_susceptibility():
    h = np.zeros(1)
    assert_deriv(npfunc.hessian(tfim_ground_energy)(h), fd(npfunc.grad(tfim_ground_energy), h), atol=1e-6)
