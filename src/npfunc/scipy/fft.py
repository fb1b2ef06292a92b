"""``npfunc.scipy.fft``: SciPy's discrete Fourier transforms on traced values.

``scipy.fft.rfft(x)`` hands ``x`` to compiled code, which a traced value
cannot enter; while npfunc is imported, SciPy's functions with a twin here
call it when an argument is traced (``scipy/_routing.py``).  The twins are
npfunc's ``np.fft`` transforms (the same pocketfft algorithms, so the values
equal SciPy's to rounding and the dtypes are SciPy's: ``float32`` in,
``complex64`` out), with SciPy's extra arguments: ``overwrite_x`` and
``workers`` change no value, and ``plan`` is refused as SciPy refuses it.
The real-to-real transforms (``dct``, ``dst``, ``fht`` and their inverses)
have no rules yet: on traced values they raise an error naming the fix.

>>> import numpy as np, npfunc, scipy.fft
>>> x = np.array([1.0, 2.0, 0.0, -1.0])
>>> npfunc.grad(lambda v: np.abs(scipy.fft.rfft(v)[1]) ** 2)(x)
array([ 2.,  6., -2., -6.])
"""
from __future__ import annotations

from ..core.context import describe_stack
from ..core.errors import UnsupportedOperationError
from ..numpy import fft as _npfft
from ..primitives.elementwise.arithmetic import conjugate as _conjugate
from ._routing import traced as _traced

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn",
           "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn",
           "dct", "idct", "dst", "idst", "dctn", "idctn", "dstn", "idstn", "fht", "ifht"]

#: ``hfft`` is an inverse real transform of the conjugate with the normalisation moved to the other side
_SWAP = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _check_plan(name: str, plan) -> None:
    if plan is not None:
        raise NotImplementedError(f"scipy.fft.{name}: plan= takes a precomputed plan from another FFT backend, "
                                  "which SciPy's own transforms do not use; leave it out")


def _check_norm(name: str, norm):
    if norm not in _SWAP:
        raise ValueError(f'scipy.fft.{name}: invalid norm value {norm!r}; should be "backward", "ortho" or "forward"')
    return norm


def _one_dimensional(name: str):
    transform = getattr(_npfft, name)

    def twin(x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None, *, plan=None):
        _check_plan(name, plan)
        return transform(x, n, axis, _check_norm(name, norm))

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = f"``scipy.fft.{name}`` (computed as ``np.fft.{name}``)."
    return twin


def _n_dimensional(name: str, default_axes):
    transform = getattr(_npfft, name)

    def twin(x, s=None, axes=default_axes, norm=None, overwrite_x=False, workers=None, *, plan=None):
        _check_plan(name, plan)
        return transform(x, s, axes, _check_norm(name, norm))

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = f"``scipy.fft.{name}`` (computed as ``np.fft.{name}``)."
    return twin


