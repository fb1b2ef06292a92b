"""Checks every primitive must pass, run on its registry samples.

These are the generated tests' building blocks, public so that whoever adds
a primitive can run them on it directly::

    from npfunc.testing import check_primitive
    check_primitive(my_prim)

Each check raises ``AssertionError`` naming the primitive, the sample and
what disagreed.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..api import grad, jacfwd, jacrev, jvp, vjp, vmap
from ..api.jit import jit
from ..core.primitive import Composite, Primitive, Sample

RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-4,
        np.dtype(np.complex128): 1e-9, np.dtype(np.complex64): 2e-4}
FD_EPS = 1e-6
FD_RTOL, FD_ATOL = 2e-6, 2e-7


def _dtype(x):
    return np.result_type(x)


def _tol(*values) -> float:
    tol = 1e-9
    for v in values:
        for leaf in (v if isinstance(v, (tuple, list)) else (v,)):
            tol = max(tol, RTOL.get(np.result_type(leaf), 1e-9))
    return tol


def diff_argnums(sample: Sample) -> tuple[int, ...]:
    """The arguments the derivative checks perturb."""
    if sample.argnums is not None:
        return sample.argnums
    return tuple(i for i, a in enumerate(sample.args)
                 if isinstance(a, (np.ndarray, np.generic)) and np.result_type(a).kind in "fc")


def as_function(prim: Primitive, sample: Sample, argnums: Sequence[int]) -> Callable:
    """``prim`` as a function of the arguments in ``argnums`` (others fixed)."""
    args = list(sample.args)

    def f(*diff):
        full = list(args)
        for i, v in zip(argnums, diff):
            full[i] = v
        return prim.bind(*full, **sample.params)

    return f


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _like(out, leaves):
    """``leaves`` in the container ``out`` came in (list, tuple, namedtuple, or one array)."""
    if isinstance(out, list):
        return list(leaves)
    if isinstance(out, tuple):
        return type(out)(*leaves) if hasattr(out, "_fields") else tuple(leaves)
    return leaves[0]


def _assert_close(actual, expected, rtol, atol, what):
    for k, (a, e) in enumerate(zip(_leaves(actual), _leaves(expected))):
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape:
            raise AssertionError(f"{what}: output {k} has shape {a.shape}, expected {e.shape}")
        if not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
            err = np.max(np.abs(a - e)) if a.size else 0.0
            raise AssertionError(f"{what}: output {k} differs (max abs err {err:.3g})\n"
                                 f"got\n{a}\nexpected\n{e}")


def _direction(rng, x):
    t = rng.standard_normal(np.shape(x))
    if np.result_type(x).kind == "c":
        t = t + 1j * rng.standard_normal(np.shape(x))
    return np.asarray(t, dtype=np.result_type(x))


def _inner(a, b) -> float:
    """Real inner product <a, b> = Re(sum(conj(a) * b)): C is treated as R^2."""
    return float(np.real(np.vdot(np.asarray(a).ravel(), np.asarray(b).ravel())))


def _rounding(prim, expected) -> tuple[float, float]:
    """(rtol, atol) for comparing values with NumPy's: exact for a primitive,
    whose implementation is NumPy's call; a few rounding errors for a
    composite, which may add the same numbers in another order."""
    if isinstance(prim, Primitive):
        return 0.0, 0.0
    eps, scale = 0.0, 0.0
    for leaf in _leaves(expected):
        leaf = np.asarray(leaf)
        if leaf.dtype.kind in "fc":
            eps = max(eps, float(np.finfo(leaf.dtype).eps))
            finite = np.abs(leaf[np.isfinite(leaf)])
            scale = max(scale, float(finite.max()) if finite.size else 0.0)
    return 64 * eps, 64 * eps * max(scale, 1.0)


# ---- the checks ---------------------------------------------------------------

def check_value(prim: Primitive, sample: Sample) -> None:
    """The primal output under jvp, vjp and vmap equals the plain NumPy value."""
    expected = prim.impl(*sample.args, **sample.params)
    direct = prim.bind(*sample.args, **sample.params)
    rtol, atol = _rounding(prim, expected)
    _assert_close(direct, expected, rtol, atol, f"{prim.name} {sample} value")
    for k, e in enumerate(_leaves(expected)):
        if _dtype(_leaves(direct)[k]) != _dtype(e):
            raise AssertionError(f"{prim.name} {sample}: dtype {_dtype(_leaves(direct)[k])}, expected {_dtype(e)}")
    nums = diff_argnums(sample)
    if not nums or not prim.differentiable:
        return
    f = as_function(prim, sample, nums)
    primals = tuple(sample.args[i] for i in nums)
    out, _ = jvp(f, primals, tuple(np.zeros_like(p) for p in primals))
    _assert_close(out, expected, rtol, atol, f"{prim.name} {sample} value under jvp")
    _assert_same_kinds(out, expected, f"{prim.name} {sample} value under jvp")
    out, _ = vjp(f, *primals)
    _assert_close(out, expected, rtol, atol, f"{prim.name} {sample} value under vjp")
    _assert_same_kinds(out, expected, f"{prim.name} {sample} value under vjp")


def check_jvp_fd(prim: Primitive, sample: Sample, rng) -> None:
    """JVP against central finite differences (float64 samples)."""
    nums = diff_argnums(sample)
    if not prim.differentiable or not nums or sample.fd_order < 1:
        return  # at a kink the convention is tested by hand, not by differences
    primals = tuple(np.asarray(sample.args[i]) for i in nums)
    if any(p.dtype not in (np.float64, np.complex128) for p in primals):
        return
    f = as_function(prim, sample, nums)
    if any(np.result_type(o) not in (np.float64, np.complex128) for o in _leaves(f(*primals))):
        return  # differences in a lower precision say nothing about the rule
    tangents = tuple(_direction(rng, p) for p in primals)
    _, t_out = jvp(f, primals, tangents)
    plus = f(*(p + FD_EPS * t for p, t in zip(primals, tangents)))
    minus = f(*(p - FD_EPS * t for p, t in zip(primals, tangents)))
    fd = [(np.asarray(a) - np.asarray(b)) / (2 * FD_EPS) for a, b in zip(_leaves(plus), _leaves(minus))]
    # Differences of a NaN or infinite output say nothing: there the rule's
    # convention (a zero derivative for the NaN entries of the nan-functions,
    # for a log-density of -inf outside a support) stands.
    fd = [np.where(np.isfinite(o), d, t) if np.shape(o) == np.shape(d) else d
          for o, t, d in zip(_leaves(f(*primals)), _leaves(t_out), fd)]
    _assert_close(t_out, fd if isinstance(t_out, (tuple, list)) else fd[0], FD_RTOL, FD_ATOL,
                  f"{prim.name} {sample} jvp vs finite differences")


def check_adjoint(prim: Primitive, sample: Sample, rng) -> None:
    """<u, J v> == <J^T u, v>, and tangents/cotangents keep their primal's dtype."""
    nums = diff_argnums(sample)
    if not prim.differentiable or not nums:
        return
    f = as_function(prim, sample, nums)
    primals = tuple(np.asarray(sample.args[i]) for i in nums)
    tangents = tuple(_direction(rng, p) for p in primals)
    out, t_out = jvp(f, primals, tangents)
    out2, pullback = vjp(f, *primals)
    cts = [_direction(rng, o) for o in _leaves(out)]
    c_in = pullback(_like(out, cts))
    for k, (o, t) in enumerate(zip(_leaves(out), _leaves(t_out))):
        if _dtype(t) != _dtype(o):
            raise AssertionError(f"{prim.name} {sample}: tangent {k} has dtype {_dtype(t)}, output {_dtype(o)}")
    for k, (p, c) in enumerate(zip(primals, c_in)):
        if _dtype(c) != _dtype(p) or np.shape(c) != np.shape(p):
            raise AssertionError(f"{prim.name} {sample}: cotangent {k} is {_dtype(c)}{np.shape(c)}, "
                                 f"input is {_dtype(p)}{np.shape(p)}")
    lhs = sum(_inner(u, jv) for u, jv in zip(cts, _leaves(t_out)))
    rhs = sum(_inner(c, v) for c, v in zip(c_in, tangents))
    tol = _tol(*primals, *_leaves(out)) * 10
    if not np.isclose(lhs, rhs, rtol=tol, atol=tol, equal_nan=True):
        raise AssertionError(f"{prim.name} {sample}: <u, Jv> = {lhs!r} but <J^T u, v> = {rhs!r}")


