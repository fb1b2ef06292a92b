"""Natural programs from robotics and kinematics, written first as plain NumPy/SciPy and then
run under npfunc's transforms (jit with record and replay, vmap, grad, jacrev, jacfwd, hessian,
jvp, vjp and their compositions, each transformed function called several times on the same
and on new inputs) against the plain program (type, dtype, shape, value, side effects) and
against five-point differences.

Programs:
  * rotations: Rx/Ry/Rz from np.array([[...]]) of traced cosines, roll-pitch-yaw to a matrix and
    back (arcsin/arctan2, early return at gimbal lock), hat/vee, SO(3) exp (Rodrigues with a
    small-angle branch, and a branch-free np.where spelling for batching) and log (clip, arccos);
  * quaternions: Hamilton product by unpacking, quaternion to matrix, rotation of vectors,
    slerp with sign flip and the nearly-parallel branch, geodesic angle, strapdown gyro
    integration with in-place += and /= (a copy, and the caller's buffer updated in place);
  * forward kinematics: DH transforms of a UR5 in a loop of 4x4 products, all frames in a
    preallocated buffer, end-effector pose as a dict, planar arms by np.cumsum, joint positions
    written element by element, product of exponentials with scipy.linalg.expm;
  * Jacobians: the geometric Jacobian from frame columns (np.cross into a buffer) against jacfwd
    of the position, planar Jacobians, Yoshikawa manipulability (det), inverse condition number
    (svd), the velocity ellipsoid (eigh, % pi) as a dict, Cartesian stiffness (inv, diag),
    null-space resolved rates (pinv);
  * inverse kinematics: closed-form two-link IK (law of cosines, raise when out of reach),
    damped least squares (solve, in-place q +=), minimum-norm Gauss-Newton with lstsq and an
    early break returning a dict, Jacobian-transpose descent with a preallocated history;
  * dynamics: double-pendulum Lagrangian (mass matrix by hessian, equations of motion by grad and
    jacfwd against the closed form), planar-arm Lagrangian against recursive Newton-Euler,
    Christoffel symbols from jacfwd of a mass matrix, a spring pendulum's stiffness by
    grad(grad), RK4 into a preallocated trajectory (tuple assignment of traced scalars),
    solve_ivp, the exact period by ellipk, saturated PD torques (clip);
  * mobile robots: differential-drive odometry updating the pose in place, unicycle rollouts
    (lists of traced values assigned into a buffer), a float32 bicycle model, EKF prediction
    and range-bearing update (hypot, wrapped innovations, multivariate_normal.logpdf), particle
    log-weights (norm.logpdf, logsumexp);
  * trajectories: minimum jerk, quintic coefficients by solve and np.polyval, a trapezoidal
    velocity profile by nested np.where, smoothness (np.diff n=2 of np.vstack) and CHOMP
    obstacle costs, the length of a CubicSpline path;
  * collisions: point-segment distance (clip), a box SDF with the builtin min, self-collision
    penalties over np.triu_indices pairs, soft-min clearance by logsumexp, scipy cdist;
  * pose graphs and registration: 2D pose-graph residuals over an edge list (Huber cost) and a
    hand-written Gauss-Newton, SE(3) residuals through so3_log, Kabsch alignment (svd, sign of
    det, np.diag of an np.array), ICP with argmin correspondences, pinhole reprojection error and a
    float32 projection into an np.empty buffer;
  * more: bilinear occupancy-grid costs (floor to cell indices), planar moments by np.cross of
    2-vectors, scipy.spatial.transform.Rotation, regularised IK by scipy.optimize.least_squares,
    the perimeter of an elliptic path (ellipe), linearized FK, functionalize of the in-place gyro
    update, checkpointed RK4 steps.

Refusals checked as such (each names the transform and a fix): q = q0.copy(); q += traced with a
plain q0 (x = x + y), Python branches on traced values under jit/vmap (np.where),
np.diag([1.0, 1.0, d]), a traced index into a plain grid under jit/vmap, solve_ivp without t_eval
under jit/vmap.  Plain preallocated buffers made in the function (np.zeros(...) written with
traced values: joint positions, an odometry pose), once refused, take the traced writes and are
checked as values and derivatives, against the like= spelling too.

Findings fixed here (each with its regression test): scipy.special.ellipk/ellipe/ellipkm1 were
refused (now primitives: Legendre's relations, a Taylor series near m = 0); np.concatenate([a, [t],
b]) with a traced t in a nested list gave a generic message (np.concatenate now builds such
lists while a transform runs); np.cross of 2-vectors did not give NumPy 2's DeprecationWarning under any
transform; scipy.spatial.transform.Rotation on traced values raised a bare "TypeError: a
bytes-like object is required, not 'ReverseTracer'" (now a refusal naming the transform,
Rotation.from_rotvec and SCIPY_ARRAY_API=1, with which it works).  Observed, not a difference:
the optimised jit replay may differ from the recording call in the last bits (documented), so
replays are compared bit for bit with each other; vmap of least_squares takes ~4 s for 2 problems.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.optimize
import scipy.special
import scipy.stats

import npfunc
from natural_checks import assert_deriv, assert_same, fd

G = 9.81

# ---- rotations: matrices, Euler angles, SO(3) exp/log, quaternions --------------------------


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_to_matrix(rpy):
    """ZYX convention: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    roll, pitch, yaw = rpy
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


def matrix_to_rpy(R):
    """Inverse of rpy_to_matrix, with an early return at gimbal lock."""
    if abs(R[2, 0]) > 1.0 - 1e-9:
        pitch = -np.sign(R[2, 0]) * np.pi / 2
        roll = np.arctan2(-R[1, 2], R[1, 1])
        return np.array([roll, pitch, 0.0])
    pitch = -np.arcsin(R[2, 0])
    roll = np.arctan2(R[2, 1], R[2, 2])
    yaw = np.arctan2(R[1, 0], R[0, 0])
    return np.array([roll, pitch, yaw])


def hat(w):
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def vee(W):
    return np.array([W[2, 1], W[0, 2], W[1, 0]])


def so3_exp(w):
    """Rodrigues' formula with the small-angle branch."""
    theta = np.linalg.norm(w)
    K = hat(w)
    if theta < 1e-8:
        return np.eye(3) + K
    return np.eye(3) + (np.sin(theta) / theta) * K + ((1 - np.cos(theta)) / theta**2) * (K @ K)


def so3_log(R):
    cos_t = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos_t)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if theta < 1e-8:
        return 0.5 * w
    return theta / (2.0 * np.sin(theta)) * w


def so3_exp_where(w):
    """A branch-free Rodrigues for batching: the Taylor coefficients below 1e-4."""
    theta2 = np.dot(w, w)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    K = hat(w)
    return np.eye(3) + a * K + b * (K @ K)


def quat_mul(p, q):
    w1, x1, y1, z1 = p
    w2, x2, y2, z2 = q
    return np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])


def quat_conj(q):
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_matrix(q):
    q = q / np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def quat_rotate(q, v):
    qv = np.concatenate(([0.0], v))
    return quat_mul(quat_mul(q, qv), quat_conj(q))[1:]


def slerp(q0, q1, t):
    dot = np.dot(q0, q1)
    if dot < 0.0:
        q1 = -q1
        dot = -dot
    if dot > 0.9995:
        out = q0 + t * (q1 - q0)
        return out / np.linalg.norm(out)
    theta0 = np.arccos(dot)
    theta = theta0 * t
    s1 = np.sin(theta) / np.sin(theta0)
    s0 = np.cos(theta) - dot * s1
    return s0 * q0 + s1 * q1


def quat_angle_distance(q0, q1):
    """Geodesic angle between two unit quaternions (sign-invariant)."""
    d = np.abs(np.dot(q0, q1))
    return 2.0 * np.arccos(np.minimum(d, 1.0))


def integrate_gyro(q0, omegas, dt):
    """Strapdown attitude: q' = q/2 (0, w), explicit Euler and renormalisation in place."""
    q = q0.copy()
    for w in omegas:
        dq = 0.5 * quat_mul(q, np.concatenate(([0.0], w)))
        q += dt * dq
        q /= np.linalg.norm(q)
    return q


def integrate_gyro_inplace(q, omegas, dt):
    """The same, updating the caller's quaternion buffer (returns None)."""
    for w in omegas:
        dq = 0.5 * quat_mul(q, np.concatenate(([0.0], w)))
        q += dt * dq
        q /= np.linalg.norm(q)


# ---- forward kinematics ---------------------------------------------------------------------

UR5_DH = {
    "d": np.array([0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823]),
    "a": np.array([0.0, -0.425, -0.39225, 0.0, 0.0, 0.0]),
    "alpha": np.array([np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0]),
}


def dh_transform(theta, d, a, alpha):
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    return np.array([
        [ct, -st * ca, st * sa, a * ct],
        [st, ct * ca, -ct * sa, a * st],
        [0.0, sa, ca, d],
        [0.0, 0.0, 0.0, 1.0],
    ])


def fk_dh(q, dh=UR5_DH):
    T = np.eye(4)
    for i in range(len(q)):
        T = T @ dh_transform(q[i], dh["d"][i], dh["a"][i], dh["alpha"][i])
    return T


def fk_frames(q, dh=UR5_DH):
    """All link frames in a preallocated (n+1, 4, 4) buffer."""
    frames = np.zeros((len(q) + 1, 4, 4), like=q)
    frames[0] = np.eye(4)
    for i in range(len(q)):
        frames[i + 1] = frames[i] @ dh_transform(q[i], dh["d"][i], dh["a"][i], dh["alpha"][i])
    return frames


def end_effector_position(q):
    return fk_dh(q)[:3, 3]


def end_effector_pose(q):
    """Position and roll-pitch-yaw as a dict."""
    T = fk_dh(q)
    return {"position": T[:3, 3], "rpy": matrix_to_rpy(T[:3, :3])}


def planar_fk(q, lengths):
    angles = np.cumsum(q)
    x = np.sum(lengths * np.cos(angles))
    y = np.sum(lengths * np.sin(angles))
    return np.array([x, y])


def planar_pose(q, lengths):
    angles = np.cumsum(q)
    return np.array([np.sum(lengths * np.cos(angles)), np.sum(lengths * np.sin(angles)), angles[-1]])


def planar_joint_positions(q, lengths, like=None):
    pts = np.zeros((len(q) + 1, 2), like=like)
    phi = 0.0
    for i in range(len(q)):
        phi = phi + q[i]
        pts[i + 1, 0] = pts[i, 0] + lengths[i] * np.cos(phi)
        pts[i + 1, 1] = pts[i, 1] + lengths[i] * np.sin(phi)
    return pts


def twist_matrix(S):
    M = np.zeros((4, 4))
    M[:3, :3] = hat(S[:3])
    M[:3, 3] = S[3:]
    return M


def fk_poe(q, screws, M_home):
    """Space-frame product of exponentials, exp by scipy.linalg.expm."""
    T = np.eye(4)
    for S, qi in zip(screws, q):
        T = T @ scipy.linalg.expm(twist_matrix(S) * qi)
    return T @ M_home


# ---- Jacobians and manipulability -----------------------------------------------------------


def geometric_jacobian(q, dh=UR5_DH):
    frames = fk_frames(q, dh)
    p_e = frames[-1][:3, 3]
    J = np.zeros((6, len(q)), like=q)
    for i in range(len(q)):
        z = frames[i][:3, 2]
        p = frames[i][:3, 3]
        J[:3, i] = np.cross(z, p_e - p)
        J[3:, i] = z
    return J


def planar_jacobian(q, lengths):
    angles = np.cumsum(q)
    J = np.empty((2, len(q)), like=q)
    for i in range(len(q)):
        J[0, i] = -np.sum(lengths[i:] * np.sin(angles[i:]))
        J[1, i] = np.sum(lengths[i:] * np.cos(angles[i:]))
    return J


def manipulability(q):
    """Yoshikawa's measure of the translational Jacobian."""
    Jp = geometric_jacobian(q)[:3]
    return np.sqrt(np.linalg.det(Jp @ Jp.T))


def inverse_condition(q, lengths):
    s = np.linalg.svd(planar_jacobian(q, lengths), compute_uv=False)
    return s[-1] / s[0]


def manipulability_ellipsoid(q, lengths):
    """Axes and orientation of the velocity ellipsoid as a dict (eigh of J J^T)."""
    J = planar_jacobian(q, lengths)
    evals, evecs = np.linalg.eigh(J @ J.T)
    return {"axes": np.sqrt(evals), "angle": np.arctan2(evecs[1, -1], evecs[0, -1]) % np.pi,
            "volume": np.pi * np.prod(np.sqrt(evals))}


def cartesian_stiffness(q, lengths, kq):
    """K_x = J^-T K_q J^-1 for a square (2-link) arm."""
    Jinv = np.linalg.inv(planar_jacobian(q, lengths))
    return Jinv.T @ np.diag(kq) @ Jinv


