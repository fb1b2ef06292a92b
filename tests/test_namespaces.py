"""Public npfunc modules export only their public names, and ``npfunc.numpy``
(with its real ``linalg`` and ``fft`` submodules) offers every supported
NumPy function under its NumPy name."""
import __future__
import importlib
import subprocess
import sys
import types

import numpy as np
import pytest

import npfunc
import npfunc.numpy as fnp
from npfunc.core import dispatch

#: user-facing namespaces
PUBLIC = ["npfunc", "npfunc.numpy", "npfunc.numpy.linalg", "npfunc.numpy.fft", "npfunc.scipy",
          "npfunc.scipy.special", "npfunc.scipy.linalg", "npfunc.scipy.stats", "npfunc.scipy.signal",
          "npfunc.nn", "npfunc.nn.functional", "npfunc.optim", "npfunc.random", "npfunc.autograd",
          "npfunc.autograd.functional", "npfunc.gradcheck", "npfunc.errors", "npfunc.testing"]
#: twin namespaces: nothing but their public names, not even as attributes
STRICT = ["npfunc.numpy", "npfunc.numpy.linalg", "npfunc.numpy.fft", "npfunc.scipy", "npfunc.scipy.special",
          "npfunc.scipy.linalg", "npfunc.scipy.stats", "npfunc.scipy.signal"]


def _submodule(module, name) -> bool:
    value = getattr(module, name, None)
    return isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__ + ".")


@pytest.mark.parametrize("name", PUBLIC)
def test_public_module_exports_only_its_public_names(name):
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{name} has no __all__"
    assert not [n for n in public if n.startswith("_")], f"{name}.__all__ lists private names"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    shown = [n for n in dir(module) if not n.startswith("_") and n not in public and not _submodule(module, n)]
    assert not shown, f"dir({name}) shows names outside __all__: {shown}"


@pytest.mark.parametrize("name", STRICT)
def test_twin_namespaces_hold_no_helpers(name):
    module = importlib.import_module(name)
    helpers = [n for n, v in vars(module).items()
               if not n.startswith("_") and n not in module.__all__ and not _submodule(module, n)
               and not isinstance(v, __future__._Feature)]
    assert not helpers, f"{name} holds helpers as public attributes: {helpers}"


# npfunc.numpy's own array/asarray stack lists of traced values even when imported by name
OWN = {("np", "array"), ("np", "asarray")}


def test_npfunc_numpy_array_is_npfuncs_own_and_stacks_traced_values():
    from npfunc.numpy import array, asarray

    jac = npfunc.jacrev(lambda x: array([x[0] * x[1], np.sin(x[0])]))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(jac, [[2.0, 1.0], [np.cos(1.0), 0.0]])
    out = npfunc.vmap(lambda x: asarray([x[1], x[0]]))(np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(out, [[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    assert array is not np.array and type(array([1, 2])) is np.ndarray


def test_npfunc_numpy_offers_every_supported_numpy_function():
    for prefix, module, namespace in (("np", np, fnp), ("np.linalg", np.linalg, fnp.linalg),
                                      ("np.fft", np.fft, fnp.fft)):
        for name in dir(module):
            obj = getattr(module, name)
            try:
                fn = dispatch.UFUNCS.get(obj) or dispatch.FUNCTIONS.get(obj)
            except TypeError:
                continue
            if fn is not None and not name.startswith("_") and (prefix, name) not in OWN:
                assert name in namespace.__all__, f"{prefix}.{name}"
                # like= constructors (np.zeros...) are NumPy's own there: like= dispatches itself
                assert getattr(namespace, name) is (obj if getattr(fn, "like", False) else fn), f"{prefix}.{name}"


def test_npfunc_numpy_constants_types_and_helpers():
    assert fnp.pi == np.pi and fnp.float32 is np.float32 and fnp.ndarray is np.ndarray
    assert fnp.zeros is np.zeros  # works unchanged: never receives a traced value
    assert fnp.linalg.LinAlgError is np.linalg.LinAlgError
    for name in ("stop_gradient", "set_at", "add_at", "array", "asarray"):
        assert callable(getattr(fnp, name)) and name in fnp.__all__
    with pytest.raises(AttributeError, match="np.genfromtxt is not supported"):
        fnp.genfromtxt  # noqa: B018
    with pytest.raises(AttributeError):
        fnp.no_such_function  # noqa: B018


def test_npfunc_numpy_never_forwards_numpy_module_dunders():
    for module in (fnp, fnp.linalg, fnp.fft):
        for dunder in ("__version__", "__config__", "__array_api_version__", "__deprecated_attrs__"):
            assert not hasattr(module, dunder), (module.__name__, dunder)
    assert fnp.__path__ != np.__path__ and fnp.__file__ != np.__file__
    assert fnp.__name__ == "npfunc.numpy"


def test_submodules_are_npfuncs_own_and_importable():
    import npfunc.numpy.fft
    import npfunc.numpy.linalg

    assert npfunc.numpy.linalg is fnp.linalg and npfunc.numpy.fft is fnp.fft
    assert npfunc.numpy.linalg.__name__ == "npfunc.numpy.linalg"
    assert npfunc.numpy.linalg.norm is dispatch.FUNCTIONS[np.linalg.norm]
    assert npfunc.numpy.fft.fft is dispatch.FUNCTIONS[np.fft.fft]
    assert npfunc.numpy.fft.fftfreq is not np.fft.fftfreq  # npfunc's (registered, with samples): a traced d
    x = np.array([[2.0, 1.0], [1.0, 3.0]])
    g = npfunc.grad(lambda a: npfunc.numpy.linalg.det(a))(x)
    np.testing.assert_allclose(g, np.linalg.det(x) * np.linalg.inv(x).T)


def test_import_of_submodules_in_a_fresh_interpreter():
    """``import npfunc.numpy.linalg`` first thing: npfunc's module, not a second
    copy of numpy.linalg (which is what forwarding ``__path__`` gave)."""
    code = ("import npfunc.numpy.linalg as la, npfunc.numpy.fft as f, numpy as np, sys\n"
            "assert la.__name__ == 'npfunc.numpy.linalg' and la.norm.__module__.startswith('npfunc')\n"
            "assert f.fft.__module__.startswith('npfunc')\n"
            "assert not [m for m in sys.modules if m.startswith('npfunc.numpy.') and 'linalg._' in m]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_old_fft_module_name_offers_the_same_functions():
    import npfunc.numpy_fft

    assert npfunc.numpy_fft.__all__ == fnp.fft.__all__
    assert all(getattr(npfunc.numpy_fft, n) is getattr(fnp.fft, n) for n in fnp.fft.__all__)
