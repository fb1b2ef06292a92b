"""Registry samples for the ``npfunc.scipy.linalg`` twins: each twin is a
``Composite`` named ``npfunc.scipy.linalg.<name>`` whose target calls it as a
user would, so the generated tests (tests/test_registry.py) check its value
under every transform, JVP against central differences, the adjoint
identity, vmap against a loop and second order."""
from __future__ import annotations

import numpy as np

from ..core.primitive import Composite, Sample
from ..primitives.linalg.banded import random_band, spd_band
from ..primitives.linalg.common import complex_matrix, general_matrix, spd_matrix
from ..primitives.sampling import FLOATS, array
from . import _linalg_decomp as D
from . import _linalg_special as S


def _register(name, target, samples, notes="", differentiable=True):
    Composite(f"npfunc.scipy.linalg.{name}", target, samples=samples, differentiable=differentiable, notes=notes)


def _real_schur_matrix(rng, shape, dtype=np.float64):
    """A matrix with well separated real eigenvalues (a real Schur form without blocks)."""
    n = shape[-1]
    q, _ = np.linalg.qr(array(rng, shape, np.float64, (-1.0, 1.0)))
    t = np.triu(array(rng, shape, np.float64, (-1.0, 1.0)), 1) + np.diag(np.linspace(-2.0, 2.0, n) + 0.3)
    return (q @ t @ np.swapaxes(q, -1, -2)).astype(dtype)


def _pd_like(rng, shape, dtype=np.float64):
    return (spd_matrix(rng, shape, np.float64) + 0.2 * np.triu(array(rng, shape, np.float64, (-1.0, 1.0)), 1)
            ).astype(dtype)


# ---- decompositions -----------------------------------------------------------------------------

def _lu_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt)), Sample(array(rng, (4, 2), dt), label="tall"),
                Sample(array(rng, (2, 3), dt), label="wide")]
    out += [Sample(general_matrix(rng, (3, 3), np.float64), permute_l=True, label="permute_l"),
            Sample(general_matrix(rng, (3, 3), np.float64), p_indices=True, label="p_indices"),
            Sample(complex_matrix(rng, (3, 3), general_matrix), label="complex"),
            Sample(np.arange(4.0).reshape(2, 2) + np.eye(2), label="integer-valued")]
    return out


_register("lu", D.lu, _lu_samples, "pivot order held fixed (piecewise constant); a = p @ l @ u")
_register("lu_factor", lambda a: D.lu_factor(a)[0],
          lambda rng: [Sample(general_matrix(rng, (3, 3), dt)) for dt in FLOATS]
          + [Sample(array(rng, (4, 3)), label="tall"), Sample(array(rng, (2, 4)), label="wide")],
          "the combined lu array; piv has no derivative")


def _lu_solve_call(a, b, *, trans=0):
    return D.lu_solve(D.lu_factor(a), b, trans=trans)


def _lu_solve_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(general_matrix(rng, (3, 3), dt), array(rng, (3,), dt)),
                Sample(general_matrix(rng, (3, 3), dt), array(rng, (3, 2), dt), trans=1)]
    out += [Sample(general_matrix(rng, (3, 3), np.float64), array(rng, (3, 2)), trans=2, label="trans 2"),
            Sample(complex_matrix(rng, (3, 3), general_matrix), array(rng, (3,)) + 1j, trans=2, label="complex")]
    return out


_register("lu_solve", _lu_solve_call, _lu_solve_samples, "through lu_factor: derivatives in a and b")


def _schur_call(a, *, output="real", sort=None):
    out = D.schur(a, output=output, sort=sort)
    if output == "complex":  # phase-invariant functions of the complex Schur form
        t, z = out
        return np.diagonal(t), z @ t @ np.conj(z.T), np.abs(t)
    return out[:2]


def _schur_samples(rng):
    out = [Sample(_real_schur_matrix(rng, (3, 3), dt)) for dt in FLOATS]
    out += [Sample(_real_schur_matrix(rng, (4, 4)), sort="iuc", label="sorted"),
            Sample(_real_schur_matrix(rng, (3, 3)), output="complex", label="complex output"),
            Sample(complex_matrix(rng, (3, 3), general_matrix), output="complex", label="complex input")]
    return out