def nullspace_step(q, lengths, xdot, k0=0.5):
    """Resolved rates with a null-space term pushing joints toward the middle."""
    J = planar_jacobian(q, lengths)
    Jp = np.linalg.pinv(J)
    q_mid = np.zeros_like(q)
    return Jp @ xdot + (np.eye(len(q)) - Jp @ J) @ (k0 * (q_mid - q))


# ---- inverse kinematics ---------------------------------------------------------------------


def two_link_ik(target, l1, l2, elbow_up=True):
    x, y = target
    c2 = (x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if abs(c2) > 1.0:
        raise ValueError("target out of reach")
    s2 = np.sqrt(1 - c2 * c2) * (1.0 if elbow_up else -1.0)
    q2 = np.arctan2(s2, c2)
    q1 = np.arctan2(y, x) - np.arctan2(l2 * s2, l1 + l2 * c2)
    return np.array([q1, q2])


def ik_dls(target, q0, n_iter=8, lam=0.05):
    """Damped least squares, a fixed number of iterations, in-place joint update."""
    q = q0.copy()
    for _ in range(n_iter):
        e = target - end_effector_position(q)
        J = geometric_jacobian(q)[:3]
        dq = J.T @ np.linalg.solve(J @ J.T + lam**2 * np.eye(3), e)
        q += dq
    return q


def ik_gauss_newton(target, q0, lengths, tol=1e-12, max_iter=30):
    """Minimum-norm Gauss-Newton (lstsq) with an early exit; a dict of results."""
    q = np.array(q0, dtype=float)
    it = 0
    e = planar_fk(q, lengths) - target
    for it in range(max_iter):
        if np.linalg.norm(e) < tol:
            break
        J = planar_jacobian(q, lengths)
        q = q - np.linalg.lstsq(J, e, rcond=None)[0]
        e = planar_fk(q, lengths) - target
    return {"q": q, "iterations": it, "residual": np.linalg.norm(e)}


def ik_jacobian_transpose(target, q0, lengths, alpha=0.3, n_iter=15):
    q = q0.copy()
    history = np.empty(n_iter, like=target)
    for k in range(n_iter):
        e = target - planar_fk(q, lengths)
        history[k] = e @ e
        q = q + alpha * planar_jacobian(q, lengths).T @ e
    return q, history


# ---- dynamics -------------------------------------------------------------------------------


def double_pendulum_lagrangian(q, qd, m1=1.0, m2=0.8, l1=1.0, l2=0.7):
    th1, th2 = q
    w1, w2 = qd
    T = 0.5 * (m1 + m2) * l1**2 * w1**2 + 0.5 * m2 * l2**2 * w2**2 \
        + m2 * l1 * l2 * w1 * w2 * np.cos(th1 - th2)
    V = -(m1 + m2) * G * l1 * np.cos(th1) - m2 * G * l2 * np.cos(th2)
    return T - V


def double_pendulum_accel(q, qd, m1=1.0, m2=0.8, l1=1.0, l2=0.7):
    """The textbook closed form."""
    th1, th2 = q
    w1, w2 = qd
    d = th1 - th2
    M = np.array([[(m1 + m2) * l1**2, m2 * l1 * l2 * np.cos(d)],
                  [m2 * l1 * l2 * np.cos(d), m2 * l2**2]])
    rhs = np.array([-m2 * l1 * l2 * w2**2 * np.sin(d) - (m1 + m2) * G * l1 * np.sin(th1),
                    m2 * l1 * l2 * w1**2 * np.sin(d) - m2 * G * l2 * np.sin(th2)])
    return np.linalg.solve(M, rhs)


def planar_arm_lagrangian(q, qd, lengths, masses):
    """Point masses at the link ends."""
    phi = np.cumsum(q)
    w = np.cumsum(qd)
    py = np.cumsum(lengths * np.sin(phi))
    vx = np.cumsum(-lengths * np.sin(phi) * w)
    vy = np.cumsum(lengths * np.cos(phi) * w)
    return 0.5 * np.sum(masses * (vx**2 + vy**2)) - G * np.sum(masses * py)


def rne_planar(q, qd, qdd, lengths, masses):
    """Recursive Newton-Euler inverse dynamics for point masses at the link ends."""
    n = len(q)
    acc, r = [], []
    a_prev = np.array([0.0, G])        # gravity as an upward base acceleration
    phi = w = wd = 0.0
    for i in range(n):
        phi = phi + q[i]
        w = w + qd[i]
        wd = wd + qdd[i]
        r.append(lengths[i] * np.array([np.cos(phi), np.sin(phi)]))
        a_prev = a_prev + wd * np.array([-r[i][1], r[i][0]]) - w**2 * r[i]
        acc.append(a_prev)
    tau = [0.0] * n
    f = np.zeros(2)
    moment = 0.0
    for i in reversed(range(n)):
        f = masses[i] * acc[i] + f
        moment = moment + r[i][0] * f[1] - r[i][1] * f[0]
        tau[i] = moment
    return np.array(tau)


def two_link_mass_matrix(q, l1=1.0, l2=0.8, m1=2.0, m2=1.0):
    c2 = np.cos(q[1])
    m11 = (m1 + m2) * l1**2 + m2 * l2**2 + 2 * m2 * l1 * l2 * c2
    m12 = m2 * l2**2 + m2 * l1 * l2 * c2
    return np.array([[m11, m12], [m12, m2 * l2**2]])


def pendulum_spring_potential(theta, m=1.2, l=0.5, k=3.0, theta0=0.4):
    return m * G * l * (1.0 - np.cos(theta)) + 0.5 * k * (theta - theta0) ** 2


def simulate_pendulum(theta0, omega0, dt=0.02, steps=40, damping=0.1, length=1.0):
    """RK4 into a preallocated trajectory."""
    def rhs(s):
        return np.array([s[1], -G / length * np.sin(s[0]) - damping * s[1]])
    state = np.array([theta0, omega0])
    traj = np.empty((steps + 1, 2), like=state)
    traj[0] = theta0, omega0
    for k in range(steps):
        k1 = rhs(state)
        k2 = rhs(state + 0.5 * dt * k1)
        k3 = rhs(state + 0.5 * dt * k2)
        k4 = rhs(state + dt * k3)
        state = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        traj[k + 1] = state
    return traj


def pendulum_final_angle_ivp(theta0, t_end=1.0):
    sol = scipy.integrate.solve_ivp(lambda t, s: [s[1], -G * np.sin(s[0])], (0.0, t_end),
                                    np.array([theta0, 0.0]), rtol=1e-10, atol=1e-12)
    return sol.y[0, -1]


def pendulum_period(theta0, length=1.0):
    """Exact period by the complete elliptic integral."""
    return 4.0 * np.sqrt(length / G) * scipy.special.ellipk(np.sin(theta0 / 2) ** 2)


def ellipse_path_length(a, b):
    """Perimeter of an elliptical end-effector path: 4 a E(1 - b^2/a^2) for a >= b."""
    return 4.0 * a * scipy.special.ellipe(1.0 - (b / a) ** 2)


def wrist_moments(r, f):
    """Planar moments r x f of forces at lever arms (2-vectors: NumPy 2 warns)."""
    return np.cross(r, f)


def rotvec_to_matrix_scipy(w):
    import scipy.spatial.transform
    return scipy.spatial.transform.Rotation.from_rotvec(w).as_matrix()


def ik_least_squares(target, lengths, q0, reg=0.01):
    """Regularised IK by scipy.optimize.least_squares (a non-zero residual at the optimum)."""
    fun = lambda q: np.concatenate([planar_fk(q, lengths) - target, reg * q])
    return scipy.optimize.least_squares(fun, q0, xtol=1e-15, ftol=1e-15, gtol=1e-15).x


def pd_torque(q, qd, q_ref, kp, kd, tau_max=5.0):
    tau = kp * (q_ref - q) - kd * qd
    return np.clip(tau, -tau_max, tau_max)


# ---- mobile robots --------------------------------------------------------------------------


def diff_drive_odometry(pose, wheel_deltas, wheel_radius=0.05, track=0.3):
    """Integrate encoder increments into (x, y, theta) in place (midpoint rule)."""
    for dl, dr in wheel_deltas:
        ds = wheel_radius * (dl + dr) / 2
        dth = wheel_radius * (dr - dl) / track
        pose[0] += ds * np.cos(pose[2] + dth / 2)
        pose[1] += ds * np.sin(pose[2] + dth / 2)
        pose[2] = np.arctan2(np.sin(pose[2] + dth), np.cos(pose[2] + dth))
    return pose


def unicycle_rollout(controls, x0, dt=0.1):
    n = len(controls)
    states = np.zeros((n + 1, 3), like=controls)
    states[0] = x0
    for k in range(n):
        v, w = controls[k]
        x, y, th = states[k]
        states[k + 1] = [x + dt * v * np.cos(th), y + dt * v * np.sin(th), th + dt * w]
    return states


def unicycle_tracking_cost(controls, x0, goal):
    states = unicycle_rollout(controls, x0)
    return np.sum((states[-1, :2] - goal) ** 2) + 0.01 * np.sum(controls**2)


def bicycle_step(state, steer, v, dt=np.float32(0.05), wheelbase=np.float32(2.7)):
    x, y, th = state
    return np.array([x + v * np.cos(th) * dt, y + v * np.sin(th) * dt,
                     th + v / wheelbase * np.tan(steer) * dt], dtype=np.float32)


def ekf_predict(mu, P, u, Q, dt=0.1):
    v, w = u
    th = mu[2]
    mu_new = mu + np.array([v * np.cos(th) * dt, v * np.sin(th) * dt, w * dt])
    F = np.eye(3, like=mu)
    F[0, 2] = -v * np.sin(th) * dt
    F[1, 2] = v * np.cos(th) * dt
    return mu_new, F @ P @ F.T + Q


def range_bearing(pose, landmark):
    dx, dy = landmark - pose[:2]
    r = np.hypot(dx, dy)
    b = np.arctan2(dy, dx) - pose[2]
    return np.array([r, np.arctan2(np.sin(b), np.cos(b))])


def ekf_update(mu, P, z, landmark, R):
    dx, dy = landmark - mu[:2]
    q = dx**2 + dy**2
    r = np.sqrt(q)
    H = np.array([[-dx / r, -dy / r, 0.0], [dy / q, -dx / q, -1.0]])
    innov = z - range_bearing(mu, landmark)
    innov[1] = (innov[1] + np.pi) % (2 * np.pi) - np.pi
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    return {"mu": mu + K @ innov, "P": (np.eye(3) - K @ H) @ P,
            "nis": innov @ np.linalg.solve(S, innov),
            "loglik": scipy.stats.multivariate_normal.logpdf(innov, mean=np.zeros(2), cov=S)}


def particle_log_weights(particles, ranges, landmarks, sigma=0.2):
    """Log-likelihood of range readings for each particle, normalised by logsumexp."""
    logw = np.zeros(len(particles), like=particles)
    for i, p in enumerate(particles):
        pred = np.linalg.norm(landmarks - p[:2], axis=1)
        logw[i] = scipy.stats.norm.logpdf(ranges, loc=pred, scale=sigma).sum()
    return logw - scipy.special.logsumexp(logw)


# ---- trajectories ---------------------------------------------------------------------------


def min_jerk(t, T=2.0, x0=0.1, xf=1.3):
    tau = t / T
    return x0 + (xf - x0) * (10 * tau**3 - 15 * tau**4 + 6 * tau**5)


def quintic_coefficients(p0, v0, a0, pf, vf, af, T):
    A = np.array([[1, 0, 0, 0, 0, 0],
                  [0, 1, 0, 0, 0, 0],
                  [0, 0, 2, 0, 0, 0],
                  [1, T, T**2, T**3, T**4, T**5],
                  [0, 1, 2 * T, 3 * T**2, 4 * T**3, 5 * T**4],
                  [0, 0, 2, 6 * T, 12 * T**2, 20 * T**3]], dtype=float)
    b = np.array([p0, v0, a0, pf, vf, af])
    return np.linalg.solve(A, b)


def quintic_position(t, coeffs):
    return np.polyval(coeffs[::-1], t)


def trapezoid_profile(t, v_max=1.0, a_max=2.0, distance=1.5):
    t_acc = v_max / a_max
    t_end = distance / v_max + t_acc
    s = np.where(t < t_acc, 0.5 * a_max * t**2,
                 np.where(t < t_end - t_acc, 0.5 * a_max * t_acc**2 + v_max * (t - t_acc),
                          distance - 0.5 * a_max * np.clip(t_end - t, 0.0, None) ** 2))
    return s


def smoothness_cost(waypoints, start, goal, w_acc=1.0, w_vel=0.1):
    path = np.vstack([start, waypoints, goal])
    acc = np.diff(path, n=2, axis=0)
    vel = np.diff(path, axis=0)
    return w_acc * np.sum(acc**2) + w_vel * np.sum(vel**2)


def obstacle_cost(waypoints, centers, radii, eps=0.3):
    """CHOMP's smoothed hinge on the signed distance to spheres."""
    d = np.linalg.norm(waypoints[:, None, :] - centers[None], axis=-1) - radii
    c = np.where(d < 0, -d + eps / 2, np.where(d < eps, (d - eps) ** 2 / (2 * eps), 0.0))
    return c.sum()


def chomp_objective(waypoints, start, goal, centers, radii):
    return smoothness_cost(waypoints, start, goal) + 5.0 * obstacle_cost(waypoints, centers, radii)


def spline_path_length(waypoints, n_eval=40):
    """Arc length of a cubic spline through waypoints (natural spline, trapezoid rule)."""
    s = np.linspace(0.0, 1.0, len(waypoints))
    cs = scipy.interpolate.CubicSpline(s, waypoints, bc_type="natural")
    u = np.linspace(0.0, 1.0, n_eval)
    speed = np.linalg.norm(cs(u, 1), axis=1)
    return scipy.integrate.trapezoid(speed, u)


# ---- collisions -----------------------------------------------------------------------------


def point_segment_distance(p, a, b):
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t * ab))


