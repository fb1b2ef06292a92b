"""Natural programs from structural engineering and finite elements, written first as
plain NumPy/SciPy (loops, in-place assembly, preallocated buffers, early returns, dicts of
results, float32 where natural) and then run under npfunc's transforms (jit recording and
replay, vmap against a loop, grad/jacrev/jacfwd/hessian/jvp/vjp against five-point
differences, and compositions called repeatedly so that the cached pull-backs are used).

Programs:
  * trusses: 2-d element stiffness from direction cosines, global K by K[np.ix_] += in a
    loop (plain np.zeros, as the like= version), by np.add.at of all element matrices, an
    early ValueError for non-positive areas, displacements/compliance/member stresses as a
    dict, sensitivities of displacements to areas by jacrev and the adjoint formula, shape
    derivatives in node coordinates, a 3-d space truss by scipy.linalg.cho_factor, a
    float32 element, Castigliano's theorem by grad of the complementary energy;
  * beams: cantilever and simply supported formulas (Python floats, np.where for a point
    load), Euler buckling with a dict of effective lengths, a beam on an elastic
    foundation, Hermite beam elements (tip deflection, consistent mass, element matrices by
    Gauss-Legendre quadrature), natural frequencies and buckling loads by
    scipy.linalg.eigh(K, M), Rayleigh-Ritz buckling of a tapered column, a 2-d portal
    frame with 6x6 rotated elements, the three-moment equation, Guyan reduction;
  * 1-d FEM: Poisson with linear elements (tridiagonal np.diag, Gauss loads, solve_banded),
    backward-Euler heat conduction with lu_factor/lu_solve;
  * 2-d FEM: Poisson on P1 triangles (np.add.at), isoparametric Q4 element matrices by 2x2
    Gauss quadrature, a plane-stress CST cantilever with von Mises stress recovery;
  * topology optimisation: SIMP compliance and its analytic sensitivity (top88 port with a
    dense K), a density filter, Heaviside projection, the OC update with its bisection
    loop, scipy.sparse assembly;
  * dynamics: spring-mass modal analysis, frequency response with complex solve,
    Rayleigh damping coefficients, Newmark-beta integration into a history buffer,
    response spectra by vmap over periods;
  * plasticity: 1-d return mapping over a strain history (Python if) and vectorised with
    np.where (consistent tangent by vmap(grad)), J2 radial return with its tangent by jacfwd;
  * misc: tapered bar by scipy.integrate.quad, cantilever-with-tip-mass frequency by
    brentq, Kirchhoff plate Navier series, penalty supports applied in place on the
    arguments, a deflection curve through CubicSpline, shear and moment diagrams by
    cumulative_trapezoid with the largest moment located by argmax and the strain energy by
    simpson (a dict), a geometrically nonlinear two-bar (von Mises) truss by Newton-Raphson
    with an early break and by scipy.optimize.minimize/root/fsolve/newton, FORM reliability
    of a beam with scipy.stats.norm, float32 modal frequencies, a flexibility matrix with an
    in-place diagonal update and the slogdet stability sign.

Findings fixed here (each with its regression test): a scipy.sparse matrix built from traced
entries (top88's coo_matrix((sK, (iK, jK))).tocsc(), or .toarray()) was refused naming
H.toarray() @ v, which converts the same entries and is refused again (the refusal now names
the dense assembly from the triplets with np.add.at: core/conversions.py conversion_fix);
vmap of scipy.optimize.root/fsolve/newton/fixed_point/minimize solved the batch as one stacked
SciPy problem, so an element past the truss's limit point (failing or snapping through on its
own) moved the other elements off their own solutions, silently (each element is now solved
by the plain program's own call: scipy/optimize/_implicit.py one_by_one).  Refusals tested
for naming a working fix: plain np.zeros buffers (like= / np.zeros_like(x, shape=)), Python
control flow on values under jit/vmap (an area check, OC bisection, return mapping, Newton's
break), int()/float() of computed values, x[i] of a plain array with a traced argmax index,
minimize's non-converged solution under grad.  Rounding: the generalised eigenproblem is
reduced by npfunc's own Cholesky operations (SciPy's values to the rounding its conditioning
allows, 3e-12 on the lowest cantilever frequency); jit's replay of gradients through solves
agrees with its recording call to 1e-13..1e-11, eager transforms bit for bit.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize

import npfunc
from natural_checks import assert_deriv, assert_same, fd


def assert_jit_replays(f, *argsets, rtol=1e-12):
    """One jit object on each argument set (the first records, the others replay)."""
    jf = npfunc.jit(f)
    for args in argsets:
        got, want = jf(*args), f(*args)
        _same_tree(got, want, rtol)


def _same_tree(got, want, rtol=1e-12):
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            _same_tree(got[k], want[k], rtol)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _same_tree(g, w, rtol)
    else:
        assert_same(got, want, rtol=rtol)


def assert_repeats(tf, inputs, reference, n=5, rtol=1e-6, atol=1e-8, replay_rtol=0.0):
    """Call the transformed function n times, alternating between inputs; every call agrees
    with the reference (five-point differences) and with its first call, bit for bit
    (eager transforms), or to rounding (replay_rtol, for jit: its replay is compiled code
    whose sums may associate differently from the recording call)."""
    first = {}
    for k in range(n):
        for j, args in enumerate(inputs):
            got = tf(*args)
            got_leaves = [np.asarray(g) for g in (got if isinstance(got, tuple) else (got,))]
            if j not in first:
                first[j] = got_leaves
                ref = reference(*args)
                refs = ref if isinstance(ref, tuple) else (ref,)
                for g, r in zip(got_leaves, refs):
                    assert_deriv(g, r, rtol=rtol, atol=atol)
            else:
                for g, f0 in zip(got_leaves, first[j]):
                    if replay_rtol:
                        np.testing.assert_allclose(g, f0, rtol=replay_rtol, atol=0, err_msg=f"call {k} of input {j}")
                    else:
                        np.testing.assert_array_equal(g, f0, err_msg=f"call {k} of input {j}")


# =============================================================================================
# 1. Trusses
# =============================================================================================

E_MOD = 200.0   # GPa-like units keep five-point differences well scaled

TRUSS_NODES = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.5, 0.8], [1.5, 0.8]])
TRUSS_ELEMS = np.array([[0, 1], [1, 2], [0, 3], [1, 3], [1, 4], [2, 4], [3, 4]])
TRUSS_FIXED = np.array([0, 1, 5])          # pin at node 0, roller at node 2
TRUSS_LOAD = np.zeros(10)
TRUSS_LOAD[3] = -1.0                        # node 1 downwards
TRUSS_LOAD[6] = 0.3                         # node 3 sideways
AREAS = np.array([1.0, 1.2, 0.9, 0.7, 0.8, 1.1, 1.3])


def truss_element_stiffness(xy1, xy2, EA):
    d = xy2 - xy1
    L = np.linalg.norm(d)
    c, s = d / L
    t = np.array([-c, -s, c, s])
    return EA / L * np.outer(t, t)


def assemble_truss_plain(nodes, elems, areas, E=E_MOD):
    ndof = 2 * len(nodes)
    K = np.zeros((ndof, ndof))
    for e, (i, j) in enumerate(elems):
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        K[np.ix_(dofs, dofs)] += truss_element_stiffness(nodes[i], nodes[j], E * areas[e])
    return K


def assemble_truss(nodes, elems, areas, E=E_MOD):
    ndof = 2 * len(nodes)
    K = np.zeros((ndof, ndof), like=areas)
    for e, (i, j) in enumerate(elems):
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        K[np.ix_(dofs, dofs)] += truss_element_stiffness(nodes[i], nodes[j], E * areas[e])
    return K


def assemble_truss_addat(nodes, elems, areas, E=E_MOD):
    d = nodes[elems[:, 1]] - nodes[elems[:, 0]]
    L = np.sqrt((d ** 2).sum(axis=1))
    cs = d / L[:, None]
    t = np.concatenate([-cs, cs], axis=1)
    ke = (E * areas / L)[:, None, None] * t[:, :, None] * t[:, None, :]
    dofs = np.stack([2 * elems[:, 0], 2 * elems[:, 0] + 1, 2 * elems[:, 1], 2 * elems[:, 1] + 1], axis=1)
    ndof = 2 * len(nodes)
    K = np.zeros((ndof, ndof), like=ke)
    np.add.at(K, (dofs[:, :, None], dofs[:, None, :]), ke)
    return K


def truss_solve(areas, nodes=TRUSS_NODES):
    K = assemble_truss(nodes, TRUSS_ELEMS, areas)
    ndof = K.shape[0]
    free = np.setdiff1d(np.arange(ndof), TRUSS_FIXED)
    u = np.zeros(ndof, like=areas)
    u[free] = np.linalg.solve(K[np.ix_(free, free)], TRUSS_LOAD[free])
    return u


def truss_compliance(areas):
    u = truss_solve(areas)
    return TRUSS_LOAD @ u


def truss_compliance_checked(areas):
    if np.any(areas <= 0):
        raise ValueError("member areas must be positive")
    return truss_compliance(areas)


def truss_compliance_addat(areas, nodes=TRUSS_NODES):
    K = assemble_truss_addat(nodes, TRUSS_ELEMS, areas)
    free = np.setdiff1d(np.arange(K.shape[0]), TRUSS_FIXED)
    uf = np.linalg.solve(K[np.ix_(free, free)], TRUSS_LOAD[free])
    return TRUSS_LOAD[free] @ uf


def truss_member_report(areas, sigma_y=2.5, plain_numbers=True):
    u = truss_solve(areas)
    stress = np.empty(len(TRUSS_ELEMS), like=areas)
    for e, (i, j) in enumerate(TRUSS_ELEMS):
        d = TRUSS_NODES[j] - TRUSS_NODES[i]
        L = np.hypot(d[0], d[1])
        c, s = d / L
        elong = c * (u[2 * j] - u[2 * i]) + s * (u[2 * j + 1] - u[2 * i + 1])
        stress[e] = E_MOD * elong / L
    util = np.abs(stress) / sigma_y
    volume = np.sum(areas * np.linalg.norm(TRUSS_NODES[TRUSS_ELEMS[:, 1]] - TRUSS_NODES[TRUSS_ELEMS[:, 0]], axis=1))
    if plain_numbers:
        return {"stress": stress, "max_util": util.max(), "critical": int(np.argmax(util)), "volume": float(volume)}
    return {"stress": stress, "max_util": util.max(), "critical": np.argmax(util), "volume": volume}


def truss_adjoint_sensitivity(areas):
    """dC/dA_e = -u_e^T k_e u_e / A_e (k_e linear in A_e), written by hand."""
    u = truss_solve(areas)
    dc = np.zeros(len(areas))
    for e, (i, j) in enumerate(TRUSS_ELEMS):
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        ke = truss_element_stiffness(TRUSS_NODES[i], TRUSS_NODES[j], E_MOD)
        dc[e] = -u[dofs] @ ke @ u[dofs]
    return dc


def test_truss_plain_buffer_matches_like_fix():
    """K = np.zeros(...) assembled by K[np.ix_] += in a loop takes the traced element
    matrices: jit, vmap and grad/jacrev of the plain program give NumPy's values and the
    derivatives of the like= version (and of five-point differences)."""
    K = assemble_truss_plain(TRUSS_NODES, TRUSS_ELEMS, AREAS)
    assert_same(assemble_truss(TRUSS_NODES, TRUSS_ELEMS, AREAS), K)
    plain = lambda a: assemble_truss_plain(TRUSS_NODES, TRUSS_ELEMS, a)  # noqa: E731
    fixed = lambda a: assemble_truss(TRUSS_NODES, TRUSS_ELEMS, a)  # noqa: E731
    assert_jit_replays(plain, (AREAS,), (AREAS * 1.7,), (AREAS[::-1].copy(),))
    designs = np.stack([AREAS, AREAS * 1.1, AREAS[::-1]])
    assert_same(npfunc.vmap(plain)(designs), np.stack([plain(a) for a in designs]))
    W = np.cos(np.arange(K.size)).reshape(K.shape)  # (K.sum() is 0 for every area)
    for reduce in (np.trace, lambda K: (W * K).sum()):
        g = npfunc.grad(lambda a: reduce(plain(a)))(AREAS)
        g_fix = npfunc.grad(lambda a: reduce(fixed(a)))(AREAS)
        np.testing.assert_allclose(g, g_fix, rtol=1e-13, atol=1e-13)
        assert_deriv(g, fd(lambda a: reduce(plain(a)), AREAS))
    J = npfunc.jacrev(plain)(AREAS)
    np.testing.assert_allclose(J, npfunc.jacrev(fixed)(AREAS), rtol=1e-13, atol=1e-13)
    assert_deriv(J, fd(plain, AREAS))


def test_truss_assembly_addat_matches_loop_and_jit():
    want = assemble_truss_plain(TRUSS_NODES, TRUSS_ELEMS, AREAS)
    np.testing.assert_allclose(assemble_truss_addat(TRUSS_NODES, TRUSS_ELEMS, AREAS), want, rtol=1e-13, atol=1e-13)
    assert_jit_replays(lambda a: assemble_truss_addat(TRUSS_NODES, TRUSS_ELEMS, a), (AREAS,), (AREAS[::-1].copy(),))
    assert_jit_replays(lambda a: assemble_truss(TRUSS_NODES, TRUSS_ELEMS, a), (AREAS,), (AREAS * 2,))


def test_truss_displacements_jacrev_jacfwd_and_early_error():
    u = truss_solve(AREAS)
    assert_jit_replays(truss_solve, (AREAS,), (AREAS + 0.1,))
    J = fd(truss_solve, AREAS)
    assert_deriv(npfunc.jacrev(truss_solve)(AREAS), J)
    assert_deriv(npfunc.jacfwd(truss_solve)(AREAS), J)
    # the area check is an early Python raise, as in the plain program (eager transforms
    # see the value; jit refuses the branch on a traced value and names the fixes)
    bad = AREAS.copy()
    bad[2] = -0.1
    with pytest.raises(ValueError, match="positive"):
        truss_compliance_checked(bad)
    with pytest.raises(ValueError, match="positive"):
        npfunc.grad(truss_compliance_checked)(bad)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"np.where.*outside vmap"):
        npfunc.vmap(truss_compliance_checked)(np.stack([AREAS, bad]))
    assert_deriv(npfunc.grad(truss_compliance_checked)(AREAS), fd(truss_compliance, AREAS))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np.where.*outside jit"):
        npfunc.jit(truss_compliance_checked)(AREAS)
    assert u[TRUSS_FIXED].tolist() == [0.0, 0.0, 0.0]


def test_truss_compliance_grad_is_adjoint_and_repeats():
    c = truss_compliance(AREAS)
    assert isinstance(c, np.float64)
    assert_same(npfunc.jit(truss_compliance)(AREAS), c)
    g = npfunc.grad(truss_compliance)(AREAS)
    np.testing.assert_allclose(g, truss_adjoint_sensitivity(AREAS), rtol=1e-10)
    a2 = AREAS * 1.3
    assert_repeats(npfunc.grad(truss_compliance), [(AREAS,), (a2,)], lambda a: fd(truss_compliance, a))
    assert_repeats(npfunc.hessian(truss_compliance), [(AREAS,), (a2,)],
                   lambda a: fd(lambda b: fd(truss_compliance, b, 1e-4), a, 1e-4), rtol=1e-5)
    v = np.linspace(-1, 1, 7)
    hvp = lambda a: npfunc.jvp(npfunc.grad(truss_compliance), (a,), (v,))[1]
    assert_repeats(hvp, [(AREAS,), (a2,)], lambda a: fd(lambda b: fd(truss_compliance, b, 1e-4), a, 1e-4) @ v,
                   rtol=1e-5)
    assert_repeats(npfunc.jit(npfunc.grad(truss_compliance)), [(AREAS,), (a2,)], truss_adjoint_sensitivity,
                   replay_rtol=1e-13)


def test_truss_compliance_vmap_over_designs_and_addat_shape_derivative():
    designs = np.stack([AREAS, AREAS * 1.1, AREAS[::-1]])
    want = np.stack([truss_compliance(a) for a in designs])
    assert_same(npfunc.vmap(truss_compliance)(designs), want)
    assert_same(npfunc.vmap(truss_compliance, in_dims=1)(designs.T.copy()), want)
    pg = npfunc.vmap(npfunc.grad(truss_compliance))(designs)
    assert_deriv(pg, np.stack([fd(truss_compliance, a) for a in designs]))
    assert_repeats(npfunc.jit(npfunc.vmap(npfunc.grad(truss_compliance))), [(designs,), (designs * 0.9,)],
                   lambda d: np.stack([truss_adjoint_sensitivity(a) for a in d]), replay_rtol=1e-13)
    # shape derivative: node coordinates as the variable
    f = lambda xy: truss_compliance_addat(AREAS, xy.reshape(-1, 2))
    x0 = TRUSS_NODES.ravel().copy()
    assert_same(npfunc.jit(f)(x0), f(x0))
    assert_deriv(npfunc.grad(f)(x0), fd(f, x0), atol=1e-9)
    assert_deriv(npfunc.vjp(f, x0)[1](1.0)[0], fd(f, x0), atol=1e-9)


def test_truss_member_report_dict_types():
    # int() / float() of computed values: jit and vmap refuse and name the fixes
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"int\(x\).*outside jit"):
        npfunc.jit(truss_member_report)(AREAS)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"drop the int\(\)"):
        npfunc.vmap(truss_member_report)(np.stack([AREAS, AREAS * 2]))
    report = lambda a: truss_member_report(a, plain_numbers=False)
    assert_jit_replays(report, (AREAS,), (AREAS[::-1].copy(),))
    # float() of the (differentiated) volume under grad: refused, naming stop_gradient
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"float\(x\).*stop_gradient"):
        npfunc.grad(lambda a: truss_member_report(a)["max_util"])(AREAS)
    seen = {}
    def max_util(a):
        r = report(a)
        seen.update(r)
        return r["max_util"]
    g = npfunc.grad(max_util)(AREAS)
    assert_deriv(g, fd(lambda a: report(a)["max_util"], AREAS))
    assert seen["critical"] == report(AREAS)["critical"]
    designs = np.stack([AREAS, AREAS * 2, AREAS[::-1]])
    batched = npfunc.vmap(report)(designs)
    _same_tree(batched, {k: np.stack([report(a)[k] for a in designs]) for k in report(AREAS)})


# ---- 3-d space truss by Cholesky --------------------------------------------------------------

SPACE_NODES = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.9, 0.0], [0.5, 0.3, 1.2]])
SPACE_ELEMS = np.array([[0, 3], [1, 3], [2, 3], [0, 1], [1, 2], [0, 2]])


def space_truss_apex(areas, load=np.array([0.2, -0.1, -1.0])):
    K = np.zeros((12, 12), like=areas)
    for e, (i, j) in enumerate(SPACE_ELEMS):
        d = SPACE_NODES[j] - SPACE_NODES[i]
        L = np.sqrt(d @ d)
        t = np.concatenate([-d / L, d / L])
        dofs = np.r_[3 * i:3 * i + 3, 3 * j:3 * j + 3]
        K[np.ix_(dofs, dofs)] += E_MOD * areas[e] / L * np.outer(t, t)
    # apex free; base nodes pinned except node 1 sliding in x, node 2 sliding in x and y
    free = np.array([3, 6, 7, 9, 10, 11])
    f = np.zeros(12, like=load)
    f[9:12] = load
    c = scipy.linalg.cho_factor(K[np.ix_(free, free)])
    u = scipy.linalg.cho_solve(c, f[free])
    return u[-3:]


def test_space_truss_cholesky():
    a = np.array([1.0, 1.1, 0.9, 0.5, 0.6, 0.7])
    assert_jit_replays(space_truss_apex, (a,), (a * 1.5,))
    J = fd(space_truss_apex, a)
    assert_deriv(npfunc.jacrev(space_truss_apex)(a), J)
    assert_deriv(npfunc.jacfwd(space_truss_apex)(a), J)
    # tip deflection under a batch of loads (in_dims on the second argument)
    loads = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    assert_same(npfunc.vmap(space_truss_apex, in_dims=(None, 0))(a, loads),
                np.stack([space_truss_apex(a, p) for p in loads]))


# ---- float32 element --------------------------------------------------------------------------


def test_truss_element_float32_stays_float32():
    xy1 = np.array([0.0, 0.0], dtype=np.float32)
    xy2 = np.array([0.6, 0.8], dtype=np.float32)
    EA = np.float32(150.0)
    want = truss_element_stiffness(xy1, xy2, EA)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(truss_element_stiffness)(xy1, xy2, EA), want, rtol=1e-6)
    assert_same(npfunc.jit(truss_element_stiffness)(xy1, xy2 * 2, EA), truss_element_stiffness(xy1, xy2 * 2, EA), rtol=1e-6)
    batch = np.stack([xy2, xy2 * 2, xy2[::-1].copy()])
    assert_same(npfunc.vmap(truss_element_stiffness, in_dims=(None, 0, None))(xy1, batch, EA),
                np.stack([truss_element_stiffness(xy1, b, EA) for b in batch]), rtol=1e-6)
    g = npfunc.grad(lambda p: truss_element_stiffness(xy1, p, EA)[0, 0])(xy2)
    assert g.dtype == np.float32


# ---- Castigliano on a two-bar truss -------------------------------------------------------------


def two_bar_complementary_energy(P, angle=np.deg2rad(35.0), L=1.0, EA=100.0):
    """Two symmetric bars meeting at a loaded apex; member forces by statics, energy
    U* = sum N^2 L / (2 EA)."""
    A = np.array([[np.sin(angle), np.sin(angle)], [np.cos(angle), -np.cos(angle)]])
    N = np.linalg.solve(A, np.array([P, 0.0]))
    return np.sum(N ** 2 * L / (2 * EA))


def two_bar_fe_deflection(P, angle=np.deg2rad(35.0), L=1.0, EA=100.0):
    apex = np.array([0.0, 0.0])
    supports = [np.array([-L * np.cos(angle), L * np.sin(angle)]), np.array([L * np.cos(angle), L * np.sin(angle)])]
    K = np.zeros((2, 2))
    for s in supports:
        d = apex - s
        n = d / np.linalg.norm(d)
        K += EA / L * np.outer(n, n)
    return -np.linalg.solve(K, np.array([0.0, -1.0]))[1] * P


def test_castigliano_deflection_is_grad_of_complementary_energy():
    P = 2.5
    delta = npfunc.grad(two_bar_complementary_energy)(P)
    np.testing.assert_allclose(delta, two_bar_fe_deflection(P), rtol=1e-12)
    flex = lambda p: fd(two_bar_complementary_energy, np.array(p))
    assert_repeats(npfunc.grad(npfunc.grad(two_bar_complementary_energy)), [(P,), (0.7,)],
                   lambda p: two_bar_fe_deflection(1.0), rtol=1e-10)
    assert_repeats(npfunc.grad(two_bar_complementary_energy), [(P,), (np.float64(0.7),)], flex)
    assert_same(npfunc.jit(two_bar_complementary_energy)(np.float64(P)), two_bar_complementary_energy(np.float64(P)))
    # the grad of a Python-float argument has the plain derivative's type
    assert type(npfunc.grad(two_bar_complementary_energy)(np.float64(P))) is np.float64


# =============================================================================================
# 2. Beams and frames
# =============================================================================================


def cantilever_tip(P, L, E, b, h):
    """Tip deflection of a rectangular cantilever under an end load."""
    I = b * h ** 3 / 12
    return P * L ** 3 / (3 * E * I)


def ss_beam_deflection(x, P, a, L=4.0, EI=50.0):
    """Simply supported beam, point load P at x = a: deflection along x (two branches)."""
    b = L - a
    left = P * b * x * (L ** 2 - b ** 2 - x ** 2) / (6 * L * EI)
    right = P * a * (L - x) * (2 * L * x - x ** 2 - a ** 2) / (6 * L * EI)
    return np.where(x <= a, left, right)


EFFECTIVE_LENGTH = {"pinned": 1.0, "fixed": 0.5, "cantilever": 2.0, "fixed-pinned": 0.699}


def euler_buckling(EI, L, support="pinned"):
    return np.pi ** 2 * EI / (EFFECTIVE_LENGTH[support] * L) ** 2


def winkler_beam(x, P, k, EI):
    """Infinite beam on an elastic foundation under a point load at x = 0 (Hetenyi)."""
    beta = (k / (4 * EI)) ** 0.25
    t = beta * np.abs(x)
    return P * beta / (2 * k) * np.exp(-t) * (np.cos(t) + np.sin(t))


def test_cantilever_formula_python_floats_and_grad_in_depth():
    args = (2.0, 3.0, 70.0, 0.1, 0.3)
    want = cantilever_tip(*args)
    assert type(want) is float
    got = npfunc.jit(cantilever_tip)(*args)
    assert_same(got, want)
    f = lambda h: cantilever_tip(2.0, 3.0, 70.0, 0.1, h)
    assert_repeats(npfunc.grad(f), [(0.3,), (0.25,)], lambda h: fd(f, np.array(h)))
    assert_repeats(npfunc.grad(npfunc.grad(f)), [(0.3,), (0.25,)], lambda h: 48 * 2.0 * 27.0 / (70.0 * 0.1) * h ** -5,
                   rtol=1e-12)
    g = npfunc.grad(cantilever_tip, argnums=(0, 4))(*args)
    assert isinstance(g, tuple) and len(g) == 2
    assert_deriv(g[0], want / 2.0, rtol=1e-12)
    h = np.float32(0.3)
    assert_same(npfunc.jit(f)(h), f(h), rtol=1e-6)


def test_simply_supported_beam_two_branches():
    x = np.linspace(0.0, 4.0, 9)
    want = ss_beam_deflection(x, 10.0, 1.5)
    assert_jit_replays(ss_beam_deflection, (x, 10.0, 1.5), (x[::-1].copy(), 7.0, 2.5))
    # maximum deflection moves with the load position: derivative along a, elementwise in x
    da = npfunc.jacfwd(ss_beam_deflection, argnums=2)(x, 10.0, 1.5)
    assert_deriv(da, fd(lambda a: ss_beam_deflection(x, 10.0, a), np.array(1.5)).ravel(), atol=1e-8)
    # slopes along the beam by vmap(grad) (0-d x per sample), both branches and x = a itself
    slopes = npfunc.vmap(npfunc.grad(ss_beam_deflection), in_dims=(0, None, None))(x, 10.0, 1.5)
    assert_deriv(slopes, np.array([fd(lambda s: ss_beam_deflection(s, 10.0, 1.5), np.array(xi)) for xi in x]).ravel())
    # a batch of loads and positions (in_dims on the second and third arguments)
    P = np.array([1.0, 2.0, 3.0])
    a = np.array([1.0, 2.0, 3.0])
    assert_same(npfunc.vmap(ss_beam_deflection, in_dims=(None, 0, 0))(x, P, a),
                np.stack([ss_beam_deflection(x, p, ai) for p, ai in zip(P, a)]))
    assert want[0] == 0.0 and want[-1] == 0.0


def test_euler_buckling_dict_of_lengths():
    for support in EFFECTIVE_LENGTH:
        assert_same(npfunc.jit(euler_buckling, static_argnums=2)(50.0, 3.0, support), euler_buckling(50.0, 3.0, support))
        assert_deriv(npfunc.grad(euler_buckling, argnums=1)(50.0, 3.0, support),
                     fd(lambda L: euler_buckling(50.0, L, support), np.array(3.0)).ravel()[0])
    EI = np.array([10.0, 20.0, 40.0])
    assert_same(npfunc.vmap(euler_buckling, in_dims=(0, None, None))(EI, 3.0, "fixed"),
                np.stack([euler_buckling(e, 3.0, "fixed") for e in EI]))


def test_winkler_beam_at_and_around_the_load():
    x = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 4.0])
    assert_jit_replays(winkler_beam, (x, 5.0, 10.0, 20.0), (x * 2, 4.0, 12.0, 30.0))
    # slope along x, including x = 0 where |x| has no derivative but w has slope 0
    slopes = npfunc.vmap(npfunc.grad(winkler_beam), in_dims=(0, None, None, None))(x, 5.0, 10.0, 20.0)
    assert_deriv(slopes, np.array([fd(lambda s: winkler_beam(s, 5.0, 10.0, 20.0), np.array(xi)) for xi in x]).ravel())
    assert slopes[2] == 0.0
    # curvature (bending moment / EI) by grad(grad) of a 0-d x, called repeatedly
    curv = npfunc.grad(npfunc.grad(winkler_beam))
    assert_repeats(curv, [(0.3, 5.0, 10.0, 20.0), (1.0, 5.0, 10.0, 20.0)],
                   lambda s, *r: fd(lambda t: fd(lambda q: winkler_beam(q, *r), t, 1e-4), np.array(s), 1e-4).ravel()[0],
                   rtol=1e-6)
    # foundation modulus sensitivity under the load
    f = lambda k: winkler_beam(0.0, 5.0, k, 20.0)
    assert_deriv(npfunc.grad(f)(10.0), fd(f, np.array(10.0)).ravel()[0])


# ---- Hermite beam elements ----------------------------------------------------------------------


def beam_element_k(EI, L):
    return EI / L ** 3 * np.array([[12.0, 6 * L, -12.0, 6 * L],
                                   [6 * L, 4 * L ** 2, -6 * L, 2 * L ** 2],
                                   [-12.0, -6 * L, 12.0, -6 * L],
                                   [6 * L, 2 * L ** 2, -6 * L, 4 * L ** 2]])


def beam_element_m(rhoA, L):
    return rhoA * L / 420 * np.array([[156.0, 22 * L, 54.0, -13 * L],
                                      [22 * L, 4 * L ** 2, 13 * L, -3 * L ** 2],
                                      [54.0, 13 * L, 156.0, -22 * L],
                                      [-13 * L, -3 * L ** 2, -22 * L, 4 * L ** 2]])


def beam_element_kg(L):
    """Geometric stiffness per unit compressive axial force."""
    return 1 / (30 * L) * np.array([[36.0, 3 * L, -36.0, 3 * L],
                                    [3 * L, 4 * L ** 2, -3 * L, -L ** 2],
                                    [-36.0, -3 * L, 36.0, -3 * L],
                                    [3 * L, -L ** 2, -3 * L, 4 * L ** 2]])


def hermite_shapes(xi, L):
    """Cubic Hermite shape functions and second derivatives (d2/dx2) at xi in [-1, 1]."""
    N = np.array([(1 - xi) ** 2 * (2 + xi) / 4, L * (1 - xi) ** 2 * (1 + xi) / 8,
                  (1 + xi) ** 2 * (2 - xi) / 4, -L * (1 + xi) ** 2 * (1 - xi) / 8])
    B = np.array([6 * xi / L ** 2, (3 * xi - 1) / L, -6 * xi / L ** 2, (3 * xi + 1) / L])
    return N, B


def beam_element_by_quadrature(EI, rhoA, L, ngauss=4):
    xg, wg = np.polynomial.legendre.leggauss(ngauss)
    ke = np.zeros((4, 4))
    me = np.zeros((4, 4))
    for x, w in zip(xg, wg):
        N, B = hermite_shapes(x, L)
        ke = ke + w * L / 2 * EI * np.outer(B, B)
        me = me + w * L / 2 * rhoA * np.outer(N, N)
    return ke, me


def cantilever_fe(EI_elems, L=2.0, P=1.0):
    """Cantilever of len(EI_elems) Hermite elements, clamped at x = 0, tip load P;
    returns the tip deflection and rotation."""
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2), like=EI_elems)
    for e in range(n):
        K[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_k(EI_elems[e], h)
    f = np.zeros(2 * n + 2)
    f[-2] = P
    u = np.linalg.solve(K[2:, 2:], f[2:])
    return u[-2], u[-1]


def cantilever_modes(EI_elems, rhoA=1.0, L=2.0, nmodes=3):
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2), like=EI_elems)
    M = np.zeros_like(K)
    for e in range(n):
        s = slice(2 * e, 2 * e + 4)
        K[s, s] += beam_element_k(EI_elems[e], h)
        M[s, s] += beam_element_m(rhoA, h)
    lam = scipy.linalg.eigh(K[2:, 2:], M[2:, 2:], eigvals_only=True)
    return np.sqrt(lam[:nmodes]) / (2 * np.pi)


def column_buckling_fe(EI_elems, L=3.0):
    """Pinned-pinned column: smallest lambda of K phi = lambda KG phi."""
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2), like=EI_elems)
    KG = np.zeros((2 * n + 2, 2 * n + 2))
    for e in range(n):
        K[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_k(EI_elems[e], h)
        KG[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_kg(h)
    keep = np.r_[1:2 * n, 2 * n + 1]          # w = 0 at both ends
    lam, modes = scipy.linalg.eigh(K[np.ix_(keep, keep)], KG[np.ix_(keep, keep)])
    return lam[0]


def column_buckling_sensitivity(EI_elems, L=3.0):
    """The eigenvalue sensitivity written by hand: dlam/dEI_e = phi^T dK/dEI_e phi with
    phi normalised to phi^T KG phi = 1 (scipy's eigh normalises so)."""
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2))
    KG = np.zeros_like(K)
    for e in range(n):
        K[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_k(EI_elems[e], h)
        KG[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_kg(h)
    keep = np.r_[1:2 * n, 2 * n + 1]
    lam, modes = scipy.linalg.eigh(K[np.ix_(keep, keep)], KG[np.ix_(keep, keep)])
    phi = np.zeros(2 * n + 2)
    phi[keep] = modes[:, 0]
    return np.array([phi[2 * e:2 * e + 4] @ beam_element_k(1.0, h) @ phi[2 * e:2 * e + 4] for e in range(n)])


def test_cantilever_fe_tip_is_exact_and_sensitivities():
    EI = np.array([10.0, 12.0, 9.0, 11.0])
    tip, rot = cantilever_fe(np.full(4, 10.0))
    np.testing.assert_allclose(tip, 1.0 * 2.0 ** 3 / (3 * 10.0), rtol=1e-12)
    np.testing.assert_allclose(rot, 1.0 * 2.0 ** 2 / (2 * 10.0), rtol=1e-12)
    assert_jit_replays(cantilever_fe, (EI,), (EI * 2,))
    J = fd(lambda e: np.array(cantilever_fe(e)), EI)
    got = npfunc.jacrev(cantilever_fe)(EI)
    assert isinstance(got, tuple)
    assert_deriv(np.stack(got), J)
    assert_deriv(np.stack(npfunc.jacfwd(cantilever_fe)(EI)), J)
    tip_only = lambda e: cantilever_fe(e)[0]
    # tip = sum_e c_e / EI_e, c_e = int_e M^2 dx (unit-load method): the Hessian is diag(2 c / EI^3)
    xa = np.linspace(0.0, 2.0, 5)
    c = ((2.0 - xa[:-1]) ** 3 - (2.0 - xa[1:]) ** 3) / 3
    assert_repeats(npfunc.hessian(tip_only), [(EI,), (EI * 1.5,)], lambda e: np.diag(2 * c / e ** 3),
                   rtol=1e-12, atol=1e-16)
    # vjp with both cotangents
    out, pull = npfunc.vjp(cantilever_fe, EI)
    _same_tree(out, cantilever_fe(EI))
    assert_deriv(pull((1.0, 0.5))[0], np.array([1.0, 0.5]) @ J)


def test_beam_element_by_gauss_quadrature_matches_closed_form():
    ke, me = beam_element_by_quadrature(10.0, 2.0, 0.5)
    np.testing.assert_allclose(ke, beam_element_k(10.0, 0.5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(me, beam_element_m(2.0, 0.5), rtol=1e-12, atol=1e-14)
    assert_jit_replays(beam_element_by_quadrature, (10.0, 2.0, 0.5), (7.0, 3.0, 0.8))
    jk = npfunc.jacfwd(lambda L: beam_element_by_quadrature(10.0, 2.0, L)[0])(0.5)
    assert_deriv(jk, fd(lambda L: beam_element_by_quadrature(10.0, 2.0, L)[0], np.array(0.5)).reshape(4, 4))
    jm = npfunc.jacrev(lambda L: beam_element_by_quadrature(10.0, 2.0, L)[1])(0.5)
    assert_deriv(jm, fd(lambda L: beam_element_m(2.0, L), np.array(0.5)).reshape(4, 4), atol=1e-10)
    lengths = np.array([0.3, 0.5, 0.9])
    assert_same(npfunc.vmap(beam_element_by_quadrature, in_dims=(None, None, 0))(10.0, 2.0, lengths),
                tuple(np.stack(m) for m in zip(*[beam_element_by_quadrature(10.0, 2.0, L) for L in lengths])))


def test_cantilever_frequencies_eigh_generalised():
    EI = np.array([10.0, 11.0, 9.0, 10.5, 10.0])
    freqs = cantilever_modes(np.full(5, 10.0))
    # Euler-Bernoulli: f1 = 1.8751^2 / (2 pi L^2) sqrt(EI / rhoA)
    np.testing.assert_allclose(freqs[0], 1.87510407 ** 2 / (2 * np.pi * 4.0) * np.sqrt(10.0), rtol=1e-4)
    # the generalised problem is reduced by M's Cholesky factor as LAPACK's sygvd does, in
    # npfunc's own operations: the lowest eigenvalue agrees to the rounding its conditioning
    # allows (a plain NumPy reduction differs from SciPy's by 7.5e-13 relative there too)
    assert_jit_replays(cantilever_modes, (EI,), (EI * 1.2,), rtol=3e-12)
    J = fd(cantilever_modes, EI, 1e-3)   # (a wider step: the eigenvalues carry rounding noise)
    assert_deriv(npfunc.jacrev(cantilever_modes)(EI), J)
    assert_deriv(npfunc.jacfwd(cantilever_modes)(EI), J)
    f1 = lambda e: cantilever_modes(e)[0]
    assert_repeats(npfunc.grad(f1), [(EI,), (EI * 0.8,)], lambda e: fd(f1, e, 1e-3))
    batch = np.stack([EI, EI * 2, EI[::-1]])
    assert_same(npfunc.vmap(cantilever_modes)(batch), np.stack([cantilever_modes(e) for e in batch]), rtol=3e-12)


def test_column_buckling_generalised_eigenvalue():
    EI = np.array([5.0, 6.0, 7.0, 6.0, 5.0, 4.0])
    Pcr = column_buckling_fe(np.full(6, 5.0))
    np.testing.assert_allclose(Pcr, euler_buckling(5.0, 3.0), rtol=2e-4)   # 6 elements
    assert_jit_replays(column_buckling_fe, (EI,), (EI + 1,))
    assert_repeats(npfunc.grad(column_buckling_fe), [(EI,), (EI * 2,)], lambda e: fd(column_buckling_fe, e))
    np.testing.assert_allclose(npfunc.grad(column_buckling_fe)(EI), column_buckling_sensitivity(EI), rtol=1e-10)
    assert_repeats(npfunc.jit(npfunc.grad(column_buckling_fe)), [(EI,), (EI * 2,)],
                   column_buckling_sensitivity, rtol=1e-10, replay_rtol=1e-12)
    v = np.linspace(1.0, -0.5, 6)
    assert_repeats(lambda e: npfunc.jvp(npfunc.grad(column_buckling_fe), (e,), (v,))[1], [(EI,), (EI * 2,)],
                   lambda e: fd(column_buckling_sensitivity, e, 1e-3) @ v, rtol=1e-6, atol=1e-9)
    assert_repeats(npfunc.hessian(column_buckling_fe), [(EI,), (EI * 2,)],
                   lambda e: fd(column_buckling_sensitivity, e, 1e-3), rtol=1e-6, atol=1e-9)
    pg = npfunc.vmap(npfunc.grad(column_buckling_fe))(np.stack([EI, EI * 2]))
    assert_deriv(pg, np.stack([fd(column_buckling_fe, EI), fd(column_buckling_fe, EI * 2)]))


# ---- Rayleigh-Ritz buckling of a tapered column by Gauss quadrature ------------------------------


def tapered_column_ritz(taper, EI0=5.0, L=3.0, nterms=4, ngauss=8):
    """Pinned-pinned column, EI(x) = EI0 (1 - taper x / L); trial functions sin(k pi x / L);
    P_cr from the Ritz matrices K_ij = int EI phi_i'' phi_j'', G_ij = int phi_i' phi_j'."""
    xg, wg = np.polynomial.legendre.leggauss(ngauss)
    x = L / 2 * (xg + 1)
    w = L / 2 * wg
    k = np.arange(1, nterms + 1)[:, None] * np.pi / L
    d1 = k * np.cos(k * x)
    d2 = -k ** 2 * np.sin(k * x)
    EI = EI0 * (1 - taper * x / L)
    Kr = (d2 * EI * w) @ d2.T
    Gr = (d1 * w) @ d1.T
    return scipy.linalg.eigh(Kr, Gr, eigvals_only=True)[0]


def test_tapered_column_ritz():
    np.testing.assert_allclose(tapered_column_ritz(0.0), euler_buckling(5.0, 3.0), rtol=1e-8)  # 8 Gauss points
    assert_jit_replays(tapered_column_ritz, (0.3,), (0.1,))
    ref = lambda t: fd(tapered_column_ritz, np.array(t)).ravel()[0]
    assert_repeats(npfunc.grad(tapered_column_ritz), [(0.3,), (0.1,)], ref)
    ref2 = lambda t: fd(lambda s: fd(tapered_column_ritz, s, 1e-4), np.array(t), 1e-4).ravel()[0]
    assert_repeats(npfunc.grad(npfunc.grad(tapered_column_ritz)), [(0.3,), (0.1,)], ref2, rtol=1e-5)
    tapers = np.array([0.0, 0.2, 0.4])
    assert_same(npfunc.vmap(tapered_column_ritz)(tapers), np.stack([tapered_column_ritz(t) for t in tapers]))
    assert_deriv(npfunc.vmap(npfunc.grad(tapered_column_ritz))(tapers), np.array([ref(t) for t in tapers]))


# ---- portal frame ----------------------------------------------------------------------------------


def frame_element(E, A, I, xy1, xy2):
    """2-d frame element (axial + Euler-Bernoulli bending) in global coordinates."""
    dx, dy = xy2 - xy1
    L = np.sqrt(dx ** 2 + dy ** 2)
    c, s = dx / L, dy / L
    a, b1, b2, b3 = E * A / L, 12 * E * I / L ** 3, 6 * E * I / L ** 2, 4 * E * I / L
    k = np.array([[a, 0, 0, -a, 0, 0],
                  [0, b1, b2, 0, -b1, b2],
                  [0, b2, b3, 0, -b2, b3 / 2],
                  [-a, 0, 0, a, 0, 0],
                  [0, -b1, -b2, 0, b1, -b2],
                  [0, b2, b3 / 2, 0, -b2, b3]])
    T = np.zeros((6, 6), like=np.asarray(c))
    R = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    T[:3, :3] = R
    T[3:, 3:] = R
    return T.T @ k @ T


FRAME_NODES = np.array([[0.0, 0.0], [0.0, 3.0], [4.0, 3.0], [4.0, 0.0]])
FRAME_ELEMS = [(0, 1), (1, 2), (2, 3)]


def portal_frame_sway(I, H=1.0, E=200.0, A=0.01):
    """Fixed-base portal frame, lateral load H at the left knee; I = (column, beam, column)
    second moments; returns the knee displacements and rotations (free dofs 3..8)."""
    K = np.zeros((12, 12), like=I)
    for e, (i, j) in enumerate(FRAME_ELEMS):
        dofs = [3 * i, 3 * i + 1, 3 * i + 2, 3 * j, 3 * j + 1, 3 * j + 2]
        K[np.ix_(dofs, dofs)] += frame_element(E, A, I[e], FRAME_NODES[i], FRAME_NODES[j])
    free = np.arange(3, 9)
    f = np.zeros_like(H, shape=12)       # (np.zeros(12) cannot hold a batched H: the refusal's fix)
    f[3] = H
    return scipy.linalg.solve(K[np.ix_(free, free)], f[free], assume_a="pos")


def test_portal_frame_sway():
    I = np.array([1e-3, 2e-3, 1e-3])
    u = portal_frame_sway(I)
    assert_jit_replays(portal_frame_sway, (I,), (I * 1.5,))
    f = lambda i: portal_frame_sway(i * 1e-3)
    i0 = I * 1e3
    assert_deriv(npfunc.jacrev(f)(i0), fd(f, i0), rtol=1e-6, atol=1e-10)
    assert_deriv(npfunc.jacfwd(f)(i0), fd(f, i0), rtol=1e-6, atol=1e-10)
    sway = lambda i: f(i)[0]
    assert_repeats(npfunc.grad(sway), [(i0,), (i0 * 2,)], lambda i: fd(sway, i), atol=1e-10)
    loads = np.array([1.0, -2.0, 0.5])
    assert_same(npfunc.jit(portal_frame_sway)(I, np.float64(2.0)), portal_frame_sway(I, np.float64(2.0)))
    assert_same(npfunc.vmap(portal_frame_sway, in_dims=(None, 0))(I, loads),
                np.stack([portal_frame_sway(I, h) for h in loads]))
    assert u[0] > 0


# ---- continuous beam by the three-moment equation ----------------------------------------------------


def three_moment(spans, w):
    """Continuous beam over len(spans) spans with end supports pinned, UDL w per span:
    interior support moments from M_{i-1} L_i + 2 M_i (L_i + L_{i+1}) + M_{i+1} L_{i+1} = rhs."""
    n = len(spans) - 1
    A = np.zeros((n, n), like=spans)
    rhs = []
    for i in range(n):
        Li, Lj = spans[i], spans[i + 1]
        A[i, i] = 2 * (Li + Lj)
        if i > 0:
            A[i, i - 1] = Li
        if i < n - 1:
            A[i, i + 1] = Lj
        rhs.append(-(w[i] * Li ** 3 + w[i + 1] * Lj ** 3) / 4)
    return np.linalg.solve(A, np.array(rhs))


def test_three_moment_equation():
    spans = np.array([4.0, 5.0, 4.5, 3.0])
    w = np.array([1.0, 2.0, 1.5, 1.0])
    M = three_moment(np.full(2, 4.0), np.ones(2))
    np.testing.assert_allclose(M, [-2.0], rtol=1e-12)      # w L^2 / 8 for two equal spans
    assert_jit_replays(three_moment, (spans, w), (spans[::-1].copy(), w * 3))
    J = fd(lambda s: three_moment(s, w), spans)
    assert_deriv(npfunc.jacrev(three_moment)(spans, w), J)
    assert_deriv(npfunc.jacfwd(three_moment, argnums=1)(spans, w), fd(lambda q: three_moment(spans, q), w))
    assert_same(npfunc.vmap(three_moment, in_dims=(None, 1))(spans, np.stack([w, 2 * w]).T.copy()),
                np.stack([three_moment(spans, w), three_moment(spans, 2 * w)]))


# ---- Guyan reduction ------------------------------------------------------------------------------


def guyan_fundamental(k, m=np.array([1.0, 0.5, 0.8, 0.6]), masters=(0, 3)):
    """Spring chain; static condensation onto master dofs; frequencies of the reduced model."""
    n = len(k)
    K = np.diag(k) + np.diag(np.r_[k[1:], 0.0]) - np.diag(k[1:], 1) - np.diag(k[1:], -1)
    M = np.diag(m)
    mm = list(masters)
    ss = [i for i in range(n) if i not in mm]
    Kss = K[np.ix_(ss, ss)]
    T = np.vstack([np.eye(len(mm)), -scipy.linalg.solve(Kss, K[np.ix_(ss, mm)])])
    order = mm + ss
    Kr = T.T @ K[np.ix_(order, order)] @ T
    Mr = T.T @ M[np.ix_(order, order)] @ T
    w2 = scipy.linalg.eigvalsh(Kr, Mr)
    return np.sqrt(w2)


def test_guyan_reduction():
    k = np.array([10.0, 8.0, 12.0, 9.0])
    assert_jit_replays(guyan_fundamental, (k,), (k * 2,))
    assert_deriv(npfunc.jacrev(guyan_fundamental)(k), fd(guyan_fundamental, k))
    assert_deriv(npfunc.jacfwd(guyan_fundamental)(k), fd(guyan_fundamental, k))
    assert_same(npfunc.vmap(guyan_fundamental)(np.stack([k, k[::-1]])),
                np.stack([guyan_fundamental(k), guyan_fundamental(k[::-1])]))


# =============================================================================================
# 3. 1-d finite elements
# =============================================================================================


def poisson1d(k, q0=1.0, ngauss=3):
    """-(k u')' = q0 sin(pi x) on (0, 1), u(0) = u(1) = 0, len(k) linear elements with
    conductivity k[e]; loads by Gauss-Legendre quadrature element by element."""
    n = len(k)
    h = 1.0 / n
    kk = k / h
    K = np.diag(np.r_[kk, 0.0] + np.r_[0.0, kk]) - np.diag(kk, 1) - np.diag(kk, -1)
    K = K[1:-1, 1:-1]                                           # u = 0 at both ends
    xg, wg = np.polynomial.legendre.leggauss(ngauss)
    F = np.zeros_like(q0, shape=n + 1, dtype=float)
    for e in range(n):
        xm = (e + 0.5) * h
        x = xm + h / 2 * xg
        fx = q0 * np.sin(np.pi * x)
        F[e] += h / 2 * np.sum(wg * (1 - xg) / 2 * fx)
        F[e + 1] += h / 2 * np.sum(wg * (1 + xg) / 2 * fx)
    return np.pad(np.linalg.solve(K, F[1:-1]), 1)       # the boundary zeros back


def poisson1d_banded(k, q):
    """The same system by scipy.linalg.solve_banded, nodal loads q (interior nodes)."""
    n = len(k)
    h = 1.0 / n
    kk = k / h
    ab = np.zeros((3, n - 1), like=k)
    ab[0, 1:] = -kk[1:-1]
    ab[1, :] = kk[:-1] + kk[1:]
    ab[2, :-1] = -kk[1:-1]
    return scipy.linalg.solve_banded((1, 1), ab, q * h)


def heat1d_backward_euler(kappa, nsteps=6, dt=0.02, n=8):
    """Transient conduction, linear elements, lumped mass, u = 0 at both ends,
    u0 = sin(pi x); K factored once, lu_solve each step; temperature history at the middle."""
    h = 1.0 / n
    main = 2.0 * np.ones(n - 1)
    off = -np.ones(n - 2)
    K = kappa / h * (np.diag(main) + np.diag(off, 1) + np.diag(off, -1))
    M = h * np.eye(n - 1)
    x = np.linspace(0, 1, n + 1)[1:-1]
    u = np.sin(np.pi * x)
    lu = scipy.linalg.lu_factor(M / dt + K)
    mid = []
    for _ in range(nsteps):
        u = scipy.linalg.lu_solve(lu, M @ u / dt)
        mid.append(u[n // 2 - 1])
    return np.array(mid)


def test_poisson1d_gauss_loads_and_conductivity_sensitivities():
    k = np.array([1.0, 1.5, 0.8, 1.2, 1.0, 0.9])
    u = poisson1d(np.ones(6))
    x = np.linspace(0, 1, 7)
    # linear elements are nodally exact in 1-d
    np.testing.assert_allclose(u, np.sin(np.pi * x) / np.pi ** 2, rtol=1e-6, atol=1e-15)  # 3-point loads
    assert_jit_replays(poisson1d, (k,), (k[::-1].copy(),))
    J = fd(poisson1d, k)
    assert_deriv(npfunc.jacrev(poisson1d)(k), J, atol=1e-10)
    assert_deriv(npfunc.jacfwd(poisson1d)(k), J, atol=1e-10)
    energy = lambda c: poisson1d(c) @ poisson1d(c)
    assert_repeats(npfunc.hessian(energy), [(k,), (k * 2,)],
                   lambda c: fd(lambda q: npfunc.grad(energy)(q), c, 1e-3), rtol=1e-6, atol=1e-11)
    # load amplitude: u is linear in q0, so d2u/dq0^2 = 0. (F = np.zeros(n + 1) cannot take
    # the traced q0: the refusal names np.zeros_like(x, shape=...), the fix used above)
    mid = lambda q0: poisson1d(k, q0)[3]
    assert_repeats(npfunc.grad(mid), [(1.0,), (2.0,)], lambda q0: poisson1d(k, 1.0)[3], rtol=1e-12)
    assert_repeats(npfunc.grad(npfunc.grad(mid)), [(1.0,), (2.0,)], lambda q0: 0.0, atol=1e-15)
    # a batch of conductivity fields, stored column-wise
    ks = np.stack([k, k * 2, k[::-1]], axis=1)
    assert_same(npfunc.vmap(poisson1d, in_dims=1)(ks), np.stack([poisson1d(c) for c in ks.T]))


def test_poisson1d_solve_banded():
    k = np.array([1.0, 1.5, 0.8, 1.2, 1.0])
    q = np.array([1.0, 2.0, 0.5, 1.0])
    want = poisson1d_banded(k, q)
    assert_jit_replays(poisson1d_banded, (k, q), (k * 3, q[::-1].copy()))
    assert_deriv(npfunc.jacrev(poisson1d_banded)(k, q), fd(lambda c: poisson1d_banded(c, q), k))
    assert_deriv(npfunc.jacfwd(poisson1d_banded, argnums=1)(k, q), fd(lambda p: poisson1d_banded(k, p), q))
    assert_same(npfunc.vmap(poisson1d_banded, in_dims=(None, 0))(k, np.stack([q, 2 * q])),
                np.stack([want, poisson1d_banded(k, 2 * q)]))


def test_heat1d_backward_euler_lu():
    want = heat1d_backward_euler(1.0)
    assert want.shape == (6,)
    assert_jit_replays(heat1d_backward_euler, (1.0,), (0.5,))
    assert_jit_replays(heat1d_backward_euler, (np.float64(1.0),), (np.float64(0.7),))
    ref = lambda kap: fd(heat1d_backward_euler, np.array(kap)).ravel()
    assert_deriv(npfunc.jacfwd(heat1d_backward_euler)(1.0), ref(1.0))
    assert_deriv(npfunc.jacrev(heat1d_backward_euler)(1.0), ref(1.0))
    last = lambda kap: heat1d_backward_euler(kap)[-1]
    ref2 = lambda kap: fd(lambda s: fd(last, s, 1e-4), np.array(kap), 1e-4).ravel()[0]
    assert_repeats(npfunc.grad(npfunc.grad(last)), [(1.0,), (0.6,)], ref2, rtol=1e-5)
    kap = np.array([0.5, 1.0, 2.0])
    assert_same(npfunc.vmap(heat1d_backward_euler)(kap), np.stack([heat1d_backward_euler(c) for c in kap]))
    assert_deriv(npfunc.vmap(npfunc.grad(last))(kap), np.array([fd(last, np.array(c)).ravel()[0] for c in kap]))
    assert_repeats(npfunc.jit(npfunc.vmap(npfunc.grad(last))), [(kap,), (kap * 1.5,)],
                   lambda ks: np.array([fd(last, np.array(c)).ravel()[0] for c in ks]), replay_rtol=1e-12)


# =============================================================================================
# 4. 2-d finite elements
# =============================================================================================


def unit_square_mesh(nx, ny):
    x, y = np.meshgrid(np.linspace(0, 1, nx + 1), np.linspace(0, 1, ny + 1), indexing="ij")
    nodes = np.column_stack([x.ravel(), y.ravel()])
    tris = []
    for i in range(nx):
        for j in range(ny):
            a = i * (ny + 1) + j
            b, c, d = a + ny + 1, a + ny + 2, a + 1
            tris += [[a, b, c], [a, c, d]]
    return nodes, np.array(tris)


P1_NODES, P1_TRIS = unit_square_mesh(4, 4)
P1_BOUNDARY = np.where((P1_NODES[:, 0] % 1 == 0) | (P1_NODES[:, 1] % 1 == 0))[0]
P1_INTERIOR = np.setdiff1d(np.arange(len(P1_NODES)), P1_BOUNDARY)


def poisson2d_p1(kappa, q=1.0, nodes=P1_NODES):
    """-div(kappa grad u) = q on the unit square, u = 0 on the boundary, P1 triangles with
    element conductivities kappa; returns u at the interior nodes."""
    p = nodes[P1_TRIS]                                   # (ne, 3, 2)
    x, y = p[..., 0], p[..., 1]
    b = np.stack([y[:, 1] - y[:, 2], y[:, 2] - y[:, 0], y[:, 0] - y[:, 1]], axis=1)
    c = np.stack([x[:, 2] - x[:, 1], x[:, 0] - x[:, 2], x[:, 1] - x[:, 0]], axis=1)
    area = 0.5 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    ke = (kappa / (4 * area))[:, None, None] * (b[:, :, None] * b[:, None, :] + c[:, :, None] * c[:, None, :])
    fe = np.repeat((q * area / 3)[:, None], 3, axis=1)
    N = len(nodes)
    K = np.zeros((N, N), like=ke)
    F = np.zeros(N, like=fe)
    np.add.at(K, (P1_TRIS[:, :, None], P1_TRIS[:, None, :]), ke)
    np.add.at(F, P1_TRIS, fe)
    I = P1_INTERIOR
    return np.linalg.solve(K[np.ix_(I, I)], F[I])


def test_poisson2d_p1_triangles():
    ne = len(P1_TRIS)
    kappa = 1.0 + 0.3 * np.sin(np.arange(ne))
    want = poisson2d_p1(kappa)
    assert want.shape == (9,)
    # the centre value approaches 0.0737 (the series solution) from below on coarse meshes
    assert 0.06 < poisson2d_p1(np.ones(ne))[4] < 0.0737
    assert_jit_replays(poisson2d_p1, (kappa,), (kappa[::-1].copy(),))
    centre = lambda k: poisson2d_p1(k)[4]
    assert_repeats(npfunc.grad(centre), [(kappa,), (kappa * 2,)], lambda k: fd(centre, k), atol=1e-10)
    assert_deriv(npfunc.jacfwd(poisson2d_p1)(kappa), fd(poisson2d_p1, kappa), atol=1e-10)
    # source strength, a 0-d argument; the mean temperature is linear in it
    mean_u = lambda q: np.mean(poisson2d_p1(kappa, q))
    assert_repeats(npfunc.grad(mean_u), [(1.0,), (3.0,)], lambda q: mean_u(1.0), rtol=1e-12)
    # mesh coordinates (interior node moved): jacobian of u w.r.t. all coordinates
    f = lambda xy: poisson2d_p1(kappa, 1.0, xy.reshape(-1, 2))
    x0 = P1_NODES.ravel().copy()
    assert_deriv(npfunc.jacrev(f)(x0), fd(f, x0), atol=1e-9)
    assert_same(npfunc.vmap(poisson2d_p1, in_dims=(None, 0))(kappa, np.array([1.0, 2.0])),
                np.stack([poisson2d_p1(kappa, 1.0), poisson2d_p1(kappa, 2.0)]))


def q4_element(coords, kappa=1.0, ngauss=2):
    """Isoparametric bilinear quadrilateral for the Laplacian: stiffness and (consistent)
    mass by ngauss x ngauss Gauss-Legendre quadrature. coords: (4, 2) counter-clockwise."""
    g, w = np.polynomial.legendre.leggauss(ngauss)
    ke = np.zeros((4, 4), like=coords)
    me = np.zeros((4, 4), like=coords)
    xi_n = np.array([-1.0, 1.0, 1.0, -1.0])
    eta_n = np.array([-1.0, -1.0, 1.0, 1.0])
    for i in range(ngauss):
        for j in range(ngauss):
            xi, eta = g[i], g[j]
            N = 0.25 * (1 + xi * xi_n) * (1 + eta * eta_n)
            dN = 0.25 * np.array([xi_n * (1 + eta * eta_n), eta_n * (1 + xi * xi_n)])   # (2, 4)
            J = dN @ coords
            detJ = np.linalg.det(J)
            B = np.linalg.solve(J, dN)
            ke += w[i] * w[j] * kappa * detJ * B.T @ B
            me += w[i] * w[j] * detJ * np.outer(N, N)
    return ke, me


def test_q4_element_quadrature():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    ke, me = q4_element(square)
    np.testing.assert_allclose(ke.sum(axis=1), 0.0, atol=1e-14)       # rigid-body row sums
    np.testing.assert_allclose(me.sum(), 1.0, rtol=1e-14)               # area
    np.testing.assert_allclose(ke[0], [2 / 3, -1 / 6, -1 / 3, -1 / 6], rtol=1e-13)
    quad = np.array([[0.0, 0.0], [1.2, 0.1], [1.0, 0.9], [-0.1, 1.1]])
    assert_jit_replays(q4_element, (quad,), (square,))
    J = fd(lambda c: np.stack(q4_element(c.reshape(4, 2))), quad.ravel())
    got = npfunc.jacfwd(lambda c: np.stack(q4_element(c.reshape(4, 2))))(quad.ravel())
    assert_deriv(got, J, atol=1e-10)
    got = npfunc.jacrev(lambda c: q4_element(c.reshape(4, 2))[0])(quad.ravel())
    assert_deriv(got, J[0], atol=1e-10)
    # a batch of distorted elements, stacked on the last axis
    quads = np.stack([quad, square, quad[::-1].copy() * 2], axis=-1)
    assert_same(npfunc.vmap(q4_element, in_dims=(2,))(quads),
                tuple(np.stack(m) for m in zip(*[q4_element(quads[..., i]) for i in range(3)])))
    # the element's energy for a nodal field: Hessian w.r.t. one corner's coordinates
    u = np.array([0.0, 1.0, 2.0, 0.5])
    corner_energy = lambda xy: u @ q4_element(np.vstack([quad[:2], xy[None], quad[3:]]))[0] @ u
    assert_repeats(npfunc.hessian(corner_energy), [(quad[2].copy(),), (np.array([1.1, 1.0]),)],
                   lambda xy: fd(lambda p: npfunc.grad(corner_energy)(p), xy, 1e-4), atol=1e-9)


# ---- plane stress CST cantilever with stress recovery ---------------------------------------------


def plane_stress_D(E, nu):
    return E / (1 - nu ** 2) * np.array([[1.0, nu, 0.0], [nu, 1.0, 0.0], [0.0, 0.0, (1 - nu) / 2]])


CST_NODES, CST_TRIS = unit_square_mesh(4, 2)
CST_NODES = CST_NODES * np.array([2.0, 0.5])             # a 2 x 0.5 plate
CST_FIXED_NODES = np.where(CST_NODES[:, 0] == 0.0)[0]
CST_TIP_NODES = np.where(CST_NODES[:, 0] == 2.0)[0]


def cst_cantilever(E_elems, nu=0.3, P=-1.0, t=0.1):
    """Plane-stress cantilever of constant-strain triangles; returns the tip deflection and
    a dict with the element von Mises stresses."""
    nn = len(CST_NODES)
    K = np.zeros((2 * nn, 2 * nn), like=E_elems)
    Bs = []
    for e, tri in enumerate(CST_TRIS):
        (x1, y1), (x2, y2), (x3, y3) = CST_NODES[tri]
        A = 0.5 * ((x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1))
        b = np.array([y2 - y3, y3 - y1, y1 - y2])
        c = np.array([x3 - x2, x1 - x3, x2 - x1])
        B = np.zeros((3, 6))
        B[0, 0::2] = b
        B[1, 1::2] = c
        B[2, 0::2] = c
        B[2, 1::2] = b
        B /= 2 * A
        Bs.append(B)
        dofs = np.ravel([[2 * n, 2 * n + 1] for n in tri])
        K[np.ix_(dofs, dofs)] += t * A * B.T @ plane_stress_D(E_elems[e], nu) @ B
    f = np.zeros(2 * nn)
    f[2 * CST_TIP_NODES + 1] = P / len(CST_TIP_NODES)
    fixed = np.concatenate([2 * CST_FIXED_NODES, 2 * CST_FIXED_NODES + 1])
    free = np.setdiff1d(np.arange(2 * nn), fixed)
    u = np.zeros(2 * nn, like=E_elems)
    u[free] = np.linalg.solve(K[np.ix_(free, free)], f[free])
    vm = []
    for e, tri in enumerate(CST_TRIS):
        dofs = np.ravel([[2 * n, 2 * n + 1] for n in tri])
        sx, sy, txy = plane_stress_D(E_elems[e], nu) @ Bs[e] @ u[dofs]
        vm.append(np.sqrt(sx ** 2 - sx * sy + sy ** 2 + 3 * txy ** 2))
    return u[2 * CST_TIP_NODES + 1].mean(), {"von_mises": np.array(vm), "u": u}


def test_cst_cantilever_and_von_mises():
    ne = len(CST_TRIS)
    E = 100.0 * (1 + 0.1 * np.cos(np.arange(ne)))
    tip, res = cst_cantilever(E)
    assert tip < 0 and res["von_mises"].shape == (ne,)
    assert_jit_replays(cst_cantilever, (E,), (E * 2,))
    tipf = lambda e: cst_cantilever(e)[0]
    # (E ~ 100: steps of 1e-2..1e-1 keep the differences above the rounding of the solve)
    assert_repeats(npfunc.grad(tipf), [(E,), (E[::-1].copy(),)], lambda e: fd(tipf, e, 1e-2), atol=1e-10)
    vm_max = lambda e: cst_cantilever(e)[1]["von_mises"].max()
    assert_deriv(npfunc.grad(vm_max)(E), fd(vm_max, E, 1e-1), rtol=1e-6, atol=1e-10)
    # the stresses do not depend on a uniform scale of E (statically determinate load path)
    J = npfunc.jacfwd(lambda s: cst_cantilever(s * E)[1]["von_mises"])(1.0)
    np.testing.assert_allclose(J, 0.0, atol=1e-13 * res["von_mises"].max())
    # K was made like the moduli: a batch of Poisson ratios alone cannot be added into it
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap.*like=x.*map it \(in_dims=0"):
        npfunc.vmap(cst_cantilever, in_dims=(None, 0))(E, np.array([0.25, 0.3]))
    out = npfunc.vmap(cst_cantilever)(np.stack([E, E[::-1]]), np.array([0.25, 0.3]))
    for k, (Ek, nu) in enumerate([(E, 0.25), (E[::-1], 0.3)]):
        t, r = cst_cantilever(Ek, nu)
        assert_same(out[0][k], t)
        assert_same(out[1]["von_mises"][k], r["von_mises"])


# =============================================================================================
# 5. Topology optimisation (SIMP, after top88)
# =============================================================================================


def lk(nu=0.3):
    """Plane-stress bilinear element stiffness for E = 1 (top88's lk)."""
    E = 1.0
    k = np.array([1 / 2 - nu / 6, 1 / 8 + nu / 8, -1 / 4 - nu / 12, -1 / 8 + 3 * nu / 8,
                  -1 / 4 + nu / 12, -1 / 8 - nu / 8, nu / 6, 1 / 8 - 3 * nu / 8])
    KE = E / (1 - nu ** 2) * np.array([
        [k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]],
        [k[1], k[0], k[7], k[6], k[5], k[4], k[3], k[2]],
        [k[2], k[7], k[0], k[5], k[6], k[3], k[4], k[1]],
        [k[3], k[6], k[5], k[0], k[7], k[2], k[1], k[4]],
        [k[4], k[5], k[6], k[7], k[0], k[1], k[2], k[3]],
        [k[5], k[4], k[3], k[2], k[1], k[0], k[7], k[6]],
        [k[6], k[3], k[4], k[1], k[2], k[7], k[0], k[5]],
        [k[7], k[2], k[1], k[4], k[3], k[6], k[5], k[0]]])
    return KE


NELX, NELY = 6, 3
KE = lk()


def top88_setup(nelx=NELX, nely=NELY):
    ndof = 2 * (nelx + 1) * (nely + 1)
    edofMat = np.zeros((nelx * nely, 8), dtype=int)
    for elx in range(nelx):
        for ely in range(nely):
            el = ely + elx * nely
            n1 = (nely + 1) * elx + ely
            n2 = (nely + 1) * (elx + 1) + ely
            edofMat[el, :] = np.array([2 * n1 + 2, 2 * n1 + 3, 2 * n2 + 2, 2 * n2 + 3, 2 * n2, 2 * n2 + 1, 2 * n1, 2 * n1 + 1])
    iK = np.kron(edofMat, np.ones((8, 1))).flatten().astype(int)
    jK = np.kron(edofMat, np.ones((1, 8))).flatten().astype(int)
    dofs = np.arange(ndof)
    fixed = np.union1d(dofs[0:2 * (nely + 1):2], np.array([ndof - 1]))   # MBB half-beam
    free = np.setdiff1d(dofs, fixed)
    f = np.zeros(ndof)
    f[1] = -1
    return ndof, edofMat, iK, jK, free, f


NDOF, EDOF, IK, JK, FREE, FLOAD = top88_setup()


def simp_compliance(xPhys, penal=3.0, Emin=1e-9, Emax=1.0):
    """Compliance of the MBB half-beam and top88's analytic sensitivity dc."""
    sK = ((KE.flatten()[np.newaxis]).T * (Emin + xPhys ** penal * (Emax - Emin))).flatten(order="F")
    K = np.zeros((NDOF, NDOF), like=xPhys)
    np.add.at(K, (IK, JK), sK)
    u = np.zeros(NDOF, like=xPhys)
    u[FREE] = np.linalg.solve(K[np.ix_(FREE, FREE)], FLOAD[FREE])
    ue = u[EDOF].reshape(NELX * NELY, 8)
    ce = (np.dot(ue, KE) * ue).sum(1)
    obj = ((Emin + xPhys ** penal * (Emax - Emin)) * ce).sum()
    dc = (-penal * xPhys ** (penal - 1) * (Emax - Emin)) * ce
    return obj, dc


def simp_compliance_sparse(xPhys, penal=3.0, Emin=1e-9, Emax=1.0):
    """top88 verbatim: scipy.sparse coo_matrix assembly and spsolve."""
    import scipy.sparse
    import scipy.sparse.linalg
    sK = ((KE.flatten()[np.newaxis]).T * (Emin + xPhys ** penal * (Emax - Emin))).flatten(order="F")
    K = scipy.sparse.coo_matrix((sK, (IK, JK)), shape=(NDOF, NDOF)).tocsc()
    K = K[FREE, :][:, FREE]
    u = np.zeros(NDOF)
    u[FREE] = scipy.sparse.linalg.spsolve(K, FLOAD[FREE])
    return FLOAD @ u


def density_filter_matrix(rmin=1.5, nelx=NELX, nely=NELY):
    H = np.zeros((nelx * nely, nelx * nely))
    for i in range(nelx):
        for j in range(nely):
            row = i * nely + j
            for k in range(max(i - int(np.ceil(rmin)) + 1, 0), min(i + int(np.ceil(rmin)), nelx)):
                for l in range(max(j - int(np.ceil(rmin)) + 1, 0), min(j + int(np.ceil(rmin)), nely)):
                    col = k * nely + l
                    H[row, col] = max(0.0, rmin - np.sqrt((i - k) ** 2 + (j - l) ** 2))
    return H, H.sum(1)


H_FILT, HS_FILT = density_filter_matrix()


def filtered_compliance(x):
    xPhys = H_FILT @ x / HS_FILT
    return simp_compliance(xPhys)[0]


def heaviside_projection(x, beta=4.0, eta=0.5):
    return (np.tanh(beta * eta) + np.tanh(beta * (x - eta))) / (np.tanh(beta * eta) + np.tanh(beta * (1 - eta)))


def projected_compliance(x, beta=4.0):
    return simp_compliance(heaviside_projection(H_FILT @ x / HS_FILT, beta))[0]


def oc_update(x, dc, dv, volfrac, move=0.2):
    """Optimality-criteria update with the Lagrange multiplier found by bisection."""
    l1, l2 = 0.0, 1e9
    xnew = x
    while (l2 - l1) / (l1 + l2) > 1e-3:
        lmid = 0.5 * (l2 + l1)
        xnew = np.maximum(0.0, np.maximum(x - move, np.minimum(1.0, np.minimum(x + move, x * np.sqrt(-dc / dv / lmid)))))
        if xnew.sum() > volfrac * len(x):
            l1 = lmid
        else:
            l2 = lmid
    return xnew


X0 = 0.5 + 0.2 * np.sin(np.arange(NELX * NELY))


def test_simp_compliance_grad_is_top88_sensitivity():
    c, dc = simp_compliance(X0)
    assert isinstance(c, np.float64)
    assert_jit_replays(simp_compliance, (X0,), (np.full(NELX * NELY, 0.5),))
    obj = lambda x: simp_compliance(x)[0]
    g = npfunc.grad(obj)(X0)
    np.testing.assert_allclose(g, dc, rtol=1e-9)
    assert_repeats(npfunc.grad(obj), [(X0,), (X0[::-1].copy(),)], lambda x: simp_compliance(x)[1], rtol=1e-9)
    assert_deriv(g, fd(obj, X0, 1e-4), rtol=1e-6)
    # (obj, dc) with has_aux-like structure: vjp of the pair
    out, pull = npfunc.vjp(simp_compliance, X0)
    _same_tree(out, simp_compliance(X0))
    ct = pull((1.0, np.zeros_like(dc)))[0]
    np.testing.assert_allclose(ct, dc, rtol=1e-9)
    designs = np.stack([X0, np.full_like(X0, 0.4), X0[::-1]])
    _same_tree(npfunc.vmap(simp_compliance)(designs),
               tuple(np.stack(m) for m in zip(*[simp_compliance(d) for d in designs])))
    assert_repeats(npfunc.jit(npfunc.vmap(npfunc.grad(obj))), [(designs,), (designs * 0.9,)],
                   lambda ds: np.stack([simp_compliance(d)[1] for d in ds]), rtol=1e-9, replay_rtol=1e-11)


def simp_compliance_sparse_toarray(xPhys, penal=3.0):
    """The refusal's old advice, toarray(), applied: it converts the traced entries too."""
    import scipy.sparse
    sK = ((KE.flatten()[np.newaxis]).T * (1e-9 + xPhys ** penal)).flatten(order="F")
    K = scipy.sparse.coo_matrix((sK, (IK, JK)), shape=(NDOF, NDOF)).toarray()
    return FLOAD[FREE] @ np.linalg.solve(K[np.ix_(FREE, FREE)], FLOAD[FREE])


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_simp_sparse_assembly_is_refused_naming_the_dense_triplet_fix(transform):
    """Regression: a sparse matrix built from traced entries was refused naming
    H.toarray() @ v, which converts the same entries and is refused again; the refusal
    now names the dense assembly from the triplets (np.add.at), which works."""
    assert np.isclose(simp_compliance_sparse(X0), simp_compliance(X0)[0], rtol=1e-10)
    tf = getattr(npfunc, transform)
    x = np.stack([X0, X0]) if transform == "vmap" else X0
    for f in (simp_compliance_sparse, simp_compliance_sparse_toarray):
        with pytest.raises(npfunc.errors.NpfuncError, match=r"scipy.sparse.coo_matrix") as info:
            tf(f)(x)
        msg = str(info.value)
        assert msg.startswith(f"{transform}(") and "np.add.at(K, (rows, cols), data)" in msg, msg
        assert "H.toarray() @ v" not in msg
    # the fix named there (simp_compliance assembles so)
    got = tf(lambda z: simp_compliance(z)[0])(x)
    if transform == "grad":
        np.testing.assert_allclose(got, simp_compliance(X0)[1], rtol=1e-9)
    else:
        np.testing.assert_allclose(got, simp_compliance_sparse(X0), rtol=1e-10)


def test_density_filter_and_projection_chain_rule():
    obj = filtered_compliance
    g = npfunc.grad(obj)(X0)
    # top88's filtered sensitivity: dc_x = H^T (dc_phys / Hs)
    _, dc = simp_compliance(H_FILT @ X0 / HS_FILT)
    np.testing.assert_allclose(g, H_FILT.T @ (dc / HS_FILT), rtol=1e-9)
    assert_jit_replays(obj, (X0,), (X0 * 0.8,))
    assert_repeats(npfunc.grad(projected_compliance), [(X0,), (X0 * 0.9,)], lambda x: fd(projected_compliance, x, 1e-4))
    # beta continuation: derivative in the sharpness (0-d), then its derivative
    pb = lambda b: projected_compliance(X0, b)
    assert_repeats(npfunc.grad(pb), [(4.0,), (8.0,)], lambda b: fd(pb, np.array(b), 1e-4).ravel()[0])
    assert_repeats(npfunc.grad(npfunc.grad(pb)), [(4.0,), (8.0,)],
                   lambda b: fd(lambda q: npfunc.grad(pb)(q), np.array(b), 1e-4).ravel()[0], rtol=1e-6)
    # projection is elementwise: vmap(grad) over densities equals the diagonal of its jacobian
    xs = np.linspace(0.0, 1.0, 7)
    assert_deriv(npfunc.vmap(npfunc.grad(heaviside_projection))(xs),
                 np.diag(fd(heaviside_projection, xs)))
    assert_same(npfunc.jit(heaviside_projection)(np.float32(0.3)), heaviside_projection(np.float32(0.3)), rtol=1e-6)


def test_oc_update_bisection_loop():
    c, dc = simp_compliance(X0)
    dv = np.ones_like(X0)
    want = oc_update(X0, dc, dv, 0.5)
    assert abs(want.mean() - 0.5) < 2e-3
    # the loop's test is on traced values: jit and vmap refuse, naming the fixes
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where.*outside jit"):
        npfunc.jit(oc_update)(X0, dc, dv, 0.5)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap.*np.where"):
        npfunc.vmap(oc_update, in_dims=(0, 0, None, None))(np.stack([X0, X0]), np.stack([dc, dc * 2]), dv, 0.5)
    # eager grad sees the values and runs the bisection as written: the design derivative is
    # the one of the last bisection step (the multiplier is piecewise constant in x)
    J = npfunc.jacrev(lambda x: oc_update(x, dc, dv, 0.5))(X0)
    assert_deriv(J, fd(lambda x: oc_update(x, dc, dv, 0.5), X0, 1e-7), atol=1e-7)
    assert_same(npfunc.jacfwd(lambda x: oc_update(x, dc, dv, 0.5), has_aux=False)(X0), J)


# =============================================================================================
# 6. Structural dynamics
# =============================================================================================


def chain_matrices(k, m):
    """Fixed-free spring-mass chain."""
    n = len(k)
    K = np.diag(k + np.r_[k[1:], 0.0]) - np.diag(k[1:], 1) - np.diag(k[1:], -1)
    return K, np.diag(m)


def modal_analysis(k, m=np.array([1.0, 1.5, 0.8, 1.2])):
    """Natural frequencies (Hz), mass-normalised modes with a positive top entry, and the
    effective modal masses for base excitation, as a dict."""
    K, M = chain_matrices(k, m)
    w2, phi = scipy.linalg.eigh(K, M)
    phi = phi * np.sign(phi[-1])
    gamma = phi.T @ M @ np.ones(len(m))
    return {"freq": np.sqrt(w2) / (2 * np.pi), "modes": phi, "eff_mass": gamma ** 2}


def frf_amplitude(omega, k, c=0.05, m=np.array([1.0, 1.5, 0.8, 1.2])):
    """|u_top| under a unit harmonic force at the top, Rayleigh-free viscous dashpots c*K."""
    K, M = chain_matrices(k, m)
    f = np.zeros(len(k))
    f[-1] = 1.0
    Z = K - omega ** 2 * M + 1j * omega * c * K
    u = np.linalg.solve(Z, f + 0j)
    return np.abs(u[-1])


def rayleigh_coefficients(w1, w2, zeta=0.05):
    A = np.array([[1 / (2 * w1), w1 / 2], [1 / (2 * w2), w2 / 2]])
    a0, a1 = np.linalg.solve(A, np.array([zeta, zeta]))
    return {"alpha": a0, "beta": a1}


def newmark_peak(k, m=np.array([1.0, 1.5]), zeta=0.02, dt=0.05, nt=60, beta=0.25, gamma=0.5):
    """Two-storey shear frame under a ground-acceleration pulse, average-acceleration Newmark,
    history stored in a preallocated buffer; peak top drift."""
    K, M = chain_matrices(k, m)
    w = np.sqrt(scipy.linalg.eigvalsh(K, M))
    C = rayleigh_coefficients(w[0], w[1], zeta)["alpha"] * M + rayleigh_coefficients(w[0], w[1], zeta)["beta"] * K
    t = np.arange(nt) * dt
    ag = np.where(t < 0.6, np.sin(np.pi * t / 0.6), 0.0)
    n = len(m)
    u = np.zeros(n, like=k)
    v = np.zeros(n, like=k)
    a = np.linalg.solve(M, -M @ np.ones(n) * ag[0] - C @ v - K @ u)
    hist = np.zeros((nt, n), like=k)
    Keff = K + gamma / (beta * dt) * C + M / (beta * dt ** 2)
    for i in range(1, nt):
        p = -M @ np.ones(n) * ag[i]
        rhs = (p + M @ (u / (beta * dt ** 2) + v / (beta * dt) + (1 / (2 * beta) - 1) * a)
               + C @ (gamma / (beta * dt) * u + (gamma / beta - 1) * v + dt * (gamma / (2 * beta) - 1) * a))
        un = np.linalg.solve(Keff, rhs)
        an = (un - u) / (beta * dt ** 2) - v / (beta * dt) - (1 / (2 * beta) - 1) * a
        v = v + dt * ((1 - gamma) * a + gamma * an)
        u, a = un, an
        hist[i] = u
    return np.max(np.abs(hist[:, -1]))


def sdof_peak(T, zeta=0.05, dt=0.02, nt=80):
    """Peak relative displacement of an SDOF oscillator of period T (a response-spectrum
    ordinate) under a ground-acceleration pulse, central differences."""
    wn = 2 * np.pi / T
    t = np.arange(nt) * dt
    ag = np.where(t < 0.5, np.sin(2 * np.pi * t / 0.5), 0.0)
    u_prev, u = 0.0, 0.0
    peak = 0.0
    for i in range(1, nt - 1):
        acc = -ag[i] - 2 * zeta * wn * (u - u_prev) / dt - wn ** 2 * u
        u_next = 2 * u - u_prev + dt ** 2 * acc
        u_prev, u = u, u_next
        peak = np.maximum(peak, np.abs(u))
    return peak


def test_modal_analysis_dict():
    k = np.array([10.0, 8.0, 6.0, 4.0])
    want = modal_analysis(k)
    np.testing.assert_allclose(want["eff_mass"].sum(), 4.5, rtol=1e-12)     # total mass
    # eigh + sign normalisation: within the conditioning rounding of the generalised problem
    assert_jit_replays(modal_analysis, (k,), (k * 2,), rtol=1e-11)
    f1 = lambda q: modal_analysis(q)["freq"][0]
    assert_repeats(npfunc.grad(f1), [(k,), (k[::-1].copy(),)], lambda q: fd(f1, q, 1e-4))
    assert_repeats(npfunc.hessian(f1), [(k,), (k[::-1].copy(),)],
                   lambda q: fd(lambda p: npfunc.grad(f1)(p), q, 1e-4), rtol=1e-6, atol=1e-10)
    modes = lambda q: modal_analysis(q)["modes"]
    assert_deriv(npfunc.jacfwd(modes)(k), fd(modes, k, 1e-4), atol=1e-9)
    assert_deriv(npfunc.jacrev(modes)(k), fd(modes, k, 1e-4), atol=1e-9)
    ks = np.stack([k, k * 2, k[::-1]])
    out = npfunc.vmap(modal_analysis)(ks)
    for name in want:
        assert_same(out[name], np.stack([modal_analysis(q)[name] for q in ks]), rtol=1e-11)


def test_frf_complex_solve_and_vmap_over_frequency():
    k = np.array([10.0, 8.0, 6.0, 4.0])
    omegas = np.linspace(0.5, 4.0, 6)
    want = np.stack([frf_amplitude(w, k) for w in omegas])
    assert_same(npfunc.vmap(frf_amplitude, in_dims=(0, None))(omegas, k), want)
    assert_jit_replays(frf_amplitude, (1.3, k), (2.0, k * 1.1))
    assert_deriv(npfunc.jacrev(frf_amplitude, argnums=1)(1.3, k), fd(lambda q: frf_amplitude(1.3, q), k))
    assert_deriv(npfunc.grad(frf_amplitude, argnums=2)(1.3, k, 0.05),
                 fd(lambda c: frf_amplitude(1.3, k, c), np.array(0.05)).ravel()[0])
    slope = npfunc.vmap(npfunc.grad(frf_amplitude), in_dims=(0, None))(omegas, k)
    assert_deriv(slope, np.array([fd(lambda w: frf_amplitude(w, k), np.array(w0)).ravel()[0] for w0 in omegas]))
    curv = npfunc.grad(npfunc.grad(frf_amplitude))
    assert_repeats(curv, [(1.3, k), (2.0, k)],
                   lambda w, q: fd(lambda s: npfunc.grad(frf_amplitude)(s, q), np.array(w), 1e-4).ravel()[0])


def test_rayleigh_coefficients_dict():
    want = rayleigh_coefficients(2.0, 12.0)
    _same_tree(npfunc.jit(rayleigh_coefficients)(2.0, 12.0), want)
    for key in ("alpha", "beta"):
        g = npfunc.grad(lambda a, b: rayleigh_coefficients(a, b)[key], argnums=(0, 1))(2.0, 12.0)
        assert_deriv(np.array(g), fd(lambda p: rayleigh_coefficients(p[0], p[1])[key], np.array([2.0, 12.0])))
    ws = np.array([1.0, 2.0, 3.0])
    _same_tree(npfunc.vmap(rayleigh_coefficients, in_dims=(0, None))(ws, 12.0),
               {kk: np.stack([rayleigh_coefficients(w, 12.0)[kk] for w in ws]) for kk in want})


def test_newmark_history_buffer():
    k = np.array([40.0, 25.0])
    want = newmark_peak(k)
    assert isinstance(want, np.float64)
    assert_jit_replays(newmark_peak, (k,), (k * 1.2,))
    assert_repeats(npfunc.grad(newmark_peak), [(k,), (k * 1.2,)], lambda q: fd(newmark_peak, q, 1e-4))
    assert_repeats(npfunc.jit(npfunc.grad(newmark_peak)), [(k,), (k * 1.2,)], lambda q: fd(newmark_peak, q, 1e-4),
                   replay_rtol=1e-11)
    ks = np.stack([k, k * 1.5, k[::-1]])
    assert_same(npfunc.vmap(newmark_peak)(ks), np.stack([newmark_peak(q) for q in ks]))


def test_response_spectrum_by_vmap_over_periods():
    T = np.array([0.2, 0.5, 1.0, 2.0])
    want = np.stack([sdof_peak(t) for t in T])
    assert isinstance(sdof_peak(0.5), np.float64)
    assert_same(npfunc.vmap(sdof_peak)(T), want)
    assert_same(npfunc.jit(npfunc.vmap(sdof_peak))(T), want)
    assert_same(npfunc.jit(npfunc.vmap(sdof_peak))(T * 1.1), np.stack([sdof_peak(t) for t in T * 1.1]))
    assert_jit_replays(sdof_peak, (0.5,), (1.5,))
    ref = lambda Ts: np.array([fd(sdof_peak, np.array(t), 1e-6).ravel()[0] for t in Ts])
    assert_deriv(npfunc.vmap(npfunc.grad(sdof_peak))(T), ref(T))
    assert_repeats(npfunc.jit(npfunc.vmap(npfunc.grad(sdof_peak))), [(T,), (T * 1.1,)], ref, replay_rtol=1e-12)
    assert_repeats(npfunc.grad(sdof_peak, argnums=1), [(0.5, 0.05), (0.5, 0.1)],
                   lambda t, z: fd(lambda q: sdof_peak(t, q), np.array(z), 1e-6).ravel()[0])


# =============================================================================================
# 7. Plasticity
# =============================================================================================


def bar_plastic_history(strains, E=200.0, H=20.0, sy=0.25):
    """1-d elastoplastic bar with linear isotropic hardening; return mapping step by step
    (Python if on the trial yield function)."""
    eps_p, alpha = 0.0, 0.0
    out = []
    for eps in strains:
        sig_tr = E * (eps - eps_p)
        f_tr = abs(sig_tr) - (sy + H * alpha)
        if f_tr > 0:
            dg = f_tr / (E + H)
            sig = sig_tr - E * dg * np.sign(sig_tr)
            eps_p = eps_p + dg * np.sign(sig_tr)
            alpha = alpha + dg
        else:
            sig = sig_tr
        out.append(sig)
    return np.array(out)


def return_map_where(eps, eps_p, alpha, E=200.0, H=20.0, sy=0.25):
    """Vectorised over Gauss points: the same return mapping with np.where."""
    sig_tr = E * (eps - eps_p)
    f_tr = np.abs(sig_tr) - (sy + H * alpha)
    dg = np.where(f_tr > 0, f_tr / (E + H), 0.0)
    n = np.sign(sig_tr)
    return sig_tr - E * dg * n, eps_p + dg * n, alpha + dg


def j2_return(eps, eps_p, alpha, K=160.0, G=80.0, sy=0.3, H=10.0):
    """3-d J2 radial return (small strain, tensors), stress and updated state."""
    I = np.eye(3)
    tr = np.trace(eps)
    dev = eps - tr / 3 * I
    s_tr = 2 * G * (dev - eps_p)
    q_tr = np.sqrt(1.5 * np.sum(s_tr * s_tr))
    f = q_tr - (sy + H * alpha)
    if f <= 0:
        return K * tr * I + s_tr, eps_p, alpha
    dg = f / (3 * G + H)
    n = 1.5 * s_tr / q_tr
    s = s_tr - 2 * G * dg * n
    return K * tr * I + s, eps_p + dg * n, alpha + dg


STRAIN_PATH = np.r_[np.linspace(0, 0.004, 5)[1:], np.linspace(0.004, -0.002, 6)[1:], np.linspace(-0.002, 0.003, 4)[1:]]


def test_bar_plastic_history_if_and_where():
    want = bar_plastic_history(STRAIN_PATH)
    assert want.shape == STRAIN_PATH.shape
    # eager transforms see the values and take the branches as written
    J = npfunc.jacrev(bar_plastic_history)(STRAIN_PATH)
    assert_deriv(J, fd(bar_plastic_history, STRAIN_PATH, 1e-7), atol=1e-6)
    assert_deriv(npfunc.jacfwd(bar_plastic_history)(STRAIN_PATH), J, rtol=1e-12, atol=1e-12)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where"):
        npfunc.jit(bar_plastic_history)(STRAIN_PATH)
    # the np.where form, stepped by the same loop, agrees and runs under jit
    def bar_where(strains):
        eps_p = np.zeros(()); alpha = np.zeros(())
        out = []
        for eps in strains:
            sig, eps_p, alpha = return_map_where(eps, eps_p, alpha)
            out.append(sig)
        return np.array(out)
    np.testing.assert_allclose(bar_where(STRAIN_PATH), want, rtol=1e-13, atol=1e-15)
    assert_jit_replays(bar_where, (STRAIN_PATH,), (STRAIN_PATH * 0.5,))
    assert_deriv(npfunc.jit(npfunc.jacrev(bar_where))(STRAIN_PATH), J, rtol=1e-12, atol=1e-12)


def test_return_map_consistent_tangent_by_vmap_grad():
    eps = np.array([0.0005, 0.002, -0.003, 0.0012, 0.004])
    eps_p = np.array([0.0, 0.0005, -0.001, 0.0, 0.002])
    alpha = np.array([0.0, 0.0005, 0.001, 0.0, 0.002])
    want = return_map_where(eps, eps_p, alpha)
    _same_tree(npfunc.jit(return_map_where)(eps, eps_p, alpha), want)
    # per-point tangent dsig/deps: E elastic, E H / (E + H) plastic
    tangent = npfunc.vmap(npfunc.grad(lambda e, p, a: return_map_where(e, p, a)[0]))(eps, eps_p, alpha)
    plastic = np.abs(200.0 * (eps - eps_p)) > 0.25 + 20.0 * alpha
    np.testing.assert_allclose(tangent, np.where(plastic, 200.0 * 20.0 / 220.0, 200.0), rtol=1e-14)
    assert plastic.any() and (~plastic).any()
    # the same on float32 Gauss-point data keeps float32
    e32, p32, a32 = eps.astype(np.float32), eps_p.astype(np.float32), alpha.astype(np.float32)
    w32 = return_map_where(e32, p32, a32, np.float32(200.0), np.float32(20.0), np.float32(0.25))
    assert w32[0].dtype == np.float32
    _same_tree(npfunc.jit(return_map_where)(e32, p32, a32, np.float32(200.0), np.float32(20.0), np.float32(0.25)),
               w32, rtol=1e-6)
    # in_dims=None for the state of a virgin material
    assert_same(npfunc.vmap(return_map_where, in_dims=(0, None, None))(eps, 0.0, 0.0)[0],
                np.stack([return_map_where(e, 0.0, 0.0)[0] for e in eps]))


def test_j2_return_tangent_by_jacfwd():
    eps = np.array([[0.004, 0.001, 0.0], [0.001, -0.001, 0.0005], [0.0, 0.0005, -0.0015]])
    z = np.zeros((3, 3))
    sig, ep, al = j2_return(eps, z, 0.0)
    assert al > 0     # plastic
    C = npfunc.jacfwd(lambda e: j2_return(e, z, 0.0)[0])(eps)
    assert C.shape == (3, 3, 3, 3)
    assert_deriv(C, fd(lambda e: j2_return(e.reshape(3, 3), z, 0.0)[0], eps.ravel(), 1e-7).reshape(3, 3, 3, 3),
                 atol=1e-6)
    assert_deriv(npfunc.jacrev(lambda e: j2_return(e, z, 0.0)[0])(eps), C, rtol=1e-12, atol=1e-12)
    # elastic step: isotropic elasticity tensor
    small = eps * 0.01
    Ce = npfunc.jacfwd(lambda e: j2_return(e, z, 0.0)[0])(small)
    I = np.eye(3)
    # (derivative in the unsymmetrised strain components: 2G dev acts on eps_kl itself)
    Cel = 160.0 * np.einsum("ij,kl->ijkl", I, I) + 2 * 80.0 * (np.einsum("ik,jl->ijkl", I, I)
                                                             - np.einsum("ij,kl->ijkl", I, I) / 3)
    np.testing.assert_allclose(Ce, Cel, rtol=1e-13, atol=1e-12)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where"):
        npfunc.jit(j2_return)(eps, z, 0.0)
    # yield stress sensitivity, a 0-d variable; and repeated calls on the cached path
    q = lambda sy: np.sqrt(1.5 * np.sum((j2_return(eps, z, 0.0, sy=sy)[0] - np.trace(j2_return(eps, z, 0.0, sy=sy)[0]) / 3 * np.eye(3)) ** 2))
    assert_repeats(npfunc.grad(q), [(0.3,), (0.35,)], lambda sy: fd(q, np.array(sy)).ravel()[0])
    assert_repeats(npfunc.grad(npfunc.grad(q)), [(0.3,), (0.35,)], lambda sy: 0.0, atol=1e-12)


# =============================================================================================
# 8. Miscellaneous: quadrature, root finding, series, in-place supports, interpolation
# =============================================================================================


def tapered_bar_elongation(taper, P=1.0, E=200.0, A0=0.01, L=2.0):
    """delta = int_0^L P / (E A(x)) dx, A(x) = A0 (1 - taper x / L), by scipy.integrate.quad."""
    val, err = scipy.integrate.quad(lambda x: P / (E * A0 * (1 - taper * x / L)), 0.0, L)
    return val


def cantilever_tip_mass_beta(mu):
    """First root of 1 + cos b cosh b + mu b (cos b sinh b - sin b cosh b) = 0
    (cantilever with a tip mass ratio mu), bracketed by [0.5, 1.9]."""
    g = lambda b: 1 + np.cos(b) * np.cosh(b) + mu * b * (np.cos(b) * np.sinh(b) - np.sin(b) * np.cosh(b))
    return scipy.optimize.brentq(g, 0.5, 1.9, xtol=1e-14)


def navier_plate(x, y, h, a=1.0, b=1.0, q0=1.0, E=200.0, nu=0.3, nterms=7):
    """Simply supported rectangular Kirchhoff plate under a uniform load: Navier's double sine
    series over odd m, n."""
    D = E * h ** 3 / (12 * (1 - nu ** 2))
    w = 0.0
    for m in range(1, 2 * nterms, 2):
        for n in range(1, 2 * nterms, 2):
            w = w + np.sin(m * np.pi * x / a) * np.sin(n * np.pi * y / b) / (m * n * ((m / a) ** 2 + (n / b) ** 2) ** 2)
    return 16 * q0 / (np.pi ** 6 * D) * w


def apply_penalty_supports_(K, f, dofs, penalty=1e8):
    """Penalty supports applied in place on the caller's K and f (as FE codes do)."""
    for d in dofs:
        K[d, d] += penalty
        f[d] = 0.0
    return K, f


def penalty_truss_tip(areas):
    K = assemble_truss_addat(TRUSS_NODES, TRUSS_ELEMS, areas)
    f = np.array(TRUSS_LOAD, like=areas)
    apply_penalty_supports_(K, f, TRUSS_FIXED, penalty=1e6)
    u = np.linalg.solve(K, f)
    return u[3]


def deflection_spline_max(EI_elems, L=2.0):
    """Cantilever deflection line through the FE nodal values by a CubicSpline (with the
    nodal rotations as end slopes); its value at a point between nodes."""
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2), like=EI_elems)
    for e in range(n):
        K[2 * e:2 * e + 4, 2 * e:2 * e + 4] += beam_element_k(EI_elems[e], h)
    f = np.zeros(2 * n + 2)
    f[-2] = 1.0
    u = np.concatenate([np.zeros(2), np.linalg.solve(K[2:, 2:], f[2:])])
    xs = np.linspace(0.0, L, n + 1)
    spline = scipy.interpolate.CubicSpline(xs, u[0::2], bc_type=((1, u[1]), (1, u[-1])))
    return spline(0.7 * L)


def test_tapered_bar_quad():
    t = 0.4
    want = tapered_bar_elongation(t)
    assert type(want) is float
    np.testing.assert_allclose(want, -1.0 * 2.0 / (200.0 * 0.01 * t) * np.log(1 - t), rtol=1e-12)
    assert_same(npfunc.jit(tapered_bar_elongation)(t), want)
    assert_same(npfunc.jit(tapered_bar_elongation)(0.2), tapered_bar_elongation(0.2))
    ref = lambda s: 2.0 / (200.0 * 0.01) * (np.log(1 - s) / s ** 2 + 1 / (s * (1 - s)))
    assert_repeats(npfunc.grad(tapered_bar_elongation), [(0.4,), (0.2,)], ref, rtol=1e-10)
    assert_repeats(npfunc.grad(npfunc.grad(tapered_bar_elongation)), [(0.4,), (0.2,)],
                   lambda s: fd(ref, np.array(s)).ravel()[0], rtol=1e-7)
    ts = np.array([0.1, 0.3, 0.5])
    assert_same(npfunc.vmap(tapered_bar_elongation)(ts), np.stack([tapered_bar_elongation(s) for s in ts]))
    assert_deriv(npfunc.grad(tapered_bar_elongation, argnums=1)(t, 2.0), want)     # linear in P


def test_cantilever_tip_mass_frequency_brentq():
    np.testing.assert_allclose(cantilever_tip_mass_beta(0.0), 1.8751040687, rtol=1e-9)
    want = cantilever_tip_mass_beta(0.5)
    assert_same(npfunc.jit(cantilever_tip_mass_beta)(0.5), want)
    assert_same(npfunc.jit(cantilever_tip_mass_beta)(0.2), cantilever_tip_mass_beta(0.2))
    ref = lambda mu: fd(cantilever_tip_mass_beta, np.array(mu), 1e-4).ravel()[0]
    assert_repeats(npfunc.grad(cantilever_tip_mass_beta), [(0.5,), (0.2,)], ref, rtol=1e-6)
    mus = np.array([0.1, 0.5, 1.0])
    assert_same(npfunc.vmap(cantilever_tip_mass_beta)(mus), np.stack([cantilever_tip_mass_beta(m) for m in mus]))
    assert_deriv(npfunc.vmap(npfunc.grad(cantilever_tip_mass_beta))(mus), np.array([ref(m) for m in mus]))


def test_navier_plate_series():
    w0 = navier_plate(0.5, 0.5, 0.05)
    D = 200.0 * 0.05 ** 3 / (12 * (1 - 0.09))
    np.testing.assert_allclose(w0 * D, 0.00406, rtol=2e-3)          # Timoshenko's 0.00406 q a^4 / D
    assert_jit_replays(navier_plate, (0.5, 0.5, 0.05), (0.3, 0.7, 0.04))
    # slopes along x and y over a grid of points by vmap(grad) with in_dims (0, 0, None)
    xs, ys = np.array([0.2, 0.5, 0.8]), np.array([0.3, 0.5, 0.6])
    gx, gy = npfunc.vmap(npfunc.grad(navier_plate, argnums=(0, 1)), in_dims=(0, 0, None))(xs, ys, 0.05)
    ref = np.array([fd(lambda p: navier_plate(p[0], p[1], 0.05), np.array([x, y])) for x, y in zip(xs, ys)])
    assert_deriv(np.stack([gx, gy], axis=1), ref, atol=1e-10)
    # curvature w_xx at the centre (bending moment), grad(grad) of a 0-d x, repeatedly
    wxx = npfunc.grad(npfunc.grad(navier_plate))
    assert_repeats(wxx, [(0.5, 0.5, 0.05), (0.3, 0.5, 0.05)],
                   lambda x, y, h: fd(lambda s: npfunc.grad(navier_plate)(s, y, h), np.array(x), 1e-4).ravel()[0])
    assert_repeats(npfunc.grad(navier_plate, argnums=2), [(0.5, 0.5, 0.05), (0.5, 0.5, 0.04)],
                   lambda x, y, h: -3 * navier_plate(x, y, h) / h, rtol=1e-12)
    # float32 thickness and coordinates
    x32, h32 = np.float32(0.5), np.float32(0.05)
    want32 = navier_plate(x32, x32, h32)
    assert want32.dtype == np.float32   # (Python-float constants keep float32 under NEP 50)
    assert_same(npfunc.jit(navier_plate)(x32, x32, h32), want32, rtol=1e-6)
    g32 = npfunc.grad(navier_plate, argnums=2)(x32, x32, h32)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, -3 * want32 / h32, rtol=1e-5)


def test_penalty_supports_in_place_side_effects():
    # plain: the caller's arrays are modified
    K = assemble_truss_plain(TRUSS_NODES, TRUSS_ELEMS, AREAS)
    f = TRUSS_LOAD.copy()
    K0 = K.copy()
    out = apply_penalty_supports_(K, f, TRUSS_FIXED, 1e6)
    assert out[0] is K and out[1] is f
    assert K[0, 0] == K0[0, 0] + 1e6 and f[TRUSS_FIXED].tolist() == [0.0, 0.0, 0.0]
    # under jit with plain arguments the same writes land in the caller's arrays, on record and replay
    jf = npfunc.jit(apply_penalty_supports_, static_argnums=(2, 3))
    for scale in (1.0, 2.0):
        Kj, fj = K0 * scale, TRUSS_LOAD * scale
        Kp, fp = K0 * scale, TRUSS_LOAD * scale
        want = apply_penalty_supports_(Kp, fp, tuple(TRUSS_FIXED), 1e6)
        got = jf(Kj, fj, tuple(TRUSS_FIXED), 1e6)
        np.testing.assert_array_equal(Kj, Kp)
        np.testing.assert_array_equal(fj, fp)
        _same_tree(got, want)
    # functionalize keeps the writes too
    Kf, ff = K0.copy(), TRUSS_LOAD.copy()
    npfunc.functionalize(apply_penalty_supports_)(Kf, ff, TRUSS_FIXED, 1e6)
    Kexp = K0.copy()
    Kexp[TRUSS_FIXED, TRUSS_FIXED] += 1e6
    np.testing.assert_array_equal(Kf, Kexp)
    np.testing.assert_array_equal(ff, np.where(np.isin(np.arange(10), TRUSS_FIXED), 0.0, TRUSS_LOAD))
    # the penalty solution approaches the exact one; derivative through the in-place updates
    np.testing.assert_allclose(penalty_truss_tip(AREAS), truss_solve(AREAS)[3], rtol=1e-4)
    assert_jit_replays(penalty_truss_tip, (AREAS,), (AREAS * 2,))
    assert_repeats(npfunc.grad(penalty_truss_tip), [(AREAS,), (AREAS * 2,)], lambda a: fd(penalty_truss_tip, a))
    assert_same(npfunc.vmap(penalty_truss_tip)(np.stack([AREAS, AREAS * 2])),
                np.stack([penalty_truss_tip(AREAS), penalty_truss_tip(AREAS * 2)]))


def test_deflection_line_cubic_spline():
    EI = np.array([10.0, 12.0, 9.0, 11.0])
    want = deflection_spline_max(EI)
    assert_jit_replays(deflection_spline_max, (EI,), (EI * 1.5,))
    assert_repeats(npfunc.grad(deflection_spline_max), [(EI,), (EI * 1.5,)],
                   lambda e: fd(deflection_spline_max, e, 1e-3))
    # a uniform cantilever: cubic deflection between nodes is reproduced by the clamped spline
    uni = deflection_spline_max(np.full(4, 10.0))
    x = 1.4
    np.testing.assert_allclose(uni, x ** 2 * (3 * 2.0 - x) / (6 * 10.0), rtol=1e-12)
    assert_same(npfunc.vmap(deflection_spline_max)(np.stack([EI, EI[::-1]])),
                np.stack([want, deflection_spline_max(EI[::-1])]))


# ---- shear and moment diagrams ------------------------------------------------------------------


def beam_diagrams(w, L=6.0, EI=50.0):
    """Simply supported beam with a distributed load sampled at len(w) points: reactions,
    shear by cumulative_trapezoid, moment by a second one, the largest moment and where it
    is, and the strain energy int M^2 / (2 EI) by Simpson's rule."""
    x = np.linspace(0.0, L, len(w))
    total = scipy.integrate.trapezoid(w, x)
    moment_about_0 = scipy.integrate.trapezoid(w * x, x)
    RB = moment_about_0 / L
    RA = total - RB
    V = RA - scipy.integrate.cumulative_trapezoid(w, x, initial=0.0)
    M = scipy.integrate.cumulative_trapezoid(V, x, initial=0.0)
    i = np.argmax(np.abs(M))
    U = scipy.integrate.simpson(M ** 2 / (2 * EI), x=x)
    x = np.asarray(x, like=M)       # (x[i] with i computed from the load: the refusal's fix)
    return {"V": V, "M": M, "M_max": M[i], "x_max": x[i], "U": U}


def test_beam_diagrams_cumulative_integrals():
    x = np.linspace(0.0, 6.0, 13)
    w = 2.0 + 0.5 * np.sin(x)
    want = beam_diagrams(w)
    # uniform load: M_max = w L^2 / 8 at midspan
    uni = beam_diagrams(np.full(13, 2.0))
    np.testing.assert_allclose(uni["M_max"], 2.0 * 36 / 8, rtol=1e-12)
    assert uni["x_max"] == 3.0
    assert_jit_replays(beam_diagrams, (w,), (w[::-1].copy(),))
    def x_of_max_plain(q):
        x = np.linspace(0.0, 6.0, len(q))
        M = scipy.integrate.cumulative_trapezoid(np.cumsum(q), x, initial=0.0)
        return x[np.argmax(np.abs(M))]
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np.asarray\(table, like=i\)"):
        npfunc.jit(x_of_max_plain)(w)
    for key in ("M_max", "U"):
        f = lambda q: beam_diagrams(q)[key]
        assert_repeats(npfunc.grad(f), [(w,), (w * 2,)], lambda q: fd(f, q))
    assert_deriv(npfunc.jacfwd(lambda q: beam_diagrams(q)["M"])(w), fd(lambda q: beam_diagrams(q)["M"], w), atol=1e-9)
    U = lambda q: beam_diagrams(q)["U"]
    assert_repeats(npfunc.hessian(U), [(w,), (w * 2,)], lambda q: fd(lambda p: npfunc.grad(U)(p), q, 1e-3),
                   atol=1e-10)
    ws = np.stack([w, w * 2, w[::-1]])
    out = npfunc.vmap(beam_diagrams)(ws)
    for key in want:
        assert_same(out[key], np.stack([beam_diagrams(q)[key] for q in ws]))


# ---- geometrically nonlinear two-bar truss by Newton-Raphson --------------------------------------


def von_mises_truss(P, h=0.3, b=1.0, EA=100.0, tol=1e-12, maxit=50, v0=0.0):
    """Shallow two-bar (von Mises) truss, apex load P downwards; Green strain bars; Newton
    iterations on the apex deflection until the residual is below tol. Returns (v, iters)."""
    L0 = np.sqrt(b ** 2 + h ** 2)
    v = v0
    for it in range(maxit):
        L2 = b ** 2 + (h - v) ** 2
        eps = (L2 - L0 ** 2) / (2 * L0 ** 2)
        N = EA * eps
        r = -2 * N * (h - v) / L0 - P         # internal vertical resistance minus load
        if abs(r) < tol:
            break
        kt = 2 * EA * (h - v) ** 2 / L0 ** 3 + 2 * N / L0
        v = v - r / kt
    return v, it


def test_von_mises_truss_newton():
    P = 0.5          # below the limit load 0.913
    v, iters = von_mises_truss(P)
    assert 0 < v < 0.3 and iters < 50
    # the apex deflection's derivative in P is 1 / tangent stiffness at equilibrium
    dv = npfunc.grad(lambda p: von_mises_truss(p)[0])(P)
    assert_deriv(dv, fd(lambda p: von_mises_truss(p)[0], np.array(P), 1e-4).ravel()[0], rtol=1e-6)
    # the loop exits on a value: jit refuses a traced load, naming the fixes; a Python float
    # is static (one recording per value), each with the plain result and iteration count
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit.*np.where"):
        npfunc.jit(von_mises_truss)(np.float64(P))
    jf = npfunc.jit(von_mises_truss)
    for p in (0.5, 0.3):
        got = jf(p)
        _same_tree(got, von_mises_truss(p))
        assert type(got[1]) is int
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap"):
        npfunc.vmap(von_mises_truss)(np.array([0.3, 0.5]))
    assert_repeats(npfunc.grad(lambda p: von_mises_truss(p)[0]), [(0.5,), (0.3,)],
                   lambda p: fd(lambda q: von_mises_truss(q)[0], np.array(p), 1e-4).ravel()[0], rtol=1e-6)
    # the iteration count is a plain int, as without npfunc
    seen = []
    npfunc.grad(lambda p: seen.append(von_mises_truss(p)[1]) or von_mises_truss(p)[0])(P)
    assert seen == [iters] and type(seen[0]) is int


def von_mises_truss_energy(v, P, h=0.3, b=1.0, EA=100.0):
    L0 = np.sqrt(b ** 2 + h ** 2)
    eps = (b ** 2 + (h - v) ** 2 - L0 ** 2) / (2 * L0 ** 2)
    return 2 * 0.5 * EA * eps ** 2 * L0 - P * v


def equilibrium_by_minimize(P):
    res = scipy.optimize.minimize(lambda v: von_mises_truss_energy(v[0], P), np.array([0.0]), method="BFGS",
                                  options={"gtol": 1e-8})
    return res.x[0]


def test_equilibrium_by_minimize():
    P = 0.5
    # a gtol the line search cannot reach: SciPy reports failure, and grad refuses to
    # differentiate the unconverged result (naming the fix) instead of returning a derivative
    strict = lambda p: scipy.optimize.minimize(lambda v: von_mises_truss_energy(v[0], p), np.array([0.0]),
                                               method="BFGS", options={"gtol": 1e-10}).x[0]
    assert not scipy.optimize.minimize(lambda v: von_mises_truss_energy(v[0], P), np.array([0.0]),
                                       method="BFGS", options={"gtol": 1e-10}).success
    with pytest.raises(npfunc.errors.NpfuncError, match=r"grad.*did not converge.*tolerances"):
        npfunc.grad(strict)(P)
    want = equilibrium_by_minimize(P)
    # BFGS from v = 0 lands on the snapped-through (inverted) equilibrium at P = 0.5 and on
    # the near one at P = 0.3: Newton from the minimiser's answer follows the same branch
    newton = lambda p: von_mises_truss(p, v0=equilibrium_by_minimize(float(p)))[0]
    np.testing.assert_allclose(want, newton(P), rtol=1e-7)
    assert want > 0.3 and equilibrium_by_minimize(0.3) < 0.3
    assert_same(npfunc.jit(equilibrium_by_minimize)(np.float64(P)), want)
    assert_same(npfunc.jit(equilibrium_by_minimize)(np.float64(0.3)), equilibrium_by_minimize(0.3))
    ref = lambda p: fd(newton, np.array(p), 1e-4).ravel()[0]
    assert_repeats(npfunc.grad(equilibrium_by_minimize), [(P,), (0.3,)], ref, rtol=1e-6)
    assert_same(npfunc.vmap(equilibrium_by_minimize)(np.array([0.3, 0.5])),
                np.stack([equilibrium_by_minimize(0.3), equilibrium_by_minimize(0.5)]))


# ---- structural reliability (FORM, linear limit state) -----------------------------------------------


def beam_reliability(means, covs, L=4.0, b=0.2, h=0.4):
    """Simply supported beam, limit state g = fy Z - q L^2 / 8 with independent normal fy and q:
    reliability index and failure probability, as a dict."""
    Z = b * h ** 2 / 6
    mu_fy, mu_q = means
    s_fy, s_q = means * covs
    mu_g = mu_fy * Z - mu_q * L ** 2 / 8
    s_g = np.sqrt((s_fy * Z) ** 2 + (s_q * L ** 2 / 8) ** 2)
    beta = mu_g / s_g
    return {"beta": beta, "pf": scipy.stats.norm.cdf(-beta), "log10_pf": np.log10(scipy.stats.norm.sf(beta))}


def test_beam_reliability_form():
    import scipy.stats  # noqa: F401
    means = np.array([250e3, 250.0])
    covs = np.array([0.15, 0.3])
    want = beam_reliability(means, covs)
    assert 2 < want["beta"] < 5
    _same_tree(npfunc.jit(beam_reliability)(means, covs), want)
    f = lambda c: beam_reliability(means, c)["log10_pf"]
    assert_repeats(npfunc.grad(f), [(covs,), (covs * 1.2,)], lambda c: fd(f, c, 1e-6))
    assert_repeats(npfunc.hessian(f), [(covs,), (covs * 1.2,)], lambda c: fd(lambda p: npfunc.grad(f)(p), c, 1e-6),
                   rtol=1e-5)
    cs = np.stack([covs, covs * 0.5, covs * 2]).T.copy()
    out = npfunc.vmap(beam_reliability, in_dims=(None, 1))(means, cs)
    for key in want:
        assert_same(out[key], np.stack([beam_reliability(means, c)[key] for c in cs.T]))


# ---- float32 modal analysis, flexibility matrix, determinant sign -------------------------------------


def chain_modes_f32(k, m):
    K, M = chain_matrices(k, m)
    Minv_sqrt = np.diag(1 / np.sqrt(m))
    w2, _ = np.linalg.eigh(Minv_sqrt @ K @ Minv_sqrt)
    return np.sqrt(w2)


def flexibility_and_stability(k, P, kg=np.array([1.0, 0.5, 0.25])):
    """Flexibility F = K^-1 with a stiffening spring added in place on the diagonal, and the
    sign and log-determinant of K - P KG (negative: past the buckling load)."""
    K, _ = chain_matrices(k, np.ones(len(k)))
    K[np.diag_indices_from(K)] += 0.1 * k
    F = np.linalg.inv(K)
    sign, logdet = np.linalg.slogdet(K - P * np.diag(kg))
    return F, sign, logdet


def test_float32_modes_and_flexibility():
    k32 = np.array([10.0, 8.0, 6.0], dtype=np.float32)
    m32 = np.array([1.0, 1.5, 0.8], dtype=np.float32)
    want = chain_modes_f32(k32, m32)
    assert want.dtype == np.float32
    assert_same(npfunc.jit(chain_modes_f32)(k32, m32), want, rtol=1e-6)
    assert_same(npfunc.vmap(chain_modes_f32, in_dims=(0, None))(np.stack([k32, k32 * 2]), m32),
                np.stack([want, chain_modes_f32(k32 * 2, m32)]), rtol=1e-6)
    g = npfunc.grad(lambda k: chain_modes_f32(k, m32)[0])(k32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, fd(lambda k: chain_modes_f32(k, m32.astype(float))[0], k32.astype(float)), rtol=1e-4)
    k = np.array([10.0, 8.0, 6.0])
    want = flexibility_and_stability(k, 2.0)
    _same_tree(npfunc.jit(flexibility_and_stability)(k, 2.0), want)
    _same_tree(npfunc.jit(flexibility_and_stability)(k, 10.0), flexibility_and_stability(k, 10.0))
    assert flexibility_and_stability(k, 10.0)[1] == -1.0       # past the first critical load 5.85
    F = lambda q: flexibility_and_stability(q, 2.0)[0]
    assert_deriv(npfunc.jacrev(F)(k), fd(F, k))
    ld = lambda p: flexibility_and_stability(k, p)[2]
    assert_repeats(npfunc.grad(ld), [(2.0,), (3.0,)], lambda p: fd(ld, np.array(p)).ravel()[0])
    assert_repeats(npfunc.grad(npfunc.grad(ld)), [(2.0,), (3.0,)],
                   lambda p: fd(lambda s: npfunc.grad(ld)(s), np.array(p), 1e-4).ravel()[0])


def von_mises_residual(v, P, h=0.3, b=1.0, EA=100.0):
    L0 = np.sqrt(b ** 2 + h ** 2)
    N = EA * (b ** 2 + (h - v) ** 2 - L0 ** 2) / (2 * L0 ** 2)
    return -2 * N * (h - v) / L0 - P


EQUILIBRIUM_SOLVERS = {
    "root": lambda P: scipy.optimize.root(lambda v: von_mises_residual(v, P), np.array([0.0])).x[0],
    "fsolve": lambda P: scipy.optimize.fsolve(lambda v: von_mises_residual(v, P), np.array([0.0]))[0],
    "newton": lambda P: scipy.optimize.newton(lambda v: von_mises_residual(v, P), 0.0),
    "minimize": lambda P: scipy.optimize.minimize(lambda v: von_mises_truss_energy(v[0], P), np.array([0.0]),
                                                  method="BFGS").x[0],
}


@pytest.mark.parametrize("solver", list(EQUILIBRIUM_SOLVERS))
def test_equilibrium_solvers_under_vmap_are_the_loops(solver):
    """Regression: vmap of root/fsolve/newton/minimize solved the batch as one stacked SciPy
    problem; with loads past the limit point in the batch (whose own solves fail or snap
    through) the stacked solve moved the other elements off their own solutions (root at
    P = 0.3: 0.02178 instead of 0.02115; newton at P = 0.95 returned a non-root). Each
    element is now solved by the plain program's own SciPy call."""
    f = EQUILIBRIUM_SOLVERS[solver]
    Ps = np.array([0.3, 0.5, 0.85, 0.95, 1.2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # (the loads past the limit point)
        want = np.stack([f(p) for p in Ps])
        got = npfunc.vmap(f)(Ps)
        got_jit = npfunc.jit(npfunc.vmap(f))(Ps)
    assert_same(got, want)
    assert_same(got_jit, want)
    # below the limit load every solver converges: per-sample derivatives by the theorem
    ok = Ps[:3]
    slopes = npfunc.vmap(npfunc.grad(f))(ok)
    # the implicit function theorem at the solver's own answer v: dv/dP = 1 / k_t(v)
    def tangent_stiffness(v, h=0.3, b=1.0, EA=100.0):
        L0 = np.sqrt(b ** 2 + h ** 2)
        N = EA * (b ** 2 + (h - v) ** 2 - L0 ** 2) / (2 * L0 ** 2)
        return 2 * EA * (h - v) ** 2 / L0 ** 3 + 2 * N / L0
    assert_deriv(slopes, 1 / tangent_stiffness(want[:3]), rtol=1e-10)


def cantilever_lowest_modes_subset(EI_elems, rhoA=1.0, L=2.0):
    """The first three frequencies asked of LAPACK directly (subset_by_index)."""
    n = len(EI_elems)
    h = L / n
    K = np.zeros((2 * n + 2, 2 * n + 2), like=EI_elems)
    M = np.zeros_like(K)
    for e in range(n):
        s = slice(2 * e, 2 * e + 4)
        K[s, s] += beam_element_k(EI_elems[e], h)
        M[s, s] += beam_element_m(rhoA, h)
    lam = scipy.linalg.eigh(K[2:, 2:], M[2:, 2:], eigvals_only=True, subset_by_index=[0, 2])
    return np.sqrt(lam) / (2 * np.pi)


def test_eigh_subset_by_index_refused_naming_the_slice():
    EI = np.array([10.0, 11.0, 9.0, 10.5, 10.0])
    np.testing.assert_allclose(cantilever_lowest_modes_subset(EI), cantilever_modes(EI), rtol=1e-10)
    for tf in (npfunc.grad, npfunc.jit):
        f = (lambda e: cantilever_lowest_modes_subset(e)[0]) if tf is npfunc.grad else cantilever_lowest_modes_subset
        with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"subset_by_index.*w\[lo:hi \+ 1\]"):
            tf(f)(EI)
    # the fix named there is cantilever_modes (all eigenvalues, then a slice)
    assert_deriv(npfunc.grad(lambda e: cantilever_modes(e)[0])(EI), fd(lambda e: cantilever_modes(e)[0], EI, 1e-3))


def heat1d_checkpointed(kappa, nsteps=6, dt=0.02, n=8):
    """heat1d_backward_euler with each step wrapped in npfunc.checkpoint (memory for long runs)."""
    h = 1.0 / n
    K = kappa / h * (np.diag(2.0 * np.ones(n - 1)) - np.diag(np.ones(n - 2), 1) - np.diag(np.ones(n - 2), -1))
    M = h * np.eye(n - 1)
    u = np.sin(np.pi * np.linspace(0, 1, n + 1)[1:-1])
    lu = scipy.linalg.lu_factor(M / dt + K)
    step = npfunc.checkpoint(lambda u, lu0, lu1: scipy.linalg.lu_solve((lu0, lu1), M @ u / dt))
    mid = []
    for _ in range(nsteps):
        u = step(u, lu[0], lu[1])
        mid.append(u[n // 2 - 1])
    return np.array(mid)


def test_linearize_and_checkpoint():
    y, f_jvp = npfunc.linearize(truss_solve, AREAS)
    assert_same(y, truss_solve(AREAS))
    J = fd(truss_solve, AREAS)
    for v in (np.ones(7), np.linspace(-1, 1, 7)):
        for _ in range(3):
            assert_deriv(f_jvp(v), J @ v)
    np.testing.assert_allclose(heat1d_checkpointed(1.0), heat1d_backward_euler(1.0), rtol=1e-14)
    last = lambda k: heat1d_checkpointed(k)[-1]
    assert_repeats(npfunc.grad(last), [(1.0,), (0.6,)], lambda k: fd(lambda q: heat1d_backward_euler(q)[-1],
                                                                       np.array(k)).ravel()[0])
    assert_same(npfunc.jit(heat1d_checkpointed)(np.float64(0.7)), heat1d_checkpointed(np.float64(0.7)))
