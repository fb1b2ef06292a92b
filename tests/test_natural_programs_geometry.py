"""Natural programs from geometry, graphics and robotics, each written first as
plain NumPy/SciPy the way a practitioner writes it (rotation matrices by
Rodrigues' formula, quaternions, forward kinematics, Kabsch alignment, ray
casting, mesh normals and Laplacians, signed distance fields), then run under
npfunc's transforms and compared with the plain program (values, dtypes,
shapes, side effects) and central differences (derivatives)."""
from __future__ import annotations

import numpy as np
import pytest

import npfunc
from natural_checks import assert_deriv as _assert_deriv, assert_same as _assert_same
from npfunc.testing import numerical_jacobian

# ---- rotations -----------------------------------------------------------------------------


def skew(w):
    """The cross-product matrix [w]_x, filled into a preallocated buffer."""
    K = np.zeros((3, 3))
    K[0, 1] = -w[2]
    K[0, 2] = w[1]
    K[1, 0] = w[2]
    K[1, 2] = -w[0]
    K[2, 0] = -w[1]
    K[2, 1] = w[0]
    return K


def rodrigues(rotvec):
    """Rotation matrix of an axis-angle vector by Rodrigues' formula
    R = I + sin(theta) K + (1 - cos(theta)) K^2, K the skew matrix of the unit axis."""
    theta = np.linalg.norm(rotvec)
    if theta < 1e-12:
        return np.eye(3) + skew(rotvec)
    k = rotvec / theta
    K = skew(k)
    return np.eye(3) + np.sin(theta) * K + (1.0 - np.cos(theta)) * (K @ K)


def rotate_and_measure(rotvec, points):
    """Rotate a point cloud with Rodrigues' matrix, check the rotation with the
    cross product (R a x R b == R (a x b)) and return the mean of the rotated
    z-coordinates plus the cross-product residual."""
    R = rodrigues(rotvec)
    rotated = points @ R.T
    a, b = rotated[0], rotated[1]
    resid = np.cross(a, b) - R @ np.cross(points[0], points[1])
    return rotated[:, 2].mean() + np.sum(resid**2)


def batched_rotation_energy(rotvecs, points):
    """Rotate one point set by a batch of rotations (stacked Rodrigues matrices,
    applied with np.einsum) and return the per-pose spread around a target."""
    Rs = np.stack([rodrigues(v) for v in rotvecs])
    moved = np.einsum("nij,pj->npi", Rs, points)
    target = np.array([0.0, 0.0, 1.0])
    d = np.linalg.norm(moved - target, axis=-1)
    return d.mean(axis=1)


# ---- quaternions ---------------------------------------------------------------------------


def quat_mul(q, r):
    """Hamilton product of (w, x, y, z) quaternions, broadcasting over leading axes."""
    w0, x0, y0, z0 = np.moveaxis(q, -1, 0)
    w1, x1, y1, z1 = np.moveaxis(r, -1, 0)
    return np.stack(
        [
            w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1,
            w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
            w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1,
            w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1,
        ],
        axis=-1,
    )


def quat_to_matrix(q):
    """Rotation matrix of a (not necessarily unit) quaternion: normalise first."""
    q = q / np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def slerp(q0, q1, t):
    """Spherical linear interpolation between unit quaternions, taking the short
    way round, with the clipped dot product fed to arccos."""
    q0 = q0 / np.linalg.norm(q0)
    q1 = q1 / np.linalg.norm(q1)
    dot = np.dot(q0, q1)
    if dot < 0.0:
        q1 = -q1
        dot = -dot
    dot = np.clip(dot, -1.0, 1.0)
    omega = np.arccos(dot)
    so = np.sin(omega)
    return (np.sin((1.0 - t) * omega) / so) * q0 + (np.sin(t * omega) / so) * q1


def quat_chain_pose(q_flat):
    """Compose a chain of joint quaternions (a loop of Hamilton products into a
    running orientation), rotate the tool vector by q v q* and return it."""
    qs = q_flat.reshape(-1, 4)
    qs = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    orient = np.array([1.0, 0.0, 0.0, 0.0])
    for q in qs:
        orient = quat_mul(orient, q)
    v = np.array([0.0, 1.0, 0.0, 0.0])
    conj = orient * np.array([1.0, -1.0, -1.0, -1.0])
    return quat_mul(quat_mul(orient, v), conj)[1:]


# ---- kinematics ----------------------------------------------------------------------------