def box_sdf(p, half_extents):
    q = np.abs(p) - half_extents
    return np.linalg.norm(np.maximum(q, 0.0)) + min(np.max(q), 0.0)


def self_collision_penalty(q, lengths, d_safe=0.6):
    pts = planar_joint_positions(q, lengths, like=q)
    i, j = np.triu_indices(len(pts), k=2)
    d = np.linalg.norm(pts[i] - pts[j], axis=1)
    return np.sum(np.maximum(d_safe - d, 0.0) ** 2)


def soft_min_distance(points, obstacles, alpha=20.0):
    d = np.sqrt(((points[:, None, :] - obstacles[None, :, :]) ** 2).sum(-1))
    return -scipy.special.logsumexp(-alpha * d) / alpha


OCCUPANCY = np.random.default_rng(7).random((10, 10))


def occupancy_cost(p, res=0.1, grid=OCCUPANCY, like=False):
    """Bilinear interpolation of an occupancy grid at a continuous position (floor to cell
    indices; ``like``: the grid made traced first, the fix npfunc names under jit/vmap)."""
    uv = p / res
    ij = np.floor(uv).astype(int)
    a, b = uv - ij
    i, j = ij
    g = np.asarray(grid, like=uv) if like else grid
    return (1 - a) * (1 - b) * g[i, j] + a * (1 - b) * g[i + 1, j] + (1 - a) * b * g[i, j + 1] + a * b * g[i + 1, j + 1]


def cdist_clearance(points, obstacles):
    import scipy.spatial.distance
    return scipy.spatial.distance.cdist(points, obstacles).min()


# ---- pose graphs and registration ----------------------------------------------------------


def pose_graph_residuals(poses, edges):
    """Relative-pose errors of a 2D pose graph; edges are (i, j, z_ij) with z = (dx, dy, dth)."""
    res = np.zeros((len(edges), 3), like=poses)
    for k, (i, j, z) in enumerate(edges):
        ci, si = np.cos(poses[i, 2]), np.sin(poses[i, 2])
        Ri = np.array([[ci, -si], [si, ci]])
        dt = Ri.T @ (poses[j, :2] - poses[i, :2])
        dth = poses[j, 2] - poses[i, 2]
        res[k, :2] = dt - z[:2]
        res[k, 2] = np.arctan2(np.sin(dth - z[2]), np.cos(dth - z[2]))
    return res.ravel()


def pose_graph_cost(flat, edges, delta=0.5):
    """Huber-robustified cost."""
    r = pose_graph_residuals(flat.reshape(-1, 3), edges)
    a = np.abs(r)
    return np.sum(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)))


def pose_graph_gauss_newton(poses0, edges, iters=3):
    """Plain Gauss-Newton with a hand-written Jacobian; the first pose anchored."""
    poses = poses0.copy()
    n = len(poses)
    for _ in range(iters):
        r = pose_graph_residuals(poses, edges)
        J = np.zeros((3 * len(edges), 3 * n), like=poses)
        for k, (i, j, z) in enumerate(edges):
            th = poses[i, 2]
            c, s = np.cos(th), np.sin(th)
            d = poses[j, :2] - poses[i, :2]
            RiT = np.array([[c, s], [-s, c]])
            dRiT = np.array([[-s, c], [-c, -s]])
            J[3 * k:3 * k + 2, 3 * i:3 * i + 2] = -RiT
            J[3 * k:3 * k + 2, 3 * i + 2] = dRiT @ d
            J[3 * k:3 * k + 2, 3 * j:3 * j + 2] = RiT
            J[3 * k + 2, 3 * i + 2] = -1.0
            J[3 * k + 2, 3 * j + 2] = 1.0
        Jf = J[:, 3:]
        step = np.linalg.solve(Jf.T @ Jf, -Jf.T @ r)
        poses[1:] += step.reshape(-1, 3)
    return poses


def se3_residual(Ti, Tj, Tij):
    """log of the relative-pose error, rotation part by so3_log."""
    E = np.linalg.inv(Tij) @ np.linalg.inv(Ti) @ Tj
    return np.concatenate([E[:3, 3], so3_log(E[:3, :3])])


def pose_from_vec(xi):
    T = np.eye(4, like=xi)
    T[:3, :3] = so3_exp(xi[:3])
    T[:3, 3] = xi[3:]
    return T


def kabsch(P, Q):
    Pm, Qm = P.mean(axis=0), Q.mean(axis=0)
    H = (P - Pm).T @ (Q - Qm)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag(np.array([1.0, 1.0, d]))
    R = Vt.T @ D @ U.T
    return R, Qm - R @ Pm


def alignment_rmsd(P, Q):
    R, t = kabsch(P, Q)
    return np.sqrt(np.mean(np.sum((P @ R.T + t - Q) ** 2, axis=1)))


def icp_cost(params, src, dst):
    th, tx, ty = params
    c, s = np.cos(th), np.sin(th)
    moved = src @ np.array([[c, s], [-s, c]]) + np.array([tx, ty])
    d2 = ((moved[:, None, :] - dst[None, :, :]) ** 2).sum(-1)
    nn = np.argmin(d2, axis=1)
    return np.mean(d2[np.arange(len(src)), nn])


def project_points(points_world, xi, K):
    """Pinhole projection of world points by the camera pose exp(xi)."""
    R = so3_exp_where(xi[:3])
    pc = points_world @ R.T + xi[3:]
    uvw = pc @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def reprojection_error(xi, points_world, observed, K):
    return np.sum((project_points(points_world, xi, K) - observed) ** 2)


def project_f32(points_cam, fx, fy, cx, cy):
    """Single precision pixel coordinates, as a camera driver hands them out."""
    x, y, z = points_cam[:, 0], points_cam[:, 1], points_cam[:, 2]
    out = np.empty((len(points_cam), 2), dtype=np.float32, like=points_cam)
    out[:, 0] = fx * x / z + cx
    out[:, 1] = fy * y / z + cy
    return out


# =================================================================================================
# helpers: repeated calls, pytrees of results
# =================================================================================================


def _leaves(x):
    if isinstance(x, dict):
        return [leaf for k in x for leaf in _leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in _leaves(v)]
    return [x]


def assert_same_tree(got, want, rtol=1e-12, atol=0.0):
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, dict):
        assert list(got) == list(want)
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
    for g, w in zip(_leaves(got), _leaves(want)):
        if isinstance(w, (int, np.integer)) and not isinstance(w, bool):
            assert type(g) is type(w) and g == w, (g, w)
        else:
            assert_same(g, w, rtol=rtol, atol=atol)


def assert_bitwise(a, b):
    for x, y in zip(_leaves(a), _leaves(b)):
        assert type(x) is type(y)
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), (x, y)


def check_repeated(tf, argsets, want_fn, compare, n=5, record=False):
    """Call ``tf`` n times cycling through the argument sets; every result against
    ``want_fn`` and repeated results for the same arguments identical bit for bit.
    ``record``: ``tf`` is a jit object, whose first call records (eager values) and whose
    later calls replay the optimised program, which docs/performance.md allows to differ in
    the last bits (reassociated sums); the replays agree with each other bit for bit."""
    wants, first = {}, {}
    for k in range(n):
        i = k % len(argsets)
        got = tf(*argsets[i])
        if i not in wants:
            wants[i] = want_fn(*argsets[i])
        compare(got, wants[i])
        if record and k == 0:
            continue
        if i in first:
            assert_bitwise(got, first[i])
        else:
            first[i] = got


def check_repeated_jit(tf, argsets, want_fn, compare, n=5):
    check_repeated(tf, argsets, want_fn, compare, n=n, record=True)


def check_jit(f, *argsets, rtol=1e-12, n=5, **kw):
    """One jit object: the first call records, later calls (new values, same shapes) replay."""
    check_repeated(npfunc.jit(f, **kw), argsets, f, lambda g, w: assert_same_tree(g, w, rtol=rtol), n=n,
                   record=True)


def deriv_cmp(rtol=1e-6, atol=1e-8):
    return lambda g, w: assert_deriv(g, w, rtol=rtol, atol=atol)


def check_scalar_function(f, x, x2, rtol=1e-6, atol=1e-8, hess=True, hrtol=1e-6, hatol=1e-7, jit=True):
    """A scalar loss of one array: grad, jit(grad), jacrev/jacfwd (as gradients), vjp, jvp,
    hessian and Hessian-vector products by jvp(grad), all repeated."""
    fdg = lambda v: fd(f, v)
    cmp = deriv_cmp(rtol, atol)
    argsets = [(x,), (x2,)]
    check_repeated(npfunc.grad(f), argsets, fdg, cmp)
    if jit:
        check_repeated(npfunc.jit(npfunc.grad(f)), argsets, fdg, cmp, record=True)
    check_repeated(npfunc.jacrev(f), argsets, fdg, cmp, n=3)
    check_repeated(npfunc.jacfwd(f), argsets, fdg, cmp, n=3)
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    out, tan = npfunc.jvp(f, (x,), (v,))
    assert_same(out, f(x))
    assert_deriv(tan, np.sum(fdg(x) * v), rtol=rtol, atol=atol)
    out, pull = npfunc.vjp(f, x)
    assert_same(out, f(x))
    assert_deriv(pull(np.float64(2.0))[0], 2.0 * fdg(x), rtol=rtol, atol=atol)
    if hess:
        g = npfunc.grad(f)
        fdh = lambda v_: fd(g, v_)
        hcmp = deriv_cmp(hrtol, hatol)
        check_repeated(npfunc.hessian(f), argsets, fdh, hcmp)
        hvp = lambda xx: npfunc.jvp(g, (xx,), (v,))[1]
        check_repeated(hvp, argsets, lambda xx: np.tensordot(fdh(xx), v, axes=v.ndim), hcmp)


def check_vector_function(f, x, x2, rtol=1e-6, atol=1e-8, vatol=0.0, n=5):
    """An array-valued function of one array: jacrev, jacfwd, jvp, vjp, repeated.  ``vatol``:
    absolute tolerance of the primal values (entries that cancel to ~1e-17)."""
    fdj = lambda v: fd(f, v)
    cmp = deriv_cmp(rtol, atol)
    argsets = [(x,), (x2,)]
    check_repeated(npfunc.jacrev(f), argsets, fdj, cmp, n=n)
    check_repeated(npfunc.jacfwd(f), argsets, fdj, cmp, n=n)
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    out = f(x)
    o, tan = npfunc.jvp(f, (x,), (v,))
    assert_same(o, out, atol=vatol)
    J = fdj(x)
    assert_deriv(tan, np.tensordot(J, v, axes=v.ndim), rtol=rtol, atol=atol)
    o, pull = npfunc.vjp(f, x)
    assert_same(o, out, atol=vatol)
    ct = np.cos(np.arange(np.size(out))).reshape(np.shape(out))
    assert_deriv(pull(ct)[0], np.tensordot(ct, J, axes=np.ndim(out)), rtol=rtol, atol=atol)


def check_scalar_of_scalar(f, t, t2, rtol=1e-6, atol=1e-8, rtol2=1e-5, atol2=1e-6):
    """A function of one 0-d variable: grad and grad(grad), each repeated, against
    five-point differences (the second derivative against differences of the first)."""
    d1 = lambda s: fd(f, s)
    check_repeated(npfunc.grad(f), [(t,), (t2,)], d1, deriv_cmp(rtol, atol))
    check_repeated(npfunc.grad(npfunc.grad(f)), [(t,), (t2,)], lambda s: fd(npfunc.grad(f), s),
                   deriv_cmp(rtol2, atol2))
    # the second derivative against nested plain differences too (looser: eps^2 noise)
    assert_deriv(npfunc.grad(npfunc.grad(f))(t), fd(lambda s: fd(f, s, eps=1e-3), t, eps=1e-3),
                 rtol=1e-4, atol=1e-5)


