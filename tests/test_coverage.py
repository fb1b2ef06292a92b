"""docs/coverage.md is generated from the registry and must be up to date."""
import numpy as np

import npfunc  # noqa: F401
from npfunc.core.primitive import REGISTRY
from npfunc.testing import coverage


def test_coverage_doc_is_current():
    path = coverage.default_path()
    assert path.exists(), "run: python -m npfunc.testing.coverage --write"
    assert path.read_text() == coverage.render(), (
        "docs/coverage.md is stale: run python -m npfunc.testing.coverage --write")


def test_every_primitive_has_samples():
    missing = [name for name, p in REGISTRY.items()
               if p.samples is None or not list(p.samples(np.random.default_rng(0)))]
    assert not missing, f"primitives without registry samples: {missing}"


def test_unsupported_function_names_itself_and_coverage_doc():
    import pytest

    with pytest.raises(npfunc.errors.UnsupportedFunctionError, match=r"np\.histogram.*coverage\.md"):
        npfunc.grad(lambda x: np.histogram(x)[0].sum() * x.sum())(np.ones(3))


# Supported before composites carried samples; the unmodified-NumPy work gives
# each its samples and removes it from this list, which must end up empty.
NO_SAMPLES_YET = frozenset({
    "np.all", "np.allclose", "np.amax", "np.amin", "np.angle", "np.any", "np.argmax", "np.argmin",
    "np.argsort", "np.around", "np.array_equal", "np.array_split", "np.astype", "np.atleast_1d",
    "np.atleast_2d", "np.atleast_3d", "np.average", "np.broadcast_arrays", "np.broadcast_to",
    "np.clip", "np.column_stack", "np.concatenate", "np.convolve", "np.copy", "np.copysign",
    "np.copyto", "np.correlate", "np.count_nonzero", "np.cross", "np.cumprod", "np.cumsum",
    "np.cumulative_prod", "np.cumulative_sum", "np.diag", "np.diagflat", "np.diagonal", "np.divmod",
    "np.dot", "np.dsplit", "np.dstack", "np.einsum", "np.expand_dims", "np.fft.fft", "np.fft.fft2",
    "np.fft.fftn", "np.fft.fftshift", "np.fft.hfft", "np.fft.ifft", "np.fft.ifft2", "np.fft.ifftn",
    "np.fft.ifftshift", "np.fft.ihfft", "np.fft.irfft", "np.fft.irfft2", "np.fft.irfftn",
    "np.fft.rfft", "np.fft.rfft2", "np.fft.rfftn", "np.fill_diagonal", "np.fix", "np.flip",
    "np.fliplr", "np.flipud", "np.float_power", "np.fmod", "np.frexp", "np.heaviside", "np.hsplit",
    "np.hstack", "np.inner", "np.isclose", "np.iscomplex", "np.iscomplexobj", "np.isreal",
    "np.isrealobj", "np.kron", "np.ldexp", "np.linalg.cholesky", "np.linalg.cond",
    "np.linalg.cross", "np.linalg.det", "np.linalg.diagonal", "np.linalg.eigh",
    "np.linalg.eigvalsh", "np.linalg.inv", "np.linalg.lstsq", "np.linalg.matmul",
    "np.linalg.matrix_norm", "np.linalg.matrix_power", "np.linalg.matrix_rank",
    "np.linalg.matrix_transpose", "np.linalg.multi_dot", "np.linalg.norm", "np.linalg.outer",
    "np.linalg.pinv", "np.linalg.qr", "np.linalg.slogdet", "np.linalg.solve", "np.linalg.svd",
    "np.linalg.svdvals", "np.linalg.tensordot", "np.linalg.trace", "np.linalg.vecdot",
    "np.linalg.vector_norm", "np.matmul", "np.matrix_transpose", "np.matvec", "np.max", "np.mean",
    "np.meshgrid", "np.min", "np.modf", "np.moveaxis", "np.nan_to_num", "np.nanargmax",
    "np.nanargmin", "np.nancumprod", "np.nancumsum", "np.nanmax", "np.nanmean", "np.nanmin",
    "np.nanprod", "np.nanstd", "np.nansum", "np.nanvar", "np.ndim", "np.nonzero", "np.outer",
    "np.pad", "np.prod", "np.ptp", "np.put", "np.put_along_axis", "np.ravel", "np.remainder",
    "np.repeat", "np.reshape", "np.result_type", "np.roll", "np.rollaxis", "np.rot90", "np.round",
    "np.row_stack", "np.searchsorted", "np.shape", "np.sign", "np.sinc", "np.size",
    "np.sliding_window_view", "np.sort", "np.split", "np.squeeze", "np.stack", "np.std", "np.sum",
    "np.swapaxes", "np.take", "np.take_along_axis", "np.tensordot", "np.tile", "np.trace",
    "np.transpose", "np.tril", "np.triu", "np.unique", "np.unique_all", "np.unique_counts",
    "np.unique_inverse", "np.unique_values", "np.unstack", "np.var", "np.vdot", "np.vecdot",
    "np.vecmat", "np.vsplit", "np.vstack", "np.where",
})


def _dispatched():
    import scipy.special  # noqa: F401  (registers SciPy's ufuncs)

    from npfunc.core import dispatch
    for table in (dispatch.UFUNCS, dispatch.FUNCTIONS):
        yield from table.items()


def test_every_supported_function_has_samples():
    """A function is tested as users call it: through its primitive's samples
    when NumPy's call is the primitive's, else through composite samples."""
    from npfunc.core import dispatch
    from npfunc.core.primitive import COMPOSITES

    missing = {dispatch.describe(target) for target, fn in _dispatched()
               if not getattr(fn, "direct", False) and dispatch.describe(target) not in COMPOSITES}
    assert not missing - NO_SAMPLES_YET, f"supported without samples: {sorted(missing - NO_SAMPLES_YET)}"
    assert not NO_SAMPLES_YET - missing, f"now has samples, drop from NO_SAMPLES_YET: {sorted(NO_SAMPLES_YET - missing)}"