def planar_arm_fk(angles, lengths=np.array([1.0, 0.8, 0.6, 0.4])):
    """Forward kinematics of a planar serial arm: absolute link angles by
    np.cumsum, joint positions by cumulative sums of link vectors, stacked."""
    phi = np.cumsum(angles)
    x = np.cumsum(lengths * np.cos(phi))
    y = np.cumsum(lengths * np.sin(phi))
    joints = np.stack([x, y], axis=1)
    return joints[-1]


def planar_arm_ik_loss(angles):
    """Inverse-kinematics objective: squared distance of the end effector to a
    target, plus a joint-limit penalty with np.maximum."""
    target = np.array([1.2, 1.5])
    ee = planar_arm_fk(angles)
    err = ee - target
    over = np.maximum(np.abs(angles) - 2.0, 0.0)
    return 0.5 * err @ err + 10.0 * np.sum(over**2)


def dh_transform(theta, d, a, alpha):
    """Denavit-Hartenberg homogeneous transform of one joint."""
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    T = np.eye(4)
    T[0, :] = [ct, -st * ca, st * sa, a * ct]
    T[1, :] = [st, ct * ca, -ct * sa, a * st]
    T[2, 1:] = [sa, ca, d]
    return T


def spatial_arm_fk(q):
    """3-D forward kinematics of a 4-joint arm from DH parameters: a running
    product of homogeneous transforms, updated in place with @=, recording each
    joint origin in a preallocated buffer."""
    d = [0.3, 0.0, 0.0, 0.1]
    a = [0.0, 0.5, 0.4, 0.0]
    alpha = [np.pi / 2, 0.0, 0.0, np.pi / 2]
    T = np.eye(4)
    origins = np.empty((len(q) + 1, 3))
    origins[0] = T[:3, 3]
    for i in range(len(q)):
        T = T @ dh_transform(q[i], d[i], a[i], alpha[i])
        origins[i + 1] = T[:3, 3]
    return origins.ravel()


# ---- alignment -----------------------------------------------------------------------------


def kabsch_rmsd(P_flat, Q):
    """Kabsch alignment: centre both clouds, SVD of the covariance, flip the
    last singular direction when det < 0, and return the RMSD after alignment."""
    P = P_flat.reshape(-1, 3)
    Pc = P - P.mean(axis=0)
    Qc = Q - Q.mean(axis=0)
    H = Pc.T @ Qc
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag([1.0, 1.0, d])
    R = Vt.T @ D @ U.T
    diff = Pc @ R.T - Qc
    return np.sqrt(np.mean(np.sum(diff**2, axis=1)))


# ---- ray casting ---------------------------------------------------------------------------


def ray_sphere_depth(center, origins, dirs, radius=1.0):
    """Depth image of a sphere: per-ray quadratic, discriminant clipped at zero
    before the square root, misses set to a far-plane value with np.where."""
    oc = origins - center
    b = np.einsum("ij,ij->i", dirs, oc)
    c = np.einsum("ij,ij->i", oc, oc) - radius**2
    disc = b * b - c
    hit = disc > 0.0
    t = -b - np.sqrt(np.clip(disc, 0.0, None))
    return np.where(hit & (t > 0), t, 10.0)


def ray_plane_hits(plane, origins, dirs):
    """Intersect rays with the plane n . x = d given as plane = (n, d); returns
    the hit points, with rays parallel to the plane sent to the origin."""
    n = plane[:3]
    d = plane[3]
    denom = dirs @ n
    safe = np.where(np.abs(denom) > 1e-9, denom, 1.0)
    t = (d - origins @ n) / safe
    t = np.where(np.abs(denom) > 1e-9, t, 0.0)
    return origins + t[:, None] * dirs


# ---- triangles and polygons ----------------------------------------------------------------


def barycentric(p, tri):
    """Barycentric coordinates of point p in the triangle tri (3x2) by the
    standard dot-product formulas."""
    a, b, c = tri
    v0, v1, v2 = b - a, c - a, p - a
    d00 = v0 @ v0
    d01 = v0 @ v1
    d11 = v1 @ v1
    d20 = v2 @ v0
    d21 = v2 @ v1
    denom = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    return np.array([1.0 - v - w, v, w])


def polygon_area_perimeter(xy_flat):
    """Shoelace area (np.roll) and perimeter (np.hypot of edge vectors) of a
    closed polygon; returns the isoperimetric ratio 4 pi A / L^2."""
    xy = xy_flat.reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    edges = np.roll(xy, -1, axis=0) - xy
    perim = np.sum(np.hypot(edges[:, 0], edges[:, 1]))
    return 4.0 * np.pi * area / perim**2