def check_vmap(f, batched, in_dims, rtol=1e-12, n=3):
    """vmap against a Python loop and np.stack, repeated calls."""
    axis_of = [d for d in (in_dims if isinstance(in_dims, tuple) else (in_dims,))]
    B = next(np.shape(a)[d] for a, d in zip(batched, axis_of) if d is not None)

    def loop(*args):
        outs = []
        for b in range(B):
            call = [a if d is None else np.take(a, b, axis=d) for a, d in zip(args, axis_of)]
            outs.append(f(*call))
        if isinstance(outs[0], dict):
            return {k: np.stack([o[k] for o in outs]) for k in outs[0]}
        if isinstance(outs[0], tuple):
            return tuple(np.stack(z) for z in zip(*outs))
        return np.stack(outs)
    check_repeated(npfunc.vmap(f, in_dims=in_dims), [tuple(batched)], loop,
                   lambda g, w: assert_same_tree(g, w, rtol=rtol), n=n)


RNG = np.random.default_rng(20240607)
Q6 = np.array([0.3, -0.8, 1.1, -0.4, 0.6, 0.2])
Q6B = np.array([-0.5, -1.2, 0.7, 0.9, -0.3, 1.0])
L3 = np.array([1.0, 0.8, 0.5])
L2 = np.array([1.0, 0.8])


# =================================================================================================
# 1. rotations
# =================================================================================================


def test_rotation_matrices_jit_vmap_and_jacobians():
    for rot in (rot_x, rot_y, rot_z):
        check_jit(rot, (np.float64(0.3),), (np.float64(-1.2),))
        check_jit(rot, (0.3,), (1.7,))
        a = np.linspace(-1, 1, 4)
        check_vmap(rot, (a,), 0)
        J = npfunc.jacfwd(rot)(0.4)
        assert_deriv(J, fd(rot, 0.4))
        # d/da R = hat(axis) R
        axis = {rot_x: 0, rot_y: 1, rot_z: 2}[rot]
        np.testing.assert_allclose(J, hat(np.eye(3)[axis]) @ rot(0.4), rtol=1e-13, atol=1e-15)
    # the rotation of a float32 angle: np.array of float32 scalars with Python floats is float64
    assert_same(npfunc.jit(rot_z)(np.float32(0.5)), rot_z(np.float32(0.5)))


def test_rpy_round_trip_and_gimbal_lock_branch():
    rpy = np.array([0.2, -0.3, 0.5])
    rpy2 = np.array([-1.0, 0.7, 2.5])
    check_jit(rpy_to_matrix, (rpy,), (rpy2,))
    check_vector_function(rpy_to_matrix, rpy, rpy2)
    round_trip = lambda v: matrix_to_rpy(rpy_to_matrix(v))
    check_repeated(npfunc.jacrev(round_trip), [(rpy,), (rpy2,)], lambda v: np.eye(3),
                   deriv_cmp(1e-10, 1e-12))
    check_repeated(npfunc.jacfwd(round_trip), [(rpy,), (rpy2,)], lambda v: np.eye(3),
                   deriv_cmp(1e-10, 1e-12))
    # the gimbal-lock branch: taken eagerly under grad, refused (naming np.where) under vmap and jit
    lock = np.array([0.3, np.pi / 2, 0.0])
    assert_same(npfunc.jacfwd(round_trip)(lock), npfunc.jacfwd(round_trip)(lock))
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(round_trip)(np.stack([rpy, lock]))
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(matrix_to_rpy)(rpy_to_matrix(rpy))


# sqrt'(0) = inf inside the branch np.where discards (so3_exp_where's theta at w = 0): the
# derivative's own divide-by-zero warning, as NumPy warns for 0.5 / np.sqrt(0.0); values exact
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
def test_so3_exp_log_branches_and_derivatives():
    w = np.array([0.3, -0.2, 0.5])
    w2 = np.array([1.2, 0.4, -0.9])
    check_vector_function(so3_exp, w, w2)
    check_vector_function(lambda v: so3_log(so3_exp(v)), w, w2)
    np.testing.assert_allclose(npfunc.jacfwd(lambda v: so3_log(so3_exp(v)))(w), np.eye(3), rtol=1e-12, atol=1e-14)
    # at the identity the small-angle branch: d exp(w)/dw = generators
    J0 = npfunc.jacfwd(so3_exp)(np.zeros(3))
    assert_deriv(J0, np.stack([hat(e) for e in np.eye(3)], axis=-1), rtol=0, atol=0)
    assert_deriv(npfunc.jacrev(so3_exp)(np.zeros(3)), J0, rtol=0, atol=0)
    # so3_log's Jacobian at a rotation matrix input
    R = so3_exp(w)
    check_vector_function(so3_log, R, so3_exp(w2))
    # the data-dependent branch is refused under jit with a hint, and the branch-free spelling works
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"np\.where|lax|cond"):
        npfunc.jit(so3_exp)(w)
    check_jit(so3_exp_where, (w,), (w2,), (np.zeros(3),), (np.array([1e-6, 0.0, 0.0]),))
    W = np.stack([w, w2, np.zeros(3), np.array([0.0, 1e-5, 0.0])])
    check_vmap(so3_exp_where, (W,), 0)
    check_vmap(so3_exp_where, (W.T.copy(),), 1)
    check_repeated(npfunc.vmap(npfunc.jacfwd(so3_exp_where)), [(W,)],
                   lambda X: np.stack([fd(so3_exp, x) if np.dot(x, x) > 1e-8 else npfunc.jacfwd(so3_exp)(x) for x in X]),
                   deriv_cmp(1e-6, 1e-8))


