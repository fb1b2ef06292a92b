"""Tutorial 4: the empirical neural tangent kernel (NTK) of a small CNN.

For a network f(params, x) with O outputs, the empirical NTK of two inputs
is the O x O matrix ``J(x1) J(x2)^T``, J being the Jacobian of the outputs
with respect to *all* parameters.  Two ways to compute it for every pair of
N x M inputs:

1. **Jacobian contraction**: per-sample Jacobians with
   ``vmap(jacrev(f), in_dims=(None, 0))``, then one ``einsum`` per parameter.
2. **NTK-vector products**: never form J.  For each basis vector e_a,
   ``vjp`` gives J(x1)^T e_a and ``jvp`` pushes it through f at x2 -- one row
   of the kernel; ``vmap`` runs all rows, and two more ``vmap``s all pairs.

Both are checked against each other and against a Python loop over the
pairs with ``jacfwd``; the Jacobian itself is checked by finite differences
along a random parameter direction.

    python examples/neural_tangent_kernels.py [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import npfunc
from npfunc import nn


class CNN(nn.Module):
    def __init__(self, channels: int = 8, size: int = 12, n_out: int = 4, rng=0):
        super().__init__()
        gen = np.random.default_rng(rng)
        self.conv1 = nn.Conv2d(3, channels, 3, rng=gen)
        self.conv2 = nn.Conv2d(channels, channels, 3, rng=gen)
        self.fc = nn.Linear(channels * (size - 4) ** 2, n_out, rng=gen)

    def forward(self, x):
        x = np.tanh(self.conv1(x))
        x = np.tanh(self.conv2(x))
        return self.fc(np.reshape(x, np.shape(x)[:-3] + (-1,)))


def ntk_by_jacobian_contraction(fnet_single, params, x1, x2, compute: str = "full"):
    jac1 = npfunc.vmap(npfunc.jacrev(fnet_single), in_dims=(None, 0))(params, x1)
    jac2 = npfunc.vmap(npfunc.jacrev(fnet_single), in_dims=(None, 0))(params, x2)
    spec = "Naf,Mbf->NMab" if compute == "full" else "Naf,Maf->NM"
    total = 0.0
    for name in params:
        j1, j2 = jac1[name], jac2[name]
        total = total + np.einsum(spec, j1.reshape(j1.shape[:2] + (-1,)), j2.reshape(j2.shape[:2] + (-1,)))
    return total


def ntk_by_ntk_vector_products(fnet_single, params, x1, x2):
    def ntk_of_pair(a, b):
        out, vjp_fn = npfunc.vjp(lambda p: fnet_single(p, a), params)

        def row(vec):  # e_a -> J(b) J(a)^T e_a
            (cotangent,) = vjp_fn(vec)
            return npfunc.jvp(lambda p: fnet_single(p, b), (params,), (cotangent,))[1]

        return npfunc.vmap(row)(np.eye(out.shape[0]))

    return npfunc.vmap(npfunc.vmap(ntk_of_pair, in_dims=(None, 0)), in_dims=(0, None))(x1, x2)


def ntk_by_loop(fnet_single, params, x1, x2):
    jac = npfunc.jacfwd(fnet_single)
    flat = lambda j: np.concatenate([j[k].reshape(j[k].shape[0], -1) for k in params], axis=1)  # noqa: E731
    j1 = [flat(jac(params, a)) for a in x1]
    j2 = [flat(jac(params, b)) for b in x2]
    return np.array([[ja @ jb.T for jb in j2] for ja in j1])


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(small: bool = False) -> dict:
    n1, n2, channels = (4, 3, 4) if small else (16, 8, 8)
    model = CNN(channels=channels, rng=0)
    params = {k: v.copy() for k, v in model.named_parameters()}
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((n1, 3, 12, 12))
    x2 = rng.standard_normal((n2, 3, 12, 12))

    def fnet_single(p, x):
        return npfunc.functional_call(model, p, (x[None],))[0]

    # the Jacobian is right: J v by finite differences along a random direction v
    v = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    eps = 1e-6
    fd = (fnet_single({k: params[k] + eps * v[k] for k in params}, x1[0])
          - fnet_single({k: params[k] - eps * v[k] for k in params}, x1[0])) / (2 * eps)
    jac = npfunc.jacrev(fnet_single)(params, x1[0])
    jv = sum(np.tensordot(jac[k], v[k], axes=v[k].ndim) for k in params)
    fd_err = float(np.max(np.abs(jv - fd)) / np.max(np.abs(fd)))
    assert fd_err < 1e-6, f"Jacobian differs from finite differences ({fd_err:.1e})"

    ntk_jac = ntk_by_jacobian_contraction(fnet_single, params, x1, x2)
    ntk_vps = ntk_by_ntk_vector_products(fnet_single, params, x1, x2)
    ntk_loop = ntk_by_loop(fnet_single, params, x1, x2)
    trace = ntk_by_jacobian_contraction(fnet_single, params, x1, x2, compute="trace")
    scale = np.max(np.abs(ntk_loop))
    err_methods = float(np.max(np.abs(ntk_jac - ntk_vps)) / scale)
    err_loop = float(np.max(np.abs(ntk_jac - ntk_loop)) / scale)
    assert ntk_jac.shape == (n1, n2, 4, 4) and err_methods < 1e-10 and err_loop < 1e-10
    np.testing.assert_allclose(trace, np.trace(ntk_jac, axis1=2, axis2=3), rtol=1e-10)

    repeats = 1 if small else 3
    t_jac = best_time(lambda: ntk_by_jacobian_contraction(fnet_single, params, x1, x2), repeats)
    t_vps = best_time(lambda: ntk_by_ntk_vector_products(fnet_single, params, x1, x2), repeats)
    t_loop = best_time(lambda: ntk_by_loop(fnet_single, params, x1, x2), 1)
    n_params = sum(p.size for p in params.values())
    print(f"empirical NTK of a CNN with {n_params} parameters, {n1} x {n2} inputs of 3x12x12, 4 outputs:")
    print(f"  kernel shape {ntk_jac.shape}; NTK(x1[0], x2[0]) diagonal {np.round(np.diag(ntk_jac[0, 0]), 3)}")
    print(f"  Jacobian contraction vs NTK-vector products: max rel. difference {err_methods:.1e}; "
          f"vs loop over pairs {err_loop:.1e}; Jacobian vs finite differences {fd_err:.1e}")
    print(f"  time: Jacobian contraction {1e3 * t_jac:.0f} ms, NTK-vector products {1e3 * t_vps:.0f} ms, "
          f"Python loop with jacfwd {1e3 * t_loop:.0f} ms")
    return {"err_methods": err_methods, "err_loop": err_loop, "fd_error": fd_err, "t_jac": t_jac,
            "t_vps": t_vps, "t_loop": t_loop, "ntk": ntk_jac}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="empirical neural tangent kernels")
    parser.add_argument("--small", action="store_true")
    main(small=parser.parse_args().small)