def polygon_angles(xy):
    """Interior turning angles of a polygon from np.arctan2 of edge headings,
    wrapped into (-pi, pi] with np.mod; returns their sum of squares."""
    edges = np.diff(np.vstack([xy, xy[:1]]), axis=0)
    heading = np.arctan2(edges[:, 1], edges[:, 0])
    turn = np.diff(np.concatenate([heading, heading[:1]]))
    turn = np.mod(turn + np.pi, 2 * np.pi) - np.pi
    return np.sum(turn**2)


# ---- meshes --------------------------------------------------------------------------------

# An octahedron: 6 vertices, 8 faces.
OCTA_V = np.array(
    [[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float
)
OCTA_F = np.array(
    [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
)


def vertex_normals(v_flat, faces=OCTA_F):
    """Area-weighted vertex normals: face normals by np.cross, scattered to the
    vertices with np.add.at, normalised with np.linalg.norm(axis=1)."""
    V = v_flat.reshape(-1, 3)
    e1 = V[faces[:, 1]] - V[faces[:, 0]]
    e2 = V[faces[:, 2]] - V[faces[:, 0]]
    fn = np.cross(e1, e2)
    vn = np.zeros_like(V)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True)
    return vn.ravel()


def mesh_area_volume(v_flat, faces=OCTA_F):
    """Surface area (half norms of face cross products) and enclosed volume
    (divergence theorem: det of the three vertices / 6) of a closed mesh."""
    V = v_flat.reshape(-1, 3)
    a, b, c = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    return np.array([area, vol])


def umbrella_laplacian_energy(v_flat, faces=OCTA_F):
    """Uniform (umbrella) Laplacian smoothing energy: edge list from the faces,
    neighbour sums and valences by np.bincount with weights."""
    V = v_flat.reshape(-1, 3)
    n = len(V)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    # each undirected edge appears twice (once per adjacent face): use both directions
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    valence = np.bincount(src, minlength=n)
    nbr_sum = np.stack([np.bincount(src, weights=V[dst, k], minlength=n) for k in range(3)], axis=1)
    lap = nbr_sum / valence[:, None] - V
    return np.sum(lap**2)


def cotangent_weights(v_flat, faces=OCTA_F):
    """Cotangent weights of each face corner: cot = (u . v) / |u x v|, summed
    over the faces sharing each vertex with np.add.at into a buffer."""
    V = v_flat.reshape(-1, 3)
    w = np.zeros(len(V))
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        u = V[j] - V[i]
        v = V[l] - V[i]
        cot = np.sum(u * v, axis=1) / np.linalg.norm(np.cross(u, v), axis=1)
        np.add.at(w, i, cot)
    return w


# ---- distance fields -----------------------------------------------------------------------


def sdf_scene(p, box_half=np.array([0.5, 0.3, 0.4])):
    """Signed distance of points to the union of a box and a capsule
    (np.maximum/np.minimum, norm along axis=-1), smooth-min blended."""
    q = np.abs(p) - box_half
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(np.max(q, axis=-1), 0.0)
    d_box = outside + inside
    a = np.array([0.0, -0.5, 0.8])
    b = np.array([0.0, 0.5, 0.8])
    pa = p - a
    ba = b - a
    h = np.clip(pa @ ba / (ba @ ba), 0.0, 1.0)
    d_cap = np.linalg.norm(pa - h[..., None] * ba, axis=-1) - 0.2
    k = 0.1
    hmix = np.clip(0.5 + 0.5 * (d_cap - d_box) / k, 0.0, 1.0)
    return d_cap * (1 - hmix) + d_box * hmix - k * hmix * (1 - hmix)


# ---- camera and odometry -------------------------------------------------------------------


def reprojection_error(pose, X, uv_obs, f=500.0):
    """Pinhole reprojection error of a 6-DOF pose (rotation vector, translation):
    points into the camera frame, perspective division, squared pixel residuals."""
    R = rodrigues(pose[:3])
    Xc = X @ R.T + pose[3:]
    uv = f * Xc[:, :2] / Xc[:, 2:3]
    r = uv - uv_obs
    return 0.5 * np.sum(r * r)


def unicycle_odometry(controls, dt=0.1):
    """Integrate unicycle kinematics (v, omega per step) into a preallocated
    trajectory buffer with explicit Euler, wrapping the heading with arctan2."""
    u = controls.reshape(-1, 2)
    traj = np.zeros((len(u) + 1, 3))
    for k in range(len(u)):
        x, y, th = traj[k]
        v, w = u[k]
        traj[k + 1, 0] = x + dt * v * np.cos(th)
        traj[k + 1, 1] = y + dt * v * np.sin(th)
        th_new = th + dt * w
        traj[k + 1, 2] = np.arctan2(np.sin(th_new), np.cos(th_new))
    return traj[-1]


def normalize_rows_inplace(v):
    """Normalise each row of v in place (a common utility) and return the norms."""
    norms = np.linalg.norm(v, axis=1)
    v /= norms[:, None]
    return norms


def rodrigues_batch(rotvecs):
    """Vectorised Rodrigues for N axis-angle vectors: skew matrices assembled
    with np.stack, the formula applied with broadcasting; a tiny epsilon keeps
    the axis finite at theta = 0."""
    theta = np.sqrt(np.sum(rotvecs**2, axis=-1) + 1e-30)
    k = rotvecs / theta[..., None]
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(k.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None, None]
    c = np.cos(theta)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * np.matmul(K, K)


def expm_rotation_residual(w, points):
    """Rotation by the matrix exponential of a skew matrix (scipy.linalg.expm),
    compared with the closed-form Rodrigues matrix on a point cloud."""
    import scipy.linalg

    W = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    R = scipy.linalg.expm(W)
    return (points @ R.T).sum(axis=0)


def chamfer_distance(p_flat, Q):
    """Symmetric chamfer distance between two point clouds with
    scipy.spatial.distance.cdist (squared Euclidean) and min over each axis."""
    from scipy.spatial.distance import cdist

    P = p_flat.reshape(-1, 3)
    D = cdist(P, Q, "sqeuclidean")
    return D.min(axis=1).mean() + D.min(axis=0).mean()


def pixel_polygon_area(xy):
    """Shoelace area of a polygon given by integer pixel corners (np.roll)."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * np.abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def reprojection_error_vec(pose, X, uv_obs, f=500.0):
    """The same reprojection error with the vectorised Rodrigues matrix."""
    R = rodrigues_batch(pose[:3])
    Xc = X @ R.T + pose[3:]
    uv = f * Xc[:, :2] / Xc[:, 2:3]
    r = uv - uv_obs
    return 0.5 * np.sum(r * r)


# =============================================================================================
# tests
# =============================================================================================

rng = np.random.default_rng(20240611)


def fd(f, x, eps=1e-5):
    """Five-point central differences of the plain program."""
    return numerical_jacobian(f, np.asarray(x, dtype=float), eps=eps, order=4)


def assert_same(got, ref, rtol=1e-12, atol=1e-14):
    _assert_same(got, ref, rtol, atol)


def assert_deriv(got, ref, rtol=1e-5, atol=1e-7):
    _assert_deriv(got, ref, rtol, atol)


def loop(f, xs):
    return np.stack([f(x) for x in xs])


def check_array_program(f, x, xs):
    """jit, vmap, jacrev, jacfwd and a few compositions of an array-valued program."""
    ref = f(x)
    assert_same(npfunc.jit(f)(x), ref)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs))
    assert_same(npfunc.vmap(npfunc.jit(f))(xs), loop(f, xs))
    assert_same(npfunc.jit(npfunc.vmap(f))(xs), loop(f, xs))
    J = fd(f, x)
    assert_deriv(npfunc.jacrev(f)(x), J)
    assert_deriv(npfunc.jacfwd(f)(x), J)
    assert_deriv(npfunc.jit(npfunc.jacrev(f))(x), J)
    assert_deriv(npfunc.jacrev(npfunc.jit(f))(x), J)
    assert_same(npfunc.vmap(npfunc.jacrev(f))(xs), loop(npfunc.jacrev(f), xs), rtol=1e-10, atol=1e-12)


def check_scalar_program(f, x, xs, hess=True):
    """grad_and_value, hessian, jit(grad), grad(jit), vmap(grad) of a scalar program."""
    ref = f(x)
    assert_same(npfunc.jit(f)(x), ref)
    g, v = npfunc.grad_and_value(f)(x)
    assert_same(v, ref)
    G = fd(f, x)
    assert_deriv(g, G)
    assert_deriv(npfunc.jit(npfunc.grad(f))(x), G)
    assert_deriv(npfunc.grad(npfunc.jit(f))(x), G)
    assert_same(npfunc.vmap(f)(xs), loop(f, xs))
    assert_same(npfunc.vmap(npfunc.grad(f))(xs), loop(npfunc.grad(f), xs), rtol=1e-10, atol=1e-12)
    if hess:
        H = fd(npfunc.grad(f), x)
        assert_deriv(npfunc.hessian(f)(x), H, rtol=1e-5, atol=1e-6)
        assert_deriv(npfunc.jacfwd(npfunc.jacrev(f))(x), H, rtol=1e-5, atol=1e-6)


# ---- passing programs ----------------------------------------------------------------------


def test_quat_to_matrix():
    check_array_program(quat_to_matrix, rng.normal(size=4), rng.normal(size=(5, 4)))


def test_quat_chain_pose():
    check_array_program(quat_chain_pose, rng.normal(size=12), rng.normal(size=(3, 12)))


def test_slerp_wrt_quaternion_and_time():
    q0, q1 = rng.normal(size=4), rng.normal(size=4)
    f = lambda q: slerp(q, q1, 0.3)
    J = fd(f, q0)
    assert_deriv(npfunc.jacrev(f)(q0), J)
    assert_deriv(npfunc.jacfwd(f)(q0), J)
    s = lambda t: slerp(q0, q1, t)
    ts = np.linspace(0.0, 1.0, 5)
    assert_same(npfunc.jit(s)(0.3), s(0.3))
    assert_same(npfunc.vmap(s)(ts), loop(s, ts))
    assert_same(npfunc.jit(npfunc.vmap(s))(ts), loop(s, ts))
    dt = fd(s, 0.3)
    assert_deriv(npfunc.jacfwd(s)(0.3), dt)
    assert_deriv(npfunc.jacrev(s)(0.3), dt)
    out, tan = npfunc.jvp(s, (0.3,), (1.0,))
    assert_same(out, s(0.3))
    assert_deriv(tan, dt)


def test_slerp_hemisphere_branch_refused_under_vmap():
    """`if dot < 0` is data-dependent control flow: vmap refuses and names np.where."""
    q1 = rng.normal(size=4)
    with pytest.raises(npfunc.errors.BatchedConversionError, match="np.where"):
        npfunc.vmap(lambda q: slerp(q, q1, 0.3))(rng.normal(size=(3, 4)))


def test_planar_arm_fk():
    a = rng.normal(size=4)
    check_array_program(planar_arm_fk, a, rng.normal(size=(5, 4)))
    J = fd(planar_arm_fk, a)
    out, lin = npfunc.linearize(planar_arm_fk, a)
    assert_same(out, planar_arm_fk(a))
    assert_deriv(lin(np.arange(4.0)), J @ np.arange(4.0))
    out, pullback = npfunc.vjp(planar_arm_fk, a)
    assert_same(out, planar_arm_fk(a))
    ct = np.array([1.0, -2.0])
    assert_deriv(pullback(ct)[0], ct @ J)


def test_planar_arm_ik_loss():
    check_scalar_program(planar_arm_ik_loss, np.array([0.3, 2.4, -0.7, -2.2]), rng.normal(size=(5, 4)))


def test_kabsch_rmsd_derivatives():
    Q = rng.normal(size=(6, 3))
    f = lambda p: kabsch_rmsd(p, Q)
    p = rng.normal(size=18)
    g, v = npfunc.grad_and_value(f)(p)
    assert_same(v, f(p))
    assert_deriv(g, fd(f, p))
    assert_deriv(npfunc.hessian(f)(p), fd(npfunc.grad(f), p), atol=1e-6)


def _rays(n=8):
    O = rng.normal(size=(n, 3)) * 0.3 + np.array([0, 0, -4.0])
    D = rng.normal(size=(n, 3)) * 0.2 + np.array([0, 0, 1.0])
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return O, D


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_ray_sphere_depth_values_and_forward_mode():
    O, D = _rays(12)
    c = np.array([0.05, -0.02, 0.1])
    f = lambda c: ray_sphere_depth(c, O, D)
    assert (f(c) == 10.0).any() and (f(c) < 10.0).any()
    cs = rng.normal(size=(4, 3)) * 0.05
    assert_same(npfunc.jit(f)(c), f(c))
    assert_same(npfunc.vmap(ray_sphere_depth, in_dims=(0, None, None))(cs, O, D), loop(f, cs))
    assert_same(npfunc.vmap(ray_sphere_depth, in_dims=(0, None, None), chunk_size=3)(cs, O, D), loop(f, cs))
    assert_deriv(npfunc.jacfwd(f)(c), fd(f, c))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_ray_sphere_depth_reverse_mode():
    O, D = _rays(12)
    c = np.array([0.05, -0.02, 0.1])
    f = lambda c: ray_sphere_depth(c, O, D)
    assert_deriv(npfunc.jacrev(f)(c), fd(f, c))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_sqrt_of_clipped_discriminant_grad():
    f = lambda x: np.sqrt(np.clip(x, 0.0, None)).sum()
    x = np.array([-1.0, 4.0])
    np.testing.assert_allclose(fd(f, x), [0.0, 0.25], atol=1e-8)
    assert_deriv(npfunc.grad(f)(x), np.array([0.0, 0.25]))


def test_ray_plane_hits():
    O, D = _rays(6)
    f = lambda pl: ray_plane_hits(pl, O, D)
    check_array_program(f, np.array([0.1, 0.2, 1.0, 0.5]), rng.normal(size=(3, 4)) * 0.1 + np.array([0, 0, 1, 0.5]))


def test_barycentric():
    tri = np.array([[0.0, 0.0], [1.0, 0.1], [0.2, 0.9]])
    f = lambda p: barycentric(p, tri)
    check_array_program(f, np.array([0.3, 0.3]), rng.normal(size=(4, 2)))
    g = lambda t: barycentric(np.array([0.3, 0.3]), t.reshape(3, 2))
    assert_deriv(npfunc.jacfwd(npfunc.jacrev(g))(tri.ravel()), fd(npfunc.jacrev(g), tri.ravel()), atol=1e-6)


def _hexagon():
    t = np.linspace(0, 2 * np.pi, 7)[:-1]
    return (np.stack([np.cos(t), np.sin(t)], 1) + 0.05 * rng.normal(size=(6, 2))).ravel()


def test_polygon_area_perimeter():
    p = _hexagon()
    check_scalar_program(polygon_area_perimeter, p, p + 0.02 * rng.normal(size=(3, 12)))


def test_polygon_angles():
    p = _hexagon()
    f = lambda z: polygon_angles(z.reshape(-1, 2))
    check_scalar_program(f, p, p + 0.02 * rng.normal(size=(3, 12)))


def _octa():
    return OCTA_V.ravel() + 0.05 * rng.normal(size=18)


def test_vertex_normals():
    V = _octa()
    check_array_program(vertex_normals, V, V + 0.05 * rng.normal(size=(3, 18)))


def test_mesh_area_volume():
    V = _octa()
    check_array_program(mesh_area_volume, V, V + 0.05 * rng.normal(size=(3, 18)))


def test_mesh_area_volume_float32_dtype():
    V = _octa().astype(np.float32)
    ref = mesh_area_volume(V)
    assert_same(npfunc.jit(mesh_area_volume)(V), ref, rtol=1e-6, atol=1e-6)
    assert_same(npfunc.vmap(mesh_area_volume)(np.stack([V, V])), np.stack([ref, ref]), rtol=1e-6, atol=1e-6)
    assert npfunc.jacrev(mesh_area_volume)(V).dtype == np.float32


def test_umbrella_laplacian_energy():
    V = _octa()
    check_scalar_program(umbrella_laplacian_energy, V, V + 0.05 * rng.normal(size=(3, 18)))


def test_sdf_scene():
    pts = rng.normal(size=(6, 3)) * 0.6
    p = np.array([0.3, 0.7, 0.5])
    check_scalar_program(sdf_scene, p, pts)
    # batched normals of the surface: vmap(grad), under jit
    normals = npfunc.jit(npfunc.vmap(npfunc.grad(sdf_scene)))(pts)
    assert_deriv(normals, np.stack([fd(sdf_scene, q) for q in pts]))


def test_rodrigues_batch():
    rv = rng.normal(size=(5, 3))
    ref = rodrigues_batch(rv)
    assert_same(npfunc.jit(rodrigues_batch)(rv), ref)
    assert_same(npfunc.vmap(rodrigues_batch)(rv), ref)
    J = fd(rodrigues_batch, rv)
    assert_deriv(npfunc.jacrev(rodrigues_batch)(rv), J)
    assert_deriv(npfunc.jacfwd(rodrigues_batch)(rv), J)
    z = np.zeros(3)
    assert_deriv(npfunc.jacrev(rodrigues_batch)(z), fd(rodrigues_batch, z))


def test_batched_rotation_einsum_with_vectorised_rodrigues():
    P = rng.normal(size=(5, 3))

    def energy(flat):
        Rs = rodrigues_batch(flat.reshape(-1, 3))
        moved = np.einsum("nij,pj->npi", Rs, P)
        return np.linalg.norm(moved - np.array([0.0, 0.0, 1.0]), axis=-1).mean(axis=1)

    check_array_program(energy, rng.normal(size=9), rng.normal(size=(3, 9)))


def test_reprojection_error_vec():
    X = rng.normal(size=(6, 3)) + np.array([0, 0, 5.0])
    uv = rng.normal(size=(6, 2)) * 50
    f = lambda pose: reprojection_error_vec(pose, X, uv)
    pose = np.array([0.05, -0.1, 0.02, 0.1, -0.2, 0.3])
    check_scalar_program(f, pose, pose + 0.05 * rng.normal(size=(3, 6)), hess=False)
    assert_deriv(npfunc.hessian(f)(pose), fd(npfunc.grad(f), pose), rtol=1e-5, atol=1e-3)


def test_expm_rotation_residual():
    P = rng.normal(size=(4, 3))
    f = lambda w: expm_rotation_residual(w, P)
    check_array_program(f, np.array([0.3, -0.2, 0.5]), rng.normal(size=(3, 3)))


def test_chamfer_distance_cdist():
    Q = rng.normal(size=(7, 3))
    f = lambda p: chamfer_distance(p, Q)
    p = rng.normal(size=12)
    check_scalar_program(f, p, rng.normal(size=(3, 12)), hess=False)


def test_pixel_polygon_area_integer_corners():
    xy = np.array([[0, 0], [4, 0], [4, 3], [1, 5]])
    assert_same(npfunc.jit(pixel_polygon_area)(xy), pixel_polygon_area(xy))
    xys = np.stack([xy, xy + 1, 2 * xy])
    assert_same(npfunc.vmap(pixel_polygon_area)(xys), loop(pixel_polygon_area, xys))


def test_normalize_rows_inplace_side_effects():
    v = rng.normal(size=(4, 3))
    ref_v = v.copy()
    ref_n = normalize_rows_inplace(ref_v)
    a = v.copy()
    assert_same(npfunc.jit(normalize_rows_inplace)(a), ref_n)
    np.testing.assert_array_equal(a, ref_v)
    b = np.stack([v, 2 * v])
    ref_b = b.copy()
    ref_nb = loop(normalize_rows_inplace, ref_b)
    assert_same(npfunc.vmap(normalize_rows_inplace)(b), ref_nb)
    np.testing.assert_array_equal(b, ref_b)
    # through a strided view of a bigger buffer
    big = rng.normal(size=(8, 3))
    ref_big = big.copy()
    normalize_rows_inplace(ref_big[::2])
    npfunc.jit(normalize_rows_inplace)(big[::2])
    np.testing.assert_array_equal(big, ref_big)


def test_rodrigues_branch_refused_under_jit_and_vmap():
    """`if theta < 1e-12` needs a concrete value: a clear refusal naming np.where."""
    with pytest.raises(npfunc.errors.ConcretizationError, match="np.where"):
        npfunc.jit(rodrigues)(np.array([0.3, -0.5, 0.8]))
    with pytest.raises(npfunc.errors.BatchedConversionError, match="np.where"):
        npfunc.vmap(rodrigues)(rng.normal(size=(3, 3)))


# ---- preallocated buffers written with traced values (were refused: strict xfails) ----------
# np.zeros / np.eye made inside the function take traced writes (core/pending.py).


def test_rodrigues_skew_buffer_jacrev():
    """The skew matrix filled into np.zeros((3, 3)) (K[0, 1] = -w[2])."""
    w = np.array([0.3, -0.5, 0.8])
    assert_deriv(npfunc.jacrev(rodrigues)(w), fd(rodrigues, w))


def test_spatial_arm_fk_jacrev():
    """DH transform rows written into np.eye(4) (T[0, :] = [...])."""
    q = rng.normal(size=4)
    assert_deriv(npfunc.jacrev(spatial_arm_fk)(q), fd(spatial_arm_fk, q))


def test_unicycle_odometry_jacrev():
    """The trajectory integrated into an np.zeros buffer (traj[k + 1, 0] = ...)."""
    u = rng.normal(size=20) * 3
    assert_deriv(npfunc.jacrev(unicycle_odometry)(u), fd(unicycle_odometry, u))


def test_cotangent_weights_jacrev():
    """np.add.at into an np.zeros(len(V)) buffer (as into np.zeros_like(V))."""
    V = _octa()
    assert_deriv(npfunc.jacrev(cotangent_weights)(V), fd(cotangent_weights, V))


# ---- refusals of natural code (kind 3) ------------------------------------------------------


@pytest.mark.xfail(strict=True, raises=npfunc.errors.ConcretizationError, reason="np.diag([1.0, 1.0, d]) with traced d refused under jit (np.array([...]) of traced scalars works)")
def test_kabsch_rmsd_jit():
    Q = rng.normal(size=(6, 3))
    f = lambda p: kabsch_rmsd(p, Q)
    p = rng.normal(size=18)
    assert_same(npfunc.jit(f)(p), f(p))


# ---- rounding-level differences (kind 1, minor) ---------------------------------------------


@pytest.mark.xfail(strict=True, reason="np.einsum('ij,ij->i') under jit/vmap is not bitwise NumPy's (different summation order)")
def test_einsum_rowwise_dot_bitwise_float32():
    a = rng.normal(size=(200, 3)).astype(np.float32)
    b = rng.normal(size=(200, 3)).astype(np.float32)
    f = lambda a: np.einsum("ij,ij->i", a, b)
    np.testing.assert_array_equal(npfunc.jit(f)(a), f(a))


@pytest.mark.xfail(strict=True, reason="np.add.at into a non-zero buffer under jit is not bitwise NumPy's (scattered sum added at once)")
def test_add_at_accumulation_bitwise():
    idx = rng.integers(0, 5, size=40)
    x = rng.normal(size=40)

    def f(x):
        out = np.ones_like(x[:5]) * 0.1
        np.add.at(out, idx, x)
        return out

    np.testing.assert_array_equal(npfunc.jit(f)(x), f(x))


# ---- more programs ---------------------------------------------------------------------------


def fit_plane_lstsq(pts_flat):
    """Least-squares plane z = a x + b y + c through a point cloud
    (np.linalg.lstsq with rcond=None), returned as the unit normal and offset."""
    P = pts_flat.reshape(-1, 3)
    A = np.column_stack([P[:, 0], P[:, 1], np.ones(len(P))])
    coef, *_ = np.linalg.lstsq(A, P[:, 2], rcond=None)
    n = np.array([coef[0], coef[1], -1.0])
    n = n / np.linalg.norm(n)
    return np.append(n, -coef[2] * n[2])


def fit_plane_svd(pts_flat):
    """Total-least-squares plane: centroid and the last right singular vector of
    the centred cloud, sign fixed so the normal points up; returns the
    residual distances of the points to the plane."""
    P = pts_flat.reshape(-1, 3)
    c = P.mean(axis=0)
    _, _, Vt = np.linalg.svd(P - c)
    n = Vt[-1]
    n = n * np.sign(n[2])
    return (P - c) @ n


def rotation_angle_error(R_est_flat, R_true):
    """Geodesic angle between an estimated (not exactly orthonormal) rotation
    matrix and the true one: arccos of the clipped (trace - 1) / 2."""
    R_est = R_est_flat.reshape(3, 3)
    cos = (np.trace(R_true.T @ R_est) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _plane_cloud(n=10):
    xy = rng.normal(size=(n, 2))
    z = 0.3 * xy[:, 0] - 0.2 * xy[:, 1] + 0.5 + 0.05 * rng.normal(size=n)
    return np.column_stack([xy, z]).ravel()


def test_fit_plane_lstsq_derivatives_and_vmap():
    p = _plane_cloud()
    ps = np.stack([_plane_cloud() for _ in range(3)])
    assert_same(npfunc.vmap(fit_plane_lstsq)(ps), loop(fit_plane_lstsq, ps))
    J = fd(fit_plane_lstsq, p)
    assert_deriv(npfunc.jacrev(fit_plane_lstsq)(p), J)
    assert_deriv(npfunc.jacfwd(fit_plane_lstsq)(p), J)


def test_fit_plane_lstsq_jit():
    p = _plane_cloud()
    assert_same(npfunc.jit(fit_plane_lstsq)(p), fit_plane_lstsq(p))


def test_fit_plane_svd():
    p = _plane_cloud()
    check_array_program(fit_plane_svd, p, np.stack([_plane_cloud() for _ in range(3)]))


def test_rotation_angle_error_unclipped():
    R_true = rodrigues_batch(np.array([0.2, -0.1, 0.4]))
    f = lambda r: rotation_angle_error(r, R_true)
    r = rodrigues_batch(np.array([0.25, -0.05, 0.3])).ravel()
    check_scalar_program(f, r, r + 0.01 * rng.normal(size=(3, 9)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_rotation_angle_error_clipped():
    R_true = rodrigues_batch(np.array([0.2, -0.1, 0.4]))
    f = lambda r: rotation_angle_error(r, R_true)
    r = 1.05 * R_true.ravel()  # noisy estimate, slightly scaled: (trace - 1) / 2 > 1
    assert f(r) == 0.0
    np.testing.assert_allclose(fd(f, r), 0.0, atol=1e-8)
    assert_deriv(npfunc.grad(f)(r), fd(f, r))