def test_so3_trace_cost_grad_grad_and_hessian():
    target = so3_exp(np.array([0.1, 0.7, -0.3]))
    cost = lambda v: 3.0 - np.trace(target.T @ so3_exp(v))
    check_scalar_function(cost, np.array([0.3, -0.2, 0.5]), np.array([0.6, 0.1, 0.0]), jit=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(grad\(f\)\).*np\.where"):
        npfunc.jit(npfunc.grad(cost))(np.array([0.3, -0.2, 0.5]))
    cost_where = lambda v: 3.0 - np.trace(target.T @ so3_exp_where(v))
    check_scalar_function(cost_where, np.array([0.3, -0.2, 0.5]), np.array([0.6, 0.1, 0.0]))
    angle = lambda t: so3_log(rot_z(t) @ rot_x(0.3))[2]
    check_scalar_of_scalar(angle, 0.4, np.float64(-0.8))


def test_quaternion_product_and_rotation():
    p = np.array([0.9, 0.1, 0.3, -0.2]); p /= np.linalg.norm(p)
    q = np.array([0.2, -0.7, 0.5, 0.4]); q /= np.linalg.norm(q)
    check_jit(quat_mul, (p, q), (q, p))
    check_vmap(quat_mul, (np.stack([p, q, p]), q), (0, None))
    check_vmap(quat_mul, (p, np.stack([p, q]).T.copy()), (None, 1))
    check_vector_function(lambda x: quat_mul(x, q), p, q)
    check_vector_function(quat_to_matrix, p, q)
    v = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(quat_rotate(p, v), quat_to_matrix(p) @ v, rtol=1e-13)
    check_vector_function(lambda x: quat_rotate(x, v), p, q)
    check_jit(quat_rotate, (p, v), (q, 2 * v))
    check_jit(quat_to_matrix, (p,), (q,))
    # float32 quaternions: the Hamilton product stays float32
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    assert quat_mul(p32, q32).dtype == np.float32
    check_jit(quat_mul, (p32, q32), (q32, p32), rtol=1e-6)
    assert_same(npfunc.vmap(quat_mul, in_dims=(0, None))(np.stack([p32, q32]), q32),
                np.stack([quat_mul(p32, q32), quat_mul(q32, q32)]), rtol=1e-6)
    g = npfunc.grad(lambda x: quat_mul(x, q32)[0])(p32)
    assert g.dtype == np.float32


def test_slerp_branches_and_second_derivative_in_t():
    q0 = np.array([0.9, 0.1, 0.3, -0.2]); q0 /= np.linalg.norm(q0)
    q1 = np.array([0.2, -0.7, 0.5, 0.4]); q1 /= np.linalg.norm(q1)
    for a, b in ((q0, q1), (q0, -q1), (q0, q0 + 1e-4 * q1)):
        comp = lambda t: slerp(a, b, t)[1]
        check_scalar_of_scalar(comp, 0.3, np.float64(0.75))
        assert_deriv(npfunc.jacfwd(lambda t: slerp(a, b, t))(0.4), fd(lambda t: slerp(a, b, t), 0.4))
        assert_deriv(npfunc.jacrev(lambda x: slerp(x, b, 0.4))(a), fd(lambda x: slerp(x, b, 0.4), a))
    ts = np.linspace(0.0, 1.0, 5)
    assert_same(npfunc.vmap(slerp, in_dims=(None, None, 0))(q0, q1, ts), np.stack([slerp(q0, q1, t) for t in ts]))
    # the angular velocity along slerp is constant: |d/dt slerp| = angle between the quaternions / 2 * 2
    speeds = [np.linalg.norm(npfunc.jacfwd(lambda t: slerp(q0, q1, t))(t)) for t in (0.1, 0.5, 0.9)]
    np.testing.assert_allclose(speeds, np.arccos(np.dot(q0, q1)), rtol=1e-12)
    check_scalar_function(lambda x: quat_angle_distance(x / np.linalg.norm(x), q1), q0, q0 + 0.1, hess=True)


def test_gyro_integration_copy_and_in_place_buffer():
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    omegas = np.array([[0.1, 0.2, -0.3], [0.5, -0.1, 0.0], [0.0, 0.3, 0.7], [-0.2, 0.1, 0.1]])
    dt = 0.05
    check_jit(integrate_gyro, (q0, omegas, dt), (quat_mul(q0, np.array([0.8, 0.6, 0.0, 0.0])), omegas * 2, dt))
    # a plain initial quaternion copied and updated with traced rates: refused with the fix
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jacrev\(f\).*x = x \+ y"):
        npfunc.jacrev(lambda w: integrate_gyro(q0, w, dt))(omegas)
    # the initial attitude and the rates as one parameter vector: the copy is traced
    packed = lambda z: integrate_gyro(z[:4], z[4:].reshape(-1, 3), dt)
    z0 = np.concatenate([q0, omegas.ravel()])
    check_vector_function(packed, z0, np.concatenate([[0.8, 0.6, 0.0, 0.0], omegas[::-1].ravel()]))
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap\(f\).*x = x \+ y"):
        npfunc.vmap(integrate_gyro, in_dims=(None, 0, None))(q0, np.stack([omegas, -omegas]), dt)
    check_vmap(integrate_gyro, (np.stack([q0, q0, np.array([0.0, 0.6, 0.8, 0.0])]), np.stack([omegas, -omegas, 2 * omegas]), dt),
               (0, 0, None))
    # the caller's buffer is updated in place, also under jit (and the argument of the replay too)
    for jf in (npfunc.jit(integrate_gyro_inplace), integrate_gyro_inplace):
        buf, ref = q0.copy(), q0.copy()
        out = jf(buf, omegas, dt)
        assert out is None
        integrate_gyro_inplace(ref, omegas, dt)
        assert_same(buf, ref)
        buf2, ref2 = np.array([0.0, 1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.0])
        jf(buf2, 3 * omegas, dt)
        integrate_gyro_inplace(ref2, 3 * omegas, dt)
        assert_same(buf2, ref2)
    # under grad of a wrapper the in-place updates of a local traced buffer differentiate
    def final_w(z):
        q = z[:4].copy()
        integrate_gyro_inplace(q, z[4:].reshape(-1, 3), dt)
        return q[0]
    check_scalar_function(final_w, z0, z0 * 0.9, hess=False)


# =================================================================================================
# 2. forward kinematics
# =================================================================================================


def test_dh_forward_kinematics_jit_vmap_and_jacobians():
    check_jit(fk_dh, (Q6,), (Q6B,))
    check_jit(fk_frames, (Q6,), (Q6B,))
    np.testing.assert_allclose(fk_frames(Q6)[-1], fk_dh(Q6), rtol=1e-14)
    Qs = np.stack([Q6, Q6B, -Q6])
    check_vmap(fk_dh, (Qs,), 0)
    check_vmap(fk_frames, (Qs.T.copy(),), 1)
    check_vmap(end_effector_position, (Qs,), 0)
    check_vector_function(end_effector_position, Q6, Q6B)
    check_vector_function(fk_dh, Q6, Q6B)
    reach = lambda q: np.sum(end_effector_position(q) ** 2)
    check_scalar_function(reach, Q6, Q6B)
    check_repeated(npfunc.vmap(npfunc.grad(reach)), [(Qs,)], lambda X: np.stack([fd(reach, x) for x in X]),
                   deriv_cmp())
    check_repeated_jit(npfunc.jit(npfunc.vmap(npfunc.grad(reach))), [(Qs,), (Qs[::-1].copy(),)],
                   lambda X: np.stack([fd(reach, x) for x in X]), deriv_cmp())


def test_end_effector_pose_dict():
    out = end_effector_pose(Q6)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(end_effector_pose)(Q6)
    J = npfunc.jacrev(end_effector_pose)(Q6)
    assert list(J) == ["position", "rpy"]
    assert_deriv(J["position"], fd(lambda q: end_effector_pose(q)["position"], Q6))
    assert_deriv(J["rpy"], fd(lambda q: end_effector_pose(q)["rpy"], Q6))
    Jf = npfunc.jacfwd(end_effector_pose)(Q6)
    assert_deriv(Jf["rpy"], J["rpy"], rtol=1e-10, atol=1e-12)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(end_effector_pose)(np.stack([Q6, Q6B]))
    check_vmap(lambda q: fk_dh(q)[:3, 3], (np.stack([Q6, Q6B]),), 0)
    assert type(out["rpy"]) is np.ndarray


def test_planar_arm_kinematics_and_float32():
    q = np.array([0.3, 0.5, -0.4])
    q2 = np.array([1.0, -0.2, 0.9])
    # joint positions written element by element into a plain np.zeros buffer (like=None),
    # and into the like= one: plain NumPy's values, batches and derivatives, the same for both
    joints = lambda x, l: planar_joint_positions(x, l, like=x)
    for f in (planar_fk, planar_pose, planar_joint_positions, joints, planar_jacobian):
        check_jit(f, (q, L3), (q2, L3 * 1.1))
        check_vmap(f, (np.stack([q, q2, -q]), L3), (0, None))
        check_vector_function(lambda x: f(x, L3), q, q2)
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jac(planar_joint_positions)(q, L3), jac(joints)(q, L3), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(npfunc.jacfwd(planar_fk)(q, L3), planar_jacobian(q, L3), rtol=1e-13)
    np.testing.assert_allclose(npfunc.jacrev(planar_fk)(q, L3), planar_jacobian(q, L3), rtol=1e-13)
    # derivatives in the link lengths (calibration)
    assert_deriv(npfunc.jacrev(planar_fk, argnums=1)(q, L3), fd(lambda l: planar_fk(q, l), L3))
    # float32 arms stay float32 through jit, vmap and grad
    q32, L32 = q.astype(np.float32), L3.astype(np.float32)
    for f in (planar_fk, planar_pose):
        want = f(q32, L32)
        assert want.dtype == np.float32
        check_jit(f, (q32, L32), (q2.astype(np.float32), L32), rtol=1e-6)
        assert_same(npfunc.vmap(f, in_dims=(0, None))(np.stack([q32, q32 * 2]), L32),
                    np.stack([f(q32, L32), f(q32 * 2, L32)]), rtol=1e-6)
        J = npfunc.jacrev(f)(q32, L32)
        assert J.dtype == np.float32
        assert npfunc.jacfwd(f)(q32, L32).dtype == np.float32
    g = npfunc.grad(lambda x: planar_fk(x, L32)[0])(q32)
    assert g.dtype == np.float32
    # the float64 buffer of planar_joint_positions turns float32 joints into float64
    assert_same(npfunc.jit(joints)(q32, L32), planar_joint_positions(q32, L32), rtol=1e-6)
    check_jit(planar_joint_positions, (q32, L32), (q2.astype(np.float32), L32), rtol=1e-6)
    assert npfunc.jacrev(planar_joint_positions)(q32, L32).dtype == npfunc.jacrev(joints)(q32, L32).dtype


def test_product_of_exponentials_matches_dh_style_chain():
    # a 3R planar arm along x, as screws in the space frame
    screws = [np.array([0, 0, 1, 0, 0, 0.0]), np.array([0, 0, 1, 0, -1.0, 0]),
              np.array([0, 0, 1, 0, -1.8, 0])]
    M_home = np.eye(4); M_home[0, 3] = 2.3
    q = np.array([0.3, 0.5, -0.4])
    np.testing.assert_allclose(fk_poe(q, screws, M_home)[:2, 3], planar_fk(q, L3), rtol=1e-12)
    check_jit(lambda x: fk_poe(x, screws, M_home), (q,), (q * 2,), rtol=1e-11)
    pos = lambda x: fk_poe(x, screws, M_home)[:3, 3]
    check_vector_function(pos, q, -q)
    np.testing.assert_allclose(npfunc.jacrev(pos)(q)[:2], planar_jacobian(q, L3), rtol=1e-9, atol=1e-12)
    check_vmap(lambda x: fk_poe(x, screws, M_home), (np.stack([q, -q]),), 0, rtol=1e-11)


# =================================================================================================
# 3. Jacobians and manipulability
# =================================================================================================


def test_geometric_jacobian_against_jacfwd_and_its_derivative():
    J = geometric_jacobian(Q6)
    # entries that cancel to ~1e-17 carry the last bits of O(1) terms, which the optimised replay
    # may reassociate (docs/performance.md): an absolute tolerance at rounding of the entries
    check_repeated_jit(npfunc.jit(geometric_jacobian), [(Q6,), (Q6B,)], geometric_jacobian,
                       lambda g, w: assert_same(g, w, rtol=1e-12, atol=1e-15))
    np.testing.assert_allclose(npfunc.jacfwd(end_effector_position)(Q6), J[:3], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(npfunc.jacrev(end_effector_position)(Q6), J[:3], rtol=1e-11, atol=1e-13)
    check_vector_function(geometric_jacobian, Q6, Q6B, vatol=1e-15)
    check_vmap(geometric_jacobian, (np.stack([Q6, Q6B]),), 0)


def test_manipulability_gradient_hessian_and_per_sample():
    check_jit(manipulability, (Q6,), (Q6B,))
    check_scalar_function(manipulability, Q6, Q6B, hrtol=1e-5, hatol=1e-6)
    Qs = np.stack([Q6, Q6B, Q6 + 0.1])
    check_vmap(manipulability, (Qs,), 0)
    check_repeated(npfunc.vmap(npfunc.grad(manipulability)), [(Qs,)],
                   lambda X: np.stack([fd(manipulability, x) for x in X]), deriv_cmp())
    check_repeated_jit(npfunc.jit(npfunc.vmap(npfunc.grad(manipulability))), [(Qs,), (Qs + 0.2,)],
                   lambda X: np.stack([fd(manipulability, x) for x in X]), deriv_cmp())
    # one joint: grad(grad) of the measure along the elbow.  [t] inside np.concatenate: built
    # while a transform runs (core/array_hooks.py; it was refused), as np.hstack's spelling
    elbow = lambda t: manipulability(np.hstack([Q6[:2], t, Q6[3:]]))
    listed = lambda t: manipulability(np.concatenate([Q6[:2], [t], Q6[3:]]))
    assert npfunc.grad(listed)(1.1) == npfunc.grad(elbow)(1.1)
    check_scalar_of_scalar(elbow, 1.1, 0.6)
    check_scalar_of_scalar(listed, 1.1, 0.6)


def test_inverse_condition_svd_and_ellipsoid_dict():
    q = np.array([0.3, 0.9, -0.4])
    q2 = np.array([1.0, -0.7, 1.3])
    ic = lambda x: inverse_condition(x, L3)
    check_jit(inverse_condition, (q, L3), (q2, L3))
    check_scalar_function(ic, q, q2, hrtol=1e-5, hatol=1e-6)
    check_jit(manipulability_ellipsoid, (q, L3), (q2, L3))
    check_vmap(manipulability_ellipsoid, (np.stack([q, q2]), L3), (0, None))
    J = npfunc.jacrev(lambda x: manipulability_ellipsoid(x, L3))(q)
    for key in ("axes", "angle", "volume"):
        assert_deriv(J[key], fd(lambda x: manipulability_ellipsoid(x, L3)[key], q))
    check_scalar_of_scalar(lambda t: manipulability_ellipsoid(np.array([0.3, t, -0.4]), L3)["volume"], 0.9, 1.4)


def test_cartesian_stiffness_and_nullspace_step():
    q = np.array([0.4, 1.1])
    kq = np.array([50.0, 30.0])
    check_jit(cartesian_stiffness, (q, L2, kq), (q + 0.3, L2, kq * 2))
    check_vector_function(lambda x: cartesian_stiffness(x, L2, kq), q, q + 0.3)
    assert_deriv(npfunc.jacrev(cartesian_stiffness, argnums=2)(q, L2, kq), fd(lambda k: cartesian_stiffness(q, L2, k), kq))
    q3 = np.array([0.3, 0.9, -0.4])
    xdot = np.array([0.1, -0.2])
    check_jit(nullspace_step, (q3, L3, xdot), (q3 * 2, L3, -xdot))
    check_vector_function(lambda x: nullspace_step(x, L3, xdot), q3, q3 * 2)
    check_vmap(nullspace_step, (np.stack([q3, -q3]), L3, np.stack([xdot, 2 * xdot]).T.copy()), (0, None, 1))


# =================================================================================================
# 4. inverse kinematics
# =================================================================================================


def test_two_link_closed_form_ik_inverts_fk():
    target = np.array([1.2, 0.7])
    target2 = np.array([-0.4, 1.3])
    # the reachability check is Python control flow: refused under jit and vmap, with np.where named
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(two_link_ik)(target, 1.0, 0.8)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(two_link_ik, in_dims=(0, None, None))(np.stack([target, target2]), 1.0, 0.8)
    check_vector_function(lambda p: two_link_ik(p, 1.0, 0.8), target, target2)
    Jik = npfunc.jacfwd(lambda p: two_link_ik(p, 1.0, 0.8))(target)
    np.testing.assert_allclose(Jik @ planar_jacobian(two_link_ik(target, 1.0, 0.8), L2), np.eye(2), atol=1e-12)
    far = np.array([3.0, 0.0])
    with pytest.raises(ValueError, match="out of reach"):
        npfunc.jacrev(lambda p: two_link_ik(p, 1.0, 0.8))(far)
    # the elbow angle: grad(grad) in the reach distance
    elbow = lambda r: two_link_ik(np.array([r, 0.3]), 1.0, 0.8)[1]
    check_scalar_of_scalar(elbow, 1.2, np.float64(0.9))


def test_damped_least_squares_ik_sensitivity_to_target():
    q0 = Q6.copy()
    target = end_effector_position(Q6 + 0.05)
    target2 = end_effector_position(Q6 - 0.08)
    # q = q0.copy(); q += dq with a plain start and a traced target: refused with the fix
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"jacrev\(f\).*x = x \+ y"):
        npfunc.jacrev(ik_dls)(target, q0)
    assert_same(q0, Q6)   # the loop works on a copy
    # under jit both arguments are traced, so the copy is and the in-place update works
    check_jit(ik_dls, (target, q0), (target2, q0 + 0.1), rtol=1e-10)
    check_vector_function(lambda z: ik_dls(z[:3], z[3:], n_iter=3), np.concatenate([target, q0]),
                          np.concatenate([target2, q0]), n=5)
    # implicit function check: the solution's sensitivity is a right inverse of the position Jacobian
    dq = npfunc.jacrev(lambda z: ik_dls(z[:3], z[3:], n_iter=12))(np.concatenate([target, q0]))[:, :3]
    np.testing.assert_allclose(geometric_jacobian(ik_dls(target, q0, n_iter=12))[:3] @ dq, np.eye(3), atol=1e-6)


def test_gauss_newton_ik_with_early_exit_returns_dict():
    target = np.array([1.1, 1.0])
    target2 = np.array([0.4, 1.6])
    q0 = np.array([0.2, 0.3, 0.4])
    want = ik_gauss_newton(target, q0, L3)
    assert isinstance(want["iterations"], int)
    got = npfunc.jacrev(lambda p: ik_gauss_newton(p, q0, L3)["q"])(target)
    assert_deriv(got, fd(lambda p: ik_gauss_newton(p, q0, L3)["q"], target), rtol=1e-5)
    np.testing.assert_allclose(planar_jacobian(want["q"], L3) @ got, np.eye(2), atol=1e-8)
    check_vector_function(lambda p: ik_gauss_newton(p, q0, L3)["q"], target, target2)
    # the data-dependent break is refused under jit and vmap with a hint
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(ik_gauss_newton)(target, q0, L3)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*np\.where"):
        npfunc.vmap(ik_gauss_newton, in_dims=(0, None, None))(np.stack([target, target2]), q0, L3)


def test_jacobian_transpose_ik_history_buffer():
    target = np.array([1.1, 1.0])
    q0 = np.array([0.2, 0.3, 0.4])
    check_jit(ik_jacobian_transpose, (target, q0, L3), (target * 0.9, q0, L3))
    check_vmap(ik_jacobian_transpose, (np.stack([target, target * 0.9]), q0, L3), (0, None, None))
    check_vector_function(lambda p: ik_jacobian_transpose(p, q0, L3)[1], target, target * 0.9, n=5)
    last = lambda p: ik_jacobian_transpose(p, q0, L3, n_iter=6)[1][-1]
    check_scalar_function(last, target, target * 0.9, hrtol=1e-5, hatol=1e-6)


# =================================================================================================
# 5. dynamics
# =================================================================================================


def _lagrange_accel(L, q, qd):
    """qdd = M^-1 (dL/dq - d2L/dqd dq qd) with M = d2L/dqd2, all by npfunc."""
    M = npfunc.hessian(L, argnums=1)(q, qd)
    dLdq = npfunc.grad(L, argnums=0)(q, qd)
    C = npfunc.jacfwd(npfunc.grad(L, argnums=1), argnums=0)(q, qd)
    return np.linalg.solve(M, dLdq - C @ qd)


def test_double_pendulum_equations_of_motion_from_the_lagrangian():
    q, qd = np.array([0.4, -0.3]), np.array([0.5, 1.2])
    q2, qd2 = np.array([1.4, 0.9]), np.array([-0.7, 0.2])
    for a, b in ((q, qd), (q2, qd2), (q, qd), (q2, qd2), (q, qd)):
        np.testing.assert_allclose(_lagrange_accel(double_pendulum_lagrangian, a, b),
                                   double_pendulum_accel(a, b), rtol=1e-12, atol=1e-13)
    check_jit(double_pendulum_lagrangian, (q, qd), (q2, qd2))
    check_jit(double_pendulum_accel, (q, qd), (q2, qd2))
    check_vector_function(lambda x: double_pendulum_accel(x, qd), q, q2)
    check_vmap(double_pendulum_accel, (np.stack([q, q2]), qd), (0, None))
    check_scalar_function(lambda x: double_pendulum_lagrangian(x, qd), q, q2)
    # the whole accel-by-transforms under jit and vmap
    acc = lambda a, b: _lagrange_accel(double_pendulum_lagrangian, a, b)
    check_repeated_jit(npfunc.jit(acc), [(q, qd), (q2, qd2)], double_pendulum_accel,
                       lambda g, w: assert_same(g, w, rtol=1e-12, atol=1e-13))
    check_repeated(npfunc.vmap(acc), [(np.stack([q, q2]), np.stack([qd, qd2]))],
                   lambda A, B: np.stack([double_pendulum_accel(a, b) for a, b in zip(A, B)]),
                   lambda g, w: assert_same(g, w, rtol=1e-12, atol=1e-13))


def test_planar_arm_lagrangian_against_recursive_newton_euler():
    masses = np.array([1.0, 0.7, 0.4])
    q, qd, qdd = np.array([0.3, 0.5, -0.4]), np.array([0.5, -0.3, 0.8]), np.array([0.2, 0.1, -0.5])
    L = lambda a, b: planar_arm_lagrangian(a, b, L3, masses)

    def tau_lagrange(a, b, c):
        M = npfunc.hessian(L, argnums=1)(a, b)
        C = npfunc.jacfwd(npfunc.grad(L, argnums=1), argnums=0)(a, b)
        return M @ c + C @ b - npfunc.grad(L, argnums=0)(a, b)
    for s in (1.0, -0.5, 1.0, 2.0, -0.5, 1.0):
        np.testing.assert_allclose(tau_lagrange(q * s, qd, qdd), rne_planar(q * s, qd, qdd, L3, masses),
                                   rtol=1e-12, atol=1e-12)
    check_jit(rne_planar, (q, qd, qdd, L3, masses), (q * 2, -qd, qdd, L3, masses))
    check_vmap(rne_planar, (np.stack([q, -q]), qd, np.stack([qdd, qdd * 3]), L3, masses), (0, None, 0, None, None))
    check_vector_function(lambda x: rne_planar(x, qd, qdd, L3, masses), q, -q)
    check_vector_function(lambda x: rne_planar(q, x, qdd, L3, masses), qd, -qd)
    # tau is linear in qdd with slope M(q)
    Mq = npfunc.jacrev(lambda c: rne_planar(q, qd, c, L3, masses))(qdd)
    np.testing.assert_allclose(Mq, npfunc.hessian(L, argnums=1)(q, qd), rtol=1e-12)


def test_christoffel_symbols_from_jacfwd_of_the_mass_matrix():
    q = np.array([0.3, 0.8])
    dM = npfunc.jacfwd(two_link_mass_matrix)(q)          # dM[i, j, k] = dM_ij / dq_k
    assert_deriv(dM, fd(two_link_mass_matrix, q))
    c = 0.5 * (dM + dM.transpose(0, 2, 1) - dM.transpose(2, 0, 1))
    h = 1.0 * 0.8 * 1.0 * np.sin(q[1])
    np.testing.assert_allclose(c[0, 0, 1], -h, rtol=1e-13)
    np.testing.assert_allclose(c[1, 0, 0], h, rtol=1e-13)
    check_jit(two_link_mass_matrix, (q,), (q * 2,))
    check_vector_function(two_link_mass_matrix, q, 2 * q)
    check_repeated(npfunc.jacrev(two_link_mass_matrix), [(q,), (q * 3,)], lambda x: fd(two_link_mass_matrix, x), deriv_cmp())


def test_spring_pendulum_stiffness_by_grad_grad():
    check_scalar_of_scalar(pendulum_spring_potential, 0.3, np.float64(1.1))
    check_jit(pendulum_spring_potential, (0.3,), (1.2,))
    check_jit(pendulum_spring_potential, (np.float64(0.3),), (np.float64(1.2),))
    check_jit(pendulum_spring_potential, (np.float32(0.3),), (np.float32(1.2),), rtol=1e-6)
    ts = np.linspace(-1, 1, 5)
    check_vmap(pendulum_spring_potential, (ts,), 0)
    check_repeated(npfunc.vmap(npfunc.grad(npfunc.grad(pendulum_spring_potential))), [(ts,)],
                   lambda t: np.array([fd(npfunc.grad(pendulum_spring_potential), x) for x in t]),
                   deriv_cmp(1e-6, 1e-7))
    # python-scalar results keep NumPy's type
    assert_same(npfunc.grad(pendulum_spring_potential)(np.float64(0.3)),
                np.float64(fd(pendulum_spring_potential, 0.3)), rtol=1e-7)
    k = npfunc.grad(npfunc.grad(pendulum_spring_potential))
    assert type(k(np.float32(0.3))) is np.float32 or np.asarray(k(np.float32(0.3))).dtype == np.float32


def test_rk4_pendulum_trajectory_buffer_and_sensitivities():
    check_jit(simulate_pendulum, (0.5, 0.0), (1.0, 0.3), (np.float64(0.2), np.float64(-0.1)))
    check_vmap(simulate_pendulum, (np.array([0.5, 1.0, 1.5]), 0.1), (0, None))
    final = lambda th: simulate_pendulum(th, 0.0, steps=15)[-1, 0]
    check_scalar_of_scalar(final, 0.5, 1.2)
    check_vector_function(lambda s: simulate_pendulum(s[0], s[1], steps=20)[::10].ravel(), np.array([0.5, 0.1]),
                          np.array([1.0, -0.4]))
    check_repeated_jit(npfunc.jit(npfunc.grad(final)), [(0.5,), (1.2,)], lambda t: fd(final, t), deriv_cmp())


def test_solve_ivp_pendulum_final_angle():
    want = pendulum_final_angle_ivp(0.5)
    got = npfunc.jit(pendulum_final_angle_ivp)(0.5)
    assert_same(got, want, rtol=1e-12)
    check_repeated(npfunc.grad(pendulum_final_angle_ivp), [(0.5,), (0.9,)],
                   lambda t: fd(pendulum_final_angle_ivp, t, eps=1e-4), deriv_cmp(1e-6, 1e-8))


def test_pendulum_period_by_ellipk():
    # scipy.special.ellipk/ellipe were refused (UnsupportedFunctionError): now primitives with
    # Legendre's derivatives, a Taylor series near m = 0
    want = pendulum_period(0.5)
    assert type(want) is np.float64
    check_scalar_of_scalar(lambda m: scipy.special.ellipk(m), 0.0, np.float64(0.05))
    check_scalar_of_scalar(lambda m: scipy.special.ellipe(m), 1e-3, -0.7)
    check_scalar_of_scalar(lambda p: scipy.special.ellipkm1(p), 0.3, 0.95)
    check_scalar_of_scalar(lambda b: ellipse_path_length(1.5, b), 0.6, 1.2)
    check_jit(ellipse_path_length, (1.5, 0.6), (2.0, 1.9))
    check_vmap(ellipse_path_length, (np.array([1.5, 2.0, 1.0]), 0.5), (0, None))
    assert_same(npfunc.grad(scipy.special.ellipk)(np.float32(0.3)),
                np.float32(fd(scipy.special.ellipk, 0.3)), rtol=1e-6)
    check_jit(pendulum_period, (0.5,), (1.0,))
    check_scalar_of_scalar(pendulum_period, 0.5, 1.5)
    check_vmap(pendulum_period, (np.array([0.1, 0.5, 2.0]),), 0)
    assert type(npfunc.grad(pendulum_period)(0.5)) is type(np.float64(want))


def test_saturated_pd_torque():
    q, qd, ref = np.array([0.1, -0.5, 0.3]), np.array([0.2, 0.0, -1.0]), np.array([0.5, 0.5, 0.5])
    kp, kd = np.array([10.0, 20.0, 5.0]), 0.5
    check_jit(pd_torque, (q, qd, ref, kp, kd), (q * 2, qd, ref, kp, kd))
    J = npfunc.jacrev(pd_torque)(q, qd, ref, kp, kd)
    assert_deriv(J, fd(lambda x: pd_torque(x, qd, ref, kp, kd), q))
    check_vmap(pd_torque, (np.stack([q, -q]), qd, ref, kp, np.array([0.5, 1.0])), (0, None, None, None, 0))


# =================================================================================================
# 6. mobile robots
# =================================================================================================


def test_differential_drive_odometry_updates_pose_in_place():
    ticks = np.array([[1.0, 1.2], [0.8, 1.5], [1.0, 0.4], [1.3, 1.3]])
    for tf in (npfunc.jit(diff_drive_odometry), diff_drive_odometry):
        pose, ref = np.array([0.0, 0.0, 0.1]), np.array([0.0, 0.0, 0.1])
        out = tf(pose, ticks)
        want = diff_drive_odometry(ref, ticks)
        assert_same(pose, ref)
        assert_same(out, want)
        pose2, ref2 = np.array([1.0, -1.0, 3.0]), np.array([1.0, -1.0, 3.0])
        assert_same(tf(pose2, ticks * 2), diff_drive_odometry(ref2, ticks * 2))
        assert_same(pose2, ref2)
    # derivatives in the encoder increments, the pose a plain np.zeros(3) buffer made in the
    # function (it takes the traced increments) or a traced one (like=t): the same
    final_plain = lambda t: diff_drive_odometry(np.zeros(3), t)
    final = lambda t: diff_drive_odometry(np.zeros(3, like=t), t)
    for f in (final_plain, final):
        check_jit(f, (ticks,), (ticks * 2,))
        check_vmap(f, (np.stack([ticks, ticks[::-1], ticks * 0.5]),), 0)
        check_vector_function(f, ticks, ticks[::-1].copy())
    for jac in (npfunc.jacrev, npfunc.jacfwd):
        np.testing.assert_allclose(jac(final_plain)(ticks), jac(final)(ticks), rtol=1e-13, atol=1e-15)
    x_end_plain = lambda t: diff_drive_odometry(np.zeros(3), t)[0]
    x_end = lambda t: diff_drive_odometry(np.zeros(3, like=t), t)[0]
    check_scalar_function(x_end_plain, ticks, ticks * 0.5, hess=True)
    check_scalar_function(x_end, ticks, ticks * 0.5, hess=True)
    # derivatives in the initial pose (traced buffer updated in place)
    check_vector_function(lambda p: diff_drive_odometry(p.copy(), ticks), np.array([0.0, 0.0, 0.3]), np.array([1.0, 2.0, -2.0]))
    check_vmap(lambda p, t: diff_drive_odometry(p.copy(), t), (np.stack([np.zeros(3), np.ones(3)]), ticks), (0, None))


def test_unicycle_rollout_list_assignment_and_control_gradient():
    controls = np.array([[0.5, 0.1], [0.3, -0.2], [0.1, 0.05], [0.4, 0.3]])
    x0, goal = np.array([0.0, 0.0, 0.2]), np.array([0.1, 0.2])
    check_jit(unicycle_rollout, (controls, x0), (controls * 2, x0 + 1))
    check_vmap(unicycle_rollout, (np.stack([controls, -controls]), x0), (0, None))
    check_vector_function(lambda c: unicycle_rollout(c, x0), controls, -controls)
    cost = lambda c: unicycle_tracking_cost(c, x0, goal)
    check_scalar_function(cost, controls, controls * 0.3)
    C = np.stack([controls, controls * 0.3, -controls])
    check_repeated(npfunc.vmap(npfunc.grad(cost)), [(C,)], lambda X: np.stack([fd(cost, x) for x in X]), deriv_cmp())
    check_repeated_jit(npfunc.jit(npfunc.vmap(npfunc.grad(cost))), [(C,), (C * 1.5,)],
                   lambda X: np.stack([fd(cost, x) for x in X]), deriv_cmp())
    check_vmap(npfunc.grad(unicycle_tracking_cost), (controls, x0, np.stack([goal, -goal, 2 * goal]).T.copy()),
               (None, None, 1), rtol=1e-12)


def test_float32_bicycle_model():
    state = np.array([0.0, 1.0, 0.3], dtype=np.float32)
    steer, v = np.float32(0.1), np.float32(5.0)
    want = bicycle_step(state, steer, v)
    assert want.dtype == np.float32
    check_jit(bicycle_step, (state, steer, v), (state * 2, np.float32(-0.2), np.float32(3.0)), rtol=1e-6)
    check_vmap(bicycle_step, (np.stack([state, state * 2]), np.array([0.1, -0.1], dtype=np.float32), v),
               (0, 0, None), rtol=1e-6)
    J = npfunc.jacrev(bicycle_step)(state, steer, v)
    assert J.dtype == np.float32
    th = state[2]
    J_hand = np.array([[1, 0, -v * np.sin(th) * np.float32(0.05)], [0, 1, v * np.cos(th) * np.float32(0.05)], [0, 0, 1]],
                      dtype=np.float32)
    np.testing.assert_allclose(J, J_hand, rtol=1e-6)
    ds = npfunc.jacfwd(bicycle_step, argnums=1)(state, steer, v)
    assert ds.dtype == np.float32
    np.testing.assert_allclose(ds[2], v / np.float32(2.7) / np.cos(steer) ** 2 * np.float32(0.05), rtol=1e-6)


def test_ekf_predict_jacobian_and_update_dict():
    mu, P, u = np.array([0.5, -0.2, 0.3]), np.diag([0.1, 0.2, 0.05]), np.array([1.0, 0.4])
    Q = np.eye(3) * 0.01
    check_jit(ekf_predict, (mu, P, u, Q), (mu * 2, P * 2, -u, Q))
    F = npfunc.jacfwd(lambda m: ekf_predict(m, P, u, Q)[0])(mu)
    F_hand = np.eye(3); F_hand[0, 2] = -u[0] * np.sin(mu[2]) * 0.1; F_hand[1, 2] = u[0] * np.cos(mu[2]) * 0.1
    np.testing.assert_allclose(F, F_hand, rtol=1e-14)
    check_vmap(ekf_predict, (np.stack([mu, -mu]), P, np.stack([u, 2 * u]), Q), (0, None, 0, None))
    lm, z, R = np.array([1.5, 1.2]), np.array([1.6, 0.5]), np.eye(2) * 0.01
    H = npfunc.jacrev(range_bearing)(mu, lm)
    assert_deriv(H, fd(lambda m: range_bearing(m, lm), mu))
    want = ekf_update(mu, P, z, lm, R)
    check_jit(ekf_update, (mu, P, z, lm, R), (mu * 0.5, P, z * 1.1, lm, R))
    for key in ("mu", "nis", "loglik"):
        f = lambda m: ekf_update(m, P, z, lm, R)[key]
        if np.ndim(want[key]) == 0:
            check_scalar_function(f, mu, mu * 0.5, hess=False)
        else:
            check_vector_function(f, mu, mu * 0.5)
    check_vmap(ekf_update, (mu, P, np.stack([z, z * 1.1, z * 0.9]), lm, R), (None, None, 0, None, None))


def test_particle_log_weights():
    particles = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [0.3, -0.1, 0.0]])
    ranges = np.array([1.5, 2.0])
    landmarks = np.array([[1.0, 1.0], [2.0, -0.5]])
    check_jit(particle_log_weights, (particles, ranges, landmarks), (particles * 2, ranges, landmarks))
    check_vector_function(lambda p: particle_log_weights(p, ranges, landmarks), particles, particles * 2)
    best = lambda p: particle_log_weights(p, ranges, landmarks)[1]
    check_scalar_function(best, particles, particles * 2)
    # the buffer is made like the particles: batched readings with plain particles are refused
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*like=x"):
        npfunc.vmap(particle_log_weights, in_dims=(None, 0, None))(particles, np.stack([ranges, ranges * 1.1]), landmarks)
    check_vmap(particle_log_weights, (np.stack([particles, particles * 2]), ranges, landmarks), (0, None, None))


