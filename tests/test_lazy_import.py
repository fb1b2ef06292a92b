"""``import npfunc`` loads the transforms only; every other definition loads
on first use (npfunc/core/lazy.py).  Each check runs in a fresh interpreter:
this test process has loaded everything (``npfunc.testing`` does)."""
import subprocess
import sys

import pytest

from npfunc.core.lazy_index import build_index
from npfunc.primitives._index import INDEX

#: Loaded on first use, never by ``import npfunc``.
HEAVY = ["npfunc.nn", "npfunc.numpy", "npfunc.api.jit", "npfunc.compiler", "npfunc.gradcheck", "npfunc.autograd",
         "npfunc.testing", "npfunc.optim", "npfunc.random", "npfunc.api.custom", "npfunc.api.checkpoint",
         "npfunc.api.linearize", "npfunc.api.functionalize", "npfunc.scipy.integrate",
         "npfunc.primitives.linalg.products", "npfunc.primitives.linalg.solve", "npfunc.primitives.special",
         "npfunc.primitives.fft", "npfunc.primitives.sorting", "npfunc.primitives.reductions.statistics",
         "npfunc.primitives.polynomial", "npfunc.primitives.functional", "npfunc.primitives.convolution",
         "npfunc.primitives.elementwise.transcendental", "npfunc.primitives.shape.views",
         "optree", "numpy.random", "numpy.fft", "numpy.polynomial", "scipy"]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_npfunc_loads_no_heavy_module():
    loaded = _run(f"import sys, npfunc; print([m for m in {HEAVY!r} if m in sys.modules])").strip()
    assert loaded == "[]", f"import npfunc loaded {loaded}"


def test_a_first_grad_and_vmap_need_nothing_more():
    code = ("import sys, numpy as np, npfunc\n"
            "before = set(sys.modules)\n"
            "x = np.array([0.3, -0.2])\n"
            "npfunc.grad(lambda x: np.sin(x * x).sum())(x)\n"
            "npfunc.vmap(lambda v: np.exp(v) + 1.0)(x)\n"
            "npfunc.jvp(np.tanh, (x,), (x,))\n"
            "print(sorted(set(sys.modules) - before))\n")
    assert _run(code).strip() == "[]"


def test_the_index_is_current():
    """Regenerate with ``PYTHONPATH=src python -m npfunc.core.lazy_index --write``."""
    assert build_index() == INDEX


def test_everything_load_all_registers_is_loaded_at_import_or_indexed():
    code = ("import npfunc\n"
            "from npfunc.core import dispatch, primitive, lazy\n"
            "tables = {'ufunc': dispatch.UFUNCS, 'function': dispatch.FUNCTIONS, "
            "'reduce': dispatch.UFUNC_REDUCTIONS, 'accumulate': dispatch.UFUNC_ACCUMULATIONS, "
            "'primitive': primitive.REGISTRY, 'composite': primitive.COMPOSITES}\n"
            "keys = lambda: {lazy.key(k, x) for k, t in tables.items() for x in t}\n"
            "at_import = keys()\n"
            "lazy.load_all()\n"
            "print('\\n'.join(sorted(keys() - at_import)))\n")
    loaded_later = set(_run(code).splitlines())
    assert len(loaded_later) > 500
    assert not loaded_later - set(INDEX), sorted(loaded_later - set(INDEX))[:20]
    assert all(name.startswith("npfunc.") for names in INDEX.values() for name in names)


