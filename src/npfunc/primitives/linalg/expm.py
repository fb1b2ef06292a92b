"""The matrix exponential (primitive behind ``npfunc.scipy.linalg.expm``).

Its derivative is the Fréchet derivative ``L(A, E)``, read off the
top-right block of ``expm([[A, E], [0, A]])``; the VJP uses the adjoint
``L(A, .)^* = L(A^H, .)``.  Both are built from the primitive itself, so
every order of derivative and batching work.  SciPy is imported on first
use, not with npfunc.
"""
from __future__ import annotations


from ...core.primitive import Primitive, Sample
from ...core.values import ndim_of, shape_of
from .common import as_inexact, check_square, mH, stacked_batch
from ..elementwise.arithmetic import zeros_like
from ..families import fit_cotangent
from ..sampling import FLOATS, array
from ..shape.basic import concatenate_arrays


def _expm_impl(a):
    from scipy.linalg import expm

    return expm(a)


def frechet(a, e):
    """The Fréchet derivative of expm at ``a`` in direction ``e`` (same shapes)."""
    n = shape_of(a)[-1]
    nd = max(ndim_of(a), ndim_of(e))
    top = concatenate_arrays([a, e], nd - 1)
    bottom = concatenate_arrays([zeros_like(a), a], nd - 1)
    block = _expm.bind(concatenate_arrays([top, bottom], nd - 2))
    return block[..., :n, n:]


def _expm_samples(rng):
    out = []
    for dt in FLOATS:
        out += [Sample(array(rng, (3, 3), dt, (-1.0, 1.0))),
                Sample(array(rng, (2, 3, 3), dt, (-1.0, 1.0)), label="stacked"),
                Sample(array(rng, (2, 2), dt, (-3.0, 3.0)), label="larger norm")]
    out.append(Sample(array(rng, (3, 3)) + 1j * array(rng, (3, 3)), label="complex"))
    return out


_expm = Primitive(
    "expm", _expm_impl,
    jvp=lambda primals, tangents, out: frechet(primals[0], tangents[0]),
    vjp=lambda g, primals, out, needs: (fit_cotangent(frechet(mH(primals[0]), g), primals[0]),),
    samples=_expm_samples,
    notes="Fréchet derivative by the block-triangular expm([[A, E], [0, A]]); VJP by its adjoint "
          "L(A^H, .)")
_expm.batch = stacked_batch(_expm)


def expm(a):
    """The matrix exponential of a (stack of) square matrices (``scipy.linalg.expm``)."""
    check_square(a, "expm")
    return _expm.bind(as_inexact(a))


expm.primitive = _expm  # type: ignore[attr-defined]