# =================================================================================================
# 7. trajectories
# =================================================================================================


def test_min_jerk_profile_derivatives():
    check_scalar_of_scalar(min_jerk, 0.7, np.float64(1.5))
    ts = np.linspace(0, 2, 5)
    check_jit(min_jerk, (ts,), (ts + 0.1,))
    check_vmap(min_jerk, (ts,), 0)
    vel = npfunc.vmap(npfunc.grad(min_jerk))(ts)
    np.testing.assert_allclose(vel[[0, -1]], 0.0, atol=1e-14)
    acc = npfunc.vmap(npfunc.grad(npfunc.grad(min_jerk)))(ts)
    np.testing.assert_allclose(acc[[0, -1]], 0.0, atol=1e-13)
    assert_deriv(npfunc.jacfwd(min_jerk)(ts), np.diag(fd(min_jerk, ts).diagonal()))


def test_quintic_coefficients_by_solve_and_polyval():
    bc = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0)
    c = quintic_coefficients(*bc)
    check_jit(quintic_coefficients, bc, (0.5, 0.1, 0.0, 2.0, 0.0, 0.3, 1.5))
    check_jit(quintic_position, (0.7, c), (1.3, c))
    pos_t = lambda t: quintic_position(t, quintic_coefficients(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0))
    check_scalar_of_scalar(pos_t, 0.7, 1.3)
    # the end time T as the variable: sensitivity of the midpoint position
    mid = lambda T: quintic_position(0.5, quintic_coefficients(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, T))
    check_scalar_of_scalar(mid, 2.0, 1.2)
    check_vmap(quintic_position, (np.linspace(0, 2, 4), c), (0, None))
    check_vmap(quintic_position, (0.5, np.stack([c, 2 * c]).T.copy()), (None, 1))