def _batched(rng, x, d, size):
    """``size`` variations of ``x`` stacked on axis ``d``."""
    x = np.asarray(x)
    if x.dtype.kind in "fc":
        copies = [x * (1 + 0.05 * rng.uniform(-1, 1, x.shape)).astype(x.dtype) for _ in range(size)]
    else:  # bool masks and integer indices: permute entries so they stay valid
        copies = [rng.permutation(x.ravel()).reshape(x.shape) for _ in range(size)]
    return np.moveaxis(np.stack([c.astype(x.dtype) for c in copies]), 0, d)


def in_dims_cases(sample: Sample) -> list[tuple]:
    """in_dims combinations: all 0, all last, all 1, and each array left unmapped."""
    arrays = [isinstance(a, (np.ndarray, np.generic)) for a in sample.args]
    ndims = [np.ndim(a) for a in sample.args]
    cases = [tuple(0 if is_arr else None for is_arr in arrays),
             tuple(-1 if is_arr else None for is_arr in arrays),
             tuple((1 if n >= 1 else 0) if is_arr else None for is_arr, n in zip(arrays, ndims))]
    if sum(arrays) > 1:
        for i, is_arr in enumerate(arrays):
            if is_arr:
                cases.append(tuple(None if j == i or not a else (j % 2) * -1 for j, a in enumerate(arrays)))
    seen = []
    for c in cases:
        if c not in seen and any(d is not None for d in c):
            seen.append(c)
    return seen