fft, ifft, rfft, irfft, hfft, ihfft = (_one_dimensional(n) for n in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft"))
fft2, ifft2, rfft2, irfft2 = (_n_dimensional(n, (-2, -1)) for n in ("fft2", "ifft2", "rfft2", "irfft2"))
fftn, ifftn, rfftn, irfftn = (_n_dimensional(n, None) for n in ("fftn", "ifftn", "rfftn", "irfftn"))


def hfftn(x, s=None, axes=None, norm=None, overwrite_x=False, workers=None, *, plan=None):
    """``scipy.fft.hfftn``: the real N-D spectrum of a Hermitian-symmetric signal,
    ``irfftn`` of its conjugate with the normalisation on the other side."""
    _check_plan("hfftn", plan)
    return _npfft.irfftn(_conjugate(x), s, axes, _SWAP[_check_norm("hfftn", norm)])


def ihfftn(x, s=None, axes=None, norm=None, overwrite_x=False, workers=None, *, plan=None):
    """``scipy.fft.ihfftn``: the inverse of ``hfftn``, for real input."""
    _check_plan("ihfftn", plan)
    return _conjugate(_npfft.rfftn(x, s, axes, _SWAP[_check_norm("ihfftn", norm)]))


def hfft2(x, s=None, axes=(-2, -1), norm=None, overwrite_x=False, workers=None, *, plan=None):
    """``scipy.fft.hfft2``: ``hfftn`` over two axes."""
    return hfftn(x, s, axes, norm, plan=plan)


def ihfft2(x, s=None, axes=(-2, -1), norm=None, overwrite_x=False, workers=None, *, plan=None):
    """``scipy.fft.ihfft2``: ``ihfftn`` over two axes."""
    return ihfftn(x, s, axes, norm, plan=plan)


def _matrix_advice(name: str, args, kwargs) -> str:
    """How to write the refused call as a matrix product, keeping the call's own settings
    (``type``, ``n``, ``norm``... or fht's ``dln, mu``), so that the advised spelling
    computes the same transform."""
    import inspect

    import scipy.fft

    try:
        bound = inspect.signature(getattr(scipy.fft, name)).bind(*args, **kwargs)
    except TypeError:
        return ""
    skip = {"x", "a", "axis", "axes", "s", "overwrite_x", "workers"}
    given = [f"{k}={v!r}" for k, v in bound.arguments.items() if k not in skip]
    if name in ("fht", "ifht"):
        return f"the matrix product x @ scipy.fft.{name}(np.eye(m), {', '.join(given)}) (m = x.shape[-1])"
    call = f"scipy.fft.{name.rstrip('n')}(np.eye(m), {', '.join(given)})".replace(", )", ")")
    if name.endswith("n"):
        return (f"the 1-D matrix M = {call} applied along each transformed axis in turn (for a 2-D x: "
                "M0.T @ x @ M1, with M0 made with m = x.shape[0] and M1 with m = x.shape[1])")
    axis = bound.arguments.get("axis", -1)
    if axis in (-1, None):
        return f"the matrix product x @ {call} (m = x.shape[-1])"
    return f"the matrix product np.moveaxis(np.moveaxis(x, {axis}, -1) @ {call}, -1, {axis}) (m = x.shape[{axis}])"


def _refused(name: str):
    def twin(*args, **kwargs):
        if not (_traced(args) or _traced(kwargs.values())):
            import scipy.fft

            return getattr(scipy.fft, name)(*args, **kwargs)  # SciPy's own (the route passes plain values on)
        matrix = _matrix_advice(name, args, kwargs)
        default_dct = name == "dct" and kwargs.get("type", args[1] if len(args) > 1 else 2) == 2 and all(
            kwargs.get(k) is None for k in ("n", "norm", "orthogonalize")) and len(args) <= 2
        raise UnsupportedOperationError(
            f"{describe_stack()}: scipy.fft.{name} of a traced value has no rule in npfunc yet. "
            "Write the transform with what npfunc differentiates and batches: "
            + ("the FFTs (this DCT-II is the real part of np.exp(-1j * np.pi * k / (2 * n)) * "
               "np.fft.fft(np.concatenate([x, x[::-1]]))[:n], k = np.arange(n)), or " if default_dct else "")
            + (f"for a short axis, {matrix}." if matrix else
               f"for a short axis, a matrix product with scipy.fft.{name} of np.eye(m) (same settings)."))

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = f"``scipy.fft.{name}``: SciPy's on plain values; refused on traced ones (no rule yet)."
    return twin


dct, idct, dst, idst, dctn, idctn, dstn, idstn, fht, ifht = (
    _refused(n) for n in ("dct", "idct", "dst", "idst", "dctn", "idctn", "dstn", "idstn", "fht", "ifht"))


from ._routing import twins_loaded as _twins_loaded  # noqa: E402

_twins_loaded(__name__)  # routes of SciPy's module that waited for these twins