def test_trapezoid_velocity_profile():
    ts = np.linspace(0.0, 2.5, 11)
    check_jit(trapezoid_profile, (ts,), (ts * 0.9,))
    check_vmap(trapezoid_profile, (ts,), 0)
    check_repeated(npfunc.vmap(npfunc.grad(trapezoid_profile)), [(ts + 0.01,)],
                   lambda t: np.array([fd(trapezoid_profile, x, eps=1e-6) for x in t]), deriv_cmp())
    check_scalar_of_scalar(trapezoid_profile, 0.2, np.float64(1.8))
    check_scalar_of_scalar(lambda d: trapezoid_profile(1.0, distance=d), 1.5, 2.0)


def test_chomp_smoothness_and_obstacle_costs():
    start, goal = np.zeros(2), np.ones(2)
    wp = np.array([[0.2, 0.1], [0.5, 0.3], [0.8, 0.2]])
    wp2 = np.array([[0.1, 0.3], [0.45, 0.2], [0.7, 0.6]])
    centers, radii = np.array([[0.5, 0.25], [0.8, 0.5]]), np.array([0.1, 0.15])
    f = lambda w: chomp_objective(w, start, goal, centers, radii)
    check_jit(chomp_objective, (wp, start, goal, centers, radii), (wp2, start, goal, centers, radii))
    check_scalar_function(f, wp, wp2, hrtol=1e-5, hatol=1e-6)
    W = np.stack([wp, wp2, wp * 0.9])
    check_vmap(chomp_objective, (W, start, goal, centers, radii), (0, None, None, None, None))
    check_repeated(npfunc.vmap(npfunc.grad(f)), [(W,)], lambda X: np.stack([fd(f, x) for x in X]), deriv_cmp())
    check_repeated_jit(npfunc.jit(npfunc.vmap(npfunc.grad(f))), [(W,), (W * 1.05,)],
                   lambda X: np.stack([fd(f, x) for x in X]), deriv_cmp())
    check_scalar_function(lambda w: smoothness_cost(w, start, goal), wp, wp2)
    # a gradient-descent step on the objective, compiled
    step = npfunc.jit(lambda w: w - 0.01 * npfunc.grad(f)(w))
    for w in (wp, wp2, wp, wp2, wp):
        np.testing.assert_allclose(step(w), w - 0.01 * fd(f, w), rtol=1e-7, atol=1e-9)


def test_spline_path_length():
    wp = np.array([[0.0, 0.0], [0.5, 0.3], [0.8, 0.2], [1.2, 0.6]])
    check_jit(spline_path_length, (wp,), (wp * 1.1,))
    check_scalar_function(spline_path_length, wp, wp * 1.1, hess=False)


# =================================================================================================
# 8. collisions
# =================================================================================================


def test_point_segment_distance_clip_regions():
    a, b = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.5, 0.0])
    for p in (np.array([0.4, 0.6, 0.2]), np.array([-0.5, 0.2, 0.1]), np.array([1.6, 0.9, -0.3])):
        check_scalar_function(lambda x: point_segment_distance(x, a, b), p, p + 0.05)
        check_scalar_function(lambda y: point_segment_distance(p, y, b), a + 0.01, a - 0.02, hess=False)
    P = np.array([[0.4, 0.6, 0.2], [-0.5, 0.2, 0.1], [1.6, 0.9, -0.3]])
    check_jit(point_segment_distance, (P[0], a, b), (P[1], a, b), (P[2], a, b))
    check_vmap(point_segment_distance, (P, a, b), (0, None, None))
    check_vmap(point_segment_distance, (P.T.copy(), a, b), (1, None, None))


def test_box_sdf_with_builtin_min():
    half = np.array([0.5, 0.5, 0.5])
    outside, inside = np.array([0.3, 0.9, 0.1]), np.array([0.1, 0.2, -0.3])
    for p in (outside, inside):
        check_scalar_function(lambda x: box_sdf(x, half), p, p * 0.9, hess=False, jit=False)
    # the builtin min of a traced value: under jit a refusal naming a fix, never a wrong value
    try:
        jf = npfunc.jit(box_sdf)
        for p in (outside, inside, outside):
            assert_same(jf(p, half), box_sdf(p, half))
    except npfunc.errors.ConcretizationError as e:
        assert "min" in str(e) or "np.minimum" in str(e) or "np.where" in str(e)


def test_self_collision_penalty_over_triu_pairs():
    q = np.array([0.3, 2.5, 2.0])
    q2 = np.array([0.1, 2.8, 2.6])
    f = lambda x: self_collision_penalty(x, L3)
    assert f(q) > 0 and f(q2) > 0
    check_jit(self_collision_penalty, (q, L3), (q2, L3))
    check_scalar_function(f, q, q2)
    Qs = np.stack([q, q2, np.zeros(3)])
    check_vmap(self_collision_penalty, (Qs, L3), (0, None))
    check_repeated(npfunc.vmap(npfunc.grad(f)), [(Qs,)], lambda X: np.stack([fd(f, x) for x in X]), deriv_cmp())


def test_soft_min_clearance_logsumexp_and_cdist():
    wp = np.array([[0.2, 0.1], [0.5, 0.3], [0.8, 0.2]])
    obs = np.array([[0.5, 0.25], [1.0, 0.0]])
    check_jit(soft_min_distance, (wp, obs), (wp * 1.2, obs))
    check_scalar_function(lambda w: soft_min_distance(w, obs), wp, wp * 1.2)
    check_vmap(soft_min_distance, (np.stack([wp, wp * 1.2]), obs), (0, None))
    want = cdist_clearance(wp, obs)
    try:
        got = npfunc.grad(cdist_clearance)(wp, obs)
    except npfunc.errors.NpfuncError as e:
        assert "cdist" in str(e)
    else:
        assert_deriv(got, fd(lambda w: cdist_clearance(w, obs), wp))
        assert_same(npfunc.jit(cdist_clearance)(wp, obs), want)


# =================================================================================================
# 9. pose graphs and registration
# =================================================================================================

EDGES = [(0, 1, np.array([1.0, 0.0, 0.1])), (1, 2, np.array([1.0, 0.1, 0.2])),
         (2, 0, np.array([-1.9, -0.4, -0.3])), (0, 2, np.array([1.95, 0.35, 0.28]))]
POSES = np.array([[0.0, 0.0, 0.0], [1.1, 0.05, 0.12], [2.0, 0.3, 0.28]])
POSES2 = np.array([[0.1, -0.1, 0.05], [0.9, 0.2, 0.0], [2.2, 0.1, 0.4]])


def test_pose_graph_residuals_and_huber_cost():
    check_jit(pose_graph_residuals, (POSES, EDGES), (POSES2, EDGES))
    check_vector_function(lambda p: pose_graph_residuals(p, EDGES), POSES, POSES2)
    cost = lambda x: pose_graph_cost(x, EDGES)
    check_scalar_function(cost, POSES.ravel(), POSES2.ravel())
    check_jit(pose_graph_cost, (POSES.ravel(), EDGES), (POSES2.ravel(), EDGES))
    check_vmap(pose_graph_residuals, (np.stack([POSES, POSES2]), EDGES), (0, None))