_register("schur", _schur_call, _schur_samples,
          "real Schur forms with real eigenvalues; complex forms through phase-invariant functions")
_register("hessenberg", D.hessenberg,
          lambda rng: [Sample(array(rng, (4, 4), dt, (-1.0, 1.0)), calc_q=True) for dt in FLOATS]
          + [Sample(array(rng, (3, 3), np.float64, (-1.0, 1.0)), label="H only"),
             Sample(complex_matrix(rng, (4, 4), general_matrix), calc_q=True, label="complex")],
          "Q e1 = e1; complex: LAPACK's real subdiagonal")
_register("polar", D.polar,
          lambda rng: [Sample(general_matrix(rng, (3, 3), dt)) for dt in FLOATS]
          + [Sample(array(rng, (4, 2)), side="left", label="tall, left"),
             Sample(array(rng, (4, 2)), label="tall"),
             Sample(complex_matrix(rng, (2, 2), general_matrix), label="complex")],
          "from the thin SVD, as SciPy")

# ---- matrix functions ----------------------------------------------------------------------------


def _matfunc_samples(rng):
    out = [Sample(_pd_like(rng, (3, 3), dt)) for dt in FLOATS]
    out += [Sample(_pd_like(rng, (2, 2)), disp=False, label="disp=False"),
            Sample(np.array([[-1.0, 0.5], [0.2, 2.0]]), label="negative eigenvalue: complex result"),
            Sample(_pd_like(rng, (2, 2)) + 0.3j * np.eye(2), label="complex")]
    return out


_register("sqrtm", D.sqrtm, _matfunc_samples, "X dX + dX X = dA")
_register("logm", D.logm, _matfunc_samples, "block-triangular Fréchet derivative")



def _trig_samples(rng):
    out = [Sample(general_matrix(rng, (3, 3), dt)) for dt in FLOATS]
    return out + [Sample(complex_matrix(rng, (2, 2), general_matrix), label="complex"),
                  Sample(array(rng, (2, 3, 3)), label="stack")]


def _cosm_call(a):
    from .linalg import cosm

    return cosm(a)


def _sinm_call(a):
    from .linalg import sinm

    return sinm(a)


_register("cosm", _cosm_call, _trig_samples,
          "expm(1j A).real (complex A: the mean of expm(+-1j A)), as SciPy")
_register("sinm", _sinm_call, _trig_samples,
          "expm(1j A).imag (complex A: -0.5j (expm(1j A) - expm(-1j A))), as SciPy")

_FUNCS = {"exp": np.exp, "sin": np.sin, "cubic": lambda z: z ** 3 - 2 * z, "sqrt": np.sqrt}


def _funm_call(a, *, func="exp", disp=True):
    return D.funm(a, _FUNCS[func], disp=disp)


def _funm_samples(rng):
    out = [Sample(_real_schur_matrix(rng, (3, 3)), func=f) for f in ("exp", "sin", "cubic")]
    rot = np.array([[0.5, -1.0, 0.2], [1.0, 0.5, 0.1], [0.0, 0.3, 2.0]])  # a complex-conjugate pair
    out += [Sample(rot, func="exp", label="complex eigenvalues, real result"),
            Sample(_pd_like(rng, (3, 3)), func="sqrt", label="sqrt"),
            Sample(complex_matrix(rng, (3, 3), general_matrix), func="sin", label="complex"),
            Sample(_real_schur_matrix(rng, (2, 2)), func="exp", disp=False, label="disp=False")]
    return out


_register("funm", _funm_call, _funm_samples, "Schur-Parlett; distinct eigenvalues required")

# ---- matrix equations ----------------------------------------------------------------------------


def _sylv_samples(rng):
    return [Sample(general_matrix(rng, (3, 3), dt), spd_matrix(rng, (2, 2), dt) + 3 * np.eye(2, dtype=dt),
                   array(rng, (3, 2), dt)) for dt in FLOATS] + [
        Sample(general_matrix(rng, (2, 2), np.float64) + 0.5j, spd_matrix(rng, (2, 2), np.float64),
               array(rng, (2, 2)), label="complex")]


