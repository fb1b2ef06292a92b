"""The problem gradcheck works on: which inputs and outputs are checked, and their names."""
from __future__ import annotations

from typing import Callable

import numpy as np
import optree

from ..api._common import normalize_argnums, tree_flatten, tree_unflatten
from ..core.errors import NonDifferentiableInputError, NpfuncError


_SEED = 0x5EED


class GradcheckError(NpfuncError, RuntimeError):
    """A derivative computed by npfunc disagrees with its reference
    (finite differences, a second run, a loop, or the input's dtype)."""


class GradcheckUsageError(NpfuncError, ValueError):
    """``gradcheck`` was called with options or inputs it cannot check."""


# ---- inputs, outputs and their names ---------------------------------------------


def _is_inexact_array(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in "fc"


def _is_inexact_output(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (float, complex)):
        return True
    return hasattr(x, "dtype") and np.dtype(x.dtype).kind in "fc"


def _wide(dtype) -> np.dtype:
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def _path_text(path) -> str:
    return "".join(f"[{p!r}]" for p in path)


class _Problem:
    """``func`` called on ``inputs``, with the checked input leaves picked out.

    Inputs are positional arguments (pytrees allowed); ``checked`` holds the
    flat indices of the leaves that are perturbed and differentiated.  Outputs
    are the floating/complex leaves of ``func``'s output pytree.
    """

    def __init__(self, func, inputs, argnums, caller, arg_label=None, out_label=None):
        if not callable(func):
            raise GradcheckUsageError(f"{caller}: func must be callable, got {type(func).__name__}")
        self.func = func
        self.caller = caller
        self.args = inputs if isinstance(inputs, tuple) else (inputs,)
        self.leaves, self.spec = tree_flatten(self.args)
        self.paths = optree.tree_paths(self.args)
        self.arg_label = arg_label or (lambda a: f"argument {a}")
        self.out_label = out_label
        if argnums is None:
            self.checked = [k for k, x in enumerate(self.leaves) if _is_inexact_array(x)]
        else:
            nums = set(normalize_argnums(argnums, len(self.args), caller))
            self.checked = []
            for k, (x, path) in enumerate(zip(self.leaves, self.paths)):
                if path[0] not in nums:
                    continue
                if not _is_inexact_array(x):
                    what = getattr(x, "dtype", type(x).__name__)
                    raise NonDifferentiableInputError(
                        f"{caller}: argnums names {self._arg_text(k)}, which is a {what} value; only "
                        "floating-point or complex NumPy arrays can be checked. Leave it out of "
                        "argnums, or convert it with x.astype(float).")
                self.checked.append(k)
        if not self.checked:
            raise GradcheckUsageError(
                f"{caller}: no input to check: none of the selected inputs is a floating-point or "
                "complex NumPy array. Pass arrays (np.float64 is best), or name them in argnums.")
        for j, k in enumerate(self.checked):
            x = self.leaves[k]
            if isinstance(x, np.ndarray) and x.size and any(
                    s == 0 and n > 1 for s, n in zip(x.strides, x.shape)):
                raise GradcheckUsageError(
                    f"{caller}: {self.describe_input(j)} has a dimension with stride 0 (e.g. made by "
                    "np.broadcast_to), so perturbing one element would move several. Pass "
                    "np.ascontiguousarray(x) instead.")
        out = self.call({})
        self.out_leaves, self.out_spec = tree_flatten(out)
        self.out_paths = optree.tree_paths(out)
        self.diff_out = [i for i, o in enumerate(self.out_leaves) if _is_inexact_output(o)]
        self.out_values = [np.asarray(self.out_leaves[i]) for i in self.diff_out]

    # -- sizes ---------------------------------------------------------------
    def x(self, j):
        return self.leaves[self.checked[j]]

    def in_complex(self, j) -> bool:
        return np.dtype(self.x(j).dtype).kind == "c"

    def out_complex(self, i) -> bool:
        return self.out_values[i].dtype.kind == "c"

    def n_cols(self, j) -> int:
        return self.x(j).size * (2 if self.in_complex(j) else 1)

    def n_rows(self, i) -> int:
        return self.out_values[i].size * (2 if self.out_complex(i) else 1)

    # -- names -----------------------------------------------------------------
    def _arg_text(self, k) -> str:
        path = self.paths[k]
        return self.arg_label(path[0]) + _path_text(path[1:])

    def describe_input(self, j) -> str:
        x = self.x(j)
        return f"input {j} ({self._arg_text(self.checked[j])}, {x.dtype}{list(x.shape)})"

    def describe_output(self, i, part=None) -> str:
        o = self.out_values[i]
        k = self.diff_out[i]
        where = self.out_label(k) if self.out_label else _path_text(self.out_paths[k])
        where = f"{where}, " if where else ""
        part = f" ({part} part)" if part else ""
        return f"output {i}{part} ({where}{o.dtype}{list(o.shape)})"

    # -- calling ---------------------------------------------------------------
    def call(self, replace: dict):
        leaves = list(self.leaves)
        for k, v in replace.items():
            leaves[k] = v
        return self.func(*tree_unflatten(self.spec, leaves))

    def restricted(self, which=None) -> Callable:
        """``func`` as a function of the checked inputs ``which`` (default: all)."""
        idx = list(self.checked) if which is None else [self.checked[j] for j in which]
        return lambda *vals: self.call(dict(zip(idx, vals)))

    def with_inputs(self, values) -> "_Problem":
        """A copy of this problem whose checked inputs are ``values``."""
        new = object.__new__(_Problem)
        new.__dict__.update(self.__dict__)
        new.leaves = list(self.leaves)
        for k, v in zip(self.checked, values):
            new.leaves[k] = v
        return new