def _must_raise(prim, run, what) -> bool:
    """For a function whose output shape depends on values (np.nonzero): ``run``
    raises npfunc's error naming the function.  False for any other function."""
    if not getattr(prim, "shape_from_values", False):
        return False
    from ..core.errors import NpfuncError

    try:
        run()
    except NpfuncError as err:
        if prim.name not in str(err):
            raise AssertionError(f"{what}: the error does not name {prim.name}: {err}") from err
        return True
    raise AssertionError(f"{what}: the output's shape depends on the values, so this must raise")


def check_vmap(prim: Primitive, sample: Sample, rng, size: int = 3) -> None:
    """vmap over every in_dims case equals a Python loop over the batch."""
    if getattr(prim, "shape_from_values", False):
        dims = in_dims_cases(sample)[0]
        args = [a if d is None else _batched(rng, a, d, size) for a, d in zip(sample.args, dims)]
        _must_raise(prim, lambda: vmap(lambda *xs: prim.bind(*xs, **sample.params), in_dims=dims)(*args),
                    f"{prim.name} {sample} vmap")
        return
    for dims in in_dims_cases(sample):
        args = [a if d is None else _batched(rng, a, d, size) for a, d in zip(sample.args, dims)]

        def f(*xs):
            return prim.bind(*xs, **sample.params)

        got = vmap(f, in_dims=dims)(*args)
        rows = [f(*[a if d is None else np.take(a, b, axis=d) for a, d in zip(args, dims)])
                for b in range(size)]
        if isinstance(rows[0], (tuple, list)):
            expected = [np.stack([r[k] for r in rows]) for k in range(len(rows[0]))]
        else:
            expected = np.stack(rows)
        _assert_close(got, expected, _tol(expected) * 10, _tol(expected) * 10,
                      f"{prim.name} {sample} vmap in_dims={dims}")
        _assert_same_dtypes(got, expected, f"{prim.name} {sample} vmap in_dims={dims}")


