"""What to tell a user whose code asked a traced value for a plain NumPy value.

NumPy gives no hook for writing a traced value into a plain array
(``a[i] = x``), indexing a plain array with a traced index (``table[i]``) or
converting a list of traced values inside its own functions
(``np.sum([x, y])``): it asks the traced value for a plain array and the
traced value must refuse.  Which fix applies depends on where that happened,
so the error looks at the code that asked (only when building the message).
"""
from __future__ import annotations

import dis
import sys

from .dispatch import public_module

_STORES = ("STORE_SUBSCR", "STORE_SLICE")
_LOADS = ("BINARY_SUBSCR", "BINARY_SLICE")
_OURS = ("npfunc.", "optree")


def probing() -> bool:
    """Whether ``np.array`` & co. are trying NumPy's own constructor on values that
    may hold traced ones (``array_hooks``): a traced value's refusal is then
    expected and caught, so the refusal need not build its message (which
    disassembles the asking code: 0.8 ms)."""
    from .array_hooks import probing as state

    return getattr(state, "depth", 0) > 0


def _asking_frames():
    """(the user's frame, the library function it called or None)."""
    frame = sys._getframe(2)
    entry = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if module.startswith(_OURS) and not module.startswith("npfunc.tour"):
            if entry is not None and module == "npfunc.core.dispatch" and frame.f_code.co_name == "function_call":
                entry = frame  # npfunc's version of the NumPy function the user called asked
            frame = frame.f_back
            continue
        if module.split(".")[0] in ("numpy", "scipy"):
            entry = frame
            frame = frame.f_back
            continue
        return frame, entry
    return None, entry


def _named_scipy_frame(entry):
    """The outermost frame below the user's of a SciPy function defined at module level:
    ``entry`` itself, or, when that is a decorator's closure (scipy._lib._util.wrapper
    around scipy.linalg.eig), the function it called."""
    frame, named = sys._getframe(1), entry
    while frame is not None and frame is not entry:
        if (frame.f_globals.get("__name__", "") or "").startswith("scipy") and \
                "<locals>" not in frame.f_code.co_qualname:
            named = frame  # (keeps the outermost one: the walk goes outwards)
        frame = frame.f_back
    return entry if "<locals>" not in entry.f_code.co_qualname else named


def _instruction(frame) -> str:
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return ins.opname
    return ""


def _call_target(frame):
    """(the object, its name) that the call at ``frame`` is calling: ``rng.normal``
    in ``rng.normal(mu, np.exp(s))`` (not ``exp``, whose call has finished), or
    (None, ""). A small walk over the call targets the line pushes; what it does
    not follow gives (None, "") or an object left unresolved (None, name)."""
    import builtins
    import inspect

    targets: list = []  # [object or None, name]
    extend = False  # the previous instruction pushed or extended the top target
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset > frame.f_lasti:
            break
        if ins.starts_line:  # a new line (an int in 3.11-3.12, a bool from 3.13)
            targets, extend = [], False
        op, argrepr = ins.opname, ins.argrepr or ""
        pushed = False
        if op == "LOAD_GLOBAL" and "NULL" in argrepr:
            name = ins.argval
            targets.append([frame.f_globals.get(name, getattr(builtins, name, None)), name])
            pushed = True
        elif op == "LOAD_METHOD" or (op == "LOAD_ATTR" and "NULL" in argrepr):  # obj.method(...)
            targets.append([None, ins.argval])
            pushed = True
        elif op == "LOAD_ATTR" and extend and targets:  # module.function(...)
            obj = targets[-1][0]
            targets[-1] = [getattr(obj, ins.argval, None) if inspect.ismodule(obj) else None, ins.argval]
            pushed = True
        elif op == "PUSH_NULL":
            targets.append([None, ""])
        elif op.startswith(("CALL", "PRECALL")) and op != "CALL_INTRINSIC_1":
            # (3.11's specialised PRECALL makes a warm builtin call itself: f_lasti is there)
            if ins.offset == frame.f_lasti:
                return tuple(targets[-1]) if targets else (None, "")
            if targets and op != "PRECALL":
                targets.pop()
        extend = pushed
    return None, ""


def _called_method(frame) -> str:
    """The name of the attribute the call at ``frame`` calls (``rng.binomial``), or ""."""
    return _call_target(frame)[1]


