"""Check derivative rules against finite differences: ``gradcheck`` and ``gradgradcheck``.

``gradcheck(func, inputs)`` compares the derivatives npfunc computes for
``func`` (reverse mode, and forward mode with ``check_forward_ad=True``)
with central differences of ``func`` itself, and raises ``GradcheckError``
naming the input, the output and the mode when they disagree.  It is the
tool for testing a new primitive's rules, or a function's derivatives.

How values are laid out.  Every comparison is between real matrices: a
complex value counts as its real and imaginary parts, so a complex output
of ``m`` elements gives ``2m`` rows (real parts, then imaginary parts) and a
complex input of ``n`` elements gives ``2n`` columns (derivatives along the
real axis, then along the imaginary axis).  In reverse mode, the row for a
cotangent on the real part of ``y_k`` is ``[Re g, Im g]`` where ``g`` is the
gradient ``vjp`` returns: with torch's (conjugate-Wirtinger) convention,
``g = dL/dRe(x) + 1j * dL/dIm(x)`` for the real function ``L = Re(y_k)``.
For real functions all of this is simply the ``(out.size, in.size)``
Jacobian.

Fast mode compares ``v . J u`` for random unit vectors ``u`` (per input) and
``v`` (per output) instead of whole Jacobians: two evaluations of ``func``
per real input (four per complex one) instead of two per input element.

>>> import numpy as np
>>> from npfunc.gradcheck import gradcheck
>>> gradcheck(lambda x, w: np.tanh(x @ w), (np.ones((2, 3)), np.full(3, 0.1)))
True
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from ..api._common import normalize_argnums, tree_flatten, tree_unflatten
from ..api.reverse import trace_vjp
from ..core.zeros import zero
from ..primitives.elementwise.arithmetic import zeros_like
from .problem import GradcheckError, GradcheckUsageError, _Problem, _SEED
from .checker import _Checker, _random_like, _strided
from .jacobians import get_analytical_jacobian, get_numerical_jacobian

# ---- entry points ---------------------------------------------------------------------------


def _options(caller, eps, atol, rtol, nondet_tol, check_undefined_grad, check_grad_dtypes,
             check_batched_grad, check_batched_forward_grad, check_forward_ad, check_backward_ad,
             fast_mode, check_noncontiguous) -> dict:
    if not (check_forward_ad or check_backward_ad):
        raise GradcheckUsageError(
            f"{caller}: nothing to check: check_forward_ad and check_backward_ad are both False")
    if check_batched_grad and not check_backward_ad:
        raise GradcheckUsageError(
            f"{caller}: check_batched_grad=True needs check_backward_ad=True (it batches the vjp)")
    if check_batched_forward_grad and not check_forward_ad:
        raise GradcheckUsageError(
            f"{caller}: check_batched_forward_grad=True needs check_forward_ad=True (it batches "
            "the jvp)")
    if not eps > 0:
        raise GradcheckUsageError(f"{caller}: eps must be positive, got {eps!r}")
    return dict(eps=float(eps), atol=float(atol), rtol=float(rtol), nondet_tol=float(nondet_tol),
                check_undefined_grad=check_undefined_grad, check_grad_dtypes=check_grad_dtypes,
                check_batched_grad=check_batched_grad,
                check_batched_forward_grad=check_batched_forward_grad,
                check_forward_ad=check_forward_ad, check_backward_ad=check_backward_ad,
                fast_mode=fast_mode, check_noncontiguous=check_noncontiguous)


def _warn_precision(prob: _Problem) -> None:
    for j in range(len(prob.checked)):
        if prob.x(j).dtype not in (np.float64, np.complex128):
            warnings.warn(
                f"{prob.caller}: {prob.describe_input(j)} is not double precision; central "
                f"differences are unreliable in {prob.x(j).dtype}, so the check may fail for "
                "that reason alone. Pass float64 / complex128 inputs.", UserWarning, stacklevel=4)


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, argnums=None,
              check_noncontiguous: bool = True) -> bool:
    """Check npfunc's derivatives of ``func`` at ``inputs`` against central differences.

    ``inputs`` is one array or a tuple of positional arguments (pytrees
    allowed).  The checked inputs are every floating/complex NumPy array
    leaf, or the leaves of the arguments in ``argnums``; outputs may be a
    pytree, and its floating/complex leaves are checked.  An entry passes when
    ``|analytical - numerical| <= atol + rtol * |numerical|``.

    Checks, in order: that the VJP is linear in the cotangent and the JVP in
    the tangent (random signed directions: a rule such as ``abs(g) * f'(x)``
    is right for every unit direction), the reverse-mode Jacobian
    (``check_backward_ad``; it is
    computed twice and the runs must agree to ``nondet_tol``), the
    forward-mode one (``check_forward_ad``), gradient/tangent dtypes
    (``check_grad_dtypes``), the same derivatives with the inputs passed as
    Fortran-ordered copies and strided views (``check_noncontiguous``, an
    npfunc addition: NumPy code meets such arrays), vmap over jvp and vjp
    against a loop (``check_batched_forward_grad``, ``check_batched_grad``),
    a zero cotangent giving a zero gradient, and absent (symbolic-zero)
    cotangents giving zero gradients without error (``check_undefined_grad``).
    ``fast_mode=True`` compares random projections ``v . J u`` (signed
    ``u``, ``v``) instead of whole Jacobians.

    Returns True, or raises ``GradcheckError`` naming the mode, the output
    and the input (returns False instead with ``raise_exception=False``).

    >>> import numpy as np
    >>> from npfunc.gradcheck import gradcheck
    >>> x = np.linspace(-1.0, 1.0, 4)
    >>> gradcheck(np.sin, x, check_forward_ad=True, check_batched_grad=True)
    True
    >>> gradcheck(lambda x: np.sin(x), x, fast_mode=True)
    True
    """
    opts = _options("gradcheck", eps, atol, rtol, nondet_tol, check_undefined_grad,
                    check_grad_dtypes, check_batched_grad, check_batched_forward_grad,
                    check_forward_ad, check_backward_ad, fast_mode, check_noncontiguous)
    return _run(_Problem(func, inputs, argnums, "gradcheck"), opts, raise_exception)


def _run(prob: _Problem, opts: dict, raise_exception: bool) -> bool:
    _warn_precision(prob)
    try:
        _Checker(prob, opts).run()
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
                  check_forward_ad: bool = False, check_backward_ad: bool = True,
                  fast_mode: bool = False, argnums=None, check_noncontiguous: bool = True,
                  check_fwd_over_rev: bool | None = None,
                  check_rev_over_rev: bool | None = None) -> bool:
    """Check second derivatives: ``gradcheck`` of the function that maps
    ``(*inputs, *grad_outputs)`` to the gradients of ``func`` (its vjp).

    Its checked inputs are those of ``func`` plus the cotangents
    ``grad_outputs`` (one array per floating/complex output leaf; random in
    [-1, 1] when omitted, as strided views with
    ``gen_non_contig_grad_outputs=True``).  ``check_forward_ad`` then checks
    forward-over-reverse and ``check_backward_ad`` reverse-over-reverse
    (torch's ``check_fwd_over_rev`` / ``check_rev_over_rev`` are accepted as
    aliases); the other options are ``gradcheck``'s.

    >>> import numpy as np
    >>> from npfunc.gradcheck import gradgradcheck
    >>> gradgradcheck(lambda x: np.exp(x) * x, np.array([0.5, -1.0]), check_forward_ad=True)
    True
    """
    fwd = check_forward_ad if check_fwd_over_rev is None else check_fwd_over_rev
    rev = check_backward_ad if check_rev_over_rev is None else check_rev_over_rev
    prob = _Problem(func, inputs, argnums, "gradgradcheck")
    nargs = len(prob.args)
    cts = _grad_outputs(prob, grad_outputs, gen_non_contig_grad_outputs)
    checked, spec = list(prob.checked), prob.spec

    def vjp_of_func(*all_args):
        leaves = tree_flatten(all_args[:nargs])[0]
        primals = tuple(leaves[k] for k in checked)

        def partial(*vals):
            full = list(leaves)
            for k, v in zip(checked, vals):
                full[k] = v
            return func(*tree_unflatten(spec, full))

        out, pullback, _ = trace_vjp(partial, primals, False, "gradgradcheck")
        ct_leaves = [zero] * len(tree_flatten(out)[0])
        for ct, k in zip(all_args[nargs:], prob.diff_out):
            ct_leaves[k] = ct
        grads = pullback.flat(ct_leaves)
        return tuple(zeros_like(p) if g is zero else g for g, p in zip(grads, primals))

    def arg_label(a):
        if a < nargs:
            return f"argument {a}"
        return f"the cotangent for {prob.describe_output(a - nargs)}"

    def out_label(k):
        return f"the gradient for {prob.describe_input(k)}"

    new_argnums = None
    if argnums is not None:
        nums = normalize_argnums(argnums, nargs, "gradgradcheck")
        new_argnums = tuple(nums) + tuple(range(nargs, nargs + len(cts)))
    opts = _options("gradgradcheck", eps, atol, rtol, nondet_tol, check_undefined_grad,
                    check_grad_dtypes, check_batched_grad, check_batched_forward_grad, fwd, rev,
                    fast_mode, check_noncontiguous)
    inner = _Problem(vjp_of_func, prob.args + tuple(cts), new_argnums, "gradgradcheck", arg_label,
                     out_label)
    return _run(inner, opts, raise_exception)


def _grad_outputs(prob: _Problem, grad_outputs, non_contiguous: bool) -> list:
    refs = prob.out_values
    if grad_outputs is None:
        rng = np.random.default_rng(_SEED + 4)
        cts = [_random_like(ref, rng) for ref in refs]
        return [_strided(c) for c in cts] if non_contiguous else cts
    given = list(grad_outputs) if isinstance(grad_outputs, (tuple, list)) else [grad_outputs]
    if len(given) != len(refs):
        raise GradcheckUsageError(
            f"gradgradcheck: grad_outputs has {len(given)} entries but the function has "
            f"{len(refs)} floating-point/complex output(s); give one cotangent per output")
    out = []
    for i, (ct, ref) in enumerate(zip(given, refs)):
        ct = np.asarray(ct)
        if ct.shape != ref.shape:
            raise GradcheckUsageError(
                f"gradgradcheck: grad_outputs[{i}] has shape {ct.shape}, but "
                f"{prob.describe_output(i)} has shape {ref.shape}")
        out.append(ct.astype(ref.dtype, copy=False))
    return out

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "GradcheckUsageError",
           "get_numerical_jacobian", "get_analytical_jacobian"]


def __dir__():
    return __all__