def _assert_same_dtypes(actual, expected, what):
    for k, (a, e) in enumerate(zip(_leaves(actual), _leaves(expected))):
        if _dtype(a) != _dtype(e):
            raise AssertionError(f"{what}: output {k} has dtype {_dtype(a)}, expected {_dtype(e)}")
    _assert_same_kinds(actual, expected, what)


def _assert_same_kinds(actual, expected, what):
    """A NumPy scalar where NumPy gives one, an array where it gives an array
    (``isinstance(r, float)``, hashing and ``r.flags`` tell them apart)."""
    for k, (a, e) in enumerate(zip(_leaves(actual), _leaves(expected))):
        if isinstance(e, (np.ndarray, np.generic)) and isinstance(a, np.ndarray) != isinstance(e, np.ndarray):
            raise AssertionError(f"{what}: output {k} is a {type(a).__name__}, expected a {type(e).__name__}")


def check_jit(prim: Primitive, sample: Sample, rng) -> None:
    """``jit`` gives NumPy's value and dtype on the recording call and on a
    replay with other values of the same shapes and dtypes."""
    def f(*xs):
        return prim.bind(*xs, **sample.params)

    jitted = jit(f)
    if _must_raise(prim, lambda: jitted(*sample.args), f"{prim.name} {sample} jit"):
        return
    from ..core.errors import ConcretizationError, DataDependentShapeError
    from ..interpreters.staging import VALUE_DEPENDENT_SHAPES

    if prim.name in VALUE_DEPENDENT_SHAPES:  # a recording cannot keep the shape: jit must refuse
        try:
            jitted(*sample.args)
        except ConcretizationError:
            return
        raise AssertionError(f"{prim.name} {sample}: jit recorded a value-dependent shape")
    if isinstance(prim, Composite):  # NumPy's own code may branch on values: jit may refuse, never differ
        try:
            jitted(*sample.args)
        except (ConcretizationError, DataDependentShapeError):
            return
    arrays = [isinstance(a, (np.ndarray, np.generic)) for a in sample.args]
    calls = [sample.args, tuple(_batched(rng, a, 0, 1)[0] if is_arr else a
                                for a, is_arr in zip(sample.args, arrays))]
    for n, args in enumerate(calls):
        expected = prim.impl(*args, **sample.params)
        got = jitted(*args)
        what = f"{prim.name} {sample} under jit ({'recording' if n == 0 else 'replay'})"
        rtol, atol = _rounding(prim, expected)
        if isinstance(prim, Composite):  # jit may reassociate sums (contract), which a solve amplifies
            rtol, atol = max(rtol, 1e-11), max(atol, 1e-11 * atol / rtol if rtol else 0.0)
        _assert_close(got, expected, rtol, atol, what)
        _assert_same_dtypes(got, expected, what)