LAZY_CALLS = {
    "np.linalg.solve under grad":
        "A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, 0.5])\n"
        "g = npfunc.grad(lambda b: np.linalg.solve(A, b).sum())(b)\n"
        "assert np.allclose(g, np.linalg.solve(A.T, np.ones(2)))",
    "np.fft.fft under vmap":
        "x = np.arange(6.0).reshape(2, 3)\n"
        "assert np.allclose(npfunc.vmap(np.fft.fft)(x), np.fft.fft(x))",
    "ndarray methods and np.sort":
        "x = np.array([3.0, 1.0, 2.0])\n"
        "assert np.allclose(npfunc.grad(lambda x: (np.sort(x) * np.arange(3.0)).sum() + x.T.sum())(x), "
        "[3.0, 1.0, 2.0])",
    "np.add.reduce and accumulate":
        "x = np.array([1.0, 2.0, 3.0])\n"
        "assert np.allclose(npfunc.grad(lambda x: np.add.reduce(x * x) + np.multiply.accumulate(x)[-1])(x), "
        "2 * x + np.array([6.0, 3.0, 2.0]))",
    "scipy.special imported after npfunc":
        "import scipy.special as sc\n"
        "assert np.isclose(npfunc.grad(sc.j0)(1.0), -sc.j1(1.0))\n"
        "assert np.isclose(npfunc.grad(sc.erf)(0.0), 2 / np.sqrt(np.pi))",
    "np.vectorize":
        "f = np.vectorize(lambda r: r * r)\n"
        "assert np.allclose(npfunc.grad(lambda x: f(x).sum())(np.array([1.0, 2.0])), [2.0, 4.0])\n"
        "assert np.allclose(np.vectorize(abs)(np.array([-1.0])), [1.0])",
    "np.poly1d and numpy.polynomial":
        "from numpy.polynomial import polynomial as P\n"
        "c = np.array([1.0, 2.0, 3.0])\n"
        "assert np.isclose(npfunc.grad(lambda c: np.poly1d(c)(2.0))(c)[0], 4.0)\n"
        "assert np.isclose(npfunc.grad(lambda c: P.polyval(2.0, c))(c)[2], 4.0)",
    "a primitive looked up by name, jit's contraction into matmul":
        "from npfunc.core.primitive import REGISTRY\n"
        "assert REGISTRY['eigh'].name == 'eigh'\n"
        "W = np.arange(6.0).reshape(2, 3)\n"
        "f = npfunc.jit(lambda x: (W * x).sum(axis=1))\n"
        "assert np.allclose(f(np.ones(3)), W.sum(axis=1))",
    "a twin hint for NumPy code that does not dispatch":
        "import pytest\n"
        "with pytest.raises(Exception, match='npfunc.numpy.roll'):\n"
        "    npfunc.grad(lambda s: np.roll(np.arange(3.0), s).sum())(np.array(1.0))",
    "an unsupported function still says so":
        "import pytest\n"
        "with pytest.raises(npfunc.errors.UnsupportedFunctionError, match='np.busday_count'):\n"
        "    npfunc.grad(lambda x: np.busday_count(x, x))(np.array(1.0))",
    "public names load on first access":
        "assert callable(npfunc.jit) and callable(npfunc.functional_call) and npfunc.nn.Linear\n"
        "assert 'jit' in dir(npfunc) and npfunc.numpy.linalg.norm\n"
        "import npfunc.gradcheck, npfunc.autograd.functional",
}


@pytest.mark.parametrize("name", sorted(LAZY_CALLS))
def test_definitions_load_on_first_use(name):
    _run("import numpy as np, npfunc\n" + LAZY_CALLS[name] + "\n")


@pytest.mark.parametrize("scipy_module, twin_module", [
    ("scipy.signal", "npfunc.scipy.signal"), ("scipy.linalg", "npfunc.scipy.linalg"),
    ("scipy.special", "npfunc.scipy.special"), ("scipy.optimize", "npfunc.scipy.optimize"),
    ("scipy.spatial.distance", "npfunc.scipy.spatial.distance"), ("scipy.stats", "npfunc.scipy.stats")])
@pytest.mark.parametrize("first", ["twins", "scipy"])
def test_scipy_is_routed_whichever_module_is_imported_first(scipy_module, twin_module, first):
    """Importing npfunc's twin module before SciPy's (it imports SciPy's while it
    loads) left SciPy's functions unrouted; each order must route every twin."""
    order = [twin_module, scipy_module] if first == "twins" else [scipy_module, twin_module]
    code = (f"import types, importlib, npfunc, {order[0]}, {order[1]}\n"
            f"s, t = importlib.import_module('{scipy_module}'), importlib.import_module('{twin_module}')\n"
            "names = [n for n in t.__all__ if isinstance(getattr(s, n, None), types.FunctionType)]\n"
            "missing = [n for n in names if not hasattr(getattr(s, n), 'npfunc_twin')]\n"
            "print(len(names), missing)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    count, missing = out.split(" ", 1)
    assert int(count) > 0 and missing.strip() == "[]", out