_register("solve_sylvester", D.solve_sylvester, _sylv_samples)
_register("solve_continuous_lyapunov", D.solve_continuous_lyapunov,
          lambda rng: [Sample(general_matrix(rng, (3, 3), dt) - 3 * np.eye(3, dtype=dt), array(rng, (3, 3), dt))
                       for dt in FLOATS]
          + [Sample(general_matrix(rng, (2, 2), np.float64) - 3 + 1j, array(rng, (2, 2)), label="complex")])
_register("solve_discrete_lyapunov", D.solve_discrete_lyapunov,
          lambda rng: [Sample((0.3 * general_matrix(rng, (3, 3), dt)).astype(dt), array(rng, (3, 3), dt))
                       for dt in FLOATS]
          + [Sample(0.05 * general_matrix(rng, (11, 11), np.float64), array(rng, (11, 11)), method="bilinear",
                    label="bilinear"),
             Sample(0.3 * general_matrix(rng, (2, 2), np.float64), array(rng, (2, 2)), method="direct",
                    label="direct")])


def _banded_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(random_band(rng, (), 5, 1, 2, dt), array(rng, (5,), dt), l_and_u=(1, 2)),
                Sample(random_band(rng, (), 4, 1, 1, dt), array(rng, (4, 3), dt), l_and_u=(1, 1))]
    out.append(Sample(random_band(rng, (), 4, 2, 0, np.float64) + 0.3j, array(rng, (4,)), l_and_u=(2, 0),
                      label="complex lower"))
    return out


_register("solve_banded", lambda ab, b, *, l_and_u: D.solve_banded(l_and_u, ab, b), _banded_samples,
          "LAPACK band storage; entries outside the matrix get zero derivative")
_register("solveh_banded", D.solveh_banded,
          lambda rng: [Sample(spd_band(rng, (), 5, 1, False, dt), array(rng, (5,), dt)) for dt in FLOATS]
          + [Sample(spd_band(rng, (), 5, 2, True, np.float64), array(rng, (5, 2)), lower=True, label="lower")],
          "one triangle of the band is read")


def _tridiag_samples(rng):
    out = [Sample(array(rng, (5,), dt, (-1.0, 1.0)), array(rng, (4,), dt, (0.3, 1.0))) for dt in FLOATS]
    out += [Sample(array(rng, (4,), np.float64, (-1.0, 1.0)), array(rng, (3,), np.float64, (0.3, 1.0)),
                   eigvals_only=True, label="eigenvalues"),
            Sample(array(rng, (5,), np.float64, (-1.0, 1.0)), array(rng, (4,), np.float64, (0.3, 1.0)),
                   select="i", select_range=(0, 1), label="index subset")]
    return out


_register("eigh_tridiagonal", D.eigh_tridiagonal, _tridiag_samples, "signs are SciPy's")

# ---- special matrices ----------------------------------------------------------------------------

_register("block_diag", lambda a, b, c: S.block_diag(a, b, c),
          lambda rng: [Sample(array(rng, (2, 2), dt), array(rng, (1, 3), dt), array(rng, (3,), dt)) for dt in FLOATS]
          + [Sample(array(rng, (2, 2)), np.float64(1.5), array(rng, (2, 1, 1)) + 1j, label="scalar, stacked, complex")])
_register("toeplitz", S.toeplitz,
          lambda rng: [Sample(array(rng, (3,), dt), array(rng, (4,), dt)) for dt in FLOATS]
          + [Sample(array(rng, (3,)) + 1j * array(rng, (3,)), label="hermitian default"),
             Sample(array(rng, (2, 3)), array(rng, (4,)), label="stacked")])
_register("circulant", S.circulant,
          lambda rng: [Sample(array(rng, (4,), dt)) for dt in FLOATS] + [Sample(array(rng, (2, 3)), label="stacked")])
_register("hankel", S.hankel,
          lambda rng: [Sample(array(rng, (3,), dt), array(rng, (4,), dt)) for dt in FLOATS]
          + [Sample(array(rng, (3,)), label="zero last row")])
_register("companion", S.companion,
          lambda rng: [Sample(array(rng, (4,), dt, (0.5, 2.0))) for dt in FLOATS]
          + [Sample(array(rng, (2, 3), np.float64, (0.5, 2.0)), label="stacked")])