def check_second_order(prim: Primitive, sample: Sample, rng) -> None:
    """jacfwd(jacrev(.)) of a scalarised output against differences of the gradient."""
    nums = diff_argnums(sample)
    if not prim.differentiable or not nums or sample.fd_order < 2:
        return
    primals = tuple(np.asarray(sample.args[i]) for i in nums)
    if any(p.dtype != np.float64 for p in primals):
        return
    f = as_function(prim, sample, nums)
    if any(np.result_type(o) not in (np.float64, np.complex128) for o in _leaves(f(*primals))):
        return  # differences in a lower precision say nothing about the rule
    weights = [rng.standard_normal(np.shape(o)) for o in _leaves(f(*primals))]

    def scalar(*xs):
        total = 0.0
        for w, o in zip(weights, _leaves(f(*xs))):
            o = o.real if np.result_type(o).kind == "c" else o
            total = total + (o * w).sum()
        return total

    for k in range(len(primals)):
        def g_k(x, k=k):
            xs = list(primals)
            xs[k] = x
            return grad(scalar, argnums=k)(*xs)

        x = primals[k]
        H = jacfwd(jacrev(lambda x, k=k: scalar(*[x if j == k else p for j, p in enumerate(primals)])))(x)
        n = x.size
        fd = np.empty((n, n)) if n else np.empty((0, 0))
        for i in range(n):
            e = np.zeros(n)
            e[i] = FD_EPS
            e = e.reshape(x.shape)
            fd[:, i] = ((np.asarray(g_k(x + e)) - np.asarray(g_k(x - e))) / (2 * FD_EPS)).ravel()
        _assert_close(np.asarray(H).reshape(n, n), fd, 1e-5, 1e-6,
                      f"{prim.name} {sample} second order (argument {nums[k]})")


def check_third_order(prim: Primitive, sample: Sample, rng) -> None:
    """For samples with ``fd_order >= 3`` (near special points): the third
    directional derivative ``D^3 s[u, v, w]`` of a scalarised output, by
    forward-over-forward-over-forward and by forward-over-forward-over-reverse,
    against central differences (along ``w``) of the exact ``D^2 s[u, v]``."""
    nums = diff_argnums(sample)
    if not prim.differentiable or not nums or sample.fd_order < 3:
        return
    primals = tuple(np.asarray(sample.args[i]) for i in nums)
    if any(p.dtype != np.float64 for p in primals):
        return
    f = as_function(prim, sample, nums)
    weights = [rng.standard_normal(np.shape(o)) for o in _leaves(f(*primals))]

    def scalar(*xs):
        total = 0.0
        for w, o in zip(weights, _leaves(f(*xs))):
            total = total + ((o.real if np.result_type(o).kind == "c" else o) * w).sum()
        return total

    u, v, w = ([_direction(rng, p) for p in primals] for _ in range(3))

    def d1(xs, a):
        return jvp(scalar, xs, tuple(a))[1]

    def d2(*xs):  # D^2 s[u, v], forward over forward
        return jvp(lambda *ys: d1(ys, u), xs, tuple(v))[1]

    def d2_rev(*xs):  # D^2 s[u, v] as <u, H v>, forward over reverse
        hv = jvp(lambda *ys: grad(scalar, argnums=tuple(range(len(ys))))(*ys), xs, tuple(v))[1]
        return sum((a * b).sum() for a, b in zip(u, hv))  # real float64 inputs only

    fd = (float(d2(*(p + FD_EPS * t for p, t in zip(primals, w))))
          - float(d2(*(p - FD_EPS * t for p, t in zip(primals, w))))) / (2 * FD_EPS)
    for how, second in (("jvp(jvp(jvp))", d2), ("jvp(jvp(grad))", d2_rev)):
        third = float(jvp(second, primals, tuple(w))[1])
        if not np.isclose(third, fd, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"{prim.name} {sample} third order by {how}: {third!r}, "
                                 f"central differences of the second derivative: {fd!r}")


def check_primitive(prim: Primitive, seed: int = 0) -> None:
    """Run every check on every sample of ``prim``."""
    if prim.samples is None:
        raise AssertionError(f"primitive {prim.name!r} has no registry samples")
    rng = np.random.default_rng(seed)
    for sample in prim.samples(rng):
        check_value(prim, sample)
        check_jvp_fd(prim, sample, rng)
        check_adjoint(prim, sample, rng)
        check_vmap(prim, sample, rng)
        check_jit(prim, sample, rng)
        check_second_order(prim, sample, rng)
        check_third_order(prim, sample, rng)