#: math functions whose NumPy/SciPy spelling is not np.<same name>
_MATH_TWINS = {"lgamma": "scipy.special.gammaln", "gamma": "scipy.special.gamma", "erf": "scipy.special.erf",
               "erfc": "scipy.special.erfc", "asin": "np.arcsin", "acos": "np.arccos", "atan": "np.arctan",
               "atan2": "np.arctan2", "asinh": "np.arcsinh", "acosh": "np.arccosh", "atanh": "np.arctanh",
               "pow": "np.power", "fsum": "np.sum", "factorial": "scipy.special.factorial",
               "comb": "scipy.special.comb", "dist": "np.linalg.norm(p - q)"}


#: NumPy's joining functions, whose pieces may be nested lists
_JOINS = frozenset({"np.concatenate", "np.stack", "np.hstack", "np.vstack", "np.column_stack", "np.row_stack",
                    "np.dstack", "np.block", "np.append"})


#: the array constructors npfunc wraps while a transform runs (a name bound to NumPy's own is not wrapped)
_CONSTRUCTORS = frozenset({"array", "asarray", "asanyarray", "ascontiguousarray"})


def _list_fix(short: str) -> str:
    """The fix when the NumPy function ``short`` converted a list holding traced values."""
    if short in _JOINS:  # a traced scalar in a nested list, no other piece traced: NumPy never asked npfunc
        return (f"{short} (called from your code) turned a list holding a traced value into a plain array "
                f"(the [x] of {short}([[x], a]) when no other piece is traced): make that piece an array, "
                f"{short}([np.stack([x]), a]) (np.atleast_1d(x) for one value), or create the other pieces "
                "traced (np.zeros(n, like=x)); np.hstack([a, x]) takes a traced scalar as a piece.")
    return (f"{short} (called from your code) turned its argument into a plain array, which a traced "
            f"value cannot become: pass arrays, e.g. build a list of traced values into one with "
            f"np.stack([...]) first ({short}(np.stack([x, y])) instead of {short}([x, y])).")


def _numpy_callee(frame) -> str:
    """``np.name`` (``np.linalg.name``...) when the call at ``frame`` is calling a NumPy
    function (``np.concatenate`` in ``np.concatenate([[x], v])``), else ""."""
    fn = _call_target(frame)[0]
    module = getattr(fn, "__module__", None) or ""
    if not callable(fn) or isinstance(fn, type) or module.split(".")[0] != "numpy" or \
            getattr(fn, "__name__", "") in _CONSTRUCTORS:  # NumPy's own np.array bound by name: the generic advice
        return ""
    return f"{public_module(module).replace('numpy', 'np', 1)}.{fn.__name__}"


def _math_callee(frame):
    """The ``math``/``cmath`` function that the call at ``frame`` is making
    (``math.exp(x)``, or ``exp(x)`` after ``from math import exp``), else None."""
    fn = _call_target(frame)[0]
    return fn if getattr(fn, "__module__", None) in ("math", "cmath") else None


def _math_fix(frame) -> str | None:
    fn = _math_callee(frame)
    if fn is None:
        return None
    import numpy as np

    name = fn.__name__
    twin = _MATH_TWINS.get(name) or (f"np.{name}" if hasattr(np, name) else None)
    if twin is None:
        return (f"{fn.__module__}.{name}(x) works on Python numbers only: write it with NumPy or "
                "scipy.special functions, which take traced values.")
    call = twin if "(" in twin else f"{twin}(x)"
    return (f"{fn.__module__}.{name}(x) works on Python numbers only: use {call}, which takes traced "
            "values (and arrays).")


def _draws() -> frozenset:
    """NumPy Generator draws (a plain array has no method of these names); only asked
    for while building an error message (numpy.random is not loaded before)."""
    import numpy as np

    return frozenset(n for n in dir(np.random.Generator) if not n.startswith("_")) - frozenset(
        dir(np.ndarray)) - {"bit_generator", "spawn", "bytes"}