def test_pose_graph_gauss_newton_hand_jacobian_and_sensitivity():
    J = npfunc.jacrev(lambda p: pose_graph_residuals(p.reshape(-1, 3), EDGES))(POSES.ravel())
    # the hand-written Jacobian in pose_graph_gauss_newton against jacrev: one step from POSES
    one = pose_graph_gauss_newton(POSES, EDGES, iters=1)
    r = pose_graph_residuals(POSES, EDGES)
    Jf = J[:, 3:]
    np.testing.assert_allclose(one[1:].ravel(), POSES[1:].ravel() + np.linalg.solve(Jf.T @ Jf, -Jf.T @ r), rtol=1e-12)
    check_jit(pose_graph_gauss_newton, (POSES, EDGES), (POSES2, EDGES))
    check_vector_function(lambda p: pose_graph_gauss_newton(p, EDGES, iters=2), POSES, POSES2)

    def solve_with(z):
        edges = [(i, j, z[k]) for k, (i, j, _) in enumerate(EDGES)]
        return pose_graph_gauss_newton(POSES, edges, iters=3)[2]
    Z = np.stack([e[2] for e in EDGES])
    # the residual buffer is made like the poses, plain here while the measurements are traced
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jacrev\(f\).*like=x"):
        npfunc.jacrev(solve_with)(Z)


def test_se3_residual_through_so3_log():
    xi_i = np.array([0.1, -0.2, 0.3, 1.0, 0.0, 0.5])
    xi_j = np.array([0.2, 0.1, 0.25, 1.5, 0.3, 0.4])
    Tij = np.linalg.inv(pose_from_vec(xi_i)) @ pose_from_vec(xi_j) @ pose_from_vec(np.array([0.01, 0.02, -0.01, 0.05, 0.0, 0.0]))
    res = lambda xj: se3_residual(pose_from_vec(xi_i), pose_from_vec(xj), Tij)
    check_vector_function(res, xi_j, xi_j + 0.1)
    cost = lambda xj: 0.5 * np.sum(res(xj) ** 2)
    check_scalar_function(cost, xi_j, xi_j + 0.1, hrtol=1e-5, hatol=1e-6, jit=False)
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.where"):
        npfunc.jit(se3_residual)(pose_from_vec(xi_i), pose_from_vec(xi_j), Tij)


def test_kabsch_alignment_svd_and_sign_of_det():
    P = RNG.normal(size=(6, 3))
    Q = P @ rot_z(0.3).T @ rot_x(-0.4).T + np.array([0.1, -0.2, 0.3]) + 0.01 * RNG.normal(size=(6, 3))
    Q2 = P @ rot_y(1.1).T + 0.02 * RNG.normal(size=(6, 3))
    check_jit(kabsch, (P, Q), (P, Q2), rtol=1e-10)
    check_jit(alignment_rmsd, (P, Q), (P, Q2), rtol=1e-10)
    check_scalar_function(lambda q: alignment_rmsd(P, q), Q, Q2, hess=False)
    check_vector_function(lambda q: kabsch(P, q)[0], Q, Q2)
    check_vmap(alignment_rmsd, (P, np.stack([Q, Q2])), (None, 0), rtol=1e-10)


def test_icp_with_argmin_correspondences():
    src = RNG.normal(size=(6, 2))
    dst = src @ np.array([[np.cos(0.2), np.sin(0.2)], [-np.sin(0.2), np.cos(0.2)]]) + 0.1 + 0.01 * RNG.normal(size=(6, 2))
    params = np.array([0.15, 0.08, 0.12])
    params2 = np.array([0.25, 0.1, 0.05])
    check_jit(icp_cost, (params, src, dst), (params2, src, dst))
    check_scalar_function(lambda p: icp_cost(p, src, dst), params, params2)
    check_vmap(icp_cost, (np.stack([params, params2]), src, dst), (0, None, None))


def test_pinhole_reprojection_error():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    pts = np.array([[0.1, 0.2, 4.0], [-0.3, 0.1, 5.0], [0.4, -0.2, 3.0], [0.0, 0.0, 6.0]])
    xi = np.array([0.02, -0.01, 0.03, 0.1, -0.05, 0.2])
    obs = project_points(pts, xi, K) + np.array([0.5, -0.3])
    check_jit(project_points, (pts, xi, K), (pts, xi * 2, K))
    check_vector_function(lambda x: project_points(pts, x, K), xi, xi * 2)
    f = lambda x: reprojection_error(x, pts, obs, K)
    check_scalar_function(f, xi, xi * 2, rtol=1e-6, atol=1e-6, hrtol=1e-5, hatol=1e-4)
    check_vmap(reprojection_error, (np.stack([xi, xi * 2, np.zeros(6)]), pts, obs, K), (0, None, None, None))


def test_float32_projection_into_empty_buffer():
    pts = np.array([[0.1, 0.2, 4.0], [-0.3, 0.1, 5.0]], dtype=np.float32)
    fx, fy, cx, cy = (np.float32(v) for v in (500, 500, 320, 240))
    want = project_f32(pts, fx, fy, cx, cy)
    check_jit(project_f32, (pts, fx, fy, cx, cy), (pts * 2, fx, fy, cx, cy), rtol=1e-6)
    J = npfunc.jacrev(project_f32)(pts, fx, fy, cx, cy)
    assert J.dtype == np.float32
    J_hand = np.zeros((2, 2, 2, 3), dtype=np.float32)
    for n, (x, y, z) in enumerate(pts):
        J_hand[n, 0, n] = [fx / z, 0, -fx * x / z**2]
        J_hand[n, 1, n] = [0, fy / z, -fy * y / z**2]
    np.testing.assert_allclose(J, J_hand, rtol=1e-6)
    check_vmap(project_f32, (np.stack([pts, pts * 2]), fx, fy, cx, cy), (0, None, None, None, None), rtol=1e-6)
    # float64 inputs into a float32 buffer: rounding, as NumPy
    assert_same(npfunc.jit(project_f32)(pts.astype(float), 500.0, 500.0, 320.0, 240.0),
                project_f32(pts.astype(float), 500.0, 500.0, 320.0, 240.0))
    assert want.dtype == np.float32


# =================================================================================================
# 10. regressions: warnings of np.cross, compiled SciPy code, SciPy's least_squares
# =================================================================================================


def test_planar_moments_by_cross_of_2_vectors_warn_like_numpy():
    # NumPy 2 deprecates np.cross of 2-vectors with a DeprecationWarning; npfunc's np.cross gave
    # the value silently under every transform (it now warns as NumPy does; jit when recording)
    r = np.array([[0.3, 0.5], [-0.2, 0.4]])
    f = np.array([[1.0, -2.0], [0.5, 0.5]])
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        want = wrist_moments(r, f)
    for tf in (npfunc.jit(wrist_moments), npfunc.vmap(wrist_moments)):
        with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
            assert_same(tf(r, f), want)
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        J = npfunc.jacrev(wrist_moments)(r, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert_deriv(J, fd(lambda x: wrist_moments(x, f), r))
    # 3-vectors do not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        npfunc.jacrev(np.cross)(np.ones(3), np.arange(3.0))


def test_scipy_rotation_from_rotvec_is_refused_with_the_array_api_route():
    # SciPy's Rotation runs Cython code on a typed memoryview of its input: a traced value gave
    # a bare "TypeError: a bytes-like object is required, not 'ReverseTracer'"
    w = np.array([0.3, -0.2, 0.5])
    np.testing.assert_allclose(rotvec_to_matrix_scipy(w), so3_exp(w), rtol=1e-13, atol=1e-15)
    for tf, name in ((npfunc.jacrev, "jacrev"), (npfunc.jit, "jit"), (npfunc.jacfwd, "jacfwd"),
                     (npfunc.vmap, "vmap")):
        arg = np.stack([w, -w]) if name == "vmap" else w
        with pytest.raises(npfunc.errors.UnsupportedOperationError,
                           match=rf"{name}\(f\): scipy\.spatial\.transform\.Rotation\.from_rotvec .*buffer "
                                 r"protocol.*SCIPY_ARRAY_API=1") as info:
            tf(rotvec_to_matrix_scipy)(arg)
        assert isinstance(info.value, TypeError)   # as the bare error was
    with pytest.raises(npfunc.errors.UnsupportedOperationError, match=r"vmap\(grad\(f\)\).*from_quat"):
        npfunc.vmap(npfunc.grad(lambda q: __import__("scipy.spatial.transform").spatial.transform
                                .Rotation.from_quat(q).magnitude()))(np.array([[0.1, 0.2, 0.3, 0.9]]))
    # the hand-written exponential map is the fix that works without the variable
    assert_deriv(npfunc.jacrev(so3_exp)(w), fd(rotvec_to_matrix_scipy, w))


def test_least_squares_ik_implicit_derivative_uses_the_full_hessian():
    target, q0 = np.array([1.1, 1.0]), np.array([0.2, 0.3, 0.4])
    q = ik_least_squares(target, L3, q0)
    # the implicit function theorem on 0.5 |r(q, t)|^2 with nested plain differences: the residual
    # is not zero at the optimum, so the Gauss-Newton J^T J would give another (wrong) derivative
    cost = lambda qq, tt: 0.5 * np.sum(np.concatenate([planar_fk(qq, L3) - tt, 0.01 * qq]) ** 2)
    H = fd(lambda qq: fd(lambda x: cost(x, target), qq, eps=1e-4), q, eps=1e-4)
    B = fd(lambda tt: fd(lambda x: cost(x, tt), q, eps=1e-4), target, eps=1e-4)
    want = -np.linalg.solve(H, B)
    check_repeated(npfunc.jacrev(lambda t: ik_least_squares(t, L3, q0)), [(target,)], lambda t: want,
                   deriv_cmp(1e-6, 1e-8), n=5)
    check_repeated(npfunc.jacfwd(lambda t: ik_least_squares(t, L3, q0)), [(target,)], lambda t: want,
                   deriv_cmp(1e-6, 1e-8), n=5)
    check_jit(lambda t: ik_least_squares(t, L3, q0), (target,), (target * 0.9,), n=4)
    # (vmap agrees too, to rtol 1e-12, but solves the stacked problem in ~4 s: left out for time)


# =================================================================================================
# 11. linearize, functionalize, checkpoint
# =================================================================================================


def rk4_pendulum_step(s, dt=0.05):
    f = lambda s: np.array([s[1], -G * np.sin(s[0])])
    k1 = f(s)
    k2 = f(s + 0.5 * dt * k1)
    k3 = f(s + 0.5 * dt * k2)
    k4 = f(s + dt * k3)
    return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def pendulum_after(theta0, steps=8, step=rk4_pendulum_step):
    s = np.array([theta0, 0.0])
    for _ in range(steps):
        s = step(s)
    return s[0]


def test_linearized_forward_kinematics_functionalized_gyro_and_checkpointed_steps():
    out, lin = npfunc.linearize(end_effector_position, Q6)
    assert_same(out, end_effector_position(Q6))
    J = fd(end_effector_position, Q6)
    first = {}
    for k in range(6):
        v = np.cos(np.arange(6.0) * (k % 2 + 1))
        got = lin(v)
        assert_deriv(got, J @ v)
        if k % 2 in first:
            assert_bitwise(got, first[k % 2])
        first.setdefault(k % 2, got)
    # functionalize: the in-place attitude update becomes a returned value... and the caller's
    # buffer is still updated, as the plain program does
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    om = np.array([[0.1, 0.2, -0.3], [0.5, -0.1, 0.0]])
    a, b = q0.copy(), q0.copy()
    assert npfunc.functionalize(integrate_gyro_inplace)(a, om, 0.05) is None
    integrate_gyro_inplace(b, om, 0.05)
    assert_same(a, b)
    # checkpointed RK4 steps: values, gradients and second derivatives as without checkpoints
    ck = lambda th: pendulum_after(th, step=npfunc.checkpoint(rk4_pendulum_step))
    assert_same(ck(0.5), pendulum_after(0.5))
    check_scalar_of_scalar(ck, 0.5, 1.1)
    check_repeated_jit(npfunc.jit(npfunc.grad(ck)), [(np.float64(0.5),), (np.float64(1.1),)],
                       lambda t: fd(pendulum_after, t), deriv_cmp())
    check_vmap(ck, (np.array([0.5, 0.7, 1.1]),), 0)


def test_occupancy_grid_bilinear_cost():
    p, p2 = np.array([0.43, 0.27]), np.array([0.61, 0.35])
    # eager transforms read the cell indices from the values
    check_scalar_function(occupancy_cost, p, p2, jit=False, hess=False)
    # under jit and vmap a traced index into the plain grid is refused, naming the fix
    with pytest.raises(npfunc.errors.ConcretizationError, match=r"jit\(f\).*np\.asarray\(table, like=i\)"):
        npfunc.jit(occupancy_cost)(p)
    with pytest.raises(npfunc.errors.BatchedConversionError, match=r"vmap\(f\).*like=i"):
        npfunc.vmap(occupancy_cost)(np.stack([p, p2]))
    fixed = lambda x: occupancy_cost(x, like=True)
    check_jit(fixed, (p,), (p2,))
    check_vmap(fixed, (np.stack([p, p2, p * 0.5]),), 0)
    check_repeated(npfunc.vmap(npfunc.grad(fixed)), [(np.stack([p, p2]),)],
                   lambda X: np.stack([fd(occupancy_cost, x) for x in X]), deriv_cmp())