def probed_by_array_api() -> bool:
    """Whether the conversion being refused was asked by array-api-compat's ``is_lazy_array``
    (SciPy's array-API code), which tries ``bool`` to learn whether values are known and
    takes its lazy path, right for traced values, when that fails: a refusal it catches on
    purpose, which the transforms must not report as the function's."""
    frame = sys._getframe(2)
    for _ in range(5):
        if frame is None:
            return False
        if frame.f_code.co_name == "is_lazy_array" and "array_api_compat" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def lazy_probe_refusal(transform: str) -> str:
    """The refusal jit reports when SciPy's array-API code asked ``is_lazy_array`` of a recorded
    value and caught the refusal: SciPy's lazy path skips the checks and warnings that depend on
    the values (NumPy's run makes them), so jit does not replay it; naming the SciPy function the
    user called. Only called while building an error message."""
    from .context import describe_stack

    frame, what = sys._getframe(1), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if not module.startswith(("numpy", "npfunc", "scipy", "array_api_compat")):
            if what is not None:
                break
        elif module.startswith("scipy") and "array_api_compat" not in module:
            if "<locals>" not in frame.f_code.co_qualname:
                what = f"{public_module(module)}.{frame.f_code.co_name}"
            else:  # a decorator's wrapper (SciPy's axis_nan_policy): the function it wraps
                for v in frame.f_locals.values():
                    if callable(v) and (getattr(v, "__module__", "") or "").startswith("scipy") and \
                            not getattr(v, "__name__", "_").startswith("_"):
                        what = f"{public_module(v.__module__)}.{v.__name__}"
                        break
        frame = frame.f_back
    what = what or "a SciPy function"
    return (f"{describe_stack()}: {what} (SciPy's array-API code) asks array-api-compat's is_lazy_array "
            f"whether its input's values are known and, for a value {transform} records, takes its lazy "
            "path, which leaves out the checks and warnings that depend on the values (the plain call "
            f"makes them), so {transform} does not record it. Call it outside {transform} (grad, jacrev and "
            "jacfwd run it as SciPy does), or write the formula with np and scipy.special functions "
            "(scipy.stats.entropy(p) is np.sum(scipy.special.entr(p / p.sum()))).")


def generator_hint() -> str:
    """When the user's code is calling a method of a NumPy random Generator (whose
    compiled code then ran NumPy functions on a traced argument: ``permutation``
    calls np.may_share_memory), a clause with the fixes; else "".  Only called
    while building an error message."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if not (module.startswith(_OURS) or module.split(".")[0] in ("numpy", "scipy")) \
                or module.startswith("npfunc.tour"):
            break
        frame = frame.f_back
    method = _called_method(frame) if frame is not None else ""
    if method not in _draws():
        return ""
    from .. import random as traced_random

    if hasattr(traced_random.Generator, method):
        fix = (f"draw indices and index the traced array, x[rng.permutation(len(x))], or draw with "
               f"npfunc.random.default_rng(seed), whose {method} takes traced arrays")
    else:  # npfunc's generator has no such draw: transform standard variates
        fix = ("draw standard variates with plain parameters and transform them with the traced ones, e.g. "
               "mean + rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T for multivariate_normal")
    return f" (inside a NumPy random Generator's {method}(...), which runs NumPy code on a traced argument: {fix})"


#: What computes np.full / np.full_like with a traced fill value v (their NumPy code fills a plain array)
FULL_FIX = "v * np.ones(shape) (np.ones_like(a) for full_like), or np.full(shape, v, like=x) with x a traced array"


def conversion_fix(kind: str, dtype=None) -> str | None:
    """The fix for the operation that asked for a plain value of ``kind``
    (``"array"`` or ``"index"``), or None when nothing specific applies; ``dtype``:
    the traced value's, when known (a boolean mask gets its own advice)."""
    from .dispatch import twin_hint

    if twin_hint():
        return None  # a twin exists: its name is the fix (appended by the caller)
    user, entry = _asking_frames()
    if entry is not None and kind == "array":
        name = f"{entry.f_globals.get('__name__', '?')}.{entry.f_code.co_name}"
        if name.startswith("scipy"):  # twin_hint found no twin and no array-API path
            named = _named_scipy_frame(entry)
            public = public_module(named.f_globals["__name__"])
            owner = type(named.f_locals.get("self")).__name__
            if owner in ("NoneType", "module"):
                what = f"{public}.{named.f_code.co_name}"
            elif named.f_code.co_name == "__init__":  # a class being made: its name is what was called
                what = f"{public}.{owner}"
            else:
                what = f"{public}.{owner}.{named.f_code.co_name}"
            refusal = (f"{what} (called from your code) converts its input with np.asarray, which a traced "
                       "value cannot go through, and has no npfunc twin")
            if public.startswith("scipy.sparse") and owner not in ("NoneType", "module"):
                from .tracer import Tracer

                if named.f_code.co_name == "__init__" or \
                        isinstance(getattr(named.f_locals.get("self"), "data", None), Tracer):
                    # the matrix's own entries are traced (made from them, or converting them):
                    # toarray() would convert them too, so it is no fix here
                    return (f"{refusal}: a sparse matrix cannot hold traced entries (toarray() converts "
                            "them too). Assemble the matrix dense from its triplets, K = np.zeros((n, n), "
                            "like=data); np.add.at(K, (rows, cols), data) (repeated entries are summed, as "
                            "coo_matrix sums them), and solve with np.linalg.solve.")
                return (f"{refusal}: a sparse matrix's compiled products take plain arrays. Make the matrix "
                        "dense, H.toarray() @ v, which works on traced values.")
            if public.startswith("scipy.interpolate"):  # twins exist for the spline classes
                return (f"{refusal}; the interpolators that have one take traced values (docs/coverage.md): an "
                        "interpolating spline (splrep/splev or UnivariateSpline with s=0) is "
                        "scipy.interpolate.make_interp_spline(x, y, k=3), and CubicSpline, PchipInterpolator, "
                        "Akima1DInterpolator, BSpline and interp1d work too.")
            if what == "scipy.optimize.leastsq":  # MINPACK's lmdif: least_squares(method='lm') runs it too
                return (f"{refusal}; scipy.optimize.least_squares(fun, x0, method='lm') (MINPACK's "
                        "Levenberg-Marquardt too, the same solution to the solver's tolerance) and curve_fit have "
                        "twins.")
            method = named.f_code.co_name
            if public.startswith("scipy.stats") and method == "rvs":  # a draw, not a formula
                return (f"{refusal}: SciPy's samplers take plain parameters. Draw standard variates with "
                        "npfunc.random.default_rng(seed) (or plain ones outside the transform) and transform "
                        "them with the traced parameters (loc + scale * z), or draw outside the transform.")
            if public.startswith("scipy.stats") and method in ("mean", "var", "std", "stats", "median",
                                                                "moment", "interval", "expect"):
                return (f"{refusal} (docs/coverage.md lists the distribution methods with one): write the "
                        "distribution's closed form with np and scipy.special functions (the beta's mean is "
                        "a / (a + b), its variance a b / ((a + b)^2 (a + b + 1))), which npfunc "
                        "differentiates, batches and records.")
            return (f"{refusal} (docs/coverage.md lists SciPy's twins): write the formula with np and "
                    "scipy.special functions, which npfunc differentiates, batches and records.")
        if type(entry.f_locals.get("self")).__name__ in ("RClass", "CClass", "AxisConcatenator"):
            return ("np.r_ / np.c_ with a range or a directive string (0:3, 'r') beside a traced value cannot "
                    "build it: write the pieces out, np.concatenate([np.arange(0, 3), x]) for np.r_[0:3, x].")
        if name == "npfunc.core.dispatch.function_call":
            from .dispatch import describe

            short = describe(entry.f_locals.get("func"))
        else:
            short = "np." + entry.f_code.co_name if name.startswith("numpy") else name
        if short in ("np.full", "np.full_like"):  # NumPy fills a plain array with the traced value
            return (f"{short}(..., v) with a traced fill value v fills a plain ndarray, which cannot hold it: "
                    f"write {FULL_FIX}.")
        if short == "np.take":  # NumPy dispatches np.take on the array, not on the indices
            return ("np.take(table, i) of a plain array with a traced index i cannot work: use "
                    "npfunc.numpy.take(table, i), or make the table traced first, np.asarray(table, like=x) "
                    "with x a traced array (NumPy's like= refuses scalars).")
        if short == "np.fill_diagonal":  # NumPy dispatches it on the plain array it writes into
            return ("np.fill_diagonal(a, v) writes a traced value into the plain ndarray a, which cannot hold "
                    "it: create a traced, e.g. a = np.zeros(shape, like=v), and np.fill_diagonal(a, v) works; "
                    "or build the result functionally, a = a + np.diag(v - np.diag(a)).")
        return _list_fix(short)
    if user is None or (entry is not None and kind != "array"):
        return None
    if kind in ("float", "complex"):
        fix = _math_fix(user)
        if fix is not None:
            return fix
    op = _instruction(user)
    if op in _STORES:
        return ("Writing a traced value into a plain NumPy array (a[i] = x) cannot work, the array cannot "
                "hold it. Arrays the function makes with np.zeros, np.ones, np.empty, np.full (and their "
                "_like forms of a plain array), np.eye or np.identity take traced writes; this one was made "
                "otherwise (a copy of a plain array, np.array of numbers, an argument or a global): make a "
                "traced copy, a = np.array(a, like=x), or create the array traced, e.g. a = np.zeros(shape, like=x) "
                "(np.zeros_like(x, shape=shape) when x may be a scalar, which NumPy's like= refuses); or build "
                "the result functionally with npfunc.numpy.set_at(a, i, x).")
    if op in _LOADS and getattr(dtype, "kind", None) == "b":
        return ("Indexing a plain NumPy array with a traced boolean mask (table[mask]) selects a number of "
                "entries that depends on the values, which jit and vmap cannot record or batch (grad and "
                "jvp can: they see the values): keep the shape fixed and zero the rest, e.g. "
                "np.sum(np.where(mask, table, 0.0)) for np.sum(table[mask]).")
    if op in _LOADS:
        return ("Indexing a plain NumPy array with a traced index (table[i]) cannot work: make the table a "
                "traced constant first, table = np.asarray(table, like=i), then table[i] works (when i is a "
                "scalar, np.argmax's result for one, NumPy's like= refuses it: take like= a traced array, the "
                "one i was computed from); or use npfunc.numpy.take(table, i).")
    scalar_type = _call_target(user)[0] if user is not None else None
    import numpy as np

    if scalar_type is np.arange:  # its length comes from the traced bound
        return ("np.arange(start, stop, step) with a traced bound makes an array whose length depends on a "
                "traced value, and shapes must be plain numbers: pass the bound as a plain number (under jit "
                "mark its argument static, jit(f, static_argnums=k); under vmap every element needs the same "
                "length, e.g. np.arange(n_max) with a mask np.arange(n_max) < stop); under grad and jvp, "
                "np.arange(start, npfunc.stop_gradient(stop), step) takes its value.")
    if isinstance(scalar_type, type) and issubclass(scalar_type, np.generic):
        name = f"np.{scalar_type.__name__}"
        return (f"{name}(x) makes a plain NumPy scalar (or array) of the value, which a traced x cannot "
                f"become: convert with x.astype({name}) (or np.asarray(x, dtype={name})), which stays "
                "traced and gives the same values and dtype.")
    method = _called_method(user) if kind == "array" else ""
    if method == "at":  # np.add.at(a, (i, j), v): NumPy converts traced indices (a tuple: no dispatch)
        return ("np.<ufunc>.at(a, indices, v) into a plain NumPy array a with traced indices (np.add.at(C, "
                "(tokens[:-1], tokens[1:]), 1.0)) cannot work, the plain array cannot hold the result: create "
                "the array traced, e.g. a = np.zeros(shape, like=tokens) (a traced array; NumPy's like= refuses "
                "scalars), and the update works; or write a = npfunc.numpy.add_at(a, indices, v).")
    if method in _draws():
        return (f"A NumPy random Generator's {method}(...) turned a traced parameter into a plain "
                "array: NumPy's generators take plain numbers. Draw with npfunc.random.default_rng(seed), whose "
                "draws follow vmap's randomness= and take traced parameters where its docstrings say so, or "
                "draw standard variates and transform them (loc + scale * rng.standard_normal(shape)).")
    if kind == "array":
        named = _numpy_callee(user)  # a NumPy function without a Python frame (np.concatenate, np.dot)
        if named:
            return _list_fix(named)
        return ("A NumPy function or method turned a traced value into a plain array. Call NumPy's functions "
                "through the module (np.array(...), which accepts traced values while a transform runs, not "
                "a name imported with `from numpy import array`), and pass traced values to np.* functions "
                "rather than to methods of plain arrays (np.dot(a, x) instead of a.dot(x)); to build an "
                "array from traced values use np.stack([...]).")
    return None


def conversion_advice(kind: str, default: str = "", dtype=None) -> str:
    """What a refused conversion of ``kind`` tells the user: the fix for the
    operation that asked (``conversion_fix``, else ``default``), then the twin or
    SciPy's array-API path when a foreign function asked (``dispatch.twin_hint``,
    which ``conversion_fix`` leaves to its caller)."""
    from .dispatch import twin_hint

    return ((conversion_fix(kind, dtype) or default) + twin_hint()).strip()
